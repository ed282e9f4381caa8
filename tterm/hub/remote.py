"""The remote engine: :class:`~tterm.core.client.EngineClient` over the hub's WebSocket (``tterm attach``).

The TUI cannot tell it from the embedded engine. Events arrive in batches and go onto a local
:class:`~tterm.core.bus.Bus`, so each ``events()`` stream coalesces quotes and keeps order events
complete exactly as in-process. Symbols resolve locally (``instrument()`` is synchronous) with an
instrument master set to the hub's trade date, equities and fees, sent in the hub's hello.

The link to the hub is a connection of its own (a ``ConnectionStatus`` for broker ``hub``): it is
connected from the first attach (on the stream and in every snapshot), and when it drops the
client says so on the stream, refuses commands with a clear :class:`EngineError` (an order is never queued to go out
later), and reconnects with backoff. Once back it re-subscribes its quotes, takes a snapshot and
replays it onto the stream (balances, positions — including ones that went flat meanwhile —
orders, fills it has not seen, quotes, connections, locks, risk), so the screen catches up
without knowing anything happened. The same resync runs when the hub reports that this client
fell too far behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import aiohttp

from tterm.core.alerts.model import Alert, AlertSpec, AlertState
from tterm.core.broker import LoginPrompt, LoginResult
from tterm.core.bus import Bus, Subscription
from tterm.core.client import EngineError, EngineSnapshot
from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.models import (
    AccountLock,
    Bar,
    ConnectionState,
    ConnectionStatus,
    Fill,
    Instrument,
    InstrumentAdded,
    Notice,
    OptionChain,
    Order,
    OrderGroup,
    OrderPreview,
    OrderRequest,
    Position,
    RiskDecision,
    Timeframe,
)
from tterm.core.pnl import PnlReport
from tterm.hub import wire
from tterm.hub.server import PROTOCOL

log = logging.getLogger(__name__)

#: The broker name the link to the hub reports its state under.
HUB_LINK = "hub"


class RemoteEngineClient:
    """An EngineClient backed by a ``tterm hub`` (see the module docstring)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        call_timeout: float = 30.0,
        backoff: tuple[float, float] = (0.2, 5.0),
    ) -> None:
        if not url.startswith(("ws://", "wss://")):
            raise EngineError(f"hub address must start with ws:// or wss://, got {url!r}")
        self.url = url.rstrip("/") + ("" if url.rstrip("/").endswith("/ws") else "/ws")
        self._token = token
        self._call_timeout = call_timeout
        self._backoff = backoff
        self._bus = Bus()
        self._instruments = InstrumentMaster()
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._calls: dict[int, asyncio.Future[Any]] = {}
        self._next_id = 0
        self._symbols: list[str] = []
        # Depth and trade feeds this client asked for: re-asked after a reconnect, like quotes.
        self._feeds: dict[str, list[str]] = {"depth": [], "trades": []}
        self._positions: set[tuple[str, str]] = set()
        self._alerts: dict[int, Alert] = {}  # the alerts this client has heard of (for a resync)
        self._fill_ids: set[tuple[str, str]] = set()
        self._task: asyncio.Task[None] | None = None
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._connected = asyncio.Event()
        self._closed = False
        self._link_status: ConnectionStatus | None = None
        self.reconnects = 0
        self.hub_version = ""

    # ------------------------------------------------------------------ lifecycle

    async def connect(self, *, within: float = 10.0) -> None:
        """Open the first connection; raises EngineError if the hub cannot be reached or refuses."""
        self._session = aiohttp.ClientSession()
        try:
            ws = await asyncio.wait_for(self._open(), within)
        except BaseException:
            await self._session.close()
            self._session = None
            raise
        self._link(ConnectionState.CONNECTED, f"connected to {self.url}")
        self._task = asyncio.create_task(self._run(ws), name="remote-engine")

    async def _open(self) -> aiohttp.ClientWebSocketResponse:
        assert self._session is not None
        try:
            ws = await self._session.ws_connect(
                self.url,
                headers={"Authorization": f"Bearer {self._token}"},
                heartbeat=20.0,
                max_msg_size=64 * 1024 * 1024,
            )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 401:
                raise EngineError(f"the hub at {self.url} refused the API token (401)") from None
            raise EngineError(f"the hub at {self.url} refused the connection ({exc.status})") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise EngineError(f"cannot reach the hub at {self.url}: {exc}") from None
        msg = await ws.receive(timeout=10)
        hello = json.loads(msg.data) if msg.type is aiohttp.WSMsgType.TEXT else {}
        if hello.get("type") != "hello":
            await ws.close()
            raise EngineError(f"{self.url} is not a tterm hub (no hello)")
        if hello.get("protocol") != PROTOCOL:
            await ws.close()
            raise EngineError(
                f"the hub speaks protocol {hello.get('protocol')}, this tterm {PROTOCOL}: run the same tterm version"
            )
        self._adopt(hello)
        self._ws = ws
        self._connected.set()
        return ws

    def _adopt(self, hello: dict[str, Any]) -> None:
        """An instrument master that resolves exactly as the hub's does."""
        self.hub_version = str(hello.get("version", ""))
        trade_date = date.fromisoformat(hello["trade_date"])
        fees = {k: Decimal(v) for k, v in (hello.get("fees") or {}).items()}
        master = InstrumentMaster(today=lambda: trade_date, fee_overrides=fees)
        for sym in hello.get("equities") or []:
            with contextlib.suppress(UnknownSymbol):
                master.add_equity(sym)
        for inst in self._instruments.learned:  # what the hub taught us before a reconnect
            master.add(inst)
        self._instruments = master

    async def start(self) -> None:
        """Connect (the terminal calls this when it owns the client); nothing starts on the hub."""
        if self._task is None:
            await self.connect()

    async def stop(self) -> None:
        """Detach (see :meth:`close`)."""
        await self.close()

    async def close(self) -> None:
        """Detach: the hub and everything on it keep running."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()
        self._fail_calls("the client was closed")
        self._bus.close()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # ------------------------------------------------------------------ the link

    async def _run(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        first = True
        delay = self._backoff[0]
        while not self._closed:
            if not first:
                try:
                    ws = await self._open()
                except EngineError as exc:
                    self._link(ConnectionState.RECONNECTING, f"{exc}; retrying in {delay:.1f} s")
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._backoff[1])
                    continue
                delay = self._backoff[0]
                self.reconnects += 1
                resync = asyncio.create_task(self._resync(reconnected=True))
            else:
                resync = None
            first = False
            try:
                await self._read(ws)
            finally:
                if resync is not None:
                    resync.cancel()
            self._connected.clear()
            self._ws = None
            self._fail_calls("the connection to the hub was lost")
            if not self._closed:
                self._link(ConnectionState.RECONNECTING, "connection to the hub lost; reconnecting")

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            try:
                data = json.loads(msg.data)
                kind = data.get("type")
                if kind == "events":
                    for raw in data["events"]:
                        self._publish(wire.decode(raw))
                elif kind == "result":
                    fut = self._calls.pop(data.get("id"), None)
                    if fut is not None and not fut.done():
                        fut.set_result(data)
                elif kind == "resync":
                    task = asyncio.create_task(self._resync(reconnected=False))
                    self._side_tasks.add(task)
                    task.add_done_callback(self._side_tasks.discard)
            except (ValueError, KeyError, wire.WireError) as exc:
                log.warning("bad message from the hub: %s", exc)
                self._bus.publish(Notice(level="error", text=f"bad message from the hub: {exc}", source=HUB_LINK))

    def _publish(self, event: Any) -> None:
        if isinstance(event, InstrumentAdded):
            self._instruments.add(event.instrument)
        elif isinstance(event, Position):
            self._positions.add((event.account, event.symbol))
        elif isinstance(event, Alert):
            if event.state is AlertState.REMOVED:
                self._alerts.pop(event.alert_id, None)
            else:
                self._alerts[event.alert_id] = event
        elif isinstance(event, Fill):
            key = (event.broker, event.fill_id)
            if key in self._fill_ids:
                return
            self._fill_ids.add(key)
        self._bus.publish(event)

    def _link(self, state: ConnectionState, detail: str) -> None:
        if self._link_status is not None and self._link_status.state is state:
            # Still the same state (another retry): keep when it began, which is what the screen shows.
            self._link_status = replace(self._link_status, detail=detail)
        else:
            self._link_status = ConnectionStatus(broker=HUB_LINK, state=state, detail=detail)
        self._bus.publish(self._link_status)

    async def _resync(self, *, reconnected: bool) -> None:
        """Catch the stream up from a snapshot (after a reconnect, or when the hub says we fell behind)."""
        try:
            if reconnected and self._symbols:
                await self._call("subscribe", symbols=list(self._symbols))
            if reconnected:
                for kind, syms in self._feeds.items():
                    if syms:
                        await self._call(f"subscribe_{kind}", symbols=list(syms))
            snap = await self.snapshot()
        except EngineError as exc:
            log.warning("resync failed: %s", exc)
            return
        if reconnected:
            # Said first, so a reader sees the link come back and then the state it brings.
            self._link(ConnectionState.CONNECTED, f"reconnected to {self.url}")
        before = set(self._positions)
        # The link's own state is said by _link (above); the snapshot's copy may be older.
        brokers = tuple(c for c in snap.connections if c.broker != HUB_LINK)
        for event in (*snap.balances, *snap.positions, *snap.orders, *snap.quotes, *brokers):
            self._publish(event)
        for fill in snap.fills:
            self._publish(fill)
        for lock in snap.locks:
            self._publish(lock)
        for status in snap.risk:
            self._publish(status)
        gone = set(self._alerts) - {a.alert_id for a in snap.alerts}
        for alert in snap.alerts:  # what changed while the link was down (fired ones included)
            self._publish(alert)
        for alert_id in sorted(gone):  # removed meanwhile (from another terminal)
            self._publish(replace(self._alerts[alert_id], state=AlertState.REMOVED))
        now_held = {(p.account, p.symbol) for p in snap.positions}
        for account, symbol in sorted(before - now_held):
            self._publish(Position(account=account, symbol=symbol, quantity=0))
        if reconnected:
            self._bus.publish(
                Notice(level="info", text="reconnected to the hub; the screen was refreshed", source=HUB_LINK)
            )

    # ------------------------------------------------------------------ calls

    def _fail_calls(self, why: str) -> None:
        calls, self._calls = self._calls, {}
        for fut in calls.values():
            if not fut.done():
                fut.set_exception(EngineError(why))

    async def _call(self, op: str, **args: Any) -> Any:
        ws = self._ws
        if ws is None or ws.closed or not self._connected.is_set():
            raise EngineError(f"not connected to the hub at {self.url} (reconnecting); nothing was sent")
        self._next_id += 1
        call_id = self._next_id
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._calls[call_id] = fut
        payload = {"type": "call", "id": call_id, "op": op, "args": wire.encode(args)}
        try:
            await ws.send_str(json.dumps(payload, separators=(",", ":"), ensure_ascii=False))
            reply = await asyncio.wait_for(fut, self._call_timeout)
        except TimeoutError:
            raise EngineError(f"no answer from the hub to {op} within {self._call_timeout:g} s") from None
        except (ConnectionResetError, RuntimeError, aiohttp.ClientError) as exc:
            raise EngineError(f"{op}: connection to the hub failed ({exc})") from None
        finally:
            self._calls.pop(call_id, None)
        if reply.get("ok"):
            return wire.decode(reply.get("result"))
        error = reply.get("error") or {}
        message = str(error.get("message") or "the hub refused the command")
        if error.get("kind") == "UnknownSymbol":
            raise UnknownSymbol(message)
        raise EngineError(message)

    # ------------------------------------------------------------------ EngineClient

    async def snapshot(self) -> EngineSnapshot:
        snap = await self._call("snapshot")
        if not isinstance(snap, EngineSnapshot):
            raise EngineError("the hub sent something that is not a snapshot")
        if self._link_status is not None:
            others = tuple(c for c in snap.connections if c.broker != HUB_LINK)
            snap = replace(snap, connections=(*others, self._link_status))
        for p in snap.positions:
            self._positions.add((p.account, p.symbol))
        for f in snap.fills:
            self._fill_ids.add((f.broker, f.fill_id))
        for inst in snap.instruments:
            self._instruments.add(inst)
        for alert in snap.alerts:
            self._alerts[alert.alert_id] = alert
        return snap

    def events(self, name: str = "remote-client") -> Subscription:
        return self._bus.subscribe(name)

    def instrument(self, symbol: str) -> Instrument:
        return self._instruments.resolve(symbol)

    async def preview(self, request: OrderRequest) -> RiskDecision:
        return await self._call("preview", request=request)

    async def broker_preview(self, request: OrderRequest) -> OrderPreview:
        return await self._call("broker_preview", request=request)

    async def place(self, request: OrderRequest) -> Order:
        try:
            return await self._call("place", request=request)
        except EngineError as exc:
            if "nothing was sent" in str(exc):
                raise
            raise EngineError(
                f"{exc}. The order may or may not have reached the hub: look for client order id "
                f"{request.client_order_id} in the blotter before sending it again"
            ) from None

    async def cancel(self, account: str, order_id: str) -> Order:
        return await self._call("cancel", account=account, order_id=order_id)

    async def cancel_all(self, account: str | None = None, symbol: str | None = None) -> list[Order]:
        return await self._call("cancel_all", account=account, symbol=symbol)

    async def modify(
        self,
        account: str,
        order_id: str,
        *,
        quantity: int | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> Order:
        return await self._call(
            "modify",
            account=account,
            order_id=order_id,
            quantity=quantity,
            limit_price=limit_price,
            stop_price=stop_price,
        )

    async def flatten(self, account: str | None = None, symbol: str | None = None) -> list[Order]:
        return await self._call("flatten", account=account, symbol=symbol)

    async def subscribe(self, symbols: Iterable[str]) -> list[str]:
        syms = list(symbols)
        resolved = await self._call("subscribe", symbols=syms)
        self._symbols.extend(resolved)
        return resolved

    async def unsubscribe(self, symbols: Iterable[str]) -> None:
        syms = [self._instruments.resolve(s).symbol for s in symbols]
        for s in syms:
            if s in self._symbols:
                self._symbols.remove(s)
        await self._call("unsubscribe", symbols=syms)

    async def lock(self, account: str | None, reason: str) -> list[AccountLock]:
        return await self._call("lock", account=account, reason=reason)

    # -- grouped orders

    async def preview_group(self, group: OrderGroup) -> RiskDecision:
        return await self._call("preview_group", group=group)

    async def place_group(self, group: OrderGroup) -> list[Order]:
        try:
            return await self._call("place_group", group=group)
        except EngineError as exc:
            if "nothing was sent" in str(exc):
                raise
            raise EngineError(
                f"{exc}. The group may or may not have reached the hub: look for its orders in the blotter "
                f"before sending it again"
            ) from None

    # -- market data

    async def find_instrument(self, symbol: str) -> Instrument:
        try:
            return self._instruments.resolve(symbol)
        except UnknownSymbol:
            inst = await self._call("find_instrument", symbol=symbol)
        if not isinstance(inst, Instrument):
            raise EngineError("the hub sent something that is not an instrument")
        self._instruments.add(inst)
        return inst

    async def bars(self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime | None = None) -> list[Bar]:
        return await self._call("bars", symbol=symbol, timeframe=timeframe, start=start, end=end)

    async def _feed(self, kind: str, symbols: Iterable[str]) -> list[str]:
        resolved = await self._call(f"subscribe_{kind}", symbols=list(symbols))
        self._feeds[kind].extend(resolved)
        return resolved

    async def _unfeed(self, kind: str, symbols: Iterable[str]) -> None:
        syms = [self._instruments.resolve(s).symbol for s in symbols]
        for s in syms:
            if s in self._feeds[kind]:
                self._feeds[kind].remove(s)
        await self._call(f"unsubscribe_{kind}", symbols=syms)

    async def subscribe_depth(self, symbols: Iterable[str]) -> list[str]:
        return await self._feed("depth", symbols)

    async def unsubscribe_depth(self, symbols: Iterable[str]) -> None:
        await self._unfeed("depth", symbols)

    async def subscribe_trades(self, symbols: Iterable[str]) -> list[str]:
        return await self._feed("trades", symbols)

    async def unsubscribe_trades(self, symbols: Iterable[str]) -> None:
        await self._unfeed("trades", symbols)

    async def option_chain(self, underlying: str, expiry: date | None = None) -> OptionChain:
        chain = await self._call("option_chain", underlying=underlying, expiry=expiry)
        for row in chain.rows:
            for q in (row.call, row.put):
                if q is not None:
                    self._instruments.add(q.instrument)
        return chain

    async def search_instruments(self, text: str, limit: int = 20) -> list[Instrument]:
        found = await self._call("search_instruments", text=text, limit=limit)
        for inst in found:
            self._instruments.add(inst)
        return found

    # -- price alerts (held and fired by the hub)

    async def add_alert(self, spec: AlertSpec, replaces: int | None = None) -> Alert:
        return await self._call("add_alert", spec=spec, replaces=replaces)

    async def list_alerts(self) -> list[Alert]:
        return await self._call("list_alerts")

    async def remove_alert(self, alert_id: int) -> Alert:
        return await self._call("remove_alert", alert_id=alert_id)

    # -- P&L history (from the hub's journal)

    async def pnl_history(self, days: int = 30, account: str | None = None) -> PnlReport:
        return await self._call("pnl_history", days=days, account=account)

    # -- interactive login (runs on the hub: the tokens live where the broker connection does)

    async def login_start(self, broker: str) -> LoginPrompt:
        return await self._call("login_start", broker=broker)

    async def login_complete(self, broker: str, prompt: LoginPrompt, pasted_url: str) -> LoginResult:
        return await self._call("login_complete", broker=broker, prompt=prompt, pasted_url=pasted_url)

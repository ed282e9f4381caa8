"""The Tradovate broker: REST + trading socket + market-data socket behind the Broker contract.

Composed from the package's rooms: ``config`` (options, credentials), ``auth`` (login, renewal,
device id), ``rest`` (the one REST call), ``stream`` (the socket protocol), ``mapping`` (vendor
JSON <-> core models, pure), ``replica`` (the user's entities by id and the core models they add
up to), ``sync`` (keeping the replica current, emitting what changed) and ``instruments``
(contract lookup and search). This module owns the lifecycle, the order verbs and the event
stream: every (re)connection replaces the replica with a fresh snapshot and emits what changed,
so a fill that happened while a socket was down still arrives.

Orders are sent once. A request that got no answer raises (``ConnectionFailed`` with ``sent``
saying whether it may have arrived) and the router, the one owner of retry, looks the client
order id up (``find_order``: the ``command`` entity carries ``clOrdId``) before anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from tterm import __version__
from tterm.brokers.common.backoff import Backoff
from tterm.brokers.common.clock import as_clock
from tterm.brokers.common.http import HttpClient
from tterm.brokers.common.ratelimit import RateLimiter
from tterm.brokers.common.streams import SocketSupervisor, StreamStates
from tterm.brokers.common.token_store import TokenStore, token_path
from tterm.brokers.common.tokens import Token, TokenManager
from tterm.brokers.tradovate import mapping as m
from tterm.brokers.tradovate.auth import DEVICE_ID_FILE, TradovateAuth, load_device_id
from tterm.brokers.tradovate.config import TradovateCredentials, TradovateSettings
from tterm.brokers.tradovate.instruments import TradovateInstruments
from tterm.brokers.tradovate.mapping import Refused
from tterm.brokers.tradovate.replica import Replica, View
from tterm.brokers.tradovate.rest import ENDPOINT_LIMITS, GLOBAL_LIMITS, NotFound, TradovateRest
from tterm.brokers.tradovate.stream import SocketError, TradovateSocket
from tterm.brokers.tradovate.sync import ReplicaSync
from tterm.core.broker import AuthError, Broker, BrokerError, Capabilities, UnknownOrder
from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.models import (
    Account,
    AccountSnapshot,
    ConnectionState,
    Fill,
    GroupKind,
    Instrument,
    ModelError,
    Notice,
    Order,
    OrderGroup,
    OrderRequest,
    OrderRole,
    OrderSource,
    OrderType,
    Position,
    Quote,
    Side,
)
from tterm.core.redact import REDACTOR, Redactor

log = logging.getLogger(__name__)

TRADING, MARKET_DATA = "trading", "market data"


class TradovateBroker(Broker):
    """A Tradovate login (demo or live) with all its accounts."""

    capabilities = Capabilities(
        brackets=True,  # placeoso: entry with a take-profit and a stop-loss
        oco=True,  # placeoco
        otoco=True,  # placeoso with two brackets: the exits work as an OCO pair once the entry fills
        multi_leg=False,
        futures=True,
        equities=False,
        options=False,
        client_order_id_lookup=True,  # the command entity carries clOrdId
        search=True,  # contract/suggest
    )

    def __init__(
        self,
        name: str,
        settings: TradovateSettings,
        credentials: TradovateCredentials,
        *,
        instruments: InstrumentMaster,
        clock: Any = None,
        data_dir: Path,
        redactor: Redactor | None = None,
    ) -> None:
        super().__init__(name, is_live=settings.is_live)
        self.settings = settings
        self._creds = credentials
        self._instruments = instruments
        self._clock = as_clock(clock)
        self._redactor = redactor or REDACTOR
        self._data_dir = Path(data_dir)
        self._device_path = settings.device_id_path or self._data_dir / DEVICE_ID_FILE
        # Every vendor-facing wait (limits, penalties, tokens) runs on the injected clock.
        self._limiter = RateLimiter(
            GLOBAL_LIMITS,
            per_key=ENDPOINT_LIMITS,
            time=lambda: self._clock.now().timestamp(),
            sleep=self._clock.sleep,
        )
        self._http = HttpClient(
            settings.rest_base,
            timeout=settings.request_timeout,
            limiter=self._limiter,
            user_agent=f"tterm/{__version__}",
            redactor=self._redactor,
        )
        self._rest = TradovateRest(
            self._http,
            clock=self._clock,
            redactor=self._redactor,
            penalty_retries=settings.penalty_retries,
            backoff=self._backoff(settings.backoff_base, settings.backoff_cap),
        )
        self._tokens: TokenManager | None = None
        self._replica = Replica()
        self._quotes = m.QuoteBook()
        self._view = View(name, self._replica, instruments, is_live=self.is_live, mark=self._quotes.mark)
        self.provider = TradovateInstruments(
            self._rest, self._replica, instruments, self._view, on_learned=self.learned
        )
        self._sync = ReplicaSync(
            name,
            self._replica,
            self._view,
            self.provider,
            self._rest,
            emit=self.emit,
            redactor=self._redactor,
            timeout=settings.socket_request_timeout,
        )
        self._quote_subs: dict[str, int] = {}
        self._streams = StreamStates([TRADING, MARKET_DATA] if settings.market_data else [TRADING])
        self._last_status: tuple[ConnectionState, str] | None = None
        self._trading = self._supervisor(TRADING, self._trading_ready)
        self._md = self._supervisor(MARKET_DATA, self._md_ready)
        self._connected = False
        self.device_id: str | None = None

    @staticmethod
    def _backoff(base: float, cap: float) -> Backoff:
        return Backoff(base=base, cap=max(cap, base))

    def _supervisor(self, which: str, on_ready: Callable[[TradovateSocket], Any]) -> SocketSupervisor[TradovateSocket]:
        s = self.settings
        return SocketSupervisor(
            name=which,
            label=f"tradovate-{which.replace(' ', '-')}",
            connect=lambda: self._open_socket(which),
            on_ready=on_ready,
            on_state=lambda state, detail: self._socket_state(which, state, detail),
            stale_after=s.stale_after,
            watchdog_interval=s.watchdog_interval,
            backoff=self._backoff(s.reconnect_base, s.reconnect_cap),
            redactor=self._redactor,
        )

    # ================================================================== lifecycle

    async def connect(self) -> None:
        if self._connected:
            return
        self.device_id = load_device_id(self._device_path)
        auth = TradovateAuth(
            self._rest, self._creds, self.settings, device_id=self.device_id, clock=self._clock, redactor=self._redactor
        )
        self._tokens = TokenManager(
            login=auth.login,
            renew=auth.renew,
            clock=self._clock,
            renew_ahead=timedelta(seconds=self.settings.renew_ahead),
            check_interval=self.settings.token_check_interval,
            on_change=self._on_token,
            on_error=self._on_token_error,
            retry=self._backoff(self.settings.backoff_base, max(self.settings.backoff_cap, 1.0)),
            # Renewed sessions survive a restart and are shared with other tterm processes on this
            # data dir: a start reuses a live session instead of opening another (at most two).
            store=TokenStore(
                token_path(self._data_dir, self.name),
                owner=f"{self._creds.username}@{self.settings.rest_base}",
                redactor=self._redactor,
            ),
        )
        self._rest.tokens = self._tokens
        try:
            await self._tokens.get()
            self._sync.start()
            await self._trading.start(background_retry=True)
            if not self._trading.ready.is_set():
                # The trading socket is blocked or down but REST may answer: start from a REST
                # snapshot (orders stay held until the stream is back) and keep retrying the socket.
                await self._sync_from_rest()
                text = (
                    f"the Tradovate trading socket did not connect ({self._trading.last_error}); showing "
                    "state read over REST and retrying; new orders are held until the stream is back"
                )
                self.emit(Notice(level="warning", text=text, source=self.name))
            if self.settings.market_data:
                await self._md.start(background_retry=True)
            self._tokens.start()
        except BaseException:
            await self._shutdown()
            raise
        self._connected = True
        self._publish_state()

    async def close(self) -> None:
        await self._shutdown()
        self._connected = False
        self._last_status = None
        self.set_state(ConnectionState.DOWN, "closed")
        self.mark_closed()

    async def _shutdown(self) -> None:
        if self._tokens is not None:
            await self._tokens.stop()
        await self._md.stop()
        await self._trading.stop()
        await self._sync.stop()
        await self._http.aclose()

    # ================================================================== session (token)

    def token_expires_in(self) -> timedelta | None:
        """Time left on the Tradovate session (None before login)."""
        return self._tokens.expires_in() if self._tokens is not None else None

    @property
    def session_expires_at(self) -> datetime | None:
        return self._tokens.expires_at if self._tokens is not None else None

    def _on_token(self, token: Token) -> None:
        # Structured, for the status bar's countdown: tterm renews it itself, no person needed.
        self.set_auth_expiry(token.expires_at, "session", needs_person=False)

    def _on_token_error(self, exc: Exception) -> None:
        left = self.token_expires_in()
        minutes = int(left.total_seconds() // 60) if left is not None else 0
        text = self._redactor.scrub(str(exc))
        self.emit(
            Notice(
                level="warning" if minutes > 2 else "error",
                text=f"Tradovate session renewal failed ({text}); retrying. The session ends in {minutes} min.",
                source=self.name,
            )
        )

    # ================================================================== connection state

    def _socket_state(self, which: str, state: ConnectionState, detail: str) -> None:
        if which not in self._streams:
            return
        self._streams.set(which, state, detail)
        if self._connected or state is not ConnectionState.CONNECTED:
            self._publish_state()

    def _publish_state(self) -> None:
        status = self._streams.rollup()
        if self._last_status != status:
            self._last_status = status
            self.set_state(*status)

    @property
    def trading_state(self) -> ConnectionState:
        return self._streams.state(TRADING)

    # ================================================================== sockets

    async def _open_socket(self, which: str) -> TradovateSocket:
        assert self._tokens is not None
        md = which == MARKET_DATA
        s = self.settings
        for attempt in (1, 2):
            token = await self._tokens.get()
            value = str(token.extra.get("md_token") or token.value) if md else token.value
            sock = TradovateSocket(
                s.md_base if md else s.ws_base,
                name=which,
                clock=self._clock,
                redactor=self._redactor,
                on_event=self._on_md_event if md else self._on_trading_event,
                limiter=self._limiter,
                heartbeat_interval=s.heartbeat_interval,
                request_timeout=s.socket_request_timeout,
                connect_timeout=s.connect_timeout,
                close_timeout=s.close_timeout,
                penalty_retries=s.penalty_retries,
                backoff=self._backoff(s.backoff_base, max(s.backoff_cap, 1.0)),
            )
            sock.add_frame_listener(self.touch)
            try:
                await sock.open(value)
                return sock
            except AuthError:
                if attempt == 2:
                    raise
                log.info("Tradovate %s socket refused the session; starting a new session", which)
                await self._tokens.invalidate(token)
        raise AuthError(f"Tradovate {which} socket refused every session")  # pragma: no cover

    async def _trading_ready(self, sock: TradovateSocket) -> None:
        """Take the snapshot; events that follow it are applied after it, in order."""
        assert self._tokens is not None
        token = await self._tokens.get()
        hook, done = self._sync.snapshot_hook()
        await sock.request("user/syncrequest", {"users": [token.extra["user_id"]]}, on_reply=hook)
        await asyncio.wait_for(done, self.settings.socket_request_timeout)

    async def _sync_from_rest(self) -> None:
        """Replace the replica with a REST snapshot, through the same ordered inbox as socket syncs."""
        await self._sync.apply_snapshot(await self._rest.snapshot())

    async def refresh(self) -> None:
        """Re-read the whole trading state over REST and emit whatever changed (a manual resync)."""
        await self._sync_from_rest()

    async def _md_ready(self, sock: TradovateSocket) -> None:
        """Subscribe every watched contract again (after a reconnect the server forgot them)."""
        for name in list(self._quote_subs):
            try:
                await sock.request("md/subscribeQuote", {"symbol": name})
            except SocketError as exc:
                self.emit(Notice(level="warning", text=f"quotes for {name}: {exc}", source=self.name))

    def _on_trading_event(self, event: str, data: Any) -> None:
        if event == "props":
            self._sync.props(data)
        elif event == "shutdown":
            self._on_shutdown("trading", data)

    def _on_md_event(self, event: str, data: Any) -> None:
        if event == "md":
            if isinstance(data, dict):
                for q in data.get("quotes") or ():
                    if isinstance(q, dict):
                        quote = self._quotes.merge(q, self.provider.instrument_of_contract_id)
                        if quote is not None:
                            self.emit(quote)
        elif event == "shutdown":
            self._on_shutdown("market data", data)

    def _on_shutdown(self, which: str, data: Any) -> None:
        code = data.get("reasonCode", "") if isinstance(data, dict) else ""
        why = data.get("reason", "") if isinstance(data, dict) else ""
        text = " ".join(str(x) for x in (code, why) if x) or "no reason given"
        text = f"Tradovate is closing the {which} connection: {text}"
        self.emit(Notice(level="warning", text=text, source=self.name))

    # ================================================================== queries

    def last_quote(self, symbol: str) -> Quote | None:
        """The merged quote for a contract symbol, if it is streaming."""
        return self._quotes.last(symbol)

    async def accounts(self) -> list[Account]:
        return self._view.accounts()

    async def snapshots(self) -> list[AccountSnapshot]:
        out = []
        for account_id, acct in self._replica.accounts.items():
            if not m.account_usable(acct):
                continue
            snap = self._view.snapshot(account_id)
            if snap is None:
                # No cash entity in the snapshot: ask for the server-side balance.
                snap = self._view.server_snapshot(acct, await self._rest.cash_balance_snapshot(account_id))
            out.append(snap)
        return out

    async def positions(self, account: str | None = None) -> list[Position]:
        out = []
        for p in self._replica.positions.values():
            if self._view.in_account(account, p.get("accountId")) and int(p.get("netPos") or 0):
                pos = self._view.position(p)
                if pos is not None:
                    out.append(pos)
        return out

    async def orders(self, account: str | None = None) -> list[Order]:
        out = []
        for oid, o in sorted(self._replica.orders.items()):
            if self._view.in_account(account, o.get("accountId")):
                order = self._view.order(oid)
                if order is not None:
                    out.append(order)
        return out

    async def fills(self, account: str | None = None) -> list[Fill]:
        out = []
        for fid in sorted(self._replica.fills):
            fill = self._view.fill(fid)
            if fill is not None and (account is None or fill.account == account):
                out.append(fill)
        return out

    async def find_order(self, account: str, client_order_id: str) -> Order | None:
        """The order sent with ``client_order_id``: from the stream's ``command`` entities if they
        arrived, else from Tradovate's command list (A4: ``command.clOrdId``)."""
        replica = self._replica
        oid = replica.order_by_clord.get(client_order_id)
        if oid is None:
            for command in await self._rest.entity_list("command"):
                replica.put_command(command)
            oid = replica.order_by_clord.get(client_order_id)
        if oid is None:
            return None
        if oid not in replica.orders:
            try:
                await self._sync.load_order(oid)
            except NotFound:
                return None
        order = self._view.order(oid)
        return order if order is not None and order.account == account else None

    # ================================================================== instruments and quotes

    async def lookup_instrument(self, symbol: str) -> Instrument | None:
        return await self.provider.lookup(symbol)

    async def search_instruments(self, text: str, limit: int = 20) -> list[Instrument]:
        return await self.provider.search(text, limit)

    async def subscribe_quotes(self, symbols: Iterable[str]) -> None:
        for symbol in [symbols] if isinstance(symbols, str) else symbols:
            try:
                contract, _ = await self.provider.contract_for_symbol(symbol)
            except Refused as exc:
                raise BrokerError(str(exc), sent=False) from None
            name = str(contract["name"])
            await self.provider.ensure_instrument(contract)
            if name in self._quote_subs:
                continue
            self._quote_subs[name] = contract["id"]
            sock = self._md.socket
            if sock is not None and sock.is_open:
                try:
                    await sock.request("md/subscribeQuote", {"symbol": name})
                except SocketError as exc:
                    self._quote_subs.pop(name, None)
                    raise BrokerError(f"Tradovate quotes for {name}: {exc}") from None

    async def unsubscribe_quotes(self, symbols: Iterable[str]) -> None:
        for symbol in [symbols] if isinstance(symbols, str) else symbols:
            try:
                name = self._instruments.resolve(symbol).symbol
            except (UnknownSymbol, ModelError) as exc:
                raise BrokerError(str(exc), sent=False) from None
            cid = self._quote_subs.pop(name, None)
            if cid is None:
                continue
            self._quotes.drop(cid)
            sock = self._md.socket
            if sock is not None and sock.is_open:
                with contextlib.suppress(SocketError):
                    await sock.request("md/unsubscribeQuote", {"symbol": name})

    # ================================================================== orders

    def _held_reason(self) -> str | None:
        state, detail = self._streams.get(TRADING)
        if not self.settings.hold_orders_when_stale or state is ConnectionState.CONNECTED:
            return None
        return (
            f"held: the Tradovate trading stream is {state.value} ({detail or 'no details'}); tterm cannot see "
            "fills or positions right now, so the order was not sent"
        )

    def _net_position(self, account_id: int, contract_id: int) -> int:
        return sum(
            int(p.get("netPos") or 0)
            for p in self._replica.positions.values()
            if p.get("accountId") == account_id and p.get("contractId") == contract_id
        )

    async def place(self, request: OrderRequest) -> Order:
        """Send ``request`` (with its bracket as an OSO), once. Refusals come back as REJECTED orders."""
        try:
            if request.legs:
                raise Refused("Tradovate in tterm does not take multi-leg orders")
            if request.quantity <= 0:
                raise Refused(f"quantity must be a positive number of contracts, got {request.quantity}")
            acct = self._view.vendor_account(request.account)
            if not request.reduce_only and (held := self._held_reason()):
                raise Refused(held)
            contract, inst = await self.provider.contract_for_symbol(request.symbol)
            await self.provider.ensure_instrument(contract)
            limit, stop = m.checked_prices(request, inst)
            if request.reduce_only:
                net = self._net_position(acct["id"], contract["id"])
                if net == 0 or (net > 0) == (request.side is Side.BUY):
                    raise Refused("reduce-only: the order would open or add to a position")
                if request.quantity > abs(net):
                    raise Refused(f"reduce-only: {request.quantity} contracts would reverse the {net:+d} position")
            body = m.order_body(request, acct, contract, limit, stop, is_automated=self.settings.is_automated)
            children = []
            if request.bracket is not None:
                children = m.bracket_children(request, inst, limit, stop, self._quotes.last(inst.symbol))
        except Refused as exc:
            return m.local_reject(request, str(exc), self.name)
        for key, (_, child, _) in zip(("bracket1", "bracket2"), children, strict=False):
            body[key] = child
        result = await (self._rest.place_oso(body) if children else self._rest.place_order(body))
        oid = result.get("orderId")
        if not isinstance(oid, int):
            return m.vendor_reject(request, result, self.name, inst.symbol)
        self._view.remember(oid, m.placed(request, acct["id"], contract["id"], limit, stop))
        for key, (role, child, price) in zip(("oso1Id", "oso2Id"), children, strict=False):
            child_id = result.get(key)
            if isinstance(child_id, int):
                tp = role is OrderRole.TAKE_PROFIT
                sent = m.Placed(
                    client_order_id=str(child["clOrdId"]),
                    account_id=acct["id"],
                    contract_id=contract["id"],
                    side=request.side.opposite,
                    quantity=request.quantity,
                    order_type=OrderType.LIMIT if tp else OrderType.STOP,
                    limit_price=price if tp else None,
                    stop_price=None if tp else price,
                    tif=request.tif,
                    role=role,
                    parent_id=oid,
                    source=request.source,
                )
                self._view.remember(child_id, sent)
                self._sync.publish_order(child_id)
        return self._view.order_now(oid)

    async def place_group(self, group: OrderGroup) -> list[Order]:
        """OCO natively (``placeoco``) and OTOCO as an OSO (``placeoso``): the entry, then its exits as
        ``bracket1``/``bracket2``, which Tradovate works as an OCO pair once the entry fills (A5.4)."""
        orders = list(group.orders)
        try:
            m.check_group(group)
            acct = self._view.vendor_account(group.account)
            if not all(r.reduce_only for r in orders) and (held := self._held_reason()):
                raise Refused(held)
            contract, inst = await self.provider.contract_for_symbol(orders[0].symbol)
            await self.provider.ensure_instrument(contract)
            prices = [m.checked_prices(r, inst) for r in orders]
        except Refused as exc:
            return [m.local_reject(r, str(exc), self.name) for r in orders]
        first = orders[0]
        body = m.order_body(first, acct, contract, *prices[0], is_automated=self.settings.is_automated)
        if group.kind is GroupKind.OCO:
            # A5.5: the second order is a RestrainedOrderVersion; it has no quantity of its own.
            body["other"] = m.restrained(orders[1], *prices[1])
            result = await self._rest.place_oco(body)
            raw_ids = [result.get("orderId"), result.get("ocoId")]
        else:
            for key, r, (limit, stop) in zip(("bracket1", "bracket2"), orders[1:], prices[1:], strict=False):
                body[key] = m.restrained(r, limit, stop)
            result = await self._rest.place_oso(body)
            raw_ids = [result.get("orderId"), result.get("oso1Id"), result.get("oso2Id")][: len(orders)]
        ids = [i for i in raw_ids if isinstance(i, int)]
        if len(ids) != len(raw_ids):
            return [m.vendor_reject(r, result, self.name, inst.symbol) for r in orders]
        out = []
        for i, (oid, r, (limit, stop)) in enumerate(zip(ids, orders, prices, strict=True)):
            if group.kind is GroupKind.OTOCO and i > 0:
                sent = m.placed(r, acct["id"], contract["id"], limit, stop, role=m.exit_role(r), parent_id=ids[0])
            else:
                sent = m.placed(r, acct["id"], contract["id"], limit, stop, quantity=first.quantity)
            self._view.remember(oid, sent)
            out.append(self._view.order_now(oid))
        return out

    async def _known_order(self, account: str, order_id: str) -> tuple[int, Order]:
        try:
            oid = int(order_id)
        except ValueError:
            raise UnknownOrder(f"{order_id!r} is not a Tradovate order id", sent=False) from None
        if oid not in self._replica.orders:
            try:
                await self._sync.load_order(oid)
            except NotFound:
                raise UnknownOrder(f"Tradovate has no order {order_id}", sent=False) from None
        order = self._view.order(oid)
        if order is None or order.account != account:
            raise UnknownOrder(f"order {order_id} is not in account {account}", sent=False)
        return oid, order

    async def modify(
        self,
        account: str,
        order_id: str,
        *,
        quantity: int | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> Order:
        """Change a working order. A refusal returns the order unchanged with ``reject_reason`` set."""
        oid, order = await self._known_order(account, order_id)
        if not order.is_open:
            return order.evolve(reject_reason=f"cannot modify: the order is already {order.status.value}")
        inst = self._instruments.resolve(order.symbol)
        try:
            if quantity is not None and quantity <= 0:
                raise Refused(f"quantity must be positive, got {quantity}")
            if limit_price is not None and not order.order_type.needs_limit:
                raise Refused(f"a {order.order_type.value} order has no limit price")
            if stop_price is not None and not order.order_type.needs_stop:
                raise Refused(f"a {order.order_type.value} order has no stop price")
            limit = m.check_price(inst, limit_price, "limit price")
            stop = m.check_price(inst, stop_price, "stop price")
        except Refused as exc:
            return order.evolve(reject_reason=str(exc))
        new_qty = quantity if quantity is not None else order.quantity
        new_limit = limit if limit is not None else order.limit_price
        new_stop = stop if stop is not None else order.stop_price
        version = self._replica.versions.get(oid, {})
        body = m.modify_body(oid, order, version, new_qty, new_limit, new_stop, is_automated=self.settings.is_automated)
        result = await self._rest.modify_order(body)
        if not isinstance(result.get("commandId"), int):
            reason = f"modify refused: {m.failure_words(result.get('failureReason'), result.get('failureText'))}"
            self.emit(Notice(level="warning", text=f"order {order_id}: {reason}", account=account, source=self.name))
            return order.evolve(reject_reason=reason)
        if oid in self._view.placed:
            p = self._view.placed[oid]
            p.quantity, p.limit_price, p.stop_price = new_qty, new_limit, new_stop

        def applied() -> bool:
            now = self._view.order(oid)
            return now is not None and (
                not now.is_open
                or (now.quantity == new_qty and now.limit_price == new_limit and now.stop_price == new_stop)
            )

        if await self._sync.wait_until(applied, self.settings.ack_wait):
            return self._view.order(oid) or order
        return order.evolve(quantity=new_qty, limit_price=new_limit, stop_price=new_stop)

    async def cancel(self, account: str, order_id: str) -> Order:
        """Cancel a working order; waits briefly for Tradovate to confirm it."""
        oid, order = await self._known_order(account, order_id)
        if not order.is_open:
            return order
        result = await self._rest.cancel_order({"orderId": oid, "isAutomated": self.settings.is_automated})
        if not isinstance(result.get("commandId"), int):
            reason = f"cancel refused: {m.failure_words(result.get('failureReason'), result.get('failureText'))}"
            current = self._view.order(oid) or order
            if current.is_open:
                text = f"order {order_id}: {reason}"
                self.emit(Notice(level="warning", text=text, account=account, source=self.name))
                return current.evolve(reject_reason=reason)
            return current

        def gone() -> bool:
            now = self._view.order(oid)
            return now is not None and not now.is_open

        await self._sync.wait_until(gone, self.settings.ack_wait)
        return self._view.order(oid) or order

    async def flatten(self, account: str, symbol: str | None = None) -> list[Order]:
        """Cancel working orders, then liquidate positions (``order/liquidateposition``), for one
        symbol or all of them."""
        try:
            acct = self._view.vendor_account(account)
            contract_id = None
            if symbol is not None:
                contract, _ = await self.provider.contract_for_symbol(symbol)
                contract_id = contract["id"]
        except Refused as exc:
            raise BrokerError(str(exc), sent=False) from None
        results: list[Order] = []
        for oid, o in sorted(self._replica.orders.items()):
            if o.get("accountId") != acct["id"] or (contract_id is not None and o.get("contractId") != contract_id):
                continue
            mapped = self._view.order(oid)
            if mapped is not None and mapped.is_open:
                with contextlib.suppress(UnknownOrder):
                    results.append(await self.cancel(account, str(oid)))
        for p in list(self._replica.positions.values()):
            net = int(p.get("netPos") or 0)
            if p.get("accountId") != acct["id"] or not net:
                continue
            if contract_id is not None and p.get("contractId") != contract_id:
                continue
            results.append(await self._liquidate(acct, p, net))
        return results

    async def _liquidate(self, acct: Mapping[str, Any], p: Mapping[str, Any], net: int) -> Order:
        contract = self._replica.contracts[p["contractId"]]
        inst = self._view.instrument_of(contract)
        symbol = inst.symbol if inst is not None else str(contract.get("name"))
        request = OrderRequest(
            account=self._view.account_id(acct),
            symbol=symbol,
            side=Side.SELL if net > 0 else Side.BUY,
            quantity=abs(net),
            reduce_only=True,
            source=OrderSource.RISK,
        )
        body = {"accountId": acct["id"], "contractId": p["contractId"], "admin": False,
                "isAutomated": self.settings.is_automated}  # fmt: skip
        result = await self._rest.liquidate_position(body)
        oid = result.get("orderId")
        if not isinstance(oid, int):
            order = m.vendor_reject(request, result, self.name, symbol)
            text = f"Tradovate refused to liquidate {symbol} in {order.account}: {order.reject_reason}"
            self.emit(Notice(level="error", text=text, account=order.account, source=self.name))
            return order
        self._view.remember(oid, m.placed(request, acct["id"], p["contractId"], None, None))
        return self._view.order_now(oid)

"""The Schwab broker: Trader API + Market Data + the streamer behind the Broker contract.

Composed from the package's rooms: ``config`` (options, credentials), ``auth`` (the browser login,
refresh, the 7-day login), ``rest`` (the one REST call, limits), ``stream`` (the streamer
protocol), ``symbols`` (Schwab's symbol formats), ``mapping`` / ``market`` (vendor JSON <-> core
models), ``bodies`` (order bodies with the instructions positions call for), ``orders`` (order and
account state, polled) and ``instruments`` (lookup and search). This module owns the lifecycle,
the login states, the order verbs and the streamed quotes.

The login needs a person (``tterm login <name>``, or the terminal's login dialog). Without one,
or once the 7-day refresh token has died, the broker stays up in NEEDS_LOGIN ("log in again:
tterm login <name>"), asks Schwab nothing, refuses orders with that reason, and looks for new
tokens in the token store; when they come it connects by itself.

Orders are sent once. Schwab has no client order id, so a request whose answer was lost is found
by matching (``find_order``: account, symbol, side, quantity, price, time) and the router never
resends on a miss (``client_order_id_lookup=False``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tterm import __version__
from tterm.brokers.common.backoff import Backoff
from tterm.brokers.common.clock import as_clock
from tterm.brokers.common.http import HttpClient
from tterm.brokers.common.streams import SocketSupervisor, StreamStates
from tterm.brokers.common.tokens import Token, TokenManager
from tterm.brokers.schwab import mapping as m
from tterm.brokers.schwab import market as mk
from tterm.brokers.schwab.auth import SchwabLoginFlow, oauth_login, relogin_hint, token_manager, token_store
from tterm.brokers.schwab.bodies import OrderBuilder
from tterm.brokers.schwab.config import SchwabCredentials, SchwabSettings
from tterm.brokers.schwab.instruments import SchwabInstruments
from tterm.brokers.schwab.orders import MATCH_SLACK, OrderSync, Sent
from tterm.brokers.schwab.rest import NotFound, Refusal, SchwabRest
from tterm.brokers.schwab.stream import DISPLACED, SchwabStreamSocket, StreamerInfo, StreamError
from tterm.core.broker import AuthError, Broker, BrokerError, Capabilities, LoginFlow, LoginRequired, UnknownOrder
from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.models import (
    Account,
    AccountSnapshot,
    AssetClass,
    Bar,
    ConnectionState,
    Fill,
    GroupKind,
    Instrument,
    ModelError,
    Notice,
    OptionChain,
    Order,
    OrderGroup,
    OrderPreview,
    OrderRequest,
    OrderType,
    Position,
    Quote,
    Timeframe,
)
from tterm.core.redact import REDACTOR, Redactor

log = logging.getLogger(__name__)
NEW_YORK = ZoneInfo("America/New_York")
STREAM = "streamer"
SERVICES = {AssetClass.EQUITY: mk.EQUITIES, AssetClass.OPTION: mk.OPTIONS, AssetClass.FUTURE: mk.FUTURES}


class SchwabBroker(Broker):
    """A Schwab login (one person, one or more accounts). Every account is live: there is no sandbox."""

    capabilities = Capabilities(
        brackets=True,  # a TRIGGER entry whose child is an OCO pair of exits
        oco=True,  # an OCO container
        otoco=True,  # a TRIGGER holding an OCO pair
        multi_leg=True,  # NET_DEBIT / NET_CREDIT with complexOrderStrategyType
        futures=False,  # the API takes no futures orders (SDEV); futures quotes do stream
        equities=True,
        options=True,
        client_order_id_lookup=False,  # Schwab keeps no client order id: find_order matches fields
        order_types=frozenset(
            {OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP}
        ),
        bars=True,
        timeframes=frozenset(mk.HISTORY),
        option_chain=True,
        search=True,
        interactive_login=True,
    )

    def __init__(
        self,
        name: str,
        settings: SchwabSettings,
        credentials: SchwabCredentials,
        *,
        instruments: InstrumentMaster,
        clock: Any = None,
        data_dir: Path,
        redactor: Redactor | None = None,
    ) -> None:
        super().__init__(name, is_live=True)
        self.settings = settings
        self._creds = credentials
        self._master = instruments
        self._clock = as_clock(clock)
        self._redactor = redactor or REDACTOR
        self._redactor.add(credentials.app_secret)
        self.store = token_store(name, Path(data_dir), credentials, settings, self._redactor)
        self.oauth = oauth_login(name, credentials, settings, self.store, clock=self._clock, redactor=self._redactor)
        self._flow = SchwabLoginFlow(self.oauth, self._login_arrived)
        self._http = HttpClient(
            settings.api_url,
            timeout=settings.request_timeout,
            user_agent=f"tterm/{__version__}",
            redactor=self._redactor,
        )
        self.rest = SchwabRest(
            self._http,
            clock=self._clock,
            redactor=self._redactor,
            data_per_minute=settings.data_per_minute,
            orders_per_minute=settings.orders_per_minute,
            backoff=Backoff(base=settings.backoff_base, cap=max(settings.backoff_cap, settings.backoff_base)),
            login_gone=lambda: self._gone,
            on_login_lost=self._login_lost,
        )
        self.provider = SchwabInstruments(self.rest, instruments, on_learned=self.learned)
        self.sync = OrderSync(
            name,
            self.rest,
            clock=self._clock,
            redactor=self._redactor,
            emit=self.emit,
            resolve=self.provider.resolve,
            strategy_name=self.provider.strategy_name,
            order_poll=settings.order_poll_interval,
            idle_poll=settings.idle_poll_interval,
            account_poll=settings.account_poll_interval,
            active_after_command=settings.active_after_command,
        )
        self._quotes = mk.QuoteBook()
        self.builder = OrderBuilder(
            instruments,
            schwab_symbol=self.provider.schwab,
            held=self.sync.held,
            quote=self._quotes.last,
            today=self._today,
        )
        self._subs: dict[tuple[str, str], str] = {}  # (service, Schwab key) -> tterm symbol
        self._streams = StreamStates([STREAM])
        self._supervisor = SocketSupervisor(
            name=STREAM,
            label=f"{name}-streamer",
            connect=self._open_stream,
            on_ready=self._stream_ready,
            on_state=self._stream_state,
            stale_after=settings.stale_after,
            watchdog_interval=settings.watchdog_interval,
            backoff=Backoff(base=settings.reconnect_base, cap=max(settings.reconnect_cap, settings.reconnect_base)),
            redactor=self._redactor,
        )
        self._tokens: TokenManager | None = None
        self._info: StreamerInfo | None = None
        self._gone: str | None = None  # why the login is gone (nothing is sent while set)
        self._dead_refresh: set[str] = set()
        self._live = False
        self._closing = False
        self._login_event = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self._lost_task: asyncio.Task[None] | None = None
        self._displaced = False
        self._expirations: dict[tuple[str, date], tuple[date, ...]] = {}

    def _today(self) -> date:
        return self._clock.now().astimezone(NEW_YORK).date()

    # ================================================================== lifecycle and the login

    def login_flow(self) -> LoginFlow:
        return self._flow

    async def connect(self) -> None:
        """Connect with the stored login, or come up in NEEDS_LOGIN and wait for one."""
        if self._live:
            return
        self._closing = False
        self._tokens = self._manager()
        self.rest.tokens = self._tokens
        try:
            await self._tokens.get()
        except LoginRequired as exc:
            self._await_login(str(exc), first=True)
            return
        try:
            await self._go_live()
        except LoginRequired as exc:
            self._await_login(str(exc), first=True)
        except BaseException:
            await self._stop_parts()
            raise

    def _manager(self) -> TokenManager:
        return token_manager(
            self.name,
            self.oauth,
            self.store,
            self.settings,
            clock=self._clock,
            on_change=self._on_token,
            on_error=self._on_token_error,
        )

    async def _go_live(self) -> None:
        numbers = await self.rest.account_numbers()
        prefs = await self.rest.preferences()
        self.sync.set_accounts(numbers, prefs, await self.rest.accounts())
        if not self.sync.accounts:
            raise BrokerError("this Schwab login reaches no accounts (approve at least one when logging in)")
        self._info = StreamerInfo.from_preferences(prefs) if self.settings.stream else None
        await self.sync.load()
        assert self._tokens is not None
        self._gone = None
        self._tokens.start()
        self.sync.start()
        if self.settings.stream:
            await self._supervisor.start(background_retry=True)
        else:
            self._streams.set(STREAM, ConnectionState.CONNECTED, "streamer off (stream = false)")
        self._live = True
        self._publish_state(force=True)

    def _await_login(self, reason: str, *, first: bool = False) -> None:
        """NEEDS_LOGIN: say so once, ask Schwab nothing, and watch the token store for a new login."""
        self._gone = f"Schwab login for {self.name} is gone ({_short(reason)}); {relogin_hint(self.name)}"
        self.set_auth_expiry(None, "login", needs_person=True)
        self.set_state(ConnectionState.NEEDS_LOGIN, relogin_hint(self.name))
        if not first:
            self.emit(Notice(level="error", text=self._gone, source=self.name))
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._watch_login(), name=f"{self.name}-login")

    def _login_arrived(self) -> None:
        self._login_event.set()

    async def _watch_login(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._login_event.wait(), self.settings.login_check_interval)
            self._login_event.clear()
            stored = self.store.load()
            refresh = str(stored.extra.get("refresh_token") or "") if stored is not None else ""
            if not refresh or refresh in self._dead_refresh:
                continue
            await self._stop_parts(keep_watcher=True)
            self._tokens = self._manager()
            self.rest.tokens = self._tokens
            try:
                await self._tokens.get()
                self._gone = None
                await self._go_live()
                log.info("%s: logged in to Schwab again", self.name)
                return
            except LoginRequired:
                self._dead_refresh.add(refresh)
                self._gone = self._gone or f"Schwab login for {self.name} is gone; {relogin_hint(self.name)}"
            except (BrokerError, OSError) as exc:
                log.info("%s: the new login did not connect yet (%s)", self.name, self._redactor.scrub(str(exc)))

    def _login_lost(self, exc: LoginRequired) -> None:
        """A refresh was refused (the 7 days are up, a password reset): stop everything, once."""
        if self._gone is not None or self._closing:
            return
        token = self.store.load()
        if token is not None and token.extra.get("refresh_token"):
            self._dead_refresh.add(str(token.extra["refresh_token"]))
        self._gone = f"Schwab login for {self.name} is gone; {relogin_hint(self.name)}"
        self._lost_task = asyncio.get_running_loop().create_task(self._on_lost(str(exc)), name=f"{self.name}-lost")

    async def _on_lost(self, reason: str) -> None:
        await self._stop_parts(keep_watcher=True)
        self._gone = None
        self._await_login(reason)

    def _on_token(self, token: Token) -> None:
        # Structured, for the status bar: the login dies 7 days after it was made unless a person renews it.
        self.set_auth_expiry(self.oauth.login_expires_at(token), "login", needs_person=True)

    def _on_token_error(self, exc: Exception) -> None:
        if isinstance(exc, LoginRequired):
            self._login_lost(exc)
            return
        text = self._redactor.scrub(str(exc))
        self.emit(Notice(level="warning", text=f"Schwab token refresh failed ({text}); retrying", source=self.name))

    async def close(self) -> None:
        self._closing = True
        await self._stop_parts()
        await self._http.aclose()
        self.set_state(ConnectionState.DOWN, "closed")
        self.mark_closed()

    async def _stop_parts(self, *, keep_watcher: bool = False) -> None:
        self._live = False
        if self._tokens is not None:
            await self._tokens.stop()
        await self.sync.stop()
        await self._supervisor.stop()
        self._streams.reset()
        watcher = self._watcher
        if not keep_watcher and watcher is not None and watcher is not asyncio.current_task():
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    # ================================================================== connection state

    def _stream_state(self, state: ConnectionState, detail: str) -> None:
        self._streams.set(STREAM, state, detail)
        if self._live:
            self._publish_state()

    def _publish_state(self, *, force: bool = False) -> None:
        if self._gone is not None:
            return
        state, detail = self._streams.rollup()
        if force or (state, detail) != (self.connection_state, ""):
            self.set_state(state, "" if state is ConnectionState.CONNECTED else detail)

    # ================================================================== the streamer

    async def _open_stream(self) -> SchwabStreamSocket:
        if self._displaced and self.settings.displaced_wait:
            # Another streamer for this user took over (one per user, A8.1): do not push it out at once.
            self._displaced = False
            await asyncio.sleep(self.settings.displaced_wait)
        assert self._tokens is not None
        self._info = StreamerInfo.from_preferences(await self.rest.preferences())
        for attempt in (1, 2):
            token = await self._tokens.get()
            sock = SchwabStreamSocket(
                self._info,
                redactor=self._redactor,
                on_data=self._on_data,
                on_notice=self._on_notice,
                connect_timeout=self.settings.connect_timeout,
                close_timeout=self.settings.close_timeout,
                request_timeout=self.settings.stream_request_timeout,
            )
            sock.add_frame_listener(self.touch)
            try:
                await sock.open(token.value)
                return sock
            except AuthError:
                if attempt == 2:
                    raise
                await self._tokens.invalidate(token)
        raise AuthError("the Schwab streamer refused every token")  # pragma: no cover

    async def _stream_ready(self, sock: SchwabStreamSocket) -> None:
        """Subscribe everything again (a new connection knows nothing) and resync the orders."""
        by_service: dict[str, list[str]] = {}
        for service, key in self._subs:
            by_service.setdefault(service, []).append(key)
        for service, keys in by_service.items():
            await sock.request(service, "SUBS", {"keys": ",".join(keys), "fields": mk.FIELDS[service]})
        assert self._info is not None
        # Account activity only hints that orders changed (A8.5); it also keeps the stream non-empty.
        await sock.request(
            "ACCT_ACTIVITY", "SUBS", {"keys": self._info.correl_id or "Account Activity", "fields": "0,1,2,3"}
        )
        self.sync.nudge(accounts=True)

    def _on_notice(self, code: int, text: str) -> None:
        if code == DISPLACED:
            self._displaced = True
            self.emit(
                Notice(
                    level="warning",
                    source=self.name,
                    text=(
                        "another Schwab streamer connection for this user took over (Schwab allows one per user): "
                        f"quotes stop until tterm reconnects in {self.settings.displaced_wait:.0f}s; close the other "
                        "app's streamer to keep tterm's"
                    ),
                )
            )

    def _on_data(self, service: str, content: list[Any]) -> None:
        if service == "ACCT_ACTIVITY":
            self.sync.nudge()
            return
        for entry in content:
            if not isinstance(entry, dict):
                continue
            symbol = self._subs.get((service, str(entry.get("key") or "")))
            if symbol is None:
                continue
            quote = self._quotes.merge(service, entry, symbol)
            if quote is not None:
                self.emit(quote)

    def last_quote(self, symbol: str) -> Quote | None:
        return self._quotes.last(symbol)

    def _feed_key(self, symbol: str) -> tuple[str, str, str]:
        try:
            inst = self._master.resolve(symbol)
            return SERVICES[inst.asset_class], self.provider.schwab(inst), inst.symbol
        except (UnknownSymbol, ModelError) as exc:
            raise BrokerError(str(exc), sent=False) from None

    async def subscribe_quotes(self, symbols: Iterable[str]) -> None:
        new: dict[str, list[str]] = {}
        for symbol in [symbols] if isinstance(symbols, str) else symbols:
            service, key, core = self._feed_key(symbol)
            if (service, key) not in self._subs:
                self._subs[(service, key)] = core
                new.setdefault(service, []).append(key)
        sock = self._supervisor.socket
        if sock is None or not sock.is_open:
            return  # subscribed when the stream (re)connects
        for service, keys in new.items():
            try:
                await sock.request(service, "ADD", {"keys": ",".join(keys), "fields": mk.FIELDS[service]})
            except StreamError as exc:
                for key in keys:
                    self._subs.pop((service, key), None)
                raise BrokerError(f"Schwab quotes for {', '.join(keys)}: {exc}") from None

    async def unsubscribe_quotes(self, symbols: Iterable[str]) -> None:
        for symbol in [symbols] if isinstance(symbols, str) else symbols:
            service, key, core = self._feed_key(symbol)
            if self._subs.pop((service, key), None) is None:
                continue
            self._quotes.drop(service, key, core)
            sock = self._supervisor.socket
            if sock is not None and sock.is_open:
                with contextlib.suppress(StreamError):
                    await sock.request(service, "UNSUBS", {"keys": key})

    async def drop_stream(self) -> None:
        """Close the streamer as a network fault would (tests); the supervisor reconnects."""
        sock = self._supervisor.socket
        if sock is not None:
            await sock.close("dropped")

    # ================================================================== queries

    async def accounts(self) -> list[Account]:
        return list(self.sync.accounts.values())

    async def snapshots(self) -> list[AccountSnapshot]:
        return list(self.sync.snapshots.values())

    async def positions(self, account: str | None = None) -> list[Position]:
        return [p for (a, _), p in self.sync.positions.items() if account is None or a == account]

    async def orders(self, account: str | None = None) -> list[Order]:
        return [x.order for x in self.sync.orders.values() if account is None or x.order.account == account]

    async def fills(self, account: str | None = None) -> list[Fill]:
        today = self._today()
        return [
            f
            for f in self.sync.fills.values()
            if (account is None or f.account == account) and f.ts.astimezone(NEW_YORK).date() == today
        ]

    async def find_order(self, account: str, client_order_id: str) -> Order | None:
        """The order ``client_order_id`` became. Schwab keeps no client order id: an order tterm saw
        placed is known; one whose answer was lost is matched on account, symbol, side, quantity,
        price and time (a miss is not proof it is absent: the router does not resend)."""
        for x in self.sync.orders.values():
            if x.order.client_order_id == client_order_id and x.order.account == account:
                return x.order
        sent = self.sync.placing.get(client_order_id)
        if sent is None or sent.request.account != account:
            return None
        now = self._clock.now()
        rows = await self.rest.orders(sent.sent_at - MATCH_SLACK, now + timedelta(minutes=1))
        return self.sync.match(client_order_id, rows)

    # ================================================================== market data

    async def lookup_instrument(self, symbol: str) -> Instrument | None:
        return await self.provider.lookup(symbol)

    async def search_instruments(self, text: str, limit: int = 20) -> list[Instrument]:
        return await self.provider.search(text, limit)

    async def bars(self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime | None = None) -> list[Bar]:
        if timeframe not in mk.HISTORY:
            raise self.not_supported(f"{timeframe.value} bars")
        inst = self._instrument(symbol)
        if inst.asset_class is AssetClass.OPTION:
            raise self.not_supported("bars of options", "Schwab's price history covers shares, ETFs and indexes")
        end = end or self._clock.now()
        query = mk.HISTORY[timeframe]
        out: list[Bar] = []
        for a, b in mk.history_windows(timeframe, start, end):
            body = await self.rest.price_history(query.params(self.provider.schwab(inst), a, b))
            out.extend(mk.bars_of(body, inst.symbol, timeframe, a, b))
        seen: dict[datetime, Bar] = {b.start: b for b in out}
        return [seen[k] for k in sorted(seen)]

    async def option_chain(self, underlying: str, expiry: date | None = None) -> OptionChain:
        inst = self._instrument(underlying)
        if inst.asset_class is not AssetClass.EQUITY:
            raise BrokerError(f"{inst.symbol}: Schwab's chains are for shares, ETFs and indexes", sent=False)
        symbol = self.provider.schwab(inst)
        key = (symbol, self._today())
        if key not in self._expirations:
            self._expirations[key] = mk.expirations_of(await self.rest.expirations(symbol))
        expiries = tuple(d for d in self._expirations[key] if d >= self._today())
        if not expiries:
            raise BrokerError(f"Schwab lists no option expiries for {inst.symbol}", sent=False)
        if expiry is None:
            expiry = expiries[0]
        elif expiry not in expiries:
            listed = ", ".join(f"{d:%Y-%m-%d}" for d in expiries[:8])
            raise BrokerError(
                f"{inst.symbol} has no options expiring {expiry:%Y-%m-%d} (listed: {listed}...)", sent=False
            )
        body = await self.rest.chain(symbol, expiry.isoformat(), self.settings.chain_strikes)
        try:
            chain = mk.chain_of(
                body,
                underlying=inst.symbol,
                expiry=expiry,
                expiries=expiries,
                broker=self.name,
                instrument=self.provider.chain_instrument,
            )
        except ValueError as exc:
            raise BrokerError(str(exc), sent=False) from None
        for row in chain.rows:
            for q in (row.call, row.put):
                if q is not None:
                    self.provider._learn(q.instrument)
        return chain

    def _instrument(self, symbol: str) -> Instrument:
        try:
            return self._master.resolve(symbol)
        except (UnknownSymbol, ModelError) as exc:
            raise BrokerError(str(exc), sent=False) from None

    # ================================================================== orders

    def _refused_login(self, request: OrderRequest) -> Order | None:
        if self._gone is not None:
            return m.local_reject(request, self._gone, self.name)
        if not self._live:
            return m.local_reject(request, f"Schwab ({self.name}) is not connected yet; nothing was sent", self.name)
        return None

    async def _fresh_positions(self, account: str) -> None:
        """The account's positions now: the instructions (open or close) depend on them."""
        row = await self.rest.account(self.sync.vendor(account))
        self.sync._apply_accounts([row], emit=True)

    async def preview_order(self, request: OrderRequest) -> OrderPreview:
        """Schwab's previewOrder: what the order would cost and whether Schwab would take it."""
        if (refused := self._refused_login(request)) is not None:
            raise BrokerError(refused.reject_reason, sent=False)
        try:
            h = self.sync.vendor(request.account)
            await self._fresh_positions(request.account)
            body, _ = self.builder.body(request)
        except m.Refused as exc:
            raise BrokerError(str(exc), sent=False) from None
        try:
            return mk.preview_of(await self.rest.preview(h, body), self.name)
        except Refusal as exc:
            return OrderPreview(broker=self.name, accepted=False, rejects=(exc.reason,))

    async def place(self, request: OrderRequest) -> Order:
        """Send ``request`` (a bracket as a TRIGGER), once. Refusals come back as REJECTED orders."""
        if (refused := self._refused_login(request)) is not None:
            return refused
        try:
            h = self.sync.vendor(request.account)
            await self._fresh_positions(request.account)
            body, children = self.builder.body(request)
        except m.Refused as exc:
            return m.local_reject(request, str(exc), self.name)
        if self.settings.preview_orders:
            preview = mk.preview_of(await self.rest.preview(h, body), self.name)
            if not preview.accepted:
                return m.local_reject(request, f"Schwab's preview refuses it: {'; '.join(preview.rejects)}", self.name)
        known = m.Known(
            request.client_order_id,
            symbol=request.symbol if request.legs else "",
            side=request.side,
            source=request.source,
        )
        root = await self._send(request, h, body)
        if isinstance(root, Order):
            return root
        self.sync.remember(root, known)
        row = await self._read_back(h, root)
        if row is not None and children:
            oco = row.get("childOrderStrategies") or []
            nodes = (
                oco[0].get("childOrderStrategies", [oco[0]])
                if oco and oco[0].get("orderStrategyType") == "OCO"
                else oco
            )
            for node, child in zip(nodes, children, strict=False):
                self.sync.remember(
                    str(node.get("orderId")),
                    m.Known(child.client_order_id, side=request.side.opposite, source=request.source, role=child.role),
                )
        return self._after_send(request, root, row)

    async def place_group(self, group: OrderGroup) -> list[Order]:
        """OCO as an OCO container; OTOCO as a TRIGGER holding an OCO pair (A7), in one request."""
        orders = list(group.orders)
        first = orders[0]
        if (refused := self._refused_login(first)) is not None:
            return [m.local_reject(o, refused.reject_reason, self.name) for o in orders]
        try:
            h = self.sync.vendor(group.account)
            await self._fresh_positions(group.account)
            body = self.builder.group(group)
        except m.Refused as exc:
            return [m.local_reject(o, str(exc), self.name) for o in orders]
        root = await self._send(first, h, body)
        if isinstance(root, Order):
            return [root] + [m.local_reject(o, root.reject_reason, self.name) for o in orders[1:]]
        row = await self._read_back(h, root)
        if group.kind is GroupKind.OCO:
            nodes = list((row or {}).get("childOrderStrategies") or [])
        else:
            self.sync.remember(root, m.Known(first.client_order_id, side=first.side, source=first.source))
            inner = ((row or {}).get("childOrderStrategies") or [{}])[0]
            nodes = list(inner.get("childOrderStrategies") or [])
        pairs = zip(orders if group.kind is GroupKind.OCO else orders[1:], nodes, strict=False)
        for o, node in pairs:
            role = (
                None
                if group.kind is GroupKind.OCO
                else (m.OrderRole.TAKE_PROFIT if o.order_type is OrderType.LIMIT else m.OrderRole.STOP_LOSS)
            )
            self.sync.remember(
                str(node.get("orderId")), m.Known(o.client_order_id, side=o.side, source=o.source, role=role)
            )
        if row is not None:
            self.sync.apply_orders([row], emit=True)
        out = []
        for o in orders:
            found = next(
                (x.order for x in self.sync.orders.values() if x.order.client_order_id == o.client_order_id), None
            )
            out.append(
                found
                or Order.from_request(
                    o, order_id=f"pending-{o.client_order_id}", status=m.OrderStatus.PENDING, broker=self.name
                )
            )
        return out

    async def _send(self, request: OrderRequest, account_hash: str, body: m.JSON) -> str | Order:
        """POST the body once; the new root order's id, or the REJECTED order Schwab refused."""
        limit, stop = request.limit_price, request.stop_price
        symbols = tuple(leg.symbol for leg in request.legs) or (self._master.resolve(request.symbol).symbol,)
        self.sync.placing[request.client_order_id] = Sent(
            request, self._clock.now(), symbols, request.quantity, limit, stop
        )
        self.sync.commanded()
        try:
            resp = await self.rest.place(account_hash, body)
        except Refusal as exc:
            self.sync.placing.pop(request.client_order_id, None)
            return m.vendor_reject(request, exc.reason, self.name)
        oid = m.order_id_from_location(resp.headers.get("location"))
        if oid is None:
            # SDEV: the Location header can be missing (an order that filled at once): find it by its fields.
            found = await self.find_order(request.account, request.client_order_id)
            if found is not None:
                return found.order_id
            raise BrokerError(
                "Schwab took the order (HTTP 201) without its id (no Location header), and it could "
                "not be matched yet; check the order list before sending it again",
                sent=True,
            )
        self.sync.placing.pop(request.client_order_id, None)
        return oid

    async def _read_back(self, account_hash: str, order_id: str) -> dict[str, Any] | None:
        try:
            return await self.rest.order(account_hash, order_id)
        except (BrokerError, OSError) as exc:
            log.info("%s: could not read order %s back (%s); the poll will", self.name, order_id, exc)
            return None

    def _after_send(self, request: OrderRequest, root: str, row: dict[str, Any] | None) -> Order:
        if row is not None:
            self.sync.apply_orders([row], emit=True)
        found = self.sync.order(root)
        if found is not None:
            return found.order
        return Order.from_request(
            request, order_id=root, status=m.OrderStatus.PENDING, broker=self.name, symbol=request.symbol
        )

    async def _known(self, account: str, order_id: str) -> m.Mapped:
        x = self.sync.order(order_id)
        if x is None:
            try:
                h = self.sync.vendor(account)
                row = await self.rest.order(h, order_id)
            except (m.Refused, NotFound):
                raise UnknownOrder(f"Schwab has no order {order_id} in {account}", sent=False) from None
            self.sync.apply_orders([row], emit=True)
            x = self.sync.order(order_id)
        if x is None or x.order.account != account:
            raise UnknownOrder(f"order {order_id} is not in account {account}", sent=False)
        return x

    async def modify(
        self,
        account: str,
        order_id: str,
        *,
        quantity: int | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> Order:
        """Replace a working order (A4: PUT; Schwab makes a new order with a new id and ends the old
        one). The new order keeps the client order id. A refusal returns the order unchanged with
        ``reject_reason`` set."""
        x = await self._known(account, order_id)
        order = x.order
        if self._gone is not None:
            return order.evolve(reject_reason=self._gone)
        if not order.is_open:
            return order.evolve(reject_reason=f"cannot modify: the order is already {order.status.value}")
        inst = self._instrument(order.symbol) if not order.legs else None
        for name, price in (("limit price", limit_price), ("stop price", stop_price)):
            if price is not None and inst is not None and not inst.is_on_tick(price):
                return order.evolve(reject_reason=f"{name} {price} is off {inst.symbol}'s tick grid")
        body = m.replace_body(x.node, quantity=quantity, limit=limit_price, stop=stop_price)
        h = self.sync.vendor(account)
        self.sync.commanded()
        try:
            resp = await self.rest.replace(h, order_id, body)
        except Refusal as exc:
            reason = f"Schwab refused the change: {exc.reason}"
            self.emit(Notice(level="warning", text=f"order {order_id}: {reason}", account=account, source=self.name))
            return order.evolve(reject_reason=reason)
        new_id = m.order_id_from_location(resp.headers.get("location"))
        known = self.sync.known.get(order_id) or m.Known(order.client_order_id, side=order.side, source=order.source)
        # The old order ends first: its replacement carries the same client order id.
        ended = order.evolve(status=m.OrderStatus.CANCELLED)
        self.sync.orders[order_id] = m.Mapped(order=ended, executions=x.executions, node=x.node)
        self.emit(ended)
        if new_id is None:
            self.sync.nudge()
            return ended
        self.sync.remember(new_id, known)
        row = await self._read_back(h, new_id)
        if row is not None:
            self.sync.apply_orders([row], emit=True)
        found = self.sync.order(new_id)
        if found is not None:
            return found.order
        return order.evolve(
            order_id=new_id,
            quantity=quantity or order.quantity,
            limit_price=limit_price or order.limit_price,
            stop_price=stop_price or order.stop_price,
        )

    async def cancel(self, account: str, order_id: str) -> Order:
        """Cancel a working order (A4: DELETE answers 200 with no body); read back to confirm."""
        x = await self._known(account, order_id)
        order = x.order
        if not order.is_open:
            return order
        if self._gone is not None:
            return order.evolve(reject_reason=self._gone)
        h = self.sync.vendor(account)
        self.sync.commanded()
        try:
            await self.rest.cancel(h, order_id)
        except Refusal as exc:
            reason = f"Schwab refused the cancel: {exc.reason}"
            self.emit(Notice(level="warning", text=f"order {order_id}: {reason}", account=account, source=self.name))
            return order.evolve(reject_reason=reason)
        row = await self._read_back(h, order_id)
        if row is not None:
            self.sync.apply_orders([row], emit=True)
        now = self.sync.order(order_id)
        return now.order if now is not None else order


def _short(text: str) -> str:
    return text if len(text) < 160 else text[:160] + "..."

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
from tterm.brokers.schwab.orders import MATCH_SLACK, OrderSync
from tterm.brokers.schwab.rest import SchwabRest
from tterm.brokers.schwab.stream import DISPLACED, SchwabStreamSocket, StreamerInfo, StreamError
from tterm.brokers.schwab.trading import SchwabTrading
from tterm.core.broker import AuthError, Broker, BrokerError, Capabilities, LoginFlow, LoginRequired
from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.models import (
    Account,
    AccountSnapshot,
    AssetClass,
    Bar,
    ConnectionState,
    ConnectionStatus,
    Fill,
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
        previews=True,  # previewOrder (A6.6)
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
            known_path=Path(data_dir) / f"{name}-orders.json",
        )
        self._quotes = mk.QuoteBook()
        self.builder = OrderBuilder(
            instruments,
            schwab_symbol=self.provider.schwab,
            held=self.sync.held,
            quote=self.last_quote,
            today=self._today,
        )
        self._subs: dict[tuple[str, str], str] = {}  # (service, Schwab key) -> tterm symbol
        self._rest_quotes: dict[str, Quote] = {}
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
        self.trading = SchwabTrading(self)
        self._detail = ""

    def _today(self) -> date:
        return self._clock.now().astimezone(NEW_YORK).date()

    # ================================================================== lifecycle and the login

    def login_flow(self) -> LoginFlow:
        return self._flow

    async def connect(self) -> None:
        """Connect with the stored login; without one, come up in NEEDS_LOGIN and wait for it; when
        Schwab cannot be reached, come up RECONNECTING and keep trying (the engine adopts the
        accounts once it connects)."""
        if self._live:
            return
        self._closing = False
        try:
            await self._start_live()
        except LoginRequired as exc:
            await self._stop_parts()
            self._mark_dead()  # a stored login Schwab refused is not tried again
            self._await_login(str(exc), first=True)
        except (BrokerError, OSError) as exc:
            await self._stop_parts()
            self._retry_later(exc)
        except BaseException:
            await self._stop_parts()
            raise

    async def _start_live(self) -> None:
        self._tokens = self._manager()
        self.rest.tokens = self._tokens
        await self._tokens.get()
        self._gone = None
        await self._go_live()

    def _retry_later(self, exc: BaseException) -> None:
        text = self._redactor.scrub(str(exc)) or type(exc).__name__
        self.set_state(ConnectionState.RECONNECTING, f"could not reach Schwab ({_short(text)}); retrying")
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._keep_trying(), name=f"{self.name}-connect")

    async def _keep_trying(self) -> None:
        backoff = Backoff(
            base=self.settings.reconnect_base, cap=max(self.settings.reconnect_cap, self.settings.reconnect_base)
        )
        while not self._closing:
            await asyncio.sleep(backoff.next_delay())
            try:
                await self._start_live()
                return
            except LoginRequired as exc:
                await self._stop_parts(keep_watcher=True)
                self._watcher = None
                self._await_login(str(exc), first=True)
                return
            except (BrokerError, OSError) as exc:
                await self._stop_parts(keep_watcher=True)
                text = self._redactor.scrub(str(exc)) or type(exc).__name__
                self.set_state(ConnectionState.RECONNECTING, f"could not reach Schwab ({_short(text)}); retrying")

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
                async with asyncio.timeout(self.settings.login_check_interval):
                    await self._login_event.wait()
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
        self._mark_dead()
        self._gone = f"Schwab login for {self.name} is gone; {relogin_hint(self.name)}"
        self._lost_task = asyncio.get_running_loop().create_task(self._on_lost(str(exc)), name=f"{self.name}-lost")

    def _mark_dead(self) -> None:
        token = self.store.load()
        if token is not None and token.extra.get("refresh_token"):
            self._dead_refresh.add(str(token.extra["refresh_token"]))

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

    def set_state(self, state: ConnectionState, detail: str = "") -> None:
        self._detail = detail
        super().set_state(state, detail)

    def status(self, detail: str = "") -> ConnectionStatus:
        """The status as it stands, with the detail of the last state change (NEEDS_LOGIN says how)."""
        return super().status(detail or self._detail)

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
        """The streamed quote, else the last one read over REST (:meth:`quote_now`)."""
        return self._quotes.last(symbol) or self._rest_quotes.get(symbol)

    async def quote_now(self, symbol: str) -> Quote | None:
        """One quote over REST (``/quotes``, A6.5): a bracket's reference when nothing streams yet."""
        inst = self._instrument(symbol)
        key = self.provider.schwab(inst)
        body = (await self.rest.quotes([key])).get(key)
        quote = mk.quote_of(inst.symbol, body) if isinstance(body, dict) else None
        if quote is not None:
            self._rest_quotes[inst.symbol] = quote
        return quote

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
                    self.provider.learn(q.instrument)
        return chain

    def _instrument(self, symbol: str) -> Instrument:
        try:
            return self._master.resolve(symbol)
        except (UnknownSymbol, ModelError) as exc:
            raise BrokerError(str(exc), sent=False) from None

    # ================================================================== orders (trading.py)

    async def preview_order(self, request: OrderRequest) -> OrderPreview:
        """Schwab's previewOrder: what the order would cost and whether Schwab would take it."""
        return await self.trading.preview_order(request)

    async def place(self, request: OrderRequest) -> Order:
        return await self.trading.place(request)

    async def place_group(self, group: OrderGroup) -> list[Order]:
        return await self.trading.place_group(group)

    async def modify(
        self,
        account: str,
        order_id: str,
        *,
        quantity: int | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> Order:
        return await self.trading.modify(
            account, order_id, quantity=quantity, limit_price=limit_price, stop_price=stop_price
        )

    async def cancel(self, account: str, order_id: str) -> Order:
        return await self.trading.cancel(account, order_id)

    async def flatten(self, account: str, symbol: str | None = None) -> list[Order]:
        """Cancel working orders and close positions; the positions are read fresh first (a fill
        the poll has not turned into a position yet still gets closed)."""
        if self._gone is not None:
            raise BrokerError(self._gone, sent=False)
        try:
            await self.trading.fresh_positions(account)
        except m.Refused as exc:
            raise BrokerError(str(exc), sent=False) from None
        return await super().flatten(account, symbol)


def _short(text: str) -> str:
    return text if len(text) < 160 else text[:160] + "..."

"""The ProjectX broker (TopstepX and other ProjectX firms) behind the Broker contract.

Composed from the package's rooms: ``config`` (options, credentials), ``auth`` (loginKey,
validate), ``rest`` (the one REST call, limits, envelopes), ``stream`` (the SignalR hubs through
pysignalr), ``mapping`` / ``market`` (vendor JSON <-> core models), ``instruments`` (contracts),
``sync`` (accounts, orders, positions and trades from the user hub and REST snapshots) and
``trading`` (the order verbs). This module owns the lifecycle, both hubs and the market data.

Streams: the user hub (accounts, orders, positions, trades) and the market hub (quotes, prints,
depth) are each kept up by a :class:`~tterm.brokers.common.streams.SocketSupervisor`. On every
(re)connection the user hub subscribes again and the state is reconciled from REST, so a trade
made while it was down appears once; the market hub subscribes every watched contract again.
Besides the socket's own silence, a watchdog follows each subscribed contract's quote age:
project-x-py issue #97 reports ticks that stop while the socket stays healthy. A contract with
no quote for ``quote_stale_after`` holds new orders in it (exits still pass); when every watched
contract has stopped, the stream froze: market data turns STALE and the hub is reconnected once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
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
from tterm.brokers.projectx import market as mk
from tterm.brokers.projectx.auth import ProjectXAuth
from tterm.brokers.projectx.config import ProjectXCredentials, ProjectXSettings
from tterm.brokers.projectx.instruments import ProjectXInstruments
from tterm.brokers.projectx.mapping import Refused, iso
from tterm.brokers.projectx.rest import ProjectXRest, limits
from tterm.brokers.projectx.stream import HubError, HubSocket
from tterm.brokers.projectx.sync import UserSync
from tterm.brokers.projectx.trading import ProjectXTrading
from tterm.core.broker import AuthError, Broker, BrokerError, Capabilities
from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.models import (
    Account,
    AccountSnapshot,
    Bar,
    ConnectionState,
    Fill,
    Instrument,
    ModelError,
    Notice,
    Order,
    OrderRequest,
    OrderType,
    Position,
    Quote,
    Timeframe,
)
from tterm.core.redact import REDACTOR, Redactor

log = logging.getLogger(__name__)

USER, MARKET = "user hub", "market hub"
USER_EVENTS = ("GatewayUserAccount", "GatewayUserOrder", "GatewayUserPosition", "GatewayUserTrade", "GatewayLogout")
MARKET_EVENTS = ("GatewayQuote", "GatewayTrade", "GatewayDepth", "GatewayLogout")
#: Market-hub subscription kinds: (Subscribe method, Unsubscribe method).
FEEDS = {
    "quotes": ("SubscribeContractQuotes", "UnsubscribeContractQuotes"),
    "trades": ("SubscribeContractTrades", "UnsubscribeContractTrades"),
    "depth": ("SubscribeContractMarketDepth", "UnsubscribeContractMarketDepth"),
}


class ProjectXBroker(Broker):
    """A ProjectX login (one user, one or more accounts)."""

    capabilities = Capabilities(
        brackets=True,  # stopLossBracket / takeProfitBracket in signed ticks (B7.2)
        oco=False,  # B7.2: no standalone OCO endpoint; the engine links OCO pairs itself
        otoco=False,
        multi_leg=False,
        futures=True,
        client_order_id_lookup=True,  # customTag carries tterm's client order id
        order_types=frozenset(
            {OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP}
        ),
        bars=True,
        timeframes=frozenset(mk.UNITS),
        depth=True,
        trades=True,
        search=True,
    )

    def __init__(
        self,
        name: str,
        settings: ProjectXSettings,
        credentials: ProjectXCredentials,
        *,
        instruments: InstrumentMaster,
        clock: Any = None,
        data_dir: Path,
        redactor: Redactor | None = None,
    ) -> None:
        super().__init__(name, is_live=settings.is_live)
        self.settings = settings
        self._creds = credentials
        self._master = instruments
        self._clock = as_clock(clock)
        # The engine's session clock (CME hours), when it is the one handed in: quotes that stop
        # while the market is closed are not frozen.
        self._sessions = clock if callable(getattr(clock, "is_open", None)) else None
        self._redactor = redactor or REDACTOR
        self._redactor.add(credentials.api_key)
        self._data_dir = Path(data_dir)
        windows, per_key = limits(settings.requests_per_minute, settings.bars_per_30s)
        self.limiter = RateLimiter(
            windows, per_key=per_key, time=lambda: self._clock.now().timestamp(), sleep=self._clock.sleep
        )
        self._http = HttpClient(
            settings.rest_base,
            timeout=settings.request_timeout,
            limiter=self.limiter,
            user_agent=f"tterm/{__version__}",
            redactor=self._redactor,
        )
        self.rest = ProjectXRest(
            self._http,
            redactor=self._redactor,
            read_retries=settings.read_retries,
            backoff=Backoff(base=settings.backoff_base, cap=max(settings.backoff_cap, settings.backoff_base)),
        )
        self.auth = ProjectXAuth(self.rest, credentials, clock=self._clock, redactor=self._redactor)
        self.tokens: TokenManager | None = None
        self.provider = ProjectXInstruments(self.rest, instruments, live=settings.live_data, on_learned=self.learned)
        self.quotes = mk.QuoteBook()
        self._depth = mk.DepthBook()
        self.sync = UserSync(name, self.rest, self.provider, emit=self.emit, mark=self.quotes.last, now=self._clock.now)
        self.feeds: dict[str, dict[str, str]] = {kind: {} for kind in FEEDS}  # kind -> contract id -> symbol
        self.quote_at: dict[str, float] = {}  # contract id -> loop time of its last quote (or subscription)
        self.frozen: dict[str, float] = {}  # contract id -> when it was found frozen
        self._thawing = False
        self._streams = StreamStates([USER, MARKET] if settings.market_data else [USER])
        self._user = self._supervisor(USER, settings.user_hub, USER_EVENTS, self._on_user_event, self._user_ready)
        self._market = self._supervisor(
            MARKET, settings.market_hub, MARKET_EVENTS, self._on_market_event, self._market_ready
        )
        self._watch: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._connected = False
        self._last_status: tuple[ConnectionState, str] | None = None
        self.trading = ProjectXTrading(self)

    def _supervisor(
        self, which: str, url: str, events: tuple[str, ...], on_event: Any, on_ready: Any
    ) -> SocketSupervisor[HubSocket]:
        s = self.settings
        return SocketSupervisor(
            name=which,
            label=f"{self.name}-{which.replace(' ', '-')}",
            connect=lambda: self._open_hub(which, url, events, on_event),
            on_ready=on_ready,
            on_state=lambda state, detail: self._hub_state(which, state, detail),
            stale_after=s.stale_after,
            watchdog_interval=s.watchdog_interval,
            backoff=Backoff(base=s.reconnect_base, cap=max(s.reconnect_cap, s.reconnect_base)),
            redactor=self._redactor,
        )

    # ================================================================== lifecycle

    async def connect(self) -> None:
        if self._connected:
            return
        self.tokens = TokenManager(
            login=self.auth.login,
            renew=self.auth.renew,
            clock=self._clock,
            renew_ahead=timedelta(seconds=self.settings.renew_ahead),
            check_interval=self.settings.token_check_interval,
            on_change=self._on_token,
            on_error=self._on_token_error,
            retry=Backoff(base=self.settings.backoff_base, cap=max(self.settings.backoff_cap, 1.0)),
            # Sessions outlive a restart and are shared by tterm processes on this data dir.
            store=TokenStore(
                token_path(self._data_dir, self.name),
                owner=f"{self._creds.username}@{self.settings.rest_base}",
                redactor=self._redactor,
            ),
        )
        self.rest.tokens = self.tokens
        try:
            await self.tokens.get()
            self.sync.start()
            for row in await self.rest.accounts(only_active=True):
                self.sync.apply_account(row, emit=False)
            if not self.sync.accounts:
                raise BrokerError(f"the ProjectX login {self._creds.username} has no active accounts", sent=False)
            await self._user.start(background_retry=True)
            if not self._user.ready.is_set():
                # The user hub is down but REST answers: start from a REST picture (orders stay
                # held until the hub is back) and keep trying the hub.
                await self.sync.apply_snapshot(await self.sync.load(self.sync.accounts), emit=False)
                text = (
                    f"the ProjectX user hub did not connect ({self._user.last_error}); showing state read "
                    "over REST and retrying; new orders are held until the hub is back"
                )
                self.emit(Notice(level="warning", text=text, source=self.name))
            if self.settings.market_data:
                await self._market.start(background_retry=True)
                self._watch = asyncio.get_running_loop().create_task(
                    self._watch_quotes(), name=f"{self.name}-quote-age"
                )
            self.tokens.start()
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
        if self.tokens is not None:
            await self.tokens.stop()
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        await self._market.stop()
        await self._user.stop()
        await self.sync.stop()
        await self._http.aclose()

    # ================================================================== the session

    def token_expires_in(self) -> timedelta | None:
        return self.tokens.expires_in() if self.tokens is not None else None

    def _on_token(self, token: Token) -> None:
        # For the status bar's countdown: tterm renews it itself, no person needed.
        self.set_auth_expiry(token.expires_at, "session", needs_person=False)

    def _on_token_error(self, exc: Exception) -> None:
        left = self.token_expires_in()
        minutes = int(left.total_seconds() // 60) if left is not None else 0
        text = self._redactor.scrub(str(exc))
        level = "warning" if minutes > 10 else "error"
        msg = f"ProjectX session renewal failed ({text}); retrying. The session ends in {minutes} min."
        self.emit(Notice(level=level, text=msg, source=self.name))

    # ================================================================== connection state

    def _hub_state(self, which: str, state: ConnectionState, detail: str) -> None:
        if which not in self._streams:
            return
        if which == MARKET and state is ConnectionState.CONNECTED and self._all_frozen():
            state, detail = ConnectionState.STALE, self._frozen_detail()
        self._streams.set(which, state, detail)
        if self._connected or state is not ConnectionState.CONNECTED:
            self._publish_state()

    def _publish_state(self) -> None:
        status = self._streams.rollup()
        if self._last_status != status:
            self._last_status = status
            self.set_state(*status)

    def stream_state(self, which: str) -> tuple[ConnectionState, str]:
        return self._streams.get(which)

    # ================================================================== hubs

    async def _open_hub(self, which: str, url: str, events: tuple[str, ...], on_event: Any) -> HubSocket:
        assert self.tokens is not None
        s = self.settings
        for attempt in (1, 2):
            token = await self.tokens.get()
            sock = HubSocket(
                which.split()[0],
                url,
                events=events,
                on_event=on_event,
                redactor=self._redactor,
                ping_interval=s.ping_interval,
                connect_timeout=s.connect_timeout,
                invoke_timeout=s.invoke_timeout,
            )
            sock.add_frame_listener(self.touch)
            try:
                await sock.open(token.value)
                return sock
            except AuthError:
                if attempt == 2:
                    raise
                log.info("ProjectX %s refused the session; starting a new session", which)
                await self.tokens.invalidate(token)
        raise AuthError(f"ProjectX {which} refused every session")  # pragma: no cover

    async def _user_ready(self, sock: HubSocket) -> None:
        """Subscribe again, then reconcile from REST (events missed while down are not replayed)."""
        await sock.invoke("SubscribeAccounts")
        for vid in sorted(self.sync.accounts):
            for method in ("SubscribeOrders", "SubscribePositions", "SubscribeTrades"):
                await sock.invoke(method, vid)
        await self.sync.apply_snapshot(await self.sync.load(self.sync.accounts), emit=self._connected)

    async def _market_ready(self, sock: HubSocket) -> None:
        now = asyncio.get_running_loop().time()
        for kind, subs in self.feeds.items():
            for cid in list(subs):
                if kind == "quotes":
                    self.quote_at[cid] = now  # the age counts again from the new subscription
                try:
                    await sock.invoke(FEEDS[kind][0], cid)
                except HubError as exc:
                    self.emit(Notice(level="warning", text=f"{kind} for {subs[cid]}: {exc}", source=self.name))
        self._thawing = False

    def _on_user_event(self, target: str, args: list[Any]) -> None:
        if target == "GatewayLogout":
            self._logout("user")
            return
        if args:
            self.sync.event(target, args[0])

    def _on_market_event(self, target: str, args: list[Any]) -> None:
        if target == "GatewayLogout":
            self._logout("market")
            return
        if len(args) < 2:
            return
        cid, data = str(args[0]), args[1]
        if target == "GatewayQuote" and isinstance(data, dict):
            symbol = self.feeds["quotes"].get(cid)
            if symbol is None:
                return
            self.quote_at[cid] = asyncio.get_running_loop().time()
            if self.frozen.pop(cid, None) is not None:
                self._thaw_check()
            self.emit(self.quotes.merge(cid, data, symbol))
            self.sync.marks_moved(symbol)
        elif target == "GatewayTrade":
            symbol = self.feeds["trades"].get(cid)
            if symbol is not None:
                for trade in mk.trades_of(data, symbol):
                    self.emit(trade)
        elif target == "GatewayDepth":
            symbol = self.feeds["depth"].get(cid)
            if symbol is not None and isinstance(data, list):
                depth = self._depth.apply(cid, data, symbol)
                bid = depth.bids[0].size if depth.bids else 0
                ask = depth.asks[0].size if depth.asks else 0
                self.quotes.sizes(cid, bid, ask)
                self.emit(depth)

    def _logout(self, hub: str) -> None:
        """U14: GatewayLogout's payload is unknown; it is taken as the session ended by the server."""
        self.emit(
            Notice(
                level="warning",
                text=f"ProjectX ended the session on the {hub} hub (GatewayLogout: the same user may have "
                "logged in elsewhere); tterm logs in again",
                source=self.name,
            )
        )
        sup = self._user if hub == "user" else self._market
        if sup.socket is not None:
            task = asyncio.get_running_loop().create_task(sup.socket.close("logged out by the server"))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    # ================================================================== the quote-age watchdog

    async def _watch_quotes(self) -> None:
        loop = asyncio.get_running_loop()
        limit = self.settings.quote_stale_after
        while True:
            await asyncio.sleep(self.settings.watchdog_interval)
            if not self._market.ready.is_set():
                continue
            now = loop.time()
            if self._sessions is not None and not self._sessions.is_open():
                for cid in self.feeds["quotes"]:
                    self.quote_at[cid] = now  # the age counts from the open
                continue
            newly = [
                cid
                for cid in self.feeds["quotes"]
                if cid not in self.frozen and now - self.quote_at.get(cid, now) > limit
            ]
            for cid in newly:
                self.frozen[cid] = now
            if not newly:
                continue
            names = ", ".join(sorted(self.feeds["quotes"].get(c, c) for c in newly))
            text = f"ProjectX: no quote for {names} in {limit:.0f}s; new orders in it are held until one comes"
            log.warning("%s: %s", self.name, text)
            self.emit(Notice(level="warning", text=text, source=self.name))
            if not self._all_frozen():
                continue  # one quiet contract while others tick: its orders wait, the stream is fine
            # Every watched contract stopped while the socket stays up: the stream froze (#97).
            detail = self._frozen_detail()
            self._streams.set(MARKET, ConnectionState.STALE, detail)
            self._publish_state()
            sock = self._market.socket
            if sock is not None and not self._thawing:
                # Once per freeze: a new connection and subscription often brings the ticks back.
                self._thawing = True
                await sock.close(f"quotes frozen ({detail})")

    def _all_frozen(self) -> bool:
        subs = self.feeds["quotes"]
        return bool(subs) and all(cid in self.frozen for cid in subs)

    def _frozen_detail(self) -> str:
        names = ", ".join(sorted(self.feeds["quotes"].get(c, c) for c in self.frozen))
        return f"no quote for {names} in {self.settings.quote_stale_after:.0f}s while the market hub is up"

    def _thaw_check(self) -> None:
        state, _ = self._streams.get(MARKET)
        if self._all_frozen():
            self._streams.set(MARKET, ConnectionState.STALE, self._frozen_detail())
        elif state is ConnectionState.STALE and self._market.ready.is_set():
            self._streams.set(MARKET, ConnectionState.CONNECTED, "")
        self._publish_state()

    def held_reason(self, symbol: str | None) -> str | None:
        """Why a new order would be held now (None: it may go)."""
        if not self.settings.hold_orders_when_stale:
            return None
        state, detail = self._streams.get(USER)
        if state is not ConnectionState.CONNECTED:
            return (
                f"held: the ProjectX user hub is {state.value} ({detail or 'no details'}); tterm cannot see "
                "fills or positions right now, so the order was not sent"
            )
        if symbol is not None:
            with contextlib.suppress(UnknownSymbol, ModelError):
                symbol = self._master.resolve(symbol).symbol
            for cid in self.frozen:
                if self.feeds["quotes"].get(cid) == symbol:
                    quiet = self.settings.quote_stale_after
                    return f"held: {symbol}'s quotes are frozen (no quote in {quiet:.0f}s); the order was not sent"
        return None

    def last_quote(self, symbol: str) -> Quote | None:
        return self.quotes.last(symbol)

    async def drop_hubs(self) -> None:
        """Close both hubs as a network fault would (tests); the supervisors reconnect."""
        for sup in (self._user, self._market):
            if sup.socket is not None:
                await sup.socket.close("dropped")

    # ================================================================== market data

    async def _feed(self, kind: str, symbols: Iterable[str], on: bool) -> None:
        for symbol in [symbols] if isinstance(symbols, str) else symbols:
            try:
                contract, inst = await self.provider.contract_for(symbol)
            except Refused as exc:
                raise BrokerError(str(exc), sent=False) from None
            cid = str(contract["id"])
            subs = self.feeds[kind]
            if on == (cid in subs):
                continue
            if on:
                subs[cid] = inst.symbol
                if kind == "quotes":
                    self.quote_at[cid] = asyncio.get_running_loop().time()
            else:
                subs.pop(cid, None)
                if kind == "quotes":
                    self.quote_at.pop(cid, None)
                    self.quotes.drop(cid, inst.symbol)
                    if self.frozen.pop(cid, None) is not None:
                        self._thaw_check()
                elif kind == "depth":
                    self._depth.drop(cid)
            sock = self._market.socket
            if sock is not None and sock.is_open:
                try:
                    await sock.invoke(FEEDS[kind][0 if on else 1], cid)
                except HubError as exc:
                    if on:
                        subs.pop(cid, None)
                        raise BrokerError(f"ProjectX {kind} for {inst.symbol}: {exc}", sent=False) from None

    async def subscribe_quotes(self, symbols: Iterable[str]) -> None:
        await self._feed("quotes", symbols, True)

    async def unsubscribe_quotes(self, symbols: Iterable[str]) -> None:
        await self._feed("quotes", symbols, False)

    async def subscribe_depth(self, symbols: Iterable[str]) -> None:
        await self._feed("depth", symbols, True)

    async def unsubscribe_depth(self, symbols: Iterable[str]) -> None:
        await self._feed("depth", symbols, False)

    async def subscribe_trades(self, symbols: Iterable[str]) -> None:
        await self._feed("trades", symbols, True)

    async def unsubscribe_trades(self, symbols: Iterable[str]) -> None:
        await self._feed("trades", symbols, False)

    async def bars(self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime | None = None) -> list[Bar]:
        """History/retrieveBars, paged backwards in 20,000-bar calls, oldest first."""
        if timeframe not in mk.UNITS:
            raise self.not_supported(f"{timeframe.value} bars")
        try:
            contract, inst = await self.provider.contract_for(symbol)
        except Refused as exc:
            raise BrokerError(str(exc), sent=False) from None
        unit, number = mk.UNITS[timeframe]
        top = end or self._clock.now()
        seen: dict[datetime, Bar] = {}
        for _ in range(50):
            rows = await self.rest.bars(
                {
                    "contractId": contract["id"],
                    "live": self.settings.live_data,
                    "startTime": iso(start),
                    "endTime": iso(top),
                    "unit": unit,
                    "unitNumber": number,
                    "limit": mk.MAX_BARS,
                    "includePartialBar": True,
                }
            )
            page = mk.bars_of(rows, inst.symbol, timeframe)
            for b in page:
                if start <= b.start < (end or top + timedelta(days=1)):
                    seen[b.start] = b
            if len(rows) < mk.MAX_BARS or not page or page[0].start <= start:
                break
            top = page[0].start
        return [seen[k] for k in sorted(seen)]

    async def lookup_instrument(self, symbol: str) -> Instrument | None:
        return await self.provider.lookup(symbol)

    async def search_instruments(self, text: str, limit: int = 20) -> list[Instrument]:
        return await self.provider.search(text, limit)

    # ================================================================== queries

    async def accounts(self) -> list[Account]:
        return self.sync.core_accounts(is_live=self.is_live)

    async def snapshots(self) -> list[AccountSnapshot]:
        return list(self.sync.snapshots.values())

    async def positions(self, account: str | None = None) -> list[Position]:
        return self.sync.core_positions(account)

    async def orders(self, account: str | None = None) -> list[Order]:
        return [o for o in self.sync.mapped.values() if account is None or o.account == account]

    async def fills(self, account: str | None = None) -> list[Fill]:
        """Today's fills (the trade date from 17:00 Chicago): the engine replays them over the
        overnight position."""
        start = self.sync.day_start()
        return [f for f in self.sync.fills.values() if (account is None or f.account == account) and f.ts >= start]

    async def find_order(self, account: str, client_order_id: str) -> Order | None:
        return await self.trading.find_order(account, client_order_id)

    # ================================================================== orders (trading.py)

    def preflight(self, request: OrderRequest) -> str:
        return self.trading.preflight(request)

    async def place(self, request: OrderRequest) -> Order:
        return await self.trading.place(request)

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
        return await self.trading.flatten(account, symbol)

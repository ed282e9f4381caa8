"""The Tradovate broker: REST + trading socket + market-data socket behind the Broker contract.

Composed from the package's rooms: ``config`` (options, credentials), ``auth`` (login, renewal,
device id), ``rest`` (the one REST call), ``stream`` (the socket protocol), ``mapping`` (vendor
JSON <-> core models, pure), ``replica`` (the user's entities by id and the core models they add
up to), ``sync`` (keeping the replica current, emitting what changed) and ``instruments``
(contract lookup and search). This module owns the lifecycle, the order verbs and the event
stream: every (re)connection replaces the replica with a fresh snapshot and emits what changed,
so a fill that happened while a socket was down still arrives.

The order verbs live in the ``trading`` room (:mod:`~tterm.brokers.tradovate.trading`); a 429
lockout and a 423 slow-down are kept in :mod:`~tterm.brokers.tradovate.lockout`, shared by REST
and both sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
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
from tterm.brokers.tradovate.lockout import LockedOut, Lockout
from tterm.brokers.tradovate.mapping import Refused
from tterm.brokers.tradovate.replica import Replica, View
from tterm.brokers.tradovate.rest import ENDPOINT_LIMITS, GLOBAL_LIMITS, TradovateRest
from tterm.brokers.tradovate.stream import SocketError, TradovateSocket
from tterm.brokers.tradovate.sync import ReplicaSync
from tterm.brokers.tradovate.trading import TradovateTrading
from tterm.core.broker import (
    AuthError,
    Broker,
    BrokerError,
    Capabilities,
    LoginRequired,
)
from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.models import (
    Account,
    AccountSnapshot,
    ConnectionState,
    Fill,
    Instrument,
    ModelError,
    Notice,
    Order,
    OrderGroup,
    OrderRequest,
    Position,
    Quote,
)
from tterm.core.redact import REDACTOR, Redactor

log = logging.getLogger(__name__)

TRADING, MARKET_DATA, LOGIN = "trading", "market data", "login"


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
        # After a 429 nothing is sent for the hour (REST and sockets share it); a 423 slows down.
        self._lockout = Lockout(self._clock, on_change=self._on_lockout)
        self._rest = TradovateRest(
            self._http,
            clock=self._clock,
            redactor=self._redactor,
            penalty_retries=settings.penalty_retries,
            backoff=self._backoff(settings.backoff_base, settings.backoff_cap),
            lockout=self._lockout,
            on_slow_down=self._on_slow_down,
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
        # The login is a "stream" of its own: NEEDS_LOGIN (with the reason) when it is stopped.
        self._streams = StreamStates([LOGIN, TRADING, MARKET_DATA] if settings.market_data else [LOGIN, TRADING])
        self._login_notice = ""
        self._last_status: tuple[ConnectionState, str] | None = None
        self._trading = self._supervisor(TRADING, self._trading_ready)
        self._md = self._supervisor(MARKET_DATA, self._md_ready)
        self._connected = False
        self.device_id: str | None = None
        self.trading = TradovateTrading(self)

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
            self._streams.set(LOGIN, ConnectionState.CONNECTED)
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
        await self._lockout.stop()
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
        if self._streams.state(LOGIN) is ConnectionState.NEEDS_LOGIN:
            self._login_notice = ""
            self._streams.set(LOGIN, ConnectionState.CONNECTED)
            self.emit(Notice(level="info", text="logged in to Tradovate again", source=self.name))
            self._publish_state()

    def _on_token_error(self, exc: Exception) -> None:
        if isinstance(exc, LockedOut):
            return  # nothing was sent; the lockout has been said once and shows in the status bar
        if isinstance(exc, LoginRequired):
            # Logins are stopped (refused credential, captcha, budget): say it once, show it.
            text = self._redactor.scrub(str(exc))
            self._streams.set(LOGIN, ConnectionState.NEEDS_LOGIN, text)
            self._publish_state()
            if text != self._login_notice:
                self._login_notice = text
                self.emit(Notice(level="error", text=text, source=self.name))
            return
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

    # ================================================================== lockouts (429) and slow-downs (423)

    def _on_lockout(self, until: datetime | None, text: str) -> None:
        """Shown in the status bar (``blocked_until``), said once, journaled by the engine."""
        self.set_blocked(until, text)
        self.emit(Notice(level="error" if until is not None else "info", text=text, source=self.name))

    def _on_slow_down(self, delay: float, where: str) -> None:
        text = (
            f"Tradovate warned that this login is close to being locked out of its API (HTTP 423 on {where}); "
            f"tterm holds every request for {delay:.0f}s and sends less"
        )
        self.emit(Notice(level="warning", text=text, source=self.name))

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

    @property
    def login_stopped(self) -> str:
        """Why logins are stopped (a refused password, a captcha...), "" while the login works."""
        state, detail = self._streams.get(LOGIN)
        return detail if state is ConnectionState.NEEDS_LOGIN else ""

    @property
    def trading_stream(self) -> tuple[ConnectionState, str]:
        """The trading socket's state and its detail."""
        return self._streams.get(TRADING)

    # ================================================================== sockets

    async def _open_socket(self, which: str) -> TradovateSocket:
        assert self._tokens is not None
        md = which == MARKET_DATA
        s = self.settings
        # A connection attempt during a lockout would restart it: wait until it is over.
        await self._lockout.wait()
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
                lockout=self._lockout,
                slow_down=self._rest.slow_down,
            )
            sock.add_frame_listener(self.touch)
            try:
                await sock.open(value)
                return sock
            except AuthError:
                if attempt == 2:
                    raise
                # Check the session by renewing it; a new login (a new session: at most two live)
                # only if the renewal is refused too.
                log.info("Tradovate %s socket refused the session; checking it by renewing", which)
                current = self._tokens.token
                if current is None or current.value == token.value:
                    await self._tokens.refresh()
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

    # ================================================================== orders (the trading room)

    async def place(self, request: OrderRequest) -> Order:
        """Send ``request`` (with its bracket as an OSO), once. Refusals come back as REJECTED orders."""
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
        return await self.trading.flatten(account, symbol)

    async def find_order(self, account: str, client_order_id: str) -> Order | None:
        return await self.trading.find_order(account, client_order_id)

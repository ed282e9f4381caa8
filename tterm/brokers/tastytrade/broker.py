"""The Tastytrade broker: REST, the account streamer and DXLink behind the Broker contract.

Composed from the package's rooms: ``config`` (options, credentials), ``auth`` (the OAuth grant
and the token store), ``rest`` (the one REST call), ``schemas`` (the vendor's JSON as models),
``mapping`` (vendor <-> core), ``instruments`` (symbols, lookup, search), ``orders`` (account
state from the streamer and REST), ``stream`` (the account streamer), ``dxlink`` and ``market``
(the DXLink protocol and its events), ``feed`` (the market-data verbs) and ``trading`` (the order
verbs). This module owns the lifecycle, the login states and the two sockets.

Two sockets, each kept up by a supervisor with a silence watchdog: the account streamer
(``account streamer``; every (re)connect resyncs orders, positions and balances over REST, so
nothing that happened in a gap is lost) and DXLink (``market data``; every (re)connect asks for
a new quote token and subscribes everything again). The status bar shows the worse of the two.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tterm.brokers.common.backoff import Backoff
from tterm.brokers.common.clock import as_clock
from tterm.brokers.common.http import HttpClient
from tterm.brokers.common.streams import SocketSupervisor, StreamStates
from tterm.brokers.common.tokens import Token, TokenManager
from tterm.brokers.tastytrade import mapping as m
from tterm.brokers.tastytrade import market as mk
from tterm.brokers.tastytrade.auth import TokenEndpoint, token_manager, token_store
from tterm.brokers.tastytrade.config import TastytradeCredentials, TastytradeSettings
from tterm.brokers.tastytrade.feed import TastytradeFeed
from tterm.brokers.tastytrade.instruments import TastytradeInstruments
from tterm.brokers.tastytrade.orders import AccountSync
from tterm.brokers.tastytrade.rest import TastytradeRest
from tterm.brokers.tastytrade.stream import AccountStreamSocket
from tterm.brokers.tastytrade.trading import TastytradeTrading
from tterm.core.broker import AuthError, Broker, BrokerError, Capabilities, LoginRequired
from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.models import (
    Account,
    AccountSnapshot,
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
ACCOUNTS, MARKET_DATA = "account streamer", "market data"


class TastytradeBroker(Broker):
    """A Tastytrade login (a personal OAuth grant) and every account it reaches."""

    capabilities = Capabilities(
        brackets=False,  # a bracket's exits are priced from the entry's fill: tterm links them (native OCO)
        oco=True,  # /complex-orders type OCO
        otoco=True,  # /complex-orders type OTOCO
        multi_leg=True,  # up to four legs, one net price with its price-effect
        futures=True,
        equities=True,
        options=True,
        client_order_id_lookup=True,  # external-identifier, found in /orders/live
        order_types=frozenset({OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT}),
        bars=True,  # DXLink Candle snapshots (there is no REST price history, B4)
        timeframes=frozenset(mk.PERIODS),
        option_chain=True,
        search=True,
        previews=True,  # POST /accounts/{n}/orders/dry-run
    )

    def __init__(
        self,
        name: str,
        settings: TastytradeSettings,
        credentials: TastytradeCredentials,
        *,
        instruments: InstrumentMaster,
        clock: Any = None,
        data_dir: Path,
        redactor: Redactor | None = None,
    ) -> None:
        super().__init__(name, is_live=settings.is_live)
        self.settings = settings
        self.master = instruments
        self._clock = as_clock(clock)
        self._redactor = redactor or REDACTOR
        self.store = token_store(name, Path(data_dir), credentials, settings, self._redactor)
        self.endpoint = TokenEndpoint(name, credentials, settings, clock=self._clock, redactor=self._redactor)
        headers = {"Accept-Version": settings.api_version} if settings.api_version else None
        self._http = HttpClient(
            settings.rest_url,
            timeout=settings.request_timeout,
            user_agent=settings.user_agent,
            redactor=self._redactor,
            headers=headers,
        )
        self.rest = TastytradeRest(
            self._http,
            clock=self._clock,
            redactor=self._redactor,
            per_second=settings.requests_per_second,
            backoff=Backoff(base=settings.backoff_base, cap=max(settings.backoff_cap, settings.backoff_base)),
            on_login_lost=self._login_lost,
        )
        self.provider = TastytradeInstruments(self.rest, instruments, on_learned=self.learned)
        self.sync = AccountSync(
            name,
            self.rest,
            self.provider,
            clock=self._clock,
            redactor=self._redactor,
            emit=self.emit,
            today=self._today,
            is_live=settings.is_live,
            fee_wait=settings.fill_fee_wait,
        )
        self.trading = TastytradeTrading(self)
        self.feed = TastytradeFeed(self)
        self._streams = StreamStates([ACCOUNTS, MARKET_DATA])
        self._acct = SocketSupervisor(
            name=ACCOUNTS,
            label=f"{name}-account-streamer",
            connect=self._open_account_stream,
            on_ready=self._account_stream_ready,
            on_state=lambda s, d: self._stream_state(ACCOUNTS, s, d),
            stale_after=settings.stale_after,
            watchdog_interval=settings.watchdog_interval,
            backoff=Backoff(base=settings.reconnect_base, cap=max(settings.reconnect_cap, settings.reconnect_base)),
            redactor=self._redactor,
        )
        self._dx = SocketSupervisor(
            name=MARKET_DATA,
            label=f"{name}-dxlink",
            connect=self.feed.open_dxlink,
            on_ready=self.feed.dxlink_ready,
            on_state=lambda s, d: self._stream_state(MARKET_DATA, s, d),
            stale_after=settings.dxlink_stale_after,
            watchdog_interval=settings.watchdog_interval,
            backoff=Backoff(base=settings.reconnect_base, cap=max(settings.reconnect_cap, settings.reconnect_base)),
            redactor=self._redactor,
        )
        self.tokens: TokenManager | None = None
        self.gone: str | None = None
        self.live = False
        self._closing = False
        self._watcher: asyncio.Task[None] | None = None
        self._lost_task: asyncio.Task[None] | None = None
        self._detail = ""

    def _today(self) -> date:
        return self._clock.now().astimezone(NEW_YORK).date()

    # ================================================================== lifecycle

    async def connect(self) -> None:
        """Mint a token, load the accounts, open both sockets. A refused grant leaves the broker in
        DOWN with a notice saying what to do (a new grant in the secrets; ``tterm login`` cannot help,
        so it is not NEEDS_LOGIN); an unreachable Tastytrade is tried again with backoff."""
        if self.live:
            return
        self._closing = False
        try:
            await self._start()
        except LoginRequired as exc:
            await self._stop_parts()
            self._needs_grant(str(exc))
        except (BrokerError, OSError) as exc:
            await self._stop_parts()
            self._retry_later(exc)
        except BaseException:
            await self._stop_parts()
            raise

    async def _start(self) -> None:
        self.tokens = token_manager(
            self.endpoint, self.store, self.settings, clock=self._clock, on_change=self._on_token,
            on_error=self._on_token_error,
        )  # fmt: skip
        self.rest.tokens = self.tokens
        await self.tokens.get()
        self.gone = None
        self.sync.set_accounts(await self.rest.accounts())
        if not self.sync.accounts:
            raise BrokerError("this Tastytrade login reaches no open accounts")
        self.sync.start()
        self.tokens.start()
        await self._acct.start(background_retry=True)
        if not self._acct.ready.is_set():
            await self.sync.resync()  # the streamer is not up yet: the state comes over REST now
        if self.settings.stream:
            await self._dx.start(background_retry=True)
        else:
            self._streams.set(MARKET_DATA, ConnectionState.CONNECTED, "market data off (stream = false)")
        self.live = True
        self._publish_state(force=True)

    def _retry_later(self, exc: BaseException) -> None:
        text = self._redactor.scrub(str(exc)) or type(exc).__name__
        self.set_state(ConnectionState.RECONNECTING, f"could not reach Tastytrade ({_short(text)}); retrying")
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._keep_trying(), name=f"{self.name}-connect")

    async def _keep_trying(self) -> None:
        backoff = Backoff(
            base=self.settings.reconnect_base, cap=max(self.settings.reconnect_cap, self.settings.reconnect_base)
        )
        while not self._closing:
            await asyncio.sleep(backoff.next_delay())
            try:
                await self._start()
                return
            except LoginRequired as exc:
                await self._stop_parts(keep_watcher=True)
                self._needs_grant(str(exc))
                return
            except (BrokerError, OSError) as exc:
                await self._stop_parts(keep_watcher=True)
                text = self._redactor.scrub(str(exc)) or type(exc).__name__
                self.set_state(ConnectionState.RECONNECTING, f"could not reach Tastytrade ({_short(text)}); retrying")

    def _needs_grant(self, reason: str) -> None:
        self.gone = self._redactor.scrub(reason)
        self.set_auth_expiry(None, "grant", needs_person=True)
        # DOWN, not NEEDS_LOGIN: the terminal reads NEEDS_LOGIN as "tterm login <name>", which cannot
        # make a grant; the notice (and the detail) say what can.
        self.set_state(ConnectionState.DOWN, self.gone)
        self.emit(Notice(level="error", text=self.gone, source=self.name))

    def _login_lost(self, exc: LoginRequired) -> None:
        # While connecting, the refusal reaches connect() itself, which says so (once).
        if self.gone is not None or self._closing or not self.live:
            return
        self.gone = self._redactor.scrub(str(exc))
        self._lost_task = asyncio.get_running_loop().create_task(self._on_lost(self.gone), name=f"{self.name}-lost")

    async def _on_lost(self, reason: str) -> None:
        await self._stop_parts(keep_watcher=True)
        self._needs_grant(reason)

    def _on_token(self, token: Token) -> None:
        # The access token's own countdown; the grant behind it does not expire (B2.1).
        self.set_auth_expiry(token.expires_at, "token", needs_person=False)

    def _on_token_error(self, exc: Exception) -> None:
        if isinstance(exc, LoginRequired):
            self._login_lost(exc)
            return
        text = self._redactor.scrub(str(exc))
        self.emit(Notice(level="warning", text=f"Tastytrade token renewal failed ({text}); retrying", source=self.name))

    async def close(self) -> None:
        self._closing = True
        await self._stop_parts()
        await self._http.aclose()
        self.set_state(ConnectionState.DOWN, "closed")
        self.mark_closed()

    async def _stop_parts(self, *, keep_watcher: bool = False) -> None:
        self.live = False
        if self.tokens is not None:
            await self.tokens.stop()
        await self._acct.stop()
        await self._dx.stop()
        await self.sync.stop()
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
        return super().status(detail or self._detail)

    def _stream_state(self, name: str, state: ConnectionState, detail: str) -> None:
        self._streams.set(name, state, detail)
        if self.live:
            self._publish_state()

    def _publish_state(self, *, force: bool = False) -> None:
        if self.gone is not None:
            return
        state, detail = self._streams.rollup()
        if force or (state, detail) != (
            self.connection_state,
            self._detail if state is not ConnectionState.CONNECTED else "",
        ):
            self.set_state(state, "" if state is ConnectionState.CONNECTED else detail)

    async def _token_value(self) -> str:
        assert self.tokens is not None
        return (await self.tokens.get()).value

    # ================================================================== the account streamer

    def _account_socket(self) -> AccountStreamSocket:
        sock = AccountStreamSocket(
            self.settings.account_streamer_url,
            token=self._token_value,
            source=self.settings.user_agent,
            redactor=self._redactor,
            on_notification=self.sync.submit,
            heartbeat_interval=self.settings.heartbeat_interval,
            connect_timeout=self.settings.connect_timeout,
            close_timeout=self.settings.close_timeout,
            request_timeout=self.settings.stream_request_timeout,
            user_agent=self.settings.user_agent,
        )
        sock.add_frame_listener(self.touch)
        return sock

    async def _open_account_stream(self) -> AccountStreamSocket:
        assert self.tokens is not None
        numbers = list(self.sync.numbers.values())
        sock = self._account_socket()
        try:
            await sock.open(numbers)
        except AuthError:
            # The token was refused: one fresh token, one more try (then the supervisor decides).
            await self.tokens.invalidate(self.tokens.token)
            sock = self._account_socket()
            await sock.open(numbers)
        return sock

    async def _account_stream_ready(self, sock: AccountStreamSocket) -> None:
        """A new connection knows nothing of the gap: read the state fresh (B7 resync)."""
        await self.sync.resync()

    async def drop_streams(self) -> None:
        """Close both sockets as a network fault would (tests); the supervisors reconnect."""
        for sup in (self._acct, self._dx):
            sock = sup.socket
            if sock is not None:
                await sock.close("dropped")

    # ================================================================== queries

    async def accounts(self) -> list[Account]:
        return list(self.sync.accounts.values())

    async def snapshots(self) -> list[AccountSnapshot]:
        return list(self.sync.snapshots.values())

    async def positions(self, account: str | None = None) -> list[Position]:
        return [p for (a, _), p in self.sync.positions.items() if (account is None or a == account) and p.quantity]

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
        """The order placed with ``client_order_id`` (its external-identifier), from today's orders."""
        for x in self.sync.orders.values():
            if x.order.client_order_id == client_order_id and x.order.account == account and x.order.is_open:
                return x.order
        try:
            number = self.sync.vendor(account)
        except m.Refused:
            return None
        rows = await self.rest.live_orders(number)
        for row in rows:
            self.sync.submit("Order", row)
        await self.sync.settle()
        found = [x.order for x in self.sync.orders.values()
                 if x.order.client_order_id == client_order_id and x.order.account == account]  # fmt: skip
        if not found:
            return None
        return next((o for o in found if o.is_open), found[-1])

    # ================================================================== market data

    def _instrument(self, symbol: str) -> Instrument:
        try:
            return self.master.resolve(symbol)
        except (UnknownSymbol, ModelError) as exc:
            raise BrokerError(str(exc), sent=False) from None

    async def lookup_instrument(self, symbol: str) -> Instrument | None:
        return await self.provider.lookup(symbol)

    async def search_instruments(self, text: str, limit: int = 20) -> list[Instrument]:
        return await self.provider.search(text, limit)

    # ================================================================== market data (feed.py)

    async def subscribe_quotes(self, symbols: Iterable[str]) -> None:
        await self.feed.subscribe_quotes(symbols)

    async def unsubscribe_quotes(self, symbols: Iterable[str]) -> None:
        await self.feed.unsubscribe_quotes(symbols)

    def last_quote(self, symbol: str) -> Quote | None:
        return self.feed.last_quote(symbol)

    async def bars(self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime | None = None) -> list[Bar]:
        """History from a DXLink Candle snapshot from ``start`` (B8.5), oldest first."""
        return await self.feed.bars(symbol, timeframe, start, end)

    async def option_chain(self, underlying: str, expiry: date | None = None) -> OptionChain:
        """One expiry's strikes around the money with DXLink's quotes and Greeks (shares, ETFs, futures)."""
        return await self.feed.option_chain(underlying, expiry)

    # ================================================================== orders (trading.py)

    async def preview_order(self, request: OrderRequest) -> OrderPreview:
        """Tastytrade's dry run: buying power, fees and what the send would be refused for."""
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
        return await self.trading.modify(account, order_id, quantity=quantity, limit_price=limit_price,
                                         stop_price=stop_price)  # fmt: skip

    async def cancel(self, account: str, order_id: str) -> Order:
        return await self.trading.cancel(account, order_id)

    async def flatten(self, account: str, symbol: str | None = None) -> list[Order]:
        """Cancel working orders and close positions, the positions read fresh first."""
        if self.gone is not None:
            raise BrokerError(self.gone, sent=False)
        try:
            await self.sync.fresh_positions(account)
        except m.Refused as exc:
            raise BrokerError(str(exc), sent=False) from None
        return await super().flatten(account, symbol)


def _short(text: str) -> str:
    return text if len(text) < 160 else text[:160] + "..."

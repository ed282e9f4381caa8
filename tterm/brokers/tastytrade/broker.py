"""The Tastytrade broker: REST, the account streamer and DXLink behind the Broker contract.

Composed from the package's rooms: ``config`` (options, credentials), ``auth`` (the OAuth grant
and the token store), ``rest`` (the one REST call), ``schemas`` (the vendor's JSON as models),
``mapping`` (vendor <-> core), ``instruments`` (symbols, lookup, search), ``orders`` (account
state from the streamer and REST), ``stream`` (the account streamer), ``dxlink`` and ``market``
(market data) and ``trading`` (the order verbs). This module owns the lifecycle, the two sockets
and the market-data verbs.

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

from pydantic import ValidationError

from tterm.brokers.common.backoff import Backoff
from tterm.brokers.common.clock import as_clock
from tterm.brokers.common.http import HttpClient
from tterm.brokers.common.streams import SocketSupervisor, StreamStates
from tterm.brokers.common.tokens import Token, TokenManager
from tterm.brokers.tastytrade import mapping as m
from tterm.brokers.tastytrade import market as mk
from tterm.brokers.tastytrade.auth import TokenEndpoint, token_manager, token_store
from tterm.brokers.tastytrade.config import TastytradeCredentials, TastytradeSettings
from tterm.brokers.tastytrade.dxlink import CANDLES, MARKET, DXLinkSocket
from tterm.brokers.tastytrade.instruments import TastytradeInstruments
from tterm.brokers.tastytrade.orders import AccountSync
from tterm.brokers.tastytrade.rest import TastytradeRest
from tterm.brokers.tastytrade.schemas import NestedChain, NestedFuturesChain, QuoteToken, when
from tterm.brokers.tastytrade.stream import AccountStreamSocket
from tterm.brokers.tastytrade.trading import TastytradeTrading
from tterm.core.broker import AuthError, Broker, BrokerError, Capabilities, LoginRequired
from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.models import (
    Account,
    AccountSnapshot,
    AssetClass,
    Bar,
    ChainRow,
    ConnectionState,
    ConnectionStatus,
    Fill,
    Instrument,
    ModelError,
    Notice,
    OptionChain,
    OptionQuote,
    OptionRight,
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
QUOTE_TYPES = ("Quote", "Trade", "Summary")
#: B8.1: quote tokens last 24 hours; DXLink reconnects with a new one this many seconds ahead.
QUOTE_TOKEN_MARGIN = 600.0
CHAIN_TYPES = ("Quote", "Summary", "Greeks")


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
        self.book = mk.QuoteBook()
        self._quote_subs: dict[str, str] = {}  # streamer symbol -> core symbol (quotes wanted)
        self._chain_subs: dict[str, str] = {}  # streamer symbol -> core symbol (a chain's options)
        self._candles: dict[str, mk.CandleCollector] = {}
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
            connect=self._open_dxlink,
            on_ready=self._dxlink_ready,
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
        NEEDS_LOGIN (a new grant is needed); an unreachable Tastytrade is tried again with backoff."""
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
        self.set_state(ConnectionState.NEEDS_LOGIN, self.gone)
        self.emit(Notice(level="error", text=self.gone, source=self.name))

    def _login_lost(self, exc: LoginRequired) -> None:
        if self.gone is not None or self._closing:
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

    async def _open_account_stream(self) -> AccountStreamSocket:
        assert self.tokens is not None
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
        )
        sock.add_frame_listener(self.touch)
        numbers = list(self.sync.numbers.values())
        try:
            await sock.open(numbers)
        except AuthError:
            await self.tokens.invalidate(self.tokens.token)
            sock = AccountStreamSocket(
                self.settings.account_streamer_url, token=self._token_value, source=self.settings.user_agent,
                redactor=self._redactor, on_notification=self.sync.submit,
                heartbeat_interval=self.settings.heartbeat_interval, connect_timeout=self.settings.connect_timeout,
                close_timeout=self.settings.close_timeout, request_timeout=self.settings.stream_request_timeout,
            )  # fmt: skip
            sock.add_frame_listener(self.touch)
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

    # ================================================================== DXLink

    async def _open_dxlink(self) -> DXLinkSocket:
        try:
            token = QuoteToken.model_validate(await self.rest.quote_token())
        except ValidationError:
            raise BrokerError("Tastytrade's quote token answer is unreadable (no token or dxlink-url)") from None
        self._redactor.add(token.token, rotating=True)
        sock = DXLinkSocket(
            token.dxlink_url,
            token.token,
            redactor=self._redactor,
            on_event=self._on_event,
            keepalive=self.settings.dxlink_keepalive,
            timeout=self.settings.dxlink_timeout,
            aggregation=self.settings.aggregation_period,
            connect_timeout=self.settings.connect_timeout,
            close_timeout=self.settings.close_timeout,
            step_timeout=self.settings.stream_request_timeout,
        )
        sock.add_frame_listener(self.touch)
        await sock.open()
        expires = when(token.expires_at)
        if expires is not None:
            self._quote_token_timer(sock, expires)
        return sock

    def _quote_token_timer(self, sock: DXLinkSocket, expires: datetime) -> None:
        """Reconnect DXLink (with a new quote token) 10 minutes before the token's 24 hours end."""

        closing = False

        async def renew() -> None:
            nonlocal closing
            wait = (expires - self._clock.now()).total_seconds() - QUOTE_TOKEN_MARGIN
            await self._clock.sleep(max(0.0, wait))
            if not sock.closed.is_set():
                closing = True
                log.info("%s: the DXLink quote token ends soon; reconnecting with a new one", self.name)
                await sock.close("quote token renewal")

        task = asyncio.get_running_loop().create_task(renew(), name=f"{self.name}-quote-token")
        sock.closed_hooks.append(lambda: None if closing else task.cancel())

    async def _dxlink_ready(self, sock: DXLinkSocket) -> None:
        """Subscribe everything again: a new connection knows nothing."""
        add = [{"type": t, "symbol": s} for s in self._quote_subs for t in QUOTE_TYPES]
        add += [{"type": t, "symbol": s} for s in self._chain_subs if s not in self._quote_subs for t in CHAIN_TYPES]
        add += [{"type": "Greeks", "symbol": s} for s in self._chain_subs if s in self._quote_subs]
        for i in range(0, len(add), 200):  # a message too large closes the socket (B8.2, 1009)
            await sock.subscribe(MARKET, add=add[i : i + 200])

    def _on_event(self, kind: str, rec: dict[str, Any]) -> None:
        symbol = str(rec.get("eventSymbol"))
        if kind == "Candle":
            collector = self._candles.get(symbol)
            if collector is not None:
                collector.apply(rec)
            return
        core = self._quote_subs.get(symbol) or self._chain_subs.get(symbol)
        if core is None:
            return
        quote = self.book.apply(kind, rec, core)
        if quote is not None and symbol in self._quote_subs:
            self.emit(quote)

    def _dxlink(self) -> DXLinkSocket:
        sock = self._dx.socket
        if sock is None or not sock.is_open:
            raise BrokerError("Tastytrade market data (DXLink) is not connected", sent=False)
        return sock

    async def _streamer_of(self, symbol: str) -> tuple[Instrument, str]:
        inst = self._instrument(symbol)
        try:
            return inst, await self.provider.streamer(inst)
        except m.Refused as exc:
            raise BrokerError(str(exc), sent=False) from None

    async def subscribe_quotes(self, symbols: Iterable[str]) -> None:
        new: list[str] = []
        for symbol in [symbols] if isinstance(symbols, str) else symbols:
            inst, streamer = await self._streamer_of(symbol)
            if streamer not in self._quote_subs:
                self._quote_subs[streamer] = inst.symbol
                new.append(streamer)
        sock = self._dx.socket
        if not new or sock is None or not sock.is_open:
            return  # subscribed when DXLink (re)connects
        await sock.subscribe(MARKET, add=[{"type": t, "symbol": s} for s in new for t in QUOTE_TYPES])

    async def unsubscribe_quotes(self, symbols: Iterable[str]) -> None:
        gone: list[str] = []
        for symbol in [symbols] if isinstance(symbols, str) else symbols:
            inst = self._instrument(symbol)
            known = self.provider.by_core.get(inst.symbol)
            streamer = known.streamer if known else ""
            if streamer and self._quote_subs.pop(streamer, None) is not None:
                gone.append(streamer)
                if streamer not in self._chain_subs:
                    self.book.drop(streamer, inst.symbol)
        sock = self._dx.socket
        if gone and sock is not None and sock.is_open:
            remove = [{"type": t, "symbol": s} for s in gone for t in QUOTE_TYPES if s not in self._chain_subs]
            with contextlib.suppress(BrokerError):
                await sock.subscribe(MARKET, remove=remove)

    def last_quote(self, symbol: str) -> Quote | None:
        return self.book.last(symbol)

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

    async def bars(self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime | None = None) -> list[Bar]:
        """History from a DXLink Candle snapshot from ``start`` (B8.5), oldest first."""
        if timeframe not in mk.PERIODS:
            raise self.not_supported(f"{timeframe.value} bars")
        inst, streamer = await self._streamer_of(symbol)
        sock = self._dxlink()
        key = mk.candle_symbol(streamer, timeframe)
        collector = mk.CandleCollector(inst.symbol, timeframe)
        if key in self._candles:
            raise BrokerError(f"{inst.symbol} {timeframe.value} bars are already being read; try again", sent=False)
        self._candles[key] = collector
        since = int(start.timestamp() * 1000)
        entry = {"type": "Candle", "symbol": key, "fromTime": since}
        try:
            await sock.subscribe(CANDLES, add=[entry])
            async with asyncio.timeout(self.settings.bars_timeout):
                await collector.done.wait()
        except TimeoutError:
            raise BrokerError(
                f"Tastytrade sent no complete {timeframe.value} history for {inst.symbol} within "
                f"{self.settings.bars_timeout:.0f}s"
            ) from None
        finally:
            self._candles.pop(key, None)
            with contextlib.suppress(BrokerError):
                await sock.subscribe(CANDLES, remove=[entry])  # B8.5: fromTime is required on remove too
        return collector.result(start, end or self._clock.now())

    async def option_chain(self, underlying: str, expiry: date | None = None) -> OptionChain:
        """One expiry's strikes around the money, with quotes and Greeks from DXLink (B5: the chain
        itself carries neither). Shares and ETFs (``/option-chains``), and futures contracts
        (``/futures-option-chains/{product}``: the options on that contract, weeklies included)."""
        inst = self._instrument(underlying)
        if inst.asset_class is AssetClass.OPTION:
            raise BrokerError(f"{inst.symbol} is an option: ask for the chain of its underlying", sent=False)
        tasty = self.provider.tasty(inst)
        futures = inst.asset_class is AssetClass.FUTURE
        try:
            if futures:
                doc = NestedFuturesChain.model_validate(await self.rest.nested_futures_chain(inst.root or inst.symbol))
                expirations = [
                    e
                    for c in doc.option_chains
                    for e in c.expirations
                    if m.core_symbol(e.underlying_symbol or c.underlying_symbol, m.FUTURE) == inst.symbol
                ]
            else:
                chains = [NestedChain.model_validate(c) for c in await self.rest.nested_chain(tasty.symbol)]
                expirations = [e for c in chains for e in c.expirations]
        except ValidationError as exc:
            raise BrokerError(
                f"Tastytrade's chain of {inst.symbol} is unreadable ({exc.error_count()} problems)"
            ) from None
        today = self._today()
        by_day = {e.expiration_date: e for e in expirations if e.expiration_date >= today}
        expiries = tuple(sorted(by_day))
        if not expiries:
            raise BrokerError(f"Tastytrade lists no option expiries for {inst.symbol}", sent=False)
        if expiry is None:
            expiry = expiries[0]
        elif expiry not in by_day:
            listed = ", ".join(f"{d:%Y-%m-%d}" for d in expiries[:8])
            raise BrokerError(f"{inst.symbol} has no options expiring {expiry:%Y-%m-%d} (listed: {listed})", sent=False)
        spot = await self._spot(inst, tasty.symbol)
        chosen = by_day[expiry]
        kind = m.FUTURE_OPTION if futures else m.EQUITY_OPTION
        table = m.tick_table_of(chosen.tick_sizes)
        strikes = sorted(chosen.strikes, key=lambda s: s.strike_price)
        if spot is not None and len(strikes) > self.settings.chain_strikes:
            nearest = sorted(strikes, key=lambda s: abs(s.strike_price - spot))[: self.settings.chain_strikes]
            strikes = sorted(nearest, key=lambda s: s.strike_price)
        legs: list[tuple[Decimal, OptionRight, Instrument, str]] = []
        for row in strikes:
            for right, sym, streamer in ((OptionRight.CALL, row.call, row.call_streamer_symbol),
                                         (OptionRight.PUT, row.put, row.put_streamer_symbol)):  # fmt: skip
                if not sym or not streamer:
                    continue
                try:
                    if futures:
                        opt = m.future_option_instrument(sym, inst, tick_table=table)
                        self.provider.learn(opt)
                    else:
                        opt = self.provider.resolve(sym, kind)
                except ModelError as exc:
                    log.info("%s: chain option %s skipped (%s)", self.name, sym, exc)
                    continue
                self.provider.note(opt.symbol, sym, kind, streamer)
                self.provider.learn(opt)
                legs.append((row.strike_price, right, opt, streamer))
        await self._chain_market([(streamer, opt.symbol) for _, _, opt, streamer in legs])
        rows: dict[Decimal, dict[OptionRight, OptionQuote]] = {}
        for strike, right, opt, streamer in legs:
            rows.setdefault(strike, {})[right] = self._option_quote(opt, streamer)
        return OptionChain(
            underlying=inst.symbol,
            expiry=expiry,
            expiries=expiries,
            rows=tuple(
                ChainRow(strike=k, call=v.get(OptionRight.CALL), put=v.get(OptionRight.PUT))
                for k, v in sorted(rows.items())
            ),
            underlying_price=inst.round_price(spot) if spot is not None else None,
            broker=self.name,
            ts=self._clock.now(),
        )

    async def _spot(self, inst: Instrument, tasty_symbol: str) -> Decimal | None:
        quote = self.book.last(inst.symbol)
        if quote is not None and (quote.mark or quote.last) is not None:
            return quote.mark or quote.last
        try:
            kind = "future" if inst.asset_class is AssetClass.FUTURE else "equity"
            rows = await self.rest.market_data({kind: [tasty_symbol]})
        except BrokerError as exc:
            log.info("%s: no price for %s (%s)", self.name, inst.symbol, exc)
            return None
        for row in rows:
            for key in ("mark", "mid", "last"):
                try:
                    value = Decimal(str(row.get(key)))
                except ArithmeticError:
                    continue
                if value.is_finite() and value > 0:
                    return value
        return None

    async def _chain_market(self, wanted: list[tuple[str, str]]) -> None:
        """Subscribe the chain's options (the previous chain's go) and wait briefly for their data."""
        sock = self._dx.socket
        old = {s for s in self._chain_subs if s not in dict(wanted)}
        self._chain_subs = dict(wanted)
        if sock is None or not sock.is_open:
            return
        remove = [{"type": t, "symbol": s} for s in old for t in CHAIN_TYPES if s not in self._quote_subs]
        remove += [{"type": "Greeks", "symbol": s} for s in old if s in self._quote_subs]
        with contextlib.suppress(BrokerError):
            await sock.subscribe(MARKET, remove=remove)
        await sock.subscribe(MARKET, add=[{"type": t, "symbol": s} for s, _ in wanted for t in CHAIN_TYPES])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.chain_wait
        while loop.time() < deadline:
            parts = [self.book.parts(s) for s, _ in wanted]
            if all(p is not None and {"Quote", "Greeks"} <= p.seen for p in parts):
                return
            self.book.changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, deadline - loop.time())):
                    await self.book.changed.wait()

    def _option_quote(self, inst: Instrument, streamer: str) -> OptionQuote:
        p = self.book.parts(streamer)
        if p is None:
            return OptionQuote(instrument=inst)
        return OptionQuote(
            instrument=inst, bid=p.bid, ask=p.ask, last=p.last, bid_size=p.bid_size, ask_size=p.ask_size,
            volume=p.volume, open_interest=p.open_interest, iv=p.iv, greeks=p.greeks, ts=self._clock.now(),
        )  # fmt: skip

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

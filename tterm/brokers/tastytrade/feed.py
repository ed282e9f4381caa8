"""The Tastytrade broker's market data: DXLink quotes and Greeks, option chains and bars.

A room of :class:`~tterm.brokers.tastytrade.broker.TastytradeBroker` (which owns the DXLink
socket's supervisor and delegates the market-data verbs here). Quotes are Quote, Trade and Summary
events merged per symbol (:class:`~.market.QuoteBook`); a chain's options also get Greeks; bars
come from a Candle snapshot. Streamer symbols come from the vendor's records (B5).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from tterm.brokers.tastytrade import mapping as m
from tterm.brokers.tastytrade import market as mk
from tterm.brokers.tastytrade.dxlink import CANDLES, MARKET, DXLinkError, DXLinkSocket
from tterm.brokers.tastytrade.schemas import NestedChain, NestedFuturesChain, QuoteToken, when
from tterm.core.broker import AuthError, BrokerError
from tterm.core.models import (
    AssetClass,
    Bar,
    ChainRow,
    Instrument,
    ModelError,
    OptionChain,
    OptionQuote,
    OptionRight,
    Quote,
    Timeframe,
)

if TYPE_CHECKING:
    from tterm.brokers.tastytrade.broker import TastytradeBroker

log = logging.getLogger(__name__)
QUOTE_TYPES = ("Quote", "Trade", "Summary")
CHAIN_TYPES = ("Quote", "Summary", "Greeks")
#: B8.1: quote tokens last 24 hours; DXLink reconnects with a new one this many seconds ahead.
QUOTE_TOKEN_MARGIN = 600.0


class TastytradeFeed:
    """DXLink subscriptions and the market-data verbs of one login."""

    def __init__(self, broker: TastytradeBroker) -> None:
        self.b = broker
        self.book = mk.QuoteBook()
        self._quote_subs: dict[str, str] = {}  # streamer symbol -> core symbol (quotes wanted)
        self._chain_subs: dict[str, str] = {}  # streamer symbol -> core symbol (a chain's options)
        self._candles: dict[str, mk.CandleCollector] = {}
        self._candle_locks: dict[str, asyncio.Lock] = {}

    async def open_dxlink(self) -> DXLinkSocket:
        try:
            token = QuoteToken.model_validate(await self.b.rest.quote_token())
        except ValidationError:
            raise BrokerError("Tastytrade's quote token answer is unreadable (no token or dxlink-url)") from None
        self.b._redactor.add(token.token, rotating=True)
        sock = DXLinkSocket(
            token.dxlink_url,
            token.token,
            redactor=self.b._redactor,
            on_event=self.on_event,
            keepalive=self.b.settings.dxlink_keepalive,
            timeout=self.b.settings.dxlink_timeout,
            aggregation=self.b.settings.aggregation_period,
            connect_timeout=self.b.settings.connect_timeout,
            close_timeout=self.b.settings.close_timeout,
            step_timeout=self.b.settings.stream_request_timeout,
            user_agent=self.b.settings.user_agent,
        )
        sock.add_frame_listener(self.b.touch)
        try:
            await sock.open()
        except AuthError as exc:
            # A refused quote token is DXLink's matter (a new one comes with the next try), not the
            # login's: the supervisor keeps trying in the background, the accounts stay up.
            raise DXLinkError(str(exc)) from None
        expires = when(token.expires_at)
        if expires is not None:
            self._quote_token_timer(sock, expires)
        return sock

    def _quote_token_timer(self, sock: DXLinkSocket, expires: datetime) -> None:
        """Reconnect DXLink (with a new quote token) 10 minutes before the token's 24 hours end."""

        closing = False

        async def renew() -> None:
            nonlocal closing
            wait = (expires - self.b._clock.now()).total_seconds() - QUOTE_TOKEN_MARGIN
            await self.b._clock.sleep(max(0.0, wait))
            if not sock.closed.is_set():
                closing = True
                log.info("%s: the DXLink quote token ends soon; reconnecting with a new one", self.b.name)
                await sock.close("quote token renewal")

        task = asyncio.get_running_loop().create_task(renew(), name=f"{self.b.name}-quote-token")
        sock.closed_hooks.append(lambda: None if closing else task.cancel())

    async def dxlink_ready(self, sock: DXLinkSocket) -> None:
        """Subscribe everything again: a new connection knows nothing."""
        add = [{"type": t, "symbol": s} for s in self._quote_subs for t in QUOTE_TYPES]
        add += [{"type": t, "symbol": s} for s in self._chain_subs if s not in self._quote_subs for t in CHAIN_TYPES]
        add += [{"type": "Greeks", "symbol": s} for s in self._chain_subs if s in self._quote_subs]
        await sock.subscribe(MARKET, add=add)

    def on_event(self, kind: str, rec: dict[str, Any]) -> None:
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
            self.b.emit(quote)

    def socket(self) -> DXLinkSocket:
        sock = self.b._dx.socket
        if sock is None or not sock.is_open:
            raise BrokerError("Tastytrade market data (DXLink) is not connected", sent=False)
        return sock

    async def streamer_of(self, symbol: str) -> tuple[Instrument, str]:
        inst = self.b._instrument(symbol)
        try:
            return inst, await self.b.provider.streamer(inst)
        except m.Refused as exc:
            raise BrokerError(str(exc), sent=False) from None

    async def subscribe_quotes(self, symbols: Iterable[str]) -> None:
        """Stream every symbol Tastytrade can; one it cannot (no record, no streamer symbol) does
        not cost the others their quotes: they are subscribed, then the failures are raised."""
        new: list[str] = []
        failed: list[str] = []
        for symbol in [symbols] if isinstance(symbols, str) else symbols:
            try:
                inst, streamer = await self.streamer_of(symbol)
            except BrokerError as exc:
                failed.append(f"{symbol}: {exc}")
                continue
            if streamer not in self._quote_subs:
                self._quote_subs[streamer] = inst.symbol
                new.append(streamer)
        sock = self.b._dx.socket
        if new and sock is not None and sock.is_open:  # else subscribed when DXLink (re)connects
            await sock.subscribe(MARKET, add=[{"type": t, "symbol": s} for s in new for t in QUOTE_TYPES])
        if failed:
            raise BrokerError("no quotes for " + "; ".join(failed), sent=False)

    async def unsubscribe_quotes(self, symbols: Iterable[str]) -> None:
        gone: list[str] = []
        for symbol in [symbols] if isinstance(symbols, str) else symbols:
            inst = self.b._instrument(symbol)
            known = self.b.provider.by_core.get(inst.symbol)
            streamer = known.streamer if known else ""
            if streamer and self._quote_subs.pop(streamer, None) is not None:
                gone.append(streamer)
                if streamer not in self._chain_subs:
                    self.book.drop(streamer, inst.symbol)
        sock = self.b._dx.socket
        if gone and sock is not None and sock.is_open:
            remove = [{"type": t, "symbol": s} for s in gone for t in QUOTE_TYPES if s not in self._chain_subs]
            with contextlib.suppress(BrokerError):
                await sock.subscribe(MARKET, remove=remove)

    def last_quote(self, symbol: str) -> Quote | None:
        return self.book.last(symbol)

    async def bars(self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime | None = None) -> list[Bar]:
        """History from a DXLink Candle snapshot from ``start`` (B8.5), oldest first."""
        if timeframe not in mk.PERIODS:
            raise self.b.not_supported(f"{timeframe.value} bars")
        inst, streamer = await self.streamer_of(symbol)
        sock = self.socket()
        key = mk.candle_symbol(streamer, timeframe)
        # One snapshot per candle symbol at a time (its events carry no request id): the next waits.
        async with self._candle_locks.setdefault(key, asyncio.Lock()):
            return await self._snapshot(sock, key, inst, timeframe, start, end)

    async def _snapshot(
        self,
        sock: DXLinkSocket,
        key: str,
        inst: Instrument,
        timeframe: Timeframe,
        start: datetime,
        end: datetime | None,
    ) -> list[Bar]:
        collector = mk.CandleCollector(inst.symbol, timeframe)
        self._candles[key] = collector
        since = int(start.timestamp() * 1000)
        entry = {"type": "Candle", "symbol": key, "fromTime": since}
        try:
            await sock.subscribe(CANDLES, add=[entry])
            async with asyncio.timeout(self.b.settings.bars_timeout):
                await collector.done.wait()
        except TimeoutError:
            raise BrokerError(
                f"Tastytrade sent no complete {timeframe.value} history for {inst.symbol} within "
                f"{self.b.settings.bars_timeout:.0f}s"
            ) from None
        finally:
            self._candles.pop(key, None)
            with contextlib.suppress(BrokerError):
                await sock.subscribe(CANDLES, remove=[entry])  # B8.5: fromTime is required on remove too
        return collector.result(start, end or self.b._clock.now())

    async def option_chain(self, underlying: str, expiry: date | None = None) -> OptionChain:
        """One expiry's strikes around the money, with quotes and Greeks from DXLink (B5: the chain
        itself carries neither). Shares and ETFs (``/option-chains``), and futures contracts
        (``/futures-option-chains/{product}``: the options on that contract, weeklies included)."""
        inst = self.b._instrument(underlying)
        if inst.asset_class is AssetClass.OPTION:
            raise BrokerError(f"{inst.symbol} is an option: ask for the chain of its underlying", sent=False)
        tasty = self.b.provider.tasty(inst)
        futures = inst.asset_class is AssetClass.FUTURE
        try:
            if futures:
                doc = NestedFuturesChain.model_validate(
                    await self.b.rest.nested_futures_chain(inst.root or inst.symbol)
                )
                expirations = [
                    e
                    for c in doc.option_chains
                    for e in c.expirations
                    if m.core_symbol(e.underlying_symbol or c.underlying_symbol, m.FUTURE) == inst.symbol
                ]
            else:
                chains = [NestedChain.model_validate(c) for c in await self.b.rest.nested_chain(tasty.symbol)]
                expirations = [e for c in chains for e in c.expirations]
        except ValidationError as exc:
            raise BrokerError(
                f"Tastytrade's chain of {inst.symbol} is unreadable ({exc.error_count()} problems)"
            ) from None
        today = self.b._today()
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
        if spot is not None and len(strikes) > self.b.settings.chain_strikes:
            nearest = sorted(strikes, key=lambda s: abs(s.strike_price - spot))[: self.b.settings.chain_strikes]
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
                        self.b.provider.learn(opt)
                    else:
                        opt = self.b.provider.resolve(sym, kind)
                except ModelError as exc:
                    log.info("%s: chain option %s skipped (%s)", self.b.name, sym, exc)
                    continue
                self.b.provider.note(opt.symbol, sym, kind, streamer)
                self.b.provider.learn(opt)
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
            broker=self.b.name,
            ts=self.b._clock.now(),
        )

    async def _spot(self, inst: Instrument, tasty_symbol: str) -> Decimal | None:
        quote = self.book.last(inst.symbol)
        if quote is not None and (quote.mark or quote.last) is not None:
            return quote.mark or quote.last
        try:
            kind = "future" if inst.asset_class is AssetClass.FUTURE else "equity"
            rows = await self.b.rest.market_data({kind: [tasty_symbol]})
        except BrokerError as exc:
            log.info("%s: no price for %s (%s)", self.b.name, inst.symbol, exc)
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
        sock = self.b._dx.socket
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
        deadline = loop.time() + self.b.settings.chain_wait
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
            volume=p.volume, open_interest=p.open_interest, iv=p.iv, greeks=p.greeks, ts=self.b._clock.now(),
        )  # fmt: skip

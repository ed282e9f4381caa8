"""DXLink events -> core market data: quotes, Greeks, chains and bars (pure, no sockets).

- :class:`QuoteBook` merges Quote (bid, ask, sizes), Trade (last, day volume) and Summary (the
  previous close, open interest) per streamer symbol into one core :class:`Quote`; a quote is
  emitted when any of them changes it.
- Greeks events carry the model price, the implied volatility (a fraction) and delta, gamma,
  theta (per day), vega and rho (per point), as dxFeed sends them: stored per streamer symbol,
  marked ``source="broker"``.
- :class:`CandleCollector` builds a bar history from a Candle snapshot (B8.5): SNAPSHOT_BEGIN
  starts it, SNAPSHOT_END or SNAPSHOT_SNIP finishes it; REMOVE_EVENT drops a bar.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from tterm.brokers.tastytrade.dxlink import number
from tterm.core.models import Bar, Greeks, Quote, Timeframe, utcnow

TX_PENDING, REMOVE_EVENT, SNAPSHOT_BEGIN, SNAPSHOT_END, SNAPSHOT_SNIP = 0x1, 0x2, 0x4, 0x8, 0x10
#: B8.5 candle periods for tterm's timeframes.
PERIODS: dict[Timeframe, str] = {
    Timeframe.S1: "1s",
    Timeframe.M1: "1m",
    Timeframe.M5: "5m",
    Timeframe.M15: "15m",
    Timeframe.H1: "1h",
    Timeframe.D1: "1d",
}


def price(value: Any) -> Decimal | None:
    f = number(value)
    if f is None:
        return None
    try:
        return Decimal(repr(f)).normalize() if f != int(f) else Decimal(int(f))
    except (InvalidOperation, OverflowError, ValueError):
        return None


def size(value: Any) -> int:
    f = number(value)
    if f is None or f < 0 or f > 1e12:
        return 0
    return int(f)


def ms_time(value: Any) -> datetime | None:
    f = number(value)
    if f is None or f <= 0 or f > 1e14:
        return None
    return datetime.fromtimestamp(f / 1000, UTC)


@dataclass(slots=True)
class _Parts:
    bid: Decimal | None = None
    ask: Decimal | None = None
    bid_size: int = 0
    ask_size: int = 0
    last: Decimal | None = None
    volume: int = 0
    prev_close: Decimal | None = None
    open_interest: int = 0
    greeks: Greeks | None = None
    iv: float | None = None
    model_price: Decimal | None = None
    seen: set[str] = field(default_factory=set)


class QuoteBook:
    """The latest market parts per streamer symbol, and the core quote they make."""

    def __init__(self) -> None:
        self._parts: dict[str, _Parts] = {}
        self._last: dict[str, Quote] = {}  # core symbol -> last quote emitted
        self.changed = asyncio.Event()

    def parts(self, streamer: str) -> _Parts | None:
        return self._parts.get(streamer)

    def apply(self, kind: str, rec: dict[str, Any], core: str) -> Quote | None:
        """Fold one event in; the new core quote when it changed one (Greeks change none)."""
        streamer = str(rec.get("eventSymbol"))
        p = self._parts.setdefault(streamer, _Parts())
        p.seen.add(kind)
        if kind == "Quote":
            p.bid, p.ask = price(rec.get("bidPrice")), price(rec.get("askPrice"))
            p.bid_size, p.ask_size = size(rec.get("bidSize")), size(rec.get("askSize"))
            if p.bid is not None and p.ask is not None and p.bid > p.ask:
                p.bid = p.ask = None  # a crossed quote is not shown as a market
        elif kind == "Trade":
            last = price(rec.get("price"))
            if last is not None:
                p.last = last
            p.volume = size(rec.get("dayVolume")) or p.volume
        elif kind == "Summary":
            p.prev_close = price(rec.get("prevDayClosePrice")) or p.prev_close
            p.open_interest = size(rec.get("openInterest"))
        elif kind == "Greeks":
            p.greeks = Greeks(
                delta=number(rec.get("delta")),
                gamma=number(rec.get("gamma")),
                theta=number(rec.get("theta")),
                vega=number(rec.get("vega")),
                rho=number(rec.get("rho")),
                source="broker",
            )
            p.iv = number(rec.get("volatility"))
            p.model_price = price(rec.get("price"))
            self.changed.set()
            return None
        else:
            return None
        self.changed.set()
        quote = Quote(
            symbol=core,
            bid=p.bid,
            ask=p.ask,
            last=p.last,
            bid_size=p.bid_size,
            ask_size=p.ask_size,
            volume=p.volume,
            prev_close=p.prev_close,
            ts=ms_time(rec.get("eventTime")) or utcnow(),
        )
        prev = self._last.get(core)
        if prev is not None and _same(prev, quote):
            return None
        self._last[core] = quote
        return quote

    def last(self, core: str) -> Quote | None:
        return self._last.get(core)

    def drop(self, streamer: str, core: str) -> None:
        self._parts.pop(streamer, None)
        self._last.pop(core, None)


def _same(a: Quote, b: Quote) -> bool:
    return (a.bid, a.ask, a.last, a.bid_size, a.ask_size, a.volume, a.prev_close) == (
        b.bid, b.ask, b.last, b.bid_size, b.ask_size, b.volume, b.prev_close,
    )  # fmt: skip


def candle_symbol(streamer: str, timeframe: Timeframe) -> str:
    """B8.5: ``AAPL{=5m}``; every hour of the session (no ``tho``), as a futures trader expects."""
    return f"{streamer}{{={PERIODS[timeframe]}}}"


class CandleCollector:
    """One Candle snapshot being received; ``done`` is set at SNAPSHOT_END or SNAPSHOT_SNIP."""

    def __init__(self, core: str, timeframe: Timeframe) -> None:
        self.core = core
        self.timeframe = timeframe
        self.bars: dict[int, Bar] = {}
        self.started = False
        self.done = asyncio.Event()
        self.skipped = 0

    def apply(self, rec: dict[str, Any]) -> None:
        flags = size(rec.get("eventFlags"))
        if flags & SNAPSHOT_BEGIN:
            self.bars.clear()
            self.started = True
        stamp = number(rec.get("time"))
        if stamp is not None and not flags & REMOVE_EVENT:
            bar = self._bar(rec, int(stamp))
            if bar is not None:
                self.bars[int(stamp)] = bar
            else:
                self.skipped += 1
        elif stamp is not None:
            self.bars.pop(int(stamp), None)
        if self.started and flags & (SNAPSHOT_END | SNAPSHOT_SNIP):
            self.done.set()

    def _bar(self, rec: dict[str, Any], stamp: int) -> Bar | None:
        o, h, lo, c = (price(rec.get(k)) for k in ("open", "high", "low", "close"))
        start = ms_time(stamp)
        if None in (o, h, lo, c) or start is None:
            return None
        assert o is not None and h is not None and lo is not None and c is not None
        if lo > min(o, c) or h < max(o, c):
            return None
        return Bar(
            symbol=self.core, start=start, open=o, high=h, low=lo, close=c, volume=size(rec.get("volume")),
            seconds=self.timeframe.seconds,
        )  # fmt: skip

    def result(self, start: datetime, end: datetime) -> list[Bar]:
        return [b for _, b in sorted(self.bars.items()) if start <= b.start < end]

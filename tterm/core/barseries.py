"""A chart's bars: the broker's history, then kept current from the trade prints.

Pure (no Textual, no engine): the chart screen loads :meth:`BarSeries.load` with the broker's
bars and feeds every print to :meth:`BarSeries.add_trade`, which says which bar changed so the
chart repaints only that column. Bars are mutable here (one print moves a close many times a
second); each carries a ``version`` the widget compares against what it drew.

Bucketing: an intraday print belongs to the bar whose ``[start, start + seconds)`` holds it;
a print past the last bar opens a new bar on the timeframe's grid, counted from the last bar's
start (so the broker's own alignment, e.g. a CME trading day starting 17:00 Chicago, carries
on). Without history, intraday bars align to whole multiples of their length since the epoch
and daily bars to UTC midnight. A print older than the first bar is ignored (its bar was never
loaded); one inside an earlier bar updates that bar (a late print from a replay or a feed).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from tterm.core.models import Bar, Timeframe


@dataclass(slots=True, eq=False)
class LiveBar:
    """One bar of a chart; ``start`` is epoch seconds, ``version`` grows on every change."""

    start: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int = 0
    version: int = 0

    @property
    def up(self) -> bool:
        return self.close >= self.open

    def to_bar(self, symbol: str, seconds: int) -> Bar:
        return Bar(
            symbol=symbol,
            start=datetime.fromtimestamp(self.start, UTC),
            open=self.open,
            high=self.high,
            low=self.low,
            close=self.close,
            volume=self.volume,
            seconds=seconds,
        )


class BarSeries:
    """The bars of one symbol at one timeframe, oldest first."""

    def __init__(self, symbol: str, timeframe: Timeframe, *, keep: int = 5000) -> None:
        self.symbol = symbol
        self.timeframe = timeframe
        self.seconds = timeframe.seconds
        self.keep = keep
        self.bars: list[LiveBar] = []
        self._starts: list[int] = []
        #: Grows when bars are added or dropped (the chart re-lays itself out), not on a print.
        self.layout_version = 0
        self.trades = 0

    def __len__(self) -> int:
        return len(self.bars)

    def load(self, bars: Iterable[Bar]) -> None:
        """Replace the bars with the broker's history (oldest first; duplicates keep the last)."""
        by_start: dict[int, LiveBar] = {}
        for b in bars:
            start = int(b.start.timestamp())
            by_start[start] = LiveBar(start, b.open, b.high, b.low, b.close, b.volume)
        self.bars = [by_start[k] for k in sorted(by_start)][-self.keep :]
        self._starts = [b.start for b in self.bars]
        self.layout_version += 1

    def _bucket(self, t: int) -> int:
        """The start of the bar a print at epoch second ``t`` opens (past the last bar)."""
        if self.bars:
            last = self.bars[-1].start
            return last + (t - last) // self.seconds * self.seconds
        return t - t % self.seconds

    def add_trade(self, price: Decimal, size: int, ts: datetime) -> int | None:
        """Add one print; returns the index of the bar it changed (or opened), None if ignored."""
        t = int(ts.timestamp())
        bars = self.bars
        self.trades += 1
        if not bars or t >= bars[-1].start + self.seconds:
            start = self._bucket(t)
            bars.append(LiveBar(start, price, price, price, price, max(0, size)))
            self._starts.append(start)
            if len(bars) > self.keep:
                del bars[0]
                del self._starts[0]
            self.layout_version += 1
            return len(bars) - 1
        if t >= bars[-1].start:
            i = len(bars) - 1
        else:
            i = bisect.bisect_right(self._starts, t) - 1
            if i < 0 or t >= bars[i].start + self.seconds:
                return None  # before the history, or in a gap the broker had no bar for
        bar = bars[i]
        if price > bar.high:
            bar.high = price
        if price < bar.low:
            bar.low = price
        bar.close = price
        bar.volume += max(0, size)
        bar.version += 1
        return i

    def index_at(self, ts: datetime) -> int | None:
        """The bar holding time ``ts`` (a fill's time), None when no bar does."""
        t = int(ts.timestamp())
        i = bisect.bisect_right(self._starts, t) - 1
        if i < 0 or t >= self.bars[i].start + self.seconds:
            return None
        return i


__all__ = ["BarSeries", "LiveBar"]

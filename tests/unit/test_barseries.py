"""Bars kept current from prints: the live bar, the next bar on the grid, late prints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tterm.core.barseries import BarSeries
from tterm.core.models import Bar, Timeframe

D = Decimal
T0 = datetime(2026, 11, 17, 15, 30, tzinfo=UTC)


def _bar(minute: int, o: str, h: str, lo: str, c: str, v: int) -> Bar:
    return Bar("MESZ6", T0 + timedelta(minutes=minute), D(o), D(h), D(lo), D(c), v, 60)


def test_a_print_moves_the_live_bar_and_the_next_period_opens_a_bar() -> None:
    s = BarSeries("MESZ6", Timeframe.M1)
    s.load([_bar(0, "10", "11", "9", "10.5", 5), _bar(1, "10.5", "12", "10", "11", 7)])
    layout = s.layout_version
    assert s.add_trade(D("12.5"), 3, T0 + timedelta(minutes=1, seconds=30)) == 1
    last = s.bars[-1]
    assert (last.high, last.close, last.volume, last.version) == (D("12.5"), D("12.5"), 10, 1)
    assert s.layout_version == layout  # a print in the live bar is a repaint, not a relayout
    # Three minutes later: a new bar on the grid of the history (minute 4), not at the print's second.
    i = s.add_trade(D("9.75"), 2, T0 + timedelta(minutes=4, seconds=12))
    assert i == 2 and s.bars[2].start == int((T0 + timedelta(minutes=4)).timestamp())
    assert (s.bars[2].open, s.bars[2].low, s.bars[2].volume) == (D("9.75"), D("9.75"), 2)
    assert s.layout_version == layout + 1


def test_late_prints_update_their_bar_and_prints_before_the_history_are_ignored() -> None:
    s = BarSeries("MESZ6", Timeframe.M1)
    s.load([_bar(0, "10", "11", "9", "10.5", 5), _bar(2, "10.5", "12", "10", "11", 7)])
    assert s.add_trade(D("8"), 1, T0 + timedelta(seconds=10)) == 0 and s.bars[0].low == D("8")
    assert s.bars[0].close == D("8")
    assert s.add_trade(D("8"), 1, T0 + timedelta(minutes=1, seconds=5)) is None  # the gap: no bar there
    assert s.add_trade(D("8"), 1, T0 - timedelta(minutes=5)) is None
    assert s.index_at(T0 + timedelta(minutes=2, seconds=59)) == 1 and s.index_at(T0 + timedelta(minutes=3)) is None


def test_without_history_bars_align_to_their_length_and_only_the_newest_are_kept() -> None:
    s = BarSeries("MESZ6", Timeframe.M5, keep=3)
    for n in range(5):
        s.add_trade(D(100 + n), 1, T0 + timedelta(minutes=5 * n, seconds=7))
    assert len(s) == 3 and [b.open for b in s.bars] == [D(102), D(103), D(104)]
    assert all(b.start % 300 == 0 for b in s.bars)
    daily = BarSeries("AAPL", Timeframe.D1)
    daily.add_trade(D("187.50"), 100, T0)
    assert datetime.fromtimestamp(daily.bars[0].start, UTC) == datetime(2026, 11, 17, tzinfo=UTC)
    assert daily.bars[0].to_bar("AAPL", 86400).close == D("187.50")

"""Paper bars: live aggregation from trades, the synthesized history, trading-day bars, refusals."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest

from tterm.brokers.paper.bars import HISTORY_DAYS, MAX_BARS, BarBook, RawBar, check_range
from tterm.brokers.paper.book import Grid
from tterm.core.broker import BrokerError
from tterm.core.instruments import InstrumentMaster
from tterm.core.models import Timeframe

MASTER = InstrumentMaster(today=lambda: date(2025, 11, 3))
ES = MASTER.resolve("ESZ5")
GRID = Grid(ES)
T0 = datetime(2025, 11, 3, 15, 0, 30, tzinfo=UTC)
OPEN = 27200  # 6800.00 in quarter points


def book(seed: int = 1, *, saved: list[RawBar] | None = None, now: datetime = T0) -> tuple[BarBook, list]:
    stored: list[tuple[str, list[RawBar]]] = []
    bars = BarBook(seed, load=lambda sym: list(saved or []), save=lambda sym, rows: stored.append((sym, rows)))
    bars.open(ES.symbol, GRID, now=now, opening=OPEN, sigma_minute=15.0, volume_minute=4000.0, daily="cme")
    return bars, stored


def ts(dt: datetime) -> int:
    return int(dt.timestamp())


def test_trades_make_one_second_and_one_minute_bars() -> None:
    bars, _ = book()
    t = ts(T0)
    bars.add(ES.symbol, t, OPEN, 3)
    bars.add(ES.symbol, t, OPEN + 2, 1)
    bars.add(ES.symbol, t, OPEN - 1, 2)
    bars.add(ES.symbol, t + 1, OPEN + 1, 5)
    bars.add(ES.symbol, t + 40, OPEN + 4, 1)  # the next minute
    now = T0 + timedelta(seconds=41)
    secs = bars.bars(ES.symbol, Timeframe.S1, T0, now, now)
    assert [(b.open, b.high, b.low, b.close, b.volume) for b in secs[:2]] == [
        (D("6800.00"), D("6800.50"), D("6799.75"), D("6799.75"), 6),
        (D("6800.25"), D("6800.25"), D("6800.25"), D("6800.25"), 5),
    ]
    assert all(b.seconds == 1 for b in secs)
    minutes = bars.bars(ES.symbol, Timeframe.M1, T0 - timedelta(seconds=30), now, now)
    assert [(b.start, b.open, b.high, b.low, b.close, b.volume) for b in minutes] == [
        (datetime(2025, 11, 3, 15, 0, tzinfo=UTC), D("6800.00"), D("6800.50"), D("6799.75"), D("6800.25"), 11),
        (datetime(2025, 11, 3, 15, 1, tzinfo=UTC), D("6801.00"), D("6801.00"), D("6801.00"), D("6801.00"), 1),
    ]


def test_history_is_deterministic_and_joins_the_live_bars_without_a_gap_or_jump() -> None:
    a, saved = book(7)
    b, _ = book(7)
    c, _ = book(8)
    start = T0 - timedelta(days=HISTORY_DAYS)
    ha = a.bars(ES.symbol, Timeframe.M1, start, T0, T0)
    assert ha == b.bars(ES.symbol, Timeframe.M1, start, T0, T0)
    assert ha != c.bars(ES.symbol, Timeframe.M1, start, T0, T0)
    assert len(ha) == HISTORY_DAYS * 1440 - 1  # every minute up to the session's, none missing
    starts = [x.start for x in ha]
    assert all(later - earlier == timedelta(minutes=1) for earlier, later in itertools.pairwise(starts))
    assert ha[-1].start == datetime(2025, 11, 3, 14, 59, tzinfo=UTC)
    assert ha[-1].close == GRID.price(OPEN)  # the session opens where the history ends
    for x, y in itertools.pairwise(ha):
        assert y.open == x.close  # each bar opens at the previous close
    for x in ha:
        assert x.low <= min(x.open, x.close) <= max(x.open, x.close) <= x.high and x.volume > 0
        assert ES.is_on_tick(x.low) and ES.is_on_tick(x.high)
    assert saved and saved[0][0] == ES.symbol and len(saved[0][1]) == HISTORY_DAYS * 1440
    a.add(ES.symbol, ts(T0), OPEN, 2)
    live = a.bars(ES.symbol, Timeframe.M1, T0 - timedelta(minutes=2, seconds=30), T0 + timedelta(seconds=1), T0)
    assert [x.start.minute for x in live] == [58, 59, 0]


def test_a_restart_loads_the_saved_bars_and_bridges_the_time_it_was_off() -> None:
    first, saved = book(3)
    first.bars(ES.symbol, Timeframe.M1, T0 - timedelta(hours=1), T0, T0)
    history = saved[0][1]
    later = T0 + timedelta(hours=2)
    resumed_at = OPEN + 40
    second = BarBook(3, load=lambda sym: history, save=lambda sym, rows: saved.append((sym, rows)))
    second.open(ES.symbol, GRID, now=later, opening=resumed_at, sigma_minute=15.0, volume_minute=4000.0, daily="cme")
    got = second.bars(ES.symbol, Timeframe.M1, T0 - timedelta(days=1), later, later)
    assert got[: len(got) - 120] == first.bars(ES.symbol, Timeframe.M1, T0 - timedelta(days=1), T0, T0)
    bridge = got[-121:]
    assert bridge[0].start == datetime(2025, 11, 3, 14, 59, tzinfo=UTC)
    assert bridge[-1].start == datetime(2025, 11, 3, 16, 59, tzinfo=UTC)
    assert bridge[-1].close == GRID.price(resumed_at)
    assert all(y.open == x.close for x, y in itertools.pairwise(bridge))
    assert saved[-1][1][0][0] == ts(datetime(2025, 11, 3, 15, 0, tzinfo=UTC))  # the bridge was saved too


def test_longer_bars_are_made_from_minutes() -> None:
    bars, _ = book(5)
    start = T0 - timedelta(days=2)
    minutes = bars.bars(ES.symbol, Timeframe.M1, start, T0, T0)
    for tf in (Timeframe.M5, Timeframe.M15, Timeframe.H1):
        longer = bars.bars(ES.symbol, tf, start, T0, T0)
        assert all(int(b.start.timestamp()) % tf.seconds == 0 and b.seconds == tf.seconds for b in longer)
        first = longer[1]  # a whole bucket
        inside = [m for m in minutes if first.start <= m.start < first.start + timedelta(seconds=tf.seconds)]
        assert first.open == inside[0].open and first.close == inside[-1].close
        assert first.high == max(m.high for m in inside) and first.low == min(m.low for m in inside)
        assert first.volume == sum(m.volume for m in inside)


def test_daily_bars_follow_the_cme_trading_day_and_the_new_york_day() -> None:
    bars, _ = book(5)
    start = T0 - timedelta(days=HISTORY_DAYS)
    days = bars.bars(ES.symbol, Timeframe.D1, start, T0, T0)
    # Futures: a day starts at 17:00 Chicago time (CDT until 2 November 2025, then CST). The paper
    # market runs through weekends, so Saturday and Sunday have days too.
    assert [d.start for d in days] == [
        datetime(2025, 10, 29, 22, tzinfo=UTC),
        datetime(2025, 10, 30, 22, tzinfo=UTC),
        datetime(2025, 10, 31, 22, tzinfo=UTC),
        datetime(2025, 11, 1, 22, tzinfo=UTC),
        datetime(2025, 11, 2, 23, tzinfo=UTC),
    ]
    minutes = bars.bars(ES.symbol, Timeframe.M1, days[1].start, days[2].start, T0)
    assert days[1].open == minutes[0].open and days[1].close == minutes[-1].close
    assert days[1].volume == sum(m.volume for m in minutes) and days[1].high == max(m.high for m in minutes)
    aapl = MASTER.resolve("AAPL")
    ny = BarBook(5)
    ny.open(aapl.symbol, Grid(aapl), now=T0, opening=27000, sigma_minute=8.0, volume_minute=30000.0, daily="ny")
    # Equities: the New York calendar day (midnight EDT, then EST).
    assert [d.start for d in ny.bars(aapl.symbol, Timeframe.D1, start, T0, T0)] == [
        datetime(2025, 10, 30, 4, tzinfo=UTC),
        datetime(2025, 10, 31, 4, tzinfo=UTC),
        datetime(2025, 11, 1, 4, tzinfo=UTC),
        datetime(2025, 11, 2, 4, tzinfo=UTC),
        datetime(2025, 11, 3, 5, tzinfo=UTC),
    ]


def test_requests_it_cannot_serve_are_refused_clearly() -> None:
    bars, _ = book()
    now = T0
    with pytest.raises(BrokerError, match="timezone-aware"):
        check_range(Timeframe.M1, datetime(2025, 11, 3), None, now)
    with pytest.raises(BrokerError, match="not after start"):
        check_range(Timeframe.M1, now, now - timedelta(minutes=1), now)
    with pytest.raises(BrokerError, match="in the future"):
        check_range(Timeframe.M1, now + timedelta(hours=1), now + timedelta(hours=2), now)
    with pytest.raises(BrokerError, match=f"more than the {MAX_BARS:,}"):
        check_range(Timeframe.S1, now - timedelta(days=2), now, now)
    with pytest.raises(BrokerError, match="unknown timeframe"):
        check_range("2m", now - timedelta(hours=1), now, now)
    assert check_range("5M", now - timedelta(hours=1), None, now) == (Timeframe.M5, now)
    with pytest.raises(BrokerError, match=r"1s bars .* reach back"):
        bars.bars(ES.symbol, Timeframe.S1, now - timedelta(hours=3), now - timedelta(hours=2), now)
    with pytest.raises(BrokerError, match="history of ESZ5 starts at"):
        bars.bars(ES.symbol, Timeframe.M1, now - timedelta(days=30), now - timedelta(days=20), now)
    with pytest.raises(BrokerError, match="no bars for"):
        bars.bars("NQZ5", Timeframe.M1, now - timedelta(hours=1), now, now)


def test_packed_seconds_keep_the_latest_bars_in_order_and_stay_bounded() -> None:
    from tterm.brokers.paper.bars import PackedBars

    ring = PackedBars(100)
    assert len(ring) == 0 and list(ring) == []
    for t in range(1000):
        ring.append((t, 5000 + t, 5001 + t, 4999 + t, 5000 + t, t % 7))
        assert len(ring) == min(t + 1, 100)
        assert len(ring._a) <= (100 + PackedBars.SLACK) * 6  # never more than the slack beyond maxlen
    bars = list(ring)
    assert [b[0] for b in bars] == list(range(900, 1000))
    assert bars[-1] == (999, 5999, 6000, 5998, 5999, 999 % 7)

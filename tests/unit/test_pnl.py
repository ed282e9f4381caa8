"""P&L history: FIFO round trips (partial fills, reversals), fees shared exactly, per-day results
on the CME trade date, and an equity curve that matches the fills."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest

from tterm.core.clock import CmeClock, default_calendar
from tterm.core.instruments import InstrumentMaster
from tterm.core.models import Fill, Side
from tterm.core.pnl import compute, fills_from_journal, window

MASTER = InstrumentMaster(today=lambda: date(2026, 11, 24))
CLOCK = CmeClock(default_calendar(), now=lambda: datetime(2026, 11, 24, 20, tzinfo=UTC))
T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # Tuesday 09:00 CT
ACCT = "paper:FUT50K"
_n = iter(range(1, 10_000))


def fill(side: str, qty: int, price: str, minutes: float = 0, *, fee: str = "0", symbol: str = "MESZ6",
         account: str = ACCT, fill_id: str | None = None) -> Fill:  # fmt: skip
    return Fill(
        fill_id=fill_id or f"f{next(_n)}",
        order_id="o",
        client_order_id="c",
        account=account,
        symbol=symbol,
        side=Side.BUY if side == "B" else Side.SELL,
        quantity=qty,
        price=D(price),
        fee=D(fee),
        broker="paper",
        ts=T0 + timedelta(minutes=minutes),
    )


def report(fills: list[Fill], start: date = date(2026, 11, 1), end: date = date(2026, 11, 30), **kw):
    return compute(fills, MASTER.resolve, CLOCK.trade_date, start=start, end=end, **kw)


def cash(fills: list[Fill]) -> D:
    """What the fills moved in cash: sells less buys at the point value, less every fee."""
    total = D(0)
    for f in fills:
        total += -f.signed_quantity * f.price * MASTER.resolve(f.symbol).point_value - f.fee
    return total


def test_a_simple_long_round_trip_net_of_fees() -> None:
    r = report([fill("B", 2, "6800.00", 0, fee="1.24"), fill("S", 2, "6802.50", 12.5, fee="1.24")])
    [t] = r.trips
    assert (t.side, t.quantity, t.entry_price, t.exit_price) == (Side.BUY, 2, D("6800.00"), D("6802.50"))
    assert t.gross == D("25.00") and t.fees == D("2.48") and t.net == D("22.52")
    assert t.duration == timedelta(minutes=12.5)
    assert r.net == D("22.52") and r.open_lots == ()


def test_partial_exits_close_the_oldest_lot_first() -> None:
    fills = [
        fill("B", 1, "6800.00", 0, fee="0.62"),
        fill("B", 2, "6801.00", 1, fee="1.24"),
        fill("S", 2, "6803.00", 2, fee="1.24"),  # closes the first lot and one of the second
        fill("S", 1, "6799.00", 3, fee="0.62"),
    ]
    r = report(fills)
    assert [(t.quantity, t.entry_price, t.exit_price) for t in r.trips] == [
        (1, D("6800.00"), D("6803.00")),
        (1, D("6801.00"), D("6803.00")),
        (1, D("6801.00"), D("6799.00")),
    ]
    assert [t.gross for t in r.trips] == [D("15.00"), D("10.00"), D("-10.00")]
    assert [t.fees for t in r.trips] == [D("1.24"), D("1.24"), D("1.24")]
    assert sum(t.net for t in r.trips) == r.net == cash(fills)


def test_a_reversal_closes_and_opens_the_other_way() -> None:
    fills = [fill("B", 2, "6800", 0, fee="1.00"), fill("S", 5, "6805", 1, fee="2.50"), fill("B", 3, "6801", 2)]
    r = report(fills)
    long, short = r.trips
    assert (long.side, long.quantity, long.gross, long.fees) == (Side.BUY, 2, D("50.00"), D("2.00"))
    assert (short.side, short.quantity, short.entry_price, short.gross) == (Side.SELL, 3, D("6805"), D("60.00"))
    assert short.fees == D("1.50")  # the reversing fill's fee for the 3 it opened
    assert r.net == cash(fills) == D("106.50")


def test_fees_that_do_not_divide_still_sum_exactly() -> None:
    fills = [fill("B", 3, "6800", 0, fee="1.00"), fill("S", 1, "6801", 1, fee="0.10"), fill("S", 1, "6801", 2),
             fill("S", 1, "6801", 3, fee="0.01")]  # fmt: skip
    r = report(fills)
    assert sum(t.fees for t in r.trips) == D("1.11")
    assert r.net == cash(fills)


def test_open_lots_and_the_curve_with_a_position_left_open() -> None:
    fills = [fill("B", 1, "6800", 0, fee="0.50"), fill("B", 1, "6810", 1, fee="0.50"), fill("S", 1, "6820", 2)]
    r = report(fills)
    assert [(lot.quantity, lot.price) for lot in r.open_lots] == [(1, D("6810"))]
    assert [p.equity for p in r.curve] == [D("-0.50"), D("-1.00"), D("99.00")]
    # The trip carries only the first lot's fee; the open lot's fee is already in the curve.
    assert r.trips[0].net == D("99.50")


def test_days_turn_at_five_pm_chicago_and_the_window_filters() -> None:
    monday_evening = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)  # 17:30 CT: Tuesday's trade date
    fills = [
        fill("B", 1, "6800", -60 * 24 * 7),  # a week before: opens a lot, outside the window
        fill("S", 1, "6810", (monday_evening - T0).total_seconds() / 60),
        fill("B", 1, "6805", 60, fee="0.62"),
        fill("S", 1, "6806", 61, fee="0.62"),
    ]
    r = report(fills, start=date(2026, 11, 24), end=date(2026, 11, 24))
    [day] = r.days
    assert day.trade_date == date(2026, 11, 24)
    # The lot opened a week ago closes today: today's round trip, matched FIFO across the window.
    assert day.trades == 2 and day.fills == 3 and day.wins == 2 and day.losses == 0
    assert day.gross == D("50.00") + D("5.00") and day.fees == D("1.24")
    assert day.net == r.net == r.curve[-1].equity
    assert r.trips[0].entry_at < datetime(2026, 11, 20, tzinfo=UTC)


def test_accounts_symbols_duplicates_and_unknown_symbols() -> None:
    a = fill("B", 1, "6800", 0, fill_id="dup")
    fills = [
        a,
        a,
        fill("S", 1, "6801", 1),
        fill("B", 10, "187.50", 2, symbol="AAPL", account="paper:CASH"),
        fill("S", 10, "188.00", 3, symbol="AAPL", account="paper:CASH"),
        fill("B", 1, "1", 4, symbol="ZZZZZ9"),
    ]
    both = report(fills)
    assert both.accounts == ("paper:CASH", ACCT) and both.net == D("5.00") + D("5.00")
    assert both.unknown_symbols == ("ZZZZZ9",)
    cash_only = report(fills, account="paper:CASH")
    assert cash_only.accounts == ("paper:CASH",) and cash_only.net == D("5.00")


def test_random_fill_streams_keep_the_curve_equal_to_the_cash(seed: int = 7) -> None:
    rng = random.Random(seed)
    for _ in range(50):
        fills, pos = [], 0
        for i in range(rng.randint(1, 30)):
            qty = rng.randint(1, 5)
            side = rng.choice("BS")
            pos += qty if side == "B" else -qty
            fills.append(fill(side, qty, f"{6800 + rng.randint(-40, 40) * D('0.25')}", i, fee=f"{qty * D('0.62')}"))
        if pos:
            fills.append(fill("S" if pos > 0 else "B", abs(pos), "6800.00", 99, fee="0.37"))
        r = report(fills)
        assert r.open_lots == ()
        assert r.curve[-1].equity == r.net == cash(fills) == sum(d.net for d in r.days) == sum(t.net for t in r.trips)
        assert sum(t.quantity for t in r.trips) * 2 == sum(f.quantity for f in fills)  # every unit matched


def test_max_drawdown() -> None:
    fills = [fill("B", 1, "6800", 0), fill("S", 1, "6810", 1), fill("B", 1, "6810", 2), fill("S", 1, "6790", 3)]
    assert report(fills).max_drawdown == D("-100.00")


def test_fills_from_journal_rows_and_window() -> None:
    good = {"fill_id": "1", "account": ACCT, "symbol": "MESZ6", "side": "buy", "quantity": 1, "price": "6800.25",
            "fee": "0.62", "broker": "paper", "ts": T0.isoformat()}  # fmt: skip
    fills, bad = fills_from_journal([good, {"fill_id": "2"}])
    assert bad == 1 and fills[0].price == D("6800.25") and fills[0].ts == T0
    assert window(date(2026, 11, 24), 1) == (date(2026, 11, 24), date(2026, 11, 24))
    assert window(date(2026, 11, 24), 7) == (date(2026, 11, 18), date(2026, 11, 24))
    with pytest.raises(ValueError, match="at least 1"):
        window(date(2026, 11, 24), 0)

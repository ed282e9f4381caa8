"""Paper options: listed expiries and strikes, the smile, option books, and covered-option cash."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest

from tterm.brokers.paper.combos import cash_needed, leg_sizes, natural
from tterm.brokers.paper.options import (
    OptionMarket,
    expiries,
    implied_vol,
    occ_symbol,
    strike_step,
    strikes,
    years_to_expiry,
)
from tterm.core.instruments import InstrumentMaster
from tterm.core.models import OptionRight, OrderLeg, Quote, Side

MASTER = InstrumentMaster(today=lambda: date(2025, 11, 3))
NOW = datetime(2025, 11, 3, 15, 0, tzinfo=UTC)


def weekdays(d: date) -> bool:
    return d.weekday() < 5


def test_weeklies_and_monthly_third_fridays() -> None:
    got = expiries(date(2025, 11, 3), weekdays)
    assert got[:5] == [date(2025, 11, 7), date(2025, 11, 14), date(2025, 11, 21), date(2025, 11, 28), date(2025, 12, 5)]
    assert [d for d in got if d > date(2025, 12, 5)] == [
        date(2025, 12, 19),
        date(2026, 1, 16),
        date(2026, 2, 20),
        date(2026, 3, 20),
        date(2026, 4, 17),
        date(2026, 5, 15),
    ]
    assert all(d.weekday() == 4 for d in got)


def test_a_friday_without_a_session_expires_the_day_before() -> None:
    good_friday = date(2026, 4, 3)
    got = expiries(date(2026, 3, 30), lambda d: weekdays(d) and d != good_friday)
    assert date(2026, 4, 2) in got and good_friday not in got


@pytest.mark.parametrize(
    ("symbol", "price", "step"),
    [("SPY", "680", "1"), ("AAPL", "270", "5"), ("AMZN", "150", "2.5"), ("F", "12", "0.5"), ("NFLX", "1200", "10")],
)
def test_strike_grids(symbol: str, price: str, step: str) -> None:
    assert strike_step(symbol, D(price)) == D(step)
    listed = strikes(symbol, D(price))
    assert len(listed) == 41 and listed == sorted(listed)
    assert all((k / D(step)) % 1 == 0 for k in listed)
    assert listed[20] == (D(price) / D(step)).to_integral_value() * D(step)


def test_the_smile_has_a_put_skew() -> None:
    t = 30 / 365
    atm = implied_vol("AAPL", 270, 270, t)
    assert implied_vol("AAPL", 240, 270, t) > atm  # puts below the money are richer
    assert implied_vol("AAPL", 200, 270, t) > implied_vol("AAPL", 240, 270, t)
    assert implied_vol("AAPL", 290, 270, t) < atm < implied_vol("AAPL", 600, 270, t)  # the smile turns up at the wing
    assert 0.2 < atm < 0.4


def test_options_expire_at_four_in_new_york() -> None:
    assert years_to_expiry(date(2025, 11, 3), datetime(2025, 11, 3, 20, 59, tzinfo=UTC)) > 0
    assert years_to_expiry(date(2025, 11, 3), datetime(2025, 11, 3, 21, 0, tzinfo=UTC)) <= 0
    assert years_to_expiry(date(2025, 11, 10), NOW) == pytest.approx((7 * 24 + 6) / (365 * 24))


def test_option_books_sit_on_the_tick_table_and_follow_the_underlying() -> None:
    market = OptionMarket(1, MASTER)
    expiry = date(2025, 12, 19)
    call = MASTER.resolve(occ_symbol("AAPL", expiry, OptionRight.CALL, D(250)))
    put = MASTER.resolve(occ_symbol("AAPL", expiry, OptionRight.PUT, D(250)))
    assert call.tick_table  # a penny class: pennies below $3, nickels above
    qc = market.add(call, D("270.00"), D("270.00"), NOW)
    qp = market.add(put, D("270.00"), D("270.00"), NOW)
    for q, inst in ((qc, call), (qp, put)):
        assert q.bid is not None and q.ask is not None and q.bid < q.ask
        assert inst.is_on_tick(q.bid) and inst.is_on_tick(q.ask)
    assert qc.bid is not None and qc.bid > 20  # 20 in the money plus time value
    theo = market.theo(call, D("270.00"), NOW)
    assert qc.bid <= D(repr(theo)) <= qc.ask  # type: ignore[operator]
    for _ in range(3):
        market.reprice("AAPL", D("280.00"), NOW)
    up_c, up_p = market.quote(call.symbol, NOW), market.quote(put.symbol, NOW)
    assert up_c is not None and up_p is not None
    assert up_c.bid > qc.bid and up_p.ask < qp.ask  # type: ignore[operator]
    for q in (up_c, up_p):
        assert q.last is None or q.bid <= q.last <= q.ask  # type: ignore[operator]


def test_the_chain_quotes_every_strike_with_greeks_and_parity_holds() -> None:
    market = OptionMarket(2, MASTER)
    aapl = MASTER.resolve("AAPL")
    made: list[str] = []

    def resolve(root: str, expiry: date, right: OptionRight, strike: D):
        made.append(occ_symbol(root, expiry, right, strike))
        return MASTER.resolve(made[-1])

    chain = market.chain(
        aapl,
        date(2025, 12, 19),
        spot=D("270.00"),
        reference=D("270.00"),
        today=date(2025, 11, 3),
        now=NOW,
        is_business_day=weekdays,
        broker="paper",
        resolve=resolve,
    )
    assert chain.expiry == date(2025, 12, 19) and chain.expiries[0] == date(2025, 11, 7)
    assert len(chain.rows) == 41 and len(made) == 82
    t = years_to_expiry(chain.expiry, NOW)
    deltas = []
    for row in chain.rows:
        c, p = row.call, row.put
        assert c is not None and p is not None and c.greeks is not None and p.greeks is not None
        assert c.bid is not None and c.ask is not None and p.bid is not None and p.ask is not None
        assert 0 < c.greeks.delta < 1 and -1 < p.greeks.delta < 0  # type: ignore[operator]
        assert c.greeks.gamma == pytest.approx(p.greeks.gamma) and c.greeks.theta < 0  # type: ignore[operator]
        deltas.append(c.greeks.delta)
        k = float(row.strike)
        if 230 <= k <= 310:
            # Put-call parity on the mids, within the two spreads.
            lhs = float(c.mid - p.mid)  # type: ignore[operator]
            rhs = 270 - k * math.exp(-0.04 * t)
            assert abs(lhs - rhs) <= float(c.ask - c.bid + p.ask - p.bid) + 0.02
    assert deltas == sorted(deltas, reverse=True)
    atm = chain.rows[20]
    assert atm.strike == 270 and atm.call is not None and atm.call.open_interest > chain.rows[0].call.open_interest  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="no options expiring 2025-12-18"):
        market.chain(
            aapl,
            date(2025, 12, 18),
            spot=D(270),
            reference=D(270),
            today=date(2025, 11, 3),
            now=NOW,
            is_business_day=weekdays,
            broker="paper",
            resolve=resolve,
        )


def q(symbol: str, bid: str, ask: str, bid_size: int = 0, ask_size: int = 0) -> Quote:
    return Quote(symbol, bid=D(bid), ask=D(ask), bid_size=bid_size, ask_size=ask_size)


def test_the_natural_price_of_a_vertical_and_its_size() -> None:
    c1 = MASTER.resolve("AAPL  251219C00270000")
    c2 = MASTER.resolve("AAPL  251219C00280000")
    legs = [(OrderLeg(c1.symbol, Side.BUY), c1), (OrderLeg(c2.symbol, Side.SELL, 2), c2)]
    quotes = {c1.symbol: q(c1.symbol, "9.90", "10.00", 5, 7), c2.symbol: q(c2.symbol, "4.20", "4.30", 9, 9)}
    assert natural(legs, quotes) == (D("10.00") - 2 * D("4.20"), [D("10.00"), D("4.20")])
    assert leg_sizes(legs, quotes, {}) == 4  # the 2x leg's 9 on the bid makes 4 units
    assert leg_sizes(legs, quotes, {(c1.symbol, Side.BUY): 5}) == 2
    assert natural(legs, {c1.symbol: quotes[c1.symbol]}) is None


def opt(kind: str, strike: int) -> object:
    return MASTER.resolve(f"AAPL  251219{kind}{strike * 1000:08d}")


@pytest.mark.parametrize(
    ("holdings", "need"),
    [
        ([("P", 250, -1)], D(25000)),  # a cash-secured put: the strike in cash
        ([("C", 270, -1), ("C", 280, 1)], D(1000)),  # a bear call spread: its width
        ([("P", 240, 1), ("P", 250, -1), ("C", 290, -1), ("C", 300, 1)], D(1000)),  # iron condor: one wing
        ([("C", 270, 1), ("C", 280, -1)], D(0)),  # a bull call spread cannot lose more than paid
        ([("S", 0, 100), ("C", 280, -1)], D(0)),  # a covered call
        ([("C", 280, -1)], None),  # a naked call
        ([("C", 280, -2), ("C", 270, 1)], None),  # a ratio spread with a naked call
        ([("P", 250, -1), ("P", 250, 1)], D(0)),
    ],
)
def test_cash_that_covers_short_options(holdings: list[tuple[str, int, int]], need: D | None) -> None:
    aapl = MASTER.resolve("AAPL")
    rows = [(aapl if kind == "S" else opt(kind, k), qty) for kind, k, qty in holdings]
    assert cash_needed(rows) == need  # type: ignore[arg-type]


def test_a_far_expiry_still_counts_in_years() -> None:
    assert years_to_expiry(date(2026, 5, 15), NOW) == pytest.approx(
        (datetime(2026, 5, 15, 20, 0, tzinfo=UTC) - NOW) / timedelta(days=365)
    )

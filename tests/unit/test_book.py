"""Book: positions and P&L net of fees, with the right point value for minis and micros."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tterm.core.book import Book
from tterm.core.instruments import InstrumentMaster
from tterm.core.models import Fill, Quote, Side

D = Decimal


@pytest.fixture
def master() -> InstrumentMaster:
    return InstrumentMaster(today=lambda: date(2026, 11, 24))


def fill(symbol: str, side: Side, qty: int, price: str, fee: str = "0", account: str = "paper:A", n: int = 0) -> Fill:
    return Fill(
        fill_id=f"f{n}-{symbol}-{side}-{qty}-{price}",
        order_id=f"o{n}",
        client_order_id=f"c{n}",
        account=account,
        symbol=symbol,
        side=side,
        quantity=qty,
        price=D(price),
        fee=D(fee),
    )


@pytest.mark.parametrize(
    ("symbol", "fee", "gross", "net"),
    [
        # 10 points on ES: 10 * $50 = $500; fees 2 sides * $2.14.
        ("ESZ6", "2.14", D("500"), D("495.72")),
        # 10 points on MES: 10 * $5 = $50; fees 2 sides * $0.62.
        ("MESZ6", "0.62", D("50"), D("48.76")),
    ],
)
def test_round_trip_pnl_net_of_fees_es_vs_mes(master, symbol, fee, gross, net):
    book = Book(master)
    book.apply_fill(fill(symbol, Side.BUY, 1, "5000.00", fee, n=1))
    book.apply_fill(fill(symbol, Side.SELL, 1, "5010.00", fee, n=2))
    pos = book.position("paper:A", symbol)
    assert pos.quantity == 0
    assert pos.fees == D(fee) * 2
    assert pos.realized_pnl == net
    assert pos.realized_pnl + pos.fees == gross


def test_es_is_worth_ten_mes(master):
    book = Book(master)
    book.apply_fill(fill("ESZ6", Side.BUY, 1, "5000", n=1))
    book.apply_fill(fill("MESZ6", Side.BUY, 10, "5000", n=2))
    book.mark(Quote(symbol="ESZ6", last=D("5002.25")))
    book.mark(Quote(symbol="MESZ6", last=D("5002.25")))
    es = book.position("paper:A", "ESZ6").unrealized_pnl
    mes = book.position("paper:A", "MESZ6").unrealized_pnl
    assert es == D("112.5")  # 9 ticks * $12.50
    assert es == mes


def test_average_price_adds_and_reversal(master):
    book = Book(master)
    book.apply_fill(fill("MESZ6", Side.BUY, 1, "5000", n=1))
    book.apply_fill(fill("MESZ6", Side.BUY, 3, "5004", n=2))
    pos = book.position("paper:A", "MESZ6")
    assert pos.quantity == 4 and pos.avg_price == D("5003")
    # Sell 6: closes 4 at 5006 (+3 pts * 4 * $5 = $60), opens short 2 at 5006.
    pos = book.apply_fill(fill("MESZ6", Side.SELL, 6, "5006", n=3))
    assert pos.quantity == -2
    assert pos.avg_price == D("5006")
    assert pos.realized_pnl == D("60")
    book.mark(Quote(symbol="MESZ6", bid=D("5004.75"), ask=D("5005.25")))
    assert book.position("paper:A", "MESZ6").unrealized_pnl == D("10")  # short 2 from 5006 to mid 5005


def test_fifo_closes_the_oldest_lot_first_like_the_broker(master):
    book = Book(master)
    book.apply_fill(fill("MESZ6", Side.BUY, 1, "5000", n=1))
    book.apply_fill(fill("MESZ6", Side.BUY, 1, "5010", n=2))
    pos = book.apply_fill(fill("MESZ6", Side.SELL, 1, "5020", n=3))
    # FIFO realizes against 5000 (20 pts * $5 = $100); average cost would have said $75.
    assert pos.realized_pnl == D("100")
    assert pos.quantity == 1 and pos.avg_price == D("5010")
    book.mark(Quote(symbol="MESZ6", last=D("5020")))
    assert book.position("paper:A", "MESZ6").unrealized_pnl == D("50")


def test_average_price_of_uneven_lots_is_shown_to_1e8(master):
    book = Book(master)
    book.apply_fill(fill("MESZ6", Side.BUY, 1, "4750.00", n=1))
    pos = book.apply_fill(fill("MESZ6", Side.BUY, 2, "4750.25", n=2))
    assert pos.avg_price == D("4750.16666667")
    book.mark(Quote(symbol="MESZ6", last=D("4751.00")))
    assert book.position("paper:A", "MESZ6").unrealized_pnl == D("12.50")  # exact: 1*1.00*5 + 2*0.75*5


def test_accounts_are_separate_and_pnl_sums(master):
    book = Book(master)
    book.apply_fill(fill("NQZ6", Side.SELL, 2, "21000", "4.28", account="paper:A", n=1))
    book.apply_fill(fill("NQZ6", Side.BUY, 1, "21000", "2.14", account="paper:B", n=2))
    book.mark(Quote(symbol="NQZ6", last=D("20990")))
    a = book.pnl("paper:A")
    b = book.pnl("paper:B")
    assert a.unrealized == D("400")  # 10 pts * $20 * 2
    assert a.realized_net == D("-4.28")
    assert b.unrealized == D("-200")
    assert book.accounts_holding("NQZ6") == {"paper:A", "paper:B"}


def test_reset_day_keeps_positions_and_clears_realized(master):
    book = Book(master)
    book.apply_fill(fill("MESZ6", Side.BUY, 2, "5000", "0.62", n=1))
    book.apply_fill(fill("MESZ6", Side.SELL, 1, "5001", "0.62", n=2))
    book.reset_day()
    pos = book.position("paper:A", "MESZ6")
    assert pos.quantity == 1 and pos.avg_price == D("5000")
    assert pos.realized_pnl == 0 and pos.fees == 0


fills_strategy = st.lists(
    st.tuples(
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(min_value=1, max_value=20),
        st.integers(min_value=19_000, max_value=21_000),  # price in ticks of 0.25
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(
    fills=fills_strategy,
    mark_ticks=st.integers(min_value=19_000, max_value=21_000),
    symbol=st.sampled_from(["ESZ6", "MESZ6"]),
)
def test_laws_position_is_sum_of_fills_and_pnl_matches_marks(fills, mark_ticks, symbol):
    """Position = signed sum of fills; realized + unrealized + fees = sum over fills of
    (mark - fill price) * signed qty * point value, whatever the order of adds and reversals."""
    master = InstrumentMaster(today=lambda: date(2026, 11, 24))
    inst = master.resolve(symbol)
    book = Book(master)
    expected_total = D(0)
    mark = D(mark_ticks) * D("0.25")
    fee = inst.fee_per_side
    for n, (side, qty, ticks) in enumerate(fills):
        price = D(ticks) * D("0.25")
        book.apply_fill(fill(symbol, side, qty, str(price), str(fee * qty), n=n))
        expected_total += (mark - price) * side.sign * qty * inst.point_value
    book.set_mark(symbol, mark)
    pos = book.position("paper:A", symbol)
    assert pos.quantity == sum(s.sign * q for s, q, _ in fills)
    assert pos.fees == sum(fee * q for _, q, _ in fills)
    # FIFO lots keep every fill price, so nothing is divided out and the law holds exactly.
    assert pos.realized_pnl + pos.unrealized_pnl + pos.fees == expected_total

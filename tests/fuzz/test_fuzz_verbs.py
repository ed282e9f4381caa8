"""The command-bar / palette verb parser (tterm/tui/parse.py, re-exported from tterm/core/verbs.py),
fuzzed from its own vocabulary: every line parses to a command or raises ParseError; an order that
parses is valid (positive bounded quantity, finite prices, ticks >= 1, a type that matches its
prices), its canonical text parses back to the same command, and building it on a real instrument
gives a valid OrderRequest or a ParseError, never anything else."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.budget import FUZZ
from tterm.core.instruments import InstrumentMaster
from tterm.core.models import OrderRequest, OrderSource, OrderType
from tterm.core.verbs import MAX_QUANTITY
from tterm.tui import parse as p

WORDS = sorted(
    {
        *p.BUY_WORDS,
        *p.SELL_WORDS,
        *p.MARKET_WORDS,
        *p.LIMIT_WORDS,
        *p.STOP_WORDS,
        *p.STOP_LIMIT_WORDS,
        *p.TP_WORDS,
        *p.SL_WORDS,
        *p.ACCOUNT_WORDS,
        *p.TICK_WORDS,
        *p.TIF_WORDS,
        *p.FLATTEN_WORDS,
        *p.CANCEL_WORDS,
        *p.WATCH_WORDS,
        *p.KILL_WORDS,
        *p.LOCK_WORDS,
        *p.SORT_WORDS,
        *p.GO_WORDS,
        *p.PANES,
        *p.SORT_COLUMNS,
        "trail",
        "all",
        "@",
        ":",
        "=",
        "asc",
        "desc",
    }
)
SYMBOLS = ["MES", "MESZ6", "ES", "AAPL", "/ES", "NQ1!", "spy", "A.B", "1MES", "_X", "é", "M\u0301ES"]
ODD_NUMBERS = [
    "0", "-0", "00", "-1", "1e3", "1E-3", "nan", "NaN", "inf", "-inf", "Infinity", "1_000", "١٢", "²",
    "0.", ".5", "+.25", "5000.125", "9" * 13, "9" * 40, "1" + "0" * 4400, "0x10", "1/2", "½", "1,5",
]  # fmt: skip


def numbers() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(-(10**30), 10**30).map(str),
        st.decimals(allow_nan=True, allow_infinity=True, places=None).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.sampled_from(ODD_NUMBERS),
        st.integers(0, 10**6).map(lambda n: f"{n}t"),
        st.integers(0, 10**6).map(lambda n: f"@{n}.25"),
    )


def tokens() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(WORDS),
        st.sampled_from(WORDS).map(str.upper),
        st.sampled_from(SYMBOLS),
        numbers(),
        st.text(max_size=6),
    )


LINES = st.lists(tokens(), max_size=12).map(" ".join)
#: Lines shaped like orders (verb, quantity, symbol, then anything), so deep paths are reached.
ORDER_LINES = st.tuples(
    st.sampled_from(sorted(p.BUY_WORDS | p.SELL_WORDS)),
    numbers(),
    st.sampled_from(SYMBOLS),
    st.lists(tokens(), max_size=8),
).map(lambda t: " ".join([t[0], t[1], t[2], *t[3]]))

MASTER = InstrumentMaster()
INSTRUMENTS = [MASTER.resolve("MES"), MASTER.resolve("AAPL")]


def _valid_order(cmd: p.OrderCommand) -> None:
    assert 1 <= cmd.quantity <= MAX_QUANTITY
    for price in (cmd.limit_price, cmd.stop_price, cmd.take_profit_price, cmd.stop_loss_price, cmd.trail_amount):
        assert price is None or (isinstance(price, Decimal) and price.is_finite()), price
    for ticks in (cmd.take_profit_ticks, cmd.stop_loss_ticks, cmd.trail_ticks):
        assert ticks is None or ticks >= 1, ticks
    t = cmd.order_type
    assert (cmd.limit_price is not None) == t.needs_limit, (t, cmd.limit_price)
    assert (cmd.stop_price is not None) == t.needs_stop, (t, cmd.stop_price)
    if t is OrderType.TRAILING_STOP:
        assert (cmd.trail_ticks is None) != (cmd.trail_amount is None)
    assert cmd.symbol and cmd.symbol == cmd.symbol.upper()


def _check(line: str) -> None:
    try:
        cmd = p.parse(line)
    except p.ParseError as exc:
        assert str(exc), line
        return
    assert p.describe(cmd)
    if not isinstance(cmd, p.OrderCommand):
        return
    _valid_order(cmd)
    assert p.parse(p.format_order(cmd)) == cmd, (line, p.format_order(cmd))
    for inst in INSTRUMENTS:
        try:
            request = p.build_order(cmd, account="paper:FUT50K", instrument=inst, source=OrderSource.COMMAND_BAR)
        except p.ParseError as exc:
            assert str(exc)
            continue
        assert isinstance(request, OrderRequest)
        assert request.quantity == cmd.quantity and request.symbol == inst.symbol
        for price in (request.limit_price, request.stop_price):
            if price is not None:
                assert inst.round_price(price, "reject") == price


@FUZZ
@given(LINES)
@example("buy 1 MES @ 1" + "0" * 4400)
@example("sell 2 MES stl 10 9 tp 4 sl @1e9")
def test_any_line_is_a_command_or_a_parse_error(line: str) -> None:
    _check(line)


@FUZZ
@given(ORDER_LINES)
@example("buy 1 AAPL 190.005")
@example("buy 1 MES trail 0")
@example("sell 1 MES stp 5000 lmt 4999 tp 0t")
def test_any_order_line_is_a_valid_order_or_a_parse_error(line: str) -> None:
    _check(line)


@FUZZ
@given(st.text(max_size=80))
def test_any_text_is_a_command_or_a_parse_error(line: str) -> None:
    _check(line)

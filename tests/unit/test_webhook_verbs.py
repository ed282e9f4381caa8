"""The shared verb parser (palette, command bar, plain-text webhook alerts)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tterm.core.models import Bracket, OrderSource, OrderType, Side, TimeInForce
from tterm.core.verbs import (
    AccountVerb,
    CancelVerb,
    FlattenVerb,
    OrderVerb,
    ThemeVerb,
    VerbError,
    WatchVerb,
    parse_verb,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("buy 2 MES mkt", OrderVerb(Side.BUY, 2, "MES")),
        ("BUY 2 mes", OrderVerb(Side.BUY, 2, "MES")),
        (
            "sell 1 ES 5000.25 lmt",
            OrderVerb(Side.SELL, 1, "ES", OrderType.LIMIT, limit_price=Decimal("5000.25")),
        ),
        ("b 100 aapl @187.5", OrderVerb(Side.BUY, 100, "AAPL", OrderType.LIMIT, limit_price=Decimal("187.5"))),
        ("s AAPL 10 @ 190", OrderVerb(Side.SELL, 10, "AAPL", OrderType.LIMIT, limit_price=Decimal("190"))),
        (
            "buy 1 NQ mkt tp 40 sl 20",
            OrderVerb(Side.BUY, 1, "NQ", bracket=Bracket(take_profit_ticks=40, stop_loss_ticks=20)),
        ),
        (
            "B 2 MES @ 5010.25 BR 8/16",
            OrderVerb(
                Side.BUY,
                2,
                "MES",
                OrderType.LIMIT,
                limit_price=Decimal("5010.25"),
                bracket=Bracket(take_profit_ticks=8, stop_loss_ticks=16),
            ),
        ),
        ("sell 1 MES1! stp 4990", OrderVerb(Side.SELL, 1, "MES1!", OrderType.STOP, stop_price=Decimal("4990"))),
        (
            "buy 1 ES stp 5001 lmt 5002 gtc",
            OrderVerb(
                Side.BUY,
                1,
                "ES",
                OrderType.STOP_LIMIT,
                limit_price=Decimal("5002"),
                stop_price=Decimal("5001"),
                tif=TimeInForce.GTC,
            ),
        ),
        (
            "buy 1 MES mkt tp @5020 sl 12 in paper:FUT50K",
            OrderVerb(
                Side.BUY,
                1,
                "MES",
                bracket=Bracket(take_profit_price=Decimal("5020"), stop_loss_ticks=12),
                account="paper:FUT50K",
            ),
        ),
        ("buy 1 CME_MINI:MES1! mkt", OrderVerb(Side.BUY, 1, "CME_MINI:MES1!")),
        ("flatten MES", FlattenVerb("MES")),
        ("flatten all", FlattenVerb(None)),
        ("exit mes in paper:A", FlattenVerb("MES", account="paper:A")),
        ("close all", FlattenVerb(None)),
        ("cancel all", CancelVerb(None)),
        ("cancel NQ", CancelVerb("NQ")),
        ("watch NVDA amd", WatchVerb(("NVDA", "AMD"))),
        ("unwatch TSLA", WatchVerb(("TSLA",), add=False)),
        ("theme tterm-light", ThemeVerb("tterm-light")),
        ("account Paper 50K", AccountVerb("Paper 50K")),
    ],
)
def test_parses(text: str, expected: object) -> None:
    assert parse_verb(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty command"),
        ("hello world", "unknown command 'hello'"),
        ("buy", "needs a quantity and a symbol"),
        ("buy MES", "needs a quantity and a symbol"),
        ("buy 2.5 MES", "must be a whole number"),
        ("buy 0 MES", "at least 1"),
        ("buy 2 MES mkt 5000", "market order takes no price"),
        ("buy 2 MES lmt", "limit order needs a price"),
        ("buy 2 MES 5000 5001", "two limit prices"),
        ("buy 2 MES stp", "stp needs a price"),
        ("buy 2 MES stp abc", "'abc' is not a price"),
        ("buy 2 MES tp 1.5", "not a whole number of ticks"),
        ("buy 2 MES tp 0", "not a whole number of ticks"),
        ("buy 2 MES br 8", "br needs TP/SL"),
        ("buy 2 MES mkt lmt 5", "order type given twice"),
        ("buy 2 MES gtc day", "time in force given twice"),
        ("buy 2 MES frobnicate", "I don't understand 'frobnicate'"),
        ("buy 2 MES in", "'in' needs an account"),
        ("flatten", "flatten what?"),
        ("cancel MES NQ", "takes one symbol or 'all'"),
        ("watch", "at least one symbol"),
        ("theme a b", "exactly one theme"),
    ],
)
def test_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(VerbError, match=message.replace("?", r"\?")):
        parse_verb(text)


def test_to_request_and_describe() -> None:
    verb = parse_verb("sell 3 MES 5000.25 tp 8")
    assert isinstance(verb, OrderVerb)
    req = verb.to_request("paper:A", source=OrderSource.WEBHOOK, quantity=6, strategy="s1")
    assert (req.account, req.quantity, req.limit_price, req.strategy) == ("paper:A", 6, Decimal("5000.25"), "s1")
    assert req.source is OrderSource.WEBHOOK
    assert verb.describe().startswith("SELL 3 MES limit 5000.25 take-profit 8 ticks")


@given(
    side=st.sampled_from(["buy", "sell", "b", "s"]),
    qty=st.integers(1, 10_000),
    sym=st.sampled_from(["MES", "ES1!", "AAPL", "MNQZ6"]),
    price=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999"), places=2),
    tp=st.integers(1, 500),
)
def test_order_round_trip_law(side: str, qty: int, sym: str, price: Decimal, tp: int) -> None:
    """Whatever order is written, the parse carries exactly the numbers that were typed."""
    verb = parse_verb(f"{side} {qty} {sym} @{price} tp {tp}")
    assert isinstance(verb, OrderVerb)
    assert (verb.quantity, verb.symbol, verb.limit_price) == (qty, sym, price)
    assert verb.bracket == Bracket(take_profit_ticks=tp)
    assert verb.side is (Side.BUY if side.startswith("b") else Side.SELL)


@given(st.text(max_size=40))
def test_never_crashes(text: str) -> None:
    """Any input either parses or raises VerbError, never anything else."""
    try:
        verb = parse_verb(text)
    except VerbError as exc:
        assert str(exc)  # always a message saying what is wrong
    else:
        assert verb.describe()

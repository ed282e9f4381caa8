"""Price alert conditions and their text form (pure: no engine)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tterm.core.alerts.model import (
    Alert,
    AlertError,
    AlertField,
    AlertOp,
    parse_alert_spec,
)
from tterm.core.models import Quote


def alert(op: AlertOp, price: str, side: int = 0, fld: AlertField = AlertField.LAST) -> Alert:
    return Alert(alert_id=1, symbol="MESZ6", op=op, price=D(price), field=fld, side=side)


@pytest.mark.parametrize(
    ("op", "value", "fires"),
    [
        (AlertOp.GT, "6800.25", True),
        (AlertOp.GT, "6800", False),
        (AlertOp.GE, "6800", True),
        (AlertOp.GE, "6799.75", False),
        (AlertOp.LT, "6799.75", True),
        (AlertOp.LT, "6800", False),
        (AlertOp.LE, "6800", True),
        (AlertOp.LE, "6800.25", False),
    ],
)
def test_comparisons(op: AlertOp, value: str, fires: bool) -> None:
    assert alert(op, "6800").evaluate(D(value)) == (fires, 0)


def test_crosses_up_and_down_from_the_last_seen_side() -> None:
    below = alert(AlertOp.CROSSES, "190", side=-1)
    assert below.evaluate(D("189.99")) == (False, -1)
    assert below.evaluate(D("190")) == (True, -1)  # reaching the level from below counts
    assert below.evaluate(D("191")) == (True, -1)
    above = alert(AlertOp.CROSSES, "190", side=+1)
    assert above.evaluate(D("190.01")) == (False, 1)
    assert above.evaluate(D("189.50")) == (True, 1)


def test_crosses_learns_the_side_from_the_first_price_and_never_fires_on_it() -> None:
    fresh = alert(AlertOp.CROSSES, "190")
    assert fresh.evaluate(D("195")) == (False, 1)
    assert fresh.evaluate(D("185")) == (False, -1)
    assert fresh.evaluate(D("190")) == (False, 0)  # on the level: no side yet


def test_fields_of_a_quote() -> None:
    q = Quote("MESZ6", bid=D("6800"), ask=D("6800.50"), last=D("6800.25"))
    assert AlertField.LAST.of(q) == D("6800.25")
    assert AlertField.BID.of(q) == D("6800")
    assert AlertField.ASK.of(q) == D("6800.50")
    assert AlertField.MID.of(q) == D("6800.25")
    # mid needs both sides: no fallback to the last trade
    assert AlertField.MID.of(Quote("MESZ6", bid=D("6800"), last=D("6801"))) is None
    assert AlertField.LAST.of(Quote("MESZ6", bid=D("6800"))) is None


@pytest.mark.parametrize(
    ("text", "symbol", "fld", "op", "price"),
    [
        ("MES > 6800", "MES", AlertField.LAST, AlertOp.GT, "6800"),
        ("mes>6800.25", "MES", AlertField.LAST, AlertOp.GT, "6800.25"),
        ("AAPL crosses 190", "AAPL", AlertField.LAST, AlertOp.CROSSES, "190"),
        ("AAPL x 190", "AAPL", AlertField.LAST, AlertOp.CROSSES, "190"),
        ("ES bid >= 5000", "ES", AlertField.BID, AlertOp.GE, "5000"),
        ("ES ask <=5000", "ES", AlertField.ASK, AlertOp.LE, "5000"),
        ("NQ mid < 21000", "NQ", AlertField.MID, AlertOp.LT, "21000"),
        ("CL below 70.5", "CL", AlertField.LAST, AlertOp.LE, "70.5"),
        ("CL above .5", "CL", AlertField.LAST, AlertOp.GE, "0.5"),
    ],
)
def test_parse(text: str, symbol: str, fld: AlertField, op: AlertOp, price: str) -> None:
    spec = parse_alert_spec(text.split())
    assert (spec.symbol, spec.field, spec.op, spec.price) == (symbol, fld, op, D(price))


def test_parse_actions_and_note() -> None:
    spec = parse_alert_spec(["MES", ">", "6800", "webhook", "phone", "run", "say", "note", "breakout", ">", "high"])
    assert (spec.webhook, spec.command, spec.note) == ("phone", "say", "breakout > high")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "missing the condition"),
        ("MES", "missing the condition after MES"),
        ("MES = 6800", "'=' is not a condition"),
        ("MES == 6800", "is not a condition"),
        ("MES > ", "missing the price"),
        ("MES > abc", "'abc' is not a price"),
        ("MES > -5", "must be positive"),
        ("MES > 0", "must be positive"),
        ("MES > 0.00", "must be positive"),
        ("MES > 1e5", "is not a price"),
        ("MES > " + "9" * 40, "is not a price"),
        ("6800 > 6800", "is not a symbol"),
        ("MES > 6800 tomorrow", "unexpected 'tomorrow'"),
        ("MES > 6800 webhook", "missing the webhook name"),
        ("MES > 6800 webhook http://x", "is not a webhook name"),
        ("MES > 6800 note " + "x" * 201, "at most 200"),
    ],
)
def test_parse_refuses_bad_input(text: str, message: str) -> None:
    with pytest.raises(AlertError, match=message.replace("(", r"\(")):
        parse_alert_spec(text.split())

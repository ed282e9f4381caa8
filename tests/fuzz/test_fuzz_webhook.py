"""Webhook payloads (tterm/hub/webhook.py) fuzzed from the shipped examples: each field of each
form (TradersPost, PickMyTrade, target position) replaced by nulls, huge and tiny numbers, numbers
as text, unknown enum words, nested objects or lists; fields dropped; unknown fields added. Every
body gives a Signal or a typed WebhookError (the unit tests fuzz free text and free objects); a
Signal that parses is one an order can be made from: quantities whole and bounded, prices finite,
distances positive, the stop prices an order type needs present, multipliers inside their bounds."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.budget import FUZZ
from tterm.core.models import OrderType
from tterm.hub.webhook import MAX_MULTIPLIER, Action, ErrorCode, Signal, WebhookError, parse_body

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "webhooks"
FILLS = {
    "{{ticker}}": "MES1!",
    "{{close}}": "5000.25",
    "{{timenow}}": "2026-11-24T15:00:00Z",
    "{{strategy.order.action}}": "buy",
    "{{strategy.order.contracts}}": "2",
    "{{strategy.market_position}}": "long",
    "{{strategy.market_position_size}}": "3",
    "YOUR_WEBHOOK_SECRET": "s3cret-s3cret-s3cret",
}


def _example(name: str) -> dict[str, Any]:
    text = (EXAMPLES / name).read_text()
    for k, v in FILLS.items():
        text = text.replace(k, v)
    data = json.loads(text)
    assert isinstance(data, dict)
    return data


BASES = [_example(p.name) for p in sorted(EXAMPLES.glob("*.json"))]
FIELDS = sorted({k for b in BASES for k in b} | {"stopPrice", "limitPrice", "sentiment", "id", "tif", "position_size"})
WORDS = ["buy", "sell", "exit", "cancel", "add", "close", "long", "short", "flat", "bullish", "bearish",
         "market", "limit", "stop", "stop_limit", "trailing", "gtc", "day", "ioc", "fok", "BUY", "x"]  # fmt: skip
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.sampled_from([0, -0, 1, -1, 10**6, 10**9, 2**63, 10**400 // 10**380]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["1e999999", "-1e-999999", "NaN", "Infinity", "-0", "0.0000001", "1_000", "١٢", " 5 ", ""]),
    st.integers(-5, 10**7).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
    st.sampled_from(WORDS),
    st.text(max_size=10),
    st.lists(st.integers(-3, 3), max_size=2),
    st.dictionaries(st.sampled_from(["amount", "percent", "price", "limitPrice", "stopPrice", "type"]),
                    st.one_of(st.none(), st.integers(-3, 10**6), st.text(max_size=6)), max_size=3),
)  # fmt: skip


@st.composite
def bodies(draw: st.DrawFn) -> str:
    body = dict(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 5))):
        what = draw(st.sampled_from(["replace", "drop", "add"]))
        if what == "drop" and body:
            del body[draw(st.sampled_from(sorted(body)))]
        elif what == "replace" and body:
            body[draw(st.sampled_from(sorted(body)))] = draw(VALUES)
        else:
            body[draw(st.sampled_from(FIELDS))] = draw(VALUES)
    return json.dumps(body)


def _positive(value: Decimal | None) -> bool:
    return value is None or (isinstance(value, Decimal) and value.is_finite() and value > 0)


def _valid(sig: Signal) -> None:
    assert sig.describe()
    assert sig.quantity is None or (isinstance(sig.quantity, int) and 0 <= sig.quantity <= 10**9), sig.quantity
    if sig.action in (Action.BUY, Action.SELL, Action.ADD, Action.ORDER):
        assert sig.quantity is None or sig.quantity >= 1, sig
    assert sig.target is None or abs(sig.target) <= 10**9
    # Prices may be zero or negative (futures have traded below zero); the router checks them
    # against the instrument. Distances and percentages must be positive.
    for name in ("limit_price", "stop_price", "tp_price", "sl_price", "price"):
        value = getattr(sig, name)
        assert value is None or (isinstance(value, Decimal) and value.is_finite()), (name, value)
    for name in ("tp_amount", "sl_amount", "tp_percent", "sl_percent", "tp_dollars", "sl_dollars"):
        assert _positive(getattr(sig, name)), (name, getattr(sig, name))
    for ticks in (sig.tp_ticks, sig.sl_ticks):
        assert ticks is None or ticks >= 1
    if sig.action in (Action.BUY, Action.SELL, Action.ADD, Action.ORDER):
        # A limit without limitPrice is priced at routing (the alert's price, else the quote).
        assert sig.stop_price is not None or not sig.order_type.needs_stop, sig
        assert sig.limit_price is not None or sig.order_type is not OrderType.STOP_LIMIT, sig
    for pick in sig.accounts:
        assert pick.multiplier is None or 0 < pick.multiplier <= MAX_MULTIPLIER


@FUZZ
@given(bodies())
def test_any_mutated_example_is_a_valid_signal_or_a_typed_error(body: str) -> None:
    try:
        sig = parse_body(body)
    except WebhookError as exc:
        assert exc.code in ErrorCode and exc.message
        return
    _valid(sig)

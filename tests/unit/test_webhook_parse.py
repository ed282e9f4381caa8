"""Webhook body parsing: every payload form, lenient TradingView input, and a typed error for each refusal."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tterm.core.models import OrderType, Side, TimeInForce
from tterm.hub.webhook import (
    AccountPick,
    Action,
    ErrorCode,
    Sentiment,
    WebhookError,
    extract_secret,
    parse_body,
    parse_time,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "webhooks"
NOW = "2026-03-02T15:04:05Z"
PLACEHOLDERS = {
    "{{ticker}}": "MES1!",
    "{{close}}": "5012.25",
    "{{timenow}}": NOW,
    "{{strategy.order.action}}": "sell",
    "{{strategy.order.contracts}}": "2",
    "{{strategy.order.price}}": "5012.25",
    "{{strategy.order.id}}": "Short",
    "{{strategy.market_position}}": "short",
    "{{strategy.market_position_size}}": "2",
    "YOUR_WEBHOOK_SECRET": "s3cret-value",
}


def render(name: str, **extra: str) -> str:
    text = (EXAMPLES / name).read_text()
    for k, v in {**PLACEHOLDERS, **extra}.items():
        text = text.replace(k, v)
    return text


def err(body: str) -> WebhookError:
    with pytest.raises(WebhookError) as info:
        parse_body(body)
    return info.value


# --------------------------------------------------------------------------- every example parses


def test_every_example_file_parses() -> None:
    names = sorted(p.name for p in EXAMPLES.iterdir() if p.suffix in (".json", ".txt"))
    assert len(names) >= 9
    for name in names:
        sig = parse_body(render(name))
        assert sig.ticker in ("MES1!", "MES"), name


def test_traderspost_buy() -> None:
    sig = parse_body(render("traderspost-buy.json"))
    assert sig.form == "traderspost"
    assert (sig.action, sig.side, sig.sentiment, sig.quantity) == (Action.BUY, Side.BUY, Sentiment.LONG, 1)
    assert sig.price == Decimal("5012.25")
    assert sig.alert_time == datetime(2026, 3, 2, 15, 4, 5, tzinfo=UTC)
    assert sig.ignored == ()


def test_traderspost_strategy_placeholders_arrive_as_strings() -> None:
    sig = parse_body(render("traderspost-strategy.json"))
    assert (sig.action, sig.quantity, sig.sentiment) == (Action.SELL, 2, Sentiment.SHORT)
    assert sig.alert_id == f"Short-{NOW}"


def test_traderspost_limit_bracket() -> None:
    sig = parse_body(render("traderspost-limit-bracket.json"))
    assert sig.order_type is OrderType.LIMIT and sig.limit_price == Decimal("5012.25")
    assert (sig.tp_amount, sig.sl_amount) == (Decimal(10), Decimal(5))
    assert sig.tif is TimeInForce.DAY


def test_traderspost_exit_and_cancel() -> None:
    assert parse_body(render("traderspost-exit.json")).action is Action.EXIT
    assert parse_body(render("traderspost-cancel.json")).action is Action.CANCEL


def test_pickmytrade() -> None:
    sig = parse_body(render("pickmytrade.json"))
    assert sig.form == "pickmytrade"
    assert (sig.action, sig.side, sig.quantity) == (Action.SELL, Side.SELL, 2)
    assert sig.tp_price is None and sig.sl_price is None  # 0 means "not used"
    assert sig.accounts == (AccountPick("paper:FUT50K", Decimal(1)), AccountPick("paper:CASH", Decimal(2)))
    assert sig.alert_time is not None


def test_pickmytrade_close_and_prices() -> None:
    body = {"symbol": "NQ1!", "data": "close", "date": NOW, "token": "x"}
    assert parse_body(json.dumps(body)).action is Action.EXIT
    body = {"symbol": "NQ1!", "data": "buy", "quantity": 1, "tp": 21000.5, "sl": "20900", "dollar_sl": 0}
    sig = parse_body(json.dumps(body))
    assert (sig.tp_price, sig.sl_price, sig.sl_dollars) == (Decimal("21000.5"), Decimal(20900), None)


def test_target_position() -> None:
    sig = parse_body(render("target-position.json"))
    assert (sig.form, sig.action, sig.target) == ("target", Action.TARGET, -2)
    flat = render(
        "target-position.json", **{"{{strategy.market_position}}": "flat", "{{strategy.market_position_size}}": "0"}
    )
    assert parse_body(flat).target == 0
    signed = parse_body(json.dumps({"ticker": "ES1!", "position_size": "-3", "time": NOW}))
    assert signed.target == -3


def test_text_verbs() -> None:
    sig = parse_body(render("text-order.txt"))
    assert (sig.form, sig.action, sig.side, sig.quantity, sig.ticker) == ("text", Action.ORDER, Side.BUY, 2, "MES")
    assert (sig.tp_ticks, sig.sl_ticks) == (8, 16)
    assert parse_body("flatten MES").action is Action.EXIT
    assert parse_body("exit MES").action is Action.EXIT
    everything = parse_body("flatten all")
    assert (everything.action, everything.ticker) == (Action.EXIT, "")
    assert parse_body("cancel all").action is Action.CANCEL
    assert parse_body("buy 1 MES mkt in paper:CASH").accounts == (AccountPick("paper:CASH"),)


def test_text_plain_body_that_is_json_is_json() -> None:
    """TradingView labels the body text/plain when it is not JSON; a JSON body is JSON whatever the label."""
    sig = parse_body('  {"ticker":"MES1!","action":"buy","quantity":"1"}\n')
    assert sig.form == "traderspost"


def test_empty_unquoted_placeholder_is_repaired() -> None:
    sig = parse_body('{"ticker": "MES1!", "action": "exit", "quantity": , "time": "' + NOW + '"}')
    assert sig.repaired and sig.action is Action.EXIT and sig.quantity is None


def test_keys_ignore_case_and_separators() -> None:
    sig = parse_body(json.dumps({"Ticker": "es1!", "ACTION": "Buy", "order_type": "LMT", "limit_price": "5000.25"}))
    assert (sig.ticker, sig.order_type, sig.limit_price) == ("ES1!", OrderType.LIMIT, Decimal("5000.25"))


def test_unknown_fields_are_reported_not_fatal() -> None:
    sig = parse_body(json.dumps({"ticker": "ES", "action": "buy", "interval": "5", "extras": {"a": 1}}))
    assert sig.ignored == ("extras", "interval")


# --------------------------------------------------------------------------- secrets


def test_secret_extraction() -> None:
    assert extract_secret(render("traderspost-buy.json")) == "s3cret-value"
    assert extract_secret(render("pickmytrade.json")) == "s3cret-value"
    assert extract_secret("buy 1 MES mkt passphrase=abc123") == "abc123"
    assert extract_secret("buy 1 MES mkt") is None
    assert parse_body("buy 1 MES mkt passphrase=abc123").quantity == 1


# --------------------------------------------------------------------------- typed errors


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ("", ErrorCode.MALFORMED, "empty body"),
        ('{"ticker": "MES1!", "action": "buy", "quantity": 1', ErrorCode.MALFORMED, "not valid JSON"),
        ("[1, 2]", ErrorCode.MALFORMED, "one object"),
        ('{"hello": 1}', ErrorCode.MALFORMED, "unknown alert format"),
        ('{"action": "buy"}', ErrorCode.MALFORMED, "no ticker"),
        ("hello there", ErrorCode.MALFORMED, "not a text command"),
        ("buy 2 MES", ErrorCode.MALFORMED, "say how to execute"),
        ('{"ticker": "ES", "action": "buy", "quantity": 1.5}', ErrorCode.MALFORMED, "whole number"),
        ('{"ticker": "ES", "action": "buy", "quantity": "two"}', ErrorCode.MALFORMED, "must be a number"),
        ('{"ticker": "ES", "action": "buy", "quantity": 0}', ErrorCode.MALFORMED, "at least 1"),
        ('{"ticker": "ES", "action": "buy", "time": "yesterday"}', ErrorCode.MALFORMED, "not a time"),
        ('{"ticker": "ES", "action": "hold"}', ErrorCode.INVALID_ACTION, "not one of buy, sell, exit"),
        ('{"ticker": "ES", "action": "exit", "sentiment": "long"}', ErrorCode.INVALID_ACTION, "only valid with"),
        ('{"ticker": "ES", "action": "buy", "sentiment": "moon"}', ErrorCode.INVALID_ACTION, "sentiment 'moon'"),
        ('{"ticker": "ES", "action": "buy", "orderType": "trailing_stop"}', ErrorCode.INVALID_ACTION, "trailing"),
        ('{"ticker": "ES", "action": "buy", "orderType": "stop"}', ErrorCode.INVALID_ACTION, "needs stopPrice"),
        ('{"ticker": "ES", "action": "buy", "quantityType": "percent_of_equity"}', ErrorCode.INVALID_ACTION,
         "quantityType"),
        ('{"ticker": "ES", "action": "buy", "timeInForce": "opg"}', ErrorCode.INVALID_ACTION, "timeInForce 'opg'"),
        ('{"ticker": "ES", "action": "buy", "stopLoss": {"type": "trailing_stop", "trailAmount": 5}}',
         ErrorCode.INVALID_ACTION, "not supported"),
        ('{"ticker": "ES", "action": "buy", "takeProfit": {"amount": 5, "percent": 1}}', ErrorCode.MALFORMED,
         "give one of"),
        ('{"symbol": "ES", "data": "hodl"}', ErrorCode.INVALID_ACTION, "data 'hodl'"),
        ('{"symbol": "ES", "data": "buy", "risk_percentage": 2}', ErrorCode.INVALID_ACTION, "risk_percentage"),
        ('{"symbol": "ES", "data": "buy", "multiple_accounts": {"a": 1}}', ErrorCode.MALFORMED, "must be a list"),
        ('{"symbol": "ES", "data": "buy", "multiple_accounts": [{"x": 1}]}', ErrorCode.MALFORMED, "no account_id"),
        ('{"ticker": "ES", "market_position": "long"}', ErrorCode.MALFORMED, "needs market_position_size"),
        ('{"ticker": "ES", "market_position": "sideways"}', ErrorCode.INVALID_ACTION, "market_position 'sideways'"),
        ("theme dark", ErrorCode.INVALID_ACTION, "terminal command"),
    ],
)  # fmt: skip
def test_typed_errors(body: str, code: ErrorCode, message: str) -> None:
    e = err(body)
    assert e.code is code
    assert message in e.message


def test_http_status_of_errors() -> None:
    assert err("").status == 400
    assert err('{"ticker": "ES", "action": "hold"}').status == 422


# --------------------------------------------------------------------------- time


@pytest.mark.parametrize(
    "value",
    ["2026-03-02T15:04:05Z", "2026-03-02T15:04:05", "2026-03-02T09:04:05-06:00", 1772463845, "1772463845000"],
)
def test_time_forms(value: object) -> None:
    assert parse_time(value) == datetime(2026, 3, 2, 15, 4, 5, tzinfo=UTC)


@given(st.text(max_size=60))
def test_any_body_parses_or_is_a_typed_error(body: str) -> None:
    try:
        sig = parse_body(body)
    except WebhookError as e:
        assert e.code in ErrorCode and e.message
    else:
        assert sig.describe()


@given(
    st.dictionaries(
        st.sampled_from(["ticker", "action", "quantity", "sentiment", "orderType", "limitPrice", "time", "data",
                         "symbol", "market_position", "takeProfit", "tp"]),
        st.one_of(st.none(), st.text(max_size=8), st.integers(-5, 5), st.floats(allow_nan=True), st.booleans(),
                  st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2)),
    )
)  # fmt: skip
def test_any_json_object_parses_or_is_a_typed_error(data: dict[str, object]) -> None:
    try:
        sig = parse_body(json.dumps(data))
    except WebhookError as e:
        assert e.code in ErrorCode and e.message
    else:
        assert sig.describe()

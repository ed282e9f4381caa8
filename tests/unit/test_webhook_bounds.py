"""Hostile webhook bodies are typed refusals, bounded before any arithmetic (issue 10, items 14-17).

Before the bounds: ``"quantity": "1e999999999"`` froze the hub for minutes (int() of a
billion-digit Decimal), a 5,000-digit text quantity raised ValueError, ``"quantity": [1.5]``
raised "Decimal is not JSON serializable", deep nesting raised RecursionError while the secret
was still being looked for, and a close with quantity 0 was refused.
"""

from __future__ import annotations

import json

import pytest

from tterm.hub.webhook import (
    MAX_DEPTH,
    Action,
    ErrorCode,
    Sentiment,
    WebhookError,
    extract_secret,
    parse_body,
)

SECRET = "bounds-secret-1234567890"


def err(body: str) -> WebhookError:
    with pytest.raises(WebhookError) as info:
        parse_body(body)
    return info.value


def tp(**fields: object) -> str:
    return json.dumps({"ticker": "MES1!", "action": "buy", "quantity": 1, "passphrase": SECRET, **fields})


# --------------------------------------------------------------------------- numbers (14, 16)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("quantity", "1e999999999", "too large"),
        ("quantity", "1e400000", "too large"),
        ("quantity", "1e30", "too large"),
        ("quantity", "5000000", "above the largest order"),
        ("quantity", "9" * 5000, "written with 5000 characters"),
        ("limitPrice", "1e999999999", "too large"),
        ("limitPrice", "-1e999999999", "too large"),
        ("limitPrice", "1e-999999999", "decimal places"),
        ("limitPrice", "5000." + "1" * 20, "decimal places"),
        ("stopPrice", "Infinity", "finite"),
        ("price", "NaN", "finite"),
        ("time", 1e300, "too large"),
        ("time", "1e999999999", "not a time"),
        ("takeProfit", {"amount": "1e999999999"}, "too large"),
    ],
)
def test_huge_and_odd_numbers_are_refused_before_any_arithmetic(field: str, value: object, message: str) -> None:
    extra = {"orderType": "limit", "limitPrice": "5000"} if field == "stopPrice" else {}
    if field == "stopPrice":
        extra["orderType"] = "stop_limit"
    e = err(tp(**extra, **{field: value}))
    assert e.code is ErrorCode.MALFORMED and e.status == 400
    assert message in e.message, e.message
    assert len(e.message) < 300  # a 5,000-digit value is not quoted whole


@pytest.mark.parametrize(
    "raw",
    [
        '{"ticker": "MES1!", "action": "buy", "quantity": ' + "9" * 5000 + "}",  # a JSON integer
        '{"ticker": "MES1!", "action": "buy", "quantity": 1, "x": 0.' + "5" * 5000 + "}",  # a JSON float, unused
        '{"ticker": "MES1!", "action": "buy", "quantity": 1e999999999}',
    ],
)
def test_huge_json_numbers_are_refused(raw: str) -> None:
    e = err(raw)
    assert e.code is ErrorCode.MALFORMED
    assert "characters" in e.message or "too large" in e.message


@pytest.mark.parametrize(
    "text",
    [
        "buy " + "9" * 5000 + " MES mkt",
        "buy " + "0" * 5000 + "1" + "9" * 10 + " MES mkt",
        "buy 1 MES mkt tp " + "9" * 5000,
        "buy 1 MES mkt sl " + "9" * 5000 + "t",
        "buy 1 MES " + "9" * 5000,
        "buy 1 MES 5000.25 tp @" + "9" * 5000,
        "buy 2000000 MES mkt",
    ],
)
def test_huge_numbers_in_text_verbs_are_typed_errors(text: str) -> None:
    e = err(text)
    assert e.code is ErrorCode.MALFORMED
    assert len(e.message) < 300


@pytest.mark.parametrize(
    ("fields", "what"),
    [
        ({"quantity": [1.5]}, "quantity must be a number, got a list"),
        ({"ticker": {"a": 2.5}}, "ticker must be text, got an object"),
        ({"limitPrice": [{"x": 1.25}], "orderType": "limit"}, "limitPrice must be a number"),
        ({"time": [2.5]}, "time must be a time"),
        ({"sentiment": {"v": 1.5}}, "sentiment must be text"),
        ({"cancel": [1.5]}, "cancel must be text"),
        ({"takeProfit": [1.5]}, "takeProfit must be a number"),
        ({"id": {"n": 1.5}}, "id must be text"),
    ],
)
def test_a_list_or_object_where_a_scalar_belongs_is_a_typed_error(fields: dict[str, object], what: str) -> None:
    e = err(tp(**fields))
    assert e.code is ErrorCode.MALFORMED and what in e.message, e.message


def test_long_text_fields_and_many_accounts_are_bounded() -> None:
    assert "characters long" in err(tp(ticker="M" * 5000)).message
    body = {"symbol": "MES1!", "data": "buy", "quantity": 1, "multiple_accounts": [{"account_id": "A"}] * 500}
    assert "at most 100" in err(json.dumps(body)).message
    body["multiple_accounts"] = [{"account_id": "A", "quantity_multiplier": 1e9}]
    assert "at most 1000" in err(json.dumps(body)).message


def test_many_ignored_fields_are_listed_briefly() -> None:
    sig = parse_body(tp(**{f"extra{i}": i for i in range(500)}))
    assert len(sig.ignored) == 21 and sig.ignored[-1] == "... and 480 more"


# --------------------------------------------------------------------------- nesting (15)


@pytest.mark.parametrize(
    "body",
    [
        "[" * 20000 + "]" * 20000,
        '{"a":' * 5000 + "1" + "}" * 5000,
        '{"passphrase": "' + SECRET + '", "x": ' + "[" * 5000 + "]" * 5000 + "}",
        '{"passphrase": "'
        + SECRET
        + '", "ticker": "MES1!", "action": "buy", "x": '
        + "[" * (MAX_DEPTH + 1)
        + "]" * (MAX_DEPTH + 1)
        + "}",
    ],
)
def test_deep_nesting_is_refused_without_recursion_error(body: str) -> None:
    assert extract_secret(body) is None  # no secret can be read from it: the server answers 401
    e = err(body)
    assert e.code is ErrorCode.MALFORMED and f"nested deeper than {MAX_DEPTH} levels" in e.message


def test_nesting_up_to_the_limit_is_fine() -> None:
    depth = MAX_DEPTH - 1
    sig = parse_body(tp(extras="[" * depth + "]" * depth))  # as a string: no nesting at all
    assert sig.quantity == 1
    sig = parse_body(tp(extras=json.loads("[" * depth + "]" * depth)))
    assert sig.quantity == 1 and extract_secret(tp(extras=json.loads("[" * depth + "]" * depth))) == SECRET


# --------------------------------------------------------------------------- a close with quantity 0 (17)


@pytest.mark.parametrize(
    "body",
    [
        {"symbol": "MES1!", "data": "close", "quantity": 0},  # PickMyTrade
        {"symbol": "MES1!", "data": "close", "quantity": "0"},
        {"symbol": "MES1!", "data": "close", "quantity": 3},  # close flattens whatever its quantity says
        {"ticker": "MES1!", "action": "exit", "quantity": 0},  # TradersPost
        {"ticker": "MES1!", "action": "close", "quantity": "0"},
        {"ticker": "MES1!", "action": "exit"},
    ],
)
def test_a_close_or_exit_with_quantity_zero_means_flat(body: dict[str, object]) -> None:
    sig = parse_body(json.dumps(body))
    assert sig.action is Action.EXIT and sig.quantity is None


@pytest.mark.parametrize("qty", [0, "0", None])
def test_sell_with_sentiment_flat_and_quantity_zero_means_flat(qty: object) -> None:
    sig = parse_body(json.dumps({"ticker": "MES1!", "action": "sell", "sentiment": "flat", "quantity": qty}))
    assert sig.action is Action.SELL and sig.sentiment is Sentiment.FLAT and sig.quantity is None


def test_zero_still_means_nothing_for_an_entry_and_an_exit_quantity_is_partial() -> None:
    assert "at least 1" in err(json.dumps({"ticker": "MES1!", "action": "buy", "quantity": 0})).message
    assert "at least 1" in err(json.dumps({"symbol": "MES1!", "data": "buy", "quantity": 0})).message
    assert "at least 0" in err(json.dumps({"ticker": "MES1!", "action": "exit", "quantity": -1})).message
    assert "at least 0" in err(json.dumps({"symbol": "MES1!", "data": "close", "quantity": -2})).message
    assert parse_body(json.dumps({"ticker": "MES1!", "action": "exit", "quantity": 2})).quantity == 2

"""Wire serialisation of core models: every type round-trips exactly (law), bad payloads are refused."""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tterm.core.client import EngineSnapshot
from tterm.core.models import (
    Bracket,
    Order,
    OrderRequest,
    OrderSource,
    OrderStatus,
    OrderType,
    Quote,
    Side,
    SignalOutcome,
    SignalStatus,
)
from tterm.hub import wire

decimals = st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-(10**9), max_value=10**9)
aware = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-6))]),
)


def _for_type(tp: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*[_for_type(a, depth) for a in typing.get_args(tp)])
    if tp is type(None):
        return st.none()
    if origin is typing.Literal:
        return st.sampled_from(typing.get_args(tp))
    if origin is tuple:
        item = typing.get_args(tp)[0]
        return st.lists(_for_type(item, depth + 1), max_size=3 if depth < 2 else 0).map(tuple)
    if tp is Decimal:
        return decimals
    if tp is datetime:
        return aware
    if tp is date:
        return st.dates()
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(-(10**6), 10**6)
    if tp is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    if tp is str:
        return st.text(max_size=12)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from(list(tp))
    if dataclasses.is_dataclass(tp):
        return instances(tp, depth + 1)
    raise AssertionError(f"no strategy for {tp!r}")


def _try(cls: type, kwargs: dict[str, Any]) -> Any:
    try:
        return cls(**kwargs)
    except ValueError:
        return None


#: Fields whose valid values a generic strategy rarely hits.
_FIELD_STRATEGIES: dict[str, st.SearchStrategy[Any]] = {
    "tick_table": st.sampled_from([(), ((Decimal(0), Decimal("0.01")), (Decimal(3), Decimal("0.05")))]),
}


def instances(cls: type, depth: int = 0) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    fields = {
        f.name: _FIELD_STRATEGIES[f.name] if f.name in _FIELD_STRATEGIES else _for_type(hints[f.name], depth)
        for f in dataclasses.fields(cls)
    }
    return st.fixed_dictionaries(fields).map(lambda kw: _try(cls, kw)).filter(lambda x: x is not None)


@pytest.mark.parametrize("name", sorted(wire.WIRE_TYPES))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_wire_type_round_trips(name: str, data: st.DataObject) -> None:
    cls = wire.WIRE_TYPES[name]
    obj = data.draw(instances(cls))
    text = wire.dumps(obj)
    back = wire.loads(text)
    assert back == obj
    assert type(back) is cls


def test_decimal_is_exact_and_a_string() -> None:
    q = Quote(symbol="MESZ6", bid=Decimal("5012.25"), ask=Decimal("5012.50"), last=Decimal("0.1"))
    data = wire.encode(q)
    assert data["bid"] == "5012.25" and data["last"] == "0.1"
    assert wire.decode(data) == q


def test_nested_bracket_and_enums() -> None:
    req = OrderRequest(
        account="paper:FUT50K",
        symbol="MES1!",
        side=Side.BUY,
        quantity=2,
        order_type=OrderType.LIMIT,
        limit_price=Decimal("5000.25"),
        bracket=Bracket(take_profit_ticks=8, stop_loss_price=Decimal("4990")),
        source=OrderSource.WEBHOOK,
    )
    data = json.loads(wire.dumps(req))
    assert data["$"] == "OrderRequest"
    assert data["bracket"]["$"] == "Bracket"
    assert data["side"] == "buy"
    assert wire.decode(data, OrderRequest) == req


def test_snapshot_with_signals_round_trips() -> None:
    order = Order(
        order_id="1",
        client_order_id="c1",
        account="paper:A",
        symbol="MESZ6",
        side=Side.SELL,
        quantity=1,
        order_type=OrderType.MARKET,
        status=OrderStatus.FILLED,
        avg_fill_price=Decimal("5001.75"),
    )
    outcome = SignalOutcome(
        signal_id="s1", strategy="trend", status=SignalStatus.DONE, summary="sold 1", client_order_ids=("c1",)
    )
    snap = EngineSnapshot(orders=(order,), signals=(outcome,), is_live=False)
    assert wire.loads(wire.dumps(snap)) == snap


def test_timezone_offset_is_kept() -> None:
    ts = datetime(2026, 3, 8, 1, 59, tzinfo=timezone(timedelta(hours=-6)))
    q = Quote(symbol="ES", ts=ts)
    back = wire.loads(wire.dumps(q))
    assert back.ts == ts and back.ts.utcoffset() == timedelta(hours=-6)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"$": "Quote", "symbol": "ES", "bid": 5000.25}, "Quote.bid: expected a decimal string"),
        ({"$": "Quote", "symbol": "ES", "bid": "abc"}, "Quote.bid: expected a decimal string"),
        ({"$": "Quote", "bid": "1"}, "Quote.symbol: missing"),
        ({"$": "Quote", "symbol": "ES", "ts": "2026-01-01T00:00:00"}, "timezone-aware"),
        ({"$": "Order", "order_id": "1"}, "missing"),
        ({"$": "Nope"}, "unknown wire type 'Nope'"),
        ({"$": "Fill", "fill_id": "f", "order_id": "o", "client_order_id": "c", "account": "a", "symbol": "s",
          "side": "up", "quantity": 1, "price": "1"}, "Fill.side: expected a Side"),
        ({"$": "Position", "account": "a", "symbol": "s", "quantity": True}, "whole number"),
    ],
)  # fmt: skip
def test_bad_payloads_are_refused_with_the_field_named(payload: dict[str, Any], message: str) -> None:
    with pytest.raises(wire.WireError, match=message.replace("(", r"\(").replace(")", r"\)")):
        wire.decode(payload)


def test_model_invariants_still_apply() -> None:
    with pytest.raises(wire.WireError, match="Bracket"):
        wire.decode({"$": "Bracket"})


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    q = wire.decode({"$": "Quote", "symbol": "ES", "future_field": 1})
    assert q == Quote(symbol="ES", ts=q.ts)


def test_not_json() -> None:
    with pytest.raises(wire.WireError, match="not JSON"):
        wire.loads("{nope")


def test_journal_records_hub_events_by_type() -> None:
    from tterm.core.journal import Journal
    from tterm.core.models import PositionDrift

    with Journal(":memory:") as journal:
        outcome = SignalOutcome(signal_id="s9", strategy="t", status=SignalStatus.FAILED, summary="x", account="a")
        assert journal.record_event(outcome) is not None
        assert journal.record_event(PositionDrift("t", "a", "MESZ6", 1, 0)) is not None
        rows = journal.entries()
        assert [(r.kind, r.ref, r.account) for r in rows] == [("signal", "s9", "a"), ("notice", "drift", "a")]

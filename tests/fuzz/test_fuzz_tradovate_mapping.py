"""Tradovate's entity mapping (tterm/brokers/tradovate/replica.py View, mapping.py) fuzzed: a good
replica (an account, MESZ6, a filled order with its version and fill, a working order, a position,
a cash balance), then one props entity damaged (fields dropped, nulls, huge numbers, numbers as
text, unknown enums, wrong types) and applied the way the sync applies it. The damaged entity maps
to a valid core object, to None (not enough known yet), or to a typed BrokerError the sync reports
as a notice; and the damage stays where it is: the other order still maps exactly as before."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.budget import FUZZ
from tests.fuzz.vendor_json import damaged
from tterm.brokers.tradovate import mapping as m
from tterm.brokers.tradovate.replica import Replica, View
from tterm.core.broker import BrokerError
from tterm.core.instruments import InstrumentMaster
from tterm.core.models import OrderStatus

T = "2026-11-24T15:00:01.000Z"
SNAPSHOT: dict[str, Any] = {
    "accounts": [{"id": 1, "name": "DEMO123456", "userId": 9, "accountType": "Customer", "active": True,
                  "archived": False, "timestamp": T}],
    "contracts": [{"id": 10, "name": "MESZ6", "contractMaturityId": 11, "status": "DefinitionChecked",
                   "providerTickSize": 0.25}],
    "contractMaturities": [{"id": 11, "productId": 12, "expirationMonth": 202612, "isFront": True}],
    "products": [{"id": 12, "name": "MES", "tickSize": 0.25, "valuePerPoint": 5, "description": "Micro E-mini"}],
    "orders": [
        {"id": 100, "accountId": 1, "contractId": 10, "timestamp": T, "action": "Buy", "ordStatus": "Filled"},
        {"id": 200, "accountId": 1, "contractId": 10, "timestamp": T, "action": "Sell", "ordStatus": "Working"},
    ],
    "orderVersions": [
        {"id": 101, "orderId": 100, "orderQty": 2, "orderType": "Limit", "price": 6650.25, "timeInForce": "Day"},
        {"id": 201, "orderId": 200, "orderQty": 1, "orderType": "Stop", "stopPrice": 6640, "timeInForce": "GTC"},
    ],
    "fills": [{"id": 102, "orderId": 100, "contractId": 10, "timestamp": T, "action": "Buy", "qty": 2,
               "price": 6650.25, "active": True}],
    "positions": [{"id": 300, "accountId": 1, "contractId": 10, "timestamp": T, "netPos": 2, "netPrice": 6650.25,
                   "bought": 2, "boughtValue": 13300.5, "sold": 0, "soldValue": 0}],
    "fillPairs": [],
    "cashBalances": [{"id": 400, "accountId": 1, "timestamp": T, "amount": 50000, "realizedPnL": 0,
                      "amountSOD": 50000}],
    "executionReports": [{"id": 103, "orderId": 100, "execType": "Fill", "ordStatus": "Filled", "cumQty": 2,
                          "avgPx": 6650.25}],
    "commands": [{"id": 104, "orderId": 100, "clOrdId": "tt-abc", "commandType": "New"}],
}  # fmt: skip
KINDS = {
    "order": "orders",
    "orderVersion": "orderVersions",
    "fill": "fills",
    "position": "positions",
    "cashBalance": "cashBalances",
    "executionReport": "executionReports",
    "command": "commands",
}
MASTER = InstrumentMaster()


def _view() -> tuple[Replica, View]:
    replica = Replica()
    replica.load_snapshot(copy.deepcopy(SNAPSHOT))
    return replica, View("tv", replica, MASTER, is_live=False, mark=lambda s: Decimal("6651.00"))


@st.composite
def props(draw: st.DrawFn) -> tuple[str, str, Any]:
    kind = draw(st.sampled_from(sorted(KINDS)))
    entity = draw(damaged(SNAPSHOT[KINDS[kind]], most=4))
    event = draw(st.sampled_from(["Created", "Updated", "Deleted"]))
    return kind, event, entity


def _good_order_200(view: View) -> Any:
    o = view.order(200)
    assert o is not None
    return (o.status, o.quantity, o.stop_price, o.side, o.client_order_id)


BEFORE = _good_order_200(_view()[1])


@FUZZ
@given(props())
def test_a_damaged_entity_maps_or_is_refused_and_the_damage_stays_put(event: tuple[str, str, Any]) -> None:
    kind, event_type, entity = event
    replica, view = _view()
    if not isinstance(entity, dict):
        return  # the sync drops a props event whose entity is not an object
    try:
        replica.apply(kind, event_type, entity)
    except BrokerError as exc:
        assert str(exc)
        return
    for oid in list(replica.orders):
        try:
            order = view.order(oid) if isinstance(oid, int) else None
        except BrokerError as exc:
            assert str(exc)
            continue
        if order is not None:
            assert isinstance(order.status, OrderStatus) and order.quantity >= 0 and order.filled_quantity >= 0
            for price in (order.limit_price, order.stop_price, order.avg_fill_price):
                assert price is None or price.is_finite()
    for fid in list(replica.fills):
        try:
            fill = view.fill(fid) if isinstance(fid, int) else None
        except BrokerError:
            continue
        if fill is not None:
            assert fill.price.is_finite()
    for p in list(replica.positions.values()):
        try:
            pos = view.position(p)
        except BrokerError:
            continue
        if pos is not None:
            assert pos.avg_price.is_finite() and pos.unrealized_pnl.is_finite()
    try:
        view.snapshot(1)
    except BrokerError:
        pass
    if not (kind in ("order", "orderVersion") and entity.get("id") in (200, 201)) and not (
        entity.get("orderId") == 200 or (kind == "command" and entity.get("orderId") == 200)
    ):
        assert _good_order_200(view) == BEFORE, (kind, entity)


@FUZZ
@given(st.one_of(st.none(), st.text(max_size=12), st.integers(), st.floats(), st.lists(st.integers(), max_size=2)))
def test_scalars_read_or_refuse(value: Any) -> None:
    for read in (m.dec, lambda v: m.count(v, "a quantity"), m.time_or_none):
        try:
            out = read(value)
        except BrokerError as exc:
            assert str(exc)
            continue
        assert out is None or not isinstance(out, Decimal) or out.is_finite()
    assert m.failure_words(value, value)

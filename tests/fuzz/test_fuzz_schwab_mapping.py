"""Schwab's JSON mapping (tterm/brokers/schwab/mapping.py, mapping_orders.py) fuzzed with damaged
order trees, accounts, positions and transactions in the shapes of the reference (A6.1-A6.4):
every document maps to valid core objects or is skipped/refused with a typed error, never an
unhandled exception (one bad row must not stop every order poll)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given

from tests.fuzz.budget import FUZZ
from tests.fuzz.vendor_json import damaged
from tterm.brokers.schwab import mapping as m
from tterm.brokers.schwab import mapping_orders as mo
from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.models import Instrument, Order, OrderStatus

MASTER = InstrumentMaster()


def resolve(symbol: str) -> Instrument | None:
    try:
        return MASTER.resolve(symbol)
    except (UnknownSymbol, ValueError):
        return None


def _leg(leg_id: int, symbol: str, instruction: str, qty: int, asset: str = "EQUITY") -> dict[str, Any]:
    return {
        "orderLegType": asset,
        "legId": leg_id,
        "instrument": {"assetType": asset, "symbol": symbol, "instrumentId": 1000 + leg_id},
        "instruction": instruction,
        "positionEffect": "OPENING",
        "quantity": qty,
    }


def _order(oid: int, order_type: str = "LIMIT", status: str = "FILLED", **kw: Any) -> dict[str, Any]:
    node: dict[str, Any] = {
        "session": "NORMAL",
        "duration": "DAY",
        "orderType": order_type,
        "complexOrderStrategyType": "NONE",
        "quantity": 5,
        "filledQuantity": 5 if status == "FILLED" else 0,
        "remainingQuantity": 0 if status == "FILLED" else 5,
        "requestedDestination": "AUTO",
        "price": "190.01",
        "orderLegCollection": [_leg(1, "AAPL", "BUY", 5)],
        "orderStrategyType": "SINGLE",
        "orderId": oid,
        "cancelable": status != "FILLED",
        "editable": False,
        "status": status,
        "enteredTime": "2026-11-24T15:00:01+0000",
        "closeTime": "2026-11-24T15:00:02+0000",
        "accountNumber": 12345678,
        "orderActivityCollection": [
            {
                "activityType": "EXECUTION",
                "activityId": 9000 + oid,
                "executionType": "FILL",
                "quantity": 5,
                "orderRemainingQuantity": 0,
                "executionLegs": [
                    {"legId": 1, "quantity": 5, "mismarkedQuantity": 0, "price": 190.01,
                     "time": "2026-11-24T15:00:02+0000", "instrumentId": 1001}
                ],
            }
        ] if status == "FILLED" else [],
    }  # fmt: skip
    node.update(kw)
    return node


SINGLE = _order(1001)
STOP = _order(1002, "STOP", "WORKING", stopPrice="180.00")
TRAIL = _order(1003, "TRAILING_STOP", "WORKING", stopPriceOffset=1.5, stopPriceLinkType="VALUE")
VERTICAL = _order(
    1004,
    "NET_DEBIT",
    complexOrderStrategyType="VERTICAL",
    orderLegCollection=[
        _leg(1, "AAPL  261218C00190000", "BUY_TO_OPEN", 2, "OPTION"),
        _leg(2, "AAPL  261218C00195000", "SELL_TO_OPEN", 2, "OPTION"),
    ],
    quantity=2,
)
TRIGGER = _order(
    1005,
    "LIMIT",
    "FILLED",
    orderStrategyType="TRIGGER",
    childOrderStrategies=[
        {
            "orderStrategyType": "OCO",
            "orderId": 1006,
            "status": "WORKING",
            "childOrderStrategies": [
                _order(1007, "LIMIT", "WORKING", price="191.00", orderLegCollection=[_leg(1, "AAPL", "SELL", 5)]),
                _order(1008, "STOP", "WORKING", stopPrice="189.00", orderLegCollection=[_leg(1, "AAPL", "SELL", 5)]),
            ],
        }
    ],
)
TREES = [SINGLE, STOP, TRAIL, VERTICAL, TRIGGER]

SECURITIES = {
    "type": "MARGIN",
    "accountNumber": "12345678",
    "positions": [
        {"shortQuantity": 0, "averagePrice": 189.5, "longQuantity": 10, "marketValue": 1901.0,
         "longOpenProfitLoss": 6.0, "averageLongPrice": 189.5,
         "instrument": {"assetType": "EQUITY", "symbol": "AAPL", "cusip": "037833100"}},
        {"shortQuantity": 3, "averagePrice": 2.1, "longQuantity": 0, "marketValue": -630.0,
         "shortOpenProfitLoss": -12.0, "averageShortPrice": 2.1,
         "instrument": {"assetType": "OPTION", "symbol": "AAPL  261218C00190000", "putCall": "CALL"}},
    ],
    "currentBalances": {"liquidationValue": 101234.5, "buyingPower": 200000, "equity": 101234.5},
    "initialBalances": {"liquidationValue": 100000, "accountValue": 100000},
}  # fmt: skip
TRANSACTIONS = [
    {
        "activityId": 1, "time": "2026-11-24T15:00:02+0000", "type": "TRADE", "status": "VALID", "orderId": 1001,
        "netAmount": -950.06,
        "transferItems": [
            {"instrument": {"assetType": "EQUITY", "symbol": "AAPL"}, "amount": 5, "cost": -950.05, "price": 190.01},
            {"instrument": {"assetType": "CURRENCY", "symbol": "CURRENCY_USD"}, "amount": 0, "cost": -0.01,
             "feeType": "SEC_FEE"},
        ],
    }
]  # fmt: skip


def _valid_order(o: Order) -> None:
    assert o.order_id and o.account == "sw:12345678"
    assert isinstance(o.status, OrderStatus)
    assert o.quantity >= 0 and o.filled_quantity >= 0
    for price in (o.limit_price, o.stop_price, o.avg_fill_price, o.trail_amount):
        assert price is None or (isinstance(price, Decimal) and price.is_finite()), price
    assert o.created_at.tzinfo is not None


@FUZZ
@given(damaged(TREES, most=6))
def test_a_damaged_order_tree_maps_to_valid_orders_or_a_typed_refusal(tree: Any) -> None:
    try:
        mapped = list(
            mo.walk_orders(
                tree,
                broker="sw",
                account="sw:12345678",
                resolve=resolve,
                known=lambda oid: None,
                strategy_name=lambda pairs: "VERTICAL",
            )
        )
    except m.VendorDataError as exc:
        assert str(exc)
        return
    for item in mapped:
        _valid_order(item.order)
        for e in item.executions:
            assert e.quantity > 0 and e.price.is_finite()
            fill = mo.fill_of(e, item.order, Decimal("0.65"), "sw")
            assert fill.quantity == e.quantity


@FUZZ
@given(damaged([SECURITIES], most=6))
def test_a_damaged_account_maps_to_positions_and_balances_or_a_typed_refusal(sec: Any) -> None:
    try:
        account = m.account_of("sw", "12345678", {"nickName": "Margin", "displayAcctId": "...678"}, sec)
        positions = m.positions_of(account.id, sec, resolve)
        snap = m.snapshot_of(account.id, sec, positions)
    except m.VendorDataError as exc:
        assert str(exc)
        return
    for p in positions:
        assert p.quantity != 0 and p.avg_price.is_finite()
        assert p.mark is None or p.mark.is_finite()
    assert snap.equity.is_finite() and snap.balance.is_finite()


@FUZZ
@given(damaged([TRANSACTIONS], most=6))
def test_damaged_transactions_give_fees_or_a_typed_refusal(rows: Any) -> None:
    try:
        fees = m.trade_fees(rows)
    except m.VendorDataError as exc:
        assert str(exc)
        return
    for key, values in fees.items():
        assert all(v.is_finite() and v >= 0 for v in values), (key, values)

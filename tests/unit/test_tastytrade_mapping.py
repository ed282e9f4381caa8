"""Tastytrade's pure rooms: symbols, order bodies and actions, vendor orders to core orders and
fills, odd records refused with a typed error, DXLink COMPACT decoding, quotes, Greeks, candles."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from tterm.brokers.tastytrade import mapping as m
from tterm.brokers.tastytrade.dxlink import FIELDS, decode, number
from tterm.brokers.tastytrade.market import SNAPSHOT_BEGIN, SNAPSHOT_END, CandleCollector, QuoteBook, candle_symbol
from tterm.brokers.tastytrade.schemas import (
    Balance,
    CurrentPosition,
    OrderRecord,
    PlacedOrder,
    Transaction,
    signed,
    when,
)
from tterm.core.instruments import InstrumentMaster
from tterm.core.models import (
    AssetClass,
    OptionRight,
    OrderRequest,
    OrderStatus,
    OrderType,
    PositionEffect,
    PriceEffect,
    Side,
    Timeframe,
    TimeInForce,
)

D = Decimal
MASTER = InstrumentMaster(today=lambda: date(2026, 11, 24))


def resolve(symbol: str, kind: str):
    core = m.core_symbol(symbol, kind)
    if kind == m.FUTURE_OPTION:
        fut = MASTER.resolve(m.core_symbol(symbol.removeprefix("./").split(" ")[0], m.FUTURE))
        return m.future_option_instrument(symbol, fut)
    return MASTER.resolve(core)


def name(pairs) -> str:
    return MASTER.strategy(pairs).symbol


# --------------------------------------------------------------------------- symbols


def test_symbols_map_both_ways():
    assert m.core_symbol("SPY   261127C00600000", m.EQUITY_OPTION) == "SPY   261127C00600000"
    assert m.core_symbol("spy 261127C00600000", m.EQUITY_OPTION) == "SPY   261127C00600000"
    assert m.core_symbol("/ESZ6", m.FUTURE) == "ESZ6"
    assert m.future_to_tasty("MESZ6") == "/MESZ6"
    assert m.core_symbol("./ESZ6 EW4X6 261127C6000", m.FUTURE_OPTION) == "ESZ6 EW4X6 261127C6000"
    with pytest.raises(m.MappingError):
        m.core_symbol("SPY 2611C600", m.EQUITY_OPTION)


def test_a_future_option_becomes_an_option_on_its_future_with_its_own_expiry():
    fut = MASTER.resolve("ESZ6")
    inst = m.future_option_instrument("./ESZ6 EW4X6 261127P5975", fut)
    assert inst.asset_class is AssetClass.OPTION and inst.underlying == "ESZ6" and inst.root == "ES"
    assert inst.expiry == date(2026, 11, 27) and inst.strike == D("5975") and inst.right is OptionRight.PUT
    assert inst.point_value == D(50)
    assert m.kind_of(inst) == m.FUTURE_OPTION
    assert m.kind_of(MASTER.resolve("AAPL  261218C00190000")) == m.EQUITY_OPTION
    assert m.kind_of(fut) == m.FUTURE and m.kind_of(MASTER.resolve("AAPL")) == m.EQUITY
    with pytest.raises(m.MappingError):
        m.future_option_instrument("./ESZ6 EW4X6 261327C6000", fut)  # month 13


# --------------------------------------------------------------------------- request -> body


def test_actions_say_open_or_close_and_futures_buy_and_sell():
    assert m.action(m.FUTURE, Side.BUY, True) == "Buy"
    assert m.action(m.EQUITY_OPTION, Side.SELL, False) == "Sell to Close"
    assert m.opening(PositionEffect.AUTO, Side.SELL, 5, 5, reduce_only=False) is False  # closes the long
    assert m.opening(PositionEffect.AUTO, Side.SELL, 6, 5, reduce_only=False) is True  # more than held
    assert m.opening(PositionEffect.AUTO, Side.BUY, 1, 0, reduce_only=True) is False
    assert m.opening(PositionEffect.OPEN, Side.BUY, 1, -3, reduce_only=False) is True


def test_order_bodies_carry_positive_prices_with_their_effect_and_the_client_id():
    req = OrderRequest(
        account="tt:1",
        symbol="",
        side=Side.SELL,
        quantity=2,
        order_type=OrderType.LIMIT,
        limit_price=D("1.25"),
        price_effect=PriceEffect.CREDIT,
        client_order_id="tt" + "a" * 22,
    )
    body = m.order_body(req, [{"symbol": "X"}], source="tterm/1")
    assert body["price"] == "1.25" and body["price-effect"] == "Credit" and body["order-type"] == "Limit"
    assert body["external-identifier"] == "tt" + "a" * 22 and body["time-in-force"] == "Day"
    stop = req.with_changes(order_type=OrderType.STOP_LIMIT, stop_price=D("1.30"), side=Side.BUY, price_effect=None)
    body = m.order_body(stop, [], source="tterm/1", include_legs=False)
    assert body["stop-trigger"] == "1.30" and body["price-effect"] == "Debit" and "legs" not in body
    with pytest.raises(m.Refused, match="trailing-stop"):
        m.order_body(req.with_changes(order_type=OrderType.TRAILING_STOP, trail_amount=D(1)), [], source="x/1")
    with pytest.raises(m.Refused, match="FOK"):
        m.order_body(req.with_changes(tif=TimeInForce.FOK), [], source="x/1")


# --------------------------------------------------------------------------- vendor -> core

UPDATED_MS = int(datetime(2026, 11, 24, 15, 0, 5, tzinfo=UTC).timestamp() * 1000)  # B5: an integer in the docs
SPREAD = {
    "id": 301, "account-number": "5WT00001", "time-in-force": "Day", "order-type": "Limit", "size": 2,
    "price": "1.05", "price-effect": "Debit", "status": "Filled", "external-identifier": "ttclient",
    "received-at": "2026-11-24T15:00:00.000+00:00", "updated-at": UPDATED_MS,
    "legs": [
        {"instrument-type": "Equity Option", "symbol": "AAPL  261218C00230000", "quantity": 2,
         "remaining-quantity": 0, "action": "Buy to Open",
         "fills": [{"fill-id": "F1", "quantity": "2.0", "fill-price": "5.40", "filled-at": "2026-11-24T15:00:01Z"}]},
        {"instrument-type": "Equity Option", "symbol": "AAPL  261218C00235000", "quantity": 2,
         "remaining-quantity": 0, "action": "Sell to Open",
         "fills": [{"fill-id": "F2", "quantity": "2.0", "fill-price": "4.35", "filled-at": "2026-11-24T15:00:01Z"}]},
    ],
}  # fmt: skip


def test_a_filled_vertical_maps_to_one_order_and_a_fill_per_leg():
    mapped = m.order_of(OrderRecord.model_validate(SPREAD), account="tt:5WT00001", broker="tt", resolve=resolve,
                        known=None, strategy_name=name)  # fmt: skip
    o = mapped.order
    assert o.order_id == "301" and o.client_order_id == "ttclient" and o.status is OrderStatus.FILLED
    assert o.quantity == 2 and [leg.ratio for leg in o.legs] == [1, 1] and o.side is Side.BUY
    assert o.price_effect is PriceEffect.DEBIT and o.limit_price == D("1.05") and o.avg_fill_price == D("1.05")
    assert o.filled_quantity == 2 and o.updated_at > o.created_at
    assert [(f.fill_id, f.symbol, f.side, f.quantity, f.price) for f in mapped.fills] == [
        ("301:F1", "AAPL  261218C00230000", Side.BUY, 2, D("5.40")),
        ("301:F2", "AAPL  261218C00235000", Side.SELL, 2, D("4.35")),
    ]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"status": "Exploded"}, m.MappingError),
        ({"order-type": "Iceberg"}, m.MappingError),
        ({"legs": []}, ValidationError),
        ({"legs": None}, ValidationError),
        ({"status": None}, ValidationError),
        ({"price": "lots"}, ValidationError),
    ],
)
def test_odd_orders_are_a_typed_error_not_a_crash(change, error):
    with pytest.raises(error):
        rec = OrderRecord.model_validate({**SPREAD, **change})
        m.order_of(rec, account="tt:1", broker="tt", resolve=resolve, known=None, strategy_name=name)


def test_huge_and_fractional_quantities_are_refused():
    leg = dict(SPREAD["legs"][0], quantity="1e400", fills=[])
    rec = OrderRecord.model_validate({**SPREAD, "legs": [leg]})
    with pytest.raises(m.MappingError):
        m.order_of(rec, account="tt:1", broker="tt", resolve=resolve, known=None, strategy_name=name)


def test_positions_balances_and_money_effects():
    pos = CurrentPosition.model_validate({"account-number": "5WT00001", "symbol": "/MESZ6", "instrument-type": "Future",
        "quantity": "3", "quantity-direction": "Short", "average-open-price": "6650.25", "mark": "6640.25",
        "multiplier": "5", "realized-day-gain": "12.5", "realized-day-gain-effect": "Debit"})  # fmt: skip
    core = m.position_of(pos, account="tt:5WT00001", inst=MASTER.resolve("MESZ6"))
    assert (core.quantity, core.realized_pnl, core.unrealized_pnl) == (-3, D("-12.5"), D("150.00"))
    bal = Balance.model_validate({"account-number": "5WT00002", "cash-balance": "25000.0",
        "net-liquidating-value": "25100.5", "equity-buying-power": "24000.0",
        "derivative-buying-power": "24000.0"})  # fmt: skip
    snap = m.snapshot_of(bal, account="tt:5WT00002", margin=False)
    assert snap.balance == D("25000.0") and snap.equity == D("25100.5") and snap.buying_power == D("24000.0")
    assert signed(D("1.5"), "Debit") == D("-1.5") and signed(D("1.5"), "Credit") == D("1.5")
    tx = Transaction.model_validate({"id": 1, "commission": "1.0", "commission-effect": "Debit",
                                     "clearing-fees": "0.1", "clearing-fees-effect": "Debit"})  # fmt: skip
    assert tx.fees == D("1.1")
    assert when(0) is None and when("2026-11-24T15:00:00Z") == datetime(2026, 11, 24, 15, tzinfo=UTC)


def test_a_dry_run_becomes_the_preview():
    placed = PlacedOrder.model_validate({
        "order": {**SPREAD, "status": "Received", "id": None},
        "warnings": [{"code": "margin", "message": "uses most of your buying power"}],
        "errors": None,
        "buying-power-effect": {"new-buying-power": "1000.00", "new-buying-power-effect": "Credit",
                                "isolated-order-margin-requirement": "210.0",
                                "isolated-order-margin-requirement-effect": "Debit"},
        "fee-calculation": {"total-fees": "2.2", "total-fees-effect": "Debit"},
    })  # fmt: skip
    p = m.preview_of(placed, "tt")
    assert p.accepted and p.warnings == ("uses most of your buying power",)
    assert (p.commission, p.buying_power_after, p.order_value) == (D("2.2"), D("1000.00"), D("210.0"))
    refused = m.preview_of(PlacedOrder.model_validate({"errors": [{"code": "x", "message": "not enough"}]}), "tt")
    assert not refused.accepted and refused.rejects == ("not enough",)


# --------------------------------------------------------------------------- DXLink


def test_compact_data_follows_the_servers_field_order_and_skips_what_does_not_fit():
    fields = {"Quote": ["eventSymbol", "askPrice", "bidPrice"]}
    events, skipped = decode(["Quote", ["SPY", 2.0, 1.0, "AAPL", "NaN", 3.0], "Quote", ["QQQ", 1.0]], fields)
    assert events == [("Quote", {"eventSymbol": "SPY", "askPrice": 2.0, "bidPrice": 1.0}),
                      ("Quote", {"eventSymbol": "AAPL", "askPrice": "NaN", "bidPrice": 3.0})]  # fmt: skip
    assert skipped == 1
    full, _ = decode([{"eventType": "Trade", "eventSymbol": "SPY", "price": 5}], {})
    assert full == [("Trade", {"eventType": "Trade", "eventSymbol": "SPY", "price": 5})]
    assert decode("junk", fields) == ([], 1)
    assert number("NaN") is None and number("-Infinity") is None and number(float("inf")) is None
    assert number("2.5") == 2.5 and number(True) is None


def test_quotes_merge_quote_trade_and_summary_and_greeks_stay_apart():
    book = QuoteBook()
    q = book.apply("Quote", {"eventSymbol": "SPY", "bidPrice": 600.0, "askPrice": 600.02, "bidSize": 5,
                             "askSize": "NaN"}, "SPY")  # fmt: skip
    assert q is not None and (q.bid, q.ask, q.ask_size) == (D("600"), D("600.02"), 0)
    q = book.apply("Trade", {"eventSymbol": "SPY", "price": 600.01, "dayVolume": 1000}, "SPY")
    assert q is not None and q.last == D("600.01") and q.bid == D("600")
    assert book.apply("Trade", {"eventSymbol": "SPY", "price": 600.01, "dayVolume": 1000}, "SPY") is None
    q = book.apply("Summary", {"eventSymbol": "SPY", "prevDayClosePrice": 597.0, "openInterest": 0}, "SPY")
    assert q is not None and q.prev_close == D("597")
    crossed = book.apply("Quote", {"eventSymbol": "SPY", "bidPrice": 601.0, "askPrice": 600.0}, "SPY")
    assert crossed is not None and crossed.bid is None and crossed.ask is None
    assert book.apply("Greeks", {"eventSymbol": ".SPY", "delta": 0.5, "volatility": 0.2, "theta": "NaN"}, "X") is None
    parts = book.parts(".SPY")
    assert parts is not None and parts.greeks is not None and parts.greeks.delta == 0.5 and parts.iv == 0.2
    assert parts.greeks.theta is None and parts.greeks.source == "broker"
    assert set(FIELDS) == {"Quote", "Trade", "Summary", "Greeks", "Candle"}


def test_a_candle_snapshot_becomes_bars_oldest_first():
    c = CandleCollector("SPY", Timeframe.M5)
    t0 = 1795100400000
    for n, flags in enumerate((SNAPSHOT_BEGIN, 0, SNAPSHOT_END)):
        t = t0 - n * 300_000  # newest first, as dxFeed sends time series
        c.apply({"eventSymbol": "SPY{=5m}", "eventFlags": flags, "time": t, "open": 1.0, "high": 2.0, "low": 0.5,
                 "close": 1.5, "volume": 10})  # fmt: skip
    c.apply(
        {"eventSymbol": "SPY{=5m}", "eventFlags": 0, "time": t0, "open": 3.0, "high": 1.0, "low": 0.5, "close": 1.5}
    )  # a bar whose high is under its open: skipped
    assert c.done.is_set() and c.skipped == 1
    bars = c.result(datetime(2020, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC))
    assert [b.start.timestamp() * 1000 for b in bars] == [t0 - 600_000, t0 - 300_000, t0]
    assert all(b.seconds == 300 for b in bars)
    assert candle_symbol("/ESZ26:XCME", Timeframe.H1) == "/ESZ26:XCME{=1h}"


def test_a_partly_filled_order_is_partially_filled_with_each_fill_once():
    leg = {"instrument-type": "Future", "symbol": "/MESZ6", "quantity": 5, "remaining-quantity": 2, "action": "Buy",
           "fills": [{"fill-id": "A", "quantity": "1", "fill-price": "6650.25"},
                     {"fill-id": "B", "quantity": "2", "fill-price": "6650.50"}]}  # fmt: skip
    rec = OrderRecord.model_validate({"id": 9, "account-number": "5WT00001", "order-type": "Limit", "price": "6650.5",
                                      "price-effect": "Debit", "status": "Live", "legs": [leg]})  # fmt: skip
    mapped = m.order_of(rec, account="tt:1", broker="tt", resolve=resolve, known=None, strategy_name=name)
    o = mapped.order
    assert o.status is OrderStatus.PARTIALLY_FILLED and (o.quantity, o.filled_quantity) == (5, 3)
    assert o.avg_fill_price == (D("6650.25") + 2 * D("6650.50")) / 3 and o.client_order_id == "tasty-9"
    assert [f.fill_id for f in mapped.fills] == ["9:A", "9:B"] and o.side is Side.BUY and o.symbol == "MESZ6"

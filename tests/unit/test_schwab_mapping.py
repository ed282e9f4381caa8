"""Schwab's symbols and JSON <-> tterm's models: the pure functions of the adapter's mapping rooms."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from tterm.brokers.schwab import mapping as m
from tterm.brokers.schwab import mapping_orders as mo
from tterm.brokers.schwab import market as mk
from tterm.brokers.schwab import symbols as sy
from tterm.core.instruments import InstrumentMaster
from tterm.core.models import (
    AssetClass,
    OptionRight,
    OrderLeg,
    OrderRole,
    OrderStatus,
    OrderType,
    PositionEffect,
    PriceEffect,
    Side,
    Timeframe,
)

D = Decimal
MASTER = InstrumentMaster(today=lambda: date(2026, 11, 24))


# =========================================================================== symbols


def test_option_symbols_parse_and_build_in_one_format():
    parts = sy.parse_option_symbol("AAPL  261218C00190000")
    assert parts == sy.OptionSymbol("AAPL", date(2026, 12, 18), OptionRight.CALL, D("190"))
    assert parts.symbol == "AAPL  261218C00190000"
    # Any padding and case in; Schwab's exact form out; strikes in thousandths.
    assert sy.parse_option_symbol("spy 270115p00612500").symbol == "SPY   270115P00612500"
    assert sy.build_option_symbol("F", date(2027, 1, 15), OptionRight.PUT, D("12.5")) == "F     270115P00012500"
    # tterm's instrument master reads the same string (OCC): the symbols are one.
    inst = MASTER.resolve("AAPL  261218C00190000")
    assert inst.symbol == parts.symbol and inst.strike == D("190") and inst.right is OptionRight.CALL
    assert sy.to_schwab(inst, MASTER) == "AAPL  261218C00190000"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("AAPL 2612C190", "is not a Schwab option symbol"),
        ("AAPL  261318C00190000", "is not a date"),
        ("AAPL  261218X00190000", "is not a Schwab option symbol"),
        ("AAPL  261218C00000000", "the strike is zero"),
        ("TOOLONGROOT261218C00190000", "is not a Schwab option symbol"),
    ],
)
def test_an_option_symbol_that_does_not_parse_says_why(text, why):
    with pytest.raises(sy.SymbolError, match=why):
        sy.parse_option_symbol(text)


def test_adjusted_roots_the_master_cannot_parse_become_instruments_here():
    inst = sy.to_core("AAPL1 261218C00190000", MASTER)
    assert inst.symbol == "AAPL1 261218C00190000" and inst.asset_class is AssetClass.OPTION
    assert inst.underlying == "AAPL" and inst.point_value == 100 and inst.expiry == date(2026, 12, 18)


def test_futures_symbols_both_ways():
    es = MASTER.front("ES")
    assert sy.to_schwab(es, MASTER) == "/ESZ26"
    assert sy.to_core("/ESZ26", MASTER).symbol == "ESZ6"
    assert sy.to_core("/ES", MASTER).symbol == es.symbol
    with pytest.raises(sy.SymbolError):
        sy.to_core("/", MASTER)


# =========================================================================== instructions and strategies


@pytest.mark.parametrize(
    ("asset", "side", "held", "effect", "want"),
    [
        (AssetClass.EQUITY, Side.BUY, 0, PositionEffect.AUTO, "BUY"),
        (AssetClass.EQUITY, Side.SELL, 0, PositionEffect.AUTO, "SELL_SHORT"),
        (AssetClass.EQUITY, Side.SELL, 10, PositionEffect.AUTO, "SELL"),
        (AssetClass.EQUITY, Side.BUY, -10, PositionEffect.AUTO, "BUY_TO_COVER"),
        (AssetClass.OPTION, Side.BUY, 0, PositionEffect.AUTO, "BUY_TO_OPEN"),
        (AssetClass.OPTION, Side.SELL, 0, PositionEffect.OPEN, "SELL_TO_OPEN"),
        (AssetClass.OPTION, Side.SELL, 3, PositionEffect.AUTO, "SELL_TO_CLOSE"),
        (AssetClass.OPTION, Side.BUY, -3, PositionEffect.CLOSE, "BUY_TO_CLOSE"),
    ],
)
def test_instructions_follow_the_position(asset, side, held, effect, want):
    assert m.instruction(asset, side, m.resolve_effect("X", side, 3, held, effect)) == want


def test_instructions_refuse_what_schwab_would():
    with pytest.raises(m.Refused, match="two orders"):
        m.resolve_effect("AAPL", Side.SELL, 15, 10, PositionEffect.AUTO)
    with pytest.raises(m.Refused, match="needs an opposite position"):
        m.resolve_effect("AAPL", Side.SELL, 1, 0, PositionEffect.CLOSE)
    with pytest.raises(m.Refused, match="will not open the other side"):
        m.resolve_effect("AAPL", Side.SELL, 1, 5, PositionEffect.OPEN)


def _opt(text: str):
    return MASTER.resolve(text)


def _legs(*specs: tuple[str, Side, int]):
    return [(OrderLeg(s, side, ratio), _opt(s)) for s, side, ratio in specs]


def test_strategies_are_named_from_the_legs():
    c190, c195, c200 = "AAPL  261218C00190000", "AAPL  261218C00195000", "AAPL  261218C00200000"
    p180, p185 = "AAPL  261218P00180000", "AAPL  261218P00185000"
    p190 = "AAPL  261218P00190000"
    assert m.complex_strategy(_legs((c190, Side.BUY, 1), (c195, Side.SELL, 1))) == "VERTICAL"
    assert m.complex_strategy(_legs((c190, Side.BUY, 1), (p190, Side.BUY, 1))) == "STRADDLE"
    assert m.complex_strategy(_legs((c195, Side.SELL, 1), (p185, Side.SELL, 1))) == "STRANGLE"
    condor = _legs((p180, Side.BUY, 1), (p185, Side.SELL, 1), (c195, Side.SELL, 1), (c200, Side.BUY, 1))
    assert m.complex_strategy(condor) == "IRON_CONDOR"
    fly = _legs((c190, Side.BUY, 1), (c195, Side.SELL, 2), (c200, Side.BUY, 1))
    assert m.complex_strategy(fly) == "BUTTERFLY"
    cal = _legs((c190, Side.SELL, 1), ("AAPL  270115C00190000", Side.BUY, 1))
    assert m.complex_strategy(cal) == "CALENDAR"
    odd = _legs((c190, Side.BUY, 1), (c195, Side.BUY, 1))
    assert m.complex_strategy(odd) == "CUSTOM"


# =========================================================================== bodies, ids, errors, times


def test_location_gives_the_order_id_whatever_the_host():
    assert (
        m.order_id_from_location("https://api.schwabapi.com/trader/v1/accounts/ABC/orders/1000000042") == "1000000042"
    )
    assert m.order_id_from_location("http://127.0.0.1:5/trader/v1/accounts/ABC/orders/7/") == "7"
    assert m.order_id_from_location("https://api.schwabapi.com/trader/v1/accounts/ABC") is None
    assert m.order_id_from_location(None) is None


def test_both_error_shapes_become_words():
    assert (
        m.error_text(400, {"message": "Invalid order", "errors": ["price: off tick"]})
        == "Invalid order; price: off tick"
    )
    md = {"errors": [{"id": "x", "status": 401, "title": "Unauthorized", "detail": "Client not authorized"}]}
    assert m.error_text(401, md) == "Client not authorized"
    assert m.error_text(400, {"error": "invalid_client", "error_description": "refresh token invalid"}) == (
        "invalid_client: refresh token invalid"
    )
    assert m.error_text(500, None) == "HTTP 500"


def test_times_accept_the_offset_without_a_colon():
    assert m.parse_time("2024-04-04T15:56:07+0000") == datetime(2024, 4, 4, 15, 56, 7, tzinfo=UTC)
    assert m.parse_time("2024-04-04T15:56:07.123Z") == datetime(2024, 4, 4, 15, 56, 7, 123000, tzinfo=UTC)
    assert m.iso(datetime(2024, 3, 29, tzinfo=UTC)) == "2024-03-29T00:00:00.000Z"


def test_replace_keeps_legs_and_instructions_and_changes_prices():
    node = {
        "session": "NORMAL",
        "duration": "DAY",
        "orderType": "STOP_LIMIT",
        "complexOrderStrategyType": "NONE",
        "quantity": 5.0,
        "price": 99.5,
        "stopPrice": 100.0,
        "orderStrategyType": "SINGLE",
        "status": "WORKING",
        "orderLegCollection": [
            {
                "instruction": "SELL_SHORT",
                "quantity": 5.0,
                "legId": 1,
                "instrument": {"symbol": "AAPL", "assetType": "EQUITY", "cusip": "x"},
            }
        ],
    }
    body = m.replace_body(node, quantity=7, limit=D("99.40"), stop=None)
    assert body == {
        "session": "NORMAL",
        "duration": "DAY",
        "orderType": "STOP_LIMIT",
        "price": "99.40",
        "stopPrice": "100.0",
        "orderStrategyType": "SINGLE",
        "orderLegCollection": [
            {"instruction": "SELL_SHORT", "quantity": 7, "instrument": {"symbol": "AAPL", "assetType": "EQUITY"}}
        ],
    }


# =========================================================================== order trees


def _tree() -> dict:
    leg = {"legId": 1, "instrument": {"symbol": "AAPL", "assetType": "EQUITY"}, "quantity": 5.0}
    return {
        "orderId": 11,
        "orderStrategyType": "TRIGGER",
        "orderType": "LIMIT",
        "price": 190.0,
        "quantity": 5.0,
        "filledQuantity": 5.0,
        "status": "FILLED",
        "duration": "DAY",
        "accountNumber": 12345678,
        "enteredTime": "2026-11-24T15:00:00+0000",
        "closeTime": "2026-11-24T15:00:01+0000",
        "orderLegCollection": [leg | {"instruction": "BUY"}],
        "orderActivityCollection": [
            {
                "activityType": "EXECUTION",
                "activityId": 900,
                "executionType": "FILL",
                "quantity": 5.0,
                "executionLegs": [{"legId": 1, "price": 189.99, "quantity": 5.0, "time": "2026-11-24T15:00:01+0000"}],
            }
        ],
        "childOrderStrategies": [
            {
                "orderId": 12,
                "orderStrategyType": "OCO",
                "status": "WORKING",
                "childOrderStrategies": [
                    {
                        "orderId": 13,
                        "orderStrategyType": "SINGLE",
                        "orderType": "LIMIT",
                        "price": 191.0,
                        "status": "WORKING",
                        "quantity": 5.0,
                        "orderLegCollection": [leg | {"instruction": "SELL"}],
                    },
                    {
                        "orderId": 14,
                        "orderStrategyType": "SINGLE",
                        "orderType": "STOP",
                        "stopPrice": 189.0,
                        "status": "AWAITING_STOP_CONDITION",
                        "quantity": 5.0,
                        "orderLegCollection": [leg | {"instruction": "SELL"}],
                    },
                ],
            }
        ],
    }


def test_a_trigger_tree_becomes_an_entry_and_two_linked_exits_with_fills():
    known = {"11": mo.Known("tt-entry", side=Side.BUY), "13": mo.Known("tt-entry-tp", role=OrderRole.TAKE_PROFIT)}
    out = list(
        mo.walk_orders(
            _tree(),
            broker="sw",
            account="sw:1",
            resolve=lambda s: MASTER.resolve(s),
            known=known.get,
            strategy_name=lambda p: MASTER.strategy(p).symbol,
        )
    )
    entry, tp, sl = (x.order for x in out)
    assert (entry.order_id, entry.client_order_id, entry.status, entry.avg_fill_price) == (
        "11",
        "tt-entry",
        OrderStatus.FILLED,
        D("189.99"),
    )
    assert (tp.parent_id, tp.oco_group, tp.role, tp.client_order_id) == (
        "11",
        "12",
        OrderRole.TAKE_PROFIT,
        "tt-entry-tp",
    )
    assert (sl.role, sl.status, sl.stop_price, sl.client_order_id) == (
        OrderRole.STOP_LOSS,
        OrderStatus.WORKING,
        D("189.0"),
        "schwab-14",
    )
    (fill,) = out[0].executions
    assert (fill.fill_id, fill.symbol, fill.side, fill.quantity, fill.price) == (
        "11:900:1",
        "AAPL",
        Side.BUY,
        5,
        D("189.99"),
    )


def test_a_credit_spread_maps_to_one_order_with_its_legs_and_net_price():
    c190, c195 = "AAPL  261218C00190000", "AAPL  261218C00195000"
    node = {
        "orderId": 21,
        "orderStrategyType": "SINGLE",
        "orderType": "NET_CREDIT",
        "price": 1.25,
        "quantity": 2.0,
        "filledQuantity": 2.0,
        "status": "FILLED",
        "complexOrderStrategyType": "VERTICAL",
        "orderLegCollection": [
            {
                "legId": 1,
                "instruction": "SELL_TO_OPEN",
                "quantity": 2.0,
                "instrument": {"symbol": c190, "assetType": "OPTION"},
            },
            {
                "legId": 2,
                "instruction": "BUY_TO_OPEN",
                "quantity": 2.0,
                "instrument": {"symbol": c195, "assetType": "OPTION"},
            },
        ],
        "orderActivityCollection": [
            {
                "activityType": "EXECUTION",
                "activityId": 1,
                "executionLegs": [
                    {"legId": 1, "price": 3.10, "quantity": 2.0},
                    {"legId": 2, "price": 1.80, "quantity": 2.0},
                ],
            }
        ],
    }
    x = mo.map_order(
        node,
        broker="sw",
        account="sw:1",
        resolve=MASTER.resolve,
        known=None,
        strategy_name=lambda p: MASTER.strategy(p).symbol,
    )
    assert x is not None
    o = x.order
    assert (o.side, o.price_effect, o.order_type, o.limit_price, o.quantity) == (
        Side.SELL,
        PriceEffect.CREDIT,
        OrderType.LIMIT,
        D("1.25"),
        2,
    )
    assert [(leg.symbol, leg.side, leg.ratio) for leg in o.legs] == [(c190, Side.SELL, 1), (c195, Side.BUY, 1)]
    assert o.avg_fill_price == D("1.30")  # 3.10 received, 1.80 paid: a 1.30 credit a spread
    assert o.symbol == MASTER.strategy([(leg, MASTER.resolve(leg.symbol)) for leg in o.legs]).symbol


def test_fees_come_from_trade_transactions():
    tx = [
        {
            "type": "TRADE",
            "orderId": 5,
            "transferItems": [
                {
                    "instrument": {"assetType": "OPTION", "symbol": "AAPL  261218C00190000"},
                    "amount": 2.0,
                    "price": 3.1,
                    "cost": -620.0,
                },
                {
                    "instrument": {"assetType": "CURRENCY", "symbol": "CURRENCY_USD"},
                    "cost": -1.3,
                    "feeType": "COMMISSION",
                },
            ],
        }
    ]
    assert m.trade_fees(tx) == {("5", "AAPL  261218C00190000", 2, D("3.1")): [D("1.3")]}


# =========================================================================== market data


def test_streamed_fields_merge_into_whole_quotes():
    book = mk.QuoteBook()
    first = book.merge(
        "LEVELONE_EQUITIES",
        {
            "key": "AAPL",
            "1": 189.98,
            "2": 190.02,
            "3": 190.0,
            "4": 3,
            "5": 4,
            "8": 1000,
            "12": 185.0,
            "34": 1794929400000,
        },
        "AAPL",
    )
    assert first is not None and (first.bid, first.ask, first.prev_close) == (D("189.98"), D("190.02"), D("185.0"))
    later = book.merge("LEVELONE_EQUITIES", {"key": "AAPL", "3": 190.01}, "AAPL")
    assert later is not None and (later.bid, later.ask, later.last, later.bid_size) == (
        D("189.98"),
        D("190.02"),
        D("190.01"),
        3,
    )
    opt = book.merge("LEVELONE_OPTIONS", {"key": "X", "2": 1.1, "3": 1.2, "4": 1.15, "16": 10, "17": 20}, "X")
    assert opt is not None and (opt.bid, opt.ask, opt.bid_size) == (D("1.1"), D("1.2"), 10)
    assert book.merge("CHART_EQUITY", {"key": "AAPL"}, "AAPL") is None


def test_a_chain_accepts_both_price_key_spellings_and_nan_greeks():
    c = "AAPL  261218C00190000"
    p = "AAPL  261218P00190000"
    body = {
        "status": "SUCCESS",
        "underlyingPrice": 190.5,
        "callExpDateMap": {
            "2026-12-18:24": {
                "190.0": [
                    {
                        "symbol": c,
                        "bid": 5.1,
                        "ask": 5.3,
                        "totalVolume": 12,
                        "openInterest": 340,
                        "volatility": 28.5,
                        "delta": 0.52,
                        "gamma": 0.03,
                        "theta": -0.08,
                        "vega": 0.21,
                    }
                ]
            }
        },
        "putExpDateMap": {
            "2026-12-18:24": {
                "190.0": [
                    {
                        "symbol": p,
                        "bidPrice": 4.0,
                        "askPrice": 4.2,
                        "delta": "NaN",
                        "gamma": "NaN",
                        "theta": "NaN",
                        "vega": "NaN",
                    }
                ]
            }
        },
    }
    chain = mk.chain_of(
        body,
        underlying="AAPL",
        expiry=date(2026, 12, 18),
        expiries=(date(2026, 12, 18),),
        broker="sw",
        instrument=lambda s, _c: MASTER.resolve(s),
    )
    (row,) = chain.rows
    assert row.strike == D("190") and chain.underlying_price == D("190.5")
    assert row.call is not None and row.call.iv == pytest.approx(0.285) and row.call.open_interest == 340
    assert row.call.greeks is not None and row.call.greeks.delta == 0.52 and row.call.greeks.source == "broker"
    assert row.put is not None and (row.put.bid, row.put.ask) == (D("4.0"), D("4.2")) and row.put.greeks is None
    with pytest.raises(ValueError, match="no option chain"):
        mk.chain_of(
            {"status": "FAILED"},
            underlying="ZZZ",
            expiry=date(2026, 12, 18),
            expiries=(),
            broker="sw",
            instrument=lambda s, _c: None,
        )


def test_hours_are_built_from_half_hours_on_the_clock_hour():
    t0 = int(datetime(2026, 11, 24, 14, 30, tzinfo=UTC).timestamp() * 1000)
    half = 30 * 60 * 1000
    candles = [
        {"open": 1 + i, "high": 2 + i, "low": 0.5 + i, "close": 1.5 + i, "volume": 10, "datetime": t0 + i * half}
        for i in range(3)
    ]
    start, end = datetime(2026, 11, 24, 14, tzinfo=UTC), datetime(2026, 11, 24, 17, tzinfo=UTC)
    bars = mk.bars_of({"candles": candles}, "AAPL", Timeframe.H1, start, end)
    assert [b.start.hour for b in bars] == [14, 15]
    assert (bars[1].open, bars[1].close, bars[1].high, bars[1].volume) == (D("2"), D("3.5"), D("4"), 20)
    assert mk.expirations_of({"expirationList": [{"expiration": "2026-12-18"}, {"expirationDate": "2027-01-15"}]}) == (
        date(2026, 12, 18),
        date(2027, 1, 15),
    )


def test_a_preview_reads_rejects_and_costs():
    body = {
        "orderStrategy": {
            "status": "REJECTED",
            "orderBalance": {"orderValue": 1000.0, "projectedCommission": 0.65, "projectedBuyingPower": -5.0},
        },
        "orderValidationResult": {"rejects": [{"message": "not enough buying power"}], "warns": [{"message": "hm"}]},
    }
    p = mk.preview_of(body, "sw")
    assert not p.accepted and p.rejects == ("not enough buying power",) and p.warnings == ("hm",)
    assert p.commission == D("0.65") and "sw would reject the order" in p.describe()

"""Option strategy maths: builders from a chain, net prices, max profit/loss, breakevens, the order."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from tterm.core.models import (
    AssetClass,
    ChainRow,
    Greeks,
    Instrument,
    OptionChain,
    OptionQuote,
    OptionRight,
    OrderType,
    PriceEffect,
    Side,
)
from tterm.core.strategy import (
    Leg,
    StrategyError,
    add_leg,
    analyse,
    build_request,
    check_net_price,
    iron_condor,
    kind_of,
    mid,
    name_of,
    natural,
    on_grid,
    parse_option_symbol,
    straddle,
    strangle,
    vertical,
)

D = Decimal
EXP = date(2026, 12, 18)


def opt(strike: str, right: OptionRight, expiry: date = EXP) -> Instrument:
    cp = "C" if right is OptionRight.CALL else "P"
    return Instrument(
        symbol=f"AAPL  {expiry:%y%m%d}{cp}{int(D(strike) * 1000):08d}",
        asset_class=AssetClass.OPTION,
        tick_size=D("0.01"),
        tick_value=D("1"),
        underlying="AAPL",
        expiry=expiry,
        strike=D(strike),
        right=right,
    )


def chain() -> OptionChain:
    """Strikes 180-200 by 5, quotes set so the maths is easy to check by hand."""
    calls = {"180": ("8.00", "8.20"), "185": ("4.50", "4.70"), "190": ("2.00", "2.10"), "195": ("0.80", "0.90"),
             "200": ("0.30", "0.35")}  # fmt: skip
    puts = {"180": ("0.40", "0.45"), "185": ("1.10", "1.20"), "190": ("2.50", "2.60"), "195": ("5.40", "5.60"),
            "200": ("9.80", "10.00")}  # fmt: skip
    rows = []
    for k in calls:
        cb, ca = calls[k]
        pb, pa = puts[k]
        rows.append(ChainRow(D(k), OptionQuote(opt(k, OptionRight.CALL), D(cb), D(ca)),
                             OptionQuote(opt(k, OptionRight.PUT), D(pb), D(pa))))  # fmt: skip
    return OptionChain("AAPL", EXP, (EXP,), tuple(rows), D("190.00"), "test", datetime(2026, 11, 17, tzinfo=UTC))


def test_a_call_vertical_is_a_debit_with_bounded_profit_and_loss() -> None:
    legs = vertical(chain(), D("190"), OptionRight.CALL)
    assert [(leg.side, leg.strike) for leg in legs] == [(Side.BUY, D("190")), (Side.SELL, D("195"))]
    assert natural(legs) == D("2.10") - D("0.80") == D("1.30")
    assert mid(legs) == D("2.05") - D("0.85") == D("1.20")
    a = analyse(legs, D("1.20"))
    assert a.effect is PriceEffect.DEBIT
    assert (a.max_profit, a.max_loss, a.breakevens) == (D("3.80"), D("1.20"), (D("191.20"),))
    assert a.money(a.max_profit, 2) == D("760.00") and a.multiplier == 100
    assert kind_of(legs) == "vertical" and name_of(legs) == "AAPL 18DEC26 190C/195C vertical"


def test_a_put_vertical_sells_the_lower_strike() -> None:
    legs = vertical(chain(), D("190"), OptionRight.PUT)
    assert [(leg.side, leg.strike) for leg in legs] == [(Side.BUY, D("190")), (Side.SELL, D("185"))]
    a = analyse(legs, D("1.45"))
    assert (a.max_profit, a.max_loss, a.breakevens) == (D("3.55"), D("1.45"), (D("188.55"),))
    with pytest.raises(StrategyError, match="no strike below 180 for the short leg of a put vertical"):
        vertical(chain(), D("180"), OptionRight.PUT)


def test_straddle_and_strangle_lose_at_most_the_debit_and_gain_without_limit() -> None:
    s = straddle(chain(), D("190"))
    a = analyse(s, D("4.65"))
    assert a.max_profit is None and a.max_loss == D("4.65")
    assert a.breakevens == (D("185.35"), D("194.65")) and kind_of(s) == "straddle"
    g = strangle(chain(), D("190"))
    assert {(leg.right, leg.strike) for leg in g} == {(OptionRight.CALL, D("195")), (OptionRight.PUT, D("185"))}
    b = analyse(g, D("2.00"))
    assert b.max_profit is None and b.max_loss == D("2.00") and b.breakevens == (D("183.00"), D("197.00"))
    assert kind_of(g) == "strangle"


def test_an_iron_condor_is_a_credit_with_two_breakevens() -> None:
    legs = iron_condor(chain(), D("190"))
    assert [(leg.side, leg.right, leg.strike) for leg in legs] == [
        (Side.BUY, OptionRight.PUT, D("180")),
        (Side.SELL, OptionRight.PUT, D("185")),
        (Side.SELL, OptionRight.CALL, D("195")),
        (Side.BUY, OptionRight.CALL, D("200")),
    ]
    nat = natural(legs)
    assert nat == D("0.45") - D("1.10") - D("0.80") + D("0.35") == D("-1.10")
    a = analyse(legs, D("-1.10"))
    assert a.effect is PriceEffect.CREDIT
    assert (a.max_profit, a.max_loss, a.breakevens) == (D("1.10"), D("3.90"), (D("183.90"), D("196.10")))
    assert kind_of(legs) == "iron condor"


def test_a_naked_short_call_has_unlimited_loss() -> None:
    leg = Leg(opt("190", OptionRight.CALL), Side.SELL, 1, D("2.00"), D("2.10"))
    other = Leg(opt("185", OptionRight.PUT), Side.SELL, 1, D("1.10"), D("1.20"))
    a = analyse((leg, other), D("-3.10"))
    assert a.max_loss is None and a.max_profit == D("3.10")
    assert a.breakevens == (D("181.90"), D("193.10"))


def test_adding_legs_merges_the_same_option_and_keeps_one_underlying() -> None:
    c190 = Leg(opt("190", OptionRight.CALL), Side.BUY)
    legs = add_leg(add_leg((), c190), Leg(opt("190", OptionRight.CALL), Side.BUY))
    assert len(legs) == 1 and legs[0].ratio == 2
    assert add_leg(legs, Leg(opt("190", OptionRight.CALL), Side.SELL, 2)) == ()
    msft = Instrument("MSFT  261218C00400000", AssetClass.OPTION, D("0.01"), D("1"), underlying="MSFT",
                      expiry=EXP, strike=D("400"), right=OptionRight.CALL)  # fmt: skip
    with pytest.raises(StrategyError, match="one order trades one underlying"):
        add_leg(legs, Leg(msft, Side.SELL))
    with pytest.raises(StrategyError, match="is not an option"):
        Leg(Instrument("AAPL", AssetClass.EQUITY, D("0.01"), D("0.01")), Side.BUY)


def test_net_prices_off_the_penny_grid_are_refused_not_rounded() -> None:
    assert check_net_price(D("1.23")) == D("1.23")
    with pytest.raises(
        StrategyError, match=r"net price 1\.234 is off the tick grid .*nearest valid prices 1\.23 and 1\.24"
    ):
        check_net_price(D("1.234"))
    with pytest.raises(StrategyError, match="neither a debit nor a credit"):
        check_net_price(D("0"))
    assert on_grid(D("1.205"), toward="pay") == D("1.21") and on_grid(D("-1.105"), toward="pay") == D("-1.10")


def test_the_order_carries_a_positive_net_with_its_effect() -> None:
    legs = vertical(chain(), D("190"), OptionRight.CALL)
    today = date(2026, 11, 17)
    debit = build_request("paper:CASH", legs, 2, D("1.25"), today=today)
    assert (debit.side, debit.order_type, debit.limit_price, debit.price_effect) == (
        Side.BUY, OrderType.LIMIT, D("1.25"), PriceEffect.DEBIT)  # fmt: skip
    assert [(leg.symbol, leg.side, leg.ratio) for leg in debit.legs] == [
        (legs[0].symbol, Side.BUY, 1), (legs[1].symbol, Side.SELL, 1)]  # fmt: skip
    credit = build_request("paper:CASH", iron_condor(chain(), D("190")), 1, D("-1.05"), today=today)
    assert (credit.side, credit.limit_price, credit.price_effect) == (Side.SELL, D("1.05"), PriceEffect.CREDIT)
    market = build_request("paper:CASH", legs, 1, None, today=today)
    assert market.order_type is OrderType.MARKET and market.limit_price is None
    with pytest.raises(StrategyError, match="off the tick grid"):
        build_request("paper:CASH", legs, 1, D("1.255"), today=today)
    with pytest.raises(StrategyError, match="at least two legs"):
        build_request("paper:CASH", legs[:1], 1, D("1.25"), today=today)
    old = (Leg(opt("190", OptionRight.CALL, date(2026, 11, 13)), Side.BUY),
           Leg(opt("195", OptionRight.CALL, date(2026, 11, 13)), Side.SELL))  # fmt: skip
    with pytest.raises(StrategyError, match=r"leg AAPL  261113C00190000 is on a series that expired on 2026-11-13"):
        build_request("paper:CASH", old, 1, D("1.00"), today=today)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "no option symbol given"),
        ("AAPL", "the expiry must be six digits"),
        ("AAPL 2612C00200000", "the expiry must be six digits"),
        ("AAPL  261218X00200000", r"C \(call\) or P \(put\) must follow the expiry"),
        ("AAPL  261218C200", "the strike must be 8 digits"),
        ("AAPL  261318C00200000", "261318 is not a date"),
        ("12345 261218C00200000", "is not an option symbol"),
        ("AAPL  261218C00000000", "a strike of 0 is not an option"),
    ],
)
def test_option_symbols_that_do_not_parse_say_which_part_is_wrong(text: str, error: str) -> None:
    with pytest.raises(StrategyError, match=error):
        parse_option_symbol(text)


def test_option_symbols_parse_with_or_without_padding() -> None:
    want = ("AAPL", EXP, OptionRight.PUT, D("187.5"))
    assert parse_option_symbol("AAPL  261218P00187500") == want
    assert parse_option_symbol("aapl261218p00187500") == want


def test_a_spread_quotes_as_its_legs_natural_market_for_the_pre_trade_checks() -> None:
    from tterm.core.models import OrderLeg, Quote
    from tterm.core.strategy import combo_quote

    t0, t1 = datetime(2026, 11, 17, 15, 0, tzinfo=UTC), datetime(2026, 11, 17, 15, 1, tzinfo=UTC)
    c190 = Quote("C190", bid=D("2.00"), ask=D("2.10"), ts=t1)
    c195 = Quote("C195", bid=D("0.80"), ask=D("0.90"), ts=t0)
    debit = combo_quote("v", [(OrderLeg("C190", Side.BUY), c190), (OrderLeg("C195", Side.SELL), c195)])
    assert debit is not None and (debit.bid, debit.ask, debit.ts) == (D("1.10"), D("1.30"), t0)
    credit = combo_quote("v", [(OrderLeg("C190", Side.SELL), c190), (OrderLeg("C195", Side.BUY), c195)])
    assert credit is not None and (credit.bid, credit.ask) == (D("1.10"), D("1.30"))  # positive credits
    assert combo_quote("v", [(OrderLeg("C190", Side.BUY), c190), (OrderLeg("C195", Side.SELL), None)]) is None


def test_greeks_a_broker_did_not_send_are_computed_and_labelled() -> None:
    from dataclasses import replace as _replace

    from tterm.core.strategy import with_computed_greeks

    c = chain()
    bare = _replace(c, rows=tuple(_replace(r, call=_replace(r.call, iv=None)) for r in c.rows))
    bare = _replace(bare, rows=(*bare.rows[:-1], _replace(bare.rows[-1], call=_replace(bare.rows[-1].call, iv=0.30))))
    out = with_computed_greeks(bare, datetime(2026, 11, 17, 15, 0, tzinfo=UTC))
    atm = next(r for r in out.rows if r.strike == D("190")).call
    assert atm.greeks is not None and atm.greeks.source == "computed" and 0.4 < atm.greeks.delta < 0.65
    assert atm.iv is not None and 0.05 < atm.iv < 1.0  # implied from the mid (2.05)
    top = out.rows[-1].call
    assert top.iv == 0.30 and top.greeks is not None and top.greeks.delta < 0.35  # from the IV it had
    put = out.rows[0].put
    assert put.greeks is not None and put.greeks.delta < 0
    broker = _replace(c.rows[0].call, greeks=Greeks(0.9))
    kept = with_computed_greeks(
        _replace(c, rows=(_replace(c.rows[0], call=broker),)), datetime(2026, 11, 17, tzinfo=UTC)
    )
    assert kept.rows[0].call.greeks.source == "broker" and kept.rows[0].call.greeks.delta == 0.9

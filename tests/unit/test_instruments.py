"""Instrument master: contract specs, symbol forms, continuous -> contract roll, tick rounding."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tterm.core.clock import CT, CmeClock, default_calendar
from tterm.core.instruments import MONTH_CODES, InstrumentMaster, UnknownSymbol
from tterm.core.models import AssetClass, Instrument, ModelError, OptionRight

CAL = default_calendar()
TODAY = date(2026, 11, 24)  # a Tuesday; every test pins its own date, never the wall clock


@pytest.fixture
def master() -> InstrumentMaster:
    return InstrumentMaster(calendar=CAL, today=lambda: TODAY)


D = Decimal

# --------------------------------------------------------------------------- contract specs

SPECS = [
    # root, tick size, tick value, point value, micro ratio, mini
    ("ES", D("0.25"), D("12.50"), D("50"), 1, ""),
    ("MES", D("0.25"), D("1.25"), D("5"), 10, "ES"),
    ("NQ", D("0.25"), D("5"), D("20"), 1, ""),
    ("MNQ", D("0.25"), D("0.50"), D("2"), 10, "NQ"),
    ("RTY", D("0.10"), D("5"), D("50"), 1, ""),
    ("M2K", D("0.10"), D("0.50"), D("5"), 10, "RTY"),
    ("YM", D("1"), D("5"), D("5"), 1, ""),
    ("MYM", D("1"), D("0.50"), D("0.50"), 10, "YM"),
    ("CL", D("0.01"), D("10"), D("1000"), 1, ""),
    ("MCL", D("0.01"), D("1"), D("100"), 10, "CL"),
    ("GC", D("0.10"), D("10"), D("100"), 1, ""),
    ("MGC", D("0.10"), D("1"), D("10"), 10, "GC"),
]


def test_every_root_is_covered(master: InstrumentMaster) -> None:
    assert sorted(master.roots) == sorted(row[0] for row in SPECS)


@pytest.mark.parametrize(("root", "tick", "tick_value", "point_value", "micro_ratio", "mini"), SPECS)
def test_contract_specs(
    master: InstrumentMaster,
    root: str,
    tick: Decimal,
    tick_value: Decimal,
    point_value: Decimal,
    micro_ratio: int,
    mini: str,
) -> None:
    inst = master.resolve(root)
    assert inst.asset_class is AssetClass.FUTURE
    assert inst.root == root
    assert inst.tick_size == tick
    assert inst.tick_value == tick_value
    assert inst.point_value == point_value
    assert inst.micro_ratio == micro_ratio
    assert inst.is_micro == (micro_ratio > 1)
    assert master.spec(root).mini == mini
    if mini:
        # Ten micros are one mini: same tick, a tenth of the money.
        big = master.resolve(mini)
        assert big.tick_size == inst.tick_size
        assert big.point_value == inst.point_value * micro_ratio
    assert inst.money(tick, 1) == tick_value
    assert inst.fee_per_side == master.spec(root).fee_per_side > 0


def test_money_examples(master: InstrumentMaster) -> None:
    es, mes, cl = master.resolve("ES"), master.resolve("MES"), master.resolve("CL")
    assert es.money(D("1"), 2) == D("100")
    assert mes.money(D("1.00"), 1) == D("5")
    assert mes.money(-4 * mes.tick_size, 3) == D("-15")
    assert cl.money(D("0.37"), 1) == D("370")
    assert es.ticks_between(D("5000"), D("5001.50")) == 6


def test_fee_override(master: InstrumentMaster) -> None:
    m = InstrumentMaster(calendar=CAL, today=lambda: TODAY, fee_overrides={"mes": D("0.35")})
    assert m.resolve("MESZ6").fee_per_side == D("0.35")
    assert m.resolve("ESZ6").fee_per_side == master.spec("ES").fee_per_side
    with pytest.raises(UnknownSymbol, match="fee override for unknown futures root 'XX'"):
        InstrumentMaster(fee_overrides={"XX": D("1")})


# --------------------------------------------------------------------------- symbol forms


@pytest.mark.parametrize(
    "symbol",
    ["MES", "MES1!", "CME_MINI:MES1!", "/MES", "MESZ6", "MESZ26", "MESZ2026", " mes1! ", "cme_mini:mesz26", "/mesz6"],
)
def test_all_forms_of_the_front_mes(master: InstrumentMaster, symbol: str) -> None:
    inst = master.resolve(symbol)
    assert inst == master.contract("MES", 2026, 12)
    assert inst.symbol == "MESZ6"
    assert inst.expiry == date(2026, 12, 18)
    assert inst.description == "Micro E-mini S&P 500 Dec 2026"


@pytest.mark.parametrize("symbol", ["MES2!", "CME_MINI:MES2!", "MESH7", "MESH27", "MESH2027", "/MESH7"])
def test_all_forms_of_the_next_mes(master: InstrumentMaster, symbol: str) -> None:
    assert master.resolve(symbol).symbol == "MESH7"


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [
        ("ES1!", "ESZ6"),  # ES is not read as the tail of MES, nor MES as M + ES
        ("M2K1!", "M2KZ6"),  # a root with a digit in it
        ("M2KZ6", "M2KZ6"),
        ("MYM", "MYMZ6"),
        ("YM1!", "YMZ6"),
        ("NYMEX:CL1!", "CLF7"),
        ("MCL1!", "MCLF7"),
        ("COMEX:GC1!", "GCZ6"),
        ("MGC2!", "MGCG7"),
        ("CL3!", "CLH7"),
    ],
)
def test_other_roots_and_prefixes(master: InstrumentMaster, symbol: str, expected: str) -> None:
    assert master.resolve(symbol).symbol == expected


def test_one_digit_years_read_as_the_nearest_year_not_more_than_a_year_past() -> None:
    m = InstrumentMaster(calendar=CAL, today=lambda: date(2026, 6, 1))
    assert m.resolve("MESZ5").expiry == date(2025, 12, 19)  # last year: still 2025
    assert m.resolve("MESZ4").expiry == date(2034, 12, 15)  # two years back: the next decade
    assert m.parse_contract("MESZ9") == ("MES", 2029, 12)
    assert m.parse_contract("MESZ26") == ("MES", 2026, 12)
    assert m.parse_contract("AAPL") is None


def test_options_in_occ_form(master: InstrumentMaster) -> None:
    call = master.resolve("AAPL  261218C00200000")
    assert call.asset_class is AssetClass.OPTION
    assert call.symbol == "AAPL  261218C00200000"
    assert (call.underlying, call.expiry, call.strike, call.right) == (
        "AAPL",
        date(2026, 12, 18),
        D("200"),
        OptionRight.CALL,
    )
    assert call.point_value == 100  # one contract is 100 shares
    put = master.resolve("spy261218p00590500")
    assert (put.underlying, put.strike, put.right) == ("SPY", D("590.5"), OptionRight.PUT)
    assert put.symbol == "SPY   261218P00590500"  # rendered in padded OCC form
    assert master.resolve("SPY   261218P00590500") == put


def test_equities(master: InstrumentMaster) -> None:
    aapl = master.resolve("aapl")
    assert (aapl.asset_class, aapl.tick_size, aapl.point_value) == (AssetClass.EQUITY, D("0.01"), 1)
    assert aapl.description == "Apple Inc."
    master.add_equity("brk.b", "Berkshire Hathaway B")
    assert master.resolve("BRK.B").symbol == "BRK.B"
    assert "BRK.B" in master.equities


def test_broker_added_instruments_resolve(master: InstrumentMaster) -> None:
    extra = Instrument(symbol="6EZ6", asset_class=AssetClass.FUTURE, tick_size=D("0.00005"), tick_value=D("6.25"))
    master.add(extra)
    assert master.resolve("6ez6") is extra


@pytest.mark.parametrize(
    ("symbol", "message"),
    [
        ("FOO", "unknown symbol 'FOO'$"),
        ("", "empty symbol"),
        ("  ", "empty symbol"),
        ("MESX6", r"MES has no X \(Nov\) contract; its cycle is HMUZ"),
        ("ESF27", r"ES has no F \(Jan\) contract; its cycle is HMUZ"),
        ("GCH7", r"GC has no H \(Mar\) contract; its cycle is GJMQVZ"),
        ("MES0!", "MES0!: the continuous index starts at 1"),
        ("MESQ", r"unknown symbol 'MESQ' \(did you mean MES or a contract like MESZ6\?\)"),
        ("MESZ266", r"did you mean MES"),
        ("AAPL  261318C00200000", "impossible expiry date"),
    ],
)
def test_bad_symbols_get_specific_messages(master: InstrumentMaster, symbol: str, message: str) -> None:
    with pytest.raises(UnknownSymbol, match=message):
        master.resolve(symbol)


def test_other_bad_inputs(master: InstrumentMaster) -> None:
    with pytest.raises(UnknownSymbol, match="unknown futures root 'XX'"):
        master.spec("XX")
    with pytest.raises(UnknownSymbol, match="not a valid equity symbol"):
        master.add_equity("TOOLONG")
    with pytest.raises(UnknownSymbol, match="CL0!: the continuous index starts at 1"):
        master.front("CL", nth=0)
    assert isinstance(UnknownSymbol("x"), ValueError)


# --------------------------------------------------------------------------- expiry and roll


@pytest.mark.parametrize(
    ("root", "year", "month", "last_trade", "roll"),
    [
        # Equity index: third Friday, rolling the Thursday eight days before.
        ("MES", 2026, 12, date(2026, 12, 18), date(2026, 12, 10)),
        ("ES", 2027, 3, date(2027, 3, 19), date(2027, 3, 11)),
        # Juneteenth 2026 is the third Friday: a holiday halt with no settlement, so the last trade is Thursday.
        ("ES", 2026, 6, date(2026, 6, 18), date(2026, 6, 11)),
        # Juneteenth 2027 (Saturday) is observed Friday June 18, again the third Friday.
        ("NQ", 2027, 6, date(2027, 6, 17), date(2027, 6, 10)),
        # CL: 3 business days before the 25th of the prior month, 4 if the 25th is not a business day.
        # Nov 25 2026 is a Wednesday: Nov 24, 23, 20.
        ("CL", 2026, 12, date(2026, 11, 20), date(2026, 11, 13)),
        # Dec 25 2026 is Christmas (closed): 4 days before, Dec 24 (an early close, still a business day),
        # 23, 22, 21. Roll 5 business days earlier: Dec 14.
        ("CL", 2027, 1, date(2026, 12, 21), date(2026, 12, 14)),
        # Jan 25 2027 is a Monday: Jan 22, 21, 20. The roll skips MLK day (Jan 18).
        ("CL", 2027, 2, date(2027, 1, 20), date(2027, 1, 12)),
        # Nov 25 2027 is Thanksgiving, not a clearing day: Nov 24, 23, 22, 19.
        ("CL", 2027, 12, date(2027, 11, 19), date(2027, 11, 12)),
        # Dec 25 2027 is a Saturday; Dec 24 is closed (Christmas observed): Dec 23, 22, 21, 20.
        ("CL", 2028, 1, date(2027, 12, 20), date(2027, 12, 13)),
        # MCL stops one business day before CL.
        ("MCL", 2027, 1, date(2026, 12, 18), date(2026, 12, 14)),
        # Gold: last trade third-last business day of the month; roll 2 business days before first
        # notice (last business day of the prior month). Nov 30 2026 -> Nov 27, skip Thanksgiving -> Nov 25.
        ("GC", 2026, 12, date(2026, 12, 29), date(2026, 11, 25)),
        # May 31 2027 is Memorial Day: first notice Friday May 28, roll May 26.
        ("MGC", 2027, 6, date(2027, 6, 28), date(2027, 5, 26)),
    ],
)
def test_last_trade_and_roll_dates(
    master: InstrumentMaster, root: str, year: int, month: int, last_trade: date, roll: date
) -> None:
    assert master.last_trade_date(root, year, month) == last_trade
    assert master.roll_date(root, year, month) == roll
    assert master.contract(root, year, month).expiry == last_trade


def test_the_holiday_calendar_changes_clf7() -> None:
    """Without the CME calendar Dec 25 2026 looks like a business day and CLF7 would end a day late."""
    plain = InstrumentMaster(today=lambda: TODAY)
    assert plain.last_trade_date("CL", 2027, 1) == date(2026, 12, 22)
    wired = InstrumentMaster(calendar=CAL, today=lambda: TODAY)
    assert wired.last_trade_date("CL", 2027, 1) == date(2026, 12, 21)


@pytest.mark.parametrize(
    ("symbol", "before", "on_roll", "old", "new"),
    [
        ("MES1!", date(2026, 12, 9), date(2026, 12, 10), "MESZ6", "MESH7"),
        ("MES2!", date(2026, 12, 9), date(2026, 12, 10), "MESH7", "MESM7"),
        ("NQ1!", date(2026, 6, 10), date(2026, 6, 11), "NQM6", "NQU6"),
        ("CL1!", date(2026, 11, 12), date(2026, 11, 13), "CLZ6", "CLF7"),
        ("CL1!", date(2026, 12, 11), date(2026, 12, 14), "CLF7", "CLG7"),
        ("CL1!", date(2026, 12, 13), date(2026, 12, 14), "CLF7", "CLG7"),  # a Sunday before the roll
        ("MCL1!", date(2026, 12, 11), date(2026, 12, 14), "MCLF7", "MCLG7"),
        ("GC1!", date(2026, 11, 24), date(2026, 11, 25), "GCZ6", "GCG7"),
        ("MGC1!", date(2027, 5, 25), date(2027, 5, 26), "MGCM7", "MGCQ7"),
    ],
)
def test_continuous_mapping_across_the_roll(
    master: InstrumentMaster, symbol: str, before: date, on_roll: date, old: str, new: str
) -> None:
    assert master.resolve(symbol, on=before).symbol == old
    assert master.resolve(symbol, on=on_roll).symbol == new


def test_roll_follows_the_clock_trade_date() -> None:
    """Wired to the clock, MES1! rolls when the trade date does: 17:00 CT the evening before."""
    now = datetime(2026, 12, 9, 16, 59, tzinfo=CT)
    clock = CmeClock(CAL, now=lambda: now)
    m = InstrumentMaster(calendar=CAL, today=clock.trade_date)
    assert m.resolve("MES1!").symbol == "MESZ6"
    now = datetime(2026, 12, 9, 17, 0, tzinfo=CT)
    assert m.resolve("MES1!").symbol == "MESH7"


def test_roll_table(master: InstrumentMaster) -> None:
    rows = {r.continuous: r for r in master.roll_table(on=TODAY)}
    assert set(rows) == {f"{root}1!" for root in master.roots}
    cl = rows["CL1!"]
    assert (cl.contract, cl.last_trade, cl.roll_date, cl.next_contract) == (
        "CLF7",
        date(2026, 12, 21),
        date(2026, 12, 14),
        "CLG7",
    )
    assert rows["GC1!"].roll_date == date(2026, 11, 25)
    for r in rows.values():
        assert r.roll_date > TODAY
        assert master.resolve(r.continuous, on=TODAY).symbol == r.contract
        assert master.resolve(r.continuous, on=r.roll_date).symbol == r.next_contract


class RecordingCalendar:
    def __init__(self) -> None:
        self.years: set[int] = set()

    def is_business_day(self, d: date) -> bool:
        self.years.add(d.year)
        return CAL.is_clearing_day(d)


def test_front_does_not_consult_years_before_the_current_one() -> None:
    cal = RecordingCalendar()
    m = InstrumentMaster(calendar=cal, today=lambda: date(2026, 1, 5))
    m.roll_table()
    assert min(cal.years) >= 2025  # CLG6 ends in January 2026, counting back from Dec 2025 at most


@settings(max_examples=150, deadline=None)
@given(st.dates(date(2025, 1, 1), date(2027, 10, 31)), st.sampled_from([row[0] for row in SPECS]))
def test_law_front_is_the_first_contract_not_yet_rolled(on: date, root: str) -> None:
    m = InstrumentMaster(calendar=CAL, today=lambda: on)
    front = m.front(root)
    nxt = m.front(root, nth=2)
    parsed = m.parse_contract(front.symbol, on=front.expiry)
    assert parsed is not None
    _, year, month = parsed
    assert m.roll_date(root, year, month) > on
    assert front.expiry is not None and front.expiry > on
    assert nxt.expiry is not None and nxt.expiry > front.expiry
    # The contract before it in the cycle has already rolled.
    cycle = m.spec(root).months
    i = cycle.index(month)
    prev_year, prev_month = (year, cycle[i - 1]) if i > 0 else (year - 1, cycle[-1])
    assert m.roll_date(root, prev_year, prev_month) <= on
    assert m.resolve(f"{root}1!") == front
    assert m.resolve(f"{root}{MONTH_CODES[month - 1]}{year}") == front


# --------------------------------------------------------------------------- tick rounding


def test_rounding_examples(master: InstrumentMaster) -> None:
    mes = master.resolve("MES")
    assert mes.round_price(D("5000.13")) == D("5000.25")
    assert mes.round_price(D("5000.12")) == D("5000.00")
    assert mes.round_price(D("5000.13"), "down") == D("5000.00")
    assert mes.round_price(D("5000.01"), "up") == D("5000.25")
    assert mes.round_price(D("5000.125")) == D("5000.00")  # an exact half goes to the even tick
    assert mes.round_price(D("5000.375")) == D("5000.50")
    assert mes.round_price(D("5000.50"), "reject") == D("5000.50")
    with pytest.raises(
        ModelError, match=r"off the tick grid \(tick size 0.25; nearest valid prices 5000.00 and 5000.25\)"
    ):
        mes.round_price(D("5000.10"), "reject")
    cl = master.resolve("CL")
    assert cl.round_price(D("-37.635"), "down") == D("-37.64")  # negative prices round too (April 2020)
    assert cl.round_price(D("-37.635"), "up") == D("-37.63")
    ym = master.resolve("YM")
    assert ym.round_price(D("44000.5"), "up") == D("44001")
    assert ym.round_price(D("44000.49")) == D("44000")
    for bad in (D("NaN"), D("Infinity")):
        with pytest.raises(ModelError, match="not a finite number"):
            mes.round_price(bad)


_MASTER = InstrumentMaster(calendar=CAL, today=lambda: TODAY)
#: Instruments on one uniform tick grid.
INSTRUMENTS = [_MASTER.resolve(root) for root in _MASTER.roots] + [
    _MASTER.resolve("AAPL"),
    _MASTER.resolve("SPY   261218C00600000"),  # penny at every price
]
#: Instruments whose tick depends on the price (penny program, nickel/dime, futures options).
TABLE_INSTRUMENTS = [
    _MASTER.resolve("AAPL  261218C00200000"),
    _MASTER.resolve("XYZ   261218P00050000"),
    _MASTER.resolve("MESZ6 C6800"),
]
prices = st.decimals(min_value=-100_000, max_value=100_000, places=4, allow_nan=False, allow_infinity=False)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(INSTRUMENTS), prices, st.sampled_from(["nearest", "down", "up"]))
def test_law_rounded_price_is_on_tick_idempotent_and_close(inst: Instrument, price: Decimal, mode: str) -> None:
    r = inst.round_price(price, mode)  # type: ignore[arg-type]
    tick = inst.tick_size
    assert inst.is_on_tick(r)
    assert inst.round_price(r, mode) == r  # type: ignore[arg-type]
    assert inst.round_price(r, "reject") == r
    if mode == "nearest":
        assert abs(r - price) <= tick / 2
    elif mode == "down":
        assert r <= price < r + tick
    else:
        assert r - tick < price <= r


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(INSTRUMENTS), prices)
def test_law_reject_raises_exactly_when_off_tick(inst: Instrument, price: Decimal) -> None:
    on_tick = (price / inst.tick_size) % 1 == 0
    if on_tick:
        assert inst.round_price(price, "reject") == price
    else:
        with pytest.raises(ModelError, match="off the tick grid"):
            inst.round_price(price, "reject")


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(INSTRUMENTS), st.integers(-1_000_000, 1_000_000))
def test_law_whole_ticks_are_untouched_in_every_mode(inst: Instrument, n: int) -> None:
    price = n * inst.tick_size
    for mode in ("nearest", "down", "up", "reject"):
        assert inst.round_price(price, mode) == price  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(INSTRUMENTS), prices)
def test_law_down_and_up_bracket_the_price(inst: Instrument, price: Decimal) -> None:
    down, up = inst.round_price(price, "down"), inst.round_price(price, "up")
    assume(down != up)
    assert up - down == inst.tick_size
    assert inst.round_price(price) in (down, up)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(TABLE_INSTRUMENTS), st.decimals(min_value=0, max_value=50, places=4))
def test_law_tick_tables_round_onto_the_band_grid(inst: Instrument, price: Decimal) -> None:
    down, up, near = (inst.round_price(price, m) for m in ("down", "up", "nearest"))  # type: ignore[arg-type]
    for r in (down, up, near):
        assert inst.is_on_tick(r)
        assert inst.round_price(r, "reject") == r
    assert down <= price <= up
    assert near in (down, up)
    assert up - down <= inst.tick_at(price)
    if inst.is_on_tick(price):
        assert inst.round_price(price, "reject") == price
    else:
        with pytest.raises(ModelError, match="off the tick grid"):
            inst.round_price(price, "reject")


def test_option_tick_tables_by_class() -> None:
    penny = _MASTER.resolve("AAPL  261218C00200000")
    nickel = _MASTER.resolve("XYZ   261218P00050000")
    assert (penny.tick_at(Decimal("2.99")), penny.tick_at(Decimal("3.00"))) == (Decimal("0.01"), Decimal("0.05"))
    assert (nickel.tick_at(Decimal("2.95")), nickel.tick_at(Decimal("3.00"))) == (Decimal("0.05"), Decimal("0.10"))
    assert penny.is_on_tick(Decimal("2.97")) and not penny.is_on_tick(Decimal("3.07"))
    with pytest.raises(ModelError, match=r"tick size 0.10"):
        nickel.round_price(Decimal("3.15"), "reject")
    fut = _MASTER.resolve("MESZ6 C6800")
    assert fut.underlying == "MESZ6" and fut.point_value == 5 and fut.tick_at(Decimal("4.95")) == Decimal("0.05")
    assert fut.tick_at(Decimal("5.00")) == Decimal("0.25")

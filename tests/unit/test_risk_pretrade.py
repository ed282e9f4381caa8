"""Pre-trade checks on hand-built contexts: each rule, its plain-words reason, and exits always pass."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from tterm.core.instruments import InstrumentMaster
from tterm.core.models import (
    Account,
    Bracket,
    Order,
    OrderRequest,
    OrderRole,
    OrderSource,
    OrderStatus,
    OrderType,
    Position,
    Quote,
    RiskAction,
    Side,
)
from tterm.core.router import CheckContext
from tterm.risk.news import load_calendar
from tterm.risk.pretrade import (
    CutoffCheck,
    FatFingerCheck,
    FlattenInProgressCheck,
    GuardView,
    HedgingCheck,
    NewsCheck,
    RiskReadyCheck,
    RiskView,
    StaleDataCheck,
    TierCheck,
    WorstCaseCheck,
    YoursCheck,
    entry_price,
    opening_quantity,
    risk_checks,
    worst_case,
)
from tterm.risk.profiles import NewsAction, NewsRule, load_profiles
from tterm.risk.settings import RiskSettings

D = Decimal
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 09:00 CT
MASTER = InstrumentMaster(today=lambda: date(2026, 11, 24))
MES = MASTER.resolve("MES")
ES = MASTER.resolve("ES")
PROFILES = load_profiles(user=False)
ACCOUNT = Account(id="paper:FUT50K", broker="paper", vendor_id="FUT50K", name="50K", profile="topstep-50k-combine")
SETTINGS = RiskSettings()


def view(**kw: object) -> RiskView:
    base: dict[str, object] = dict(
        account=ACCOUNT.id,
        profile=PROFILES.get("topstep-50k-combine"),
        floor=D(48000),
        floor_distance=D(2000),
        buffer=D(200),
        daily_loss_limit=D(1000),
        dll_distance=D(1000),
        dll_buffer=D(100),
        contracts_max=5,
        cutoff_at=datetime(2026, 11, 24, 21, 10, tzinfo=UTC),
        flatten_at=datetime(2026, 11, 24, 21, 8, tzinfo=UTC),
        window_end=datetime(2026, 11, 24, 23, 0, tzinfo=UTC),
    )
    base.update(kw)
    return RiskView(**base)  # type: ignore[arg-type]


def ctx(
    *,
    side: Side = Side.BUY,
    qty: int = 1,
    symbol: str | None = None,
    order_type: OrderType = OrderType.MARKET,
    limit: str | None = None,
    stop: str | None = None,
    bracket: Bracket | None = None,
    held: int = 0,
    others: tuple[Position, ...] = (),
    orders: tuple[Order, ...] = (),
    quote_age: float = 1.0,
    quote: bool = True,
    reduce_only: bool = False,
    now: datetime = NOW,
) -> CheckContext:
    inst = MASTER.resolve(symbol) if symbol else MES
    req = OrderRequest(
        account=ACCOUNT.id,
        symbol=inst.symbol,
        side=side,
        quantity=qty,
        order_type=order_type,
        limit_price=D(limit) if limit else None,
        stop_price=D(stop) if stop else None,
        bracket=bracket,
        source=OrderSource.TICKET,
        reduce_only=reduce_only,
    )
    q = (
        Quote(inst.symbol, bid=D("6800.00"), ask=D("6800.25"), last=D("6800.00"), ts=now - timedelta(seconds=quote_age))
        if quote
        else None
    )
    pos = Position(ACCOUNT.id, inst.symbol, held, avg_price=D("6800") if held else D(0))
    return CheckContext(
        request=req,
        account=ACCOUNT,
        instrument=inst,
        quote=q,
        position=pos,
        positions=(pos, *others) if held else others,
        open_orders=orders,
        lock=None,
        now=now,
    )


def run(check: object, c: CheckContext):
    return check.check(c)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- arithmetic


def test_opening_quantity_counts_only_new_exposure() -> None:
    assert opening_quantity(ctx(qty=3)) == 3
    assert opening_quantity(ctx(qty=3, held=2)) == 3
    assert opening_quantity(ctx(side=Side.SELL, qty=1, held=2)) == 0
    assert opening_quantity(ctx(side=Side.SELL, qty=5, held=2)) == 3  # reverses through zero
    assert opening_quantity(ctx(side=Side.SELL, qty=2, held=2, reduce_only=True)) == 0


def test_worst_case_with_a_stop_and_without() -> None:
    fee = MES.fee_per_side
    c = ctx(qty=2, order_type=OrderType.LIMIT, limit="6799.00", bracket=Bracket(stop_loss_ticks=8))
    worst, how = worst_case(c, SETTINGS)
    assert worst == 8 * D("1.25") * 2 + fee * 4
    assert "stop 8 ticks" in how
    c = ctx(qty=2, order_type=OrderType.LIMIT, limit="6799.00", bracket=Bracket(stop_loss_price=D("6797.00")))
    assert worst_case(c, SETTINGS)[0] == 8 * D("1.25") * 2 + fee * 4
    c = ctx(qty=1, order_type=OrderType.LIMIT, limit="6799.00")
    worst, how = worst_case(c, SETTINGS)
    assert worst == 40 * D("1.25") + fee * 2 and "no stop: 40 ticks" in how
    tuned = RiskSettings(instruments={"mes": {"no_stop_adverse_ticks": 100}})
    assert worst_case(c, tuned)[0] == 100 * D("1.25") + fee * 2


def test_market_order_counts_the_spread_to_its_fill() -> None:
    c = ctx(qty=1, bracket=Bracket(stop_loss_ticks=4))
    assert entry_price(c) == D("6800.25")
    worst, _ = worst_case(c, SETTINGS)
    assert worst == 5 * D("1.25") + MES.fee_per_side * 2  # 4-tick stop + 1 tick from the mark to the ask


# --------------------------------------------------------------------------- worst case vs floor / DLL


def test_worst_case_crossing_the_floor_is_rejected_in_plain_words() -> None:
    check = WorstCaseCheck(lambda a: view(floor_distance=D(300), dll_distance=D(1000)), SETTINGS)
    d = run(check, ctx(qty=3, order_type=OrderType.LIMIT, limit="6799.00", bracket=Bracket(stop_loss_ticks=80)))
    assert d.action is RiskAction.REJECT and d.check == "floor"
    assert "crosses the Topstep floor $48,000.00" in d.reason and "only $300.00 is left" in d.reason
    assert d.worst_case == 80 * D("1.25") * 3 + MES.fee_per_side * 6


def test_worst_case_crossing_the_dll_is_rejected() -> None:
    check = WorstCaseCheck(lambda a: view(dll_distance=D(50)), SETTINGS)
    d = run(check, ctx(qty=1, order_type=OrderType.LIMIT, limit="6799.00"))  # worst case $51.24
    assert d.action is RiskAction.REJECT and d.check == "dll"
    assert "daily loss limit -$1,000.00" in d.reason and "only $50.00 is left today" in d.reason
    check = WorstCaseCheck(lambda a: view(dll_distance=D(150)), SETTINGS)
    d = run(check, ctx(qty=1, order_type=OrderType.LIMIT, limit="6799.00"))
    assert d.action is RiskAction.WARN and "daily-loss flatten level" in d.reason


def test_worst_case_inside_the_buffer_is_a_warning() -> None:
    check = WorstCaseCheck(lambda a: view(floor_distance=D(240)), SETTINGS)
    d = run(check, ctx(qty=1, order_type=OrderType.LIMIT, limit="6799.00"))
    assert d.action is RiskAction.WARN and "tterm's flatten level" in d.reason


def test_worst_case_allows_and_reports_the_number() -> None:
    check = WorstCaseCheck(lambda a: view(), SETTINGS)
    d = run(check, ctx(qty=1, order_type=OrderType.LIMIT, limit="6799.00", bracket=Bracket(stop_loss_ticks=8)))
    assert d.action is RiskAction.ALLOW and d.worst_case == 10 + MES.fee_per_side * 2


def test_exits_always_pass_every_check() -> None:
    v = view(floor_distance=D(1), dll_distance=D(1), contracts_max=1, enforcing="breach")
    late = datetime(2026, 11, 24, 21, 9, tzinfo=UTC)
    c = ctx(side=Side.SELL, qty=2, held=2, quote=False, now=late)
    for check in risk_checks(lambda a: v, SETTINGS, MASTER):
        d = run(check, c)
        assert d is None or d.allowed, check


def test_accounts_without_a_profile_skip_the_firm_checks() -> None:
    c = ctx(qty=3)
    none = lambda a: None  # noqa: E731
    for check in (WorstCaseCheck(none, SETTINGS), TierCheck(none, MASTER), CutoffCheck(none)):
        assert run(check, c) is None


# --------------------------------------------------------------------------- tier


def test_tier_counts_the_position_working_entries_and_other_products() -> None:
    check = TierCheck(lambda a: view(contracts_max=5), MASTER)
    assert run(check, ctx(qty=5)) is None
    d = run(check, ctx(qty=6))
    assert d.action is RiskAction.REJECT and "bring paper:FUT50K to 6 contracts" in d.reason
    assert "tier allows 5 (a micro counts as 1)" in d.reason
    d = run(check, ctx(qty=2, held=4))
    assert d is not None and "6 contracts" in d.reason
    working = Order(
        "o1", "c1", ACCOUNT.id, MES.symbol, Side.BUY, 3, OrderType.LIMIT, OrderStatus.WORKING, limit_price=D("6790")
    )
    assert run(check, ctx(qty=3, orders=(working,))) is not None
    stop_child = replace(working, role=OrderRole.STOP_LOSS, side=Side.SELL)
    assert run(check, ctx(qty=3, orders=(stop_child,))) is None
    es_pos = Position(ACCOUNT.id, ES.symbol, -2)
    assert run(check, ctx(qty=4, others=(es_pos,))) is not None


def test_topstepx_tier_counts_ten_micros_as_one() -> None:
    pv = view(profile=PROFILES.get("topstep-50k-combine-topstepx"), contracts_max=5)
    check = TierCheck(lambda a: pv, MASTER)
    es_pos = Position(ACCOUNT.id, ES.symbol, 4)
    assert run(check, ctx(qty=10, others=(es_pos,))) is None  # 4 ES + 10 MES = 5
    d = run(check, ctx(qty=11, others=(es_pos,)))
    assert d is not None and "5.1 contracts" in d.reason and "10 micros count as 1" in d.reason


# --------------------------------------------------------------------------- cutoff, lock, stale, fat finger


def test_cutoff_window_refuses_new_exposure_until_the_next_open() -> None:
    check = CutoffCheck(lambda a: view())
    assert run(check, ctx(now=datetime(2026, 11, 24, 21, 7, 59, tzinfo=UTC))) is None
    d = run(check, ctx(now=datetime(2026, 11, 24, 21, 8, tzinfo=UTC)))
    assert d.action is RiskAction.REJECT
    assert "flat by 15:10 CT" in d.reason and "flattens from 15:08 CT" in d.reason
    assert run(check, ctx(now=datetime(2026, 11, 24, 23, 0, tzinfo=UTC))) is None


def test_flatten_in_progress_blocks_new_exposure() -> None:
    d = run(FlattenInProgressCheck(lambda a: view(enforcing="day P&L reached the DLL")), ctx())
    assert d.action is RiskAction.REJECT and "day P&L reached the DLL" in d.reason


def test_stale_and_missing_market_data() -> None:
    check = StaleDataCheck(SETTINGS)
    assert run(check, ctx(quote_age=5)) is None
    d = run(check, ctx(quote_age=45))
    assert d.action is RiskAction.REJECT and "stale (last quote 45s ago, limit 30s)" in d.reason
    d = run(check, ctx(quote=False))
    assert "no market data for MESZ6" in d.reason
    assert run(StaleDataCheck(RiskSettings(stale_after_seconds=0)), ctx(quote_age=999)) is None


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        (dict(qty=51), "size 51 is above the maximum of 50 for MES"),
        (dict(order_type=OrderType.LIMIT, limit="6400.00"), "limit price 6400.00 is 400.00"),
        (dict(order_type=OrderType.STOP, stop="7200.00"), "stop price 7200.00"),
    ],
)
def test_fat_fingers_are_refused(kw: dict, needle: str) -> None:
    d = run(FatFingerCheck(SETTINGS), ctx(**kw))
    assert d is not None and d.action is RiskAction.REJECT and needle in d.reason, d


def test_fat_finger_limits_per_instrument() -> None:
    s = RiskSettings(instruments={"MES": {"max_distance_ticks": 20, "max_size": 3}})
    assert run(FatFingerCheck(s), ctx(order_type=OrderType.LIMIT, limit="6795.00")) is None
    d = run(FatFingerCheck(s), ctx(order_type=OrderType.LIMIT, limit="6794.75"))
    assert d is not None and "21 ticks" in d.reason
    assert run(FatFingerCheck(s), ctx(qty=4)) is not None
    assert run(FatFingerCheck(SETTINGS), ctx(order_type=OrderType.LIMIT, limit="6700.00")) is None


def test_a_profile_account_without_limits_yet_takes_no_new_exposure() -> None:
    d = run(RiskReadyCheck(lambda a: None), ctx())
    assert d.action is RiskAction.REJECT and "not loaded yet" in d.reason
    assert run(RiskReadyCheck(lambda a: view()), ctx()) is None
    assert run(RiskReadyCheck(lambda a: None), ctx(side=Side.SELL, held=1)) is None  # an exit
    plain = replace(ctx(), account=replace(ACCOUNT, profile=""))
    assert run(RiskReadyCheck(lambda a: None), plain) is None


# --------------------------------------------------------------------------- news, hedging and yours

CT_NOW = datetime(2026, 1, 13, 13, 27, tzinfo=UTC)  # 07:27 CT, three minutes before January's CPI


def guard(**kw: object) -> GuardView:
    return GuardView(account=ACCOUNT.id, **kw)  # type: ignore[arg-type]


def test_an_entry_inside_a_news_window_is_refused_and_exits_pass() -> None:
    calendar = load_calendar(user=False)
    rule = NewsRule(rule=NewsAction.NO_ENTRIES, before_minutes=5, after_minutes=5)
    check = NewsCheck(lambda a: guard(news=((rule, "yours"),)), lambda: calendar)
    d = run(check, ctx(now=CT_NOW))
    assert d is not None and d.action is RiskAction.REJECT and d.check == "news"
    assert d.reason.startswith("inside a news window: CPI at 07:30 CT: your news rule covers 07:25-07:35 CT")
    assert run(check, ctx(now=CT_NOW, held=2, side=Side.SELL)) is None  # an exit
    assert run(check, ctx(now=CT_NOW + timedelta(minutes=8))) is None  # 07:35: the window is over
    firm = NewsRule(rule=NewsAction.FLATTEN, before_minutes=1, after_minutes=1)
    check = NewsCheck(lambda a: guard(news=((firm, "Take Profit Trader"),)), lambda: calendar)
    d = run(check, ctx(now=CT_NOW + timedelta(minutes=2, seconds=30)))
    assert (
        d is not None and "the Take Profit Trader news rule covers 07:29-07:31 CT" in d.reason and "be flat" in d.reason
    )
    warn = NewsRule(rule=NewsAction.WARN, before_minutes=5, after_minutes=5)
    d = run(NewsCheck(lambda a: guard(news=((warn, "yours"),)), lambda: calendar), ctx(now=CT_NOW))
    assert d is not None and d.action is RiskAction.WARN and "(warning only)" in d.reason


def test_an_opposite_position_across_two_accounts_is_refused() -> None:
    other = Position("tradovate:TV1", MES.symbol, 2, avg_price=D("6800"))
    held_es = Position(ACCOUNT.id, ES.symbol, -1, avg_price=D("6800"))
    guards = {ACCOUNT.id: guard(no_hedging="the Apex Trader Funding rules"), "tradovate:TV1": guard()}
    book = [other]
    check = HedgingCheck(guards.get, lambda: book, MASTER)
    d = run(check, ctx(side=Side.SELL, qty=1))  # short MES here while tradovate:TV1 is long MES
    assert d is not None and d.check == "hedging"
    assert d.reason.startswith("hedging: tradovate:TV1 is long 2 MESZ6 and this order would make paper:FUT50K short ES")
    assert "the Apex Trader Funding rules forbid" in d.reason
    assert run(check, ctx(side=Side.BUY, qty=1)) is None  # the same side is no hedge
    # A mini and a micro are one product: short ES here against long MES there is refused too.
    assert run(check, ctx(side=Side.SELL, symbol="ES")) is not None
    # The rule of the OTHER account counts as well: nobody here forbids it, but TV1's firm does.
    guards = {ACCOUNT.id: guard(), "tradovate:TV1": guard(no_hedging="your settings")}
    check = HedgingCheck(guards.get, lambda: book, MASTER)
    d = run(check, ctx(side=Side.SELL))
    assert d is not None and "your settings forbid" in d.reason
    # Nobody forbids it: it passes. Within one account, long ES and short MES is a hedge too.
    assert run(HedgingCheck({}.get, lambda: book, MASTER), ctx(side=Side.SELL)) is None
    guards = {ACCOUNT.id: guard(no_hedging="your settings")}
    d = run(HedgingCheck(guards.get, lambda: [held_es], MASTER), ctx(side=Side.BUY, others=(held_es,)))
    assert d is not None and d.reason.startswith("hedging: this account is short 1 ESZ6")
    # Exits always pass, and reversing the order's own position is not a hedge.
    assert run(check, ctx(side=Side.SELL, held=1)) is None


def test_your_trades_per_day_count_the_exit_an_entry_will_need() -> None:
    check = YoursCheck(lambda a: guard(trades=8, max_trades=10), SETTINGS)
    assert run(check, ctx()) is None  # 8 + entry + exit = 10
    d = run(YoursCheck(lambda a: guard(trades=9, max_trades=10), SETTINGS), ctx())
    assert d is not None and d.check == "yours_trades"
    assert "9 used, this order and the exit it will need would make 11; exits still pass" in d.reason
    assert run(YoursCheck(lambda a: guard(trades=9, max_trades=10), SETTINGS), ctx(held=1)) is None  # an add
    assert run(YoursCheck(lambda a: guard(trades=10, max_trades=10), SETTINGS), ctx(held=1, side=Side.SELL)) is None


def test_your_most_per_trade_and_your_contract_cap() -> None:
    check = YoursCheck(lambda a: guard(max_loss_per_trade=D(100)), SETTINGS)
    d = run(check, ctx(qty=2))  # no stop: 40 ticks x 2 x $1.25 = $100 + fees
    assert d is not None and d.check == "yours_trade_loss" and "more than your $100.00 a trade" in d.reason
    assert run(check, ctx(qty=2, bracket=Bracket(stop_loss_ticks=16))) is None
    d = run(YoursCheck(lambda a: guard(max_contracts=3), SETTINGS), ctx(qty=2, held=2))
    assert d is not None and d.check == "yours_size" and "4 lots; your cap is 3" in d.reason


def test_risk_checks_include_the_round_two_checks_when_wired() -> None:
    names = [c.name for c in risk_checks(lambda a: None, SETTINGS, MASTER)]
    assert "news" not in names and "hedging" not in names
    names = [
        c.name
        for c in risk_checks(
            lambda a: None,
            SETTINGS,
            MASTER,
            guards=lambda a: None,
            calendar=lambda: load_calendar(user=False),
            positions=list,
        )
    ]
    assert names.index("news") < names.index("stale") and {"hedging", "yours"} <= set(names)

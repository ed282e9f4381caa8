"""The live monitor on the engine and the paper broker, with an injected clock.

Levels, meters, the end-of-day snapshot, the cutoff across DST, restarts, tightening, and the two
engine-level laws: a refused order never reaches a broker, and a breached account ends flat and
locked.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tterm.brokers.paper.broker import PaperBroker
from tterm.brokers.paper.ledger import PaperAccountSpec
from tterm.core.clock import CmeClock, default_calendar
from tterm.core.engine import Engine
from tterm.core.instruments import InstrumentMaster
from tterm.core.journal import Journal
from tterm.core.models import (
    AccountKind,
    Bracket,
    Order,
    OrderRequest,
    OrderSource,
    OrderStatus,
    OrderType,
    Quote,
    RiskStatus,
    Side,
)
from tterm.risk.monitor import RiskError, RiskMonitor
from tterm.risk.profiles import load_profiles
from tterm.risk.settings import RiskSettings

D = Decimal
FUT = "paper:FUT50K"
PROFILES = load_profiles(user=False)
D50K = D(50000)


class Harness:
    """Engine + scripted paper broker + monitor on a clock the test moves."""

    def __init__(
        self,
        root: Path | None,
        *,
        at: datetime,
        profile: str = "topstep-50k-combine",
        balance: D = D50K,
        risk: RiskSettings | None = None,
    ) -> None:
        self.now = at
        self.clock = CmeClock(default_calendar(), now=lambda: self.now)
        self.master = InstrumentMaster(calendar=self.clock.calendar, today=lambda: self.clock.trade_date())
        self.broker = PaperBroker(
            "paper",
            accounts=[
                PaperAccountSpec(id="FUT50K", name="50K", kind=AccountKind.FUTURES, balance=balance, profile=profile)
            ],
            instruments=self.master,
            clock=self.clock,
            seed=3,
            store_path=root / "paper.sqlite3" if root else None,
            scripted=True,
        )
        self.journal = Journal(root / "journal.sqlite3" if root else ":memory:", clock=lambda: self.now)
        self.engine = Engine(brokers=[self.broker], instruments=self.master, journal=self.journal, clock=self.clock)
        self.monitor = RiskMonitor(self.engine, profiles=PROFILES, settings=risk or RiskSettings()).attach()
        self.sub = self.engine.events()

    async def start(self, symbol: str = "MES1!", price: str = "6800.00") -> Harness:
        await self.engine.start()
        await self.engine.watch([symbol])
        await self.price(price, symbol)
        return self

    async def price(self, px: str, symbol: str = "MES1!") -> None:
        p = D(px)
        tick = self.master.resolve(symbol).tick_size
        await self.broker.push_quote(Quote(symbol=symbol, bid=p, ask=p + tick, last=p, ts=self.now))
        await self.settle()

    async def settle(self) -> None:
        await self.engine.settle()
        await self.monitor.settle()
        await self.engine.settle()

    async def at(self, when: datetime) -> None:
        self.now = when
        self.monitor.tick()
        await self.settle()

    async def order(self, **kw: object) -> Order:
        base: dict[str, object] = dict(
            account=FUT, symbol="MES1!", side=Side.BUY, quantity=1, source=OrderSource.TICKET
        )
        base.update(kw)
        order = await self.engine.place(OrderRequest(**base))  # type: ignore[arg-type]
        await self.settle()
        return order

    def status(self) -> RiskStatus:
        s = self.monitor.status(FUT)
        assert s is not None
        return s

    async def stop(self) -> None:
        await self.monitor.close()
        await self.engine.stop()
        self.journal.close()


def ct(y: int, m: int, d: int, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    from tterm.core.clock import CT

    return datetime(y, m, d, hh, mm, ss, tzinfo=CT).astimezone(UTC)


TUE = ct(2026, 11, 24, 9)


@pytest.fixture
async def h(tmp_path: Path):
    harness = await Harness(tmp_path, at=TUE).start()
    yield harness
    await harness.stop()


# --------------------------------------------------------------------------- meters


async def test_meter_shows_every_distance(h: Harness) -> None:
    s = h.status()
    assert (s.profile, s.balance, s.floor, s.floor_distance) == ("topstep-50k-combine", D(50000), D(48000), D(2000))
    assert s.daily_loss_limit == D(1000) and s.dll_distance == D(1000) and s.contracts_max == 5
    assert s.flatten_level == D(48200) and s.band == "ok"
    # Topstep: flat by 15:10 CT, but its own system liquidates at 15:08; tterm goes 2 minutes before that.
    assert s.cutoff == ct(2026, 11, 24, 15, 8) and s.flatten_at == ct(2026, 11, 24, 15, 6)
    await h.order(quantity=2)
    await h.price("6790.00")
    s = h.status()
    fees = h.master.resolve("MES1!").fee_per_side * 4  # in and out, 2 lots
    assert s.equity == D(50000) - D("10.25") * 5 * 2 - fees / 2  # 10.25 points on 2 MES; entry fees paid
    assert s.contracts_used == D(2) and s.ticks_symbol.startswith("MES")
    # Ticks to the floor for the 2-lot position: $ left / ($1.25 x 2), in whole ticks (never rounded up).
    assert s.floor_ticks == (s.floor_distance / D("2.50")).to_integral_value(rounding=ROUND_FLOOR)
    assert s.floor_ticks == s.floor_ticks.to_integral_value()
    assert s.floor_used_pct is not None and s.floor_used_pct > 0
    # The monitor also refreshed what the pre-trade checks read.
    v = h.monitor.view(FUT)
    assert v is not None and v.floor_distance < D(2000) and v.contracts_max == 5


async def test_meter_bands_warn_and_danger(h: Harness) -> None:
    await h.order(quantity=5)
    await h.price("6780.00")  # about -$510: 51% of the DLL
    assert h.status().band == "warn"
    await h.price("6770.00")  # about -$760: 76%
    assert h.status().band == "danger"
    assert not h.status().locked


async def test_accounts_without_a_profile_get_a_plain_meter(tmp_path: Path) -> None:
    hh = await Harness(tmp_path, at=TUE, profile="").start()
    try:
        s = hh.status()
        assert s.profile == "" and s.floor is None and s.detail == "no rule profile"
        await hh.order(quantity=60)  # fat-finger size check applies to every account
        assert hh.journal.entries(kind="risk_decision")[-1].data["check"] == "fat_finger"
    finally:
        await hh.stop()


async def test_an_unknown_profile_is_reported(tmp_path: Path) -> None:
    hh = await Harness(tmp_path, at=TUE, profile="topstep-50k-combin").start()
    try:
        await hh.settle()
        texts = [e.data["text"] for e in hh.journal.entries(kind="notice") if "text" in e.data]
        assert any("did you mean topstep-50k-combine" in t for t in texts)
        assert hh.status().detail == "unknown rule profile"
    finally:
        await hh.stop()


# --------------------------------------------------------------------------- levels over days


async def test_topstep_day_one_at_50500_moves_the_floor_at_the_close(h: Harness) -> None:
    await h.order(quantity=4)
    await h.price("6825.25")  # +25 points x $5 x 4 = +$500 open
    await h.order(side=Side.SELL, quantity=4)
    bal = h.status().balance
    assert h.status().floor == D(48000)  # EOD model: nothing moves during the day
    await h.at(ct(2026, 11, 24, 16, 0))  # the session close: the end-of-day snapshot
    assert h.status().floor == bal - D(2000)
    assert h.monitor.tracker(FUT).state.eod_date == date(2026, 11, 24)  # type: ignore[union-attr]
    await h.at(ct(2026, 11, 24, 17, 0, 1))  # next trade date
    s = h.status()
    assert s.day_pnl == 0 and s.balance == bal and s.floor == bal - D(2000)


async def test_xfa_tier_applies_from_the_next_session(tmp_path: Path) -> None:
    hh = await Harness(tmp_path, at=TUE, profile="topstep-50k-xfa", balance=D(1)).start()
    try:
        # Paper balances must be positive; the XFA convention starts at $0, so 1 cent of slack.
        assert hh.status().contracts_max == 2
        await hh.order(quantity=2)
        await hh.price("6960.00")  # +$1,600 on 2 MES
        await hh.order(side=Side.SELL, quantity=2)
        await hh.order(quantity=3)
        assert hh.journal.entries(kind="risk_decision")[-1].data["check"] == "tier"
        await hh.at(ct(2026, 11, 24, 16, 0))
        assert hh.status().contracts_max == 2
        await hh.at(ct(2026, 11, 24, 17, 0, 5))
        await hh.price("6960.00")
        assert hh.status().contracts_max == 3
        order = await hh.order(quantity=3)
        assert order.status is OrderStatus.FILLED
    finally:
        await hh.stop()


async def test_restart_changes_nothing(tmp_path: Path) -> None:
    hh = await Harness(tmp_path, at=TUE, profile="apex-legacy-50k-pa").start()
    await hh.order(quantity=5)
    await hh.price("6835.00")  # equity peak +$868.75 (5 MES x 34.75 pts x $5) less fees
    before = hh.status()
    await hh.price("6810.00")
    assert hh.status().floor == before.floor and before.floor > D(47500)
    await hh.stop()

    again = await Harness(tmp_path, at=TUE + timedelta(minutes=5), profile="apex-legacy-50k-pa").start(price="6810.00")
    try:
        s = again.status()
        assert s.floor == before.floor and s.high_water_mark == before.high_water_mark
        assert s.balance == hh.status().balance
        tr = again.monitor.tracker(FUT)
        assert tr is not None and tr.state.sod_balance == D(50000)
    finally:
        await again.stop()


async def test_tighten_only_tightens(h: Harness) -> None:
    h.monitor.tighten(FUT, daily_loss=D(400))
    await h.settle()
    # Your daily loss shows as "yours" beside the firm's DLL, which does not change.
    assert h.status().yours_daily_loss == D(400) and h.status().daily_loss_limit == D(1000)
    assert h.status().yours_dll_line == D(-400)
    with pytest.raises(RiskError, match="looser than \\$400 in force today"):
        h.monitor.tighten(FUT, daily_loss=D(900))
    with pytest.raises(RiskError, match="max contracts 9 is looser than 5"):
        h.monitor.tighten(FUT, max_contracts=9)
    h.monitor.tighten(FUT, max_contracts=2)
    await h.settle()
    assert h.status().contracts_max == 2
    order = await h.order(quantity=3)
    assert order.status is OrderStatus.REJECTED and "tier allows 2" in order.reject_reason
    # The next session starts from the config again.
    await h.at(ct(2026, 11, 24, 17, 0, 1))
    assert h.status().yours_daily_loss is None and h.status().contracts_max == 5


async def test_a_looser_config_after_a_restart_waits_for_the_next_session(tmp_path: Path) -> None:
    hh = await Harness(tmp_path, at=TUE, risk=RiskSettings(buffer_pct=D(25))).start()
    assert hh.status().flatten_level == D(48500)
    await hh.stop()
    again = await Harness(tmp_path, at=TUE + timedelta(minutes=1), risk=RiskSettings(buffer_pct=D(5))).start()
    try:
        assert again.status().flatten_level == D(48500)
        texts = [e.data.get("text", "") for e in again.journal.entries(kind="notice")]
        assert any("looser values apply from the next session" in t for t in texts)
        await again.at(ct(2026, 11, 24, 17, 0, 1))
        assert again.status().flatten_level == D(48100)
    finally:
        await again.stop()


# --------------------------------------------------------------------------- cutoff across DST


@pytest.mark.parametrize(
    ("day", "utc_flatten"),
    [
        (date(2026, 3, 6), datetime(2026, 3, 6, 21, 6, tzinfo=UTC)),  # CST: 15:06 CT = 21:06 UTC
        (date(2026, 3, 9), datetime(2026, 3, 9, 20, 6, tzinfo=UTC)),  # first CDT day: 20:06 UTC
        (date(2026, 11, 2), datetime(2026, 11, 2, 21, 6, tzinfo=UTC)),  # first CST day after fall back
    ],
)
async def test_cutoff_flattens_two_minutes_before_topsteps_15_08_ct_flatten_across_dst(
    tmp_path: Path, day: date, utc_flatten: datetime
) -> None:
    hh = await Harness(tmp_path, at=ct(day.year, day.month, day.day, 14, 0)).start()
    try:
        await hh.order(quantity=2)
        await hh.order(order_type=OrderType.LIMIT, limit_price=D("6790.00"))
        await hh.at(utc_flatten - timedelta(seconds=1))
        assert hh.engine.book.open_positions(FUT) and not hh.status().locked
        assert hh.status().flatten_at == utc_flatten
        await hh.at(utc_flatten)
        assert hh.engine.book.open_positions(FUT) == []
        assert hh.engine.open_orders(FUT) == []
        assert hh.status().locked
        reason = hh.status().lock_reason
        assert "flat-by cutoff: Topstep flattens open positions by 15:08 CT" in reason and "at 15:06 CT" in reason
        late = await hh.order(quantity=1)
        assert late.status is OrderStatus.REJECTED
    finally:
        await hh.stop()


async def test_cutoff_without_positions_does_not_lock_but_refuses_new_entries(h: Harness) -> None:
    await h.at(ct(2026, 11, 24, 15, 9))
    assert not h.status().locked
    order = await h.order(quantity=1)
    assert order.status is OrderStatus.REJECTED and "inside the cutoff window" in order.reject_reason
    await h.at(ct(2026, 11, 24, 17, 0, 1))
    await h.price("6800.00")
    assert (await h.order(quantity=1)).status is OrderStatus.FILLED


# --------------------------------------------------------------------------- laws on the engine

ORDERS = st.fixed_dictionaries(
    {
        "side": st.sampled_from([Side.BUY, Side.SELL]),
        "quantity": st.sampled_from([1, 1, 2, 3, 4, 60]),
        "kind": st.sampled_from(["market", "market", "limit", "limit", "stop", "far_limit"]),
        "stop_ticks": st.one_of(st.none(), st.integers(min_value=1, max_value=2000)),
        "reduce_only": st.booleans(),
    }
)


def _request(o: dict, price: D) -> OrderRequest:
    kw: dict[str, object] = {}
    if o["kind"] == "limit":
        kw = {"order_type": OrderType.LIMIT, "limit_price": price - D("2.00") * o["side"].sign}
    elif o["kind"] == "far_limit":
        kw = {"order_type": OrderType.LIMIT, "limit_price": price * D("0.9")}
    elif o["kind"] == "stop":
        kw = {"order_type": OrderType.STOP, "stop_price": price + D("3.00") * o["side"].sign}
    bracket = Bracket(stop_loss_ticks=o["stop_ticks"]) if o["stop_ticks"] and not o["reduce_only"] else None
    return OrderRequest(
        account=FUT,
        symbol="MES1!",
        side=o["side"],
        quantity=o["quantity"],
        bracket=bracket,
        reduce_only=o["reduce_only"],
        source=OrderSource.WEBHOOK,
        **kw,  # type: ignore[arg-type]
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(orders=st.lists(ORDERS, min_size=1, max_size=6), loss=st.integers(min_value=0, max_value=40))
def test_law_an_order_rejected_by_pretrade_never_reaches_a_broker(orders: list[dict], loss: int) -> None:
    async def scenario() -> None:
        hh = await Harness(None, at=TUE).start()
        try:
            await hh.order(quantity=3)
            await hh.price(str(D("6800.00") - loss))  # start from a random drawdown
            for o in orders:
                order = await hh.engine.place(_request(o, D("6800.00") - loss))
                await hh.settle()
                decision = hh.journal.entries(kind="risk_decision", ref=order.client_order_id)[-1].data
                at_broker = await hh.broker.find_order(FUT, order.client_order_id)
                if decision["action"] == "reject":
                    assert order.status is OrderStatus.REJECTED and order.order_id.startswith("local-")
                    assert at_broker is None
                    assert not [x for x in await hh.broker.orders(FUT) if x.client_order_id == order.client_order_id]
                else:
                    assert at_broker is not None
        finally:
            await hh.stop()

    asyncio.run(scenario())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    qty=st.integers(min_value=1, max_value=5),
    moves=st.lists(st.integers(min_value=-80, max_value=30), min_size=2, max_size=10),
    profile=st.sampled_from(["topstep-50k-combine", "apex-legacy-50k-pa", "tradeday-50k-intraday", "tpt-50k-pro"]),
)
def test_law_after_a_breach_the_account_is_flat_and_locked(qty: int, moves: list[int], profile: str) -> None:
    async def scenario() -> None:
        hh = await Harness(None, at=TUE, profile=profile).start()
        try:
            await hh.order(quantity=qty)
            price = D("6800.00")
            for m in moves:
                price += D(m)
                await hh.price(str(price))
            breached = [
                e for e in hh.journal.entries(kind="notice", account=FUT) if e.data.get("event") == "auto_flatten"
            ]
            if breached:
                assert hh.engine.book.open_positions(FUT) == []
                assert hh.engine.open_orders(FUT) == []
                lock = hh.engine.lock_for(FUT)
                assert lock is not None and lock.locked and lock.by == "risk"
                again = await hh.order(quantity=1)
                assert again.status is OrderStatus.REJECTED
            else:
                assert not hh.status().locked
                assert hh.status().band != "breached"
        finally:
            await hh.stop()

    asyncio.run(scenario())


async def test_no_limits_are_guessed_before_the_brokers_first_balance() -> None:
    from tterm.core.models import Account, AccountSnapshot

    clock = CmeClock(default_calendar(), now=lambda: TUE)
    master = InstrumentMaster(calendar=clock.calendar, today=lambda: clock.trade_date())
    engine = Engine(brokers=[], instruments=master, journal=Journal(":memory:"), clock=clock)
    monitor = RiskMonitor(engine, profiles=PROFILES).attach()
    engine._add_account(Account(id="x:1", broker="x", vendor_id="1", name="1", profile="topstep-50k-xfa"))
    assert monitor.evaluate("x:1") is None and monitor.view("x:1") is None
    engine.ingest(AccountSnapshot("x:1", balance=D(1750), equity=D(1750), start_of_day_balance=D(1700)))
    monitor.flush()
    view = monitor.view("x:1")
    assert view is not None and view.contracts_max == 3  # the tier of a $1,700 end-of-day balance
    status = monitor.status("x:1")
    assert status is not None and status.balance == D(1700) and status.floor == D(-300)


async def test_modifying_a_full_size_working_order_is_not_counted_twice(h: Harness) -> None:
    working = await h.order(quantity=5, order_type=OrderType.LIMIT, limit_price=D("6790.00"))
    assert working.status is OrderStatus.WORKING
    moved = await h.engine.modify(FUT, working.order_id, limit_price=D("6791.00"))
    assert moved.limit_price == D("6791.00")
    extra = await h.order(quantity=1, order_type=OrderType.LIMIT, limit_price=D("6780.00"))
    assert extra.status is OrderStatus.REJECTED and "tier allows 5" in extra.reject_reason


async def test_a_monitor_fault_is_journaled_and_never_stops_the_event(h: Harness, monkeypatch) -> None:
    def boom(*a: object, **k: object) -> None:
        raise RuntimeError("simulated fault")

    monkeypatch.setattr(h.monitor, "evaluate", boom)
    sub = h.engine.events()
    await h.price("6801.00")
    await h.order(quantity=1)
    assert any(isinstance(e, Quote) for e in sub.drain())
    errors = h.journal.entries(kind="error")
    assert errors and "simulated fault" in errors[-1].data["error"]


async def test_only_events_that_can_move_an_account_re_evaluate_it(h: Harness) -> None:
    """A quote at the same mark, an update of an order that stays open, and a balance report for
    a tracked account change no figure, so they do not re-run the evaluation; a new mark, a new
    or finished order and a fill do. The timer's tick still evaluates a quiet account."""
    calls: list[str] = []
    real = h.monitor.evaluate

    def counting(account: str, now: datetime | None = None):  # type: ignore[no-untyped-def]
        calls.append(account)
        return real(account, now)

    h.monitor.evaluate = counting  # type: ignore[method-assign]
    await h.order(quantity=1)  # held from here on
    assert calls, "a new order and its fill are evaluated"
    sym = h.master.resolve("MES1!").symbol
    p = D("6801.00")
    calls.clear()
    h.engine.ingest(Quote(symbol=sym, bid=p, ask=p + D("0.25"), last=p, ts=h.now))
    assert calls == [FUT]  # a new mark
    equity = h.status().equity
    calls.clear()
    h.engine.ingest(Quote(symbol=sym, bid=p - D("0.25"), ask=p + D("0.5"), last=p, bid_size=9, ts=h.now))
    h.engine.ingest(Quote(symbol=sym, bid=None, ask=None, last=None, ts=h.now))
    h.engine.ingest(Quote(symbol=sym, bid=p, ask=p + D("0.25"), last=p, ts=h.now))
    assert calls == []  # the same mark, no mark at all, the same mark again
    limit = await h.order(quantity=1, order_type=OrderType.LIMIT, limit_price=D("6790.00"))
    assert limit.status is OrderStatus.WORKING, limit.reject_reason
    assert calls == [FUT]  # a new open order: exposure changed
    calls.clear()
    h.engine.ingest(limit.evolve(status=OrderStatus.WORKING, updated_at=h.now + timedelta(seconds=1)))
    snap = h.engine.balance(FUT)
    assert snap is not None
    h.engine.ingest(snap)
    assert calls == []  # still open; a tracked account's balance report
    await h.engine.cancel(FUT, limit.order_id)
    await h.settle()
    assert calls == [FUT]  # the order ended
    calls.clear()
    await h.at(h.now + timedelta(seconds=1))
    assert FUT in calls and h.status().equity == equity  # the timer's tick, on a quiet market

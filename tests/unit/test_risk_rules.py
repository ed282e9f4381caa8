"""Floor, high-water mark, lock, DLL and tier math, from the reference's worked examples, plus laws."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tterm.core.instruments import InstrumentMaster
from tterm.core.models import Position
from tterm.risk.profiles import ProfileIncomplete, load_profiles
from tterm.risk.rules import RiskTracker, TrackerState, contracts_in_use, floor_for, lock_level, tier_max

PROFILES = load_profiles(user=False)
#: The shipped profiles plus examples/risk/profiles.toml (it gives mffu-50k-funded its amount).
WITH_EXAMPLES = load_profiles(user=Path(__file__).resolve().parents[2] / "examples" / "risk")
ENFORCEABLE = [p for p in WITH_EXAMPLES.ids() if WITH_EXAMPLES.get(p).enforceable]
D = Decimal
DAY1, DAY2, DAY3 = date(2026, 3, 5), date(2026, 3, 6), date(2026, 3, 9)


def tracker(pid: str, **kw: object) -> RiskTracker:
    """A tracker on the shipped profile (or, for one the shipped set cannot enforce, the example's)."""
    profile = PROFILES.get(pid)
    if not profile.enforceable:
        profile = WITH_EXAMPLES.get(pid)
    return RiskTracker(profile, **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- worked examples


def test_topstep_50k_day_one_at_50500_moves_the_mll_to_48500() -> None:
    """Reference A.1: finish day 1 at $50,500 and the MLL becomes $48,500; it never moves back."""
    t = tracker("topstep-50k-combine")
    t.start_day(DAY1, D(50000))
    assert t.state.floor == D(48000)
    # An intraday run-up does not move an EOD floor.
    a = t.update(D(50000), D(51200))
    assert a.floor == D(48000) and not a.floor_moved
    a = t.update(D(50500), D(50500))
    assert a.floor == D(48000)
    assert t.end_of_day(DAY1, D(50500))
    assert t.state.floor == D(48500)
    t.start_day(DAY2, D(50500))
    t.update(D(49800), D(49800))
    t.end_of_day(DAY2, D(49800))
    assert t.state.floor == D(48500)  # never back down


def test_topstep_mll_locks_at_the_starting_balance() -> None:
    t = tracker("topstep-50k-combine")
    t.start_day(DAY1, D(50000))
    t.end_of_day(DAY1, D(53100))
    assert t.state.floor == D(50000) and t.floor_locked
    t.start_day(DAY2, D(53100))
    t.end_of_day(DAY2, D(55000))
    assert t.state.floor == D(50000)


def test_legacy_apex_equity_peak_moves_the_floor_even_if_the_trade_closes_lower() -> None:
    """Reference A.2: 50K, $2,500 threshold; equity touching $50,875 puts the floor at $48,375."""
    t = tracker("apex-legacy-50k-pa")
    t.start_day(DAY1, D(50000))
    a = t.update(D(50000), D(50875))
    assert a.floor == D(48375) and a.floor_moved
    a = t.update(D(50200), D(50200))  # the trade closes lower
    assert a.floor == D(48375)
    assert a.floor_distance == D(1825)


def test_apex_pa_floor_locks_at_start_plus_100() -> None:
    """Reference A.2: the floor stops at start + $100 ($50,100), reached when the peak is $52,600."""
    t = tracker("apex-legacy-50k-pa")
    t.start_day(DAY1, D(50000))
    t.update(D(50000), D(52599))
    assert t.state.floor == D(50099)
    t.update(D(50000), D(52600))
    assert t.state.floor == D(50100) and t.floor_locked
    t.update(D(53500), D(54000))
    assert t.state.floor == D(50100)
    assert lock_level(WITH_EXAMPLES.get("mffu-50k-funded")) == D(50100)


def test_mffu_funded_eod_floor_locks_at_start_plus_100() -> None:
    # The reference gives the funded model and lock but no drawdown amount: the shipped profile
    # refuses to be enforced, and names the fix; the example user profile gives the amount.
    with pytest.raises(ProfileIncomplete, match=r'extends = "mffu-50k-funded" and drawdown.amount'):
        RiskTracker(PROFILES.get("mffu-50k-funded"))
    t = tracker("mffu-50k-funded")
    t.start_day(DAY1, D(50000))
    t.end_of_day(DAY1, D(52500))
    assert t.state.floor == D(50100)


def test_tradeday_100k_intraday_peak_of_101000_moves_the_drawdown_to_98000() -> None:
    """Reference A.3: a peak of $101,000 moves the maximum drawdown to $98,000 even if the day ends flat."""
    t = tracker("tradeday-100k-intraday")
    t.start_day(DAY1, D(100000))
    assert t.state.floor == D(97000)
    t.update(D(100000), D(101000))
    a = t.update(D(100000), D(100000))  # the day ends flat
    t.end_of_day(DAY1, D(100000))
    assert a.floor == D(98000) and t.state.floor == D(98000)
    # The EOD variant of the same account would not have moved.
    e = tracker("tradeday-100k-eod")
    e.start_day(DAY1, D(100000))
    e.update(D(100000), D(101000))
    e.end_of_day(DAY1, D(100000))
    assert e.state.floor == D(97000)
    # Static never moves.
    s = tracker("tradeday-100k-static")
    s.start_day(DAY1, D(100000))
    s.update(D(100000), D(104000))
    s.end_of_day(DAY1, D(104000))
    assert s.state.floor == D(97000)


def test_trailing_floor_stops_at_the_starting_balance_for_tradeday() -> None:
    t = tracker("tradeday-100k-intraday")
    t.update(D(100000), D(104500))
    assert t.state.floor == D(100000)


def test_xfa_scaling_tiers_apply_from_the_next_session() -> None:
    """Reference A.1: 50K XFA, 2 lots until +$1,500, 3 lots to +$2,000, 5 above; never intraday."""
    t = tracker("topstep-50k-xfa")
    assert t.state.floor == D(-2000) and t.contracts_max == 2
    t.start_day(DAY1, D(0))
    t.update(D(1700), D(1700))
    assert t.contracts_max == 2  # a new tier never unlocks during the day
    t.end_of_day(DAY1, D(1700))
    assert t.contracts_max == 2
    t.start_day(DAY2, D(1700))
    assert t.contracts_max == 3
    t.end_of_day(DAY2, D(2100))
    t.start_day(DAY3, D(2100))
    assert t.contracts_max == 5
    # The XFA floor trails up to $0 and locks there.
    assert t.state.floor == D(0)


def test_xfa_tiers_for_larger_sizes() -> None:
    p100 = PROFILES.get("topstep-100k-xfa")
    assert [tier_max(p100, D(v)) for v in (0, 1499, 1500, 2000, 3000, -500)] == [3, 3, 4, 5, 10, 3]
    p150 = PROFILES.get("topstep-150k-xfa")
    assert [tier_max(p150, D(v)) for v in (0, 4499, 4500)] == [3, 10, 15]
    assert tier_max(PROFILES.get("topstep-50k-combine"), D(99999)) == 5


def test_apex_pa_half_contracts_until_the_plus_100_point() -> None:
    p = PROFILES.get("apex-legacy-50k-pa")
    assert tier_max(p, D(52599)) == 5 and tier_max(p, D(52600)) == 10


def test_missed_end_of_day_is_caught_up_at_the_next_start() -> None:
    t = tracker("topstep-50k-combine")
    t.start_day(DAY1, D(50000))
    # tterm was off at the close; the next day starts at the balance day 1 ended with.
    t.start_day(DAY2, D(50700))
    assert t.state.floor == D(48700) and t.state.day_pnls[DAY1] == D(700)


def test_dll_and_buffers() -> None:
    t = tracker("topstep-50k-combine")
    t.start_day(DAY1, D(50000))
    a = t.update(D(50000), D(49150))
    assert a.dll == D(1000) and a.dll_distance == D(150) and a.dll_trigger == D(-900)
    assert a.dll_used_pct == D("85.0") and a.band == "danger"
    assert [b.key for b in a.breaches] == []
    a = t.update(D(50000), D(49100))
    assert [b.key for b in a.breaches] == ["dll_buffer"]
    a = t.update(D(50000), D(49000))
    assert [b.key for b in a.breaches] == ["dll"] and a.band == "breached"


def test_floor_buffer_is_ten_percent_of_the_allowance_and_counts_exit_fees() -> None:
    t = tracker("apex-legacy-50k-pa")  # no DLL, so only the floor speaks
    t.start_day(DAY1, D(50000))
    a = t.update(D(50000), D(47760))
    assert a.floor == D(47500) and a.floor_trigger == D(47750) and a.breaches == ()
    a = t.update(D(50000), D(47760), exit_fees=D("12.40"))
    assert [b.key for b in a.breaches] == ["floor_buffer"]
    assert "47,747.60" in a.breaches[0].text and "47,750.00" in a.breaches[0].text
    a = t.update(D(50000), D(47500))
    assert [b.key for b in a.breaches] == ["floor"] and a.band == "breached"


def test_personal_daily_loss_only_tightens() -> None:
    t = tracker("topstep-50k-combine", daily_loss_override=D(500))
    assert t.daily_loss_limit == D(500)
    t = tracker("topstep-50k-combine", daily_loss_override=D(5000))
    assert t.daily_loss_limit == D(1000)
    t = tracker("topstep-50k-combine-topstepx", daily_loss_override=D(700))
    assert t.daily_loss_limit == D(700)


def test_warning_bands() -> None:
    t = tracker("apex-legacy-50k-pa", warn_pct=D(40), danger_pct=D(70))
    t.start_day(DAY1, D(50000))
    assert t.update(D(50000), D(49100)).band == "ok"  # 36% of 2,500 used
    assert t.update(D(50000), D(48900)).band == "warn"  # 44%
    assert t.update(D(50000), D(48200)).band == "danger"  # 72%


def test_contracts_in_use_by_ratio() -> None:
    master = InstrumentMaster()
    es, mes = master.resolve("ES"), master.resolve("MES")
    positions = [Position("a", es.symbol, 4), Position("a", mes.symbol, -10), Position("a", "X", 0)]
    x = PROFILES.get("topstep-50k-combine-topstepx")
    assert contracts_in_use(x, positions, master) == D(5)  # 4 ES + 10 MES, the reference's example
    other = PROFILES.get("topstep-50k-combine")
    assert contracts_in_use(other, positions, master) == D(14)


def test_consistency_measures_the_best_day() -> None:
    t = tracker("mffu-50k-eval")  # 50% of the $3,000 target
    t.start_day(DAY1, D(50000))
    t.end_of_day(DAY1, D(51200))
    t.start_day(DAY2, D(51200))
    assert t.consistency() == (D("40.0"), D(50))
    assert t.consistency(today_pnl=D(1800)) == (D("60.0"), D(50))


def test_state_round_trips_through_json() -> None:
    t = tracker("topstep-50k-xfa")
    t.start_day(DAY1, D(0))
    t.update(D(300), D(350))
    t.end_of_day(DAY1, D(300))
    again = TrackerState.from_json(t.state.to_json())
    assert again == t.state


def test_bad_knobs_are_refused() -> None:
    with pytest.raises(ValueError, match="buffer"):
        tracker("topstep-50k-combine", buffer_pct=D(100))
    with pytest.raises(ValueError, match="warning bands"):
        tracker("topstep-50k-combine", warn_pct=D(80), danger_pct=D(70))


# --------------------------------------------------------------------------- laws

TRAILING = [p for p in ENFORCEABLE if WITH_EXAMPLES.get(p).trailing]
amounts = st.decimals(min_value=-5000, max_value=8000, places=2, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(
    pid=st.sampled_from(ENFORCEABLE),
    steps=st.lists(st.tuples(st.sampled_from(["tick", "eod"]), amounts, amounts), min_size=1, max_size=40),
)
def test_law_a_floor_never_moves_down_and_never_passes_its_lock(pid: str, steps: list) -> None:
    profile = WITH_EXAMPLES.get(pid)
    t = RiskTracker(profile)
    start = profile.start
    cap = lock_level(profile)
    day = date(2026, 1, 5)
    t.start_day(day, start)
    last = t.state.floor
    for kind, realized, open_pnl in steps:
        balance = start + realized
        if kind == "tick":
            t.update(balance, balance + open_pnl)
        else:
            t.end_of_day(day, balance)
            day = date.fromordinal(day.toordinal() + 1)
            t.start_day(day, balance)
        assert t.state.floor >= last
        if cap is not None and profile.trailing:
            assert t.state.floor <= max(cap, start - profile.drawdown.amount)
        if not profile.trailing:
            assert t.state.floor == start - profile.drawdown.amount
        last = t.state.floor
    assert floor_for(profile, t.state.high_water_mark) <= t.state.floor

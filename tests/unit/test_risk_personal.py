"""Your own limits: a fixed and a trailing daily loss, the profit lock-in, trades per day (entries
and exits both count) and the most per trade; the config keys and their errors."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from pydantic import ValidationError

from tterm.risk.personal import PersonalLimits, PersonalState, PersonalTracker
from tterm.risk.settings import AccountRiskSettings, RiskSettings

D = Decimal
DAY = date(2026, 11, 24)


def tracker(**kw: object) -> PersonalTracker:
    t = PersonalTracker(PersonalLimits.from_settings(AccountRiskSettings(**kw)))  # type: ignore[arg-type]
    t.start_day(DAY)
    return t


def test_a_fixed_daily_loss_acts_at_the_line() -> None:
    t = tracker(daily_loss=D(500))
    a = t.update(D(-499), D(0))
    assert a.dll_line == D(-500) and a.dll_distance == D(1) and a.breaches == ()
    a = t.update(D(-500), D(0))
    assert [b.rule for b in a.breaches] == ["yours_dll"] and a.breaches[0].locks
    assert "reached your daily loss limit $500.00 (line -$500.00)" in a.breaches[0].text


def test_a_trailing_daily_loss_follows_the_days_best_pnl_up() -> None:
    """TopstepX-style trailing personal DLL of $500 on unrealized gains: the line starts at -$500,
    rises with the day's best P&L (open profit included), and never comes back down."""
    t = tracker(daily_loss=D(500), daily_loss_mode="trailing")
    assert t.update(D(-200), D(0)).dll_line == D(-500)  # no gain yet: the line is -$500
    assert t.update(D(300), D(0)).dll_line == D(-200)  # +$300 open: the line is at -$200
    a = t.update(D(800), D(0))
    assert a.dll_line == D(300) and a.dll_distance == D(500)  # +$800 best: the line locks in +$300
    a = t.update(D(350), D(350))
    assert a.dll_line == D(300) and a.breaches == ()  # gave back to +$350: still above
    a = t.update(D(300), D(300))
    assert [b.rule for b in a.breaches] == ["yours_dll"]
    assert "trailing daily loss $500.00 below the day's best $800.00" in a.breaches[0].text
    # A new day starts the trail again.
    t.start_day(date(2026, 11, 25))
    assert t.update(D(0), D(0)).dll_line == D(-500)


def test_a_trailing_daily_loss_on_realized_gains_ignores_open_peaks() -> None:
    t = tracker(daily_loss=D(500), daily_loss_mode="trailing", daily_loss_trails="realized")
    assert t.update(D(900), D(0)).dll_line == D(-500)  # an open +$900 does not move it
    assert t.update(D(400), D(400)).dll_line == D(-100)  # +$400 closed does


def test_do_nothing_warns_and_liquidate_does_not_lock() -> None:
    t = tracker(daily_loss=D(300), daily_loss_action="nothing")
    a = t.update(D(-350), D(-350))
    assert a.breaches == () and a.warnings and "daily loss limit $300.00" in a.warnings[0]
    t = tracker(daily_loss=D(300), daily_loss_action="liquidate")
    (b,) = t.update(D(-300), D(-300)).breaches
    assert t.action_for(b) == "liquidate"


def test_profit_lock_in_arms_at_the_target_and_keeps_the_floor() -> None:
    t = tracker(profit_lock_at=D(900), profit_lock_keep=D(500))
    assert t.update(D(600), D(0)).lock_line is None  # not armed yet: a dip to $500 is fine
    assert t.update(D(500), D(0)).breaches == ()
    a = t.update(D(950), D(0))
    assert a.lock_line == D(500) and a.breaches == ()
    (b,) = t.update(D(500), D(500)).breaches
    assert b.rule == "yours_profit_lock" and t.action_for(b) == "liquidate_block"
    assert "fell to your profit lock-in $500.00 (armed at $900.00)" in b.text
    # keep defaults to the target itself: reaching it stops the day
    t = tracker(profit_lock_at=D(1000))
    assert [x.rule for x in t.update(D(1000), D(1000)).breaches] == ["yours_profit_lock"]


def test_trades_per_day_count_entries_and_exits_once_per_order() -> None:
    t = tracker(max_trades_per_day=10)
    assert t.count("o1", opened=True, reduced=False) == 1
    assert t.count("o1", opened=True, reduced=False) == 1  # a second partial fill of the same entry
    assert t.count("o2", opened=False, reduced=True) == 2  # a partial exit counts
    assert t.count("o3", opened=False, reduced=True) == 3  # ... and so does the next one
    assert t.count("o4", opened=True, reduced=True) == 5  # a reversal: an exit and an entry
    assert t.update(D(0), D(0)).trades == 5
    saved = PersonalState.from_json(t.state.to_json())
    assert saved.trades == 5 and "o4:entry" in saved.counted  # survives a restart
    t.start_day(date(2026, 11, 25))
    assert t.state.trades == 0


def test_the_most_per_trade_flattens_that_position_only() -> None:
    t = tracker(max_loss_per_trade=D(250))
    a = t.update(D(-300), D(-40), positions=[("MESZ6", D(-260)), ("MNQZ6", D(-40))])
    (b,) = a.breaches
    assert b.rule == "yours_trade_loss" and b.symbol == "MESZ6" and not b.locks
    assert t.action_for(b) == "position" and "your most per trade is -$250.00" in b.text


def test_limits_only_tighten_within_a_day() -> None:
    a = PersonalLimits.from_settings(AccountRiskSettings(daily_loss=D(600), max_trades_per_day=12))
    b = PersonalLimits.from_settings(
        AccountRiskSettings(daily_loss=D(900), daily_loss_mode="trailing", max_trades_per_day=8, profit_lock_at=D(700))
    )
    t = a.tighter(b)
    assert (t.daily_loss, t.trailing, t.max_trades, t.profit_lock_at) == (D(600), True, 8, D(700))
    assert "daily loss $600.00 (trailing unrealized, liquidate & block)" in t.describe()


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"daily_loss_mode": "trailing"}, "need a daily_loss amount"),
        ({"daily_loss": 500, "daily_loss_mode": "sideways"}, "Input should be 'fixed' or 'trailing'"),
        ({"daily_loss": -5}, "greater than 0"),
        ({"profit_lock_keep": 100}, "profit_lock_keep needs profit_lock_at"),
        ({"profit_lock_at": 500, "profit_lock_keep": 900}, "must not be above profit_lock_at"),
        ({"max_trades_per_day": 0}, "greater than 0"),
        ({"news": {"rule": "no_entries"}}, "needs before_minutes or after_minutes"),
        ({"max_loss_pre_trade": 100}, "Extra inputs are not permitted"),
    ],
)
def test_bad_personal_limits_say_which_key(kw: dict, needle: str) -> None:
    with pytest.raises(ValidationError) as info:
        RiskSettings(accounts={"paper:FUT50K": kw})
    assert needle in str(info.value) and "paper:FUT50K" in str(info.value)

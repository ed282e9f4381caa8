"""The RiskStatus the risk meters draw, built from one account's assessment.

Pure functions of the monitor's figures (no engine state is changed here): the firm's lines in
dollars, in ticks of the largest position and as a share of the allowance, the detail line
(model, lock, target, consistency, tterm's flatten), and the "yours" and news fields from
:class:`~tterm.risk.guard.Guards`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from tterm.core.instruments import InstrumentMaster
from tterm.core.models import AccountLock, RiskStatus
from tterm.risk.profiles import Profile
from tterm.risk.rules import Assessment, RiskTracker, fmt_money, money

ZERO = Decimal(0)
_MODEL = {
    "eod": "EOD trailing",
    "intraday_equity": "intraday trailing (equity)",
    "intraday_realized": "intraday trailing (realized)",
    "static": "static",
}


def firm_status(
    account: str,
    profile: Profile,
    tracker: RiskTracker,
    x: Assessment,
    *,
    instruments: InstrumentMaster,
    lock: AccountLock | None,
    positions: list[Any],
    last_symbol: str,
    used: Decimal,
    contracts_max: int | None,
    cutoff_at: datetime | None,
    flatten_at: datetime | None,
    enforcing: str,
    now: datetime,
    yours: dict[str, Any],
) -> RiskStatus:
    """The meter of an account with a firm profile."""
    floor_ticks = dll_ticks = None
    ticks_symbol = ""
    per_tick = None
    if positions:
        lots = []
        for p in positions:
            inst = instruments.resolve(p.symbol)
            lots.append((abs(p.quantity) * inst.tick_value, p.symbol))
        per_tick, ticks_symbol = max(lots)
    elif last_symbol:
        per_tick = instruments.resolve(last_symbol).tick_value
        ticks_symbol = last_symbol
    if per_tick:
        # Whole ticks: the price moves a tick at a time, so 1971.5 ticks of room is 1971 ticks.
        floor_ticks = (x.floor_distance / per_tick).to_integral_value(rounding=ROUND_FLOOR)
        if x.dll_distance is not None:
            dll_ticks = (x.dll_distance / per_tick).to_integral_value(rounding=ROUND_FLOOR)
    return RiskStatus(
        account=account,
        profile=profile.id,
        balance=money(x.balance),
        equity=money(x.equity),
        day_pnl=money(x.day_pnl),
        floor=money(x.floor),
        floor_distance=money(x.floor_distance),
        drawdown_allowance=profile.drawdown.amount,
        daily_loss_limit=x.dll,
        dll_distance=None if x.dll_distance is None else money(x.dll_distance),
        high_water_mark=money(x.high_water_mark),
        contracts_used=used.normalize(),
        contracts_max=contracts_max,
        cutoff=cutoff_at,
        locked=bool(lock and lock.locked),
        lock_reason=lock.reason if lock else "",
        band=x.band,
        detail=detail(profile, tracker, x, enforcing),
        ts=now,
        floor_ticks=floor_ticks,
        dll_ticks=dll_ticks,
        ticks_symbol=ticks_symbol,
        floor_used_pct=x.floor_used_pct,
        dll_used_pct=x.dll_used_pct,
        flatten_level=money(x.floor_trigger),
        flatten_at=flatten_at,
        **yours,
    )


def detail(p: Profile, t: RiskTracker, x: Assessment, enforcing: str = "") -> str:
    """``Topstep ... · EOD trailing · locks at $50,000.00 · target $3,000.00: 12%``."""
    parts = [p.title, _MODEL[p.drawdown.model.value]]
    cap = t.lock_level
    if t.floor_locked and p.trailing:
        parts.append("floor locked")
    elif cap is not None:
        parts.append(f"locks at {fmt_money(cap)}")
    if p.profit_target is not None:
        made = x.balance - t.state.start_balance
        parts.append(f"target {fmt_money(p.profit_target)}: {max(made, ZERO) / p.profit_target * 100:.0f}%")
    cons = t.consistency(today_pnl=x.day_pnl)
    if cons is not None:
        best, limit = cons
        flag = " over" if best > limit else ""
        parts.append(f"best day {best}% (limit {limit.normalize():f}%{flag})")
    if enforcing:
        parts.append(f"flattened by tterm: {enforcing}")
    return " · ".join(parts)


def status_sig(s: RiskStatus) -> tuple[Any, ...]:
    """What a meter shows: a status with the same signature is not published again."""
    return (
        s.balance,
        s.equity,
        s.floor,
        s.floor_distance,
        s.dll_distance,
        s.contracts_used,
        s.contracts_max,
        s.locked,
        s.lock_reason,
        s.band,
        s.detail,
        s.cutoff,
        s.profile,
        s.yours_dll_distance,
        s.yours_dll_line,
        s.yours_daily_loss,
        s.yours_profit_lock,
        s.trades_today,
        s.trades_max,
        s.news_at,
        s.news_rule,
    )

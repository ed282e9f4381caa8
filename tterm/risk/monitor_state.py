"""The risk monitor's state per account, and how it survives a restart.

The journal's state table holds, under ``risk.monitor.<account>``, the tracker (high-water mark,
floor, start-of-day balance, tier, the day's P&Ls), tterm's margins in force today (which only
tighten within a day) and the day's enforcement, so a restart changes nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from tterm.risk.profiles import Profile
from tterm.risk.rules import RiskTracker, TrackerState
from tterm.risk.settings import RiskSettings

ZERO = Decimal(0)
STATE_KEY = "risk.monitor.{account}"
#: How often the closest-approach figure is persisted while it keeps improving.
SAVE_EVERY = timedelta(seconds=5)


@dataclass(slots=True)
class DayLimits:
    """tterm's own margins in force for one trade date; within a day they only ever tighten."""

    trade_date: date
    buffer_pct: Decimal
    cutoff_lead: Decimal  # minutes
    max_contracts: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "trade_date": self.trade_date.isoformat(),
            "buffer_pct": str(self.buffer_pct),
            "cutoff_lead": str(self.cutoff_lead),
            "max_contracts": self.max_contracts,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DayLimits:
        # (Before round two a personal "daily_loss" was kept here; it now lives with Guards.)
        return cls(
            trade_date=date.fromisoformat(d["trade_date"]),
            buffer_pct=Decimal(d["buffer_pct"]),
            cutoff_lead=Decimal(d["cutoff_lead"]),
            max_contracts=d.get("max_contracts"),
        )


def tighter_min(a: Decimal | int | None, b: Decimal | int | None) -> Any:
    """The tighter of two optional caps (None means no cap)."""
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


@dataclass(slots=True)
class TrackedAccount:
    """The monitor's running state for one account."""

    id: str
    profile: Profile
    tracker: RiskTracker
    limits: DayLimits | None = None
    realized_base: Decimal = ZERO
    evaluated: bool = False
    enforcing: str = ""
    enforce_rule: str = ""
    enforce_date: date | None = None
    enforced_at: datetime | None = None
    task: asyncio.Task[None] | None = None
    last_symbol: str = ""
    last_status: tuple[Any, ...] | None = None
    saved_sig: tuple[Any, ...] | None = None
    saved_at: datetime | None = None
    notices: set[str] = field(default_factory=set)

    def _sig(self) -> tuple[Any, ...]:
        st = self.tracker.state
        return (
            st.high_water_mark,
            st.floor,
            st.trade_date,
            st.sod_balance,
            st.eod_date,
            st.tier_balance,
            st.pending_tier_balance,
            len(st.day_pnls),
            self.enforcing,
            self.enforce_date,
            None if self.limits is None else tuple(self.limits.to_json().values()),
        )

    def due(self, now: datetime) -> bool:
        """Whether the state changed since it was saved (or the closest approach improved a while ago)."""
        if self._sig() != self.saved_sig:
            return True
        if self.saved_at is not None and now - self.saved_at < SAVE_EVERY:
            return False
        st = self.tracker.state
        return st.closest_at is not None and (self.saved_at is None or st.closest_at > self.saved_at)

    def saved(self, now: datetime) -> None:
        self.saved_sig = self._sig()
        self.saved_at = now

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile.id,
            "tracker": self.tracker.state.to_json(),
            "limits": self.limits.to_json() if self.limits else None,
            "enforce": {
                "reason": self.enforcing,
                "rule": self.enforce_rule,
                "trade_date": self.enforce_date.isoformat() if self.enforce_date else None,
                "at": self.enforced_at.isoformat() if self.enforced_at else None,
            }
            if self.enforcing
            else None,
        }


def restore(
    account_id: str,
    profile: Profile,
    saved: dict[str, Any],
    broker_sod: Decimal | None,
    settings: RiskSettings,
) -> tuple[TrackedAccount, bool]:
    """The account as saved (same profile), else fresh from the broker's balance; True if fresh."""
    state: TrackerState | None = None
    limits: DayLimits | None = None
    if saved.get("profile") == profile.id and saved.get("tracker"):
        state = TrackerState.from_json(saved["tracker"])
        if saved.get("limits"):
            limits = DayLimits.from_json(saved["limits"])
    fresh = state is None
    if state is None:
        state = TrackerState.fresh(profile, broker_sod)
    tracker = RiskTracker(
        profile, state, buffer_pct=settings.buffer_pct, warn_pct=settings.warn_pct, danger_pct=settings.danger_pct
    )
    seeds = settings.accounts.get(account_id)
    if seeds is not None:
        tracker.raise_floor(floor=seeds.floor, high_water_mark=seeds.high_water_mark)
    a = TrackedAccount(id=account_id, profile=profile, tracker=tracker, limits=limits)
    enforce = saved.get("enforce") if not fresh else None
    if enforce:
        a.enforcing = enforce.get("reason", "")
        a.enforce_rule = enforce.get("rule", "")
        a.enforce_date = date.fromisoformat(enforce["trade_date"]) if enforce.get("trade_date") else None
        a.enforced_at = datetime.fromisoformat(enforce["at"]) if enforce.get("at") else None
    return a, fresh

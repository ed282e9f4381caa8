"""The pure math of prop-firm rules: floors, high-water marks, locks, daily limits, tiers.

Nothing here reads a clock, the network or the engine. The live monitor and the replay both drive
a :class:`RiskTracker` with the same three calls, so a replayed day and a live day agree:

- :meth:`RiskTracker.start_day` when a trade date begins (daily P&L resets, a new contract tier
  applies, a missed end-of-day snapshot is caught up);
- :meth:`RiskTracker.end_of_day` at the profile's snapshot time (the ``eod`` level moves; the tier
  for the next session is taken);
- :meth:`RiskTracker.update` on every tick: intraday levels move, then every breach is checked
  against equity net of fees.

Two laws hold for every model and are property-tested: the floor never moves down, and it never
passes its lock level.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from tterm.core.models import Instrument, Position
from tterm.risk.profiles import ConsistencyBase, DllAction, DrawdownModel, LockRule, Profile, ProfileIncomplete

ZERO = Decimal(0)
HUNDRED = Decimal(100)
CENT = Decimal("0.01")

Band = Literal["ok", "warn", "danger", "breached"]


def _d(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT)


def fmt_money(value: Decimal) -> str:
    """``-$1,012.45`` / ``$48,200.00``: money as a trader reads it."""
    v = money(value)
    return f"-${-v:,}" if v < 0 else f"${v:,}"


# --------------------------------------------------------------------------- levels


def allowance_of(profile: Profile) -> Decimal:
    """The profile's drawdown amount; :class:`ProfileIncomplete` when the firm's number is unknown."""
    amount = profile.drawdown.amount
    if amount is None:
        profile.require_enforceable()
        raise ProfileIncomplete(profile.id)  # pragma: no cover - require_enforceable raised
    return amount


def lock_level(profile: Profile) -> Decimal | None:
    """The level a trailing floor stops at, or None when it trails without limit."""
    start = profile.start
    rule = profile.drawdown.lock
    if rule is LockRule.NONE:
        return None
    if rule is LockRule.START:
        return start
    if rule is LockRule.START_PLUS_100:
        return start + 100
    # UNTIL_TARGET: the floor trails until the balance reaches the target, then stays, which is
    # the floor it has when the high-water mark equals start + target.
    assert profile.profit_target is not None  # the profile validator guarantees it
    return start + profile.profit_target - allowance_of(profile)


def floor_for(profile: Profile, high_water_mark: Decimal) -> Decimal:
    """The floor a high-water mark implies (before the never-down rule is applied)."""
    amount = allowance_of(profile)
    if profile.drawdown.model is DrawdownModel.STATIC:
        return profile.start - amount
    raw = high_water_mark - amount
    cap = lock_level(profile)
    return raw if cap is None else min(raw, cap)


def tier_max(profile: Profile, tier_balance: Decimal) -> int | None:
    """Contracts allowed by the scaling ladder for an end-of-day balance (None: no limit known)."""
    c = profile.contracts
    if not c.scaling:
        return c.max
    profit = tier_balance - profile.start
    allowed = c.scaling[0].max
    for step in c.scaling:
        if profit >= step.from_profit:
            allowed = step.max
    return allowed


def contracts_in_use(
    profile: Profile, positions: Iterable[Position], instrument_of: Mapping[str, Instrument] | Any
) -> Decimal:
    """Absolute net contracts across products, micros counted by the profile's ratio.

    ``instrument_of`` maps a symbol to its Instrument (a dict, or anything with ``resolve``).
    """
    used = ZERO
    resolve = instrument_of.resolve if hasattr(instrument_of, "resolve") else instrument_of.__getitem__
    for pos in positions:
        if pos.quantity:
            used += abs(pos.quantity) * profile.contracts.weight(resolve(pos.symbol))
    return used


def band_for(used_pct: Decimal, breached: bool, warn_pct: Decimal, danger_pct: Decimal) -> Band:
    if breached:
        return "breached"
    if used_pct >= danger_pct:
        return "danger"
    if used_pct >= warn_pct:
        return "warn"
    return "ok"


# --------------------------------------------------------------------------- state


@dataclass(slots=True)
class TrackerState:
    """What must survive a restart for one account (stored as JSON in the journal's state table)."""

    start_balance: Decimal
    high_water_mark: Decimal
    floor: Decimal
    tier_balance: Decimal
    trade_date: date | None = None
    sod_balance: Decimal | None = None
    pending_tier_balance: Decimal | None = None
    eod_date: date | None = None
    last_balance: Decimal | None = None
    day_pnls: dict[date, Decimal] = field(default_factory=dict)
    closest: Decimal | None = None
    closest_at: datetime | None = None
    failed: str = ""

    @classmethod
    def fresh(cls, profile: Profile, balance: Decimal | None = None) -> TrackerState:
        """A new account. A first balance above the start raises the high-water mark to it (the
        firm's mark is at least that high; seed the real one if it is higher)."""
        start = profile.start
        hwm = max(start, balance) if balance is not None else start
        return cls(
            start_balance=start,
            high_water_mark=hwm,
            floor=floor_for(profile, hwm),
            tier_balance=balance if balance is not None else start,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "start_balance": str(self.start_balance),
            "high_water_mark": str(self.high_water_mark),
            "floor": str(self.floor),
            "tier_balance": str(self.tier_balance),
            "trade_date": self.trade_date.isoformat() if self.trade_date else None,
            "sod_balance": None if self.sod_balance is None else str(self.sod_balance),
            "pending_tier_balance": None if self.pending_tier_balance is None else str(self.pending_tier_balance),
            "eod_date": self.eod_date.isoformat() if self.eod_date else None,
            "last_balance": None if self.last_balance is None else str(self.last_balance),
            "day_pnls": {d.isoformat(): str(v) for d, v in sorted(self.day_pnls.items())},
            "closest": None if self.closest is None else str(self.closest),
            "closest_at": self.closest_at.isoformat() if self.closest_at else None,
            "failed": self.failed,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrackerState:
        def opt(key: str) -> Decimal | None:
            v = data.get(key)
            return None if v is None else Decimal(v)

        def day(key: str) -> date | None:
            v = data.get(key)
            return None if v is None else date.fromisoformat(v)

        closest_at = data.get("closest_at")
        return cls(
            start_balance=Decimal(data["start_balance"]),
            high_water_mark=Decimal(data["high_water_mark"]),
            floor=Decimal(data["floor"]),
            tier_balance=Decimal(data["tier_balance"]),
            trade_date=day("trade_date"),
            sod_balance=opt("sod_balance"),
            pending_tier_balance=opt("pending_tier_balance"),
            eod_date=day("eod_date"),
            last_balance=opt("last_balance"),
            day_pnls={date.fromisoformat(k): Decimal(v) for k, v in (data.get("day_pnls") or {}).items()},
            closest=opt("closest"),
            closest_at=datetime.fromisoformat(closest_at) if closest_at else None,
            failed=data.get("failed", ""),
        )


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Breach:
    """A line that was touched. ``firm`` True: the firm's own line; False: tterm's buffer ahead of it."""

    rule: Literal["floor", "dll"]
    firm: bool
    level: Decimal
    value: Decimal
    text: str

    @property
    def key(self) -> str:
        return self.rule if self.firm else f"{self.rule}_buffer"


@dataclass(frozen=True, slots=True)
class Assessment:
    """Where one account stands right now against its profile."""

    balance: Decimal
    equity: Decimal
    liquidation: Decimal  # equity less the fees to close every open position
    day_pnl: Decimal  # equity - start-of-day balance (what the firm shows)
    high_water_mark: Decimal
    floor: Decimal
    floor_distance: Decimal  # liquidation - floor
    floor_trigger: Decimal  # tterm flattens at or below this liquidation value
    floor_used_pct: Decimal
    dll: Decimal | None
    dll_distance: Decimal | None  # dll + day P&L net of exit fees
    dll_trigger: Decimal | None  # tterm flattens at or below this day P&L
    dll_used_pct: Decimal | None
    band: Band
    breaches: tuple[Breach, ...] = ()
    floor_moved: bool = False

    @property
    def used_pct(self) -> Decimal:
        return max(self.floor_used_pct, self.dll_used_pct or ZERO)


# --------------------------------------------------------------------------- the tracker


class RiskTracker:
    """One account's floor, high-water mark, daily loss and tier under one profile."""

    def __init__(
        self,
        profile: Profile,
        state: TrackerState | None = None,
        *,
        buffer_pct: Decimal = Decimal(10),
        warn_pct: Decimal = Decimal(40),
        danger_pct: Decimal = Decimal(70),
        daily_loss_override: Decimal | None = None,
    ) -> None:
        if not ZERO <= buffer_pct < HUNDRED:
            raise ValueError(f"buffer must be 0 to <100 % of the allowance, got {buffer_pct}")
        if not ZERO < warn_pct <= danger_pct <= HUNDRED:
            raise ValueError(f"warning bands must satisfy 0 < warn <= danger <= 100, got {warn_pct}/{danger_pct}")
        profile.require_enforceable()
        self.profile = profile
        self.state = state if state is not None else TrackerState.fresh(profile)
        self.buffer_pct = _d(buffer_pct)
        self.warn_pct = _d(warn_pct)
        self.danger_pct = _d(danger_pct)
        self.daily_loss_override = daily_loss_override

    # ------------------------------------------------------------------ derived limits

    @property
    def allowance(self) -> Decimal:
        return allowance_of(self.profile)

    @property
    def buffer(self) -> Decimal:
        """tterm's margin above the firm's floor: a share of the allowance."""
        return money(self.allowance * self.buffer_pct / HUNDRED)

    @property
    def daily_loss_limit(self) -> Decimal | None:
        """The DLL in force: the firm's, or a tighter personal one set for today."""
        firm = self.profile.daily_loss.amount if self.profile.has_dll else None
        personal = self.daily_loss_override
        if firm is None:
            return personal
        if personal is None:
            return firm
        return min(firm, personal)

    @property
    def contracts_max(self) -> int | None:
        return tier_max(self.profile, self.state.tier_balance)

    @property
    def lock_level(self) -> Decimal | None:
        return None if self.profile.drawdown.model is DrawdownModel.STATIC else lock_level(self.profile)

    @property
    def floor_locked(self) -> bool:
        cap = self.lock_level
        return self.profile.drawdown.model is DrawdownModel.STATIC or (cap is not None and self.state.floor >= cap)

    # ------------------------------------------------------------------ level moves

    def _raise_hwm(self, value: Decimal) -> bool:
        """Move the high-water mark (and so the floor) up to ``value``; True if the floor moved."""
        st = self.state
        if value > st.high_water_mark:
            st.high_water_mark = value
        new_floor = max(st.floor, floor_for(self.profile, st.high_water_mark))
        moved = new_floor != st.floor
        st.floor = new_floor
        return moved

    def raise_floor(self, floor: Decimal | None = None, high_water_mark: Decimal | None = None) -> None:
        """Seed the levels from the firm's dashboard; they only ever go up."""
        if high_water_mark is not None:
            self._raise_hwm(_d(high_water_mark))
        if floor is not None:
            self.state.floor = max(self.state.floor, _d(floor))

    def start_day(self, trade_date: date, sod_balance: Decimal) -> bool:
        """Begin ``trade_date`` at ``sod_balance``; False if it had already begun.

        A previous day whose end-of-day snapshot was missed (tterm was not running) is closed
        first at ``sod_balance``, the balance it ended with.
        """
        st = self.state
        if st.trade_date == trade_date:
            return False
        if st.trade_date is not None and st.trade_date < trade_date and st.eod_date != st.trade_date:
            self.end_of_day(st.trade_date, sod_balance)
        if st.pending_tier_balance is not None:
            st.tier_balance = st.pending_tier_balance
            st.pending_tier_balance = None
        st.trade_date = trade_date
        st.sod_balance = sod_balance
        st.last_balance = sod_balance
        return True

    def end_of_day(self, trade_date: date, balance: Decimal) -> bool:
        """The daily snapshot: the ``eod`` level moves, the next session's tier is taken, the
        day's P&L is recorded. Idempotent per trade date; True if the floor moved."""
        st = self.state
        if st.eod_date == trade_date:
            return False
        st.eod_date = trade_date
        moved = False
        if self.profile.drawdown.model in (DrawdownModel.EOD, DrawdownModel.INTRADAY_REALIZED):
            moved = self._raise_hwm(balance)
        st.pending_tier_balance = balance
        if st.sod_balance is not None and st.trade_date == trade_date:
            st.day_pnls[trade_date] = balance - st.sod_balance
        return moved

    # ------------------------------------------------------------------ the tick

    def update(
        self, balance: Decimal, equity: Decimal, *, exit_fees: Decimal = ZERO, at: datetime | None = None
    ) -> Assessment:
        """Move the intraday levels, then measure every distance against equity net of fees."""
        st = self.state
        st.last_balance = balance
        model = self.profile.drawdown.model
        moved = False
        if model is DrawdownModel.INTRADAY_EQUITY:
            moved = self._raise_hwm(max(equity, balance))
        elif model is DrawdownModel.INTRADAY_REALIZED:
            moved = self._raise_hwm(balance)
        liquidation = equity - exit_fees
        sod = st.sod_balance if st.sod_balance is not None else st.start_balance
        day_pnl = equity - sod
        day_net = liquidation - sod
        breaches: list[Breach] = []

        floor = st.floor
        distance = liquidation - floor
        trigger = floor + self.buffer
        used = self._used(self.allowance - distance, self.allowance)
        if liquidation <= floor:
            breaches.append(
                Breach(
                    "floor",
                    True,
                    floor,
                    liquidation,
                    f"equity net of fees {fmt_money(liquidation)} is at or below the firm's floor {fmt_money(floor)}",
                )
            )
        elif self.buffer > 0 and liquidation <= trigger:
            breaches.append(
                Breach(
                    "floor",
                    False,
                    trigger,
                    liquidation,
                    f"equity net of fees {fmt_money(liquidation)} reached tterm's flatten level {fmt_money(trigger)} "
                    f"(firm floor {fmt_money(floor)} + {self.buffer_pct.normalize():f}% buffer "
                    f"{fmt_money(self.buffer)})",
                )
            )
        if st.closest is None or distance < st.closest:
            st.closest = distance
            st.closest_at = at

        dll = self.daily_loss_limit
        dll_distance = dll_trigger = dll_used = None
        if dll is not None:
            dll_distance = dll + day_net
            dll_buffer = money(dll * self.buffer_pct / HUNDRED)
            dll_trigger = -(dll - dll_buffer)
            dll_used = self._used(-day_net, dll)
            if day_net <= -dll:
                breaches.append(
                    Breach(
                        "dll",
                        True,
                        -dll,
                        day_net,
                        f"day P&L net of fees {fmt_money(day_net)} reached the daily loss limit {fmt_money(-dll)}",
                    )
                )
            elif dll_buffer > 0 and day_net <= dll_trigger:
                breaches.append(
                    Breach(
                        "dll",
                        False,
                        dll_trigger,
                        day_net,
                        f"day P&L net of fees {fmt_money(day_net)} reached tterm's flatten level "
                        f"{fmt_money(dll_trigger)} (daily loss limit {fmt_money(-dll)} less the "
                        f"{self.buffer_pct.normalize():f}% buffer)",
                    )
                )
        firm_breach = any(b.firm for b in breaches)
        band = band_for(max(used, dll_used or ZERO), firm_breach, self.warn_pct, self.danger_pct)
        return Assessment(
            balance=balance,
            equity=equity,
            liquidation=liquidation,
            day_pnl=day_pnl,
            high_water_mark=st.high_water_mark,
            floor=floor,
            floor_distance=distance,
            floor_trigger=trigger,
            floor_used_pct=used,
            dll=dll,
            dll_distance=dll_distance,
            dll_trigger=dll_trigger,
            dll_used_pct=dll_used,
            band=band,
            breaches=tuple(breaches),
            floor_moved=moved,
        )

    @staticmethod
    def _used(used: Decimal, allowance: Decimal) -> Decimal:
        pct = used / allowance * HUNDRED
        return min(max(pct, ZERO), HUNDRED).quantize(Decimal("0.1"))

    # ------------------------------------------------------------------ progress

    def consistency(self, today_pnl: Decimal | None = None) -> tuple[Decimal, Decimal] | None:
        """(best day as % of the base, the profile's limit %), or None without a rule or profit."""
        rule = self.profile.consistency
        if rule is None:
            return None
        days = dict(self.state.day_pnls)
        if today_pnl is not None and self.state.trade_date is not None:
            days[self.state.trade_date] = today_pnl
        best = max((v for v in days.values() if v > 0), default=None)
        if best is None:
            return None
        if rule.base is ConsistencyBase.PROFIT_TARGET:
            assert self.profile.profit_target is not None
            base = self.profile.profit_target
        else:
            base = sum(days.values(), ZERO)
            if base <= 0:
                return None
        return (best / base * HUNDRED).quantize(Decimal("0.1")), rule.percent

    def describe_dll_action(self) -> str:
        action = self.profile.daily_loss.action
        if action is DllAction.FAIL:
            return "the account fails"
        if action is DllAction.FLATTEN_BLOCK:
            return "positions are flattened and trading is blocked until the next session"
        return "no firm action"

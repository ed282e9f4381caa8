"""The trader's own limits ("yours"): a daily loss, fixed or trailing, a profit lock-in, trades per
day and the most one position may lose.

Pure math like :mod:`tterm.risk.rules`; the live monitor and ``tterm replay --with-tterm`` drive a
:class:`PersonalTracker` with the same calls:

- :meth:`PersonalTracker.start_day` when a trade date begins (the day's peak, trade count and
  lock-in reset);
- :meth:`PersonalTracker.count` for every fill (one entry and/or one exit per order);
- :meth:`PersonalTracker.update` on every tick with the day's P&L net of fees.

The lines are the trader's own numbers: tterm acts at the line, with no extra buffer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from tterm.risk.rules import ZERO, fmt_money
from tterm.risk.settings import AccountRiskSettings

Rule = Literal["yours_dll", "yours_profit_lock", "yours_trade_loss"]


@dataclass(frozen=True, slots=True)
class PersonalLimits:
    """The personal limits in force for one trade date (they only ever tighten within it)."""

    daily_loss: Decimal | None = None
    trailing: bool = False
    trails_realized: bool = False
    action: Literal["liquidate_block", "liquidate", "nothing"] = "liquidate_block"
    profit_lock_at: Decimal | None = None
    profit_lock_keep: Decimal | None = None
    max_trades: int | None = None
    max_loss_per_trade: Decimal | None = None

    @classmethod
    def from_settings(cls, s: AccountRiskSettings | None) -> PersonalLimits:
        if s is None:
            return cls()
        return cls(
            daily_loss=s.daily_loss,
            trailing=s.daily_loss_mode == "trailing",
            trails_realized=s.daily_loss_trails == "realized",
            action=s.daily_loss_action,
            profit_lock_at=s.profit_lock_at,
            profit_lock_keep=s.profit_lock_keep if s.profit_lock_keep is not None else s.profit_lock_at,
            max_trades=s.max_trades_per_day,
            max_loss_per_trade=s.max_loss_per_trade,
        )

    @property
    def any(self) -> bool:
        return any(
            v is not None for v in (self.daily_loss, self.profit_lock_at, self.max_trades, self.max_loss_per_trade)
        )

    def tighter(self, other: PersonalLimits) -> PersonalLimits:
        """The tighter of two sets, limit by limit (used when the config changes mid-day)."""

        def low(a: Any, b: Any) -> Any:
            return b if a is None else a if b is None else min(a, b)

        def high(a: Any, b: Any) -> Any:
            return b if a is None else a if b is None else max(a, b)

        rank = {"nothing": 0, "liquidate": 1, "liquidate_block": 2}
        action = self.action if rank[self.action] >= rank[other.action] else other.action
        # A trailing line is tighter than a fixed one, and following open profit tighter than
        # following realized profit (its peaks are higher).
        trailing = [x for x in (self, other) if x.trailing]
        return PersonalLimits(
            daily_loss=low(self.daily_loss, other.daily_loss),
            trailing=bool(trailing),
            trails_realized=bool(trailing) and all(x.trails_realized for x in trailing),
            action=action,
            profit_lock_at=low(self.profit_lock_at, other.profit_lock_at),
            profit_lock_keep=high(self.profit_lock_keep, other.profit_lock_keep),
            max_trades=low(self.max_trades, other.max_trades),
            max_loss_per_trade=low(self.max_loss_per_trade, other.max_loss_per_trade),
        )

    def describe(self) -> str:
        parts = []
        if self.daily_loss is not None:
            kind = "trailing " + ("realized" if self.trails_realized else "unrealized") if self.trailing else "fixed"
            parts.append(f"daily loss {fmt_money(self.daily_loss)} ({kind}, {self.action.replace('_', ' & ')})")
        if self.profit_lock_at is not None:
            keep = self.profit_lock_keep if self.profit_lock_keep is not None else self.profit_lock_at
            parts.append(f"profit lock-in at {fmt_money(self.profit_lock_at)} keeping {fmt_money(keep)}")
        if self.max_trades is not None:
            parts.append(f"{self.max_trades} trades a day")
        if self.max_loss_per_trade is not None:
            parts.append(f"at most {fmt_money(self.max_loss_per_trade)} a trade")
        return "; ".join(parts)


@dataclass(slots=True)
class PersonalState:
    """What must survive a restart (saved with the monitor's state)."""

    trade_date: date | None = None
    peak: Decimal = ZERO  # the day's best P&L (open or realized, as the trailing rule says)
    armed: bool = False  # the profit lock-in has been reached today
    trades: int = 0
    counted: set[str] = field(default_factory=set)  # "<order id>:entry" / "<order id>:exit"

    def to_json(self) -> dict[str, Any]:
        return {
            "trade_date": self.trade_date.isoformat() if self.trade_date else None,
            "peak": str(self.peak),
            "armed": self.armed,
            "trades": self.trades,
            "counted": sorted(self.counted),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PersonalState:
        return cls(
            trade_date=date.fromisoformat(d["trade_date"]) if d.get("trade_date") else None,
            peak=Decimal(d.get("peak", "0")),
            armed=bool(d.get("armed", False)),
            trades=int(d.get("trades", 0)),
            counted=set(d.get("counted", [])),
        )


@dataclass(frozen=True, slots=True)
class PersonalBreach:
    rule: Rule
    text: str
    symbol: str = ""  # yours_trade_loss: the position to flatten

    @property
    def locks(self) -> bool:
        """Whether the breach locks the account for the session (vs flattening a position)."""
        return self.rule != "yours_trade_loss"


@dataclass(frozen=True, slots=True)
class PersonalAssessment:
    """Where the account stands against its personal limits right now."""

    day_net: Decimal
    dll_line: Decimal | None  # the day P&L at which your daily loss acts
    dll_distance: Decimal | None  # day P&L net - line
    lock_line: Decimal | None  # the armed profit lock-in's line
    trades: int
    max_trades: int | None
    breaches: tuple[PersonalBreach, ...] = ()
    warnings: tuple[str, ...] = ()  # lines reached under action "nothing"


class PersonalTracker:
    """One account's personal limits (see the module docstring)."""

    def __init__(self, limits: PersonalLimits, state: PersonalState | None = None) -> None:
        self.limits = limits
        self.state = state if state is not None else PersonalState()

    def start_day(self, trade_date: date) -> bool:
        st = self.state
        if st.trade_date == trade_date:
            return False
        self.state = PersonalState(trade_date=trade_date)
        return True

    def count(self, order_id: str, *, opened: bool, reduced: bool) -> int:
        """Count a fill: the first fill of an order that opens is one trade, that reduces is one."""
        st = self.state
        for role, hit in (("entry", opened), ("exit", reduced)):
            key = f"{order_id}:{role}"
            if hit and key not in st.counted:
                st.counted.add(key)
                st.trades += 1
        return st.trades

    def trades_needed(self, *, from_flat_or_reversing: bool) -> int:
        """Trades an opening order uses: itself, and the exit it will need if it starts a position."""
        return 2 if from_flat_or_reversing else 1

    def dll_line(self) -> Decimal | None:
        lim = self.limits
        if lim.daily_loss is None:
            return None
        if not lim.trailing:
            return -lim.daily_loss
        return max(self.state.peak, ZERO) - lim.daily_loss

    def update(
        self,
        day_net: Decimal,
        realized_net: Decimal,
        positions: Iterable[tuple[str, Decimal]] = (),
    ) -> PersonalAssessment:
        """Measure the day (``day_net``: P&L with open positions less the fees to close them;
        ``realized_net``: closed P&L less fees) and each position (symbol, open P&L net of its
        exit fees) against the limits."""
        lim = self.limits
        st = self.state
        follow = realized_net if lim.trails_realized else day_net
        if follow > st.peak:
            st.peak = follow
        breaches: list[PersonalBreach] = []
        warnings: list[str] = []
        line = self.dll_line()
        distance = None
        if line is not None:
            assert lim.daily_loss is not None
            distance = day_net - line
            if day_net <= line:
                how = (
                    f"your trailing daily loss {fmt_money(lim.daily_loss)} below the day's best "
                    f"{fmt_money(max(st.peak, ZERO))}"
                    if lim.trailing
                    else f"your daily loss limit {fmt_money(lim.daily_loss)}"
                )
                text = f"day P&L net of fees {fmt_money(day_net)} reached {how} (line {fmt_money(line)})"
                if lim.action == "nothing":
                    warnings.append(text)
                else:
                    breaches.append(PersonalBreach("yours_dll", text))
        lock_line = None
        if lim.profit_lock_at is not None:
            keep = lim.profit_lock_keep if lim.profit_lock_keep is not None else lim.profit_lock_at
            if day_net >= lim.profit_lock_at:
                st.armed = True
            if st.armed:
                lock_line = keep
                if day_net <= keep:
                    breaches.append(
                        PersonalBreach(
                            "yours_profit_lock",
                            f"day P&L net of fees {fmt_money(day_net)} fell to your profit lock-in "
                            f"{fmt_money(keep)} (armed at {fmt_money(lim.profit_lock_at)})",
                        )
                    )
        if lim.max_loss_per_trade is not None:
            for symbol, open_net in positions:
                if open_net <= -lim.max_loss_per_trade:
                    breaches.append(
                        PersonalBreach(
                            "yours_trade_loss",
                            f"{symbol} is {fmt_money(open_net)} open, net of fees: your most per trade is "
                            f"{fmt_money(-lim.max_loss_per_trade)}",
                            symbol,
                        )
                    )
        return PersonalAssessment(
            day_net=day_net,
            dll_line=line,
            dll_distance=distance,
            lock_line=lock_line,
            trades=st.trades,
            max_trades=lim.max_trades,
            breaches=tuple(breaches),
            warnings=tuple(warnings),
        )

    def action_for(self, breach: PersonalBreach) -> Literal["liquidate_block", "liquidate", "position"]:
        """What tterm does: flatten and lock, flatten, or flatten one position."""
        if breach.rule == "yours_trade_loss":
            return "position"
        if breach.rule == "yours_dll" and self.limits.action == "liquidate":
            return "liquidate"
        return "liquidate_block"

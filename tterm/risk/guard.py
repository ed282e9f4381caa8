"""The rules beyond the firm's floor, for every account: your own limits, news windows, hedging.

The risk monitor owns one :class:`Guards`. For each account it keeps a
:class:`~tterm.risk.personal.PersonalTracker` (from ``[risk.accounts."<id>"]``), counts its trades
from the fills, works out the news window in force or next (the firm profile's rule and yours),
and hands the pre-trade checks a :class:`~tterm.risk.pretrade.GuardView`. :meth:`Guards.evaluate`
says what must happen now (flatten and lock, flatten, flatten one position, warn); the monitor
does it, journals it and shows it on the meter as "yours".

State that must survive a restart (the day's trade count, the trailing peak, the armed lock-in
and the limits in force today, which only tighten within a day) lives in the journal's state
table under ``risk.guard.<account>``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from tterm.core.models import Fill, Position
from tterm.risk.news import NewsCalendar, Window
from tterm.risk.personal import PersonalLimits, PersonalState, PersonalTracker
from tterm.risk.pretrade import GuardView
from tterm.risk.profiles import Hedging, NewsAction, NewsRule, Profile
from tterm.risk.settings import RiskSettings

if TYPE_CHECKING:
    from tterm.core.journal import Journal

ZERO = Decimal(0)
STATE_KEY = "risk.guard.{account}"

GuardKind = Literal["flatten_lock", "flatten", "flatten_symbol", "warn"]
#: What a personal-limit breach makes tterm do, by PersonalTracker.action_for's answer.
_BREACH_KIND: dict[str, GuardKind] = {
    "position": "flatten_symbol",
    "liquidate": "flatten",
    "liquidate_block": "flatten_lock",
}


@dataclass(frozen=True, slots=True)
class GuardAction:
    """Something the monitor must do for an account now."""

    kind: GuardKind
    rule: str  # yours_dll, yours_profit_lock, yours_trade_loss, news
    key: str  # de-duplicates: the same key acts once (per trade date)
    text: str
    symbol: str = ""


@dataclass(slots=True)
class _Guarded:
    account: str
    tracker: PersonalTracker
    limits_date: date | None = None
    view: GuardView | None = None
    window: tuple[Window, str] | None = None
    warned: set[str] = field(default_factory=set)
    saved: tuple[Any, ...] | None = None
    #: The news window found last, and until when it stays the answer.
    window_until: datetime | None = None


class Guards:
    """See the module docstring."""

    def __init__(
        self,
        *,
        settings: RiskSettings,
        journal: Journal,
        calendar: NewsCalendar,
        profile_of: Callable[[str], Profile | None],
        lead_minutes: Decimal,
    ) -> None:
        self.settings = settings
        self.journal = journal
        self.calendar = calendar
        self._profile_of = profile_of
        self._lead = timedelta(minutes=float(lead_minutes))
        self._accounts: dict[str, _Guarded] = {}

    # ------------------------------------------------------------------ per account

    def _get(self, account: str) -> _Guarded:
        g = self._accounts.get(account)
        if g is None:
            saved = self.journal.get_state(STATE_KEY.format(account=account)) or {}
            state = PersonalState.from_json(saved["state"]) if saved.get("state") else None
            limits = self._configured(account)
            limits_date = None
            if saved.get("limits") and state is not None and state.trade_date is not None:
                limits = _limits_from_json(saved["limits"]).tighter(limits)
                limits_date = state.trade_date
            g = _Guarded(account, PersonalTracker(limits, state), limits_date)
            self._accounts[account] = g
        return g

    def _configured(self, account: str) -> PersonalLimits:
        return PersonalLimits.from_settings(self.settings.accounts.get(account))

    def limits(self, account: str) -> PersonalLimits:
        return self._get(account).tracker.limits

    def news_rules(self, account: str) -> tuple[tuple[NewsRule, str], ...]:
        rules: list[tuple[NewsRule, str]] = []
        profile = self._profile_of(account)
        if profile is not None and profile.news.active:
            rules.append((profile.news, profile.firm))
        cfg = self.settings.accounts.get(account)
        if cfg is not None and cfg.news is not None and cfg.news.active:
            rules.append((cfg.news, "yours"))
        return tuple(rules)

    def no_hedging(self, account: str) -> str:
        profile = self._profile_of(account)
        if profile is not None and profile.hedging is Hedging.FORBIDDEN:
            return f"the {profile.firm} rules"
        cfg = self.settings.accounts.get(account)
        return "your settings" if cfg is not None and cfg.no_hedging else ""

    def view(self, account: str) -> GuardView:
        """What the pre-trade checks read (rebuilt whenever the account is evaluated)."""
        g = self._get(account)
        if g.view is None:
            g.view = self._build_view(g)
        return g.view

    def _build_view(self, g: _Guarded) -> GuardView:
        lim = g.tracker.limits
        cfg = self.settings.accounts.get(g.account)
        profile = self._profile_of(g.account)
        return GuardView(
            account=g.account,
            news=self.news_rules(g.account),
            no_hedging=self.no_hedging(g.account),
            trades=g.tracker.state.trades,
            max_trades=lim.max_trades,
            max_loss_per_trade=lim.max_loss_per_trade,
            # A firm profile counts your cap with its own micro ratio (merged into its tier).
            max_contracts=cfg.max_contracts if cfg is not None and profile is None else None,
        )

    def refresh(self) -> None:
        """Drop the cached views and windows (a profile or calendar reload changes the rules)."""
        for g in self._accounts.values():
            g.view = None
            g.window_until = None

    # ------------------------------------------------------------------ the day and the fills

    def start_day(self, account: str, trade_date: date) -> None:
        g = self._get(account)
        if g.tracker.start_day(trade_date) or g.limits_date != trade_date:
            if g.limits_date != trade_date:
                g.tracker.limits = self._configured(account)
            g.limits_date = trade_date
            g.warned.clear()
            g.view = None
            self._save(g)
        else:
            # Same day: the config may only tighten what is in force.
            wanted = self._configured(account)
            tighter = g.tracker.limits.tighter(wanted)
            if tighter != g.tracker.limits:
                g.tracker.limits = tighter
                g.view = None
                self._save(g)

    def tighten(self, account: str, *, daily_loss: Decimal) -> PersonalLimits:
        g = self._get(account)
        lim = g.tracker.limits
        g.tracker.limits = lim.tighter(PersonalLimits(daily_loss=daily_loss, action=lim.action))
        g.view = None
        self._save(g)
        return g.tracker.limits

    def on_fill(self, fill: Fill, held_after: int) -> None:
        """Count a trade: whether this fill opened or reduced the position it changed."""
        g = self._get(fill.account)
        before = held_after - fill.signed_quantity
        reduced = before != 0 and (before > 0) != (fill.signed_quantity > 0)
        opened = held_after != 0 and (before == 0 or (before > 0) != (held_after > 0) or abs(held_after) > abs(before))
        g.tracker.count(fill.order_id or fill.fill_id, opened=opened, reduced=reduced)
        g.view = None
        self._save(g)

    # ------------------------------------------------------------------ the tick

    def evaluate(
        self,
        account: str,
        now: datetime,
        *,
        trade_date: date,
        day_net: Decimal,
        realized_net: Decimal,
        positions: list[Position],
        exit_fee: Callable[[Position], Decimal],
        exposed: bool,
    ) -> tuple[list[GuardAction], dict[str, Any]]:
        """What must happen now, and the meter's "yours" and news fields."""
        g = self._get(account)
        self.start_day(account, trade_date)
        per = [(p.symbol, p.unrealized_pnl - exit_fee(p)) for p in positions]
        pa = g.tracker.update(day_net, realized_net, per)
        actions: list[GuardAction] = []
        for b in pa.breaches:
            how = g.tracker.action_for(b)
            actions.append(GuardAction(_BREACH_KIND[how], b.rule, f"{b.rule}:{b.symbol}", b.text, b.symbol))
        for warning in pa.warnings:
            actions.append(GuardAction("warn", "yours_dll", "yours_dll_warn", warning))
        if g.window_until is None or now >= g.window_until:
            g.window = self._window(account, now)
            # The next window stays the next one until it ends; with none, look again in an hour.
            g.window_until = g.window[0].end if g.window is not None else now + timedelta(hours=1)
        window = g.window
        if window is not None:
            w, who = window
            whose = "your news rule" if who == "yours" else f"the {who} news rule"
            what = f"{w.release.label} at {w.release.at.astimezone(_ct()):%H:%M} CT"
            if w.rule is NewsAction.FLATTEN and w.start - self._lead <= now < w.end and exposed:
                actions.append(
                    GuardAction(
                        "flatten",
                        "news",
                        f"news:{w.release.kind}:{w.release.at.isoformat()}",
                        f"{whose}: flat from {w.start.astimezone(_ct()):%H:%M} CT for {what}",
                    )
                )
            elif w.rule is NewsAction.WARN and w.start <= now < w.end:
                actions.append(GuardAction("warn", "news", f"news_warn:{w.release.at.isoformat()}", f"{whose}: {what}"))
        g.view = self._build_view(g)
        self._save(g)
        lim = g.tracker.limits
        fields: dict[str, Any] = {
            "yours_daily_loss": lim.daily_loss,
            "yours_dll_line": pa.dll_line,
            "yours_dll_distance": pa.dll_distance,
            "yours_dll_mode": (
                ""
                if lim.daily_loss is None
                else ("trailing " + ("realized" if lim.trails_realized else "unrealized"))
                if lim.trailing
                else "fixed"
            ),
            "yours_profit_lock_at": lim.profit_lock_at,
            "yours_profit_lock": pa.lock_line,
            "trades_today": pa.trades,
            "trades_max": lim.max_trades,
            "yours_max_loss_trade": lim.max_loss_per_trade,
        }
        if window is not None:
            w, who = window
            fields.update(
                news_kind=w.release.kind,
                news_at=w.release.at,
                news_start=w.start,
                news_end=w.end,
                news_rule=w.rule.value,
                news_who=who,
                news_uncertain=bool(w.release.uncertain),
            )
        return actions, fields

    def warn_once(self, account: str, key: str) -> bool:
        """True the first time ``key`` is warned about today."""
        g = self._get(account)
        if key in g.warned:
            return False
        g.warned.add(key)
        return True

    def _window(self, account: str, now: datetime) -> tuple[Window, str] | None:
        best: tuple[Window, str] | None = None
        for rule, who in self.news_rules(account):
            w = self.calendar.next_window(rule, now)
            if w is not None and (best is None or w.start < best[0].start):
                best = (w, who)
        return best

    # ------------------------------------------------------------------ persistence

    def _save(self, g: _Guarded) -> None:
        st = g.tracker.state
        sig = (st.trade_date, st.peak, st.armed, st.trades, g.tracker.limits)
        if sig != g.saved:
            data = {"state": st.to_json(), "limits": _limits_to_json(g.tracker.limits)}
            self.journal.set_state(STATE_KEY.format(account=g.account), data)
            g.saved = sig


def _ct() -> Any:
    from tterm.core.clock import CT

    return CT


def _limits_to_json(lim: PersonalLimits) -> dict[str, Any]:
    def d(v: Decimal | None) -> str | None:
        return None if v is None else str(v)

    return {
        "daily_loss": d(lim.daily_loss),
        "trailing": lim.trailing,
        "trails_realized": lim.trails_realized,
        "action": lim.action,
        "profit_lock_at": d(lim.profit_lock_at),
        "profit_lock_keep": d(lim.profit_lock_keep),
        "max_trades": lim.max_trades,
        "max_loss_per_trade": d(lim.max_loss_per_trade),
    }


def _limits_from_json(data: dict[str, Any]) -> PersonalLimits:
    def d(key: str) -> Decimal | None:
        v = data.get(key)
        return None if v is None else Decimal(v)

    return PersonalLimits(
        daily_loss=d("daily_loss"),
        trailing=bool(data.get("trailing", False)),
        trails_realized=bool(data.get("trails_realized", False)),
        action=data.get("action", "liquidate_block"),
        profit_lock_at=d("profit_lock_at"),
        profit_lock_keep=d("profit_lock_keep"),
        max_trades=data.get("max_trades"),
        max_loss_per_trade=d("max_loss_per_trade"),
    )

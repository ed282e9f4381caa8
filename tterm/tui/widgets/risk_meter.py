"""Risk meters per account: day P&L against the daily loss limit, equity against the drawdown floor,
and contracts in use against the maximum, in dollars and as bars that change colour as the margin
shrinks. Below the firm's lines, your own ("Yours": your daily loss, trades today, your most per
trade, the profit lock-in) and the next news window a rule covers.

The meters draw a :class:`~tterm.core.models.RiskStatus`: the one the risk monitor publishes on the
engine bus, or, while no monitor runs, one computed here from the account's configured profile
(:func:`status_from_profile`, marked as such on screen).

What is left of the daily loss limit never reads more than the limit: a profitable day keeps the
whole DLL and says how much profit stands in front of it. When the room to the DLL also counts
the fees to close the open positions, the line says so. Distances in ticks are whole ticks. When
the day P&L and the positions pane's total for the account differ, a line says by how much and
why.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from rich.style import Style
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widget import Widget

from tterm.core.clock import CT
from tterm.core.models import ZERO, Account, AccountSnapshot, RiskStatus
from tterm.tui import format as fmt

Band = Literal["ok", "warn", "danger", "breached"]

PROFILE_DETAIL = "from the profile"
"""How a status computed here (no risk monitor) begins its detail line."""

WARN_AT = Decimal("0.5")
DANGER_AT = Decimal("0.25")
"""A meter turns to warn when half its margin is gone, to danger with a quarter left."""


def band_for(remaining: Decimal | None, allowance: Decimal | None) -> Band:
    """The colour band for ``remaining`` dollars out of ``allowance``."""
    if remaining is None or allowance is None or allowance <= 0:
        return "ok"
    if remaining <= 0:
        return "breached"
    frac = remaining / allowance
    if frac <= DANGER_AT:
        return "danger"
    if frac <= WARN_AT:
        return "warn"
    return "ok"


def status_from_profile(
    account: Account,
    balance: AccountSnapshot | None,
    profile: Any,
    *,
    contracts_used: Decimal,
    cutoff: datetime | None,
) -> RiskStatus:
    """A RiskStatus from the account's configured profile, for when no risk monitor publishes one.

    It is deliberately simple: the floor is the profile's starting balance minus its drawdown
    (the floor before any trailing), and the daily loss limit is counted from today's P&L.
    """
    equity = balance.equity if balance is not None else Decimal(profile.start)
    bal = balance.balance if balance is not None else Decimal(profile.start)
    day_pnl = balance.day_pnl if balance is not None else ZERO
    drawdown = getattr(profile, "drawdown", None)
    amount = getattr(drawdown, "amount", None)
    allowance = Decimal(amount) if amount is not None else None  # None: the firm's number is unknown
    floor = Decimal(profile.start) - allowance if allowance is not None else None
    daily = getattr(profile, "daily_loss", None)
    dll = Decimal(daily.amount) if daily is not None and getattr(daily, "amount", None) is not None else None
    contracts = getattr(profile, "contracts", None)
    cmax = contracts.ceiling if contracts is not None else None
    floor_distance = equity - floor if floor is not None else None
    dll_distance = dll + day_pnl if dll is not None else None
    bands = [band_for(floor_distance, allowance), band_for(dll_distance, dll)]
    order: list[Band] = ["ok", "warn", "danger", "breached"]
    band = max(bands, key=order.index)
    return RiskStatus(
        account=account.id,
        profile=getattr(profile, "id", account.profile),
        balance=bal,
        equity=equity,
        day_pnl=day_pnl,
        floor=floor,
        floor_distance=floor_distance,
        drawdown_allowance=allowance,
        daily_loss_limit=dll,
        dll_distance=dll_distance,
        contracts_used=contracts_used,
        contracts_max=cmax,
        cutoff=cutoff,
        band=band,
        detail=f"{PROFILE_DETAIL} (risk monitor not running)",
    )


class RiskMeter(Widget):
    """One account's meters; :meth:`show` takes its RiskStatus (or None when it has no profile)."""

    COMPONENT_CLASSES = {
        "risk-meter--title",
        "risk-meter--muted",
        "risk-meter--ok",
        "risk-meter--warn",
        "risk-meter--danger",
        "risk-meter--breached",
        "risk-meter--track",
        "risk-meter--locked",
        "risk-meter--up",
        "risk-meter--down",
    }
    DEFAULT_CSS = """
    RiskMeter { height: auto; padding: 0 0 1 0; }
    RiskMeter > .risk-meter--title { text-style: bold; }
    RiskMeter > .risk-meter--muted { color: $foreground-muted; }
    RiskMeter > .risk-meter--ok { color: $meter-ok; }
    RiskMeter > .risk-meter--warn { color: $meter-warn; }
    RiskMeter > .risk-meter--danger { color: $meter-danger; text-style: bold; }
    RiskMeter > .risk-meter--breached { color: $badge-live-fg; background: $badge-live-bg; text-style: bold; }
    RiskMeter > .risk-meter--track { color: $meter-track; }
    RiskMeter > .risk-meter--locked { color: $badge-live-fg; background: $badge-live-bg; text-style: bold; }
    RiskMeter > .risk-meter--up { color: $pnl-up; }
    RiskMeter > .risk-meter--down { color: $pnl-down; }
    """

    def __init__(self, account: Account, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.account = account
        self.status: RiskStatus | None = None
        self.balance: AccountSnapshot | None = None
        self.now: datetime | None = None
        self.current = False
        #: The positions pane's total for the account (None: nothing to compare).
        self.positions_total: Decimal | None = None
        self._sig: tuple[object, ...] | None = None

    def show(
        self,
        account: Account,
        status: RiskStatus | None,
        balance: AccountSnapshot | None,
        now: datetime,
        *,
        current: bool,
        positions_total: Decimal | None = None,
    ) -> None:
        minute = now.replace(second=0, microsecond=0)
        sig = (account, status, balance, minute, current, positions_total)
        self.account, self.status, self.balance, self.now, self.current = account, status, balance, now, current
        self.positions_total = positions_total
        if sig != self._sig:
            self._sig = sig
            self.refresh(layout=True)

    def _s(self, name: str) -> Style:
        return self.get_component_rich_style(f"risk-meter--{name}", partial=True)

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        return len(self._lines(width))

    def render(self) -> Text:
        return Text("\n").join(self._lines(self.size.width))

    def _bar(self, used: Decimal, total: Decimal, width: int, band: Band) -> Text:
        width = max(4, width)
        frac = min(Decimal(1), max(ZERO, used / total)) if total > 0 else ZERO
        filled = int(frac * width + Decimal("0.5"))
        text = Text("█" * filled, style=self._s(band))
        text.append("░" * (width - filled), style=self._s("track"))
        return text

    def _lines(self, width: int) -> list[Text]:
        """The meter's lines; a line longer than the pane folds onto indented continuation lines
        (at a space), so a wide pane never cuts a rule's wording short."""
        out: list[Text] = []
        for line in self._build(width):
            out.extend(_fold(line, width))
        return out

    def _build(self, width: int) -> list[Text]:
        acct = self.account
        st = self.status
        title = Text(("▶ " if self.current else "  ") + (acct.name or acct.id), style=self._s("title"))
        if st is not None and st.profile:
            title.append(f"  {st.profile}", style=self._s("muted"))
        if st is not None and st.locked:
            title.append("  LOCKED ", style=self._s("locked"))
            if st.lock_reason:
                title.append(f" {st.lock_reason}", style=self._s("muted"))
        lines = [title]
        bar_w = max(6, min(24, width - 62))
        if st is None or not st.profile:
            day = st.day_pnl if st is not None else (self.balance.day_pnl if self.balance is not None else None)
            line = Text("  Day P&L ", style=self._s("muted"))
            if day is not None:
                line.append(fmt.fit(fmt.money(day, signed=True), 11, "right"), style=self._tone(day))
            extra = (self._yours(st, bar_w) + self._news(st, width)) if st is not None else []
            why = st.detail if st is not None and st.detail and st.detail != "no rule profile" else "no rule profile"
            line.append(f"  {why}: " + ("no firm limits; yours below" if extra else "no limits to show"),
                        style=self._s("muted"))  # fmt: skip
            lines.append(line)
            return lines + extra
        line = Text("  Day P&L ", style=self._s("muted"))
        line.append(fmt.fit(fmt.money(st.day_pnl, signed=True), 11, "right"), style=self._tone(st.day_pnl))
        line.append(" ")
        if st.daily_loss_limit is not None and st.dll_distance is not None:
            dll = st.daily_loss_limit
            dll_band = band_for(st.dll_distance, dll)
            left = min(st.dll_distance, dll)
            line.append(self._bar(dll - left, dll, bar_w, dll_band))
            line.append(f" {fmt.money(max(left, ZERO))} left of {fmt.money(dll)} DLL", style=self._s(dll_band))
            if st.dll_ticks is not None and st.ticks_symbol:
                line.append(f" · {fmt.ticks(max(st.dll_ticks, ZERO))} {st.ticks_symbol}", style=self._s("muted"))
            lines.append(line)
            notes = []
            if st.dll_distance > dll:
                notes.append(f"+{fmt.money(st.dll_distance - dll)} of today's profit stands ahead of the DLL")
            # The room counts equity less the fees to close what is open; the day P&L does not.
            close_fees = dll + st.day_pnl - st.dll_distance
            if close_fees >= Decimal("0.01"):
                notes.append(f"after {fmt.money(close_fees)} fees to close what is open")
            if notes:
                indent = " " * (10 + 11 + 1 + bar_w + 1)
                lines.append(Text(indent + "; ".join(notes), style=self._s("muted")))
        else:
            line.append(" no daily loss limit", style=self._s("muted"))
            lines.append(line)
        if self.positions_total is not None and abs(self.positions_total - st.day_pnl) >= Decimal("0.01"):
            lines.append(self._disagreement(st, self.positions_total))
        if st.floor is not None and st.floor_distance is not None:
            allowance = st.drawdown_allowance if st.drawdown_allowance is not None else st.floor_distance
            floor_band = band_for(st.floor_distance, allowance)
            line = Text("  Equity  ", style=self._s("muted"))
            line.append(fmt.fit(fmt.money(st.equity), 11, "right"))
            line.append(" ")
            line.append(self._bar(allowance - st.floor_distance, allowance, bar_w, floor_band))
            line.append(f" {fmt.money(st.floor_distance)} above floor {fmt.money(st.floor)}", style=self._s(floor_band))
            if st.floor_ticks is not None and st.ticks_symbol:
                line.append(f" · {fmt.ticks(max(st.floor_ticks, ZERO))} {st.ticks_symbol}", style=self._s("muted"))
            lines.append(line)
        if st.contracts_max is not None:
            used = st.contracts_used
            cap = Decimal(st.contracts_max)
            band: Band = "breached" if used > cap else "warn" if used == cap and cap > 0 else "ok"
            line = Text("  Size    ", style=self._s("muted"))
            line.append(fmt.fit(f"{used.normalize():f} / {st.contracts_max}", 11, "right"))
            line.append(" ")
            line.append(self._bar(used, cap, bar_w, band))
            line.append(" contracts in use", style=self._s("muted"))
            lines.append(line)
        if st.cutoff is not None and self.now is not None:
            line = Text("  Flat by ", style=self._s("muted"))
            line.append(f"{st.cutoff.astimezone(CT).strftime('%H:%M')} CT")
            line.append(f" in {fmt.duration(st.cutoff - self.now)}", style=self._s("muted"))
            if st.flatten_at is not None:
                line.append(f" · tterm flattens at {st.flatten_at.astimezone(CT).strftime('%H:%M')} CT",
                            style=self._s("muted"))  # fmt: skip
            lines.append(line)
        lines += self._yours(st, bar_w)
        lines += self._news(st, width)
        if st.detail:
            lines.append(Text(f"  {st.detail}", style=self._s("muted")))
        return lines

    def _yours(self, st: RiskStatus, bar_w: int) -> list[Text]:
        """Your own limits: the daily loss as a bar, then trades, most per trade and the lock-in."""
        lines = []
        if st.yours_daily_loss is not None and st.yours_dll_distance is not None:
            amount = st.yours_daily_loss
            band = band_for(st.yours_dll_distance, amount)
            line = Text("  Yours   ", style=self._s("muted"))
            line.append(fmt.fit(fmt.money(amount), 11, "right"))
            line.append(" ")
            line.append(self._bar(amount - min(amount, max(ZERO, st.yours_dll_distance)), amount, bar_w, band))
            at = f" · at {fmt.money(st.yours_dll_line, signed=True)}" if st.yours_dll_line is not None else ""
            mode = f" ({st.yours_dll_mode})" if st.yours_dll_mode else ""
            line.append(f" {fmt.money(st.yours_dll_distance)} left{at}{mode}", style=self._s(band))
            lines.append(line)
        parts: list[tuple[str, str]] = []
        if st.trades_max is not None:
            left = st.trades_max - st.trades_today
            tone = "breached" if left <= 0 else "danger" if left <= 1 else "warn" if left <= 2 else "muted"
            parts.append((f"trades {st.trades_today}/{st.trades_max}", tone))
        if st.yours_max_loss_trade is not None:
            parts.append((f"{fmt.money(st.yours_max_loss_trade)}/trade", "muted"))
        if st.yours_profit_lock is not None:
            parts.append((f"profit locked at {fmt.money(st.yours_profit_lock, signed=True)}", "warn"))
        elif st.yours_profit_lock_at is not None:
            parts.append((f"lock-in at {fmt.money(st.yours_profit_lock_at, signed=True)}", "muted"))
        if parts:
            line = Text("  Yours   " if not lines else "          ", style=self._s("muted"))
            for i, (text, tone) in enumerate(parts):
                if i:
                    line.append(" · ", style=self._s("muted"))
                line.append(text, style=self._s(tone))
            lines.append(line)
        return lines

    def _news(self, st: RiskStatus, width: int) -> list[Text]:
        """The next news window a rule covers: ``CPI 07:30 CT in 2h30m · no entries 07:25-07:35 CT``
        (on two lines when one is too narrow)."""
        if not st.news_kind or st.news_at is None or st.news_start is None or st.news_end is None:
            return []
        now = self.now
        at = st.news_at.astimezone(CT)
        line = Text("  News    ", style=self._s("muted"))
        label = st.news_kind + (" (unconfirmed)" if st.news_uncertain else "")
        inside = now is not None and st.news_start <= now < st.news_end
        line.append(label, style=self._s("danger" if inside else "title"))
        day = "" if now is None or at.date() == now.astimezone(CT).date() else f" {at:%a %m-%d}"
        line.append(f"{day} {at:%H:%M} CT")
        if inside:
            line.append(" now", style=self._s("danger"))
        elif now is not None and st.news_at > now:
            line.append(f" in {fmt.duration(st.news_at - now)}", style=self._s("muted"))
        what = {"no_entries": "no entries", "flatten": "flat", "warn": "warning only"}.get(st.news_rule, st.news_rule)
        span = f"{st.news_start.astimezone(CT):%H:%M}-{st.news_end.astimezone(CT):%H:%M} CT"
        whose = "yours" if st.news_who == "yours" else st.news_who
        rule = f"{what} {span} ({whose})"
        if line.cell_len + 3 + len(rule) <= width:
            line.append(f" · {rule}", style=self._s("muted"))
            return [line]
        return [line, Text(f"          {rule}", style=self._s("muted"))]

    def _disagreement(self, st: RiskStatus, total: Decimal) -> Text:
        """Why the day P&L and the positions total differ (they measure from different starts)."""
        gap = st.day_pnl - total
        if st.detail.startswith(PROFILE_DETAIL):
            why = "the day P&L is the broker's balance report; the positions total is tterm's book at its marks"
        else:
            why = (
                "the day P&L is equity less the start-of-day balance (the firm's day); the positions also "
                "count P&L booked before it (the day turn, or a restart mid-day) or at a newer mark"
            )
        return Text(
            f"  Positions total {fmt.money(total, signed=True)} ({fmt.money(gap, signed=True)} apart): {why}",
            style=self._s("muted"),
        )

    def _tone(self, value: Decimal) -> Style:
        return self._s("up") if value > 0 else self._s("down") if value < 0 else self._s("muted")


FOLD_INDENT = "    "
FOLD_MAX = 3
"""Continuation lines start FOLD_INDENT in; a line folds at most FOLD_MAX times, then is cut with an ellipsis."""


def _fold(line: Text, width: int) -> list[Text]:
    width = max(1, width)
    out: list[Text] = []
    rest = line
    while rest.cell_len > width and len(out) < FOLD_MAX and width > 2 * len(FOLD_INDENT) + 8:
        plain = rest.plain
        cut = plain.rfind(" ", len(FOLD_INDENT) + 1, width)
        if cut <= len(FOLD_INDENT):
            cut = width
        head, tail = rest.divide([cut])
        out.append(head)
        skip = len(tail.plain) - len(tail.plain.lstrip(" "))
        rest = Text(FOLD_INDENT, style=line.style) + tail[skip:]
    rest.no_wrap = True
    rest.truncate(width, overflow="ellipsis")
    out.append(rest)
    return out


class RiskPanel(VerticalScroll):
    """A RiskMeter for every account, the current one first."""

    CONSUMES = frozenset({"positions", "balances", "risk", "locks", "accounts"})

    DEFAULT_CSS = """
    RiskPanel { height: 1fr; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.meters: dict[str, RiskMeter] = {}
        self.can_focus = True

    def show(
        self,
        accounts: Iterable[Account],
        statuses: dict[str, RiskStatus | None],
        balances: dict[str, AccountSnapshot],
        now: datetime,
        current: str | None,
        totals: dict[str, tuple[Decimal, datetime]] | None = None,
    ) -> None:
        """``totals``: per account, the positions pane's total and when its newest position was measured."""
        totals = totals or {}
        ordered = sorted(accounts, key=lambda a: (a.id != current, a.name or a.id))
        for acct in ordered:
            meter = self.meters.get(acct.id)
            if meter is None:
                meter = RiskMeter(acct)
                self.meters[acct.id] = meter
                self.mount(meter)
            total = totals.get(acct.id)
            status = statuses.get(acct.id)
            # Compare only a status measured after the positions it should agree with (else a tick apart).
            comparable = total is not None and status is not None and status.ts >= total[1]
            meter.show(acct, status, balances.get(acct.id), now, current=acct.id == current,
                       positions_total=total[0] if comparable and total is not None else None)  # fmt: skip
        wanted = [self.meters[a.id] for a in ordered]
        if len(wanted) > 1 and list(self.children) != wanted and all(m.parent is self for m in wanted):
            self.move_child(wanted[0], before=0)
            for prev, meter in itertools.pairwise(wanted):
                self.move_child(meter, after=prev)

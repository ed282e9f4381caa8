"""The status bar: PAPER or LIVE badge, a STALE badge while prices are not current, the current
account, each broker connection with the age of its last message, the time left on its login
(``tv 🔑 1h12m``) and a vendor lockout's end (``⛔ locked out until 10:17 CT``: a Tradovate 429,
nothing is sent before then), exchange (CT) and local time, and the time left to the account's cutoff.

A connection's age is amber from 5 s and red from the staleness limit (see
:mod:`tterm.tui.freshness`). When the terminal is attached and the link to the hub is down, the
hub shows how long it has been down, and every broker's state is shown as unknown (the hub may
have lost it too) with the age of the last message heard.

It redraws once a second and whenever a connection changes. When the line is too narrow the
least important parts go first; the badges and the connections always stay.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rich.style import Style
from rich.text import Text
from textual import events
from textual.message import Message
from textual.widget import Widget

from tterm.core.clock import CT
from tterm.core.models import ConnectionState, ConnectionStatus
from tterm.tui import format as fmt
from tterm.tui.freshness import HUB_LINK, Freshness

_STATE_WORD = {
    ConnectionState.CONNECTED: "connected",
    ConnectionState.RECONNECTING: "reconnecting",
    ConnectionState.STALE: "STALE",
    ConnectionState.DOWN: "DOWN",
    ConnectionState.NEEDS_LOGIN: "NEEDS LOGIN",
}
_STATE_DOT = {
    ConnectionState.CONNECTED: "●",
    ConnectionState.RECONNECTING: "◌",
    ConnectionState.STALE: "◍",
    ConnectionState.DOWN: "○",
    ConnectionState.NEEDS_LOGIN: "○",
}

#: A login that needs a person (a Schwab refresh token) warns a day before it dies, and is red
#: in its last hour. A short token tterm renews itself (a Tradovate session, 80-90 minutes) is
#: muted: warning an hour ahead would be on most of its life; it warns in its last 10 minutes,
#: which means renewal is failing.
PERSON_WARN = timedelta(days=1)
PERSON_URGENT = timedelta(hours=1)
RENEWED_WARN = timedelta(minutes=10)


def lockout_text(status: ConnectionStatus, now: datetime) -> str | None:
    """``⛔ locked out until 10:17 CT`` while the broker refuses every request, else None."""
    until = status.blocked_until
    if until is None or until <= now:
        return None
    return f"⛔ locked out until {until.astimezone(CT).strftime('%H:%M')} CT"


def auth_countdown(status: ConnectionStatus, now: datetime) -> tuple[str, str] | None:
    """``("🔑 1h12m", style)`` for a connection whose login expiry is known (style: muted, warn, down)."""
    expires = status.auth_expires_at
    if expires is None:
        return None
    left = expires - now
    text = f"🔑 {fmt.duration(left)}" if left > timedelta(0) else "🔑 expired"
    if status.auth_needs_person:
        style = "down" if left <= PERSON_URGENT else "warn" if left <= PERSON_WARN else "muted"
    else:
        style = "down" if left <= timedelta(0) else "warn" if left <= RENEWED_WARN else "muted"
    return text, style


class StatusBar(Widget):
    """One line at the top of the screen; :meth:`show` passes everything it draws.

    A click while a broker shows NEEDS LOGIN asks the app for its login (:class:`LoginWanted`).
    """

    class LoginWanted(Message):
        def __init__(self, broker: str) -> None:
            super().__init__()
            self.broker = broker

    COMPONENT_CLASSES = {
        "status-bar--paper",
        "status-bar--live",
        "status-bar--ok",
        "status-bar--warn",
        "status-bar--down",
        "status-bar--muted",
        "status-bar--confirm-off",
        "status-bar--locked",
        "status-bar--stale",
    }
    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $foreground; }
    StatusBar > .status-bar--paper { background: $badge-paper-bg; color: $badge-paper-fg; text-style: bold; }
    StatusBar > .status-bar--live { background: $badge-live-bg; color: $badge-live-fg; text-style: bold reverse; }
    StatusBar > .status-bar--ok { color: $text-success; }
    StatusBar > .status-bar--warn { color: $text-warning; text-style: bold; }
    StatusBar > .status-bar--down { color: $text-error; text-style: bold; }
    StatusBar > .status-bar--muted { color: $foreground-muted; }
    StatusBar > .status-bar--confirm-off { color: $text-warning; text-style: bold reverse; }
    StatusBar > .status-bar--locked { background: $badge-live-bg; color: $badge-live-fg; text-style: bold; }
    StatusBar > .status-bar--stale { background: $warning; color: $background; text-style: bold; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.live = False
        self.account_label = ""
        self.confirm_on = True
        self.locked = False
        self.connections: list[ConnectionStatus] = []
        self.now: datetime | None = None
        self.wall: datetime | None = None
        self.cutoff: datetime | None = None
        self.cutoff_label = "cutoff"
        self.note = ""
        self.freshness: Freshness | None = None
        self.stale = False

    def on_click(self, event: events.Click) -> None:
        waiting = [c.broker for c in self.connections if c.state is ConnectionState.NEEDS_LOGIN]
        if waiting:
            event.stop()
            self.post_message(self.LoginWanted(waiting[0]))

    def _s(self, name: str) -> Style:
        return self.get_component_rich_style(f"status-bar--{name}", partial=True)

    def show(
        self,
        *,
        live: bool,
        account_label: str,
        confirm_on: bool,
        locked: bool,
        connections: list[ConnectionStatus],
        now: datetime,
        wall: datetime | None = None,
        cutoff: datetime | None,
        cutoff_label: str = "cutoff",
        note: str = "",
        freshness: Freshness | None = None,
        stale: bool = False,
    ) -> None:
        self.live = live
        self.account_label = account_label
        self.confirm_on = confirm_on
        self.locked = locked
        self.connections = connections
        self.now = now
        self.wall = wall or now
        self.cutoff = cutoff
        self.cutoff_label = cutoff_label
        self.note = note
        self.freshness = freshness
        self.stale = stale
        self.refresh()

    def render(self) -> Text:
        width = self.size.width
        now = self.now
        badge = Text(" LIVE " if self.live else " PAPER ", style=self._s("live" if self.live else "paper"))
        parts: list[tuple[int, Text]] = []  # (priority: lower stays longer, text)
        acct = Text(f" {self.account_label}")
        if self.locked:
            acct.append(" LOCKED ", style=self._s("locked"))
        parts.append((1, acct))
        if not self.confirm_on:
            parts.append((2, Text(" CONFIRM OFF ", style=self._s("confirm-off"))))
        if self.stale:
            badge.append(" STALE ", style=self._s("stale"))
        conns = self._connections(compact=False)
        if badge.cell_len + conns.cell_len + 1 > width:
            # Too narrow: a locked-out broker keeps its lockout and drops its age and countdown.
            conns = self._connections(compact=True)
        parts.append((0, conns))
        right: list[tuple[int, Text]] = []  # in display order
        if self.note:
            right.append((5, Text(self.note, style=self._s("warn"))))
        if now is not None:
            if self.cutoff is not None:
                cut = Text(f"{self.cutoff_label} {self.cutoff.astimezone(CT).strftime('%H:%M')} in ")
                left = self.cutoff - now
                cut.append(fmt.duration(left), style=self._s("warn") if left.total_seconds() < 900 else "")
                right.append((2, cut))
            right.append((3, Text(f"CT {now.astimezone(CT).strftime('%H:%M:%S')}")))
            right.append((4, Text(f"local {now.astimezone().strftime('%H:%M:%S')}", style=self._s("muted"))))
        # Drop the least important parts until the line fits.
        while True:
            used = badge.cell_len + sum(t.cell_len for _, t in parts) + sum(t.cell_len + 2 for _, t in right) + 1
            if used <= width:
                break
            candidates = [(p, i, "l") for i, (p, _) in enumerate(parts) if p > 0]
            candidates += [(p, i, "r") for i, (p, _) in enumerate(right)]
            if not candidates:
                break
            _, i, side = max(candidates)
            if side == "l":
                parts.pop(i)
            else:
                right.pop(i)
        line = Text()
        line.append_text(badge)
        for _, t in parts:
            line.append_text(t)
        tail = Text("  ").join(t for _, t in right)
        gap = width - line.cell_len - tail.cell_len - 1
        if gap > 0:
            line.append(" " * gap)
        line.append_text(tail)
        line.append(" ")
        line.truncate(width)
        return line

    def _connections(self, *, compact: bool) -> Text:
        """Each broker's state, message age, login countdown and any lockout."""
        conns = Text()
        fresh = self.freshness
        link_down = fresh is not None and fresh.link_down
        for c in self.connections:
            state = c.state
            cls = "ok" if state is ConnectionState.CONNECTED else "down" if state is ConnectionState.DOWN else "warn"
            dot, word = _STATE_DOT[state], _STATE_WORD[state]
            if link_down and c.broker != HUB_LINK:
                dot, word, cls = "◍", "unknown", "warn"  # the hub's view of it is out of reach
            elif c.broker == HUB_LINK and state is not ConnectionState.CONNECTED:
                cls = "down"
            conns.append(f"  {c.broker} {dot} ", style=self._s("muted"))
            conns.append(word, style=self._s(cls))
            if state is ConnectionState.NEEDS_LOGIN and not link_down:
                conns.append(f": tterm login {c.broker}", style=self._s("warn"))
                continue
            blocked = lockout_text(c, self.wall) if self.wall is not None else None
            if compact and blocked is not None:
                conns.append(f" {blocked}", style=self._s("down"))
                continue
            age = fresh.connection_age(c) if fresh is not None else _age(c, self.wall)
            if age is not None:
                level = fresh.age_level(age) if fresh is not None else "ok"
                if c.broker == HUB_LINK:
                    level = "down"
                conns.append(f" {fmt.age(age)}", style=self._s("muted" if level == "ok" else level))
            key = auth_countdown(c, self.wall) if self.wall is not None else None
            if key is not None:
                conns.append(f" {key[0]}", style=self._s(key[1]))
            if blocked is not None:
                conns.append(f" {blocked}", style=self._s("down"))
        if not self.connections:
            conns.append("  connecting…", style=self._s("muted"))
        return conns


def _age(status: ConnectionStatus, wall: datetime | None) -> float | None:
    if status.last_message_at is None or wall is None:
        return None
    return (wall - status.last_message_at).total_seconds()

"""Palette and command-bar verbs for what the engine holds beyond orders: price alerts, the P&L
history and symbol search.

    alert MES > 6800            arm an alert (see tterm.core.alerts.model for the grammar)
    alert AAPL crosses 190      either direction, from the last price seen
    alerts                      the alerts screen: view, edit, remove
    alert rm 3 [4 ...]          remove alerts by number
    pnl [DAYS] [in ACCOUNT]     the P&L history screen (default 30 days, every account)
    search TEXT | find TEXT     look an instrument up at the master lists and every broker;
                                choosing a result adds it to the shown watchlist

:func:`parse` returns None for text that is none of these (the trade-verb parser takes it), and
raises ``ParseError`` with the reason for text that starts with one of these verbs but is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tterm.core.alerts.model import ALERT_EXAMPLE, AlertError, AlertSpec, parse_alert_spec
from tterm.core.pnl import MAX_DAYS
from tterm.core.verbs import ACCOUNT_WORDS, ParseError

if TYPE_CHECKING:
    from tterm.core.alerts.model import AlertFired
    from tterm.tui.app import TtermApp

ALERT_WORDS = frozenset({"alert", "alarm"})
ALERTS_WORDS = frozenset({"alerts", "alarms"})
ALERT_REMOVE_WORDS = frozenset({"rm", "remove", "del", "delete", "cancel"})
PNL_WORDS = frozenset({"pnl", "p&l", "history"})
SEARCH_WORDS = frozenset({"search", "find", "lookup"})
#: Every first word this module answers for (the app's "is this a tterm verb" test adds them).
VERB_WORDS = ALERT_WORDS | ALERTS_WORDS | PNL_WORDS | SEARCH_WORDS

_ID = re.compile(r"^#?(\d{1,9})$")
_DAYS = re.compile(r"^(\d{1,5})d?$")
MAX_SEARCH = 80


@dataclass(frozen=True, slots=True)
class AlertCommand:
    spec: AlertSpec


@dataclass(frozen=True, slots=True)
class AlertsCommand:
    pass


@dataclass(frozen=True, slots=True)
class AlertRemoveCommand:
    alert_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PnlCommand:
    days: int = 30
    account: str | None = None


@dataclass(frozen=True, slots=True)
class SearchCommand:
    text: str


EngineCommand = AlertCommand | AlertsCommand | AlertRemoveCommand | PnlCommand | SearchCommand
ENGINE_COMMANDS = (AlertCommand, AlertsCommand, AlertRemoveCommand, PnlCommand, SearchCommand)


def parse(text: str) -> EngineCommand | None:
    """One of this module's commands, None when ``text`` starts with another verb."""
    words = text.strip().lstrip(":").split()
    if not words or words[0].lower() not in VERB_WORDS:
        return None
    verb, rest = words[0].lower(), words[1:]
    if verb in ALERTS_WORDS or (verb in ALERT_WORDS and not rest):
        if rest:
            raise ParseError(f"{verb}: unexpected {' '.join(rest)!r} (alerts takes nothing; 'alert rm N' removes)")
        return AlertsCommand()
    if verb in ALERT_WORDS:
        if rest[0].lower() in ALERT_REMOVE_WORDS and (len(rest) == 1 or _ID.match(rest[1])):
            ids = []
            for word in rest[1:]:
                m = _ID.match(word)
                if m is None:
                    raise ParseError(f"alert rm: {word!r} is not an alert number (see 'alerts')")
                ids.append(int(m.group(1)))
            if not ids:
                raise ParseError("alert rm: missing the alert number, e.g. 'alert rm 3' (see 'alerts')")
            return AlertRemoveCommand(tuple(dict.fromkeys(ids)))
        try:
            return AlertCommand(parse_alert_spec(rest))
        except AlertError as exc:
            raise ParseError(str(exc)) from None
    if verb in PNL_WORDS:
        days, account = 30, None
        i = 0
        if i < len(rest) and (m := _DAYS.match(rest[i].lower())):
            days = int(m.group(1))
            if not 1 <= days <= MAX_DAYS:
                raise ParseError(f"pnl: days must be from 1 to {MAX_DAYS}, got {days}")
            i += 1
        if i < len(rest) and rest[i].lower() in ACCOUNT_WORDS:
            if i + 1 >= len(rest):
                raise ParseError("pnl: missing the account after 'in', e.g. 'pnl 7 in FUT50K'")
            account = " ".join(rest[i + 1 :])
            i = len(rest)
        if i < len(rest):
            raise ParseError(f"pnl: unexpected {' '.join(rest[i:])!r} (e.g. 'pnl', 'pnl 7', 'pnl 30 in FUT50K')")
        return PnlCommand(days, account)
    query = " ".join(rest).strip()
    if not query:
        raise ParseError(f"{verb}: missing what to look for, e.g. '{verb} apple' or '{verb} MES'")
    if len(query) > MAX_SEARCH:
        raise ParseError(f"{verb}: at most {MAX_SEARCH} characters")
    return SearchCommand(query)


def describe(cmd: EngineCommand) -> str:
    match cmd:
        case AlertCommand(spec=spec):
            extra = "".join(
                [f", then webhook {spec.webhook}" if spec.webhook else "", f", then run {spec.command}" if spec.command
                 else "", f" ({spec.note})" if spec.note else ""]
            )  # fmt: skip
            return f"alert when {spec.describe()}: fires once{extra}"
        case AlertsCommand():
            return "alerts: view, edit and remove price alerts"
        case AlertRemoveCommand(alert_ids=ids):
            return "remove alert " + ", ".join(f"#{i}" for i in ids)
        case PnlCommand(days=days, account=account):
            return f"P&L history: the last {days} day{'s' if days != 1 else ''}, {account or 'every account'}"
        case SearchCommand(text=text):
            return f"search instruments for {text!r} (master lists and every broker)"
    raise TypeError(cmd)  # pragma: no cover


EXAMPLES: tuple[tuple[str, str], ...] = (
    (ALERT_EXAMPLE + " | alert AAPL crosses 190", "price alert (last; or bid/ask/mid before the condition)"),
    ("alerts | alert rm 3", "the alerts screen (edit, remove) | remove one"),
    ("pnl [7] [in FUT50K]", "P&L history: per day, round trips, equity curve"),
    ("search apple | find MES", "look up an instrument at every broker; pick one to watch it"),
)


# --------------------------------------------------------------------------- carrying them out


async def run(app: TtermApp, cmd: EngineCommand) -> str:
    """Carry out one of these commands in the terminal; raises the app's CommandError."""
    from tterm.core.client import EngineError
    from tterm.tui.actions import CommandError

    match cmd:
        case AlertCommand(spec=spec):
            try:
                alert = await app.engine.add_alert(spec)
            except EngineError as exc:
                raise CommandError(str(exc)) from None
            if not alert.armed:
                return f"alert #{alert.alert_id} {alert.describe()}: already true, fired at once"
            return f"alert #{alert.alert_id} armed: {alert.describe()}"
        case AlertsCommand():
            from tterm.tui.screens.alerts import AlertsScreen

            app.push_screen(AlertsScreen())
            return ""
        case AlertRemoveCommand(alert_ids=ids):
            gone = []
            for alert_id in ids:
                try:
                    await app.engine.remove_alert(alert_id)
                except EngineError as exc:
                    done = f" (removed {', '.join(gone)})" if gone else ""
                    raise CommandError(f"{exc}{done}") from None
                gone.append(f"#{alert_id}")
            return f"removed alert{'s' if len(gone) != 1 else ''} {', '.join(gone)}"
        case PnlCommand(days=days, account=account):
            from tterm.tui.screens.pnl import PnlScreen

            acct = app.resolve_account(account) if account is not None else None
            app.push_screen(PnlScreen(days=days, account=acct))
            return ""
        case SearchCommand(text=text):
            from tterm.tui.screens.search import SearchScreen

            app.push_screen(SearchScreen(text))
            return ""
    raise CommandError(f"cannot run {cmd!r}")  # pragma: no cover


def watch_from_search(app: TtermApp, symbol: str) -> None:
    """A symbol search result was chosen in the palette: add it to the shown watchlist."""
    from tterm.tui.actions import CommandError

    async def watch() -> None:
        try:
            message = await app.trade.watch_symbols((symbol,))
        except CommandError as exc:
            app.notify(str(exc), title="watch", severity="error", timeout=10)
            return
        app.notify(message, timeout=4)

    app.run_worker(watch(), group="command", exit_on_error=False)


def announce(app: TtermApp, fired: AlertFired) -> None:
    """A fired alert: a toast that stays a while, and the terminal bell."""
    app.notify(fired.text, title="price alert", severity="warning", timeout=10)
    app.bell()

"""The alerts screen (``alerts``): every price alert the engine holds, armed ones first.

Keys (scope ``alerts``): new, edit (a new alert takes the old one's place, so editing a fired
alert arms it again), remove, close. The list follows the engine live: an alert that fires while
the screen is open turns ``fired`` with its time and price (and the toast and bell still come).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from tterm.core.alerts.model import Alert, AlertError, AlertField, parse_alert_spec
from tterm.core.client import EngineError
from tterm.tui.keymap import bindings
from tterm.tui.modals.prompt import Prompt
from tterm.tui.widgets.tables import SyncedTable

if TYPE_CHECKING:
    from tterm.tui.app import TtermApp

HINT = "SYMBOL [last|bid|ask|mid] > >= < <= crosses PRICE [webhook NAME] [run NAME] [note TEXT]"


def alert_text(alert: Alert) -> str:
    """The alert as typed after ``alert`` (what the edit prompt starts from)."""
    words = [alert.listed or alert.symbol]
    if alert.field is not AlertField.LAST:
        words.append(alert.field.value)
    words += [alert.op.value, str(alert.price)]
    if alert.webhook:
        words += ["webhook", alert.webhook]
    if alert.command:
        words += ["run", alert.command]
    if alert.note:
        words += ["note", alert.note]
    return " ".join(words)


class AlertsTable(SyncedTable):
    COLUMNS_SPEC = (
        ("id", "#", 4),
        ("symbol", "Symbol", 16),
        ("condition", "Condition", 22),
        ("state", "State", 7),
        ("fired", "Fired (CT)", 24),
        ("then", "Then", 16),
        ("note", "Note", 24),
    )


class AlertsScreen(ModalScreen[None]):
    BINDINGS = bindings("alerts")

    DEFAULT_CSS = """
    AlertsScreen { align: center middle; background: $background 60%; }
    AlertsScreen #alerts-box { width: 124; max-width: 100%; height: 80%; max-height: 100%;
                               border: thick $primary; background: $surface; }
    AlertsScreen #alerts-title { padding: 0 1; text-style: bold; }
    AlertsScreen #alerts-empty { padding: 1 1; color: $text-muted; }
    AlertsScreen AlertsTable { height: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._version = -1

    @property
    def tterm(self) -> TtermApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical(id="alerts-box"):
            yield Static("Price alerts", id="alerts-title")
            yield AlertsTable(id="alerts-table")
            yield Static("", id="alerts-empty")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.refresh_rows()
        self.set_interval(0.25, self.refresh_rows)
        self.query_one(AlertsTable).focus()

    @property
    def table(self) -> AlertsTable:
        return self.query_one(AlertsTable)

    def refresh_rows(self) -> None:
        state = self.tterm.bridge.state
        if state.alerts_version == self._version:
            return
        self._version = state.alerts_version
        tz = self.tterm.clock.now_ct().tzinfo
        armed = sorted((a for a in state.alerts.values() if a.armed), key=lambda a: a.alert_id)
        fired = sorted((a for a in state.alerts.values() if not a.armed), key=lambda a: -a.alert_id)
        rows: dict[str, list[Any]] = {}
        for a in armed + fired:
            when = ""
            if a.fired_at is not None:
                when = f"{a.fired_at.astimezone(tz):%m-%d %H:%M:%S} @ {a.fired_price}"
            then = ", ".join(x for x in (f"webhook {a.webhook}" if a.webhook else "",
                                         f"run {a.command}" if a.command else "") if x)  # fmt: skip
            rows[str(a.alert_id)] = [
                self.table.text(f"#{a.alert_id}"),
                self.table.text(a.display_symbol),
                self.table.text(f"{a.field.value} {a.op.value} {a.price}"),
                self.table.text(a.state.value.upper() if a.armed else a.state.value),
                self.table.text(when),
                self.table.text(then),
                self.table.text(a.note),
            ]
        # Rebuilt in order when the set changes (armed first), updated in place otherwise.
        if set(rows) != {k.value for k in self.table.rows} or list(rows) != [k.value for k in self.table.rows]:
            keep = self.table.cursor_key
            self.table.clear()
            for key, cells in rows.items():
                self.table.add_row(*cells, key=key)
            if keep in rows:
                self.table.move_cursor(row=list(rows).index(keep), animate=False)
        else:
            self.table.sync(rows)
        counts = f"{len(armed)} armed, {len(fired)} fired"
        self.query_one("#alerts-title", Static).update(f"Price alerts: {counts}")
        self.query_one("#alerts-empty", Static).update(
            "" if rows else "No alerts. Press a (or type 'alert MES > 6800' in the command bar) to add one."
        )

    def _selected(self) -> Alert | None:
        self.refresh_rows()  # the row under the cursor as the engine has it now
        key = self.table.cursor_key
        return self.tterm.bridge.state.alerts.get(int(key)) if key is not None else None

    # ------------------------------------------------------------------ actions

    def on_data_table_row_selected(self, event: Any) -> None:
        """Enter on a row reaches the table first (DataTable binds it): it edits, like ``e``."""
        event.stop()
        self.action_edit()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_add(self) -> None:
        self._ask("New price alert", "", None)

    def action_edit(self) -> None:
        alert = self._selected()
        if alert is None:
            self.notify("no alert selected", severity="warning")
            return
        self._ask(f"Edit alert #{alert.alert_id} (a new alert takes its place)", alert_text(alert), alert.alert_id)

    def _ask(self, label: str, value: str, replaces: int | None) -> None:
        # The keys typed after a/e wait until the prompt is up, so they are its text (ordered_keys).
        self.tterm.keys_wait_for(self._prompt(label, value, replaces))

    @work(group="alerts-prompt", exit_on_error=False)
    async def _prompt(self, label: str, value: str, replaces: int | None) -> None:
        text = await self.app.push_screen_wait(Prompt(label, placeholder="MES > 6800", hint=HINT, value=value))
        if text:
            await self._save(text, replaces)

    async def _save(self, text: str, replaces: int | None) -> None:
        words = text.split()
        if words and words[0].lower() == "alert":
            words = words[1:]
        try:
            spec = parse_alert_spec(words)
            alert = await self.tterm.engine.add_alert(spec, replaces)
        except (AlertError, EngineError) as exc:
            self.notify(str(exc), title="alert", severity="error", timeout=10)
            return
        verb = "replaces" if replaces is not None else "armed"
        what = f"#{replaces}" if replaces is not None else ""
        self.notify(f"alert #{alert.alert_id} {verb} {what}: {alert.describe()}".replace("  ", " "), timeout=5)

    @work(group="alerts", exit_on_error=False)
    async def action_remove(self) -> None:
        alert = self._selected()
        if alert is None:
            self.notify("no alert selected", severity="warning")
            return
        try:
            await self.tterm.engine.remove_alert(alert.alert_id)
        except EngineError as exc:
            self.notify(str(exc), title="alert", severity="error", timeout=10)
            return
        self.notify(f"removed alert #{alert.alert_id}: {alert.describe()}", timeout=5)

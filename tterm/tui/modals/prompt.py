"""A one-line prompt (add a symbol to the watchlist, write an alert); returns the text, or None on escape."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class Prompt(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]

    DEFAULT_CSS = """
    Prompt { align: center middle; background: $background 60%; }
    Prompt #box { width: 60; max-width: 95%; height: auto; padding: 1 2; border: thick $primary;
                  background: $surface; }
    Prompt #label { padding-bottom: 1; }
    Prompt #hint { color: $text-muted; }
    """

    def __init__(self, label: str, *, placeholder: str = "", hint: str = "", value: str = "") -> None:
        super().__init__()
        self.label = label
        self.placeholder = placeholder
        self.hint = hint
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Static(self.label, id="label", markup=False)
            yield Input(self.value, placeholder=self.placeholder, id="prompt-input")
            if self.hint:
                yield Static(self.hint, id="hint", markup=False)

    def on_mount(self) -> None:
        field = self.query_one("#prompt-input", Input)
        field.cursor_position = len(field.value)  # an edit starts at the end of the text

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)

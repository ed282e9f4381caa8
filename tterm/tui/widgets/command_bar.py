"""The ``:`` command bar: one line at the bottom that takes the same verbs as the palette.

Enter posts :class:`CommandBar.Run` with the text; the app parses it with
:func:`tterm.tui.parse.parse` and, on an error, calls :meth:`CommandBar.show_error` so the text
stays for correcting. Up and down walk the history of this session. One command runs at a time:
an Enter while the previous command is still being carried out (a double press) is ignored.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Static

from tterm.tui.keymap import bindings


class CommandInput(Input):
    BINDINGS = bindings("command_bar")

    def action_close(self) -> None:
        bar = self.parent
        if isinstance(bar, CommandBar):
            bar.close()

    def action_history(self, step: int) -> None:
        bar = self.parent
        if isinstance(bar, CommandBar):
            bar.step_history(step)


class CommandBar(Horizontal):
    DEFAULT_CSS = """
    CommandBar { height: 1; display: none; background: $panel; }
    CommandBar.-open { display: block; }
    CommandBar #cmd-prompt { width: 2; color: $accent; text-style: bold; }
    CommandBar #cmd-input { width: 1fr; border: none; height: 1; padding: 0; background: $panel; }
    CommandBar #cmd-error { width: auto; max-width: 70%; color: $text-error; padding-left: 1; }
    """

    class Run(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.history: list[str] = []
        self._pos = 0
        #: A command was handed to the app and has neither finished (close) nor failed (show_error).
        self.busy = False

    def compose(self) -> ComposeResult:
        yield Static(":", id="cmd-prompt")
        yield CommandInput(id="cmd-input", placeholder="buy 2 MES mkt · flatten all · watch NVDA · help")
        yield Static("", id="cmd-error")

    @property
    def input(self) -> CommandInput:
        return self.query_one("#cmd-input", CommandInput)

    @property
    def is_open(self) -> bool:
        return self.has_class("-open")

    def open(self, text: str = "") -> None:
        self.add_class("-open")
        self.input.value = text
        self.input.cursor_position = len(text)
        self.show_error("")
        self._pos = len(self.history)
        self.input.focus()

    def close(self) -> None:
        self.busy = False
        self.remove_class("-open")
        self.show_error("")
        self.post_message(self.Closed())

    class Closed(Message):
        """The bar closed; the app gives focus back to where it was."""

    def show_error(self, text: str) -> None:
        if text:
            self.busy = False
        self.query_one("#cmd-error", Static).update(text)

    def step_history(self, step: int) -> None:
        if not self.history:
            return
        self._pos = max(0, min(len(self.history), self._pos + step))
        self.input.value = self.history[self._pos] if self._pos < len(self.history) else ""
        self.input.cursor_position = len(self.input.value)

    @on(Input.Submitted, "#cmd-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.busy or not self.is_open:
            return
        text = event.value.strip()
        if not text:
            self.close()
            return
        if not self.history or self.history[-1] != text:
            self.history.append(text)
        self._pos = len(self.history)
        self.busy = True
        self.post_message(self.Run(text))

    @on(Input.Changed, "#cmd-input")
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        self.show_error("")

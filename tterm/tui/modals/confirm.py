"""Confirmation dialogs: the order confirm (every order path ends here), and yes/no for risky
actions (flatten, cancel all, lock, the kill switch). ``y``/``enter`` confirms, ``n``/``escape``
cancels; the dialog returns True or False.

A key pressed before the dialog was on screen is never its answer: a second Enter of a double
press, or the rest of a burst, would otherwise confirm an order nobody had seen. Such keys are
dropped (cancel keys still cancel).

An order confirmation may carry the broker's dry run (``check``): its line says "asking" until
the answer arrives, and Send waits for it. A broker reject keeps Send refused with the reason;
an unavailable check lets the user send, and says so.
"""

from __future__ import annotations

from textual import events, on
from textual._time import get_time  # the clock Textual stamps events with (pinned textual==8.2.8)
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from tterm.tui.keymap import BY_ID, bindings


class ConfirmDialog(ModalScreen[bool]):
    """A yes/no question. ``danger`` colours it as destructive (kill switch, flatten)."""

    BINDINGS = bindings("confirm")

    DEFAULT_CSS = """
    ConfirmDialog { align: center middle; background: $background 60%; }
    ConfirmDialog #dialog {
        width: 76; max-width: 95%; height: auto; padding: 1 2;
        border: thick $primary; background: $surface;
    }
    ConfirmDialog.-danger #dialog { border: thick $error; }
    ConfirmDialog #title { text-style: bold; color: $text-primary; padding-bottom: 1; }
    ConfirmDialog.-danger #title { color: $text-error; }
    ConfirmDialog #headline { text-style: bold; padding-bottom: 1; }
    ConfirmDialog .detail { color: $text-muted; }
    ConfirmDialog .warn { color: $text-warning; text-style: bold; }
    ConfirmDialog #check { padding-top: 1; }
    ConfirmDialog #check.-ok { color: $text-success; }
    ConfirmDialog #check.-warn { color: $text-warning; text-style: bold; }
    ConfirmDialog #check.-error { color: $text-error; text-style: bold; }
    ConfirmDialog .live { color: $badge-live-fg; background: $badge-live-bg; text-style: bold; }
    ConfirmDialog #buttons { height: auto; padding-top: 1; align-horizontal: right; }
    ConfirmDialog Button { margin-left: 2; }
    """

    def __init__(
        self,
        title: str,
        headline: str,
        details: list[str] | None = None,
        *,
        warnings: list[str] | None = None,
        live: bool = False,
        yes: str = "Confirm",
        danger: bool = False,
        check: str | None = None,
    ) -> None:
        super().__init__(classes="-danger" if danger else None)
        self.title_text = title
        self.headline = headline
        self.details = details or []
        self.warnings = warnings or []
        self.live = live
        self.yes_label = yes
        self.danger = danger
        self.shown_at = float("inf")
        #: Keys that arrived before the dialog was shown, and were therefore ignored.
        self.dropped: list[str] = []
        #: (detail line index, symbol): that line is the market, kept live by the app.
        self.live_line: tuple[int, str] | None = None
        #: The broker's dry-run line (None: this broker has none), and why Send is refused now
        #: (waiting for the dry run, or its reject); empty once the user may send.
        self.check = check
        self.check_level = ""
        self.blocked = "waiting for the broker's dry run (Esc cancels)" if check is not None else ""

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.title_text, id="title", markup=False)
            if self.live:
                yield Static(" LIVE ACCOUNT: this sends a real order ", classes="live", markup=False)
            yield Static(self.headline, id="headline", markup=False)
            for n, line in enumerate(self.details):
                yield Static(line, classes="detail", id=f"detail-{n}", markup=False)
            for line in self.warnings:
                yield Static(f"⚠ {line}", classes="warn", markup=False)
            if self.check is not None:
                level = f"-{self.check_level}" if self.check_level else None
                yield Static(self.check, id="check", classes=level, markup=False)
            with Horizontal(id="buttons"):
                yield Button(f"{self.yes_label}  (y)", id="yes", variant="error" if self.danger else "primary")
                yield Button("Cancel  (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#yes", Button).focus()
        self.shown_at = get_time()
        self._paint_check()

    def show_check(self, text: str, level: str, *, blocks: str = "", unavailable: bool = False) -> None:
        """The dry run answered: show it; a reject (``blocks``) keeps Send refused with it."""
        if unavailable:
            text += " — you may still send (y) or cancel (n)"
        self.check, self.check_level = text, level
        self.blocked = f"the broker's dry run rejects it: {blocks}" if blocks else ""
        if self.is_mounted:
            self._paint_check()

    def _paint_check(self) -> None:
        """Draw the dry-run line and hold Send while it is refused (an answer may come before mount)."""
        if self.check is None:
            return
        line = self.query_one("#check", Static)
        line.update(self.check)
        for cls in ("-ok", "-warn", "-error"):
            line.set_class(cls == f"-{self.check_level}", cls)
        self.query_one("#yes", Button).disabled = bool(self.blocked)
        if self.blocked:
            self.query_one("#no", Button).focus()

    def update_detail(self, index: int, text: str) -> None:
        """Replace one detail line (the live market line of an order confirmation)."""
        if 0 <= index < len(self.details) and self.details[index] != text:
            self.details[index] = text
            if self.is_mounted:
                self.query_one(f"#detail-{index}", Static).update(text)

    def on_key(self, event: events.Key) -> None:
        """Drop a key pressed before the dialog appeared, unless it cancels."""
        if event.time >= self.shown_at:
            return
        keymap = getattr(self.app, "_keymap", {}) or {}
        cancel = {k.strip() for k in keymap.get("confirm.no", BY_ID["confirm.no"].key).split(",")}
        if event.key in cancel:
            return
        event.stop()
        event.prevent_default()
        self.dropped.append(event.key)

    def action_yes(self) -> None:
        if self.blocked:
            self.app.bell()
            self.notify(f"not sent: {self.blocked}", severity="error", timeout=6)
            return
        self.dismiss(True)

    def action_no(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "yes":
            self.action_yes()
        else:
            self.dismiss(False)

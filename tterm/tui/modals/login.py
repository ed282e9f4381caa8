"""A broker's browser login, inside the terminal: the same flow as ``tterm login <broker>``.

It asks the engine for the authorize URL (``EngineClient.login_start``), shows it to open in a
browser on any machine, and takes the address the browser was sent to
(``login_complete``). A pasted address that is not the expected redirect (another attempt's
state, no code) is refused with the reason and the dialog stays open for another paste; the
tokens held before stay in force. Escape closes it and changes nothing. It returns the
:class:`~tterm.core.broker.LoginResult`, or None.
"""

from __future__ import annotations

import logging

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from tterm.core.broker import BrokerError, LoginPrompt, LoginResult
from tterm.core.client import EngineClient, EngineError

log = logging.getLogger(__name__)


class LoginScreen(ModalScreen[LoginResult | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", show=False),
        Binding("ctrl+y", "copy_url", "Copy the address", show=False, priority=True),
    ]

    DEFAULT_CSS = """
    LoginScreen { align: center middle; background: $background 60%; }
    LoginScreen #box { width: 96; max-width: 98%; height: auto; padding: 1 2; border: thick $primary;
                       background: $surface; }
    LoginScreen #title { text-style: bold; padding-bottom: 1; }
    LoginScreen #url { color: $text-primary; padding: 1 0; }
    LoginScreen .step { color: $foreground; }
    LoginScreen #error { color: $text-error; height: auto; }
    LoginScreen #status { color: $text-muted; height: auto; }
    LoginScreen #buttons { height: auto; align-horizontal: right; padding-top: 1; }
    LoginScreen Button { margin-left: 2; }
    """

    def __init__(self, client: EngineClient, broker: str) -> None:
        super().__init__()
        self.client = client
        self.broker = broker
        self.prompt: LoginPrompt | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            yield Static(f"Log in to {self.broker}", id="title", markup=False)
            yield Static("1. Open this address in a web browser, on any machine (ctrl+y copies it):", classes="step")
            yield Static("asking the broker for the login address…", id="url", markup=False)
            yield Static("", id="redirect", classes="step", markup=False)
            yield Static("3. Paste the address from the browser's address bar here:", classes="step")
            yield Input(placeholder="https://…?code=…&state=…", id="login-url", disabled=True)
            yield Static("", id="error", markup=False)
            yield Static("", id="status", markup=False)
            with Horizontal(id="buttons"):
                yield Button("Log in  (enter)", id="login", variant="primary", disabled=True)
                yield Button("Cancel  (esc)", id="cancel")

    def on_mount(self) -> None:
        self.run_worker(self._start(), group="login", exclusive=True, exit_on_error=False)

    async def _start(self) -> None:
        try:
            prompt = await self.client.login_start(self.broker)
        except (EngineError, BrokerError) as exc:
            self.query_one("#url", Static).update(f"{exc}")
            self.query_one("#error", Static).update("nothing to do here; escape closes this")
            return
        except Exception as exc:  # an engine without the verb, a bug: shown and logged, never hidden
            log.exception("login_start for %s failed", self.broker)
            self.query_one("#url", Static).update(f"the engine could not start the login: {exc!r}")
            self.query_one("#error", Static).update("nothing to do here; escape closes this")
            return
        self.prompt = prompt
        self.query_one("#url", Static).update(prompt.url)
        self.query_one("#redirect", Static).update(
            f"2. Log in and approve. The browser is then sent to {prompt.redirect_uri} "
            "(that page may fail to load; that is expected)."
        )
        field = self.query_one("#login-url", Input)
        field.disabled = False
        self.query_one("#login", Button).disabled = False
        field.focus()

    def action_copy_url(self) -> None:
        if self.prompt is not None:
            self.app.copy_to_clipboard(self.prompt.url)
            self.query_one("#status", Static).update("address copied (if your terminal allows it)")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_login()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "login":
            self.action_login()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_login(self) -> None:
        if self.prompt is None:
            return
        pasted = self.query_one("#login-url", Input).value.strip()
        if not pasted:
            self.query_one("#error", Static).update("paste the address the browser was sent to first")
            return
        self.run_worker(self._complete(self.prompt, pasted), group="login", exclusive=True, exit_on_error=False)

    async def _complete(self, prompt: LoginPrompt, pasted: str) -> None:
        self.query_one("#error", Static).update("")
        self.query_one("#status", Static).update("logging in…")
        try:
            result = await self.client.login_complete(self.broker, prompt, pasted)
        except Exception as exc:  # a refused address (the reason), or a failure: shown, logged if unexpected
            if not isinstance(exc, EngineError | BrokerError):
                log.exception("login_complete for %s failed", self.broker)
            self.query_one("#status", Static).update("")
            self.query_one("#error", Static).update(f"{exc}. Nothing changed: the old login stays.")
            self.query_one("#login-url", Input).focus()
            return
        self.dismiss(result)

"""What the chart, tape and chain screens share: their own engine event stream, drained per frame.

Each market screen opens its own stream from the :class:`~tterm.core.client.EngineClient` (the
in-process engine and the hub client both hand out as many as asked), drains it on a timer at the
app's frame rate, and closes it, with its feed subscriptions, when it closes. So the main screen's
bridge is untouched and a screen that is not open costs nothing. The user's orders and fills come
from the app's :class:`~tterm.tui.bridge.ScreenState` (kept current by the main frame loop).
Orders from these screens go up as :class:`~tterm.tui.messages.SubmitOrder`, the ticket's path
(pre-trade preview, confirmation, place).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from textual.screen import Screen
from textual.timer import Timer

from tterm.core.client import EngineClient, EventStream
from tterm.core.models import Fill, Instrument, Order, OrderSource, utcnow
from tterm.tui.bridge import ScreenState
from tterm.tui.keymap import bindings
from tterm.tui.modals.prompt import Prompt

if TYPE_CHECKING:
    from tterm.config import ScreensSettings


class MarketScreen(Screen[None]):
    """A full screen over the main layout, fed by its own event stream; escape goes back."""

    BINDINGS = bindings("market_screen")

    DEFAULT_CSS = """
    MarketScreen { background: $surface; }
    """

    def __init__(
        self,
        engine: EngineClient,
        state: ScreenState,
        instrument: Instrument,
        *,
        settings: ScreensSettings,
        hz: float = 20,
        now: Callable[[], datetime] = utcnow,
        tz: tzinfo | None = None,
    ) -> None:
        super().__init__()
        self.engine = engine
        self.state = state
        self.instrument = instrument
        self.settings = settings
        self.hz = hz
        self.now = now
        self.tz = tz
        self.stream: EventStream | None = None
        self._timer: Timer | None = None
        #: Frames flushed and events handled (tests and the bench read them).
        self.flushes = 0
        self.events_seen = 0

    def on_mount(self) -> None:
        # Textual calls every class's on_mount along the MRO: a subclass's own runs first and
        # must not call this one again (the feeds would be subscribed twice).
        self.stream = self.engine.events()
        self._timer = self.set_interval(1 / self.hz, self.flush, name=f"{type(self).__name__}-flush")
        self.run_worker(self.start(), group=f"{type(self).__name__}-start", exit_on_error=False)

    async def on_unmount(self) -> None:
        if self.stream is not None:
            self.stream.close()
        try:
            await self.stop()
        except Exception as exc:  # the engine is going away with the app: say so, do not crash
            self.app.log.warning(f"{type(self).__name__}: stopping feeds failed: {exc}")

    def flush(self) -> None:
        """Drain the stream and hand the events to the screen (once per frame)."""
        stream = self.stream
        if stream is None or not self.is_mounted:
            return
        if getattr(stream, "overflowed", False):
            self.stream = self.engine.events()
            self.notify(f"{self.title or 'screen'}: fell behind the engine; reloading", severity="warning")
            self.run_worker(self.start(), group=f"{type(self).__name__}-start", exit_on_error=False)
            return
        events = stream.drain()
        self.flushes += 1
        self.events_seen += len(events)
        with self.app.batch_update():
            self.apply(events)

    async def start(self) -> None:
        """Subscribe the feeds and load what the screen shows (a worker; errors shown on screen)."""

    async def stop(self) -> None:
        """Unsubscribe the feeds."""

    def apply(self, events: list[Any]) -> None:
        """Show what the drained ``events`` changed."""

    def action_close(self) -> None:
        self.app.pop_screen()

    def action_command(self) -> None:
        """``:`` over a market screen: the main command bar is under it, so a prompt takes the
        line (pushed at once, so the rest of a typed burst lands in it, never in this screen's keys)."""
        self.app.push_screen(
            Prompt(":", placeholder="buy 1 MES 5000 lmt · chart ES 5m · tape NQ · chain SPY",
                   hint="the command bar's verbs; enter runs, escape cancels"),
            self._run_command,
        )  # fmt: skip

    def _run_command(self, text: str | None) -> None:
        from tterm.tui import parse as p

        if not text:
            return
        try:
            cmd = p.parse(text)
        except p.ParseError as exc:
            self.notify(str(exc), title="command", severity="error", timeout=10)
            return
        commands = getattr(self.app, "commands", None)  # the terminal app's CommandRunner
        if commands is None:
            self.notify("commands need the terminal app", severity="error")
            return
        commands.run(cmd, OrderSource.COMMAND_BAR)

    # ------------------------------------------------------------------ the user's orders and fills

    def working_orders(self, symbols: set[str]) -> list[Order]:
        return [o for o in self.state.working_orders() if o.symbol in symbols]

    def fills_of(self, symbols: set[str]) -> list[Fill]:
        return [f for f in self.state.fills.values() if f.symbol in symbols]


__all__ = ["MarketScreen"]

"""Command palette providers: trade verbs typed into Ctrl+P, parsed as you type.

The palette shows the parsed order in plain words (``OrderRequest.describe()``) before anything
is sent; choosing it goes through the same confirmation and engine call as every other order
path. A verb that does not parse shows exactly what is wrong, and choosing it creates nothing.
Textual's own commands (theme, keys, quit...) stay, because the app registers
``App.COMMANDS | {TradeCommands}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.command import DiscoveryHit, Hit, Hits, Provider

from tterm.core.models import ConnectionState

if TYPE_CHECKING:
    from tterm.tui.app import TtermApp


@dataclass(frozen=True, slots=True)
class Plan:
    """What a line of text would do: ``ok`` False means it did not parse (``display`` says why)."""

    ok: bool
    display: str
    help: str
    run: Callable[[], None]


#: Shown when the palette opens with nothing typed (after the recent orders).
DISCOVER: tuple[tuple[str, str], ...] = (
    ("help", "every key binding and command verb"),
    ("flatten all", "close everything in the current account"),
    ("cancel all", "cancel every working order in the current account"),
    ("list", "show the next watchlist"),
    ("go blotter", "working orders"),
    ("go positions", "positions and P&L"),
    ("go risk", "risk meters"),
    ("kill", "kill switch: flatten and cancel everything, every account"),
)


class TradeCommands(Provider):
    """Parses the palette query as a trade or navigation verb (see ``tterm.tui.parse``)."""

    @property
    def tterm(self) -> TtermApp:
        return cast("TtermApp", self.app)  # the palette runs only in TtermApp

    async def search(self, query: str) -> Hits:
        plan = self.tterm.plan_command(query, palette=True)
        if plan is None:
            return
        style = "" if plan.ok else "bold"
        display = Text(plan.display, style=style)
        if not plan.ok:
            display = Text("✗ ", style="bold") + display
        yield Hit(1.0 if plan.ok else 0.9, display, plan.run, text=plan.display, help=plan.help)

    async def discover(self) -> Hits:
        for text in reversed(self.tterm.recent_orders[-5:]):
            plan = self.tterm.plan_command(text, palette=True)
            if plan is not None and plan.ok:
                yield DiscoveryHit(Text(plan.display), plan.run, text=plan.display, help=f"again: {text}")
        for conn in self.tterm.bridge.state.connections.values():
            if conn.state is ConnectionState.NEEDS_LOGIN:
                verb = f"login {conn.broker}"
                plan = self.tterm.plan_command(verb, palette=True)
                if plan is not None and plan.ok:
                    yield DiscoveryHit(
                        Text(f"{verb}: {conn.broker} needs a login"), plan.run, text=verb, help=plan.help
                    )
        for verb, what in DISCOVER:
            plan = self.tterm.plan_command(verb, palette=True)
            if plan is not None and plan.ok:
                yield DiscoveryHit(Text(f"{verb}: {what}"), plan.run, text=verb, help=plan.help)

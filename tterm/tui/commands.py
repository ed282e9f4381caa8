"""Command palette providers: trade verbs typed into Ctrl+P, parsed as you type.

The palette shows the parsed order in plain words (``OrderRequest.describe()``) before anything
is sent; choosing it goes through the same confirmation and engine call as every other order
path. A verb that does not parse shows exactly what is wrong, and choosing it creates nothing.
Textual's own commands (theme, keys, quit...) stay, because the app registers
``App.COMMANDS | {TradeCommands}``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.command import DiscoveryHit, Hit, Hits, Provider

from tterm.core.client import EngineError
from tterm.core.instruments import UnknownSymbol
from tterm.core.models import ConnectionState
from tterm.core.verbs import ParseError
from tterm.tui import engine_verbs
from tterm.tui.screens.search import describe_instrument

if TYPE_CHECKING:
    from tterm.tui.app import TtermApp

#: Seconds the palette's query must stay unchanged before a symbol search asks the brokers.
SEARCH_PAUSE = 0.3


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
    ("alerts", "price alerts: view, edit, remove"),
    ("pnl", "P&L history: per day, round trips, equity curve"),
    ("kill", "kill switch: flatten and cancel everything, every account"),
)


class TradeCommands(Provider):
    """Parses the palette query as a trade or navigation verb (see ``tterm.tui.parse``)."""

    @property
    def tterm(self) -> TtermApp:
        return cast("TtermApp", self.app)  # the palette runs only in TtermApp

    async def search(self, query: str) -> Hits:
        try:
            cmd = engine_verbs.parse(query)
        except ParseError:
            cmd = None  # the plan below shows why
        if isinstance(cmd, engine_verbs.SearchCommand):
            async for hit in self._instrument_hits(cmd.text):
                yield hit
            return
        plan = self.tterm.plan_command(query, palette=True)
        if plan is None:
            return
        style = "" if plan.ok else "bold"
        display = Text(plan.display, style=style)
        if not plan.ok:
            display = Text("✗ ", style="bold") + display
        yield Hit(1.0 if plan.ok else 0.9, display, plan.run, text=plan.display, help=plan.help)

    async def _instrument_hits(self, text: str) -> Hits:
        """``search TEXT``: instruments from the master and every broker that searches; choosing
        one adds it to the shown watchlist. Asked once typing pauses (the palette cancels a
        search when the query changes), so a broker is not queried per keystroke."""
        await asyncio.sleep(SEARCH_PAUSE)
        try:
            found = await self.tterm.engine.search_instruments(text, 20)
        except (EngineError, UnknownSymbol) as exc:
            message = f"search failed: {exc}"
            yield Hit(0.9, Text("✗ " + message, style="bold"), lambda: self.tterm.notify(message, severity="error"),
                      text=message, help="nothing was added")  # fmt: skip
            return
        if not found:
            yield Hit(0.5, Text(f"nothing found for {text!r}"), lambda: None, text=text, help="try another name")
        for i, inst in enumerate(found):
            label = f"watch {describe_instrument(inst)}"
            pick = partial(engine_verbs.watch_from_search, self.tterm, inst.symbol)
            yield Hit(1.0 - i / 1000, Text(label), pick, text=label, help="enter: add it to the shown watchlist")

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

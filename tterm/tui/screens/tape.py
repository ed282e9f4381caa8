"""The time and sales screen (``tape MES``, key ``t`` on the watchlist).

Subscribes the symbol's trades feed (every print, never coalesced) and shows each one with its
time, price, size and aggressor; prints at or above the large-print size (``[screens]
large_print`` per instrument, else the asset class default; ``tape MES 50`` for this screen) are
marked. A broker without a trades feed gets a clear message and an empty tape.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.widgets import Footer

from tterm.core.client import EngineError
from tterm.core.models import Trade
from tterm.tui.screens.market import MarketScreen
from tterm.tui.widgets.tape import PrintList


class TapeScreen(MarketScreen):
    """Every print of one symbol, newest on top."""

    def __init__(self, *args: Any, large: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.large = large
        self.live = False
        self.title = f"tape {self.instrument.symbol}"

    @property
    def tape(self) -> PrintList:
        return self.query_one(PrintList)

    def compose(self) -> ComposeResult:
        yield PrintList(id="tape")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        tape = self.tape
        if self.tz is not None:
            tape.setup(self.instrument, self.large, self.tz)
        else:
            tape.setup(self.instrument, self.large, tape.tz)
        tape.focus()

    async def start(self) -> None:
        contract = self.instrument.symbol
        try:
            await self.engine.subscribe_trades([contract])
        except EngineError as exc:
            self.tape.say(f"no prints: {exc}")
            self.notify(f"tape {contract}: {exc}", severity="error", timeout=10)
            return
        self.live = True

    async def stop(self) -> None:
        if self.live:
            self.live = False
            await self.engine.unsubscribe_trades([self.instrument.symbol])

    def apply(self, events: list[Any]) -> None:
        contract = self.instrument.symbol
        prints = [ev for ev in events if type(ev) is Trade and ev.symbol == contract]
        if prints:
            self.tape.add(prints)


__all__ = ["TapeScreen"]

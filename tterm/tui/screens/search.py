"""Symbol search results (``search TEXT`` in the command bar): instruments from the master lists
and every connected broker that searches (through the engine's ``search_instruments``). Enter
adds the selected one to the shown watchlist; escape closes. In the palette (Ctrl+P) the same
results are the palette's own hits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from tterm.core.client import EngineError
from tterm.core.instruments import UnknownSymbol
from tterm.core.models import Instrument
from tterm.tui.keymap import bindings

if TYPE_CHECKING:
    from tterm.tui.app import TtermApp


def describe_instrument(inst: Instrument) -> str:
    """``MESZ6  future  Micro E-mini S&P 500  CME  exp 2026-12-18``."""
    parts = [inst.symbol.ljust(10), inst.asset_class.value.ljust(7)]
    if inst.description:
        parts.append(inst.description[:48])
    if inst.exchange:
        parts.append(inst.exchange)
    if inst.expiry is not None:
        parts.append(f"exp {inst.expiry}")
    return "  ".join(parts)


class SearchScreen(ModalScreen[None]):
    BINDINGS = bindings("search")

    DEFAULT_CSS = """
    SearchScreen { align: center middle; background: $background 60%; }
    SearchScreen #search-box { width: 100; max-width: 100%; height: 70%; border: thick $primary;
                               background: $surface; }
    SearchScreen #search-title { padding: 0 1; text-style: bold; }
    SearchScreen OptionList { height: 1fr; }
    """

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.found: list[Instrument] = []

    @property
    def tterm(self) -> TtermApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical(id="search-box"):
            yield Static(f"Searching for {self.text!r}…", id="search-title", markup=False)
            yield OptionList(id="search-results")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()
        self.search()

    @work(group="search", exclusive=True, exit_on_error=False)
    async def search(self) -> None:
        title = self.query_one("#search-title", Static)
        try:
            self.found = await self.tterm.engine.search_instruments(self.text, 40)
        except (EngineError, UnknownSymbol) as exc:
            title.update(f"Search for {self.text!r} failed: {exc}")
            return
        results = self.query_one(OptionList)
        results.clear_options()
        results.add_options([Option(describe_instrument(i), id=i.symbol) for i in self.found])
        n = len(self.found)
        title.update(
            f"{n} instrument{'s' if n != 1 else ''} for {self.text!r}: enter watches the selected one"
            if n
            else f"Nothing found for {self.text!r}"
        )
        if n:
            results.highlighted = 0

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self._watch(event.option.id)

    def action_watch(self) -> None:
        results = self.query_one(OptionList)
        if results.highlighted is not None and self.found:
            self._watch(self.found[results.highlighted].symbol)

    @work(group="search-watch", exit_on_error=False)
    async def _watch(self, symbol: str) -> None:
        from tterm.tui.actions import CommandError

        try:
            message = await self.tterm.trade.watch_symbols((symbol,))
        except CommandError as exc:
            self.notify(str(exc), title="watch", severity="error", timeout=10)
            return
        if message:
            self.notify(message, timeout=4)
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)

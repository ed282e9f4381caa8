"""The help screen: every key binding (with the user's remaps applied) and every command verb."""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tterm.tui.engine_verbs import EXAMPLES as ENGINE_VERBS
from tterm.tui.keymap import SCOPES, SPECS, effective_keys, key_label

VERBS: tuple[tuple[str, str], ...] = (
    ("buy 2 MES mkt", "market order (b/s, buy/sell; qty and symbol either way round)"),
    ("sell 1 ES 5000.25 lmt", "limit order; also '@5000.25' or a bare price"),
    ("buy 1 ES stp 5010 [lmt 5011]", "stop, or stop-limit with a limit"),
    ("buy 1 NQ mkt tp 40 sl 20", "bracket in ticks; 'tp @21050' for a price"),
    ("... gtc | ioc | fok | day", "time in force (default day)"),
    ("... in CASH", "another account than the current one"),
    ("flatten MES | flatten all", "close a position, or everything in the account"),
    ("cancel all | cancel MES | cancel <id>", "cancel working orders"),
    ("watch NVDA AMD | unwatch TSLA", "edit the shown watchlist"),
    ("list stocks | list", "show a watchlist (or the next one)"),
    ("sort vol [asc|desc]", "sort the watchlist"),
    ("theme tterm-light", "switch theme"),
    ("account FUT50K", "make another account current"),
    ("lock [reason]", "lock the account for the rest of the session"),
    ("kill", "kill switch: flatten and cancel everything, every account"),
    ("watchlist | ticket | blotter | fills | positions | risk", "go to a pane"),
    ("chart MES 1m | tape MES [50] | chain AAPL [2026-12-18]", "candles, time and sales, option chain (c, t, n)"),
    ("help | quit", "this screen | leave"),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "close", "Close", show=False)]

    DEFAULT_CSS = """
    HelpScreen { align: center middle; background: $background 60%; }
    HelpScreen #help { width: 110; max-width: 98%; height: 90%; border: thick $primary; background: $surface;
                       padding: 0 1; }
    """

    def __init__(self, keymap: Mapping[str, str], confirm_note: str = "") -> None:
        super().__init__()
        self.keymap = dict(keymap)
        self.confirm_note = confirm_note

    def compose(self) -> ComposeResult:
        keys = effective_keys(self.keymap)
        table = Table(box=None, expand=True, show_header=True, header_style="bold", pad_edge=False)
        table.add_column("Key", no_wrap=True, width=16)
        table.add_column("What it does")
        table.add_column("Binding id", no_wrap=True, style="dim")
        for scope, where in SCOPES.items():
            table.add_row("", Text(f"— {where} —", style="bold"), "")
            for spec in SPECS:
                if spec.scope == scope:
                    remapped = " (remapped)" if spec.id in self.keymap else ""
                    table.add_row(key_label(keys[spec.id]), spec.help + remapped, spec.id)
        verbs = Table(box=None, expand=True, show_header=True, header_style="bold", pad_edge=False)
        verbs.add_column("Command (Ctrl+P or :)", no_wrap=True)
        verbs.add_column("What it does")
        for verb, what in (*VERBS, *ENGINE_VERBS):  # then alerts, P&L history, search
            verbs.add_row(verb, what)
        with VerticalScroll(id="help"):
            yield Static(Text("Keys  ·  escape closes  ·  remap any binding by id under [keymap] in config.toml",
                              style="bold"))  # fmt: skip
            if self.confirm_note:
                yield Static(Text(self.confirm_note))
            yield Static(table)
            yield Static(Text(""))
            yield Static(verbs)

    def action_close(self) -> None:
        self.dismiss(None)

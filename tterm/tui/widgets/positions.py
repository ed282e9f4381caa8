"""Positions per account with P&L net of fees, a total row per account, and flatten keys."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

from rich.text import Text

from tterm.core.models import ZERO, Account, Instrument, Position
from tterm.tui import format as fmt
from tterm.tui.keymap import bindings
from tterm.tui.messages import Flatten, PositionVerb
from tterm.tui.widgets.blotter import account_label
from tterm.tui.widgets.tables import SyncedTable

TOTAL = "TOTAL"


def _sort_key(cells: tuple[object, ...]) -> tuple[str, bool, str]:
    account, symbol = str(cells[0]), str(cells[1])
    return (account, symbol == TOTAL, symbol)


class PositionsTable(SyncedTable):
    """Open positions (and today's closed ones, for their realized P&L) plus per-account totals."""

    BINDINGS = bindings("positions")
    CONSUMES = frozenset({"positions"})
    TONE_PREFIX = "positions"
    COMPONENT_CLASSES = SyncedTable.COMPONENT_CLASSES | {
        "positions--up",
        "positions--down",
        "positions--muted",
        "positions--total",
    }
    DEFAULT_CSS = """
    PositionsTable > .positions--up { color: $pnl-up; }
    PositionsTable > .positions--down { color: $pnl-down; }
    PositionsTable > .positions--muted { color: $foreground-muted; }
    PositionsTable > .positions--total { text-style: bold; }
    """
    COLUMNS_SPEC = (
        ("account", "Account", 10),
        ("symbol", "Symbol", 7),
        ("qty", "Qty", 5),
        ("avg", "Avg", 10),
        ("last", "Last", 10),
        ("unreal", "Unrealized", 10),
        ("real", "Realized", 10),
        ("total", "Total net", 10),
    )

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.positions: dict[str, Position] = {}
        self.accounts_by_key: dict[str, str] = {}

    def _pnl(self, value: Decimal, *, total: bool = False) -> Text:
        tone = "up" if value > 0 else "down" if value < 0 else "muted"
        text = self.text(fmt.money(value, signed=True), tone, right=True)
        if total:
            text.stylize(self.tone("total"))
        return text

    def update_positions(
        self,
        positions: list[Position],
        accounts: Mapping[str, Account],
        instrument: Callable[[str], Instrument | None],
    ) -> bool:
        shown = [p for p in positions if p.quantity != 0 or p.realized_pnl != 0 or p.fees != 0]
        rows: dict[str, tuple[Text, ...]] = {}
        totals: dict[str, list[Decimal]] = {}
        self.positions = {}
        self.accounts_by_key = {}
        for p in shown:
            key = f"{p.account}|{p.symbol}"
            self.positions[key] = p
            self.accounts_by_key[key] = p.account
            inst = instrument(p.symbol)
            label = account_label(accounts, p.account)
            qty_tone = "up" if p.quantity > 0 else "down" if p.quantity < 0 else "muted"
            rows[key] = (
                self.text(label),
                self.text(p.symbol),
                self.text(f"{p.quantity:+d}" if p.quantity else "0", qty_tone, right=True),
                self.text(fmt.price(p.avg_price, inst) if p.quantity else fmt.DASH, right=True),
                self.text(fmt.price(p.mark, inst), right=True),
                self._pnl(p.unrealized_pnl),
                self._pnl(p.realized_pnl),
                self._pnl(p.total_pnl),
            )
            t = totals.setdefault(p.account, [ZERO, ZERO, ZERO])
            t[0] += p.unrealized_pnl
            t[1] += p.realized_pnl
            t[2] += p.total_pnl
        for account, (unreal, real, total) in totals.items():
            key = f"{account}|{TOTAL}"
            self.accounts_by_key[key] = account
            bold = self.tone("total")
            rows[key] = (
                self.text(account_label(accounts, account)),
                Text(TOTAL, style=bold),
                self.text(""),
                self.text(""),
                self.text(""),
                self._pnl(unreal, total=True),
                self._pnl(real, total=True),
                self._pnl(total, total=True),
            )
        return self.sync(rows, sort=_sort_key)

    @property
    def selected(self) -> tuple[str, Position | None] | None:
        key = self.cursor_key
        if key is None or key not in self.accounts_by_key:
            return None
        return self.accounts_by_key[key], self.positions.get(key)

    def action_flatten_position(self) -> None:
        sel = self.selected
        if sel is None:
            self.notify("no position selected", severity="warning")
            return
        account, pos = sel
        self.post_message(Flatten(account, pos.symbol if pos is not None else None))

    def _position_verb(self, verb: str) -> None:
        sel = self.selected
        if sel is None or sel[1] is None or not sel[1].quantity:
            self.notify(f"{verb}: select an open position", severity="warning")
            return
        self.post_message(PositionVerb(verb, sel[0], sel[1].symbol))

    def action_reverse_position(self) -> None:
        self._position_verb("reverse")

    def action_breakeven_position(self) -> None:
        self._position_verb("breakeven")

    def action_flatten_account(self) -> None:
        sel = self.selected
        if sel is None:
            self.notify("no position selected", severity="warning")
            return
        self.post_message(Flatten(sel[0], None))

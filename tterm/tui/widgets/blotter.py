"""The blotter: working orders (cancel, modify, cancel all) and today's fills and rejects.

Both tables are updated by diff from the screen state (see :mod:`.tables`), at most a few times
a second, and never cleared. Rows are ordered by their real time (a session spans midnight, so
the clock shown is not enough). The fills pane shows the newest first and keeps it in view as
fills arrive, unless you moved the cursor down to read an older row: that row stays selected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import tzinfo
from typing import Any

from rich.text import Text

from tterm.core.models import Account, Fill, Instrument, Order, OrderRole, OrderType
from tterm.tui import format as fmt
from tterm.tui.keymap import bindings
from tterm.tui.messages import CancelAll, CancelOrder, ModifyOrder
from tterm.tui.widgets.tables import SyncedTable

_ROLE = {OrderRole.ENTRY: "entry", OrderRole.TAKE_PROFIT: "TP", OrderRole.STOP_LOSS: "SL"}
_TYPE = {OrderType.MARKET: "MKT", OrderType.LIMIT: "LMT", OrderType.STOP: "STP", OrderType.STOP_LIMIT: "STP LMT",
         OrderType.TRAILING_STOP: "TRAIL"}  # fmt: skip


def account_label(accounts: Mapping[str, Account], account_id: str) -> str:
    acct = accounts.get(account_id)
    return acct.name if acct is not None and acct.name else account_id


def by_rank(rank: Mapping[tuple[str, str], int]) -> Callable[[Sequence[Any]], int]:
    """A sort key for rows identified by their (account, id) cells, in the order ``rank`` gives."""
    return lambda cells: rank.get((str(cells[1]), str(cells[-1])), -1)


def order_price(order: Order, inst: Instrument | None = None) -> str:
    """The order's price(s) in the instrument's format."""
    if order.order_type is OrderType.MARKET:
        return "market"
    if order.order_type is OrderType.LIMIT:
        return fmt.price(order.limit_price, inst)
    if order.order_type is OrderType.STOP:
        return fmt.price(order.stop_price, inst)
    if order.order_type is OrderType.TRAILING_STOP:
        return f"trail {fmt.price(order.trail_amount, inst)}"
    return f"{fmt.price(order.stop_price, inst)} / {fmt.price(order.limit_price, inst)}"


#: Resolves a contract symbol to its instrument (None when unknown): prices take its decimals.
Lookup = Callable[[str], "Instrument | None"]


def _no_lookup(symbol: str) -> Instrument | None:
    return None


class OrdersTable(SyncedTable):
    """Working orders, oldest first. Keys: cancel, modify, cancel all (scope ``orders``)."""

    BINDINGS = bindings("orders")
    CONSUMES = frozenset({"orders", "fills"})
    TONE_PREFIX = "orders"
    COMPONENT_CLASSES = SyncedTable.COMPONENT_CLASSES | {"orders--up", "orders--down", "orders--muted"}
    DEFAULT_CSS = """
    OrdersTable > .orders--up { color: $pnl-up; }
    OrdersTable > .orders--down { color: $pnl-down; }
    OrdersTable > .orders--muted { color: $foreground-muted; }
    """
    COLUMNS_SPEC = (
        ("time", "Time", 8),
        ("account", "Account", 10),
        ("symbol", "Symbol", 7),
        ("side", "Side", 4),
        ("qty", "Filled", 6),
        ("type", "Type", 7),
        ("price", "Price", 17),
        ("tif", "TIF", 3),
        ("role", "Role", 5),
        ("status", "Status", 8),
        ("id", "Order", 10),
    )

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.orders: dict[str, Order] = {}

    def update_orders(
        self, orders: list[Order], accounts: Mapping[str, Account], tz: tzinfo, instrument: Lookup = _no_lookup
    ) -> bool:
        self.orders = {f"{o.account}|{o.order_id}": o for o in orders}
        rows = {key: self._cells(o, accounts, tz, instrument(o.symbol)) for key, o in self.orders.items()}
        ranked = sorted(self.orders, key=lambda k: (self.orders[k].created_at, self.orders[k].order_id))
        rank = {(str(rows[k][1]), str(rows[k][-1])): i for i, k in enumerate(ranked)}
        return self.sync(rows, sort=by_rank(rank))

    def _cells(
        self, o: Order, accounts: Mapping[str, Account], tz: tzinfo, inst: Instrument | None
    ) -> tuple[Text, ...]:
        side_tone = "up" if o.side.value == "buy" else "down"
        status = o.status.value.replace("_", " ")
        return (
            self.text(fmt.clock(o.created_at.astimezone(tz)), "muted"),
            self.text(account_label(accounts, o.account)),
            self.text(o.symbol),
            self.text(o.side.value.upper(), side_tone),
            self.text(f"{o.filled_quantity}/{o.quantity}", right=True),
            self.text(_TYPE.get(o.order_type, o.order_type.value)),
            self.text(order_price(o, inst), right=True),
            self.text(o.tif.value.upper()),
            self.text(_ROLE.get(o.role, o.role.value)),
            self.text(status),
            self.text(o.order_id, "muted"),
        )

    @property
    def selected(self) -> Order | None:
        key = self.cursor_key
        return self.orders.get(key) if key is not None else None

    def action_cancel_order(self) -> None:
        order = self.selected
        if order is None:
            self.notify("no working order selected", severity="warning")
            return
        self.post_message(CancelOrder(order.account, order.order_id))

    def action_modify_order(self) -> None:
        order = self.selected
        if order is None:
            self.notify("no working order selected", severity="warning")
            return
        self.post_message(ModifyOrder(order))

    def action_cancel_all(self) -> None:
        order = self.selected
        self.post_message(CancelAll(order.account if order is not None else None))


class FillsTable(SyncedTable):
    """Today's fills and rejected orders (with the reason), newest first."""

    CONSUMES = frozenset({"orders", "fills"})
    TONE_PREFIX = "fills"
    COMPONENT_CLASSES = SyncedTable.COMPONENT_CLASSES | {"fills--up", "fills--down", "fills--muted", "fills--reject"}
    DEFAULT_CSS = """
    FillsTable > .fills--up { color: $pnl-up; }
    FillsTable > .fills--down { color: $pnl-down; }
    FillsTable > .fills--muted { color: $foreground-muted; }
    FillsTable > .fills--reject { color: $text-error; text-style: bold; }
    """
    COLUMNS_SPEC = (
        ("time", "Time", 8),
        ("account", "Account", 10),
        ("symbol", "Symbol", 7),
        ("side", "Side", 4),
        ("qty", "Qty", 5),
        ("price", "Price", 10),
        ("fee", "Fee", 7),
        ("detail", "Result", 44),
        ("id", "Id", 10),
    )

    def update_fills(
        self,
        fills: list[Fill],
        rejects: list[Order],
        accounts: Mapping[str, Account],
        tz: tzinfo,
        instrument: Lookup = _no_lookup,
    ) -> bool:
        rows: dict[str, tuple[Text, ...]] = {}
        when: dict[str, tuple[object, ...]] = {}
        for f in fills:
            when[f"fill|{f.broker}|{f.fill_id}"] = (f.ts, f.fill_id)
            rows[f"fill|{f.broker}|{f.fill_id}"] = (
                self.text(fmt.clock(f.ts.astimezone(tz)), "muted"),
                self.text(account_label(accounts, f.account)),
                self.text(f.symbol),
                self.text(f.side.value.upper(), "up" if f.side.value == "buy" else "down"),
                self.text(str(f.quantity), right=True),
                self.text(fmt.price(f.price, instrument(f.symbol)), right=True),
                self.text(fmt.money(f.fee), "muted", right=True),
                self.text(f"filled (order {f.order_id})"),
                self.text(f.fill_id, "muted"),
            )
        for o in rejects:
            when[f"reject|{o.account}|{o.order_id}"] = (o.updated_at, o.order_id)
            rows[f"reject|{o.account}|{o.order_id}"] = (
                self.text(fmt.clock(o.updated_at.astimezone(tz)), "muted"),
                self.text(account_label(accounts, o.account)),
                self.text(o.symbol),
                self.text(o.side.value.upper(), "up" if o.side.value == "buy" else "down"),
                self.text(str(o.quantity), right=True),
                self.text(order_price(o, instrument(o.symbol)), right=True),
                self.text(""),
                self.text(f"REJECTED: {o.reject_reason or 'no reason given'}", "reject"),
                self.text(o.order_id, "muted"),
            )
        ranked = sorted(rows, key=lambda k: when[k])
        rank = {(str(rows[k][1]), str(rows[k][-1])): i for i, k in enumerate(ranked)}
        # Follow the newest unless the user is reading an older row (focused, cursor moved down).
        follow = not self.has_focus or self.cursor_row <= 0
        changed = self.sync(rows, sort=by_rank(rank), reverse=True)
        if follow and self.row_count and (self.cursor_row != 0 or self.scroll_offset.y != 0):
            self.move_cursor(row=0, animate=False, scroll=False)
            self.scroll_to(y=0, animate=False, immediate=True)
        return changed

"""Every key binding of the terminal, with a stable id, in one table.

Widgets take their ``BINDINGS`` from here (:func:`bindings`), the help screen and the README list
this table, and a user keymap in ``config.toml`` (``[keymap] "watchlist.buy" = "f9"``) remaps any
binding by id through ``App.set_keymap``. Keys are Textual key names; several keys for one binding
are comma-separated (``"delete,x"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from textual.binding import Binding, BindingType


@dataclass(frozen=True, slots=True)
class BindingSpec:
    """One binding: ``id`` is what a user keymap names; ``scope`` is where it is active.

    ``label`` is the short footer text; ``help`` the full sentence for the help screen and README.
    """

    id: str
    key: str
    action: str
    label: str
    help: str
    scope: str
    show: bool = True
    priority: bool = False
    key_display: str | None = None


#: Where each scope's bindings are active, for the help screen and the README.
SCOPES: dict[str, str] = {
    "app": "anywhere",
    "watchlist": "watchlist focused",
    "ticket": "order ticket focused",
    "price": "a ticket price field focused",
    "orders": "working orders focused",
    "positions": "positions focused",
    "confirm": "a confirmation dialog",
    "command_bar": "the : command bar",
    # issue 16: price alerts, P&L history, symbol search
    "alerts": "the alerts screen",
    "pnl": "the P&L history screen",
    "search": "the symbol search results",
}

_B = BindingSpec
SPECS: tuple[BindingSpec, ...] = (
    # ---- anywhere
    _B("app.kill_switch", "ctrl+k", "kill_switch", "KILL",
        "Kill switch: flatten and cancel everything in every account (asks first); in a text field "
        "ctrl+k deletes to the end of the line instead", "app", priority=True),
    _B("app.quit", "ctrl+q", "quit", "Quit",
        "Quit tterm (the engine stops with it unless attached to a hub)", "app", show=False, priority=True),
    _B("app.palette", "ctrl+p", "command_palette", "Palette",
        "Command palette: trade verbs, themes, keys", "app", show=False, priority=True),
    _B("app.command_bar", "colon", "command_bar", "Cmd",
        "Command bar: the same verbs as the palette", "app", key_display=":"),
    _B("app.help", "f1", "help", "Help", "Help: every key binding and command verb", "app"),
    _B("app.focus_watchlist", "f2", "focus_pane('watchlist')", "Quotes", "Go to the watchlist", "app", show=False),
    _B("app.focus_ticket", "f3", "focus_pane('ticket')", "Ticket", "Go to the order ticket", "app", show=False),
    _B("app.focus_orders", "f4", "focus_pane('blotter')", "Orders", "Go to the working orders", "app", show=False),
    _B("app.focus_fills", "f5", "focus_pane('fills')", "Fills", "Go to today's fills and rejects", "app", show=False),
    _B("app.focus_positions", "f6", "focus_pane('positions')", "Positions", "Go to the positions", "app", show=False),
    _B("app.focus_risk", "f7", "focus_pane('risk')", "Risk", "Go to the risk meters", "app", show=False),
    _B("app.next_account", "f8", "next_account", "Account", "Make the next account current", "app"),
    # ---- watchlist
    _B("watchlist.buy", "b", "buy", "Buy",
        "Buy at market, the ticket's quantity, the symbol under the cursor", "watchlist"),
    _B("watchlist.sell", "s", "sell", "Sell",
        "Sell at market, the ticket's quantity, the symbol under the cursor", "watchlist"),
    _B("watchlist.ticket", "enter", "ticket", "Ticket",
        "Load the symbol into the order ticket", "watchlist", key_display="⏎"),
    _B("watchlist.add", "a,insert", "add_symbol", "Add", "Add symbols to the shown watchlist", "watchlist", show=False),
    _B("watchlist.remove", "delete,x", "remove_symbol", "Remove",
        "Remove the symbol from the watchlist", "watchlist", key_display="x", show=False),
    _B("watchlist.next_list", "right_square_bracket", "next_list", "Next list",
        "Show the next watchlist", "watchlist", key_display="]"),
    _B("watchlist.prev_list", "left_square_bracket", "prev_list", "Prev list",
        "Show the previous watchlist", "watchlist", show=False, key_display="["),
    _B("watchlist.sort", "o", "sort_next", "Sort", "Sort by the next column (then unsorted)", "watchlist", show=False),
    _B("watchlist.sort_reverse", "O", "sort_reverse", "Reverse", "Reverse the sort order", "watchlist", show=False),
    _B("watchlist.cursor_up", "up,k", "cursor_up", "Up", "Row up", "watchlist", show=False),
    _B("watchlist.cursor_down", "down,j", "cursor_down", "Down", "Row down", "watchlist", show=False),
    _B("watchlist.page_up", "pageup", "page_up", "Page up", "Page up", "watchlist", show=False),
    _B("watchlist.page_down", "pagedown", "page_down", "Page down", "Page down", "watchlist", show=False),
    _B("watchlist.first", "home,g", "first", "First", "First row", "watchlist", show=False),
    _B("watchlist.last", "end,G", "last", "Last", "Last row", "watchlist", show=False),
    # ---- order ticket
    _B("ticket.send", "ctrl+s", "send", "Send",
        "Send the ticket's order (through the confirmation)", "ticket", priority=True),
    _B("ticket.side", "ctrl+t", "toggle_side", "Buy/Sell",
        "Switch the ticket between buy and sell", "ticket", priority=True),
    _B("ticket.reset", "ctrl+r", "reset", "Reset",
        "Clear prices and bracket; quantity 1, market, day", "ticket", priority=True),
    _B("ticket.tick_up", "up", "tick(1)", "+1 tick",
        "Price up one tick (from the market when empty)", "price", show=False),
    _B("ticket.tick_down", "down", "tick(-1)", "-1 tick", "Price down one tick", "price", show=False),
    _B("ticket.ticks_up", "shift+up,pageup", "tick(10)", "+10 ticks", "Price up ten ticks", "price", show=False),
    _B("ticket.ticks_down", "shift+down,pagedown", "tick(-10)", "-10 ticks",
        "Price down ten ticks", "price", show=False),
    # ---- working orders
    _B("orders.cancel", "c,delete", "cancel_order", "Cancel", "Cancel the selected working order", "orders"),
    _B("orders.modify", "m", "modify_order", "Modify", "Modify the selected order's price or quantity", "orders"),
    _B("orders.cancel_all", "C", "cancel_all", "Cancel all",
        "Cancel every working order in the account (asks first)", "orders"),
    # ---- positions
    _B("positions.flatten", "f", "flatten_position", "Flatten",
        "Flatten the selected position (on a TOTAL row: the account)", "positions"),
    _B("positions.flatten_account", "F", "flatten_account", "Flatten acct",
        "Flatten everything in the selected account", "positions"),
    # ---- dialogs
    _B("confirm.yes", "y,enter", "yes", "Yes", "Confirm (send, flatten, cancel, lock)", "confirm"),
    _B("confirm.no", "n,escape", "no", "No", "Cancel: nothing is sent", "confirm"),
    # ---- command bar
    _B("command_bar.close", "escape", "close", "Close", "Close the command bar", "command_bar"),
    _B("command_bar.history_back", "up", "history(-1)", "Back", "Previous command", "command_bar", show=False),
    _B("command_bar.history_forward", "down", "history(1)", "Forward", "Next command", "command_bar", show=False),
    # ---- alerts screen (issue 16)
    _B("alerts.add", "a,n", "add", "New", "New price alert (as typed after 'alert': MES > 6800)", "alerts"),
    _B("alerts.edit", "e,enter", "edit", "Edit",
        "Edit the selected alert (a new alert takes its place; a fired one is armed again)", "alerts"),
    _B("alerts.remove", "x,delete", "remove", "Remove", "Remove the selected alert", "alerts"),
    _B("alerts.close", "escape,q", "close", "Close", "Close the alerts screen", "alerts"),
    # ---- P&L history screen (issue 16)
    _B("pnl.refresh", "r", "refresh", "Refresh", "Read the P&L history again", "pnl"),
    _B("pnl.account", "a", "next_account", "Account", "Next account (every account, then each one)", "pnl"),
    _B("pnl.more_days", "right_square_bracket", "days(1)", "More days",
        "A longer history (7, 30, 90, 365 days)", "pnl", key_display="]"),
    _B("pnl.fewer_days", "left_square_bracket", "days(-1)", "Fewer days", "A shorter history", "pnl",
        key_display="["),
    _B("pnl.close", "escape,q", "close", "Close", "Close the P&L history", "pnl"),
    # ---- symbol search results (issue 16)
    _B("search.watch", "enter", "watch", "Watch", "Add the selected instrument to the shown watchlist", "search",
        key_display="⏎"),
    _B("search.close", "escape", "close", "Close", "Close the search results", "search"),
)  # fmt: skip

BY_ID: dict[str, BindingSpec] = {spec.id: spec for spec in SPECS}


def bindings(scope: str) -> list[BindingType]:
    """The Textual bindings of one scope, with their ids (so a keymap can remap them)."""
    return [
        Binding(
            spec.key,
            spec.action,
            spec.label,
            show=spec.show,
            priority=spec.priority,
            key_display=spec.key_display,
            id=spec.id,
            tooltip=spec.help,
        )
        for spec in SPECS
        if spec.scope == scope
    ]


_KEY_PART = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_+")


def check_keymap(keymap: Mapping[str, str]) -> list[str]:
    """Problems with a user keymap, in plain words (empty when it is fine)."""
    problems: list[str] = []
    for binding_id, keys in keymap.items():
        if binding_id not in BY_ID:
            close = [s for s in BY_ID if s.split(".")[-1] == binding_id.split(".")[-1]]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"keymap: no binding with id {binding_id!r}{hint}")
            continue
        for key in keys.split(","):
            key = key.strip()
            if not key:
                problems.append(f"keymap: {binding_id}: empty key in {keys!r}")
            elif len(key) > 1 and not set(key.lower()) <= _KEY_PART:
                problems.append(f"keymap: {binding_id}: {key!r} is not a key name (e.g. f9, ctrl+b, shift+up)")
    return problems


def effective_keys(keymap: Mapping[str, str]) -> dict[str, str]:
    """Binding id -> the keys in force after the user keymap."""
    return {spec.id: keymap.get(spec.id, spec.key) for spec in SPECS}


def key_label(keys: str) -> str:
    """Keys as a person reads them: ``right_square_bracket`` -> ``]``, ``ctrl+k`` -> ``ctrl+k``."""
    names = {
        "right_square_bracket": "]",
        "left_square_bracket": "[",
        "colon": ":",
        "enter": "enter",
        "question_mark": "?",
    }
    return ", ".join(names.get(k.strip(), k.strip()) for k in keys.split(","))

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
    "dom": "the DOM price ladder focused",
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
        "Buy at market, the symbol under the cursor, its asset class's quantity preset", "watchlist"),
    _B("watchlist.sell", "s", "sell", "Sell",
        "Sell at market, the symbol under the cursor, its asset class's quantity preset", "watchlist"),
    _B("watchlist.ticket", "enter", "ticket", "Ticket",
        "Load the symbol into the order ticket", "watchlist", key_display="⏎"),
    _B("watchlist.add", "a,insert", "add_symbol", "Add", "Add symbols to the shown watchlist", "watchlist", show=False),
    _B("watchlist.remove", "delete,x", "remove_symbol", "Remove",
        "Remove the symbol from the watchlist", "watchlist", key_display="x", show=False),
    _B("watchlist.next_list", "right_square_bracket", "next_list", "Next list",
        "Show the next watchlist", "watchlist", key_display="]"),
    _B("watchlist.prev_list", "left_square_bracket", "prev_list", "Prev list",
        "Show the previous watchlist", "watchlist", show=False, key_display="["),
    _B("watchlist.dom", "d", "dom", "DOM", "Open the DOM price ladder for the symbol under the cursor", "watchlist"),
    _B("watchlist.qty1", "1", "quantity(1)", "Qty 1", "Quantity: the first preset of the row's asset class",
        "watchlist", show=False),
    _B("watchlist.qty2", "2", "quantity(2)", "Qty 2", "Quantity: the second preset", "watchlist", show=False),
    _B("watchlist.qty3", "3", "quantity(3)", "Qty 3", "Quantity: the third preset", "watchlist", show=False),
    _B("watchlist.qty4", "4", "quantity(4)", "Qty 4", "Quantity: the fourth preset", "watchlist", show=False),
    _B("watchlist.qty_up", "plus", "quantity_step(1)", "Qty +", "Quantity: the next larger preset", "watchlist",
        show=False, key_display="+"),
    _B("watchlist.qty_down", "minus", "quantity_step(-1)", "Qty -", "Quantity: the next smaller preset",
        "watchlist", show=False, key_display="-"),
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
        "Clear prices and bracket; the quantity preset, market, day", "ticket", priority=True),
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
    _B("positions.reverse", "r", "reverse_position", "Reverse",
        "Reverse the selected position at market (one order for twice its size; asks first)", "positions"),
    _B("positions.breakeven", "e", "breakeven_position", "Breakeven",
        "Move the selected position's stop to its average price plus fees (or place one there)", "positions"),
    _B("positions.flatten_account", "F", "flatten_account", "Flatten acct",
        "Flatten everything in the selected account", "positions"),
    # ---- DOM price ladder
    _B("dom.buy_limit", "b", "limit('buy')", "Buy lmt", "Buy limit at the cursor's price (below the ask)", "dom"),
    _B("dom.sell_limit", "s", "limit('sell')", "Sell lmt", "Sell limit at the cursor's price (above the bid)", "dom"),
    _B("dom.buy_stop", "B", "stop('buy')", "Buy stp", "Buy stop at the cursor's price (above the ask)", "dom",
        show=False),
    _B("dom.sell_stop", "S", "stop('sell')", "Sell stp", "Sell stop at the cursor's price (below the bid)", "dom",
        show=False),
    _B("dom.join_bid", "left_square_bracket", "join('buy')", "Join bid", "Buy limit at the best bid", "dom",
        key_display="["),
    _B("dom.join_ask", "right_square_bracket", "join('sell')", "Join ask", "Sell limit at the best ask", "dom",
        key_display="]"),
    _B("dom.cancel", "x,delete", "cancel_row", "Cancel", "Cancel the working orders at the cursor's row", "dom"),
    _B("dom.move", "m", "move", "Move",
        "Move an order: m on its row picks it up, m on another row moves it there (a modify); escape drops it",
        "dom"),
    _B("dom.flatten", "f", "position('flatten')", "Flatten", "Flatten the ladder's symbol", "dom"),
    _B("dom.reverse", "r", "position('reverse')", "Reverse", "Reverse the position at market", "dom"),
    _B("dom.breakeven", "e", "position('breakeven')", "Breakeven",
        "Move the stop to the average price plus fees (or place one there)", "dom", show=False),
    _B("dom.centre", "space,home", "centre", "Centre", "Centre the ladder on the market", "dom", key_display="space"),
    _B("dom.cursor_up", "up,k", "cursor(1)", "Up", "One tick up", "dom", show=False),
    _B("dom.cursor_down", "down,j", "cursor(-1)", "Down", "One tick down", "dom", show=False),
    _B("dom.page_up", "pageup", "page(1)", "Page up", "A page of prices up", "dom", show=False),
    _B("dom.page_down", "pagedown", "page(-1)", "Page down", "A page of prices down", "dom", show=False),
    _B("dom.qty1", "1", "quantity(1)", "Qty 1", "Quantity: the first preset", "dom", show=False),
    _B("dom.qty2", "2", "quantity(2)", "Qty 2", "Quantity: the second preset", "dom", show=False),
    _B("dom.qty3", "3", "quantity(3)", "Qty 3", "Quantity: the third preset", "dom", show=False),
    _B("dom.qty4", "4", "quantity(4)", "Qty 4", "Quantity: the fourth preset", "dom", show=False),
    _B("dom.qty_up", "plus", "quantity_step(1)", "Qty +", "Quantity: the next larger preset", "dom", show=False,
        key_display="+"),
    _B("dom.qty_down", "minus", "quantity_step(-1)", "Qty -", "Quantity: the next smaller preset", "dom",
        show=False, key_display="-"),
    _B("dom.close", "escape", "close", "Close", "Drop the order being moved, else close the ladder", "dom"),
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

# ---- charts, time and sales, option chain (tterm.tui.screens.chart, .tape, .chain)
SCOPES.update(
    {
        "chart": "a chart focused",
        "tape": "time and sales focused",
        "chain": "an option chain focused",
        "market_screen": "a chart, tape or chain screen",
    }
)
SPECS = (
    *SPECS,
    _B("watchlist.chart", "c", "open_view('chart')", "Chart",
        "Chart the symbol under the cursor (candles and volume, live)", "watchlist", show=False),
    _B("watchlist.tape", "t", "open_view('tape')", "Tape",
        "Time and sales of the symbol under the cursor", "watchlist", show=False),
    _B("watchlist.chain", "n", "open_view('chain')", "Chain",
        "Option chain of the symbol under the cursor (shares and ETFs)", "watchlist", show=False),
    _B("market_screen.close", "escape", "close", "Back", "Close this screen, back to the watchlist",
        "market_screen"),
    _B("market_screen.command", "colon", "command", "Cmd",
        "Command line over this screen: the command bar's verbs (orders still ask first)", "market_screen",
        key_display=":"),
    _B("chart.left", "left,h", "left", "◀", "Cursor one bar back (pauses following)", "chart", show=False),
    _B("chart.right", "right,l", "right", "▶", "Cursor one bar on (at the newest: follow live)", "chart",
        show=False),
    _B("chart.page_left", "shift+left,pageup", "page_left", "◀◀", "Ten bars back", "chart", show=False),
    _B("chart.page_right", "shift+right,pagedown", "page_right", "▶▶", "Ten bars on", "chart", show=False),
    _B("chart.oldest", "home", "oldest", "Oldest", "The oldest bar loaded", "chart", show=False),
    _B("chart.follow", "end,f", "follow", "Live", "Follow the newest bar (live)", "chart"),
    _B("chart.zoom_in", "plus,equals_sign", "zoom(1)", "Zoom+", "Wider bars (fewer on screen)", "chart",
        key_display="+"),
    _B("chart.zoom_out", "minus", "zoom(-1)", "Zoom-", "Narrower bars (more on screen)", "chart", key_display="-"),
    _B("chart.next_timeframe", "right_square_bracket", "step_timeframe(1)", "TF+",
        "Next longer timeframe", "chart", key_display="]"),
    _B("chart.prev_timeframe", "left_square_bracket", "step_timeframe(-1)", "TF-",
        "Next shorter timeframe", "chart", key_display="["),
    _B("chart.tf_1s", "1", "timeframe('1s')", "1s", "One-second bars", "chart", show=False),
    _B("chart.tf_1m", "2", "timeframe('1m')", "1m", "One-minute bars", "chart", show=False),
    _B("chart.tf_5m", "3", "timeframe('5m')", "5m", "Five-minute bars", "chart", show=False),
    _B("chart.tf_15m", "4", "timeframe('15m')", "15m", "Fifteen-minute bars", "chart", show=False),
    _B("chart.tf_1h", "5", "timeframe('1h')", "1h", "Hourly bars", "chart", show=False),
    _B("chart.tf_1d", "6", "timeframe('1d')", "1d", "Daily bars", "chart", show=False),
    _B("tape.up", "up,k", "scroll_prints(-1)", "Up", "Older print (pauses the tape)", "tape", show=False),
    _B("tape.down", "down,j", "scroll_prints(1)", "Down", "Newer print", "tape", show=False),
    _B("tape.page_up", "pageup", "scroll_prints(-20)", "Page up", "Older prints", "tape", show=False),
    _B("tape.page_down", "pagedown", "scroll_prints(20)", "Page down", "Newer prints", "tape", show=False),
    _B("tape.follow", "end,home,f", "follow", "Live", "Back to the newest prints (live)", "tape"),
    _B("tape.threshold_up", "plus,equals_sign", "threshold(2)", "Big+",
        "Double the large-print threshold", "tape", key_display="+"),
    _B("tape.threshold_down", "minus", "threshold(0.5)", "Big-", "Halve the large-print threshold", "tape",
        key_display="-"),
    _B("chain.up", "up,k", "move(0, -1)", "Up", "Strike up", "chain", show=False),
    _B("chain.down", "down,j", "move(0, 1)", "Down", "Strike down", "chain", show=False),
    _B("chain.calls", "left,h", "side('call')", "Calls", "Cursor on the calls", "chain", show=False),
    _B("chain.puts", "right,l", "side('put')", "Puts", "Cursor on the puts", "chain", show=False),
    _B("chain.next_expiry", "right_square_bracket", "screen.expiry(1)", "Exp+", "Next expiry", "chain",
        key_display="]"),
    _B("chain.prev_expiry", "left_square_bracket", "screen.expiry(-1)", "Exp-", "Previous expiry", "chain",
        key_display="["),
    _B("chain.buy", "b", "screen.leg('buy')", "Buy leg", "Add a buy leg: the option at the cursor", "chain"),
    _B("chain.sell", "s", "screen.leg('sell')", "Sell leg", "Add a sell leg: the option at the cursor", "chain"),
    _B("chain.vertical", "v", "screen.build('vertical')", "Vertical",
        "Vertical: buy the cursor option, sell the next strike out (debit)", "chain"),
    _B("chain.straddle", "d", "screen.build('straddle')", "Straddle",
        "Straddle: buy the call and put at the cursor strike",
        "chain", show=False),
    _B("chain.strangle", "g", "screen.build('strangle')", "Strangle",
        "Strangle: buy the first call above and put below the cursor strike", "chain", show=False),
    _B("chain.iron_condor", "i", "screen.build('iron_condor')", "Condor",
        "Iron condor: sell the put and call one strike either side of the cursor, buy the wings (credit)",
        "chain", show=False),
    _B("chain.flip", "r", "screen.flip", "Reverse", "Reverse every leg (buy <-> sell)", "chain", show=False),
    _B("chain.remove_leg", "delete,x", "screen.remove_leg", "Drop leg", "Remove the last leg", "chain", key_display="x",
        show=False),
    _B("chain.clear", "c", "screen.clear_legs", "Clear", "Remove every leg", "chain", show=False),
    _B("chain.qty_up", "plus,equals_sign", "screen.quantity(1)", "Qty+", "One more of the strategy", "chain",
        key_display="+", show=False),
    _B("chain.qty_down", "minus", "screen.quantity(-1)", "Qty-", "One less of the strategy", "chain", key_display="-",
        show=False),
    _B("chain.price_up", "full_stop,greater_than_sign", "screen.price(1)", "Px+", "Net price up one tick", "chain",
        key_display=".", show=False),
    _B("chain.price_down", "comma,less_than_sign", "screen.price(-1)", "Px-", "Net price down one tick", "chain",
        key_display=",", show=False),
    _B("chain.type_price", "p", "screen.type_price", "Price", "Type the net price (or 'mkt')", "chain", show=False),
    _B("chain.add_symbol", "a", "screen.add_symbol", "Add leg", "Add a leg by option symbol (buy/sell SYMBOL [ratio])",
        "chain", show=False),
    _B("chain.send", "enter,ctrl+s", "screen.send", "Send",
        "Review and send the multi-leg order (through the confirmation)",
        "chain", key_display="⏎"),
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

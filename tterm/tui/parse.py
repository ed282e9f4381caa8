"""The palette's trade-verb parser. It lives in :mod:`tterm.core.verbs` (pure, no Textual) because
the webhook hub parses plain-text alerts with the same grammar; this module re-exports it so the
TUI keeps one import path.
"""

from __future__ import annotations

from typing import cast

from tterm.core.verbs import (
    ACCOUNT_WORDS,
    BUY_WORDS,
    CANCEL_WORDS,
    FLATTEN_WORDS,
    GO_WORDS,
    HELP_WORDS,
    KILL_WORDS,
    LIMIT_WORDS,
    LIST_WORDS,
    LOCK_WORDS,
    LOGIN_WORDS,
    MARKET_WORDS,
    ORDER_EXAMPLE,
    PANES,
    QUIT_WORDS,
    SELL_WORDS,
    SL_WORDS,
    SORT_COLUMNS,
    SORT_WORDS,
    STOP_LIMIT_WORDS,
    STOP_WORDS,
    SWITCH_ACCOUNT_WORDS,
    THEME_WORDS,
    TICK_WORDS,
    TIF_WORDS,
    TP_WORDS,
    UNWATCH_WORDS,
    WATCH_WORDS,
    AccountCommand,
    CancelCommand,
    FlattenCommand,
    FocusCommand,
    HelpCommand,
    KillCommand,
    ListCommand,
    LockCommand,
    LoginCommand,
    OrderCommand,
    ParseError,
    QuitCommand,
    SortCommand,
    ThemeCommand,
    UnwatchCommand,
    WatchCommand,
    build_order,
    format_order,
)
from tterm.core.verbs import Command as TradeCommand
from tterm.core.verbs import describe as _describe_trade
from tterm.core.verbs import parse as _parse_trade

# ---- engine-held tools: price alerts, P&L history, symbol search (tterm.tui.engine_verbs).
# The palette and the command bar only (webhook alerts keep the trade grammar alone).
from tterm.tui import engine_verbs
from tterm.tui.engine_verbs import (
    ENGINE_COMMANDS,
    AlertCommand,
    AlertRemoveCommand,
    AlertsCommand,
    EngineCommand,
    PnlCommand,
    SearchCommand,
)

# ---- screen verbs (chart, tape, chain): tterm.tui.market_verbs, parsed before the trade verbs
from tterm.tui.market_verbs import (
    SCREEN_WORDS,
    ChainCommand,
    ChartCommand,
    ScreenCommand,
    TapeCommand,
    describe_screen,
    parse_screen,
)

Command = TradeCommand | EngineCommand | ScreenCommand


def parse(text: str) -> Command:
    """A trade or navigation verb (:mod:`tterm.core.verbs`), an alert/pnl/search verb, or a
    screen verb (chart, tape, chain); ParseError says what is wrong."""
    cmd = engine_verbs.parse(text)
    if cmd is not None:
        return cmd
    screen = parse_screen(text)
    return screen if screen is not None else _parse_trade(text)


def describe(cmd: Command) -> str:
    if isinstance(cmd, ENGINE_COMMANDS):
        return engine_verbs.describe(cmd)
    shown = describe_screen(cmd)
    # Not an engine or screen verb, so a trade verb: the union cannot narrow itself here.
    return shown if shown is not None else _describe_trade(cast(TradeCommand, cmd))


__all__ = [
    "ACCOUNT_WORDS",
    "BUY_WORDS",
    "CANCEL_WORDS",
    "ENGINE_COMMANDS",
    "FLATTEN_WORDS",
    "GO_WORDS",
    "HELP_WORDS",
    "KILL_WORDS",
    "LIMIT_WORDS",
    "LIST_WORDS",
    "LOCK_WORDS",
    "LOGIN_WORDS",
    "MARKET_WORDS",
    "ORDER_EXAMPLE",
    "PANES",
    "QUIT_WORDS",
    "SCREEN_WORDS",
    "SELL_WORDS",
    "SL_WORDS",
    "SORT_COLUMNS",
    "SORT_WORDS",
    "STOP_LIMIT_WORDS",
    "STOP_WORDS",
    "SWITCH_ACCOUNT_WORDS",
    "THEME_WORDS",
    "TICK_WORDS",
    "TIF_WORDS",
    "TP_WORDS",
    "UNWATCH_WORDS",
    "WATCH_WORDS",
    "AccountCommand",
    "AlertCommand",
    "AlertRemoveCommand",
    "AlertsCommand",
    "CancelCommand",
    "ChainCommand",
    "ChartCommand",
    "Command",
    "EngineCommand",
    "FlattenCommand",
    "FocusCommand",
    "HelpCommand",
    "KillCommand",
    "ListCommand",
    "LockCommand",
    "LoginCommand",
    "OrderCommand",
    "ParseError",
    "PnlCommand",
    "QuitCommand",
    "ScreenCommand",
    "SearchCommand",
    "SortCommand",
    "TapeCommand",
    "ThemeCommand",
    "UnwatchCommand",
    "WatchCommand",
    "build_order",
    "describe",
    "format_order",
    "parse",
]

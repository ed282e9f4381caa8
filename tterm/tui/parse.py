"""The palette's trade-verb parser. It lives in :mod:`tterm.core.verbs` (pure, no Textual) because
the webhook hub parses plain-text alerts with the same grammar; this module re-exports it so the
TUI keeps one import path.
"""

from __future__ import annotations

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
    Command,
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
from tterm.core.verbs import describe as _describe_core
from tterm.core.verbs import parse as _parse_core

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


def parse(text: str) -> Command | ScreenCommand:
    """A trade verb or a screen verb (chart, tape, chain); ParseError says what is wrong."""
    screen = parse_screen(text)
    return screen if screen is not None else _parse_core(text)


def describe(cmd: Command | ScreenCommand) -> str:
    return describe_screen(cmd) or _describe_core(cmd)  # type: ignore[arg-type]


__all__ = [
    "ACCOUNT_WORDS",
    "BUY_WORDS",
    "CANCEL_WORDS",
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
    "CancelCommand",
    "ChainCommand",
    "ChartCommand",
    "Command",
    "FlattenCommand",
    "FocusCommand",
    "HelpCommand",
    "KillCommand",
    "ListCommand",
    "LockCommand",
    "LoginCommand",
    "OrderCommand",
    "ParseError",
    "QuitCommand",
    "ScreenCommand",
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

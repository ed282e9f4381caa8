"""The palette's trade-verb parser. It lives in :mod:`tterm.core.verbs` (pure, no Textual) because
the webhook hub parses plain-text alerts with the same grammar; this module re-exports it so the
TUI keeps one import path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
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

__all__ = [
    "ACCOUNT_WORDS",
    "BUY_WORDS",
    "CANCEL_WORDS",
    "DESK_WORDS",
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
    "BreakevenCommand",
    "CancelCommand",
    "ChainCommand",
    "ChartCommand",
    "Command",
    "DeskCommand",
    "DomCommand",
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
    "ReverseCommand",
    "ScreenCommand",
    "SearchCommand",
    "SortCommand",
    "TapeCommand",
    "ThemeCommand",
    "TrailCommand",
    "UnwatchCommand",
    "WatchCommand",
    "build_order",
    "describe",
    "format_order",
    "parse",
]


# --------------------------------------------------------------------------- desk verbs (the ladder, positions)
# Verbs of the trading desk that only make sense on a screen (the hub's plain-text alerts never
# open a ladder), so they are parsed here, in front of the shared grammar of :mod:`tterm.core.verbs`.

DOM_WORDS = frozenset({"dom", "ladder", "depth"})
REVERSE_WORDS = frozenset({"reverse", "rev", "flip"})
BREAKEVEN_WORDS = frozenset({"breakeven", "be"})
TRAIL_STOP_WORDS = frozenset({"trail", "trailing"})
DESK_WORDS = DOM_WORDS | REVERSE_WORDS | BREAKEVEN_WORDS | TRAIL_STOP_WORDS


@dataclass(frozen=True, slots=True)
class DomCommand:
    """Open the DOM price ladder for ``symbol`` (None: close it)."""

    symbol: str | None


@dataclass(frozen=True, slots=True)
class ReverseCommand:
    symbol: str
    account: str | None = None


@dataclass(frozen=True, slots=True)
class BreakevenCommand:
    symbol: str
    account: str | None = None


@dataclass(frozen=True, slots=True)
class TrailCommand:
    symbol: str
    ticks: int
    account: str | None = None


DeskCommand = DomCommand | ReverseCommand | BreakevenCommand | TrailCommand

_SYMBOL_RE = re.compile(r"^/?[A-Za-z][A-Za-z0-9.!:_-]*$")
MAX_TRAIL_TICKS = 10_000


def _screen_symbol(verb: str, token: str | None, example: str) -> str:
    if token is None:
        raise ParseError(f"{verb}: missing symbol, e.g. {example!r}")
    if not _SYMBOL_RE.match(token) or token.isdigit():
        raise ParseError(f"{verb}: {token[:24]!r} is not a symbol")
    return token.upper()


def _screen_account(verb: str, words: list[str]) -> tuple[list[str], str | None]:
    if len(words) >= 2 and words[-2].lower() in ACCOUNT_WORDS:
        return words[:-2], words[-1]
    if words and words[-1].lower() in ACCOUNT_WORDS:
        raise ParseError(f"{verb}: missing account name after {words[-1]!r}")
    return words, None


def parse_desk(text: str) -> DeskCommand | None:
    """A screen-only verb, or None when ``text`` is not one (then :func:`parse` takes it)."""
    words = text.strip().lstrip(":").split()
    if not words or words[0].lower() not in DESK_WORDS:
        return None
    verb = words[0].lower()
    rest, account = _screen_account(verb, words[1:])
    if verb in DOM_WORDS:
        if account is not None:
            raise ParseError(f"{verb}: the ladder trades the current account; switch with 'account NAME'")
        if rest and rest[0].lower() in ("close", "off"):
            if len(rest) > 1:
                raise ParseError(f"{verb}: unexpected {' '.join(rest[1:])!r}")
            return DomCommand(None)
        symbol = _screen_symbol(verb, rest[0] if rest else None, "dom MES")
        if len(rest) > 1:
            raise ParseError(f"{verb}: unexpected {' '.join(rest[1:])!r}")
        return DomCommand(symbol)
    if verb in TRAIL_STOP_WORDS:
        symbol = _screen_symbol(verb, rest[0] if rest else None, "trail MES 8")
        if len(rest) < 2:
            raise ParseError(f"{verb}: missing the distance in ticks, e.g. 'trail {symbol} 8'")
        raw = rest[1].lower().removesuffix("ticks").removesuffix("tick").removesuffix("t")
        if not raw.isdigit() or not 0 < int(raw[:6]) <= MAX_TRAIL_TICKS or len(raw) > 6:
            raise ParseError(f"{verb}: {rest[1][:24]!r} is not a distance in ticks (1 to {MAX_TRAIL_TICKS:,})")
        if len(rest) > 2:
            raise ParseError(f"{verb}: unexpected {' '.join(rest[2:])!r}")
        return TrailCommand(symbol, int(raw), account)
    example = "reverse MES" if verb in REVERSE_WORDS else "breakeven MES"
    symbol = _screen_symbol(verb, rest[0] if rest else None, example)
    if len(rest) > 1:
        raise ParseError(f"{verb}: unexpected {' '.join(rest[1:])!r}")
    if verb in REVERSE_WORDS:
        return ReverseCommand(symbol, account)
    return BreakevenCommand(symbol, account)


def describe_desk(cmd: DeskCommand) -> str:
    where = f" in {cmd.account or 'the current account'}" if not isinstance(cmd, DomCommand) else ""
    match cmd:
        case DomCommand(symbol=None):
            return "close the DOM price ladder"
        case DomCommand(symbol=s):
            return f"open the DOM price ladder for {s}"
        case ReverseCommand(symbol=s):
            return f"REVERSE {s}{where}: one market order for twice the position"
        case BreakevenCommand(symbol=s):
            return f"BREAKEVEN {s}{where}: move the stop to the average price plus fees"
        case TrailCommand(symbol=s, ticks=t):
            return f"TRAIL {s}{where}: a trailing stop {t} ticks behind the market for the position"
    raise TypeError(f"not a desk command: {cmd!r}")  # pragma: no cover


# --------------------------------------------------------------------------- one grammar

Command = TradeCommand | EngineCommand | ScreenCommand | DeskCommand


def parse(text: str) -> Command:
    """Any verb the terminal takes: an alert/pnl/search verb, a market screen (chart, tape,
    chain), a desk verb (dom, reverse, breakeven, trail) or a trade or navigation verb of
    :mod:`tterm.core.verbs`; ParseError says what is wrong."""
    for special in (engine_verbs.parse, parse_screen, parse_desk):
        cmd = special(text)
        if cmd is not None:
            return cmd
    return _parse_trade(text)


def describe(cmd: Command) -> str:
    if isinstance(cmd, ENGINE_COMMANDS):
        return engine_verbs.describe(cmd)
    if isinstance(cmd, DomCommand | ReverseCommand | BreakevenCommand | TrailCommand):
        return describe_desk(cmd)
    shown = describe_screen(cmd)
    # Not an engine, desk or screen verb, so a trade verb: the union cannot narrow itself here.
    return shown if shown is not None else _describe_trade(cast(TradeCommand, cmd))

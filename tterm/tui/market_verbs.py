"""The verbs that open market screens: ``chart MES 1m``, ``tape MES [50]``, ``chain AAPL [2026-12-18]``.

Pure (no Textual): parsed ahead of the trade verbs by :func:`tterm.tui.parse.parse`. They live
in the TUI rather than in :mod:`tterm.core.verbs` because the hub's text alerts have no screens
to open. A malformed one raises the same :class:`~tterm.core.verbs.ParseError` with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from tterm.core.models import ModelError, Timeframe
from tterm.core.verbs import ParseError, _symbol, _tokens

CHART_WORDS = frozenset({"chart", "candles", "ch"})
TAPE_WORDS = frozenset({"tape", "tns", "t&s", "prints", "sales"})
CHAIN_WORDS = frozenset({"chain", "options", "opt"})
SCREEN_WORDS = CHART_WORDS | TAPE_WORDS | CHAIN_WORDS

_INT = re.compile(r"^\d{1,9}$")


@dataclass(frozen=True, slots=True)
class ChartCommand:
    """Open a live candle chart; ``timeframe`` None is the configured default (1m)."""

    symbol: str
    timeframe: Timeframe | None = None


@dataclass(frozen=True, slots=True)
class TapeCommand:
    """Open time and sales; ``large`` overrides the large-print threshold for this screen."""

    symbol: str
    large: int | None = None


@dataclass(frozen=True, slots=True)
class ChainCommand:
    """Open the option chain of an underlying, at ``expiry`` (None: the nearest)."""

    symbol: str
    expiry: date | None = None


ScreenCommand = ChartCommand | TapeCommand | ChainCommand


def parse_screen(text: str) -> ScreenCommand | None:
    """The screen verb in ``text``, None when it is not one (ParseError when it is, malformed)."""
    tokens = _tokens(text)
    if not tokens or tokens[0].lower() not in SCREEN_WORDS:
        return None
    verb, args = tokens[0].lower(), tokens[1:]
    if not args:
        example = {"chart": "chart MES 1m", "tape": "tape MES", "chain": "chain AAPL"}[_kind(verb)]
        raise ParseError(f"{verb}: missing symbol, e.g. '{example}'")
    symbol = _symbol(args[0])
    rest = args[1:]
    if len(rest) > 1:
        raise ParseError(f"{verb}: unexpected {' '.join(rest[1:])!r}")
    arg = rest[0] if rest else None
    if verb in CHART_WORDS:
        if arg is None:
            return ChartCommand(symbol)
        try:
            return ChartCommand(symbol, Timeframe.parse(arg))
        except ModelError as exc:
            raise ParseError(f"{verb}: {exc}") from None
    if verb in TAPE_WORDS:
        if arg is None:
            return TapeCommand(symbol)
        if not _INT.match(arg) or int(arg) < 1:
            raise ParseError(f"{verb}: the large-print size {arg!r} must be a whole number of at least 1")
        return TapeCommand(symbol, int(arg))
    if arg is None:
        return ChainCommand(symbol)
    try:
        return ChainCommand(symbol, date.fromisoformat(arg))
    except ValueError:
        raise ParseError(f"{verb}: expiry {arg!r} is not a date (write it 2026-12-18)") from None


def _kind(verb: str) -> str:
    return "chart" if verb in CHART_WORDS else "tape" if verb in TAPE_WORDS else "chain"


def describe_screen(cmd: object) -> str | None:
    """Plain words for a screen verb (None for any other command)."""
    match cmd:
        case ChartCommand(symbol=s, timeframe=tf):
            return f"chart {s} ({tf.value if tf else 'default timeframe'}): live candles and volume"
        case TapeCommand(symbol=s, large=n):
            return f"time and sales of {s}" + (f", prints of {n:,}+ highlighted" if n else "")
        case ChainCommand(symbol=s, expiry=e):
            return f"option chain of {s}" + (f" for {e:%Y-%m-%d}" if e else ", nearest expiry")
    return None


__all__ = [
    "CHAIN_WORDS",
    "CHART_WORDS",
    "SCREEN_WORDS",
    "TAPE_WORDS",
    "ChainCommand",
    "ChartCommand",
    "ScreenCommand",
    "TapeCommand",
    "describe_screen",
    "parse_screen",
]

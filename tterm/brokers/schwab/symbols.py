"""Schwab's symbols, parsed and built in one place: options, futures, equities.

- Options (A7): the root padded with spaces to six characters, ``YYMMDD``, ``C`` or ``P``, and the
  strike times 1000 in eight digits: ``AAPL  261218C00190000``. That is the OCC form tterm's
  instrument master already speaks (``InstrumentMaster`` parses it), so an option's tterm symbol
  and its Schwab symbol are the same string. Roots with digits (adjusted series, ``AAPL1``) are
  outside the master's grammar: :func:`option_instrument` builds those instruments here.
- Futures (A7, A8.4): ``/ES`` (the front month) or ``/ESZ26`` (month code, two-digit year);
  tterm writes ``ESZ6``.
- Equities and ETFs: the ticker as is; indexes start with ``$`` (quotes only).

Everything here is pure: no I/O, no vendor JSON beyond the symbol strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from tterm.core.instruments import MONTH_CODES, InstrumentMaster, UnknownSymbol, option_tick_table
from tterm.core.models import AssetClass, Instrument, ModelError, OptionRight

_OPTION = re.compile(r"^(?P<root>[A-Z][A-Z0-9.]{0,5}) *(?P<ymd>\d{6})(?P<cp>[CP])(?P<strike>\d{8})$")
_FUTURE = re.compile(r"^/(?P<root>[A-Z0-9]{1,4}?)(?:(?P<month>[FGHJKMNQUVXZ])(?P<year>\d{2}))?$")
EXAMPLE = "AAPL  261218C00190000"


class SymbolError(ModelError):
    """A symbol that does not follow Schwab's format; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class OptionSymbol:
    """The parts of a Schwab option symbol."""

    root: str
    expiry: date
    right: OptionRight
    strike: Decimal

    @property
    def symbol(self) -> str:
        return build_option_symbol(self.root, self.expiry, self.right, self.strike)


def parse_option_symbol(text: str) -> OptionSymbol:
    """``AAPL  261218C00190000`` (any padding, any case) -> its parts, or :class:`SymbolError`."""
    s = text.strip().upper()
    m = _OPTION.match(s)
    if m is None:
        raise SymbolError(
            f"{text!r} is not a Schwab option symbol: expected the root (up to 6 characters), the expiry as "
            f"YYMMDD, C or P, and the strike times 1000 in 8 digits, e.g. {EXAMPLE!r}"
        )
    ymd = m["ymd"]
    try:
        expiry = date(2000 + int(ymd[:2]), int(ymd[2:4]), int(ymd[4:]))
    except ValueError:
        raise SymbolError(f"{text!r}: {ymd} is not a date (YYMMDD)") from None
    strike = Decimal(m["strike"]) / 1000
    if strike <= 0:
        raise SymbolError(f"{text!r}: the strike is zero")
    return OptionSymbol(m["root"], expiry, OptionRight.CALL if m["cp"] == "C" else OptionRight.PUT, strike)


def build_option_symbol(root: str, expiry: date, right: OptionRight, strike: Decimal) -> str:
    """The Schwab (and tterm) option symbol; raises :class:`SymbolError` for parts it cannot carry."""
    root = root.strip().upper()
    if not re.fullmatch(r"[A-Z][A-Z0-9.]{0,5}", root):
        raise SymbolError(f"option root {root!r} must be 1 to 6 letters or digits, starting with a letter")
    try:
        thousandths = Decimal(strike) * 1000
    except InvalidOperation:
        raise SymbolError(f"strike {strike!r} is not a number") from None
    if thousandths <= 0 or thousandths != thousandths.to_integral_value() or thousandths >= 10**8:
        raise SymbolError(f"strike {strike} cannot be written in Schwab's 8 digits of thousandths")
    cp = "C" if right is OptionRight.CALL else "P"
    return f"{root:<6}{expiry:%y%m%d}{cp}{int(thousandths):08d}"


def option_instrument(parts: OptionSymbol, description: str = "", multiplier: Decimal = Decimal(100)) -> Instrument:
    """An option instrument built from its parts (roots the master cannot parse, e.g. ``AAPL1``)."""
    underlying = re.sub(r"\d+$", "", parts.root) or parts.root
    table = option_tick_table(underlying)
    tick = table[0][1]
    kind = "Call" if parts.right is OptionRight.CALL else "Put"
    return Instrument(
        symbol=parts.symbol,
        asset_class=AssetClass.OPTION,
        tick_size=tick,
        tick_value=tick * multiplier,
        tick_table=table if len(table) > 1 else (),
        description=description or f"{parts.root} {parts.expiry:%d %b %y} {parts.strike.normalize():f} {kind}",
        underlying=underlying,
        expiry=parts.expiry,
        strike=parts.strike,
        right=parts.right,
    )


def is_future(symbol: str) -> bool:
    return symbol.startswith("/")


def future_to_core(symbol: str, master: InstrumentMaster) -> Instrument:
    """``/ES`` (front) or ``/ESZ26`` -> tterm's contract (``ESZ6``); UnknownSymbol if tterm lacks the root."""
    m = _FUTURE.match(symbol.strip().upper())
    if m is None:
        raise SymbolError(f"{symbol!r} is not a Schwab futures symbol (e.g. /ES or /ESZ26)")
    if m["month"] is None:
        return master.front(m["root"])
    return master.resolve(f"{m['root']}{m['month']}{m['year']}")


def future_to_schwab(inst: Instrument, master: InstrumentMaster) -> str:
    """tterm's contract (``ESZ6``) -> Schwab's ``/ESZ26``."""
    parsed = master.parse_contract(inst.symbol)
    if parsed is None:
        raise SymbolError(f"{inst.symbol} is not a futures contract")
    root, year, month = parsed
    return f"/{root}{MONTH_CODES[month - 1]}{year % 100:02d}"


def to_schwab(inst: Instrument, master: InstrumentMaster) -> str:
    """The symbol Schwab knows ``inst`` by."""
    if inst.asset_class is AssetClass.FUTURE:
        return future_to_schwab(inst, master)
    if inst.asset_class is AssetClass.OPTION:
        return parse_option_symbol(inst.symbol).symbol  # normalised padding
    return inst.symbol


def to_core(symbol: str, master: InstrumentMaster) -> Instrument:
    """The instrument behind a Schwab symbol: the master's, or one built here for option roots the
    master cannot parse. Raises :class:`UnknownSymbol` / :class:`SymbolError` naming the symbol."""
    text = symbol.strip().upper()
    if is_future(text):
        return future_to_core(text, master)
    if _OPTION.match(text):
        parts = parse_option_symbol(text)
        try:
            return master.resolve(parts.symbol)
        except (UnknownSymbol, ModelError):
            return option_instrument(parts)
    return master.resolve(text)


def equity_instrument(symbol: str, description: str = "") -> Instrument:
    """An equity or ETF the master does not list: cents at $1 and above, 0.0001 below (Reg NMS)."""
    return Instrument(
        symbol=symbol.strip().upper(),
        asset_class=AssetClass.EQUITY,
        tick_size=Decimal("0.0001"),
        tick_value=Decimal("0.0001"),
        tick_table=((Decimal(0), Decimal("0.0001")), (Decimal(1), Decimal("0.01"))),
        description=description,
    )

"""Positions and P&L per account and instrument, built from fills, net of fees.

Average-cost accounting: adding to a position moves the average price; reducing it realizes
``(exit - avg) * closed_qty * point_value`` with the sign of the position; a fill that crosses
zero closes the old side at the average and opens the remainder at the fill price. Every fee is
taken from realized P&L, so ``realized_pnl`` is always net. The point value comes from the
instrument master, which is what makes an MES tick worth $1.25 and an ES tick $12.50.

The running average is kept as an exact fraction (an average of 1 @ 4750.00 and 2 @ 4750.25 has
no finite decimal), so no rounding error accumulates over a day of scaling in and out; money is
rounded to the cent, and the average price to 1e-8, only where a Position leaves the book.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

from tterm.core.instruments import InstrumentMaster
from tterm.core.models import Fill, Instrument, Position, Quote, utcnow

CENT = Decimal("0.01")
PRICE_QUANTUM = Decimal("1e-8")
_F0 = Fraction(0)


def _money(value: Fraction) -> Decimal:
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(CENT, ROUND_HALF_EVEN)


def _price(value: Fraction) -> Decimal:
    if value.denominator == 1:
        return Decimal(value.numerator)
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return exact.quantize(PRICE_QUANTUM, ROUND_HALF_EVEN).normalize()


@dataclass(slots=True)
class _Lot:
    """Mutable running state of one (account, symbol), exact (fractions, never rounded)."""

    instrument: Instrument
    point_value: Fraction
    quantity: int = 0
    avg_price: Fraction = _F0
    realized_gross: Fraction = _F0
    fees: Fraction = _F0

    def unrealized(self, mark: Decimal | None) -> Fraction:
        if mark is None or self.quantity == 0:
            return _F0
        return (Fraction(mark) - self.avg_price) * self.quantity * self.point_value


@dataclass(frozen=True, slots=True)
class AccountPnl:
    """Today's P&L of one account: realized and fees are net-able, unrealized is at the marks."""

    realized_net: Decimal
    unrealized: Decimal
    fees: Decimal

    @property
    def total(self) -> Decimal:
        return self.realized_net + self.unrealized


class Book:
    """The engine's own position and P&L ledger (brokers are cross-checked against it)."""

    def __init__(self, instruments: InstrumentMaster) -> None:
        self._instruments = instruments
        self._lots: dict[tuple[str, str], _Lot] = {}
        self._marks: dict[str, Decimal] = {}
        self._by_symbol: dict[str, set[str]] = {}

    # ------------------------------------------------------------------ updates

    def apply_fill(self, fill: Fill) -> Position:
        """Book one fill and return the resulting position."""
        lot = self._lot(fill.account, fill.symbol)
        pv = lot.point_value
        qty = fill.signed_quantity
        price = Fraction(fill.price)
        lot.fees += Fraction(fill.fee)
        old = lot.quantity
        if old == 0 or (old > 0) == (qty > 0):
            new = old + qty
            lot.avg_price = (lot.avg_price * abs(old) + price * abs(qty)) / abs(new)
            lot.quantity = new
        else:
            closing = min(abs(qty), abs(old))
            direction = 1 if old > 0 else -1
            lot.realized_gross += (price - lot.avg_price) * closing * direction * pv
            new = old + qty
            lot.quantity = new
            if new == 0:
                lot.avg_price = _F0
            elif (new > 0) != (old > 0):
                lot.avg_price = price  # crossed zero: the remainder opened at this fill
        if fill.symbol not in self._marks:
            self._marks[fill.symbol] = price
        return self.position(fill.account, fill.symbol)

    def mark(self, quote: Quote) -> bool:
        """Update the mark for a symbol; True if any position is valued at it."""
        mark = quote.mark
        if mark is None:
            return False
        self._marks[quote.symbol] = mark
        return quote.symbol in self._by_symbol

    def set_mark(self, symbol: str, price: Decimal) -> None:
        self._marks[symbol] = price

    def seed(self, account: str, symbol: str, quantity: int, avg_price: Decimal) -> Position:
        """Adopt a broker-reported position (at start-up, or to heal a mismatch); keeps realized."""
        lot = self._lot(account, symbol)
        lot.quantity = quantity
        lot.avg_price = Fraction(avg_price) if quantity else _F0
        return self.position(account, symbol)

    def reset_day(self) -> None:
        """Start a new trading day: realized P&L and fees go back to zero, positions carry over."""
        for key, lot in list(self._lots.items()):
            lot.realized_gross = _F0
            lot.fees = _F0
            if lot.quantity == 0:
                self._drop(key)

    # ------------------------------------------------------------------ queries

    def position(self, account: str, symbol: str) -> Position:
        lot = self._lots.get((account, symbol))
        if lot is None:
            return Position(account=account, symbol=symbol, quantity=0)
        mark = self._marks.get(symbol)
        return Position(
            account=account,
            symbol=symbol,
            quantity=lot.quantity,
            avg_price=_price(lot.avg_price),
            mark=mark,
            realized_pnl=_money(lot.realized_gross - lot.fees),
            unrealized_pnl=_money(lot.unrealized(mark)),
            fees=_money(lot.fees),
            ts=utcnow(),
        )

    def positions(self, account: str | None = None) -> list[Position]:
        """Every position with a quantity or with P&L today."""
        return [self.position(a, s) for (a, s) in self._lots if account is None or a == account]

    def open_positions(self, account: str | None = None) -> list[Position]:
        return [p for p in self.positions(account) if p.quantity != 0]

    def accounts_holding(self, symbol: str) -> set[str]:
        return set(self._by_symbol.get(symbol, ()))

    def quantity(self, account: str, symbol: str) -> int:
        lot = self._lots.get((account, symbol))
        return lot.quantity if lot else 0

    def pnl(self, account: str) -> AccountPnl:
        realized = unrealized = fees = _F0
        for (a, s), lot in self._lots.items():
            if a != account:
                continue
            realized += lot.realized_gross - lot.fees
            fees += lot.fees
            unrealized += lot.unrealized(self._marks.get(s))
        return AccountPnl(realized_net=_money(realized), unrealized=_money(unrealized), fees=_money(fees))

    def mark_price(self, symbol: str) -> Decimal | None:
        return self._marks.get(symbol)

    # ------------------------------------------------------------------ internals

    def _lot(self, account: str, symbol: str) -> _Lot:
        key = (account, symbol)
        lot = self._lots.get(key)
        if lot is None:
            inst = self._instruments.resolve(symbol)
            lot = _Lot(instrument=inst, point_value=Fraction(inst.point_value))
            self._lots[key] = lot
            self._by_symbol.setdefault(symbol, set()).add(account)
        return lot

    def _drop(self, key: tuple[str, str]) -> None:
        del self._lots[key]
        holders = self._by_symbol.get(key[1])
        if holders is not None:
            holders.discard(key[0])
            if not holders:
                del self._by_symbol[key[1]]

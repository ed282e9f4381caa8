"""Positions and P&L per account and instrument, built from fills, net of fees.

FIFO lots, the way futures brokers report P&L: a fill that reduces a position closes the oldest
open lots first and realizes ``(exit - lot price) * qty * point_value`` for each, with the
position's sign; a fill that crosses zero closes everything and opens the remainder at its price.
Because every lot keeps its own fill price, P&L is exact in plain decimals — no average is ever
divided out — and the realized/open split matches the broker's. Every fee is taken from realized
P&L, so ``realized_pnl`` is always net. The point value comes from the instrument master, which is
what makes an MES tick worth $1.25 and an ES tick $12.50. Money is rounded to the cent, and the
displayed average price to 1e-8, only where a Position leaves the book.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

from tterm.core.instruments import InstrumentMaster
from tterm.core.models import ZERO, Fill, Instrument, Position, Quote, utcnow

CENT = Decimal("0.01")
PRICE_QUANTUM = Decimal("1e-8")


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_EVEN)


@dataclass(slots=True)
class _Lot:
    """Mutable running state of one (account, symbol): open FIFO lots (signed qty, price)."""

    instrument: Instrument
    point_value: Decimal
    lots: deque[list] = field(default_factory=deque)  # [signed quantity, price], oldest first
    quantity: int = 0
    cost: Decimal = ZERO  # sum of signed quantity * price over the open lots
    realized_gross: Decimal = ZERO
    fees: Decimal = ZERO

    @property
    def avg_price(self) -> Decimal:
        if self.quantity == 0:
            return ZERO
        avg = self.cost / self.quantity
        return avg if avg == avg.quantize(PRICE_QUANTUM) else avg.quantize(PRICE_QUANTUM, ROUND_HALF_EVEN)

    def unrealized(self, mark: Decimal | None) -> Decimal:
        if mark is None or self.quantity == 0:
            return ZERO
        return (mark * self.quantity - self.cost) * self.point_value


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
        lot.fees += fill.fee
        remaining = fill.signed_quantity
        price = fill.price
        lots = lot.lots
        # Close the oldest opposite lots first.
        while remaining and lots and (lots[0][0] > 0) != (remaining > 0):
            head = lots[0]
            closing = min(abs(remaining), abs(head[0]))
            direction = 1 if head[0] > 0 else -1
            lot.realized_gross += (price - head[1]) * closing * direction * lot.point_value
            head[0] -= closing * direction
            lot.cost -= head[1] * closing * direction
            lot.quantity -= closing * direction
            remaining += closing * direction
            if head[0] == 0:
                lots.popleft()
        if remaining:
            lots.append([remaining, price])
            lot.cost += price * remaining
            lot.quantity += remaining
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
        lot.lots.clear()
        if quantity:
            lot.lots.append([quantity, avg_price])
        lot.quantity = quantity
        lot.cost = avg_price * quantity
        return self.position(account, symbol)

    def reset_day(self) -> None:
        """Start a new trading day: realized P&L and fees go back to zero, positions carry over."""
        for key, lot in list(self._lots.items()):
            lot.realized_gross = ZERO
            lot.fees = ZERO
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
            avg_price=lot.avg_price,
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
        realized = unrealized = fees = ZERO
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
            lot = _Lot(instrument=inst, point_value=inst.point_value)
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

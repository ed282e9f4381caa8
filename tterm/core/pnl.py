"""P&L history from the journal's fills: per-day results, round-trip trades and an equity curve.

Pure: fills in, a :class:`PnlReport` out (the engine's ``pnl_history`` verb and ``tterm pnl``
read the fills from the journal and call :func:`compute`).

- **Round trips** are matched FIFO per account and contract: an exit closes the oldest open lot
  first; a partial fill closes part of a lot (the rest stays open at its price) and an exit
  larger than the position closes it and opens the remainder the other way (a reversal). Each
  closed piece is one round trip: entry and exit price and time, quantity, gross P&L, fees (the
  entry fill's and the exit fill's, shared by quantity) and net.
- **Per day** (the CME trade date, which turns at 17:00 CT): gross P&L realized that day, every
  fee paid that day, net, the round trips closed, wins and losses, fills and contracts traded.
- **The equity curve** is the cumulative net P&L at every fill in the window, starting at 0:
  each fill adds what it realized and subtracts its fee. So when every position is flat, the
  curve's last point equals the cash the fills moved (sells less buys, times the point value)
  less every fee — it can be checked against the fills alone.

History before the window is still matched (a position opened last week and closed today is a
round trip of today), but only what falls inside the window is reported. Fees are shared out in
whole millionths with the last piece taking the remainder, so pieces always sum to the fee.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from tterm.core.models import Fill, Instrument, ModelError, Side, utcnow

if TYPE_CHECKING:
    from tterm.core.journal import Journal

ZERO = Decimal(0)
_FEE_STEP = Decimal("0.000001")


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """One closed piece of a position, matched FIFO. ``side`` is the entry's (BUY: a long)."""

    account: str
    symbol: str
    side: Side
    quantity: int
    entry_price: Decimal
    exit_price: Decimal
    entry_at: datetime
    exit_at: datetime
    gross: Decimal
    fees: Decimal
    net: Decimal
    trade_date: date

    @property
    def duration(self) -> timedelta:
        return self.exit_at - self.entry_at


@dataclass(frozen=True, slots=True)
class DayResult:
    """One trade date of the selected accounts."""

    trade_date: date
    gross: Decimal = ZERO
    fees: Decimal = ZERO
    net: Decimal = ZERO
    trades: int = 0
    wins: int = 0
    losses: int = 0
    fills: int = 0
    contracts: int = 0


@dataclass(frozen=True, slots=True)
class EquityPoint:
    """The cumulative net P&L right after one fill."""

    ts: datetime
    equity: Decimal


@dataclass(frozen=True, slots=True)
class OpenLot:
    """What is still open at the end: a signed quantity at its entry price."""

    account: str
    symbol: str
    quantity: int
    price: Decimal
    opened_at: datetime


@dataclass(frozen=True, slots=True)
class PnlReport:
    """The P&L history of ``accounts`` over trade dates ``start`` to ``end``."""

    start: date
    end: date
    accounts: tuple[str, ...] = ()
    days: tuple[DayResult, ...] = ()
    trips: tuple[RoundTrip, ...] = ()
    curve: tuple[EquityPoint, ...] = ()
    open_lots: tuple[OpenLot, ...] = ()
    gross: Decimal = ZERO
    fees: Decimal = ZERO
    net: Decimal = ZERO
    #: Symbols whose fills were left out because no instrument could be found for them.
    unknown_symbols: tuple[str, ...] = ()
    #: Journal fill rows that could not be read back (left out; the count says so).
    skipped_rows: int = 0
    made_at: datetime = field(default_factory=utcnow)

    @property
    def wins(self) -> int:
        return sum(1 for t in self.trips if t.net > 0)

    @property
    def losses(self) -> int:
        return sum(1 for t in self.trips if t.net < 0)

    @property
    def max_drawdown(self) -> Decimal:
        """The deepest fall of the curve from its high so far (0 or negative)."""
        high = ZERO
        worst = ZERO
        for p in self.curve:
            high = max(high, p.equity)
            worst = min(worst, p.equity - high)
        return worst


@dataclass(slots=True)
class _Lot:
    quantity: int  # signed: + long, - short
    price: Decimal
    fee: Decimal  # entry fee not yet given to a round trip
    opened_at: datetime


def _share(fee: Decimal, part: int, whole: int) -> Decimal:
    """``part`` of ``whole`` units' ``fee``; the caller gives the last part the remainder."""
    if part >= whole:
        return fee
    return (fee * part / whole).quantize(_FEE_STEP)


def compute(
    fills: Iterable[Fill],
    instrument: Callable[[str], Instrument],
    trade_date: Callable[[datetime], date],
    *,
    start: date,
    end: date,
    account: str | None = None,
) -> PnlReport:
    """The report of the fills (any order; duplicates by broker and fill id are dropped).

    ``instrument`` resolves a contract symbol (raising ModelError when it cannot); ``trade_date``
    gives a fill's trade date; ``start``..``end`` (inclusive) is the window reported.
    """
    seen: set[tuple[str, str]] = set()
    ordered: list[Fill] = []
    for f in fills:
        key = (f.broker, f.fill_id)
        if key in seen or (account is not None and f.account != account):
            continue
        seen.add(key)
        ordered.append(f)
    ordered.sort(key=lambda f: f.ts)

    insts: dict[str, Instrument | None] = {}
    unknown: set[str] = set()
    lots: dict[tuple[str, str], deque[_Lot]] = {}
    days: dict[date, DayResult] = {}
    trips: list[RoundTrip] = []
    curve: list[EquityPoint] = []
    accounts: set[str] = set()
    equity = gross_total = fee_total = ZERO

    for f in ordered:
        if f.symbol not in insts:
            try:
                insts[f.symbol] = instrument(f.symbol)
            except ModelError:
                insts[f.symbol] = None
        inst = insts[f.symbol]
        if inst is None:
            unknown.add(f.symbol)
            continue
        day = trade_date(f.ts)
        inside = start <= day <= end
        queue = lots.setdefault((f.account, f.symbol), deque())
        remaining = f.quantity
        fee_left = f.fee
        realized = ZERO
        sign = f.side.sign
        closed: list[RoundTrip] = []
        while remaining and queue and (queue[0].quantity > 0) != (sign > 0):
            lot = queue[0]
            size = abs(lot.quantity)
            take = min(size, remaining)
            entry_fee = _share(lot.fee, take, size)
            exit_fee = _share(fee_left, take, remaining)
            lot.fee -= entry_fee
            fee_left -= exit_fee
            direction = 1 if lot.quantity > 0 else -1
            gross = inst.money((f.price - lot.price) * direction, take)
            realized += gross
            closed.append(
                RoundTrip(
                    account=f.account,
                    symbol=f.symbol,
                    side=Side.BUY if direction > 0 else Side.SELL,
                    quantity=take,
                    entry_price=lot.price,
                    exit_price=f.price,
                    entry_at=lot.opened_at,
                    exit_at=f.ts,
                    gross=gross,
                    fees=entry_fee + exit_fee,
                    net=gross - entry_fee - exit_fee,
                    trade_date=day,
                )
            )
            remaining -= take
            if take == size:
                queue.popleft()
            else:
                lot.quantity -= direction * take
        if remaining:  # opens (or adds to, or reverses into) a position
            queue.append(_Lot(quantity=sign * remaining, price=f.price, fee=fee_left, opened_at=f.ts))
        if not inside:
            continue
        accounts.add(f.account)
        trips.extend(closed)
        equity += realized - f.fee
        gross_total += realized
        fee_total += f.fee
        curve.append(EquityPoint(ts=f.ts, equity=equity))
        d = days.get(day) or DayResult(trade_date=day)
        days[day] = DayResult(
            trade_date=day,
            gross=d.gross + realized,
            fees=d.fees + f.fee,
            net=d.net + realized - f.fee,
            trades=d.trades + len(closed),
            wins=d.wins + sum(1 for t in closed if t.net > 0),
            losses=d.losses + sum(1 for t in closed if t.net < 0),
            fills=d.fills + 1,
            contracts=d.contracts + f.quantity,
        )

    open_lots = tuple(
        OpenLot(account=acct, symbol=sym, quantity=lot.quantity, price=lot.price, opened_at=lot.opened_at)
        for (acct, sym), queue in sorted(lots.items())
        for lot in queue
    )
    return PnlReport(
        start=start,
        end=end,
        accounts=tuple(sorted(accounts)),
        days=tuple(days[d] for d in sorted(days)),
        trips=tuple(trips),
        curve=tuple(curve),
        open_lots=open_lots,
        gross=gross_total,
        fees=fee_total,
        net=equity,
        unknown_symbols=tuple(sorted(unknown)),
    )


def fills_from_journal(rows: Iterable[dict[str, object]]) -> tuple[list[Fill], int]:
    """Fills back from the journal's ``fill`` rows (their ``data``), and how many rows could not
    be read (left out, and counted in the report)."""
    out: list[Fill] = []
    bad = 0
    for d in rows:
        try:
            out.append(
                Fill(
                    fill_id=str(d["fill_id"]),
                    order_id=str(d.get("order_id", "")),
                    client_order_id=str(d.get("client_order_id", "")),
                    account=str(d["account"]),
                    symbol=str(d["symbol"]),
                    side=Side(str(d["side"])),
                    quantity=int(str(d["quantity"])),
                    price=Decimal(str(d["price"])),
                    fee=Decimal(str(d.get("fee", "0"))),
                    broker=str(d.get("broker", "")),
                    ts=datetime.fromisoformat(str(d["ts"])),
                )
            )
        except (KeyError, ValueError, TypeError, ArithmeticError):
            bad += 1
    return out, bad


def money(value: Decimal, *, sign: bool = True) -> str:
    """``+1,234.50`` (the sign only when asked and positive); money as a report shows it."""
    text = f"{value:,.2f}"
    return f"+{text}" if sign and value > 0 else text


def held(seconds: float) -> str:
    """How long a round trip was held: ``45s``, ``12m30s``, ``4h40m``, ``2d03h``."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def window(today: date, days: int) -> tuple[date, date]:
    """The trade dates of the last ``days`` calendar days, today included."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    return today - timedelta(days=days - 1), today


#: The longest history one report covers.
MAX_DAYS = 3660


def history(
    journal: Journal,
    instrument: Callable[[str], Instrument],
    trade_date: Callable[[datetime], date],
    today: date,
    *,
    days: int = 30,
    account: str | None = None,
) -> PnlReport:
    """The report of the last ``days`` trade dates from the journal's fills (every fill is read:
    positions opened before the window are matched too)."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be a whole number from 1 to {MAX_DAYS}, got {days!r}")
    fills, bad = fills_from_journal(e.data for e in journal.entries(kind="fill", account=account))
    start, end = window(today, days)
    report = compute(fills, instrument, trade_date, start=start, end=end, account=account)
    return replace(report, skipped_rows=bad) if bad else report

"""Replay a day (or days) of fills and marks against rule profiles: would it have breached, and when?

The CSV has a header row and one event per row (blank lines and lines starting with ``#`` are
skipped)::

    time,type,symbol,side,qty,price,fee
    2026-11-24T08:30:00-06:00,mark,MES1!,,,6800.00,
    2026-11-24 08:31:05,fill,MES1!,buy,5,6800.25,3.10

- ``time``: ISO 8601; with a UTC offset or ``Z``, or without one, read as Chicago time (CT). Rows
  must be in time order.
- ``type``: ``fill`` (an execution in the account) or ``mark`` (a market price for valuing open
  positions, e.g. from a chart's bars).
- ``symbol``: any form tterm accepts (``MES``, ``MES1!``, ``MESZ6``); continuous symbols resolve
  on the row's trade date.
- ``side``, ``qty``: fills only (``buy``/``sell``, a whole number above zero).
- ``price``: on the instrument's tick grid.
- ``fee``: a fill's total fees; empty means the instrument's default fee per side times ``qty``.

Each profile starts at its own starting balance, so one file answers "would this day have failed
Apex intraday but passed Topstep EOD?". The same :class:`~tterm.risk.rules.RiskTracker` the live
monitor uses does the math; the session clock supplies the day turns, the end-of-day snapshots
and the flat-by cutoffs.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from tterm.core.book import Book
from tterm.core.clock import CT, ClockError, CmeClock
from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.models import Fill, Instrument, Quote, Side
from tterm.risk.profiles import DllAction, Profile
from tterm.risk.rules import RiskTracker, contracts_in_use, fmt_money
from tterm.risk.settings import RiskSettings

COLUMNS = ("time", "type", "symbol", "side", "qty", "price", "fee")
REQUIRED = ("time", "type", "symbol", "price")
ZERO = Decimal(0)


class ReplayError(ValueError):
    """A replay file that cannot be read; names the file, the line and the problem."""


@dataclass(frozen=True, slots=True)
class ReplayRow:
    at: datetime
    kind: str  # fill | mark
    instrument: Instrument
    price: Decimal
    side: Side | None = None
    qty: int = 0
    fee: Decimal | None = None
    line: int = 0


# --------------------------------------------------------------------------- reading


def _parse_time(text: str) -> datetime:
    t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if t.tzinfo is None:
        # Session logic is CT, so a bare time is a CT wall time (what a CT chart shows).
        t = t.replace(tzinfo=CT)
    return t.astimezone(UTC)


def read_replay(path: Path | str, instruments: InstrumentMaster, clock: CmeClock) -> list[ReplayRow]:
    """Every row of a replay CSV, validated; any problem raises ReplayError naming its line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReplayError(f"{path}: cannot read: {exc.strerror or exc}") from None
    lines = [(i, ln) for i, ln in enumerate(text.splitlines(), 1) if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise ReplayError(f"{path}: no rows (expected a header: {','.join(COLUMNS)})")
    reader = csv.reader([ln for _, ln in lines])
    header = [h.strip().lower() for h in next(reader)]
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown column(s) {', '.join(unknown)}")
        raise ReplayError(f"{path}:{lines[0][0]}: {'; '.join(parts)} (columns: {','.join(COLUMNS)})")
    rows: list[ReplayRow] = []
    problems: list[str] = []
    prev: datetime | None = None
    for (lineno, _), values in zip(lines[1:], reader, strict=True):
        rec = dict(zip(header, (v.strip() for v in values), strict=False))
        try:
            row = _row(rec, lineno, instruments, clock)
        except (ValueError, InvalidOperation, UnknownSymbol, ClockError) as exc:
            problems.append(f"{path}:{lineno}: {exc}")
            continue
        if prev is not None and row.at < prev:
            shown = row.at.astimezone(CT)
            problems.append(f"{path}:{lineno}: time {shown:%Y-%m-%d %H:%M:%S} CT is before the row above")
        prev = row.at
        rows.append(row)
    if problems:
        more = f"\n... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise ReplayError("\n".join(problems[:20]) + more)
    if not rows:
        raise ReplayError(f"{path}: a header but no rows")
    return rows


def _row(rec: dict[str, str], lineno: int, instruments: InstrumentMaster, clock: CmeClock) -> ReplayRow:
    for col in REQUIRED:
        if not rec.get(col):
            raise ValueError(f"{col} is empty")
    try:
        at = _parse_time(rec["time"])
    except ValueError:
        raise ValueError(f"time {rec['time']!r} is not ISO 8601 (e.g. 2026-11-24T08:30:00-06:00)") from None
    kind = rec["type"].lower()
    if kind not in ("fill", "mark"):
        raise ValueError(f"type {rec['type']!r} must be fill or mark")
    inst = instruments.resolve(rec["symbol"], on=clock.trade_date(at))
    try:
        price = Decimal(rec["price"])
    except InvalidOperation:
        raise ValueError(f"price {rec['price']!r} is not a number") from None
    if not price.is_finite() or not inst.is_on_tick(price):
        raise ValueError(f"price {rec['price']} is off the {inst.symbol} tick grid ({inst.tick_size})")
    if kind == "mark":
        return ReplayRow(at=at, kind=kind, instrument=inst, price=price, line=lineno)
    side_text = rec.get("side", "").lower()
    if side_text not in ("buy", "sell"):
        raise ValueError(f"a fill needs side buy or sell, got {rec.get('side', '')!r}")
    try:
        qty = int(rec.get("qty", ""))
    except ValueError:
        raise ValueError(f"qty {rec.get('qty', '')!r} is not a whole number") from None
    if qty <= 0:
        raise ValueError(f"qty must be above zero, got {qty}")
    fee: Decimal | None = None
    if rec.get("fee"):
        try:
            fee = Decimal(rec["fee"])
        except InvalidOperation:
            raise ValueError(f"fee {rec['fee']!r} is not a number") from None
        if fee < 0 or not fee.is_finite():
            raise ValueError(f"fee must be zero or more, got {rec['fee']}")
    side = Side(side_text)
    return ReplayRow(at=at, kind=kind, instrument=inst, price=price, side=side, qty=qty, fee=fee, line=lineno)


# --------------------------------------------------------------------------- replaying


@dataclass(frozen=True, slots=True)
class FloorPoint:
    at: datetime
    floor: Decimal
    high_water_mark: Decimal
    why: str


@dataclass(frozen=True, slots=True)
class Event:
    at: datetime
    rule: str
    text: str


@dataclass(slots=True)
class ReplayResult:
    """How one profile fared over the replayed rows."""

    profile: Profile
    start_balance: Decimal
    failed: Event | None = None  # the first hard breach: the account fails here
    soft: list[Event] = field(default_factory=list)  # daily-limit blocks and cutoff liquidations
    tterm: list[Event] = field(default_factory=list)  # where tterm would have flattened first
    floor_path: list[FloorPoint] = field(default_factory=list)
    closest: Decimal | None = None
    closest_at: datetime | None = None
    blocked_fills: int = 0
    final_balance: Decimal = ZERO
    final_equity: Decimal = ZERO
    final_floor: Decimal = ZERO
    days: int = 0

    @property
    def passed(self) -> bool:
        return self.failed is None


def replay(
    rows: Sequence[ReplayRow],
    profile: Profile,
    *,
    instruments: InstrumentMaster,
    clock: CmeClock,
    settings: RiskSettings | None = None,
) -> ReplayResult:
    """Run ``rows`` through ``profile`` (see the module docstring)."""
    settings = settings or RiskSettings()
    tracker = RiskTracker(
        profile,
        buffer_pct=settings.buffer_pct,
        warn_pct=settings.warn_pct,
        danger_pct=settings.danger_pct,
    )
    st = tracker.state
    book = Book(instruments)
    acct = "replay"
    result = ReplayResult(profile=profile, start_balance=profile.start)
    result.floor_path.append(FloorPoint(rows[0].at, st.floor, st.high_water_mark, "start"))
    lead = timedelta(minutes=float(settings.cutoff_lead_minutes))
    seen_tterm: set[tuple[str, date | None]] = set()
    blocked_date: date | None = None
    day: date | None = None
    pending: list[tuple[datetime, int, str]] = []
    counter = 0

    def balance_equity() -> tuple[Decimal, Decimal, Decimal]:
        pnl = book.pnl(acct)
        sod = st.sod_balance if st.sod_balance is not None else st.start_balance
        balance = sod + pnl.realized_net
        fees = sum(
            (abs(p.quantity) * instruments.resolve(p.symbol).fee_per_side for p in book.open_positions(acct)), ZERO
        )
        return balance, balance + pnl.unrealized, fees

    def note_floor(at: datetime, why: str) -> None:
        last = result.floor_path[-1]
        if st.floor != last.floor:
            result.floor_path.append(FloorPoint(at, st.floor, st.high_water_mark, why))

    def assess(at: datetime) -> None:
        nonlocal blocked_date
        balance, equity, fees = balance_equity()
        x = tracker.update(balance, equity, exit_fees=fees, at=at)
        note_floor(at, "intraday peak" if x.floor_moved else "")
        if result.closest is None or x.floor_distance < result.closest:
            result.closest, result.closest_at = x.floor_distance, at
        for b in x.breaches:
            if not b.firm:
                if (b.key, day) not in seen_tterm:
                    seen_tterm.add((b.key, day))
                    result.tterm.append(Event(at, b.key, b.text))
                continue
            if b.rule == "floor" or (b.rule == "dll" and profile.daily_loss.action is DllAction.FAIL):
                if result.failed is None:
                    result.failed = Event(at, b.rule, b.text)
            elif blocked_date != day:
                blocked_date = day
                result.soft.append(Event(at, "dll", f"{b.text}: {tracker.describe_dll_action()}"))
        cap = tracker.contracts_max
        if cap is not None:
            used = contracts_in_use(profile, book.open_positions(acct), instruments)
            if used > cap and ("tier", day) not in seen_tterm:
                seen_tterm.add(("tier", day))
                result.soft.append(Event(at, "tier", f"{used.normalize():f} contracts open; the tier allows {cap}"))

    def schedule(d: date) -> None:
        nonlocal counter
        session = clock.session(d)
        if session is None:
            return
        snap = profile.drawdown.snapshot
        snap_at = datetime.combine(d, snap, tzinfo=CT).astimezone(UTC) if snap is not None else session.close
        items = [(snap_at, "snapshot")]
        if profile.session.cutoff is not None:
            cutoff = clock.cutoff(d, profile.session.cutoff)
            items += [(cutoff - lead, "tterm_cutoff"), (cutoff, "cutoff")]
        for at, kind in items:
            counter += 1
            pending.append((at, counter, kind))
        pending.sort()

    def run_pending(until: datetime | None) -> None:
        while pending and (until is None or pending[0][0] <= until):
            at, _, kind = pending.pop(0)
            open_pos = book.open_positions(acct)
            if kind == "snapshot":
                balance, _, _ = balance_equity()
                tracker.end_of_day(clock.trade_date(at - timedelta(microseconds=1)), balance)
                note_floor(at, "end-of-day snapshot")
            elif kind == "tterm_cutoff" and open_pos:
                result.tterm.append(
                    Event(at, "cutoff", f"{len(open_pos)} position(s) open {lead} before the flat-by time")
                )
            elif kind == "cutoff" and open_pos:
                held = ", ".join(f"{p.quantity:+d} {p.symbol}" for p in open_pos)
                why = f"still holding {held} at the {profile.firm} flat-by time: the firm liquidates"
                result.soft.append(Event(at, "cutoff", why + " (some firms fail the account)"))

    for row in rows:
        run_pending(row.at)
        d = clock.trade_date(row.at)
        if d != day:
            if day is not None:
                balance, _, _ = balance_equity()
                book.reset_day()
                tracker.start_day(d, balance)
            else:
                tracker.start_day(d, st.start_balance)
            day = d
            result.days += 1
            schedule(d)
            run_pending(row.at)
        if result.failed is not None:
            continue
        if row.kind == "fill":
            assert row.side is not None
            fee = row.fee if row.fee is not None else row.instrument.fee_per_side * row.qty
            if blocked_date == day:
                result.blocked_fills += 1
            book.apply_fill(
                Fill(
                    fill_id=f"r{row.line}",
                    order_id=f"r{row.line}",
                    client_order_id=f"r{row.line}",
                    account=acct,
                    symbol=row.instrument.symbol,
                    side=row.side,
                    quantity=row.qty,
                    price=row.price,
                    fee=fee,
                    ts=row.at,
                )
            )
            book.set_mark(row.instrument.symbol, row.price)
        else:
            book.mark(Quote(symbol=row.instrument.symbol, last=row.price, ts=row.at))
        assess(row.at)
    if result.failed is None:
        # The last day runs to its close: the cutoff and the end-of-day snapshot still apply.
        run_pending(None)
    result.final_balance, result.final_equity, _ = balance_equity()
    result.final_floor = st.floor
    return result


# --------------------------------------------------------------------------- report


def _t(at: datetime) -> str:
    return at.astimezone(CT).strftime("%Y-%m-%d %H:%M:%S CT")


def format_result(r: ReplayResult) -> str:
    p = r.profile
    model = p.drawdown.model.value
    lines = [f"{p.id}  ({p.title}, {model} drawdown {fmt_money(p.drawdown.amount)}, rules as of {p.source_date})"]
    if r.failed is not None:
        lines.append(f"  BREACHED at {_t(r.failed.at)}: {r.failed.text}")
    else:
        lines.append("  PASSED: the firm's floor was never touched")
    for e in r.soft:
        lines.append(f"  {e.rule.upper()} at {_t(e.at)}: {e.text}")
    if r.blocked_fills:
        lines.append(f"  {r.blocked_fills} fill(s) came after the account was blocked for the session")
    for e in r.tterm:
        lines.append(f"  tterm would have flattened at {_t(e.at)} ({e.rule.replace('_', ' ')}): {e.text}")
    path = " -> ".join(
        f"{fmt_money(fp.floor)} ({fp.at.astimezone(CT):%m-%d %H:%M}{', ' + fp.why if fp.why else ''})"
        for fp in r.floor_path
    )
    lines.append(f"  floor path: {path}")
    if r.closest is not None and r.closest_at is not None:
        where = "above" if r.closest > 0 else "below"
        lines.append(f"  closest approach: {fmt_money(abs(r.closest))} {where} the floor at {_t(r.closest_at)}")
    if r.failed is not None:
        lines.append("  the account fails at the breach; the rows after it were not replayed for this profile")
    else:
        lines.append(
            f"  end: balance {fmt_money(r.final_balance)} ({fmt_money(r.final_balance - r.start_balance)} over "
            f"{r.days} day(s)), floor {fmt_money(r.final_floor)}"
        )
    return "\n".join(lines)


def format_summary(results: Iterable[ReplayResult]) -> str:
    rows = [("profile", "result", "when (CT)", "closest", "final floor")]
    for r in results:
        when = r.failed.at.astimezone(CT).strftime("%m-%d %H:%M:%S") if r.failed else ""
        closest = fmt_money(r.closest) if r.closest is not None else ""
        rows.append((r.profile.id, "BREACHED" if r.failed else "passed", when, closest, fmt_money(r.final_floor)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)

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

:func:`replay_with_tterm` also runs the day as tterm would have protected it (see
:mod:`tterm.risk.replay_path`) and puts the two verdicts side by side: "would tterm have saved
this day?". Every verdict names the ``unknown`` and ``uncertain`` profile items it depends on.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from tterm.core.clock import CT, ClockError, CmeClock
from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.models import Side
from tterm.risk.caveats import Dependency, depends_on
from tterm.risk.news import NewsCalendar
from tterm.risk.profiles import Profile
from tterm.risk.replay_path import Action, Event, FloorPoint, Refusal, ReplayResult, ReplayRow
from tterm.risk.replay_path import Path as _Path
from tterm.risk.rules import fmt_money
from tterm.risk.settings import AccountRiskSettings, RiskSettings

__all__ = [
    "Action",
    "Comparison",
    "Event",
    "FloorPoint",
    "Refusal",
    "ReplayError",
    "ReplayResult",
    "ReplayRow",
    "format_comparison",
    "format_result",
    "format_summary",
    "read_replay",
    "replay",
    "replay_with_tterm",
]

COLUMNS = ("time", "type", "symbol", "side", "qty", "price", "fee")
REQUIRED = ("time", "type", "symbol", "price")
ZERO = Decimal(0)


class ReplayError(ValueError):
    """A replay file that cannot be read; names the file, the line and the problem."""


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


# --------------------------------------------------------------------------- replaying


def replay(
    rows: Sequence[ReplayRow],
    profile: Profile,
    *,
    instruments: InstrumentMaster,
    clock: CmeClock,
    settings: RiskSettings | None = None,
    calendar: NewsCalendar | None = None,
) -> ReplayResult:
    """Run ``rows`` through ``profile`` as recorded: what the firm saw (see the module docstring)."""
    path = _Path(profile, instruments=instruments, clock=clock, settings=settings, calendar=calendar)
    return path.run(rows)


@dataclass(frozen=True, slots=True)
class Comparison:
    """One profile's verdict as recorded and with tterm's protection, side by side."""

    firm: ReplayResult
    tterm: ReplayResult

    @property
    def difference(self) -> Decimal:
        """What tterm's protection was worth in money (positive: tterm kept more)."""
        return self.tterm.pnl - self.firm.pnl

    @property
    def depends(self) -> list[Dependency]:
        return depends_on(self.firm.profile, self.firm.areas | self.tterm.areas)


def replay_with_tterm(
    rows: Sequence[ReplayRow],
    profile: Profile,
    *,
    instruments: InstrumentMaster,
    clock: CmeClock,
    settings: RiskSettings | None = None,
    calendar: NewsCalendar | None = None,
    personal: AccountRiskSettings | None = None,
    slippage_ticks: int = 1,
    stop_ticks: int | None = None,
) -> Comparison:
    """The recorded path and the path tterm would have made of it (``tterm replay --with-tterm``).

    ``personal`` adds an account's own limits ([risk.accounts]); ``slippage_ticks`` is taken
    against every tterm flatten; ``stop_ticks`` gives every replayed entry a stop that far away
    (without one, the worst case assumes ``no_stop_adverse_ticks``, as live).
    """
    firm = replay(rows, profile, instruments=instruments, clock=clock, settings=settings, calendar=calendar)
    path = _Path(
        profile,
        instruments=instruments,
        clock=clock,
        settings=settings,
        calendar=calendar,
        protect=True,
        personal=personal,
        slippage_ticks=slippage_ticks,
        stop_ticks=stop_ticks,
    )
    return Comparison(firm, path.run(rows))


# --------------------------------------------------------------------------- report


def _t(at: datetime) -> str:
    return at.astimezone(CT).strftime("%Y-%m-%d %H:%M:%S CT")


def _hm(at: datetime) -> str:
    return at.astimezone(CT).strftime("%H:%M")


def _signed(v: Decimal) -> str:
    return ("+" if v > 0 else "") + fmt_money(v)


def _header(p: Profile) -> str:
    model = p.drawdown.model.value
    dd = fmt_money(p.drawdown.amount) if p.drawdown.amount is not None else "unknown"
    return f"{p.id}  ({p.title}, {model} drawdown {dd}, rules as of {p.source_date})"


def _depends(deps: list[Dependency]) -> list[str]:
    if not deps:
        return []
    return ["  this verdict depends on:", *(f"    - {d.text}" for d in deps)]


def format_result(r: ReplayResult) -> str:
    lines = [_header(r.profile)]
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
    lines.append(f"  floor path: {_floor_path(r)}")
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
    lines += _depends(depends_on(r.profile, r.areas))
    return "\n".join(lines)


def _floor_path(r: ReplayResult) -> str:
    return " -> ".join(
        f"{fmt_money(fp.floor)} ({fp.at.astimezone(CT):%m-%d %H:%M}{', ' + fp.why if fp.why else ''})"
        for fp in r.floor_path
    )


def firm_verdict(r: ReplayResult) -> str:
    """``breached 11:30 at -$2,505.00`` / ``passed, +$310.00``."""
    if r.failed is not None:
        at = f" at {_signed(r.failed.pnl)}" if r.failed.pnl is not None else ""
        return f"breached {_hm(r.failed.at)}{at} ({r.failed.rule})"
    soft = f", {len(r.soft)} soft event(s)" if r.soft else ""
    return f"passed, {_signed(r.pnl)}{soft}"


def tterm_verdict(r: ReplayResult) -> str:
    """``flattened 11:25 at -$2,375.00, account alive, $130.00 above the floor``."""
    first = next((a for a in r.actions if a.locks or a.fills), None)
    refused = f", {len(r.refused)} order(s) refused" if r.refused else ""
    if r.failed is not None:
        at = f" at {_signed(r.failed.pnl)}" if r.failed.pnl is not None else ""
        why = " (tterm's line was skipped by the gap)" if r.gaps else ""
        if first is not None and first.fills and not r.gaps:
            why = f" (tterm flattened from {_hm(first.at)}, but the fill came through the line)"
        return f"breached {_hm(r.failed.at)}{at}{why}{refused}"
    if first is not None and first.filled_at is not None and first.pnl_after is not None:
        above = f", {fmt_money(first.above_floor)} above the floor" if first.above_floor is not None else ""
        return f"flattened {_hm(first.filled_at)} at {_signed(first.pnl_after)}, account alive{above}{refused}"
    if first is not None:
        return f"flattened from {_hm(first.at)} (no price after it in the file), account alive{refused}"
    if r.refused:
        return f"passed, {_signed(r.pnl)}{refused}"
    return f"passed, {_signed(r.pnl)}; tterm never had to act"


def format_comparison(c: Comparison, *, slippage_ticks: int = 1) -> str:
    """One profile's two verdicts side by side, then what tterm did and refused."""
    f, t = c.firm, c.tterm
    lines = [_header(f.profile)]
    lines.append(f"  firm:       {firm_verdict(f)}")
    lines.append(f"  with tterm: {tterm_verdict(t)}")
    lines.append(
        f"  difference: {_signed(c.difference)} with tterm"
        + ("; the account survives" if f.failed is not None and t.failed is None else "")
    )
    if f.failed is not None:
        lines.append(f"  the firm's breach: {f.failed.text}")
    for e in t.gaps:
        lines.append(f"  GAP at {_t(e.at)}: {e.text}")
    for a in t.actions:
        what = a.text
        orders = "; ".join(
            f"{'buy' if q > 0 else 'sell'} {abs(q)} {sym} filled {_hm(at)} CT at {price} "
            f"(with {slippage_ticks} tick(s) slippage), fees {fmt_money(fee)}"
            for at, sym, q, price, fee in a.fills
        )
        left = "; ".join(
            f"{'buy' if q > 0 else 'sell'} {abs(q)} {sym} never filled (no later price)" for sym, q in a.orders
        )
        lock = ", locked until the next session" if a.locks else ""
        lines.append(f"  tterm at {_t(a.at)} ({a.rule.replace('_', ' ')}{lock}): {what}")
        if orders or left:
            lines.append(f"    {'; '.join(x for x in (orders, left) if x)}")
    if t.refused:
        lines.append(f"  refused before reaching the broker ({len(t.refused)}):")
        for x in t.refused[:12]:
            lines.append(f"    {_hm(x.at)} CT line {x.line}: {x.text} ({x.check}): {x.reason}")
        if len(t.refused) > 12:
            lines.append(f"    ... and {len(t.refused) - 12} more")
    for e in t.soft:
        lines.append(f"  with tterm, {e.rule.upper()} at {_t(e.at)}: {e.text}")
    for e in t.warnings:
        lines.append(f"  warning at {_t(e.at)}: {e.text}")
    lines.append(f"  floor path (with tterm): {_floor_path(t)}")
    lines += _depends(c.depends)
    return "\n".join(lines)


def format_summary(results: Iterable[ReplayResult | Comparison]) -> str:
    """One table for every profile: the verdict (and, with tterm, both verdicts and the difference)."""
    items = list(results)
    if items and isinstance(items[0], Comparison):
        rows = [("profile", "firm", "with tterm", "difference", "depends on")]
        for c in items:
            assert isinstance(c, Comparison)
            deps = c.depends
            n_unknown = sum(1 for d in deps if d.kind == "unknown")
            dep = f"{n_unknown} unknown, {len(deps) - n_unknown} uncertain" if deps else "-"
            rows.append((c.firm.profile.id, firm_verdict(c.firm), _short(c.tterm), _signed(c.difference), dep))
    else:
        rows = [("profile", "result", "when (CT)", "closest", "final floor")]
        for r in items:
            assert isinstance(r, ReplayResult)
            when = r.failed.at.astimezone(CT).strftime("%m-%d %H:%M:%S") if r.failed else ""
            closest = fmt_money(r.closest) if r.closest is not None else ""
            rows.append((r.profile.id, "BREACHED" if r.failed else "passed", when, closest, fmt_money(r.final_floor)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def _short(r: ReplayResult) -> str:
    """The with-tterm verdict for the table: a few words."""
    if r.failed is not None:
        return f"breached {_hm(r.failed.at)}" + (" (gap)" if r.gaps else "")
    first = next((a for a in r.actions if a.locks or a.fills), None)
    refused = f", {len(r.refused)} refused" if r.refused else ""
    if first is not None:
        when = _hm(first.filled_at or first.at)
        return f"flattened {when}, alive, {_signed(r.pnl)}{refused}"
    return f"passed, {_signed(r.pnl)}{refused}"

"""``tterm pnl``: the P&L history from the journal (per day, round trips, equity curve).

It reads the journal file directly (WAL lets it run beside the terminal or the hub), so it works
with nothing else running. Text by default; ``--json`` for scripts (money as decimal strings).
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from typing import TextIO

from tterm.config import display_path, journal_path
from tterm.core.journal import Journal, to_jsonable
from tterm.core.pnl import MAX_DAYS, PnlReport, held, history, money

SPARK = "▁▂▃▄▅▆▇█"
TRIPS_SHOWN = 50


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of days, got {text!r}") from None
    if not 1 <= value <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_DAYS}, got {value}")
    return value


def add_pnl(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "pnl",
        parents=[common],
        help="P&L history from the journal: per day, round trips, equity curve",
        description=(
            "Per-day results, round-trip trades (FIFO, net of fees) and the equity curve of the last "
            "DAYS trade dates (CME: a day turns at 17:00 CT), from the fills in the journal."
        ),
    )
    p.add_argument("--days", type=_days, default=30, metavar="N", help="the last N days, today included (default 30)")
    p.add_argument("--account", metavar="ID", help="one account (its id or its alias); default every account")
    p.add_argument("--trips", type=int, default=TRIPS_SHOWN, metavar="N", help="round trips listed (newest; 0: none)")
    p.add_argument("--json", action="store_true", help="the whole report as JSON")
    p.set_defaults(handler=cmd_pnl)


def cmd_pnl(args: argparse.Namespace) -> int:
    from tterm.cli import _load
    from tterm.runtime import build_core

    settings = _load(args, create=False)
    clock, instruments = build_core(settings)
    account = args.account
    if account is not None:
        aliases = {a.alias.lower(): aid for aid, a in settings.accounts.items() if a.alias}
        account = aliases.get(account.lower(), account)
    path = journal_path(settings)
    if not path.exists():
        print(f"tterm pnl: no journal yet at {display_path(path)}", file=sys.stderr)
    journal = Journal(path) if path.exists() else Journal(":memory:")
    try:
        if account is not None and not journal.entries(kind="fill", account=account, limit=1):
            print(f"tterm pnl: no fills of account {account!r} in {display_path(path)}", file=sys.stderr)
            return 2
        report = history(
            journal, instruments.resolve, clock.trade_date, clock.trade_date(), days=args.days, account=account
        )
    finally:
        journal.close()
    if args.json:
        json.dump(report_json(report), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        render(report, sys.stdout, trips=max(0, args.trips), tz=clock.now_ct().tzinfo)
    return 0


def report_json(report: PnlReport) -> dict[str, object]:
    data = to_jsonable(report)
    assert isinstance(data, dict)
    for trip, raw in zip(report.trips, data["trips"], strict=True):
        raw["duration_seconds"] = trip.duration.total_seconds()
    data["wins"], data["losses"], data["max_drawdown"] = report.wins, report.losses, str(report.max_drawdown)
    return data


def sparkline(values: list[Decimal], width: int = 60) -> str:
    """The curve squeezed into ``width`` block characters (each the last value of its bucket)."""
    if not values:
        return ""
    if len(values) > width:
        step = len(values) / width
        values = [values[min(len(values) - 1, int((i + 1) * step) - 1)] for i in range(width)]
    lo, hi = min(values), max(values)
    span = hi - lo
    if span == 0:
        return SPARK[len(SPARK) // 2] * len(values)
    return "".join(SPARK[int((v - lo) / span * (len(SPARK) - 1))] for v in values)


def render(report: PnlReport, out: TextIO, *, trips: int = TRIPS_SHOWN, tz: object = None) -> None:
    """The report as text tables."""
    accounts = ", ".join(report.accounts) or "none with fills"
    out.write(f"P&L {report.start} to {report.end}   accounts: {accounts}\n")
    out.write(
        f"Net {money(report.net)}   gross {money(report.gross)}   fees {money(report.fees, sign=False)}   "
        f"round trips {len(report.trips)} ({report.wins} won, {report.losses} lost)   "
        f"max drawdown {money(report.max_drawdown)}\n"
    )
    if report.unknown_symbols:
        out.write(f"Left out (no instrument known): {', '.join(report.unknown_symbols)}\n")
    if report.skipped_rows:
        out.write(f"Left out: {report.skipped_rows} journal fill rows that could not be read\n")
    out.write("\n")
    if not report.days:
        out.write("No fills in these days.\n")
    else:
        rows = [("Day", "Net", "Gross", "Fees", "Trips", "Won/lost", "Fills", "Contracts")]
        for d in report.days:
            rows.append((str(d.trade_date), money(d.net), money(d.gross), money(d.fees, sign=False), str(d.trades),
                         f"{d.wins}/{d.losses}", str(d.fills), str(d.contracts)))  # fmt: skip
        _table(rows, out, right=range(1, 8))
    if report.trips and trips:
        shown = report.trips[-trips:]
        out.write(f"\nRound trips ({len(shown)} of {len(report.trips)}, newest last)\n")
        rows = [("Exit (CT)", "Account", "Symbol", "Side", "Qty", "Entry", "Exit", "Net", "Fees", "Held")]
        for t in shown:
            at = t.exit_at.astimezone(tz) if tz is not None else t.exit_at  # type: ignore[arg-type]
            rows.append((f"{at:%Y-%m-%d %H:%M:%S}", t.account, t.symbol, "long" if t.side.sign > 0 else "short",
                         str(t.quantity), str(t.entry_price), str(t.exit_price), money(t.net),
                         money(t.fees, sign=False), held(t.duration.total_seconds())))  # fmt: skip
        _table(rows, out, right=range(4, 10))
    if report.curve:
        values = [p.equity for p in report.curve]
        out.write(f"\nEquity curve ({len(values)} fills): {sparkline(values)}\n")
        out.write(f"  low {money(min(values))}   high {money(max(values))}   last {money(values[-1])}\n")
    if report.open_lots:
        lots = "; ".join(f"{lot.account} {lot.symbol} {lot.quantity:+d} @ {lot.price}" for lot in report.open_lots)
        out.write(f"\nStill open: {lots}\n")


def _table(rows: list[tuple[str, ...]], out: TextIO, *, right: range) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        out.write("  ".join(cells).rstrip() + "\n")

"""The P&L history screen (``pnl``): the summary, the equity curve, per-day results and the
round trips, read from the engine's journal through ``pnl_history`` (so attached terminals see
the hub's history). Keys (scope ``pnl``): refresh, next account, more or fewer days, close.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static

from tterm.core.client import EngineError
from tterm.core.pnl import PnlReport, held, money
from tterm.tui.keymap import bindings
from tterm.tui.widgets.equity_curve import EquityCurve
from tterm.tui.widgets.tables import SyncedTable

if TYPE_CHECKING:
    from tterm.tui.app import TtermApp

DAY_STEPS = (1, 7, 30, 90, 365)


class DaysTable(SyncedTable):
    COLUMNS_SPEC = (
        ("day", "Day", 10),
        ("net", "Net", 10),
        ("gross", "Gross", 10),
        ("fees", "Fees", 8),
        ("trips", "Trips", 5),
        ("wl", "W/L", 5),
    )


class TripsTable(SyncedTable):
    COLUMNS_SPEC = (
        ("exit", "Exit (CT)", 14),
        ("symbol", "Symbol", 8),
        ("side", "Side", 5),
        ("qty", "Qty", 4),
        ("net", "Net", 10),
        ("held", "Held", 7),
        ("entry_px", "Entry", 10),
        ("exit_px", "Exit", 10),
        ("account", "Account", 12),
    )


class PnlScreen(Screen[None]):
    BINDINGS = bindings("pnl")

    DEFAULT_CSS = """
    PnlScreen { background: $surface; }
    PnlScreen #pnl-summary { height: auto; padding: 0 1; }
    PnlScreen #pnl-curve { height: 1fr; min-height: 4; max-height: 16; border: round $primary; padding: 0 1; }
    PnlScreen #pnl-tables { height: 2fr; }
    PnlScreen DaysTable { width: 58; border: round $primary; }
    PnlScreen TripsTable { width: 1fr; border: round $primary; }
    PnlScreen.-narrow #pnl-tables { layout: vertical; }
    PnlScreen.-narrow DaysTable { width: 1fr; height: 1fr; }
    PnlScreen.-narrow TripsTable { height: 2fr; }
    """

    #: Below this width the two tables stack (at 80 columns the round trips need the whole width).
    NARROW = 130

    def __init__(self, *, days: int = 30, account: str | None = None) -> None:
        super().__init__()
        self.days = days
        self.account = account
        self.report: PnlReport | None = None

    @property
    def tterm(self) -> TtermApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("reading the journal…", id="pnl-summary")
            yield EquityCurve(id="pnl-curve")
            with Horizontal(id="pnl-tables"):
                yield DaysTable(id="pnl-days")
                yield TripsTable(id="pnl-trips")
        yield Footer(compact=True)

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width < self.NARROW, "-narrow")

    def on_mount(self) -> None:
        self.set_class(self.app.size.width < self.NARROW, "-narrow")
        self.query_one("#pnl-curve").border_title = "Equity curve (cumulative P&L net of fees)"
        self.query_one("#pnl-days").border_title = "Per day"
        self.query_one("#pnl-trips").border_title = "Round trips (FIFO), newest first"
        self.query_one(TripsTable).focus()
        self.load()

    @work(group="pnl", exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        try:
            report = await self.tterm.engine.pnl_history(self.days, self.account)
        except EngineError as exc:
            self.query_one("#pnl-summary", Static).update(f"P&L history unavailable: {exc}")
            self.notify(str(exc), title="pnl", severity="error", timeout=10)
            return
        self.show(report)

    def show(self, report: PnlReport) -> None:
        self.report = report
        who = self._account_label()
        lines = [
            f"P&L {report.start} to {report.end} ({self.days} day{'s' if self.days != 1 else ''})  ·  {who}",
            f"Net {money(report.net)}   gross {money(report.gross)}   fees {money(report.fees, sign=False)}   "
            f"round trips {len(report.trips)} ({report.wins} won, {report.losses} lost)   "
            f"max drawdown {money(report.max_drawdown)}",
        ]
        if report.open_lots:
            lines.append("Still open: " + "; ".join(f"{lot.symbol} {lot.quantity:+d} @ {lot.price}"
                                                    for lot in report.open_lots))  # fmt: skip
        if report.unknown_symbols:
            lines.append(f"Left out (no instrument known): {', '.join(report.unknown_symbols)}")
        self.query_one("#pnl-summary", Static).update("\n".join(lines))
        self.query_one(EquityCurve).show([p.equity for p in report.curve])
        days = self.query_one(DaysTable)
        days.clear()
        for d in reversed(report.days):
            days.add_row(days.text(str(d.trade_date)), days.text(money(d.net), right=True),
                         days.text(money(d.gross), right=True), days.text(money(d.fees, sign=False), right=True),
                         days.text(str(d.trades), right=True), days.text(f"{d.wins}/{d.losses}", right=True),
                         key=str(d.trade_date))  # fmt: skip
        trips = self.query_one(TripsTable)
        trips.clear()
        tz = self.tterm.clock.now_ct().tzinfo
        names = self.tterm.bridge.state.accounts
        for i, t in enumerate(reversed(report.trips)):
            acct = names.get(t.account)
            trips.add_row(
                trips.text(f"{t.exit_at.astimezone(tz):%m-%d %H:%M:%S}"),
                trips.text(t.symbol),
                trips.text("long" if t.side.sign > 0 else "short"),
                trips.text(str(t.quantity), right=True),
                trips.text(money(t.net), right=True),
                trips.text(held(t.duration.total_seconds()), right=True),
                trips.text(str(t.entry_price), right=True),
                trips.text(str(t.exit_price), right=True),
                trips.text(acct.name if acct is not None and acct.name else t.account),
                key=str(i),
            )

    def _account_label(self) -> str:
        if self.account is None:
            return "every account"
        acct = self.tterm.bridge.state.accounts.get(self.account)
        return f"{acct.name} ({acct.id})" if acct is not None and acct.name else self.account

    # ------------------------------------------------------------------ actions

    def action_close(self) -> None:
        self.dismiss(None)

    def action_refresh(self) -> None:
        self.load()

    def action_next_account(self) -> None:
        ids: list[str | None] = [None, *self.tterm.bridge.state.accounts]
        i = ids.index(self.account) if self.account in ids else 0
        self.account = ids[(i + 1) % len(ids)]
        self.notify(f"P&L: {self._account_label()}", timeout=3)
        self.load()

    def action_days(self, step: int) -> None:
        steps = list(DAY_STEPS)
        here = min(range(len(steps)), key=lambda k: abs(steps[k] - self.days))
        self.days = steps[max(0, min(len(steps) - 1, here + step))]
        self.load()

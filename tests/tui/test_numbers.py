"""One number format per kind everywhere: prices in the instrument's format in the watchlist,
orders, fills, toasts and dialogs; volume in one style; whole ticks; what is left of the DLL
never more than the DLL; the day P&L and the positions total agree or say why not."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests.tui.conftest import FROZEN, make_app, wait_for
from tterm.core.models import Account, OrderRequest, OrderType, RiskStatus, Side
from tterm.tui import format as fmt
from tterm.tui.modals.confirm import ConfirmDialog

D = Decimal
SIZE = (160, 48)


def test_volume_has_one_style() -> None:
    # From a thousand on always abbreviated (no "9,876" beside "12.3K"), and never overstated.
    assert [fmt.volume(v) for v in (950, 9_876, 12_345, 152_340, 999_999, 1_402_118)] == [
        "950", "9.87K", "12.3K", "152K", "999K", "1.40M",
    ]  # fmt: skip


def test_ticks_are_whole() -> None:
    assert fmt.ticks(D("1971.5")) == "1,971t"
    assert fmt.ticks(D("0.9")) == "0t"
    assert fmt.ticks(20) == "20t"


async def test_prices_read_the_same_in_every_pane_toast_and_dialog(engine, settings) -> None:
    app = make_app(engine, settings)
    toasts: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(app.ready.is_set, pilot)
        original = app.notify
        app.notify = lambda message, *a, **kw: (toasts.append(str(message)), original(message, *a, **kw))[1]  # type: ignore[method-assign]
        es = engine.instrument("ES").symbol
        row = next(r for r in app.grid.rows if r.contract == es)
        assert row.cells["ask"] == "5,000.25"
        # A working limit order: the blotter shows its price as the watchlist would.
        limit = OrderRequest(account="paper:FUT50K", symbol=es, side=Side.BUY, quantity=1,
                             order_type=OrderType.LIMIT, limit_price=D("4990.50"))  # fmt: skip
        order = await engine.place(limit)
        key = f"paper:FUT50K|{order.order_id}"
        await wait_for(lambda: key in app.orders_table.orders, pilot)
        await wait_for(lambda: str(app.orders_table.get_row(key)[6]) == "4,990.50", pilot)
        # A fill: the fills pane and its toast.
        await engine.place(OrderRequest(account="paper:FUT50K", symbol=es, side=Side.BUY, quantity=1))
        await wait_for(lambda: app.fills_table.row_count == 1, pilot)
        assert str(app.fills_table.get_row_at(0)[5]) == "5,000.25"
        await wait_for(lambda: any(t.startswith("FILLED") for t in toasts), pilot)
        assert "@ 5,000.25 " in next(t for t in toasts if t.startswith("FILLED"))
        # The confirmation's headline.
        app.orders.submit(limit.with_changes(limit_price=D("4991.00")))
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
        assert "limit 4,991.00" in app.screen.headline
        await pilot.press("n")


def meter_lines(app, status: RiskStatus, total: Decimal | None) -> list[str]:
    acct = app.bridge.state.accounts["paper:FUT50K"]
    meter = app.risk_panel.meters[acct.id]
    meter.show(acct, status, None, FROZEN, current=True, positions_total=total)
    return [line.plain for line in meter._lines(200)]


def status(**kw) -> RiskStatus:
    base = dict(account="paper:FUT50K", profile="topstep-50k-combine", balance=D(50000), equity=D(50450),
                day_pnl=D(450), floor=D(48000), floor_distance=D("2450"), drawdown_allowance=D(2000),
                daily_loss_limit=D(1000), dll_distance=D(1450), ticks_symbol="MESZ6", ts=FROZEN)  # fmt: skip
    base.update(kw)
    return RiskStatus(**base)  # type: ignore[arg-type]


async def test_the_dll_meter_never_shows_more_left_than_the_limit(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(app.ready.is_set, pilot)
        await pilot.press("f7")
        await wait_for(lambda: "paper:FUT50K" in app.risk_panel.meters, pilot)
        # Up $450 on the day: the whole $1,000 DLL is left, and the profit stands ahead of it.
        lines = meter_lines(app, status(dll_ticks=D("1160.3"), floor_ticks=D("1971.5")), D(450))
        day = next(line for line in lines if "Day P&L" in line)
        assert "$1,000.00 left of $1,000.00 DLL" in day
        assert any("+$450.00 of today's profit stands ahead of the DLL" in line for line in lines)
        assert "1,160t MESZ6" in day and "1160.3" not in day
        equity = next(line for line in lines if "above floor" in line)
        assert "1,971t MESZ6" in equity and "1971.5" not in equity
        # Down $45.88 with the fees to close counted in the room: the line says so.
        lines = meter_lines(app, status(day_pnl=D("-45.88"), dll_distance=D("950.74")), D("-45.88"))
        day = next(line for line in lines if "Day P&L" in line)
        assert "$950.74 left of $1,000.00 DLL" in day
        assert any("after $3.38 fees to close what is open" in line for line in lines)
        assert not any("Positions total" in line for line in lines)  # they agree


async def test_day_pnl_and_positions_total_agree_or_say_why(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(app.ready.is_set, pilot)
        await pilot.press("f7")
        await wait_for(lambda: "paper:FUT50K" in app.risk_panel.meters, pilot)
        lines = meter_lines(app, status(day_pnl=D("16.62"), dll_distance=D("1016.62")), D("-45.88"))
        why = [line for line in lines if "Positions total" in line]
        assert why and "-$45.88" in why[0] and "+$62.50 apart" in why[0]
        # Through the panel: a status older than the newest position is not compared (a tick apart).
        acct = app.bridge.state.accounts["paper:FUT50K"]
        panel = app.risk_panel
        older = status(day_pnl=D("16.62"), dll_distance=D("1016.62"), ts=FROZEN - timedelta(seconds=1))
        panel.show([acct], {acct.id: older}, {}, FROZEN, acct.id, {acct.id: (D("-45.88"), FROZEN)})
        assert panel.meters[acct.id].positions_total is None
        panel.show([acct], {acct.id: status(day_pnl=D("16.62"), dll_distance=D("1016.62"))}, {}, FROZEN, acct.id,
                   {acct.id: (D("-45.88"), FROZEN)})  # fmt: skip
        assert panel.meters[acct.id].positions_total == D("-45.88")
        assert isinstance(acct, Account)


def test_an_absent_side_of_the_book_is_a_dash_without_a_size() -> None:
    assert fmt.touch(Decimal("6650.25"), 12, None) == "6,650.25×12"
    assert fmt.touch(None, 0, None) == "—"  # no offer: not "—×0"
    assert fmt.touch(Decimal("6650.25"), 12, None, sep=" × ") == "6,650.25 × 12"

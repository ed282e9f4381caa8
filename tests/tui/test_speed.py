"""Order entry at speed, with real keys on the scripted paper broker: quantity presets per asset
class, the ticket following the watchlist cursor, the confirmation's bracket prices and live
market line, the modify dialog's tick steps, and the reverse / breakeven / trail verbs."""

from __future__ import annotations

from decimal import Decimal

import pytest
from textual.widgets import Input

from tests.tui.conftest import make_app, push, wait_for
from tterm.core.models import OrderRequest, OrderType, Side
from tterm.tui.modals.confirm import ConfirmDialog
from tterm.tui.modals.modify import ModifyOrderScreen

D = Decimal
SIZE = (140, 44)
ACCOUNT = "paper:FUT50K"


def texts(app) -> list[str]:
    return [n.message for n in app._notifications]


async def started(app, pilot) -> None:
    await wait_for(app.ready.is_set, pilot)
    await pilot.pause()


async def confirm(pilot, app, expect: str) -> ConfirmDialog:
    try:
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
    except TimeoutError:
        raise AssertionError(f"no confirmation; notices: {texts(app)}") from None
    dialog = app.screen
    assert isinstance(dialog, ConfirmDialog)
    assert expect in dialog.headline, dialog.headline
    return dialog


async def dismissed(pilot, app) -> None:
    await pilot.press("n")
    await wait_for(lambda: not isinstance(app.screen, ConfirmDialog), pilot)


async def test_b_on_a_stock_buys_the_share_preset_not_one_share(engine, settings) -> None:
    settings.watchlists = {"stocks": ["AAPL", "MES1!"]}
    settings.general.default_account = "paper:CASH"
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        assert app.grid.cursor_symbol == "AAPL"
        await pilot.press("b")
        await confirm(pilot, app, "BUY 100 AAPL at market")
        await dismissed(pilot, app)
        # 2 picks the second share preset (200); a future keeps its own (1).
        await pilot.press("2", "b")
        await confirm(pilot, app, "BUY 200 AAPL at market")
        await dismissed(pilot, app)
        # A cash account refuses futures: the refusal names the order it was asked for.
        await pilot.press("down", "b")
        await wait_for(lambda: any(t.startswith("REFUSED BUY 1 MESZ6") for t in texts(app)), pilot)
        await pilot.press("plus", "plus", "b")  # 1 -> 2 -> 5
        await wait_for(lambda: any(t.startswith("REFUSED BUY 5 MESZ6") for t in texts(app)), pilot)
        await pilot.press("minus", "b")
        await wait_for(lambda: any(t.startswith("REFUSED BUY 2 MESZ6") for t in texts(app)), pilot)
        await pilot.press("up", "b")  # back on AAPL: its 200 stayed
        await confirm(pilot, app, "BUY 200 AAPL at market")
        await dismissed(pilot, app)
        assert list(engine._orders.values()) == []


async def test_the_ticket_follows_the_watchlist_cursor(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        symbol = app.ticket.query_one("#t-symbol", Input)
        assert symbol.value == "MES1!"
        await pilot.press("down")
        await wait_for(lambda: symbol.value == "ES1!", pilot)
        assert app.ticket.instrument is not None and app.ticket.instrument.symbol == "ESZ6"
        # Typing in the ticket stops the following: the cursor moving elsewhere leaves it alone.
        await pilot.press("f3", "end", *["backspace"] * 8, *"NQ")
        await wait_for(lambda: symbol.value.upper() == "NQ", pilot)
        app.grid.cursor = 0
        await pilot.pause()
        assert symbol.value.upper() == "NQ"


async def test_confirmation_shows_bracket_prices_and_a_live_market(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("colon", *"buy 1 MES 4999.00 lmt tp 8 sl 4", "enter")
        dialog = await confirm(pilot, app, "BUY 1 MESZ6")
        lines = dialog.details
        assert "Take profit: 5,001.00 (8 ticks from 4,999.00)" in lines
        assert "Stop loss: 4,998.00 (4 ticks from 4,999.00)" in lines
        market = next(i for i, line in enumerate(lines) if line.startswith("Market:"))
        assert "bid 5,000.00" in lines[market]
        await push(engine, "MES", bid="5001.00", ask="5001.25", last="5001.00")
        await wait_for(lambda: "bid 5,001.00" in dialog.details[market], pilot)
        shown = dialog.query_one(f"#detail-{market}")
        assert "bid 5,001.00" in str(shown.render())
        await dismissed(pilot, app)


async def test_the_modify_dialog_steps_prices_by_the_tick(engine, settings) -> None:
    await engine.place(OrderRequest(account=ACCOUNT, symbol="MES", side=Side.BUY, quantity=1,
                                    order_type=OrderType.LIMIT, limit_price=D("4990.00")))  # fmt: skip
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("f4")
        await wait_for(lambda: app.orders_table.row_count == 1, pilot)
        await pilot.press("m")
        await wait_for(lambda: isinstance(app.screen, ModifyOrderScreen), pilot)
        limit = app.screen.query_one("#m-limit", Input)
        assert app.focused is limit
        await pilot.press("up", "up", "up", "down")
        assert limit.value == "4990.50"
        await pilot.press("shift+up")
        assert limit.value == "4993.00"
        await pilot.press("enter")
        await wait_for(lambda: next(iter(engine.open_orders(ACCOUNT))).limit_price == D("4993.00"), pilot)


async def test_reverse_and_trail_verbs(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("colon", *"reverse MES", "enter")
        await wait_for(lambda: any("no position in MESZ6" in t for t in texts(app)), pilot)
        await pilot.press("escape")  # the command bar keeps a failed command for correcting
        await engine.place(OrderRequest(account=ACCOUNT, symbol="MES", side=Side.BUY, quantity=1))
        await wait_for(lambda: (ACCOUNT, "MESZ6") in app.bridge.state.positions, pilot)
        await pilot.press("colon", *"reverse MES", "enter")
        await confirm(pilot, app, "REVERSE long 1 MESZ6: SELL 2 MESZ6 at market")
        await pilot.press("y")
        await wait_for(lambda: engine.position(ACCOUNT, "MESZ6").quantity == -1, pilot)
        await wait_for(lambda: app.bridge.state.positions[(ACCOUNT, "MESZ6")].quantity == -1, pilot)
        await pilot.press("colon", *"trail MES 8", "enter")
        dialog = await confirm(pilot, app, "TRAIL 8 ticks: BUY 1 MESZ6")
        assert "trailing stop" in dialog.headline
        await pilot.press("y")
        await wait_for(lambda: len(list(engine.open_orders(ACCOUNT))) == 1, pilot)
        trail = next(iter(engine.open_orders(ACCOUNT)))
        assert trail.order_type is OrderType.TRAILING_STOP and trail.trail_amount == D("2.00")
        await pilot.press("colon", *"trail MES 0", "enter")
        await wait_for(lambda: any("is not a distance in ticks" in t for t in texts(app)), pilot)


@pytest.mark.parametrize(("size", "longest"), [((80, 24), 8.0), ((160, 48), 15.0)])
async def test_toasts_on_a_small_screen_stay_briefly(engine, settings, size, longest) -> None:
    """At 80x24 toasts sit over the blotter and positions: they go within seconds (rejects stay
    listed in the fills pane); a big screen keeps them as long as asked."""
    app = make_app(engine, settings)
    async with app.run_test(size=size) as pilot:
        await started(app, pilot)
        await wait_for(lambda: app.wide == (size[0] >= 140) and not app.trade.layout_busy, pilot)
        app.notify("REJECTED something", severity="error", timeout=15)
        app.notify("filled something", timeout=6)
        await wait_for(lambda: len([n for n in app._notifications if "something" in n.message]) == 2, pilot)
        error, info = [n for n in app._notifications if "something" in n.message]
        assert error.timeout == longest
        assert info.timeout == (3.0 if longest == 8.0 else 6)


async def test_reverse_and_breakeven_keys_on_the_positions_pane(engine, settings) -> None:
    await engine.place(OrderRequest(account=ACCOUNT, symbol="MES", side=Side.BUY, quantity=1))
    app = make_app(engine, settings)
    async with app.run_test(size=(160, 48)) as pilot:
        await started(app, pilot)
        await pilot.press("f6")
        await wait_for(lambda: "paper:FUT50K|MESZ6" in app.positions_table.positions, pilot)
        app.positions_table.move_cursor(row=app.positions_table.get_row_index("paper:FUT50K|MESZ6"))
        await pilot.press("e")  # still at the entry price: refused, nothing sent
        await wait_for(lambda: any("has not moved past the breakeven" in t for t in texts(app)), pilot)
        await pilot.press("r")
        await confirm(pilot, app, "REVERSE long 1 MESZ6: SELL 2 MESZ6 at market")
        await pilot.press("y")
        await wait_for(lambda: engine.position(ACCOUNT, "MESZ6").quantity == -1, pilot)

"""Trading through the real app on a scripted paper broker, driven by real key presses."""

from __future__ import annotations

from decimal import Decimal

import pytest
from textual.command import CommandPalette

from tests.tui.conftest import make_app, push, wait_for
from tterm.config import AccountSettings
from tterm.core.models import OrderRequest, OrderRole, OrderSource, OrderStatus, OrderType, Side
from tterm.tui.modals.confirm import ConfirmDialog
from tterm.tui.modals.modify import ModifyOrderScreen

D = Decimal
SIZE = (140, 44)


async def started(app, pilot) -> None:
    await wait_for(app.ready.is_set, pilot)
    await pilot.pause()


def engine_orders(engine) -> list:
    return list(engine._orders.values())


def working(engine, account: str = "paper:FUT50K") -> list:
    return list(engine.open_orders(account))


def qty(engine, symbol: str, account: str = "paper:FUT50K") -> int:
    return engine.position(account, engine.instrument(symbol).symbol).quantity


async def confirm(pilot, app, expect: str | None = None) -> ConfirmDialog:
    await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
    dialog = app.screen
    assert isinstance(dialog, ConfirmDialog)
    if expect is not None:
        assert expect in dialog.headline, dialog.headline
    return dialog


async def test_watchlist_hotkey_market_order_fills_into_blotter_and_positions(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        assert app.focused is app.grid
        assert app.grid.cursor_symbol == "MES1!"
        await pilot.press("b")
        await confirm(pilot, app, "BUY 1 MESZ6 at market in paper:FUT50K")
        await pilot.press("y")
        await wait_for(lambda: qty(engine, "MES") == 1, pilot)
        await wait_for(lambda: app.fills_table.row_count == 1, pilot)
        fill_row = [str(c) for c in app.fills_table.get_row_at(0)]
        assert fill_row[2:6] == ["MESZ6", "BUY", "1", "5,000.25"]  # the watchlist's price format
        assert fill_row[7].startswith("filled")
        await wait_for(lambda: "paper:FUT50K|MESZ6" in app.positions_table.positions, pilot)
        pos_row = [str(c) for c in app.positions_table.get_row("paper:FUT50K|MESZ6")]
        assert pos_row[1:4] == ["MESZ6", "+1", "5,000.25"]
        order = engine_orders(engine)[0]
        assert order.source is OrderSource.HOTKEY


async def test_hotkey_captures_the_symbol_when_the_key_is_pressed(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        grid = app.grid
        grid.action_sell()  # the key press: the row is read now...
        grid.cursor = 3  # ...and the cursor moves before the order is built and confirmed
        dialog = await confirm(pilot, app, "SELL 1 MESZ6 at market")
        assert grid.cursor_symbol == "NQ1!"
        assert "NQ" not in dialog.headline
        await pilot.press("n")
        await wait_for(lambda: not isinstance(app.screen, ConfirmDialog), pilot)
        assert engine_orders(engine) == []


async def test_palette_limit_order_then_modify_and_cancel_from_the_blotter(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("ctrl+p")
        await wait_for(lambda: isinstance(app.screen, CommandPalette), pilot)
        await pilot.press(*"buy 2 MES 4999.75 lmt")
        palette = app.screen
        assert isinstance(palette, CommandPalette)

        def shown() -> str:
            options = palette.query_one("CommandList")
            return " ".join(str(options.get_option_at_index(i).prompt) for i in range(options.option_count))

        await wait_for(lambda: "order: BUY 2 MESZ6 limit 4,999.75 in paper:FUT50K" in shown(), pilot)
        assert engine_orders(engine) == []  # shown in plain words, nothing sent yet
        await pilot.press("enter")
        await confirm(pilot, app, "BUY 2 MESZ6 limit 4,999.75 in paper:FUT50K")
        await pilot.press("y")
        await wait_for(lambda: len(working(engine)) == 1, pilot)
        order = working(engine)[0]
        assert order.source is OrderSource.PALETTE and order.limit_price == D("4999.75")
        key = f"paper:FUT50K|{order.order_id}"
        await wait_for(lambda: app.orders_table.row_count == 1, pilot)

        await pilot.press("f4")
        assert app.focused is app.orders_table
        await pilot.press("m")
        await wait_for(lambda: isinstance(app.screen, ModifyOrderScreen), pilot)
        limit_input = app.screen.query_one("#m-limit")
        limit_input.value = ""
        await pilot.press(*"4999.50", "enter")
        await wait_for(lambda: not isinstance(app.screen, ModifyOrderScreen), pilot)
        await wait_for(lambda: working(engine)[0].limit_price == D("4999.50"), pilot)
        await wait_for(lambda: "4,999.50" in str(app.orders_table.get_row(key)[6]), pilot)

        await pilot.press("c")
        await wait_for(lambda: working(engine) == [], pilot)
        await wait_for(lambda: app.orders_table.row_count == 0, pilot)
        assert engine._orders[("paper:FUT50K", order.order_id)].status is OrderStatus.CANCELLED


async def test_bracket_from_the_ticket(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("f3")
        await pilot.press(*"MES")
        await wait_for(lambda: app.ticket.instrument is not None, pilot)
        # Tab through the ticket as a user would: side, quantity, type, TIF, (prices are disabled
        # for a market order), take-profit, stop-loss.
        await pilot.press("tab", "tab")
        assert app.focused is not None and app.focused.id == "t-qty"
        await pilot.press("2", "tab", "tab", "tab")
        assert app.focused is not None and app.focused.id == "t-tp"
        await pilot.press("8", "tab", "4")
        await pilot.pause()
        assert app.ticket.query_one("#t-qty").value == "2"
        assert (app.ticket.query_one("#t-tp").value, app.ticket.query_one("#t-sl").value) == ("8", "4")
        risk = str(app.ticket.query_one("#t-risk").render())
        # 4 ticks x 2 contracts x $1.25 + fees (2 x 2 x the MES fee per side)
        fee = engine.instrument("MES").fee_per_side * 4
        assert f"${D(10) + fee:,.2f} (4t × 2 × $1.25 + ${fee:,.2f} fees)" in risk
        await pilot.press("ctrl+s")
        await confirm(pilot, app, "BUY 2 MESZ6 at market take-profit 8 ticks stop-loss 4 ticks in paper:FUT50K")
        await pilot.press("y")
        await wait_for(lambda: qty(engine, "MES") == 2, pilot)
        await wait_for(lambda: len(working(engine)) == 2, pilot)
        roles = {o.role: o for o in working(engine)}
        assert roles[OrderRole.TAKE_PROFIT].limit_price == D("5002.25")
        assert roles[OrderRole.STOP_LOSS].stop_price == D("4999.25")
        await wait_for(lambda: app.orders_table.row_count == 2, pilot)
        shown_roles = sorted(str(app.orders_table.get_row_at(i)[8]) for i in range(2))
        assert shown_roles == ["SL", "TP"]


async def test_flatten_all_from_the_command_bar(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await engine.place(OrderRequest(account="paper:FUT50K", symbol="MES", side=Side.BUY, quantity=3))
        es_limit = OrderRequest(
            account="paper:FUT50K",
            symbol="ES",
            side=Side.BUY,
            quantity=1,
            order_type=OrderType.LIMIT,
            limit_price=D(4990),
        )
        await engine.place(es_limit)
        assert qty(engine, "MES") == 3 and len(working(engine)) == 1
        await pilot.press("colon")
        assert app.command_bar.is_open
        await pilot.press(*"flatten all", "enter")
        dialog = await confirm(pilot, app, "FLATTEN EVERYTHING in Paper 50K?")
        assert dialog.danger
        await pilot.press("y")
        await wait_for(lambda: qty(engine, "MES") == 0 and working(engine) == [], pilot)
        await wait_for(lambda: not app.command_bar.is_open, pilot)


async def test_unparsable_commands_say_why_and_make_no_order(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("colon", *"buy 2 MES", "enter")
        error = str(app.command_bar.query_one("#cmd-error").render())
        assert "buy: say how to execute: 'mkt' for market" in error
        assert app.command_bar.is_open  # the text stays for fixing
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await wait_for(lambda: isinstance(app.screen, CommandPalette), pilot)
        await pilot.press(*"sell two ES mkt")
        palette = app.screen
        options = palette.query_one("CommandList")
        await wait_for(lambda: options.option_count > 0, pilot)
        assert "✗ sell: missing quantity, e.g. 'sell 2 TWO mkt'" in str(options.get_option_at_index(0).prompt)
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmDialog)
        await pilot.press("colon", *"buy 1 ES 5000.10 lmt", "enter")
        assert "off the tick grid" in str(app.command_bar.query_one("#cmd-error").render())
        assert engine_orders(engine) == []


async def test_kill_switch_flattens_and_cancels_every_account(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await engine.place(OrderRequest(account="paper:FUT50K", symbol="MES", side=Side.SELL, quantity=2))
        await engine.place(OrderRequest(account="paper:CASH", symbol="AAPL", side=Side.BUY, quantity=100))
        nvda = OrderRequest(
            account="paper:CASH",
            symbol="NVDA",
            side=Side.BUY,
            quantity=10,
            order_type=OrderType.LIMIT,
            limit_price=D(139),
        )
        limit = await engine.place(nvda)
        assert limit.status is OrderStatus.WORKING, limit.reject_reason
        assert qty(engine, "MES") == -2 and qty(engine, "AAPL", "paper:CASH") == 100
        await wait_for(lambda: len(app.bridge.state.working_orders()) == 1, pilot)
        app.orders_table.focus()  # any pane but a text field (there ctrl+k edits: see test_keys_safety)
        await pilot.press("ctrl+k")
        dialog = await confirm(pilot, app, "Flatten and cancel EVERYTHING in EVERY account?")
        assert "2 open positions close at market; 1 working order is cancelled." in dialog.details[0]
        await pilot.press("y")
        await wait_for(
            lambda: qty(engine, "MES") == 0 and qty(engine, "AAPL", "paper:CASH") == 0 and not engine.open_orders(),
            pilot,
        )


async def test_confirmation_off_is_shown_and_skips_the_dialog(engine, settings) -> None:
    settings.accounts["paper:FUT50K"] = AccountSettings(confirm_orders=False)
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        assert str(app.ticket.query_one("#t-confirm").render()) == "CONFIRM OFF"
        assert "CONFIRM OFF" in str(app.status.render())
        await pilot.press("s")
        await wait_for(lambda: qty(engine, "MES") == -1, pilot)
        assert not isinstance(app.screen, ConfirmDialog)


def _max_qty_5(settings) -> None:
    settings.accounts["paper:FUT50K"] = AccountSettings(max_order_qty=5)


@pytest.mark.tterm_settings.with_args(_max_qty_5)
async def test_refused_order_is_not_confirmed_or_sent(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await started(app, pilot)
        app.ticket.query_one("#t-qty").value = "9"
        await pilot.press("b")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmDialog)
        assert engine_orders(engine) == []
        texts = [n.message for n in app._notifications]
        assert any(t.startswith("REFUSED BUY 9 MESZ6") and "maximum order size of 5" in t for t in texts), texts


async def test_rejected_order_shows_its_reason_in_fills_and_rejects(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        # A buy stop below the market passes the paper broker only if the engine misses it; send one the
        # broker refuses instead: a market order in a symbol that has no quote yet.
        order = await engine.place(OrderRequest(account="paper:FUT50K", symbol="MCL2!", side=Side.BUY, quantity=1))
        assert order.status is OrderStatus.REJECTED
        await wait_for(lambda: app.fills_table.row_count == 1, pilot)
        row = [str(c) for c in app.fills_table.get_row_at(0)]
        assert row[7].startswith("REJECTED: ") and order.reject_reason in row[7]


async def test_watch_unwatch_list_and_sort_from_the_command_bar(engine, settings) -> None:
    saved = []
    app = make_app(engine, settings, persist=lambda edits: saved.append({**edits[("watchlists",)].values,
                   **{k[-1]: v for k, v in edits.items() if len(k) == 2}}))  # fmt: skip
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("colon", *"list stocks", "enter")
        await wait_for(lambda: app.grid.list_name == "stocks", pilot)
        await pilot.press("colon", *"unwatch TSLA", "enter")
        await wait_for(lambda: "TSLA" not in [r.listed for r in app.grid.rows], pilot)
        await pilot.press("colon", *"watch NFLX", "enter")
        await wait_for(lambda: "NFLX" in [r.listed for r in app.grid.rows], pilot)
        assert saved[-1]["stocks"][-1] == "NFLX" and "TSLA" not in saved[-1]["stocks"]
        await push(engine, "NFLX", bid="900.00", ask="900.10", last="900.05", prev_close="890.00")
        await wait_for(lambda: next(r for r in app.grid.rows if r.listed == "NFLX").quote is not None, pilot)
        await pilot.press("colon", *"sort last", "enter")
        await wait_for(lambda: app.grid.rows[0].listed == "NFLX", pilot)
        assert [r.listed for r in app.grid.rows][:3] == ["NFLX", "SPY", "META"]
        await pilot.press("colon", *"watch NOPE1", "enter")
        assert "cannot watch NOPE1" in str(app.command_bar.query_one("#cmd-error").render())


async def test_user_keymap_remaps_a_binding(engine, settings) -> None:
    settings.keymap = {"watchlist.buy": "f9", "buy": "f10"}
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await started(app, pilot)
        warnings = [n.message for n in app._notifications]
        assert any("no binding with id 'buy' (did you mean 'watchlist.buy'?)" in w for w in warnings), warnings
        await pilot.press("b")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, ConfirmDialog)
        await pilot.press("f9")
        await confirm(pilot, app, "BUY 1 MESZ6 at market")


async def test_account_switch_and_theme_verbs(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        assert app.account == "paper:FUT50K"
        await pilot.press("colon", *"account paper cash", "enter")
        await wait_for(lambda: app.account == "paper:CASH", pilot)
        assert app.ticket.account == "paper:CASH"
        await pilot.press("colon", *"theme tterm-cb", "enter")
        await wait_for(lambda: app.theme == "tterm-cb", pilot)
        await pilot.press("colon", *"theme nope", "enter")
        assert "no theme 'nope'" in str(app.command_bar.query_one("#cmd-error").render())
        await pilot.press("escape", "f8")
        assert app.account == "paper:FUT50K"


async def test_help_screen_lists_every_binding(engine, settings) -> None:
    from tterm.tui.keymap import SPECS
    from tterm.tui.screens.help import HelpScreen

    settings.keymap = {"watchlist.sell": "f10"}
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("f1")
        await wait_for(lambda: isinstance(app.screen, HelpScreen), pilot)
        text = app.export_screenshot()
        for spec in SPECS[:8]:
            assert spec.id in text
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(app.screen, HelpScreen), pilot)


async def test_ticket_symbol_typing_validates_as_you_type(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        assert app.ticket.query_one("#t-symbol").value == "MES1!"  # prefilled from the watchlist
        await pilot.press("f3")
        assert app.focused is not None and app.focused.id == "t-symbol"
        await pilot.press(*"NOPE9")
        await pilot.pause()
        assert app.ticket.instrument is None
        assert app.ticket.query_one("#t-symbol").has_class("-invalid")
        status = str(app.ticket.query_one("#t-status").render())
        assert "NOPE9" in status
        for _ in range(5):
            await pilot.press("backspace")
        await pilot.press(*"NQ")
        await wait_for(lambda: app.ticket.instrument is not None and app.ticket.instrument.root == "NQ", pilot)
        assert not app.ticket.query_one("#t-symbol").has_class("-invalid")
        await wait_for(lambda: "bid 21,000.00" in str(app.ticket.query_one("#t-quote").render()), pilot)
        app.ticket.query_one("#t-type").value = OrderType.LIMIT
        await pilot.pause()
        assert "needs a limit price" in str(app.ticket.query_one("#t-status").render())
        app.ticket.query_one("#t-limit").focus()
        await pilot.press("up")  # an empty price starts from the market: the bid for a buy
        assert app.ticket.query_one("#t-limit").value == "21000.00"
        await pilot.press("up", "up", "shift+up")
        assert app.ticket.query_one("#t-limit").value == "21003.00"
        app.ticket.query_one("#t-limit").value = "21000.10"
        await pilot.pause()
        assert "off the tick grid" in str(app.ticket.query_one("#t-status").render())
        assert app.ticket.query_one("#t-limit").has_class("-invalid")


async def test_palette_keeps_textual_commands_and_navigates(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("ctrl+p")
        await wait_for(lambda: isinstance(app.screen, CommandPalette), pilot)
        await pilot.press(*"theme")
        options = app.screen.query_one("CommandList")

        def prompts() -> list[str]:
            return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]

        await wait_for(lambda: any(p.startswith("Theme") for p in prompts()), pilot)
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(app.screen, CommandPalette), pilot)
        await pilot.press("ctrl+p")
        await wait_for(lambda: isinstance(app.screen, CommandPalette), pilot)
        await pilot.press(*"go fills")
        options = app.screen.query_one("CommandList")
        await wait_for(lambda: any("go to the fills pane" in p for p in prompts()), pilot)
        await pilot.press("enter")
        await wait_for(lambda: app.focused is app.fills_table, pilot)


async def test_status_bar_shows_each_connection_with_the_age_of_its_last_message(engine, settings) -> None:
    from datetime import timedelta

    from tests.tui.conftest import FROZEN

    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        app.wall = lambda: FROZEN + timedelta(seconds=12)
        paper = engine.brokers["paper"]
        paper._last_message_at = FROZEN + timedelta(seconds=7)
        engine.publish_connection_ages()
        await wait_for(lambda: "paper ● connected 5.0s" in str(app.status.render()), pilot)
        assert "PAPER" in str(app.status.render()) and "CT 09:30:00" in str(app.status.render())


async def test_lock_verb_locks_the_account_after_asking(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("colon", *"lock done for today", "enter")
        dialog = await confirm(pilot, app, "LOCK Paper 50K for the rest of the session?")
        assert dialog.danger
        await pilot.press("y")
        await wait_for(lambda: app.bridge.state.is_locked("paper:FUT50K"), pilot)
        await wait_for(lambda: "LOCKED" in str(app.status.render()), pilot)
        assert engine.lock_for("paper:FUT50K").reason == "done for today"


async def test_watchlist_keys_add_remove_and_switch_lists(engine, settings) -> None:
    from tterm.tui.modals.prompt import Prompt

    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("right_square_bracket")
        await wait_for(lambda: app.grid.list_name == "stocks", pilot)
        assert "Watchlist: stocks (2/2)" in str(app.grid.border_title)
        await pilot.press("a")
        await wait_for(lambda: isinstance(app.screen, Prompt), pilot)
        await pilot.press(*"nflx iwm", "enter")
        await wait_for(lambda: [r.listed for r in app.grid.rows][-2:] == ["NFLX", "IWM"], pilot)
        assert app.grid.cursor_symbol == "IWM"
        await pilot.press("x")
        await wait_for(lambda: "IWM" not in [r.listed for r in app.grid.rows], pilot)
        assert app.watchlists["stocks"][-1] == "NFLX"
        await pilot.press("left_square_bracket")
        await wait_for(lambda: app.grid.list_name == "futures", pilot)
        await pilot.press("o")
        assert app.grid.sort_key == "symbol" and app.grid.rows[0].listed == "CL1!"

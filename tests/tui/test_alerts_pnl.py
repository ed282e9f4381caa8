"""Price alerts, the P&L history and symbol search in the real app on the paper broker, driven by
real keys: an alert fires once (toast and bell), survives a restart, is journaled; the alerts
screen adds, edits and removes; the P&L screen's curve matches the fills; search adds a symbol."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from textual.command import CommandPalette

from tests.tui.conftest import frozen_now, make_app, push, wait_for
from tterm.config import Settings
from tterm.core.alerts import AlertState
from tterm.core.clock import CmeClock
from tterm.core.engine import Engine
from tterm.runtime import build_engine
from tterm.tui.modals.confirm import ConfirmDialog
from tterm.tui.modals.prompt import Prompt
from tterm.tui.screens.alerts import AlertsScreen
from tterm.tui.screens.pnl import PnlScreen
from tterm.tui.screens.search import SearchScreen
from tterm.tui.widgets.equity_curve import EquityCurve

D = Decimal
SIZE = (140, 44)


async def started(app: Any, pilot: Any) -> None:
    await wait_for(app.ready.is_set, pilot)
    await pilot.pause()


def toasts(app: Any, text: str) -> list[str]:
    return [n.message for n in app._notifications if text in n.message]


def bells(app: Any) -> list[int]:
    rung: list[int] = []
    app.bell = lambda: rung.append(1)
    return rung


def alert_rows(engine: Engine) -> list[str]:
    return [e.data["event"] for e in engine.journal.entries(kind="alert")]


async def at(engine: Engine, symbol: str, last: str) -> None:
    """A trade at ``last`` with the market one tick around it (the paper broker is strict)."""
    await push(engine, symbol, last=last, bid=str(D(last) - D("0.25")), ask=last)


def bar_error(app: Any) -> str:
    return str(app.command_bar.query_one("#cmd-error").render())


async def test_an_alert_from_the_command_bar_fires_once_with_a_toast_and_the_bell(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await started(app, pilot)
        rung = bells(app)
        await pilot.press("colon", *"alert MES > 5001", "enter")
        await wait_for(lambda: len(app.bridge.state.alerts) == 1, pilot)
        [alert] = app.bridge.state.alerts.values()
        assert alert.armed and alert.symbol == "MESZ6"
        await wait_for(lambda: toasts(app, "alert #1 armed"), pilot)
        await at(engine, "MES", "5001.00")
        await pilot.pause(0.1)
        assert toasts(app, "ALERT #1") == [] and rung == []
        await at(engine, "MES", "5001.25")
        await wait_for(lambda: len(toasts(app, "ALERT #1")) == 1, pilot)
        assert rung == [1]
        await at(engine, "MES", "5003.00")
        await at(engine, "MES", "5000.00")
        await at(engine, "MES", "5002.00")
        await pilot.pause(0.2)
        assert len(toasts(app, "ALERT #1")) == 1 and rung == [1]
        assert app.bridge.state.alerts[1].state is AlertState.FIRED
        assert alert_rows(engine) == ["created", "fired"]


async def test_bad_alerts_are_refused_with_the_reason_and_create_nothing(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await started(app, pilot)
        for text, reason in (
            ("alert NOPE > 5", "NOPE"),
            ("alert MES > 5000.10", "off the tick grid"),
            ("alert MES = 5000", "'=' is not a condition"),
            ("alert MES > -1", "must be positive"),
            ("alert MES crosses", "missing the price"),
            ("alert MES > 5001 webhook phone", "no webhook named 'phone'"),
            ("alert rm 7", "no alert #7"),
        ):
            await pilot.press("colon", *text, "enter")
            await wait_for(lambda reason=reason: reason in bar_error(app), pilot)
            assert app.command_bar.is_open
            await pilot.press("escape")
            await wait_for(lambda: not app.command_bar.is_open, pilot)
        assert await engine.list_alerts() == [] and alert_rows(engine) == []


async def test_the_alerts_screen_adds_edits_and_removes_with_keys(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await started(app, pilot)
        await pilot.press("colon", *"alert AAPL crosses 190", "enter")
        await wait_for(lambda: len(app.bridge.state.alerts) == 1, pilot)
        await pilot.press("colon", *"alerts", "enter")
        await wait_for(lambda: isinstance(app.screen, AlertsScreen), pilot)
        screen = app.screen
        await wait_for(lambda: screen.table.row_count == 1, pilot)
        assert "AAPL" in str(screen.table.get_row_at(0)[1])
        # a: a new alert, typed in the prompt (keys there are text, never the screen's hotkeys)
        await pilot.press("a")
        await wait_for(lambda: isinstance(app.screen, Prompt), pilot)
        await pilot.press(*"MES bid < 4990 note ax", "enter")
        await wait_for(lambda: screen.table.row_count == 2, pilot)
        assert [a.describe() for a in app.bridge.state.alerts.values()] == [
            "AAPL last crosses 190.00",
            "MES (MESZ6) bid < 4990.00",
        ]
        # e: edit the selected one (the cursor is on the first row): a new alert takes its place
        await pilot.press("e")
        await wait_for(lambda: isinstance(app.screen, Prompt), pilot)
        assert app.screen.query_one("#prompt-input").value == "AAPL crosses 190.00"
        await pilot.press(*["backspace"] * 6, *"195", "enter")
        await wait_for(lambda: 3 in app.bridge.state.alerts and 1 not in app.bridge.state.alerts, pilot)
        assert app.bridge.state.alerts[3].price == D("195.00")
        # a bad edit changes nothing
        await wait_for(lambda: [k.value for k in screen.table.rows] == ["2", "3"], pilot)
        await pilot.press("e")
        await wait_for(lambda: isinstance(app.screen, Prompt), pilot)
        await pilot.press(*["backspace"] * 40, *"MES == 5", "enter")
        await wait_for(lambda: toasts(app, "'==' is not a condition"), pilot)
        assert sorted(app.bridge.state.alerts) == [2, 3]
        # x: remove the selected one
        await wait_for(lambda: isinstance(app.screen, AlertsScreen), pilot)
        await pilot.press("x")
        await wait_for(lambda: screen.table.row_count == 1, pilot)
        assert sorted(a.alert_id for a in await engine.list_alerts()) == [3]
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(app.screen, AlertsScreen), pilot)
        await pilot.press("colon", *"alert rm 3", "enter")
        await wait_for(lambda: not app.bridge.state.alerts, pilot)
        assert alert_rows(engine) == ["created", "created", "created", "removed", "removed", "removed"]


async def _engine(root: Path, settings: Settings) -> Engine:
    eng = build_engine(settings, paper_seed=7, scripted=True, clock=CmeClock(now=frozen_now), root=root)
    await eng.start()
    await eng.subscribe(["MES"])
    await push(eng, "MES")
    return eng


async def test_an_alert_survives_a_restart_and_fires_after_it_once(tmp_path: Path, settings: Settings) -> None:
    first = await _engine(tmp_path, settings)
    app = make_app(first, settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await started(app, pilot)
        await pilot.press("colon", *"alert MES crosses 5010", "enter")
        await wait_for(lambda: len(app.bridge.state.alerts) == 1, pilot)
    await first.stop()
    first.journal.close()

    second = await _engine(tmp_path, settings)
    app = make_app(second, settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await started(app, pilot)
        rung = bells(app)
        await pilot.press("colon", *"alerts", "enter")
        await wait_for(lambda: isinstance(app.screen, AlertsScreen), pilot)
        await wait_for(lambda: app.screen.table.row_count == 1, pilot)
        assert "ARMED" in str(app.screen.table.get_row_at(0)[3])
        await at(second, "MES", "5011.00")
        await wait_for(lambda: len(toasts(app, "ALERT #1")) == 1, pilot)
        await wait_for(lambda: str(app.screen.table.get_row_at(0)[3]) == "fired", pilot)
        assert "5011.00" in str(app.screen.table.get_row_at(0)[4]) and rung == [1]
    await second.stop()
    second.journal.close()

    third = await _engine(tmp_path, settings)
    app = make_app(third, settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await started(app, pilot)
        await at(third, "MES", "5000.00")
        await at(third, "MES", "5020.00")
        await pilot.pause(0.2)
        assert toasts(app, "ALERT #1") == []
        assert alert_rows(third) == ["created", "fired"]
    await third.stop()
    third.journal.close()


async def test_the_pnl_screen_curve_matches_the_fills(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await started(app, pilot)
        trades = (("buy 2 MES mkt", "5001.00"), ("sell 3 MES mkt", "5003.50"), ("buy 1 MES mkt", None))
        for done, (text, last) in enumerate(trades, start=1):
            await pilot.press("colon", *text, "enter")
            await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
            await pilot.press("y")
            await wait_for(lambda done=done: len(app.bridge.state.fills) == done, pilot)
            if last is not None:
                await at(engine, "MES", last)
        await wait_for(lambda: len(app.bridge.state.fills) == 3, pilot)
        fills = list(app.bridge.state.fills.values())
        pv = engine.instrument("MES").point_value
        cash = sum((-f.signed_quantity * f.price * pv - f.fee for f in fills), D(0))
        await pilot.press("colon", *"pnl 1", "enter")
        await wait_for(lambda: isinstance(app.screen, PnlScreen) and app.screen.report is not None, pilot)
        screen = app.screen
        report = screen.report
        assert report.curve[-1].equity == report.net == cash
        assert screen.query_one(EquityCurve).values == [p.equity for p in report.curve]
        assert len(report.curve) == 3 and report.open_lots == ()
        assert screen.query_one("#pnl-trips").row_count == 2 and screen.query_one("#pnl-days").row_count == 1
        summary = str(screen.query_one("#pnl-summary").render())
        assert f"Net {cash:+,.2f}" in summary
        await pilot.press("a")  # every account -> the first account
        first = next(iter(app.bridge.state.accounts))
        await wait_for(lambda: screen.account == first, pilot)
        await wait_for(lambda: screen.report.accounts in ((first,), ()), pilot)
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(app.screen, PnlScreen), pilot)


async def test_search_from_the_command_bar_and_the_palette_adds_to_the_watchlist(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await started(app, pilot)
        await pilot.press("colon", *"list stocks", "enter")
        await wait_for(lambda: app.list_name == "stocks", pilot)
        await pilot.press("colon", *"search MGC", "enter")
        await wait_for(lambda: isinstance(app.screen, SearchScreen) and app.screen.found, pilot)
        assert all("MGC" in i.symbol for i in app.screen.found)
        await pilot.press("enter")
        await wait_for(lambda: not isinstance(app.screen, SearchScreen), pilot)
        await wait_for(lambda: any(s.startswith("MGC") for s in app.watchlists["stocks"]), pilot)

        await pilot.press("ctrl+p")
        await wait_for(lambda: isinstance(app.screen, CommandPalette), pilot)
        await pilot.press(*"search MCL")
        palette = app.screen

        def shown() -> str:
            options = palette.query_one("CommandList")
            return " ".join(str(options.get_option_at_index(i).prompt) for i in range(options.option_count))

        await wait_for(lambda: "watch MCL" in shown(), pilot)
        await pilot.press("enter")
        await wait_for(lambda: any(s.startswith("MCL") for s in app.watchlists["stocks"]), pilot)
        assert toasts(app, "watching MCL")

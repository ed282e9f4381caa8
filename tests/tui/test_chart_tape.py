"""The chart and the time and sales screens, driven with real keys on the scripted paper broker."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from textual.widgets import Input

from tests.tui.conftest import MARKET, make_app, push, wait_for
from tterm.core.models import Timeframe
from tterm.tui.screens.chart import ChartScreen
from tterm.tui.screens.tape import TapeScreen

D = Decimal


async def _ready(app, pilot) -> None:
    await wait_for(app.ready.is_set, pilot)
    await wait_for(lambda: all(r.quote is not None for r in app.grid.rows), pilot)


async def _type(pilot, text: str) -> None:
    await pilot.press("colon")
    await pilot.press(*[{" ": "space"}.get(c, c) for c in text])
    await pilot.press("enter")


def _volume(engine, symbol: str) -> int:
    return engine.quote(engine.instrument(symbol).symbol).volume


async def test_chart_shows_history_then_updates_from_a_trade_and_changes_timeframe(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=(120, 40)) as pilot:
        await _ready(app, pilot)
        await _type(pilot, "chart MES 1m")
        await wait_for(lambda: isinstance(app.screen, ChartScreen) and app.screen.series is not None, pilot)
        screen = app.screen
        assert isinstance(screen, ChartScreen)
        await wait_for(lambda: screen.live and len(screen.series) > 0, pilot)
        chart = screen.chart
        assert app.focused is chart
        series = screen.series
        assert series is not None and series.timeframe is Timeframe.M1 and len(series) > 50
        assert chart.following and chart.layouts >= 1
        lines = chart.text_lines()
        assert "MESZ6 1m" in lines[0] and "LIVE" in lines[0]
        assert any(ch in "".join(lines) for ch in "█▀▄┃│")  # candles were drawn
        # A print: the last bar takes it and only its column repaints.
        bars_before, repaints = len(series), chart.column_repaints
        vol_before = series.bars[-1].volume
        await push(engine, "MES", bid="5000.25", ask="5000.50", last="5000.50", volume=_volume(engine, "MES") + 3)
        await wait_for(lambda: series.bars[-1].close == D("5000.50"), pilot)
        assert len(series) == bars_before and series.bars[-1].volume == vol_before + 3
        await pilot.pause()
        assert chart.column_repaints > repaints or chart.layouts > 1
        assert "5,000.50" in "".join(chart.text_lines())  # the last price on the axis
        # Keys: a timeframe change loads that history; the cursor pans and pauses following.
        await pilot.press("3")
        await wait_for(lambda: screen.series is not None and screen.series.timeframe is Timeframe.M5, pilot)
        assert "MESZ6 5m" in chart.text_lines()[0]
        await pilot.press("left", "left")
        assert not chart.following and chart.cursor_index == len(screen.series) - 3
        assert "PAUSED" in chart.text_lines()[0]
        await pilot.press("end")
        assert chart.following
        zoom = chart.zoom
        await pilot.press("minus")
        assert chart.zoom == zoom - 1
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(app.screen, ChartScreen), pilot)
        assert app.focused is app.grid
        await wait_for(lambda: engine.subscriptions("trades") == {}, pilot)  # the feed is given back


async def test_a_timeframe_the_broker_lacks_is_refused_and_the_chart_stays(engine, settings) -> None:
    paper = engine.brokers["paper"]
    paper.capabilities = replace(paper.capabilities, timeframes=frozenset(set(Timeframe) - {Timeframe.S1}))
    app = make_app(engine, settings)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await _ready(app, pilot)
        await pilot.press("c")  # the watchlist key: the cursor row (MES1!)
        await wait_for(lambda: isinstance(app.screen, ChartScreen) and app.screen.series is not None, pilot)
        screen = app.screen
        await wait_for(lambda: len(screen.series) > 0, pilot)
        await pilot.press("1")
        await wait_for(lambda: "not supported" in screen.chart.message, pilot)
        assert screen.series.timeframe is Timeframe.M1
        assert "1s bars: not supported by paper: 1s bars (it has 1m, 5m, 15m, 1h, 1d)" in screen.chart.message
        assert any("not supported by paper" in n.message for n in app._notifications)


async def test_chart_verbs_refuse_bad_input_and_open_nothing(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await _ready(app, pilot)

        def said(text: str) -> bool:
            return any(text in n.message for n in app._notifications)

        await _type(pilot, "chart MES 7m")
        await wait_for(lambda: said("chart: unknown timeframe '7m' (one of 1s, 1m, 5m, 15m, 1h, 1d)"), pilot)
        assert not isinstance(app.screen, ChartScreen)
        app.command_bar.query_one(Input).value = ""
        await pilot.press("escape")
        await _type(pilot, "chart NOPE")
        await wait_for(lambda: said("unknown symbol 'NOPE'"), pilot)
        assert not isinstance(app.screen, ChartScreen)
        app.command_bar.query_one(Input).value = ""
        await pilot.press("escape")
        await _type(pilot, "tape MES 0")
        await wait_for(lambda: said("the large-print size '0' must be a whole number of at least 1"), pilot)
        assert engine.subscriptions("trades") == {}


async def test_tape_shows_prints_with_aggressor_and_marks_large_ones(engine, settings) -> None:
    settings.screens.large_print = {"MES": 25}
    app = make_app(engine, settings)
    async with app.run_test(size=(100, 30)) as pilot:
        await _ready(app, pilot)
        await pilot.press("t")
        await wait_for(lambda: isinstance(app.screen, TapeScreen) and app.screen.live, pilot)
        screen = app.screen
        tape = screen.tape
        assert tape.large == 25 and app.focused is tape
        tape.rows.clear()
        large_before = tape.large_prints
        await push(engine, "MES", bid="5000.25", ask="5000.50", last="5000.50", volume=_volume(engine, "MES") + 2)
        await push(engine, "MES", bid="4999.75", ask="5000.00", last="4999.75", volume=_volume(engine, "MES") + 40)
        await wait_for(lambda: len(tape.rows) >= 2, pilot)
        newest, older = tape.text_lines()[:2]
        big, small = tape.rows[-1].size, tape.rows[-2].size
        assert small < 25 <= big < 50  # the paper book's own volume accounting sets the exact sizes
        assert "4,999.75" in newest and f"{big:>8}" in newest and "SELL" in newest and newest.startswith("◆")
        assert "5,000.50" in older and "BUY" in older and not older.startswith("◆")
        assert "09:30:00.000" in newest  # exchange time (Chicago), to the millisecond
        assert tape.rows[-1].large and not tape.rows[-2].large
        assert tape.large_prints == large_before + 1 and f"large ≥25: {large_before + 1}" in tape.summary()
        await pilot.press("plus")  # the large size doubles: the big print is no longer large
        assert tape.large == 50 and not tape.rows[-1].large and not tape.text_lines()[0].startswith("◆")
        await pilot.press("up")
        assert tape.back == 1 and "PAUSED" in tape.summary()
        await pilot.press("end")
        assert tape.back == 0
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(app.screen, TapeScreen), pilot)
        await wait_for(lambda: engine.subscriptions("trades") == {}, pilot)  # the feed is given back
    assert MARKET["MES"][0] == "5000.00"


async def test_the_users_working_orders_and_fills_are_drawn_at_their_prices(engine, settings) -> None:
    from tterm.core.models import OrderRequest, OrderType, Side

    contract = engine.instrument("MES").symbol
    await engine.place(OrderRequest("paper:FUT50K", contract, Side.BUY, 1, OrderType.MARKET))
    app = make_app(engine, settings)
    async with app.run_test(size=(120, 40)) as pilot:
        await _ready(app, pilot)
        await wait_for(lambda: bool(app.bridge.state.fills), pilot)
        # One-second bars: today's prints only (the paper session has no earlier seconds, which
        # the chart says), so the orders below sit inside the drawn range.
        await _type(pilot, "chart MES 1s")
        await wait_for(lambda: isinstance(app.screen, ChartScreen) and app.screen.series is not None, pilot)
        chart = app.screen.chart
        assert "reach back" in chart.message
        for bid, ask, last in (("5003.75", "5004.00", "5004.00"), ("4996.00", "4996.25", "4996.00"),
                               ("5000.00", "5000.25", "5000.25")):  # fmt: skip
            await push(engine, "MES", bid=bid, ask=ask, last=last, volume=_volume(engine, "MES") + 1)
        await wait_for(lambda: len(app.screen.series) > 0 and app.screen.series.bars[-1].low == D("4996.00"), pilot)
        sell = OrderRequest("paper:FUT50K", contract, Side.SELL, 2, OrderType.LIMIT, limit_price=D("5003.00"))
        assert (await engine.place(sell)).is_open
        await wait_for(lambda: bool(chart.orders) and bool(chart.fills), pilot)
        assert [(m.side, m.quantity, m.price, m.kind) for m in chart.orders] == [(Side.SELL, 2, D("5003.00"), "LMT")]
        [fill] = chart.fills
        assert (fill.side, fill.price) == (Side.BUY, D("5000.25"))
        text = "\n".join(chart.text_lines())
        assert "◀S2 5,003.00" in text and "▲" in text  # the order on the axis, the fill on its bar
        row = next(line for line in chart.text_lines() if "S2 5,003.00" in line)
        assert row.count("┄") > 10  # the order's dotted line across the plot
        # A new working order appears without reopening the chart.
        stop = OrderRequest("paper:FUT50K", contract, Side.BUY, 1, OrderType.STOP, stop_price=D("5002.00"))
        assert (await engine.place(stop)).is_open
        await wait_for(lambda: len(chart.orders) == 2, pilot)
        assert "B1 5,002.00" in "\n".join(chart.text_lines())

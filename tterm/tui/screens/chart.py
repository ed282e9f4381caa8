"""The chart screen (``chart MES 1m``, key ``c`` on the watchlist): live candles with volume.

History comes from the broker's bars (``EngineClient.bars``), then every print of the trades feed
(``subscribe_trades``) updates the last bar or opens the next one (:class:`~tterm.core.barseries.BarSeries`).
Prints that arrive while the history loads are dropped: the history, asked for after the feed
was subscribed, already holds them. A timeframe the broker lacks leaves the chart as it was and
says so; a symbol without a trades feed still shows its history, marked "no live prints".
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.widgets import Footer

from tterm.core.barseries import BarSeries
from tterm.core.client import EngineError
from tterm.core.models import Fill, Order, OrderType, Timeframe, Trade
from tterm.tui.screens.market import MarketScreen
from tterm.tui.widgets.candles import CandleChart, FillMark, OrderMark

LOOKBACK_BARS = 600
"""Bars of history asked for (more than the widest screen shows at one column per bar)."""

MARKS_INTERVAL = 0.25
"""The orders and fills drawn are looked up at most four times a second."""


class ChartScreen(MarketScreen):
    """One symbol's candles at one timeframe; ``[``/``]`` or 1-6 change the timeframe."""

    DEFAULT_CSS = """
    ChartScreen CandleChart { height: 1fr; }
    """

    def __init__(self, *args: Any, timeframe: Timeframe = Timeframe.M1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeframe = timeframe
        self.series: BarSeries | None = None
        self.live = False  # the trades feed is subscribed
        self._loading = True
        self._marks_at = -1e9
        self._marks_until = 0.0
        self.title = f"chart {self.instrument.symbol}"

    @property
    def chart(self) -> CandleChart:
        return self.query_one(CandleChart)

    def compose(self) -> ComposeResult:
        yield CandleChart(id="chart")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        chart = self.chart
        chart.tz = self.tz or chart.tz
        chart.show(None, self.instrument, f"loading {self.timeframe.value} bars…")
        chart.focus()

    async def start(self) -> None:
        contract = self.instrument.symbol
        if not self.live:
            try:
                await self.engine.subscribe_trades([contract])
                self.live = True
            except EngineError as exc:
                self.notify(f"chart {contract}: no live prints ({exc})", severity="warning", timeout=8)
        await self.load(self.timeframe, first=True)

    async def stop(self) -> None:
        if self.live:
            self.live = False
            await self.engine.unsubscribe_trades([self.instrument.symbol])

    async def load(self, timeframe: Timeframe, *, first: bool = False) -> bool:
        """Load ``timeframe``'s history and show it; on a refusal keep what is shown and say why."""
        self._loading = True
        contract = self.instrument.symbol
        start = self.now() - timedelta(seconds=timeframe.seconds * LOOKBACK_BARS)
        try:
            bars = await self.engine.bars(contract, timeframe, start)
        except EngineError as exc:
            self._loading = False
            message = f"{timeframe.value} bars: {exc}"
            self.notify(message, title=f"chart {contract}", severity="error", timeout=10)
            if first or self.series is None:
                # No history: chart the live prints alone, from now on.
                self.series = BarSeries(contract, timeframe)
                self.timeframe = timeframe
                self.chart.show(self.series, self.instrument, message)
                self._update_marks(force=True)
            else:
                self.chart.say(f"{message}; still {self.timeframe.value}")
            return False
        series = BarSeries(contract, timeframe)
        series.load(bars)
        if self.stream is not None:
            self.stream.drain()  # prints from before the history are in it already
        self.series = series
        self.timeframe = timeframe
        self._loading = False
        self.chart.show(series, self.instrument, "" if self.live else "no live prints")
        self._update_marks(force=True)
        return True

    @on(CandleChart.TimeframeWanted)
    def _timeframe_wanted(self, event: CandleChart.TimeframeWanted) -> None:
        event.stop()
        if event.timeframe is self.timeframe and self.series is not None:
            return
        self.chart.say(f"loading {event.timeframe.value} bars…")
        self.run_worker(self.load(event.timeframe), group="chart-load", exclusive=True, exit_on_error=False)

    def apply(self, events: list[Any]) -> None:
        series = self.series
        if series is None or self._loading:
            return
        contract = self.instrument.symbol
        changed: set[int] = set()
        for ev in events:
            t = type(ev)
            if t is Trade:
                if ev.symbol == contract:
                    i = series.add_trade(ev.price, ev.size, ev.ts)
                    if i is not None:
                        changed.add(i)
            elif (t is Order or t is Fill) and ev.symbol == contract:
                # The app's state takes these in its own frame: look again for a second.
                self._marks_until = time.monotonic() + 1.0
        if changed:
            self.chart.bars_changed(changed)
        self._update_marks()

    def _update_marks(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and (now > self._marks_until or now - self._marks_at < MARKS_INTERVAL):
            return
        self._marks_at = now
        contract = {self.instrument.symbol}
        orders = []
        for o in self.working_orders(contract):
            kind = {OrderType.LIMIT: "LMT", OrderType.STOP: "STP", OrderType.STOP_LIMIT: "STL"}.get(o.order_type)
            price = o.stop_price if o.order_type in (OrderType.STOP, OrderType.STOP_LIMIT) else o.limit_price
            if kind is not None and price is not None:
                orders.append(OrderMark(price, o.side, o.remaining, kind))
        fills = [FillMark(f.ts, f.price, f.side, f.quantity) for f in self.fills_of(contract)]
        self.chart.set_marks(sorted(orders, key=lambda m: m.price), sorted(fills, key=lambda m: m.ts))


__all__ = ["ChartScreen"]

"""The terminal under a firehose: 2,000 symbols, 20,000 quote updates a second, into the running app.

The watchlists are measured the same way, so the ratios are visible:

- ``tterm``     the whole TtermApp (line-API watchlist, ticket, blotter, status, risk panes) at the
                default ``refresh_hz`` (30 since [general] says so; ``tterm30`` sets 30 explicitly,
                the same figures, kept for comparison with older runs), and ``tterm-ssh`` under
                the SSH profile (8 Hz: fewer bytes, more latency);
- ``grid``      the line-API QuoteGrid alone in a bare app;
- ``datatable`` a plain DataTable watchlist in a bare app (latest value per symbol, flushed per
                frame inside ``batch_update``, changed cells only: the best a DataTable can do).

Printed per watchlist (headless, 200x50):

- tick-to-screen p50/p99: from a quote's publish to the end of the frame that drew it (visible
  rows only: a quote for a row off screen never reaches the screen);
- frame time p50/p99: time spent composing a frame (``Screen._compositor_refresh``, a private
  hook used here for measuring only), and frames per second;
- keypress-to-screen p99: a ``down`` key injected as a driver would, until the cursor moved and a
  frame was composed;
- the feed rate reached (if the producer falls behind, the app is stealing its time);

then, with each watchlist run in a real pty at 200x50 (Linux driver), the terminal bytes written
per second with truecolor and with 256 colours.

``tterm-dom`` is the whole app with the DOM price ladder open beside the watchlist (20 price rows
visible at 200x50), its symbol's book updating 200 times a second (20 levels a side) and 50
prints a second, on top of the watchlist firehose: its tick-to-screen is from a book's publish to
the frame that drew the ladder with it, and its keys move the ladder's cursor.

Goals from the issue: p99 tick-to-screen <= 50 ms, p99 keypress <= 30 ms, <= 100 KiB/s at 200x50.
Figures only; nothing is asserted. Run: ``python bench/bench_tui.py [--seconds N] [--rate N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import fcntl
import json
import os
import pty
import random
import select
import signal
import struct
import sys
import termios
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tterm.core.bus import Bus, Subscription
from tterm.core.client import EngineError, EngineSnapshot
from tterm.core.instruments import InstrumentMaster
from tterm.core.models import (
    AccountLock,
    ConnectionState,
    ConnectionStatus,
    Depth,
    DepthLevel,
    Instrument,
    Order,
    OrderRequest,
    Quote,
    RiskDecision,
    Side,
    Trade,
)

#: tterm at the default refresh_hz (30), at 30 Hz set explicitly, under the SSH profile (8 Hz), with
#: the DOM ladder open, the bare grid and the bare DataTable.
KINDS = ["tterm", "tterm30", "tterm-ssh", "tterm-dom", "grid", "datatable"]
DEPTH_RATE = 200
TRADE_RATE = 50
LEVELS = 20
SYMBOLS = 2000
RATE = 20_000
SIZE = (200, 50)
ROOT = Path(__file__).resolve().parents[1]


def names(n: int) -> list[str]:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = []
    for i in range(n):
        b, rest = divmod(i, 26 * 26)
        c, d = divmod(rest, 26)
        out.append("Q" + letters[b] + letters[c] + letters[d])
    return out


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


class BenchClient:
    """An EngineClient with a real coalescing Bus and no brokers: quotes come from :meth:`feed`."""

    def __init__(self, symbols: list[str]) -> None:
        self.bus = Bus()
        self.master = InstrumentMaster()
        for s in symbols:
            self.master.add_equity(s)
        self.symbols = symbols
        self.prices = {s: Decimal(100 + (i % 300)) for i, s in enumerate(symbols)}
        self.sent = 0
        self.book_sizes: dict[str, list[int]] = {}

    async def snapshot(self) -> EngineSnapshot:
        status = ConnectionStatus("bench", ConnectionState.CONNECTED, last_message_at=datetime.now(UTC))
        return EngineSnapshot(connections=(status,))

    def events(self) -> Subscription:
        return self.bus.subscribe("bench")

    def instrument(self, symbol: str) -> Instrument:
        return self.master.resolve(symbol)

    async def preview(self, request: OrderRequest) -> RiskDecision:
        raise EngineError("the bench client does not trade")

    async def place(self, request: OrderRequest) -> Order:
        raise EngineError("the bench client does not trade")

    async def cancel(self, account: str, order_id: str) -> Order:
        raise EngineError("the bench client does not trade")

    async def cancel_all(self, account: str | None = None, symbol: str | None = None) -> list[Order]:
        raise EngineError("the bench client does not trade")

    async def modify(self, account: str, order_id: str, **_: Any) -> Order:
        raise EngineError("the bench client does not trade")

    async def flatten(self, account: str | None = None, symbol: str | None = None) -> list[Order]:
        raise EngineError("the bench client does not trade")

    async def subscribe(self, symbols: Iterable[str]) -> list[str]:
        return [self.master.resolve(s).symbol for s in symbols]

    async def unsubscribe(self, symbols: Iterable[str]) -> None:
        return None

    async def subscribe_depth(self, symbols: Iterable[str]) -> list[str]:
        return [self.master.resolve(s).symbol for s in symbols]

    async def unsubscribe_depth(self, symbols: Iterable[str]) -> None:
        return None

    async def subscribe_trades(self, symbols: Iterable[str]) -> list[str]:
        return [self.master.resolve(s).symbol for s in symbols]

    async def unsubscribe_trades(self, symbols: Iterable[str]) -> None:
        return None

    def depth(self, sym: str, rng: random.Random) -> Depth:
        """A 20-level book around the symbol's price: each update changes the size at three
        levels, and one in ten moves the whole book a tick (as a busy futures book does)."""
        tick = Decimal("0.01")
        sizes = self.book_sizes.setdefault(sym, [rng.randrange(1, 900) for _ in range(2 * LEVELS)])
        if rng.random() < 0.1:
            self.prices[sym] += tick * rng.choice((-1, 1))
        for _ in range(3):
            sizes[rng.randrange(len(sizes))] = rng.randrange(1, 900)
        p = self.prices[sym]
        bids = tuple(DepthLevel(p - tick * (i + 1), sizes[i]) for i in range(LEVELS))
        asks = tuple(DepthLevel(p + tick * (i + 1), sizes[LEVELS + i]) for i in range(LEVELS))
        return Depth(sym, bids=bids, asks=asks, ts=datetime.now(UTC))

    async def feed_book(self, sym: str, stop: asyncio.Event) -> None:
        """The ladder's symbol: DEPTH_RATE books and TRADE_RATE prints a second, in 5 ms batches."""
        rng = random.Random(11)
        start = time.perf_counter()
        books = prints = 0
        while not stop.is_set():
            elapsed = time.perf_counter() - start
            while books < int(elapsed * DEPTH_RATE):
                self.bus.publish(self.depth(sym, rng))
                books += 1
            while prints < int(elapsed * TRADE_RATE):
                side = rng.choice((Side.BUY, Side.SELL))
                tick = Decimal("0.01")
                price = self.prices[sym] + (tick if side is Side.BUY else -tick)
                self.bus.publish(Trade(sym, price, rng.randrange(1, 50), side, ts=datetime.now(UTC)))
                prints += 1
            await asyncio.sleep(0.005)
        self.books = books

    async def lock(self, account: str | None, reason: str) -> list[AccountLock]:
        raise EngineError("the bench client does not trade")

    def quote(self, rng: random.Random) -> Quote:
        sym = self.symbols[rng.randrange(len(self.symbols))]
        p = self.prices[sym] + Decimal(rng.choice((-1, 1))) / 100
        self.prices[sym] = p
        return Quote(sym, bid=p - Decimal("0.01"), ask=p + Decimal("0.01"), last=p, prev_close=Decimal(100),
                     bid_size=rng.randrange(1, 900), ask_size=rng.randrange(1, 900), volume=self.sent,
                     ts=datetime.now(UTC))  # fmt: skip

    async def feed(self, rate: int, stop: asyncio.Event) -> None:
        """Publish ``rate`` quotes a second in 5 ms batches (the engine publishes on the loop too)."""
        rng = random.Random(7)
        start = time.perf_counter()
        while not stop.is_set():
            due = int((time.perf_counter() - start) * rate)
            for _ in range(min(due - self.sent, rate // 20)):
                self.bus.publish(self.quote(rng))
                self.sent += 1
            await asyncio.sleep(0.005)


# ------------------------------------------------------------------ the three apps


def make_app(kind: str, client: BenchClient) -> Any:
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    from tterm.config import Settings
    from tterm.tui import format as fmt
    from tterm.tui.app import TtermApp
    from tterm.tui.bridge import Resolved
    from tterm.tui.themes import ThemeVariablesMixin, load_themes, theme_dirs
    from tterm.tui.widgets.quote_grid import QuoteGrid

    if kind.startswith("tterm"):
        settings = Settings()
        if kind in ("tterm30", "tterm-dom"):
            settings.general.refresh_hz = 30
        settings.watchlists = {"bench": list(client.symbols)}
        settings.risk.enabled = False
        return TtermApp(client, settings=settings, ssh=kind == "tterm-ssh")  # type: ignore[arg-type]

    class Bare(ThemeVariablesMixin, App[None]):
        """One watchlist widget, drained once per frame from the same coalescing subscription."""

        def __init__(self) -> None:
            super().__init__()
            self.stream = client.events()
            self.latest: dict[str, Quote] = {}
            self.widget: Any = None

        def compose(self) -> ComposeResult:
            if kind == "grid":
                yield QuoteGrid(id="watchlist")
            else:
                yield DataTable(id="watchlist", cursor_type="row")

        def on_mount(self) -> None:
            for theme in load_themes(theme_dirs()).themes.values():
                self.register_theme(theme)
            self.theme = "tterm-amber"
            self.widget = self.query_one("#watchlist")
            self.widget.focus()
            if kind == "grid":
                self.widget.show_list("bench", [Resolved(s, client.instrument(s)) for s in client.symbols], {}, 0.0)
            else:
                table = self.widget
                for key, width in (("symbol", 8), ("last", 10), ("change", 8), ("change_pct", 7), ("bid", 10),
                                   ("ask", 10), ("bid_size", 6), ("ask_size", 6), ("volume", 7)):  # fmt: skip
                    table.add_column(key, key=key, width=width)
                for s in client.symbols:
                    table.add_row(s, *(["—"] * 8), key=s)
            self.set_interval(1 / 20, self.frame)

        def frame(self) -> None:
            quotes = {q.symbol: q for q in self.stream.drain() if type(q) is Quote}
            self.quotes_hook(quotes)
            if not quotes:
                return
            if kind == "grid":
                self.widget.apply_quotes(quotes, time.monotonic())
                self.widget.expire_flashes(time.monotonic())
                return
            table = self.widget
            with self.batch_update():
                for sym, q in quotes.items():
                    inst = client.instrument(sym)
                    cells = {
                        "last": fmt.price(q.last, inst),
                        "change": fmt.signed_price(q.change, inst),
                        "change_pct": fmt.pct(q.change_pct),
                        "bid": fmt.price(q.bid, inst),
                        "ask": fmt.price(q.ask, inst),
                        "bid_size": fmt.size(q.bid_size),
                        "ask_size": fmt.size(q.ask_size),
                        "volume": fmt.volume(q.volume),
                    }
                    old = self.latest.get(sym)
                    for col, text in cells.items():
                        if old is None or old.get(col) != text:  # type: ignore[union-attr]
                            table.update_cell(sym, col, text)
                    self.latest[sym] = cells  # type: ignore[assignment]

        def quotes_hook(self, quotes: dict[str, Quote]) -> None:
            """Replaced by the measuring harness."""

        def cursor(self) -> int:
            return self.widget.cursor if kind == "grid" else self.widget.cursor_row

        def visible(self) -> set[str]:
            y = int(self.widget.scroll_offset.y)
            h = self.widget.size.height
            return set(client.symbols[y : y + h])

    return Bare()


# ------------------------------------------------------------------ headless measurement


async def measure(kind: str, seconds: float, rate: int) -> dict[str, float]:
    from textual import events
    from textual.screen import Screen

    client = BenchClient(names(SYMBOLS))
    app = make_app(kind, client)
    frames: list[tuple[float, float]] = []  # (end time, duration)
    frame_ends: list[float] = []
    original = Screen._compositor_refresh

    def timed(screen: Screen) -> None:
        t0 = time.perf_counter()
        original(screen)
        t1 = time.perf_counter()
        if screen is app.screen:
            frames.append((t1, t1 - t0))
            frame_ends.append(t1)

    pending: list[tuple[float, float]] = []  # quote wall time (perf clock) for visible rows
    latencies: list[float] = []
    offset = time.time() - time.perf_counter()

    def visible() -> set[str]:
        if kind.startswith("tterm"):
            g = app.grid
            y = int(g.scroll_offset.y)
            return {r.contract for r in g.rows[y : y + g.size.height] if r.contract}
        return app.visible()

    def on_quotes(quotes: dict[str, Quote]) -> None:
        vis = visible()
        for sym, q in quotes.items():
            if sym in vis:
                pending.append((q.ts.timestamp() - offset, time.perf_counter()))

    dom_pending: list[tuple[float, float]] = []  # (publish, applied) perf times of the ladder's books
    dom_latencies: list[float] = []
    dom_sym = client.symbols[0]

    def resolve(waiting: list[tuple[float, float]], out: list[float]) -> None:
        keep = []
        for sent_at, applied_at in waiting:
            i = bisect.bisect_left(frame_ends, applied_at)
            if i < len(frame_ends):
                out.append(frame_ends[i] - sent_at)
            else:
                keep.append((sent_at, applied_at))
        waiting[:] = keep[-5000:]

    def cursor() -> int:
        if kind == "tterm-dom":
            return app.trade.dom.cursor
        return app.grid.cursor if kind.startswith("tterm") else app.cursor()

    Screen._compositor_refresh = timed  # type: ignore[method-assign]
    try:
        async with app.run_test(size=SIZE) as pilot:
            if kind.startswith("tterm"):
                await asyncio.wait_for(app.ready.wait(), 30)
                apply = app._apply_changes

                def hooked(ch: Any, now: float | None = None) -> None:
                    on_quotes(ch.quotes)
                    book = ch.depth.get(dom_sym)
                    if book is not None:
                        dom_pending.append((book.ts.timestamp() - offset, time.perf_counter()))
                    apply(ch, now)

                app._apply_changes = hooked
            else:
                app.quotes_hook = on_quotes
            stop = asyncio.Event()
            book_feeder = None
            if kind == "tterm-dom":
                await app.trade.open_dom(client.instrument(dom_sym))
                book_feeder = asyncio.create_task(client.feed_book(dom_sym, stop))
                await pilot.pause(1.0)  # the ladder's mount and the screen's restyle are start-up, not steady state
            await pilot.pause(0.5)
            feeder = asyncio.create_task(client.feed(rate, stop))
            sent0, t0 = client.sent, time.perf_counter()
            keys: list[float] = []
            deadline = t0 + seconds
            next_key = t0 + 0.25
            while time.perf_counter() < deadline:
                await asyncio.sleep(0.002)
                # Resolve pending ticks against the first frame composed after they were applied
                # (not the latest frame: this loop may have been away, measuring a key).
                resolve(pending, latencies)
                resolve(dom_pending, dom_latencies)
                if time.perf_counter() >= next_key:
                    next_key += 0.25
                    before = cursor()
                    nframes = len(frames)
                    key = "down" if len(keys) % 40 < 20 else "up"
                    ev = events.Key(key, None)
                    ev.set_sender(app)
                    pressed = time.perf_counter()
                    app._driver.send_message(ev)
                    while time.perf_counter() - pressed < 2:
                        await asyncio.sleep(0.001)
                        now_cursor = cursor()
                        if now_cursor != before and len(frames) > nframes and frames[-1][0] > pressed:
                            keys.append(frames[-1][0] - pressed)
                            break
            elapsed = time.perf_counter() - t0
            sent = client.sent - sent0
            stop.set()
            await feeder
            if book_feeder is not None:
                await book_feeder
    finally:
        Screen._compositor_refresh = original  # type: ignore[method-assign]
    window = [d for t, d in frames if t >= t0]
    return {
        "rate": sent / elapsed,
        "tick_p50": pct(latencies, 0.5) * 1000,
        "tick_p99": pct(latencies, 0.99) * 1000,
        "frame_p50": pct(window, 0.5) * 1000,
        "frame_p99": pct(window, 0.99) * 1000,
        "fps": len(window) / elapsed,
        "key_p50": pct(keys, 0.5) * 1000,
        "key_p99": pct(keys, 0.99) * 1000,
        "keys": len(keys),
        "dom_p50": pct(dom_latencies, 0.5) * 1000,
        "dom_p99": pct(dom_latencies, 0.99) * 1000,
        "books": getattr(client, "books", 0) / elapsed,
    }


# ------------------------------------------------------------------ bytes written to a real pty


def child(kind: str, seconds: float, rate: int) -> None:
    """Run one watchlist in this (pty) process with the real Linux driver, then exit."""
    if kind == "chart":  # the chart figure (measure_chart)
        chart_child(seconds, CHART_RATE)
        return
    if kind == "tterm-ssh":
        from tterm.runtime import apply_ssh_environment

        apply_ssh_environment(True)  # before Textual is imported, as the launcher does
    from textual import events

    client = BenchClient(names(SYMBOLS))
    app = make_app(kind, client)

    async def run() -> None:
        task = asyncio.create_task(app.run_async(mouse=False))
        await asyncio.sleep(2.0)  # let it compose and paint the first frame
        stop = asyncio.Event()
        book_feeder = None
        if kind == "tterm-dom":
            app.run_worker(app.trade.open_dom(client.instrument(client.symbols[0])))
            await asyncio.sleep(0.5)
            book_feeder = asyncio.create_task(client.feed_book(client.symbols[0], stop))
        feeder = asyncio.create_task(client.feed(rate, stop))
        t0 = time.perf_counter()
        n = 0
        while time.perf_counter() - t0 < seconds + 1.5 and not task.done():
            await asyncio.sleep(0.25)  # the cursor moves four times a second, as a user's would
            n += 1
            ev = events.Key("down" if n % 40 < 20 else "up", None)
            ev.set_sender(app)
            app._driver.send_message(ev)
        stop.set()
        await feeder
        if book_feeder is not None:
            await book_feeder
        app.exit()
        await task

    asyncio.run(run())


def pty_bytes(kind: str, seconds: float, rate: int, truecolor: bool) -> float:
    """KiB/s the app writes to a 200x50 pty while the feed runs (first second of startup skipped)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: become the app
        env = {k: v for k, v in os.environ.items() if k != "COLORTERM"}
        env["TERM"] = "xterm-256color"
        if truecolor:
            env["COLORTERM"] = "truecolor"
        os.execve(sys.executable, [sys.executable, __file__, "--child", kind, "--seconds", str(seconds),
                                   "--rate", str(rate)], env)  # fmt: skip
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))
    total = 0
    start = time.perf_counter()
    counting_from = start + 3.5  # startup and the first full paint are not steady state
    counted = 0
    end = start + seconds + 3.5
    while time.perf_counter() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            total += len(data)
            if time.perf_counter() >= counting_from:
                counted += len(data)
    window = max(0.001, min(time.perf_counter(), end) - counting_from)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    # Drain so the child can exit, then reap it.
    deadline = time.perf_counter() + 5
    while time.perf_counter() < deadline:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                if not os.read(fd, 65536):
                    break
            except OSError:
                break
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    os.close(fd)
    return counted / 1024 / window


# ------------------------------------------------------------------ the chart: 100 prints a second


CHART_RATE = 100
CHART_HZ = 30


class ChartBenchClient(BenchClient):
    """The bench client with one future's bars and a trades feed: prints come from :meth:`prints`."""

    def __init__(self) -> None:
        super().__init__(["AAPL"])
        self.contract = self.master.resolve("MES").symbol
        self.price = Decimal("5000.00")
        self.printed = 0
        self.published: list[float] = []  # perf time of each print, for tick-to-screen

    async def find_instrument(self, symbol: str) -> Instrument:
        return self.master.resolve(symbol)

    async def bars(self, symbol: str, timeframe: Any, start: datetime, end: datetime | None = None) -> list[Any]:
        from tterm.core.models import Bar

        rng = random.Random(3)
        now = int(time.time()) // timeframe.seconds * timeframe.seconds
        out, p = [], Decimal("5000.00")
        for i in range(600, 0, -1):
            o = p
            p += Decimal(rng.randrange(-8, 9)) / 4
            hi, lo = max(o, p) + Decimal(rng.randrange(0, 5)) / 4, min(o, p) - Decimal(rng.randrange(0, 5)) / 4
            at = datetime.fromtimestamp(now - i * timeframe.seconds, UTC)
            out.append(Bar(self.contract, at, o, hi, lo, p, rng.randrange(100, 3000), timeframe.seconds))
        self.price = p
        return out

    async def subscribe_trades(self, symbols: Iterable[str]) -> list[str]:
        return [self.contract]

    async def unsubscribe_trades(self, symbols: Iterable[str]) -> None:
        return None

    async def prints(self, rate: int, stop: asyncio.Event) -> None:
        """Publish ``rate`` prints a second (a one-tick random walk) in 5 ms batches."""
        from tterm.core.models import Side, Trade

        rng = random.Random(11)
        start = time.perf_counter()
        while not stop.is_set():
            due = int((time.perf_counter() - start) * rate)
            while self.printed < due:
                self.price += Decimal(rng.choice((-1, 0, 0, 1))) / 4
                side = Side.BUY if rng.random() < 0.5 else Side.SELL
                self.published.append(time.perf_counter())
                self.bus.publish(Trade(self.contract, self.price, rng.randrange(1, 20), side, datetime.now(UTC)))
                self.printed += 1
            await asyncio.sleep(0.005)


def make_chart_app(client: ChartBenchClient) -> Any:
    """A bare app showing the real ChartScreen (its own stream, series and candle widget)."""
    from textual.app import App

    from tterm.config import ScreensSettings
    from tterm.core.models import Timeframe
    from tterm.tui.bridge import ScreenState
    from tterm.tui.screens.chart import ChartScreen
    from tterm.tui.themes import ThemeVariablesMixin, load_themes, theme_dirs

    class ChartApp(ThemeVariablesMixin, App[None]):
        def on_mount(self) -> None:
            for theme in load_themes(theme_dirs()).themes.values():
                self.register_theme(theme)
            self.theme = "tterm-amber"
            inst = client.master.resolve(client.contract)
            self.chart_screen = ChartScreen(client, ScreenState(), inst, settings=ScreensSettings(), hz=CHART_HZ,
                                            timeframe=Timeframe.M1)  # fmt: skip
            self.push_screen(self.chart_screen)

    return ChartApp()


async def measure_chart(seconds: float, rate: int = CHART_RATE) -> dict[str, float]:
    """A 1m chart at 200x50 taking ``rate`` prints a second: print-to-screen, frame cost, repaints."""
    from textual.screen import Screen

    client = ChartBenchClient()
    app = make_chart_app(client)
    frames: list[tuple[float, float]] = []
    original = Screen._compositor_refresh

    def timed(screen: Screen) -> None:
        t0 = time.perf_counter()
        original(screen)
        t1 = time.perf_counter()
        frames.append((t1, t1 - t0))

    Screen._compositor_refresh = timed  # type: ignore[method-assign]
    latencies: list[float] = []
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = None
            for _ in range(500):
                await pilot.pause(0.01)
                screen = getattr(app, "chart_screen", None)
                if screen is not None and screen.series is not None and len(screen.series):
                    break
            assert screen is not None and screen.series is not None, "the chart did not load"
            chart = screen.chart
            layouts0, repaints0, strips0 = chart.layouts, chart.column_repaints, chart.strips_built
            stop = asyncio.Event()
            feeder = asyncio.create_task(client.prints(rate, stop))
            t0 = time.perf_counter()
            seen = 0
            while time.perf_counter() - t0 < seconds:
                await asyncio.sleep(0.002)
                applied = screen.events_seen
                if frames and applied > seen:
                    last_frame = frames[-1][0]
                    pending = client.published[seen:applied]
                    if pending and last_frame >= pending[-1]:
                        latencies.extend(last_frame - t for t in pending)
                        seen = applied
            elapsed = time.perf_counter() - t0
            stop.set()
            await feeder
            layouts, repaints, strips = (chart.layouts - layouts0, chart.column_repaints - repaints0,
                                         chart.strips_built - strips0)  # fmt: skip
    finally:
        Screen._compositor_refresh = original  # type: ignore[method-assign]
    window = [d for t, d in frames if t >= t0]
    return {
        "rate": client.printed / elapsed,
        "tick_p50": pct(latencies, 0.5) * 1000,
        "tick_p99": pct(latencies, 0.99) * 1000,
        "frame_p50": pct(window, 0.5) * 1000,
        "frame_p99": pct(window, 0.99) * 1000,
        "fps": len(window) / elapsed,
        "layouts_s": layouts / elapsed,
        "repaints_s": repaints / elapsed,
        "strips_s": strips / elapsed,
    }


def chart_child(seconds: float, rate: int) -> None:
    """The chart app in this (pty) process with the real driver, for the terminal-bytes figure."""
    client = ChartBenchClient()
    app = make_chart_app(client)

    async def run() -> None:
        task = asyncio.create_task(app.run_async(mouse=False))
        await asyncio.sleep(2.0)
        stop = asyncio.Event()
        feeder = asyncio.create_task(client.prints(rate, stop))
        await asyncio.sleep(seconds + 1.5)
        stop.set()
        await feeder
        app.exit()
        await task

    asyncio.run(run())


def print_chart(r: dict[str, float]) -> None:
    print(
        f"\nchart (1m, 600 bars of history, {CHART_HZ} Hz): {r['rate']:,.0f} prints/s, print-to-screen p50 "
        f"{r['tick_p50']:.1f} ms p99 {r['tick_p99']:.1f} ms, frame p50 {r['frame_p50']:.2f} ms p99 "
        f"{r['frame_p99']:.2f} ms, {r['fps']:.1f} fps; per second {r['repaints_s']:.1f} column repaints, "
        f"{r['layouts_s']:.2f} full layouts, {r['strips_s']:.0f} row strips built"
        + (f"; KiB/s truecolor {r['kib_true']:.1f}, 256 colours {r['kib_256']:.1f}" if "kib_true" in r else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rate", type=int, default=RATE)
    parser.add_argument("--only", choices=KINDS, action="append")
    parser.add_argument("--no-pty", action="store_true", help="skip the terminal-bytes runs")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.seconds, args.rate)
        return
    kinds = args.only or KINDS
    print(f"{SYMBOLS} symbols, {args.rate:,} quote updates/s offered, {SIZE[0]}x{SIZE[1]}, {args.seconds:.0f} s each")
    print("Goals: tick-to-screen p99 <= 50 ms, keypress p99 <= 30 ms, <= 100 KiB/s at 200x50.\n")
    results: dict[str, dict[str, float]] = {}
    for kind in kinds:
        results[kind] = asyncio.run(measure(kind, args.seconds, args.rate))
    if not args.no_pty:
        for kind in kinds:
            results[kind]["kib_true"] = pty_bytes(kind, args.seconds, args.rate, truecolor=True)
            results[kind]["kib_256"] = pty_bytes(kind, args.seconds, args.rate, truecolor=False)
    head = (
        f"{'watchlist':<10} {'feed/s':>8} {'tick p50':>9} {'tick p99':>9} {'frame p50':>10} {'frame p99':>10} "
        f"{'fps':>5} {'key p50':>8} {'key p99':>8} {'KiB/s tc':>9} {'KiB/s 256':>10}"
    )
    print(head)
    print("-" * len(head))
    for kind, r in results.items():
        print(
            f"{kind:<10} {r['rate']:>8,.0f} {r['tick_p50']:>7.1f}ms {r['tick_p99']:>7.1f}ms {r['frame_p50']:>8.2f}ms "
            f"{r['frame_p99']:>8.2f}ms {r['fps']:>5.1f} {r['key_p50']:>6.1f}ms {r['key_p99']:>6.1f}ms "
            f"{r.get('kib_true', float('nan')):>9.1f} {r.get('kib_256', float('nan')):>10.1f}"
        )
    if "tterm-dom" in results:
        r = results["tterm-dom"]
        print(
            f"\nDOM ladder ({LEVELS} levels a side, {r['books']:.0f} books/s published, {TRADE_RATE} prints/s) "
            f"beside the watchlist: book-to-screen p50 {r['dom_p50']:.1f} ms, "
            f"p99 {r['dom_p99']:.1f} ms; ladder keypress p99 {r['key_p99']:.1f} ms; "
            f"{r.get('kib_256', float('nan')):.1f} KiB/s at 256 colours, "
            f"{r.get('kib_true', float('nan')):.1f} truecolor"
        )
    if "grid" in results and "datatable" in results:
        g, d = results["grid"], results["datatable"]
        print(
            f"\nDataTable / line-API grid: frame time x{d['frame_p50'] / g['frame_p50']:.1f}, "
            f"tick p99 x{d['tick_p99'] / g['tick_p99']:.1f}, key p99 x{d['key_p99'] / g['key_p99']:.1f}"
            + (f", bytes x{d['kib_true'] / g['kib_true']:.1f}" if "kib_true" in g else "")
        )
    # ---- the chart at 100 prints/s (measure_chart)
    results["chart"] = asyncio.run(measure_chart(args.seconds))
    if not args.no_pty:
        results["chart"]["kib_true"] = pty_bytes("chart", args.seconds, CHART_RATE, truecolor=True)
        results["chart"]["kib_256"] = pty_bytes("chart", args.seconds, CHART_RATE, truecolor=False)
    print_chart(results["chart"])
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()


def figures_tui(quick: bool = False) -> list[object]:
    """The terminal (and the bare grid, against a DataTable watchlist) under the firehose, 200x50."""
    from benchlib import Figure

    seconds = 3.0 if quick else 6.0
    out: list[object] = []
    where = "2,000 symbols at 20k quotes/s, no broker, headless"
    label = {"tterm": "tterm", "grid": "line-API grid", "datatable": "DataTable"}
    for kind in ("datatable", "grid", "tterm"):
        r = asyncio.run(measure(kind, seconds, RATE))
        base = "" if kind == "datatable" else "keypress -> screen, DataTable"
        name = f"keypress -> screen, {label[kind]}" if kind != "tterm" else "keypress -> screen, tterm"
        out.append(Figure(name, r["key_p50"], "ms", r["key_p99"], "<= 30" if kind != "datatable" else "",
                          baseline=base, where=where))  # fmt: skip
        out.append(Figure(f"tick -> screen, {label[kind]}", r["tick_p50"], "ms", r["tick_p99"],
                          "<= 50" if kind != "datatable" else "", baseline=base.replace("keypress", "tick")
                          if base else "", where=where))  # fmt: skip
    kib = pty_bytes("tterm", seconds, RATE, truecolor=True)
    out.append(Figure("terminal output 200x50, truecolor", kib, "KiB/s", goal="<= 64", where="bench client, real pty"))
    kib256 = pty_bytes("tterm", seconds, RATE, truecolor=False)
    out.append(Figure("terminal output 200x50, 256 colours", kib256, "KiB/s", goal="<= 64",
                      where="bench client, real pty"))  # fmt: skip
    return out

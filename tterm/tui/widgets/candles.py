"""A live candlestick chart with volume: a line-API widget that repaints only the columns that changed.

Why our own widget: textual-plot (0.10) draws lines, scatters and bars but no candles, and both it
and textual-hires-canvas clear and re-render the whole canvas on every change: at 100 prints a
second that is a full repaint each frame. Here the chart keeps a grid of cells; a print that moves
the last bar redraws that bar's column(s) and the price axis, compares them with what is on
screen, and refreshes only the rows that differ inside those columns. A new high or low outside
the drawn range, a new bar, a pan, a zoom or a resize lays the whole chart out again.

Drawing uses half blocks (two price steps per row) and box characters only, coloured through
theme variables, so it reads the same at 256 colours without ``COLORTERM``: at one column per
bar the body is a heavy line and the wick a light one (``┃ │ ╿ ╽ ╹ ╻ ╵ ╷``); from two columns per
bar the body is a block (``█ ▀ ▄``) with a gap beside it. Volume is a row of eighth blocks under
the candles. Working orders are dotted lines across the plot with their label on the axis; fills
are ``▲`` (buy) / ``▼`` (sell) on the bar and price they happened at.

Data in: :meth:`CandleChart.show` (a :class:`~tterm.core.barseries.BarSeries`), then
:meth:`CandleChart.bars_changed` with the indices a flush of prints touched; numbers are formatted
there, never in :meth:`render_line`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from tterm.core.barseries import BarSeries, LiveBar
from tterm.core.models import Instrument, Side, Timeframe
from tterm.tui import format as fmt
from tterm.tui.keymap import bindings

AXIS_WIDTH = 12
"""Columns of the price axis at the right (labels of the grid, the last price, the orders)."""

ZOOMS = (1, 2, 3)
"""Columns per bar: 1 packs the most bars (line glyphs), 2 and 3 draw block bodies with a gap."""

PAGE = 10
"""Bars one shifted arrow (or page key) moves the cursor."""

_EIGHTHS = " ▁▂▃▄▅▆▇█"
#: (top half, bottom half) -> glyph, for 1 column per bar (0 nothing, 1 wick, 2 body).
_LINE = {(2, 2): "┃", (2, 0): "╹", (0, 2): "╻", (2, 1): "╿", (1, 2): "╽", (1, 1): "│", (1, 0): "╵", (0, 1): "╷"}
#: The same for block bodies (a half with body wins over a wick in the other half).
_BLOCK = {(2, 2): "█", (2, 0): "▀", (0, 2): "▄", (2, 1): "▀", (1, 2): "▄", (1, 1): "│", (1, 0): "╵", (0, 1): "╷"}


@dataclass(frozen=True, slots=True)
class OrderMark:
    """A working order drawn across the chart at ``price``."""

    price: Decimal
    side: Side
    quantity: int
    kind: str = "LMT"


@dataclass(frozen=True, slots=True)
class FillMark:
    """A fill drawn on the bar and price it happened at."""

    ts: datetime
    price: Decimal
    side: Side
    quantity: int


@dataclass(frozen=True, slots=True)
class _Frame:
    """One layout of the chart: which bars are visible and how prices map to rows."""

    width: int
    height: int
    plot_width: int
    price_rows: int
    volume_rows: int
    first: int  # index of the leftmost visible bar
    count: int  # visible bars
    zoom: int
    hi: float
    lo: float
    vmax: int

    @property
    def price_top(self) -> int:
        return 1

    @property
    def volume_top(self) -> int:
        return 1 + self.price_rows

    @property
    def time_row(self) -> int:
        return self.height - 1

    def half(self, price: float) -> int:
        """The half-row (0 at the top) of ``price``, clamped to the plot."""
        halves = 2 * self.price_rows - 1
        span = self.hi - self.lo
        h = round((self.hi - price) / span * halves) if span > 0 else halves // 2
        return min(halves, max(0, h))

    def row_of(self, price: float) -> int:
        return self.price_top + self.half(price) // 2

    def x_of(self, index: int) -> int:
        return (index - self.first) * self.zoom

    def holds(self, bar: LiveBar) -> bool:
        return float(bar.high) <= self.hi and float(bar.low) >= self.lo and bar.volume <= self.vmax


class CandleChart(Widget, can_focus=True):
    """Candles and volume for one symbol; keys: see ``tterm.tui.keymap`` scope ``chart``."""

    BINDINGS = bindings("chart")

    COMPONENT_CLASSES = {
        "candles--header",
        "candles--up",
        "candles--down",
        "candles--volume-up",
        "candles--volume-down",
        "candles--axis",
        "candles--last",
        "candles--buy",
        "candles--sell",
        "candles--cursor",
        "candles--message",
    }

    DEFAULT_CSS = """
    CandleChart {
        background: $surface;
        color: $foreground;
        height: 1fr;
    }
    CandleChart > .candles--header { color: $text-primary; text-style: bold; background: $panel; }
    CandleChart > .candles--up { color: $pnl-up; }
    CandleChart > .candles--down { color: $pnl-down; }
    CandleChart > .candles--volume-up { color: $pnl-up 55%; }
    CandleChart > .candles--volume-down { color: $pnl-down 55%; }
    CandleChart > .candles--axis { color: $text-muted; }
    CandleChart > .candles--last { color: $background; background: $foreground; text-style: bold; }
    CandleChart > .candles--buy { color: $bid; text-style: bold; }
    CandleChart > .candles--sell { color: $ask; text-style: bold; }
    CandleChart > .candles--cursor { background: $grid-cursor-bg; }
    CandleChart > .candles--message { color: $text-warning; }
    """

    class TimeframeWanted(Message):
        """The user asked for another timeframe (the screen loads its bars)."""

        def __init__(self, timeframe: Timeframe) -> None:
            super().__init__()
            self.timeframe = timeframe

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.series: BarSeries | None = None
        self.instrument: Instrument | None = None
        self.zoom = 2
        #: The bar the cursor is on; None follows the newest bar as bars arrive.
        self.cursor: int | None = None
        self.message = ""
        self.tz: tzinfo = UTC
        self.orders: tuple[OrderMark, ...] = ()
        self.fills: tuple[FillMark, ...] = ()
        self._fill_index: dict[int, list[FillMark]] = {}
        self._frame: _Frame | None = None
        self._chars: list[list[str]] = []
        self._kinds: list[list[str]] = []
        self._strips: list[Strip | None] = []
        self._styles: dict[str, Style] = {}
        self._drawn: dict[int, int] = {}  # bar index -> version drawn
        self._layout_key: object = None
        self._header_text = ""
        #: Counters for tests and the bench: full layouts, column repaints, row strips built.
        self.layouts = 0
        self.column_repaints = 0
        self.strips_built = 0

    # ------------------------------------------------------------------ data in

    def show(self, series: BarSeries | None, instrument: Instrument | None, message: str = "") -> None:
        """Chart ``series`` (None: nothing yet, ``message`` says why); the cursor follows the newest bar."""
        self.series = series
        self.instrument = instrument
        self.message = message
        self.cursor = None
        self._reindex_fills()
        self.relayout()

    def say(self, message: str) -> None:
        """Show ``message`` in the header (an error, "loading..."), keeping the bars drawn."""
        if message != self.message:
            self.message = message
            self._draw_header()

    def set_marks(self, orders: Iterable[OrderMark], fills: Iterable[FillMark]) -> None:
        """The user's working orders and fills in this symbol (redrawn only when they changed)."""
        orders_t, fills_t = tuple(orders), tuple(fills)
        if orders_t == self.orders and fills_t == self.fills:
            return
        self.orders, self.fills = orders_t, fills_t
        self._reindex_fills()
        self.relayout()

    def _reindex_fills(self) -> None:
        self._fill_index = {}
        if self.series is None:
            return
        for f in self.fills:
            i = self.series.index_at(f.ts)
            if i is not None:
                self._fill_index.setdefault(i, []).append(f)

    def bars_changed(self, indices: Iterable[int]) -> None:
        """Prints changed these bars: repaint their columns, or lay out again when they do not fit."""
        series, frame = self.series, self._frame
        if series is None or frame is None or self._layout_key != self._key():
            self.relayout()
            return
        changed = sorted(set(indices))
        for i in changed:
            bar = series.bars[i]
            if frame.first <= i < frame.first + frame.count and not frame.holds(bar):
                self.relayout()
                return
        for i in changed:
            if frame.first <= i < frame.first + frame.count and self._drawn.get(i) != series.bars[i].version:
                self._paint_column(i)
        if changed:
            self._draw_axis()
            self._draw_header()

    # ------------------------------------------------------------------ cursor and view

    @property
    def cursor_index(self) -> int | None:
        """The bar under the cursor (the newest while following)."""
        if self.series is None or not self.series.bars:
            return None
        last = len(self.series.bars) - 1
        return last if self.cursor is None else min(self.cursor, last)

    @property
    def following(self) -> bool:
        return self.cursor is None

    def _key(self) -> object:
        s = self.series
        return (self.size, self.zoom, self.cursor, s.layout_version if s is not None else None, id(s))

    def _capacity(self) -> int:
        return max(1, (max(1, self.size.width - AXIS_WIDTH)) // self.zoom)

    def move(self, delta: int) -> None:
        if self.series is None or not self.series.bars:
            return
        last = len(self.series.bars) - 1
        at = (self.cursor_index or 0) + delta
        self.cursor = None if at >= last else max(0, at)
        self.relayout()

    def action_left(self) -> None:
        self.move(-1)

    def action_right(self) -> None:
        self.move(1)

    def action_page_left(self) -> None:
        self.move(-PAGE)

    def action_page_right(self) -> None:
        self.move(PAGE)

    def action_oldest(self) -> None:
        self.move(-(10**9))

    def action_follow(self) -> None:
        self.cursor = None
        self.relayout()

    def action_zoom(self, step: int) -> None:
        i = ZOOMS.index(self.zoom) if self.zoom in ZOOMS else 1
        zoom = ZOOMS[max(0, min(len(ZOOMS) - 1, i + step))]
        if zoom != self.zoom:
            self.zoom = zoom
            self.relayout()

    def action_timeframe(self, value: str) -> None:
        self.post_message(self.TimeframeWanted(Timeframe(value)))

    def action_step_timeframe(self, step: int) -> None:
        frames = list(Timeframe)
        now = self.series.timeframe if self.series is not None else Timeframe.M1
        i = frames.index(now) + step
        if 0 <= i < len(frames):
            self.post_message(self.TimeframeWanted(frames[i]))

    # ------------------------------------------------------------------ layout

    def on_resize(self) -> None:
        self.relayout()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._strips = [None] * len(self._strips)
        self.refresh()

    def relayout(self) -> None:
        """Lay the whole chart out again (new range, new bars, a pan, zoom or resize)."""
        width, height = self.size.width, self.size.height
        self._layout_key = self._key()
        self._chars = [[" "] * width for _ in range(height)]
        self._kinds = [["base"] * width for _ in range(height)]
        self._strips = [None] * height
        self._drawn = {}
        self._frame = None
        self.layouts += 1
        self._reindex_fills()
        if width < AXIS_WIDTH + 4 or height < 6:
            self._text(0, 0, fmt.fit(" chart: make the window bigger", width), "message")
            self.refresh()
            return
        series = self.series
        if series is None or not series.bars:
            self._draw_header()
            self.refresh()
            return
        self._frame = frame = self._layout(series, width, height)
        for x in range(frame.plot_width):
            for y in range(frame.price_top, frame.time_row):
                ch, kind = self._background(x, y)
                self._chars[y][x], self._kinds[y][x] = ch, kind
        for i in range(frame.first, frame.first + frame.count):
            self._paint_column(i, initial=True)
        self._draw_axis(initial=True)
        self._draw_time_axis()
        self._draw_header()
        self.refresh()

    def _layout(self, series: BarSeries, width: int, height: int) -> _Frame:
        plot_width = width - AXIS_WIDTH
        rows = height - 2  # the header above, the time axis below
        volume_rows = min(8, max(1, rows // 5)) if rows >= 6 else 0
        price_rows = rows - volume_rows
        capacity = max(1, plot_width // self.zoom)
        last = len(series.bars) - 1
        cursor = self.cursor_index if self.cursor_index is not None else last
        # The cursor's bar is the rightmost one shown unless the chart can show everything up to it.
        right = max(cursor, min(last, capacity - 1))
        first = max(0, right - capacity + 1)
        count = min(capacity, len(series.bars) - first)
        shown = series.bars[first : first + count]
        hi = max(float(b.high) for b in shown)
        lo = min(float(b.low) for b in shown)
        tick = float(self.instrument.tick_size) if self.instrument is not None else 0.01
        pad = max((hi - lo) * 0.06, tick * 2)
        vmax = max((b.volume for b in shown), default=0)
        # Headroom so the next prints of the live bar repaint one column, not the whole chart.
        return _Frame(width, height, plot_width, price_rows, volume_rows, first, count, self.zoom, hi + pad, lo - pad,
                      max(1, int(vmax * 1.25)))  # fmt: skip

    def _order_rows(self, frame: _Frame) -> dict[int, OrderMark]:
        rows: dict[int, OrderMark] = {}
        for o in self.orders:
            p = float(o.price)
            if frame.lo <= p <= frame.hi:
                rows.setdefault(frame.row_of(p), o)
        return rows

    def _background(self, x: int, y: int) -> tuple[str, str]:
        frame = self._frame
        if frame is not None and frame.price_top <= y < frame.volume_top:
            o = self._order_rows(frame).get(y)
            if o is not None:
                return "┄", "buy" if o.side is Side.BUY else "sell"
        return " ", "base"

    # ------------------------------------------------------------------ painting

    def _paint_column(self, i: int, *, initial: bool = False) -> None:
        """Draw bar ``i``'s columns; refresh only the rows whose cells changed."""
        frame, series = self._frame, self.series
        assert frame is not None and series is not None
        bar = series.bars[i]
        x0 = frame.x_of(i)
        cells: dict[tuple[int, int], tuple[str, str]] = {}
        order_rows = self._order_rows(frame)
        for dx in range(frame.zoom):
            for y in range(frame.price_top, frame.time_row):
                o = order_rows.get(y)
                cells[(x0 + dx, y)] = ("┄", "buy" if o.side is Side.BUY else "sell") if o is not None else (" ", "base")
        tone = "up" if bar.up else "down"
        glyphs = _LINE if frame.zoom == 1 else _BLOCK
        wick_top, wick_bottom = frame.half(float(bar.high)), frame.half(float(bar.low))
        body_top = frame.half(float(max(bar.open, bar.close)))
        body_bottom = frame.half(float(min(bar.open, bar.close)))
        for half_row in range(wick_top - wick_top % 2, wick_bottom + 1, 2):
            parts = []
            for h in (half_row, half_row + 1):
                parts.append(2 if body_top <= h <= body_bottom else 1 if wick_top <= h <= wick_bottom else 0)
            glyph = glyphs.get((parts[0], parts[1]))
            if glyph is not None:
                cells[(x0, frame.price_top + half_row // 2)] = (glyph, tone)
        if frame.volume_rows:
            eighths = round(bar.volume / frame.vmax * frame.volume_rows * 8) if frame.vmax else 0
            if bar.volume and not eighths:
                eighths = 1
            for r in range(frame.volume_rows):
                n = max(0, min(8, eighths - 8 * r))
                y = frame.time_row - 1 - r
                cells[(x0, y)] = (_EIGHTHS[n], f"volume-{tone}")
        for f in self._fill_index.get(i, ()):
            p = float(f.price)
            if frame.lo <= p <= frame.hi:
                mark = ("▲", "buy") if f.side is Side.BUY else ("▼", "sell")
                x = x0 + 1 if frame.zoom > 1 else x0
                cells[(x, frame.row_of(p))] = mark
        cursor = self.cursor_index == i and not self.following
        rows: set[int] = set()
        for (x, y), (ch, kind) in cells.items():
            if cursor and y < frame.time_row:
                kind = f"{kind}|cursor"
            if x >= frame.plot_width:
                continue
            if self._chars[y][x] != ch or self._kinds[y][x] != kind:
                self._chars[y][x], self._kinds[y][x] = ch, kind
                rows.add(y)
        self._drawn[i] = bar.version
        if initial:
            return
        self.column_repaints += 1
        for y in rows:
            self._strips[y] = None
            self.refresh(Region(x0, y, frame.zoom, 1))

    def _draw_axis(self, *, initial: bool = False) -> None:
        """The price axis: grid labels, the working orders, and the last price (highlighted)."""
        frame, series = self._frame, self.series
        if frame is None or series is None:
            return
        inst = self.instrument
        labels: dict[int, tuple[str, str]] = {}
        span = frame.hi - frame.lo
        step = _nice(span / max(1, frame.price_rows / 3))
        if inst is not None:
            step = max(step, float(inst.tick_size))
        if step > 0:
            k = math.ceil(frame.lo / step)
            while k * step <= frame.hi:
                price = Decimal(str(round(k * step, 10)))
                labels.setdefault(frame.row_of(k * step), ("─" + fmt.price(price, inst), "axis"))
                k += 1
        for o in self.orders:
            p = float(o.price)
            side = "B" if o.side is Side.BUY else "S"
            text = f"{side}{o.quantity} {fmt.price(o.price, inst)}"
            kind = "buy" if o.side is Side.BUY else "sell"
            if p > frame.hi:
                labels[frame.price_top] = ("↑" + text, kind)
            elif p < frame.lo:
                labels[frame.volume_top - 1] = ("↓" + text, kind)
            else:
                labels[frame.row_of(p)] = ("◀" + text, kind)
        last = series.bars[-1].close
        at = float(last)
        arrow = "◀" if frame.lo <= at <= frame.hi else "↑" if at > frame.hi else "↓"  # a paused view
        labels[frame.row_of(at)] = (arrow + fmt.price(last, inst), "last")
        x0 = frame.plot_width
        for y in range(frame.price_top, frame.volume_top):
            text, kind = labels.get(y, ("", "base"))
            self._text(x0, y, fmt.fit(text, AXIS_WIDTH), kind, refresh=not initial)
        if frame.volume_rows:
            vmax = max((b.volume for b in series.bars[frame.first : frame.first + frame.count]), default=0)
            self._text(x0, frame.volume_top, fmt.fit(" vol " + fmt.volume(vmax), AXIS_WIDTH), "axis",
                       refresh=not initial)  # fmt: skip

    def _draw_time_axis(self) -> None:
        frame, series = self._frame, self.series
        assert frame is not None and series is not None
        y = frame.time_row
        row = [" "] * frame.width
        daily = series.seconds >= 86400
        pattern = "%m-%d" if daily else "%H:%M:%S" if series.seconds < 60 else "%H:%M"
        spacing = max(1, math.ceil((len(pattern) + 6) / frame.zoom))
        prev_day = None
        for n in range(0, frame.count, spacing):
            bar = series.bars[frame.first + n]
            at = datetime.fromtimestamp(bar.start, UTC).astimezone(self.tz)
            text = at.strftime(pattern)
            if not daily and prev_day is not None and at.date() != prev_day:
                text = at.strftime("%m-%d")
            prev_day = at.date()
            x = n * frame.zoom
            label = "╵" + text
            if x + len(label) <= frame.plot_width:
                row[x : x + len(label)] = list(label)
        self._chars[y] = row
        self._kinds[y] = ["axis"] * frame.width
        cursor = self.cursor_index
        if not self.following and cursor is not None and frame.first <= cursor < frame.first + frame.count:
            x = frame.x_of(cursor)
            self._chars[y][x], self._kinds[y][x] = "▲", "last"
        self._strips[y] = None

    def _draw_header(self) -> None:
        width = self.size.width
        if not width or not self._chars:
            return
        series, inst = self.series, self.instrument
        parts = []
        if inst is not None and series is not None:
            parts.append(f" {inst.symbol} {series.timeframe.value} " + ("LIVE" if self.following else "PAUSED"))
            i = self.cursor_index
            if i is not None:
                b = series.bars[i]
                at = datetime.fromtimestamp(b.start, UTC).astimezone(self.tz)
                pattern = "%Y-%m-%d" if series.seconds >= 86400 else "%H:%M:%S" if series.seconds < 60 else "%H:%M"
                p = lambda v: fmt.price(v, inst)  # noqa: E731
                parts.append(f"{at.strftime(pattern)} O {p(b.open)} H {p(b.high)} L {p(b.low)} C {p(b.close)} "
                             f"V {fmt.size(b.volume)}")  # fmt: skip
        if self.message:
            parts.append(self.message)
        text = fmt.fit("  ".join(parts), width)
        if text != self._header_text or (self._strips and self._strips[0] is None):
            self._header_text = text
            self._text(0, 0, text, "header", refresh=True)

    def _text(self, x: int, y: int, text: str, kind: str, *, refresh: bool = False) -> None:
        if y >= len(self._chars):
            return
        row_c, row_k = self._chars[y], self._kinds[y]
        changed = False
        for n, ch in enumerate(text):
            if x + n >= len(row_c):
                break
            if row_c[x + n] != ch or row_k[x + n] != kind:
                row_c[x + n], row_k[x + n] = ch, kind
                changed = True
        if changed:
            self._strips[y] = None
            if refresh:
                self.refresh(Region(x, y, len(text), 1))

    # ------------------------------------------------------------------ rendering

    def _style(self, kind: str) -> Style:
        style = self._styles.get(kind)
        if style is None:
            style = self.rich_style
            for part in kind.split("|"):
                if part != "base":
                    style = style + self.get_component_rich_style(f"candles--{part}", partial=True)
            self._styles[kind] = style
        return style

    def _plain_bg(self, kind: str) -> bool:
        """Whether ``kind`` draws on the chart's own background (a blank looks the same in it)."""
        return self._style(kind).bgcolor == self._style("base").bgcolor and "cursor" not in kind

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y >= len(self._strips):
            return Strip.blank(width, self.rich_style)
        strip = self._strips[y]
        if strip is None:
            chars, kinds = self._chars[y], self._kinds[y]
            segments: list[Segment] = []
            # Blank cells take the style of the run they sit in when the background is the same:
            # fewer segments, fewer escape sequences on the wire (a chart row alternates candle and gap).
            run_kind, run, blank = kinds[0] if kinds else "base", [], True
            for ch, kind in zip(chars, kinds, strict=True):
                if kind == run_kind or (ch == " " and kind == "base" and self._plain_bg(run_kind)):
                    run.append(ch)
                    blank = blank and ch == " "
                elif blank and run_kind == "base" and self._plain_bg(kind):
                    run.append(ch)
                    run_kind, blank = kind, False
                else:
                    segments.append(Segment("".join(run), self._style(run_kind)))
                    run_kind, run, blank = kind, [ch], ch == " "
            if run:
                segments.append(Segment("".join(run), self._style(run_kind)))
            strip = Strip(segments, len(chars)).crop(0, width)
            self._strips[y] = strip
            self.strips_built += 1
        return strip

    # ------------------------------------------------------------------ for tests

    def text_lines(self) -> list[str]:
        """The chart as plain text, one string per row."""
        return ["".join(row) for row in self._chars]


def _nice(raw: float) -> float:
    """A round grid step at least ``raw``: 1, 2, 2.5 or 5 times a power of ten."""
    if raw <= 0 or not math.isfinite(raw):
        return 0.0
    exp = math.floor(math.log10(raw))
    base = 10.0**exp
    for m in (1, 2, 2.5, 5, 10):
        if m * base >= raw:
            return m * base
    return 10 * base  # pragma: no cover


__all__ = ["CandleChart", "FillMark", "OrderMark"]

"""The watchlist: a line-API grid that redraws only the rows whose quotes changed.

Why not a DataTable: a DataTable re-renders every visible cell when any cell changes (about 35 ms
a frame for 48 rows); this grid caches one rendered ``Strip`` per row version and refreshes just
the one-line regions of rows that changed, so a frame costs 1-2 ms however many quotes arrive.

The app drains the coalesced quote stream once per frame and calls :meth:`QuoteGrid.apply_quotes`;
numbers are formatted there, once, never inside :meth:`render_line`. Up and down ticks flash the
last price for :data:`FLASH_SECONDS` (the app calls :meth:`expire_flashes` each frame). Once a
second the app passes the feeds' :class:`~tterm.tui.freshness.Freshness`
(:meth:`QuoteGrid.set_freshness`): a row whose quote is stale shows its prices dimmed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual.events import Click
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tterm.core.models import Instrument, Quote, Side
from tterm.tui import format as fmt
from tterm.tui.bridge import Resolved
from tterm.tui.freshness import Freshness
from tterm.tui.keymap import bindings
from tterm.tui.partial_update import install as _crop_partial_updates

# The grid repaints only the cells a quote changed; make Textual write only those (see the module).
_crop_partial_updates()

FLASH_SECONDS = 0.6
"""How long an up or down tick colours the last price."""

TREND_POINTS = 8
TREND_MAX = 30
TREND_INTERVAL = 2.0
"""The trend samples the price at most every TREND_INTERVAL seconds; the column shows the last
TREND_POINTS samples, or up to TREND_MAX when the grid has room."""

SLOW_CELLS = frozenset({"bid_size", "ask_size", "volume", "trend"})
SLOW_INTERVAL = 0.5
"""Sizes, volume and the trend of a row reach the screen at most every SLOW_INTERVAL seconds
(prices at every frame): under a firehose they change on every quote, and repainting them each
frame was a third of the terminal's output (bench_tui at 200x50, truecolor)."""

ROW_LOG = 1024
"""How many of the latest refreshed and rendered row indexes the grid remembers (tests, bench)."""

RESORT_INTERVAL = 1.0
"""A sort on a live column re-orders at most once a second, so rows do not jitter every frame."""


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    title: str
    width: int
    align: str
    priority: int  # lower stays longer as the grid narrows


#: Priorities: as the grid narrows the other columns go first; bid and ask stay with the symbol.
COLUMNS: tuple[Column, ...] = (
    Column("symbol", "Symbol", 8, "left", 0),
    Column("last", "Last", 10, "right", 3),
    Column("change", "Chg", 8, "right", 5),
    Column("change_pct", "%Chg", 7, "right", 4),
    Column("bid", "Bid", 10, "right", 1),
    Column("ask", "Ask", 10, "right", 2),
    Column("bid_size", "BidSz", 6, "right", 8),
    Column("ask_size", "AskSz", 6, "right", 9),
    Column("volume", "Volume", 7, "right", 7),
    Column("trend", "Trend", TREND_POINTS, "left", 6),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)
SORTABLE = tuple(k for k in COLUMN_KEYS if k != "trend")


@dataclass(slots=True, eq=False)
class Row:
    """One watchlist line: the listed symbol, its contract, the latest quote and formatted cells."""

    listed: str
    instrument: Instrument | None
    error: str = ""
    quote: Quote | None = None
    cells: dict[str, str] = field(default_factory=dict)
    flash: int = 0
    flash_until: float = 0.0
    version: int = 0
    trend: deque[Decimal] = field(default_factory=lambda: deque(maxlen=TREND_MAX))
    trend_at: float = -1e9
    dirty: bool = False  # the quote changed while off screen; format before drawing
    slow_at: float = -1e9  # when the slow cells (SLOW_CELLS) last reached the screen
    slow_pending: bool = False  # slow cells changed since; the frame after SLOW_INTERVAL draws them
    stale: bool = False  # the quote is not current (see tterm.tui.freshness): prices dimmed

    @property
    def contract(self) -> str | None:
        return self.instrument.symbol if self.instrument is not None else None


def _sign(value: Decimal | None) -> int:
    if value is None:
        return 0
    return (value > 0) - (value < 0)


def _sort_value(row: Row, key: str) -> object:
    if key == "symbol":
        return row.listed
    q = row.quote
    if q is None:
        return None
    if key == "change":
        return q.change
    if key == "change_pct":
        return q.change_pct
    return getattr(q, key, None)


class QuoteGrid(ScrollView, can_focus=True):
    """Live quotes for one watchlist; keys: see ``tterm.tui.keymap`` scope ``watchlist``."""

    BINDINGS = bindings("watchlist")
    #: The kinds of engine change this pane is fed (see tterm.tui.screens.trade).
    CONSUMES = frozenset({"quotes"})

    COMPONENT_CLASSES = {
        "quote-grid--header",
        "quote-grid--cursor",
        "quote-grid--cursor-blurred",
        "quote-grid--up",
        "quote-grid--down",
        "quote-grid--flash-up",
        "quote-grid--flash-down",
        "quote-grid--bid",
        "quote-grid--ask",
        "quote-grid--stale",
        "quote-grid--symbol",
    }

    DEFAULT_CSS = """
    QuoteGrid {
        background: $surface;
        color: $foreground;
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
    }
    QuoteGrid > .quote-grid--header { color: $grid-header; text-style: bold; background: $panel; }
    /* The cursor row keeps every cell's colour (bid, ask, up, down): only its background changes. */
    QuoteGrid > .quote-grid--cursor { background: $grid-cursor-bg; text-style: bold; }
    QuoteGrid > .quote-grid--cursor-blurred { background: $grid-cursor-blurred-bg; }
    QuoteGrid > .quote-grid--up { color: $pnl-up; }
    QuoteGrid > .quote-grid--down { color: $pnl-down; }
    QuoteGrid > .quote-grid--flash-up { background: $tick-up-bg; text-style: bold; }
    QuoteGrid > .quote-grid--flash-down { background: $tick-down-bg; text-style: bold; }
    QuoteGrid > .quote-grid--bid { color: $bid; }
    QuoteGrid > .quote-grid--ask { color: $ask; }
    QuoteGrid > .quote-grid--stale { color: $stale; }
    QuoteGrid > .quote-grid--symbol { text-style: bold; }
    """
    # At 16 colours and under NO_COLOR the app's stylesheet (tterm.tcss, TtermApp.-low-color)
    # draws the cursor row reversed instead: scoped DEFAULT_CSS cannot select on the app's class.

    # ------------------------------------------------------------------ messages

    class Trade(Message):
        """Buy or sell at market from a row; the symbol was captured when the key was pressed."""

        def __init__(self, listed: str, contract: str, side: Side) -> None:
            super().__init__()
            self.listed = listed
            self.contract = contract
            self.side = side

    class OpenTicket(Message):
        def __init__(self, listed: str) -> None:
            super().__init__()
            self.listed = listed

    class AddRequested(Message):
        """The user wants to add a symbol to the shown list."""

    class RemoveRequested(Message):
        def __init__(self, listed: str) -> None:
            super().__init__()
            self.listed = listed

    class ListStep(Message):
        """Show the next (+1) or previous (-1) watchlist."""

        def __init__(self, step: int) -> None:
            super().__init__()
            self.step = step

    class OpenDom(Message):
        """Open the DOM price ladder for a row."""

        def __init__(self, listed: str) -> None:
            super().__init__()
            self.listed = listed

    class CursorMoved(Message):
        """The cursor is on another symbol (the ticket follows it)."""

        def __init__(self, listed: str) -> None:
            super().__init__()
            self.listed = listed

    class QuantityKey(Message):
        """A quantity preset key (1-4: ``slot``; + and -: ``step``) for the cursor row's asset class."""

        def __init__(self, listed: str, slot: int | None, step: int = 0) -> None:
            super().__init__()
            self.listed = listed
            self.slot = slot
            self.step = step

    class Problem(Message):
        """A key that cannot act (no symbol, unknown symbol): the app shows the reason."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class OpenView(Message):
        """Open a chart, tape or option chain (``kind``) of the row's symbol (i16: market screens)."""

        def __init__(self, listed: str, contract: str, kind: str) -> None:
            super().__init__()
            self.listed = listed
            self.contract = contract
            self.kind = kind

    cursor: reactive[int] = reactive(0, repaint=False, init=False)

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.list_name = ""
        self._rows: list[Row] = []
        self._by_contract: dict[str, list[int]] = {}
        self._flashing: set[Row] = set()
        self._slow: set[Row] = set()  # visible rows whose slow cells wait for their turn
        self._strips: dict[tuple[int, int, int], Strip] = {}
        self._layout: tuple[Column, ...] = ()
        self._layout_version = 0
        self._styles: dict[str, Style] = {}
        self._trend_width = TREND_POINTS
        self._spans: dict[str, tuple[int, int]] = {}
        self._header_strip: Strip | None = None
        self._header_key: object = None
        self.sort_key: str | None = None
        self.sort_descending = False
        self._last_sort = -1e9
        self.flash_enabled = True
        self.freshness: Freshness | None = None
        #: The latest row indexes refreshed and strips rendered (cache misses), for tests and the
        #: bench. Bounded: a list appended on every refresh grew by thousands of entries a second
        #: under a firehose and was never trimmed (bench/soak).
        self.refreshed_rows: deque[int] = deque(maxlen=ROW_LOG)
        self.rendered_rows: deque[int] = deque(maxlen=ROW_LOG)

    # ------------------------------------------------------------------ data in

    def show_list(self, name: str, entries: Sequence[Resolved], quotes: Mapping[str, Quote], now: float) -> None:
        """Replace the rows with watchlist ``name``; quotes seed the cells."""
        keep = self.cursor_symbol
        self.list_name = name
        self._rows = [Row(e.listed, e.instrument, e.error) for e in entries]
        for row in self._rows:
            q = quotes.get(row.contract or "")
            if q is not None:
                self._park(row, q, now)
            else:
                self._format(row)
        self._flashing.clear()
        self._slow.clear()
        self._sort_rows(force=True)
        self._reindex()
        self._strips.clear()
        index = next((i for i, r in enumerate(self._rows) if r.listed == keep), 0)
        self.set_reactive(QuoteGrid.cursor, min(index, max(0, len(self._rows) - 1)))
        self._update_virtual_size()
        self.refresh()

    def apply_quotes(self, quotes: Mapping[str, Quote], now: float) -> int:
        """Fold one frame's coalesced quotes in; refresh only visible rows that changed.

        A row off screen only keeps its quote (and its trend sample): it is formatted when it next
        scrolls into view, so a firehose over 2,000 symbols costs the visible rows only.
        """
        changed = 0
        by_contract = self._by_contract
        rows = self._rows
        top = self.scroll_offset.y
        bottom = top + max(0, self.size.height - 1)
        width = self.scrollable_content_region.width or self.size.width  # not the scrollbar
        flash = self.flash_enabled
        refreshed = self.refreshed_rows
        fresh = self.freshness
        for symbol, quote in quotes.items():
            idxs = by_contract.get(symbol)
            if not idxs:
                continue
            stale = fresh is not None and fresh.everything_stale
            for i in idxs:
                row = rows[i]
                if row.stale != stale:
                    row.stale = stale
                    row.cells = {}  # every cell changes colour: repaint the whole row
                if top <= i < bottom:
                    span = self._update_row(row, quote, now, flash=flash)
                    if span is not None:
                        changed += 1
                        refreshed.append(i)
                        x0, x1 = span if span != (0, 0) else (0, width)
                        self.refresh(Region(x0, i - top + 1, min(x1, width) - x0, 1))
                else:
                    self._park(row, quote, now)
                    changed += 1
        if changed and self.sort_key not in (None, "symbol") and now - self._last_sort >= RESORT_INTERVAL:
            self._last_sort = now
            if self._sort_rows():
                self._reindex()
                self.refresh()
        return changed

    def _slow_drawn(self, row: Row, now: float) -> None:
        row.slow_at = now
        if row.slow_pending:
            row.slow_pending = False
            self._slow.discard(row)

    def _flush_slow(self, now: float) -> None:
        """Repaint the slow cells of rows whose turn has come (see SLOW_INTERVAL)."""
        due = [r for r in self._slow if now - r.slow_at >= SLOW_INTERVAL]
        if not due:
            return
        xs = [self._spans[k] for k in SLOW_CELLS if k in self._spans]
        span = (min(a for a, _ in xs), max(b for _, b in xs)) if xs else None
        index = {id(r): i for i, r in enumerate(self._rows)} if len(due) > 4 else None
        for row in due:
            self._slow_drawn(row, now)
            if span is None:
                continue
            i = index.get(id(row)) if index is not None else self._index_of(row)
            if i is not None:
                self._refresh_index(i, span)

    def expire_flashes(self, now: float) -> None:
        """Clear flashes whose time is up, and draw slow cells whose turn has come (once per frame)."""
        if self._slow:
            self._flush_slow(now)
        if not self._flashing:
            return
        done = [r for r in self._flashing if r.flash_until <= now]
        if not done:
            return
        index = {id(r): i for i, r in enumerate(self._rows)} if len(done) > 4 else None
        for row in done:
            self._flashing.discard(row)
            row.flash = 0
            row.version += 1
            i = index.get(id(row)) if index is not None else self._index_of(row)
            if i is not None:
                self._refresh_index(i, self._spans.get("last"))

    def set_freshness(self, fresh: Freshness) -> int:
        """Mark the rows whose quotes went stale (or came back); returns how many are stale."""
        self.freshness = fresh
        top = self.scroll_offset.y
        count = 0
        for i, row in enumerate(self._rows):
            stale = fresh.quote_stale(row.quote)
            count += stale
            if stale != row.stale:
                row.stale = stale
                row.version += 1
                if top <= i:
                    self._refresh_index(i)
        return count

    @property
    def stale_count(self) -> int:
        return sum(1 for r in self._rows if r.stale)

    def _index_of(self, row: Row) -> int | None:
        idxs = self._by_contract.get(row.contract or "", ())
        for i in idxs:
            if self._rows[i] is row:
                return i
        return None

    def _park(self, row: Row, quote: Quote, now: float) -> None:
        """Keep an off-screen row's quote without formatting it (see :meth:`apply_quotes`)."""
        row.quote = quote
        mark = quote.last if quote.last is not None else quote.mid
        if mark is not None and now - row.trend_at >= TREND_INTERVAL:
            row.trend.append(mark)
            row.trend_at = now
        if row.flash:
            row.flash = 0
            self._flashing.discard(row)
        if row.slow_pending:  # drawn whole when it scrolls back into view
            row.slow_pending = False
            self._slow.discard(row)
        row.dirty = True
        row.version += 1

    def _update_row(self, row: Row, quote: Quote | None, now: float, *, flash: bool) -> tuple[int, int] | None:
        """Fold ``quote`` into a visible row; the x span to repaint, (0, 0) for all, None if unchanged."""
        prev = row.quote
        row.quote = quote
        if quote is None:
            return None
        mark = quote.last if quote.last is not None else quote.mid
        if mark is not None and now - row.trend_at >= TREND_INTERVAL:
            row.trend.append(mark)
            row.trend_at = now
        old_cells = row.cells
        was_dirty = row.dirty
        self._format(row)
        row.dirty = False
        direction = 0
        if flash and prev is not None and prev.last is not None and quote.last is not None:
            direction = (quote.last > prev.last) - (quote.last < prev.last)
        changed = [k for k, v in row.cells.items() if old_cells.get(k) != v]
        if direction:
            row.flash = direction
            row.flash_until = now + FLASH_SECONDS
            self._flashing.add(row)
            changed.append("last")
        if not changed:
            return None
        row.version += 1
        if was_dirty or prev is None or _sign(prev.change) != _sign(quote.change):
            self._slow_drawn(row, now)
            return (0, 0)  # colours of several cells follow the sign of the change
        if any(k in SLOW_CELLS for k in changed):
            if now - row.slow_at >= SLOW_INTERVAL:
                self._slow_drawn(row, now)
            else:
                # The strip holds the new text already; the screen gets it when the row's turn comes.
                changed = [k for k in changed if k not in SLOW_CELLS]
                row.slow_pending = True
                self._slow.add(row)
        xs = [self._spans[k] for k in changed if k in self._spans]
        if not xs:
            return None
        return min(a for a, _ in xs), max(b for _, b in xs)

    def _format(self, row: Row) -> None:
        q = row.quote
        inst = row.instrument
        if q is None:
            filler = "unknown" if row.error else fmt.DASH
            row.cells = {k: (fmt.DASH if k != "trend" else "") for k in COLUMN_KEYS}
            row.cells["symbol"] = row.listed
            row.cells["last"] = filler
            return
        row.cells = {
            "symbol": row.listed,
            "last": fmt.price(q.last if q.last is not None else q.mid, inst),
            "change": fmt.signed_price(q.change, inst),
            "change_pct": fmt.pct(q.change_pct),
            "bid": fmt.price(q.bid, inst),
            "ask": fmt.price(q.ask, inst),
            # A side without a price is absent (no data), and so is its size.
            "bid_size": fmt.size(q.bid_size) if q.bid is not None else fmt.DASH,
            "ask_size": fmt.size(q.ask_size) if q.ask is not None else fmt.DASH,
            "volume": fmt.volume(q.volume),
            "trend": fmt.sparkline(tuple(row.trend), self._trend_width),
        }

    # ------------------------------------------------------------------ sorting

    def set_sort(self, key: str | None, descending: bool) -> None:
        if key is not None and key not in SORTABLE:
            raise ValueError(f"cannot sort on {key!r}")
        self.sort_key = key
        self.sort_descending = descending
        self._sort_rows(force=True)
        self._reindex()
        self._strips.clear()
        self.refresh()

    def _sort_rows(self, *, force: bool = False) -> bool:
        """Order rows by the sort column (missing values last); True if the order changed."""
        key = self.sort_key
        if key is None:
            return False
        before = [id(r) for r in self._rows] if not force else None
        present = [r for r in self._rows if _sort_value(r, key) is not None]
        missing = [r for r in self._rows if _sort_value(r, key) is None]
        # One column's values are all of one comparable type (numbers, or text for symbol);
        # _sort_value returns object because the column varies.
        present.sort(key=lambda r: _sort_value(r, key), reverse=self.sort_descending)  # type: ignore[arg-type,return-value]
        keep = self.cursor_symbol
        self._rows = present + missing
        if keep is not None:
            index = next((i for i, r in enumerate(self._rows) if r.listed == keep), 0)
            self.set_reactive(QuoteGrid.cursor, index)
        return force or before != [id(r) for r in self._rows]

    def _reindex(self) -> None:
        by_contract: dict[str, list[int]] = {}
        for i, row in enumerate(self._rows):
            if row.contract:
                by_contract.setdefault(row.contract, []).append(i)
        self._by_contract = by_contract

    # ------------------------------------------------------------------ queries

    @property
    def rows(self) -> list[Row]:
        return list(self._rows)

    @property
    def cursor_row(self) -> Row | None:
        if 0 <= self.cursor < len(self._rows):
            return self._rows[self.cursor]
        return None

    @property
    def cursor_symbol(self) -> str | None:
        row = self.cursor_row
        return row.listed if row is not None else None

    def move_to(self, listed: str) -> bool:
        for i, row in enumerate(self._rows):
            if row.listed == listed:
                self.cursor = i
                return True
        return False

    # ------------------------------------------------------------------ layout and rendering

    def _update_virtual_size(self) -> None:
        self.virtual_size = Size(self.size.width, len(self._rows) + 1)

    def on_resize(self) -> None:
        self._fit_columns()
        self._update_virtual_size()

    def _fit_columns(self) -> None:
        width = self.scrollable_content_region.width or self.size.width
        chosen: list[Column] = []
        used = 0
        for col in sorted(COLUMNS, key=lambda c: c.priority):
            need = col.width + (1 if chosen else 0)
            if used + need <= width:
                chosen.append(col)
                used += need
        order = {c.key: i for i, c in enumerate(COLUMNS)}
        layout = tuple(sorted(chosen, key=lambda c: order[c.key]))
        # Spare width: a little more room for every column, then a longer trend.
        spare = width - used
        if spare > 0 and layout:
            extra = min(3, spare // len(layout))
            grown = []
            for col in layout:
                add = extra if col.key != "trend" else 0
                grown.append(Column(col.key, col.title, col.width + add, col.align, col.priority))
                spare -= add
            if spare > 0 and grown[-1].key == "trend":
                t = grown[-1]
                grown[-1] = Column(t.key, t.title, t.width + min(spare, TREND_MAX - t.width), t.align, t.priority)
            layout = tuple(grown)
        if layout != self._layout:
            self._layout = layout
            x = 0
            self._spans = {}
            for n, col in enumerate(layout):
                start = x
                x += col.width + (1 if n else 0)
                self._spans[col.key] = (start, x)
            trend = next((c.width for c in layout if c.key == "trend"), TREND_POINTS)
            if trend != self._trend_width:
                self._trend_width = trend
                for row in self._rows:
                    if row.quote is not None:
                        self._format(row)
                        row.version += 1
            self._layout_version += 1
            self._strips.clear()
            self.refresh()

    @property
    def visible_columns(self) -> tuple[str, ...]:
        return tuple(c.key for c in self._layout)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._strips.clear()
        self._header_key = None

    def on_focus(self) -> None:
        self._refresh_cursor()

    def on_blur(self) -> None:
        self._refresh_cursor()

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            if name == "base":
                style = self.rich_style
            else:
                style = self.get_component_rich_style(f"quote-grid--{name}", partial=True)
            self._styles[name] = style
        return style

    def _refresh_index(self, i: int, span: tuple[int, int] | None = None) -> None:
        y = i - self.scroll_offset.y + 1
        if 1 <= y < self.size.height:
            self.refreshed_rows.append(i)
            width = self.scrollable_content_region.width or self.size.width  # not the scrollbar
            x0, x1 = span if span is not None else (0, width)
            self.refresh(Region(x0, y, min(x1, width) - x0, 1))

    def _refresh_cursor(self) -> None:
        self._refresh_index(self.cursor)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if y == 0:
            return self._header(width)
        i = self.scroll_offset.y + y - 1
        if i >= len(self._rows):
            if not self._rows and y == 1:
                return self._message(f"{self.list_name or 'this list'} is empty: press a to add a symbol", width)
            return Strip.blank(width, self._style("base"))
        row = self._rows[i]
        cursor = 0
        if i == self.cursor:
            cursor = 1 if self.has_focus else 2
        key = (id(row), row.version, cursor + 3 * self._layout_version)
        strip = self._strips.get(key)
        if strip is None:
            if row.dirty:
                self._format(row)
                row.dirty = False
            strip = self._render_row(row, cursor, width)
            if len(self._strips) > 4096:
                self._strips.clear()
            self._strips[key] = strip
            self.rendered_rows.append(i)
        return strip

    def _header(self, width: int) -> Strip:
        key = (self._layout_version, self.sort_key, self.sort_descending, width)
        strip = self._header_strip if key == self._header_key else None
        if strip is None:
            style = self._style("base") + self._style("header")
            parts = []
            for col in self._layout:
                title = col.title
                if col.key == self.sort_key:
                    title += "▼" if self.sort_descending else "▲"
                parts.append(fmt.fit(title, col.width, col.align))
            strip = Strip([Segment(" ".join(parts), style)]).extend_cell_length(width, style).crop(0, width)
            self._header_strip, self._header_key = strip, key
        return strip

    def _message(self, text: str, width: int) -> Strip:
        style = self._style("base") + self._style("stale")
        return Strip([Segment(fmt.fit(" " + text, width), style)]).crop(0, width)

    def _render_row(self, row: Row, cursor: int, width: int) -> Strip:
        """One line. Separators take their cell's style and equal neighbours merge, because every
        segment costs a full escape sequence on the wire (fewer bytes over SSH)."""
        base = self._style("base")
        cells = row.cells
        q = row.quote
        up = self._style("up")
        down = self._style("down")
        direction = 0
        if q is not None and q.change is not None:
            direction = (q.change > 0) - (q.change < 0)
        tone = up if direction > 0 else down if direction < 0 else None
        over = self._style("cursor" if cursor == 1 else "cursor-blurred") if cursor else None
        parts: list[list[Any]] = []  # [text, style], merged as they come
        for n, col in enumerate(self._layout):
            text = fmt.fit(cells.get(col.key, ""), col.width, col.align)
            if n:
                text = " " + text
            style = base
            key = col.key
            if (q is None or row.stale) and key != "symbol":
                style = style + self._style("stale")
            elif key == "symbol":
                style = style + self._style("symbol")
            elif key == "last":
                if row.flash:
                    flash = self._style("flash-up" if row.flash > 0 else "flash-down")
                    style = style + (up if row.flash > 0 else down) + flash
            elif key in ("change", "change_pct", "trend") and tone is not None:
                style = style + tone
            elif key == "bid":
                style = style + self._style("bid")
            elif key == "ask":
                style = style + self._style("ask")
            if over is not None:
                style = style + over
            if parts and parts[-1][1] == style:
                parts[-1][0] += text
            else:
                parts.append([text, style])
        fill = base + over if over is not None else base
        used = sum(len(t) for t, _ in parts)
        if used < width:
            if parts and parts[-1][1] == fill:
                parts[-1][0] += " " * (width - used)
            else:
                parts.append([" " * (width - used), fill])
        return Strip([Segment(t, st) for t, st in parts], width).crop(0, width)

    # ------------------------------------------------------------------ cursor and keys

    def watch_cursor(self, old: int, new: int) -> None:
        self._refresh_index(old)
        self._refresh_index(new)
        row = self.cursor_row
        if row is not None:
            self.post_message(self.CursorMoved(row.listed))
        self.scroll_to_region(Region(0, new + 1, 1, 1), animate=False, immediate=True, spacing=None)
        # The header occupies line 0, so keep the cursor row below it.
        if new - self.scroll_offset.y < 0:
            self.scroll_to(y=new, animate=False, immediate=True)

    def _move(self, delta: int) -> None:
        if self._rows:
            self.cursor = max(0, min(len(self._rows) - 1, self.cursor + delta))

    def action_cursor_up(self) -> None:
        self._move(-1)

    def action_cursor_down(self) -> None:
        self._move(1)

    def action_page_up(self) -> None:
        self._move(-max(1, self.size.height - 2))

    def action_page_down(self) -> None:
        self._move(max(1, self.size.height - 2))

    def action_first(self) -> None:
        self._move(-len(self._rows))

    def action_last(self) -> None:
        self._move(len(self._rows))

    def _trade(self, side: Side) -> None:
        row = self.cursor_row
        if row is None:
            self.post_message(self.Problem("the watchlist is empty: nothing to trade"))
        elif row.contract is None:
            self.post_message(self.Problem(f"{row.listed}: {row.error or 'unknown symbol'}"))
        else:
            self.post_message(self.Trade(row.listed, row.contract, side))

    def action_buy(self) -> None:
        self._trade(Side.BUY)

    def action_sell(self) -> None:
        self._trade(Side.SELL)

    def action_ticket(self) -> None:
        row = self.cursor_row
        if row is not None:
            self.post_message(self.OpenTicket(row.listed))

    def action_open_view(self, kind: str) -> None:
        row = self.cursor_row
        if row is None:
            self.post_message(self.Problem(f"the watchlist is empty: no symbol to open a {kind} for"))
        elif row.contract is None:
            self.post_message(self.Problem(f"{row.listed}: {row.error or 'unknown symbol'}"))
        else:
            self.post_message(self.OpenView(row.listed, row.contract, kind))

    def action_dom(self) -> None:
        row = self.cursor_row
        if row is None:
            self.post_message(self.Problem("the watchlist is empty: no symbol for the ladder"))
        elif row.contract is None:
            self.post_message(self.Problem(f"{row.listed}: {row.error or 'unknown symbol'}"))
        else:
            self.post_message(self.OpenDom(row.listed))

    def action_quantity(self, slot: int) -> None:
        row = self.cursor_row
        if row is not None:
            self.post_message(self.QuantityKey(row.listed, slot))

    def action_quantity_step(self, step: int) -> None:
        row = self.cursor_row
        if row is not None:
            self.post_message(self.QuantityKey(row.listed, None, step))

    def action_add_symbol(self) -> None:
        self.post_message(self.AddRequested())

    def action_remove_symbol(self) -> None:
        row = self.cursor_row
        if row is not None:
            self.post_message(self.RemoveRequested(row.listed))

    def action_next_list(self) -> None:
        self.post_message(self.ListStep(1))

    def action_prev_list(self) -> None:
        self.post_message(self.ListStep(-1))

    def action_sort_next(self) -> None:
        """Cycle the sort column: none, then each sortable column in screen order."""
        keys = [k for k in SORTABLE if k in self.visible_columns]
        if self.sort_key is None:
            nxt: str | None = keys[0] if keys else None
        else:
            i = keys.index(self.sort_key) if self.sort_key in keys else -1
            nxt = keys[i + 1] if i + 1 < len(keys) else None
        self.set_sort(nxt, descending=nxt not in (None, "symbol"))

    def action_sort_reverse(self) -> None:
        if self.sort_key is not None:
            self.set_sort(self.sort_key, not self.sort_descending)

    def on_click(self, event: Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y == 0:
            return
        i = self.scroll_offset.y + offset.y - 1
        if 0 <= i < len(self._rows):
            self.cursor = i
            if event.chain >= 2:
                self.action_ticket()

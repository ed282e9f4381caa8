"""The DOM price ladder: one row per tick around the market, with the book, the prints, and the
user's working orders and average price on their rows. Keys trade at the cursor's row.

Rows are price *indices* (price / tick), so stepping and comparing never round a Decimal. Each
frame the screen hands the ladder the changes it consumes (depth, trades, quotes, orders,
positions); the ladder recomputes the cells of the visible rows, and refreshes only the rows
whose cells changed (the line API, as the watchlist: one cached ``Strip`` per row content).

The ladder never calls the engine. A key builds an ``OrderRequest`` (or names working orders)
and posts a message; the trade screen hands it to the one order path, which runs the same
pre-trade checks and confirmation as the ticket. A row outside the price band (the fat-finger
distance of ``[risk]``), a limit on the wrong side of the market, or a key with no position to act
on is refused here with a message, and nothing is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from tterm.core.models import (
    Depth,
    Instrument,
    Order,
    OrderRequest,
    OrderSource,
    OrderType,
    Position,
    Quote,
    Side,
    Trade,
)
from tterm.tui import format as fmt
from tterm.tui.bridge import Changes
from tterm.tui.freshness import Freshness
from tterm.tui.keymap import bindings

HEADER_LINES = 2
"""The position line and the column titles; price rows start below them."""

#: (key, title, width, align): buy orders, bid size, price, ask size, sell orders, volume at price.
COLUMNS: tuple[tuple[str, str, int, str], ...] = (
    ("buys", "Buy", 4, "right"),
    ("bid", "Bid", 6, "right"),
    ("price", "Price", 10, "right"),
    ("ask", "Ask", 6, "left"),
    ("sells", "Sell", 4, "left"),
    ("volume", "Vol", 6, "right"),
)


@dataclass(frozen=True, slots=True)
class RowCells:
    """What one price row shows; equal cells mean the row need not be repainted."""

    buys: str = ""
    bid: str = ""
    price: str = ""
    ask: str = ""
    sells: str = ""
    volume: str = ""
    #: Marks: "bid"/"ask" side of the touch, "last" trade row, "avg" price row.
    touch: str = ""
    last: bool = False
    avg: bool = False


def _orders_cell(orders: list[Order], side: Side) -> str:
    """Working quantity at a row for one side: ``2`` for limits, ``2s`` when a stop is among them."""
    mine = [o for o in orders if o.side is side]
    if not mine:
        return ""
    qty = sum(o.quantity - o.filled_quantity for o in mine)
    stop = any(o.order_type in (OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP) for o in mine)
    return f"{qty}{'s' if stop else ''}"


#: Column key -> (x, x + width) on a row (a separator belongs to the column after it).
SPANS: dict[str, tuple[int, int]] = {}
_x = 0
for _n, (_key, _title, _w, _align) in enumerate(COLUMNS):
    SPANS[_key] = (_x, _x + _w + (1 if _n else 0))
    _x += _w + (1 if _n else 0)
_CELL_KEYS = ("buys", "bid", "ask", "sells", "volume")


def _changed_span(old: RowCells | None, new: RowCells, width: int) -> tuple[int, int]:
    """The x range of a row to repaint: the whole row when a mark or the price moved."""
    if old is None or (old.touch, old.last, old.avg, old.price) != (new.touch, new.last, new.avg, new.price):
        return 0, width
    xs = [SPANS[k] for k in _CELL_KEYS if getattr(old, k) != getattr(new, k)]
    if not xs:
        return 0, width
    return min(a for a, _ in xs), min(width, max(b for _, b in xs))


def order_price(order: Order) -> Decimal | None:
    """The price an order rests at on the ladder: a stop's trigger, else its limit."""
    if order.order_type in (OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP):
        return order.stop_price
    return order.limit_price


class DomLadder(Widget, can_focus=True):
    """A price ladder for one instrument (keys: scope ``dom`` in :mod:`tterm.tui.keymap`)."""

    BINDINGS = bindings("dom")
    #: The kinds of engine change this pane is fed (see tterm.tui.screens.trade).
    CONSUMES = frozenset({"depth", "trades", "quotes", "orders", "positions"})

    COMPONENT_CLASSES = {
        "dom--header",
        "dom--titles",
        "dom--cursor",
        "dom--bid",
        "dom--ask",
        "dom--touch-bid",
        "dom--touch-ask",
        "dom--last",
        "dom--avg",
        "dom--buys",
        "dom--sells",
        "dom--muted",
        "dom--up",
        "dom--down",
        "dom--stale",
        "dom--moving",
    }

    DEFAULT_CSS = """
    DomLadder { background: $surface; color: $foreground; border: round $border-blurred;
                border-title-color: $text-primary; border-title-style: bold; height: 1fr; }
    DomLadder:focus { border: round $primary; }
    DomLadder > .dom--header { text-style: bold; }
    DomLadder > .dom--titles { color: $grid-header; text-style: bold; background: $panel; }
    DomLadder > .dom--cursor { background: $grid-cursor-bg; text-style: bold; }
    DomLadder > .dom--bid { color: $bid; }
    DomLadder > .dom--ask { color: $ask; }
    DomLadder > .dom--touch-bid { color: $bid; text-style: bold; }
    DomLadder > .dom--touch-ask { color: $ask; text-style: bold; }
    DomLadder > .dom--last { text-style: bold reverse; }
    DomLadder > .dom--avg { color: $warning; text-style: bold; }
    DomLadder > .dom--buys { color: $pnl-up; text-style: bold; }
    DomLadder > .dom--sells { color: $pnl-down; text-style: bold; }
    DomLadder > .dom--muted { color: $foreground-muted; }
    DomLadder > .dom--up { color: $pnl-up; }
    DomLadder > .dom--down { color: $pnl-down; }
    DomLadder > .dom--stale { color: $stale; }
    DomLadder > .dom--moving { background: $warning 40%; }
    """

    # ------------------------------------------------------------------ messages (handled by the trade screen)

    class PlaceOrder(Message):
        """Send this order through the order path (checks and confirmation)."""

        def __init__(self, request: OrderRequest) -> None:
            super().__init__()
            self.request = request

    class Move(Message):
        """Move a working order to ``price`` (a modify, never a cancel and a new order)."""

        def __init__(self, order: Order, price: Decimal) -> None:
            super().__init__()
            self.order = order
            self.price = price

    class CancelRow(Message):
        def __init__(self, orders: tuple[Order, ...], what: str) -> None:
            super().__init__()
            self.orders = orders
            self.what = what

    class PositionVerb(Message):
        """flatten, reverse or breakeven on the ladder's symbol in the current account."""

        def __init__(self, verb: str, symbol: str) -> None:
            super().__init__()
            self.verb = verb
            self.symbol = symbol

    class Problem(Message):
        """A key that cannot act: the reason, nothing sent."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Closed(Message):
        """The user closed the ladder."""

    class QuantityKey(Message):
        """A quantity preset key (1-4, +, -) pressed on the ladder: the app's presets change."""

        def __init__(self, slot: int | None, step: int = 0) -> None:
            super().__init__()
            self.slot = slot
            self.step = step

    cursor: reactive[int] = reactive(0, repaint=False, init=False)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.instrument: Instrument | None = None
        self.account: str | None = None
        self.quantity = 1
        self.risk: Any = None  # RiskSettings, for the price band (fat-finger distance)
        self.depth: Depth | None = None
        self.quote: Quote | None = None
        self.position: Position | None = None
        self.orders: list[Order] = []
        self.volume_at: dict[int, int] = {}
        self.last_index: int | None = None
        self.top = 0  # price index of the first visible row (the highest price)
        self.moving: Order | None = None
        self.stale = False
        self._cells: dict[int, RowCells] = {}
        self._price_texts: dict[int, str] = {}
        self._strips: dict[tuple[RowCells, int, int], Strip] = {}
        self._styles: dict[str, Style] = {}
        self._header_key: object = None
        self._header_strip: Strip | None = None
        self._centred = False
        #: For tests and the bench: rows repainted (refresh of one line) and rows rendered.
        self.refreshed_rows: list[int] = []
        self.rendered_rows: list[int] = []

    # ------------------------------------------------------------------ data in

    def show_instrument(self, inst: Instrument, state: Any, account: str | None, fresh: Freshness | None) -> None:
        """Show ``inst`` (a new ladder, or another symbol in this one): start from the screen state."""
        changed = self.instrument is None or self.instrument.symbol != inst.symbol
        self.instrument = inst
        self.border_title = f"DOM {inst.symbol}"
        if changed:
            self._price_texts = {}
            self.volume_at = {}
            self.last_index = None
            self.moving = None
            self._centred = False
            self.depth = state.depth.get(inst.symbol)
        self.quote = state.quotes.get(inst.symbol)
        self._load_account(state, account)
        if fresh is not None:
            self.stale = fresh.quote_stale(self.quote)
        self.centre()
        self._repaint_all()

    def _load_account(self, state: Any, account: str | None) -> None:
        inst = self.instrument
        self.account = account
        if inst is None or account is None:
            self.orders, self.position = [], None
            return
        self.orders = [o for o in state.working_orders() if o.account == account and o.symbol == inst.symbol]
        pos = state.positions.get((account, inst.symbol))
        self.position = pos if pos is not None and pos.quantity else None
        if self.moving is not None and all(o.order_id != self.moving.order_id for o in self.orders):
            self.moving = None  # the order being moved filled or was cancelled

    def apply_changes(self, ch: Changes, state: Any, account: str | None) -> None:
        """One frame's changes: fold in what concerns this symbol, repaint the rows that changed."""
        inst = self.instrument
        if inst is None:
            return
        sym = inst.symbol
        touched = False
        depth = ch.depth.get(sym)
        if depth is not None:
            self.depth = depth
            touched = True
        if ch.trades:
            for trade in ch.trades:
                if trade.symbol == sym:
                    self._print(trade)
                    touched = True
        quote = ch.quotes.get(sym)
        if quote is not None:
            self.quote = quote
            if self.last_index is None and quote.last is not None:
                self.last_index = self.index(quote.last)
            touched = True
        if ch.orders or ch.positions or account != self.account:
            self._load_account(state, account)
            touched = True
        if touched:
            if not self._centred:
                self.centre()
            else:
                self._follow_market()
            self._update_rows()

    def _follow_market(self) -> None:
        """When the market leaves the window, the window moves to put it back in the middle (the
        cursor keeps its price unless that would leave the window too)."""
        mid = self.market_index()
        rows = self.rows
        if mid is None or not rows or self.top - rows < mid <= self.top:
            return
        self.top = mid + rows // 2
        if not (self.top - rows < self.cursor <= self.top):
            self.set_reactive(DomLadder.cursor, mid)
        self._repaint_all()

    def _print(self, trade: Trade) -> None:
        idx = self.index(trade.price)
        self.volume_at[idx] = self.volume_at.get(idx, 0) + trade.size
        self.last_index = idx

    def set_freshness(self, fresh: Freshness) -> None:
        stale = fresh.quote_stale(self.quote)
        if stale != self.stale:
            self.stale = stale
            self._repaint_all()

    # ------------------------------------------------------------------ prices and rows

    def index(self, price: Decimal) -> int:
        assert self.instrument is not None
        return int((price / self.instrument.tick_size).to_integral_value())

    def price_at(self, index: int) -> Decimal:
        assert self.instrument is not None
        return self.instrument.tick_size * index

    @property
    def rows(self) -> int:
        return max(0, self.size.height - HEADER_LINES)

    def visible_indices(self) -> range:
        return range(self.top, self.top - self.rows, -1)

    def market_index(self) -> int | None:
        """The row the market is at: the middle of bid and ask, else the last trade."""
        q = self.quote
        if q is not None and q.bid is not None and q.ask is not None:
            return (self.index(q.bid) + self.index(q.ask) + 1) // 2
        if self.depth is not None and self.depth.best_bid is not None:
            return self.index(self.depth.best_bid.price)
        if self.last_index is not None:
            return self.last_index
        if q is not None and q.last is not None:
            return self.index(q.last)
        return None

    def centre(self) -> None:
        """Put the market in the middle row (and the cursor on it)."""
        mid = self.market_index()
        if mid is None:
            return
        self._centred = True
        self.top = mid + max(1, self.rows) // 2
        self.set_reactive(DomLadder.cursor, mid)
        self._repaint_all()

    def cursor_price(self) -> Decimal:
        return self.price_at(self.cursor)

    def _cells_for(self, idx: int) -> RowCells:
        inst = self.instrument
        bid_sz = ask_sz = ""
        touch = ""
        depth = self.depth
        price = self.price_at(idx)
        if depth is not None:
            for n, level in enumerate(depth.bids):
                if level.price == price:
                    bid_sz = fmt.size(level.size)
                    touch = "bid" if n == 0 else touch
                    break
            for n, level in enumerate(depth.asks):
                if level.price == price:
                    ask_sz = fmt.size(level.size)
                    touch = "ask" if n == 0 else touch
                    break
        q = self.quote
        if not touch and q is not None:  # a broker without depth still shows its touch
            if q.bid is not None and self.index(q.bid) == idx:
                touch, bid_sz = "bid", fmt.size(q.bid_size)
            elif q.ask is not None and self.index(q.ask) == idx:
                touch, ask_sz = "ask", fmt.size(q.ask_size)
        here = [o for o in self.orders if (p := order_price(o)) is not None and self.index(p) == idx]
        vol = self.volume_at.get(idx)
        pos = self.position
        avg = pos is not None and self.index(pos.avg_price) == idx if pos is not None and inst else False
        return RowCells(
            buys=_orders_cell(here, Side.BUY),
            bid=bid_sz,
            price=self._price_text(idx, price),
            ask=ask_sz,
            sells=_orders_cell(here, Side.SELL),
            volume=fmt.volume(vol) if vol else "",
            touch=touch,
            last=idx == self.last_index,
            avg=bool(avg),
        )

    def _price_text(self, idx: int, price: Decimal) -> str:
        text = self._price_texts.get(idx)
        if text is None:
            if len(self._price_texts) > 4096:
                self._price_texts.clear()
            text = self._price_texts[idx] = fmt.price(price, self.instrument)
        return text

    def orders_at(self, idx: int) -> list[Order]:
        return [o for o in self.orders if (p := order_price(o)) is not None and self.index(p) == idx]

    def _update_rows(self) -> None:
        """Recompute the visible rows; refresh only those whose cells changed, and of those only
        the changed columns when the marks stayed (a size change repaints its own cell, which
        keeps the bytes sent over SSH down when a busy book changes a few levels a frame)."""
        width = self.size.width
        for y, idx in enumerate(self.visible_indices()):
            cells = self._cells_for(idx)
            old = self._cells.get(idx)
            if old != cells:
                self._cells[idx] = cells
                self.refreshed_rows.append(idx)
                x0, x1 = _changed_span(old, cells, width)
                self.refresh(Region(x0, y + HEADER_LINES, x1 - x0, 1))
        self._refresh_header()

    def _repaint_all(self) -> None:
        self._cells = {}
        self._header_key = None
        if self.instrument is not None:
            for idx in self.visible_indices():
                self._cells[idx] = self._cells_for(idx)
        self.refresh()

    def _refresh_header(self) -> None:
        key = self._header_state()
        if key != self._header_key:
            self.refresh(Region(0, 0, self.size.width, 1))

    def on_resize(self) -> None:
        if self.instrument is not None:
            self.centre()
        self._strips.clear()
        self._repaint_all()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._strips.clear()
        self._header_key = None

    # ------------------------------------------------------------------ rendering

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self.rich_style if name == "base" else self.get_component_rich_style(f"dom--{name}", partial=True)
            self._styles[name] = style
        return style

    def _header_state(self) -> tuple[Any, ...]:
        pos = self.position
        inst = self.instrument
        if inst is None:
            return ("none",)
        if pos is None:
            text = f"{inst.symbol} flat · qty {self.quantity}"
            pnl = None
        else:
            side = "long" if pos.quantity > 0 else "short"
            text = f"{inst.symbol} {side} {abs(pos.quantity)} @ {fmt.price(pos.avg_price, inst)} · qty {self.quantity}"
            pnl = pos.unrealized_pnl
        moving = f" · MOVING {self.moving.order_id}" if self.moving is not None else ""
        stale = " · STALE" if self.stale else ""
        return (text + moving + stale, pnl, self.size.width)

    def render_line(self, y: int) -> Strip:
        width = self.content_region.width or self.size.width
        base = self._style("base")
        if self.instrument is None:
            return Strip.blank(width, base)
        if y == 0:
            return self._header(width)
        if y == 1:
            titles = " ".join(fmt.fit(title, w, align) for _, title, w, align in COLUMNS)
            style = base + self._style("titles")
            return Strip([Segment(fmt.fit(titles, width), style)]).crop(0, width)
        idx = self.top - (y - HEADER_LINES)
        cells = self._cells.get(idx)
        if cells is None:
            cells = self._cells[idx] = self._cells_for(idx)
        cursor = 1 if idx == self.cursor else 0
        moving = 1 if self.moving is not None and (p := order_price(self.moving)) is not None and \
            self.index(p) == idx else 0  # fmt: skip
        key = (cells, cursor + 2 * moving + 4 * int(self.has_focus) + 8 * int(self.stale), width)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._render_row(cells, bool(cursor), bool(moving), width)
            if len(self._strips) > 2048:
                self._strips.clear()
            self._strips[key] = strip
            self.rendered_rows.append(idx)
        return strip

    def _header(self, width: int) -> Strip:
        state = self._header_state()
        if state == self._header_key and self._header_strip is not None:
            return self._header_strip
        text, pnl, _ = state
        base = self._style("base") + self._style("header")
        segs = [Segment(text, base)]
        if pnl is not None:
            tone = self._style("up" if pnl > 0 else "down" if pnl < 0 else "muted")
            segs.append(Segment(f" · open {fmt.money(pnl, signed=True)}", base + tone))
        strip = Strip(segs).extend_cell_length(width, base).crop(0, width)
        self._header_key, self._header_strip = state, strip
        return strip

    def _render_row(self, c: RowCells, cursor: bool, moving: bool, width: int) -> Strip:
        base = self._style("base")
        over = self._style("cursor") if cursor and self.has_focus else None
        if moving:
            over = (over or Style()) + self._style("moving")
        stale = self._style("stale") if self.stale else None
        parts: list[tuple[str, Style]] = []
        for n, (key, _title, w, align) in enumerate(COLUMNS):
            text = fmt.fit(getattr(c, key), w, align)
            style = base
            if key == "buys" and c.buys:
                style += self._style("buys")
            elif key == "sells" and c.sells:
                style += self._style("sells")
            elif key == "bid":
                style += self._style("touch-bid" if c.touch == "bid" else "bid")
            elif key == "ask":
                style += self._style("touch-ask" if c.touch == "ask" else "ask")
            elif key == "price":
                # Glyphs as well as colours, so the marks read on 16 colours and NO_COLOR too.
                mark = "◆" if c.avg else "›" if c.last else ""
                if mark:
                    text = fmt.fit(mark + c.price, w, align)
                if c.avg:
                    style += self._style("avg")
                elif c.touch == "bid":
                    style += self._style("touch-bid")
                elif c.touch == "ask":
                    style += self._style("touch-ask")
                if c.last:
                    style += self._style("last")
            elif key == "volume":
                style += self._style("muted")
            if stale is not None and key in ("bid", "ask", "price"):
                style += stale
            if over is not None:
                style += over
            if n:
                sep = base + over if over is not None else base
                parts.append((" ", sep))
            parts.append((text, style))
        used = sum(len(t) for t, _ in parts)
        fill = base + over if over is not None else base
        if used < width:
            parts.append((" " * (width - used), fill))
        return Strip([Segment(t, s) for t, s in parts]).crop(0, width)

    # ------------------------------------------------------------------ cursor

    def watch_cursor(self, old: int, new: int) -> None:
        rows = self.rows
        if rows and not (self.top - rows < new <= self.top):
            # Scroll the window so the cursor stays inside, a few rows from the edge.
            self.top = new + 2 if new > self.top else new + rows - 3
            self._repaint_all()
            return
        for idx in (old, new):
            y = self.top - idx
            if 0 <= y < rows:
                self.refresh(Region(0, y + HEADER_LINES, self.size.width, 1))

    def on_focus(self) -> None:
        self._strips.clear()
        self.refresh()

    def on_blur(self) -> None:
        self._strips.clear()
        self.refresh()

    def action_cursor(self, step: int) -> None:
        if self.instrument is not None:
            self.cursor += step

    def action_page(self, step: int) -> None:
        if self.instrument is not None:
            self.cursor += step * max(1, self.rows - 2)

    def action_centre(self) -> None:
        self.centre()

    def action_close(self) -> None:
        if self.moving is not None:
            self.moving = None
            self._repaint_all()
            return
        self.post_message(self.Closed())

    # ------------------------------------------------------------------ trading keys

    def _problem(self, text: str) -> None:
        self.post_message(self.Problem(text))

    def _band_error(self, price: Decimal) -> str | None:
        """Why ``price`` is outside the price band (the fat-finger distance from the market)."""
        inst = self.instrument
        q = self.quote
        if inst is None or self.risk is None or q is None:
            return None
        market = q.last if q.last is not None else q.mid
        if market is None:
            return None
        limit = self.risk.max_distance(inst, market)
        if abs(price - market) > limit:
            ticks = abs(price - market) / inst.tick_size
            return (f"{fmt.price(price, inst)} is {ticks:.0f} ticks from the market {fmt.price(market, inst)}, "
                    f"outside the price band (±{fmt.price(limit, inst)}): nothing sent")  # fmt: skip
        return None

    def _order(self, side: Side, otype: OrderType, price: Decimal) -> None:
        inst = self.instrument
        if inst is None:
            return
        if self.account is None:
            self._problem("no account yet: nothing sent")
            return
        band = self._band_error(price)
        if band:
            self._problem(band)
            return
        q = self.quote
        bid = q.bid if q is not None else None
        ask = q.ask if q is not None else None
        shown = fmt.price(price, inst)
        if otype is OrderType.LIMIT:
            if side is Side.BUY and ask is not None and price >= ask:
                self._problem(f"a buy limit at {shown} is at or above the ask {fmt.price(ask, inst)} and would fill "
                              "at once: use a buy stop there, or join the ask; nothing sent")  # fmt: skip
                return
            if side is Side.SELL and bid is not None and price <= bid:
                self._problem(f"a sell limit at {shown} is at or below the bid {fmt.price(bid, inst)} and would fill "
                              "at once: use a sell stop there, or join the bid; nothing sent")  # fmt: skip
                return
        else:
            if side is Side.BUY and ask is not None and price <= ask:
                self._problem(f"a buy stop at {shown} must be above the ask {fmt.price(ask, inst)}; nothing sent")
                return
            if side is Side.SELL and bid is not None and price >= bid:
                self._problem(f"a sell stop at {shown} must be below the bid {fmt.price(bid, inst)}; nothing sent")
                return
        try:
            request = OrderRequest(
                account=self.account,
                symbol=inst.symbol,
                side=side,
                quantity=self.quantity,
                order_type=otype,
                limit_price=price if otype is OrderType.LIMIT else None,
                stop_price=price if otype is OrderType.STOP else None,
                source=OrderSource.DOM,
            )
        except Exception as exc:  # a model error (bad quantity...) is the user's to see
            self._problem(f"{exc}; nothing sent")
            return
        self.post_message(self.PlaceOrder(request))

    def action_limit(self, side: str) -> None:
        self._order(Side(side), OrderType.LIMIT, self.cursor_price())

    def action_stop(self, side: str) -> None:
        self._order(Side(side), OrderType.STOP, self.cursor_price())

    def action_join(self, side: str) -> None:
        """Join the bid (a buy limit there) or the ask (a sell limit there)."""
        q = self.quote
        want = Side(side)
        touch = None
        if q is not None:
            touch = q.bid if want is Side.BUY else q.ask
        if touch is None:
            self._problem(f"no {'bid' if want is Side.BUY else 'ask'} to join yet; nothing sent")
            return
        self.cursor = self.index(touch)
        self._order(want, OrderType.LIMIT, touch)

    def action_cancel_row(self) -> None:
        here = self.orders_at(self.cursor)
        inst = self.instrument
        if not here:
            self._problem(f"no working orders at {fmt.price(self.cursor_price(), inst)}")
            return
        self.post_message(self.CancelRow(tuple(here), f"at {fmt.price(self.cursor_price(), inst)}"))

    def action_move(self) -> None:
        """First press on a row with an order picks it up; the next press at another row moves it."""
        inst = self.instrument
        if self.moving is None:
            here = [o for o in self.orders_at(self.cursor)
                    if o.order_type in (OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT)]  # fmt: skip
            if not here:
                self._problem(f"no limit or stop order at {fmt.price(self.cursor_price(), inst)} to move")
                return
            if len(here) > 1:
                # Several at one price: the newest is picked (the one just placed, usually).
                here.sort(key=lambda o: (o.created_at, o.order_id))
            self.moving = here[-1]
            self._repaint_all()
            return
        order, self.moving = self.moving, None
        self._repaint_all()
        target = self.cursor_price()
        if order_price(order) == target:
            return
        band = self._band_error(target)
        if band:
            self._problem(band)
            return
        self.post_message(self.Move(order, target))

    def action_position(self, verb: str) -> None:
        if self.instrument is not None:
            self.post_message(self.PositionVerb(verb, self.instrument.symbol))

    def action_quantity(self, slot: int) -> None:
        self.post_message(self.QuantityKey(slot))

    def action_quantity_step(self, step: int) -> None:
        self.post_message(self.QuantityKey(None, step))

    def set_quantity(self, quantity: int) -> None:
        if quantity != self.quantity:
            self.quantity = quantity
            self._refresh_header()


__all__ = ["COLUMNS", "DomLadder", "RowCells", "order_price"]

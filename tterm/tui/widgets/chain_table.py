"""The option chain grid: calls left, strike in the middle, puts right, one row per strike.

A line-API widget like the watchlist: each row's cells are formatted when its quotes change
(:meth:`ChainTable.update_quote`) and its ``Strip`` is cached by row version; a live quote
refreshes that one row. Columns drop from the outside in as the screen narrows (bid, ask and the
strike always stay). In-the-money options are shaded; legs of the ticket are marked ``+1``/``-2``
beside their price. Greeks the broker did not send and tterm computed (Black-Scholes from the mid
and the implied volatility) are labelled "computed" in the header.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from tterm.core.models import ChainRow, OptionChain, OptionQuote, OptionRight, Quote
from tterm.tui import format as fmt
from tterm.tui.keymap import bindings


@dataclass(frozen=True, slots=True)
class ChainColumn:
    key: str
    title: str
    width: int
    priority: int  # lower stays longer


#: One side's columns, from the strike outwards (the puts mirror the calls).
SIDE_COLUMNS: tuple[ChainColumn, ...] = (
    ChainColumn("bid", "Bid", 8, 0),
    ChainColumn("ask", "Ask", 8, 0),
    ChainColumn("last", "Last", 8, 3),
    ChainColumn("delta", "Δ", 6, 1),
    ChainColumn("iv", "IV", 6, 2),
    ChainColumn("volume", "Vol", 7, 4),
    ChainColumn("oi", "OI", 7, 5),
    ChainColumn("gamma", "Γ", 6, 6),
    ChainColumn("theta", "Θ", 6, 7),
    ChainColumn("vega", "Vega", 6, 8),
)
STRIKE_WIDTH = 10
LEG_WIDTH = 3  # "+1 " marker beside each side


@dataclass(slots=True, eq=False)
class _Row:
    strike: Decimal
    call: OptionQuote | None
    put: OptionQuote | None
    cells: dict[str, str] = field(default_factory=dict)
    version: int = 0


def _greek(value: float | None, places: int = 2) -> str:
    return fmt.DASH if value is None else f"{value:.{places}f}"


class ChainTable(Widget, can_focus=True):
    """One expiry of an option chain; keys: see ``tterm.tui.keymap`` scope ``chain``."""

    BINDINGS = bindings("chain")

    COMPONENT_CLASSES = {
        "chain-table--header",
        "chain-table--title",
        "chain-table--strike",
        "chain-table--atm",
        "chain-table--itm",
        "chain-table--cursor",
        "chain-table--bid",
        "chain-table--ask",
        "chain-table--buy",
        "chain-table--sell",
        "chain-table--message",
    }

    DEFAULT_CSS = """
    ChainTable { background: $surface; color: $foreground; height: 1fr; }
    ChainTable > .chain-table--title { color: $text-primary; text-style: bold; background: $panel; }
    ChainTable > .chain-table--header { color: $grid-header; text-style: bold; }
    ChainTable > .chain-table--strike { text-style: bold; }
    ChainTable > .chain-table--atm { text-style: bold reverse; }
    ChainTable > .chain-table--itm { background: $panel; }
    ChainTable > .chain-table--cursor { background: $grid-cursor-bg; text-style: bold; }
    ChainTable > .chain-table--bid { color: $bid; }
    ChainTable > .chain-table--ask { color: $ask; }
    ChainTable > .chain-table--buy { color: $pnl-up; text-style: bold; }
    ChainTable > .chain-table--sell { color: $pnl-down; text-style: bold; }
    ChainTable > .chain-table--message { color: $text-warning; }
    """

    class Moved(Message):
        """The cursor moved (the screen shows the option under it)."""

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.chain: OptionChain | None = None
        self.rows: list[_Row] = []
        self.cursor = 0
        self.right = OptionRight.CALL
        self.spot: Decimal | None = None
        self.message = ""
        self.legs: dict[str, int] = {}  # option symbol -> signed ratio in the ticket
        self._by_symbol: dict[str, tuple[_Row, OptionRight]] = {}
        self._layout: tuple[ChainColumn, ...] = ()
        self._strips: dict[tuple[int, int, int, int], Strip] = {}
        self._styles: dict[str, Style] = {}
        self._layout_version = 0
        self.scroll_top = 0

    # ------------------------------------------------------------------ data in

    def show(self, chain: OptionChain, strikes: int) -> None:
        """Show ``chain``'s ``strikes`` strikes either side of the money; the cursor starts at the money."""
        keep = self.current_strike
        self.chain = chain
        self.spot = chain.underlying_price
        rows = list(chain.rows)
        atm = self._atm_index(rows)
        lo, hi = max(0, atm - strikes), min(len(rows), atm + strikes + 1)
        self.rows = [_Row(r.strike, r.call, r.put) for r in rows[lo:hi]]
        self._by_symbol = {}
        for row in self.rows:
            for q, right in ((row.call, OptionRight.CALL), (row.put, OptionRight.PUT)):
                if q is not None:
                    self._by_symbol[q.symbol] = (row, right)
            self._format(row)
        index = next((i for i, r in enumerate(self.rows) if r.strike == keep), None)
        self.cursor = index if index is not None else max(0, min(len(self.rows) - 1, atm - lo))
        self.message = ""
        self._strips.clear()
        self._fit()
        self._scroll_to_cursor(center=True)
        self.refresh()

    def say(self, message: str) -> None:
        self.message = message
        self.refresh(Region(0, 0, self.size.width, 1))

    def _atm_index(self, rows: list[ChainRow]) -> int:
        if not rows:
            return 0
        spot = self.spot if self.spot is not None else rows[len(rows) // 2].strike
        return min(range(len(rows)), key=lambda i: abs(rows[i].strike - spot))

    @property
    def symbols(self) -> list[str]:
        """Every option shown (the screen streams their quotes)."""
        return list(self._by_symbol)

    def update_quote(self, quote: Quote) -> bool:
        """A live quote of a shown option (or the underlying); True when something changed."""
        chain = self.chain
        if chain is not None and quote.symbol == chain.underlying:
            spot = quote.mid if quote.mid is not None else quote.last
            if spot is not None and spot != self.spot:
                self.spot = spot
                for row in self.rows:
                    row.version += 1
                self.refresh()
                return True
            return False
        hit = self._by_symbol.get(quote.symbol)
        if hit is None:
            return False
        row, right = hit
        old = row.call if right is OptionRight.CALL else row.put
        assert old is not None
        new = OptionQuote(
            instrument=old.instrument,
            bid=quote.bid,
            ask=quote.ask,
            last=quote.last if quote.last is not None else old.last,
            bid_size=quote.bid_size,
            ask_size=quote.ask_size,
            volume=max(old.volume, quote.volume),
            open_interest=old.open_interest,
            iv=old.iv,
            greeks=old.greeks,
            ts=quote.ts,
        )
        if (new.bid, new.ask, new.last, new.volume) == (old.bid, old.ask, old.last, old.volume):
            return False
        if right is OptionRight.CALL:
            row.call = new
        else:
            row.put = new
        self._format(row)
        self._refresh_row(self.rows.index(row))
        return True

    def set_legs(self, legs: Mapping[str, int]) -> None:
        """Mark the ticket's legs (option symbol -> signed ratio)."""
        changed = {s for s in set(legs) | set(self.legs) if legs.get(s) != self.legs.get(s)}
        self.legs = dict(legs)
        for sym in changed:
            hit = self._by_symbol.get(sym)
            if hit is not None:
                hit[0].version += 1
                self._refresh_row(self.rows.index(hit[0]))

    def quote_at(self, index: int | None = None, right: OptionRight | None = None) -> OptionQuote | None:
        if not self.rows:
            return None
        row = self.rows[self.cursor if index is None else index]
        return row.call if (right or self.right) is OptionRight.CALL else row.put

    def quote_of(self, symbol: str) -> OptionQuote | None:
        hit = self._by_symbol.get(symbol)
        if hit is None:
            return None
        row, right = hit
        return row.call if right is OptionRight.CALL else row.put

    @property
    def current_strike(self) -> Decimal | None:
        return self.rows[self.cursor].strike if self.rows and self.cursor < len(self.rows) else None

    def _format(self, row: _Row) -> None:
        cells: dict[str, str] = {}
        for prefix, q in (("c", row.call), ("p", row.put)):
            inst = q.instrument if q is not None else None
            g = q.greeks if q is not None else None
            cells[f"{prefix}bid"] = fmt.price(q.bid if q else None, inst)
            cells[f"{prefix}ask"] = fmt.price(q.ask if q else None, inst)
            cells[f"{prefix}last"] = fmt.price(q.last if q else None, inst)
            cells[f"{prefix}volume"] = fmt.volume(q.volume) if q else fmt.DASH
            cells[f"{prefix}oi"] = fmt.volume(q.open_interest) if q else fmt.DASH
            cells[f"{prefix}iv"] = f"{q.iv * 100:.1f}%" if q is not None and q.iv is not None else fmt.DASH
            cells[f"{prefix}delta"] = _greek(g.delta if g else None)
            cells[f"{prefix}gamma"] = _greek(g.gamma if g else None, 3)
            cells[f"{prefix}theta"] = _greek(g.theta if g else None)
            cells[f"{prefix}vega"] = _greek(g.vega if g else None)
        cells["strike"] = f"{row.strike.normalize():f}"
        row.cells = cells
        row.version += 1

    # ------------------------------------------------------------------ layout

    def on_resize(self) -> None:
        self._fit()
        self._scroll_to_cursor(center=True)
        self.refresh()

    def _fit(self) -> None:
        """The columns that fit, dropping the least needed first (both sides alike)."""
        side = (self.size.width - STRIKE_WIDTH - 2 * LEG_WIDTH) // 2
        cols = list(SIDE_COLUMNS)
        while cols and sum(c.width + 1 for c in cols) > side:
            drop = max((c for c in cols if c.priority > 0), key=lambda c: c.priority, default=None)
            if drop is None:
                break
            cols.remove(drop)
        layout = tuple(cols)
        if layout != self._layout:
            self._layout = layout
            self._layout_version += 1
            self._strips.clear()

    @property
    def visible_columns(self) -> tuple[str, ...]:
        return tuple(c.key for c in self._layout)

    def _body_height(self) -> int:
        return max(1, self.size.height - 2)

    def _scroll_to_cursor(self, *, center: bool = False) -> None:
        h = self._body_height()
        if center:
            self.scroll_top = max(0, min(self.cursor - h // 2, len(self.rows) - h))
        elif self.cursor < self.scroll_top:
            self.scroll_top = self.cursor
        elif self.cursor >= self.scroll_top + h:
            self.scroll_top = self.cursor - h + 1

    def _refresh_row(self, i: int) -> None:
        y = i - self.scroll_top + 2
        if 2 <= y < self.size.height:
            self.refresh(Region(0, y, self.size.width, 1))

    # ------------------------------------------------------------------ keys

    def action_move(self, dx: int, dy: int) -> None:
        if not self.rows:
            return
        old = self.cursor
        self.cursor = max(0, min(len(self.rows) - 1, self.cursor + dy))
        top = self.scroll_top
        self._scroll_to_cursor()
        if top != self.scroll_top:
            self.refresh()
        else:
            self._refresh_row(old)
            self._refresh_row(self.cursor)
        self.post_message(self.Moved())

    def action_side(self, right: str) -> None:
        self.right = OptionRight(right)
        self._refresh_row(self.cursor)
        self.post_message(self.Moved())

    # ------------------------------------------------------------------ rendering

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._strips.clear()

    def _style(self, *names: str) -> Style:
        key = "|".join(names)
        style = self._styles.get(key)
        if style is None:
            style = self.rich_style
            for n in names:
                style = style + self.get_component_rich_style(f"chain-table--{n}", partial=True)
            self._styles[key] = style
        return style

    def _title(self) -> str:
        chain = self.chain
        if chain is None:
            return " " + (self.message or "loading the chain…")
        expiries = chain.expiries
        at = expiries.index(chain.expiry) + 1 if chain.expiry in expiries else 0
        days = (chain.expiry - chain.ts.date()).days
        computed = any(
            q is not None and q.greeks is not None and q.greeks.source == "computed"
            for r in self.rows
            for q in (r.call, r.put)
        )
        greeks = "Greeks computed (Black-Scholes)" if computed else f"Greeks from {chain.broker or 'the broker'}"
        parts = [f" {chain.underlying} {fmt.price(self.spot)}", f"expiry {chain.expiry:%a %d %b %Y} ({days}d)",
                 f"[{at}/{len(expiries)}]", greeks]  # fmt: skip
        if self.message:
            parts.append(self.message)
        return "  ".join(parts)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            return Strip([Segment(fmt.fit(self._title(), width), self._style("title"))], width)
        if y == 1:
            return self._header(width)
        i = self.scroll_top + y - 2
        if i >= len(self.rows):
            return Strip.blank(width, self.rich_style)
        row = self.rows[i]
        cursor = (1 if self.right is OptionRight.CALL else 2) if i == self.cursor else 0
        atm = self._atm_row()
        key = (id(row), row.version, cursor * 2 + (i == atm), self._layout_version)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._render_row(row, cursor, i == atm, width)
            if len(self._strips) > 2048:
                self._strips.clear()
            self._strips[key] = strip
        return strip

    def _atm_row(self) -> int:
        if not self.rows or self.spot is None:
            return -1
        return min(range(len(self.rows)), key=lambda i: abs(self.rows[i].strike - self.spot))  # type: ignore[operator]

    def _header(self, width: int) -> Strip:
        calls = [fmt.fit(c.title, c.width, "right") for c in reversed(self._layout)]
        puts = [fmt.fit(c.title, c.width, "right") for c in self._layout]
        text = (" " * LEG_WIDTH + " ".join(calls) + " " + fmt.fit("CALL│PUT", STRIKE_WIDTH, "center") + " "
                + " ".join(puts))  # fmt: skip
        return Strip([Segment(fmt.fit(text, width), self._style("header"))], width)

    def _render_row(self, row: _Row, cursor: int, atm: bool, width: int) -> Strip:
        spot = self.spot
        segs: list[Segment] = []
        for prefix, q, cols in (("c", row.call, tuple(reversed(self._layout))), ("p", row.put, self._layout)):
            itm = spot is not None and (row.strike < spot if prefix == "c" else row.strike > spot)
            here = cursor == (1 if prefix == "c" else 2)
            base = ["itm"] if itm else []
            if here:
                base = ["cursor"]
            leg = self.legs.get(q.symbol, 0) if q is not None else 0
            mark = fmt.fit(f"{leg:+d}" if leg else "", LEG_WIDTH - 1, "right") + " "
            mark_seg = Segment(mark, self._style(*base, "buy" if leg > 0 else "sell") if leg else self._style(*base))
            if prefix == "c":
                segs.append(mark_seg)
            for n, col in enumerate(cols):
                text = fmt.fit(row.cells.get(prefix + col.key, ""), col.width, "right")
                names = list(base)
                if col.key in ("bid", "ask"):
                    names.append(col.key)
                sep = " " if (prefix == "c" or n) else ""
                segs.append(Segment(text + (sep if prefix == "c" else ""), self._style(*names)))
                if prefix == "p" and n + 1 < len(cols):
                    segs.append(Segment(" ", self._style(*base)))
            if prefix == "c":
                strike = fmt.fit(row.cells.get("strike", ""), STRIKE_WIDTH, "center")
                segs.append(Segment(strike, self._style("atm" if atm else "strike")))
                segs.append(Segment(" ", self.rich_style))
            else:
                segs.append(Segment(" ", self._style(*base)))
                segs.append(mark_seg)
        return Strip(segs).extend_cell_length(width, self.rich_style).crop(0, width)

    # ------------------------------------------------------------------ for tests

    def text_lines(self) -> list[str]:
        return ["".join(s.text for s in self.render_line(y)) for y in range(self.size.height)]


__all__ = ["SIDE_COLUMNS", "ChainTable"]

"""Time and sales: every print, newest on top, with its aggressor side; large prints stand out.

A line-API widget: each print is formatted once when it arrives (:meth:`PrintList.add`) and its
rendered ``Strip`` is cached; :meth:`render_line` only looks the strip up. The side is the
aggressor the feed names (BUY lifted the offer, SELL hit the bid); when the feed does not say, the
tick rule stands in (an uptick reads as buying, a downtick as selling, shown in lower case) so the
colour still means something. Scrolling up pauses the tape: new prints then pile up above the view
instead of moving it, and ``end`` goes back to the newest.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, tzinfo
from decimal import Decimal

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from tterm.core.models import Instrument, Side, Trade
from tterm.tui import format as fmt
from tterm.tui.keymap import bindings

KEEP = 5000
"""Prints kept (scrolling back further than this shows the oldest kept)."""


@dataclass(frozen=True, slots=True)
class PrintRow:
    """One formatted print: cells, colour (+1 buy, -1 sell, 0 unknown) and whether it is large."""

    text: str
    tone: int
    size: int
    large: bool


class PrintList(Widget, can_focus=True):
    """The tape of one symbol; keys: see ``tterm.tui.keymap`` scope ``tape``."""

    BINDINGS = bindings("tape")

    COMPONENT_CLASSES = {"tape--header", "tape--buy", "tape--sell", "tape--large", "tape--summary", "tape--message"}

    DEFAULT_CSS = """
    PrintList { background: $surface; color: $foreground; height: 1fr; }
    PrintList > .tape--header { color: $grid-header; text-style: bold; background: $panel; }
    PrintList > .tape--summary { color: $text-primary; background: $panel; }
    PrintList > .tape--buy { color: $pnl-up; }
    PrintList > .tape--sell { color: $pnl-down; }
    PrintList > .tape--large { background: $accent 40%; text-style: bold; }
    PrintList > .tape--message { color: $text-warning; }
    """

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.instrument: Instrument | None = None
        self.large = 1
        self.tz: tzinfo = UTC
        self.rows: deque[PrintRow] = deque(maxlen=KEEP)
        self.back = 0  # rows scrolled back from the newest (0: live)
        self.message = ""
        self.volume = 0
        self.buy_volume = 0
        self.sell_volume = 0
        self.prints = 0
        self.large_prints = 0
        self._last_price: Decimal | None = None
        self._last_tone = 0
        self._strips: dict[tuple[int, int], Strip] = {}
        self._styles: dict[str, Style] = {}

    # ------------------------------------------------------------------ data in

    def setup(self, instrument: Instrument, large: int, tz: tzinfo) -> None:
        self.instrument, self.large, self.tz = instrument, max(1, large), tz
        self.refresh()

    def say(self, message: str) -> None:
        self.message = message
        self.refresh()

    def add(self, trades: Iterable[Trade]) -> int:
        """Add prints (oldest first); returns how many. Formats each once."""
        inst = self.instrument
        n = 0
        for t in trades:
            if t.aggressor is Side.BUY:
                tone, side = 1, "BUY"
            elif t.aggressor is Side.SELL:
                tone, side = -1, "SELL"
            else:  # the tick rule, marked by lower case: an estimate, not the feed's word
                last = self._last_price
                tone = self._last_tone if last is None or t.price == last else (1 if t.price > last else -1)
                side = {1: "buy?", -1: "sell?", 0: "—"}[tone]
            self._last_price, self._last_tone = t.price, tone
            large = t.size >= self.large
            when = t.ts.astimezone(self.tz)
            stamp = when.strftime("%H:%M:%S.") + f"{when.microsecond // 1000:03d}"
            mark = "◆" if large else " "
            text = f"{mark}{stamp}  {fmt.price(t.price, inst):>12}  {fmt.size(t.size):>8}  {side:<5}"
            self.rows.append(PrintRow(text, tone, t.size, large))
            self.prints += 1
            self.volume += t.size
            if tone > 0:
                self.buy_volume += t.size
            elif tone < 0:
                self.sell_volume += t.size
            if large:
                self.large_prints += 1
            n += 1
        if n:
            if self.back:
                self.back = min(len(self.rows) - 1, self.back + n)  # a paused view stays put
            self.refresh()
        return n

    def set_large(self, large: int) -> None:
        """A new large-print size: prints already shown are marked again."""
        self.large = max(1, large)
        marked = (PrintRow(("◆" if r.size >= self.large else " ") + r.text[1:], r.tone, r.size, r.size >= self.large)
                  for r in self.rows)  # fmt: skip
        self.rows = deque(marked, maxlen=KEEP)
        self.large_prints = sum(1 for r in self.rows if r.large)
        self._strips.clear()
        self.refresh()

    # ------------------------------------------------------------------ keys

    def action_scroll_prints(self, delta: int) -> None:
        self.back = max(0, min(max(0, len(self.rows) - 1), self.back - delta))
        self.refresh()

    def action_follow(self) -> None:
        self.back = 0
        self.refresh()

    def action_threshold(self, factor: float) -> None:
        self.set_large(max(1, int(self.large * factor)))

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
                style = style + self.get_component_rich_style(f"tape--{n}", partial=True)
            self._styles[key] = style
        return style

    def summary(self) -> str:
        total = self.buy_volume + self.sell_volume
        share = f"buy {self.buy_volume * 100 // total}% sell {self.sell_volume * 100 // total}%" if total else ""
        state = "LIVE" if self.back == 0 else f"PAUSED +{self.back} (end: live)"
        sym = self.instrument.symbol if self.instrument is not None else ""
        parts = [f" {sym}", f"{self.prints:,} prints", f"vol {fmt.volume(self.volume)}", share,
                 f"large ≥{self.large:,}: {self.large_prints:,}", state, self.message]  # fmt: skip
        return "  ".join(p for p in parts if p)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            return Strip([Segment(fmt.fit(self.summary(), width), self._style("summary"))], width)
        if y == 1:
            head = f" {'Time':<12}  {'Price':>12}  {'Size':>8}  {'Side':<5}"
            return Strip([Segment(fmt.fit(head, width), self._style("header"))], width)
        i = y - 2 + self.back  # 0: the newest
        if i >= len(self.rows):
            if not self.rows and y == 2:
                return Strip([Segment(fmt.fit(" waiting for prints…", width), self._style("message"))], width)
            return Strip.blank(width, self.rich_style)
        row = self.rows[len(self.rows) - 1 - i]
        key = (id(row), width)
        strip = self._strips.get(key)
        if strip is None:
            names = ["buy"] if row.tone > 0 else ["sell"] if row.tone < 0 else []
            if row.large:
                names.append("large")
            style = self._style(*names) if names else self.rich_style
            strip = Strip([Segment(fmt.fit(row.text, width), style)], width)
            if len(self._strips) > 4 * KEEP:
                self._strips.clear()
            self._strips[key] = strip
        return strip

    def text_lines(self) -> list[str]:
        """The newest prints as plain text (tests)."""
        return [r.text for r in reversed(self.rows)]


__all__ = ["PrintList", "PrintRow"]

"""The equity curve: cumulative P&L drawn as a braille line (2x4 dots per cell), zero dotted.

Plain line-API-free rendering: the curve is recomputed only when its points or the widget's size
change (a P&L history is read once per refresh, not streamed), so a Static with a cached Text is
enough. Above zero the line takes the theme's profit colour, below it the loss colour.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from rich.text import Text
from textual.widget import Widget

_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # braille bit per (row, column)


def plot(values: Sequence[Decimal], width: int, height: int) -> tuple[list[list[int]], list[list[int]], int]:
    """Braille cells for ``values`` over ``width`` x ``height`` cells: (bits, sign per cell, zero row).

    Each dot column takes the value at its place along the curve; consecutive dots are joined
    vertically so steep moves stay a line. The sign grid says whether a cell's dots are at or
    above zero (1) or below (-1); the zero row is the cell row the zero line falls in.
    """
    cols, rows = max(1, width * 2), max(1, height * 4)
    bits = [[0] * width for _ in range(height)]
    signs = [[0] * width for _ in range(height)]
    if not values or width <= 0 or height <= 0:
        return bits, signs, 0
    lo = min(min(values), Decimal(0))
    hi = max(max(values), Decimal(0))
    span = hi - lo or Decimal(1)

    def y_of(v: Decimal) -> int:
        return rows - 1 - int((v - lo) / span * (rows - 1))

    zero_y = y_of(Decimal(0))
    n = len(values)
    prev: int | None = None
    for x in range(cols):
        index = x * n // cols if n >= cols else round(x * (n - 1) / max(1, cols - 1))
        y = y_of(values[min(n - 1, index)])
        lo_y, hi_y = (y, y) if prev is None else (min(prev, y), max(prev, y))
        for yy in range(lo_y, hi_y + 1):
            cell_r, dot_r = divmod(yy, 4)
            cell_c, dot_c = divmod(x, 2)
            bits[cell_r][cell_c] |= _DOTS[dot_r][dot_c]
            signs[cell_r][cell_c] = 1 if yy <= zero_y else -1
        prev = y
    return bits, signs, zero_y // 4  # zero is always on the chart (the range includes it)


class EquityCurve(Widget):
    """Cumulative P&L over the report's fills; ``points`` set from the P&L screen."""

    DEFAULT_CSS = """
    EquityCurve { height: 10; min-height: 4; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.values: list[Decimal] = []

    def show(self, values: Sequence[Decimal]) -> None:
        self.values = list(values)
        self.refresh()

    def render(self) -> Text:
        width, height = self.size.width, self.size.height
        if not self.values:
            return Text("no fills in this window", style="dim")
        lo, hi = min(min(self.values), Decimal(0)), max(max(self.values), Decimal(0))
        fmt = ",.0f" if hi - lo >= 1000 else ",.2f"  # cents while the swings are small
        label_w = max(len(f"{v:{fmt}}") for v in (lo, hi)) + 1
        bits, signs, zero_row = plot(self.values, max(1, width - label_w), height)
        variables = self.app.theme_variables if hasattr(self.app, "theme_variables") else {}
        up = variables.get("text-success", "green")
        down = variables.get("text-error", "red")
        out = Text(no_wrap=True, overflow="crop")
        for r in range(height):
            label = f"{hi:{fmt}}" if r == 0 else f"{lo:{fmt}}" if r == height - 1 else "0" if r == zero_row else ""
            out.append(label.rjust(label_w - 1) + " ", style="dim")
            for c, b in enumerate(bits[r]):
                if b:
                    out.append(chr(0x2800 + b), style=up if signs[r][c] >= 0 else down)
                elif r == zero_row:
                    out.append("┈", style="dim")
                else:
                    out.append(" ")
            if r < height - 1:
                out.append("\n")
        return out

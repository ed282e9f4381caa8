"""Partial screen updates that write only the dirty cells of a line, not the line up to them.

Textual 8.2.8 (pinned in pyproject.toml) turns a partial refresh into spans ``(y, x1, x2)`` and
writes each one with ``ChopsUpdate.render_segments``, which crops a widget's line at ``x2`` only:
every update starts at the widget's left edge (its ``__rich_console__`` twin carries the comment
"TODO: crop to x extents"). The watchlist refreshes only the cells a quote changed, so under a
firehose that cost every changed row its symbol and every cell left of the change again
(bench_tui at 200x50: every write began at column 1). :func:`install` replaces the method with
one that crops both ends; the bytes on the wire are the same cells with their styles, as
``Strip.crop`` splits segments by cell position.

Installed once, from the watchlist's module; a Textual upgrade must re-check ``ChopsUpdate``.
"""

from __future__ import annotations

from rich.console import Console
from rich.control import Control
from textual._compositor import ChopsUpdate

_installed = False


def _render_segments(self: ChopsUpdate, console: Console) -> str:
    """``ChopsUpdate.render_segments``, cropping each chop to the span on the left too."""
    sequences: list[str] = []
    append = sequences.append
    move_to = Control.move_to
    chops = self.chops
    chop_ends = self.chop_ends
    last_y = self.spans[-1][0]
    for y, x1, x2 in self.spans:
        line = chops[y]
        ends = chop_ends[y]
        for end, (x, strip) in zip(ends, line.items(), strict=False):
            if strip is None or x >= x2 or end <= x1:
                continue  # (Textual's own test is x > x2: a chop starting at the span's end was written empty)
            if x2 > x >= x1 and end <= x2:
                append(move_to(x, y).segment.text)
                append(strip.render(console))
                continue
            start = max(x, x1)
            append(move_to(start, y).segment.text)
            append(strip.crop(start - x, min(end, x2) - x).render(console))
        if y != last_y:
            append("\n")
    return "".join(sequences)


def install() -> None:
    """Use the cropping version from now on (idempotent)."""
    global _installed
    if not _installed:
        ChopsUpdate.render_segments = _render_segments  # type: ignore[method-assign]
        _installed = True

"""Partial updates write the dirty cells of a line only (tterm.tui.partial_update)."""

from __future__ import annotations

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from textual._compositor import ChopsUpdate
from textual.strip import Strip

from tterm.tui import partial_update

CONSOLE = Console(color_system="truecolor", force_terminal=True, width=40)
RED = Style(color="#ff0000", bgcolor="#000000")
BLUE = Style(color="#0000ff", bgcolor="#000000")


def render(spans: list[tuple[int, int, int]]) -> str:
    partial_update.install()
    line = {0: Strip([Segment("abcde", RED), Segment("fghij", BLUE)]), 10: Strip([Segment("klmno", RED)])}
    update = ChopsUpdate([line], spans, [[10, 15]])
    return update.render_segments(CONSOLE)


def test_a_span_inside_a_chop_writes_from_its_first_cell() -> None:
    out = render([(0, 3, 7)])
    assert out.startswith("\x1b[1;4H")  # row 1, column 4 (x = 3)
    assert "de" in out and "fg" in out
    assert "abc" not in out and "hij" not in out and "klm" not in out


def test_a_chop_that_starts_where_the_span_ends_writes_nothing() -> None:
    out = render([(0, 0, 10)])
    assert "abcde" in out and "fghij" in out
    assert "klmno" not in out and "\x1b[1;11H" not in out


def test_a_whole_chop_inside_the_span_is_written_as_it_is() -> None:
    out = render([(0, 0, 15)])
    assert out.count("\x1b[1;") == 2 and "klmno" in out

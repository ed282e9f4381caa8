"""Every shipped theme is readable at truecolor, 256 and 16 colours and under NO_COLOR: bid and ask
are distinct, up and down are distinct, price text has contrast on its background, and the
selected row keeps the price colours (and is still visibly selected)."""

from __future__ import annotations

import pytest
from rich.color import Color as RichColor
from rich.color import ColorSystem
from rich.style import Style
from textual.color import Color

from tests.tui.conftest import make_app, wait_for

THEMES = ("tterm-amber", "tterm-light", "tterm-cb")
DEPTHS = ("truecolor", "256", "16", "mono")
SYSTEMS = {"truecolor": ColorSystem.TRUECOLOR, "256": ColorSystem.EIGHT_BIT, "16": ColorSystem.STANDARD}
MIN_CONTRAST = 3.0
"""WCAG's minimum for large or bold text; price cells are short and drawn on a plain background."""

RGB = tuple[int, int, int]


def shown(color: RichColor, depth: str) -> RGB:
    """The colour a terminal of ``depth`` draws (NO_COLOR: Textual's monochrome of it)."""
    if depth == "mono":
        c = Color.from_rich_color(color).monochrome
        return (c.r, c.g, c.b)
    t = color.downgrade(SYSTEMS[depth]).get_truecolor()
    return (t.red, t.green, t.blue)


def luminance(rgb: RGB) -> float:
    def channel(v: int) -> float:
        x = v / 255
        return x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: RGB, b: RGB) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def cell(style: Style, base: Style, depth: str) -> tuple[RGB, RGB, Style]:
    """(text colour, background) as drawn, with reverse applied."""
    fg = style.color or base.color
    bg = style.bgcolor or base.bgcolor
    assert fg is not None and bg is not None
    if style.reverse:
        fg, bg = bg, fg
    return shown(fg, depth), shown(bg, depth), style


def cells(grid, row, cursor: int) -> dict[str, tuple[RGB, RGB, Style]]:
    """Each visible column's drawn colours for one watchlist row."""
    strip = grid._render_row(row, cursor, grid.size.width)
    base = grid._style("base")
    depth = grid.app.color_depth
    spans = grid._spans
    out: dict[str, tuple[RGB, RGB, Style]] = {}
    x = 0
    for seg in strip:
        start, end = x, x + len(seg.text)
        for key, (a, _end) in spans.items():
            if key not in out and start <= a + 1 < end and seg.text[a + 1 - start :].strip():
                out[key] = cell(seg.style or Style(), base, depth)
        x = end
    return out


@pytest.mark.parametrize("theme", THEMES)
async def test_every_theme_is_readable_at_every_colour_depth(engine, settings, theme: str) -> None:
    settings.general.theme = theme
    app = make_app(engine, settings)
    async with app.run_test(size=(140, 44)) as pilot:
        await wait_for(app.ready.is_set, pilot)
        assert app.theme == theme
        grid = app.grid
        rows = {r.listed: r for r in grid.rows}
        up, down = rows["MES1!"], rows["MNQ1!"]  # MES is up on the day, MNQ down
        problems: list[str] = []
        for depth in DEPTHS:
            app.set_color_depth(depth)
            await pilot.pause()
            plain_up, plain_down = cells(grid, up, 0), cells(grid, down, 0)
            for name, row, plain in (("up", up, plain_up), ("down", down, plain_down)):
                for cursor, label in ((0, "row"), (1, "selected row"), (2, "selected row, watchlist blurred")):
                    drawn = cells(grid, row, cursor)
                    for key in ("symbol", "last", "change", "bid", "ask"):
                        fg, bg, _ = drawn[key]
                        if contrast(fg, bg) < MIN_CONTRAST:
                            problems.append(f"{depth}: {name} {label}: {key} {fg} on {bg}: {contrast(fg, bg):.1f}")
                    if cursor:
                        sel_fg, sel_bg, sel_style = drawn["bid"]
                        if (sel_fg, sel_bg) == plain["bid"][:2] and not (sel_style.underline or sel_style.bold):
                            problems.append(f"{depth}: {label} not visible")
                    if cursor == 1:
                        # The selected row keeps the price colours: the bid colour is still there
                        # (as the text, or as the background when the row is drawn reversed).
                        for key in ("bid", "ask", "change"):
                            colour = plain[key][0]
                            fg, bg, _ = drawn[key]
                            if colour not in (fg, bg):
                                problems.append(f"{depth}: {name} selected row: {key} lost its colour {colour}")
            if depth != "mono":
                if plain_up["bid"][0] == plain_up["ask"][0]:
                    problems.append(f"{depth}: bid and ask are the same colour {plain_up['bid'][0]}")
                if plain_up["change"][0] == plain_down["change"][0]:
                    problems.append(f"{depth}: up and down are the same colour {plain_up['change'][0]}")
                if plain_up["bid"][0] == plain_up["symbol"][0]:
                    problems.append(f"{depth}: bid looks like plain text {plain_up['bid'][0]}")
            # The status bar's badge.
            badge = app.status._s("paper")
            fg, bg = shown(badge.color, depth), shown(badge.bgcolor, depth)
            if contrast(fg, bg) < MIN_CONTRAST:
                problems.append(f"{depth}: PAPER badge {fg} on {bg}")
        assert problems == [], "\n".join(problems)


async def test_the_terminal_reads_its_colour_depth(engine, settings) -> None:
    from tterm.tui.app import _color_depth

    assert [_color_depth(s, False) for s in ("truecolor", "256", "standard", "windows", None)] == [
        "truecolor", "256", "16", "16", "16",
    ]  # fmt: skip
    assert _color_depth("truecolor", True) == "mono"
    app = make_app(engine, settings)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(app.ready.is_set, pilot)
        app.set_color_depth("16")
        assert app.has_class("-low-color")
        app.set_color_depth("256")
        assert not app.has_class("-low-color")

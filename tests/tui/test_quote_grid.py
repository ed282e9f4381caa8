"""The line-API watchlist: fed 2,000 symbols, a frame redraws only the visible rows that changed."""

from __future__ import annotations

from decimal import Decimal

from textual.app import App, ComposeResult

from tests.tui.conftest import wait_for
from tterm.core.models import AssetClass, Instrument, Quote
from tterm.tui.bridge import Resolved
from tterm.tui.themes import ThemeVariablesMixin
from tterm.tui.widgets.quote_grid import FLASH_SECONDS, ROW_LOG, SLOW_INTERVAL, QuoteGrid

N = 2000


def names(n: int) -> list[str]:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = []
    for i in range(n):
        a, rest = divmod(i, 26 * 26 * 26)
        b, rest = divmod(rest, 26 * 26)
        c, d = divmod(rest, 26)
        out.append(letters[a] + letters[b] + letters[c] + letters[d])
    return out


def instrument(symbol: str) -> Instrument:
    return Instrument(symbol, AssetClass.EQUITY, Decimal("0.01"), Decimal("0.01"))


def quote(symbol: str, last: str) -> Quote:
    p = Decimal(last)
    return Quote(symbol, bid=p - Decimal("0.01"), ask=p + Decimal("0.01"), last=p, prev_close=Decimal(100),
                 bid_size=100, ask_size=200, volume=12_345)  # fmt: skip


class GridApp(ThemeVariablesMixin, App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.clock = 0.0

    def compose(self) -> ComposeResult:
        yield QuoteGrid(id="grid")


async def test_2000_symbols_only_changed_visible_rows_redraw() -> None:
    syms = names(N)
    app = GridApp()
    async with app.run_test(size=(100, 30)) as pilot:
        grid = app.query_one(QuoteGrid)
        grid.focus()
        grid.show_list("big", [Resolved(s, instrument(s)) for s in syms], {}, now=0.0)
        assert grid.apply_quotes({s: quote(s, "100.00") for s in syms}, now=1.0) == N
        await pilot.pause()
        visible = grid.size.height - 1  # one line is the header
        assert 0 < visible < 40
        assert len(set(grid.rendered_rows)) == visible  # every visible row drawn once, nothing else

        grid.refreshed_rows.clear()
        grid.rendered_rows.clear()
        changed = {syms[2]: "100.05", syms[5]: "99.90", syms[1500]: "101.00", syms[1999]: "98.00"}
        assert grid.apply_quotes({s: quote(s, p) for s, p in changed.items()}, now=10.0) == 4
        # Only the two visible rows asked for a repaint; rows 1500 and 1999 changed off-screen.
        assert sorted(grid.refreshed_rows) == [2, 5]
        await wait_for(lambda: sorted(set(grid.rendered_rows)) == [2, 5], pilot)
        await pilot.pause()
        assert sorted(set(grid.rendered_rows)) == [2, 5]
        assert grid.rows[2].flash == 1 and grid.rows[5].flash == -1

        # A quote that changes nothing on screen redraws nothing.
        grid.refreshed_rows.clear()
        grid.rendered_rows.clear()
        assert grid.apply_quotes({syms[2]: quote(syms[2], "100.05")}, now=10.1) == 0
        await pilot.pause()
        assert not grid.refreshed_rows and not grid.rendered_rows

        # The flashes end after FLASH_SECONDS and only their rows redraw.
        grid.expire_flashes(10.0 + FLASH_SECONDS / 2)
        assert not grid.refreshed_rows
        grid.expire_flashes(10.0 + FLASH_SECONDS)
        assert sorted(grid.refreshed_rows) == [2, 5]
        assert grid.rows[2].flash == 0

        # Scrolled away, the same quotes cost no redraw at all.
        grid.action_last()
        await pilot.pause()
        grid.refreshed_rows.clear()
        grid.rendered_rows.clear()
        grid.apply_quotes({syms[2]: quote(syms[2], "100.10")}, now=20.0)
        await pilot.pause()
        assert not grid.refreshed_rows and not grid.rendered_rows
        grid.apply_quotes({syms[1999]: quote(syms[1999], "97.00")}, now=20.0)
        assert list(grid.refreshed_rows) == [1999]


async def test_sizes_and_volume_reach_the_screen_at_most_every_slow_interval() -> None:
    def q(last: str, volume: int) -> Quote:
        p = Decimal(last)
        return Quote("AAA", bid=p - Decimal("0.01"), ask=p + Decimal("0.01"), last=p, prev_close=Decimal(100),
                     bid_size=100, ask_size=200, volume=volume)  # fmt: skip

    app = GridApp()
    async with app.run_test(size=(100, 10)) as pilot:
        grid = app.query_one(QuoteGrid)
        grid.flash_enabled = False
        grid.show_list("l", [Resolved("AAA", instrument("AAA"))], {}, now=0.0)
        await pilot.pause()
        grid.apply_quotes({"AAA": q("101.00", 1_000)}, now=1.0)  # first quote: the whole row
        await pilot.pause()
        row = grid.rows[0]
        grid.refreshed_rows.clear()
        # Only the volume moved, inside the interval: nothing is repainted yet...
        assert grid.apply_quotes({"AAA": q("101.00", 2_000)}, now=1.0 + SLOW_INTERVAL / 2) == 0
        assert not grid.refreshed_rows and row.slow_pending
        grid.expire_flashes(1.0 + SLOW_INTERVAL * 0.9)
        assert not grid.refreshed_rows
        # ...until its turn comes, and then the screen shows it.
        grid.expire_flashes(1.0 + SLOW_INTERVAL)
        assert list(grid.refreshed_rows) == [0] and not row.slow_pending
        await pilot.pause()
        assert "2.00K" in grid.render_line(1).text
        # A price change is drawn at once, its volume change waits again.
        grid.refreshed_rows.clear()
        assert grid.apply_quotes({"AAA": q("101.01", 3_000)}, now=1.0 + SLOW_INTERVAL * 1.5) == 1
        assert list(grid.refreshed_rows) == [0] and row.slow_pending


async def test_row_logs_stay_bounded_under_a_long_feed() -> None:
    syms = names(40)
    app = GridApp()
    async with app.run_test(size=(100, 30)) as pilot:
        grid = app.query_one(QuoteGrid)
        grid.show_list("l", [Resolved(s, instrument(s)) for s in syms], {}, now=0.0)
        await pilot.pause()
        for n in range(200):  # 200 frames of every symbol moving: thousands of row refreshes
            price = f"{100 + (n % 7) / 100:.2f}"
            grid.apply_quotes({s: quote(s, price) for s in syms}, now=float(n))
            if n % 50 == 0:
                await pilot.pause()
        assert len(grid.refreshed_rows) == ROW_LOG
        assert len(grid.rendered_rows) <= ROW_LOG


async def test_sort_keeps_the_cursor_on_its_symbol_and_resorts_at_most_once_a_second() -> None:
    syms = ["AAA", "BBB", "CCC"]
    app = GridApp()
    async with app.run_test(size=(100, 10)) as pilot:
        grid = app.query_one(QuoteGrid)
        grid.show_list("l", [Resolved(s, instrument(s)) for s in syms], {}, now=0.0)
        grid.apply_quotes({"AAA": quote("AAA", "1.00"), "BBB": quote("BBB", "2.00"), "CCC": quote("CCC", "3.00")}, 0.0)
        grid.cursor = 0
        grid.set_sort("last", descending=True)
        assert [r.listed for r in grid.rows] == ["CCC", "BBB", "AAA"]
        assert grid.cursor_symbol == "AAA"
        grid.apply_quotes({"AAA": quote("AAA", "9.00")}, now=0.5)
        assert [r.listed for r in grid.rows] == ["AAA", "CCC", "BBB"]
        grid.apply_quotes({"BBB": quote("BBB", "10.00")}, now=0.9)
        assert grid.rows[0].listed == "AAA"  # not yet: less than a second since the last re-sort
        grid.apply_quotes({"CCC": quote("CCC", "3.01")}, now=1.6)
        assert [r.listed for r in grid.rows] == ["BBB", "AAA", "CCC"]
        assert grid.cursor_symbol == "AAA"
        await pilot.press("O")
        assert grid.sort_descending is False
        assert [r.listed for r in grid.rows] == ["CCC", "AAA", "BBB"]


async def test_narrow_grid_drops_low_priority_columns() -> None:
    """Bid and ask stay with the symbol as the grid narrows (the 80x24 watchlist); the rest go first."""
    app = GridApp()
    async with app.run_test(size=(44, 10)) as pilot:
        grid = app.query_one(QuoteGrid)
        await pilot.pause()
        assert grid.visible_columns == ("symbol", "last", "bid", "ask")
    app = GridApp()
    async with app.run_test(size=(34, 10)) as pilot:
        grid = app.query_one(QuoteGrid)
        await pilot.pause()
        assert grid.visible_columns == ("symbol", "bid", "ask")


async def test_an_absent_side_shows_as_absent_not_as_a_stale_price() -> None:
    """A quote without a bid (the vendor had no data for it) shows a dash for the bid and its
    size, never a number."""
    app = GridApp()
    async with app.run_test(size=(100, 10)) as pilot:
        grid = app.query_one(QuoteGrid)
        grid.show_list("one", [Resolved("AAAA", instrument("AAAA"))], {}, now=0.0)
        grid.apply_quotes({"AAAA": quote("AAAA", "100.00")}, now=1.0)
        await pilot.pause()
        (row,) = grid.rows
        assert row.cells["bid"] == "99.99" and row.cells["bid_size"] == "100"
        one_sided = Quote("AAAA", bid=None, ask=Decimal("100.01"), last=Decimal("100.00"), ask_size=200)
        grid.apply_quotes({"AAAA": one_sided}, now=2.0)
        await pilot.pause()
        (row,) = grid.rows
        assert row.cells["bid"] == "—" and row.cells["bid_size"] == "—"
        assert row.cells["ask"] == "100.01" and row.cells["ask_size"] == "200"

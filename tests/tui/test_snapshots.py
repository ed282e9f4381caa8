"""Snapshots of the main screen under every shipped theme, at 80x24 and 160x48.

Deterministic: scripted paper market, frozen exchange clock and message times, UTC local time, no
cursor blink, notifications hidden. Regenerate with ``pytest tests/tui/test_snapshots.py
--snapshot-update`` on the pinned Textual version, and look at the SVGs before committing them.
"""

from __future__ import annotations

import pytest
from syrupy.extensions.image import SVGImageSnapshotExtension

from tests.tui.conftest import make_app, wait_for
from tterm.tui.app import WIDE_HEIGHT, WIDE_WIDTH
from tterm.tui.themes import load_themes, theme_dirs

THEMES = sorted(load_themes(theme_dirs()).themes)


def test_three_themes_ship() -> None:
    assert {"tterm-amber", "tterm-light", "tterm-cb"} <= set(THEMES)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
@pytest.mark.parametrize("theme", THEMES)
async def test_main_screen(engine, settings, snapshot, theme: str, size: tuple[int, int]) -> None:
    settings.general.theme = theme
    app = make_app(engine, settings)
    async with app.run_test(size=size) as pilot:
        await wait_for(app.ready.is_set, pilot)
        wide = size[0] >= WIDE_WIDTH and size[1] >= WIDE_HEIGHT
        await wait_for(lambda: app.wide == wide and not app.trade.layout_busy, pilot)
        await wait_for(lambda: all(r.quote is not None for r in app.grid.rows), pilot)
        # The ticket's pre-trade preview runs 150 ms after its last change: wait for its verdict.
        await wait_for(lambda: app.ticket.last_decision is not None, pilot)
        app._flush_tables(force=True)
        await pilot.pause()
        assert app.theme == theme
        assert app.export_screenshot() == snapshot(extension_class=SVGImageSnapshotExtension)


async def _settled(app, pilot, size: tuple[int, int]) -> None:
    await wait_for(app.ready.is_set, pilot)
    wide = size[0] >= WIDE_WIDTH and size[1] >= WIDE_HEIGHT
    await wait_for(lambda: app.wide == wide and not app.trade.layout_busy, pilot)
    await wait_for(lambda: all(r.quote is not None for r in app.grid.rows), pilot)
    await wait_for(lambda: app.ticket.last_decision is not None, pilot)


@pytest.mark.parametrize("size", [(200, 60)], ids=["200x60"])
async def test_main_screen_large(engine, settings, snapshot, size: tuple[int, int]) -> None:
    """A big terminal: the watchlist only as wide as its columns, the risk lines unbroken."""
    app = make_app(engine, settings)
    async with app.run_test(size=size) as pilot:
        await _settled(app, pilot, size)
        app._flush_tables(force=True)
        await pilot.pause()
        assert app.export_screenshot() == snapshot(extension_class=SVGImageSnapshotExtension)


@pytest.mark.parametrize("size", [(80, 24), (200, 60)], ids=["80x24", "200x60"])
async def test_dom_ladder(engine, settings, snapshot, size: tuple[int, int]) -> None:
    """The ladder with a working order, a position and its average price marked."""
    from decimal import Decimal

    from tterm.core.models import OrderRequest, OrderType, Side

    await engine.place(OrderRequest(account="paper:FUT50K", symbol="MES", side=Side.BUY, quantity=2))
    await engine.place(OrderRequest(account="paper:FUT50K", symbol="MES", side=Side.SELL, quantity=2,
                                    order_type=OrderType.LIMIT, limit_price=Decimal("5001.50")))  # fmt: skip
    app = make_app(engine, settings)
    async with app.run_test(size=size) as pilot:
        await _settled(app, pilot, size)
        await pilot.press("d")
        await wait_for(lambda: app.trade.dom is not None and app.trade.dom.depth is not None, pilot)
        dom = app.trade.dom
        await wait_for(lambda: dom.position is not None and dom.orders, pilot)
        app._flush_tables(force=True)
        await pilot.pause()
        assert app.export_screenshot() == snapshot(extension_class=SVGImageSnapshotExtension)

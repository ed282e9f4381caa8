"""Snapshots of the chart, tape and chain screens at 80x24 and 200x60 (scripted paper market,
frozen clock). Regenerate with ``--snapshot-update`` and look at the SVGs before committing them."""

from __future__ import annotations

import pytest
from syrupy.extensions.image import SVGImageSnapshotExtension

from tests.tui.conftest import make_app, push, wait_for
from tterm.tui.screens.chain import ChainScreen
from tterm.tui.screens.chart import ChartScreen
from tterm.tui.screens.tape import TapeScreen


@pytest.mark.parametrize("size", [(80, 24), (200, 60)], ids=["80x24", "200x60"])
@pytest.mark.parametrize("verb", ["chart MES 5m", "tape MES 5", "chain AAPL"])
async def test_market_screen(engine, settings, snapshot, verb: str, size: tuple[int, int]) -> None:
    app = make_app(engine, settings)
    kind = {"chart": ChartScreen, "tape": TapeScreen, "chain": ChainScreen}[verb.split()[0]]
    async with app.run_test(size=size) as pilot:
        await wait_for(app.ready.is_set, pilot)
        await wait_for(lambda: all(r.quote is not None for r in app.grid.rows), pilot)
        await pilot.press("colon", *[{" ": "space"}.get(c, c) for c in verb], "enter")
        await wait_for(lambda: isinstance(app.screen, kind), pilot)
        screen = app.screen
        if isinstance(screen, ChartScreen):
            await wait_for(lambda: screen.series is not None and len(screen.series) > 0 and screen.live, pilot)
        elif isinstance(screen, TapeScreen):
            await wait_for(lambda: screen.live, pilot)
            for n, (bid, ask, last) in enumerate((("5000.25", "5000.50", "5000.50"), ("5000.00", "5000.25", "5000.00"),
                                                  ("4999.75", "5000.00", "4999.75"))):  # fmt: skip
                volume = engine.quote(engine.instrument("MES").symbol).volume + 3 * (n + 1)
                await push(engine, "MES", bid=bid, ask=ask, last=last, volume=volume)
            await wait_for(lambda: len(screen.tape.rows) >= 4, pilot)
        else:
            await wait_for(lambda: screen.chain is not None and bool(screen._streaming), pilot)
            await pilot.press("v")
        await pilot.pause()
        assert app.export_screenshot() == snapshot(extension_class=SVGImageSnapshotExtension)

"""The fills pane keeps the newest fill in view: newest first, and new fills never scroll it to
the oldest rows; a row the user moved to stays selected."""

from __future__ import annotations

from tests.tui.conftest import make_app, wait_for
from tterm.core.models import OrderRequest, Side

SIZE = (100, 30)


async def fill(engine, n: int) -> None:
    for i in range(n):
        side = Side.BUY if i % 2 == 0 else Side.SELL
        await engine.place(OrderRequest(account="paper:FUT50K", symbol="MES", side=side, quantity=1))


def first_visible_id(table) -> str:
    row = table.scroll_offset.y
    return str(table.get_row_at(row)[-1])


async def test_new_fills_keep_the_newest_in_view(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(app.ready.is_set, pilot)
        await pilot.press("f5")
        table = app.fills_table
        await fill(engine, 20)
        await wait_for(lambda: table.row_count == 20, pilot)
        await pilot.pause()
        newest = max(app.bridge.state.fills.values(), key=lambda f: (f.ts, f.fill_id))
        assert str(table.get_row_at(0)[-1]) == newest.fill_id
        assert table.scroll_offset.y == 0 and table.cursor_row == 0
        for batch in range(3):
            await fill(engine, 5)
            await wait_for(lambda n=batch: table.row_count == 25 + 5 * n, pilot)
            await pilot.pause()
            newest = max(app.bridge.state.fills.values(), key=lambda f: (f.ts, f.fill_id))
            assert first_visible_id(table) == newest.fill_id
            assert table.cursor_row == 0

        # The user moves down to read an older fill: that row stays selected as fills arrive.
        table.move_cursor(row=10)
        await pilot.pause()
        reading = table.cursor_key
        await fill(engine, 2)
        await wait_for(lambda: table.row_count == 37, pilot)
        await pilot.pause()
        assert table.cursor_key == reading


async def test_fills_are_ordered_by_time_across_midnight(engine, settings) -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    from tterm.core.clock import CT
    from tterm.core.models import Fill

    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(app.ready.is_set, pilot)
        evening = Fill(
            "f-9",
            "o-1",
            "c-1",
            "paper:FUT50K",
            "MESZ6",
            Side.BUY,
            1,
            Decimal("5000.25"),
            ts=datetime(2026, 11, 16, 23, 30, tzinfo=UTC),
        )  # 17:30 CT, when the session opened
        morning = Fill("f-10", "o-2", "c-2", "paper:FUT50K", "MESZ6", Side.SELL, 1, Decimal("5001.00"),
                       ts=datetime(2026, 11, 17, 15, 0, tzinfo=UTC))  # 09:00 CT the next day  # fmt: skip
        table = app.fills_table
        table.update_fills([evening, morning], [], app.bridge.state.accounts, CT)
        assert [str(table.get_row_at(i)[-1]) for i in range(2)] == ["f-10", "f-9"]

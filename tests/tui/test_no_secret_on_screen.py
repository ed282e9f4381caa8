"""The rendered screen never shows a registered secret (issue 17, item 5): a broker notice and an
order reject whose vendor text echoes a token are masked before they reach the terminal, whichever
adapter sent them (the engine scrubs what it publishes, so the hub's clients get the same)."""

from __future__ import annotations

import html

from tests.tui.conftest import make_app, wait_for
from tterm.core.models import Notice, Order, OrderSource, OrderStatus, OrderType, Side
from tterm.core.redact import MASK, REDACTOR

SIZE = (160, 48)
TOKEN = "planted-screen-token-0a1b2c3d4e5f"


def _screen(app) -> str:
    return html.unescape(app.export_screenshot()).replace("\u00a0", " ")


async def test_a_notice_and_a_reject_echoing_a_token_are_masked_on_screen(engine, settings) -> None:
    REDACTOR.add(TOKEN, rotating=True)
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE, notifications=True) as pilot:  # toasts drawn, as a user sees them
        await pilot.pause(0.3)  # the screen is attached to the engine
        broker = engine.brokers["paper"]
        broker.emit(Notice(level="error", text=f"vendor: session {TOKEN} expired", source="paper"))
        broker.emit(
            Order(
                order_id="v-1",
                client_order_id="tt-screen-1",
                account="paper:FUT50K",
                symbol=engine.instrument("MES").symbol,
                side=Side.BUY,
                quantity=1,
                order_type=OrderType.LIMIT,
                status=OrderStatus.REJECTED,
                limit_price=engine.instrument("MES").round_price(engine.quote(engine.instrument("MES").symbol).bid),
                reject_reason=f"refused: token {TOKEN} not valid",
                source=OrderSource.API,
                broker="paper",
            )
        )
        await wait_for(lambda: "vendor: session" in _screen(app), pilot)
        await wait_for(lambda: "not valid" in _screen(app), pilot)
        shown = _screen(app)
        assert f"session {MASK}" in shown
        assert TOKEN not in shown and TOKEN[:16] not in shown
    stored = engine.order_by_client_id("paper:FUT50K", "tt-screen-1")
    assert stored is not None and TOKEN not in stored.reject_reason

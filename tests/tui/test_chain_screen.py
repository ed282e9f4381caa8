"""The option chain screen driven with keys to a sent vertical that the paper broker fills, and the
inputs it refuses (nothing sent)."""

from __future__ import annotations

from decimal import Decimal

from tests.tui.conftest import make_app, wait_for
from tterm.core import strategy as st
from tterm.core.models import OptionRight, OrderStatus, Side
from tterm.tui.modals.confirm import ConfirmDialog
from tterm.tui.modals.prompt import Prompt
from tterm.tui.screens.chain import ChainScreen

D = Decimal


async def _ready(app, pilot) -> None:
    await wait_for(app.ready.is_set, pilot)
    await wait_for(lambda: all(r.quote is not None for r in app.grid.rows), pilot)


def _keys(text: str) -> list[str]:
    return [{" ": "space", ".": "full_stop", "-": "minus"}.get(c, c) for c in text]


async def _open_chain(app, pilot) -> ChainScreen:
    await pilot.press("colon", *_keys("chain AAPL"), "enter")
    await wait_for(lambda: isinstance(app.screen, ChainScreen) and app.screen.chain is not None, pilot)
    screen = app.screen
    assert isinstance(screen, ChainScreen)
    await wait_for(lambda: bool(screen._streaming), pilot)
    return screen


async def _prompt(app, pilot, text: str) -> None:
    await wait_for(lambda: isinstance(app.screen, Prompt), pilot)
    await pilot.press(*_keys(text), "enter")
    await wait_for(lambda: isinstance(app.screen, ChainScreen), pilot)


async def test_the_chain_driven_with_keys_to_a_vertical_the_paper_broker_fills(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await _ready(app, pilot)
        screen = await _open_chain(app, pilot)
        table = screen.table
        assert app.focused is table
        chain = screen.chain
        assert chain is not None and chain.underlying == "AAPL" and len(table.rows) > 4
        # The cursor starts at the money, on the calls.
        atm = min(table.rows, key=lambda r: abs(r.strike - D("187.50")))
        assert table.current_strike == atm.strike and table.right is OptionRight.CALL
        lines = table.text_lines()
        assert "AAPL" in lines[0] and "expiry" in lines[0] and "CALL│PUT" in lines[1]
        # One strike up, then a vertical: buy that call, sell the next strike up.
        await pilot.press("up", "v")
        strike = table.current_strike
        legs = screen.legs
        assert [(leg.side, leg.strike, leg.right) for leg in legs] == [
            (Side.BUY, strike, OptionRight.CALL),
            (Side.SELL, table.rows[table.cursor + 1].strike, OptionRight.CALL),
        ]
        assert table.legs == {legs[0].symbol: 1, legs[1].symbol: -1}
        ticket = str(screen.render_ticket())
        assert "VERTICAL" in ticket and "max profit $" in ticket and "max loss $" in ticket and "breakeven" in ticket
        # The limit starts at the mid; price it at the natural so the paper market fills it now.
        natural = st.natural(legs)
        assert natural is not None and natural > 0 and screen.net == st.on_grid(st.mid(legs), toward="pay")
        await pilot.press("p")
        await _prompt(app, pilot, f"{natural:.2f}")
        assert screen.net == natural
        await pilot.press("plus")
        assert screen.quantity == 2
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
        await pilot.press("y")
        await wait_for(lambda: "FILLED" in screen.status, pilot, limit=8)
        [order] = [o for o in engine.open_orders() + list(screen.orders.values()) if o.legs]
        assert order.status is OrderStatus.FILLED and order.account == "paper:CASH" and order.quantity == 2
        held = {p.symbol: p.quantity for p in engine.positions("paper:CASH") if p.quantity}
        assert held == {legs[0].symbol: 2, legs[1].symbol: -2}
        await pilot.press("escape")
        await wait_for(lambda: not isinstance(app.screen, ChainScreen), pilot)


async def test_bad_legs_and_prices_are_refused_with_the_reason_and_nothing_is_sent(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=(120, 40), notifications=True) as pilot:
        await _ready(app, pilot)
        screen = await _open_chain(app, pilot)
        # An option symbol that does not parse.
        await pilot.press("a")
        await _prompt(app, pilot, "buy AAPL 2612C00200000")
        assert screen.legs == () and "leg refused" in screen.status and "expiry must be six digits" in screen.status
        # A leg on an expired series (17 Nov 2026 today; the 13 Nov options are gone).
        await pilot.press("a")
        await _prompt(app, pilot, "buy AAPL  261113C00190000")
        assert screen.legs == () and "expired on 2026-11-13" in screen.status
        # A single leg is not a multi-leg order.
        await pilot.press("b")
        assert len(screen.legs) == 1
        await pilot.press("enter")
        assert "not sent: a multi-leg order needs at least two legs" in screen.status
        # A spread priced off the penny grid.
        await pilot.press("c", "d")  # clear, then a straddle at the cursor
        assert st.kind_of(screen.legs) == "straddle"
        before = screen.net
        await pilot.press("p")
        await _prompt(app, pilot, "1.234")
        assert screen.net == before and "off the tick grid" in screen.status and "1.23 and 1.24" in screen.status
        assert [o for o in engine.open_orders() if o.legs] == []
        assert not any(o.legs for o in app.bridge.state.orders.values())

"""The DOM price ladder, driven with real keys on the scripted paper broker: orders placed from a
row land on that row and in the blotter, a moved order is modified (never re-sent), a row outside
the price band sends nothing, and reverse, flatten and breakeven go through the confirmation."""

from __future__ import annotations

from decimal import Decimal

from tests.tui.conftest import make_app, push, wait_for
from tterm.core.models import OrderRequest, OrderSource, OrderStatus, OrderType, Side
from tterm.tui.modals.confirm import ConfirmDialog
from tterm.tui.widgets.dom_ladder import DomLadder

D = Decimal
SIZE = (140, 44)
ACCOUNT = "paper:FUT50K"


def working(engine) -> list:
    return list(engine.open_orders(ACCOUNT))


def texts(app) -> list[str]:
    return [n.message for n in app._notifications]


async def open_ladder(app, pilot, symbol: str = "MES") -> DomLadder:
    await wait_for(app.ready.is_set, pilot)
    await pilot.press("colon", *f"dom {symbol}", "enter")
    await wait_for(lambda: app.trade.dom is not None and app.trade.dom.depth is not None, pilot)
    dom = app.trade.dom
    assert dom is not None
    await wait_for(lambda: app.focused is dom, pilot)
    return dom


async def confirm(pilot, app, expect: str) -> ConfirmDialog:
    await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
    dialog = app.screen
    assert isinstance(dialog, ConfirmDialog)
    assert expect in dialog.headline, dialog.headline
    return dialog


async def test_the_ladder_shows_the_book_around_the_market(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        dom = await open_ladder(app, pilot)
        assert dom.instrument is not None and dom.instrument.symbol == "MESZ6"
        assert "MESZ6" in app.bridge.subscribed_to("depth") and "MESZ6" in app.bridge.subscribed_to("trades")
        # The cursor starts at the market, in the middle of the window.
        assert dom.cursor_price() in (D("5000.00"), D("5000.25"))
        rows = list(dom.visible_indices())
        assert rows[0] > dom.cursor > rows[-1]
        bid_row = dom._cells[dom.index(D("5000.00"))]
        ask_row = dom._cells[dom.index(D("5000.25"))]
        assert bid_row.touch == "bid" and bid_row.bid and not bid_row.ask
        assert ask_row.touch == "ask" and ask_row.ask and not ask_row.bid
        # Deeper levels of the paper book show too.
        assert dom._cells[dom.index(D("4999.75"))].bid
        assert dom._cells[dom.index(D("5000.50"))].ask


async def test_a_limit_placed_from_a_row_appears_on_that_row_and_in_the_blotter(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        dom = await open_ladder(app, pilot)
        dom.cursor = dom.index(D("5000.00"))
        await pilot.press("down", "down", "b")  # two ticks below the bid
        dialog = await confirm(pilot, app, "BUY 1 MESZ6 limit 4,999.50")
        assert any(line.startswith("Market: bid 5,000.00") for line in dialog.details)
        assert "From: dom" in dialog.details
        await pilot.press("y")
        await wait_for(lambda: len(working(engine)) == 1, pilot)
        order = working(engine)[0]
        assert order.limit_price == D("4999.50") and order.source is OrderSource.DOM
        await wait_for(lambda: dom._cells[dom.index(D("4999.50"))].buys == "1", pilot)
        await wait_for(lambda: app.orders_table.row_count == 1, pilot)
        row = [str(c) for c in app.orders_table.get_row_at(0)]
        assert row[2] == "MESZ6" and row[6] == "4,999.50"


async def test_an_order_moved_on_the_ladder_is_modified_not_resent(engine, settings, monkeypatch) -> None:
    placed = await engine.place(OrderRequest(account=ACCOUNT, symbol="MES", side=Side.SELL, quantity=1,
                                             order_type=OrderType.LIMIT, limit_price=D("5001.00")))  # fmt: skip
    calls: list[tuple] = []
    real_modify, real_place = engine.modify, engine.place

    async def modify(account, order_id, **kw):
        calls.append(("modify", order_id, kw))
        return await real_modify(account, order_id, **kw)

    async def place(request):
        calls.append(("place", request))
        return await real_place(request)

    monkeypatch.setattr(engine, "modify", modify)
    monkeypatch.setattr(engine, "place", place)
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        dom = await open_ladder(app, pilot)
        await wait_for(lambda: dom._cells.get(dom.index(D("5001.00"))) is not None
                       and dom._cells[dom.index(D("5001.00"))].sells == "1", pilot)  # fmt: skip
        dom.cursor = dom.index(D("5001.00"))
        await pilot.press("m")
        assert dom.moving is not None and dom.moving.order_id == placed.order_id
        await pilot.press("up", "up", "m")
        await wait_for(lambda: calls, pilot)
        await wait_for(lambda: working(engine)[0].limit_price == D("5001.50"), pilot)
        assert [c[0] for c in calls] == ["modify"]
        assert calls[0][1] == placed.order_id and calls[0][2]["limit_price"] == D("5001.50")
        assert [o.order_id for o in working(engine)] == [placed.order_id]
        await wait_for(lambda: dom._cells[dom.index(D("5001.50"))].sells == "1", pilot)
        assert dom._cells[dom.index(D("5001.00"))].sells == ""


async def test_cancel_at_a_row_cancels_only_that_rows_orders(engine, settings) -> None:
    for price in ("4999.00", "4998.00"):
        await engine.place(OrderRequest(account=ACCOUNT, symbol="MES", side=Side.BUY, quantity=1,
                                        order_type=OrderType.LIMIT, limit_price=D(price)))  # fmt: skip
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        dom = await open_ladder(app, pilot)
        dom.cursor = dom.index(D("4999.00"))
        await pilot.press("x")
        await confirm(pilot, app, "CANCEL 1 order at 4,999.00")
        await pilot.press("y")
        await wait_for(lambda: len(working(engine)) == 1, pilot)
        assert working(engine)[0].limit_price == D("4998.00")


async def test_bad_rows_send_nothing_and_say_why(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        dom = await open_ladder(app, pilot)
        # Far outside the price band (the fat-finger distance).
        dom.cursor = dom.index(D("4000.00"))
        await pilot.press("b")
        await wait_for(lambda: any("outside the price band" in t for t in texts(app)), pilot)
        # A buy limit above the ask would fill at once; a buy stop below it makes no sense.
        dom.cursor = dom.index(D("5001.00"))
        await pilot.press("b")
        await wait_for(lambda: any("at or above the ask" in t for t in texts(app)), pilot)
        dom.cursor = dom.index(D("4999.00"))
        await pilot.press("B")
        await wait_for(lambda: any("must be above the ask" in t for t in texts(app)), pilot)
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmDialog)
        assert working(engine) == [] and list(engine._orders.values()) == []


async def test_join_bid_and_quantity_presets(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        dom = await open_ladder(app, pilot)
        await pilot.press("3")  # the third futures preset: 5
        assert dom.quantity == 5
        await pilot.press("left_square_bracket")
        await confirm(pilot, app, "BUY 5 MESZ6 limit 5,000.00")
        await pilot.press("y")
        await wait_for(lambda: len(working(engine)) == 1, pilot)
        assert working(engine)[0].quantity == 5


async def test_reverse_and_flatten_from_the_ladder(engine, settings) -> None:
    await engine.place(OrderRequest(account=ACCOUNT, symbol="MES", side=Side.BUY, quantity=2))
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        dom = await open_ladder(app, pilot)
        await wait_for(lambda: dom.position is not None, pilot)
        avg = dom.position.avg_price
        assert dom._cells[dom.index(avg)].avg
        await pilot.press("r")
        dialog = await confirm(pilot, app, "REVERSE long 2 MESZ6")
        assert "SELL 4 MESZ6" in dialog.headline
        await pilot.press("y")
        await wait_for(lambda: engine.position(ACCOUNT, "MESZ6").quantity == -2, pilot)
        await pilot.press("f")
        await confirm(pilot, app, "FLATTEN MESZ6")
        await pilot.press("y")
        await wait_for(lambda: engine.position(ACCOUNT, "MESZ6").quantity == 0, pilot)


async def test_breakeven_places_then_moves_the_stop(engine, settings) -> None:
    await engine.place(OrderRequest(account=ACCOUNT, symbol="MES", side=Side.BUY, quantity=1))
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        dom = await open_ladder(app, pilot)
        await wait_for(lambda: dom.position is not None, pilot)
        # Still at the entry: a stop at breakeven would fill at once, so nothing is sent.
        await pilot.press("e")
        await wait_for(lambda: any("has not moved past the breakeven" in t for t in texts(app)), pilot)
        assert working(engine) == []
        await push(engine, "MES", bid="5003.00", ask="5003.25", last="5003.00")
        await wait_for(lambda: dom.quote is not None and dom.quote.bid == D("5003.00"), pilot)
        await pilot.press("e")
        dialog = await confirm(pilot, app, "BREAKEVEN stop")
        await pilot.press("y")
        await wait_for(lambda: len(working(engine)) == 1, pilot)
        stop = working(engine)[0]
        inst = engine.instrument("MES")
        expected = app.orders.breakeven_price(engine.position(ACCOUNT, "MESZ6"), inst)
        assert stop.order_type is OrderType.STOP and stop.stop_price == expected
        assert expected > D("5000.25")  # the fees are on top of the average price
        assert str(expected) in dialog.headline.replace(",", "")
        # A second breakeven after the stop was moved away modifies that stop (same order).
        await engine.modify(ACCOUNT, stop.order_id, stop_price=D("4995.00"))
        await wait_for(lambda: dom.orders and dom.orders[0].stop_price == D("4995.00"), pilot)
        await pilot.press("e")
        await wait_for(lambda: working(engine)[0].stop_price == expected, pilot)
        assert [o.order_id for o in working(engine)] == [stop.order_id]
        assert working(engine)[0].status is not OrderStatus.CANCELLED


async def test_watchlist_key_opens_the_ladder_and_escape_closes_it(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(app.ready.is_set, pilot)
        await pilot.press("d")
        await wait_for(lambda: app.trade.dom is not None and app.focused is app.trade.dom, pilot)
        assert app.trade.has_class("-dom")
        assert not app.grid.display or app.grid.region.width == 0  # a small screen: the ladder takes its place
        await pilot.press("escape")
        await wait_for(lambda: app.trade.dom is None, pilot)
        await wait_for(lambda: app.focused is app.grid, pilot)
        assert "MESZ6" not in app.bridge.subscribed_to("depth")


async def test_a_ladder_for_an_unknown_symbol_is_refused(engine, settings) -> None:
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(app.ready.is_set, pilot)
        await pilot.press("colon", *"dom ZZZQ", "enter")
        await wait_for(lambda: any(t.startswith("dom: ") and "ZZZQ" in t for t in texts(app)), pilot)
        assert app.trade.dom is None and app.bridge.subscribed_to("depth") == frozenset()
        assert app.command_bar.is_open  # the command stays for correcting


async def test_a_broker_without_depth_still_gets_a_ladder_and_is_told(engine, settings, monkeypatch) -> None:
    from tterm.core.client import EngineError

    async def no_depth(symbols):
        raise EngineError("not supported by paper: depth")

    monkeypatch.setattr(engine, "subscribe_depth", no_depth)
    app = make_app(engine, settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(app.ready.is_set, pilot)
        await pilot.press("colon", *"dom MES", "enter")
        await wait_for(lambda: app.trade.dom is not None and app.focused is app.trade.dom, pilot)
        await wait_for(lambda: any("no depth: the touch comes from the quote" in t for t in texts(app)), pilot)
        dom = app.trade.dom
        await wait_for(lambda: dom._cells.get(dom.index(D("5000.00"))) is not None, pilot)
        assert dom._cells[dom.index(D("5000.00"))].touch == "bid"  # from the quote
        assert app.bridge.subscribed_to("depth") == frozenset()

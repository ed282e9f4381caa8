"""The paper matching engine, driven directly: no asyncio, no broker, one quote at a time."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tterm.brokers.paper.matching import (
    Execution,
    MatchingEngine,
    ModifyRejected,
    Working,
    average,
    stop_side_error,
    tick_error,
)
from tterm.core.broker import UnknownOrder
from tterm.core.instruments import InstrumentMaster
from tterm.core.models import (
    Bracket,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    Quote,
    Side,
    TimeInForce,
)

MASTER = InstrumentMaster(today=lambda: date(2025, 11, 3))
ES = MASTER.resolve("ESZ5")
DAY1 = date(2025, 11, 3)


class Book:
    """A matching engine with a recording sink."""

    def __init__(self, capacity=None) -> None:
        self.effects: list[Order | Execution] = []
        self.n = 0
        self.engine = MatchingEngine(sink=self.effects.append, new_id=self._id, capacity=capacity)

    def _id(self, kind: str) -> str:
        self.n += 1
        return f"{kind}{self.n}"

    def quote(self, bid: str, ask: str, bid_size: int = 10, ask_size: int = 10) -> None:
        self.engine.on_quote(Quote("ESZ5", bid=D(bid), ask=D(ask), bid_size=bid_size, ask_size=ask_size))

    def submit(
        self,
        side: Side,
        qty: int,
        order_type: OrderType = OrderType.MARKET,
        *,
        limit: str | None = None,
        stop: str | None = None,
        tif: TimeInForce = TimeInForce.DAY,
        bracket: Bracket | None = None,
        trade_date: date = DAY1,
    ) -> Order:
        self.n += 1
        order = Order(
            order_id=f"o{self.n}",
            client_order_id=f"c{self.n}",
            account="paper:FUT",
            symbol="ESZ5",
            side=side,
            quantity=qty,
            order_type=order_type,
            status=OrderStatus.PENDING,
            limit_price=D(limit) if limit else None,
            stop_price=D(stop) if stop else None,
            tif=tif,
        )
        return self.engine.submit(order, ES, trade_date=trade_date, bracket=bracket)

    def fills(self, order_id: str | None = None) -> list[Execution]:
        return [
            e for e in self.effects if isinstance(e, Execution) and (order_id is None or e.order.order_id == order_id)
        ]

    def last(self, order_id: str) -> Order:
        for e in reversed(self.effects):
            o = e.order if isinstance(e, Execution) else e
            if o.order_id == order_id:
                return o
        raise AssertionError(f"no effect for {order_id}")

    def children(self, parent_id: str) -> dict[OrderRole, Order]:
        out: dict[OrderRole, Order] = {}
        for e in self.effects:
            o = e.order if isinstance(e, Execution) else e
            if o.parent_id == parent_id:
                out[o.role] = o
        return out


# --------------------------------------------------------------------------- market and limit


def test_market_buy_fills_in_full_at_the_ask_whatever_the_size() -> None:
    b = Book()
    b.quote("6800.00", "6800.25", ask_size=2)
    o = b.submit(Side.BUY, 7)
    assert o.status is OrderStatus.FILLED
    assert o.filled_quantity == 7 and o.avg_fill_price == D("6800.25")
    [ex] = b.fills()
    assert (ex.quantity, ex.price) == (7, D("6800.25"))


def test_market_sell_fills_at_the_bid() -> None:
    b = Book()
    b.quote("6800.00", "6800.25")
    o = b.submit(Side.SELL, 3)
    assert o.status is OrderStatus.FILLED and o.avg_fill_price == D("6800.00")


def test_lifecycle_effects_are_working_then_filled() -> None:
    b = Book()
    b.quote("6800.00", "6800.25")
    b.submit(Side.BUY, 1)
    assert [e.status if isinstance(e, Order) else "fill" for e in b.effects] == [OrderStatus.WORKING, "fill"]
    assert b.fills()[0].order.status is OrderStatus.FILLED


def test_resting_limit_waits_then_fills_at_its_limit_price() -> None:
    b = Book()
    b.quote("6800.00", "6800.25")
    o = b.submit(Side.BUY, 2, OrderType.LIMIT, limit="6799.00")
    assert o.status is OrderStatus.WORKING and not b.fills()
    b.quote("6799.25", "6799.50")
    assert not b.fills()
    # The market gaps through the limit: a resting order fills at its own price.
    b.quote("6798.00", "6798.25")
    [ex] = b.fills()
    assert ex.price == D("6799.00") and ex.quantity == 2
    assert b.last(o.order_id).status is OrderStatus.FILLED
    assert o.order_id not in b.engine.working


def test_resting_sell_limit_fills_when_the_bid_reaches_it() -> None:
    b = Book()
    b.quote("6800.00", "6800.25")
    o = b.submit(Side.SELL, 1, OrderType.LIMIT, limit="6801.00")
    b.quote("6800.75", "6801.00")  # the ask at the limit does not fill a sell
    assert not b.fills()
    b.quote("6801.00", "6801.25")
    assert b.last(o.order_id).avg_fill_price == D("6801.00")


def test_marketable_limit_fills_at_the_better_touch() -> None:
    b = Book()
    b.quote("6800.00", "6800.25")
    o = b.submit(Side.BUY, 1, OrderType.LIMIT, limit="6802.00")
    assert o.status is OrderStatus.FILLED and o.avg_fill_price == D("6800.25")


def test_partial_fills_take_the_displayed_size_per_quote() -> None:
    b = Book()
    b.quote("6800.00", "6800.25", ask_size=50)
    o = b.submit(Side.BUY, 20, OrderType.LIMIT, limit="6799.00")
    b.quote("6798.75", "6799.00", ask_size=5)
    mid = b.last(o.order_id)
    assert mid.status is OrderStatus.PARTIALLY_FILLED and mid.filled_quantity == 5
    b.quote("6798.75", "6799.00", ask_size=12)
    assert b.last(o.order_id).filled_quantity == 17
    b.quote("6798.75", "6799.00", ask_size=12)
    done = b.last(o.order_id)
    assert done.status is OrderStatus.FILLED and done.filled_quantity == 20
    assert [f.quantity for f in b.fills()] == [5, 12, 3]


def test_marketable_limit_partially_fills_against_a_small_touch_and_rests() -> None:
    b = Book()
    b.quote("6800.00", "6800.25", ask_size=4)
    o = b.submit(Side.BUY, 10, OrderType.LIMIT, limit="6800.25")
    assert o.status is OrderStatus.PARTIALLY_FILLED and o.filled_quantity == 4
    assert o.order_id in b.engine.working


def test_displayed_size_is_shared_in_price_then_time_priority() -> None:
    b = Book()
    b.quote("6800.00", "6800.25")
    first = b.submit(Side.BUY, 5, OrderType.LIMIT, limit="6799.00")
    better = b.submit(Side.BUY, 5, OrderType.LIMIT, limit="6799.50")
    b.quote("6798.75", "6799.00", ask_size=6)
    assert b.last(better.order_id).filled_quantity == 5
    assert b.last(first.order_id).filled_quantity == 1


def test_a_quote_without_size_fills_a_limit_in_full() -> None:
    b = Book()
    b.quote("6800.00", "6800.25")
    o = b.submit(Side.BUY, 30, OrderType.LIMIT, limit="6799.00")
    b.quote("6798.75", "6799.00", ask_size=0)
    assert b.last(o.order_id).status is OrderStatus.FILLED


# --------------------------------------------------------------------------- stops


def test_buy_stop_triggers_when_the_ask_touches_it_and_fills_as_market() -> None:
    b = Book()
    b.quote("6800.00", "6800.25")
    o = b.submit(Side.BUY, 2, OrderType.STOP, stop="6801.00")
    b.quote("6800.50", "6800.75")
    assert not b.fills()
    b.quote("6801.00", "6801.25", ask_size=1)
    ex = b.fills()
    assert [(e.quantity, e.price) for e in ex] == [(2, D("6801.25"))]
    assert b.last(o.order_id).status is OrderStatus.FILLED


def test_sell_stop_triggers_when_the_bid_touches_it() -> None:
    b = Book()
    b.quote("6800.00", "6800.25")
    o = b.submit(Side.SELL, 1, OrderType.STOP, stop="6799.00")
    b.quote("6799.25", "6799.50")
    assert not b.fills()
    b.quote("6798.50", "6798.75")
    assert b.last(o.order_id).avg_fill_price == D("6798.50")


def test_stop_limit_triggers_then_rests_at_its_limit_then_fills() -> None:
    b = Book()
    b.quote("6800.00", "6800.25")
    o = b.submit(Side.BUY, 1, OrderType.STOP_LIMIT, stop="6801.00", limit="6801.00")
    b.quote("6801.50", "6801.75")  # triggers; ask above the limit, so it rests
    w = b.engine.working[o.order_id]
    assert w.triggered and not b.fills()
    b.quote("6800.25", "6800.50")  # back below the stop: still a live limit
    ex = b.fills()
    assert [(e.quantity, e.price) for e in ex] == [(1, D("6801.00"))]


def test_stop_limit_marketable_when_triggered_fills_at_the_touch() -> None:
    b = Book()
    b.quote("6800.00", "6800.25")
    o = b.submit(Side.SELL, 1, OrderType.STOP_LIMIT, stop="6799.00", limit="6798.00")
    b.quote("6798.75", "6799.00")
    assert b.last(o.order_id).avg_fill_price == D("6798.75")


# --------------------------------------------------------------------------- time in force


def test_ioc_fills_what_it_can_and_cancels_the_rest() -> None:
    b = Book()
    b.quote("6800.00", "6800.25", ask_size=3)
    o = b.submit(Side.BUY, 10, OrderType.LIMIT, limit="6800.25", tif=TimeInForce.IOC)
    assert o.status is OrderStatus.CANCELLED and o.filled_quantity == 3
    assert "IOC" in o.reject_reason and o.order_id not in b.engine.working


def test_ioc_not_marketable_is_cancelled_unfilled() -> None:
    b = Book()
    b.quote("6800.00", "6800.25")
    o = b.submit(Side.BUY, 1, OrderType.LIMIT, limit="6799.00", tif=TimeInForce.IOC)
    assert o.status is OrderStatus.CANCELLED and o.filled_quantity == 0 and not b.fills()


def test_fok_without_enough_size_is_cancelled_with_nothing_filled() -> None:
    b = Book()
    b.quote("6800.00", "6800.25", ask_size=3)
    o = b.submit(Side.BUY, 10, OrderType.LIMIT, limit="6800.50", tif=TimeInForce.FOK)
    assert o.status is OrderStatus.CANCELLED and o.filled_quantity == 0 and not b.fills()
    assert "FOK" in o.reject_reason


def test_fok_with_enough_size_fills_completely() -> None:
    b = Book()
    b.quote("6800.00", "6800.25", ask_size=30)
    o = b.submit(Side.BUY, 10, OrderType.LIMIT, limit="6800.50", tif=TimeInForce.FOK)
    assert o.status is OrderStatus.FILLED and len(b.fills()) == 1


def test_day_orders_expire_on_a_new_trade_date_gtc_rest() -> None:
    b = Book()
    b.quote("6800.00", "6800.25")
    day = b.submit(Side.BUY, 1, OrderType.LIMIT, limit="6790.00")
    gtc = b.submit(Side.BUY, 1, OrderType.LIMIT, limit="6790.00", tif=TimeInForce.GTC)
    assert b.engine.expire(DAY1) == []
    [expired] = b.engine.expire(date(2025, 11, 4))
    assert expired.order_id == day.order_id and expired.status is OrderStatus.EXPIRED
    assert gtc.order_id in b.engine.working and day.order_id not in b.engine.working


# --------------------------------------------------------------------------- brackets


def test_bracket_in_ticks_creates_oco_children_and_tp_cancels_sl() -> None:
    b = Book()
    b.quote("6800.00", "6800.25")
    entry = b.submit(Side.BUY, 2, bracket=Bracket(take_profit_ticks=8, stop_loss_ticks=4))
    kids = b.children(entry.order_id)
    tp, sl = kids[OrderRole.TAKE_PROFIT], kids[OrderRole.STOP_LOSS]
    assert (tp.order_type, tp.side, tp.limit_price, tp.quantity) == (OrderType.LIMIT, Side.SELL, D("6802.25"), 2)
    assert (sl.order_type, sl.side, sl.stop_price, sl.quantity) == (OrderType.STOP, Side.SELL, D("6799.25"), 2)
    assert tp.oco_group == sl.oco_group is not None
    assert tp.parent_id == sl.parent_id == entry.order_id
    b.quote("6802.25", "6802.50")
    assert b.last(tp.order_id).status is OrderStatus.FILLED
    sl_final = b.last(sl.order_id)
    assert sl_final.status is OrderStatus.CANCELLED and "OCO" in sl_final.reject_reason
    assert not b.engine.working and not b.engine.groups


def test_bracket_by_price_sl_hit_cancels_tp() -> None:
    b = Book()
    b.quote("6800.00", "6800.25")
    entry = b.submit(Side.SELL, 1, bracket=Bracket(take_profit_price=D("6790.00"), stop_loss_price=D("6805.00")))
    kids = b.children(entry.order_id)
    tp, sl = kids[OrderRole.TAKE_PROFIT], kids[OrderRole.STOP_LOSS]
    assert (tp.side, tp.limit_price, sl.side, sl.stop_price) == (Side.BUY, D("6790.00"), Side.BUY, D("6805.00"))
    b.quote("6804.75", "6805.00")
    assert b.last(sl.order_id).status is OrderStatus.FILLED
    assert b.last(sl.order_id).avg_fill_price == D("6805.00")
    assert b.last(tp.order_id).status is OrderStatus.CANCELLED


def test_partial_entry_fills_grow_the_children() -> None:
    b = Book()
    b.quote("6800.00", "6800.25", ask_size=50)
    entry = b.submit(
        Side.BUY, 10, OrderType.LIMIT, limit="6799.00", bracket=Bracket(take_profit_ticks=4, stop_loss_ticks=4)
    )
    b.quote("6798.75", "6799.00", ask_size=3)
    kids = b.children(entry.order_id)
    assert kids[OrderRole.TAKE_PROFIT].quantity == 3 == kids[OrderRole.STOP_LOSS].quantity
    b.quote("6798.75", "6799.00", ask_size=4)
    kids = b.children(entry.order_id)
    assert kids[OrderRole.TAKE_PROFIT].quantity == 7 == kids[OrderRole.STOP_LOSS].quantity
    assert kids[OrderRole.TAKE_PROFIT].limit_price == D("6800.00")  # priced off the first fill, kept
    assert len({o.order_id for o in kids.values()}) == 2


def test_partial_child_fill_shrinks_the_sibling() -> None:
    b = Book()
    b.quote("6800.00", "6800.25")
    entry = b.submit(Side.BUY, 10, bracket=Bracket(take_profit_ticks=4, stop_loss_ticks=4))
    kids = b.children(entry.order_id)
    tp, sl = kids[OrderRole.TAKE_PROFIT], kids[OrderRole.STOP_LOSS]
    b.quote("6801.25", "6801.50", bid_size=4)
    assert b.last(tp.order_id).filled_quantity == 4
    assert b.last(tp.order_id).status is OrderStatus.PARTIALLY_FILLED
    assert b.last(sl.order_id).quantity == 6
    b.quote("6799.00", "6799.25")  # the stop takes the remaining 6 and cancels the target
    assert b.last(sl.order_id).status is OrderStatus.FILLED and b.last(sl.order_id).filled_quantity == 6
    tp_final = b.last(tp.order_id)
    assert tp_final.status is OrderStatus.CANCELLED and tp_final.filled_quantity == 4
    assert sum(e.quantity for e in b.fills() if e.order.role is not OrderRole.ENTRY) == 10


def test_after_a_bracket_closes_a_further_entry_fill_starts_a_new_pair() -> None:
    b = Book()
    b.quote("6800.00", "6800.25", ask_size=50)
    entry = b.submit(Side.BUY, 4, OrderType.LIMIT, limit="6799.00", bracket=Bracket(take_profit_ticks=2))
    b.quote("6798.75", "6799.00", ask_size=2)
    first_tp = b.children(entry.order_id)[OrderRole.TAKE_PROFIT]
    b.quote("6799.50", "6799.75", bid_size=10)  # target 6799.50 fills: the pair is done
    assert b.last(first_tp.order_id).status is OrderStatus.FILLED
    b.quote("6798.75", "6799.00", ask_size=2)
    second_tp = b.children(entry.order_id)[OrderRole.TAKE_PROFIT]
    assert second_tp.order_id != first_tp.order_id
    assert second_tp.client_order_id.endswith(".tp2") and second_tp.quantity == 2


def test_cancelling_the_entry_keeps_the_children_protecting_the_fill() -> None:
    b = Book()
    b.quote("6800.00", "6800.25", ask_size=50)
    entry = b.submit(Side.BUY, 4, OrderType.LIMIT, limit="6799.00", bracket=Bracket(stop_loss_ticks=4))
    b.quote("6798.75", "6799.00", ask_size=1)
    b.engine.cancel(entry.order_id)
    sl = b.children(entry.order_id)[OrderRole.STOP_LOSS]
    assert sl.order_id in b.engine.working and sl.quantity == 1


def test_child_that_would_trigger_at_once_does_so() -> None:
    b = Book()
    b.quote("6800.00", "6800.25")
    entry = b.submit(Side.BUY, 1, bracket=Bracket(stop_loss_price=D("6800.00")))
    sl = b.children(entry.order_id)[OrderRole.STOP_LOSS]
    assert b.last(sl.order_id).status is OrderStatus.FILLED


# --------------------------------------------------------------------------- cancel and modify


def test_cancel_then_cancel_again_is_unknown() -> None:
    b = Book()
    b.quote("6800.00", "6800.25")
    o = b.submit(Side.BUY, 1, OrderType.LIMIT, limit="6790.00")
    assert b.engine.cancel(o.order_id).status is OrderStatus.CANCELLED
    with pytest.raises(UnknownOrder):
        b.engine.cancel(o.order_id)
    with pytest.raises(UnknownOrder):
        b.engine.modify(o.order_id, quantity=3)


def test_modify_price_can_fill_at_once() -> None:
    b = Book()
    b.quote("6800.00", "6800.25")
    o = b.submit(Side.BUY, 1, OrderType.LIMIT, limit="6790.00")
    m = b.engine.modify(o.order_id, limit_price=D("6800.50"))
    assert m.status is OrderStatus.FILLED and m.avg_fill_price == D("6800.25")


def test_modify_quantity_and_stop() -> None:
    b = Book()
    b.quote("6800.00", "6800.25")
    o = b.submit(Side.SELL, 1, OrderType.STOP, stop="6795.00")
    m = b.engine.modify(o.order_id, quantity=3, stop_price=D("6797.00"))
    assert (m.quantity, m.stop_price, m.status) == (3, D("6797.00"), OrderStatus.WORKING)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({}, "nothing to change"),
        ({"quantity": 0}, "positive whole number"),
        ({"quantity": 2}, "above the 2 already filled"),
        ({"stop_price": D("6790")}, "no stop price"),
        ({"limit_price": D("6790.10")}, "off the tick grid"),
    ],
)
def test_modify_rejects_leave_the_order_unchanged(kwargs: dict, needle: str) -> None:
    b = Book()
    b.quote("6800.00", "6800.25", ask_size=50)
    o = b.submit(Side.BUY, 5, OrderType.LIMIT, limit="6799.00")
    b.quote("6798.75", "6799.00", ask_size=2)
    before = b.engine.working[o.order_id].order
    with pytest.raises(ModifyRejected, match=needle):
        b.engine.modify(o.order_id, **kwargs)
    assert b.engine.working[o.order_id].order == before


def test_modify_stop_to_the_wrong_side_is_rejected() -> None:
    b = Book()
    b.quote("6800.00", "6800.25")
    o = b.submit(Side.BUY, 1, OrderType.STOP, stop="6805.00")
    with pytest.raises(ModifyRejected, match="must be above the market"):
        b.engine.modify(o.order_id, stop_price=D("6800.00"))


def test_bracket_child_quantity_cannot_be_modified_but_its_price_can() -> None:
    b = Book()
    b.quote("6800.00", "6800.25")
    entry = b.submit(Side.BUY, 2, bracket=Bracket(take_profit_ticks=8, stop_loss_ticks=8))
    tp = b.children(entry.order_id)[OrderRole.TAKE_PROFIT]
    with pytest.raises(ModifyRejected, match="follows the entry"):
        b.engine.modify(tp.order_id, quantity=5)
    assert b.engine.modify(tp.order_id, limit_price=D("6803.00")).limit_price == D("6803.00")


# --------------------------------------------------------------------------- capacity hook


def test_capacity_caps_a_fill_and_cancels_the_rest_with_the_reason() -> None:
    def cap(w: Working, qty: int, price: D) -> tuple[int, str]:
        return (min(qty, 2), "only 2 affordable")

    b = Book(capacity=cap)
    b.quote("6800.00", "6800.25")
    o = b.submit(Side.BUY, 5)
    assert o.status is OrderStatus.CANCELLED and o.filled_quantity == 2
    assert o.reject_reason == "only 2 affordable"


# --------------------------------------------------------------------------- helpers


def test_tick_and_stop_side_helpers() -> None:
    assert tick_error(ES, D("6800.25"), "limit price") is None
    assert "off the tick grid" in (tick_error(ES, D("6800.10"), "limit price") or "")
    assert "positive" in (tick_error(ES, D("0"), "limit price") or "")
    q = Quote("ESZ5", bid=D("6800.00"), ask=D("6800.25"))
    assert stop_side_error(Side.BUY, D("6800.50"), q) is None
    assert "above the market" in (stop_side_error(Side.BUY, D("6800.25"), q) or "")
    assert "below the market" in (stop_side_error(Side.SELL, D("6800.00"), q) or "")
    assert stop_side_error(Side.SELL, D("6799.75"), q) is None
    assert stop_side_error(Side.SELL, D("6900"), None) is None


def test_average_is_on_tick_when_exact() -> None:
    assert average(D("6800.25") * 2 + D("6800.50") * 2, 4, ES) == D("6800.375")
    assert average(D("6800.25") + D("6800.75"), 2, ES) == D("6800.50")
    assert str(average(D("6800.25") * 2 + D("6800.50"), 3, ES)) == "6800.33333333"


# --------------------------------------------------------------------------- laws


quotes = st.tuples(st.integers(27190, 27210), st.integers(1, 3), st.integers(0, 20), st.integers(0, 20))
orders = st.tuples(
    st.sampled_from(list(Side)),
    st.integers(1, 15),
    st.sampled_from([OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT, OrderType.MARKET]),
    st.integers(27185, 27215),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(quotes, orders), min_size=1, max_size=60))
def test_fills_respect_quantity_limits_and_the_grid(script: list[tuple]) -> None:
    b = Book()
    tick = ES.tick_size
    for step in script:
        if isinstance(step[0], int):
            bid, spread, bs, as_ = step
            b.engine.on_quote(Quote("ESZ5", bid=bid * tick, ask=(bid + spread) * tick, bid_size=bs, ask_size=as_))
            continue
        side, qty, kind, px = step
        q = b.engine.quote("ESZ5")
        price = px * tick
        if kind is OrderType.MARKET and q is None:
            continue
        if kind.needs_stop and stop_side_error(side, price, q):
            continue
        b.submit(
            side,
            qty,
            kind,
            limit=str(price) if kind.needs_limit else None,
            stop=str(price) if kind.needs_stop else None,
        )
    per_order: dict[str, int] = {}
    for ex in b.fills():
        o = ex.order
        per_order[o.order_id] = per_order.get(o.order_id, 0) + ex.quantity
        assert ES.is_on_tick(ex.price)
        assert 0 < o.filled_quantity <= o.quantity
        if o.order_type.needs_limit and o.limit_price is not None:
            assert (ex.price <= o.limit_price) if o.side is Side.BUY else (ex.price >= o.limit_price)
    for oid, total in per_order.items():
        assert b.last(oid).filled_quantity == total
    for w in b.engine.working.values():
        assert w.order.status in (OrderStatus.WORKING, OrderStatus.PARTIALLY_FILLED)

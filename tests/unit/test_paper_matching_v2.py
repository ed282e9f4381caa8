"""The paper matching engine's newer orders, driven directly: trailing stops, combos, OCO, OTOCO."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from tterm.brokers.paper.matching import Execution, MatchingEngine, Working
from tterm.core.instruments import InstrumentMaster
from tterm.core.models import (
    Instrument,
    Order,
    OrderLeg,
    OrderRole,
    OrderStatus,
    OrderType,
    Quote,
    Side,
    TimeInForce,
)

MASTER = InstrumentMaster(today=lambda: date(2025, 11, 3))
ES = MASTER.resolve("ESZ5")
C270 = MASTER.resolve("AAPL  251219C00270000")
C280 = MASTER.resolve("AAPL  251219C00280000")
DAY1 = date(2025, 11, 3)


class Engine:
    def __init__(self) -> None:
        self.effects: list[Order | Execution] = []
        self.n = 0
        self.engine = MatchingEngine(sink=self.effects.append, new_id=self._id)

    def _id(self, kind: str) -> str:
        self.n += 1
        return f"{kind}{self.n}"

    def quote(self, symbol: str, bid: str, ask: str, bid_size: int = 0, ask_size: int = 0) -> None:
        self.engine.on_quote(Quote(symbol, bid=D(bid), ask=D(ask), bid_size=bid_size, ask_size=ask_size))

    def order(
        self,
        side: Side,
        qty: int,
        order_type: OrderType = OrderType.MARKET,
        *,
        symbol: str = "ESZ5",
        limit: str | None = None,
        stop: str | None = None,
        trail: str | None = None,
        tif: TimeInForce = TimeInForce.DAY,
        legs: tuple[OrderLeg, ...] = (),
    ) -> Order:
        self.n += 1
        return Order(
            order_id=f"o{self.n}",
            client_order_id=f"c{self.n}",
            account="paper:X",
            symbol=symbol,
            side=side,
            quantity=qty,
            order_type=order_type,
            status=OrderStatus.PENDING,
            limit_price=D(limit) if limit else None,
            stop_price=D(stop) if stop else None,
            trail_amount=D(trail) if trail else None,
            tif=tif,
            legs=legs,
        )

    def accept(self, order: Order, inst: Instrument = ES, **kw: object) -> Working:
        return self.engine.accept(order, inst, trade_date=DAY1, **kw)  # type: ignore[arg-type]

    def submit(self, order: Order, inst: Instrument = ES, **kw: object) -> Order:
        return self.engine.submit(order, inst, trade_date=DAY1, **kw)  # type: ignore[arg-type]

    def last(self, order_id: str) -> Order:
        for e in reversed(self.effects):
            o = e.order if isinstance(e, Execution) else e
            if o.order_id == order_id:
                return o
        raise AssertionError(order_id)

    def fills(self, order_id: str) -> list[Execution]:
        return [e for e in self.effects if isinstance(e, Execution) and e.order.order_id == order_id]


# --------------------------------------------------------------------------- trailing stops


def test_a_sell_trailing_stop_follows_the_bid_up_never_down_and_fires_as_a_stop() -> None:
    e = Engine()
    e.quote("ESZ5", "6800.00", "6800.25")
    o = e.submit(e.order(Side.SELL, 2, OrderType.TRAILING_STOP, trail="3.00"))
    assert o.status is OrderStatus.WORKING and o.stop_price == D("6797.00")
    e.quote("ESZ5", "6804.50", "6804.75")
    assert e.last(o.order_id).stop_price == D("6801.50")
    e.quote("ESZ5", "6802.00", "6802.25")  # the market falls back: the stop stays
    assert e.last(o.order_id).stop_price == D("6801.50") and e.last(o.order_id).status is OrderStatus.WORKING
    e.quote("ESZ5", "6801.25", "6801.50")
    done = e.last(o.order_id)
    assert done.status is OrderStatus.FILLED and done.avg_fill_price == D("6801.25")


def test_a_buy_trailing_stop_follows_the_ask_down() -> None:
    e = Engine()
    e.quote("ESZ5", "6800.00", "6800.25")
    o = e.submit(e.order(Side.BUY, 1, OrderType.TRAILING_STOP, trail="1.00"))
    assert o.stop_price == D("6801.25")
    e.quote("ESZ5", "6795.00", "6795.25")
    assert e.last(o.order_id).stop_price == D("6796.25")
    e.quote("ESZ5", "6796.00", "6796.25")
    assert e.last(o.order_id).status is OrderStatus.FILLED and e.last(o.order_id).avg_fill_price == D("6796.25")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-6, 6), min_size=1, max_size=40), st.integers(1, 12))
def test_a_trailing_stop_is_always_trail_behind_the_best_bid(moves: list[int], trail_ticks: int) -> None:
    e = Engine()
    price = 27200
    e.quote("ESZ5", str(price * ES.tick_size), str((price + 1) * ES.tick_size))
    trail = trail_ticks * ES.tick_size
    o = e.submit(e.order(Side.SELL, 1, OrderType.TRAILING_STOP, trail=str(trail)))
    best = price
    for m in moves:
        price += m
        e.quote("ESZ5", str(price * ES.tick_size), str((price + 1) * ES.tick_size))
        now = e.last(o.order_id)
        if now.status is OrderStatus.FILLED:
            assert price * ES.tick_size <= (best * ES.tick_size) - trail
            return
        best = max(best, price)
        assert now.stop_price == best * ES.tick_size - trail


# --------------------------------------------------------------------------- combos


def vertical(e: Engine, side: Side, qty: int, order_type: OrderType, limit: str | None = None) -> Working:
    legs = (OrderLeg(C270.symbol, Side.BUY), OrderLeg(C280.symbol, Side.SELL))
    strategy = MASTER.strategy([(legs[0], C270), (legs[1], C280)])
    order = e.order(side, qty, order_type, symbol=strategy.symbol, limit=limit, legs=legs)
    return e.accept(order, strategy, legs=((legs[0], C270), (legs[1], C280)))


def test_a_debit_spread_fills_when_its_natural_price_reaches_the_limit_legs_at_their_touch() -> None:
    e = Engine()
    e.quote(C270.symbol, "9.90", "10.05", 20, 20)
    e.quote(C280.symbol, "4.00", "4.10", 20, 20)
    w = vertical(e, Side.BUY, 3, OrderType.LIMIT, "5.90")
    e.engine.activate(w)
    assert e.last(w.order.order_id).status is OrderStatus.WORKING  # natural 10.05 - 4.00 = 6.05 > 5.90
    e.quote(C280.symbol, "4.15", "4.25", 20, 20)  # natural 10.05 - 4.15 = 5.90: there
    done = e.last(w.order.order_id)
    assert done.status is OrderStatus.FILLED and done.avg_fill_price == D("5.90")
    [ex] = e.fills(w.order.order_id)
    assert [(lf.symbol, lf.side, lf.quantity, lf.price) for lf in ex.legs] == [
        (C270.symbol, Side.BUY, 3, D("10.05")),
        (C280.symbol, Side.SELL, 3, D("4.15")),
    ]


def test_a_credit_spread_and_a_size_limited_fill() -> None:
    e = Engine()
    e.quote(C270.symbol, "9.90", "10.05", 4, 4)
    e.quote(C280.symbol, "4.00", "4.10", 9, 9)
    legs = (OrderLeg(C270.symbol, Side.SELL), OrderLeg(C280.symbol, Side.BUY, 2))
    strategy = MASTER.strategy([(legs[0], C270), (legs[1], C280)])
    w = e.accept(
        e.order(Side.SELL, 6, OrderType.LIMIT, symbol=strategy.symbol, limit="1.60", legs=legs),
        strategy,
        legs=((legs[0], C270), (legs[1], C280)),
    )
    e.engine.activate(w)  # natural credit 9.90 - 2 * 4.10 = 1.70 >= 1.60
    now = e.last(w.order.order_id)
    assert now.status is OrderStatus.PARTIALLY_FILLED and now.filled_quantity == 4  # the 4 on the 270 bid
    [ex] = e.fills(w.order.order_id)
    assert ex.price == D("1.70") and [lf.quantity for lf in ex.legs] == [4, 8]


def test_a_combo_market_order_needs_every_leg_and_ioc_cancels_the_rest() -> None:
    e = Engine()
    e.quote(C270.symbol, "9.90", "10.05", 2, 2)
    w = vertical(e, Side.BUY, 1, OrderType.MARKET)
    e.engine.activate(w)
    assert e.last(w.order.order_id).status is OrderStatus.WORKING  # the 280 has no quote yet
    e.quote(C280.symbol, "4.00", "4.10")
    assert e.last(w.order.order_id).status is OrderStatus.FILLED  # in full, like a single market order
    e.quote(C270.symbol, "9.90", "10.05", 2, 2)
    ioc = vertical(e, Side.BUY, 5, OrderType.LIMIT, "6.50")
    ioc.order = ioc.order.evolve(tif=TimeInForce.IOC)
    e.engine.activate(ioc)
    done = e.last(ioc.order.order_id)
    assert done.status is OrderStatus.CANCELLED and done.filled_quantity == 2  # the 2 offered at 10.05


# --------------------------------------------------------------------------- OCO and OTOCO


def test_oco_on_one_symbol_and_quantity_shrinks_then_cancels() -> None:
    e = Engine()
    e.quote("ESZ5", "6800.00", "6800.25", 10, 10)
    a = e.accept(e.order(Side.SELL, 5, OrderType.LIMIT, limit="6805.00"))
    b = e.accept(e.order(Side.SELL, 5, OrderType.STOP, stop="6795.00"))
    e.engine.link_oco(a, b, "g1")
    e.engine.activate(a)
    e.engine.activate(b)
    e.quote("ESZ5", "6805.00", "6805.25", 2, 10)  # 2 of the limit fill
    assert e.last(b.order.order_id).quantity == 3 and e.last(a.order.order_id).filled_quantity == 2
    e.quote("ESZ5", "6805.00", "6805.25", 3, 10)
    assert e.last(a.order.order_id).status is OrderStatus.FILLED
    assert e.last(b.order.order_id).status is OrderStatus.CANCELLED
    assert "OCO" in e.last(b.order.order_id).reject_reason and "g1" not in e.engine.groups


def test_oco_of_different_orders_cancels_the_other_at_the_first_fill() -> None:
    e = Engine()
    e.quote("ESZ5", "6800.00", "6800.25")
    a = e.accept(e.order(Side.BUY, 2, OrderType.LIMIT, limit="6795.00"))
    b = e.accept(e.order(Side.BUY, 1, OrderType.STOP, stop="6810.00"))
    e.engine.link_oco(a, b, "g1")
    e.engine.activate(a)
    e.engine.activate(b)
    e.quote("ESZ5", "6810.00", "6810.25")
    assert e.last(b.order.order_id).status is OrderStatus.FILLED
    assert e.last(a.order.order_id).status is OrderStatus.CANCELLED


def otoco(e: Engine, qty: int = 4) -> tuple[Working, Working, Working]:
    trigger = e.accept(e.order(Side.BUY, qty, OrderType.LIMIT, limit="6799.00"))
    tp = e.accept(e.order(Side.SELL, qty, OrderType.LIMIT, limit="6805.00"), reduce_only=True)
    sl = e.accept(e.order(Side.SELL, qty, OrderType.TRAILING_STOP, trail="2.00"), reduce_only=True)
    tp.order = tp.order.evolve(role=OrderRole.TAKE_PROFIT)
    sl.order = sl.order.evolve(role=OrderRole.STOP_LOSS)
    e.engine.hold_exits(trigger, [tp, sl], "g1")
    for w in (trigger, tp, sl):
        e.engine.activate(w)
    return trigger, tp, sl


def test_otoco_exits_wait_then_work_as_an_oco_pair_for_what_filled() -> None:
    e = Engine()
    e.quote("ESZ5", "6800.00", "6800.25", 10, 10)
    trigger, tp, sl = otoco(e)
    assert e.last(tp.order.order_id).status is OrderStatus.PENDING
    e.quote("ESZ5", "6805.00", "6805.25", 10, 10)  # a held exit never fills before its trigger
    assert e.last(tp.order.order_id).status is OrderStatus.PENDING and not e.fills(tp.order.order_id)
    e.quote("ESZ5", "6798.75", "6799.00", 10, 3)  # 3 of 4 bought
    t, p, s = (e.last(w.order.order_id) for w in (trigger, tp, sl))
    assert t.filled_quantity == 3
    assert (p.status, p.quantity, s.status, s.quantity) == (OrderStatus.WORKING, 3, OrderStatus.WORKING, 3)
    assert s.stop_price == D("6796.75")  # the trailing stop starts from the bid now
    e.quote("ESZ5", "6798.75", "6799.00", 10, 3)
    assert e.last(tp.order.order_id).quantity == 4 and e.last(sl.order.order_id).quantity == 4
    e.quote("ESZ5", "6796.50", "6796.75", 10, 10)
    assert e.last(sl.order.order_id).status is OrderStatus.FILLED
    assert e.last(tp.order.order_id).status is OrderStatus.CANCELLED


def test_otoco_exits_die_with_an_unfilled_trigger() -> None:
    e = Engine()
    e.quote("ESZ5", "6800.00", "6800.25")
    trigger, tp, sl = otoco(e)
    e.engine.cancel(trigger.order.order_id)
    for w in (tp, sl):
        o = e.last(w.order.order_id)
        assert o.status is OrderStatus.CANCELLED and "OTOCO: trigger" in o.reject_reason
    assert not e.engine.working


def test_a_cancelled_otoco_exit_is_not_recreated() -> None:
    e = Engine()
    e.quote("ESZ5", "6800.00", "6800.25")
    trigger, tp, sl = otoco(e, qty=2)
    e.engine.cancel(sl.order.order_id)
    e.quote("ESZ5", "6798.75", "6799.00")
    assert e.last(trigger.order.order_id).status is OrderStatus.FILLED
    assert e.last(tp.order.order_id).status is OrderStatus.WORKING
    assert e.last(sl.order.order_id).status is OrderStatus.CANCELLED

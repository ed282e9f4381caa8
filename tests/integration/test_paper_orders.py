"""The paper broker's multi-leg, grouped and trailing orders end to end, with their refusals."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from tests.integration.paper_support import CASH, FUT, FakeClock, drain, make, push
from tterm.brokers.paper import ModifyRejected, PaperBroker
from tterm.core.broker import BrokerError
from tterm.core.models import (
    Fill,
    GroupKind,
    Order,
    OrderGroup,
    OrderLeg,
    OrderRequest,
    OrderRole,
    OrderStatus,
    OrderType,
    PositionEffect,
    PriceEffect,
    Side,
    TimeInForce,
)

EXP = "251219"  # 19 Dec 2025, a monthly expiry listed on 3 Nov 2025


def opt(kind: str, strike: int, root: str = "AAPL") -> str:
    return f"{root:<6}{EXP}{kind}{strike * 1000:08d}"


C260, C270, C280, C290, C300 = (opt("C", k) for k in (260, 270, 280, 290, 300))
P240, P250, P270 = (opt("P", k) for k in (240, 250, 270))


async def started(clock: FakeClock | None = None, **kw: Any) -> PaperBroker:
    b = make(clock, **kw)
    await b.connect()
    drain(b)
    return b


async def market(b: PaperBroker) -> None:
    """A fixed option market (no underlying quote, so nothing re-quotes it)."""
    for sym, bid, ask in (
        (C260, "15.90", "16.00"),
        (C270, "9.90", "10.00"),
        (C280, "5.00", "5.10"),
        (C290, "2.30", "2.32"),
        (C300, "0.90", "0.92"),
        (P240, "1.20", "1.22"),
        (P250, "2.40", "2.42"),
        (P270, "8.20", "8.30"),
    ):
        await push(b, sym, bid, ask)


def combo(side: Side, qty: int, legs: list[tuple[str, Side, int]], **kw: Any) -> OrderRequest:
    order_legs = tuple(
        OrderLeg(sym, leg_side, ratio, kw.pop(f"effect{n}", PositionEffect.AUTO))
        for n, (sym, leg_side, ratio) in enumerate(legs)
    )
    if isinstance(kw.get("limit_price"), str):
        kw["limit_price"] = D(kw["limit_price"])
    kw.setdefault("order_type", OrderType.LIMIT if "limit_price" in kw else OrderType.MARKET)
    return OrderRequest(account=kw.pop("account", CASH), symbol="", side=side, quantity=qty, legs=order_legs, **kw)


async def cash(b: PaperBroker) -> tuple[D, D]:
    s = next(s for s in await b.snapshots() if s.account == CASH)
    assert s.buying_power is not None
    return s.balance, s.buying_power


# --------------------------------------------------------------------------- combos


async def test_a_vertical_fills_as_one_order_at_its_natural_price_with_a_fill_per_leg() -> None:
    b = await started()
    await market(b)
    o = await b.place(combo(Side.BUY, 2, [(C270, Side.BUY, 1), (C280, Side.SELL, 1)], limit_price="4.95"))
    assert o.status is OrderStatus.WORKING  # natural 10.00 - 5.00 = 5.00 > 4.95
    assert o.symbol == f"+1 {C270} / -1 {C280}" and o.price_effect is None and o.legs
    await push(b, C280, "5.05", "5.10")
    done = next(x for x in await b.orders() if x.order_id == o.order_id)
    assert done.status is OrderStatus.FILLED and done.avg_fill_price == D("4.95")
    fills = [f for f in await b.fills(CASH) if f.order_id == o.order_id]
    assert [(f.symbol, f.side, f.quantity, f.price) for f in fills] == [
        (C270, Side.BUY, 2, D("10.00")),
        (C280, Side.SELL, 2, D("5.05")),
    ]
    assert {p.symbol: p.quantity for p in await b.positions(CASH)} == {C270: 2, C280: -2}
    assert await cash(b) == (D(100000), D(100000) - D("4.95") * 100 * 2)  # a debit spread covers itself
    # Closing it: the effects are inferred (auto) or said (close).
    assert {o.symbol for o in await b.flatten(CASH) if o.status is OrderStatus.FILLED} == {C270, C280}
    assert await b.positions(CASH) == []  # the short leg was bought back before the long one was sold
    await b.place(combo(Side.BUY, 2, [(C270, Side.BUY, 1), (C280, Side.SELL, 1)]))
    out = await b.place(
        combo(
            Side.SELL,
            2,
            [(C270, Side.SELL, 1), (C280, Side.BUY, 1)],
            price_effect=PriceEffect.CREDIT,
            effect0=PositionEffect.CLOSE,
        )
    )
    assert out.status is OrderStatus.FILLED and out.avg_fill_price == D("9.90") - D("5.10")
    assert await b.positions(CASH) == []
    await b.close()


async def test_a_straddle_and_an_iron_condor() -> None:
    b = await started()
    await market(b)
    straddle = await b.place(combo(Side.BUY, 1, [(C270, Side.BUY, 1), (P270, Side.BUY, 1)]))
    assert straddle.status is OrderStatus.FILLED and straddle.avg_fill_price == D("18.30")
    assert {p.symbol: p.quantity for p in await b.positions(CASH)} == {C270: 1, P270: 1}
    await b.close()
    b = await started()
    await market(b)
    before = (await cash(b))[1]
    condor = combo(
        Side.SELL,
        3,
        [(P240, Side.BUY, 1), (P250, Side.SELL, 1), (C290, Side.SELL, 1), (C300, Side.BUY, 1)],
        limit_price="2.55",
        price_effect=PriceEffect.CREDIT,
    )
    o = await b.place(condor)
    # The natural credit is 2.40 + 2.30 - 1.22 - 0.92 = 2.56: a 2.55 limit fills at once, at 2.56.
    assert o.status is OrderStatus.FILLED and o.avg_fill_price == D("2.56")
    legs = {f.symbol: (f.side, f.quantity, f.price) for f in await b.fills(CASH) if f.order_id == o.order_id}
    assert legs == {
        P240: (Side.BUY, 3, D("1.22")),
        P250: (Side.SELL, 3, D("2.40")),
        C290: (Side.SELL, 3, D("2.30")),
        C300: (Side.BUY, 3, D("0.92")),
    }
    # Cash: the credit is received, and one wing's width is set aside to cover the short legs.
    after = (await cash(b))[1]
    assert after == before + D("2.56") * 100 * 3 - D(10) * 100 * 3
    await b.close()


@pytest.mark.parametrize(
    ("request_", "needle"),
    [
        (combo(Side.BUY, 1, [(C270, Side.BUY, 1)]), "at least two legs"),
        (combo(Side.BUY, 1, [(C270, Side.BUY, 0), (C280, Side.SELL, 1)]), "ratio must be a positive"),
        (combo(Side.BUY, 1, [(C270, Side.BUY, 1), ("BOGUS", Side.SELL, 1)]), "unknown symbol"),
        (combo(Side.BUY, 1, [(C270, Side.BUY, 1), (opt("C", 200, "MSFT"), Side.SELL, 1)]), "different underlyings"),
        (combo(Side.BUY, 1, [(C270, Side.BUY, 1), (opt("C", 280)[:6] + "251017C00280000", Side.SELL, 1)]), "expired"),
        (combo(Side.BUY, 1, [(C270, Side.BUY, 1), (C280, Side.SELL, 1)], limit_price="4.955"), "off the tick grid"),
        (combo(Side.BUY, 1, [(C270, Side.BUY, 1), (C280, Side.SELL, 1)], limit_price="-1.00"), "must be positive"),
        (
            combo(
                Side.BUY,
                1,
                [(C270, Side.BUY, 1), (C280, Side.SELL, 1)],
                limit_price="4.00",
                price_effect=PriceEffect.CREDIT,
            ),
            "a net credit is a sell",
        ),
        (combo(Side.BUY, 1, [(C270, Side.BUY, 1), (C270, Side.SELL, 1)]), "appears twice"),
        (
            combo(Side.BUY, 1, [(C270, Side.BUY, 1), (C280, Side.SELL, 1)], order_type=OrderType.STOP, stop_price=D(5)),
            "market or limit order",
        ),
        (combo(Side.BUY, 1, [(C270, Side.BUY, 1), (C280, Side.SELL, 1)], account=FUT), "futures account"),
        (
            combo(Side.SELL, 1, [(C270, Side.SELL, 1), (C280, Side.BUY, 1)], effect0=PositionEffect.CLOSE),
            "nothing to close",
        ),
        (combo(Side.SELL, 1, [(C280, Side.SELL, 2), (C270, Side.BUY, 1)]), "covered options"),
        (
            OrderRequest(
                CASH, "", Side.BUY, 1, legs=(OrderLeg(C270, Side.BUY), OrderLeg(C280, Side.SELL, account=FUT))
            ),
            "one order, one account",
        ),
    ],
)
async def test_a_bad_multi_leg_order_is_refused_with_its_reason(request_: OrderRequest, needle: str) -> None:
    b = await started()
    await market(b)
    drain(b)
    o = await b.place(request_)
    assert o.status is OrderStatus.REJECTED and needle in o.reject_reason, o.reject_reason
    assert not [e for e in drain(b) if isinstance(e, Fill)] and await b.positions() == []
    await b.close()


async def test_a_combo_cannot_open_against_a_held_position_or_overspend() -> None:
    b = await started()
    await market(b)
    await b.place(OrderRequest(CASH, C280, Side.BUY, 1))
    o = await b.place(combo(Side.BUY, 1, [(C270, Side.BUY, 1), (C280, Side.SELL, 1)], effect1=PositionEffect.OPEN))
    assert o.status is OrderStatus.REJECTED and "would close it" in o.reject_reason
    big = await b.place(combo(Side.BUY, 400, [(C270, Side.BUY, 1), (C280, Side.SELL, 1)]))
    assert big.status is OrderStatus.REJECTED and "not enough cash" in big.reject_reason
    await b.close()


async def test_covered_single_options_in_a_cash_account() -> None:
    b = await started()
    await market(b)
    put = await b.place(OrderRequest(CASH, P250, Side.SELL, 2))  # cash-secured: 250 x 100 x 2 set aside
    assert put.status is OrderStatus.FILLED
    assert (await cash(b))[1] == D(100000) + D("2.40") * 200 - D(50000)
    naked = await b.place(OrderRequest(CASH, C300, Side.SELL, 1))
    assert naked.status is OrderStatus.REJECTED and "covered" in naked.reject_reason
    # A spread's long leg cannot be sold on its own while its short leg needs it.
    await b.place(combo(Side.SELL, 1, [(C290, Side.SELL, 1), (C300, Side.BUY, 1)]))
    alone = await b.place(OrderRequest(CASH, C300, Side.SELL, 1))
    assert alone.status is OrderStatus.REJECTED and "uncovered" in alone.reject_reason
    await b.close()


# --------------------------------------------------------------------------- groups


def leg(side: Side, qty: int, order_type: OrderType, *, account: str = FUT, **kw: Any) -> OrderRequest:
    for k in ("limit_price", "stop_price", "trail_amount"):
        if isinstance(kw.get(k), str):
            kw[k] = D(kw[k])
    return OrderRequest(account=account, symbol="MES1!", side=side, quantity=qty, order_type=order_type, **kw)


async def test_an_oco_pair_and_its_refusals() -> None:
    b = await started()
    await push(b, "MES1!", "6800.00", "6800.25", last="6800.00")
    group = OrderGroup(
        GroupKind.OCO,
        (
            leg(Side.BUY, 1, OrderType.LIMIT, limit_price="6795.00"),
            leg(Side.BUY, 1, OrderType.STOP, stop_price="6805.00"),
        ),
    )
    a, c = await b.place_group(group)
    assert a.status is c.status is OrderStatus.WORKING and a.oco_group == c.oco_group
    assert await b.place_group(group) == [a, c]  # the same client order ids: the same orders
    await push(b, "MES1!", "6805.00", "6805.25", last="6805.00")
    now = {o.order_id: o for o in await b.orders()}
    assert now[c.order_id].status is OrderStatus.FILLED and now[a.order_id].status is OrderStatus.CANCELLED
    bad = OrderGroup(
        GroupKind.OCO,
        (
            leg(Side.BUY, 1, OrderType.LIMIT, limit_price="6795.10"),
            leg(Side.BUY, 1, OrderType.LIMIT, limit_price="6790.00"),
        ),
    )
    refused = await b.place_group(bad)
    assert [o.status for o in refused] == [OrderStatus.REJECTED] * 2
    assert all("order 1 of the OCO: limit price 6795.10 is off the tick grid" in o.reject_reason for o in refused)
    three = OrderGroup(GroupKind.OCO, (leg(Side.BUY, 1, OrderType.MARKET),) * 1)
    assert "two orders" in (await b.place_group(three))[0].reject_reason
    mixed = OrderGroup(
        GroupKind.OCO, (leg(Side.BUY, 1, OrderType.MARKET), leg(Side.BUY, 1, OrderType.MARKET, account=CASH))
    )
    assert "one account" in (await b.place_group(mixed))[0].reject_reason
    with pytest.raises(BrokerError, match="already used"):
        await b.place_group(OrderGroup(GroupKind.OCO, (group.orders[0], leg(Side.SELL, 1, OrderType.MARKET))))
    await b.close()


async def test_an_otoco_exits_work_once_the_trigger_fills() -> None:
    b = await started()
    await push(b, "MES1!", "6800.00", "6800.25", last="6800.00")
    group = OrderGroup(
        GroupKind.OTOCO,
        (
            leg(Side.BUY, 2, OrderType.LIMIT, limit_price="6799.00"),
            leg(Side.SELL, 2, OrderType.LIMIT, limit_price="6805.00"),
            leg(Side.SELL, 2, OrderType.STOP, stop_price="6795.00"),
        ),
    )
    trigger, tp, sl = await b.place_group(group)
    assert (trigger.status, tp.status, sl.status) == (OrderStatus.WORKING, OrderStatus.PENDING, OrderStatus.PENDING)
    assert (tp.role, sl.role, tp.parent_id) == (OrderRole.TAKE_PROFIT, OrderRole.STOP_LOSS, trigger.order_id)
    moved = await b.modify(FUT, tp.order_id, limit_price=D("6806.00"))  # a waiting exit can change
    assert moved.limit_price == D("6806.00") and moved.status is OrderStatus.PENDING
    await push(b, "MES1!", "6798.75", "6799.00", last="6799.00")
    now = {o.order_id: o for o in await b.orders()}
    assert now[trigger.order_id].status is OrderStatus.FILLED
    assert now[tp.order_id].status is now[sl.order_id].status is OrderStatus.WORKING
    await push(b, "MES1!", "6794.75", "6795.00", last="6795.00")
    now = {o.order_id: o for o in await b.orders()}
    assert now[sl.order_id].status is OrderStatus.FILLED and now[tp.order_id].status is OrderStatus.CANCELLED
    assert await b.positions(FUT) == []
    await b.close()


@pytest.mark.parametrize(
    ("exits", "needle"),
    [
        (
            (
                leg(Side.BUY, 2, OrderType.LIMIT, limit_price="6805.00"),
                leg(Side.SELL, 2, OrderType.STOP, stop_price="6795.00"),
            ),
            "other side of its trigger",
        ),
        (
            (
                leg(Side.SELL, 1, OrderType.LIMIT, limit_price="6805.00"),
                leg(Side.SELL, 2, OrderType.STOP, stop_price="6795.00"),
            ),
            "trigger's quantity",
        ),
        (
            (
                leg(Side.SELL, 2, OrderType.LIMIT, limit_price="6805.00"),
                leg(Side.SELL, 2, OrderType.LIMIT, limit_price="6806.00"),
            ),
            "a take-profit (limit) and a stop",
        ),
        (
            (
                leg(Side.SELL, 2, OrderType.LIMIT, limit_price="6795.00"),
                leg(Side.SELL, 2, OrderType.STOP, stop_price="6790.00"),
            ),
            "take-profit 6795.00 must be above the trigger's 6799.00",
        ),
        (
            (
                leg(Side.SELL, 2, OrderType.LIMIT, limit_price="6805.00"),
                leg(Side.SELL, 2, OrderType.TRAILING_STOP, trail_amount="0.10"),
            ),
            "not a whole number of ticks",
        ),
    ],
)
async def test_a_bad_otoco_is_refused_whole(exits: tuple[OrderRequest, OrderRequest], needle: str) -> None:
    b = await started()
    await push(b, "MES1!", "6800.00", "6800.25", last="6800.00")
    group = OrderGroup(GroupKind.OTOCO, (leg(Side.BUY, 2, OrderType.LIMIT, limit_price="6799.00"), *exits))
    refused = await b.place_group(group)
    assert [o.status for o in refused] == [OrderStatus.REJECTED] * 3
    assert needle in refused[0].reject_reason, refused[0].reject_reason
    await b.close()


# --------------------------------------------------------------------------- trailing stops


async def test_a_trailing_stop_trails_survives_a_restart_and_refuses_a_stop_price(tmp_path: Path) -> None:
    store = tmp_path / "paper.sqlite3"
    clock = FakeClock()
    b = await started(clock, store_path=store)
    await push(b, "MES1!", "6800.00", "6800.25", last="6800.00")
    await b.place(leg(Side.BUY, 1, OrderType.MARKET))
    trail = await b.place(leg(Side.SELL, 1, OrderType.TRAILING_STOP, trail_amount="2.00", tif=TimeInForce.GTC))
    assert trail.status is OrderStatus.WORKING and trail.stop_price == D("6798.00")
    await push(b, "MES1!", "6803.00", "6803.25", last="6803.00")
    with pytest.raises(ModifyRejected, match="trailing stop"):
        await b.modify(FUT, trail.order_id, stop_price=D("6790.00"))
    await b.close()
    again = await started(clock, store_path=store)
    [o] = [x for x in await again.orders() if x.order_id == trail.order_id]
    assert o.stop_price == D("6801.00") and o.trail_amount == D("2.00")
    await push(again, "MES1!", "6802.00", "6802.25", last="6802.00")  # below the best: no move
    await push(again, "MES1!", "6804.00", "6804.25", last="6804.00")
    [o] = [x for x in await again.orders() if x.order_id == trail.order_id]
    assert o.stop_price == D("6802.00")
    await push(again, "MES1!", "6801.75", "6802.00", last="6801.75")
    [o] = [x for x in await again.orders() if x.order_id == trail.order_id]
    assert o.status is OrderStatus.FILLED and o.avg_fill_price == D("6801.75")
    await again.close()


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({}, "needs a trail amount"),
        ({"trail_amount": "0"}, "positive"),
        ({"trail_amount": "1.10"}, "whole number of ticks"),
        ({"trail_amount": "1.00", "stop_price": "6790.00"}, "takes no stop price"),
    ],
)
async def test_bad_trailing_stops(kw: dict[str, str], needle: str) -> None:
    b = await started()
    await push(b, "MES1!", "6800.00", "6800.25", last="6800.00")
    o = await b.place(leg(Side.SELL, 1, OrderType.TRAILING_STOP, **kw))
    assert o.status is OrderStatus.REJECTED and needle in o.reject_reason, o.reject_reason
    await b.close()


async def test_working_combos_and_waiting_exits_survive_a_restart(tmp_path: Path) -> None:
    store = tmp_path / "paper.sqlite3"
    clock = FakeClock()
    b = await started(clock, store_path=store)
    await market(b)
    spread = await b.place(combo(Side.BUY, 1, [(C270, Side.BUY, 1), (C280, Side.SELL, 1)], limit_price="4.50"))
    await push(b, "MES1!", "6800.00", "6800.25", last="6800.00")
    trigger, tp, sl = await b.place_group(
        OrderGroup(
            GroupKind.OTOCO,
            (
                leg(Side.BUY, 1, OrderType.LIMIT, limit_price="6799.00"),
                leg(Side.SELL, 1, OrderType.LIMIT, limit_price="6805.00"),
                leg(Side.SELL, 1, OrderType.TRAILING_STOP, trail_amount="3.00"),
            ),
        )
    )
    await b.close()
    again = await started(clock, store_path=store)
    orders = {o.order_id: o for o in await again.orders()}
    assert orders[spread.order_id].status is OrderStatus.WORKING and orders[spread.order_id].legs == spread.legs
    assert orders[tp.order_id].status is OrderStatus.PENDING
    await push(again, C280, "5.50", "5.60")  # natural 10.00 - 5.50 = 4.50
    await push(again, "MES1!", "6798.75", "6799.00", last="6799.00")
    orders = {o.order_id: o for o in await again.orders()}
    assert orders[spread.order_id].status is OrderStatus.FILLED
    assert orders[trigger.order_id].status is OrderStatus.FILLED
    assert orders[sl.order_id].status is OrderStatus.WORKING and orders[sl.order_id].stop_price == D("6795.75")
    await again.close()


async def test_expired_options_settle_at_intrinsic_value_and_their_orders_end() -> None:
    clock = FakeClock()
    b = await started(clock)
    call, put = opt("C", 260).replace(EXP, "251107"), opt("P", 260).replace(EXP, "251107")
    await push(b, "AAPL", "270.00", "270.02", last="270.00")
    await b.place(OrderRequest(CASH, call, Side.BUY, 2))
    await b.place(OrderRequest(CASH, put, Side.BUY, 1))
    held = {p.symbol: p for p in await b.positions(CASH)}
    assert set(held) == {call, put}
    gtc = await b.place(
        OrderRequest(CASH, call, Side.SELL, 2, OrderType.LIMIT, limit_price=D("50.00"), tif=TimeInForce.GTC)
    )
    assert gtc.status is OrderStatus.WORKING
    await push(b, "AAPL", "275.00", "275.02", last="275.00")
    paid = sum(f.price * f.quantity * 100 for f in await b.fills(CASH))
    drain(b)
    for _ in range(7):  # Friday 7 November passes; the trade date turns on the 10th
        clock.next_day()
    await push(b, "AAPL", "280.00", "280.02", last="280.00")
    evs = drain(b)
    settled = [e for e in evs if isinstance(e, Fill)]
    assert [(f.symbol, f.side, f.quantity, f.price, f.order_id) for f in settled] == [
        (call, Side.SELL, 2, D("15.00"), "expiry:2025-11-07"),  # AAPL last at 275.00 when it expired
        (put, Side.SELL, 1, D("0"), "expiry:2025-11-07"),
    ]
    assert await b.positions(CASH) == []
    [ended] = [e for e in evs if isinstance(e, Order) and e.order_id == gtc.order_id]
    assert ended.status is OrderStatus.CANCELLED and "expired on 2025-11-07" in ended.reject_reason
    s = next(s for s in await b.snapshots() if s.account == CASH)
    assert s.balance == D(100000) - paid + D("15.00") * 200
    late = await b.place(OrderRequest(CASH, call, Side.BUY, 1))
    assert late.status is OrderStatus.REJECTED and "expired on 2025-11-07" in late.reject_reason
    await b.close()

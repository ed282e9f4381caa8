"""Tastytrade orders through the engine, on the strict fake: shares, an option spread and futures
to fills, positions and P&L net of Tastytrade's fees; the dry run as the ticket's preview;
replace, cancel and rejects with the vendor's reason; OTOCO natively; 429s and a lost answer
never turned into a second order."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.integration.tastytrade_support import CASH, MARGIN, make_broker, start_engine, start_fake
from tterm.core.client import EngineError
from tterm.core.models import (
    Fill,
    GroupKind,
    OrderGroup,
    OrderLeg,
    OrderRequest,
    OrderSource,
    OrderStatus,
    OrderType,
    Position,
    PositionEffect,
    PriceEffect,
    Side,
)

D = Decimal


@pytest.fixture
async def fake():
    f = await start_fake()
    f.set_quote("AAPL", bid="230.00", ask="230.02", last="230.01")
    f.set_quote("/MESZ6", bid="6650.00", ask="6650.25", last="6650.00")
    yield f
    await f.stop()


@pytest.fixture
async def run(fake, tmp_path):
    broker = make_broker(fake, tmp_path)
    r = await start_engine(broker, broker.master, tmp_path)
    await r.engine.watch(["MESZ6", "AAPL"])
    await r.until(lambda: r.engine.quote("MESZ6") is not None and r.engine.quote("AAPL") is not None, "quotes")
    yield r
    await r.engine.stop()


def req(**kw) -> OrderRequest:
    base = dict(account=MARGIN, symbol="MESZ6", side=Side.BUY, quantity=1, source=OrderSource.TICKET)
    base.update(kw)
    return OrderRequest(**base)


def posts(fake, path: str) -> int:
    return sum(1 for method, p, _ in fake.requests if method == "POST" and p == path)


async def test_shares_fill_at_the_touch_and_the_round_trip_books_its_pnl(run, fake):
    buy = req(symbol="AAPL", quantity=10)
    await run.engine.place(buy)
    await run.until(lambda: run.engine.position(MARGIN, "AAPL").quantity == 10, "the buy")
    fills = [f for f in run.of(Fill) if f.client_order_id == buy.client_order_id]
    assert [(f.quantity, f.price, f.fee) for f in fills] == [(10, D("230.02"), D(0))]
    placed = next(iter(fake.book.orders.values()))
    assert placed.legs[0].action == "Buy to Open" and placed.external_id == buy.client_order_id
    await run.engine.place(req(symbol="AAPL", quantity=10, side=Side.SELL))
    await run.until(lambda: run.engine.position(MARGIN, "AAPL").quantity == 0, "the sale")
    assert list(fake.book.orders.values())[-1].legs[0].action == "Sell to Close"
    assert run.engine.position(MARGIN, "AAPL").realized_pnl == D("-0.20")
    await run.until(
        lambda: any(isinstance(e, Position) and e.symbol == "AAPL" and e.quantity == 0 for e in run.seen),
        "Tastytrade's own position, flat",
    )


async def test_futures_fill_with_tastytrades_fees_and_pnl_is_net_of_them(run, fake):
    await run.engine.place(req(quantity=2))
    await run.until(lambda: run.engine.position(MARGIN, "MESZ6").quantity == 2, "the buy")
    assert [f.fee for f in run.of(Fill)] == [D("2.10")]  # 2 x (0.75 commission + 0.30 clearing)
    assert list(fake.book.orders.values())[-1].legs[0].action == "Buy"  # B6: futures buy and sell
    await run.engine.place(req(quantity=2, side=Side.SELL))
    await run.until(lambda: run.engine.position(MARGIN, "MESZ6").quantity == 0, "the sale")
    # 2 contracts bought at 6650.25 and sold at 6650.00, $5 a point: -2.50, less 4.20 of fees.
    assert run.engine.position(MARGIN, "MESZ6").realized_pnl == D("-6.70")
    snap = run.engine.balance(MARGIN)
    assert snap is not None and snap.balance == D("100000") - D("6.70")


async def test_an_option_vertical_opens_as_one_order_and_closes_with_to_close_legs(run, fake):
    chain = await run.engine.option_chain("AAPL")
    mid = len(chain.rows) // 2
    low, high = chain.rows[mid].call, chain.rows[mid + 1].call
    assert low is not None and high is not None
    legs = (
        OrderLeg(symbol=low.symbol, side=Side.BUY, effect=PositionEffect.OPEN),
        OrderLeg(symbol=high.symbol, side=Side.SELL, effect=PositionEffect.OPEN),
    )
    opening = req(account=MARGIN, symbol="", legs=legs, order_type=OrderType.MARKET)
    order = await run.engine.place(opening)
    assert order.status is not OrderStatus.REJECTED, order.reject_reason
    await run.until(lambda: run.engine.position(MARGIN, low.symbol).quantity == 1, "the long call")
    assert run.engine.position(MARGIN, high.symbol).quantity == -1
    sent = list(fake.book.orders.values())[-1]
    assert [leg.action for leg in sent.legs] == ["Buy to Open", "Sell to Open"]
    fees = {f.symbol: f.fee for f in run.of(Fill) if f.client_order_id == opening.client_order_id}
    assert fees == {low.symbol: D("1.10"), high.symbol: D("1.10")}  # $1 to open + $0.10 clearing a contract
    done = run.engine.order_by_client_id(MARGIN, opening.client_order_id)
    assert done is not None and done.status is OrderStatus.FILLED and len(done.legs) == 2
    closing = req(
        symbol="",
        side=Side.SELL,
        legs=(OrderLeg(symbol=low.symbol, side=Side.SELL), OrderLeg(symbol=high.symbol, side=Side.BUY)),
        order_type=OrderType.LIMIT,
        limit_price=D("0.01"),
        price_effect=PriceEffect.CREDIT,
    )
    await run.engine.place(closing)
    await run.until(lambda: run.engine.position(MARGIN, low.symbol).quantity == 0, "the close")
    sent = list(fake.book.orders.values())[-1]
    assert [leg.action for leg in sent.legs] == ["Sell to Close", "Buy to Close"]
    assert sent.price_effect == "Credit" and sent.price == D("0.01")


async def test_the_dry_run_is_the_tickets_preview_and_places_nothing(run, fake):
    preview = await run.engine.broker_preview(req(order_type=OrderType.LIMIT, limit_price=D("6640.00")))
    assert preview.accepted and preview.commission == D("1.05") and preview.buying_power_after is not None
    assert not fake.book.orders
    too_big = await run.engine.broker_preview(req(quantity=200))
    assert not too_big.accepted and any("buying power" in r for r in too_big.rejects)
    assert not fake.book.orders


async def test_replace_keeps_the_client_order_id_and_the_quantity_cannot_change(run, fake):
    limit = req(order_type=OrderType.LIMIT, limit_price=D("6640.00"))
    first = await run.engine.place(limit)
    await run.until(lambda: (o := run.engine.order_by_client_id(MARGIN, limit.client_order_id)) and o.is_open, "live")
    await run.engine.modify(MARGIN, first.order_id, limit_price=D("6639.75"))
    await run.until(
        lambda: (
            (o := run.engine.order_by_client_id(MARGIN, limit.client_order_id)) is not None
            and o.limit_price == D("6639.75")
            and o.order_id != first.order_id
        ),
        "the replacement",
    )
    old = fake.book.orders[int(first.order_id)]
    assert old.status == "Cancelled" and old.replacing is not None
    current = run.engine.order_by_client_id(MARGIN, limit.client_order_id)
    assert current is not None
    changed = await run.broker.modify(MARGIN, current.order_id, quantity=3)
    assert "cannot change an order's quantity" in changed.reject_reason
    await run.engine.cancel(MARGIN, current.order_id)
    await run.until(
        lambda: (
            (o := run.engine.order_by_client_id(MARGIN, limit.client_order_id)) is not None
            and o.status is OrderStatus.CANCELLED
        ),
        "the cancel",
    )


async def test_a_refusal_at_the_door_comes_back_rejected_with_tastytrades_reason(run, fake):
    order = await run.engine.place(req(account=CASH))  # the cash account is not approved for futures
    assert order.status is OrderStatus.REJECTED
    assert "not approved for futures" in order.reject_reason
    assert not fake.book.orders


async def test_an_otoco_group_is_one_complex_order_and_the_take_profit_ends_it(run, fake):
    trigger = req()
    tp = req(side=Side.SELL, order_type=OrderType.LIMIT, limit_price=D("6652.00"), reduce_only=True)
    sl = req(side=Side.SELL, order_type=OrderType.STOP, stop_price=D("6648.00"), reduce_only=True)
    orders = await run.engine.place_group(OrderGroup(kind=GroupKind.OTOCO, orders=(trigger, tp, sl)))
    assert all(o.status is not OrderStatus.REJECTED for o in orders), [o.reject_reason for o in orders]
    assert posts(fake, "/accounts/5WT00001/complex-orders") == 1
    cx = next(iter(fake.book.complexes.values()))
    assert cx.type == "OTOCO" and [o.legs[0].action for o in cx.orders] == ["Sell", "Sell"]
    await run.until(lambda: run.engine.position(MARGIN, "MESZ6").quantity == 1, "the trigger's fill")
    fake.set_quote("/MESZ6", bid="6652.25", ask="6652.50", last="6652.25")
    await run.until(lambda: run.engine.position(MARGIN, "MESZ6").quantity == 0, "the take-profit")
    await run.until(
        lambda: (
            (o := run.engine.order_by_client_id(MARGIN, sl.client_order_id)) is not None
            and o.status is OrderStatus.CANCELLED
        ),
        "the stop to go",
    )


async def test_a_429_on_an_order_is_not_sent_again_and_reads_wait_it_out(run, fake):
    fake.fail_429("/accounts/5WT00001/orders", times=1)
    order = await run.engine.place(req())
    assert order.status is OrderStatus.REJECTED and "rate-limited" in order.reject_reason
    assert not fake.book.orders and posts(fake, "/accounts/5WT00001/orders") == 1
    fake.fail_429("/accounts/5WT00001/positions", times=2)
    await run.broker.sync.resync()
    assert run.broker.rest.rate_limited >= 3


async def test_an_answer_lost_in_flight_is_found_by_its_external_identifier_not_sent_twice(fake, tmp_path):
    broker = make_broker(fake, tmp_path, request_timeout="0.5")
    r = await start_engine(broker, broker.master, tmp_path)
    try:
        fake.slow("/accounts/5WT00001/orders", 1.5)
        request = req(order_type=OrderType.LIMIT, limit_price=D("6640.00"))
        order = await r.engine.place(request)
        assert order.status is not OrderStatus.REJECTED, order.reject_reason
        assert order.client_order_id == request.client_order_id and order.order_id.isdigit()
        assert posts(fake, "/accounts/5WT00001/orders") == 1 and len(fake.book.orders) == 1
    finally:
        await r.engine.stop()


async def test_a_preview_of_an_order_tterm_refuses_says_so_and_sends_nothing(run, fake):
    with pytest.raises(EngineError):
        await run.engine.broker_preview(req(account="tt:NOPE"))
    assert not any(p.endswith("dry-run") for _, p, _ in fake.requests)


async def test_with_preview_orders_an_order_the_dry_run_refuses_is_not_sent(fake, tmp_path):
    broker = make_broker(fake, tmp_path, preview_orders="true")
    r = await start_engine(broker, broker.master, tmp_path)
    try:
        refused = await r.engine.place(req(quantity=200))
        assert refused.status is OrderStatus.REJECTED and "dry run refuses it" in refused.reject_reason
        assert "buying power" in refused.reject_reason and not fake.book.orders
        assert posts(fake, "/accounts/5WT00001/orders/dry-run") == 1
        taken = await r.engine.place(req())
        assert taken.status is not OrderStatus.REJECTED and len(fake.book.orders) == 1
    finally:
        await r.engine.stop()

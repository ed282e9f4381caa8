"""Bus: fan-out, coalescing of quotes only, slow subscribers never block the feed."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from tterm.core.bus import Bus
from tterm.core.models import Fill, Order, OrderStatus, OrderType, Quote, Side


def q(symbol: str, last: int) -> Quote:
    return Quote(symbol=symbol, last=Decimal(last))


def order(n: int, status: OrderStatus = OrderStatus.WORKING) -> Order:
    return Order(
        order_id=str(n),
        client_order_id=f"c{n}",
        account="paper:A",
        symbol="MESZ6",
        side=Side.BUY,
        quantity=1,
        order_type=OrderType.LIMIT,
        status=status,
        limit_price=Decimal(5000),
    )


def test_every_subscriber_gets_every_event():
    bus = Bus()
    a, b = bus.subscribe("a"), bus.subscribe("b")
    bus.publish(order(1))
    bus.publish(q("MESZ6", 1))
    assert [type(e) for e in a.drain()] == [Order, Quote]
    assert [type(e) for e in b.drain()] == [Order, Quote]


def test_quotes_coalesce_to_latest_at_first_position_orders_never():
    bus = Bus()
    sub = bus.subscribe("ui")
    bus.publish(q("MESZ6", 1))
    bus.publish(order(1, OrderStatus.PENDING))
    bus.publish(q("MESZ6", 2))
    bus.publish(q("ESZ6", 10))
    bus.publish(order(1, OrderStatus.WORKING))
    bus.publish(q("MESZ6", 3))
    got = sub.drain()
    assert [(type(e).__name__, getattr(e, "last", None) or getattr(e, "status", None)) for e in got] == [
        ("Quote", Decimal(3)),
        ("Order", OrderStatus.PENDING),
        ("Quote", Decimal(10)),
        ("Order", OrderStatus.WORKING),
    ]
    assert sub.coalesced == 2


def test_non_coalescing_subscriber_sees_every_quote():
    bus = Bus()
    sub = bus.subscribe("recorder", coalesce=False)
    for i in range(5):
        bus.publish(q("MESZ6", i))
    assert [e.last for e in sub.drain()] == [Decimal(i) for i in range(5)]


def test_wants_filters_event_types():
    bus = Bus()
    sub = bus.subscribe("fills-only", wants=(Fill, Order))
    bus.publish(q("MESZ6", 1))
    bus.publish(order(1))
    assert [type(e) for e in sub.drain()] == [Order]


async def test_slow_subscriber_never_blocks_the_feed_or_the_fast_one():
    bus = Bus()
    slow = bus.subscribe("slow")
    fast = bus.subscribe("fast")
    seen: list[Decimal] = []
    done = asyncio.Event()

    async def consume():
        async for ev in fast:
            seen.append(ev.last)
            if ev.last == Decimal(9999):
                done.set()
                return

    task = asyncio.create_task(consume())
    for i in range(10_000):  # publish never awaits: the loop never yields in here
        bus.publish(q("MESZ6", i))
        if i % 1000 == 0:
            await asyncio.sleep(0)
    await asyncio.wait_for(done.wait(), 5)
    await task
    assert seen[-1] == Decimal(9999)
    # The slow one never read anything; it holds exactly one (the latest) quote, not 10,000.
    assert slow.backlog == 1
    assert slow.drain()[0].last == Decimal(9999)


async def test_overflowed_subscriber_is_closed_and_flagged():
    bus = Bus()
    sub = bus.subscribe("remote", max_backlog=10)
    for i in range(11):
        bus.publish(order(i))
    assert sub.overflowed and sub.closed
    assert sub not in bus.subscribers
    # Queued events stay readable, then the stream ends.
    assert len(sub.drain()) == 11
    try:
        await sub.get()
    except EOFError:
        pass
    else:  # pragma: no cover
        raise AssertionError("closed subscription must end")


async def test_get_wakes_on_publish_and_close_ends_iteration():
    bus = Bus()
    sub = bus.subscribe()
    getter = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    bus.publish(order(7))
    assert (await asyncio.wait_for(getter, 1)).order_id == "7"
    it = asyncio.create_task(anext(aiter(sub), None))
    await asyncio.sleep(0)
    sub.close()
    assert await asyncio.wait_for(it, 1) is None


@given(st.lists(st.tuples(st.sampled_from(["q", "o"]), st.sampled_from(["A", "B", "C"])), max_size=60))
def test_law_ordered_events_complete_and_in_order_latest_quote_wins(events):
    bus = Bus()
    sub = bus.subscribe()
    orders_sent = []
    latest: dict[str, int] = {}
    for n, (kind, sym) in enumerate(events):
        if kind == "o":
            bus.publish(order(n))
            orders_sent.append(str(n))
        else:
            bus.publish(q(sym, n))
            latest[sym] = n
    got = sub.drain()
    assert [e.order_id for e in got if isinstance(e, Order)] == orders_sent
    quotes = {e.symbol: int(e.last) for e in got if isinstance(e, Quote)}
    assert quotes == latest
    assert len([e for e in got if isinstance(e, Quote)]) == len(latest)

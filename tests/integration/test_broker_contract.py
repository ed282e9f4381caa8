"""The broker contract suite: one set of test bodies, run against every broker (its rig).

Each body drives the real adapter on its fake (or the paper market) through the engine, the way
the terminal, the palette and webhooks do. What a broker does not claim in its Capabilities must
be refused cleanly ("not supported by <broker>: <verb>") or emulated by the engine (OCO, brackets);
what it claims must work. A new adapter joins by adding a rig to ``contract_rigs.RIGS``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.integration.contract_rigs import NOW, RIGS, Rig
from tterm.core.client import EngineError
from tterm.core.clock import CmeClock, default_calendar
from tterm.core.engine import Engine
from tterm.core.journal import Journal
from tterm.core.models import (
    Bar,
    Bracket,
    ConnectionState,
    ConnectionStatus,
    Depth,
    Fill,
    GroupKind,
    Order,
    OrderGroup,
    OrderLeg,
    OrderRequest,
    OrderSource,
    OrderStatus,
    OrderType,
    Position,
    PositionEffect,
    PriceEffect,
    Quote,
    Side,
    Timeframe,
    Trade,
)

D = Decimal
BID, ASK = D("6650.00"), D("6650.25")


@pytest.fixture(params=sorted(RIGS))
async def rig(request, tmp_path) -> AsyncIterator[Rig]:
    r = RIGS[request.param](tmp_path)
    await r.start()
    yield r
    await r.stop()


class Running:
    """An engine on one rig's broker, with a recorder of everything it published."""

    def __init__(self, rig: Rig, engine: Engine) -> None:
        self.rig = rig
        self.engine = engine
        self.sub = engine.events("contract")
        self.seen: list[Any] = []

    def drain(self) -> list[Any]:
        self.seen.extend(self.sub.drain())
        return self.seen

    async def until(self, pred: Callable[[], bool], what: str, within: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            await self.engine.settle()
            await self.engine.emulator.settle()
            self.drain()
            if pred():
                return
            if loop.time() > deadline:
                raise AssertionError(f"{self.rig.name}: timed out waiting for {what}")
            await asyncio.sleep(0.01)

    def order(self, client_order_id: str) -> Order | None:
        return self.engine.order_by_client_id(self.rig.account, client_order_id)

    def req(self, **kw: Any) -> OrderRequest:
        base: dict[str, Any] = dict(
            account=self.rig.account, symbol=self.rig.symbol, side=Side.BUY, quantity=1, source=OrderSource.TICKET
        )
        base.update(kw)
        return OrderRequest(**base)

    def held(self) -> int:
        return self.engine.position(self.rig.account, self.rig.symbol).quantity


@pytest.fixture
async def run(rig: Rig, tmp_path) -> AsyncIterator[Running]:
    clock = CmeClock(default_calendar(), now=lambda: NOW)
    engine = Engine(
        brokers=[rig.broker], instruments=rig.master, journal=Journal(tmp_path / "journal.sqlite3"), clock=clock
    )
    running = Running(rig, engine)
    await engine.start()
    await engine.watch([rig.symbol])
    await rig.set_market(BID, ASK)
    await running.until(lambda: engine.quote(rig.symbol) is not None, "the first quote")
    yield running
    await engine.stop()


# --------------------------------------------------------------------------- connect, accounts, quotes


async def test_connect_loads_accounts_and_reports_connected(run: Running) -> None:
    snap = await run.engine.snapshot()
    assert run.rig.account in {a.id for a in snap.accounts}
    assert all(a.broker == run.rig.broker.name for a in snap.accounts)
    states = {c.broker: c.state for c in snap.connections}
    assert states.get(run.rig.broker.name) is ConnectionState.CONNECTED
    assert any(b.account == run.rig.account for b in snap.balances)


async def test_quotes_follow_the_market(run: Running) -> None:
    await run.rig.set_market(BID + run.rig.tick, ASK + run.rig.tick)
    await run.until(
        lambda: (q := run.engine.quote(run.rig.symbol)) is not None and q.bid == BID + run.rig.tick,
        "the moved quote",
    )
    quotes = [e for e in run.seen if isinstance(e, Quote) and e.symbol == run.rig.symbol]
    assert quotes and all(q.bid is None or q.ask is None or q.bid <= q.ask for q in quotes)


# --------------------------------------------------------------------------- orders


def _claimed(rig: Rig, *types: OrderType) -> list[OrderType]:
    return [t for t in types if t in rig.broker.capabilities.order_types]


async def test_market_order_fills_and_the_stream_is_order_then_fill_then_position(run: Running) -> None:
    request = run.req(quantity=2)
    order = await run.engine.place(request)
    assert order.status is not OrderStatus.REJECTED, order.reject_reason
    await run.until(lambda: run.held() == 2, "the fill to reach the position")
    mine = [e for e in run.seen if getattr(e, "client_order_id", None) == request.client_order_id]
    first_fill = next(i for i, e in enumerate(mine) if isinstance(e, Fill))
    assert any(isinstance(e, Order) for e in mine[:first_fill]), "an order state comes before its fill"
    fill_at = run.seen.index(mine[first_fill])
    assert any(isinstance(e, Position) and e.symbol == run.rig.symbol for e in run.seen[fill_at:]), (
        "a position follows the fill"
    )
    fills = [e for e in run.seen if isinstance(e, Fill) and e.client_order_id == request.client_order_id]
    assert sum(f.quantity for f in fills) == 2 and all(f.price == ASK for f in fills)


@pytest.mark.parametrize("otype", [OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP])
async def test_every_claimed_order_type_works_modifies_and_cancels(run: Running, otype: OrderType) -> None:
    if otype not in run.rig.broker.capabilities.order_types:
        refused = await run.engine.place(run.req(side=Side.SELL, order_type=otype, trail_amount=D("2.00")))
        assert (
            refused.reject_reason
            == f"broker {run.rig.broker.name} does not take {otype.value.replace('_', '-')} orders"
        )
        return
    tick = run.rig.tick
    fields: dict[str, Any] = {
        OrderType.LIMIT: {"side": Side.BUY, "limit_price": BID - 8 * tick},
        OrderType.STOP: {"side": Side.SELL, "stop_price": BID - 8 * tick},
        OrderType.STOP_LIMIT: {"side": Side.SELL, "stop_price": BID - 8 * tick, "limit_price": BID - 10 * tick},
        OrderType.TRAILING_STOP: {"side": Side.SELL, "trail_amount": 8 * tick},
    }[otype]
    request = run.req(order_type=otype, **fields)
    order = await run.engine.place(request)
    assert order.status in (OrderStatus.WORKING, OrderStatus.PENDING), order.reject_reason
    await run.until(lambda: (o := run.order(request.client_order_id)) is not None and o.is_open, "a working order")
    working = run.order(request.client_order_id)
    assert working is not None
    if otype in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        new_limit = (working.limit_price or BID) - tick
        await run.engine.modify(run.rig.account, working.order_id, limit_price=new_limit)
        await run.until(
            lambda: (o := run.order(request.client_order_id)) is not None and o.limit_price == new_limit,
            "the modified limit",
        )
    if otype is OrderType.STOP:
        new_stop = BID - 9 * tick
        await run.engine.modify(run.rig.account, working.order_id, stop_price=new_stop)
        await run.until(
            lambda: (o := run.order(request.client_order_id)) is not None and o.stop_price == new_stop,
            "the modified stop",
        )
    current = run.order(request.client_order_id)
    assert current is not None
    await run.engine.cancel(run.rig.account, current.order_id)
    await run.until(
        lambda: (o := run.order(request.client_order_id)) is not None and o.status is OrderStatus.CANCELLED,
        "the cancel",
    )


async def test_a_limit_fills_when_the_market_trades_through_it(run: Running) -> None:
    limit = BID - 4 * run.rig.tick
    request = run.req(order_type=OrderType.LIMIT, limit_price=limit)
    await run.engine.place(request)
    await run.until(lambda: (o := run.order(request.client_order_id)) is not None and o.is_open, "a working limit")
    await run.rig.set_market(limit - 2 * run.rig.tick, limit - run.rig.tick)
    await run.until(lambda: run.held() == 1, "the limit fill")
    order = run.order(request.client_order_id)
    assert order is not None and order.status is OrderStatus.FILLED and order.avg_fill_price is not None
    assert order.avg_fill_price <= limit


async def test_a_bracket_puts_both_exits_to_work_and_one_cancels_the_other(run: Running) -> None:
    request = run.req(bracket=Bracket(take_profit_ticks=8, stop_loss_ticks=8))
    entry = await run.engine.place(request)
    assert entry.status is not OrderStatus.REJECTED, entry.reject_reason
    await run.until(lambda: run.held() == 1, "the entry fill")

    def exits() -> list[Order]:
        return [
            o for o in run.engine.open_orders(run.rig.account) if o.symbol == run.rig.symbol and o.side is Side.SELL
        ]

    await run.until(lambda: len(exits()) == 2 and all(not o.order_id.startswith("held-") for o in exits()), "two exits")
    prices = sorted((o.limit_price or o.stop_price) for o in exits())  # type: ignore[type-var]
    assert prices == [ASK - 8 * run.rig.tick, ASK + 8 * run.rig.tick]
    target = ASK + 8 * run.rig.tick
    await run.rig.set_market(target + run.rig.tick, target + 2 * run.rig.tick)
    await run.until(lambda: run.held() == 0 and not exits(), "the take-profit to fill and the stop to go")


async def test_an_oco_pair_works_natively_or_emulated(run: Running) -> None:
    await run.engine.place(run.req(quantity=1))
    await run.until(lambda: run.held() == 1, "the position to protect")
    tick = run.rig.tick
    tp = run.req(side=Side.SELL, order_type=OrderType.LIMIT, limit_price=ASK + 6 * tick, reduce_only=True)
    sl = run.req(side=Side.SELL, order_type=OrderType.STOP, stop_price=BID - 6 * tick, reduce_only=True)
    orders = await run.engine.place_group(OrderGroup(kind=GroupKind.OCO, orders=(tp, sl)))
    assert all(o.status is not OrderStatus.REJECTED for o in orders), [o.reject_reason for o in orders]
    await run.rig.set_market(BID - 8 * tick, BID - 7 * tick)  # through the stop
    await run.until(lambda: run.held() == 0, "the stop to fill")
    await run.until(
        lambda: (o := run.order(tp.client_order_id)) is not None and o.status is OrderStatus.CANCELLED,
        "the take-profit to be cancelled",
    )


async def test_flatten_cancels_working_orders_and_closes_the_position(run: Running) -> None:
    await run.engine.place(run.req(quantity=3))
    resting = run.req(order_type=OrderType.LIMIT, limit_price=BID - 20 * run.rig.tick)
    await run.engine.place(resting)
    await run.until(lambda: run.held() == 3, "the position")
    await run.engine.flatten(run.rig.account)
    await run.until(lambda: run.held() == 0, "the flatten")
    await run.until(
        lambda: (o := run.order(resting.client_order_id)) is not None and o.status is OrderStatus.CANCELLED,
        "the resting order to be cancelled",
    )


async def test_a_broker_reject_comes_back_with_its_reason(run: Running) -> None:
    request, expect = run.rig.provoke_reject()
    order = await run.engine.place(request)
    await run.until(lambda: (run.order(request.client_order_id) or order).status is OrderStatus.REJECTED, "the reject")
    final = run.order(request.client_order_id) or order
    assert expect in final.reject_reason.lower(), final.reject_reason
    assert not [o for o in run.engine.open_orders(request.account) if o.client_order_id == request.client_order_id]


async def test_reconnect_resubscribes_and_resyncs(run: Running) -> None:
    if not run.rig.has_connection:
        pytest.skip(f"{run.rig.name} has no network connection to drop")
    await run.engine.place(run.req(quantity=1))
    await run.until(lambda: run.held() == 1, "the position")
    await run.rig.drop()
    name = run.rig.broker.name
    await run.until(
        lambda: any(
            isinstance(e, ConnectionStatus) and e.broker == name and e.state is not ConnectionState.CONNECTED
            for e in run.seen
        ),
        "the drop to show",
    )
    await run.until(lambda: run.rig.broker.connection_state is ConnectionState.CONNECTED, "the reconnect", within=10)
    await run.rig.set_market(BID + 3 * run.rig.tick, ASK + 3 * run.rig.tick)
    await run.until(
        lambda: (q := run.engine.quote(run.rig.symbol)) is not None and q.bid == BID + 3 * run.rig.tick,
        "quotes after the reconnect",
    )
    assert run.held() == 1  # nothing lost or doubled by the resync


# --------------------------------------------------------------------------- capability-gated verbs


async def test_bars_answer_or_refuse(run: Running) -> None:
    caps = run.rig.broker.capabilities
    start = NOW - timedelta(hours=2)
    if not caps.bars:
        with pytest.raises(EngineError, match=f"^not supported by {run.rig.broker.name}: bars$"):
            await run.engine.bars(run.rig.symbol, Timeframe.M1, start)
        return
    bars = await run.engine.bars(run.rig.symbol, Timeframe.M1, start, NOW)
    assert bars and all(isinstance(b, Bar) and b.seconds == 60 for b in bars)
    assert [b.start for b in bars] == sorted(b.start for b in bars)
    assert all(b.low <= min(b.open, b.close) and b.high >= max(b.open, b.close) for b in bars)


async def test_depth_and_trades_answer_or_refuse(run: Running) -> None:
    caps = run.rig.broker.capabilities
    name = run.rig.broker.name
    for kind, has, cls in (("depth", caps.depth, Depth), ("trades", caps.trades, Trade)):
        subscribe = getattr(run.engine, f"subscribe_{kind}")
        if not has:
            with pytest.raises(EngineError, match=f"^not supported by {name}: {kind}$"):
                await subscribe([run.rig.symbol])
            continue
        await subscribe([run.rig.symbol])
        await run.rig.set_market(BID - run.rig.tick, ASK - run.rig.tick)
        if kind == "trades":
            await run.engine.place(run.req(quantity=1))  # our own fill prints on the tape
        await run.until(lambda cls=cls: any(isinstance(e, cls) for e in run.seen), f"a {cls.__name__} event")
        if cls is Depth:
            d = next(e for e in reversed(run.seen) if isinstance(e, Depth))
            assert d.bids and d.asks and d.bids[0].price < d.asks[0].price
            assert [lv.price for lv in d.bids] == sorted((lv.price for lv in d.bids), reverse=True)


async def test_option_chains_and_spreads_answer_or_refuse(run: Running) -> None:
    caps = run.rig.broker.capabilities
    name = run.rig.broker.name
    if not caps.option_chain:
        with pytest.raises(EngineError, match=f"^not supported by {name}: option chains$"):
            await run.engine.option_chain("AAPL")
        return
    chain = await run.engine.option_chain("AAPL")
    assert chain.rows and chain.expiry in chain.expiries
    strikes = [r.strike for r in chain.rows]
    assert strikes == sorted(strikes)
    if not caps.multi_leg:
        return
    if chain.underlying_price is not None:
        await run.rig.set_equity("AAPL", chain.underlying_price)
    mid = len(chain.rows) // 2
    low, high = chain.rows[mid], chain.rows[mid + 1]
    assert low.call is not None and high.call is not None
    cash = next(a.id for a in (await run.engine.snapshot()).accounts if a.id != run.rig.account)
    vertical = OrderRequest(
        account=cash,
        symbol="",
        side=Side.BUY,
        quantity=1,
        order_type=OrderType.MARKET,
        legs=(
            OrderLeg(symbol=low.call.symbol, side=Side.BUY, effect=PositionEffect.OPEN),
            OrderLeg(symbol=high.call.symbol, side=Side.SELL, effect=PositionEffect.OPEN),
        ),
        source=OrderSource.TICKET,
    )
    order = await run.engine.place(vertical)
    assert order.status is not OrderStatus.REJECTED, order.reject_reason
    await run.until(lambda: run.engine.position(cash, low.call.symbol).quantity == 1, "the long leg")
    assert run.engine.position(cash, high.call.symbol).quantity == -1
    priced = vertical.with_changes(
        client_order_id=vertical.client_order_id + "x",
        order_type=OrderType.LIMIT,
        limit_price=D("0.01"),
        price_effect=PriceEffect.DEBIT,
    )
    assert (await run.engine.place(priced)).status is not OrderStatus.REJECTED


async def test_search_answers_or_refuses_cleanly(run: Running) -> None:
    text = run.rig.symbol[:3]  # MES for MESZ6, MSF for MSFT
    hits = await run.engine.search_instruments(text)
    assert run.rig.symbol in {i.symbol for i in hits}  # the master always answers
    if run.rig.broker.capabilities.search:
        assert await run.rig.broker.search_instruments(text)
    else:
        with pytest.raises(Exception, match=f"not supported by {run.rig.broker.name}: instrument search"):
            await run.rig.broker.search_instruments(text)

"""The paper broker has no connection to hurt; its fault is a restart of tterm (engine and paper
broker rebuilt on the same state file and journal) at a seeded random point of an order's life:
before it, while it rests (the market then crosses it in the new process), or after it fills.
Properties: every order is still known after the restart, at most one order per client order id,
the engine's position equals the paper book's own, and the journal holds every step. (A kill -9
of the hub mid-burst is tests/integration/test_hub_crash.py.)"""

from __future__ import annotations

import random
import time
from decimal import Decimal
from pathlib import Path

from tests.faults.harness import REPORT, FaultRecord
from tests.integration.contract_rigs import NOW, PaperRig
from tterm.core.clock import CmeClock, default_calendar
from tterm.core.engine import Engine
from tterm.core.journal import Journal
from tterm.core.models import OrderRequest, OrderSource, OrderStatus, OrderType, Quote, Side

BID = Decimal("6650.00")


class Run:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.rig = PaperRig(tmp)
        self.journal = Journal(tmp / "journal.sqlite3")
        self.engine = Engine(
            brokers=[self.rig.broker],
            instruments=self.rig.master,
            journal=self.journal,
            clock=CmeClock(default_calendar(), now=lambda: NOW),
        )

    async def start(self) -> None:
        await self.engine.start()
        await self.engine.watch([self.rig.symbol])

    async def stop(self) -> None:
        await self.engine.stop()
        self.journal.close()

    async def market(self, bid: Decimal) -> None:
        q = Quote(symbol=self.rig.symbol, bid=bid, ask=bid + self.rig.tick, last=bid, bid_size=50, ask_size=50)
        await self.rig.broker.push_quote(q)  # type: ignore[attr-defined]
        await self.engine.settle()

    async def book_position(self) -> int:
        return sum(p.quantity for p in await self.rig.broker.positions(self.rig.account) if p.symbol == self.rig.symbol)


async def test_paper_orders_survive_restarts_at_random_points(tmp_path: Path, fault_seed: str) -> None:
    rng = random.Random(f"{fault_seed}:paper")
    run = Run(tmp_path)
    await run.start()
    placed: list[tuple[str, str, Decimal]] = []
    try:
        for step in range(8):
            point = rng.choice(("before", "working", "filled"))
            side = rng.choice((Side.BUY, Side.SELL))
            tick = run.rig.tick
            await run.market(BID)
            resting = point == "working"
            away = (3 + step) * tick
            if side is Side.BUY:
                price = BID - away if resting else BID + tick + away
            else:
                price = BID + tick + away if resting else BID - away
            request = OrderRequest(
                account=run.rig.account,
                symbol=run.rig.symbol,
                side=side,
                quantity=1,
                source=OrderSource.TICKET,
                order_type=OrderType.LIMIT,
                limit_price=price,
            )
            started = time.monotonic()
            if point == "before":
                await run.stop()
                run = Run(tmp_path)
                await run.start()
            order = await run.engine.place(request)
            placed.append((request.client_order_id, point, price))
            if point in ("working", "filled"):
                await run.stop()
                run = Run(tmp_path)
                await run.start()
            if resting:
                found = run.engine.order_by_client_id(run.rig.account, request.client_order_id)
                assert found is not None and found.status is OrderStatus.WORKING, (step, found)
                await run.market(price - tick if side is Side.BUY else price)
            final = run.engine.order_by_client_id(run.rig.account, request.client_order_id)
            assert final is not None and final.status is OrderStatus.FILLED, (step, point, order, final)
            # The order's state can come back with place() before its fill event is pumped.
            await run.engine.settle()
            assert run.engine.position(run.rig.account, run.rig.symbol).quantity == await run.book_position()
            REPORT.append(FaultRecord("paper", "restart", point, True, time.monotonic() - started, "filled"))
        # The whole run, from the last process: every order once, every step journaled.
        orders = await run.rig.broker.orders(run.rig.account)
        for coid, point, _price in placed:
            mine = [o for o in orders if o.client_order_id == coid]
            assert len(mine) == 1 and mine[0].status is OrderStatus.FILLED, (coid, point, mine)
            kinds = {e.kind for e in run.journal.entries(ref=coid)}
            assert {"order_request", "risk_decision", "order_ack", "fill"} <= kinds, (coid, point, kinds)
            fills = run.journal.entries(kind="fill", ref=coid)
            assert len(fills) == 1, (coid, point, "the fill is journaled once, not again on each restart")
        assert run.engine.position(run.rig.account, run.rig.symbol).quantity == await run.book_position()
    finally:
        await run.stop()

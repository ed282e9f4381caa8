"""The fault harness: orders through the real engine while a seeded schedule of faults hits the
broker's fake at chosen points of each order's life, then the properties that must hold.

Each step places one limit order whose price no other step uses (so the fake's orders can be told
apart without the vendor keeping tterm's id), hurts the fake at one point of that order's life:

    before     the fault, then the order
    in_flight  the order request itself meets the fault (429, penalty, slow, lost answer, ...)
    working    the order rests; the fault; the market crosses it while the broker is hurt
    filled     the order fills; then the fault

and waits until the engine agrees with the fake again (recovery): connected, quotes flowing (a new
price reaches the engine), the engine's position equal to the fake's book, and every order the fake
holds known to the engine with the same state. Then, for the whole run: no order lost (every order
the fake holds was seen by the engine; every request answered with an order), none duplicated (at
most one vendor order per request), and the journal holds every step (request, decision, ack or
reject, each fill, the connection changes).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tests.faults.fault_rigs import HEALED_REQUEST_FAULTS, LASTING_FAULTS, REQUEST_FAULTS, FaultRig, VendorOrder
from tterm.core.engine import Engine
from tterm.core.journal import Journal
from tterm.core.models import (
    ConnectionState,
    ConnectionStatus,
    Fill,
    Order,
    OrderRequest,
    OrderSource,
    OrderStatus,
    OrderType,
    Side,
)

POINTS = ("before", "in_flight", "working", "filled")
#: Which points of an order's life each kind of fault can meet.
REQUEST_POINTS = ("in_flight",)
STRIKE_POINTS = ("before", "working", "filled")


@dataclass
class FaultRecord:
    """One injected fault, for the printed summary."""

    target: str
    fault: str
    point: str
    recovered: bool
    seconds: float
    outcome: str


#: Every fault injected in this pytest run (tests/faults/conftest.py prints them at the end).
REPORT: list[FaultRecord] = []


@dataclass
class Intent:
    step: int
    fault: str
    point: str
    request: OrderRequest
    answer: Order | None = None
    error: str = ""


@dataclass
class Recorder:
    """Everything the engine published: orders by id (last state) and fills by id (counted)."""

    orders: dict[str, Order] = field(default_factory=dict)
    fill_counts: dict[str, int] = field(default_factory=dict)
    fills: dict[str, Fill] = field(default_factory=dict)
    connections: list[ConnectionStatus] = field(default_factory=list)

    def take(self, events: list[Any]) -> None:
        for e in events:
            if isinstance(e, Order):
                self.orders[e.order_id] = e
            elif isinstance(e, Fill):
                self.fill_counts[e.fill_id] = self.fill_counts.get(e.fill_id, 0) + 1
                self.fills[e.fill_id] = e
            elif isinstance(e, ConnectionStatus):
                self.connections.append(e)


_STATUS_WORDS = {
    OrderStatus.FILLED: "filled",
    OrderStatus.WORKING: "working",
    OrderStatus.PARTIALLY_FILLED: "working",
    OrderStatus.CANCELLED: "cancelled",
    OrderStatus.REJECTED: "rejected",
    OrderStatus.EXPIRED: "cancelled",
}


class Chaos:
    """Runs the seeded fault schedule on one fault rig through one engine."""

    def __init__(self, frig: FaultRig, engine: Engine, journal: Journal, rng: random.Random, seed: str) -> None:
        self.frig = frig
        self.rig = frig.rig
        self.engine = engine
        self.journal = journal
        self.rng = rng
        self.seed = seed
        self.sub = engine.events("faults")
        self.rec = Recorder()
        self.intents: list[Intent] = []
        self.base = Decimal("6650.00")

    # ------------------------------------------------------------------ waiting

    def _where(self, intent: Intent | None = None) -> str:
        at = f" (step {intent.step}: {intent.fault} at {intent.point})" if intent else ""
        return f"{self.rig.name}, seed {self.seed}{at}"

    async def until(
        self, pred: Callable[[], bool], what: str, within: float = 10.0, intent: Intent | None = None
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            await self.engine.settle()
            self.rec.take(self.sub.drain())
            if pred():
                return
            if loop.time() > deadline:
                raise AssertionError(f"{self._where(intent)}: timed out waiting for {what}; {self.state()}")
            await asyncio.sleep(0.02)

    def state(self) -> str:
        vendor = [(v.order_id, str(v.price), v.status) for v in self.frig.vendor_orders()]
        return (
            f"engine position {self.held()}, fake position {self.frig.vendor_position()}, "
            f"connection {self.rig.broker.connection_state.value}, fake orders {vendor}"
        )

    def held(self) -> int:
        return self.engine.position(self.rig.account, self.rig.symbol).quantity

    async def set_market(self, bid: Decimal) -> None:
        await self.rig.set_market(bid, bid + self.rig.tick)

    async def cross(self, buy: bool, price: Decimal) -> None:
        """Move the market through a resting order at ``price`` (it fills at the fake)."""
        await self.set_market(price - self.rig.tick if buy else price)

    # ------------------------------------------------------------------ the schedule

    def schedule(self, rounds: int) -> list[tuple[str, str]]:
        """Every fault the rig has, at least once, each at a random point it can meet; shuffled."""
        plan: list[tuple[str, str]] = []
        faults = list(self.frig.faults)
        while len(plan) < max(rounds, len(faults)):
            for fault in faults:
                points = list(REQUEST_POINTS if fault in REQUEST_FAULTS else ()) + (
                    list(STRIKE_POINTS) if fault not in REQUEST_FAULTS or fault == "token" else []
                )
                plan.append((fault, self.rng.choice(points)))
        plan = plan[: max(rounds, len(faults))]
        self.rng.shuffle(plan)
        return plan

    async def run(self, rounds: int) -> None:
        await self.set_market(self.base)
        await self.until(lambda: self.engine.quote(self.rig.symbol) is not None, "the first quote")
        for step, (fault, point) in enumerate(self.schedule(rounds)):
            await self.step(step, fault, point)
        self.check_run()

    async def step(self, step: int, fault: str, point: str) -> None:
        tick = self.rig.tick
        side = self.rng.choice((Side.BUY, Side.SELL))
        # Unique per step: 3 + step ticks through (marketable) or away from (resting) the touch.
        away = (3 + step) * tick
        bid, ask = self.base, self.base + tick
        resting = point == "working"
        # A buy rests below the bid or crosses above the ask; a sell the other way round.
        through = (bid - away, ask + away) if side is Side.BUY else (ask + away, bid - away)
        price = through[0] if resting else through[1]
        request = OrderRequest(
            account=self.rig.account,
            symbol=self.rig.symbol,
            side=side,
            quantity=1,
            source=OrderSource.TICKET,
            order_type=OrderType.LIMIT,
            limit_price=price,
        )
        intent = Intent(step, fault, point, request)
        self.intents.append(intent)
        await self.set_market(bid)
        started = time.monotonic()
        if point == "before":
            await self.frig.strike(fault)
        elif point == "in_flight":
            self.frig.arm(fault)
        await self.place(intent)
        if point == "working":
            await self.frig.strike(fault)
            started = time.monotonic()
            await self.cross(side is Side.BUY, price)  # while the broker is hurt
        elif point == "filled":
            await self.until(lambda: self._vendor_done(price), "the fill at the fake", intent=intent)
            await self.frig.strike(fault)
            started = time.monotonic()
        if fault in LASTING_FAULTS:
            await asyncio.sleep(self.frig.silence)
            await self.frig.heal(fault)
        elif fault in HEALED_REQUEST_FAULTS:
            await self.frig.heal(fault)
        recovered, outcome = True, ""
        try:
            await self.recover(intent)
        except AssertionError:
            recovered = False
            raise
        finally:
            answer = intent.answer
            errors = self.journal.entries(kind="error", ref=intent.request.client_order_id)
            outcome = (f"{len(errors)} send error(s), then " if errors else "") + (
                intent.error
                or (
                    f"{answer.status.value}" + (f": {answer.reject_reason}" if answer and answer.reject_reason else "")
                    if answer
                    else "no answer"
                )
            )
            REPORT.append(FaultRecord(self.rig.name, fault, point, recovered, time.monotonic() - started, outcome[:90]))

    async def place(self, intent: Intent) -> None:
        try:
            intent.answer = await asyncio.wait_for(self.engine.place(intent.request), 30)
        except Exception as exc:  # the harness reports it; the property check below decides
            intent.error = f"{type(exc).__name__}: {exc}"

    def _vendor_done(self, price: Decimal) -> bool:
        return any(v.price == price and v.status in ("filled", "rejected") for v in self.frig.vendor_orders())

    # ------------------------------------------------------------------ recovery

    async def recover(self, intent: Intent) -> None:
        await self.until(
            lambda: self.rig.broker.connection_state is ConnectionState.CONNECTED,
            "the broker to be connected again",
            within=15,
            intent=intent,
        )
        # The stream comes back: a new price reaches the engine.
        # A price no earlier step used (below every resting buy's fill point, above no resting sell).
        moved = self.base - (intent.step + 1) * self.rig.tick
        await self.set_market(moved)
        await self.until(
            lambda: (q := self.engine.quote(self.rig.symbol)) is not None and q.bid == moved,
            "a quote after the fault",
            within=15,
            intent=intent,
        )
        # Anything still resting at the fake (a resting order placed during the fault) is crossed.
        for v in self.frig.vendor_orders():
            if v.status == "working" and v.price is not None:
                await self.cross(v.buy, v.price)
        await self.until(lambda: not self._disagreements(), "the engine to agree with the fake", 15, intent)

    def _disagreements(self) -> list[str]:
        out = []
        if self.held() != self.frig.vendor_position():
            out.append(f"position {self.held()} vs the fake's {self.frig.vendor_position()}")
        for v in self.frig.vendor_orders():
            if v.status == "pending":
                out.append(f"fake order {v.order_id} still pending")
                continue
            mine = self.rec.orders.get(v.order_id)
            if mine is None:
                out.append(f"fake order {v.order_id} ({v.status}) never reached the engine")
            elif _STATUS_WORDS.get(mine.status) != v.status:
                out.append(f"order {v.order_id}: engine {mine.status.value}, fake {v.status}")
        open_ids = {o.order_id for o in self.engine.open_orders(self.rig.account) if o.symbol == self.rig.symbol}
        vendor_open = {v.order_id for v in self.frig.vendor_orders() if v.status == "working"}
        if open_ids != vendor_open:
            out.append(f"open orders: engine {sorted(open_ids)}, fake {sorted(vendor_open)}")
        return out

    # ------------------------------------------------------------------ the run's properties

    def check_run(self) -> None:
        where = self._where()
        vendor = self.frig.vendor_orders()
        by_price: dict[Decimal | None, list[VendorOrder]] = {}
        for v in vendor:
            by_price.setdefault(v.price, []).append(v)
        journal_refs = {e.ref for e in self.journal.entries(kind="order_request")}
        for intent in self.intents:
            r = intent.request
            at = f"{where} step {intent.step} ({intent.fault} at {intent.point})"
            # None duplicated: at most one order at the fake per request.
            mine = by_price.get(r.limit_price, [])
            assert len(mine) <= 1, f"{at}: {len(mine)} orders at the fake for one request: {mine}"
            # No order lost: every request got an answer, and a request the fake holds is known.
            assert intent.answer is not None, f"{at}: place() gave no order: {intent.error}"
            if mine:
                assert mine[0].order_id in self.rec.orders, f"{at}: the fake's order never reached the engine"
            else:
                assert intent.answer.status is OrderStatus.REJECTED, (
                    f"{at}: the engine says {intent.answer.status.value} but the fake has no such order"
                )
            # The journal holds every step of it.
            coid = r.client_order_id
            assert coid in journal_refs, f"{at}: no order_request row"
            kinds = {e.kind for e in self.journal.entries(ref=coid)}
            assert "risk_decision" in kinds and kinds & {"order_ack", "order_reject"}, f"{at}: journal has {kinds}"
            if mine and mine[0].status == "filled":
                fills = self.journal.entries(kind="fill", account=r.account)
                got = {e.data.get("order_id") for e in fills}
                assert mine[0].order_id in got, f"{at}: the fill of {mine[0].order_id} is not in the journal"
        # No fill applied twice after a resync (fill ids are the vendor's).
        doubled = {k: n for k, n in self.rec.fill_counts.items() if n > 1}
        assert not doubled, f"{where}: fills published more than once: {doubled}"
        # The final position equals the fake's book.
        assert self.held() == self.frig.vendor_position(), f"{where}: {self.state()}"
        # Every drop and restart shows in the journal's connection rows, and so does the way back.
        rows = self.journal.entries(kind="connection", ref=self.rig.broker.name)
        states = [e.data.get("state") for e in rows]
        if any(i.fault in ("drop", "restart") for i in self.intents):
            assert any(s != ConnectionState.CONNECTED.value for s in states), f"{where}: no drop journaled: {states}"
        assert states and states[-1] == ConnectionState.CONNECTED.value, f"{where}: journal ends {states[-1:]}"

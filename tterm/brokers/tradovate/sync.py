"""Keeping the replica current and emitting what changed, in order.

Snapshots (``user/syncrequest`` replies, or the REST fallback) and ``props`` events go through
one inbox, applied by one task: an event that follows a snapshot on the wire is applied after
it, never before. Each change is mapped to core models (the replica's
:class:`~tterm.brokers.tradovate.replica.View`) and emitted only if it differs from what was
emitted last; a snapshot after a reconnect emits every order, fill, position and balance that
moved while tterm was away (the first snapshot only records them: the engine reads it through
the broker's queries).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from tterm.brokers.tradovate.instruments import TradovateInstruments
from tterm.brokers.tradovate.replica import CommandRejected, Replica, View, by_id
from tterm.brokers.tradovate.rest import NotFound, TradovateRest
from tterm.core.broker import BrokerError
from tterm.core.models import ZERO, BrokerEvent, Notice, Order, Position
from tterm.core.redact import Redactor

log = logging.getLogger(__name__)


class ReplicaSync:
    """Applies snapshots and events to the replica (one task) and emits the core events they mean."""

    def __init__(
        self,
        name: str,
        replica: Replica,
        view: View,
        provider: TradovateInstruments,
        rest: TradovateRest,
        *,
        emit: Callable[[BrokerEvent], None],
        redactor: Redactor,
        timeout: float,
    ) -> None:
        self.name = name
        self._replica = replica
        self._view = view
        self._provider = provider
        self._rest = rest
        self._emit = emit
        self._redactor = redactor
        self._timeout = timeout
        self._inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.changed = asyncio.Event()
        self._synced_once = False
        self._orders: dict[int, tuple[Any, ...]] = {}
        self._fills: set[int] = set()
        self._positions: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._snapshots: dict[str, tuple[Any, ...]] = {}

    # ------------------------------------------------------------------ the inbox

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"{self.name}-apply")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def snapshot_hook(self) -> tuple[Callable[[Any], None], asyncio.Future[None]]:
        """A reply hook that queues a snapshot, and the future that resolves once it is applied."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        return (lambda data: self._inbox.put_nowait(("sync", data, done))), done

    async def apply_snapshot(self, data: Any) -> None:
        """Queue a snapshot read elsewhere (REST) and wait until it is applied."""
        hook, done = self.snapshot_hook()
        hook(data)
        await asyncio.wait_for(done, self._timeout)

    async def wait_until(self, done: Callable[[], bool], wait: float) -> bool:
        """Wait up to ``wait`` seconds until ``done()`` is true after an applied update."""
        if done():
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return done()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)
            if done():
                return True

    def props(self, data: Any) -> None:
        self._inbox.put_nowait(("props", data))

    async def _run(self) -> None:
        while True:
            item = await self._inbox.get()
            kind = item[0]
            try:
                if kind == "sync":
                    await self._apply_sync(item[1])
                    if not item[2].done():
                        item[2].set_result(None)
                elif kind == "props":
                    await self._apply_props(item[1])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("Tradovate %s update could not be applied", kind)
                if kind == "sync" and not item[2].done():
                    item[2].set_exception(BrokerError(f"Tradovate snapshot could not be applied: {exc}"))
                    item[2].exception()
                text = f"a Tradovate {kind} update could not be applied: {self._redactor.scrub(str(exc))}"
                self._emit(Notice(level="error", text=text, source=self.name))
            self.changed.set()
            self.changed = asyncio.Event()

    # ------------------------------------------------------------------ applying

    async def _apply_sync(self, data: Any) -> None:
        if not isinstance(data, dict):
            raise BrokerError("the sync snapshot is not an object")
        if data.get("errorText"):
            raise BrokerError(f"Tradovate refused the sync: {data['errorText']}")
        self._replica.load_snapshot(data)
        for cid in self._replica.referenced_contracts() - set(self._replica.contracts):
            await self._provider.load_contract(cid)
        for contract in list(self._replica.contracts.values()):
            await self._provider.ensure_instrument(contract)
        baseline = not self._synced_once
        self._synced_once = True
        self.publish_all(emit=not baseline)

    async def _apply_props(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        entity = data.get("entity")
        # WebSocketClient.cs (example-api-csharp-trading): ``entity`` is an object or an array.
        for one in entity if isinstance(entity, list) else [entity]:
            if isinstance(one, dict):
                await self._apply_entity(str(data.get("entityType") or ""), str(data.get("eventType") or ""), one)

    async def _apply_entity(self, etype: str, event: str, entity: dict[str, Any]) -> None:
        replica = self._replica
        cid = entity.get("contractId")
        if isinstance(cid, int) and cid not in replica.contracts:
            await self._provider.load_contract(cid)
        oid = entity.get("orderId")
        if etype in ("fill", "orderVersion", "executionReport") and isinstance(oid, int) and oid not in replica.orders:
            with contextlib.suppress(NotFound):
                await self.load_order(oid)
        rejected = replica.apply(etype, event, entity)
        if rejected is not None:
            self._rejected(rejected)
        if etype == "order":
            self.publish_order(entity["id"])
        elif etype in ("orderVersion", "executionReport", "command") and isinstance(oid, int):
            self.publish_order(oid)
        elif etype == "fill":
            self.publish_fill(entity["id"])
            if isinstance(oid, int):
                self.publish_order(oid)
        elif etype == "position":
            self.publish_position(entity)
            self.publish_snapshot(entity.get("accountId"))
        elif etype == "fillPair":
            pos = by_id(replica.positions, entity.get("positionId"))
            if pos is not None:
                self.publish_position(pos)
                self.publish_snapshot(pos.get("accountId"))
        elif etype == "cashBalance":
            self.publish_snapshot(entity.get("accountId"))

    def _rejected(self, rejected: CommandRejected) -> None:
        """A rejection on commandReport: a new order shows it as its reason; a modify or cancel
        that was accepted and then refused is said in a notice."""
        self.publish_order(rejected.order_id)
        if rejected.command != "New":
            order = self._view.order(rejected.order_id)
            what = rejected.command.lower()
            text = (
                f"the {what} of order {rejected.order_id} was rejected by Tradovate ({rejected.status}): "
                f"{rejected.reason}"
            )
            self._emit(Notice(level="warning", text=text, account=order.account if order else "", source=self.name))

    async def load_order(self, order_id: int) -> dict[str, Any]:
        """One order with its versions and fills, read over REST (one the stream has not described)."""
        order = await self._rest.entity_item("order", order_id)
        self._replica.orders[order_id] = order
        for v in await self._rest.entity_deps("orderVersion", order_id):
            self._replica.put_version(v)
        for f in await self._rest.entity_deps("fill", order_id):
            self._replica.put_fill(f)
        cid = order.get("contractId")
        if isinstance(cid, int) and cid not in self._replica.contracts:
            await self._provider.load_contract(cid)
        return order

    # ------------------------------------------------------------------ emitting what changed

    def publish_order(self, oid: int, *, emit: bool = True) -> Order | None:
        order = self._view.order(oid)
        if order is None:
            return None
        state = (order.status, order.quantity, order.filled_quantity, order.limit_price, order.stop_price,
                 order.avg_fill_price, order.reject_reason, order.role, order.client_order_id)  # fmt: skip
        if self._orders.get(oid) != state:
            self._orders[oid] = state
            if emit:
                self._emit(order)
        return order

    def publish_fill(self, fid: int, *, emit: bool = True) -> None:
        if fid in self._fills:
            return
        fill = self._view.fill(fid)
        if fill is None:
            return
        self._fills.add(fid)
        if emit:
            self._emit(fill)

    def publish_position(self, p: Mapping[str, Any], *, emit: bool = True) -> Position | None:
        pos = self._view.position(p)
        if pos is None:
            return None
        key, state = (pos.account, pos.symbol), (pos.quantity, pos.avg_price, pos.realized_pnl)
        if self._positions.get(key) != state:
            self._positions[key] = state
            if emit:
                self._emit(pos)
        return pos

    def publish_snapshot(self, account_id: Any, *, emit: bool = True) -> None:
        snap = self._view.snapshot(account_id) if isinstance(account_id, int) else None
        if snap is None:
            return
        state = (snap.balance, snap.day_realized_pnl, snap.fees_today, snap.start_of_day_balance)
        if self._snapshots.get(snap.account) != state:
            self._snapshots[snap.account] = state
            if emit:
                self._emit(snap)

    def publish_all(self, *, emit: bool) -> None:
        """Every order, fill, position and balance that changed (emitted, or only recorded)."""
        replica = self._replica
        for f in sorted(replica.fills.values(), key=lambda f: (str(f.get("timestamp") or ""), f["id"])):
            self.publish_fill(f["id"], emit=emit)
        for oid in sorted(replica.orders):
            self.publish_order(oid, emit=emit)
        seen = set()
        for p in replica.positions.values():
            pos = self.publish_position(p, emit=emit)
            if pos is not None:
                seen.add((pos.account, pos.symbol))
        # A position that vanished from the snapshot is flat now.
        for key, state in list(self._positions.items()):
            if key not in seen and state[0] != 0:
                self._positions[key] = (0, ZERO, ZERO)
                if emit:
                    self._emit(Position(account=key[0], symbol=key[1], quantity=0))
        for account_id in replica.accounts:
            self.publish_snapshot(account_id, emit=emit)

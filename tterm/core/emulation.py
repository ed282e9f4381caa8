"""OCO, OTOCO and brackets for brokers that lack them: tterm links plain orders itself.

When a broker's :class:`~tterm.core.broker.Capabilities` says it has no native OCO, OTOCO or
brackets, the engine sends plain orders and this emulator keeps the link:

- **OCO**: both orders are sent. When one fills, the other is cancelled; when one fills in part,
  the other shrinks by the same amount, so the pair never closes more than it should.
- **OTOCO** (and a bracket, which is an OTOCO whose exits are priced from the entry's fill): the
  trigger is sent; the exits are *held* by tterm (shown as pending orders, ``emulated``) and sent
  as an OCO pair once the trigger has filled, sized to what it filled. A trigger that ends with
  nothing filled cancels its held exits.

Every step is journaled (kind ``emulation``) and the links are saved in the journal's state, so
a restart picks them up: a pair whose member filled while tterm was down is finished on start.
The emulator reacts to the engine's events synchronously and does its I/O in tasks it owns.

Limits (also in the README): the link lives in tterm, so while tterm is not running nothing
cancels the other side; a broker-side OCO is always preferred where the broker has one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from tterm.core.models import (
    GroupKind,
    Notice,
    NoticeLevel,
    Order,
    OrderGroup,
    OrderRequest,
    OrderRole,
    OrderSource,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)

if TYPE_CHECKING:
    from tterm.core.instruments import InstrumentMaster
    from tterm.core.journal import Journal

log = logging.getLogger(__name__)

STATE_KEY = "engine.emulation"
HELD_PREFIX = "held-"


class EmulationHost(Protocol):
    """What the emulator needs of the engine."""

    journal: Journal
    instruments: InstrumentMaster

    async def place(self, request: OrderRequest) -> Order: ...
    async def place_group(self, group: OrderGroup) -> list[Order]: ...
    async def cancel(self, account: str, order_id: str) -> Order: ...
    async def modify(self, account: str, order_id: str, *, quantity: int | None = None) -> Order: ...
    def ingest(self, event: Any) -> None: ...
    def order_by_client_id(self, account: str, client_order_id: str) -> Order | None: ...
    def native_oco(self, account: str) -> bool: ...


@dataclass(slots=True)
class _Link:
    """One emulated group: its members by client order id, and the exits held back."""

    group_id: str
    kind: GroupKind
    account: str
    members: list[str]
    #: OTOCO exits not sent yet (client order id -> request); brackets have them priced at fill time.
    held: dict[str, OrderRequest] = field(default_factory=dict)
    bracket: dict[str, Any] | None = None
    trigger: str = ""
    #: Per OCO member: filled quantity already mirrored onto the other member.
    mirrored: dict[str, int] = field(default_factory=dict)
    done: bool = False


def request_to_dict(r: OrderRequest) -> dict[str, Any]:
    """The fields of a plain (single-leg, bracket-free) request, as JSON types."""
    return {
        "account": r.account,
        "symbol": r.symbol,
        "side": r.side.value,
        "quantity": r.quantity,
        "order_type": r.order_type.value,
        "limit_price": str(r.limit_price) if r.limit_price is not None else None,
        "stop_price": str(r.stop_price) if r.stop_price is not None else None,
        "trail_amount": str(r.trail_amount) if r.trail_amount is not None else None,
        "tif": r.tif.value,
        "client_order_id": r.client_order_id,
        "source": r.source.value,
        "reduce_only": r.reduce_only,
        "strategy": r.strategy,
    }


def request_from_dict(d: dict[str, Any]) -> OrderRequest:
    def dec(v: Any) -> Decimal | None:
        return Decimal(v) if v is not None else None

    return OrderRequest(
        account=d["account"],
        symbol=d["symbol"],
        side=Side(d["side"]),
        quantity=int(d["quantity"]),
        order_type=OrderType(d["order_type"]),
        limit_price=dec(d.get("limit_price")),
        stop_price=dec(d.get("stop_price")),
        trail_amount=dec(d.get("trail_amount")),
        tif=TimeInForce(d.get("tif", "day")),
        client_order_id=d["client_order_id"],
        source=OrderSource(d.get("source", "api")),
        reduce_only=bool(d.get("reduce_only", False)),
        strategy=d.get("strategy", ""),
    )


class OrderEmulator:
    """Keeps emulated OCO/OTOCO links for one engine (see the module docstring)."""

    def __init__(self, host: EmulationHost) -> None:
        self._host = host
        self._links: dict[str, _Link] = {}
        self._by_member: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ starting a group

    async def start(self, group: OrderGroup) -> list[Order]:
        """Send a prepared group as plain orders and keep the link."""
        if group.kind is GroupKind.OCO:
            return await self._start_oco(group.group_id, list(group.orders))
        trigger, *exits = group.orders
        link = _Link(
            group_id=group.group_id,
            kind=GroupKind.OTOCO,
            account=group.account,
            members=[],
            trigger=trigger.client_order_id,
            held={e.client_order_id: e for e in exits},
        )
        return await self._start_otoco(link, trigger)

    async def start_bracket(self, request: OrderRequest, group_id: str) -> list[Order]:
        """An entry with a bracket, for a broker without brackets: an OTOCO priced at the fill."""
        assert request.bracket is not None
        b = request.bracket
        tp_id, sl_id = request.client_order_id + "tp", request.client_order_id + "sl"
        link = _Link(
            group_id=group_id,
            kind=GroupKind.OTOCO,
            account=request.account,
            members=[],
            trigger=request.client_order_id,
            bracket={
                "take_profit_ticks": b.take_profit_ticks,
                "stop_loss_ticks": b.stop_loss_ticks,
                "take_profit_price": str(b.take_profit_price) if b.take_profit_price is not None else None,
                "stop_loss_price": str(b.stop_loss_price) if b.stop_loss_price is not None else None,
                "tp_id": tp_id if (b.take_profit_ticks or b.take_profit_price) else "",
                "sl_id": sl_id if (b.stop_loss_ticks or b.stop_loss_price) else "",
                "entry": request_to_dict(request.with_changes(bracket=None)),
            },
        )
        return await self._start_otoco(link, request.with_changes(bracket=None))

    async def _start_oco(self, group_id: str, orders: list[OrderRequest]) -> list[Order]:
        account = orders[0].account
        link = _Link(group_id=group_id, kind=GroupKind.OCO, account=account, members=[])
        self._register(link)
        placed: list[Order] = []
        for req in orders:
            order = await self._host.place(req)
            placed.append(order)
            if order.status is OrderStatus.REJECTED:
                # Half a pair is not what was asked for: take back what was sent.
                for sent in placed[:-1]:
                    if sent.is_open:
                        with contextlib.suppress(Exception):
                            placed[placed.index(sent)] = await self._host.cancel(sent.account, sent.order_id)
                self._record(link, f"OCO not linked: {req.describe()} was refused ({order.reject_reason})")
                self._finish(link)
                return placed
            link.members.append(req.client_order_id)
            self._by_member[req.client_order_id] = link.group_id
        self._record(link, "OCO linked by tterm: " + " | ".join(o.describe() for o in orders))
        self._save()
        # A member may have filled before the second was even sent.
        for order in placed:
            self.on_event(self._host.order_by_client_id(order.account, order.client_order_id) or order)
        return placed

    async def _start_otoco(self, link: _Link, trigger: OrderRequest) -> list[Order]:
        self._register(link)
        self._by_member[link.trigger] = link.group_id
        order = await self._host.place(trigger)
        if order.status is OrderStatus.REJECTED:
            self._record(link, f"trigger refused ({order.reject_reason}); exits not sent")
            self._finish(link)
            return [order]
        held = [self._held_order(link, order, cid, req) for cid, req in self._exit_requests(link, None).items()]
        for h in held:
            self._host.ingest(h)
        self._record(link, f"exits held by tterm until {trigger.describe()} fills")
        self._save()
        current = self._host.order_by_client_id(order.account, order.client_order_id) or order
        self.on_event(current)
        return [order, *held]

    # ------------------------------------------------------------------ the engine's events

    def on_event(self, event: Any) -> None:
        """The engine's processor hook: react to order updates of linked orders."""
        if type(event) is not Order:
            return
        gid = self._by_member.get(event.client_order_id)
        if gid is None:
            return
        link = self._links.get(gid)
        if link is None or link.done:
            return
        if link.kind is GroupKind.OTOCO and event.client_order_id == link.trigger:
            if event.status.is_terminal:
                self._spawn(self._trigger_done(link, event))
        elif link.kind is GroupKind.OCO:
            self._oco_update(link, event)

    def _oco_update(self, link: _Link, order: Order) -> None:
        others = [c for c in link.members if c != order.client_order_id]
        filled = order.filled_quantity
        new = filled - link.mirrored.get(order.client_order_id, 0)
        if new > 0:
            link.mirrored[order.client_order_id] = filled
            self._save()
            for cid in others:
                other = self._host.order_by_client_id(link.account, cid)
                if other is None or not other.is_open:
                    continue
                if order.status is OrderStatus.FILLED or other.remaining <= new:
                    self._spawn(self._cancel(link, other, f"its OCO partner {order.order_id} filled"))
                else:
                    self._spawn(self._shrink(link, other, other.quantity - new))
        if order.status is OrderStatus.FILLED or all(
            (o := self._host.order_by_client_id(link.account, c)) is not None and not o.is_open for c in link.members
        ):
            self._finish(link)

    async def _trigger_done(self, link: _Link, trigger: Order) -> None:
        if link.done:
            return
        link.done = True  # one run only, even if the terminal state arrives twice
        exits = self._exit_requests(link, trigger)
        if trigger.filled_quantity <= 0:
            for cid, req in exits.items():
                self._host.ingest(
                    self._held_order(link, trigger, cid, req).evolve(
                        status=OrderStatus.CANCELLED, reject_reason=f"trigger {trigger.status.value}: exit not sent"
                    )
                )
            self._record(link, f"trigger {trigger.order_id} ended {trigger.status.value} unfilled; exits cancelled")
            self._finish(link)
            return
        sized = {cid: req.with_changes(quantity=trigger.filled_quantity) for cid, req in exits.items()}
        for cid, req in sized.items():
            self._host.ingest(
                self._held_order(link, trigger, cid, req).evolve(
                    status=OrderStatus.CANCELLED, reject_reason="sent to the broker (see its own order)"
                )
            )
        self._finish(link)
        reqs = list(sized.values())
        self._record(link, f"trigger {trigger.order_id} filled {trigger.filled_quantity}: sending exits")
        try:
            if len(reqs) == 2:
                await self._host.place_group(OrderGroup(kind=GroupKind.OCO, orders=tuple(reqs)))
            elif reqs:
                await self._host.place(reqs[0])
        except Exception as exc:  # journaled and shown; the position stays as it is
            log.exception("emulated exits failed")
            self._record(link, f"exits could not be sent: {exc}", level="error")

    async def _cancel(self, link: _Link, order: Order, why: str) -> None:
        try:
            await self._host.cancel(order.account, order.order_id)
            self._record(link, f"cancelled {order.order_id}: {why}")
        except Exception as exc:
            self._record(link, f"could not cancel {order.order_id} ({why}): {exc}", level="error")

    async def _shrink(self, link: _Link, order: Order, quantity: int) -> None:
        try:
            await self._host.modify(order.account, order.order_id, quantity=quantity)
            self._record(link, f"reduced {order.order_id} to {quantity}: its OCO partner filled in part")
        except Exception as exc:
            self._record(link, f"could not reduce {order.order_id} to {quantity}: {exc}", level="error")

    # ------------------------------------------------------------------ held exits

    def holds(self, order_id: str) -> bool:
        return order_id.startswith(HELD_PREFIX) and self._held_link(order_id[len(HELD_PREFIX) :]) is not None

    def cancel_held(self, order: Order) -> Order:
        """The user cancelled an exit tterm holds: it will not be sent."""
        cid = order.order_id[len(HELD_PREFIX) :]
        link = self._held_link(cid)
        if link is None:
            return order
        link.held.pop(cid, None)
        if link.bracket is not None:
            for key in ("tp_id", "sl_id"):
                if link.bracket.get(key) == cid:
                    link.bracket[key] = ""
        self._save()
        self._record(link, f"held exit {cid} cancelled by the user")
        cancelled = order.evolve(status=OrderStatus.CANCELLED, reject_reason="cancelled before it was sent")
        self._host.ingest(cancelled)
        return cancelled

    def _held_link(self, cid: str) -> _Link | None:
        for link in self._links.values():
            if link.done:
                continue
            if cid in link.held or (link.bracket is not None and cid in (link.bracket["tp_id"], link.bracket["sl_id"])):
                return link
        return None

    def _exit_requests(self, link: _Link, trigger: Order | None) -> dict[str, OrderRequest]:
        """The exits as requests: explicit ones, or a bracket's priced from the trigger's fill."""
        if link.bracket is None:
            return dict(link.held)
        b = link.bracket
        entry = request_from_dict(b["entry"])
        inst = self._host.instruments.resolve(entry.symbol)
        ref = trigger.avg_fill_price if trigger is not None and trigger.avg_fill_price is not None else None
        if ref is None:
            ref = entry.limit_price if entry.limit_price is not None else entry.stop_price
        side = entry.side
        exit_side = side.opposite
        out: dict[str, OrderRequest] = {}
        tp = Decimal(b["take_profit_price"]) if b["take_profit_price"] else None
        sl = Decimal(b["stop_loss_price"]) if b["stop_loss_price"] else None
        if ref is not None:
            if b["take_profit_ticks"]:
                tp = inst.round_price(ref + side.sign * b["take_profit_ticks"] * inst.tick_size)
            if b["stop_loss_ticks"]:
                sl = inst.round_price(ref - side.sign * b["stop_loss_ticks"] * inst.tick_size)
        common: dict[str, Any] = {
            "account": entry.account,
            "symbol": entry.symbol,
            "side": exit_side,
            "quantity": entry.quantity,
        }
        if b["tp_id"]:
            out[b["tp_id"]] = OrderRequest(
                **common,
                order_type=OrderType.LIMIT,
                limit_price=tp,
                tif=TimeInForce.GTC,
                client_order_id=b["tp_id"],
                source=entry.source,
                reduce_only=True,
            )
        if b["sl_id"]:
            out[b["sl_id"]] = OrderRequest(
                **common,
                order_type=OrderType.STOP,
                stop_price=sl,
                tif=TimeInForce.GTC,
                client_order_id=b["sl_id"],
                source=entry.source,
                reduce_only=True,
            )
        return out

    def _held_order(self, link: _Link, trigger: Order, cid: str, req: OrderRequest) -> Order:
        role = OrderRole.TAKE_PROFIT if req.order_type is OrderType.LIMIT else OrderRole.STOP_LOSS
        base = Order.from_request(req, order_id=HELD_PREFIX + cid, status=OrderStatus.PENDING, broker=trigger.broker)
        return replace(
            base,
            role=role,
            parent_id=trigger.order_id,
            oco_group=link.group_id,
            emulated=True,
            reject_reason="held by tterm until the entry fills",
        )

    # ------------------------------------------------------------------ state

    def _register(self, link: _Link) -> None:
        self._links[link.group_id] = link

    def _finish(self, link: _Link) -> None:
        link.done = True
        self._links.pop(link.group_id, None)
        for cid in [*link.members, link.trigger]:
            if self._by_member.get(cid) == link.group_id:
                del self._by_member[cid]
        self._save()

    def _record(self, link: _Link, text: str, *, level: NoticeLevel = "info") -> None:
        self._host.journal.record(
            "emulation",
            {"group": link.group_id, "kind": link.kind.value, "text": text},
            account=link.account,
            ref=link.group_id,
        )
        if level != "info":
            self._host.ingest(Notice(level=level, text=f"emulated {link.kind.value}: {text}", account=link.account))

    def _save(self) -> None:
        self._host.journal.set_state(
            STATE_KEY,
            {
                gid: {
                    "kind": link.kind.value,
                    "account": link.account,
                    "members": link.members,
                    "trigger": link.trigger,
                    "held": {cid: request_to_dict(r) for cid, r in link.held.items()},
                    "bracket": link.bracket,
                    "mirrored": link.mirrored,
                }
                for gid, link in self._links.items()
                if not link.done
            },
        )

    def load(self) -> None:
        """Pick up the links saved before a restart (call before the engine starts ingesting)."""
        saved = self._host.journal.get_state(STATE_KEY, {}) or {}
        for gid, d in saved.items():
            try:
                link = _Link(
                    group_id=gid,
                    kind=GroupKind(d["kind"]),
                    account=d["account"],
                    members=list(d.get("members", [])),
                    trigger=d.get("trigger", ""),
                    held={cid: request_from_dict(r) for cid, r in d.get("held", {}).items()},
                    bracket=d.get("bracket"),
                    mirrored={k: int(v) for k, v in d.get("mirrored", {}).items()},
                )
            except (KeyError, ValueError, TypeError) as exc:
                self._host.journal.record("error", {"action": "emulation-load", "group": gid, "error": str(exc)})
                continue
            self._links[gid] = link
            for cid in [*link.members, link.trigger]:
                if cid:
                    self._by_member[cid] = gid

    def resume(self) -> None:
        """After the brokers' state is loaded: finish what happened while tterm was away."""
        for link in list(self._links.values()):
            ids = [link.trigger] if link.kind is GroupKind.OTOCO else link.members
            for cid in ids:
                order = self._host.order_by_client_id(link.account, cid)
                if order is not None:
                    self.on_event(order)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait for the emulator's own I/O (tests, one-shot commands)."""
        while True:
            # A finished task leaves the set from a done-callback the loop runs later: do not wait on it.
            pending = [t for t in self._tasks if not t.done()]
            self._tasks.difference_update(t for t in list(self._tasks) if t.done())
            if not pending:
                return
            await asyncio.gather(*pending, return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    @property
    def links(self) -> int:
        return len(self._links)

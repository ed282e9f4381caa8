"""Grouped orders in the paper matching engine: brackets, OCO pairs and OTOCO triggers.

- **Bracket**: when an entry fills, a take-profit (limit) and a stop-loss (stop) are created for
  the filled quantity, sharing an ``oco_group``. Further entry fills grow both children (at the
  prices already set, so a trader's modification is kept). A child fill shrinks its sibling; a
  child that fills completely cancels its sibling and closes the group; a later entry fill then
  starts a new group priced from the entry's average fill at that time. Children are DAY when the
  entry is DAY, otherwise GTC.
- **OTOCO**: a trigger order and two exits (a take-profit limit and a stop, stop-limit or
  trailing stop). The exits wait as PENDING (``held``) until the trigger fills; then they work
  as a bracket's children do, for the quantity filled, with the prices (or trail) they were
  given. If the trigger ends without a fill the exits are cancelled with it.
- **OCO**: two working orders; the first fill cancels the other. Two orders on one symbol for
  one quantity protect the same contracts, so a partial fill shrinks the other instead, and the
  other is cancelled once the fills reach the quantity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from tterm.core.models import Order, OrderRole, OrderStatus, OrderType, Quote, Side, TimeInForce

if TYPE_CHECKING:
    from tterm.brokers.paper.matching import Effect, Working


@dataclass(slots=True)
class BracketGroup:
    """One OCO pair: a bracket's or OTOCO's exits protecting ``exposure`` contracts of an entry's
    fills (``kind`` "bracket"), or two stand-alone orders (``kind`` "oco": ``entry_id`` empty,
    ``exposure`` the quantity they share, 0 when the first fill cancels the other)."""

    group_id: str
    entry_id: str
    tp_id: str | None
    sl_id: str | None
    exposure: int
    kind: str = "bracket"


@dataclass(frozen=True, slots=True)
class Exit:
    """One exit an OTOCO trigger creates when it fills (``order_id``: the held first one)."""

    role: OrderRole
    order_type: OrderType
    limit_price: Decimal | None
    stop_price: Decimal | None
    trail_amount: Decimal | None
    client_order_id: str
    order_id: str = ""


class GroupLogic:
    """Bracket, OTOCO and OCO behaviour, mixed into the matching engine."""

    working: dict[str, Working]
    groups: dict[str, BracketGroup]
    dirty: set[str]
    quotes: dict[str, Quote]
    groups_dirty: bool
    _seq: int
    _new_id: Callable[[str], str]
    _now: Callable[[], datetime]

    def _out(self, effect: Effect) -> None:  # pragma: no cover - the engine's
        raise NotImplementedError

    def _arrive(self, w: Working, q: Quote) -> None:  # pragma: no cover - the engine's
        raise NotImplementedError

    def _finish(self, w: Working, status: OrderStatus, reason: str) -> None:  # pragma: no cover
        raise NotImplementedError

    def _trail_reset(self, w: Working, q: Quote | None) -> None:  # pragma: no cover - the engine's
        raise NotImplementedError

    def _child(self, order: Order, entry: Working) -> Working:  # pragma: no cover - the engine's
        raise NotImplementedError

    # ------------------------------------------------------------------ OCO

    def link_oco(self, a: Working, b: Working, group_id: str) -> None:
        """Make two accepted orders one OCO pair (before either is matched)."""
        same = a.order.symbol == b.order.symbol and a.order.quantity == b.order.quantity
        self.groups[group_id] = BracketGroup(
            group_id, "", a.order.order_id, b.order.order_id, a.order.quantity if same else 0, kind="oco"
        )
        self.groups_dirty = True
        for w in (a, b):
            w.order = w.order.evolve(oco_group=group_id, updated_at=self._now())

    def _oco_filled(self, w: Working, qty: int) -> None:
        g = self.groups.get(w.order.oco_group or "")
        if g is None or g.kind != "oco":
            return
        self.groups_dirty = True
        other = g.sl_id if g.tp_id == w.order.order_id else g.tp_id
        sib = self.working.get(other) if other else None
        if g.exposure > 0:
            g.exposure -= qty
            if sib is not None and g.exposure > 0 and sib.order.quantity - qty > sib.order.filled_quantity:
                sib.order = sib.order.evolve(quantity=sib.order.quantity - qty, updated_at=self._now())
                self._out(sib.order)
                return
        if sib is not None:
            self._finish(sib, OrderStatus.CANCELLED, f"OCO: {w.order.order_id} filled")
        self.groups.pop(g.group_id, None)

    # ------------------------------------------------------------------ brackets and OTOCO

    def _entry_filled(self, entry: Working, qty: int) -> None:
        g = self.groups.get(entry.group) if entry.group else None
        self.groups_dirty = True
        if g is not None and (g.tp_id in self.working or g.sl_id in self.working):
            g.exposure += qty
            q = self.quotes.get(entry.order.symbol)
            activated: list[Working] = []
            for cid in (g.tp_id, g.sl_id):
                child = self.working.get(cid) if cid else None
                if child is None:
                    continue
                if child.held:
                    # An OTOCO's exits come alive for what the trigger filled.
                    child.held = False
                    child.order = child.order.evolve(quantity=qty, status=OrderStatus.WORKING, updated_at=self._now())
                    self._trail_reset(child, q)
                    activated.append(child)
                else:
                    child.order = child.order.evolve(quantity=child.order.quantity + qty, updated_at=self._now())
                self._out(child.order)
            if q is not None:
                for child in activated:
                    if child.order.order_id in self.working:
                        self._arrive(child, q)
            return
        o = entry.order
        assert o.avg_fill_price is not None
        if entry.exits:
            plans = [
                (x.role, x.order_type, x.limit_price, x.stop_price, x.trail_amount, x.client_order_id)
                for x in entry.exits
            ]
        else:
            assert entry.bracket is not None
            tp, sl = entry.bracket.resolve(o.avg_fill_price, o.side, entry.instrument)
            plans = []
            if tp is not None:
                plans.append((OrderRole.TAKE_PROFIT, OrderType.LIMIT, tp, None, None, f"{o.client_order_id}.tp"))
            if sl is not None:
                plans.append((OrderRole.STOP_LOSS, OrderType.STOP, None, sl, None, f"{o.client_order_id}.sl"))
        if not plans:
            return
        entry.groups_made += 1
        n = entry.groups_made
        gid = self._new_id("oco")
        suffix = "" if n == 1 else str(n)
        tif = TimeInForce.DAY if o.tif is TimeInForce.DAY else TimeInForce.GTC
        children: list[Working] = []
        for role, kind, limit, stop, trail, coid in plans:
            self._seq += 1
            now = self._now()
            child_order = Order(
                order_id=self._new_id("order"),
                client_order_id=f"{coid}{suffix}",
                account=o.account,
                symbol=o.symbol,
                side=o.side.opposite,
                quantity=qty,
                order_type=kind,
                status=OrderStatus.WORKING,
                limit_price=limit,
                stop_price=stop,
                tif=tif,
                role=role,
                parent_id=o.order_id,
                oco_group=gid,
                source=o.source,
                broker=o.broker,
                created_at=now,
                updated_at=now,
                trail_amount=trail,
            )
            children.append(self._child(child_order, entry))
        g = BracketGroup(
            group_id=gid,
            entry_id=o.order_id,
            tp_id=next((c.order.order_id for c in children if c.order.role is OrderRole.TAKE_PROFIT), None),
            sl_id=next((c.order.order_id for c in children if c.order.role is OrderRole.STOP_LOSS), None),
            exposure=qty,
        )
        self.groups[gid] = g
        entry.group = gid
        q = self.quotes.get(o.symbol)
        for c in children:
            self.working[c.order.order_id] = c
            self._trail_reset(c, q)
            self._out(c.order)
        if q is not None:
            for c in children:
                if c.order.order_id in self.working:
                    self._arrive(c, q)

    def hold_exits(self, trigger: Working, exits: list[Working], group_id: str) -> None:
        """Attach an OTOCO's two exits (accepted, PENDING) to its trigger (before it matches)."""
        by_role = {x.order.role: x for x in exits}
        self.groups[group_id] = BracketGroup(
            group_id,
            trigger.order.order_id,
            by_role[OrderRole.TAKE_PROFIT].order.order_id if OrderRole.TAKE_PROFIT in by_role else None,
            by_role[OrderRole.STOP_LOSS].order.order_id if OrderRole.STOP_LOSS in by_role else None,
            0,
        )
        self.groups_dirty = True
        trigger.group = group_id
        trigger.groups_made = 1
        trigger.exits = tuple(
            Exit(
                role=x.order.role,
                order_type=x.order.order_type,
                limit_price=x.order.limit_price,
                stop_price=x.order.stop_price,
                trail_amount=x.order.trail_amount,
                client_order_id=x.order.client_order_id,
                order_id=x.order.order_id,
            )
            for x in exits
        )
        for x in exits:
            x.held = True
            x.order = x.order.evolve(
                status=OrderStatus.PENDING, parent_id=trigger.order.order_id, oco_group=group_id, updated_at=self._now()
            )
            self.working[x.order.order_id] = x

    def _child_filled(self, child: Working, qty: int) -> None:
        g = self.groups.get(child.order.oco_group or "")
        if g is None:
            return
        self.groups_dirty = True
        g.exposure -= qty
        sib_id = g.sl_id if child.order.role is OrderRole.TAKE_PROFIT else g.tp_id
        sib = self.working.get(sib_id) if sib_id else None
        if g.exposure <= 0:
            if child.order.role is OrderRole.TAKE_PROFIT:
                g.tp_id = None
            else:
                g.sl_id = None
            if sib is not None:
                what = child.order.role.value.replace("_", "-")
                self._finish(sib, OrderStatus.CANCELLED, f"OCO: {what} {child.order.order_id} filled")
            self._close_group(g)
        elif sib is not None:
            sib.order = sib.order.evolve(quantity=sib.order.quantity - qty, updated_at=self._now())
            self._out(sib.order)

    def _detach(self, w: Working, status: OrderStatus) -> None:
        """A finished (cancelled, expired) order leaves its group; a held OTOCO's exits follow an
        unfilled trigger, and a cancelled exit is not recreated by later trigger fills."""
        o = w.order
        if o.role is OrderRole.ENTRY and w.exits and w.group:
            g = self.groups.get(w.group)
            if g is not None and o.filled_quantity == 0:
                for cid in (g.tp_id, g.sl_id):
                    child = self.working.get(cid) if cid else None
                    if child is not None and child.held:
                        self._finish(child, OrderStatus.CANCELLED, f"OTOCO: trigger {o.order_id} {status.value}")
            return
        if not o.oco_group:
            return
        g = self.groups.get(o.oco_group)
        if g is None:
            return
        self.groups_dirty = True
        if g.kind == "bracket" and o.role is not OrderRole.ENTRY:
            entry = self.working.get(g.entry_id)
            if entry is not None and entry.exits:
                entry.exits = tuple(x for x in entry.exits if x.role is not o.role)
        if g.tp_id == o.order_id:
            g.tp_id = None
        if g.sl_id == o.order_id:
            g.sl_id = None
        if g.tp_id is None and g.sl_id is None:
            self._close_group(g)

    def _close_group(self, g: BracketGroup) -> None:
        self.groups.pop(g.group_id, None)
        self.groups_dirty = True
        entry = self.working.get(g.entry_id)
        if entry is not None and entry.group == g.group_id:
            entry.group = None
            self.dirty.add(g.entry_id)

    def exit_changed(self, w: Working) -> None:
        """An OTOCO exit's prices were modified: later exits created for the trigger use them."""
        g = self.groups.get(w.order.oco_group or "")
        if g is None or g.kind != "bracket":
            return
        entry = self.working.get(g.entry_id)
        if entry is None or not entry.exits:
            return
        o = w.order
        entry.exits = tuple(
            replace(x, limit_price=o.limit_price, stop_price=o.stop_price) if x.role is o.role else x
            for x in entry.exits
        )


def exit_role(order_type: OrderType) -> OrderRole:
    """An OTOCO exit's role: a limit takes profit, every kind of stop limits the loss."""
    return OrderRole.TAKE_PROFIT if order_type is OrderType.LIMIT else OrderRole.STOP_LOSS


__all__ = ["BracketGroup", "Exit", "GroupLogic", "Side", "exit_role"]

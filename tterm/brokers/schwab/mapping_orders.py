"""Schwab order trees (GET orders, A6.3) -> tterm's Orders and Fills: pure functions, no I/O.

The response half of the order mapping (request bodies, vocabulary and accounts are in
:mod:`tterm.brokers.schwab.mapping`). A GET order tree becomes one Order per node with legs: a
TRIGGER's children (its bracket exits) carry ``parent_id``, the two orders of an OCO pair carry the
OCO container's id as ``oco_group`` (the container itself has no legs), and every execution leg of
``orderActivityCollection`` becomes a Fill. Schwab has no client order id: the one tterm gave each
order it placed comes in as :class:`Known`; orders placed elsewhere get ``schwab-<orderId>``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from tterm.brokers.schwab.mapping import (
    BUY_INSTRUCTIONS,
    CLOSING_INSTRUCTIONS,
    STATUSES,
    VENDOR_TIFS,
    VENDOR_TYPES,
    Resolver,
    count,
    dec,
    obj,
    objects,
    parse_time,
    whole,
)
from tterm.core.models import (
    ZERO,
    Fill,
    Instrument,
    Order,
    OrderLeg,
    OrderRole,
    OrderSource,
    OrderStatus,
    OrderType,
    PositionEffect,
    PriceEffect,
    Side,
    TimeInForce,
    utcnow,
)


@dataclass(slots=True)
class Known:
    """What tterm remembers of an order it placed (Schwab keeps no client order id)."""

    client_order_id: str
    symbol: str = ""
    side: Side | None = None
    source: OrderSource | None = None
    role: OrderRole | None = None
    #: When tterm placed it (ISO time), for pruning the stored ids.
    at: str = ""


@dataclass(frozen=True, slots=True)
class Execution:
    """One execution leg of an order: becomes one Fill."""

    fill_id: str
    order_id: str
    symbol: str
    side: Side
    quantity: int
    price: Decimal
    ts: datetime


@dataclass(slots=True)
class Mapped:
    """One order node mapped: the Order, its executions, and the raw node (for a replace)."""

    order: Order
    executions: list[Execution] = field(default_factory=list)
    node: Mapping[str, Any] = field(default_factory=dict)


def _leg_parts(
    node: Mapping[str, Any], resolve: Resolver
) -> list[tuple[int, str, Side, int, PositionEffect, Instrument | None]]:
    out = []
    for leg in objects(node.get("orderLegCollection")):
        inst_json = obj(leg.get("instrument"))
        raw = str(inst_json.get("symbol") or "")
        inst = resolve(raw) if raw else None
        text = str(leg.get("instruction") or "")
        side = Side.BUY if text in BUY_INSTRUCTIONS else Side.SELL
        effect = PositionEffect.CLOSE if text in CLOSING_INSTRUCTIONS else PositionEffect.OPEN
        if leg.get("positionEffect") == "AUTOMATIC":
            effect = PositionEffect.AUTO
        symbol = inst.symbol if inst is not None else raw
        out.append((whole(leg.get("legId")), symbol, side, count(leg.get("quantity"), "leg quantity"), effect, inst))
    return out


def walk_orders(
    root: Mapping[str, Any],
    *,
    broker: str,
    account: str,
    resolve: Resolver,
    known: Callable[[str], Known | None],
    strategy_name: Callable[[Sequence[tuple[OrderLeg, Instrument]]], str],
) -> Iterator[Mapped]:
    """Every order with legs in one GET order tree, with its place in the group.

    A TRIGGER's children (its bracket exits) carry ``parent_id``; the two orders of an OCO pair
    carry the OCO container's id as ``oco_group`` (the container itself has no legs).
    """

    def visit(node: Mapping[str, Any], parent: str | None, oco: str | None) -> Iterator[Mapped]:
        oid = str(node.get("orderId") or "")
        strategy = node.get("orderStrategyType")
        children = objects(node.get("childOrderStrategies"))
        if strategy == "OCO":
            for child in children:
                yield from visit(child, parent, oid or oco)
            return
        mapped = map_order(
            node,
            broker=broker,
            account=account,
            resolve=resolve,
            known=known(oid),
            strategy_name=strategy_name,
            parent=parent,
            oco=oco,
        )
        if mapped is not None:
            yield mapped
        for child in children:
            yield from visit(child, oid if strategy == "TRIGGER" else parent, oco if strategy != "TRIGGER" else None)

    yield from visit(root, None, None)


def map_order(
    node: Mapping[str, Any],
    *,
    broker: str,
    account: str,
    resolve: Resolver,
    known: Known | None,
    strategy_name: Callable[[Sequence[tuple[OrderLeg, Instrument]]], str],
    parent: str | None = None,
    oco: str | None = None,
) -> Mapped | None:
    """One order node -> an Order and its executions (None for a node without legs)."""
    oid = str(node.get("orderId") or "")
    parts = _leg_parts(node, resolve)
    if not oid or not parts:
        return None
    vendor_type = str(node.get("orderType") or "MARKET")
    order_type = VENDOR_TYPES.get(vendor_type, OrderType.MARKET)
    multi = len(parts) > 1
    total = count(node.get("quantity"), "order quantity")
    if multi:
        units = total or min(q for _, _, _, q, _, _ in parts)
        legs = tuple(
            OrderLeg(symbol=s, side=sd, ratio=max(1, q // units) if units else 1, effect=e)
            for _, s, sd, q, e, _ in parts
        )
        quantity = units
    else:
        legs = ()
        quantity = parts[0][3] or total
    price_effect = None
    if multi:
        if vendor_type == "NET_CREDIT":
            side, price_effect = Side.SELL, PriceEffect.CREDIT
        elif vendor_type in ("NET_DEBIT", "NET_ZERO"):
            side, price_effect = Side.BUY, PriceEffect.DEBIT
        else:
            side = known.side if known is not None and known.side is not None else Side.BUY
        pairs = [(leg, inst) for leg, (_, _, _, _, _, inst) in zip(legs, parts, strict=True) if inst is not None]
        if known is not None and known.symbol:
            symbol = known.symbol
        elif len(pairs) == len(legs):
            symbol = strategy_name(pairs)
        else:
            symbol = " / ".join(f"{'+' if leg.side is Side.BUY else '-'}{leg.ratio} {leg.symbol}" for leg in legs)
    else:
        side, symbol = parts[0][2], parts[0][1]
    status_text = str(node.get("status") or "UNKNOWN")
    status = STATUSES.get(status_text, OrderStatus.PENDING)
    executions = _executions(node, oid, parts)
    filled = count(node.get("filledQuantity"), "filled quantity")
    if multi and total:
        filled = min(filled, quantity)
    if status is OrderStatus.WORKING and 0 < filled < quantity:
        status = OrderStatus.PARTIALLY_FILLED
    limit = dec(node.get("price")) if order_type.needs_limit else None
    stop = dec(node.get("stopPrice")) if order_type in (OrderType.STOP, OrderType.STOP_LIMIT) else None
    trail = dec(node.get("stopPriceOffset")) if order_type is OrderType.TRAILING_STOP else None
    if trail is not None and node.get("stopPriceLinkType") == "PERCENT":
        trail = None  # a percent trail has no price distance to show
    role = OrderRole.ENTRY
    if parent is not None:
        role = (
            known.role
            if known is not None and known.role is not None
            else (OrderRole.TAKE_PROFIT if order_type is OrderType.LIMIT else OrderRole.STOP_LOSS)
        )
    entered = parse_time(node.get("enteredTime")) or utcnow()
    reason = ""
    if status is OrderStatus.REJECTED:
        reason = str(node.get("statusDescription") or "Schwab rejected the order (no reason given)")
    order = Order(
        order_id=oid,
        client_order_id=known.client_order_id if known is not None else f"schwab-{oid}",
        account=account,
        symbol=symbol,
        side=side,
        quantity=quantity,
        order_type=order_type,
        status=status,
        limit_price=limit,
        stop_price=stop,
        tif=VENDOR_TIFS.get(str(node.get("duration") or "DAY"), TimeInForce.DAY),
        filled_quantity=filled,
        avg_fill_price=_average(executions, parts, quantity, side) if executions else None,
        role=role,
        parent_id=parent,
        oco_group=oco,
        reject_reason=reason,
        legs=legs,
        source=known.source if known is not None and known.source is not None else OrderSource.API,
        broker=broker,
        created_at=entered,
        updated_at=parse_time(node.get("closeTime")) or entered,
        price_effect=price_effect,
        trail_amount=trail,
    )
    return Mapped(order=order, executions=executions, node=node)


def _executions(
    node: Mapping[str, Any], oid: str, parts: list[tuple[int, str, Side, int, PositionEffect, Instrument | None]]
) -> list[Execution]:
    by_leg = {leg_id: (symbol, side) for leg_id, symbol, side, _, _, _ in parts}
    first = parts[0]
    out = []
    for act in objects(node.get("orderActivityCollection")):
        if act.get("activityType") != "EXECUTION":
            continue
        act_id = str(act.get("activityId") or "")
        for i, leg in enumerate(objects(act.get("executionLegs"))):
            leg_id = whole(leg.get("legId"))
            symbol, side = by_leg.get(leg_id, (first[1], first[2]))
            qty, price = whole(leg.get("quantity")), dec(leg.get("price"))
            if qty <= 0 or price is None:
                continue
            out.append(
                Execution(
                    fill_id=f"{oid}:{act_id or 'x'}:{leg_id or i}",
                    order_id=oid,
                    symbol=symbol,
                    side=side,
                    quantity=qty,
                    price=price,
                    ts=parse_time(leg.get("time")) or utcnow(),
                )
            )
    return out


def _average(execs: list[Execution], parts: list[Any], units: int, side: Side) -> Decimal | None:
    if len(parts) == 1:
        qty = sum(e.quantity for e in execs)
        return (sum((e.price * e.quantity for e in execs), ZERO) / qty) if qty else None
    # A spread: the net per unit, in the order's own direction (a credit is positive for a credit order).
    debit = sum((e.side.sign * e.price * e.quantity for e in execs), ZERO)
    first_ratio = max(1, parts[0][3] // max(units, 1))
    filled_units = sum(e.quantity for e in execs if e.symbol == parts[0][1]) // first_ratio
    if not filled_units:
        return None
    net = debit / filled_units
    return net if side is Side.BUY else -net


def fill_of(e: Execution, order: Order, fee: Decimal, broker: str) -> Fill:
    return Fill(
        fill_id=e.fill_id,
        order_id=e.order_id,
        client_order_id=order.client_order_id,
        account=order.account,
        symbol=e.symbol,
        side=e.side,
        quantity=e.quantity,
        price=e.price,
        fee=fee,
        broker=broker,
        ts=e.ts,
    )

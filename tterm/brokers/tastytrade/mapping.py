"""Tastytrade JSON <-> core models, pure functions (vendor field names stop here).

Symbols (B5, TT-DOC concepts/market-data):

- equities: the ticker (``AAPL``), the same in tterm;
- equity options: OCC with the root padded to six (``SPY   261127C00600000``), which is tterm's
  option symbol too;
- futures: ``/ESZ6``; tterm writes ``ESZ6``;
- future options: ``./ESZ6 EW4X6 261127C6000`` (the future, the option contract, YYMMDD, C/P,
  strike); tterm writes it without the leading ``./`` (``ESZ6 EW4X6 261127C6000``) and learns
  the instrument (weekly future options have their own expiry, which the master's
  ``ESZ6 C6000`` form cannot carry).

Streamer (DXLink) symbols are never built here: they are taken from the instrument, chain or
position records (B5: "never build it by hand").

Orders (B6): ``price`` is always positive on the wire and its direction is ``price-effect``;
actions are ``Buy to Open`` / ``Sell to Close`` and the like for equities and options, ``Buy`` and
``Sell`` for futures. Fills are in ``legs[].fills``; one core :class:`Fill` per vendor fill.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from tterm.brokers.tastytrade.schemas import (
    Balance,
    CurrentPosition,
    OrderRecord,
    PlacedOrder,
    signed,
    when,
)
from tterm.core.models import (
    ZERO,
    AccountSnapshot,
    AssetClass,
    Fill,
    Instrument,
    ModelError,
    OptionRight,
    Order,
    OrderLeg,
    OrderPreview,
    OrderRequest,
    OrderSource,
    OrderStatus,
    OrderType,
    Position,
    PositionEffect,
    PriceEffect,
    Side,
    TimeInForce,
    utcnow,
)

JSON = dict[str, Any]

EQUITY, EQUITY_OPTION, FUTURE, FUTURE_OPTION = "Equity", "Equity Option", "Future", "Future Option"
_FUTURE_OPTION = re.compile(
    r"^\./(?P<future>/?[A-Z0-9]+) (?P<contract>[A-Z0-9]+) (?P<ymd>\d{6})(?P<cp>[CP])(?P<strike>[0-9.]+)$"
)

#: B5 order statuses; anything else is an unknown enum (the record is skipped, logged).
STATUS: dict[str, OrderStatus] = {
    "Received": OrderStatus.PENDING,
    "Routed": OrderStatus.WORKING,
    "In Flight": OrderStatus.WORKING,
    "Live": OrderStatus.WORKING,
    "Contingent": OrderStatus.WORKING,
    "Cancel Requested": OrderStatus.WORKING,
    "Replace Requested": OrderStatus.WORKING,
    "Filled": OrderStatus.FILLED,
    "Cancelled": OrderStatus.CANCELLED,
    "Expired": OrderStatus.EXPIRED,
    "Rejected": OrderStatus.REJECTED,
    "Removed": OrderStatus.CANCELLED,
    "Partially Removed": OrderStatus.CANCELLED,
}
ORDER_TYPES: dict[str, OrderType] = {
    "Market": OrderType.MARKET,
    "Limit": OrderType.LIMIT,
    "Marketable Limit": OrderType.LIMIT,
    "Stop": OrderType.STOP,
    "Stop Limit": OrderType.STOP_LIMIT,
    "Notional Market": OrderType.MARKET,
}
TO_TYPE = {OrderType.MARKET: "Market", OrderType.LIMIT: "Limit", OrderType.STOP: "Stop",
           OrderType.STOP_LIMIT: "Stop Limit"}  # fmt: skip
TIFS: dict[str, TimeInForce] = {
    "Day": TimeInForce.DAY,
    "GTC": TimeInForce.GTC,
    "GTD": TimeInForce.GTC,
    "IOC": TimeInForce.IOC,
    "Ext": TimeInForce.DAY,
    "Ext Overnight": TimeInForce.DAY,
    "GTC Ext": TimeInForce.GTC,
    "GTC Ext Overnight": TimeInForce.GTC,
}
TO_TIF = {TimeInForce.DAY: "Day", TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC"}


class MappingError(ModelError):
    """A vendor record tterm cannot represent (an unknown status, a symbol it cannot read)."""


class Refused(ModelError):
    """A request tterm will not send as it stands; the message says why. Nothing was sent."""


# =========================================================================== symbols


@dataclass(frozen=True, slots=True)
class TastySymbol:
    """How Tastytrade knows one core instrument: its symbol, its instrument-type and its DXLink symbol."""

    symbol: str
    kind: str
    streamer: str = ""


def kind_of(inst: Instrument) -> str:
    """The vendor instrument-type of a core instrument (future options: an option on a future)."""
    if inst.asset_class is AssetClass.EQUITY:
        return EQUITY
    if inst.asset_class is AssetClass.FUTURE:
        return FUTURE
    return FUTURE_OPTION if _is_future_symbol(inst.underlying) else EQUITY_OPTION


def _is_future_symbol(text: str) -> bool:
    return bool(re.fullmatch(r"[A-Z0-9]{1,4}[FGHJKMNQUVXZ]\d{1,2}", text or ""))


def future_to_tasty(core_symbol: str) -> str:
    """tterm's ``ESZ6`` -> ``/ESZ6``."""
    return "/" + core_symbol.lstrip("/")


def core_symbol(tasty: str, kind: str) -> str:
    """The tterm symbol of a Tastytrade symbol (see the module text)."""
    text = tasty.strip()
    if kind == FUTURE:
        return text.lstrip("/").upper()
    if kind == FUTURE_OPTION:
        return text.removeprefix("./").upper()
    if kind == EQUITY_OPTION:
        m = re.fullmatch(r"([A-Z][A-Z0-9.]{0,5}) *(\d{6}[CP]\d{8})", text.upper())
        if m is None:
            raise MappingError(f"{tasty!r} is not an OCC option symbol")
        return f"{m.group(1):<6}{m.group(2)}"
    return text.upper()


def future_option_instrument(
    tasty: str, future: Instrument, *, tick: Decimal | None = None, tick_table: tuple[tuple[Decimal, Decimal], ...] = ()
) -> Instrument:
    """The core instrument of a future option (``./ESZ6 EW4X6 261127C6000``) on ``future``."""
    m = _FUTURE_OPTION.match(tasty.strip().upper())
    if m is None:
        raise MappingError(f"{tasty!r} is not a Tastytrade future option symbol (e.g. ./ESZ6 EW4X6 261127C6000)")
    ymd = m["ymd"]
    try:
        expiry = date(2000 + int(ymd[:2]), int(ymd[2:4]), int(ymd[4:]))
        strike = Decimal(m["strike"])
    except (ValueError, InvalidOperation):
        raise MappingError(f"{tasty!r}: bad expiry or strike") from None
    step = tick or (tick_table[0][1] if tick_table else future.tick_size)
    point = future.point_value
    right = OptionRight.CALL if m["cp"] == "C" else OptionRight.PUT
    return Instrument(
        symbol=core_symbol(tasty, FUTURE_OPTION),
        asset_class=AssetClass.OPTION,
        tick_size=step,
        tick_value=step * point,
        tick_table=tick_table if len(tick_table) > 1 else (),
        description=f"{future.symbol} {m['contract']} {expiry:%d %b %y} {strike.normalize():f} {right.value.title()}",
        exchange=future.exchange,
        root=future.root,
        underlying=future.symbol,
        expiry=expiry,
        strike=strike,
        right=right,
        fee_per_side=future.fee_per_side,
    )


def tick_table_of(rows: list[Any]) -> tuple[tuple[Decimal, Decimal], ...]:
    """Vendor ``tick-sizes`` (``value`` below each ``threshold``) as the core's ascending table."""
    out: list[tuple[Decimal, Decimal]] = []
    start = ZERO
    for row in rows:
        out.append((start, row.value))
        if row.threshold is None:
            break
        start = row.threshold
    return tuple(out)


# =========================================================================== orders: request -> body


def action(kind: str, side: Side, opening: bool) -> str:
    """B6: futures buy and sell; equities and options say whether they open or close."""
    if kind == FUTURE:
        return "Buy" if side is Side.BUY else "Sell"
    verb = "Buy" if side is Side.BUY else "Sell"
    return f"{verb} to {'Open' if opening else 'Close'}"


def opening(effect: PositionEffect, side: Side, quantity: int, held: int, *, reduce_only: bool) -> bool:
    """Whether a leg opens: said by the leg, else closing what is held on the other side."""
    if effect is PositionEffect.OPEN:
        return True
    if effect is PositionEffect.CLOSE or reduce_only:
        return False
    # AUTO: a buy against a short (or a sell against a long) closes, when it fits in the position.
    against = held < 0 if side is Side.BUY else held > 0
    return not (against and quantity <= abs(held))


def order_body(
    request: OrderRequest,
    legs: list[JSON],
    *,
    source: str,
    include_legs: bool = True,
) -> JSON:
    """The order JSON of ``request`` (B6) with its legs already built (symbols, actions, quantities)."""
    if request.order_type not in TO_TYPE:
        raise Refused(f"Tastytrade takes no {request.order_type.value.replace('_', '-')} orders")
    if request.tif not in TO_TIF:
        raise Refused(f"Tastytrade takes no {request.tif.value.upper()} orders (Day, GTC or IOC)")
    body: JSON = {
        "time-in-force": TO_TIF[request.tif],
        "order-type": TO_TYPE[request.order_type],
        "source": source,
        "external-identifier": request.client_order_id,
    }
    if request.order_type.needs_limit:
        if request.limit_price is None or request.limit_price <= 0:
            raise Refused("a limit price (positive) is needed")
        body["price"] = str(abs(request.limit_price))
        body["price-effect"] = price_effect(request).value.title()
    if request.order_type.needs_stop:
        if request.stop_price is None or request.stop_price <= 0:
            raise Refused("a stop price (positive) is needed")
        body["stop-trigger"] = str(request.stop_price)
    if include_legs:
        body["legs"] = legs
    return body


def price_effect(request: OrderRequest) -> PriceEffect:
    if request.price_effect is not None:
        return request.price_effect
    return PriceEffect.DEBIT if request.side is Side.BUY else PriceEffect.CREDIT


# =========================================================================== orders: vendor -> core


@dataclass(slots=True)
class Known:
    """What tterm remembers of an order it placed: the request's client order id and words."""

    client_order_id: str
    symbol: str = ""
    side: Side | None = None
    source: OrderSource = OrderSource.API


@dataclass(slots=True)
class Mapped:
    """One vendor order as core objects: the order and every fill so far."""

    order: Order
    fills: list[Fill] = field(default_factory=list)
    record: OrderRecord | None = None


Resolver = Callable[[str, str], Instrument]


def _side(action_text: str) -> Side:
    if action_text.startswith("Buy"):
        return Side.BUY
    if action_text.startswith("Sell"):
        return Side.SELL
    raise MappingError(f"unknown order action {action_text!r}")


def _effect(action_text: str) -> PositionEffect:
    if action_text.endswith("to Open"):
        return PositionEffect.OPEN
    if action_text.endswith("to Close"):
        return PositionEffect.CLOSE
    return PositionEffect.AUTO


def _whole(value: Decimal, what: str) -> int:
    if value != value.to_integral_value() or abs(value) > 10**9:
        raise MappingError(f"{what} {value} is not a whole number tterm can trade")
    return int(value)


def order_of(
    rec: OrderRecord,
    *,
    account: str,
    broker: str,
    resolve: Resolver,
    known: Known | None,
    strategy_name: Callable[[list[tuple[OrderLeg, Instrument]]], str],
) -> Mapped:
    """The core order (and its fills) of a vendor order; MappingError for one tterm cannot read."""
    status = STATUS.get(rec.status)
    if status is None:
        raise MappingError(f"order {rec.id}: unknown status {rec.status!r}")
    otype = ORDER_TYPES.get(rec.order_type)
    if otype is None:
        raise MappingError(f"order {rec.id}: unknown order type {rec.order_type!r}")
    insts = [resolve(leg.symbol, leg.instrument_type) for leg in rec.legs]
    qtys = [_whole(leg.quantity, f"order {rec.id} leg quantity") for leg in rec.legs]
    if any(q <= 0 for q in qtys):
        raise MappingError(f"order {rec.id}: a leg quantity is not positive")
    size = qtys[0] if len(qtys) == 1 else math.gcd(*qtys)
    legs = tuple(
        OrderLeg(symbol=inst.symbol, side=_side(leg.action), ratio=q // size, effect=_effect(leg.action))
        for leg, inst, q in zip(rec.legs, insts, qtys, strict=True)
    )
    multi = len(rec.legs) > 1
    fills: list[Fill] = []
    client_id = known.client_order_id if known else (rec.external_identifier or f"tasty-{rec.id}")
    order_id = str(rec.id) if rec.id is not None else f"dry-{client_id}"
    filled_per_leg: list[Decimal] = []
    avg_per_leg: list[Decimal | None] = []
    for leg, inst, core_leg in zip(rec.legs, insts, legs, strict=True):
        total_q = ZERO
        total_v = ZERO
        for f in leg.fills:
            q = _whole(f.quantity, f"order {rec.id} fill quantity")
            if q <= 0:
                continue
            total_q += q
            total_v += f.fill_price * q
            fills.append(
                Fill(
                    fill_id=f"{order_id}:{f.fill_id}",
                    order_id=order_id,
                    client_order_id=client_id,
                    account=account,
                    symbol=inst.symbol,
                    side=core_leg.side,
                    quantity=q,
                    price=inst.round_price(f.fill_price) if inst.is_on_tick(f.fill_price) else f.fill_price,
                    broker=broker,
                    ts=when(f.filled_at) or utcnow(),
                )
            )
        filled_per_leg.append(total_q)
        avg_per_leg.append(total_v / total_q if total_q else None)
    if multi:
        filled = min(int(q // (leg.ratio or 1)) for q, leg in zip(filled_per_leg, legs, strict=True))
        if all(a is not None for a in avg_per_leg):
            net = sum(
                (leg.side.sign * leg.ratio * a for leg, a in zip(legs, avg_per_leg, strict=True) if a is not None), ZERO
            )
            avg = abs(net)
        else:
            avg = None
        pe = (
            PriceEffect.DEBIT
            if rec.price_effect == "Debit"
            else PriceEffect.CREDIT
            if rec.price_effect == "Credit"
            else None
        )
        side = known.side if known and known.side else (Side.SELL if pe is PriceEffect.CREDIT else Side.BUY)
        symbol = (known.symbol if known and known.symbol else "") or strategy_name(list(zip(legs, insts, strict=True)))
    else:
        filled = int(filled_per_leg[0])
        avg = avg_per_leg[0]
        pe = None
        side = legs[0].side
        symbol = insts[0].symbol
    if status is OrderStatus.WORKING and 0 < filled < size:
        status = OrderStatus.PARTIALLY_FILLED
    created = when(rec.received_at) or utcnow()
    order = Order(
        order_id=order_id,
        client_order_id=client_id,
        account=account,
        symbol=symbol,
        side=side,
        quantity=size,
        order_type=otype,
        status=status,
        limit_price=rec.price if otype.needs_limit else None,
        stop_price=rec.stop_trigger if otype.needs_stop else None,
        tif=TIFS.get(rec.time_in_force, TimeInForce.DAY),
        filled_quantity=filled,
        avg_fill_price=avg,
        reject_reason=(rec.reject_reason or "") if status is OrderStatus.REJECTED else "",
        legs=legs if multi else (),
        source=known.source if known else OrderSource.API,
        broker=broker,
        created_at=created,
        updated_at=when(rec.updated_at) or created,
        price_effect=pe,
    )
    return Mapped(order=order, fills=fills, record=rec)


def local_reject(request: OrderRequest, reason: str, broker: str) -> Order:
    """An order tterm refused before it reached Tastytrade."""
    return Order.from_request(
        request, order_id=f"local-{request.client_order_id}", status=OrderStatus.REJECTED, broker=broker,
        reject_reason=reason,
    )  # fmt: skip


def vendor_reject(request: OrderRequest, reason: str, broker: str) -> Order:
    """An order Tastytrade refused at the door (400/422): it never existed there."""
    return Order.from_request(
        request,
        order_id=f"rejected-{request.client_order_id}",
        status=OrderStatus.REJECTED,
        broker=broker,
        reject_reason=f"Tastytrade refused the order: {reason}",
    )


def preview_of(placed: PlacedOrder, broker: str) -> OrderPreview:
    """A dry run (B5) as the ticket's preview: errors reject; the docs say a warning would too."""
    rejects = tuple(m.message or m.code for m in placed.errors)
    warnings = tuple(m.message or m.code for m in placed.warnings if (m.message or m.code) not in rejects)
    bp = placed.buying_power_effect
    fees = placed.fee_calculation
    value = None
    if bp is not None:
        value = signed(bp.isolated_order_margin_requirement, bp.isolated_order_margin_requirement_effect)
        value = abs(value) if value is not None else None
    commission = signed(fees.total_fees, fees.total_fees_effect) if fees is not None else None
    after = signed(bp.new_buying_power, bp.new_buying_power_effect) if bp is not None else None
    return OrderPreview(
        broker=broker,
        accepted=not rejects,
        rejects=rejects,
        warnings=warnings,
        order_value=value,
        commission=abs(commission) if commission is not None else None,
        buying_power_after=after,
    )


# =========================================================================== positions and balances


def position_of(rec: CurrentPosition, *, account: str, inst: Instrument) -> Position:
    qty = _whole(rec.signed_quantity, f"{rec.symbol} position quantity")
    mark = rec.mark_price if rec.mark_price is not None else rec.mark
    realized = signed(rec.realized_day_gain, rec.realized_day_gain_effect) or ZERO
    unrealized = ZERO
    if mark is not None and qty:
        unrealized = (mark - rec.average_open_price) * qty * rec.multiplier
    return Position(
        account=account,
        symbol=inst.symbol,
        quantity=qty,
        avg_price=rec.average_open_price,
        mark=mark,
        realized_pnl=realized,
        unrealized_pnl=unrealized,
        ts=when(rec.updated_at) or utcnow(),
    )


def snapshot_of(
    rec: Balance,
    *,
    account: str,
    margin: bool,
    realized: Decimal = ZERO,
    open_pnl: Decimal = ZERO,
    fees_today: Decimal = ZERO,
) -> AccountSnapshot:
    """Tastytrade's balance: cash as the balance, net liquidating value as the equity; the day's
    realized and open P&L are the positions' (``realized-day-gain``, and marks where known)."""
    bp = rec.derivative_buying_power if margin else (rec.equity_buying_power or rec.derivative_buying_power)
    return AccountSnapshot(
        account=account,
        balance=rec.cash_balance,
        equity=rec.net_liquidating_value,
        day_realized_pnl=realized,
        open_pnl=open_pnl,
        fees_today=fees_today,
        buying_power=bp,
        ts=when(rec.updated_at) or utcnow(),
    )

"""ProjectX JSON <-> tterm's core models: the integer enums, error codes, order bodies and entities.

Pure functions, no I/O. The vendor's integers stop here (B7.1, B9):

- OrderType 1 Limit, 2 Market, 3 StopLimit, 4 Stop, 5 TrailingStop, 6 JoinBid, 7 JoinAsk;
  OrderSide 0 buy (bid), 1 sell (ask); OrderStatus 0 None ... 8 Suspended; PositionType 1 Long,
  2 Short. (PX-PY3's enums are wrong, B12: these follow the gateway's docs and swagger.)
- Brackets are signed tick offsets from the fill: for a long entry the stop-loss ticks are
  negative and the take-profit positive, the reverse for a short (B7.2). tterm's Bracket holds
  positive distances (or prices); :func:`bracket_fields` signs them and refuses a price on the
  wrong side before anything is sent.
- ``trailPrice`` is a price level when placing and a distance in search results (PX-RS
  pitfall, B12); project-x-py 4.4 sends a distance when placing (the ``trail_price`` option
  switches to that). By default tterm sends the level (the last price minus the trail for a sell, plus it for a
  buy); the fake accepts either, as the vendor's wording is ambiguous. A level is the safer
  reading: a distance read as a level would put a buy stop far under the market.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from tterm.core.models import (
    ZERO,
    Bracket,
    Fill,
    Instrument,
    Order,
    OrderRequest,
    OrderRole,
    OrderSource,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)

JSON = dict[str, Any]

# B7.1
LIMIT, MARKET, STOP_LIMIT, STOP, TRAILING_STOP, JOIN_BID, JOIN_ASK = 1, 2, 3, 4, 5, 6, 7
BUY, SELL = 0, 1
LONG, SHORT = 1, 2
SUSPENDED = 8

ORDER_TYPES: dict[OrderType, int] = {
    OrderType.LIMIT: LIMIT,
    OrderType.MARKET: MARKET,
    OrderType.STOP_LIMIT: STOP_LIMIT,  # U12: in the swagger, not in the placing docs; the gateway's reason is shown
    OrderType.STOP: STOP,
    OrderType.TRAILING_STOP: TRAILING_STOP,
}
# Join bid/ask rest as limits at the touch: shown as limits.
CORE_TYPES: dict[int, OrderType] = {v: k for k, v in ORDER_TYPES.items()} | {
    JOIN_BID: OrderType.LIMIT,
    JOIN_ASK: OrderType.LIMIT,
}

STATUSES: dict[int, OrderStatus] = {
    0: OrderStatus.PENDING,
    1: OrderStatus.WORKING,
    2: OrderStatus.FILLED,
    3: OrderStatus.CANCELLED,
    4: OrderStatus.EXPIRED,
    5: OrderStatus.REJECTED,
    6: OrderStatus.PENDING,
    7: OrderStatus.WORKING,  # PendingCancellation: still working until the cancel lands
    8: OrderStatus.PENDING,  # Suspended: a bracket child waiting for its entry to fill
}

# B3, B9: error codes per endpoint, in words.
LOGIN_ERRORS = {
    1: "user not found",
    2: "password verification failed",
    3: "invalid credentials (check the user name and the API key)",
    4: "app not found",
    5: "app verification failed",
    6: "invalid device",
    7: "the firm's agreements are not signed yet",
    8: "unknown error",
    9: "no API subscription on this user",
    10: "API key logins are disabled for this user",
}
VALIDATE_ERRORS = {1: "invalid session", 2: "session not found", 3: "the session expired", 4: "unknown error"}
PLACE_ERRORS = {
    1: "account not found",
    2: "order rejected",
    3: "insufficient funds",
    4: "account violation",
    5: "outside trading hours",
    6: "an order is pending",
    7: "unknown error",
    8: "contract not found",
    9: "contract not active",
    10: "account rejected",
}
MODIFY_ERRORS = {
    1: "account not found",
    2: "order not found",
    3: "rejected",
    4: "an order is pending",
    5: "unknown error",
    6: "account rejected",
    7: "contract not found",
}
CANCEL_ERRORS = {1: "account not found", 2: "order not found", 3: "rejected", 4: "pending", 5: "unknown error",
                 6: "account rejected"}  # fmt: skip
CLOSE_ERRORS = {
    1: "account not found",
    2: "position not found",
    3: "contract not found",
    4: "contract not active",
    5: "rejected",
    6: "an order is pending",
    7: "unknown error",
    8: "account rejected",
}


class Refused(Exception):
    """An order request tterm will not send, with the reason in plain words."""


def words(table: Mapping[int, str], code: int, message: str) -> str:
    """A vendor refusal in plain words: the code's meaning plus the gateway's own text."""
    base = table.get(code, f"error code {code}")
    if message and message.lower() not in base.lower():
        return f"{base}: {message}"
    return base


# --------------------------------------------------------------------------- values


def dec(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def whole(value: Any) -> int:
    d = dec(value)
    return int(d) if d is not None else 0


def num(value: Decimal) -> float | int:
    """A price for the JSON body (the gateway binds numbers; ints stay ints)."""
    return int(value) if value == value.to_integral_value() else float(value)


def parse_time(value: Any) -> datetime | None:
    """A gateway timestamp (``2025-11-24T14:30:00.123+00:00``, ``...Z``, up to 7 fraction digits)."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if "." in text:
        head, _, tail = text.partition(".")
        digits = "".join(c for c in tail if c.isdigit())
        rest = tail[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest}"
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def unwrap(argument: Any) -> tuple[JSON | None, int | None]:
    """A user-hub event argument: the entity and its action (U11: a ``{action, data}`` wrapper is
    unwrapped; a bare entity counts as an upsert, action None)."""
    if isinstance(argument, Mapping) and isinstance(argument.get("data"), Mapping) and "id" not in argument:
        action = argument.get("action")
        return dict(argument["data"]), action if isinstance(action, int) else None
    if isinstance(argument, Mapping):
        return dict(argument), None
    return None, None


# --------------------------------------------------------------------------- orders out (core -> vendor)


def check_price(inst: Instrument, price: Decimal | None, what: str) -> Decimal | None:
    if price is None:
        return None
    if price <= 0:
        raise Refused(f"{what} must be positive, got {price}")
    if not inst.is_on_tick(price):
        raise Refused(
            f"{what} {price} is off {inst.symbol}'s tick grid (tick {inst.tick_size}; nearest "
            f"{inst.round_price(price, 'down')} or {inst.round_price(price, 'up')})"
        )
    return price


def bracket_fields(request: OrderRequest, inst: Instrument, reference: Decimal | None) -> dict[str, dict[str, int]]:
    """``stopLossBracket`` / ``takeProfitBracket`` with signed ticks (B7.2).

    Ticks are from the entry's fill; a bracket given as prices is turned into ticks from
    ``reference`` (the entry's limit or stop, else the touch), and a price on the wrong side
    of it is refused here rather than by the gateway ("Ticks should be less than zero when
    longing")."""
    b = request.bracket
    if b is None:
        return {}
    long = request.side is Side.BUY
    out: dict[str, dict[str, int]] = {}

    def ticks_of(price: Decimal, what: str, below: bool) -> int:
        check_price(inst, price, f"bracket {what} price")
        if reference is None:
            raise Refused(f"a bracket {what} given as a price needs a market price for {inst.symbol}; none yet")
        n = inst.ticks_between(reference, price)
        if n == 0 or (n < 0) != below:
            side = "below" if below else "above"
            raise Refused(
                f"bracket {what} {price} must be {side} the entry ({reference}) for a "
                f"{'long' if long else 'short'} entry"
            )
        return int(n)

    sl_below = long  # a long's stop sits below the fill
    if b.stop_loss_ticks is not None:
        out["stopLossBracket"] = {"ticks": -b.stop_loss_ticks if long else b.stop_loss_ticks, "type": STOP}
    elif b.stop_loss_price is not None:
        out["stopLossBracket"] = {"ticks": ticks_of(b.stop_loss_price, "stop-loss", sl_below), "type": STOP}
    if b.take_profit_ticks is not None:
        out["takeProfitBracket"] = {"ticks": b.take_profit_ticks if long else -b.take_profit_ticks, "type": LIMIT}
    elif b.take_profit_price is not None:
        out["takeProfitBracket"] = {"ticks": ticks_of(b.take_profit_price, "take-profit", not sl_below), "type": LIMIT}
    for key, spec in out.items():
        below = (key == "stopLossBracket") == long
        if (spec["ticks"] < 0) != below:  # pragma: no cover - a guard on the rule above
            raise Refused(f"bracket {key}: wrong tick sign for a {'long' if long else 'short'} entry")
    return out


def order_body(
    request: OrderRequest,
    account_id: int,
    contract_id: str,
    inst: Instrument,
    *,
    last: Decimal | None,
    reference: Decimal | None,
    trail_as: str = "level",
) -> JSON:
    """The ``Order/place`` body (B7.2); raises :class:`Refused` for what the gateway cannot take."""
    if request.legs:
        raise Refused("ProjectX takes no multi-leg orders")
    if request.quantity <= 0:
        raise Refused(f"quantity must be a positive number of contracts, got {request.quantity}")
    if request.tif not in (TimeInForce.DAY, TimeInForce.GTC):
        raise Refused(f"ProjectX takes no {request.tif.value.upper()} orders (its orders have no time in force)")
    kind = ORDER_TYPES.get(request.order_type)
    if kind is None:  # pragma: no cover - every core type is mapped
        raise Refused(f"ProjectX takes no {request.order_type.value} orders")
    body: JSON = {
        "accountId": account_id,
        "contractId": contract_id,
        "type": kind,
        "side": BUY if request.side is Side.BUY else SELL,
        "size": request.quantity,
        # vendor-updates.md: customTag is unique per account; it carries tterm's client order id.
        "customTag": request.client_order_id,
    }
    limit = check_price(inst, request.limit_price, "limit price")
    stop = check_price(inst, request.stop_price, "stop price")
    if request.order_type.needs_limit:
        if limit is None:
            raise Refused(f"a {request.order_type.value.replace('_', '-')} order needs a limit price")
        body["limitPrice"] = num(limit)
    if request.order_type.needs_stop:
        if stop is None:
            raise Refused(f"a {request.order_type.value.replace('_', '-')} order needs a stop price")
        body["stopPrice"] = num(stop)
    if request.order_type is OrderType.TRAILING_STOP:
        trail = request.trail_amount
        if trail is None or trail <= 0:
            raise Refused("a trailing stop needs a positive trail amount")
        if not inst.is_on_tick(trail):
            raise Refused(f"trail amount {trail} is not a whole number of {inst.symbol} ticks ({inst.tick_size})")
        if trail_as == "distance":
            body["trailPrice"] = num(trail)
        else:
            if last is None:
                raise Refused(
                    f"a trailing stop is placed at a price level from the last price; no price for {inst.symbol} yet"
                )
            level = last - trail if request.side is Side.SELL else last + trail
            if level <= 0:
                raise Refused(f"trail amount {trail} is larger than the price {last}")
            body["trailPrice"] = num(level)
    body.update(bracket_fields(request, inst, reference if reference is not None else (limit or stop or last)))
    return body


def local_reject(request: OrderRequest, reason: str, broker: str, *, symbol: str | None = None) -> Order:
    """A request refused before it reached ProjectX (nothing was sent)."""
    return Order.from_request(
        request, order_id=f"local-{request.client_order_id}", status=OrderStatus.REJECTED, broker=broker,
        symbol=symbol, reject_reason=reason,
    )  # fmt: skip


# --------------------------------------------------------------------------- entities in (vendor -> core)


@dataclass(slots=True)
class Known:
    """What tterm knows of an order the gateway does not say: its client order id, where it sits
    in a bracket, which part of tterm sent it."""

    client_order_id: str
    role: OrderRole = OrderRole.ENTRY
    parent_id: str | None = None
    source: OrderSource = OrderSource.API
    trail_amount: Decimal | None = None


def order_of(row: Mapping[str, Any], *, account: str, symbol: str, broker: str, known: Known | None) -> Order:
    """A GatewayUserOrder / Order/search row as an Order."""
    oid = str(row.get("id"))
    status = STATUSES.get(whole(row.get("status")), OrderStatus.PENDING)
    filled = whole(row.get("fillVolume"))
    size = whole(row.get("size"))
    if status is OrderStatus.WORKING and filled > 0:
        status = OrderStatus.PARTIALLY_FILLED
    kind = CORE_TYPES.get(whole(row.get("type")), OrderType.MARKET)
    tag = str(row.get("customTag") or "")
    coid = known.client_order_id if known is not None else (tag or f"px-{oid}")
    created = parse_time(row.get("creationTimestamp")) or datetime.now(UTC)
    updated = parse_time(row.get("updateTimestamp")) or created
    trail = known.trail_amount if known is not None else None
    if kind is OrderType.TRAILING_STOP:
        # B12: in order rows ``trailPrice`` is the distance.
        trail = dec(row.get("trailPrice")) or dec(row.get("trailDistance")) or trail
    return Order(
        order_id=oid,
        client_order_id=coid,
        account=account,
        symbol=symbol,
        side=Side.BUY if whole(row.get("side")) == BUY else Side.SELL,
        quantity=size,
        order_type=kind,
        status=status,
        limit_price=dec(row.get("limitPrice")) if kind.needs_limit else None,
        stop_price=dec(row.get("stopPrice")) if (kind.needs_stop or kind is OrderType.TRAILING_STOP) else None,
        filled_quantity=filled,
        avg_fill_price=dec(row.get("filledPrice")) if filled else None,
        role=known.role if known is not None else OrderRole.ENTRY,
        parent_id=known.parent_id if known is not None else None,
        source=known.source if known is not None else OrderSource.API,
        broker=broker,
        created_at=created,
        updated_at=updated,
        trail_amount=trail,
    )


def fill_of(row: Mapping[str, Any], *, account: str, symbol: str, client_order_id: str, broker: str) -> Fill:
    """A GatewayUserTrade / Trade/search row as a Fill (fees as the gateway charged them)."""
    return Fill(
        fill_id=str(row.get("id")),
        order_id=str(row.get("orderId")),
        client_order_id=client_order_id,
        account=account,
        symbol=symbol,
        side=Side.BUY if whole(row.get("side")) == BUY else Side.SELL,
        quantity=whole(row.get("size")),
        price=dec(row.get("price")) or ZERO,
        fee=dec(row.get("fees")) or ZERO,
        broker=broker,
        ts=parse_time(row.get("creationTimestamp")) or datetime.now(UTC),
    )


def signed_size(row: Mapping[str, Any]) -> int:
    """A position row's size with its direction (B8: size is positive, ``type`` 1 long / 2 short)."""
    size = whole(row.get("size"))
    return -size if whole(row.get("type")) == SHORT else size


def bracket_role(row: Mapping[str, Any]) -> OrderRole:
    """A bracket child's role from its type: a limit takes profit, anything else stops the loss."""
    return OrderRole.TAKE_PROFIT if whole(row.get("type")) in (LIMIT, JOIN_BID, JOIN_ASK) else OrderRole.STOP_LOSS


def is_bracket(request: OrderRequest) -> bool:
    return request.bracket is not None and not request.bracket.is_empty


def empty_bracket(b: Bracket | None) -> bool:
    return b is None or b.is_empty

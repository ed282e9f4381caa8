"""Tradovate JSON <-> tterm's core models: pure functions and read-only views, no I/O.

Vendor words and fields meet core models here: enums both ways, failure reasons in plain words,
numbers and times, ``md`` quote updates merged into Quotes (:class:`QuoteBook`), and request
bodies: an OrderRequest becomes a ``placeorder`` / ``placeoso`` / ``placeoco`` body, a change a
``modifyorder`` body. A request tterm will not send raises :class:`Refused` with the reason.
The replica's entities are joined into Orders, Fills and Positions by
:class:`~tterm.brokers.tradovate.replica.View`, with these functions.

Identifiers: accounts are ``f"{name}:{account name}"`` (the Tradovate account ``name``, e.g.
``DEMO123456``, is what ``accountSpec`` wants; the numeric ``accountId`` stays inside). Order
and fill ids are Tradovate's ids as strings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from tterm.core.broker import BrokerError
from tterm.core.models import (
    ZERO,
    AssetClass,
    GroupKind,
    Instrument,
    ModelError,
    Order,
    OrderGroup,
    OrderRequest,
    OrderRole,
    OrderSource,
    OrderStatus,
    OrderType,
    Quote,
    Side,
    TimeInForce,
    utcnow,
)

JSON = dict[str, Any]

# --------------------------------------------------------------------------- vendor vocabulary

ACTIONS = {Side.BUY: "Buy", Side.SELL: "Sell"}
SIDES = {"Buy": Side.BUY, "Sell": Side.SELL}
ORDER_TYPES = {
    OrderType.MARKET: "Market",
    OrderType.LIMIT: "Limit",
    OrderType.STOP: "Stop",
    OrderType.STOP_LIMIT: "StopLimit",
}
# Orders placed outside tterm may use types tterm does not send; they are shown as the nearest
# kind (the price fields still come from the order version).
VENDOR_TYPES = {
    "Market": OrderType.MARKET,
    "Limit": OrderType.LIMIT,
    "Stop": OrderType.STOP,
    "StopLimit": OrderType.STOP_LIMIT,
    "MIT": OrderType.LIMIT,
    "LimitIfTouched": OrderType.LIMIT,
    "QTS": OrderType.MARKET,
    "TrailingStop": OrderType.STOP,
    "TrailingStopLimit": OrderType.STOP_LIMIT,
}
TIFS = {TimeInForce.DAY: "Day", TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK"}
# GTD (good till date) has no tterm equivalent; it is shown as GTC.
VENDOR_TIFS = {"Day": TimeInForce.DAY, "GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK}
VENDOR_TIFS["GTD"] = TimeInForce.GTC

STATUSES = {
    "Working": OrderStatus.WORKING,
    "PendingNew": OrderStatus.PENDING,
    "PendingReplace": OrderStatus.WORKING,
    "PendingCancel": OrderStatus.WORKING,
    "Filled": OrderStatus.FILLED,
    "Canceled": OrderStatus.CANCELLED,
    "Rejected": OrderStatus.REJECTED,
    "Expired": OrderStatus.EXPIRED,
    # A suspended order (a bracket child waiting for its entry) is held at Tradovate, not working
    # at the exchange yet; it can still be cancelled.
    "Suspended": OrderStatus.PENDING,
    "Unknown": OrderStatus.PENDING,
}

#: A5.1 failureReason values in plain words (the vendor's failureText follows when it adds detail).
FAILURE_WORDS: Mapping[str, str] = {
    "AccountClosed": "the account is closed",
    "AdvancedTrailingStopUnsupported": "advanced trailing stops are not supported",
    "AnotherCommandPending": "another change to this order is still pending; try again in a moment",
    "BackMonthProhibited": "this account may not trade back-month contracts",
    "ExecutionProviderNotConfigured": "the account has no execution provider configured",
    "ExecutionProviderUnavailable": "the execution provider is unavailable",
    "InvalidContract": "the contract cannot be traded",
    "InvalidPrice": "the price is not valid",
    "LiquidationOnly": "the account is liquidation-only: only orders that reduce a position are allowed",
    "LiquidationOnlyBeforeExpiration": "the contract is near expiry: liquidation only",
    "MaxOrderQtyIsNotSpecified": "the account has no maximum order quantity set",
    "MaxOrderQtyLimitReached": "the quantity is above the account's maximum order size",
    "MaxPosLimitMisconfigured": "the account's position limit is misconfigured",
    "MaxPosLimitReached": "the order would go over the account's position limit",
    "MaxTotalPosLimitReached": "the order would go over the account's total position limit",
    "MultipleAccountPlanRequired": "a multiple-account plan is required",
    "NoQuote": "there is no market quote for the contract",
    "NotEnoughLiquidity": "there is not enough liquidity",
    "OtherExecutionRelated": "the exchange or execution venue refused it",
    "ParentRejected": "its parent order was rejected",
    "RiskCheckTimeout": "the risk check timed out",
    "SessionClosed": "the market is closed",
    "TooLate": "too late: the order is no longer working",
    "TradingLocked": "trading is locked on this account",
    "TrailingStopNonOrderQtyModify": "only the quantity of a trailing stop can be changed",
    "Unauthorized": "this login may not trade the account",
    "UnknownReason": "Tradovate gave no reason",
    "Unsupported": "Tradovate does not support this request",
    "KeyInformationDocumentRequired": "a key information document must be acknowledged on the Tradovate website",
    "SSFRiskDisclosureAcknowledgmentRequired": (
        "the single-stock futures risk disclosure must be acknowledged on the Tradovate website"
    ),
}


class Refused(Exception):
    """An order request tterm will not send, with the reason in plain words."""


def failure_words(reason: Any, text: Any) -> str:
    """A vendor refusal (``failureReason`` / ``failureText`` / ``errorText``) in plain words."""
    reason = str(reason or "").strip()
    text = str(text or "").strip()
    words = FAILURE_WORDS.get(reason, "")
    if not words and reason and reason != "Success":
        words = f"refused ({reason})"
    if words and text and text.lower() not in words.lower():
        return f"{words} (Tradovate: {text})"
    return words or text or "refused by Tradovate without a reason"


# --------------------------------------------------------------------------- scalars


class VendorDataError(BrokerError):
    """Tradovate sent a value tterm cannot use (a count that is not a whole number, a number far
    too large to be real); the update carrying it is refused and reported (tests/fuzz)."""


#: Digits before the point beyond any real quantity, id or price: past it a number is damaged.
MAX_DIGITS = 15


def dec(value: Any) -> Decimal | None:
    """A JSON number as a Decimal (via its shortest text, so 6650.25 stays 6650.25)."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not d.is_finite():
        return None
    if d.adjusted() >= MAX_DIGITS:  # adjusted(): no arithmetic, so no Overflow on 1E+999999999
        raise VendorDataError(f"Tradovate sent the number {str(value)[:24]!r}, too large to be real")
    return d


def count(value: Any, what: str) -> int:
    """A whole number (a quantity or position, signed; 0 when missing), or VendorDataError."""
    if value is None:
        return 0
    d = dec(value)
    if d is None or d != d.to_integral_value():
        raise VendorDataError(f"Tradovate sent {what} {str(value)[:24]!r}, not a whole number")
    return int(d)


def num(price: Decimal) -> float | int:
    """A Decimal price as a JSON number (whole numbers stay ints)."""
    return int(price) if price == price.to_integral_value() else float(price)


def parse_time(value: Any) -> datetime:
    """An ISO-8601 time from Tradovate (``2025-11-24T06:12:00.000Z``) as an aware datetime."""
    if not isinstance(value, str) or not value:
        raise BrokerError(f"Tradovate sent an unreadable time: {value!r}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BrokerError(f"Tradovate sent an unreadable time: {value!r}") from None
    if parsed.tzinfo is None:
        # The vendor documents UTC; a bare time is read as UTC rather than the local zone.
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def time_or_none(value: Any) -> datetime | None:
    try:
        return parse_time(value)
    except BrokerError:
        return None


def account_usable(account: Mapping[str, Any]) -> bool:
    """U4: older schemas say ``active``, newer ``closed``/``restricted``; accept both."""
    closed = account.get("closed") is True or account.get("archived") is True
    return not closed and account.get("active") is not False


def check_price(inst: Instrument, price: Decimal | None, what: str) -> Decimal | None:
    """``price`` on the instrument's tick grid, or :class:`Refused` naming the nearest valid prices."""
    if price is None:
        return None
    try:
        return inst.round_price(price, "reject")
    except ModelError as exc:
        raise Refused(f"{what}: {exc}") from None


def instrument_from_product(contract: Mapping[str, Any], product: Mapping[str, Any]) -> Instrument | None:
    """A futures instrument from Tradovate's contract and product (tick size, value per point)."""
    name = str(contract.get("name") or "")
    tick = dec(product.get("tickSize"))
    vpp = dec(product.get("valuePerPoint"))
    if not name or tick is None or vpp is None or tick <= 0 or vpp <= 0:
        return None
    return Instrument(
        symbol=name.upper(),
        asset_class=AssetClass.FUTURE,
        tick_size=tick,
        tick_value=tick * vpp,
        description=str(product.get("description") or name),
        root=str(product.get("name") or ""),
        vendor_id=str(contract.get("id") or ""),
    )


# --------------------------------------------------------------------------- orders tterm sent


@dataclass(slots=True)
class Placed:
    """What tterm knows about an order it sent (for orders whose version has not arrived yet)."""

    client_order_id: str
    account_id: int
    contract_id: int
    side: Side
    quantity: int
    order_type: OrderType
    limit_price: Decimal | None
    stop_price: Decimal | None
    tif: TimeInForce
    role: OrderRole = OrderRole.ENTRY
    parent_id: int | None = None
    source: OrderSource = OrderSource.API


def local_reject(request: OrderRequest, reason: str, broker: str, *, symbol: str | None = None) -> Order:
    """A request refused before it reached Tradovate."""
    return Order.from_request(
        request,
        order_id=f"local-{request.client_order_id}",
        status=OrderStatus.REJECTED,
        broker=broker,
        symbol=symbol,
        reject_reason=reason,
    )


def vendor_reject(request: OrderRequest, result: Mapping[str, Any], broker: str, symbol: str) -> Order:
    """A request Tradovate answered with ``failureReason`` / ``failureText`` (no order id)."""
    reason = failure_words(result.get("failureReason"), result.get("failureText") or result.get("errorText"))
    order = local_reject(request, reason, broker, symbol=symbol)
    return order.evolve(order_id=f"rejected-{request.client_order_id}")


# --------------------------------------------------------------------------- request bodies (core -> vendor)


def _prices(body: JSON, order_type: OrderType, limit: Decimal | None, stop: Decimal | None) -> JSON:
    if limit is not None and order_type.needs_limit:
        body["price"] = num(limit)
    if stop is not None and order_type.needs_stop:
        body["stopPrice"] = num(stop)
    return body


def checked_prices(request: OrderRequest, inst: Instrument) -> tuple[Decimal | None, Decimal | None]:
    """The request's limit and stop prices on the tick grid, each present where its type needs it."""
    if request.order_type not in ORDER_TYPES:
        raise Refused(f"Tradovate in tterm does not send {request.order_type.value.replace('_', ' ')} orders")
    limit = check_price(inst, request.limit_price, "limit price")
    stop = check_price(inst, request.stop_price, "stop price")
    kind = request.order_type.value.replace("_", "-")
    if request.order_type.needs_limit and limit is None:
        raise Refused(f"a {kind} order needs a limit price")
    if request.order_type.needs_stop and stop is None:
        raise Refused(f"a {kind} order needs a stop price")
    return limit, stop


#: Sources of orders no person placed directly (partner best-practices page: set isAutomated).
AUTOMATED_SOURCES = frozenset({OrderSource.WEBHOOK, OrderSource.RISK, OrderSource.API})


def is_automated(source: OrderSource, forced: bool | None) -> bool:
    """``isAutomated`` for an order from ``source`` (``forced``: the user's setting, if any)."""
    return forced if forced is not None else source in AUTOMATED_SOURCES


def order_body(
    request: OrderRequest,
    account: Mapping[str, Any],
    contract: Mapping[str, Any],
    limit: Decimal | None,
    stop: Decimal | None,
    *,
    is_automated: bool,
) -> JSON:
    """A5.1 ``placeorder`` body (also the entry of ``placeoso`` / ``placeoco``)."""
    body: JSON = {
        "accountSpec": account["name"],
        "accountId": account["id"],
        "clOrdId": request.client_order_id,
        "action": ACTIONS[request.side],
        "symbol": contract["name"],
        "orderQty": request.quantity,
        "orderType": ORDER_TYPES[request.order_type],
        "timeInForce": TIFS[request.tif],
        "isAutomated": is_automated,
    }
    return _prices(body, request.order_type, limit, stop)


def restrained(request: OrderRequest, limit: Decimal | None, stop: Decimal | None) -> JSON:
    """A5.4 RestrainedOrderVersion: an OSO bracket or the OCO ``other`` order (no quantity)."""
    body: JSON = {
        "action": ACTIONS[request.side],
        "clOrdId": request.client_order_id,
        "orderType": ORDER_TYPES[request.order_type],
        "timeInForce": TIFS[request.tif],
    }
    return _prices(body, request.order_type, limit, stop)


def bracket_children(
    request: OrderRequest,
    inst: Instrument,
    limit: Decimal | None,
    stop: Decimal | None,
    quote: Quote | None,
) -> list[tuple[OrderRole, JSON, Decimal]]:
    """The OSO take-profit (limit) and stop-loss (stop) orders of ``request.bracket``, priced from
    the entry (a market entry: from the quote's touch)."""
    bracket = request.bracket
    assert bracket is not None
    if request.order_type is OrderType.MARKET:
        # Priced from the side the entry fills against; an absent side is no price (not the last
        # trade, not an old quote).
        touch = "offer" if request.side is Side.BUY else "bid"
        ref = None
        if quote is not None:
            ref = quote.ask if request.side is Side.BUY else quote.bid
        needs_ref = bracket.take_profit_ticks is not None or bracket.stop_loss_ticks is not None
        if ref is None and needs_ref:
            why = (
                f"Tradovate shows no {touch} for {inst.symbol} right now"
                if quote is not None
                else (f"no {inst.symbol} quote")
            )
            raise Refused(
                f"{why}, so a bracket in ticks from a market entry cannot be priced; give the bracket as "
                "prices, or use a limit entry"
            )
    else:
        ref = limit if request.order_type is OrderType.LIMIT else (limit or stop)
    tp, sl = bracket.resolve(ref if ref is not None else ZERO, request.side, inst)
    tif = TIFS[request.tif if request.tif in (TimeInForce.DAY, TimeInForce.GTC) else TimeInForce.DAY]
    action = ACTIONS[request.side.opposite]
    out: list[tuple[OrderRole, JSON, Decimal]] = []
    if tp is not None:
        tp = check_price(inst, tp, "take-profit")
        assert tp is not None
        if ref is not None and (tp - ref) * request.side.sign <= 0:
            raise Refused(f"the take-profit {tp} is not beyond the entry {ref} in the trade's favour")
        child = {"action": action, "clOrdId": f"{request.client_order_id}-tp", "orderType": "Limit"}
        out.append((OrderRole.TAKE_PROFIT, {**child, "price": num(tp), "timeInForce": tif}, tp))
    if sl is not None:
        sl = check_price(inst, sl, "stop-loss")
        assert sl is not None
        if ref is not None and (ref - sl) * request.side.sign <= 0:
            raise Refused(f"the stop-loss {sl} is not beyond the entry {ref} against the trade")
        child = {"action": action, "clOrdId": f"{request.client_order_id}-sl", "orderType": "Stop"}
        out.append((OrderRole.STOP_LOSS, {**child, "stopPrice": num(sl), "timeInForce": tif}, sl))
    return out


def modify_body(
    oid: int,
    order: Order,
    version: Mapping[str, Any],
    quantity: int,
    limit: Decimal | None,
    stop: Decimal | None,
    *,
    is_automated: bool,
) -> JSON:
    """A5.2 ``modifyorder``: quantity and type must be sent even when only a price changes."""
    body: JSON = {
        "orderId": oid,
        "orderQty": quantity,
        "orderType": version.get("orderType") or ORDER_TYPES[order.order_type],
    }
    if is_automated:
        body["isAutomated"] = True  # optional, false when left out
    _prices(body, order.order_type, limit, stop)
    if version.get("timeInForce"):
        body["timeInForce"] = version["timeInForce"]
    return body


def check_group(group: OrderGroup) -> None:
    """What Tradovate's grouped orders can carry; anything else is refused with the reason."""
    orders = group.orders
    if group.kind is GroupKind.OCO and len(orders) != 2:
        raise Refused(f"an OCO group has exactly two orders, got {len(orders)}")
    if group.kind is GroupKind.OTOCO and len(orders) not in (2, 3):
        raise Refused(f"an OTOCO group is an entry and one or two exits, got {len(orders)} orders")
    first = orders[0]
    for r in orders:
        if r.account != first.account or r.symbol != first.symbol:
            raise Refused("every order of a group must be for the same account and symbol at Tradovate")
        if r.bracket is not None or r.legs:
            raise Refused("an order of a group cannot carry its own bracket or legs")
        if r.quantity <= 0:
            raise Refused(f"quantity must be a positive number of contracts, got {r.quantity}")
        if r.quantity != first.quantity:
            # placeoco / placeoso give every other order the first order's quantity (A5.4, A5.5).
            raise Refused("Tradovate gives every order of a group the first order's quantity; make them equal")
    if group.kind is GroupKind.OTOCO:
        for r in orders[1:]:
            if r.side is first.side:
                raise Refused("the exits of an OTOCO group must be on the other side of the entry")
            if r.order_type is OrderType.MARKET:
                raise Refused("an exit of an OTOCO group must be a limit or a stop, not a market order")


def exit_role(request: OrderRequest) -> OrderRole:
    """The role of an exit order of a group: a limit takes profit, anything else protects."""
    return OrderRole.TAKE_PROFIT if request.order_type is OrderType.LIMIT else OrderRole.STOP_LOSS


def placed(
    request: OrderRequest,
    account_id: int,
    contract_id: int,
    limit: Decimal | None,
    stop: Decimal | None,
    *,
    quantity: int | None = None,
    role: OrderRole = OrderRole.ENTRY,
    parent_id: int | None = None,
) -> Placed:
    """What tterm remembers of ``request`` once Tradovate gave it an id."""
    return Placed(
        client_order_id=request.client_order_id,
        account_id=account_id,
        contract_id=contract_id,
        side=request.side,
        quantity=quantity if quantity is not None else request.quantity,
        order_type=request.order_type,
        limit_price=limit,
        stop_price=stop,
        tif=request.tif,
        role=role,
        parent_id=parent_id,
        source=request.source,
    )


# --------------------------------------------------------------------------- quotes


@dataclass(slots=True)
class _QuoteState:
    """One contract's latest quote."""

    symbol: str
    instrument: Instrument
    quote: Quote | None = None


class QuoteBook:
    """Turns ``md`` quote updates into Quotes.

    example-api-js (WebSockets EX-08): "Any of entries may absent if no data available for
    them", and either ``price`` or ``size`` may be missing inside an entry. So each update is the
    whole quote: an absent ``Bid`` or ``Offer`` is no bid or offer (an empty side), never the
    last one seen, and an entry without a price gives no price. The reference (A6.2) reads the
    same sentence without "if no data available" as "partial updates"; keeping old values would
    show a stale price and price brackets from it, so tterm takes the vendor's sentence.
    """

    def __init__(self) -> None:
        self._states: dict[int, _QuoteState] = {}

    def merge(self, q: Mapping[str, Any], instrument_of: Callable[[int], Instrument | None]) -> Quote | None:
        """The quote after update ``q`` (None: a contract tterm did not subscribe to)."""
        cid = q.get("contractId")
        if not isinstance(cid, int):
            return None
        state = self._states.get(cid)
        if state is None:
            inst = instrument_of(cid)
            if inst is None:
                return None
            state = self._states[cid] = _QuoteState(symbol=inst.symbol, instrument=inst)
        entries = q.get("entries")
        if not isinstance(entries, dict):
            return None
        inst = state.instrument

        def price(key: str) -> Decimal | None:
            entry = entries.get(key)
            d = dec(entry.get("price")) if isinstance(entry, dict) else None
            return inst.round_price(d) if d is not None and d > 0 else None

        def size(key: str) -> int:
            entry = entries.get(key)
            try:
                return max(0, int(entry.get("size") or 0)) if isinstance(entry, dict) else 0
            except (TypeError, ValueError):
                return 0

        bid, ask = price("Bid"), price("Offer")
        if "EmptyBook" in entries:
            bid = ask = None
        state.quote = Quote(
            symbol=state.symbol,
            bid=bid,
            ask=ask,
            last=price("Trade"),
            bid_size=size("Bid") if bid is not None else 0,
            ask_size=size("Offer") if ask is not None else 0,
            volume=size("TotalTradeVolume"),
            prev_close=price("SettlementPrice"),
            ts=time_or_none(q.get("timestamp")) or utcnow(),
        )
        return state.quote

    def drop(self, contract_id: int) -> None:
        self._states.pop(contract_id, None)

    def last(self, symbol: str) -> Quote | None:
        for state in self._states.values():
            if state.symbol == symbol:
                return state.quote
        return None

    def mark(self, symbol: str) -> Decimal | None:
        quote = self.last(symbol)
        return quote.mark if quote is not None else None

"""Schwab Trader API JSON <-> tterm's core models: pure functions, no I/O.

Orders (A6.3, A7): an OrderRequest becomes an order body (equities and options; market, limit,
stop, stop-limit, trailing stop; multi-leg NET_DEBIT / NET_CREDIT with the strategy named; TRIGGER
brackets and OCO groups as nested ``childOrderStrategies``); a GET order tree becomes Orders (one
per node with legs: a TRIGGER's exits carry ``parent_id`` and an OCO pair its container id as
``oco_group``) and Fills (each execution leg of ``orderActivityCollection``). Accounts (A6.1,
A6.2): positions and balances. Errors (A3): both of Schwab's error shapes become plain words.

A request tterm will not send raises :class:`Refused` with the reason. Market data (quotes,
streamer fields, chains, candles) is mapped in :mod:`tterm.brokers.schwab.market`; symbols in
:mod:`tterm.brokers.schwab.symbols`.

Identifiers: accounts are ``f"{name}:{account number}"`` (the plain number the user knows; the
hash Schwab wants in paths stays inside the adapter). Order ids are Schwab's ``orderId``; Schwab
has no client order id, so the adapter remembers the one of each order tterm placed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from tterm.core.models import (
    ZERO,
    Account,
    AccountKind,
    AccountSnapshot,
    AssetClass,
    Instrument,
    OptionRight,
    Order,
    OrderLeg,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    PositionEffect,
    PriceEffect,
    Side,
    TimeInForce,
)

JSON = dict[str, Any]


class Refused(Exception):
    """An order tterm will not send as asked; the message says why (nothing was sent)."""


class VendorDataError(ValueError):
    """Schwab sent a value tterm cannot use (a number far too large to be real): the row it came
    in is refused whole, the previous picture kept, and the user told (tests/fuzz found these)."""


#: Digits before the point beyond any real quantity or amount: a JSON number past it is damaged
#: data, refused before int() or arithmetic spends time and memory on a million-digit value.
MAX_DIGITS = 15


def obj(value: Any) -> Mapping[str, Any]:
    """A JSON object, or {} where the vendor sent none (or something else in its place)."""
    return value if isinstance(value, Mapping) else {}


def objects(value: Any) -> list[Mapping[str, Any]]:
    """The objects of a JSON array ([] for a missing or non-array value; non-objects skipped)."""
    if not isinstance(value, list | tuple):
        return []
    return [v for v in value if isinstance(v, Mapping)]


# --------------------------------------------------------------------------- numbers and times


def dec(value: Any) -> Decimal | None:
    """A JSON number or decimal string as Decimal (None for null, NaN, or not a number)."""
    if value is None or isinstance(value, bool):
        return None
    if not isinstance(value, int | float | str | Decimal):
        return None
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return None
    if not d.is_finite():
        return None
    if d.adjusted() >= MAX_DIGITS:  # adjusted(): no arithmetic, so no Overflow on 1E+999999999
        raise VendorDataError(f"Schwab sent the number {str(value)[:24]!r}, too large to be real")
    return d


def whole(value: Any) -> int:
    d = dec(value)
    return int(d) if d is not None else 0


def count(value: Any, what: str) -> int:
    """A quantity (0 when missing); a negative one is damaged data (VendorDataError)."""
    n = whole(value)
    if n < 0:
        raise VendorDataError(f"Schwab sent a negative {what} ({n})")
    return n


def parse_time(value: Any) -> datetime | None:
    """Trader API times: ``2024-04-04T15:56:07+0000`` (A3: no colon in the offset), ``...Z``, ISO."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        return None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def iso(ts: datetime) -> str:
    """A query time the Trader API takes: ``yyyy-MM-dd'T'HH:mm:ss.SSSZ`` in UTC (A3)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def price_text(price: Decimal) -> str:
    """A price as Schwab's samples send it: a decimal string (A3), never a float."""
    return f"{price:f}"


# --------------------------------------------------------------------------- errors


def error_text(status: int, body: Any) -> str:
    """Plain words from either error shape (A3): Trader ``{message, errors}`` or Market Data
    ``{errors: [{title, detail}]}``; an OAuth ``{error, error_description}`` too."""
    if isinstance(body, Mapping):
        parts: list[str] = []
        if isinstance(body.get("message"), str):
            parts.append(body["message"])
        errors = body.get("errors")
        if isinstance(errors, list):
            for e in errors:
                if isinstance(e, str) and e not in parts:
                    parts.append(e)
                elif isinstance(e, Mapping):
                    text = str(e.get("detail") or e.get("title") or "")
                    if text and text not in parts:
                        parts.append(text)
        if isinstance(body.get("error"), str):
            parts.append(": ".join(x for x in (body["error"], str(body.get("error_description") or "")) if x))
        if isinstance(body.get("fault"), Mapping):  # A3 (SDEV): an option chain too big for the gateway
            parts.append(str(body["fault"].get("faultstring") or "gateway fault"))
        if parts:
            return "; ".join(parts)
    return f"HTTP {status}"


# --------------------------------------------------------------------------- vocabulary

TIFS = {
    TimeInForce.DAY: "DAY",
    TimeInForce.GTC: "GOOD_TILL_CANCEL",
    TimeInForce.IOC: "IMMEDIATE_OR_CANCEL",
    TimeInForce.FOK: "FILL_OR_KILL",
}
VENDOR_TIFS = {v: k for k, v in TIFS.items()} | {
    "END_OF_WEEK": TimeInForce.GTC,  # good until a date: shown as GTC (tterm has no GTD)
    "END_OF_MONTH": TimeInForce.GTC,
    "NEXT_END_OF_MONTH": TimeInForce.GTC,
}
ORDER_TYPES = {
    OrderType.MARKET: "MARKET",
    OrderType.LIMIT: "LIMIT",
    OrderType.STOP: "STOP",
    OrderType.STOP_LIMIT: "STOP_LIMIT",
    OrderType.TRAILING_STOP: "TRAILING_STOP",
}
# Orders placed elsewhere may use types tterm does not send: shown as the nearest kind.
VENDOR_TYPES = {v: k for k, v in ORDER_TYPES.items()} | {
    "NET_DEBIT": OrderType.LIMIT,
    "NET_CREDIT": OrderType.LIMIT,
    "NET_ZERO": OrderType.LIMIT,
    "MARKET_ON_CLOSE": OrderType.MARKET,
    "LIMIT_ON_CLOSE": OrderType.LIMIT,
    "TRAILING_STOP_LIMIT": OrderType.TRAILING_STOP,
    "CABINET": OrderType.LIMIT,
    "NON_MARKETABLE": OrderType.LIMIT,
    "EXERCISE": OrderType.MARKET,
}
BUY_INSTRUCTIONS = frozenset({"BUY", "BUY_TO_COVER", "BUY_TO_OPEN", "BUY_TO_CLOSE"})
CLOSING_INSTRUCTIONS = frozenset({"SELL", "BUY_TO_COVER", "BUY_TO_CLOSE", "SELL_TO_CLOSE"})
# A6.3 statuses. Waiting ones: accepted by Schwab, not working at the market yet.
STATUSES = {
    "AWAITING_PARENT_ORDER": OrderStatus.PENDING,
    "AWAITING_CONDITION": OrderStatus.PENDING,
    "AWAITING_MANUAL_REVIEW": OrderStatus.PENDING,
    "AWAITING_RELEASE_TIME": OrderStatus.PENDING,
    "PENDING_ACKNOWLEDGEMENT": OrderStatus.PENDING,
    "NEW": OrderStatus.PENDING,
    "UNKNOWN": OrderStatus.PENDING,
    "ACCEPTED": OrderStatus.WORKING,
    "PENDING_ACTIVATION": OrderStatus.WORKING,
    "QUEUED": OrderStatus.WORKING,  # entered outside its session; works when it opens
    "AWAITING_STOP_CONDITION": OrderStatus.WORKING,
    "WORKING": OrderStatus.WORKING,
    "PENDING_CANCEL": OrderStatus.WORKING,
    "PENDING_REPLACE": OrderStatus.WORKING,
    "PENDING_RECALL": OrderStatus.WORKING,
    "AWAITING_UR_OUT": OrderStatus.WORKING,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELLED,
    "REPLACED": OrderStatus.CANCELLED,  # a replace is a new order; the old one ends
    "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.EXPIRED,
}


def instruction(asset: AssetClass, side: Side, effect: PositionEffect) -> str:
    """A7 instructions: BUY/SELL/SELL_SHORT/BUY_TO_COVER for shares, *_TO_OPEN/*_TO_CLOSE for options.

    ``effect`` must be OPEN or CLOSE here (:func:`resolve_effect` decides AUTO from the position).
    """
    if asset is AssetClass.OPTION:
        verb = "BUY" if side is Side.BUY else "SELL"
        return f"{verb}_TO_{'OPEN' if effect is PositionEffect.OPEN else 'CLOSE'}"
    if side is Side.BUY:
        return "BUY_TO_COVER" if effect is PositionEffect.CLOSE else "BUY"
    return "SELL" if effect is PositionEffect.CLOSE else "SELL_SHORT"


def resolve_effect(symbol: str, side: Side, quantity: int, held: int, effect: PositionEffect) -> PositionEffect:
    """Open or close, from the position held: Schwab wants the instruction to say which, and refuses
    a sell of shares not held (SELL) or a short sale of shares held (SELL_SHORT)."""
    closes = held != 0 and (held > 0) != (side is Side.BUY)
    if effect is PositionEffect.CLOSE:
        if not closes:
            raise Refused(
                f"{symbol}: a {side.value} to close needs an opposite position, and the account holds {held:+d}"
            )
        if quantity > abs(held):
            raise Refused(f"{symbol}: {side.value} {quantity} to close is more than the {abs(held)} held")
        return PositionEffect.CLOSE
    if effect is PositionEffect.OPEN:
        if closes:
            raise Refused(
                f"{symbol}: the account holds {held:+d}, so a {side.value} closes it; Schwab will not open the other "
                f"side while it is held (send it to close, or close first)"
            )
        return PositionEffect.OPEN
    if not closes:
        return PositionEffect.OPEN
    if quantity > abs(held):
        raise Refused(
            f"{symbol}: {side.value} {quantity} would close the {held:+d} held and open the other side; Schwab needs "
            f"that as two orders (close {abs(held)}, then open {quantity - abs(held)})"
        )
    return PositionEffect.CLOSE


def complex_strategy(legs: Sequence[tuple[OrderLeg, Instrument]]) -> str:
    """The ``complexOrderStrategyType`` the legs form (A7); CUSTOM when no named shape fits."""
    opts = [(leg, inst) for leg, inst in legs if inst.asset_class is AssetClass.OPTION]
    stock = [leg for leg, inst in legs if inst.asset_class is not AssetClass.OPTION]
    ratios = {leg.ratio for leg, _ in legs}
    expiries = {inst.expiry for _, inst in opts}
    rights = {inst.right for _, inst in opts}
    strikes = sorted({inst.strike for _, inst in opts if inst.strike is not None})
    sides = [leg.side for leg, _ in opts]
    n = len(legs)
    if stock:
        if n == 2 and len(stock) == 1 and rights == {OptionRight.CALL}:
            return "COVERED"
        return "CUSTOM"
    if n == 2 and ratios == {1}:
        if len(rights) == 1 and len(expiries) == 1 and len(strikes) == 2 and sides[0] is not sides[1]:
            return "VERTICAL"
        if len(rights) == 2 and len(expiries) == 1 and sides[0] is sides[1]:
            return "STRADDLE" if len(strikes) == 1 else "STRANGLE"
        if len(rights) == 1 and len(expiries) == 2 and sides[0] is not sides[1]:
            return "CALENDAR" if len(strikes) == 1 else "DIAGONAL"
    if n == 3 and len(rights) == 1 and len(expiries) == 1 and len(strikes) == 3:
        by_strike = sorted(opts, key=lambda p: p[1].strike or ZERO)
        if [leg.ratio for leg, _ in by_strike] == [1, 2, 1] and strikes[1] - strikes[0] == strikes[2] - strikes[1]:
            return "BUTTERFLY"
    if n == 4 and ratios == {1} and len(expiries) == 1:
        if len(rights) == 1 and len(strikes) == 4:
            return "CONDOR"
        if len(rights) == 2:
            puts = sorted((inst.strike, leg.side) for leg, inst in opts if inst.right is OptionRight.PUT)
            calls = sorted((inst.strike, leg.side) for leg, inst in opts if inst.right is OptionRight.CALL)
            if (
                len(puts) == 2
                and len(calls) == 2
                and puts[1][0] < calls[0][0]  # type: ignore[operator]  # options always have a strike
                and puts[0][1] is not puts[1][1]
                and calls[0][1] is not calls[1][1]
                and puts[0][1] is calls[1][1]
            ):
                return "IRON_CONDOR"
    return "CUSTOM"


# --------------------------------------------------------------------------- order bodies (A7)


@dataclass(frozen=True, slots=True)
class LegSpec:
    """One leg as Schwab gets it: its Schwab symbol, asset type, instruction and share/contract count."""

    symbol: str
    asset_type: str  # EQUITY or OPTION
    instruction: str
    quantity: int


def leg_json(leg: LegSpec) -> JSON:
    return {
        "instruction": leg.instruction,
        "quantity": leg.quantity,
        "instrument": {"symbol": leg.symbol, "assetType": leg.asset_type},
    }


def single_body(
    request: OrderRequest, leg: LegSpec, *, limit: Decimal | None, stop: Decimal | None, session: str = "NORMAL"
) -> JSON:
    """One single-leg order (schwab-py's builders send no top-level quantity for these)."""
    body: JSON = {
        "session": session,
        "duration": TIFS[request.tif],
        "orderType": ORDER_TYPES[request.order_type],
        "orderStrategyType": "SINGLE",
    }
    if limit is not None:
        body["price"] = price_text(limit)
    if stop is not None:
        body["stopPrice"] = price_text(stop)
    if request.order_type is OrderType.TRAILING_STOP:
        assert request.trail_amount is not None
        # A7: the stop follows the bid for a sell and the ask for a buy, by a fixed amount.
        body |= {
            "stopPriceLinkBasis": "BID" if request.side is Side.SELL else "ASK",
            "stopPriceLinkType": "VALUE",
            "stopPriceOffset": price_text(request.trail_amount),
        }
    body["orderLegCollection"] = [leg_json(leg)]
    return body


def multi_body(request: OrderRequest, legs: Sequence[LegSpec], strategy: str, limit: Decimal | None) -> JSON:
    """A multi-leg order: MARKET, or NET_DEBIT / NET_CREDIT at the net price per unit (A7)."""
    if request.order_type is OrderType.MARKET:
        order_type = "MARKET"
    elif request.order_type is OrderType.LIMIT:
        if request.price_effect is None:
            raise Refused("a multi-leg limit needs its net price marked debit or credit")
        order_type = "NET_DEBIT" if request.price_effect is PriceEffect.DEBIT else "NET_CREDIT"
    else:
        raise Refused(f"Schwab prices multi-leg orders at market or as a net debit or credit, not {request.order_type}")
    body: JSON = {
        "session": "NORMAL",  # options trade only in the regular session
        "duration": TIFS[request.tif],
        "orderType": order_type,
        "complexOrderStrategyType": strategy,
        "quantity": request.quantity,
        "orderStrategyType": "SINGLE",
    }
    if limit is not None:
        body["price"] = price_text(limit)
    body["orderLegCollection"] = [leg_json(leg) for leg in legs]
    return body


def trigger(parent: JSON, *children: JSON) -> JSON:
    """One order triggers others once it fills (schwab-py ``first_triggers_second``)."""
    return parent | {"orderStrategyType": "TRIGGER", "childOrderStrategies": list(children)}


def one_cancels_other(a: JSON, b: JSON) -> JSON:
    """Two orders, the first to fill cancels the other (schwab-py ``one_cancels_other``)."""
    return {"orderStrategyType": "OCO", "childOrderStrategies": [a, b]}


def replace_body(node: Mapping[str, Any], *, quantity: int | None, limit: Decimal | None, stop: Decimal | None) -> JSON:
    """The PUT body replacing a working order: the order as it stands (same legs and instructions,
    which Schwab requires), with the new quantity or prices."""
    body: JSON = {k: node[k] for k in ("session", "duration", "orderType") if k in node}
    complex_type = node.get("complexOrderStrategyType")
    if complex_type and complex_type != "NONE":
        body["complexOrderStrategyType"] = complex_type
    legs = objects(node.get("orderLegCollection"))
    multi = len(legs) > 1
    old_qty = whole(node.get("quantity")) or (whole(legs[0].get("quantity")) if legs else 0)
    new_qty = quantity if quantity is not None else old_qty
    if multi:
        body["quantity"] = new_qty
    for key, new in (("price", limit), ("stopPrice", stop)):
        if new is not None:
            body[key] = price_text(new)
        elif node.get(key) is not None:
            body[key] = price_text(dec(node[key]) or ZERO)
    for key in ("stopPriceLinkBasis", "stopPriceLinkType", "stopType", "specialInstruction"):
        if node.get(key) is not None:
            body[key] = node[key]
    if node.get("stopPriceOffset") is not None:
        body["stopPriceOffset"] = price_text(dec(node["stopPriceOffset"]) or ZERO)
    if node.get("orderType") == "TRAILING_STOP":
        body.pop("stopPrice", None)  # Schwab moves it; the offset defines it
    out_legs = []
    for leg in legs:
        qty = whole(leg.get("quantity"))
        if quantity is not None:
            qty = new_qty * (qty // old_qty if multi and old_qty else 1)
        inst = obj(leg.get("instrument"))
        asset = "OPTION" if inst.get("assetType") == "OPTION" else "EQUITY"
        out_legs.append(
            {
                "instruction": leg.get("instruction"),
                "quantity": qty,
                "instrument": {"symbol": inst.get("symbol"), "assetType": asset},
            }
        )
    body["orderStrategyType"] = "SINGLE"
    body["orderLegCollection"] = out_legs
    return body


def order_id_from_location(location: str | None) -> str | None:
    """The new order's id from a 201's ``Location``: the path's last segment (A4). The host is not
    checked: Schwab names its own host whichever host was asked (the fake does the same)."""
    if not location:
        return None
    m = re.search(r"/accounts/[^/]+/orders/(\d+)/?(?:[?#].*)?$", location)
    return m.group(1) if m else None


def local_reject(request: OrderRequest, reason: str, broker: str) -> Order:
    """An order tterm refused before it reached Schwab."""
    return Order.from_request(
        request,
        order_id=f"local-{request.client_order_id}",
        status=OrderStatus.REJECTED,
        broker=broker,
        reject_reason=reason,
    )


def vendor_reject(request: OrderRequest, reason: str, broker: str) -> Order:
    """An order Schwab refused at the door (HTTP 400): it never existed there."""
    return Order.from_request(
        request,
        order_id=f"rejected-{request.client_order_id}",
        status=OrderStatus.REJECTED,
        broker=broker,
        reject_reason=f"Schwab refused the order: {reason}",
    )


# --------------------------------------------------------------------------- accounts (A6.1, A6.2)


def account_of(broker: str, number: str, pref: Mapping[str, Any] | None, sec: Mapping[str, Any]) -> Account:
    kind = AccountKind.MARGIN if str(sec.get("type") or "").upper() == "MARGIN" else AccountKind.CASH
    nick = str((pref or {}).get("nickName") or ("Margin" if kind is AccountKind.MARGIN else "Cash"))
    shown = str((pref or {}).get("displayAcctId") or f"...{number[-3:]}")
    return Account(
        id=f"{broker}:{number}", broker=broker, vendor_id=number, name=f"{nick} {shown}", kind=kind, is_live=True
    )


Resolver = Callable[[str], Instrument | None]

TRADABLE_ASSETS = frozenset({"EQUITY", "COLLECTIVE_INVESTMENT", "OPTION"})


def positions_of(account: str, sec: Mapping[str, Any], resolve: Resolver) -> list[Position]:
    """Positions in shares, ETFs and options (cash equivalents and funds are not tradable here)."""
    out = []
    for p in objects(sec.get("positions")):
        inst_json = obj(p.get("instrument"))
        if str(inst_json.get("assetType")) not in TRADABLE_ASSETS:
            continue
        inst = resolve(str(inst_json.get("symbol") or ""))
        if inst is None:
            continue
        qty = whole(p.get("longQuantity")) - whole(p.get("shortQuantity"))
        if qty == 0:
            continue
        avg = dec(p.get("averageLongPrice") if qty > 0 else p.get("averageShortPrice")) or dec(p.get("averagePrice"))
        value = dec(p.get("marketValue"))
        mark = value / (qty * inst.point_value) if value is not None and inst.point_value else None
        open_pnl = (dec(p.get("longOpenProfitLoss")) or ZERO) + (dec(p.get("shortOpenProfitLoss")) or ZERO)
        out.append(
            Position(
                account=account,
                symbol=inst.symbol,
                quantity=qty,
                avg_price=avg or ZERO,
                mark=mark,
                unrealized_pnl=open_pnl,
            )
        )
    return out


def snapshot_of(account: str, sec: Mapping[str, Any], positions: Sequence[Position]) -> AccountSnapshot:
    """Balances: equity is the liquidation value; balance that less the open P&L of the positions."""
    current = obj(sec.get("currentBalances"))
    initial = obj(sec.get("initialBalances"))
    equity = dec(current.get("liquidationValue")) or dec(current.get("equity")) or ZERO
    open_pnl = sum((p.unrealized_pnl for p in positions), ZERO)
    if str(sec.get("type") or "").upper() == "MARGIN":
        bp = dec(current.get("buyingPower"))
    else:
        bp = dec(current.get("cashAvailableForTrading"))
    start = dec(initial.get("liquidationValue")) or dec(initial.get("accountValue"))
    return AccountSnapshot(
        account=account,
        balance=equity - open_pnl,
        equity=equity,
        open_pnl=open_pnl,
        buying_power=bp,
        start_of_day_balance=start,
    )


def trade_fees(transactions: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str, int, Decimal], list[Decimal]]:
    """TRADE transactions' fees by (orderId, symbol, quantity, price), oldest first (A6.4)."""
    out: dict[tuple[str, str, int, Decimal], list[Decimal]] = {}
    for t in transactions:
        if not isinstance(t, Mapping) or t.get("type") != "TRADE":
            continue
        items = objects(t.get("transferItems"))
        fee = -sum((dec(i.get("cost")) or ZERO for i in items if i.get("feeType")), ZERO)
        for i in items:
            inst = obj(i.get("instrument"))
            if i.get("feeType") or inst.get("assetType") in ("CURRENCY", None):
                continue
            price = dec(i.get("price"))
            if price is None:
                continue
            key = (
                str(t.get("orderId") or ""),
                str(inst.get("symbol") or "").strip(),
                abs(whole(i.get("amount"))),
                price,
            )
            out.setdefault(key, []).append(max(fee, ZERO))
    return out

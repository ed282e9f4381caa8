"""Orders on the fake Schwab server: strict validation, a matching book, TRIGGER and OCO groups.

Request shapes follow reference part A7 and schwab-py 1.5.1's builders (single-leg orders carry
no top-level ``quantity``; spreads do, with each leg's quantity a multiple of it). Two kinds of
refusal, as Schwab has them:

- a malformed order, an unknown symbol, an expired series or an off-tick price is refused at the
  door: HTTP 400 with the Trader API's ``{"message", "errors"}`` body (:class:`OrderError`);
- an order the account cannot carry (buying power, oversold, shorting in a cash account) is
  accepted with 201 and then shows ``status: REJECTED`` with a ``statusDescription``.

Matching is deterministic: market orders take the touch, limits fill when the touch reaches
them, stops trigger on the last trade; sizes at the touch cap each fill (partial fills), and
multi-leg orders fill at the legs' natural prices when that net is at or better than the limit.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from tests.fakes.schwab_accounts import Account, Ledger, schwab_time
from tests.fakes.schwab_market import (
    CENT,
    ExpiredSeries,
    Market,
    UnknownSymbol,
    equity_tick,
    on_tick,
    option_tick,
    parse_option_symbol,
)

JSON = dict[str, Any]

SESSIONS = ("NORMAL", "AM", "PM", "SEAMLESS")
DURATIONS = (
    "DAY",
    "GOOD_TILL_CANCEL",
    "FILL_OR_KILL",
    "IMMEDIATE_OR_CANCEL",
    "END_OF_WEEK",
    "END_OF_MONTH",
    "NEXT_END_OF_MONTH",
)
ORDER_TYPES = (
    "MARKET",
    "LIMIT",
    "STOP",
    "STOP_LIMIT",
    "TRAILING_STOP",
    "CABINET",
    "NON_MARKETABLE",
    "MARKET_ON_CLOSE",
    "EXERCISE",
    "TRAILING_STOP_LIMIT",
    "NET_DEBIT",
    "NET_CREDIT",
    "NET_ZERO",
    "LIMIT_ON_CLOSE",
)
SUPPORTED_TYPES = ("MARKET", "LIMIT", "STOP", "STOP_LIMIT", "TRAILING_STOP", "NET_DEBIT", "NET_CREDIT", "NET_ZERO")
STRATEGIES = ("SINGLE", "CANCEL", "RECALL", "PAIR", "FLATTEN", "TWO_DAY_SWAP", "BLAST_ALL", "OCO", "TRIGGER")
COMPLEX = (
    "NONE",
    "COVERED",
    "VERTICAL",
    "BACK_RATIO",
    "CALENDAR",
    "DIAGONAL",
    "STRADDLE",
    "STRANGLE",
    "COLLAR_SYNTHETIC",
    "BUTTERFLY",
    "CONDOR",
    "IRON_CONDOR",
    "VERTICAL_ROLL",
    "COLLAR_WITH_STOCK",
    "DOUBLE_DIAGONAL",
    "UNBALANCED_BUTTERFLY",
    "UNBALANCED_CONDOR",
    "UNBALANCED_IRON_CONDOR",
    "UNBALANCED_VERTICAL_ROLL",
    "MUTUAL_FUND_SWAP",
    "CUSTOM",
)
EQUITY_INSTRUCTIONS = ("BUY", "SELL", "SELL_SHORT", "BUY_TO_COVER")
OPTION_INSTRUCTIONS = ("BUY_TO_OPEN", "BUY_TO_CLOSE", "SELL_TO_OPEN", "SELL_TO_CLOSE")
BUYS = ("BUY", "BUY_TO_COVER", "BUY_TO_OPEN", "BUY_TO_CLOSE")
SPECIAL = ("ALL_OR_NONE", "DO_NOT_REDUCE", "ALL_OR_NONE_DO_NOT_REDUCE")
#: Request keys from the spec's OrderRequest. Server-set ones are refused with their own message.
REQUEST_KEYS = {
    "session",
    "duration",
    "orderType",
    "cancelTime",
    "complexOrderStrategyType",
    "quantity",
    "destinationLinkName",
    "releaseTime",
    "stopPrice",
    "stopPriceLinkBasis",
    "stopPriceLinkType",
    "stopPriceOffset",
    "stopType",
    "priceLinkBasis",
    "priceLinkType",
    "price",
    "taxLotMethod",
    "orderLegCollection",
    "activationPrice",
    "specialInstruction",
    "orderStrategyType",
    "childOrderStrategies",
}
SERVER_KEYS = {
    "filledQuantity",
    "remainingQuantity",
    "orderId",
    "cancelable",
    "editable",
    "status",
    "enteredTime",
    "closeTime",
    "tag",
    "accountNumber",
    "orderActivityCollection",
    "replacingOrderCollection",
    "statusDescription",
}
LEG_KEYS = {
    "orderLegType",
    "legId",
    "instrument",
    "instruction",
    "positionEffect",
    "quantity",
    "quantityType",
    "divCapGains",
    "toSymbol",
}
INSTRUMENT_KEYS = {
    "symbol",
    "assetType",
    "cusip",
    "description",
    "instrumentId",
    "netChange",
    "type",
    "putCall",
    "underlyingSymbol",
    "optionMultiplier",
    "optionDeliverables",
}
LIVE = ("WORKING", "ACCEPTED", "PENDING_ACTIVATION", "QUEUED", "AWAITING_PARENT_ORDER")
DONE = ("FILLED", "CANCELED", "REJECTED", "EXPIRED", "REPLACED")
PRICE_RE = re.compile(r"^-?\d+(\.\d+)?$")


class OrderError(Exception):
    """A refused request: HTTP 400 (or ``status``) with the Trader API error body."""

    def __init__(self, message: str, *errors: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.errors = list(errors) or [message]
        self.status = status

    def body(self) -> JSON:
        return {"message": self.message, "errors": self.errors}


@dataclass
class Leg:
    leg_id: int
    symbol: str
    asset_type: str  # EQUITY or OPTION
    instruction: str
    quantity: int
    ratio: int
    description: str

    @property
    def buy(self) -> bool:
        return self.instruction in BUYS

    @property
    def closing(self) -> bool:
        return self.instruction in ("SELL", "BUY_TO_COVER", "BUY_TO_CLOSE", "SELL_TO_CLOSE")


@dataclass
class Order:
    id: int
    account: Account
    strategy: str  # SINGLE, TRIGGER, OCO
    session: str = "NORMAL"
    duration: str = "DAY"
    order_type: str = "MARKET"
    complex: str = "NONE"
    price: Decimal | None = None
    stop_price: Decimal | None = None
    trail: tuple[str, str, Decimal] | None = None  # (basis, VALUE|PERCENT, offset)
    special: str | None = None
    legs: list[Leg] = field(default_factory=list)
    quantity: int = 0  # shares/contracts for one leg, spreads for several
    filled: int = 0
    status: str = "WORKING"
    status_description: str | None = None
    entered: datetime | None = None
    closed: datetime | None = None
    children: list[Order] = field(default_factory=list)
    parent: Order | None = None
    activities: list[JSON] = field(default_factory=list)
    triggered: bool = False
    replaced_by: Order | None = None

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled


@dataclass
class Spec:
    """A validated request, before it becomes orders."""

    raw: JSON
    strategy: str
    session: str = "NORMAL"
    duration: str = "DAY"
    order_type: str = "MARKET"
    complex: str = "NONE"
    price: Decimal | None = None
    stop_price: Decimal | None = None
    trail: tuple[str, str, Decimal] | None = None
    special: str | None = None
    legs: list[Leg] = field(default_factory=list)
    quantity: int = 0
    children: list[Spec] = field(default_factory=list)


def _price(value: Any, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str | float):
        raise OrderError(f"{name} must be a number or a decimal string", f"{name}: {value!r}")
    text = str(value).strip()
    if not PRICE_RE.match(text):
        raise OrderError(f"{name} is not a valid price", f"{name}: {value!r}")
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex already checked
        raise OrderError(f"{name} is not a valid price", f"{name}: {value!r}") from None


def _quantity(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
        raise OrderError(f"{name} must be a whole number", f"{name}: {value!r}")
    d = Decimal(str(value))
    if d != d.to_integral_value() or d <= 0:
        raise OrderError(
            f"{name} must be a positive whole number (fractional shares are not supported by the API)",
            f"{name}: {value!r}",
        )
    return int(d)


def _enum(body: JSON, name: str, allowed: tuple[str, ...], *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise OrderError(f"{name} is required", f"{name} is missing")
        return None
    if value not in allowed:
        raise OrderError(f"Invalid {name}: {value!r}", f"{name} must be one of {', '.join(allowed)}")
    return value


class OrderBook:
    """Every order of every account, the validator and the matching loop."""

    def __init__(self, market: Market, ledger: Ledger, now: Callable[[], datetime]) -> None:
        self.market = market
        self.ledger = ledger
        self.now = now
        self.orders: dict[int, Order] = {}
        self._ids = itertools.count(1_000_000_001)
        self._activity_ids = itertools.count(50_000_000_001)
        self.reject_next: list[str] = []
        #: Called with (account, order, message type) on every order event (ACCT_ACTIVITY).
        self.on_event: Callable[[Account, Order, str], None] = lambda acct, order, kind: None

    # ================================================================== validation

    def parse(self, body: Any, *, top: bool = True) -> Spec:
        if not isinstance(body, dict):
            raise OrderError("The order must be a JSON object")
        unknown = sorted(set(body) - REQUEST_KEYS - SERVER_KEYS - {"requestedDestination"})
        if unknown:
            raise OrderError(f"Unrecognized field(s) in the order: {', '.join(unknown)}")
        server_set = sorted(set(body) & SERVER_KEYS)
        if server_set:
            raise OrderError(f"Field(s) set by Schwab, not by the client: {', '.join(server_set)}")
        if "requestedDestination" in body:
            # Sending requestedDestination (even AUTO) got HTTP 400 from Schwab (schwab-py issue #43).
            raise OrderError("requestedDestination is not accepted", "remove requestedDestination")
        strategy = _enum(body, "orderStrategyType", STRATEGIES)
        assert strategy is not None
        if strategy not in ("SINGLE", "TRIGGER", "OCO"):
            raise OrderError(f"orderStrategyType {strategy} is not supported for API orders")
        spec = Spec(raw=body, strategy=strategy)
        children = body.get("childOrderStrategies")
        if strategy == "OCO":
            stray = sorted(set(body) - {"orderStrategyType", "childOrderStrategies"})
            if stray:
                raise OrderError("An OCO order holds only childOrderStrategies", f"unexpected: {', '.join(stray)}")
            if not isinstance(children, list) or len(children) != 2:
                raise OrderError("An OCO order needs exactly two childOrderStrategies")
            for child in children:
                c = self.parse(child, top=False)
                if c.strategy == "OCO":
                    raise OrderError("An OCO order cannot nest another OCO order directly")
                spec.children.append(c)
            return spec
        if strategy == "SINGLE" and children:
            raise OrderError("childOrderStrategies needs orderStrategyType TRIGGER (or OCO)")
        if strategy == "TRIGGER":
            if not isinstance(children, list) or not children:
                raise OrderError("A TRIGGER order needs at least one order in childOrderStrategies")
            spec.children = [self.parse(child, top=False) for child in children]
        spec.session = _enum(body, "session", SESSIONS) or "NORMAL"
        spec.duration = _enum(body, "duration", DURATIONS) or "DAY"
        spec.order_type = _enum(body, "orderType", ORDER_TYPES) or "MARKET"
        if spec.order_type not in SUPPORTED_TYPES:
            raise OrderError(f"orderType {spec.order_type} is not supported by the fake Schwab server")
        spec.complex = _enum(body, "complexOrderStrategyType", COMPLEX, required=False) or "NONE"
        spec.special = _enum(body, "specialInstruction", SPECIAL, required=False)
        self._parse_legs(spec, body)
        self._parse_prices(spec, body)
        self._check_structure(spec)
        self._check_ticks(spec)
        return spec

    def _parse_legs(self, spec: Spec, body: JSON) -> None:
        legs = body.get("orderLegCollection")
        if not isinstance(legs, list) or not legs:
            raise OrderError("orderLegCollection is required and must hold at least one leg")
        if len(legs) > 4:
            raise OrderError("An order can have at most 4 legs")
        seen: set[str] = set()
        for i, raw in enumerate(legs, start=1):
            if not isinstance(raw, dict):
                raise OrderError(f"Leg {i} must be an object")
            unknown = sorted(set(raw) - LEG_KEYS)
            if unknown:
                raise OrderError(f"Unrecognized field(s) in leg {i}: {', '.join(unknown)}")
            inst = raw.get("instrument")
            if not isinstance(inst, dict) or not isinstance(inst.get("symbol"), str):
                raise OrderError(f"Leg {i} needs an instrument with a symbol")
            bad = sorted(set(inst) - INSTRUMENT_KEYS)
            if bad:
                raise OrderError(f"Unrecognized field(s) in leg {i}'s instrument: {', '.join(bad)}")
            symbol = inst["symbol"]
            asset = inst.get("assetType")
            if asset is None:
                raise OrderError(f"Leg {i}'s instrument needs an assetType")
            try:
                kind = self.market.kind(symbol)
            except ExpiredSeries:
                raise OrderError(f"Option series {symbol!r} has expired", f"leg {i}: expired series") from None
            except UnknownSymbol:
                raise OrderError(f"Symbol {symbol!r} is not recognized", f"leg {i}: unknown symbol") from None
            if kind == "FUTURE" or asset == "FUTURE":
                raise OrderError("Futures orders are not offered through the Trader API", f"leg {i}: {symbol}")
            allowed_assets = ("OPTION",) if kind == "OPTION" else ("EQUITY", "COLLECTIVE_INVESTMENT")
            if asset not in allowed_assets:
                raise OrderError(
                    f"assetType {asset!r} does not match symbol {symbol!r}", f"leg {i}: expected {allowed_assets[0]}"
                )
            instruction = raw.get("instruction")
            allowed = OPTION_INSTRUCTIONS if kind == "OPTION" else EQUITY_INSTRUCTIONS
            if instruction not in allowed:
                raise OrderError(
                    f"Invalid instruction {instruction!r} for {kind.lower()} {symbol!r}",
                    f"leg {i}: instruction must be one of {', '.join(allowed)}",
                )
            if raw.get("positionEffect") not in (None, "OPENING", "CLOSING", "AUTOMATIC"):
                raise OrderError(f"Invalid positionEffect in leg {i}")
            qty = _quantity(raw.get("quantity"), f"leg {i} quantity")
            if symbol in seen:
                raise OrderError(f"Symbol {symbol!r} appears in two legs")
            seen.add(symbol)
            if kind == "OPTION":
                key = parse_option_symbol(symbol)
                assert key is not None
                description = self.market.option_description(key)
            else:
                description = self.market.equities[symbol].description
            spec.legs.append(
                Leg(i, symbol, "OPTION" if kind == "OPTION" else "EQUITY", instruction, qty, 1, description)
            )
        qtys = [leg.quantity for leg in spec.legs]
        if len(spec.legs) == 1:
            spec.quantity = qtys[0]
            if "quantity" in body and _quantity(body["quantity"], "quantity") != qtys[0]:
                raise OrderError("quantity does not match the leg's quantity")
        else:
            if "quantity" in body:
                spec.quantity = _quantity(body["quantity"], "quantity")
            else:
                from math import gcd

                g = 0
                for q in qtys:
                    g = gcd(g, q)
                spec.quantity = g
            for leg in spec.legs:
                if leg.quantity % spec.quantity:
                    raise OrderError(
                        f"Leg {leg.leg_id} quantity {leg.quantity} is not a multiple of the order "
                        f"quantity {spec.quantity}"
                    )
                leg.ratio = leg.quantity // spec.quantity

    def _parse_prices(self, spec: Spec, body: JSON) -> None:
        t = spec.order_type
        has_price, has_stop = "price" in body, "stopPrice" in body
        needs_price = t in ("LIMIT", "STOP_LIMIT", "NET_DEBIT", "NET_CREDIT", "NET_ZERO")
        needs_stop = t in ("STOP", "STOP_LIMIT")
        if needs_price and not has_price:
            raise OrderError(f"price is required for a {t} order")
        if not needs_price and has_price:
            raise OrderError(f"price is not allowed on a {t} order")
        if needs_stop and not has_stop:
            raise OrderError(f"stopPrice is required for a {t} order")
        if not needs_stop and has_stop:
            raise OrderError(f"stopPrice is not allowed on a {t} order")
        if has_price:
            spec.price = _price(body["price"], "price")
            if spec.price < 0 or (spec.price == 0 and t != "NET_ZERO"):
                raise OrderError("price must be greater than zero")
        if has_stop:
            spec.stop_price = _price(body["stopPrice"], "stopPrice")
            if spec.stop_price <= 0:
                raise OrderError("stopPrice must be greater than zero")
        link_keys = ("stopPriceLinkBasis", "stopPriceLinkType", "stopPriceOffset")
        if t == "TRAILING_STOP":
            if any(k not in body for k in link_keys):
                raise OrderError(
                    "A TRAILING_STOP order needs stopPriceLinkBasis, stopPriceLinkType and stopPriceOffset"
                )
            basis = body["stopPriceLinkBasis"]
            if basis not in ("LAST", "BID", "ASK", "MARK"):
                raise OrderError(f"stopPriceLinkBasis {basis!r} is not supported (LAST, BID, ASK, MARK)")
            kind = body["stopPriceLinkType"]
            if kind not in ("VALUE", "PERCENT"):
                raise OrderError(f"stopPriceLinkType {kind!r} is not supported (VALUE, PERCENT)")
            offset = _price(body["stopPriceOffset"], "stopPriceOffset")
            if offset <= 0:
                raise OrderError("stopPriceOffset must be greater than zero")
            spec.trail = (basis, kind, offset)
        elif any(k in body for k in link_keys):
            raise OrderError("stopPriceLink fields belong to TRAILING_STOP orders")

    def _check_structure(self, spec: Spec) -> None:
        legs = spec.legs
        options = [leg for leg in legs if leg.asset_type == "OPTION"]
        if any(leg.asset_type == "OPTION" for leg in legs) and spec.session != "NORMAL":
            raise OrderError("Options trade only in the NORMAL session")
        if len(legs) == 1:
            if spec.order_type in ("NET_DEBIT", "NET_CREDIT", "NET_ZERO"):
                raise OrderError(f"{spec.order_type} is for orders with more than one leg; use LIMIT")
            if spec.complex not in ("NONE",):
                raise OrderError(f"complexOrderStrategyType {spec.complex} needs more than one leg")
            if spec.order_type == "TRAILING_STOP" and legs[0].asset_type == "OPTION":
                raise OrderError("TRAILING_STOP orders are for equities")
            return
        if spec.order_type not in ("NET_DEBIT", "NET_CREDIT", "NET_ZERO", "MARKET"):
            raise OrderError(
                f"A multi-leg order is priced NET_DEBIT, NET_CREDIT, NET_ZERO or MARKET, not {spec.order_type}"
            )
        if spec.complex == "NONE":
            raise OrderError("A multi-leg order needs a complexOrderStrategyType (VERTICAL, STRADDLE, ...)")
        keys = [parse_option_symbol(leg.symbol) for leg in options]
        roots = {k.root for k in keys if k}
        stock = [leg for leg in legs if leg.asset_type == "EQUITY"]
        if len(roots) > 1 or (stock and roots and stock[0].symbol not in roots):
            raise OrderError("All legs of a multi-leg order must share one underlying")
        shape = self._shape(spec, legs, keys, stock)
        if shape is not None:
            raise OrderError(f"The legs do not form a {spec.complex}: {shape}")

    @staticmethod
    def _shape(spec: Spec, legs: list[Leg], keys: list[Any], stock: list[Leg]) -> str | None:
        """Why the legs do not match the complex strategy type, or None when they do."""
        c = spec.complex
        n = len(legs)
        if c == "CUSTOM":
            return None
        if stock and c not in ("COVERED", "COLLAR_WITH_STOCK"):
            return "a stock leg is only allowed in COVERED or COLLAR_WITH_STOCK"
        pairs = [(k, leg) for k, leg in zip(keys, [lg for lg in legs if lg.asset_type == "OPTION"], strict=True)]
        expiries = {k.expiry for k, _ in pairs}
        types = {k.put_call for k, _ in pairs}
        strikes = sorted({k.strike for k, _ in pairs})
        buys = [leg for _, leg in pairs if leg.buy]
        ratios = {leg.ratio for leg in legs}
        if c == "VERTICAL":
            if n != 2 or len(expiries) != 1 or len(types) != 1 or len(strikes) != 2:
                return "two options of one type and expiration at different strikes"
            if len(buys) != 1 or ratios != {1}:
                return "one bought and one sold, in equal quantities"
        elif c in ("STRADDLE", "STRANGLE"):
            if n != 2 or len(expiries) != 1 or types != {"C", "P"}:
                return "a call and a put of one expiration"
            if (c == "STRADDLE") != (len(strikes) == 1):
                return "the same strike" if c == "STRADDLE" else "different strikes"
            if len({leg.buy for leg in legs}) != 1 or ratios != {1}:
                return "both bought or both sold, in equal quantities"
        elif c == "IRON_CONDOR":
            if n != 4 or len(expiries) != 1 or types != {"C", "P"}:
                return "four options of one expiration, two puts and two calls"
            puts = sorted((k.strike, leg) for k, leg in pairs if k.put_call == "P")
            calls = sorted((k.strike, leg) for k, leg in pairs if k.put_call == "C")
            if len(puts) != 2 or len(calls) != 2 or puts[1][0] >= calls[0][0] or ratios != {1}:
                return "a put vertical below a call vertical, in equal quantities"
            if puts[0][1].buy == puts[1][1].buy or calls[0][1].buy == calls[1][1].buy:
                return "each vertical has one bought and one sold leg"
            if puts[0][1].buy != calls[1][1].buy:
                return "the wings must be both bought (short iron condor) or both sold (long)"
        elif c == "BUTTERFLY":
            if n != 3 or len(expiries) != 1 or len(types) != 1 or len(strikes) != 3:
                return "three strikes of one type and expiration"
            by_strike = sorted((k.strike, leg) for k, leg in pairs)
            if [leg.ratio for _, leg in by_strike] != [1, 2, 1] or by_strike[1][1].buy == by_strike[0][1].buy:
                return "wings 1:2:1 with the body on the other side"
            if strikes[1] - strikes[0] != strikes[2] - strikes[1]:
                return "equal wing widths (use UNBALANCED_BUTTERFLY)"
        elif c == "CONDOR":
            if n != 4 or len(expiries) != 1 or len(types) != 1 or len(strikes) != 4 or ratios != {1}:
                return "four strikes of one type and expiration, in equal quantities"
        elif c in ("CALENDAR", "DIAGONAL"):
            if n != 2 or len(types) != 1 or len(expiries) != 2 or len(buys) != 1 or ratios != {1}:
                return "two options of one type, different expirations, one bought and one sold"
            if (c == "CALENDAR") != (len(strikes) == 1):
                return "the same strike" if c == "CALENDAR" else "different strikes"
        elif c == "COVERED" and (n != 2 or len(stock) != 1 or types != {"C"}):
            return "stock and a call"
        return None

    def _check_ticks(self, spec: Spec) -> None:
        legs = spec.legs
        prices = [(n, p) for n, p in (("price", spec.price), ("stopPrice", spec.stop_price)) if p is not None]
        for name, p in prices:
            if len(legs) > 1:
                # Complex-order net prices trade in pennies on the complex books.
                tick = CENT
            elif legs[0].asset_type == "OPTION":
                key = parse_option_symbol(legs[0].symbol)
                assert key is not None
                tick = option_tick(p, self.market.equities[key.root].penny)
            else:
                tick = equity_tick(p)
            if not on_tick(p, tick):
                raise OrderError(
                    f"{name} {p} is not a valid increment; the tick is {tick}", f"{name}: {p} off the {tick} grid"
                )
        if len(legs) == 2 and spec.complex == "VERTICAL" and spec.order_type == "NET_CREDIT" and spec.price:
            a, b = (parse_option_symbol(leg.symbol) for leg in legs)
            assert a and b
            width = abs(a.strike - b.strike)
            if spec.price > width:
                raise OrderError(f"The credit {spec.price} exceeds the width of the strikes ({width})")
        if spec.complex == "IRON_CONDOR" and spec.order_type == "NET_CREDIT" and spec.price:
            keys = sorted((k.put_call, k.strike) for k in (parse_option_symbol(leg.symbol) for leg in legs) if k)
            widths = [keys[1][1] - keys[0][1], keys[3][1] - keys[2][1]]
            if spec.price > max(widths):
                raise OrderError(f"The credit {spec.price} exceeds the widest wing ({max(widths)})")

    # ================================================================== orders from specs

    def _build(self, spec: Spec, acct: Account, parent: Order | None, status: str) -> Order:
        order = Order(
            id=next(self._ids),
            account=acct,
            strategy=spec.strategy,
            session=spec.session,
            duration=spec.duration,
            order_type=spec.order_type,
            complex=spec.complex,
            price=spec.price,
            stop_price=spec.stop_price,
            trail=spec.trail,
            special=spec.special,
            legs=spec.legs,
            quantity=spec.quantity,
            status=status,
            entered=self.now(),
            parent=parent,
        )
        if spec.strategy == "OCO":
            order.quantity = spec.children[0].quantity
            order.children = [self._build(c, acct, order, status) for c in spec.children]
        else:
            child_status = "AWAITING_PARENT_ORDER" if spec.strategy == "TRIGGER" else status
            order.children = [self._build(c, acct, order, child_status) for c in spec.children]
        self.orders[order.id] = order
        if order.trail is not None:
            order.stop_price = self._trail_stop(order, None)
        return order

    def place(self, acct: Account, body: Any) -> Order:
        spec = self.parse(body)
        order = self._build(spec, acct, None, "WORKING")
        self._emit(acct, order, "OrderCreated")
        self._admit(order)
        self.match()
        return order

    def _admit(self, order: Order) -> None:
        """Account-level checks on a new order: REJECTED with a reason, not an HTTP error."""
        reason = self.reject_next.pop(0) if self.reject_next else self._account_reason(order)
        if reason is not None:
            self._reject(order, reason)
            return
        for o in self._walk(order):
            if o.status == "WORKING":
                self._emit(o.account, o, "OrderAccepted")
        self._check_stops(order)

    def _check_stops(self, order: Order) -> None:
        for o in self._walk(order):
            if o.status != "WORKING" or o.order_type not in ("STOP", "STOP_LIMIT") or len(o.legs) != 1:
                continue
            last = self.market.top(o.legs[0].symbol)[4]
            assert o.stop_price is not None
            wrong = o.stop_price <= last if o.legs[0].buy else o.stop_price >= last
            if wrong:
                side = "above" if o.legs[0].buy else "below"
                self._reject(o, f"The stop price must be {side} the last trade price ({last})")

    def _reject(self, order: Order, reason: str) -> None:
        for o in self._walk(order):
            if o.status not in DONE:
                o.status = "REJECTED"
                o.status_description = reason
                o.closed = self.now()
                self._emit(o.account, o, "OrderRejected")

    def _walk(self, order: Order) -> list[Order]:
        out = [order]
        for c in order.children:
            out.extend(self._walk(c))
        return out

    def root(self, order: Order) -> Order:
        while order.parent is not None:
            order = order.parent
        return order

    def _account_reason(self, order: Order) -> str | None:
        acct = order.account
        for o in self._walk(order):
            for leg in o.legs:
                h = acct.holdings.get(leg.symbol)
                long_q = h.long_qty if h else 0
                short_q = h.short_qty if h else 0
                pending = sum(
                    x.remaining * lg.ratio
                    for x in self.orders.values()
                    if x.account is acct and x.status in LIVE and x is not o and self.root(x) is not self.root(o)
                    for lg in x.legs
                    if lg.symbol == leg.symbol and lg.closing and lg.buy == leg.buy
                )
                need = o.quantity * leg.ratio
                if (
                    leg.instruction in ("SELL", "SELL_TO_CLOSE")
                    and long_q - pending < need
                    and not self._closes_own_entry(o, leg)
                ):
                    return "This order may result in an oversold/overbought position in your account."
                if (
                    leg.instruction in ("BUY_TO_COVER", "BUY_TO_CLOSE")
                    and short_q - pending < need
                    and not self._closes_own_entry(o, leg)
                ):
                    return "This order may result in an oversold/overbought position in your account."
                if leg.instruction == "SELL_SHORT":
                    if acct.type == "CASH":
                        return "Short sales are not allowed in a cash account."
                    if not self.market.equities[leg.symbol].shortable:
                        return f"{leg.symbol} is not available to borrow."
                    if long_q:
                        return f"The account holds {long_q} shares of {leg.symbol}: use SELL, not SELL_SHORT."
                if leg.instruction == "BUY" and short_q:
                    return f"The account is short {short_q} shares of {leg.symbol}: use BUY_TO_COVER."
                if leg.instruction == "SELL_TO_OPEN" and acct.type == "CASH" and len(o.legs) == 1:
                    return "Uncovered option writing is not allowed in a cash account."
        cost = self._cost(order)
        limit = (
            self.ledger.buying_power(acct)
            if not any(leg.asset_type == "OPTION" for o in self._walk(order) for leg in o.legs)
            else self.ledger.option_buying_power(acct)
        )
        if cost > limit:
            return "Your buying power will be below zero ($0.00) if this order is accepted."
        return None

    @staticmethod
    def _closes_own_entry(order: Order, leg: Leg) -> bool:
        """A TRIGGER child (or OCO under one) that closes what its own parent opens."""
        p = order.parent
        while p is not None:
            if p.strategy == "TRIGGER" and any(lg.symbol == leg.symbol and lg.buy != leg.buy for lg in p.legs):
                return True
            p = p.parent
        return False

    def _cost(self, order: Order) -> Decimal:
        """The most cash the order (its entry; children close it) can need."""
        o = order
        if o.strategy == "OCO":
            return max(self._cost(c) for c in o.children)
        total = Decimal(0)
        for leg in o.legs:
            bid, ask, _, _, last = self.market.top(leg.symbol)
            mult = 100 if leg.asset_type == "OPTION" else 1
            if len(o.legs) == 1:
                px = o.price if o.price is not None else (o.stop_price if o.stop_price is not None else ask)
                if leg.buy and leg.instruction != "BUY_TO_COVER" and leg.instruction != "BUY_TO_CLOSE":
                    total += px * o.quantity * mult
                elif leg.instruction in ("SELL_SHORT", "SELL_TO_OPEN"):
                    spot = last if leg.asset_type == "EQUITY" else self._spot(leg.symbol)
                    total += (
                        (spot * Decimal("0.5") if leg.asset_type == "EQUITY" else spot * Decimal("0.2"))
                        * o.quantity
                        * mult
                    )
            else:
                total += (ask if leg.buy else -bid) * leg.ratio * o.quantity * mult
        if len(o.legs) > 1:
            if o.order_type == "NET_DEBIT" and o.price is not None:
                total = o.price * o.quantity * 100
            else:
                total = max(total, self._max_loss(o))
        return max(total, Decimal(0))

    def _spot(self, symbol: str) -> Decimal:
        key = parse_option_symbol(symbol)
        assert key is not None
        return self.market.equities[key.root].book.last

    def _max_loss(self, o: Order) -> Decimal:
        keys = [(parse_option_symbol(leg.symbol), leg) for leg in o.legs if leg.asset_type == "OPTION"]
        strikes = [k.strike for k, _ in keys if k]
        if len(strikes) >= 2 and o.complex in ("VERTICAL", "IRON_CONDOR", "BUTTERFLY", "CONDOR"):
            return (max(strikes) - min(strikes)) * o.quantity * 100
        return Decimal(0)

    # ================================================================== cancel / replace

    def cancel(self, order: Order) -> None:
        if order.status in DONE:
            raise OrderError(f"Order {order.id} cannot be canceled: it is {order.status}")
        target = order.parent if order.parent is not None and order.parent.strategy == "OCO" else order
        # Cancelling one order of an OCO pair cancels the pair (the fake's reading; not confirmed).
        for o in self._walk(target):
            if o.status not in DONE:
                o.status = "CANCELED"
                o.closed = self.now()
                self._emit(o.account, o, "OrderUROutCompleted")
        if target.parent is not None:
            self._settle_group(target.parent)

    def replace(self, old: Order, body: Any) -> Order:
        if old.status in DONE:
            raise OrderError(f"Order {old.id} cannot be replaced: it is {old.status}")
        spec = self.parse(body)
        if spec.strategy == "OCO" or old.strategy == "OCO":
            raise OrderError("Replace the orders of an OCO pair one at a time")
        if [(lg.symbol, lg.instruction) for lg in spec.legs] != [(lg.symbol, lg.instruction) for lg in old.legs]:
            raise OrderError("A replacement must keep each leg's symbol and instruction; cancel and place instead")
        if spec.quantity <= old.filled:
            raise OrderError(f"The new quantity must exceed the {old.filled} already filled")
        if spec.children and old.children:
            raise OrderError("Replace the entry and its attached orders separately")
        new = self._build(
            spec, old.account, old.parent, old.status if old.status == "AWAITING_PARENT_ORDER" else "WORKING"
        )
        new.filled = old.filled if len(new.legs) == len(old.legs) else 0
        if not spec.children and old.children:
            new.children = old.children
            for c in new.children:
                c.parent = new
        old.status = "REPLACED"
        old.closed = self.now()
        old.replaced_by = new
        if old.parent is not None:
            siblings = old.parent.children
            siblings[siblings.index(old)] = new
        self._emit(old.account, old, "OrderUROutCompleted")
        self._emit(new.account, new, "OrderCreated")
        if new.status == "WORKING":
            self._admit(new)
        self.match()
        return new

    def expire_day_orders(self) -> None:
        """The session ends: DAY orders that still work expire (their unfilled part)."""
        for o in list(self.orders.values()):
            if o.status in LIVE and o.duration in ("DAY", "FILL_OR_KILL", "IMMEDIATE_OR_CANCEL"):
                o.status = "EXPIRED"
                o.closed = self.now()
                self._emit(o.account, o, "OrderUROutCompleted")

    # ================================================================== matching

    def match(self) -> None:
        """Fill what the market allows; repeat while fills activate more orders."""
        for _ in range(20):
            progressed = False
            for o in sorted(self.orders.values(), key=lambda x: x.id):
                if o.status == "WORKING" and o.legs and self._try_fill(o):
                    progressed = True
            if not progressed:
                return

    def _trail_stop(self, o: Order, current: Decimal | None) -> Decimal:
        assert o.trail is not None
        basis, kind, offset = o.trail
        bid, ask, _, _, last = self.market.top(o.legs[0].symbol)
        ref = {"LAST": last, "BID": bid, "ASK": ask, "MARK": (bid + ask) / 2}[basis]
        delta = offset if kind == "VALUE" else (ref * offset / 100)
        if o.legs[0].buy:
            stop = (ref + delta).quantize(CENT)
            return stop if current is None else min(current, stop)
        stop = (ref - delta).quantize(CENT)
        return stop if current is None else max(current, stop)

    def _try_fill(self, o: Order) -> bool:
        fills: list[tuple[Leg, Decimal]] = []
        if len(o.legs) == 1:
            leg = o.legs[0]
            bid, ask, bid_size, ask_size, last = self.market.top(leg.symbol)
            if o.trail is not None and not o.triggered:
                o.stop_price = self._trail_stop(o, o.stop_price)
            if o.order_type in ("STOP", "STOP_LIMIT", "TRAILING_STOP") and not o.triggered:
                assert o.stop_price is not None
                if not (last >= o.stop_price if leg.buy else last <= o.stop_price):
                    return False
                o.triggered = True
            limit = o.price if o.order_type in ("LIMIT", "STOP_LIMIT") else None
            px = ask if leg.buy else bid
            if px <= 0 or (limit is not None and (px > limit if leg.buy else px < limit)):
                return self._unfillable(o)
            size = ask_size if leg.buy else bid_size
            qty = min(o.remaining, size)
            fills = [(leg, px)]
        else:
            quotes = {leg.symbol: self.market.top(leg.symbol) for leg in o.legs}
            net = sum(
                ((quotes[leg.symbol][1] if leg.buy else -quotes[leg.symbol][0]) * leg.ratio for leg in o.legs),
                Decimal(0),
            )
            ok = {
                "MARKET": True,
                "NET_DEBIT": o.price is not None and net <= o.price,
                "NET_CREDIT": o.price is not None and -net >= o.price,
                "NET_ZERO": net <= 0,
            }[o.order_type]
            if not ok or any(quotes[leg.symbol][0 if not leg.buy else 1] <= 0 for leg in o.legs if not leg.buy):
                return self._unfillable(o)
            qty = min([o.remaining] + [(quotes[leg.symbol][3 if leg.buy else 2]) // leg.ratio for leg in o.legs])
            fills = [(leg, quotes[leg.symbol][1] if leg.buy else quotes[leg.symbol][0]) for leg in o.legs]
        if qty <= 0:
            return self._unfillable(o)
        if (o.duration == "FILL_OR_KILL" and qty < o.remaining) or (
            o.special in ("ALL_OR_NONE", "ALL_OR_NONE_DO_NOT_REDUCE") and qty < o.remaining
        ):
            return self._unfillable(o)
        self._execute(o, fills, qty)
        return True

    def _unfillable(self, o: Order) -> bool:
        """FOK and IOC orders that cannot (fully) fill at once are cancelled."""
        if o.duration in ("FILL_OR_KILL", "IMMEDIATE_OR_CANCEL"):
            o.status = "CANCELED"
            o.status_description = "The order could not be filled immediately"
            o.closed = self.now()
            self._emit(o.account, o, "OrderUROutCompleted")
            if o.parent is not None:
                self._settle_group(o.parent)
            return True
        return False

    def _execute(self, o: Order, fills: list[tuple[Leg, Decimal]], qty: int) -> None:
        now = self.now()
        exec_legs = []
        for leg, px in fills:
            leg_qty = qty * leg.ratio
            self.ledger.apply_fill(
                o.account, leg.symbol, leg.asset_type, leg.buy, leg_qty, px, o.id, leg.closing, now, leg.description
            )
            self.market.record_trade(leg.symbol, px, leg_qty, leg.buy)
            exec_legs.append(
                {
                    "legId": leg.leg_id,
                    "quantity": float(leg_qty),
                    "mismarkedQuantity": 0.0,
                    "price": float(px),
                    "time": schwab_time(now),
                    "instrumentId": 0,
                }
            )
        o.filled += qty
        o.activities.append(
            {
                "activityType": "EXECUTION",
                "activityId": next(self._activity_ids),
                "executionType": "FILL",
                "quantity": float(qty),
                "orderRemainingQuantity": float(o.remaining),
                "executionLegs": exec_legs,
            }
        )
        if o.remaining == 0:
            o.status = "FILLED"
            o.closed = now
            self._emit(o.account, o, "OrderFillCompleted")
        else:
            self._emit(o.account, o, "ExecutionRequestCompleted")
        if o.duration == "IMMEDIATE_OR_CANCEL" and o.remaining:
            o.status = "CANCELED"
            o.closed = now
            self._emit(o.account, o, "OrderUROutCompleted")
        p = o.parent
        if p is not None and p.strategy == "OCO":
            for sibling in p.children:
                if sibling is not o:
                    for s in self._walk(sibling):
                        if s.status not in DONE:
                            s.status = "CANCELED"
                            s.closed = now
                            self._emit(s.account, s, "OrderUROutCompleted")
            self._settle_group(p)
        if o.status == "FILLED" and o.strategy == "TRIGGER":
            for c in o.children:
                self._activate(c)

    def _activate(self, o: Order) -> None:
        for x in self._walk(o):
            if x.status == "AWAITING_PARENT_ORDER":
                x.status = "WORKING"
                x.entered = self.now()
                self._emit(x.account, x, "OrderAccepted")
        self._check_stops(o)

    def _settle_group(self, p: Order) -> None:
        """An OCO container follows its children; a TRIGGER parent's end cancels waiting children."""
        if p.strategy == "OCO":
            states = {c.status for c in p.children}
            if "FILLED" in states:
                p.status, p.filled = "FILLED", p.quantity
            elif states <= set(DONE):
                p.status = "CANCELED"
            if p.status in DONE:
                p.closed = p.closed or self.now()

    def settle_triggers(self) -> None:
        """Children of a TRIGGER parent that died unfilled are cancelled."""
        for o in self.orders.values():
            if o.strategy == "TRIGGER" and o.status in ("CANCELED", "REJECTED", "EXPIRED"):
                for c in o.children:
                    for x in self._walk(c):
                        if x.status == "AWAITING_PARENT_ORDER":
                            x.status = "CANCELED"
                            x.closed = self.now()

    def _emit(self, acct: Account, order: Order, kind: str) -> None:
        self.on_event(acct, order, kind)

    # ================================================================== JSON (A6.3)

    def order_json(self, o: Order) -> JSON:
        out: JSON = {}
        if o.strategy != "OCO":
            out |= {
                "session": o.session,
                "duration": o.duration,
                "orderType": o.order_type,
                "complexOrderStrategyType": o.complex,
                "quantity": float(o.quantity),
                "filledQuantity": float(o.filled),
                "remainingQuantity": float(o.remaining if o.status in LIVE else 0),
                "requestedDestination": "AUTO",
                "destinationLinkName": "AutoRoute",
            }
            if o.price is not None:
                out["price"] = float(o.price)
            if o.stop_price is not None:
                out["stopPrice"] = float(o.stop_price)
            if o.trail is not None:
                out |= {
                    "stopPriceLinkBasis": o.trail[0],
                    "stopPriceLinkType": o.trail[1],
                    "stopPriceOffset": float(o.trail[2]),
                    "stopType": "STANDARD",
                }
            if o.special:
                out["specialInstruction"] = o.special
            out["orderLegCollection"] = [self._leg_json(o, leg) for leg in o.legs]
        else:
            out |= {
                "quantity": float(o.quantity),
                "filledQuantity": float(o.filled),
                "remainingQuantity": float(o.quantity - o.filled if o.status in LIVE else 0),
            }
        out |= {
            "orderStrategyType": o.strategy,
            "orderId": o.id,
            "cancelable": o.status in LIVE,
            "editable": o.status in LIVE and o.strategy != "OCO",
            "status": o.status,
            "enteredTime": schwab_time(o.entered or self.now()),
            "tag": "API_TOS:fake-schwab",
            "accountNumber": int(o.account.number),
        }
        if o.closed is not None:
            out["closeTime"] = schwab_time(o.closed)
        if o.status_description:
            out["statusDescription"] = o.status_description
        if o.activities:
            out["orderActivityCollection"] = o.activities
        if o.replaced_by is not None:
            out["replacingOrderCollection"] = [self.order_json(o.replaced_by)]
        if o.children:
            out["childOrderStrategies"] = [self.order_json(c) for c in o.children]
        return out

    def _leg_json(self, o: Order, leg: Leg) -> JSON:
        h = o.account.holdings.get(leg.symbol)
        inst = self.ledger.instrument_json(leg.symbol, leg.asset_type, h.instrument_id if h else 0, leg.description)
        return {
            "orderLegType": leg.asset_type,
            "legId": leg.leg_id,
            "instrument": inst,
            "instruction": leg.instruction,
            "positionEffect": "CLOSING" if leg.closing else "OPENING",
            "quantity": float(leg.quantity),
        }

    def preview_json(self, acct: Account, body: Any) -> JSON:
        """previewOrder: validation result with HTTP 200, rejects listed rather than raised (A6.6)."""
        spec = self.parse(body)
        probe = self._build(spec, acct, None, "WORKING")
        for o in self._walk(probe):
            del self.orders[o.id]
        reason = self._account_reason(probe)
        legs = []
        for leg in probe.legs:
            bid, ask, _, _, last = self.market.top(leg.symbol)
            legs.append(
                {
                    "askPrice": float(ask),
                    "bidPrice": float(bid),
                    "lastPrice": float(last),
                    "markPrice": float((bid + ask) / 2),
                    "projectedCommission": 0.65 * leg.quantity if leg.asset_type == "OPTION" else 0.0,
                    "quantity": float(leg.quantity),
                    "finalSymbol": leg.symbol,
                    "legId": leg.leg_id,
                    "assetType": leg.asset_type,
                    "instruction": leg.instruction,
                }
            )
        cost = self._cost(probe)
        commission = sum(
            (Decimal("0.65") * leg.quantity for leg in probe.legs if leg.asset_type == "OPTION"), Decimal(0)
        )
        bp = self.ledger.buying_power(acct)
        rejects = (
            [
                {
                    "validationRuleName": "BUYING_POWER" if "buying power" in reason else "POSITION",
                    "message": reason,
                    "activityMessage": reason,
                    "originalSeverity": "REJECT",
                    "overrideName": "",
                    "overrideSeverity": "REJECT",
                }
            ]
            if reason
            else []
        )
        return {
            "orderId": 0,
            "orderStrategy": {
                "accountNumber": acct.number,
                "advancedOrderType": "NONE" if spec.strategy == "SINGLE" else spec.strategy,
                "enteredTime": schwab_time(self.now()),
                "orderBalance": {
                    "orderValue": float(cost),
                    "projectedAvailableFund": float(bp - cost),
                    "projectedBuyingPower": float(bp - cost),
                    "projectedCommission": float(commission),
                },
                "orderStrategyType": spec.strategy,
                "session": spec.session,
                "status": "REJECTED" if reason else "ACCEPTED",
                "duration": spec.duration,
                "orderType": spec.order_type,
                "complexOrderStrategyType": spec.complex,
                "price": float(spec.price) if spec.price is not None else 0.0,
                "quantity": float(spec.quantity),
                "orderLegs": legs,
            },
            "orderValidationResult": {"alerts": [], "accepts": [], "rejects": rejects, "reviews": [], "warns": []},
            "commissionAndFee": {
                "commission": {
                    "commissionLegs": [{"commissionValues": [{"value": float(commission), "type": "COMMISSION"}]}]
                },
                "fee": {"feeLegs": []},
                "trueCommission": {},
            },
        }

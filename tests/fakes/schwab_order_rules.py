"""What the fake Schwab server accepts as an order: the request schema and Schwab's rules.

Shapes from reference part A7 and schwab-py 1.5.1's builders (single-leg orders carry no
top-level ``quantity``; spreads do, each leg's quantity a multiple of it). A refusal here is the
Trader API's HTTP 400 ``{"message", "errors"}`` (:class:`OrderError`) and creates nothing: a
malformed order, an unknown symbol, an expired series, an off-tick price, legs that do not form
the named strategy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from math import gcd
from typing import Any

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


class OrderRules:
    """Validates order requests against the market's listings and tick tables."""

    def __init__(self, market: Market) -> None:
        self.market = market

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

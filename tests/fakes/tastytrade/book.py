"""Orders of the fake Tastytrade server: validation, preflight, matching, complex orders.

Order JSON follows reference B6 (TT-SW, TT-DOC, TT-SDK): ``price`` is always positive and its
direction is in ``price-effect``; a multi-leg order has one net price for one unit of the leg
ratio (``size`` is the legs' greatest common divisor). Matching, per unit of that ratio:

- the touch cost is the sum over legs of (ask for a buy, minus the bid for a sell) times the
  leg's ratio; a Debit limit fills when the cost is at most the price, a Credit limit when the
  cost is at most minus the price (it pays at least that credit);
- a marketable order fills at the touch on arrival; a single-leg limit that rested fills at its
  own price when the quote crosses it or a trade prints at or through it; multi-leg orders
  always fill every leg at the touch;
- stops (single-leg) trigger on the last trade price (buy at or above, sell at or below), then
  act as a market (Stop) or limit (Stop Limit) order; an IOC that does not fill is Cancelled.

Statuses move Routed -> Live -> Filled (or Cancel Requested -> Cancelled, or Rejected with a
``reject-reason``); every change is reported through ``notify`` as a whole object, as the
account streamer does. Complex orders: OCO (two orders, a fill cancels the other), OTO (a
trigger and one to three Contingent orders) and OTOCO (a trigger and an OCO pair).

Error codes: where the vendor's exact strings are unknown (reference part D #11: 400 or 422,
which ``code``) the fake uses 400 ``validation_error`` for a malformed body and 422
``preflight_check_failure`` with an ``errors`` list for an order the account cannot take.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from tests.fakes.tastytrade.accounts import Account, Accounts, fee_calculation, leg_fees, money
from tests.fakes.tastytrade.market import Instrument, Market, dec, iso, ms, on_grid, round_money

JSON = dict[str, Any]
ZERO = Decimal(0)

TIFS = {"Day", "GTC", "GTD", "Ext", "Ext Overnight", "GTC Ext", "GTC Ext Overnight", "IOC"}
ORDER_TYPES = {"Limit", "Market", "Marketable Limit", "Stop", "Stop Limit", "Notional Market"}
ACTIONS = {"Buy to Open", "Buy to Close", "Sell to Open", "Sell to Close", "Buy", "Sell"}
KINDS = {"Equity", "Equity Option", "Future", "Future Option", "Cryptocurrency"}
# Keys a new-order body may carry (B6, TT-SW). ``behavior``, ``schedule`` and ``delay`` are the
# TT-SDK's paper-service fields: SDK 13.2.3 always sends ``behavior`` (it has a default), to the
# real API as well, so the vendor evidently ignores it; the fake accepts and ignores all three.
ORDER_KEYS = {
    "time-in-force",
    "gtc-date",
    "order-type",
    "price",
    "price-effect",
    "stop-trigger",
    "value",
    "value-effect",
    "legs",
    "source",
    "external-identifier",
    "partition-key",
    "preflight-id",
    "automated-source",
    "rules",
    "advanced-instructions",
    "behavior",
    "schedule",
    "delay",
}
LEG_KEYS = {"instrument-type", "symbol", "quantity", "action", "remaining-quantity", "fills"}
WORKING = {"Received", "Routed", "In Flight", "Live", "Contingent", "Cancel Requested", "Replace Requested"}
TERMINAL = {"Filled", "Cancelled", "Expired", "Rejected", "Removed", "Partially Removed"}


class OrderError(Exception):
    """A request the vendor refuses: HTTP ``status`` with the ``error`` envelope."""

    def __init__(self, status: int, code: str, message: str, errors: list[JSON] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors or []

    def body(self) -> JSON:
        err: JSON = {"code": self.code, "message": self.message}
        if self.errors:
            err["errors"] = self.errors
        return {"error": err}


def bad(message: str) -> OrderError:
    return OrderError(400, "validation_error", message, [{"code": "validation_error", "message": message}])


def refuse(code: str, message: str) -> OrderError:
    return OrderError(422, "preflight_check_failure", message, [{"code": code, "message": message}])


@dataclass
class Leg:
    inst: Instrument
    action: str
    quantity: Decimal
    remaining: Decimal
    fills: list[JSON] = field(default_factory=list)

    @property
    def sign(self) -> int:
        return 1 if self.action.startswith("Buy") else -1


@dataclass
class Order:
    account: str
    tif: str
    order_type: str
    legs: list[Leg]
    price: Decimal | None = None
    price_effect: str | None = None
    stop: Decimal | None = None
    gtc_date: str | None = None
    external_id: str | None = None
    source: str = ""
    strict: bool = False
    id: int | None = None
    status: str = "Received"
    received_at: datetime | None = None
    updated_at: datetime | None = None
    live_at: datetime | None = None
    terminal_at: datetime | None = None
    cancelled_at: datetime | None = None
    reject_reason: str | None = None
    replaces: int | None = None
    replacing: int | None = None
    complex_id: int | None = None
    triggered: bool = False
    rested: bool = False
    edited: bool = False

    @property
    def size(self) -> Decimal:
        return Decimal(math.gcd(*(int(leg.quantity) for leg in self.legs))) if self._whole() else self.legs[0].quantity

    def _whole(self) -> bool:
        return all(leg.quantity == leg.quantity.to_integral() for leg in self.legs)

    @property
    def signed_limit(self) -> Decimal | None:
        """The most the order pays per unit (negative: the least credit it takes)."""
        if self.price is None:
            return None
        return self.price if self.price_effect == "Debit" else -self.price


@dataclass
class Complex:
    id: int | None
    account: str
    type: str
    orders: list[Order]
    trigger: Order | None = None
    terminal_at: datetime | None = None


def _decimal(value: Any, what: str, *, positive: bool = True) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise bad(f"{what} must be a decimal number (a string or a number), not {value!r}")
    try:
        d = Decimal(str(value))
    except InvalidOperation as exc:
        raise bad(f"{what} is not a number: {value!r}") from exc
    if not d.is_finite() or (positive and d <= 0):
        raise bad(f"{what} must be a positive number, not {value!r}")
    return d


class Book:
    """All orders of all accounts; ``notify(account, type, data)`` reports each change."""

    def __init__(self, market: Market, accounts: Accounts, clock: Callable[[], datetime]) -> None:
        self.market = market
        self.accounts = accounts
        self.now = clock
        self.orders: dict[int, Order] = {}
        self.complexes: dict[int, Complex] = {}
        self._order_ids = itertools.count(300_001)
        self._complex_ids = itertools.count(7_001)
        self._fill_ids = itertools.count(1)
        self.notify: Callable[[str, str, JSON], None] = lambda account, kind, data: None
        self.reject_next: list[str] = []

    # ================================================================== parsing

    def parse(self, account: Account, body: Any, *, legs_from: Order | None = None) -> Order:
        """A new (or replacement, when ``legs_from``) order from its JSON, or a 400."""
        if not isinstance(body, dict):
            raise bad("the order must be a JSON object")
        unknown = sorted(set(body) - ORDER_KEYS)
        if unknown:
            raise bad(f"unknown order field(s): {', '.join(unknown)} (keys are dasherized)")
        tif = body.get("time-in-force")
        if tif not in TIFS:
            raise bad(f"time-in-force must be one of {sorted(TIFS)}, not {tif!r}")
        kind = body.get("order-type")
        if kind not in ORDER_TYPES:
            raise bad(f"order-type must be one of {sorted(ORDER_TYPES)}, not {kind!r}")
        gtc = body.get("gtc-date")
        if tif == "GTD" and not gtc:
            raise bad("time-in-force GTD needs a gtc-date (YYYY-MM-DD)")
        if legs_from is not None:
            if "legs" in body and self._legs_json(legs_from) != self._strip_legs(body["legs"]):
                raise bad("a replacement cannot change the legs of an order")
            legs = [Leg(leg.inst, leg.action, leg.quantity, leg.quantity) for leg in legs_from.legs]
        else:
            legs = self._parse_legs(account, body.get("legs"))
        order = Order(account=account.number, tif=tif, order_type=kind, legs=legs, gtc_date=gtc)
        order.external_id = body.get("external-identifier")
        order.source = str(body.get("source") or "")
        advanced = body.get("advanced-instructions") or {}
        order.strict = bool(isinstance(advanced, dict) and advanced.get("strict-position-effect-validation"))
        if kind in ("Limit", "Stop Limit", "Marketable Limit") and "price" not in body:
            raise bad(f"a {kind} order needs a price")
        if "price" in body:
            order.price = _decimal(body["price"], "price")
            pe = body.get("price-effect")
            if pe not in ("Debit", "Credit"):
                raise bad(f"price-effect must be Debit or Credit when a price is sent, not {pe!r}")
            order.price_effect = pe
        if kind in ("Stop", "Stop Limit"):
            if "stop-trigger" not in body:
                raise bad(f"a {kind} order needs a stop-trigger")
            order.stop = _decimal(body["stop-trigger"], "stop-trigger")
            if len(order.legs) != 1:
                raise bad("stop orders have a single leg")
        if kind == "Market" and "price" in body:
            raise bad("a Market order takes no price")
        if kind == "Notional Market":
            raise refuse("unsupported_order_type", "Notional Market orders are not modelled by this fake server")
        return order

    @staticmethod
    def _strip_legs(legs: Any) -> Any:
        if not isinstance(legs, list):
            return legs
        return [
            {
                k: (str(v) if k == "quantity" else v)
                for k, v in leg.items()
                if k in ("instrument-type", "symbol", "quantity", "action")
            }
            for leg in legs
            if isinstance(leg, dict)
        ]

    @staticmethod
    def _legs_json(order: Order) -> list[JSON]:
        return [
            {
                "instrument-type": leg.inst.kind,
                "symbol": leg.inst.symbol,
                "quantity": str(leg.quantity),
                "action": leg.action,
            }
            for leg in order.legs
        ]

    def _parse_legs(self, account: Account, legs: Any) -> list[Leg]:
        if not isinstance(legs, list) or not legs:
            raise bad("legs must be a non-empty list")
        if len(legs) > 4:
            raise bad("an order has at most four legs")
        out: list[Leg] = []
        for n, leg in enumerate(legs, 1):
            if not isinstance(leg, dict):
                raise bad(f"leg {n} must be an object")
            unknown = sorted(set(leg) - LEG_KEYS)
            if unknown:
                raise bad(f"leg {n} has unknown field(s): {', '.join(unknown)}")
            kind, symbol, action = leg.get("instrument-type"), leg.get("symbol"), leg.get("action")
            if kind not in KINDS:
                raise bad(f"leg {n}: instrument-type must be one of {sorted(KINDS)}, not {kind!r}")
            if not isinstance(symbol, str) or not symbol:
                raise bad(f"leg {n}: symbol is required")
            if action not in ACTIONS:
                raise bad(f"leg {n}: action must be one of {sorted(ACTIONS)}, not {action!r}")
            qty = _decimal(leg.get("quantity"), f"leg {n} quantity")
            inst = self.market.get(symbol)
            if inst is None:
                raise refuse("invalid_symbol", f"leg {n}: unknown symbol {symbol!r}")
            if inst.kind != kind:
                raise refuse("invalid_instrument_type", f"leg {n}: {symbol} is a {inst.kind}, not a {kind}")
            # B6: Buy and Sell are for futures (and crypto); equities and equity options take the
            # to-open / to-close actions. Futures accept both forms here (the vendor's order
            # ticket shows both; not confirmed for the API).
            if action in ("Buy", "Sell") and kind in ("Equity", "Equity Option"):
                raise refuse("invalid_action", f"leg {n}: {kind} orders use 'Buy to Open' and the like, not {action!r}")
            if kind in ("Future", "Future Option") and not account.futures:
                raise refuse("futures_not_approved", f"account {account.number} is not approved for futures")
            if kind == "Equity Option" and account.options_level == "Limited" and action == "Sell to Open":
                raise refuse("options_level", f"account {account.number} may not sell options to open")
            if kind != "Equity" and qty != qty.to_integral():
                raise bad(f"leg {n}: {kind} quantities are whole contracts")
            out.append(Leg(inst, action, qty, qty))
        if out[0].inst.kind == "Equity" and len(out) > 1:
            raise refuse("invalid_legs", "equity orders may have only one leg")
        underlyings = {leg.inst.underlying for leg in out}
        if len(underlyings) > 1:
            raise refuse("invalid_legs", f"all legs must share one underlying, not {sorted(underlyings)}")
        if len({leg.inst.symbol for leg in out}) != len(out):
            raise refuse("invalid_legs", "a symbol may appear in one leg only")
        return out

    # ================================================================== preflight

    def check(self, account: Account, order: Order) -> tuple[JSON, JSON, list[JSON]]:
        """``(buying-power-effect, fee-calculation, errors)`` of an order against the account now."""
        now = self.now()
        errors: list[JSON] = []
        for price, what in ((order.price, "price"), (order.stop, "stop-trigger")):
            if price is None:
                continue
            if len(order.legs) == 1:
                tick = order.legs[0].inst.tick(price)
            else:
                tick = min(leg.inst.tick(price) for leg in order.legs)
            if on_grid(price, tick) != price:
                errors.append(
                    {"code": "invalid_price_increment", "message": f"{what} {price} is not a multiple of {tick}"}
                )
        commission = clearing = ZERO
        requirement = ZERO
        for leg in order.legs:
            signed = leg.sign * leg.quantity
            opening = self.accounts.is_opening(account, leg.inst, signed)
            c, cl = leg_fees(leg.inst, leg.quantity, opening)
            commission, clearing = commission + c, clearing + cl
            if order.strict and leg.action.endswith("to Close") and opening:
                errors.append(
                    {"code": "position_effect", "message": f"no {leg.inst.symbol} position for '{leg.action}' to close"}
                )
            if leg.inst.kind == "Equity" and signed < 0 and opening and not account.margin:
                errors.append({"code": "short_not_allowed", "message": "a cash account cannot sell short"})
        requirement = self._requirement(account, order, now)
        current = self.accounts.buying_power(account, now)
        new = current - requirement - commission - clearing
        if new < 0:
            errors.append(
                {
                    "code": "insufficient_buying_power",
                    "message": f"this order needs {round_money(requirement)} of buying power; {current} is available",
                }
            )
        bp: JSON = {"is-spread": len(order.legs) > 1}
        money(bp, "change-in-margin-requirement", -requirement)
        money(bp, "change-in-buying-power", -requirement)
        money(bp, "current-buying-power", current)
        money(bp, "new-buying-power", new)
        money(bp, "isolated-order-margin-requirement", -requirement)
        bp["impact"] = dec(round_money(requirement))
        bp["effect"] = "Debit" if requirement > 0 else "None"
        return bp, fee_calculation(commission, clearing), errors

    def _requirement(self, account: Account, order: Order, now: datetime) -> Decimal:
        """The buying power an order would use (see accounts.py for the model)."""
        opening = [leg for leg in order.legs if self.accounts.is_opening(account, leg.inst, leg.sign * leg.quantity)]
        if not opening:
            return ZERO
        unit = self._unit_price(order, now)
        size = order.size
        first = order.legs[0].inst
        if first.kind == "Future":
            return sum((self.market.margins[leg.inst.product] * leg.quantity for leg in opening), ZERO)
        if first.kind == "Equity":
            leg = order.legs[0]
            cost = leg.quantity * (unit if unit is not None else ZERO)
            return abs(cost) * (Decimal("0.5") if account.margin else Decimal(1))
        mult = first.multiplier
        if unit is not None and unit > 0:  # a net debit: pay it
            return unit * size * mult
        shorts = [leg for leg in opening if leg.sign < 0]
        if not shorts:
            return ZERO
        credit = -(unit or ZERO) * size * mult
        if len(order.legs) == 2 and {leg.inst.option_type for leg in order.legs} == {order.legs[0].inst.option_type}:
            strikes = [leg.inst.strike or ZERO for leg in order.legs]
            width = abs(strikes[0] - strikes[1]) * mult * size
            return max(ZERO, width - credit)
        under = self.accounts.mark(self.market.instruments[first.underlying], now)
        if first.kind == "Future Option":
            return sum((self.market.margins[leg.inst.product] * leg.quantity for leg in shorts), ZERO)
        return sum((Decimal("0.2") * under * mult * leg.quantity for leg in shorts), ZERO)

    def _unit_price(self, order: Order, now: datetime) -> Decimal | None:
        """Signed net price per unit the order would pay: its limit, else the touch cost."""
        if order.signed_limit is not None:
            return order.signed_limit
        return self.touch_cost(order, now)

    def touch_cost(self, order: Order, now: datetime) -> Decimal | None:
        size = order.size
        total = ZERO
        for leg in order.legs:
            q = self.market.quote(leg.inst.symbol, now)
            price = q.ask if leg.sign > 0 else q.bid
            if price is None:
                return None
            total += leg.sign * (leg.quantity / size) * price
        return total

    # ================================================================== JSON

    def order_json(self, order: Order) -> JSON:
        first = order.legs[0].inst
        data: JSON = {
            "account-number": order.account,
            "time-in-force": order.tif,
            "order-type": order.order_type,
            "size": _num(order.size),
            "underlying-symbol": first.underlying,
            "underlying-instrument-type": "Future" if first.kind.startswith("Future") else "Equity",
            "status": order.status,
            "cancellable": order.status in WORKING and order.status != "Cancel Requested",
            "editable": order.status in ("Routed", "Live", "Received", "Contingent"),
            "edited": order.edited,
            "updated-at": ms(order.updated_at) if order.updated_at and order.id is not None else 0,
            "source": order.source,
            "legs": [
                {
                    "instrument-type": leg.inst.kind,
                    "symbol": leg.inst.symbol,
                    "quantity": _num(leg.quantity),
                    "remaining-quantity": _num(leg.remaining),
                    "action": leg.action,
                    "fills": list(leg.fills),
                }
                for leg in order.legs
            ],
        }
        if order.id is not None:
            data["id"] = order.id
            data["user-id"] = "1001"
            data["username"] = "trader"
        if order.price is not None:
            data["price"] = dec(order.price)
            data["price-effect"] = order.price_effect
        if order.stop is not None:
            data["stop-trigger"] = dec(order.stop)
        for key, value in (
            ("gtc-date", order.gtc_date),
            ("external-identifier", order.external_id),
            ("reject-reason", order.reject_reason),
            ("replaces-order-id", order.replaces),
            ("replacing-order-id", order.replacing),
            ("complex-order-id", order.complex_id),
        ):
            if value is not None:
                data[key] = value
        for key, ts in (
            ("received-at", order.received_at),
            ("live-at", order.live_at),
            ("terminal-at", order.terminal_at),
            ("cancelled-at", order.cancelled_at),
        ):
            if ts is not None and order.id is not None:
                data[key] = iso(ts)
        return data

    def complex_json(self, cx: Complex) -> JSON:
        data: JSON = {"account-number": cx.account, "type": cx.type, "orders": [self.order_json(o) for o in cx.orders]}
        if cx.id is not None:
            data["id"] = cx.id
        if cx.trigger is not None:
            data["trigger-order"] = self.order_json(cx.trigger)
        if cx.terminal_at is not None:
            data["terminal-at"] = iso(cx.terminal_at)
        return data

    # ================================================================== state changes

    def _set(self, order: Order, status: str, *, reason: str | None = None) -> None:
        now = self.now()
        order.status = status
        order.updated_at = now
        if status == "Live" and order.live_at is None:
            order.live_at = now
        if status in TERMINAL:
            order.terminal_at = now
        if status == "Cancelled":
            order.cancelled_at = now
        if reason is not None:
            order.reject_reason = reason
        self.notify(order.account, "Order", self.order_json(order))
        if order.complex_id is not None and status in TERMINAL | {"Live"}:
            cx = self.complexes[order.complex_id]
            every = [*cx.orders, *([cx.trigger] if cx.trigger else [])]
            if all(o.status in TERMINAL for o in every) and cx.terminal_at is None:
                cx.terminal_at = now
            self.notify(cx.account, "ComplexOrder", self.complex_json(cx))

    def _register(self, order: Order) -> None:
        now = self.now()
        order.id = next(self._order_ids)
        order.received_at = order.updated_at = now
        self.orders[order.id] = order

    def submit(self, order: Order, *, contingent: bool = False) -> None:
        """A registered order goes out: Routed, then Live (or Contingent), then maybe a fill."""
        self._set(order, "Routed")
        if self.reject_next:
            self._set(order, "Rejected", reason=self.reject_next.pop(0))
            return
        if contingent:
            self._set(order, "Contingent")
            return
        self._set(order, "Live")
        self._try(order, arriving=True)

    def place(self, account: Account, order: Order) -> None:
        self._register(order)
        self.submit(order)

    def place_complex(self, account: Account, cx: Complex) -> None:
        cx.id = next(self._complex_ids)
        self.complexes[cx.id] = cx
        members = [*([cx.trigger] if cx.trigger else []), *cx.orders]
        for order in members:
            self._register(order)
            order.complex_id = cx.id
        if cx.trigger is not None:
            self.submit(cx.trigger)
            for order in cx.orders:
                if order.status == "Received":
                    self.submit(order, contingent=cx.trigger.status != "Filled")
        else:
            for order in cx.orders:
                if order.status == "Received":
                    self.submit(order)

    def cancel(self, order: Order) -> None:
        if order.status not in WORKING or order.status == "Cancel Requested":
            raise refuse("order_not_cancellable", f"order {order.id} is {order.status} and cannot be cancelled")
        self._set(order, "Cancel Requested")
        self._set(order, "Cancelled")

    def cancel_complex(self, cx: Complex) -> None:
        members = [*([cx.trigger] if cx.trigger else []), *cx.orders]
        working = [o for o in members if o.status in WORKING]
        if not working:
            raise refuse("order_not_cancellable", f"complex order {cx.id} has no working orders")
        for order in working:
            self._set(order, "Cancel Requested")
            self._set(order, "Cancelled")

    def replace(self, account: Account, old: Order, body: Any) -> Order:
        if old.status not in ("Routed", "Live", "Received"):
            raise refuse("order_not_editable", f"order {old.id} is {old.status} and cannot be replaced")
        new = self.parse(account, body, legs_from=old)
        new.complex_id = old.complex_id
        _, _, errors = self.check(account, new)
        if errors:
            raise OrderError(422, "preflight_check_failure", errors[0]["message"], errors)
        self._register(new)
        new.replaces = old.id
        new.edited = True
        old.replacing = new.id
        self._set(old, "Cancelled")
        self.submit(new)
        return new

    # ================================================================== matching

    def on_market(self) -> None:
        """Re-run matching for every working order after the market moved."""
        for order in list(self.orders.values()):
            if order.status == "Live":
                self._try(order, arriving=False)

    def _try(self, order: Order, *, arriving: bool) -> None:
        now = self.now()
        if order.order_type in ("Stop", "Stop Limit") and not order.triggered:
            leg = order.legs[0]
            last = self.market.quote(leg.inst.symbol, now).last
            assert order.stop is not None
            hit = last is not None and (last >= order.stop if leg.sign > 0 else last <= order.stop)
            if not hit:
                order.rested = True
                return
            order.triggered = True
            arriving = True  # a triggered stop meets the book as a new order
        cost = self.touch_cost(order, now)
        limit = order.signed_limit if order.order_type != "Stop" else None
        if not arriving and order.rested and len(order.legs) == 1 and limit is not None and order.price is not None:
            # A resting single-leg limit also fills when the tape prints at or through it.
            leg = order.legs[0]
            last = self.market.quote(leg.inst.symbol, now).last
            if last is not None and (last <= order.price if leg.sign > 0 else last >= order.price):
                self._fill(order, [order.price])
                return
        if cost is None or (limit is not None and cost > limit):
            if order.tif == "IOC":
                self._set(order, "Cancelled")
                return
            order.rested = True
            return
        if not arriving and order.rested and len(order.legs) == 1 and limit is not None:
            prices = [order.price]  # a resting single-leg limit fills at its own price
        else:
            prices = []
            for leg in order.legs:
                q = self.market.quote(leg.inst.symbol, now)
                prices.append(q.ask if leg.sign > 0 else q.bid)
        self._fill(order, [p for p in prices if p is not None])

    def _fill(self, order: Order, prices: list[Decimal]) -> None:
        now = self.now()
        account = self.accounts.by_number[order.account]
        group = f"G{next(self._fill_ids)}"
        touched: list[Instrument] = []
        for leg, price in zip(order.legs, prices, strict=True):
            fid = next(self._fill_ids)
            leg.fills.append(
                {
                    "fill-id": f"F{fid}",
                    "quantity": dec(leg.remaining),
                    "fill-price": dec(price),
                    "filled-at": iso(now),
                    "destination-venue": "FAKE_EXCHANGE",
                    "ext-exec-id": f"X{fid}",
                    "ext-group-fill-id": group,
                }
            )
            self.accounts.apply_fill(
                account, leg.inst, leg.sign * leg.remaining, price, now, action=leg.action, order_id=order.id
            )
            leg.remaining = ZERO
            touched.append(leg.inst)
        self._set(order, "Filled")
        for inst in touched:
            pos = account.positions[inst.symbol]
            self.notify(account.number, "CurrentPosition", self.accounts.position_json(pos, now))
        self.notify(account.number, "AccountBalance", self.accounts.balance_json(account, now))
        if order.complex_id is not None:
            self._after_fill_in_complex(order)

    def _after_fill_in_complex(self, order: Order) -> None:
        cx = self.complexes[order.complex_id] if order.complex_id is not None else None
        if cx is None:
            return
        if cx.trigger is order:
            for child in cx.orders:
                if child.status == "Contingent":
                    self._set(child, "Live")
                    self._try(child, arriving=True)
            return
        if cx.type in ("OCO", "OTOCO"):
            for sibling in cx.orders:
                if sibling is not order and sibling.status in WORKING:
                    self._set(sibling, "Cancelled")


def _num(value: Decimal) -> int | str:
    """Quantities: whole numbers as JSON integers (the vendor's examples), fractions as strings."""
    return int(value) if value == value.to_integral() else dec(value)

"""Orders on the fake Schwab server: account checks, a matching book, TRIGGER and OCO groups.

Requests are validated by :mod:`tests.fakes.schwab_order_rules` (refusals there are HTTP 400).
An order the account cannot carry (buying power, oversold, shorting in a cash account) is
accepted with 201 and then shows ``status: REJECTED`` with a ``statusDescription``.

Matching is deterministic: market orders take the touch, limits fill when the touch reaches
them, stops trigger on the last trade; the size at the touch caps each fill (partial fills), and
multi-leg orders fill at the legs' natural prices when that net is at or better than the limit.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from tests.fakes.schwab_accounts import Account, Ledger, schwab_time
from tests.fakes.schwab_market import CENT, Market, parse_option_symbol
from tests.fakes.schwab_order_rules import DONE, LIVE, Leg, OrderError, OrderRules, Spec

JSON = dict[str, Any]


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


class OrderBook:
    """Every order of every account, the validator and the matching loop."""

    def __init__(self, market: Market, ledger: Ledger, now: Callable[[], datetime]) -> None:
        self.market = market
        self.rules = OrderRules(market)
        self.parse = self.rules.parse
        self.ledger = ledger
        self.now = now
        self.orders: dict[int, Order] = {}
        self._ids = itertools.count(1_000_000_001)
        self._activity_ids = itertools.count(50_000_000_001)
        self.reject_next: list[str] = []
        #: Called with (account, order, message type) on every order event (ACCT_ACTIVITY).
        self.on_event: Callable[[Account, Order, str], None] = lambda acct, order, kind: None

    # ================================================================== validation

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
                self._queue_if_closed(o)
                self._emit(o.account, o, "OrderAccepted")
        self._check_stops(order)

    def _queue_if_closed(self, o: Order) -> None:
        """Outside its session an order waits as QUEUED (TDA's status for after-hours entries) and
        goes WORKING when the session opens."""
        if o.legs and not self.market.session_open(o.session):
            o.status = "QUEUED"

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
                # No source names the ACCT_ACTIVITY message type of a reject; the fake invents this one.
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
                pending = self._pending_close(acct, leg, self.root(o))
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

    def _pending_close(self, acct: Account, leg: Leg, skip: Order) -> int:
        """What working orders (other than the group ``skip``) already close of this position; the
        two sides of an OCO pair count once, attached orders still waiting for their entry not at all."""

        def closes(o: Order) -> int:
            if o.strategy == "OCO":
                return max((closes(c) for c in o.children), default=0)
            own = 0
            if o.status in LIVE and o.status != "AWAITING_PARENT_ORDER":
                own = sum(o.remaining * lg.ratio for lg in o.legs if lg.symbol == leg.symbol and lg.closing and
                          lg.buy == leg.buy)  # fmt: skip
            return own + sum(closes(c) for c in o.children)

        return sum(closes(o) for o in self.orders.values() if o.parent is None and o.account is acct and o is not skip)

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
        """The most a defined-risk spread can lose (its widest wing, less a credit asked for)."""
        keys = [parse_option_symbol(leg.symbol) for leg in o.legs if leg.asset_type == "OPTION"]
        if o.complex not in ("VERTICAL", "IRON_CONDOR", "BUTTERFLY", "CONDOR") or len(keys) < 2:
            return Decimal(0)
        by_type: dict[str, list[Decimal]] = {}
        for k in keys:
            assert k is not None
            by_type.setdefault(k.put_call, []).append(k.strike)
        wings = [b - a for strikes in by_type.values() for a, b in itertools.pairwise(sorted(strikes))]
        credit = o.price if o.order_type == "NET_CREDIT" and o.price is not None else Decimal(0)
        return max(Decimal(0), max(wings, default=Decimal(0)) - credit) * o.quantity * 100

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
                if not o.legs or o.status not in ("WORKING", "QUEUED"):
                    continue
                if not self.market.session_open(o.session):
                    continue  # a GTC order waits through the night
                if o.status == "QUEUED":
                    o.status = "WORKING"
                    self._emit(o.account, o, "OrderAccepted")
                if self._try_fill(o):
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
                self._queue_if_closed(x)
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

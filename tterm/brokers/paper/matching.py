"""The paper broker's matching engine: pure, synchronous, and testable without asyncio.

Rules (what a trader can rely on):

- A market order fills in full at the touch: a buy at the ask, a sell at the bid.
- A limit order that is marketable when it arrives fills at the touch (the better of its limit and
  the touch). A resting limit fills at its own limit price once the opposite touch reaches it.
  Limit fills take at most the size displayed at the touch on each quote, shared by every order
  on that symbol in price-then-time priority, so a 20-lot against a 5-lot ask fills 5. A quote
  with no size (0) is treated as deep enough for any order.
- A buy stop triggers when the ask reaches it (ask >= stop), a sell stop when the bid does
  (bid <= stop). A triggered stop fills as a market order; a triggered stop-limit becomes a limit
  at its limit price (filling at once if marketable).
- A trailing stop keeps its stop ``trail_amount`` behind the best price since it was placed (a
  sell trails the highest bid, a buy the lowest ask; the stop is rounded away from the market
  onto the tick grid), moves only towards the market, and triggers and fills as a stop.
- A multi-leg (combo) order fills as one order when its natural net price reaches its limit
  (see :mod:`.combos`): every leg at once, each at its own touch, for as many units as every
  leg's displayed size allows. A combo market order fills in full at the natural price once
  every leg is quoted.
- IOC fills what it can when it becomes active and cancels the rest; FOK fills in full at once or
  is cancelled. For stops "active" means triggered. DAY orders expire when the trade date changes.
- Brackets, OCO pairs and OTOCO triggers: see :mod:`.groups`.

Every effect is reported synchronously through ``sink``: an :class:`Order` for each state change
without a fill, an :class:`Execution` for each fill (the broker turns that into Fill, Order,
Position and balance events; a combo's execution carries one :class:`LegFill` per leg).
``capacity`` lets the broker cap a fill (cash accounts cannot spend more than they hold or sell
what they do not own).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from tterm.brokers.paper.combos import Leg, leg_sizes, natural, net_price, signed_limit
from tterm.brokers.paper.groups import BracketGroup, Exit, GroupLogic
from tterm.core.broker import BrokerError, UnknownOrder
from tterm.core.models import (
    Bracket,
    Instrument,
    Order,
    OrderRole,
    OrderStatus,
    OrderType,
    Quote,
    Side,
    TimeInForce,
    utcnow,
)


class ModifyRejected(BrokerError):
    """A modification the broker refuses; the order is left exactly as it was."""


@dataclass(slots=True)
class Working:
    """An open order in the book plus what the matching engine needs to know about it.

    ``legs`` holds a combo's legs (``instrument`` is then the strategy); ``trail_ref`` is a
    trailing stop's best price so far; ``held`` marks an OTOCO exit waiting for its trigger, and
    ``exits`` a trigger's exits.
    """

    order: Order
    instrument: Instrument
    trade_date: date
    seq: int = 0
    bracket: Bracket | None = None
    triggered: bool = False
    reduce_only: bool = False
    group: str | None = None
    groups_made: int = 0
    notional: Decimal = Decimal(0)
    legs: tuple[Leg, ...] = ()
    trail_ref: Decimal | None = None
    held: bool = False
    exits: tuple[Exit, ...] = ()


@dataclass(frozen=True, slots=True)
class LegFill:
    """One leg of a combo execution."""

    symbol: str
    side: Side
    quantity: int
    price: Decimal
    instrument: Instrument


@dataclass(frozen=True, slots=True)
class Execution:
    """One fill of ``quantity`` at ``price``; ``order`` is the order's state after it.

    For a combo, ``quantity`` is units of the combo, ``price`` its net price per unit and
    ``legs`` what each leg filled.
    """

    order: Order
    quantity: int
    price: Decimal
    instrument: Instrument
    reduce_only: bool = False
    legs: tuple[LegFill, ...] = ()


Effect = Order | Execution
#: ``capacity(working, wanted, price) -> (allowed, reason)``; allowed < wanted cancels the rest.
Capacity = Callable[[Working, int, Decimal], tuple[int, str]]


# --------------------------------------------------------------------------- validation helpers


def tick_error(inst: Instrument, price: Decimal, label: str) -> str | None:
    """Why ``price`` is not a valid ``label`` price for ``inst``, or None if it is."""
    if not isinstance(price, Decimal) or not price.is_finite():
        return f"{label} {price} is not a finite decimal price"
    if price <= 0:
        return f"{label} {price} must be positive"
    if not inst.is_on_tick(price):
        down = inst.round_price(price, "down")
        up = inst.round_price(price, "up")
        tick = inst.tick_at(price)
        return f"{label} {price} is off the tick grid for {inst.symbol} (tick {tick}; nearest {down} or {up})"
    return None


def stop_side_error(side: Side, stop: Decimal, quote: Quote | None, label: str = "stop") -> str | None:
    """Why a ``side`` stop at ``stop`` would trigger at once against ``quote``, or None."""
    if quote is None:
        return None
    if side is Side.BUY:
        ref = quote.ask if quote.ask is not None else quote.last
        if ref is not None and stop <= ref:
            return f"buy {label} {stop} must be above the market (ask {ref}); a buy stop below it would trigger at once"
    else:
        ref = quote.bid if quote.bid is not None else quote.last
        if ref is not None and stop >= ref:
            return (
                f"sell {label} {stop} must be below the market (bid {ref}); a sell stop above it would trigger at once"
            )
    return None


def touch(quote: Quote, side: Side) -> Decimal | None:
    """The price a ``side`` order takes: a buy lifts the ask, a sell hits the bid (else last)."""
    price = quote.ask if side is Side.BUY else quote.bid
    return price if price is not None else quote.last


def stop_hit(side: Side, stop: Decimal, quote: Quote) -> bool:
    """Whether ``quote`` triggers a ``side`` stop at ``stop``."""
    if side is Side.BUY:
        ref = quote.ask if quote.ask is not None else quote.last
        return ref is not None and ref >= stop
    ref = quote.bid if quote.bid is not None else quote.last
    return ref is not None and ref <= stop


def trail_stop(side: Side, ref: Decimal, trail: Decimal, inst: Instrument) -> Decimal:
    """A trailing stop's price ``trail`` behind ``ref``, rounded away from the market."""
    if side is Side.SELL:
        return inst.round_price(max(ref - trail, inst.tick_size), "down")
    return inst.round_price(ref + trail, "up")


def average(notional: Decimal, quantity: int, inst: Instrument) -> Decimal:
    """Average price of ``quantity`` filled for ``notional``: on tick when exact, else 8 places."""
    avg = notional / quantity
    if inst.is_on_tick(avg):
        return inst.round_price(avg)
    return avg.quantize(Decimal("0.00000001"))


def _stoplike(o: Order) -> bool:
    return o.order_type.needs_stop or o.order_type is OrderType.TRAILING_STOP


# --------------------------------------------------------------------------- the engine


class MatchingEngine(GroupLogic):
    """Holds the working orders and the last quote per symbol; matches on every quote."""

    def __init__(
        self,
        *,
        sink: Callable[[Effect], None],
        new_id: Callable[[str], str],
        capacity: Capacity | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sink = sink
        self._new_id = new_id
        self._capacity = capacity
        self._now = now
        self.working: dict[str, Working] = {}
        self.groups: dict[str, BracketGroup] = {}
        self.quotes: dict[str, Quote] = {}
        self._taken: dict[tuple[str, Side], int] = {}
        #: Working combos by the symbol of each of their legs.
        self._combos: dict[str, set[str]] = {}
        self._seq = 0
        #: Ids of orders whose state changed since the broker last saved (read and cleared by it).
        self.dirty: set[str] = set()
        #: Whether any bracket group changed since the broker last saved.
        self.groups_dirty = False

    def _out(self, effect: Effect) -> None:
        order = effect.order if isinstance(effect, Execution) else effect
        self.dirty.add(order.order_id)
        self._sink(effect)

    # ------------------------------------------------------------------ queries

    def quote(self, symbol: str) -> Quote | None:
        return self.quotes.get(symbol)

    def open_orders(self, symbol: str | None = None) -> list[Working]:
        return [w for w in self.working.values() if symbol is None or w.order.symbol == symbol]

    @property
    def symbols(self) -> set[str]:
        """Symbols with at least one working order, every leg of a combo included."""
        out = {w.order.symbol for w in self.working.values() if not w.legs}
        out.update(self._combos)
        return out

    # ------------------------------------------------------------------ commands

    def restore(self, working: Iterable[Working], groups: Iterable[BracketGroup]) -> None:
        """Put saved working orders and bracket groups back without matching them."""
        for w in working:
            self.working[w.order.order_id] = w
            self._seq = max(self._seq, w.seq)
            self._index(w)
        for g in groups:
            self.groups[g.group_id] = g

    def set_quote(self, quote: Quote) -> None:
        """Record ``quote`` as the market without matching (a restored mark)."""
        self.quotes[quote.symbol] = quote

    def accept(
        self,
        order: Order,
        instrument: Instrument,
        *,
        trade_date: date,
        bracket: Bracket | None = None,
        reduce_only: bool = False,
        legs: tuple[Leg, ...] = (),
    ) -> Working:
        """Take a validated order into the book as WORKING without matching it yet (groups
        link their members first, then :meth:`activate` them)."""
        self._seq += 1
        w = Working(
            order=order.evolve(status=OrderStatus.WORKING, updated_at=self._now()),
            instrument=instrument,
            trade_date=trade_date,
            seq=self._seq,
            bracket=bracket,
            reduce_only=reduce_only,
            legs=legs,
        )
        self.working[w.order.order_id] = w
        self._index(w)
        return w

    def activate(self, w: Working) -> Order:
        """Announce an accepted order and match it against the last quote."""
        if not w.held:
            self._trail_reset(w, self.quotes.get(w.order.symbol))
        self._out(w.order)
        if w.held:
            return w.order
        if w.legs:
            self._combo_match(w, arriving=True)
        else:
            q = self.quotes.get(w.order.symbol)
            if q is not None:
                self._arrive(w, q)
            elif w.order.tif in (TimeInForce.IOC, TimeInForce.FOK) and not _stoplike(w.order):
                self._finish(w, OrderStatus.CANCELLED, f"{w.order.tif.value.upper()}: no market to fill against")
        return w.order

    def submit(
        self,
        order: Order,
        instrument: Instrument,
        *,
        trade_date: date,
        bracket: Bracket | None = None,
        reduce_only: bool = False,
        legs: tuple[Leg, ...] = (),
    ) -> Order:
        """Accept a validated order: it becomes WORKING, then matches against the last quote."""
        w = self.accept(order, instrument, trade_date=trade_date, bracket=bracket, reduce_only=reduce_only, legs=legs)
        return self.activate(w)

    def on_quote(self, quote: Quote) -> None:
        """Record ``quote`` and match every working order on its symbol (and combos with a leg on it)."""
        sym = quote.symbol
        self.quotes[sym] = quote
        taken = self._taken
        if not self.working:
            if taken:
                taken.pop((sym, Side.BUY), None)
                taken.pop((sym, Side.SELL), None)
            return
        taken[(sym, Side.BUY)] = 0
        taken[(sym, Side.SELL)] = 0
        candidates = sorted(
            (w for w in self.working.values() if w.order.symbol == sym and not w.held and not w.legs),
            key=self._priority,
        )
        for w in candidates:
            if w.order.order_id not in self.working:
                continue  # cancelled by an OCO sibling earlier in this pass
            o = w.order
            if _stoplike(o) and not w.triggered:
                if o.order_type is OrderType.TRAILING_STOP:
                    self._trail(w, quote)
                assert w.order.stop_price is not None or o.order_type is OrderType.TRAILING_STOP
                if w.order.stop_price is not None and stop_hit(o.side, w.order.stop_price, quote):
                    w.triggered = True
                    self.dirty.add(o.order_id)
                    self._arrive(w, quote)
            elif o.order_type in (OrderType.STOP, OrderType.TRAILING_STOP):
                self._arrive(w, quote)  # triggered earlier, had no touch to fill against
            elif o.order_type.needs_limit:
                self._rest_match(w, quote)
            else:
                self._arrive(w, quote)  # a market order that found no touch on arrival
        combos = self._combos.get(sym)
        if combos:
            for oid in sorted(combos, key=lambda i: self.working[i].seq if i in self.working else 0):
                combo = self.working.get(oid)
                if combo is not None:
                    self._combo_match(combo, arriving=False)

    def cancel(self, order_id: str, reason: str = "") -> Order:
        """Cancel a working order; raises UnknownOrder if it is not working."""
        w = self.working.get(order_id)
        if w is None:
            raise UnknownOrder(f"order {order_id} is not working")
        self._finish(w, OrderStatus.CANCELLED, reason)
        return w.order

    def expire(self, trade_date: date) -> list[Order]:
        """Expire every DAY order placed on a trade date before ``trade_date``."""
        done = []
        for w in list(self.working.values()):
            if w.order.tif is TimeInForce.DAY and w.trade_date < trade_date and w.order.order_id in self.working:
                self._finish(w, OrderStatus.EXPIRED, f"day order expired at the end of the {w.trade_date} session")
                done.append(w.order)
        return done

    def modify(
        self,
        order_id: str,
        *,
        quantity: int | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> Order:
        """Change a working order's quantity or prices, then match it as if it had just arrived.

        Raises UnknownOrder if the order is not working and ModifyRejected (changing nothing)
        if the change is invalid.
        """
        w = self.working.get(order_id)
        if w is None:
            raise UnknownOrder(f"order {order_id} is not working")
        o = w.order
        inst = w.instrument
        if quantity is None and limit_price is None and stop_price is None:
            raise ModifyRejected(f"order {order_id}: nothing to change")
        changes: dict[str, object] = {}
        if quantity is not None:
            if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
                raise ModifyRejected(f"order {order_id}: quantity must be a positive whole number, got {quantity!r}")
            if o.role is not OrderRole.ENTRY and quantity != o.quantity:
                raise ModifyRejected(
                    f"order {order_id} is a bracket {o.role.value.replace('_', '-')}; its quantity follows the "
                    "entry's fills (change its price, or cancel it)"
                )
            if quantity <= o.filled_quantity:
                raise ModifyRejected(
                    f"order {order_id}: new quantity {quantity} must be above the {o.filled_quantity} already filled"
                )
            changes["quantity"] = quantity
        if limit_price is not None:
            if not o.order_type.needs_limit:
                raise ModifyRejected(f"order {order_id} is a {o.order_type.value} order; it has no limit price")
            err = tick_error(inst, limit_price, "limit price")
            if err:
                raise ModifyRejected(f"order {order_id}: {err}")
            changes["limit_price"] = limit_price
        if stop_price is not None:
            if o.order_type is OrderType.TRAILING_STOP:
                raise ModifyRejected(
                    f"order {order_id} is a trailing stop: its stop follows the market "
                    f"{o.trail_amount} behind; cancel it and place a new one to change the trail"
                )
            if not o.order_type.needs_stop:
                raise ModifyRejected(f"order {order_id} is a {o.order_type.value} order; it has no stop price")
            if w.triggered:
                raise ModifyRejected(f"order {order_id}: its stop has already triggered; only the limit can change")
            err = tick_error(inst, stop_price, "stop price")
            if not err and not w.held:
                err = stop_side_error(o.side, stop_price, self.quotes.get(o.symbol))
            if err:
                raise ModifyRejected(f"order {order_id}: {err}")
            changes["stop_price"] = stop_price
        w.order = o.evolve(updated_at=self._now(), **changes)
        self._out(w.order)
        if w.held or o.role is not OrderRole.ENTRY:
            self.exit_changed(w)
        if w.held:
            return w.order
        if w.legs:
            self._combo_match(w, arriving=True)
        else:
            q = self.quotes.get(o.symbol)
            if q is not None:
                self._arrive(w, q)
        return w.order

    # ------------------------------------------------------------------ matching internals

    def _index(self, w: Working) -> None:
        for _, inst in w.legs:
            self._combos.setdefault(inst.symbol, set()).add(w.order.order_id)

    def _unindex(self, w: Working) -> None:
        for _, inst in w.legs:
            ids = self._combos.get(inst.symbol)
            if ids is not None:
                ids.discard(w.order.order_id)
                if not ids:
                    del self._combos[inst.symbol]

    def _child(self, order: Order, entry: Working) -> Working:
        self._seq += 1
        return Working(
            order=order, instrument=entry.instrument, trade_date=entry.trade_date, seq=self._seq, reduce_only=True
        )

    def _trail_reset(self, w: Working, q: Quote | None) -> None:
        """Start a trailing stop from the market now (placement, or an OTOCO exit coming alive)."""
        o = w.order
        if o.order_type is not OrderType.TRAILING_STOP or w.triggered or q is None:
            return
        w.trail_ref = None
        self._trail(w, q, announce=False)

    def _trail(self, w: Working, q: Quote, *, announce: bool = True) -> None:
        """Move a trailing stop with the market (never back)."""
        o = w.order
        ref = touch(q, o.side)  # a sell trails the bid (where it triggers), a buy the ask
        if ref is None or o.trail_amount is None:
            return
        best = w.trail_ref
        if best is not None and (ref <= best if o.side is Side.SELL else ref >= best):
            return
        w.trail_ref = ref
        stop = trail_stop(o.side, ref, o.trail_amount, w.instrument)
        if stop != o.stop_price:
            w.order = o.evolve(stop_price=stop, updated_at=self._now())
            self.dirty.add(o.order_id)
            if announce:
                self._out(w.order)

    @staticmethod
    def _priority(w: Working) -> tuple[int, Decimal, int]:
        o = w.order
        if _stoplike(o) and not w.triggered:
            return (0, Decimal(0), w.seq)
        if o.limit_price is None or (o.order_type is OrderType.STOP_LIMIT and not w.triggered):
            return (1, Decimal(0), w.seq)
        # Better-priced limits first: the highest bid, the lowest offer.
        return (2, -o.limit_price if o.side is Side.BUY else o.limit_price, w.seq)

    def _available(self, quote: Quote, side: Side) -> int | None:
        """Size left at the touch ``side`` takes from, None when the quote shows no size."""
        size = quote.ask_size if side is Side.BUY else quote.bid_size
        if size <= 0:
            return None
        return max(0, size - self._taken.get((quote.symbol, side), 0))

    def _arrive(self, w: Working, q: Quote) -> None:
        """Match an order that has just become active (placed, modified, triggered, or a child)."""
        o = w.order
        if _stoplike(o) and not w.triggered:
            if o.stop_price is None or not stop_hit(o.side, o.stop_price, q):
                return
            w.triggered = True
            self.dirty.add(o.order_id)
        if o.order_type in (OrderType.MARKET, OrderType.STOP, OrderType.TRAILING_STOP):
            price = touch(q, o.side)
            if price is not None:
                if o.tif is TimeInForce.FOK and not self._fits(w, o.remaining, price):
                    self._finish(w, OrderStatus.CANCELLED, "FOK: cannot fill the whole quantity at once")
                    return
                self._execute(w, o.remaining, price, limit_fill=False)
        else:
            assert o.limit_price is not None
            price = touch(q, o.side)
            marketable = price is not None and (
                price <= o.limit_price if o.side is Side.BUY else price >= o.limit_price
            )
            if marketable:
                assert price is not None
                avail = self._available(q, o.side)
                qty = o.remaining if avail is None else min(o.remaining, avail)
                if o.tif is TimeInForce.FOK and (qty < o.remaining or not self._fits(w, o.remaining, price)):
                    self._finish(
                        w,
                        OrderStatus.CANCELLED,
                        f"FOK: only {qty} of {o.remaining} available at {price}; nothing filled",
                    )
                    return
                self._execute(w, qty, price, limit_fill=True)
        self._end_immediate(w)

    def _end_immediate(self, w: Working) -> None:
        """IOC/FOK: what did not fill on arrival is cancelled."""
        if w.order.order_id in self.working and w.order.tif in (TimeInForce.IOC, TimeInForce.FOK):
            filled = w.order.filled_quantity
            self._finish(
                w,
                OrderStatus.CANCELLED,
                f"{w.order.tif.value.upper()}: filled {filled}, unfilled {w.order.remaining} cancelled",
            )

    def _rest_match(self, w: Working, q: Quote) -> None:
        """A resting limit fills at its limit price once the opposite touch reaches it."""
        o = w.order
        assert o.limit_price is not None
        price = touch(q, o.side)
        if price is None:
            return
        if (o.side is Side.BUY and price > o.limit_price) or (o.side is Side.SELL and price < o.limit_price):
            return
        avail = self._available(q, o.side)
        qty = o.remaining if avail is None else min(o.remaining, avail)
        self._execute(w, qty, o.limit_price, limit_fill=True)

    def _combo_match(self, w: Working, *, arriving: bool) -> None:
        """Fill a combo at its natural price once that reaches its limit (see :mod:`.combos`)."""
        o = w.order
        nat = natural(w.legs, self.quotes)
        if nat is None:
            if arriving:
                self._end_immediate(w)
            return
        debit, prices = nat
        if o.order_type is OrderType.LIMIT:
            assert o.limit_price is not None
            if debit > signed_limit(o.side, o.limit_price):
                if arriving:
                    self._end_immediate(w)
                return
        market = o.order_type is OrderType.MARKET
        # A combo market order fills in full like a single one; a limit takes the displayed size.
        units = None if market else leg_sizes(w.legs, self.quotes, self._taken)
        qty = o.remaining if units is None else min(o.remaining, units)
        price = net_price(o.side, debit)
        if o.tif is TimeInForce.FOK and (qty < o.remaining or not self._fits(w, o.remaining, price)):
            self._finish(w, OrderStatus.CANCELLED, f"FOK: only {qty} of {o.remaining} available; nothing filled")
            return
        if qty > 0:
            legs = tuple(
                LegFill(inst.symbol, leg.side, qty * leg.ratio, px, inst)
                for (leg, inst), px in zip(w.legs, prices, strict=True)
            )
            self._execute(w, qty, price, limit_fill=not market, legs=legs)
        if arriving:
            self._end_immediate(w)

    def _fits(self, w: Working, qty: int, price: Decimal) -> bool:
        if self._capacity is None:
            return True
        allowed, _ = self._capacity(w, qty, price)
        return allowed >= qty

    def _execute(
        self, w: Working, qty: int, price: Decimal, *, limit_fill: bool, legs: tuple[LegFill, ...] = ()
    ) -> None:
        shortfall = ""
        if self._capacity is not None and qty > 0:
            allowed, reason = self._capacity(w, qty, price)
            if allowed < qty:
                qty, shortfall = max(0, allowed), reason
                if legs:
                    legs = tuple(
                        LegFill(lf.symbol, lf.side, qty * leg.ratio, lf.price, lf.instrument)
                        for lf, (leg, _) in zip(legs, w.legs, strict=True)
                    )
        if qty > 0:
            o = w.order
            filled = o.filled_quantity + qty
            w.notional += price * qty
            status = OrderStatus.FILLED if filled == o.quantity else OrderStatus.PARTIALLY_FILLED
            w.order = o.evolve(
                filled_quantity=filled,
                avg_fill_price=average(w.notional, filled, w.instrument),
                status=status,
                updated_at=self._now(),
            )
            if status is OrderStatus.FILLED:
                self.working.pop(o.order_id, None)
                self._unindex(w)
            if limit_fill:
                if legs:
                    for lf in legs:
                        key = (lf.symbol, lf.side)
                        self._taken[key] = self._taken.get(key, 0) + lf.quantity
                else:
                    key = (o.symbol, o.side)
                    self._taken[key] = self._taken.get(key, 0) + qty
            self._out(Execution(w.order, qty, price, w.instrument, w.reduce_only, legs))
            if o.role is OrderRole.ENTRY and (w.bracket is not None or w.exits):
                self._entry_filled(w, qty)
            elif o.role is not OrderRole.ENTRY:
                self._child_filled(w, qty)
            elif o.oco_group:
                self._oco_filled(w, qty)
        if shortfall and w.order.order_id in self.working:
            self._finish(w, OrderStatus.CANCELLED, shortfall)

    def _finish(self, w: Working, status: OrderStatus, reason: str) -> None:
        """End a working order (cancelled or expired) and detach it from its group."""
        self.working.pop(w.order.order_id, None)
        self._unindex(w)
        w.order = w.order.evolve(status=status, reject_reason=reason, updated_at=self._now())
        self._out(w.order)
        self._detach(w, status)


__all__ = [
    "BracketGroup",
    "Capacity",
    "Effect",
    "Execution",
    "Exit",
    "LegFill",
    "MatchingEngine",
    "ModifyRejected",
    "Working",
    "average",
    "stop_hit",
    "stop_side_error",
    "tick_error",
    "touch",
    "trail_stop",
]

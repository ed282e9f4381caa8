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
- IOC fills what it can when it becomes active and cancels the rest; FOK fills in full at once or
  is cancelled. For stops "active" means triggered. DAY orders expire when the trade date changes.
- Brackets: when an entry fills, a take-profit (limit) and a stop-loss (stop) are created for the
  filled quantity, sharing an ``oco_group``. Further entry fills grow both children (at the prices
  already set, so a trader's modification is kept). A child fill shrinks its sibling; a child that
  fills completely cancels its sibling and closes the group; a later entry fill then starts a new
  group priced from the entry's average fill at that time. Children are DAY when the entry is DAY,
  otherwise GTC.

Every effect is reported synchronously through ``sink``: an :class:`Order` for each state change
without a fill, an :class:`Execution` for each fill (the broker turns that into Fill, Order,
Position and balance events). ``capacity`` lets the broker cap a fill (cash accounts cannot
spend more than they hold or sell what they do not own).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

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
    """An open order in the book plus what the matching engine needs to know about it."""

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


@dataclass(slots=True)
class BracketGroup:
    """One OCO pair protecting ``exposure`` contracts of an entry's fills."""

    group_id: str
    entry_id: str
    tp_id: str | None
    sl_id: str | None
    exposure: int


@dataclass(frozen=True, slots=True)
class Execution:
    """One fill of ``quantity`` at ``price``; ``order`` is the order's state after it."""

    order: Order
    quantity: int
    price: Decimal
    instrument: Instrument
    reduce_only: bool = False


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
        return f"{label} {price} is off the tick grid for {inst.symbol} (tick {inst.tick_size}; nearest {down} or {up})"
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


def average(notional: Decimal, quantity: int, inst: Instrument) -> Decimal:
    """Average price of ``quantity`` filled for ``notional``: on tick when exact, else 8 places."""
    avg = notional / quantity
    if inst.is_on_tick(avg):
        return inst.round_price(avg)
    return avg.quantize(Decimal("0.00000001"))


# --------------------------------------------------------------------------- the engine


class MatchingEngine:
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
        """Symbols with at least one working order (the broker keeps quoting them)."""
        return {w.order.symbol for w in self.working.values()}

    # ------------------------------------------------------------------ commands

    def restore(self, working: Iterable[Working], groups: Iterable[BracketGroup]) -> None:
        """Put saved working orders and bracket groups back without matching them."""
        for w in working:
            self.working[w.order.order_id] = w
            self._seq = max(self._seq, w.seq)
        for g in groups:
            self.groups[g.group_id] = g

    def set_quote(self, quote: Quote) -> None:
        """Record ``quote`` as the market without matching (a restored mark)."""
        self.quotes[quote.symbol] = quote

    def submit(
        self,
        order: Order,
        instrument: Instrument,
        *,
        trade_date: date,
        bracket: Bracket | None = None,
        reduce_only: bool = False,
    ) -> Order:
        """Accept a validated order: it becomes WORKING, then matches against the last quote."""
        self._seq += 1
        w = Working(
            order=order.evolve(status=OrderStatus.WORKING, updated_at=self._now()),
            instrument=instrument,
            trade_date=trade_date,
            seq=self._seq,
            bracket=bracket,
            reduce_only=reduce_only,
        )
        self.working[w.order.order_id] = w
        self._out(w.order)
        q = self.quotes.get(w.order.symbol)
        if q is not None:
            self._arrive(w, q)
        elif w.order.tif in (TimeInForce.IOC, TimeInForce.FOK) and not w.order.order_type.needs_stop:
            self._finish(w, OrderStatus.CANCELLED, f"{w.order.tif.value.upper()}: no market to fill against")
        return w.order

    def on_quote(self, quote: Quote) -> None:
        """Record ``quote`` and match every working order on its symbol."""
        sym = quote.symbol
        self.quotes[sym] = quote
        self._taken[(sym, Side.BUY)] = 0
        self._taken[(sym, Side.SELL)] = 0
        candidates = sorted((w for w in self.working.values() if w.order.symbol == sym), key=self._priority)
        for w in candidates:
            if w.order.order_id not in self.working:
                continue  # cancelled by an OCO sibling earlier in this pass
            o = w.order
            if o.order_type.needs_stop and not w.triggered:
                assert o.stop_price is not None
                if stop_hit(o.side, o.stop_price, quote):
                    w.triggered = True
                    self.dirty.add(o.order_id)
                    self._arrive(w, quote)
            elif o.order_type is OrderType.STOP:
                self._arrive(w, quote)  # triggered earlier, had no touch to fill against
            elif o.order_type.needs_limit:
                self._rest_match(w, quote)
            else:
                self._arrive(w, quote)  # a market order that found no touch on arrival

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
            if not o.order_type.needs_stop:
                raise ModifyRejected(f"order {order_id} is a {o.order_type.value} order; it has no stop price")
            if w.triggered:
                raise ModifyRejected(f"order {order_id}: its stop has already triggered; only the limit can change")
            err = tick_error(inst, stop_price, "stop price") or stop_side_error(
                o.side, stop_price, self.quotes.get(o.symbol)
            )
            if err:
                raise ModifyRejected(f"order {order_id}: {err}")
            changes["stop_price"] = stop_price
        w.order = o.evolve(updated_at=self._now(), **changes)
        self._out(w.order)
        q = self.quotes.get(o.symbol)
        if q is not None:
            self._arrive(w, q)
        return w.order

    # ------------------------------------------------------------------ matching internals

    @staticmethod
    def _priority(w: Working) -> tuple[int, Decimal, int]:
        o = w.order
        if o.order_type.needs_stop and not w.triggered:
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
        if o.order_type.needs_stop and not w.triggered:
            assert o.stop_price is not None
            if not stop_hit(o.side, o.stop_price, q):
                return
            w.triggered = True
            self.dirty.add(o.order_id)
        if o.order_type in (OrderType.MARKET, OrderType.STOP):
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

    def _fits(self, w: Working, qty: int, price: Decimal) -> bool:
        if self._capacity is None:
            return True
        allowed, _ = self._capacity(w, qty, price)
        return allowed >= qty

    def _execute(self, w: Working, qty: int, price: Decimal, *, limit_fill: bool) -> None:
        shortfall = ""
        if self._capacity is not None and qty > 0:
            allowed, reason = self._capacity(w, qty, price)
            if allowed < qty:
                qty, shortfall = max(0, allowed), reason
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
            if limit_fill:
                key = (o.symbol, o.side)
                self._taken[key] = self._taken.get(key, 0) + qty
            self._out(Execution(w.order, qty, price, w.instrument, w.reduce_only))
            if o.role is OrderRole.ENTRY and w.bracket is not None:
                self._entry_filled(w, qty)
            elif o.role is not OrderRole.ENTRY:
                self._child_filled(w, qty)
        if shortfall and w.order.order_id in self.working:
            self._finish(w, OrderStatus.CANCELLED, shortfall)

    def _finish(self, w: Working, status: OrderStatus, reason: str) -> None:
        """End a working order (cancelled or expired) and detach it from its bracket group."""
        self.working.pop(w.order.order_id, None)
        w.order = w.order.evolve(status=status, reject_reason=reason, updated_at=self._now())
        self._out(w.order)
        if w.order.role is not OrderRole.ENTRY and w.order.oco_group:
            g = self.groups.get(w.order.oco_group)
            if g is not None:
                self.groups_dirty = True
                if g.tp_id == w.order.order_id:
                    g.tp_id = None
                if g.sl_id == w.order.order_id:
                    g.sl_id = None
                if g.tp_id is None and g.sl_id is None:
                    self._close_group(g)

    def _close_group(self, g: BracketGroup) -> None:
        self.groups.pop(g.group_id, None)
        self.groups_dirty = True
        entry = self.working.get(g.entry_id)
        if entry is not None and entry.group == g.group_id:
            entry.group = None
            self.dirty.add(g.entry_id)

    # ------------------------------------------------------------------ brackets

    def _entry_filled(self, entry: Working, qty: int) -> None:
        g = self.groups.get(entry.group) if entry.group else None
        self.groups_dirty = True
        if g is not None and (g.tp_id in self.working or g.sl_id in self.working):
            g.exposure += qty
            for cid in (g.tp_id, g.sl_id):
                child = self.working.get(cid) if cid else None
                if child is not None:
                    child.order = child.order.evolve(quantity=child.order.quantity + qty, updated_at=self._now())
                    self._out(child.order)
            return
        assert entry.bracket is not None and entry.order.avg_fill_price is not None
        o = entry.order
        tp, sl = entry.bracket.resolve(o.avg_fill_price, o.side, entry.instrument)
        entry.groups_made += 1
        n = entry.groups_made
        gid = self._new_id("oco")
        suffix = "" if n == 1 else str(n)
        tif = TimeInForce.DAY if o.tif is TimeInForce.DAY else TimeInForce.GTC
        children: list[Working] = []
        for role, kind, price in (
            (OrderRole.TAKE_PROFIT, OrderType.LIMIT, tp),
            (OrderRole.STOP_LOSS, OrderType.STOP, sl),
        ):
            if price is None:
                continue
            self._seq += 1
            now = self._now()
            child = Order(
                order_id=self._new_id("order"),
                client_order_id=f"{o.client_order_id}.{'tp' if role is OrderRole.TAKE_PROFIT else 'sl'}{suffix}",
                account=o.account,
                symbol=o.symbol,
                side=o.side.opposite,
                quantity=qty,
                order_type=kind,
                status=OrderStatus.WORKING,
                limit_price=price if kind is OrderType.LIMIT else None,
                stop_price=price if kind is OrderType.STOP else None,
                tif=tif,
                role=role,
                parent_id=o.order_id,
                oco_group=gid,
                source=o.source,
                broker=o.broker,
                created_at=now,
                updated_at=now,
            )
            children.append(
                Working(
                    order=child,
                    instrument=entry.instrument,
                    trade_date=entry.trade_date,
                    seq=self._seq,
                    reduce_only=True,
                )
            )
        g = BracketGroup(
            group_id=gid,
            entry_id=o.order_id,
            tp_id=next((c.order.order_id for c in children if c.order.role is OrderRole.TAKE_PROFIT), None),
            sl_id=next((c.order.order_id for c in children if c.order.role is OrderRole.STOP_LOSS), None),
            exposure=qty,
        )
        self.groups[gid] = g
        entry.group = gid
        for c in children:
            self.working[c.order.order_id] = c
            self._out(c.order)
        q = self.quotes.get(o.symbol)
        if q is not None:
            for c in children:
                if c.order.order_id in self.working:
                    self._arrive(c, q)

    def _child_filled(self, child: Working, qty: int) -> None:
        g = self.groups.get(child.order.oco_group or "")
        if g is None:
            return
        self.groups_dirty = True
        g.exposure -= qty
        sib_id = g.sl_id if child.order.role is OrderRole.TAKE_PROFIT else g.tp_id
        sib = self.working.get(sib_id) if sib_id else None
        if g.exposure <= 0:
            if child.order.role is OrderRole.TAKE_PROFIT:
                g.tp_id = None
            else:
                g.sl_id = None
            if sib is not None:
                what = child.order.role.value.replace("_", "-")
                self._finish(sib, OrderStatus.CANCELLED, f"OCO: {what} {child.order.order_id} filled")
            self._close_group(g)
        elif sib is not None:
            sib.order = sib.order.evolve(quantity=sib.order.quantity - qty, updated_at=self._now())
            self._out(sib.order)

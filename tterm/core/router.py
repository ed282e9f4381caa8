"""The order router: validate, run the pre-trade checks, then send to the right broker, once.

Every order from every source (ticket, palette, command bar, hotkey, webhook, risk) passes
through :meth:`Router.place`:

1. resolve the account and the symbol (``MES1!`` -> ``MESZ6``);
2. validate the request itself (quantity, prices on the tick grid, a stop on the right side of
   the market, a bracket that makes sense) — each failure has a specific reason;
3. run every registered :class:`PreTradeCheck` (the risk engine plugs in here);
4. journal the request and the decision, then send with the request's client order id;
5. if the send fails without an answer, ask the broker whether that client order id exists
   before trying again — a lost acknowledgement never becomes a second order.

The router is the one owner of retry: adapters never resend. A failure that certainly never
left (``BrokerError.sent is False``) may be sent again at once; any other failure is looked up
first; a rate limit is never answered with another request for the same order; and where the
broker cannot look orders up by client order id (``Capabilities.client_order_id_lookup``
False: Schwab), a miss is not proof, so nothing is re-sent.

It reads each broker's :class:`~tterm.core.broker.Capabilities`: an asset class, an order type,
multi-leg orders or brackets the broker lacks are refused with a plain reason, or, for brackets
and OCO/OTOCO groups when the engine can emulate them, sent as plain orders the engine links.
Multi-leg orders are checked as one order: every leg resolved, on one underlying and one account,
with a net price on the strategy's grid and its debit or credit stated.

A refused order is returned as an Order with status REJECTED and the reason; nothing is sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from tterm.core.broker import Broker, BrokerError, NotSupported, RateLimited
from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.models import (
    Account,
    AccountLock,
    AssetClass,
    GroupKind,
    Instrument,
    ModelError,
    Order,
    OrderGroup,
    OrderLeg,
    OrderRequest,
    OrderSource,
    OrderStatus,
    OrderType,
    Position,
    PriceEffect,
    Quote,
    RiskAction,
    RiskDecision,
    Side,
    TickRounding,
)
from tterm.core.redact import scrub_shown
from tterm.core.strategy import combo_quote

if TYPE_CHECKING:
    from tterm.core.journal import Journal

log = logging.getLogger(__name__)

#: Sources whose off-tick prices are rounded to the tick (machines compute prices); prices typed
#: by a person are rejected with the nearest valid prices instead, so nobody trades a price they
#: did not see.
ROUNDING_SOURCES = frozenset({OrderSource.WEBHOOK, OrderSource.RISK})


class ValidationError(ModelError):
    """An order request that is malformed in itself."""


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What a pre-trade check may look at. Built fresh for each request; checks must be pure."""

    request: OrderRequest
    account: Account
    instrument: Instrument
    quote: Quote | None
    position: Position
    positions: tuple[Position, ...]
    open_orders: tuple[Order, ...]
    lock: AccountLock | None
    now: object
    #: A multi-leg order's legs with their instruments (``instrument`` is then the strategy's).
    legs: tuple[tuple[OrderLeg, Instrument], ...] = ()


class PreTradeCheck(Protocol):
    """A rule every order must pass. Return None to pass, or a RiskDecision (WARN or REJECT)."""

    name: str

    def check(self, ctx: CheckContext) -> RiskDecision | None: ...


class LockCheck:
    """A locked account takes only orders that reduce a position (exits, flatten)."""

    name = "lock"

    def check(self, ctx: CheckContext) -> RiskDecision | None:
        lock = ctx.lock
        if lock is None or not lock.locked or ctx.request.reduce_only:
            return None
        until = f" until {lock.until:%Y-%m-%d %H:%M %Z}" if lock.until else ""
        why = f": {lock.reason}" if lock.reason else ""
        return RiskDecision(
            client_order_id=ctx.request.client_order_id,
            account=ctx.request.account,
            action=RiskAction.REJECT,
            reasons=(f"account {ctx.request.account} is locked{until}{why}; only exits are allowed",),
            check=self.name,
        )


class StateView(Protocol):
    """The engine state the router reads (the Engine provides it)."""

    def account(self, account_id: str) -> Account | None: ...
    def account_ids(self) -> list[str]: ...
    def quote(self, symbol: str) -> Quote | None: ...
    def position(self, account: str, symbol: str) -> Position: ...
    def positions(self, account: str) -> list[Position]: ...
    def open_orders(self, account: str | None = None) -> list[Order]: ...
    def lock_for(self, account: str) -> AccountLock | None: ...
    def max_order_qty(self, account: str) -> int | None: ...


class Router:
    """Routes order requests to brokers through validation and the pre-trade checks."""

    def __init__(
        self,
        *,
        brokers: Mapping[str, Broker],
        instruments: InstrumentMaster,
        state: StateView,
        journal: Journal,
        checks: Sequence[PreTradeCheck] = (),
        now: Callable[[], object] | None = None,
        send_timeout: float = 10.0,
        retries: int = 1,
        emulation: bool = False,
    ) -> None:
        self._brokers = brokers
        #: True when the engine links brackets and OCO/OTOCO groups itself for brokers that lack them.
        self.emulation = emulation
        self._instruments = instruments
        self._state = state
        self._journal = journal
        self.checks: list[PreTradeCheck] = list(checks)
        self._now = now or (lambda: None)
        self._send_timeout = send_timeout
        self._retries = retries
        # client order id -> the order it produced; the same id never goes out twice.
        self._sent: dict[str, Order] = {}
        self._inflight: dict[str, asyncio.Future[Order]] = {}

    def add_check(self, check: PreTradeCheck) -> None:
        self.checks.append(check)

    # ------------------------------------------------------------------ preview and place

    def prepare(self, request: OrderRequest) -> tuple[OrderRequest, RiskDecision]:
        """Resolve, validate and check ``request`` without sending; returns the normalised
        request (contract symbol, prices on the tick) and the decision."""
        legs: tuple[tuple[OrderLeg, Instrument], ...] = ()
        try:
            account = self._account(request.account)
            if request.legs:
                legs = self._resolve_legs(request)
                instrument = self._instruments.strategy(legs, request.symbol if request.symbol.strip() else "")
                request = request.with_changes(symbol=instrument.symbol, legs=tuple(leg for leg, _ in legs))
            else:
                instrument = self._instrument(request.symbol)
            request = self._normalise(request, instrument)
            quote = self._state.quote(request.symbol)
            if legs and quote is None:  # a spread has no quote of its own: its legs' natural market
                quote = combo_quote(request.symbol, [(leg, self._state.quote(inst.symbol)) for leg, inst in legs])
            position = self._state.position(request.account, request.symbol)
            self._validate(request, account, instrument, quote, position)
            if legs:
                self._validate_legs(request, account, legs)
            # The broker's own refusals too, so a preview passes only what the send would.
            broker = self._brokers.get(account.broker)
            refusal = broker.preflight(request) if broker is not None else ""
            if refusal:
                raise ValidationError(refusal)
        except (ValidationError, UnknownSymbol, ModelError) as exc:
            return request, RiskDecision(
                client_order_id=request.client_order_id,
                account=request.account,
                action=RiskAction.REJECT,
                reasons=(str(exc),),
                check="validation",
            )
        ctx = CheckContext(
            request=request,
            account=account,
            instrument=instrument,
            quote=quote,
            position=position,
            positions=tuple(self._state.positions(request.account)),
            open_orders=tuple(self._state.open_orders(request.account)),
            lock=self._state.lock_for(request.account),
            now=self._now(),
            legs=legs,
        )
        return request, self._run_checks(ctx)

    def prepare_group(self, group: OrderGroup) -> tuple[OrderGroup, RiskDecision]:
        """Validate a group's shape and every order in it; one REJECT refuses the whole group.

        An OTOCO's exits are checked as orders that will close the trigger's position (their
        prices and sides), not against today's position, which they do not reduce yet.
        """
        first = group.orders[0] if group.orders else None
        coid = first.client_order_id if first else group.group_id

        def refuse(reason: str, check: str = "validation") -> tuple[OrderGroup, RiskDecision]:
            return group, RiskDecision(
                client_order_id=coid,
                account=group.account,
                action=RiskAction.REJECT,
                reasons=(reason,),
                check=check,
            )

        try:
            self._validate_group_shape(group)
        except ValidationError as exc:
            return refuse(str(exc))
        prepared: list[OrderRequest] = []
        warnings: list[str] = []
        for i, order in enumerate(group.orders):
            exit_leg = group.kind is GroupKind.OTOCO and i > 0
            if exit_leg:
                req, decision = self._prepare_exit(order, group.orders[0])
            else:
                req, decision = self.prepare(order)
            if not decision.allowed:
                label = "trigger" if group.kind is GroupKind.OTOCO and i == 0 else f"order {i + 1}"
                return refuse(f"{label} ({order.describe()}): {decision.reason}", decision.check)
            warnings.extend(decision.reasons)
            prepared.append(req)
        broker = self._brokers.get(self._account(group.account).broker)
        if broker is not None:
            caps = broker.capabilities
            native = caps.oco if group.kind is GroupKind.OCO else caps.otoco
            if not native and not self.emulation:
                what = "OCO" if group.kind is GroupKind.OCO else "OTOCO"
                return refuse(f"broker {broker.name} does not take {what} orders")
        return OrderGroup(kind=group.kind, orders=tuple(prepared), group_id=group.group_id), RiskDecision(
            client_order_id=coid,
            account=group.account,
            action=RiskAction.WARN if warnings else RiskAction.ALLOW,
            reasons=tuple(warnings),
            check="all",
        )

    def _validate_group_shape(self, group: OrderGroup) -> None:
        orders = group.orders
        what = group.kind.value.upper()
        expected = 2 if group.kind is GroupKind.OCO else 3
        if len(orders) != expected:
            shape = "two orders" if group.kind is GroupKind.OCO else "a trigger and two exits"
            raise ValidationError(f"an {what} group takes {shape}, got {len(orders)} orders")
        accounts = {o.account for o in orders}
        if len(accounts) > 1:
            raise ValidationError(
                f"every order of an {what} group must be in one account, got {', '.join(sorted(accounts))}"
            )
        coids = [o.client_order_id for o in orders]
        if len(set(coids)) != len(coids):
            raise ValidationError(f"the orders of an {what} group need distinct client order ids")
        for o in orders:
            if o.bracket is not None:
                raise ValidationError(f"an order inside an {what} group cannot carry its own bracket")
            if o.legs:
                raise ValidationError(f"multi-leg orders cannot be part of an {what} group")
        if group.kind is GroupKind.OTOCO:
            trigger, *exits = orders
            trigger_sym = self._instrument(trigger.symbol).symbol
            for o in exits:
                if self._instrument(o.symbol).symbol != trigger_sym:
                    raise ValidationError(f"OTOCO exits must be in the trigger's symbol {trigger_sym}, got {o.symbol}")
                if o.side is trigger.side:
                    raise ValidationError(
                        f"OTOCO exits must be on the other side of the trigger ({trigger.side.value})"
                    )
                if o.quantity != trigger.quantity:
                    raise ValidationError(
                        f"OTOCO exit quantity {o.quantity} differs from the trigger's {trigger.quantity}"
                    )
            if trigger.reduce_only:
                raise ValidationError("an OTOCO trigger opens a position; it cannot be reduce-only")

    def _prepare_exit(self, exit_req: OrderRequest, trigger: OrderRequest) -> tuple[OrderRequest, RiskDecision]:
        """An OTOCO exit: validated as an order closing the trigger's fill (reduce-only once it works)."""
        try:
            account = self._account(exit_req.account)
            instrument = self._instrument(exit_req.symbol)
            req = self._normalise(exit_req.with_changes(reduce_only=False), instrument)
            quote = self._state.quote(req.symbol)
            projected = Position(account=req.account, symbol=req.symbol, quantity=trigger.signed_quantity)
            self._validate(req, account, instrument, quote, projected)
        except (ValidationError, UnknownSymbol, ModelError) as exc:
            return exit_req, RiskDecision(
                client_order_id=exit_req.client_order_id,
                account=exit_req.account,
                action=RiskAction.REJECT,
                reasons=(str(exc),),
                check="validation",
            )
        return req.with_changes(reduce_only=True), RiskDecision(
            client_order_id=exit_req.client_order_id, account=exit_req.account, action=RiskAction.ALLOW, check="all"
        )

    async def place(self, request: OrderRequest) -> Order:
        """Send ``request`` if it passes; the result is the broker's order or a local reject."""
        prior = self._sent.get(request.client_order_id)
        if prior is not None:
            return prior
        inflight = self._inflight.get(request.client_order_id)
        if inflight is not None:
            return await asyncio.shield(inflight)
        fut: asyncio.Future[Order] = asyncio.get_running_loop().create_future()
        self._inflight[request.client_order_id] = fut
        try:
            order = await self._place(request)
            fut.set_result(order)
            return order
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # mark retrieved; the caller gets the exception
            raise
        finally:
            del self._inflight[request.client_order_id]

    async def _place(self, request: OrderRequest) -> Order:
        self._journal.record("order_request", request, account=request.account, ref=request.client_order_id)
        request, decision = self.prepare(request)
        self._journal.record("risk_decision", decision, account=request.account, ref=request.client_order_id)
        if not decision.allowed:
            order = self.local_reject(request, decision.reason)
            self._sent[request.client_order_id] = order
            return order
        broker = self._broker_for(request.account)
        await self._journal.durable()  # write-ahead: the request is on disk before the broker hears of it
        order = await self._send(broker, request)
        if order.reject_reason:
            # A vendor reject may echo what it was sent (a password, a token): never shown raw.
            reason = scrub_shown(order.reject_reason)
            order = order if reason == order.reject_reason else replace(order, reject_reason=reason)
        self._sent[request.client_order_id] = order
        kind = "order_reject" if order.status is OrderStatus.REJECTED else "order_ack"
        self._journal.record(kind, order, account=order.account, ref=order.client_order_id)
        return order

    async def _send(self, broker: Broker, request: OrderRequest) -> Order:
        """Send once; on a failure, retry only what is known not to have arrived (see the module)."""
        attempt = 0
        caps = broker.capabilities
        while True:
            try:
                # asyncio.timeout, not wait_for: wait_for runs the call as a task of its own, two
                # more event-loop passes between the write-ahead commit and the broker (bench_hub).
                async with asyncio.timeout(self._send_timeout):
                    return await broker.place(request)
            except NotSupported as exc:
                return self.local_reject(request, str(exc))
            except (BrokerError, TimeoutError, OSError) as exc:
                what = "timed out" if isinstance(exc, TimeoutError) else f"failed: {exc}"
                self._journal.record(
                    "error",
                    {"action": "place", "attempt": attempt + 1, "error": f"send {what}"},
                    account=request.account,
                    ref=request.client_order_id,
                )
                attempt += 1
                if isinstance(exc, BrokerError) and exc.sent is False and not isinstance(exc, RateLimited):
                    # It never left: sending it again cannot make a second order.
                    if attempt > self._retries:
                        return self.local_reject(request, f"broker {broker.name} {what}; not sent")
                    continue
                existing, lookup_error = await self._look_up(broker, request)
                if existing is not None:
                    return existing
                if lookup_error is not None:
                    # We cannot tell whether the order exists: never send it again blind.
                    return self.local_reject(
                        request,
                        f"broker {broker.name} did not answer ({what}) and the order could not be "
                        f"looked up ({lookup_error}); check the broker before re-sending",
                    )
                if not caps.client_order_id_lookup:
                    return self.local_reject(
                        request,
                        f"broker {broker.name} did not confirm the order ({what}) and cannot look orders up by "
                        f"tterm's id; not re-sent: check the broker's order list before sending it again",
                    )
                if isinstance(exc, RateLimited):
                    wait = f"; the broker asks to wait {exc.retry_after:.0f} s" if exc.retry_after else ""
                    return self.local_reject(
                        request, f"broker {broker.name} rate-limited the order ({exc}){wait}; not sent"
                    )
                if attempt > self._retries:
                    return self.local_reject(request, f"broker {broker.name} {what}; not sent")

    async def _look_up(self, broker: Broker, request: OrderRequest) -> tuple[Order | None, Exception | None]:
        try:
            found = await asyncio.wait_for(
                broker.find_order(request.account, request.client_order_id), self._send_timeout
            )
        except (BrokerError, TimeoutError, OSError) as exc:
            return None, exc
        return found, None

    async def send_group(self, group: OrderGroup) -> list[Order]:
        """Send a prepared group natively; a failure without an answer is looked up order by order."""
        broker = self._broker_for(group.account)
        await self._journal.durable()
        try:
            orders = await asyncio.wait_for(broker.place_group(group), self._send_timeout)
        except NotSupported as exc:
            orders = [self.local_reject(o, str(exc)) for o in group.orders]
        except (BrokerError, TimeoutError, OSError) as exc:
            what = "timed out" if isinstance(exc, TimeoutError) else f"failed: {exc}"
            self._journal.record(
                "error", {"action": "place_group", "error": f"send {what}"}, account=group.account, ref=group.group_id
            )
            orders = []
            for o in group.orders:
                found, lookup_error = await self._look_up(broker, o)
                if found is not None:
                    orders.append(found)
                else:
                    why = f"; the lookup failed too ({lookup_error})" if lookup_error else ""
                    orders.append(
                        self.local_reject(
                            o, f"broker {broker.name} {what}; the group was not confirmed{why}; not re-sent"
                        )
                    )
        for order in orders:
            self._sent[order.client_order_id] = order
            kind = "order_reject" if order.status is OrderStatus.REJECTED else "order_ack"
            self._journal.record(kind, order, account=order.account, ref=order.client_order_id)
        return orders

    # ------------------------------------------------------------------ helpers

    def local_reject(self, request: OrderRequest, reason: str) -> Order:
        """An Order standing for a request refused before it reached a broker."""
        return Order.from_request(
            request, order_id=f"local-{request.client_order_id}", status=OrderStatus.REJECTED, reject_reason=reason
        )

    def _account(self, account_id: str) -> Account:
        account = self._state.account(account_id)
        if account is None:
            known = ", ".join(self._state.account_ids()) or "none"
            raise ValidationError(f"unknown account {account_id!r} (accounts: {known})")
        return account

    def _broker_for(self, account_id: str) -> Broker:
        account = self._account(account_id)
        try:
            return self._brokers[account.broker]
        except KeyError:
            raise ValidationError(
                f"account {account_id} belongs to broker {account.broker!r}, which is not running"
            ) from None

    def _instrument(self, symbol: str) -> Instrument:
        if not symbol or not symbol.strip():
            raise ValidationError("no symbol given")
        return self._instruments.resolve(symbol)

    def _normalise(self, request: OrderRequest, inst: Instrument) -> OrderRequest:
        """Contract symbol, and prices on the tick grid (rounded for machines, else rejected)."""
        mode: TickRounding = "nearest" if request.source in ROUNDING_SOURCES else "reject"
        changes: dict[str, Any] = {}
        if request.symbol != inst.symbol:
            changes["symbol"] = inst.symbol
        for name in ("limit_price", "stop_price"):
            price = getattr(request, name)
            if price is None:
                continue
            if price <= 0 and inst.asset_class is not AssetClass.FUTURE:
                raise ValidationError(f"{name.replace('_', ' ')} must be positive, got {price}")
            rounded = inst.round_price(price, mode)
            if rounded.as_tuple() != price.as_tuple():  # 6790 -> 6790.00: the tick's own format
                changes[name] = rounded
        if request.bracket is not None:
            b = request.bracket
            bchanges: dict[str, Any] = {}
            for name in ("take_profit_price", "stop_loss_price"):
                price = getattr(b, name)
                if price is not None:
                    rounded = inst.round_price(price, mode)
                    if rounded.as_tuple() != price.as_tuple():
                        bchanges[name] = rounded
            if bchanges:
                changes["bracket"] = replace(b, **bchanges)
        return request.with_changes(**changes) if changes else request

    def _validate(
        self, r: OrderRequest, account: Account, inst: Instrument, quote: Quote | None, position: Position
    ) -> None:
        if not isinstance(r.quantity, int) or isinstance(r.quantity, bool):
            raise ValidationError(f"quantity must be a whole number, got {r.quantity!r}")
        if r.quantity <= 0:
            raise ValidationError(f"quantity must be at least 1, got {r.quantity}")
        cap = self._state.max_order_qty(r.account)
        if cap is not None and r.quantity > cap:
            raise ValidationError(f"quantity {r.quantity} is above this account's maximum order size of {cap}")
        if r.order_type.needs_limit and r.limit_price is None:
            raise ValidationError(f"a {r.order_type.value.replace('_', '-')} order needs a limit price")
        if r.order_type.needs_stop and r.stop_price is None:
            raise ValidationError(f"a {r.order_type.value.replace('_', '-')} order needs a stop price")
        if not r.order_type.needs_limit and r.limit_price is not None:
            raise ValidationError(f"a {r.order_type.value} order takes no limit price")
        if not r.order_type.needs_stop and r.stop_price is not None:
            raise ValidationError(f"a {r.order_type.value} order takes no stop price")
        if r.order_type.needs_trail:
            if r.trail_amount is None or r.trail_amount <= 0:
                raise ValidationError("a trailing stop needs a positive trailing distance")
            if not inst.is_on_tick(r.trail_amount):
                raise ValidationError(
                    f"trailing distance {r.trail_amount} is not a whole number of ticks ({inst.tick_size})"
                )
            if r.bracket is not None:
                raise ValidationError("a trailing stop cannot carry a bracket")
        elif r.trail_amount is not None:
            raise ValidationError(f"a {r.order_type.value} order takes no trailing distance")
        if r.price_effect is not None and not r.legs:
            raise ValidationError("debit/credit applies to multi-leg orders only")
        broker = self._brokers.get(account.broker)
        if broker is not None:
            caps = broker.capabilities
            allowed = {
                AssetClass.FUTURE: caps.futures,
                AssetClass.EQUITY: caps.equities,
                AssetClass.OPTION: caps.options,
            }
            if not allowed[inst.asset_class]:
                raise ValidationError(f"broker {broker.name} does not trade {inst.asset_class.value}s")
            if r.legs and not caps.multi_leg:
                raise ValidationError(f"broker {broker.name} does not take multi-leg orders")
            if r.order_type not in caps.order_types:
                raise ValidationError(
                    f"broker {broker.name} does not take {r.order_type.value.replace('_', '-')} orders"
                )
            if r.bracket is not None and not caps.brackets and not self.emulation:
                raise ValidationError(f"broker {broker.name} does not take bracket orders")
        if r.reduce_only and not r.legs:
            held = position.quantity
            if held == 0 or (held > 0) == (r.side is Side.BUY) or r.quantity > abs(held):
                raise ValidationError(
                    f"reduce-only {r.side.value} {r.quantity} would not reduce the position ({held:+d} {r.symbol})"
                )
        if r.order_type.needs_stop and quote is not None:
            assert r.stop_price is not None
            if r.side is Side.BUY:
                ref = quote.ask if quote.ask is not None else quote.last
                if ref is not None and r.stop_price <= ref:
                    raise ValidationError(
                        f"buy stop {r.stop_price} is at or below the market ({ref}); a buy stop must be "
                        f"above it (use a limit order to buy lower)"
                    )
            else:
                ref = quote.bid if quote.bid is not None else quote.last
                if ref is not None and r.stop_price >= ref:
                    raise ValidationError(
                        f"sell stop {r.stop_price} is at or above the market ({ref}); a sell stop must be "
                        f"below it (use a limit order to sell higher)"
                    )
        if r.bracket is not None:
            if r.reduce_only:
                raise ValidationError("a reduce-only order cannot carry a bracket")
            entry = self._entry_reference(r, quote)
            if entry is not None:
                tp, sl = r.bracket.resolve(entry, r.side, inst)
                s = r.side.sign
                if tp is not None and (tp - entry) * s <= 0:
                    raise ValidationError(
                        f"take-profit {tp} is on the wrong side of the entry ({entry}) for a {r.side.value}"
                    )
                if sl is not None and (entry - sl) * s <= 0:
                    raise ValidationError(
                        f"stop-loss {sl} is on the wrong side of the entry ({entry}) for a {r.side.value}"
                    )

    def _resolve_legs(self, r: OrderRequest) -> tuple[tuple[OrderLeg, Instrument], ...]:
        out = []
        seen: set[str] = set()
        for i, leg in enumerate(r.legs, 1):
            if not isinstance(leg.ratio, int) or isinstance(leg.ratio, bool) or leg.ratio <= 0:
                raise ValidationError(
                    f"leg {i} ({leg.symbol}): ratio must be a whole number of at least 1, got {leg.ratio}"
                )
            if leg.account and leg.account != r.account:
                raise ValidationError(
                    f"leg {i} ({leg.symbol}) is in account {leg.account}, the order in {r.account}: "
                    f"a multi-leg order trades one account"
                )
            inst = self._instrument(leg.symbol)
            if inst.symbol in seen:
                raise ValidationError(f"leg {i}: {inst.symbol} appears twice; give it one leg with its ratio")
            seen.add(inst.symbol)
            resolved = (
                leg
                if leg.symbol == inst.symbol
                else OrderLeg(
                    symbol=inst.symbol, side=leg.side, ratio=leg.ratio, effect=leg.effect, account=leg.account
                )
            )
            out.append((resolved, inst))
        return tuple(out)

    def _validate_legs(self, r: OrderRequest, account: Account, legs: tuple[tuple[OrderLeg, Instrument], ...]) -> None:
        """What makes a multi-leg order one order: live series, a stated debit or credit."""
        today = self._instruments.today()
        for _, inst in legs:
            if inst.expiry is not None and inst.expiry < today:
                raise ValidationError(f"leg {inst.symbol} is on a series that expired on {inst.expiry:%Y-%m-%d}")
        if r.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
            if r.price_effect is None:
                raise ValidationError("a multi-leg limit order needs its net price marked debit or credit")
            if r.limit_price is not None and r.limit_price <= 0:
                raise ValidationError(
                    f"net price {r.limit_price} must be positive; say credit instead of a negative debit"
                )
            want = Side.BUY if r.price_effect is PriceEffect.DEBIT else Side.SELL
            if r.side is not want:
                raise ValidationError(
                    f"a net {r.price_effect.value} order is a {want.value} of the strategy, not a {r.side.value}"
                )
        elif r.order_type not in (OrderType.MARKET,):
            raise ValidationError(
                f"multi-leg orders take market or limit prices, not {r.order_type.value.replace('_', '-')}"
            )
        if r.bracket is not None:
            raise ValidationError("a multi-leg order cannot carry a bracket")
        if r.reduce_only and any(leg.effect.value == "open" for leg, _ in legs):
            raise ValidationError("a reduce-only multi-leg order cannot have legs that open positions")

    @staticmethod
    def _entry_reference(r: OrderRequest, quote: Quote | None) -> Decimal | None:
        if r.order_type is OrderType.LIMIT or r.order_type is OrderType.STOP_LIMIT:
            return r.limit_price
        if r.order_type is OrderType.STOP:
            return r.stop_price
        if quote is None:
            return None
        return quote.ask if r.side is Side.BUY else quote.bid

    def _run_checks(self, ctx: CheckContext) -> RiskDecision:
        warnings: list[str] = []
        worst = None
        for check in self.checks:
            try:
                decision = check.check(ctx)
            except Exception as exc:  # a broken rule must block, never wave an order through
                log.exception("pre-trade check %s failed", getattr(check, "name", check))
                return RiskDecision(
                    client_order_id=ctx.request.client_order_id,
                    account=ctx.request.account,
                    action=RiskAction.REJECT,
                    reasons=(f"risk check {getattr(check, 'name', '?')} failed: {exc}",),
                    check=getattr(check, "name", "?"),
                )
            if decision is None:
                continue
            if decision.worst_case is not None:
                worst = decision.worst_case
            if decision.action is RiskAction.REJECT:
                return decision
            warnings.extend(decision.reasons)
        return RiskDecision(
            client_order_id=ctx.request.client_order_id,
            account=ctx.request.account,
            action=RiskAction.WARN if warnings else RiskAction.ALLOW,
            reasons=tuple(warnings),
            check="all",
            worst_case=worst,
        )

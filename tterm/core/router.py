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

A refused order is returned as an Order with status REJECTED and the reason; nothing is sent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from tterm.core.broker import Broker, BrokerError
from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.models import (
    Account,
    AccountLock,
    AssetClass,
    Instrument,
    ModelError,
    Order,
    OrderRequest,
    OrderSource,
    OrderStatus,
    OrderType,
    Position,
    Quote,
    RiskAction,
    RiskDecision,
    Side,
)

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
    ) -> None:
        self._brokers = brokers
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
        try:
            account = self._account(request.account)
            instrument = self._instrument(request.symbol)
            request = self._normalise(request, instrument)
            quote = self._state.quote(request.symbol)
            position = self._state.position(request.account, request.symbol)
            self._validate(request, account, instrument, quote, position)
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
        )
        return request, self._run_checks(ctx)

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
        self._sent[request.client_order_id] = order
        kind = "order_reject" if order.status is OrderStatus.REJECTED else "order_ack"
        self._journal.record(kind, order, account=order.account, ref=order.client_order_id)
        return order

    async def _send(self, broker: Broker, request: OrderRequest) -> Order:
        """Send once; on a failure with no answer, look the order up before any retry."""
        attempt = 0
        while True:
            try:
                return await asyncio.wait_for(broker.place(request), self._send_timeout)
            except (BrokerError, TimeoutError, OSError) as exc:
                what = "timed out" if isinstance(exc, TimeoutError) else f"failed: {exc}"
                self._journal.record(
                    "error",
                    {"action": "place", "attempt": attempt + 1, "error": f"send {what}"},
                    account=request.account,
                    ref=request.client_order_id,
                )
                try:
                    existing = await asyncio.wait_for(
                        broker.find_order(request.account, request.client_order_id), self._send_timeout
                    )
                except (BrokerError, TimeoutError, OSError) as lookup_exc:
                    # We cannot tell whether the order exists: never send it again blind.
                    return self.local_reject(
                        request,
                        f"broker {broker.name} did not answer ({what}) and the order could not be "
                        f"looked up ({lookup_exc}); check the broker before re-sending",
                    )
                if existing is not None:
                    return existing
                attempt += 1
                if attempt > self._retries:
                    return self.local_reject(request, f"broker {broker.name} {what}; not sent")

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
        mode = "nearest" if request.source in ROUNDING_SOURCES else "reject"
        changes: dict[str, object] = {}
        if request.symbol != inst.symbol:
            changes["symbol"] = inst.symbol
        for name in ("limit_price", "stop_price"):
            price = getattr(request, name)
            if price is None:
                continue
            if price <= 0 and inst.asset_class is not AssetClass.FUTURE:
                raise ValidationError(f"{name.replace('_', ' ')} must be positive, got {price}")
            rounded = inst.round_price(price, mode)  # type: ignore[arg-type]
            if rounded.as_tuple() != price.as_tuple():  # 6790 -> 6790.00: the tick's own format
                changes[name] = rounded
        if request.bracket is not None:
            b = request.bracket
            bchanges: dict[str, object] = {}
            for name in ("take_profit_price", "stop_loss_price"):
                price = getattr(b, name)
                if price is not None:
                    rounded = inst.round_price(price, mode)  # type: ignore[arg-type]
                    if rounded.as_tuple() != price.as_tuple():
                        bchanges[name] = rounded
            if bchanges:
                changes["bracket"] = replace(b, **bchanges)  # type: ignore[arg-type]
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
        for leg in r.legs:
            if leg.ratio <= 0:
                raise ValidationError(f"leg {leg.symbol}: ratio must be at least 1, got {leg.ratio}")
            self._instruments.resolve(leg.symbol)
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
        if r.reduce_only:
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

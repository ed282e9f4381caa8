"""The Tastytrade broker's order verbs: place, dry run (the port's preview), groups, replace, cancel.

A room of :class:`~tterm.brokers.tastytrade.broker.TastytradeBroker`. Every order carries tterm's
client order id as its ``external-identifier`` (B3: the vendor has no idempotency key and does
not deduplicate), so an order whose answer was lost is found in ``/orders/live`` by it, and the
router never sends it twice. A refusal (400/422 with the vendor's reason) comes back as a
REJECTED order; an order accepted and then rejected arrives on the account streamer with its
``reject-reason``.

- Legs: each leg's action says whether it opens or closes (B6): the leg's own position effect,
  else what the account holds (a buy against a short closes it); a reduce-only order closes.
  Futures legs are ``Buy`` / ``Sell``.
- Groups: OCO and OTOCO go to ``/complex-orders`` in one request (B6).
- Replace (PUT) sends the new order without legs (TT-SDK omits them: a replace cannot change
  them, so the quantity cannot change either); Tastytrade answers with the new order, and the
  old one ends on the streamer. Orders inside a complex order are cancelled as the whole group.
- ``preview_order`` is the dry run (``/orders/dry-run``, 201): buying-power effect, fees and
  the errors and warnings the real send would meet; nothing is placed.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from tterm.brokers.tastytrade import mapping as m
from tterm.brokers.tastytrade.rest import NotFound, Refusal
from tterm.brokers.tastytrade.schemas import OrderRecord, PlacedOrder
from tterm.core.broker import BrokerError, UnknownOrder
from tterm.core.instruments import UnknownSymbol
from tterm.core.models import (
    GroupKind,
    Instrument,
    ModelError,
    Notice,
    Order,
    OrderGroup,
    OrderPreview,
    OrderRequest,
    OrderStatus,
    PositionEffect,
    PriceEffect,
)

if TYPE_CHECKING:
    from tterm.brokers.tastytrade.broker import TastytradeBroker

log = logging.getLogger(__name__)
JSON = dict[str, Any]


class TastytradeTrading:
    """Order verbs over the broker's REST and account state."""

    def __init__(self, broker: TastytradeBroker) -> None:
        self.b = broker

    @property
    def name(self) -> str:
        return self.b.name

    def _not_ready(self) -> str:
        if self.b.gone is not None:
            return self.b.gone
        if not self.b.live:
            return f"Tastytrade ({self.name}) is not connected yet; nothing was sent"
        return ""

    # ------------------------------------------------------------------ bodies

    def _instrument(self, symbol: str) -> Instrument:
        try:
            return self.b.master.resolve(symbol)
        except (UnknownSymbol, ModelError) as exc:
            raise m.Refused(str(exc)) from None

    def legs(self, request: OrderRequest) -> list[JSON]:
        """The legs of ``request`` with their vendor symbols, actions and quantities (B6)."""
        sync = self.b.sync
        if request.legs:
            pairs = [(leg.symbol, leg.side, request.quantity * leg.ratio, leg.effect) for leg in request.legs]
            if any(leg.account and leg.account != request.account for leg in request.legs):
                raise m.Refused("every leg must be in the order's account")
        else:
            pairs = [(request.symbol, request.side, request.quantity, PositionEffect.AUTO)]
        out = []
        kinds = set()
        for symbol, side, qty, effect in pairs:
            inst = self._instrument(symbol)
            tasty = self.b.provider.tasty(inst)
            kinds.add(tasty.kind)
            held = sync.held(request.account, inst.symbol)
            opens = m.opening(effect, side, qty, held, reduce_only=request.reduce_only)
            out.append({"instrument-type": tasty.kind, "symbol": tasty.symbol, "quantity": qty,
                        "action": m.action(tasty.kind, side, opens)})  # fmt: skip
        if m.EQUITY in kinds and len(out) > 1:
            raise m.Refused("Tastytrade takes equity orders with one leg only")
        return out

    def body(self, request: OrderRequest, *, include_legs: bool = True) -> JSON:
        if request.bracket is not None:
            raise m.Refused("Tastytrade brackets are sent as an OTOCO group (tterm links them)")
        legs = self.legs(request) if include_legs else []
        return m.order_body(request, legs, source=self.b.settings.user_agent, include_legs=include_legs)

    # ------------------------------------------------------------------ verbs

    async def preview_order(self, request: OrderRequest) -> OrderPreview:
        """The dry run: what Tastytrade would say to this order, nothing placed."""
        if why := self._not_ready():
            raise BrokerError(why, sent=False)
        try:
            number = self.b.sync.vendor(request.account)
            await self.b.sync.fresh_positions(request.account)
            body = self.body(request)
        except m.Refused as exc:
            raise BrokerError(str(exc), sent=False) from None
        try:
            placed = PlacedOrder.model_validate(await self.b.rest.dry_run(number, body))
        except Refusal as exc:
            return OrderPreview(broker=self.name, accepted=False, rejects=(exc.reason,))
        except ValidationError as exc:
            raise BrokerError(f"Tastytrade's dry run answer is unreadable ({exc.error_count()} problems)") from None
        return m.preview_of(placed, self.name)

    def _remember(self, request: OrderRequest) -> None:
        self.b.sync.known[request.client_order_id] = m.Known(
            request.client_order_id, symbol=request.symbol if request.legs else "", side=request.side,
            source=request.source,
        )  # fmt: skip

    async def place(self, request: OrderRequest) -> Order:
        if why := self._not_ready():
            return m.local_reject(request, why, self.name)
        try:
            number = self.b.sync.vendor(request.account)
            if not request.reduce_only or request.legs:
                await self.b.sync.fresh_positions(request.account)
            body = self.body(request)
        except m.Refused as exc:
            return m.local_reject(request, str(exc), self.name)
        except BrokerError as exc:
            if exc.sent is None:
                exc.sent = False
            raise
        if self.b.settings.preview_orders:
            try:
                verdict = m.preview_of(PlacedOrder.model_validate(await self.b.rest.dry_run(number, body)), self.name)
            except Refusal as exc:
                return m.vendor_reject(request, exc.reason, self.name)
            except ValidationError:
                verdict = None
            if verdict is not None and not verdict.accepted:
                return m.local_reject(
                    request, f"Tastytrade's dry run refuses it: {'; '.join(verdict.rejects)}", self.name
                )
        self._remember(request)
        try:
            data = await self.b.rest.place(number, body)
        except Refusal as exc:
            return m.vendor_reject(request, exc.reason, self.name)
        return await self._answer(request, data.get("order"))

    async def _answer(self, request: OrderRequest, data: Any) -> Order:
        """The order a place answered with; the streamer's newer state of it when that came first."""
        try:
            rec = OrderRecord.model_validate(data)
            mapped = self.b.sync.map_order(rec)
        except (ValidationError, ModelError) as exc:
            log.warning("%s: the answer to order %s is unreadable (%s)", self.name, request.client_order_id, exc)
            found = await self.b.find_order(request.account, request.client_order_id)
            if found is not None:
                return found
            return Order.from_request(
                request, order_id=f"pending-{request.client_order_id}", status=OrderStatus.PENDING, broker=self.name
            )
        held = self.b.sync.orders.get(mapped.order.order_id)
        if held is not None:
            return held.order
        return mapped.order

    async def place_group(self, group: OrderGroup) -> list[Order]:
        """OCO (two orders) or OTOCO (a trigger and an OCO pair) as one complex order."""
        orders = list(group.orders)
        if why := self._not_ready():
            return [m.local_reject(o, why, self.name) for o in orders]
        try:
            number = self.b.sync.vendor(group.account)
            await self.b.sync.fresh_positions(group.account)
            bodies = [self.body(o) for o in orders]
        except m.Refused as exc:
            return [m.local_reject(o, str(exc), self.name) for o in orders]
        source = self.b.settings.user_agent
        if group.kind is GroupKind.OCO:
            body: JSON = {"type": "OCO", "orders": bodies, "source": source}
        else:
            # The exits close what the trigger will open: their actions say so.
            exits = []
            for o, b in zip(orders[1:], bodies[1:], strict=True):
                b = dict(b)
                b["legs"] = self.legs(o.with_changes(reduce_only=True))
                exits.append(b)
            body = {"type": "OTOCO", "trigger-order": bodies[0], "orders": exits, "source": source}
        for o in orders:
            self._remember(o)
        try:
            data = await self.b.rest.place_complex(number, body)
        except Refusal as exc:
            return [m.vendor_reject(o, exc.reason, self.name) for o in orders]
        cx = data.get("complex-order") if isinstance(data, dict) else None
        members: list[Any] = []
        if isinstance(cx, dict):
            if cx.get("trigger-order"):
                members.append(cx["trigger-order"])
            members.extend(cx.get("orders") or [])
        out = []
        by_client = {}
        for rec in members:
            with_id = rec if isinstance(rec, dict) else {}
            by_client[str(with_id.get("external-identifier") or "")] = with_id
        for o in orders:
            out.append(await self._answer(o, by_client.get(o.client_order_id)))
        return out

    async def _known(self, account: str, order_id: str) -> m.Mapped:
        x = self.b.sync.orders.get(order_id)
        if x is None:
            try:
                number = self.b.sync.vendor(account)
                self.b.sync.submit("Order", await self.b.rest.order(number, order_id))
                await self.b.sync.settle()  # through the one door, in turn with the streamer's
            except (m.Refused, NotFound):
                raise UnknownOrder(f"Tastytrade has no order {order_id} in {account}", sent=False) from None
            x = self.b.sync.orders.get(order_id)
        if x is None or x.order.account != account:
            raise UnknownOrder(f"order {order_id} is not in account {account}", sent=False)
        return x

    async def modify(
        self,
        account: str,
        order_id: str,
        *,
        quantity: int | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> Order:
        """Replace a working order (PUT): a new order with a new id, the same client order id."""
        x = await self._known(account, order_id)
        order = x.order
        if why := self._not_ready():
            return order.evolve(reject_reason=why)
        if not order.is_open:
            return order.evolve(reject_reason=f"cannot modify: the order is already {order.status.value}")
        if quantity is not None and quantity != order.quantity:
            return order.evolve(
                reject_reason="Tastytrade cannot change an order's quantity (a replace keeps its legs); "
                "cancel it and place a new one"
            )
        if x.record is not None and x.record.complex_order_id is not None:
            return order.evolve(reject_reason="an order inside an OCO/OTOCO group cannot be changed on its own")
        inst = None if order.legs else self._instrument(order.symbol)
        for label, p in (("limit price", limit_price), ("stop price", stop_price)):
            if p is not None and inst is not None and not inst.is_on_tick(p):
                return order.evolve(reject_reason=f"{label} {p} is off {inst.symbol}'s tick grid")
        request = OrderRequest(
            account=account,
            symbol=order.symbol,
            side=order.side,
            quantity=order.quantity,
            order_type=order.order_type,
            limit_price=limit_price if limit_price is not None else order.limit_price,
            stop_price=stop_price if stop_price is not None else order.stop_price,
            tif=order.tif,
            client_order_id=order.client_order_id,
            source=order.source,
            price_effect=order.price_effect,
        )
        if x.record is not None and x.record.price_effect in ("Debit", "Credit"):
            request = request.with_changes(price_effect=PriceEffect(x.record.price_effect.lower()))
        try:
            body = self.body(request, include_legs=False)
        except m.Refused as exc:
            return order.evolve(reject_reason=str(exc))
        try:
            data = await self.b.rest.replace(self.b.sync.vendor(account), order_id, body)
        except Refusal as exc:
            reason = f"Tastytrade refused the change: {exc.reason}"
            self.b.emit(Notice(level="warning", text=f"order {order_id}: {reason}", account=account, source=self.name))
            return order.evolve(reject_reason=reason)
        return await self._answer(request, data)

    async def cancel(self, account: str, order_id: str) -> Order:
        """Cancel a working order (DELETE; an OCO/OTOCO member cancels its whole group)."""
        x = await self._known(account, order_id)
        order = x.order
        if not order.is_open:
            return order
        if why := self._not_ready():
            return order.evolve(reject_reason=why)
        number = self.b.sync.vendor(account)
        complex_id = x.record.complex_order_id if x.record is not None else None
        try:
            if complex_id is not None:
                await self.b.rest.cancel_complex(number, str(complex_id))
            else:
                await self.b.rest.cancel(number, order_id)
        except Refusal as exc:
            reason = f"Tastytrade refused the cancel: {exc.reason}"
            self.b.emit(Notice(level="warning", text=f"order {order_id}: {reason}", account=account, source=self.name))
            return order.evolve(reject_reason=reason)
        except NotFound:
            raise UnknownOrder(f"Tastytrade has no order {order_id} in {account}", sent=False) from None
        await self.b.sync.settle()
        now = self.b.sync.orders.get(order_id)
        return now.order if now is not None else order

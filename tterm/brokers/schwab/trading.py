"""The Schwab broker's order verbs: place (a bracket as a TRIGGER), groups, replace, cancel, preview.

A room of :class:`~tterm.brokers.schwab.broker.SchwabBroker` (which delegates to it). Orders are
sent once: a 400 comes back as a REJECTED order with Schwab's reason; an answer that was lost
raises (the rest layer's ``sent`` says whether it may have arrived) and the router looks the
order up with ``find_order``. The new order's id comes from the 201's ``Location`` header (its
path; A4); when that header is missing (SDEV: an order that filled at once) the order is found by
its fields. Schwab replaces an order by making a new one (PUT): the old one ends first, the new
one keeps the client order id.
"""

from __future__ import annotations

import contextlib
import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tterm.brokers.schwab import mapping as m
from tterm.brokers.schwab import mapping_orders as mo
from tterm.brokers.schwab import market as mk
from tterm.brokers.schwab.orders import Sent
from tterm.brokers.schwab.rest import NotFound, Refusal
from tterm.core.broker import BrokerError, UnknownOrder
from tterm.core.models import (
    GroupKind,
    Notice,
    Order,
    OrderGroup,
    OrderPreview,
    OrderRequest,
    OrderRole,
    OrderType,
)

if TYPE_CHECKING:
    from tterm.brokers.schwab.broker import SchwabBroker

log = logging.getLogger(__name__)


class SchwabTrading:
    """Order verbs over the broker's REST, order state and order builder."""

    def __init__(self, broker: SchwabBroker) -> None:
        self.b = broker

    @property
    def name(self) -> str:
        return self.b.name

    def _refused_login(self, request: OrderRequest) -> Order | None:
        if self.b._gone is not None:
            return m.local_reject(request, self.b._gone, self.name)
        if not self.b._live:
            return m.local_reject(request, f"Schwab ({self.name}) is not connected yet; nothing was sent", self.name)
        return None

    async def fresh_positions(self, account: str) -> None:
        """The account's positions now: the instructions (open or close) depend on them."""
        row = await self.b.rest.account(self.b.sync.vendor(account))
        self.b.sync.apply_accounts([row], emit=True)

    async def preview_order(self, request: OrderRequest) -> OrderPreview:
        """Schwab's previewOrder: what the order would cost and whether Schwab would take it."""
        if (refused := self._refused_login(request)) is not None:
            raise BrokerError(refused.reject_reason, sent=False)
        try:
            h = self.b.sync.vendor(request.account)
            await self.fresh_positions(request.account)
            body, _ = self.b.builder.body(request)
        except m.Refused as exc:
            raise BrokerError(str(exc), sent=False) from None
        try:
            return mk.preview_of(await self.b.rest.preview(h, body), self.name)
        except Refusal as exc:
            return OrderPreview(broker=self.name, accepted=False, rejects=(exc.reason,))

    async def place(self, request: OrderRequest) -> Order:
        """Send ``request`` (a bracket as a TRIGGER), once. Refusals come back as REJECTED orders."""
        if (refused := self._refused_login(request)) is not None:
            return refused
        try:
            h = self.b.sync.vendor(request.account)
            await self.fresh_positions(request.account)
            market_bracket = request.bracket is not None and request.order_type is OrderType.MARKET
            if market_bracket and self.b.last_quote(request.symbol) is None:
                # The exits are priced from the touch; without a quote the builder says so.
                with contextlib.suppress(BrokerError):
                    await self.b.quote_now(request.symbol)
            body, children = self.b.builder.body(request)
        except m.Refused as exc:
            return m.local_reject(request, str(exc), self.name)
        if self.b.settings.preview_orders:
            preview = mk.preview_of(await self.b.rest.preview(h, body), self.name)
            if not preview.accepted:
                return m.local_reject(request, f"Schwab's preview refuses it: {'; '.join(preview.rejects)}", self.name)
        known = mo.Known(
            request.client_order_id,
            symbol=request.symbol if request.legs else "",
            side=request.side,
            source=request.source,
        )
        root = await self._send(request, h, body)
        if isinstance(root, Order):
            return root
        self.b.sync.remember(root, known)
        row = await self._read_back(h, root)
        if row is not None and children:
            oco = row.get("childOrderStrategies") or []
            nodes = (
                oco[0].get("childOrderStrategies", [oco[0]])
                if oco and oco[0].get("orderStrategyType") == "OCO"
                else oco
            )
            for node, child in zip(nodes, children, strict=False):
                self.b.sync.remember(
                    str(node.get("orderId")),
                    mo.Known(child.client_order_id, side=request.side.opposite, source=request.source, role=child.role),
                )
        return await self._after_send(request, root, row)

    async def place_group(self, group: OrderGroup) -> list[Order]:
        """OCO as an OCO container; OTOCO as a TRIGGER holding an OCO pair (A7), in one request."""
        orders = list(group.orders)
        first = orders[0]
        if (refused := self._refused_login(first)) is not None:
            return [m.local_reject(o, refused.reject_reason, self.name) for o in orders]
        try:
            h = self.b.sync.vendor(group.account)
            await self.fresh_positions(group.account)
            body = self.b.builder.group(group)
        except m.Refused as exc:
            return [m.local_reject(o, str(exc), self.name) for o in orders]
        root = await self._send(first, h, body)
        if isinstance(root, Order):
            return [root] + [m.local_reject(o, root.reject_reason, self.name) for o in orders[1:]]
        row = await self._read_back(h, root)
        if group.kind is GroupKind.OCO:
            nodes = list((row or {}).get("childOrderStrategies") or [])
        else:
            self.b.sync.remember(root, mo.Known(first.client_order_id, side=first.side, source=first.source))
            inner = ((row or {}).get("childOrderStrategies") or [{}])[0]
            nodes = list(inner.get("childOrderStrategies") or [])
        pairs = zip(orders if group.kind is GroupKind.OCO else orders[1:], nodes, strict=False)
        for o, node in pairs:
            role = (
                None
                if group.kind is GroupKind.OCO
                else (OrderRole.TAKE_PROFIT if o.order_type is OrderType.LIMIT else OrderRole.STOP_LOSS)
            )
            self.b.sync.remember(
                str(node.get("orderId")), mo.Known(o.client_order_id, side=o.side, source=o.source, role=role)
            )
        if row is not None:
            await self.b.sync.absorb([row])
        out = []
        for o in orders:
            found = next(
                (x.order for x in self.b.sync.orders.values() if x.order.client_order_id == o.client_order_id), None
            )
            out.append(
                found
                or Order.from_request(
                    o, order_id=f"pending-{o.client_order_id}", status=m.OrderStatus.PENDING, broker=self.name
                )
            )
        return out

    async def _send(self, request: OrderRequest, account_hash: str, body: m.JSON) -> str | Order:
        """POST the body once; the new root order's id, or the REJECTED order Schwab refused."""
        limit, stop = request.limit_price, request.stop_price
        symbols = tuple(leg.symbol for leg in request.legs) or (self.b._master.resolve(request.symbol).symbol,)
        self.b.sync.placing[request.client_order_id] = Sent(
            request, self.b._clock.now(), symbols, request.quantity, limit, stop
        )
        self.b.sync.commanded()
        try:
            resp = await self.b.rest.place(account_hash, body)
        except Refusal as exc:
            self.b.sync.placing.pop(request.client_order_id, None)
            return m.vendor_reject(request, exc.reason, self.name)
        oid = m.order_id_from_location(resp.headers.get("location"))
        if oid is None:
            # SDEV: the Location header can be missing (an order that filled at once): find it by its fields.
            found = await self.b.find_order(request.account, request.client_order_id)
            if found is not None:
                return found.order_id
            raise BrokerError(
                "Schwab took the order (HTTP 201) without its id (no Location header), and it could "
                "not be matched yet; check the order list before sending it again",
                sent=True,
            )
        self.b.sync.placing.pop(request.client_order_id, None)
        return oid

    async def _read_back(self, account_hash: str, order_id: str) -> dict[str, Any] | None:
        try:
            return await self.b.rest.order(account_hash, order_id)
        except (BrokerError, OSError) as exc:
            log.info("%s: could not read order %s back (%s); the poll will", self.name, order_id, exc)
            return None

    async def _after_send(self, request: OrderRequest, root: str, row: dict[str, Any] | None) -> Order:
        if row is not None:
            await self.b.sync.absorb([row])
        found = self.b.sync.order(root)
        if found is not None:
            return found.order
        return Order.from_request(
            request, order_id=root, status=m.OrderStatus.PENDING, broker=self.name, symbol=request.symbol
        )

    async def _known(self, account: str, order_id: str) -> mo.Mapped:
        x = self.b.sync.order(order_id)
        if x is None:
            try:
                h = self.b.sync.vendor(account)
                row = await self.b.rest.order(h, order_id)
            except (m.Refused, NotFound):
                raise UnknownOrder(f"Schwab has no order {order_id} in {account}", sent=False) from None
            await self.b.sync.absorb([row])
            x = self.b.sync.order(order_id)
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
        """Replace a working order (A4: PUT; Schwab makes a new order with a new id and ends the old
        one). The new order keeps the client order id. A refusal returns the order unchanged with
        ``reject_reason`` set."""
        x = await self._known(account, order_id)
        order = x.order
        if self.b._gone is not None:
            return order.evolve(reject_reason=self.b._gone)
        if not order.is_open:
            return order.evolve(reject_reason=f"cannot modify: the order is already {order.status.value}")
        inst = self.b._instrument(order.symbol) if not order.legs else None
        for name, price in (("limit price", limit_price), ("stop price", stop_price)):
            if price is not None and inst is not None and not inst.is_on_tick(price):
                return order.evolve(reject_reason=f"{name} {price} is off {inst.symbol}'s tick grid")
        body = m.replace_body(x.node, quantity=quantity, limit=limit_price, stop=stop_price)
        h = self.b.sync.vendor(account)
        self.b.sync.commanded()
        try:
            resp = await self.b.rest.replace(h, order_id, body)
        except Refusal as exc:
            reason = f"Schwab refused the change: {exc.reason}"
            self.b.emit(Notice(level="warning", text=f"order {order_id}: {reason}", account=account, source=self.name))
            return order.evolve(reject_reason=reason)
        new_id = m.order_id_from_location(resp.headers.get("location"))
        known = self.b.sync.known.get(order_id) or mo.Known(order.client_order_id, side=order.side, source=order.source)
        # The old order ends first: its replacement carries the same client order id.
        ended = order.evolve(status=m.OrderStatus.CANCELLED)
        self.b.sync.orders[order_id] = mo.Mapped(order=ended, executions=x.executions, node=x.node)
        self.b.emit(ended)
        if new_id is None:
            self.b.sync.nudge()
            return ended
        self.b.sync.remember(new_id, known)
        row = await self._read_back(h, new_id)
        if row is not None:
            await self.b.sync.absorb([row])
        found = self.b.sync.order(new_id)
        if found is not None:
            return found.order
        return order.evolve(
            order_id=new_id,
            quantity=quantity or order.quantity,
            limit_price=limit_price or order.limit_price,
            stop_price=stop_price or order.stop_price,
        )

    async def cancel(self, account: str, order_id: str) -> Order:
        """Cancel a working order (A4: DELETE answers 200 with no body); read back to confirm."""
        x = await self._known(account, order_id)
        order = x.order
        if not order.is_open:
            return order
        if self.b._gone is not None:
            return order.evolve(reject_reason=self.b._gone)
        h = self.b.sync.vendor(account)
        self.b.sync.commanded()
        try:
            await self.b.rest.cancel(h, order_id)
        except Refusal as exc:
            reason = f"Schwab refused the cancel: {exc.reason}"
            self.b.emit(Notice(level="warning", text=f"order {order_id}: {reason}", account=account, source=self.name))
            return order.evolve(reject_reason=reason)
        row = await self._read_back(h, order_id)
        if row is not None:
            await self.b.sync.absorb([row])
        now = self.b.sync.order(order_id)
        return now.order if now is not None else order

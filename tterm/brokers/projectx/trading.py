"""The ProjectX broker's order verbs: place (with native brackets), modify, cancel, flatten, lookup.

A room of :class:`~tterm.brokers.projectx.broker.ProjectXBroker`, which delegates to it. Orders
are sent once, with tterm's client order id in ``customTag`` (unique per account, so a second
send of the same order is refused by the gateway too). A refusal under HTTP 200 comes back as a
REJECTED order with the gateway's reason in words; a request whose answer was lost (a timeout,
a 401 or a 429 on a mutating call) raises, and the router looks the order up by its tag
(:meth:`ProjectXTrading.find_order`: ``Order/search``) before anything else.

What tterm can know is refused before sending: an unknown contract, an off-tick price, a
bracket price on the wrong side of the entry, multi-leg orders, a reduce-only order that would
open or reverse a position, and new orders while the user hub is down or the symbol's quotes
are frozen (exits still pass).
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from tterm.brokers.projectx import mapping as m
from tterm.brokers.projectx.rest import BadRequest, Envelope
from tterm.brokers.projectx.sync import Waiting
from tterm.core.broker import BrokerError, UnknownOrder
from tterm.core.models import (
    Notice,
    Order,
    OrderRequest,
    OrderRole,
    OrderSource,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)

if TYPE_CHECKING:
    from tterm.brokers.projectx.broker import ProjectXBroker

log = logging.getLogger(__name__)


class ProjectXTrading:
    """Order verbs over the broker's REST, user state and quotes."""

    def __init__(self, broker: ProjectXBroker) -> None:
        self.b = broker

    @property
    def name(self) -> str:
        return self.b.name

    def preflight(self, request: OrderRequest) -> str:
        """What :meth:`place` would refuse without asking the gateway (no I/O)."""
        if request.legs:
            return "ProjectX takes no multi-leg orders"
        if request.tif not in (TimeInForce.DAY, TimeInForce.GTC):
            return f"ProjectX takes no {request.tif.value.upper()} orders (its orders have no time in force)"
        if not request.reduce_only:
            held = self.b.held_reason(request.symbol)
            if held:
                return held
        return ""

    # ------------------------------------------------------------------ place

    async def place(self, request: OrderRequest) -> Order:
        """Send ``request`` once (its bracket as signed ticks); refusals come back as REJECTED orders."""
        b = self.b
        try:
            if request.legs:
                raise m.Refused("ProjectX takes no multi-leg orders")
            vid = b.sync.vendor(request.account)
            contract, inst = await b.provider.contract_for(request.symbol)
            if not request.reduce_only and (held := b.held_reason(inst.symbol)):
                raise m.Refused(held)
            cid = str(contract["id"])
            quote = b.last_quote(inst.symbol)
            last = (quote.last or quote.mid) if quote is not None else None
            touch = (quote.ask if request.side is Side.BUY else quote.bid) if quote is not None else None
            reference = request.limit_price or request.stop_price or touch or last
            if request.reduce_only:
                net = b.sync.net(vid, cid)
                if net == 0 or (net > 0) == (request.side is Side.BUY):
                    raise m.Refused("reduce-only: the order would open or add to a position")
                if request.quantity > abs(net):
                    raise m.Refused(f"reduce-only: {request.quantity} contracts would reverse the {net:+d} position")
            body = m.order_body(
                request, vid, cid, inst, last=last, reference=reference, trail_as=b.settings.trail_price
            )
        except m.Refused as exc:
            return m.local_reject(request, str(exc), self.name)
        coid = request.client_order_id
        b.sync.placing[coid] = m.Known(coid, source=request.source, trail_amount=request.trail_amount)
        waiting = None
        if "stopLossBracket" in body or "takeProfitBracket" in body:
            roles = {r for key, r in (("stopLossBracket", OrderRole.STOP_LOSS), ("takeProfitBracket",
                     OrderRole.TAKE_PROFIT)) if key in body}  # fmt: skip
            waiting = Waiting(coid, vid, cid, body["side"], roles)
            b.sync.waiting.append(waiting)
        try:
            data = await b.rest.place(body)
        except (Envelope, BadRequest) as exc:
            b.sync.placing.pop(coid, None)
            if waiting is not None and waiting in b.sync.waiting:
                b.sync.waiting.remove(waiting)
            if isinstance(exc, Envelope):
                reason = f"ProjectX refused the order: {m.words(m.PLACE_ERRORS, exc.code, exc.message)}"
            else:
                reason = str(exc)
            return m.local_reject(request, reason, self.name, symbol=inst.symbol).evolve(order_id=f"rejected-{coid}")
        oid = m.whole(data.get("orderId"))
        if not oid:
            raise BrokerError("ProjectX took the order without an order id; check the order list before re-sending")
        if waiting is not None and waiting.entry_id is None:
            waiting.entry_id = oid
        if oid not in b.sync.known and coid in b.sync.placing:
            b.sync.known[oid] = b.sync.placing.pop(coid)
        await b.sync.wait_until(lambda: oid in b.sync.mapped, b.settings.ack_wait)
        found = b.sync.mapped.get(oid)
        if found is not None:
            return found
        return Order.from_request(request, order_id=str(oid), status=OrderStatus.PENDING, broker=self.name,
                                  symbol=inst.symbol)  # fmt: skip

    async def find_order(self, account: str, client_order_id: str) -> Order | None:
        """The order placed with ``client_order_id`` (its ``customTag``), asked of the gateway when
        tterm has not seen it: the lookup the router makes before any resend."""
        b = self.b
        found = b.sync.by_client_id(account, client_order_id)
        if found is not None:
            return found
        try:
            vid = b.sync.vendor(account)
        except m.Refused:
            return None
        start = m.iso(b._clock.now() - timedelta(days=2))
        for row in await b.rest.orders(vid, start):
            if str(row.get("customTag") or "") == client_order_id:
                oid = m.whole(row.get("id"))
                b.sync.event("GatewayUserOrder", row)
                await b.sync.wait_until(lambda oid=oid: oid in b.sync.mapped, b.settings.ack_wait or 1.0)
                return b.sync.mapped.get(oid)
        return None

    # ------------------------------------------------------------------ modify, cancel

    async def _known(self, account: str, order_id: str) -> tuple[int, int, Order]:
        try:
            oid = int(order_id)
        except ValueError:
            raise UnknownOrder(f"{order_id!r} is not a ProjectX order id", sent=False) from None
        order = self.b.sync.mapped.get(oid)
        if order is None or order.account != account:
            raise UnknownOrder(f"ProjectX order {order_id} is not in {account}", sent=False)
        return self.b.sync.vendor(account), oid, order

    async def modify(
        self,
        account: str,
        order_id: str,
        *,
        quantity: int | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> Order:
        """Change a working order (``Order/modify``). A refusal returns the order unchanged with
        ``reject_reason`` set."""
        vid, oid, order = await self._known(account, order_id)
        if not order.is_open:
            return order.evolve(reject_reason=f"cannot modify: the order is already {order.status.value}")
        try:
            _, inst = await self.b.provider.contract_for(order.symbol)
            if quantity is not None and quantity <= 0:
                raise m.Refused(f"quantity must be positive, got {quantity}")
            if limit_price is not None and not order.order_type.needs_limit:
                raise m.Refused(f"a {order.order_type.value} order has no limit price")
            stops = order.order_type.needs_stop or order.order_type is OrderType.TRAILING_STOP
            if stop_price is not None and not stops:
                raise m.Refused(f"a {order.order_type.value} order has no stop price")
            limit = m.check_price(inst, limit_price, "limit price")
            stop = m.check_price(inst, stop_price, "stop price")
        except m.Refused as exc:
            return order.evolve(reject_reason=str(exc))
        body: dict[str, object] = {"accountId": vid, "orderId": oid}
        if quantity is not None:
            body["size"] = quantity
        if limit is not None:
            body["limitPrice"] = m.num(limit)
        if stop is not None:
            body["stopPrice"] = m.num(stop)
        try:
            await self.b.rest.modify(body)
        except (Envelope, BadRequest) as exc:
            words = m.words(m.MODIFY_ERRORS, exc.code, exc.message) if isinstance(exc, Envelope) else str(exc)
            reason = f"ProjectX refused the change: {words}"
            self.b.emit(Notice(level="warning", text=f"order {order_id}: {reason}", account=account, source=self.name))
            return order.evolve(reject_reason=reason)

        def applied() -> bool:
            now = self.b.sync.mapped.get(oid)
            return now is not None and (
                not now.is_open
                or (
                    (quantity is None or now.quantity == quantity)
                    and (limit is None or now.limit_price == limit)
                    and (stop is None or now.stop_price == stop)
                )
            )

        await self.b.sync.wait_until(applied, self.b.settings.ack_wait)
        return self.b.sync.mapped.get(oid) or order

    async def cancel(self, account: str, order_id: str) -> Order:
        """Cancel a working order (``Order/cancel``); waits briefly for the hub to confirm it."""
        vid, oid, order = await self._known(account, order_id)
        if not order.is_open:
            return order
        try:
            await self.b.rest.cancel(vid, oid)
        except (Envelope, BadRequest) as exc:
            current = self.b.sync.mapped.get(oid) or order
            if not current.is_open:
                return current  # it filled or ended on the way
            words = m.words(m.CANCEL_ERRORS, exc.code, exc.message) if isinstance(exc, Envelope) else str(exc)
            reason = f"ProjectX refused the cancel: {words}"
            self.b.emit(Notice(level="warning", text=f"order {order_id}: {reason}", account=account, source=self.name))
            return current.evolve(reject_reason=reason)

        def gone() -> bool:
            now = self.b.sync.mapped.get(oid)
            return now is not None and not now.is_open

        await self.b.sync.wait_until(gone, self.b.settings.ack_wait)
        return self.b.sync.mapped.get(oid) or order

    # ------------------------------------------------------------------ flatten

    async def flatten(self, account: str, symbol: str | None = None) -> list[Order]:
        """Cancel working orders, then close each position with ``Position/closeContract`` (the
        gateway's market order for the whole position), for one symbol or all. Positions are read
        fresh first, so a fill the hub has not reported yet still gets closed."""
        b = self.b
        try:
            vid = b.sync.vendor(account)
            only = str((await b.provider.contract_for(symbol))[0]["id"]) if symbol is not None else None
        except m.Refused as exc:
            raise BrokerError(str(exc), sent=False) from None
        results: list[Order] = []
        for oid, order in sorted(b.sync.mapped.items()):
            if order.account != account or not order.is_open:
                continue
            if only is not None and str(b.sync.orders.get(oid, {}).get("contractId")) != only:
                continue
            with contextlib.suppress(UnknownOrder):
                results.append(await self.cancel(account, str(oid)))
        for row in await b.rest.positions(vid):
            cid = str(row.get("contractId"))
            net = m.signed_size(row)
            if not net or (only is not None and cid != only):
                continue
            before = set(b.sync.mapped)
            sym = await b.provider.symbol_for_id(cid)
            try:
                await b.rest.close_position(vid, cid)
            except (Envelope, BadRequest) as exc:
                words = m.words(m.CLOSE_ERRORS, exc.code, exc.message) if isinstance(exc, Envelope) else str(exc)
                text = f"ProjectX refused to close {sym} in {account}: {words}"
                b.emit(Notice(level="error", text=text, account=account, source=self.name))
                request = OrderRequest(account=account, symbol=sym, side=Side.SELL if net > 0 else Side.BUY,
                                       quantity=abs(net), reduce_only=True, source=OrderSource.RISK)  # fmt: skip
                results.append(m.local_reject(request, text, self.name))
                continue

            def closing(cid: str = cid, before: set[int] = before) -> list[Order]:
                return [o for i, o in b.sync.mapped.items() if i not in before
                        and str(b.sync.orders.get(i, {}).get("contractId")) == cid]  # fmt: skip

            await b.sync.wait_until(lambda: bool(closing()), b.settings.ack_wait)
            results.extend(closing())
        return results

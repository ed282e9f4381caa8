"""The Tradovate broker's order verbs: place (a bracket as an OSO), groups (placeoco, placeoso),
modify, cancel, flatten (cancel, then ``liquidateposition``) and find_order.

A room of :class:`~tterm.brokers.tradovate.broker.TradovateBroker` (which delegates to it).
Orders are sent once. A request that got no answer raises (``ConnectionFailed`` with ``sent``
saying whether it may have arrived) and the router, the one owner of retry, looks the client
order id up before anything else. One that was not processed (a 429 lockout, a 423, a penalty
given up on, a 401 on a valid session) comes back REJECTED with the reason, never resent. While
Tradovate has the login locked out (a 429), every order is held and the flatten refused with the
plain reason (nothing sent would be accepted, and it would restart the hour).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tterm.brokers.tradovate import mapping as m
from tterm.brokers.tradovate.mapping import Refused
from tterm.brokers.tradovate.rest import NotFound
from tterm.core.broker import AuthError, BrokerError, LoginRequired, RateLimited, UnknownOrder
from tterm.core.models import (
    ConnectionState,
    GroupKind,
    Notice,
    Order,
    OrderGroup,
    OrderRequest,
    OrderRole,
    OrderSource,
    OrderType,
    Side,
)

if TYPE_CHECKING:
    from tterm.brokers.tradovate.broker import TradovateBroker

log = logging.getLogger(__name__)

#: How many of an account's unmatched orders (newest first) find_order reads the commands of.
FIND_ORDER_CANDIDATES = 25


class TradovateTrading:
    """Order verbs for one Tradovate login."""

    def __init__(self, broker: TradovateBroker) -> None:
        self._b = broker

    def _held_reason(self) -> str | None:
        if self._b._lockout.active():
            return "held: " + self._b._lockout.refusal("the order")
        if self._b.login_stopped:
            return f"held: the Tradovate login is stopped ({self._b.login_stopped}); the order was not sent"
        state, detail = self._b.trading_stream
        if not self._b.settings.hold_orders_when_stale or state is ConnectionState.CONNECTED:
            return None
        return (
            f"held: the Tradovate trading stream is {state.value} ({detail or 'no details'}); tterm cannot see "
            "fills or positions right now, so the order was not sent"
        )

    def _net_position(self, account_id: int, contract_id: int) -> int:
        return sum(
            int(p.get("netPos") or 0)
            for p in self._b._replica.positions.values()
            if p.get("accountId") == account_id and p.get("contractId") == contract_id
        )

    async def place(self, request: OrderRequest) -> Order:
        """Send ``request`` (with its bracket as an OSO), once. Refusals come back as REJECTED orders."""
        try:
            if request.legs:
                raise Refused("Tradovate in tterm does not take multi-leg orders")
            if request.quantity <= 0:
                raise Refused(f"quantity must be a positive number of contracts, got {request.quantity}")
            acct = self._b._view.vendor_account(request.account)
            held = self._held_reason()
            if held and (self._b._lockout.active() or self._b.login_stopped or not request.reduce_only):
                raise Refused(held)
            contract, inst = await self._b.provider.contract_for_symbol(request.symbol)
            await self._b.provider.ensure_instrument(contract)
            limit, stop = m.checked_prices(request, inst)
            if request.reduce_only:
                net = self._net_position(acct["id"], contract["id"])
                if net == 0 or (net > 0) == (request.side is Side.BUY):
                    raise Refused("reduce-only: the order would open or add to a position")
                if request.quantity > abs(net):
                    raise Refused(f"reduce-only: {request.quantity} contracts would reverse the {net:+d} position")
            automated = m.is_automated(request.source, self._b.settings.is_automated)
            body = m.order_body(request, acct, contract, limit, stop, is_automated=automated)
            children = []
            if request.bracket is not None:
                children = m.bracket_children(request, inst, limit, stop, self._b._quotes.last(inst.symbol))
        except Refused as exc:
            return m.local_reject(request, str(exc), self._b.name)
        for key, (_, child, _) in zip(("bracket1", "bracket2"), children, strict=False):
            body[key] = child
        try:
            result = await (self._b._rest.place_oso(body) if children else self._b._rest.place_order(body))
        except (RateLimited, AuthError) as exc:
            if exc.sent is not False or isinstance(exc, LoginRequired):
                raise
            # A 429, 423, penalty or 401 was not processed: refuse with the reason (never resent,
            # nothing to look up, and during a lockout a lookup would itself restart the hour).
            return m.local_reject(request, f"not sent: {exc}", self._b.name)
        oid = result.get("orderId")
        if not isinstance(oid, int):
            return m.vendor_reject(request, result, self._b.name, inst.symbol)
        self._b._view.remember(oid, m.placed(request, acct["id"], contract["id"], limit, stop))
        for key, (role, child, price) in zip(("oso1Id", "oso2Id"), children, strict=False):
            child_id = result.get(key)
            if isinstance(child_id, int):
                tp = role is OrderRole.TAKE_PROFIT
                sent = m.Placed(
                    client_order_id=str(child["clOrdId"]),
                    account_id=acct["id"],
                    contract_id=contract["id"],
                    side=request.side.opposite,
                    quantity=request.quantity,
                    order_type=OrderType.LIMIT if tp else OrderType.STOP,
                    limit_price=price if tp else None,
                    stop_price=None if tp else price,
                    tif=request.tif,
                    role=role,
                    parent_id=oid,
                    source=request.source,
                )
                self._b._view.remember(child_id, sent)
                self._b._sync.publish_order(child_id)
        return self._b._view.order_now(oid)

    async def place_group(self, group: OrderGroup) -> list[Order]:
        """OCO natively (``placeoco``) and OTOCO as an OSO (``placeoso``): the entry, then its exits as
        ``bracket1``/``bracket2``, which Tradovate works as an OCO pair once the entry fills (A5.4)."""
        orders = list(group.orders)
        try:
            m.check_group(group)
            acct = self._b._view.vendor_account(group.account)
            held = self._held_reason()
            stopped = self._b._lockout.active() or self._b.login_stopped
            if held and (stopped or not all(r.reduce_only for r in orders)):
                raise Refused(held)
            contract, inst = await self._b.provider.contract_for_symbol(orders[0].symbol)
            await self._b.provider.ensure_instrument(contract)
            prices = [m.checked_prices(r, inst) for r in orders]
        except Refused as exc:
            return [m.local_reject(r, str(exc), self._b.name) for r in orders]
        first = orders[0]
        automated = m.is_automated(first.source, self._b.settings.is_automated)
        body = m.order_body(first, acct, contract, *prices[0], is_automated=automated)
        if group.kind is GroupKind.OCO:
            # A5.5: the second order is a RestrainedOrderVersion; it has no quantity of its own.
            body["other"] = m.restrained(orders[1], *prices[1])
        else:
            for key, r, (limit, stop) in zip(("bracket1", "bracket2"), orders[1:], prices[1:], strict=False):
                body[key] = m.restrained(r, limit, stop)
        try:
            oco = group.kind is GroupKind.OCO
            result = await (self._b._rest.place_oco(body) if oco else self._b._rest.place_oso(body))
        except RateLimited as exc:
            if exc.sent is not False:
                raise
            return [m.local_reject(r, f"not sent: {exc}", self._b.name) for r in orders]
        if oco:
            raw_ids = [result.get("orderId"), result.get("ocoId")]
        else:
            raw_ids = [result.get("orderId"), result.get("oso1Id"), result.get("oso2Id")][: len(orders)]
        ids = [i for i in raw_ids if isinstance(i, int)]
        if len(ids) != len(raw_ids):
            return [m.vendor_reject(r, result, self._b.name, inst.symbol) for r in orders]
        out = []
        for i, (oid, r, (limit, stop)) in enumerate(zip(ids, orders, prices, strict=True)):
            if group.kind is GroupKind.OTOCO and i > 0:
                sent = m.placed(r, acct["id"], contract["id"], limit, stop, role=m.exit_role(r), parent_id=ids[0])
            else:
                sent = m.placed(r, acct["id"], contract["id"], limit, stop, quantity=first.quantity)
            self._b._view.remember(oid, sent)
            out.append(self._b._view.order_now(oid))
        return out

    async def _known_order(self, account: str, order_id: str) -> tuple[int, Order]:
        try:
            oid = int(order_id)
        except ValueError:
            raise UnknownOrder(f"{order_id!r} is not a Tradovate order id", sent=False) from None
        if oid not in self._b._replica.orders:
            try:
                await self._b._sync.load_order(oid)
            except NotFound:
                raise UnknownOrder(f"Tradovate has no order {order_id}", sent=False) from None
        order = self._b._view.order(oid)
        if order is None or order.account != account:
            raise UnknownOrder(f"order {order_id} is not in account {account}", sent=False)
        return oid, order

    async def modify(
        self,
        account: str,
        order_id: str,
        *,
        quantity: int | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> Order:
        """Change a working order. A refusal returns the order unchanged with ``reject_reason`` set."""
        oid, order = await self._known_order(account, order_id)
        if not order.is_open:
            return order.evolve(reject_reason=f"cannot modify: the order is already {order.status.value}")
        inst = self._b._instruments.resolve(order.symbol)
        try:
            if quantity is not None and quantity <= 0:
                raise Refused(f"quantity must be positive, got {quantity}")
            if limit_price is not None and not order.order_type.needs_limit:
                raise Refused(f"a {order.order_type.value} order has no limit price")
            if stop_price is not None and not order.order_type.needs_stop:
                raise Refused(f"a {order.order_type.value} order has no stop price")
            limit = m.check_price(inst, limit_price, "limit price")
            stop = m.check_price(inst, stop_price, "stop price")
        except Refused as exc:
            return order.evolve(reject_reason=str(exc))
        new_qty = quantity if quantity is not None else order.quantity
        new_limit = limit if limit is not None else order.limit_price
        new_stop = stop if stop is not None else order.stop_price
        version = self._b._replica.versions.get(oid, {})
        # Who asks for a change is not known here; it is automated only when the user says so.
        automated = self._b.settings.is_automated is True
        body = m.modify_body(oid, order, version, new_qty, new_limit, new_stop, is_automated=automated)
        result = await self._b._rest.modify_order(body)
        if not isinstance(result.get("commandId"), int):
            reason = f"modify refused: {m.failure_words(result.get('failureReason'), result.get('failureText'))}"
            text = f"order {order_id}: {reason}"
            self._b.emit(Notice(level="warning", text=text, account=account, source=self._b.name))
            return order.evolve(reject_reason=reason)
        if oid in self._b._view.placed:
            p = self._b._view.placed[oid]
            p.quantity, p.limit_price, p.stop_price = new_qty, new_limit, new_stop

        def applied() -> bool:
            now = self._b._view.order(oid)
            return now is not None and (
                not now.is_open
                or (now.quantity == new_qty and now.limit_price == new_limit and now.stop_price == new_stop)
            )

        if await self._b._sync.wait_until(applied, self._b.settings.ack_wait):
            return self._b._view.order(oid) or order
        return order.evolve(quantity=new_qty, limit_price=new_limit, stop_price=new_stop)

    async def cancel(self, account: str, order_id: str) -> Order:
        """Cancel a working order; waits briefly for Tradovate to confirm it."""
        oid, order = await self._known_order(account, order_id)
        if not order.is_open:
            return order
        body: dict[str, Any] = {"orderId": oid}
        if self._b.settings.is_automated is True:
            body["isAutomated"] = True  # optional, false when left out
        result = await self._b._rest.cancel_order(body)
        if not isinstance(result.get("commandId"), int):
            reason = f"cancel refused: {m.failure_words(result.get('failureReason'), result.get('failureText'))}"
            current = self._b._view.order(oid) or order
            if current.is_open:
                text = f"order {order_id}: {reason}"
                self._b.emit(Notice(level="warning", text=text, account=account, source=self._b.name))
                return current.evolve(reject_reason=reason)
            return current

        def gone() -> bool:
            now = self._b._view.order(oid)
            return now is not None and not now.is_open

        await self._b._sync.wait_until(gone, self._b.settings.ack_wait)
        return self._b._view.order(oid) or order

    async def flatten(self, account: str, symbol: str | None = None) -> list[Order]:
        """Cancel working orders, then liquidate positions (``order/liquidateposition``), for one
        symbol or all of them. During a lockout it says plainly that Tradovate will not take it yet."""
        self._b._lockout.check("the flatten")
        try:
            acct = self._b._view.vendor_account(account)
            contract_id = None
            if symbol is not None:
                contract, _ = await self._b.provider.contract_for_symbol(symbol)
                contract_id = contract["id"]
        except Refused as exc:
            raise BrokerError(str(exc), sent=False) from None
        results: list[Order] = []
        for oid, o in sorted(self._b._replica.orders.items()):
            if o.get("accountId") != acct["id"] or (contract_id is not None and o.get("contractId") != contract_id):
                continue
            mapped = self._b._view.order(oid)
            if mapped is not None and mapped.is_open:
                with contextlib.suppress(UnknownOrder):
                    results.append(await self.cancel(account, str(oid)))
        for p in list(self._b._replica.positions.values()):
            net = int(p.get("netPos") or 0)
            if p.get("accountId") != acct["id"] or not net:
                continue
            if contract_id is not None and p.get("contractId") != contract_id:
                continue
            results.append(await self._liquidate(acct, p, net))
        return results

    async def _liquidate(self, acct: Mapping[str, Any], p: Mapping[str, Any], net: int) -> Order:
        contract = self._b._replica.contracts[p["contractId"]]
        inst = self._b._view.instrument_of(contract)
        symbol = inst.symbol if inst is not None else str(contract.get("name"))
        request = OrderRequest(
            account=self._b._view.account_id(acct),
            symbol=symbol,
            side=Side.SELL if net > 0 else Side.BUY,
            quantity=abs(net),
            reduce_only=True,
            source=OrderSource.RISK,
        )
        # The documented fields only (C# services-api LiquidatePosition, partner page): no isAutomated.
        body = {"accountId": acct["id"], "contractId": p["contractId"], "admin": False}
        result = await self._b._rest.liquidate_position(body)
        oid = result.get("orderId")
        if not isinstance(oid, int):
            order = m.vendor_reject(request, result, self._b.name, symbol)
            text = f"Tradovate refused to liquidate {symbol} in {order.account}: {order.reject_reason}"
            self._b.emit(Notice(level="error", text=text, account=order.account, source=self._b.name))
            return order
        self._b._view.remember(oid, m.placed(request, acct["id"], p["contractId"], None, None))
        return self._b._view.order_now(oid)

    async def find_order(self, account: str, client_order_id: str) -> Order | None:
        """The order sent with ``client_order_id`` (A4: the ``command`` that created it carries
        ``clOrdId``), or None only when Tradovate certainly has none.

        List answers are capped at a variable number of entities (example-api-faq, data size
        limits), so a full ``command/list`` can miss the order and a miss there proves nothing.
        The lookup goes by the orders' own ids instead: the stream's commands, then each candidate
        order's own commands (``command/deps``). A miss is an answer (None) only while the trading
        stream has been up throughout, since Tradovate pushes every command of the user's accounts
        on it; otherwise it raises (``sent=None``), and the router never sends the order again.
        """
        replica = self._b._replica
        connections = self._b._trading.connections
        streaming = self._b.trading_state is ConnectionState.CONNECTED
        if streaming and client_order_id not in replica.order_by_clord:
            # A command the server just created is on its way over the stream.
            await self._b._sync.wait_until(lambda: client_order_id in replica.order_by_clord, self._b.settings.ack_wait)
        oid = replica.order_by_clord.get(client_order_id)
        if oid is None:
            try:
                acct = self._b._view.vendor_account(account)
            except Refused:
                return None
            oid = await self._find_by_order_ids(acct, client_order_id)
        if oid is None:
            whole = streaming and self._b.trading_state is ConnectionState.CONNECTED
            if whole and self._b._trading.connections == connections:
                return None
            raise BrokerError(
                f"cannot tell whether Tradovate has order {client_order_id}: the trading stream is not up and "
                "Tradovate's lists are capped (a miss there does not prove the order is absent); check the "
                "Tradovate order list before sending it again",
                sent=None,
            )
        if oid not in replica.orders:
            try:
                await self._b._sync.load_order(oid)
            except NotFound:
                return None
        order = self._b._view.order(oid)
        return order if order is not None and order.account == account else None

    async def _find_by_order_ids(self, acct: Mapping[str, Any], client_order_id: str) -> int | None:
        """Read the commands of the account's orders not yet matched to a client id, newest first."""
        replica = self._b._replica
        known = {oid for oid, o in replica.orders.items() if o.get("accountId") == acct["id"]}
        for o in await self._b._rest.entity_deps("order", acct["id"]):
            if isinstance(o.get("id"), int):
                replica.orders.setdefault(o["id"], o)
                known.add(o["id"])
        matched = set(replica.order_by_clord.values())
        for oid in sorted(known - matched, reverse=True)[:FIND_ORDER_CANDIDATES]:
            for command in await self._b._rest.entity_deps("command", oid):
                replica.put_command(command)
            if client_order_id in replica.order_by_clord:
                return replica.order_by_clord[client_order_id]
        return None

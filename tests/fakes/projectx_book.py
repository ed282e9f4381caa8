"""The accounts and the matching book behind the fake ProjectX gateway.

Orders fill against the simulated touch in :mod:`tests.fakes.projectx_market`: market orders at
the touch (buy at the ask, sell at the bid), a marketable limit at the touch, a resting limit at
its price once the opposite side reaches it or a print trades through it, stops (and trailing
stops, which follow the last price) at the touch once the last price reaches them, stop-limits as
limits once triggered, join-bid/join-ask as limits at the bid/ask of the moment. Brackets
(``stopLossBracket``/``takeProfitBracket``, signed ticks from the fill) wait as status 8
Suspended, open when the entry fills, and cancel each other (B7.2, D2.3). Positions are net per
account and contract with an average price; trades carry fees and realized P&L (null when
opening, B8); the balance moves by both.

Every change lands in :attr:`Book.outbox` as ``(kind, account_id, entity)`` for the user hub,
with kind one of ``order``, ``trade``, ``position``, ``account``. Business refusals raise
:class:`Reject` with the endpoint's own error code (B7, B8).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from tests.fakes.projectx_market import Contract, Market, iso

JSON = dict[str, Any]

# OrderType, OrderSide, OrderStatus, PositionType (B7.1).
LIMIT, MARKET, STOP_LIMIT, STOP, TRAILING_STOP, JOIN_BID, JOIN_ASK = 1, 2, 3, 4, 5, 6, 7
ORDER_TYPES = {LIMIT, MARKET, STOP_LIMIT, STOP, TRAILING_STOP, JOIN_BID, JOIN_ASK}
BUY, SELL = 0, 1
OPEN, FILLED, CANCELLED, EXPIRED, REJECTED, PENDING, PENDING_CANCEL, SUSPENDED = 1, 2, 3, 4, 5, 6, 7, 8
WORKING = {OPEN, PENDING, SUSPENDED}
LONG, SHORT = 1, 2

# Order/place error codes (B7.2).
PLACE_ACCOUNT_NOT_FOUND, PLACE_REJECTED, PLACE_OUTSIDE_HOURS = 1, 2, 5
PLACE_CONTRACT_NOT_FOUND, PLACE_CONTRACT_NOT_ACTIVE, PLACE_ACCOUNT_VIOLATION = 8, 9, 4
# Order/modify and Order/cancel (B7.3).
MOD_ACCOUNT_NOT_FOUND, MOD_ORDER_NOT_FOUND, MOD_REJECTED = 1, 2, 3
# Position/closeContract and partialCloseContract (B8).
POS_ACCOUNT_NOT_FOUND, POS_NOT_FOUND, POS_CONTRACT_NOT_FOUND = 1, 2, 3
CLOSE_REJECTED, PARTIAL_INVALID_SIZE, PARTIAL_REJECTED = 5, 5, 6


class Reject(Exception):
    """A business refusal: HTTP 200, ``success: false`` with this code and message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Account:
    id: int
    name: str
    balance: Decimal
    can_trade: bool = True
    is_visible: bool = True
    simulated: bool = True
    active: bool = True
    #: The platform setting "Auto OCO Brackets"; without it the gateway refuses brackets (B7.2).
    auto_oco_brackets: bool = True

    def json(self) -> JSON:
        return {
            "id": self.id,
            "name": self.name,
            "balance": float(self.balance),
            "canTrade": self.can_trade,
            "isVisible": self.is_visible,
            "simulated": self.simulated,
        }


@dataclass
class Order:
    id: int
    account_id: int
    contract: Contract
    type: int
    side: int
    size: int
    created: datetime
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_distance: Decimal | None = None
    custom_tag: str | None = None
    status: int = OPEN
    updated: datetime | None = None
    fill_volume: int = 0
    fill_value: Decimal = Decimal(0)
    triggered: bool = False  # a stop-limit whose stop was reached works as a limit
    rested: bool = False  # has been through one matching pass (no longer "arriving")
    parent_id: int | None = None  # bracket children: the entry
    sibling_id: int | None = None  # bracket children: the other child (OCO)
    bracket_ticks: int | None = None  # bracket children: signed ticks from the entry's fill
    brackets: list[tuple[int, int]] = field(default_factory=list)  # entry: (ticks, type) per bracket

    @property
    def remaining(self) -> int:
        return self.size - self.fill_volume

    @property
    def working(self) -> bool:
        return self.status in WORKING

    def json(self) -> JSON:
        out: JSON = {
            "id": self.id,
            "accountId": self.account_id,
            "contractId": self.contract.id,
            "symbolId": self.contract.symbol_id,
            "creationTimestamp": iso(self.created),
            "updateTimestamp": iso(self.updated) if self.updated else None,
            "status": self.status,
            "type": self.type,
            "side": self.side,
            "size": self.size,
            "limitPrice": float(self.limit_price) if self.limit_price is not None else None,
            "stopPrice": float(self.stop_price) if self.stop_price is not None else None,
            "fillVolume": self.fill_volume,
            "filledPrice": float(self.fill_value / self.fill_volume) if self.fill_volume else None,
            "customTag": self.custom_tag,
        }
        if self.type == TRAILING_STOP:
            # PX-RS pitfall: in search results ``trailPrice`` is the distance; ``stopPrice``
            # here is where the trailing stop stands now.
            out["trailPrice"] = float(self.trail_distance) if self.trail_distance is not None else None
        return out


@dataclass
class Position:
    id: int
    account_id: int
    contract: Contract
    created: datetime
    net: int = 0  # signed: + long, - short
    average: Decimal = Decimal(0)
    kind: int = 0  # PositionType of the last non-flat state (a closed position keeps it, size 0)

    def json(self) -> JSON:
        return {
            "id": self.id,
            "accountId": self.account_id,
            "contractId": self.contract.id,
            "creationTimestamp": iso(self.created),
            "type": self.kind,
            "size": abs(self.net),
            "averagePrice": float(self.average),
        }


class Book:
    """Accounts, orders, positions and trades, matched against a :class:`Market`."""

    def __init__(self, market: Market, accounts: list[Account], now: Any) -> None:
        self.market = market
        self.accounts: dict[int, Account] = {a.id: a for a in accounts}
        self.now = now  # a callable giving the aware "now"
        self.orders: dict[int, Order] = {}
        self.positions: dict[tuple[int, str], Position] = {}
        self.trades: list[JSON] = []
        self.outbox: list[tuple[str, int, JSON]] = []
        #: Fills are exchange trades too: ``(contract id, price, size, aggressor side)`` for the tape.
        self.prints: list[tuple[str, Decimal, int, int]] = []
        self._order_ids = itertools.count(9056)
        self._trade_ids = itertools.count(8604)
        self._position_ids = itertools.count(6124)
        self.market_open = True

    # ------------------------------------------------------------------ events

    def _emit(self, kind: str, account_id: int, entity: JSON) -> None:
        self.outbox.append((kind, account_id, entity))

    def _touch(self, order: Order) -> None:
        order.updated = self.now()
        self._emit("order", order.account_id, order.json())

    # ------------------------------------------------------------------ placing

    def account(self, account_id: Any, code: int) -> Account:
        account = self.accounts.get(account_id) if isinstance(account_id, int) else None
        if account is None:
            raise Reject(code, f"Account {account_id} was not found.")
        return account

    def place(
        self,
        account: Account,
        contract: Contract,
        *,
        type: int,
        side: int,
        size: int,
        limit_price: Decimal | None,
        stop_price: Decimal | None,
        trail_price: Decimal | None,
        custom_tag: str | None,
        stop_loss: tuple[int, int] | None,
        take_profit: tuple[int, int] | None,
    ) -> Order:
        """Order/place after the request was bound and its fields are the right types."""
        if not account.can_trade:
            raise Reject(PLACE_ACCOUNT_VIOLATION, "The account is not allowed to trade.")
        if not self.market_open:
            raise Reject(PLACE_OUTSIDE_HOURS, "The market is closed.")
        if type not in ORDER_TYPES:
            raise Reject(PLACE_REJECTED, f"Invalid order type: {type}.")
        if side not in (BUY, SELL):
            raise Reject(PLACE_REJECTED, f"Invalid order side: {side}.")
        if size <= 0:
            raise Reject(PLACE_REJECTED, f"Invalid order size: {size}.")
        if custom_tag is not None and any(
            o.custom_tag == custom_tag for o in self.orders.values() if o.account_id == account.id
        ):
            # The docs: customTag "Must be unique across the account". UNCERTAIN: the exact
            # code and words of the refusal; the fake answers OrderRejected.
            raise Reject(PLACE_REJECTED, f"An order with custom tag '{custom_tag}' already exists on this account.")
        q = self.market.quotes[contract.id]
        order = Order(
            id=0, account_id=account.id, contract=contract, type=type, side=side, size=size, created=self.now()
        )
        order.custom_tag = custom_tag
        if type in (LIMIT, STOP_LIMIT):
            order.limit_price = self._price(contract, limit_price, "limit price")
        if type in (STOP, STOP_LIMIT):
            order.stop_price = self._price(contract, stop_price, "stop price")
            beyond = order.stop_price > q.last if side == BUY else order.stop_price < q.last
            if not beyond:
                raise Reject(
                    PLACE_REJECTED,
                    f"Stop price {order.stop_price} must be {'above' if side == BUY else 'below'} "
                    f"the last price {q.last}.",
                )
        if type == TRAILING_STOP:
            order.trail_distance, order.stop_price = self._trail(contract, side, trail_price, q.last)
        if type == JOIN_BID:
            order.limit_price = q.bid
        if type == JOIN_ASK:
            order.limit_price = q.ask
        for role, spec in (("sl", stop_loss), ("tp", take_profit)):
            if spec is not None:
                order.brackets.append(self._bracket(account, side, role, spec))
        order.id = next(self._order_ids)
        self.orders[order.id] = order
        self._touch(order)
        for ticks, kind in order.brackets:
            child = Order(
                id=next(self._order_ids),
                account_id=account.id,
                contract=contract,
                type=kind,
                side=SELL if side == BUY else BUY,
                size=size,
                created=self.now(),
                status=SUSPENDED,
                parent_id=order.id,
                bracket_ticks=ticks,
            )
            self.orders[child.id] = child
        children = [o for o in self.orders.values() if o.parent_id == order.id]
        if len(children) == 2:
            children[0].sibling_id, children[1].sibling_id = children[1].id, children[0].id
        for child in children:
            self._touch(child)
        self.match(contract.id)
        return order

    @staticmethod
    def _price(contract: Contract, price: Decimal | None, what: str) -> Decimal:
        if price is None:
            raise Reject(PLACE_REJECTED, f"A {what} is required for this order type.")
        if price <= 0:
            raise Reject(PLACE_REJECTED, f"Invalid {what}: {price}.")
        if not contract.on_tick(price):
            raise Reject(PLACE_REJECTED, f"Invalid {what} {price}: not a multiple of the tick size {contract.tick}.")
        return price

    @staticmethod
    def _trail(contract: Contract, side: int, trail: Decimal | None, last: Decimal) -> tuple[Decimal, Decimal]:
        """(distance, initial stop) of a trailing stop.

        The docs only say "the trail price for the order"; the PX-RS pitfall list reads it as a
        price level when placing, while project-x-py sends a distance ("trail amount"). Both
        are accepted: a value under half the market price is a distance, anything else a level
        that must sit on the losing side of the market."""
        if trail is None or trail <= 0:
            raise Reject(PLACE_REJECTED, "A trail price is required for a trailing stop.")
        if not contract.on_tick(trail):
            raise Reject(
                PLACE_REJECTED, f"Invalid trail price {trail}: not a multiple of the tick size {contract.tick}."
            )
        if trail < last / 2:
            distance = trail
        else:
            distance = last - trail if side == SELL else trail - last
            if distance <= 0:
                raise Reject(
                    PLACE_REJECTED,
                    f"Trail price {trail} must be {'below' if side == SELL else 'above'} the last price {last}.",
                )
        return distance, (last - distance if side == SELL else last + distance)

    @staticmethod
    def _bracket(account: Account, side: int, role: str, spec: tuple[int, int]) -> tuple[int, int]:
        """Validate one bracket: signed ticks from the fill, stop-loss below a long entry
        (negative ticks), take-profit above it (positive), the reverse for a short (B7.2).

        project-x-py 4.4 disagrees: its native bracket sends both tick counts unsigned
        (``abs(...)``). The gateway's docs and the PX-RS notes say a wrong sign is refused, so
        the fake refuses it, and project-x-py then falls back to separate stop and target
        orders. Here the vendor's rule wins over the client's habit, on purpose."""
        ticks, kind = spec
        name = "stop loss" if role == "sl" else "take profit"
        if not account.auto_oco_brackets:
            raise Reject(PLACE_REJECTED, "Brackets need the account's Auto OCO Brackets setting.")
        if kind not in ORDER_TYPES:
            raise Reject(PLACE_REJECTED, f"Invalid {name} bracket type: {kind}.")
        if ticks == 0:
            raise Reject(PLACE_REJECTED, f"Invalid {name} ticks: 0.")
        below = (role == "sl") == (side == BUY)  # the price must sit below the entry
        if below and ticks > 0:
            raise Reject(
                PLACE_REJECTED,
                f"Invalid {name} ticks ({ticks}). Ticks should be less than zero when "
                f"{'longing' if side == BUY else 'shorting'}.",
            )
        if not below and ticks < 0:
            raise Reject(
                PLACE_REJECTED,
                f"Invalid {name} ticks ({ticks}). Ticks should be greater than zero when "
                f"{'longing' if side == BUY else 'shorting'}.",
            )
        return ticks, kind

    # ------------------------------------------------------------------ modify / cancel

    def modify(
        self,
        account: Account,
        order_id: int,
        *,
        size: int | None,
        limit_price: Decimal | None,
        stop_price: Decimal | None,
        trail_price: Decimal | None,
    ) -> Order:
        order = self.orders.get(order_id)
        if order is None or order.account_id != account.id:
            raise Reject(MOD_ORDER_NOT_FOUND, f"Order {order_id} was not found.")
        if not order.working:
            raise Reject(MOD_REJECTED, f"Order {order_id} is no longer working.")
        c = order.contract
        if size is not None and (size <= 0 or size < order.fill_volume):
            raise Reject(MOD_REJECTED, f"Invalid order size: {size}.")
        for value, what, allowed in (
            (limit_price, "limit price", order.type in (LIMIT, STOP_LIMIT, JOIN_BID, JOIN_ASK)),
            (stop_price, "stop price", order.type in (STOP, STOP_LIMIT, TRAILING_STOP)),
            (trail_price, "trail price", order.type == TRAILING_STOP),
        ):
            if value is None:
                continue
            if not allowed:
                raise Reject(MOD_REJECTED, f"A {what} cannot be set on this order type.")
            if value <= 0 or not c.on_tick(value):
                raise Reject(
                    MOD_REJECTED, f"Invalid {what} {value}: not a positive multiple of the tick size {c.tick}."
                )
        if size is not None:
            order.size = size
        if limit_price is not None:
            order.limit_price = limit_price
        if stop_price is not None:
            order.stop_price = stop_price
        if trail_price is not None:
            last = self.market.quotes[c.id].last
            try:
                order.trail_distance, order.stop_price = self._trail(c, order.side, trail_price, last)
            except Reject as exc:
                raise Reject(MOD_REJECTED, exc.message) from None
        self._touch(order)
        self.match(c.id)
        return order

    def cancel(self, account: Account, order_id: int) -> Order:
        order = self.orders.get(order_id)
        if order is None or order.account_id != account.id:
            raise Reject(MOD_ORDER_NOT_FOUND, f"Order {order_id} was not found.")
        if not order.working:
            raise Reject(MOD_REJECTED, f"Order {order_id} is no longer working.")
        self._cancel(order)
        return order

    def _cancel(self, order: Order, status: int = CANCELLED) -> None:
        order.status = status
        self._touch(order)
        for child in self.orders.values():
            # Children that never opened go with their entry (even one partly filled: the
            # fake opens brackets only on a complete fill).
            if child.parent_id == order.id and child.status == SUSPENDED:
                child.status = CANCELLED
                self._touch(child)

    def expire(self, order_id: int) -> None:
        """Test API: a working order expires (status 4), as a day order does at the close."""
        self._cancel(self.orders[order_id], EXPIRED)

    def reject(self, order_id: int) -> None:
        """Test API: the exchange rejects a working order after it was accepted (status 5)."""
        self._cancel(self.orders[order_id], REJECTED)

    # ------------------------------------------------------------------ positions

    def close(self, account: Account, contract: Contract, size: int | None, *, partial: bool) -> Order:
        """Position/closeContract (size None) and partialCloseContract: a market order the other way."""
        pos = self.positions.get((account.id, contract.id))
        if pos is None or pos.net == 0:
            raise Reject(POS_NOT_FOUND, f"No open position in {contract.id}.")
        if not self.market_open:
            raise Reject(PARTIAL_REJECTED if partial else CLOSE_REJECTED, "The market is closed.")
        qty = abs(pos.net) if size is None else size
        if partial and (qty <= 0 or qty > abs(pos.net)):
            raise Reject(PARTIAL_INVALID_SIZE, f"Invalid close size {qty} for a position of {abs(pos.net)}.")
        order = Order(
            id=next(self._order_ids),
            account_id=account.id,
            contract=contract,
            type=MARKET,
            side=SELL if pos.net > 0 else BUY,
            size=qty,
            created=self.now(),
        )
        self.orders[order.id] = order
        self._touch(order)
        self.match(contract.id)
        return order

    # ------------------------------------------------------------------ matching

    def match(self, contract_id: str, print_price: Decimal | None = None) -> None:
        """Fill or trigger every working order of a contract against the touch and, when the
        market printed a trade, against that print. Repeats while fills open new children."""
        for _ in range(10):
            moved = False
            for order in sorted(self.orders.values(), key=lambda o: o.id):
                if order.contract.id == contract_id and order.status in (OPEN, PENDING):
                    moved |= self._try(order, print_price)
            if not moved:
                break
        for order in self.orders.values():
            if order.contract.id == contract_id and order.working:
                order.rested = True

    def _try(self, order: Order, print_price: Decimal | None) -> bool:
        c, q = order.contract, self.market.quotes[order.contract.id]
        buy = order.side == BUY
        if order.type == MARKET:
            self.fill(order, order.remaining, q.ask if buy else q.bid)
            return True
        if order.type == TRAILING_STOP and order.trail_distance is not None and order.stop_price is not None:
            best = c.round(q.last - order.trail_distance if not buy else q.last + order.trail_distance)
            if (not buy and best > order.stop_price) or (buy and best < order.stop_price):
                order.stop_price = best
                self._touch(order)
        if order.type in (STOP, STOP_LIMIT, TRAILING_STOP) and not order.triggered:
            assert order.stop_price is not None
            reached = [q.last] + ([print_price] if print_price is not None else [])
            hit = any(p >= order.stop_price for p in reached) if buy else any(p <= order.stop_price for p in reached)
            if not hit:
                return False
            order.triggered = True
            order.rested = False  # a triggered stop arrives as a new market or limit order
            if order.type != STOP_LIMIT:
                self.fill(order, order.remaining, q.ask if buy else q.bid)
                return True
        # A limit (or a triggered stop-limit, or a join order).
        limit = order.limit_price
        assert limit is not None
        if (buy and q.ask <= limit) or (not buy and q.bid >= limit):
            # Marketable on arrival: the touch (price improvement); resting: its own price.
            self.fill(order, order.remaining, limit if order.rested else (q.ask if buy else q.bid))
            return True
        if print_price is not None and ((buy and print_price < limit) or (not buy and print_price > limit)):
            self.fill(order, order.remaining, limit)
            return True
        return False

    def fill(self, order: Order, qty: int, price: Decimal) -> None:
        """Fill ``qty`` of an order at ``price``: the order, a trade, the position, the account."""
        c = order.contract
        account = self.accounts[order.account_id]
        order.fill_volume += qty
        order.fill_value += price * qty
        if order.fill_volume >= order.size:
            order.status = FILLED
        self._touch(order)
        fees = (c.spec.fee * qty).quantize(Decimal("0.01"))
        pnl = self._apply(order, qty, price)
        trade = {
            "id": next(self._trade_ids),
            "accountId": order.account_id,
            "contractId": c.id,
            "creationTimestamp": iso(self.now()),
            "price": float(price),
            "profitAndLoss": float(pnl) if pnl is not None else None,
            "fees": float(fees),
            "side": order.side,
            "size": qty,
            "voided": False,
            "orderId": order.id,
        }
        self.trades.append(trade)
        self.prints.append((c.id, price, qty, order.side))
        self._emit("trade", order.account_id, trade)
        pos = self.positions[(order.account_id, c.id)]
        self._emit("position", order.account_id, pos.json())
        if pos.net == 0:
            del self.positions[(order.account_id, c.id)]
        account.balance += (pnl or Decimal(0)) - fees
        self._emit("account", account.id, account.json())
        if order.status == FILLED:
            self._after_fill(order)

    def _apply(self, order: Order, qty: int, price: Decimal) -> Decimal | None:
        """Net a fill into the position; the realized P&L of the part that closed, or None."""
        key = (order.account_id, order.contract.id)
        pos = self.positions.get(key)
        if pos is None:
            pos = Position(
                id=next(self._position_ids), account_id=order.account_id, contract=order.contract, created=self.now()
            )
            self.positions[key] = pos
        signed = qty if order.side == BUY else -qty
        if pos.net == 0 or (pos.net > 0) == (signed > 0):
            total = abs(pos.net) + qty
            pos.average = (pos.average * abs(pos.net) + price * qty) / total
            pos.net += signed
            pos.kind = LONG if pos.net > 0 else SHORT
            return None
        closing = min(qty, abs(pos.net))
        direction = 1 if pos.net > 0 else -1
        pnl = ((price - pos.average) * closing * order.contract.point_value * direction).quantize(Decimal("0.01"))
        pos.net += signed
        if pos.net != 0 and (pos.net > 0) != (direction > 0):
            pos.average = price  # reversed through flat: the rest opens a new position
            pos.created = self.now()
            pos.kind = LONG if pos.net > 0 else SHORT
        return pnl

    def _after_fill(self, order: Order) -> None:
        """A complete fill opens the entry's bracket children and cancels a filled child's sibling."""
        fill_price = order.fill_value / order.fill_volume
        c = order.contract
        for child in self.orders.values():
            if child.parent_id == order.id and child.status == SUSPENDED:
                assert child.bracket_ticks is not None
                level = c.round(fill_price + child.bracket_ticks * c.tick)
                if child.type in (LIMIT, JOIN_BID, JOIN_ASK):
                    child.limit_price = level
                elif child.type == STOP_LIMIT:
                    child.limit_price = child.stop_price = level
                elif child.type == TRAILING_STOP:
                    child.stop_price, child.trail_distance = level, abs(child.bracket_ticks) * c.tick
                elif child.type == STOP:
                    child.stop_price = level
                child.status = OPEN
                self._touch(child)
        if order.sibling_id is not None:
            sibling = self.orders[order.sibling_id]
            if sibling.working:
                sibling.status = CANCELLED
                self._touch(sibling)

    # ------------------------------------------------------------------ searches

    def open_orders(self, account_id: int) -> list[Order]:
        """Order/searchOpen: working orders; suspended bracket children are left out (B7.4)."""
        return [o for o in self.orders.values() if o.account_id == account_id and o.status in (OPEN, PENDING)]

    def orders_between(self, account_id: int, start: datetime, end: datetime | None) -> list[Order]:
        return [
            o
            for o in self.orders.values()
            if o.account_id == account_id and o.created >= start and (end is None or o.created <= end)
        ]

    def trades_between(self, account_id: int, start: datetime, end: datetime | None) -> list[JSON]:
        def when(t: JSON) -> datetime:
            return datetime.fromisoformat(t["creationTimestamp"])

        return [
            t
            for t in self.trades
            if t["accountId"] == account_id and when(t) >= start and (end is None or when(t) <= end)
        ]

    def open_positions(self, account_id: int) -> list[Position]:
        return [p for p in self.positions.values() if p.account_id == account_id and p.net != 0]

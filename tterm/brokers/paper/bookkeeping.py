"""The paper broker's bookkeeping (a mixin of :class:`~.broker.PaperBroker`): what the matching
engine did becomes events, fills move the ledger, and the trade date turns.

A fill is a :class:`~tterm.core.models.Fill` per leg (one for a single order), then the order's
new state, the positions it moved and the account's balances, in that order. At the turn of the
trade date DAY orders expire, options past their expiry settle in cash at intrinsic value (their
working orders end), and the day's realized P&L and fees start again from zero.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from tterm.brokers.paper.matching import Effect, Execution
from tterm.core.models import AccountKind, AccountSnapshot, AssetClass, Fill, Notice, OptionRight, Order, Side

if TYPE_CHECKING:
    from tterm.brokers.paper.cash import CashRules
    from tterm.brokers.paper.ledger import Ledger
    from tterm.brokers.paper.market import PaperMarket
    from tterm.brokers.paper.matching import MatchingEngine
    from tterm.brokers.paper.store import PaperStore
    from tterm.core.models import BrokerEvent


class Bookkeeping:
    """Effects to events, and the turn of the trade date."""

    if TYPE_CHECKING:
        name: str
        _store: PaperStore | None
        _engine: MatchingEngine
        _ledger: Ledger
        _market: PaperMarket
        _cash: CashRules
        _orders: dict[str, Order]
        _by_coid: dict[str, str]
        _fills: list[Fill]
        _new_fills: list[Fill]
        _dirty_orders: set[str]
        _dirty_positions: set[tuple[str, str]]
        _trade_date: date

        def _now(self) -> datetime: ...
        def _new_id(self, kind: str) -> str: ...
        def _current_trade_date(self) -> date: ...
        def _flush(self, *, marks: bool = False, counter: bool = False, partial_bars: bool = False) -> None: ...
        def emit(self, event: BrokerEvent) -> None: ...

    def _record(self, order: Order) -> None:
        self._orders[order.order_id] = order
        self._dirty_orders.add(order.order_id)
        self.emit(order)

    def _on_effect(self, effect: Effect) -> None:
        if isinstance(effect, Order):
            self._by_coid.setdefault(effect.client_order_id, effect.order_id)
            self._record(effect)
            return
        self._on_execution(effect)

    def _on_execution(self, ex: Execution) -> None:
        o = ex.order
        legs = [(lf.symbol, lf.side, lf.quantity, lf.price, lf.instrument) for lf in ex.legs] or [
            (o.symbol, o.side, ex.quantity, ex.price, ex.instrument)
        ]
        now = self._now()
        positions = []
        for symbol, side, qty, price, inst in legs:
            fee = inst.fee_per_side * qty
            fill = Fill(
                fill_id=self._new_id("fill"),
                order_id=o.order_id,
                client_order_id=o.client_order_id,
                account=o.account,
                symbol=symbol,
                side=side,
                quantity=qty,
                price=price,
                fee=fee,
                broker=self.name,
                ts=now,
            )
            pos = self._ledger.apply_fill(o.account, inst, side, qty, price, fee)
            self._fills.append(fill)
            self._new_fills.append(fill)
            self._dirty_positions.add((pos.account, pos.symbol))
            self.emit(fill)
            positions.append(pos)
        self._record(o)
        for pos in positions:
            self.emit(self._ledger.position_model(pos, self._mark(pos.symbol)))
        self.emit(self._snapshot(o.account))

    def _mark(self, symbol: str) -> Decimal | None:
        q = self._engine.quote(symbol)
        return q.mark if q is not None else None

    def _snapshot(self, account: str) -> AccountSnapshot:
        set_aside = Decimal(0)
        if self._ledger.accounts[account].spec.kind is AccountKind.CASH:
            set_aside = self._cash.reserved(account) + (self._cash.cover(account) or Decimal(0))
        return self._ledger.snapshot(account, self._mark, set_aside)

    # ------------------------------------------------------------------ trade date

    def _roll_if_new_day(self) -> None:
        today = self._current_trade_date()
        if today <= self._trade_date:
            return
        self._trade_date = today
        self._engine.expire(today)
        self._settle_expired(today)
        # The expired orders are saved as finished before the day is cleared, with the id counter
        # (the day's ids leave the file next).
        self._flush(counter=True)
        self._ledger.roll_day()
        self._fills = []
        self._orders = {oid: o for oid, o in self._orders.items() if o.is_open}
        self._by_coid = {o.client_order_id: oid for oid, o in self._orders.items()}
        if self._store is not None:
            self._store.new_day()
            self._dirty_positions.update(self._ledger.positions)
        self._flush()
        for acct in self._ledger.accounts:
            self.emit(self._snapshot(acct))

    def _settle_expired(self, today: date) -> None:
        """Options past their expiry settle in cash at intrinsic value, and their orders end.

        The underlying's last price decides; the settlement is a fill closing the position (order
        id ``expiry:<date>``), so the book, the journal and the balance see it like any fill.
        """
        for w in list(self._engine.working.values()):
            insts = [inst for _, inst in w.legs] or [w.instrument]
            gone = [i for i in insts if i.asset_class is AssetClass.OPTION and i.expiry and i.expiry < today]
            if gone and w.order.order_id in self._engine.working:
                self._engine.cancel(w.order.order_id, f"{gone[0].symbol.strip()} expired on {gone[0].expiry}")
        now = self._now()
        for pos in list(self._ledger.positions.values()):
            inst = pos.instrument
            if not pos.quantity or inst.asset_class is not AssetClass.OPTION or not inst.expiry:
                continue
            if inst.expiry >= today or inst.strike is None:
                continue
            under = self._mark(self._market.underlying_of(inst).symbol)
            if under is None:
                self.emit(
                    Notice(
                        "warning",
                        f"{inst.symbol.strip()} expired with no price of {inst.underlying}; "
                        "it stays open until one is quoted",
                        account=pos.account,
                        source=self.name,
                    )
                )
                continue
            call = inst.right is OptionRight.CALL
            value = max(under - inst.strike, Decimal(0)) if call else max(inst.strike - under, Decimal(0))
            side = Side.SELL if pos.quantity > 0 else Side.BUY
            qty = abs(pos.quantity)
            oid = f"expiry:{inst.expiry.isoformat()}"
            fill = Fill(
                self._new_id("fill"), oid, oid, pos.account, inst.symbol, side, qty, value, broker=self.name, ts=now
            )
            self._ledger.apply_fill(pos.account, inst, side, qty, value, Decimal(0))
            self._fills.append(fill)
            self._new_fills.append(fill)
            self._dirty_positions.add((pos.account, inst.symbol))
            self.emit(fill)
            self.emit(self._ledger.position_model(pos, value))
            self.emit(
                Notice(
                    "info",
                    f"{qty} {inst.symbol.strip()} expired: settled at {value} ({inst.underlying} at {under})",
                    account=pos.account,
                    source=self.name,
                )
            )

"""Saving and loading the paper broker's state (a mixin of :class:`~.broker.PaperBroker`).

Every broker operation saves what it changed in one transaction (:meth:`Persistence._flush`);
the market (marks, finished one-minute bars, the id counter) is saved about once a second and at
close. On start, :meth:`Persistence._load` puts balances, positions, today's orders and fills,
working orders with their groups, and the last market back exactly as they were.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from tterm.brokers.paper.feed import WalkState
from tterm.brokers.paper.ledger import AccountState, Lot, PositionState
from tterm.brokers.paper.store import AccountRow, BarRow, PositionRow, StoredState
from tterm.core.models import Quote

if TYPE_CHECKING:
    from tterm.brokers.paper.ledger import Ledger
    from tterm.brokers.paper.market import PaperMarket
    from tterm.brokers.paper.matching import MatchingEngine
    from tterm.brokers.paper.store import PaperStore
    from tterm.core.models import Fill, Order


class Persistence:
    """The save and load half of the paper broker."""

    if TYPE_CHECKING:
        _store: PaperStore | None
        _engine: MatchingEngine
        _ledger: Ledger
        _market: PaperMarket
        _orders: dict[str, Order]
        _by_coid: dict[str, str]
        _fills: list[Fill]
        _new_fills: list[Fill]
        _dirty_orders: set[str]
        _dirty_positions: set[tuple[str, str]]
        _counter: int
        _trade_date: date

        def _now(self) -> datetime: ...

    def _flush(self, *, marks: bool = False, counter: bool = False, partial_bars: bool = False) -> None:
        """Save everything that changed since the last save, in one transaction.

        The id counter is saved with the market (``marks``: about once a second, and at close) and
        at the day's turn, not with every operation: every id handed out is in a saved order or
        fill of the day, and a restart continues after the highest of them (see ``_load``).
        """
        dirty = self._dirty_orders | self._engine.dirty
        self._dirty_orders = set()
        self._engine.dirty = set()
        groups_dirty = self._engine.groups_dirty
        self._engine.groups_dirty = False
        positions = self._dirty_positions
        self._dirty_positions = set()
        fills, self._new_fills = self._new_fills, []
        if self._store is None:
            return
        if not (dirty or groups_dirty or positions or fills or marks or counter):
            return
        # In creation order, so a restart lists today's orders as they were placed. Ids carry a
        # zero-padded counter, so (length, id) sorts them by creation without scanning every order
        # of the day on each save.
        orders = [
            (self._orders[oid], self._engine.working.get(oid))
            for oid in sorted(dirty, key=lambda i: (len(i), i))
            if oid in self._orders
        ]
        pos_rows = []
        for key in positions:
            p = self._ledger.positions.get(key)
            if p is not None:
                lots = tuple((lot.quantity, lot.price) for lot in p.lots)
                pos_rows.append(PositionRow(p.account, p.instrument, p.quantity, lots, p.realized, p.fees))
        mark_rows = []
        bar_rows: list[BarRow] = []
        if marks:
            for sym, q in self._engine.quotes.items():
                if q.bid is not None and q.ask is not None:
                    mark_rows.append(WalkState(sym, q.bid, q.ask, q.last, q.prev_close, q.volume))
            bar_rows = self._market.bar_rows(partial=partial_bars)
        self._store.write(
            meta=(
                {"counter": str(self._counter), "trade_date": self._trade_date.isoformat()}
                if marks or counter
                else {"trade_date": self._trade_date.isoformat()}
            ),
            accounts=[_account_row(a) for a in self._ledger.accounts.values()],
            positions=pos_rows,
            orders=orders,
            groups=list(self._engine.groups.values()) if groups_dirty else None,
            fills=fills,
            marks=mark_rows,
            bars=bar_rows,
        )

    def _load(self) -> None:
        assert self._store is not None
        st = self._store.load()
        # The saved counter can lag the last operations (it is saved about once a second): the
        # ids in the file say how far it really went.
        self._counter = max(int(st.meta.get("counter", "0")), _highest_id(st))
        if "trade_date" in st.meta:
            self._trade_date = date.fromisoformat(st.meta["trade_date"])
        for row in st.accounts:
            acct = self._ledger.accounts.get(row.id)
            if acct is None:
                continue  # an account no longer in the settings keeps its saved row untouched
            acct.balance = row.balance
            acct.start_of_day_balance = row.start_of_day
            acct.day_realized = row.day_realized
            acct.fees_today = row.fees_today
        for p in st.positions:
            if p.account in self._ledger.accounts:
                self._ledger.positions[(p.account, p.instrument.symbol)] = PositionState(
                    p.account, p.instrument, p.quantity, [Lot(q, px) for q, px in p.lots], p.realized, p.fees
                )
        for o in st.orders:
            self._orders[o.order_id] = o
            self._by_coid[o.client_order_id] = o.order_id
        self._engine.restore(st.working, st.groups)
        self._fills = list(st.fills)
        for m in st.marks:
            self._market.saved_marks[m.symbol] = m
            self._engine.set_quote(
                Quote(
                    symbol=m.symbol,
                    bid=m.bid,
                    ask=m.ask,
                    last=m.last,
                    prev_close=m.prev_close,
                    volume=m.volume,
                    ts=self._now(),
                )
            )


def _id_number(value: str | None) -> int:
    """The counter inside one of our ids (``PO000123`` -> 123); 0 for anything else."""
    if not value:
        return 0
    digits = value.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return int(digits) if digits.isdigit() and digits != value else 0


def _highest_id(st: StoredState) -> int:
    """The highest counter value any saved order, fill or bracket group carries."""
    numbers = [0]
    for o in st.orders:
        numbers += (_id_number(o.order_id), _id_number(o.parent_id), _id_number(o.oco_group))
    for f in st.fills:
        numbers += (_id_number(f.fill_id), _id_number(f.order_id))
    for g in st.groups:
        numbers += (_id_number(g.group_id), _id_number(g.entry_id), _id_number(g.tp_id), _id_number(g.sl_id))
    return max(numbers)


def _account_row(a: AccountState) -> AccountRow:
    return AccountRow(a.id, a.balance, a.start_of_day_balance, a.day_realized, a.fees_today)

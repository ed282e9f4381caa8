"""What tterm knows of a ProjectX login's accounts, orders, positions and trades, kept current.

Two sources feed one ordered inbox, so nothing is applied out of turn:

- user-hub events (GatewayUserAccount/Order/Position/Trade), in the order the hub sent them
  (U8: that order is not documented, so every reducer is keyed by id and order-agnostic);
- REST snapshots (Account/search, Order/search, Position/searchOpen, Trade/search), taken after
  every (re)connection of the user hub: events missed while it was down are not replayed (B11.4)
  and positions are eventually consistent (vendor-updates.md), so the snapshot is the truth.

Each change becomes core events, emitted once: an order whose state changed, a trade not seen
before (a trade made while the hub was down arrives once, from the snapshot), a position or a
balance that moved. Contract ids resolve to tterm symbols through the instrument provider
before anything is applied (a lookup may need the network, hence the inbox task).

tterm's client order id travels in ``customTag`` (unique per account). Bracket children carry no
tag: a child is linked to the entry tterm placed with brackets (same account and contract, the
other side, created with it) and named ``<entry id>:tp`` / ``:sl``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from tterm.brokers.projectx import mapping as m
from tterm.brokers.projectx.instruments import ProjectXInstruments
from tterm.brokers.projectx.rest import ProjectXRest
from tterm.core.models import (
    ZERO,
    Account,
    AccountKind,
    AccountSnapshot,
    BrokerEvent,
    Fill,
    Order,
    OrderRole,
    Position,
    Quote,
)

log = logging.getLogger(__name__)
JSON = dict[str, Any]


@dataclass
class Waiting:
    """An entry tterm sent with brackets whose children have not been seen yet."""

    client_order_id: str
    account_id: int
    contract_id: str
    side: int
    roles: set[OrderRole]
    entry_id: int | None = None


@dataclass
class Snapshot:
    """One REST picture of the login (per account)."""

    accounts: list[JSON]
    orders: dict[int, list[JSON]] = field(default_factory=dict)
    positions: dict[int, list[JSON]] = field(default_factory=dict)
    trades: dict[int, list[JSON]] = field(default_factory=dict)


class UserSync:
    """The login's entities by id and the core models they add up to."""

    def __init__(
        self,
        broker: str,
        rest: ProjectXRest,
        provider: ProjectXInstruments,
        *,
        emit: Callable[[BrokerEvent], None],
        mark: Callable[[str], Quote | None],
        now: Callable[[], datetime],
    ) -> None:
        self.broker = broker
        self._rest = rest
        self._provider = provider
        self._emit = emit
        self._mark = mark
        self._now = now
        self.accounts: dict[int, JSON] = {}
        self.orders: dict[int, JSON] = {}
        self.mapped: dict[int, Order] = {}
        self.known: dict[int, m.Known] = {}
        self.placing: dict[str, m.Known] = {}
        self.waiting: list[Waiting] = []
        self.trades: dict[int, JSON] = {}
        self.fills: dict[str, Fill] = {}
        self.positions: dict[tuple[int, str], JSON] = {}
        self.snapshots: dict[int, AccountSnapshot] = {}
        self._inbox: asyncio.Queue[tuple[str, Any, asyncio.Future[None] | None]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self.snapshots_applied = 0

    # ------------------------------------------------------------------ ids

    def account_id(self, vendor_id: int) -> str:
        return f"{self.broker}:{vendor_id}"

    def vendor(self, account: str) -> int:
        prefix = f"{self.broker}:"
        if account.startswith(prefix):
            with contextlib.suppress(ValueError):
                vid = int(account[len(prefix) :])
                if vid in self.accounts:
                    return vid
        known = ", ".join(self.account_id(a) for a in self.accounts) or "none"
        raise m.Refused(f"account {account} is not one of this ProjectX login's accounts ({known})")

    def core_accounts(self, *, is_live: bool) -> list[Account]:
        out = []
        for vid, row in sorted(self.accounts.items()):
            simulated = row.get("simulated")
            out.append(
                Account(
                    id=self.account_id(vid),
                    broker=self.broker,
                    vendor_id=str(vid),
                    name=str(row.get("name") or vid),
                    kind=AccountKind.FUTURES,
                    # B4: simulated tells sim (Combine, practice) from funded; unknown: the login's label.
                    is_live=(not simulated) if isinstance(simulated, bool) else is_live,
                )
            )
        return out

    # ------------------------------------------------------------------ the inbox

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"{self.broker}-sync")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def event(self, target: str, argument: Any) -> None:
        """A user-hub event, queued behind everything before it."""
        self._inbox.put_nowait((target, argument, None))

    async def apply_snapshot(self, snap: Snapshot, *, emit: bool = True) -> None:
        """Queue a REST snapshot and wait until it is applied."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inbox.put_nowait(("snapshot" if emit else "first-snapshot", snap, done))
        await done

    async def _run(self) -> None:
        while True:
            target, arg, done = await self._inbox.get()
            try:
                await self._apply(target, arg)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("%s: could not apply %s", self.broker, target)
                if done is not None and not done.done():
                    done.set_exception(exc)
                    done = None
            if done is not None and not done.done():
                done.set_result(None)
            self._changed.set()
            self._changed = asyncio.Event()

    async def wait_until(self, predicate: Callable[[], bool], within: float) -> bool:
        """Wait (at most ``within`` s) until ``predicate()`` holds after an applied change."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not predicate():
            left = deadline - loop.time()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._changed.wait()
        return True

    async def _apply(self, target: str, arg: Any) -> None:
        if target in ("snapshot", "first-snapshot"):
            await self._snapshot(arg, emit=target == "snapshot")
            return
        row, action = m.unwrap(arg)
        if row is None:
            return
        if target == "GatewayUserOrder":
            await self.apply_order(row)
        elif target == "GatewayUserTrade":
            await self.apply_trade(row)
        elif target == "GatewayUserPosition":
            await self.apply_position(row, deleted=action == 2)
        elif target == "GatewayUserAccount":
            self.apply_account(row)

    # ------------------------------------------------------------------ reducers

    async def _symbol(self, contract_id: Any) -> str:
        return await self._provider.symbol_for_id(str(contract_id))

    def _link(self, oid: int, row: Mapping[str, Any]) -> None:
        """Give an order its client order id: its tag, the entry it belongs to, or ``px-<id>``."""
        if oid in self.known:
            return
        tag = str(row.get("customTag") or "")
        if tag and tag in self.placing:
            self.known[oid] = self.placing.pop(tag)
            for w in self.waiting:
                if w.client_order_id == tag:
                    w.entry_id = oid
            return
        if tag:
            self.known[oid] = m.Known(client_order_id=tag)
            return
        parent = row.get("parentOrderId")  # newer gateways (PX-TS evidence file)
        for w in self.waiting:
            matches = w.account_id == m.whole(row.get("accountId")) and w.contract_id == str(row.get("contractId"))
            if not matches or m.whole(row.get("side")) == w.side or w.entry_id is None or oid < w.entry_id:
                continue
            if parent is not None and m.whole(parent) != w.entry_id:
                continue
            role = m.bracket_role(row)
            if role not in w.roles:
                continue
            w.roles.discard(role)
            entry = self.known.get(w.entry_id)
            suffix = "tp" if role is OrderRole.TAKE_PROFIT else "sl"
            self.known[oid] = m.Known(
                client_order_id=f"{w.client_order_id}:{suffix}",
                role=role,
                parent_id=str(w.entry_id),
                source=entry.source if entry is not None else m.OrderSource.API,
            )
            if not w.roles:
                self.waiting.remove(w)
            return

    async def apply_order(self, row: Mapping[str, Any], *, emit: bool = True) -> Order | None:
        oid = m.whole(row.get("id"))
        if not oid:
            return None
        symbol = await self._symbol(row.get("contractId"))
        self.orders[oid] = dict(row)
        self._link(oid, row)
        order = m.order_of(
            row,
            account=self.account_id(m.whole(row.get("accountId"))),
            symbol=symbol,
            broker=self.broker,
            known=self.known.get(oid),
        )
        before = self.mapped.get(oid)
        self.mapped[oid] = order
        if emit and (before is None or _state(before) != _state(order)):
            self._emit(order)
        return order

    async def apply_trade(self, row: Mapping[str, Any], *, emit: bool = True) -> None:
        tid = m.whole(row.get("id"))
        if not tid or tid in self.trades:
            return  # seen: from the hub and again from a snapshot, it counts once
        self.trades[tid] = dict(row)
        if row.get("voided"):
            return
        order_id = m.whole(row.get("orderId"))
        known = self.known.get(order_id)
        tag = self.orders.get(order_id, {}).get("customTag")
        coid = known.client_order_id if known is not None else (str(tag) if tag else f"px-{order_id}")
        fill = m.fill_of(
            row,
            account=self.account_id(m.whole(row.get("accountId"))),
            symbol=await self._symbol(row.get("contractId")),
            client_order_id=coid,
            broker=self.broker,
        )
        self.fills[fill.fill_id] = fill
        if emit:
            self._emit(fill)
        self._refresh_snapshot(m.whole(row.get("accountId")), emit=emit)

    async def apply_position(self, row: Mapping[str, Any], *, deleted: bool = False, emit: bool = True) -> None:
        account_id = m.whole(row.get("accountId"))
        contract_id = str(row.get("contractId"))
        key = (account_id, contract_id)
        before = self.positions.get(key)
        if deleted or m.whole(row.get("size")) == 0:
            self.positions.pop(key, None)
            row = {**row, "size": 0}
        else:
            self.positions[key] = dict(row)
        if emit and (before is None or _pos_state(before) != _pos_state(row)):
            self._emit(self.position_of(row, await self._symbol(contract_id)))
        self._refresh_snapshot(account_id, emit=emit)

    def position_of(self, row: Mapping[str, Any], symbol: str) -> Position:
        qty = m.signed_size(row)
        avg = m.dec(row.get("averagePrice")) or ZERO
        quote = self._mark(symbol)
        mark = quote.mark if quote is not None else None
        unrealized = ZERO
        inst = self._provider.by_symbol.get(symbol)
        if mark is not None and qty and inst is not None:
            point = (m.dec(inst.get("tickValue")) or ZERO) / (m.dec(inst.get("tickSize")) or Decimal(1))
            unrealized = (mark - avg) * point * qty
        return Position(
            account=self.account_id(m.whole(row.get("accountId"))),
            symbol=symbol,
            quantity=qty,
            avg_price=avg,
            mark=mark,
            unrealized_pnl=unrealized,
        )

    def apply_account(self, row: Mapping[str, Any], *, emit: bool = True) -> None:
        vid = m.whole(row.get("id"))
        if not vid:
            return
        self.accounts[vid] = {**self.accounts.get(vid, {}), **row}
        self._refresh_snapshot(vid, emit=emit)

    def _refresh_snapshot(self, vid: int, *, emit: bool) -> None:
        row = self.accounts.get(vid)
        if row is None:
            return
        account = self.account_id(vid)
        balance = m.dec(row.get("balance")) or ZERO
        # B4: no P&L endpoint. The day's realized P&L and fees add up from its trades; open P&L
        # from the positions at the last quotes.
        day = self.day_start()
        realized = fees = ZERO
        for t in self.trades.values():
            when = m.parse_time(t.get("creationTimestamp"))
            if m.whole(t.get("accountId")) != vid or t.get("voided") or (when is not None and when < day):
                continue
            realized += m.dec(t.get("profitAndLoss")) or ZERO
            fees += m.dec(t.get("fees")) or ZERO
        open_pnl = ZERO
        for (a, cid), p in self.positions.items():
            symbol = self._provider.symbol(cid)
            if a == vid and symbol is not None:
                open_pnl += self.position_of(p, symbol).unrealized_pnl
        snap = AccountSnapshot(
            account=account,
            balance=balance,
            equity=balance + open_pnl,
            day_realized_pnl=realized - fees,
            open_pnl=open_pnl,
            fees_today=fees,
            ts=self._now(),
        )
        before = self.snapshots.get(account)
        self.snapshots[account] = snap
        if emit and (before is None or (before.balance, before.equity) != (snap.balance, snap.equity)):
            self._emit(snap)

    def marks_moved(self, symbol: str) -> None:
        """A new quote: balances with open positions in ``symbol`` move with it."""
        for vid, cid in list(self.positions):
            if self._provider.symbol(cid) == symbol:
                self._refresh_snapshot(vid, emit=True)

    def day_start(self) -> datetime:
        """The trade date's start: 17:00 Chicago the evening before (CME Globex)."""
        from zoneinfo import ZoneInfo

        ct = self._now().astimezone(ZoneInfo("America/Chicago"))
        start = ct.replace(hour=17, minute=0, second=0, microsecond=0)
        if ct < start:
            start -= timedelta(days=1)
        return start

    # ------------------------------------------------------------------ snapshots

    async def load(self, account_ids: Iterable[int] | None = None) -> Snapshot:
        """Read the login's state over REST (accounts, today's orders and trades, open positions)."""
        accounts = await self._rest.accounts(only_active=True)
        snap = Snapshot(accounts=accounts)
        start = m.iso(self.day_start() - timedelta(hours=24))
        ids = list(account_ids) if account_ids is not None else [m.whole(a.get("id")) for a in accounts]
        for vid in ids:
            if not vid:
                continue
            snap.orders[vid] = await self._rest.orders(vid, start)
            snap.positions[vid] = await self._rest.positions(vid)
            snap.trades[vid] = await self._rest.trades(vid, start)
        return snap

    async def _snapshot(self, snap: Snapshot, *, emit: bool) -> None:
        for row in snap.accounts:
            self.apply_account(row, emit=False)
        for rows in snap.orders.values():
            for row in sorted(rows, key=lambda r: m.whole(r.get("id"))):
                await self.apply_order(row, emit=emit)
        for rows in snap.trades.values():
            for row in sorted(rows, key=lambda r: m.whole(r.get("id"))):
                await self.apply_trade(row, emit=emit)
        for vid, rows in snap.positions.items():
            fresh = {str(r.get("contractId")) for r in rows if m.whole(r.get("size"))}
            for (a, cid), old in list(self.positions.items()):
                if a == vid and cid not in fresh:
                    await self.apply_position({**old, "size": 0}, emit=emit)
            for row in rows:
                await self.apply_position(row, emit=emit)
        for row in snap.accounts:
            self._refresh_snapshot(m.whole(row.get("id")), emit=emit)
        self.snapshots_applied += 1

    # ------------------------------------------------------------------ lookups

    def by_client_id(self, account: str, client_order_id: str) -> Order | None:
        for order in self.mapped.values():
            if order.client_order_id == client_order_id and order.account == account:
                return order
        return None

    def net(self, account_id: int, contract_id: str) -> int:
        row = self.positions.get((account_id, contract_id))
        return m.signed_size(row) if row is not None else 0

    def core_positions(self, account: str | None) -> list[Position]:
        out = []
        for (vid, cid), row in self.positions.items():
            symbol = self._provider.symbol(cid)
            if symbol is None or (account is not None and self.account_id(vid) != account):
                continue
            out.append(self.position_of(row, symbol))
        return out


def _state(o: Order) -> tuple[object, ...]:
    return (o.status, o.quantity, o.filled_quantity, o.limit_price, o.stop_price, o.avg_fill_price,
            o.client_order_id, o.role)  # fmt: skip


def _pos_state(row: Mapping[str, Any]) -> tuple[object, ...]:
    return (m.signed_size(row), m.dec(row.get("averagePrice")))

"""What tterm knows of a Schwab login's orders, fills, positions and balances, kept by polling.

Schwab's account-activity stream is not to be trusted for order state (A8.5: undocumented payload,
"ACCT_ACTIVITY yields no responses" is a known Schwab-side issue), so order state is read from
``GET /orders`` (every account in one request) and ``GET /accounts?fields=positions``; an
account-activity message, an order command or a streamer reconnect only makes the next poll come
sooner (:meth:`OrderSync.nudge`). Polls run every ``order_poll_interval`` while an order works or
a command was sent recently, else every ``idle_poll_interval``; the requests count against the
120-a-minute data budget like any other.

Each poll replaces the picture and emits what changed, in order: orders whose state changed (ended
ones first, so a replaced order's end never lands after its replacement), then the fills of new
executions (with their fees from the day's TRADE transactions when Schwab has booked them), then
positions and balances after fills. A fill that happened while the stream or tterm was down still
arrives.

Schwab has no client order id (A4): the client order id of each order tterm placed is remembered
here (:class:`~tterm.brokers.schwab.mapping.Known`); orders placed elsewhere get
``schwab-<orderId>``. :meth:`OrderSync.match` finds the order a request became when its answer was
lost, by account, symbol, side, quantity, price and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tterm.brokers.common.clock import Clock
from tterm.brokers.schwab import mapping as m
from tterm.brokers.schwab import mapping_orders as mo
from tterm.brokers.schwab.rest import SchwabRest
from tterm.core.broker import BrokerError, LoginRequired
from tterm.core.files import open_private, private_dir
from tterm.core.models import (
    ZERO,
    Account,
    AccountSnapshot,
    BrokerEvent,
    Fill,
    Instrument,
    Notice,
    NoticeLevel,
    Order,
    OrderLeg,
    OrderRequest,
    OrderRole,
    OrderSource,
    Position,
    Side,
)
from tterm.core.redact import Redactor

log = logging.getLogger(__name__)
NEW_YORK = ZoneInfo("America/New_York")
#: A request and the order it became are matched within this long of its sending (clock skew, lag).
MATCH_SLACK = timedelta(seconds=30)
#: Failed polls in a row before the user is told (once, until one succeeds).
FAILED_POLLS = 3


@dataclass(slots=True)
class Sent:
    """A request on its way to Schwab: what :meth:`OrderSync.match` looks for."""

    request: OrderRequest
    sent_at: datetime
    symbols: tuple[str, ...]
    quantity: int
    limit: Decimal | None
    stop: Decimal | None


class KnownStore:
    """The client order ids of the orders tterm placed, kept across restarts (Schwab keeps none):
    ``<data dir>/<broker>-orders.json``, mode 0600, entries older than 60 days dropped."""

    def __init__(self, path: Path | None, clock: Clock) -> None:
        self.path = path
        self._clock = clock

    def load(self) -> dict[str, mo.Known]:
        if self.path is None:
            return {}
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            rows = doc["orders"] if doc.get("version") == 1 else {}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("the order-id file %s is unreadable (%s); starting a new one", self.path, type(exc).__name__)
            return {}
        horizon = (self._clock.now() - timedelta(days=60)).isoformat()
        out = {}
        for oid, row in rows.items():
            if not isinstance(row, dict) or str(row.get("at", "")) < horizon or not row.get("coid"):
                continue
            out[str(oid)] = mo.Known(
                client_order_id=str(row["coid"]),
                symbol=str(row.get("symbol") or ""),
                side=Side(row["side"]) if row.get("side") in ("buy", "sell") else None,
                source=OrderSource(row["source"]) if row.get("source") in set(OrderSource) else None,
                role=OrderRole(row["role"]) if row.get("role") in set(OrderRole) else None,
                at=str(row.get("at") or ""),
            )
        return out

    def save(self, known: Mapping[str, mo.Known]) -> None:
        if self.path is None:
            return
        rows = {
            oid: {
                "coid": k.client_order_id,
                "symbol": k.symbol,
                "side": k.side.value if k.side else None,
                "source": k.source.value if k.source else None,
                "role": k.role.value if k.role else None,
                "at": k.at,
            }
            for oid, k in known.items()
        }
        private_dir(self.path.parent, tighten=False)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8", opener=open_private) as fh:
                json.dump({"version": 1, "orders": rows}, fh)
            os.replace(tmp, self.path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            log.warning("could not save the order-id file %s: %s", self.path, exc.strerror or exc)


class OrderSync:
    """The login's orders and account state, by account, with the emitted picture to diff against."""

    def __init__(
        self,
        broker: str,
        rest: SchwabRest,
        *,
        clock: Clock,
        redactor: Redactor,
        emit: Callable[[BrokerEvent], None],
        resolve: Callable[[str], Instrument | None],
        strategy_name: Callable[[Sequence[tuple[OrderLeg, Instrument]]], str],
        order_poll: float,
        idle_poll: float,
        account_poll: float,
        active_after_command: float,
        known_path: Path | None = None,
    ) -> None:
        self.broker = broker
        self._rest = rest
        self._clock = clock
        self._redactor = redactor
        self._emit = emit
        self._resolve = resolve
        self._strategy_name = strategy_name
        self.order_poll = order_poll
        self.idle_poll = idle_poll
        self.account_poll = account_poll
        self.active_after_command = active_after_command
        # accounts: number <-> hash, engine ids
        self.accounts: dict[str, Account] = {}
        self.hash_of: dict[str, str] = {}  # engine account id -> hash
        self.id_of_number: dict[str, str] = {}  # account number -> engine account id
        # orders
        self.orders: dict[str, mo.Mapped] = {}
        #: Rows Schwab sent that tterm cannot read (told once each; the previous picture is kept).
        self.unreadable: set[str] = set()
        self._known_store = KnownStore(known_path, clock)
        self.known: dict[str, mo.Known] = self._known_store.load()
        self.placing: dict[str, Sent] = {}
        self.fills: dict[str, Fill] = {}
        self.positions: dict[tuple[str, str], Position] = {}
        self.snapshots: dict[str, AccountSnapshot] = {}
        self._fees: dict[tuple[str, str, int, Decimal], list[Decimal]] = {}
        self._last_command = datetime.min.replace(tzinfo=NEW_YORK)
        self._nudge = asyncio.Event()
        self._accounts_due = True
        self._last_accounts: float = 0.0
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.polls = 0

    # ------------------------------------------------------------------ accounts

    def set_accounts(
        self, numbers: Iterable[Mapping[str, Any]], prefs: Mapping[str, Any], raw: Iterable[Mapping[str, Any]]
    ) -> None:
        """Account numbers to hashes (A4: every path wants the hash), and the accounts themselves."""
        shown = {str(a.get("accountNumber")): a for a in prefs.get("accounts") or () if isinstance(a, Mapping)}
        hashes = {str(r.get("accountNumber")): str(r.get("hashValue")) for r in numbers if r.get("hashValue")}
        for row in raw:
            sec = m.obj(row.get("securitiesAccount"))
            number = str(sec.get("accountNumber") or "")
            if number not in hashes:
                continue
            acct = m.account_of(self.broker, number, shown.get(number), sec)
            self.accounts[acct.id] = acct
            self.hash_of[acct.id] = hashes[number]
            self.id_of_number[number] = acct.id
        self.apply_accounts(raw, emit=False)

    def vendor(self, account: str) -> str:
        """The hash of an engine account id; Refused names the accounts this login has."""
        h = self.hash_of.get(account)
        if h is None:
            known = ", ".join(sorted(self.hash_of)) or "none"
            raise m.Refused(f"{account} is not an account of this Schwab login (accounts: {known})")
        return h

    def held(self, account: str, symbol: str) -> int:
        p = self.positions.get((account, symbol))
        return p.quantity if p is not None else 0

    # ------------------------------------------------------------------ the poll

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"{self.broker}-order-poll")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def nudge(self, *, accounts: bool = False) -> None:
        """Poll soon (an account-activity message, a command, a reconnect)."""
        self._accounts_due = self._accounts_due or accounts
        self._nudge.set()

    def commanded(self) -> None:
        self._last_command = self._clock.now()
        self.nudge()

    def _interval(self) -> float:
        busy = any(x.order.is_open for x in self.orders.values()) or (
            (self._clock.now() - self._last_command).total_seconds() < self.active_after_command
        )
        return self.order_poll if busy else self.idle_poll

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        failed = 0
        while True:
            # Real time, not the vendor clock: this paces our own polling. (asyncio.timeout, not
            # wait_for: a wait_for whose event fires as the task is cancelled swallows the cancel.)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval()):
                    await self._nudge.wait()
            self._nudge.clear()
            try:
                await self.poll(accounts=self._accounts_due or loop.time() - self._last_accounts > self.account_poll)
            except asyncio.CancelledError:
                raise
            except LoginRequired:
                return  # the broker handles the lost login; nothing more to ask Schwab
            except Exception as exc:
                failed += 1
                text = self._redactor.scrub(str(exc)) or type(exc).__name__
                if isinstance(exc, BrokerError):
                    log.info("%s: order poll failed (%s); trying again", self.broker, text)
                else:
                    log.exception("%s: order poll failed", self.broker)
                if failed == FAILED_POLLS:
                    self.notice(
                        "warning",
                        f"Schwab order polls keep failing ({text}): order states and fills may be "
                        "late; tterm keeps trying",
                    )
                continue
            if failed >= FAILED_POLLS:
                self.notice("info", "Schwab order polls work again")
            failed = 0

    async def poll(self, *, accounts: bool = True) -> None:
        """Read orders (and, when due or after fills, accounts) and emit what changed."""
        async with self._lock:
            self.polls += 1
            now = self._clock.now()
            rows = await self._rest.orders(self._since(now), now + timedelta(minutes=1))
            await self._absorb(rows, accounts=accounts)

    async def absorb(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Order trees read back after a command, booked like a poll's."""
        async with self._lock:
            await self._absorb(rows, accounts=False)

    async def _absorb(self, rows: Sequence[Mapping[str, Any]], *, accounts: bool) -> None:
        # The fees of executions tterm has not seen are read from the day's transactions first.
        pending = {
            x.order.account
            for row in rows
            for x in self.map_root(row)
            if any(e.fill_id not in self.fills for e in x.executions)
        }
        if pending:
            await self.fetch_fees(pending)
        new_fills = self.apply_orders(rows, emit=True)
        if new_fills or accounts:
            self._accounts_due = False
            self._last_accounts = asyncio.get_running_loop().time()
            self.apply_accounts(await self._rest.accounts(), emit=True)

    def _since(self, now: datetime) -> datetime:
        """Today (New York) and every order still working from before (a GTC order filling today)."""
        midnight = datetime.combine(now.astimezone(NEW_YORK).date(), time(0, 0), NEW_YORK)
        older = [x.order.created_at for x in self.orders.values() if x.order.is_open]
        start = min([midnight, *older]) - timedelta(minutes=1)
        return max(start, now - timedelta(days=60))

    async def load(self) -> None:
        """The first picture: today's orders and any older ones still working (60 days back)."""
        now = self._clock.now()
        rows = await self._rest.orders(now - timedelta(days=60), now + timedelta(minutes=1))
        midnight = datetime.combine(now.astimezone(NEW_YORK).date(), time(0, 0), NEW_YORK)
        keep = [r for r in rows if (m.parse_time(r.get("enteredTime")) or now) >= midnight or _open(r)]
        await self._load_fees(keep)
        self.apply_orders(keep, emit=False)

    # ------------------------------------------------------------------ applying a picture

    def map_root(self, row: Mapping[str, Any]) -> list[mo.Mapped]:
        account = self.id_of_number.get(str(row.get("accountNumber") or ""))
        if account is None:
            return []
        try:
            return list(
                mo.walk_orders(
                    row,
                    broker=self.broker,
                    account=account,
                    resolve=self._resolve,
                    known=self.known.get,
                    strategy_name=self._strategy_name,
                )
            )
        except m.VendorDataError as exc:
            self._unreadable_row(f"order {str(row.get('orderId'))[:24]}", account, exc)
            return []

    def _unreadable_row(self, what: str, account: str, exc: Exception) -> None:
        """One damaged row is skipped (its last good state kept), not every poll failed for it."""
        if what in self.unreadable:
            return
        self.unreadable.add(what)
        log.warning("%s: cannot read %s from Schwab: %s", self.broker, what, exc)
        self.notice("warning", f"Schwab sent {what} tterm cannot read ({exc}); it is shown as it was", account)

    def apply_orders(self, rows: Iterable[Mapping[str, Any]], *, emit: bool) -> list[Fill]:
        """Replace the order picture with ``rows`` (GET order trees); returns the new fills."""
        changed: list[Order] = []
        fresh: list[tuple[mo.Execution, Order]] = []
        for row in rows:
            for x in self.map_root(row):
                before = self.orders.get(x.order.order_id)
                self.orders[x.order.order_id] = x
                if before is None or _state(before.order) != _state(x.order):
                    changed.append(x.order)
                fresh.extend((e, x.order) for e in x.executions if e.fill_id not in self.fills)
        fills = []
        for e, order in fresh:
            fill = mo.fill_of(e, order, self._fee(e), self.broker)
            self.fills[fill.fill_id] = fill
            fills.append(fill)
        if emit:
            for order in sorted(changed, key=lambda o: o.is_open):  # ended ones first
                self._emit(order)
            for fill in fills:
                self._emit(fill)
        return fills

    def _fee(self, e: mo.Execution) -> Decimal:
        fees = self._fees.get((e.order_id, e.symbol.strip(), e.quantity, e.price))
        return fees.pop(0) if fees else ZERO

    async def fetch_fees(self, accounts: Iterable[str]) -> None:
        """The day's TRADE transactions of these accounts: the fees of their executions (A6.4)."""
        now = self._clock.now()
        midnight = datetime.combine(now.astimezone(NEW_YORK).date(), time(0, 0), NEW_YORK)
        for account in sorted(set(accounts)):
            h = self.hash_of.get(account)
            if h is None:
                continue
            try:
                rows = await self._rest.transactions(h, midnight, now + timedelta(minutes=1))
            except BrokerError as exc:
                log.info("%s: no transactions for the fees (%s)", self.broker, self._redactor.scrub(str(exc)))
                continue
            for key, fees in m.trade_fees(rows).items():
                # Fees of executions already turned into fills are spent; keep the rest in order.
                used = sum(1 for f in self.fills.values() if (f.order_id, f.symbol.strip(), f.quantity, f.price) == key)
                self._fees[key] = fees[used:]

    async def _load_fees(self, rows: Sequence[Mapping[str, Any]]) -> None:
        accounts = {self.id_of_number.get(str(r.get("accountNumber") or "")) for r in rows if _executed(r)}
        await self.fetch_fees(a for a in accounts if a)

    def apply_accounts(self, raw: Iterable[Mapping[str, Any]], *, emit: bool) -> None:
        for row in raw:
            sec = m.obj(row.get("securitiesAccount"))
            account = self.id_of_number.get(str(sec.get("accountNumber") or ""))
            if account is None:
                continue
            try:
                positions = m.positions_of(account, sec, self._resolve)
                snap = m.snapshot_of(account, sec, positions)
            except m.VendorDataError as exc:
                self._unreadable_row(f"the positions and balances of {account}", account, exc)
                continue
            now_keys = {(p.account, p.symbol) for p in positions}
            for key in [k for k in self.positions if k[0] == account and k not in now_keys]:
                gone = self.positions.pop(key)
                if emit:
                    self._emit(Position(account=account, symbol=gone.symbol, quantity=0))
            for p in positions:
                before = self.positions.get((p.account, p.symbol))
                self.positions[(p.account, p.symbol)] = p
                if emit and (before is None or (before.quantity, before.avg_price) != (p.quantity, p.avg_price)):
                    self._emit(p)
            before_snap = self.snapshots.get(account)
            self.snapshots[account] = snap
            if emit and (
                before_snap is None
                or (before_snap.equity, before_snap.buying_power) != (snap.equity, snap.buying_power)
            ):
                self._emit(snap)

    # ------------------------------------------------------------------ lookups

    def order(self, order_id: str) -> mo.Mapped | None:
        return self.orders.get(order_id)

    def remember(self, order_id: str, known: mo.Known) -> None:
        if not known.at:
            known.at = self._clock.now().isoformat()
        self.known[order_id] = known
        self._known_store.save(self.known)

    def match(self, coid: str, rows: Iterable[Mapping[str, Any]]) -> Order | None:
        """The order a request whose answer was lost became: same account, symbols, side, quantity,
        prices, entered after it was sent (and not claimed by another request). Earliest first."""
        sent = self.placing.get(coid)
        if sent is None:
            return None
        r = sent.request
        claimed = {oid for oid, k in self.known.items() if k.client_order_id != coid}
        candidates: list[tuple[datetime, mo.Mapped]] = []
        for row in rows:
            for x in self.map_root(row):
                o = x.order
                if o.order_id in claimed or o.account != r.account or o.parent_id is not None:
                    continue
                symbols = tuple(leg.symbol for leg in o.legs) or (o.symbol,)
                if symbols != sent.symbols or o.quantity != sent.quantity or o.side is not r.side:
                    continue
                if o.limit_price != sent.limit or o.stop_price != sent.stop:
                    continue
                if o.created_at < sent.sent_at - MATCH_SLACK:
                    continue
                candidates.append((o.created_at, x))
        if not candidates:
            return None
        _, best = min(candidates, key=lambda c: c[0])
        oid = best.order.order_id
        self.remember(
            oid, mo.Known(client_order_id=coid, symbol=r.symbol if r.legs else "", side=r.side, source=r.source)
        )
        # Not stored here: the next poll books it (and its fills) like any other change.
        again = next((x for row in rows for x in self.map_root(row) if x.order.order_id == oid), None)
        return again.order if again is not None else None

    def notice(self, level: NoticeLevel, text: str, account: str = "") -> None:
        self._emit(Notice(level=level, text=text, account=account, source=self.broker))


def _state(o: Order) -> tuple[object, ...]:
    return (
        o.status,
        o.quantity,
        o.filled_quantity,
        o.limit_price,
        o.stop_price,
        o.avg_fill_price,
        o.reject_reason,
        o.client_order_id,
    )


def _open(row: Mapping[str, Any]) -> bool:
    status = m.STATUSES.get(str(row.get("status") or ""))
    if status is not None and status.is_open:
        return True
    return any(_open(c) for c in row.get("childOrderStrategies") or () if isinstance(c, Mapping))


def _executed(row: Mapping[str, Any]) -> bool:
    if row.get("orderActivityCollection"):
        return True
    return any(_executed(c) for c in row.get("childOrderStrategies") or () if isinstance(c, Mapping))

"""The in-process engine: brokers -> state, book, journal -> bus, and the EngineClient commands.

Every broker event passes through :meth:`Engine.ingest` on the event loop, in arrival order:
the engine updates its state (orders, fills, quotes, balances, connections), the book, the
registered processors (the risk monitor), the journal, and finally publishes the event on the
bus for every subscriber (the TUI bridge, the hub's remote clients). Ingest is synchronous, so
a check that runs right after an event sees the state that event produced.

Duplicate order states (an acknowledgement that arrives both as the ``place`` result and on the
stream) are published once; duplicate fills (a resync after a reconnect) are booked once.

Market data is sourced per symbol and per kind (quotes, depth, trades): the first running broker
that has the verb and trades the asset class, real brokers before paper. Subscriptions are
reference-counted, so two screens watching one ladder ask the broker once. Instruments a broker
learns are added to the master and published, so attached terminals resolve them too.

Groups (OCO, OTOCO) and brackets go to the broker natively where its capabilities say so, else
the :class:`~tterm.core.emulation.OrderEmulator` links plain orders.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tterm.core import pnl
from tterm.core.alerts.model import Alert, AlertError, AlertSpec
from tterm.core.alerts.monitor import AlertMonitor
from tterm.core.book import Book
from tterm.core.broker import Broker, BrokerError, LoginPrompt, LoginResult, NotSupported
from tterm.core.bus import Bus, Subscription
from tterm.core.client import EngineError, EngineSnapshot
from tterm.core.emulation import OrderEmulator
from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.models import (
    Account,
    AccountLock,
    AccountSnapshot,
    AssetClass,
    Bar,
    ConnectionState,
    ConnectionStatus,
    Depth,
    Fill,
    GroupKind,
    Instrument,
    InstrumentAdded,
    ModelError,
    Notice,
    OptionChain,
    Order,
    OrderGroup,
    OrderPreview,
    OrderRequest,
    OrderStatus,
    Position,
    Quote,
    RiskDecision,
    RiskStatus,
    Timeframe,
    Trade,
    utcnow,
)
from tterm.core.redact import scrub_shown
from tterm.core.router import LockCheck, PreTradeCheck, Router

if TYPE_CHECKING:
    from datetime import date

    from tterm.core.clock import CmeClock
    from tterm.core.journal import Journal
    from tterm.core.pnl import PnlReport

log = logging.getLogger(__name__)

Processor = Callable[[Any], None]
"""A synchronous hook called for every ingested event, before it is published (risk monitor)."""


#: Seconds a broker's dry run (``broker_preview``) may take before it counts as unavailable.
PREVIEW_TIMEOUT = 5.0

#: Market-data kinds the engine sources per symbol: capability flag, subscribe and unsubscribe verbs.
FEEDS: dict[str, tuple[str | None, str, str]] = {
    "quotes": (None, "subscribe_quotes", "unsubscribe_quotes"),
    "depth": ("depth", "subscribe_depth", "unsubscribe_depth"),
    "trades": ("trades", "subscribe_trades", "unsubscribe_trades"),
}


@dataclass(frozen=True, slots=True)
class AccountOptions:
    """Per-account settings from the config that the engine enforces."""

    alias: str = ""
    profile: str = ""
    max_order_qty: int | None = None


def _order_state(order: Order) -> tuple[object, ...]:
    return (
        order.status,
        order.quantity,
        order.filled_quantity,
        order.limit_price,
        order.stop_price,
        order.avg_fill_price,
        order.reject_reason,
    )


_RANK = {OrderStatus.PENDING: 0, OrderStatus.WORKING: 1, OrderStatus.PARTIALLY_FILLED: 2}


def _is_stale(prev: Order, new: Order) -> bool:
    """True if ``new`` is an older state of ``prev``'s order arriving late.

    An order only moves forward: pending -> working -> partially filled -> a final state, and its
    filled quantity never shrinks. The same order can reach us twice, out of order (the result
    of a command, then the stream's earlier updates), so an update behind the one we hold is
    dropped. Updates of equal rank (a modify while working) are ordered by ``updated_at``.
    """
    if prev.status.is_terminal:
        return True
    new_rank = (3 if new.status.is_terminal else _RANK[new.status], new.filled_quantity)
    old_rank = (_RANK[prev.status], prev.filled_quantity)
    if new_rank != old_rank:
        return new_rank < old_rank
    return new.updated_at < prev.updated_at


#: Seconds ``stop()`` waits for the brokers' already-emitted events to be ingested.
STOP_SETTLE_SECONDS = 2.0


class Engine:
    """The embedded engine; implements :class:`tterm.core.client.EngineClient`."""

    def __init__(
        self,
        *,
        brokers: Sequence[Broker],
        instruments: InstrumentMaster,
        journal: Journal,
        clock: CmeClock | None = None,
        checks: Sequence[PreTradeCheck] = (),
        account_options: Mapping[str, AccountOptions] | None = None,
        mark_interval: float = 0.25,
        reconcile_after: float = 3.0,
    ) -> None:
        names = [b.name for b in brokers]
        if len(set(names)) != len(names):
            raise EngineError(f"broker names must be unique, got {names}")
        self.brokers: dict[str, Broker] = {b.name: b for b in brokers}
        self.instruments = instruments
        self.journal = journal
        self.clock = clock
        self.bus = Bus()
        self.book = Book(instruments)
        self.processors: list[Processor] = []
        self._options = dict(account_options or {})
        self._accounts: dict[str, Account] = {}
        self._balances: dict[str, AccountSnapshot] = {}
        self._orders: dict[tuple[str, str], Order] = {}
        # The working ones, so open_orders() (run by every pre-trade check) does not scan the day.
        self._open: dict[tuple[str, str], Order] = {}
        self._fills: list[Fill] = []
        #: (account, client order id) -> quantity of its fills in the book, for the day (the hub
        #: plans an alert once the orders before it have all their fills in: SignalRouter._settle).
        self._filled: dict[tuple[str, str], int] = {}
        # Symbols each account has a book lot in (the book's insertion order), so positions(account)
        # — run by every pre-trade check and risk evaluation — builds only that account's open
        # positions. The engine is the book's only writer (fills, seeds, the day's reset).
        self._lots: dict[str, dict[str, None]] = {}
        self._fill_ids: set[tuple[str, str]] = set()
        self._quotes: dict[str, Quote] = {}
        self._connections: dict[str, ConnectionStatus] = {}
        self._locks: dict[str, AccountLock] = {}
        self._risk: dict[str, RiskStatus] = {}
        self._broker_positions: dict[tuple[str, str], tuple[Position, datetime]] = {}
        # Per feed kind: contract -> reference count, and contract -> the broker sourcing it.
        self._subs: dict[str, dict[str, int]] = {kind: {} for kind in FEEDS}
        self._sources: dict[str, dict[str, str]] = {kind: {} for kind in FEEDS}
        self._depth: dict[str, Depth] = {}
        # Contracts the engine itself watches: anything held or worked needs live marks.
        self._watched: set[str] = set()
        self._dirty_marks: set[str] = set()
        self._followups: list[Any] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._mark_interval = mark_interval
        self._reconcile_after = reconcile_after
        self._started = False
        self.router = Router(
            brokers=self.brokers,
            instruments=instruments,
            state=self,
            journal=journal,
            checks=[LockCheck(), *checks],
            now=self._now,
            emulation=True,
        )
        self.emulator = OrderEmulator(self)
        self.processors.append(self.emulator.on_event)
        self.alerts = AlertMonitor(self)
        self.processors.append(self.alerts.on_event)
        self._by_client_id: dict[tuple[str, str], tuple[str, str]] = {}
        self._awaiting_login: set[str] = set()
        self._dispatch: dict[type, Callable[[Any], bool]] = {
            Quote: self._on_quote,
            Depth: self._on_depth,
            Trade: self._on_passthrough,
            InstrumentAdded: self._on_instrument,
            Order: self._on_order,
            Fill: self._on_fill,
            Position: self._on_position,
            AccountSnapshot: self._on_balance,
            ConnectionStatus: self._on_connection,
            Notice: self._on_notice,
            AccountLock: self._on_lock,
            RiskStatus: self._on_risk_status,
            RiskDecision: self._on_passthrough,
        }

    # ================================================================== lifecycle

    async def start(self) -> None:
        """Connect every broker (one failing does not stop the others) and load their state."""
        if self._started:
            return
        self._started = True
        self._load_locks()
        self.emulator.load()
        self.alerts.load()
        for broker in self.brokers.values():
            await self._connect(broker)
        await self.alerts.start()
        await self.watch(
            {p.symbol for p in self.book.open_positions()} | {o.symbol for o in self.open_orders() if not o.legs}
        )
        self.emulator.resume()
        self._tasks.append(asyncio.create_task(self._mark_loop(), name="engine-marks"))
        if self.clock is not None:
            self._tasks.append(asyncio.create_task(self._day_loop(), name="engine-day"))

    async def _connect(self, broker: Broker) -> None:
        try:
            await broker.connect()
            accounts = await broker.accounts()
            for account in accounts:
                self._add_account(account)
            if not accounts and broker.connection_state in (ConnectionState.NEEDS_LOGIN, ConnectionState.RECONNECTING):
                # Up but waiting for a person's login (tterm login, the login dialog) or for the
                # vendor to answer: its accounts and state are loaded when it reports CONNECTED
                # (see _pump).
                self._awaiting_login.add(broker.name)
            await self._load_broker_state(broker)
        except Exception as exc:  # a broker that cannot start must not take the others down
            log.exception("broker %s failed to start", broker.name)
            self.ingest(ConnectionStatus(broker=broker.name, state=ConnectionState.DOWN, detail=str(exc)))
            self.ingest(Notice(level="error", text=f"{broker.name} did not start: {exc}", source=broker.name))
            return
        self._tasks.append(asyncio.create_task(self._pump(broker), name=f"pump-{broker.name}"))

    async def _load_broker_state(self, broker: Broker) -> None:
        """Seed the book: today's fills replayed over the overnight position the broker implies."""
        for snap in await broker.snapshots():
            self.ingest(snap)
        fills = await broker.fills()
        today: dict[tuple[str, str], int] = {}
        for fill in fills:
            today[(fill.account, fill.symbol)] = today.get((fill.account, fill.symbol), 0) + fill.signed_quantity
        for pos in await broker.positions():
            overnight = pos.quantity - today.get((pos.account, pos.symbol), 0)
            if overnight:
                self.book.seed(pos.account, pos.symbol, overnight, pos.avg_price)
                self._lots.setdefault(pos.account, {})[pos.symbol] = None
            self._broker_positions[(pos.account, pos.symbol)] = (pos, utcnow())
        for fill in fills:
            self._on_fill(fill, journal=False)
        for order in await broker.orders():
            self._orders[(order.account, order.order_id)] = order
            self._by_client_id[(order.account, order.client_order_id)] = (order.account, order.order_id)
            self._track_open((order.account, order.order_id), order)
        for (account, symbol), _ in list(self._broker_positions.items()):
            self.bus.publish(self.book.position(account, symbol))

    async def _adopt(self, broker: Broker) -> None:
        """A broker that started without a login is now logged in: its accounts join the engine
        (published, so every client lists them) and its state seeds the book."""
        for account in await broker.accounts():
            if account.id not in self._accounts:
                self._add_account(account)
                self.bus.publish(self._accounts[account.id])
        await self._load_broker_state(broker)
        mine = {a.id for a in await broker.accounts()}
        await self.watch(
            {p.symbol for a in mine for p in self.book.open_positions(a)}
            | {o.symbol for o in self.open_orders() if o.account in mine and not o.legs}
        )

    async def settle(self, within: float = 5.0) -> None:
        """Wait until every event the brokers emitted so far has been ingested.

        The pump takes an event off a broker's queue and ingests it in the same step, so an
        empty queue means everything before it is in the state (tests and one-shot CLI commands).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while any(b.pending_events for b in self.brokers.values()):
            if loop.time() > deadline:
                raise EngineError("brokers did not settle in time")
            await asyncio.sleep(0)

    async def stop(self) -> None:
        # What the brokers already emitted (a fill the moment before a quit) is ingested and
        # journaled first: cancelling the pumps now would drop it, and after a restart neither the
        # journal nor the engine would know the fill (tests/faults/test_paper_restarts.py).
        try:
            await self.settle(within=STOP_SETTLE_SECONDS)
        except EngineError as exc:
            log.warning("stopping with broker events not ingested: %s", exc)
            self.journal.record("error", {"action": "stop", "error": str(exc)})
        await self.emulator.close()
        await self.alerts.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for broker in self.brokers.values():
            try:
                await broker.close()
            except Exception as exc:
                log.exception("broker %s failed to close", broker.name)
                self.journal.record("error", {"action": "close", "broker": broker.name, "error": str(exc)})
        self.bus.close()
        self._started = False

    async def _pump(self, broker: Broker) -> None:
        async for event in broker.events():
            try:
                self.ingest(event)
                if (
                    broker.name in self._awaiting_login
                    and isinstance(event, ConnectionStatus)
                    and event.state is ConnectionState.CONNECTED
                ):
                    # Loaded here, inside the pump, so no later event of this broker overtakes it.
                    self._awaiting_login.discard(broker.name)
                    await self._adopt(broker)
            except Exception as exc:
                log.exception("ingest failed for %r", event)
                self.journal.record("error", {"action": "ingest", "broker": broker.name, "error": repr(exc)})
                self.bus.publish(Notice(level="error", text=f"engine error on {broker.name} event: {exc}"))

    # ================================================================== ingest

    def ingest(self, event: Any) -> None:
        """Apply one event to the state, the processors and the journal, then publish it."""
        handler = self._dispatch.get(type(event))
        if handler is None:
            raise EngineError(f"engine cannot ingest {type(event).__name__}")
        if type(event) is Notice or (type(event) is Order and event.reject_reason):
            event = _scrubbed(event)
        if not handler(event):
            return
        for processor in self.processors:
            processor(event)
        self.bus.publish(event)
        if self._followups:
            followups, self._followups = self._followups, []
            for follow in followups:
                for processor in self.processors:
                    processor(follow)
                self.bus.publish(follow)

    def _on_quote(self, q: Quote) -> bool:
        self._quotes[q.symbol] = q
        if self.book.mark(q):
            self._dirty_marks.add(q.symbol)
        return True

    def _on_order(self, order: Order) -> bool:
        key = (order.account, order.order_id)
        prev = self._orders.get(key)
        if prev is not None and (_order_state(prev) == _order_state(order) or _is_stale(prev, order)):
            return False
        self._orders[key] = order
        by_client = (order.account, order.client_order_id)
        held = self._orders.get(self._by_client_id.get(by_client, key))
        if order.is_open or held is None or not held.is_open or held.order_id == order.order_id:
            # A broker that replaces an order with a new one (Schwab) ends the old one: its end
            # must not hide the working replacement under the same client order id.
            self._by_client_id[by_client] = key
        self._track_open(key, order)
        self.journal.record("order_update", order, account=order.account, ref=order.client_order_id)
        return True

    def _on_depth(self, depth: Depth) -> bool:
        self._depth[depth.symbol] = depth
        return True

    def _on_instrument(self, event: InstrumentAdded) -> bool:
        """A broker learned an instrument: the master resolves it from now on; clients hear of it."""
        return self.instruments.add(event.instrument)

    def _track_open(self, key: tuple[str, str], order: Order) -> None:
        if order.is_open:
            self._open[key] = order
        else:
            self._open.pop(key, None)

    def _on_fill(self, fill: Fill, *, journal: bool = True) -> bool:
        key = (fill.broker, fill.fill_id)
        if key in self._fill_ids:
            return False
        self._fill_ids.add(key)
        self._fills.append(fill)
        by_order = (fill.account, fill.client_order_id)
        self._filled[by_order] = self._filled.get(by_order, 0) + fill.quantity
        if journal:
            self.journal.record("fill", fill, account=fill.account, ref=fill.client_order_id)
        position = self.book.apply_fill(fill)
        self._lots.setdefault(fill.account, {})[fill.symbol] = None
        self._dirty_marks.discard(fill.symbol)
        # Published right behind the fill so every subscriber sees the position it produced.
        self._followups.append(position)
        return True

    def _on_position(self, pos: Position) -> bool:
        """A broker-reported position: kept for reconciliation, the book stays the P&L source."""
        self._broker_positions[(pos.account, pos.symbol)] = (pos, utcnow())
        return False

    def _on_balance(self, snap: AccountSnapshot) -> bool:
        self._balances[snap.account] = snap
        return True

    def _on_connection(self, status: ConnectionStatus) -> bool:
        prev = self._connections.get(status.broker)
        self._connections[status.broker] = status
        if prev is None or prev.state is not status.state or prev.detail != status.detail:
            self.journal.record("connection", status, ref=status.broker)
        return True

    def _on_notice(self, notice: Notice) -> bool:
        self.journal.record("notice", notice, account=notice.account, ref=notice.source)
        return True

    def _on_lock(self, lock: AccountLock) -> bool:
        self._locks[lock.account] = lock
        self._save_locks()
        self.journal.record("lock", lock, account=lock.account, ref=lock.by)
        return True

    def _on_risk_status(self, status: RiskStatus) -> bool:
        self._risk[status.account] = status
        return True

    def _on_passthrough(self, event: Any) -> bool:
        return True

    # ================================================================== StateView (for the router)

    def account(self, account_id: str) -> Account | None:
        return self._accounts.get(account_id)

    def account_ids(self) -> list[str]:
        return list(self._accounts)

    def quote(self, symbol: str) -> Quote | None:
        return self._quotes.get(symbol)

    def position(self, account: str, symbol: str) -> Position:
        return self.book.position(account, symbol)

    def positions(self, account: str) -> list[Position]:
        """The account's open positions (as ``book.open_positions(account)``, without building a
        Position for every flat lot of every account)."""
        book = self.book
        return [book.position(account, s) for s in self._lots.get(account, ()) if book.quantity(account, s)]

    def open_orders(self, account: str | None = None) -> list[Order]:
        return [o for o in self._open.values() if account is None or o.account == account]

    def lock_for(self, account: str) -> AccountLock | None:
        lock = self._locks.get(account)
        if lock is not None and lock.until is not None and lock.until <= self._now():
            return None
        return lock

    def max_order_qty(self, account: str) -> int | None:
        opts = self._options.get(account)
        return opts.max_order_qty if opts else None

    def balance(self, account: str) -> AccountSnapshot | None:
        return self._balances.get(account)

    def filled_in_book(self, account: str, client_order_id: str) -> int:
        """How much of the order placed with ``client_order_id`` the book holds fills for (today)."""
        return self._filled.get((account, client_order_id), 0)

    def order_by_client_id(self, account: str, client_order_id: str) -> Order | None:
        """The latest state of the order placed with ``client_order_id`` (the emulator's lookup)."""
        key = self._by_client_id.get((account, client_order_id))
        return self._orders.get(key) if key is not None else None

    def native_oco(self, account: str) -> bool:
        broker = self._broker_of(account)
        return broker.capabilities.oco

    def depth(self, symbol: str) -> Depth | None:
        return self._depth.get(symbol)

    def subscriptions(self, kind: str = "quotes") -> dict[str, int]:
        """Contract -> number of subscribers, for one feed kind (quotes, depth, trades)."""
        return dict(self._subs[kind])

    def feed_source(self, contract: str, kind: str = "quotes") -> str | None:
        """The broker a contract's feed of ``kind`` comes from (None: not subscribed)."""
        return self._sources[kind].get(contract)

    @property
    def accounts(self) -> list[Account]:
        return list(self._accounts.values())

    # ================================================================== EngineClient

    async def snapshot(self) -> EngineSnapshot:
        return EngineSnapshot(
            accounts=tuple(self._accounts.values()),
            balances=tuple(self._balances.values()),
            positions=tuple(self.book.positions()),
            orders=tuple(self._orders.values()),
            fills=tuple(self._fills),
            quotes=tuple(self._quotes.values()),
            connections=tuple(self._connections.values()),
            locks=tuple(lock for a in self._locks if (lock := self.lock_for(a)) is not None),
            risk=tuple(self._risk.values()),
            is_live=any(b.is_live for b in self.brokers.values()),
            instruments=tuple(self.instruments.learned),
            alerts=tuple(self.alerts.list()),
        )

    def events(self, name: str = "client") -> Subscription:
        return self.bus.subscribe(name)

    def instrument(self, symbol: str) -> Instrument:
        return self.instruments.resolve(symbol)

    async def preview(self, request: OrderRequest) -> RiskDecision:
        _, decision = self.router.prepare(request)
        return decision

    async def broker_preview(self, request: OrderRequest) -> OrderPreview:
        """The broker's own check of an order tterm's checks allow (Schwab's previewOrder): cost,
        buying power after, the broker's rejects. Nothing is placed; EngineError when tterm refuses
        the order itself or the broker has no previews. Every answer and failure is journaled
        (``broker_preview``, ref the client order id) so what the user was shown can be traced."""
        normalised, decision = self.router.prepare(request)
        if not decision.allowed:
            raise EngineError(f"preview refused: {decision.reason}")
        broker = self._broker_of(normalised.account)
        account, ref = normalised.account, normalised.client_order_id
        try:
            async with asyncio.timeout(PREVIEW_TIMEOUT):
                preview = await broker.preview_order(normalised)
        except NotSupported as exc:
            raise EngineError(str(exc)) from None
        except TimeoutError:
            why = f"no answer in {PREVIEW_TIMEOUT:g} s"
            self.journal.record("broker_preview", {"broker": broker.name, "symbol": normalised.symbol,
                                                   "error": why}, account=account, ref=ref)  # fmt: skip
            raise EngineError(f"preview at {broker.name} failed: {why}") from None
        except BrokerError as exc:
            self.journal.record("broker_preview", {"broker": broker.name, "symbol": normalised.symbol,
                                                   "error": str(exc)}, account=account, ref=ref)  # fmt: skip
            raise EngineError(f"preview at {broker.name} failed: {exc}") from None
        self.journal.record("broker_preview", preview, account=account, ref=ref)
        return preview

    async def place(self, request: OrderRequest) -> Order:
        symbols = [leg.symbol for leg in request.legs] or [request.symbol]
        for sym in symbols:
            try:
                await self.find_instrument(sym)
                await self.watch([sym])
            except (ModelError, EngineError):
                pass  # an unknown symbol: the router rejects it with the reason
        if request.bracket is not None and not request.legs and self._needs_bracket_emulation(request.account):
            orders = await self._emulated_bracket(request)
            return orders[0]
        order = await self.router.place(request)
        self.ingest(order)
        return order

    def _needs_bracket_emulation(self, account: str) -> bool:
        acct = self._accounts.get(account)
        broker = self.brokers.get(acct.broker) if acct is not None else None
        return broker is not None and not broker.capabilities.brackets

    async def _emulated_bracket(self, request: OrderRequest) -> list[Order]:
        normalised, decision = self.router.prepare(request)
        self.journal.record("order_request", request, account=request.account, ref=request.client_order_id)
        self.journal.record("risk_decision", decision, account=request.account, ref=request.client_order_id)
        if not decision.allowed:
            order = self.router.local_reject(normalised, decision.reason)
            self.ingest(order)
            return [order]
        return await self.emulator.start_bracket(normalised, group_id="tb" + request.client_order_id)

    async def preview_group(self, group: OrderGroup) -> RiskDecision:
        _, decision = self.router.prepare_group(group)
        return decision

    async def place_group(self, group: OrderGroup) -> list[Order]:
        """OCO/OTOCO: checked as one, then sent natively or linked by the emulator."""
        for order in group.orders:
            with contextlib.suppress(ModelError, EngineError):
                await self.watch([order.symbol])
        self.journal.record(
            "group_request",
            {"group": group.group_id, "kind": group.kind.value, "orders": list(group.orders)},
            account=group.account,
            ref=group.group_id,
        )
        prepared, decision = self.router.prepare_group(group)
        self.journal.record("risk_decision", decision, account=group.account, ref=group.group_id)
        if not decision.allowed:
            orders = [self.router.local_reject(o, decision.reason) for o in group.orders]
            for o in orders:
                self.ingest(o)
            return orders
        broker = self._broker_of(group.account)
        native = broker.capabilities.oco if group.kind is GroupKind.OCO else broker.capabilities.otoco
        if native:
            orders = await self.router.send_group(prepared)
            for o in orders:
                self.ingest(o)
            return orders
        return await self.emulator.start(prepared)

    async def find_instrument(self, symbol: str) -> Instrument:
        """The master's instrument, else the first broker that can look ``symbol`` up."""
        try:
            return self.instruments.resolve(symbol)
        except UnknownSymbol as exc:
            original = exc
        for broker in self.brokers.values():
            try:
                found = await broker.lookup_instrument(symbol)
            except BrokerError as exc:
                log.warning("instrument lookup of %s at %s failed: %s", symbol, broker.name, exc)
                continue
            if found is not None:
                self.ingest(InstrumentAdded(instrument=found, broker=broker.name))
                return self.instruments.resolve(found.symbol)
        raise original

    # ------------------------------------------------------------------ market data (capability-gated)

    def _md_broker(self, inst: Instrument, capability: str, verb: str) -> Broker:
        """The broker to ask for ``verb`` on ``inst``: the quote source when it has the verb, else
        the first running broker that has it; EngineError names why none can."""
        source = self._sources["quotes"].get(inst.symbol)
        ordered = sorted(self.brokers.values(), key=lambda b: (b.name != source, b.name == "paper"))
        having = [b for b in ordered if getattr(b.capabilities, capability)]
        if not having:
            names = ", ".join(b.name for b in ordered) or "no broker"
            raise EngineError(f"not supported by {names}: {verb}")
        for broker in having:
            if not self._trades_class(broker, inst):
                continue
            state = self._connections.get(broker.name)
            if state is None or state.state not in (ConnectionState.DOWN, ConnectionState.NEEDS_LOGIN):
                return broker
        raise EngineError(
            f"no running broker offers {verb} for {inst.symbol} "
            f"({', '.join(b.name for b in having)} would, but is down or does not trade {inst.asset_class.value}s)"
        )

    @staticmethod
    def _trades_class(broker: Broker, inst: Instrument) -> bool:
        caps = broker.capabilities
        return {
            AssetClass.FUTURE: caps.futures,
            AssetClass.EQUITY: caps.equities,
            AssetClass.OPTION: caps.options,
        }[inst.asset_class]

    async def bars(self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime | None = None) -> list[Bar]:
        inst = await self._resolve_for(symbol)
        if end is not None and end <= start:
            raise EngineError(f"bars: the end ({end:%Y-%m-%d %H:%M}) must be after the start ({start:%Y-%m-%d %H:%M})")
        if start.tzinfo is None:
            raise EngineError("bars: start must be timezone-aware")
        broker = self._md_broker(inst, "bars", "bars")
        if timeframe not in broker.capabilities.timeframes:
            have = ", ".join(tf.value for tf in Timeframe if tf in broker.capabilities.timeframes) or "none"
            raise EngineError(f"not supported by {broker.name}: {timeframe.value} bars (it has {have})")
        try:
            return await broker.bars(inst.symbol, timeframe, start, end)
        except BrokerError as exc:
            raise EngineError(f"bars of {inst.symbol} from {broker.name}: {exc}") from None

    async def subscribe_depth(self, symbols: Iterable[str]) -> list[str]:
        return await self._subscribe_feed("depth", symbols)

    async def unsubscribe_depth(self, symbols: Iterable[str]) -> None:
        await self._unsubscribe_feed("depth", symbols)

    async def subscribe_trades(self, symbols: Iterable[str]) -> list[str]:
        return await self._subscribe_feed("trades", symbols)

    async def unsubscribe_trades(self, symbols: Iterable[str]) -> None:
        await self._unsubscribe_feed("trades", symbols)

    async def _subscribe_feed(self, kind: str, symbols: Iterable[str]) -> list[str]:
        insts = [await self._resolve_for(sym) for sym in symbols]
        capability = FEEDS[kind][0]
        assert capability is not None
        for inst in insts:  # refuse before changing anything
            if self._subs[kind].get(inst.symbol, 0) == 0:
                self._md_broker(inst, capability, kind)
        contracts = [inst.symbol for inst in insts]
        await self._source(kind, contracts, +1)
        for contract in contracts:  # a second screen on a running feed gets the current picture
            latest = self._depth.get(contract) if kind == "depth" else None
            if latest is not None:
                self.bus.publish(latest)
        return contracts

    async def _unsubscribe_feed(self, kind: str, symbols: Iterable[str]) -> None:
        await self._source(kind, [self.instruments.resolve(sym).symbol for sym in symbols], -1)

    async def _resolve_for(self, symbol: str) -> Instrument:
        try:
            return await self.find_instrument(symbol)
        except UnknownSymbol as exc:
            raise EngineError(str(exc)) from None

    async def option_chain(self, underlying: str, expiry: date | None = None) -> OptionChain:
        inst = await self._resolve_for(underlying)
        if inst.asset_class is AssetClass.OPTION:
            raise EngineError(f"{inst.symbol} is an option; ask for the chain of its underlying {inst.underlying}")
        probe = Instrument(
            symbol=inst.symbol, asset_class=AssetClass.OPTION, tick_size=inst.tick_size, tick_value=inst.tick_value
        )
        broker = self._md_broker(probe, "option_chain", "option chains")
        try:
            chain = await broker.option_chain(inst.symbol, expiry)
        except NotSupported as exc:
            raise EngineError(str(exc)) from None
        except BrokerError as exc:
            raise EngineError(f"option chain of {inst.symbol} from {broker.name}: {exc}") from None
        for row in chain.rows:
            for q in (row.call, row.put):
                if q is not None:
                    self.ingest(InstrumentAdded(instrument=q.instrument, broker=broker.name))
        return chain

    async def search_instruments(self, text: str, limit: int = 20) -> list[Instrument]:
        text = text.strip()
        if not text:
            raise EngineError("search: give some text to look for")
        found = {i.symbol: i for i in self.instruments.search(text, limit)}
        for broker in self.brokers.values():
            if not broker.capabilities.search:
                continue
            try:
                hits = await broker.search_instruments(text, limit)
            except BrokerError as exc:
                self.ingest(Notice(level="warning", text=f"search at {broker.name} failed: {exc}", source=broker.name))
                continue
            for inst in hits:
                if inst.symbol not in found:
                    found[inst.symbol] = inst
                    self.ingest(InstrumentAdded(instrument=inst, broker=broker.name))
        return list(found.values())[:limit]

    # ------------------------------------------------------------------ price alerts

    async def add_alert(self, spec: AlertSpec, replaces: int | None = None, *, source: str = "") -> Alert:
        try:
            return await self.alerts.add(spec, source=source, replaces=replaces)
        except AlertError as exc:
            raise EngineError(str(exc)) from None

    async def list_alerts(self) -> list[Alert]:
        return self.alerts.list()

    async def remove_alert(self, alert_id: int) -> Alert:
        try:
            return await self.alerts.remove(alert_id)
        except AlertError as exc:
            raise EngineError(str(exc)) from None

    # ------------------------------------------------------------------ P&L history

    async def pnl_history(self, days: int = 30, account: str | None = None) -> PnlReport:
        if (
            account is not None
            and account not in self._accounts
            and not self.journal.entries(kind="fill", account=account, limit=1)
        ):
            known = ", ".join(self._accounts) or "none"
            raise EngineError(f"pnl: unknown account {account!r} (accounts: {known})")
        today = self.clock.trade_date() if self.clock is not None else utcnow().date()
        trade_date = self.clock.trade_date if self.clock is not None else (lambda ts: ts.date())
        try:
            return pnl.history(self.journal, self.instruments.resolve, trade_date, today, days=days, account=account)
        except ValueError as exc:
            raise EngineError(f"pnl: {exc}") from None

    # ------------------------------------------------------------------ interactive login

    async def login_start(self, broker: str) -> LoginPrompt:
        b = self.brokers.get(broker)
        if b is None:
            raise EngineError(f"no broker named {broker!r} (brokers: {', '.join(self.brokers) or 'none'})")
        flow = b.login_flow()
        if flow is None:
            raise EngineError(f"{broker} needs no interactive login: tterm logs in with its stored credentials")
        prompt = flow.start()
        self.journal.record("login", {"broker": broker, "step": "start"}, ref=broker)
        return prompt

    async def login_complete(self, broker: str, prompt: LoginPrompt, pasted_url: str) -> LoginResult:
        b = self.brokers.get(broker)
        flow = b.login_flow() if b is not None else None
        if b is None or flow is None:
            raise EngineError(f"{broker} has no interactive login")
        if prompt.broker != broker:
            raise EngineError(f"that login was started for {prompt.broker}, not {broker}")
        try:
            result = await flow.complete(prompt, pasted_url)
        except BrokerError as exc:
            self.journal.record("login", {"broker": broker, "step": "refused", "error": str(exc)}, ref=broker)
            raise EngineError(f"login to {broker} refused: {exc}") from None
        self.journal.record(
            "login",
            {
                "broker": broker,
                "step": "done",
                "expires_at": result.expires_at.isoformat() if result.expires_at else None,
            },
            ref=broker,
        )
        return result

    async def cancel(self, account: str, order_id: str) -> Order:
        order = self._open_order(account, order_id)
        self.journal.record("cancel_request", {"order_id": order_id}, account=account, ref=order.client_order_id)
        if self.emulator.holds(order_id):
            return self.emulator.cancel_held(order)
        broker = self._broker_of(account)
        self.journal.flush()
        try:
            result = await broker.cancel(account, order_id)
        except BrokerError as exc:
            self.journal.record("error", {"action": "cancel", "order_id": order_id, "error": str(exc)}, account=account)
            raise EngineError(f"cancel of order {order_id} failed: {exc}") from exc
        self.ingest(result)
        return result

    async def cancel_all(self, account: str | None = None, symbol: str | None = None) -> list[Order]:
        if account is not None:
            self._known_account(account)
        contract = self.instruments.resolve(symbol).symbol if symbol else None
        targets = [o for o in self.open_orders(account) if contract is None or o.symbol == contract]
        results = await asyncio.gather(*(self.cancel(o.account, o.order_id) for o in targets), return_exceptions=True)
        done: list[Order] = []
        for order, result in zip(targets, results, strict=True):
            if isinstance(result, BaseException):
                self.ingest(Notice(level="error", text=f"cancel {order.order_id}: {result}", account=order.account))
            else:
                done.append(result)
        return done

    async def modify(
        self,
        account: str,
        order_id: str,
        *,
        quantity: int | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> Order:
        order = self._open_order(account, order_id)
        if self.emulator.holds(order_id):
            raise EngineError(
                f"order {order_id} is an exit tterm holds until its entry fills; cancel it and place a new one"
            )
        if order.legs:
            raise EngineError(f"order {order_id} is a multi-leg order: cancel it and send a new one")
        if quantity is None and limit_price is None and stop_price is None:
            raise EngineError("modify needs a new quantity, limit price or stop price")
        if quantity is not None and quantity <= order.filled_quantity:
            raise EngineError(f"new quantity {quantity} must be above the {order.filled_quantity} already filled")
        if limit_price is not None and not order.order_type.needs_limit:
            raise EngineError(f"a {order.order_type.value} order has no limit price to change")
        if stop_price is not None and not order.order_type.needs_stop:
            raise EngineError(f"a {order.order_type.value} order has no stop price to change")
        would_be = OrderRequest(
            account=account,
            symbol=order.symbol,
            side=order.side,
            quantity=(quantity if quantity is not None else order.quantity) - order.filled_quantity,
            order_type=order.order_type,
            limit_price=limit_price if limit_price is not None else order.limit_price,
            stop_price=stop_price if stop_price is not None else order.stop_price,
            tif=order.tif,
            client_order_id=order.client_order_id,
            source=order.source,
            reduce_only=order.role is not order.role.ENTRY,
        )
        self.journal.record(
            "modify_request",
            {
                "order_id": order_id,
                "quantity": quantity,
                "limit_price": limit_price,
                "stop_price": stop_price,
            },
            account=account,
            ref=order.client_order_id,
        )
        normalised, decision = self.router.prepare(would_be)
        self.journal.record("risk_decision", decision, account=account, ref=order.client_order_id)
        if not decision.allowed:
            raise EngineError(f"modify refused: {decision.reason}")
        broker = self._broker_of(account)
        self.journal.flush()
        try:
            result = await broker.modify(
                account,
                order_id,
                quantity=quantity,
                limit_price=normalised.limit_price if limit_price is not None else None,
                stop_price=normalised.stop_price if stop_price is not None else None,
            )
        except BrokerError as exc:
            self.journal.record("error", {"action": "modify", "order_id": order_id, "error": str(exc)}, account=account)
            raise EngineError(f"modify of order {order_id} failed: {exc}") from exc
        self.ingest(result)
        return result

    async def flatten(self, account: str | None = None, symbol: str | None = None) -> list[Order]:
        """Cancel working orders and close positions; ``account`` None is the kill switch."""
        if account is not None:
            self._known_account(account)
        contract = self.instruments.resolve(symbol).symbol if symbol else None
        scope = [account] if account is not None else list(self._accounts)
        self.journal.record(
            "flatten",
            {
                "scope": account or "ALL",
                "symbol": contract,
                "positions": [p for a in scope for p in self.book.open_positions(a)],
                "open_orders": [o.order_id for o in self.open_orders(account)],
            },
            account=account or "",
        )
        self.journal.flush()
        results = await asyncio.gather(*(self._flatten_one(a, contract) for a in scope), return_exceptions=True)
        orders: list[Order] = []
        failures: list[str] = []
        for acct, result in zip(scope, results, strict=True):
            if isinstance(result, BaseException):
                failures.append(f"{acct}: {result}")
                self.journal.record("error", {"action": "flatten", "error": str(result)}, account=acct)
                self.ingest(Notice(level="error", text=f"flatten {acct} failed: {result}", account=acct))
            else:
                orders.extend(result)
        if failures and account is not None:
            raise EngineError("flatten failed: " + "; ".join(failures))
        return orders

    async def _flatten_one(self, account: str, symbol: str | None) -> list[Order]:
        broker = self._broker_of(account)
        orders = await broker.flatten(account, symbol)
        for order in orders:
            self.ingest(order)
        return orders

    async def subscribe(self, symbols: Iterable[str]) -> list[str]:
        resolved = [(await self._resolve_for(sym)).symbol for sym in symbols]
        await self._source("quotes", resolved, +1)
        return resolved

    async def watch(self, symbols: Iterable[str]) -> None:
        """Stream quotes for ``symbols`` for the engine's own use (marks, pre-trade checks).

        Engine-watched contracts stay subscribed whatever clients do; placing an order watches
        its symbol, so the checks see a market from the first order on.
        """
        new = []
        for sym in symbols:
            contract = self.instruments.resolve(sym).symbol
            if contract not in self._watched:
                self._watched.add(contract)
                new.append(contract)
        if new:
            await self._source("quotes", new, +1)

    async def _source(self, kind: str, contracts: list[str], delta: int) -> None:
        """Reference-count one feed kind; the first reference subscribes at the chosen broker."""
        capability, sub_verb, unsub_verb = FEEDS[kind]
        subs, sources = self._subs[kind], self._sources[kind]
        by_broker: dict[str, list[str]] = {}
        for contract in contracts:
            count = subs.get(contract, 0)
            if delta > 0:
                subs[contract] = count + 1
                if count == 0:
                    inst = self.instruments.resolve(contract)
                    source = self._pick_source(inst, capability)
                    if source is not None:
                        sources[contract] = source
                        by_broker.setdefault(source, []).append(contract)
            elif count <= 1:
                subs.pop(contract, None)
                source = sources.pop(contract, None)
                if source is not None:
                    by_broker.setdefault(source, []).append(contract)
            else:
                subs[contract] = count - 1
        for name, syms in by_broker.items():
            verb = sub_verb if delta > 0 else unsub_verb
            try:
                await getattr(self.brokers[name], verb)(syms)
            except BrokerError as exc:
                what = kind if delta > 0 else f"unsubscribe {kind}"
                self.ingest(Notice(level="error", text=f"{what} from {name} for {', '.join(syms)}: {exc}"))

    async def unsubscribe(self, symbols: Iterable[str]) -> None:
        await self._source("quotes", [self.instruments.resolve(sym).symbol for sym in symbols], -1)

    async def lock(self, account: str | None, reason: str, *, by: str = "user") -> list[AccountLock]:
        """Lock accounts until the next session opens; a lock is never loosened early."""
        if account is not None:
            self._known_account(account)
        until = self._next_session_start()
        locks = []
        for acct in [account] if account is not None else list(self._accounts):
            existing = self.lock_for(acct)
            if (
                existing is not None
                and existing.locked
                and (existing.until is None or (until is not None and existing.until >= until))
            ):
                locks.append(existing)
                continue
            lock = AccountLock(account=acct, locked=True, reason=reason or "locked by user", until=until, by=by)
            self.ingest(lock)
            locks.append(lock)
        return locks

    # ================================================================== internals

    def _add_account(self, account: Account) -> None:
        broker = self.brokers.get(account.broker)
        if broker is not None and broker.capabilities.previews != account.previews:
            account = replace(account, previews=broker.capabilities.previews)
        opts = self._options.get(account.id)
        if opts is not None:
            account = replace(
                account,
                name=opts.alias or account.name,
                profile=opts.profile or account.profile,
            )
        self._accounts[account.id] = account

    def _known_account(self, account: str) -> Account:
        acct = self._accounts.get(account)
        if acct is None:
            known = ", ".join(self._accounts) or "none"
            raise EngineError(f"unknown account {account!r} (accounts: {known})")
        return acct

    def _broker_of(self, account: str) -> Broker:
        acct = self._known_account(account)
        broker = self.brokers.get(acct.broker)
        if broker is None:
            raise EngineError(f"broker {acct.broker} of account {account} is not running")
        return broker

    def _open_order(self, account: str, order_id: str) -> Order:
        self._known_account(account)
        order = self._orders.get((account, order_id))
        if order is None:
            raise EngineError(f"no order {order_id} in account {account}")
        if not order.is_open:
            raise EngineError(f"order {order_id} is already {order.status.value.replace('_', ' ')}")
        return order

    def _pick_source(self, inst: Instrument, capability: str | None) -> str | None:
        """The broker for a feed: the symbol's quote source when it has the feed, else the first
        running broker (config order, paper last) that trades the asset class and has it."""
        quote_source = self._sources["quotes"].get(inst.symbol)
        ordered = sorted(self.brokers.values(), key=lambda b: (b.name != quote_source, b.name == "paper"))
        for broker in ordered:
            if not self._trades_class(broker, inst):
                continue
            if capability is not None and not getattr(broker.capabilities, capability):
                continue
            state = self._connections.get(broker.name)
            if state is None or state.state not in (ConnectionState.DOWN, ConnectionState.NEEDS_LOGIN):
                return broker.name
        return None

    def _now(self) -> datetime:
        return self.clock.now() if self.clock is not None else utcnow()

    def _next_session_start(self) -> datetime | None:
        """When the next session opens: locks last until then, and the trading day turns."""
        if self.clock is None:
            return None
        return self.clock.next_open(self.clock.now())

    def _save_locks(self) -> None:
        self.journal.set_state(
            "engine.locks",
            {
                a: {
                    "locked": lock.locked,
                    "reason": lock.reason,
                    "until": lock.until.isoformat() if lock.until else None,
                    "by": lock.by,
                }
                for a, lock in self._locks.items()
            },
        )

    def _load_locks(self) -> None:
        saved = self.journal.get_state("engine.locks", {}) or {}
        now = self._now()
        for account, data in saved.items():
            until = datetime.fromisoformat(data["until"]) if data.get("until") else None
            if until is not None and until <= now:
                continue
            self._locks[account] = AccountLock(
                account=account,
                locked=data["locked"],
                reason=data.get("reason", ""),
                until=until,
                by=data.get("by", ""),
            )

    async def _mark_loop(self) -> None:
        """Publish mark-to-market positions for symbols whose marks moved, and reconcile."""
        while True:
            await asyncio.sleep(self._mark_interval)
            self.publish_marks()
            self.publish_connection_ages()
            self.reconcile()

    def publish_connection_ages(self) -> None:
        """Re-publish a connection whose broker heard from its vendor since the last status, so
        clients can show the age of the last message (not journaled: the state did not change)."""
        for name, broker in self.brokers.items():
            status = self._connections.get(name)
            seen = broker.last_message_at
            if status is not None and seen is not None and seen != status.last_message_at:
                status = replace(status, last_message_at=seen)
                self._connections[name] = status
                self.bus.publish(status)

    def publish_marks(self) -> None:
        dirty, self._dirty_marks = self._dirty_marks, set()
        for symbol in dirty:
            for account in self.book.accounts_holding(symbol):
                pos = self.book.position(account, symbol)
                for processor in self.processors:
                    processor(pos)
                self.bus.publish(pos)

    def reconcile(self) -> None:
        """Adopt the broker's position when it has disagreed with the book for a while."""
        now = utcnow()
        for (account, symbol), (pos, seen) in list(self._broker_positions.items()):
            ours = self.book.quantity(account, symbol)
            if ours == pos.quantity:
                continue
            if (now - seen).total_seconds() < self._reconcile_after:
                continue
            self.book.seed(account, symbol, pos.quantity, pos.avg_price)
            self._lots.setdefault(account, {})[symbol] = None
            self._broker_positions[(account, symbol)] = (pos, now)
            self.ingest(
                Notice(
                    level="warning",
                    text=(
                        f"position mismatch in {account} {symbol}: tterm had {ours:+d}, broker reports "
                        f"{pos.quantity:+d}; adopted the broker's position"
                    ),
                    account=account,
                    source="reconcile",
                )
            )
            self.bus.publish(self.book.position(account, symbol))

    async def _day_loop(self) -> None:
        """At each session open: new trading day for the book; expired locks drop."""
        assert self.clock is not None
        while True:
            start = self._next_session_start()
            if start is None:
                return
            await asyncio.sleep(max(1.0, (start - self.clock.now()).total_seconds()))
            self.new_trading_day()

    def new_trading_day(self) -> None:
        self.book.reset_day()
        # The book forgot its flat lots: so do we (a later fill adds them back at the end, as there).
        for account, symbols in self._lots.items():
            for symbol in [s for s in symbols if self.book.quantity(account, s) == 0]:
                del symbols[symbol]
        self._fills = []
        self._filled = {}
        self._orders = {k: o for k, o in self._orders.items() if o.is_open}
        for account, lock in list(self._locks.items()):
            if lock.until is not None and lock.until <= self._now():
                del self._locks[account]
                self.ingest(AccountLock(account=account, locked=False, reason="new session", by="engine"))
        self.ingest(Notice(level="info", text="new trading day", source="engine"))


def _scrubbed(event: Notice | Order) -> Notice | Order:
    """A notice or a rejected order with registered secrets masked in its text (any adapter's)."""
    if isinstance(event, Notice):
        text = scrub_shown(event.text)
        return event if text == event.text else replace(event, text=text)
    reason = scrub_shown(event.reject_reason)
    return event if reason == event.reject_reason else replace(event, reject_reason=reason)

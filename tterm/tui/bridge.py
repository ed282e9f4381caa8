"""The TUI's only seam to the engine: an EngineClient, one event stream, and the screen's state.

The app calls :meth:`Bridge.drain` once per frame. Quotes arrive coalesced (latest per symbol);
order, fill, position and balance events arrive complete and in order. :class:`ScreenState`
applies them and reports what changed (:class:`Changes`), so each widget redraws only its part.
No Textual here: the bridge is plain Python and is unit-tested on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tterm.core.alerts.model import Alert, AlertFired, AlertState
from tterm.core.client import EngineClient, EngineSnapshot, EventStream
from tterm.core.instruments import UnknownSymbol
from tterm.core.models import (
    Account,
    AccountLock,
    AccountSnapshot,
    ConnectionStatus,
    Depth,
    Fill,
    Instrument,
    ModelError,
    Notice,
    Order,
    OrderStatus,
    Position,
    Quote,
    RiskDecision,
    RiskStatus,
    Trade,
)


@dataclass(slots=True)
class Changes:
    """What one drain changed; widgets look only at their own part."""

    quotes: dict[str, Quote] = field(default_factory=dict)
    orders: list[Order] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    positions: bool = False
    balances: bool = False
    connections: bool = False
    locks: list[AccountLock] = field(default_factory=list)
    risk: bool = False
    accounts: bool = False
    notices: list[Notice] = field(default_factory=list)
    decisions: list[RiskDecision] = field(default_factory=list)
    #: Price alerts: the list changed; the ones that fired (each once: a toast and the bell).
    alerts: bool = False
    alerts_fired: list[AlertFired] = field(default_factory=list)
    depth: dict[str, Depth] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)
    events: int = 0

    def __bool__(self) -> bool:
        return self.events > 0

    def kinds(self) -> frozenset[str]:
        """The names of the parts that changed: what a pane's ``CONSUMES`` is matched against."""
        return frozenset(name for name in EVENT_KINDS if getattr(self, name))


#: Every kind of change a pane may consume (the fields of :class:`Changes`).
EVENT_KINDS = ("quotes", "orders", "fills", "positions", "balances", "connections", "locks", "risk", "accounts",
               "notices", "decisions", "depth", "trades")  # fmt: skip


class ScreenState:
    """Everything the screen shows, kept current from the snapshot plus the event stream."""

    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.balances: dict[str, AccountSnapshot] = {}
        self.positions: dict[tuple[str, str], Position] = {}
        self.orders: dict[tuple[str, str], Order] = {}
        self.fills: dict[str, Fill] = {}
        self.quotes: dict[str, Quote] = {}
        #: The latest book per symbol, for the symbols a ladder shows (coalesced like quotes).
        self.depth: dict[str, Depth] = {}
        self.connections: dict[str, ConnectionStatus] = {}
        self.locks: dict[str, AccountLock] = {}
        self.risk: dict[str, RiskStatus] = {}
        self.alerts: dict[int, Alert] = {}
        #: Bumped on every change of ``alerts`` (the alerts screen redraws when it moves).
        self.alerts_version = 0
        self.is_live = False
        self.loaded = False

    def load(self, snap: EngineSnapshot) -> Changes:
        """Take a whole snapshot (first attach, or a resync after the stream overflowed)."""
        self.accounts = {a.id: a for a in snap.accounts}
        self.balances = {b.account: b for b in snap.balances}
        self.positions = {(p.account, p.symbol): p for p in snap.positions}
        self.orders = {(o.account, o.order_id): o for o in snap.orders}
        self.fills = {_fill_key(f): f for f in snap.fills}
        self.quotes = {q.symbol: q for q in snap.quotes}
        self.connections = {c.broker: c for c in snap.connections}
        self.locks = {lk.account: lk for lk in snap.locks}
        self.risk = {r.account: r for r in snap.risk}
        self.alerts = {a.alert_id: a for a in snap.alerts}
        self.alerts_version += 1
        self.is_live = snap.is_live or any(a.is_live for a in snap.accounts)
        self.loaded = True
        return Changes(
            quotes=dict(self.quotes),
            positions=True,
            balances=True,
            connections=True,
            risk=True,
            accounts=True,
            events=1,
        )

    def apply(self, events: Iterable[Any]) -> Changes:
        """Apply drained events in order; the result names what changed."""
        ch = Changes()
        for ev in events:
            ch.events += 1
            t = type(ev)
            if t is Quote:
                self.quotes[ev.symbol] = ev
                ch.quotes[ev.symbol] = ev
            elif t is Depth:
                self.depth[ev.symbol] = ev
                ch.depth[ev.symbol] = ev
            elif t is Trade:
                ch.trades.append(ev)
            elif t is Order:
                self.orders[(ev.account, ev.order_id)] = ev
                ch.orders.append(ev)
            elif t is Fill:
                key = _fill_key(ev)
                if key not in self.fills:
                    self.fills[key] = ev
                    ch.fills.append(ev)
            elif t is Position:
                self.positions[(ev.account, ev.symbol)] = ev
                ch.positions = True
            elif t is AccountSnapshot:
                self.balances[ev.account] = ev
                ch.balances = True
            elif t is ConnectionStatus:
                self.connections[ev.broker] = ev
                ch.connections = True
            elif t is AccountLock:
                self.locks[ev.account] = ev
                ch.locks.append(ev)
            elif t is RiskStatus:
                self.risk[ev.account] = ev
                ch.risk = True
            elif t is Notice:
                ch.notices.append(ev)
            elif t is RiskDecision:
                ch.decisions.append(ev)
            elif t is Account:
                self.accounts[ev.id] = ev
                self.is_live = self.is_live or ev.is_live
                ch.accounts = True
            elif t is Alert:
                if ev.state is AlertState.REMOVED:
                    self.alerts.pop(ev.alert_id, None)
                else:
                    self.alerts[ev.alert_id] = ev
                self.alerts_version += 1
                ch.alerts = True
            elif t is AlertFired:
                ch.alerts_fired.append(ev)
        return ch

    # ------------------------------------------------------------------ queries

    def working_orders(self) -> list[Order]:
        return [o for o in self.orders.values() if o.is_open]

    def rejected_orders(self) -> list[Order]:
        return [o for o in self.orders.values() if o.status is OrderStatus.REJECTED]

    def positions_in(self, account: str) -> list[Position]:
        return [p for (a, _), p in self.positions.items() if a == account]

    def is_locked(self, account: str) -> bool:
        lock = self.locks.get(account)
        return bool(lock and lock.locked)

    def find_account(self, name: str) -> Account | None:
        """An account by engine id, vendor id, display name or alias (case-insensitive)."""
        want = name.strip().lower()
        for acct in self.accounts.values():
            if want in (acct.id.lower(), acct.vendor_id.lower(), acct.name.lower()):
                return acct
        return None


def _fill_key(fill: Fill) -> str:
    return f"{fill.broker}|{fill.fill_id}"


@dataclass(frozen=True, slots=True)
class Resolved:
    """A watchlist entry: the symbol as listed, and the contract it trades as (or why not)."""

    listed: str
    instrument: Instrument | None
    error: str = ""

    @property
    def contract(self) -> str | None:
        return self.instrument.symbol if self.instrument is not None else None


class Bridge:
    """Owns the event stream and the quote subscriptions the screen needs."""

    def __init__(self, client: EngineClient) -> None:
        self.client = client
        self.state = ScreenState()
        self.stream: EventStream | None = None
        self._wanted_by_kind: dict[str, dict[str, set[str]]] = {}  # kind -> reason -> contract symbols
        self._subscribed_by_kind: dict[str, set[str]] = {}
        self._lock = asyncio.Lock()

    def open(self) -> None:
        """Subscribe to the events; call before :meth:`load` so nothing falls between them."""
        if self.stream is None or self.stream.closed:
            self.stream = self.client.events()

    async def load(self) -> Changes:
        return self.state.load(await self.client.snapshot())

    def drain(self) -> Changes:
        if self.stream is None:
            return Changes()
        return self.state.apply(self.stream.drain())

    @property
    def overflowed(self) -> bool:
        """The stream fell too far behind and was closed: resync from a snapshot."""
        return self.stream is not None and bool(getattr(self.stream, "overflowed", False))

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()

    def resolve(self, symbol: str) -> Resolved:
        """A listed symbol resolved to its contract; an unknown one carries the reason."""
        try:
            return Resolved(symbol, self.client.instrument(symbol))
        except (UnknownSymbol, ModelError) as exc:
            return Resolved(symbol, None, str(exc))

    async def want(self, reason: str, contracts: Iterable[str], kind: str = "quotes") -> None:
        """Stream ``kind`` (quotes, depth, trades) for ``contracts`` on behalf of ``reason``
        (watchlist, ticket, positions, dom...).

        Each reason's set replaces its previous one; the engine is told only the difference, so a
        symbol two panes need is subscribed once and dropped when the last of them lets go.
        """
        verbs = _FEED_VERBS[kind]
        async with self._lock:  # two reasons changing at once must not both subscribe a symbol
            wanted = self._wanted_by_kind.setdefault(kind, {})
            wanted[reason] = {c for c in contracts if c}
            subscribed = self._subscribed_by_kind.setdefault(kind, set())
            needed = set().union(*wanted.values()) if wanted else set()
            add = sorted(needed - subscribed)
            drop = sorted(subscribed - needed)
            if add:
                await getattr(self.client, verbs[0])(add)
                subscribed |= set(add)
            if drop:
                await getattr(self.client, verbs[1])(drop)
                subscribed -= set(drop)
            if kind == "depth":
                for symbol in drop:
                    self.state.depth.pop(symbol, None)

    @property
    def subscribed(self) -> frozenset[str]:
        return frozenset(self._subscribed_by_kind.get("quotes", ()))

    def subscribed_to(self, kind: str) -> frozenset[str]:
        return frozenset(self._subscribed_by_kind.get(kind, ()))


#: Feed kind -> the EngineClient's subscribe and unsubscribe verbs.
_FEED_VERBS = {
    "quotes": ("subscribe", "unsubscribe"),
    "depth": ("subscribe_depth", "unsubscribe_depth"),
    "trades": ("subscribe_trades", "unsubscribe_trades"),
}

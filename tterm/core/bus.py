"""Async fan-out of engine events to any number of subscribers.

``publish`` never blocks and never awaits: each subscriber has its own queue, so a slow
subscriber only ever delays itself. Quotes and depth (and connection status) carry a ``coalesce_key``; a
subscriber that asked for coalescing keeps only the latest event per key while it is behind,
at the queue position of the first one it missed. Order, fill and position events have no key
and are always delivered, every one, in order; so are trades (time and sales shows every print).

A subscriber that falls so far behind that its ordered backlog passes ``max_backlog`` is closed
with ``overflowed`` set: it must resynchronise from a snapshot (the remote hub client does) rather
than let memory grow without bound.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Hashable
from typing import Any

from tterm.core.models import ConnectionStatus, Depth, Quote, RiskStatus


def _quote_key(event: Quote) -> Hashable:
    return ("quote", event.symbol)


def _depth_key(event: Depth) -> Hashable:
    return ("depth", event.symbol)


def _connection_key(event: ConnectionStatus) -> Hashable:
    return ("connection", event.broker)


def _risk_key(event: RiskStatus) -> Hashable:
    return ("risk", event.account)


#: Event types that may be coalesced, with the key that identifies "the same thing".
COALESCE_KEYS: dict[type, Callable[[Any], Hashable]] = {
    Quote: _quote_key,
    Depth: _depth_key,
    ConnectionStatus: _connection_key,
    RiskStatus: _risk_key,
}


class Subscription:
    """One subscriber's queue. Iterate it (``async for event in sub``) or ``drain()`` it per frame."""

    __slots__ = (
        "_bus",
        "_latest",
        "_pending",
        "_waiter",
        "closed",
        "coalesce",
        "coalesced",
        "delivered",
        "max_backlog",
        "name",
        "overflowed",
        "wants",
    )

    def __init__(
        self,
        bus: Bus,
        name: str,
        *,
        coalesce: bool,
        max_backlog: int,
        wants: tuple[type, ...] | None,
    ) -> None:
        self._bus = bus
        self.name = name
        self.coalesce = coalesce
        self.max_backlog = max_backlog
        self.wants = wants
        # Items are events, or coalesce keys (tuples) standing for "the latest event of that key".
        self._pending: deque[Any] = deque()
        self._latest: dict[Hashable, Any] = {}
        self._waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.overflowed = False
        self.coalesced = 0
        self.delivered = 0

    # -- producer side (called by Bus.publish)

    def _put(self, event: Any, key: Hashable | None) -> None:
        if key is not None and self.coalesce:
            latest = self._latest
            if key in latest:
                latest[key] = event
                self.coalesced += 1
                return
            latest[key] = event
            self._pending.append(key)
        else:
            self._pending.append(event)
            if len(self._pending) > self.max_backlog:
                self.overflowed = True
                self.close()
                return
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- consumer side

    def _pop(self) -> Any:
        item = self._pending.popleft()
        if type(item) is tuple:
            item = self._latest.pop(item)
        self.delivered += 1
        return item

    def drain(self, limit: int | None = None) -> list[Any]:
        """Everything pending now (up to ``limit``), without waiting."""
        out: list[Any] = []
        pending = self._pending
        while pending and (limit is None or len(out) < limit):
            out.append(self._pop())
        return out

    @property
    def backlog(self) -> int:
        return len(self._pending)

    async def get(self) -> Any:
        """The next event; raises EOFError once the subscription is closed and drained."""
        while not self._pending:
            if self.closed:
                raise EOFError(self.name)
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self._pop()

    async def wait(self) -> None:
        """Wait until at least one event is pending (or the subscription closes)."""
        while not self._pending and not self.closed:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while True:
            try:
                yield await self.get()
            except EOFError:
                return

    def close(self) -> None:
        """Stop receiving; events already queued can still be read."""
        if self.closed:
            return
        self.closed = True
        self._bus._remove(self)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class Bus:
    """The engine's event fan-out. ``publish`` is synchronous and O(subscribers)."""

    def __init__(self) -> None:
        self._subs: list[Subscription] = []
        self.published = 0

    def subscribe(
        self,
        name: str = "",
        *,
        coalesce: bool = True,
        max_backlog: int = 100_000,
        wants: tuple[type, ...] | None = None,
    ) -> Subscription:
        """A new subscriber; ``wants`` limits it to some event types (None: everything)."""
        sub = Subscription(self, name, coalesce=coalesce, max_backlog=max_backlog, wants=wants)
        self._subs = [*self._subs, sub]
        return sub

    def _remove(self, sub: Subscription) -> None:
        self._subs = [s for s in self._subs if s is not sub]

    @property
    def subscribers(self) -> list[Subscription]:
        return list(self._subs)

    def publish(self, event: Any) -> None:
        """Hand ``event`` to every subscriber that wants it. Never blocks."""
        self.published += 1
        key_fn = COALESCE_KEYS.get(type(event))
        key = key_fn(event) if key_fn is not None else None
        for sub in self._subs:
            wants = sub.wants
            if wants is None or isinstance(event, wants):
                sub._put(event, key)

    def close(self) -> None:
        for sub in list(self._subs):
            sub.close()

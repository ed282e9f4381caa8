"""Fake broker servers for tests (real loopback sockets, vendor wire protocols) and a fake clock."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from datetime import UTC, datetime, timedelta


class FakeClock:
    """A wall clock that moves only when a test says so.

    ``sleep(n)`` returns once the test has advanced the clock by ``n`` seconds past the moment
    the sleep started, so token expiry and penalty waits run without waiting on real time.
    Brokers and fake servers share one instance, so both sides agree on "now".
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("FakeClock needs an aware start time")
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._changed = asyncio.Event()

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        deadline = self._now + timedelta(seconds=max(0.0, seconds))
        if deadline <= self._now:  # also a sleep shorter than the clock's microsecond resolution
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._seq), fut))
        self._changed.set()
        try:
            await fut
        finally:
            if not fut.done():
                fut.cancel()

    def advance(self, delta: float | timedelta) -> None:
        """Move time forward and wake every sleeper whose time has come."""
        if isinstance(delta, int | float):
            delta = timedelta(seconds=delta)
        if delta < timedelta(0):
            raise ValueError("a clock does not run backwards")
        self._now += delta
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    def pending(self) -> list[float]:
        """Seconds left for each live sleeper, soonest first."""
        return sorted((d - self._now).total_seconds() for d, _, f in self._sleepers if not f.done())

    async def wait_for_sleeper(
        self, *, longer_than: float = 0.0, shorter_than: float = float("inf"), within: float = 5.0
    ) -> float:
        """Wait until something sleeps with between ``longer_than`` and ``shorter_than`` seconds
        left; returns the time left of the soonest such sleeper."""

        async def _wait() -> float:
            while True:
                waits = [w for w in self.pending() if longer_than < w < shorter_than]
                if waits:
                    return waits[0]
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(_wait(), within)

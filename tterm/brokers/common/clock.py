"""Wall-clock time for broker plumbing, injectable so tests never wait on real time.

A broker needs the wall clock for things the vendor measures in wall time: token expiry and
penalty waits. Tests pass a fake clock whose ``sleep`` returns when the test advances it.
Socket liveness (heartbeats, watchdogs, reconnect backoff) uses the event loop's own clock.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """What broker plumbing needs from a clock: an aware "now" and a sleep measured on it."""

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: UTC now, asyncio sleep."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class _NowOnlyClock:
    """Adapts a clock that only tells the time (the engine's session clock) to :class:`Clock`."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def now(self) -> datetime:
        value = self._inner.now()
        if value.tzinfo is None:
            raise ValueError("clock.now() returned a naive datetime; broker plumbing needs aware times")
        return value

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


def as_clock(clock: Any = None) -> Clock:
    """``clock`` as a :class:`Clock`: None gives the system clock; a clock without ``sleep`` is wrapped."""
    if clock is None:
        return SystemClock()
    if not callable(getattr(clock, "now", None)):
        raise TypeError(f"{type(clock).__name__} is not a clock: it has no now() method")
    if callable(getattr(clock, "sleep", None)):
        return clock
    return _NowOnlyClock(clock)

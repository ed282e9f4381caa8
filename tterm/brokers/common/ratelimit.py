"""A sliding-window rate limiter shared by every request of one broker login.

Limits are windows ("5000 per hour", "15 per hour for token renewal"): a global set applies to
every request and per-key sets add limits for particular endpoints. ``acquire`` waits until a
request fits every window that applies. ``penalize`` blocks a key (or everything) for a while,
which is how a vendor's "slow down" answer (HTTP 429, a penalty ticket) is honoured.
"""

from __future__ import annotations

import asyncio
import time as _time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Window:
    """At most ``limit`` requests in any ``seconds``-long sliding window."""

    limit: int
    seconds: float

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"rate window limit must be >= 1, got {self.limit}")
        if self.seconds <= 0:
            raise ValueError(f"rate window length must be positive, got {self.seconds}")


class _Log:
    """Timestamps of recent requests against one window."""

    __slots__ = ("stamps", "window")

    def __init__(self, window: Window) -> None:
        self.window = window
        self.stamps: deque[float] = deque()

    def delay(self, now: float) -> float:
        stamps = self.stamps
        horizon = now - self.window.seconds
        while stamps and stamps[0] <= horizon:
            stamps.popleft()
        if len(stamps) < self.window.limit:
            return 0.0
        # The oldest request inside the window must age out before another fits.
        return stamps[len(stamps) - self.window.limit] + self.window.seconds - now


class RateLimiter:
    """Waits requests into the configured windows; one instance per broker login."""

    def __init__(
        self,
        windows: Sequence[Window] = (),
        *,
        per_key: Mapping[str, Sequence[Window]] | None = None,
        time: Callable[[], float] = _time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._time = time
        self._sleep = sleep
        self._global = [_Log(w) for w in windows]
        self._per_key = {k.lower(): [_Log(w) for w in ws] for k, ws in (per_key or {}).items()}
        self._blocked_until: dict[str | None, float] = {}
        self.waited = 0.0
        self.acquired = 0

    def _logs(self, key: str | None) -> list[_Log]:
        if key is None:
            return self._global
        return self._global + self._per_key.get(key, [])

    def delay(self, key: str | None = None) -> float:
        """Seconds until a request on ``key`` would be allowed (0 if now)."""
        key = key.lower() if key else None
        now = self._time()
        wait = max((log.delay(now) for log in self._logs(key)), default=0.0)
        for blocked_key in (None, key):
            until = self._blocked_until.get(blocked_key)
            if until is not None:
                wait = max(wait, until - now)
        # Float clocks round; a wait under a microsecond is no wait.
        return wait if wait > 1e-6 else 0.0

    async def acquire(self, key: str | None = None) -> float:
        """Wait until a request on ``key`` fits every window, then count it. Returns seconds waited."""
        key = key.lower() if key else None
        waited = 0.0
        while True:
            wait = self.delay(key)
            if wait <= 0:
                now = self._time()
                for log in self._logs(key):
                    log.stamps.append(now)
                self.acquired += 1
                self.waited += waited
                return waited
            waited += wait
            await self._sleep(wait)

    def penalize(self, seconds: float, key: str | None = None) -> None:
        """Hold every request on ``key`` (None: all requests) for ``seconds`` from now."""
        if seconds <= 0:
            return
        key = key.lower() if key else None
        until = self._time() + seconds
        self._blocked_until[key] = max(self._blocked_until.get(key, until), until)

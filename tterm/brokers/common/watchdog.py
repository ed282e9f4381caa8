"""A stale-stream watchdog: notices when a stream goes quiet without closing.

A socket can stay open while nothing arrives (a dead NAT mapping, a stuck server). The owner
calls :meth:`StaleWatchdog.touch` on every message; once the silence passes ``timeout`` the
watchdog calls ``on_stale`` once, and arms again after the next ``touch``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)


class StaleWatchdog:
    """Calls ``on_stale(silence_seconds)`` when no :meth:`touch` came for ``timeout`` seconds."""

    def __init__(
        self,
        *,
        timeout: float,
        on_stale: Callable[[float], Any],
        check_interval: float | None = None,
        time: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        name: str = "stream",
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"watchdog timeout must be positive, got {timeout}")
        self.timeout = timeout
        self.check_interval = check_interval if check_interval is not None else max(timeout / 4, 0.01)
        self._on_stale = on_stale
        self._time = time
        self._sleep = sleep
        self.name = name
        self._last = self._now() if time is not None else 0.0
        self._fired = False
        self._task: asyncio.Task[None] | None = None
        self.fired = 0

    def _now(self) -> float:
        if self._time is not None:
            return self._time()
        return asyncio.get_running_loop().time()

    def touch(self) -> None:
        """A message arrived: the stream is alive."""
        self._last = self._now()
        self._fired = False

    def silence(self) -> float:
        """Seconds since the last message."""
        return self._now() - self._last

    @property
    def is_stale(self) -> bool:
        return self._fired

    async def check(self) -> bool:
        """Fire ``on_stale`` if the stream has gone quiet; True if it fired now."""
        quiet = self.silence()
        if self._fired or quiet < self.timeout:
            return False
        self._fired = True
        self.fired += 1
        log.info("%s: no message for %.1fs, marking stale", self.name, quiet)
        result = self._on_stale(quiet)
        if inspect.isawaitable(result):
            await result
        return True

    def start(self) -> None:
        """Start watching from now (idempotent)."""
        if self._task is not None and not self._task.done():
            return
        self.touch()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"watchdog:{self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await self._sleep(self.check_interval)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                # The owner's stale handler failed; keep watching rather than go blind.
                log.exception("%s: stale handler failed", self.name)

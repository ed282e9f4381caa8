"""Tradovate's two "stop" answers, shared by REST and both sockets: the 429 lockout and the 423
warning.

- **HTTP 429** (``s:429`` on a socket) locks the user out of the API on a rolling hour, and
  every request made during the window restarts it (partner docs, error-handling and rate-limits
  pages: "cannot be resolved programmatically", "wait 1 hour"). So after a 429 tterm sends
  nothing at all until the hour is over: :meth:`Lockout.check` refuses each request locally
  (``sent=False``), sockets wait (:meth:`Lockout.wait`) instead of reconnecting, and the broker
  shows the end time (``ConnectionStatus.blocked_until``) and holds orders.
- **HTTP 423** comes first, as a warning that a lockout is near ("423 precedes a 429", partner
  error-handling page): tterm slows down, holding every request for a growing pause
  (:data:`SLOW_DOWN_BASE` doubling to :data:`SLOW_DOWN_CAP`), and the request that met it is not
  resent. One partner page describes a 423 after failed logins as a reCAPTCHA lockout of an hour;
  on the login endpoint the auth layer treats it so (see :mod:`~tterm.brokers.tradovate.auth`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from tterm.brokers.common.backoff import Backoff
from tterm.brokers.common.clock import Clock
from tterm.core.broker import RateLimited
from tterm.core.clock import CT

log = logging.getLogger(__name__)

#: How long a 429 locks the user out (partner docs: a rolling hour).
LOCKOUT = timedelta(hours=1)
#: The pause after a 423, doubling on each one (not documented: chosen to be well clear of it).
SLOW_DOWN_BASE = 15.0
SLOW_DOWN_CAP = 300.0

LockoutHandler = Callable[[datetime | None, str], None]


class LockedOut(RateLimited):
    """A request refused because of the 429 lockout (answered 429, or never sent during one)."""


class SlowDown(RateLimited):
    """A request Tradovate answered 423: not processed, every request held for ``retry_after``."""


def clock_text(when: datetime) -> str:
    """``15:22:46 CT (21:22:46 UTC)``: exchange time, as the status bar shows it, and UTC."""
    return f"{when.astimezone(CT):%H:%M:%S} CT ({when.astimezone(UTC):%H:%M:%S} UTC)"


class Lockout:
    """The user's API lockout (after a 429) and slow-down (after a 423), on the injected clock.

    ``on_change(until, text)`` hears a lockout start (``until`` its end) and end (``until`` None).
    """

    def __init__(self, clock: Clock, *, on_change: LockoutHandler | None = None) -> None:
        self._clock = clock
        self.on_change = on_change
        self.until: datetime | None = None
        self.cause = ""
        self.lockouts = 0
        self.slow_downs = 0
        self._slow = Backoff(base=SLOW_DOWN_BASE, cap=SLOW_DOWN_CAP, jitter=0.0)
        self._lift: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ the 429 lockout

    def active(self) -> bool:
        return self.until is not None and self._clock.now() < self.until

    def left(self) -> float:
        return max(0.0, (self.until - self._clock.now()).total_seconds()) if self.until is not None else 0.0

    def start(self, where: str) -> datetime:
        """A 429 arrived on ``where``: locked out for the hour from now."""
        until = self._clock.now() + LOCKOUT
        self.until = until
        self.cause = where
        self.lockouts += 1
        text = (
            f"Tradovate locked this login out of its API until {clock_text(until)} (HTTP 429 on {where}). "
            "Every request before then would restart the hour, so tterm sends nothing, holds new orders "
            "and will not reconnect until it is over; flatten at Tradovate itself if it cannot wait."
        )
        log.error("%s", text)
        if self.on_change is not None:
            self.on_change(until, text)
        self._schedule_lift()
        return until

    def refusal(self, what: str) -> str:
        """Why ``what`` was not sent, in plain words."""
        assert self.until is not None
        minutes = max(1, round(self.left() / 60))
        return (
            f"Tradovate will not accept {what} yet: this login is locked out of the Tradovate API until "
            f"{clock_text(self.until)} (in {minutes} min; HTTP 429 on {self.cause}). Nothing was sent: a request "
            "now would restart the hour."
        )

    def check(self, what: str) -> None:
        """Raise :class:`RateLimited` (``sent=False``) naming the lockout if one is on."""
        if self.active():
            raise LockedOut(self.refusal(what), retry_after=self.left(), sent=False)

    async def wait(self) -> None:
        """Return once no lockout is on (sleeping on the clock until it ends)."""
        while self.active():
            await self._clock.sleep(self.left())

    def _schedule_lift(self) -> None:
        if self._lift is not None and not self._lift.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._lift = loop.create_task(self._lift_when_over(), name="tradovate-lockout")

    async def _lift_when_over(self) -> None:
        await self.wait()
        log.warning("the Tradovate lockout is over; requests go again")
        if self.on_change is not None:
            self.on_change(None, "the Tradovate lockout is over: requests and orders go again")

    async def stop(self) -> None:
        task, self._lift = self._lift, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    # ------------------------------------------------------------------ the 423 warning

    def slow_down(self) -> float:
        """A 423 arrived: how long to hold every request (growing with each one)."""
        self.slow_downs += 1
        return self._slow.next_delay()

    def calm(self) -> None:
        """A request went through: the next 423 starts the pause from the bottom again."""
        self._slow.reset()

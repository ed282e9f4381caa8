"""A bearer-token keeper: log in once, renew ahead of expiry, tell the UI the time left.

The vendor-specific parts (how to log in, how to renew) are two coroutines handed in; this
module only decides *when*. Renewal is driven by the expiry the vendor returned, never by a
hard-coded lifetime. Every caller asks :meth:`TokenManager.get` for the token, which renews
inline if the background loop has not yet done it, so a request never goes out with a token
about to lapse. Concurrent callers share one login/renewal (single flight).

With a :class:`~tterm.brokers.common.token_store.TokenStore`, tokens outlive the process and are
shared with other processes on the same data dir: a start adopts a stored token that still
works instead of logging in (a new session), and every renewal is decided under the store's
lock, on the token as it is on disk at that moment. A token another process already renewed is
adopted, never renewed a second time, and a newer token is never overwritten by an older one.

``renew_expired``: the renewal still works once the token has expired (an OAuth refresh token
outlives its 30-minute access token). Without it an expired token means a new login, which for a
browser login (Schwab) is a person: a restart after half an hour would ask to log in again
(schwab-py issue #222 is this bug in another client). With it, an expired token is renewed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from tterm.brokers.common.backoff import Backoff
from tterm.brokers.common.clock import Clock, as_clock
from tterm.core.broker import AuthError, BrokerError

if TYPE_CHECKING:
    from tterm.brokers.common.token_store import TokenStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Token:
    """A bearer token and when it stops working. ``value`` and ``extra`` never appear in a repr."""

    value: str = field(repr=False)
    expires_at: datetime
    issued_at: datetime
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.expires_at.tzinfo is None or self.issued_at.tzinfo is None:
            raise ValueError("token times must be timezone-aware")

    @property
    def lifetime(self) -> timedelta:
        return self.expires_at - self.issued_at


class TokenManager:
    """Keeps one valid token for one login.

    ``login()`` returns a fresh token (a new session); ``renew(token)`` extends one that has not
    expired yet. ``renew_ahead`` is how long before expiry renewal happens; for short-lived
    tokens it is capped at half the token's lifetime so renewal never loops. ``on_change`` is
    called with each new token; ``on_error`` with each failed background renewal.
    """

    def __init__(
        self,
        *,
        login: Callable[[], Awaitable[Token]],
        renew: Callable[[Token], Awaitable[Token]] | None = None,
        clock: Clock | None = None,
        renew_ahead: timedelta = timedelta(minutes=15),
        check_interval: float = 30.0,
        on_change: Callable[[Token], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
        retry: Backoff | None = None,
        store: TokenStore | None = None,
        renew_expired: bool = False,
    ) -> None:
        self._login = login
        self.renew_expired = renew_expired
        self._renew = renew
        self._clock = as_clock(clock)
        self.renew_ahead = renew_ahead
        self.check_interval = check_interval
        self._on_change = on_change
        self._on_error = on_error
        self._retry = retry or Backoff(base=2.0, cap=60.0)
        self._store = store
        self._token: Token | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.logins = 0
        self.renewals = 0
        self.adopted = 0

    # ------------------------------------------------------------------ state

    @property
    def token(self) -> Token | None:
        return self._token

    @property
    def expires_at(self) -> datetime | None:
        return self._token.expires_at if self._token else None

    def expires_in(self) -> timedelta | None:
        """Time left on the current token (negative once expired), None before the first login."""
        if self._token is None:
            return None
        return self._token.expires_at - self._clock.now()

    def renew_at(self) -> datetime | None:
        """When the current token is due for renewal."""
        return self._renew_at(self._token) if self._token is not None else None

    def _renew_at(self, token: Token) -> datetime:
        ahead = min(self.renew_ahead, token.lifetime / 2)
        return token.expires_at - ahead

    def _expired(self, token: Token) -> bool:
        return self._clock.now() >= token.expires_at

    def _renewable(self, token: Token) -> bool:
        """``token`` can still be renewed (rather than replaced by a login)."""
        return self._renew is not None and (self.renew_expired or not self._expired(token))

    def _due(self, token: Token) -> bool:
        return self._clock.now() >= self._renew_at(token)

    # ------------------------------------------------------------------ getting a token

    async def get(self) -> Token:
        """A token good for now: logs in or renews first if needed."""
        token = self._token
        if token is not None and not self._due(token):
            return token
        async with self._lock:
            token = self._token
            if token is not None and not self._due(token):
                return token
            try:
                return await self._refresh_locked(token)
            except (BrokerError, OSError):
                # Renewal is early by design: a token that still works is better than no request.
                if token is not None and not self._expired(token):
                    return token
                raise

    async def invalidate(self, rejected: Token | None) -> Token:
        """The vendor refused ``rejected``: get a different token (a newer stored one, else log in)."""
        async with self._lock:
            current = self._token
            if current is not None and rejected is not None and current.value != rejected.value:
                return current  # someone already replaced it
            if self._store is None:
                if self.renew_expired and rejected is not None:
                    # The access token was refused; its refresh token may still be good.
                    return await self._obtain(rejected)
                # A refused token cannot be trusted to renew either: log in again.
                return await self._install(await self._login(), how="login")
            async with self._store.locked() as slot:
                stored = slot.token
                if (
                    stored is not None
                    and stored.value != getattr(rejected, "value", None)
                    and not self._expired(stored)
                ):
                    return await self._install(stored, how="adopted")
                base = stored if stored is not None else rejected
                if self.renew_expired and base is not None:
                    token = await self._obtain(base)
                else:
                    token = await self._install(await self._login(), how="login")
                slot.put(token)
                return token

    async def refresh(self) -> Token:
        """Renew now (or log in if the token has expired), whatever the schedule says."""
        async with self._lock:
            return await self._refresh_locked(self._token)

    async def _refresh_locked(self, token: Token | None) -> Token:
        if self._store is None:
            return await self._obtain(token)
        async with self._store.locked() as slot:
            stored = slot.token
            held = token.value if token is not None else None
            newer = stored is not None and (token is None or stored.expires_at > token.expires_at)
            if stored is not None and newer and stored.value != held and self._adoptable(stored):
                # Another process (or an earlier run) already renewed: use its token.
                if not self._due(stored):
                    return await self._install(stored, how="adopted")
                token = stored  # renew the newest; ours may already be spent
            fresh = await self._obtain(token)
            slot.put(fresh)
            return fresh

    def _adoptable(self, stored: Token) -> bool:
        """A stored token worth starting from: still valid, or renewable although expired."""
        return not self._expired(stored) or (self.renew_expired and self._renew is not None)

    async def _obtain(self, token: Token | None) -> Token:
        """Log in or renew over the network, and install the result."""
        if token is None or not self._renewable(token):
            return await self._install(await self._login(), how="login")
        assert self._renew is not None
        try:
            renewed = await self._renew(token)
        except AuthError as exc:
            # The vendor will not renew this token (revoked, expired early): start a new session.
            log.info("token renewal refused (%s); logging in again", exc)
            return await self._install(await self._login(), how="login")
        return await self._install(renewed, how="renewal")

    async def _install(self, token: Token, *, how: str) -> Token:
        if token.expires_at <= self._clock.now():
            raise AuthError("the vendor issued a token that has already expired (check the system clock)")
        self._token = token
        if how == "login":
            self.logins += 1
        elif how == "renewal":
            self.renewals += 1
        else:
            self.adopted += 1
        if self._on_change is not None:
            self._on_change(token)
        return token

    # ------------------------------------------------------------------ background renewal

    def start(self) -> None:
        """Run the renewal loop in the background (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="token-renewal")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            due = self.renew_at()
            if due is None:
                await self._clock.sleep(self.check_interval)
                continue
            wait = (due - self._clock.now()).total_seconds()
            if wait > 0:
                # Sleep in slices so a suspended laptop or a clock jump is noticed promptly.
                await self._clock.sleep(min(wait, self.check_interval))
                continue
            try:
                await self.refresh()
                self._retry.reset()
            except asyncio.CancelledError:
                raise
            except (BrokerError, OSError) as exc:
                if self._on_error is not None:
                    self._on_error(exc)
                await self._clock.sleep(self._retry.next_delay())

"""ProjectX authentication (B3): ``Auth/loginKey`` for a session, ``Auth/validate`` to renew it.

Both answer HTTP 200 whatever happens: a refusal is ``success: false`` with a login error code
(and ``token: null``), turned here into an :class:`AuthError` in plain words. The session is a
JWT valid for 24 hours; its ``exp`` claim says when it ends (a token without a readable ``exp``
is taken to last the documented 24 hours). Tokens go straight into the redactor so they can
never be logged.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from tterm.brokers.common.clock import Clock
from tterm.brokers.common.tokens import Token
from tterm.brokers.projectx.config import ProjectXCredentials
from tterm.brokers.projectx.mapping import LOGIN_ERRORS, VALIDATE_ERRORS
from tterm.brokers.projectx.rest import Envelope, ProjectXRest
from tterm.core.broker import AuthError
from tterm.core.redact import Redactor

log = logging.getLogger(__name__)
#: B3: "A session token is valid for 24 hours".
SESSION = timedelta(hours=24)


def jwt_expiry(token: str) -> datetime | None:
    """The ``exp`` claim of a JWT, unverified (the gateway checks it; we only schedule by it)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        return datetime.fromtimestamp(int(claims["exp"]), UTC)
    except (ValueError, KeyError, TypeError, OverflowError):
        return None


class ProjectXAuth:
    """Logs in and renews for one ProjectX user; produces :class:`Token` s for the TokenManager."""

    def __init__(
        self, rest: ProjectXRest, credentials: ProjectXCredentials, *, clock: Clock, redactor: Redactor
    ) -> None:
        self._rest = rest
        self._creds = credentials
        self._clock = clock
        self._redactor = redactor
        redactor.add(credentials.api_key)

    async def login(self) -> Token:
        """A new session (``POST /api/Auth/loginKey``)."""
        body = {"userName": self._creds.username, "apiKey": self._creds.api_key}
        try:
            data = await self._rest.call("Auth/loginKey", body, authed=False)
        except Envelope as exc:
            reason = LOGIN_ERRORS.get(exc.code, f"error code {exc.code}")
            raise AuthError(
                f"ProjectX refused the login for {self._creds.username}: {reason}{exc.detail}", sent=False
            ) from None
        token = self._grant(data.get("token"), "login")
        log.info("logged in to ProjectX as %s; the session ends %s", self._creds.username, token.expires_at)
        return token

    async def renew(self, token: Token) -> Token:
        """The session renewed (``POST /api/Auth/validate``): a new token replaces the old one."""
        try:
            data = await self._rest.call("Auth/validate", None, bearer=token.value)
        except Envelope as exc:
            reason = VALIDATE_ERRORS.get(exc.code, f"error code {exc.code}")
            raise AuthError(f"ProjectX would not renew the session: {reason}{exc.detail}", sent=False) from None
        renewed = self._grant(data.get("newToken"), "renewal")
        log.info("renewed the ProjectX session; it now ends %s", renewed.expires_at)
        return renewed

    def _grant(self, value: Any, what: str) -> Token:
        if not isinstance(value, str) or not value:
            raise AuthError(f"ProjectX {what}: the answer carries no token", sent=False)
        self._redactor.add(value, rotating=True)
        now = self._clock.now()
        expires = jwt_expiry(value) or now + SESSION
        if expires <= now:
            raise AuthError(f"ProjectX {what}: the new session has already ended (check the system clock)", sent=False)
        return Token(value=value, expires_at=expires, issued_at=now)

"""Tradovate authentication (A2): the access-token request, renewal, and the device id.

A login answers HTTP 200 in every case: a token, an ``errorText`` (wrong password...), or a
penalty ticket (handled by :meth:`TradovateRest.call`: wait ``p-time``, resend with the ticket;
``p-captcha`` becomes a clear :class:`AuthError`). Renewal (``GET /auth/renewaccesstoken``)
extends the session without a new login. Tokens go straight into the redactor so they can never
be logged.
"""

from __future__ import annotations

import logging
import os
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from tterm.brokers.common.clock import Clock
from tterm.brokers.common.tokens import Token
from tterm.brokers.tradovate.config import TradovateCredentials, TradovateSettings
from tterm.brokers.tradovate.mapping import parse_time
from tterm.brokers.tradovate.rest import LOGIN_PATH, RENEW_PATH, TradovateRest
from tterm.core.broker import AuthError, BrokerError
from tterm.core.redact import Redactor

log = logging.getLogger(__name__)

DEVICE_ID_FILE = "tradovate-device-id"

# A2.1 userStatus values that mean the login cannot trade.
_BAD_STATUS = {
    "Closed": "the Tradovate user is closed",
    "TemporaryLocked": "the Tradovate user is temporarily locked",
    "UnconfirmedEmail": "the Tradovate user has not confirmed their e-mail address",
}


def load_device_id(path: Path) -> str:
    """The install's device id, created once and kept (A8: it must never change; live accounts
    may need the device approved)."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        text = ""
    if text:
        try:
            return str(uuid.UUID(text))
        except ValueError:
            raise BrokerError(
                f"the Tradovate device id file {path} is corrupt; restore it (a new id may need approval again)"
            ) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    device_id = str(uuid.uuid4())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(device_id + "\n")
    log.info("created a Tradovate device id at %s", path)
    return device_id


class TradovateAuth:
    """Logs in and renews for one Tradovate user; produces :class:`Token` s for the TokenManager."""

    def __init__(
        self,
        rest: TradovateRest,
        credentials: TradovateCredentials,
        settings: TradovateSettings,
        *,
        device_id: str,
        clock: Clock,
        redactor: Redactor,
    ) -> None:
        self._rest = rest
        self._creds = credentials
        self._settings = settings
        self._device_id = device_id
        self._clock = clock
        self._redactor = redactor
        for secret in credentials.secret_values():
            redactor.add(secret)

    def _request_body(self) -> dict[str, Any]:
        creds = self._creds
        return {
            "name": creds.username,
            "password": creds.password,
            "appId": creds.app_id or self._settings.app_id,
            "appVersion": self._settings.app_version,
            "cid": creds.cid,
            "sec": creds.sec,
            "deviceId": self._device_id,
        }

    async def login(self) -> Token:
        """A new session (``POST /auth/accesstokenrequest``)."""
        data = await self._rest.call("POST", LOGIN_PATH, body=self._request_body(), authed=False, repeatable=True)
        token = self._grant(data, what="login")
        log.info("logged in to Tradovate (%s); session expires %s", self._settings.environment, token.expires_at)
        return token

    async def renew(self, token: Token) -> Token:
        """The same session with a later expiry (``GET /auth/renewaccesstoken``)."""
        data = await self._rest.call("GET", RENEW_PATH, bearer=token.value)
        renewed = self._grant(data, what="renewal", previous=token)
        log.info("renewed the Tradovate session; it now expires %s", renewed.expires_at)
        return renewed

    def _grant(self, data: Any, *, what: str, previous: Token | None = None) -> Token:
        if not isinstance(data, dict):
            raise AuthError(f"Tradovate {what}: unexpected answer ({type(data).__name__})")
        if data.get("errorText"):
            reason = self._redactor.scrub(str(data["errorText"]))
            raise AuthError(f"Tradovate refused the {what}: {reason}")
        access = data.get("accessToken")
        if not access:
            raise AuthError(f"Tradovate {what}: the answer has no access token")
        self._redactor.add(access, rotating=True)
        # U3: the market-data token may be missing; the access token works on the MD socket too.
        md = data.get("mdAccessToken") or access
        self._redactor.add(md, rotating=True)
        status = data.get("userStatus")
        if status in _BAD_STATUS:
            raise AuthError(f"Tradovate {what}: {_BAD_STATUS[status]}")
        expires = parse_time(data.get("expirationTime"))
        now = self._clock.now()
        if expires <= now:
            raise AuthError(f"Tradovate {what}: the new session is already expired (check the system clock)")
        user_id = data.get("userId")
        if user_id is None and previous is not None:
            user_id = previous.extra.get("user_id")
        if user_id is None:
            raise AuthError(f"Tradovate {what}: the answer has no userId")
        extra = {
            "md_token": md,
            "user_id": int(user_id),
            "name": data.get("name") or (previous.extra.get("name") if previous else self._creds.username),
            "has_live": bool(data.get("hasLive", False)),
        }
        # A lifetime shorter than a minute is almost certainly a clock problem; say so early.
        if expires - now < timedelta(minutes=1):
            log.warning("Tradovate %s: the session lasts under a minute (expires %s)", what, expires)
        return Token(value=access, expires_at=expires, issued_at=now, extra=extra)

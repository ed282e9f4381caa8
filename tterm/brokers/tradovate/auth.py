"""Tradovate authentication (A2): the access-token request, renewal, the login budget and the
device id.

A login answers HTTP 200 in every case: a token, an ``errorText`` (wrong password...), or a
penalty ticket (handled by :meth:`TradovateRest.call`: wait ``p-time``, resend with the ticket).
Renewal (``GET /auth/renewaccesstoken``) extends the session without a new login. Tokens go
straight into the redactor so they can never be logged.

Logins are budgeted (:class:`LoginGuard`): Tradovate allows about 5 failed access-token requests
an hour (partner rate-limits page), and after a captcha the FAQ says to try again in an hour.
So a refused password or API key stops logins until a person fixes ``secrets.toml`` and starts
tterm again; a captcha (``p-captcha``) or a 423 on the login stops them for the hour; any other
failure counts against ``failures_per_hour``. A stopped login raises :class:`LoginRequired`
without sending anything, and the broker shows ``needs_login`` with the reason.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections import deque
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tterm.brokers.common.clock import Clock
from tterm.brokers.common.tokens import Token
from tterm.brokers.tradovate.config import TradovateCredentials, TradovateSettings
from tterm.brokers.tradovate.lockout import SlowDown
from tterm.brokers.tradovate.mapping import parse_time
from tterm.brokers.tradovate.rest import LOGIN_PATH, RENEW_PATH, CaptchaRequired, TradovateRest
from tterm.core.broker import AuthError, BrokerError, LoginRequired
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


#: How long a captcha (or a 423 on the login) stops logins (example-api-faq: "try again in an hour").
CAPTCHA_WAIT = timedelta(hours=1)


class LoginGuard:
    """When a login may be sent: at most ``failures_per_hour`` failures in a rolling hour, none
    after a refused credential, none for an hour after a captcha."""

    def __init__(self, clock: Clock, *, failures_per_hour: int = 3) -> None:
        self._clock = clock
        self.failures_per_hour = failures_per_hour
        self._failures: deque[datetime] = deque()
        self.stopped = ""  # a refused credential: no login until tterm is started again
        self.paused_until: datetime | None = None
        self.pause_reason = ""

    def before(self) -> None:
        """Raise :class:`LoginRequired` (``sent=False``) if a login must not be sent now."""
        if self.stopped:
            raise LoginRequired(self.stopped, sent=False)
        now = self._clock.now()
        if self.paused_until is not None:
            if now < self.paused_until:
                raise LoginRequired(self.pause_reason, sent=False)
            self.paused_until = None
        while self._failures and now - self._failures[0] >= timedelta(hours=1):
            self._failures.popleft()
        if len(self._failures) >= self.failures_per_hour:
            retry = self._failures[0] + timedelta(hours=1)
            raise LoginRequired(
                f"{len(self._failures)} failed Tradovate logins in the last hour (Tradovate allows about 5); "
                f"tterm tries again after {retry:%H:%M} UTC",
                sent=False,
            )

    def failed(self, reason: str) -> None:
        self._failures.append(self._clock.now())
        log.warning("Tradovate login failed (%s)", reason)

    def stop(self, reason: str) -> LoginRequired:
        self.stopped = reason
        return LoginRequired(reason, sent=False)

    def pause(self, reason: str) -> LoginRequired:
        self.paused_until = self._clock.now() + CAPTCHA_WAIT
        self.pause_reason = f"{reason} (until {self.paused_until:%H:%M} UTC)"
        return LoginRequired(self.pause_reason, sent=False)

    def succeeded(self) -> None:
        self._failures.clear()


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
        guard: LoginGuard | None = None,
    ) -> None:
        self._rest = rest
        self.guard = guard or LoginGuard(clock, failures_per_hour=settings.login_failures_per_hour)
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
        """A new session (``POST /auth/accesstokenrequest``), if the budget allows one."""
        guard = self.guard
        guard.before()
        try:
            data = await self._rest.call("POST", LOGIN_PATH, body=self._request_body(), authed=False, repeatable=True)
        except (CaptchaRequired, SlowDown) as exc:
            # A captcha, or a 423 on the login (one partner page: a reCAPTCHA lockout after failed
            # logins, "stop all API calls for 1 hour"): no login for the hour.
            guard.failed(type(exc).__name__)
            raise guard.pause(
                "Tradovate asks for a captcha before it takes another API login for this user (too many "
                "attempts). Log in once in a web browser at trader.tradovate.com, or wait: tterm tries again "
                "after an hour"
            ) from None
        if isinstance(data, dict) and data.get("errorText"):
            reason = self._redactor.scrub(str(data["errorText"]))
            guard.failed(reason)
            raise guard.stop(
                f"Tradovate refused the login: {reason}. tterm will not try again by itself (Tradovate allows "
                "about 5 failed logins an hour): fix the username, password or API key in secrets.toml, then "
                "start tterm again"
            )
        try:
            token = self._grant(data, what="login")
        except AuthError as exc:
            guard.failed(str(exc))
            if isinstance(data, dict) and data.get("userStatus") in _BAD_STATUS:
                raise guard.stop(f"{exc}; tterm will not try again by itself") from None
            raise
        guard.succeeded()
        log.info("logged in to Tradovate (%s); session expires %s", self._settings.environment, token.expires_at)
        return token

    async def renew(self, token: Token) -> Token:
        """The same session with a later expiry (``GET /auth/renewaccesstoken``)."""
        if self.guard.stopped or self.guard.paused_until is not None:
            # The login is gone until a person (or the captcha hour) lets it back: renewing the dead
            # token again would only spend the renewal budget.
            self.guard.before()
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

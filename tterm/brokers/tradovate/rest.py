"""Tradovate REST: one ``call`` that knows the vendor's answers, and the endpoints tterm uses.

What ``call`` handles (A2, A7):

- a bearer token from the token manager; a 401 (not processed) is checked by renewing the
  session, which logs in again only if the renewal is refused (the token is really gone: each
  login opens a session, at most two live at once), and the request gets one more try;
- a penalty ticket in an HTTP 200 body: wait ``p-time`` on the clock and send the same body with
  ``p-ticket`` added. That is the vendor's protocol for a request it did not process, not a
  blind resend; ``p-captcha`` stops (a person must log in on the web);
- HTTP 429: the user is locked out for a rolling hour that every request restarts
  (:mod:`~tterm.brokers.tradovate.lockout`): the call raises :class:`RateLimited` with
  ``sent=False`` (a 429 was not processed) and from then on every call is refused locally,
  before it is sent, until the hour is over. HTTP 423 (the warning before it) holds every
  request on the shared limiter for a growing pause. Neither request is ever sent again here;
- transport errors: a request marked ``repeatable`` (reads, the login) is tried again; anything
  else (orders, modify, cancel, liquidate) raises ``ConnectionFailed`` whose ``sent`` says
  whether it may have arrived, for the router to look the order up.

Business errors (``errorText``, ``failureReason``) are returned as data for the caller to map.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tterm.brokers.common.backoff import Backoff
from tterm.brokers.common.clock import Clock
from tterm.brokers.common.http import ConnectionFailed, HttpClient
from tterm.brokers.common.ratelimit import Window
from tterm.brokers.common.tokens import Token, TokenManager
from tterm.brokers.tradovate.lockout import LockedOut, Lockout, SlowDown, clock_text
from tterm.core.broker import AuthError, BrokerError, RateLimited
from tterm.core.redact import Redactor

log = logging.getLogger(__name__)

LOGIN_PATH = "/auth/accesstokenrequest"
RENEW_PATH = "/auth/renewaccesstoken"

# A7 (TV-PARTNER rate-limits). The authenticated user limit is 5000 per hour (also per minute
# and per second, which the hourly window implies). accesstokenrequest counts FAILED logins only,
# so it gets no client-side window: tterm never retries a refused login by itself.
GLOBAL_LIMITS: Sequence[Window] = (Window(5000, 3600.0),)
ENDPOINT_LIMITS: Mapping[str, Sequence[Window]] = {
    "auth/renewaccesstoken": (Window(15, 3600.0),),
    "auth/me": (Window(10, 3600.0),),
    "user/syncrequest": (Window(300, 3600.0),),
}
#: A session a renewal confirmed alive this recently is not renewed again on the next 401.
SESSION_CHECK_GAP = timedelta(minutes=1)

CAPTCHA_MESSAGE = (
    "Tradovate has locked API logins for this user behind a captcha (too many attempts). Log in once "
    "in a web browser at trader.tradovate.com (or wait about an hour), then start tterm again."
)


class CaptchaRequired(AuthError):
    """A login penalty with ``p-captcha``: the API takes no login for this user for now."""


class NotFound(BrokerError):
    """Tradovate has no such entity (HTTP 404)."""


class BadRequest(BrokerError):
    """Tradovate refused the request as malformed (HTTP 4xx other than 401/404/429)."""


@dataclass(frozen=True, slots=True)
class Penalty:
    """A time-penalty answer: wait ``seconds``, then resend with ``ticket`` (A2.1, TV-FAQ)."""

    ticket: str
    seconds: float
    captcha: bool


def penalty_of(data: Any) -> Penalty | None:
    """The penalty in a response body, if it is one."""
    if not isinstance(data, Mapping) or "p-ticket" not in data:
        return None
    try:
        seconds = float(data.get("p-time") or 0)
    except (TypeError, ValueError):
        seconds = 0.0
    # A2.1: p-captcha may be missing when false; treat missing as false.
    return Penalty(ticket=str(data["p-ticket"]), seconds=max(0.0, seconds), captcha=bool(data.get("p-captcha")))


def endpoint_key(path: str) -> str:
    """``/orderVersion/deps`` -> ``orderversion/deps``: the rate-limit key of a path."""
    return path.strip("/").lower()


class TradovateRest:
    """The REST half of a Tradovate login. ``tokens`` is attached once the auth layer exists."""

    def __init__(
        self,
        http: HttpClient,
        *,
        clock: Clock,
        redactor: Redactor,
        penalty_retries: int = 3,
        backoff: Backoff | None = None,
        lockout: Lockout | None = None,
        on_slow_down: Callable[[float, str], None] | None = None,
    ) -> None:
        self.http = http
        self.lockout = lockout or Lockout(clock)
        self.on_slow_down = on_slow_down
        self.clock = clock
        self.redactor = redactor
        self.tokens: TokenManager | None = None
        self.penalty_retries = penalty_retries
        self._backoff = backoff or Backoff(base=1.0, cap=60.0)
        self.penalties_obeyed = 0
        self._session_checked: tuple[str, datetime] | None = None
        self.unauthorized = 0
        self.rate_limited = 0

    # ------------------------------------------------------------------ the one call

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        authed: bool = True,
        bearer: str | None = None,
        repeatable: bool | None = None,
    ) -> Any:
        """Send ``method path`` and return the decoded JSON body (None when empty).

        ``repeatable`` (default: GET) marks a request that may be sent again after a transport
        error; orders are never repeatable.
        """
        key = endpoint_key(path)
        repeatable = method.upper() == "GET" if repeatable is None else repeatable
        payload = dict(body) if body is not None else None
        penalties = resent = 0
        auth_retried = False
        while True:
            self.lockout.check(f"{method} {path}")
            token = None
            auth = bearer
            if auth is None and authed:
                if self.tokens is None:
                    raise AuthError("not logged in to Tradovate", sent=False)
                token = await _unsent(self.tokens.get())
                auth = token.value
            try:
                resp = await self.http.request(method, path, params=params, json=payload, bearer=auth, limit_key=key)
            except ConnectionFailed:
                if repeatable and resent < 2:
                    resent += 1
                    await asyncio.sleep(0.2 * resent)
                    continue
                raise
            if resp.status == 401:
                self.unauthorized += 1
                if token is not None and self.tokens is not None and not auth_retried:
                    # A 401 is not proof the session is gone (the vendor also answers 401 for "no
                    # permission", e.g. a live device not approved). Each login opens a session and
                    # at most two live at once, so check it by renewing (a login follows only if the
                    # renewal is refused: the token is really gone), then try once more.
                    auth_retried = True
                    current = self.tokens.token
                    if current is None or current.value == token.value:
                        now = self.clock.now()
                        checked = self._session_checked
                        if checked is not None and checked[0] == token.value and now - checked[1] < SESSION_CHECK_GAP:
                            # This session was confirmed alive a moment ago: the 401 is about the
                            # request (renewals are budgeted, 15 an hour).
                            raise AuthError(self._refused_401(method, path), sent=False)
                        log.info("Tradovate answered 401 on %s; checking the session by renewing it", path)
                        fresh = await _unsent(self.tokens.refresh())
                        self._session_checked = (fresh.value, self.clock.now())
                    continue
                if auth_retried:
                    raise AuthError(self._refused_401(method, path), sent=False)
                raise AuthError(f"Tradovate refused the session for {method} {path} (HTTP 401)", sent=False)
            if resp.status == 429:
                self.rate_limited += 1
                until = self.lockout.start(f"{method} {path}")
                raise LockedOut(
                    f"Tradovate locked this login out of its API until {clock_text(until)} (HTTP 429 on "
                    f"{method} {path}): not processed, and nothing more is sent before then",
                    retry_after=self.lockout.left(),
                    sent=False,
                )
            if resp.status == 423:
                self.rate_limited += 1
                delay = self.slow_down(f"{method} {path}")
                raise SlowDown(
                    f"Tradovate warned that this login is about to be locked out (HTTP 423 on {method} {path}): "
                    f"not processed; tterm holds every request for {delay:.0f}s",
                    retry_after=delay,
                    sent=False,
                )
            if resp.status == 404:
                raise NotFound(f"Tradovate: {method} {path} found nothing ({self._short(resp.text)})")
            if 400 <= resp.status < 500:
                raise BadRequest(f"Tradovate refused {method} {path} (HTTP {resp.status}): {self._short(resp.text)}")
            if resp.status >= 500:
                # The server failed while handling it: whether it acted is unknown.
                raise BrokerError(f"Tradovate server error on {method} {path} (HTTP {resp.status})")
            data = resp.json() if resp.body.strip() else None
            penalty = penalty_of(data)
            if penalty is None:
                self._backoff.reset()
                self.lockout.calm()
                return data
            if penalty.captcha:
                if key == endpoint_key(LOGIN_PATH):
                    raise CaptchaRequired(CAPTCHA_MESSAGE, sent=False)
                raise RateLimited(f"Tradovate penalty with captcha on {path}; {CAPTCHA_MESSAGE}", sent=False)
            penalties += 1
            if penalties > self.penalty_retries:
                raise RateLimited(
                    f"Tradovate kept penalising {path} ({penalties} tickets in a row)",
                    retry_after=penalty.seconds,
                    sent=False,
                )
            log.warning("Tradovate time penalty on %s: waiting %.0fs before resending", path, penalty.seconds)
            await self.clock.sleep(penalty.seconds)
            self.penalties_obeyed += 1
            if payload is not None:
                payload["p-ticket"] = penalty.ticket
            # A GET has no body to carry the ticket (the reference documents it in bodies only): it is
            # simply resent after the wait.

    @staticmethod
    def _refused_401(method: str, path: str) -> str:
        return (
            f"Tradovate refused {method} {path} (HTTP 401) although the session is valid: this login may not "
            "do it (for a live account, the device may need approving at Tradovate)"
        )

    def slow_down(self, where: str) -> float:
        """A 423 on ``where``: hold every request (REST and sockets) for a growing pause."""
        delay = self.lockout.slow_down()
        log.warning("Tradovate warned of a lockout (423) on %s: holding every request for %.0fs", where, delay)
        if self.http.limiter is not None:
            self.http.limiter.penalize(delay, None)
        if self.on_slow_down is not None:
            self.on_slow_down(delay, where)
        return delay

    def _short(self, text: str) -> str:
        text = self.redactor.scrub(text.strip())
        return (text[:200] + "...") if len(text) > 200 else (text or "no details")

    # ------------------------------------------------------------------ entities (A3)

    async def entity_list(self, entity: str) -> list[dict[str, Any]]:
        return _as_list(await self.call("GET", f"/{entity}/list"))

    async def entity_item(self, entity: str, entity_id: int) -> dict[str, Any]:
        return _as_dict(await self.call("GET", f"/{entity}/item", params={"id": entity_id}), f"{entity} {entity_id}")

    async def entity_find(self, entity: str, name: str) -> dict[str, Any]:
        data = await self.call("GET", f"/{entity}/find", params={"name": name})
        # A5: an unknown name may come back as an empty result instead of a 404.
        if not data:
            raise NotFound(f"Tradovate has no {entity} named {name!r}")
        return _as_dict(data, f"{entity} {name}")

    async def entity_suggest(self, entity: str, text: str, limit: int) -> list[dict[str, Any]]:
        return _as_list(await self.call("GET", f"/{entity}/suggest", params={"t": text, "l": limit}))

    async def entity_deps(self, entity: str, master_id: int) -> list[dict[str, Any]]:
        return _as_list(await self.call("GET", f"/{entity}/deps", params={"masterid": master_id}))

    async def snapshot(self) -> dict[str, Any]:
        """The user's trading state read over REST, in the shape of a ``user/syncrequest`` reply.

        The socket sync is the vendor's recommended path (TV-FAQ: cache and sync, do not poll);
        this is the fallback when the trading socket cannot be opened.
        """
        keys = {
            "account": "accounts",
            "position": "positions",
            "order": "orders",
            "orderVersion": "orderVersions",
            "fill": "fills",
            "fillPair": "fillPairs",
            "cashBalance": "cashBalances",
            "command": "commands",
            "executionReport": "executionReports",
        }
        rows = await asyncio.gather(*(self.entity_list(entity) for entity in keys))
        return dict(zip(keys.values(), rows, strict=True))

    async def me(self) -> dict[str, Any]:
        return _as_dict(await self.call("GET", "/auth/me"), "auth/me")

    async def cash_balance_snapshot(self, account_id: int) -> dict[str, Any]:
        data = await self.call(
            "POST", "/cashBalance/getcashbalancesnapshot", body={"accountId": account_id}, repeatable=True
        )
        return _as_dict(data, "cash balance snapshot")

    # ------------------------------------------------------------------ orders (A5)

    async def place_order(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return _as_dict(await self.call("POST", "/order/placeorder", body=body, repeatable=False), "placeorder")

    async def place_oso(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return _as_dict(await self.call("POST", "/order/placeoso", body=body, repeatable=False), "placeoso")

    async def place_oco(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return _as_dict(await self.call("POST", "/order/placeoco", body=body, repeatable=False), "placeoco")

    async def modify_order(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return _as_dict(await self.call("POST", "/order/modifyorder", body=body, repeatable=False), "modifyorder")

    async def cancel_order(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return _as_dict(await self.call("POST", "/order/cancelorder", body=body, repeatable=False), "cancelorder")

    async def liquidate_position(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return _as_dict(
            await self.call("POST", "/order/liquidateposition", body=body, repeatable=False), "liquidateposition"
        )


async def _unsent(getting: Awaitable[Token]) -> Token:
    """A token for a request not sent yet: if getting one fails, the request certainly never left."""
    try:
        return await getting
    except BrokerError as exc:
        if exc.sent is None:
            exc.sent = False
        raise


def _as_list(data: Any) -> list[dict[str, Any]]:
    if data is None:
        return []
    if not isinstance(data, list):
        raise BrokerError(f"Tradovate sent {type(data).__name__} where a list was expected")
    return [d for d in data if isinstance(d, dict)]


def _as_dict(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise BrokerError(f"Tradovate sent {type(data).__name__} for {what} where an object was expected")
    return data

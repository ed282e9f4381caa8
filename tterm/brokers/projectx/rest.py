"""ProjectX REST: one ``call`` that knows the gateway's answers, and the endpoints tterm uses.

What ``call`` handles (B2, B10, vendor-updates.md):

- every call is ``POST /api/<Path>`` with a JSON body and ``Authorization: Bearer <JWT>`` (the
  login calls excepted). Business failures come back as HTTP 200 with ``success: false`` and a
  per-endpoint ``errorCode``: they raise :class:`Envelope` for the caller to put in words;
- one shared limiter for the login: 200 requests per 60 s, and History/retrieveBars 30 per 30 s;
- HTTP 401 (the gateway refused the token: JwtBearer answers before the action runs): a read
  gets one fresh session and one more try. A mutating call (place, modify, cancel, close) is
  never sent again here, even though the 401 means it was not processed: it raises with
  ``sent=None`` so the router looks the order up by its ``customTag`` first (project-x-py PR #124
  made the same change after resends doubled orders);
- HTTP 429: the limiter holds every request for ``Retry-After`` (or the backoff). A read waits
  and is asked again (``read_retries``); a mutating call raises :class:`RateLimited`;
- transport errors: reads are tried again; a mutating call raises ``ConnectionFailed`` whose
  ``sent`` says whether it may have arrived;
- HTTP 400 (ASP.NET model validation, a ProblemDetails body): :class:`BadRequest` naming the fields.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

from tterm.brokers.common.backoff import Backoff
from tterm.brokers.common.http import ConnectionFailed, HttpClient
from tterm.brokers.common.ratelimit import Window
from tterm.brokers.common.tokens import Token, TokenManager
from tterm.core.broker import AuthError, BrokerError, RateLimited
from tterm.core.redact import Redactor

log = logging.getLogger(__name__)

BARS_KEY = "history/retrievebars"


def limits(per_minute: int = 200, bars_per_30s: int = 30) -> tuple[Sequence[Window], Mapping[str, Sequence[Window]]]:
    """The gateway's windows (vendor-updates.md: the official rate-limits page)."""
    return (Window(per_minute, 60.0),), {BARS_KEY: (Window(bars_per_30s, 30.0),)}


class Envelope(BrokerError):
    """``success: false`` under HTTP 200: the endpoint's ``errorCode`` and ``errorMessage``."""

    def __init__(self, path: str, code: int, message: str, data: Mapping[str, Any]) -> None:
        super().__init__(f"ProjectX {path}: error {code}" + (f" ({message})" if message else ""), sent=True)
        self.path = path
        self.code = code
        self.message = message
        self.data = data

    @property
    def detail(self) -> str:
        return f" (ProjectX: {self.message})" if self.message else ""


class BadRequest(BrokerError):
    """HTTP 400: the gateway could not bind the request (fields named in ``errors``)."""


class ProjectXRest:
    """The REST half of a ProjectX login. ``tokens`` is attached once the auth layer exists."""

    def __init__(
        self,
        http: HttpClient,
        *,
        redactor: Redactor,
        read_retries: int = 2,
        backoff: Backoff | None = None,
    ) -> None:
        self.http = http
        self.redactor = redactor
        self.tokens: TokenManager | None = None
        self.read_retries = read_retries
        self._backoff = backoff or Backoff(base=1.0, cap=60.0)
        self.unauthorized = 0
        self.rate_limited = 0

    async def call(
        self,
        path: str,
        body: Mapping[str, Any] | None,
        *,
        authed: bool = True,
        bearer: str | None = None,
        mutating: bool = False,
    ) -> dict[str, Any]:
        """POST ``body`` to ``/api/<path>``; the envelope's payload, or :class:`Envelope` when
        ``success`` is false."""
        key = path.lower()
        tries = 0
        auth_retried = False
        while True:
            token: Token | None = None
            auth = bearer
            if auth is None and authed:
                if self.tokens is None:
                    raise AuthError("not logged in to ProjectX", sent=False)
                token = await _unsent(self.tokens.get())
                auth = token.value
            try:
                resp = await self.http.request(
                    "POST", f"/{path}", json=dict(body) if body is not None else None, bearer=auth, limit_key=key
                )
            except ConnectionFailed:
                if not mutating and tries < self.read_retries:
                    tries += 1
                    await asyncio.sleep(0.2 * tries)
                    continue
                raise
            if resp.status == 401:
                self.unauthorized += 1
                if token is not None and self.tokens is not None and not auth_retried:
                    auth_retried = True
                    log.info("ProjectX refused the session on %s (401); starting a new session", path)
                    await _unsent(self.tokens.invalidate(token))
                    if not mutating:
                        continue
                    raise AuthError(
                        f"ProjectX refused the session for {path} (HTTP 401); a new session was opened. "
                        "Not re-sent here: the order is looked up by its tag first",
                        sent=None,
                    )
                raise AuthError(f"ProjectX refused the session for {path} (HTTP 401)", sent=None if mutating else False)
            if resp.status == 429:
                self.rate_limited += 1
                delay = max(resp.retry_after() or 0.0, self._backoff.next_delay())
                log.warning("ProjectX rate limit (429) on %s: holding requests for %.1fs", path, delay)
                if self.http.limiter is not None:
                    self.http.limiter.penalize(delay, key if key == BARS_KEY else None)
                if not mutating and tries < self.read_retries:
                    tries += 1
                    continue  # the limiter holds this request until the penalty is over
                raise RateLimited(
                    f"ProjectX rate limit on {path} (HTTP 429); requests are held for {delay:.0f}s",
                    retry_after=delay,
                    sent=None if mutating else False,
                )
            if resp.status == 400:
                raise BadRequest(
                    f"ProjectX refused {path} as malformed: {self._problem(_maybe_json(resp))}", sent=False
                )
            if resp.status >= 500:
                raise BrokerError(
                    f"ProjectX server error on {path} (HTTP {resp.status})", sent=None if mutating else False
                )
            if not resp.ok:
                raise BrokerError(f"ProjectX refused {path} (HTTP {resp.status})", sent=False)
            data = resp.json()
            if not isinstance(data, dict):
                raise BrokerError(f"ProjectX {path}: the answer is not an object ({type(data).__name__})")
            self._backoff.reset()
            if data.get("success") is False or (data.get("errorCode") not in (None, 0)):
                code = data.get("errorCode")
                message = self.redactor.scrub(str(data.get("errorMessage") or "").strip())
                raise Envelope(path, code if isinstance(code, int) else -1, message, data)
            return data

    def _problem(self, data: Any) -> str:
        if isinstance(data, Mapping) and isinstance(data.get("errors"), Mapping):
            parts = [
                f"{k or 'body'}: {' '.join(map(str, v)) if isinstance(v, list) else v}"
                for k, v in data["errors"].items()
            ]
            return self.redactor.scrub("; ".join(parts))[:300]
        return "no details"

    # ------------------------------------------------------------------ endpoints (B4-B8)

    async def accounts(self, only_active: bool = True) -> list[dict[str, Any]]:
        return _rows(await self.call("Account/search", {"onlyActiveAccounts": only_active}), "accounts")

    async def contracts(self, text: str, live: bool) -> list[dict[str, Any]]:
        return _rows(await self.call("Contract/search", {"searchText": text, "live": live}), "contracts")

    async def contract(self, contract_id: str) -> dict[str, Any] | None:
        data = await self.call("Contract/searchById", {"contractId": contract_id})
        # U9: the current docs answer ``contract``; early ones ``contracts: [one]``. Both are taken.
        one = data.get("contract")
        if isinstance(one, dict):
            return one
        many = data.get("contracts")
        if isinstance(many, list) and many and isinstance(many[0], dict):
            return many[0]
        return None

    async def bars(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        return _rows(await self.call("History/retrieveBars", body), "bars")

    async def orders(self, account_id: int, start: str, end: str | None = None) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"accountId": account_id, "startTimestamp": start}
        if end is not None:
            body["endTimestamp"] = end
        return _rows(await self.call("Order/search", body), "orders")

    async def open_orders(self, account_id: int) -> list[dict[str, Any]]:
        return _rows(await self.call("Order/searchOpen", {"accountId": account_id}), "orders")

    async def place(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self.call("Order/place", body, mutating=True)

    async def modify(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self.call("Order/modify", body, mutating=True)

    async def cancel(self, account_id: int, order_id: int) -> dict[str, Any]:
        return await self.call("Order/cancel", {"accountId": account_id, "orderId": order_id}, mutating=True)

    async def positions(self, account_id: int) -> list[dict[str, Any]]:
        return _rows(await self.call("Position/searchOpen", {"accountId": account_id}), "positions")

    async def close_position(self, account_id: int, contract_id: str) -> dict[str, Any]:
        body = {"accountId": account_id, "contractId": contract_id}
        return await self.call("Position/closeContract", body, mutating=True)

    async def partial_close(self, account_id: int, contract_id: str, size: int) -> dict[str, Any]:
        # vendor-updates.md: the docs send ``size`` (an older field name was ``closeSize``).
        body = {"accountId": account_id, "contractId": contract_id, "size": size}
        return await self.call("Position/partialCloseContract", body, mutating=True)

    async def trades(self, account_id: int, start: str, end: str | None = None) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"accountId": account_id, "startTimestamp": start}
        if end is not None:
            body["endTimestamp"] = end
        return _rows(await self.call("Trade/search", body), "trades")


def _maybe_json(resp: Any) -> Any:
    try:
        return resp.json()
    except BrokerError:
        return None


async def _unsent(getting: Awaitable[Token]) -> Token:
    """A token for a request not sent yet: if getting one fails, the request certainly never left."""
    try:
        return await getting
    except BrokerError as exc:
        if exc.sent is None:
            exc.sent = False
        raise


def _rows(data: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    rows = data.get(key)
    if rows is None:
        return []
    if not isinstance(rows, list):
        raise BrokerError(f"ProjectX sent {type(rows).__name__} for {key} where a list was expected")
    return [r for r in rows if isinstance(r, dict)]

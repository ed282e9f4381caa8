"""Schwab REST: one ``call`` that knows the vendor's answers, and the endpoints tterm uses.

What ``call`` handles (A3, A9):

- a bearer token from the token manager; a 401 (the token was refused, the request was not
  processed) gets one refreshed token and one more try. While the login is gone (the refresh
  token expired) nothing is sent at all: :class:`LoginRequired` says "log in again";
- limits: 120 non-order requests a minute for the app, and a per-account budget of order writes
  (POST/PUT/DELETE on orders; 0-120 a minute, chosen when the app was registered), each in its own
  sliding window on the adapter's clock;
- HTTP 429: the window it hit is held for the backoff (``Retry-After`` when sent; Schwab documents
  neither body nor headers). A read waits that out and is asked again (twice at most); an order
  write is never resent: it raises :class:`RateLimited` with ``sent=False`` and the router, the
  one owner of retry, decides;
- transport errors: reads are tried again; anything else raises ``ConnectionFailed`` whose
  ``sent`` says whether it may have arrived, for the router to look the order up.

Responses come back whole (:class:`~tterm.brokers.common.http.HttpResponse`): order writes need
the status and the ``Location`` header, not only the body.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from tterm.brokers.common.backoff import Backoff
from tterm.brokers.common.clock import Clock
from tterm.brokers.common.http import ConnectionFailed, HttpClient, HttpResponse
from tterm.brokers.common.ratelimit import RateLimiter, Window
from tterm.brokers.common.tokens import Token, TokenManager
from tterm.brokers.schwab.mapping import error_text, iso
from tterm.core.broker import AuthError, BrokerError, LoginRequired, RateLimited
from tterm.core.redact import Redactor

log = logging.getLogger(__name__)

TRADER, MARKETDATA = "/trader/v1", "/marketdata/v1"
TRANSACTION_TYPES = "TRADE"


class NotFound(BrokerError):
    """Schwab has no such order or account (HTTP 404)."""


class Refusal(BrokerError):
    """Schwab refused the request as it stands (HTTP 400/403/405): ``reason`` in plain words."""

    def __init__(self, message: str, reason: str, status: int) -> None:
        super().__init__(message, sent=False)
        self.reason = reason
        self.status = status


class SchwabRest:
    """The REST half of a Schwab login. ``tokens`` is attached by the broker once it has a login."""

    def __init__(
        self,
        http: HttpClient,
        *,
        clock: Clock,
        redactor: Redactor,
        data_per_minute: int,
        orders_per_minute: int,
        backoff: Backoff,
        login_gone: Callable[[], str | None],
        on_login_lost: Callable[[LoginRequired], None] | None = None,
    ) -> None:
        self.http = http
        self.clock = clock
        self.redactor = redactor
        self.tokens: TokenManager | None = None
        self._login_gone = login_gone
        self._on_login_lost = on_login_lost
        self._orders_per_minute = orders_per_minute
        self._backoff = backoff
        self.data = self._limiter(data_per_minute)
        self._writes: dict[str, RateLimiter] = {}
        self.rate_limited = 0
        self.unauthorized = 0

    def _limiter(self, per_minute: int) -> RateLimiter:
        return RateLimiter(
            [Window(per_minute, 60.0)], time=lambda: self.clock.now().timestamp(), sleep=self.clock.sleep
        )

    def writes(self, account_hash: str) -> RateLimiter:
        if account_hash not in self._writes:
            self._writes[account_hash] = self._limiter(max(1, self._orders_per_minute))
        return self._writes[account_hash]

    # ------------------------------------------------------------------ the one call

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        write_account: str | None = None,
    ) -> HttpResponse:
        """Send one request and return the response (2xx; other statuses raise, see the module).

        ``write_account`` (an account hash) marks an order write: it counts against that account's
        order budget, and is never sent twice.
        """
        write = write_account is not None
        if write and self._orders_per_minute == 0:
            raise BrokerError(
                "this Schwab app's order budget is 0 a minute (orders_per_minute = 0): no order can be sent",
                sent=False,
            )
        limiter = self.writes(write_account) if write_account is not None else self.data
        resent = limited = 0
        auth_retried = False
        while True:
            gone = self._login_gone()
            if gone:
                raise LoginRequired(gone, sent=False)
            token = await self._unsent(self._token())
            await limiter.acquire()
            try:
                resp = await self.http.request(method, path, params=params, json=body, bearer=token.value)
            except ConnectionFailed:
                if not write and resent < 2:
                    resent += 1
                    await asyncio.sleep(0.2 * resent)
                    continue
                raise
            if resp.status == 401:
                self.unauthorized += 1
                if not auth_retried and self.tokens is not None:
                    auth_retried = True
                    log.info("Schwab refused the access token on %s (401); refreshing it", path)
                    await self._unsent(self.tokens.invalidate(token))
                    continue
                raise AuthError(f"Schwab refused the login for {method} {path} (HTTP 401)", sent=False)
            if resp.status == 429:
                self.rate_limited += 1
                delay = max(resp.retry_after() or 0.0, self._backoff.next_delay())
                limiter.penalize(delay)
                what = "order writes of this account" if write else "data requests"
                log.warning("Schwab rate limit (429) on %s: holding %s for %.1fs", path, what, delay)
                if not write and limited < 2:
                    limited += 1
                    continue  # the limiter holds the next try for the backoff
                raise RateLimited(
                    f"Schwab rate limit on {method} {path} (HTTP 429): not processed; {what} are held for {delay:.0f}s",
                    retry_after=delay,
                    sent=False,
                )
            if resp.status == 404:
                raise NotFound(f"Schwab: {method} {path} found nothing ({self._reason(resp)})", sent=False)
            if resp.status in (400, 403, 405, 422):
                reason = self._reason(resp)
                raise Refusal(f"Schwab refused {method} {path} (HTTP {resp.status}): {reason}", reason, resp.status)
            if resp.status >= 500 or not resp.ok:
                # The server failed while handling it: whether an order write acted is unknown.
                if not write and resent < 2:
                    resent += 1
                    await asyncio.sleep(0.2 * resent)
                    continue
                raise BrokerError(f"Schwab server error on {method} {path} (HTTP {resp.status})")
            self._backoff.reset()
            return resp

    async def _unsent(self, getting: Awaitable[Token]) -> Token:
        """A token for a request not sent yet: a failure means the request never left; a refused
        refresh token means the login is gone (the broker is told once, and stops asking)."""
        try:
            return await _unsent(getting)
        except LoginRequired as exc:
            if self._on_login_lost is not None:
                self._on_login_lost(exc)
            raise

    async def _token(self) -> Token:
        if self.tokens is None:
            raise LoginRequired("not logged in to Schwab", sent=False)
        return await self.tokens.get()

    def _reason(self, resp: HttpResponse) -> str:
        try:
            body = resp.json() if resp.body.strip() else None
        except BrokerError:
            body = resp.text[:200]
        return self.redactor.scrub(error_text(resp.status, body))

    async def get(self, path: str, **params: Any) -> Any:
        resp = await self.call("GET", path, params={k: v for k, v in params.items() if v is not None})
        return resp.json() if resp.body.strip() else None

    # ------------------------------------------------------------------ trader (A4)

    async def account_numbers(self) -> list[dict[str, Any]]:
        return _rows(await self.get(f"{TRADER}/accounts/accountNumbers"))

    async def accounts(self) -> list[dict[str, Any]]:
        return _rows(await self.get(f"{TRADER}/accounts", fields="positions"))

    async def account(self, account_hash: str) -> dict[str, Any]:
        data = await self.get(f"{TRADER}/accounts/{account_hash}", fields="positions")
        return data if isinstance(data, dict) else {}

    async def preferences(self) -> dict[str, Any]:
        data = await self.get(f"{TRADER}/userPreference")
        if isinstance(data, list):  # the spec says an array; real answers are an object (A4): accept both
            data = data[0] if data else {}
        return data if isinstance(data, dict) else {}

    async def orders(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """Every account's orders entered in ``[since, until]`` (at most 60 days back, A4)."""
        return _rows(
            await self.get(f"{TRADER}/orders", fromEnteredTime=iso(since), toEnteredTime=iso(until), maxResults=3000)
        )

    async def order(self, account_hash: str, order_id: str) -> dict[str, Any]:
        data = await self.get(f"{TRADER}/accounts/{account_hash}/orders/{order_id}")
        return data if isinstance(data, dict) else {}

    async def place(self, account_hash: str, body: Mapping[str, Any]) -> HttpResponse:
        return await self.call(
            "POST", f"{TRADER}/accounts/{account_hash}/orders", body=body, write_account=account_hash
        )

    async def replace(self, account_hash: str, order_id: str, body: Mapping[str, Any]) -> HttpResponse:
        return await self.call(
            "PUT", f"{TRADER}/accounts/{account_hash}/orders/{order_id}", body=body, write_account=account_hash
        )

    async def cancel(self, account_hash: str, order_id: str) -> HttpResponse:
        return await self.call(
            "DELETE", f"{TRADER}/accounts/{account_hash}/orders/{order_id}", write_account=account_hash
        )

    async def preview(self, account_hash: str, body: Mapping[str, Any]) -> Any:
        # previewOrder is a POST but places nothing: it counts as a data request (not documented).
        resp = await self.call("POST", f"{TRADER}/accounts/{account_hash}/previewOrder", body=body)
        return resp.json() if resp.body.strip() else None

    async def transactions(self, account_hash: str, since: datetime, until: datetime) -> list[dict[str, Any]]:
        return _rows(
            await self.get(
                f"{TRADER}/accounts/{account_hash}/transactions",
                startDate=iso(since),
                endDate=iso(until),
                types=TRANSACTION_TYPES,
            )
        )

    # ------------------------------------------------------------------ market data (A5)

    async def quotes(self, symbols: list[str]) -> dict[str, Any]:
        data = await self.get(f"{MARKETDATA}/quotes", symbols=",".join(symbols), fields="quote,reference")
        return data if isinstance(data, dict) else {}

    async def chain(self, symbol: str, expiry: str, strikes: int) -> Any:
        return await self.get(
            f"{MARKETDATA}/chains",
            symbol=symbol,
            contractType="ALL",
            strikeCount=strikes,
            includeUnderlyingQuote="true",
            fromDate=expiry,
            toDate=expiry,
        )

    async def expirations(self, symbol: str) -> Any:
        return await self.get(f"{MARKETDATA}/expirationchain", symbol=symbol)

    async def price_history(self, params: Mapping[str, Any]) -> Any:
        return await self.get(f"{MARKETDATA}/pricehistory", **params)

    async def instruments(self, symbol: str, projection: str) -> Any:
        return await self.get(f"{MARKETDATA}/instruments", symbol=symbol, projection=projection)


async def _unsent(getting: Awaitable[Token]) -> Token:
    """A token for a request not sent yet: if getting one fails, the request certainly never left."""
    try:
        return await getting
    except BrokerError as exc:
        if exc.sent is None:
            exc.sent = False
        raise


def _rows(data: Any) -> list[dict[str, Any]]:
    if data is None:
        return []
    if not isinstance(data, list):
        raise BrokerError(f"Schwab sent {type(data).__name__} where a list was expected")
    return [d for d in data if isinstance(d, dict)]

"""Tastytrade REST: one ``call`` that knows the vendor's answers, and the endpoints tterm uses.

What ``call`` handles (B3, B9):

- the bearer token from the token manager; a 401 gets one fresh token and one more try (the
  request was not processed). The User-Agent (``product/version``, B2.1) is on every request:
  the http client carries it as a default header, so no request can leave without it;
- the envelope: ``{"data": …, "context"}`` is unwrapped, lists are ``data.items``, paginated
  lists carry a top-level ``pagination`` (:meth:`TastytradeRest.pages` walks them);
- errors: ``{"error": {"code", "message", "errors"?}}`` becomes :class:`Refusal` (400/403/409/
  422, a plain-words reason from the message and each sub-error) or :class:`NotFound` (404);
  the 406 version error's ``code`` is numeric (B3) and read as text like the others;
- 429 (no rate-limit headers, B9): the limiter holds every request for a jittered, growing
  backoff; a read is asked again (three times at most), an order write never: it raises
  :class:`RateLimited` with ``sent=False`` for the router to decide;
- transport errors and 5xx: reads are tried again; writes raise with ``sent`` saying whether the
  request may have arrived, so the router looks the order up by its external identifier.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import date
from typing import Any
from urllib.parse import quote

from tterm.brokers.common.backoff import Backoff
from tterm.brokers.common.clock import Clock
from tterm.brokers.common.http import BadResponse, ConnectionFailed, HttpClient, HttpResponse
from tterm.brokers.common.ratelimit import RateLimiter, Window
from tterm.brokers.common.tokens import Token, TokenManager
from tterm.core.broker import AuthError, BrokerError, LoginRequired, RateLimited
from tterm.core.redact import Redactor

log = logging.getLogger(__name__)
JSON = dict[str, Any]
READ_RETRIES = 3


class NotFound(BrokerError):
    """Tastytrade has no such order, account or instrument (HTTP 404)."""


class Refusal(BrokerError):
    """Tastytrade refused the request as it stands: ``reason`` in plain words, ``code`` its own."""

    def __init__(self, message: str, reason: str, status: int, code: str = "") -> None:
        super().__init__(message, sent=False)
        self.reason = reason
        self.status = status
        self.code = code


def error_reason(body: Any, status: int) -> tuple[str, str]:
    """``(code, reason)`` from an error envelope; every sub-error's message is kept."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return "", f"HTTP {status}"
    code = str(err.get("code") or "")  # 406 sends a number (B3)
    parts = [str(err.get("message") or "").strip()]
    for sub in err.get("errors") or []:
        if isinstance(sub, dict):
            # TT-SDK also reads sub-errors shaped {"domain", "reason"}.
            text = str(sub.get("message") or sub.get("reason") or "").strip()
            if text and text not in parts:
                parts.append(text)
    reason = "; ".join(p for p in parts if p) or code or f"HTTP {status}"
    return code, reason


def path_symbol(symbol: str) -> str:
    """A symbol in a URL path: ``/`` and spaces encoded (``/ESZ6`` -> ``%2FESZ6``, B4)."""
    return quote(symbol, safe="")


class TastytradeRest:
    """The REST half of a Tastytrade login. ``tokens`` is attached by the broker."""

    def __init__(
        self,
        http: HttpClient,
        *,
        clock: Clock,
        redactor: Redactor,
        per_second: int,
        backoff: Backoff,
        on_login_lost: Callable[[LoginRequired], None] | None = None,
    ) -> None:
        self.http = http
        self.clock = clock
        self.redactor = redactor
        self.tokens: TokenManager | None = None
        self._backoff = backoff
        self._on_login_lost = on_login_lost
        self.limiter = RateLimiter([Window(per_second, 1.0)])
        self.rate_limited = 0
        self.unauthorized = 0

    # ------------------------------------------------------------------ the one call

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        write: bool = False,
    ) -> JSON:
        """Send one request; the whole envelope (``data``, ``pagination``) of a 2xx answer."""
        resent = limited = 0
        auth_retried = False
        while True:
            token = await self._unsent(self._token())
            await self.limiter.acquire()
            try:
                resp = await self.http.request(method, path, params=params, json=body, bearer=token.value)
            except ConnectionFailed:
                if not write and resent < READ_RETRIES - 1:
                    resent += 1
                    await asyncio.sleep(0.2 * resent)
                    continue
                raise
            if resp.status == 401:
                self.unauthorized += 1
                if not auth_retried and self.tokens is not None:
                    auth_retried = True
                    log.info("Tastytrade refused the access token on %s %s (401); minting another", method, path)
                    await self._unsent(self.tokens.invalidate(token))
                    continue
                _, reason = error_reason(_json_or_none(resp), 401)
                raise AuthError(f"Tastytrade refused the login for {method} {path} ({reason})", sent=False)
            if resp.status == 429:
                self.rate_limited += 1
                delay = max(resp.retry_after() or 0.0, self._backoff.next_delay())
                self.limiter.penalize(delay)
                log.warning("Tastytrade rate limit (429) on %s %s: holding requests for %.1fs", method, path, delay)
                if not write and limited < READ_RETRIES:
                    limited += 1
                    continue
                raise RateLimited(
                    f"Tastytrade rate limit on {method} {path} (HTTP 429): not processed; requests are held "
                    f"for {delay:.0f}s",
                    retry_after=delay,
                    sent=False,
                )
            if resp.status >= 500:
                if not write and resent < READ_RETRIES - 1:
                    resent += 1
                    await asyncio.sleep(0.2 * resent)
                    continue
                raise BrokerError(f"Tastytrade server error on {method} {path} (HTTP {resp.status})")
            if not resp.ok:
                code, reason = error_reason(_json_or_none(resp), resp.status)
                reason = self.redactor.scrub(reason)
                if resp.status == 404:
                    raise NotFound(f"Tastytrade: {method} {path} found nothing ({reason})", sent=False)
                raise Refusal(
                    f"Tastytrade refused {method} {path} (HTTP {resp.status}): {reason}", reason, resp.status, code
                )
            self._backoff.reset()
            if not resp.body.strip():
                return {}
            doc = resp.json()
            if not isinstance(doc, dict):
                raise BadResponse(f"Tastytrade sent {type(doc).__name__} for {method} {path}, not an object")
            return doc

    async def _unsent(self, getting: Awaitable[Token]) -> Token:
        """A token for a request not yet sent: a failure means it never left; a refused grant is
        reported to the broker (once it stops asking)."""
        try:
            return await getting
        except LoginRequired as exc:
            exc.sent = False
            if self._on_login_lost is not None:
                self._on_login_lost(exc)
            raise
        except BrokerError as exc:
            if exc.sent is None:
                exc.sent = False
            raise

    async def _token(self) -> Token:
        if self.tokens is None:
            # Not connected yet (or stopped): nothing was sent, and the grant is not in question.
            raise BrokerError("Tastytrade is not connected yet; nothing was sent", sent=False)
        return await self.tokens.get()

    async def data(self, path: str, **params: Any) -> Any:
        doc = await self.call("GET", path, params=_params(params))
        return doc.get("data")

    async def items(self, path: str, **params: Any) -> list[JSON]:
        return _items(await self.data(path, **params))

    async def pages(self, path: str, *, per_page: int = 250, max_pages: int = 40, **params: Any) -> list[JSON]:
        """Every item of a paginated list (``per-page``/``page-offset``, B3)."""
        out: list[JSON] = []
        for offset in range(max_pages):
            doc = await self.call("GET", path, params=_params({**params, "per-page": per_page, "page-offset": offset}))
            out.extend(_items(doc.get("data")))
            pages = doc.get("pagination")
            total = pages.get("total-pages") if isinstance(pages, dict) else None
            if not isinstance(total, int) or offset + 1 >= total:
                return out
        log.warning("Tastytrade %s: stopped after %d pages", path, max_pages)
        return out

    # ------------------------------------------------------------------ accounts (B4)

    async def accounts(self) -> list[JSON]:
        return await self.items("/customers/me/accounts")

    async def balances(self, number: str) -> JSON:
        return _obj(await self.data(f"/accounts/{number}/balances"))

    async def positions(self, number: str) -> list[JSON]:
        return await self.items(f"/accounts/{number}/positions", **{"include-marks": "true"})

    async def live_orders(self, number: str) -> list[JSON]:
        return await self.items(f"/accounts/{number}/orders/live")

    async def order(self, number: str, order_id: str) -> JSON:
        return _obj(await self.data(f"/accounts/{number}/orders/{order_id}"))

    async def transactions(self, number: str, day: date, *, symbol: str | None = None) -> list[JSON]:
        params: dict[str, Any] = {"start-date": day.isoformat(), "type": "Trade", "sort": "Asc"}
        if symbol:
            params["symbol"] = symbol
        return await self.pages(f"/accounts/{number}/transactions", **params)

    # ------------------------------------------------------------------ orders (B4, B6)

    async def place(self, number: str, body: JSON) -> JSON:
        return _obj((await self.call("POST", f"/accounts/{number}/orders", body=body, write=True)).get("data"))

    async def dry_run(self, number: str, body: JSON) -> JSON:
        return _obj((await self.call("POST", f"/accounts/{number}/orders/dry-run", body=body)).get("data"))

    async def replace(self, number: str, order_id: str, body: JSON) -> JSON:
        doc = await self.call("PUT", f"/accounts/{number}/orders/{order_id}", body=body, write=True)
        return _obj(doc.get("data"))

    async def cancel(self, number: str, order_id: str) -> JSON:
        doc = await self.call("DELETE", f"/accounts/{number}/orders/{order_id}", write=True)
        return _obj(doc.get("data"))

    async def place_complex(self, number: str, body: JSON) -> JSON:
        doc = await self.call("POST", f"/accounts/{number}/complex-orders", body=body, write=True)
        return _obj(doc.get("data"))

    async def dry_run_complex(self, number: str, body: JSON) -> JSON:
        return _obj((await self.call("POST", f"/accounts/{number}/complex-orders/dry-run", body=body)).get("data"))

    async def cancel_complex(self, number: str, complex_id: str) -> JSON:
        doc = await self.call("DELETE", f"/accounts/{number}/complex-orders/{complex_id}", write=True)
        return _obj(doc.get("data"))

    # ------------------------------------------------------------------ instruments and data (B4)

    async def quote_token(self) -> JSON:
        return _obj(await self.data("/api-quote-tokens"))

    async def equity(self, symbol: str) -> JSON:
        return _obj(await self.data(f"/instruments/equities/{path_symbol(symbol)}"))

    async def equity_option(self, symbol: str) -> JSON:
        return _obj(await self.data(f"/instruments/equity-options/{path_symbol(symbol)}"))

    async def futures(self, symbols: list[str]) -> list[JSON]:
        # B4: the symbol goes without its "/" in the query (TT-SDK strips it; the fake takes both).
        return await self.items("/instruments/futures", **{"symbol[]": [s.lstrip("/") for s in symbols]})

    async def future_option(self, symbol: str) -> JSON:
        return _obj(await self.data(f"/instruments/future-options/{path_symbol(symbol)}"))

    async def nested_chain(self, symbol: str) -> list[JSON]:
        return await self.items(f"/option-chains/{path_symbol(symbol)}/nested")

    async def nested_futures_chain(self, product: str) -> JSON:
        return _obj(await self.data(f"/futures-option-chains/{path_symbol(product.lstrip('/'))}/nested"))

    async def search(self, fragment: str) -> list[JSON]:
        return await self.items(f"/symbols/search/{path_symbol(fragment)}")

    async def market_data(self, by_type: Mapping[str, list[str]]) -> list[JSON]:
        # B4: comma-delimited per the docs, at most 100 symbols in all.
        return await self.items("/market-data/by-type", **{k: ",".join(v) for k, v in by_type.items() if v})


def _params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _json_or_none(resp: HttpResponse) -> Any:
    try:
        return resp.json() if resp.body.strip() else None
    except BrokerError:
        return None


def _obj(data: Any) -> JSON:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadResponse(f"Tastytrade sent {type(data).__name__} where an object was expected")
    return data


def _items(data: Any) -> list[JSON]:
    if data is None:
        return []
    items = data.get("items") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise BadResponse("Tastytrade sent a list answer without items")
    return [i for i in items if isinstance(i, dict)]

"""An async JSON-over-HTTP client for broker REST APIs (httpx underneath).

It adds what every broker needs and nothing vendor-specific: a base URL, a bearer token per
call, the shared rate limiter, timeouts, and one error type for "could not get an answer"
that says whether the request may have reached the server (:attr:`ConnectionFailed.maybe_sent`).
That flag is what keeps order placement safe: a request that may have been sent must never be
blindly resent. Request and response bodies are never logged (they carry passwords and tokens).
"""

from __future__ import annotations

import json as _json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from tterm.brokers.common.ratelimit import RateLimiter
from tterm.core.broker import BrokerError
from tterm.core.redact import REDACTOR, Redactor

log = logging.getLogger(__name__)


class ConnectionFailed(BrokerError):
    """No answer from the server. ``maybe_sent``: the request may have been received and acted on.

    As a :class:`BrokerError` it carries ``sent``: False when the request certainly never left
    (the router may send it again), None when it may have arrived (the router looks it up first).
    """

    def __init__(self, message: str, *, maybe_sent: bool) -> None:
        super().__init__(message, sent=None if maybe_sent else False)
        self.maybe_sent = maybe_sent


class BadResponse(BrokerError):
    """The server answered with something that is not the JSON it promised."""


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A finished exchange: status, headers and the raw body (decode with :meth:`json`)."""

    method: str
    path: str
    status: int
    body: bytes = field(repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; raises :class:`BadResponse` if it is not."""
        if not self.body.strip():
            raise BadResponse(f"{self.method} {self.path}: empty response body (HTTP {self.status})")
        try:
            return _json.loads(self.body)
        except ValueError:
            raise BadResponse(
                f"{self.method} {self.path}: response is not JSON (HTTP {self.status}, {len(self.body)} bytes)"
            ) from None

    def retry_after(self) -> float | None:
        """The Retry-After header in seconds, when the server sent one as a number."""
        value = self.headers.get("retry-after")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None


# Errors raised before a single byte of the request could have reached the server.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class HttpClient:
    """One connection pool to one REST base URL."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        limiter: RateLimiter | None = None,
        user_agent: str = "tterm",
        transport: httpx.AsyncBaseTransport | None = None,
        redactor: Redactor | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter
        self._redactor = redactor or REDACTOR
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": user_agent, "Accept": "application/json", **(headers or {})},
            transport=transport,
            follow_redirects=False,
        )
        self.requests = 0

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        bearer: str | None = None,
        limit_key: str | None = None,
        read_timeout: float | None = None,
    ) -> HttpResponse:
        """Send one request (after the rate limiter allows it) and return the response, any status."""
        if self.limiter is not None:
            await self.limiter.acquire(limit_key)
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else None
        kwargs: dict[str, Any] = {"params": params, "headers": headers}
        if json is not None:
            kwargs["json"] = json
        if read_timeout is not None:
            kwargs["timeout"] = httpx.Timeout(read_timeout)
        self.requests += 1
        try:
            resp = await self._client.request(method, path, **kwargs)
        except _NOT_SENT as exc:
            raise ConnectionFailed(
                f"{method} {path}: could not connect to {self.base_url} ({type(exc).__name__})", maybe_sent=False
            ) from None
        except httpx.TimeoutException as exc:
            raise ConnectionFailed(
                f"{method} {path}: no answer from {self.base_url} in time ({type(exc).__name__})",
                maybe_sent=True,
            ) from None
        except httpx.HTTPError as exc:
            detail = self._redactor.scrub(str(exc)) or type(exc).__name__
            raise ConnectionFailed(f"{method} {path}: connection failed ({detail})", maybe_sent=True) from None
        log.debug("%s %s -> HTTP %s (%d bytes)", method, path, resp.status_code, len(resp.content))
        return HttpResponse(
            method=method,
            path=path,
            status=resp.status_code,
            body=resp.content,
            headers={k.lower(): v for k, v in resp.headers.items()},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

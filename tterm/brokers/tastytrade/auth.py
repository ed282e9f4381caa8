"""Tastytrade authentication (B2.1): the refresh grant, renewed ahead of the 15-minute life.

A personal OAuth grant never expires (TT-SDK docs), so a "login" here is one call: ``POST
/oauth/token`` with ``{"grant_type": "refresh_token", "refresh_token", "client_secret"}`` as JSON
(TT-DOC get-started and TT-SDK send JSON; the fake also takes form bodies, as TT-RS sends), with
the User-Agent and without an Authorization header (TT-SDK strips it). The answer is the bare
OAuth token JSON, not wrapped in ``data``; ``expires_in`` (900) drives renewal, 900 s when absent.

Access tokens live in the shared token store (0600, file-locked): a restart inside the 15 minutes,
or a second process on the same data dir, adopts the stored token instead of minting another.
A refused grant (400 ``invalid_grant``, 401 ``invalid_client``) is :class:`LoginRequired` whose
message says what to do: make a new grant and put it in the secrets; nothing is retried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from tterm.brokers.common.backoff import Backoff
from tterm.brokers.common.clock import Clock
from tterm.brokers.common.oauth import DEFAULT_EXPIRES_IN
from tterm.brokers.common.token_store import TokenStore, token_path
from tterm.brokers.common.tokens import Token, TokenManager
from tterm.brokers.tastytrade.config import TastytradeCredentials, TastytradeSettings
from tterm.core.broker import BrokerError, LoginRequired
from tterm.core.redact import Redactor

log = logging.getLogger(__name__)


def regrant_hint(broker: str) -> str:
    return (
        "create a new grant at my.tastytrade.com (Manage, My Profile, API, OAuth Applications, Create Grant) "
        f"and put its refresh token in the secrets file as refresh_token for {broker}, then restart tterm"
    )


def token_store(
    broker: str, data_dir: Path, credentials: TastytradeCredentials, settings: TastytradeSettings, redactor: Redactor
) -> TokenStore:
    """The broker's token file; its owner names the grant (a hash) and the host, so tokens of
    another grant or of the other environment are never sent."""
    owner = f"{credentials.fingerprint()}@{settings.rest_url}"
    return TokenStore(token_path(data_dir, broker), owner=owner, redactor=redactor)


class TokenEndpoint:
    """``POST /oauth/token`` with the refresh grant: one fresh access token per call."""

    def __init__(
        self,
        broker: str,
        credentials: TastytradeCredentials,
        settings: TastytradeSettings,
        *,
        clock: Clock,
        redactor: Redactor,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.broker = broker
        self._creds = credentials
        self._settings = settings
        self._clock = clock
        self._redactor = redactor
        self._transport = transport
        redactor.add(credentials.client_secret)
        redactor.add(credentials.refresh_token)
        self.requests = 0

    async def mint(self) -> Token:
        body: dict[str, Any] = {
            "grant_type": "refresh_token",
            "refresh_token": self._creds.refresh_token,
            "client_secret": self._creds.client_secret,
        }
        if self._settings.client_id:
            body["client_id"] = self._settings.client_id
        headers = {"User-Agent": self._settings.user_agent, "Accept": "application/json"}
        now = self._clock.now()
        self.requests += 1
        try:
            async with httpx.AsyncClient(transport=self._transport, timeout=self._settings.request_timeout) as http:
                resp = await http.post(self._settings.token_url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise BrokerError(
                f"could not reach Tastytrade's token endpoint ({type(exc).__name__}); retrying", sent=False
            ) from None
        if resp.status_code == 429 or resp.status_code >= 500:
            raise BrokerError(f"Tastytrade's token endpoint failed (HTTP {resp.status_code}); retrying", sent=False)
        try:
            data = resp.json()
        except ValueError:
            data = None
        if resp.status_code != 200 or not isinstance(data, dict):
            raise LoginRequired(
                f"Tastytrade refused the OAuth grant of {self.broker} ({self._why(resp.status_code, data)}); "
                + regrant_hint(self.broker),
                sent=False,
            )
        access = data.get("access_token")
        if not isinstance(access, str) or not access:
            raise BrokerError("Tastytrade's token endpoint answered without an access token", sent=False)
        self._redactor.add(access, rotating=True)
        try:
            lifetime = int(data.get("expires_in") or DEFAULT_EXPIRES_IN)
        except (TypeError, ValueError):
            lifetime = DEFAULT_EXPIRES_IN
        return Token(
            value=access,
            expires_at=now + timedelta(seconds=max(lifetime, 1)),
            issued_at=now,
            extra={"token_type": str(data.get("token_type") or "Bearer")},
        )

    def _why(self, status: int, data: Any) -> str:
        # RFC 6749 writes {"error", "error_description"}; Tastytrade has been seen answering
        # {"error_code", "error_description"} (tastyware/tastytrade #281): both are read.
        if isinstance(data, dict):
            code = data.get("error") or data.get("error_code") or ""
            if isinstance(code, dict):  # the REST error envelope
                code = code.get("message") or code.get("code") or ""
            text = ": ".join(str(x) for x in (code, data.get("error_description") or "") if x)
            if text:
                return self._redactor.scrub(f"HTTP {status}, {text}")
        return f"HTTP {status}"


def token_manager(
    endpoint: TokenEndpoint,
    store: TokenStore,
    settings: TastytradeSettings,
    *,
    clock: Clock,
    on_change: Callable[[Token], None] | None = None,
    on_error: Callable[[Exception], None] | None = None,
) -> TokenManager:
    """Keeps an access token good: minted from the grant ``refresh_leeway`` before expiry."""
    return TokenManager(
        login=endpoint.mint,
        renew=None,  # every access token comes from the grant: a "renewal" is a new mint
        clock=clock,
        renew_ahead=timedelta(seconds=settings.refresh_leeway),
        check_interval=settings.token_check_interval,
        on_change=on_change,
        on_error=on_error,
        retry=Backoff(base=settings.backoff_base, cap=max(settings.backoff_cap, settings.backoff_base)),
        store=store,
    )

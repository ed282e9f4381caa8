"""Schwab authentication (A2): the browser login, the refresh, and the 7-day login.

- The login is OAuth 2's authorization code, made by a person (:class:`OAuthLogin` from the kit:
  the authorize URL to open on any machine, the pasted redirect URL checked for the same
  redirect, the same state and a code, the code's ``%40`` decoded once, exchanged with the app's
  key and secret as HTTP Basic; no PKCE: no source sends it, D7).
- Access tokens last 30 minutes and are refreshed ``refresh_leeway`` ahead (authlib, which
  schwab-py uses, refreshes 5 minutes ahead). An expired access token is refreshed too, not
  replaced by a login (``renew_expired``): a login pasted in the morning still refreshes after 30
  minutes, and after a restart at noon. schwab-py's issue #222 is that bug in its clients built
  from a pasted URL; :func:`token_manager` is the one place that decides it here.
- The refresh token lasts 7 days from the browser login and refreshing does not extend it (A2):
  the login's end is kept with the tokens (``login_expires_at``) for the status bar's countdown.
  A refused refresh (400/401: expired, a password reset, revoked) is :class:`LoginRequired`: only
  a person can log in again, so tterm stops asking Schwab and says "log in again".
- Tokens live in the shared token store (0600, file-locked; a refresh is decided under the lock,
  so two processes on one data dir never both spend the same refresh token).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx

from tterm.brokers.common.backoff import Backoff
from tterm.brokers.common.clock import Clock
from tterm.brokers.common.oauth import OAuthApp, OAuthLogin
from tterm.brokers.common.token_store import TokenStore, token_path
from tterm.brokers.common.tokens import Token, TokenManager
from tterm.brokers.schwab.config import SchwabCredentials, SchwabSettings
from tterm.core.broker import LoginPrompt, LoginRequired, LoginResult
from tterm.core.redact import Redactor


def relogin_hint(broker: str) -> str:
    """The words every "the login is gone" message carries."""
    return f"log in again: tterm login {broker}"


def token_store(
    broker: str, data_dir: Path, credentials: SchwabCredentials, settings: SchwabSettings, redactor: Redactor
) -> TokenStore:
    """The broker's token file; its owner names the app and host, so another app's tokens are ignored."""
    return TokenStore(
        token_path(data_dir, broker), owner=f"{credentials.app_key}@{settings.api_url}", redactor=redactor
    )


def oauth_login(
    broker: str,
    credentials: SchwabCredentials,
    settings: SchwabSettings,
    store: TokenStore,
    *,
    clock: Clock,
    redactor: Redactor,
    transport: httpx.AsyncBaseTransport | None = None,
) -> OAuthLogin:
    """The browser login and the refresh, for ``login_flow()`` and the token manager."""
    redactor.add(credentials.app_secret)
    app = OAuthApp(
        authorize_url=settings.authorize_url,
        token_url=settings.token_url,
        client_id=credentials.app_key,
        client_secret=credentials.app_secret,
        redirect_uri=settings.callback_url,
        client_auth="basic",
        login_lifetime=timedelta(days=settings.login_days),
        timeout=settings.request_timeout,
    )
    return OAuthLogin(broker, app, store, title="Schwab", clock=clock, redactor=redactor, transport=transport)


def token_manager(
    broker: str,
    oauth: OAuthLogin,
    store: TokenStore,
    settings: SchwabSettings,
    *,
    clock: Clock,
    on_change: Callable[[Token], None] | None = None,
    on_error: Callable[[Exception], None] | None = None,
) -> TokenManager:
    """Keeps the access token fresh from the stored login; never logs in by itself (a person must)."""

    async def no_login() -> Token:
        raise LoginRequired(f"Schwab has no login for {broker}: {relogin_hint(broker)}", sent=False)

    return TokenManager(
        login=no_login,
        renew=oauth.refresh,
        clock=clock,
        renew_ahead=timedelta(seconds=settings.refresh_leeway),
        check_interval=settings.token_check_interval,
        on_change=on_change,
        on_error=on_error,
        retry=Backoff(base=settings.backoff_base, cap=max(settings.backoff_cap, settings.backoff_base)),
        store=store,
        renew_expired=True,
    )


class SchwabLoginFlow:
    """``login_flow()``: the kit's OAuth login, and a word to the broker once it succeeded, so a
    broker waiting for its login (NEEDS_LOGIN) connects at once instead of at its next look."""

    def __init__(self, oauth: OAuthLogin, on_done: Callable[[], None]) -> None:
        self.oauth = oauth
        self._on_done = on_done

    def start(self) -> LoginPrompt:
        return self.oauth.start()

    async def complete(self, prompt: LoginPrompt, pasted_url: str) -> LoginResult:
        result = await self.oauth.complete(prompt, pasted_url)
        self._on_done()
        return result

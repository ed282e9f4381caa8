"""OAuth for the fake Schwab server: the authorize redirect and the token endpoint (reference A2).

- ``GET /v1/oauth/authorize`` stands in for the browser login: it approves at once and redirects
  to the registered callback (matched exactly, trailing slash included) with ``code`` (ending in
  ``@``, so ``%40`` on the wire), ``session`` and the caller's ``state``. Codes are single-use
  and short-lived (about 30 s, reported by Schwabdev). No PKCE: nobody sends it (D7).
- ``POST /v1/oauth/token``: form-encoded, HTTP Basic client credentials, both grants. Access
  tokens live 30 minutes; refresh tokens 7 days counted from the browser login (refreshing does
  not extend them). Time is the shared :class:`tests.fakes.FakeClock`.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode

from aiohttp import web

from tests.fakes import FakeClock

JSON = dict[str, Any]


def _token(prefix: str) -> str:
    """Opaque token text in Schwab's look (``I0.<base64>@``); clients must not parse it."""
    return f"{prefix}.{base64.urlsafe_b64encode(secrets.token_bytes(36)).decode().rstrip('=')}@"


@dataclass
class Grant:
    """One browser login: its refresh token and when it was made (the 7 days count from here)."""

    refresh_token: str
    issued: datetime
    alive: bool = True


class OAuthServer:
    """Codes, access tokens and grants, and the two endpoints that hand them out."""

    def __init__(
        self,
        *,
        clock: FakeClock,
        app_key: str,
        app_secret: str,
        callback_urls: tuple[str, ...],
        customer_id: str,
        access_life: timedelta,
        refresh_life: timedelta,
        code_life: timedelta,
        rotate_refresh_tokens: bool,
    ) -> None:
        self.clock = clock
        self.app_key = app_key
        self.app_secret = app_secret
        self.callback_urls = callback_urls
        self.customer_id = customer_id
        self.access_life = access_life
        self.refresh_life = refresh_life
        self.code_life = code_life
        # Whether a refresh hands out a new refresh token (killing the old one) is not documented;
        # schwab-py and Schwabdev store whatever comes back. Off: the same token comes back.
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.codes: dict[str, tuple[datetime, str, str]] = {}  # code -> (issued, redirect_uri, state)
        self.access: dict[str, tuple[datetime, Grant]] = {}
        self.refresh: dict[str, Grant] = {}
        self.token_requests: list[JSON] = []

    def expire_access_tokens(self) -> None:
        now = self.clock.now()
        self.access = {t: (min(exp, now), g) for t, (exp, g) in self.access.items()}

    def revoke_refresh_tokens(self) -> None:
        for grant in self.refresh.values():
            grant.alive = False

    def access_token_valid(self, token: str) -> bool:
        entry = self.access.get(token)
        return entry is not None and self.clock.now() < entry[0] and entry[1].alive

    def _grant_tokens(self, grant: Grant) -> JSON:
        access = _token("I0")
        self.access[access] = (self.clock.now() + self.access_life, grant)
        claims = {
            "sub": self.customer_id,
            "aud": self.app_key,
            "iss": "https://api.schwabapi.com",
            "iat": int(self.clock.now().timestamp()),
            "exp": int((self.clock.now() + self.access_life).timestamp()),
        }
        part = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        head = base64.urlsafe_b64encode(b'{"alg":"RS256","typ":"JWT"}').decode().rstrip("=")
        return {
            "expires_in": int(self.access_life.total_seconds()),
            "token_type": "Bearer",
            "scope": "api",
            "refresh_token": grant.refresh_token,
            "access_token": access,
            "id_token": f"{head}.{part}.{secrets.token_urlsafe(32)}",
        }

    @staticmethod
    def _oauth_error(status: int, error: str, description: str) -> web.Response:
        return web.json_response({"error": error, "error_description": description}, status=status)

    def authorize(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        if q.get("client_id") != self.app_key:
            # Schwab shows an error page, not a redirect, for an unknown app.
            return web.Response(status=400, text="We are unable to complete your request: unknown client_id")
        redirect = q.get("redirect_uri")
        if redirect not in self.callback_urls:
            # The callback must match a registered one exactly, trailing slash included (A2).
            return web.Response(status=400, text="Access Denied: redirect_uri does not match a registered callback")
        if q.get("response_type", "code") != "code":
            return web.Response(status=400, text="response_type must be code")
        code = _token("C0")
        state = q.get("state", "")
        self.codes[code] = (self.clock.now(), redirect, state)
        params = {"code": code, "session": str(uuid.uuid4())}
        if "state" in q:
            params["state"] = state
        # urlencode writes the code's trailing "@" as %40, as Schwab's redirect does.
        return web.Response(status=302, headers={"Location": f"{redirect}?{urlencode(params)}"})

    async def token_endpoint(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            return self._oauth_error(405, "invalid_request", "use POST")
        raw = (await request.read()).decode("utf-8", "replace")
        ctype = request.headers.get("Content-Type", "")
        if not ctype.startswith("application/x-www-form-urlencoded"):
            return self._oauth_error(400, "invalid_request", "the body must be application/x-www-form-urlencoded")
        form = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        self.token_requests.append(form)
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return self._oauth_error(401, "invalid_client", "HTTP Basic client authentication is required")
        try:
            key, _, secret = base64.b64decode(auth[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return self._oauth_error(401, "invalid_client", "malformed Basic credentials")
        if key != self.app_key or secret != self.app_secret or form.get("client_id", key) != key:
            return self._oauth_error(401, "invalid_client", "client authentication failed")
        grant_type = form.get("grant_type")
        now = self.clock.now()
        if grant_type == "authorization_code":
            code = form.get("code")
            if not code:
                return self._oauth_error(400, "invalid_request", "code is required")
            entry = self.codes.pop(code, None)
            if entry is None:
                # Also where a client forgot to URL-decode %40 back to "@" (no vendor sample of this body).
                return self._oauth_error(400, "invalid_grant", "authorization code is invalid or was already used")
            issued, redirect, _ = entry
            if now - issued > self.code_life:
                return self._oauth_error(400, "invalid_grant", "authorization code has expired")
            if form.get("redirect_uri") != redirect:
                return self._oauth_error(400, "invalid_grant", "redirect_uri does not match the authorization")
            grant = Grant(refresh_token=_token("R0"), issued=now)
            self.refresh[grant.refresh_token] = grant
            return web.json_response(self._grant_tokens(grant))
        if grant_type == "refresh_token":
            token = form.get("refresh_token")
            if not token:
                return self._oauth_error(400, "invalid_request", "refresh_token is required")
            grant = self.refresh.get(token)
            if grant is None or not grant.alive:
                # Schwab's body for a refresh token it does not accept (Schwabdev issue #40, captured).
                digest = base64.b64encode(secrets.token_bytes(32)).decode()
                inner = json.dumps(
                    {
                        "error_description": f"Exception while authenticating refresh token "
                        f"[tokenDigest={digest}, Exception=Failed refresh token authentication "
                        f"[tokenDigest={digest}]]",
                        "error": "refresh_token_authentication_error",
                    }
                )
                return self._oauth_error(400, "unsupported_token_type", f"400 Bad Request: {json.dumps(inner)}")
            if now - grant.issued >= self.refresh_life:
                # schwab-py documents "OAuthError: invalid_client: refresh token invalid" after 7 days.
                return self._oauth_error(400, "invalid_client", "refresh token invalid")
            if self.rotate_refresh_tokens:
                del self.refresh[token]
                grant.refresh_token = _token("R0")
                self.refresh[grant.refresh_token] = grant
            return web.json_response(self._grant_tokens(grant))
        return self._oauth_error(400, "unsupported_grant_type", f"grant_type {grant_type!r} is not supported")

"""A fake OAuth 2 authorization server and a test-only broker that logs in through it.

:class:`FakeOAuthServer` speaks the authorization-code flow the way Schwab does
(brokers-schwab-tastytrade.md A2): ``GET /authorize`` (here the "person" approves at once and is
redirected to ``{redirect_uri}?code=...%40&session=...&state=...``, the code ending in ``@``
sent as ``%40``), ``POST /token`` with HTTP Basic client credentials and a form body
(``authorization_code`` and ``refresh_token`` grants; codes are single use; refresh tokens do
not rotate unless asked to), and ``GET /api/me`` which needs a valid bearer token.

:class:`OAuthDemoBroker` is the smallest adapter with a person login: it uses
:class:`tterm.brokers.common.oauth.OAuthLogin` for ``login_flow()`` and its refresh, and the
token store for everything else. :data:`SPEC` registers it as broker type ``oauth-demo`` (tests
put it in the registry with monkeypatch).
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import threading
from collections.abc import Iterable, Mapping
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
from aiohttp import web
from pydantic import BaseModel, ConfigDict

from tterm.brokers.common.adapter import AdapterSpec, Credentials
from tterm.brokers.common.oauth import OAuthApp, OAuthLogin
from tterm.brokers.common.settings import parse_options, require_secrets
from tterm.brokers.common.token_store import TokenStore, token_path
from tterm.brokers.common.tokens import TokenManager
from tterm.core.broker import Broker, BrokerError, Capabilities, LoginFlow, LoginRequired
from tterm.core.models import Account, AccountSnapshot, ConnectionState, Fill, Order, OrderRequest, Position


class FakeOAuthServer:
    """The vendor's authorization server and one protected API call, on a free loopback port."""

    def __init__(
        self,
        *,
        client_id: str = "APPKEY123",
        client_secret: str = "app-secret-0f1e2d3c4b5a",
        redirect_uri: str = "https://127.0.0.1:8182/",
        access_seconds: int = 1800,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.access_seconds = access_seconds
        self.codes: dict[str, bool] = {}  # code -> used
        self.access: set[str] = set()
        self.refresh: set[str] = set()
        self.revoked_refresh: set[str] = set()
        self.exchanged_codes: list[str] = []
        self.token_requests: list[dict[str, str]] = []
        self.refused: list[str] = []
        self.api_calls = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        app = web.Application()
        app.add_routes(
            [web.get("/authorize", self._authorize), web.post("/token", self._token), web.get("/api/me", self._me)]
        )
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def options(self) -> dict[str, str]:
        return {
            "authorize_url": f"{self.url}/authorize",
            "token_url": f"{self.url}/token",
            "api_url": f"{self.url}/api",
            "redirect_uri": self.redirect_uri,
        }

    def secrets(self) -> dict[str, str]:
        return {"client_id": self.client_id, "client_secret": self.client_secret}

    def revoke_refresh_tokens(self) -> None:
        self.revoked_refresh |= self.refresh
        self.refresh.clear()

    # ------------------------------------------------------------------ routes

    async def _authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("response_type") != "code" or q.get("client_id") != self.client_id:
            return web.Response(status=400, text="bad client or response type")
        if q.get("redirect_uri") != self.redirect_uri:
            return web.Response(status=400, text="redirect_uri does not match the registered one")
        code = "C0." + secrets.token_urlsafe(18) + "@"
        self.codes[code] = False
        params = {"code": code, "session": secrets.token_hex(8)}
        if "state" in q:
            params["state"] = q["state"]
        # urlencode sends the trailing "@" as "%40", as Schwab's redirect does (a raw header: an
        # aiohttp redirect would normalise it back to "@").
        return web.Response(status=302, headers={"Location": f"{self.redirect_uri}?{urlencode(params)}"})

    def _client_ok(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            pair = base64.b64decode(header[6:]).decode()
        except ValueError:
            return False
        return pair == f"{self.client_id}:{self.client_secret}"

    def _grant(self) -> dict[str, Any]:
        access, refresh = "I0." + secrets.token_urlsafe(24) + "@", secrets.token_urlsafe(32)
        self.access.add(access)
        self.refresh.add(refresh)
        return {"access_token": access, "refresh_token": refresh, "expires_in": self.access_seconds,
                "token_type": "Bearer", "scope": "api", "id_token": "eyJ.fake.jwt"}  # fmt: skip

    def _refuse(self, status: int, error: str, description: str) -> web.Response:
        self.refused.append(error)
        return web.json_response({"error": error, "error_description": description}, status=status)

    async def _token(self, request: web.Request) -> web.Response:
        if request.content_type != "application/x-www-form-urlencoded":
            return self._refuse(400, "invalid_request", "the body must be form-encoded")
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.token_requests.append(form)
        if not self._client_ok(request):
            return self._refuse(401, "invalid_client", "client authentication failed")
        grant = form.get("grant_type")
        if grant == "authorization_code":
            code = form.get("code", "")
            if self.codes.get(code) is not False:
                return self._refuse(400, "invalid_grant", "unknown or used authorization code")
            if form.get("redirect_uri") != self.redirect_uri:
                return self._refuse(400, "invalid_grant", "redirect_uri does not match")
            self.codes[code] = True
            self.exchanged_codes.append(code)
            return web.json_response(self._grant())
        if grant == "refresh_token":
            token = form.get("refresh_token", "")
            if token not in self.refresh:
                return self._refuse(400, "invalid_grant", "refresh token invalid")
            grant_body = self._grant()
            # Schwab returns the same refresh token (its 7 days run from the browser login).
            self.refresh.discard(grant_body["refresh_token"])
            grant_body["refresh_token"] = token
            return web.json_response(grant_body)
        return self._refuse(400, "unsupported_grant_type", f"grant_type {grant!r}")

    async def _me(self, request: web.Request) -> web.Response:
        self.api_calls += 1
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.access:
            return web.Response(status=401, text="bad token")
        return web.json_response({"accounts": ["DEMO-1"]})


class ServerThread:
    """Runs a fake server in its own event loop on a thread (for tests that drive a sync CLI)."""

    def __init__(self, server: FakeOAuthServer) -> None:
        self.server = server
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> FakeOAuthServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(10)
        return self.server

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def browser_approves(authorize_url: str) -> str:
    """What a person's browser ends up showing after approving: the redirect's address."""
    resp = httpx.get(authorize_url, follow_redirects=False, timeout=10)
    assert resp.status_code == 302, resp.text
    return resp.headers["location"]


# --------------------------------------------------------------------------- the test-only broker


class OAuthDemoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: Literal["demo", "live"] = "demo"
    authorize_url: str
    token_url: str
    api_url: str
    redirect_uri: str
    login_days: int = 7


class OAuthDemoBroker(Broker):
    """Connects only with a stored login; refreshes its access token itself; a person logs in."""

    capabilities = Capabilities(interactive_login=True, brackets=False, oco=False)

    def __init__(self, name: str, settings: OAuthDemoSettings, secrets: Mapping[str, str], *, data_dir: Path) -> None:
        super().__init__(name)
        self.settings = settings
        self.store = TokenStore(token_path(data_dir, name), owner=f"{secrets['client_id']}@{settings.token_url}")
        app = OAuthApp(
            authorize_url=settings.authorize_url,
            token_url=settings.token_url,
            client_id=secrets["client_id"],
            client_secret=secrets["client_secret"],
            redirect_uri=settings.redirect_uri,
            login_lifetime=timedelta(days=settings.login_days),
        )
        self.oauth = OAuthLogin(name, app, self.store, title="OAuth demo")
        self.tokens: TokenManager | None = None

    def login_flow(self) -> LoginFlow:
        return self.oauth

    async def _login(self) -> Any:
        self.set_state(ConnectionState.NEEDS_LOGIN, f"log in with: tterm login {self.name}")
        raise LoginRequired(f"{self.name} has no login: run `tterm login {self.name}`")

    async def connect(self) -> None:
        self.tokens = TokenManager(
            login=self._login, renew=self.oauth.refresh, store=self.store, on_change=self._on_token
        )
        try:
            token = await self.tokens.get()
        except LoginRequired:
            self.set_state(ConnectionState.NEEDS_LOGIN, f"log in with: tterm login {self.name}")
            raise
        async with httpx.AsyncClient() as http:
            resp = await http.get(f"{self.settings.api_url}/me", headers={"Authorization": f"Bearer {token.value}"})
        if resp.status_code != 200:
            raise BrokerError(f"the demo API refused the token (HTTP {resp.status_code})")
        self.set_state(ConnectionState.CONNECTED)

    def _on_token(self, token: Any) -> None:
        self.set_auth_expiry(OAuthLogin.login_expires_at(token), "login", needs_person=True)

    async def close(self) -> None:
        self.mark_closed()

    async def accounts(self) -> list[Account]:
        return []

    async def snapshots(self) -> list[AccountSnapshot]:
        return []

    async def positions(self, account: str | None = None) -> list[Position]:
        return []

    async def orders(self, account: str | None = None) -> list[Order]:
        return []

    async def fills(self, account: str | None = None) -> list[Fill]:
        return []

    async def find_order(self, account: str, client_order_id: str) -> Order | None:
        return None

    async def subscribe_quotes(self, symbols: Iterable[str]) -> None:
        return None

    async def unsubscribe_quotes(self, symbols: Iterable[str]) -> None:
        return None

    async def place(self, request: OrderRequest) -> Order:
        raise self.not_supported("orders", "the demo broker only logs in")

    async def modify(self, account: str, order_id: str, *, quantity: int | None = None,
                     limit_price: Decimal | None = None, stop_price: Decimal | None = None) -> Order:  # fmt: skip
        raise self.not_supported("orders")

    async def cancel(self, account: str, order_id: str) -> Order:
        raise self.not_supported("orders")


CREDENTIALS = Credentials(sets=(frozenset({"client_id", "client_secret"}),))


def build(
    name: str, options: Mapping[str, Any], secrets: Mapping[str, Any], *, instruments: Any, clock: Any, data_dir: Path
) -> OAuthDemoBroker:
    settings = parse_options(OAuthDemoSettings, options, broker=name)
    found = require_secrets(secrets, ("client_id", "client_secret"), broker=name)
    return OAuthDemoBroker(name, settings, found, data_dir=Path(data_dir))


SPEC = AdapterSpec(
    type="oauth-demo",
    title="OAuth demo",
    build="tests.fakes.oauth:build",
    options=OAuthDemoSettings,
    credentials=CREDENTIALS,
    interactive_login=True,
)

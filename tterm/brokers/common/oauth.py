"""OAuth 2 authorization-code login by pasting the redirect URL (works over SSH, no browser on
the box), and refresh: the interactive login Schwab and Tastytrade use.

The flow (:class:`OAuthLogin`, an adapter's ``login_flow()``):

1. :meth:`OAuthLogin.start` gives the authorize URL with a fresh random ``state``. The person
   opens it on any machine, logs in and approves; the browser is sent to the registered
   redirect (``https://127.0.0.1:8182/?code=...&state=...``), where nothing listens: the page
   fails to load, but the address bar holds the whole URL.
2. :meth:`OAuthLogin.complete` takes the pasted URL and checks it before anything is sent:
   the same scheme, host, port and path as the redirect, the same ``state`` (else it is another
   attempt's, or forged), no ``error``, a ``code`` present. Each failure is a
   :class:`~tterm.core.broker.LoginError` saying what was wrong.
3. The code is exchanged at the token endpoint (form body ``grant_type=authorization_code``,
   client credentials as HTTP Basic, or in the body for vendors that want that), and the
   tokens go into the broker's :class:`~tterm.brokers.common.token_store.TokenStore` under its
   lock. Nothing is written unless the exchange succeeded: the tokens held before stay.

Codes are URL-decoded exactly once, without turning ``+`` into a space: Schwab's codes end in
``@``, sent as ``%40``, and must be exchanged decoded (brokers-schwab-tastytrade.md A2).

:meth:`OAuthLogin.refresh` renews the access token with the refresh token (the TokenManager's
``renew``); a refused refresh token is :class:`~tterm.core.broker.LoginRequired`: only a person
can log in again. ``login_expires_at`` in the token's extras is when the login itself dies
(Schwab: 7 days after the browser login, not extended by refreshing).
"""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote, quote_plus, unquote, urlencode, urlsplit

import httpx

from tterm import __version__
from tterm.brokers.common.clock import Clock, as_clock
from tterm.brokers.common.token_store import TokenStore
from tterm.brokers.common.tokens import Token
from tterm.core.broker import BrokerError, LoginError, LoginPrompt, LoginRequired, LoginResult
from tterm.core.redact import REDACTOR, Redactor

log = logging.getLogger(__name__)

#: An authorization code is short-lived (Schwab: "within 30 seconds" per a third-party guide);
#: a prompt older than this is refused with "start again" rather than a vendor error.
PROMPT_MAX_AGE = timedelta(minutes=10)
#: Used when a token response has no ``expires_in`` (the Tastytrade SDK assumes 900 s).
DEFAULT_EXPIRES_IN = 900


@dataclass(frozen=True, slots=True)
class OAuthApp:
    """One OAuth application (client) registered at a vendor."""

    authorize_url: str
    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    scope: str = ""
    #: "basic": client id and secret as HTTP Basic (RFC 6749 2.3.1; Schwab); "body": in the form.
    client_auth: Literal["basic", "body"] = "basic"
    #: How long a browser login lasts when refreshing does not extend it (Schwab: 7 days).
    login_lifetime: timedelta | None = None
    timeout: float = 15.0


def _origin(url: str) -> tuple[str, str, int | None, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"https": 443, "http": 80}.get(scheme)
    except ValueError:
        port = -1  # a malformed port never matches
    return scheme, (parts.hostname or "").lower(), port, parts.path or "/"


def _query(query: str) -> dict[str, str]:
    """Query parameters decoded once with ``unquote`` (a ``+`` stays a ``+``); first value wins."""
    out: dict[str, str] = {}
    for pair in query.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        out.setdefault(unquote(key), unquote(value))
    return out


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts is not None else None


class OAuthLogin:
    """An adapter's browser login (a :class:`~tterm.core.broker.LoginFlow`) and token refresh."""

    def __init__(
        self,
        broker: str,
        app: OAuthApp,
        store: TokenStore,
        *,
        title: str = "",
        clock: Clock | None = None,
        redactor: Redactor | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.broker = broker
        self.app = app
        self.store = store
        self.title = title or broker
        self._clock = as_clock(clock)
        self._redactor = redactor or REDACTOR
        self._transport = transport
        self._redactor.add(app.client_secret)
        self.exchanges = 0

    # ------------------------------------------------------------------ step 1

    def start(self) -> LoginPrompt:
        """The authorize URL to open, with a fresh random state."""
        state = secrets.token_urlsafe(24)
        params = {"response_type": "code", "client_id": self.app.client_id, "redirect_uri": self.app.redirect_uri,
                  "state": state}  # fmt: skip
        if self.app.scope:
            params["scope"] = self.app.scope
        sep = "&" if "?" in self.app.authorize_url else "?"
        url = self.app.authorize_url + sep + urlencode(params, quote_via=quote)
        return LoginPrompt(
            broker=self.broker,
            url=url,
            state=state,
            redirect_uri=self.app.redirect_uri,
            instructions=(
                f"Open the address in a web browser (on any machine), log in to {self.title} and approve. "
                f"The browser is then sent to {self.app.redirect_uri}; that page may fail to load, which is "
                "expected. Copy the whole address from the browser's address bar and paste it here."
            ),
            created_at=self._clock.now(),
        )

    # ------------------------------------------------------------------ step 2

    def code_from(self, prompt: LoginPrompt, pasted: str) -> str:
        """The authorization code in ``pasted``, or :class:`LoginError` saying what is wrong."""
        text = pasted.strip().strip("'\"<>").strip()
        if not text:
            raise LoginError("nothing was pasted: paste the whole address from the browser's address bar")
        if prompt.broker != self.broker:
            raise LoginError(f"this login is for {prompt.broker}, not {self.broker}")
        if self._clock.now() - prompt.created_at > PROMPT_MAX_AGE:
            minutes = int(PROMPT_MAX_AGE.total_seconds() // 60)
            raise LoginError(f"this login was started more than {minutes} minutes ago; start it again")
        parts = urlsplit(text)
        if not parts.scheme or not parts.netloc:
            raise LoginError("that is not a web address: paste the whole address, starting with https://")
        got, want = _origin(text), _origin(prompt.redirect_uri)
        if got != want:
            shown = f"{parts.scheme}://{parts.netloc}{parts.path}"
            raise LoginError(
                f"the address goes to {shown}, not to the redirect address {prompt.redirect_uri} this login "
                "expects: copy the address the browser was sent to after approving"
            )
        params = _query(parts.query)
        if params.get("error"):
            why = params.get("error_description", "")
            raise LoginError(f"{self.title} refused the login: {params['error']}" + (f" ({why})" if why else ""))
        if "state" not in params:
            raise LoginError("the address has no state: it does not come from this login; start it again")
        if not secrets.compare_digest(params["state"], prompt.state):
            raise LoginError(
                "the address carries a different state: it belongs to another login attempt (or was altered); "
                "start the login again and paste the address from that attempt"
            )
        code = params.get("code", "")
        if not code:
            raise LoginError("the address has no code: finish the login in the browser, then copy the address")
        self._redactor.add(code, rotating=True)
        return code

    async def complete(self, prompt: LoginPrompt, pasted: str) -> LoginResult:
        """Check the pasted URL, exchange its code, store the tokens; the old ones stay on failure."""
        code = self.code_from(prompt, pasted)
        now = self._clock.now()
        data = await self._token_request(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": self.app.redirect_uri},
            refused=LoginError,
            unreachable=LoginError,
            what="the login code",
        )
        login_expires = now + self.app.login_lifetime if self.app.login_lifetime is not None else None
        token = self._token(data, now, login_expires_at=login_expires, previous_refresh=None)
        if not token.extra.get("refresh_token"):
            raise LoginError(f"{self.title} sent no refresh token; nothing was stored")
        async with self.store.locked() as slot:
            slot.put(token)
        self.exchanges += 1
        when = f"; the login lasts until {login_expires:%Y-%m-%d %H:%M %Z}" if login_expires else ""
        return LoginResult(broker=self.broker, expires_at=login_expires, detail=f"logged in to {self.title}{when}")

    # ------------------------------------------------------------------ refresh

    async def refresh(self, token: Token) -> Token:
        """A new access token from the refresh token (the TokenManager's ``renew``)."""
        refresh_token = str(token.extra.get("refresh_token") or "")
        if not refresh_token:
            raise LoginRequired(f"{self.title}: no refresh token; log in with `tterm login {self.broker}`")
        now = self._clock.now()
        data = await self._token_request(
            {"grant_type": "refresh_token", "refresh_token": refresh_token},
            refused=LoginRequired,
            unreachable=BrokerError,  # a network or server failure passes: the TokenManager retries
            what="the refresh token",
        )
        return self._token(data, now, login_expires_at=self.login_expires_at(token), previous_refresh=refresh_token)

    @staticmethod
    def login_expires_at(token: Token | None) -> datetime | None:
        """When the browser login behind ``token`` dies (None: not known, or never)."""
        raw = token.extra.get("login_expires_at") if token is not None else None
        return datetime.fromisoformat(str(raw)) if raw else None

    # ------------------------------------------------------------------ the token endpoint

    def _token(
        self, data: Mapping[str, Any], now: datetime, *, login_expires_at: datetime | None, previous_refresh: str | None
    ) -> Token:
        access = data.get("access_token")
        if not isinstance(access, str) or not access:
            raise LoginError(f"{self.title} answered without an access token")
        self._redactor.add(access, rotating=True)
        refresh = data.get("refresh_token") or previous_refresh
        if isinstance(refresh, str):
            self._redactor.add(refresh, rotating=True)
        try:
            lifetime = int(data.get("expires_in") or DEFAULT_EXPIRES_IN)
        except (TypeError, ValueError):
            lifetime = DEFAULT_EXPIRES_IN
        extra = {
            "refresh_token": refresh,
            "login_expires_at": _iso(login_expires_at),
            "token_type": str(data.get("token_type") or "Bearer"),
            "scope": str(data.get("scope") or ""),
        }
        return Token(value=access, expires_at=now + timedelta(seconds=max(lifetime, 1)), issued_at=now, extra=extra)

    async def _token_request(
        self,
        form: dict[str, str],
        *,
        refused: type[LoginError] | type[LoginRequired],
        unreachable: type[BrokerError],
        what: str,
    ) -> Mapping[str, Any]:
        """POST to the token endpoint. 400/401 (a refused code, client or refresh token) raise
        ``refused``; no answer or a server error raise ``unreachable``."""
        headers = {"Accept": "application/json", "User-Agent": f"tterm/{__version__}"}
        body = dict(form)
        if self.app.client_auth == "basic":
            # RFC 6749 2.3.1: id and secret are form-encoded before base64 (a no-op for plain keys).
            pair = f"{quote_plus(self.app.client_id)}:{quote_plus(self.app.client_secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            body |= {"client_id": self.app.client_id, "client_secret": self.app.client_secret}
        host = urlsplit(self.app.token_url).netloc
        try:
            async with httpx.AsyncClient(transport=self._transport, timeout=self.app.timeout) as http:
                resp = await http.post(self.app.token_url, data=body, headers=headers)
        except httpx.HTTPError as exc:
            raise unreachable(f"could not reach {host} to use {what} ({type(exc).__name__}); nothing changed") from None
        if resp.status_code >= 500:
            raise unreachable(f"{self.title}'s token endpoint failed (HTTP {resp.status_code}); nothing changed")
        try:
            data = resp.json()
        except ValueError:
            data = None
        if resp.status_code == 200 and isinstance(data, dict):
            return data
        error = description = ""
        if isinstance(data, dict):
            error = str(data.get("error") or "")
            description = str(data.get("error_description") or "")
        detail = self._redactor.scrub(": ".join(x for x in (error, description) if x) or f"HTTP {resp.status_code}")
        hint = f"; log in again with `tterm login {self.broker}`" if refused is LoginRequired else ""
        raise refused(f"{self.title} refused {what} ({detail}){hint}")

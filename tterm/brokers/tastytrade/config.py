"""Tastytrade's options and credentials, declared once: the registry, ``tterm doctor`` and the
adapter all read them from here (:data:`ADAPTER`).

``environment = "live"`` is production (``api.tastyworks.com``); ``"demo"`` is Tastytrade's
sandbox, which the vendor calls "cert" (``api.cert.tastyworks.com``; its logins, refresh tokens
and balances are separate from production and reset every 24 h, B1). The login is OAuth 2 with a
personal grant: the client secret and refresh token (``client_secret``, ``refresh_token``) come
from the secrets file or ``TTERM_<NAME>_<KEY>``; the old username/password ``/sessions`` login was
shut down on 2026-02-11 (B2.1), so there is nothing to ask a person at run time. Every host is
overridable so tests point the adapter at the fake.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tterm import __version__
from tterm.brokers.common.adapter import AdapterSpec, Credentials
from tterm.brokers.common.settings import parse_options, require_secrets

#: B1: REST and the account streamer per environment ("demo" is the vendor's sandbox, "cert").
HOSTS: dict[str, dict[str, str]] = {
    "live": {"api": "https://api.tastyworks.com", "streamer": "wss://streamer.tastyworks.com"},
    "demo": {"api": "https://api.cert.tastyworks.com", "streamer": "wss://streamer.cert.tastyworks.com"},
}
#: B2.1: without a User-Agent of the form <product>/<version> the API answers 401.
USER_AGENT = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+/[A-Za-z0-9._+-]+$")


class TastytradeSettings(BaseModel):
    """Options for one Tastytrade login. Intervals are seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: Literal["demo", "live"] = "demo"
    api_url: str | None = None
    streamer_url: str | None = None
    #: The OAuth client id: optional (B2.1); when sent it must match the client of the secret.
    client_id: str | None = None
    user_agent: str = f"tterm/{__version__}"
    #: ``Accept-Version: YYYYMMDD`` pins the API version (B3); empty: the server's default.
    api_version: str = ""

    # OAuth (B2.1): access tokens last 15 minutes; TT-SDK renews when under 60 s remain.
    refresh_leeway: float = Field(90.0, gt=0)
    token_check_interval: float = Field(15.0, gt=0)

    # REST (B9): no published quotas; 429s carry no headers and are backed off with jitter.
    requests_per_second: int = Field(20, ge=1)
    backoff_base: float = Field(1.0, gt=0)
    backoff_cap: float = Field(60.0, gt=0)
    request_timeout: float = Field(15.0, gt=0)
    #: Dry-run every order first and send none Tastytrade's dry run refuses.
    preview_orders: bool = False

    # The account streamer (B7): a heartbeat every 15-20 s (TT-SDK <= 11, TT-JS).
    heartbeat_interval: float = Field(15.0, gt=0)
    stale_after: float = Field(45.0, gt=0)
    watchdog_interval: float = Field(1.0, gt=0)
    connect_timeout: float = Field(10.0, gt=0)
    close_timeout: float = Field(2.0, gt=0)
    stream_request_timeout: float = Field(10.0, gt=0)
    reconnect_base: float = Field(1.0, gt=0)
    reconnect_cap: float = Field(30.0, gt=0)

    # DXLink (B8): KEEPALIVE every 30 s within a 60 s timeout; silence past dxlink_stale_after
    # (DXLink is known to go quiet without closing) closes and reopens the socket.
    stream: bool = True
    dxlink_keepalive: float = Field(30.0, gt=0)
    dxlink_timeout: int = Field(60, ge=5, le=600)
    dxlink_stale_after: float = Field(75.0, gt=0)
    aggregation_period: float = Field(0.1, ge=0)

    # Market data.
    chain_strikes: int = Field(30, ge=2, le=500)
    chain_wait: float = Field(3.0, ge=0)
    bars_timeout: float = Field(15.0, gt=0)
    fill_fee_wait: float = Field(5.0, gt=0)

    @field_validator("api_url", "streamer_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://", "ws://", "wss://")):
            raise ValueError("must start with https:// or wss:// (http:// or ws:// for a local test server)")
        return value.rstrip("/")

    @field_validator("user_agent")
    @classmethod
    def _check_agent(cls, value: str) -> str:
        if not USER_AGENT.match(value):
            raise ValueError("must be <product>/<version>, e.g. tterm/0.1 (Tastytrade answers 401 otherwise)")
        return value

    @field_validator("api_version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        if value and not re.fullmatch(r"\d{8}", value):
            raise ValueError("must be a date written YYYYMMDD, e.g. 20251101 (or empty)")
        return value

    @model_validator(mode="after")
    def _version_in_production_only(self) -> TastytradeSettings:
        # B3: TT-SDK sends Accept-Version in production only: the sandbox does not accept it.
        if self.api_version and self.environment != "live":
            raise ValueError('api_version: the sandbox (environment = "demo") takes no Accept-Version header')
        return self

    @property
    def is_live(self) -> bool:
        return self.environment == "live"

    @property
    def rest_url(self) -> str:
        return self.api_url or HOSTS[self.environment]["api"]

    @property
    def account_streamer_url(self) -> str:
        return self.streamer_url or HOSTS[self.environment]["streamer"]

    @property
    def token_url(self) -> str:
        return f"{self.rest_url}/oauth/token"

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *, broker: str) -> TastytradeSettings:
        return parse_options(cls, options, broker=broker)


@dataclass(frozen=True, slots=True)
class TastytradeCredentials:
    """The OAuth client secret and the personal grant's refresh token; the repr shows neither."""

    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)

    @classmethod
    def from_secrets(cls, secrets: Mapping[str, Any], *, broker: str) -> TastytradeCredentials:
        found = require_secrets(secrets, ("client_secret", "refresh_token"), broker=broker)
        return cls(client_secret=found["client_secret"].strip(), refresh_token=found["refresh_token"].strip())

    def fingerprint(self) -> str:
        """A short one-way name for this grant (the token store's owner), never the token itself."""
        return hashlib.sha256(self.refresh_token.encode()).hexdigest()[:16]


CREDENTIALS = Credentials(sets=(frozenset({"client_secret", "refresh_token"}),))

ADAPTER = AdapterSpec(
    type="tastytrade",
    title="Tastytrade",
    build="tterm.brokers.tastytrade:build",
    broker_class="tterm.brokers.tastytrade.broker:TastytradeBroker",
    options=TastytradeSettings,
    credentials=CREDENTIALS,
    login_note=(
        "Tastytrade logs in by itself with the OAuth client secret and refresh token in the secrets file "
        "(my.tastytrade.com: Manage, My Profile, API, OAuth Applications; then Create Grant)"
    ),
)

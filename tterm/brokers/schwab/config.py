"""Schwab's options and credentials, declared once: the registry, ``tterm doctor`` and the adapter
all read them from here (:data:`ADAPTER`).

Schwab has no sandbox or paper environment (brokers-schwab-tastytrade.md A1): every order is
real, so ``environment`` must say ``live``; a config that says ``demo`` is refused rather than
trading real money under a demo label. The app key and secret (``app_key``, ``app_secret``) come
from the secrets file or the environment; the app key is the OAuth client id, not a secret, and
may be an option instead. Every host is overridable so tests point the adapter at the fake.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tterm.brokers.common.adapter import AdapterSpec, Credentials
from tterm.brokers.common.settings import parse_options, require_secrets

#: A1: OAuth, Trader and Market Data all live under one host.
API_HOST = "https://api.schwabapi.com"
#: The callback most Schwab apps register (schwab-py's docs use it); it must match exactly.
DEFAULT_CALLBACK = "https://127.0.0.1:8182"


class SchwabSettings(BaseModel):
    """Options for one Schwab login. Intervals are seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: Literal["live"] = Field(
        "live",
        description='Schwab has no demo or sandbox (every Schwab order is real): set environment = "live"',
    )
    api_url: str = API_HOST
    callback_url: str = DEFAULT_CALLBACK
    app_key: str | None = None

    # OAuth. A2: access tokens last 30 minutes; the refresh token 7 days from the browser login.
    refresh_leeway: float = Field(300.0, gt=0)  # schwab-py (authlib) refreshes 5 minutes ahead
    token_check_interval: float = Field(30.0, gt=0)
    login_days: float = Field(7.0, gt=0)
    login_check_interval: float = Field(2.0, gt=0)  # how often a waiting login looks for new tokens

    # Limits (A9): 120 non-order requests a minute per app; 0-120 order writes a minute per account,
    # as chosen when the app was registered.
    data_per_minute: int = Field(120, ge=1)
    orders_per_minute: int = Field(120, ge=0)
    backoff_base: float = Field(2.0, gt=0)
    backoff_cap: float = Field(60.0, gt=0)
    request_timeout: float = Field(15.0, gt=0)

    # Order state: polled (ACCT_ACTIVITY only hints, A8.5).
    order_poll_interval: float = Field(2.0, gt=0)
    idle_poll_interval: float = Field(30.0, gt=0)
    account_poll_interval: float = Field(60.0, gt=0)
    active_after_command: float = Field(120.0, ge=0)
    preview_orders: bool = False

    # Streamer.
    stream: bool = True
    stale_after: float = Field(30.0, gt=0)
    watchdog_interval: float = Field(1.0, gt=0)
    connect_timeout: float = Field(10.0, gt=0)
    close_timeout: float = Field(2.0, gt=0)
    stream_request_timeout: float = Field(10.0, gt=0)
    reconnect_base: float = Field(1.0, gt=0)
    reconnect_cap: float = Field(60.0, gt=0)
    displaced_wait: float = Field(60.0, ge=0)

    # Market data.
    chain_strikes: int = Field(30, ge=1, le=500)

    @field_validator("environment", mode="before")
    @classmethod
    def _live_only(cls, value: Any) -> Any:
        if value != "live":
            raise ValueError(
                'Schwab has no demo or sandbox environment: every Schwab order is real. Set environment = "live"'
            )
        return value

    @field_validator("api_url")
    @classmethod
    def _check_api(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (or http:// for a local test server)")
        return value.rstrip("/")

    @field_validator("callback_url")
    @classmethod
    def _check_callback(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(
                "must be the https:// callback registered with the Schwab app, e.g. https://127.0.0.1:8182"
            )
        return value  # kept exactly: Schwab compares it character for character (A2)

    @property
    def authorize_url(self) -> str:
        return f"{self.api_url}/v1/oauth/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.api_url}/v1/oauth/token"

    @property
    def trader_url(self) -> str:
        return f"{self.api_url}/trader/v1"

    @property
    def marketdata_url(self) -> str:
        return f"{self.api_url}/marketdata/v1"

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *, broker: str) -> SchwabSettings:
        return parse_options(cls, options, broker=broker)


@dataclass(frozen=True, slots=True)
class SchwabCredentials:
    """The app's key (the OAuth client id) and secret; the repr never shows the secret."""

    app_key: str = field(repr=False)
    app_secret: str = field(repr=False)

    @classmethod
    def from_secrets(cls, secrets: Mapping[str, Any], *, broker: str, settings: SchwabSettings) -> SchwabCredentials:
        missing = CREDENTIALS.missing(secrets, {"app_key": settings.app_key})
        if missing:
            require_secrets(secrets, tuple(missing), broker=broker)  # raises, naming exactly those
        found = {str(k).strip().lower(): str(v) for k, v in secrets.items() if v is not None and str(v) != ""}
        return cls(app_key=found.get("app_key") or str(settings.app_key), app_secret=found["app_secret"])


CREDENTIALS = Credentials(sets=(frozenset({"app_key", "app_secret"}),), from_options=frozenset({"app_key"}))

ADAPTER = AdapterSpec(
    type="schwab",
    title="Schwab",
    build="tterm.brokers.schwab:build",
    broker_class="tterm.brokers.schwab.broker:SchwabBroker",
    options=SchwabSettings,
    credentials=CREDENTIALS,
    interactive_login=True,
)

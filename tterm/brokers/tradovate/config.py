"""Tradovate's options and credentials, declared once: the registry, ``tterm doctor`` and the
adapter all read them from here (:data:`ADAPTER`).

Options are plain strings in the config file (``[brokers.<name>] options``);
:class:`TradovateSettings` types and checks them. Every URL is overridable so tests point the
broker at the loopback fake server. Credentials (:data:`CREDENTIALS`: ``username``,
``password``, ``cid``, ``sec``, optional ``app_id``) come from the secrets file or the
environment and live in :class:`TradovateCredentials`, whose repr never shows them. ``cid`` (the
API key's client id) is not secret and may be given as an option instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tterm.brokers.common.adapter import AdapterSpec, Credentials
from tterm.brokers.common.settings import BrokerConfigError, parse_options, require_secrets

# A1 (TV-JS tutorialsURLs.js): REST and trading socket per environment; one market-data host.
HOSTS: dict[str, dict[str, str]] = {
    "demo": {
        "rest": "https://demo.tradovateapi.com/v1",
        "ws": "wss://demo.tradovateapi.com/v1/websocket",
        "md": "wss://md.tradovateapi.com/v1/websocket",
    },
    "live": {
        "rest": "https://live.tradovateapi.com/v1",
        "ws": "wss://live.tradovateapi.com/v1/websocket",
        "md": "wss://md.tradovateapi.com/v1/websocket",
    },
}


class TradovateSettings(BaseModel):
    """Options for one Tradovate login. Intervals are seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: Literal["demo", "live"] = "demo"
    rest_url: str | None = None
    ws_url: str | None = None
    md_url: str | None = None
    app_id: str = "tterm"
    app_version: str = "0.1.0"
    cid: int | None = None
    device_id_path: Path | None = None

    # Sockets. A6: the client heartbeats with "[]" every 2.5 s; the server sends "h" when idle.
    heartbeat_interval: float = Field(2.5, gt=0)
    stale_after: float = Field(10.0, gt=0)
    watchdog_interval: float = Field(1.0, gt=0)
    connect_timeout: float = Field(10.0, gt=0)
    close_timeout: float = Field(2.0, gt=0)
    socket_request_timeout: float = Field(15.0, gt=0)
    reconnect_base: float = Field(0.5, gt=0)
    reconnect_cap: float = Field(30.0, gt=0)
    market_data: bool = True

    # Tokens. U1: renew about 15 minutes before expirationTime, whatever the lifetime.
    renew_ahead: float = Field(900.0, gt=0)
    token_check_interval: float = Field(30.0, gt=0)
    # Partner rate-limits page: about 5 failed accesstokenrequests an hour; stay under it.
    login_failures_per_hour: int = Field(3, ge=1, le=5)

    # REST and orders.
    request_timeout: float = Field(10.0, gt=0)
    penalty_retries: int = Field(3, ge=0)
    backoff_base: float = Field(1.0, gt=0)
    backoff_cap: float = Field(60.0, gt=0)
    ack_wait: float = Field(2.0, ge=0)
    # Partner best-practices page: isAutomated marks orders not placed directly by a person. Unset,
    # it follows the order's source (webhooks, risk flattening and API clients); true or false
    # forces it for every order.
    is_automated: bool | None = None
    hold_orders_when_stale: bool = True

    @field_validator("rest_url", "ws_url", "md_url")
    @classmethod
    def _check_url(cls, value: str | None, info: Any) -> str | None:
        if value is None or value == "":
            return None
        schemes = ("http://", "https://") if info.field_name == "rest_url" else ("ws://", "wss://")
        if not value.startswith(schemes):
            raise ValueError(f"must start with {' or '.join(schemes)}")
        return value.rstrip("/")

    @property
    def is_live(self) -> bool:
        return self.environment == "live"

    @property
    def rest_base(self) -> str:
        return self.rest_url or HOSTS[self.environment]["rest"]

    @property
    def ws_base(self) -> str:
        return self.ws_url or HOSTS[self.environment]["ws"]

    @property
    def md_base(self) -> str:
        return self.md_url or HOSTS[self.environment]["md"]

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *, broker: str) -> TradovateSettings:
        return parse_options(cls, options, broker=broker)


@dataclass(frozen=True, slots=True)
class TradovateCredentials:
    """The login: username, password, API client id (``cid``) and secret (``sec``)."""

    username: str
    password: str = field(repr=False)
    cid: int | str = field(repr=False)
    sec: str = field(repr=False)
    app_id: str | None = None

    @classmethod
    def from_secrets(
        cls, secrets: Mapping[str, Any], *, broker: str, settings: TradovateSettings
    ) -> TradovateCredentials:
        missing = CREDENTIALS.missing(secrets, {"cid": settings.cid})
        if missing:
            require_secrets(secrets, tuple(missing), broker=broker)  # raises, naming exactly those
        found = {str(k).strip().lower(): str(v) for k, v in secrets.items() if v is not None and str(v) != ""}
        raw_cid: int | str = found.get("cid", settings.cid if settings.cid is not None else "")
        cid: int | str = raw_cid
        text = str(raw_cid).strip()
        # U2: tutorials send cid as a number, the current OpenAPI types it as a string. Send a
        # number when it is one.
        if text.isdigit():
            cid = int(text)
        elif not text:
            raise BrokerConfigError(f"broker {broker!r}: credential 'cid' is empty")
        return cls(
            username=found["username"],
            password=found["password"],
            cid=cid,
            sec=found["sec"],
            app_id=found.get("app_id") or None,
        )

    def secret_values(self) -> list[str]:
        """The values masked in any text. ``cid`` is an app id, often a short number, so masking it
        in free text would garble unrelated digits; it is never logged or journaled either way."""
        return [self.password, self.sec]


#: A2.1 accesstokenrequest: the user's name and password plus the API key (cid and sec).
CREDENTIALS = Credentials(
    sets=(frozenset({"password", "cid", "sec"}),),
    username=True,
    from_options=frozenset({"cid"}),
)

ADAPTER = AdapterSpec(
    type="tradovate",
    title="Tradovate",
    build="tterm.brokers.tradovate:build",
    broker_class="tterm.brokers.tradovate.broker:TradovateBroker",
    options=TradovateSettings,
    credentials=CREDENTIALS,
    interactive_login=False,
    login_note=(
        "Tradovate needs no browser login: tterm logs in with the username, password and API key "
        "(cid, sec) from secrets.toml and renews the session itself. When Tradovate refuses them, tterm "
        "stops logging in (Tradovate allows about 5 failed logins an hour) and shows NEEDS LOGIN with the "
        "reason: fix secrets.toml, then start tterm again. If Tradovate asks for a captcha, log in once at "
        "trader.tradovate.com (or wait an hour: tterm then tries once more by itself)."
    ),
)

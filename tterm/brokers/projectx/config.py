"""ProjectX Gateway's options and credentials (TopstepX and the other ProjectX firms), declared once:
the registry, ``tterm doctor`` and the adapter all read them from here (:data:`ADAPTER`).

The hosts (B1, vendor-updates.md): TopstepX answers at ``api.topstepx.com`` with its hubs at
``rtc.topstepx.com``; the ProjectX demo at ``gateway-api-demo.s2f.projectx.com`` /
``gateway-rtc-demo.s2f.projectx.com``; other firms at ``api.<firm>.projectx.com`` /
``rtc.<firm>.projectx.com``. ``firm`` picks one of them and ``api_url`` / ``user_hub_url`` /
``market_hub_url`` override each (tests point them at the loopback fake). TopstepX keeps sim and
funded accounts on one host: each account's ``simulated`` flag tells them apart, so
``environment`` only labels the login.

The login is a user name and an API key (``Auth/loginKey``): the key lives in the secrets file
(``api_key``) or ``TTERM_<NAME>_API_KEY``; the user name may be ``username`` in config.toml.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tterm.brokers.common.adapter import AdapterSpec, Credentials
from tterm.brokers.common.settings import parse_options, require_secrets

#: B1: REST base and hub host per firm.
HOSTS: dict[str, tuple[str, str]] = {
    "topstepx": ("https://api.topstepx.com", "https://rtc.topstepx.com"),
    "demo": ("https://gateway-api-demo.s2f.projectx.com", "https://gateway-rtc-demo.s2f.projectx.com"),
}
_FIRM = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")


class ProjectXSettings(BaseModel):
    """Options for one ProjectX login. Intervals are seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: Literal["demo", "live"] = "live"
    firm: str = "topstepx"
    api_url: str | None = None
    user_hub_url: str | None = None
    market_hub_url: str | None = None
    #: B1: the ``live`` flag of contract and bar requests (False: the sim data subscription).
    live_data: bool = False

    # The JWT lasts 24 h (B3); it is renewed with Auth/validate this long before it ends.
    renew_ahead: float = Field(6 * 3600.0, gt=0)
    token_check_interval: float = Field(60.0, gt=0)

    # REST (B10, vendor-updates.md): 200 requests / 60 s, History/retrieveBars 30 / 30 s.
    requests_per_minute: int = Field(200, ge=1)
    bars_per_30s: int = Field(30, ge=1)
    request_timeout: float = Field(10.0, gt=0)
    read_retries: int = Field(2, ge=0)
    backoff_base: float = Field(1.0, gt=0)
    backoff_cap: float = Field(60.0, gt=0)

    # Hubs (B11). The server pings every 15 s; silence past ``stale_after`` replaces the socket.
    ping_interval: float = Field(15.0, gt=0)
    stale_after: float = Field(40.0, gt=0)
    watchdog_interval: float = Field(1.0, gt=0)
    connect_timeout: float = Field(10.0, gt=0)
    invoke_timeout: float = Field(10.0, gt=0)
    reconnect_base: float = Field(1.0, gt=0)
    reconnect_cap: float = Field(30.0, gt=0)
    market_data: bool = True
    #: project-x-py issue #97: ticks can stop while the socket stays healthy. A subscribed symbol
    #: with no quote for this long marks the market data STALE (orders held) and the hub is
    #: reconnected once per freeze.
    quote_stale_after: float = Field(30.0, gt=0)
    hold_orders_when_stale: bool = True

    # Orders: how long place/modify/cancel wait for the hub to confirm the new state.
    ack_wait: float = Field(2.0, ge=0)
    #: What a trailing stop's ``trailPrice`` carries when placing. The sources disagree (B12, PX-RS:
    #: a price level; project-x-py 4.4's ``place_trailing_stop_order``: the distance): "level" by
    #: default, "distance" if your gateway reads it that way.
    trail_price: Literal["level", "distance"] = "level"

    @field_validator("firm")
    @classmethod
    def _check_firm(cls, value: str) -> str:
        firm = value.strip().lower()
        if not _FIRM.match(firm):
            raise ValueError("must be topstepx, demo or a ProjectX firm's host name part (api.<firm>.projectx.com)")
        return firm

    @field_validator("api_url", "user_hub_url", "market_hub_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://", "ws://", "wss://")):
            raise ValueError("must start with https:// (or http:// for a local test server)")
        return value.rstrip("/")

    def _hosts(self) -> tuple[str, str]:
        return HOSTS.get(self.firm) or (
            f"https://api.{self.firm}.projectx.com",
            f"https://rtc.{self.firm}.projectx.com",
        )

    @property
    def is_live(self) -> bool:
        return self.environment == "live"

    @property
    def rest_base(self) -> str:
        """The REST root; endpoints are ``<rest_base>/Auth/loginKey`` and so on."""
        if self.api_url:
            return self.api_url if self.api_url.lower().endswith("/api") else self.api_url + "/api"
        return self._hosts()[0] + "/api"

    @property
    def user_hub(self) -> str:
        return self.user_hub_url or self._hosts()[1] + "/hubs/user"

    @property
    def market_hub(self) -> str:
        return self.market_hub_url or self._hosts()[1] + "/hubs/market"

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *, broker: str) -> ProjectXSettings:
        return parse_options(cls, options, broker=broker)


@dataclass(frozen=True, slots=True)
class ProjectXCredentials:
    """The login: user name and API key (the repr never shows the key)."""

    username: str
    api_key: str = field(repr=False)

    @classmethod
    def from_secrets(cls, secrets: Mapping[str, Any], *, broker: str, username: str = "") -> ProjectXCredentials:
        missing = CREDENTIALS.missing(secrets, username=username)
        if missing:
            require_secrets(secrets, tuple(missing), broker=broker)  # raises, naming exactly those
        found = {str(k).strip().lower(): str(v) for k, v in secrets.items() if v is not None and str(v) != ""}
        return cls(username=found.get("username") or username, api_key=found["api_key"])


#: B3 Auth/loginKey: the user's name and the API key from the firm's settings page.
CREDENTIALS = Credentials(sets=(frozenset({"api_key"}),), username=True)

ADAPTER = AdapterSpec(
    type="projectx",
    title="ProjectX Gateway (TopstepX)",
    build="tterm.brokers.projectx:build",
    broker_class="tterm.brokers.projectx.broker:ProjectXBroker",
    options=ProjectXSettings,
    credentials=CREDENTIALS,
    interactive_login=False,
    login_note=(
        "ProjectX needs no browser login: tterm logs in with the user name and the API key (api_key in "
        "secrets.toml, from the firm's ProjectX API settings) and renews the 24-hour session itself."
    ),
)

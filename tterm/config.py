"""Settings: ``config.toml`` <-> pydantic models, and secrets kept apart in ``secrets.toml``.

Where things live (each overridable for tests and for running several setups side by side):

- config dir: platformdirs ``user_config_dir("tterm")``, or ``$TTERM_CONFIG_DIR``; it holds
  ``config.toml`` and ``secrets.toml``.
- data dir: platformdirs ``user_data_dir("tterm")``, or ``general.data_dir``, or
  ``$TTERM_DATA_DIR`` (the environment wins); it holds the journal and paper-broker state.

Every table forbids unknown keys, so a typo is an error, and a broken file raises
:class:`ConfigError` naming the file, the dotted key and the reason. Nothing starts
half-configured. Secrets never go in ``config.toml``: they live in ``secrets.toml`` (mode 0600)
or in ``TTERM_<BROKER>_<KEY>`` environment variables, and never appear in an exception or repr.

Adding a section: define its model below and add one line to :class:`Settings`.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import tempfile
import tomllib
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import platformdirs
import tomli_w
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tterm.core.files import PRIVATE_FILE, private_dir
from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.journal import JOURNAL_FILENAME
from tterm.core.models import AccountKind
from tterm.core.redact import is_secret_key, mask
from tterm.risk.settings import RiskSettings

APP_NAME = "tterm"
CONFIG_FILENAME = "config.toml"
SECRETS_FILENAME = "secrets.toml"
ENV_CONFIG_DIR = "TTERM_CONFIG_DIR"
ENV_DATA_DIR = "TTERM_DATA_DIR"
ENV_PREFIX = "TTERM_"

#: Broker instance names that cannot be used: ``paper`` is the embedded broker; ``config`` and
#: ``data`` would collide with the ``TTERM_CONFIG_DIR`` / ``TTERM_DATA_DIR`` variables; ``hub``
#: holds the webhook hub's secrets (``[hub]`` in secrets.toml, ``TTERM_HUB_*``).
RESERVED_BROKER_NAMES = frozenset({"paper", "config", "data", "hub", "alerts"})

DEFAULT_PAPER_SYMBOLS: tuple[str, ...] = (
    "ES", "MES", "NQ", "MNQ", "RTY", "M2K", "YM", "MYM", "CL", "MCL", "GC", "MGC",
    "AAPL", "MSFT", "NVDA", "TSLA", "SPY", "QQQ", "AMD", "AMZN", "META", "GOOGL",
)  # fmt: skip

DEFAULT_WATCHLISTS: dict[str, tuple[str, ...]] = {
    "futures": (
        "MES1!", "ES1!", "MNQ1!", "NQ1!", "M2K1!", "RTY1!", "MYM1!", "YM1!", "MCL1!", "CL1!", "MGC1!", "GC1!",
    ),
    "stocks": ("AAPL", "MSFT", "NVDA", "TSLA", "SPY", "QQQ", "AMD", "AMZN", "META", "GOOGL"),
}  # fmt: skip

_HEADER = """\
# tterm configuration. Every key, its default and its meaning: README.md, "Config keys".
# Secrets (passwords, API keys, tokens) do NOT belong here: put them in secrets.toml next to
# this file (mode 0600) or in TTERM_<BROKER>_<KEY> environment variables.

"""

_BROKER_NAME = re.compile(r"^[a-z0-9-]+$")
_PAPER_ID = re.compile(r"^[A-Z0-9_-]+$")
_ACCOUNT_ID = re.compile(r"^([a-z0-9-]+):(\S+)$")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


# --------------------------------------------------------------------------- errors


class ConfigError(Exception):
    """A config or secrets file that cannot be used. The message names the file, the dotted key
    and the reason, one problem per line; it never contains a secret value."""

    def __init__(self, path: Path | str, problems: Iterable[tuple[str, str]]) -> None:
        self.path = Path(path)
        self.problems: list[tuple[str, str]] = list(problems)
        shown = display_path(self.path)
        lines = [f"{shown}: {key}: {reason}" if key else f"{shown}: {reason}" for key, reason in self.problems]
        super().__init__("\n".join(lines))


class SecretsError(ConfigError):
    """The secrets file is unsafe (readable by others) or malformed."""


def display_path(path: Path | str) -> str:
    """``path`` with the home directory shown as ``~`` (shorter, and the same on every machine)."""
    p = Path(path)
    try:
        return "~/" + p.relative_to(Path.home()).as_posix()
    except ValueError:
        return str(p)


# --------------------------------------------------------------------------- locations


def config_dir() -> Path:
    """Where ``config.toml`` and ``secrets.toml`` live."""
    env = os.environ.get(ENV_CONFIG_DIR)
    return Path(env).expanduser() if env else Path(platformdirs.user_config_dir(APP_NAME))


def config_path() -> Path:
    return config_dir() / CONFIG_FILENAME


def secrets_path() -> Path:
    return config_dir() / SECRETS_FILENAME


def data_dir(settings: Settings | None = None) -> Path:
    """Where the journal and paper state live: ``$TTERM_DATA_DIR``, else ``general.data_dir``,
    else the platform's user data dir."""
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        return Path(env).expanduser()
    if settings is not None and settings.general.data_dir is not None:
        return settings.general.data_dir
    return Path(platformdirs.user_data_dir(APP_NAME))


def journal_path(settings: Settings | None = None) -> Path:
    return data_dir(settings) / JOURNAL_FILENAME


# --------------------------------------------------------------------------- field types


def _nonempty(v: str) -> str:
    v = v.strip()
    if not v:
        raise ValueError("must not be empty")
    return v


def _symbol(v: str) -> str:
    v = v.strip()
    if not v:
        raise ValueError("a symbol must not be empty")
    return v.upper()


def _paper_id(v: str) -> str:
    if not _PAPER_ID.match(v):
        raise ValueError(f"account id {v!r} may use only A-Z, 0-9, '-' and '_'")
    return v


def _account_id(v: str) -> str:
    if not _ACCOUNT_ID.match(v):
        raise ValueError(f"{v!r} is not an account id: write broker:account, e.g. paper:FUT50K")
    return v


NonEmptyStr = Annotated[str, AfterValidator(_nonempty)]
Symbol = Annotated[str, AfterValidator(_symbol)]
PaperAccountId = Annotated[str, AfterValidator(_paper_id)]
AccountId = Annotated[str, AfterValidator(_account_id)]


def _resolve_path(v: Path | None, info: ValidationInfo) -> Path | None:
    """Expand ``~`` and read a relative path against the config file's directory."""
    if v is None:
        return None
    v = v.expanduser()
    base = (info.context or {}).get("base_dir")
    if not v.is_absolute() and base is not None:
        v = Path(base) / v
    return v


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# --------------------------------------------------------------------------- sections


class GeneralSettings(_Section):
    """``[general]``: how the terminal looks and behaves."""

    theme: NonEmptyStr = "tterm-amber"
    # 30 Hz: a quote waits at most one frame (33 ms) to be drawn, which keeps tick-to-screen p99
    # under the 50 ms goal (bench/bench_tui.py); the SSH profile lowers it to 8 Hz.
    refresh_hz: int = Field(30, ge=1, le=60)
    ssh_profile: Literal["auto", "on", "off"] = "auto"
    confirm_orders: bool = True
    default_account: AccountId = "paper:FUT50K"
    data_dir: Path | None = None
    # Quantity presets per asset class (keys 1-4 pick one, + and - step): `b` on AAPL buys 100
    # shares, not 1, unless you choose otherwise. Each list: up to four whole numbers, ascending.
    quantity_presets: dict[Literal["future", "equity", "option"], list[int]] = Field(
        default_factory=lambda: {"future": [1, 2, 5, 10], "equity": [100, 200, 500, 1000], "option": [1, 2, 5, 10]}
    )

    @field_validator("quantity_presets")
    @classmethod
    def _presets(cls, v: dict[str, list[int]]) -> dict[str, list[int]]:
        for asset, sizes in v.items():
            if not 1 <= len(sizes) <= 4:
                raise ValueError(f"quantity_presets.{asset}: give one to four sizes, got {len(sizes)}")
            if any(n < 1 for n in sizes) or sorted(set(sizes)) != sizes:
                raise ValueError(f"quantity_presets.{asset}: sizes must be whole numbers >= 1, ascending, got {sizes}")
        return v

    @field_validator("data_dir")
    @classmethod
    def _data_dir(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        return _resolve_path(v, info)


class PaperAccountSettings(_Section):
    """One ``[[paper.accounts]]`` entry: a simulated account of the embedded paper broker."""

    id: PaperAccountId
    name: str = ""
    # The paper broker models cash accounts (equities, options) and futures accounts; it has no
    # margin model, so "margin" is refused here rather than at start-up.
    kind: Literal["cash", "futures"] = "futures"
    balance: Decimal = Field(gt=0)
    profile: str = ""

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: Any) -> Any:
        """An account without a name is shown by its id."""
        if isinstance(data, dict) and not str(data.get("name") or "").strip() and "id" in data:
            data = {**data, "name": data["id"]}
        return data


def _default_paper_accounts() -> list[PaperAccountSettings]:
    return [
        PaperAccountSettings(id="CASH", name="Paper Cash", kind="cash", balance=Decimal(100000)),
        PaperAccountSettings(
            id="FUT50K",
            name="Paper 50K",
            kind="futures",
            balance=Decimal(50000),
            profile="topstep-50k-combine",
        ),
    ]


class PaperSettings(_Section):
    """``[paper]``: the embedded paper broker (no account, no network)."""

    enabled: bool = True
    seed: int | None = Field(None, ge=0)
    quote_hz: float = Field(4.0, gt=0, le=50)
    replay: Path | None = None
    symbols: list[Symbol] = Field(default_factory=lambda: list(DEFAULT_PAPER_SYMBOLS))
    accounts: list[PaperAccountSettings] = Field(default_factory=_default_paper_accounts)

    @field_validator("replay")
    @classmethod
    def _replay_exists(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        v = _resolve_path(v, info)
        if v is not None and not v.is_file():
            raise ValueError(f"replay file not found: {v}")
        return v


class BrokerSettings(_Section):
    """``[brokers.<name>]``: one broker login. Secrets go to secrets.toml, never here.

    ``type`` must name an adapter in the broker registry (``tterm.brokers.registry``), and
    ``options`` must be options that adapter declares (its ``config.py``).
    """

    type: str
    enabled: bool = False
    environment: Literal["demo", "live"] = "demo"
    username: str = ""
    options: dict[str, str] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _has_adapter(cls, v: str) -> str:
        from tterm.brokers.registry import UnknownBrokerType, adapter

        try:
            adapter(v.strip())
        except UnknownBrokerType as exc:
            raise ValueError(str(exc)) from None
        return v.strip()

    def adapter_options(self) -> dict[str, str]:
        """The options handed to the adapter: ``options`` plus ``environment`` unless set there."""
        return {"environment": self.environment, **self.options}


class AccountSettings(_Section):
    """``[accounts."<broker:id>"]``: per-account overrides."""

    alias: str = ""
    profile: str = ""
    confirm_orders: bool | None = None
    max_order_qty: int | None = Field(None, gt=0)


class InstrumentsSettings(_Section):
    """``[instruments]``: symbols to add to the instrument master."""

    equities: list[Symbol] = Field(default_factory=list)

    @field_validator("equities")
    @classmethod
    def _valid_equities(cls, v: list[str]) -> list[str]:
        master = InstrumentMaster()
        for sym in v:
            try:
                master.add_equity(sym)
            except UnknownSymbol as exc:
                raise ValueError(str(exc)) from None
        return v


#: TradingView's published webhook source addresses (support article 43000529348).
TRADINGVIEW_IPS: tuple[str, ...] = ("52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7")

_STRATEGY_ID = re.compile(r"^[A-Za-z0-9_-]+$")


def _ip_or_network(v: str) -> str:
    import ipaddress

    try:
        ipaddress.ip_network(v.strip(), strict=False)
    except ValueError:
        raise ValueError(f"{v!r} is not an IP address or network (e.g. 203.0.113.7 or 203.0.113.0/24)") from None
    return v.strip()


class HubAccountSettings(_Section):
    """One account a hub strategy trades, with its quantity multiplier (``0.5`` halves, floored)."""

    account: AccountId
    multiplier: Decimal = Field(Decimal(1), gt=0)


class HubStrategySettings(_Section):
    """``[hub.strategies.<id>]``: where the alerts posted to ``/webhook/<id>`` trade.

    ``accounts`` lists account ids (``"paper:FUT50K"``) or tables ``{account = "...", multiplier =
    2}``; ``symbols`` maps an alert's ticker to the symbol traded (``"NQ1!" = "MNQ1!"``);
    ``quantity`` is used when an alert gives none; with ``pyramiding`` a buy while long adds
    (otherwise it is skipped; ``action: add`` always adds).
    """

    accounts: list[HubAccountSettings] = Field(min_length=1)
    symbols: dict[str, Symbol] = Field(default_factory=dict)
    quantity: int | None = Field(None, gt=0)
    pyramiding: bool = False
    enabled: bool = True

    @field_validator("accounts", mode="before")
    @classmethod
    def _plain_ids(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"account": a} if isinstance(a, str) else a for a in v]
        return v

    @field_validator("symbols")
    @classmethod
    def _upper_keys(cls, v: dict[str, str]) -> dict[str, str]:
        return {k.strip().upper(): s for k, s in v.items()}


class HubSettings(_Section):
    """``[hub]``: the webhook endpoint and the remote engine API of ``tterm hub``.

    The webhook secret and the API token are secrets: ``webhook_secret`` and ``api_token`` under
    ``[hub]`` in secrets.toml, or ``TTERM_HUB_WEBHOOK_SECRET`` / ``TTERM_HUB_API_TOKEN``.
    """

    host: NonEmptyStr = "127.0.0.1"
    port: int = Field(8787, ge=0, le=65535)
    serve_webhooks: bool = False
    tradingview_ips_only: bool = False
    allowed_ips: list[Annotated[str, AfterValidator(_ip_or_network)]] = Field(default_factory=list)
    trust_proxy: bool = False
    max_body_bytes: int = Field(16384, ge=256, le=1_048_576)
    rate_limit: float = Field(10.0, gt=0)
    rate_burst: int = Field(50, ge=1)
    stale_after: float = Field(60.0, gt=0)
    exit_fill_timeout: float = Field(30.0, gt=0)
    drift_grace: float = Field(10.0, ge=0)
    strategies: dict[str, HubStrategySettings] = Field(default_factory=dict)

    @field_validator("strategies", mode="before")
    @classmethod
    def _list_form(cls, v: Any) -> Any:
        """``[[hub.strategies]]`` entries with an ``id`` key become ``[hub.strategies.<id>]`` tables."""
        if not isinstance(v, list):
            return v
        out: dict[str, Any] = {}
        for i, item in enumerate(v):
            if not isinstance(item, dict) or not str(item.get("id") or "").strip():
                raise ValueError(f"[[hub.strategies]] entry {i} needs an id")
            item = dict(item)
            sid = str(item.pop("id")).strip()
            if sid in out:
                raise ValueError(f"duplicate strategy id {sid!r}")
            out[sid] = item
        return out

    @field_validator("strategies")
    @classmethod
    def _strategy_ids(cls, v: dict[str, HubStrategySettings]) -> dict[str, HubStrategySettings]:
        for sid in v:
            if not _STRATEGY_ID.match(sid):
                raise ValueError(f"strategy id {sid!r} may use only A-Z, a-z, 0-9, '-' and '_' (it is a URL path)")
        return v


_ACTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


def _action_names(v: dict[str, Any]) -> dict[str, Any]:
    for name in v:
        if not _ACTION_NAME.match(name):
            raise ValueError(f"name {name!r} may use only A-Z, a-z, 0-9, '-' and '_' (at most 40)")
    return v


def _webhook_url(v: str) -> str:
    if not re.match(r"^https?://[^\s/]+", v):
        raise ValueError("must be an http:// or https:// URL")
    return v


class AlertsSettings(_Section):
    """``[alerts]``: the webhook-outs and commands a price alert may name (``webhook NAME``,
    ``run NAME``). A webhook URL that carries a token belongs in ``secrets.toml`` under
    ``[alerts]`` as ``webhook_<name>`` (or ``TTERM_ALERTS_WEBHOOK_<NAME>``) instead."""

    timeout_seconds: float = Field(5.0, gt=0, le=120)
    webhooks: Annotated[dict[str, Annotated[str, AfterValidator(_webhook_url)]], AfterValidator(_action_names)] = Field(
        default_factory=dict
    )
    commands: Annotated[dict[str, Annotated[list[NonEmptyStr], Field(min_length=1)]], AfterValidator(_action_names)] = (
        Field(default_factory=dict)
    )


class ScreensSettings(_Section):
    """``[screens]``: charts, time and sales and option chains (``chart``, ``tape``, ``chain``)."""

    chart_timeframe: Literal["1s", "1m", "5m", "15m", "1h", "1d"] = "1m"
    #: Large prints (highlighted on the tape) per instrument: contract, root or underlying -> size.
    large_print: dict[str, Annotated[int, Field(gt=0)]] = Field(default_factory=dict)
    large_print_future: int = Field(50, gt=0)
    large_print_equity: int = Field(5000, gt=0)
    large_print_option: int = Field(100, gt=0)
    #: Strikes shown either side of the money on the chain screen.
    chain_strikes: int = Field(12, ge=2, le=100)

    def large_for(self, symbol: str, root: str, underlying: str, asset_class: str) -> int:
        """The large-print size for one instrument: its own entry, its root's, else the class default."""
        table = {k.upper(): v for k, v in self.large_print.items()}
        for key in (symbol, root, underlying):
            if key and key.upper() in table:
                return table[key.upper()]
        return {"future": self.large_print_future, "option": self.large_print_option}.get(
            asset_class, self.large_print_equity
        )


class Settings(_Section):
    """The whole ``config.toml``. One line per section."""

    general: GeneralSettings = Field(default_factory=GeneralSettings)
    paper: PaperSettings = Field(default_factory=PaperSettings)
    brokers: dict[str, BrokerSettings] = Field(default_factory=dict)
    accounts: dict[str, AccountSettings] = Field(default_factory=dict)
    watchlists: dict[str, list[Symbol]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_WATCHLISTS.items()}
    )
    keymap: dict[str, NonEmptyStr] = Field(default_factory=dict)
    fees: dict[str, Annotated[Decimal, Field(ge=0)]] = Field(default_factory=dict)
    instruments: InstrumentsSettings = Field(default_factory=InstrumentsSettings)
    hub: HubSettings = Field(default_factory=HubSettings)
    risk: RiskSettings = Field(default_factory=RiskSettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)
    screens: ScreensSettings = Field(default_factory=ScreensSettings)

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        """Checks spanning keys and sections; each problem is one ``key: reason`` line."""
        problems = self.problems()
        if problems:
            raise ValueError("\n".join(f"{key}: {reason}" for key, reason in problems))
        return self

    def problems(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for name, broker in self.brokers.items():
            key = f"brokers.{_key(name)}"
            if not _BROKER_NAME.match(name):
                out.append((key, "a broker name may use only a-z, 0-9 and '-'"))
            elif name in RESERVED_BROKER_NAMES:
                out.append((key, f"the name {name!r} is reserved; pick another, e.g. {broker.type}-demo"))
            spec = _adapter(broker.type)
            declared = set(spec.option_names) if spec is not None else set()
            secret_looking = set()
            for opt in broker.options:
                # An option the adapter declares (Tradovate's ``cid``) is not a misplaced secret.
                if is_secret_key(opt) and opt.strip().lower().replace("-", "_") not in declared:
                    secret_looking.add(opt)
                    env = env_var_name(name, opt) if _BROKER_NAME.match(name) else "the environment"
                    out.append(
                        (
                            f"{key}.options.{_key(opt)}",
                            f"looks like a secret: put it in secrets.toml under [{name}] or in {env}",
                        )
                    )
            if spec is not None:
                for opt, reason in spec.option_problems(broker.adapter_options()):
                    top = opt.split(".")[0]
                    if top not in secret_looking:
                        where = (
                            "environment"
                            if top == "environment" and top not in broker.options
                            else f"options.{_key(opt)}"
                        )
                        out.append((f"{key}.{where}", reason))
        seen: dict[str, int] = {}
        for i, acct in enumerate(self.paper.accounts):
            if acct.id in seen:
                out.append(
                    (f"paper.accounts[{i}].id", f"duplicate id {acct.id!r} (also paper.accounts[{seen[acct.id]}])")
                )
            else:
                seen[acct.id] = i
        master = InstrumentMaster()
        for sym in self.instruments.equities:
            master.add_equity(sym)
        for i, sym in enumerate(self.paper.symbols):
            try:
                master.resolve(sym)
            except UnknownSymbol as exc:
                out.append((f"paper.symbols[{i}]", f"{exc}; add equities under [instruments] equities"))
        known_brokers = {"paper", *self.brokers}
        for acct_id in self.accounts:
            m = _ACCOUNT_ID.match(acct_id)
            if m is None:
                out.append((f"accounts.{_key(acct_id)}", "not an account id: write broker:account, e.g. paper:FUT50K"))
            elif m.group(1) not in known_brokers:
                out.append(
                    (
                        f"accounts.{_key(acct_id)}",
                        f"no broker named {m.group(1)!r} (configured: {', '.join(sorted(known_brokers))})",
                    )
                )
        for sid, strat in self.hub.strategies.items():
            for i, entry in enumerate(strat.accounts):
                broker_name, _, vendor = entry.account.partition(":")
                key = f"hub.strategies.{_key(sid)}.accounts[{i}]"
                if broker_name not in known_brokers:
                    out.append(
                        (key, f"no broker named {broker_name!r} (configured: {', '.join(sorted(known_brokers))})")
                    )
                elif broker_name == "paper" and self.paper.enabled and vendor not in seen:
                    out.append((key, f"no paper account {vendor!r} (paper accounts: {', '.join(seen) or 'none'})"))
        default = self.general.default_account
        broker_name, _, vendor_id = default.partition(":")
        if broker_name == "paper":
            if not self.paper.enabled:
                out.append(("general.default_account", f"{default!r} is a paper account but [paper] enabled = false"))
            elif vendor_id not in seen:
                out.append(
                    (
                        "general.default_account",
                        f"no paper account {vendor_id!r} (paper accounts: {', '.join(seen) or 'none'})",
                    )
                )
        elif broker_name not in self.brokers:
            out.append(("general.default_account", f"no broker named {broker_name!r} in [brokers]"))
        for name in self.watchlists:
            if not name.strip():
                out.append(("watchlists", "a watchlist name must not be empty"))
        for root in self.fees:
            if root.upper() not in master.specs:
                out.append((f"fees.{_key(root)}", f"unknown futures root (known: {', '.join(master.roots)})"))
        return out

    def fee_overrides(self) -> dict[str, Decimal]:
        """``[fees]`` with roots upper-cased, ready for ``InstrumentMaster(fee_overrides=...)``."""
        return {k.upper(): v for k, v in self.fees.items()}

    def account_settings(self, account_id: str) -> AccountSettings:
        """The ``[accounts."<id>"]`` overrides of one account (defaults when absent)."""
        return self.accounts.get(account_id) or AccountSettings()

    def confirm_orders_for(self, account_id: str) -> bool:
        """Whether orders in ``account_id`` need a confirmation (account override, else general)."""
        override = self.account_settings(account_id).confirm_orders
        return self.general.confirm_orders if override is None else override

    def enabled_brokers(self) -> dict[str, BrokerSettings]:
        return {name: b for name, b in self.brokers.items() if b.enabled}


# --------------------------------------------------------------------------- error formatting


def _key(part: str) -> str:
    """A TOML key as it would be written in a dotted path (quoted when not a bare key)."""
    return part if _BARE_KEY.match(part) else '"' + part.replace('"', '\\"') + '"'


def dotted_key(loc: Iterable[str | int]) -> str:
    """``("paper", "accounts", 1, "balance")`` -> ``paper.accounts[1].balance``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + _key(part)
    return out


def _unwrap(tp: Any) -> Any:
    """Strip Annotated and Optional from a type annotation."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _fields_at(loc: Iterable[str | int]) -> list[str]:
    """The key names allowed at ``loc`` inside Settings (for "did you mean" on typos)."""
    tp: Any = Settings
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                return []
            tp = field.annotation
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        elif get_origin(tp) is list:
            tp = get_args(tp)[0]
        else:
            return []
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return []


def _num(v: Any) -> Any:
    """A bound as a person writes it: ``0.0`` -> ``0``."""
    return int(v) if isinstance(v, float) and v.is_integer() else v


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace('"', '\\"') + '"'
    return str(v)


def _reason(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    loc = tuple(err["loc"])
    if kind == "extra_forbidden":
        name = str(loc[-1]) if loc else ""
        allowed = _fields_at(loc[:-1])
        hint = difflib.get_close_matches(name, allowed, n=1)
        if hint:
            return f"unknown key (did you mean {hint[0]!r}?)"
        return f"unknown key (allowed: {', '.join(allowed)})" if allowed else "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "value_error":
        text = str(err["msg"]).removeprefix("Value error, ")
    else:
        text = {
            "greater_than": "must be greater than {gt}",
            "greater_than_equal": "must be at least {ge}",
            "less_than": "must be less than {lt}",
            "less_than_equal": "must be at most {le}",
            "literal_error": "must be one of {expected}",
            "enum": "must be one of {expected}",
            "int_parsing": "must be a whole number",
            "int_type": "must be a whole number",
            "int_from_float": "must be a whole number",
            "float_parsing": "must be a number",
            "float_type": "must be a number",
            "decimal_parsing": "must be a number",
            "decimal_type": "must be a number",
            "finite_number": "must be a finite number",
            "bool_parsing": "must be true or false",
            "bool_type": "must be true or false",
            "string_type": 'must be a string (in quotes, e.g. "text")',
            "list_type": 'must be a list, e.g. ["A", "B"]',
            "dict_type": "must be a table",
            "model_type": "must be a table",
            "model_attributes_type": "must be a table",
            "path_type": "must be a path (a string)",
        }.get(kind, "")
        text = (
            text.format(**{k: _num(v) for k, v in ctx.items()})
            if text
            else str(err["msg"])[:1].lower() + str(err["msg"])[1:]
        )
    value = err.get("input")
    if isinstance(value, str | int | float | bool | Decimal) and kind != "value_error":
        secret = any(isinstance(p, str) and is_secret_key(p) for p in loc)
        text += f" (got {mask(str(value)) if secret else _toml_value(value)})"
    return text


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        reason = _reason(err)
        if not loc and err["type"] == "value_error":
            # Cross-checks arrive as "key: reason" lines from Settings._cross_checks.
            for line in reason.splitlines():
                key, sep, rest = line.partition(": ")
                out.append((key, rest) if sep else ("", line))
        else:
            out.append((dotted_key(loc), reason))
    return out


# --------------------------------------------------------------------------- load and save


def validate_settings(data: Mapping[str, Any], path: Path | str, *, base_dir: Path | None = None) -> Settings:
    """Validate a parsed TOML document; problems raise ConfigError naming ``path``."""
    try:
        return Settings.model_validate(
            dict(data), context={"base_dir": base_dir if base_dir is not None else Path(path).parent}
        )
    except ValidationError as exc:
        raise ConfigError(path, _problems(exc)) from None


def load_settings(path: Path | None = None, *, create: bool = True) -> Settings:
    """Read and validate ``config.toml`` (default: :func:`config_path`).

    A missing file gives the defaults, written to disk first when ``create`` is true. Any
    problem raises :class:`ConfigError`; nothing is returned half-configured.
    """
    path = Path(path).expanduser() if path is not None else config_path()
    if not path.exists():
        settings = Settings()
        if create:
            save_settings(settings, path)
        return settings
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [("", f"cannot read the file: {exc.__class__.__name__}: {exc}")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [("", f"invalid TOML: {exc}")]) from None
    return validate_settings(data, path)


def settings_to_toml(settings: Settings) -> str:
    """The TOML text of ``settings`` (None values are left out: absent means default)."""
    data = settings.model_dump(mode="python", exclude_none=True)
    return _HEADER + tomli_w.dumps(_plain(data))


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, AccountKind):
        return obj.value
    if isinstance(obj, Decimal):
        # TOML has no decimal type; an integral amount is written as an integer, anything else
        # as a float, whose shortest repr pydantic reads back to the same Decimal.
        return int(obj) if obj == obj.to_integral_value() else obj
    return obj


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write ``settings`` to ``path`` (default: :func:`config_path`) atomically."""
    path = Path(path).expanduser() if path is not None else config_path()
    _atomic_write(path, settings_to_toml(settings), mode=PRIVATE_FILE)
    return path


@dataclass(frozen=True, slots=True)
class IfMissing:
    """An edit value written only where the file does not have the key yet: the current values of
    a table the file leaves to the defaults (``("watchlists",): IfMissing(lists)``)."""

    values: Mapping[str, Any]


def edit_config(edits: Mapping[tuple[str, ...], Any], path: Path | None = None) -> Path:
    """Change only the keys in ``edits`` (``("general", "theme")`` -> ``"tterm-light"``) in the
    config file and keep everything else as the user wrote it: comments, order, blank lines.

    A mapping value sets each of its keys in that table; an :class:`IfMissing` value sets only the
    keys the file does not have, so defaults it never spelled out are written rather than lost
    when one of them changes. A key whose value is unchanged is left exactly as written. Missing
    tables are added. The result is validated like a loaded config before it is written
    (atomically); a bad edit raises :class:`ConfigError` and changes nothing.
    """
    import tomlkit
    from tomlkit.exceptions import TOMLKitError
    from tomlkit.items import Array, Table

    path = Path(path).expanduser() if path is not None else config_path()
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        doc = tomlkit.parse(text)
    except (OSError, UnicodeDecodeError, TOMLKitError) as exc:
        raise ConfigError(path, [("", f"cannot edit the file: {exc.__class__.__name__}: {exc}")]) from None
    flat: list[tuple[tuple[str, ...], Any, bool]] = []  # (keys, value, only if missing)

    def flatten(keys: tuple[str, ...], value: Any, missing_only: bool = False) -> None:
        if isinstance(value, IfMissing):
            for k, v in value.values.items():
                flat.append(((*keys, str(k)), v, True))
        elif isinstance(value, Mapping):
            for k, v in value.items():
                flatten((*keys, str(k)), v, missing_only)
        else:
            flat.append((keys, value, missing_only))

    for keys, value in edits.items():
        flatten(tuple(keys), value)
    for keys, value, missing_only in flat:
        table: Any = doc
        for key in keys[:-1]:
            if key not in table:
                table[key] = tomlkit.table()
            table = table[key]
            if not isinstance(table, Table | dict):
                raise ConfigError(path, [(".".join(keys), f"{key} is not a table")])
        old = table.get(keys[-1])
        if missing_only and old is not None:
            continue
        new = _plain(value)
        if old is not None and _plain_item(old) == new:
            continue  # unchanged: keep it exactly as the user wrote it
        if isinstance(new, list) and isinstance(old, Array):
            arr = tomlkit.array()
            arr.extend(new)
            if "\n" in old.as_string():
                arr.multiline(True)  # keep a list written one item per line that way
            new = arr
        table[keys[-1]] = new
    out = tomlkit.dumps(doc)
    validate_settings(tomllib.loads(out), path)
    _atomic_write(path, out, mode=PRIVATE_FILE)
    return path


def _plain_item(item: Any) -> Any:
    """A tomlkit item as plain Python (for comparing with an edit)."""
    return item.unwrap() if hasattr(item, "unwrap") else item


def _atomic_write(path: Path, text: str, *, mode: int) -> None:
    """Write via a temp file in the same directory, fsync, then rename over ``path``. A missing
    directory is created 0700 (the config dir holds account ids and the secrets file)."""
    private_dir(path.parent, tighten=False)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # not on Windows, where the mode bits mean little anyway
            os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- secrets


class Secrets(dict[str, str]):
    """A broker's secrets: a plain dict whose repr masks every value, so printing or logging it
    by mistake leaks nothing."""

    def __repr__(self) -> str:
        return "Secrets({" + ", ".join(f"{k!r}: {mask(v)!r}" for k, v in self.items()) + "})"

    __str__ = __repr__


def env_var_name(broker_name: str, key: str) -> str:
    """``tradovate-demo``, ``password`` -> ``TTERM_TRADOVATE_DEMO_PASSWORD``."""
    return f"{ENV_PREFIX}{broker_name.upper().replace('-', '_')}_{key.upper().replace('-', '_')}"


def _check_broker_name(name: str) -> None:
    if not _BROKER_NAME.match(name):
        raise ValueError(f"broker name {name!r} may use only a-z, 0-9 and '-'")


def check_secrets_permissions(path: Path | None = None) -> None:
    """Raise SecretsError if the secrets file is readable or writable by group or others."""
    path = path if path is not None else secrets_path()
    if os.name == "nt" or not path.exists():
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SecretsError(
            path,
            [("", f"readable by group or others (mode {mode:04o}); refusing to use it. Fix: chmod 600 {path}")],
        )


def _read_secrets_file(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message gives the line and column, never the offending text.
        raise SecretsError(path, [("", f"invalid TOML: {exc}")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretsError(path, [("", f"cannot read the file: {exc.__class__.__name__}")]) from None


def load_secrets(broker_name: str, *, path: Path | None = None, known_brokers: Iterable[str] = ()) -> Secrets:
    """The secrets of one broker: its table in ``secrets.toml`` merged with environment variables
    ``TTERM_<NAME>_<KEY>`` (name upper-cased, ``-`` -> ``_``; the environment wins).

    Keys come back lower-case. ``known_brokers`` lists the other configured broker names so
    that, for broker ``tradovate``, ``TTERM_TRADOVATE_DEMO_PASSWORD`` (which belongs to
    ``tradovate-demo``) is not read as key ``demo_password``.
    """
    _check_broker_name(broker_name)
    path = path if path is not None else secrets_path()
    out = Secrets()
    if path.exists():
        check_secrets_permissions(path)
        table = _read_secrets_file(path).get(broker_name, {})
        if not isinstance(table, dict):
            raise SecretsError(path, [(_key(broker_name), 'must be a table of key = "value" pairs')])
        for k, v in table.items():
            if not isinstance(v, str | int):
                raise SecretsError(path, [(f"{_key(broker_name)}.{_key(k)}", "must be a string")])
            out[k.lower()] = str(v)
    prefix = env_var_name(broker_name, "")
    shadowing = [
        env_var_name(other, "")
        for other in known_brokers
        if other != broker_name and env_var_name(other, "").startswith(prefix)
    ]
    for var, value in os.environ.items():
        if var.startswith(prefix) and len(var) > len(prefix) and not any(var.startswith(s) for s in shadowing):
            out[var[len(prefix) :].lower()] = value
    return out


def save_secret(broker_name: str, key: str, value: str, *, path: Path | None = None) -> Path:
    """Store one secret in ``secrets.toml`` (created or rewritten atomically with mode 0600)."""
    _check_broker_name(broker_name)
    if not re.match(r"^[a-z0-9_]+$", key):
        raise ValueError(f"secret key {key!r} may use only a-z, 0-9 and '_'")
    if not isinstance(value, str):
        raise TypeError("a secret value must be a string")
    path = path if path is not None else secrets_path()
    data = _read_secrets_file(path) if path.exists() else {}
    table = data.setdefault(broker_name, {})
    if not isinstance(table, dict):
        raise SecretsError(path, [(_key(broker_name), 'must be a table of key = "value" pairs')])
    table[key] = value
    header = "# tterm secrets: keep this file mode 0600 (chmod 600). One table per broker name.\n\n"
    _atomic_write(path, header + tomli_w.dumps(data), mode=PRIVATE_FILE)
    return path


def _adapter(broker_type: str) -> Any:
    """The registry's adapter for ``broker_type`` (None if there is none; the type check says so)."""
    from tterm.brokers.registry import ADAPTERS

    return ADAPTERS.get(broker_type)


def missing_credentials(name: str, broker: BrokerSettings, secrets: Mapping[str, str]) -> list[tuple[str, str]]:
    """What a broker login still lacks, as ``(what, fix)`` pairs in plain words (empty: it can log in).

    The adapter declares its credentials once (its ``config.py``; asked through the broker
    registry): the same declaration the adapter checks when it is built. Where a type accepts
    several credential sets, the set closest to complete is reported.
    """
    from tterm.brokers.registry import adapter

    spec = adapter(broker.type)
    missing: list[tuple[str, str]] = []
    for k in spec.credentials.missing(secrets, broker.options, username=broker.username):
        if k == "username":
            missing.append(
                (f"brokers.{_key(name)}.username is empty", f'set username = "..." under [brokers.{_key(name)}]')
            )
            continue
        alt = f', or {k} = "..." under [brokers.{_key(name)}] options' if k in spec.credentials.from_options else ""
        missing.append(
            (
                f"secret {k!r}",
                f'add {k} = "..." under [{name}] in {display_path(secrets_path())} (mode 0600), '
                f"or export {env_var_name(name, k)}{alt}",
            )
        )
    return missing

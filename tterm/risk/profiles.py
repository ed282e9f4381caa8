"""Prop-firm rule profiles: versioned data in TOML, loaded and validated strictly.

A profile is one (firm, program, phase, account size) with the date of its source. The shipped
profiles live in ``tterm/risk/profiles/*.toml``; the user's own in ``<config dir>/profiles/*.toml``.
A user profile with the same id as a shipped one replaces it; ``extends = "<id>"`` starts from
another profile and changes only the keys given (handy for "my firm lowered the DLL").

File layout (one file may hold many profiles)::

    [defaults]                 # optional: merged under every [[profile]] of this file
    firm = "Topstep"

    [[profile]]
    id = "topstep-50k-combine"
    program = "Trading Combine"
    phase = "evaluation"
    account_size = 50000
    source_date = "2025-11-10"
    profit_target = 3000
    [profile.drawdown]         # amount, model, lock, snapshot
    [profile.daily_loss]       # amount, action
    [profile.contracts]        # max, micro_ratio, weights, scaling
    [profile.session]          # flat_by, auto_flatten, flat_by_action
    [profile.consistency]      # percent, base, scope
    [profile.news]             # rule, before_minutes, after_minutes, events
    hedging = "forbidden"      # opposite positions across the trader's accounts
    [profile.facts]            # "dotted.key" = "where that number comes from, and its date"

Every error names the file, the profile and the dotted key, and says why.
"""

from __future__ import annotations

import difflib
import itertools
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from tterm.core.models import Instrument

ZERO = Decimal(0)
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_SOURCE_DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")


class ProfileError(Exception):
    """A profile file that cannot be used; one ``file: key: reason`` line per problem."""

    def __init__(self, problems: Iterable[tuple[str, str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(f"{f}: {k}: {r}" if k else f"{f}: {r}" for f, k, r in self.problems))


class ProfileIncomplete(ValueError):
    """A profile that lacks a number tterm needs to enforce it (the firm's number is unknown)."""


class UnknownProfile(KeyError):
    """An account names a profile id that no profile file defines."""

    def __str__(self) -> str:
        return str(self.args[0])


# --------------------------------------------------------------------------- vocabulary


class DrawdownModel(StrEnum):
    """How the firm's floor moves (reference A.0)."""

    EOD = "eod"  # from the end-of-day balance, at the daily snapshot only
    INTRADAY_EQUITY = "intraday_equity"  # from every new peak of live equity, open profit included
    INTRADAY_REALIZED = "intraday_realized"  # from every new peak of the realized balance
    STATIC = "static"  # fixed at start balance - amount, never moves


class LockRule(StrEnum):
    """Where a trailing floor stops trailing."""

    NONE = "none"
    START = "start"  # at the starting balance
    START_PLUS_100 = "start_plus_100"  # at starting balance + $100
    UNTIL_TARGET = "until_target"  # trails until the balance reaches the profit target, then stays


class DllAction(StrEnum):
    """What the firm does when the daily loss limit is reached."""

    FLATTEN_BLOCK = "flatten_block"  # soft breach: flattened, blocked for the rest of the session
    FAIL = "fail"  # hard breach: the account fails
    NONE = "none"  # no daily loss limit


class CutoffAction(StrEnum):
    """What the firm does to a position still open at its flat-by time."""

    LIQUIDATE = "liquidate"  # the firm closes it; the account survives
    FAIL = "fail"  # the account fails (a hard breach)


class NewsAction(StrEnum):
    """A profile's rule around scheduled high-impact releases."""

    NONE = "none"
    NO_ENTRIES = "no_entries"  # no new exposure from N minutes before to N after
    FLATTEN = "flatten"  # be flat from N minutes before to N after (tterm flattens ahead)
    WARN = "warn"  # orders pass with a warning; the meter counts down


class ConsistencyBase(StrEnum):
    PROFIT_TARGET = "profit_target"
    TOTAL_PROFIT = "total_profit"


class ConsistencyScope(StrEnum):
    EVALUATION = "evaluation"  # a gate to pass the evaluation
    PAYOUT = "payout"  # a gate to request a payout


# Spellings from reference A.8 are accepted beside the canonical ones.
_LOCK_ALIASES = {"start+100": "start_plus_100", "start + 100": "start_plus_100"}
_DLL_ALIASES = {"soft_flatten_block": "flatten_block", "hard_fail": "fail"}
_RATIO_ALIASES = {"1:1": 1, "10:1": 10, 1: 1, 10: 10}


def _alias(table: Mapping[str, str]) -> Any:
    def fix(v: Any) -> Any:
        return table.get(v.strip().lower(), v.strip().lower()) if isinstance(v, str) else v

    return BeforeValidator(fix)


def _money(v: Any) -> Any:
    """Money in a profile may be an integer, a decimal string or a float with few digits."""
    if isinstance(v, bool):
        raise ValueError("expected an amount of money, got a boolean")
    if isinstance(v, float):
        return Decimal(repr(v))
    return v


def _ct_time(v: Any) -> Any:
    """A CT wall time as ``"15:10"`` or a TOML local time."""
    if isinstance(v, time):
        if v.tzinfo is not None:
            raise ValueError("give the time in CT without a zone offset, e.g. 15:10")
        return v
    if isinstance(v, str):
        m = re.fullmatch(r"(\d{1,2}):(\d{2})", v.strip())
        if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
            raise ValueError(f"{v!r} is not a CT time; write HH:MM, e.g. 15:10")
        return time(int(m.group(1)), int(m.group(2)))
    raise ValueError(f"expected a CT time like 15:10, got {v!r}")


def _ratio_value(v: Any) -> int:
    key = v.strip() if isinstance(v, str) else v
    if isinstance(key, bool) or key not in _RATIO_ALIASES:
        raise ValueError(f'must be "1:1" (a micro counts as a full contract) or "10:1", got {v!r}')
    return _RATIO_ALIASES[key]


Money = Annotated[Decimal, BeforeValidator(_money)]
CtTime = Annotated[time, BeforeValidator(_ct_time)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Drawdown(_Strict):
    """The maximum loss allowance and how its floor moves.

    ``amount`` may be left out only where the firm's number is not known (the profile then lists
    ``drawdown.amount`` under ``unknown``): such a profile is shown and can be extended, but it
    cannot be enforced or replayed until a user profile gives the amount.
    """

    amount: Annotated[Money, Field(gt=0)] | None = None
    model: DrawdownModel
    lock: Annotated[LockRule, _alias(_LOCK_ALIASES)] = LockRule.START
    #: CT time the end-of-day level is taken (``eod`` only); default: the session close.
    snapshot: CtTime | None = None


class DailyLoss(_Strict):
    """The daily loss limit (DLL) on net P&L for the trading day, open P&L included."""

    amount: Annotated[Money, Field(gt=0)] | None = None
    action: Annotated[DllAction, _alias(_DLL_ALIASES)] = DllAction.NONE

    @model_validator(mode="after")
    def _amount_matches_action(self) -> DailyLoss:
        if self.action is not DllAction.NONE and self.amount is None:
            raise ValueError(f"action {self.action.value!r} needs an amount")
        if self.action is DllAction.NONE and self.amount is not None:
            raise ValueError("an amount is given but action is 'none'; set action to flatten_block or fail")
        return self


class ScalingStep(_Strict):
    """From an end-of-day balance of start + ``from_profit`` on, at most ``max`` contracts."""

    from_profit: Money
    max: Annotated[int, Field(gt=0)]


class Contracts(_Strict):
    """Position limits, counted in full-size contracts."""

    max: Annotated[int, Field(gt=0)] | None = None
    #: 1 ("1:1"): a micro counts as a full contract; 10 ("10:1"): ten micros make one contract.
    micro_ratio: Annotated[int, BeforeValidator(_ratio_value)] = 1
    #: Per-root weights overriding the ratio (contracts counted per lot of that root).
    weights: dict[str, Annotated[Money, Field(gt=0)]] = Field(default_factory=dict)
    #: Ladder keyed on the end-of-day balance, applied from the next session.
    scaling: list[ScalingStep] = Field(default_factory=list)

    @field_validator("weights")
    @classmethod
    def _roots(cls, v: dict[str, Decimal]) -> dict[str, Decimal]:
        return {k.strip().upper(): w for k, w in v.items()}

    @model_validator(mode="after")
    def _ladder(self) -> Contracts:
        steps = self.scaling
        for a, b in itertools.pairwise(steps):
            if b.from_profit <= a.from_profit:
                raise ValueError(f"scaling steps must rise: from_profit {b.from_profit} follows {a.from_profit}")
        if steps and self.max is not None and any(s.max > self.max for s in steps):
            raise ValueError(f"a scaling step allows more than max = {self.max} contracts")
        return self

    @property
    def ceiling(self) -> int | None:
        """The most contracts any tier allows."""
        if self.max is not None:
            return self.max
        return max((s.max for s in self.scaling), default=None)

    def weight(self, instrument: Instrument) -> Decimal:
        """How many contracts one lot of ``instrument`` counts as."""
        w = self.weights.get(instrument.root.upper()) if instrument.root else None
        if w is not None:
            return w
        if self.micro_ratio == 10 and instrument.micro_ratio > 1:
            return Decimal(1) / Decimal(instrument.micro_ratio)
        return Decimal(1)


class SessionRules(_Strict):
    #: The firm's flat-by time in CT (clamped to early closes by the clock). None: no cutoff.
    flat_by: CtTime | None = None
    #: When the firm's own system liquidates, if earlier than ``flat_by`` (Topstep: 15:08 CT).
    auto_flatten: CtTime | None = None
    #: What a position still open at the cutoff costs: the firm liquidates it, or the account
    #: fails (Take Profit Trader, reference A.4).
    flat_by_action: CutoffAction = CutoffAction.LIQUIDATE

    @model_validator(mode="after")
    def _action_needs_time(self) -> SessionRules:
        if self.flat_by_action is CutoffAction.FAIL and self.cutoff is None:
            raise ValueError("flat_by_action 'fail' needs a flat_by time")
        return self

    @property
    def cutoff(self) -> time | None:
        """The firm's effective cutoff: the earlier of its flat-by and its own auto-flatten."""
        times = [t for t in (self.flat_by, self.auto_flatten) if t is not None]
        return min(times) if times else None


class Consistency(_Strict):
    """Best day as a share of profit; failing it never fails an account, it delays a gate."""

    percent: Annotated[Money, Field(gt=0, le=100)]
    base: ConsistencyBase = ConsistencyBase.TOTAL_PROFIT
    scope: ConsistencyScope = ConsistencyScope.EVALUATION


#: The release kinds a news rule covers when it names none (the shipped calendar has these).
DEFAULT_NEWS_EVENTS = ("CPI", "NFP", "FOMC")
_EVENT_KIND = re.compile(r"^[A-Z][A-Z0-9_-]{0,23}$")


class NewsRule(_Strict):
    """What the firm (or the trader) requires around scheduled high-impact releases."""

    rule: NewsAction = NewsAction.NONE
    before_minutes: Annotated[int, Field(ge=0, le=240)] = 0
    after_minutes: Annotated[int, Field(ge=0, le=240)] = 0
    #: Calendar kinds this rule covers (``CPI``, ``NFP``, ``FOMC``, or a kind the user adds).
    events: tuple[str, ...] = DEFAULT_NEWS_EVENTS

    @field_validator("events", mode="before")
    @classmethod
    def _kinds(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list | tuple) or not v:
            raise ValueError('list the release kinds, e.g. ["CPI", "NFP", "FOMC"]')
        out = []
        for kind in v:
            k = kind.strip().upper() if isinstance(kind, str) else kind
            if not isinstance(k, str) or not _EVENT_KIND.match(k):
                raise ValueError(f"{kind!r} is not a release kind (letters and digits, e.g. CPI)")
            out.append(k)
        return tuple(dict.fromkeys(out))

    @model_validator(mode="after")
    def _window(self) -> NewsRule:
        if self.rule is NewsAction.NONE and (self.before_minutes or self.after_minutes):
            raise ValueError("minutes are given but rule is 'none'; set rule to no_entries, flatten or warn")
        if self.rule is not NewsAction.NONE and not (self.before_minutes or self.after_minutes):
            raise ValueError(f"rule {self.rule.value!r} needs before_minutes or after_minutes above 0")
        return self

    @property
    def active(self) -> bool:
        return self.rule is not NewsAction.NONE


class Hedging(StrEnum):
    """Whether the firm lets one trader hold opposite positions in one product across accounts."""

    FORBIDDEN = "forbidden"
    ALLOWED = "allowed"


#: Every dotted key a profile may set: caveats and facts must name one of these (or a section).
PROFILE_KEYS = frozenset(
    {
        "account_size",
        "start_balance",
        "profit_target",
        "min_days",
        "hedging",
        "drawdown.amount",
        "drawdown.model",
        "drawdown.lock",
        "drawdown.snapshot",
        "daily_loss.amount",
        "daily_loss.action",
        "contracts.max",
        "contracts.micro_ratio",
        "contracts.weights",
        "contracts.scaling",
        "session.flat_by",
        "session.auto_flatten",
        "session.flat_by_action",
        "consistency.percent",
        "consistency.base",
        "consistency.scope",
        "news.rule",
        "news.before_minutes",
        "news.after_minutes",
        "news.events",
    }
)
PROFILE_SECTIONS = frozenset(k.split(".")[0] for k in PROFILE_KEYS)
_LEADING_KEY = re.compile(r"^\s*([a-z_]+(?:\.[a-z_]+)?)")


def _known_key(key: str) -> bool:
    return key in PROFILE_KEYS or key in PROFILE_SECTIONS


class Caveat(_Strict):
    """One ``uncertain`` or ``unknown`` item: the profile key it is about, and why.

    Written as a table ``{ key = "daily_loss.amount", text = "..." }`` or as plain text; plain
    text that starts with a profile key (``"drawdown.lock not given; ..."``) is about that key,
    other text about the profile as a whole (key ``""``).
    """

    key: str = ""
    text: str

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, v: Any) -> Any:
        if isinstance(v, str):
            m = _LEADING_KEY.match(v)
            key = m.group(1) if m and _known_key(m.group(1)) else ""
            return {"key": key, "text": v}
        return v

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        v = v.strip()
        if v and not _known_key(v):
            close = difflib.get_close_matches(v, sorted(PROFILE_KEYS | PROFILE_SECTIONS), n=2, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"{v!r} is not a profile key{hint}")
        return v

    @field_validator("text")
    @classmethod
    def _text(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v.strip()

    @property
    def section(self) -> str:
        return self.key.split(".")[0]

    def __str__(self) -> str:
        return self.text


class Profile(_Strict):
    """One firm's rules for one account type, as of ``source_date``."""

    id: str
    firm: str
    program: str
    phase: str
    platform: str = ""
    account_size: Annotated[Money, Field(gt=0)]
    #: The balance the account starts at (Topstep XFA starts at $0); default: account_size.
    start_balance: Money | None = None
    source_date: str
    profit_target: Annotated[Money, Field(gt=0)] | None = None
    min_days: Annotated[int, Field(ge=0)] | None = None
    drawdown: Drawdown
    daily_loss: DailyLoss = Field(default_factory=DailyLoss)
    contracts: Contracts = Field(default_factory=Contracts)
    session: SessionRules = Field(default_factory=SessionRules)
    consistency: Consistency | None = None
    news: NewsRule = Field(default_factory=NewsRule)
    #: ``forbidden``: pre-trade refuses an order that would leave this trader long in one account
    #: and short in another in the same product. None: the sources do not say.
    hedging: Hedging | None = None
    sources: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    #: Numbers the reference marks uncertain, each with its source.
    uncertain: list[Caveat] = Field(default_factory=list)
    #: Rules the firm has but tterm has no number for; the monitor warns about each at start.
    unknown: list[Caveat] = Field(default_factory=list)
    #: Where each number comes from: dotted key -> "source (date) [OFFICIAL|3P]".
    facts: dict[str, str] = Field(default_factory=dict)
    extends: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError(f"{v!r} is not a profile id: use a-z, 0-9 and '-', e.g. topstep-50k-combine")
        return v

    @field_validator("firm", "program", "phase")
    @classmethod
    def _text(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v.strip()

    @field_validator("source_date", mode="before")
    @classmethod
    def _source_date(cls, v: Any) -> Any:
        if isinstance(v, date):
            return v.isoformat()
        if not isinstance(v, str) or not _SOURCE_DATE.match(v.strip()):
            raise ValueError(f"expected the source's date as YYYY-MM-DD or YYYY-MM, got {v!r}")
        return v.strip()

    @model_validator(mode="after")
    def _cross(self) -> Profile:
        if self.drawdown.lock is LockRule.UNTIL_TARGET and self.profit_target is None:
            raise ValueError("drawdown.lock 'until_target' needs a profit_target")
        if self.drawdown.model is DrawdownModel.STATIC and self.drawdown.lock is not LockRule.START:
            # A static floor never trails, so a lock rule would be meaningless; insist on the default.
            raise ValueError("a static drawdown does not trail: leave drawdown.lock out")
        if self.drawdown.snapshot is not None and self.drawdown.model is not DrawdownModel.EOD:
            raise ValueError("drawdown.snapshot applies to the 'eod' model only")
        if self.consistency and self.consistency.base is ConsistencyBase.PROFIT_TARGET and not self.profit_target:
            raise ValueError("consistency.base 'profit_target' needs a profit_target")
        if self.drawdown.amount is None and not any(c.key in ("drawdown.amount", "drawdown") for c in self.unknown):
            raise ValueError(
                "drawdown.amount is missing; give it, or list it under unknown if the firm's number is not known"
            )
        if self.drawdown.amount is not None and self.drawdown.amount >= self.account_size:
            raise ValueError(
                f"drawdown.amount {self.drawdown.amount} is not below the account size {self.account_size}"
            )
        for key, text in self.facts.items():
            if not _known_key(key):
                close = difflib.get_close_matches(key, sorted(PROFILE_KEYS), n=2, cutoff=0.6)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise ValueError(f"facts: {key!r} is not a profile key{hint}")
            if not text.strip():
                raise ValueError(f"facts.{key}: give the source and its date")
            if self.value_of(key) is None:
                raise ValueError(f"facts: {key!r} has a source but no value in this profile")
        return self

    def value_of(self, key: str) -> Any:
        """The value of a dotted profile key (None where it is not set)."""
        obj: Any = self
        for part in key.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                return None
        if isinstance(obj, list | tuple | dict) and not obj:
            return None
        return obj

    # ------------------------------------------------------------------ derived

    @property
    def start(self) -> Decimal:
        return self.start_balance if self.start_balance is not None else self.account_size

    @property
    def title(self) -> str:
        plat = f" ({self.platform})" if self.platform else ""
        # "2026 EOD Trail evaluation", not "2026 EOD Trail evaluation evaluation"
        phase = "" if self.phase.lower() in self.program.lower() else f" {self.phase}"
        return f"{self.firm} {self.program}{phase} {_size(self.account_size)}{plat}"

    @property
    def trailing(self) -> bool:
        return self.drawdown.model is not DrawdownModel.STATIC

    @property
    def has_dll(self) -> bool:
        return self.daily_loss.action is not DllAction.NONE

    @property
    def enforceable(self) -> bool:
        """False while a number tterm needs to enforce the profile (the drawdown) is unknown."""
        return self.drawdown.amount is not None

    def require_enforceable(self) -> None:
        """Raise :class:`ProfileIncomplete` when the profile cannot be enforced as it stands."""
        if self.drawdown.amount is None:
            why = next((c.text for c in self.unknown if c.key in ("drawdown.amount", "drawdown")), "")
            raise ProfileIncomplete(
                f"rule profile {self.id} has no drawdown amount ({why or 'not in tterm sources'}); "
                f'make a user profile with extends = "{self.id}" and drawdown.amount = your number '
                f"(`tterm profiles {self.id}` shows the rest)"
            )


def _size(amount: Decimal) -> str:
    return f"{amount / 1000:f}K".replace(".0K", "K") if amount >= 1000 else f"${amount}"


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True, slots=True)
class ProfileSet:
    """Every available profile by id, with the file each came from."""

    profiles: Mapping[str, Profile]
    origins: Mapping[str, str]

    def get(self, profile_id: str) -> Profile:
        try:
            return self.profiles[profile_id]
        except KeyError:
            close = difflib.get_close_matches(profile_id, list(self.profiles), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UnknownProfile(
                f"no rule profile {profile_id!r}{hint} (`tterm profiles` lists them; add your own in the "
                f"profiles folder of the config dir)"
            ) from None

    def __contains__(self, profile_id: object) -> bool:
        return profile_id in self.profiles

    def __len__(self) -> int:
        return len(self.profiles)

    def ids(self) -> list[str]:
        return sorted(self.profiles)

    def origin(self, profile_id: str) -> str:
        return self.origins[profile_id]


def shipped_dir() -> Path:
    return Path(str(resources.files("tterm.risk").joinpath("profiles")))


def user_dir() -> Path:
    """``<config dir>/profiles``: the user's own profiles."""
    from tterm.config import config_dir

    return config_dir() / "profiles"


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _dotted(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _errors(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for err in exc.errors():
        msg = err["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            if msg.startswith(prefix):
                msg = msg[len(prefix) :]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see tterm/risk/profiles/*.toml for the fields)"
        elif err["type"] == "missing":
            msg = "missing: every profile needs this key"
        problems.append((_dotted(err["loc"]), msg))
    return problems


def _raw_profiles(path: Path, text: str) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, str, str]]]:
    """The raw profile tables of one file (defaults merged), each with its location label."""
    shown = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return [], [(shown, "", f"not valid TOML: {exc}")]
    problems: list[tuple[str, str, str]] = []
    unknown = sorted(set(data) - {"defaults", "profile"})
    for key in unknown:
        problems.append((shown, key, "unknown top-level key (a profile file holds [defaults] and [[profile]] tables)"))
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        problems.append((shown, "defaults", "must be a table"))
        defaults = {}
    if "id" in defaults:
        problems.append((shown, "defaults.id", "every profile needs its own id; remove it from [defaults]"))
    tables = data.get("profile", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        problems.append((shown, "profile", "write each profile as a [[profile]] table"))
        tables = []
    if not tables and not problems:
        problems.append((shown, "", "no [[profile]] table in this file"))
    out = []
    for i, table in enumerate(tables):
        label = f"profile[{i}]" + (f" ({table['id']})" if isinstance(table.get("id"), str) else "")
        out.append((label, _deep_merge(defaults, table)))
    return out, problems


def _validate(path: Path, label: str, raw: Mapping[str, Any], problems: list[tuple[str, str, str]]) -> Profile | None:
    try:
        return Profile.model_validate(raw)
    except ValidationError as exc:
        for key, reason in _errors(exc):
            problems.append((str(path), f"{label}.{key}" if key else label, reason))
        return None


def load_profiles(user: Path | bool | None = True, *, shipped: Path | None = None, strict: bool = True) -> ProfileSet:
    """Shipped profiles, then the user's (``user``: a folder, True for the default, False for none).

    A user profile replaces a shipped one with the same id. With ``strict`` any problem raises a
    :class:`ProfileError` listing them all; nothing is loaded half-way.
    """
    sources: list[tuple[Path, bool]] = [(p, False) for p in sorted((shipped or shipped_dir()).glob("*.toml"))]
    udir = user_dir() if user is True else (user or None)
    if isinstance(udir, Path) and udir.is_dir():
        sources += [(p, True) for p in sorted(udir.glob("*.toml"))]
    problems: list[tuple[str, str, str]] = []
    raws: dict[str, tuple[Path, str, dict[str, Any], bool]] = {}
    shadowed: dict[str, tuple[Path, str, dict[str, Any], bool]] = {}
    for path, is_user in sources:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            problems.append((str(path), "", f"cannot read: {exc.strerror or exc}"))
            continue
        tables, file_problems = _raw_profiles(path, text)
        problems.extend(file_problems)
        for label, raw in tables:
            pid = raw.get("id")
            if not isinstance(pid, str):
                problems.append((str(path), f"{label}.id", "missing: every profile needs an id"))
                continue
            prev = raws.get(pid)
            if prev is not None and prev[3] == is_user:
                where = "this file" if prev[0] == path else str(prev[0])
                problems.append((str(path), f"{label}.id", f"duplicate id {pid!r} (also in {where})"))
                continue
            if prev is not None:
                shadowed[pid] = prev  # a user profile replaces the shipped one of the same id
            raws[pid] = (path, label, raw, is_user)
    profiles: dict[str, Profile] = {}
    origins: dict[str, str] = {}
    for pid, (path, label, _raw, _) in raws.items():
        resolved = _resolve_extends(pid, raws, shadowed, problems)
        if resolved is None:
            continue
        profile = _validate(path, label, resolved, problems)
        if profile is not None:
            profiles[pid] = profile
            origins[pid] = str(path)
    if problems and strict:
        raise ProfileError(problems)
    return ProfileSet(profiles=profiles, origins=origins)


def _resolve_extends(
    pid: str,
    raws: Mapping[str, tuple[Path, str, dict[str, Any], bool]],
    shadowed: Mapping[str, tuple[Path, str, dict[str, Any], bool]],
    problems: list[tuple[str, str, str]],
) -> dict[str, Any] | None:
    """The profile's table with every ``extends`` parent merged beneath it.

    A user profile that extends its own id builds on the shipped profile it replaces.
    """
    seen: list[tuple[str, bool]] = []
    entry = raws[pid]
    layers: list[dict[str, Any]] = []
    while True:
        path, label, raw, is_user = entry
        key = (str(raw.get("id")), is_user)
        if key in seen:
            cycle = " -> ".join([k for k, _ in seen] + [key[0]])
            problems.append((str(raws[pid][0]), f"{raws[pid][1]}.extends", f"extends loops: {cycle}"))
            return None
        seen.append(key)
        layers.append(raw)
        parent = raw.get("extends")
        if parent is None:
            break
        if parent == key[0] and is_user and parent in shadowed:
            entry = shadowed[parent]
            continue
        if not isinstance(parent, str) or parent not in raws:
            close = difflib.get_close_matches(str(parent), list(raws), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            problems.append((str(path), f"{label}.extends", f"no profile {parent!r} to extend{hint}"))
            return None
        entry = raws[parent]
    merged: dict[str, Any] = {}
    for layer in reversed(layers):
        merged = _deep_merge(merged, layer)
    merged["id"] = pid
    merged.pop("extends", None)
    if len(layers) > 1:
        merged["extends"] = layers[0]["extends"]
    return merged


def parse_profile_text(text: str, *, origin: str = "<text>") -> list[Profile]:
    """Profiles from one TOML text (no ``extends`` across files); for tests and ``tterm replay``."""
    path = Path(origin)
    tables, problems = _raw_profiles(path, text)
    out = []
    for label, raw in tables:
        p = _validate(path, label, raw, problems)
        if p is not None:
            out.append(p)
    if problems:
        raise ProfileError(problems)
    return out

"""The ``[risk]`` section of config.toml: tterm's own margins around the firms' rules.

Example::

    [risk]
    buffer_pct = 10             # flatten when 10% of the allowance is left above the firm's floor
    cutoff_lead_minutes = 2     # flatten 2 minutes before the firm's flat-by time
    warn_pct = 40               # meter bands: share of the allowance used
    danger_pct = 70
    stale_after_seconds = 30    # refuse orders on market data older than this (0: off)
    no_stop_adverse_ticks = 40  # worst case for an order without a stop
    max_distance_pct = 5        # fat finger: a price further than this from the market
    max_size_futures = 50

    [risk.instruments.MES]      # per futures root (or equity symbol)
    no_stop_adverse_ticks = 60
    max_distance_ticks = 400
    max_size = 30

    [risk.accounts."tradovate:12345"]
    floor = 51250               # seed the firm's current floor (only ever raises tterm's)
    high_water_mark = 53750
    daily_loss = 600            # your daily loss limit ("yours" on the meters)
    daily_loss_mode = "trailing"  # or "fixed"; a trailing one follows the day's best P&L up
    profit_lock_at = 900        # once up $900 today, falling back to $500 flattens and locks
    profit_lock_keep = 500
    max_trades_per_day = 10     # entries and exits both count
    max_loss_per_trade = 250    # worst case of an entry, and the open loss of a position
    max_contracts = 3           # a personal contract cap, tighter than the tier
    no_hedging = true           # never long here and short elsewhere in one product
    news = { rule = "no_entries", before_minutes = 5, after_minutes = 5 }

Loosening any of these takes effect at the next session: a restart in the middle of a trading day
keeps the tighter values of that day (the discipline feature traders ask for).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tterm.core.models import AssetClass, Instrument
from tterm.risk.profiles import NewsRule

_ACCOUNT_ID = re.compile(r"^[a-z0-9-]+:\S+$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class InstrumentRiskSettings(_Section):
    """``[risk.instruments.<ROOT>]``: per-instrument overrides of the defaults."""

    no_stop_adverse_ticks: int | None = Field(None, gt=0)
    max_distance_ticks: int | None = Field(None, gt=0)
    max_size: int | None = Field(None, gt=0)


class AccountRiskSettings(_Section):
    """``[risk.accounts."<broker:id>"]``: seeds from the firm's dashboard and the trader's own limits.

    The personal limits ("yours" on the meters) apply to any account, with or without a firm
    profile, and are enforced like a firm rule: each is checked on every tick and before every
    order, and within a trading day they only ever tighten.
    """

    floor: Decimal | None = None
    high_water_mark: Decimal | None = None
    #: Your daily loss limit on the day's P&L net of fees, open P&L included.
    daily_loss: Decimal | None = Field(None, gt=0)
    #: ``fixed``: the line is -daily_loss all day; ``trailing``: it follows the day's best P&L up.
    daily_loss_mode: Literal["fixed", "trailing"] = "fixed"
    #: What a trailing daily loss follows: the best P&L with open profit, or realized only.
    daily_loss_trails: Literal["unrealized", "realized"] = "unrealized"
    #: At the line: flatten and lock for the session, flatten only, or warn only (TopstepX's
    #: "Liquidate & Block", "Liquidate", "Do nothing").
    daily_loss_action: Literal["liquidate_block", "liquidate", "nothing"] = "liquidate_block"
    #: Profit lock-in: once the day's P&L reaches ``profit_lock_at``, falling back to
    #: ``profit_lock_keep`` (default: the same amount, i.e. stop for the day at the target)
    #: flattens and locks the account for the session.
    profit_lock_at: Decimal | None = Field(None, gt=0)
    profit_lock_keep: Decimal | None = Field(None, ge=0)
    #: Trades per trading day; entries and exits both count (TopstepX's rule).
    max_trades_per_day: int | None = Field(None, gt=0, le=10000)
    #: The most one position may lose, net of fees: the worst case of an entry, and the open loss.
    max_loss_per_trade: Decimal | None = Field(None, gt=0)
    max_contracts: int | None = Field(None, gt=0)
    #: Refuse an order that would leave you long in one account and short in another in one product.
    no_hedging: bool = False
    #: Your own news rule, e.g. ``{ rule = "no_entries", before_minutes = 5, after_minutes = 5 }``.
    news: NewsRule | None = None

    @model_validator(mode="after")
    def _personal(self) -> AccountRiskSettings:
        if self.daily_loss is None and (
            self.daily_loss_mode != "fixed"
            or self.daily_loss_trails != "unrealized"
            or self.daily_loss_action != "liquidate_block"
        ):
            raise ValueError("daily_loss_mode, daily_loss_trails and daily_loss_action need a daily_loss amount")
        if self.profit_lock_keep is not None:
            if self.profit_lock_at is None:
                raise ValueError("profit_lock_keep needs profit_lock_at (the profit that arms the lock-in)")
            if self.profit_lock_keep > self.profit_lock_at:
                keep, at = self.profit_lock_keep, self.profit_lock_at
                raise ValueError(f"profit_lock_keep ({keep}) must not be above profit_lock_at ({at})")
        return self

    @property
    def has_personal(self) -> bool:
        """Whether any personal limit is set (the monitor tracks the account for it)."""
        return any(
            v is not None
            for v in (self.daily_loss, self.profit_lock_at, self.max_trades_per_day, self.max_loss_per_trade)
        ) or bool(self.no_hedging or (self.news is not None and self.news.active))


class RiskSettings(_Section):
    """``[risk]``: the margins tterm keeps inside every firm's rules, and the pre-trade limits."""

    enabled: bool = True
    buffer_pct: Annotated[Decimal, Field(ge=0, lt=100)] = Decimal(10)
    cutoff_lead_minutes: Annotated[Decimal, Field(ge=0, le=120)] = Decimal(2)
    warn_pct: Annotated[Decimal, Field(gt=0, le=100)] = Decimal(40)
    danger_pct: Annotated[Decimal, Field(gt=0, le=100)] = Decimal(70)
    stale_after_seconds: Annotated[float, Field(ge=0)] = 30.0
    no_stop_adverse_ticks: Annotated[int, Field(gt=0)] = 40
    max_distance_pct: Annotated[Decimal, Field(gt=0, le=100)] = Decimal(5)
    max_size_futures: Annotated[int, Field(gt=0)] = 50
    max_size_shares: Annotated[int, Field(gt=0)] = 10000
    max_size_options: Annotated[int, Field(gt=0)] = 100
    retry_flatten_seconds: Annotated[float, Field(gt=0)] = 5.0
    instruments: dict[str, InstrumentRiskSettings] = Field(default_factory=dict)
    accounts: dict[str, AccountRiskSettings] = Field(default_factory=dict)

    @field_validator("instruments")
    @classmethod
    def _upper(cls, v: dict[str, InstrumentRiskSettings]) -> dict[str, InstrumentRiskSettings]:
        return {k.strip().upper(): s for k, s in v.items()}

    @field_validator("accounts")
    @classmethod
    def _account_ids(cls, v: dict[str, AccountRiskSettings]) -> dict[str, AccountRiskSettings]:
        for key in v:
            if not _ACCOUNT_ID.match(key):
                raise ValueError(f"{key!r} is not an account id: write broker:account, e.g. paper:FUT50K")
        return v

    @model_validator(mode="after")
    def _bands(self) -> RiskSettings:
        if self.warn_pct > self.danger_pct:
            raise ValueError(f"warn_pct ({self.warn_pct}) must not be above danger_pct ({self.danger_pct})")
        return self

    # ------------------------------------------------------------------ per-instrument lookups

    def _for(self, inst: Instrument) -> InstrumentRiskSettings | None:
        key = inst.root or inst.underlying or inst.symbol
        return self.instruments.get(key.upper()) or self.instruments.get(inst.symbol.upper())

    def adverse_ticks(self, inst: Instrument) -> int:
        """The move assumed against an order that carries no stop."""
        o = self._for(inst)
        return o.no_stop_adverse_ticks if o and o.no_stop_adverse_ticks else self.no_stop_adverse_ticks

    def max_size(self, inst: Instrument) -> int:
        o = self._for(inst)
        if o and o.max_size:
            return o.max_size
        return {
            AssetClass.FUTURE: self.max_size_futures,
            AssetClass.EQUITY: self.max_size_shares,
            AssetClass.OPTION: self.max_size_options,
        }[inst.asset_class]

    def max_distance(self, inst: Instrument, market: Decimal) -> Decimal:
        """The furthest a price may be from ``market`` before it counts as a fat finger."""
        o = self._for(inst)
        if o and o.max_distance_ticks:
            return o.max_distance_ticks * inst.tick_size
        return abs(market) * self.max_distance_pct / 100

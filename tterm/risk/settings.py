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
    daily_loss = 600            # a personal daily loss limit, tighter than the firm's
    max_contracts = 3           # a personal contract cap, tighter than the tier

Loosening any of these takes effect at the next session: a restart in the middle of a trading day
keeps the tighter values of that day (the discipline feature traders ask for).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tterm.core.models import AssetClass, Instrument

_ACCOUNT_ID = re.compile(r"^[a-z0-9-]+:\S+$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class InstrumentRiskSettings(_Section):
    """``[risk.instruments.<ROOT>]``: per-instrument overrides of the defaults."""

    no_stop_adverse_ticks: int | None = Field(None, gt=0)
    max_distance_ticks: int | None = Field(None, gt=0)
    max_size: int | None = Field(None, gt=0)


class AccountRiskSettings(_Section):
    """``[risk.accounts."<broker:id>"]``: seeds from the firm's dashboard and personal limits."""

    floor: Decimal | None = None
    high_water_mark: Decimal | None = None
    daily_loss: Decimal | None = Field(None, gt=0)
    max_contracts: int | None = Field(None, gt=0)


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

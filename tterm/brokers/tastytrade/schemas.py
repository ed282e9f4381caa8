"""Tastytrade's JSON as pydantic models: dasherized keys as aliases, decimals from strings (B3, B5).

Only the fields tterm reads are declared; the rest are ignored, so a new vendor field never breaks
a parse. Money comes as an unsigned decimal string with a sibling ``*-effect`` (Debit, Credit,
None): :func:`signed` turns the pair into one signed Decimal (Debit negative, as TT-SDK does).
Timestamps come as ISO strings, and ``updated-at`` as integer milliseconds in the docs' example
but a string in the swagger (B5): both are accepted. A record that does not validate raises
``pydantic.ValidationError``; the callers turn that into a logged skip or a typed error.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_snake


def _dasherize(name: str) -> str:
    return to_snake(name).replace("_", "-")


class Wire(BaseModel):
    """A vendor object: dasherized aliases, unknown fields ignored, immutable once read."""

    model_config = ConfigDict(alias_generator=_dasherize, populate_by_name=True, extra="ignore", frozen=True)


def signed(value: Decimal | None, effect: str | None) -> Decimal | None:
    """An unsigned vendor amount and its effect as one signed number (Debit is negative)."""
    if value is None:
        return None
    return -abs(value) if effect == "Debit" else abs(value)


def when(value: Any) -> datetime | None:
    """A vendor timestamp (ISO text, or epoch milliseconds) as an aware datetime; 0 and junk: None."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if value <= 0 or value > 1e14:
            return None
        return datetime.fromtimestamp(value / 1000, UTC)
    text = str(value).strip()
    if text.isdigit():
        return when(int(text))
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- accounts


class AccountRecord(Wire):
    account_number: str
    nickname: str = ""
    account_type_name: str = ""
    margin_or_cash: str = ""
    is_closed: bool = False
    is_futures_approved: bool = False
    suitable_options_level: str = ""


class AccountLink(Wire):
    account: AccountRecord
    authority_level: str = ""


class Balance(Wire):
    account_number: str
    cash_balance: Decimal = Decimal(0)
    net_liquidating_value: Decimal = Decimal(0)
    equity_buying_power: Decimal | None = None
    derivative_buying_power: Decimal | None = None
    day_trading_buying_power: Decimal | None = None
    maintenance_requirement: Decimal | None = None
    pending_cash: Decimal | None = None
    pending_cash_effect: str | None = None
    updated_at: Any = None


class CurrentPosition(Wire):
    account_number: str
    symbol: str
    instrument_type: str
    underlying_symbol: str = ""
    streamer_symbol: str = ""
    quantity: Decimal
    quantity_direction: str = "Long"
    average_open_price: Decimal = Decimal(0)
    close_price: Decimal | None = None
    mark: Decimal | None = None
    mark_price: Decimal | None = None
    multiplier: Decimal = Decimal(1)
    realized_day_gain: Decimal | None = None
    realized_day_gain_effect: str | None = None
    updated_at: Any = None

    @property
    def signed_quantity(self) -> Decimal:
        if self.quantity_direction == "Short":
            return -abs(self.quantity)
        if self.quantity_direction == "Zero":
            return Decimal(0)
        return abs(self.quantity)


# --------------------------------------------------------------------------- orders


class LegFill(Wire):
    fill_id: str
    quantity: Decimal
    fill_price: Decimal
    filled_at: Any = None

    @field_validator("fill_id", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


class OrderLegRecord(Wire):
    instrument_type: str
    symbol: str
    quantity: Decimal
    remaining_quantity: Decimal | None = None
    action: str
    fills: list[LegFill] = Field(default_factory=list)

    @field_validator("fills", mode="before")
    @classmethod
    def _no_null(cls, value: Any) -> Any:
        return [] if value is None else value


class OrderRecord(Wire):
    id: int | None = None
    account_number: str = ""
    time_in_force: str = "Day"
    gtc_date: str | None = None
    order_type: str
    size: Decimal | None = None
    underlying_symbol: str = ""
    price: Decimal | None = None
    price_effect: str | None = None
    stop_trigger: Decimal | None = None
    status: str
    cancellable: bool = False
    editable: bool = False
    reject_reason: str | None = None
    external_identifier: str | None = None
    complex_order_id: int | None = None
    replaces_order_id: int | None = None
    replacing_order_id: int | None = None
    received_at: Any = None
    updated_at: Any = None
    terminal_at: Any = None
    legs: list[OrderLegRecord]

    @field_validator("legs")
    @classmethod
    def _some_legs(cls, value: list[OrderLegRecord]) -> list[OrderLegRecord]:
        if not value:
            raise ValueError("an order has at least one leg")
        return value


class ComplexOrderRecord(Wire):
    id: int | None = None
    account_number: str = ""
    type: str
    orders: list[OrderRecord] = Field(default_factory=list)
    trigger_order: OrderRecord | None = None


class Message(Wire):
    code: str = ""
    message: str = ""

    @field_validator("code", "message", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return "" if value is None else str(value)


class BuyingPowerEffect(Wire):
    change_in_buying_power: Decimal | None = None
    change_in_buying_power_effect: str | None = None
    new_buying_power: Decimal | None = None
    new_buying_power_effect: str | None = None
    isolated_order_margin_requirement: Decimal | None = None
    isolated_order_margin_requirement_effect: str | None = None


class FeeCalculation(Wire):
    total_fees: Decimal | None = None
    total_fees_effect: str | None = None


class PlacedOrder(Wire):
    """The 201 of a place or a dry run (B5): the order (or complex order) and its effects."""

    order: OrderRecord | None = None
    complex_order: ComplexOrderRecord | None = None
    warnings: list[Message] = Field(default_factory=list)
    errors: list[Message] = Field(default_factory=list)
    buying_power_effect: BuyingPowerEffect | None = None
    fee_calculation: FeeCalculation | None = None

    @field_validator("warnings", "errors", mode="before")
    @classmethod
    def _no_null(cls, value: Any) -> Any:
        return [] if value is None else value


class Transaction(Wire):
    id: int
    symbol: str = ""
    order_id: int | None = None
    quantity: Decimal | None = None
    commission: Decimal | None = None
    commission_effect: str | None = None
    clearing_fees: Decimal | None = None
    clearing_fees_effect: str | None = None
    regulatory_fees: Decimal | None = None
    regulatory_fees_effect: str | None = None
    proprietary_index_option_fees: Decimal | None = None
    proprietary_index_option_fees_effect: str | None = None

    @property
    def fees(self) -> Decimal:
        """What this execution was charged, as a positive amount."""
        total = Decimal(0)
        for value, effect in (
            (self.commission, self.commission_effect),
            (self.clearing_fees, self.clearing_fees_effect),
            (self.regulatory_fees, self.regulatory_fees_effect),
            (self.proprietary_index_option_fees, self.proprietary_index_option_fees_effect),
        ):
            amount = signed(value, effect)
            if amount is not None:
                total -= amount  # a Debit (a charge) is negative: it adds to the fee
        return total


# --------------------------------------------------------------------------- instruments


class TickSize(Wire):
    value: Decimal
    threshold: Decimal | None = None


class EquityRecord(Wire):
    symbol: str
    description: str = ""
    streamer_symbol: str = ""
    listed_market: str = ""
    tick_sizes: list[TickSize] = Field(default_factory=list)


class EquityOptionRecord(Wire):
    symbol: str
    underlying_symbol: str
    root_symbol: str = ""
    strike_price: Decimal
    option_type: str
    expiration_date: date
    shares_per_contract: int = 100
    streamer_symbol: str = ""


class FutureRecord(Wire):
    symbol: str
    product_code: str = ""
    streamer_symbol: str = ""
    tick_size: Decimal | None = None
    notional_multiplier: Decimal | None = None
    expiration_date: date | None = None
    description: str = ""


class FutureOptionRecord(Wire):
    symbol: str
    underlying_symbol: str
    product_code: str = ""
    strike_price: Decimal
    option_type: str
    expiration_date: date
    streamer_symbol: str = ""


class ChainStrike(Wire):
    strike_price: Decimal
    call: str | None = None
    call_streamer_symbol: str | None = None
    put: str | None = None
    put_streamer_symbol: str | None = None


class ChainExpiration(Wire):
    expiration_date: date
    expiration_type: str = ""
    settlement_type: str = ""
    underlying_symbol: str = ""  # futures chains: the future this expiry's options are on
    tick_sizes: list[TickSize] = Field(default_factory=list)
    strikes: list[ChainStrike] = Field(default_factory=list)


class NestedChain(Wire):
    underlying_symbol: str
    root_symbol: str = ""
    shares_per_contract: int = 100
    tick_sizes: list[TickSize] = Field(default_factory=list)
    expirations: list[ChainExpiration] = Field(default_factory=list)


class FuturesOptionChain(Wire):
    underlying_symbol: str = ""
    expirations: list[ChainExpiration] = Field(default_factory=list)


class NestedFuturesChain(Wire):
    """``/futures-option-chains/{product}/nested``: the product's option chains (B4)."""

    option_chains: list[FuturesOptionChain] = Field(default_factory=list)


class SearchRow(Wire):
    symbol: str
    description: str = ""
    instrument_type: str = ""


class QuoteToken(Wire):
    token: str
    dxlink_url: str
    level: str = ""
    expires_at: Any = None

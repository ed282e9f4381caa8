"""Core domain models: instruments, market data, orders, fills, positions and accounts.

Money and prices are ``Decimal``; quantities are whole contracts or shares (``int``). Hot-path
events (Quote) are slotted dataclasses; everything is immutable so an event can be fanned out to
many subscribers without copying. Vendor field names never appear here: each broker's
``broker.py`` maps its JSON onto these types.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any, Literal

ZERO = Decimal(0)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (the engine never handles naive datetimes)."""
    return datetime.now(UTC)


class ModelError(ValueError):
    """A value that breaks a model invariant (off-tick price, zero quantity...)."""


# --------------------------------------------------------------------------- enums


class AssetClass(StrEnum):
    EQUITY = "equity"
    OPTION = "option"
    FUTURE = "future"


class OptionRight(StrEnum):
    CALL = "call"
    PUT = "put"


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell: signed quantity = sign * quantity."""
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"
    #: A stop that follows the market by ``OrderRequest.trail_amount`` (a price distance).
    TRAILING_STOP = "trailing_stop"

    @property
    def needs_limit(self) -> bool:
        return self in (OrderType.LIMIT, OrderType.STOP_LIMIT)

    @property
    def needs_stop(self) -> bool:
        return self in (OrderType.STOP, OrderType.STOP_LIMIT)

    @property
    def needs_trail(self) -> bool:
        return self is OrderType.TRAILING_STOP


class PositionEffect(StrEnum):
    """Whether a leg opens or closes a position (options brokers want it per leg); AUTO lets the
    broker (or the paper broker, from the position held) decide."""

    OPEN = "open"
    CLOSE = "close"
    AUTO = "auto"


class PriceEffect(StrEnum):
    """Whether a multi-leg order's net price is paid (debit) or received (credit)."""

    DEBIT = "debit"
    CREDIT = "credit"


class GroupKind(StrEnum):
    """Orders sent as one group: OCO (one cancels the other) or OTOCO (one triggers an OCO pair)."""

    OCO = "oco"
    OTOCO = "otoco"


class Timeframe(StrEnum):
    """Bar lengths every market-data verb and chart speaks."""

    S1 = "1s"
    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    H1 = "1h"
    D1 = "1d"

    @property
    def seconds(self) -> int:
        return _TIMEFRAME_SECONDS[self]

    @classmethod
    def parse(cls, text: str) -> Timeframe:
        """``1m``, ``5M``, ``1h``... -> Timeframe; a ModelError names the accepted ones."""
        t = text.strip().lower()
        t = {"1min": "1m", "5min": "5m", "15min": "15m", "60m": "1h", "1d": "1d", "d": "1d", "day": "1d"}.get(t, t)
        try:
            return cls(t)
        except ValueError:
            raise ModelError(f"unknown timeframe {text!r} (one of {', '.join(tf.value for tf in cls)})") from None


_TIMEFRAME_SECONDS = {
    Timeframe.S1: 1,
    Timeframe.M1: 60,
    Timeframe.M5: 300,
    Timeframe.M15: 900,
    Timeframe.H1: 3600,
    Timeframe.D1: 86400,
}


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class OrderStatus(StrEnum):
    """The order lifecycle. PENDING: sent, not yet acknowledged by the broker."""

    PENDING = "pending"
    WORKING = "working"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_open(self) -> bool:
        """Working at the broker: can still fill, be modified or be cancelled."""
        return not self.is_terminal


_TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED})


class OrderRole(StrEnum):
    """Where an order sits in a bracket: the entry, or one of its two OCO children."""

    ENTRY = "entry"
    TAKE_PROFIT = "take_profit"
    STOP_LOSS = "stop_loss"


class OrderSource(StrEnum):
    """Which part of tterm asked for an order; every source passes the same pre-trade checks."""

    TICKET = "ticket"
    PALETTE = "palette"
    COMMAND_BAR = "command_bar"
    HOTKEY = "hotkey"
    DOM = "dom"
    WEBHOOK = "webhook"
    RISK = "risk"
    API = "api"
    CLI = "cli"


class ConnectionState(StrEnum):
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    STALE = "stale"
    DOWN = "down"
    #: The broker needs a person to log in again (``tterm login <broker>``): nothing is retried.
    NEEDS_LOGIN = "needs_login"


class AccountKind(StrEnum):
    CASH = "cash"
    MARGIN = "margin"
    FUTURES = "futures"


# --------------------------------------------------------------------------- instruments


NoticeLevel = Literal["info", "warning", "error"]
TickRounding = Literal["nearest", "down", "up", "reject"]


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradable contract: what one tick is worth, and how to put a price on the tick grid.

    ``tick_value`` is the currency value of one tick for one contract (or share); the point value
    (multiplier) follows as ``tick_value / tick_size``. ``root`` groups futures contracts of one
    product (ES for ESZ6) and ``micro_ratio`` says how many of this contract make one mini-sized
    contract (10 for MES, 1 for ES), which prop-firm contract limits count by.
    """

    symbol: str
    asset_class: AssetClass
    tick_size: Decimal
    tick_value: Decimal
    currency: str = "USD"
    description: str = ""
    exchange: str = ""
    root: str = ""
    expiry: date | None = None
    micro_ratio: int = 1
    fee_per_side: Decimal = ZERO
    underlying: str = ""
    strike: Decimal | None = None
    right: OptionRight | None = None
    #: Price-dependent ticks, ``((from_price, tick), ...)`` ascending by price: options quote in
    #: $0.01 below $3 and $0.05 above in the penny program, futures options have a cabinet tick.
    #: Empty: ``tick_size`` everywhere. ``tick_size`` is always the smallest tick.
    tick_table: tuple[tuple[Decimal, Decimal], ...] = ()
    #: The broker's own id for this instrument when it is not the symbol (a ProjectX contract id).
    vendor_id: str = ""

    def __post_init__(self) -> None:
        if self.tick_size <= 0:
            raise ModelError(f"{self.symbol}: tick size must be positive, got {self.tick_size}")
        for start, tick in self.tick_table:
            if tick <= 0 or start < 0:
                raise ModelError(f"{self.symbol}: bad tick table entry ({start}, {tick})")
        if self.tick_value <= 0:
            raise ModelError(f"{self.symbol}: tick value must be positive, got {self.tick_value}")
        if self.micro_ratio < 1:
            raise ModelError(f"{self.symbol}: micro ratio must be >= 1, got {self.micro_ratio}")

    @property
    def point_value(self) -> Decimal:
        """Currency value of a one-point move for one contract: the multiplier."""
        return self.tick_value / self.tick_size

    @property
    def is_micro(self) -> bool:
        return self.micro_ratio > 1

    def tick_at(self, price: Decimal) -> Decimal:
        """The tick that applies at ``price`` (by its size: a net credit of -3.10 ticks like 3.10)."""
        if not self.tick_table:
            return self.tick_size
        p = abs(price)
        tick = self.tick_table[0][1]
        for start, t in self.tick_table:
            if p >= start:
                tick = t
            else:
                break
        return tick

    def is_on_tick(self, price: Decimal) -> bool:
        return (price / self.tick_at(price)) % 1 == 0

    def round_price(self, price: Decimal, mode: TickRounding = "nearest") -> Decimal:
        """Put ``price`` on the tick grid; ``reject`` raises ModelError for an off-tick price."""
        price = Decimal(price)
        if not price.is_finite():
            raise ModelError(f"{self.symbol}: price {price} is not a finite number")
        tick = self.tick_at(price)
        ticks = price / tick
        if ticks % 1 == 0:
            return self._on_grid(ticks, tick)
        if mode == "reject":
            raise ModelError(
                f"{self.symbol}: price {price} is off the tick grid (tick size {tick}; "
                f"nearest valid prices {self.round_price(price, 'down')} and {self.round_price(price, 'up')})"
            )
        rounding = {"nearest": ROUND_HALF_EVEN, "down": ROUND_FLOOR, "up": ROUND_CEILING}[mode]
        rounded = self._on_grid(ticks.to_integral_value(rounding=rounding), tick)
        if self.tick_table and self.tick_at(rounded) != tick:
            # Rounding crossed a tick-table boundary (2.999 -> 3.00): the boundary price itself is valid.
            return rounded.quantize(self.tick_size)
        return rounded

    def _on_grid(self, ticks: Decimal, tick: Decimal | None = None) -> Decimal:
        """``ticks`` whole ticks as a price written with the smallest tick's decimals (6780.00)."""
        tick = tick or self.tick_size
        return (int(ticks) * tick).quantize(self.tick_size)

    def ticks_between(self, a: Decimal, b: Decimal) -> Decimal:
        """Signed number of ticks from ``a`` to ``b``."""
        return (b - a) / self.tick_size

    def money(self, price_move: Decimal, quantity: int) -> Decimal:
        """Currency value of a price move over ``quantity`` contracts."""
        return price_move * self.point_value * quantity


# --------------------------------------------------------------------------- market data


@dataclass(frozen=True, slots=True)
class Quote:
    """Top of book plus last trade for one symbol. Quotes may be coalesced (latest wins)."""

    symbol: str
    bid: Decimal | None = None
    ask: Decimal | None = None
    last: Decimal | None = None
    bid_size: int = 0
    ask_size: int = 0
    volume: int = 0
    prev_close: Decimal | None = None
    ts: datetime = field(default_factory=utcnow)

    @property
    def mid(self) -> Decimal | None:
        if self.bid is not None and self.ask is not None:
            return (self.bid + self.ask) / 2
        return self.last

    @property
    def mark(self) -> Decimal | None:
        """The price open positions are valued at: last trade, else mid."""
        return self.last if self.last is not None else self.mid

    @property
    def change(self) -> Decimal | None:
        if self.last is None or self.prev_close is None:
            return None
        return self.last - self.prev_close

    @property
    def change_pct(self) -> Decimal | None:
        chg = self.change
        if chg is None or not self.prev_close:
            return None
        return chg / self.prev_close * 100


@dataclass(frozen=True, slots=True)
class DepthLevel:
    """One price level of the book: resting size (and order count when the vendor gives it)."""

    price: Decimal
    size: int
    orders: int = 0


@dataclass(frozen=True, slots=True)
class Depth:
    """Market depth for one symbol: ``bids`` best (highest) first, ``asks`` best (lowest) first.

    Always a full picture of the levels the source shows (adapters merge vendor deltas), so a
    subscriber may keep only the latest one: depth is coalesced per symbol like quotes.
    """

    symbol: str
    bids: tuple[DepthLevel, ...] = ()
    asks: tuple[DepthLevel, ...] = ()
    ts: datetime = field(default_factory=utcnow)

    @property
    def best_bid(self) -> DepthLevel | None:
        return self.bids[0] if self.bids else None

    @property
    def best_ask(self) -> DepthLevel | None:
        return self.asks[0] if self.asks else None


@dataclass(frozen=True, slots=True)
class Trade:
    """One print on the tape (time and sales). ``aggressor`` is the side that took liquidity
    (BUY: lifted the offer), None when the vendor does not say. Never coalesced."""

    symbol: str
    price: Decimal
    size: int
    aggressor: Side | None = None
    ts: datetime = field(default_factory=utcnow)
    trade_id: str = ""


@dataclass(frozen=True, slots=True)
class Bar:
    """An OHLCV bar starting at ``start`` and lasting ``seconds``."""

    symbol: str
    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int = 0
    seconds: int = 60


@dataclass(frozen=True, slots=True)
class Greeks:
    """Option sensitivities per one unit of the underlying (not per contract).

    ``theta`` is per calendar day and ``vega`` per one volatility point (1%), as brokers quote
    them. ``source`` says whether the broker sent them or tterm computed them (Black-Scholes from
    the mid and the implied volatility); the chain screen labels computed ones.
    """

    delta: float | None = None
    gamma: float | None = None
    theta: float | None = None
    vega: float | None = None
    rho: float | None = None
    source: Literal["broker", "computed"] = "broker"


@dataclass(frozen=True, slots=True)
class OptionQuote:
    """One option of a chain: its instrument, market and Greeks. ``iv`` is a fraction (0.25 = 25%)."""

    instrument: Instrument
    bid: Decimal | None = None
    ask: Decimal | None = None
    last: Decimal | None = None
    bid_size: int = 0
    ask_size: int = 0
    volume: int = 0
    open_interest: int = 0
    iv: float | None = None
    greeks: Greeks | None = None
    ts: datetime = field(default_factory=utcnow)

    @property
    def symbol(self) -> str:
        return self.instrument.symbol

    @property
    def mid(self) -> Decimal | None:
        if self.bid is not None and self.ask is not None:
            return (self.bid + self.ask) / 2
        return self.last


@dataclass(frozen=True, slots=True)
class ChainRow:
    """One strike of a chain: the call and the put (either may be missing)."""

    strike: Decimal
    call: OptionQuote | None = None
    put: OptionQuote | None = None


@dataclass(frozen=True, slots=True)
class OptionChain:
    """An option chain for one underlying and one expiry, strikes ascending.

    ``expiries`` lists every expiry the broker offers, so a screen can step through them;
    ``expiry`` is the one whose strikes ``rows`` holds.
    """

    underlying: str
    expiry: date
    expiries: tuple[date, ...]
    rows: tuple[ChainRow, ...]
    underlying_price: Decimal | None = None
    broker: str = ""
    ts: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class InstrumentAdded:
    """A broker taught the engine an instrument outside the master lists (a contract it looked
    up, an option of a chain); published so attached terminals resolve it too."""

    instrument: Instrument
    broker: str = ""
    ts: datetime = field(default_factory=utcnow)


# --------------------------------------------------------------------------- orders


def new_client_order_id() -> str:
    """A fresh client order id; generated once per order and reused by every retry."""
    return "tt" + uuid.uuid4().hex[:22]


@dataclass(frozen=True, slots=True)
class Bracket:
    """Take-profit and stop-loss children attached to an entry; they cancel each other (OCO).

    Each side is given either as a distance in ticks from the entry fill, or as an absolute price.
    """

    take_profit_ticks: int | None = None
    stop_loss_ticks: int | None = None
    take_profit_price: Decimal | None = None
    stop_loss_price: Decimal | None = None

    def __post_init__(self) -> None:
        if self.take_profit_ticks is not None and self.take_profit_price is not None:
            raise ModelError("bracket: give the take-profit in ticks or as a price, not both")
        if self.stop_loss_ticks is not None and self.stop_loss_price is not None:
            raise ModelError("bracket: give the stop-loss in ticks or as a price, not both")
        for name in ("take_profit_ticks", "stop_loss_ticks"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise ModelError(f"bracket: {name.replace('_', ' ')} must be a positive number of ticks")
        if self.is_empty:
            raise ModelError("bracket: needs a take-profit, a stop-loss, or both")

    @property
    def is_empty(self) -> bool:
        return all(
            v is None
            for v in (
                self.take_profit_ticks,
                self.stop_loss_ticks,
                self.take_profit_price,
                self.stop_loss_price,
            )
        )

    def resolve(self, entry_price: Decimal, side: Side, inst: Instrument) -> tuple[Decimal | None, Decimal | None]:
        """Absolute (take_profit, stop_loss) prices for an entry at ``entry_price`` on ``side``."""
        tp = self.take_profit_price
        sl = self.stop_loss_price
        if self.take_profit_ticks is not None:
            tp = entry_price + side.sign * self.take_profit_ticks * inst.tick_size
        if self.stop_loss_ticks is not None:
            sl = entry_price - side.sign * self.stop_loss_ticks * inst.tick_size
        return (
            inst.round_price(tp) if tp is not None else None,
            inst.round_price(sl) if sl is not None else None,
        )


@dataclass(frozen=True, slots=True)
class OrderLeg:
    """One leg of a multi-leg (option spread) order; ``ratio`` scales the order quantity.

    ``account`` is empty (the order's account) or must equal it: a leg cannot trade elsewhere.
    """

    symbol: str
    side: Side
    ratio: int = 1
    effect: PositionEffect = PositionEffect.AUTO
    account: str = ""


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What a user, a webhook or the risk engine asks a broker to do.

    ``account`` is the engine-wide account id (``broker:vendor_id``). For a multi-leg order
    ``legs`` holds the legs, ``symbol`` names the strategy, and prices are net per unit.
    ``reduce_only`` marks an order that may only shrink a position (flatten, exits); such orders
    pass a locked account's pre-trade checks. A multi-leg limit's ``limit_price`` is the net
    price per unit, always positive, with ``price_effect`` saying whether it is paid or received;
    ``side`` is then BUY for a debit and SELL for a credit. ``trail_amount`` is a trailing stop's
    distance from the market, in price units.
    """

    account: str
    symbol: str
    side: Side
    quantity: int
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    tif: TimeInForce = TimeInForce.DAY
    bracket: Bracket | None = None
    legs: tuple[OrderLeg, ...] = ()
    client_order_id: str = field(default_factory=new_client_order_id)
    source: OrderSource = OrderSource.API
    reduce_only: bool = False
    strategy: str = ""
    created_at: datetime = field(default_factory=utcnow)
    price_effect: PriceEffect | None = None
    trail_amount: Decimal | None = None

    @property
    def is_multi_leg(self) -> bool:
        return bool(self.legs)

    def with_changes(self, **changes: Any) -> OrderRequest:
        return replace(self, **changes)

    @property
    def signed_quantity(self) -> int:
        return self.side.sign * self.quantity

    def describe(self, price: Callable[[Decimal | None], str] = str) -> str:
        """The order in plain words, as the palette and confirm modal show it (``price`` formats
        each price: the terminal passes the instrument's format)."""
        words = [self.side.value.upper(), str(self.quantity), self.symbol]
        if self.order_type is OrderType.MARKET:
            words.append("at market")
        elif self.order_type is OrderType.LIMIT:
            words.append(f"limit {price(self.limit_price)}")
        elif self.order_type is OrderType.STOP:
            words.append(f"stop {price(self.stop_price)}")
        elif self.order_type is OrderType.TRAILING_STOP:
            words.append(f"trailing stop {price(self.trail_amount)} behind the market")
        else:
            words.append(f"stop {price(self.stop_price)} limit {price(self.limit_price)}")
        if self.price_effect is not None:
            words.append(f"net {self.price_effect.value}")
        if self.tif is not TimeInForce.DAY:
            words.append(self.tif.value.upper())
        if self.bracket is not None:
            b = self.bracket
            if b.take_profit_ticks is not None:
                words.append(f"take-profit {b.take_profit_ticks} ticks")
            elif b.take_profit_price is not None:
                words.append(f"take-profit {price(b.take_profit_price)}")
            if b.stop_loss_ticks is not None:
                words.append(f"stop-loss {b.stop_loss_ticks} ticks")
            elif b.stop_loss_price is not None:
                words.append(f"stop-loss {price(b.stop_loss_price)}")
        if self.legs:
            legs = ", ".join(
                f"{leg.side.value} {leg.ratio}x {leg.symbol}"
                + ("" if leg.effect is PositionEffect.AUTO else f" to {leg.effect.value}")
                for leg in self.legs
            )
            words.append(f"[{legs}]")
        words.append(f"in {self.account}")
        return " ".join(words)


@dataclass(frozen=True, slots=True)
class OrderGroup:
    """Orders sent as one request. OCO: two orders, the first to fill cancels the other. OTOCO:
    ``orders[0]`` triggers, and once it fills ``orders[1:]`` (two exits) work as an OCO pair.

    Every order of a group is in one account; each keeps its own client order id.
    """

    kind: GroupKind
    orders: tuple[OrderRequest, ...]
    group_id: str = field(default_factory=lambda: "tg" + uuid.uuid4().hex[:22])

    @property
    def account(self) -> str:
        return self.orders[0].account if self.orders else ""

    def describe(self) -> str:
        parts = [o.describe() for o in self.orders]
        if self.kind is GroupKind.OCO:
            return "OCO: " + " | ".join(parts)
        return f"{parts[0]}; then OCO: " + " | ".join(parts[1:]) if parts else "OTOCO: (empty)"


@dataclass(frozen=True, slots=True)
class Order:
    """An order as the broker holds it. Each change of state is a new Order event."""

    order_id: str
    client_order_id: str
    account: str
    symbol: str
    side: Side
    quantity: int
    order_type: OrderType
    status: OrderStatus
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    tif: TimeInForce = TimeInForce.DAY
    filled_quantity: int = 0
    avg_fill_price: Decimal | None = None
    role: OrderRole = OrderRole.ENTRY
    parent_id: str | None = None
    oco_group: str | None = None
    reject_reason: str = ""
    legs: tuple[OrderLeg, ...] = ()
    source: OrderSource = OrderSource.API
    broker: str = ""
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    price_effect: PriceEffect | None = None
    trail_amount: Decimal | None = None
    #: True when tterm, not the broker, keeps this order's OCO/bracket link (the broker lacks it).
    emulated: bool = False

    @classmethod
    def from_request(
        cls,
        request: OrderRequest,
        *,
        order_id: str,
        status: OrderStatus,
        broker: str = "",
        symbol: str | None = None,
        reject_reason: str = "",
        ts: datetime | None = None,
    ) -> Order:
        """The order a request became: the broker's new order, or a reject that never left."""
        ts = ts or utcnow()
        return cls(
            order_id=order_id,
            client_order_id=request.client_order_id,
            account=request.account,
            symbol=symbol or request.symbol,
            side=request.side,
            quantity=request.quantity,
            order_type=request.order_type,
            status=status,
            limit_price=request.limit_price,
            stop_price=request.stop_price,
            tif=request.tif,
            reject_reason=reject_reason,
            legs=request.legs,
            source=request.source,
            broker=broker,
            created_at=ts,
            updated_at=ts,
            price_effect=request.price_effect,
            trail_amount=request.trail_amount,
        )

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled_quantity

    @property
    def is_open(self) -> bool:
        return self.status.is_open

    def evolve(self, **changes: Any) -> Order:
        """A copy with ``changes`` and a fresh ``updated_at``."""
        changes.setdefault("updated_at", utcnow())
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class OrderPreview:
    """A broker's own check of an order before it is sent (Schwab's previewOrder): whether it would
    be accepted and what it would cost. Nothing is placed by a preview."""

    broker: str
    accepted: bool
    rejects: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    order_value: Decimal | None = None
    commission: Decimal | None = None
    buying_power_after: Decimal | None = None

    def describe(self) -> str:
        words = [f"{self.broker} would {'accept' if self.accepted else 'reject'} the order"]
        if self.rejects:
            words.append("rejects: " + "; ".join(self.rejects))
        if self.warnings:
            words.append("warnings: " + "; ".join(self.warnings))
        for label, value in (("order value", self.order_value), ("commission", self.commission),
                             ("buying power after", self.buying_power_after)):  # fmt: skip
            if value is not None:
                words.append(f"{label} {value}")
        return "; ".join(words)


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution. ``fee`` is the total charged for this fill (commission plus exchange fees)."""

    fill_id: str
    order_id: str
    client_order_id: str
    account: str
    symbol: str
    side: Side
    quantity: int
    price: Decimal
    fee: Decimal = ZERO
    broker: str = ""
    ts: datetime = field(default_factory=utcnow)

    @property
    def signed_quantity(self) -> int:
        return self.side.sign * self.quantity


# --------------------------------------------------------------------------- positions and accounts


@dataclass(frozen=True, slots=True)
class Position:
    """A net position in one instrument in one account, with P&L net of fees.

    ``realized_pnl`` is closed P&L minus every fee charged in this instrument today;
    ``unrealized_pnl`` is open P&L at ``mark``.
    """

    account: str
    symbol: str
    quantity: int
    avg_price: Decimal = ZERO
    mark: Decimal | None = None
    realized_pnl: Decimal = ZERO
    unrealized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    ts: datetime = field(default_factory=utcnow)

    @property
    def is_flat(self) -> bool:
        return self.quantity == 0

    @property
    def total_pnl(self) -> Decimal:
        return self.realized_pnl + self.unrealized_pnl


@dataclass(frozen=True, slots=True)
class Account:
    """A trading account. ``id`` is engine-wide (``broker:vendor_id``); ``name`` is for display.

    ``previews`` is set by the engine from the broker's capabilities: the broker dry-runs orders
    (``EngineClient.broker_preview``), so a client knows whether to ask without knowing brokers.
    """

    id: str
    broker: str
    vendor_id: str
    name: str
    kind: AccountKind = AccountKind.FUTURES
    currency: str = "USD"
    is_live: bool = False
    profile: str = ""
    previews: bool = False


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """Balances of one account at a moment. ``balance`` is realized cash; equity adds open P&L."""

    account: str
    balance: Decimal
    equity: Decimal
    day_realized_pnl: Decimal = ZERO
    open_pnl: Decimal = ZERO
    fees_today: Decimal = ZERO
    buying_power: Decimal | None = None
    start_of_day_balance: Decimal | None = None
    ts: datetime = field(default_factory=utcnow)

    @property
    def day_pnl(self) -> Decimal:
        return self.day_realized_pnl + self.open_pnl


@dataclass(frozen=True, slots=True)
class ConnectionStatus:
    """A broker connection's health; ``last_message_at`` lets the UI show the message age.

    ``auth_expires_at`` is when the login dies unless renewed by a person (a Schwab refresh
    token, 7 days after the browser login) or, for logins tterm renews itself, when the current
    token expires; ``auth_label`` names it ("refresh token", "session"). ``blocked_until`` is a
    vendor lockout's end (a Tradovate 429): nothing is sent before it.
    """

    broker: str
    state: ConnectionState
    detail: str = ""
    last_message_at: datetime | None = None
    ts: datetime = field(default_factory=utcnow)
    auth_expires_at: datetime | None = None
    auth_label: str = ""
    #: True when the expiry needs a person (``tterm login``); False when tterm renews it itself.
    auth_needs_person: bool = False
    blocked_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """A message for the user (an alert, a warning, an engine error): journaled and shown."""

    level: NoticeLevel
    text: str
    account: str = ""
    source: str = ""
    ts: datetime = field(default_factory=utcnow)


# --------------------------------------------------------------------------- risk vocabulary


class RiskAction(StrEnum):
    """What a pre-trade check decided."""

    ALLOW = "allow"
    WARN = "warn"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """The outcome of the pre-trade checks for one order request; journaled every time.

    ``reasons`` are plain words a trader can act on ("worst case -$640 crosses the daily loss
    limit by $140"); ``check`` names the rule that decided (``floor``, ``dll``, ``tier``, ...).
    """

    client_order_id: str
    account: str
    action: RiskAction
    reasons: tuple[str, ...] = ()
    check: str = ""
    worst_case: Decimal | None = None
    ts: datetime = field(default_factory=utcnow)

    @property
    def allowed(self) -> bool:
        return self.action is not RiskAction.REJECT

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


@dataclass(frozen=True, slots=True)
class AccountLock:
    """An account locked for the rest of a trading session: only reduce-only orders pass."""

    account: str
    locked: bool
    reason: str = ""
    until: datetime | None = None
    by: str = ""
    ts: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class RiskStatus:
    """The live distance to every limit of one account, as the risk meters show it.

    Dollar fields are None where the account's profile has no such limit. ``band`` is
    ``ok`` / ``warn`` / ``danger`` / ``breached`` for the nearest limit.
    """

    account: str
    profile: str
    balance: Decimal
    equity: Decimal
    day_pnl: Decimal
    floor: Decimal | None = None
    floor_distance: Decimal | None = None
    drawdown_allowance: Decimal | None = None
    daily_loss_limit: Decimal | None = None
    dll_distance: Decimal | None = None
    high_water_mark: Decimal | None = None
    contracts_used: Decimal = ZERO
    contracts_max: int | None = None
    cutoff: datetime | None = None
    locked: bool = False
    lock_reason: str = ""
    band: Literal["ok", "warn", "danger", "breached"] = "ok"
    detail: str = ""
    ts: datetime = field(default_factory=utcnow)
    #: The distances in ticks of ``ticks_symbol`` (the account's largest position, for its size;
    #: when flat, one lot of the last symbol traded).
    floor_ticks: Decimal | None = None
    dll_ticks: Decimal | None = None
    ticks_symbol: str = ""
    #: Share of each allowance already used, 0-100.
    floor_used_pct: Decimal | None = None
    dll_used_pct: Decimal | None = None
    #: tterm's own flatten points ahead of the firm's: an equity level and an instant (cutoff - lead).
    flatten_level: Decimal | None = None
    flatten_at: datetime | None = None
    #: Your own limits, "yours" on the meters (None where you set none). The daily loss acts when
    #: the day's P&L net of fees reaches ``yours_dll_line``; ``yours_dll_mode`` is ``fixed``,
    #: ``trailing unrealized`` or ``trailing realized``.
    yours_daily_loss: Decimal | None = None
    yours_dll_line: Decimal | None = None
    yours_dll_distance: Decimal | None = None
    yours_dll_mode: str = ""
    #: The profit lock-in: the day P&L that arms it, and the line it keeps once armed (else None).
    yours_profit_lock_at: Decimal | None = None
    yours_profit_lock: Decimal | None = None
    trades_today: int = 0
    trades_max: int | None = None
    yours_max_loss_trade: Decimal | None = None
    #: The next news window a rule covers (the one in force, else the next): the release, the
    #: window, the rule (``no_entries``, ``flatten``, ``warn``) and whose rule (a firm or ``yours``).
    news_kind: str = ""
    news_at: datetime | None = None
    news_start: datetime | None = None
    news_end: datetime | None = None
    news_rule: str = ""
    news_who: str = ""
    news_uncertain: bool = False


# --------------------------------------------------------------------------- webhook hub


class SignalStatus(StrEnum):
    """Where one webhook alert stands, as a whole or in one account."""

    ACCEPTED = "accepted"
    DONE = "done"
    SKIPPED = "skipped"
    REJECTED = "rejected"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SignalOutcome:
    """What one webhook alert did: for the alert as a whole (``account`` empty) or in one account.

    Published on the engine bus by the hub and journaled as kind ``signal``, so the hub screen
    can show the last alerts, what they did, and what was refused and why. ``error`` is the typed
    webhook error (``risk-rejected``, ``stale``...) when the alert or this account refused it;
    ``summary`` says in plain words what was done or why not.
    """

    signal_id: str
    strategy: str
    status: SignalStatus
    summary: str
    account: str = ""
    symbol: str = ""
    error: str = ""
    client_order_ids: tuple[str, ...] = ()
    ts: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class PositionDrift:
    """A target-position strategy's expected position against the actual one in one account.

    Published when they start to disagree (after a grace period for pending fills) and again,
    with ``expected == actual``, when they agree again.
    """

    strategy: str
    account: str
    symbol: str
    expected: int
    actual: int
    ts: datetime = field(default_factory=utcnow)

    @property
    def drifted(self) -> bool:
        return self.expected != self.actual


#: Every event a broker emits onto its stream.
BrokerEvent = (
    Quote | Depth | Trade | Order | Fill | Position | AccountSnapshot | ConnectionStatus | Notice | InstrumentAdded
)

#: Every event the engine publishes on its bus (broker events plus the engine's own).
EngineEvent = BrokerEvent | RiskDecision | AccountLock | RiskStatus | SignalOutcome | PositionDrift

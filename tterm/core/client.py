"""The engine seam: the ONLY way the TUI talks to the engine.

Two implementations exist: the in-process engine (``tterm.core.engine.Engine``, used by plain
``tterm``) and the remote hub client (``tterm attach``), which speaks the same commands over a
WebSocket. Because the TUI sees nothing else, the same screens run embedded or attached, and a
dropped SSH session never takes the risk engine with it.

The contract:

- ``snapshot()`` returns the whole current state; ``events()`` then delivers every change. A
  client that (re)connects takes a snapshot first, then follows the stream.
- Commands never raise for a refused order: ``place`` returns an Order whose status is
  REJECTED with the reason (pre-trade, validation or broker). They raise ``EngineError`` only
  when the command itself is malformed or the engine cannot be reached.
- Price alerts (``add_alert``, ``list_alerts``, ``remove_alert``) live in the engine, so they
  fire in ``tterm hub`` with no terminal attached; an ``AlertFired`` event announces each one.
- Market-data verbs (bars, depth, trades, option chains, search) go to a broker that has them;
  where none has, they raise ``EngineError("not supported by <broker>: <verb>")`` and change
  nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tterm.core.alerts.model import Alert, AlertSpec
from tterm.core.models import (
    Account,
    AccountLock,
    AccountSnapshot,
    Bar,
    ConnectionStatus,
    Fill,
    Instrument,
    OptionChain,
    Order,
    OrderGroup,
    OrderPreview,
    OrderRequest,
    Position,
    Quote,
    RiskDecision,
    RiskStatus,
    SignalOutcome,
    Timeframe,
    utcnow,
)

if TYPE_CHECKING:
    from tterm.core.broker import LoginPrompt, LoginResult
    from tterm.core.pnl import PnlReport


class EngineError(Exception):
    """A command the engine cannot carry out (unknown account or order, engine unreachable)."""


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    """Everything a freshly attached client needs to draw the screen."""

    accounts: tuple[Account, ...] = ()
    balances: tuple[AccountSnapshot, ...] = ()
    positions: tuple[Position, ...] = ()
    orders: tuple[Order, ...] = ()
    fills: tuple[Fill, ...] = ()
    quotes: tuple[Quote, ...] = ()
    connections: tuple[ConnectionStatus, ...] = ()
    locks: tuple[AccountLock, ...] = ()
    risk: tuple[RiskStatus, ...] = ()
    #: The latest webhook alert outcomes (filled in by the hub; empty when no hub runs).
    signals: tuple[SignalOutcome, ...] = ()
    is_live: bool = False
    ts: datetime = field(default_factory=utcnow)
    #: Instruments brokers taught the engine (outside the master lists), so a client resolves them.
    instruments: tuple[Instrument, ...] = ()
    #: The price alerts: armed ones, then fired ones (newest first).
    alerts: tuple[Alert, ...] = ()


@runtime_checkable
class EventStream(Protocol):
    """A subscriber's view of the engine events (``tterm.core.bus.Subscription`` satisfies it).

    Quotes are coalesced (latest per symbol); order, fill and position events are complete.
    """

    closed: bool

    def drain(self, limit: int | None = None) -> list[Any]:
        """Everything pending now, without waiting (the TUI drains once per frame)."""
        ...

    async def wait(self) -> None:
        """Wait until something is pending or the stream closes."""
        ...

    async def get(self) -> Any:
        """The next event; raises EOFError once closed and drained."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class EngineClient(Protocol):
    """The commands and the event stream the TUI may use. Nothing else crosses the seam."""

    async def snapshot(self) -> EngineSnapshot:
        """The complete current state."""
        ...

    def events(self) -> EventStream:
        """A new event stream starting now (take a snapshot right after subscribing)."""
        ...

    def instrument(self, symbol: str) -> Instrument:
        """Resolve any accepted symbol form (``MES``, ``MES1!``, ``MESZ6``, ``AAPL``).

        Raises ``tterm.core.instruments.UnknownSymbol`` with a specific message.
        """
        ...

    async def preview(self, request: OrderRequest) -> RiskDecision:
        """Run validation and the pre-trade checks without sending (ticket and palette preview)."""
        ...

    async def broker_preview(self, request: OrderRequest) -> OrderPreview:
        """The broker's own dry run of an order the pre-trade checks allow (accounts whose
        ``previews`` is True): cost, fees, buying power after, its warnings and rejects. Places
        nothing. EngineError when tterm refuses the order, the broker has no previews, or the
        broker could not be asked."""
        ...

    async def place(self, request: OrderRequest) -> Order:
        """Validate, check, route and send. A refusal comes back as a REJECTED order."""
        ...

    async def cancel(self, account: str, order_id: str) -> Order:
        """Cancel one working order."""
        ...

    async def cancel_all(self, account: str | None = None, symbol: str | None = None) -> list[Order]:
        """Cancel every working order in one account (None: every account), optionally one symbol."""
        ...

    async def modify(
        self,
        account: str,
        order_id: str,
        *,
        quantity: int | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> Order:
        """Change a working order's quantity or prices (checked like a new order)."""
        ...

    async def flatten(self, account: str | None = None, symbol: str | None = None) -> list[Order]:
        """Cancel working orders and close positions. ``account`` None is the kill switch:
        every account on every broker."""
        ...

    async def subscribe(self, symbols: Iterable[str]) -> list[str]:
        """Stream quotes for ``symbols``; returns the contract symbols they resolved to."""
        ...

    async def unsubscribe(self, symbols: Iterable[str]) -> None:
        """Stop streaming quotes for ``symbols``."""
        ...

    async def lock(self, account: str | None, reason: str) -> list[AccountLock]:
        """Lock one account (None: all) for the rest of the session; only exits pass."""
        ...

    # -- grouped orders

    async def preview_group(self, group: OrderGroup) -> RiskDecision:
        """Validation and pre-trade checks for every order of an OCO/OTOCO group, as one verdict."""
        ...

    async def place_group(self, group: OrderGroup) -> list[Order]:
        """Send an OCO or OTOCO group (natively, or emulated by the engine where the broker lacks it)."""
        ...

    # -- market data (capability-gated)

    async def find_instrument(self, symbol: str) -> Instrument:
        """Like ``instrument``, but asks the brokers when the master does not know the symbol."""
        ...

    async def bars(self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime | None = None) -> list[Bar]:
        """Price history for a chart, oldest first."""
        ...

    async def subscribe_depth(self, symbols: Iterable[str]) -> list[str]:
        """Stream Depth events for ``symbols`` (coalesced per symbol); returns the contracts."""
        ...

    async def unsubscribe_depth(self, symbols: Iterable[str]) -> None: ...

    async def subscribe_trades(self, symbols: Iterable[str]) -> list[str]:
        """Stream Trade prints for ``symbols`` (every one); returns the contracts."""
        ...

    async def unsubscribe_trades(self, symbols: Iterable[str]) -> None: ...

    async def option_chain(self, underlying: str, expiry: date | None = None) -> OptionChain:
        """One expiry's strikes with quotes and Greeks (computed ones are labelled)."""
        ...

    async def search_instruments(self, text: str, limit: int = 20) -> list[Instrument]:
        """Instruments matching ``text`` from the master lists and every broker that searches."""
        ...

    # -- price alerts (held by the engine: they fire with no terminal attached)

    async def add_alert(self, spec: AlertSpec, replaces: int | None = None) -> Alert:
        """Create a price alert; EngineError (nothing created) for an unknown symbol, a price that
        is not positive or off the tick grid, or a webhook/command name that is not configured.
        ``replaces`` removes that alert once the new one exists (an edit)."""
        ...

    async def list_alerts(self) -> list[Alert]:
        """Every alert: armed ones by number, then fired ones, newest first."""
        ...

    async def remove_alert(self, alert_id: int) -> Alert:
        """Remove an alert (armed or fired); EngineError if there is no alert with that number."""
        ...

    # -- P&L history (from the engine's journal)

    async def pnl_history(self, days: int = 30, account: str | None = None) -> PnlReport:
        """Per-day results, FIFO round trips and the equity curve of the last ``days`` trade dates
        (one account, or all); EngineError for a bad ``days`` or an unknown account."""
        ...

    # -- interactive login

    async def login_start(self, broker: str) -> LoginPrompt:
        """Begin a broker's browser login: the URL to open. EngineError if it needs no person."""
        ...

    async def login_complete(self, broker: str, prompt: LoginPrompt, pasted_url: str) -> LoginResult:
        """Finish it with the URL the browser was sent to; a bad URL changes nothing."""
        ...

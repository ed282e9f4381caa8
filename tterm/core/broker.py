"""The Broker contract (a port of the core): what every broker adapter (paper, Tradovate,
ProjectX, Schwab, Tastytrade) implements, so the engine can treat them alike.

An adapter owns its network tasks (REST, streams, token refresh, rate limits, reconnects) and
reports everything that happens on ONE async stream of core events (:meth:`Broker.events`):
quotes, depth, trades, order updates, fills, positions, account snapshots, connection state and
instruments it learned. Commands (place, modify, cancel, flatten) return the order as the broker
acknowledged it; a vendor reject comes back as an Order with status REJECTED and a plain-words
``reject_reason``, never as an exception. Exceptions mean the broker could not be asked at all
(network, auth, rate limit): the router, the one owner of retry, decides what happens next, so an
adapter never resends an order itself.

Market-data verbs (bars, depth, trades, option chains, instrument search) and grouped orders are
optional: the defaults raise :class:`NotSupported` ("not supported by <broker>: <verb>") and
:class:`Capabilities` tells the engine and the router, before asking, what a broker has.

The core defines this contract and adapters (``tterm.brokers.*``) implement it; nothing in
``tterm.core`` imports an adapter. Vendor JSON stops inside each adapter's ``mapping.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Protocol

from tterm.core.models import (
    Account,
    AccountSnapshot,
    Bar,
    BrokerEvent,
    ConnectionState,
    ConnectionStatus,
    Fill,
    GroupKind,
    Instrument,
    InstrumentAdded,
    OptionChain,
    Order,
    OrderGroup,
    OrderPreview,
    OrderRequest,
    OrderSource,
    OrderType,
    Position,
    Side,
    Timeframe,
    utcnow,
)


class _End(Enum):
    """The end-of-stream marker on a broker's event queue (a type of its own, so the queue is typed)."""

    END = "end"


_END = _End.END


class BrokerError(Exception):
    """The broker could not be reached or refused the request outright (not an order reject).

    ``sent`` tells the router what it may do next: False means the request certainly never left
    (a local rate limiter, no connection), so it may be sent again; None (the default) means it
    may have arrived, so the order is looked up before anything else happens.
    """

    def __init__(self, message: str = "", *, sent: bool | None = None) -> None:
        super().__init__(message)
        self.sent = sent


class AuthError(BrokerError):
    """Credentials were refused or a token could not be renewed. Never carries the secret."""


class LoginRequired(AuthError):
    """The login is gone and needs a person: ``tterm login <broker>`` (the message says so)."""


class RateLimited(BrokerError):
    """The vendor asked us to slow down; ``retry_after`` is in seconds when known.

    A mutating request that met a rate limit is never sent again blind: the router looks the
    order up first (ProjectX and Tradovate count every request during a lockout).
    """

    def __init__(self, message: str, retry_after: float | None = None, *, sent: bool | None = None) -> None:
        super().__init__(message, sent=sent)
        self.retry_after = retry_after


class UnknownOrder(BrokerError):
    """An order id the broker does not know (already gone, or never existed)."""


class NotSupported(BrokerError):
    """A verb this broker does not have: ``not supported by <broker>: <verb>``. Changes nothing."""

    def __init__(self, broker: str, verb: str, why: str = "") -> None:
        super().__init__(f"not supported by {broker}: {verb}" + (f" ({why})" if why else ""), sent=False)
        self.broker = broker
        self.verb = verb


class LoginError(AuthError):
    """An interactive login step that failed (a pasted URL with the wrong state, no code...).

    The message says what was wrong; the tokens held before the attempt stay in force.
    """


#: Every order type; a broker's ``Capabilities.order_types`` names the ones it takes.
ALL_ORDER_TYPES = frozenset(OrderType)
ALL_TIMEFRAMES = frozenset(Timeframe)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a broker supports natively, read by the router and the engine before they ask.

    - ``brackets``/``oco``/``otoco``: native grouped orders; where False the engine emulates the
      group (it sends the orders and cancels the other side itself) or refuses with the reason.
    - ``client_order_id_lookup``: the broker finds an order by tterm's client order id. Where
      False (Schwab), ``find_order`` matches on account, symbol, side, quantity, price and time,
      and the router never resends on a miss: a miss is not proof the order is absent.
    - market data: which optional verbs answer, and the bar timeframes ``bars`` takes.
    - ``interactive_login``: a person must log in through a browser (``tterm login``).
    - ``previews``: the broker dry-runs an order without placing it (``preview_order``: Schwab's
      previewOrder, Tastytrade's /orders/dry-run); the ticket and the confirmation show it.
    """

    brackets: bool = True
    oco: bool = True
    otoco: bool = False
    multi_leg: bool = False
    futures: bool = True
    equities: bool = False
    options: bool = False
    client_order_id_lookup: bool = True
    order_types: frozenset[OrderType] = frozenset(
        {OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT}
    )
    bars: bool = False
    timeframes: frozenset[Timeframe] = frozenset()
    depth: bool = False
    trades: bool = False
    option_chain: bool = False
    search: bool = False
    interactive_login: bool = False
    previews: bool = False

    def with_changes(self, **changes: Any) -> Capabilities:
        return replace(self, **changes)

    def describe(self) -> str:
        """What the broker has natively, in a line (``tterm doctor``): the rest is emulated or refused."""
        classes = [
            c for c, has in (("futures", self.futures), ("equities", self.equities), ("options", self.options)) if has
        ]
        types = [t.value.replace("_", "-") for t in OrderType if t in self.order_types]
        groups = [g for g, has in (("brackets", self.brackets), ("OCO", self.oco), ("OTOCO", self.otoco)) if has]
        if self.multi_leg:
            groups.append("multi-leg")
        data = []
        if self.bars:
            data.append("bars " + "/".join(tf.value for tf in Timeframe if tf in self.timeframes))
        data += [
            d
            for d, has in (
                ("depth", self.depth),
                ("time and sales", self.trades),
                ("option chains", self.option_chain),
                ("search", self.search),
            )
            if has
        ]
        words = [
            " ".join(classes) or "no asset class",
            "orders " + " ".join(types),
            ("native " + " ".join(groups)) if groups else "no native brackets or groups (tterm links them)",
            ("data: " + ", ".join(data)) if data else "no market-data verbs beyond quotes",
        ]
        if not self.client_order_id_lookup:
            words.append("no lookup by tterm's order id (never re-sent)")
        if self.previews:
            words.append("order dry runs")
        if self.interactive_login:
            words.append("browser login")
        return "; ".join(words)


@dataclass(frozen=True, slots=True)
class LoginPrompt:
    """The first step of an interactive login: open ``url`` in a browser, log in, then paste the
    address the browser was sent to (its page may fail to load; that is expected)."""

    broker: str
    url: str
    state: str
    redirect_uri: str
    instructions: str = ""
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class LoginResult:
    """A completed interactive login: when the new login dies unless renewed by a person."""

    broker: str
    expires_at: datetime | None
    detail: str = ""


class LoginFlow(Protocol):
    """An adapter's interactive login (OAuth authorization code, pasted redirect URL).

    ``complete`` checks the pasted URL against the prompt (same redirect, same state, a code
    present) and raises :class:`LoginError` naming what is wrong; the old tokens then stay.
    """

    def start(self) -> LoginPrompt: ...

    async def complete(self, prompt: LoginPrompt, pasted_url: str) -> LoginResult: ...


class InstrumentProvider(Protocol):
    """A broker's instruments: async lookup of one symbol, and search by text."""

    async def lookup(self, symbol: str) -> Instrument | None: ...

    async def search(self, text: str, limit: int = 20) -> list[Instrument]: ...


class Broker(ABC):
    """One connection to one broker (a login), holding one or more accounts.

    ``name`` is the instance name from the config (``paper``, ``tradovate-demo``); accounts it
    reports carry engine-wide ids ``f"{name}:{vendor_account_id}"``.
    """

    capabilities: Capabilities = Capabilities()

    def __init__(self, name: str, *, is_live: bool = False) -> None:
        self.name = name
        self.is_live = is_live
        self._events: asyncio.Queue[BrokerEvent | _End] = asyncio.Queue()
        self._state = ConnectionState.DOWN
        self._last_message_at: datetime | None = None
        self._auth_expires_at: datetime | None = None
        self._auth_label = ""
        self._auth_needs_person = False
        self._blocked_until: datetime | None = None

    # ------------------------------------------------------------------ lifecycle

    @abstractmethod
    async def connect(self) -> None:
        """Log in, load accounts, open streams. Raises AuthError or BrokerError on failure."""

    @abstractmethod
    async def close(self) -> None:
        """Close streams and sessions; the event stream ends after this."""

    # ------------------------------------------------------------------ state queries

    @abstractmethod
    async def accounts(self) -> list[Account]:
        """Every account this login can trade."""

    @abstractmethod
    async def snapshots(self) -> list[AccountSnapshot]:
        """Current balances of every account."""

    @abstractmethod
    async def positions(self, account: str | None = None) -> list[Position]:
        """Open positions as the broker reports them (``account`` None: all accounts)."""

    @abstractmethod
    async def orders(self, account: str | None = None) -> list[Order]:
        """Today's orders, working and finished."""

    @abstractmethod
    async def fills(self, account: str | None = None) -> list[Fill]:
        """Today's fills."""

    @abstractmethod
    async def find_order(self, account: str, client_order_id: str) -> Order | None:
        """The order placed with ``client_order_id``, if the broker has it.

        The router asks this before any retry, so a lost acknowledgement never becomes a
        second order.
        """

    # ------------------------------------------------------------------ market data

    @abstractmethod
    async def subscribe_quotes(self, symbols: Iterable[str]) -> None:
        """Start streaming quotes for ``symbols`` (contract symbols, e.g. ``MESZ6``)."""

    @abstractmethod
    async def unsubscribe_quotes(self, symbols: Iterable[str]) -> None:
        """Stop streaming quotes for ``symbols``."""

    # ------------------------------------------------------------------ optional market data

    def not_supported(self, verb: str, why: str = "") -> NotSupported:
        return NotSupported(self.name, verb, why)

    async def bars(self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime | None = None) -> list[Bar]:
        """Price history, oldest first, bars starting in ``[start, end)`` (``end`` None: now)."""
        raise self.not_supported("bars")

    async def subscribe_depth(self, symbols: Iterable[str]) -> None:
        """Stream :class:`~tterm.core.models.Depth` for ``symbols``."""
        raise self.not_supported("depth")

    async def unsubscribe_depth(self, symbols: Iterable[str]) -> None:
        raise self.not_supported("depth")

    async def subscribe_trades(self, symbols: Iterable[str]) -> None:
        """Stream :class:`~tterm.core.models.Trade` prints (time and sales) for ``symbols``."""
        raise self.not_supported("trades")

    async def unsubscribe_trades(self, symbols: Iterable[str]) -> None:
        raise self.not_supported("trades")

    async def option_chain(self, underlying: str, expiry: date | None = None) -> OptionChain:
        """Strikes of one expiry (None: the nearest) with quotes and Greeks where the broker has them."""
        raise self.not_supported("option chains")

    async def search_instruments(self, text: str, limit: int = 20) -> list[Instrument]:
        """Instruments whose symbol or description matches ``text``."""
        raise self.not_supported("instrument search")

    async def lookup_instrument(self, symbol: str) -> Instrument | None:
        """The broker's instrument for ``symbol`` when the master does not know it (None: unknown)."""
        return None

    def learned(self, instrument: Instrument) -> None:
        """Tell the engine about an instrument this adapter learned (published to every client)."""
        self.emit(InstrumentAdded(instrument=instrument, broker=self.name))

    # ------------------------------------------------------------------ interactive login

    def login_flow(self) -> LoginFlow | None:
        """The browser login, for brokers that need a person; None when the adapter logs in alone."""
        return None

    # ------------------------------------------------------------------ orders

    async def place_group(self, group: OrderGroup) -> list[Order]:
        """Send an OCO or OTOCO group natively (only called when ``capabilities`` says so)."""
        verb = "OCO orders" if group.kind is GroupKind.OCO else "OTOCO orders"
        raise self.not_supported(verb)

    def preflight(self, request: OrderRequest) -> str:
        """Why :meth:`place` would refuse ``request`` outright, "" when it would take it.

        The checks a broker makes locally before an order goes anywhere (account kind, cash,
        a market to fill against), so the router's preview says what the send will say.
        Synchronous, no I/O. The default has none: the vendor decides when the order arrives.
        """
        return ""

    async def preview_order(self, request: OrderRequest) -> OrderPreview:
        """The broker's own check of ``request`` (cost, buying power, its rejects); sends no order."""
        raise self.not_supported("order previews")

    @abstractmethod
    async def place(self, request: OrderRequest) -> Order:
        """Send a new order (with its bracket, if any). Returns the acknowledged or rejected order."""

    @abstractmethod
    async def modify(
        self,
        account: str,
        order_id: str,
        *,
        quantity: int | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> Order:
        """Change a working order's quantity or prices."""

    @abstractmethod
    async def cancel(self, account: str, order_id: str) -> Order:
        """Cancel a working order."""

    async def flatten(self, account: str, symbol: str | None = None) -> list[Order]:
        """Cancel working orders and close positions in ``account`` (one symbol, or all).

        The default cancels each open order, then sends a reduce-only market order against each
        position. Adapters with a vendor "liquidate" call override this.
        """
        results: list[Order] = []
        for order in await self.orders(account):
            if order.is_open and (symbol is None or order.symbol == symbol):
                with contextlib.suppress(UnknownOrder):
                    results.append(await self.cancel(account, order.order_id))
        for pos in await self.positions(account):
            if pos.quantity == 0 or (symbol is not None and pos.symbol != symbol):
                continue
            side = Side.SELL if pos.quantity > 0 else Side.BUY
            request = OrderRequest(
                account=account,
                symbol=pos.symbol,
                side=side,
                quantity=abs(pos.quantity),
                order_type=OrderType.MARKET,
                reduce_only=True,
                source=OrderSource.RISK,
            )
            results.append(await self.place(request))
        return results

    # ------------------------------------------------------------------ the event stream

    async def events(self) -> AsyncIterator[BrokerEvent]:
        """Every event this broker produces, in order, until :meth:`close` (one consumer: the engine)."""
        while True:
            event = await self._events.get()
            if isinstance(event, _End):
                return
            yield event

    def emit(self, event: BrokerEvent) -> None:
        """Put an event on the stream (called by the adapter's own tasks)."""
        self._events.put_nowait(event)

    def touch(self) -> None:
        """Record that a message arrived from the vendor (feeds the staleness watchdog)."""
        self._last_message_at = utcnow()

    @property
    def pending_events(self) -> int:
        """Events emitted but not yet taken by the consumer."""
        return self._events.qsize()

    @property
    def connection_state(self) -> ConnectionState:
        return self._state

    @property
    def last_message_at(self) -> datetime | None:
        return self._last_message_at

    @property
    def auth_expires_at(self) -> datetime | None:
        return self._auth_expires_at

    def status(self, detail: str = "") -> ConnectionStatus:
        """The connection status as it stands, with the login's expiry and any lockout."""
        return ConnectionStatus(
            broker=self.name,
            state=self._state,
            detail=detail,
            last_message_at=self._last_message_at,
            auth_expires_at=self._auth_expires_at,
            auth_label=self._auth_label,
            auth_needs_person=self._auth_needs_person,
            blocked_until=self._blocked_until,
        )

    def set_state(self, state: ConnectionState, detail: str = "") -> None:
        """Change the connection state and emit a ConnectionStatus event if it changed."""
        if state is self._state and not detail:
            return
        self._state = state
        self.emit(self.status(detail))

    def set_auth_expiry(self, expires_at: datetime | None, label: str, *, needs_person: bool) -> None:
        """Record when the login dies (structured, for the status bar's countdown) and say so."""
        if (expires_at, label, needs_person) == (self._auth_expires_at, self._auth_label, self._auth_needs_person):
            return
        self._auth_expires_at = expires_at
        self._auth_label = label
        self._auth_needs_person = needs_person
        self.emit(self.status())

    def set_blocked(self, until: datetime | None, detail: str = "") -> None:
        """A vendor lockout until ``until`` (None: lifted); shown in the status bar, orders held."""
        if until == self._blocked_until and not detail:
            return
        self._blocked_until = until
        self.emit(self.status(detail))

    def mark_closed(self) -> None:
        """End the event stream once it is drained (adapters call this from close())."""
        self._events.put_nowait(_END)

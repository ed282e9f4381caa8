"""The Broker contract: what every broker adapter (paper, Tradovate, ProjectX, Schwab, Tastytrade)
implements, so the engine can treat them alike.

An adapter owns its network tasks (REST, streams, token refresh, rate limits, reconnects) and
reports everything that happens on ONE async stream of core events (:meth:`Broker.events`):
quotes, order updates, fills, positions, account snapshots and connection state. Commands
(place, modify, cancel, flatten) return the order as the broker acknowledged it; a vendor reject
comes back as an Order with status REJECTED and a plain-words ``reject_reason``, never as an
exception. Exceptions mean the broker could not be asked at all (network, auth, rate limit).

Vendor JSON stops inside each adapter's ``broker.py``; nothing here knows a vendor field name.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tterm.core.models import (
    Account,
    AccountSnapshot,
    BrokerEvent,
    ConnectionState,
    ConnectionStatus,
    Fill,
    Order,
    OrderRequest,
    OrderSource,
    OrderType,
    Position,
    Side,
    utcnow,
)

_END = object()


class BrokerError(Exception):
    """The broker could not be reached or refused the request outright (not an order reject)."""


class AuthError(BrokerError):
    """Credentials were refused or a token could not be renewed. Never carries the secret."""


class RateLimited(BrokerError):
    """The vendor asked us to slow down; ``retry_after`` is in seconds when known."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnknownOrder(BrokerError):
    """An order id the broker does not know (already gone, or never existed)."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a broker supports natively; the engine emulates or refuses the rest."""

    brackets: bool = True
    oco: bool = True
    multi_leg: bool = False
    futures: bool = True
    equities: bool = False
    options: bool = False
    client_order_id_lookup: bool = True


class Broker(ABC):
    """One connection to one broker (a login), holding one or more accounts.

    ``name`` is the instance name from the config (``paper``, ``tradovate-demo``); accounts it
    reports carry engine-wide ids ``f"{name}:{vendor_account_id}"``.
    """

    capabilities: Capabilities = Capabilities()

    def __init__(self, name: str, *, is_live: bool = False) -> None:
        self.name = name
        self.is_live = is_live
        self._events: asyncio.Queue[BrokerEvent] = asyncio.Queue()
        self._state = ConnectionState.DOWN
        self._last_message_at: datetime | None = None

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

    # ------------------------------------------------------------------ orders

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
            if event is _END:
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

    def set_state(self, state: ConnectionState, detail: str = "") -> None:
        """Change the connection state and emit a ConnectionStatus event if it changed."""
        if state is self._state and not detail:
            return
        self._state = state
        self.emit(ConnectionStatus(broker=self.name, state=state, detail=detail, last_message_at=self._last_message_at))

    def mark_closed(self) -> None:
        """End the event stream once it is drained (adapters call this from close())."""
        self._events.put_nowait(_END)  # type: ignore[arg-type]

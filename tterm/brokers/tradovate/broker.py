"""The Tradovate broker: REST + trading socket + market-data socket behind the Broker contract.

This is the only module where Tradovate JSON becomes tterm's core models (Order, Fill, Position,
AccountSnapshot, Quote). It keeps a local replica of the user's entities, loaded from the
``user/syncrequest`` snapshot and kept current by ``props`` events, keyed by id so the order in
which events arrive does not matter (U8). Every (re)connection replaces the replica with a fresh
snapshot and emits what changed, so a fill that happened while a socket was down still arrives.

Identifiers: accounts are ``f"{name}:{account name}"`` (the Tradovate account ``name``, e.g.
``DEMO123456``, is what ``accountSpec`` wants; the numeric ``accountId`` stays inside). Order and
fill ids are Tradovate's ids as strings. A client order id travels as ``clOrdId`` and comes back
on the ``command`` entity, which is how :meth:`find_order` finds an order after a lost reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from tterm import __version__
from tterm.brokers.common.backoff import Backoff
from tterm.brokers.common.clock import as_clock
from tterm.brokers.common.http import ConnectionFailed, HttpClient
from tterm.brokers.common.ratelimit import RateLimiter
from tterm.brokers.common.tokens import Token, TokenManager
from tterm.brokers.tradovate.auth import DEVICE_ID_FILE, TradovateAuth, load_device_id, parse_time
from tterm.brokers.tradovate.config import TradovateCredentials, TradovateSettings
from tterm.brokers.tradovate.rest import ENDPOINT_LIMITS, GLOBAL_LIMITS, NotFound, TradovateRest
from tterm.brokers.tradovate.stream import SocketError, SocketSupervisor, TradovateSocket
from tterm.core.broker import (
    AuthError,
    Broker,
    BrokerError,
    Capabilities,
    UnknownOrder,
)
from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.models import (
    ZERO,
    Account,
    AccountKind,
    AccountSnapshot,
    AssetClass,
    ConnectionState,
    Fill,
    Instrument,
    ModelError,
    Notice,
    Order,
    OrderRequest,
    OrderRole,
    OrderSource,
    OrderStatus,
    OrderType,
    Position,
    Quote,
    Side,
    TimeInForce,
    utcnow,
)
from tterm.core.redact import REDACTOR, Redactor

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- vendor vocabulary

_ACTIONS = {Side.BUY: "Buy", Side.SELL: "Sell"}
_SIDES = {"Buy": Side.BUY, "Sell": Side.SELL}
_ORDER_TYPES = {
    OrderType.MARKET: "Market",
    OrderType.LIMIT: "Limit",
    OrderType.STOP: "Stop",
    OrderType.STOP_LIMIT: "StopLimit",
}
# Orders placed outside tterm may use types tterm does not model; they are shown as the nearest
# kind (the price fields still come from the order version).
_VENDOR_TYPES = {
    "Market": OrderType.MARKET,
    "Limit": OrderType.LIMIT,
    "Stop": OrderType.STOP,
    "StopLimit": OrderType.STOP_LIMIT,
    "MIT": OrderType.LIMIT,
    "LimitIfTouched": OrderType.LIMIT,
    "QTS": OrderType.MARKET,
    "TrailingStop": OrderType.STOP,
    "TrailingStopLimit": OrderType.STOP_LIMIT,
}
_TIFS = {TimeInForce.DAY: "Day", TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK"}
# GTD (good till date) has no tterm equivalent; it is shown as GTC.
_VENDOR_TIFS = {"Day": TimeInForce.DAY, "GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK}
_VENDOR_TIFS["GTD"] = TimeInForce.GTC

_STATUSES = {
    "Working": OrderStatus.WORKING,
    "PendingNew": OrderStatus.PENDING,
    "PendingReplace": OrderStatus.WORKING,
    "PendingCancel": OrderStatus.WORKING,
    "Filled": OrderStatus.FILLED,
    "Canceled": OrderStatus.CANCELLED,
    "Rejected": OrderStatus.REJECTED,
    "Expired": OrderStatus.EXPIRED,
    # A suspended order (a bracket child waiting for its entry) is held at Tradovate, not working
    # at the exchange yet; it can still be cancelled.
    "Suspended": OrderStatus.PENDING,
    "Unknown": OrderStatus.PENDING,
}

#: A5.1 failureReason values in plain words (the vendor's failureText follows when it adds detail).
FAILURE_WORDS: Mapping[str, str] = {
    "AccountClosed": "the account is closed",
    "AdvancedTrailingStopUnsupported": "advanced trailing stops are not supported",
    "AnotherCommandPending": "another change to this order is still pending; try again in a moment",
    "BackMonthProhibited": "this account may not trade back-month contracts",
    "ExecutionProviderNotConfigured": "the account has no execution provider configured",
    "ExecutionProviderUnavailable": "the execution provider is unavailable",
    "InvalidContract": "the contract cannot be traded",
    "InvalidPrice": "the price is not valid",
    "LiquidationOnly": "the account is liquidation-only: only orders that reduce a position are allowed",
    "LiquidationOnlyBeforeExpiration": "the contract is near expiry: liquidation only",
    "MaxOrderQtyIsNotSpecified": "the account has no maximum order quantity set",
    "MaxOrderQtyLimitReached": "the quantity is above the account's maximum order size",
    "MaxPosLimitMisconfigured": "the account's position limit is misconfigured",
    "MaxPosLimitReached": "the order would go over the account's position limit",
    "MaxTotalPosLimitReached": "the order would go over the account's total position limit",
    "MultipleAccountPlanRequired": "a multiple-account plan is required",
    "NoQuote": "there is no market quote for the contract",
    "NotEnoughLiquidity": "there is not enough liquidity",
    "OtherExecutionRelated": "the exchange or execution venue refused it",
    "ParentRejected": "its parent order was rejected",
    "RiskCheckTimeout": "the risk check timed out",
    "SessionClosed": "the market is closed",
    "TooLate": "too late: the order is no longer working",
    "TradingLocked": "trading is locked on this account",
    "TrailingStopNonOrderQtyModify": "only the quantity of a trailing stop can be changed",
    "Unauthorized": "this login may not trade the account",
    "UnknownReason": "Tradovate gave no reason",
    "Unsupported": "Tradovate does not support this request",
    "KeyInformationDocumentRequired": "a key information document must be acknowledged on the Tradovate website",
    "SSFRiskDisclosureAcknowledgmentRequired": (
        "the single-stock futures risk disclosure must be acknowledged on the Tradovate website"
    ),
}

_SEVERITY = {
    ConnectionState.CONNECTED: 0,
    ConnectionState.STALE: 1,
    ConnectionState.RECONNECTING: 2,
    ConnectionState.DOWN: 3,
}


def failure_words(reason: Any, text: Any) -> str:
    """A vendor refusal (``failureReason`` / ``failureText`` / ``errorText``) in plain words."""
    reason = str(reason or "").strip()
    text = str(text or "").strip()
    words = FAILURE_WORDS.get(reason, "")
    if not words and reason and reason != "Success":
        words = f"refused ({reason})"
    if words and text and text.lower() not in words.lower():
        return f"{words} (Tradovate: {text})"
    return words or text or "refused by Tradovate without a reason"


def _dec(value: Any) -> Decimal | None:
    """A JSON number as a Decimal (via its shortest text, so 6650.25 stays 6650.25)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def _num(price: Decimal) -> float | int:
    """A Decimal price as a JSON number (whole numbers stay ints)."""
    return int(price) if price == price.to_integral_value() else float(price)


def _time(value: Any) -> datetime | None:
    try:
        return parse_time(value)
    except BrokerError:
        return None


class _Refused(Exception):
    """An order request tterm will not send, with the reason in plain words."""


@dataclass(slots=True)
class _Placed:
    """What tterm knows about an order it sent (for orders whose version has not arrived yet)."""

    client_order_id: str
    account_id: int
    contract_id: int
    side: Side
    quantity: int
    order_type: OrderType
    limit_price: Decimal | None
    stop_price: Decimal | None
    tif: TimeInForce
    role: OrderRole = OrderRole.ENTRY
    parent_id: int | None = None
    source: OrderSource = OrderSource.API


@dataclass(slots=True)
class _QuoteState:
    """The last known value of every quote field of one contract (updates are partial)."""

    symbol: str
    instrument: Instrument
    bid: Decimal | None = None
    ask: Decimal | None = None
    last: Decimal | None = None
    bid_size: int = 0
    ask_size: int = 0
    volume: int = 0
    settlement: Decimal | None = None
    quote: Quote | None = None


# --------------------------------------------------------------------------- the entity replica


class _Replica:
    """Tradovate entities by id, as the snapshot and the props events describe them."""

    def __init__(self) -> None:
        self.accounts: dict[int, dict[str, Any]] = {}
        self.contracts: dict[int, dict[str, Any]] = {}
        self.contract_ids: dict[str, int] = {}
        self.maturities: dict[int, dict[str, Any]] = {}
        self.products: dict[int, dict[str, Any]] = {}
        self.product_ids: dict[str, int] = {}
        self.orders: dict[int, dict[str, Any]] = {}
        self.versions: dict[int, dict[str, Any]] = {}
        self.fills: dict[int, dict[str, Any]] = {}
        self.fills_by_order: dict[int, set[int]] = {}
        self.positions: dict[int, dict[str, Any]] = {}
        self.fill_pairs: dict[int, dict[str, Any]] = {}
        self.cash: dict[int, dict[str, Any]] = {}
        self.order_by_clord: dict[str, int] = {}
        self.clord_by_order: dict[int, str] = {}
        self.rejects: dict[int, str] = {}
        self.executions: dict[int, dict[str, Any]] = {}

    # ------------------------------------------------------------------ loading

    def load_snapshot(self, snap: Mapping[str, Any]) -> None:
        """Replace the trading state with a sync snapshot (reference data is merged, not dropped)."""

        def rows(key: str) -> list[dict[str, Any]]:
            # A6.1: any key may be missing; default to an empty list.
            value = snap.get(key) or []
            return [r for r in value if isinstance(r, dict) and "id" in r] if isinstance(value, list) else []

        for c in rows("contracts"):
            self.add_contract(c)
        for m in rows("contractMaturities"):
            self.maturities[m["id"]] = m
        for p in rows("products"):
            self.add_product(p)
        self.accounts = {a["id"]: a for a in rows("accounts")}
        self.orders = {o["id"]: o for o in rows("orders")}
        self.versions = {}
        for v in rows("orderVersions"):
            self.put_version(v)
        self.fills = {}
        self.fills_by_order = {}
        for f in rows("fills"):
            self.put_fill(f)
        self.positions = {p["id"]: p for p in rows("positions")}
        self.fill_pairs = {p["id"]: p for p in rows("fillPairs")}
        self.cash = {}
        for c in rows("cashBalances"):
            self.put_cash(c)
        self.rejects = {}
        self.executions = {}
        for r in rows("executionReports"):
            self.put_report(r)
        for c in rows("commands"):
            self.put_command(c)

    def add_contract(self, contract: Mapping[str, Any]) -> None:
        c = dict(contract)
        self.contracts[c["id"]] = c
        if c.get("name"):
            self.contract_ids[str(c["name"]).upper()] = c["id"]

    def add_product(self, product: Mapping[str, Any]) -> None:
        p = dict(product)
        self.products[p["id"]] = p
        if p.get("name"):
            self.product_ids[str(p["name"]).upper()] = p["id"]

    def put_version(self, v: Mapping[str, Any]) -> None:
        oid = v.get("orderId")
        if oid is None:
            return
        current = self.versions.get(oid)
        # A4: a modify creates a new version; the one with the highest id is current.
        if current is None or int(v["id"]) >= int(current["id"]):
            self.versions[oid] = dict(v)

    def put_fill(self, f: Mapping[str, Any]) -> None:
        self.fills[f["id"]] = dict(f)
        if f.get("orderId") is not None:
            self.fills_by_order.setdefault(f["orderId"], set()).add(f["id"])

    def put_cash(self, c: Mapping[str, Any]) -> None:
        acct = c.get("accountId")
        if acct is None:
            return
        current = self.cash.get(acct)
        if current is None or str(c.get("timestamp") or "") >= str(current.get("timestamp") or ""):
            self.cash[acct] = dict(c)

    def put_report(self, r: Mapping[str, Any]) -> None:
        oid = r.get("orderId")
        if oid is None:
            return
        if r.get("execType") == "Rejected" or r.get("ordStatus") == "Rejected":
            self.rejects[oid] = failure_words(r.get("rejectReason"), r.get("text"))
        if r.get("cumQty") is not None:
            current = self.executions.get(oid)
            if current is None or int(r.get("id") or 0) >= int(current.get("id") or 0):
                self.executions[oid] = dict(r)

    def put_command(self, c: Mapping[str, Any]) -> None:
        clord = c.get("clOrdId")
        oid = c.get("orderId")
        # Only the command that created the order carries the client order id we sent with it.
        if clord and oid is not None and c.get("commandType", "New") == "New":
            self.order_by_clord[str(clord)] = oid
            self.clord_by_order.setdefault(oid, str(clord))

    def apply(self, entity_type: str, event_type: str, entity: dict[str, Any]) -> None:
        """One props event. Deleted entities leave the replica."""
        eid = entity.get("id")
        if eid is None:
            return
        deleted = event_type == "Deleted"
        if entity_type == "order":
            if deleted:
                self.orders.pop(eid, None)
            else:
                self.orders[eid] = entity
        elif entity_type == "orderVersion":
            if not deleted:
                self.put_version(entity)
        elif entity_type == "fill":
            if deleted:
                self.fills.pop(eid, None)
                self.fills_by_order.get(entity.get("orderId"), set()).discard(eid)
            else:
                self.put_fill(entity)
        elif entity_type == "position":
            if deleted:
                self.positions.pop(eid, None)
            else:
                self.positions[eid] = entity
        elif entity_type == "fillPair":
            if deleted:
                self.fill_pairs.pop(eid, None)
            else:
                self.fill_pairs[eid] = entity
        elif entity_type == "cashBalance":
            if not deleted:
                self.put_cash(entity)
        elif entity_type == "executionReport":
            self.put_report(entity)
        elif entity_type == "command":
            self.put_command(entity)
        elif entity_type == "account":
            if deleted:
                self.accounts.pop(eid, None)
            else:
                self.accounts[eid] = entity
        elif entity_type == "contract":
            self.add_contract(entity)
        elif entity_type == "product":
            self.add_product(entity)
        elif entity_type == "contractMaturity":
            self.maturities[eid] = entity

    # ------------------------------------------------------------------ lookups

    def account_by_name(self, name: str) -> dict[str, Any] | None:
        for acct in self.accounts.values():
            if acct.get("name") == name:
                return acct
        return None

    def referenced_contracts(self) -> set[int]:
        ids = {o.get("contractId") for o in self.orders.values()}
        ids |= {p.get("contractId") for p in self.positions.values()}
        ids |= {f.get("contractId") for f in self.fills.values()}
        return {i for i in ids if isinstance(i, int)}


def account_usable(account: Mapping[str, Any]) -> bool:
    """U4: older schemas say ``active``, newer ``closed``/``restricted``; accept both."""
    closed = account.get("closed") is True or account.get("archived") is True
    return not closed and account.get("active") is not False


# --------------------------------------------------------------------------- the broker


class TradovateBroker(Broker):
    """A Tradovate login (demo or live) with all its accounts."""

    capabilities = Capabilities(
        brackets=True,
        # place_oco is not the contract's place_group yet: the engine emulates OCO meanwhile.
        oco=False,
        multi_leg=False,
        futures=True,
        equities=False,
        options=False,
        client_order_id_lookup=True,
    )

    def __init__(
        self,
        name: str,
        settings: TradovateSettings,
        credentials: TradovateCredentials,
        *,
        instruments: InstrumentMaster,
        clock: Any = None,
        data_dir: Path,
        redactor: Redactor | None = None,
    ) -> None:
        super().__init__(name, is_live=settings.is_live)
        self.settings = settings
        self._creds = credentials
        self._instruments = instruments
        self._clock = as_clock(clock)
        self._redactor = redactor or REDACTOR
        self._device_path = settings.device_id_path or Path(data_dir) / DEVICE_ID_FILE
        # Every vendor-facing wait (limits, penalties, tokens) runs on the injected clock.
        self._limiter = RateLimiter(
            GLOBAL_LIMITS,
            per_key=ENDPOINT_LIMITS,
            time=lambda: self._clock.now().timestamp(),
            sleep=self._clock.sleep,
        )
        self._http = HttpClient(
            settings.rest_base,
            timeout=settings.request_timeout,
            limiter=self._limiter,
            user_agent=f"tterm/{__version__}",
            redactor=self._redactor,
        )
        self._rest = TradovateRest(
            self._http,
            clock=self._clock,
            redactor=self._redactor,
            penalty_retries=settings.penalty_retries,
            rate_limit_retries=settings.rate_limit_retries,
            backoff=Backoff(base=settings.backoff_base, cap=max(settings.backoff_cap, settings.backoff_base)),
        )
        self._tokens: TokenManager | None = None
        self._auth: TradovateAuth | None = None
        self._replica = _Replica()
        self._placed: dict[int, _Placed] = {}
        self._roles: dict[int, tuple[OrderRole, int | None]] = {}
        self._quotes: dict[int, _QuoteState] = {}
        self._quote_subs: dict[str, int] = {}
        self._contract_lookups: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._emitted_orders: dict[int, tuple[Any, ...]] = {}
        self._emitted_fills: set[int] = set()
        self._emitted_positions: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._emitted_snapshots: dict[str, tuple[Any, ...]] = {}
        self._inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._consumer: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._synced_once = False
        self._socket_states: dict[str, tuple[ConnectionState, str]] = {
            "trading": (ConnectionState.DOWN, "not connected")
        }
        if settings.market_data:
            self._socket_states["market data"] = (ConnectionState.DOWN, "not connected")
        self._last_status: tuple[ConnectionState, str] | None = None
        backoff = Backoff(base=settings.reconnect_base, cap=max(settings.reconnect_cap, settings.reconnect_base))
        self._trading = SocketSupervisor(
            name="trading",
            connect=lambda: self._open_socket("trading"),
            on_ready=self._trading_ready,
            on_state=lambda state, detail: self._socket_state("trading", state, detail),
            stale_after=settings.stale_after,
            watchdog_interval=settings.watchdog_interval,
            backoff=backoff,
            redactor=self._redactor,
        )
        self._md = SocketSupervisor(
            name="market data",
            connect=lambda: self._open_socket("market data"),
            on_ready=self._md_ready,
            on_state=lambda state, detail: self._socket_state("market data", state, detail),
            stale_after=settings.stale_after,
            watchdog_interval=settings.watchdog_interval,
            backoff=Backoff(base=settings.reconnect_base, cap=max(settings.reconnect_cap, settings.reconnect_base)),
            redactor=self._redactor,
        )
        self._connected = False
        self.device_id: str | None = None

    # ================================================================== lifecycle

    async def connect(self) -> None:
        if self._connected:
            return
        self.device_id = load_device_id(self._device_path)
        self._auth = TradovateAuth(
            self._rest,
            self._creds,
            self.settings,
            device_id=self.device_id,
            clock=self._clock,
            redactor=self._redactor,
        )
        self._tokens = TokenManager(
            login=self._auth.login,
            renew=self._auth.renew,
            clock=self._clock,
            renew_ahead=timedelta(seconds=self.settings.renew_ahead),
            check_interval=self.settings.token_check_interval,
            on_change=self._on_token,
            on_error=self._on_token_error,
            retry=Backoff(base=self.settings.backoff_base, cap=max(self.settings.backoff_cap, 1.0)),
        )
        self._rest.tokens = self._tokens
        try:
            await self._tokens.get()
            self._consumer = asyncio.get_running_loop().create_task(self._apply_loop(), name=f"{self.name}-apply")
            await self._trading.start(background_retry=True)
            if not self._trading.ready.is_set():
                # The trading socket is blocked or down but REST may answer: start from a REST
                # snapshot (orders stay held until the stream is back) and keep retrying the socket.
                await self._sync_from_rest()
                text = (
                    f"the Tradovate trading socket did not connect ({self._trading.last_error}); showing "
                    "state read over REST and retrying; new orders are held until the stream is back"
                )
                self.emit(Notice(level="warning", text=text, source=self.name))
            if self.settings.market_data:
                await self._md.start(background_retry=True)
            self._tokens.start()
        except BaseException:
            await self._shutdown()
            raise
        self._connected = True
        self._publish_state()

    async def close(self) -> None:
        await self._shutdown()
        self._connected = False
        self._last_status = None
        self.set_state(ConnectionState.DOWN, "closed")
        self.mark_closed()

    async def _shutdown(self) -> None:
        if self._tokens is not None:
            await self._tokens.stop()
        await self._md.stop()
        await self._trading.stop()
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
        await self._http.aclose()

    # ================================================================== session (token) info

    def token_expires_in(self) -> timedelta | None:
        """Time left on the Tradovate session (None before login); the TUI shows it as a countdown."""
        return self._tokens.expires_in() if self._tokens is not None else None

    @property
    def session_expires_at(self) -> datetime | None:
        return self._tokens.expires_at if self._tokens is not None else None

    def _session_detail(self) -> str:
        expires = self.session_expires_at
        if expires is None:
            return "connected"
        left = self.token_expires_in() or timedelta(0)
        minutes = max(0, int(left.total_seconds() // 60))
        return f"connected; session expires at {expires.isoformat(timespec='seconds')} (in {minutes} min)"

    def _on_token(self, token: Token) -> None:
        if self._connected:
            self._publish_state()

    def _on_token_error(self, exc: Exception) -> None:
        left = self.token_expires_in()
        minutes = int(left.total_seconds() // 60) if left is not None else 0
        text = self._redactor.scrub(str(exc))
        self.emit(
            Notice(
                level="warning" if minutes > 2 else "error",
                text=f"Tradovate session renewal failed ({text}); retrying. The session ends in {minutes} min.",
                source=self.name,
            )
        )

    # ================================================================== connection state

    def _socket_state(self, which: str, state: ConnectionState, detail: str) -> None:
        if which not in self._socket_states:
            return
        self._socket_states[which] = (state, detail)
        if self._connected or state is not ConnectionState.CONNECTED:
            self._publish_state()

    def _publish_state(self) -> None:
        worst = max((s for s, _ in self._socket_states.values()), key=_SEVERITY.__getitem__)
        if worst is ConnectionState.CONNECTED:
            detail = self._session_detail()
        else:
            detail = "; ".join(
                f"{which}: {d or s.value}"
                for which, (s, d) in self._socket_states.items()
                if s is not ConnectionState.CONNECTED
            )
        if self._last_status == (worst, detail):
            return
        self._last_status = (worst, detail)
        self.set_state(worst, detail)

    @property
    def trading_state(self) -> ConnectionState:
        return self._socket_states["trading"][0]

    # ================================================================== sockets

    async def _open_socket(self, which: str) -> TradovateSocket:
        assert self._tokens is not None
        md = which == "market data"
        url = self.settings.md_base if md else self.settings.ws_base
        handler = self._on_md_event if md else self._on_trading_event
        for attempt in (1, 2):
            token = await self._tokens.get()
            value = str(token.extra.get("md_token") or token.value) if md else token.value
            sock = TradovateSocket(
                url,
                name=which,
                clock=self._clock,
                redactor=self._redactor,
                on_event=handler,
                limiter=self._limiter,
                heartbeat_interval=self.settings.heartbeat_interval,
                request_timeout=self.settings.socket_request_timeout,
                connect_timeout=self.settings.connect_timeout,
                close_timeout=self.settings.close_timeout,
                penalty_retries=self.settings.penalty_retries,
                rate_limit_retries=self.settings.rate_limit_retries,
                backoff=Backoff(base=self.settings.backoff_base, cap=max(self.settings.backoff_cap, 1.0)),
            )
            sock.add_frame_listener(self.touch)
            try:
                await sock.open(value)
                return sock
            except AuthError:
                if attempt == 2:
                    raise
                log.info("Tradovate %s socket refused the session; starting a new session", which)
                await self._tokens.invalidate(token)
        raise AuthError(f"Tradovate {which} socket refused every session")  # pragma: no cover

    async def _trading_ready(self, sock: TradovateSocket) -> None:
        """Take the snapshot; events that follow it are applied after it, in order."""
        assert self._tokens is not None
        token = await self._tokens.get()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await sock.request(
            "user/syncrequest",
            {"users": [token.extra["user_id"]]},
            on_reply=lambda d: self._inbox.put_nowait(("sync", d, done)),
        )
        await asyncio.wait_for(done, self.settings.socket_request_timeout)

    async def _sync_from_rest(self) -> None:
        """Replace the replica with a REST snapshot, through the same ordered inbox as socket syncs."""
        data = await self._rest.snapshot()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inbox.put_nowait(("sync", data, done))
        await asyncio.wait_for(done, self.settings.socket_request_timeout)

    async def refresh(self) -> None:
        """Re-read the whole trading state over REST and emit whatever changed (a manual resync)."""
        await self._sync_from_rest()

    async def _md_ready(self, sock: TradovateSocket) -> None:
        """Subscribe every watched contract again (after a reconnect the server forgot them)."""
        for name in list(self._quote_subs):
            try:
                await sock.request("md/subscribeQuote", {"symbol": name})
            except SocketError as exc:
                self.emit(Notice(level="warning", text=f"quotes for {name}: {exc}", source=self.name))

    def _on_trading_event(self, event: str, data: Any) -> None:
        if event == "props":
            self._inbox.put_nowait(("props", data))
        elif event == "shutdown":
            self._on_shutdown("trading", data)

    def _on_md_event(self, event: str, data: Any) -> None:
        if event == "md":
            if isinstance(data, dict):
                for q in data.get("quotes") or ():
                    if isinstance(q, dict):
                        self._merge_quote(q)
        elif event == "shutdown":
            self._on_shutdown("market data", data)

    def _on_shutdown(self, which: str, data: Any) -> None:
        code = data.get("reasonCode", "") if isinstance(data, dict) else ""
        why = data.get("reason", "") if isinstance(data, dict) else ""
        text = " ".join(str(x) for x in (code, why) if x) or "no reason given"
        text = f"Tradovate is closing the {which} connection: {text}"
        self.emit(Notice(level="warning", text=text, source=self.name))

    # ================================================================== applying updates

    async def _apply_loop(self) -> None:
        while True:
            item = await self._inbox.get()
            kind = item[0]
            try:
                if kind == "sync":
                    await self._apply_sync(item[1])
                    if not item[2].done():
                        item[2].set_result(None)
                elif kind == "props":
                    await self._apply_props(item[1])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("Tradovate %s update could not be applied", kind)
                if kind == "sync" and not item[2].done():
                    item[2].set_exception(BrokerError(f"Tradovate snapshot could not be applied: {exc}"))
                    item[2].exception()
                self.emit(
                    Notice(
                        level="error",
                        text=f"a Tradovate {kind} update could not be applied: {self._redactor.scrub(str(exc))}",
                        source=self.name,
                    )
                )
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _apply_sync(self, data: Any) -> None:
        if not isinstance(data, dict):
            raise BrokerError("the sync snapshot is not an object")
        if data.get("errorText"):
            raise BrokerError(f"Tradovate refused the sync: {data['errorText']}")
        self._replica.load_snapshot(data)
        for cid in self._replica.referenced_contracts() - set(self._replica.contracts):
            await self._load_contract(cid)
        for contract in list(self._replica.contracts.values()):
            await self._ensure_instrument(contract)
        baseline = not self._synced_once
        self._synced_once = True
        self._publish_all(emit=not baseline)

    async def _apply_props(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        etype = str(data.get("entityType") or "")
        event = str(data.get("eventType") or "")
        entity = data.get("entity")
        if not isinstance(entity, dict):
            return
        replica = self._replica
        cid = entity.get("contractId")
        if isinstance(cid, int) and cid not in replica.contracts:
            await self._load_contract(cid)
        oid = entity.get("orderId")
        if etype in ("fill", "orderVersion", "executionReport") and isinstance(oid, int) and oid not in replica.orders:
            with contextlib.suppress(NotFound):
                await self._load_order(oid)
        replica.apply(etype, event, entity)
        if etype == "order":
            self._publish_order(entity["id"])
        elif etype in ("orderVersion", "executionReport", "command") and isinstance(oid, int):
            self._publish_order(oid)
        elif etype == "fill":
            self._publish_fill(entity["id"])
            if isinstance(oid, int):
                self._publish_order(oid)
        elif etype == "position":
            self._publish_position(entity)
            self._publish_snapshot(entity.get("accountId"))
        elif etype == "fillPair":
            pos = replica.positions.get(entity.get("positionId"))
            if pos is not None:
                self._publish_position(pos)
                self._publish_snapshot(pos.get("accountId"))
        elif etype == "cashBalance":
            self._publish_snapshot(entity.get("accountId"))

    # ------------------------------------------------------------------ reference data

    async def _load_contract(self, contract_id: int) -> dict[str, Any] | None:
        try:
            contract = await self._rest.entity_item("contract", contract_id)
        except NotFound:
            log.warning("Tradovate has no contract %s", contract_id)
            return None
        self._replica.add_contract(contract)
        await self._ensure_instrument(contract)
        return contract

    async def _load_order(self, order_id: int) -> dict[str, Any]:
        order = await self._rest.entity_item("order", order_id)
        self._replica.orders[order_id] = order
        for v in await self._rest.entity_deps("orderVersion", order_id):
            self._replica.put_version(v)
        for f in await self._rest.entity_deps("fill", order_id):
            self._replica.put_fill(f)
        cid = order.get("contractId")
        if isinstance(cid, int) and cid not in self._replica.contracts:
            await self._load_contract(cid)
        return order

    def _instrument_of(self, contract: Mapping[str, Any]) -> Instrument | None:
        name = str(contract.get("name") or "")
        try:
            return self._instruments.resolve(name)
        except (UnknownSymbol, ModelError):
            return None

    async def _ensure_instrument(self, contract: Mapping[str, Any]) -> Instrument | None:
        """The instrument for a contract; products the master does not list are added from Tradovate's
        product (tick size and value per point)."""
        inst = self._instrument_of(contract)
        if inst is not None:
            return inst
        name = str(contract.get("name") or "")
        replica = self._replica
        try:
            mid = contract.get("contractMaturityId")
            maturity = replica.maturities.get(mid) if mid is not None else None
            if maturity is None and mid is not None:
                maturity = await self._rest.entity_item("contractMaturity", mid)
                replica.maturities[mid] = maturity
            pid = maturity.get("productId") if maturity else None
            product = replica.products.get(pid) if pid is not None else None
            if product is None and pid is not None:
                product = await self._rest.entity_item("product", pid)
                replica.add_product(product)
        except (BrokerError, NotFound) as exc:
            log.warning("no product details for Tradovate contract %s: %s", name, exc)
            return None
        if not product:
            return None
        tick = _dec(product.get("tickSize"))
        vpp = _dec(product.get("valuePerPoint"))
        if not name or tick is None or vpp is None or tick <= 0 or vpp <= 0:
            return None
        inst = Instrument(
            symbol=name.upper(),
            asset_class=AssetClass.FUTURE,
            tick_size=tick,
            tick_value=tick * vpp,
            description=str(product.get("description") or name),
            root=str(product.get("name") or ""),
        )
        self._instruments.add(inst)
        return inst

    async def _contract_for_symbol(self, symbol: str) -> tuple[dict[str, Any], Instrument]:
        """The Tradovate contract a tterm symbol names (continuous symbols resolve first), cached."""
        try:
            inst = self._instruments.resolve(symbol)
        except (UnknownSymbol, ModelError) as exc:
            raise _Refused(str(exc)) from None
        if inst.asset_class is not AssetClass.FUTURE:
            raise _Refused(f"{inst.symbol} is not a futures contract; Tradovate trades futures only")
        name = inst.symbol.upper()
        cid = self._replica.contract_ids.get(name)
        if cid is not None:
            return self._replica.contracts[cid], inst
        pending = self._contract_lookups.get(name)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._contract_lookups[name] = pending
            try:
                contract = await self._rest.entity_find("contract", name)
                self._replica.add_contract(contract)
                pending.set_result(contract)
            except NotFound:
                pending.set_exception(_Refused(f"Tradovate has no contract named {name}"))
            except BaseException as exc:
                pending.set_exception(exc)
            finally:
                del self._contract_lookups[name]
        try:
            contract = await asyncio.shield(pending)
        finally:
            if pending.done() and not pending.cancelled():
                pending.exception()
        return contract, inst

    # ================================================================== mapping (vendor JSON -> core)

    def _account_id(self, account: Mapping[str, Any]) -> str:
        return f"{self.name}:{account['name']}"

    def _vendor_account(self, account: str) -> dict[str, Any]:
        prefix = f"{self.name}:"
        name = account[len(prefix) :] if account.startswith(prefix) else None
        acct = self._replica.account_by_name(name) if name else None
        if acct is None or not account_usable(acct):
            known = ", ".join(a.id for a in self._accounts_now()) or "none"
            raise _Refused(f"unknown Tradovate account {account!r} (accounts: {known})")
        return acct

    def _accounts_now(self) -> list[Account]:
        out = []
        for acct in self._replica.accounts.values():
            if not account_usable(acct) or not acct.get("name"):
                continue
            out.append(
                Account(
                    id=self._account_id(acct),
                    broker=self.name,
                    vendor_id=str(acct["name"]),
                    name=str(acct["name"]),
                    kind=AccountKind.FUTURES,
                    currency="USD",
                    is_live=self.is_live,
                )
            )
        return out

    def _price(self, inst: Instrument, value: Any) -> Decimal | None:
        d = _dec(value)
        return inst.round_price(d) if d is not None else None

    def _map_order(self, oid: int) -> Order | None:
        replica = self._replica
        o = replica.orders.get(oid)
        placed = self._placed.get(oid)
        if o is None:
            return None
        acct = replica.accounts.get(o.get("accountId"))
        contract = replica.contracts.get(o.get("contractId"))
        if acct is None or contract is None:
            return None
        inst = self._instrument_of(contract)
        if inst is None:
            return None
        version = replica.versions.get(oid)
        if version is None and placed is None:
            return None  # no quantity or prices known yet; the version event will complete it
        fills = [replica.fills[f] for f in sorted(replica.fills_by_order.get(oid, ())) if f in replica.fills]
        fills = [f for f in fills if f.get("active", True) is not False]
        filled = sum(int(f.get("qty") or 0) for f in fills)
        avg = None
        if filled:
            total = sum((_dec(f.get("price")) or ZERO) * int(f.get("qty") or 0) for f in fills)
            avg = total / filled
        # U8: the order's new status or its execution report may arrive before the fill entity.
        report = replica.executions.get(oid)
        reported = int(report.get("cumQty") or 0) if report else 0
        if reported > filled:
            filled = reported
            avg = _dec(report.get("avgPx")) if report else None
        if version is not None:
            quantity = int(version.get("orderQty") or 0)
            order_type = _VENDOR_TYPES.get(str(version.get("orderType")), OrderType.MARKET)
            limit = self._price(inst, version.get("price")) if order_type.needs_limit else None
            stop = self._price(inst, version.get("stopPrice")) if order_type.needs_stop else None
            tif = _VENDOR_TIFS.get(str(version.get("timeInForce")), placed.tif if placed else TimeInForce.DAY)
        else:
            assert placed is not None
            quantity, order_type = placed.quantity, placed.order_type
            limit, stop, tif = placed.limit_price, placed.stop_price, placed.tif
        vendor_status = str(o.get("ordStatus") or "Unknown")
        if vendor_status == "Completed":
            status = OrderStatus.FILLED if quantity and filled >= quantity else OrderStatus.CANCELLED
        else:
            status = _STATUSES.get(vendor_status, OrderStatus.PENDING)
        if status is OrderStatus.WORKING and 0 < filled < quantity:
            status = OrderStatus.PARTIALLY_FILLED
        if status is OrderStatus.FILLED and filled < quantity:
            filled = quantity  # filled by definition; the price follows with the fill or the report
        role, parent = self._role_of(oid, o, order_type)
        side = _SIDES.get(str(o.get("action")), placed.side if placed else Side.BUY)
        created = _time(o.get("timestamp")) or utcnow()
        oco = o.get("ocoId")
        if oco is None and parent is not None:
            oco = f"oso-{parent}"
        return Order(
            order_id=str(oid),
            client_order_id=self._client_id(oid),
            account=self._account_id(acct),
            symbol=inst.symbol,
            side=side,
            quantity=max(quantity, filled),
            order_type=order_type,
            status=status,
            limit_price=limit,
            stop_price=stop,
            tif=tif,
            filled_quantity=filled,
            avg_fill_price=avg,
            role=role,
            parent_id=str(parent) if parent is not None else None,
            oco_group=str(oco) if oco is not None else None,
            reject_reason=(replica.rejects.get(oid) or "rejected by Tradovate")
            if status is OrderStatus.REJECTED
            else "",
            source=placed.source if placed else OrderSource.API,
            broker=self.name,
            created_at=created,
            updated_at=utcnow(),
        )

    def _client_id(self, oid: Any) -> str:
        """The client order id an order was sent with; orders placed elsewhere get a stable stand-in."""
        placed = self._placed.get(oid)
        known = self._replica.clord_by_order.get(oid)
        return known or (placed.client_order_id if placed else f"tradovate-{oid}")

    def _role_of(self, oid: int, o: Mapping[str, Any], order_type: OrderType) -> tuple[OrderRole, int | None]:
        known = self._roles.get(oid)
        if known is not None:
            return known
        parent = o.get("parentId")
        if not isinstance(parent, int):
            return OrderRole.ENTRY, None
        # An OSO child tterm did not place (or placed before a restart): a limit takes profit,
        # a stop protects.
        role = OrderRole.TAKE_PROFIT if order_type is OrderType.LIMIT else OrderRole.STOP_LOSS
        return role, parent

    def _map_fill(self, fid: int) -> Fill | None:
        replica = self._replica
        f = replica.fills.get(fid)
        if f is None or f.get("active", True) is False:
            return None
        o = replica.orders.get(f.get("orderId"))
        cid = f.get("contractId")
        contract = replica.contracts.get(cid if cid is not None else (o or {}).get("contractId"))
        if o is None or contract is None:
            return None
        acct = replica.accounts.get(o.get("accountId"))
        inst = self._instrument_of(contract)
        price = self._price(inst, f.get("price")) if inst is not None else None
        if acct is None or inst is None or price is None:
            return None
        qty = int(f.get("qty") or 0)
        side = _SIDES.get(str(f.get("action") or o.get("action")), Side.BUY)
        oid = f.get("orderId")
        return Fill(
            fill_id=str(fid),
            order_id=str(oid),
            client_order_id=self._client_id(oid),
            account=self._account_id(acct),
            symbol=inst.symbol,
            side=side,
            quantity=qty,
            price=price,
            # Tradovate's fee entity is not in the reference; the instrument's configured per-side fee
            # (the user's own schedule) estimates it.
            fee=inst.fee_per_side * qty,
            broker=self.name,
            ts=_time(f.get("timestamp")) or utcnow(),
        )

    def _mark(self, symbol: str) -> Decimal | None:
        for state in self._quotes.values():
            if state.symbol == symbol and state.quote is not None:
                return state.quote.mark
        return None

    def _map_position(self, p: Mapping[str, Any]) -> Position | None:
        replica = self._replica
        acct = replica.accounts.get(p.get("accountId"))
        contract = replica.contracts.get(p.get("contractId"))
        if acct is None or contract is None:
            return None
        inst = self._instrument_of(contract)
        if inst is None:
            return None
        qty = int(p.get("netPos") or 0)
        avg = _dec(p.get("netPrice")) if qty else None
        avg = avg if avg is not None else ZERO
        mark = self._mark(inst.symbol)
        unrealized = inst.money(mark - avg, qty) if qty and mark is not None else ZERO
        gross = ZERO
        for pair in replica.fill_pairs.values():
            if pair.get("positionId") == p.get("id") and pair.get("active", True) is not False:
                buy, sell = _dec(pair.get("buyPrice")), _dec(pair.get("sellPrice"))
                if buy is not None and sell is not None:
                    gross += inst.money(sell - buy, int(pair.get("qty") or 0))
        traded = int(p.get("bought") or 0) + int(p.get("sold") or 0)
        fees = inst.fee_per_side * traded
        return Position(
            account=self._account_id(acct),
            symbol=inst.symbol,
            quantity=qty,
            avg_price=avg,
            mark=mark,
            realized_pnl=gross - fees,
            unrealized_pnl=unrealized,
            fees=fees,
            ts=_time(p.get("timestamp")) or utcnow(),
        )

    def _map_snapshot(self, account_id: int) -> AccountSnapshot | None:
        replica = self._replica
        acct = replica.accounts.get(account_id)
        cash = replica.cash.get(account_id)
        if acct is None or cash is None:
            return None
        balance = _dec(cash.get("amount")) or ZERO
        realized = _dec(cash.get("realizedPnL")) or ZERO
        open_pnl = ZERO
        fees = ZERO
        for p in replica.positions.values():
            if p.get("accountId") != account_id:
                continue
            pos = self._map_position(p)
            if pos is not None:
                open_pnl += pos.unrealized_pnl
                fees += pos.fees
        return AccountSnapshot(
            account=self._account_id(acct),
            balance=balance,
            equity=balance + open_pnl,
            day_realized_pnl=realized,
            open_pnl=open_pnl,
            fees_today=fees,
            start_of_day_balance=_dec(cash.get("amountSOD")),
            ts=_time(cash.get("timestamp")) or utcnow(),
        )

    # ------------------------------------------------------------------ emitting what changed

    def _publish_order(self, oid: int, *, emit: bool = True) -> Order | None:
        order = self._map_order(oid)
        if order is None:
            return None
        state = (
            order.status,
            order.quantity,
            order.filled_quantity,
            order.limit_price,
            order.stop_price,
            order.avg_fill_price,
            order.reject_reason,
            order.role,
            order.client_order_id,
        )
        if self._emitted_orders.get(oid) != state:
            self._emitted_orders[oid] = state
            if emit:
                self.emit(order)
        return order

    def _publish_fill(self, fid: int, *, emit: bool = True) -> None:
        if fid in self._emitted_fills:
            return
        fill = self._map_fill(fid)
        if fill is None:
            return
        self._emitted_fills.add(fid)
        if emit:
            self.emit(fill)

    def _publish_position(self, p: Mapping[str, Any], *, emit: bool = True) -> None:
        pos = self._map_position(p)
        if pos is None:
            return
        key = (pos.account, pos.symbol)
        state = (pos.quantity, pos.avg_price, pos.realized_pnl)
        if self._emitted_positions.get(key) != state:
            self._emitted_positions[key] = state
            if emit:
                self.emit(pos)

    def _publish_snapshot(self, account_id: Any, *, emit: bool = True) -> None:
        if not isinstance(account_id, int):
            return
        snap = self._map_snapshot(account_id)
        if snap is None:
            return
        state = (snap.balance, snap.day_realized_pnl, snap.fees_today, snap.start_of_day_balance)
        if self._emitted_snapshots.get(snap.account) != state:
            self._emitted_snapshots[snap.account] = state
            if emit:
                self.emit(snap)

    def _publish_all(self, *, emit: bool) -> None:
        """After a snapshot: emit every order, fill, position and balance that changed (a resync) or
        record them as already known (the first snapshot, which the engine reads through the queries)."""
        replica = self._replica
        fills = sorted(replica.fills.values(), key=lambda f: (str(f.get("timestamp") or ""), f["id"]))
        for f in fills:
            self._publish_fill(f["id"], emit=emit)
        for oid in sorted(replica.orders):
            self._publish_order(oid, emit=emit)
        seen: set[tuple[str, str]] = set()
        for p in replica.positions.values():
            pos = self._map_position(p)
            if pos is not None:
                seen.add((pos.account, pos.symbol))
            self._publish_position(p, emit=emit)
        # A position that vanished from the snapshot is flat now.
        for account, symbol in list(self._emitted_positions):
            if (account, symbol) not in seen and self._emitted_positions[(account, symbol)][0] != 0:
                self._emitted_positions[(account, symbol)] = (0, ZERO, ZERO)
                if emit:
                    self.emit(Position(account=account, symbol=symbol, quantity=0))
        for account_id in replica.accounts:
            self._publish_snapshot(account_id, emit=emit)

    # ------------------------------------------------------------------ quotes

    def _merge_quote(self, q: Mapping[str, Any]) -> None:
        cid = q.get("contractId")
        state = self._quotes.get(cid) if isinstance(cid, int) else None
        if state is None:
            contract = self._replica.contracts.get(cid) if isinstance(cid, int) else None
            inst = self._instrument_of(contract) if contract is not None else None
            if inst is None or not isinstance(cid, int):
                return  # a contract we did not subscribe to
            state = self._quotes[cid] = _QuoteState(symbol=inst.symbol, instrument=inst)
        entries = q.get("entries")
        if not isinstance(entries, dict):
            return
        inst = state.instrument

        def price(key: str) -> tuple[bool, Decimal | None]:
            entry = entries.get(key)
            if not isinstance(entry, dict) or "price" not in entry:
                return False, None
            d = _dec(entry.get("price"))
            return True, (inst.round_price(d) if d is not None else None)

        def size(key: str) -> int | None:
            entry = entries.get(key)
            if not isinstance(entry, dict):
                return None
            try:
                return int(entry.get("size") or 0)
            except (TypeError, ValueError):
                return None

        # U13 / A6.2: any key may be missing from an update; keep the last known value.
        if "EmptyBook" in entries:
            state.bid = state.ask = None
            state.bid_size = state.ask_size = 0
        has, value = price("Bid")
        if has:
            state.bid = value
            state.bid_size = size("Bid") or 0
        has, value = price("Offer")
        if has:
            state.ask = value
            state.ask_size = size("Offer") or 0
        has, value = price("Trade")
        if has and value is not None:
            state.last = value
        volume = size("TotalTradeVolume")
        if volume is not None:
            state.volume = volume
        has, value = price("SettlementPrice")
        if has and value is not None:
            state.settlement = value
        quote = Quote(
            symbol=state.symbol,
            bid=state.bid,
            ask=state.ask,
            last=state.last,
            bid_size=state.bid_size,
            ask_size=state.ask_size,
            volume=state.volume,
            prev_close=state.settlement,
            ts=_time(q.get("timestamp")) or utcnow(),
        )
        state.quote = quote
        self.emit(quote)

    def last_quote(self, symbol: str) -> Quote | None:
        """The merged quote for a contract symbol, if it is streaming."""
        for state in self._quotes.values():
            if state.symbol == symbol:
                return state.quote
        return None

    # ================================================================== queries

    async def accounts(self) -> list[Account]:
        return self._accounts_now()

    async def snapshots(self) -> list[AccountSnapshot]:
        out = []
        for account_id, acct in self._replica.accounts.items():
            if not account_usable(acct):
                continue
            snap = self._map_snapshot(account_id)
            if snap is None:
                # No cash entity in the snapshot: ask for the server-side balance.
                data = await self._rest.cash_balance_snapshot(account_id)
                if data.get("errorText"):
                    raise BrokerError(f"Tradovate balance for {acct.get('name')}: {data['errorText']}")
                cash = _dec(data.get("totalCashValue")) or ZERO
                open_pnl = _dec(data.get("openPnL")) or ZERO
                snap = AccountSnapshot(
                    account=self._account_id(acct),
                    balance=cash,
                    equity=_dec(data.get("netLiq")) or cash + open_pnl,
                    day_realized_pnl=_dec(data.get("realizedPnL")) or ZERO,
                    open_pnl=open_pnl,
                )
            out.append(snap)
        return out

    def _in_account(self, account: str | None, account_id: Any) -> bool:
        if account is None:
            return True
        acct = self._replica.accounts.get(account_id)
        return acct is not None and self._account_id(acct) == account

    async def positions(self, account: str | None = None) -> list[Position]:
        out = []
        for p in self._replica.positions.values():
            if not self._in_account(account, p.get("accountId")) or not int(p.get("netPos") or 0):
                continue
            pos = self._map_position(p)
            if pos is not None:
                out.append(pos)
        return out

    async def orders(self, account: str | None = None) -> list[Order]:
        out = []
        for oid, o in sorted(self._replica.orders.items()):
            if self._in_account(account, o.get("accountId")):
                order = self._map_order(oid)
                if order is not None:
                    out.append(order)
        return out

    async def fills(self, account: str | None = None) -> list[Fill]:
        out = []
        for fid in sorted(self._replica.fills):
            fill = self._map_fill(fid)
            if fill is not None and (account is None or fill.account == account):
                out.append(fill)
        return out

    async def find_order(self, account: str, client_order_id: str) -> Order | None:
        """The order sent with ``client_order_id``: from the stream's ``command`` entities if they
        arrived, else from Tradovate's command list (A4: ``command.clOrdId``)."""
        replica = self._replica
        oid = replica.order_by_clord.get(client_order_id)
        if oid is None:
            for command in await self._rest.entity_list("command"):
                replica.put_command(command)
            oid = replica.order_by_clord.get(client_order_id)
        if oid is None:
            return None
        if oid not in replica.orders:
            try:
                await self._load_order(oid)
            except NotFound:
                return None
        order = self._map_order(oid)
        if order is None or order.account != account:
            return None
        return order

    # ================================================================== market data

    async def subscribe_quotes(self, symbols: Iterable[str]) -> None:
        if isinstance(symbols, str):
            symbols = [symbols]
        for symbol in symbols:
            try:
                contract, _ = await self._contract_for_symbol(symbol)
            except _Refused as exc:
                raise BrokerError(str(exc)) from None
            name = str(contract["name"])
            await self._ensure_instrument(contract)
            if name in self._quote_subs:
                continue
            self._quote_subs[name] = contract["id"]
            sock = self._md.socket
            if sock is not None and sock.is_open:
                try:
                    await sock.request("md/subscribeQuote", {"symbol": name})
                except SocketError as exc:
                    self._quote_subs.pop(name, None)
                    raise BrokerError(f"Tradovate quotes for {name}: {exc}") from None

    async def unsubscribe_quotes(self, symbols: Iterable[str]) -> None:
        if isinstance(symbols, str):
            symbols = [symbols]
        for symbol in symbols:
            try:
                name = self._instruments.resolve(symbol).symbol
            except (UnknownSymbol, ModelError) as exc:
                raise BrokerError(str(exc)) from None
            cid = self._quote_subs.pop(name, None)
            if cid is None:
                continue
            self._quotes.pop(cid, None)
            sock = self._md.socket
            if sock is not None and sock.is_open:
                with contextlib.suppress(SocketError):
                    await sock.request("md/unsubscribeQuote", {"symbol": name})

    # ================================================================== orders

    def _local_reject(self, request: OrderRequest, reason: str, *, symbol: str | None = None) -> Order:
        return Order.from_request(
            request,
            order_id=f"local-{request.client_order_id}",
            status=OrderStatus.REJECTED,
            broker=self.name,
            symbol=symbol,
            reject_reason=reason,
        )

    def _vendor_reject(self, request: OrderRequest, result: Mapping[str, Any], symbol: str) -> Order:
        reason = failure_words(result.get("failureReason"), result.get("failureText") or result.get("errorText"))
        order = self._local_reject(request, reason, symbol=symbol)
        return order.evolve(order_id=f"rejected-{request.client_order_id}")

    def _held_reason(self) -> str | None:
        state, detail = self._socket_states["trading"]
        if not self.settings.hold_orders_when_stale or state is ConnectionState.CONNECTED:
            return None
        return (
            f"held: the Tradovate trading stream is {state.value} ({detail or 'no details'}); tterm cannot see "
            "fills or positions right now, so the order was not sent"
        )

    def _check_price(self, inst: Instrument, price: Decimal | None, what: str) -> Decimal | None:
        if price is None:
            return None
        try:
            return inst.round_price(price, "reject")
        except ModelError as exc:
            raise _Refused(f"{what}: {exc}") from None

    def _net_position(self, account_id: int, contract_id: int) -> int:
        return sum(
            int(p.get("netPos") or 0)
            for p in self._replica.positions.values()
            if p.get("accountId") == account_id and p.get("contractId") == contract_id
        )

    async def place(self, request: OrderRequest) -> Order:
        """Send ``request`` (with its bracket as an OSO). Refusals come back as REJECTED orders."""
        try:
            if request.legs:
                raise _Refused("Tradovate in tterm does not take multi-leg orders")
            if request.quantity <= 0:
                raise _Refused(f"quantity must be a positive number of contracts, got {request.quantity}")
            acct = self._vendor_account(request.account)
            if not request.reduce_only and (held := self._held_reason()):
                raise _Refused(held)
            contract, inst = await self._contract_for_symbol(request.symbol)
            await self._ensure_instrument(contract)
            limit = self._check_price(inst, request.limit_price, "limit price")
            stop = self._check_price(inst, request.stop_price, "stop price")
            if request.order_type.needs_limit and limit is None:
                raise _Refused(f"a {request.order_type.value.replace('_', '-')} order needs a limit price")
            if request.order_type.needs_stop and stop is None:
                raise _Refused(f"a {request.order_type.value.replace('_', '-')} order needs a stop price")
            if request.reduce_only:
                net = self._net_position(acct["id"], contract["id"])
                if net == 0 or (net > 0) == (request.side is Side.BUY):
                    raise _Refused("reduce-only: the order would open or add to a position")
                if request.quantity > abs(net):
                    raise _Refused(f"reduce-only: {request.quantity} contracts would reverse the {net:+d} position")
            body: dict[str, Any] = {
                "accountSpec": acct["name"],
                "accountId": acct["id"],
                "clOrdId": request.client_order_id,
                "action": _ACTIONS[request.side],
                "symbol": contract["name"],
                "orderQty": request.quantity,
                "orderType": _ORDER_TYPES[request.order_type],
                "timeInForce": _TIFS[request.tif],
                "isAutomated": self.settings.is_automated,
            }
            if limit is not None and request.order_type.needs_limit:
                body["price"] = _num(limit)
            if stop is not None and request.order_type.needs_stop:
                body["stopPrice"] = _num(stop)
            children: list[tuple[OrderRole, dict[str, Any], Decimal]] = []
            if request.bracket is not None:
                children = self._bracket_children(request, inst, limit, stop)
        except _Refused as exc:
            return self._local_reject(request, str(exc))

        if children:
            body["bracket1"] = children[0][1]
            if len(children) > 1:
                body["bracket2"] = children[1][1]
            send = self._rest.place_oso
        else:
            send = self._rest.place_order
        placed = _Placed(
            client_order_id=request.client_order_id,
            account_id=acct["id"],
            contract_id=contract["id"],
            side=request.side,
            quantity=request.quantity,
            order_type=request.order_type,
            limit_price=limit,
            stop_price=stop,
            tif=request.tif,
            source=request.source,
        )
        result, existing = await self._send_new(send, body, request)
        if existing is not None:
            return existing
        assert result is not None
        oid = result.get("orderId")
        if not isinstance(oid, int):
            return self._vendor_reject(request, result, inst.symbol)
        self._remember(oid, placed)
        for key, (role, child, price) in zip(("oso1Id", "oso2Id"), children, strict=False):
            child_id = result.get(key)
            if isinstance(child_id, int):
                child_type = OrderType.LIMIT if role is OrderRole.TAKE_PROFIT else OrderType.STOP
                self._remember(
                    child_id,
                    _Placed(
                        client_order_id=str(child["clOrdId"]),
                        account_id=acct["id"],
                        contract_id=contract["id"],
                        side=request.side.opposite,
                        quantity=request.quantity,
                        order_type=child_type,
                        limit_price=price if role is OrderRole.TAKE_PROFIT else None,
                        stop_price=price if role is OrderRole.STOP_LOSS else None,
                        tif=placed.tif,
                        role=role,
                        parent_id=oid,
                        source=request.source,
                    ),
                )
                self._publish_order(child_id)
        return self._order_now(oid)

    def _bracket_children(
        self, request: OrderRequest, inst: Instrument, limit: Decimal | None, stop: Decimal | None
    ) -> list[tuple[OrderRole, dict[str, Any], Decimal]]:
        """The OSO take-profit (limit) and stop-loss (stop) orders, priced from the entry."""
        bracket = request.bracket
        assert bracket is not None
        if request.order_type is OrderType.MARKET:
            quote = self.last_quote(inst.symbol)
            ref = None
            if quote is not None:
                ref = quote.ask if request.side is Side.BUY else quote.bid
                ref = ref if ref is not None else quote.last
            needs_ref = bracket.take_profit_ticks is not None or bracket.stop_loss_ticks is not None
            if ref is None and needs_ref:
                raise _Refused(
                    f"no {inst.symbol} quote to place a bracket in ticks from a market entry; subscribe to its "
                    "quotes or give the bracket as prices"
                )
        else:
            ref = limit if request.order_type is OrderType.LIMIT else (limit or stop)
        tp, sl = bracket.resolve(ref if ref is not None else ZERO, request.side, inst)
        tif = _TIFS[request.tif if request.tif in (TimeInForce.DAY, TimeInForce.GTC) else TimeInForce.DAY]
        action = _ACTIONS[request.side.opposite]
        out: list[tuple[OrderRole, dict[str, Any], Decimal]] = []
        if tp is not None:
            tp = self._check_price(inst, tp, "take-profit")
            assert tp is not None
            if ref is not None and (tp - ref) * request.side.sign <= 0:
                raise _Refused(f"the take-profit {tp} is not beyond the entry {ref} in the trade's favour")
            child = {"action": action, "clOrdId": f"{request.client_order_id}-tp", "orderType": "Limit"}
            out.append((OrderRole.TAKE_PROFIT, {**child, "price": _num(tp), "timeInForce": tif}, tp))
        if sl is not None:
            sl = self._check_price(inst, sl, "stop-loss")
            assert sl is not None
            if ref is not None and (ref - sl) * request.side.sign <= 0:
                raise _Refused(f"the stop-loss {sl} is not beyond the entry {ref} against the trade")
            child = {"action": action, "clOrdId": f"{request.client_order_id}-sl", "orderType": "Stop"}
            out.append((OrderRole.STOP_LOSS, {**child, "stopPrice": _num(sl), "timeInForce": tif}, sl))
        return out

    async def _send_new(
        self,
        send: Callable[[Mapping[str, Any]], Any],
        body: Mapping[str, Any],
        request: OrderRequest,
    ) -> tuple[dict[str, Any] | None, Order | None]:
        """Send a new order; after an unanswered attempt, look the client order id up before resending."""
        attempts = self.settings.place_attempts
        for attempt in range(1, attempts + 1):
            try:
                return await send(body), None
            except ConnectionFailed as exc:
                if attempt == attempts:
                    raise
                if exc.maybe_sent:
                    log.warning(
                        "order %s: no answer from Tradovate (%s); checking whether it arrived",
                        request.client_order_id,
                        exc,
                    )
                    # A reply may be only late: give the stream a moment to report the order.
                    await self._wait_changed(lambda: request.client_order_id in self._replica.order_by_clord)
                    existing = await self.find_order(request.account, request.client_order_id)
                    if existing is not None:
                        return None, existing
                log.warning(
                    "order %s: not at Tradovate; sending again (attempt %d)", request.client_order_id, attempt + 1
                )
        raise BrokerError("unreachable")  # pragma: no cover

    def _remember(self, oid: int, placed: _Placed) -> None:
        self._placed[oid] = placed
        self._roles[oid] = (placed.role, placed.parent_id)
        self._replica.order_by_clord.setdefault(placed.client_order_id, oid)
        self._replica.clord_by_order.setdefault(oid, placed.client_order_id)

    def _order_now(self, oid: int) -> Order:
        """The order as the stream last described it, or as acknowledged if the stream has not yet."""
        order = self._map_order(oid)
        if order is not None:
            return order
        placed = self._placed[oid]
        acct = self._replica.accounts[placed.account_id]
        contract = self._replica.contracts[placed.contract_id]
        inst = self._instrument_of(contract)
        return Order(
            order_id=str(oid),
            client_order_id=placed.client_order_id,
            account=self._account_id(acct),
            symbol=inst.symbol if inst else str(contract.get("name")),
            side=placed.side,
            quantity=placed.quantity,
            order_type=placed.order_type,
            status=OrderStatus.PENDING if placed.role is not OrderRole.ENTRY else OrderStatus.WORKING,
            limit_price=placed.limit_price,
            stop_price=placed.stop_price,
            tif=placed.tif,
            role=placed.role,
            parent_id=str(placed.parent_id) if placed.parent_id is not None else None,
            source=placed.source,
            broker=self.name,
        )

    async def _wait_changed(self, done: Callable[[], bool], wait: float | None = None) -> bool:
        """Wait (up to ``ack_wait``) until ``done()`` is true after a stream update."""
        wait = self.settings.ack_wait if wait is None else wait
        if done():
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            left = deadline - loop.time()
            if left <= 0:
                return done()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)
            if done():
                return True

    async def _known_order(self, account: str, order_id: str) -> tuple[int, Order]:
        try:
            oid = int(order_id)
        except ValueError:
            raise UnknownOrder(f"{order_id!r} is not a Tradovate order id") from None
        if oid not in self._replica.orders:
            try:
                await self._load_order(oid)
            except NotFound:
                raise UnknownOrder(f"Tradovate has no order {order_id}") from None
        order = self._map_order(oid)
        if order is None or order.account != account:
            raise UnknownOrder(f"order {order_id} is not in account {account}")
        return oid, order

    async def modify(
        self,
        account: str,
        order_id: str,
        *,
        quantity: int | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> Order:
        """Change a working order. A refusal returns the order unchanged with ``reject_reason`` set."""
        oid, order = await self._known_order(account, order_id)
        if not order.is_open:
            return order.evolve(reject_reason=f"cannot modify: the order is already {order.status.value}")
        inst = self._instruments.resolve(order.symbol)
        try:
            if quantity is not None and quantity <= 0:
                raise _Refused(f"quantity must be positive, got {quantity}")
            if limit_price is not None and not order.order_type.needs_limit:
                raise _Refused(f"a {order.order_type.value} order has no limit price")
            if stop_price is not None and not order.order_type.needs_stop:
                raise _Refused(f"a {order.order_type.value} order has no stop price")
            limit = self._check_price(inst, limit_price, "limit price")
            stop = self._check_price(inst, stop_price, "stop price")
        except _Refused as exc:
            return order.evolve(reject_reason=str(exc))
        version = self._replica.versions.get(oid, {})
        new_qty = quantity if quantity is not None else order.quantity
        new_limit = limit if limit is not None else order.limit_price
        new_stop = stop if stop is not None else order.stop_price
        # A5.2: quantity and type must be sent even when only a price changes.
        body: dict[str, Any] = {
            "orderId": oid,
            "orderQty": new_qty,
            "orderType": version.get("orderType") or _ORDER_TYPES[order.order_type],
            "isAutomated": self.settings.is_automated,
        }
        if order.order_type.needs_limit and new_limit is not None:
            body["price"] = _num(new_limit)
        if order.order_type.needs_stop and new_stop is not None:
            body["stopPrice"] = _num(new_stop)
        if version.get("timeInForce"):
            body["timeInForce"] = version["timeInForce"]
        result = await self._rest.modify_order(body)
        if not isinstance(result.get("commandId"), int):
            reason = f"modify refused: {failure_words(result.get('failureReason'), result.get('failureText'))}"
            self.emit(Notice(level="warning", text=f"order {order_id}: {reason}", account=account, source=self.name))
            return order.evolve(reject_reason=reason)
        if oid in self._placed:
            p = self._placed[oid]
            p.quantity, p.limit_price, p.stop_price = new_qty, new_limit, new_stop

        def applied() -> bool:
            now = self._map_order(oid)
            return now is not None and (
                not now.is_open
                or (now.quantity == new_qty and now.limit_price == new_limit and now.stop_price == new_stop)
            )

        if await self._wait_changed(applied):
            current = self._map_order(oid)
            assert current is not None
            return current
        return order.evolve(quantity=new_qty, limit_price=new_limit, stop_price=new_stop)

    async def cancel(self, account: str, order_id: str) -> Order:
        """Cancel a working order; waits briefly for Tradovate to confirm it."""
        oid, order = await self._known_order(account, order_id)
        if not order.is_open:
            return order
        result = await self._rest.cancel_order({"orderId": oid, "isAutomated": self.settings.is_automated})
        if not isinstance(result.get("commandId"), int):
            reason = f"cancel refused: {failure_words(result.get('failureReason'), result.get('failureText'))}"
            current = self._map_order(oid) or order
            if current.is_open:
                text = f"order {order_id}: {reason}"
                self.emit(Notice(level="warning", text=text, account=account, source=self.name))
                return current.evolve(reject_reason=reason)
            return current

        def gone() -> bool:
            now = self._map_order(oid)
            return now is not None and not now.is_open

        await self._wait_changed(gone)
        return self._map_order(oid) or order

    async def place_oco(self, first: OrderRequest, second: OrderRequest) -> list[Order]:
        """Two orders that cancel each other (``order/placeoco``), e.g. a target and a stop on an open
        position. Both must be for the same account and contract."""
        if first.account != second.account or first.symbol != second.symbol:
            return [
                self._local_reject(r, "both orders of an OCO pair must be for the same account and symbol")
                for r in (first, second)
            ]
        if first.bracket is not None or second.bracket is not None:
            return [self._local_reject(r, "an OCO order cannot carry its own bracket") for r in (first, second)]
        try:
            acct = self._vendor_account(first.account)
            if held := self._held_reason():
                raise _Refused(held)
            contract, inst = await self._contract_for_symbol(first.symbol)
            bodies = []
            for r in (first, second):
                if r.quantity <= 0:
                    raise _Refused(f"quantity must be positive, got {r.quantity}")
                limit = self._check_price(inst, r.limit_price, "limit price")
                stop = self._check_price(inst, r.stop_price, "stop price")
                if r.order_type.needs_limit and limit is None:
                    raise _Refused("a limit order needs a limit price")
                if r.order_type.needs_stop and stop is None:
                    raise _Refused("a stop order needs a stop price")
                b: dict[str, Any] = {
                    "action": _ACTIONS[r.side],
                    "clOrdId": r.client_order_id,
                    "orderType": _ORDER_TYPES[r.order_type],
                    "timeInForce": _TIFS[r.tif],
                }
                if limit is not None and r.order_type.needs_limit:
                    b["price"] = _num(limit)
                if stop is not None and r.order_type.needs_stop:
                    b["stopPrice"] = _num(stop)
                bodies.append((r, b, limit, stop))
        except _Refused as exc:
            return [self._local_reject(r, str(exc)) for r in (first, second)]
        (r1, b1, l1, s1), (r2, b2, l2, s2) = bodies
        body = {
            "accountSpec": acct["name"],
            "accountId": acct["id"],
            "symbol": contract["name"],
            "orderQty": r1.quantity,
            "isAutomated": self.settings.is_automated,
            **b1,
            # A5.5: the second order is a RestrainedOrderVersion; it has no quantity of its own.
            "other": b2,
        }
        result, existing = await self._send_new(self._rest.place_oco, body, r1)
        if existing is not None:
            other = await self.find_order(r2.account, r2.client_order_id)
            return [existing, *([other] if other else [])]
        assert result is not None
        oid, other_id = result.get("orderId"), result.get("ocoId")
        if not isinstance(oid, int) or not isinstance(other_id, int):
            return [self._vendor_reject(r, result, inst.symbol) for r in (r1, r2)]
        out = []
        for order_id, r, limit, stop in ((oid, r1, l1, s1), (other_id, r2, l2, s2)):
            self._remember(
                order_id,
                _Placed(
                    client_order_id=r.client_order_id,
                    account_id=acct["id"],
                    contract_id=contract["id"],
                    side=r.side,
                    quantity=r1.quantity,
                    order_type=r.order_type,
                    limit_price=limit,
                    stop_price=stop,
                    tif=r.tif,
                    source=r.source,
                ),
            )
            out.append(self._order_now(order_id))
        return out

    async def flatten(self, account: str, symbol: str | None = None) -> list[Order]:
        """Cancel working orders, then liquidate positions (``order/liquidateposition``), for one
        symbol or all of them."""
        try:
            acct = self._vendor_account(account)
            contract_id = None
            if symbol is not None:
                contract, _ = await self._contract_for_symbol(symbol)
                contract_id = contract["id"]
        except _Refused as exc:
            raise BrokerError(str(exc)) from None
        results: list[Order] = []
        for oid, o in sorted(self._replica.orders.items()):
            if o.get("accountId") != acct["id"] or (contract_id is not None and o.get("contractId") != contract_id):
                continue
            mapped = self._map_order(oid)
            if mapped is not None and mapped.is_open:
                with contextlib.suppress(UnknownOrder):
                    results.append(await self.cancel(account, str(oid)))
        for p in list(self._replica.positions.values()):
            net = int(p.get("netPos") or 0)
            if p.get("accountId") != acct["id"] or not net:
                continue
            if contract_id is not None and p.get("contractId") != contract_id:
                continue
            results.append(await self._liquidate(acct, p, net))
        return results

    async def _liquidate(self, acct: Mapping[str, Any], p: Mapping[str, Any], net: int) -> Order:
        contract = self._replica.contracts[p["contractId"]]
        inst = self._instrument_of(contract)
        symbol = inst.symbol if inst is not None else str(contract.get("name"))
        request = OrderRequest(
            account=self._account_id(acct),
            symbol=symbol,
            side=Side.SELL if net > 0 else Side.BUY,
            quantity=abs(net),
            reduce_only=True,
            source=OrderSource.RISK,
        )
        result = await self._rest.liquidate_position(
            {
                "accountId": acct["id"],
                "contractId": p["contractId"],
                "admin": False,
                "isAutomated": self.settings.is_automated,
            }
        )
        oid = result.get("orderId")
        if not isinstance(oid, int):
            order = self._vendor_reject(request, result, symbol)
            self.emit(
                Notice(
                    level="error",
                    text=f"Tradovate refused to liquidate {symbol} in {order.account}: {order.reject_reason}",
                    account=order.account,
                    source=self.name,
                )
            )
            return order
        self._remember(
            oid,
            _Placed(
                client_order_id=request.client_order_id,
                account_id=acct["id"],
                contract_id=p["contractId"],
                side=request.side,
                quantity=request.quantity,
                order_type=OrderType.MARKET,
                limit_price=None,
                stop_price=None,
                tif=TimeInForce.DAY,
                source=OrderSource.RISK,
            ),
        )
        return self._order_now(oid)

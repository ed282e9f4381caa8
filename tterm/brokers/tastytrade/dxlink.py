"""DXLink, dxFeed's market-data websocket as Tastytrade serves it (B8).

The address and a 24-hour token come from ``GET /api-quote-tokens``. Then, strictly in order
(TT-SDK sends AUTH only after ``AUTH_STATE UNAUTHORIZED`` and is ready on ``AUTHORIZED``)::

    SETUP -> SETUP, AUTH_STATE UNAUTHORIZED -> AUTH -> AUTH_STATE AUTHORIZED
    -> CHANNEL_REQUEST (odd channel, FEED) -> CHANNEL_OPENED -> FEED_SETUP -> FEED_CONFIG
    -> FEED_SUBSCRIPTION add/remove -> FEED_DATA ...

Two channels: :data:`MARKET` (Quote, Trade, Summary, Greeks) and :data:`CANDLES` (Candle). Data
is COMPACT: ``[type, [v1, v2, ...], type, [...]]``, records laid end to end in the field order
the server echoed in FEED_CONFIG (B8.3: a client should use that echo, not its own request);
FULL records (objects) are read too. ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` mean no value.
``KEEPALIVE`` goes every ``keepalive`` seconds (TT-SDK: 30 s within a 60 s timeout). A record
that does not fit is counted and skipped, never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect

from tterm import __version__
from tterm.core.broker import AuthError, BrokerError
from tterm.core.redact import RedactingLogger, Redactor

log = logging.getLogger(__name__)
_wire_log = logging.getLogger("tterm.brokers.tastytrade.dxlink.wire")

MARKET, CANDLES = 1, 3
#: B8.4: the fields asked for, per event type (the TT-SDK 13.2.3 request order).
FIELDS: dict[str, list[str]] = {
    "Quote": ["eventSymbol", "eventTime", "sequence", "timeNanoPart", "bidTime", "bidExchangeCode", "askTime",
              "askExchangeCode", "bidPrice", "askPrice", "bidSize", "askSize"],
    "Trade": ["eventSymbol", "eventTime", "time", "timeNanoPart", "sequence", "exchangeCode", "dayId",
              "tickDirection", "extendedTradingHours", "price", "change", "size", "dayVolume", "dayTurnover"],
    "Summary": ["eventSymbol", "eventTime", "dayId", "dayClosePriceType", "prevDayId", "prevDayClosePriceType",
                "openInterest", "dayOpenPrice", "dayHighPrice", "dayLowPrice", "dayClosePrice",
                "prevDayClosePrice", "prevDayVolume"],
    "Greeks": ["eventSymbol", "eventTime", "eventFlags", "index", "time", "sequence", "price", "volatility",
               "delta", "gamma", "theta", "rho", "vega"],
    "Candle": ["eventSymbol", "eventTime", "eventFlags", "index", "time", "sequence", "count", "volume", "vwap",
               "bidVolume", "askVolume", "impVolatility", "openInterest", "open", "high", "low", "close"],
}  # fmt: skip
CHANNEL_TYPES = {MARKET: ("Quote", "Trade", "Summary", "Greeks"), CANDLES: ("Candle",)}
SUBSCRIPTION_CHUNK = 200
NOT_A_NUMBER = frozenset({"NaN", "Infinity", "-Infinity", "nan", "inf", "-inf"})


class DXLinkError(BrokerError):
    """The DXLink server refused a step or did not answer it."""


EventHandler = Callable[[str, dict[str, Any]], None]


def number(value: Any) -> float | None:
    """A dxFeed number: None for NaN, infinities, text and nulls."""
    if value is None or isinstance(value, bool) or (isinstance(value, str) and value in NOT_A_NUMBER):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def decode(data: Any, fields: dict[str, list[str]]) -> tuple[list[tuple[str, dict[str, Any]]], int]:
    """``FEED_DATA.data`` as ``(event type, record)`` pairs, and how many pieces were skipped."""
    out: list[tuple[str, dict[str, Any]]] = []
    skipped = 0
    if not isinstance(data, list):
        return out, 1
    if data and all(isinstance(d, dict) for d in data):  # FULL
        for rec in data:
            kind = rec.get("eventType")
            if isinstance(kind, str) and isinstance(rec.get("eventSymbol"), str):
                out.append((kind, rec))
            else:
                skipped += 1
        return out, skipped
    i = 0
    while i + 1 < len(data):
        kind, flat = data[i], data[i + 1]
        i += 2
        names = fields.get(kind) if isinstance(kind, str) else None
        if not names or not isinstance(flat, list):
            skipped += 1
            continue
        width = len(names)
        if len(flat) % width:
            skipped += 1  # a short record: drop the whole batch of this type rather than misalign
            continue
        for start in range(0, len(flat), width):
            rec = dict(zip(names, flat[start : start + width], strict=True))
            if isinstance(rec.get("eventSymbol"), str):
                out.append((kind, rec))
            else:
                skipped += 1
    if i < len(data):
        skipped += 1
    return out, skipped


class DXLinkSocket:
    """One DXLink connection: the handshake, two feed channels, subscriptions, keepalives."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        redactor: Redactor,
        on_event: EventHandler,
        keepalive: float = 30.0,
        timeout: int = 60,
        aggregation: float = 0.1,
        connect_timeout: float = 10.0,
        close_timeout: float = 2.0,
        user_agent: str | None = None,
        step_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self._token = token
        self._redactor = redactor
        self._on_event = on_event
        self.keepalive = keepalive
        self.timeout = timeout
        self.aggregation = aggregation
        self.connect_timeout = connect_timeout
        self.close_timeout = close_timeout
        self.user_agent = user_agent
        self.step_timeout = step_timeout
        self._ws: ClientConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._waiters: list[tuple[Callable[[dict[str, Any]], bool], asyncio.Future[dict[str, Any]]]] = []
        self._listeners: list[Callable[[], None]] = []
        self.fields: dict[int, dict[str, list[str]]] = {}
        self.closed = asyncio.Event()
        self.close_reason = ""
        self.skipped = 0
        self.errors: list[dict[str, Any]] = []
        #: Called once when the socket has closed (timers tied to this connection).
        self.closed_hooks: list[Callable[[], Any]] = []

    def add_frame_listener(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    @property
    def is_open(self) -> bool:
        return self._ws is not None and not self.closed.is_set()

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Connect, set up, authorize, open both channels; AuthError when the token is refused."""
        try:
            self._ws = await connect(
                self.url,
                open_timeout=self.connect_timeout,
                close_timeout=self.close_timeout,
                max_size=None,
                user_agent_header=self.user_agent or websockets.asyncio.client.USER_AGENT,
                logger=RedactingLogger(_wire_log, self._redactor),
            )
        except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
            raise DXLinkError(f"DXLink: could not connect ({type(exc).__name__})") from None
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._read(), name="dxlink-read"))
        try:
            unauthorized = self._expect(lambda m: m.get("type") == "AUTH_STATE", "AUTH_STATE")
            setup = {"type": "SETUP", "channel": 0, "keepaliveTimeout": self.timeout,
                     "acceptKeepaliveTimeout": self.timeout, "version": f"0.1-tterm/{__version__}"}  # fmt: skip
            await self._send(setup)
            state = await self._wait(unauthorized, "AUTH_STATE after SETUP")
            if state.get("state") != "AUTHORIZED":
                authorized = self._expect(
                    lambda m: m.get("type") == "AUTH_STATE" and m.get("state") == "AUTHORIZED", "AUTHORIZED"
                )
                await self._send({"type": "AUTH", "channel": 0, "token": self._token})
                await self._wait(authorized, "AUTH_STATE AUTHORIZED")
            for channel, types in CHANNEL_TYPES.items():
                await self._open_channel(channel, types)
        except BaseException:
            await self.close("handshake failed")
            raise
        self._tasks.append(loop.create_task(self._keepalive(), name="dxlink-keepalive"))

    async def _open_channel(self, channel: int, types: tuple[str, ...]) -> None:
        opened = self._expect(lambda m: m.get("type") == "CHANNEL_OPENED" and m.get("channel") == channel, "CHANNEL")
        await self._send({"type": "CHANNEL_REQUEST", "channel": channel, "service": "FEED",
                          "parameters": {"contract": "AUTO"}})  # fmt: skip
        await self._wait(opened, f"CHANNEL_OPENED {channel}")
        config = self._expect(lambda m: m.get("type") == "FEED_CONFIG" and m.get("channel") == channel, "CONFIG")
        await self._send({"type": "FEED_SETUP", "channel": channel, "acceptAggregationPeriod": self.aggregation,
                          "acceptDataFormat": "COMPACT",
                          "acceptEventFields": {t: FIELDS[t] for t in types}})  # fmt: skip
        got = await self._wait(config, f"FEED_CONFIG {channel}")
        echoed = got.get("eventFields")
        fields = {t: list(FIELDS[t]) for t in types}
        if isinstance(echoed, dict):
            for kind, names in echoed.items():
                if isinstance(names, list) and all(isinstance(n, str) for n in names):
                    fields[kind] = names  # B8.3: records follow the server's order
        self.fields[channel] = fields

    async def close(self, reason: str = "closed by tterm") -> None:
        if not self.close_reason:
            self.close_reason = reason
        ws = self._ws
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(), self.close_timeout + 0.5)
            except (TimeoutError, OSError, websockets.exceptions.WebSocketException):
                if ws.transport is not None:
                    ws.transport.abort()
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._finish(self.close_reason)

    def _finish(self, reason: str) -> None:
        if not self.close_reason:
            self.close_reason = reason
        waiters, self._waiters = self._waiters, []
        for _, fut in waiters:
            if not fut.done():
                fut.set_exception(DXLinkError(f"DXLink closed: {self.close_reason}"))
                fut.exception()
        if not self.closed.is_set():
            hooks, self.closed_hooks = self.closed_hooks, []
            for hook in hooks:
                hook()
        self.closed.set()

    # ------------------------------------------------------------------ subscriptions

    async def subscribe(
        self, channel: int, add: list[dict[str, Any]] | None = None, remove: list[dict[str, Any]] | None = None
    ) -> None:
        """FEED_SUBSCRIPTION in pieces of :data:`SUBSCRIPTION_CHUNK` (a message too large closes the
        socket with 1009, B8.2)."""
        for key, entries in (("remove", remove or []), ("add", add or [])):
            for i in range(0, len(entries), SUBSCRIPTION_CHUNK):
                chunk = entries[i : i + SUBSCRIPTION_CHUNK]
                await self._send({"type": "FEED_SUBSCRIPTION", "channel": channel, key: chunk})

    # ------------------------------------------------------------------ plumbing

    def _expect(self, pred: Callable[[dict[str, Any]], bool], what: str) -> asyncio.Future[dict[str, Any]]:
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.append((pred, fut))
        return fut

    async def _wait(self, fut: asyncio.Future[dict[str, Any]], what: str) -> dict[str, Any]:
        try:
            async with asyncio.timeout(self.step_timeout):
                return await fut
        except TimeoutError:
            raise DXLinkError(f"DXLink did not answer in time (waiting for {what})") from None
        finally:
            self._waiters = [(p, f) for p, f in self._waiters if f is not fut]

    async def _send(self, message: dict[str, Any]) -> None:
        ws = self._ws
        if ws is None or self.closed.is_set():
            raise DXLinkError("DXLink is not connected")
        try:
            await ws.send(json.dumps(message))
        except websockets.exceptions.WebSocketException as exc:
            raise DXLinkError(f"DXLink closed ({type(exc).__name__})") from None

    async def _keepalive(self) -> None:
        while not self.closed.is_set():
            await asyncio.sleep(self.keepalive)
            try:
                await self._send({"type": "KEEPALIVE", "channel": 0})
            except DXLinkError:
                return

    async def _read(self) -> None:
        ws = self._ws
        assert ws is not None
        reason = "connection closed"
        try:
            async for frame in ws:
                for listener in self._listeners:
                    listener()
                self._dispatch(frame)
        except websockets.exceptions.ConnectionClosed as exc:
            reason = f"connection closed ({exc.rcvd.code if exc.rcvd else 'no close frame'})"
        except (OSError, websockets.exceptions.WebSocketException) as exc:
            reason = f"connection lost ({type(exc).__name__})"
        self._finish(self.close_reason or reason)

    def _dispatch(self, frame: str | bytes) -> None:
        try:
            msg = json.loads(frame)
        except ValueError:
            self.skipped += 1
            log.warning("DXLink: a frame that is not JSON was skipped")
            return
        if not isinstance(msg, dict):
            self.skipped += 1
            return
        kind = msg.get("type")
        for pred, fut in list(self._waiters):
            if not fut.done() and pred(msg):
                fut.set_result(msg)
                return
        if kind == "FEED_DATA":
            channel = msg.get("channel")
            events, skipped = decode(msg.get("data"), self.fields.get(channel, {}) if isinstance(channel, int) else {})
            if skipped:
                self.skipped += skipped
                log.warning("DXLink: %d piece(s) of FEED_DATA did not fit the configured fields; skipped", skipped)
            for event_type, rec in events:
                try:
                    self._on_event(event_type, rec)
                except Exception:  # a bad record must never end the stream
                    self.skipped += 1
                    log.exception("DXLink: a %s event could not be applied; skipped", event_type)
        elif kind == "ERROR":
            self.errors.append(msg)
            text = self._redactor.scrub(f"{msg.get('error')}: {msg.get('message')}")
            log.warning("DXLink error: %s", text)
            if msg.get("error") in ("UNAUTHORIZED", "TIMEOUT"):
                for _, fut in self._waiters:
                    if not fut.done():
                        fut.set_exception(AuthError(f"DXLink refused the quote token ({text})"))
                        fut.exception()
                self.close_reason = f"DXLink {text}"
        elif kind == "AUTH_STATE" and msg.get("state") == "UNAUTHORIZED":
            # The token lapsed mid-session: a new connection gets a new token.
            self.close_reason = "DXLink says the quote token is no longer authorized"
            self._tasks.append(asyncio.get_running_loop().create_task(self.close(self.close_reason)))

"""The fake DXLink market-data endpoint (dxFeed's protocol, as Tastytrade serves it).

Handshake, strictly in this order (reference B8.2; dxFeed's dxLink websocket-client spec):

    C SETUP -> S SETUP, S AUTH_STATE UNAUTHORIZED -> C AUTH -> S AUTH_STATE AUTHORIZED
    -> C CHANNEL_REQUEST (odd channel, service FEED) -> S CHANNEL_OPENED
    -> C FEED_SETUP -> S FEED_CONFIG -> C FEED_SUBSCRIPTION -> S FEED_DATA ...

A message out of order gets ``ERROR`` (``BAD_ACTION``, or ``UNAUTHORIZED`` for a channel before
AUTHORIZED, or a bad token) and the socket is closed: the fake is stricter than a real server
may be, so a client that gets the order wrong finds out here. FEED_SETUP is required before a
subscription (dxLink would apply defaults; TT-SDK always negotiates its fields).

Keepalive: the client's SETUP ``keepaliveTimeout`` (capped by the fake's ``keepalive_timeout``)
is how long the server waits for any message before it sends ``ERROR TIMEOUT`` and closes. The
server sends ``KEEPALIVE`` itself when it has been quiet for ``keepalive_interval``.

FEED_CONFIG echoes the requested fields the fake knows for each event type, in the requested
order, and COMPACT ``FEED_DATA`` records follow exactly that order (B8.3). Missing numbers are
the string ``"NaN"``. Candle subscriptions (``SYM{=5m,tho=true}`` with ``fromTime``) get a
snapshot, newest bar first as dxFeed sends time series, flagged SNAPSHOT_BEGIN on the first and
SNAPSHOT_END (or SNAPSHOT_SNIP when the history was cut) on the last, then live updates.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from tests.fakes.tastytrade.market import Bar, Instrument, Market, ms, parse_candle_symbol

if TYPE_CHECKING:
    from tests.fakes.tastytrade.server import FakeTastytrade

JSON = dict[str, Any]
SNAPSHOT_BEGIN, SNAPSHOT_END, SNAPSHOT_SNIP = 0x4, 0x8, 0x10

_FIELD_NAMES = {
    "Quote": "eventSymbol eventType eventTime sequence timeNanoPart bidTime bidExchangeCode askTime askExchangeCode "
    "bidPrice askPrice bidSize askSize",
    "Trade": "eventSymbol eventType eventTime time timeNanoPart sequence exchangeCode dayId tickDirection "
    "extendedTradingHours price change size dayVolume dayTurnover",
    "Summary": "eventSymbol eventType eventTime dayId dayClosePriceType prevDayId prevDayClosePriceType openInterest "
    "dayOpenPrice dayHighPrice dayLowPrice dayClosePrice prevDayClosePrice prevDayVolume",
    "Greeks": "eventSymbol eventType eventTime eventFlags index time sequence price volatility delta gamma theta rho "
    "vega",
    "Candle": "eventSymbol eventType eventTime eventFlags index time sequence count volume vwap bidVolume askVolume "
    "impVolatility openInterest open high low close",
    "Profile": "eventSymbol eventType eventTime description shortSaleRestriction tradingStatus statusReason "
    "haltStartTime haltEndTime highLimitPrice lowLimitPrice high52WeekPrice low52WeekPrice",
}
#: The dxFeed fields the fake fills in, per event type (TT-SDK 13.2.3 asks for a subset of each).
FIELDS: dict[str, list[str]] = {kind: names.split() for kind, names in _FIELD_NAMES.items()}
# Types TT-SDK opens channels for that the fake does not model: accepted, configured with no
# fields, never sent data.
SILENT_TYPES = {"TheoPrice", "TimeAndSale", "Underlying"}
CONTRACTS = {"AUTO", "TICKER", "STREAM", "HISTORY"}


def _num(value: Decimal | float | int | None) -> float | int | str:
    if value is None:
        return "NaN"
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    f = float(value)
    return "NaN" if math.isnan(f) else f


@dataclass
class Channel:
    id: int
    contract: str
    configured: bool = False
    data_format: str = "FULL"
    fields: dict[str, list[str]] = field(default_factory=dict)
    subs: set[tuple[str, str]] = field(default_factory=set)  # (type, symbol)
    candle_from: dict[str, int] = field(default_factory=dict)


@dataclass
class Session:
    ws: web.WebSocketResponse
    request: web.Request
    state: str = "new"  # new -> setup -> authorized
    client_timeout: float = 60.0
    last_received: float = 0.0
    last_sent: float = 0.0
    channels: dict[int, Channel] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closed_reason: str | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)


class DXLink:
    """Serves ``/realtime``; the server calls :meth:`publish` when prices move."""

    def __init__(self, server: FakeTastytrade) -> None:
        self.server = server
        self.sessions: list[Session] = []
        self.messages: list[tuple[str, JSON]] = []  # (direction, message) for assertions
        self.timeouts = 0
        self.errors_sent: list[JSON] = []

    @property
    def market(self) -> Market:
        return self.server.market

    def now(self) -> datetime:
        return self.server.clock.now()

    # ================================================================== socket

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=self.server.dxlink_max_message)
        await ws.prepare(request)
        loop = asyncio.get_running_loop()
        session = Session(ws, request, last_received=loop.time(), last_sent=loop.time())
        session.client_timeout = self.server.keepalive_timeout
        self.sessions.append(session)
        self.server.connections["dxlink"] += 1
        session.tasks.append(loop.create_task(self._watch(session)))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    session.last_received = loop.time()
                    if len(msg.data) > self.server.dxlink_max_message:
                        await ws.close(code=1009, message=b"message too big")
                        break
                    await self._on_text(session, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
                if ws.closed:
                    break
        finally:
            for task in session.tasks:
                task.cancel()
            with contextlib.suppress(ValueError):
                self.sessions.remove(session)
            self.server.changed()
        return ws

    async def _watch(self, session: Session) -> None:
        """Enforce the client's keepalive timeout; send KEEPALIVE when the server has been quiet."""
        loop = asyncio.get_running_loop()
        while not session.ws.closed:
            now = loop.time()
            if now - session.last_received > session.client_timeout:
                self.timeouts += 1
                await self._error(session, 0, "TIMEOUT", f"no message for {session.client_timeout:g} s")
                session.closed_reason = "keepalive timeout"
                await session.ws.close()
                self.server.changed()
                return
            if now - session.last_sent >= self.server.keepalive_interval and session.state != "new":
                await self._send(session, {"type": "KEEPALIVE", "channel": 0})
            await asyncio.sleep(min(self.server.keepalive_interval, session.client_timeout) / 4)

    async def _send(self, session: Session, message: JSON) -> None:
        if self.server.silent_dxlink or session.ws.closed:
            return
        async with session.lock:
            if session.ws.closed:
                return
            with contextlib.suppress(ConnectionError, RuntimeError):
                await session.ws.send_str(json.dumps(message))
                session.last_sent = asyncio.get_running_loop().time()
                self.messages.append(("out", message))

    async def _error(self, session: Session, channel: int, kind: str, message: str) -> None:
        err = {"type": "ERROR", "channel": channel, "error": kind, "message": message}
        self.errors_sent.append(err)
        await self._send(session, err)

    async def _fail(self, session: Session, channel: int, kind: str, message: str) -> None:
        await self._error(session, channel, kind, message)
        session.closed_reason = f"{kind}: {message}"
        await session.ws.close()

    # ================================================================== protocol

    async def _on_text(self, session: Session, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            await self._fail(session, 0, "INVALID_MESSAGE", "not JSON")
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            await self._fail(session, 0, "INVALID_MESSAGE", "a message is an object with a 'type'")
            return
        self.messages.append(("in", msg))
        self.server.changed()
        kind = msg["type"]
        channel = msg.get("channel", 0)
        if not isinstance(channel, int) or isinstance(channel, bool) or channel < 0:
            await self._fail(session, 0, "INVALID_MESSAGE", f"bad channel {channel!r}")
            return
        if kind == "KEEPALIVE":
            return
        if session.state == "new":
            if kind != "SETUP":
                await self._fail(session, 0, "BAD_ACTION", f"{kind} before SETUP")
                return
            await self._setup(session, msg)
            return
        if kind == "SETUP":
            await self._fail(session, 0, "BAD_ACTION", "SETUP sent twice")
            return
        if kind == "AUTH":
            await self._auth(session, msg)
            return
        if session.state != "authorized":
            await self._fail(session, channel, "UNAUTHORIZED", f"{kind} before AUTH_STATE AUTHORIZED")
            return
        handler = {
            "CHANNEL_REQUEST": self._channel_request,
            "CHANNEL_CANCEL": self._channel_cancel,
            "FEED_SETUP": self._feed_setup,
            "FEED_SUBSCRIPTION": self._feed_subscription,
        }.get(kind)
        if handler is None:
            await self._error(session, channel, "INVALID_MESSAGE", f"unknown message type {kind}")
            return
        await handler(session, msg, channel)

    async def _setup(self, session: Session, msg: JSON) -> None:
        version = msg.get("version")
        timeout = msg.get("keepaliveTimeout", 60)
        if not isinstance(version, str) or not version:
            await self._fail(session, 0, "INVALID_MESSAGE", "SETUP needs a version string")
            return
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
            await self._fail(session, 0, "INVALID_MESSAGE", "keepaliveTimeout must be a positive number")
            return
        session.client_timeout = min(float(timeout), self.server.keepalive_timeout)
        accept = msg.get("acceptKeepaliveTimeout", 60)
        server_timeout = accept if isinstance(accept, int | float) and not isinstance(accept, bool) else 60
        session.state = "setup"
        await self._send(
            session,
            {
                "type": "SETUP",
                "channel": 0,
                "keepaliveTimeout": server_timeout,
                "acceptKeepaliveTimeout": session.client_timeout,
                "version": "1.0-fake-dxlink",
            },
        )
        await self._send(session, {"type": "AUTH_STATE", "channel": 0, "state": "UNAUTHORIZED"})

    async def _auth(self, session: Session, msg: JSON) -> None:
        token = msg.get("token")
        if not self.server.valid_quote_token(token):
            await self._fail(session, 0, "UNAUTHORIZED", "the quote token is not valid (expired or unknown)")
            return
        session.state = "authorized"
        await self._send(session, {"type": "AUTH_STATE", "channel": 0, "state": "AUTHORIZED", "userId": "U1001"})

    async def _channel_request(self, session: Session, msg: JSON, channel: int) -> None:
        if channel == 0 or channel % 2 == 0:
            await self._fail(session, 0, "BAD_ACTION", f"channel numbers are odd and positive, not {channel}")
            return
        if msg.get("service") != "FEED":
            await self._fail(session, channel, "BAD_ACTION", f"unknown service {msg.get('service')!r}")
            return
        params = msg.get("parameters") or {}
        contract = params.get("contract", "AUTO") if isinstance(params, dict) else None
        if contract not in CONTRACTS:
            await self._fail(session, channel, "INVALID_MESSAGE", f"unknown contract {contract!r}")
            return
        session.channels[channel] = Channel(channel, contract)
        await self._send(
            session,
            {"type": "CHANNEL_OPENED", "channel": channel, "service": "FEED", "parameters": {"contract": contract}},
        )

    async def _channel_cancel(self, session: Session, msg: JSON, channel: int) -> None:
        if session.channels.pop(channel, None) is None:
            await self._fail(session, channel, "BAD_ACTION", f"channel {channel} is not open")
            return
        await self._send(session, {"type": "CHANNEL_CLOSED", "channel": channel})

    async def _feed_setup(self, session: Session, msg: JSON, channel: int) -> None:
        ch = session.channels.get(channel)
        if ch is None:
            await self._fail(session, channel, "BAD_ACTION", f"FEED_SETUP on channel {channel} before CHANNEL_OPENED")
            return
        fmt = msg.get("acceptDataFormat", ch.data_format)
        if fmt not in ("COMPACT", "FULL"):
            await self._fail(session, channel, "INVALID_MESSAGE", f"acceptDataFormat {fmt!r}")
            return
        accept = msg.get("acceptEventFields", {})
        if not isinstance(accept, dict) or not all(isinstance(v, list) for v in accept.values()):
            await self._fail(session, channel, "INVALID_MESSAGE", "acceptEventFields maps event types to field lists")
            return
        for event_type, wanted in accept.items():
            if event_type in FIELDS:
                known = FIELDS[event_type]
                ch.fields[event_type] = [f for f in wanted if f in known]
            elif event_type in SILENT_TYPES:
                ch.fields[event_type] = []
            else:
                await self._fail(session, channel, "INVALID_MESSAGE", f"unknown event type {event_type}")
                return
        ch.data_format = fmt
        ch.configured = True
        period = msg.get("acceptAggregationPeriod", 0.1)
        await self._send(
            session,
            {
                "type": "FEED_CONFIG",
                "channel": channel,
                "aggregationPeriod": period if isinstance(period, int | float) else 0.1,
                "dataFormat": fmt,
                "eventFields": ch.fields,
            },
        )

    async def _feed_subscription(self, session: Session, msg: JSON, channel: int) -> None:
        ch = session.channels.get(channel)
        if ch is None:
            await self._fail(
                session, channel, "BAD_ACTION", f"FEED_SUBSCRIPTION on channel {channel} before CHANNEL_OPENED"
            )
            return
        if not ch.configured:
            await self._fail(session, channel, "BAD_ACTION", "FEED_SUBSCRIPTION before FEED_SETUP / FEED_CONFIG")
            return
        if msg.get("reset"):
            ch.subs.clear()
            ch.candle_from.clear()
        for entry in msg.get("remove") or []:
            if isinstance(entry, dict):
                ch.subs.discard((str(entry.get("type")), str(entry.get("symbol"))))
        added: list[tuple[str, str]] = []
        for entry in msg.get("add") or []:
            if not isinstance(entry, dict) or not isinstance(entry.get("symbol"), str):
                await self._error(session, channel, "INVALID_MESSAGE", f"bad subscription {entry!r}")
                continue
            event_type = entry.get("type")
            if event_type not in ch.fields:
                await self._error(
                    session, channel, "INVALID_MESSAGE", f"event type {event_type!r} not set up on this channel"
                )
                continue
            if event_type == "Candle":
                if not isinstance(entry.get("fromTime"), int | float):
                    await self._error(session, channel, "INVALID_MESSAGE", "a Candle subscription needs fromTime")
                    continue
                ch.candle_from[entry["symbol"]] = int(entry["fromTime"])
            key = (event_type, entry["symbol"])
            ch.subs.add(key)
            added.append(key)
        self.server.changed()
        for event_type, symbol in added:
            await self._snapshot(session, ch, event_type, symbol)

    # ================================================================== data

    def _resolve(self, event_type: str, symbol: str) -> tuple[Instrument, int | None] | None:
        if event_type == "Candle":
            parsed = parse_candle_symbol(symbol)
            if parsed is None:
                return None
            base, period, _ = parsed
            inst = self.market.by_streamer.get(base)
            return (inst, period) if inst is not None else None
        inst = self.market.by_streamer.get(symbol)
        return (inst, None) if inst is not None else None

    async def _snapshot(self, session: Session, ch: Channel, event_type: str, symbol: str) -> None:
        found = self._resolve(event_type, symbol)
        if found is None or not ch.fields.get(event_type):
            return  # dxFeed sends nothing for a symbol it does not know
        inst, period = found
        if event_type == "Candle":
            assert period is not None
            bars = self.market.history(inst.symbol, period, self.now())
            since = ch.candle_from.get(symbol, 0)
            chosen = [b for b in bars if b.time >= since - since % period]
            snipped = len(chosen) == len(bars) and bars and since < bars[0].time
            events = []
            newest_first = list(reversed(chosen))
            for n, bar in enumerate(newest_first):
                flags = 0
                if n == 0:
                    flags |= SNAPSHOT_BEGIN
                if n == len(newest_first) - 1:
                    flags |= SNAPSHOT_SNIP if snipped else SNAPSHOT_END
                events.append(self._candle(symbol, bar, flags))
            await self._data(session, ch, "Candle", events)
            return
        record = self.record(event_type, inst)
        if record is not None:
            await self._data(session, ch, event_type, [record])

    async def _data(self, session: Session, ch: Channel, event_type: str, events: list[JSON]) -> None:
        if not events:
            return
        fields = ch.fields[event_type]
        if ch.data_format == "COMPACT":
            flat: list[Any] = []
            for ev in events:
                flat.extend(ev.get(f, "NaN") for f in fields)
            data: list[Any] = [event_type, flat]
        else:
            data = [{f: ev.get(f, "NaN") for f in fields} for ev in events]
        await self._send(session, {"type": "FEED_DATA", "channel": ch.id, "data": data})

    def record(self, event_type: str, inst: Instrument) -> JSON | None:
        """One event of ``event_type`` for ``inst`` now, keyed by dxFeed field name."""
        now = self.now()
        stamp = ms(now)
        q = self.market.quote(inst.symbol, now)
        day_id = stamp // 86_400_000
        base: JSON = {"eventSymbol": inst.streamer, "eventType": event_type, "eventTime": stamp}
        if event_type == "Quote":
            base.update(
                sequence=q.change_seq % 1024,
                timeNanoPart=0,
                bidTime=stamp,
                bidExchangeCode="Q",
                askTime=stamp,
                askExchangeCode="Q",
                bidPrice=_num(q.bid),
                askPrice=_num(q.ask),
                bidSize=_num(q.bid_size),
                askSize=_num(q.ask_size),
            )
            return base
        if event_type == "Trade":
            change = None if q.last is None or q.prev_close is None else q.last - q.prev_close
            base.update(
                time=stamp,
                timeNanoPart=0,
                sequence=q.change_seq % 1024,
                exchangeCode="Q",
                dayId=day_id,
                tickDirection="UNDEFINED",
                extendedTradingHours=False,
                price=_num(q.last),
                change=_num(change),
                size=q.last_size,
                dayVolume=_num(q.volume),
                dayTurnover=_num(q.turnover),
            )
            return base
        if event_type == "Summary":
            base.update(
                dayId=day_id,
                dayClosePriceType="REGULAR",
                prevDayId=day_id - 1,
                prevDayClosePriceType="FINAL",
                openInterest=1500 if inst.is_option else 0,
                dayOpenPrice=_num(q.day_open),
                dayHighPrice=_num(q.day_high),
                dayLowPrice=_num(q.day_low),
                dayClosePrice=_num(q.last),
                prevDayClosePrice=_num(q.prev_close),
                prevDayVolume=_num(q.volume),
            )
            return base
        if event_type == "Greeks":
            if not inst.is_option:
                return None
            g = self.market.greeks(inst.symbol, now)
            base.update(
                eventFlags=0,
                index=(stamp // 1000) << 32,
                time=stamp,
                sequence=0,
                price=round(g["price"], 4),
                volatility=g["volatility"],
                delta=round(g["delta"], 6),
                gamma=round(g["gamma"], 6),
                theta=round(g["theta"], 6),
                rho=round(g["rho"], 6),
                vega=round(g["vega"], 6),
            )
            return base
        if event_type == "Profile":
            base.update(
                description=inst.description or inst.symbol,
                shortSaleRestriction="INACTIVE",
                tradingStatus="ACTIVE",
                statusReason="",
                haltStartTime=0,
                haltEndTime=0,
                highLimitPrice="NaN",
                lowLimitPrice="NaN",
                high52WeekPrice="NaN",
                low52WeekPrice="NaN",
            )
            return base
        return None

    def _candle(self, symbol: str, bar: Bar, flags: int) -> JSON:
        return {
            "eventSymbol": symbol,
            "eventType": "Candle",
            "eventTime": 0,
            "eventFlags": flags,
            "index": bar.time << 22,
            "time": bar.time,
            "sequence": 0,
            "count": max(1, bar.volume // 100),
            "volume": bar.volume,
            "vwap": _num((bar.high + bar.low + bar.close) / 3),
            "bidVolume": "NaN",
            "askVolume": "NaN",
            "impVolatility": "NaN",
            "openInterest": "NaN",
            "open": _num(bar.open),
            "high": _num(bar.high),
            "low": _num(bar.low),
            "close": _num(bar.close),
        }

    async def publish(self, changed: Callable[[Instrument], bool]) -> None:
        """Push fresh events to every subscription whose instrument ``changed`` says moved."""
        for session in list(self.sessions):
            if session.state != "authorized":
                continue
            for ch in list(session.channels.values()):
                by_type: dict[str, list[JSON]] = {}
                for event_type, symbol in sorted(ch.subs):
                    found = self._resolve(event_type, symbol)
                    if found is None or not changed(found[0]) or not ch.fields.get(event_type):
                        continue
                    inst, period = found
                    if event_type == "Candle":
                        assert period is not None
                        bars = self.market.history(inst.symbol, period, self.now())
                        event = self._candle(symbol, bars[-1], 0)
                    else:
                        event = self.record(event_type, inst)
                    if event is not None:
                        by_type.setdefault(event_type, []).append(event)
                for event_type, events in by_type.items():
                    await self._data(session, ch, event_type, events)

    async def drop(self) -> None:
        for session in list(self.sessions):
            transport = session.request.transport
            if transport is not None:
                transport.abort()

    async def push_raw(self, message: JSON | str) -> None:
        """Send ``message`` as it is (text, or an object as JSON) to every authorized session."""
        text = message if isinstance(message, str) else json.dumps(message)
        for session in list(self.sessions):
            if session.state == "authorized" and not session.ws.closed:
                async with session.lock:
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await session.ws.send_str(text)

    def subscribed(self, event_type: str, symbol: str) -> bool:
        return any((event_type, symbol) in ch.subs for s in self.sessions for ch in s.channels.values())

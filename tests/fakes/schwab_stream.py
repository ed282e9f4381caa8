"""The fake Schwab streamer (WebSocket): ADMIN LOGIN, LEVELONE_* services, ACCT_ACTIVITY.

Wire shapes from reference part A8 and schwab-py 1.5.1's ``streaming.py`` and tests:

- requests arrive as ``{"requests": [{service, command, requestid, SchwabClientCustomerId,
  SchwabClientCorrelId, parameters}]}``; each gets one ``response`` entry echoing requestid,
  service and command with ``content.code`` 0 on success (what real traffic shows, D1);
- LOGIN comes first and carries the raw access token (no "Bearer ") plus the ids from
  userPreference; anything else first, or a bad token, earns code 3 and a close;
- one streamer per user: a newer login disconnects the older socket with a code 12 ``notify``
  (the text TDA's streamer sent; Schwab's streamer descends from it);
- ``notify`` heartbeats carry epoch milliseconds as a string;
- ``data`` frames carry numeric field ids as strings; the first message for a key is a full
  snapshot with ``delayed``/``assetMainType`` (and for equities ``assetSubType``/``cusip``), later
  ones only the fields that changed. Field ``0`` is not repeated: ``key`` carries the symbol.
- No unsolicited ``response`` frames: schwab-py treats them as errors (A10).
- A logged-in socket stays up when its access token later expires (whether Schwab drops it is
  not documented, D5); a new login needs a live token.
- A socket with no subscriptions is stopped with code 30 when ``idle_close_after`` is set
  (Schwabdev reports about 30 s; off by default so tests choose).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from tests.fakes.schwab_market import (
    NEW_YORK,
    ExpiredSeries,
    Future,
    Market,
    OptionQuote,
    UnknownSymbol,
    ms,
    num,
)

if TYPE_CHECKING:
    from tests.fakes.schwab import FakeSchwab

JSON = dict[str, Any]
MAX_FIELD = {"LEVELONE_EQUITIES": 51, "LEVELONE_OPTIONS": 55, "LEVELONE_FUTURES": 40, "ACCT_ACTIVITY": 3}
NOT_BUILT = {
    "CHART_EQUITY",
    "CHART_FUTURES",
    "NYSE_BOOK",
    "NASDAQ_BOOK",
    "OPTIONS_BOOK",
    "SCREENER_EQUITY",
    "SCREENER_OPTION",
    "LEVELONE_FOREX",
    "LEVELONE_FUTURES_OPTIONS",
}
FAILED = {"SUBS": 22, "UNSUBS": 23, "ADD": 24, "VIEW": 25}
MAX_KEYS = 500
CLOSE_12 = (
    "This Streamer was disconnected because of another connection for this username and password. "
    "Each user may only have one Streamer open at a time."
)


@dataclass
class StreamConn:
    ws: web.WebSocketResponse
    request: web.Request
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    logged_in: bool = False
    closed: bool = False
    fields: dict[str, set[int]] = field(default_factory=dict)
    #: service -> key -> the last values sent for that key (field id -> value)
    sent: dict[str, dict[str, dict[int, Any]]] = field(default_factory=dict)
    activity_key: str | None = None
    seq: int = 0
    requests: list[JSON] = field(default_factory=list)


def _comma(value: Any) -> list[str] | None:
    if not isinstance(value, str):
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


class Streamer:
    """Serves ``/ws``; :meth:`publish` pushes changed quote fields to every subscriber."""

    def __init__(self, fake: FakeSchwab, *, heartbeat_interval: float, idle_close_after: float | None) -> None:
        self.fake = fake
        self.market: Market = fake.market
        self.heartbeat_interval = heartbeat_interval
        #: Close a logged-in socket with no subscriptions after this many seconds (code 30). The
        #: real server does so after about 30 s (Schwabdev; code 30 STOP_STREAMING, S-CONS).
        self.idle_close_after = idle_close_after
        self.conns: list[StreamConn] = []
        self.silent = False
        self.logins = 0
        self.denied = 0
        self.displaced = 0
        self.server_id = "s0635dc6-1"
        self.entitlement = "NP"

    # ------------------------------------------------------------------ socket life

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = StreamConn(ws=ws, request=request)
        self.conns.append(conn)
        beats = asyncio.get_running_loop().create_task(self._heartbeats(conn))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                await self._on_text(conn, msg.data)
                self.fake.notify()
                if conn.closed:
                    break
        finally:
            beats.cancel()
            conn.closed = True
            if conn in self.conns:
                self.conns.remove(conn)
            self.fake.notify()
        return ws

    async def _heartbeats(self, conn: StreamConn) -> None:
        loop = asyncio.get_running_loop()
        idle_since = loop.time()
        while not conn.closed:
            await asyncio.sleep(self.heartbeat_interval)
            if not conn.logged_in:
                idle_since = loop.time()
                continue
            if any(conn.sent.values()) or conn.activity_key is not None:
                idle_since = loop.time()
            elif self.idle_close_after is not None and loop.time() - idle_since >= self.idle_close_after:
                await self._send(conn, {"notify": [{"service": "ADMIN", "timestamp": ms(self.fake.clock.now()),
                                                    "content": {"code": 30, "msg": "Stop streaming due to empty "
                                                                "subscription"}}]})  # fmt: skip
                await self._close(conn)
                return
            if not self.silent:
                await self._send(conn, {"notify": [{"heartbeat": str(ms(self.fake.clock.now()))}]})

    async def _send(self, conn: StreamConn, frame: JSON) -> None:
        if conn.closed or self.silent:
            return
        async with conn.lock:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.ws.send_str(json.dumps(frame))

    async def _close(self, conn: StreamConn) -> None:
        conn.closed = True
        conn.logged_in = False
        with contextlib.suppress(Exception):
            await conn.ws.close()

    def connections(self) -> int:
        return sum(1 for c in self.conns if c.logged_in)

    async def drop(self) -> None:
        """Cut every streamer socket without a close frame (a network drop)."""
        for conn in list(self.conns):
            transport = conn.request.transport
            if transport is not None:
                transport.abort()
            conn.closed = True

    # ------------------------------------------------------------------ requests

    def _response(self, conn: StreamConn, req: JSON, code: int, msg: str) -> JSON:
        return {
            "service": req.get("service"),
            "command": req.get("command"),
            "requestid": str(req.get("requestid")),
            "SchwabClientCorrelId": self.fake.correl_id,
            "timestamp": ms(self.fake.clock.now()),
            "content": {"code": code, "msg": msg},
        }

    async def _on_text(self, conn: StreamConn, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            frame = None
        requests = frame.get("requests") if isinstance(frame, dict) else None
        if isinstance(frame, dict) and requests is None and "service" in frame:
            requests = [frame]  # a lone request object (the guide's "One Request" example)
        if not isinstance(requests, list) or not all(isinstance(r, dict) for r in requests):
            await self._send(
                conn,
                {
                    "notify": [
                        {
                            "service": "ADMIN",
                            "timestamp": ms(self.fake.clock.now()),
                            "content": {"code": 21, "msg": 'Bad command format: expected {"requests": [...]}'},
                        }
                    ]
                },
            )
            return
        replies: list[JSON] = []
        snapshots: list[JSON] = []
        close_after = False
        for req in requests:
            conn.requests.append(req)
            code, msg, snap, close = self._apply(conn, req)
            replies.append(self._response(conn, req, code, msg))
            snapshots.extend(snap)
            close_after = close_after or close
            if close:
                break
        await self._send(conn, {"response": replies})
        if snapshots:
            await self._send(conn, {"data": snapshots})
        if close_after:
            await self._close(conn)

    def _apply(self, conn: StreamConn, req: JSON) -> tuple[int, str, list[JSON], bool]:
        """(code, msg, data entries to send after the response, close the socket)."""
        service, command = req.get("service"), req.get("command")
        if "requestid" not in req or not isinstance(service, str) or not isinstance(command, str):
            return 21, "Bad command format: service, command and requestid are required", [], False
        if not conn.logged_in:
            if service != "ADMIN" or command != "LOGIN":
                self.denied += 1
                return 3, "Login Denied.: the first request must be ADMIN LOGIN", [], True
            return self._login(conn, req)
        if (
            req.get("SchwabClientCustomerId") != self.fake.customer_id
            or req.get("SchwabClientCorrelId") != self.fake.correl_id
        ):
            return (
                21,
                "Bad command format: SchwabClientCustomerId/SchwabClientCorrelId do not match the login",
                [],
                False,
            )
        if service == "ADMIN":
            if command == "LOGOUT":
                return 0, "LOGOUT command succeeded", [], True
            if command == "LOGIN":
                return 21, "Already logged in", [], False
            return 21, f"Unknown ADMIN command {command}", [], False
        if service in NOT_BUILT:
            return 11, f"Service {service} is not available from the fake Schwab streamer", [], False
        if service not in MAX_FIELD:
            return 21, f"Unknown service {service}", [], False
        if command not in FAILED:
            return 21, f"Unknown command {command} for {service}", [], False
        params = req.get("parameters")
        if not isinstance(params, dict):
            return FAILED[command], f"{command} needs parameters", [], False
        if service == "ACCT_ACTIVITY":
            return self._activity(conn, command, params)
        return self._subscription(conn, service, command, params)

    def _login(self, conn: StreamConn, req: JSON) -> tuple[int, str, list[JSON], bool]:
        params = req.get("parameters") if isinstance(req.get("parameters"), dict) else {}
        token = params.get("Authorization")
        ok = (
            isinstance(token, str)
            and self.fake.access_token_valid(token)
            and req.get("SchwabClientCustomerId") == self.fake.customer_id
            and req.get("SchwabClientCorrelId") == self.fake.correl_id
            and params.get("SchwabClientChannel") == self.fake.channel
            and params.get("SchwabClientFunctionId") == self.fake.function_id
        )
        if not ok:
            self.denied += 1
            return 3, "Login Denied.: token is invalid or has expired.", [], True
        for other in list(self.conns):
            if other is not conn and other.logged_in:
                self.displaced += 1
                self.fake.spawn(self._displace(other))
        conn.logged_in = True
        self.logins += 1
        return 0, f"server={self.server_id};status={self.entitlement}", [], False

    async def _displace(self, conn: StreamConn) -> None:
        conn.logged_in = False
        await self._send(
            conn,
            {
                "notify": [
                    {
                        "service": "Invalid Service",
                        "timestamp": ms(self.fake.clock.now()),
                        "content": {"code": 12, "msg": CLOSE_12},
                    }
                ]
            },
        )
        await self._close(conn)

    def _subscription(
        self, conn: StreamConn, service: str, command: str, params: JSON
    ) -> tuple[int, str, list[JSON], bool]:
        keys = _comma(params.get("keys"))
        if command != "VIEW" and not keys:
            return FAILED[command], f"{command} needs parameters.keys", [], False
        raw_fields = params.get("fields")
        fields: set[int] | None = None
        if raw_fields is not None:
            parts = _comma(raw_fields)
            if parts is None or not all(p.isdigit() for p in parts):
                return 21, "Bad command format: fields must be a comma-separated list of field numbers", [], False
            fields = {int(p) for p in parts}
            top = MAX_FIELD[service]
            if any(f > top for f in fields):
                return FAILED[command], f"Field numbers for {service} run from 0 to {top}", [], False
        subs = conn.sent.setdefault(service, {})
        if command == "UNSUBS":
            for k in keys or []:
                subs.pop(k, None)
            return 0, "UNSUBS command succeeded", [], False
        if command == "VIEW":
            if fields is None:
                return FAILED["VIEW"], "VIEW needs parameters.fields", [], False
            old = conn.fields.get(service, set())
            conn.fields[service] = fields
            return 0, "VIEW command succeeded", self._snapshot(conn, service, list(subs), fields - old), False
        if fields is None and service not in conn.fields:
            return FAILED[command], f"{command} needs parameters.fields", [], False
        assert keys is not None
        if command == "SUBS":
            subs.clear()
        if len(set(subs) | set(keys)) > MAX_KEYS:
            return 19, f"Reached the symbol limit of {MAX_KEYS} keys for {service}", [], False
        if fields is not None:
            conn.fields[service] = fields
        new = [k for k in keys if k not in subs]
        for k in keys:
            subs.setdefault(k, {})
        return 0, f"{command} command succeeded", self._snapshot(conn, service, new, None), False

    def _activity(self, conn: StreamConn, command: str, params: JSON) -> tuple[int, str, list[JSON], bool]:
        if command not in ("SUBS", "UNSUBS"):
            return FAILED[command], "ACCT_ACTIVITY supports only SUBS and UNSUBS", [], False
        keys = _comma(params.get("keys"))
        if not keys:
            return FAILED[command], f"{command} needs parameters.keys", [], False
        if command == "UNSUBS":
            conn.activity_key = None
            return 0, "UNSUBS command succeeded", [], False
        conn.activity_key = keys[0]  # only the first key counts (A8.5)
        # TDA's streamer confirmed an account-activity subscription with a SUBSCRIBED message.
        return 0, "SUBS command succeeded", [self._activity_entry(conn, "", "SUBSCRIBED", "")], False

    def _activity_entry(self, conn: StreamConn, account: str, kind: str, data: str) -> JSON:
        conn.seq += 1
        return {
            "service": "ACCT_ACTIVITY",
            "timestamp": ms(self.fake.clock.now()),
            "command": "SUBS",
            "content": [{"seq": conn.seq, "key": conn.activity_key, "1": account, "2": kind, "3": data}],
        }

    # ------------------------------------------------------------------ data

    def _snapshot(self, conn: StreamConn, service: str, keys: list[str], only: set[int] | None) -> list[JSON]:
        """Full values for ``keys`` (all subscribed fields, or just ``only``)."""
        wanted = conn.fields.get(service, set())
        content = []
        for key in keys:
            values = self.values(service, key)
            if values is None:
                continue  # unknown symbols: accepted, never any data (as Schwab does for bad keys)
            picked = {f: v for f, v in values.items() if f in wanted and f != 0}
            sent = conn.sent[service].setdefault(key, {})
            first = not sent
            if only is not None:
                picked = {f: v for f, v in picked.items() if f in only}
            sent.update(picked)
            entry: JSON = {"key": key}
            if first:
                entry |= self._identity(service, key)
            entry |= {str(f): v for f, v in sorted(picked.items())}
            content.append(entry)
        if not content:
            return []
        return [{"service": service, "timestamp": ms(self.fake.clock.now()), "command": "SUBS", "content": content}]

    def _identity(self, service: str, key: str) -> JSON:
        if service == "LEVELONE_EQUITIES":
            eq = self.market.equities[key]
            return {"delayed": False, "assetMainType": "EQUITY", "assetSubType": eq.sub_type, "cusip": eq.cusip}
        if service == "LEVELONE_OPTIONS":
            return {"delayed": False, "assetMainType": "OPTION"}
        return {"delayed": False, "assetMainType": "FUTURE"}

    def frames(self, conn: StreamConn) -> list[JSON]:
        """Changed fields since the last send, per service."""
        out = []
        for service, subs in conn.sent.items():
            wanted = conn.fields.get(service, set())
            content = []
            for key, sent in subs.items():
                values = self.values(service, key)
                if values is None:
                    continue
                changed = {f: v for f, v in values.items() if f in wanted and f != 0 and sent.get(f, None) != v}
                if not sent:
                    entry: JSON = {"key": key} | self._identity(service, key)
                    changed = {f: v for f, v in values.items() if f in wanted and f != 0}
                elif not changed:
                    continue
                else:
                    entry = {"key": key}
                sent.update(changed)
                entry |= {str(f): v for f, v in sorted(changed.items())}
                content.append(entry)
            if content:
                out.append(
                    {"service": service, "timestamp": ms(self.fake.clock.now()), "command": "SUBS", "content": content}
                )
        return out

    async def publish(self) -> None:
        for conn in list(self.conns):
            if conn.logged_in:
                frames = self.frames(conn)
                if frames:
                    await self._send(conn, {"data": frames})

    async def account_event(self, account: str, kind: str, data: JSON) -> None:
        for conn in list(self.conns):
            if conn.logged_in and conn.activity_key is not None:
                await self._send(conn, {"data": [self._activity_entry(conn, account, kind, json.dumps(data))]})

    # ------------------------------------------------------------------ field values (A8.4)

    def values(self, service: str, key: str) -> dict[int, Any] | None:
        try:
            if service == "LEVELONE_EQUITIES":
                eq = self.market.equities.get(key)
                return None if eq is None else self._equity(key)
            if service == "LEVELONE_OPTIONS":
                return self._option(self.market.option(key))
            if service == "LEVELONE_FUTURES":
                return self._future(self.market.future(key))
        except (UnknownSymbol, ExpiredSeries):
            return None
        return None

    def _equity(self, symbol: str) -> dict[int, Any]:
        eq = self.market.equities[symbol]
        b = eq.book
        change = b.last - b.close
        pct = float(change / b.close * 100) if b.close else 0.0
        return {
            0: symbol,
            1: num(b.bid),
            2: num(b.ask),
            3: num(b.last),
            4: b.bid_size,
            5: b.ask_size,
            6: eq.exchange,
            7: eq.exchange,
            8: b.volume,
            9: b.last_size,
            10: num(b.high),
            11: num(b.low),
            12: num(b.close),
            13: eq.exchange,
            14: eq.marginable,
            15: eq.description,
            16: eq.exchange,
            17: num(b.open),
            18: num(change),
            19: num(b.close * Decimal("1.3")),
            20: num(b.close * Decimal("0.7")),
            21: 29.2,
            22: 1.0,
            23: 0.5,
            24: 0,
            25: eq.exchange_name,
            26: "2026-12-15 00:00:00.0",
            27: True,
            28: True,
            29: num(b.last),
            30: b.last_size,
            31: num(change),
            32: b.status,
            33: num(b.last),
            34: b.quote_ms,
            35: b.trade_ms,
            36: b.trade_ms,
            37: b.quote_ms,
            38: b.quote_ms,
            39: "XNAS",
            40: "XNAS",
            41: "XNAS",
            42: round(pct, 6),
            43: round(pct, 6),
            44: num(change),
            45: round(pct, 6),
            46: 0,
            47: 0,
            48: 0,
            49: 1 if eq.shortable else 0,
            50: 0,
            51: 0,
        }

    def _option(self, q: OptionQuote) -> dict[int, Any]:
        # Field 20 is the strike price (Schwabdev's table, reference A8.4); schwab-py names it STRIKE_TYPE.
        key, s = q.key, q.state
        close = s.close or q.mark
        intrinsic = self.market.intrinsic(q)
        last_day = ms(datetime.combine(key.expiry, time(16, 0), NEW_YORK))
        t = ms(self.fake.clock.now())
        return {
            0: key.symbol,
            1: self.market.option_description(key),
            2: num(q.bid),
            3: num(q.ask),
            4: num(q.last),
            5: num(q.last),
            6: num(q.last),
            7: num(close),
            8: s.volume,
            9: s.open_interest,
            10: round(q.vol * 100, 4),
            11: num(intrinsic),
            12: key.expiry.year,
            13: 100,
            14: 2,
            15: 0.0,
            16: s.bid_size,
            17: s.ask_size,
            18: s.last_size,
            19: num(q.last - close),
            20: num(key.strike),
            21: key.put_call,
            22: key.root,
            23: key.expiry.month,
            24: f"100 {key.root}",
            25: num(max(Decimal(0), q.mark - intrinsic)),
            26: key.expiry.day,
            27: q.days,
            28: round(q.greeks.delta, 4),
            29: round(q.greeks.gamma, 4),
            30: round(q.greeks.theta, 4),
            31: round(q.greeks.vega, 4),
            32: round(q.greeks.rho, 4),
            33: "Normal",
            34: num(q.theo),
            35: num(q.underlying.book.mid),
            36: self.market.expiration_type(key.expiry),
            37: num(q.mark),
            38: t,
            39: t,
            40: "o",
            41: "OPR",
            42: last_day,
            43: "P",
            44: 0.0,
            45: num(q.mark - close),
            46: 0.0,
            47: 0.0,
            48: q.underlying.penny,
            49: key.root,
            50: num(close * 2),
            51: 0.01,
            52: 0.0,
            53: 0.0,
            54: 0,
            55: "A",
        }

    def _future(self, fut: Future) -> dict[int, Any]:
        b = fut.book
        change = b.last - b.close
        return {
            0: fut.root,
            1: num(b.bid),
            2: num(b.ask),
            3: num(b.last),
            4: b.bid_size,
            5: b.ask_size,
            6: "?",
            7: "?",
            8: b.volume,
            9: b.last_size,
            10: b.quote_ms,
            11: b.trade_ms,
            12: num(b.high),
            13: num(b.low),
            14: num(b.close),
            15: "@",
            16: fut.description,
            17: "?",
            18: num(b.open),
            19: num(change),
            20: round(float(change / b.close), 6) if b.close else 0.0,
            21: "XCME",
            22: b.status,
            23: 2_000_000,
            24: num(b.last),
            25: num(fut.tick),
            26: num(fut.tick * fut.multiplier),
            27: fut.root,
            28: "D,D",
            29: "GLBX(de=1640;0=-1700151515301600;1=r-17001515r15301600d-15551640;7=d-16401555)",
            30: True,
            31: num(fut.multiplier),
            32: True,
            33: num(b.close),
            34: fut.active,
            35: ms(fut.expiration),
            36: "Standard",
            37: b.quote_ms,
            38: b.quote_ms,
            39: False,
            40: ms(fut.expiration),
        }


def today_ny(now: datetime) -> date:
    return now.astimezone(NEW_YORK).date()


OnEvent = Callable[[str, str, JSON], None]

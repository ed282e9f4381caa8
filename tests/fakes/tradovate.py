"""A strict fake Tradovate server on a loopback port: REST, trading socket, market-data socket.

It speaks the wire protocol of ``shared/reference/brokers-tradovate-projectx.md`` part A, as
strictly as the reference allows (checklist D1):

- ``POST /v1/auth/accesstokenrequest``: a token, HTTP 200 ``errorText`` for bad credentials, or a
  penalty ticket ``{"p-ticket","p-time","p-captcha"}`` whose resend is accepted only once
  ``p-time`` has passed on the shared clock. ``/auth/renewaccesstoken`` (GET or POST).
- A bearer check on every other route (401, empty body); 429 with an empty body on demand.
- The entity routes ``/v1/{entity}/list|item|items|find|suggest|deps|ldeps``; order commands
  with exact result keys; a matching book that fills market orders at the touch and resting
  limits and stops when the fake's own quote stream (driven by the test) crosses them; OSO
  children held until the entry fills, OCO siblings cancelled; positions, fill pairs, cash.
- WebSockets (``/v1/websocket`` trading, ``/md/v1/websocket`` market data): ``o`` on connect,
  ``authorize``, four-line requests, ``a[...]`` replies, ``h`` when idle, ``[]`` heartbeats
  expected from the client, ``user/syncrequest``, ``props`` events, ``md/subscribeQuote`` with
  deliberately partial quote updates.

Paths and socket endpoints match case-insensitively (A1). Where the reference is uncertain the
choice is commented at that spot. Fault switches (``drop_sockets``, ``silent``,
``expire_tokens``, ``slow``, ``penalize``, ``fail_429``, ``reject_next``...) let tests break
things on purpose. Time that the vendor measures (token expiry, penalty waits) runs on the
shared :class:`tests.fakes.FakeClock`; socket heartbeats run on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import secrets
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes import FakeClock

JSON = dict[str, Any]

ORDER_TYPES = {"Limit", "MIT", "Market", "QTS", "Stop", "StopLimit", "TrailingStop", "TrailingStopLimit"}
SUPPORTED_TYPES = {"Market", "Limit", "Stop", "StopLimit"}
TIFS = {"Day", "FOK", "GTC", "GTD", "IOC"}
PLACE_FIELDS = {
    "accountSpec",
    "accountId",
    "clOrdId",
    "action",
    "symbol",
    "orderQty",
    "orderType",
    "price",
    "stopPrice",
    "maxShow",
    "pegDifference",
    "timeInForce",
    "expireTime",
    "text",
    "activationTime",
    "customTag50",
    "isAutomated",
    "p-ticket",
}
RESTRAINED_FIELDS = {
    "action",
    "clOrdId",
    "orderType",
    "price",
    "stopPrice",
    "maxShow",
    "pegDifference",
    "timeInForce",
    "expireTime",
    "text",
}
MODIFY_FIELDS = {
    "orderId",
    "orderQty",
    "orderType",
    "price",
    "stopPrice",
    "maxShow",
    "pegDifference",
    "timeInForce",
    "expireTime",
    "clOrdId",
    "activationTime",
    "text",
    "customTag50",
    "isAutomated",
    "p-ticket",
}
CANCEL_FIELDS = {"orderId", "clOrdId", "activationTime", "customTag50", "isAutomated", "p-ticket"}
LIQUIDATE_FIELDS = {"accountId", "contractId", "admin", "customTag50", "isAutomated", "p-ticket"}
ENTITIES = {
    "account": "userId",
    "position": "accountId",
    "order": "accountId",
    "orderversion": "orderId",
    "fill": "orderId",
    "fillpair": "positionId",
    "executionreport": "orderId",
    "command": "orderId",
    "commandreport": "commandId",
    "cashbalance": "accountId",
    "contract": "contractMaturityId",
    "contractmaturity": "productId",
    "product": None,
}
ENTITY_NAMES = {
    "orderversion": "orderVersion",
    "fillpair": "fillPair",
    "executionreport": "executionReport",
    "commandreport": "commandReport",
    "cashbalance": "cashBalance",
    "contractmaturity": "contractMaturity",
}
SYNC_KEYS = {
    "account": "accounts",
    "position": "positions",
    "order": "orders",
    "orderVersion": "orderVersions",
    "fill": "fills",
    "fillPair": "fillPairs",
    "executionReport": "executionReports",
    "command": "commands",
    "commandReport": "commandReports",
    "cashBalance": "cashBalances",
    "contract": "contracts",
    "contractMaturity": "contractMaturities",
    "product": "products",
}


def iso(ts: datetime) -> str:
    """Tradovate's timestamp form: ``2025-11-24T06:12:00.000Z``."""
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


class _BadRequest(Exception):
    """A schema violation: HTTP 400 (or ``s:400``) with a plain text reason."""


@dataclass
class _Product:
    id: int
    name: str
    tick: Decimal
    value_per_point: Decimal


@dataclass
class _Quote:
    bid: Decimal | None = None
    ask: Decimal | None = None
    last: Decimal | None = None
    bid_size: int = 10
    ask_size: int = 10
    volume: int = 0


@dataclass
class _Conn:
    kind: str  # "trading" or "md"
    ws: web.WebSocketResponse
    request: web.Request
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    authorized: bool = False
    synced: bool = False
    quotes: set[int] = field(default_factory=set)
    last_sent: float = 0.0


class FakeTradovate:
    """The fake server. ``await start()``; URLs in :attr:`rest_url`, :attr:`ws_url`, :attr:`md_url`."""

    def __init__(
        self,
        *,
        clock: FakeClock,
        username: str = "trader1",
        password: str = "Pa55word-very-secret",
        cid: int = 8123,
        sec: str = "sec-0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        token_minutes: float = 80,
        heartbeat_interval: float = 0.05,
        client_timeout: float = 3.0,
        contracts: tuple[tuple[str, str], ...] = (("MESZ6", "MES"), ("MNQZ6", "MNQ"), ("MESH7", "MES")),
        starting_cash: Decimal = Decimal("50000"),
    ) -> None:
        self.clock = clock
        self.username = username
        self.password = password
        self.cid = cid
        self.sec = sec
        self.token_minutes = token_minutes
        self.heartbeat_interval = heartbeat_interval
        self.client_timeout = client_timeout
        self.user_id = 1001
        self._ids = itertools.count(500_001)
        self.products: dict[int, _Product] = {}
        self.entities: dict[str, dict[int, JSON]] = {name: {} for name in SYNC_KEYS}
        self.quotes: dict[int, _Quote] = {}
        self.tokens: dict[str, tuple[datetime, str]] = {}
        self.tickets: dict[str, tuple[datetime, float]] = {}
        self._lots: dict[int, list[list[Any]]] = {}
        self._stop_triggered: set[int] = set()
        self._filled: dict[int, tuple[int, Decimal]] = {}
        self._conns: list[_Conn] = []
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

        # Fault switches.
        self.silent = False
        self.refuse_sockets = False
        self.scramble_props = False
        self.max_position: int | None = None
        #: (requests, seconds): more authenticated requests than this in the window earn a penalty
        #: ticket whose p-time is the wait until the window has room again (A7).
        self.rate_limit: tuple[int, float] | None = None
        self._recent: deque[datetime] = deque()
        self._slow: dict[str, list[float]] = {}
        self._penalties: dict[str, list[tuple[float, bool]]] = {}
        self._fail_429: Counter[str] = Counter()
        self._lost_answers: Counter[str] = Counter()  # fault harness switches (tests/faults)
        self._cut_requests: Counter[str] = Counter()
        self._reject_next: list[tuple[str, str]] = []

        # What happened, for assertions.
        self.requests: list[tuple[str, str]] = []
        self.unauthorized = 0
        self.logins = 0
        self.failed_logins = 0
        self.renewals = 0
        self.penalties_issued = 0
        self.early_resends = 0
        self.tickets_honoured = 0
        self.heartbeats: Counter[str] = Counter()
        self.connections: Counter[str] = Counter()
        self.sync_requests = 0
        self.subscribe_requests = 0
        self.bad_frames = 0
        self.dropped_for_silence = 0
        self.clord_ids: Counter[str] = Counter()
        self.order_bodies: list[JSON] = []
        self.device_ids: set[str] = set()

        self._seed(contracts, starting_cash)

    # ================================================================== set-up

    def _id(self) -> int:
        return next(self._ids)

    def _seed(self, contracts: tuple[tuple[str, str], ...], cash: Decimal) -> None:
        specs = {
            "MES": (Decimal("0.25"), Decimal("5")),
            "MNQ": (Decimal("0.25"), Decimal("2")),
            "ES": (Decimal("0.25"), Decimal("50")),
        }
        now = iso(self.clock.now())
        for name, root in contracts:
            product = next((p for p in self.products.values() if p.name == root), None)
            if product is None:
                tick, vpp = specs.get(root, (Decimal("0.25"), Decimal("5")))
                product = _Product(id=self._id(), name=root, tick=tick, value_per_point=vpp)
                self.products[product.id] = product
                self.entities["product"][product.id] = {
                    "id": product.id,
                    "name": root,
                    "currencyId": 1,
                    "productType": "Futures",
                    "description": f"{root} futures",
                    "exchangeId": 1,
                    "contractGroupId": 1,
                    "status": "Verified",
                    "months": "HMUZ",
                    "valuePerPoint": float(vpp),
                    "priceFormatType": "Decimal",
                    "priceFormat": -2,
                    "tickSize": float(tick),
                }
            maturity_id = self._id()
            month_code = name[len(root)]
            self.entities["contractMaturity"][maturity_id] = {
                "id": maturity_id,
                "productId": product.id,
                "expirationMonth": 202600 + "FGHJKMNQUVXZ".index(month_code) + 1,
                "expirationDate": now,
                "isFront": True,
                "archived": False,
            }
            cid = self._id()
            self.entities["contract"][cid] = {
                "id": cid,
                "name": name,
                "contractMaturityId": maturity_id,
                "status": "DefinitionChecked",
                "providerTickSize": float(product.tick),
            }
            self.quotes[cid] = _Quote()
        for name in ("DEMO123456", "DEMO654321"):
            aid = self._id()
            # U4: the fake sends the older ``active`` / ``archived`` flags (the reference's preferred form).
            self.entities["account"][aid] = {
                "id": aid,
                "name": name,
                "userId": self.user_id,
                "accountType": "Customer",
                "active": True,
                "clearingHouseId": 2,
                "riskCategoryId": 2,
                "autoLiqProfileId": 2,
                "marginAccountType": "Speculator",
                "legalStatus": "Individual",
                "archived": False,
                "timestamp": now,
            }
            bid = self._id()
            self.entities["cashBalance"][bid] = {
                "id": bid,
                "accountId": aid,
                "timestamp": now,
                "tradeDate": self._trade_date(),
                "currencyId": 1,
                "amount": float(cash),
                "realizedPnL": 0.0,
                "weekRealizedPnL": 0.0,
                "amountSOD": float(cash),
            }

    def _trade_date(self) -> JSON:
        d = self.clock.now().date()
        return {"year": d.year, "month": d.month, "day": d.day}

    # ================================================================== lifecycle

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._route)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]
        self.rest_url = f"http://127.0.0.1:{self.port}/v1"
        self.ws_url = f"ws://127.0.0.1:{self.port}/v1/websocket"
        self.md_url = f"ws://127.0.0.1:{self.port}/md/v1/websocket"

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for conn in list(self._conns):
            with contextlib.suppress(Exception):
                await conn.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def options(self, **extra: Any) -> dict[str, str]:
        """Broker options pointing at this fake (strings, as the config file gives them)."""
        base = {"rest_url": self.rest_url, "ws_url": self.ws_url, "md_url": self.md_url}
        base.update({k: str(v) for k, v in extra.items()})
        return base

    def secrets(self, **override: str) -> dict[str, str]:
        base = {"username": self.username, "password": self.password, "cid": str(self.cid), "sec": self.sec}
        base.update(override)
        return base

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ================================================================== waiting (tests)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Wait until ``predicate()`` holds (re-checked after every request or socket message)."""

        async def _wait() -> None:
            while not predicate():
                await self._changed.wait()

        await asyncio.wait_for(_wait(), within)

    # ================================================================== fault switches

    def slow(self, path: str, seconds: float, times: int = 1) -> None:
        """Answer the next ``times`` requests to ``path`` ``seconds`` late (after processing them)."""
        self._slow.setdefault(path.lower(), []).extend([seconds] * times)

    def penalize(self, path: str, *, p_time: float = 3, times: int = 1, captcha: bool = False) -> None:
        """Answer the next ``times`` requests to ``path`` with a penalty ticket instead of processing them."""
        self._penalties.setdefault(path.lower(), []).extend([(p_time, captcha)] * times)

    def fail_429(self, path: str, times: int = 1) -> None:
        """Answer the next ``times`` requests to ``path`` with HTTP 429 (empty body) / ``s:429``."""
        self._fail_429[path.lower()] += times

    def reject_next(self, reason: str, text: str = "") -> None:
        """The next order command fails with this ``failureReason`` / ``failureText``."""
        self._reject_next.append((reason, text))

    def expire_tokens(self) -> None:
        """Every token issued so far expires now (the clock has not moved)."""
        now = self.clock.now()
        self.tokens = {t: (min(exp, now), kind) for t, (exp, kind) in self.tokens.items()}

    async def drop_sockets(self, kind: str = "all") -> None:
        """Cut the TCP connection of every socket of ``kind`` (no close frame: a network drop)."""
        for conn in list(self._conns):
            if kind in ("all", conn.kind):
                transport = conn.request.transport
                if transport is not None:
                    transport.abort()

    async def shutdown_sockets(self, reason_code: str = "Maintenance", kind: str = "all") -> None:
        """Push a ``shutdown`` event, then ``c[1000,...]``, then close (A6, TV-PARTNER conformance)."""
        for conn in list(self._conns):
            if kind in ("all", conn.kind):
                await self._send(conn, "a" + json.dumps([{"e": "shutdown", "d": {"reasonCode": reason_code}}]))
                await self._send(conn, 'c[1000,"Server shutdown"]')
                await conn.ws.close()

    def sockets(self, kind: str) -> int:
        return sum(1 for c in self._conns if c.kind == kind and c.authorized)

    # ------------------------------------------------------------------ fault harness switches
    # (issue 17, tests/faults: kept in this block, apart from the vendor behaviour above)

    def lose_answer(self, path: str, times: int = 1) -> None:
        """Process the next ``times`` requests to ``path``, then cut the TCP connection instead of
        answering: the order (or cancel) happened, the client never hears so."""
        self._lost_answers[path.lower()] += times

    def drop_next(self, path: str, times: int = 1) -> None:
        """Cut the TCP connection instead of answering the next ``times`` requests to ``path``,
        before processing them: nothing happens on the server (compare ``lose_answer``)."""
        self._cut_requests[path.lower()] += times

    def _cut_request(self, endpoint: str, request: web.Request) -> bool:
        if not self._cut_requests.get(endpoint):
            return False
        self._cut_requests[endpoint] -= 1
        if request.transport is not None:
            request.transport.abort()
        return True

    def _lose_answer(self, endpoint: str, request: web.Request) -> bool:
        if not self._lost_answers.get(endpoint):
            return False
        self._lost_answers[endpoint] -= 1
        if request.transport is not None:
            request.transport.abort()
        return True

    async def restart(self, down_for: float = 0.2) -> None:
        """The server goes away (every socket and HTTP connection cut, new ones refused) for
        ``down_for`` seconds, then listens again on the same port with its state kept (accounts,
        orders, positions, sessions), as a vendor gateway restart looks to a client."""
        port = self.port
        await self.drop_sockets()
        await self.stop()
        await asyncio.sleep(down_for)
        await self.start(port)

    # ================================================================== tokens

    def _issue(self, kind: str = "access") -> tuple[str, datetime]:
        token = secrets.token_urlsafe(48)
        expires = self.clock.now() + timedelta(minutes=self.token_minutes)
        self.tokens[token] = (expires, kind)
        return token, expires

    def _valid(self, token: str | None, kinds: tuple[str, ...] = ("access",)) -> bool:
        if not token:
            return False
        entry = self.tokens.get(token)
        return entry is not None and entry[1] in kinds and self.clock.now() < entry[0]

    def _grant(self) -> JSON:
        access, expires = self._issue("access")
        md, _ = self._issue("md")
        return {
            "accessToken": access,
            "mdAccessToken": md,
            "expirationTime": iso(expires),
            "passwordExpirationTime": iso(self.clock.now() + timedelta(days=90)),
            "userStatus": "Active",
            "userId": self.user_id,
            "name": self.username,
            "hasLive": False,
        }

    def _penalty(self, p_time: float, captcha: bool) -> JSON:
        ticket = secrets.token_hex(12)
        self.tickets[ticket] = (self.clock.now(), p_time)
        self.penalties_issued += 1
        body: JSON = {"p-ticket": ticket, "p-time": int(p_time)}
        # A2.1: p-captcha may be omitted when false; the fake omits it then.
        if captcha:
            body["p-captcha"] = True
        return body

    def _check_ticket(self, body: Any) -> JSON | None:
        """A resend carrying a ticket: too early (or unknown ticket) earns another penalty."""
        if not isinstance(body, dict) or "p-ticket" not in body:
            return None
        entry = self.tickets.pop(str(body["p-ticket"]), None)
        if entry is None:
            self.early_resends += 1
            return self._penalty(5, False)
        issued, p_time = entry
        if (self.clock.now() - issued).total_seconds() < p_time:
            self.early_resends += 1
            return self._penalty(p_time, False)
        self.tickets_honoured += 1
        return None

    # ================================================================== HTTP

    async def _route(self, request: web.Request) -> web.StreamResponse:
        path = request.path.lower()
        if path in ("/v1/websocket", "/md/v1/websocket"):
            return await self._websocket(request, "trading" if path.startswith("/v1") else "md")
        if not path.startswith("/v1/"):
            return web.Response(status=404, text="Not found")
        endpoint = path[len("/v1/") :]
        self.requests.append((request.method, endpoint))
        if self._cut_request(endpoint, request):
            return web.Response(status=500)  # never sent: the connection is already cut
        try:
            body: Any = None
            if request.method == "POST" and request.can_read_body:
                raw = await request.read()
                if raw.strip():
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        return web.Response(status=400, text="Request body is not valid JSON")
            auth = request.headers.get("Authorization", "")
            token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
            status, payload = await self._handle(request.method, endpoint, dict(request.query), body, token)
        finally:
            self._notify()
        if self._lose_answer(endpoint, request):
            return web.Response(status=500)  # never sent: the connection is already cut
        delays = self._slow.get(endpoint)
        if delays:
            await asyncio.sleep(delays.pop(0))
        if payload is None:
            return web.Response(status=status)
        if isinstance(payload, str):
            return web.Response(status=status, text=payload)
        return web.json_response(payload, status=status)

    async def _handle(self, method: str, endpoint: str, query: JSON, body: Any, token: str | None) -> tuple[int, Any]:
        """One request, REST or socket: ``(status, payload)``; payload None means an empty body."""
        if self._fail_429.get(endpoint):
            self._fail_429[endpoint] -= 1
            return 429, None
        queued = self._penalties.get(endpoint)
        if queued and not (isinstance(body, dict) and "p-ticket" in body):
            p_time, captcha = queued.pop(0)
            return 200, self._penalty(p_time, captcha)
        again = self._check_ticket(body)
        if again is not None:
            return 200, again
        if endpoint == "auth/accesstokenrequest":
            if method != "POST":
                return 405, "Method not allowed"
            return 200, self._login(body)
        if endpoint == "auth/renewaccesstoken":
            # U7: GET per the OpenAPI, POST in some clients: both accepted.
            if not self._valid(token):
                self.unauthorized += 1
                return 401, None
            self.renewals += 1
            grant = self._grant()
            return 200, grant
        if not self._valid(token):
            self.unauthorized += 1
            return 401, None
        over = self._over_rate()
        if over is not None:
            return 200, over
        try:
            return self._dispatch(method, endpoint, query, body)
        except _BadRequest as exc:
            return 400, str(exc)

    def _over_rate(self) -> JSON | None:
        """A penalty if this request goes over :attr:`rate_limit`, else None (and it is counted)."""
        if self.rate_limit is None:
            return None
        limit, window = self.rate_limit
        now = self.clock.now()
        while self._recent and (now - self._recent[0]).total_seconds() >= window:
            self._recent.popleft()
        if len(self._recent) >= limit:
            wait = window - (now - self._recent[0]).total_seconds()
            return self._penalty(math.ceil(wait), False)
        self._recent.append(now)
        return None

    def _login(self, body: Any) -> JSON:
        if not isinstance(body, dict):
            return {"errorText": "Request body must be a JSON object"}
        for key in ("name", "password", "appId", "appVersion", "cid", "sec"):
            if key not in body:
                return {"errorText": f"Missing required field '{key}'"}
        cid = body["cid"]
        # U2: cid is an integer in the tutorials and a string in the current OpenAPI; accept both.
        if isinstance(cid, bool) or not (isinstance(cid, int) or (isinstance(cid, str) and cid.isdigit())):
            return {"errorText": "Invalid cid"}
        if "deviceId" in body:
            if not isinstance(body["deviceId"], str) or not body["deviceId"]:
                return {"errorText": "Invalid deviceId"}
            self.device_ids.add(body["deviceId"])
        if body["name"] != self.username or body["password"] != self.password:
            self.failed_logins += 1
            # The exact wording is the vendor's; the tutorial shows a human-readable sentence.
            return {"errorText": "Incorrect username or password. Please try again (passwords are case-sensitive)."}
        if int(cid) != self.cid or body["sec"] != self.sec:
            self.failed_logins += 1
            return {"errorText": "The app is not registered or the API key is invalid"}
        self.logins += 1
        return self._grant()

    def _dispatch(self, method: str, endpoint: str, query: JSON, body: Any) -> tuple[int, Any]:
        if endpoint == "auth/me":
            me = {"userId": self.user_id, "name": self.username, "fullName": "Test Trader", "email": "t@example.com"}
            return 200, me
        if endpoint.startswith("order/") and endpoint.split("/", 1)[1] in {
            "placeorder",
            "placeoso",
            "placeoco",
            "modifyorder",
            "cancelorder",
            "liquidateposition",
        }:
            if method != "POST":
                return 405, "Method not allowed"
            if not isinstance(body, dict):
                raise _BadRequest("Request body must be a JSON object")
            self.order_bodies.append(body)
            return 200, self._order_command(endpoint.split("/", 1)[1], body)
        if endpoint == "cashbalance/getcashbalancesnapshot":
            if not isinstance(body, dict) or not isinstance(body.get("accountId"), int):
                raise _BadRequest("accountId is required")
            return 200, self._cash_snapshot(body["accountId"])
        parts = endpoint.split("/")
        if len(parts) == 2 and parts[0] in ENTITIES:
            return self._entity(ENTITY_NAMES.get(parts[0], parts[0]), parts[0], parts[1], query)
        return 404, "Unknown endpoint"

    # ------------------------------------------------------------------ entity routes (A3)

    def _entity(self, entity: str, lower: str, op: str, query: JSON) -> tuple[int, Any]:
        rows = self.entities.get(entity, {})
        if op == "list":
            return 200, list(rows.values())
        if op == "item":
            try:
                item = rows.get(int(query.get("id", "")))
            except ValueError:
                raise _BadRequest("id must be an integer") from None
            return (200, item) if item is not None else (404, "Entity not found")
        if op == "items":
            try:
                ids = [int(x) for x in str(query.get("ids", "")).split(",") if x]
            except ValueError:
                raise _BadRequest("ids must be integers") from None
            return 200, [rows[i] for i in ids if i in rows]
        if op == "find":
            name = str(query.get("name", ""))
            for row in rows.values():
                if str(row.get("name", "")).lower() == name.lower():
                    return 200, row
            # A5: an unknown name gives an error status or an empty result (UNCERTAIN); the
            # reference's preferred fake behaviour is 404.
            return 404, f"{entity} '{name}' not found"
        if op == "suggest":
            text = str(query.get("t", "")).lower()
            limit = int(query.get("l", "10") or 10)
            return 200, [r for r in rows.values() if text in str(r.get("name", "")).lower()][:limit]
        if op in ("deps", "ldeps"):
            master = ENTITIES[lower]
            if master is None:
                return 404, "Entity has no master"
            key = "masterid" if op == "deps" else "masterids"
            try:
                ids = {int(x) for x in str(query.get(key, "")).split(",") if x}
            except ValueError:
                raise _BadRequest(f"{key} must be integers") from None
            return 200, [r for r in rows.values() if r.get(master) in ids]
        return 404, "Unknown operation"

    def _cash_snapshot(self, account_id: int) -> JSON:
        cash = next((c for c in self.entities["cashBalance"].values() if c["accountId"] == account_id), None)
        if cash is None:
            return {"errorText": "Account not found"}
        open_pnl = 0.0
        for pos in self.entities["position"].values():
            if pos["accountId"] == account_id and pos["netPos"]:
                q = self.quotes[pos["contractId"]]
                product = self._product_of(pos["contractId"])
                if q.last is not None:
                    move = q.last - Decimal(str(pos["netPrice"]))
                    open_pnl += float(move * pos["netPos"] * product.value_per_point)
        return {
            "totalCashValue": cash["amount"],
            "totalPnL": cash["realizedPnL"] + open_pnl,
            "initialMargin": 0.0,
            "maintenanceMargin": 0.0,
            "netLiq": cash["amount"] + open_pnl,
            "openPnL": open_pnl,
            "realizedPnL": cash["realizedPnL"],
            "weekRealizedPnL": cash["weekRealizedPnL"],
        }

    # ================================================================== orders

    def _product_of(self, contract_id: int) -> _Product:
        contract = self.entities["contract"][contract_id]
        maturity = self.entities["contractMaturity"][contract["contractMaturityId"]]
        return self.products[maturity["productId"]]

    def _contract_by_symbol(self, symbol: Any) -> JSON | None:
        for c in self.entities["contract"].values():
            if isinstance(symbol, str) and c["name"].lower() == symbol.lower():
                return c
            if isinstance(symbol, int) and not isinstance(symbol, bool) and c["id"] == symbol:
                return c
        return None

    @staticmethod
    def _fail(reason: str, text: str) -> JSON:
        return {"failureReason": reason, "failureText": text}

    def _check_fields(self, body: JSON, allowed: set[str], what: str) -> None:
        unknown = set(body) - allowed
        if unknown:
            # Stricter than needed on purpose: a typo in a field name must not pass silently.
            raise _BadRequest(f"{what}: unknown field(s) {', '.join(sorted(unknown))}")

    def _check_version(self, v: JSON, what: str, product: _Product, *, needs_qty: bool) -> JSON | None:
        """Schema problems raise (HTTP 400); business problems return a failure body."""
        if v.get("action") not in ("Buy", "Sell"):
            raise _BadRequest(f"{what}: action must be Buy or Sell")
        if v.get("orderType") not in ORDER_TYPES:
            raise _BadRequest(f"{what}: orderType {v.get('orderType')!r} is not a valid OrderType")
        if "timeInForce" in v and v["timeInForce"] not in TIFS:
            raise _BadRequest(f"{what}: timeInForce {v['timeInForce']!r} is not a valid TimeInForce")
        if needs_qty:
            qty = v.get("orderQty")
            if not isinstance(qty, int) or isinstance(qty, bool) or qty <= 0:
                raise _BadRequest(f"{what}: orderQty must be a positive integer")
        for key in ("price", "stopPrice"):
            if key in v and (not isinstance(v[key], int | float) or isinstance(v[key], bool)):
                raise _BadRequest(f"{what}: {key} must be a number")
        if "isAutomated" in v and not isinstance(v["isAutomated"], bool):
            raise _BadRequest(f"{what}: isAutomated must be a boolean")
        if v["orderType"] not in SUPPORTED_TYPES:
            return self._fail("Unsupported", f"{v['orderType']} orders are not supported by this fake")
        if v["orderType"] in ("Limit", "StopLimit") and "price" not in v:
            return self._fail("InvalidPrice", f"{what}: a {v['orderType']} order requires price")
        if v["orderType"] in ("Stop", "StopLimit") and "stopPrice" not in v:
            return self._fail("InvalidPrice", f"{what}: a {v['orderType']} order requires stopPrice")
        for key in ("price", "stopPrice"):
            if key in v:
                price = Decimal(str(v[key]))
                # Whether the live service rejects off-tick prices is not in the reference; the
                # fake rejects them (InvalidPrice) so a client that forgets to round is caught.
                if price <= 0 or price % product.tick != 0:
                    text = f"{key} {v[key]} is not a multiple of the tick size {product.tick}"
                    return self._fail("InvalidPrice", text)
        return None

    def _order_command(self, op: str, body: JSON) -> JSON:
        if op in ("placeorder", "placeoso", "placeoco"):
            allowed = PLACE_FIELDS | ({"bracket1", "bracket2"} if op == "placeoso" else set())
            allowed |= {"other"} if op == "placeoco" else set()
            self._check_fields(body, allowed, op)
            return self._place(op, body)
        if op == "modifyorder":
            self._check_fields(body, MODIFY_FIELDS, op)
            return self._modify(body)
        if op == "cancelorder":
            self._check_fields(body, CANCEL_FIELDS, op)
            return self._cancel(body)
        self._check_fields(body, LIQUIDATE_FIELDS, op)
        return self._liquidate(body)

    def _place(self, op: str, body: JSON) -> JSON:
        for key in ("accountId", "action", "symbol", "orderQty", "orderType"):
            if key not in body:
                raise _BadRequest(f"{op}: missing required field {key}")
        if not isinstance(body["accountId"], int):
            raise _BadRequest(f"{op}: accountId must be an integer")
        account = self.entities["account"].get(body["accountId"])
        if account is None or ("accountSpec" in body and body["accountSpec"] != account["name"]):
            return self._fail("Unauthorized", "Account is not accessible with this login")
        if "clOrdId" in body and not isinstance(body["clOrdId"], str):
            raise _BadRequest(f"{op}: clOrdId must be a string")
        contract = self._contract_by_symbol(body["symbol"])
        if contract is None:
            # Not pinned down by the reference; a business failure with the vendor's enum.
            return self._fail("InvalidContract", f"Unknown symbol {body['symbol']}")
        product = self._product_of(contract["id"])
        failure = self._check_version(body, op, product, needs_qty=True)
        if failure is not None:
            return failure
        children: list[JSON] = []
        if op == "placeoso":
            if "bracket1" not in body:
                raise _BadRequest("placeoso: bracket1 is required")
            children = [body["bracket1"]] + ([body["bracket2"]] if "bracket2" in body else [])
        elif op == "placeoco":
            if "other" not in body:
                raise _BadRequest("placeoco: other is required")
            children = [body["other"]]
        for i, child in enumerate(children, 1):
            if not isinstance(child, dict):
                raise _BadRequest(f"{op}: bracket {i} must be an object")
            self._check_fields(child, RESTRAINED_FIELDS, f"{op} bracket {i}")
            failure = self._check_version(child, f"{op} bracket {i}", product, needs_qty=False)
            if failure is not None:
                return failure
        if self._reject_next:
            reason, text = self._reject_next.pop(0)
            return self._fail(reason, text)
        if self.max_position is not None:
            net = self._position(account["id"], contract["id"])["netPos"]
            signed = body["orderQty"] if body["action"] == "Buy" else -body["orderQty"]
            if abs(net + signed) > self.max_position:
                return self._fail("MaxPosLimitReached", f"Position limit of {self.max_position} would be exceeded")
        q = self.quotes[contract["id"]]
        if body["orderType"] == "Market" and (q.bid is None or q.ask is None):
            return self._fail("NoQuote", "No quote available for a market order")
        for clord in [body.get("clOrdId")] + [c.get("clOrdId") for c in children]:
            if clord:
                self.clord_ids[clord] += 1
        events: list[JSON] = []
        entry = self._new_order(account["id"], contract["id"], body, body["orderQty"], "Working", events)
        result: JSON = {"orderId": entry["id"]}
        if op == "placeoso":
            oco_id = self._id() if len(children) == 2 else None
            for key, child in zip(("oso1Id", "oso2Id"), children, strict=False):
                # Children wait (Suspended) until the entry fills; the reference does not say which
                # status Tradovate shows for them, ProjectX uses the same "suspended" idea.
                o = self._new_order(
                    account["id"],
                    contract["id"],
                    child,
                    body["orderQty"],
                    "Suspended",
                    events,
                    parent=entry["id"],
                    oco=oco_id,
                )
                result[key] = o["id"]
        elif op == "placeoco":
            oco_id = self._id()
            entry["ocoId"] = oco_id
            qty = body["orderQty"]
            other = self._new_order(account["id"], contract["id"], children[0], qty, "Working", events, oco=oco_id)
            result["ocoId"] = other["id"]
        self._push(events)
        self._match_all()
        return result

    def _new_order(
        self,
        account_id: int,
        contract_id: int,
        v: JSON,
        qty: int,
        status: str,
        events: list[JSON],
        *,
        parent: int | None = None,
        oco: int | None = None,
    ) -> JSON:
        now = iso(self.clock.now())
        oid = self._id()
        order: JSON = {
            "id": oid,
            "accountId": account_id,
            "contractId": contract_id,
            "timestamp": now,
            "action": v["action"],
            "ordStatus": "PendingNew",
            "executionProviderId": 1,
            "admin": False,
        }
        if parent is not None:
            order["parentId"] = parent
        if oco is not None:
            order["ocoId"] = oco
        self.entities["order"][oid] = order
        version = {
            "id": self._id(),
            "orderId": oid,
            "orderQty": qty,
            "orderType": v["orderType"],
            "timeInForce": v.get("timeInForce", "Day"),
        }
        for key in ("price", "stopPrice", "text"):
            if key in v:
                version[key] = v[key]
        self.entities["orderVersion"][version["id"]] = version
        command = {
            "id": self._id(),
            "orderId": oid,
            "timestamp": now,
            "commandType": "New",
            "commandStatus": "ExecutionSuccess",
        }
        if v.get("clOrdId"):
            command["clOrdId"] = v["clOrdId"]
        self.entities["command"][command["id"]] = command
        events += [
            self._props("order", "Created", dict(order)),
            self._props("orderVersion", "Created", version),
            self._props("command", "Created", command),
        ]
        order["ordStatus"] = status
        self._report(order, "New", events)
        events.append(self._props("order", "Updated", dict(order)))
        return order

    def _report(self, order: JSON, exec_type: str, events: list[JSON], **extra: Any) -> None:
        report = {
            "id": self._id(),
            "name": "report",
            "accountId": order["accountId"],
            "contractId": order["contractId"],
            "timestamp": iso(self.clock.now()),
            "tradeDate": self._trade_date(),
            "orderId": order["id"],
            "execType": exec_type,
            "ordStatus": order["ordStatus"],
            "action": order["action"],
            **extra,
        }
        self.entities["executionReport"][report["id"]] = report
        events.append(self._props("executionReport", "Created", report))

    def _command(self, order: JSON, kind: str) -> JSON:
        return {"id": self._id(), "orderId": order["id"], "timestamp": iso(self.clock.now()), "commandType": kind}

    def _version(self, oid: int) -> JSON:
        return max((v for v in self.entities["orderVersion"].values() if v["orderId"] == oid), key=lambda v: v["id"])

    def _modify(self, body: JSON) -> JSON:
        for key in ("orderId", "orderQty", "orderType"):
            if key not in body:
                raise _BadRequest(f"modifyorder: missing required field {key}")
        order = self.entities["order"].get(body["orderId"]) if isinstance(body["orderId"], int) else None
        if order is None:
            return self._fail("UnknownReason", f"Order {body['orderId']} not found")
        product = self._product_of(order["contractId"])
        failure = self._check_version({**body, "action": order["action"]}, "modifyorder", product, needs_qty=True)
        if failure is not None:
            return failure
        if order["ordStatus"] not in ("Working", "Suspended"):
            return self._fail("TooLate", f"Order is {order['ordStatus']}")
        if self._reject_next:
            reason, text = self._reject_next.pop(0)
            return self._fail(reason, text)
        events: list[JSON] = []
        current = self._version(order["id"])
        version = {
            "id": self._id(),
            "orderId": order["id"],
            "orderQty": body["orderQty"],
            "orderType": body["orderType"],
            "timeInForce": body.get("timeInForce", current.get("timeInForce", "Day")),
        }
        for key in ("price", "stopPrice"):
            if key in body:
                version[key] = body[key]
        self.entities["orderVersion"][version["id"]] = version
        command = self._command(order, "Modify")
        self.entities["command"][command["id"]] = command
        events += [self._props("command", "Created", command), self._props("orderVersion", "Created", version)]
        self._report(order, "Replaced", events)
        events.append(self._props("order", "Updated", dict(order)))
        self._push(events)
        self._match_all()
        return {"commandId": command["id"]}

    def _cancel(self, body: JSON) -> JSON:
        if "orderId" not in body:
            raise _BadRequest("cancelorder: missing required field orderId")
        order = self.entities["order"].get(body["orderId"]) if isinstance(body["orderId"], int) else None
        if order is None:
            return self._fail("UnknownReason", f"Order {body['orderId']} not found")
        if order["ordStatus"] not in ("Working", "Suspended"):
            return self._fail("TooLate", f"Order is {order['ordStatus']}")
        if self._reject_next:
            reason, text = self._reject_next.pop(0)
            return self._fail(reason, text)
        command = self._command(order, "Cancel")
        self.entities["command"][command["id"]] = command
        events = [self._props("command", "Created", command)]
        self._cancel_order(order, events)
        self._push(events)
        return {"commandId": command["id"]}

    def _cancel_order(self, order: JSON, events: list[JSON]) -> None:
        order["ordStatus"] = "Canceled"
        self._report(order, "Canceled", events)
        events.append(self._props("order", "Updated", dict(order)))
        # Children of an entry that never filled go with it.
        for child in self.entities["order"].values():
            if child.get("parentId") == order["id"] and child["ordStatus"] in ("Suspended", "Working"):
                self._cancel_order(child, events)

    def _liquidate(self, body: JSON) -> JSON:
        for key in ("accountId", "contractId", "admin"):
            if key not in body:
                raise _BadRequest(f"liquidateposition: missing required field {key}")
        account = self.entities["account"].get(body["accountId"])
        contract = self.entities["contract"].get(body["contractId"])
        if account is None:
            return self._fail("Unauthorized", "Account is not accessible with this login")
        if contract is None:
            return self._fail("InvalidContract", f"Unknown contract {body['contractId']}")
        events: list[JSON] = []
        for order in list(self.entities["order"].values()):
            if (
                order["accountId"] == account["id"]
                and order["contractId"] == contract["id"]
                and order["ordStatus"] in ("Working", "Suspended")
            ):
                self._cancel_order(order, events)
        net = self._position(account["id"], contract["id"])["netPos"]
        if net == 0:
            self._push(events)
            return self._fail("UnknownReason", "No position to liquidate")
        q = self.quotes[contract["id"]]
        if q.bid is None or q.ask is None:
            self._push(events)
            return self._fail("NoQuote", "No quote available to liquidate")
        v = {"action": "Sell" if net > 0 else "Buy", "orderType": "Market", "timeInForce": "Day"}
        order = self._new_order(account["id"], contract["id"], v, abs(net), "Working", events)
        self._push(events)
        self._match_all()
        return {"orderId": order["id"]}

    # ------------------------------------------------------------------ matching

    def set_quote(
        self,
        symbol: str,
        *,
        bid: float | str | None = None,
        ask: float | str | None = None,
        last: float | str | None = None,
        bid_size: int | None = None,
        ask_size: int | None = None,
        volume: int | None = None,
    ) -> None:
        """Move the fake market; subscribers get ONLY the entries that changed (A6.2: updates are
        partial), then resting orders that the new prices cross are filled."""
        contract = self._contract_by_symbol(symbol)
        assert contract is not None, f"the fake has no contract {symbol}"
        q = self.quotes[contract["id"]]
        entries: JSON = {}
        if bid is not None or bid_size is not None:
            q.bid = Decimal(str(bid)) if bid is not None else q.bid
            # A new price level shows fresh size unless the test says otherwise.
            q.bid_size = bid_size if bid_size is not None else (10 if bid is not None else q.bid_size)
            entries["Bid"] = {"price": float(q.bid) if q.bid is not None else None, "size": q.bid_size}
        if ask is not None or ask_size is not None:
            q.ask = Decimal(str(ask)) if ask is not None else q.ask
            q.ask_size = ask_size if ask_size is not None else (10 if ask is not None else q.ask_size)
            entries["Offer"] = {"price": float(q.ask) if q.ask is not None else None, "size": q.ask_size}
        if last is not None:
            q.last = Decimal(str(last))
            q.volume += 1
            entries["Trade"] = {"price": float(q.last), "size": 1}
            entries["TotalTradeVolume"] = {"size": q.volume}
        if volume is not None:
            q.volume = volume
            entries["TotalTradeVolume"] = {"size": volume}
        self._push_quote(contract["id"], entries)
        self._match_all()

    def _full_entries(self, contract_id: int) -> JSON:
        q = self.quotes[contract_id]
        entries: JSON = {}
        if q.bid is not None:
            entries["Bid"] = {"price": float(q.bid), "size": q.bid_size}
        if q.ask is not None:
            entries["Offer"] = {"price": float(q.ask), "size": q.ask_size}
        if q.last is not None:
            entries["Trade"] = {"price": float(q.last), "size": 1}
        entries["TotalTradeVolume"] = {"size": q.volume}
        entries["SettlementPrice"] = {"price": float(q.last or q.bid or 0) or None}
        if entries["SettlementPrice"]["price"] is None:
            del entries["SettlementPrice"]
        return entries

    def _push_quote(self, contract_id: int, entries: JSON) -> None:
        if not entries:
            return
        quote = {"timestamp": iso(self.clock.now()), "contractId": contract_id, "entries": entries}
        frame = "a" + json.dumps([{"e": "md", "d": {"quotes": [quote]}}])
        for conn in self._conns:
            if conn.kind == "md" and contract_id in conn.quotes:
                self._spawn(self._send(conn, frame))

    def _match_all(self) -> None:
        """Fill every working order the current quotes cross (repeats: fills release OSO children)."""
        for _ in range(10):
            events: list[JSON] = []
            for order in list(self.entities["order"].values()):
                if order["ordStatus"] == "Working":
                    self._try_fill(order, events)
            if not events:
                return
            self._push(events)

    def _try_fill(self, order: JSON, events: list[JSON]) -> None:
        q = self.quotes[order["contractId"]]
        v = self._version(order["id"])
        buy = order["action"] == "Buy"
        touch = q.ask if buy else q.bid
        if touch is None:
            return
        kind = v["orderType"]
        price: Decimal | None = None
        if kind in ("Stop", "StopLimit") and order["id"] not in self._stop_triggered:
            stop = Decimal(str(v["stopPrice"]))
            if (buy and touch >= stop) or (not buy and touch <= stop):
                self._stop_triggered.add(order["id"])
            else:
                return
        if kind in ("Market", "Stop"):
            price = touch
        else:
            limit = Decimal(str(v["price"]))
            if buy and touch <= limit:
                price = min(limit, touch)
            elif not buy and touch >= limit:
                price = max(limit, touch)
        if price is None:
            return
        # Fills take the size shown at the touch (partial fills when it is smaller than the order),
        # and that size is consumed, as on a real book.
        done, _ = self._filled.get(order["id"], (0, Decimal(0)))
        size = q.ask_size if buy else q.bid_size
        qty = min(v["orderQty"] - done, size)
        if qty <= 0:
            return
        if buy:
            q.ask_size -= qty
            self._push_quote(order["contractId"], {"Offer": {"price": float(q.ask), "size": q.ask_size}})
        else:
            q.bid_size -= qty
            self._push_quote(order["contractId"], {"Bid": {"price": float(q.bid), "size": q.bid_size}})
        self._fill(order, v, price, qty, events)

    def _fill(self, order: JSON, version: JSON, price: Decimal, qty: int, events: list[JSON]) -> None:
        fill = {
            "id": self._id(),
            "orderId": order["id"],
            "contractId": order["contractId"],
            "timestamp": iso(self.clock.now()),
            "tradeDate": self._trade_date(),
            "action": order["action"],
            "qty": qty,
            "price": float(price),
            "active": True,
            "finallyPaired": 0,
        }
        self.entities["fill"][fill["id"]] = fill
        done, notional = self._filled.get(order["id"], (0, Decimal(0)))
        done, notional = done + qty, notional + price * qty
        self._filled[order["id"]] = (done, notional)
        complete = done >= version["orderQty"]
        if complete:
            order["ordStatus"] = "Filled"
        avg = float(notional / done)
        self._report(order, "Trade", events, cumQty=done, avgPx=avg, lastQty=qty, lastPx=float(price))
        events.append(self._props("fill", "Created", fill))
        events.append(self._props("order", "Updated", dict(order)))
        self._apply_to_position(order, fill, price, events)
        if not complete:
            # Simplification: OSO children wait for the whole entry, and an OCO sibling is
            # cancelled only when its partner is done (the reference does not describe partials).
            return
        for other in self.entities["order"].values():
            if other["id"] == order["id"]:
                continue
            if other.get("parentId") == order["id"] and other["ordStatus"] == "Suspended":
                other["ordStatus"] = "Working"
                self._report(other, "New", events)
                events.append(self._props("order", "Updated", dict(other)))
            elif (
                order.get("ocoId") is not None
                and other.get("ocoId") == order["ocoId"]
                and other["ordStatus"] in ("Working", "Suspended")
            ):
                self._cancel_order(other, events)

    def _position(self, account_id: int, contract_id: int) -> JSON:
        for p in self.entities["position"].values():
            if p["accountId"] == account_id and p["contractId"] == contract_id:
                return p
        return {"netPos": 0}

    def _apply_to_position(self, order: JSON, fill: JSON, price: Decimal, events: list[JSON]) -> None:
        pos = self._position(order["accountId"], order["contractId"])
        created = "id" not in pos
        if created:
            pos = {
                "id": self._id(),
                "accountId": order["accountId"],
                "contractId": order["contractId"],
                "tradeDate": self._trade_date(),
                "netPos": 0,
                "netPrice": None,
                "bought": 0,
                "boughtValue": 0.0,
                "sold": 0,
                "soldValue": 0.0,
                "prevPos": 0,
                "prevPrice": None,
            }
            self.entities["position"][pos["id"]] = pos
        buy = order["action"] == "Buy"
        qty = fill["qty"]
        if buy:
            pos["bought"] += qty
            pos["boughtValue"] += float(price) * qty
        else:
            pos["sold"] += qty
            pos["soldValue"] += float(price) * qty
        lots = self._lots.setdefault(pos["id"], [])
        product = self._product_of(order["contractId"])
        remaining = qty
        realized = Decimal(0)
        while remaining and lots and lots[0][1] != buy:
            lot = lots[0]
            m = min(remaining, lot[2])
            buy_fill, sell_fill = (fill["id"], lot[0]) if buy else (lot[0], fill["id"])
            buy_price, sell_price = (price, lot[3]) if buy else (lot[3], price)
            pair = {
                "id": self._id(),
                "positionId": pos["id"],
                "buyFillId": buy_fill,
                "sellFillId": sell_fill,
                "qty": m,
                "buyPrice": float(buy_price),
                "sellPrice": float(sell_price),
                "active": True,
            }
            self.entities["fillPair"][pair["id"]] = pair
            events.append(self._props("fillPair", "Created", pair))
            realized += (sell_price - buy_price) * m * product.value_per_point
            lot[2] -= m
            remaining -= m
            if lot[2] == 0:
                lots.pop(0)
        if remaining:
            lots.append([fill["id"], buy, remaining, price])
        pos["netPos"] = sum(lot[2] if lot[1] else -lot[2] for lot in lots)
        if lots:
            total = sum(lot[3] * lot[2] for lot in lots)
            pos["netPrice"] = float(total / sum(lot[2] for lot in lots))
        else:
            pos["netPrice"] = None
        pos["timestamp"] = iso(self.clock.now())
        events.append(self._props("position", "Created" if created else "Updated", dict(pos)))
        if realized:
            cash = next(c for c in self.entities["cashBalance"].values() if c["accountId"] == order["accountId"])
            cash["amount"] = float(Decimal(str(cash["amount"])) + realized)
            cash["realizedPnL"] = float(Decimal(str(cash["realizedPnL"])) + realized)
            cash["weekRealizedPnL"] = float(Decimal(str(cash["weekRealizedPnL"])) + realized)
            cash["timestamp"] = iso(self.clock.now())
            events.append(self._props("cashBalance", "Updated", dict(cash)))

    # ================================================================== pushing props

    @staticmethod
    def _props(entity_type: str, event_type: str, entity: JSON) -> JSON:
        return {"e": "props", "d": {"entityType": entity_type, "eventType": event_type, "entity": entity}}

    def _push(self, events: list[JSON]) -> None:
        """Send one batch of props events to every synced trading socket, in one ``a[...]`` frame.

        U8: the order of events after a change is not documented; with ``scramble_props`` the fake
        sends each batch reversed (fills before their orders) to prove the client does not care.
        """
        if not events:
            return
        batch = list(reversed(events)) if self.scramble_props else events
        frame = "a" + json.dumps(batch)
        for conn in self._conns:
            if conn.kind == "trading" and conn.synced:
                self._spawn(self._send(conn, frame))
        self._notify()

    def sync_message(self) -> JSON:
        """The SyncMessage: plural keys (A6.1), ``users`` and ``contractGroups`` always present."""
        snap: JSON = {key: list(self.entities[entity].values()) for entity, key in SYNC_KEYS.items()}
        # A6.1: reference data only for what the user's orders and positions refer to.
        used = {o["contractId"] for o in self.entities["order"].values()}
        used |= {p["contractId"] for p in self.entities["position"].values()}
        contracts = [c for c in self.entities["contract"].values() if c["id"] in used]
        maturities = [self.entities["contractMaturity"][c["contractMaturityId"]] for c in contracts]
        snap["contracts"] = contracts
        snap["contractMaturities"] = maturities
        snap["products"] = [self.entities["product"][m["productId"]] for m in maturities]
        snap["users"] = [{"id": self.user_id, "name": self.username}]
        snap["contractGroups"] = []
        return snap

    # ================================================================== sockets

    async def _send(self, conn: _Conn, frame: str) -> None:
        if self.silent or conn.ws.closed:
            return
        async with conn.lock:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.ws.send_str(frame)
                conn.last_sent = asyncio.get_running_loop().time()

    async def _websocket(self, request: web.Request, kind: str) -> web.StreamResponse:
        if self.refuse_sockets:
            return web.Response(status=503, text="Service unavailable")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = _Conn(kind=kind, ws=ws, request=request)
        self._conns.append(conn)
        self.connections[kind] += 1
        self._notify()
        beat = asyncio.get_running_loop().create_task(self._heartbeats(conn))
        try:
            await self._send(conn, "o")
            while True:
                try:
                    msg = await ws.receive(timeout=self.client_timeout)
                except TimeoutError:
                    # U6: the real timeout for a client that stops heartbeating is not documented.
                    self.dropped_for_silence += 1
                    await self._send(conn, 'c[1000,"Heartbeat timeout"]')
                    break
                if msg.type != WSMsgType.TEXT:
                    break
                if self.silent:
                    continue
                await self._on_message(conn, msg.data)
                self._notify()
        finally:
            beat.cancel()
            self._conns.remove(conn)
            self._notify()
            with contextlib.suppress(Exception):
                await ws.close()
        return ws

    async def _heartbeats(self, conn: _Conn) -> None:
        loop = asyncio.get_running_loop()
        while not conn.ws.closed:
            await asyncio.sleep(self.heartbeat_interval)
            if loop.time() - conn.last_sent >= self.heartbeat_interval:
                await self._send(conn, "h")

    async def _reply(self, conn: _Conn, request_id: int, status: int, data: Any = None) -> None:
        item: JSON = {"s": status, "i": request_id}
        if data is not None:
            item["d"] = data
        await self._send(conn, "a" + json.dumps([item]))

    async def _on_message(self, conn: _Conn, text: str) -> None:
        if text == "[]":
            self.heartbeats[conn.kind] += 1
            return
        parts = text.split("\n", 3)
        if len(parts) != 4 or not parts[1].strip().lstrip("-").isdigit():
            # A6 does not say how the server treats a malformed message; without a request id it
            # cannot answer, so the fake closes the socket, as a strict server would.
            self.bad_frames += 1
            await self._send(conn, 'c[1008,"Malformed message"]')
            await conn.ws.close()
            return
        endpoint, rid_text, query_text, body_text = parts
        endpoint = endpoint.strip().lower()
        rid = int(rid_text)
        if endpoint == "authorize":
            kinds = ("access", "md") if conn.kind == "md" else ("access",)
            if self._valid(body_text.strip(), kinds):
                conn.authorized = True
                await self._reply(conn, rid, 200)
            else:
                self.unauthorized += 1
                await self._reply(conn, rid, 401, "Access is denied")
            return
        if not conn.authorized:
            self.unauthorized += 1
            await self._reply(conn, rid, 401, "Not authorized")
            return
        body: Any = None
        if body_text.strip():
            try:
                body = json.loads(body_text)
            except ValueError:
                self.bad_frames += 1
                await self._reply(conn, rid, 400, "Request body is not valid JSON")
                return
        query = dict(pair.split("=", 1) for pair in query_text.split("&") if "=" in pair)
        if self._fail_429.get(endpoint):
            self._fail_429[endpoint] -= 1
            await self._reply(conn, rid, 429)
            return
        queued = self._penalties.get(endpoint)
        if queued and not (isinstance(body, dict) and "p-ticket" in body):
            p_time, captcha = queued.pop(0)
            await self._reply(conn, rid, 200, self._penalty(p_time, captcha))
            return
        again = self._check_ticket(body)
        if again is not None:
            await self._reply(conn, rid, 200, again)
            return
        over = self._over_rate()
        if over is not None:
            await self._reply(conn, rid, 200, over)
            return
        if conn.kind == "md":
            await self._md_request(conn, rid, endpoint, body)
            return
        if endpoint == "user/syncrequest":
            self.sync_requests += 1
            users = body.get("users") if isinstance(body, dict) else None
            if not isinstance(users, list) or users != [self.user_id]:
                await self._reply(conn, rid, 400, "users must list the authorized user's id")
                return
            await self._reply(conn, rid, 200, self.sync_message())
            conn.synced = True
            return
        # A6.1: every REST operation is reachable over the socket too.
        try:
            status, payload = self._dispatch("POST" if body is not None else "GET", endpoint, query, body)
        except _BadRequest as exc:
            status, payload = 400, str(exc)
        await self._reply(conn, rid, status, payload)

    async def _md_request(self, conn: _Conn, rid: int, endpoint: str, body: Any) -> None:
        symbol = body.get("symbol") if isinstance(body, dict) else None
        if endpoint in ("md/subscribequote", "md/unsubscribequote", "md/subscribedom", "md/unsubscribedom"):
            contract = self._contract_by_symbol(symbol)
            if contract is None:
                await self._reply(conn, rid, 404, f"Symbol not found: {symbol}")
                return
            if endpoint == "md/subscribequote":
                self.subscribe_requests += 1
                conn.quotes.add(contract["id"])
                # U5: the reply may have no d; the fake sends none.
                await self._reply(conn, rid, 200)
                self._push_quote(contract["id"], self._full_entries(contract["id"]))
            elif endpoint == "md/unsubscribequote":
                conn.quotes.discard(contract["id"])
                await self._reply(conn, rid, 200)
            elif endpoint == "md/subscribedom":
                await self._reply(conn, rid, 200)
                q = self.quotes[contract["id"]]
                dom = {
                    "contractId": contract["id"],
                    "timestamp": iso(self.clock.now()),
                    "bids": [{"price": float(q.bid), "size": q.bid_size}] if q.bid is not None else [],
                    "offers": [{"price": float(q.ask), "size": q.ask_size}] if q.ask is not None else [],
                }
                await self._send(conn, "a" + json.dumps([{"e": "md", "d": {"doms": [dom]}}]))
            else:
                await self._reply(conn, rid, 200)
            return
        if endpoint == "md/getchart":
            contract = self._contract_by_symbol(symbol)
            if contract is None:
                await self._reply(conn, rid, 404, f"Symbol not found: {symbol}")
                return
            hist, real = self._id(), self._id()
            await self._reply(conn, rid, 200, {"historicalId": hist, "realtimeId": real})
            q = self.quotes[contract["id"]]
            px = float(q.last or q.bid or 0)
            bar = {
                "timestamp": iso(self.clock.now()),
                "open": px,
                "high": px,
                "low": px,
                "close": px,
                "upVolume": 0,
                "downVolume": 0,
                "upTicks": 0,
                "downTicks": 0,
                "bidVolume": 0,
                "offerVolume": 0,
            }
            charts = [{"id": hist, "td": 20261124, "bars": [bar]}, {"id": hist, "eoh": True}]
            await self._send(conn, "a" + json.dumps([{"e": "chart", "d": {"charts": charts}}]))
            return
        if endpoint == "md/cancelchart":
            await self._reply(conn, rid, 200)
            return
        await self._reply(conn, rid, 404, f"Unknown endpoint {endpoint}")

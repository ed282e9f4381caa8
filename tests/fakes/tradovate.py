"""A strict fake Tradovate server on a loopback port: REST, trading socket, market-data socket.

It speaks the wire protocol of ``shared/reference/brokers-tradovate-projectx.md`` part A, as
strictly as the reference allows (checklist D1):

- ``POST /v1/auth/accesstokenrequest``: a token, HTTP 200 ``errorText`` for bad credentials, or a
  penalty ticket ``{"p-ticket","p-time","p-captcha"}`` whose resend is accepted only once
  ``p-time`` has passed on the shared clock. ``/auth/renewaccesstoken`` (GET or POST).
- A bearer check on every other route (401, empty body); 429 with an empty body on demand.
- The entity routes ``/v1/{entity}/list|item|items|find|suggest|deps|ldeps`` (capped on demand,
  as the vendor caps list answers); order commands and the matching book live in
  :mod:`tests.fakes.tradovate_book`.
- Tradovate's stop answers: a 429 that locks the user out for an hour and extends on every
  request, a 423 warning; a session cap of two (a third login closes the oldest session).
- What the vendor's own clients send (``TradovateSocket.js``, ``WebSocketClient.cs``): the
  authorize token raw or JSON-quoted, bodies and queries sent as the text ``undefined``, sync
  bodies ``{users}``, ``{accounts}``, ``{splitResponses}``; a malformed frame is answered s:400.
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
from tests.fakes.tradovate_book import (
    JSON,
    TradovateBook,
    _BadRequest,
    _Product,
    _Quote,
    iso,
)

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
    session: int | None = None


class FakeTradovate(TradovateBook):
    """The fake server. ``await start()``; URLs in :attr:`rest_url`, :attr:`ws_url`, :attr:`md_url`."""

    def __init__(
        self,
        *,
        clock: FakeClock,
        username: str = "trader1",
        password: str = "Pa55word-very-secret",
        cid: int = 8123,
        sec: str = "sec-0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        token_minutes: float = 90,
        heartbeat_interval: float = 2.5,
        client_timeout: float = 10.0,
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
        #: Each login opens a session; at most two live at once, a third closes the oldest
        #: (partner access-token-request page). Renewal keeps the session.
        self.session_of: dict[str, int] = {}
        self.sessions: list[int] = []
        self.max_sessions = 2
        self.sessions_closed = 0
        self.most_sessions = 0
        self._session_ids = itertools.count(1)
        self._deny_401: Counter[str] = Counter()
        self._refuse_authorize = 0
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
        #: example-api-faq (data size limits): list answers hold at most a variable number of
        #: entities. With a cap, every list, deps, ldeps, items and suggest answer is cut to its
        #: oldest ``list_cap`` entities.
        self.list_cap: int | None = None
        #: (requests, seconds): more authenticated requests than this in the window earn a penalty
        #: ticket whose p-time is the wait until the window has room again (A7).
        self.rate_limit: tuple[int, float] | None = None
        self._recent: deque[datetime] = deque()
        self._slow: dict[str, list[float]] = {}
        self._penalties: dict[str, list[tuple[float, bool]]] = {}
        self._fail_429: Counter[str] = Counter()
        self._warn_423: Counter[str] = Counter()
        #: The user's 429 lockout: every request before this time is answered 429 and restarts the
        #: hour (partner error-handling page: "requests made during the window will reset the lockout").
        self.locked_until: datetime | None = None
        self._lost_answers: Counter[str] = Counter()  # fault harness switches (tests/faults)
        self._cut_requests: Counter[str] = Counter()
        self._reject_next: list[tuple[str, str]] = []
        self._reject_after: list[tuple[str, str, str]] = []
        #: WebSocketClient.cs reads a props ``entity`` as an object or an array: send arrays.
        self.props_as_arrays = False

        # What happened, for assertions.
        self.requests: list[tuple[str, str]] = []
        self.requests_in_lockout = 0
        self.unauthorized = 0
        self.logins = 0
        self.logins_elsewhere = 0
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
        """The next request to ``path`` earns HTTP 429 (empty body) / ``s:429`` and starts the
        user's hour-long lockout; ``times`` > 1 arms it again for later requests."""
        self._fail_429[path.lower()] += times

    def warn_423(self, path: str, times: int = 1) -> None:
        """Answer the next ``times`` requests to ``path`` with HTTP 423 / ``s:423`` (the warning
        that a lockout is near; the request is not processed)."""
        self._warn_423[path.lower()] += times

    def _lockout(self, endpoint: str) -> int | None:
        """429 while locked out (each such request restarts the hour), 429 that starts one, 423 on
        demand, or None: the request goes on."""
        now = self.clock.now()
        if self.locked_until is not None and now < self.locked_until:
            self.requests_in_lockout += 1
            self.locked_until = now + timedelta(hours=1)
            return 429
        if self._fail_429.get(endpoint):
            self._fail_429[endpoint] -= 1
            self.locked_until = now + timedelta(hours=1)
            return 429
        if self._warn_423.get(endpoint):
            self._warn_423[endpoint] -= 1
            return 423
        return None

    def reject_next(self, reason: str, text: str = "") -> None:
        """The next order command fails with this ``failureReason`` / ``failureText``."""
        self._reject_next.append((reason, text))

    def reject_after_accept(self, status: str, reason: str, text: str = "") -> None:
        """The next order command is accepted (an id comes back), then rejected on the stream: a
        ``commandReport`` with ``commandStatus`` (RiskRejected, ExecutionRejected), ``rejectReason``
        and ``text`` (C# sample Trading.cs), and the order Rejected when it was a new order."""
        self._reject_after.append((status, reason, text))

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

    def _issue(self, kind: str, session: int) -> tuple[str, datetime]:
        token = secrets.token_urlsafe(48)
        expires = self.clock.now() + timedelta(minutes=self.token_minutes)
        self.tokens[token] = (expires, kind)
        self.session_of[token] = session
        return token, expires

    def _open_session(self) -> int:
        session = next(self._session_ids)
        self.sessions.append(session)
        while len(self.sessions) > self.max_sessions:
            self._close_session(self.sessions[0])
        self.most_sessions = max(self.most_sessions, len(self.sessions))
        return session

    def _close_session(self, session: int) -> None:
        """The oldest session goes: its tokens stop working and its sockets are closed."""
        self.sessions.remove(session)
        self.sessions_closed += 1
        for token in [t for t, s in self.session_of.items() if s == session]:
            self.tokens.pop(token, None)
        for conn in list(self._conns):
            if conn.session == session:
                self._spawn(self._close_conn(conn, "Session closed: too many concurrent sessions"))

    async def _close_conn(self, conn: _Conn, reason: str) -> None:
        await self._send(conn, "c" + json.dumps([1000, reason]))
        await conn.ws.close()

    def login_elsewhere(self) -> None:
        """Another application logs in as the same user (a new session)."""
        self.logins_elsewhere += 1
        self._grant()

    def deny_401(self, path: str, times: int = 1) -> None:
        """Answer the next ``times`` requests to ``path`` 401 although the session is valid (the
        vendor's 401 also means "no permission for this", e.g. a live device not yet approved)."""
        self._deny_401[path.lower()] += times

    def refuse_authorize(self, times: int = 1) -> None:
        """Refuse the next ``times`` socket authorizations with a valid token (``s:401``)."""
        self._refuse_authorize += times

    def _valid(self, token: str | None, kinds: tuple[str, ...] = ("access",)) -> bool:
        if not token:
            return False
        entry = self.tokens.get(token)
        return entry is not None and entry[1] in kinds and self.clock.now() < entry[0]

    def _grant(self, session: int | None = None) -> JSON:
        if session is None:
            session = self._open_session()
        access, expires = self._issue("access", session)
        md, _ = self._issue("md", session)
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
        stop = self._lockout(endpoint)
        if stop is not None:
            return stop, None
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
            return 200, self._grant(self.session_of.get(token or ""))
        if not self._valid(token):
            self.unauthorized += 1
            return 401, None
        if self._deny_401.get(endpoint):
            self._deny_401[endpoint] -= 1
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
        status, payload = self._entity_rows(entity, lower, op, query)
        if isinstance(payload, list) and self.list_cap is not None:
            payload = sorted(payload, key=lambda r: r.get("id", 0))[: self.list_cap]
        return status, payload

    def _entity_rows(self, entity: str, lower: str, op: str, query: JSON) -> tuple[int, Any]:
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
        if self.props_as_arrays:
            batch = self._as_arrays(batch)
        frame = "a" + json.dumps(batch)
        for conn in self._conns:
            if conn.kind == "trading" and conn.synced:
                self._spawn(self._send(conn, frame))
        self._notify()

    @staticmethod
    def _as_arrays(batch: list[JSON]) -> list[JSON]:
        """Consecutive props of one entity and event type as one event whose entity is an array."""
        out: list[JSON] = []
        for item in batch:
            d = item["d"]
            last = out[-1]["d"] if out else None
            if last is not None and (last["entityType"], last["eventType"]) == (d["entityType"], d["eventType"]):
                last["entity"].append(d["entity"])
            else:
                out.append({"e": "props", "d": {**d, "entity": [d["entity"]]}})
        return out

    def _sync_scope(self, body: Any) -> tuple[set[int] | None, str]:
        """The accounts a sync body asks for (None: all of the user's) or why it is refused.

        Vendor samples send ``{users: [id]}`` (example-api-faq), ``{accounts: [id]}``
        (example-api-trading-strategy) and ``{splitResponses: true}`` (partner docs; how the
        chunks are cut is not described in the sources read, so the fake sends one chunk).
        """
        if not isinstance(body, dict):
            return None, "the sync body must be an object"
        users, accounts = body.get("users"), body.get("accounts")
        mine = {a["id"] for a in self.entities["account"].values()}
        if users is not None and users != [self.user_id]:
            return None, "users must list the authorized user's id"
        if accounts is not None:
            if not isinstance(accounts, list) or not accounts or not set(accounts) <= mine:
                return None, "accounts must list accounts of the authorized user"
            return set(accounts), ""
        if users is None and body.get("splitResponses") is not True:
            return None, "a sync needs users, accounts or splitResponses"
        return None, ""

    def sync_message(self, accounts: set[int] | None = None) -> JSON:
        """The SyncMessage: plural keys (A6.1), ``users`` and ``contractGroups`` always present."""
        snap: JSON = {key: list(self.entities[entity].values()) for entity, key in SYNC_KEYS.items()}
        if accounts is not None:
            snap["accounts"] = [a for a in snap["accounts"] if a["id"] in accounts]
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

    async def _send_later(self, conn: _Conn, frame: str, delay: float) -> None:
        await asyncio.sleep(delay)
        await self._send(conn, frame)

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
            # A malformed message is answered s:400 and the socket stays open (the vendor's socket
            # answers like HTTP; issue 15). Without a readable id the answer carries none.
            self.bad_frames += 1
            rid_guess = parts[1].strip() if len(parts) > 1 else ""
            item: JSON = {"s": 400, "d": "Malformed request: expected endpoint, id, query and body lines"}
            if rid_guess.lstrip("-").isdigit():
                item["i"] = int(rid_guess)
            await self._send(conn, "a" + json.dumps([item]))
            return
        endpoint, rid_text, query_text, body_text = parts
        endpoint = endpoint.strip().lower()
        rid = int(rid_text)
        # TradovateSocket.js writes ${JSON.stringify(body)} and the strategy repo ${query}: a missing
        # body or query arrives as the text "undefined". Both mean none.
        if body_text.strip() == "undefined":
            body_text = ""
        if query_text.strip() == "undefined":
            query_text = ""
        stop = self._lockout(endpoint)
        if stop is not None:
            await self._reply(conn, rid, stop)
            return
        if endpoint == "authorize":
            kinds = ("access", "md") if conn.kind == "md" else ("access",)
            token = body_text.strip()
            if token.startswith('"'):
                # TradovateSocket.js sends JSON.stringify(token), the tutorials and the C# client the
                # raw token (reference A6 says raw): both are accepted.
                with contextlib.suppress(ValueError):
                    token = str(json.loads(token))
            if self._refuse_authorize and self._valid(token, kinds):
                self._refuse_authorize -= 1
                self.unauthorized += 1
                await self._reply(conn, rid, 401, "Access is denied")
            elif self._valid(token, kinds):
                conn.authorized = True
                conn.session = self.session_of.get(token)
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
            accounts, problem = self._sync_scope(body)
            if problem:
                await self._reply(conn, rid, 400, problem)
                return
            await self._reply(conn, rid, 200, self.sync_message(accounts))
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
                # U5 left the reply's d open; the vendor's JS reads response.d['p-ticket'], so a
                # d object it is.
                await self._reply(conn, rid, 200, {})
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
            # example-api-faq (large chart requests): charts and the end-of-history object carry
            # the subscription's realtimeId (TradovateSocket.js filters on it).
            charts = [{"id": real, "td": 20261124, "bars": [bar]}, {"id": real, "eoh": True}]
            # History follows the reply a moment later, as from a real server (the vendor's JS looks
            # the contract up before it listens for bars).
            self._spawn(self._send_later(conn, "a" + json.dumps([{"e": "chart", "d": {"charts": charts}}]), 0.1))
            return
        if endpoint == "md/cancelchart":
            await self._reply(conn, rid, 200)
            return
        await self._reply(conn, rid, 404, f"Unknown endpoint {endpoint}")

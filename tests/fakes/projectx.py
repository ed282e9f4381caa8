"""A strict fake ProjectX Gateway (TopstepX) on a loopback port: REST and both SignalR hubs.

It follows the vendor (``shared/reference/brokers-tradovate-projectx.md`` part B, corrected by
``vendor-updates.md``) and what independent clients send: project-x-py 4.4 and pysignalr 1.3
talk to it unmodified (``tests/integration/test_fake_projectx.py``).

- REST under ``/api``: all POST except ``GET /api/Status/ping``; paths match case-insensitively
  as ASP.NET routes do. Auth/loginKey, loginApp, validate, logout (a real HS256 JWT with ``exp``,
  24 h); Account/search; Contract/search, searchById, available; History/retrieveBars (units
  1-7, at most 20,000 bars); Order/search, searchOpen, searchById, place, cancel, modify;
  Position/searchOpen, closeContract, partialCloseContract; Trade/search. Binding rules and
  envelopes in :mod:`tests.fakes.projectx_wire`; matching in :mod:`tests.fakes.projectx_book`;
  contracts, quotes, depth and bars in :mod:`tests.fakes.projectx_market`.
- Rate limits (vendor-updates.md): 200 requests / 60 s, History/retrieveBars 30 / 30 s, per
  user, HTTP 429 beyond (refused requests do not count).
- Hubs ``/hubs/user`` and ``/hubs/market`` (:mod:`tests.fakes.signalr`): User hub
  SubscribeAccounts, SubscribeOrders/Positions/Trades(accountId) and the Unsubscribe* twins,
  events GatewayUserAccount/Order/Position/Trade with the entity as the one argument (bare, or
  wrapped ``{action, data}`` with :attr:`FakeProjectX.wrap_user_events`, U11). Market hub
  SubscribeContractQuotes/Trades/MarketDepth(contractId), events GatewayQuote (a full quote
  first, then partial ones), GatewayTrade and GatewayDepth as ``(contractId, data)``.
- User-hub events for a change go out before the REST answer that caused it, the harder order
  for a client (an order event can arrive before ``orderId`` does).

Test API (async, deterministic): :meth:`set_quote`, :meth:`set_price`, :meth:`trade`,
:meth:`trade_through`, :meth:`fill`. Fault switches: :meth:`drop_sockets`,
:meth:`close_sockets`, :meth:`go_silent` (socket open and pinging, no ticks: project-x-py
issue #97), :meth:`expire_tokens`, :meth:`slow`, :meth:`fail_429`, :meth:`reject_next`,
:attr:`rate_limits`, :attr:`market_open`, :meth:`push_logout`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
import secrets
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from aiohttp import web

from tests.fakes.projectx_book import Account, Book
from tests.fakes.projectx_market import ROOTS, Contract, Market, front_month, make_contract
from tests.fakes.projectx_rest import RestEndpoints
from tests.fakes.projectx_wire import Invalid, envelope, problem
from tests.fakes.signalr import Hub, HubConnection, HubError, HubMethod

JSON = dict[str, Any]


class _WallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class _Token:
    user: str
    expires: datetime
    revoked: bool = False


class FakeProjectX(RestEndpoints):
    """The fake gateway. ``await start()``; URLs in :attr:`api_url`, :attr:`user_hub_url`,
    :attr:`market_hub_url` (what project-x-py reads from PROJECTX_API_URL and friends)."""

    def __init__(
        self,
        *,
        clock: Any = None,
        username: str = "trader1",
        api_key: str = "px-api-key-7c1d9e0f5a2b4c6d8e0f1a2b3c4d5e6f",
        password: str = "Pa55word-px",
        app_id: str = "app-tterm-test",
        verify_key: str = "verify-key-00112233",
        token_lifetime: timedelta = timedelta(hours=24),
        ping_interval: float = 15.0,
        client_timeout: float = 30.0,
        symbols: tuple[str, ...] = ("MES", "MNQ", "ES", "NQ", "CL", "GC"),
        starting_balance: Decimal = Decimal("50000"),
    ) -> None:
        self.clock = clock or _WallClock()
        self.username, self.api_key, self.password = username, api_key, password
        self.app_id, self.verify_key = app_id, verify_key
        self.token_lifetime = token_lifetime
        self._secret = secrets.token_bytes(32)
        self.tokens: dict[str, _Token] = {}
        today = self.clock.now().date()
        contracts = [make_contract(s, *front_month(ROOTS[s], today)) for s in symbols]
        self.market = Market(contracts, self.clock.now())
        accounts = [
            Account(536, "50KTC-V2-123456-11111111", starting_balance),
            Account(537, "PRAC-V2-123456-22222222", starting_balance),
            # Not active: only listed with onlyActiveAccounts false.
            Account(538, "50KTC-V2-123456-00000000", Decimal("0"), can_trade=False, active=False),
        ]
        self.book = Book(self.market, accounts, self.clock.now)
        self.user_hub = Hub(
            "user",
            authenticate=self._hub_principal,
            methods=self._user_methods(),
            ping_interval=ping_interval,
            client_timeout=client_timeout,
            on_change=self._notify,
        )
        self.market_hub = Hub(
            "market",
            authenticate=self._hub_principal,
            methods=self._market_methods(),
            ping_interval=ping_interval,
            client_timeout=client_timeout,
            on_change=self._notify,
        )
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._seen_orders: set[int] = set()

        # Fault switches and options.
        #: (requests, seconds) per window; vendor-updates.md: retrieveBars 30/30 s, the rest 200/60 s.
        self.rate_limits: dict[str, tuple[int, float]] = {"bars": (30, 30.0), "default": (200, 60.0)}
        self.wrap_user_events = False
        self.api_key_enabled = True
        self.api_subscription = True
        self.tick_bars = True  # unit 7 (a later gateway version)
        self._recent: dict[tuple[str, str], deque[float]] = {}  # (who, bucket) -> request times
        self._slow: dict[str, list[float]] = {}
        self._fail_429: Counter[str] = Counter()
        self._reject_next: dict[str, list[tuple[int, str]]] = {}

        # What happened, for assertions.
        self.requests: list[tuple[str, str]] = []
        self.bodies: list[tuple[str, Any]] = []
        self.logins = 0
        self.failed_logins = 0
        self.validations = 0
        self.unauthorized = 0
        self.throttled: Counter[str] = Counter()
        self.bad_requests = 0

    # ================================================================== lifecycle

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._route)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{base}/api"
        self.user_hub_url = f"{base}/hubs/user"
        self.market_hub_url = f"{base}/hubs/market"

    async def stop(self) -> None:
        for hub in (self.user_hub, self.market_hub):
            hub.drop()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeProjectX:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def env(self) -> dict[str, str]:
        """project-x-py's documented environment variables, pointing at this fake."""
        return {
            "PROJECTX_API_URL": self.api_url,
            "PROJECTX_USER_HUB_URL": self.user_hub_url,
            "PROJECTX_MARKET_HUB_URL": self.market_hub_url,
            "PROJECT_X_USERNAME": self.username,
            "PROJECT_X_API_KEY": self.api_key,
        }

    def contract_id(self, symbol: str) -> str:
        """The id of the front contract for a CME root (``MES``, ``ES``...) or a contract name."""
        wanted = symbol.upper()
        for c in self.market.contracts.values():
            if wanted in (c.spec.symbol, c.name, c.id.upper()):
                return c.id
        raise KeyError(symbol)

    def contract(self, contract: str) -> Contract:
        return self.market.contracts[self.contract_id(contract)]

    # ================================================================== waiting (tests)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Wait until ``predicate()`` holds (re-checked after every request and hub message)."""

        async def _wait() -> None:
            while not predicate():
                await self._changed.wait()

        await asyncio.wait_for(_wait(), within)

    # ================================================================== fault switches

    def slow(self, path: str, seconds: float, times: int = 1) -> None:
        """Answer the next ``times`` requests to ``path`` (``Order/place``) ``seconds`` late,
        after doing the work: the order exists while the client still waits."""
        self._slow.setdefault(path.lower().strip("/"), []).extend([seconds] * times)

    def fail_429(self, path: str, times: int = 1) -> None:
        """Answer the next ``times`` requests to ``path`` with HTTP 429 without doing the work."""
        self._fail_429[path.lower().strip("/")] += times

    def reject_next(self, path: str, code: int, message: str) -> None:
        """The next request to ``path`` fails with this envelope (HTTP 200) without doing the work."""
        self._reject_next.setdefault(path.lower().strip("/"), []).append((code, message))

    def expire_tokens(self) -> None:
        """Every token issued so far expires now."""
        past = self.clock.now() - timedelta(seconds=1)
        for token in self.tokens.values():
            token.expires = min(token.expires, past)

    def drop_sockets(self, hub: str = "all") -> int:
        """Cut the TCP connection of every hub socket (``user``, ``market`` or ``all``)."""
        return sum(h.drop() for h in self._hubs(hub))

    async def close_sockets(self, hub: str = "all", error: str | None = None, allow_reconnect: bool = True) -> int:
        """Send SignalR Close (type 7) and close every socket of the hub(s)."""
        return sum([await h.close_all(error, allow_reconnect) for h in self._hubs(hub)])

    def go_silent(self, hub: str = "market", silent: bool = True) -> None:
        """Stop (or resume) events while the socket stays open and pings carry on."""
        for h in self._hubs(hub):
            h.silent = silent

    async def push_logout(self) -> None:
        """The gateway ends the session from its side: ``GatewayLogout`` on both hubs (U14:
        the argument shape is unknown; the fake sends no argument)."""
        for h in self._hubs("all"):
            for conn in list(h.connections):
                await conn.invoke("GatewayLogout")

    def _hubs(self, hub: str) -> list[Hub]:
        return {"user": [self.user_hub], "market": [self.market_hub], "all": [self.user_hub, self.market_hub]}[hub]

    @property
    def market_open(self) -> bool:
        return self.book.market_open

    @market_open.setter
    def market_open(self, value: bool) -> None:
        self.book.market_open = value

    # ================================================================== tokens

    def _b64(self, raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def issue_token(self, user: str) -> str:
        now = self.clock.now()
        expires = now + self.token_lifetime
        jti = secrets.token_hex(8)
        header = self._b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = {
            "sub": user,
            "name": user,
            "jti": jti,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(expires.timestamp()),
        }
        payload = self._b64(json.dumps(claims).encode())
        signature = self._b64(hmac.new(self._secret, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        self.tokens[jti] = _Token(user, expires)
        return f"{header}.{payload}.{signature}"

    def _check_token(self, token: str | None) -> tuple[str | None, str]:
        """(user, "") for a good token, else (None, the WWW-Authenticate challenge)."""
        if not token:
            return None, "Bearer"
        parts = token.split(".")
        if len(parts) != 3:
            return None, 'Bearer error="invalid_token"'
        header, payload, signature = parts
        expected = self._b64(hmac.new(self._secret, f"{header}.{payload}".encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, signature):
            return None, 'Bearer error="invalid_token", error_description="The signature is invalid"'
        try:
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            info = self.tokens[claims["jti"]]
        except (ValueError, KeyError, TypeError):
            return None, 'Bearer error="invalid_token"'
        if info.revoked:
            return None, 'Bearer error="invalid_token"'
        if self.clock.now() >= info.expires:
            when = f"{info.expires:%m/%d/%Y %H:%M:%S}"
            return None, f'Bearer error="invalid_token", error_description="The token expired at \'{when}\'"'
        return info.user, ""

    def _hub_principal(self, token: str | None) -> str | None:
        return self._check_token(token)[0]

    # ================================================================== HTTP

    async def _route(self, request: web.Request) -> web.StreamResponse:
        path = request.path.lower().rstrip("/")
        if path.startswith("/hubs/"):
            rest = path[len("/hubs/") :]
            hub = {"user": self.user_hub, "market": self.market_hub}.get(rest.split("/")[0])
            if hub is None:
                return web.Response(status=404)
            if rest.endswith("/negotiate"):
                return await hub.negotiate(request)
            if "/" in rest:
                return web.Response(status=404)
            return await hub.websocket(request)
        if not path.startswith("/api/"):
            return web.Response(status=404)
        endpoint = path[len("/api/") :]
        self.requests.append((request.method, endpoint))
        try:
            response = await self._handle(request, endpoint)
        finally:
            self._notify()
        delays = self._slow.get(endpoint)
        if delays:
            await asyncio.sleep(delays.pop(0))
        return response

    async def _handle(self, request: web.Request, endpoint: str) -> web.StreamResponse:
        handler = self._endpoints().get(endpoint)
        if endpoint == "status/ping":
            if request.method != "GET":
                return web.Response(status=405)
            # UNCERTAIN body (U16): the action returns the string "pong"; ASP.NET writes it as
            # JSON ("pong" in quotes) when the client asks for JSON, as text otherwise.
            if "json" in request.headers.get("Accept", ""):
                return web.json_response("pong")
            return web.Response(text="pong", content_type="text/plain")
        if handler is None:
            return web.Response(status=404)
        if request.method != "POST":
            return web.Response(status=405)
        anonymous = endpoint in ("auth/loginkey", "auth/loginapp")
        auth = request.headers.get("Authorization", "")
        user, challenge = self._check_token(auth[7:] if auth.startswith("Bearer ") else None)
        limited = self._rate_limited(endpoint, user or f"peer:{request.remote}")
        if limited is not None:
            return limited
        if not anonymous and user is None:
            self.unauthorized += 1
            return web.Response(status=401, headers={"WWW-Authenticate": challenge})
        raw = await request.read() if request.can_read_body else b""
        body: Any = None
        if raw.strip():
            if "json" not in request.headers.get("Content-Type", ""):
                return web.Response(status=415)
            try:
                body = json.loads(raw)
            except ValueError:
                self.bad_requests += 1
                return problem({"$": ["The request body is not valid JSON."]})
        self.bodies.append((endpoint, body))
        rejects = self._reject_next.get(endpoint)
        if rejects:
            code, message = rejects.pop(0)
            return web.json_response(envelope(code=code, message=message))
        try:
            payload = handler(body, user)
        except Invalid as exc:
            self.bad_requests += 1
            return problem(exc.errors)
        await self.flush()
        return web.json_response(payload)

    def _rate_limited(self, endpoint: str, who: str) -> web.Response | None:
        bucket = "bars" if endpoint == "history/retrievebars" else "default"
        if self._fail_429[endpoint] > 0:
            self._fail_429[endpoint] -= 1
            self.throttled[endpoint] += 1
            return web.Response(status=429, headers={"Retry-After": "1"})
        limit, window = self.rate_limits[bucket]
        now = self.clock.now().timestamp()  # the shared clock: a FakeClock moves the windows too
        recent = self._recent.setdefault((who, bucket), deque())
        while recent and now - recent[0] >= window:
            recent.popleft()
        if len(recent) >= limit:
            self.throttled[endpoint] += 1
            # UNCERTAIN: whether the gateway sends Retry-After; the fake does (whole seconds).
            wait = max(1, math.ceil(window - (now - recent[0])))
            return web.Response(status=429, headers={"Retry-After": str(wait)})
        recent.append(now)
        return None

    # ================================================================== pushing events

    async def flush(self) -> None:
        """Send the book's pending changes on the user hub, in the order they happened."""
        async with self._flush_lock:
            while self.book.outbox:
                kind, account_id, entity = self.book.outbox.pop(0)
                target, key = {
                    "order": ("GatewayUserOrder", ("orders", account_id)),
                    "trade": ("GatewayUserTrade", ("trades", account_id)),
                    "position": ("GatewayUserPosition", ("positions", account_id)),
                    "account": ("GatewayUserAccount", ("accounts", None)),
                }[kind]
                argument: Any = entity
                if self.wrap_user_events:
                    # PX-ADMIN's wrapper: action 0 created, 1 updated, 2 deleted.
                    action = 1
                    if kind == "order" and entity["id"] not in self._seen_orders:
                        action = 0
                    elif kind == "trade" or (kind == "position" and entity["size"] == 0):
                        action = 0 if kind == "trade" else 2
                    argument = {"action": action, "data": entity}
                if kind == "order":
                    self._seen_orders.add(entity["id"])
                await self.user_hub.publish(key, target, argument)
            # Our fills print on the tape like anyone's (the taker's side is the aggressor).
            prints, self.book.prints = self.book.prints, []
            if not self.market_hub.silent:
                now = self.clock.now()
                for cid, price, size, side in prints:
                    entry = self.market.tape_entry(cid, price, size, side, now)
                    await self.market_hub.publish(("trades", cid), "GatewayTrade", cid, [entry])

    async def _push_market(self, contract_id: str, prints: list[JSON] | None = None) -> None:
        """Quotes (partial after the first), depth changes and prints to market-hub subscribers."""
        hub = self.market_hub
        if hub.silent:
            return
        full = self.market.quote_json(contract_id)
        book = self.market.levels(contract_id)
        now = self.clock.now()
        for conn in hub.subscribers(("quotes", contract_id)):
            sent = conn.state.setdefault("quotes", {})
            await conn.invoke("GatewayQuote", contract_id, self.market.quote_delta(full, sent.get(contract_id)))
            sent[contract_id] = full
        if prints:
            for conn in hub.subscribers(("trades", contract_id)):
                await conn.invoke("GatewayTrade", contract_id, prints)
        for conn in hub.subscribers(("depth", contract_id)):
            levels = conn.state.setdefault("depth", {})
            entries = self.market.depth_entries(now, book, levels.get(contract_id))
            if prints:
                entries += [
                    {
                        "timestamp": p["timestamp"],
                        "type": 5,
                        "price": p["price"],
                        "volume": p["volume"],
                        "currentVolume": self.market.quotes[contract_id].volume,
                    }
                    for p in prints
                ]
            levels[contract_id] = book
            if entries:
                await conn.invoke("GatewayDepth", contract_id, entries)

    # ================================================================== test API

    @staticmethod
    def _dec(value: Any) -> Decimal:
        return value if isinstance(value, Decimal) else Decimal(str(value))

    async def set_quote(self, contract: str, *, bid: Any, ask: Any, last: Any = None) -> None:
        """Move the touch (and optionally the last price); orders match; hubs hear of it."""
        c = self.contract(contract)
        b, a = self._dec(bid), self._dec(ask)
        lp = None if last is None else self._dec(last)
        if not (c.on_tick(b) and c.on_tick(a) and (lp is None or c.on_tick(lp))) or b >= a:
            raise ValueError(f"{c.name}: bid {b} / ask {a} / last {lp} off the {c.tick} grid or crossed")
        self.market.set_touch(c.id, b, a, lp, self.clock.now())
        self.book.match(c.id)
        await self._push_market(c.id)
        await self.flush()

    async def set_price(self, contract: str, price: Any) -> None:
        """The market at ``price``: last and bid there, ask one tick above."""
        c = self.contract(contract)
        p = self._dec(price)
        await self.set_quote(contract, bid=p, ask=p + c.tick, last=p)

    async def trade(self, contract: str, price: Any, size: int = 1) -> None:
        """Print a trade at ``price``. A print at or beyond the touch moves it; resting orders
        that the print trades through fill; stops at or past it trigger."""
        c = self.contract(contract)
        p = self._dec(price)
        if not c.on_tick(p) or size <= 0:
            raise ValueError(f"{c.name}: trade {size} @ {p} off the {c.tick} grid")
        q = self.market.quotes[c.id]
        aggressor = 0 if p >= q.ask else 1 if p <= q.bid else (0 if p > q.last else 1)
        # A buyer lifting offers up to p leaves the ask at p; a seller hitting bids leaves the bid there.
        if p >= q.ask:
            q.bid, q.ask = p - c.tick, p
        elif p <= q.bid:
            q.bid, q.ask = p, p + c.tick
        now = self.clock.now()
        self.market.print_trade(c.id, p, size, now)
        self.book.match(c.id, print_price=p)
        await self._push_market(c.id, [self.market.tape_entry(c.id, p, size, aggressor, now)])
        await self.flush()

    async def trade_through(self, contract: str, level: Any, size: int = 1) -> None:
        """Print one tick beyond ``level``, away from the market (a limit there fills)."""
        c = self.contract(contract)
        lvl = self._dec(level)
        last = self.market.quotes[c.id].last
        await self.trade(contract, lvl + c.tick if lvl >= last else lvl - c.tick, size)

    async def fill(self, order_id: int, qty: int | None = None, price: Any = None) -> None:
        """Fill a working order now (partly, with ``qty``), at ``price`` or the touch."""
        order = self.book.orders[order_id]
        if not order.working or (qty is not None and not 0 < qty <= order.remaining):
            raise ValueError(f"order {order_id} cannot fill {qty or order.remaining} (status {order.status})")
        q = self.market.quotes[order.contract.id]
        p = self._dec(price) if price is not None else (q.ask if order.side == 0 else q.bid)
        self.book.fill(order, qty or order.remaining, p)
        await self.flush()

    # ================================================================== hub methods

    def _owned(self, account_id: int) -> None:
        account = self.book.accounts.get(account_id)
        if account is None:
            raise ValueError(f"account {account_id} is not this user's")

    def _user_methods(self) -> dict[str, HubMethod]:
        def subscribe(kind: str, on: bool) -> Callable[..., None]:
            def handler(conn: HubConnection, *args: Any) -> None:
                key = (kind, args[0] if args else None)
                if args:
                    self._owned(args[0])
                (conn.subscriptions.add if on else conn.subscriptions.discard)(key)

            return handler

        methods = {
            "SubscribeAccounts": HubMethod((), subscribe("accounts", True)),
            "UnsubscribeAccounts": HubMethod((), subscribe("accounts", False)),
        }
        for kind in ("Orders", "Positions", "Trades"):
            methods[f"Subscribe{kind}"] = HubMethod((int,), subscribe(kind.lower(), True))
            methods[f"Unsubscribe{kind}"] = HubMethod((int,), subscribe(kind.lower(), False))
        return methods

    def _market_methods(self) -> dict[str, HubMethod]:
        def subscribe(kind: str, on: bool) -> Callable[..., Any]:
            async def handler(conn: HubConnection, contract_id: str) -> None:
                if self.market.get(contract_id) is None:
                    raise HubError(f"Contract {contract_id} was not found.")
                key = (kind, contract_id)
                if not on:
                    conn.subscriptions.discard(key)
                    conn.state.get(kind, {}).pop(contract_id, None)
                    return
                conn.subscriptions.add(key)
                if self.market_hub.silent:
                    return
                # A new subscriber gets the whole picture first: a full quote, the whole book.
                if kind == "quotes":
                    full = self.market.quote_json(contract_id)
                    conn.state.setdefault("quotes", {})[contract_id] = full
                    await conn.invoke("GatewayQuote", contract_id, full)
                elif kind == "depth":
                    book = self.market.levels(contract_id)
                    conn.state.setdefault("depth", {})[contract_id] = book
                    await conn.invoke(
                        "GatewayDepth", contract_id, self.market.depth_entries(self.clock.now(), book, None)
                    )

            return handler

        methods: dict[str, HubMethod] = {}
        for name, kind in (("Quotes", "quotes"), ("Trades", "trades"), ("MarketDepth", "depth")):
            methods[f"SubscribeContract{name}"] = HubMethod((str,), subscribe(kind, True))
            methods[f"UnsubscribeContract{name}"] = HubMethod((str,), subscribe(kind, False))
        return methods

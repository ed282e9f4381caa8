"""FakeTastytrade: three loopback servers, as the vendor's hosts are three.

- REST (``api_url``, the stand-in for ``https://api.tastyworks.com``): see :mod:`.rest`.
- The account streamer (``streamer_url``, for ``wss://streamer.tastyworks.com``): JSON actions
  ``connect`` / ``heartbeat`` / the ``*-subscribe`` family, each carrying ``auth-token``; acks
  ``{"status":"ok","action",…,"web-socket-session-id","request-id"}``; ``connect-not-completed``
  for a subscription before ``connect``; notifications ``{"type","data","timestamp"}`` carrying
  whole Order, ComplexOrder, AccountBalance and CurrentPosition objects on every change
  (reference B7). ``batch_notifications`` sends them as ``{"results":[…]}`` instead (TT-JS reads
  both; the reference is unsure how often the vendor batches).
- DXLink (``dxlink_url``, handed out by ``/api-quote-tokens``): see :mod:`.dxlink`.

The User-Agent rule is enforced on REST only: the vendor documents it for API requests, and
the websocket upgrades of TT-SDK and other clients are not known to be checked.
AccountBalance is pushed after fills, not on every mark change (how often the vendor pushes
balances as prices move is not documented).

Vendor time (token lives, quote-token lives, rate-limit windows, timestamps) runs on the shared
:class:`tests.fakes.FakeClock`; socket keepalives run on the event loop in real (short) time.

The test API moves the market deterministically (:meth:`set_quote`, :meth:`move`,
:meth:`trade`); every move re-runs matching and pushes DXLink events. Fault switches:
:meth:`drop`, ``silent_dxlink`` (socket open, nothing sent: DXLink is known to go quiet without
closing), :meth:`expire_tokens`, :meth:`fail_429` / ``rate_limit``, :meth:`slow`,
:meth:`reject_next` (an order accepted, then Rejected with a reason), and :meth:`push_raw` /
``dxlink.push_raw`` for odd payloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes import FakeClock
from tests.fakes.tastytrade.accounts import Accounts
from tests.fakes.tastytrade.book import Book
from tests.fakes.tastytrade.dxlink import DXLink
from tests.fakes.tastytrade.market import Instrument, Market, ms, on_grid
from tests.fakes.tastytrade.rest import Rest

JSON = dict[str, Any]


@dataclass
class StreamerSession:
    id: str
    ws: web.WebSocketResponse
    request: web.Request
    accounts: set[str] = field(default_factory=set)
    connected: bool = False
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    last_received: float = 0.0
    received: list[JSON] = field(default_factory=list)


class FakeTastytrade:
    """The fake vendor. ``await start()``; then point a client at the three URLs."""

    def __init__(
        self,
        *,
        clock: FakeClock | None = None,
        client_id: str = "c0ffee00-1111-2222-3333-444455556666",
        client_secret: str = "tt-client-secret-5f0e9d8c7b6a",
        refresh_token: str = "tt-refresh-token-a1b2c3d4e5f6",
        token_seconds: int = 900,
        keepalive_timeout: float = 60.0,
        keepalive_interval: float = 30.0,
        streamer_timeout: float | None = None,
    ) -> None:
        self.clock = clock or FakeClock()
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.token_seconds = token_seconds
        #: The longest a DXLink client may stay silent (its own SETUP may ask for less).
        self.keepalive_timeout = keepalive_timeout
        #: How long the DXLink server stays quiet before it sends KEEPALIVE itself.
        self.keepalive_interval = keepalive_interval
        #: Close an account-streamer socket that sent nothing for this long (None: never; the
        #: vendor's timeout is undocumented and TT-SDK 13.x sends no app-level heartbeat).
        self.streamer_timeout = streamer_timeout
        self.dxlink_max_message = 256 * 1024

        self.market = Market(self.clock.now())
        self.accounts = Accounts(self.market, self.clock.now())
        self.book = Book(self.market, self.accounts, self.clock.now)
        self.book.notify = self._notify
        self.rest = Rest(self)
        self.dxlink = DXLink(self)

        self.access_tokens: dict[str, datetime] = {}
        self.quote_tokens: dict[str, datetime] = {}
        self.streamer_sessions: list[StreamerSession] = []

        # Fault switches.
        self.silent_dxlink = False
        self.silent_streamer = False
        self.batch_notifications = False
        self.rate_limit: tuple[int, float] | None = None
        self._recent: deque[datetime] = deque()
        self._fail_429: list[tuple[str, int]] = []
        self._slow: list[tuple[str, float]] = []

        # What happened, for assertions.
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, User-Agent)
        self.token_requests: list[tuple[str, JSON]] = []  # (content type, body)
        self.refreshes = 0
        self.rejected: Counter[str] = Counter()  # reason -> count of 401/406/429 answers
        self.connections: Counter[str] = Counter()
        self.notifications: list[JSON] = []
        self._changed = asyncio.Event()
        self._runners: list[web.AppRunner] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    # ================================================================== lifecycle

    async def _serve(self, app: web.Application) -> int:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runners.append(runner)
        server = site._server
        assert server is not None
        return int(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    async def start(self) -> None:
        api = web.Application(client_max_size=1024 * 1024)
        api.router.add_route("*", "/{tail:.*}", self.rest.handle)
        streamer = web.Application()
        streamer.router.add_get("/", self._streamer)
        dx = web.Application()
        dx.router.add_get("/realtime", self.dxlink.handle)
        self.api_port = await self._serve(api)
        self.streamer_port = await self._serve(streamer)
        self.dxlink_port = await self._serve(dx)
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.streamer_url = f"ws://127.0.0.1:{self.streamer_port}"
        self.dxlink_url = f"ws://127.0.0.1:{self.dxlink_port}/realtime"

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for session in list(self.streamer_sessions):
            with contextlib.suppress(Exception):
                await session.ws.close()
        for dx in list(self.dxlink.sessions):
            with contextlib.suppress(Exception):
                await dx.ws.close()
        for runner in self._runners:
            await runner.cleanup()

    def urls(self) -> dict[str, str]:
        """Where a client goes: REST base, account streamer, DXLink (also via /api-quote-tokens)."""
        return {"api_url": self.api_url, "streamer_url": self.streamer_url, "dxlink_url": self.dxlink_url}

    def secrets(self, **override: str) -> dict[str, str]:
        """The OAuth credentials this fake accepts, as the secrets file names them."""
        return {"client_secret": self.client_secret, "refresh_token": self.refresh_token, **override}

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ================================================================== waiting

    async def settle(self) -> None:
        """Wait until every DXLink push started by a market move has been sent (or dropped)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def changed(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Wait until ``predicate()`` holds (re-checked after every request and socket message)."""

        async def _wait() -> None:
            while not predicate():
                await self._changed.wait()

        await asyncio.wait_for(_wait(), within)

    # ================================================================== tokens

    def issue_access_token(self) -> tuple[str, int]:
        token = secrets.token_urlsafe(32)
        self.access_tokens[token] = self.clock.now() + timedelta(seconds=self.token_seconds)
        return token, self.token_seconds

    def valid_access_token(self, token: str | None) -> bool:
        expiry = self.access_tokens.get(token or "")
        return expiry is not None and self.clock.now() < expiry

    def issue_quote_token(self) -> tuple[str, datetime]:
        token = "dxlink-" + secrets.token_urlsafe(24)
        expiry = self.clock.now() + timedelta(hours=24)
        self.quote_tokens[token] = expiry
        return token, expiry

    def valid_quote_token(self, token: Any) -> bool:
        expiry = self.quote_tokens.get(token) if isinstance(token, str) else None
        return expiry is not None and self.clock.now() < expiry

    # ================================================================== fault switches

    def expire_tokens(self, *, quote_tokens: bool = False) -> None:
        """Every access token issued so far (and quote tokens, if asked) expires now."""
        now = self.clock.now()
        self.access_tokens = {t: min(e, now) for t, e in self.access_tokens.items()}
        if quote_tokens:
            self.quote_tokens = {t: min(e, now) for t, e in self.quote_tokens.items()}

    def fail_429(self, path_prefix: str = "/", times: int = 1) -> None:
        """Answer the next ``times`` REST requests whose path starts with ``path_prefix`` with 429."""
        self._fail_429.extend([(path_prefix, 1)] * times)

    def slow(self, path_prefix: str, seconds: float, times: int = 1) -> None:
        """Answer the next ``times`` matching REST requests ``seconds`` late (after processing)."""
        self._slow.extend([(path_prefix, seconds)] * times)

    def reject_next(self, reason: str) -> None:
        """The next order placed is accepted (201) and then Rejected with this ``reject-reason``."""
        self.book.reject_next.append(reason)

    async def drop(self, kind: str = "all") -> None:
        """Cut the TCP connection of every ``streamer`` / ``dxlink`` socket (no close frame)."""
        if kind in ("all", "dxlink"):
            await self.dxlink.drop()
        if kind in ("all", "streamer"):
            for session in list(self.streamer_sessions):
                transport = session.request.transport
                if transport is not None:
                    transport.abort()

    def take_429(self, path: str) -> bool:
        for n, (prefix, _) in enumerate(self._fail_429):
            if path.startswith(prefix):
                del self._fail_429[n]
                return True
        if self.rate_limit is None:
            return False
        limit, window = self.rate_limit
        now = self.clock.now()
        while self._recent and (now - self._recent[0]).total_seconds() >= window:
            self._recent.popleft()
        if len(self._recent) >= limit:
            return True
        self._recent.append(now)
        return False

    def take_slow(self, path: str) -> float:
        for n, (prefix, seconds) in enumerate(self._slow):
            if path.startswith(prefix):
                del self._slow[n]
                return seconds
        return 0.0

    # ================================================================== test API: the market

    def set_quote(
        self,
        symbol: str,
        bid: str | Decimal | None = None,
        ask: str | Decimal | None = None,
        last: str | Decimal | None = None,
        *,
        bid_size: int | None = None,
        ask_size: int | None = None,
    ) -> None:
        """Set a quote (equity or future; options follow their underlying), then match and publish."""

        def d(x: str | Decimal | None) -> Decimal | None:
            return None if x is None else Decimal(str(x))

        self.market.set_quote(symbol, bid=d(bid), ask=d(ask), last=d(last), bid_size=bid_size, ask_size=ask_size)
        self._after_move(symbol)

    def move(self, symbol: str, last: str | Decimal, *, size: int = 100) -> None:
        """A trade at ``last`` with the quote one tick either side, as a market that moved there."""
        price = Decimal(str(last))
        inst = self.market.instruments[symbol]
        tick = inst.tick(price)
        if on_grid(price, tick) != price:
            raise ValueError(f"{price} is off the {tick} tick grid of {symbol}")
        if inst.kind == "Future":
            bid, ask = price - tick, price
        else:
            bid, ask = price - tick, price + tick
        self.market.set_quote(symbol, bid=bid, ask=ask, last=price)
        self.market.trade(symbol, price, size, self.clock.now())
        self._after_move(symbol)

    def trade(self, symbol: str, price: str | Decimal, size: int = 100) -> None:
        """A print at ``price`` without moving the quote (stops trigger on it)."""
        self.market.trade(symbol, Decimal(str(price)), size, self.clock.now())
        self._after_move(symbol)

    def _after_move(self, symbol: str) -> None:
        self.book.on_market()

        def moved(inst: Instrument) -> bool:
            return inst.symbol == symbol or inst.underlying == symbol

        self.spawn(self.dxlink.publish(moved))
        self.changed()

    # ================================================================== account streamer

    def _notify(self, account: str, kind: str, data: JSON) -> None:
        message = {"type": kind, "data": data, "timestamp": ms(self.clock.now())}
        self.notifications.append(message)
        for session in self.streamer_sessions:
            if account in session.accounts and not self.silent_streamer:
                frame = {"results": [message]} if self.batch_notifications else message
                session.queue.put_nowait(json.dumps(frame))
        self.changed()

    async def _streamer(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, heartbeat=None)
        await ws.prepare(request)
        loop = asyncio.get_running_loop()
        session = StreamerSession(secrets.token_hex(4), ws, request, last_received=loop.time())
        self.streamer_sessions.append(session)
        self.connections["streamer"] += 1
        writer = loop.create_task(self._streamer_writer(session))
        watcher = loop.create_task(self._streamer_watch(session)) if self.streamer_timeout else None
        self.changed()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    session.last_received = loop.time()
                    await self._streamer_message(session, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            writer.cancel()
            if watcher is not None:
                watcher.cancel()
            with contextlib.suppress(ValueError):
                self.streamer_sessions.remove(session)
            self.changed()
        return ws

    async def _streamer_writer(self, session: StreamerSession) -> None:
        while True:
            frame = await session.queue.get()
            if frame is None or session.ws.closed:
                return
            with contextlib.suppress(ConnectionError, RuntimeError):
                await session.ws.send_str(frame)

    async def _streamer_watch(self, session: StreamerSession) -> None:
        loop = asyncio.get_running_loop()
        assert self.streamer_timeout is not None
        while not session.ws.closed:
            if loop.time() - session.last_received > self.streamer_timeout:
                await session.ws.close(code=1000, message=b"heartbeat timeout")
                return
            await asyncio.sleep(self.streamer_timeout / 4)

    def _ack(self, session: StreamerSession, action: str, rid: Any, **extra: Any) -> None:
        body: JSON = {"status": "ok", "action": action, "web-socket-session-id": session.id, **extra}
        if rid is not None:
            body["request-id"] = rid
        session.queue.put_nowait(json.dumps(body))

    def _nak(self, session: StreamerSession, action: Any, rid: Any, message: str) -> None:
        body: JSON = {"status": "error", "action": action, "web-socket-session-id": session.id, "message": message}
        if rid is not None:
            body["request-id"] = rid
        session.queue.put_nowait(json.dumps(body))

    async def _streamer_message(self, session: StreamerSession, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            self._nak(session, None, None, "invalid-json")
            return
        if not isinstance(msg, dict):
            self._nak(session, None, None, "invalid-message")
            return
        session.received.append(msg)
        self.changed()
        action, rid = msg.get("action"), msg.get("request-id")
        token = msg.get("auth-token")
        # B7: auth-token is the Authorization header's value, "Bearer <token>"; before OAuth it
        # was the raw session token. Both forms are accepted.
        raw = token[len("Bearer ") :] if isinstance(token, str) and token.startswith("Bearer ") else token
        if not isinstance(raw, str) or not self.valid_access_token(raw):
            self._nak(session, action, rid, "invalid-auth-token")
            return
        if action in ("connect", "account-subscribe"):
            value = msg.get("value")
            numbers = [value] if isinstance(value, str) else value
            if not isinstance(numbers, list) or not numbers or not all(isinstance(n, str) for n in numbers):
                self._nak(session, action, rid, "value must be an account number or a list of them")
                return
            foreign = [n for n in numbers if self.accounts.get(n) is None]
            if foreign:
                self._nak(session, action, rid, f"not-permitted: {', '.join(foreign)}")
                return
            session.accounts.update(numbers)
            session.connected = True
            self._ack(session, action, rid, value=numbers)
            return
        if action == "heartbeat":
            self._ack(session, action, rid)
            return
        if action in ("public-watchlists-subscribe", "quote-alerts-subscribe", "user-message-subscribe"):
            if not session.connected:
                self._nak(session, action, rid, "connect-not-completed")
                return
            self._ack(session, action, rid)
            return
        self._nak(session, action, rid, f"unknown-action: {action!r}")

    def push_raw(self, account: str, frame: str) -> None:
        """Send ``frame`` as it is to every streamer session of ``account`` (odd-payload tests:
        what a vendor bug or a newer API could send; the fake's own notifications stay strict)."""
        for session in self.streamer_sessions:
            if account in session.accounts:
                session.queue.put_nowait(frame)

    def streamer_connected(self, account: str) -> bool:
        return any(account in s.accounts for s in self.streamer_sessions)

"""A strict fake Charles Schwab server on a loopback port: OAuth, Trader API, Market Data, streamer.

Schwab has no sandbox, so this fake is the only place an adapter meets Schwab before a real
account. It follows ``shared/reference/brokers-schwab-tastytrade.md`` part A (checklist A10),
corrected by ``vendor-updates.md``, and is proven against schwab-py 1.5.1, a client nobody here
wrote (``tests/integration/test_fake_schwab.py``). Where a source is uncertain the choice is
commented at that spot.

- ``GET /v1/oauth/authorize`` stands in for the browser login: it approves at once and redirects
  to the registered callback with ``code`` (ending in ``@``, so ``%40`` on the wire), ``session``
  and the caller's ``state``. ``POST /v1/oauth/token`` takes HTTP Basic client credentials and
  both grants; access tokens live 30 minutes, refresh tokens 7 days from the original login
  (refreshing does not extend them), all on the shared :class:`tests.fakes.FakeClock`
  (:mod:`.schwab_oauth`).
- ``/trader/v1``: account numbers to hashes, accounts (``fields=positions``), orders (201 with a
  ``Location`` header on place and replace, 200 with an empty body on cancel), previewOrder,
  transactions, userPreference pointing at the fake streamer. Orders: :mod:`.schwab_order_rules`
  (what is refused at the door) and :mod:`.schwab_orders` (account checks, matching, groups);
  accounts, positions and transactions: :mod:`.schwab_accounts`.
- ``/marketdata/v1``: quotes, price history, chains, expiration chain, instruments, market hours
  (:mod:`.schwab_quotes`, :mod:`.schwab_marketdata`), over the deterministic market of
  :mod:`.schwab_market` (a test moves it with :meth:`FakeSchwab.set_price`).
- ``/ws``: the streamer (:mod:`.schwab_stream`).
- Limits: 120 non-order requests a minute per app, a configurable order-write budget per account
  a minute; HTTP 429 with no body beyond them (Schwab documents neither body nor headers). The
  minute is the fake clock's: a test that never advances it gets 120 data requests in all
  (raise ``data_per_minute`` for a client that polls on real time).
- Fault switches: ``drop_next``, ``silent``, ``expire_tokens``, ``revoke_refresh_tokens``,
  ``fail_429``, ``slow``, ``omit_location``, ``reject_next``, ``drop_streams``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx
from aiohttp import web

from tests.fakes import FakeClock
from tests.fakes.schwab_accounts import TRANSACTION_TYPES, Account, Ledger
from tests.fakes.schwab_market import ExpiredSeries, Market, UnknownSymbol
from tests.fakes.schwab_marketdata import (
    MdError,
    chains,
    expiration_chain,
    instrument_by_cusip,
    instruments,
    market_hours,
    price_history,
)
from tests.fakes.schwab_oauth import OAuthServer
from tests.fakes.schwab_order_rules import OrderError
from tests.fakes.schwab_orders import OrderBook
from tests.fakes.schwab_quotes import quote_json
from tests.fakes.schwab_stream import Streamer

JSON = dict[str, Any]
VENDOR_HOST = "https://api.schwabapi.com"
QUOTE_FIELDS = ("quote", "fundamental", "extended", "reference", "regular")
ORDER_STATUSES = (
    "AWAITING_PARENT_ORDER",
    "AWAITING_CONDITION",
    "AWAITING_STOP_CONDITION",
    "AWAITING_MANUAL_REVIEW",
    "ACCEPTED",
    "AWAITING_UR_OUT",
    "PENDING_ACTIVATION",
    "QUEUED",
    "WORKING",
    "REJECTED",
    "PENDING_CANCEL",
    "CANCELED",
    "PENDING_REPLACE",
    "REPLACED",
    "FILLED",
    "EXPIRED",
    "NEW",
    "AWAITING_RELEASE_TIME",
    "PENDING_ACKNOWLEDGEMENT",
    "PENDING_RECALL",
    "UNKNOWN",
)
# yyyy-MM-dd'T'HH:mm:ss.SSSZ; schwab-py sends no milliseconds; a zone of Z, +0000 or +00:00 (A3).
ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:?\d{2})$")


def _iso(value: str | None, name: str) -> datetime:
    if value is None:
        raise OrderError(f"{name} is required", f"{name} is missing")
    if not ISO_RE.match(value):
        raise OrderError(f"{name} must be ISO-8601 yyyy-MM-dd'T'HH:mm:ss.SSSZ, not {value!r}")
    text = value.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    return datetime.fromisoformat(text)


class FakeSchwab:
    """The fake server. ``await start()``; then :attr:`base_url`, :attr:`ws_url`, :meth:`authorize_url`."""

    def __init__(
        self,
        *,
        clock: FakeClock,
        app_key: str = "FAKEAPPKEY0123456789abcdefABCDEF",
        app_secret: str = "FakeSecret012345",
        callback_urls: tuple[str, ...] = ("https://127.0.0.1:8182",),
        accounts: tuple[tuple[str, str, Decimal], ...] = (
            ("12345678", "MARGIN", Decimal("100000")),
            ("87654321", "CASH", Decimal("25000")),
        ),
        access_minutes: float = 30,
        refresh_days: float = 7,
        code_seconds: float = 30,
        heartbeat_interval: float = 0.05,
        stream_idle_close: float | None = None,
        data_per_minute: int = 120,
        orders_per_minute: int = 120,
        location_base: str = VENDOR_HOST,
        rotate_refresh_tokens: bool = False,
    ) -> None:
        self.clock = clock
        self.app_key = app_key
        self.app_secret = app_secret
        self.callback_urls = callback_urls
        self.data_per_minute = data_per_minute
        self.orders_per_minute = orders_per_minute
        # Schwab's Location names its own host whatever host the request went to; an adapter must
        # read the order id from the path, not compare hosts.
        self.location_base = location_base
        self.customer_id = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
        self.correl_id = str(uuid.UUID(int=0x5C4B3A29180706F5E4D3C2B1A0918273))
        self.channel = "N9"
        self.function_id = "APIAPP"
        self.oauth = OAuthServer(
            clock=clock,
            app_key=app_key,
            app_secret=app_secret,
            callback_urls=callback_urls,
            customer_id=self.customer_id,
            access_life=timedelta(minutes=access_minutes),
            refresh_life=timedelta(days=refresh_days),
            code_life=timedelta(seconds=code_seconds),
            rotate_refresh_tokens=rotate_refresh_tokens,
        )

        self.market = Market(clock.now)
        self.ledger = Ledger(self.market, list(accounts), salt=app_key)
        self.book = OrderBook(self.market, self.ledger, clock.now)
        self.book.on_event = self._order_event
        self.streamer = Streamer(self, heartbeat_interval=heartbeat_interval, idle_close_after=stream_idle_close)

        self._data_hits: deque[datetime] = deque()
        self._order_hits: dict[str, deque[datetime]] = {}
        self._fail_429: list[tuple[str, int]] = []
        self._slow: list[tuple[str, float, int]] = []
        self._drop: list[tuple[str, int]] = []
        self._lost_answers: list[tuple[str, int]] = []  # fault harness switch (tests/faults)
        self._omit_location = 0
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None

        # What happened, for assertions.
        self.requests: list[tuple[str, str]] = []
        self.order_bodies: list[Any] = []
        self.rate_limited = 0
        self.unauthorized = 0

    # ================================================================== lifecycle

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_get("/ws", self.streamer.handle)
        app.router.add_route("*", "/{tail:.*}", self._route)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws"

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for conn in list(self.streamer.conns):
            with contextlib.suppress(Exception):
                await conn.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Wait until ``predicate()`` holds (re-checked after every request or socket message)."""

        async def _wait() -> None:
            while not predicate():
                await self._changed.wait()

        await asyncio.wait_for(_wait(), within)

    # ================================================================== handy for tests

    def authorize_url(self, state: str | None = None, callback: str | None = None) -> str:
        query = {"client_id": self.app_key, "redirect_uri": callback or self.callback_urls[0]}
        if state is not None:
            query |= {"response_type": "code", "state": state}
        return f"{self.base_url}/v1/oauth/authorize?{urlencode(query)}"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/v1/oauth/token"

    @property
    def authorize_endpoint(self) -> str:
        return f"{self.base_url}/v1/oauth/authorize"

    async def browse(self, authorization_url: str) -> str:
        """The user's browser: open an authorize URL (any host; its path and query are what count),
        approve, and return the callback URL the address bar ends on: the URL a user pastes back."""
        target = httpx.URL(authorization_url)
        local = httpx.URL(self.authorize_endpoint).copy_with(query=target.query)
        async with httpx.AsyncClient() as browser:
            r = await browser.get(local, follow_redirects=False)
        if r.status_code != 302:
            raise ValueError(f"the authorize page refused: {r.status_code} {r.text}")
        return r.headers["Location"]

    def account_hashes(self) -> dict[str, str]:
        return {a.number: a.hash for a in self.ledger.accounts.values()}

    def account(self, number: str) -> Account:
        return next(a for a in self.ledger.accounts.values() if a.number == number)

    def set_price(self, symbol: str, last: Any, **kw: Any) -> None:
        """Move the market (a trade at ``last``), run the matching book, push the stream."""
        self.market.set_price(symbol, last, **kw)
        self.book.match()
        self.book.settle_triggers()
        self.spawn(self.streamer.publish())
        self.notify()

    def end_of_day(self) -> None:
        """The session closes: working DAY orders expire."""
        self.book.expire_day_orders()
        self.book.settle_triggers()
        self.notify()

    # ================================================================== fault switches

    def fail_429(self, prefix: str = "/", times: int = 1) -> None:
        """Answer the next ``times`` requests whose path starts with ``prefix`` with HTTP 429."""
        self._fail_429.append((prefix, times))

    def slow(self, prefix: str, seconds: float, times: int = 1) -> None:
        """Answer the next ``times`` requests under ``prefix`` ``seconds`` late (after processing)."""
        self._slow.append((prefix, seconds, times))

    def drop_next(self, prefix: str, times: int = 1) -> None:
        """Cut the TCP connection instead of answering the next ``times`` requests under ``prefix``
        (before processing them: nothing happens on the server)."""
        self._drop.append((prefix, times))

    def omit_location(self, times: int = 1) -> None:
        """The next ``times`` places/replaces answer 201 without a Location header (SDEV warns of
        this when an order fills at once)."""
        self._omit_location += times

    def reject_next(self, reason: str) -> None:
        """The next order is accepted (201) and then REJECTED with this statusDescription."""
        self.book.reject_next.append(reason)

    def expire_tokens(self) -> None:
        """Every access token expires now (the clock does not move)."""
        self.oauth.expire_access_tokens()

    def revoke_refresh_tokens(self) -> None:
        """Every refresh token dies (a password reset does this, S-CONS)."""
        self.oauth.revoke_refresh_tokens()

    @property
    def token_requests(self) -> list[JSON]:
        """Every form posted to the token endpoint, in order."""
        return self.oauth.token_requests

    def access_token_valid(self, token: str) -> bool:
        return self.oauth.access_token_valid(token)

    @property
    def silent(self) -> bool:
        return self.streamer.silent

    @silent.setter
    def silent(self, value: bool) -> None:
        """Streamer sockets stay open but nothing more is sent on them (no heartbeats either)."""
        self.streamer.silent = value

    async def drop_streams(self) -> None:
        await self.streamer.drop()

    # ------------------------------------------------------------------ fault harness switches
    # (issue 17, tests/faults: kept in this block, apart from the vendor behaviour above)

    def lose_answer(self, prefix: str, times: int = 1) -> None:
        """Process the next ``times`` requests under ``prefix``, then cut the TCP connection instead
        of answering: the order happened, the client never hears so (compare ``drop_next``)."""
        self._lost_answers.append((prefix, times))

    async def restart(self, down_for: float = 0.2) -> None:
        """The server goes away (streamer sockets and HTTP connections cut, new ones refused) for
        ``down_for`` seconds, then listens again on the same port with its state kept (accounts,
        orders, tokens), as a vendor restart looks to a client."""
        port = self.port
        await self.streamer.drop()
        await self.stop()
        await asyncio.sleep(down_for)
        await self.start(port)

    def _take(self, queue: list[Any], path: str) -> Any:
        for i, item in enumerate(queue):
            if path.startswith(item[0]):
                left = item[-1] - 1
                if left <= 0:
                    queue.pop(i)
                else:
                    queue[i] = (*item[:-1], left)
                return item
        return None

    # ================================================================== HTTP

    async def _route(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.requests.append((request.method, path))
        try:
            dropped = self._take(self._drop, path)
            if dropped is not None:
                if request.transport is not None:
                    request.transport.abort()
                return web.Response(status=500)
            if self._take(self._fail_429, path) is not None:
                self.rate_limited += 1
                return web.Response(status=429)
            if path == "/v1/oauth/authorize":
                response = self.oauth.authorize(request)
            elif path == "/v1/oauth/token":
                response = await self.oauth.token_endpoint(request)
            elif path.startswith(("/trader/v1/", "/marketdata/v1/")):
                response = await self._api(request)
            else:
                response = web.Response(status=404, text="Not Found")
        finally:
            self.notify()
        if self._take(self._lost_answers, path) is not None:
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)  # never sent: the connection is already cut
        slow = self._take(self._slow, path)
        if slow is not None:
            await asyncio.sleep(slow[1])
        return response

    def _error(
        self, request: web.Request, status: int, message: str, *errors: str, parameter: str | None = None
    ) -> web.Response:
        """The two error shapes of A3: Trader ``ServiceError`` and Market Data ``ErrorResponse``."""
        headers = {"Schwab-Client-CorrelId": str(uuid.uuid4())}
        if request.path.startswith("/marketdata/"):
            titles = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"}
            item: JSON = {
                "id": str(uuid.uuid4()),
                "status": str(status),
                "title": titles.get(status, "Error"),
                "detail": message,
            }
            if parameter:
                item["source"] = {"parameter": parameter}
            return web.json_response({"errors": [item]}, status=status, headers=headers)
        return web.json_response(
            {"message": message, "errors": list(errors) or [message]}, status=status, headers=headers
        )

    def _over_limit(self, request: web.Request, acct: Account | None) -> bool:
        now = self.clock.now()
        window = now - timedelta(minutes=1)
        writes = request.method in ("POST", "PUT", "DELETE") and "/orders" in request.path
        if writes and acct is not None:
            hits = self._order_hits.setdefault(acct.hash, deque())
            limit = self.orders_per_minute
        else:
            # previewOrder is a POST but not an order write: it counts as a data request (unspecified).
            hits, limit = self._data_hits, self.data_per_minute
        while hits and hits[0] <= window:
            hits.popleft()
        if len(hits) >= limit:
            self.rate_limited += 1
            return True
        hits.append(now)
        return False

    async def _api(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        if token is None or not self.access_token_valid(token):
            self.unauthorized += 1
            return self._error(
                request,
                401,
                "Client not authorized" if token else "Authorization header is missing",
                "The access token is missing, invalid or expired",
            )
        parts = [p for p in request.path.split("/") if p][2:]
        acct: Account | None = None
        if request.path.startswith("/trader/v1/accounts/") and len(parts) >= 2 and parts[1] != "accountNumbers":
            acct = self.ledger.by_hash(parts[1])
            if acct is None:
                if parts[1].isdigit():
                    return self._error(
                        request,
                        400,
                        "Invalid account number: use the encrypted hashValue from "
                        "/accounts/accountNumbers, not the plain account number",
                    )
                return self._error(request, 404, "Account not found", f"no account with hash {parts[1]}")
        if self._over_limit(request, acct):
            return web.Response(status=429)
        try:
            if request.path.startswith("/trader/"):
                response = await self._trader(request, parts, acct)
            else:
                response = await self._marketdata(request, parts)
        except OrderError as exc:
            return self._error(request, exc.status, exc.message, *exc.errors)
        except MdError as exc:
            return self._error(request, exc.status, exc.detail, parameter=exc.parameter)
        response.headers["Schwab-Client-CorrelId"] = str(uuid.uuid4())
        return response

    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            return json.loads(raw, parse_float=Decimal)
        except ValueError:
            raise OrderError("The request body is not valid JSON") from None

    # ------------------------------------------------------------------ /trader/v1

    async def _trader(self, request: web.Request, parts: list[str], acct: Account | None) -> web.Response:
        m = request.method
        q = request.query
        not_allowed = OrderError(f"{m} is not allowed on {request.path}", status=405)
        if parts == ["accounts", "accountNumbers"]:
            if m != "GET":
                raise not_allowed
            return web.json_response(
                [{"accountNumber": a.number, "hashValue": a.hash} for a in self.ledger.accounts.values()]
            )
        if parts == ["userPreference"]:
            if m != "GET":
                raise not_allowed
            return web.json_response(self._preferences())
        if parts == ["orders"]:
            if m != "GET":
                raise not_allowed
            return web.json_response(self._orders_list(None, q))
        if parts[:1] != ["accounts"]:
            raise OrderError(f"No such resource: {request.path}", status=404)
        if len(parts) == 1:
            if m != "GET":
                raise not_allowed
            positions = self._fields(q)
            return web.json_response([self.ledger.account_json(a, positions) for a in self.ledger.accounts.values()])
        assert acct is not None
        rest = parts[2:]
        if not rest:
            if m != "GET":
                raise not_allowed
            return web.json_response(self.ledger.account_json(acct, self._fields(q)))
        if rest == ["orders"]:
            if m == "GET":
                return web.json_response(self._orders_list(acct, q))
            if m == "POST":
                body = await self._body(request)
                self.order_bodies.append(body)
                order = self.book.place(acct, body)
                self._after_orders()
                return self._created(acct, order.id)
            raise not_allowed
        if len(rest) == 2 and rest[0] == "orders":
            order = self.book.orders.get(int(rest[1])) if rest[1].isdigit() else None
            if order is None or order.account is not acct:
                raise OrderError(f"Order {rest[1]} was not found", status=404)
            if m == "GET":
                return web.json_response(self.book.order_json(order))
            if m == "DELETE":
                self.book.cancel(order)
                self.book.settle_triggers()
                self._after_orders()
                return web.Response(status=200)
            if m == "PUT":
                body = await self._body(request)
                self.order_bodies.append(body)
                new = self.book.replace(order, body)
                self._after_orders()
                return self._created(acct, new.id)
            raise not_allowed
        if rest == ["previewOrder"]:
            if m != "POST":
                raise not_allowed
            return web.json_response(self.book.preview_json(acct, await self._body(request)))
        if rest == ["transactions"]:
            if m != "GET":
                raise not_allowed
            return web.json_response(self._transactions(acct, q))
        if len(rest) == 2 and rest[0] == "transactions":
            found = [t for t in acct.transactions if str(t["activityId"]) == rest[1]]
            if not found:
                raise OrderError(f"Transaction {rest[1]} was not found", status=404)
            # The spec says an array; real responses are one object (S-RS): the fake sends the object.
            return web.json_response(found[0])
        raise OrderError(f"No such resource: {request.path}", status=404)

    def _created(self, acct: Account, order_id: int) -> web.Response:
        if self._omit_location:
            self._omit_location -= 1
            return web.Response(status=201)
        location = f"{self.location_base}/trader/v1/accounts/{acct.hash}/orders/{order_id}"
        return web.Response(status=201, headers={"Location": location})

    def _after_orders(self) -> None:
        self.book.settle_triggers()
        self.spawn(self.streamer.publish())

    @staticmethod
    def _fields(q: Any) -> bool:
        fields = q.get("fields")
        if fields is None:
            return False
        values = [f for f in fields.split(",") if f]
        if any(f != "positions" for f in values):
            raise OrderError(f"Invalid fields value {fields!r}: the only field is positions")
        return "positions" in values

    def _preferences(self) -> JSON:
        accounts = []
        for i, a in enumerate(self.ledger.accounts.values()):
            accounts.append(
                {
                    "accountNumber": a.number,
                    "primaryAccount": i == 0,
                    "type": "BROKERAGE",
                    "nickName": "Individual" if a.type == "MARGIN" else "Cash",
                    "accountColor": "Green",
                    "displayAcctId": "..." + a.number[-3:],
                    "autoPositionEffect": False,
                }
            )
        # An object, although the spec says an array (A4 notes; schwab-py and S-RS read an object).
        return {
            "accounts": accounts,
            "streamerInfo": [
                {
                    "streamerSocketUrl": self.ws_url,
                    "schwabClientCustomerId": self.customer_id,
                    "schwabClientCorrelId": self.correl_id,
                    "schwabClientChannel": self.channel,
                    "schwabClientFunctionId": self.function_id,
                }
            ],
            "offers": [{"level2Permissions": True, "mktDataPermission": "NP"}],
        }

    def _orders_list(self, acct: Account | None, q: Any) -> list[JSON]:
        start = _iso(q.get("fromEnteredTime"), "fromEnteredTime")
        end = _iso(q.get("toEnteredTime"), "toEnteredTime")
        if start > end:
            raise OrderError("fromEnteredTime is after toEnteredTime")
        # Spec text: "maximum date range is 1 year" per account; "within 60 days" for all accounts.
        # A minute of slack: clients compute "now - 60 days" and "now" a moment apart.
        span = timedelta(days=366) if acct is not None else timedelta(days=60)
        if end - start > span + timedelta(minutes=1):
            raise OrderError(f"The date range may not exceed {span.days} days")
        max_results = q.get("maxResults", "3000")
        if not max_results.isdigit() or int(max_results) < 1:
            raise OrderError(f"maxResults must be a positive integer, not {max_results!r}")
        status = q.get("status")
        if status is not None and status not in ORDER_STATUSES:
            raise OrderError(f"Invalid status {status!r}")
        rows = []
        for o in sorted(self.book.orders.values(), key=lambda o: o.id, reverse=True):
            if o.parent is not None or (acct is not None and o.account is not acct):
                continue  # children come nested in their parent (the fake's reading)
            assert o.entered is not None
            if not start <= o.entered <= end or (status is not None and o.status != status):
                continue
            rows.append(self.book.order_json(o))
        return rows[: int(max_results)]

    def _transactions(self, acct: Account, q: Any) -> list[JSON]:
        start = _iso(q.get("startDate"), "startDate")
        end = _iso(q.get("endDate"), "endDate")
        if start > end:
            raise OrderError("startDate is after endDate")
        if end - start > timedelta(days=366):
            raise OrderError("The date range may not exceed one year")
        types = q.get("types")
        if not types:
            raise OrderError("types is required", "a comma list of TransactionType values")
        wanted = types.split(",")
        bad = [t for t in wanted if t not in TRANSACTION_TYPES]
        if bad:
            raise OrderError(f"Invalid transaction type(s): {', '.join(bad)}")
        symbol = q.get("symbol")
        rows = []
        for t in acct.transactions:
            when = _iso(t["time"], "time")
            if not start <= when <= end or t["type"] not in wanted:
                continue
            if symbol and not any(i["instrument"].get("symbol") == symbol for i in t["transferItems"]):
                continue
            rows.append(t)
        return rows[:3000]

    # ------------------------------------------------------------------ /marketdata/v1

    async def _marketdata(self, request: web.Request, parts: list[str]) -> web.Response:
        if request.method != "GET":
            raise MdError(f"{request.method} is not allowed", status=405)
        q = dict(request.query)
        if parts == ["quotes"]:
            symbols = q.get("symbols")
            if not symbols:
                raise MdError("symbols is required", "symbols")
            return web.json_response(self._quotes([s for s in symbols.split(",") if s], q))
        if len(parts) == 2 and parts[1] == "quotes":
            if parts[0].startswith("/"):
                raise MdError("futures symbols need /quotes?symbols=", "symbol")  # pragma: no cover - path split
            return web.json_response(self._quotes([parts[0]], q))
        if parts == ["pricehistory"]:
            return web.json_response(price_history(self.market, q))
        if parts == ["chains"]:
            return web.json_response(chains(self.market, q))
        if parts == ["expirationchain"]:
            return web.json_response(expiration_chain(self.market, q))
        if parts == ["instruments"]:
            return web.json_response(instruments(self.market, q))
        if len(parts) == 2 and parts[0] == "instruments":
            found = instrument_by_cusip(self.market, parts[1])
            if found is None:
                raise MdError(f"No instrument with cusip {parts[1]}", status=404)
            return web.json_response(found)
        if parts == ["markets"]:
            markets = q.get("markets")
            if not markets:
                raise MdError("markets is required", "markets")
            return web.json_response(market_hours(self.market, markets.split(","), q.get("date")))
        if len(parts) == 2 and parts[0] == "markets":
            return web.json_response(market_hours(self.market, [parts[1]], q.get("date")))
        raise MdError(f"No such resource: {request.path}", status=404)

    def _quotes(self, symbols: list[str], q: JSON) -> JSON:
        fields_param = q.get("fields")
        fields = set(QUOTE_FIELDS)
        if fields_param:
            asked = {f for f in fields_param.split(",") if f}
            bad = asked - set(QUOTE_FIELDS) - {"all"}
            if bad:
                raise MdError(f"fields must be a comma subset of {', '.join(QUOTE_FIELDS)}", "fields")
            if "all" not in asked:
                fields = asked
        indicative = q.get("indicative")
        if indicative is not None and indicative not in ("true", "false"):
            raise MdError("indicative must be true or false", "indicative")
        out: JSON = {}
        invalid: list[str] = []
        for s in symbols:
            try:
                body = quote_json(self.market, s, fields)
            except (UnknownSymbol, ExpiredSeries):
                invalid.append(s)
                continue
            out[s] = body
        if invalid:
            # The spec's QuoteError; that it sits under "errors" in the same map is a guess (D4).
            out["errors"] = {"invalidSymbols": invalid}
        return out

    # ================================================================== ACCT_ACTIVITY

    def _order_event(self, acct: Account, order: Any, kind: str) -> None:
        data = {
            "SchwabOrderID": str(order.id),
            "AccountNumber": acct.number,
            "BaseEvent": {"EventType": kind, "Status": order.status},
        }
        with contextlib.suppress(RuntimeError):  # no running loop: nothing can be subscribed
            self.spawn(self.streamer.account_event(acct.number, kind, data))

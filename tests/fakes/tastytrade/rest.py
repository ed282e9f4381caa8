"""The fake Tastytrade REST API: strict checks, envelopes, routes.

Every request, ``/oauth/token`` included, must carry ``User-Agent: <product>/<version>`` or it
is answered 401 (TT-DOC oauth2 and errors pages). Every other request needs
``Authorization: Bearer <access token>``; tokens live 15 minutes on the shared clock. Then:

- ``Accept-Version`` (optional, ``YYYYMMDD``): a header older than the oldest live order-api
  version (20250813) gets 406 with the numeric ``code`` the docs show; 20261012 or later makes
  ``GET /accounts/{n}/orders`` require ``start-date`` or ``start-at`` (release notes 20261012).
- Answers: ``{"data": …, "context": path}``, lists as ``data.items`` with a top-level
  ``pagination`` block where the vendor paginates; keys dasherized; decimals as strings.
- Errors: ``{"error": {"code", "message", "errors"?}}``. The token endpoint answers in its own
  form, ``{"error_code": "invalid_grant", "error_description": …}``, as seen in the wild
  (tastyware/tastytrade issue #281); its HTTP statuses (400/401) are the RFC 6749 ones.
- 429 has no rate-limit headers (TT-DOC rate-limits page); its body uses the error envelope.
- The legacy ``POST /sessions`` login was decommissioned on 2026-02-11; the vendor's exact
  answer now is not documented, so the fake says 410 Gone with code ``sessions_decommissioned``.
  TT-SDK 13.2.3's ``Session.validate()`` still posts ``/sessions/validate``: it gets the same.
- Bulk ``GET /instruments/equity-options?symbol[]=`` was removed in April 2026: 404 here.
"""

from __future__ import annotations

import asyncio
import json
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

from aiohttp import web

from tests.fakes.tastytrade import shapes
from tests.fakes.tastytrade.accounts import Account, customer_json, fee_calculation, money
from tests.fakes.tastytrade.book import Complex, Order, OrderError, bad, refuse
from tests.fakes.tastytrade.market import iso

if TYPE_CHECKING:
    from tests.fakes.tastytrade.server import FakeTastytrade

JSON = dict[str, Any]
USER_AGENT = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+/[^\s/]+(\s.*)?$")
ORDER_API_VERSIONS = (20250813, 20261012)
COMPLEX_KEYS = {"type", "orders", "trigger-order", "source", "external-identifier"}


class Rest:
    def __init__(self, server: FakeTastytrade) -> None:
        self.server = server

    @property
    def book(self):
        return self.server.book

    # ================================================================== entry

    async def handle(self, request: web.Request) -> web.StreamResponse:
        srv = self.server
        path = request.rel_url.raw_path
        segments = [unquote(s) for s in path.strip("/").split("/")] if path.strip("/") else []
        ua = request.headers.get("User-Agent")
        srv.requests.append((request.method, unquote(path), ua))
        srv.changed()
        try:
            status, body = await self._dispatch(request, path, segments, ua)
        except OrderError as exc:
            status, body = exc.status, exc.body()
        delay = srv.take_slow(unquote(path))
        if delay:
            await asyncio.sleep(delay)
        srv.changed()
        if body is None:
            return web.Response(status=status)
        return web.json_response(body, status=status)

    @staticmethod
    def error(status: int, code: str | int, message: str) -> tuple[int, JSON]:
        return status, {"error": {"code": code, "message": message}}

    async def _dispatch(
        self, request: web.Request, path: str, segments: list[str], ua: str | None
    ) -> tuple[int, JSON | None]:
        srv = self.server
        if not ua or not USER_AGENT.match(ua):
            srv.rejected["user-agent"] += 1
            return self.error(401, "unauthorized", "a User-Agent header of the form <product>/<version> is required")
        if srv.take_429(unquote(path)):
            srv.rejected["429"] += 1
            return self.error(429, "too_many_requests", "Too many requests; slow down")
        if segments == ["oauth", "token"]:
            if request.method != "POST":
                return self.error(405, "method_not_allowed", "POST /oauth/token")
            return await self._token(request)
        if segments and segments[0] == "sessions":
            return self.error(
                410,
                "sessions_decommissioned",
                "username/password sessions were decommissioned on 2026-02-11; use OAuth2 (POST /oauth/token)",
            )
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            srv.rejected["no-bearer"] += 1
            return self.error(401, "unauthorized", "Authorization: Bearer <access token> is required")
        token = auth[len("Bearer ") :]
        if token not in srv.access_tokens:
            srv.rejected["bad-token"] += 1
            return self.error(401, "unauthorized", "the access token is not valid")
        if not srv.valid_access_token(token):
            srv.rejected["expired-token"] += 1
            return self.error(401, "unauthorized", "the access token has expired (they last 15 minutes)")
        version = ORDER_API_VERSIONS[0]
        header = request.headers.get("Accept-Version")
        if header is not None:
            if not re.fullmatch(r"\d{8}", header) or int(header) < ORDER_API_VERSIONS[0]:
                srv.rejected["version"] += 1
                return self.error(406, 406, "The requested version is not supported.")
            version = max(v for v in ORDER_API_VERSIONS if v <= int(header))
        query = parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True)
        body: Any = None
        if request.method in ("POST", "PUT", "PATCH") and request.can_read_body:
            raw = await request.read()
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self.error(400, "invalid_json", "the request body is not valid JSON")
        result = self._route(request.method, segments, query, body, version)
        if result is None:
            return self.error(404, "not_found", f"no such resource: {request.method} {unquote(path)}")
        status, data, extra = result
        envelope: JSON = {"data": data, "context": unquote(path)}
        envelope.update(extra)
        return status, envelope

    async def _token(self, request: web.Request) -> tuple[int, JSON]:
        srv = self.server
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        raw = await request.read()
        body: Any
        if ctype == "application/x-www-form-urlencoded":
            body = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        else:
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError:
                body = None
        srv.token_requests.append((ctype, body if isinstance(body, dict) else {}))

        def oauth_error(status: int, code: str, text: str) -> tuple[int, JSON]:
            srv.rejected[f"oauth:{code}"] += 1
            return status, {"error_code": code, "error_description": text}

        if not isinstance(body, dict):
            return oauth_error(400, "invalid_request", "the body must be JSON or form-encoded")
        grant = body.get("grant_type")
        if grant != "refresh_token":
            return oauth_error(400, "unsupported_grant_type", f"grant_type {grant!r} is not supported here")
        if "client_id" in body and body["client_id"] != srv.client_id:
            return oauth_error(401, "invalid_client", "client_id does not match the client")
        if body.get("client_secret") != srv.client_secret:
            return oauth_error(401, "invalid_client", "client authentication failed")
        if body.get("refresh_token") != srv.refresh_token:
            return oauth_error(400, "invalid_grant", "Invalid JWT")
        scope = body.get("scope", "read trade openid")
        if not isinstance(scope, str) or not set(scope.split()) <= {"read", "trade", "openid"}:
            return oauth_error(400, "invalid_scope", f"scope {scope!r}")
        token, life = srv.issue_access_token()
        srv.refreshes += 1
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": life, "scope": scope}

    # ================================================================== routing

    def _route(
        self, method: str, seg: list[str], query: list[tuple[str, str]], body: Any, version: int
    ) -> tuple[int, Any, JSON] | None:
        srv = self.server
        now = srv.clock.now()
        n = len(seg)
        get = method == "GET"
        if get and seg == ["customers", "me"]:
            return 200, customer_json(now), {}
        if get and seg == ["customers", "me", "accounts"]:
            items = [
                {"account": srv.accounts.account_json(a), "authority-level": "owner"}
                for a in srv.accounts.by_number.values()
            ]
            return 200, {"items": items}, {}
        if get and n == 4 and seg[:3] == ["customers", "me", "accounts"]:
            account = self._account(seg[3])
            return 200, srv.accounts.account_json(account), {}
        if seg and seg[0] == "customers" and (n < 2 or seg[1] != "me"):
            raise OrderError(403, "not_permitted", "me is the only customer id accepted")
        if get and seg == ["api-quote-tokens"]:
            token, expiry = srv.issue_quote_token()
            return (
                200,
                {
                    "token": token,
                    "dxlink-url": srv.dxlink_url,
                    "level": "api",
                    "issued-at": iso(now),
                    "expires-at": iso(expiry),
                },
                {},
            )
        if n >= 2 and seg[0] == "accounts":
            return self._account_route(method, self._account(seg[1]), seg[2:], query, body, version)
        if get:
            return self._instrument_route(seg, query)
        return None

    def _account(self, number: str) -> Account:
        account = self.server.accounts.get(number)
        if account is None:
            raise OrderError(403, "not_permitted", f"User not permitted access to account {number}")
        return account

    def _account_route(
        self, method: str, account: Account, rest: list[str], query: list[tuple[str, str]], body: Any, version: int
    ) -> tuple[int, Any, JSON] | None:
        srv = self.server
        now = srv.clock.now()
        get = method == "GET"
        if get and rest == ["trading-status"]:
            return 200, srv.accounts.trading_status_json(account, now), {}
        if get and rest[:1] == ["balances"] and len(rest) <= 2:
            if len(rest) == 2 and rest[1] != "USD":
                raise OrderError(404, "not_found", f"no balances in {rest[1]}")
            return 200, srv.accounts.balance_json(account, now), {}
        if get and rest == ["positions"]:
            return 200, {"items": self._positions(account, query)}, {}
        if get and rest[:1] == ["transactions"]:
            return self._transactions(account, rest[1:], _multi(query))
        if rest[:1] == ["orders"]:
            return self._orders_route(method, account, rest[1:], query, body, version)
        if rest[:1] == ["complex-orders"]:
            return self._complex_route(method, account, rest[1:], query, body)
        return None

    def _transactions(self, account: Account, rest: list[str], q: dict[str, list[str]]) -> tuple[int, Any, JSON] | None:
        if rest == []:
            rows = account.transactions
            for key in ("symbol", "underlying-symbol", "instrument-type", "action"):
                if key in q:
                    rows = [t for t in rows if t.get(key) in q[key]]
            types = set(q.get("types[]", []) + q.get("type", []))
            if types:
                rows = [t for t in rows if t["transaction-type"] in types]
            ordered = rows if q.get("sort", ["Desc"])[-1] == "Asc" else list(reversed(rows))
            return self._page(ordered, q, default=250)
        if rest == ["total-fees"]:
            data: JSON = {}
            money(data, "total-fees", -self.server.accounts.by_number[account.number].fees_today)
            return 200, data, {}
        if len(rest) == 1 and rest[0].isdigit():
            for row in account.transactions:
                if row["id"] == int(rest[0]):
                    return 200, row, {}
            raise OrderError(404, "not_found", f"transaction {rest[0]} not found")
        return None

    def _positions(self, account: Account, query: list[tuple[str, str]]) -> list[JSON]:
        srv = self.server
        now = srv.clock.now()
        q = _multi(query)
        marks = q.get("include-marks", ["false"])[-1] == "true"
        closed = q.get("include-closed-positions", ["false"])[-1] == "true"
        unders = set(q.get("underlying-symbol[]", []) + q.get("underlying-symbol", []))
        out = []
        for pos in account.positions.values():
            if pos.quantity == 0 and not closed:
                continue
            if "symbol" in q and pos.inst.symbol not in q["symbol"]:
                continue
            if "instrument-type" in q and pos.inst.kind not in q["instrument-type"]:
                continue
            if unders and pos.inst.underlying not in unders:
                continue
            out.append(srv.accounts.position_json(pos, now, marks=marks))
        return out

    # ------------------------------------------------------------------ orders

    def _orders_route(
        self, method: str, account: Account, rest: list[str], query: list[tuple[str, str]], body: Any, version: int
    ) -> tuple[int, Any, JSON] | None:
        book = self.book
        q = _multi(query)
        mine = [o for o in book.orders.values() if o.account == account.number]
        if method == "GET" and rest == []:
            if version >= 20261012 and not (q.get("start-date") or q.get("start-at")):
                raise bad("order searches need start-date or start-at (order-api 20261012)")
            orders = self._filter(mine, q)
            if q.get("sort", ["Desc"])[-1] == "Desc":
                orders.reverse()
            return self._page([book.order_json(o) for o in orders], q, default=10)
        if method == "GET" and rest == ["live"]:
            return 200, {"items": [book.order_json(o) for o in self._filter(mine, q)]}, {}
        if method == "POST" and rest == ["dry-run"]:
            order = book.parse(account, body)
            return 201, self._placed(account, order, dry=True), {}
        if method == "POST" and rest == []:
            order = book.parse(account, body)
            response_bp, fees, errors = book.check(account, order)
            if errors:
                raise OrderError(422, "preflight_check_failure", errors[0]["message"], errors)
            book.place(account, order)
            return 201, {"order": self._snapshot(order), "warnings": [], **self._effects(response_bp, fees)}, {}
        if len(rest) >= 1 and rest[0].isdigit():
            order = book.orders.get(int(rest[0]))
            if order is None or order.account != account.number:
                raise OrderError(404, "not_found", f"order {rest[0]} not found")
            tail = rest[1:]
            if method == "GET" and tail == []:
                return 200, book.order_json(order), {}
            if method == "DELETE" and tail == []:
                if order.complex_id is not None:
                    raise refuse(
                        "order_in_complex_order", f"order {order.id} belongs to complex order {order.complex_id}"
                    )
                return 200, self._cancel(order), {}
            if method in ("PUT", "PATCH") and tail == []:
                # PATCH edits price/execution fields in place at the vendor; here both verbs
                # replace, answering the new order (TT-SDK uses PUT and excludes legs). Orders
                # inside a complex order are not replaced one by one here (not modelled).
                if order.complex_id is not None:
                    raise refuse(
                        "order_in_complex_order", f"order {order.id} belongs to complex order {order.complex_id}"
                    )
                new = book.replace(account, order, body)
                return 200, book.order_json(new), {}
            if method == "POST" and tail == ["dry-run"]:
                new = book.parse(account, body, legs_from=order)
                return 201, self._placed(account, new, dry=True), {}
        return None

    def _filter(self, orders: list[Order], q: dict[str, list[str]]) -> list[Order]:
        statuses = set(q.get("status[]", []) + q.get("status", []))
        unders = set(q.get("underlying-symbol", []) + q.get("underlying-symbol[]", []))
        out = [o for o in orders if (not statuses or o.status in statuses)]
        return [o for o in out if not unders or o.legs[0].inst.underlying in unders]

    def _snapshot(self, order: Order) -> JSON:
        """The order as the place response shows it: at Routed, the moment it left."""
        data = self.book.order_json(order)
        if order.status not in ("Rejected",):
            data["status"] = "Routed"
            data["cancellable"] = data["editable"] = True
            for leg in data["legs"]:
                leg["remaining-quantity"] = leg["quantity"]
                leg["fills"] = []
            data.pop("terminal-at", None)
            data.pop("live-at", None)
        return data

    def _cancel(self, order: Order) -> JSON:
        self.book.cancel(order)
        data = self.book.order_json(order)
        data["status"] = "Cancel Requested"  # the answer shows the request; the streamer shows Cancelled
        data.pop("terminal-at", None)
        data.pop("cancelled-at", None)
        return data

    @staticmethod
    def _effects(bp: JSON, fees: JSON) -> JSON:
        return {"buying-power-effect": bp, "fee-calculation": fees}

    def _placed(self, account: Account, order: Order, *, dry: bool) -> JSON:
        bp, fees, errors = self.book.check(account, order)
        order.status = "Received"
        data = self.book.order_json(order)
        out: JSON = {"order": data, **self._effects(bp, fees)}
        # TT-DOC: a dry-run warning means the real submit would be rejected; TT-SDK models an
        # ``errors`` list too. The failed checks go in both.
        out["warnings"] = [dict(e) for e in errors]
        if errors:
            out["errors"] = errors
        return out

    def _page(self, items: list[JSON], q: dict[str, list[str]], *, default: int) -> tuple[int, Any, JSON]:
        try:
            per_page = int(q.get("per-page", [str(default)])[-1])
            offset = int(q.get("page-offset", ["0"])[-1])
        except ValueError as exc:
            raise bad("per-page and page-offset are integers") from exc
        if per_page <= 0 or offset < 0:
            raise bad("per-page must be positive and page-offset not negative")
        total = len(items)
        pages = max(1, -(-total // per_page))
        chunk = items[offset * per_page : (offset + 1) * per_page]
        pagination = {
            "per-page": per_page,
            "page-offset": offset,
            "item-offset": offset * per_page,
            "total-items": total,
            "total-pages": pages,
            "current-item-count": len(chunk),
            "previous-link": None,
            "next-link": None,
            "paging-link-template": None,
        }
        return 200, {"items": chunk}, {"pagination": pagination}

    # ------------------------------------------------------------------ complex orders

    def _complex_route(
        self, method: str, account: Account, rest: list[str], query: list[tuple[str, str]], body: Any
    ) -> tuple[int, Any, JSON] | None:
        book = self.book
        mine = [c for c in book.complexes.values() if c.account == account.number]
        if method == "POST" and rest in ([], ["dry-run"]):
            cx = self._parse_complex(account, body)
            members = [cx.trigger] if cx.trigger is not None else cx.orders
            checks = [book.check(account, o) for o in members]
            bp = checks[0][0]
            commission = clearing = Decimal(0)
            for order in [*([cx.trigger] if cx.trigger else []), *cx.orders]:
                fee = book.check(account, order)[1]
                commission += Decimal(fee["commission"])
                clearing += Decimal(fee["clearing-fees"])
            fees = fee_calculation(commission, clearing)
            errors = [e for _, _, errs in checks for e in errs]
            if rest == ["dry-run"]:
                for order in [*([cx.trigger] if cx.trigger else []), *cx.orders]:
                    order.status = "Received"
                out: JSON = {"complex-order": book.complex_json(cx), "warnings": [dict(e) for e in errors]}
                if errors:
                    out["errors"] = errors
                return 201, {**out, **self._effects(bp, fees)}, {}
            if errors:
                raise OrderError(422, "preflight_check_failure", errors[0]["message"], errors)
            book.place_complex(account, cx)
            return 201, {"complex-order": book.complex_json(cx), "warnings": [], **self._effects(bp, fees)}, {}
        if method == "GET" and rest == ["live"]:
            return 200, {"items": [book.complex_json(c) for c in mine]}, {}
        if method == "GET" and rest == []:
            return self._page([book.complex_json(c) for c in reversed(mine)], _multi(query), default=10)
        if len(rest) == 1 and rest[0].isdigit():
            cx = book.complexes.get(int(rest[0]))
            if cx is None or cx.account != account.number:
                raise OrderError(404, "not_found", f"complex order {rest[0]} not found")
            if method == "GET":
                return 200, book.complex_json(cx), {}
            if method == "DELETE":
                book.cancel_complex(cx)
                return 200, book.complex_json(cx), {}
        return None

    def _parse_complex(self, account: Account, body: Any) -> Complex:
        if not isinstance(body, dict):
            raise bad("the complex order must be a JSON object")
        unknown = sorted(set(body) - COMPLEX_KEYS)
        if unknown:
            raise bad(f"unknown complex-order field(s): {', '.join(unknown)}")
        kind = body.get("type")
        if kind in ("PAIRS", "BLAST"):
            raise refuse("unsupported_complex_order", f"{kind} complex orders are not modelled by this fake server")
        if kind not in ("OCO", "OTO", "OTOCO"):
            raise bad(f"type must be OCO, OTO, OTOCO, PAIRS or BLAST, not {kind!r}")
        orders_json = body.get("orders")
        if not isinstance(orders_json, list):
            raise bad("orders must be a list")
        orders = [self.book.parse(account, o) for o in orders_json]
        trigger_json = body.get("trigger-order")
        trigger = self.book.parse(account, trigger_json) if trigger_json is not None else None
        if kind == "OCO" and (trigger is not None or len(orders) != 2):
            raise bad("an OCO order has exactly two orders and no trigger-order")
        if kind == "OTOCO" and (trigger is None or len(orders) != 2):
            raise bad("an OTOCO order has a trigger-order and exactly two orders")
        if kind == "OTO" and (trigger is None or not 1 <= len(orders) <= 3):
            raise bad("an OTO order has a trigger-order and one to three orders")
        if kind in ("OCO", "OTOCO"):
            symbols = {tuple(leg.inst.symbol for leg in o.legs) for o in orders}
            if len(symbols) != 1:
                raise bad("the two orders of an OCO pair trade the same legs")
        return Complex(None, account.number, kind, orders, trigger)

    # ------------------------------------------------------------------ instruments

    def _instrument_route(self, seg: list[str], query: list[tuple[str, str]]) -> tuple[int, Any, JSON] | None:
        srv = self.server
        market = srv.market
        now = srv.clock.now()
        q = _multi(query)
        n = len(seg)

        def one(symbol: str, kinds: tuple[str, ...]) -> tuple[int, Any, JSON]:
            inst = market.get(symbol)
            if inst is None or inst.kind not in kinds:
                raise OrderError(404, "not_found", f"no {'/'.join(kinds)} {symbol!r}")
            return 200, shapes.instrument(inst, market, now), {}

        if seg[:1] == ["option-chains"] and n in (2, 3):
            under = market.get(seg[1])
            if under is None or under.kind != "Equity":
                raise OrderError(404, "not_found", f"no option chain for {seg[1]!r}")
            if n == 2:
                items = [
                    shapes.equity_option(o, now)
                    for o in sorted(market.options_on(under.symbol), key=lambda o: (o.expires, o.strike, o.option_type))
                ]
                return 200, {"items": items}, {}
            if seg[2] == "nested":
                return 200, {"items": [shapes.nested_chain(under, market, now)]}, {}
            if seg[2] == "compact":
                return 200, {"items": [shapes.compact_chain(under, market)]}, {}
            return None
        if seg[:1] == ["futures-option-chains"] and n in (2, 3):
            code = seg[1].lstrip("/")
            if code not in {f.product for f in market.instruments.values() if f.kind == "Future"}:
                raise OrderError(404, "not_found", f"no futures option chain for {seg[1]!r}")
            if n == 3 and seg[2] == "nested":
                return 200, shapes.nested_futures_chain(code, market, now), {}
            if n == 2:
                items = [
                    shapes.future_option(o, now)
                    for o in market.instruments.values()
                    if o.kind == "Future Option" and o.product == code
                ]
                return 200, {"items": items}, {}
            return None
        if seg[:1] == ["instruments"] and n >= 2:
            kind = seg[1]
            if kind == "equities" and n == 2:
                symbols = q.get("symbol[]", []) + q.get("symbol", [])
                items = [
                    shapes.equity(market.instruments[s])
                    for s in symbols
                    if s in market.instruments and market.instruments[s].kind == "Equity"
                ]
                return self._page(items, q, default=250)
            if kind == "equities" and n == 3 and seg[2] == "active":
                items = [shapes.equity(i) for i in market.instruments.values() if i.kind == "Equity"]
                return self._page(items, q, default=1000)
            if kind == "equities" and n == 3:
                return one(seg[2], ("Equity",))
            if kind == "equity-options" and n == 3:
                return one(seg[2], ("Equity Option",))
            if kind == "futures" and n == 2:
                symbols = {("/" + s.lstrip("/")) for s in q.get("symbol[]", []) + q.get("symbol", [])}
                codes = set(q.get("product-code[]", []) + q.get("product-code", []))
                items = [
                    shapes.future(f, market)
                    for f in sorted(market.instruments.values(), key=lambda i: i.symbol)
                    if f.kind == "Future" and (not symbols or f.symbol in symbols) and (not codes or f.product in codes)
                ]
                return self._page(items, q, default=250)
            if kind == "futures" and n == 3:
                return one("/" + seg[2].lstrip("/"), ("Future",))
            if kind == "future-products" and n == 2:
                return 200, {"items": [shapes.future_product(c, market) for c in sorted(market.margins)]}, {}
            if kind == "future-products" and n == 4:
                if seg[2] != "CME" or seg[3].lstrip("/") not in market.margins:
                    raise OrderError(404, "not_found", f"no future product {seg[2]}/{seg[3]}")
                return 200, shapes.future_product(seg[3].lstrip("/"), market), {}
            if kind == "future-options" and n == 3:
                return one(seg[2], ("Future Option",))
            return None
        if seg[:2] == ["symbols", "search"] and n == 3:
            fragment = seg[2].upper()
            rows = [
                shapes.search_row(i)
                for i in market.instruments.values()
                if i.kind in ("Equity", "Future")
                and (fragment in i.symbol.upper() or fragment in i.description.upper())
            ]
            return 200, {"items": rows}, {}
        if seg[:1] == ["market-data"]:
            return self._market_data(seg, q)
        return None

    def _market_data(self, seg: list[str], q: dict[str, list[str]]) -> tuple[int, Any, JSON] | None:
        srv = self.server
        market = srv.market
        now = srv.clock.now()
        if seg == ["market-data", "by-type"]:
            # B4/D12: comma-delimited per the docs, repeated (array) keys per the swagger: both.
            wanted: list[str] = []
            for key in ("index", "equity", "equity-option", "future", "future-option", "cryptocurrency"):
                for value in q.get(key, []) + q.get(f"{key}[]", []):
                    wanted.extend(v for v in value.split(",") if v)
            if len(wanted) > 100:
                raise bad("at most 100 symbols in total")
            items = [shapes.market_data(market.instruments[s], market, now) for s in wanted if s in market.instruments]
            return 200, {"items": items}, {}
        if len(seg) == 3:
            inst = market.get(seg[2])
            if inst is None or inst.kind != seg[1]:
                raise OrderError(404, "not_found", f"no market data for {seg[1]} {seg[2]}")
            return 200, shapes.market_data(inst, market, now), {}
        return None


def _multi(query: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in query:
        out.setdefault(key, []).append(value)
    return out

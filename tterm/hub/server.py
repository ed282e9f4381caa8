"""The hub's HTTP and WebSocket server (aiohttp ``AppRunner`` + ``TCPSite``, inside any event loop).

Routes:

- ``POST /webhook/{strategy}`` and ``POST /webhook/{strategy}/{secret}``: TradingView alerts.
  In order: source allow-list (TradingView's published addresses plus ``allowed_ips``; proxy
  headers only with ``trust_proxy``), per-source rate limit, body size, the shared secret (in the
  path, or a ``passphrase``/``token`` field; compared in constant time), parsing, then
  :meth:`SignalRouter.accept`. The reply comes at once (202 with the alert's id and, per account,
  what it will do) and the orders follow asynchronously. Every request, accepted or not, is
  journaled (kind ``webhook``) with its raw body and outcome, secrets masked.
- ``GET /ws``: the remote engine API for ``tterm attach`` (bearer token required).
- ``GET /health``: liveness; details only with the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from tterm import __version__
from tterm.core.alerts.model import AlertSpec
from tterm.core.broker import LoginPrompt
from tterm.core.client import EngineError
from tterm.core.instruments import UnknownSymbol
from tterm.core.models import OrderGroup, OrderRequest, Timeframe, utcnow
from tterm.core.redact import MASK, REDACTOR, mask
from tterm.hub import wire
from tterm.hub.routing import SignalRouter
from tterm.hub.webhook import ErrorCode, WebhookError, extract_secret, parse_body

if TYPE_CHECKING:
    from tterm.config import HubSettings
    from tterm.core.engine import Engine

log = logging.getLogger(__name__)

#: Version of the /ws protocol; the remote client refuses a hub that speaks another.
#: 3: price alerts (the add_alert, list_alerts and remove_alert calls; Alert and AlertFired events;
#: the snapshot's alerts) and pnl_history (a PnlReport), and broker_preview (an OrderPreview;
#: accounts say whether their broker has dry runs), which a protocol-2 client could not decode.
PROTOCOL = 3

#: TradingView's published webhook source addresses (support article 43000529348).
TRADINGVIEW_IPS: tuple[str, ...] = ("52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7")

#: How much of a body the journal keeps (the hub refuses bodies above ``max_body_bytes`` anyway).
JOURNAL_BODY_LIMIT = 16384


def secrets_equal(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison; an unset expected secret matches nothing."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class RateLimiter:
    """A token bucket per source: ``rate`` requests a second on average, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, source: str) -> bool:
        now = self._clock()
        tokens, last = self._buckets.get(source, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1:
            self._buckets[source] = (tokens, now)
            return False
        self._buckets[source] = (tokens - 1, now)
        if len(self._buckets) > 10_000:  # forget full buckets so many sources cannot grow memory
            self._buckets = {k: v for k, v in self._buckets.items() if v[0] < self.burst - 1}
        return True


class HubServer:
    """Serves webhooks and the remote engine API for one engine (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        router: SignalRouter | None,
        settings: HubSettings,
        *,
        webhook_secret: str | None,
        api_token: str | None,
        webhooks: bool = True,
        remote: bool = True,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.router = router
        self.settings = settings
        self._webhook_secret = webhook_secret
        self._api_token = api_token
        # Masked in every journaled string and log line from now on, wherever a sender puts them
        # (a secret in the wrong field is quoted back by the error that refuses it).
        REDACTOR.add(webhook_secret)
        REDACTOR.add(api_token)
        self._now = now
        self._started = time.monotonic()
        self.limiter = RateLimiter(settings.rate_limit, settings.rate_burst)
        networks = [*(TRADINGVIEW_IPS if settings.tradingview_ips_only else ()), *settings.allowed_ips]
        self._allowed = [ipaddress.ip_network(n, strict=False) for n in networks]
        self._runner: web.AppRunner | None = None
        self._clients: set[web.WebSocketResponse] = set()
        #: Set while no remote client is attached.
        self.no_clients = asyncio.Event()
        self.no_clients.set()
        self.port: int | None = None
        self.host = settings.host
        app = web.Application(client_max_size=settings.max_body_bytes)
        if webhooks:
            if router is None:
                raise ValueError("serving webhooks needs a SignalRouter")
            app.router.add_post("/webhook/{strategy}", self._webhook)
            app.router.add_post("/webhook/{strategy}/{secret}", self._webhook)
        if remote:
            app.router.add_get("/ws", self._ws)
        app.router.add_get("/health", self._health)
        self.app = app

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str | None = None, port: int | None = None) -> int:
        """Bind and serve; returns the port (``port`` 0 picks a free one)."""
        self.host = host or self.settings.host
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.settings.port if port is None else port, reuse_address=True)
        await site.start()
        self._runner = runner
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else (port or self.settings.port)
        return self.port

    async def stop(self) -> None:
        for ws in list(self._clients):
            with contextlib.suppress(Exception):
                await ws.close(code=1001, message=b"hub shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------------ helpers

    def client_ip(self, request: web.Request) -> str:
        """The sender's address: the peer, or with ``trust_proxy`` the address the proxy saw (the
        last X-Forwarded-For entry, which the proxy itself appended; else X-Real-IP)."""
        if self.settings.trust_proxy:
            xff = request.headers.get("X-Forwarded-For", "")
            if xff.strip():
                return xff.split(",")[-1].strip()
            real = request.headers.get("X-Real-IP", "").strip()
            if real:
                return real
        return request.remote or ""

    def ip_allowed(self, ip: str) -> bool:
        if not self._allowed:
            return True
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self._allowed)

    def _bearer_ok(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and secrets_equal(token.strip(), self._api_token)

    def _masked_body(self, text: str) -> str:
        if self._webhook_secret:
            text = text.replace(self._webhook_secret, mask(self._webhook_secret))
        if len(text) > JOURNAL_BODY_LIMIT:
            text = text[:JOURNAL_BODY_LIMIT] + f"... ({len(text)} characters)"
        return text

    # ------------------------------------------------------------------ webhook

    async def _webhook(self, request: web.Request) -> web.Response:
        t0 = time.perf_counter()
        strategy = request.match_info["strategy"]
        path_secret = request.match_info.get("secret")
        ip = self.client_ip(request)
        text = ""
        record: dict[str, Any] = {
            "source": ip,
            "path": f"/webhook/{strategy}" + (f"/{MASK}" if path_secret is not None else ""),
            "strategy": strategy,
            "content_type": request.headers.get("Content-Type", ""),
        }
        status = 202
        reply: dict[str, Any]
        try:
            if not self.ip_allowed(ip):
                raise WebhookError(ErrorCode.UNAUTHORIZED, f"source {ip} is not on the webhook allow-list", status=403)
            if not self.limiter.allow(ip):
                raise WebhookError(
                    ErrorCode.RATE_LIMITED,
                    f"more than {self.settings.rate_limit:g} requests a second from {ip}; slow down",
                )
            length = request.content_length
            if length is not None and length > self.settings.max_body_bytes:
                raise WebhookError(
                    ErrorCode.TOO_LARGE, f"body of {length} bytes is over the {self.settings.max_body_bytes}-byte limit"
                )
            try:
                raw = await request.read()
            except web.HTTPRequestEntityTooLarge:
                raise WebhookError(
                    ErrorCode.TOO_LARGE, f"body is over the {self.settings.max_body_bytes}-byte limit"
                ) from None
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("utf-8", errors="replace")
                raise WebhookError(ErrorCode.MALFORMED, "the body is not UTF-8 text") from None
            if not self._webhook_secret:
                raise WebhookError(
                    ErrorCode.UNAUTHORIZED, "the hub has no webhook secret configured; every alert is refused"
                )
            given = path_secret if path_secret is not None else extract_secret(text)
            if not secrets_equal(given, self._webhook_secret):
                raise WebhookError(
                    ErrorCode.UNAUTHORIZED,
                    "wrong or missing secret (put it in the URL path or a passphrase field)",
                )
            signal = parse_body(text)
            record["form"] = signal.form
            if signal.repaired:
                record["repaired"] = "an empty unquoted placeholder was read as null"
            if signal.ignored:
                record["ignored_fields"] = list(signal.ignored)
            assert self.router is not None
            ack = self.router.accept(strategy, signal, received_perf=t0)
            reply = {
                "ok": True,
                "id": ack.signal_id,
                "status": "accepted",
                "symbol": ack.symbol,
                "accounts": ack.previews,
            }
            record.update(signal_id=ack.signal_id, outcome="accepted", accounts=ack.previews)
        except WebhookError as exc:
            status = exc.status
            # The sender may have put the secret in the field the message quotes: mask it in the
            # reply too (TradingView shows replies in its alert log).
            reply = {"ok": False, "error": exc.code.value, "message": REDACTOR.scrub(exc.message)}
            if exc.signal_id:
                reply["id"] = exc.signal_id
                record["signal_id"] = exc.signal_id
            record.update(outcome=exc.code.value, message=exc.message)
        except ArithmeticError as exc:
            # A number from the alert that the bounds at the edge let through and arithmetic then
            # refused (decimal.Overflow, InvalidOperation): the sender's input, so a typed 400.
            log.warning("webhook: a number in the alert is out of range (%s)", type(exc).__name__)
            status = 400
            message = f"a number in the alert is out of range ({type(exc).__name__})"
            reply = {"ok": False, "error": ErrorCode.MALFORMED.value, "message": message}
            record.update(outcome=ErrorCode.MALFORMED.value, message=message)
        except Exception as exc:  # a bug: answer 500, journal it, never drop it silently
            log.exception("webhook handler failed")
            status = 500
            reply = {"ok": False, "error": ErrorCode.FAILED.value, "message": "internal error; see the journal"}
            record.update(outcome=ErrorCode.FAILED.value, message=repr(exc))
        record["status"] = status
        record["body"] = self._masked_body(text)
        record["ack_ms"] = round((time.perf_counter() - t0) * 1000, 3)
        try:
            self.engine.journal.record("webhook", record, ref=record.get("signal_id", ""))
        except Exception:
            log.exception("could not journal a webhook request")
        await self.engine.journal.durable()  # the alert's rows are on disk before TradingView hears "ok"
        return web.json_response(reply, status=status)

    # ------------------------------------------------------------------ health

    async def _health(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = {"ok": True, "status": "running", "version": __version__}
        if self._bearer_ok(request):
            snap = await self.engine.snapshot()
            body.update(
                uptime_s=round(time.monotonic() - self._started, 1),
                brokers={c.broker: c.state.value for c in snap.connections},
                accounts=[a.id for a in snap.accounts],
                remote_clients=len(self._clients),
            )
            if self.router is not None:
                body.update(
                    strategies=sorted(self.router.strategies),
                    queued=not self.router.idle.is_set(),
                    drift=[f"{a} {s}" for a, s in sorted(self.router.drifted)],
                )
        return web.json_response(body)

    # ------------------------------------------------------------------ remote engine API

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if not self._api_token:
            return web.json_response(
                {"ok": False, "error": "unauthorized", "message": "the remote API is off: no api_token configured"},
                status=401,
            )
        if not self._bearer_ok(request):
            return web.json_response(
                {"ok": False, "error": "unauthorized", "message": "missing or wrong API token"}, status=401
            )
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        self._clients.add(ws)
        self.no_clients.clear()
        session = _RemoteSession(self, ws)
        try:
            await session.run()
        finally:
            self._clients.discard(ws)
            await session.close()
            if not self._clients:
                self.no_clients.set()
        return ws

    async def snapshot(self) -> Any:
        snap = await self.engine.snapshot()
        if self.router is not None:
            snap = replace(snap, signals=tuple(self.router.recent))
        return snap

    def hello(self) -> dict[str, Any]:
        """What a remote client needs to resolve symbols exactly as the hub does."""
        inst = self.engine.instruments
        fees: dict[str, str] = {}
        for root in inst.roots:
            try:
                fees[root] = str(inst.fee_per_side(inst.front(root)))
            except Exception:  # a root without a current contract: the client keeps its default
                continue
        return {
            "type": "hello",
            "protocol": PROTOCOL,
            "version": __version__,
            "trade_date": inst.today().isoformat(),
            "equities": list(inst.equities),
            "fees": fees,
        }


def _opt_decimal(args: dict[str, Any], name: str) -> Decimal | None:
    return wire.decimal_or_none(args.get(name), name)


def _opt_str(args: dict[str, Any], name: str) -> str | None:
    v = args.get(name)
    if v is not None and not isinstance(v, str):
        raise wire.WireError(f"{name}: expected a string")
    return v


def _opt_datetime(args: dict[str, Any], name: str) -> datetime | None:
    v = args.get(name)
    if v is None:
        return None
    if not isinstance(v, str):
        raise wire.WireError(f"{name}: expected an ISO-8601 datetime")
    try:
        out = datetime.fromisoformat(v)
    except ValueError:
        raise wire.WireError(f"{name}: expected an ISO-8601 datetime, got {v[:40]!r}") from None
    if out.tzinfo is None:
        raise wire.WireError(f"{name}: expected a timezone-aware datetime")
    return out


def _opt_date(args: dict[str, Any], name: str) -> date | None:
    v = args.get(name)
    if v is None:
        return None
    try:
        return date.fromisoformat(str(v))
    except ValueError:
        raise wire.WireError(f"{name}: expected an ISO-8601 date, got {str(v)[:40]!r}") from None


def _symbols(args: dict[str, Any]) -> list[str]:
    v = args.get("symbols")
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise wire.WireError("symbols: expected a list of strings")
    return v


class _RemoteSession:
    """One attached client: its event stream, its quote subscriptions, its calls."""

    def __init__(self, server: HubServer, ws: web.WebSocketResponse) -> None:
        self.server = server
        self.engine = server.engine
        self.ws = ws
        self.sub = self.engine.bus.subscribe("remote")
        self.symbols: list[str] = []
        # Depth and trade feeds this client holds, released when it detaches.
        self.feeds: dict[str, list[str]] = {"depth": [], "trades": []}
        self._sender: asyncio.Task[None] | None = None
        self._calls: set[asyncio.Task[None]] = set()
        self._send_lock = asyncio.Lock()

    async def send(self, payload: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.ws.send_str(json.dumps(payload, separators=(",", ":"), ensure_ascii=False))

    async def run(self) -> None:
        await self.send(self.server.hello())
        self._sender = asyncio.create_task(self._pump(), name="hub-ws-events")
        async for msg in self.ws:
            if msg.type is not WSMsgType.TEXT:
                if msg.type is WSMsgType.ERROR:
                    break
                continue
            try:
                data = json.loads(msg.data)
            except (ValueError, RecursionError):  # RecursionError: nested too deeply to be a call
                await self.send({"type": "error", "message": "not JSON (or nested too deeply)"})
                continue
            if not isinstance(data, dict) or data.get("type") != "call":
                await self.send({"type": "error", "message": "expected {type: call, id, op, args}"})
                continue
            task = asyncio.create_task(self._call(data))
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)

    async def _pump(self) -> None:
        """Forward engine events: quotes coalesced while the client is behind, orders complete."""
        while True:
            await self.sub.wait()
            events = self.sub.drain(1000)
            if events:
                await self.send({"type": "events", "events": [wire.encode(e) for e in events if _sendable(e)]})
            if self.sub.closed:
                if self.ws.closed:
                    return
                # Overflowed: the client resynchronises from a snapshot.
                self.sub = self.engine.bus.subscribe("remote")
                await self.send({"type": "resync"})

    async def _call(self, data: dict[str, Any]) -> None:
        call_id = data.get("id")
        op = data.get("op")
        args = data.get("args") or {}
        try:
            if not isinstance(args, dict):
                raise wire.WireError("args must be an object")
            result = await self._dispatch(str(op), args)
            reply = {"type": "result", "id": call_id, "ok": True, "result": wire.encode(result)}
        except (EngineError, UnknownSymbol, wire.WireError, ValueError) as exc:
            kind = type(exc).__name__ if isinstance(exc, EngineError | UnknownSymbol) else "BadRequest"
            reply = {"type": "result", "id": call_id, "ok": False, "error": {"kind": kind, "message": str(exc)}}
        except Exception as exc:
            log.exception("remote call %s failed", op)
            self.engine.journal.record("error", {"action": f"remote-{op}", "error": repr(exc)})
            reply = {
                "type": "result",
                "id": call_id,
                "ok": False,
                "error": {"kind": "EngineError", "message": f"{op} failed on the hub: {exc}"},
            }
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await self.send(reply)

    async def _dispatch(self, op: str, args: dict[str, Any]) -> Any:
        e = self.engine
        if op == "snapshot":
            return await self.server.snapshot()
        if op == "preview":
            return await e.preview(wire.decode(args.get("request"), OrderRequest))
        if op == "broker_preview":
            return await e.broker_preview(wire.decode(args.get("request"), OrderRequest))
        if op == "place":
            return await e.place(wire.decode(args.get("request"), OrderRequest))
        if op == "cancel":
            return await e.cancel(str(args["account"]), str(args["order_id"]))
        if op == "cancel_all":
            return await e.cancel_all(_opt_str(args, "account"), _opt_str(args, "symbol"))
        if op == "modify":
            qty = args.get("quantity")
            if qty is not None and (isinstance(qty, bool) or not isinstance(qty, int)):
                raise wire.WireError("quantity: expected a whole number")
            return await e.modify(
                str(args["account"]),
                str(args["order_id"]),
                quantity=qty,
                limit_price=_opt_decimal(args, "limit_price"),
                stop_price=_opt_decimal(args, "stop_price"),
            )
        if op == "flatten":
            return await e.flatten(_opt_str(args, "account"), _opt_str(args, "symbol"))
        if op == "subscribe":
            resolved = await e.subscribe(_symbols(args))
            self.symbols.extend(resolved)
            return resolved
        if op == "unsubscribe":
            syms = _symbols(args)
            mine = []
            for sym in syms:
                contract = e.instruments.resolve(sym).symbol
                if contract in self.symbols:
                    self.symbols.remove(contract)
                    mine.append(contract)
            if mine:
                await e.unsubscribe(mine)
            return None
        if op == "lock":
            return await e.lock(_opt_str(args, "account"), str(args.get("reason") or ""), by="remote")
        if op == "instrument":
            return e.instrument(str(args["symbol"]))
        if op == "find_instrument":
            return await e.find_instrument(str(args["symbol"]))
        if op == "preview_group":
            return await e.preview_group(wire.decode(args.get("group"), OrderGroup))
        if op == "place_group":
            return await e.place_group(wire.decode(args.get("group"), OrderGroup))
        if op == "bars":
            start = _opt_datetime(args, "start")
            if start is None:
                raise wire.WireError("start: missing")
            try:
                timeframe = Timeframe.parse(str(args.get("timeframe", "")))
            except ValueError as exc:
                raise wire.WireError(str(exc)) from None
            return await e.bars(str(args["symbol"]), timeframe, start, _opt_datetime(args, "end"))
        if op in ("subscribe_depth", "subscribe_trades"):
            kind = op.removeprefix("subscribe_")
            resolved = await getattr(e, op)(_symbols(args))
            self.feeds[kind].extend(resolved)
            return resolved
        if op in ("unsubscribe_depth", "unsubscribe_trades"):
            kind = op.removeprefix("unsubscribe_")
            mine = []
            for sym in _symbols(args):
                contract = e.instruments.resolve(sym).symbol
                if contract in self.feeds[kind]:
                    self.feeds[kind].remove(contract)
                    mine.append(contract)
            if mine:
                await getattr(e, op)(mine)
            return None
        if op == "option_chain":
            return await e.option_chain(str(args["underlying"]), _opt_date(args, "expiry"))
        if op == "search_instruments":
            limit = args.get("limit", 20)
            if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 200:
                raise wire.WireError("limit: expected a whole number from 1 to 200")
            return await e.search_instruments(str(args.get("text", "")), limit)
        if op == "add_alert":
            replaces = args.get("replaces")
            if replaces is not None and (isinstance(replaces, bool) or not isinstance(replaces, int)):
                raise wire.WireError("replaces: expected a whole number")
            return await e.add_alert(wire.decode(args.get("spec"), AlertSpec), replaces, source="remote")
        if op == "list_alerts":
            return await e.list_alerts()
        if op == "remove_alert":
            alert_id = args.get("alert_id")
            if isinstance(alert_id, bool) or not isinstance(alert_id, int):
                raise wire.WireError("alert_id: expected a whole number")
            return await e.remove_alert(alert_id)
        if op == "pnl_history":
            days = args.get("days", 30)
            if isinstance(days, bool) or not isinstance(days, int):
                raise wire.WireError("days: expected a whole number")
            return await e.pnl_history(days, _opt_str(args, "account"))
        if op == "login_start":
            return await e.login_start(str(args["broker"]))
        if op == "login_complete":
            prompt = wire.decode(args.get("prompt"), LoginPrompt)
            return await e.login_complete(str(args["broker"]), prompt, str(args.get("pasted_url", "")))
        raise wire.WireError(f"unknown op {op!r}")

    async def close(self) -> None:
        self.sub.close()
        for task in [t for t in (self._sender, *self._calls) if t is not None]:
            task.cancel()
        for task in [t for t in (self._sender, *self._calls) if t is not None]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.symbols:
            # A detached client's quote subscriptions must not pile up on the hub.
            with contextlib.suppress(Exception):
                await self.engine.unsubscribe(self.symbols)
            self.symbols = []
        for kind, syms in self.feeds.items():
            if syms:
                with contextlib.suppress(Exception):
                    await getattr(self.engine, f"unsubscribe_{kind}")(syms)
        self.feeds = {"depth": [], "trades": []}


def _sendable(event: Any) -> bool:
    return type(event).__name__ in wire.WIRE_TYPES

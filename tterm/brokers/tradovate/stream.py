"""Tradovate WebSockets (A6): the frame protocol, one socket, and a supervisor that keeps it up.

Server frames are text whose first character is the type: ``o`` (open), ``h`` (heartbeat),
``a[...]`` (a JSON array of replies ``{"s","i","d"}`` and events ``{"e","d"}``) and
``c[code,"reason"]`` (closing). Client messages are four lines, ``endpoint\\nid\\nquery\\nbody``;
``authorize`` carries the raw token as its body; ``[]`` is the client heartbeat.

The same class serves the trading socket (``authorize``, ``user/syncrequest``, ``props`` events)
and the market-data socket (``md/subscribeQuote``, ``md`` events). It has the shape
:class:`~tterm.brokers.common.streams.SocketSupervisor` keeps connected (``closed``,
``close_reason``, frame listeners, ``close``). A ``s:429`` reply starts the user's hour-long
lockout (:mod:`~tterm.brokers.tradovate.lockout`) and a ``s:423`` the slow-down; neither request
is resent, and during a lockout nothing is sent on the socket but heartbeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect

from tterm.brokers.common.backoff import Backoff
from tterm.brokers.common.clock import Clock
from tterm.brokers.common.ratelimit import RateLimiter
from tterm.brokers.tradovate.lockout import LockedOut, Lockout, SlowDown, clock_text
from tterm.brokers.tradovate.rest import CAPTCHA_MESSAGE, penalty_of
from tterm.core.broker import AuthError, BrokerError, RateLimited
from tterm.core.redact import RedactingLogger, Redactor

log = logging.getLogger(__name__)
_wire_log = logging.getLogger("tterm.brokers.tradovate.wire")

HEARTBEAT = "[]"


class FrameError(BrokerError):
    """A server frame that does not follow the protocol."""


class SocketError(BrokerError):
    """A socket request answered with a non-200 status (``status``) or not answered at all."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SocketClosed(BrokerError):
    """The socket closed while a request was waiting for its reply."""


def encode_request(endpoint: str, request_id: int, body: Any = None, query: str = "") -> str:
    """The four-line client message; ``body`` is JSON-encoded unless it is already a string."""
    if "\n" in endpoint or "\n" in query:
        raise ValueError("endpoint and query cannot contain a newline")
    if body is None:
        text = ""
    elif isinstance(body, str):
        text = body
    else:
        text = json.dumps(body, separators=(",", ":"))
    return f"{endpoint}\n{request_id}\n{query}\n{text}"


def parse_frame(frame: str) -> tuple[str, Any]:
    """``(kind, payload)`` of a server frame: ``o``/``h`` (None), ``a`` (list), ``c`` ((code, reason))."""
    if not frame:
        raise FrameError("empty frame")
    kind = frame[0]
    if kind in ("o", "h"):
        if len(frame) != 1:
            raise FrameError(f"{kind!r} frame with trailing data")
        return kind, None
    if kind not in ("a", "c"):
        raise FrameError(f"unknown frame type {kind!r}")
    try:
        payload = json.loads(frame[1:])
    except ValueError:
        raise FrameError(f"{kind!r} frame is not followed by JSON") from None
    if not isinstance(payload, list):
        raise FrameError(f"{kind!r} frame payload is not an array")
    if kind == "c":
        # U6: close codes are not pinned down; take what is there.
        code = payload[0] if payload and isinstance(payload[0], int) else None
        reason = str(payload[1]) if len(payload) > 1 else ""
        return kind, (code, reason)
    return kind, payload


EventHandler = Callable[[str, Any], None]
ReplyHook = Callable[[Any], None]


class TradovateSocket:
    """One Tradovate WebSocket connection: open, authorize, requests with replies, events, heartbeats."""

    def __init__(
        self,
        url: str,
        *,
        name: str,
        clock: Clock,
        redactor: Redactor,
        on_event: EventHandler,
        limiter: RateLimiter | None = None,
        heartbeat_interval: float = 2.5,
        request_timeout: float = 15.0,
        connect_timeout: float = 10.0,
        close_timeout: float = 2.0,
        penalty_retries: int = 3,
        backoff: Backoff | None = None,
        lockout: Lockout | None = None,
        slow_down: Callable[[str], float] | None = None,
    ) -> None:
        self.url = url
        self._lockout = lockout or Lockout(clock)
        self._slow_down = slow_down
        self.name = name
        self._clock = clock
        self._redactor = redactor
        self._on_event = on_event
        self._limiter = limiter
        self.heartbeat_interval = heartbeat_interval
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.close_timeout = close_timeout
        self.penalty_retries = penalty_retries
        self._backoff = backoff or Backoff(base=1.0, cap=60.0)
        self._ids = itertools.count()
        self._pending: dict[int, tuple[asyncio.Future[dict[str, Any]], ReplyHook | None]] = {}
        self._frame_listeners: list[Callable[[], None]] = []
        self._ws: ClientConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.closed = asyncio.Event()
        self.close_reason = ""
        self.heartbeats_sent = 0
        self.frames_received = 0

    def add_frame_listener(self, listener: Callable[[], None]) -> None:
        """``listener()`` runs on every frame received (heartbeats included): the liveness signal."""
        self._frame_listeners.append(listener)

    # ------------------------------------------------------------------ lifecycle

    async def open(self, token: str) -> None:
        """Connect, wait for ``o``, authorize with ``token``. Raises AuthError if the token is refused."""
        try:
            self._ws = await connect(
                self.url,
                open_timeout=self.connect_timeout,
                close_timeout=self.close_timeout,
                ping_interval=None,  # A6 heartbeats are application frames, sent below
                max_size=None,  # a sync snapshot can be large
                logger=RedactingLogger(_wire_log, self._redactor),
            )
        except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
            raise SocketError(f"{self.name} socket: could not connect ({self._describe(exc)})") from None
        try:
            first = await asyncio.wait_for(self._ws.recv(), self.connect_timeout)
        except (TimeoutError, websockets.exceptions.ConnectionClosed) as exc:
            await self._abort()
            raise SocketError(f"{self.name} socket: no open frame from the server ({self._describe(exc)})") from None
        text = first if isinstance(first, str) else first.decode("utf-8", "replace")
        if text != "o":
            await self._abort()
            raise FrameError(f"{self.name} socket: expected the open frame 'o', got {text[:20]!r}")
        self._touch()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._read(), name=f"tradovate-{self.name}-read"),
            loop.create_task(self._heartbeat(), name=f"tradovate-{self.name}-heartbeat"),
        ]
        try:
            await self.request("authorize", token)
        except SocketError as exc:
            await self.close("authorization refused")
            if exc.status == 401:
                raise AuthError(f"Tradovate {self.name} socket refused the session token") from None
            raise

    async def close(self, reason: str = "closed by tterm") -> None:
        """Close the socket (bounded by ``close_timeout``) and fail any waiting request."""
        if not self.close_reason:
            self.close_reason = reason
        ws = self._ws
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(), self.close_timeout + 0.5)
            except (TimeoutError, OSError, websockets.exceptions.WebSocketException):
                await self._abort()
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        for task in self._tasks:
            if task is not asyncio.current_task():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._finish(self.close_reason)

    async def _abort(self) -> None:
        ws = self._ws
        if ws is not None and ws.transport is not None:
            ws.transport.abort()

    def _finish(self, reason: str) -> None:
        if not self.close_reason:
            self.close_reason = reason
        pending, self._pending = self._pending, {}
        for fut, _ in pending.values():
            if not fut.done():
                fut.set_exception(SocketClosed(f"{self.name} socket closed: {self.close_reason}"))
                fut.exception()
        self.closed.set()

    @property
    def is_open(self) -> bool:
        return self._ws is not None and not self.closed.is_set()

    # ------------------------------------------------------------------ requests

    async def request(
        self,
        endpoint: str,
        body: Any = None,
        *,
        query: str = "",
        on_reply: ReplyHook | None = None,
        reply_timeout: float | None = None,
    ) -> Any:
        """Send a request and return its reply's ``d``.

        ``on_reply(d)`` runs inside the reader the moment the successful reply is parsed, before
        any later event is dispatched; the sync snapshot uses it so events never overtake it.
        Penalty tickets are obeyed (wait ``p-time``, resend with ``p-ticket``); ``s:429`` raises.
        """
        penalties = 0
        payload = body
        while True:
            item = await self._exchange(endpoint, payload, query, on_reply, reply_timeout)
            status = item.get("s")
            data = item.get("d")
            if status == 200:
                penalty = penalty_of(data)
                if penalty is None:
                    self._backoff.reset()
                    self._lockout.calm()
                    return data
                if penalty.captcha:
                    raise RateLimited(f"Tradovate penalty with captcha on {endpoint}; {CAPTCHA_MESSAGE}")
                penalties += 1
                if penalties > self.penalty_retries:
                    raise RateLimited(f"Tradovate kept penalising {endpoint} ({penalties} tickets)", penalty.seconds)
                log.warning("Tradovate time penalty on %s (socket): waiting %.0fs", endpoint, penalty.seconds)
                await self._clock.sleep(penalty.seconds)
                if isinstance(payload, dict) or payload is None:
                    payload = {**(payload or {}), "p-ticket": penalty.ticket}
                # A raw-text body (the authorize token) cannot carry the ticket; it is resent as is.
                continue
            if status == 429:
                until = self._lockout.start(f"{endpoint} ({self.name} socket)")
                raise LockedOut(
                    f"Tradovate locked this login out of its API until {clock_text(until)} (429 on {endpoint}, "
                    f"{self.name} socket): not processed, and nothing more is sent before then",
                    retry_after=self._lockout.left(),
                    sent=False,
                )
            if status == 423:
                where = f"{endpoint} ({self.name} socket)"
                delay = self._slow_down(where) if self._slow_down is not None else self._lockout.slow_down()
                raise SlowDown(
                    f"Tradovate warned that this login is about to be locked out (423 on {where}): not "
                    f"processed; tterm holds every request for {delay:.0f}s",
                    retry_after=delay,
                    sent=False,
                )
            # U6: the error text is not pinned down; any non-200 status is an error.
            detail = self._redactor.scrub(str(data)) if data is not None else "no details"
            raise SocketError(f"Tradovate {endpoint} failed on the {self.name} socket ({status}): {detail}", status)

    async def _exchange(
        self, endpoint: str, body: Any, query: str, on_reply: ReplyHook | None, reply_timeout: float | None
    ) -> dict[str, Any]:
        ws = self._ws
        if ws is None or self.closed.is_set():
            raise SocketClosed(f"{self.name} socket is not open")
        self._lockout.check(f"{endpoint} on the {self.name} socket")
        if self._limiter is not None and endpoint != "authorize":
            await self._limiter.acquire(endpoint.lower())
        request_id = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = (fut, on_reply)
        log.debug("%s socket > %s #%d", self.name, endpoint, request_id)
        try:
            await ws.send(encode_request(endpoint, request_id, body, query))
        except websockets.exceptions.ConnectionClosed:
            self._pending.pop(request_id, None)
            raise SocketClosed(f"{self.name} socket closed before {endpoint} could be sent") from None
        wait = reply_timeout if reply_timeout is not None else self.request_timeout
        try:
            return await asyncio.wait_for(asyncio.shield(fut), wait)
        except TimeoutError:
            self._pending.pop(request_id, None)
            raise SocketError(f"Tradovate {endpoint}: no reply on the {self.name} socket in {wait:.0f}s") from None

    # ------------------------------------------------------------------ reading

    def _touch(self) -> None:
        self.frames_received += 1
        for listener in self._frame_listeners:
            listener()

    async def _read(self) -> None:
        ws = self._ws
        assert ws is not None
        reason = "connection closed"
        try:
            async for message in ws:
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                self._touch()
                try:
                    kind, payload = parse_frame(text)
                except FrameError as exc:
                    log.warning("%s socket: ignoring a bad frame (%s)", self.name, exc)
                    continue
                if kind == "a":
                    for item in payload:
                        self._dispatch(item)
                elif kind == "c":
                    code, why = payload
                    reason = f"server closed the socket ({code} {why})".replace(" )", ")")
                    self.close_reason = self.close_reason or reason
                    break
        except websockets.exceptions.ConnectionClosed as exc:
            reason = f"connection lost ({self._describe(exc)})"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in a handler must not leave a zombie socket behind
            log.exception("%s socket reader failed", self.name)
            reason = f"reader failed ({type(exc).__name__})"
        finally:
            self.close_reason = self.close_reason or reason
        await self._abort_quietly()
        self._finish(reason)

    async def _abort_quietly(self) -> None:
        ws = self._ws
        if ws is None:
            return
        try:
            await asyncio.wait_for(ws.close(), self.close_timeout + 0.5)
        except (TimeoutError, OSError, websockets.exceptions.WebSocketException):
            await self._abort()

    def _dispatch(self, item: Any) -> None:
        if not isinstance(item, dict):
            log.warning("%s socket: ignoring a non-object message", self.name)
            return
        if "e" in item:
            try:
                self._on_event(str(item["e"]), item.get("d"))
            except Exception:
                log.exception("%s socket: handler failed for a %r event", self.name, item.get("e"))
            return
        request_id = item.get("i")
        entry = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
        if entry is None:
            log.debug("%s socket: reply to an unknown request %r", self.name, request_id)
            return
        fut, on_reply = entry
        if on_reply is not None and item.get("s") == 200 and penalty_of(item.get("d")) is None:
            try:
                on_reply(item.get("d"))
            except Exception:
                log.exception("%s socket: reply hook failed", self.name)
        if not fut.done():
            fut.set_result(item)

    async def _heartbeat(self) -> None:
        ws = self._ws
        assert ws is not None
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                await ws.send(HEARTBEAT)
            except websockets.exceptions.ConnectionClosed:
                return
            self.heartbeats_sent += 1

    def _describe(self, exc: BaseException) -> str:
        text = self._redactor.scrub(str(exc)) or type(exc).__name__
        return text if len(text) < 200 else text[:200] + "..."

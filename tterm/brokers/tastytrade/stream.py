"""The Tastytrade account streamer (B7): order, balance and position notifications.

- Connect to ``wss://streamer.tastyworks.com`` (cert: ``streamer.cert``); the server says nothing
  first. Every client message is ``{"action", "value"?, "auth-token": "Bearer <token>",
  "request-id", "source"}`` with a token good *now* (it lasts 15 minutes: each message asks the
  token manager afresh).
- ``connect`` subscribes the accounts and is acknowledged ``{"status": "ok", "action",
  "web-socket-session-id", "request-id"?}``; an error is ``{"status": "error", "message"}``
  (``invalid-auth-token`` means the token was refused), and may lack the request id: it is then
  matched by its action.
- ``heartbeat`` goes every ``heartbeat_interval`` (TT-SDK <= 11: 15 s; TT-JS: 20 s; the server's
  timeout is undocumented) and is acknowledged like ``connect``.
- Notifications: ``{"type", "data", "timestamp"}``, whole objects (never diffs), or several of
  them batched as ``{"results": [...]}`` (TT-JS reads both; how often the vendor batches is not
  known). A frame that is not JSON or not an object is logged and skipped, never fatal.

:class:`AccountStreamSocket` has the shape the socket supervisor keeps connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect

from tterm.core.broker import AuthError, BrokerError
from tterm.core.redact import RedactingLogger, Redactor

log = logging.getLogger(__name__)
_wire_log = logging.getLogger("tterm.brokers.tastytrade.wire")


class StreamError(BrokerError):
    """A streamer request refused or not answered."""


Notification = Callable[[str, Any], None]


class AccountStreamSocket:
    """One account-streamer connection: connect, heartbeats, notifications."""

    def __init__(
        self,
        url: str,
        *,
        token: Callable[[], Awaitable[str]],
        source: str,
        redactor: Redactor,
        on_notification: Notification,
        heartbeat_interval: float = 15.0,
        connect_timeout: float = 10.0,
        close_timeout: float = 2.0,
        user_agent: str | None = None,
        request_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self._token = token
        self.source = source
        self._redactor = redactor
        self._on_notification = on_notification
        self.heartbeat_interval = heartbeat_interval
        self.connect_timeout = connect_timeout
        self.close_timeout = close_timeout
        self.user_agent = user_agent
        self.request_timeout = request_timeout
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, asyncio.Future[dict[str, Any]]]] = {}
        self._listeners: list[Callable[[], None]] = []
        self._ws: ClientConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.closed = asyncio.Event()
        self.close_reason = ""
        self.session_id = ""
        self.heartbeats = 0
        self.skipped = 0

    def add_frame_listener(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    @property
    def is_open(self) -> bool:
        return self._ws is not None and not self.closed.is_set()

    async def open(self, accounts: list[str]) -> None:
        """Connect and subscribe ``accounts``; AuthError when the token is refused."""
        try:
            self._ws = await connect(
                self.url,
                open_timeout=self.connect_timeout,
                close_timeout=self.close_timeout,
                max_size=None,
                user_agent_header=self.user_agent or websockets.asyncio.client.USER_AGENT,
                logger=RedactingLogger(_wire_log, self._redactor),
            )
        except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
            raise StreamError(f"Tastytrade account streamer: could not connect ({type(exc).__name__})") from None
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._read(), name="tastytrade-streamer-read"))
        try:
            ack = await self.request("connect", accounts)
        except StreamError as exc:
            await self.close("connect refused")
            if "auth" in str(exc).lower():
                raise AuthError(f"the Tastytrade account streamer refused the token ({exc})") from None
            raise
        self.session_id = str(ack.get("web-socket-session-id") or "")
        self._tasks.append(loop.create_task(self._heartbeat(), name="tastytrade-streamer-heartbeat"))

    async def close(self, reason: str = "closed by tterm") -> None:
        if not self.close_reason:
            self.close_reason = reason
        ws = self._ws
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(), self.close_timeout + 0.5)
            except (TimeoutError, OSError, websockets.exceptions.WebSocketException):
                if ws.transport is not None:
                    ws.transport.abort()
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._finish(self.close_reason)

    def _finish(self, reason: str) -> None:
        if not self.close_reason:
            self.close_reason = reason
        pending, self._pending = self._pending, {}
        for _, fut in pending.values():
            if not fut.done():
                fut.set_exception(StreamError(f"the Tastytrade account streamer closed: {self.close_reason}"))
                fut.exception()
        self.closed.set()

    # ------------------------------------------------------------------ requests

    async def send(self, action: str, value: Any = None) -> int:
        ws = self._ws
        if ws is None or self.closed.is_set():
            raise StreamError("the Tastytrade account streamer is not connected")
        request_id = next(self._ids)
        message: dict[str, Any] = {"action": action, "auth-token": f"Bearer {await self._token()}",
                                   "request-id": request_id, "source": self.source}  # fmt: skip
        if value is not None:
            message["value"] = value
        try:
            await ws.send(json.dumps(message))
        except websockets.exceptions.WebSocketException as exc:
            raise StreamError(f"the Tastytrade account streamer closed ({type(exc).__name__})") from None
        return request_id

    async def request(self, action: str, value: Any = None) -> dict[str, Any]:
        """Send ``action`` and wait for its acknowledgement; StreamError with the server's message."""
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        request_id = await self._register_and_send(action, value, fut)
        try:
            async with asyncio.timeout(self.request_timeout):
                return await fut
        except TimeoutError:
            raise StreamError(f"the Tastytrade account streamer did not answer {action}") from None
        finally:
            self._pending.pop(request_id, None)

    async def _register_and_send(self, action: str, value: Any, fut: asyncio.Future[dict[str, Any]]) -> int:
        request_id = next(self._ids)
        self._pending[request_id] = (action, fut)
        ws = self._ws
        if ws is None or self.closed.is_set():
            self._pending.pop(request_id, None)
            raise StreamError("the Tastytrade account streamer is not connected")
        message: dict[str, Any] = {"action": action, "auth-token": f"Bearer {await self._token()}",
                                   "request-id": request_id, "source": self.source}  # fmt: skip
        if value is not None:
            message["value"] = value
        try:
            await ws.send(json.dumps(message))
        except websockets.exceptions.WebSocketException as exc:
            self._pending.pop(request_id, None)
            raise StreamError(f"the Tastytrade account streamer closed ({type(exc).__name__})") from None
        return request_id

    async def _heartbeat(self) -> None:
        while not self.closed.is_set():
            await asyncio.sleep(self.heartbeat_interval)
            try:
                await self.send("heartbeat")
                self.heartbeats += 1
            except (StreamError, BrokerError) as exc:
                log.info("Tastytrade account streamer heartbeat failed: %s", self._redactor.scrub(str(exc)))
                await self.close("heartbeat failed")
                return

    # ------------------------------------------------------------------ reading

    async def _read(self) -> None:
        ws = self._ws
        assert ws is not None
        reason = "connection closed"
        try:
            async for frame in ws:
                for listener in self._listeners:
                    listener()
                self._dispatch(frame)
        except websockets.exceptions.ConnectionClosed as exc:
            reason = f"connection closed ({exc.rcvd.code if exc.rcvd else 'no close frame'})"
        except (OSError, websockets.exceptions.WebSocketException) as exc:
            reason = f"connection lost ({type(exc).__name__})"
        self._finish(reason)

    def _dispatch(self, frame: str | bytes) -> None:
        try:
            doc = json.loads(frame)
        except ValueError:
            self.skipped += 1
            log.warning("Tastytrade account streamer: a frame that is not JSON was skipped (%d bytes)", len(frame))
            return
        messages = doc.get("results") if isinstance(doc, dict) and isinstance(doc.get("results"), list) else [doc]
        for msg in messages:
            if not isinstance(msg, dict):
                self.skipped += 1
                log.warning("Tastytrade account streamer: a message that is not an object was skipped")
                continue
            if "type" in msg:
                self._on_notification(str(msg.get("type")), msg.get("data"))
            elif "status" in msg:
                self._ack(msg)

    def _ack(self, msg: dict[str, Any]) -> None:
        rid = msg.get("request-id")
        entry = self._pending.get(rid) if isinstance(rid, int) else None
        if entry is None:
            # Errors may lack the request id (B7): match the oldest request of that action.
            entry = next((e for e in self._pending.values() if e[0] == msg.get("action")), None)
        if entry is None:
            if msg.get("status") != "ok":
                log.warning("Tastytrade account streamer: %s", self._redactor.scrub(str(msg.get("message"))))
            return
        _, fut = entry
        if fut.done():
            return
        if msg.get("status") == "ok":
            fut.set_result(msg)
        else:
            fut.set_exception(StreamError(self._redactor.scrub(str(msg.get("message") or "refused"))))

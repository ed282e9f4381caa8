"""A small ASP.NET Core SignalR server for fake brokers: JSON hub protocol v1 over WebSockets.

What a real ASP.NET Core hub does on the wire, as far as clients can see it (the Microsoft
"client negotiation" doc, the hub-protocol spec, and what ``pysignalr`` and the
``@microsoft/signalr`` client send; see ``shared/reference/brokers-tradovate-projectx.md`` B11.1):

- ``POST <hub>/negotiate[?negotiateVersion=1]`` (authenticated like the hub): version 0 answers
  ``connectionId`` only and the socket must come back with ``id=<connectionId>``; version 1 adds a
  separate ``connectionToken`` and the socket must use ``id=<connectionToken>``. A negotiated id
  is good for one socket: an unknown or reused id gets HTTP 404 "No Connection with that ID",
  as ASP.NET answers. (So a client that reconnects with its old id, as pysignalr's inner
  reconnect loop does, is refused; it has to negotiate again.)
- ``GET <hub>`` upgraded to a WebSocket, with or without ``id`` (skip-negotiation clients); the
  token in ``access_token`` or an ``Authorization: Bearer`` header; 401 before the upgrade when
  it is missing or bad.
- The handshake ``{"protocol":"json","version":1}`` + 0x1E, answered ``{}`` + 0x1E (or an
  ``error`` and a close). Records end with 0x1E; one frame may carry several.
- Invocations (type 1) dispatched to the hub's methods. A blocking one (with ``invocationId``)
  gets a Completion (type 3): no ``result`` for a void method, or ASP.NET's error texts for an
  unknown method, a wrong argument count, wrong argument types, or a method that threw. A
  non-blocking invocation that fails gets nothing back (ASP.NET only logs it).
- Pings (type 6) from the server whenever it has sent nothing for ``ping_interval`` seconds
  (ASP.NET's KeepAliveInterval, 15 s); a client silent for ``client_timeout`` (30 s) is cut.
  Close (type 7) from either side.

Fault switches: :meth:`Hub.drop` (the TCP connection cut, no close frame), :meth:`Hub.close_all`
(a Close message), :attr:`Hub.silent` (events withheld while pings and completions carry on:
the socket looks healthy), :attr:`Hub.refuse` (new sockets get 503).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

RS = "\x1e"
JSON = dict[str, Any]


class HubError(Exception):
    """Raised by a hub method to fail the invocation with the hub's own message (HubException)."""


@dataclass(frozen=True)
class HubMethod:
    """A hub method: the Python types its arguments must bind to, and the handler."""

    params: tuple[type, ...]
    handler: Callable[..., Any]


@dataclass(eq=False)
class HubConnection:
    """One client socket on a hub."""

    hub: Hub
    connection_id: str
    ws: web.WebSocketResponse
    request: web.Request
    principal: Any
    token: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    subscriptions: set[tuple[str, Any]] = field(default_factory=set)
    last_received: float = field(default_factory=time.monotonic)
    last_sent: float = field(default_factory=time.monotonic)
    handshaken: bool = False
    #: Per-connection memory a hub's owner may use (e.g. the last quote sent per contract).
    state: dict[str, Any] = field(default_factory=dict)

    async def send(self, message: JSON) -> None:
        await self.send_records([message])

    async def send_records(self, messages: list[JSON]) -> None:
        """Send several records in one WebSocket frame (the protocol allows it; clients must split)."""
        if self.ws.closed:
            return
        frame = "".join(json.dumps(m, separators=(",", ":")) + RS for m in messages)
        async with self.lock:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_str(frame)
                self.last_sent = time.monotonic()

    async def invoke(self, target: str, *arguments: Any) -> None:
        """A server-to-client event: a non-blocking invocation (no ``invocationId``)."""
        await self.send({"type": 1, "target": target, "arguments": list(arguments)})

    def abort(self) -> None:
        """Cut the TCP connection without a close frame (a network drop)."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()


def _binds(value: Any, kind: type) -> bool:
    """Whether a JSON value binds to a hub parameter of this type (System.Text.Json is strict:
    no string-to-number conversion in the hub protocol, no bool for a number)."""
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str) or value is None
    return isinstance(value, kind)


class Hub:
    """One SignalR hub endpoint. Mount :meth:`negotiate` and :meth:`websocket` on an aiohttp app."""

    def __init__(
        self,
        name: str,
        *,
        authenticate: Callable[[str | None], Any | None],
        methods: dict[str, HubMethod],
        ping_interval: float = 15.0,
        client_timeout: float = 30.0,
        handshake_timeout: float = 15.0,
        on_change: Callable[[], None] = lambda: None,
        on_connect: Callable[[HubConnection], Any] | None = None,
    ) -> None:
        self.name = name
        self.authenticate = authenticate
        self.methods = methods
        self.ping_interval = ping_interval
        self.client_timeout = client_timeout
        self.handshake_timeout = handshake_timeout
        self.on_change = on_change
        self.on_connect = on_connect
        self.connections: list[HubConnection] = []
        self._negotiated: dict[str, str] = {}  # id the socket must present -> connection id
        self._tasks: set[asyncio.Task[Any]] = set()

        # Fault switches.
        self.silent = False
        self.refuse = False

        # What happened, for assertions.
        self.negotiations = 0
        self.sockets_opened = 0
        self.unauthorized = 0
        self.pings_received = 0
        self.pings_sent = 0
        self.invocations: list[tuple[str, list[Any], str | None]] = []
        self.completions: Counter[str] = Counter()
        self.bad_records = 0
        self.rejected_ids = 0

    # ------------------------------------------------------------------ auth

    @staticmethod
    def token_of(request: web.Request) -> str | None:
        """The token from ``access_token`` (what the vendor documents) or a Bearer header."""
        token = request.query.get("access_token")
        if token:
            return token
        auth = request.headers.get("Authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else None

    # ------------------------------------------------------------------ negotiate

    async def negotiate(self, request: web.Request) -> web.Response:
        if request.method != "POST":
            return web.Response(status=405)
        token = self.token_of(request)
        if self.authenticate(token) is None:
            self.unauthorized += 1
            self.on_change()
            return web.Response(status=401)
        self.negotiations += 1
        try:
            version = int(request.query.get("negotiateVersion", "0"))
        except ValueError:
            version = 0
        connection_id = secrets.token_urlsafe(16)
        body: JSON = {
            "negotiateVersion": 1 if version >= 1 else 0,
            "connectionId": connection_id,
            # Only WebSockets here; a real hub also lists ServerSentEvents and LongPolling.
            "availableTransports": [{"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}],
        }
        if version >= 1:
            connection_token = secrets.token_urlsafe(16)
            body["connectionToken"] = connection_token
            self._negotiated[connection_token] = connection_id
        else:
            self._negotiated[connection_id] = connection_id
        self.on_change()
        return web.json_response(body)

    # ------------------------------------------------------------------ socket

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        token = self.token_of(request)
        principal = self.authenticate(token)
        if principal is None:
            self.unauthorized += 1
            self.on_change()
            return web.Response(status=401)
        if self.refuse:
            return web.Response(status=503)
        wanted = request.query.get("id")
        if wanted is not None:
            connection_id = self._negotiated.pop(wanted, None)
            if connection_id is None:
                self.rejected_ids += 1
                self.on_change()
                return web.Response(status=404, text="No Connection with that ID")
        else:
            connection_id = secrets.token_urlsafe(16)
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 20, timeout=2.0)
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="Expected a WebSocket upgrade")
        await ws.prepare(request)
        conn = HubConnection(self, connection_id, ws, request, principal, token or "")
        self.connections.append(conn)
        self.sockets_opened += 1
        self.on_change()
        keepalive = asyncio.get_running_loop().create_task(self._keepalive(conn))
        try:
            await self._serve(conn)
        finally:
            keepalive.cancel()
            with contextlib.suppress(ValueError):
                self.connections.remove(conn)
            self.on_change()
            if not ws.closed:
                with contextlib.suppress(Exception):
                    await ws.close()
        return ws

    async def _serve(self, conn: HubConnection) -> None:
        buffer = ""
        deadline = time.monotonic() + self.handshake_timeout
        while not conn.ws.closed:
            timeout = max(0.01, deadline - time.monotonic()) if not conn.handshaken else None
            try:
                msg = await conn.ws.receive(timeout=timeout)
            except TimeoutError:
                return  # no handshake in time: ASP.NET closes the connection
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return
            if msg.type == WSMsgType.TEXT:
                buffer += msg.data
            elif msg.type == WSMsgType.BINARY:
                buffer += msg.data.decode("utf-8", "replace")
            else:
                continue
            conn.last_received = time.monotonic()
            *records, buffer = buffer.split(RS)
            for record in records:
                if not record.strip():
                    continue
                if not await self._on_record(conn, record):
                    return

    async def _on_record(self, conn: HubConnection, record: str) -> bool:
        """Handle one record; False ends the connection."""
        try:
            message = json.loads(record)
        except ValueError:
            self.bad_records += 1
            return False
        if not isinstance(message, dict):
            self.bad_records += 1
            return False
        if not conn.handshaken:
            return await self._handshake(conn, message)
        kind = message.get("type")
        if kind == 6:
            self.pings_received += 1
            self.on_change()
            return True
        if kind == 7:
            return False
        if kind == 1:
            await self._invocation(conn, message)
            return True
        if kind == 4:  # StreamInvocation: none of these hub methods stream
            invocation_id = message.get("invocationId")
            if invocation_id is not None:
                target = message.get("target")
                await self._complete(
                    conn, str(invocation_id), f"Failed to invoke '{target}' due to an error on the server."
                )
            return True
        if kind in (2, 3, 5):
            return True  # stream items, client results, cancels: nothing is streaming
        self.bad_records += 1
        return False

    async def _handshake(self, conn: HubConnection, message: JSON) -> bool:
        protocol, version = message.get("protocol"), message.get("version")
        error = None
        if protocol != "json":
            error = f"The protocol '{protocol}' is not supported."
        elif version != 1:
            error = f"The server does not support version {version} of the 'json' protocol."
        if error:
            await conn.send({"error": error})
            return False
        conn.handshaken = True
        await conn.send({})
        if self.on_connect is not None:
            result = self.on_connect(conn)
            if inspect.isawaitable(result):
                await result
        self.on_change()
        return True

    async def _invocation(self, conn: HubConnection, message: JSON) -> None:
        target = message.get("target")
        arguments = message.get("arguments", [])
        raw_id = message.get("invocationId")
        invocation_id = None if raw_id is None else str(raw_id)
        self.invocations.append((str(target), arguments if isinstance(arguments, list) else [], invocation_id))
        self.on_change()
        method = self.methods.get(target) if isinstance(target, str) else None
        prefix = f"Failed to invoke '{target}' due to an error on the server."
        if method is None:
            return await self._complete(conn, invocation_id, f"{prefix} HubException: Method does not exist.")
        if not isinstance(arguments, list):
            return await self._complete(conn, invocation_id, f"{prefix} InvalidDataException: Invalid arguments.")
        if len(arguments) != len(method.params):
            return await self._complete(
                conn,
                invocation_id,
                f"{prefix} InvalidDataException: Invocation provides {len(arguments)} argument(s) "
                f"but target expects {len(method.params)}.",
            )
        if not all(_binds(v, t) for v, t in zip(arguments, method.params, strict=True)):
            return await self._complete(
                conn,
                invocation_id,
                f"{prefix} InvalidDataException: Error binding arguments. Make sure that the types of the "
                "provided values match the types of the hub method being invoked.",
            )
        try:
            result = method.handler(conn, *arguments)
            if inspect.isawaitable(result):
                result = await result
        except HubError as exc:
            return await self._complete(
                conn,
                invocation_id,
                f"An unexpected error occurred invoking '{target}' on the server. HubException: {exc}",
            )
        except Exception:
            return await self._complete(
                conn, invocation_id, f"An unexpected error occurred invoking '{target}' on the server."
            )
        await self._complete(conn, invocation_id, None, result)

    async def _complete(
        self, conn: HubConnection, invocation_id: str | None, error: str | None, result: Any = None
    ) -> None:
        if invocation_id is None:
            return  # non-blocking: the server sends nothing back, even on failure
        message: JSON = {"type": 3, "invocationId": invocation_id}
        if error is not None:
            message["error"] = error
            self.completions["error"] += 1
        else:
            if result is not None:
                message["result"] = result
            self.completions["ok"] += 1
        await conn.send(message)
        self.on_change()

    async def _keepalive(self, conn: HubConnection) -> None:
        tick = min(self.ping_interval, self.client_timeout) / 4
        while not conn.ws.closed:
            await asyncio.sleep(tick)
            now = time.monotonic()
            if conn.handshaken and now - conn.last_received > self.client_timeout:
                conn.abort()
                return
            if conn.handshaken and now - conn.last_sent >= self.ping_interval:
                self.pings_sent += 1
                await conn.send({"type": 6})
                self.on_change()

    # ------------------------------------------------------------------ events and faults

    def subscribers(self, key: tuple[str, Any]) -> list[HubConnection]:
        return [c for c in self.connections if c.handshaken and key in c.subscriptions]

    async def publish(self, key: tuple[str, Any], target: str, *arguments: Any) -> int:
        """Invoke ``target`` on every connection subscribed to ``key`` (nothing while silent)."""
        if self.silent:
            return 0
        conns = self.subscribers(key)
        for conn in conns:
            await conn.invoke(target, *arguments)
        return len(conns)

    def drop(self) -> int:
        """Cut every socket of this hub (no close frame)."""
        conns = list(self.connections)
        for conn in conns:
            conn.abort()
        return len(conns)

    async def close_all(self, error: str | None = None, allow_reconnect: bool = True) -> int:
        """Send a Close message (type 7) and close every socket of this hub."""
        conns = list(self.connections)
        for conn in conns:
            message: JSON = {"type": 7, "allowReconnect": allow_reconnect}
            if error is not None:
                message["error"] = error
            await conn.send(message)
            await conn.ws.close()
        return len(conns)

    def alive(self) -> int:
        return sum(1 for c in self.connections if c.handshaken and not c.ws.closed)

"""The Schwab streamer (A8): one WebSocket per user, JSON frames, ADMIN LOGIN first.

- The URL and the four ids come from ``userPreference.streamerInfo[0]`` (A8.1), never hard-coded.
- Requests go as ``{"requests": [{service, command, requestid, SchwabClientCustomerId,
  SchwabClientCorrelId, parameters}]}`` (A8.2); LOGIN carries the raw access token (no
  "Bearer ") and waits for its answer before anything else is sent.
- Answers: ``response`` entries echo the requestid with ``content.code``: 0 is success, and so
  are 26-29 (the docs' table; real traffic shows 0, D1); 3 is a refused login (the server then
  closes). ``notify`` carries heartbeats and the server's stop notices: code 12 (another streamer
  for this user took over: one per user) and 30 (stopped, e.g. for an empty subscription).
  ``data`` carries LEVELONE fields and ACCT_ACTIVITY messages, handed to ``on_data``.

:class:`SchwabStreamSocket` has the shape :class:`~tterm.brokers.common.streams.SocketSupervisor`
keeps connected (``closed``, ``close_reason``, frame listeners, ``close``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect

from tterm.core.broker import AuthError, BrokerError
from tterm.core.redact import RedactingLogger, Redactor

log = logging.getLogger(__name__)


def _content(entry: Mapping[str, Any]) -> Mapping[str, Any]:
    """An answer's or notice's ``content`` object ({} when it is missing or not an object)."""
    content = entry.get("content")
    return content if isinstance(content, Mapping) else {}


_wire_log = logging.getLogger("tterm.brokers.schwab.wire")

SUCCESS_CODES = frozenset({0, 26, 27, 28, 29})
LOGIN_DENIED, DISPLACED, STOPPED = 3, 12, 30


class StreamError(BrokerError):
    """A streamer request refused (``code``) or not answered."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class StreamerInfo:
    """``userPreference.streamerInfo[0]``: where to connect and who we are (A6.9)."""

    url: str
    customer_id: str
    correl_id: str
    channel: str
    function_id: str

    @classmethod
    def from_preferences(cls, prefs: Mapping[str, Any]) -> StreamerInfo:
        infos = prefs.get("streamerInfo")
        info = infos[0] if isinstance(infos, list) and infos else infos
        if not isinstance(info, Mapping) or not info.get("streamerSocketUrl"):
            raise BrokerError("Schwab's user preferences carry no streamer address (streamerInfo)")
        return cls(
            url=str(info["streamerSocketUrl"]),
            customer_id=str(info.get("schwabClientCustomerId") or ""),
            correl_id=str(info.get("schwabClientCorrelId") or ""),
            channel=str(info.get("schwabClientChannel") or ""),
            function_id=str(info.get("schwabClientFunctionId") or ""),
        )


DataHandler = Callable[[str, list[Mapping[str, Any]]], None]


class SchwabStreamSocket:
    """One streamer connection: open and LOGIN, requests with answers, data, heartbeats."""

    def __init__(
        self,
        info: StreamerInfo,
        *,
        redactor: Redactor,
        on_data: DataHandler,
        on_notice: Callable[[int, str], None],
        connect_timeout: float = 10.0,
        close_timeout: float = 2.0,
        request_timeout: float = 10.0,
    ) -> None:
        self.info = info
        self._redactor = redactor
        self._on_data = on_data
        self._on_notice = on_notice
        self.connect_timeout = connect_timeout
        self.close_timeout = close_timeout
        self.request_timeout = request_timeout
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._listeners: list[Callable[[], None]] = []
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()
        self.close_reason = ""
        self.close_code: int | None = None
        self.entitlement = ""
        self.heartbeats = 0

    def add_frame_listener(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    @property
    def is_open(self) -> bool:
        return self._ws is not None and not self.closed.is_set()

    # ------------------------------------------------------------------ lifecycle

    async def open(self, access_token: str) -> None:
        """Connect and LOGIN; AuthError when Schwab refuses the token (code 3)."""
        try:
            self._ws = await connect(
                self.info.url,
                open_timeout=self.connect_timeout,
                close_timeout=self.close_timeout,
                max_size=None,
                logger=RedactingLogger(_wire_log, self._redactor),
            )
        except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
            raise StreamError(f"Schwab streamer: could not connect ({self._describe(exc)})") from None
        self._reader = asyncio.get_running_loop().create_task(self._read(), name="schwab-streamer-read")
        try:
            content = await self.request(
                "ADMIN",
                "LOGIN",
                {
                    "Authorization": access_token,
                    "SchwabClientChannel": self.info.channel,
                    "SchwabClientFunctionId": self.info.function_id,
                },
            )
        except StreamError as exc:
            await self.close("login refused")
            if exc.code == LOGIN_DENIED:
                raise AuthError(f"the Schwab streamer refused the login ({exc})") from None
            raise
        # "server=...;status=NP": the market-data entitlement (PN, NP or PP).
        msg = str(content.get("msg") or "")
        self.entitlement = msg.rpartition("status=")[2] if "status=" in msg else ""

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
        reader = self._reader
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        self._finish(self.close_reason)

    def _finish(self, reason: str) -> None:
        if not self.close_reason:
            self.close_reason = reason
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(StreamError(f"the Schwab streamer closed: {self.close_reason}"))
                fut.exception()
        self.closed.set()

    # ------------------------------------------------------------------ requests

    async def request(self, service: str, command: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
        """Send one request and wait for its answer's ``content``; StreamError for a failure code."""
        ws = self._ws
        if ws is None or self.closed.is_set():
            raise StreamError("the Schwab streamer is not connected")
        request_id = str(next(self._ids))
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = fut
        frame = {
            "requests": [
                {
                    "service": service,
                    "command": command,
                    "requestid": request_id,
                    "SchwabClientCustomerId": self.info.customer_id,
                    "SchwabClientCorrelId": self.info.correl_id,
                    "parameters": dict(parameters),
                }
            ]
        }
        try:
            await ws.send(json.dumps(frame))
        except websockets.exceptions.ConnectionClosed:
            self._pending.pop(request_id, None)
            raise StreamError(f"the Schwab streamer closed before {service} {command} was sent") from None
        try:
            content = await asyncio.wait_for(asyncio.shield(fut), self.request_timeout)
        except TimeoutError:
            self._pending.pop(request_id, None)
            raise StreamError(
                f"Schwab streamer: no answer to {service} {command} in {self.request_timeout:.0f}s"
            ) from None
        code = content.get("code")
        if code not in SUCCESS_CODES:
            text = self._redactor.scrub(str(content.get("msg") or "no details"))
            raise StreamError(f"Schwab streamer refused {service} {command} (code {code}): {text}", code)
        return content

    # ------------------------------------------------------------------ reading

    async def _read(self) -> None:
        ws = self._ws
        assert ws is not None
        reason = "connection closed"
        try:
            async for message in ws:
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                for listener in self._listeners:
                    listener()
                try:
                    frame = json.loads(text)
                except ValueError:
                    log.warning("Schwab streamer: ignoring a frame that is not JSON")
                    continue
                if isinstance(frame, Mapping):
                    stop = self._dispatch(frame)
                    if stop:
                        reason = stop
                        break
        except websockets.exceptions.ConnectionClosed as exc:
            reason = f"connection lost ({self._describe(exc)})"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in a handler must not leave a zombie socket behind
            log.exception("Schwab streamer reader failed")
            reason = f"reader failed ({type(exc).__name__})"
        self.close_reason = self.close_reason or reason
        with contextlib.suppress(TimeoutError, OSError, websockets.exceptions.WebSocketException):
            await asyncio.wait_for(ws.close(), self.close_timeout + 0.5)
        self._finish(reason)

    def _dispatch(self, frame: Mapping[str, Any]) -> str | None:
        """Handle one frame; the reason to stop reading when the server ends the stream."""
        for entry in frame.get("response") or ():
            if not isinstance(entry, Mapping):
                continue
            fut = self._pending.pop(str(entry.get("requestid")), None)
            content = _content(entry)
            if fut is not None and not fut.done():
                fut.set_result(dict(content))
            elif fut is None:
                log.debug("Schwab streamer: an answer to an unknown request %r", entry.get("requestid"))
        stop = None
        for entry in frame.get("notify") or ():
            if not isinstance(entry, Mapping):
                continue
            if "heartbeat" in entry:
                self.heartbeats += 1
                continue
            content = _content(entry)
            code = content.get("code")
            text = self._redactor.scrub(str(content.get("msg") or ""))
            if isinstance(code, int):
                self._on_notice(code, text)
                if code in (DISPLACED, STOPPED, LOGIN_DENIED):
                    self.close_code = code
                    stop = f"Schwab ended the stream (code {code}: {text or 'no reason given'})"
        for entry in frame.get("data") or ():
            if isinstance(entry, Mapping) and isinstance(entry.get("content"), list):
                try:
                    self._on_data(str(entry.get("service") or ""), entry["content"])
                except Exception:
                    log.exception("Schwab streamer: the data handler failed for %s", entry.get("service"))
        return stop

    def _describe(self, exc: BaseException) -> str:
        text = self._redactor.scrub(str(exc)) or type(exc).__name__
        return text if len(text) < 200 else text[:200] + "..."

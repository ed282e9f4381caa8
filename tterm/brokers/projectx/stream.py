"""The ProjectX SignalR hubs (B11) through pysignalr: one :class:`HubSocket` per connection.

pysignalr speaks ASP.NET Core SignalR's JSON protocol (negotiate, handshake, 0x1E records,
pings, invocations and completions). Two of its habits shape this wrapper:

- the token goes in the URL (``?access_token=``), as the vendor documents: pysignalr sets its
  Authorization header only after the socket is open (PYSR ``_handshake``);
- its own reconnect loop reconnects with the old negotiated id, which ASP.NET refuses ("No
  Connection with that ID"), and with the old token. So a :class:`HubSocket` lives for one
  connection: when it closes it says so (``closed``) and the
  :class:`~tterm.brokers.common.streams.SocketSupervisor` opens a new one, with a fresh
  negotiation, the current token, and the owner's resubscription.

Every message received (events, completions, pings) counts as life for the supervisor's
watchdog. Events are handed to ``on_event(target, arguments)``; a failing handler is logged and
never tears the connection down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from pysignalr import exceptions as sr_errors
from pysignalr.client import SignalRClient
from pysignalr.messages import CompletionMessage, Message

from tterm.core.broker import AuthError, BrokerError
from tterm.core.redact import RedactingFilter, Redactor

log = logging.getLogger(__name__)
#: pysignalr logs the hub URL (with the token in it, as the vendor wants it) and, through
#: websockets, every frame at DEBUG: its records are scrubbed where they are made.
_PYSIGNALR_LOGGERS = ("pysignalr.client", "pysignalr.transport")


def scrub_pysignalr_logs(redactor: Redactor) -> None:
    """Install the redactor on pysignalr's own loggers (once), so no record of theirs carries a token."""
    for name in _PYSIGNALR_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) and f.redactor is redactor for f in logger.filters):
            logger.addFilter(RedactingFilter(redactor))


class HubError(BrokerError):
    """A hub invocation refused (the Completion's error) or not answered, or no connection."""


class _Client(SignalRClient):
    """pysignalr's client with a hook on every message it decodes (pings included)."""

    def __init__(self, *args: Any, on_frame: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_frame = on_frame

    async def _on_message(self, message: Message) -> None:
        self._on_frame()
        await super()._on_message(message)


EventHandler = Callable[[str, list[Any]], None]


class HubSocket:
    """One connection to one hub (``user`` or ``market``)."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        events: Iterable[str],
        on_event: EventHandler,
        redactor: Redactor,
        ping_interval: float = 15.0,
        connect_timeout: float = 10.0,
        invoke_timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.url = url
        scrub_pysignalr_logs(redactor)
        self._events = tuple(events)
        self._on_event = on_event
        self._redactor = redactor
        self.ping_interval = ping_interval
        self.connect_timeout = connect_timeout
        self.invoke_timeout = invoke_timeout
        self._listeners: list[Callable[[], None]] = []
        self._client: _Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._opened = asyncio.Event()
        self._open_future: asyncio.Future[None] | None = None
        self.closed = asyncio.Event()
        self.close_reason = ""

    def add_frame_listener(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    @property
    def is_open(self) -> bool:
        return self._opened.is_set() and not self.closed.is_set()

    def _frame(self) -> None:
        for listener in self._listeners:
            listener()

    # ------------------------------------------------------------------ lifecycle

    async def open(self, token: str) -> None:
        """Negotiate, connect and handshake; AuthError when the hub refuses the token (401)."""
        sep = "&" if "?" in self.url else "?"
        client = _Client(
            f"{self.url}{sep}access_token={quote(token, safe='')}",
            on_frame=self._frame,
            ping_interval=self.ping_interval,  # type: ignore[arg-type]
            signalr_ping_interval=self.ping_interval,  # type: ignore[arg-type]
            connection_timeout=self.connect_timeout,  # type: ignore[arg-type]
            retry_count=1,
        )
        for target in self._events:
            client.on(target, self._handler(target))
        client.on_open(self._on_open)
        client.on_close(self._on_close)
        client.on_error(self._on_error)
        self._client = client
        self._task = asyncio.get_running_loop().create_task(self._run(client), name=f"projectx-{self.name}-hub")
        opened = self._open_future = asyncio.get_running_loop().create_future()
        done, _ = await asyncio.wait(
            {opened, self._task}, timeout=self.connect_timeout + 1, return_when=asyncio.FIRST_COMPLETED
        )
        if not opened.done():
            opened.cancel()
        if self._opened.is_set() and not self.closed.is_set():
            return
        if self._task in done:
            exc = self._task.exception() if not self._task.cancelled() else None
            self._finish(self.close_reason or "could not connect")
            if isinstance(exc, sr_errors.AuthorizationError) or "401" in str(exc or ""):
                raise AuthError(f"the ProjectX {self.name} hub refused the session (HTTP 401)")
            raise HubError(f"the ProjectX {self.name} hub: could not connect ({self._describe(exc)})")
        await self.close("no handshake in time")
        raise HubError(f"the ProjectX {self.name} hub did not answer within {self.connect_timeout:.0f}s")

    async def _run(self, client: _Client) -> None:
        try:
            await client.run()
        finally:
            if self._opened.is_set():
                self._finish(self.close_reason or "connection closed")

    async def _on_open(self) -> None:
        self._opened.set()
        fut = self._open_future
        if fut is not None and not fut.done():
            fut.set_result(None)

    async def _on_close(self) -> None:
        if not self._opened.is_set():
            return  # still connecting: the run task's outcome says what happened
        self._finish(self.close_reason or "connection lost")
        task = self._task
        if task is not None and not task.done():
            task.cancel()  # pysignalr would reconnect with its spent id; the supervisor opens a new socket

    async def _on_error(self, message: CompletionMessage) -> None:
        log.debug("ProjectX %s hub: invocation %s failed", self.name, message.invocation_id)

    async def close(self, reason: str = "closed by tterm") -> None:
        if not self.close_reason:
            self.close_reason = reason
        task = self._task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._finish(self.close_reason)

    def _finish(self, reason: str) -> None:
        if not self.close_reason:
            self.close_reason = reason
        self.closed.set()

    # ------------------------------------------------------------------ events and invocations

    def _handler(self, target: str) -> Callable[[list[Any]], Any]:
        async def handle(arguments: list[Any]) -> None:
            try:
                self._on_event(target, list(arguments or ()))
            except Exception:
                log.exception("ProjectX %s hub: the %s handler failed", self.name, target)

        return handle

    async def invoke(self, method: str, *arguments: Any) -> None:
        """Invoke a hub method and wait for its Completion; HubError with the hub's text on failure."""
        client = self._client
        if client is None or not self.is_open:
            raise HubError(f"the ProjectX {self.name} hub is not connected", sent=False)
        fut: asyncio.Future[CompletionMessage] = asyncio.get_running_loop().create_future()

        async def done(message: Message) -> None:
            if not fut.done() and isinstance(message, CompletionMessage):
                fut.set_result(message)

        try:
            await client.send(method, list(arguments), on_invocation=done)
        except (RuntimeError, OSError) as exc:
            raise HubError(
                f"the ProjectX {self.name} hub closed before {method} was sent ({exc})", sent=False
            ) from None
        try:
            async with asyncio.timeout(self.invoke_timeout):
                closed = asyncio.ensure_future(self.closed.wait())
                try:
                    await asyncio.wait({fut, closed}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    closed.cancel()
        except TimeoutError:
            raise HubError(
                f"the ProjectX {self.name} hub did not answer {method} in {self.invoke_timeout:.0f}s"
            ) from None
        if not fut.done():
            raise HubError(f"the ProjectX {self.name} hub closed before answering {method}")
        message = fut.result()
        if message.error:
            raise HubError(f"the ProjectX {self.name} hub refused {method}: {self._redactor.scrub(str(message.error))}")

    def _describe(self, exc: BaseException | None) -> str:
        if exc is None:
            return "closed"
        text = self._redactor.scrub(str(exc)) or type(exc).__name__
        return text if len(text) < 200 else text[:200] + "..."

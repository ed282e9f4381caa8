"""Keeping streaming connections up, and rolling several streams into one connection state.

Every streaming adapter has the same two problems, whatever its wire protocol (Tradovate's
SockJS-like frames, ProjectX's SignalR hubs, Schwab's and Tastytrade's streamers):

- one socket must stay connected and fresh: :class:`SocketSupervisor` opens it, runs the owner's
  ``on_ready`` (re-sync, re-subscribe) on every new connection, marks it STALE after silence,
  closes and replaces it with a jittered, growing delay;
- a login has several streams (trading and market data, a user hub and a market hub), but the
  status bar shows one state per broker: :class:`StreamStates` keeps each stream's state and
  reports the worst, with the detail of every stream that is not connected.

Nothing here knows a vendor: a socket is anything with the :class:`SupervisedSocket` shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, Protocol, TypeVar

from tterm.brokers.common.backoff import Backoff
from tterm.brokers.common.watchdog import StaleWatchdog
from tterm.core.broker import AuthError, BrokerError
from tterm.core.models import ConnectionState
from tterm.core.redact import Redactor

log = logging.getLogger(__name__)


class SupervisedSocket(Protocol):
    """What the supervisor needs of a connection: a closed event and its reason, a liveness hook
    called on every frame received (heartbeats included), and a bounded close."""

    closed: asyncio.Event
    close_reason: str

    def add_frame_listener(self, listener: Callable[[], None]) -> None: ...

    async def close(self, reason: str = ...) -> None: ...


S = TypeVar("S", bound=SupervisedSocket)
StateHandler = Callable[[ConnectionState, str], None]


class SocketSupervisor(Generic[S]):
    """Keeps one socket connected and fresh.

    ``connect()`` returns an opened (authorized) socket; ``on_ready(socket)`` brings the owner's
    state up to date over it (snapshot, subscriptions). ``on_state(state, detail)`` hears every
    change. A refused login (:class:`AuthError`) on the first connection is raised, never retried
    here: retrying a refused credential only burns the vendor's login budget.
    """

    def __init__(
        self,
        *,
        name: str,
        connect: Callable[[], Awaitable[S]],
        on_ready: Callable[[S], Awaitable[None]],
        on_state: StateHandler,
        stale_after: float,
        watchdog_interval: float,
        backoff: Backoff,
        redactor: Redactor,
        label: str = "",
    ) -> None:
        self.name = name
        self.label = label or name
        self._connect = connect
        self._on_ready = on_ready
        self._on_state = on_state
        self.stale_after = stale_after
        self.watchdog_interval = watchdog_interval
        self._backoff = backoff
        self._redactor = redactor
        self.socket: S | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._closing: asyncio.Task[None] | None = None
        self.last_error = ""
        self.connections = 0
        self.ready = asyncio.Event()

    async def start(self, *, background_retry: bool = False) -> None:
        """Connect once (raising on failure unless ``background_retry``), then keep it up."""
        self._stopping = False
        try:
            self.socket = await self._open_ready()
        except AuthError:
            raise  # a refused session is not fixed by retrying
        except (BrokerError, OSError) as exc:
            if not background_retry:
                raise
            self.last_error = self._scrub(exc)
            self._on_state(ConnectionState.RECONNECTING, f"could not connect ({self.last_error})")
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"{self.label}-supervisor")

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        sock, self.socket = self.socket, None
        if sock is not None:
            await sock.close()
        self.ready.clear()

    async def _open_ready(self) -> S:
        sock = await self._connect()
        try:
            await self._on_ready(sock)
        except BaseException:
            await sock.close("setup failed")
            raise
        self.connections += 1
        self.ready.set()
        self._on_state(ConnectionState.CONNECTED, "")
        return sock

    async def _run(self) -> None:
        reason = "not connected"
        while not self._stopping:
            sock = self.socket
            if sock is not None:
                reason = await self._watch(sock)
                self.socket = None
                self.ready.clear()
                if self._stopping:
                    return
            delay = self._backoff.next_delay()
            self._on_state(ConnectionState.RECONNECTING, f"{reason}; reconnecting in {delay:.1f}s")
            await asyncio.sleep(delay)
            try:
                self.socket = await self._open_ready()
                self._backoff.reset()
            except asyncio.CancelledError:
                raise
            except (BrokerError, OSError, TimeoutError) as exc:
                reason = f"reconnect failed ({self._scrub(exc)})"
                log.info("%s socket: %s", self.label, reason)
            except Exception as exc:
                reason = f"reconnect failed ({type(exc).__name__})"
                log.exception("%s socket: unexpected error while reconnecting", self.label)

    async def _watch(self, sock: S) -> str:
        """Wait until ``sock`` closes or goes silent; returns why it ended."""

        def stale(quiet: float) -> None:
            self._on_state(ConnectionState.STALE, f"no message for {quiet:.0f}s")
            # Keep a reference: the loop holds tasks only weakly.
            self._closing = asyncio.get_running_loop().create_task(sock.close(f"silent for {quiet:.0f}s"))

        watchdog = StaleWatchdog(
            timeout=self.stale_after,
            on_stale=stale,
            check_interval=self.watchdog_interval,
            name=self.label,
        )
        sock.add_frame_listener(watchdog.touch)
        watchdog.start()
        try:
            await sock.closed.wait()
        finally:
            await watchdog.stop()
        return sock.close_reason or "connection closed"

    def _scrub(self, exc: BaseException) -> str:
        return self._redactor.scrub(str(exc)) or type(exc).__name__


#: How bad each state is; the roll-up shows the worst stream's state.
SEVERITY: dict[ConnectionState, int] = {
    ConnectionState.CONNECTED: 0,
    ConnectionState.STALE: 1,
    ConnectionState.RECONNECTING: 2,
    ConnectionState.DOWN: 3,
    ConnectionState.NEEDS_LOGIN: 4,
}


class StreamStates:
    """The state of each stream of one login, rolled up into one (state, detail) for the broker.

    The roll-up is the worst state; its detail names every stream that is not connected
    (``"market data: no message for 10s"``), or is ``connected`` when all are.
    """

    def __init__(self, names: Iterable[str]) -> None:
        down = (ConnectionState.DOWN, "not connected")
        self._states: dict[str, tuple[ConnectionState, str]] = dict.fromkeys(names, down)
        if not self._states:
            raise ValueError("StreamStates needs at least one stream")

    def __contains__(self, name: object) -> bool:
        return name in self._states

    def set(self, name: str, state: ConnectionState, detail: str = "") -> None:
        if name not in self._states:
            raise KeyError(f"no stream named {name!r} (streams: {', '.join(self._states)})")
        self._states[name] = (state, detail)

    def get(self, name: str) -> tuple[ConnectionState, str]:
        return self._states[name]

    def state(self, name: str) -> ConnectionState:
        return self._states[name][0]

    def reset(self, detail: str = "not connected") -> None:
        for name in self._states:
            self._states[name] = (ConnectionState.DOWN, detail)

    def rollup(self, connected_detail: str = "connected") -> tuple[ConnectionState, str]:
        worst = max((s for s, _ in self._states.values()), key=SEVERITY.__getitem__)
        if worst is ConnectionState.CONNECTED:
            return worst, connected_detail
        detail = "; ".join(
            f"{name}: {d or s.value}" for name, (s, d) in self._states.items() if s is not ConnectionState.CONNECTED
        )
        return worst, detail

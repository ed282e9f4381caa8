"""SocketSupervisor and StreamStates: vendor-free, driven here by an in-memory socket."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tterm.brokers.common.backoff import Backoff
from tterm.brokers.common.streams import SocketSupervisor, StreamStates
from tterm.core.broker import AuthError, BrokerError
from tterm.core.models import ConnectionState
from tterm.core.redact import Redactor


class MemorySocket:
    """Has the SupervisedSocket shape; a test makes it talk (frames) or go away."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.closed = asyncio.Event()
        self.close_reason = ""
        self._listeners: list[Callable[[], None]] = []

    def add_frame_listener(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def frame(self) -> None:
        for listener in self._listeners:
            listener()

    async def close(self, reason: str = "closed") -> None:
        self.close_reason = self.close_reason or reason
        self.closed.set()


class Owner:
    def __init__(self) -> None:
        self.sockets: list[MemorySocket] = []
        self.ready: list[int] = []
        self.states: list[tuple[ConnectionState, str]] = []
        self.changed = asyncio.Event()
        self.fail_next: list[Exception] = []

    async def connect(self) -> MemorySocket:
        if self.fail_next:
            raise self.fail_next.pop(0)
        sock = MemorySocket(len(self.sockets) + 1)
        self.sockets.append(sock)
        return sock

    async def on_ready(self, sock: MemorySocket) -> None:
        self.ready.append(sock.n)

    def on_state(self, state: ConnectionState, detail: str) -> None:
        self.states.append((state, detail))
        self.changed.set()

    async def until(self, pred: Callable[[], bool]) -> None:
        async def _wait() -> None:
            while not pred():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(_wait(), 5)


def supervisor(owner: Owner, stale_after: float = 10.0) -> SocketSupervisor[MemorySocket]:
    return SocketSupervisor(
        name="feed",
        connect=owner.connect,
        on_ready=owner.on_ready,
        on_state=owner.on_state,
        stale_after=stale_after,
        watchdog_interval=0.01,
        backoff=Backoff(base=0.001, cap=0.005),
        redactor=Redactor(),
    )


async def test_a_dropped_socket_is_replaced_and_made_ready_again():
    owner = Owner()
    sup = supervisor(owner)
    await sup.start()
    assert owner.ready == [1] and owner.states[-1] == (ConnectionState.CONNECTED, "")
    await owner.sockets[0].close("server went away")
    await owner.until(lambda: owner.ready == [1, 2])
    reconnecting = [d for s, d in owner.states if s is ConnectionState.RECONNECTING]
    assert reconnecting and reconnecting[0].startswith("server went away; reconnecting in")
    assert owner.states[-1][0] is ConnectionState.CONNECTED and sup.connections == 2
    await sup.stop()
    assert owner.sockets[1].closed.is_set() and not sup.ready.is_set()


async def test_a_silent_socket_is_marked_stale_then_replaced():
    owner = Owner()
    sup = supervisor(owner, stale_after=0.05)
    await sup.start()
    await owner.until(lambda: len(owner.ready) >= 2)
    stale = [d for s, d in owner.states if s is ConnectionState.STALE]
    assert stale and stale[0].startswith("no message for")
    assert owner.sockets[0].close_reason.startswith("silent for")
    await sup.stop()


async def test_frames_keep_a_socket_fresh():
    owner = Owner()
    sup = supervisor(owner, stale_after=0.2)
    await sup.start()
    for _ in range(8):
        owner.sockets[-1].frame()
        await asyncio.sleep(0.05)
    assert len(owner.sockets) == 1 and not any(s is ConnectionState.STALE for s, _ in owner.states)
    await sup.stop()


async def test_a_refused_login_is_raised_never_retried():
    owner = Owner()
    owner.fail_next = [AuthError("bad password")]
    sup = supervisor(owner)
    with pytest.raises(AuthError):
        await sup.start(background_retry=True)
    assert owner.sockets == []


async def test_a_failed_first_connect_retries_in_the_background_when_asked():
    owner = Owner()
    owner.fail_next = [BrokerError("no route")]
    sup = supervisor(owner)
    with pytest.raises(BrokerError):
        await sup.start()
    owner.fail_next = [BrokerError("no route")]
    await sup.start(background_retry=True)
    assert sup.last_error == "no route" and owner.states[0] == (
        ConnectionState.RECONNECTING,
        "could not connect (no route)",
    )
    await owner.until(lambda: owner.ready == [1])
    await sup.stop()


def test_stream_states_roll_up_to_the_worst_with_each_streams_detail():
    states = StreamStates(["trading", "market data"])
    assert states.rollup() == (ConnectionState.DOWN, "trading: not connected; market data: not connected")
    states.set("trading", ConnectionState.CONNECTED)
    states.set("market data", ConnectionState.CONNECTED)
    assert states.rollup() == (ConnectionState.CONNECTED, "connected")
    states.set("market data", ConnectionState.STALE, "no message for 10s")
    assert states.rollup() == (ConnectionState.STALE, "market data: no message for 10s")
    states.set("trading", ConnectionState.RECONNECTING, "")
    assert states.rollup() == (
        ConnectionState.RECONNECTING,
        "trading: reconnecting; market data: no message for 10s",
    )
    states.set("trading", ConnectionState.NEEDS_LOGIN, "refresh token expired")
    assert states.rollup()[0] is ConnectionState.NEEDS_LOGIN
    assert "trading" in states and "orders" not in states
    with pytest.raises(KeyError, match="no stream named 'orders'"):
        states.set("orders", ConnectionState.DOWN)
    with pytest.raises(ValueError):
        StreamStates([])

"""StaleWatchdog: fires once after silence, re-arms on touch, survives a failing handler."""

import asyncio

import pytest

from tterm.brokers.common.watchdog import StaleWatchdog


class FakeTime:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


async def test_fires_once_after_silence_and_rearms_after_touch():
    ft = FakeTime()
    seen = []
    wd = StaleWatchdog(timeout=10, on_stale=seen.append, time=ft)
    ft.t = 9.9
    assert not await wd.check()
    ft.t = 10.0
    assert await wd.check()
    assert wd.is_stale and seen == [10.0]
    ft.t = 30
    assert not await wd.check()  # still the same silence: no second alarm
    wd.touch()
    assert not wd.is_stale and wd.silence() == 0
    ft.t = 45
    assert await wd.check()
    assert wd.fired == 2


async def test_async_handlers_are_awaited():
    ft = FakeTime()
    done = asyncio.Event()

    async def handler(quiet: float) -> None:
        done.set()

    wd = StaleWatchdog(timeout=1, on_stale=handler, time=ft)
    ft.t = 2
    await wd.check()
    assert done.is_set()


async def test_background_loop_notices_silence_and_keeps_going_after_a_handler_error():
    ft = FakeTime()
    calls = []
    first = asyncio.Event()
    fired = asyncio.Event()

    def handler(quiet: float) -> None:
        calls.append(quiet)
        if len(calls) == 1:
            first.set()
            raise RuntimeError("handler bug")
        fired.set()

    wd = StaleWatchdog(timeout=5, on_stale=handler, time=ft, check_interval=0.001)
    wd.start()
    try:
        ft.t = 6
        await asyncio.wait_for(first.wait(), 5)
        wd.touch()
        ft.t = 12
        await asyncio.wait_for(fired.wait(), 5)
        assert len(calls) == 2
    finally:
        await wd.stop()


def test_timeout_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        StaleWatchdog(timeout=0, on_stale=print)

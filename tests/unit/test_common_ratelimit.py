"""RateLimiter: sliding windows (global and per key), penalties, never over any window."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tterm.brokers.common.ratelimit import RateLimiter, Window


class FakeTime:
    """Monotonic time that moves when the limiter sleeps (so waits cost nothing)."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


async def test_requests_within_the_window_pass_without_waiting():
    ft = FakeTime()
    rl = RateLimiter([Window(3, 1.0)], time=ft, sleep=ft.sleep)
    for _ in range(3):
        assert await rl.acquire() == 0
    assert ft.slept == []


async def test_the_request_over_the_limit_waits_for_the_oldest_to_age_out():
    ft = FakeTime()
    rl = RateLimiter([Window(2, 10.0)], time=ft, sleep=ft.sleep)
    await rl.acquire()
    ft.t += 3
    await rl.acquire()
    waited = await rl.acquire()
    assert waited == pytest.approx(7.0)
    assert rl.delay() == pytest.approx(3.0)


async def test_per_key_limits_add_to_the_global_one():
    ft = FakeTime()
    rl = RateLimiter([Window(100, 1.0)], per_key={"auth/renew": [Window(1, 60.0)]}, time=ft, sleep=ft.sleep)
    await rl.acquire("auth/renew")
    assert rl.delay("AUTH/RENEW") == pytest.approx(60.0)
    assert rl.delay("order/list") == 0
    assert rl.delay() == 0


async def test_penalize_blocks_a_key_or_everything():
    ft = FakeTime()
    rl = RateLimiter([Window(100, 1.0)], time=ft, sleep=ft.sleep)
    rl.penalize(5.0, "auth")
    assert rl.delay("auth") == pytest.approx(5.0)
    assert rl.delay("other") == 0
    rl.penalize(2.0)
    assert rl.delay("other") == pytest.approx(2.0)
    assert await rl.acquire("auth") == pytest.approx(5.0)
    rl.penalize(0)
    rl.penalize(-1)
    assert rl.delay("x") == 0


def test_window_validation():
    with pytest.raises(ValueError, match="limit"):
        Window(0, 1)
    with pytest.raises(ValueError, match="length"):
        Window(1, 0)


@given(
    limit=st.integers(1, 5),
    seconds=st.floats(0.5, 10),
    gaps=st.lists(st.floats(0, 3), min_size=1, max_size=40),
)
async def test_no_sliding_window_ever_holds_more_than_the_limit(limit, seconds, gaps):
    ft = FakeTime()
    rl = RateLimiter([Window(limit, seconds)], time=ft, sleep=ft.sleep)
    stamps = []
    for gap in gaps:
        ft.t += gap
        await rl.acquire()
        stamps.append(ft.t)
    # The limiter treats a wait under a microsecond as none (float clocks round), so the law is
    # checked on windows a couple of microseconds shorter.
    for i, start in enumerate(stamps):
        inside = [s for s in stamps[i:] if s < start + seconds - 2e-6]
        assert len(inside) <= limit

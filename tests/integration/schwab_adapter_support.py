"""Helpers for the Schwab adapter's tests: the fake server, the adapter built the way tterm builds
it, and a login made the way a person makes it (the authorize URL opened in a "browser", the
redirect URL it ends on pasted back)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.fakes import FakeClock
from tests.fakes.schwab import FakeSchwab
from tterm.brokers.schwab import build
from tterm.brokers.schwab.broker import SchwabBroker
from tterm.core.instruments import InstrumentMaster

#: A Tuesday, 10:00 in New York: the regular session is open.
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
CALLBACK = "https://127.0.0.1:8182"
MARGIN, CASH = "sw:12345678", "sw:87654321"

#: Fast polling and reconnects for tests (real-time pacing; vendor time runs on the fake clock).
FAST = {
    "order_poll_interval": "0.05",
    "idle_poll_interval": "0.2",
    "account_poll_interval": "0.5",
    "login_check_interval": "0.05",
    "stale_after": "1.5",
    "watchdog_interval": "0.05",
    "reconnect_base": "0.05",
    "reconnect_cap": "0.2",
    "displaced_wait": "0",
    "connect_timeout": "5",
    "stream_request_timeout": "5",
    # The refresh loop sleeps on the fake clock in slices this long: longer than any limiter wait a
    # test looks for with FakeClock.wait_for_sleeper.
    "token_check_interval": "600",
}


async def start_fake(clock: FakeClock | None = None, **kw: Any) -> FakeSchwab:
    kw.setdefault("data_per_minute", 1_000_000)  # polls run on real time; the limit tests set their own
    kw.setdefault("heartbeat_interval", 0.05)
    fake = FakeSchwab(clock=clock or FakeClock(NOW), **kw)
    await fake.start()
    return fake


def options(fake: FakeSchwab, **over: str) -> dict[str, str]:
    return {
        "environment": "live",
        "api_url": fake.base_url,
        "callback_url": CALLBACK,
        "data_per_minute": "100000",
        **FAST,
        **over,
    }


def secrets(fake: FakeSchwab) -> dict[str, str]:
    return {"app_key": fake.app_key, "app_secret": fake.app_secret}


def make_broker(
    fake: FakeSchwab, data_dir: Path, *, master: InstrumentMaster | None = None, name: str = "sw", **over: str
) -> SchwabBroker:
    master = master or InstrumentMaster(today=lambda: fake.clock.now().date())
    return build(name, options(fake, **over), secrets(fake), instruments=master, clock=fake.clock, data_dir=data_dir)


async def log_in(fake: FakeSchwab, broker: SchwabBroker) -> str:
    """A person's login through the adapter's flow; returns the URL they pasted."""
    flow = broker.login_flow()
    prompt = flow.start()
    pasted = await fake.browse(prompt.url)
    await flow.complete(prompt, pasted)
    return pasted


async def until(pred: Callable[[], bool], what: str, within: float = 5.0) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not pred():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


D = Decimal

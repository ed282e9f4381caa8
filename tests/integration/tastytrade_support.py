"""Helpers for the Tastytrade adapter's tests: the fake (REST, account streamer, DXLink on
loopback) and the adapter built the way tterm builds it, with short intervals."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.fakes import FakeClock
from tests.fakes.tastytrade import FakeTastytrade
from tterm.brokers.tastytrade import build
from tterm.brokers.tastytrade.broker import TastytradeBroker
from tterm.core.instruments import InstrumentMaster

#: A Tuesday, 10:00 in New York.
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
MARGIN, CASH = "tt:5WT00001", "tt:5WT00002"

#: Socket intervals in real (short) time; vendor time (token lives) runs on the fake clock.
FAST = {
    "heartbeat_interval": "0.2",
    "stale_after": "2",
    "watchdog_interval": "0.05",
    "reconnect_base": "0.05",
    "reconnect_cap": "0.2",
    "connect_timeout": "5",
    "stream_request_timeout": "5",
    "dxlink_keepalive": "0.2",
    "dxlink_timeout": "5",
    "dxlink_stale_after": "1.5",
    "chain_wait": "2",
    "bars_timeout": "5",
    "fill_fee_wait": "2",
    # The renewal loop sleeps on the fake clock in slices this long.
    "token_check_interval": "600",
}


async def start_fake(clock: FakeClock | None = None, **kw: Any) -> FakeTastytrade:
    kw.setdefault("keepalive_interval", 0.3)
    fake = FakeTastytrade(clock=clock or FakeClock(NOW), **kw)
    await fake.start()
    return fake


def options(fake: FakeTastytrade, **over: str) -> dict[str, str]:
    return {"environment": "demo", "api_url": fake.api_url, "streamer_url": fake.streamer_url, **FAST, **over}


def make_broker(
    fake: FakeTastytrade,
    data_dir: Path,
    *,
    master: InstrumentMaster | None = None,
    name: str = "tt",
    secrets: dict[str, str] | None = None,
    **over: str,
) -> TastytradeBroker:
    master = master or InstrumentMaster(today=lambda: fake.clock.now().date())
    return build(
        name,
        options(fake, **over),
        secrets if secrets is not None else fake.secrets(),
        instruments=master,
        clock=fake.clock,
        data_dir=data_dir,
    )


async def until(pred: Callable[[], bool], what: str, within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not pred():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class Running:
    """An engine on a Tastytrade broker, with a recorder of everything it published."""

    def __init__(self, broker: TastytradeBroker, engine: Any) -> None:
        self.broker = broker
        self.engine = engine
        self.sub = engine.events("test")
        self.seen: list[Any] = []

    def drain(self) -> list[Any]:
        self.seen.extend(self.sub.drain())
        return self.seen

    async def until(self, pred: Callable[[], bool], what: str, within: float = 5.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            await self.engine.settle()
            await self.engine.emulator.settle()
            self.drain()
            if pred():
                return
            if loop.time() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.01)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.drain() if isinstance(e, kind)]


async def start_engine(broker: TastytradeBroker, master: InstrumentMaster, tmp: Path) -> Running:
    from tterm.core.clock import CmeClock, default_calendar
    from tterm.core.engine import Engine
    from tterm.core.journal import Journal

    clock = CmeClock(default_calendar(), now=lambda: NOW)
    engine = Engine(brokers=[broker], instruments=master, journal=Journal(tmp / "journal.sqlite3"), clock=clock)
    await engine.start()
    return Running(broker, engine)

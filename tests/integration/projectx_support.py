"""Shared set-up for the ProjectX adapter's tests: the fake gateway and the adapter built on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.fakes import FakeClock
from tests.fakes.projectx import FakeProjectX
from tterm.core.instruments import InstrumentMaster

#: Quick timings for loopback tests (hub pings every 0.2 s, reconnects at once).
FAST: dict[str, Any] = {
    "ping_interval": 0.2,
    "stale_after": 2.0,
    "watchdog_interval": 0.05,
    "reconnect_base": 0.01,
    "reconnect_cap": 0.05,
    "connect_timeout": 2.0,
    "invoke_timeout": 3.0,
    "request_timeout": 3.0,
    "ack_wait": 1.0,
    "quote_stale_after": 60.0,
}


async def start_fake(clock: FakeClock | None = None, **kw: Any) -> FakeProjectX:
    fake = FakeProjectX(clock=clock or FakeClock(), ping_interval=0.2, client_timeout=5.0, **kw)
    await fake.start()
    await fake.set_quote("MES", bid="6650.00", ask="6650.25", last="6650.00")
    return fake


def options(fake: FakeProjectX, **extra: Any) -> dict[str, Any]:
    return {
        "environment": "demo",
        "api_url": fake.api_url,
        "user_hub_url": fake.user_hub_url,
        "market_hub_url": fake.market_hub_url,
        **FAST,
        **extra,
    }


def secrets(fake: FakeProjectX, **extra: str) -> dict[str, str]:
    return {"username": fake.username, "api_key": fake.api_key, **extra}


def make_broker(
    fake: FakeProjectX, tmp: Path, *, master: InstrumentMaster | None = None, name: str = "px", **extra: Any
) -> Any:
    from tterm.brokers.projectx import build

    master = master or InstrumentMaster(today=lambda: fake.clock.now().date())
    return build(name, options(fake, **extra), secrets(fake), instruments=master, clock=fake.clock, data_dir=tmp)


class Running:
    """An engine on a ProjectX broker, recording everything it published."""

    def __init__(self, engine: Any, broker: Any, fake: FakeProjectX) -> None:
        self.engine = engine
        self.broker = broker
        self.fake = fake
        self.sub = engine.events("px-test")
        self.seen: list[Any] = []

    def drain(self) -> list[Any]:
        self.seen.extend(self.sub.drain())
        return self.seen

    async def until(self, pred: Any, what: str, within: float = 5.0) -> None:
        import asyncio

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

    def order(self, account: str, client_order_id: str) -> Any:
        return self.engine.order_by_client_id(account, client_order_id)

    def held(self, account: str = "px:536", symbol: str = "MESZ6") -> int:
        return int(self.engine.position(account, symbol).quantity)

    def places(self) -> list[Any]:
        """The bodies of every Order/place the fake received."""
        return [b for e, b in self.fake.bodies if e == "order/place"]

"""Helpers for the hub tests: a scripted paper engine with a hub on a loopback port, and alert payloads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from tterm.brokers.paper.broker import PaperAccountSpec, PaperBroker
from tterm.config import HubSettings
from tterm.core.engine import Engine
from tterm.core.instruments import InstrumentMaster
from tterm.core.journal import Journal
from tterm.core.models import AccountKind, Quote
from tterm.core.router import PreTradeCheck
from tterm.hub.service import Hub

SECRET = "hook-secret-1234567890"
TOKEN = "api-token-0987654321"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "webhooks"

ACCOUNTS = (
    PaperAccountSpec(id="A", name="Acct A", kind=AccountKind.FUTURES, balance=Decimal(100000)),
    PaperAccountSpec(id="B", name="Acct B", kind=AccountKind.FUTURES, balance=Decimal(100000)),
    PaperAccountSpec(id="C", name="Acct C", kind=AccountKind.FUTURES, balance=Decimal(100000)),
)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def render(name: str, **values: str) -> str:
    """An example payload with its TradingView placeholders filled in, as TradingView would send it."""
    text = (EXAMPLES / name).read_text()
    defaults = {
        "{{ticker}}": "MES1!",
        "{{close}}": "5000.00",
        "{{timenow}}": now_iso(),
        "{{strategy.order.action}}": "buy",
        "{{strategy.order.contracts}}": "1",
        "{{strategy.order.price}}": "5000.00",
        "{{strategy.order.id}}": "Long",
        "{{strategy.market_position}}": "long",
        "{{strategy.market_position_size}}": "1",
        "YOUR_WEBHOOK_SECRET": SECRET,
    }
    for k, v in {**defaults, **values}.items():
        text = text.replace(k, v)
    return text


@dataclass
class HubRig:
    engine: Engine
    broker: PaperBroker
    hub: Hub
    journal: Journal
    url: str
    http: aiohttp.ClientSession

    @property
    def instruments(self) -> InstrumentMaster:
        return self.engine.instruments

    def contract(self, symbol: str = "MES1!") -> str:
        return self.engine.instruments.resolve(symbol).symbol

    async def quote(self, symbol: str = "MES1!", bid: str = "5000.00", ask: str = "5000.25") -> None:
        """Set the market of ``symbol`` and wait until the engine has seen it."""
        contract = self.contract(symbol)
        if contract not in self.engine.subscriptions():
            await self.engine.subscribe([symbol])
        stream = self.engine.events("rig-quote")
        try:
            await self.broker.push_quote(Quote(symbol=symbol, bid=Decimal(bid), ask=Decimal(ask), last=Decimal(bid)))
            while (q := self.engine.quote(contract)) is None or q.bid != Decimal(bid):
                await asyncio.wait_for(stream.wait(), 5)
                stream.drain()
        finally:
            stream.close()
        await self.settle()

    async def settle(self) -> None:
        """Let queued alerts run and broker events reach the engine."""
        for _ in range(3):
            await asyncio.wait_for(self.hub.router.idle.wait(), 10)
            for _ in range(20):
                await asyncio.sleep(0)

    async def post(
        self,
        strategy: str,
        body: str | dict[str, Any],
        *,
        path_secret: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        data = body if isinstance(body, str) else json.dumps(body)
        url = f"{self.url}/webhook/{strategy}" + (f"/{path_secret}" if path_secret is not None else "")
        async with self.http.post(url, data=data.encode(), headers=headers or {"Content-Type": "text/plain"}) as resp:
            return resp.status, await resp.json()

    async def wait_clients(self, n: int) -> None:
        """Wait until no remote client is attached (``n`` 0)."""
        assert n == 0
        await asyncio.wait_for(self.hub.server.no_clients.wait(), 10)

    def position(self, account: str, symbol: str = "MES1!") -> int:
        return self.engine.book.quantity(account, self.contract(symbol))


def hub_settings(**overrides: Any) -> HubSettings:
    data: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "rate_limit": 10000,
        "rate_burst": 10000,
        "stale_after": 60,
        "exit_fill_timeout": 5,
        "strategies": {
            "trend": {"accounts": ["paper:A"]},
            "fan": {
                "accounts": [
                    {"account": "paper:A", "multiplier": 1},
                    {"account": "paper:B", "multiplier": 2},
                    {"account": "paper:C", "multiplier": "0.5"},
                ]
            },
            "mapped": {"accounts": ["paper:B"], "symbols": {"NQ1!": "MNQ1!"}, "quantity": 3},
        },
    }
    data.update(overrides)
    return HubSettings.model_validate(data)


@asynccontextmanager
async def hub_rig(
    tmp_path: Path,
    *,
    settings: HubSettings | None = None,
    checks: tuple[PreTradeCheck, ...] = (),
    webhook_secret: str | None = SECRET,
    api_token: str | None = TOKEN,
) -> AsyncIterator[HubRig]:
    instruments = InstrumentMaster()
    broker = PaperBroker(
        "paper", accounts=ACCOUNTS, instruments=instruments, scripted=True, store_path=tmp_path / "paper.sqlite3"
    )
    journal = Journal(tmp_path / "journal.sqlite3")
    engine = Engine(brokers=[broker], instruments=instruments, journal=journal, checks=checks)
    await engine.start()
    hub = Hub(
        engine,
        settings or hub_settings(),
        data_dir=tmp_path,
        webhook_secret=webhook_secret,
        api_token=api_token,
    )
    port = await hub.start("127.0.0.1", 0)
    http = aiohttp.ClientSession()
    rig = HubRig(engine, broker, hub, journal, f"http://127.0.0.1:{port}", http)
    try:
        await rig.quote("MES1!")
        yield rig
    finally:
        await http.close()
        await hub.stop()
        await engine.stop()
        journal.close()

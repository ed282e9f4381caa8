"""Pilot fixtures: a real engine on a scripted paper broker (nothing moves unless a test pushes a
quote), a frozen exchange clock, frozen message times, and no cursor blink, so runs are
deterministic and snapshots are stable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input

from tterm.config import Settings
from tterm.core.clock import CmeClock
from tterm.core.engine import Engine
from tterm.core.models import Quote
from tterm.runtime import build_engine
from tterm.tui.app import TtermApp

#: Tuesday 17 Nov 2026, 09:30 CT: the market is open, MES/ES trade the Dec 2026 contract (Z6).
FROZEN = datetime(2026, 11, 17, 15, 30, tzinfo=UTC)

#: symbol -> (bid, ask, last, prev_close, bid size, ask size, volume)
MARKET: dict[str, tuple[str, str, str, str, int, int, int]] = {
    "MES": ("5000.00", "5000.25", "5000.25", "4980.50", 14, 9, 152_340),
    "ES": ("5000.00", "5000.25", "5000.00", "4980.50", 41, 37, 1_402_118),
    "MNQ": ("21000.00", "21000.25", "21000.25", "21100.00", 6, 8, 88_120),
    "NQ": ("21000.00", "21000.25", "21000.00", "21100.00", 12, 10, 402_556),
    "M2K": ("2300.0", "2300.1", "2300.1", "2290.0", 3, 5, 12_004),
    "RTY": ("2300.0", "2300.1", "2300.0", "2290.0", 7, 4, 99_311),
    "MYM": ("44000", "44001", "44001", "44100", 2, 3, 8_112),
    "YM": ("44000", "44001", "44000", "44100", 5, 6, 77_020),
    "MCL": ("70.10", "70.11", "70.11", "69.80", 11, 13, 31_440),
    "CL": ("70.10", "70.11", "70.10", "69.80", 22, 19, 301_201),
    "MGC": ("2650.0", "2650.1", "2650.1", "2640.0", 4, 2, 9_876),
    "GC": ("2650.0", "2650.1", "2650.0", "2640.0", 9, 6, 188_002),
    "AAPL": ("187.49", "187.51", "187.50", "185.00", 300, 200, 41_000_000),
    "MSFT": ("410.10", "410.14", "410.12", "412.00", 100, 100, 18_200_000),
    "NVDA": ("140.00", "140.02", "140.01", "138.00", 800, 600, 220_000_000),
    "TSLA": ("250.00", "250.05", "250.02", "255.10", 500, 400, 90_000_000),
    "SPY": ("600.00", "600.01", "600.01", "598.00", 900, 1100, 60_000_000),
    "QQQ": ("510.00", "510.02", "510.01", "508.00", 700, 500, 35_000_000),
    "AMD": ("120.00", "120.02", "120.01", "121.00", 300, 300, 40_000_000),
    "AMZN": ("200.00", "200.02", "200.01", "199.00", 200, 200, 30_000_000),
    "META": ("590.00", "590.05", "590.02", "588.00", 100, 100, 12_000_000),
    "GOOGL": ("170.00", "170.02", "170.01", "171.00", 200, 200, 25_000_000),
}


def frozen_now() -> datetime:
    return FROZEN


@pytest.fixture(autouse=True)
def _deterministic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Frozen message times, UTC local time, and no blinking cursors."""
    monkeypatch.setattr("tterm.core.broker.utcnow", frozen_now)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)


async def push(engine: Engine, symbol: str, **fields: Any) -> None:
    """Set the market of ``symbol`` on the scripted paper broker."""
    inst = engine.instrument(symbol)
    row = MARKET.get(symbol)
    base: dict[str, Any] = {}
    if row is not None:
        bid, ask, last, prev, bsz, asz, vol = row
        base = dict(bid=Decimal(bid), ask=Decimal(ask), last=Decimal(last), prev_close=Decimal(prev), bid_size=bsz,
                    ask_size=asz, volume=vol)  # fmt: skip
    base.update({k: Decimal(str(v)) if k in ("bid", "ask", "last", "prev_close") else v for k, v in fields.items()})
    base.setdefault("ts", FROZEN)
    await engine.brokers["paper"].push_quote(Quote(symbol=inst.symbol, **base))  # type: ignore[attr-defined]


def make_settings(**general: Any) -> Settings:
    settings = Settings()
    for key, value in general.items():
        setattr(settings.general, key, value)
    return settings


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "tterm_settings(fn): change the Settings before the engine is built")


@pytest.fixture
def settings(request: pytest.FixtureRequest) -> Settings:
    settings = make_settings()
    marker = request.node.get_closest_marker("tterm_settings")
    if marker is not None:
        marker.args[0](settings)
    return settings


@pytest.fixture
async def engine(tmp_path: Path, settings: Settings) -> AsyncIterator[Engine]:
    clock = CmeClock(now=frozen_now)
    eng = build_engine(settings, paper_seed=7, scripted=True, clock=clock, root=tmp_path)
    await eng.start()
    # Quotes reach the engine only for subscribed symbols (as with any broker).
    await eng.subscribe(list(MARKET))
    for symbol in MARKET:
        await push(eng, symbol)
    yield eng
    await eng.stop()


def make_app(engine: Engine, settings: Settings, **kwargs: Any) -> TtermApp:
    return TtermApp(
        engine,
        settings=settings,
        clock=CmeClock(now=frozen_now),
        wall=frozen_now,
        **kwargs,
    )


async def wait_for(predicate: Callable[[], bool], pilot: Any, limit: float = 5.0) -> None:
    """Let the app run until ``predicate()`` holds (no fixed sleeps: poll with pauses)."""

    async def loop() -> None:
        while not predicate():
            await pilot.pause(0.02)

    await asyncio.wait_for(loop(), limit)

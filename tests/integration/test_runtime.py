"""runtime.build_engine: the config file is what decides which brokers run, end to end."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.fakes import FakeClock
from tests.fakes.tradovate import FakeTradovate
from tterm.config import ConfigError, load_settings
from tterm.core.clock import CmeClock, default_calendar
from tterm.core.models import ConnectionState, OrderRequest, OrderStatus, Side
from tterm.runtime import build_engine


@pytest.fixture
async def fake():
    server = FakeTradovate(clock=FakeClock(), heartbeat_interval=0.05, client_timeout=3.0)
    await server.start()
    server.set_quote("MESZ6", bid="6650.00", ask="6650.25", last="6650.25")
    yield server
    await server.stop()


def write_config(tmp: Path, fake: FakeTradovate) -> Path:
    opts = fake.options(heartbeat_interval=0.05, stale_after=2, watchdog_interval=0.05, connect_timeout=2)
    options = ", ".join(f'{k} = "{v}"' for k, v in opts.items())
    path = tmp / "config.toml"
    path.write_text(
        f"""
[general]
default_account = "paper:FUT50K"

[brokers.tradovate-demo]
type = "tradovate"
enabled = true
username = "{fake.username}"
options = {{ {options} }}

[accounts."tradovate-demo:DEMO123456"]
alias = "tv-main"
profile = "topstep-50k-combine"
"""
    )
    return path


async def test_config_with_tradovate_and_paper_builds_both_and_prefers_the_real_feed(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("TTERM_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("TTERM_DATA_DIR", str(tmp_path / "data"))
    for key, value in fake.secrets().items():
        if key != "username":
            monkeypatch.setenv(f"TTERM_TRADOVATE_DEMO_{key.upper()}", value)
    settings = load_settings(write_config(tmp_path, fake), create=False)
    clock = CmeClock(default_calendar(), now=fake.clock.now)
    engine = build_engine(settings, scripted=True, clock=clock, root=tmp_path / "data")
    assert [b.name for b in engine.brokers.values()] == ["tradovate-demo", "paper"]
    await engine.start()
    try:
        await engine.settle()
        snap = await engine.snapshot()
        ids = {a.id: a for a in snap.accounts}
        assert {"tradovate-demo:DEMO123456", "paper:FUT50K", "paper:CASH"} <= set(ids)
        assert ids["tradovate-demo:DEMO123456"].name == "tv-main"  # alias from [accounts]
        states = {c.broker: c.state for c in snap.connections}
        assert states["tradovate-demo"] is ConnectionState.CONNECTED
        sub = engine.events()
        assert await engine.subscribe(["MES1!"]) == ["MESZ6"]
        assert engine.feed_source("MESZ6") == "tradovate-demo"  # the real feed, not the simulation
        for _ in range(200):
            quotes = [e for e in sub.drain() if getattr(e, "symbol", None) == "MESZ6" and hasattr(e, "bid")]
            if quotes:
                break
            await asyncio.sleep(0.02)
        assert quotes and str(quotes[-1].bid) == "6650.00"
        order = await engine.place(
            OrderRequest(account="tradovate-demo:DEMO123456", symbol="MES1!", side=Side.BUY, quantity=1)
        )
        assert order.status in (OrderStatus.WORKING, OrderStatus.FILLED), order.reject_reason
    finally:
        await engine.stop()


def test_missing_credentials_name_the_broker_and_never_a_value(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("TTERM_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("TTERM_PASSWORD_PROBE", "x")
    settings = load_settings(write_config(tmp_path, fake), create=False)
    with pytest.raises(ValueError, match="tradovate-demo") as info:
        build_engine(settings, root=tmp_path / "data")
    assert fake.password not in str(info.value)


def test_unknown_broker_option_is_a_config_error(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("TTERM_CONFIG_DIR", str(tmp_path / "cfg"))
    path = write_config(tmp_path, fake)
    path.write_text(path.read_text().replace('type = "tradovate"', 'type = "nosuchbroker"'))
    with pytest.raises(ConfigError, match=r"brokers\.tradovate-demo\.type"):
        load_settings(path, create=False)

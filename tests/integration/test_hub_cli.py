"""`tterm hub`, `tterm attach`, `tterm serve` plumbing, and webhooks served by the embedded engine."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from tests.integration.hub_support import SECRET, render
from tterm.cli import main, serve_command
from tterm.config import validate_settings
from tterm.core.clock import CmeClock
from tterm.hub.service import EmbeddedHub, ensure_hub_secrets, hub_secrets, with_embedded_hub
from tterm.runtime import build_engine


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TTERM_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("TTERM_DATA_DIR", str(tmp_path / "data"))
    for var in ("TTERM_HUB_WEBHOOK_SECRET", "TTERM_HUB_API_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def test_hub_secrets_are_created_once_with_mode_0600(dirs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    out = io.StringIO()
    webhook, token = ensure_hub_secrets(out)
    assert webhook and token and webhook != token
    path = dirs / "config" / "secrets.toml"
    assert path.stat().st_mode & 0o777 == 0o600
    assert webhook not in out.getvalue() and token not in out.getvalue()
    assert "created webhook_secret" in out.getvalue()
    again = io.StringIO()
    assert ensure_hub_secrets(again) == (webhook, token)
    assert again.getvalue() == ""


def test_environment_secrets_win(dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TTERM_HUB_WEBHOOK_SECRET", "from-env-secret")
    monkeypatch.setenv("TTERM_HUB_API_TOKEN", "from-env-token")
    assert hub_secrets() == ("from-env-secret", "from-env-token")


def test_serve_binds_loopback_only(dirs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    assert "refusing to serve on 0.0.0.0" in capsys.readouterr().err


def test_serve_command_runs_tterm_or_attach(dirs: Path) -> None:
    args = argparse.Namespace(attach=None, config=None)
    assert serve_command(args).endswith("-m tterm.cli")
    args = argparse.Namespace(attach="ws://127.0.0.1:8787", config=dirs / "my config.toml")
    cmd = serve_command(args)
    assert "attach ws://127.0.0.1:8787" in cmd and "'" in cmd  # the path with a space is quoted


def test_attach_needs_a_token(dirs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["attach", "ws://127.0.0.1:9"]) == 2
    assert "no API token for the hub" in capsys.readouterr().err


def test_attach_to_nothing_says_so(dirs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = dirs / "token"
    token.write_text("abc\n")
    assert main(["attach", "ws://127.0.0.1:9", "--token-file", str(token)]) == 1
    assert "cannot reach the hub at ws://127.0.0.1:9/ws" in capsys.readouterr().err


async def test_embedded_terminal_serves_webhooks(dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TTERM_HUB_WEBHOOK_SECRET", SECRET)
    settings = validate_settings(
        {
            "paper": {"seed": 7},
            "hub": {"serve_webhooks": True, "port": 0, "strategies": {"trend": {"accounts": ["paper:FUT50K"]}}},
        },
        dirs / "config.toml",
    )
    # A Tuesday 09:00 CT: on the real clock, after 15:06 CT Topstep's flat-by rule refuses the entry.
    clock = CmeClock(now=lambda: datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    plain = build_engine(settings, scripted=True, root=dirs / "data", clock=clock)
    wrapped = with_embedded_hub(plain, settings)
    assert isinstance(wrapped, EmbeddedHub)
    await wrapped.start()
    try:
        assert wrapped.hub is not None and wrapped.hub.port
        from decimal import Decimal

        from tterm.core.models import Quote

        paper = plain.brokers["paper"]
        contract = (await plain.subscribe(["MES1!"]))[0]
        await paper.push_quote(Quote(symbol="MES1!", bid=Decimal("5000.00"), ask=Decimal("5000.25")))
        stream = plain.events("test")
        while plain.quote(contract) is None:
            await asyncio.wait_for(stream.wait(), 5)
            stream.drain()
        url = f"http://127.0.0.1:{wrapped.hub.port}/webhook/trend"
        async with aiohttp.ClientSession() as http, http.post(url, data=render("traderspost-buy.json")) as resp:
            reply = await resp.json()
        assert resp.status == 202, reply
        await wrapped.hub.router.idle.wait()
        snap = await wrapped.snapshot()
        assert reply["id"] in {s.signal_id for s in snap.signals}
        # Everything else is the engine's own.
        assert wrapped.instrument("MES1!") == plain.instrument("MES1!")
        notices = [e.data["text"] for e in plain.journal.entries(kind="notice")]
        assert any("serving webhooks on http://127.0.0.1:" in t for t in notices)
        assert json.dumps(notices).count(SECRET) == 0
    finally:
        await wrapped.stop()
        plain.journal.close()


def test_no_wrapper_unless_configured(dirs: Path) -> None:
    settings = validate_settings({}, dirs / "config.toml")
    engine = build_engine(settings, scripted=True, root=dirs / "data")
    try:
        assert with_embedded_hub(engine, settings) is engine
    finally:
        engine.journal.close()

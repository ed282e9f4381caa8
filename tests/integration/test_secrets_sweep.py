"""Planted secrets never leave where they belong (issue 17, item 5).

One run with every kind of secret tterm holds: Tradovate's password and API secret, Schwab's app
key and secret, the OAuth and session tokens both vendors issue (and re-issue after an expiry), the
hub's webhook secret and API token. The run trades on both fakes, meets a vendor reject whose text
echoes the password, takes webhooks with the secret where it belongs and where it does not, and
attaches a remote terminal with the API token. Then every byte tterm wrote is searched: the log
(at DEBUG), the journal and every store in the data dir, the journal export in both formats. Only
the token store may hold tokens, and it is 0600. Companion tests (extending, not repeating,
tests/unit/test_redact_values.py and test_file_modes.py): a crash message, and the rendered screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import stat
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest

from tests.fakes import FakeClock
from tests.fakes.tradovate import FakeTradovate
from tests.integration.contract_rigs import NOW
from tests.integration.schwab_adapter_support import log_in, make_broker, start_fake
from tests.integration.test_tradovate import FAST
from tterm.brokers.tradovate import build as build_tradovate
from tterm.cli import main
from tterm.config import HubSettings
from tterm.core.clock import CmeClock, default_calendar
from tterm.core.engine import Engine
from tterm.core.instruments import InstrumentMaster
from tterm.core.journal import Journal
from tterm.core.models import OrderRequest, OrderSource, OrderType, Side
from tterm.hub.remote import RemoteEngineClient
from tterm.hub.service import Hub
from tterm.logs import setup_logging

TV_PASSWORD = "planted-Tradovate-Pa55word-4d1e"
TV_SEC = "planted-tv-sec-9f8e7d6c5b4a39281706f5e4"
SW_KEY = "plantedSchwabAppKey0123456789ABCD"
SW_SECRET = "plantedSchwabAppSecretZYXWV98765"
HOOK = "planted-hook-secret-77aa88bb"
API = "planted-api-token-55cc66dd"


def _variants(secret: str) -> set[str]:
    return {secret, secret.lower(), secret.upper()}


def _files(root: Path) -> Iterable[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def test_planted_secrets_and_issued_tokens_appear_nowhere_but_the_token_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    conf, data = tmp_path / "config", tmp_path / "data"
    monkeypatch.setenv("TTERM_CONFIG_DIR", str(conf))
    monkeypatch.setenv("TTERM_DATA_DIR", str(data))
    data.mkdir(mode=0o700)
    log_path = setup_logging(data)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    clock = FakeClock(NOW)
    tv = FakeTradovate(clock=clock, password=TV_PASSWORD, sec=TV_SEC)
    await tv.start()
    tv.set_quote("MESZ6", bid="6650.00", ask="6650.25", last="6650.25")
    sw = await start_fake(FakeClock(NOW), app_key=SW_KEY, app_secret=SW_SECRET)
    sw.set_price("MSFT", "410.00", bid="410.00", ask="410.02")
    master = InstrumentMaster(today=lambda: NOW.date())
    tv_broker = build_tradovate("tv", tv.options(**FAST), tv.secrets(), instruments=master, clock=clock, data_dir=data)
    sw_broker = make_broker(sw, data, master=master)
    await log_in(sw, sw_broker)
    journal = Journal(data / "journal.sqlite3")
    engine = Engine(
        brokers=[tv_broker, sw_broker],
        instruments=master,
        journal=journal,
        clock=CmeClock(default_calendar(), now=lambda: NOW),
    )
    await engine.start()
    settings = HubSettings.model_validate(
        {"host": "127.0.0.1", "port": 0, "stale_after": 3600, "strategies": {"s": {"accounts": ["tv:DEMO123456"]}}}
    )
    hub = Hub(engine, settings, data_dir=data, webhook_secret=HOOK, api_token=API)
    port = await hub.start()
    try:
        # Trade on both; a vendor reject that echoes the password back.
        await engine.place(OrderRequest("tv:DEMO123456", "MESZ6", Side.BUY, 1, source=OrderSource.TICKET))
        tv.reject_next("RiskRejected", f"credentials {TV_PASSWORD} were logged")
        rejected = await engine.place(OrderRequest("tv:DEMO123456", "MESZ6", Side.BUY, 1, source=OrderSource.TICKET))
        assert rejected.reject_reason and TV_PASSWORD not in rejected.reject_reason
        await engine.place(
            OrderRequest("sw:12345678", "MSFT", Side.BUY, 3, OrderType.LIMIT, limit_price=Decimal("410.02"))
        )
        # Tokens expire and are issued again: the new ones are secrets too.
        tv.expire_tokens()
        sw.expire_tokens()
        await engine.place(OrderRequest("tv:DEMO123456", "MESZ6", Side.SELL, 1, source=OrderSource.TICKET))
        await engine.place(OrderRequest("sw:12345678", "MSFT", Side.SELL, 1, OrderType.MARKET))
        # Webhooks: the secret where it belongs, in the wrong field, and as the strategy name.
        async with aiohttp.ClientSession() as http:
            for body in (
                {"ticker": "MESZ6", "action": "buy", "quantity": 1, "passphrase": HOOK, "time": "2026-11-24T15:00:00Z"},
                {"ticker": HOOK, "action": "buy", "quantity": 1, "passphrase": HOOK},
                {"ticker": "MESZ6", "action": API, "quantity": 1, "passphrase": HOOK},
            ):
                async with http.post(f"http://127.0.0.1:{port}/webhook/s", data=json.dumps(body)) as r:
                    assert HOOK not in await r.text()
            async with http.post(f"http://127.0.0.1:{port}/webhook/{HOOK}", data="{}") as r:
                assert HOOK not in await r.text()
        client = RemoteEngineClient(f"ws://127.0.0.1:{port}", API)
        await client.connect()
        await client.snapshot()
        await client.close()
        await engine.settle()
        await asyncio.sleep(0.2)  # Schwab's order poll books the fills
        issued = set(tv.tokens) | set(sw.oauth.access) | set(sw.oauth.refresh)
        assert len(issued) >= 4, issued  # both vendors issued and re-issued tokens
    finally:
        await hub.stop()
        await engine.stop()
        journal.close()
        await tv.stop()
        await sw.stop()
        root.setLevel(level)
        for handler in root.handlers[:]:
            if getattr(handler, "_tterm_handler", False):
                handler.flush()
                root.removeHandler(handler)
                handler.close()
    secrets = {v for s in (TV_PASSWORD, TV_SEC, SW_KEY, SW_SECRET, HOOK, API, *issued) for v in _variants(s)}

    # The journal export, both formats.
    capsys.readouterr()
    for fmt in ("jsonl", "csv"):
        assert main(["journal", "export", "--format", fmt]) == 0
    exported = capsys.readouterr()
    assert exported.out.count("\n") > 20  # the export has the run in it
    assert not {s for s in secrets if s in exported.out or s in exported.err}

    assert log_path.exists() and log_path.stat().st_size > 0
    token_store = data / "tokens"
    for path in _files(data):
        text = path.read_bytes().decode("utf-8", "replace")
        if token_store in path.parents:
            # The one place tokens belong: private to the user.
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
            assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700, path.parent
            continue
        found = {s[:12] + "..." for s in secrets if s in text}
        assert not found, f"{path.relative_to(data)} holds {found}"
    assert list(_files(token_store)), "the token store kept the sessions"


def test_a_crash_message_carries_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unexpected error in any command: a scrubbed message on stderr (and in the log), exit 1,
    no raw traceback echoing a token the process registered."""
    from tterm import cli
    from tterm.core.redact import REDACTOR

    monkeypatch.setenv("TTERM_CONFIG_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("TTERM_DATA_DIR", str(tmp_path / "d"))
    token = "planted-session-token-a1b2c3d4e5f6"
    REDACTOR.add(token, rotating=True)

    def boom(args: object) -> int:
        raise RuntimeError(f"vendor refused session {token} (Authorization: Bearer {token})")

    parser = cli.build_parser()
    real = parser.parse_args

    def parse(argv: list[str] | None = None) -> object:
        args = real(argv)
        args.handler = boom
        return args

    monkeypatch.setattr(cli, "build_parser", lambda: type("P", (), {"parse_args": staticmethod(parse)})())
    with contextlib.suppress(SystemExit):
        assert cli.main(["profiles"]) == 1
    err = capsys.readouterr().err
    assert "RuntimeError" in err and "vendor refused session" in err
    assert token not in err and token.upper() not in err

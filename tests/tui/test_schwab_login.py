"""The terminal's login dialog against the engine with the Schwab adapter on the fake Schwab.

The broker starts with no login (NEEDS LOGIN in the status bar); the dialog, opened from the
palette, shows Schwab's authorize URL; a pasted address from another attempt is refused with the
reason; the right one logs in, the broker connects by itself and its accounts join the terminal.
No token, code or secret reaches the screen, the journal or the log.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from tests.fakes import FakeClock
from tests.integration.schwab_adapter_support import options, start_fake
from tests.tui.conftest import FROZEN, frozen_now, make_app, make_settings, wait_for
from tterm.config import BrokerSettings
from tterm.core.clock import CmeClock
from tterm.runtime import build_engine
from tterm.tui.modals.login import LoginScreen

SIZE = (140, 44)


def _text(app: Any, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


def _palette(app: Any) -> list[str]:
    found = app.screen.query("CommandList")
    if not found:
        return []
    options_ = found.first()
    return [str(options_.get_option_at_index(i).prompt) for i in range(options_.option_count)]


def _secrets_of(fake: Any, pasted: str) -> list[str]:
    """Everything that must never be shown or stored in the clear."""
    code = re.search(r"code=([^&]+)", pasted)
    values = [fake.app_secret, *fake.oauth.access, *fake.oauth.refresh]
    if code:
        values.append(code.group(1))
        values.append(code.group(1).replace("%40", "@"))
    return [v for v in values if v]


async def test_the_login_dialog_logs_schwab_in_and_its_accounts_join(tmp_path, monkeypatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    fake = await start_fake(FakeClock(FROZEN))
    monkeypatch.setenv("TTERM_CONFIG_DIR", str(tmp_path / "conf"))
    monkeypatch.setenv("TTERM_SW_APP_KEY", fake.app_key)
    monkeypatch.setenv("TTERM_SW_APP_SECRET", fake.app_secret)
    settings = make_settings()
    settings.brokers["sw"] = BrokerSettings(type="schwab", enabled=True, environment="live", options=options(fake))
    engine = build_engine(settings, paper_seed=7, scripted=True, clock=CmeClock(now=frozen_now), root=tmp_path)
    await engine.start()
    app = make_app(engine, settings)
    pasted = ""
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(app.ready.is_set, pilot)
            await wait_for(lambda: "sw ○ NEEDS LOGIN: tterm login sw" in str(app.status.render()), pilot)
            assert not fake.requests  # nothing asked of Schwab without a login
            await pilot.press("ctrl+p", *"login sw")
            await wait_for(lambda: any("log in to sw" in p for p in _palette(app)), pilot)
            await pilot.press("enter")
            await wait_for(lambda: isinstance(app.screen, LoginScreen), pilot)
            await wait_for(lambda: _text(app, "#url").startswith(f"{fake.base_url}/v1/oauth/authorize?"), pilot)
            url = _text(app, "#url")
            assert f"client_id={fake.app_key}" in url and "state=" in url
            assert "sent to https://127.0.0.1:8182" in _text(app, "#redirect")
            pasted = await fake.browse(url)

            field = app.screen.query_one("#login-url")
            field.value = re.sub(r"state=[^&]+", "state=someone-elses", pasted)  # type: ignore[attr-defined]
            await pilot.press("enter")
            await wait_for(lambda: "different state" in _text(app, "#error"), pilot)
            assert isinstance(app.screen, LoginScreen) and not fake.token_requests

            field.value = pasted  # type: ignore[attr-defined]
            await pilot.press("enter")
            await wait_for(lambda: not isinstance(app.screen, LoginScreen), pilot)
            await wait_for(lambda: "sw ● connected" in str(app.status.render()), pilot)
            await wait_for(lambda: "sw:12345678" in app.bridge.state.accounts, pilot)
            assert "sw:87654321" in engine.account_ids()
            await pilot.pause(0.1)
            screen = app.export_screenshot()
    finally:
        await engine.stop()
        await fake.stop()
    journal = (tmp_path / "journal.sqlite3").read_bytes()
    wal = tmp_path / "journal.sqlite3-wal"
    journal += wal.read_bytes() if wal.exists() else b""
    tokens = (tmp_path / "tokens" / "sw.json").read_text()
    # tterm's own log (the test's "browser" logs the redirect it followed, code and all, through httpx).
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("tterm"))
    leaked = _secrets_of(fake, pasted)
    assert leaked and all(v in tokens for v in (*fake.oauth.access,))  # the store has them (0600)...
    for value in leaked:  # ...and nothing else does
        assert value not in screen, "a secret on the screen"
        assert value.encode() not in journal, "a secret in the journal"
        assert value not in logged, "a secret in the log"


@pytest.mark.parametrize("paste", ["https://127.0.0.1:8182/?session=abc&state=x", "not a url at all"])
async def test_the_dialog_refuses_a_paste_without_a_code_and_sends_nothing(tmp_path, monkeypatch, paste) -> None:
    fake = await start_fake(FakeClock(FROZEN))
    monkeypatch.setenv("TTERM_CONFIG_DIR", str(tmp_path / "conf"))
    monkeypatch.setenv("TTERM_SW_APP_KEY", fake.app_key)
    monkeypatch.setenv("TTERM_SW_APP_SECRET", fake.app_secret)
    settings = make_settings()
    settings.brokers["sw"] = BrokerSettings(type="schwab", enabled=True, environment="live", options=options(fake))
    engine = build_engine(settings, paper_seed=7, scripted=True, clock=CmeClock(now=frozen_now), root=tmp_path)
    await engine.start()
    app = make_app(engine, settings)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(app.ready.is_set, pilot)
            await pilot.press("ctrl+p", *"login sw")
            await wait_for(lambda: any("log in to sw" in p for p in _palette(app)), pilot)
            await pilot.press("enter")
            await wait_for(lambda: isinstance(app.screen, LoginScreen) and "state=" in _text(app, "#url"), pilot)
            state = re.search(r"state=([^&]+)", _text(app, "#url"))
            assert state is not None
            app.screen.query_one("#login-url").value = paste.replace("state=x", f"state={state.group(1)}")  # type: ignore[attr-defined]
            await pilot.press("enter")
            await wait_for(lambda: "Nothing changed" in _text(app, "#error"), pilot)
            assert "no code" in _text(app, "#error") or "not a web address" in _text(app, "#error")
            assert not fake.token_requests and isinstance(app.screen, LoginScreen)
    finally:
        await engine.stop()
        await fake.stop()

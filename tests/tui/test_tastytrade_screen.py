"""The terminal with the Tastytrade adapter on the fake: the login needs no person, the status
bar shows the broker connected with the access token's countdown, its accounts join, a refused
grant shows the broker down (not "tterm login", which cannot make a grant); no secret or token
reaches the screen, the journal or the log."""

from __future__ import annotations

import logging

from tests.fakes import FakeClock
from tests.integration.tastytrade_support import options, start_fake
from tests.tui.conftest import FROZEN, frozen_now, make_app, make_settings, wait_for
from tterm.config import BrokerSettings
from tterm.core.clock import CmeClock
from tterm.runtime import build_engine

SIZE = (160, 44)


async def _run(tmp_path, monkeypatch, fake, refresh_token: str) -> tuple[str, str]:
    monkeypatch.setenv("TTERM_CONFIG_DIR", str(tmp_path / "conf"))
    monkeypatch.setenv("TTERM_TT_CLIENT_SECRET", fake.client_secret)
    monkeypatch.setenv("TTERM_TT_REFRESH_TOKEN", refresh_token)
    settings = make_settings()
    settings.brokers["tt"] = BrokerSettings(type="tastytrade", enabled=True, environment="demo", options=options(fake))
    engine = build_engine(settings, paper_seed=7, scripted=True, clock=CmeClock(now=frozen_now), root=tmp_path)
    await engine.start()
    app = make_app(engine, settings)
    status = ""
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(app.ready.is_set, pilot)
            if refresh_token == fake.refresh_token:
                await wait_for(lambda: "tt ● connected" in str(app.status.render()), pilot)
                await wait_for(lambda: "tt:5WT00001" in app.bridge.state.accounts, pilot)
                assert "tt:5WT00002" in engine.account_ids()
            else:
                await wait_for(lambda: "tt ○ DOWN" in str(app.status.render()), pilot)
            await pilot.pause(0.1)
            status = str(app.status.render())
            screen = app.export_screenshot()
    finally:
        await engine.stop()
    return status, screen


async def test_tastytrade_connects_in_the_terminal_and_no_secret_shows(tmp_path, monkeypatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    fake = await start_fake(FakeClock(FROZEN))
    try:
        status, screen = await _run(tmp_path, monkeypatch, fake, fake.refresh_token)
    finally:
        await fake.stop()
    assert "🔑" in status  # the access token's countdown (tterm renews it)
    journal = b"".join(p.read_bytes() for p in tmp_path.glob("journal.sqlite3*"))
    logged = "\n".join(r.getMessage() for r in caplog.records)
    leaked = [fake.client_secret, fake.refresh_token, *fake.access_tokens, *fake.quote_tokens]
    assert len(leaked) >= 4
    for value in leaked:
        assert value not in screen, "a secret on the screen"
        assert value.encode() not in journal, "a secret in the journal"
        assert value not in logged, "a secret in the log"


async def test_a_refused_grant_shows_the_broker_down_not_a_login_it_cannot_use(tmp_path, monkeypatch) -> None:
    fake = await start_fake(FakeClock(FROZEN))
    try:
        status, screen = await _run(tmp_path, monkeypatch, fake, "tt-revoked-grant-0123456789")
    finally:
        await fake.stop()
    assert "tt ○ DOWN" in status and "tterm login" not in status
    assert "tt-revoked-grant-0123456789" not in screen and fake.client_secret not in screen
    assert [r for r in fake.requests if r[1] != "/oauth/token"] == []

"""The Schwab adapter's login and tokens against the fake Schwab (real loopback sockets).

The login a person makes from a pasted URL, refreshed after 30 minutes (schwab-py issue #222:
clients built from a pasted URL could not refresh) and after a restart; refresh ahead of expiry;
the 7-day refresh token dying into NEEDS_LOGIN ("log in again") with one notice and no more
requests; a new login picked up by the running broker; two processes on one token file; bad
pastes refused with nothing sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import FakeClock
from tests.integration.schwab_adapter_support import CASH, MARGIN, NOW, log_in, make_broker, start_fake, until
from tterm.brokers.common.tokens import Token
from tterm.core.broker import LoginError
from tterm.core.models import ConnectionState, Notice, OrderRequest, OrderSource, OrderStatus, Side

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def fake():
    server = await start_fake(FakeClock(NOW))
    yield server
    await server.stop()


def _events(broker: Any) -> list[Any]:
    out = []
    while not broker._events.empty():
        out.append(broker._events.get_nowait())
    return out


def _refreshes(fake: Any) -> int:
    return sum(1 for f in fake.token_requests if f.get("grant_type") == "refresh_token")


# =========================================================================== the pasted URL


async def test_a_login_from_a_pasted_url_connects_and_still_refreshes_after_30_minutes(fake, tmp_path):
    broker = make_broker(fake, tmp_path)
    pasted = await log_in(fake, broker)
    assert "%40" in pasted  # the code's trailing "@" as the browser shows it
    exchange = fake.token_requests[0]
    assert exchange["grant_type"] == "authorization_code" and exchange["code"].endswith("@")  # decoded once
    assert "client_secret" not in exchange  # the app's secret went as HTTP Basic
    path = broker.store.path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    await broker.connect()
    try:
        assert broker.connection_state is ConnectionState.CONNECTED
        assert {a.id for a in await broker.accounts()} == {MARGIN, CASH}
        status = broker.status()
        assert status.auth_needs_person and status.auth_label == "login"
        assert status.auth_expires_at == NOW + timedelta(days=7)  # counted from the browser login
        first = broker.store.load()
        assert first is not None
        # schwab-py #222: half an hour later the access token has lapsed; the refresh token carries on.
        fake.clock.advance(timedelta(minutes=31))
        assert not fake.access_token_valid(first.value)
        rows = await broker.rest.account_numbers()
        assert len(rows) == 2 and _refreshes(fake) >= 1
        fresh = broker.store.load()
        assert fresh is not None and fresh.value != first.value and fake.access_token_valid(fresh.value)
        assert broker.connection_state is ConnectionState.CONNECTED
    finally:
        await broker.close()


async def test_a_restart_hours_later_refreshes_the_stored_login_instead_of_asking_for_one(fake, tmp_path):
    first = make_broker(fake, tmp_path)
    await log_in(fake, first)
    await first.close()
    fake.clock.advance(timedelta(hours=3))
    again = make_broker(fake, tmp_path)
    await again.connect()
    try:
        assert again.connection_state is ConnectionState.CONNECTED
        assert _refreshes(fake) == 1
    finally:
        await again.close()


async def test_the_access_token_is_refreshed_before_it_expires(fake, tmp_path):
    broker = make_broker(fake, tmp_path)
    await log_in(fake, broker)
    await broker.connect()
    try:
        held = broker.store.load()
        assert held is not None
        fake.clock.advance(timedelta(minutes=20))
        await asyncio.sleep(0.05)
        assert _refreshes(fake) == 0  # 10 minutes left: not yet (the leeway is 5)
        fake.clock.advance(timedelta(minutes=5, seconds=30))  # 4.5 minutes left
        await until(lambda: _refreshes(fake) == 1, "the background refresh")
        renewed = broker.store.load()
        assert renewed is not None and renewed.value != held.value
        assert fake.access_token_valid(held.value)  # refreshed ahead: the old one had not lapsed yet
        assert renewed.expires_at == fake.clock.now() + timedelta(minutes=30)
    finally:
        await broker.close()


# =========================================================================== the 7 days


async def test_an_expired_refresh_token_means_log_in_again_once_and_nothing_more_is_sent(fake, tmp_path):
    broker = make_broker(fake, tmp_path)
    await log_in(fake, broker)
    await broker.connect()
    try:
        _events(broker)
        fake.clock.advance(timedelta(days=7, minutes=1))
        await until(lambda: broker.connection_state is ConnectionState.NEEDS_LOGIN, "NEEDS_LOGIN")
        assert broker.status().detail == "log in again: tterm login sw"
        await asyncio.sleep(0.3)  # several poll intervals: nothing may be asked of Schwab now
        asked = len(fake.requests)
        await asyncio.sleep(0.3)
        assert len(fake.requests) == asked
        notices = [e for e in _events(broker) if isinstance(e, Notice)]
        assert len(notices) == 1 and notices[0].level == "error"
        assert "log in again: tterm login sw" in notices[0].text
        req = OrderRequest(account=MARGIN, symbol="AAPL", side=Side.BUY, quantity=1, source=OrderSource.TICKET)
        refused = await broker.place(req)
        assert refused.status is OrderStatus.REJECTED and "log in again: tterm login sw" in refused.reject_reason
        assert not fake.order_bodies and len(fake.requests) == asked

        # A new browser login (tterm login in another shell writes the same token file): picked up.
        await log_in(fake, make_broker(fake, tmp_path))
        await until(lambda: broker.connection_state is ConnectionState.CONNECTED, "the reconnect after the login")
        assert broker.status().auth_expires_at == fake.clock.now() + timedelta(days=7)
    finally:
        await broker.close()


async def test_without_a_login_the_broker_waits_in_needs_login_and_connects_when_one_arrives(fake, tmp_path):
    broker = make_broker(fake, tmp_path)
    await broker.connect()  # no tokens: up, but waiting for a person
    try:
        assert broker.connection_state is ConnectionState.NEEDS_LOGIN
        assert broker.status().detail == "log in again: tterm login sw"
        assert await broker.accounts() == [] and not fake.requests
        await log_in(fake, broker)  # the terminal's login dialog uses this broker's own flow
        await until(lambda: broker.connection_state is ConnectionState.CONNECTED, "CONNECTED")
        assert {a.id for a in await broker.accounts()} == {MARGIN, CASH}
    finally:
        await broker.close()


# =========================================================================== bad pastes


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda u: re.sub(r"state=[^&]+", "state=forged", u), "different state"),
        (lambda u: re.sub(r"code=[^&]+&?", "", u), "has no code"),
        (lambda u: re.sub(r"&?state=[^&]+", "", u), "has no state"),
        (lambda u: u.replace("127.0.0.1:8182", "127.0.0.1:9999"), "not to the redirect address"),
    ],
)
async def test_a_bad_paste_is_refused_with_the_reason_and_nothing_is_sent(fake, tmp_path, tamper, reason):
    broker = make_broker(fake, tmp_path)
    flow = broker.login_flow()
    prompt = flow.start()
    pasted = await fake.browse(prompt.url)
    with pytest.raises(LoginError, match=reason):
        await flow.complete(prompt, tamper(pasted))
    assert fake.token_requests == [] and broker.store.load() is None
    await broker.close()


# =========================================================================== two processes


async def test_two_processes_on_one_token_file_refresh_once_and_both_keep_working(tmp_path):
    fake = await start_fake(FakeClock(NOW), rotate_refresh_tokens=True)  # a second refresh would lock one out
    try:
        broker = make_broker(fake, tmp_path)
        await log_in(fake, broker)
        await broker.close()
        stored = broker.store.load()
        assert stored is not None
        # Both processes find the access token lapsed (by their own clocks) at the same moment.
        from datetime import UTC, datetime

        now = datetime.now(UTC)
        lapsed = Token(
            value=stored.value,
            expires_at=now - timedelta(minutes=1),
            issued_at=now - timedelta(minutes=31),
            extra=dict(stored.extra),
        )
        await broker.store.save(lapsed)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        args = [str(tmp_path), fake.base_url, fake.app_key, fake.app_secret]
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.fakes.schwab_token_worker",
                *args,
                cwd=REPO,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for _ in range(2)
        ]
        outs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 30)
        results = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outs]
        assert all(r["ok"] for r in results), [
            (r, err.decode()[-500:]) for r, (_, err) in zip(results, outs, strict=True)
        ]
        assert _refreshes(fake) == 1  # one refreshed, the other adopted the new token under the lock
        assert results[0]["token"] == results[1]["token"] and fake.access_token_valid(results[0]["token"])
        assert sorted(r["how"] for r in results) == ["adopted", "refreshed"]
    finally:
        await fake.stop()


# =========================================================================== tterm login (the command)


class Person:
    """stdin for ``tterm login``: reads the address tterm printed, approves it in a "browser" and
    pastes where the browser went (``tamper`` changes it first)."""

    def __init__(self, out: Any, tamper: Any = None) -> None:
        self.out = out
        self.tamper = tamper

    def readline(self, *_: Any) -> str:
        from tests.fakes.oauth import browser_approves

        url = re.search(r"^\s+(http\S+/v1/oauth/authorize\?\S+)$", self.out.getvalue(), re.M)
        assert url is not None, self.out.getvalue()
        pasted = browser_approves(url.group(1))
        return (self.tamper(pasted) if self.tamper else pasted) + "\n"


def test_tterm_login_schwab_over_ssh_prints_the_url_and_takes_the_pasted_address(tmp_path, monkeypatch, capsys):
    import io

    from tests.fakes.oauth import ServerThread
    from tests.fakes.schwab import FakeSchwab
    from tterm import cli
    from tterm.brokers.common.token_store import TokenStore, token_path

    fake = FakeSchwab(clock=FakeClock(NOW))
    with ServerThread(fake):  # type: ignore[arg-type]
        monkeypatch.setenv("TTERM_CONFIG_DIR", str(tmp_path / "conf"))
        monkeypatch.setenv("TTERM_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("TTERM_SW_APP_KEY", fake.app_key)
        monkeypatch.setenv("TTERM_SW_APP_SECRET", fake.app_secret)
        monkeypatch.setenv("COLORTERM", "truecolor")
        conf = tmp_path / "conf" / "config.toml"
        conf.parent.mkdir(parents=True)
        conf.write_text(
            f'[brokers.sw]\ntype = "schwab"\nenabled = true\nenvironment = "live"\n'
            f'options = {{ api_url = "{fake.base_url}", callback_url = "https://127.0.0.1:8182" }}\n'
        )
        assert cli.main(["doctor"]) == 1
        assert "broker 'sw' needs a browser login and has none\n    fix: tterm login sw" in capsys.readouterr().out
        out = io.StringIO()
        monkeypatch.setattr("sys.stdout", out)
        monkeypatch.setattr("sys.stdin", Person(out))
        assert cli.main(["login", "sw"]) == 0
        text = out.getvalue()
        assert "Log in to Schwab (sw)." in text and "The browser is then sent to https://127.0.0.1:8182" in text
        assert "sw: logged in to Schwab; the login lasts until" in text
        store = TokenStore(token_path(tmp_path / "data", "sw"), owner=f"{fake.app_key}@{fake.base_url}")
        stored = store.load()
        assert stored is not None and fake.access_token_valid(stored.value)
        assert fake.app_secret not in text and stored.value not in text
        assert str(stored.extra["refresh_token"]) not in text
        monkeypatch.setattr("sys.stdout", io.StringIO())
        assert cli.main(["doctor"]) == 0

        # Another attempt's address: refused with the reason, exit 1, the stored login untouched.
        out2 = io.StringIO()
        monkeypatch.setattr("sys.stdout", out2)
        monkeypatch.setattr("sys.stdin", Person(out2, lambda u: re.sub(r"state=[^&]+", "state=other", u)))
        asked = len(fake.token_requests)
        assert cli.main(["login", "sw"]) == 1
        err = capsys.readouterr().err
        assert "login refused: the address carries a different state" in err
        assert store.load() == stored and len(fake.token_requests) == asked


async def test_schwab_unreachable_at_start_comes_up_reconnecting_and_the_engine_adopts_it_later(fake, tmp_path):
    from tterm.core.clock import CmeClock, default_calendar
    from tterm.core.engine import Engine
    from tterm.core.instruments import InstrumentMaster
    from tterm.core.journal import Journal

    master = InstrumentMaster(today=lambda: fake.clock.now().date())
    broker = make_broker(fake, tmp_path, master=master)
    await log_in(fake, broker)
    fake.drop_next("/trader/v1/accounts/accountNumbers", times=3)  # every try of the first connect
    engine = Engine(
        brokers=[broker],
        instruments=master,
        journal=Journal(tmp_path / "j.sqlite3"),
        clock=CmeClock(default_calendar(), now=lambda: NOW),
    )
    await engine.start()
    try:
        assert engine.account_ids() == []  # not up yet, but not given up on
        await until(lambda: broker.connection_state is ConnectionState.CONNECTED, "the retry")
        await until(lambda: set(engine.account_ids()) == {MARGIN, CASH}, "the accounts to join the engine")
        assert engine.balance(MARGIN) is not None
    finally:
        await engine.stop()


async def test_a_restart_after_the_seven_days_asks_schwab_once_then_waits_for_a_login(fake, tmp_path):
    first = make_broker(fake, tmp_path)
    await log_in(fake, first)
    await first.close()
    fake.clock.advance(timedelta(days=8))
    again = make_broker(fake, tmp_path)
    await again.connect()
    try:
        assert again.connection_state is ConnectionState.NEEDS_LOGIN
        assert again.status().detail == "log in again: tterm login sw"
        await asyncio.sleep(0.3)  # several looks at the token file: the dead login is not tried again
        assert _refreshes(fake) == 1 and not [r for r in fake.requests if not r[1].startswith("/v1/oauth")]
    finally:
        await again.close()

"""Tastytrade login: the OAuth grant minted into 15-minute access tokens through the token store,
renewed ahead of expiry, a User-Agent on every request, a refused grant, and no secret anywhere.
Real loopback sockets against the strict fake."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import httpx
import pytest

from tests.integration.tastytrade_support import CASH, MARGIN, make_broker, start_engine, start_fake, until
from tterm.brokers.common.settings import BrokerConfigError
from tterm.brokers.registry import adapter
from tterm.brokers.tastytrade.config import HOSTS, TastytradeSettings
from tterm.core.broker import LoginRequired
from tterm.core.models import ConnectionState, ConnectionStatus, Notice, OrderRequest, OrderSource, Side, Timeframe


@pytest.fixture
async def fake():
    f = await start_fake()
    yield f
    await f.stop()


async def test_connect_mints_a_token_from_the_grant_as_json_and_loads_both_accounts(fake, tmp_path):
    broker = make_broker(fake, tmp_path)
    await broker.connect()
    try:
        assert broker.connection_state is ConnectionState.CONNECTED
        assert fake.refreshes == 1
        ctype, body = fake.token_requests[0]
        assert ctype == "application/json"
        assert body["grant_type"] == "refresh_token"
        assert body["client_secret"] == fake.client_secret and body["refresh_token"] == fake.refresh_token
        assert {a.id for a in await broker.accounts()} == {MARGIN, CASH}
        assert broker.auth_expires_at == fake.clock.now() + timedelta(seconds=900)
        assert fake.streamer_connected("5WT00001") and fake.streamer_connected("5WT00002")
        stored = broker.store.load()
        assert stored is not None and fake.valid_access_token(stored.value)
    finally:
        await broker.close()


async def test_the_access_token_is_renewed_before_its_15_minutes_and_used_everywhere(fake, tmp_path):
    broker = make_broker(fake, tmp_path)
    await broker.connect()
    try:
        first = broker.store.load()
        assert first is not None
        fake.clock.advance(timedelta(minutes=10))
        await asyncio.sleep(0.05)
        assert fake.refreshes == 1  # 5 minutes left: not yet (renewed 90 s ahead)
        await fake.clock.wait_for_sleeper()
        fake.clock.advance(timedelta(minutes=3, seconds=40))  # 80 s left
        await until(lambda: fake.refreshes == 2, "the renewal ahead of expiry")
        renewed = broker.store.load()
        assert renewed is not None and renewed.value != first.value
        assert fake.valid_access_token(first.value)  # renewed ahead: the old one still worked
        fake.clock.advance(timedelta(seconds=90))  # the first token is dead now
        assert not fake.valid_access_token(first.value)
        before = fake.rejected["expired-token"]
        await broker.sync.resync()  # REST with the renewed token
        assert fake.rejected["expired-token"] == before
        # The account streamer's heartbeats carry the token valid now.
        count = len(fake.streamer_sessions[0].received)
        await until(lambda: len(fake.streamer_sessions[0].received) > count, "a heartbeat")
        assert fake.streamer_sessions[0].received[-1]["auth-token"] == f"Bearer {renewed.value}"
    finally:
        await broker.close()


async def test_an_access_token_refused_mid_session_is_replaced_once_and_the_request_succeeds(fake, tmp_path):
    broker = make_broker(fake, tmp_path)
    await broker.connect()
    try:
        fake.expire_tokens()
        await broker.sync.resync()
        assert fake.rejected["expired-token"] >= 1 and fake.refreshes == 2
    finally:
        await broker.close()


async def test_a_restart_adopts_the_stored_token_instead_of_minting_another(fake, tmp_path):
    first = make_broker(fake, tmp_path)
    await first.connect()
    await first.close()
    second = make_broker(fake, tmp_path)
    await second.connect()
    try:
        assert fake.refreshes == 1
        assert second.connection_state is ConnectionState.CONNECTED
    finally:
        await second.close()


async def test_every_request_carries_the_user_agent_and_the_fake_refuses_one_without(fake, tmp_path):
    broker = make_broker(fake, tmp_path, user_agent="tterm-test/2.5", environment="live", api_version="20251101")
    await broker.connect()
    try:
        await broker.option_chain("AAPL")
        await broker.bars("MESZ6", Timeframe.M5, fake.clock.now() - timedelta(hours=1))
        assert fake.rejected["version"] == 0  # the pinned version was served
        # The websocket upgrades say who is calling too.
        assert fake.streamer_sessions[0].request.headers["User-Agent"] == "tterm-test/2.5"
        assert fake.dxlink.sessions[0].request.headers["User-Agent"] == "tterm-test/2.5"
    finally:
        await broker.close()
    assert fake.requests and {ua for _, _, ua in fake.requests} == {"tterm-test/2.5"}
    assert fake.rejected["user-agent"] == 0
    async with httpx.AsyncClient() as http:  # a client that sends no User-Agent at all
        resp = await http.get(f"{fake.api_url}/customers/me", headers={"User-Agent": ""})
        token = await http.post(f"{fake.api_url}/oauth/token", json={}, headers={"User-Agent": ""})
    assert resp.status_code == 401 and token.status_code == 401
    assert fake.rejected["user-agent"] == 2


def test_a_user_agent_not_of_the_form_product_version_is_refused_in_the_config():
    spec = adapter("tastytrade")
    assert spec.option_problems({"environment": "live", "user_agent": "tterm"})
    with pytest.raises(BrokerConfigError, match="user_agent"):
        TastytradeSettings.from_options({"environment": "live", "user_agent": "tterm 1.0"}, broker="tt")


def test_production_and_the_sandbox_are_chosen_by_the_environment():
    live = TastytradeSettings.from_options({"environment": "live"}, broker="tt")
    demo = TastytradeSettings.from_options({"environment": "demo"}, broker="tt")
    assert (live.rest_url, live.account_streamer_url) == (HOSTS["live"]["api"], HOSTS["live"]["streamer"])
    assert demo.rest_url == "https://api.cert.tastyworks.com"
    assert demo.account_streamer_url == "wss://streamer.cert.tastyworks.com"
    assert live.is_live and not demo.is_live
    assert adapter("tastytrade").credentials.missing({"client_secret": "x"}) == ["refresh_token"]
    assert TastytradeSettings.from_options({"environment": "live", "api_version": "20251101"}, broker="tt")
    with pytest.raises(BrokerConfigError, match="sandbox"):
        TastytradeSettings.from_options({"environment": "demo", "api_version": "20251101"}, broker="tt")
    with pytest.raises(BrokerConfigError, match="YYYYMMDD"):
        TastytradeSettings.from_options({"environment": "live", "api_version": "2025-11-01"}, broker="tt")


async def test_a_refused_grant_is_down_with_one_notice_saying_what_to_do_and_nothing_else_is_sent(fake, tmp_path):
    broker = make_broker(fake, tmp_path, secrets=fake.secrets(refresh_token="a-revoked-grant-0000"))
    events = []
    await broker.connect()
    try:
        while broker.pending_events:
            events.append(await anext(broker.events()))
        assert broker.connection_state is ConnectionState.DOWN and "create a new grant" in broker.status().detail
        notices = [e for e in events if isinstance(e, Notice)]
        assert len(notices) == 1 and "create a new grant" in notices[0].text
        assert "invalid_grant" in notices[0].text
        api = [r for r in fake.requests if r[1] != "/oauth/token"]
        assert api == []  # nothing but the one refused mint
        order = await broker.place(
            OrderRequest(account=MARGIN, symbol="MESZ6", side=Side.BUY, quantity=1, source=OrderSource.TICKET)
        )
        assert order.status.value == "rejected" and "grant" in order.reject_reason
    finally:
        await broker.close()


async def test_no_secret_reaches_the_log_the_journal_or_what_the_screen_shows(fake, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    broker = make_broker(fake, tmp_path)
    run = await start_engine(broker, broker.master, tmp_path)
    try:
        await run.engine.watch(["MESZ6", "AAPL"])
        fake.set_quote("AAPL", bid="230.00", ask="230.02", last="230.01")
        await run.until(lambda: run.engine.quote("AAPL") is not None, "a quote")
        await run.engine.option_chain("AAPL")
        fake.expire_tokens(quote_tokens=True)
        await fake.drop()
        await run.until(
            lambda: any(isinstance(e, ConnectionStatus) and e.state is not ConnectionState.CONNECTED for e in run.seen),
            "the drop",
        )
        await run.until(lambda: broker.connection_state is ConnectionState.CONNECTED, "the reconnect", within=10)
        order = await run.engine.place(
            OrderRequest(account=MARGIN, symbol="MESZ6", side=Side.BUY, quantity=1, source=OrderSource.TICKET)
        )
        assert order.status.value != "rejected", order.reject_reason
        await run.until(lambda: run.engine.position(MARGIN, "MESZ6").quantity == 1, "the fill")
    finally:
        await run.engine.stop()
    secrets = [fake.client_secret, fake.refresh_token, *fake.access_tokens, *fake.quote_tokens]
    assert len(secrets) > 4
    journal = b"".join(p.read_bytes() for p in tmp_path.glob("journal.sqlite3*"))
    shown = " ".join(str(e) for e in run.seen)  # every event a terminal draws from
    for secret in secrets:
        assert secret not in caplog.text
        assert secret.encode() not in journal
        assert secret not in shown


async def test_a_grant_revoked_mid_session_stops_everything_once_and_says_what_to_do(fake, tmp_path):
    broker = make_broker(fake, tmp_path)
    await broker.connect()
    try:
        fake.refresh_token = "a-new-grant-the-user-has-not-entered"  # the old grant was revoked
        fake.expire_tokens()
        with pytest.raises(LoginRequired):
            await broker.sync.resync()
        await until(lambda: broker.connection_state is ConnectionState.DOWN, "down")
        events = []
        while broker.pending_events:
            events.append(await anext(broker.events()))
        assert len([e for e in events if isinstance(e, Notice) and "create a new grant" in e.text]) == 1
        mints = fake.refreshes + fake.rejected["oauth:invalid_grant"]
        await asyncio.sleep(0.3)
        assert fake.refreshes + fake.rejected["oauth:invalid_grant"] == mints  # nothing more is asked
        assert not fake.streamer_sessions and not fake.dxlink.sessions
    finally:
        await broker.close()


async def test_two_processes_on_one_data_dir_share_one_access_token(fake, tmp_path):
    from tterm.core.instruments import InstrumentMaster

    one = make_broker(fake, tmp_path, master=InstrumentMaster(today=lambda: fake.clock.now().date()))
    two = make_broker(fake, tmp_path, master=InstrumentMaster(today=lambda: fake.clock.now().date()))
    await asyncio.gather(one.connect(), two.connect())
    try:
        assert fake.refreshes == 1  # the second waited on the store's lock and adopted the first's token
        assert one.tokens is not None and two.tokens is not None
        assert one.tokens.token.value == two.tokens.token.value  # type: ignore[union-attr]
        first = one.tokens.token
        await fake.clock.wait_for_sleeper()
        fake.clock.advance(timedelta(minutes=14))  # both renewal loops are due: one mints, the other adopts
        await until(
            lambda: one.tokens.token != first and two.tokens.token != first,  # type: ignore[union-attr]
            "both renewed",
        )
        await asyncio.sleep(0.1)
        assert fake.refreshes == 2
        assert one.tokens.token.value == two.tokens.token.value  # type: ignore[union-attr]
    finally:
        await one.close()
        await two.close()

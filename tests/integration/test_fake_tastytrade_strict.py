"""The fake Tastytrade server's strictness, with raw clients (httpx, aiohttp, websockets).

What the tastytrade SDK never trips (test_fake_tastytrade.py proves the happy paths with it): a
missing or malformed User-Agent, bad and expired tokens and grants, the decommissioned
``/sessions`` login, Accept-Version, 429s and slow answers, order bodies, the account
streamer's acks, and DXLink's handshake order, COMPACT field order, keepalive timeout, silence
and drops. Every server is a real loopback socket started by the test.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import httpx
import pytest
import websockets

from tests.fakes import FakeClock
from tests.fakes.tastytrade import FakeTastytrade

MARGIN = "5WT00001"
UA = {"User-Agent": "tterm-tests/0.1"}


@pytest.fixture
async def fake():
    server = FakeTastytrade(clock=FakeClock())
    await server.start()
    yield server
    await server.stop()


async def token(fake: FakeTastytrade) -> str:
    async with httpx.AsyncClient(base_url=fake.api_url, headers=UA) as client:
        r = await client.post("/oauth/token", json={"grant_type": "refresh_token", **fake.secrets()})
    return str(r.json()["access_token"])


# =========================================================================== raw: REST strictness


async def test_missing_or_malformed_user_agent_is_401(fake):
    async with aiohttp.ClientSession(skip_auto_headers=["User-Agent"]) as http:
        async with http.post(
            f"{fake.api_url}/oauth/token",
            json={
                "grant_type": "refresh_token",
                "client_secret": fake.client_secret,
                "refresh_token": fake.refresh_token,
            },
        ) as r:
            assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"
        async with http.get(f"{fake.api_url}/customers/me", headers={"User-Agent": "tterm"}) as r:
            assert r.status == 401 and "User-Agent" in (await r.json())["error"]["message"]
    assert fake.rejected["user-agent"] == 2 and fake.refreshes == 0


async def test_token_endpoint_takes_json_or_form_and_tokens_live_15_minutes(fake):
    async with httpx.AsyncClient(base_url=fake.api_url, headers=UA) as client:
        form = await client.post(
            "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "client_secret": fake.client_secret,
                "refresh_token": fake.refresh_token,
                "client_id": fake.client_id,
                "scope": "read trade",
            },
        )
        assert form.status_code == 200 and form.json()["expires_in"] == 900
        assert fake.token_requests[-1][0] == "application/x-www-form-urlencoded"
        access = form.json()["access_token"]
        bearer = {"Authorization": f"Bearer {access}"}
        assert (await client.get("/customers/me/accounts", headers=bearer)).status_code == 200
        raw = await client.get("/customers/me/accounts", headers={"Authorization": access})
        assert raw.status_code == 401  # the legacy raw session-token header is not accepted
        fake.clock.advance(899)
        assert (await client.get("/customers/me/accounts", headers=bearer)).status_code == 200
        fake.clock.advance(1)
        expired = await client.get("/customers/me/accounts", headers=bearer)
        assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]
        bad = await client.post(
            "/oauth/token",
            json={"grant_type": "refresh_token", "client_secret": fake.client_secret, "refresh_token": "nope"},
        )
        assert bad.status_code == 400 and bad.json() == {
            "error_code": "invalid_grant",
            "error_description": "Invalid JWT",
        }
        wrong_client = await client.post(
            "/oauth/token", data={"grant_type": "refresh_token", "client_secret": fake.client_secret, "client_id": "x"}
        )
        assert wrong_client.status_code == 401 and wrong_client.json()["error_code"] == "invalid_client"
        legacy = await client.post("/sessions", json={"login": "me", "password": "pw", "remember-me": True})
        assert legacy.status_code == 410 and legacy.json()["error"]["code"] == "sessions_decommissioned"
        assert (await client.get("/customers/me", headers={"Authorization": "Bearer forged"})).status_code == 401


async def test_envelopes_versions_errors_and_429(fake):
    access = await token(fake)
    headers = {**UA, "Authorization": f"Bearer {access}"}
    async with httpx.AsyncClient(base_url=fake.api_url, headers=headers) as client:
        accounts_body = (await client.get("/customers/me/accounts")).json()
        assert accounts_body["context"] == "/customers/me/accounts"
        assert accounts_body["data"]["items"][0]["authority-level"] == "owner"
        balance = (await client.get(f"/accounts/{MARGIN}/balances")).json()["data"]
        assert balance["cash-balance"] == "100000.0" and balance["pending-cash-effect"] == "None"
        old = await client.get("/customers/me", headers={"Accept-Version": "20240101"})
        assert old.status_code == 406 and old.json()["error"]["code"] == 406
        newer = await client.get(f"/accounts/{MARGIN}/orders", headers={"Accept-Version": "20261012"})
        assert newer.status_code == 400 and "start-date" in newer.json()["error"]["message"]
        dated = await client.get(
            f"/accounts/{MARGIN}/orders", params={"start-date": "2026-11-24"}, headers={"Accept-Version": "20261012"}
        )
        assert dated.status_code == 200 and dated.json()["pagination"]["total-items"] == 0
        foreign = await client.get("/accounts/9ZZ99999/balances")
        assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "not_permitted"
        assert (await client.get("/instruments/equity-options", params={"symbol[]": "x"})).status_code == 404
        futures = await client.get("/instruments/futures/%2FESZ6")
        assert futures.json()["data"]["streamer-symbol"] == "/ESZ26:XCME"
        by_type = await client.get("/market-data/by-type", params={"equity": "SPY,AAPL", "future[]": "/ESZ6"})
        assert [i["symbol"] for i in by_type.json()["data"]["items"]] == ["SPY", "AAPL", "/ESZ6"]

        fake.fail_429("/accounts", times=1)
        throttled = await client.get(f"/accounts/{MARGIN}/positions")
        assert throttled.status_code == 429 and "retry-after" not in throttled.headers
        assert (await client.get(f"/accounts/{MARGIN}/positions")).status_code == 200
        fake.slow("/customers/me", 0.5)
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/customers/me", timeout=0.1)
        assert (await client.get("/customers/me", timeout=2)).status_code == 200  # only the next one was slow
        fake.expire_tokens()
        assert (await client.get("/customers/me")).status_code == 401
        client.headers["Authorization"] = f"Bearer {await token(fake)}"
        fake.rate_limit = (3, 1.0)
        codes = [(await client.get("/customers/me")).status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        fake.clock.advance(1)
        assert (await client.get("/customers/me")).status_code == 200


async def test_order_bodies_are_checked_like_the_vendor(fake):
    access = await token(fake)
    headers = {**UA, "Authorization": f"Bearer {access}"}
    leg = {"instrument-type": "Equity", "symbol": "SPY", "quantity": 1, "action": "Buy to Open"}
    good = {"time-in-force": "Day", "order-type": "Limit", "price": "600.01", "price-effect": "Debit", "legs": [leg]}
    async with httpx.AsyncClient(base_url=fake.api_url, headers=headers) as client:
        url = f"/accounts/{MARGIN}/orders"

        async def post(body: dict[str, Any], path: str = url) -> httpx.Response:
            return await client.post(path, json=body)

        no_effect = await post({k: v for k, v in good.items() if k != "price-effect"})
        assert no_effect.status_code == 400 and no_effect.json()["error"]["code"] == "validation_error"
        assert (await post({**good, "orderType": "Limit"})).status_code == 400  # camelCase keys are wrong keys
        assert (await post({**good, "price": "-600.01"})).status_code == 400  # price is always positive
        off_tick = await post({**good, "price": "600.015"})
        assert (
            off_tick.status_code == 422 and off_tick.json()["error"]["errors"][0]["code"] == "invalid_price_increment"
        )
        two_legs = await post({**good, "legs": [leg, {**leg, "symbol": "AAPL"}]})
        assert two_legs.status_code == 422
        futures_word = await post({**good, "legs": [{**leg, "action": "Buy"}]})
        assert futures_word.status_code == 422 and "Buy to Open" in futures_word.json()["error"]["message"]
        too_big = await post({**good, "legs": [{**leg, "quantity": 1000}]})
        assert too_big.status_code == 422
        assert too_big.json()["error"]["errors"][0]["code"] == "insufficient_buying_power"
        dry_big = await post({**good, "legs": [{**leg, "quantity": 1000}]}, f"{url}/dry-run")
        assert dry_big.status_code == 201 and dry_big.json()["data"]["errors"][0]["code"] == "insufficient_buying_power"
        dry = await post(good, f"{url}/dry-run")
        assert dry.status_code == 201
        data = dry.json()["data"]
        assert "id" not in data["order"] and data["order"]["updated-at"] == 0
        assert set(data) >= {"order", "buying-power-effect", "fee-calculation", "warnings"}
        placed = await post({**good, "external-identifier": "tterm-1"})
        assert placed.status_code == 201 and placed.json()["data"]["order"]["status"] == "Routed"
        order_id = placed.json()["data"]["order"]["id"]
        assert isinstance(order_id, int)
        fetched = (await client.get(f"{url}/{order_id}")).json()["data"]
        assert fetched["external-identifier"] == "tterm-1" and fetched["status"] == "Filled"
        assert fetched["legs"][0]["fills"][0]["fill-price"] == "600.01"
        assert fake.book.orders[order_id].legs[0].remaining == 0


# =========================================================================== raw: account streamer


async def test_account_streamer_acks_and_connect_first(fake):
    access = await token(fake)
    async with websockets.connect(fake.streamer_url) as ws:

        async def send(action: str, rid: int, **extra: Any) -> dict[str, Any]:
            await ws.send(json.dumps({"action": action, "auth-token": f"Bearer {access}", "request-id": rid, **extra}))
            return json.loads(await asyncio.wait_for(ws.recv(), 2))

        early = await send("quote-alerts-subscribe", 1)
        assert (early["status"], early["message"]) == ("error", "connect-not-completed")
        beat = await send("heartbeat", 2)
        assert beat["status"] == "ok" and beat["request-id"] == 2
        connected = await send("connect", 3, value=[MARGIN])
        assert connected == {
            "status": "ok",
            "action": "connect",
            "web-socket-session-id": connected["web-socket-session-id"],
            "value": [MARGIN],
            "request-id": 3,
        }
        assert (await send("quote-alerts-subscribe", 4))["status"] == "ok"
        fake.expire_tokens()
        stale = await send("heartbeat", 5)
        assert stale["status"] == "error" and stale["message"] == "invalid-auth-token"


async def test_account_streamer_batches_and_drops(fake):
    access = await token(fake)
    fake.batch_notifications = True
    async with websockets.connect(fake.streamer_url) as ws:
        await ws.send(
            json.dumps({"action": "connect", "value": MARGIN, "auth-token": f"Bearer {access}", "request-id": 1})
        )
        assert json.loads(await ws.recv())["status"] == "ok"
        fake.set_quote("SPY", bid="599.98")  # nothing of this account changed: no notification
        leg = {"instrument-type": "Equity", "symbol": "SPY", "quantity": 1, "action": "Buy to Open"}
        async with httpx.AsyncClient(base_url=fake.api_url, headers={**UA, "Authorization": f"Bearer {access}"}) as c:
            r = await c.post(
                f"/accounts/{MARGIN}/orders", json={"time-in-force": "Day", "order-type": "Market", "legs": [leg]}
            )
            assert r.status_code == 201
        kinds = []
        while len(kinds) < 5:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 2))
            kinds.extend(m["type"] for m in frame["results"])
        assert kinds == ["Order", "Order", "Order", "CurrentPosition", "AccountBalance"]
        await fake.drop("streamer")
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 2)


# =========================================================================== raw: DXLink


async def dx_connect(fake: FakeTastytrade) -> tuple[Any, str]:
    access = await token(fake)
    async with httpx.AsyncClient(base_url=fake.api_url, headers={**UA, "Authorization": f"Bearer {access}"}) as c:
        data = (await c.get("/api-quote-tokens")).json()["data"]
    assert data["dxlink-url"] == fake.dxlink_url and data["level"] == "api"
    return await websockets.connect(data["dxlink-url"]), data["token"]


async def recv(ws: Any, within: float = 2.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), within))


async def handshake(ws: Any, quote_token: str, *, keepalive: float = 60) -> None:
    await ws.send(json.dumps({"type": "SETUP", "channel": 0, "version": "0.1-test", "keepaliveTimeout": keepalive}))
    assert (await recv(ws))["type"] == "SETUP"
    assert (await recv(ws)) == {"type": "AUTH_STATE", "channel": 0, "state": "UNAUTHORIZED"}
    await ws.send(json.dumps({"type": "AUTH", "channel": 0, "token": quote_token}))
    assert (await recv(ws))["state"] == "AUTHORIZED"


async def closes_with(ws: Any, error: str) -> dict[str, Any]:
    message = await recv(ws)
    assert message["type"] == "ERROR" and message["error"] == error, message
    with pytest.raises(websockets.ConnectionClosed):
        await recv(ws)
    return message


async def test_dxlink_handshake_order_is_enforced(fake):
    ws, quote_token = await dx_connect(fake)
    await ws.send(json.dumps({"type": "AUTH", "channel": 0, "token": quote_token}))
    await closes_with(ws, "BAD_ACTION")  # AUTH before SETUP

    ws, quote_token = await dx_connect(fake)
    await ws.send(json.dumps({"type": "SETUP", "channel": 0, "version": "0.1-test", "keepaliveTimeout": 60}))
    await recv(ws), await recv(ws)
    await ws.send(json.dumps({"type": "CHANNEL_REQUEST", "channel": 1, "service": "FEED", "parameters": {}}))
    await closes_with(ws, "UNAUTHORIZED")  # a channel before AUTHORIZED

    ws, _ = await dx_connect(fake)
    await ws.send(json.dumps({"type": "SETUP", "channel": 0, "version": "0.1-test", "keepaliveTimeout": 60}))
    await recv(ws), await recv(ws)
    await ws.send(json.dumps({"type": "AUTH", "channel": 0, "token": "forged"}))
    await closes_with(ws, "UNAUTHORIZED")

    ws, quote_token = await dx_connect(fake)
    await handshake(ws, quote_token)
    await ws.send(json.dumps({"type": "CHANNEL_REQUEST", "channel": 2, "service": "FEED", "parameters": {}}))
    await closes_with(ws, "BAD_ACTION")  # channel numbers are odd

    ws, quote_token = await dx_connect(fake)
    await handshake(ws, quote_token)
    await ws.send(json.dumps({"type": "CHANNEL_REQUEST", "channel": 3, "service": "FEED", "parameters": {}}))
    assert (await recv(ws))["type"] == "CHANNEL_OPENED"
    await ws.send(json.dumps({"type": "FEED_SUBSCRIPTION", "channel": 3, "add": [{"type": "Quote", "symbol": "SPY"}]}))
    await closes_with(ws, "BAD_ACTION")  # FEED_SUBSCRIPTION before FEED_SETUP


async def test_dxlink_compact_fields_follow_feed_setup(fake):
    ws, quote_token = await dx_connect(fake)
    async with ws:
        await handshake(ws, quote_token)
        await ws.send(
            json.dumps({"type": "CHANNEL_REQUEST", "channel": 7, "service": "FEED", "parameters": {"contract": "AUTO"}})
        )
        assert (await recv(ws))["channel"] == 7
        fields = ["askPrice", "eventSymbol", "noSuchField", "bidPrice", "eventType"]
        await ws.send(
            json.dumps(
                {
                    "type": "FEED_SETUP",
                    "channel": 7,
                    "acceptAggregationPeriod": 0.1,
                    "acceptDataFormat": "COMPACT",
                    "acceptEventFields": {"Quote": fields},
                }
            )
        )
        config = await recv(ws)
        assert config["type"] == "FEED_CONFIG" and config["dataFormat"] == "COMPACT"
        assert config["eventFields"] == {"Quote": ["askPrice", "eventSymbol", "bidPrice", "eventType"]}
        add = [{"type": "Quote", "symbol": "AAPL"}, {"type": "Quote", "symbol": "/MESZ26:XCME"}]
        await ws.send(json.dumps({"type": "FEED_SUBSCRIPTION", "channel": 7, "add": add}))
        first, second = await recv(ws), await recv(ws)
        assert first["data"] == ["Quote", [230.01, "AAPL", 229.99, "Quote"]]
        assert second["data"] == ["Quote", [6000.0, "/MESZ26:XCME", 5999.75, "Quote"]]
        fake.set_quote("AAPL", bid="230.00", ask="230.03")
        assert (await recv(ws))["data"] == ["Quote", [230.03, "AAPL", 230.0, "Quote"]]


async def test_dxlink_keepalive_timeout_disconnects_a_quiet_client(fake):
    fake.keepalive_interval = 0.1
    ws, quote_token = await dx_connect(fake)
    await handshake(ws, quote_token, keepalive=0.4)
    started = asyncio.get_running_loop().time()
    saw_keepalive = False
    while True:
        message = await recv(ws)
        if message["type"] == "KEEPALIVE":
            saw_keepalive = True  # the server keeps its side alive while the client is silent
            continue
        assert message == {"type": "ERROR", "channel": 0, "error": "TIMEOUT", "message": "no message for 0.4 s"}
        break
    assert saw_keepalive and asyncio.get_running_loop().time() - started >= 0.3
    with pytest.raises(websockets.ConnectionClosed):
        await recv(ws)
    assert fake.dxlink.timeouts == 1

    ws, quote_token = await dx_connect(fake)
    async with ws:
        await handshake(ws, quote_token, keepalive=0.4)
        for _ in range(8):  # 0.8 s of keepalives from the client: it stays connected
            await ws.send(json.dumps({"type": "KEEPALIVE", "channel": 0}))
            await asyncio.sleep(0.1)
        await ws.send(json.dumps({"type": "CHANNEL_REQUEST", "channel": 1, "service": "FEED", "parameters": {}}))
        while (message := await recv(ws))["type"] == "KEEPALIVE":
            pass
        assert message["type"] == "CHANNEL_OPENED"
    assert fake.dxlink.timeouts == 1


async def test_dxlink_silent_and_drop(fake):
    ws, quote_token = await dx_connect(fake)
    async with ws:
        await handshake(ws, quote_token)
        await ws.send(json.dumps({"type": "CHANNEL_REQUEST", "channel": 1, "service": "FEED", "parameters": {}}))
        await recv(ws)
        await ws.send(
            json.dumps({"type": "FEED_SETUP", "channel": 1, "acceptEventFields": {"Trade": ["eventSymbol", "price"]}})
        )
        assert (await recv(ws))["dataFormat"] == "FULL"
        await ws.send(
            json.dumps({"type": "FEED_SUBSCRIPTION", "channel": 1, "add": [{"type": "Trade", "symbol": "SPY"}]})
        )
        assert (await recv(ws))["data"] == [{"eventSymbol": "SPY", "price": 600.0}]
        fake.silent_dxlink = True
        fake.move("SPY", "600.50")
        await fake.settle()
        with pytest.raises(asyncio.TimeoutError):
            await recv(ws, within=0.3)  # open, but nothing comes: the known DXLink failure
        assert ws.state.name == "OPEN"
        fake.silent_dxlink = False
        fake.move("SPY", "600.75")
        assert (await recv(ws))["data"] == [{"eventSymbol": "SPY", "price": 600.75}]
        await fake.drop("dxlink")
        with pytest.raises(websockets.ConnectionClosed):
            await recv(ws)

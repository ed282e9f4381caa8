"""The fake Schwab streamer's strictness, with the websockets client: LOGIN first with a raw live
token and the userPreference ids, SUBS/ADD/VIEW/UNSUBS with numeric field ids and partial updates,
error codes, and the silent, drop and idle-stop behaviours."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import websockets

from tests.fakes import FakeClock
from tests.fakes.schwab import FakeSchwab
from tests.integration.schwab_support import login


@pytest.fixture
async def fake() -> AsyncIterator[FakeSchwab]:
    server = FakeSchwab(clock=FakeClock(), heartbeat_interval=0.05)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http(fake: FakeSchwab) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.base_url) as client:
        yield client


# ====================================================================== streamer


async def ws_login(fake: FakeSchwab, token: dict[str, Any], **override: Any) -> Any:
    ws = await websockets.connect(fake.ws_url)
    params = {
        "Authorization": token["access_token"],
        "SchwabClientChannel": fake.channel,
        "SchwabClientFunctionId": fake.function_id,
    } | override
    await ws.send(
        json.dumps(
            {
                "requests": [
                    {
                        "service": "ADMIN",
                        "command": "LOGIN",
                        "requestid": "0",
                        "SchwabClientCustomerId": fake.customer_id,
                        "SchwabClientCorrelId": fake.correl_id,
                        "parameters": params,
                    }
                ]
            }
        )
    )
    return ws


async def recv_until(ws: Any, key: str) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        while True:
            frame = json.loads(await ws.recv())
            if key in frame:
                return frame

    return await asyncio.wait_for(go(), 3)


def req(fake: FakeSchwab, rid: int, service: str, command: str, **params: str) -> str:
    return json.dumps(
        {
            "requests": [
                {
                    "service": service,
                    "command": command,
                    "requestid": str(rid),
                    "SchwabClientCustomerId": fake.customer_id,
                    "SchwabClientCorrelId": fake.correl_id,
                    "parameters": params,
                }
            ]
        }
    )


async def test_streamer_wants_login_first_with_a_raw_valid_token(fake: FakeSchwab, http: httpx.AsyncClient) -> None:
    token = await login(fake, http)
    ws = await websockets.connect(fake.ws_url)
    await ws.send(req(fake, 1, "LEVELONE_EQUITIES", "SUBS", keys="AAPL", fields="0,1"))
    frame = json.loads(await ws.recv())
    assert frame["response"][0]["content"]["code"] == 3
    with pytest.raises(websockets.exceptions.ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 2)
    ws = await ws_login(fake, token, Authorization="Bearer " + token["access_token"])
    assert (await recv_until(ws, "response"))["response"][0]["content"]["code"] == 3
    ws = await ws_login(fake, token, SchwabClientFunctionId="WRONG")
    assert (await recv_until(ws, "response"))["response"][0]["content"]["code"] == 3
    fake.clock.advance(timedelta(minutes=31))
    ws = await ws_login(fake, token)
    content = (await recv_until(ws, "response"))["response"][0]["content"]
    assert content == {"code": 3, "msg": "Login Denied.: token is invalid or has expired."}


async def test_streamer_subs_view_unsubs_and_the_silent_and_drop_switches(
    fake: FakeSchwab, http: httpx.AsyncClient
) -> None:
    token = await login(fake, http)
    ws = await ws_login(fake, token)
    ok = (await recv_until(ws, "response"))["response"][0]
    assert ok["content"]["code"] == 0 and ok["content"]["msg"].startswith("server=") and ok["requestid"] == "0"
    assert "heartbeat" in (await recv_until(ws, "notify"))["notify"][0]
    await ws.send(req(fake, 1, "LEVELONE_EQUITIES", "SUBS", keys="AAPL,NOPE", fields="0,1,2,3"))
    assert (await recv_until(ws, "response"))["response"][0]["content"] == {"code": 0, "msg": "SUBS command succeeded"}
    snap = (await recv_until(ws, "data"))["data"][0]["content"]
    assert snap == [
        {
            "key": "AAPL",
            "delayed": False,
            "assetMainType": "EQUITY",
            "assetSubType": "COE",
            "cusip": "037833100",
            "1": 189.99,
            "2": 190.01,
            "3": 190.0,
        }
    ]  # no data for an unknown key
    await ws.send(req(fake, 2, "LEVELONE_EQUITIES", "VIEW", fields="0,1,8"))
    await recv_until(ws, "response")
    assert (await recv_until(ws, "data"))["data"][0]["content"] == [{"key": "AAPL", "8": 0}]
    fake.set_price("AAPL", "190.00", bid="189.98")
    assert (await recv_until(ws, "data"))["data"][0]["content"] == [{"key": "AAPL", "1": 189.98, "8": 100}]
    await ws.send(req(fake, 3, "LEVELONE_EQUITIES", "SUBS", keys="AAPL", fields="0,99"))
    assert (await recv_until(ws, "response"))["response"][0]["content"]["code"] == 22
    await ws.send(req(fake, 4, "CHART_EQUITY", "SUBS", keys="AAPL", fields="0,1"))
    assert (await recv_until(ws, "response"))["response"][0]["content"]["code"] == 11
    await ws.send(req(fake, 5, "LEVELONE_EQUITIES", "UNSUBS", keys="AAPL"))
    await recv_until(ws, "response")
    fake.silent = True
    with contextlib.suppress(TimeoutError):  # a heartbeat may already be on its way
        while True:
            await asyncio.wait_for(ws.recv(), 0.15)
    fake.set_price("AAPL", "195.00")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ws.recv(), 0.3)  # no data, no heartbeats, socket still open
    fake.silent = False
    await recv_until(ws, "notify")
    await fake.drop_streams()
    with pytest.raises(websockets.exceptions.ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 2)


async def test_an_idle_stream_is_stopped_with_code_30(fake: FakeSchwab, http: httpx.AsyncClient) -> None:
    fake.streamer.idle_close_after = 0.2
    token = await login(fake, http)
    ws = await ws_login(fake, token)
    await recv_until(ws, "response")
    await ws.send(req(fake, 1, "LEVELONE_FUTURES", "SUBS", keys="/ES", fields="0,1,2"))
    await recv_until(ws, "data")
    await ws.send(req(fake, 2, "LEVELONE_FUTURES", "UNSUBS", keys="/ES"))

    async def stop_notice() -> dict[str, Any]:
        while True:
            frame = json.loads(await ws.recv())
            for item in frame.get("notify", []):
                if "content" in item:
                    return item

    notice = await asyncio.wait_for(stop_notice(), 3)
    assert notice["content"]["code"] == 30
    with pytest.raises(websockets.exceptions.ConnectionClosed):
        await asyncio.wait_for(ws.recv(), 2)

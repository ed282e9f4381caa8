"""The fake Tradovate server takes what the vendor's own clients send and answers in the shapes
they parse.

There is no maintained Python SDK (vendor-updates.md), so each request here is written exactly as
one of Tradovate's public example clients builds it (facts, not their code):

- ``TradovateSocket.js`` (tradovate/example-api-js and example-api-faq): every message is
  ``${url}\\n${id}\\n${query || ''}\\n${JSON.stringify(body)}``, so ``authorize`` carries the token
  JSON-quoted and a request without a body carries the text ``undefined``; it heartbeats ``[]``
  only when a frame arrives 2.5 s or more after its last one; ``subscribe`` reads
  ``response.d['p-ticket']`` (so the reply needs a ``d`` object) and ends charts on ``eoh`` with
  the realtimeId.
- ``websocket/TradovateSocket.js`` (tradovate/example-api-trading-strategy): ``${query}`` unset is
  the text ``undefined`` too; its sync body is ``{accounts: [id]}``; its orders send
  ``accountSpec`` (the account name) with ``accountId``.
- ``WebSocketClient.cs`` (tradovate/example-api-csharp-trading): the raw token; a props
  ``entity`` may be an array. The C# samples place orders with ``accountSpec`` only (the
  services-api model marks ``accountId`` optional).
- Partner docs: sync ``{splitResponses: true}``; OSO/OCO examples with the user name in
  ``accountSpec``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets

from tests.fakes import FakeClock
from tests.fakes.tradovate import FakeTradovate


@pytest.fixture
async def fake():
    server = FakeTradovate(clock=FakeClock(), heartbeat_interval=0.05, client_timeout=3.0)
    await server.start()
    server.set_quote("MESZ6", bid="6650.00", ask="6650.25", last="6650.25")
    yield server
    await server.stop()


async def grant(fake: FakeTradovate) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=fake.rest_url) as http:
        body = {"name": fake.username, "password": fake.password, "appId": "Sample App", "appVersion": "1.0",
                "cid": fake.cid, "sec": fake.sec}  # fmt: skip
        return (await http.post("/auth/accessTokenRequest", json=body)).json()


def js(url: str, rid: int, body: Any = None, query: str | None = None) -> str:
    """A message as TradovateSocket.js builds it: JSON.stringify(undefined) is ``undefined``."""
    text = "undefined" if body is None else json.dumps(body, separators=(",", ":"))
    return f"{url}\n{rid}\n{query or ''}\n{text}"


async def reply(ws: Any, rid: int) -> dict[str, Any]:
    """The reply to request ``rid`` (events and heartbeats on the way are skipped)."""
    while True:
        frame = await asyncio.wait_for(ws.recv(), 5)
        if frame[0] == "a":
            for item in json.loads(frame[1:]):
                if item.get("i") == rid and "s" in item:
                    return item


async def events(ws: Any, name: str, within: float = 5) -> list[dict[str, Any]]:
    """The next ``a`` frame's events named ``name``."""

    async def _wait() -> list[dict[str, Any]]:
        while True:
            frame = await ws.recv()
            if frame[0] == "a":
                found = [item for item in json.loads(frame[1:]) if item.get("e") == name]
                if found:
                    return found

    return await asyncio.wait_for(_wait(), within)


async def test_the_js_client_authorizes_with_a_json_quoted_token_and_sends_undefined_bodies(fake):
    token = (await grant(fake))["accessToken"]
    async with websockets.connect(fake.ws_url) as ws:
        assert await ws.recv() == "o"
        await ws.send(js("authorize", 0, token))  # JSON.stringify(token): a quoted string
        assert (await reply(ws, 0))["s"] == 200
        await ws.send(js("account/list", 1))  # no body: the text "undefined"
        accounts = (await reply(ws, 1))["d"]
        assert {a["name"] for a in accounts} == {"DEMO123456", "DEMO654321"}
        await ws.send(f"account/list\n2\nundefined\n{json.dumps(None)}")  # the strategy repo's unset query
        assert len((await reply(ws, 2))["d"]) == 2
    async with websockets.connect(fake.ws_url) as ws:  # the C# client and the tutorials: the raw token
        assert await ws.recv() == "o"
        await ws.send(f"authorize\n0\n\n{token}")
        assert (await reply(ws, 0))["s"] == 200
    async with websockets.connect(fake.ws_url) as ws:
        assert await ws.recv() == "o"
        await ws.send(js("authorize", 0, "not-a-token"))
        assert (await reply(ws, 0))["s"] == 401


async def test_every_sync_body_the_vendor_clients_send(fake):
    g = await grant(fake)
    accounts = {a["name"]: a["id"] for a in fake.entities["account"].values()}
    bodies = [
        {"users": [g["userId"]]},  # example-api-faq user-sync-request
        {"accounts": [accounts["DEMO123456"]]},  # example-api-trading-strategy
        {"splitResponses": True},  # partner user/syncrequest
    ]
    for i, body in enumerate(bodies, 1):
        async with websockets.connect(fake.ws_url) as ws:
            assert await ws.recv() == "o"
            await ws.send(js("authorize", 0, g["accessToken"]))
            await reply(ws, 0)
            await ws.send(js("user/syncrequest", i, body))
            snap = await reply(ws, i)
            assert snap["s"] == 200 and snap["d"]["users"][0]["id"] == g["userId"], body
            names = {a["name"] for a in snap["d"]["accounts"]}
            assert names == ({"DEMO123456"} if "accounts" in body else {"DEMO123456", "DEMO654321"})
    async with websockets.connect(fake.ws_url) as ws:
        assert await ws.recv() == "o"
        await ws.send(js("authorize", 0, g["accessToken"]))
        await reply(ws, 0)
        for rid, body in ((7, {"users": [999]}), (8, {"accounts": [1]}), (9, {})):
            await ws.send(js("user/syncrequest", rid, body))
            assert (await reply(ws, rid))["s"] == 400, body


async def test_orders_with_account_spec_only_or_the_user_name(fake):
    g = await grant(fake)
    acct = next(a for a in fake.entities["account"].values() if a["name"] == "DEMO123456")
    order = {"action": "Buy", "symbol": "MESZ6", "orderQty": 1, "orderType": "Limit", "price": 6640,
             "timeInForce": "Day", "text": "Sample"}  # fmt: skip
    auth = {"Authorization": f"Bearer {g['accessToken']}"}
    async with httpx.AsyncClient(base_url=fake.rest_url, headers=auth) as http:
        only_spec = (await http.post("/order/placeOrder", json={"accountSpec": "DEMO123456", **order})).json()
        assert isinstance(only_spec.get("orderId"), int), only_spec
        assert fake.entities["order"][only_spec["orderId"]]["accountId"] == acct["id"]
        user_spec = {"accountSpec": fake.username, "accountId": acct["id"], **order}
        oso = {**user_spec, "bracket1": {"action": "Sell", "orderType": "Limit", "price": 6660}}
        placed = (await http.post("/order/placeOSO", json=oso)).json()
        assert isinstance(placed.get("orderId"), int) and isinstance(placed.get("oso1Id"), int), placed
        # The user name alone cannot say which account; a name that is neither is refused.
        assert (await http.post("/order/placeOrder", json={"accountSpec": fake.username, **order})).status_code == 400
        wrong = (await http.post("/order/placeOrder", json={"accountSpec": "NOBODY", **order})).json()
        assert wrong["failureReason"] == "Unauthorized"


async def test_a_malformed_frame_is_answered_400_and_the_socket_stays(fake):
    token = (await grant(fake))["accessToken"]
    async with websockets.connect(fake.ws_url) as ws:
        assert await ws.recv() == "o"
        await ws.send(f"authorize\n0\n\n{token}")
        await reply(ws, 0)
        await ws.send("this is not a request")
        while True:
            frame = await asyncio.wait_for(ws.recv(), 5)
            if frame != "h":
                break
        assert frame[0] == "a" and json.loads(frame[1:])[0]["s"] == 400
        await ws.send("account/list\n3\n\n{not json")
        assert (await reply(ws, 3))["s"] == 400
        await ws.send(js("account/list", 4))
        assert (await reply(ws, 4))["s"] == 200  # still open and working
    assert fake.bad_frames == 2


async def test_market_data_replies_and_events_in_the_shapes_the_js_client_reads(fake):
    g = await grant(fake)
    async with websockets.connect(fake.md_url) as ws:
        assert await ws.recv() == "o"
        await ws.send(js("authorize", 0, g["mdAccessToken"]))
        await reply(ws, 0)
        await ws.send(js("md/subscribeQuote", 1, {"symbol": "MESZ6"}))
        sub = await reply(ws, 1)
        assert sub["s"] == 200 and isinstance(sub["d"], dict) and "p-ticket" not in sub["d"]
        (quote,) = (await events(ws, "md"))[0]["d"]["quotes"]
        assert quote["entries"]["Bid"] == {"price": 6650.0, "size": 10}
        fake.clear_side("MESZ6", "Bid")
        (quote,) = (await events(ws, "md"))[0]["d"]["quotes"]
        assert "Bid" not in quote["entries"] and "Offer" in quote["entries"]  # absent: no data
        chart = {"symbol": "MESZ6", "chartDescription": {"underlyingType": "MinuteBar", "elementSize": 1,
                 "elementSizeUnit": "UnderlyingUnits", "withHistogram": False},
                 "timeRange": {"asMuchAsElements": 10}}  # fmt: skip
        await ws.send(js("md/getChart", 2, chart))
        ids = (await reply(ws, 2))["d"]
        charts = [c for e in await events(ws, "chart") for c in e["d"]["charts"]]
        # example-api-faq (large chart requests): the end-of-history object carries the realtimeId.
        assert {"id": ids["realtimeId"], "eoh": True} in charts
        assert any(c.get("bars") and c["id"] == ids["realtimeId"] for c in charts)


async def test_props_arrays_and_command_reports_reach_a_raw_client(fake):
    g = await grant(fake)
    acct = next(a for a in fake.entities["account"].values() if a["name"] == "DEMO123456")
    fake.props_as_arrays = True
    fake.reject_after_accept("RiskRejected", "MaxPosLimitReached", "Max position 5 reached")
    async with websockets.connect(fake.ws_url) as ws:
        assert await ws.recv() == "o"
        await ws.send(f"authorize\n0\n\n{g['accessToken']}")
        await reply(ws, 0)
        await ws.send(js("user/syncrequest", 1, {"users": [g["userId"]]}))
        await reply(ws, 1)
        body = {"accountSpec": "DEMO123456", "accountId": acct["id"], "action": "Buy", "symbol": "MESZ6",
                "orderQty": 1, "orderType": "Market", "isAutomated": True}  # fmt: skip
        await ws.send(js("order/placeorder", 2, body))
        props: list[dict[str, Any]] = []
        while not any(p["d"]["entityType"] == "commandReport" for p in props):
            props += await events(ws, "props")
        assert all(isinstance(p["d"]["entity"], list) for p in props)
        (report,) = next(p["d"]["entity"] for p in props if p["d"]["entityType"] == "commandReport")
        assert (report["commandStatus"], report["rejectReason"]) == ("RiskRejected", "MaxPosLimitReached")


async def test_a_client_heartbeating_like_the_js_tutorial_stays_connected(fake):
    """TradovateSocket.js sends ``[]`` only when a frame arrives 2.5 s or more after its last
    heartbeat, so the server's ``h`` (about every 2.5 s when idle) is what keeps it alive. Scaled
    down tenfold here; a silent client is dropped after the silence timeout."""
    fake.heartbeat_interval = 0.25
    fake.client_timeout = 1.0
    token = (await grant(fake))["accessToken"]
    async with websockets.connect(fake.ws_url) as ws:
        assert await ws.recv() == "o"
        await ws.send(js("authorize", 0, token))
        await reply(ws, 0)
        loop = asyncio.get_running_loop()
        last = loop.time()
        until = last + 2.5
        while loop.time() < until:
            await asyncio.wait_for(ws.recv(), 2)
            if loop.time() - last >= 0.25:
                await ws.send("[]")
                last = loop.time()
        assert fake.dropped_for_silence == 0 and fake.heartbeats["trading"] >= 3
    async with websockets.connect(fake.ws_url) as ws:
        assert await ws.recv() == "o"
        frames = []
        with pytest.raises(websockets.exceptions.ConnectionClosed):
            while True:
                frames.append(await asyncio.wait_for(ws.recv(), 3))
        assert frames[-1].startswith("c[") and fake.dropped_for_silence == 1


def test_the_fakes_timing_defaults_are_the_vendors():
    fake = FakeTradovate(clock=FakeClock())
    assert fake.heartbeat_interval == 2.5  # example-api-js EX-06/EX-07: about every 2.5 s
    assert fake.token_minutes == 90  # partner access-token page: 90 minutes

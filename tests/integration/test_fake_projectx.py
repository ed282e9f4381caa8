"""The fake ProjectX gateway (tests/fakes/projectx.py), proven with clients nobody here wrote.

- Raw HTTP (httpx) and raw WebSockets (aiohttp): the strict parts of the vendor's contract:
  envelopes under HTTP 200, 401s, ASP.NET binding, error codes, rate limits, the SignalR
  framing. They run on every Python.
- pysignalr connects to both hubs unmodified and receives the vendor's events (every Python).
- project-x-py, the community ProjectX SDK, pointed at the fake through its documented
  environment variables, logs in, lists accounts, finds a contract, reads bars, places and
  cancels orders and hears both hubs (Python >= 3.12 only; skipped on 3.11).

Every wait is on an event or a condition with a timeout; hub pings run every 0.2 s here.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import httpx
import pytest

from tests.fakes.projectx import FakeProjectX

RS = "\x1e"
ACCT = 536


@pytest.fixture
async def fake() -> AsyncIterator[FakeProjectX]:
    async with FakeProjectX(ping_interval=0.2, client_timeout=5.0) as server:
        yield server


class Rest:
    """Raw REST calls, as the vendor's docs show them."""

    def __init__(self, server: FakeProjectX) -> None:
        self.fake = server
        self.http = httpx.AsyncClient(base_url=server.api_url + "/", timeout=5)
        self.token: str | None = None

    async def login(self) -> str:
        body = await self.call("Auth/loginKey", {"userName": self.fake.username, "apiKey": self.fake.api_key})
        assert body["success"] is True, body
        self.token = body["token"]
        return body["token"]

    async def post(
        self, path: str, body: Any = None, *, token: str | None = None, raw: bytes | None = None
    ) -> httpx.Response:
        headers = {"accept": "text/plain"}
        tok = token if token is not None else self.token
        if tok:
            headers["Authorization"] = f"Bearer {tok}"
        if raw is not None:
            headers["Content-Type"] = "application/json"
            return await self.http.post(path, content=raw, headers=headers)
        return await self.http.post(path, json=body, headers=headers)

    async def call(self, path: str, body: Any = None) -> dict[str, Any]:
        response = await self.post(path, body)
        assert response.status_code == 200, (response.status_code, response.text)
        data = response.json()
        assert {"success", "errorCode", "errorMessage"} <= data.keys()
        return data

    async def place(self, **fields: Any) -> dict[str, Any]:
        body = {"accountId": ACCT, "contractId": self.fake.contract_id("MES"), "side": 0, "size": 1, **fields}
        return await self.call("Order/place", body)

    async def order(self, order_id: int) -> dict[str, Any]:
        body = await self.call("Order/searchById", {"accountId": ACCT, "orderId": order_id})
        assert body["success"], body
        return body["order"]

    async def close(self) -> None:
        await self.http.aclose()


@pytest.fixture
async def rest(fake: FakeProjectX) -> AsyncIterator[Rest]:
    client = Rest(fake)
    await client.login()
    yield client
    await client.close()


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# ====================================================================== auth


async def test_login_refusals_are_envelopes_under_http_200(fake: FakeProjectX) -> None:
    client = Rest(fake)
    try:
        bad_key = await client.call("Auth/loginKey", {"userName": fake.username, "apiKey": "not-the-key"})
        assert (bad_key["success"], bad_key["errorCode"], bad_key["token"]) == (False, 3, None)
        unknown = await client.call("Auth/loginKey", {"userName": "nobody", "apiKey": fake.api_key})
        assert (unknown["success"], unknown["errorCode"]) == (False, 1)
        fake.api_subscription = False
        assert (await client.call("Auth/loginKey", {"userName": fake.username, "apiKey": fake.api_key}))[
            "errorCode"
        ] == 9
        fake.api_subscription = True
        # userName and apiKey are required: model validation, not an envelope.
        missing = await client.post("Auth/loginKey", {"userName": fake.username})
        assert missing.status_code == 400 and "apiKey" in missing.json()["errors"]
        token = await client.login()
        claims = jwt_claims(token)
        life = claims["exp"] - datetime.now(UTC).timestamp()
        assert 24 * 3600 - 60 < life <= 24 * 3600
        app = await client.call(
            "Auth/loginApp",
            {
                "userName": fake.username,
                "password": "wrong",
                "deviceId": "d1",
                "appId": fake.app_id,
                "verifyKey": fake.verify_key,
            },
        )
        assert (app["success"], app["errorCode"]) == (False, 2)
        assert fake.failed_logins == 4 and fake.logins == 1
    finally:
        await client.close()


async def test_bearer_token_missing_bad_expired_or_logged_out_is_401(fake: FakeProjectX, rest: Rest) -> None:
    body = {"onlyActiveAccounts": True}
    assert (await rest.call("Account/search", body))["success"] is True
    missing = await rest.post("Account/search", body, token="")
    assert missing.status_code == 401 and missing.content == b"" and missing.headers["WWW-Authenticate"] == "Bearer"
    assert (await rest.post("Account/search", body, token="garbage")).status_code == 401
    head, _claims, sig = rest.token.split(".")  # type: ignore[union-attr]
    forged = (
        base64.urlsafe_b64encode(json.dumps({**jwt_claims(rest.token or ""), "sub": "admin"}).encode())
        .decode()
        .rstrip("=")
    )
    assert (await rest.post("Account/search", body, token=f"{head}.{forged}.{sig}")).status_code == 401

    # validate renews: a new token that works, the old one still good until it expires.
    renewed = await rest.call("Auth/validate")
    assert renewed["success"] and renewed["newToken"] != rest.token
    assert (await rest.post("Account/search", body, token=renewed["newToken"])).status_code == 200

    fake.expire_tokens()
    expired = await rest.post("Account/search", body)
    assert expired.status_code == 401 and "expired" in expired.headers["WWW-Authenticate"]
    assert (await rest.post("Auth/validate", token=renewed["newToken"])).status_code == 401

    await rest.login()
    assert (await rest.call("Auth/logout"))["success"] is True
    assert (await rest.post("Account/search", body)).status_code == 401


async def test_token_life_and_rate_windows_follow_a_shared_fake_clock() -> None:
    """An adapter's tests can share a FakeClock with the fake: expiry and limits move with it."""
    from tests.fakes import FakeClock

    clock = FakeClock()
    async with FakeProjectX(clock=clock) as server:
        client = Rest(server)
        try:
            token = await client.login()
            assert jwt_claims(token)["exp"] == int((clock.now() + timedelta(hours=24)).timestamp())
            server.rate_limits["default"] = (3, 60.0)
            assert [
                (await client.post("Account/search", {"onlyActiveAccounts": True})).status_code for _ in range(4)
            ] == [200, 200, 200, 429]
            clock.advance(60)
            assert (await client.post("Account/search", {"onlyActiveAccounts": True})).status_code == 200
            clock.advance(timedelta(hours=24))
            assert (await client.post("Account/search", {"onlyActiveAccounts": True})).status_code == 401
        finally:
            await client.close()


async def test_paths_methods_ping_and_accounts(fake: FakeProjectX, rest: Rest) -> None:
    ping = await rest.http.get("Status/ping", headers={"Accept": "application/json"})
    assert ping.status_code == 200 and ping.json() == "pong"
    assert (await rest.http.get("status/PING")).text == "pong"
    assert (await rest.http.post("Status/ping")).status_code == 405
    assert (await rest.http.get("Order/place")).status_code == 405
    assert (await rest.post("Order/teleport", {})).status_code == 404
    # ASP.NET routes and binds case-insensitively, and reads numbers from strings.
    active = await rest.call("account/SEARCH", {"OnlyActiveAccounts": True})
    assert [a["id"] for a in active["accounts"]] == [536, 537]
    assert set(active["accounts"][0]) == {"id", "name", "balance", "canTrade", "isVisible", "simulated"}
    everything = await rest.call("Account/search", {"onlyActiveAccounts": False})
    assert len(everything["accounts"]) == 3
    wrong_type = await rest.post("Account/search", {"onlyActiveAccounts": "yes"})
    assert wrong_type.status_code == 400 and "$.onlyActiveAccounts" in wrong_type.json()["errors"]
    assert (await rest.post("Account/search", raw=b"{not json")).status_code == 400


# ====================================================================== contracts and bars


async def test_contracts_use_the_gateway_ids_and_unknown_ones_are_refused(fake: FakeProjectX, rest: Rest) -> None:
    found = await rest.call("Contract/search", {"searchText": "ES", "live": False})
    es = next(c for c in found["contracts"] if c["symbolId"] == "F.US.EP")
    assert es["id"].startswith("CON.F.US.EP.") and es["name"].startswith("ES") and len(es["name"]) == 4
    assert (es["tickSize"], es["tickValue"]) == (0.25, 12.5)
    nq = (await rest.call("Contract/search", {"searchText": "NQ", "live": False}))["contracts"]
    assert any(c["id"].startswith("CON.F.US.ENQ.") for c in nq)
    by_id = await rest.call("Contract/searchById", {"contractId": fake.contract_id("CL")})
    assert by_id["contract"]["id"].startswith("CON.F.US.CLE.") and by_id["contract"]["tickSize"] == 0.01
    gone = await rest.call("Contract/searchById", {"contractId": "CON.F.US.XYZ.Z25"})
    assert (gone["success"], gone["errorCode"], gone["contract"]) == (False, 1, None)
    available = await rest.call("Contract/available", {"live": False})
    assert len(available["contracts"]) == 6
    refused = await rest.place(type=2, contractId="CON.F.US.XYZ.Z25")
    assert (refused["success"], refused["errorCode"], refused["orderId"]) == (False, 8, None)
    assert fake.book.orders == {}


async def test_bars_pages_limits_and_units(fake: FakeProjectX, rest: Rest) -> None:
    now = datetime.now(UTC)
    body = {
        "contractId": fake.contract_id("MES"),
        "live": False,
        "startTime": (now - timedelta(hours=2)).isoformat(),
        "endTime": now.isoformat(),
        "unit": 2,
        "unitNumber": 5,
        "limit": 10,
        "includePartialBar": False,
    }
    first = (await rest.call("History/retrieveBars", body))["bars"]
    assert len(first) == 10 and set(first[0]) == {"t", "o", "h", "l", "c", "v"}
    times = [datetime.fromisoformat(b["t"]) for b in first]
    assert times == sorted(times, reverse=True)  # newest first, as the docs' examples
    assert all(b["l"] <= min(b["o"], b["c"]) and b["h"] >= max(b["o"], b["c"]) for b in first)
    assert times[0] + timedelta(minutes=5) <= now  # no partial bar
    again = (await rest.call("History/retrieveBars", body))["bars"]
    assert again == first  # a stable series: pages and retries agree
    older = (await rest.call("History/retrieveBars", {**body, "endTime": first[-1]["t"]}))["bars"]
    assert datetime.fromisoformat(older[0]["t"]) == times[-1] - timedelta(minutes=5)
    partial = (await rest.call("History/retrieveBars", {**body, "includePartialBar": True}))["bars"]
    assert datetime.fromisoformat(partial[0]["t"]) > times[0]
    ticks = (await rest.call("History/retrieveBars", {**body, "unit": 7, "unitNumber": 100}))["bars"]
    assert len(ticks) == 10 and ticks[0]["v"] == 100
    for change, code in (
        ({"limit": 20_001}, 4),
        ({"unit": 8}, 2),
        ({"unitNumber": 0}, 3),
        ({"contractId": "CON.F.US.NOPE.Z25"}, 1),
    ):
        refused = await rest.call("History/retrieveBars", {**body, **change})
        assert (refused["success"], refused["errorCode"]) == (False, code), change
    most = (
        await rest.call(
            "History/retrieveBars",
            {**body, "unit": 1, "unitNumber": 1, "limit": 20_000, "startTime": (now - timedelta(days=1)).isoformat()},
        )
    )["bars"]
    assert len(most) == 20_000


async def test_rate_limits_are_the_documented_numbers(fake: FakeProjectX, rest: Rest) -> None:
    now = datetime.now(UTC)
    bars = {
        "contractId": fake.contract_id("MES"),
        "live": False,
        "startTime": (now - timedelta(minutes=10)).isoformat(),
        "endTime": now.isoformat(),
        "unit": 2,
        "unitNumber": 1,
        "limit": 5,
        "includePartialBar": True,
    }
    for _ in range(30):
        assert (await rest.post("History/retrieveBars", bars)).status_code == 200
    throttled = await rest.post("History/retrieveBars", bars)
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
    # Bars have their own bucket: 200 a minute for the rest, per user (the login, made before
    # there was a user, counted against the caller's address).
    results = [await rest.post("Account/search", {"onlyActiveAccounts": True}) for _ in range(201)]
    assert [r.status_code for r in results].count(200) == 200 and results[-1].status_code == 429
    assert fake.throttled["history/retrievebars"] == 1 and fake.throttled["account/search"] == 1


async def test_fault_switches_on_rest(fake: FakeProjectX, rest: Rest) -> None:
    fake.fail_429("Order/place")
    assert (await rest.post("Order/place", {"accountId": ACCT})).status_code == 429
    fake.reject_next("Order/place", 3, "Insufficient funds.")
    refused = await rest.place(type=2)
    assert (refused["errorCode"], refused["errorMessage"]) == (3, "Insufficient funds.") and fake.book.orders == {}
    fake.slow("Order/place", 0.3)
    with pytest.raises(httpx.ReadTimeout):
        await rest.http.post(
            "Order/place",
            json={"accountId": ACCT, "contractId": fake.contract_id("MES"), "type": 2, "side": 0, "size": 1},
            headers={"Authorization": f"Bearer {rest.token}"},
            timeout=0.1,
        )
    # The work was done although the answer came too late: the order exists and filled.
    assert [o.status for o in fake.book.orders.values()] == [2]
    fake.market_open = False
    closed = await rest.place(type=2)
    assert (closed["success"], closed["errorCode"]) == (False, 5)


# ====================================================================== orders


async def test_malformed_orders_are_refused_and_change_nothing(fake: FakeProjectX, rest: Rest) -> None:
    cid = fake.contract_id("MES")
    no_size = await rest.post("Order/place", {"accountId": ACCT, "contractId": cid, "type": 2, "side": 0})
    assert no_size.status_code == 400 and "size" in no_size.json()["errors"]
    bad_size = await rest.post(
        "Order/place", {"accountId": ACCT, "contractId": cid, "type": 2, "side": 0, "size": "one"}
    )
    assert bad_size.status_code == 400 and "$.size" in bad_size.json()["errors"]
    for fields, words in (
        ({"type": 1, "limitPrice": 5990.1}, "tick"),
        ({"type": 1}, "limit price is required"),
        ({"type": 2, "size": 0}, "size"),
        ({"type": 9}, "type"),
        ({"type": 2, "side": 2}, "side"),
        ({"type": 4, "stopPrice": 5990}, "above"),
        ({"type": 5, "side": 1, "trailPrice": 6010}, "below"),
    ):
        refused = await rest.place(**fields)
        assert (refused["success"], refused["errorCode"]) == (False, 2), fields
        assert words in refused["errorMessage"], (fields, refused["errorMessage"])
    wrong_account = await rest.place(type=2, accountId=999)
    assert (wrong_account["success"], wrong_account["errorCode"]) == (False, 1)
    assert fake.book.orders == {} and fake.book.trades == []
    # Numbers as strings and odd key casing bind, as ASP.NET's web defaults allow.
    ok = await rest.call(
        "Order/place",
        {"AccountId": str(ACCT), "CONTRACTID": cid, "type": "1", "side": 0, "size": "2", "limitPrice": "5990.25"},
    )
    assert ok["success"] and (await rest.order(ok["orderId"]))["limitPrice"] == 5990.25


async def test_custom_tag_is_unique_per_account(fake: FakeProjectX, rest: Rest) -> None:
    first = await rest.place(type=1, limitPrice=5990, customTag="tterm-0001")
    assert first["success"]
    again = await rest.place(type=1, limitPrice=5989, customTag="tterm-0001")
    assert (again["success"], again["errorCode"], again["orderId"]) == (False, 2, None)
    assert "custom tag" in again["errorMessage"]
    other_account = await rest.place(type=1, limitPrice=5989, customTag="tterm-0001", accountId=537)
    assert other_account["success"]
    await rest.call("Order/cancel", {"accountId": ACCT, "orderId": first["orderId"]})
    # Even a cancelled order keeps its tag: lookup-before-retry can trust it.
    assert (await rest.place(type=1, limitPrice=5989, customTag="tterm-0001"))["errorCode"] == 2
    found = await rest.call(
        "Order/search", {"accountId": ACCT, "startTimestamp": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}
    )
    assert [o["customTag"] for o in found["orders"]] == ["tterm-0001"]


async def test_orders_fill_like_a_market(fake: FakeProjectX, rest: Rest) -> None:
    await fake.set_price("MES", "6000")  # bid 6000.00, ask 6000.25
    market = await rest.place(type=2)
    m = await rest.order(market["orderId"])
    assert (m["status"], m["fillVolume"], m["filledPrice"]) == (2, 1, 6000.25)

    limit = (await rest.place(type=1, side=1, limitPrice=6002))["orderId"]
    stop = (await rest.place(type=4, side=1, stopPrice=5998))["orderId"]
    stop_limit = (await rest.place(type=3, side=0, stopPrice=6003, limitPrice=6003.5))["orderId"]
    trailing = (await rest.place(type=5, side=1, trailPrice=2))["orderId"]  # a distance (project-x-py)
    join_bid = (await rest.place(type=6, side=0))["orderId"]
    assert (await rest.order(join_bid))["limitPrice"] == 6000.0
    assert (await rest.order(trailing))["stopPrice"] == 5998.0
    open_ids = {o["id"] for o in (await rest.call("Order/searchOpen", {"accountId": ACCT}))["orders"]}
    assert open_ids == {limit, stop, stop_limit, trailing, join_bid}

    await fake.trade("MES", "6002")  # at the limit: not through it, so no fill
    assert (await rest.order(limit))["status"] == 1
    t = await rest.order(trailing)
    assert (t["stopPrice"], t["trailPrice"]) == (6000.0, 2.0)  # the trailing stop followed the print
    await fake.trade_through("MES", "6003")  # prints 6003.25: the limit fills at its price, the stop-limit triggers
    assert (await rest.order(limit))["filledPrice"] == 6002.0
    sl = await rest.order(stop_limit)
    assert (sl["status"], sl["filledPrice"]) == (2, 6003.25)  # triggered, then marketable: the ask
    await fake.set_price("MES", "5999.75")  # the trailing stop (now 6001.25) triggers, fills at the bid
    tr = await rest.order(trailing)
    assert (tr["status"], tr["filledPrice"]) == (2, 5999.75)
    jb = await rest.order(join_bid)
    assert (jb["status"], jb["filledPrice"]) == (2, 6000.0)  # the ask came down to the joined bid
    await fake.set_price("MES", "5997")
    assert (await rest.order(stop))["filledPrice"] == 5997.0

    trades = (
        await rest.call(
            "Trade/search", {"accountId": ACCT, "startTimestamp": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}
        )
    )["trades"]
    assert len(trades) == 6 and all(t["fees"] == 0.37 and t["voided"] is False for t in trades)
    assert trades[0]["profitAndLoss"] is None  # opening half-turn
    # +1 @6000.25, -1 @6002, +1 @6003.25, -1 @5999.75, +1 @6000, -1 @5997: flat, P&L in dollars.
    pnl = sum(t["profitAndLoss"] or 0 for t in trades)
    assert pnl == pytest.approx((1.75 - 3.5 - 3.0) * 5)
    assert (await rest.call("Position/searchOpen", {"accountId": ACCT}))["positions"] == []
    balance = next(
        a for a in (await rest.call("Account/search", {"onlyActiveAccounts": True}))["accounts"] if a["id"] == ACCT
    )
    assert balance["balance"] == pytest.approx(50_000 + pnl - 6 * 0.37)


async def test_modify_cancel_and_their_refusals(fake: FakeProjectX, rest: Rest) -> None:
    await fake.set_price("MES", "6000")
    oid = (await rest.place(type=1, limitPrice=5990, size=2))["orderId"]
    assert (await rest.call("Order/modify", {"accountId": ACCT, "orderId": oid, "limitPrice": 5991.5, "size": 3}))[
        "success"
    ]
    o = await rest.order(oid)
    assert (o["limitPrice"], o["size"]) == (5991.5, 3)
    off_tick = await rest.call("Order/modify", {"accountId": ACCT, "orderId": oid, "limitPrice": 5991.3})
    assert (off_tick["success"], off_tick["errorCode"]) == (False, 3)
    wrong_field = await rest.call("Order/modify", {"accountId": ACCT, "orderId": oid, "stopPrice": 5980})
    assert wrong_field["errorCode"] == 3
    assert (await rest.call("Order/modify", {"accountId": ACCT, "orderId": 1, "size": 1}))["errorCode"] == 2
    assert (await rest.call("Order/cancel", {"accountId": ACCT, "orderId": oid}))["success"]
    assert (await rest.order(oid))["status"] == 3
    again = await rest.call("Order/cancel", {"accountId": ACCT, "orderId": oid})
    assert (again["success"], again["errorCode"]) == (False, 3)
    assert (await rest.call("Order/cancel", {"accountId": 999, "orderId": oid}))["errorCode"] == 1
    assert (await rest.call("Order/cancel", {"accountId": ACCT, "orderId": 123}))["errorCode"] == 2


async def test_brackets_need_signed_ticks_and_behave_as_oco(fake: FakeProjectX, rest: Rest) -> None:
    await fake.set_price("MES", "6000")
    for side, sl, tp, words in (
        (0, 10, 20, "less than zero when longing"),
        (0, -10, -20, "greater than zero when longing"),
        (1, -10, -20, "greater than zero when shorting"),
        (1, 10, 20, "less than zero when shorting"),
    ):
        refused = await rest.place(
            type=2, side=side, stopLossBracket={"ticks": sl, "type": 4}, takeProfitBracket={"ticks": tp, "type": 1}
        )
        assert (refused["success"], refused["errorCode"]) == (False, 2)
        assert words in refused["errorMessage"]
    assert fake.book.orders == {}

    entry = (
        await rest.place(
            type=1,
            limitPrice=5999,
            stopLossBracket={"ticks": -8, "type": 4},
            takeProfitBracket={"ticks": 12, "type": 1},
        )
    )["orderId"]
    orders = (
        await rest.call(
            "Order/search", {"accountId": ACCT, "startTimestamp": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}
        )
    )["orders"]
    children = [o for o in orders if o["id"] != entry]
    assert [(o["status"], o["type"], o["side"]) for o in children] == [(8, 4, 1), (8, 1, 1)]  # suspended
    assert [o["id"] for o in (await rest.call("Order/searchOpen", {"accountId": ACCT}))["orders"]] == [entry]

    await fake.set_price("MES", "5998.75")  # the ask (5999) reaches the entry: it fills at 5999
    stop_loss, take_profit = (await rest.order(children[0]["id"])), (await rest.order(children[1]["id"]))
    assert (stop_loss["status"], stop_loss["stopPrice"]) == (1, 5997.0)  # 5999 - 8 ticks
    assert (take_profit["status"], take_profit["limitPrice"]) == (1, 6002.0)  # 5999 + 12 ticks
    await fake.trade_through("MES", "6002")
    assert (await rest.order(take_profit["id"]))["status"] == 2
    assert (await rest.order(stop_loss["id"]))["status"] == 3  # OCO: the sibling is cancelled
    assert (await rest.call("Position/searchOpen", {"accountId": ACCT}))["positions"] == []

    fake.book.accounts[ACCT].auto_oco_brackets = False
    refused = await rest.place(type=2, stopLossBracket={"ticks": -8, "type": 4})
    assert refused["errorCode"] == 2 and "Auto OCO" in refused["errorMessage"]


async def test_positions_close_and_partial_close_take_size_or_close_size(fake: FakeProjectX, rest: Rest) -> None:
    await fake.set_price("MES", "6000")
    cid = fake.contract_id("MES")
    await rest.place(type=2, size=4)
    pos = (await rest.call("Position/searchOpen", {"accountId": ACCT}))["positions"]
    assert [(p["type"], p["size"], p["averagePrice"]) for p in pos] == [(1, 4, 6000.25)]
    assert (await rest.call("Position/partialCloseContract", {"accountId": ACCT, "contractId": cid, "size": 1}))[
        "success"
    ]
    assert (await rest.call("Position/partialCloseContract", {"accountId": ACCT, "contractId": cid, "closeSize": 1}))[
        "success"
    ]
    assert (await rest.call("Position/searchOpen", {"accountId": ACCT}))["positions"][0]["size"] == 2
    too_many = await rest.call("Position/partialCloseContract", {"accountId": ACCT, "contractId": cid, "size": 3})
    assert (too_many["success"], too_many["errorCode"]) == (False, 5)
    no_size = await rest.post("Position/partialCloseContract", {"accountId": ACCT, "contractId": cid})
    assert no_size.status_code == 400
    assert (await rest.call("Position/closeContract", {"accountId": ACCT, "contractId": cid}))["success"]
    assert (await rest.call("Position/searchOpen", {"accountId": ACCT}))["positions"] == []
    nothing = await rest.call("Position/closeContract", {"accountId": ACCT, "contractId": cid})
    assert (nothing["success"], nothing["errorCode"]) == (False, 2)
    unknown = await rest.call("Position/closeContract", {"accountId": ACCT, "contractId": "CON.F.US.NOPE.Z25"})
    assert unknown["errorCode"] == 3


# ====================================================================== raw SignalR


class RawHub:
    """A bare WebSocket speaking the SignalR JSON protocol, frame by frame."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.session, self.ws = session, ws
        self.records: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, url: str, token: str, *, handshake: dict[str, Any] | None = None) -> RawHub:
        session = aiohttp.ClientSession()
        ws = await session.ws_connect(url.replace("http", "ws") + f"?access_token={token}")
        hub = cls(session, ws)
        await ws.send_str(json.dumps(handshake or {"protocol": "json", "version": 1}) + RS)
        return hub

    async def next(
        self, want: Callable[[dict[str, Any]], bool] = lambda r: True, within: float = 3.0
    ) -> dict[str, Any]:
        async def _read() -> dict[str, Any]:
            while True:
                for i, record in enumerate(self.records):
                    if want(record):
                        return self.records.pop(i)
                msg = await self.ws.receive()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    raise ConnectionError(f"socket ended: {msg.type}")
                assert msg.data.endswith(RS)
                self.records += [json.loads(r) for r in msg.data.split(RS) if r]

        return await asyncio.wait_for(_read(), within)

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


async def test_raw_hub_protocol(fake: FakeProjectX, rest: Rest) -> None:
    async with aiohttp.ClientSession() as session:
        refused = await session.get(
            fake.user_hub_url.replace("http", "ws") + "?access_token=bad",
            headers={
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            },
        )
        assert refused.status == 401
    hub = await RawHub.open(fake.user_hub_url, rest.token or "")
    try:
        assert await hub.next() == {}  # the handshake answer
        # Two invocations in one frame: both answered; a void method's completion has no result.
        await hub.ws.send_str(
            json.dumps({"type": 1, "invocationId": "1", "target": "SubscribeOrders", "arguments": [ACCT]})
            + RS
            + json.dumps({"type": 1, "invocationId": "2", "target": "SubscribeAccounts", "arguments": []})
            + RS
        )
        assert await hub.next(lambda r: r.get("invocationId") == "1") == {"type": 3, "invocationId": "1"}
        assert await hub.next(lambda r: r.get("invocationId") == "2") == {"type": 3, "invocationId": "2"}
        for invocation, words in (
            ({"target": "SubscribeEverything", "arguments": []}, "Method does not exist"),
            ({"target": "SubscribeOrders", "arguments": []}, "provides 0 argument(s) but target expects 1"),
            ({"target": "SubscribeOrders", "arguments": ["536"]}, "Error binding arguments"),
            (
                {"target": "SubscribeOrders", "arguments": [999]},
                "An unexpected error occurred invoking 'SubscribeOrders'",
            ),
        ):
            await hub.ws.send_str(json.dumps({"type": 1, "invocationId": "9", **invocation}) + RS)
            answer = await hub.next(lambda r: r.get("type") == 3)
            assert words in answer["error"], (invocation, answer)
        # A non-blocking invocation that fails gets nothing back; the server pings meanwhile.
        await hub.ws.send_str(json.dumps({"type": 1, "target": "Nope", "arguments": []}) + RS)
        assert await hub.next() == {"type": 6}  # the next record is a ping, not an error
        await hub.ws.send_str(json.dumps({"type": 6}) + RS)
        await fake.until(lambda: fake.user_hub.pings_received >= 1)
        await rest.place(type=2)
        order = await hub.next(lambda r: r.get("target") == "GatewayUserOrder")
        assert order["type"] == 1 and "invocationId" not in order and len(order["arguments"]) == 1
        assert order["arguments"][0]["accountId"] == ACCT
        account = await hub.next(lambda r: r.get("target") == "GatewayUserAccount")
        assert account["arguments"][0]["balance"] < 50_000
        hub.records.clear()  # the rest of the fill's events (the account event came last)
        # Unsubscribed, the hub stops sending that account's orders.
        await hub.ws.send_str(
            json.dumps({"type": 1, "invocationId": "10", "target": "UnsubscribeOrders", "arguments": [ACCT]}) + RS
        )
        await hub.next(lambda r: r.get("invocationId") == "10")
        await rest.place(type=2)
        await hub.next(lambda r: r.get("target") == "GatewayUserAccount")
        assert not [r for r in hub.records if r.get("target") == "GatewayUserOrder"]
        await hub.ws.send_str(json.dumps({"type": 7}) + RS)
        await fake.until(lambda: fake.user_hub.alive() == 0)
    finally:
        await hub.close()
    closing = await RawHub.open(fake.market_hub_url, rest.token or "")
    try:
        assert await closing.next() == {}
        assert await fake.close_sockets("market", error="Server shutting down.") == 1
        assert await closing.next(lambda r: r.get("type") == 7) == {
            "type": 7,
            "allowReconnect": True,
            "error": "Server shutting down.",
        }
    finally:
        await closing.close()
    bad = await RawHub.open(fake.market_hub_url, rest.token or "", handshake={"protocol": "messagepack", "version": 1})
    try:
        assert "not supported" in (await bad.next())["error"]
    finally:
        await bad.close()


async def test_negotiate_versions_and_single_use_ids(fake: FakeProjectX, rest: Rest) -> None:
    async with aiohttp.ClientSession() as session:
        assert (await session.post(fake.user_hub_url + "/negotiate")).status == 401
        v0 = await (await session.post(fake.user_hub_url + f"/negotiate?access_token={rest.token}")).json()
        assert v0["negotiateVersion"] == 0 and "connectionToken" not in v0
        assert v0["availableTransports"][0]["transport"] == "WebSockets"
        v1 = await (
            await session.post(fake.market_hub_url + f"/negotiate?negotiateVersion=1&access_token={rest.token}")
        ).json()
        assert v1["negotiateVersion"] == 1 and v1["connectionToken"] != v1["connectionId"]
        ws_url = fake.market_hub_url.replace("http", "ws") + f"?access_token={rest.token}"
        ws = await session.ws_connect(ws_url + f"&id={v1['connectionToken']}")
        await ws.send_str(json.dumps({"protocol": "json", "version": 1}) + RS)
        assert (await ws.receive()).data == "{}" + RS
        for reused in (v1["connectionToken"], "never-negotiated"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await session.ws_connect(ws_url + f"&id={reused}")
            assert err.value.status == 404
        await ws.close()


# ====================================================================== pysignalr


class Inbox:
    """Events a pysignalr client received, waitable."""

    def __init__(self) -> None:
        self.events: dict[str, list[list[Any]]] = defaultdict(list)
        self.completions: list[Any] = []
        self._changed = asyncio.Condition()

    def collector(self, name: str) -> Callable[[Any], Any]:
        async def collect(arguments: Any) -> None:
            async with self._changed:
                self.events[name].append(arguments)
                self._changed.notify_all()

        return collect

    async def completed(self, message: Any) -> None:
        async with self._changed:
            self.completions.append(message)
            self._changed.notify_all()

    async def wait(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        async def _wait() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)

        await asyncio.wait_for(_wait(), within)


@contextlib.asynccontextmanager
async def signalr(
    url: str, token: str, events: list[str], subscribe: list[tuple[str, list[Any]]]
) -> AsyncIterator[Inbox]:
    """A pysignalr client on ``url`` that subscribes once open; yields what it receives."""
    from pysignalr.client import SignalRClient

    inbox = Inbox()
    client = SignalRClient(f"{url}?access_token={token}")
    for name in events:
        client.on(name, inbox.collector(name))

    async def on_open() -> None:
        for method, arguments in subscribe:
            await client.send(method, arguments, on_invocation=inbox.completed)

    client.on_open(on_open)
    task = asyncio.get_running_loop().create_task(client.run())
    try:
        yield inbox
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


USER_EVENTS = ["GatewayUserAccount", "GatewayUserOrder", "GatewayUserPosition", "GatewayUserTrade"]
MARKET_EVENTS = ["GatewayQuote", "GatewayTrade", "GatewayDepth"]


async def test_pysignalr_hears_both_hubs(fake: FakeProjectX, rest: Rest) -> None:
    cid = fake.contract_id("MES")
    user_subs = [("SubscribeAccounts", []), *((f"Subscribe{k}", [ACCT]) for k in ("Orders", "Positions", "Trades"))]
    market_subs = [(f"SubscribeContract{k}", [cid]) for k in ("Quotes", "Trades", "MarketDepth")]
    async with (
        signalr(fake.user_hub_url, rest.token or "", USER_EVENTS, user_subs) as user,
        signalr(fake.market_hub_url, rest.token or "", MARKET_EVENTS, market_subs) as market,
    ):
        await user.wait(lambda: len(user.completions) == 4)
        await market.wait(lambda: len(market.completions) == 3 and market.events["GatewayDepth"])
        assert all(c.error is None for c in user.completions + market.completions)
        first_contract, first_quote = market.events["GatewayQuote"][0]
        assert first_contract == cid and first_quote["symbol"] == "F.US.MES" and "bestBid" in first_quote
        assert market.events["GatewayDepth"][0][1][0]["type"] == 6  # a Reset, then the whole book

        await rest.place(type=2, size=2)
        await user.wait(lambda: len(user.events["GatewayUserAccount"]) == 1)
        statuses = [args[0]["status"] for args in user.events["GatewayUserOrder"]]
        assert statuses == [1, 2]
        trade = user.events["GatewayUserTrade"][0][0]
        assert (trade["size"], trade["profitAndLoss"], trade["fees"]) == (2, None, 0.74)
        position = user.events["GatewayUserPosition"][0][0]
        assert (position["type"], position["size"], position["averagePrice"]) == (1, 2, 6000.25)

        # Our own fill prints on the tape (a buyer lifting the offer).
        await market.wait(lambda: len(market.events["GatewayTrade"]) == 1)
        contract, prints = market.events["GatewayTrade"][0]
        assert contract == cid and prints == [
            {"symbolId": "F.US.MES", "price": 6000.25, "timestamp": prints[0]["timestamp"], "type": 0, "volume": 2}
        ]
        await fake.trade("MES", "6000.25", size=3)
        await market.wait(lambda: len(market.events["GatewayQuote"]) == 2 and len(market.events["GatewayTrade"]) == 2)
        contract, quote = market.events["GatewayQuote"][1]
        assert contract == cid and "open" not in quote  # partial: unchanged fields left out
        assert quote["lastPrice"] == 6000.25 and quote["volume"] == 3
        contract, prints = market.events["GatewayTrade"][1]
        assert contract == cid and prints == [
            {"symbolId": "F.US.MES", "price": 6000.25, "timestamp": prints[0]["timestamp"], "type": 0, "volume": 3}
        ]

        await rest.call("Position/closeContract", {"accountId": ACCT, "contractId": cid})
        await user.wait(lambda: len(user.events["GatewayUserPosition"]) == 2)
        assert user.events["GatewayUserPosition"][1][0]["size"] == 0  # closed


async def test_pysignalr_bad_token_and_wrapped_user_events(fake: FakeProjectX, rest: Rest) -> None:
    from pysignalr.client import SignalRClient
    from pysignalr.exceptions import AuthorizationError

    with pytest.raises(AuthorizationError):
        await asyncio.wait_for(SignalRClient(f"{fake.user_hub_url}?access_token=nope").run(), 5)
    fake.wrap_user_events = True
    async with signalr(fake.user_hub_url, rest.token or "", USER_EVENTS, [("SubscribeOrders", [ACCT])]) as user:
        await user.wait(lambda: len(user.completions) == 1)
        await rest.place(type=1, limitPrice=5990)
        await user.wait(lambda: len(user.events["GatewayUserOrder"]) == 1)
        wrapped = user.events["GatewayUserOrder"][0][0]
        assert wrapped["action"] == 0 and wrapped["data"]["limitPrice"] == 5990.0


async def test_silent_market_hub_keeps_pinging(fake: FakeProjectX, rest: Rest) -> None:
    cid = fake.contract_id("MNQ")
    async with signalr(
        fake.market_hub_url, rest.token or "", MARKET_EVENTS, [("SubscribeContractQuotes", [cid])]
    ) as market:
        await market.wait(lambda: len(market.events["GatewayQuote"]) == 1)
        fake.go_silent("market")
        pings = fake.market_hub.pings_sent
        await fake.set_price("MNQ", "21010")
        await fake.until(lambda: fake.market_hub.pings_sent >= pings + 3)  # the socket looks healthy
        assert len(market.events["GatewayQuote"]) == 1 and fake.market_hub.alive() == 1
        fake.go_silent("market", False)
        await fake.set_price("MNQ", "21011")
        await market.wait(lambda: len(market.events["GatewayQuote"]) == 2)
        assert market.events["GatewayQuote"][1][1]["lastPrice"] == 21011.0


async def test_dropped_socket_must_negotiate_again(fake: FakeProjectX, rest: Rest) -> None:
    subs = [("SubscribeOrders", [ACCT])]
    async with signalr(fake.user_hub_url, rest.token or "", USER_EVENTS, subs) as first:
        await first.wait(lambda: len(first.completions) == 1)
        assert fake.drop_sockets("user") == 1
        # pysignalr's own reconnect reuses its negotiated id; ASP.NET (and the fake) refuse it.
        await fake.until(lambda: fake.user_hub.rejected_ids >= 1)
        assert fake.user_hub.alive() == 0
    async with signalr(fake.user_hub_url, rest.token or "", USER_EVENTS, subs) as second:
        await second.wait(lambda: len(second.completions) == 1)
        await rest.place(type=2)
        await second.wait(lambda: len(second.events["GatewayUserOrder"]) == 2)
    await fake.close_sockets()


# ====================================================================== project-x-py


@pytest.fixture
def projectx(fake: FakeProjectX, monkeypatch: pytest.MonkeyPatch) -> Any:
    """project-x-py pointed at the fake through its documented environment variables.

    Verified in its source (4.4.1, ``project_x_py/config.py``): ConfigManager reads
    PROJECTX_API_URL, PROJECTX_USER_HUB_URL and PROJECTX_MARKET_HUB_URL (and allows http:// for
    127.0.0.1), but ``ProjectX.from_env()`` builds its config from the defaults unless handed
    one, so the tests pass ``load_default_config()``, which applies them."""
    px = pytest.importorskip("project_x_py", reason="project-x-py needs Python >= 3.12 (a test-only dependency)")
    for key, value in fake.env().items():
        monkeypatch.setenv(key, value)
    return px


async def test_project_x_py_trades_against_the_fake(fake: FakeProjectX, projectx: Any) -> None:
    from project_x_py import EventBus, ProjectX
    from project_x_py.config import load_default_config
    from project_x_py.order_manager import OrderManager
    from project_x_py.realtime import ProjectXRealtimeClient

    config = load_default_config()
    assert config.api_url == fake.api_url and config.market_hub_url == fake.market_hub_url
    async with ProjectX.from_env(config=config) as client:
        await client.authenticate()
        assert client.account_info.id == ACCT
        assert [a.name for a in await client.list_accounts()] == ["50KTC-V2-123456-11111111", "PRAC-V2-123456-22222222"]
        found = await client.search_instruments("MNQ")
        assert [i.id for i in found] == [fake.contract_id("MNQ")]
        instrument = await client.get_instrument("MES")
        assert (instrument.id, instrument.tickSize, instrument.tickValue) == (fake.contract_id("MES"), 0.25, 1.25)
        bars = await client.get_bars("MES", days=1, interval=5)
        assert len(bars) >= 280 and list(bars.columns)[:6] == ["timestamp", "open", "high", "low", "close", "volume"]
        assert await client.ping() == "pong"

        realtime = ProjectXRealtimeClient(client.session_token, str(ACCT), config=config)
        got: dict[str, list[Any]] = defaultdict(list)
        changed = asyncio.Event()

        def collect(name: str) -> Callable[[Any], Any]:
            async def callback(data: Any) -> None:
                got[name].append(data)
                changed.set()

            return callback

        async def until(predicate: Callable[[], bool]) -> None:
            async def _wait() -> None:
                while not predicate():
                    changed.clear()
                    await changed.wait()

            await asyncio.wait_for(_wait(), 5)

        kinds = (
            "order_update",
            "position_update",
            "trade_execution",
            "account_update",
            "quote_update",
            "market_trade",
            "market_depth",
        )
        for name in kinds:
            await realtime.add_callback(name, collect(name))
        try:
            assert await realtime.connect()
            assert await realtime.subscribe_user_updates()
            assert await realtime.subscribe_market_data([instrument.id])
            await fake.until(lambda: bool(fake.market_hub.subscribers(("depth", instrument.id))))
            await until(lambda: bool(got["quote_update"]) and bool(got["market_depth"]))
            assert got["quote_update"][0]["contract_id"] == instrument.id

            orders = OrderManager(client, EventBus())
            placed = await orders.place_limit_order(instrument.id, 0, 1, 5990.0)
            assert placed.success and [o.id for o in await orders.search_open_orders()] == [placed.orderId]
            assert await orders.cancel_order(placed.orderId)
            assert fake.book.orders[placed.orderId].status == 3
            market = await orders.place_market_order(instrument.id, 0, 1)
            assert fake.book.orders[market.orderId].status == 2
            await fake.trade("MES", "6001")
            await until(
                lambda: len(got["market_trade"]) >= 2 and bool(got["account_update"]) and bool(got["position_update"])
            )
            assert any(o["status"] == 2 and o["id"] == market.orderId for o in got["order_update"])
            assert got["trade_execution"][0]["orderId"] == market.orderId
            assert got["position_update"][0]["averagePrice"] == 6000.25
            # Our fill prints on the tape first, then the market's trade.
            assert [t["data"][0]["price"] for t in got["market_trade"][:2]] == [6000.25, 6001.0]
            positions = await client.search_open_positions()
            assert [(p.contractId, p.size) for p in positions] == [(instrument.id, 1)]
        finally:
            await realtime.disconnect()


async def test_project_x_py_renews_and_meets_an_expired_token(fake: FakeProjectX, projectx: Any) -> None:
    from project_x_py import EventBus, ProjectX
    from project_x_py.config import load_default_config
    from project_x_py.exceptions import OrderSubmissionUncertainError, ProjectXAuthenticationError
    from project_x_py.order_manager import OrderManager

    async with ProjectX.from_env(config=load_default_config()) as client:
        await client.authenticate()
        old = client.session_token
        assert await client.validate_session() and client.session_token != old and fake.validations == 1
        fake.expire_tokens()
        # project-x-py trusts its own reading of ``exp``: a token the server expired early gets
        # a 401, a validate (401 too) does not help, and the error surfaces.
        with pytest.raises(ProjectXAuthenticationError):
            await client.list_accounts()
        # A mutating call is not retried blind after a 401 (its PR #124): the order is uncertain.
        with pytest.raises(OrderSubmissionUncertainError):
            await OrderManager(client, EventBus()).place_market_order(fake.contract_id("MES"), 0, 1)
        assert fake.book.orders == {}
        await client.authenticate()
        assert len(await client.list_accounts()) == 2 and fake.logins == 2

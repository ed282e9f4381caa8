"""The fake Schwab server's strictness over REST, with raw httpx: what it refuses, and how.

An adapter written against this fake must survive these on a real account: Basic client
credentials, single-use codes that end in ``@``, refresh tokens that die after 7 days, hashes (not
account numbers) in paths, required order-query times, a missing ``Location``, 429s, and orders
refused at the door (400) or rejected after acceptance. The streamer's: test_fake_schwab_stream.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.fakes import FakeClock
from tests.fakes.schwab import FakeSchwab
from tests.fakes.schwab_market import black_scholes, build_option_symbol, parse_option_symbol
from tests.integration.schwab_support import basic, bearer, code_from_browser, exchange, login


@pytest.fixture
async def fake() -> AsyncIterator[FakeSchwab]:
    server = FakeSchwab(clock=FakeClock(), heartbeat_interval=0.05, orders_per_minute=50)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def http(fake: FakeSchwab) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.base_url) as client:
        yield client


# ====================================================================== OAuth


async def test_token_endpoint_wants_basic_credentials(fake: FakeSchwab, http: httpx.AsyncClient) -> None:
    code = await code_from_browser(fake, http)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": fake.callback_urls[0]}
    r = await http.post("/v1/oauth/token", data=form, headers=basic(fake.app_key, "wrong"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = await http.post("/v1/oauth/token", data=form | {"client_id": fake.app_key, "client_secret": fake.app_secret})
    assert r.status_code == 401 and "Basic" in r.json()["error_description"]  # credentials in the body: no
    r = await http.post("/v1/oauth/token", json=form, headers=basic(fake.app_key, fake.app_secret))
    assert r.status_code == 400 and "x-www-form-urlencoded" in r.json()["error_description"]
    token = (await exchange(fake, http, code)).json()  # the code survived the refused attempts
    assert token["expires_in"] == 1800 and token["token_type"] == "Bearer" and token["scope"] == "api"
    assert token["access_token"].endswith("@") and token["id_token"].count(".") == 2


async def test_codes_are_single_use_decoded_short_lived_and_bound_to_the_callback(
    fake: FakeSchwab, http: httpx.AsyncClient
) -> None:
    code = await code_from_browser(fake, http)
    r = await exchange(fake, http, code.replace("@", "%40"))  # forgot to URL-decode
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    code = await code_from_browser(fake, http)
    assert (await exchange(fake, http, code)).status_code == 200
    assert (await exchange(fake, http, code)).json()["error"] == "invalid_grant"  # used
    code = await code_from_browser(fake, http)
    r = await exchange(fake, http, code, redirect_uri="https://127.0.0.1:8182/")  # trailing slash
    assert r.status_code == 400 and "redirect_uri" in r.json()["error_description"]
    code = await code_from_browser(fake, http)
    fake.clock.advance(31)
    assert (await exchange(fake, http, code)).json()["error_description"] == "authorization code has expired"
    r = await http.get(fake.authorize_url(callback="https://example.com/cb"))
    assert r.status_code == 400 and "Access Denied" in r.text


async def test_refresh_keeps_the_7_day_clock_and_dead_tokens_say_so(fake: FakeSchwab, http: httpx.AsyncClient) -> None:
    token = await login(fake, http)
    creds = basic(fake.app_key, fake.app_secret)
    fake.clock.advance(timedelta(minutes=31))
    r = await http.get("/trader/v1/accounts/accountNumbers", headers=bearer(token))
    assert r.status_code == 401 and r.json()["errors"]  # Trader shape: {"message", "errors"}
    form = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}
    fresh = (await http.post("/v1/oauth/token", data=form, headers=creds)).json()
    assert fresh["refresh_token"] == token["refresh_token"] and fresh["access_token"] != token["access_token"]
    assert (await http.get("/trader/v1/accounts/accountNumbers", headers=bearer(fresh))).status_code == 200
    fake.clock.advance(timedelta(days=6, hours=23, minutes=29))  # 7 days after the login, not the refresh
    r = await http.post("/v1/oauth/token", data=form, headers=creds)
    assert r.status_code == 400 and r.json() == {
        "error": "invalid_client",
        "error_description": "refresh token invalid",
    }

    other = await login(fake, http)
    fake.revoke_refresh_tokens()
    r = await http.post(
        "/v1/oauth/token", data={"grant_type": "refresh_token", "refresh_token": other["refresh_token"]}, headers=creds
    )
    body = r.json()
    assert r.status_code == 400 and body["error"] == "unsupported_token_type"
    assert "refresh_token_authentication_error" in body["error_description"]


async def test_bearer_errors_take_each_api_s_shape(fake: FakeSchwab, http: httpx.AsyncClient) -> None:
    r = await http.get("/marketdata/v1/quotes", params={"symbols": "AAPL"})
    err = r.json()["errors"][0]
    assert r.status_code == 401 and err["status"] == "401" and err["title"] == "Unauthorized"
    token = await login(fake, http)
    fake.expire_tokens()
    r = await http.get("/trader/v1/accounts", headers=bearer(token))
    assert r.status_code == 401 and set(r.json()) == {"message", "errors"}
    r = await http.get("/trader/v1/accounts", headers={"Authorization": token["access_token"]})  # no "Bearer "
    assert r.status_code == 401


# ====================================================================== Trader API


@pytest.fixture
async def api(fake: FakeSchwab, http: httpx.AsyncClient) -> httpx.AsyncClient:
    http.headers.update(bearer(await login(fake, http)))
    return http


def margin(fake: FakeSchwab) -> str:
    return fake.account_hashes()["12345678"]


def cash(fake: FakeSchwab) -> str:
    return fake.account_hashes()["87654321"]


def order(symbol: str, instruction: str, qty: int, order_type: str = "MARKET", **extra: Any) -> dict[str, Any]:
    asset = "OPTION" if len(symbol) == 21 else "EQUITY"
    body = {
        "orderType": order_type,
        "session": "NORMAL",
        "duration": "DAY",
        "orderStrategyType": "SINGLE",
        "orderLegCollection": [
            {"instruction": instruction, "quantity": qty, "instrument": {"symbol": symbol, "assetType": asset}}
        ],
    }
    return body | extra


async def place(api: httpx.AsyncClient, h: str, body: Any) -> httpx.Response:
    return await api.post(f"/trader/v1/accounts/{h}/orders", json=body)


async def placed(api: httpx.AsyncClient, h: str, body: Any) -> dict[str, Any]:
    r = await place(api, h, body)
    assert r.status_code == 201, r.text
    order_id = r.headers["Location"].rsplit("/", 1)[1]
    return (await api.get(f"/trader/v1/accounts/{h}/orders/{order_id}")).json()


async def test_paths_take_the_hash_and_order_queries_need_both_times(fake: FakeSchwab, api: httpx.AsyncClient) -> None:
    rows = (await api.get("/trader/v1/accounts/accountNumbers")).json()
    assert {r["accountNumber"] for r in rows} == {"12345678", "87654321"}
    assert all(len(r["hashValue"]) == 64 for r in rows)
    r = await api.get("/trader/v1/accounts/12345678")
    assert r.status_code == 400 and "hashValue" in r.json()["message"]
    h = margin(fake)
    r = await api.get(f"/trader/v1/accounts/{h}/orders")
    assert r.status_code == 400 and r.json()["message"] == "fromEnteredTime is required"
    times = {"fromEnteredTime": "2026-11-01T00:00:00.000Z", "toEnteredTime": "2026-11-25T00:00:00.000Z"}
    assert (await api.get(f"/trader/v1/accounts/{h}/orders", params=times)).json() == []
    r = await api.get(f"/trader/v1/accounts/{h}/orders", params=times | {"toEnteredTime": "2026-11-25"})
    assert r.status_code == 400 and "ISO-8601" in r.json()["message"]
    r = await api.get("/trader/v1/orders", params=times | {"fromEnteredTime": "2026-01-01T00:00:00Z"})
    assert r.status_code == 400 and "60 days" in r.json()["message"]
    r = await api.get(f"/trader/v1/accounts/{h}", params={"fields": "position"})
    assert r.status_code == 400
    prefs = (await api.get("/trader/v1/userPreference")).json()
    assert isinstance(prefs, dict) and prefs["streamerInfo"][0]["streamerSocketUrl"] == fake.ws_url
    r = await api.get(
        f"/trader/v1/accounts/{h}/transactions",
        params={"startDate": times["fromEnteredTime"], "endDate": times["toEnteredTime"]},
    )
    assert r.status_code == 400 and r.json()["message"] == "types is required"


BAD_ORDERS = [
    (lambda: {"orderType": "MARKET"}, "orderStrategyType is required"),
    (lambda: order("NOPE", "BUY", 1), "Symbol 'NOPE' is not recognized"),
    (lambda: order("AAPL", "BUY", 1, "LIMIT", price="190.001"), "not a valid increment"),
    (lambda: order("PENY", "BUY", 100, "LIMIT", price="0.45001"), "not a valid increment"),
    (lambda: order("AAPL", "BUY", 1, "LIMIT"), "price is required"),
    (lambda: order("AAPL", "BUY", 1, price="190.00"), "price is not allowed"),
    (lambda: order("AAPL", "BUY", 1.5), "whole number"),
    (lambda: order("AAPL", "BUY_TO_OPEN", 1), "Invalid instruction"),
    (lambda: order("/ES", "BUY", 1), "Futures orders are not offered"),
    (lambda: order("AAPL", "BUY", 1, requestedDestination="AUTO"), "requestedDestination"),
    (lambda: order("AAPL", "BUY", 1, status="WORKING"), "set by Schwab"),
    (lambda: order("AAPL", "BUY", 1) | {"symbol": "AAPL"}, "Unrecognized field"),
    (lambda: order("AAPL", "BUY", 1, session="EXTENDED"), "Invalid session"),
    (lambda: {"orderStrategyType": "OCO", "childOrderStrategies": [order("AAPL", "BUY", 1)]}, "exactly two"),
    (lambda: order("AAPL", "BUY", 1, orderStrategyType="TRIGGER"), "TRIGGER order needs"),
]


@pytest.mark.parametrize(("make", "message"), BAD_ORDERS)
async def test_malformed_orders_are_refused_with_a_reason_and_change_nothing(
    fake: FakeSchwab, api: httpx.AsyncClient, make: Any, message: str
) -> None:
    r = await place(api, margin(fake), make())
    assert r.status_code == 400, r.text
    body = r.json()
    assert message in body["message"] and body["errors"] and "Location" not in r.headers
    assert fake.book.orders == {}


def option_symbol(fake: FakeSchwab, root: str, put_call: str, strike: str, nth_expiry: int = 1) -> str:
    expiry = fake.market.expirations(fake.market.equities[root])[nth_expiry]
    return build_option_symbol(root, expiry, put_call, Decimal(strike))


async def test_option_orders_are_checked_against_the_series_and_its_ticks(
    fake: FakeSchwab, api: httpx.AsyncClient
) -> None:
    h = margin(fake)
    today = fake.market.today()
    last_friday = today - timedelta(days=(today.weekday() - 4) % 7 or 7)
    expired = build_option_symbol("AAPL", last_friday, "C", Decimal("190"))
    r = await place(api, h, order(expired, "BUY_TO_OPEN", 1, "LIMIT", price="1.00"))
    assert r.status_code == 400 and "has expired" in r.json()["message"]
    assert parse_option_symbol("AAPL 261218C00190000") is None  # five spaces are required, not one
    f_call = option_symbol(fake, "F", "C", "11")  # Ford is not in the penny program: nickels below $3
    r = await place(api, h, order(f_call, "BUY_TO_OPEN", 1, "LIMIT", price="0.52"))
    assert r.status_code == 400 and "tick is 0.05" in r.json()["message"]
    r = await place(
        api, h, order(option_symbol(fake, "AAPL", "C", "190"), "BUY_TO_OPEN", 1, "LIMIT", price="2.50", session="AM")
    )
    assert r.status_code == 400 and "NORMAL session" in r.json()["message"]
    low, high = option_symbol(fake, "AAPL", "P", "185"), option_symbol(fake, "AAPL", "P", "190")
    credit = {
        "orderType": "NET_CREDIT",
        "session": "NORMAL",
        "duration": "DAY",
        "orderStrategyType": "SINGLE",
        "complexOrderStrategyType": "VERTICAL",
        "quantity": 1,
        "price": "5.10",
        "orderLegCollection": [
            {"instruction": "BUY_TO_OPEN", "quantity": 1, "instrument": {"symbol": low, "assetType": "OPTION"}},
            {"instruction": "SELL_TO_OPEN", "quantity": 1, "instrument": {"symbol": high, "assetType": "OPTION"}},
        ],
    }
    r = await place(api, h, credit)
    assert r.status_code == 400 and "exceeds the width" in r.json()["message"]
    r = await place(api, h, credit | {"price": "1.005"})
    assert r.status_code == 400 and "increment" in r.json()["message"]
    r = await place(api, h, credit | {"orderType": "LIMIT", "price": "1.00"})
    assert r.status_code == 400 and "NET_DEBIT, NET_CREDIT" in r.json()["message"]
    r = await place(api, h, credit | {"complexOrderStrategyType": "STRADDLE", "price": "1.00"})
    assert r.status_code == 400 and "do not form a STRADDLE" in r.json()["message"]
    assert fake.book.orders == {}


async def test_multi_leg_orders_fill_at_the_net_price(fake: FakeSchwab, api: httpx.AsyncClient) -> None:
    h = margin(fake)
    p180, p185 = option_symbol(fake, "AAPL", "P", "180"), option_symbol(fake, "AAPL", "P", "185")
    c195, c200 = option_symbol(fake, "AAPL", "C", "195"), option_symbol(fake, "AAPL", "C", "200")
    quotes = (await api.get("/marketdata/v1/quotes", params={"symbols": ",".join([p180, p185, c195, c200])})).json()
    bid = {s: Decimal(str(quotes[s]["quote"]["bidPrice"])) for s in quotes}
    ask = {s: Decimal(str(quotes[s]["quote"]["askPrice"])) for s in quotes}
    natural_credit = bid[p185] - ask[p180] + bid[c195] - ask[c200]
    legs = [("BUY_TO_OPEN", p180), ("SELL_TO_OPEN", p185), ("SELL_TO_OPEN", c195), ("BUY_TO_OPEN", c200)]
    condor = {
        "orderType": "NET_CREDIT",
        "session": "NORMAL",
        "duration": "DAY",
        "orderStrategyType": "SINGLE",
        "complexOrderStrategyType": "IRON_CONDOR",
        "quantity": 3,
        "price": str(natural_credit + Decimal("0.05")),
        "orderLegCollection": [
            {"instruction": i, "quantity": 3, "instrument": {"symbol": s, "assetType": "OPTION"}} for i, s in legs
        ],
    }
    working = await placed(api, h, condor)
    assert working["status"] == "WORKING"  # asking more than the natural credit: it waits
    cheaper = await placed(api, h, condor | {"price": str(natural_credit)})
    assert cheaper["status"] == "FILLED" and cheaper["filledQuantity"] == 3
    execs = cheaper["orderActivityCollection"][0]["executionLegs"]
    net = sum(Decimal(str(e["price"])) * (1 if legs[e["legId"] - 1][0].startswith("SELL") else -1) for e in execs)
    assert net == natural_credit
    acct = fake.account("12345678")
    assert acct.holdings[p185].short_qty == 3 and acct.holdings[c200].long_qty == 3
    straddle = {
        "orderType": "NET_DEBIT",
        "session": "NORMAL",
        "duration": "DAY",
        "orderStrategyType": "SINGLE",
        "complexOrderStrategyType": "STRADDLE",
        "quantity": 1,
        "price": "50.00",
        "orderLegCollection": [
            {
                "instruction": "BUY_TO_OPEN",
                "quantity": 1,
                "instrument": {"symbol": option_symbol(fake, "AAPL", pc, "190"), "assetType": "OPTION"},
            }
            for pc in ("C", "P")
        ],
    }
    assert (await placed(api, h, straddle))["status"] == "FILLED"


async def test_option_quotes_follow_the_underlying_and_resting_orders_fill(
    fake: FakeSchwab, api: httpx.AsyncClient
) -> None:
    h = margin(fake)
    call = option_symbol(fake, "AAPL", "C", "190")
    before = (await api.get("/marketdata/v1/quotes", params={"symbols": call})).json()[call]["quote"]
    resting = await placed(api, h, order(call, "BUY_TO_OPEN", 1, "LIMIT", price=f"{before['bidPrice']:.2f}"))
    assert resting["status"] == "WORKING"
    fake.set_price("AAPL", "185.00")  # the underlying falls, the call's ask falls through the limit
    after = (await api.get("/marketdata/v1/quotes", params={"symbols": call})).json()[call]["quote"]
    assert after["askPrice"] < before["bidPrice"] and after["underlyingPrice"] == 185.0
    filled = (await api.get(f"/trader/v1/accounts/{h}/orders/{resting['orderId']}")).json()
    assert filled["status"] == "FILLED"
    assert filled["orderActivityCollection"][0]["executionLegs"][0]["price"] == after["askPrice"]
    close = await placed(api, h, order(call, "SELL_TO_CLOSE", 1))
    assert close["status"] == "FILLED" and call not in fake.account("12345678").holdings
    again = await placed(api, h, order(call, "SELL_TO_CLOSE", 1))
    assert again["status"] == "REJECTED" and "oversold" in again["statusDescription"]


async def test_stops_brackets_and_durations(fake: FakeSchwab, api: httpx.AsyncClient) -> None:
    h = margin(fake)
    stop = await placed(api, h, order("AAPL", "BUY", 10, "STOP", stopPrice="189.00"))
    assert stop["status"] == "REJECTED" and "above the last trade price" in stop["statusDescription"]
    stop = await placed(api, h, order("AAPL", "BUY", 10, "STOP_LIMIT", stopPrice="192.00", price="192.50"))
    assert stop["status"] == "WORKING"
    fake.set_price("AAPL", "192.20")  # triggers; the ask 192.21 is inside the limit
    got = (await api.get(f"/trader/v1/accounts/{h}/orders/{stop['orderId']}")).json()
    assert got["status"] == "FILLED" and got["orderActivityCollection"][0]["executionLegs"][0]["price"] == 192.21

    fake.set_price("MSFT", "417.00", ask_size=30)
    partial = await placed(api, h, order("MSFT", "BUY", 100, "LIMIT", price="417.01"))
    assert partial["status"] == "WORKING" and partial["filledQuantity"] == 30  # only 30 at the touch
    fok = await placed(api, h, order("MSFT", "BUY", 100, "LIMIT", price="417.01", duration="FILL_OR_KILL"))
    assert fok["status"] == "CANCELED" and fok["filledQuantity"] == 0
    fake.set_price("MSFT", "417.00", ask_size=1000)
    got = (await api.get(f"/trader/v1/accounts/{h}/orders/{partial['orderId']}")).json()
    assert got["status"] == "FILLED" and len(got["orderActivityCollection"]) == 2

    entry = order(
        "F",
        "BUY",
        100,
        "LIMIT",
        price="11.00",
        orderStrategyType="TRIGGER",
        childOrderStrategies=[order("F", "SELL", 100, "LIMIT", price="12.00")],
    )
    parent = await placed(api, h, entry)
    assert parent["childOrderStrategies"][0]["status"] == "AWAITING_PARENT_ORDER"
    r = await api.delete(f"/trader/v1/accounts/{h}/orders/{parent['orderId']}")
    assert r.status_code == 200
    parent = (await api.get(f"/trader/v1/accounts/{h}/orders/{parent['orderId']}")).json()
    assert parent["status"] == "CANCELED" and parent["childOrderStrategies"][0]["status"] == "CANCELED"

    day = await placed(api, h, order("F", "BUY", 100, "LIMIT", price="10.00"))
    fake.end_of_day()
    assert (await api.get(f"/trader/v1/accounts/{h}/orders/{day['orderId']}")).json()["status"] == "EXPIRED"


async def test_plain_and_trailing_stops_trigger_on_the_last_trade(fake: FakeSchwab, api: httpx.AsyncClient) -> None:
    h = margin(fake)
    assert (await placed(api, h, order("AAPL", "BUY", 20)))["status"] == "FILLED"
    stop = await placed(api, h, order("AAPL", "SELL", 10, "STOP", stopPrice="185.00", duration="GOOD_TILL_CANCEL"))
    trail = await placed(
        api,
        h,
        order(
            "AAPL",
            "SELL",
            10,
            "TRAILING_STOP",
            stopPriceLinkBasis="LAST",
            stopPriceLinkType="VALUE",
            stopPriceOffset="1.00",
        ),
    )
    assert trail["stopPrice"] == 189.01 and trail["stopPriceOffset"] == 1.0  # the buy printed at 190.01
    fake.set_price("AAPL", "195.00")  # the trail follows the last trade up
    url = f"/trader/v1/accounts/{h}/orders/{trail['orderId']}"
    assert (await api.get(url)).json()["stopPrice"] == 194.0
    fake.set_price("AAPL", "194.50")  # a dip that stays above the trail: nothing
    assert (await api.get(url)).json()["status"] == "WORKING"
    fake.set_price("AAPL", "193.90")
    got = (await api.get(url)).json()
    assert got["status"] == "FILLED" and got["orderActivityCollection"][0]["executionLegs"][0]["price"] == 193.89
    stop_url = f"/trader/v1/accounts/{h}/orders/{stop['orderId']}"
    assert (await api.get(stop_url)).json()["status"] == "WORKING"
    fake.set_price("AAPL", "185.00")
    assert (await api.get(stop_url)).json()["status"] == "FILLED"
    assert "AAPL" not in fake.account("12345678").holdings
    r = await place(api, h, order("AAPL", "SELL", 1, "TRAILING_STOP", stopPriceLinkBasis="LAST"))
    assert r.status_code == 400 and "stopPriceOffset" in r.json()["message"]
    ioc = await placed(api, h, order("F", "BUY", 1500, "LIMIT", price="11.21", duration="IMMEDIATE_OR_CANCEL"))
    assert ioc["status"] == "CANCELED" and ioc["filledQuantity"] == 1000  # what the touch had, the rest gone


async def test_orders_wait_for_their_session(fake: FakeSchwab, http: httpx.AsyncClient) -> None:
    h = margin(fake)
    fake.clock.advance(timedelta(days=4))  # Saturday
    http.headers.update(bearer(await login(fake, http)))
    weekend = await placed(http, h, order("AAPL", "BUY", 5))
    assert weekend["status"] == "QUEUED"
    fake.set_price("AAPL", "189.00")
    url = f"/trader/v1/accounts/{h}/orders/{weekend['orderId']}"
    assert (await http.get(url)).json()["status"] == "QUEUED"
    fake.clock.advance(timedelta(days=2, hours=-2))  # Monday 08:00 New York: pre-market
    http.headers.update(bearer(await login(fake, http)))
    early = await placed(http, h, order("MSFT", "BUY", 5, "LIMIT", price="418.00", session="AM"))
    assert early["status"] == "FILLED"
    fake.set_price("AAPL", "189.50")
    assert (await http.get(url)).json()["status"] == "QUEUED"  # NORMAL opens at 09:30
    fake.clock.advance(timedelta(hours=2))
    http.headers.update(bearer(await login(fake, http)))
    fake.set_price("AAPL", "189.50")
    assert (await http.get(url)).json()["status"] == "FILLED"
    option = await placed(http, h, order(option_symbol(fake, "AAPL", "C", "190"), "BUY_TO_OPEN", 1))
    assert option["status"] == "FILLED"


async def test_account_level_rejects_come_after_201(fake: FakeSchwab, api: httpx.AsyncClient) -> None:
    c = cash(fake)
    short = await placed(api, c, order("AAPL", "SELL_SHORT", 10, "LIMIT", price="190.00"))
    assert short["status"] == "REJECTED" and "cash account" in short["statusDescription"]
    big = await placed(api, c, order("AAPL", "BUY", 1000, "LIMIT", price="190.00"))
    assert big["status"] == "REJECTED" and "buying power" in big["statusDescription"]
    fake.reject_next("Order rejected by the exchange: halted")
    halted = await placed(api, margin(fake), order("AAPL", "BUY", 1))
    assert halted["status"] == "REJECTED" and halted["statusDescription"].endswith("halted")
    preview = (
        await api.post(
            f"/trader/v1/accounts/{c}/previewOrder", json=order("AAPL", "BUY", 1000, "LIMIT", price="190.00")
        )
    ).json()
    assert preview["orderStrategy"]["status"] == "REJECTED" and preview["orderValidationResult"]["rejects"]


async def test_working_exits_count_against_what_can_still_be_sold(fake: FakeSchwab, api: httpx.AsyncClient) -> None:
    h = margin(fake)
    exits = {
        "orderStrategyType": "OCO",
        "childOrderStrategies": [
            order("MSFT", "SELL", 10, "LIMIT", price="430.00"),
            order("MSFT", "SELL", 10, "STOP", stopPrice="400.00"),
        ],
    }
    bracket = order("MSFT", "BUY", 20, orderStrategyType="TRIGGER", childOrderStrategies=[exits])
    assert (await placed(api, h, bracket))["status"] == "FILLED"  # 20 bought; 10 of them guarded by the pair
    assert (await placed(api, h, order("MSFT", "SELL", 10, "LIMIT", price="440.00")))["status"] == "WORKING"
    over = await placed(api, h, order("MSFT", "SELL", 1, "LIMIT", price="440.00"))
    assert over["status"] == "REJECTED" and "oversold" in over["statusDescription"]


async def test_a_missing_location_leaves_the_order_findable(fake: FakeSchwab, api: httpx.AsyncClient) -> None:
    h = margin(fake)
    fake.omit_location()
    r = await place(api, h, order("AAPL", "BUY", 7))
    assert r.status_code == 201 and "Location" not in r.headers
    now = fake.clock.now()
    times = {
        "fromEnteredTime": (now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "toEnteredTime": (now + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }
    (found,) = (await api.get(f"/trader/v1/accounts/{h}/orders", params=times)).json()
    leg = found["orderLegCollection"][0]
    assert leg["instrument"]["symbol"] == "AAPL" and leg["instruction"] == "BUY" and found["quantity"] == 7
    assert found["enteredTime"].endswith("+0000")


async def test_rate_limits_answer_429(fake: FakeSchwab, api: httpx.AsyncClient) -> None:
    for _ in range(fake.data_per_minute):
        assert (await api.get("/marketdata/v1/quotes", params={"symbols": "AAPL"})).status_code == 200
    r = await api.get("/trader/v1/accounts")
    assert r.status_code == 429 and r.content == b""
    fake.clock.advance(61)
    assert (await api.get("/trader/v1/accounts")).status_code == 200
    fake.orders_per_minute = 2
    h = margin(fake)
    assert (await place(api, h, order("F", "BUY", 1))).status_code == 201
    assert (await place(api, h, order("F", "BUY", 1))).status_code == 201
    assert (await place(api, h, order("F", "BUY", 1))).status_code == 429
    assert (await place(api, cash(fake), order("F", "BUY", 1))).status_code == 201  # per account
    fake.fail_429("/marketdata/v1/chains")
    assert (await api.get("/marketdata/v1/chains", params={"symbol": "AAPL"})).status_code == 429
    assert (await api.get("/marketdata/v1/chains", params={"symbol": "AAPL"})).status_code == 200


async def test_drop_and_slow_switches(fake: FakeSchwab, api: httpx.AsyncClient) -> None:
    fake.drop_next("/trader/v1/accounts")
    with pytest.raises(httpx.TransportError):
        await api.get("/trader/v1/accounts")
    fake.slow("/trader/v1/userPreference", 0.3)
    with pytest.raises(httpx.ReadTimeout):
        await api.get("/trader/v1/userPreference", timeout=0.05)


# ====================================================================== market data


async def test_price_history_and_chain_parameters_are_checked(fake: FakeSchwab, api: httpx.AsyncClient) -> None:
    r = await api.get(
        "/marketdata/v1/pricehistory", params={"symbol": "AAPL", "periodType": "day", "frequencyType": "daily"}
    )
    err = r.json()["errors"][0]
    assert r.status_code == 400 and err["source"] == {"parameter": "frequencyType"}
    r = await api.get("/marketdata/v1/pricehistory", params={"symbol": "AAPL", "periodType": "month", "period": 5})
    assert r.status_code == 400 and "period 5" in r.json()["errors"][0]["detail"]
    r = await api.get(
        "/marketdata/v1/pricehistory", params={"symbol": "AAPL", "frequencyType": "minute", "frequency": 2}
    )
    assert r.status_code == 400
    day = (
        await api.get(
            "/marketdata/v1/pricehistory",
            params={"symbol": "AAPL", "periodType": "day", "period": 1, "frequencyType": "minute", "frequency": 30},
        )
    ).json()
    assert len(day["candles"]) >= 1 and all(c["high"] >= max(c["open"], c["close"]) for c in day["candles"])
    assert (await api.get("/marketdata/v1/pricehistory", params={"symbol": "ZZZZ"})).json()["empty"] is True
    chain = (await api.get("/marketdata/v1/chains", params={"symbol": "ZZZZ"})).json()
    assert chain["status"] == "FAILED" and chain["callExpDateMap"] == {}
    chain = (
        await api.get(
            "/marketdata/v1/chains", params={"symbol": "AAPL", "contractType": "PUT", "strikeCount": 2, "range": "OTM"}
        )
    ).json()
    assert chain["callExpDateMap"] == {} and all(float(k) < 190 for m in chain["putExpDateMap"].values() for k in m)
    r = await api.get("/marketdata/v1/chains", params={"symbol": "AAPL", "volatility": 40})
    assert r.status_code == 400 and "ANALYTICAL" in r.json()["errors"][0]["detail"]
    analytical = (
        await api.get(
            "/marketdata/v1/chains",
            params={"symbol": "AAPL", "strategy": "ANALYTICAL", "underlyingPrice": 200, "strikeCount": 1},
        )
    ).json()
    assert analytical["underlyingPrice"] == 200.0


async def test_chain_greeks_are_black_scholes_of_the_underlying(fake: FakeSchwab, api: httpx.AsyncClient) -> None:
    fake.set_price("AAPL", "200.00")
    chain = (await api.get("/marketdata/v1/chains", params={"symbol": "AAPL", "strikeCount": 1})).json()
    expiry, strikes = sorted(chain["callExpDateMap"].items())[1]
    c = strikes["200.0"][0]
    years = None
    key = parse_option_symbol(c["symbol"])
    assert key is not None
    from datetime import datetime, time

    from tests.fakes.schwab_market import NEW_YORK

    years = (datetime.combine(key.expiry, time(16), NEW_YORK) - fake.clock.now()).total_seconds() / (365 * 86400)
    g = black_scholes(200.0, 200.0, years, c["volatility"] / 100, fake.market.rate, True)
    assert c["delta"] == round(g.delta, 3) and c["theta"] == round(g.theta, 3)
    assert c["bid"] <= g.value <= c["ask"]
    assert expiry.endswith(f":{c['daysToExpiration']}")
    full = (await api.get("/marketdata/v1/chains", params={"symbol": "AAPL", "contractType": "CALL"})).json()
    nearest = sorted(full["callExpDateMap"].items())[0][1]
    far_otm = nearest[max(nearest, key=float)][0]
    assert far_otm["delta"] == "NaN" and far_otm["bid"] == 0.0  # worthless: no Greeks, as live chains show

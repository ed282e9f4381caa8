"""The fake Schwab server, proven with a client nobody here wrote: schwab-py 1.5.1.

schwab-py hard-codes ``https://api.schwabapi.com`` in every request method and in its token
endpoint, so these tests give its OAuth sessions an httpx transport that sends that host to the
fake's loopback port (the documented injection point: ``AsyncClient(api_key, session)`` accepts
any session, and ``schwab.auth`` builds its sessions from two module names we substitute). The
streamer needs no patch: schwab-py follows ``streamerSocketUrl`` from userPreference.

Vendor time runs on the fake's FakeClock; where schwab-py's own token bookkeeping must see the
same jump (its expiry check reads ``time.time()`` in authlib), the tests shift that clock too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import warnings
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from tests.fakes import FakeClock
from tests.fakes.schwab import FakeSchwab

with warnings.catch_warnings():
    # authlib 1.9 warns that it prefers httpx2 (and installs an "always" filter for its warning on
    # import); schwab-py's streamer imports the deprecated websockets.legacy.
    import authlib.deprecate  # noqa: F401

    warnings.simplefilter("ignore", DeprecationWarning)
    import authlib.oauth2.rfc6749.wrappers as authlib_wrappers
    import schwab
    import schwab.auth
    import websockets
    from authlib.integrations.base_client.errors import InvalidTokenError, OAuthError
    from schwab.orders import common, equities, options
    from schwab.streaming import StreamClient
    from schwab.utils import Utils

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CALLBACK = "https://127.0.0.1:8182"


def _to_fake(url: httpx.URL, port: int) -> httpx.URL:
    if url.host == "api.schwabapi.com":
        return url.copy_with(scheme="http", host="127.0.0.1", port=port)
    return url


class AsyncToFake(httpx.AsyncBaseTransport):
    """Sends schwab-py's hard-coded vendor host to the fake; everything else is untouched."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = _to_fake(request.url, self.port)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class SyncToFake(httpx.BaseTransport):
    def __init__(self, port: int) -> None:
        self.port = port
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = _to_fake(request.url, self.port)
        return self.inner.handle_request(request)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSchwab]:
    server = FakeSchwab(clock=FakeClock(), heartbeat_interval=0.05)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def sessions(fake: FakeSchwab, monkeypatch: pytest.MonkeyPatch) -> None:
    """schwab.auth's two OAuth session classes, built with a transport to the fake."""
    port = fake.port

    class Sync(schwab.auth.OAuth2Client):
        def __init__(self, *a: Any, **kw: Any) -> None:
            kw.setdefault("transport", SyncToFake(port))
            super().__init__(*a, **kw)

    class Async(schwab.auth.AsyncOAuth2Client):
        def __init__(self, *a: Any, **kw: Any) -> None:
            kw.setdefault("transport", AsyncToFake(port))
            super().__init__(*a, **kw)

    monkeypatch.setattr(schwab.auth, "OAuth2Client", Sync)
    monkeypatch.setattr(schwab.auth, "AsyncOAuth2Client", Async)


class ClientClock:
    """Shifts the ``time.time()`` authlib's token expiry check reads, in step with the fake clock."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> None:
        self.offset = 0.0
        self.clock = clock
        monkeypatch.setattr(authlib_wrappers, "time", SimpleNamespace(time=lambda: time.time() + self.offset))

    def advance(self, seconds: float) -> None:
        self.offset += seconds
        self.clock.advance(seconds)


def browser_login(fake: FakeSchwab, authorization_url: str) -> str:
    """What the user's browser does: follow the authorize URL and land on the callback (which fails
    to load); the address bar then holds the URL the user pastes back."""
    with httpx.Client(transport=SyncToFake(fake.port)) as browser:
        r = browser.get(authorization_url, follow_redirects=False)
    assert r.status_code == 302, r.text
    return r.headers["Location"]


async def pasted_url_client(fake: FakeSchwab, written: list[dict[str, Any]]) -> Any:
    """A client made the way ``client_from_manual_flow`` makes one: from a pasted received URL."""
    ctx = schwab.auth.get_auth_context(fake.app_key, CALLBACK)
    assert ctx.authorization_url.startswith("https://api.schwabapi.com/v1/oauth/authorize?")
    received = await asyncio.to_thread(browser_login, fake, ctx.authorization_url)
    assert received.startswith(CALLBACK + "?code=C0.") and "%40" in received and f"state={ctx.state}" in received

    def write(token: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        written.append(token)

    return await asyncio.to_thread(
        schwab.auth.client_from_received_url,
        fake.app_key,
        fake.app_secret,
        ctx,
        received,
        write,
        asyncio=True,
        enforce_enums=False,
    )


async def token_file_client(fake: FakeSchwab, tmp_path: Any) -> Any:
    """The usual long-lived client: a token file from a pasted-URL login, then client_from_token_file."""
    written: list[dict[str, Any]] = []
    await pasted_url_client(fake, written)
    path = tmp_path / "token.json"
    path.write_text(json.dumps(written[-1]))
    return schwab.auth.client_from_token_file(str(path), fake.app_key, fake.app_secret, asyncio=True)


# ====================================================================== OAuth


async def test_pasted_url_client_refreshes_after_30_minutes_issue_222(
    fake: FakeSchwab, sessions: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ClientClock(monkeypatch, fake.clock)
    written: list[dict[str, Any]] = []
    client = await pasted_url_client(fake, written)
    exchange = fake.token_requests[-1]
    # The code went back decoded ("@", not "%40"), with the redirect_uri; credentials by Basic auth.
    assert exchange["grant_type"] == "authorization_code" and exchange["code"].endswith("@")
    assert exchange["redirect_uri"] == CALLBACK
    assert written[-1]["token"]["expires_in"] == 1800
    first_access = written[-1]["token"]["access_token"]

    r = await client.get_account_numbers()
    assert r.status_code == 200 and len(r.json()) == 2

    clock.advance(31 * 60)
    # schwab-py 1.5.1 as shipped: the session has no token_endpoint, so authlib gives up without
    # asking the server (schwab-py issue #222, open).
    with pytest.raises(InvalidTokenError):
        await client.get_account_numbers()
    assert not any(t.get("grant_type") == "refresh_token" for t in fake.token_requests)

    # The fix proposed in schwab-py PR #223: give the session its token endpoint. The refresh token
    # from the pasted URL then refreshes against the fake.
    client.session.metadata["token_endpoint"] = schwab.auth.TOKEN_ENDPOINT
    r = await client.get_account_numbers()
    assert r.status_code == 200
    refresh = fake.token_requests[-1]
    assert refresh["grant_type"] == "refresh_token" and refresh["refresh_token"] == written[0]["token"]["refresh_token"]
    new_access = client.session.token["access_token"]
    assert new_access != first_access
    assert not fake.access_token_valid(first_access) and fake.access_token_valid(new_access)
    assert written[-1]["token"]["access_token"] == new_access  # the refreshed token reached the writer


async def test_token_file_client_refreshes_then_dies_after_7_days(
    fake: FakeSchwab, sessions: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    clock = ClientClock(monkeypatch, fake.clock)
    client = await token_file_client(fake, tmp_path)
    assert (await client.get_accounts()).status_code == 200
    for _ in range(3):  # a few refreshes across the week keep it going
        clock.advance(2 * 86400)
        assert (await client.get_account_numbers()).status_code == 200
    refreshes = [t for t in fake.token_requests if t.get("grant_type") == "refresh_token"]
    assert len(refreshes) == 3
    clock.advance(1.5 * 86400)  # 7.5 days after the browser login: refreshing does not extend it
    with pytest.raises(OAuthError) as info:
        await client.get_account_numbers()
    assert info.value.error == "invalid_client" and "refresh token invalid" in info.value.description


async def test_bad_client_secret_cannot_exchange_the_code(fake: FakeSchwab, sessions: None) -> None:
    ctx = schwab.auth.get_auth_context(fake.app_key, CALLBACK)
    received = await asyncio.to_thread(browser_login, fake, ctx.authorization_url)
    with pytest.raises(OAuthError) as info:
        await asyncio.to_thread(
            schwab.auth.client_from_received_url, fake.app_key, "wrong-secret", ctx, received, lambda *a, **k: None
        )
    assert info.value.error == "invalid_client"


async def test_the_synchronous_client_works_too(fake: FakeSchwab, sessions: None, tmp_path: Any) -> None:
    written: list[dict[str, Any]] = []
    await pasted_url_client(fake, written)
    path = tmp_path / "token.json"
    path.write_text(json.dumps(written[-1]))

    def session() -> tuple[int, int, str]:
        # Blocking calls: run off the event loop the fake serves on.
        client = schwab.auth.client_from_token_file(str(path), fake.app_key, fake.app_secret)
        rows = client.get_account_numbers().json()
        h = rows[0]["hashValue"]
        r = client.place_order(h, equities.equity_buy_limit("F", 10, "11.00"))
        order_id = Utils(client, h).extract_order_id(r)
        cancel = client.cancel_order(order_id, h)
        return len(rows), cancel.status_code, client.get_order(order_id, h).json()["status"]

    assert await asyncio.to_thread(session) == (2, 200, "CANCELED")


# ====================================================================== accounts and orders


@pytest.fixture
async def client(fake: FakeSchwab, sessions: None, tmp_path: Any) -> Any:
    c = await token_file_client(fake, tmp_path)
    yield c
    await c.close_async_session()


async def margin_hash(client: Any) -> str:
    rows = (await client.get_account_numbers()).json()
    return next(r["hashValue"] for r in rows if r["accountNumber"] == "12345678")


async def test_accounts_positions_and_balances_follow_a_fill(fake: FakeSchwab, client: Any) -> None:
    h = await margin_hash(client)
    r = await client.get_account(h, fields=[client.Account.Fields.POSITIONS])
    sec = r.json()["securitiesAccount"]
    assert sec["type"] == "MARGIN" and sec["positions"] == []
    assert sec["currentBalances"]["liquidationValue"] == 100000.0

    r = await client.place_order(h, equities.equity_buy_market("AAPL", 10))
    assert r.status_code == 201 and r.content == b""
    order_id = Utils(client, h).extract_order_id(r)
    order = (await client.get_order(order_id, h)).json()
    assert order["status"] == "FILLED" and order["filledQuantity"] == 10
    fill = order["orderActivityCollection"][0]["executionLegs"][0]
    assert fill["price"] == 190.01  # the ask

    accounts = (await client.get_accounts(fields=[client.Account.Fields.POSITIONS])).json()
    sec = next(a["securitiesAccount"] for a in accounts if a["securitiesAccount"]["accountNumber"] == "12345678")
    (pos,) = sec["positions"]
    assert pos["instrument"]["symbol"] == "AAPL" and pos["longQuantity"] == 10.0
    assert pos["averagePrice"] == 190.01
    assert sec["currentBalances"]["cashBalance"] == 100000.0 - 1900.10

    # schwab-py's default windows end at the real "now"; the fake's time is its FakeClock.
    now = fake.clock.now()
    txns = (await client.get_transactions(h, start_date=now - dt.timedelta(days=5), end_date=now)).json()
    trade = next(t for t in txns if t["type"] == "TRADE")
    assert trade["orderId"] == order_id and trade["netAmount"] == -1900.10
    assert (await client.get_transaction(h, trade["activityId"])).json()["orderId"] == order_id

    chain = (await client.get_option_chain("AAPL", strike_count=1)).json()
    call = next(iter(next(iter(chain["callExpDateMap"].values())).values()))[0]
    r = await client.place_order(h, options.option_buy_to_open_limit(call["symbol"], 2, f"{call['ask']:.2f}"))
    assert (await client.get_order(Utils(client, h).extract_order_id(r), h)).json()["status"] == "FILLED"
    sec = (await client.get_account(h, fields=[client.Account.Fields.POSITIONS])).json()["securitiesAccount"]
    option = next(p for p in sec["positions"] if p["instrument"]["assetType"] == "OPTION")
    assert option["instrument"]["symbol"] == call["symbol"] and option["instrument"]["putCall"] == "CALL"
    assert option["longQuantity"] == 2.0 and option["instrument"]["underlyingSymbol"] == "AAPL"
    assert sec["currentBalances"]["longOptionMarketValue"] > 0


async def test_place_get_replace_cancel(fake: FakeSchwab, client: Any) -> None:
    h = await margin_hash(client)
    utils = Utils(client, h)
    r = await client.place_order(h, equities.equity_buy_limit("AAPL", 5, "185.00"))
    assert r.headers["Location"].startswith(f"https://api.schwabapi.com/trader/v1/accounts/{h}/orders/")
    first = utils.extract_order_id(r)
    assert (await client.get_order(first, h)).json()["status"] == "WORKING"

    r = await client.replace_order(h, first, equities.equity_buy_limit("AAPL", 5, "186.00"))
    assert r.status_code == 201
    second = utils.extract_order_id(r)
    assert second != first
    old = (await client.get_order(first, h)).json()
    assert old["status"] == "REPLACED" and old["replacingOrderCollection"][0]["orderId"] == second
    assert (await client.get_order(second, h)).json()["price"] == 186.0

    now = fake.clock.now()
    window = {"from_entered_datetime": now - dt.timedelta(days=60), "to_entered_datetime": now}
    listed = (await client.get_orders_for_account(h, **window)).json()
    assert (await client.get_orders_for_all_linked_accounts(**window)).json() == listed
    assert [o["orderId"] for o in listed][:2] == [second, first]

    r = await client.cancel_order(second, h)
    assert r.status_code == 200 and r.content == b""
    assert (await client.get_order(second, h)).json()["status"] == "CANCELED"
    r = await client.cancel_order(second, h)
    assert r.status_code == 400 and "cannot be canceled" in r.json()["message"]


async def test_vertical_bracket_and_preview(fake: FakeSchwab, client: Any) -> None:
    h = await margin_hash(client)
    chain = (await client.get_option_chain("AAPL", contract_type=client.Options.ContractType.CALL)).json()
    expiry = sorted(chain["callExpDateMap"])[2]
    strikes = chain["callExpDateMap"][expiry]
    long_c, short_c = strikes["190.0"][0], strikes["195.0"][0]
    natural = round(long_c["ask"] - short_c["bid"], 2)
    spread = options.bull_call_vertical_open(long_c["symbol"], short_c["symbol"], 2, f"{natural:.2f}")
    preview = (await client.preview_order(h, spread)).json()
    assert preview["orderValidationResult"]["rejects"] == []
    r = await client.place_order(h, spread)
    assert r.status_code == 201
    order = (await client.get_order(Utils(client, h).extract_order_id(r), h)).json()
    assert order["status"] == "FILLED" and order["complexOrderStrategyType"] == "VERTICAL"
    legs = order["orderActivityCollection"][0]["executionLegs"]
    assert {leg["quantity"] for leg in legs} == {2.0}

    # A bracket: buy, then an OCO of a target and a stop.
    bracket = common.first_triggers_second(
        equities.equity_buy_limit("MSFT", 10, "417.00"),
        common.one_cancels_other(
            equities.equity_sell_limit("MSFT", 10, "430.00"),
            equities.equity_sell_limit("MSFT", 10, "400.00")
            .set_order_type(common.OrderType.STOP)
            .clear_price()
            .set_stop_price("400.00"),
        ),
    )
    r = await client.place_order(h, bracket)
    parent = (await client.get_order(Utils(client, h).extract_order_id(r), h)).json()
    assert parent["status"] == "WORKING"  # bid/ask 416.99/417.01: the buy waits
    oco = parent["childOrderStrategies"][0]
    assert oco["orderStrategyType"] == "OCO"
    assert {c["status"] for c in oco["childOrderStrategies"]} == {"AWAITING_PARENT_ORDER"}
    fake.set_price("MSFT", "416.50")  # the buy fills at the new ask, the OCO goes live
    fake.set_price("MSFT", "431.00")  # the target fills, the stop is cancelled
    parent = (await client.get_order(parent["orderId"], h)).json()
    target, stop = parent["childOrderStrategies"][0]["childOrderStrategies"]
    assert parent["status"] == "FILLED" and target["status"] == "FILLED" and stop["status"] == "CANCELED"


async def test_reject_shows_its_reason(fake: FakeSchwab, client: Any) -> None:
    h = await margin_hash(client)
    r = await client.place_order(h, equities.equity_sell_market("AAPL", 10))  # nothing to sell
    order = (await client.get_order(Utils(client, h).extract_order_id(r), h)).json()
    assert order["status"] == "REJECTED" and "oversold" in order["statusDescription"]


# ====================================================================== market data


async def test_chain_quotes_history_instruments_hours(fake: FakeSchwab, client: Any) -> None:
    r = await client.get_option_chain(
        "AAPL", strike_count=4, include_underlying_quote=True, contract_type=client.Options.ContractType.ALL
    )
    chain = r.json()
    assert chain["status"] == "SUCCESS" and chain["underlying"]["symbol"] == "AAPL"
    expiry, strikes = next(iter(sorted(chain["callExpDateMap"].items())))
    assert sorted(strikes, key=float) == ["180.0", "185.0", "190.0", "195.0"]
    contract = strikes["190.0"][0]
    assert contract["symbol"][:6] == "AAPL  " and contract["putCall"] == "CALL"
    assert 0.4 < contract["delta"] < 0.7 and contract["volatility"] > 0 and contract["bid"] < contract["ask"]
    put = chain["putExpDateMap"][expiry]["190.0"][0]
    assert -0.6 < put["delta"] < -0.3

    quotes = (await client.get_quotes(["AAPL", "/ES", contract["symbol"], "NOPE"])).json()
    assert quotes["AAPL"]["quote"]["lastPrice"] == 190.0
    assert quotes["/ES"]["assetMainType"] == "FUTURE" and quotes["/ES"]["quote"]["tick"] == 0.25
    assert quotes[contract["symbol"]]["quote"]["bidPrice"] == contract["bid"]
    assert quotes["errors"] == {"invalidSymbols": ["NOPE"]}

    daily = (await client.get_price_history_every_day("AAPL")).json()
    assert daily["symbol"] == "AAPL" and not daily["empty"] and daily["candles"][-1]["close"] == 190.0
    now = fake.clock.now()
    five = await client.get_price_history_every_five_minutes(
        "AAPL", start_datetime=now - dt.timedelta(days=3), end_datetime=now
    )
    bars = five.json()["candles"]
    assert bars and all(b["datetime"] % (5 * 60_000) == 0 for b in bars)

    found = (await client.get_instruments(["AAPL"], client.Instrument.Projection.SYMBOL_SEARCH)).json()
    assert found["instruments"][0]["cusip"] == "037833100"
    by_cusip = (await client.get_instrument_by_cusip("037833100")).json()
    assert by_cusip["instruments"][0]["symbol"] == "AAPL"
    assert (await client.get_quote("AAPL")).json()["AAPL"]["quote"]["lastPrice"] == 190.0
    expirations = (await client.get_option_expiration_chain("AAPL")).json()["expirationList"]
    assert f"{expirations[0]['expirationDate']}:{expirations[0]['daysToExpiration']}" == expiry
    hours = (await client.get_market_hours([client.MarketHours.Market.EQUITY])).json()
    assert hours["equity"]["EQ"]["isOpen"] is True


# ====================================================================== streamer


async def next_data(stream: StreamClient, got: list[dict[str, Any]], count: int) -> None:
    async def pump() -> None:
        while len(got) < count:
            await stream.handle_message()

    await asyncio.wait_for(pump(), 5)


async def test_streamer_login_level_one_and_partial_updates(fake: FakeSchwab, client: Any) -> None:
    stream = StreamClient(client)
    await stream.login()
    got: list[dict[str, Any]] = []
    stream.add_level_one_equity_handler(got.append)
    stream.add_level_one_futures_handler(got.append)
    stream.add_level_one_option_handler(got.append)
    await stream.level_one_equity_subs(["AAPL"])
    await next_data(stream, got, 1)
    first = got[0]["content"][0]
    assert first["key"] == "AAPL" and first["BID_PRICE"] == 189.99 and first["ASK_PRICE"] == 190.01
    assert first["assetMainType"] == "EQUITY" and "DESCRIPTION" in first

    fake.set_price("AAPL", "191.00")
    await next_data(stream, got, 2)
    update = got[1]["content"][0]
    assert update["key"] == "AAPL" and update["LAST_PRICE"] == 191.0 and update["BID_PRICE"] == 190.99
    assert "DESCRIPTION" not in update and "assetMainType" not in update  # only what changed

    await stream.level_one_equity_add(["MSFT"])
    await next_data(stream, got, 3)
    assert got[2]["content"][0]["key"] == "MSFT" and got[2]["content"][0]["LAST_PRICE"] == 417.0
    await stream.level_one_equity_unsubs(["AAPL"])
    fake.set_price("AAPL", "192.00")
    fake.set_price("MSFT", "418.00")
    await next_data(stream, got, 4)
    assert [c["key"] for c in got[3]["content"]] == ["MSFT"]  # AAPL is no longer streamed
    del got[2:]

    await stream.level_one_futures_subs(["/ES"])
    await next_data(stream, got, 3)
    assert got[2]["content"][0]["FUTURE_ACTIVE_SYMBOL"].startswith("/ES")
    chain = (await client.get_option_chain("AAPL", strike_count=1)).json()
    symbol = next(iter(next(iter(chain["callExpDateMap"].values())).values()))[0]["symbol"]
    await stream.level_one_option_subs([symbol])
    await next_data(stream, got, 4)
    assert got[3]["content"][0]["key"] == symbol and "DELTA" in got[3]["content"][0]


async def test_a_second_streamer_login_disconnects_the_first(fake: FakeSchwab, client: Any) -> None:
    first = StreamClient(client)
    await first.login()
    second = StreamClient(client)
    await second.login()
    await fake.until(lambda: fake.streamer.connections() == 1)
    with pytest.raises(websockets.exceptions.ConnectionClosed):
        for _ in range(100):
            await first.handle_message()  # the code 12 notify, then the close
    await second.level_one_equity_subs(["MSFT"])


async def test_streamer_heartbeats_and_account_activity(fake: FakeSchwab, client: Any) -> None:
    stream = StreamClient(client)
    await stream.login()
    activity: list[dict[str, Any]] = []
    stream.add_account_activity_handler(activity.append)
    await stream.account_activity_sub()
    h = await margin_hash(client)
    await client.place_order(h, equities.equity_buy_market("F", 1))

    async def pump() -> None:
        while not any(c.get("MESSAGE_TYPE") == "OrderFillCompleted" for a in activity for c in a["content"]):
            await stream.handle_message()

    await asyncio.wait_for(pump(), 5)
    kinds = [c["MESSAGE_TYPE"] for a in activity for c in a["content"]]
    assert kinds[:3] == ["SUBSCRIBED", "OrderCreated", "OrderAccepted"]
    raw: list[str] = []
    stream._socket.recv = _spy(stream._socket.recv, raw)  # heartbeats are swallowed by handle_message
    await asyncio.wait_for(stream.handle_message(), 2)
    assert any('"heartbeat"' in r for r in raw)


def _spy(recv: Callable[[], Any], into: list[str]) -> Callable[[], Any]:
    async def spy() -> Any:
        text = await recv()
        into.append(text)
        return text

    return spy

"""The fake Tastytrade server, proven with a client nobody here wrote: the public ``tastytrade`` SDK.

The SDK (tastyware/tastytrade 13.2.3, a test-only dependency) is pointed at the fake by
patching its REST host constant and its account streamer's ``base_url``; DXLink needs no patch
(the URL comes from ``/api-quote-tokens``). If the SDK can log in, read accounts, trade and
stream against the fake, the fake speaks what the SDK speaks. The strictness the SDK never
trips (a missing User-Agent, bad tokens, handshake order, keepalive timeouts, 429s) is checked
with raw clients in test_fake_tastytrade_strict.py. Every server is a real loopback socket
started by the test.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
import tastytrade.session
from tastytrade import Account, AlertStreamer, DXLinkStreamer, Session
from tastytrade.account import AccountBalance, CurrentPosition
from tastytrade.dxfeed import Candle, Greeks, Quote, Summary, Trade
from tastytrade.instruments import (
    Equity,
    Future,
    FutureOption,
    NestedFutureOptionChain,
    NestedOptionChain,
    Option,
    get_option_chain,
)
from tastytrade.order import (
    LimitOrder,
    MarketOrder,
    OCOOrder,
    OrderAction,
    OrderStatus,
    OTOCOOrder,
    OTOOrder,
    PlacedOrder,
    StopLimitOrder,
    StopOrder,
)
from tastytrade.utils import TastytradeError

from tests.fakes import FakeClock
from tests.fakes.tastytrade import FakeTastytrade

MARGIN, CASH = "5WT00001", "5WT00002"
UA = {"User-Agent": "tterm-tests/0.1"}


@pytest.fixture
async def fake():
    server = FakeTastytrade(clock=FakeClock())
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def session(fake: FakeTastytrade, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(tastytrade.session, "API_URL", fake.api_url)
    async with Session(fake.client_secret, fake.refresh_token) as s:
        yield s


async def accounts(session: Session) -> dict[str, Account]:
    return {a.account_number: a for a in await Account.get(session)}


async def token(fake: FakeTastytrade) -> str:
    async with httpx.AsyncClient(base_url=fake.api_url, headers=UA) as client:
        r = await client.post(
            "/oauth/token",
            json={
                "grant_type": "refresh_token",
                "client_secret": fake.client_secret,
                "refresh_token": fake.refresh_token,
            },
        )
    return str(r.json()["access_token"])


# =========================================================================== the SDK: session


async def test_sdk_session_refreshes_and_reads_the_customer(fake, session, monkeypatch):
    mine = await accounts(session)
    assert set(mine) == {MARGIN, CASH}
    assert mine[MARGIN].margin_or_cash == "Margin" and mine[MARGIN].is_futures_approved
    assert mine[CASH].margin_or_cash == "Cash" and not mine[CASH].is_futures_approved
    assert fake.refreshes == 1 and fake.token_requests[0][0] == "application/json"
    assert fake.token_requests[0][1]["grant_type"] == "refresh_token"
    assert all(ua and "/" in ua for _, _, ua in fake.requests)  # the SDK's UA passes the check
    customer = await session.get_customer()
    assert customer.id == "me" and customer.permitted_account_types
    status = await mine[MARGIN].get_trading_status(session)
    assert status.is_futures_enabled and status.options_level == "No Restrictions"
    balance = await mine[MARGIN].get_balances(session)
    assert balance.cash_balance == Decimal("100000") and balance.net_liquidating_value == Decimal("100000")
    assert await mine[MARGIN].get_positions(session) == []

    # 15 minutes later the access token is dead at the fake; the SDK (which keeps time with
    # time.time()) refreshes by itself once its own clock says the token is near its end.
    old = session.session_token
    fake.clock.advance(timedelta(seconds=900))
    with pytest.raises(TastytradeError, match="unauthorized"):
        await mine[MARGIN].get_balances(session)
    real = time.time
    monkeypatch.setattr(tastytrade.session.time, "time", lambda: real() + 900)
    assert (await mine[MARGIN].get_balances(session)).account_number == MARGIN
    assert session.session_token != old and fake.refreshes == 2


async def test_sdk_refresh_with_a_wrong_secret_fails_cleanly(fake, monkeypatch):
    monkeypatch.setattr(tastytrade.session, "API_URL", fake.api_url)
    async with Session("not-the-secret", fake.refresh_token) as s:
        with pytest.raises(TastytradeError, match="error_code"):
            await Account.get(s)
    assert fake.rejected["oauth:invalid_client"] == 1


async def test_sdk_instruments_chains_and_futures(fake, session):
    spy = await Equity.get(session, "SPY")
    assert spy.streamer_symbol == "SPY" and spy.tick_sizes and spy.tick_sizes[-1].value == Decimal("0.01")
    chain = (await NestedOptionChain.get(session, "SPY"))[0]
    assert chain.shares_per_contract == 100 and len(chain.expirations) >= 2
    strike = chain.expirations[0].strikes[5]
    assert strike.call.startswith("SPY   ") and strike.call_streamer_symbol.startswith(".SPY")
    option = await Option.get(session, strike.call)
    assert option.streamer_symbol == strike.call_streamer_symbol
    assert Option.occ_to_streamer_symbol(strike.call) == strike.call_streamer_symbol  # the SDK's own mapping
    flat = await get_option_chain(session, "SPY")
    assert sum(len(v) for v in flat.values()) == sum(2 * len(e.strikes) for e in chain.expirations)
    es = await Future.get(session, "/ESZ6")
    assert es.streamer_symbol == "/ESZ26:XCME" and es.tick_size == Decimal("0.25")
    assert es.notional_multiplier == Decimal("50")
    listed = await Future.get(session, None, product_codes=["MES"])
    assert {f.symbol for f in listed} == {"/MESZ6", "/MESH7"}
    fo_chain = await NestedFutureOptionChain.get(session, "ES")
    fo_strike = fo_chain.option_chains[0].expirations[0].strikes[0]
    fo = await FutureOption.get(session, fo_strike.call)
    assert fo.underlying_symbol == "/ESZ6" and fo.streamer_symbol == fo_strike.call_streamer_symbol
    assert fo.streamer_symbol.startswith("./EW") and fo.streamer_symbol.endswith(":XCME")


# =========================================================================== the SDK: orders


async def test_sdk_dry_run_place_replace_and_cancel(fake, session):
    acct = (await accounts(session))[MARGIN]
    spy = await Equity.get(session, "SPY")
    buy = LimitOrder(legs=[spy.build_leg(Decimal(10), OrderAction.BUY_TO_OPEN)], price=Decimal("-600.01"))

    dry = await acct.place_order(session, buy, dry_run=True)
    assert dry.order.status == OrderStatus.RECEIVED
    assert dry.buying_power_effect.change_in_buying_power == Decimal("-3000.05")  # 50% of 6000.10
    assert dry.fee_calculation is not None and dry.fee_calculation.total_fees == 0
    assert not fake.book.orders  # a dry run places nothing

    placed = await acct.place_order(session, buy, dry_run=False)
    assert placed.order.id > 0 and placed.order.price == Decimal("-600.01")  # Debit comes back signed
    filled = await acct.get_order(session, placed.order.id)
    assert filled.status == OrderStatus.FILLED
    assert filled.legs[0].fills and filled.legs[0].fills[0].fill_price == Decimal("600.01")
    (position,) = await acct.get_positions(session)
    assert (position.symbol, position.quantity, position.quantity_direction) == ("SPY", Decimal(10), "Long")

    resting = LimitOrder(legs=[spy.build_leg(Decimal(5), OrderAction.BUY_TO_OPEN)], price=Decimal("-590.00"))
    working = (await acct.place_order(session, resting, dry_run=False)).order
    assert (await acct.get_order(session, working.id)).status == OrderStatus.LIVE
    better = LimitOrder(legs=resting.legs, price=Decimal("-595.00"))
    replaced = await acct.replace_order(session, working.id, better)
    assert replaced.replaces_order_id == working.id and replaced.price == Decimal("-595.00")
    old = await acct.get_order(session, working.id)
    assert old.status == OrderStatus.CANCELLED and old.replacing_order_id == replaced.id
    await acct.delete_order(session, replaced.id)
    assert (await acct.get_order(session, replaced.id)).status == OrderStatus.CANCELLED
    live = await acct.get_live_orders(session)
    assert {o.id for o in live} == {placed.order.id, working.id, replaced.id}
    history = await acct.get_order_history(session, per_page=2, page_offset=None)  # walks every page
    assert len(history) == 3

    with pytest.raises(TastytradeError, match="order_not_cancellable"):
        await acct.delete_order(session, placed.order.id)


async def test_sdk_resting_limit_fills_when_the_market_moves(fake, session):
    acct = (await accounts(session))[MARGIN]
    spy = await Equity.get(session, "SPY")
    order = LimitOrder(legs=[spy.build_leg(Decimal(3), OrderAction.BUY_TO_OPEN)], price=Decimal("-598.50"))
    placed = (await acct.place_order(session, order, dry_run=False)).order
    assert (await acct.get_order(session, placed.id)).status == OrderStatus.LIVE
    fake.move("SPY", "598.00")
    done = await acct.get_order(session, placed.id)
    assert done.status == OrderStatus.FILLED and done.legs[0].fills[0].fill_price == Decimal("598.50")


async def test_sdk_option_vertical_at_a_net_debit_and_a_credit(fake, session):
    acct = (await accounts(session))[MARGIN]
    chain = (await NestedOptionChain.get(session, "SPY"))[0]
    strikes = chain.expirations[0].strikes
    long_call = await Option.get(session, strikes[5].call)  # 600
    short_call = await Option.get(session, strikes[6].call)  # 605
    legs = [long_call.build_leg(1, OrderAction.BUY_TO_OPEN), short_call.build_leg(1, OrderAction.SELL_TO_OPEN)]
    quote_long = fake.market.quote(long_call.symbol, fake.clock.now())
    quote_short = fake.market.quote(short_call.symbol, fake.clock.now())
    net = quote_long.ask - quote_short.bid
    dry = await acct.place_order(session, LimitOrder(legs=legs, price=-net), dry_run=True)
    assert dry.buying_power_effect.is_spread and dry.buying_power_effect.change_in_buying_power == -net * 100
    assert dry.fee_calculation is not None and dry.fee_calculation.commission == Decimal("-2.00")
    placed = await acct.place_order(session, LimitOrder(legs=legs, price=-net), dry_run=False)
    filled = await acct.get_order(session, placed.order.id)
    assert filled.status == OrderStatus.FILLED and filled.average_fill_price() == net
    positions = {p.symbol: p for p in await acct.get_positions(session)}
    assert positions[long_call.symbol].quantity_direction == "Long"
    assert positions[short_call.symbol].quantity_direction == "Short"
    assert positions[long_call.symbol].multiplier == Decimal(100)

    # A credit put spread too wide of the market rests, then cancels.
    put_short, put_long = await Option.get(session, strikes[4].put), await Option.get(session, strikes[3].put)
    credit_legs = [put_short.build_leg(1, OrderAction.SELL_TO_OPEN), put_long.build_leg(1, OrderAction.BUY_TO_OPEN)]
    credit = await acct.place_order(session, LimitOrder(legs=credit_legs, price=Decimal("4.50")), dry_run=False)
    assert credit.order.price == Decimal("4.50")  # Credit stays positive in the SDK
    assert (await acct.get_order(session, credit.order.id)).status == OrderStatus.LIVE
    await acct.delete_order(session, credit.order.id)
    now = fake.clock.now()
    natural = fake.market.quote(put_short.symbol, now).bid - fake.market.quote(put_long.symbol, now).ask
    assert natural > 0
    sold = await acct.place_order(session, LimitOrder(legs=credit_legs, price=natural), dry_run=False)
    done = await acct.get_order(session, sold.order.id)
    assert done.status == OrderStatus.FILLED and done.average_fill_price() == -natural  # a credit
    width = (put_short.strike_price - put_long.strike_price) * 100
    dry = await acct.place_order(session, LimitOrder(legs=credit_legs, price=natural), dry_run=True)
    assert dry.buying_power_effect.change_in_buying_power == -(width - natural * 100)  # defined risk


async def test_sdk_otoco_and_oco(fake, session):
    acct = (await accounts(session))[MARGIN]
    spy = await Equity.get(session, "SPY")
    otoco = OTOCOOrder(
        trigger_order=LimitOrder(legs=[spy.build_leg(Decimal(10), OrderAction.BUY_TO_OPEN)], price=Decimal("-600.01")),
        take_profit=LimitOrder(legs=[spy.build_leg(Decimal(10), OrderAction.SELL_TO_CLOSE)], price=Decimal("603.00")),
        stop_loss=StopOrder(
            legs=[spy.build_leg(Decimal(10), OrderAction.SELL_TO_CLOSE)], stop_trigger=Decimal("597.00")
        ),
    )
    dry = await acct.place_complex_order(session, otoco, dry_run=True)
    assert dry.complex_order.trigger_order is not None and len(dry.complex_order.orders) == 2
    placed = await acct.place_complex_order(session, otoco, dry_run=False)
    cx = await acct.get_complex_order(session, placed.complex_order.id)
    assert cx.trigger_order is not None and cx.trigger_order.status == OrderStatus.FILLED
    assert {o.status for o in cx.orders} == {OrderStatus.LIVE}
    fake.move("SPY", "603.00")
    cx = await acct.get_complex_order(session, cx.id)
    by_type = {o.order_type.value: o.status for o in cx.orders}
    assert by_type == {"Limit": OrderStatus.FILLED, "Stop": OrderStatus.CANCELLED}
    assert await acct.get_positions(session) == []  # flat again

    # OCO on an open position: the stop triggers on a print and the target is cancelled.
    await acct.place_order(
        session, MarketOrder(legs=[spy.build_leg(Decimal(5), OrderAction.BUY_TO_OPEN)]), dry_run=False
    )
    oco = OCOOrder(
        take_profit=LimitOrder(legs=[spy.build_leg(Decimal(5), OrderAction.SELL_TO_CLOSE)], price=Decimal("610.00")),
        stop_loss=StopOrder(
            legs=[spy.build_leg(Decimal(5), OrderAction.SELL_TO_CLOSE)], stop_trigger=Decimal("600.00")
        ),
    )
    placed_oco = await acct.place_complex_order(session, oco, dry_run=False)
    fake.move("SPY", "599.50")
    done = await acct.get_complex_order(session, placed_oco.complex_order.id)
    assert {o.order_type.value: o.status for o in done.orders} == {
        "Limit": OrderStatus.CANCELLED,
        "Stop": OrderStatus.FILLED,
    }
    assert done.terminal_at is not None


async def test_sdk_futures_order_and_a_refused_one(fake, session):
    mine = await accounts(session)
    es = await Future.get(session, "/ESZ6")
    buy = MarketOrder(legs=[es.build_leg(2, OrderAction.BUY)])
    placed = await mine[MARGIN].place_order(session, buy, dry_run=False)
    assert (await mine[MARGIN].get_order(session, placed.order.id)).status == OrderStatus.FILLED
    (position,) = await mine[MARGIN].get_positions(session)
    assert position.instrument_type.value == "Future" and position.multiplier == Decimal(50)
    fake.move("/ESZ6", "6010.00")
    balance = await mine[MARGIN].get_balances(session)
    fees = Decimal("2") * (Decimal("1.25") + Decimal("0.30"))
    mark = Decimal("6009.875")  # the mid of 6009.75 / 6010.00; bought at the 6000.00 ask
    assert balance.net_liquidating_value == Decimal("100000") + (mark - 6000) * 2 * 50 - fees
    assert balance.cash_balance == Decimal("100000") - fees  # futures move no cash until closed
    with pytest.raises(TastytradeError, match="futures_not_approved"):
        await mine[CASH].place_order(session, buy, dry_run=False)
    (txn,) = await mine[MARGIN].get_history(session)
    assert (txn.symbol, txn.quantity, txn.price, txn.order_id) == ("/ESZ6", Decimal(2), Decimal(6000), placed.order.id)
    assert txn.commission == Decimal("-2.50") and txn.net_value == -fees
    assert (await mine[MARGIN].get_total_fees(session)).total_fees == -fees


async def test_sdk_reject_with_a_reason(fake, session):
    acct = (await accounts(session))[MARGIN]
    spy = await Equity.get(session, "SPY")
    fake.reject_next("Exchange closed")
    placed = await acct.place_order(
        session, MarketOrder(legs=[spy.build_leg(Decimal(1), OrderAction.BUY_TO_OPEN)]), dry_run=False
    )
    rejected = await acct.get_order(session, placed.order.id)
    assert rejected.status == OrderStatus.REJECTED and rejected.reject_reason == "Exchange closed"


async def test_sdk_stop_limit_oto_and_cancelling_a_complex_order(fake, session):
    acct = (await accounts(session))[MARGIN]
    spy = await Equity.get(session, "SPY")
    await acct.place_order(
        session, MarketOrder(legs=[spy.build_leg(Decimal(4), OrderAction.BUY_TO_OPEN)]), dry_run=False
    )
    sell = [spy.build_leg(Decimal(2), OrderAction.SELL_TO_CLOSE)]
    near = (
        await acct.place_order(
            session, StopLimitOrder(legs=sell, stop_trigger=Decimal("599.00"), price=Decimal("598.50")), dry_run=False
        )
    ).order
    fake.move("SPY", "599.40")
    assert (await acct.get_order(session, near.id)).status == OrderStatus.LIVE  # not triggered yet
    fake.move("SPY", "598.90")
    hit = await acct.get_order(session, near.id)
    assert hit.status == OrderStatus.FILLED and hit.legs[0].fills[0].fill_price == Decimal("598.89")
    gap = (
        await acct.place_order(
            session, StopLimitOrder(legs=sell, stop_trigger=Decimal("598.00"), price=Decimal("597.50")), dry_run=False
        )
    ).order
    fake.move("SPY", "596.00")  # gapped through the limit: triggered, rests as a limit
    assert (await acct.get_order(session, gap.id)).status == OrderStatus.LIVE
    fake.move("SPY", "597.50")
    assert (await acct.get_order(session, gap.id)).status == OrderStatus.FILLED

    oto = OTOOrder(
        trigger_order=LimitOrder(legs=[spy.build_leg(Decimal(3), OrderAction.BUY_TO_OPEN)], price=Decimal("-590.00")),
        orders=[LimitOrder(legs=[spy.build_leg(Decimal(3), OrderAction.SELL_TO_CLOSE)], price=Decimal("610.00"))],
    )
    placed = await acct.place_complex_order(session, oto, dry_run=False)
    cx = await acct.get_complex_order(session, placed.complex_order.id)
    assert cx.trigger_order is not None and cx.trigger_order.status == OrderStatus.LIVE
    assert [o.status for o in cx.orders] == [OrderStatus.CONTINGENT]
    assert {c.id for c in await acct.get_live_complex_orders(session)} == {cx.id}
    await acct.delete_complex_order(session, cx.id)
    cx = await acct.get_complex_order(session, cx.id)
    assert cx.trigger_order is not None and cx.trigger_order.status == OrderStatus.CANCELLED
    assert [o.status for o in cx.orders] == [OrderStatus.CANCELLED] and cx.terminal_at is not None
    assert not await session.validate()  # TT-SDK still posts /sessions/validate: decommissioned


# =========================================================================== the SDK: streamers


async def test_sdk_alert_streamer_gets_every_state_change(fake, session):
    mine = await accounts(session)
    streamer = AlertStreamer(session)
    streamer.base_url = fake.streamer_url
    async with streamer:
        await streamer.subscribe_accounts(mine.values())  # 13.2.3 waits for the ack
        await streamer.subscribe_quote_alerts()
        spy = await Equity.get(session, "SPY")
        order = MarketOrder(legs=[spy.build_leg(Decimal(4), OrderAction.BUY_TO_OPEN)])
        placed = await mine[MARGIN].place_order(session, order, dry_run=False)
        orders = streamer.listen(PlacedOrder)
        seen = [(await anext(orders)).status for _ in range(3)]
        assert seen == [OrderStatus.ROUTED, OrderStatus.LIVE, OrderStatus.FILLED]
        position = await anext(streamer.listen(CurrentPosition))
        assert position.symbol == "SPY" and position.quantity == Decimal(4)
        balance = await anext(streamer.listen(AccountBalance))
        assert balance.account_number == MARGIN and balance.cash_balance < Decimal(100_000)
    assert placed.order.id in fake.book.orders


async def test_sdk_alert_streamer_needs_connect_first(fake, session):
    streamer = AlertStreamer(session)
    streamer.base_url = fake.streamer_url
    with pytest.raises(BaseException) as err:  # anyio wraps the reader's error in a group
        async with streamer:
            await streamer.subscribe_quote_alerts()
            await asyncio.sleep(5)
    assert "subscribe_accounts" in repr(err.value)


async def test_sdk_dxlink_quotes_greeks_candles(fake, session):
    chain = (await NestedOptionChain.get(session, "SPY"))[0]
    call = chain.expirations[0].strikes[5].call_streamer_symbol
    async with DXLinkStreamer(session) as streamer:
        await streamer.subscribe(Quote, ["SPY", "/ESZ26:XCME"])
        quotes = {q.event_symbol: q for q in [await streamer.get_event(Quote), await streamer.get_event(Quote)]}
        assert (quotes["SPY"].bid_price, quotes["SPY"].ask_price) == (Decimal("599.99"), Decimal("600.01"))
        assert quotes["/ESZ26:XCME"].ask_price == Decimal("6000")
        await streamer.subscribe(Greeks, [call])
        greeks = await streamer.get_event(Greeks)
        assert greeks.event_symbol == call and Decimal("0.4") < greeks.delta < Decimal("0.6")
        assert greeks.gamma > 0 and greeks.theta < 0 and greeks.volatility == Decimal("0.18")
        await streamer.subscribe(Trade, ["SPY"])
        await streamer.subscribe(Summary, ["SPY"])
        assert (await streamer.get_event(Trade)).price == Decimal("600")
        assert (await streamer.get_event(Summary)).prev_day_close_price is not None
        await streamer.subscribe_candle(["SPY"], "5m", fake.clock.now() - timedelta(hours=1))
        candles = [await streamer.get_event(Candle) for _ in range(13)]
        assert candles[0].snapshot_begin and candles[-1].snapshot_end
        assert [c.time for c in candles] == sorted((c.time for c in candles), reverse=True)
        assert all(c.low <= min(c.open, c.close) and c.high >= max(c.open, c.close) for c in candles)

        fake.move("SPY", "601.00")
        moved = await streamer.get_event(Quote)
        assert (moved.event_symbol, moved.bid_price, moved.ask_price) == ("SPY", Decimal("600.99"), Decimal("601.01"))
        assert (await streamer.get_event(Greeks)).delta > greeks.delta  # the call follows its underlying
        live = await streamer.get_event(Candle)
        assert live.close == Decimal("601") and not live.snapshot_begin
    # the SDK asked for its fields in its own order; the fake answered in exactly that order
    setups = [m for d, m in fake.dxlink.messages if d == "in" and m["type"] == "FEED_SETUP"]
    configs = [m for d, m in fake.dxlink.messages if d == "out" and m["type"] == "FEED_CONFIG"]
    assert [s["acceptEventFields"] for s in setups] == [c["eventFields"] for c in configs]

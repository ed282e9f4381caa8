"""The ProjectX (TopstepX) adapter against the strict fake gateway, over real loopback sockets.

Login and session renewal, accounts, orders of every kind to fills through the engine, modify,
cancel, rejects with the gateway's reason, the limiter, and the rule that a mutating call that
met a 401, a 429 or a lost answer is looked up by its customTag before anything is sent again.
Hub faults (drops, frozen ticks), reconciliation and the TopstepX risk profile are in
``test_projectx_stream.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.fakes import FakeClock
from tests.fakes.projectx import FakeProjectX
from tests.integration.projectx_support import Running, make_broker, start_fake
from tterm.brokers.common.settings import BrokerConfigError
from tterm.brokers.projectx import ProjectXCredentials, ProjectXSettings
from tterm.core.broker import AuthError
from tterm.core.clock import CmeClock, default_calendar
from tterm.core.engine import Engine
from tterm.core.instruments import InstrumentMaster
from tterm.core.journal import Journal
from tterm.core.models import (
    Bracket,
    ConnectionState,
    Fill,
    OrderRequest,
    OrderRole,
    OrderSource,
    OrderStatus,
    OrderType,
    Side,
)

D = Decimal
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 09:00 in Chicago, a Tuesday
ACCT, SYM = "px:536", "MESZ6"


@pytest.fixture
async def fake() -> AsyncIterator[FakeProjectX]:
    server = await start_fake(FakeClock(NOW))
    yield server
    await server.stop()


async def running(fake: FakeProjectX, tmp_path, **options) -> Running:
    master = InstrumentMaster(today=lambda: fake.clock.now().date())
    broker = make_broker(fake, tmp_path, master=master, **options)
    clock = CmeClock(default_calendar(), now=lambda: NOW)
    engine = Engine(brokers=[broker], instruments=master, journal=Journal(tmp_path / "journal.sqlite3"), clock=clock)
    run = Running(engine, broker, fake)
    await engine.start()
    await engine.watch([SYM])
    await run.until(lambda: engine.quote(SYM) is not None, "the first quote")
    return run


@pytest.fixture
async def run(fake: FakeProjectX, tmp_path) -> AsyncIterator[Running]:
    r = await running(fake, tmp_path)
    yield r
    await r.engine.stop()


def req(**kw) -> OrderRequest:
    base = dict(account=ACCT, symbol=SYM, side=Side.BUY, quantity=1, source=OrderSource.TICKET)
    base.update(kw)
    return OrderRequest(**base)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- config and login


def test_hosts_are_configurable_for_topstepx_the_demo_and_other_firms() -> None:
    top = ProjectXSettings()
    assert (top.rest_base, top.user_hub, top.market_hub) == (
        "https://api.topstepx.com/api",
        "https://rtc.topstepx.com/hubs/user",
        "https://rtc.topstepx.com/hubs/market",
    )
    demo = ProjectXSettings(firm="demo")
    assert demo.rest_base == "https://gateway-api-demo.s2f.projectx.com/api"
    assert demo.market_hub == "https://gateway-rtc-demo.s2f.projectx.com/hubs/market"
    other = ProjectXSettings(firm="TheFuturesDesk")
    assert other.rest_base == "https://api.thefuturesdesk.projectx.com/api"
    assert other.user_hub == "https://rtc.thefuturesdesk.projectx.com/hubs/user"
    with pytest.raises(BrokerConfigError, match="api_url"):
        ProjectXSettings.from_options({"api_url": "ftp://x"}, broker="px")
    with pytest.raises(BrokerConfigError, match="unknown option 'api_ur'"):
        ProjectXSettings.from_options({"api_ur": "https://x"}, broker="px")
    with pytest.raises(BrokerConfigError, match=r"missing credentials api_key.*TTERM_PX_API_KEY"):
        ProjectXCredentials.from_secrets({"username": "me"}, broker="px")
    assert "key" not in repr(ProjectXCredentials("me", "px-secret-key-123"))


async def test_login_loads_accounts_and_shows_the_session_life(fake: FakeProjectX, tmp_path) -> None:
    broker = make_broker(fake, tmp_path)
    await broker.connect()
    try:
        accounts = await broker.accounts()
        # Account/search with onlyActiveAccounts: the inactive 538 is left out; all are sim accounts.
        assert [(a.id, a.name, a.is_live) for a in accounts] == [
            ("px:536", "50KTC-V2-123456-11111111", False),
            ("px:537", "PRAC-V2-123456-22222222", False),
        ]
        snaps = {s.account: s for s in await broker.snapshots()}
        assert snaps[ACCT].balance == D(50000)
        assert broker.connection_state is ConnectionState.CONNECTED
        # The JWT's own exp: 24 h from login, renewed by tterm itself.
        status = broker.status()
        assert status.auth_expires_at == NOW + timedelta(hours=24)
        assert status.auth_label == "session" and status.auth_needs_person is False
        assert fake.logins == 1 and fake.user_hub.alive() == 1 and fake.market_hub.alive() == 1
    finally:
        await broker.close()


async def test_a_refused_key_is_a_clear_error_under_http_200(fake: FakeProjectX, tmp_path) -> None:
    from tterm.brokers.projectx import build

    master = InstrumentMaster(today=lambda: fake.clock.now().date())
    from tests.integration.projectx_support import options

    broker = build(
        "px",
        options(fake),
        {"username": fake.username, "api_key": "wrong-key-0000111122223333"},
        instruments=master,
        clock=fake.clock,
        data_dir=tmp_path,
    )
    with pytest.raises(AuthError) as err:
        await broker.connect()
    text = str(err.value)
    assert "ProjectX refused the login for trader1: invalid credentials" in text
    assert "wrong-key" not in text
    assert fake.failed_logins == 1 and fake.logins == 0  # refused once, never retried
    fake.api_subscription = False
    broker2 = make_broker(fake, tmp_path / "b2")
    with pytest.raises(AuthError, match="no API subscription"):
        await broker2.connect()


async def test_the_session_is_renewed_before_it_ends_and_new_hub_sockets_use_it(fake: FakeProjectX, tmp_path) -> None:
    clock = fake.clock
    assert isinstance(clock, FakeClock)
    broker = make_broker(fake, tmp_path, renew_ahead=3600, token_check_interval=60)
    await broker.connect()
    try:
        first = broker.tokens.token.value
        # 23 h later (one hour before the end), the renewal loop calls Auth/validate.
        clock.advance(timedelta(hours=23, minutes=1))
        await fake.until(lambda: fake.validations == 1)
        await asyncio.sleep(0.05)
        renewed = broker.tokens.token
        assert renewed.value != first and renewed.expires_at > NOW + timedelta(hours=46)
        assert broker.status().auth_expires_at == renewed.expires_at
        assert fake.logins == 1  # renewed, not a new login
        # A new hub connection carries the new token in its URL.
        fake.drop_sockets("user")
        await fake.until(lambda: any(c.token == renewed.value for c in fake.user_hub.connections), within=5)
        assert await broker.accounts()
    finally:
        await broker.close()


async def test_an_expired_session_on_a_read_logs_in_again_and_asks_once_more(fake: FakeProjectX, tmp_path) -> None:
    broker = make_broker(fake, tmp_path)
    await broker.connect()
    try:
        fake.expire_tokens()
        rows = await broker.rest.positions(536)
        assert rows == [] and broker.rest.unauthorized == 1 and fake.logins == 2
    finally:
        await broker.close()


# --------------------------------------------------------------------------- orders to fills


async def test_market_limit_stop_and_stop_limit_orders_fill_with_fees_and_pnl(run: Running) -> None:
    fake = run.fake
    buy = req(quantity=2)
    order = await run.engine.place(buy)
    assert order.status is not OrderStatus.REJECTED, order.reject_reason
    await run.until(lambda: run.held() == 2, "the market fill")
    fills = [e for e in run.seen if isinstance(e, Fill) and e.client_order_id == buy.client_order_id]
    assert [(f.quantity, f.price, f.fee) for f in fills] == [(2, D("6650.25"), D("0.74"))]
    assert run.places()[0]["customTag"] == buy.client_order_id and run.places()[0]["type"] == 2

    limit = req(side=Side.SELL, quantity=2, order_type=OrderType.LIMIT, limit_price=D("6652.00"))
    await run.engine.place(limit)
    await run.until(lambda: (o := run.order(ACCT, limit.client_order_id)) is not None and o.is_open, "a resting limit")
    await fake.trade_through(SYM, "6652.00")
    await run.until(lambda: run.held() == 0, "the limit to close the position")
    closed = run.order(ACCT, limit.client_order_id)
    assert closed.status is OrderStatus.FILLED and closed.avg_fill_price == D("6652.00")
    # 2 x 7 ticks x $1.25 = $17.50, less $0.37 a contract a side.
    await run.until(lambda: run.engine.book.position(ACCT, SYM).realized_pnl == D("17.50") - D("1.48"), "the P&L")

    stop = req(side=Side.SELL, order_type=OrderType.STOP, stop_price=D("6650.00"))
    run_entry = req()
    await run.engine.place(run_entry)
    await run.until(lambda: run.held() == 1, "a new long")
    await run.engine.place(stop)
    await run.until(lambda: (o := run.order(ACCT, stop.client_order_id)) is not None and o.is_open, "a working stop")
    await fake.set_quote(SYM, bid="6649.75", ask="6650.00", last="6649.75")
    await run.until(lambda: run.held() == 0, "the stop to fill")
    assert run.order(ACCT, stop.client_order_id).status is OrderStatus.FILLED

    stop_limit = req(order_type=OrderType.STOP_LIMIT, stop_price=D("6651.00"), limit_price=D("6651.50"))
    await run.engine.place(stop_limit)
    await run.until(lambda: (o := run.order(ACCT, stop_limit.client_order_id)) is not None and o.is_open, "stop-limit")
    await fake.set_quote(SYM, bid="6651.00", ask="6651.25", last="6651.00")
    await run.until(lambda: run.held() == 1, "the stop-limit to fill")
    assert run.order(ACCT, stop_limit.client_order_id).avg_fill_price <= D("6651.50")


async def test_a_trailing_stop_is_placed_as_a_level_and_follows_the_market(run: Running) -> None:
    fake = run.fake
    await run.engine.place(req())
    await run.until(lambda: run.held() == 1, "a long")
    trail = req(side=Side.SELL, order_type=OrderType.TRAILING_STOP, trail_amount=D("2.00"))
    placed = await run.engine.place(trail)
    assert placed.status is not OrderStatus.REJECTED, placed.reject_reason
    # B12: when placing, trailPrice is a price level: the last price (6650.00) less the trail.
    assert run.places()[-1]["trailPrice"] == 6648 and run.places()[-1]["type"] == 5
    await run.until(lambda: (o := run.order(ACCT, trail.client_order_id)) is not None and o.is_open, "working")
    await fake.trade(SYM, "6654.00")  # up 4 points: the stop follows to 6652.00
    await run.until(lambda: run.order(ACCT, trail.client_order_id).stop_price == D("6652.00"), "the stop to trail")
    assert run.order(ACCT, trail.client_order_id).trail_amount == D("2.00")
    await fake.trade(SYM, "6651.75")
    await run.until(lambda: run.held() == 0, "the trailing stop to fill")


async def test_a_bracket_is_sent_as_signed_ticks_and_its_exits_are_linked(run: Running) -> None:
    fake = run.fake
    long = req(bracket=Bracket(take_profit_ticks=8, stop_loss_ticks=4))
    entry = await run.engine.place(long)
    assert entry.status is not OrderStatus.REJECTED, entry.reject_reason
    body = run.places()[-1]
    assert body["stopLossBracket"] == {"ticks": -4, "type": 4} and body["takeProfitBracket"] == {"ticks": 8, "type": 1}
    await run.until(lambda: run.held() == 1, "the entry fill")

    def exits():
        return [o for o in run.engine.open_orders(ACCT) if o.side is Side.SELL]

    await run.until(lambda: len(exits()) == 2 and all(o.status is OrderStatus.WORKING for o in exits()), "exits")
    roles = {o.role: o for o in exits()}
    assert roles[OrderRole.TAKE_PROFIT].limit_price == D("6652.25")
    assert roles[OrderRole.STOP_LOSS].stop_price == D("6649.25")
    assert {o.client_order_id for o in exits()} == {f"{long.client_order_id}:tp", f"{long.client_order_id}:sl"}
    assert all(o.parent_id == entry.order_id for o in exits())
    await fake.set_quote(SYM, bid="6649.00", ask="6649.25", last="6649.00")
    await run.until(lambda: run.held() == 0 and not exits(), "the stop-loss to fill and the target to go")

    short = req(side=Side.SELL, bracket=Bracket(take_profit_ticks=6, stop_loss_ticks=6))
    await run.engine.place(short)
    body = run.places()[-1]
    assert body["stopLossBracket"]["ticks"] == 6 and body["takeProfitBracket"]["ticks"] == -6


async def test_modify_and_cancel_a_working_order(run: Running) -> None:
    limit = req(order_type=OrderType.LIMIT, limit_price=D("6645.00"), quantity=2)
    await run.engine.place(limit)
    await run.until(lambda: (o := run.order(ACCT, limit.client_order_id)) is not None and o.is_open, "working")
    working = run.order(ACCT, limit.client_order_id)
    changed = await run.broker.modify(ACCT, working.order_id, quantity=3, limit_price=D("6644.50"))
    assert (changed.quantity, changed.limit_price, changed.reject_reason) == (3, D("6644.50"), "")
    off_tick = await run.broker.modify(ACCT, working.order_id, limit_price=D("6644.10"))
    assert "off MESZ6's tick grid" in off_tick.reject_reason
    assert [b for e, b in run.fake.bodies if e == "order/modify"] == [
        {"accountId": 536, "orderId": int(working.order_id), "size": 3, "limitPrice": 6644.5}
    ]
    cancelled = await run.broker.cancel(ACCT, working.order_id)
    assert cancelled.status is OrderStatus.CANCELLED
    again = await run.broker.cancel(ACCT, working.order_id)
    assert again.status is OrderStatus.CANCELLED  # already ended: nothing sent
    assert len([e for e, _ in run.fake.bodies if e == "order/cancel"]) == 1


async def test_rejects_carry_the_gateways_reason(run: Running) -> None:
    run.fake.market_open = False
    closed = await run.engine.place(req())
    assert closed.status is OrderStatus.REJECTED
    assert closed.reject_reason == "ProjectX refused the order: outside trading hours: The market is closed."
    run.fake.market_open = True
    # A customTag is unique per account: the same client order id twice is refused by the gateway.
    first = req(order_type=OrderType.LIMIT, limit_price=D("6640.00"))
    assert (await run.broker.place(first)).status is OrderStatus.WORKING
    twice = await run.broker.place(first)
    assert twice.status is OrderStatus.REJECTED and "already exists" in twice.reject_reason
    assert run.fake.book.orders and sum(1 for o in run.fake.book.orders.values() if o.custom_tag) == 1


async def test_bad_input_is_refused_before_anything_is_sent(run: Running) -> None:
    before = len(run.places())
    unknown = await run.broker.place(req(symbol="MESH9"))
    assert unknown.status is OrderStatus.REJECTED and "ProjectX lists no contract MESH9" in unknown.reject_reason
    off = await run.broker.place(req(order_type=OrderType.LIMIT, limit_price=D("6650.10")))
    assert "off MESZ6's tick grid" in off.reject_reason and "6650.00 or 6650.25" in off.reject_reason
    # A bracket given as prices on the wrong side of the entry (a long's stop above it).
    wrong = await run.broker.place(
        req(
            order_type=OrderType.LIMIT,
            limit_price=D("6650.00"),
            bracket=Bracket(stop_loss_price=D("6652.00"), take_profit_price=D("6655.00")),
        )
    )
    assert wrong.status is OrderStatus.REJECTED
    assert "bracket stop-loss 6652.00 must be below the entry (6650.00) for a long entry" in wrong.reject_reason
    multi = await run.broker.place(req(order_type=OrderType.STOP, stop_price=None))
    assert "needs a stop price" in multi.reject_reason
    reduce = await run.broker.place(req(side=Side.SELL, reduce_only=True))
    assert "reduce-only" in reduce.reject_reason
    assert len(run.places()) == before  # nothing reached the gateway


# --------------------------------------------------------------------------- limits and lookups


async def test_the_shared_limiter_keeps_under_the_gateways_window(fake: FakeProjectX, tmp_path) -> None:
    clock = fake.clock
    assert isinstance(clock, FakeClock)
    broker = make_broker(fake, tmp_path, requests_per_minute=12)
    fake.rate_limits["default"] = (12, 60.0)
    await broker.connect()
    try:
        used = len(fake.requests)
        assert used < 12
        reads = asyncio.gather(*(broker.rest.positions(536) for _ in range(12)))
        await fake.until(lambda: len(fake.requests) == 12)
        await asyncio.sleep(0.1)
        assert not reads.done() and len(fake.requests) == 12  # the window is full: the rest wait
        clock.advance(61)
        await asyncio.wait_for(reads, 5)
        assert sum(fake.throttled.values()) == 0  # never a 429
        assert broker.limiter.waited > 0
    finally:
        await broker.close()


async def test_a_429_on_an_order_is_looked_up_by_its_tag_never_resent_blind(run: Running) -> None:
    run.fake.fail_429("Order/place")
    placing = asyncio.ensure_future(run.engine.place(req()))
    clock = run.fake.clock
    assert isinstance(clock, FakeClock)
    # The 429 holds every request (Retry-After: 1); the lookup waits it out, then asks.
    await clock.wait_for_sleeper(longer_than=0.1, shorter_than=5.0)
    clock.advance(5)
    order = await asyncio.wait_for(placing, 5)
    assert order.status is OrderStatus.REJECTED and "rate-limited" in order.reject_reason
    endpoints = [e for _, e in run.fake.requests]
    assert endpoints.count("order/place") == 1 and run.fake.throttled["order/place"] == 1  # sent once
    assert endpoints.index("order/search", endpoints.index("order/place")) > 0  # looked up after


async def test_a_401_on_an_order_opens_a_session_and_looks_the_order_up_before_resending(run: Running) -> None:
    run.fake.expire_tokens()
    request = req()
    order = await run.engine.place(request)
    assert order.status is not OrderStatus.REJECTED, order.reject_reason
    endpoints = [e for _, e in run.fake.requests]
    first = endpoints.index("order/place")
    # 401 -> a new session -> Order/search by customTag (nothing there) -> sent again.
    assert "auth/loginkey" in endpoints[first:] and "order/search" in endpoints[first:]
    assert endpoints.index("order/search", first) < len(endpoints) - 1 - endpoints[::-1].index("order/place")
    await run.until(lambda: run.held() == 1, "one fill")
    assert sum(1 for o in run.fake.book.orders.values() if o.custom_tag == request.client_order_id) == 1


async def test_a_lost_answer_is_found_by_its_tag_not_sent_twice(fake: FakeProjectX, tmp_path) -> None:
    r = await running(fake, tmp_path, request_timeout=0.5)
    try:
        fake.slow("Order/place", 2.0)
        request = req(order_type=OrderType.LIMIT, limit_price=D("6640.00"))
        order = await r.engine.place(request)
        assert order.status is OrderStatus.WORKING and order.client_order_id == request.client_order_id
        assert len(r.places()) == 1
        assert sum(1 for o in fake.book.orders.values() if o.custom_tag == request.client_order_id) == 1
    finally:
        await r.engine.stop()


async def test_flatten_cancels_and_closes_with_the_gateways_close(run: Running) -> None:
    await run.engine.place(req(quantity=3))
    resting = req(order_type=OrderType.LIMIT, limit_price=D("6640.00"))
    await run.engine.place(resting)
    await run.until(lambda: run.held() == 3, "the position")
    await run.engine.flatten(ACCT)
    await run.until(lambda: run.held() == 0, "flat")
    assert run.order(ACCT, resting.client_order_id).status is OrderStatus.CANCELLED
    assert [b for e, b in run.fake.bodies if e == "position/closecontract"] == [
        {"accountId": 536, "contractId": run.fake.contract_id("MES")}
    ]


async def test_bars_depth_and_prints(run: Running) -> None:
    from tterm.core.models import Depth, Timeframe, Trade

    bars = await run.broker.bars(SYM, Timeframe.M5, NOW - timedelta(hours=3), NOW)
    assert len(bars) == 36 and [b.start for b in bars] == sorted(b.start for b in bars)
    assert all(b.seconds == 300 and b.low <= b.open <= b.high for b in bars)
    await run.engine.subscribe_depth([SYM])
    await run.engine.subscribe_trades([SYM])
    await run.fake.trade(SYM, "6650.25", size=4)
    await run.until(lambda: any(isinstance(e, Trade) and e.size == 4 for e in run.seen), "the print")
    await run.until(lambda: any(isinstance(e, Depth) for e in run.seen), "depth")
    depth = next(e for e in reversed(run.seen) if isinstance(e, Depth))
    assert depth.bids[0].price < depth.asks[0].price and len(depth.bids) == 10
    trade = next(e for e in run.seen if isinstance(e, Trade) and e.size == 4)
    assert trade.aggressor is Side.BUY and trade.price == D("6650.25")


async def test_yesterdays_trades_are_not_todays_fills(fake: FakeProjectX, tmp_path) -> None:
    first = make_broker(fake, tmp_path / "a")
    await first.connect()
    try:
        await first.place(req())
        await first.sync.wait_until(lambda: bool(first.sync.positions), 2)
        assert len(await first.fills()) == 1
    finally:
        await first.close()
    fake.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
    later = make_broker(fake, tmp_path / "b")
    await later.connect()
    try:
        # The position is still there (held overnight); yesterday's trade is not one of today's fills.
        assert [(p.symbol, p.quantity) for p in await later.positions(ACCT)] == [(SYM, 1)]
        assert await later.fills() == []
        assert len(later.sync.trades) == 1  # read, for the day's P&L it is left out of
    finally:
        await later.close()


async def test_a_partial_close_takes_some_of_the_position(run: Running) -> None:
    await run.engine.place(req(quantity=3))
    await run.until(lambda: run.held() == 3, "three long")
    await run.broker.rest.partial_close(536, run.fake.contract_id("MES"), 2)
    await run.until(lambda: run.held() == 1, "one left")
    assert [b for e, b in run.fake.bodies if e == "position/partialclosecontract"] == [
        {"accountId": 536, "contractId": run.fake.contract_id("MES"), "size": 2}
    ]

"""The ProjectX adapter's hubs under faults, reconciliation, the TopstepX risk profile and secrets.

- a dropped user hub subscribes again and reconciles from REST: a trade made while it was down
  arrives once; a wrapped ``{action, data}`` user event (U11) reads like a bare one;
- frozen ticks with a healthy socket (project-x-py issue #97) mark market data STALE and hold
  new orders in that symbol (exits still pass) until quotes come back;
- the TopstepX 50K Combine profile (ten micros count as one contract, five contracts at most)
  blocks the micro past 50 and flattens before the floor, built from the config as tterm does;
- no API key or token in the log, the journal or anything the screen shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.fakes import FakeClock
from tests.fakes.projectx import FakeProjectX
from tests.integration.projectx_support import FAST, Running, make_broker, start_fake
from tterm.brokers.projectx.broker import MARKET, USER
from tterm.core.clock import CmeClock, default_calendar
from tterm.core.engine import Engine
from tterm.core.instruments import InstrumentMaster
from tterm.core.journal import Journal
from tterm.core.models import (
    ConnectionState,
    Fill,
    Notice,
    OrderRequest,
    OrderSource,
    OrderStatus,
    OrderType,
    Side,
)

D = Decimal
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
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


def req(**kw) -> OrderRequest:
    base = dict(account=ACCT, symbol=SYM, side=Side.BUY, quantity=1, source=OrderSource.TICKET)
    base.update(kw)
    return OrderRequest(**base)  # type: ignore[arg-type]


async def test_a_trade_made_while_the_user_hub_was_down_is_reconciled_once(fake: FakeProjectX, tmp_path) -> None:
    run = await running(fake, tmp_path)
    try:
        limit = req(order_type=OrderType.LIMIT, limit_price=D("6645.00"), quantity=2)
        await run.engine.place(limit)
        await run.until(lambda: (o := run.order(ACCT, limit.client_order_id)) is not None and o.is_open, "working")
        subscribed = sum(1 for t, _, _ in fake.user_hub.invocations if t == "SubscribeOrders")
        fake.user_hub.refuse = True
        fake.drop_sockets("user")
        await run.until(lambda: run.broker.stream_state(USER)[0] is not ConnectionState.CONNECTED, "the drop")
        # While the hub is down the limit fills: no event reaches tterm.
        await fake.set_quote(SYM, bid="6644.75", ask="6645.00", last="6645.00")
        assert fake.book.trades and run.held() == 0
        held = await run.broker.place(req())
        assert held.status is OrderStatus.REJECTED and "user hub is reconnecting" in held.reject_reason
        fake.user_hub.refuse = False
        await run.until(lambda: run.held() == 2, "the reconciled fill", within=15)
        # Subscribed again (both accounts) on the new connection.
        assert sum(1 for t, _, _ in fake.user_hub.invocations if t == "SubscribeOrders") == 2 * subscribed
        assert run.order(ACCT, limit.client_order_id).status is OrderStatus.FILLED
        # Drop again: the next snapshot knows the trade already; it is not counted twice.
        fake.drop_sockets("user")
        await run.until(lambda: run.broker.sync.snapshots_applied >= 3, "the second reconcile", within=15)
        fills = [e for e in run.drain() if isinstance(e, Fill) and e.client_order_id == limit.client_order_id]
        assert len(fills) == 1 and fills[0].quantity == 2 and fills[0].price == D("6645.00")
        assert run.held() == 2
    finally:
        await run.engine.stop()


async def test_wrapped_user_events_read_like_bare_ones(fake: FakeProjectX, tmp_path) -> None:
    fake.wrap_user_events = True
    run = await running(fake, tmp_path)
    try:
        await run.engine.place(req(quantity=2))
        await run.until(lambda: run.held() == 2, "the fill from wrapped events")
        await run.engine.flatten(ACCT)
        await run.until(lambda: run.held() == 0, "flat")
        assert not await run.broker.positions(ACCT)
    finally:
        await run.engine.stop()


async def test_frozen_ticks_with_a_healthy_socket_mark_stale_and_hold_orders(fake: FakeProjectX, tmp_path) -> None:
    run = await running(fake, tmp_path, quote_stale_after=0.6)
    stop = asyncio.Event()

    async def ticking() -> None:
        up = False
        while not stop.is_set():
            bid = D("6650.25") if up else D("6650.00")
            await fake.set_quote(SYM, bid=bid, ask=bid + D("0.25"), last=bid)
            up = not up
            await asyncio.sleep(0.1)

    ticker = asyncio.get_running_loop().create_task(ticking())
    try:
        await run.engine.place(req())
        await run.until(lambda: run.held() == 1, "a long to exit later")
        await asyncio.sleep(1.0)
        assert run.broker.connection_state is ConnectionState.CONNECTED  # ticking: fresh
        pings = fake.market_hub.pings_sent
        fake.go_silent("market")
        await run.until(lambda: run.broker.connection_state is ConnectionState.STALE, "stale", within=5)
        state, detail = run.broker.stream_state(MARKET)
        assert state is ConnectionState.STALE and "no quote for MESZ6" in detail and "market hub is up" in detail
        assert fake.market_hub.alive() >= 1 and fake.market_hub.pings_sent > pings  # the socket looks healthy
        notices = [e.text for e in run.drain() if isinstance(e, Notice)]
        assert any("new orders in it are held" in t for t in notices)
        held = await run.engine.place(req())
        assert held.status is OrderStatus.REJECTED and "MESZ6's quotes are frozen" in held.reject_reason
        # An exit still goes: reduce-only orders are never held.
        out = await run.engine.place(req(side=Side.SELL, reduce_only=True))
        assert out.status is not OrderStatus.REJECTED, out.reject_reason
        await run.until(lambda: run.held() == 0, "the exit")
        # The hub was replaced once to bring ticks back; still silent, still stale.
        await run.until(lambda: fake.market_hub.sockets_opened >= 2, "a new market socket")
        await asyncio.sleep(0.3)
        assert run.broker.connection_state is ConnectionState.STALE, run.broker.stream_state(MARKET)
        fake.go_silent("market", False)
        await run.until(lambda: run.broker.connection_state is ConnectionState.CONNECTED, "fresh again", within=5)
        again = await run.engine.place(req())
        assert again.status is not OrderStatus.REJECTED, again.reject_reason
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        await run.engine.stop()


async def test_a_server_logout_is_said_and_the_hubs_come_back(fake: FakeProjectX, tmp_path) -> None:
    run = await running(fake, tmp_path)
    try:
        opened = fake.user_hub.sockets_opened
        await fake.push_logout()
        await run.until(lambda: fake.user_hub.sockets_opened > opened, "a new user socket")
        await run.until(lambda: run.broker.connection_state is ConnectionState.CONNECTED, "connected")
        assert any(isinstance(e, Notice) and "GatewayLogout" in e.text for e in run.seen)
    finally:
        await run.engine.stop()


# --------------------------------------------------------------------------- the TopstepX profile


async def test_the_topstepx_profile_counts_micros_and_flattens_before_the_floor(
    fake: FakeProjectX, tmp_path, monkeypatch
) -> None:
    from tterm.config import validate_settings
    from tterm.risk.monitor import monitor_of
    from tterm.runtime import build_engine

    monkeypatch.setenv("TTERM_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("TTERM_PX_API_KEY", fake.api_key)
    opts = {
        "api_url": fake.api_url,
        "user_hub_url": fake.user_hub_url,
        "market_hub_url": fake.market_hub_url,
        **{k: str(v) for k, v in FAST.items()},
    }
    config = {
        "paper": {"enabled": False},
        "general": {"default_account": ACCT},
        # Entries carry no stop here: the worst case assumes 8 ticks against them (a user setting).
        "risk": {"no_stop_adverse_ticks": 8},
        "brokers": {"px": {"type": "projectx", "enabled": True, "username": fake.username, "options": opts}},
        "accounts": {ACCT: {"profile": "topstep-50k-combine-topstepx"}},
    }
    settings = validate_settings(config, tmp_path / "cfg" / "config.toml")
    clock = CmeClock(default_calendar(), now=lambda: NOW)
    engine = build_engine(settings, clock=clock, root=tmp_path / "data")
    monitor = monitor_of(engine)
    assert monitor is not None
    run = Running(engine, engine.brokers["px"], fake)
    await engine.start()
    try:
        await engine.watch([SYM])
        await run.until(lambda: engine.quote(SYM) is not None, "the first quote")
        # Five contracts at most, ten micros counting as one: 40 micros, then 10 more, then no more.
        first = await engine.place(req(quantity=40))
        assert first.status is not OrderStatus.REJECTED, first.reject_reason
        await run.until(lambda: run.held() == 40, "40 micros")
        assert (await engine.place(req(quantity=10))).status is not OrderStatus.REJECTED
        await run.until(lambda: run.held() == 50, "50 micros")
        eleventh = await engine.place(req(quantity=1))
        assert eleventh.status is OrderStatus.REJECTED and "contract" in eleventh.reject_reason.lower()
        assert run.held() == 50 and len(run.places()) == 2  # the 51st micro never left tterm
        # The market falls: tterm flattens before the $2,000 trailing drawdown's floor ($48,000).
        price = D("6650.00")
        while run.held() != 0:
            price -= D("0.25")
            await fake.set_quote(SYM, bid=price, ask=price + D("0.25"), last=price)
            await engine.settle()
            await monitor.settle()
            assert price > D("6600"), "tterm never flattened"
            await asyncio.sleep(0.01)
        await run.until(lambda: engine.open_orders(ACCT) == [], "no working orders")
        assert [b for e, b in fake.bodies if e == "position/closecontract"]
        account = fake.book.accounts[536]
        assert account.balance > D(48000)  # the firm's floor was never reached
        status = monitor.status(ACCT)
        assert status is not None and status.profile == "topstep-50k-combine-topstepx"
    finally:
        await monitor.close()
        await engine.stop()
        engine.journal.close()


# --------------------------------------------------------------------------- secrets


async def test_no_key_or_token_in_the_log_the_journal_or_on_screen(fake: FakeProjectX, tmp_path, caplog) -> None:
    issued: list[str] = []
    real_issue = fake.issue_token

    def issue(user: str) -> str:
        token = real_issue(user)
        issued.append(token)
        return token

    fake.issue_token = issue  # type: ignore[method-assign]
    caplog.set_level(logging.DEBUG)
    run = await running(fake, tmp_path)
    try:
        await run.engine.place(req())
        await run.until(lambda: run.held() == 1, "a fill")
        await run.broker.tokens.refresh()  # a renewal (Auth/validate)
        fake.expire_tokens()
        fake.drop_sockets()
        await run.until(lambda: fake.logins >= 2, "a new login after the expiry", within=10)
        await run.until(lambda: run.broker.connection_state is ConnectionState.CONNECTED, "back", within=10)
        fake.fail_429("Order/place")
        placing = asyncio.ensure_future(run.engine.place(req()))
        await fake.clock.wait_for_sleeper(longer_than=0.1, shorter_than=5.0)  # type: ignore[attr-defined]
        fake.clock.advance(5)  # type: ignore[attr-defined]
        await placing
    finally:
        await run.engine.stop()
    assert len(issued) >= 3
    secrets = [fake.api_key, *issued]
    logs = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    journal = (tmp_path / "journal.sqlite3").read_bytes().decode("utf-8", "replace")
    for wal in tmp_path.glob("journal.sqlite3*"):
        journal += wal.read_bytes().decode("utf-8", "replace")
    screen = "\n".join(
        str(getattr(e, "text", "")) + str(getattr(e, "detail", "")) + str(getattr(e, "reject_reason", ""))
        for e in run.seen
    )
    for secret in secrets:
        for where, text in (("log", logs), ("journal", journal), ("screen", screen)):
            assert secret not in text, f"a secret reached the {where}"
            assert secret[-24:] not in text, f"part of a secret reached the {where}"


async def test_quiet_quotes_while_the_market_is_closed_are_not_frozen(tmp_path) -> None:
    """With the engine's session clock, a contract that stops quoting outside CME hours is not STALE."""
    saturday = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
    sessions = CmeClock(default_calendar(), now=lambda: saturday)
    fake = await start_fake(FakeClock(saturday))
    master = InstrumentMaster(today=lambda: fake.clock.now().date())
    from tests.integration.projectx_support import options, secrets
    from tterm.brokers.projectx import build

    opts = {**options(fake), "quote_stale_after": 0.3}
    broker = build("px", opts, secrets(fake), instruments=master, clock=sessions, data_dir=tmp_path)
    await broker.connect()
    try:
        await broker.subscribe_quotes([SYM])
        await asyncio.sleep(1.0)
        assert broker.connection_state is ConnectionState.CONNECTED and not broker.frozen
    finally:
        await broker.close()
        await fake.stop()


async def test_one_quiet_contract_holds_its_orders_without_calling_the_stream_frozen(
    fake: FakeProjectX, tmp_path
) -> None:
    run = await running(fake, tmp_path, quote_stale_after=0.6)
    stop = asyncio.Event()

    async def ticking() -> None:
        bid = D("6650.00")
        while not stop.is_set():
            bid = D("6650.25") if bid == D("6650.00") else D("6650.00")
            await fake.set_quote(SYM, bid=bid, ask=bid + D("0.25"), last=bid)
            await asyncio.sleep(0.1)

    ticker = asyncio.get_running_loop().create_task(ticking())
    try:
        await run.engine.watch(["MNQZ6"])  # quoted once on subscription, then quiet
        await run.until(lambda: run.engine.quote("MNQZ6") is not None, "MNQ's first quote")
        await asyncio.sleep(1.2)
        held = await run.engine.place(req(symbol="MNQZ6"))
        assert held.status is OrderStatus.REJECTED and "MNQZ6's quotes are frozen" in held.reject_reason
        assert run.broker.connection_state is ConnectionState.CONNECTED
        assert fake.market_hub.sockets_opened == 1  # no reconnect for one quiet contract
        mes = await run.engine.place(req())
        assert mes.status is not OrderStatus.REJECTED, mes.reject_reason
        await fake.set_quote("MNQ", bid="21000.25", ask="21000.50", last="21000.25")
        await asyncio.sleep(0.1)
        again = await run.engine.place(req(symbol="MNQZ6"))
        assert again.status is not OrderStatus.REJECTED, again.reject_reason
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        await run.engine.stop()

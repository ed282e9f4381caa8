"""The Schwab streamer through the adapter, on the fake Schwab: LOGIN with the raw token and the ids
from userPreference; LEVELONE equities, options and futures with numeric fields decoded and partial
updates merged; reconnect with resubscription and an order resync; the watchdog; one connection per
user; account activity as a hint to poll."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import FakeClock
from tests.fakes.schwab import FakeSchwab
from tests.integration.schwab_adapter_support import MARGIN, NOW, log_in, make_broker, start_fake, until
from tterm.brokers.schwab.broker import SchwabBroker
from tterm.core.models import ConnectionState, ConnectionStatus, Notice, Order, Quote

D = Decimal


class Watch:
    """A broker and everything it emitted."""

    def __init__(self, broker: SchwabBroker) -> None:
        self.broker = broker
        self.seen: list[Any] = []
        self._task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        async for event in self.broker.events():
            self.seen.append(event)

    def quotes(self, symbol: str) -> list[Quote]:
        return [e for e in self.seen if isinstance(e, Quote) and e.symbol == symbol]

    def last(self, symbol: str) -> Quote | None:
        q = self.quotes(symbol)
        return q[-1] if q else None

    async def close(self) -> None:
        await self.broker.close()
        await asyncio.wait_for(self._task, 5)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSchwab]:
    server = await start_fake(FakeClock(NOW))
    yield server
    await server.stop()


async def _connected(fake: FakeSchwab, tmp_path: Path, **over: str) -> Watch:
    broker = make_broker(fake, tmp_path, **over)
    await log_in(fake, broker)
    await broker.connect()
    watch = Watch(broker)
    await until(lambda: fake.streamer.connections() == 1, "the streamer login")
    return watch


async def test_login_carries_the_raw_token_and_the_ids_from_user_preferences(fake, tmp_path):
    w = await _connected(fake, tmp_path)
    try:
        (conn,) = [c for c in fake.streamer.conns if c.logged_in]
        login = conn.requests[0]
        assert (login["service"], login["command"]) == ("ADMIN", "LOGIN")
        token = w.broker.store.load()
        assert token is not None and login["parameters"]["Authorization"] == token.value  # no "Bearer "
        assert login["SchwabClientCustomerId"] == fake.customer_id and login["SchwabClientCorrelId"] == fake.correl_id
        assert login["parameters"]["SchwabClientChannel"] == fake.channel
        activity = [r for r in conn.requests if r["service"] == "ACCT_ACTIVITY"]
        assert activity and activity[0]["parameters"]["keys"] == fake.correl_id
    finally:
        await w.close()


async def test_levelone_updates_are_merged_into_whole_quotes(fake, tmp_path):
    w = await _connected(fake, tmp_path)
    try:
        fake.set_price("AAPL", "190.00", bid="189.98", ask="190.02", bid_size=300, ask_size=400)
        await w.broker.subscribe_quotes(["AAPL"])
        await until(lambda: (q := w.last("AAPL")) is not None and q.bid == D("189.98"), "the snapshot")
        first = w.last("AAPL")
        assert first is not None and (first.ask, first.last, first.bid_size, first.ask_size) == (
            D("190.02"),
            D("190.00"),
            300,
            400,
        )
        assert first.prev_close is not None and first.volume > 0
        # Only the last price and sizes change: the stream sends just those; the quote keeps the rest.
        fake.set_price("AAPL", "190.01", bid="189.98", ask="190.02", bid_size=300, ask_size=400)
        await until(lambda: (q := w.last("AAPL")) is not None and q.last == D("190.01"), "the update")
        (conn,) = [c for c in fake.streamer.conns if c.logged_in]
        sent = conn.sent["LEVELONE_EQUITIES"]["AAPL"]
        assert {1, 2, 3} <= set(sent)
        later = w.last("AAPL")
        assert later is not None and (later.bid, later.ask, later.bid_size) == (D("189.98"), D("190.02"), 300)
    finally:
        await w.close()


async def test_option_and_futures_quotes_stream_under_tterms_symbols(fake, tmp_path):
    w = await _connected(fake, tmp_path)
    try:
        chain = await w.broker.option_chain("AAPL")
        call = chain.rows[len(chain.rows) // 2].call
        assert call is not None
        front = w.broker._master.front("ES")
        await w.broker.subscribe_quotes([call.symbol, front.symbol])
        await until(lambda: w.last(call.symbol) is not None and w.last(front.symbol) is not None, "both quotes")
        (conn,) = [c for c in fake.streamer.conns if c.logged_in]
        assert call.symbol in conn.sent["LEVELONE_OPTIONS"] and "/ESZ26" in conn.sent["LEVELONE_FUTURES"]
        opt, fut = w.last(call.symbol), w.last(front.symbol)
        assert opt is not None and opt.bid == call.bid and opt.ask == call.ask
        assert fut is not None and (fut.bid, fut.ask) == (D("5999.75"), D("6000.00"))
        await w.broker.unsubscribe_quotes([front.symbol])
        await until(lambda: "/ESZ26" not in conn.sent["LEVELONE_FUTURES"], "the unsubscribe")
    finally:
        await w.close()


async def test_a_dropped_stream_reconnects_resubscribes_and_resyncs_orders(fake, tmp_path):
    w = await _connected(fake, tmp_path)
    try:
        await w.broker.subscribe_quotes(["MSFT"])
        await until(lambda: w.last("MSFT") is not None, "a quote")
        logins = fake.streamer.logins
        await fake.drop_streams()
        await until(
            lambda: any(isinstance(e, ConnectionStatus) and e.state is ConnectionState.RECONNECTING for e in w.seen),
            "the drop",
        )
        await until(lambda: fake.streamer.logins > logins and fake.streamer.connections() == 1, "a new login")
        await until(lambda: w.broker.connection_state is ConnectionState.CONNECTED, "CONNECTED again")
        (conn,) = [c for c in fake.streamer.conns if c.logged_in]
        subs = [r for r in conn.requests if r["command"] == "SUBS" and r["service"] == "LEVELONE_EQUITIES"]
        assert subs and subs[0]["parameters"]["keys"] == "MSFT"
        fake.set_price("MSFT", "420.00")
        await until(lambda: (q := w.last("MSFT")) is not None and q.last == D("420.00"), "quotes after it")
    finally:
        await w.close()


async def test_a_silent_stream_goes_stale_and_is_replaced(fake, tmp_path):
    w = await _connected(fake, tmp_path, stale_after="0.3")
    try:
        logins = fake.streamer.logins
        fake.silent = True
        await until(
            lambda: any(isinstance(e, ConnectionStatus) and e.state is ConnectionState.STALE for e in w.seen), "STALE"
        )
        fake.silent = False
        await until(lambda: fake.streamer.logins > logins, "a fresh connection")
        await until(lambda: w.broker.connection_state is ConnectionState.CONNECTED, "CONNECTED again")
    finally:
        await w.close()


async def test_one_streamer_per_user_a_second_login_takes_over_and_the_first_waits(fake, tmp_path):
    first = await _connected(fake, tmp_path / "a", displaced_wait="30")
    second = await _connected(fake, tmp_path / "b")
    try:
        await until(lambda: any(isinstance(e, Notice) and "one per user" in e.text for e in first.seen), "the notice")
        logins = fake.streamer.logins
        await asyncio.sleep(0.3)
        assert fake.streamer.logins == logins  # the first does not push the other out at once
        assert fake.streamer.displaced == 1
    finally:
        await second.close()
        await first.close()


async def test_account_activity_makes_the_next_poll_come_at_once(fake, tmp_path):
    w = await _connected(fake, tmp_path, idle_poll_interval="30", active_after_command="0")
    try:
        await until(lambda: fake.streamer.connections() == 1, "the stream")
        # An order placed elsewhere (Schwab's own app): only the account-activity stream tells.
        acct = fake.account("12345678")
        body = {
            "orderType": "LIMIT",
            "session": "NORMAL",
            "duration": "DAY",
            "orderStrategyType": "SINGLE",
            "price": "100.00",
            "orderLegCollection": [
                {"instruction": "BUY", "quantity": 1, "instrument": {"symbol": "AAPL", "assetType": "EQUITY"}}
            ],
        }
        placed = fake.book.place(acct, body)
        await until(lambda: any(isinstance(e, Order) and e.order_id == str(placed.id) for e in w.seen), "the order")
        order = next(e for e in w.seen if isinstance(e, Order) and e.order_id == str(placed.id))
        assert order.account == MARGIN and order.client_order_id == f"schwab-{placed.id}" and order.is_open
    finally:
        await w.close()


async def test_order_polls_that_keep_failing_are_reported_once_and_their_recovery_too(fake, tmp_path):
    w = await _connected(fake, tmp_path)
    try:
        fake.drop_next("/trader/v1/orders", times=9)  # three polls, each tried three times
        await until(
            lambda: any(isinstance(e, Notice) and "polls keep failing" in e.text for e in w.seen), "the warning"
        )
        await until(lambda: any(isinstance(e, Notice) and "polls work again" in e.text for e in w.seen), "the recovery")
        assert sum(isinstance(e, Notice) and "polls keep failing" in e.text for e in w.seen) == 1
    finally:
        await w.close()

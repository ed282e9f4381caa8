"""Tastytrade's two sockets on the strict fake: DXLink (handshake order, keepalives, quotes and
Greeks into the watchlist and the chain, candles, a silent socket detected and replaced) and the
account streamer (notifications as engine events, a drop resynced over REST, odd payloads skipped
with a notice while the stream goes on)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from decimal import Decimal

import pytest

from tests.integration.tastytrade_support import MARGIN, make_broker, start_engine, start_fake, until
from tterm.core.broker import BrokerError
from tterm.core.models import (
    ConnectionState,
    ConnectionStatus,
    Fill,
    Notice,
    OrderRequest,
    OrderSource,
    OrderStatus,
    Side,
    Timeframe,
)

D = Decimal


@pytest.fixture
async def fake():
    f = await start_fake()
    f.set_quote("AAPL", bid="230.00", ask="230.02", last="230.01")
    f.set_quote("/MESZ6", bid="6650.00", ask="6650.25", last="6650.00")
    yield f
    await f.stop()


@pytest.fixture
async def run(fake, tmp_path):
    broker = make_broker(fake, tmp_path)
    r = await start_engine(broker, broker.master, tmp_path)
    await r.engine.watch(["MESZ6", "AAPL"])
    await r.until(lambda: r.engine.quote("MESZ6") is not None and r.engine.quote("AAPL") is not None, "quotes")
    yield r
    await r.engine.stop()


# =========================================================================== DXLink


async def test_dxlink_handshake_runs_in_the_vendors_order_and_keepalives_keep_it_open(run, fake):
    sent = [m["type"] for d, m in fake.dxlink.messages if d == "in" and m["type"] != "KEEPALIVE"]
    assert sent[:6] == ["SETUP", "AUTH", "CHANNEL_REQUEST", "FEED_SETUP", "CHANNEL_REQUEST", "FEED_SETUP"]
    assert "FEED_SUBSCRIPTION" in sent
    setup = next(m for d, m in fake.dxlink.messages if d == "in" and m["type"] == "SETUP")
    assert setup["keepaliveTimeout"] == 5  # the test's dxlink_timeout
    await asyncio.sleep(1.0)
    assert any(d == "in" and m["type"] == "KEEPALIVE" for d, m in fake.dxlink.messages)
    assert fake.dxlink.timeouts == 0 and fake.connections["dxlink"] == 1


async def test_quotes_trades_and_the_previous_close_reach_the_watchlist(run, fake):
    fake.move("AAPL", "231.50", size=300)
    await run.until(lambda: (q := run.engine.quote("AAPL")) is not None and q.last == D("231.50"), "the move")
    q = run.engine.quote("AAPL")
    assert q is not None and (q.bid, q.ask) == (D("231.49"), D("231.51"))
    assert q.prev_close is not None and q.volume > 0
    fake.set_quote("/MESZ6", bid="6651.00", ask="6651.25")
    await run.until(lambda: (q := run.engine.quote("MESZ6")) is not None and q.bid == D("6651.00"), "futures")


async def test_the_chain_carries_dxlinks_greeks_and_an_option_quotes_in_the_watchlist(run, fake):
    chain = await run.engine.option_chain("AAPL")
    assert chain.broker == "tt" and chain.underlying_price == D("230.01")
    assert len(chain.rows) == 11 and chain.expiry == chain.expiries[0]
    calls = [r.call for r in chain.rows if r.call is not None]
    assert calls and all(c.greeks is not None and c.greeks.source == "broker" for c in calls)
    atm = min(calls, key=lambda c: abs((c.instrument.strike or 0) - D("230")))
    truth = fake.market.greeks(fake.book.market.get(atm.symbol).symbol, fake.clock.now())
    assert atm.greeks is not None and atm.greeks.delta == pytest.approx(truth["delta"], abs=1e-5)
    assert atm.iv == pytest.approx(0.25) and atm.bid is not None and atm.ask is not None and atm.bid < atm.ask
    puts = [r.put for r in chain.rows if r.put is not None]
    assert all(p.greeks is not None and p.greeks.delta is not None and p.greeks.delta <= 0 for p in puts)
    # An option in the watchlist streams like any symbol.
    await run.engine.watch([atm.symbol])
    await run.until(lambda: run.engine.quote(atm.symbol) is not None, "the option's quote")
    later = await run.engine.option_chain("AAPL", chain.expiries[1])
    assert later.expiry == chain.expiries[1]


async def test_bars_come_from_a_candle_snapshot(run, fake):
    start = fake.clock.now() - timedelta(hours=2)
    bars = await run.engine.bars("MESZ6", Timeframe.M1, start, fake.clock.now())
    assert len(bars) == 120 and all(b.seconds == 60 for b in bars)
    assert [b.start for b in bars] == sorted(b.start for b in bars) and bars[0].start >= start
    daily = await run.engine.bars("AAPL", Timeframe.D1, fake.clock.now() - timedelta(days=30))
    assert daily and all(b.seconds == 86400 for b in daily)


async def test_a_silent_dxlink_is_detected_and_replaced(run, fake):
    fake.silent_dxlink = True
    await run.until(
        lambda: any(
            isinstance(e, ConnectionStatus) and e.state is not ConnectionState.CONNECTED and "silent" in e.detail
            for e in run.drain()
        ),
        "the silence to be noticed",
        within=6,
    )
    fake.silent_dxlink = False
    await run.until(lambda: run.broker.connection_state is ConnectionState.CONNECTED, "a new DXLink", within=10)
    assert fake.connections["dxlink"] >= 2
    fake.move("AAPL", "232.00")
    await run.until(lambda: (q := run.engine.quote("AAPL")) is not None and q.last == D("232.00"), "quotes again")


async def test_odd_dxlink_data_is_skipped_and_the_feed_goes_on(run, fake):
    await fake.dxlink.push_raw("not json at all")
    await fake.dxlink.push_raw({"type": "FEED_DATA", "channel": 1, "data": ["Quote", ["AAPL", 1, 2]]})  # short
    await fake.dxlink.push_raw({"type": "FEED_DATA", "channel": 1, "data": "junk"})
    await fake.dxlink.push_raw({"type": "FEED_DATA", "channel": 1, "data": ["Nope", [1, 2, 3]]})
    names = run.broker._dx.socket.fields[1]["Quote"]
    nan = dict.fromkeys(names, "NaN") | {"eventSymbol": "AAPL", "askPrice": 1e308 * 10}
    await fake.dxlink.push_raw({"type": "FEED_DATA", "channel": 1, "data": ["Quote", [nan[n] for n in names]]})
    await until(lambda: run.broker._dx.socket.skipped >= 4, "the skips")
    await run.until(lambda: (q := run.engine.quote("AAPL")) is not None and q.bid is None, "the empty quote")
    fake.move("AAPL", "233.00")
    await run.until(lambda: (q := run.engine.quote("AAPL")) is not None and q.bid == D("232.99"), "quotes again")
    assert run.broker.connection_state is ConnectionState.CONNECTED


async def test_a_future_option_is_looked_up_and_streams(run, fake):
    fo = next(i for i in fake.market.instruments.values() if i.kind == "Future Option")
    inst = await run.broker.lookup_instrument(fo.symbol)
    assert inst is not None and inst.underlying == "ESZ6" and inst.point_value == D(50)
    assert inst.symbol == fo.symbol.removeprefix("./")
    await run.engine.watch([inst.symbol])
    await run.until(lambda: run.engine.quote(inst.symbol) is not None, "the future option's quote")


# =========================================================================== the account streamer


def req(**kw) -> OrderRequest:
    base = dict(account=MARGIN, symbol="MESZ6", side=Side.BUY, quantity=1, source=OrderSource.TICKET)
    base.update(kw)
    return OrderRequest(**base)


async def test_a_fill_made_while_the_streamer_was_gone_arrives_once_after_the_resync(run, fake):
    fake.silent_streamer = True  # notifications are lost from here
    request = req(quantity=2)
    order = await run.engine.place(request)
    assert order.status is not OrderStatus.REJECTED
    await asyncio.sleep(0.2)
    assert run.engine.position(MARGIN, "MESZ6").quantity == 0  # nothing heard yet
    await fake.drop("streamer")
    fake.silent_streamer = False
    await run.until(lambda: run.engine.position(MARGIN, "MESZ6").quantity == 2, "the resync", within=10)
    await run.until(lambda: run.broker.connection_state is ConnectionState.CONNECTED, "the reconnect")
    fills = [f for f in run.of(Fill) if f.client_order_id == request.client_order_id]
    assert len(fills) == 1 and fills[0].fee == D("2.10")
    assert fake.connections["streamer"] >= 2
    done = run.engine.order_by_client_id(MARGIN, request.client_order_id)
    assert done is not None and done.status is OrderStatus.FILLED
    await run.broker.drop_streams()  # once more: a resync of what is already known adds nothing
    await run.until(lambda: fake.connections["streamer"] >= 3, "another connection")
    await run.until(lambda: run.broker.connection_state is ConnectionState.CONNECTED, "connected")
    assert len([f for f in run.of(Fill) if f.client_order_id == request.client_order_id]) == 1


async def test_odd_account_payloads_become_notices_and_the_stream_goes_on(run, fake):
    good = fake.notifications[-1] if fake.notifications else None
    odd = [
        "{not json",
        json.dumps([1, 2, 3]),
        json.dumps({"type": "Order", "data": {"id": 1, "account-number": "5WT00001", "status": "Exploded",
                                               "order-type": "Limit", "legs": [{"instrument-type": "Equity",
                                               "symbol": "AAPL", "quantity": 1, "action": "Buy to Open"}]}}),
        json.dumps({"type": "Order", "data": {"id": 2, "account-number": "5WT00001", "status": "Live",
                                               "order-type": "Limit", "legs": None}}),
        json.dumps({"type": "Order", "data": {"id": 3, "account-number": "5WT00001", "status": "Live",
                                               "order-type": "Limit", "legs": [{"instrument-type": "Equity",
                                               "symbol": "AAPL", "quantity": "1e400", "action": "Buy to Open"}]}}),
        json.dumps({"type": "CurrentPosition", "data": {"account-number": "5WT00001", "symbol": "AAPL",
                                                         "instrument-type": "Equity", "quantity": None}}),
        json.dumps({"type": "AccountBalance", "data": None}),
        json.dumps({"type": "SomethingNew", "data": {"x": 1}}),
        json.dumps({"results": [{"type": "Order", "data": {}}, "junk"]}),
    ]  # fmt: skip
    for frame in odd:
        fake.push_raw("5WT00001", frame)
    await run.until(lambda: len([n for n in run.of(Notice) if "skipped" in n.text]) >= 6, "the notices")
    assert run.broker.connection_state is ConnectionState.CONNECTED
    assert not [o for o in run.engine.open_orders(MARGIN) if o.order_id in ("1", "2", "3")]
    request = req()
    await run.engine.place(request)
    await run.until(lambda: run.engine.position(MARGIN, "MESZ6").quantity == 1, "a real order after them")
    assert good is None or good  # the fake's own notifications were never touched


async def test_a_futures_contract_has_a_chain_of_its_options_with_greeks(run, fake):
    fake.set_quote("/ESZ6", bid="6000.00", ask="6000.25", last="6000.00")
    chain = await run.engine.option_chain("ESZ6")
    assert chain.underlying == "ESZ6" and chain.rows and chain.underlying_price is not None
    first = chain.rows[0].call
    assert first is not None and first.instrument.underlying == "ESZ6" and first.instrument.point_value == D(50)
    assert first.symbol.startswith("ESZ6 ") and first.greeks is not None and first.greeks.delta is not None
    assert first.instrument.tick_table  # the chain's cabinet of ticks (0.05 under 5, then 0.25)
    with pytest.raises(Exception, match="no options expiring"):
        await run.engine.option_chain("ESZ6", chain.expiry + timedelta(days=400))


async def test_dxlink_takes_a_new_quote_token_before_the_24_hours_end(run, fake):
    fake.clock.advance(timedelta(hours=23, minutes=51))
    await run.until(lambda: fake.connections["dxlink"] >= 2, "the reconnect with a new token", within=10)
    await run.until(lambda: run.broker.connection_state is ConnectionState.CONNECTED, "connected")
    assert len(fake.quote_tokens) >= 2
    fake.move("AAPL", "231.00")
    await run.until(lambda: (q := run.engine.quote("AAPL")) is not None and q.last == D("231.00"), "quotes")


async def test_a_refused_quote_token_keeps_the_accounts_up_and_dxlink_tries_again(fake, tmp_path):
    refusals = {"left": 2}
    real = fake.valid_quote_token

    def flaky(token):
        if refusals["left"] > 0:
            refusals["left"] -= 1
            return False
        return real(token)

    fake.valid_quote_token = flaky
    broker = make_broker(fake, tmp_path)
    await broker.connect()
    try:
        assert broker.sync.accounts and fake.streamer_connected("5WT00001")
        await until(lambda: broker.connection_state is ConnectionState.CONNECTED, "DXLink after two refusals", 10)
        assert refusals["left"] == 0 and len(fake.quote_tokens) >= 3
        assert broker.gone is None  # the grant was never in question
    finally:
        await broker.close()


async def test_a_futures_contract_tterm_does_not_list_is_learned_from_tastytrades_record(fake, tmp_path):
    from tterm.core.instruments import InstrumentMaster

    master = InstrumentMaster(today=lambda: fake.clock.now().date())
    master.specs.pop("MES")  # as if tterm's list lacked the product
    master._roots_by_len.remove("MES")
    broker = make_broker(fake, tmp_path, master=master)
    await broker.connect()
    try:
        inst = await broker.lookup_instrument("/MESZ6")
        assert inst is not None and inst.symbol == "MESZ6" and inst.root == "MES"
        assert (inst.tick_size, inst.point_value) == (D("0.25"), D(5))
        assert master.resolve("MESZ6") == inst
        await broker.subscribe_quotes(["MESZ6"])
        await until(lambda: broker.last_quote("MESZ6") is not None, "its quote")
    finally:
        await broker.close()


async def test_two_charts_asking_for_the_same_bars_at_once_both_get_them(run, fake):
    start = fake.clock.now() - timedelta(minutes=30)
    a, b = await asyncio.gather(
        run.engine.bars("MESZ6", Timeframe.M1, start, fake.clock.now()),
        run.engine.bars("MESZ6", Timeframe.M1, start - timedelta(minutes=30), fake.clock.now()),
    )
    assert len(a) == 30 and len(b) == 60 and b[-30:] == a


async def test_batched_notifications_are_read_like_single_ones(run, fake):
    fake.batch_notifications = True  # {"results": [...]} (TT-JS reads both forms)
    request = req()
    await run.engine.place(request)
    await run.until(lambda: run.engine.position(MARGIN, "MESZ6").quantity == 1, "the fill from a batch")
    assert len([f for f in run.of(Fill) if f.client_order_id == request.client_order_id]) == 1


async def test_heartbeats_keep_the_account_streamer_open_when_the_server_enforces_a_timeout(tmp_path):
    fake = await start_fake(streamer_timeout=1.0)
    broker = make_broker(fake, tmp_path)
    await broker.connect()
    try:
        await asyncio.sleep(2.5)
        assert fake.connections["streamer"] == 1 and fake.streamer_connected("5WT00001")
        beats = [m for s in fake.streamer_sessions for m in s.received if m.get("action") == "heartbeat"]
        assert len(beats) >= 5 and all(b["auth-token"].startswith("Bearer ") for b in beats)
    finally:
        await broker.close()
        await fake.stop()


async def test_a_symbol_tastytrade_cannot_stream_does_not_cost_the_others_their_quotes(fake, tmp_path):
    # The fake lists ES and MES futures only: CLF7 has no record there (the default watchlist
    # holds CL1!, which once made the whole batch fail and MESZ6 go without quotes).
    broker = make_broker(fake, tmp_path)
    await broker.connect()
    try:
        with pytest.raises(BrokerError, match="CLF7"):
            await broker.subscribe_quotes(["CLF7", "MESZ6"])
        await until(lambda: broker.last_quote("MESZ6") is not None, "MESZ6's quote despite CLF7")
        assert broker.last_quote("CLF7") is None
    finally:
        await broker.close()

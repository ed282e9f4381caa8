"""The paper broker's market data end to end: depth, trades, bars, option chains, search."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from tests.integration.paper_support import CASH, FakeClock, drain, make, push
from tterm.brokers.paper import PaperBroker
from tterm.core.broker import ALL_ORDER_TYPES, ALL_TIMEFRAMES, BrokerError
from tterm.core.models import (
    Depth,
    InstrumentAdded,
    OrderRequest,
    OrderStatus,
    Quote,
    Side,
    Timeframe,
    Trade,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "replay"


async def started(clock: FakeClock | None = None, **kw: object) -> PaperBroker:
    b = make(clock, **kw)
    await b.connect()
    drain(b)
    return b


def test_capabilities_say_what_the_paper_broker_has() -> None:
    c = PaperBroker.capabilities
    assert c.multi_leg and c.options and c.equities and c.futures and c.oco and c.otoco and c.brackets
    assert c.order_types == ALL_ORDER_TYPES and c.timeframes == ALL_TIMEFRAMES
    assert c.bars and c.depth and c.trades and c.option_chain and c.search


async def test_depth_trades_and_quotes_are_one_consistent_picture() -> None:
    clock = FakeClock()
    b = await started(clock)
    symbols = ["ES1!", "GC1!", "MGC1!", "AAPL"]
    await b.subscribe_quotes(symbols)
    await b.subscribe_depth(symbols)
    await b.subscribe_trades(symbols)
    drain(b)
    for _ in range(150):
        clock.tick(0.25)
        await b.step()
        quote: dict[str, Quote] = {}
        for ev in drain(b):
            if isinstance(ev, Quote):
                quote[ev.symbol] = ev
                assert ev.bid is not None and ev.ask is not None and ev.last is not None
                assert ev.bid <= ev.last <= ev.ask
            elif isinstance(ev, Depth):
                q = quote[ev.symbol]  # depth follows its quote
                assert (ev.bids[0].price, ev.bids[0].size, ev.asks[0].price, ev.asks[0].size) == (
                    q.bid,
                    q.bid_size,
                    q.ask,
                    q.ask_size,
                )
                assert len(ev.bids) == len(ev.asks) == 10
                assert [lvl.price for lvl in ev.bids] == sorted((lvl.price for lvl in ev.bids), reverse=True)
                assert [lvl.price for lvl in ev.asks] == sorted(lvl.price for lvl in ev.asks)
            elif isinstance(ev, Trade):
                assert ev.symbol not in quote  # a step's trades come before its quote
                assert ev.aggressor in (Side.BUY, Side.SELL) and ev.size > 0 and ev.trade_id
    await b.unsubscribe_depth(symbols)
    await b.unsubscribe_trades(symbols)
    await b.step()
    assert not [e for e in drain(b) if isinstance(e, Depth | Trade)]
    await b.close()


async def test_a_subscription_sends_the_current_picture_at_once() -> None:
    b = await started()
    await b.step()
    await b.step()
    drain(b)
    await b.subscribe_depth(["NQ1!"])
    [depth] = [e for e in drain(b) if isinstance(e, Depth)]
    assert depth.symbol == b.quote("NQ1!").symbol  # type: ignore[union-attr]
    await b.subscribe_trades(["NQ1!"])
    recent = [e for e in drain(b) if isinstance(e, Trade)]
    assert recent and [t.trade_id for t in recent] == sorted((t.trade_id for t in recent), key=lambda i: int(i[1:]))
    assert recent[-1].price == b.quote("NQ1!").last  # type: ignore[union-attr]
    with pytest.raises(BrokerError, match="unknown symbol"):
        await b.subscribe_depth(["NOPE1!"])
    await b.close()


async def test_a_pushed_quote_is_a_trade_on_the_tape_and_in_the_bars() -> None:
    clock = FakeClock()
    b = await started(clock)
    await b.subscribe_trades(["MES1!"])
    drain(b)
    await push(b, "MES1!", "6800.00", "6800.25", last="6800.25")
    [t] = [e for e in drain(b) if isinstance(e, Trade)]
    assert (t.price, t.aggressor) == (D("6800.25"), Side.BUY)
    with pytest.raises(ValueError, match="outside bid"):
        await push(b, "MES1!", "6800.00", "6800.25", last="6801.00")
    clock.tick(61)
    await push(b, "MES1!", "6801.00", "6801.25", last="6801.00")
    bars = await b.bars("MES1!", Timeframe.M1, clock.at - timedelta(minutes=2))
    assert [(x.open, x.close) for x in bars[-2:]] == [(D("6800.25"), D("6800.25")), (D("6801.00"), D("6801.00"))]
    await b.close()


async def test_bars_have_history_joined_to_the_live_session_and_survive_a_restart(tmp_path: Path) -> None:
    store = tmp_path / "paper.sqlite3"
    clock = FakeClock()
    b = await started(clock, store_path=store)
    for _ in range(180):
        clock.tick(0.5)
        await b.step()
    start = clock.at - timedelta(days=2)
    minutes = await b.bars("ES1!", Timeframe.M1, start)
    live = [x for x in minutes if x.start >= clock.at.replace(hour=15, minute=0, second=0)]
    assert [x.start.minute for x in live] == [0, 1] and live[0].volume > 0
    before = minutes[-len(live) - 1]
    # The history ends at the price the session opened at; the first live bar opens one step later.
    assert before.start.minute == 59 and abs(before.close - live[0].open) <= D("2.00")
    hourly = await b.bars("ES1!", "1h", start)  # type: ignore[arg-type]
    assert hourly[-1].close == minutes[-1].close
    for tf in Timeframe:
        assert await b.bars("AAPL", tf, clock.at - timedelta(minutes=1 if tf is Timeframe.S1 else 2000))
    with pytest.raises(BrokerError, match="unknown timeframe"):
        await b.bars("ES1!", "7m", start)  # type: ignore[arg-type]
    with pytest.raises(BrokerError, match="starts at"):
        await b.bars("ES1!", Timeframe.M1, clock.at - timedelta(days=40), clock.at - timedelta(days=30))
    await b.close()

    clock.tick(3600)
    again = await started(clock, store_path=store)
    after = await again.bars("ES1!", Timeframe.M1, start)
    assert after[: len(minutes) - 1] == minutes[:-1]  # the same history and session, from the file
    gap = [x for x in after if x.start > minutes[-1].start]
    assert len(gap) >= 59 and all(
        later.start - earlier.start == timedelta(minutes=1) for earlier, later in itertools.pairwise(gap)
    )
    await again.close()


async def test_a_replay_still_drives_the_market_and_prints_its_trades() -> None:
    b = await started(replay=EXAMPLES / "es_aapl_ticks.csv")
    await b.subscribe_trades(["ES1!"])
    await b.subscribe_depth(["ES1!"])
    drain(b)
    for _ in range(20):
        await b.step()
    evs = drain(b)
    trades = [e for e in evs if isinstance(e, Trade)]
    depth = [e for e in evs if isinstance(e, Depth)]
    assert trades and depth and all(d.bids[0].price < d.asks[0].price for d in depth)
    # Bars of a replay carry the file's own times (it starts at 14:30:00.250).
    first = trades[0].ts
    assert first == datetime(2025, 11, 3, 14, 30, 0, 250000, tzinfo=UTC)
    bars = await b.bars("ES1!", Timeframe.S1, first - timedelta(seconds=1))
    assert bars and bars[0].start == datetime(2025, 11, 3, 14, 30, tzinfo=UTC)
    assert sum(x.volume for x in bars) == sum(t.size for t in trades)
    await b.close()


async def test_an_option_chain_for_an_equity() -> None:
    b = await started()
    chain = await b.option_chain("AAPL")
    assert chain.underlying == "AAPL" and chain.expiry == date(2025, 11, 7) == chain.expiries[0]
    assert len(chain.rows) == 41 and chain.rows[20].strike == 270 and chain.underlying_price is not None
    monthly = await b.option_chain("AAPL", date(2025, 12, 19))
    call = monthly.rows[20].call
    assert call is not None and call.iv is not None and call.greeks is not None and call.greeks.source == "broker"
    assert call.instrument.is_on_tick(call.bid) and call.instrument.is_on_tick(call.ask)  # type: ignore[arg-type]
    with pytest.raises(BrokerError, match="no options expiring 2025-12-18; listed expiries: 2025-11-07"):
        await b.option_chain("AAPL", date(2025, 12, 18))
    with pytest.raises(BrokerError, match="have expired"):
        await b.option_chain("AAPL", date(2025, 10, 17))
    with pytest.raises(BrokerError, match="simulated for equities"):
        await b.option_chain("ES1!")
    with pytest.raises(BrokerError, match="unknown symbol"):
        await b.option_chain("NOPE")
    await b.close()


async def test_option_quotes_move_with_the_underlying_and_fill_orders() -> None:
    b = await started()
    chain = await b.option_chain("AAPL", date(2025, 12, 19))
    call = chain.rows[20].call
    assert call is not None
    await push(b, "AAPL", "270.00", "270.02", last="270.00")
    await b.subscribe_quotes([call.symbol])
    [first] = [e for e in drain(b) if isinstance(e, Quote) and e.symbol == call.symbol]
    await push(b, "AAPL", "276.00", "276.02", last="276.02")
    moved = [e for e in drain(b) if isinstance(e, Quote) and e.symbol == call.symbol]
    assert moved and moved[-1].bid > first.bid  # type: ignore[operator]
    o = await b.place(OrderRequest(CASH, call.symbol, Side.BUY, 2))
    assert o.status is OrderStatus.FILLED and o.avg_fill_price == moved[-1].ask
    [pos] = await b.positions(CASH)
    assert pos.symbol == call.symbol and pos.quantity == 2
    await b.close()


async def test_an_option_on_an_underlying_the_master_lacks_is_learned() -> None:
    b = await started()
    option = "XYZQ  251219C00050000"
    await b.subscribe_quotes([option])
    added = [e for e in drain(b) if isinstance(e, InstrumentAdded)]
    assert [e.instrument.symbol for e in added] == ["XYZQ"] and added[0].broker == "paper"
    await push(b, "XYZQ", "51.00", "51.02", last="51.00")  # the engine now resolves XYZQ
    assert [e for e in drain(b) if isinstance(e, Quote) and e.symbol == option]
    o = await b.place(OrderRequest(CASH, option, Side.BUY, 1))
    assert o.status is OrderStatus.FILLED
    await b.close()


async def test_search_covers_the_master_and_the_markets_own_instruments() -> None:
    b = await started()
    assert [i.symbol for i in await b.search_instruments("apple")] == ["AAPL"]
    assert (await b.search_instruments("MES", limit=1))[0].root == "MES"
    chain = await b.option_chain("AAPL", date(2025, 12, 19))
    call = chain.rows[20].call
    assert call is not None
    await b.subscribe_quotes([call.symbol])
    found = await b.search_instruments("AAPL 251219C")
    assert call.symbol in [i.symbol for i in found]
    with pytest.raises(BrokerError, match="empty"):
        await b.search_instruments("  ")
    assert await b.lookup_instrument("NOPE") is None
    assert (await b.lookup_instrument("MES1!")).symbol == "MESZ5"  # type: ignore[union-attr]
    await b.close()

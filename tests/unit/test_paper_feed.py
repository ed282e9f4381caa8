"""The paper market: the seeded random walk and the CSV replay."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tterm.brokers.paper.book import DEPTH
from tterm.brokers.paper.feed import DEFAULT_SYMBOLS, START_PRICES, SimulatedFeed, WalkState, start_price
from tterm.brokers.paper.replay import ReplayError, ReplayFeed
from tterm.core.instruments import InstrumentMaster
from tterm.core.models import AssetClass, Quote

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "replay"
MASTER = InstrumentMaster(today=lambda: date(2025, 11, 3))
T0 = datetime(2025, 11, 3, 15, 0, tzinfo=UTC)


def fixed_now() -> datetime:
    return T0


def walk(seed: int | None, symbols: list[str], steps: int) -> list[tuple]:
    feed = SimulatedFeed(seed, now=fixed_now)
    for s in symbols:
        feed.add(MASTER.resolve(s))
    out = []
    for _ in range(steps):
        for s in feed.symbols:
            q = feed.step(s)
            out.append((q.symbol, q.bid, q.ask, q.last, q.bid_size, q.ask_size, q.volume))
    return out


def test_same_seed_same_quotes_different_seed_different_quotes() -> None:
    a = walk(42, ["ES1!", "AAPL", "CL1!"], 200)
    assert a == walk(42, ["ES1!", "AAPL", "CL1!"], 200)
    assert a != walk(43, ["ES1!", "AAPL", "CL1!"], 200)


def test_a_symbols_path_does_not_depend_on_the_others() -> None:
    alone = [r for r in walk(7, ["NQ1!"], 100) if r[0].startswith("NQ")]
    crowd = [r for r in walk(7, ["AAPL", "NQ1!", "GC1!"], 100) if r[0].startswith("NQ")]
    assert alone == crowd


def test_no_seed_still_walks() -> None:
    rows = walk(None, ["ES1!"], 5)
    assert len(rows) == 5 and all(r[1] < r[2] for r in rows)


@pytest.mark.parametrize("symbol", DEFAULT_SYMBOLS)
def test_walk_is_plausible_for_every_default_symbol(symbol: str) -> None:
    inst = MASTER.resolve(symbol)
    feed = SimulatedFeed(1, now=fixed_now)
    first = feed.add(inst)
    assert first.symbol == inst.symbol  # continuous symbols are quoted as the contract
    base = start_price(inst)
    prev_volume = 0
    for _ in range(500):
        q = feed.step(inst.symbol)
        assert q.bid is not None and q.ask is not None and q.last is not None
        assert inst.is_on_tick(q.bid) and inst.is_on_tick(q.ask) and inst.is_on_tick(q.last)
        spread_ticks = (q.ask - q.bid) / inst.tick_size
        assert spread_ticks >= 1
        if inst.asset_class is AssetClass.FUTURE:
            assert spread_ticks <= 2
        else:
            assert q.ask - q.bid <= D("0.04")
        assert q.bid_size > 0 and q.ask_size > 0
        assert q.volume >= prev_volume
        prev_volume = q.volume
        assert q.prev_close == base
        assert abs(q.bid - base) / base < D("0.05")  # stays plausible over 500 updates
    assert q.change is not None and q.change_pct is not None
    assert prev_volume > 0


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from(["GC1!", "MGC1!", "ES1!", "CL1!", "AAPL", "MSFT", "NVDA"]))
def test_the_last_always_lies_within_the_quote_it_showed(seed: int, symbol: str) -> None:
    """The walk once printed a GC last outside its spread (a move without a trade left the old
    last behind); now every quote's last is at or between its bid and ask, micro followers too."""
    feed = SimulatedFeed(seed, now=fixed_now)
    inst = MASTER.resolve(symbol)
    leader = MASTER.resolve(symbol[1:]) if symbol.startswith("M") and symbol != "MSFT" else None
    feed.add(inst, leader=leader)
    for _ in range(400):
        for s in feed.symbols:
            q = feed.step(s)
            assert q.bid is not None and q.ask is not None and q.last is not None
            assert q.bid <= q.last <= q.ask, (s, q)


def test_depth_trades_and_quote_are_one_picture() -> None:
    inst = MASTER.resolve("ES1!")
    feed = SimulatedFeed(11, now=fixed_now)
    feed.add(inst)
    book = feed.book(inst.symbol)
    assert book is not None
    tick = inst.tick_size
    prev = feed.current(inst.symbol)
    assert prev is not None
    for _ in range(300):
        before_bids, before_asks = list(book.bids), list(book.asks)
        old_bid, old_ask = prev.bid, prev.ask
        q = feed.step(inst.symbol)
        d = feed.depth(inst.symbol)
        assert d is not None and len(d.bids) == len(d.asks) == DEPTH
        # Best first, consecutive ticks, the touch is the quote.
        assert [lvl.price for lvl in d.bids] == [q.bid - i * tick for i in range(DEPTH)]  # type: ignore[operator]
        assert [lvl.price for lvl in d.asks] == [q.ask + i * tick for i in range(DEPTH)]  # type: ignore[operator]
        assert (d.bids[0].size, d.asks[0].size) == (q.bid_size, q.ask_size)
        assert all(lvl.size > 0 for lvl in d.bids + d.asks)
        prints = list(book.prints)
        assert q.volume - prev.volume == sum(size for _, size, _ in prints)
        if prints:
            assert book.price(prints[-1][0]) == q.last
        for idx, size, sign in prints:
            price = book.price(idx)
            # Every trade is at a price the book showed: buyers at the offers, sellers at the bids.
            if sign > 0:
                level = int((price - old_ask) / tick)  # type: ignore[operator]
                assert level >= 0 and (level >= DEPTH or size <= before_asks[level])
            else:
                level = int((old_bid - price) / tick)  # type: ignore[operator]
                assert level >= 0 and (level >= DEPTH or size <= before_bids[level])
        prev = q


def test_a_trade_at_the_touch_consumes_its_size() -> None:
    inst = MASTER.resolve("ES1!")
    feed = SimulatedFeed(2, now=fixed_now)
    feed.add(inst)
    book = feed.book(inst.symbol)
    assert book is not None
    book.asks[0] = 30
    assert book.hit(True, 12)
    assert book.asks[0] == 18 and book.last == book.bid + book.spread and book.prints[-1] == (book.last, 12, 1)
    assert not book.hit(True, 18)  # the whole level: that is a sweep, which moves the price
    ask = book.bid + book.spread
    book.reprice(ask, 1)  # buyers take the offer: the new bid is the price they paid
    assert book.bid == ask == book.last and book.prints[-1][2] == 1


def test_depth_of_an_option_walks_its_tick_table() -> None:
    inst = MASTER.resolve("AAPL  261218C00270000")
    feed = SimulatedFeed(2, now=fixed_now)
    feed.add(inst)
    book = feed.book(inst.symbol)
    assert book is not None
    book.reprice(book.grid.index(D("3.05")), 1, sweep=False)
    d = feed.depth(inst.symbol)
    assert d is not None
    assert [lvl.price for lvl in d.bids[:4]] == [D("3.05"), D("3.00"), D("2.99"), D("2.98")]
    assert [lvl.price for lvl in d.asks[:2]] == [D("3.10"), D("3.15")]


def test_a_pushed_quote_moves_the_book_and_prints_its_last() -> None:
    inst = MASTER.resolve("ES1!")
    feed = SimulatedFeed(4, now=fixed_now)
    feed.add(inst)
    feed.anchor(Quote(inst.symbol, bid=D("6900.00"), ask=D("6900.25"), last=D("6900.25"), bid_size=7, ask_size=9))
    book = feed.book(inst.symbol)
    assert book is not None
    d = feed.depth(inst.symbol)
    assert d is not None and (d.bids[0].price, d.bids[0].size, d.asks[0].size) == (D("6900.00"), 7, 9)
    assert [(book.price(i), sign) for i, _, sign in book.prints] == [(D("6900.25"), 1)]
    feed.anchor(Quote(inst.symbol, bid=D("6901.00"), ask=D("6901.25")))  # no last: the touch trades
    q = feed.current(inst.symbol)
    assert q is not None and q.last == D("6901.00")


def test_start_prices_are_where_the_docs_say() -> None:
    assert start_price(MASTER.resolve("MES1!")) == START_PRICES["MES"] == D("6800")
    assert start_price(MASTER.resolve("NQ1!")) == D("25000")
    assert start_price(MASTER.resolve("CL1!")) == D("60.00")
    assert start_price(MASTER.resolve("AAPL")) == D("270.00")
    unknown = MASTER.resolve("AAPL")
    assert unknown.tick_size == D("0.01")
    call = MASTER.resolve("AAPL  261218C00250000")
    assert start_price(call) > D(20)  # in the money by 20 plus time value


def test_micro_follows_its_mini() -> None:
    feed = SimulatedFeed(5, now=fixed_now)
    es, mes = MASTER.resolve("ES1!"), MASTER.resolve("MES1!")
    feed.add(mes, leader=es)
    assert feed.symbols == [es.symbol, mes.symbol]
    for _ in range(100):
        a = feed.step(es.symbol)
        b = feed.step(mes.symbol)
        assert (a.bid, a.ask) == (b.bid, b.ask)


def test_walk_resumes_from_a_saved_state() -> None:
    inst = MASTER.resolve("ES1!")
    feed = SimulatedFeed(3, now=fixed_now)
    q = feed.add(inst, WalkState(inst.symbol, D("7000.00"), D("7000.25"), D("7000.25"), D("6990.00"), 1234))
    assert (q.bid, q.ask, q.last, q.prev_close, q.volume) == (
        D("7000.00"),
        D("7000.25"),
        D("7000.25"),
        D("6990.00"),
        1234,
    )
    assert feed.state(inst.symbol) == WalkState(inst.symbol, q.bid, q.ask, q.last, q.prev_close, q.volume)


def test_anchor_moves_the_walk_to_a_pushed_quote() -> None:
    inst = MASTER.resolve("AAPL")
    feed = SimulatedFeed(3, now=fixed_now)
    feed.add(inst)
    feed.anchor(Quote("AAPL", bid=D("100.00"), ask=D("100.02"), last=D("100.01")))
    assert feed.current("AAPL") is not None
    nxt = feed.step("AAPL")
    assert nxt.bid is not None and abs(nxt.bid - D(100)) < D(1)


# --------------------------------------------------------------------------- replay


def test_example_bars_replay_as_four_quotes_per_bar() -> None:
    path = EXAMPLES / "mes_1m_bars.csv"
    feed = ReplayFeed(path, MASTER)
    bars = [line for line in path.read_text().splitlines() if line and not line.startswith(("#", "ts"))]
    assert len(feed) == 4 * len(bars)
    mes = MASTER.resolve("MES1!")
    assert feed.symbols == [mes.symbol]
    first = bars[0].split(",")
    o, h, low, c = (D(x) for x in first[2:6])
    quotes = [feed.next() for _ in range(4)]
    assert all(q is not None for q in quotes)
    lasts = [q.last for q in quotes if q is not None]
    assert lasts == ([o, low, h, c] if c >= o else [o, h, low, c])
    by_last = {q.last: q for q in quotes if q is not None}
    assert by_last[h].bid == h  # the high is reached by the bid...
    assert by_last[low].ask == low  # ...and the low by the ask
    assert quotes[0] is not None and quotes[0].prev_close == o
    assert quotes[-1] is not None and quotes[-1].volume == int(first[6])
    n = 4
    while feed.next() is not None:
        n += 1
    assert n == len(feed) and feed.done and feed.next() is None


def test_example_ticks_replay_row_by_row() -> None:
    feed = ReplayFeed(EXAMPLES / "es_aapl_ticks.csv", MASTER)
    es = MASTER.resolve("ES1!")
    assert set(feed.symbols) == {es.symbol, "AAPL"}
    q = feed.next()
    assert q is not None and q.symbol == es.symbol
    assert q.ts == datetime(2025, 11, 3, 14, 30, 0, 250000, tzinfo=UTC)
    assert q.bid is not None and q.ask is not None and q.bid < q.ask
    assert q.bid_size > 0 and q.ask_size > 0


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("ts,symbol,price\n2025-11-03T14:30:00Z,ES1!,1\n", "header must name"),
        ("ts,symbol,bid,ask\n2025-11-03T14:30:00Z,ES1!,6800.10,6800.25\n", "off the tick grid"),
        ("ts,symbol,bid,ask\n2025-11-03T14:30:00Z,ES1!,6800.50,6800.25\n", "above ask"),
        ("ts,symbol,bid,ask\n2025-11-03T14:30:00,ES1!,6800.00,6800.25\n", "no UTC offset"),
        ("ts,symbol,bid,ask\nyesterday,ES1!,6800.00,6800.25\n", "not an ISO-8601"),
        ("ts,symbol,bid,ask\n2025-11-03T14:30:00Z,NOPE1!,6800.00,6800.25\n", "unknown symbol"),
        ("ts,symbol,bid,ask\n2025-11-03T14:30:00Z,ES1!,abc,6800.25\n", "not a number"),
        ("ts,symbol,bid,ask\n2025-11-03T14:30:00Z,ES1!,6800.00\n", "expected 4 columns"),
        ("ts,symbol,open,high,low,close\n2025-11-03T14:30:00Z,ES1!,6800,6799,6798,6800\n", "inconsistent"),
        ("ts,symbol,open,high,low,close,volume\n2025-11-03T14:30:00Z,ES1!,6800,6801,6799,6800,-4\n", "negative"),
        ("ts,symbol,bid,ask,last\n2025-11-03T14:30:00Z,ES1!,6800.00,6800.25,6800.50\n", "outside bid"),
        ("# only a comment\n", "empty replay file"),
        ("ts,symbol,bid,ask\n", "no data rows"),
    ],
)
def test_bad_replay_files_name_the_line_and_the_problem(tmp_path: Path, body: str, needle: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(ReplayError, match=needle) as info:
        ReplayFeed(path, MASTER)
    assert str(path) in str(info.value)


def test_missing_replay_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="cannot read"):
        ReplayFeed(tmp_path / "nope.csv", MASTER)


def test_epoch_seconds_and_comments_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("# comment\n\nTS,Symbol,Bid,Ask\n1762180200,AAPL,270.00,270.02\n")
    q = ReplayFeed(path, MASTER).next()
    assert q is not None and q.ts == datetime(2025, 11, 3, 14, 30, tzinfo=UTC) and q.bid == D("270.00")

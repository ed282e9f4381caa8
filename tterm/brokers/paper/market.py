"""The paper broker's market data: which symbols it quotes and what it sends about them.

:class:`PaperMarket` owns the walk (or the replay), the option books, the bars and the three
kinds of subscription (quotes, depth, trades). Every market update goes through one path,
:meth:`PaperMarket.publish`: the book's new trades go to the bars and, for subscribers, out as
:class:`~tterm.core.models.Trade` events; then the quote (to its subscribers) and the full depth
picture; then the broker matches its orders on the quote; then the options of that underlying
are re-quoted and published the same way. So what a subscriber sees and what orders fill
against are one market.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

from tterm.brokers.paper.bars import BarBook, RawBar, check_range
from tterm.brokers.paper.book import DEPTH, Book
from tterm.brokers.paper.feed import SimulatedFeed, WalkState
from tterm.brokers.paper.options import OptionMarket, occ_symbol, years_to_expiry
from tterm.brokers.paper.replay import ReplayFeed
from tterm.brokers.paper.store import BarRow, PaperStore
from tterm.core.broker import BrokerError
from tterm.core.instruments import InstrumentMaster, UnknownSymbol, option_tick_table
from tterm.core.models import (
    AssetClass,
    Bar,
    BrokerEvent,
    Instrument,
    ModelError,
    OptionChain,
    OptionRight,
    Quote,
    Side,
    Trade,
)

#: Trades sent to a new time-and-sales subscriber (from the last ``RECENT_STEPS`` updates).
RECENT_TRADES = 50
RECENT_STEPS = 50


class PaperMarket:
    """Market data of one paper broker (see the module docstring)."""

    def __init__(
        self,
        name: str,
        *,
        instruments: InstrumentMaster,
        seed: int | None,
        quote_hz: float,
        now: Callable[[], datetime],
        today: Callable[[], date],
        replay: ReplayFeed | None,
        scripted: bool,
        store: PaperStore | None,
        emit: Callable[[BrokerEvent], None],
        on_quote: Callable[[Quote], None],
        current: Callable[[str], Quote | None],
        learned: Callable[[Instrument], None],
    ) -> None:
        self.name = name
        self._instruments = instruments
        self._now = now
        self._today = today
        self._quote_hz = quote_hz
        self._scripted = scripted
        self._store = store
        self._emit = emit
        self._on_quote = on_quote
        self._current = current
        self._learned = learned
        self.feed = SimulatedFeed(seed, now=now)
        self.replay = replay
        self.options = OptionMarket(self.feed.seed, instruments)
        self.bars = BarBook(
            self.feed.seed,
            load=self._load_bars if store is not None else None,
            save=self._save_bars if store is not None else None,
        )
        self.quotes: set[str] = set()
        self.depth: set[str] = set()
        self.trades: set[str] = set()
        self.saved_marks: dict[str, WalkState] = {}
        #: Recent steps' trades per symbol: (time, first trade number, prints).
        self._recent: dict[str, deque[tuple[datetime, int, tuple[tuple[int, int, int], ...]]]] = {}
        self._trade_seq = 0
        #: Symbols whose market exists and has been published (``ensure`` has nothing to do).
        self._ready: set[str] = set()

    # ------------------------------------------------------------------ the universe

    @property
    def subscribed(self) -> set[str]:
        return self.quotes | self.depth | self.trades

    def resolve(self, symbol: str) -> Instrument:
        try:
            return self._instruments.resolve(symbol)
        except (UnknownSymbol, ModelError) as exc:
            raise BrokerError(str(exc), sent=False) from None

    def book(self, symbol: str) -> Book | None:
        return self.feed.book(symbol) or self.options.book(symbol)

    def ensure(self, inst: Instrument) -> None:
        """Make sure ``inst`` has a market (a walk, or an option book on its walked underlying);
        a free-running market publishes its first quote at once."""
        if inst.symbol in self._ready:
            return
        if inst.asset_class is AssetClass.OPTION:
            self._ensure_option(inst)
            if self.options.has(inst.symbol) and self._current(inst.symbol) is not None:
                self._ready.add(inst.symbol)
            return
        if self.replay is not None:
            return  # the replay's own symbols get a book from their first row
        self._ensure_walk(inst)
        if self._scripted:
            self._ready.add(inst.symbol)
        if not self._scripted and self._current(inst.symbol) is None:
            book = self.feed.book(inst.symbol)
            q = self.feed.current(inst.symbol)
            if q is not None and book is not None:
                book.prints.clear()
                self.publish(q, book)
        if self._current(inst.symbol) is not None:
            self._ready.add(inst.symbol)

    def _ensure_walk(self, inst: Instrument) -> None:
        if self.feed.has(inst.symbol):
            return
        leader = self._leader(inst)
        if leader is not None:
            self._ensure_walk(leader)
        self.feed.add(inst, self.saved_marks.get(inst.symbol), leader=leader)
        self._open_bars(inst)

    def _open_bars(self, inst: Instrument, *, synthesize: bool = True, now: datetime | None = None) -> None:
        book = self.book(inst.symbol)
        if book is None or self.bars.has(inst.symbol):
            return
        walk_sigma = self.feed.sigma(inst.symbol) if self.feed.has(inst.symbol) else 1.0
        steps = self._quote_hz * 60
        moving = _moving_share(walk_sigma)
        per_step = moving * _mean_abs_move(walk_sigma) * book.mean_level + (1 - moving) * 0.5 * book.mean_trade
        self.bars.open(
            inst.symbol,
            book.grid,
            now=now or self._now(),
            opening=book.last if book.last is not None else book.bid,
            sigma_minute=walk_sigma * math.sqrt(steps),
            volume_minute=per_step * steps,
            daily="cme" if inst.asset_class is AssetClass.FUTURE else "ny",
            synthesize=synthesize and self.replay is None and inst.asset_class is not AssetClass.OPTION,
        )

    def _leader(self, inst: Instrument) -> Instrument | None:
        """The mini contract a micro future tracks (ESZ6 for MESZ6), if there is one."""
        if inst.asset_class is not AssetClass.FUTURE or not inst.root:
            return None
        try:
            spec = self._instruments.spec(inst.root)
            parsed = self._instruments.parse_contract(inst.symbol, on=inst.expiry)
            if not spec.mini or parsed is None:
                return None
            return self._instruments.contract(spec.mini, parsed[1], parsed[2])
        except ModelError:
            return None

    def underlying_of(self, inst: Instrument) -> Instrument:
        """The instrument an option is priced from (taught to the engine if the master lacks it)."""
        try:
            return self._instruments.resolve(inst.underlying)
        except (UnknownSymbol, ModelError):
            under = Instrument(
                symbol=inst.underlying,
                asset_class=AssetClass.EQUITY,
                tick_size=Decimal("0.01"),
                tick_value=Decimal("0.01"),
                description=f"{inst.underlying} (underlying of paper options)",
            )
            self._instruments.add(under)
            self._learned(under)
            return under

    def _ensure_option(self, inst: Instrument) -> None:
        if self.options.has(inst.symbol):
            return
        assert inst.expiry is not None
        now = self._now()
        if years_to_expiry(inst.expiry, now) <= 0:
            return  # an expired series has no market
        under = self.underlying_of(inst)
        if self.replay is None:
            self._ensure_walk(under)
        spot = self._spot(under)
        if spot is None:
            return  # a replay that has not quoted the underlying yet: the option waits for it
        prev = self.feed.prev_close(under.symbol) or spot
        q = self.options.add(inst, spot, prev, now)
        saved = self.saved_marks.get(inst.symbol)
        if saved is not None:
            self.options.restore(inst.symbol, saved.last, saved.volume)
            q = self.options.quote(inst.symbol, now) or q
        self._open_bars(inst, synthesize=False)
        if self._current(under.symbol) is not None or not self._scripted:
            book = self.options.book(inst.symbol)
            assert book is not None
            book.prints.clear()
            self.publish(q, book)

    def _spot(self, under: Instrument) -> Decimal | None:
        """The underlying's mid: its last published quote, else the walk's current quote."""
        q = self._current(under.symbol) or self.feed.current(under.symbol)
        if q is None:
            return None
        return q.mid

    # ------------------------------------------------------------------ moving the market

    def step(self) -> list[Quote]:
        """Advance once: every walked symbol one update, or the replay one row."""
        if self.replay is not None:
            q = self.replay_step()
            return [q] if q is not None else []
        quotes = []
        for sym in self.feed.symbols:
            q = self.feed.step(sym)
            book = self.feed.book(sym)
            assert book is not None
            quotes.append(q)
            self.publish(q, book)
        return quotes

    def replay_step(self) -> Quote | None:
        """The replay's next row, published (None once the file has been played)."""
        assert self.replay is not None
        q = self.replay.next()
        if q is None:
            return None
        if not self.feed.has(q.symbol):
            inst = self.replay.instruments[q.symbol]
            assert q.bid is not None and q.ask is not None
            self.feed.add(inst, WalkState(q.symbol, q.bid, q.ask, q.last, q.prev_close, 0))
            self._open_bars(inst, synthesize=False, now=q.ts)
        self.feed.anchor(q)
        book = self.feed.book(q.symbol)
        assert book is not None
        self.publish(q, book, ts=q.ts)
        return q

    def push(self, inst: Instrument, quote: Quote) -> None:
        """A scripted market: set ``inst``'s quote (already validated by the broker)."""
        if inst.asset_class is AssetClass.OPTION:
            self._ensure_option(inst)
            book = self.options.book(inst.symbol)
        elif self.replay is None:
            self._ensure_walk(inst)
            book = self.feed.book(inst.symbol)
        else:
            book = self.feed.book(inst.symbol)
        if book is not None:
            if inst.asset_class is AssetClass.OPTION:
                book.anchor(quote)
            else:
                self.feed.anchor(quote)
        self.publish(quote, book)

    def publish(self, quote: Quote, book: Book | None, *, ts: datetime | None = None) -> None:
        """Send one update: trades, quote and depth to subscribers, then match, then options.

        Trades and depth are stamped ``ts`` (a replay's own time), else the broker's clock.
        """
        sym = quote.symbol
        ts = ts or self._now()
        if book is not None and book.prints:
            self._tape(sym, book, ts)
        if sym in self.quotes:
            self._emit(quote)
        if book is not None and sym in self.depth:
            self._emit(book.depth(ts))
        self._on_quote(quote)
        if self.options.underlies(sym):
            spot = quote.mid
            if spot is not None:
                now = self._now()
                for osym in self.options.reprice(sym, spot, now):
                    obook = self.options.book(osym)
                    oq = self.options.quote(osym, now)
                    assert obook is not None and oq is not None
                    self.publish(oq, obook)

    def _tape(self, sym: str, book: Book, ts: datetime) -> None:
        prints = tuple(book.prints)
        book.prints.clear()
        first = self._trade_seq + 1
        self._trade_seq += len(prints)
        self.bars.add_prints(sym, int(ts.timestamp()), prints)
        recent = self._recent.get(sym)
        if recent is None:
            recent = self._recent[sym] = deque(maxlen=RECENT_STEPS)
        recent.append((ts, first, prints))
        if sym in self.trades:
            for i, (idx, size, sign) in enumerate(prints):
                self._emit(_trade(sym, book, idx, size, sign, ts, first + i))

    # ------------------------------------------------------------------ subscriptions

    def subscribe_depth(self, inst: Instrument) -> None:
        self.depth.add(inst.symbol)
        self.ensure(inst)
        book = self.book(inst.symbol)
        if book is not None and self._current(inst.symbol) is not None:
            self._emit(book.depth(self._now()))

    def subscribe_trades(self, inst: Instrument) -> None:
        self.trades.add(inst.symbol)
        self.ensure(inst)
        book = self.book(inst.symbol)
        if book is None:
            return
        steps = list(self._recent.get(inst.symbol, ()))
        trades = [(ts, first + i, p) for ts, first, prints in steps for i, p in enumerate(prints)]
        for ts, seq, (idx, size, sign) in trades[-RECENT_TRADES:]:
            self._emit(_trade(inst.symbol, book, idx, size, sign, ts, seq))

    # ------------------------------------------------------------------ bars

    def history(self, inst: Instrument, timeframe: object, start: datetime, end: datetime | None) -> list[Bar]:
        now = self._now()
        tf, end = check_range(timeframe, start, end, now)
        self.ensure(inst)
        if not self.bars.has(inst.symbol):
            if inst.asset_class is AssetClass.OPTION:
                raise BrokerError(f"the paper market has no market in {inst.symbol} (an expired series?)", sent=False)
            raise BrokerError(f"the paper market has not quoted {inst.symbol} yet (the replay has no rows for it?)")
        return self.bars.bars(inst.symbol, tf, start, end, now)

    def _load_bars(self, symbol: str) -> list[RawBar]:
        assert self._store is not None
        grid = self.bars.grid(symbol)
        assert grid is not None
        return [
            (t, grid.index(o), grid.index(h), grid.index(low), grid.index(c), v)
            for t, o, h, low, c, v in self._store.load_bars(symbol)
        ]

    def _save_bars(self, symbol: str, bars: list[RawBar]) -> None:
        assert self._store is not None
        self._store.write_bars(self._bar_rows([(symbol, b) for b in bars]))

    def bar_rows(self, *, partial: bool = False) -> list[BarRow]:
        """Finished minutes since the last save, as store rows (``partial``: the running ones too)."""
        return self._bar_rows(self.bars.take_unsaved(partial=partial))

    def _bar_rows(self, bars: list[tuple[str, RawBar]]) -> list[BarRow]:
        out = []
        for sym, (t, o, h, low, c, v) in bars:
            grid = self.bars.grid(sym)
            assert grid is not None
            out.append((sym, t, grid.price(o), grid.price(h), grid.price(low), grid.price(c), v))
        return out

    # ------------------------------------------------------------------ chains and search

    def chain(self, underlying: Instrument, expiry: date | None) -> OptionChain:
        if underlying.asset_class is not AssetClass.EQUITY:
            raise BrokerError(
                f"paper option chains are simulated for equities and ETFs; {underlying.symbol} is a "
                f"{underlying.asset_class.value} (its options trade by symbol, e.g. "
                f"'{underlying.symbol} C{underlying.round_price(self._reference(underlying)).normalize():f}')",
                sent=False,
            )
        self._ensure_walk(underlying)
        spot = self._spot(underlying)
        assert spot is not None
        calendar = self._instruments.calendar
        is_bday = getattr(calendar, "is_business_day", None) or (lambda d: d.weekday() < 5)
        try:
            chain = self.options.chain(
                underlying,
                expiry,
                spot=spot,
                reference=self._reference(underlying),
                today=self._today(),
                now=self._now(),
                is_business_day=is_bday,
                broker=self.name,
                resolve=self._option_instrument,
            )
        except ValueError as exc:
            raise BrokerError(str(exc), sent=False) from None
        return chain

    def _option_instrument(self, root: str, expiry: date, right: OptionRight, strike: Decimal) -> Instrument:
        """A chain's option: the master's (OCC symbol), else built here and taught to the engine."""
        symbol = occ_symbol(root, expiry, right, strike)
        try:
            return self._instruments.resolve(symbol)
        except (UnknownSymbol, ModelError):
            table = option_tick_table(root)
            tick = table[0][1]
            inst = Instrument(
                symbol=symbol,
                asset_class=AssetClass.OPTION,
                tick_size=tick,
                tick_value=tick * 100,
                tick_table=table if len(table) > 1 else (),
                description=f"{root} {expiry:%d %b %y} {strike.normalize():f} {right.value.title()}",
                underlying=root,
                expiry=expiry,
                strike=strike,
                right=right,
            )
            self._instruments.add(inst)
            self._learned(inst)
            return inst

    def _reference(self, inst: Instrument) -> Decimal:
        prev = self.feed.prev_close(inst.symbol)
        if prev is not None:
            return prev
        q = self._current(inst.symbol)
        return q.mid if q is not None and q.mid is not None else Decimal(100)

    def search(self, text: str, limit: int) -> list[Instrument]:
        t = text.strip().upper()
        if not t:
            raise BrokerError("instrument search: the search text is empty", sent=False)
        if limit < 1:
            raise BrokerError(f"instrument search: limit must be at least 1, got {limit}", sent=False)
        out = self._instruments.search(t, limit)
        seen = {i.symbol for i in out}
        held = [self.book(s) for s in sorted(set(self.feed.symbols) | set(self.options.symbols))]
        compact = t.replace(" ", "")
        for book in held:
            if book is None or len(out) >= limit:
                continue
            inst = book.inst
            if inst.symbol in seen:
                continue
            if compact in inst.symbol.replace(" ", "") or t in inst.description.upper():
                out.append(inst)
                seen.add(inst.symbol)
        return out[:limit]


def _trade(sym: str, book: Book, idx: int, size: int, sign: int, ts: datetime, seq: int) -> Trade:
    aggressor = Side.BUY if sign > 0 else Side.SELL if sign < 0 else None
    return Trade(symbol=sym, price=book.price(idx), size=size, aggressor=aggressor, ts=ts, trade_id=f"T{seq}")


def _moving_share(sigma: float) -> float:
    """The share of walk steps whose rounded move is not zero."""
    return math.erfc(0.5 / (sigma * math.sqrt(2)))


def _mean_abs_move(sigma: float) -> float:
    """E[|round(N(0, sigma))| | not zero]: about how many levels a moving step sweeps."""
    total = weight = 0.0
    for k in range(1, 60):
        p = math.erf((k + 0.5) / (sigma * math.sqrt(2))) - math.erf((k - 0.5) / (sigma * math.sqrt(2)))
        total += k * p
        weight += p
        if p < 1e-9:
            break
    return total / weight if weight else 1.0


__all__ = ["DEPTH", "PaperMarket"]

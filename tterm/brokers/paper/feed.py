"""The paper broker's simulated market: a seeded random walk moving each symbol's order book.

The feed is a plain synchronous object (no asyncio): the broker decides when to step it, so tests
drive it one quote at a time and a seed gives the same quotes on every run. (The other market,
a replay of a CSV of bars or ticks, is :mod:`.replay`.)

The walk keeps each symbol's price as a whole number of ticks, so every price it quotes is on the
instrument's grid by construction. Each symbol has its own ``random.Random`` seeded from
``(seed, symbol)``: adding or removing a symbol never changes another symbol's path.

Starting prices (the previous close; the walk opens a little away from it) are set near late-2025
levels so the screens look plausible: see :data:`START_PRICES`. Unknown equities start at a price
derived from the symbol's CRC32 (20 to 320); options start at intrinsic value plus a time value of
about 1.5% of the underlying.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tterm.brokers.paper.book import Book
from tterm.core.models import AssetClass, Depth, Instrument, OptionRight, Quote, utcnow

#: The universe the paper broker quotes by default: the CME master list plus liquid equities/ETFs.
DEFAULT_SYMBOLS: tuple[str, ...] = (
    "ES1!",
    "MES1!",
    "NQ1!",
    "MNQ1!",
    "RTY1!",
    "M2K1!",
    "YM1!",
    "MYM1!",
    "CL1!",
    "MCL1!",
    "GC1!",
    "MGC1!",
    "SPY",
    "QQQ",
    "AAPL",
    "MSFT",
    "NVDA",
    "TSLA",
    "AMZN",
)

#: Previous-close prices the walk starts from, by futures root or equity symbol.
START_PRICES: dict[str, Decimal] = {
    "ES": Decimal("6800"),
    "MES": Decimal("6800"),
    "NQ": Decimal("25000"),
    "MNQ": Decimal("25000"),
    "RTY": Decimal("2450"),
    "M2K": Decimal("2450"),
    "YM": Decimal("47000"),
    "MYM": Decimal("47000"),
    "CL": Decimal("60.00"),
    "MCL": Decimal("60.00"),
    "GC": Decimal("4000"),
    "MGC": Decimal("4000"),
    "AAPL": Decimal("270.00"),
    "MSFT": Decimal("510.00"),
    "NVDA": Decimal("185.00"),
    "AMZN": Decimal("225.00"),
    "GOOGL": Decimal("250.00"),
    "META": Decimal("740.00"),
    "TSLA": Decimal("440.00"),
    "AMD": Decimal("230.00"),
    "NFLX": Decimal("1200.00"),
    "JPM": Decimal("305.00"),
    "SPY": Decimal("680.00"),
    "QQQ": Decimal("610.00"),
    "IWM": Decimal("245.00"),
    "DIA": Decimal("470.00"),
    "GLD": Decimal("370.00"),
    "USO": Decimal("72.00"),
    "TLT": Decimal("90.00"),
    "XLF": Decimal("53.00"),
    "XLE": Decimal("88.00"),
    "SMH": Decimal("330.00"),
}

# Per-step volatility as a fraction of price (about 4 bp per update); at 4 updates a second
# this gives a day range of a few percent, like a lively session.
_STEP_VOL = 0.00004
_OPTION_STEP_VOL = 0.0008


def start_price(inst: Instrument) -> Decimal:
    """The previous close the simulated walk starts from for ``inst``."""
    if inst.asset_class is AssetClass.FUTURE:
        base = START_PRICES.get(inst.root or inst.symbol)
        if base is None:
            base = Decimal(100)
    elif inst.asset_class is AssetClass.OPTION:
        under = _equity_start(inst.underlying)
        strike = inst.strike or under
        intrinsic = (under - strike) if inst.right is OptionRight.CALL else (strike - under)
        base = max(intrinsic, Decimal(0)) + max(Decimal("0.05"), under * Decimal("0.015"))
    else:
        base = _equity_start(inst.symbol)
    return inst.round_price(base)


def _equity_start(symbol: str) -> Decimal:
    known = START_PRICES.get(symbol)
    if known is not None:
        return known
    return Decimal(20 + zlib.crc32(symbol.encode()) % 30000) / 100


@dataclass(slots=True)
class _Walk:
    """One symbol's random walk: its book, where the day started, and how lively it is."""

    book: Book
    prev_close: Decimal
    sigma: float
    leader: str | None = None


@dataclass(frozen=True, slots=True)
class WalkState:
    """What persists of a walk across a restart: where the market was."""

    symbol: str
    bid: Decimal
    ask: Decimal
    last: Decimal | None
    prev_close: Decimal | None
    volume: int


#: Chance that a step with no price move still trades at the touch.
_PRINT_P = 0.5


class SimulatedFeed:
    """A deterministic random walk per symbol, moving a ten-level book (see :mod:`.book`).

    Each step draws a price move; a move up is buyers sweeping the offers (a trade at every level
    taken, the last one becoming the new bid), a move down sellers sweeping the bids; a step
    without a move may trade part of the touch. Sizes move on every step. The quote is the
    book's touch, so quotes, depth and trades agree and the last always lies within the quote.
    """

    def __init__(self, seed: int | None = None, *, now: Callable[[], datetime] = utcnow) -> None:
        self._seed = seed if seed is not None else random.SystemRandom().getrandbits(64)
        self._now = now
        self._walks: dict[str, _Walk] = {}

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def symbols(self) -> list[str]:
        return list(self._walks)

    def has(self, symbol: str) -> bool:
        return symbol in self._walks

    def book(self, symbol: str) -> Book | None:
        walk = self._walks.get(symbol)
        return walk.book if walk is not None else None

    def sigma(self, symbol: str) -> float:
        """One step's volatility of ``symbol``'s walk, in ticks."""
        return self._walks[symbol].sigma

    def prev_close(self, symbol: str) -> Decimal | None:
        walk = self._walks.get(symbol)
        return walk.prev_close if walk is not None else None

    def add(self, inst: Instrument, state: WalkState | None = None, *, leader: Instrument | None = None) -> Quote:
        """Start walking ``inst`` (from ``state`` if the market was saved); returns its first quote.

        With ``leader`` (a micro's mini contract, same tick size) the walk follows the leader's
        prices exactly, with its own sizes and trades: MES trades where ES trades. The leader is
        walked too (added first if needed, so it always steps before its follower).
        """
        walk = self._walks.get(inst.symbol)
        if walk is not None:
            return self._quote(walk)
        if leader is not None and leader.tick_size != inst.tick_size:
            leader = None
        lead = None
        if leader is not None:
            lead = self._walks.get(leader.symbol)
            if lead is None:
                self.add(leader)
                lead = self._walks[leader.symbol]
        rng = random.Random(f"{self._seed}:{inst.symbol}")
        tick = inst.tick_size
        if lead is not None:
            prev_close = lead.prev_close
            bid, spread, last = lead.book.bid, lead.book.spread, lead.book.last
            volume = state.volume if state is not None else 0
        elif state is not None:
            prev_close = state.prev_close or state.bid
            bid = int(inst.round_price(state.bid) / tick)
            spread = max(1, int((inst.round_price(state.ask) - inst.round_price(state.bid)) / tick))
            last = int(inst.round_price(state.last) / tick) if state.last is not None else None
            volume = state.volume
        else:
            prev_close = start_price(inst)
            # The session opens within about half a percent of the previous close.
            opening = float(prev_close) * (1 + rng.gauss(0, 0.004))
            bid = max(1, round(opening / float(tick)))
            spread = 1
            last = bid
            volume = 0
        vol = _OPTION_STEP_VOL if inst.asset_class is AssetClass.OPTION else _STEP_VOL
        sigma = max(0.6, float(prev_close) * vol / float(tick))
        book = Book(inst, rng, bid, spread, last, volume)
        book.settle()  # a saved last outside its saved quote is traded into it
        book.prints.clear()
        walk = _Walk(book=book, prev_close=prev_close, sigma=sigma, leader=lead.book.inst.symbol if lead else None)
        self._walks[inst.symbol] = walk
        return self._quote(walk)

    def current(self, symbol: str) -> Quote | None:
        walk = self._walks.get(symbol)
        return self._quote(walk) if walk is not None else None

    def step(self, symbol: str) -> Quote:
        """Advance ``symbol``'s walk by one update and return the new quote.

        The step's trades are left in ``book(symbol).prints`` until the next step.
        """
        w = self._walks[symbol]
        b = w.book
        b.prints.clear()
        if w.leader is not None:
            lead = self._walks[w.leader].book
            b.reprice(lead.bid, lead.spread)
        else:
            r = b.rng
            move = round(r.gauss(0, w.sigma))
            if move == 0 and r.random() < _PRINT_P:
                buy = r.random() < 0.5
                if not b.hit(buy, b.trade_size()):
                    move = 1 if buy else -1  # the trade takes the whole touch: the price moves
            if move > 0:
                b.reprice(b.bid + b.spread + move - 1, self._spread(w))
            elif move < 0:
                spread = self._spread(w)
                b.reprice(b.bid + move + 1 - spread, spread)
            else:
                # The offer moves, never below the last trade.
                spread = self._spread(w)
                if b.last is not None and b.last - b.bid > spread:
                    spread = b.last - b.bid
                if spread != b.spread:
                    b.reprice(b.bid, spread)
        b.jiggle()
        return b.quote(self._now(), w.prev_close)

    def anchor(self, quote: Quote) -> None:
        """Move ``quote.symbol``'s book to an externally set quote (see :meth:`Book.anchor`)."""
        w = self._walks.get(quote.symbol)
        if w is None or quote.bid is None or quote.ask is None:
            return
        b = w.book
        b.anchor(quote)
        if quote.prev_close is not None:
            w.prev_close = quote.prev_close
        if w.leader is not None:
            # One market: moving a micro moves its mini too (and the mini's other followers).
            lead = self._walks[w.leader].book
            lead.reprice(b.bid, b.spread, sweep=False)
            lead.prints.clear()

    def state(self, symbol: str) -> WalkState | None:
        w = self._walks.get(symbol)
        if w is None:
            return None
        q = self._quote(w)
        assert q.bid is not None and q.ask is not None
        return WalkState(symbol, q.bid, q.ask, q.last, q.prev_close, q.volume)

    def depth(self, symbol: str) -> Depth | None:
        w = self._walks.get(symbol)
        return w.book.depth(self._now()) if w is not None else None

    # ------------------------------------------------------------------ internals

    def _quote(self, w: _Walk) -> Quote:
        return w.book.quote(self._now(), w.prev_close)

    @staticmethod
    def _spread(w: _Walk) -> int:
        b = w.book
        r = b.rng
        inst = b.inst
        if inst.asset_class is AssetClass.FUTURE:
            return 2 if r.random() < 0.03 else 1
        price = b.bid * float(inst.tick_size)
        if inst.asset_class is AssetClass.OPTION:
            return 1 + int(r.random() * 3) if price < 3 else 2 + int(r.random() * 9)
        if price < 100:
            return 1
        if price < 500:
            return 1 if r.random() < 0.7 else 2
        return 1 + int(r.random() * 4)

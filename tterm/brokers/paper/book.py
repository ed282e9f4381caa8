"""The paper market's order book: ten price levels a side, sizes that move, trades at the touch.

One :class:`Book` per symbol holds the resting size at each of the ten best prices on both sides,
the last trade and the day's volume. Prices are whole *grid indices* (see :class:`Grid`): for most
instruments index ``i`` is ``i`` ticks, for an option on a tick table (pennies below $3, nickels
above) it is the ``i``-th valid price, so the book's levels are always consecutive valid prices.

The book moves only in ways that keep depth, trades and the quote one picture:

- a trade prints at the touch and consumes resting size there (:meth:`Book.hit`);
- a sweep (the price moving through the offer or the bid) prints at every level it takes, and the
  new best bid (after buying) or offer (after selling) is the last price printed;
- the spread changes by moving the offer only, never past the last trade;
- whenever the quote moves away from the last trade without a sweep (a re-quote, a follower
  catching up with its leader), the new touch is traded once (:meth:`Book.settle`).

So the last trade always lies within or at the bid and offer the book shows.

``prints`` collects the step's trades as ``(index, size, sign)`` (sign +1: the buyer was the
aggressor) for the tape and the bars; whoever steps the book reads and clears it.
"""

from __future__ import annotations

import random
from datetime import datetime
from decimal import Decimal

from tterm.core.models import AssetClass, Depth, DepthLevel, Instrument, Quote

#: Price levels shown on each side of the book.
DEPTH = 10


class Grid:
    """Valid prices of one instrument as whole indices: ``price(i)`` is the i-th price above zero.

    Without a tick table this is ``i * tick``; with one (``((0, 0.01), (3, 0.05))``) the indices
    run 0.01, 0.02 ... 2.99, 3.00, 3.05 ... so one index step is always one valid tick.
    """

    __slots__ = ("_segments", "tick", "uniform")

    def __init__(self, inst: Instrument) -> None:
        self.tick = inst.tick_size
        table = [(Decimal(s), Decimal(t)) for s, t in inst.tick_table]
        self.uniform = all(t == self.tick for _, t in table)
        # (first index, first price, tick) per segment of the table.
        segments: list[tuple[int, Decimal, Decimal]] = []
        if not self.uniform:
            segments.append((0, Decimal(0), table[0][1] if table[0][0] == 0 else self.tick))
            for start, t in table:
                if start <= 0:
                    continue
                index, first, tick = segments[-1]
                segments.append((index + int((start - first) / tick), start, t))
        self._segments = segments

    def price(self, index: int) -> Decimal:
        if self.uniform:
            return index * self.tick
        seg = self._segments[0]
        for s in self._segments:
            if s[0] <= index:
                seg = s
            else:
                break
        return (seg[1] + (index - seg[0]) * seg[2]).quantize(self.tick)

    def index(self, price: Decimal, *, up: bool = False) -> int:
        """The index of ``price`` (rounded down to the grid, or up with ``up``)."""
        if self.uniform:
            q = price / self.tick
        else:
            seg = self._segments[0]
            for s in self._segments:
                if s[1] <= price:
                    seg = s
                else:
                    break
            q = seg[0] + (price - seg[1]) / seg[2]
        i = int(q)
        if up and i != q:
            i += 1
        return i


def _size_model(inst: Instrument) -> tuple[int, int, tuple[int, ...]]:
    """(lot, level size in lots up to, trade sizes) for an instrument's asset class."""
    if inst.asset_class is AssetClass.FUTURE:
        hi = 120 if inst.is_micro else 40
        return 1, hi, tuple(range(1, (30 if inst.is_micro else 12) + 1))
    if inst.asset_class is AssetClass.OPTION:
        return 1, 50, tuple(range(1, 11))
    return 100, 20, (1, 5, 10, 25, 50, 100, 100, 200, 300, 500)


class Book:
    """One symbol's simulated book (see the module docstring). Prices are grid indices."""

    __slots__ = (
        "_hi",
        "_last_asks",
        "_last_bids",
        "_levels",
        "_random",
        "_trade_sizes",
        "asks",
        "bid",
        "bids",
        "grid",
        "inst",
        "last",
        "lot",
        "prints",
        "rng",
        "spread",
        "tick",
        "volume",
    )

    def __init__(
        self, inst: Instrument, rng: random.Random, bid: int, spread: int, last: int | None, volume: int = 0
    ) -> None:
        self.inst = inst
        self.rng = rng
        self._random = rng.random
        self.grid = Grid(inst)
        #: The tick when every index step is one tick (the fast path), else None.
        self.tick = self.grid.tick if self.grid.uniform else None
        self.lot, self._hi, self._trade_sizes = _size_model(inst)
        self.bid = max(1, bid)
        self.spread = max(1, spread)
        self.last = last
        self.volume = volume
        self.prints: list[tuple[int, int, int]] = []
        self._levels: dict[tuple[int, int], DepthLevel] = {}
        self._last_bids: tuple[tuple[int, ...], tuple[DepthLevel, ...]] = ((), ())
        self._last_asks: tuple[tuple[int, ...], tuple[DepthLevel, ...]] = ((), ())
        self.bids = [self.level_size() for _ in range(DEPTH)]
        self.asks = [self.level_size() for _ in range(DEPTH)]

    # ------------------------------------------------------------------ sizes

    @property
    def mean_level(self) -> float:
        """The average resting size of a level."""
        return self.lot * (1 + self._hi) / 2

    @property
    def mean_trade(self) -> float:
        """The average size of a trade at the touch."""
        return sum(self._trade_sizes) / len(self._trade_sizes)

    def level_size(self) -> int:
        return self.lot * (1 + int(self._random() * self._hi))

    def trade_size(self) -> int:
        sizes = self._trade_sizes
        return sizes[int(self.rng.random() * len(sizes))]

    def jiggle(self) -> None:
        """Resting size moves: one level is re-quoted, as orders join and leave."""
        r = self._random
        k = int(r() * 2 * DEPTH)
        size = self.lot * (1 + int(r() * self._hi))
        if k < DEPTH:
            self.bids[k] = size
        else:
            self.asks[k - DEPTH] = size

    # ------------------------------------------------------------------ trades

    def record(self, index: int, size: int, sign: int) -> None:
        """A trade of ``size`` at ``index`` (sign +1: bought at the offer)."""
        self.prints.append((index, size, sign))
        self.last = index
        self.volume += size

    def hit(self, buy: bool, size: int) -> bool:
        """A trade at the touch taking ``size`` of the resting size there.

        Returns False (nothing traded) when ``size`` would take the whole level: that trade is a
        sweep, which moves the price (:meth:`reprice`).
        """
        level = self.asks if buy else self.bids
        if size >= level[0]:
            return False
        level[0] -= size
        self.record(self.bid + self.spread if buy else self.bid, size, 1 if buy else -1)
        return True

    def settle(self) -> None:
        """Trade the touch once if the last trade is no longer within the bid and the offer."""
        last = self.last
        if last is None:
            return
        if last < self.bid:
            buy = False
        elif last > self.bid + self.spread:
            buy = True
        else:
            return
        level = self.asks if buy else self.bids
        size = min(self.trade_size(), max(1, level[0] - self.lot))
        level[0] = max(self.lot, level[0] - size)
        self.record(self.bid + self.spread if buy else self.bid, size, 1 if buy else -1)

    # ------------------------------------------------------------------ moves

    def anchor(self, quote: Quote) -> None:
        """Move the book to an externally set quote (scripted markets, replays).

        The quote's sizes become the touch (when given); a ``last`` that changed, or volume that
        grew, is a trade at ``last`` (the quote's volume growth is its size). The trade's
        aggressor follows the quote rule: at the offer a buyer, at the bid a seller, between
        them the direction from the previous trade. Without a ``last`` the touch is traded if
        the old last no longer lies within the quote.
        """
        if quote.bid is None or quote.ask is None:
            return
        self.prints.clear()
        grid = self.grid
        bid = max(1, grid.index(quote.bid))
        spread = max(1, grid.index(quote.ask) - bid)
        self.reprice(bid, spread, sweep=False, settle=False)
        if quote.bid_size > 0:
            self.bids[0] = quote.bid_size
        if quote.ask_size > 0:
            self.asks[0] = quote.ask_size
        if quote.last is not None:
            last = grid.index(quote.last)
            grew = quote.volume - self.volume
            if grew > 0 or last != self.last:
                if last >= bid + spread:
                    sign = 1
                elif last <= bid:
                    sign = -1
                else:
                    sign = 1 if self.last is None or last >= self.last else -1
                self.record(last, grew if grew > 0 else self.lot, sign)
        else:
            self.settle()
        self.volume = max(self.volume, quote.volume)

    def reprice(self, new_bid: int, new_spread: int, *, sweep: bool = True, settle: bool = True) -> None:
        """Move the book to bid ``new_bid`` and offer ``new_bid + new_spread``.

        With ``sweep`` a bid at or above the old offer means buyers took every offer up to it
        (a trade at each level, the last one at ``new_bid``), an offer at or below the old bid
        means sellers took the bids down to it. Levels still on the book keep their size; new
        ones get fresh size. The last trade is then settled into the new quote (unless the caller
        sets the last itself: ``settle=False``).
        """
        if new_bid < 1:
            new_bid = 1
        if new_spread < 1:
            new_spread = 1
        ob = self.bid
        oa = ob + self.spread
        na = new_bid + new_spread
        if sweep and (new_bid >= oa or na <= ob):
            prints = self.prints
            volume = 0
            if new_bid >= oa:
                levels = self.asks
                for i in range(new_bid - oa + 1):
                    size = levels[i] if i < DEPTH else self.level_size()
                    prints.append((oa + i, size, 1))
                    volume += size
                self.last = new_bid
            else:
                levels = self.bids
                for i in range(ob - na + 1):
                    size = levels[i] if i < DEPTH else self.level_size()
                    prints.append((ob - i, size, -1))
                    volume += size
                self.last = na
            self.volume += volume
        d = new_bid - ob
        e = na - oa
        if d or e:
            self._shift(d, e)
        self.bid = new_bid
        self.spread = new_spread
        if settle:
            self.settle()

    def _shift(self, d: int, e: int) -> None:
        """Move the bid levels by ``d`` and the offer levels by ``e`` index steps.

        Levels that leave the book (behind the new touch, or past the tenth) lend their sizes to
        the levels that appear, so a move costs no random draws unless the book grew a side.
        """
        bids, asks = self.bids, self.asks
        if d == e and 0 < abs(d) < DEPTH:
            # The whole book moved (the common case): the levels the touch passed change sides.
            if d > 0:
                passed = asks[:d]
                del asks[:d]
                asks.extend(bids[DEPTH - d :])
                del bids[DEPTH - d :]
                passed.reverse()
                bids[:0] = passed
            else:
                passed = bids[:-d]
                del bids[:-d]
                bids.extend(asks[DEPTH + d :])
                del asks[DEPTH + d :]
                passed.reverse()
                asks[:0] = passed
            return
        pool: list[int] = []
        if d > 0:
            k = min(d, DEPTH)
            pool += bids[DEPTH - k :]
            del bids[DEPTH - k :]
        elif d < 0:
            k = min(-d, DEPTH)
            pool += bids[:k]
            del bids[:k]
        if e > 0:
            k = min(e, DEPTH)
            pool += asks[:k]
            del asks[:k]
        elif e < 0:
            k = min(-e, DEPTH)
            pool += asks[DEPTH - k :]
            del asks[DEPTH - k :]
        size = self.level_size
        if d > 0:
            n = DEPTH - len(bids)
            bids[:0] = [pool.pop() if pool else size() for _ in range(n)]
        elif d < 0:
            bids.extend([pool.pop() if pool else size() for _ in range(DEPTH - len(bids))])
        if e > 0:
            asks.extend([pool.pop() if pool else size() for _ in range(DEPTH - len(asks))])
        elif e < 0:
            n = DEPTH - len(asks)
            asks[:0] = [pool.pop() if pool else size() for _ in range(n)]

    # ------------------------------------------------------------------ pictures

    def price(self, index: int) -> Decimal:
        tick = self.tick
        return index * tick if tick is not None else self.grid.price(index)

    def quote(self, ts: datetime, prev_close: Decimal | None) -> Quote:
        tick = self.tick
        bid = self.bid
        last = self.last
        if tick is not None:
            return Quote(
                symbol=self.inst.symbol,
                bid=bid * tick,
                ask=(bid + self.spread) * tick,
                last=last * tick if last is not None else None,
                bid_size=self.bids[0],
                ask_size=self.asks[0],
                volume=self.volume,
                prev_close=prev_close,
                ts=ts,
            )
        price = self.grid.price
        return Quote(
            symbol=self.inst.symbol,
            bid=price(bid),
            ask=price(bid + self.spread),
            last=price(last) if last is not None else None,
            bid_size=self.bids[0],
            ask_size=self.asks[0],
            volume=self.volume,
            prev_close=prev_close,
            ts=ts,
        )

    def depth(self, ts: datetime) -> Depth:
        """The full picture, best first (levels at or below zero are left out).

        A side that did not change since the last picture is the same tuple, and levels are
        cached by (price index, size): a step moves a few levels, so a depth every step is cheap.
        """
        bid = self.bid
        ask = bid + self.spread
        bkey = (bid, *self.bids)
        if bkey != self._last_bids[0]:
            self._last_bids = (bkey, self._side(bid, self.bids, -1))
        akey = (ask, *self.asks)
        if akey != self._last_asks[0]:
            self._last_asks = (akey, self._side(ask, self.asks, 1))
        return Depth(symbol=self.inst.symbol, bids=self._last_bids[1], asks=self._last_asks[1], ts=ts)

    def _side(self, touch: int, sizes: list[int], step: int) -> tuple[DepthLevel, ...]:
        cache = self._levels
        if len(cache) > 16 * DEPTH:
            cache.clear()
        price = self.price
        out = []
        idx = touch
        for size in sizes:
            if idx <= 0:
                break
            level = cache.get((idx, size))
            if level is None:
                level = cache[(idx, size)] = DepthLevel(price(idx), size)
            out.append(level)
            idx += step
        return tuple(out)

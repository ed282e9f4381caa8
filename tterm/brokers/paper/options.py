"""Simulated options for the paper market: listed series, an IV smile, Black-Scholes quotes.

- Expiries: every Friday of the next :data:`WEEKLIES` weeks and the monthly third Fridays of
  the next :data:`MONTHLIES` months (a Friday without a session, such as Good Friday, expires on
  the business day before it).
- Strikes: :data:`STRIKES_EACH_SIDE` strikes either side of the underlying's previous close on
  the grid listed options use at that price ($1 for the index ETFs; $0.50 below $25, $1 to
  $100, $2.50 to $200, $5 to $500, $10 above), so the strikes stay put while the price moves.
- Volatility: an at-the-money level per underlying (:data:`ATM_VOL`), a put skew and a smile in
  log-moneyness scaled by the square root of time, a little richer at short expiries.
- Prices: Black-Scholes (Black-76 for options on futures) at the underlying's mid, with a
  risk-free rate of :data:`RATE` and no dividends. Every option the market holds has its own
  ten-level book (:class:`~tterm.brokers.paper.book.Book`) re-quoted around its theoretical
  value whenever the underlying moves, on the class's tick table, and printing now and then at
  the touch; so option quotes move with the underlying and orders fill against them.
- Volume and open interest are deterministic from the seed: open interest peaks at the money
  and at round strikes; the day's volume starts at a share of it and grows with every print.

An option series expires at 16:00 New York time on its expiry date.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from tterm.brokers.paper.book import Book, Grid
from tterm.core import blackscholes as bs
from tterm.core.instruments import InstrumentMaster
from tterm.core.models import (
    AssetClass,
    ChainRow,
    Greeks,
    Instrument,
    OptionChain,
    OptionQuote,
    OptionRight,
    Quote,
)

#: The simulated risk-free rate (continuously compounded); dividends are taken as zero.
RATE = 0.04
WEEKLIES = 5
MONTHLIES = 6
STRIKES_EACH_SIDE = 20
#: At-the-money implied volatility by underlying (others get 22-60% from the symbol's CRC32).
ATM_VOL: dict[str, float] = {
    "SPY": 0.15,
    "QQQ": 0.19,
    "IWM": 0.22,
    "DIA": 0.14,
    "GLD": 0.17,
    "TLT": 0.14,
    "XLF": 0.19,
    "XLE": 0.24,
    "USO": 0.34,
    "SMH": 0.33,
    "AAPL": 0.25,
    "MSFT": 0.23,
    "NVDA": 0.46,
    "AMZN": 0.31,
    "GOOGL": 0.29,
    "META": 0.34,
    "TSLA": 0.56,
    "AMD": 0.50,
    "NFLX": 0.36,
    "JPM": 0.22,
    "ES": 0.16,
    "MES": 0.16,
    "NQ": 0.21,
    "MNQ": 0.21,
    "CL": 0.32,
    "GC": 0.18,
}
_ONE_STRIKE_ETFS = frozenset({"SPY", "QQQ", "IWM", "DIA", "GLD", "TLT", "XLF", "XLE", "SMH"})
_CLOSE = time(16, 0)
_NEW_YORK = ZoneInfo("America/New_York")
_YEAR = 365 * 86400.0
#: Chance that a re-quote also trades at the touch.
_PRINT_P = 0.04


def expiries(today: date, is_business_day: Callable[[date], bool]) -> list[date]:
    """Listed expiries from ``today`` on: weeklies, then monthly third Fridays."""
    out: set[date] = set()
    friday = today + timedelta(days=(4 - today.weekday()) % 7)
    for w in range(WEEKLIES):
        out.add(friday + timedelta(weeks=w))
    y, m = today.year, today.month
    for _ in range(MONTHLIES + 1):
        first = date(y, m, 1)
        out.add(first + timedelta(days=(4 - first.weekday()) % 7 + 14))
        y, m = (y, m + 1) if m < 12 else (y + 1, 1)
    listed = set()
    for d in out:
        while not is_business_day(d):
            d -= timedelta(days=1)
        if d >= today:
            listed.add(d)
    return sorted(listed)


def strike_step(underlying: str, price: Decimal) -> Decimal:
    """The strike interval listed around ``price`` for ``underlying``."""
    if underlying in _ONE_STRIKE_ETFS and price >= 25:
        return Decimal(1)
    for limit, step in ((25, "0.5"), (100, "1"), (200, "2.5"), (500, "5")):
        if price < limit:
            return Decimal(step)
    return Decimal(10)


def strikes(underlying: str, reference: Decimal) -> list[Decimal]:
    """The strikes listed around ``reference`` (the previous close), ascending."""
    step = strike_step(underlying, reference)
    centre = (reference / step).to_integral_value() * step
    out = [centre + i * step for i in range(-STRIKES_EACH_SIDE, STRIKES_EACH_SIDE + 1)]
    return [Decimal(int(k)) if k == k.to_integral_value() else k.normalize() for k in out if k > 0]


def years_to_expiry(expiry: date, now: datetime) -> float:
    """Years (of 365 days) from ``now`` to 16:00 New York time on ``expiry``; <= 0 once expired."""
    close = datetime.combine(expiry, _CLOSE, tzinfo=_NEW_YORK)
    return (close - now).total_seconds() / _YEAR


def atm_vol(underlying: str) -> float:
    known = ATM_VOL.get(underlying)
    if known is not None:
        return known
    return 0.22 + (zlib.crc32(underlying.encode()) % 380) / 1000


def implied_vol(underlying: str, strike: float, spot: float, t: float) -> float:
    """The smile: the ATM level, a put skew and curvature in moneyness over sqrt(time)."""
    base = atm_vol(underlying)
    t = max(t, 1 / 365)
    x = max(-4.0, min(4.0, math.log(strike / spot) / math.sqrt(t)))
    level = base * (1 + 0.12 * math.exp(-t * 12))  # short expiries a little richer
    return max(0.05, min(3.0, level * (1 - 0.09 * x + 0.035 * x * x)))


def occ_symbol(root: str, expiry: date, right: OptionRight, strike: Decimal) -> str:
    """``AAPL  261218C00250000``: the OCC symbol of one equity option."""
    cp = "C" if right is OptionRight.CALL else "P"
    return f"{root:<6}{expiry:%y%m%d}{cp}{int(strike * 1000):08d}"


@dataclass(slots=True)
class _OptionMarket:
    book: Book
    prev_close: Decimal
    open_interest: int


class OptionMarket:
    """The books of the options the paper market holds, re-quoted from their underlying."""

    def __init__(self, seed: int, instruments: InstrumentMaster) -> None:
        self._seed = seed
        self._instruments = instruments
        self._markets: dict[str, _OptionMarket] = {}
        self._by_underlying: dict[str, set[str]] = {}

    def has(self, symbol: str) -> bool:
        return symbol in self._markets

    def book(self, symbol: str) -> Book | None:
        m = self._markets.get(symbol)
        return m.book if m is not None else None

    @property
    def symbols(self) -> list[str]:
        return list(self._markets)

    def underlies(self, symbol: str) -> bool:
        return symbol in self._by_underlying

    def of(self, underlying: str) -> list[str]:
        return sorted(self._by_underlying.get(underlying, ()))

    def add(self, inst: Instrument, spot: Decimal, prev_spot: Decimal, now: datetime) -> Quote:
        """Open a book for option ``inst`` at the underlying's ``spot``; returns its first quote."""
        m = self._markets.get(inst.symbol)
        if m is None:
            book = self._new_book(inst, spot, now)
            prev = self.theo(inst, prev_spot, now - timedelta(days=1))
            prev_close = book.grid.price(max(1, book.grid.index(Decimal(repr(prev)))))
            m = _OptionMarket(book, prev_close, self._oi(inst, prev_spot))
            book.volume = self._base_volume(inst, m.open_interest)
            self._markets[inst.symbol] = m
            self._by_underlying.setdefault(inst.underlying, set()).add(inst.symbol)
        return m.book.quote(now, m.prev_close)

    def _new_book(self, inst: Instrument, spot: Decimal, now: datetime) -> Book:
        rng = random.Random(f"{self._seed}:{inst.symbol}")
        book = Book(inst, rng, 1, 1, None)
        bid, spread = self._target(inst, book.grid, self.theo(inst, spot, now))
        book.reprice(bid, spread, sweep=False, settle=False)
        return book

    def restore(self, symbol: str, last: Decimal | None, volume: int) -> None:
        """Put back a saved last trade and volume (after :meth:`add`)."""
        m = self._markets.get(symbol)
        if m is None:
            return
        b = m.book
        if last is not None:
            b.last = b.grid.index(last)
            b.settle()
            b.prints.clear()
        b.volume = max(b.volume, volume)

    def theo(self, inst: Instrument, spot: Decimal, now: datetime) -> float:
        """The option's Black-Scholes value at ``spot`` (Black-76 for an option on a future)."""
        assert inst.strike is not None and inst.expiry is not None
        t = years_to_expiry(inst.expiry, now)
        s, k = float(spot), float(inst.strike)
        right: Literal["call", "put"] = "call" if inst.right is OptionRight.CALL else "put"
        sigma = implied_vol(_vol_key(inst), k, s, t)
        q = RATE if _on_future(inst) else 0.0
        return bs.price(right, s, k, t, RATE, sigma, q)

    @staticmethod
    def _target(inst: Instrument, grid: Grid, theo: float) -> tuple[int, int]:
        """Bid index and spread (index steps) of a market made around ``theo``."""
        tick = float(inst.tick_at(Decimal(repr(max(theo, 0.0)))))
        width = 1 + min(9, int(theo * 0.003 / tick))
        centre = grid.index(Decimal(repr(max(theo, float(inst.tick_size)))))
        bid = max(1, centre - width // 2)
        return bid, max(1, width)

    def reprice(self, underlying: str, spot: Decimal, now: datetime) -> list[str]:
        """Re-quote every held option of ``underlying`` at ``spot``; returns their symbols."""
        done = []
        for sym in self.of(underlying):
            m = self._markets[sym]
            b = m.book
            b.prints.clear()
            bid, spread = self._target(b.inst, b.grid, self.theo(b.inst, spot, now))
            if bid != b.bid or spread != b.spread:
                b.reprice(bid, spread, sweep=False)
            if b.rng.random() < _PRINT_P:
                b.hit(b.rng.random() < 0.5, b.trade_size())
            b.jiggle()
            done.append(sym)
        return done

    def quote(self, symbol: str, now: datetime) -> Quote | None:
        m = self._markets.get(symbol)
        return m.book.quote(now, m.prev_close) if m is not None else None

    # ------------------------------------------------------------------ chains

    def chain(
        self,
        underlying: Instrument,
        expiry: date | None,
        *,
        spot: Decimal,
        reference: Decimal,
        today: date,
        now: datetime,
        is_business_day: Callable[[date], bool],
        broker: str,
        resolve: Callable[[str, date, OptionRight, Decimal], Instrument],
    ) -> OptionChain:
        """One expiry's chain (``None``: the nearest); ``resolve`` makes each option's instrument.

        Raises ValueError naming the listed expiries when ``expiry`` is not one of them.
        """
        listed = [d for d in expiries(today, is_business_day) if years_to_expiry(d, now) > 0]
        if expiry is None:
            expiry = listed[0]
        elif expiry not in listed:
            shown = ", ".join(d.isoformat() for d in listed)
            if expiry < today or years_to_expiry(expiry, now) <= 0:
                raise ValueError(f"{underlying.symbol} options of {expiry} have expired; listed expiries: {shown}")
            raise ValueError(f"{underlying.symbol} has no options expiring {expiry}; listed expiries: {shown}")
        t = years_to_expiry(expiry, now)
        rows: list[ChainRow] = []
        for k in strikes(underlying.symbol, reference):
            pair: dict[OptionRight, OptionQuote] = {}
            for right in (OptionRight.CALL, OptionRight.PUT):
                inst = resolve(underlying.symbol, expiry, right, k)
                pair[right] = self._option_quote(inst, spot, reference, t, now)
            rows.append(ChainRow(strike=k, call=pair[OptionRight.CALL], put=pair[OptionRight.PUT]))
        return OptionChain(
            underlying=underlying.symbol,
            expiry=expiry,
            expiries=tuple(listed),
            rows=tuple(rows),
            underlying_price=spot,
            broker=broker,
            ts=now,
        )

    def _option_quote(
        self, inst: Instrument, spot: Decimal, reference: Decimal, t: float, now: datetime
    ) -> OptionQuote:
        m = self._markets.get(inst.symbol)
        if m is not None:
            b, oi = m.book, m.open_interest
        else:
            # Not held: the book it would open with (the same one a subscription opens).
            b, oi = self._new_book(inst, spot, now), self._oi(inst, reference)
            b.volume = self._base_volume(inst, oi)
        assert inst.strike is not None
        s, k = float(spot), float(inst.strike)
        sigma = implied_vol(_vol_key(inst), k, s, t)
        right: Literal["call", "put"] = "call" if inst.right is OptionRight.CALL else "put"
        g = bs.greeks(right, s, k, t, RATE, sigma, RATE if _on_future(inst) else 0.0)
        q = b.quote(now, None)
        return OptionQuote(
            instrument=inst,
            bid=q.bid,
            ask=q.ask,
            last=q.last,
            bid_size=q.bid_size,
            ask_size=q.ask_size,
            volume=q.volume,
            open_interest=oi,
            iv=sigma,
            greeks=Greeks(delta=g.delta, gamma=g.gamma, theta=g.theta, vega=g.vega, rho=g.rho, source="broker"),
            ts=now,
        )

    # ------------------------------------------------------------------ volume and open interest

    def _oi(self, inst: Instrument, reference: Decimal) -> int:
        """Open interest: most at the money (the previous close) and at round strikes."""
        assert inst.strike is not None
        rng = random.Random(f"{self._seed}:{inst.symbol}:oi")
        popularity = 40_000 if inst.underlying in _ONE_STRIKE_ETFS else 8_000
        k = float(inst.strike)
        x = math.log(k / float(reference)) / 0.12
        roundness = 2.0 if k % 10 == 0 else 1.4 if k % 5 == 0 else 1.0
        return int(popularity * roundness * math.exp(-0.5 * x * x) * rng.uniform(0.3, 1.0))

    @staticmethod
    def _base_volume(inst: Instrument, open_interest: int) -> int:
        rng = random.Random(f"{inst.symbol}:volume:{open_interest}")
        return int(open_interest * rng.uniform(0.0, 0.25))


def _vol_key(inst: Instrument) -> str:
    return inst.root if _on_future(inst) else inst.underlying


def _on_future(inst: Instrument) -> bool:
    return inst.asset_class is AssetClass.OPTION and bool(inst.root) and inst.root != inst.underlying

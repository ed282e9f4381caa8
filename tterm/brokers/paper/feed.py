"""Market data for the paper broker: a seeded random walk, or a replay of a CSV of bars or ticks.

Both feeds are plain synchronous objects (no asyncio): the broker decides when to step them, so
tests drive them one quote at a time and a seed gives the same quotes on every run.

The random walk keeps each symbol's price as a whole number of ticks, so every price it quotes is
on the instrument's grid by construction. Each symbol has its own ``random.Random`` seeded from
``(seed, symbol)``: adding or removing a symbol never changes another symbol's path.

Starting prices (the previous close; the walk opens a little away from it) are set near late-2025
levels so the screens look plausible: see :data:`START_PRICES`. Unknown equities start at a price
derived from the symbol's CRC32 (20 to 320); options start at intrinsic value plus a time value of
about 1.5% of the underlying.
"""

from __future__ import annotations

import csv
import random
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.models import AssetClass, Instrument, ModelError, OptionRight, Quote, utcnow

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
    """The state of one symbol's random walk; prices are whole ticks."""

    inst: Instrument
    rng: random.Random
    bid: int
    spread: int
    bid_size: int
    ask_size: int
    last: int | None
    volume: int
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


class SimulatedFeed:
    """A deterministic random walk per symbol, with the true tick, spread, sizes and volume."""

    def __init__(self, seed: int | None = None, *, now: Callable[[], datetime] = utcnow) -> None:
        self._seed = seed if seed is not None else random.SystemRandom().getrandbits(64)
        self._now = now
        self._walks: dict[str, _Walk] = {}

    @property
    def symbols(self) -> list[str]:
        return list(self._walks)

    def has(self, symbol: str) -> bool:
        return symbol in self._walks

    def add(self, inst: Instrument, state: WalkState | None = None, *, leader: Instrument | None = None) -> Quote:
        """Start walking ``inst`` (from ``state`` if the market was saved); returns its first quote.

        With ``leader`` (a micro's mini contract, same tick size) the walk follows the leader's
        prices exactly, with its own sizes and volume: MES trades where ES trades. The leader is
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
            bid, spread, last = lead.bid, lead.spread, lead.last
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
        walk = _Walk(
            inst=inst,
            rng=rng,
            bid=bid,
            spread=spread,
            bid_size=0,
            ask_size=0,
            last=last,
            volume=volume,
            prev_close=prev_close,
            sigma=sigma,
            leader=lead.inst.symbol if lead is not None else None,
        )
        self._sizes(walk)
        self._walks[inst.symbol] = walk
        return self._quote(walk)

    def current(self, symbol: str) -> Quote | None:
        walk = self._walks.get(symbol)
        return self._quote(walk) if walk is not None else None

    def step(self, symbol: str) -> Quote:
        """Advance ``symbol``'s walk by one update and return the new quote."""
        w = self._walks[symbol]
        r = w.rng
        if w.leader is not None:
            lead = self._walks[w.leader]
            move = lead.bid - w.bid
            w.bid, w.spread = lead.bid, lead.spread
        else:
            move = round(r.gauss(0, w.sigma))
            w.bid = max(1, w.bid + move)
            w.spread = self._spread(w)
        self._sizes(w)
        if r.random() < 0.7:
            size = self._trade_size(w)
            w.volume += size
            if move > 0:
                w.last = w.bid + w.spread
            elif move < 0:
                w.last = w.bid
            else:
                w.last = w.bid + (w.spread if r.random() < 0.5 else 0)
        return self._quote(w)

    def anchor(self, quote: Quote) -> None:
        """Continue ``quote.symbol``'s walk from an externally set quote (scripted markets)."""
        w = self._walks.get(quote.symbol)
        if w is None or quote.bid is None or quote.ask is None:
            return
        tick = w.inst.tick_size
        w.bid = max(1, int(w.inst.round_price(quote.bid) / tick))
        w.spread = max(1, int(w.inst.round_price(quote.ask) / tick) - w.bid)
        if quote.last is not None:
            w.last = int(w.inst.round_price(quote.last) / tick)
        w.volume = max(w.volume, quote.volume)
        if quote.prev_close is not None:
            w.prev_close = quote.prev_close
        if w.leader is not None:
            # One market: moving a micro moves its mini too (and the mini's other followers).
            lead = self._walks[w.leader]
            lead.bid, lead.spread = w.bid, w.spread

    def state(self, symbol: str) -> WalkState | None:
        w = self._walks.get(symbol)
        if w is None:
            return None
        q = self._quote(w)
        assert q.bid is not None and q.ask is not None
        return WalkState(symbol, q.bid, q.ask, q.last, q.prev_close, q.volume)

    # ------------------------------------------------------------------ internals

    def _quote(self, w: _Walk) -> Quote:
        tick = w.inst.tick_size
        return Quote(
            symbol=w.inst.symbol,
            bid=w.bid * tick,
            ask=(w.bid + w.spread) * tick,
            last=w.last * tick if w.last is not None else None,
            bid_size=w.bid_size,
            ask_size=w.ask_size,
            volume=w.volume,
            prev_close=w.prev_close,
            ts=self._now(),
        )

    @staticmethod
    def _spread(w: _Walk) -> int:
        r = w.rng
        if w.inst.asset_class is AssetClass.FUTURE:
            return 2 if r.random() < 0.03 else 1
        price = w.bid * float(w.inst.tick_size)
        if w.inst.asset_class is AssetClass.OPTION:
            return r.randint(1, 3) if price < 3 else r.randint(2, 10)
        if price < 100:
            return 1
        if price < 500:
            return 1 if r.random() < 0.7 else 2
        return r.randint(1, 4)

    @staticmethod
    def _sizes(w: _Walk) -> None:
        r = w.rng
        if w.inst.asset_class is AssetClass.FUTURE:
            hi = 120 if w.inst.is_micro else 40
            w.bid_size, w.ask_size = r.randint(1, hi), r.randint(1, hi)
        elif w.inst.asset_class is AssetClass.OPTION:
            w.bid_size, w.ask_size = r.randint(1, 50), r.randint(1, 50)
        else:
            w.bid_size, w.ask_size = 100 * r.randint(1, 20), 100 * r.randint(1, 20)

    @staticmethod
    def _trade_size(w: _Walk) -> int:
        r = w.rng
        if w.inst.asset_class is AssetClass.FUTURE:
            return r.randint(1, 30 if w.inst.is_micro else 12)
        if w.inst.asset_class is AssetClass.OPTION:
            return r.randint(1, 10)
        return r.choice((1, 5, 10, 25, 50, 100, 100, 200, 300, 500))


# --------------------------------------------------------------------------- replay


class ReplayError(ValueError):
    """A replay file that cannot be read: names the file, the line and what is wrong."""


@dataclass(frozen=True, slots=True)
class ReplayPoint:
    """One market update from a replay file, already resolved to a contract and on its tick grid."""

    symbol: str
    ts: datetime
    bid: Decimal
    ask: Decimal
    last: Decimal | None
    bid_size: int
    ask_size: int
    trade_size: int


_SECOND = timedelta(seconds=1)
_BAR_COLUMNS = ("ts", "symbol", "open", "high", "low", "close")
_TICK_COLUMNS = ("ts", "symbol", "bid", "ask")


class ReplayFeed:
    """Replays a CSV of bars or ticks as quotes, in file order (see ``examples/replay/README.md``).

    Bars become four quotes each (open, then the nearer extreme, the other extreme, close), so a
    resting order at the bar's high or low is touched the way it would have been. A point that
    moved up is quoted with the price on the bid; one that moved down with the price on the ask:
    the high is reached by the bid and the low by the ask, one tick (the spread) apart.
    """

    def __init__(self, path: Path, instruments: InstrumentMaster) -> None:
        self.path = Path(path)
        self._points = list(_read_replay(self.path, instruments))
        if not self._points:
            raise ReplayError(f"{self.path}: no data rows")
        self._pos = 0
        self._volume: dict[str, int] = {}
        self._prev_close: dict[str, Decimal] = {}
        for p in self._points:
            self._prev_close.setdefault(p.symbol, p.last if p.last is not None else p.bid)
        self.instruments = {p.symbol: instruments.resolve(p.symbol) for p in self._points}

    @property
    def symbols(self) -> list[str]:
        return list(self._prev_close)

    @property
    def done(self) -> bool:
        return self._pos >= len(self._points)

    def __len__(self) -> int:
        return len(self._points)

    def next(self) -> Quote | None:
        """The next quote in the file, or None once it has all been played."""
        if self.done:
            return None
        p = self._points[self._pos]
        self._pos += 1
        vol = self._volume.get(p.symbol, 0) + p.trade_size
        self._volume[p.symbol] = vol
        return Quote(
            symbol=p.symbol,
            bid=p.bid,
            ask=p.ask,
            last=p.last,
            bid_size=p.bid_size,
            ask_size=p.ask_size,
            volume=vol,
            prev_close=self._prev_close[p.symbol],
            ts=p.ts,
        )


def _read_replay(path: Path, instruments: InstrumentMaster) -> Iterator[ReplayPoint]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ReplayError(f"{path}: cannot read replay file ({exc.strerror or exc})") from None
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    lines = [(n, line) for n, line in lines if not line.lstrip().startswith("#")]
    if not lines:
        raise ReplayError(f"{path}: empty replay file")
    header_line, header_text = lines[0]
    header = [h.strip().lower() for h in next(csv.reader([header_text]))]
    if all(c in header for c in _BAR_COLUMNS):
        kind = "bars"
    elif all(c in header for c in _TICK_COLUMNS):
        kind = "ticks"
    else:
        raise ReplayError(
            f"{path}:{header_line}: header must name bar columns {','.join(_BAR_COLUMNS)} "
            f"or tick columns {','.join(_TICK_COLUMNS)}; got {','.join(header)}"
        )
    prev: dict[str, Decimal] = {}
    for n, row_text in lines[1:]:
        cells = next(csv.reader([row_text]))
        if len(cells) != len(header):
            raise ReplayError(f"{path}:{n}: expected {len(header)} columns, got {len(cells)}")
        row = dict(zip(header, (c.strip() for c in cells), strict=True))
        where = f"{path}:{n}"
        try:
            inst = instruments.resolve(row["symbol"])
        except UnknownSymbol as exc:
            raise ReplayError(f"{where}: {exc}") from None
        ts = _parse_ts(row["ts"], where)
        if kind == "bars":
            yield from _bar_points(row, inst, ts, prev, where)
        else:
            yield _tick_point(row, inst, ts, where)


def _parse_ts(text: str, where: str) -> datetime:
    try:
        if text.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(text), UTC)
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ReplayError(f"{where}: ts {text!r} is not an ISO-8601 time or epoch seconds") from None
    if ts.tzinfo is None:
        raise ReplayError(f"{where}: ts {text!r} has no UTC offset (write e.g. 2025-11-03T14:30:00Z)")
    return ts


def _price(row: dict[str, str], col: str, inst: Instrument, where: str) -> Decimal:
    text = row.get(col, "")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ReplayError(f"{where}: {col} {text!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise ReplayError(f"{where}: {col} {text!r} must be a positive price")
    try:
        return inst.round_price(value, "reject")
    except ModelError as exc:
        raise ReplayError(f"{where}: {col}: {exc}") from None


def _int(row: dict[str, str], col: str, where: str, default: int = 0) -> int:
    text = row.get(col, "")
    if text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ReplayError(f"{where}: {col} {text!r} is not a whole number") from None
    if value < 0:
        raise ReplayError(f"{where}: {col} {text!r} must not be negative")
    return value


def _tick_point(row: dict[str, str], inst: Instrument, ts: datetime, where: str) -> ReplayPoint:
    bid = _price(row, "bid", inst, where)
    ask = _price(row, "ask", inst, where)
    if bid > ask:
        raise ReplayError(f"{where}: bid {bid} is above ask {ask}")
    last = _price(row, "last", inst, where) if row.get("last") else None
    return ReplayPoint(
        symbol=inst.symbol,
        ts=ts,
        bid=bid,
        ask=ask,
        last=last,
        bid_size=_int(row, "bid_size", where),
        ask_size=_int(row, "ask_size", where),
        trade_size=_int(row, "last_size", where),
    )


def _bar_points(
    row: dict[str, str], inst: Instrument, ts: datetime, prev: dict[str, Decimal], where: str
) -> Iterator[ReplayPoint]:
    o, h, low, c = (_price(row, col, inst, where) for col in ("open", "high", "low", "close"))
    if not (low <= o <= h and low <= c <= h):
        raise ReplayError(f"{where}: bar is inconsistent (open {o}, high {h}, low {low}, close {c})")
    volume = _int(row, "volume", where)
    seconds = _int(row, "seconds", where, default=60) or 60
    path = ((o, ""), (low, "low"), (h, "high"), (c, "")) if c >= o else ((o, ""), (h, "high"), (low, "low"), (c, ""))
    shares = [volume // 4] * 4
    shares[-1] += volume - sum(shares)
    tick = inst.tick_size
    before = prev.get(inst.symbol, o)
    for i, (price, role) in enumerate(path):
        up = role == "high" or (role == "" and price >= before)
        bid, ask = (price, price + tick) if up else (price - tick, price)
        if bid <= 0:
            bid, ask = price, price + tick
        before = price
        yield ReplayPoint(
            symbol=inst.symbol,
            ts=ts + (i * seconds / 4) * _SECOND,
            bid=bid,
            ask=ask,
            last=price,
            bid_size=0,
            ask_size=0,
            trade_size=shares[i],
        )
    prev[inst.symbol] = c

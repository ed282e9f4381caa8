"""Bars for the paper market: built from its own trades, on top of a replayable history.

Every trade the market prints updates the symbol's current one-second and one-minute bar
(:meth:`BarBook.add`, whole grid indices, no Decimal on the hot path). Longer bars (5m, 15m, 1h)
are made from the minutes on request; daily bars follow the trading day (CME: 17:00 to 17:00
Chicago time for futures; the New York calendar day for equities and options).

Before the session, a walked symbol has history: :data:`HISTORY_DAYS` of one-minute bars,
synthesized from the seed (the same seed, symbol and start give the same bars) as a random walk
with the walk's own volatility and volume, ending exactly at the price the session opened at,
so the history joins the live bars without a gap or a jump. The history and every finished live
minute are saved in the paper store, so a restart shows the same bars; the time the terminal
was off is bridged by a walk from the last saved close to the price the market resumed at.

One-second bars are kept for the last :data:`SECONDS_KEPT` seconds of the session only, packed
as 64-bit integers (:class:`PackedBars`: 48 bytes a bar instead of a tuple's ~230, which at 200
symbols was 150 MiB after an hour of a long session; bench/soak found it).
"""

from __future__ import annotations

import math
import random
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tterm.brokers.paper.book import Grid
from tterm.core.broker import BrokerError
from tterm.core.models import Bar, Timeframe

#: Days of one-minute history synthesized before a symbol's first session.
HISTORY_DAYS = 5
#: Days of one-minute bars kept in the store (older ones are dropped when history is loaded).
KEEP_DAYS = 14
#: How far back one-second bars reach.
SECONDS_KEPT = 3600
#: The most bars one request may return.
MAX_BARS = 50_000

_CHICAGO = ZoneInfo("America/Chicago")
_NEW_YORK = ZoneInfo("America/New_York")

#: A bar in grid indices: (start epoch seconds, open, high, low, close, volume).
RawBar = tuple[int, int, int, int, int, int]
#: Loads a symbol's saved minutes (oldest first); saves minutes.
Loader = Callable[[str], list[RawBar]]
Saver = Callable[[str, list[RawBar]], None]


class PackedBars:
    """The latest ``maxlen`` raw bars, appended at the end, stored flat in one ``array('q')``.

    The front is cut in steps of :attr:`SLACK` bars, so an append costs no copy on most calls.
    """

    SLACK = 256
    __slots__ = ("_a", "_maxlen")

    def __init__(self, maxlen: int) -> None:
        self._a = array("q")
        self._maxlen = maxlen

    def append(self, bar: RawBar) -> None:
        a = self._a
        a.extend(bar)
        if len(a) > (self._maxlen + self.SLACK) * 6:
            del a[: len(a) - self._maxlen * 6]

    def __len__(self) -> int:
        return min(self._maxlen, len(self._a) // 6)

    def __iter__(self) -> Iterator[RawBar]:
        a = self._a
        for i in range(max(0, len(a) - self._maxlen * 6), len(a), 6):
            yield (a[i], a[i + 1], a[i + 2], a[i + 3], a[i + 4], a[i + 5])


@dataclass(slots=True)
class _Series:
    grid: Grid
    daily: str  # "cme" or "ny": where a trading day starts
    origin: int  # the minute the session's live bars start at
    opening: int  # the price (index) the session opened at
    sigma: float  # one-minute volatility, in index steps
    volume: float  # typical one-minute volume
    synthesize: bool
    seconds: PackedBars = field(default_factory=lambda: PackedBars(SECONDS_KEPT))
    sec: list[int] | None = None
    minutes: list[RawBar] = field(default_factory=list)
    minute: list[int] | None = None
    unsaved: list[RawBar] = field(default_factory=list)
    history: bool = False


class BarBook:
    """Every symbol's bars (see the module docstring). ``load``/``save`` reach the paper store."""

    def __init__(self, seed: int, *, load: Loader | None = None, save: Saver | None = None) -> None:
        self._seed = seed
        self._load = load
        self._save = save
        self._series: dict[str, _Series] = {}

    def has(self, symbol: str) -> bool:
        return symbol in self._series

    def open(
        self,
        symbol: str,
        grid: Grid,
        *,
        now: datetime,
        opening: int,
        sigma_minute: float,
        volume_minute: float,
        daily: str,
        synthesize: bool = True,
    ) -> None:
        """Start ``symbol``'s live bars at ``now`` from price ``opening`` (a grid index)."""
        if symbol in self._series:
            return
        t = int(now.timestamp())
        self._series[symbol] = _Series(
            grid=grid,
            daily=daily,
            origin=t - t % 60,
            opening=opening,
            sigma=sigma_minute,
            volume=volume_minute,
            synthesize=synthesize,
        )

    def add_prints(self, symbol: str, t: int, prints: tuple[tuple[int, int, int], ...]) -> None:
        """The trades of one update, ``(price index, size, sign)``, all at epoch second ``t``."""
        s = self._series.get(symbol)
        if s is None or not prints:
            return
        first = prints[0][0]
        b = s.sec
        if b is None or b[0] != t:
            if b is not None:
                s.seconds.append((b[0], b[1], b[2], b[3], b[4], b[5]))
            b = s.sec = [t, first, first, first, first, 0]
        m = t - t % 60
        c = s.minute
        if c is None or c[0] != m:
            if c is not None:
                done = (c[0], c[1], c[2], c[3], c[4], c[5])
                s.minutes.append(done)
                s.unsaved.append(done)
            c = s.minute = [m, first, first, first, first, 0]
        for price, size, _ in prints:
            if price > b[2]:
                b[2] = price
            elif price < b[3]:
                b[3] = price
            if price > c[2]:
                c[2] = price
            elif price < c[3]:
                c[3] = price
            b[5] += size
            c[5] += size
        b[4] = c[4] = prints[-1][0]

    def add(self, symbol: str, t: int, price: int, size: int) -> None:
        """One trade of ``size`` at ``price`` (a grid index) at epoch second ``t``."""
        self.add_prints(symbol, t, ((price, size, 0),))

    # ------------------------------------------------------------------ persistence

    def take_unsaved(self, *, partial: bool = False) -> list[tuple[str, RawBar]]:
        """Finished minutes not saved yet (with ``partial``, the running minute too, at close)."""
        out: list[tuple[str, RawBar]] = []
        for sym, s in self._series.items():
            out.extend((sym, b) for b in s.unsaved)
            s.unsaved = []
            if partial and s.minute is not None:
                b = s.minute
                out.append((sym, (b[0], b[1], b[2], b[3], b[4], b[5])))
        return out

    def grid(self, symbol: str) -> Grid | None:
        s = self._series.get(symbol)
        return s.grid if s is not None else None

    def _ensure_history(self, symbol: str, s: _Series) -> None:
        if s.history:
            return
        s.history = True
        saved = self._load(symbol) if self._load is not None else []
        first_live = s.minutes[0][0] if s.minutes else (s.minute[0] if s.minute else s.origin)
        saved = [b for b in saved if b[0] < first_live or b[0] == first_live]
        history: list[RawBar] = list(saved)
        if s.synthesize:
            keep_from = s.origin - KEEP_DAYS * 86400
            history = [b for b in history if b[0] >= keep_from]
            if history:
                last = history[-1]
                gap = (s.origin - last[0]) // 60 - 1
                if gap > 0:
                    bridge = self._walk(symbol, last[0] + 60, gap, end=s.opening, start=last[4], s=s)
                    history += bridge
                    if self._save is not None:
                        self._save(symbol, bridge)
            else:
                n = HISTORY_DAYS * 1440
                history = self._walk(symbol, s.origin - n * 60, n, end=s.opening, start=None, s=s)
                if self._save is not None:
                    self._save(symbol, history)
        if history and s.minutes and history[-1][0] == s.minutes[0][0]:
            s.minutes[0] = _merge(history.pop(), s.minutes[0])
        elif history and not s.minutes and s.minute is not None and history[-1][0] == s.minute[0]:
            h = history.pop()
            b = s.minute
            s.minute = [h[0], h[1], max(h[2], b[2]), min(h[3], b[3]), b[4], h[5] + b[5]]
        s.minutes[:0] = history

    def _walk(self, symbol: str, first: int, n: int, *, end: int, start: int | None, s: _Series) -> list[RawBar]:
        """``n`` one-minute bars from minute ``first``, closing the last one exactly at ``end``.

        With ``start`` the first bar opens there (a bridge between two known prices); without,
        the walk runs backwards from ``end``.
        """
        rng = random.Random(f"{self._seed}:{symbol}:bars:{first}")
        gauss = rng.gauss
        sigma = max(s.sigma, 0.5)
        steps = [gauss(0, sigma) for _ in range(n)]
        total = sum(steps)
        origin = float(start) if start is not None else end - total
        drift = (end - origin - total) / n  # zero without a start; a bridge's correction with one
        path = [origin]
        p = origin
        for x in steps:
            p += x + drift
            path.append(p)
        bars: list[RawBar] = []
        wick = sigma / 2
        vol = max(s.volume, 1.0)
        for k in range(n):
            o = max(1, round(path[k]))
            c = max(1, round(path[k + 1])) if k < n - 1 else end
            hi = max(o, c) + abs(round(gauss(0, wick)))
            lo = max(1, min(o, c) - abs(round(gauss(0, wick))))
            v = max(1, round(vol * math.exp(gauss(0, 0.4))))
            bars.append((first + 60 * k, o, hi, lo, c, v))
        return bars

    # ------------------------------------------------------------------ requests

    def bars(self, symbol: str, timeframe: Timeframe, start: datetime, end: datetime, now: datetime) -> list[Bar]:
        """Bars of ``symbol`` starting in ``[start, end)``, oldest first (see :meth:`check`)."""
        s = self._series.get(symbol)
        if s is None:
            raise BrokerError(f"the paper market has no bars for {symbol}", sent=False)
        t0, t1 = int(start.timestamp()), int(end.timestamp())
        if timeframe is Timeframe.S1:
            raw = list(s.seconds)
            if s.sec is not None:
                raw.append((s.sec[0], s.sec[1], s.sec[2], s.sec[3], s.sec[4], s.sec[5]))
            earliest = max(s.origin, int(now.timestamp()) - SECONDS_KEPT)
            if t1 <= earliest:
                raise BrokerError(
                    f"1s bars of {symbol} reach back to {_iso(earliest)} only (the last hour of this paper "
                    "session); ask for 1m bars or longer",
                    sent=False,
                )
            rows = [b for b in raw if t0 <= b[0] < t1]
        else:
            self._ensure_history(symbol, s)
            raw = list(s.minutes)
            if s.minute is not None:
                b = s.minute
                raw.append((b[0], b[1], b[2], b[3], b[4], b[5]))
            earliest = raw[0][0] if raw else s.origin
            if t1 <= earliest:
                what = "history" if s.synthesize else "bars (no history before this session for options)"
                raise BrokerError(f"paper {what} of {symbol} starts at {_iso(earliest)}", sent=False)
            if timeframe is Timeframe.D1:
                rows = _days(raw, s.daily, t0, t1)
            else:
                rows = _buckets(raw, timeframe.seconds, t0, t1)
        price = s.grid.price
        seconds = timeframe.seconds
        return [
            Bar(
                symbol=symbol,
                start=datetime.fromtimestamp(b[0], UTC),
                open=price(b[1]),
                high=price(b[2]),
                low=price(b[3]),
                close=price(b[4]),
                volume=b[5],
                seconds=seconds,
            )
            for b in rows
        ]


def check_range(timeframe: object, start: datetime, end: datetime | None, now: datetime) -> tuple[Timeframe, datetime]:
    """The timeframe and end of a valid bars request; a BrokerError says what is wrong with it."""
    if not isinstance(timeframe, Timeframe):
        try:
            timeframe = Timeframe.parse(str(timeframe))
        except ValueError as exc:
            raise BrokerError(str(exc), sent=False) from None
    for label, t in (("start", start), ("end", end)):
        if t is not None and (not isinstance(t, datetime) or t.tzinfo is None):
            raise BrokerError(f"bars: {label} must be a timezone-aware datetime, got {t!r}", sent=False)
    end = end or now
    if end <= start:
        raise BrokerError(f"bars: end {end.isoformat()} is not after start {start.isoformat()}", sent=False)
    if start > now:
        raise BrokerError(f"bars: start {start.isoformat()} is in the future", sent=False)
    count = (min(end, now + timedelta(seconds=timeframe.seconds)) - start).total_seconds() / timeframe.seconds
    if count > MAX_BARS:
        raise BrokerError(
            f"bars: {count:,.0f} {timeframe.value} bars is more than the {MAX_BARS:,} one request returns; "
            "ask for a shorter range or a longer timeframe",
            sent=False,
        )
    return timeframe, end


def _iso(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def _merge(a: RawBar, b: RawBar) -> RawBar:
    """Two parts of one bar (``a`` first)."""
    return (a[0], a[1], max(a[2], b[2]), min(a[3], b[3]), b[4], a[5] + b[5])


def _buckets(raw: list[RawBar], seconds: int, t0: int, t1: int) -> list[RawBar]:
    """Bars of ``seconds`` (a multiple of 60) from minutes, starting in ``[t0, t1)``."""
    out: list[RawBar] = []
    lo = t0 - t0 % seconds
    cur: RawBar | None = None
    for b in raw:
        if b[0] < lo:
            continue
        if b[0] >= t1:
            break
        start = b[0] - b[0] % seconds
        if cur is not None and cur[0] == start:
            cur = (start, cur[1], max(cur[2], b[2]), min(cur[3], b[3]), b[4], cur[5] + b[5])
        else:
            if cur is not None:
                out.append(cur)
            cur = (start, b[1], b[2], b[3], b[4], b[5])
    if cur is not None:
        out.append(cur)
    return [b for b in out if b[0] >= t0]


def _day_of(t: int, rule: str) -> tuple[int, int]:
    """The trading day containing epoch second ``t``: (start, end) epoch seconds."""
    if rule == "cme":
        local = datetime.fromtimestamp(t, _CHICAGO)
        day = local.date() if local.hour >= 17 else local.date() - timedelta(days=1)
        start = datetime(day.year, day.month, day.day, 17, tzinfo=_CHICAGO)
    else:
        local = datetime.fromtimestamp(t, _NEW_YORK)
        day = local.date()
        start = datetime(day.year, day.month, day.day, tzinfo=_NEW_YORK)
    nxt = day + timedelta(days=1)
    end = start.replace(year=nxt.year, month=nxt.month, day=nxt.day)
    return int(start.timestamp()), int(end.timestamp())


def _days(raw: list[RawBar], rule: str, t0: int, t1: int) -> list[RawBar]:
    out: list[RawBar] = []
    cur: RawBar | None = None
    end = -1
    for b in raw:
        if b[0] >= t1:
            break
        if cur is None or b[0] >= end:
            if cur is not None:
                out.append(cur)
            start, end = _day_of(b[0], rule)
            cur = (start, b[1], b[2], b[3], b[4], b[5])
        else:
            cur = (cur[0], cur[1], max(cur[2], b[2]), min(cur[3], b[3]), b[4], cur[5] + b[5])
    if cur is not None:
        out.append(cur)
    return [b for b in out if t0 <= b[0] < t1]

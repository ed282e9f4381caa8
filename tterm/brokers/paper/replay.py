"""A replay of a CSV of bars or ticks as the paper market (see ``examples/replay/README.md``).

A plain synchronous object like the walk: the broker takes one quote at a time. A tick row's last
trade must lie within its own bid and ask (a row that shows the market after the trade leaves
``last`` empty), so a replay shows the same consistent picture as the walk.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from tterm.core.instruments import InstrumentMaster, UnknownSymbol
from tterm.core.models import Instrument, ModelError, Quote


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
    if last is not None and not bid <= last <= ask:
        raise ReplayError(
            f"{where}: last {last} is outside bid {bid} / ask {ask}; a row's last trade lies within its "
            "own quote (leave last empty on a row that only moves the quote)"
        )
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

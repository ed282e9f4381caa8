"""The simulated market behind the fake ProjectX gateway: contracts, quotes, depth and bars.

Contracts use the gateway's own ids and names (``brokers-tradovate-projectx.md`` B5): id
``CON.F.US.<root>.<month code><2-digit year>`` where the internal root can differ from the CME
root (ES is ``EP``, NQ is ``ENQ``, CL is ``CLE``, GC is ``GCE``: public TopstepX client code shows
these), name ``<CME root><month code><1-digit year>`` (``MESZ6``), symbolId ``F.US.<root>``.
The front month for each root follows the fake's clock. Prices are ``Decimal`` on the tick grid.

Market-hub shapes (B11.3): ``GatewayQuote`` data is an object (``symbol`` is the symbolId),
``GatewayTrade`` data is an array of prints, ``GatewayDepth`` data is an array of DOM entries
``{timestamp, type, price, volume, currentVolume}`` with DomType numbers.
"""

from __future__ import annotations

import calendar
import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

JSON = dict[str, Any]
MONTH_CODES = "FGHJKMNQUVXZ"
QUARTERLY = (3, 6, 9, 12)
BIMONTHLY = (2, 4, 6, 8, 10, 12)
MONTHLY = tuple(range(1, 13))

# DomType (B7.1).
DOM_ASK, DOM_BID, DOM_BEST_ASK, DOM_BEST_BID, DOM_TRADE, DOM_RESET = 1, 2, 3, 4, 5, 6
DOM_NEW_BEST_BID, DOM_NEW_BEST_ASK = 9, 10
DEPTH_LEVELS = 10

# Bar units (B6; 7 = Tick is in the swagger and in vendor-updates.md).
UNIT_SECONDS = {1: 1, 2: 60, 3: 3600, 4: 86400, 5: 7 * 86400}
UNIT_MONTH, UNIT_TICK = 6, 7


@dataclass(frozen=True)
class RootSpec:
    """What the gateway knows about a product: its internal root, CME root, tick and fees."""

    root: str  # gateway root inside the id (EP, ENQ, CLE, GCE, MES, MNQ)
    symbol: str  # CME root used in the contract name (ES, NQ, CL, GC, MES, MNQ)
    title: str
    tick_size: Decimal
    tick_value: Decimal
    fee: Decimal  # per contract per side (a fake's number; TopstepX publishes its own table)
    cycle: tuple[int, ...]
    base: Decimal  # where the simulated market starts


ROOTS: dict[str, RootSpec] = {
    s.symbol: s
    for s in (
        RootSpec(
            "MES",
            "MES",
            "Micro E-mini S&P 500",
            Decimal("0.25"),
            Decimal("1.25"),
            Decimal("0.37"),
            QUARTERLY,
            Decimal("6000.00"),
        ),
        RootSpec(
            "MNQ",
            "MNQ",
            "Micro E-mini Nasdaq-100",
            Decimal("0.25"),
            Decimal("0.50"),
            Decimal("0.37"),
            QUARTERLY,
            Decimal("21000.00"),
        ),
        RootSpec(
            "EP",
            "ES",
            "E-mini S&P 500",
            Decimal("0.25"),
            Decimal("12.50"),
            Decimal("1.40"),
            QUARTERLY,
            Decimal("6000.00"),
        ),
        RootSpec(
            "ENQ",
            "NQ",
            "E-mini NASDAQ-100",
            Decimal("0.25"),
            Decimal("5.00"),
            Decimal("1.40"),
            QUARTERLY,
            Decimal("21000.00"),
        ),
        RootSpec(
            "CLE", "CL", "Crude Light", Decimal("0.01"), Decimal("10.00"), Decimal("1.50"), MONTHLY, Decimal("70.00")
        ),
        RootSpec(
            "GCE", "GC", "Gold", Decimal("0.10"), Decimal("10.00"), Decimal("1.50"), BIMONTHLY, Decimal("2400.00")
        ),
    )
}


def iso(ts: datetime) -> str:
    """The gateway's timestamp form: ``2025-11-24T14:30:00.123+00:00``."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds")


def _third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def front_month(spec: RootSpec, today: date) -> tuple[int, int]:
    """(year, month) of the contract a trader would be in on ``today`` (a simple roll rule:
    index futures roll 8 days before the third Friday, the others a month ahead)."""
    for year in (today.year, today.year + 1):
        for month in spec.cycle:
            if spec.cycle is QUARTERLY:
                if today < _third_friday(year, month) - timedelta(days=8):
                    return year, month
            elif spec.cycle is MONTHLY:
                if (year, month) > (today.year, today.month + (1 if today.day >= 15 else 0)):
                    return year, month
            elif (year, month) > (today.year, today.month):
                return year, month
    raise AssertionError("unreachable")


@dataclass
class Contract:
    id: str
    name: str
    description: str
    symbol_id: str
    symbol_name: str
    spec: RootSpec
    active: bool = True

    @property
    def tick(self) -> Decimal:
        return self.spec.tick_size

    @property
    def point_value(self) -> Decimal:
        return self.spec.tick_value / self.spec.tick_size

    def on_tick(self, price: Decimal) -> bool:
        return price % self.tick == 0

    def round(self, price: Decimal) -> Decimal:
        return (price / self.tick).to_integral_value(ROUND_HALF_UP) * self.tick

    def json(self) -> JSON:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "tickSize": float(self.spec.tick_size),
            "tickValue": float(self.spec.tick_value),
            "activeContract": self.active,
            "symbolId": self.symbol_id,
        }


def make_contract(symbol: str, year: int, month: int, *, active: bool = True) -> Contract:
    spec = ROOTS[symbol]
    code = MONTH_CODES[month - 1]
    return Contract(
        id=f"CON.F.US.{spec.root}.{code}{year % 100:02d}",
        name=f"{spec.symbol}{code}{year % 10}",
        description=f"{spec.title}: {calendar.month_name[month]} {year}",
        symbol_id=f"F.US.{spec.root}",
        symbol_name=f"/{spec.symbol}",
        spec=spec,
        active=active,
    )


@dataclass
class Quote:
    """The touch and session figures of one contract."""

    bid: Decimal
    ask: Decimal
    last: Decimal
    settle: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    volume: int = 0
    updated: datetime = field(default_factory=lambda: datetime.now(UTC))


def _noise(*parts: Any) -> float:
    """A stable pseudo-random number in [0, 1) from its inputs (bars must not change between calls)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class Market:
    """Quotes, depth and history for the fake's contracts. The fake's test API moves it."""

    def __init__(self, contracts: list[Contract], now: datetime) -> None:
        self.contracts: dict[str, Contract] = {c.id: c for c in contracts}
        self.quotes: dict[str, Quote] = {}
        for c in contracts:
            base = c.spec.base
            self.quotes[c.id] = Quote(
                bid=base,
                ask=base + c.tick,
                last=base,
                settle=base,
                open=base,
                high=base + c.tick,
                low=base,
                updated=now,
            )

    # ------------------------------------------------------------------ lookup

    def get(self, contract_id: str) -> Contract | None:
        return self.contracts.get(contract_id)

    def search(self, text: str) -> list[Contract]:
        """Contract/search: matches the name, the CME or gateway root, or the description
        (case-insensitive), active contracts first; at most 20 (B5)."""
        needle = text.strip().upper()
        found = [
            c
            for c in self.contracts.values()
            if needle
            and (
                needle in c.name.upper()
                or needle in (c.spec.symbol, c.spec.root)
                or needle in c.description.upper()
                or needle == c.id.upper()
            )
        ]
        found.sort(key=lambda c: (not c.active, c.name))
        return found[:20]

    # ------------------------------------------------------------------ moving the market

    def set_touch(self, contract_id: str, bid: Decimal, ask: Decimal, last: Decimal | None, now: datetime) -> None:
        q = self.quotes[contract_id]
        q.bid, q.ask = bid, ask
        if last is not None:
            q.last = last
            q.high, q.low = max(q.high, last), min(q.low, last)
        q.updated = now

    def print_trade(self, contract_id: str, price: Decimal, size: int, now: datetime) -> None:
        q = self.quotes[contract_id]
        q.last = price
        q.volume += size
        q.high, q.low = max(q.high, price), min(q.low, price)
        q.updated = now

    # ------------------------------------------------------------------ hub payloads

    def quote_json(self, contract_id: str) -> JSON:
        c, q = self.contracts[contract_id], self.quotes[contract_id]
        change = q.last - q.settle
        return {
            "symbol": c.symbol_id,
            "symbolName": c.symbol_name,
            "lastPrice": float(q.last),
            "bestBid": float(q.bid),
            "bestAsk": float(q.ask),
            "change": float(change),
            # UNCERTAIN: percent (0.25 = a quarter of a percent) rather than a fraction.
            "changePercent": round(float(change / q.settle * 100), 4) if q.settle else 0.0,
            "open": float(q.open),
            "high": float(q.high),
            "low": float(q.low),
            "volume": q.volume,
            "lastUpdated": iso(q.updated),
            "timestamp": iso(q.updated),
        }

    @staticmethod
    def quote_delta(full: JSON, previous: JSON | None) -> JSON:
        """The partial quote the gateway sends after the first one (B11.3, U13): ``symbol``
        and the timestamps always, other fields only when they changed."""
        if previous is None:
            return dict(full)
        keep = {"symbol", "timestamp", "lastUpdated"}
        return {k: v for k, v in full.items() if k in keep or previous.get(k) != v}

    def levels(self, contract_id: str) -> dict[tuple[int, float], int]:
        """The simulated book: ten levels a side around the touch, sizes a stable function of price."""
        c, q = self.contracts[contract_id], self.quotes[contract_id]
        book: dict[tuple[int, float], int] = {}
        for i in range(DEPTH_LEVELS):
            for side, price in ((DOM_BID, q.bid - i * c.tick), (DOM_ASK, q.ask + i * c.tick)):
                ticks = int(price / c.tick)
                book[(side, float(price))] = 5 + int(_noise(c.id, side, ticks) * 40)
        return book

    @staticmethod
    def depth_entries(
        now: datetime, book: dict[tuple[int, float], int], previous: dict[tuple[int, float], int] | None
    ) -> list[JSON]:
        """DOM entries: a Reset and the whole book the first time, then changed levels (volume 0
        removes a level) and NewBestBid/NewBestAsk when the touch moved.

        UNCERTAIN: ``currentVolume`` here repeats the resting size at the level; the docs name
        the field without saying how it differs from ``volume``."""
        ts = iso(now)

        def entry(kind: int, price: float, volume: int) -> JSON:
            return {"timestamp": ts, "type": kind, "price": price, "volume": volume, "currentVolume": volume}

        best_bid = max(p for s, p in book if s == DOM_BID)
        best_ask = min(p for s, p in book if s == DOM_ASK)
        if previous is None:
            out = [entry(DOM_RESET, 0.0, 0)]
            out += [entry(s, p, v) for (s, p), v in sorted(book.items())]
            out += [entry(DOM_BEST_BID, best_bid, book[(DOM_BID, best_bid)])]
            out += [entry(DOM_BEST_ASK, best_ask, book[(DOM_ASK, best_ask)])]
            return out
        out = [entry(s, p, 0) for (s, p) in sorted(previous) if (s, p) not in book]
        out += [entry(s, p, v) for (s, p), v in sorted(book.items()) if previous.get((s, p)) != v]
        old_bid = max((p for s, p in previous if s == DOM_BID), default=None)
        old_ask = min((p for s, p in previous if s == DOM_ASK), default=None)
        if old_bid != best_bid:
            out.append(entry(DOM_NEW_BEST_BID, best_bid, book[(DOM_BID, best_bid)]))
        if old_ask != best_ask:
            out.append(entry(DOM_NEW_BEST_ASK, best_ask, book[(DOM_ASK, best_ask)]))
        return out

    def tape_entry(self, contract_id: str, price: Decimal, size: int, aggressor: int, now: datetime) -> JSON:
        """One GatewayTrade print: ``type`` 0 = buyer was the aggressor, 1 = seller (B11.3)."""
        return {
            "symbolId": self.contracts[contract_id].symbol_id,
            "price": float(price),
            "timestamp": iso(now),
            "type": aggressor,
            "volume": size,
        }

    # ------------------------------------------------------------------ history

    def bars(
        self,
        contract_id: str,
        start: datetime,
        end: datetime,
        unit: int,
        unit_number: int,
        limit: int,
        include_partial: bool,
        now: datetime,
    ) -> list[JSON]:
        """History/retrieveBars: bars starting in ``[start, end)``, the newest ``limit`` of them,
        newest first as the docs' examples show. The series is a stable function of time, so
        pages and repeated calls agree. No session calendar: bars run around the clock."""
        c = self.contracts[contract_id]
        starts = self._bar_starts(start, end, unit, unit_number, limit, now, include_partial)
        return [self._bar(c, t0, unit, unit_number) for t0 in starts]

    @staticmethod
    def _bar_starts(
        start: datetime, end: datetime, unit: int, n: int, limit: int, now: datetime, partial: bool
    ) -> list[datetime]:
        """Bar start times in ``[start, end)`` and not after ``now``, newest first, at most ``limit``."""
        top = min(end - timedelta(microseconds=1), now)
        out: list[datetime] = []
        if top < start:
            return out
        if unit == UNIT_MONTH:

            def month(i: int) -> datetime:
                return datetime(i // 12, i % 12 + 1, 1, tzinfo=UTC)

            i = top.year * 12 + top.month - 1
            i -= i % n
            while len(out) < limit and month(i) >= start:
                if partial or month(i + n) <= now:
                    out.append(month(i))
                i -= n
            return out
        # Tick bars (unit 7): one bar per ``n`` ticks, and the fake prints a tick every second.
        span = timedelta(seconds=n if unit == UNIT_TICK else UNIT_SECONDS[unit] * n)
        anchor = datetime(2000, 1, 3, tzinfo=UTC)  # a Monday: weekly bars start on Mondays
        k = math.floor((top - anchor) / span)
        while len(out) < limit and anchor + k * span >= start:
            t = anchor + k * span
            if partial or t + span <= now:
                out.append(t)
            k -= 1
        return out

    def _bar(self, c: Contract, t0: datetime, unit: int, n: int) -> JSON:
        spec = c.spec
        epoch = t0.timestamp()
        # A slow wave around the base price plus bounded noise, in ticks.
        wave = math.sin(epoch / 86400.0) * 40 + math.sin(epoch / 3600.0) * 8
        center = spec.base + c.round(Decimal(str(wave)) * spec.tick_size)
        span = 2 + int(_noise(c.id, unit, n, epoch, "span") * 10)
        o = center + (int(_noise(c.id, unit, n, epoch, "o") * span) - span // 2) * spec.tick_size
        cl = center + (int(_noise(c.id, unit, n, epoch, "c") * span) - span // 2) * spec.tick_size
        high = max(o, cl) + int(_noise(c.id, unit, n, epoch, "h") * 4) * spec.tick_size
        low = min(o, cl) - int(_noise(c.id, unit, n, epoch, "l") * 4) * spec.tick_size
        volume = n if unit == UNIT_TICK else 10 + int(_noise(c.id, unit, n, epoch, "v") * 990)
        return {"t": iso(t0), "o": float(o), "h": float(high), "l": float(low), "c": float(cl), "v": volume}

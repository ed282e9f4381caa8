"""ProjectX market-hub JSON <-> core models: merged quotes, the depth book, prints and bars (B6, B11.3).

Pure state and functions, no I/O.

- GatewayQuote ``(contractId, data)``: updates may be partial (U13): fields that did not change
  are missing, so :class:`QuoteBook` keeps the last full quote per contract and merges into it.
- GatewayDepth ``(contractId, [entries])``: DomType 6 Reset clears the book; 1/3/10 are ask
  levels, 2/4/9 bid levels (volume 0 removes one); trades, fills, low and high are not levels.
  The array may hold ``null`` elements. :class:`DepthBook` turns it into full Depth pictures.
- GatewayTrade ``(contractId, [prints])``: ``type`` 0 = the buyer lifted the offer, 1 = the
  seller hit the bid.
- History/retrieveBars: at most 20,000 bars a call, order not promised (examples are newest
  first), so bars are sorted by ``t``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from tterm.brokers.projectx.mapping import dec, parse_time, whole
from tterm.core.models import Bar, Depth, DepthLevel, Quote, Side, Timeframe, Trade, utcnow

JSON = dict[str, Any]
MAX_BARS = 20_000

#: Timeframe -> (unit, unitNumber): 1 Second, 2 Minute, 3 Hour, 4 Day (B6).
UNITS: dict[Timeframe, tuple[int, int]] = {
    Timeframe.S1: (1, 1),
    Timeframe.M1: (2, 1),
    Timeframe.M5: (2, 5),
    Timeframe.M15: (2, 15),
    Timeframe.H1: (3, 1),
    Timeframe.D1: (4, 1),
}

ASK_TYPES = frozenset({1, 3, 10})
BID_TYPES = frozenset({2, 4, 9})
RESET = 6


def _price(value: Any) -> Decimal | None:
    d = dec(value)
    return d if d is not None and d > 0 else None


class QuoteBook:
    """The merged GatewayQuote fields of every contract, as Quotes named by tterm symbol."""

    def __init__(self) -> None:
        self._fields: dict[str, JSON] = {}
        self._last: dict[str, Quote] = {}
        self._sizes: dict[str, tuple[int, int]] = {}

    def merge(self, contract_id: str, data: Mapping[str, Any], symbol: str, now: datetime | None = None) -> Quote:
        merged = self._fields.setdefault(contract_id, {})
        merged.update({k: v for k, v in data.items() if v is not None})
        last = _price(merged.get("lastPrice"))
        change = dec(merged.get("change"))
        bid_size, ask_size = self._sizes.get(contract_id, (0, 0))
        quote = Quote(
            symbol=symbol,
            bid=_price(merged.get("bestBid")),
            ask=_price(merged.get("bestAsk")),
            last=last,
            bid_size=bid_size,
            ask_size=ask_size,
            volume=whole(merged.get("volume")),
            prev_close=(last - change) if last is not None and change is not None else None,
            ts=parse_time(merged.get("timestamp")) or parse_time(merged.get("lastUpdated")) or now or utcnow(),
        )
        self._last[symbol] = quote
        return quote

    def sizes(self, contract_id: str, bid_size: int, ask_size: int) -> None:
        """The touch sizes, from the depth book (GatewayQuote carries none)."""
        self._sizes[contract_id] = (bid_size, ask_size)

    def last(self, symbol: str) -> Quote | None:
        return self._last.get(symbol)

    def fields(self, contract_id: str) -> JSON:
        return dict(self._fields.get(contract_id, {}))

    def drop(self, contract_id: str, symbol: str) -> None:
        self._fields.pop(contract_id, None)
        self._last.pop(symbol, None)
        self._sizes.pop(contract_id, None)


class DepthBook:
    """Price levels per contract, built from GatewayDepth entries."""

    def __init__(self, levels: int = 10) -> None:
        self.levels = levels
        self._bids: dict[str, dict[Decimal, int]] = {}
        self._asks: dict[str, dict[Decimal, int]] = {}

    def apply(self, contract_id: str, entries: Iterable[Any], symbol: str, now: datetime | None = None) -> Depth:
        bids = self._bids.setdefault(contract_id, {})
        asks = self._asks.setdefault(contract_id, {})
        ts = None
        for e in entries:
            if not isinstance(e, Mapping):
                continue  # B11.3: the array may contain nulls
            kind = whole(e.get("type"))
            ts = parse_time(e.get("timestamp")) or ts
            if kind == RESET:
                bids.clear()
                asks.clear()
                continue
            price = _price(e.get("price"))
            if price is None:
                continue
            volume = whole(e.get("volume"))
            side = asks if kind in ASK_TYPES else bids if kind in BID_TYPES else None
            if side is None:
                continue
            if volume > 0:
                side[price] = volume
            else:
                side.pop(price, None)
            # A new best level clears the other side's crossed levels (an old touch never cancelled).
            if kind in (4, 9):
                for p in [p for p in asks if p <= price]:
                    del asks[p]
            elif kind in (3, 10):
                for p in [p for p in bids if p >= price]:
                    del bids[p]
        return Depth(
            symbol=symbol,
            bids=tuple(DepthLevel(p, v) for p, v in sorted(bids.items(), reverse=True)[: self.levels]),
            asks=tuple(DepthLevel(p, v) for p, v in sorted(asks.items())[: self.levels]),
            ts=ts or now or utcnow(),
        )

    def drop(self, contract_id: str) -> None:
        self._bids.pop(contract_id, None)
        self._asks.pop(contract_id, None)


def trades_of(prints: Any, symbol: str) -> list[Trade]:
    """GatewayTrade prints as Trades."""
    out = []
    for p in prints if isinstance(prints, list) else [prints]:
        if not isinstance(p, Mapping):
            continue
        price = _price(p.get("price"))
        if price is None:
            continue
        kind = p.get("type")
        out.append(
            Trade(
                symbol=symbol,
                price=price,
                size=whole(p.get("volume")),
                aggressor=Side.BUY if kind == 0 else Side.SELL if kind == 1 else None,
                ts=parse_time(p.get("timestamp")) or utcnow(),
            )
        )
    return out


def bars_of(rows: Iterable[Mapping[str, Any]], symbol: str, timeframe: Timeframe) -> list[Bar]:
    out = []
    for r in rows:
        t = parse_time(r.get("t"))
        o, h, lo, c = (dec(r.get(k)) for k in ("o", "h", "l", "c"))
        if t is None or o is None or h is None or lo is None or c is None:
            continue
        out.append(Bar(symbol=symbol, start=t, open=o, high=h, low=lo, close=c, volume=whole(r.get("v")),
                       seconds=timeframe.seconds))  # fmt: skip
    out.sort(key=lambda b: b.start)
    return out

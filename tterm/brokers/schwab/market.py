"""Schwab Market Data JSON <-> tterm's core models: streamer fields, quotes, chains, candles.

The market half of the adapter's mapping (orders and accounts are in
:mod:`tterm.brokers.schwab.mapping`); pure functions and one merge buffer, no I/O.

- Streamer (A8.3, A8.4): LEVELONE services send numeric field ids as strings and, after the first
  snapshot of a key, only the fields that changed. :class:`QuoteBook` merges them per service and
  key and turns the merged fields into a Quote.
- ``/quotes`` (A6.5), ``/chains`` (A6.8: strikes map to lists of contracts; live data names
  prices ``bid/ask/last/mark`` where the spec says ``bidPrice/...``: both are accepted; Greeks may
  be the string ``"NaN"``), ``/expirationchain`` (``expirationDate`` or ``expiration``),
  ``/pricehistory`` (A6.7, epoch-millisecond bar starts), ``/instruments``, and previewOrder
  (A6.6: a rejected preview still answers HTTP 200, the result is in ``rejects``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from tterm.brokers.schwab.mapping import dec, error_text, objects, whole
from tterm.core.models import (
    Bar,
    ChainRow,
    Greeks,
    Instrument,
    OptionChain,
    OptionQuote,
    OptionRight,
    OrderPreview,
    Quote,
    Timeframe,
    utcnow,
)

JSON = dict[str, Any]
EQUITIES, OPTIONS, FUTURES = "LEVELONE_EQUITIES", "LEVELONE_OPTIONS", "LEVELONE_FUTURES"

# A8.4 field ids: (bid, ask, last, bid size, ask size, volume, previous close, quote time ms).
FIELD_IDS: dict[str, dict[str, int]] = {
    EQUITIES: {"bid": 1, "ask": 2, "last": 3, "bid_size": 4, "ask_size": 5, "volume": 8, "close": 12, "time": 34},
    OPTIONS: {"bid": 2, "ask": 3, "last": 4, "bid_size": 16, "ask_size": 17, "volume": 8, "close": 7, "time": 38},
    FUTURES: {"bid": 1, "ask": 2, "last": 3, "bid_size": 4, "ask_size": 5, "volume": 8, "close": 14, "time": 10},
}
#: The fields tterm asks for per service (0, the key, always first: SDEV says it must be sent).
FIELDS: dict[str, str] = {
    EQUITIES: "0,1,2,3,4,5,8,12,34,35",
    OPTIONS: "0,2,3,4,7,8,9,10,16,17,28,29,30,31,32,35,37,38",
    FUTURES: "0,1,2,3,4,5,8,10,11,14",
}


def _ms(value: Any) -> datetime | None:
    n = dec(value)
    if n is None or n <= 0:
        return None
    return datetime.fromtimestamp(float(n) / 1000, UTC)


def _price(value: Any) -> Decimal | None:
    d = dec(value)
    return d if d is not None and d > 0 else None


# --------------------------------------------------------------------------- streamer quotes


class QuoteBook:
    """The merged LEVELONE fields of every key (A8.3: "Change" delivery), as Quotes."""

    def __init__(self) -> None:
        self._fields: dict[tuple[str, str], dict[int, Any]] = {}
        self._last: dict[str, Quote] = {}

    def merge(self, service: str, entry: Mapping[str, Any], symbol: str) -> Quote | None:
        """Fold one ``content`` entry in; the Quote as it now stands (None for an unknown service)."""
        ids = FIELD_IDS.get(service)
        if ids is None:
            return None
        key = str(entry.get("key") or "")
        merged = self._fields.setdefault((service, key), {})
        for k, v in entry.items():
            if k.isdigit():
                merged[int(k)] = v
        quote = Quote(
            symbol=symbol,
            bid=_price(merged.get(ids["bid"])),
            ask=_price(merged.get(ids["ask"])),
            last=_price(merged.get(ids["last"])),
            bid_size=whole(merged.get(ids["bid_size"])),
            ask_size=whole(merged.get(ids["ask_size"])),
            volume=whole(merged.get(ids["volume"])),
            prev_close=_price(merged.get(ids["close"])),
            ts=_ms(merged.get(ids["time"])) or utcnow(),
        )
        self._last[symbol] = quote
        return quote

    def fields(self, service: str, key: str) -> dict[int, Any]:
        return dict(self._fields.get((service, key), {}))

    def last(self, symbol: str) -> Quote | None:
        return self._last.get(symbol)

    def drop(self, service: str, key: str, symbol: str) -> None:
        self._fields.pop((service, key), None)
        self._last.pop(symbol, None)


def quote_of(symbol: str, body: Mapping[str, Any]) -> Quote | None:
    """One ``/quotes`` entry (A6.5) as a Quote."""
    q = body.get("quote")
    if not isinstance(q, Mapping):
        return None
    return Quote(
        symbol=symbol,
        bid=_price(q.get("bidPrice")),
        ask=_price(q.get("askPrice")),
        last=_price(q.get("lastPrice")),
        bid_size=whole(q.get("bidSize")),
        ask_size=whole(q.get("askSize")),
        volume=whole(q.get("totalVolume")),
        prev_close=_price(q.get("closePrice")),
        ts=_ms(q.get("quoteTime")) or utcnow(),
    )


# --------------------------------------------------------------------------- option chains (A6.8)


def _greek(value: Any) -> float | None:
    d = dec(value)  # "NaN" and -999.0 (Schwab's "no value") become None
    if d is None or d == -999:
        return None
    f = float(d)
    return f if math.isfinite(f) else None


def expirations_of(body: Any) -> tuple[date, ...]:
    """``/expirationchain``: the expiries (``expirationDate`` in the example, ``expiration`` in the schema)."""
    out: set[date] = set()
    rows = body.get("expirationList") if isinstance(body, Mapping) else None
    for row in rows or ():
        if not isinstance(row, Mapping):
            continue
        text = row.get("expirationDate") or row.get("expiration")
        try:
            out.add(date.fromisoformat(str(text)[:10]))
        except ValueError:
            continue
    return tuple(sorted(out))


def _contract(c: Mapping[str, Any], inst: Instrument) -> OptionQuote:
    g = Greeks(
        delta=_greek(c.get("delta")),
        gamma=_greek(c.get("gamma")),
        theta=_greek(c.get("theta")),
        vega=_greek(c.get("vega")),
        rho=_greek(c.get("rho")),
        source="broker",
    )
    vol = _greek(c.get("volatility"))
    return OptionQuote(
        instrument=inst,
        bid=_price(c.get("bid", c.get("bidPrice"))),
        ask=_price(c.get("ask", c.get("askPrice"))),
        last=_price(c.get("last", c.get("lastPrice"))),
        bid_size=whole(c.get("bidSize")),
        ask_size=whole(c.get("askSize")),
        volume=whole(c.get("totalVolume")),
        open_interest=whole(c.get("openInterest")),
        iv=vol / 100 if vol is not None and vol > 0 else None,  # Schwab quotes volatility in percent
        greeks=None if all(v is None for v in (g.delta, g.gamma, g.theta, g.vega)) else g,
        ts=_ms(c.get("quoteTimeInLong")) or utcnow(),
    )


def chain_of(
    body: Any,
    *,
    underlying: str,
    expiry: date,
    expiries: tuple[date, ...],
    broker: str,
    instrument: Callable[[str, Mapping[str, Any]], Instrument | None],
) -> OptionChain:
    """The strikes of ``expiry`` from a ``/chains`` answer, calls and puts side by side."""
    if not isinstance(body, Mapping):
        raise ValueError("the option chain answer is not an object")
    if str(body.get("status") or "SUCCESS") != "SUCCESS":
        raise ValueError(f"Schwab has no option chain for {underlying} (status {body.get('status')})")
    rows: dict[Decimal, dict[str, OptionQuote]] = {}
    for side, key in (("call", "callExpDateMap"), ("put", "putExpDateMap")):
        for exp_key, strikes in (body.get(key) or {}).items():
            if str(exp_key)[:10] != expiry.isoformat() or not isinstance(strikes, Mapping):
                continue
            for contracts in strikes.values():
                for c in contracts if isinstance(contracts, list) else [contracts]:
                    if not isinstance(c, Mapping) or not c.get("symbol"):
                        continue
                    inst = instrument(str(c["symbol"]), c)
                    if inst is None or inst.strike is None:
                        continue
                    if (inst.right is OptionRight.CALL) != (side == "call"):
                        continue
                    rows.setdefault(inst.strike, {})[side] = _contract(c, inst)
    raw_under = body.get("underlying")
    under: Mapping[str, Any] = raw_under if isinstance(raw_under, Mapping) else {}
    spot = _price(body.get("underlyingPrice")) or _price(under.get("last")) or _price(under.get("mark"))
    return OptionChain(
        underlying=underlying,
        expiry=expiry,
        expiries=expiries or (expiry,),
        rows=tuple(ChainRow(strike=k, call=v.get("call"), put=v.get("put")) for k, v in sorted(rows.items())),
        underlying_price=spot,
        broker=broker,
    )


# --------------------------------------------------------------------------- price history (A5, A6.7)


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """``/pricehistory`` parameters for a timeframe, and how many vendor bars make one of ours."""

    period_type: str
    frequency_type: str
    frequency: int
    group: int = 1

    def params(self, symbol: str, start: datetime, end: datetime) -> JSON:
        return {
            "symbol": symbol,
            "periodType": self.period_type,
            "frequencyType": self.frequency_type,
            "frequency": self.frequency,
            "startDate": int(start.timestamp() * 1000),
            "endDate": int(end.timestamp() * 1000),
            "needExtendedHoursData": "false",
        }


#: Minute bars come in 1, 5, 10, 15 and 30; daily and longer in 1. An hour is two 30-minute bars.
HISTORY: dict[Timeframe, HistoryQuery] = {
    Timeframe.M1: HistoryQuery("day", "minute", 1),
    Timeframe.M5: HistoryQuery("day", "minute", 5),
    Timeframe.M15: HistoryQuery("day", "minute", 15),
    Timeframe.H1: HistoryQuery("day", "minute", 30, group=2),
    Timeframe.D1: HistoryQuery("year", "daily", 1),
}


def bars_of(body: Any, symbol: str, timeframe: Timeframe, start: datetime, end: datetime) -> list[Bar]:
    """Candles as Bars, oldest first, those starting in ``[start, end)``; hours built from half hours
    on clock-hour boundaries."""
    candles = body.get("candles") if isinstance(body, Mapping) else None
    raw: list[Bar] = []
    for c in candles or ():
        if not isinstance(c, Mapping):
            continue
        ts = _ms(c.get("datetime"))
        o, h, lo, cl = (dec(c.get(k)) for k in ("open", "high", "low", "close"))
        if ts is None or o is None or h is None or lo is None or cl is None:
            continue
        raw.append(
            Bar(
                symbol=symbol,
                start=ts,
                open=o,
                high=h,
                low=lo,
                close=cl,
                volume=whole(c.get("volume")),
                seconds=timeframe.seconds,
            )
        )
    raw.sort(key=lambda b: b.start)
    if HISTORY[timeframe].group > 1:
        raw = _hours(raw, symbol)
    return [b for b in raw if start <= b.start < end]


def _hours(bars: Iterable[Bar], symbol: str) -> list[Bar]:
    out: list[Bar] = []
    for b in bars:
        hour = b.start.replace(minute=0, second=0, microsecond=0)
        if out and out[-1].start == hour:
            p = out[-1]
            out[-1] = Bar(
                symbol=symbol,
                start=hour,
                open=p.open,
                high=max(p.high, b.high),
                low=min(p.low, b.low),
                close=b.close,
                volume=p.volume + b.volume,
                seconds=3600,
            )
        else:
            out.append(
                Bar(
                    symbol=symbol,
                    start=hour,
                    open=b.open,
                    high=b.high,
                    low=b.low,
                    close=b.close,
                    volume=b.volume,
                    seconds=3600,
                )
            )
    return out


def history_windows(timeframe: Timeframe, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Intraday history comes at most ten days a call (periodType day allows up to 10): longer
    spans are asked for in ten-day slices."""
    if HISTORY[timeframe].period_type != "day":
        return [(start, end)]
    out = []
    step = timedelta(days=10)
    t = start
    while t < end:
        out.append((t, min(t + step, end)))
        t += step
    return out


# --------------------------------------------------------------------------- instruments and previews


def instruments_of(body: Any) -> list[JSON]:
    """``/instruments`` rows: symbol, description, assetType (EQUITY, ETF, ...)."""
    rows = body.get("instruments") if isinstance(body, Mapping) else body
    return [dict(r) for r in objects(rows) if r.get("symbol")]


def preview_of(body: Any, broker: str) -> OrderPreview:
    if not isinstance(body, Mapping):
        return OrderPreview(broker=broker, accepted=False, rejects=(error_text(200, body),))
    result = body.get("orderValidationResult") or {}

    def texts(kind: str) -> tuple[str, ...]:
        return tuple(
            str(r.get("message") or r.get("activityMessage") or r.get("validationRuleName") or kind)
            for r in result.get(kind) or ()
            if isinstance(r, Mapping)
        )

    strategy = body.get("orderStrategy") or {}
    balance = strategy.get("orderBalance") or {}
    rejects = texts("rejects")
    accepted = not rejects and str(strategy.get("status") or "ACCEPTED") != "REJECTED"
    return OrderPreview(
        broker=broker,
        accepted=accepted,
        rejects=rejects,
        warnings=texts("warns") + texts("reviews") + texts("alerts"),
        order_value=dec(balance.get("orderValue")),
        commission=dec(balance.get("projectedCommission")),
        buying_power_after=dec(balance.get("projectedBuyingPower")),
    )

"""The fake Tastytrade market: instruments, quotes that tests move, options priced from the underlying.

Symbology follows the vendor (``shared/reference/brokers-schwab-tastytrade.md`` B5 and the
instruments guide on developer.tastytrade.com):

- equities ``SPY`` (streamer symbol ``SPY``);
- equity options in OCC form with the root padded to six characters, ``SPY   261127C00600000``,
  streamed as ``.SPY261127C600`` (the TT-SDK's ``Option.occ_to_streamer_symbol`` mapping);
- futures ``/ESZ6``, streamed as ``/ESZ26:XCME`` (two-digit year plus the exchange code);
- future options ``./ESZ6 EW4X6 261127C6000``, streamed as ``./EW4X26C6000:XCME``.

Prices are Decimals on each instrument's tick grid. Options are priced with Black-Scholes
(Black-76 for future options) from the underlying's mid, so moving the underlying moves every
option on it, and their Greeks. Nothing here touches sockets: the server asks for JSON shapes
and dxFeed event records, and is told which symbols changed.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any

JSON = dict[str, Any]

MONTH_CODES = "FGHJKMNQUVXZ"
RATE = 0.04
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso(ts: datetime) -> str:
    """The vendor's timestamp form, ``2026-11-24T15:00:00.000+00:00``."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}+00:00"


def ms(ts: datetime) -> int:
    return int((ts - EPOCH).total_seconds() * 1000)


def dec(value: Decimal | int | float | str) -> str:
    """A decimal as the vendor writes it: a string, at least one decimal place (``"600.0"``)."""
    d = Decimal(str(value))
    text = format(d.normalize(), "f") if d == d.to_integral() else format(d, "f")
    if "." not in text:
        text += ".0"
    return text


def tick_for(price: Decimal, table: list[tuple[Decimal | None, Decimal]]) -> Decimal:
    """The tick that applies at ``price``: the first ``(threshold, value)`` row with price below it."""
    for threshold, value in table:
        if threshold is None or price < threshold:
            return value
    return table[-1][1]


def on_grid(price: Decimal, tick: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    return ((price / tick).to_integral_value(rounding=rounding) * tick).quantize(tick)


def tick_json(table: list[tuple[Decimal | None, Decimal]]) -> list[JSON]:
    rows: list[JSON] = []
    for threshold, value in table:
        row: JSON = {"value": dec(value)}
        if threshold is not None:
            row["threshold"] = dec(threshold)
        rows.append(row)
    return rows


# ====================================================================== instruments


@dataclass
class Quote:
    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None
    bid_size: int = 100
    ask_size: int = 100
    last_size: int = 0
    volume: int = 0
    turnover: Decimal = Decimal(0)
    day_open: Decimal | None = None
    day_high: Decimal | None = None
    day_low: Decimal | None = None
    prev_close: Decimal | None = None
    change_seq: int = 0

    @property
    def mid(self) -> Decimal | None:
        if self.bid is None or self.ask is None:
            return self.last
        return (self.bid + self.ask) / 2

    def mark(self) -> Decimal | None:
        return self.mid if self.mid is not None else self.last


@dataclass
class Instrument:
    """One tradeable thing. ``kind`` is the vendor's ``instrument-type``."""

    symbol: str
    kind: str  # "Equity", "Equity Option", "Future", "Future Option"
    streamer: str
    underlying: str  # the underlying's symbol (itself for equities and futures)
    multiplier: Decimal
    ticks: list[tuple[Decimal | None, Decimal]]
    description: str = ""
    id: int = 0
    # options
    option_type: str | None = None  # "C" / "P"
    strike: Decimal | None = None
    expires: datetime | None = None
    root: str = ""
    option_root: str = ""
    # futures
    product: str = ""
    exchange_code: str = ""
    vol: float = 0.2
    extra: JSON = field(default_factory=dict)

    @property
    def is_option(self) -> bool:
        return self.option_type is not None

    def tick(self, price: Decimal) -> Decimal:
        return tick_for(abs(price), self.ticks)


@dataclass
class Bar:
    time: int  # ms, start of the bar
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int


PERIOD_MS = {"t": 0, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
PERIOD_MS["mo"] = 30 * 86_400_000
PERIOD_MS["y"] = 365 * 86_400_000


def parse_candle_symbol(symbol: str) -> tuple[str, int, dict[str, str]] | None:
    """``AAPL{=5m,tho=true}`` -> ``("AAPL", 300000, {"tho": "true"})``; None if not a candle symbol."""
    if not symbol.endswith("}") or "{" not in symbol:
        return None
    base, _, attrs = symbol[:-1].partition("{")
    period_ms = None
    options: dict[str, str] = {}
    for part in attrs.split(","):
        key, _, value = part.partition("=")
        if key == "":  # the period attribute is written "=5m"
            digits = "".join(ch for ch in value if ch.isdigit())
            unit = value[len(digits) :].lower()
            if unit not in PERIOD_MS or unit == "t":
                return None
            period_ms = int(digits or "1") * PERIOD_MS[unit]
        else:
            options[key] = value
    if period_ms is None or not base:
        return None
    return base, period_ms, options


def _d(x: float) -> Decimal:
    return Decimal(repr(round(x, 6)))


def _norm_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def _norm_pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def black_scholes(
    spot: float, strike: float, years: float, vol: float, kind: str, *, futures: bool = False
) -> dict[str, float]:
    """Price and Greeks (theta per day, vega and rho per vol/rate point), Black-76 for futures."""
    years = max(years, 1e-6)
    rate = RATE
    carry = 0.0 if futures else rate
    sq = vol * math.sqrt(years)
    d1 = (math.log(spot / strike) + (carry + 0.5 * vol * vol) * years) / sq
    d2 = d1 - sq
    disc = math.exp(-rate * years)
    fwd_disc = math.exp((carry - rate) * years)
    if kind == "C":
        price = spot * fwd_disc * _norm_cdf(d1) - strike * disc * _norm_cdf(d2)
        delta = fwd_disc * _norm_cdf(d1)
        rho = strike * years * disc * _norm_cdf(d2) / 100
        theta_core = -rate * strike * disc * _norm_cdf(d2)
    else:
        price = strike * disc * _norm_cdf(-d2) - spot * fwd_disc * _norm_cdf(-d1)
        delta = -fwd_disc * _norm_cdf(-d1)
        rho = -strike * years * disc * _norm_cdf(-d2) / 100
        theta_core = rate * strike * disc * _norm_cdf(-d2)
    gamma = fwd_disc * _norm_pdf(d1) / (spot * sq)
    vega = spot * fwd_disc * _norm_pdf(d1) * math.sqrt(years) / 100
    theta = (-spot * fwd_disc * _norm_pdf(d1) * vol / (2 * math.sqrt(years)) + theta_core) / 365
    return {"price": max(price, 0.0), "delta": delta, "gamma": gamma, "theta": theta, "vega": vega, "rho": rho}


EQUITY_TICKS = [(Decimal("1"), Decimal("0.0001")), (None, Decimal("0.01"))]
PENNY_OPTIONS = [(None, Decimal("0.01"))]
PENNY_PILOT = [(Decimal("3"), Decimal("0.01")), (None, Decimal("0.05"))]
ES_OPTION_TICKS = [(Decimal("5"), Decimal("0.05")), (None, Decimal("0.25"))]

EQUITIES = {
    # symbol: (description, listed market, ETF, price, vol, option ticks, strike step)
    "SPY": ("SPDR S&P 500 ETF TRUST", "ARCX", True, Decimal("600.00"), 0.18, PENNY_OPTIONS, Decimal("5")),
    "AAPL": ("APPLE INC", "XNAS", False, Decimal("230.00"), 0.25, PENNY_PILOT, Decimal("5")),
    "QQQ": ("INVESCO QQQ TRUST", "XNAS", True, Decimal("520.00"), 0.20, PENNY_OPTIONS, Decimal("5")),
}
FUTURE_PRODUCTS = {
    # code: (description, tick, multiplier, margin per contract, price, vol)
    "ES": ("E Mini S&P", Decimal("0.25"), Decimal("50"), Decimal("16500"), Decimal("6000.00"), 0.16),
    "MES": ("Micro E-mini S&P 500", Decimal("0.25"), Decimal("5"), Decimal("1650"), Decimal("6000.00"), 0.16),
}


class Market:
    """Instruments by vendor symbol and streamer symbol, their quotes, and bar history."""

    def __init__(self, now: datetime) -> None:
        self.start = now
        self.instruments: dict[str, Instrument] = {}
        self.by_streamer: dict[str, Instrument] = {}
        self.quotes: dict[str, Quote] = {}
        self.bars: dict[tuple[str, int], list[Bar]] = {}
        self.futures_dates: dict[str, date] = {}
        self.margins: dict[str, Decimal] = {}
        self._next_id = 1000
        self._seed(now)

    # ------------------------------------------------------------------ seeding

    def _add(self, inst: Instrument) -> Instrument:
        self._next_id += 1
        inst.id = self._next_id
        self.instruments[inst.symbol] = inst
        self.by_streamer[inst.streamer] = inst
        return inst

    def _seed(self, now: datetime) -> None:
        today = now.date()
        fridays = [today + timedelta(days=(4 - today.weekday()) % 7 + 7 * k) for k in range(2)]
        fridays = [f if f > today else f + timedelta(days=7) for f in fridays]
        monthly = _third_friday(today.replace(day=1) + timedelta(days=32))
        expirations = sorted({*fridays, monthly})
        for sym, (desc, market, etf, price, vol, option_ticks, step) in EQUITIES.items():
            eq = self._add(Instrument(sym, "Equity", sym, sym, Decimal(1), EQUITY_TICKS, desc, vol=vol))
            eq.extra = {"listed-market": market, "is-etf": etf, "option-ticks": option_ticks}
            self.quotes[sym] = Quote(bid=price - Decimal("0.01"), ask=price + Decimal("0.01"), last=price)
            self._seed_day(sym, price)
            atm = on_grid(price, step)
            for exp in expirations:
                kind = "Regular" if exp == monthly else "Weekly"
                for k in range(-5, 6):
                    strike = atm + step * k
                    for cp in ("C", "P"):
                        occ = f"{sym:<6}{exp:%y%m%d}{cp}{int(strike * 1000):08d}"
                        streamer = f".{sym}{exp:%y%m%d}{cp}{_strike_text(strike)}"
                        opt = Instrument(
                            occ,
                            "Equity Option",
                            streamer,
                            sym,
                            Decimal(100),
                            option_ticks,
                            option_type=cp,
                            strike=strike,
                            expires=datetime.combine(exp, time(21, 0), UTC),
                            root=sym,
                            vol=vol,
                        )
                        opt.extra = {"expiration-type": kind}
                        self._add(opt)
        for code, (desc, tick, mult, margin, price, vol) in FUTURE_PRODUCTS.items():
            self.margins[code] = margin
            for offset, month_date in enumerate(_quarterlies(today, 2)):
                letter = MONTH_CODES[month_date.month - 1]
                sym = f"/{code}{letter}{month_date.year % 10}"
                streamer = f"/{code}{letter}{month_date.year % 100:02d}:XCME"
                fut = self._add(Instrument(sym, "Future", streamer, sym, mult, [(None, tick)], desc, product=code))
                fut.exchange_code = "XCME"
                fut.expires = datetime.combine(month_date, time(13, 30), UTC)
                fut.vol = vol
                fut.extra = {"active-month": offset == 0, "next-active-month": offset == 1}
                self.futures_dates[sym] = month_date
                fprice = price + Decimal(50) * offset
                self.quotes[sym] = Quote(bid=fprice - tick, ask=fprice, last=fprice, bid_size=20, ask_size=20)
                self._seed_day(sym, fprice)
                if offset == 0 and code == "ES":
                    self._seed_future_options(fut, fridays[0], fprice)

    def _seed_future_options(self, fut: Instrument, exp: date, price: Decimal) -> None:
        week = (exp.day - 1) // 7 + 1
        root = f"EW{week}"
        contract = f"{root}{MONTH_CODES[exp.month - 1]}{exp.year % 10}"
        stream_contract = f"{root}{MONTH_CODES[exp.month - 1]}{exp.year % 100:02d}"
        atm = on_grid(price, Decimal(25))
        for k in range(-4, 5):
            strike = atm + Decimal(25) * k
            for cp in ("C", "P"):
                sym = f".{fut.symbol} {contract} {exp:%y%m%d}{cp}{_strike_text(strike)}"
                streamer = f"./{stream_contract}{cp}{_strike_text(strike)}:XCME"
                opt = Instrument(
                    sym,
                    "Future Option",
                    streamer,
                    fut.symbol,
                    fut.multiplier,
                    ES_OPTION_TICKS,
                    option_type=cp,
                    strike=strike,
                    expires=datetime.combine(exp, time(21, 0), UTC),
                    root=fut.product,
                    option_root=root,
                    product=fut.product,
                    vol=fut.vol,
                )
                opt.exchange_code = "XCME"
                opt.extra = {"contract": contract, "expiration-type": "Weekly"}
                self._add(opt)

    def _seed_day(self, symbol: str, price: Decimal) -> None:
        q = self.quotes[symbol]
        inst = self.instruments[symbol]
        q.prev_close = on_grid(price * Decimal("0.995"), inst.tick(price))
        q.day_open = on_grid(price * Decimal("0.998"), inst.tick(price))
        q.day_high = max(price, q.day_open)
        q.day_low = min(price, q.day_open)
        q.volume = 1_000_000 if inst.kind == "Equity" else 150_000

    # ------------------------------------------------------------------ lookups

    def get(self, symbol: str) -> Instrument | None:
        return self.instruments.get(symbol)

    def options_on(self, underlying: str) -> list[Instrument]:
        return [i for i in self.instruments.values() if i.is_option and i.underlying == underlying]

    def futures_of(self, product: str) -> list[Instrument]:
        return [i for i in self.instruments.values() if i.kind == "Future" and i.product == product]

    # ------------------------------------------------------------------ prices

    def quote(self, symbol: str, now: datetime) -> Quote:
        """The current quote; options are priced now from their underlying."""
        inst = self.instruments[symbol]
        if not inst.is_option:
            return self.quotes[symbol]
        greeks = self.greeks(symbol, now)
        theo = Decimal(repr(greeks["price"]))
        tick = inst.tick(theo)
        bid = max(Decimal(0), on_grid(theo - tick, tick, ROUND_FLOOR))
        ask = max(on_grid(theo + tick, tick, ROUND_CEILING), bid + tick)
        cached = self.quotes.get(symbol)
        seq = self.quotes[inst.underlying].change_seq
        if cached is None or cached.change_seq != seq or (cached.bid, cached.ask) != (bid, ask):
            last = on_grid(theo, tick)
            cached = Quote(bid=bid, ask=ask, last=last, bid_size=10, ask_size=10, change_seq=seq)
            cached.prev_close = last
            self.quotes[symbol] = cached
        return cached

    def greeks(self, symbol: str, now: datetime) -> dict[str, float]:
        inst = self.instruments[symbol]
        assert inst.strike is not None and inst.expires is not None and inst.option_type is not None
        spot = self.quotes[inst.underlying].mid
        assert spot is not None
        years = (inst.expires - now).total_seconds() / (365 * 86400)
        out = black_scholes(
            float(spot), float(inst.strike), years, inst.vol, inst.option_type, futures=inst.kind == "Future Option"
        )
        out["volatility"] = inst.vol
        return out

    def set_quote(
        self,
        symbol: str,
        *,
        bid: Decimal | None = None,
        ask: Decimal | None = None,
        last: Decimal | None = None,
        bid_size: int | None = None,
        ask_size: int | None = None,
    ) -> None:
        inst = self.instruments[symbol]
        if inst.is_option:
            raise ValueError(f"{symbol} is an option: move its underlying {inst.underlying} instead")
        q = self.quotes[symbol]
        for name, value in (("bid", bid), ("ask", ask), ("last", last)):
            if value is not None:
                if value != on_grid(value, inst.tick(value)):
                    raise ValueError(f"{name} {value} is off the {inst.tick(value)} tick grid of {symbol}")
                setattr(q, name, value)
        if bid_size is not None:
            q.bid_size = bid_size
        if ask_size is not None:
            q.ask_size = ask_size
        if q.bid is not None and q.ask is not None and q.bid > q.ask:
            raise ValueError(f"crossed quote for {symbol}: bid {q.bid} > ask {q.ask}")
        q.change_seq += 1

    def trade(self, symbol: str, price: Decimal, size: int, now: datetime) -> None:
        """A print: last, day high/low/volume, and the live bar of every period being built."""
        q = self.quotes[symbol]
        q.last = price
        q.last_size = size
        q.volume += size
        q.turnover += price * size
        q.day_high = price if q.day_high is None else max(q.day_high, price)
        q.day_low = price if q.day_low is None else min(q.day_low, price)
        q.change_seq += 1
        stamp = ms(now)
        for (sym, period), bars in self.bars.items():
            if sym != symbol:
                continue
            start = stamp - stamp % period
            if bars and bars[-1].time == start:
                bar = bars[-1]
                bar.high, bar.low, bar.close = max(bar.high, price), min(bar.low, price), price
                bar.volume += size
            else:
                bars.append(Bar(start, price, price, price, price, size))

    def history(self, symbol: str, period_ms: int, now: datetime, limit: int = 500) -> list[Bar]:
        """Deterministic bars ending at the current bar: a gentle walk that ends at the last price."""
        key = (symbol, period_ms)
        if key in self.bars:
            return self.bars[key]
        inst = self.instruments[symbol]
        q = self.quote(symbol, now)
        close = q.last or q.mid or Decimal(1)
        now_ms = ms(now)
        current = now_ms - now_ms % period_ms
        seed = zlib.crc32(f"{symbol}/{period_ms}".encode())
        bars: list[Bar] = []
        price = close
        for k in range(limit):
            t = current - k * period_ms
            tick = inst.tick(price)
            swing = Decimal(((seed >> (k % 24)) % 7) - 3) * tick
            wiggle = Decimal((seed + k) % 4 + 1) * tick
            bar_close = price
            bar_open = on_grid(max(price - swing, tick), tick)
            high = max(bar_open, bar_close) + wiggle
            low = max(min(bar_open, bar_close) - wiggle, tick)
            bars.append(Bar(t, bar_open, high, low, bar_close, 1000 + (seed + 17 * k) % 5000))
            price = bar_open
        bars.reverse()
        self.bars[key] = bars
        return bars


def _strike_text(strike: Decimal) -> str:
    """A strike as the streamer writes it: ``600``, ``2.5``."""
    return format(strike.normalize(), "f") if strike != strike.to_integral() else str(int(strike))


def _third_friday(any_day: date) -> date:
    first = any_day.replace(day=1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def _quarterlies(today: date, count: int) -> list[date]:
    out: list[date] = []
    year, month = today.year, today.month
    while len(out) < count:
        if month in (3, 6, 9, 12):
            expiry = _third_friday(date(year, month, 1))
            if expiry > today:
                out.append(expiry)
        month += 1
        if month == 13:
            year, month = year + 1, 1
    return out


def round_money(x: Decimal) -> Decimal:
    return x.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)

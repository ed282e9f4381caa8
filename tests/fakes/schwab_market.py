"""The market behind the fake Schwab server: instruments, quotes, options priced from the underlying.

Pure state and JSON builders, no HTTP: :mod:`tests.fakes.schwab` serves them. Facts from
``shared/reference/brokers-schwab-tastytrade.md`` part A (A5, A6.5, A6.7, A6.8, A7) and
schwab-py 1.5.1's request builders. Everything is deterministic: prices move only when a test
calls :meth:`Market.set_price`; option quotes are Black-Scholes values of the underlying's mid on
the shared clock, rounded outward to the option's tick table.

Option symbols are Schwab's (OCC) form: the root padded with spaces to six characters, YYMMDD,
C or P, and the strike times 1000 in eight digits: ``AAPL  261218C00190000``.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

JSON = dict[str, Any]
NEW_YORK = ZoneInfo("America/New_York")
CENT = Decimal("0.01")
OPTION_RE = re.compile(r"^(?P<root>[A-Z][A-Z0-9.]{0,5}) *(?P<ymd>\d{6})(?P<cp>[CP])(?P<strike>\d{8})$")
MONTH_CODES = "FGHJKMNQUVXZ"
EQUITY_SIZE, FUTURE_SIZE, OPTION_SIZE = 1000, 20, 50  # default sizes at the touch
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


class UnknownSymbol(ValueError):
    """A symbol the market has never listed."""


class ExpiredSeries(ValueError):
    """An option symbol that parses and was listed, but whose expiration has passed."""


def ms(ts: datetime) -> int:
    """Epoch milliseconds (Schwab's market-data time unit)."""
    return int(ts.timestamp() * 1000)


def num(value: Decimal | None) -> float | None:
    """A JSON number for a Decimal (Schwab sends prices as JSON numbers)."""
    return None if value is None else float(value)


def stable_int(*parts: object) -> int:
    """A stable pseudo-random integer from the parts (not Python's salted hash)."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


# ====================================================================== option symbols


@dataclass(frozen=True)
class OptionKey:
    root: str
    expiry: date
    put_call: str  # "C" or "P"
    strike: Decimal

    @property
    def symbol(self) -> str:
        return build_option_symbol(self.root, self.expiry, self.put_call, self.strike)


def parse_option_symbol(symbol: str) -> OptionKey | None:
    """``AAPL  261218C00190000`` -> its parts, or None when it is not an option symbol."""
    m = OPTION_RE.match(symbol)
    if m is None:
        return None
    # Schwab pads the root to six characters exactly; a shorter padding is a different string.
    if len(symbol) != 21:
        return None
    ymd = m["ymd"]
    try:
        expiry = date(2000 + int(ymd[:2]), int(ymd[2:4]), int(ymd[4:]))
    except ValueError:
        return None
    strike = (Decimal(m["strike"]) / 1000).normalize()
    return OptionKey(m["root"], expiry, m["cp"], strike)


def build_option_symbol(root: str, expiry: date, put_call: str, strike: Decimal) -> str:
    return f"{root:<6}{expiry:%y%m%d}{put_call}{int(strike * 1000):08d}"


def strike_key(strike: Decimal) -> str:
    """The chain map's strike key: ``"190.0"``, ``"192.5"`` (A6.8)."""
    text = f"{strike.normalize():f}"
    return text if "." in text else text + ".0"


# ====================================================================== Black-Scholes


def _ncdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _npdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class Greeks:
    value: float
    delta: float
    gamma: float
    theta: float  # per calendar day
    vega: float  # per volatility point (1%)
    rho: float  # per rate point (1%)


def black_scholes(spot: float, strike: float, years: float, vol: float, rate: float, call: bool) -> Greeks:
    """European Black-Scholes value and Greeks (no dividends), Schwab's display units."""
    if years <= 0 or vol <= 0 or spot <= 0:
        intrinsic = max(0.0, spot - strike) if call else max(0.0, strike - spot)
        delta = (1.0 if spot > strike else 0.0) if call else (-1.0 if spot < strike else 0.0)
        return Greeks(intrinsic, delta, 0.0, 0.0, 0.0, 0.0)
    sq = math.sqrt(years)
    d1 = (math.log(spot / strike) + (rate + 0.5 * vol * vol) * years) / (vol * sq)
    d2 = d1 - vol * sq
    disc = math.exp(-rate * years)
    if call:
        value = spot * _ncdf(d1) - strike * disc * _ncdf(d2)
        delta = _ncdf(d1)
        theta = -spot * _npdf(d1) * vol / (2 * sq) - rate * strike * disc * _ncdf(d2)
        rho = strike * years * disc * _ncdf(d2)
    else:
        value = strike * disc * _ncdf(-d2) - spot * _ncdf(-d1)
        delta = _ncdf(d1) - 1.0
        theta = -spot * _npdf(d1) * vol / (2 * sq) + rate * strike * disc * _ncdf(-d2)
        rho = -strike * years * disc * _ncdf(-d2)
    gamma = _npdf(d1) / (spot * vol * sq)
    vega = spot * _npdf(d1) * sq
    return Greeks(value, delta, gamma, theta / 365.0, vega / 100.0, rho / 100.0)


# ====================================================================== ticks


def option_tick(price: Decimal, penny: bool) -> Decimal:
    """Single-leg option ticks: penny program $0.01 below $3 and $0.05 above; others $0.05/$0.10
    (thinkorswim's "Invalid Price" rejection text names the nickel/dime rule)."""
    if penny:
        return Decimal("0.01") if price < 3 else Decimal("0.05")
    return Decimal("0.05") if price < 3 else Decimal("0.10")


def equity_tick(price: Decimal) -> Decimal:
    """Equities: $0.01 at or above $1, $0.0001 below (Reg NMS sub-penny rule)."""
    return CENT if price >= 1 else Decimal("0.0001")


def on_tick(price: Decimal, tick: Decimal) -> bool:
    return price % tick == 0


def round_down(value: Decimal, tick: Decimal) -> Decimal:
    return (value / tick).to_integral_value(ROUND_FLOOR) * tick


def round_up(value: Decimal, tick: Decimal) -> Decimal:
    return (value / tick).to_integral_value(ROUND_CEILING) * tick


# ====================================================================== instruments


@dataclass
class Book:
    """Top of book and the day's statistics for one symbol."""

    bid: Decimal
    ask: Decimal
    last: Decimal
    bid_size: int = EQUITY_SIZE
    ask_size: int = EQUITY_SIZE
    last_size: int = 100
    volume: int = 0
    open: Decimal = Decimal(0)
    high: Decimal = Decimal(0)
    low: Decimal = Decimal(0)
    close: Decimal = Decimal(0)  # previous session's close
    quote_ms: int = 0
    trade_ms: int = 0
    status: str = "Normal"

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


@dataclass
class Equity:
    symbol: str
    cusip: str
    description: str
    exchange: str  # exchange code: Q NASDAQ, N NYSE, P NYSE Arca
    exchange_name: str
    book: Book
    sub_type: str = "COE"  # COE common stock, ETF exchange-traded fund
    penny: bool = True  # in the penny program (option ticks)
    vol: float = 0.30  # implied volatility of its options
    strike_step: Decimal = Decimal("5")
    shortable: bool = True
    marginable: bool = True
    optionable: bool = True
    strikes: tuple[Decimal, ...] = ()


@dataclass
class Future:
    root: str  # "/ES"
    active: str  # "/ESZ26"
    description: str
    tick: Decimal
    multiplier: Decimal
    expiration: datetime
    book: Book


@dataclass
class OptionState:
    """What an option has beyond its model price: volume, open interest, test overrides."""

    volume: int = 0
    open_interest: int = 0
    last: Decimal | None = None
    last_size: int = 0
    close: Decimal | None = None
    bid_size: int = OPTION_SIZE
    ask_size: int = OPTION_SIZE
    override: tuple[Decimal, Decimal] | None = None  # (bid, ask) pinned by a test


@dataclass
class OptionQuote:
    key: OptionKey
    underlying: Equity
    bid: Decimal
    ask: Decimal
    theo: Decimal
    greeks: Greeks
    vol: float
    days: int
    state: OptionState

    @property
    def mark(self) -> Decimal:
        return ((self.bid + self.ask) / 2).quantize(CENT, ROUND_HALF_UP)

    @property
    def last(self) -> Decimal:
        return self.state.last if self.state.last is not None else self.state.close or self.mark


DEFAULT_EQUITIES = (
    # symbol, cusip, description, exchange code, exchange name, price, sub type, penny, vol, strike step
    ("AAPL", "037833100", "Apple Inc", "Q", "NASDAQ", "190.00", "COE", True, 0.28, "5"),
    ("MSFT", "594918104", "Microsoft Corp", "Q", "NASDAQ", "417.00", "COE", True, 0.25, "5"),
    ("SPY", "78462F103", "SPDR S&P 500", "P", "NYSE Arca", "600.00", "ETF", True, 0.16, "5"),
    ("F", "345370860", "Ford Motor Co", "N", "NYSE", "11.20", "COE", False, 0.35, "1"),
    ("PENY", "99999P109", "Penny Stock Corp", "Q", "NASDAQ", "0.4500", "COE", False, 0.90, "0.5"),
)
DEFAULT_FUTURES = (
    # root, description, tick, multiplier, price
    ("/ES", "E-mini S&P 500 Index Futures", "0.25", "50", "6000.00"),
    ("/NQ", "E-mini Nasdaq-100 Index Futures", "0.25", "20", "21000.00"),
    ("/MES", "Micro E-mini S&P 500 Index Futures", "0.25", "5", "6000.00"),
)


class Market:
    """Every listed instrument and its quote. Times come from ``now()`` (the shared fake clock)."""

    def __init__(self, now: Any, *, rate: float = 0.045) -> None:
        self.now = now
        self.rate = rate
        self.equities: dict[str, Equity] = {}
        self.futures: dict[str, Future] = {}
        self.options: dict[str, OptionState] = {}
        self._seed()

    # ------------------------------------------------------------------ listing

    def _seed(self) -> None:
        t = ms(self.now())
        for sym, cusip, desc, exch, exch_name, price, sub, penny, vol, step in DEFAULT_EQUITIES:
            self.list_equity(
                sym,
                Decimal(price),
                cusip=cusip,
                description=desc,
                exchange=exch,
                exchange_name=exch_name,
                sub_type=sub,
                penny=penny,
                vol=vol,
                strike_step=Decimal(step),
            )
        expiry_month = self.today().replace(day=1) + timedelta(days=32)
        third_friday = _third_friday(expiry_month.year, expiry_month.month)
        code = f"{MONTH_CODES[third_friday.month - 1]}{third_friday.year % 100:02d}"
        for root, desc, tick, mult, price in DEFAULT_FUTURES:
            p = Decimal(price)
            t_ = Decimal(tick)
            book = Book(
                bid=p - t_,
                ask=p,
                last=p,
                bid_size=FUTURE_SIZE,
                ask_size=FUTURE_SIZE,
                last_size=1,
                open=p,
                high=p,
                low=p,
                close=p,
                quote_ms=t,
                trade_ms=t,
            )
            expiration = datetime.combine(third_friday, time(9, 30), NEW_YORK)
            self.futures[root] = Future(
                root,
                root + code,
                f"{desc},{MONTHS[third_friday.month - 1].title()}-{third_friday.year},ETH",
                t_,
                Decimal(mult),
                expiration,
                book,
            )

    def list_equity(self, symbol: str, price: Decimal, **kw: Any) -> Equity:
        """List an equity at ``price`` (bid and ask one tick around it) with strikes around it."""
        t = ms(self.now())
        tick = equity_tick(price)
        book = Book(
            bid=price - tick,
            ask=price + tick,
            last=price,
            open=price,
            high=price,
            low=price,
            close=price,
            quote_ms=t,
            trade_ms=t,
        )
        eq = Equity(
            symbol=symbol,
            cusip=kw.pop("cusip", f"{stable_int(symbol) % 10**9:09d}"),
            description=kw.pop("description", f"{symbol} Corp"),
            exchange=kw.pop("exchange", "Q"),
            exchange_name=kw.pop("exchange_name", "NASDAQ"),
            book=book,
            **kw,
        )
        step = eq.strike_step
        lo = max(step, round_down(price * Decimal("0.6"), step))
        hi = round_up(price * Decimal("1.4"), step)
        count = int((hi - lo) / step) + 1
        eq.strikes = tuple(lo + i * step for i in range(count))
        self.equities[symbol] = eq
        return eq

    def today(self) -> date:
        return self.now().astimezone(NEW_YORK).date()

    def session_open(self, session: str) -> bool:
        """Whether an order of this session can execute now (New York time; weekdays; holidays are
        not modelled): NORMAL 9:30-16:00, AM 7:00-9:30, PM 16:00-20:00, SEAMLESS 7:00-20:00."""
        ny = self.now().astimezone(NEW_YORK)
        if ny.weekday() >= 5:
            return False
        t = ny.time()
        spans = {
            "NORMAL": ((time(9, 30), time(16, 0)),),
            "AM": ((time(7, 0), time(9, 30)),),
            "PM": ((time(16, 0), time(20, 0)),),
            "SEAMLESS": ((time(7, 0), time(20, 0)),),
        }[session]
        return any(a <= t < b for a, b in spans)

    def expirations(self, eq: Equity) -> list[date]:
        """Weekly Fridays for five weeks, then the monthly third Fridays for six months (all listed)."""
        today = self.today()
        out: set[date] = set()
        d = today
        while d.weekday() != 4:
            d += timedelta(days=1)
        for i in range(5):
            out.add(d + timedelta(days=7 * i))
        y, m = today.year, today.month
        for _ in range(7):
            tf = _third_friday(y, m)
            if tf >= today:
                out.add(tf)
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return sorted(out)

    def was_listed(self, key: OptionKey) -> bool:
        """An expired series the market would have listed: a Friday, a listed strike, in the last year."""
        eq = self.equities.get(key.root)
        return (
            eq is not None
            and eq.optionable
            and key.expiry.weekday() == 4
            and key.strike in eq.strikes
            and self.today() - timedelta(days=366) <= key.expiry < self.today()
        )

    # ------------------------------------------------------------------ lookup

    def kind(self, symbol: str) -> str:
        """EQUITY, OPTION or FUTURE; raises UnknownSymbol / ExpiredSeries."""
        if symbol in self.equities:
            return "EQUITY"
        if symbol.startswith("/"):
            self.future(symbol)
            return "FUTURE"
        self.option_key(symbol)
        return "OPTION"

    def future(self, symbol: str) -> Future:
        for fut in self.futures.values():
            if symbol in (fut.root, fut.active):
                return fut
        raise UnknownSymbol(symbol)

    def option_key(self, symbol: str) -> OptionKey:
        key = parse_option_symbol(symbol)
        if key is None:
            raise UnknownSymbol(symbol)
        eq = self.equities.get(key.root)
        if eq is None or not eq.optionable:
            raise UnknownSymbol(symbol)
        if key.expiry < self.today():
            if self.was_listed(key):
                raise ExpiredSeries(symbol)
            raise UnknownSymbol(symbol)
        if key.expiry not in self.expirations(eq) or key.strike not in eq.strikes:
            raise UnknownSymbol(symbol)
        return key

    def option(self, symbol: str) -> OptionQuote:
        key = self.option_key(symbol)
        eq = self.equities[key.root]
        state = self.options.get(symbol)
        if state is None:
            seed = stable_int(symbol)
            state = OptionState(volume=seed % 5000, open_interest=(seed >> 16) % 20000)
            self.options[symbol] = state
        close_ny = datetime.combine(key.expiry, time(16, 0), NEW_YORK)
        seconds = max(0.0, (close_ny - self.now()).total_seconds())
        years = seconds / (365.0 * 86400.0)
        days = max(0, (key.expiry - self.today()).days)
        # A little smile so IV differs by strike: +4 vol points per 10% away from the money.
        spot = float(eq.book.mid)
        moneyness = abs(math.log(float(key.strike) / spot)) if spot > 0 else 0.0
        vol = eq.vol + 0.4 * moneyness
        g = black_scholes(spot, float(key.strike), years, vol, self.rate, key.put_call == "C")
        theo = Decimal(str(round(g.value, 4)))
        if state.override is not None:
            bid, ask = state.override
        else:
            tick = option_tick(theo, eq.penny)
            half = max(tick, (theo * Decimal("0.02")).quantize(CENT))
            bid = max(Decimal(0), round_down(theo - half, tick))
            ask = max(round_up(theo + half, tick), bid + tick)
            ask = round_up(ask, option_tick(ask, eq.penny))
        if state.close is None:
            state.close = ((bid + ask) / 2).quantize(CENT, ROUND_HALF_UP)
        return OptionQuote(key, eq, bid, ask, theo, g, vol, days, state)

    def top(self, symbol: str) -> tuple[Decimal, Decimal, int, int, Decimal]:
        """(bid, ask, bid size, ask size, last) for any tradable symbol."""
        kind = self.kind(symbol)
        if kind == "EQUITY":
            b = self.equities[symbol].book
            return b.bid, b.ask, b.bid_size, b.ask_size, b.last
        if kind == "FUTURE":
            b = self.future(symbol).book
            return b.bid, b.ask, b.bid_size, b.ask_size, b.last
        q = self.option(symbol)
        return q.bid, q.ask, q.state.bid_size, q.state.ask_size, q.last

    # ------------------------------------------------------------------ moving the market (tests)

    def set_price(
        self,
        symbol: str,
        last: Decimal | str | float,
        *,
        bid: Decimal | str | float | None = None,
        ask: Decimal | str | float | None = None,
        bid_size: int | None = None,
        ask_size: int | None = None,
        trade_size: int = 100,
    ) -> None:
        """Print a trade at ``last`` and set the quote (one tick either side unless given); sizes at
        the touch refill to their defaults unless given. An option's quote set here stays pinned
        (it no longer follows the underlying)."""
        last = Decimal(str(last))
        t = ms(self.now())
        if symbol.startswith("/"):
            book = self.future(symbol).book
            tick = self.future(symbol).tick
        elif symbol in self.equities:
            book = self.equities[symbol].book
            tick = equity_tick(last)
        else:
            quote = self.option(symbol)
            b = Decimal(str(bid)) if bid is not None else quote.bid
            a = Decimal(str(ask)) if ask is not None else quote.ask
            quote.state.override = (b, a)
            quote.state.last = last
            quote.state.last_size = trade_size
            quote.state.volume += trade_size
            quote.state.bid_size = OPTION_SIZE if bid_size is None else bid_size
            quote.state.ask_size = OPTION_SIZE if ask_size is None else ask_size
            return
        book.last = last
        book.bid = Decimal(str(bid)) if bid is not None else last - tick
        book.ask = Decimal(str(ask)) if ask is not None else last + tick
        default = FUTURE_SIZE if symbol.startswith("/") else EQUITY_SIZE
        book.bid_size = default if bid_size is None else bid_size
        book.ask_size = default if ask_size is None else ask_size
        book.last_size = trade_size
        book.volume += trade_size
        book.high = max(book.high, last)
        book.low = min(book.low, last) if book.low else last
        book.quote_ms = book.trade_ms = t

    def record_trade(self, symbol: str, price: Decimal, qty: int, buy: bool) -> None:
        """A fill from the matching book prints on the tape and takes the size it used at the touch
        (the quote refills only when a test moves the market again)."""
        t = ms(self.now())
        if symbol in self.equities or symbol.startswith("/"):
            book = self.equities[symbol].book if symbol in self.equities else self.future(symbol).book
            book.last, book.last_size = price, qty
            book.volume += qty
            book.high = max(book.high, price)
            book.low = min(book.low, price)
            book.trade_ms = book.quote_ms = t
            if buy:
                book.ask_size = max(0, book.ask_size - qty)
            else:
                book.bid_size = max(0, book.bid_size - qty)
        else:
            state = self.options[symbol]
            state.last, state.last_size = price, qty
            state.volume += qty
            if buy:
                state.ask_size = max(0, state.ask_size - qty)
            else:
                state.bid_size = max(0, state.bid_size - qty)

    @staticmethod
    def intrinsic(q: OptionQuote) -> Decimal:
        spot = q.underlying.book.mid
        value = spot - q.key.strike if q.key.put_call == "C" else q.key.strike - spot
        return max(Decimal(0), value).quantize(CENT, ROUND_HALF_UP)

    @staticmethod
    def option_description(key: OptionKey) -> str:
        return f"{key.root} {key.expiry:%m/%d/%Y} {key.strike:.2f} {key.put_call}"

    @staticmethod
    def expiration_type(expiry: date) -> str:
        """S for the standard monthly (third Friday), W for weeklies."""
        return "S" if expiry == _third_friday(expiry.year, expiry.month) else "W"


def _third_friday(year: int, month: int) -> date:
    d = date(year, month, 15)
    while d.weekday() != 4:
        d += timedelta(days=1)
    return d


__all__ = [
    "NEW_YORK",
    "Book",
    "Equity",
    "ExpiredSeries",
    "Future",
    "Greeks",
    "Market",
    "OptionKey",
    "OptionQuote",
    "UnknownSymbol",
    "black_scholes",
    "build_option_symbol",
    "equity_tick",
    "ms",
    "num",
    "on_tick",
    "option_tick",
    "parse_option_symbol",
    "strike_key",
]

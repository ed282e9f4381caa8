"""The fake Schwab Market Data API's answers: chains, price history, instruments, market hours.

Each function takes the query (a dict of strings, as the wire gives it) and returns the JSON body,
or raises :class:`MdError` with the parameter at fault; :mod:`tests.fakes.schwab` wraps that in
the Market Data error shape (A3). Parameter rules from reference part A5 (S-OAS-M text) and the
shapes from A6.7/A6.8.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tests.fakes.schwab_market import (
    CENT,
    MONTHS,
    NEW_YORK,
    Equity,
    ExpiredSeries,
    Market,
    OptionQuote,
    UnknownSymbol,
    build_option_symbol,
    ms,
    num,
    stable_int,
    strike_key,
)

JSON = dict[str, Any]


class MdError(Exception):
    """A bad Market Data request: HTTP status, detail text and the offending parameter."""

    def __init__(self, detail: str, parameter: str | None = None, status: int = 400) -> None:
        super().__init__(detail)
        self.detail = detail
        self.parameter = parameter
        self.status = status


def _bool(query: JSON, name: str, default: bool) -> bool:
    raw = query.get(name)
    if raw is None:
        return default
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise MdError(f"{name} must be true or false, not {raw!r}", name)


def _int(query: JSON, name: str) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise MdError(f"{name} must be an integer, not {raw!r}", name) from None


def _float(query: JSON, name: str) -> float | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        raise MdError(f"{name} must be a number, not {raw!r}", name) from None


def _day(query: JSON, name: str) -> date | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise MdError(f"{name} must be yyyy-MM-dd, not {raw!r}", name) from None


def _choice(query: JSON, name: str, allowed: tuple[str, ...], default: str | None) -> str | None:
    raw = query.get(name, default)
    if raw is not None and raw not in allowed:
        raise MdError(f"{name} must be one of {', '.join(allowed)}, not {raw!r}", name)
    return raw


# ====================================================================== /chains (A6.8)

CHAIN_STRATEGIES = (
    "SINGLE",
    "ANALYTICAL",
    "COVERED",
    "VERTICAL",
    "CALENDAR",
    "STRANGLE",
    "STRADDLE",
    "BUTTERFLY",
    "CONDOR",
    "DIAGONAL",
    "COLLAR",
    "ROLL",
)
RANGES = ("ITM", "NTM", "OTM", "SAK", "SBK", "SNK", "ALL")


def chains(market: Market, query: JSON) -> JSON:
    symbol = query.get("symbol")
    if not symbol:
        raise MdError("symbol is required", "symbol")
    contract_type = _choice(query, "contractType", ("CALL", "PUT", "ALL"), "ALL")
    strike_count = _int(query, "strikeCount")
    if strike_count is not None and strike_count < 1:
        raise MdError("strikeCount must be at least 1", "strikeCount")
    include_underlying = _bool(query, "includeUnderlyingQuote", False)
    strategy = _choice(query, "strategy", CHAIN_STRATEGIES, "SINGLE")
    if strategy not in ("SINGLE", "ANALYTICAL"):
        # The real API answers spread strategies with monthlyStrategyList; the fake does not build them.
        raise MdError(f"strategy {strategy} is not implemented by the fake Schwab server", "strategy")
    interval = _float(query, "interval")
    strike = _float(query, "strike")
    strike_range = _choice(query, "range", RANGES, "ALL")
    from_date, to_date = _day(query, "fromDate"), _day(query, "toDate")
    if from_date and to_date and from_date > to_date:
        raise MdError("fromDate is after toDate", "fromDate")
    exp_month = _choice(query, "expMonth", (*MONTHS, "ALL"), "ALL")
    option_type = _choice(query, "optionType", ("S", "NS", "ALL"), "ALL")
    _choice(query, "entitlement", ("PN", "NP", "PP"), None)
    volatility = _float(query, "volatility")
    underlying_price = _float(query, "underlyingPrice")
    interest_rate = _float(query, "interestRate")
    days_to_expiration = _int(query, "daysToExpiration")
    if strategy == "SINGLE" and any(
        v is not None for v in (volatility, underlying_price, interest_rate, days_to_expiration)
    ):
        raise MdError(
            "volatility, underlyingPrice, interestRate and daysToExpiration need strategy=ANALYTICAL", "strategy"
        )

    eq = market.equities.get(symbol)
    if eq is None or not eq.optionable:
        # TDA's chains answered an unknown symbol with HTTP 200, status FAILED and empty maps;
        # Schwab's is assumed to do the same (no captured sample).
        return {
            "symbol": symbol,
            "status": "FAILED",
            "underlying": None,
            "strategy": strategy,
            "interval": 0.0,
            "isDelayed": False,
            "isIndex": False,
            "interestRate": market.rate * 100,
            "underlyingPrice": 0.0,
            "volatility": 29.0,
            "daysToExpiration": 0.0,
            "numberOfContracts": 0,
            "callExpDateMap": {},
            "putExpDateMap": {},
        }

    spot = eq.book.mid
    if strategy == "ANALYTICAL" and underlying_price is not None:
        spot = Decimal(str(underlying_price))
    expiries = [
        d
        for d in market.expirations(eq)
        if (from_date is None or d >= from_date)
        and (to_date is None or d <= to_date)
        and (exp_month == "ALL" or MONTHS[d.month - 1] == exp_month)
        and (option_type != "NS")  # every listed series is standard
    ]
    strikes = list(eq.strikes)
    if interval is not None:
        step = Decimal(str(interval))
        strikes = [s for s in strikes if (s % step) == 0]
    if strike is not None:
        strikes = [s for s in strikes if s == Decimal(str(strike))]
    atm = min(strikes, key=lambda s: (abs(s - spot), s)) if strikes else None
    if strike_count is not None and atm is not None:
        # "strikeCount: the number of strikes to return above or below the at-the-money price"
        # (S-OAS-M): the fake returns that many strikes in all, nearest the money first.
        strikes = sorted(sorted(strikes, key=lambda s: (abs(s - spot), s))[:strike_count])

    def in_range(k: Decimal, call: bool) -> bool:
        # A strike exactly at the money is neither in nor out of it.
        itm = k < spot if call else k > spot
        otm = k > spot if call else k < spot
        near = abs(k - spot) <= spot * Decimal("0.05")
        return {"ITM": itm, "OTM": otm, "NTM": near, "SNK": near, "SAK": k > spot, "SBK": k < spot}.get(
            strike_range or "ALL", True
        )

    call_map: JSON = {}
    put_map: JSON = {}
    count = 0
    for exp in expiries:
        days = (exp - market.today()).days
        for k in strikes:
            for put_call, target in (("C", call_map), ("P", put_map)):
                if (contract_type == "CALL" and put_call == "P") or (contract_type == "PUT" and put_call == "C"):
                    continue
                if not in_range(k, put_call == "C"):
                    continue
                sym = build_option_symbol(eq.symbol, exp, put_call, k)
                try:
                    q = market.option(sym)
                except (UnknownSymbol, ExpiredSeries):  # pragma: no cover - every listed strike prices
                    continue
                target.setdefault(f"{exp.isoformat()}:{days}", {})[strike_key(k)] = [_contract(market, q)]
                count += 1
    out: JSON = {
        "symbol": eq.symbol,
        "status": "SUCCESS",
        "underlying": _chain_underlying(eq) if include_underlying else None,
        "strategy": strategy,
        "interval": interval or 0.0,
        "isDelayed": False,
        "isIndex": False,
        "interestRate": round((interest_rate if interest_rate is not None else market.rate * 100), 3),
        "underlyingPrice": num(spot),
        "volatility": round((volatility if volatility is not None else eq.vol * 100), 3),
        "daysToExpiration": float(days_to_expiration or 0),
        "numberOfContracts": count,
        "assetMainType": "EQUITY",
        "assetSubType": eq.sub_type,
        "isChainTruncated": False,
        "callExpDateMap": call_map,
        "putExpDateMap": put_map,
    }
    return out


def _chain_underlying(eq: Equity) -> JSON:
    b = eq.book
    change = b.last - b.close
    return {
        "symbol": eq.symbol,
        "description": eq.description,
        "change": num(change),
        "percentChange": round(float(change / b.close * 100), 3) if b.close else 0.0,
        "close": num(b.close),
        "quoteTime": b.quote_ms,
        "tradeTime": b.trade_ms,
        "bid": num(b.bid),
        "ask": num(b.ask),
        "last": num(b.last),
        "mark": num(b.last),
        "markChange": num(change),
        "markPercentChange": round(float(change / b.close * 100), 3) if b.close else 0.0,
        "bidSize": b.bid_size,
        "askSize": b.ask_size,
        "highPrice": num(b.high),
        "lowPrice": num(b.low),
        "openPrice": num(b.open),
        "totalVolume": b.volume,
        "exchangeName": eq.exchange_name,
        "fiftyTwoWeekHigh": num(b.close * Decimal("1.3")),
        "fiftyTwoWeekLow": num(b.close * Decimal("0.7")),
        "delayed": False,
    }


def _contract(market: Market, q: OptionQuote) -> JSON:
    """One chain contract with the live-capture key names ``bid/ask/last/mark`` (A6.8 warning)."""
    key, state = q.key, q.state
    close = state.close or q.mark
    intrinsic = market.intrinsic(q)
    expiry_close = datetime.combine(key.expiry, time(16, 0), NEW_YORK)
    return {
        "putCall": "CALL" if key.put_call == "C" else "PUT",
        "symbol": key.symbol,
        "description": market.option_description(key).replace(
            f" {key.put_call}", " Call" if key.put_call == "C" else " Put"
        ),
        "exchangeName": "OPR",
        "bid": num(q.bid),
        "ask": num(q.ask),
        "last": num(q.last),
        "mark": num(q.mark),
        "bidSize": state.bid_size,
        "askSize": state.ask_size,
        "bidAskSize": f"{state.bid_size}X{state.ask_size}",
        "lastSize": state.last_size,
        "highPrice": num(q.last),
        "lowPrice": num(q.last),
        "openPrice": 0.0,
        "closePrice": num(close),
        "totalVolume": state.volume,
        "tradeTimeInLong": ms(market.now()),
        "quoteTimeInLong": ms(market.now()),
        "netChange": num(q.last - close),
        "volatility": round(q.vol * 100, 3),
        **_greeks(q),
        "openInterest": state.open_interest,
        "timeValue": num(max(Decimal(0), q.mark - intrinsic)),
        "theoreticalOptionValue": num(q.theo.quantize(Decimal("0.001"))),
        "theoreticalVolatility": 29.0,
        "optionDeliverablesList": [
            {"symbol": key.root, "assetType": "STOCK", "deliverableUnits": 100.0, "currencyType": "USD"}
        ],
        "strikePrice": num(key.strike),
        "expirationDate": expiry_close.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+00:00"),
        "daysToExpiration": q.days,
        "expirationType": market.expiration_type(key.expiry),
        "lastTradingDay": ms(expiry_close),
        "multiplier": 100.0,
        "settlementType": "P",
        "deliverableNote": "100 " + key.root,
        "percentChange": round(float((q.last - close) / close * 100), 2) if close else 0.0,
        "markChange": num(q.mark - close),
        "markPercentChange": round(float((q.mark - close) / close * 100), 2) if close else 0.0,
        "intrinsicValue": num(intrinsic),
        "extrinsicValue": num(max(Decimal(0), q.mark - intrinsic)),
        "optionRoot": key.root,
        "exerciseType": "A",
        "high52Week": num(max(q.ask, close) * 2),
        "low52Week": 0.01,
        "nonStandard": False,
        "pennyPilot": q.underlying.penny,
        "inTheMoney": intrinsic > 0,
        "mini": False,
    }


def _greeks(q: OptionQuote) -> JSON:
    """Greeks to three places; a contract worth nothing gets the string "NaN", as live chains show
    for some contracts (A6.8), so clients must not assume numbers."""
    names = ("delta", "gamma", "theta", "vega", "rho")
    if q.theo < Decimal("0.005"):
        return dict.fromkeys(names, "NaN")
    g = q.greeks
    return dict(zip(names, (round(v, 3) for v in (g.delta, g.gamma, g.theta, g.vega, g.rho)), strict=True))


def expiration_chain(market: Market, query: JSON) -> JSON:
    symbol = query.get("symbol")
    if not symbol:
        raise MdError("symbol is required", "symbol")
    eq = market.equities.get(symbol)
    if eq is None or not eq.optionable:
        return {"expirationList": []}
    rows = []
    for d in market.expirations(eq):
        # The example uses expirationDate, the schema expiration (A5): the fake sends both.
        rows.append(
            {
                "expirationDate": d.isoformat(),
                "expiration": d.isoformat(),
                "daysToExpiration": (d - market.today()).days,
                "expirationType": market.expiration_type(d),
                "settlementType": "P",
                "optionRoots": eq.symbol,
                "standard": True,
            }
        )
    return {"expirationList": rows}


# ====================================================================== /pricehistory (A5, A6.7)

PERIODS = {  # periodType: (allowed periods, default period, allowed frequencyTypes, default frequencyType)
    "day": ((1, 2, 3, 4, 5, 10), 10, ("minute",), "minute"),
    "month": ((1, 2, 3, 6), 1, ("daily", "weekly"), "weekly"),
    "year": ((1, 2, 3, 5, 10, 15, 20), 1, ("daily", "weekly", "monthly"), "monthly"),
    "ytd": ((1,), 1, ("daily", "weekly"), "weekly"),
}
FREQUENCIES = {"minute": (1, 5, 10, 15, 30), "daily": (1,), "weekly": (1,), "monthly": (1,)}
#: How far back intraday history reaches (SPY docs: about 48 days of 1-minute, 9 months of the rest).
MINUTE_DEPTH = {
    1: timedelta(days=48),
    5: timedelta(days=270),
    10: timedelta(days=270),
    15: timedelta(days=270),
    30: timedelta(days=270),
}


def price_history(market: Market, query: JSON) -> JSON:
    symbol = query.get("symbol")
    if not symbol:
        raise MdError("symbol is required", "symbol")
    period_type = _choice(query, "periodType", tuple(PERIODS), "day")
    assert period_type is not None
    periods, default_period, freq_types, default_freq_type = PERIODS[period_type]
    period = _int(query, "period")
    if period is not None and period not in periods:
        raise MdError(
            f"period {period} is not valid for periodType {period_type}; use one of {', '.join(map(str, periods))}",
            "period",
        )
    period = period or default_period
    frequency_type = _choice(query, "frequencyType", ("minute", "daily", "weekly", "monthly"), default_freq_type)
    assert frequency_type is not None
    if frequency_type not in freq_types:
        raise MdError(
            f"frequencyType {frequency_type} is not valid for periodType {period_type}; use one of "
            f"{', '.join(freq_types)}",
            "frequencyType",
        )
    frequency = _int(query, "frequency") or 1
    if frequency not in FREQUENCIES[frequency_type]:
        raise MdError(
            f"frequency {frequency} is not valid for frequencyType {frequency_type}; use one of "
            f"{', '.join(map(str, FREQUENCIES[frequency_type]))}",
            "frequency",
        )
    start_ms, end_ms = _int(query, "startDate"), _int(query, "endDate")
    extended = _bool(query, "needExtendedHoursData", False)
    previous_close = _bool(query, "needPreviousClose", False)
    now = market.now()
    end = datetime.fromtimestamp(end_ms / 1000, UTC) if end_ms is not None else now
    end = min(end, now)
    if start_ms is not None:
        start = datetime.fromtimestamp(start_ms / 1000, UTC)
    else:
        today = end.astimezone(NEW_YORK).date()
        if period_type == "day":
            start = datetime.combine(_business_days_back(today, period), time(0, 0), NEW_YORK)
        elif period_type == "month":
            start = end - timedelta(days=31 * period)
        elif period_type == "year":
            start = end - timedelta(days=366 * period)
        else:
            start = datetime.combine(date(today.year, 1, 1), time(0, 0), NEW_YORK)
    if start_ms is not None and end_ms is not None and start_ms > end_ms:
        raise MdError("startDate is after endDate", "startDate")
    if frequency_type == "minute":
        start = max(start, now - MINUTE_DEPTH[frequency])

    if symbol in market.equities:
        last = market.equities[symbol].book.last
    elif symbol.startswith("/"):
        try:
            last = market.future(symbol).book.last
        except UnknownSymbol:
            last = None
    else:
        last = None
    if last is None:
        # Unknown symbols (and options, which have no history here) come back empty, not as errors.
        return {"candles": [], "symbol": symbol, "empty": True}
    candles = _candles(symbol, last, start, end, frequency_type, frequency, extended)
    out: JSON = {"candles": candles, "symbol": symbol, "empty": not candles}
    if previous_close:
        prev_day = _business_days_back(end.astimezone(NEW_YORK).date(), 2)
        out["previousClose"] = num(_walk_price(symbol, last, 1))
        out["previousCloseDate"] = ms(datetime.combine(prev_day, time(0, 0), NEW_YORK))
    return out


def _business_days_back(day: date, n: int) -> date:
    d = day
    counted = 0
    while True:
        if d.weekday() < 5:
            counted += 1
            if counted >= n:
                return d
        d -= timedelta(days=1)


def _walk_price(symbol: str, last: Decimal, steps_back: int) -> Decimal:
    """A deterministic price ``steps_back`` bars before now, ending at ``last``."""
    rng = random.Random(stable_int(symbol, "walk", steps_back // 500))
    drift = sum(rng.uniform(-1, 1) for _ in range(min(steps_back, 50)))
    tick = CENT if last >= 1 else Decimal("0.0001")
    value = last * (1 + Decimal(str(drift)) / 400)
    return max(tick, value.quantize(tick, ROUND_HALF_UP))


def _candles(
    symbol: str, last: Decimal, start: datetime, end: datetime, freq_type: str, freq: int, extended: bool
) -> list[JSON]:
    stamps: list[datetime] = []
    if freq_type == "minute":
        day = start.astimezone(NEW_YORK).date()
        last_day = end.astimezone(NEW_YORK).date()
        open_t, close_t = (time(7, 0), time(20, 0)) if extended else (time(9, 30), time(16, 0))
        while day <= last_day:
            if day.weekday() < 5:
                t = datetime.combine(day, open_t, NEW_YORK)
                stop = datetime.combine(day, close_t, NEW_YORK)
                while t < stop:
                    if start <= t and t + timedelta(minutes=freq) <= end:
                        stamps.append(t)
                    t += timedelta(minutes=freq)
            day += timedelta(days=1)
    else:
        day = start.astimezone(NEW_YORK).date()
        last_day = end.astimezone(NEW_YORK).date()
        while day <= last_day:
            bar_start = datetime.combine(day, time(0, 0), NEW_YORK)
            starts_bar = {"daily": day.weekday() < 5, "weekly": day.weekday() == 0, "monthly": day.day == 1}
            if starts_bar[freq_type]:
                stamps.append(bar_start)
            day += timedelta(days=1)
    tick = CENT if last >= 1 else Decimal("0.0001")
    rng = random.Random(stable_int(symbol, freq_type, freq))
    closes = [last]
    for _ in range(len(stamps) - 1):
        step = Decimal(str(rng.gauss(0, 0.004 if freq_type == "minute" else 0.015)))
        closes.append(max(tick, (closes[-1] * (1 - step)).quantize(tick, ROUND_HALF_UP)))
    closes.reverse()
    out = []
    prev = closes[0] if closes else last
    for ts, close in zip(stamps, closes, strict=True):
        spread = max(tick, (abs(close - prev) / 2 + close * Decimal("0.001")).quantize(tick, ROUND_HALF_UP))
        high = max(prev, close) + spread
        low = max(tick, min(prev, close) - spread)
        out.append(
            {
                "open": num(prev),
                "high": num(high),
                "low": num(low),
                "close": num(close),
                "volume": 1000 + rng.randrange(100_000),
                "datetime": ms(ts),
            }
        )
        prev = close
    return out


# ====================================================================== /instruments

PROJECTIONS = ("symbol-search", "symbol-regex", "desc-search", "desc-regex", "search", "fundamental")


def instruments(market: Market, query: JSON) -> JSON:
    symbol = query.get("symbol")
    if not symbol:
        raise MdError("symbol is required", "symbol")
    projection = query.get("projection")
    if projection is None:
        raise MdError("projection is required", "projection")
    if projection not in PROJECTIONS:
        raise MdError(f"projection must be one of {', '.join(PROJECTIONS)}", "projection")
    found: list[Equity] = []
    if projection in ("symbol-search", "fundamental"):
        wanted = [s.strip().upper() for s in symbol.split(",")]
        found = [market.equities[s] for s in wanted if s in market.equities]
    elif projection == "search":
        found = [e for e in market.equities.values() if e.symbol.startswith(symbol.upper())]
    else:
        try:
            pattern = re.compile(symbol if "regex" in projection else re.escape(symbol), re.IGNORECASE)
        except re.error as exc:
            raise MdError(f"symbol is not a valid regular expression: {exc}", "symbol") from None
        target = (lambda e: e.symbol) if projection.startswith("symbol") else (lambda e: e.description)
        found = [e for e in market.equities.values() if pattern.search(target(e))]
    rows = []
    for e in sorted(found, key=lambda e: e.symbol):
        row: JSON = {
            "cusip": e.cusip,
            "symbol": e.symbol,
            "description": e.description,
            "exchange": e.exchange_name,
            "assetType": "ETF" if e.sub_type == "ETF" else "EQUITY",
        }
        if projection == "fundamental":
            row["fundamental"] = {
                "symbol": e.symbol,
                "high52": num(e.book.close * Decimal("1.3")),
                "low52": num(e.book.close * Decimal("0.7")),
                "peRatio": 29.2,
                "divYield": 0.5,
                "marketCap": 1.0e12,
                "sharesOutstanding": 1.5e10,
            }
        rows.append(row)
    return {"instruments": rows}


def instrument_by_cusip(market: Market, cusip: str) -> JSON | None:
    for e in market.equities.values():
        if e.cusip == cusip:
            return {
                "instruments": [
                    {
                        "cusip": e.cusip,
                        "symbol": e.symbol,
                        "description": e.description,
                        "exchange": e.exchange_name,
                        "assetType": "EQUITY",
                    }
                ]
            }
    return None


# ====================================================================== /markets

MARKET_PRODUCTS = {
    "equity": [("EQ", "equity", "EQUITY")],
    "option": [("EQO", "equity option", "OPTION"), ("IND", "index option", "OPTION")],
    "future": [("ES", "E-mini S&P 500", "FUTURE")],
    "bond": [("BON", "bond", "BOND")],
    "forex": [("FOREX", "forex", "FOREX")],
}


def market_hours(market: Market, markets: list[str], day_text: str | None) -> JSON:
    for m in markets:
        if m not in MARKET_PRODUCTS:
            raise MdError(f"markets must be a comma list of {', '.join(MARKET_PRODUCTS)}, not {m!r}", "markets")
    day = market.today()
    if day_text is not None:
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            raise MdError(f"date must be YYYY-MM-DD, not {day_text!r}", "date") from None
        if not market.today() <= day <= market.today() + timedelta(days=365):
            raise MdError("date must be between today and one year from today", "date")
    out: JSON = {}
    for m in markets:
        products: JSON = {}
        for code, name, kind in MARKET_PRODUCTS[m]:
            open_ = day.weekday() < 5  # holidays are not modelled
            entry: JSON = {
                "date": day.isoformat(),
                "marketType": kind,
                "product": code,
                "productName": name,
                "isOpen": open_,
            }
            if m == "equity" or m == "option":
                entry["exchange"] = "NULL"
                entry["category"] = "NULL"
            if open_:

                def span(a: time, b: time, d: date = day) -> JSON:
                    return {
                        "start": datetime.combine(d, a, NEW_YORK).isoformat(),
                        "end": datetime.combine(d, b, NEW_YORK).isoformat(),
                    }

                if m == "equity":
                    entry["sessionHours"] = {
                        "preMarket": [span(time(7, 0), time(9, 30))],
                        "regularMarket": [span(time(9, 30), time(16, 0))],
                        "postMarket": [span(time(16, 0), time(20, 0))],
                    }
                elif m == "option":
                    entry["sessionHours"] = {"regularMarket": [span(time(9, 30), time(16, 0))]}
                else:
                    entry["sessionHours"] = {"regularMarket": [span(time(9, 30), time(16, 0))]}
            products[code] = entry
        out[m] = products
    return out

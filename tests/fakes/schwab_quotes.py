"""The fake Schwab server's ``/quotes`` bodies, one shape per asset type (reference A6.5).

Equities carry ``quote``/``reference``/``regular``/``extended``/``fundamental`` as asked in
``fields``; futures the FutureResponse fields (``tick``, ``tickAmount``, ``futureActiveSymbol``);
options the OptionResponse fields with Greeks priced by :mod:`tests.fakes.schwab_market`.
"""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal
from typing import Any

from tests.fakes.schwab_market import NEW_YORK, Equity, Future, Market, OptionQuote, ms, num, stable_int

JSON = dict[str, Any]


def quote_json(market: Market, symbol: str, fields: set[str]) -> JSON:
    kind = market.kind(symbol)
    if kind == "EQUITY":
        return _equity_quote(market, market.equities[symbol], fields)
    if kind == "FUTURE":
        return _future_quote(market, market.future(symbol), fields)
    return _option_quote(market, market.option(symbol), fields)


def _equity_quote(market: Market, eq: Equity, fields: set[str]) -> JSON:
    b = eq.book
    change = b.last - b.close
    pct = float(change / b.close * 100) if b.close else 0.0
    out: JSON = {
        "assetMainType": "EQUITY",
        "assetSubType": eq.sub_type,
        "quoteType": "NBBO",
        "realtime": True,
        "ssid": stable_int(eq.symbol) % 10**10,
        "symbol": eq.symbol,
    }
    if "quote" in fields:
        out["quote"] = {
            "52WeekHigh": num(b.close * Decimal("1.3")),
            "52WeekLow": num(b.close * Decimal("0.7")),
            "askMICId": "XNAS",
            "askPrice": num(b.ask),
            "askSize": b.ask_size,
            "askTime": b.quote_ms,
            "bidMICId": "XNAS",
            "bidPrice": num(b.bid),
            "bidSize": b.bid_size,
            "bidTime": b.quote_ms,
            "closePrice": num(b.close),
            "highPrice": num(b.high),
            "lastMICId": "XNAS",
            "lastPrice": num(b.last),
            "lastSize": b.last_size,
            "lowPrice": num(b.low),
            "mark": num(b.last),
            "markChange": num(change),
            "markPercentChange": round(pct, 4),
            "netChange": num(change),
            "netPercentChange": round(pct, 4),
            "openPrice": num(b.open),
            "postMarketChange": 0.0,
            "postMarketPercentChange": 0.0,
            "quoteTime": b.quote_ms,
            "securityStatus": b.status,
            "totalVolume": b.volume,
            "tradeTime": b.trade_ms,
            "volatility": eq.vol,
        }
    if "reference" in fields:
        out["reference"] = {
            "cusip": eq.cusip,
            "description": eq.description,
            "exchange": eq.exchange,
            "exchangeName": eq.exchange_name,
            "isHardToBorrow": not eq.shortable,
            "isShortable": eq.shortable,
            "htbRate": 0.0,
        }
    if "regular" in fields:
        out["regular"] = {
            "regularMarketLastPrice": num(b.last),
            "regularMarketLastSize": b.last_size,
            "regularMarketNetChange": num(change),
            "regularMarketPercentChange": round(pct, 4),
            "regularMarketTradeTime": b.trade_ms,
        }
    if "extended" in fields:
        out["extended"] = {
            "askPrice": 0.0,
            "askSize": 0,
            "bidPrice": 0.0,
            "bidSize": 0,
            "lastPrice": 0.0,
            "lastSize": 0,
            "mark": 0.0,
            "quoteTime": 0,
            "totalVolume": 0,
            "tradeTime": 0,
        }
    if "fundamental" in fields:
        out["fundamental"] = {
            "avg10DaysVolume": 50_000_000,
            "avg1YearVolume": 55_000_000,
            "divAmount": 1.0,
            "divFreq": 4,
            "divPayAmount": 0.25,
            "divYield": 0.5,
            "eps": 6.5,
            "fundLeverageFactor": 0.0,
            "peRatio": 29.2,
        }
    return out


def _future_quote(market: Market, fut: Future, fields: set[str]) -> JSON:
    b = fut.book
    change = b.last - b.close
    out: JSON = {
        "assetMainType": "FUTURE",
        "quoteType": "NBBO",
        "realtime": True,
        "ssid": stable_int(fut.active) % 10**10,
        "symbol": fut.active,
    }
    if "quote" in fields:
        out["quote"] = {
            "askPrice": num(b.ask),
            "askSize": b.ask_size,
            "askTime": b.quote_ms,
            "bidPrice": num(b.bid),
            "bidSize": b.bid_size,
            "bidTime": b.quote_ms,
            "closePrice": num(b.close),
            "futurePercentChange": round(float(change / b.close), 6) if b.close else 0.0,
            "highPrice": num(b.high),
            "lastPrice": num(b.last),
            "lastSize": b.last_size,
            "lowPrice": num(b.low),
            "mark": num(b.last),
            "netChange": num(change),
            "openInterest": 2_000_000,
            "openPrice": num(b.open),
            "quoteTime": b.quote_ms,
            "quotedInSession": False,
            "securityStatus": b.status,
            "settleTime": b.trade_ms,
            "tick": num(fut.tick),
            "tickAmount": num(fut.tick * fut.multiplier),
            "totalVolume": b.volume,
            "tradeTime": b.trade_ms,
        }
    if "reference" in fields:
        out["reference"] = {
            "description": fut.description,
            "exchange": "@",
            "exchangeName": "XCME",
            "futureActiveSymbol": fut.active,
            "futureExpirationDate": ms(fut.expiration),
            "futureIsActive": True,
            "futureMultiplier": num(fut.multiplier),
            "futurePriceFormat": "D,D",
            "futureSettlementPrice": num(b.close),
            "futureTradingHours": "GLBX(de=1640;0=-1700151515301600;1=r-17001515r15301600d-15551640;7=d-16401555)",
            "product": fut.root,
        }
    return out


def _option_quote(market: Market, q: OptionQuote, fields: set[str]) -> JSON:
    key, state = q.key, q.state
    close = state.close or q.mark
    out: JSON = {
        "assetMainType": "OPTION",
        "quoteType": "NBBO",
        "realtime": True,
        "ssid": stable_int(key.symbol) % 10**10,
        "symbol": key.symbol,
    }
    t = ms(market.now())
    if "quote" in fields:
        intrinsic = market.intrinsic(q)
        out["quote"] = {
            "52WeekHigh": num(max(q.ask, close) * 2),
            "52WeekLow": 0.01,
            "askPrice": num(q.ask),
            "askSize": state.ask_size,
            "bidPrice": num(q.bid),
            "bidSize": state.bid_size,
            "closePrice": num(close),
            "delta": round(q.greeks.delta, 4),
            "gamma": round(q.greeks.gamma, 4),
            "highPrice": num(q.last),
            "impliedYield": 0.0,
            "lastPrice": num(q.last),
            "lastSize": state.last_size,
            "lowPrice": num(q.last),
            "mark": num(q.mark),
            "markChange": num(q.mark - close),
            "markPercentChange": round(float((q.mark - close) / close * 100), 4) if close else 0.0,
            "moneyIntrinsicValue": num(intrinsic),
            "netChange": num(q.last - close),
            "netPercentChange": round(float((q.last - close) / close * 100), 4) if close else 0.0,
            "openInterest": state.open_interest,
            "openPrice": 0.0,
            "quoteTime": t,
            "rho": round(q.greeks.rho, 4),
            "securityStatus": "Normal",
            "theoreticalOptionValue": num(q.theo.quantize(Decimal("0.001"))),
            "theta": round(q.greeks.theta, 4),
            "timeValue": num(max(Decimal(0), q.mark - intrinsic)),
            "totalVolume": state.volume,
            "tradeTime": t,
            "underlyingPrice": num(q.underlying.book.mid),
            "vega": round(q.greeks.vega, 4),
            "volatility": round(q.vol * 100, 4),
        }
    if "reference" in fields:
        out["reference"] = {
            "contractType": key.put_call,
            "daysToExpiration": q.days,
            "deliverables": f"100 {key.root}",
            "description": market.option_description(key),
            "exchange": "o",
            "exchangeName": "OPR",
            "exerciseType": "A",
            "expirationDay": key.expiry.day,
            "expirationMonth": key.expiry.month,
            "expirationType": market.expiration_type(key.expiry),
            "expirationYear": key.expiry.year,
            "isPennyPilot": q.underlying.penny,
            "lastTradingDay": ms(datetime.combine(key.expiry, time(16, 0), NEW_YORK)),
            "multiplier": 100,
            "settlementType": "P",
            "strikePrice": num(key.strike),
            "underlying": key.root,
        }
    return out

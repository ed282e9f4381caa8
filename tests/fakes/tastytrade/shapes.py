"""Instrument, chain and market-data JSON in the vendor's dasherized shapes.

Field sets follow the instruments guide on developer.tastytrade.com (its example bodies) and
every field the TT-SDK 13.2.3 models declare as required, so the SDK parses each answer.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from itertools import groupby
from typing import Any

from tests.fakes.tastytrade.market import (
    FUTURE_PRODUCTS,
    MONTH_CODES,
    Instrument,
    Market,
    dec,
    iso,
    tick_json,
)

JSON = dict[str, Any]


def equity(inst: Instrument) -> JSON:
    return {
        "id": inst.id,
        "symbol": inst.symbol,
        "instrument-type": "Equity",
        "cusip": f"{inst.id:09d}",
        "short-description": inst.description[:15],
        "is-index": False,
        "listed-market": inst.extra["listed-market"],
        "description": inst.description,
        "lendability": "Easy To Borrow",
        "borrow-rate": "0.0",
        "market-time-instrument-collection": "Equity Index" if inst.extra["is-etf"] else "Equity",
        "is-closing-only": False,
        "is-options-closing-only": False,
        "active": True,
        "is-fractional-quantity-eligible": True,
        "is-illiquid": False,
        "is-etf": inst.extra["is-etf"],
        "streamer-symbol": inst.streamer,
        "tick-sizes": tick_json(inst.ticks),
        "option-tick-sizes": tick_json(inst.extra["option-ticks"]),
    }


def equity_option(inst: Instrument, now: datetime) -> JSON:
    assert inst.expires is not None and inst.strike is not None
    return {
        "symbol": inst.symbol,
        "instrument-type": "Equity Option",
        "active": True,
        "strike-price": dec(inst.strike),
        "root-symbol": inst.root,
        "underlying-symbol": inst.underlying,
        "expiration-date": inst.expires.date().isoformat(),
        "exercise-style": "American",
        "shares-per-contract": 100,
        "option-type": inst.option_type,
        "option-chain-type": "Standard",
        "expiration-type": inst.extra["expiration-type"],
        "settlement-type": "PM",
        "stops-trading-at": iso(inst.expires),
        "market-time-instrument-collection": "Equity Option",
        "days-to-expiration": (inst.expires.date() - now.date()).days,
        "expires-at": iso(inst.expires),
        "is-closing-only": False,
        "streamer-symbol": inst.streamer,
    }


def future_product(code: str, market: Market) -> JSON:
    desc, tick, mult, _, _, _ = FUTURE_PRODUCTS[code]
    return {
        "root-symbol": f"/{code}",
        "code": code,
        "description": desc,
        "clearing-code": code,
        "clearing-exchange-code": "16",
        "clearport-code": code,
        "legacy-code": code,
        "exchange": "CME",
        "legacy-exchange-code": "CME",
        "product-type": "Financial",
        "listed-months": ["H", "M", "U", "Z"],
        "active-months": ["H", "M", "U", "Z"],
        "notional-multiplier": dec(mult),
        "tick-size": dec(tick),
        "display-factor": "0.01",
        "streamer-exchange-code": "XCME",
        "small-notional": code.startswith("M"),
        "back-month-first-calendar-symbol": True,
        "first-notice": False,
        "cash-settled": True,
        "security-group": code,
        "market-sector": "Equity Index",
        "roll": {
            "name": "equity_index",
            "active-count": 3,
            "cash-settled": True,
            "business-days-offset": 4,
            "first-notice": False,
        },
    }


def future(inst: Instrument, market: Market) -> JSON:
    assert inst.expires is not None
    day = inst.expires.date().isoformat()
    siblings = sorted(market.futures_of(inst.product), key=lambda f: f.symbol)
    later = [f for f in siblings if f.expires and f.expires > inst.expires]
    return {
        "symbol": inst.symbol,
        "product-code": inst.product,
        "contract-size": dec(inst.multiplier),
        "tick-size": dec(inst.ticks[0][1]),
        "notional-multiplier": dec(inst.multiplier),
        "main-fraction": "0.0",
        "sub-fraction": "0.0",
        "display-factor": "0.01",
        "last-trade-date": day,
        "expiration-date": day,
        "closing-only-date": day,
        "active": True,
        "active-month": inst.extra["active-month"],
        "next-active-month": inst.extra["next-active-month"],
        "is-closing-only": False,
        "stops-trading-at": iso(inst.expires),
        "expires-at": iso(inst.expires),
        "product-group": f"CME_{inst.product}",
        "exchange": "CME",
        "roll-target-symbol": later[0].symbol if later else inst.symbol,
        "streamer-exchange-code": "XCME",
        "streamer-symbol": inst.streamer,
        "back-month-first-calendar-symbol": True,
        "is-tradeable": True,
        "instrument-type": "Future",
        "future-product": future_product(inst.product, market),
        "tick-sizes": tick_json(inst.ticks),
        "option-tick-sizes": [{"value": "0.05", "threshold": "5.0"}, {"value": "0.25"}],
    }


def _fo_product(inst: Instrument) -> JSON:
    return {
        "root-symbol": inst.option_root,
        "cash-settled": False,
        "code": inst.option_root,
        "legacy-code": inst.option_root,
        "clearport-code": inst.option_root,
        "clearing-code": inst.option_root,
        "clearing-exchange-code": "9C",
        "clearing-price-multiplier": "1.0",
        "display-factor": "0.01",
        "exchange": "CME",
        "product-type": "Physical",
        "expiration-type": "Weekly",
        "settlement-delay-days": 0,
        "is-rollover": False,
        "market-sector": "Equity Index",
    }


def future_option(inst: Instrument, now: datetime) -> JSON:
    assert inst.expires is not None and inst.strike is not None
    day = inst.expires.date().isoformat()
    return {
        "symbol": inst.symbol,
        "underlying-symbol": inst.underlying,
        "product-code": inst.product,
        "expiration-date": day,
        "root-symbol": f"/{inst.product}",
        "option-root-symbol": inst.option_root,
        "strike-price": dec(inst.strike),
        "exchange": "CME",
        "exchange-symbol": f"{inst.extra['contract']} {inst.option_type}{inst.strike.normalize():f}",
        "streamer-symbol": inst.streamer,
        "option-type": inst.option_type,
        "exercise-style": "American",
        "is-vanilla": True,
        "is-primary-deliverable": True,
        "future-price-ratio": "1.0",
        "multiplier": "1.0",
        "underlying-count": "1.0",
        "is-confirmed": True,
        "notional-value": "0.5",
        "display-factor": "0.01",
        "security-exchange": "2",
        "sx-id": "0",
        "settlement-type": "Future",
        "strike-factor": "1.0",
        "maturity-date": day,
        "is-exercisable-weekly": True,
        "last-trade-time": "0",
        "days-to-expiration": (inst.expires.date() - now.date()).days,
        "is-closing-only": False,
        "active": True,
        "stops-trading-at": iso(inst.expires),
        "expires-at": iso(inst.expires),
        "instrument-type": "Future Option",
        "future-option-product": _fo_product(inst),
    }


def instrument(inst: Instrument, market: Market, now: datetime) -> JSON:
    if inst.kind == "Equity":
        return equity(inst)
    if inst.kind == "Equity Option":
        return equity_option(inst, now)
    if inst.kind == "Future":
        return future(inst, market)
    return future_option(inst, now)


def _strike_rows(options: list[Instrument]) -> list[JSON]:
    rows: list[JSON] = []
    by_strike = sorted(options, key=lambda o: (o.strike, o.option_type))
    for strike, group in groupby(by_strike, key=lambda o: o.strike):
        pair = {o.option_type: o for o in group}
        rows.append(
            {
                "strike-price": dec(strike),
                "call": pair["C"].symbol,
                "call-streamer-symbol": pair["C"].streamer,
                "put": pair["P"].symbol,
                "put-streamer-symbol": pair["P"].streamer,
            }
        )
    return rows


def _by_expiry(options: list[Instrument]) -> list[tuple[datetime, list[Instrument]]]:
    options = sorted(options, key=lambda o: o.expires or datetime.min)
    return [(exp, list(group)) for exp, group in groupby(options, key=lambda o: o.expires)]  # type: ignore[misc]


def nested_chain(underlying: Instrument, market: Market, now: datetime) -> JSON:
    expirations = [
        {
            "expiration-type": group[0].extra["expiration-type"],
            "expiration-date": exp.date().isoformat(),
            "days-to-expiration": (exp.date() - now.date()).days,
            "settlement-type": "PM",
            "strikes": _strike_rows(group),
        }
        for exp, group in _by_expiry(market.options_on(underlying.symbol))
    ]
    return {
        "underlying-symbol": underlying.symbol,
        "root-symbol": underlying.symbol,
        "option-chain-type": "Standard",
        "shares-per-contract": 100,
        "tick-sizes": tick_json(underlying.extra["option-ticks"]),
        "deliverables": [_deliverable(underlying)],
        "expirations": expirations,
    }


def _deliverable(underlying: Instrument) -> JSON:
    return {
        "id": underlying.id,
        "root-symbol": underlying.symbol,
        "deliverable-type": "Shares",
        "description": f"100 shares of {underlying.symbol}",
        "amount": "100.0",
        "symbol": underlying.symbol,
        "instrument-type": "Equity",
        "percent": "100",
    }


def compact_chain(underlying: Instrument, market: Market) -> JSON:
    options = sorted(market.options_on(underlying.symbol), key=lambda o: (o.expires, o.strike, o.option_type))
    return {
        "underlying-symbol": underlying.symbol,
        "root-symbol": underlying.symbol,
        "option-chain-type": "Standard",
        "settlement-type": "PM",
        "shares-per-contract": 100,
        "expiration-type": "Weekly",
        "deliverables": [_deliverable(underlying)],
        "symbols": [o.symbol for o in options],
        "streamer-symbols": [o.streamer for o in options],
    }


def nested_futures_chain(product: str, market: Market, now: datetime) -> JSON:
    futures = sorted(market.futures_of(product), key=lambda f: f.symbol)
    options = [o for o in market.instruments.values() if o.kind == "Future Option" and o.product == product]
    expirations = []
    for exp, group in _by_expiry(options):
        first = group[0]
        expirations.append(
            {
                "underlying-symbol": first.underlying,
                "root-symbol": f"/{product}",
                "option-root-symbol": first.option_root,
                "option-contract-symbol": first.extra["contract"],
                "asset": first.option_root,
                "expiration-date": exp.date().isoformat(),
                "days-to-expiration": (exp.date() - now.date()).days,
                "expiration-type": "Weekly",
                "settlement-type": "PM",
                "notional-value": "0.5",
                "display-factor": "0.01",
                "strike-factor": "1.0",
                "stops-trading-at": iso(exp),
                "expires-at": iso(exp),
                "tick-sizes": tick_json(first.ticks),
                "strikes": _strike_rows(group),
            }
        )
    return {
        "futures": [
            {
                "symbol": f.symbol,
                "root-symbol": f"/{product}",
                "expiration-date": f.expires.date().isoformat() if f.expires else None,
                "days-to-expiration": (f.expires.date() - now.date()).days if f.expires else 0,
                "active-month": f.extra["active-month"],
                "next-active-month": f.extra["next-active-month"],
                "stops-trading-at": iso(f.expires) if f.expires else None,
                "expires-at": iso(f.expires) if f.expires else None,
            }
            for f in futures
        ],
        "option-chains": (
            [
                {
                    "underlying-symbol": f"/{product}",
                    "root-symbol": f"/{product}",
                    "exercise-style": "American",
                    "expirations": expirations,
                }
            ]
            if expirations
            else []
        ),
    }


def search_row(inst: Instrument) -> JSON:
    return {
        "symbol": inst.symbol,
        "description": inst.description,
        "listed-market": inst.extra.get("listed-market", "CME"),
        "price-increments": dec(inst.ticks[-1][1]),
        "trading-hours": "",
        "options": inst.kind == "Equity",
        "instrument-type": inst.kind,
    }


def market_data(inst: Instrument, market: Market, now: datetime) -> JSON:
    q = market.quote(inst.symbol, now)

    def s(x: Decimal | None) -> str | None:
        return None if x is None else dec(x)

    return {
        "symbol": inst.symbol,
        "instrument-type": inst.kind,
        "updated-at": iso(now),
        "bid": s(q.bid),
        "bid-size": dec(q.bid_size),
        "ask": s(q.ask),
        "ask-size": dec(q.ask_size),
        "mid": s(q.mid),
        "mark": s(q.mark()),
        "last": s(q.last),
        "last-mkt": s(q.last),
        "open": s(q.day_open),
        "day-high-price": s(q.day_high),
        "day-low-price": s(q.day_low),
        "close": s(q.last),
        "prev-close": s(q.prev_close),
        "close-price-type": "Regular",
        "prev-close-price-type": "Final",
        "summary-date": now.date().isoformat(),
        "prev-close-date": now.date().isoformat(),
        "volume": dec(q.volume),
        "is-trading-halted": False,
        "halt-start-time": -1,
        "halt-end-time": -1,
    }


def month_code(d: datetime) -> str:
    return MONTH_CODES[d.month - 1]

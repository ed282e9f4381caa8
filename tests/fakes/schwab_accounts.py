"""Accounts behind the fake Schwab server: cash, positions, balances and transactions.

Fills from :mod:`tests.fakes.schwab_orders` land here; the JSON follows reference part A6.1
(Account with ``securitiesAccount`` and ``aggregatedBalance``), A6.2 (Position) and A6.4
(Transaction). Balances are a simple, consistent model (no Reg T arithmetic): the fields a client
reads are present and follow every fill.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from tests.fakes.schwab_market import CENT, Market, UnknownSymbol, num, parse_option_symbol

JSON = dict[str, Any]
OPTION_COMMISSION = Decimal("0.65")  # per contract; stock and ETF trades are commission-free
TRANSACTION_TYPES = (
    "TRADE",
    "RECEIVE_AND_DELIVER",
    "DIVIDEND_OR_INTEREST",
    "ACH_RECEIPT",
    "ACH_DISBURSEMENT",
    "CASH_RECEIPT",
    "CASH_DISBURSEMENT",
    "ELECTRONIC_FUND",
    "WIRE_OUT",
    "WIRE_IN",
    "JOURNAL",
    "MEMORANDUM",
    "MARGIN_CALL",
    "MONEY_MARKET",
    "SMA_ADJUSTMENT",
)


def schwab_time(ts: datetime) -> str:
    """Trader API timestamps as real responses show them: ``2024-04-04T15:56:07+0000`` (A3)."""
    return ts.strftime("%Y-%m-%dT%H:%M:%S+0000")


def money(value: Decimal) -> float:
    return float(value.quantize(CENT, ROUND_HALF_UP))


@dataclass
class Holding:
    symbol: str
    asset_type: str  # EQUITY, OPTION (COLLECTIVE_INVESTMENT for ETFs)
    multiplier: int
    long_qty: int = 0
    short_qty: int = 0
    long_cost: Decimal = Decimal(0)  # total cost of the long lot (for averagePrice)
    short_credit: Decimal = Decimal(0)
    day_cost: Decimal = Decimal(0)
    instrument_id: int = 0


@dataclass
class Account:
    number: str
    hash: str
    type: str  # MARGIN or CASH
    cash: Decimal
    holdings: dict[str, Holding] = field(default_factory=dict)
    transactions: list[JSON] = field(default_factory=list)
    round_trips: int = 0
    realized: Decimal = Decimal(0)


def account_hash(number: str, salt: str) -> str:
    """An opaque 64-hex-digit stand-in for Schwab's encrypted account id."""
    return hashlib.sha256(f"{salt}:{number}".encode()).hexdigest().upper()


class Ledger:
    """The accounts, with everything a fill changes."""

    def __init__(self, market: Market, accounts: list[tuple[str, str, Decimal]], salt: str) -> None:
        self.market = market
        self.accounts: dict[str, Account] = {}
        self._ids = itertools.count(90_000_000_001)
        self._instrument_ids = itertools.count(200_000_001)
        start = market.now() - timedelta(days=1)
        for number, kind, cash in accounts:
            acct = Account(number=number, hash=account_hash(number, salt), type=kind, cash=cash)
            acct.transactions.append(
                {
                    "activityId": next(self._ids),
                    "time": schwab_time(start),
                    "accountNumber": number,
                    "type": "ACH_RECEIPT",
                    "status": "VALID",
                    "subAccount": "CASH",
                    "tradeDate": schwab_time(start),
                    "netAmount": money(cash),
                    "activityType": "TRANSFER",
                    "description": "ACH RECEIPT",
                    "transferItems": [
                        {
                            "instrument": {
                                "assetType": "CURRENCY",
                                "symbol": "CURRENCY_USD",
                                "description": "USD currency",
                                "instrumentId": 1,
                            },
                            "amount": money(cash),
                            "cost": money(cash),
                        }
                    ],
                }
            )
            self.accounts[acct.hash] = acct

    def by_hash(self, hash_value: str) -> Account | None:
        return self.accounts.get(hash_value)

    # ------------------------------------------------------------------ valuation

    def mark(self, symbol: str) -> Decimal:
        try:
            if symbol in self.market.equities:
                return self.market.equities[symbol].book.last
            return self.market.option(symbol).mark
        except UnknownSymbol:  # an option that expired while held: worth its last mark, zero here
            return Decimal(0)

    def values(self, acct: Account) -> JSON:
        long_stock = short_stock = long_opt = short_opt = Decimal(0)
        maint = Decimal(0)
        for h in acct.holdings.values():
            price = self.mark(h.symbol)
            lv = price * h.long_qty * h.multiplier
            sv = price * h.short_qty * h.multiplier
            if h.asset_type == "OPTION":
                long_opt += lv
                short_opt += sv
                if h.short_qty:
                    key = parse_option_symbol(h.symbol)
                    spot = self.market.equities[key.root].book.last if key else Decimal(0)
                    maint += sv + spot * Decimal("0.20") * h.short_qty * h.multiplier
            else:
                long_stock += lv
                short_stock += sv
                maint += lv * Decimal("0.25") + sv * Decimal("0.30")
        liquidation = acct.cash + long_stock - short_stock + long_opt - short_opt
        available = liquidation - maint if acct.type == "MARGIN" else acct.cash
        return {
            "long_stock": long_stock,
            "short_stock": short_stock,
            "long_opt": long_opt,
            "short_opt": short_opt,
            "maintenance": maint,
            "liquidation": liquidation,
            "available": max(Decimal(0), available),
            "buying_power": max(Decimal(0), available * 2) if acct.type == "MARGIN" else max(Decimal(0), acct.cash),
        }

    def buying_power(self, acct: Account) -> Decimal:
        return self.values(acct)["buying_power"]

    def option_buying_power(self, acct: Account) -> Decimal:
        return self.values(acct)["available"]

    # ------------------------------------------------------------------ fills

    def apply_fill(
        self,
        acct: Account,
        symbol: str,
        asset_type: str,
        buy: bool,
        qty: int,
        price: Decimal,
        order_id: int,
        closing: bool,
        when: datetime,
        description: str,
    ) -> None:
        """Move cash and the position for one leg's execution, and record a TRADE transaction."""
        multiplier = 100 if asset_type == "OPTION" else 1
        h = acct.holdings.get(symbol)
        if h is None:
            if asset_type == "OPTION":
                kind = "OPTION"
            elif symbol in self.market.equities and self.market.equities[symbol].sub_type == "ETF":
                kind = "COLLECTIVE_INVESTMENT"
            else:
                kind = "EQUITY"
            h = Holding(symbol=symbol, asset_type=kind, multiplier=multiplier, instrument_id=next(self._instrument_ids))
            acct.holdings[symbol] = h
        notional = price * qty * multiplier
        fee = OPTION_COMMISSION * qty if asset_type == "OPTION" else Decimal(0)
        if buy:
            acct.cash -= notional + fee
            cover = min(qty, h.short_qty)
            if cover:
                avg = h.short_credit / h.short_qty
                acct.realized += (avg - price) * cover * multiplier
                h.short_credit -= avg * cover
                h.short_qty -= cover
            rest = qty - cover
            if rest:
                h.long_qty += rest
                h.long_cost += price * rest
        else:
            acct.cash += notional - fee
            sold = min(qty, h.long_qty)
            if sold:
                avg = h.long_cost / h.long_qty
                acct.realized += (price - avg) * sold * multiplier
                h.long_cost -= avg * sold
                h.long_qty -= sold
            rest = qty - sold
            if rest:
                h.short_qty += rest
                h.short_credit += price * rest
        h.day_cost += notional if buy else -notional
        if h.long_qty == 0 and h.short_qty == 0:
            del acct.holdings[symbol]
        net = -(notional + fee) if buy else notional - fee
        items: list[JSON] = [
            {
                "instrument": self.instrument_json(symbol, asset_type, h.instrument_id, description),
                "amount": float(qty if buy else -qty),
                "cost": money(-notional if buy else notional),
                "price": float(price),
                "positionEffect": "CLOSING" if closing else "OPENING",
            }
        ]
        if fee:
            items.append(
                {
                    "instrument": {
                        "assetType": "CURRENCY",
                        "status": "ACTIVE",
                        "symbol": "CURRENCY_USD",
                        "description": "USD currency",
                        "instrumentId": 1,
                        "closingPrice": 0.0,
                    },
                    "amount": 0.0,
                    "cost": money(-fee),
                    "feeType": "COMMISSION",
                }
            )
        acct.transactions.append(
            {
                "activityId": next(self._ids),
                "time": schwab_time(when),
                "accountNumber": acct.number,
                "type": "TRADE",
                "status": "VALID",
                "subAccount": "MARGIN" if acct.type == "MARGIN" else "CASH",
                "tradeDate": schwab_time(when),
                "settlementDate": schwab_time(when + timedelta(days=1)),
                "positionId": h.instrument_id,
                "orderId": order_id,
                "netAmount": money(net),
                "activityType": "EXECUTION",
                "description": description,
                "transferItems": items,
            }
        )

    def instrument_json(self, symbol: str, asset_type: str, instrument_id: int, description: str = "") -> JSON:
        if asset_type == "OPTION":
            key = parse_option_symbol(symbol)
            assert key is not None
            return {
                "assetType": "OPTION",
                "cusip": "0" + key.root + key.expiry.strftime("%y%m%d"),
                "symbol": symbol,
                "description": description or self.market.option_description(key),
                "instrumentId": instrument_id,
                "netChange": 0.0,
                "type": "VANILLA",
                "putCall": "CALL" if key.put_call == "C" else "PUT",
                "underlyingSymbol": key.root,
                "optionMultiplier": 100.0,
                "optionDeliverables": [{"symbol": key.root, "deliverableUnits": 100.0, "assetType": "EQUITY"}],
            }
        eq = self.market.equities.get(symbol)
        out: JSON = {
            "assetType": "COLLECTIVE_INVESTMENT" if eq and eq.sub_type == "ETF" else "EQUITY",
            "cusip": eq.cusip if eq else "",
            "symbol": symbol,
            "description": eq.description if eq else symbol,
            "instrumentId": instrument_id,
            "netChange": num(eq.book.last - eq.book.close) if eq else 0.0,
        }
        if eq and eq.sub_type == "ETF":
            out["type"] = "EXCHANGE_TRADED_FUND"
        return out

    # ------------------------------------------------------------------ JSON

    def account_json(self, acct: Account, with_positions: bool) -> JSON:
        v = self.values(acct)
        long_mv = v["long_stock"] + v["long_opt"]
        common = {
            "accruedInterest": 0.0,
            "cashBalance": money(acct.cash),
            "cashReceipts": 0.0,
            "longOptionMarketValue": money(v["long_opt"]),
            "liquidationValue": money(v["liquidation"]),
            "longMarketValue": money(v["long_stock"]),
            "moneyMarketFund": 0.0,
            "savings": 0.0,
            "shortMarketValue": money(-v["short_stock"]),
            "pendingDeposits": 0.0,
            "mutualFundValue": 0.0,
            "bondValue": 0.0,
            "shortOptionMarketValue": money(-v["short_opt"]),
        }
        if acct.type == "MARGIN":
            current = common | {
                "availableFunds": money(v["available"]),
                "availableFundsNonMarginableTrade": money(v["available"]),
                "buyingPower": money(v["buying_power"]),
                "buyingPowerNonMarginableTrade": money(v["available"]),
                "dayTradingBuyingPower": money(v["available"] * 4),
                "equity": money(v["liquidation"]),
                "equityPercentage": 100.0 if not v["short_stock"] and acct.cash >= 0 else 50.0,
                "longMarginValue": money(v["long_stock"]),
                "maintenanceCall": 0.0,
                "maintenanceRequirement": money(v["maintenance"]),
                "marginBalance": money(min(Decimal(0), acct.cash)),
                "regTCall": 0.0,
                "shortBalance": money(-v["short_stock"]),
                "shortMarginValue": money(v["short_stock"]),
                "sma": money(v["available"]),
                "isInCall": False,  # a number in the spec, a boolean in practice (overlay fix #8)
                "stockBuyingPower": money(v["buying_power"]),
                "optionBuyingPower": money(v["available"]),
            }
            initial = common | {
                "accountValue": money(v["liquidation"]),
                "availableFundsNonMarginableTrade": money(v["available"]),
                "buyingPower": money(v["buying_power"]),
                "cashAvailableForTrading": 0.0,
                "margin": 0.0,
                "marginEquity": money(v["liquidation"]),
                "totalCash": money(acct.cash),
                "isInCall": False,
            }
            projected = {
                k: current[k]
                for k in (
                    "availableFunds",
                    "availableFundsNonMarginableTrade",
                    "buyingPower",
                    "dayTradingBuyingPower",
                    "isInCall",
                    "maintenanceCall",
                    "regTCall",
                    "stockBuyingPower",
                )
            }
        else:
            current = common | {
                "cashAvailableForTrading": money(acct.cash),
                "cashAvailableForWithdrawal": money(acct.cash),
                "cashCall": 0.0,
                "longNonMarginableMarketValue": money(long_mv),
                "totalCash": money(acct.cash),
                "cashDebitCallValue": 0.0,
                "unsettledCash": 0.0,
            }
            initial = common | {
                "cashAvailableForTrading": money(acct.cash),
                "totalCash": money(acct.cash),
                "accountValue": money(v["liquidation"]),
                "isInCall": False,
            }
            projected = {"cashAvailableForTrading": money(acct.cash), "cashAvailableForWithdrawal": money(acct.cash)}
        sec: JSON = {
            "type": acct.type,
            "accountNumber": acct.number,
            "roundTrips": acct.round_trips,
            "isDayTrader": False,
            "isClosingOnlyRestricted": False,
            "pfcbFlag": False,
        }
        if with_positions:
            sec["positions"] = [self.position_json(h) for h in sorted(acct.holdings.values(), key=lambda h: h.symbol)]
        sec |= {"initialBalances": initial, "currentBalances": current, "projectedBalances": projected}
        # aggregatedBalance is not in the spec but real-data consumers read it (A6.1, uncertain).
        return {
            "securitiesAccount": sec,
            "aggregatedBalance": {
                "currentLiquidationValue": money(v["liquidation"]),
                "liquidationValue": money(v["liquidation"]),
            },
        }

    def position_json(self, h: Holding) -> JSON:
        price = self.mark(h.symbol)
        long_avg = h.long_cost / h.long_qty if h.long_qty else Decimal(0)
        short_avg = h.short_credit / h.short_qty if h.short_qty else Decimal(0)
        mv = price * (h.long_qty - h.short_qty) * h.multiplier
        asset = "OPTION" if h.asset_type == "OPTION" else h.asset_type
        avg = long_avg if h.long_qty else short_avg
        day_pnl = mv - h.day_cost if h.day_cost else Decimal(0)
        return {
            "shortQuantity": float(h.short_qty),
            "averagePrice": float(avg.quantize(Decimal("0.0001"))),
            "currentDayProfitLoss": money(day_pnl),
            "currentDayProfitLossPercentage": round(float(day_pnl / abs(h.day_cost) * 100), 2) if h.day_cost else 0.0,
            "longQuantity": float(h.long_qty),
            "settledLongQuantity": 0.0,
            "settledShortQuantity": 0.0,
            "agedQuantity": 0.0,
            "instrument": self.instrument_json(h.symbol, "OPTION" if asset == "OPTION" else "EQUITY", h.instrument_id),
            "marketValue": money(mv),
            "maintenanceRequirement": money(abs(mv) * Decimal("0.25")),
            "averageLongPrice": float(long_avg.quantize(Decimal("0.0001"))),
            "averageShortPrice": float(short_avg.quantize(Decimal("0.0001"))),
            "taxLotAverageLongPrice": float(long_avg.quantize(Decimal("0.0001"))),
            "taxLotAverageShortPrice": float(short_avg.quantize(Decimal("0.0001"))),
            "longOpenProfitLoss": money((price - long_avg) * h.long_qty * h.multiplier),
            "shortOpenProfitLoss": money((short_avg - price) * h.short_qty * h.multiplier),
            "previousSessionLongQuantity": 0.0,
            "previousSessionShortQuantity": 0.0,
            "currentDayCost": money(h.day_cost),
        }

"""Accounts, positions, balances and fees of the fake Tastytrade customer.

Balances are recomputed from cash and positions at current marks each time they are read, so
they follow every fill and every market move. The margin model is a documented simplification
(the vendor's is far richer): Reg-T style 50% initial on equities in a margin account, the full
debit for long options, the width less the credit for a two-leg vertical, 20% of the underlying
for other short options, and a fixed margin per futures contract. Fees are the vendor's retail
schedule as of 2026 rounded to what a test can check (options $1.00 a contract to open, capped at
$10 a leg, nothing to close; futures $1.25, micros $0.75; future options $2.50 to open), plus a
clearing fee a contract. All money is Decimal, written as strings with a sibling ``-effect``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from tests.fakes.tastytrade.market import Instrument, Market, dec, iso, round_money

JSON = dict[str, Any]
ZERO = Decimal(0)


def effect(value: Decimal) -> str:
    return "Debit" if value < 0 else "Credit" if value > 0 else "None"


def money(data: JSON, key: str, value: Decimal) -> None:
    """``key`` as an unsigned decimal string and ``key-effect`` as its direction (Debit is negative)."""
    data[key] = dec(round_money(abs(value)))
    data[f"{key}-effect"] = effect(value)


@dataclass
class Position:
    account: str
    inst: Instrument
    quantity: Decimal = ZERO  # signed: negative is short
    average: Decimal = ZERO
    realized: Decimal = ZERO
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class Account:
    number: str
    nickname: str
    margin: bool
    futures: bool
    options_level: str
    cash: Decimal
    opened_at: datetime
    positions: dict[str, Position] = field(default_factory=dict)
    fees_today: Decimal = ZERO
    transactions: list[JSON] = field(default_factory=list)


COMMISSION = {"Equity": ZERO, "Equity Option": Decimal("1.00"), "Future": Decimal("1.25")}
MICRO_COMMISSION = Decimal("0.75")
FUTURE_OPTION_COMMISSION = Decimal("2.50")
CLEARING = {
    "Equity": ZERO,
    "Equity Option": Decimal("0.10"),
    "Future": Decimal("0.30"),
    "Future Option": Decimal("0.30"),
}
OPTION_LEG_CAP = Decimal("10.00")


def leg_fees(inst: Instrument, quantity: Decimal, opening: bool) -> tuple[Decimal, Decimal]:
    """``(commission, clearing)`` for one leg, as positive amounts."""
    qty = abs(quantity)
    clearing = CLEARING[inst.kind] * qty
    if inst.kind == "Equity Option":
        commission = min(COMMISSION["Equity Option"] * qty, OPTION_LEG_CAP) if opening else ZERO
    elif inst.kind == "Future Option":
        commission = FUTURE_OPTION_COMMISSION * qty if opening else ZERO
    elif inst.kind == "Future":
        commission = (MICRO_COMMISSION if inst.product.startswith("M") else COMMISSION["Future"]) * qty
    else:
        commission = ZERO
    return commission, clearing


def fee_calculation(commission: Decimal, clearing: Decimal) -> JSON:
    out: JSON = {}
    money(out, "regulatory-fees", ZERO)
    money(out, "clearing-fees", -clearing)
    money(out, "commission", -commission)
    money(out, "proprietary-index-option-fees", ZERO)
    money(out, "total-fees", -(clearing + commission))
    return out


class Accounts:
    """The customer's accounts; the single place that moves cash and positions."""

    def __init__(self, market: Market, now: datetime) -> None:
        self.market = market
        self._txn_ids = 900_000
        self.by_number: dict[str, Account] = {
            "5WT00001": Account("5WT00001", "Individual margin", True, True, "No Restrictions", Decimal(100_000), now),
            "5WT00002": Account("5WT00002", "Cash", False, False, "Limited", Decimal(25_000), now),
        }

    def get(self, number: str) -> Account | None:
        return self.by_number.get(number)

    # ------------------------------------------------------------------ fills

    def is_opening(self, account: Account, inst: Instrument, signed_qty: Decimal) -> bool:
        pos = account.positions.get(inst.symbol)
        return pos is None or pos.quantity == 0 or (pos.quantity > 0) == (signed_qty > 0)

    def apply_fill(
        self,
        account: Account,
        inst: Instrument,
        signed_qty: Decimal,
        price: Decimal,
        now: datetime,
        *,
        action: str = "",
        order_id: int | None = None,
    ) -> None:
        """Move the position and cash for one leg filled at ``price``; charge its fees and record
        a Trade transaction."""
        opening = self.is_opening(account, inst, signed_qty)
        commission, clearing = leg_fees(inst, signed_qty, opening)
        account.cash -= commission + clearing
        account.fees_today += commission + clearing
        cash_before = account.cash
        pos = account.positions.get(inst.symbol)
        if pos is None:
            pos = account.positions[inst.symbol] = Position(account.number, inst, created_at=now)
        mult = inst.multiplier
        futures_like = inst.kind == "Future"
        if not futures_like:
            account.cash -= signed_qty * price * mult
        qty = pos.quantity
        if qty == 0 or (qty > 0) == (signed_qty > 0):
            total = qty + signed_qty
            pos.average = (pos.average * abs(qty) + price * abs(signed_qty)) / abs(total)
            pos.quantity = total
        else:
            closing = min(abs(qty), abs(signed_qty))
            direction = 1 if qty > 0 else -1
            gain = (price - pos.average) * closing * mult * direction
            pos.realized += gain
            if futures_like:
                account.cash += gain
            pos.quantity = qty + signed_qty
            if pos.quantity != 0 and (pos.quantity > 0) != (qty > 0):  # flipped through zero
                pos.average = price
            elif pos.quantity == 0:
                pos.average = ZERO
        pos.updated_at = now
        if pos.created_at is None:
            pos.created_at = now
        moved = account.cash - cash_before
        self._record(account, inst, signed_qty, price, now, action, order_id, moved, commission, clearing)

    def _record(
        self,
        account: Account,
        inst: Instrument,
        signed_qty: Decimal,
        price: Decimal,
        now: datetime,
        action: str,
        order_id: int | None,
        value: Decimal,
        commission: Decimal,
        clearing: Decimal,
    ) -> None:
        self._txn_ids += 1
        side = action or ("Buy" if signed_qty > 0 else "Sell")
        verb = "Bought" if signed_qty > 0 else "Sold"
        data: JSON = {
            "id": self._txn_ids,
            "account-number": account.number,
            "transaction-type": "Trade",
            "transaction-sub-type": side,
            "description": f"{verb} {abs(signed_qty).normalize():f} {inst.symbol} @ {price}",
            "executed-at": iso(now),
            "transaction-date": now.date().isoformat(),
            "symbol": inst.symbol,
            "instrument-type": inst.kind,
            "underlying-symbol": inst.underlying,
            "action": side,
            "quantity": dec(abs(signed_qty)),
            "price": dec(price),
            "is-estimated-fee": False,
        }
        if order_id is not None:
            data["order-id"] = order_id
        money(data, "value", value)
        money(data, "net-value", value - commission - clearing)
        money(data, "commission", -commission)
        money(data, "clearing-fees", -clearing)
        money(data, "regulatory-fees", ZERO)
        account.transactions.append(data)

    # ------------------------------------------------------------------ requirements

    def mark(self, inst: Instrument, now: datetime) -> Decimal:
        quote = self.market.quote(inst.symbol, now)
        value = quote.mark()
        return value if value is not None else ZERO

    def requirement(self, account: Account, now: datetime) -> Decimal:
        total = ZERO
        for pos in account.positions.values():
            if pos.quantity == 0:
                continue
            inst = pos.inst
            value = abs(pos.quantity) * self.mark(inst, now) * inst.multiplier
            if inst.kind == "Equity":
                total += value * (Decimal("0.25") if pos.quantity > 0 else Decimal("0.30"))
            elif inst.kind == "Future":
                total += self.market.margins[inst.product] * abs(pos.quantity)
            elif pos.quantity < 0:  # short options
                under = self.mark(self.market.instruments[inst.underlying], now)
                if inst.kind == "Future Option":
                    total += self.market.margins[inst.product] * abs(pos.quantity)
                else:
                    total += Decimal("0.2") * under * inst.multiplier * abs(pos.quantity) + value
        return round_money(total)

    def values(self, account: Account, now: datetime) -> dict[str, Decimal]:
        out = dict.fromkeys(("long-eq", "short-eq", "long-der", "short-der", "long-fut", "short-fut", "fut-pnl"), ZERO)
        for pos in account.positions.values():
            if pos.quantity == 0:
                continue
            inst = pos.inst
            mark = self.mark(inst, now)
            value = abs(pos.quantity) * mark * inst.multiplier
            side = "long" if pos.quantity > 0 else "short"
            if inst.kind == "Equity":
                out[f"{side}-eq"] += value
            elif inst.kind == "Future":
                out[f"{side}-fut"] += value
                out["fut-pnl"] += (mark - pos.average) * pos.quantity * inst.multiplier
            else:
                out[f"{side}-der"] += value
        return out

    def net_liq(self, account: Account, now: datetime) -> Decimal:
        v = self.values(account, now)
        return round_money(account.cash + v["long-eq"] - v["short-eq"] + v["long-der"] - v["short-der"] + v["fut-pnl"])

    def buying_power(self, account: Account, now: datetime) -> Decimal:
        """Derivative buying power: what a new order's requirement is checked against."""
        if not account.margin:
            return round_money(account.cash)
        return round_money(self.net_liq(account, now) - self.requirement(account, now))

    # ------------------------------------------------------------------ JSON

    def account_json(self, account: Account) -> JSON:
        return {
            "account-number": account.number,
            "external-id": f"A{account.number}",
            "opened-at": iso(account.opened_at),
            "nickname": account.nickname,
            "account-type-name": "Individual",
            "day-trader-status": False,
            "is-closed": False,
            "is-firm-error": False,
            "is-firm-proprietary": False,
            "is-futures-approved": account.futures,
            "is-test-drive": False,
            "margin-or-cash": "Margin" if account.margin else "Cash",
            "is-foreign": False,
            "funding-date": account.opened_at.date().isoformat(),
            "investment-objective": "SPECULATION",
            "suitable-options-level": account.options_level,
            "created-at": iso(account.opened_at),
        }

    def balance_json(self, account: Account, now: datetime) -> JSON:
        v = self.values(account, now)
        net_liq = self.net_liq(account, now)
        maint = self.requirement(account, now)
        dbp = self.buying_power(account, now)
        ebp = round_money(dbp * 2) if account.margin else dbp
        data: JSON = {"account-number": account.number, "currency": "USD"}
        amounts = {
            "cash-balance": account.cash,
            "long-equity-value": v["long-eq"],
            "short-equity-value": v["short-eq"],
            "long-derivative-value": v["long-der"],
            "short-derivative-value": v["short-der"],
            "long-futures-value": v["long-fut"],
            "short-futures-value": v["short-fut"],
            "long-futures-derivative-value": ZERO,
            "short-futures-derivative-value": ZERO,
            "long-margineable-value": v["long-eq"],
            "short-margineable-value": v["short-eq"],
            "margin-equity": net_liq,
            "equity-buying-power": ebp,
            "derivative-buying-power": dbp,
            "day-trading-buying-power": round_money(dbp * 4) if account.margin else ZERO,
            "futures-margin-requirement": sum(
                (self.market.margins[p.inst.product] * abs(p.quantity))
                for p in account.positions.values()
                if p.inst.kind == "Future"
            )
            or ZERO,
            "available-trading-funds": dbp,
            "maintenance-requirement": maint,
            "maintenance-call-value": ZERO,
            "reg-t-call-value": ZERO,
            "day-trading-call-value": ZERO,
            "day-equity-call-value": ZERO,
            "net-liquidating-value": net_liq,
            "cash-available-to-withdraw": max(ZERO, min(account.cash, dbp)),
            "day-trade-excess": dbp,
            "long-cryptocurrency-value": ZERO,
            "short-cryptocurrency-value": ZERO,
            "cryptocurrency-margin-requirement": ZERO,
            "unsettled-cryptocurrency-fiat-amount": ZERO,
            "closed-loop-available-balance": max(ZERO, account.cash),
            "equity-offering-margin-requirement": ZERO,
            "long-bond-value": ZERO,
            "bond-margin-requirement": ZERO,
            "used-derivative-buying-power": maint,
            "reg-t-margin-requirement": maint,
            "futures-overnight-margin-requirement": ZERO,
            "futures-intraday-margin-requirement": ZERO,
            "maintenance-excess": round_money(net_liq - maint),
            "pending-margin-interest": ZERO,
            "effective-cryptocurrency-buying-power": ZERO,
        }
        for key, value in amounts.items():
            data[key] = dec(round_money(value))
        data["unsettled-cryptocurrency-fiat-effect"] = "None"
        money(data, "pending-cash", ZERO)
        data["snapshot-date"] = now.date().isoformat()
        data["time-of-day"] = "EOD"
        data["updated-at"] = iso(now)
        return data

    def position_json(self, pos: Position, now: datetime, *, marks: bool = False) -> JSON:
        inst = pos.inst
        quote = self.market.quote(inst.symbol, now)
        close = quote.prev_close if quote.prev_close is not None else self.mark(inst, now)
        data: JSON = {
            "account-number": pos.account,
            "symbol": inst.symbol,
            "instrument-type": inst.kind,
            "underlying-symbol": inst.underlying,
            "streamer-symbol": inst.streamer,
            "quantity": dec(abs(pos.quantity)),
            "quantity-direction": "Long" if pos.quantity > 0 else "Short" if pos.quantity < 0 else "Zero",
            "close-price": dec(close),
            "average-open-price": dec(pos.average.quantize(Decimal("0.0001")).normalize()),
            "average-yearly-market-close-price": dec(close),
            "average-daily-market-close-price": dec(close),
            "multiplier": dec(inst.multiplier),
            "cost-effect": "Debit" if pos.quantity > 0 else "Credit",
            "is-suppressed": False,
            "is-frozen": False,
            "restricted-quantity": "0.0",
            "created-at": iso(pos.created_at or now),
            "updated-at": iso(pos.updated_at or now),
        }
        money(data, "realized-day-gain", pos.realized)
        money(data, "realized-today", pos.realized)
        data["realized-day-gain-date"] = now.date().isoformat()
        data["realized-today-date"] = now.date().isoformat()
        if inst.expires is not None:
            data["expires-at"] = iso(inst.expires)
        if marks:
            mark = self.mark(inst, now)
            data["mark"] = dec(mark)
            data["mark-price"] = dec(mark)
        return data

    def trading_status_json(self, account: Account, now: datetime) -> JSON:
        return {
            "account-number": account.number,
            "equities-margin-calculation-type": "Reg T",
            "fee-schedule-name": "default",
            "futures-margin-rate-multiplier": "1.0",
            "has-intraday-equities-margin": account.margin,
            "id": int(account.number[-5:]),
            "is-aggregated-at-clearing": False,
            "is-closed": False,
            "is-closing-only": False,
            "is-cryptocurrency-enabled": False,
            "is-frozen": False,
            "is-full-equity-margin-required": False,
            "is-futures-closing-only": False,
            "is-futures-intra-day-enabled": account.futures,
            "is-futures-enabled": account.futures,
            "is-in-day-trade-equity-maintenance-call": False,
            "is-in-margin-call": False,
            "is-pattern-day-trader": False,
            "is-small-notional-futures-intra-day-enabled": account.futures,
            "is-roll-the-day-forward-enabled": False,
            "are-far-otm-net-options-restricted": False,
            "options-level": account.options_level,
            "short-calls-enabled": account.margin,
            "small-notional-futures-margin-rate-multiplier": "1.0",
            "is-equity-offering-enabled": False,
            "is-equity-offering-closing-only": False,
            "updated-at": iso(now),
            "day-trade-count": 0,
        }


def customer_json(now: datetime) -> JSON:
    address = {
        "city": "Chicago",
        "country": "USA",
        "is-domestic": True,
        "is-foreign": False,
        "postal-code": "60606",
        "state-region": "IL",
        "street-one": "1 Test Plaza",
    }
    return {
        "id": "me",
        "first-name": "Test",
        "last-name": "Trader",
        "address": address,
        "mailing-address": address,
        "customer-suitability": None,
        "usa-citizenship-type": "Citizen",
        "is-foreign": False,
        "mobile-phone-number": "+1 555 0100",
        "email": "trader@example.com",
        "tax-number-type": "SSN",
        "tax-number": "*****0000",
        "birth-date": "1980-01-01",
        "external-id": "U0000000001",
        "citizenship-country": "USA",
        "subject-to-tax-withholding": False,
        "agreed-to-margining": True,
        "agreed-to-terms": True,
        "has-industry-affiliation": False,
        "has-listed-affiliation": False,
        "has-political-affiliation": False,
        "has-delayed-quotes": False,
        "has-pending-or-approved-application": True,
        "is-professional": False,
        "permitted-account-types": [
            {
                "name": "Individual",
                "description": "Individual Account",
                "is-tax-advantaged": False,
                "is-publicly-available": True,
                "has-multiple-owners": False,
                "margin-types": [{"name": "Cash", "is-margin": False}, {"name": "Margin", "is-margin": True}],
            }
        ],
        "created-at": iso(now),
    }

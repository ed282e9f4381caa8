"""The ticket's estimated risk of an order in dollars. Pure (no Textual).

Risk is what the order loses if its stop-loss is hit: the stop distance in ticks, times the
size, times the tick value, plus the round-trip fees (entry and exit). The stop distance comes
from the bracket's stop-loss (in ticks, or as a price measured from the entry price). An order
without a stop-loss has no bounded risk; the estimate says so instead of inventing a number.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tterm.core.models import Instrument, OrderRequest, OrderType, Quote, Side
from tterm.tui import format as fmt


@dataclass(frozen=True, slots=True)
class RiskEstimate:
    """``total`` is None when the risk is not bounded (no stop-loss) or the entry is unknown."""

    total: Decimal | None
    fees: Decimal
    stop_ticks: Decimal | None
    entry: Decimal | None
    text: str


def entry_price(request: OrderRequest, quote: Quote | None) -> Decimal | None:
    """The price the order is expected to fill at: its limit or stop, else the far side of the market."""
    if request.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        return request.limit_price
    if request.order_type is OrderType.STOP:
        return request.stop_price
    if quote is None:
        return None
    far = quote.ask if request.side is Side.BUY else quote.bid
    return far if far is not None else quote.last


def estimate_risk(request: OrderRequest, inst: Instrument, quote: Quote | None) -> RiskEstimate:
    fees = inst.fee_per_side * 2 * request.quantity
    entry = entry_price(request, quote)
    bracket = request.bracket
    ticks: Decimal | None = None
    if bracket is not None and bracket.stop_loss_ticks is not None:
        ticks = Decimal(bracket.stop_loss_ticks)
    elif bracket is not None and bracket.stop_loss_price is not None and entry is not None:
        ticks = abs(inst.ticks_between(entry, bracket.stop_loss_price))
    if ticks is None:
        why = "unbounded: no stop-loss" if bracket is None or bracket.stop_loss_price is None else (
            "unknown until a quote gives the entry"
        )  # fmt: skip
        return RiskEstimate(None, fees, None, entry, f"{why} · fees {fmt.money(fees)}")
    total = ticks * request.quantity * inst.tick_value + fees
    text = (
        f"{fmt.money(total)} ({fmt.ticks(ticks)} × {request.quantity} × {fmt.money(inst.tick_value)} + "
        f"{fmt.money(fees)} fees)"
    )
    return RiskEstimate(total, fees, ticks, entry, text)

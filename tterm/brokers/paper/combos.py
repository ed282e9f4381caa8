"""Multi-leg (combo) orders on paper: the natural net price, and the cash an option book needs.

A combo order's legs trade together: each leg crosses its own spread (a buy leg pays the ask, a
sell leg gets the bid), and the combo's *natural* net price per unit is
``sum(ratio * ask of buy legs) - sum(ratio * bid of sell legs)``: a debit when positive. A debit
limit (side BUY) fills once the natural debit is at or below it; a credit limit (side SELL) once
the natural credit (the negative of the natural) is at or above it. Legs are priced at their
touch, so every leg fills inside its own market and the legs add up to the combo's price.

Cash accounts may hold short options only when covered: :func:`cash_needed` is the worst the
account's options and shares of one underlying can be worth at expiry (each option at its
intrinsic value, a conservative floor for a longer-dated option); that much cash must be set
aside. Short calls beyond the shares and long calls held are uncovered (unbounded), and refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

from tterm.core.models import ZERO, AssetClass, Instrument, OptionRight, OrderLeg, Quote, Side

Leg = tuple[OrderLeg, Instrument]


def natural(legs: Iterable[Leg], quotes: Mapping[str, Quote]) -> tuple[Decimal, list[Decimal]] | None:
    """The natural net price per unit (debit positive) and each leg's touch; None if a leg has none."""
    net = ZERO
    prices: list[Decimal] = []
    for leg, inst in legs:
        q = quotes.get(inst.symbol)
        if q is None:
            return None
        price = q.ask if leg.side is Side.BUY else q.bid
        if price is None:
            return None
        net += leg.side.sign * leg.ratio * price
        prices.append(price)
    return net, prices


def leg_sizes(legs: Iterable[Leg], quotes: Mapping[str, Quote], taken: Mapping[tuple[str, Side], int]) -> int | None:
    """How many combo units the touches can fill (None: every touch shows no size, so no limit)."""
    units: int | None = None
    for leg, inst in legs:
        q = quotes[inst.symbol]
        size = q.ask_size if leg.side is Side.BUY else q.bid_size
        if size <= 0:
            continue
        left = max(0, size - taken.get((inst.symbol, leg.side), 0))
        n = left // leg.ratio
        units = n if units is None else min(units, n)
    return units


def signed_limit(side: Side, limit: Decimal) -> Decimal:
    """A combo limit in debit terms: a debit limit as is, a credit limit negated."""
    return limit if side is Side.BUY else -limit


def net_price(side: Side, natural_debit: Decimal) -> Decimal:
    """The fill price reported for a combo: the net in the order's own direction (debit or credit)."""
    return natural_debit if side is Side.BUY else -natural_debit


# --------------------------------------------------------------------------- covered options


def _value_at(holdings: list[tuple[Instrument, int]], s: Decimal) -> Decimal:
    total = ZERO
    for inst, qty in holdings:
        if inst.asset_class is AssetClass.OPTION:
            assert inst.strike is not None
            intrinsic = max(s - inst.strike, ZERO) if inst.right is OptionRight.CALL else max(inst.strike - s, ZERO)
            total += inst.point_value * qty * intrinsic
        else:
            total += inst.point_value * qty * s
    return total


def cash_needed(holdings: Iterable[tuple[Instrument, int]]) -> Decimal | None:
    """Cash to set aside for one underlying's options and shares (``(instrument, signed qty)``).

    The negative of the lowest value they can have at expiry (zero when they cannot lose more
    than was paid); None when a rise of the underlying loses without limit (uncovered calls).
    """
    held = [(inst, qty) for inst, qty in holdings if qty]
    if not any(qty < 0 and inst.asset_class is AssetClass.OPTION for inst, qty in held):
        return ZERO
    slope = sum(
        (
            inst.point_value * qty
            for inst, qty in held
            if inst.asset_class is not AssetClass.OPTION or inst.right is OptionRight.CALL
        ),
        ZERO,
    )
    if slope < 0:
        return None
    points = {ZERO} | {inst.strike for inst, _ in held if inst.strike is not None}
    worst = min(_value_at(held, s) for s in points)
    return max(ZERO, -worst)

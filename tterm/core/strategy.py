"""Option strategies: legs built from a chain, their net price and what they can make or lose.

Pure (no Textual, no engine): the chain screen builds legs here (:func:`vertical`,
:func:`straddle`, :func:`strangle`, :func:`iron_condor`, or one leg at a time), prices them
(:func:`natural`, :func:`mid`), measures them at expiry (:func:`analyse`: net debit or credit,
maximum profit and loss, breakevens) and turns them into one multi-leg :class:`OrderRequest`
(:func:`build_request`) that goes through the normal preview and confirmation.

Conventions: a net price is per unit of the strategy, in the options' price points (multiply by
the multiplier, 100 for equity options, for dollars); positive is a debit (paid), negative a
credit (received). The order carries the net as a positive limit with its price effect, as
:class:`~tterm.core.models.OrderRequest` asks. Complex orders trade on a penny grid
(``InstrumentMaster.strategy``; data/options.toml), so a net price must be a whole number of
cents: one that is not is refused with the nearest valid prices, never rounded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from datetime import time as dtime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from tterm.core import blackscholes as bs
from tterm.core.models import (
    ZERO,
    AssetClass,
    ChainRow,
    Greeks,
    Instrument,
    ModelError,
    OptionChain,
    OptionQuote,
    OptionRight,
    OrderLeg,
    OrderRequest,
    OrderSource,
    OrderType,
    PriceEffect,
    Quote,
    Side,
)

#: The net-price grid of a multi-leg option order (the same penny the instrument master uses).
NET_TICK = Decimal("0.01")

#: The most legs one ticket holds (brokers take four: an iron condor, a butterfly, a box).
MAX_LEGS = 4


class StrategyError(ModelError):
    """Legs that cannot be built or sent as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class Leg:
    """One leg: an option (its instrument and last known market), bought or sold ``ratio`` times."""

    instrument: Instrument
    side: Side
    ratio: int = 1
    bid: Decimal | None = None
    ask: Decimal | None = None

    def __post_init__(self) -> None:
        inst = self.instrument
        if inst.asset_class is not AssetClass.OPTION or inst.strike is None or inst.right is None:
            raise StrategyError(f"{inst.symbol} is not an option: a strategy leg needs a strike and a right")
        if self.ratio < 1:
            raise StrategyError(f"{inst.symbol}: a leg's ratio must be at least 1, got {self.ratio}")

    @property
    def symbol(self) -> str:
        return self.instrument.symbol

    @property
    def strike(self) -> Decimal:
        assert self.instrument.strike is not None
        return self.instrument.strike

    @property
    def right(self) -> OptionRight:
        assert self.instrument.right is not None
        return self.instrument.right

    @property
    def mid(self) -> Decimal | None:
        if self.bid is not None and self.ask is not None:
            return (self.bid + self.ask) / 2
        return None

    def flipped(self) -> Leg:
        return Leg(self.instrument, self.side.opposite, self.ratio, self.bid, self.ask)

    def priced(self, quote: OptionQuote | None) -> Leg:
        """The same leg with the market of ``quote`` (None: unchanged)."""
        if quote is None:
            return self
        return Leg(self.instrument, self.side, self.ratio, quote.bid, quote.ask)

    def describe(self) -> str:
        inst = self.instrument
        when = f"{inst.expiry:%d %b %y}" if inst.expiry else ""
        right = "C" if self.right is OptionRight.CALL else "P"
        return f"{self.side.value} {self.ratio}x {inst.underlying} {when} {self.strike.normalize():f}{right}"


@dataclass(frozen=True, slots=True)
class Analysis:
    """A strategy at expiry, per unit, in price points (``multiplier`` times for money).

    ``max_profit`` / ``max_loss`` are None when unbounded (a naked short call loses without
    limit); ``max_loss`` is a positive number (what can be lost).
    """

    net: Decimal
    max_profit: Decimal | None
    max_loss: Decimal | None
    breakevens: tuple[Decimal, ...]
    multiplier: Decimal

    @property
    def effect(self) -> PriceEffect:
        return PriceEffect.DEBIT if self.net > 0 else PriceEffect.CREDIT

    def money(self, points: Decimal | None, quantity: int = 1) -> Decimal | None:
        return None if points is None else points * self.multiplier * quantity


# --------------------------------------------------------------------------- prices


def natural(legs: Sequence[Leg]) -> Decimal | None:
    """What the legs cost crossing every spread (buys at the ask, sells at the bid); None when a
    leg has no market. Positive: a debit."""
    net = ZERO
    for leg in legs:
        price = leg.ask if leg.side is Side.BUY else leg.bid
        if price is None:
            return None
        net += leg.side.sign * leg.ratio * price
    return net


def mid(legs: Sequence[Leg]) -> Decimal | None:
    """The legs' net at their mid prices; None when a leg has no two-sided market."""
    net = ZERO
    for leg in legs:
        m = leg.mid
        if m is None:
            return None
        net += leg.side.sign * leg.ratio * m
    return net


def on_grid(net: Decimal, *, toward: str = "nearest") -> Decimal:
    """``net`` on the penny grid: ``toward`` "pay" rounds against the trader (a debit up, a credit
    down: more likely to fill), "nearest" to the closest cent."""
    if toward == "pay":
        return net.quantize(NET_TICK, rounding=ROUND_CEILING)
    return net.quantize(NET_TICK)


def check_net_price(net: Decimal) -> Decimal:
    """A net price a person typed: on the grid and not zero, else StrategyError with the reason."""
    if not net.is_finite():
        raise StrategyError(f"net price {net} is not a number")
    if net == 0:
        raise StrategyError("a net price of 0 is neither a debit nor a credit: give a price, or 'mkt'")
    if net % NET_TICK != 0:
        down = net.quantize(NET_TICK, rounding=ROUND_FLOOR)
        raise StrategyError(
            f"net price {net} is off the tick grid (multi-leg orders trade in {NET_TICK}); "
            f"nearest valid prices {down} and {down + NET_TICK}"
        )
    return net


# --------------------------------------------------------------------------- at expiry


def payoff(legs: Sequence[Leg], spot: Decimal) -> Decimal:
    """The legs' value at expiry with the underlying at ``spot`` (per unit, before the net price)."""
    value = ZERO
    for leg in legs:
        intrinsic = max(ZERO, spot - leg.strike) if leg.right is OptionRight.CALL else max(ZERO, leg.strike - spot)
        value += leg.side.sign * leg.ratio * intrinsic
    return value


def analyse(legs: Sequence[Leg], net: Decimal) -> Analysis:
    """Net debit/credit, maximum profit and loss and breakevens of ``legs`` bought for ``net``.

    The profit at expiry is piecewise linear in the underlying, with kinks at the strikes: its
    extremes lie at 0, at a strike, or off to infinity (where the calls' net count sets the slope).
    """
    if not legs:
        raise StrategyError("no legs")
    mults = {leg.instrument.point_value for leg in legs}
    if len(mults) > 1:
        raise StrategyError(f"legs with different multipliers ({', '.join(map(str, sorted(mults)))})")
    strikes = sorted({leg.strike for leg in legs})
    points = [ZERO, *strikes]
    profits = [payoff(legs, s) - net for s in points]
    slope = sum((leg.side.sign * leg.ratio for leg in legs if leg.right is OptionRight.CALL), 0)
    best, worst = max(profits), min(profits)
    max_profit: Decimal | None = None if slope > 0 else best
    max_loss: Decimal | None = None if slope < 0 else -worst
    breakevens: set[Decimal] = set()
    for n in range(len(points) - 1):
        a, b, pa, pb = points[n], points[n + 1], profits[n], profits[n + 1]
        if pa == 0 and a > 0:
            breakevens.add(a)
        elif pa * pb < 0:
            breakevens.add(a + (b - a) * (-pa) / (pb - pa))
    last, plast = points[-1], profits[-1]
    if plast == 0 and last > 0:
        breakevens.add(last)
    elif slope != 0 and plast * slope < 0:
        breakevens.add(last - plast / slope)
    return Analysis(
        net=net,
        max_profit=max(max_profit, ZERO) if max_profit is not None else None,
        max_loss=max(max_loss, ZERO) if max_loss is not None else None,
        breakevens=tuple(sorted(b.quantize(NET_TICK) for b in breakevens)),
        multiplier=legs[0].instrument.point_value,
    )


# --------------------------------------------------------------------------- builders


def _row_index(chain: OptionChain, strike: Decimal) -> int:
    for i, row in enumerate(chain.rows):
        if row.strike == strike:
            return i
    raise StrategyError(f"no {strike.normalize():f} strike in the {chain.underlying} {chain.expiry:%Y-%m-%d} chain")


def _quote(row: ChainRow, right: OptionRight) -> OptionQuote:
    q = row.call if right is OptionRight.CALL else row.put
    if q is None:
        raise StrategyError(f"no {right.value} at the {row.strike.normalize():f} strike")
    return q


def leg_of(quote: OptionQuote, side: Side, ratio: int = 1) -> Leg:
    return Leg(quote.instrument, side, ratio, quote.bid, quote.ask)


def _neighbour(chain: OptionChain, i: int, step: int, what: str) -> ChainRow:
    j = i + step
    if not 0 <= j < len(chain.rows):
        direction = "above" if step > 0 else "below"
        raise StrategyError(f"no strike {direction} {chain.rows[i].strike.normalize():f} for {what}")
    return chain.rows[j]


def vertical(chain: OptionChain, strike: Decimal, right: OptionRight, width: int = 1) -> tuple[Leg, ...]:
    """Buy the option at ``strike``, sell the one ``width`` strikes further out of the money (a
    bull call or bear put spread: a debit). Reverse it for the credit side."""
    i = _row_index(chain, strike)
    step = width if right is OptionRight.CALL else -width
    far = _neighbour(chain, i, step, f"the short leg of a {right.value} vertical")
    return leg_of(_quote(chain.rows[i], right), Side.BUY), leg_of(_quote(far, right), Side.SELL)


def straddle(chain: OptionChain, strike: Decimal) -> tuple[Leg, ...]:
    """Buy the call and the put at ``strike``."""
    row = chain.rows[_row_index(chain, strike)]
    return leg_of(_quote(row, OptionRight.CALL), Side.BUY), leg_of(_quote(row, OptionRight.PUT), Side.BUY)


def strangle(chain: OptionChain, strike: Decimal, width: int = 1) -> tuple[Leg, ...]:
    """Buy the call ``width`` strikes above and the put ``width`` strikes below ``strike``."""
    i = _row_index(chain, strike)
    up = _neighbour(chain, i, width, "the strangle's call")
    down = _neighbour(chain, i, -width, "the strangle's put")
    return leg_of(_quote(up, OptionRight.CALL), Side.BUY), leg_of(_quote(down, OptionRight.PUT), Side.BUY)


def iron_condor(chain: OptionChain, strike: Decimal, inner: int = 1, wing: int = 1) -> tuple[Leg, ...]:
    """Sell the put ``inner`` strikes below and the call ``inner`` above ``strike``; buy the put and
    call ``wing`` strikes further out (a credit with a bounded loss)."""
    i = _row_index(chain, strike)
    short_put = _neighbour(chain, i, -inner, "the condor's short put")
    long_put = _neighbour(chain, i, -inner - wing, "the condor's long put")
    short_call = _neighbour(chain, i, inner, "the condor's short call")
    long_call = _neighbour(chain, i, inner + wing, "the condor's long call")
    return (
        leg_of(_quote(long_put, OptionRight.PUT), Side.BUY),
        leg_of(_quote(short_put, OptionRight.PUT), Side.SELL),
        leg_of(_quote(short_call, OptionRight.CALL), Side.SELL),
        leg_of(_quote(long_call, OptionRight.CALL), Side.BUY),
    )


def add_leg(legs: Sequence[Leg], leg: Leg) -> tuple[Leg, ...]:
    """``legs`` with ``leg`` added: the same option again changes that leg (a buy and a sell of one
    option cancel out), and all legs must share an underlying."""
    out = list(legs)
    for n, old in enumerate(out):
        if old.symbol == leg.symbol:
            signed = old.side.sign * old.ratio + leg.side.sign * leg.ratio
            if signed == 0:
                del out[n]
            else:
                out[n] = Leg(old.instrument, Side.BUY if signed > 0 else Side.SELL, abs(signed), leg.bid, leg.ask)
            return tuple(out)
    if out and out[0].instrument.underlying != leg.instrument.underlying:
        raise StrategyError(
            f"{leg.symbol} is on {leg.instrument.underlying}, the other legs on {out[0].instrument.underlying}: "
            "one order trades one underlying"
        )
    if len(out) >= MAX_LEGS:
        raise StrategyError(f"a multi-leg order holds at most {MAX_LEGS} legs")
    return (*out, leg)


# --------------------------------------------------------------------------- option symbols

_OCC_TEXT = re.compile(r"^([A-Z]{1,6})\s*(\d{6})([CP])(\d{8})$")


def parse_option_symbol(text: str) -> tuple[str, date, OptionRight, Decimal]:
    """An OCC option symbol (``AAPL  261218C00200000``, padding optional) -> (root, expiry,
    right, strike); StrategyError says which part does not parse."""
    s = " ".join(text.strip().upper().split())
    compact = s.replace(" ", "")
    if not compact:
        raise StrategyError("no option symbol given (e.g. AAPL  261218C00200000)")
    m = _OCC_TEXT.match(s) or _OCC_TEXT.match(compact)
    if m is None:
        hint = "ROOT, YYMMDD expiry, C or P, strike times 1000 in 8 digits: AAPL  261218C00200000"
        tail = re.match(r"^([A-Z]{1,6})\s*(\S*)$", s)
        if tail is None:
            raise StrategyError(f"{text.strip()!r} is not an option symbol ({hint})")
        rest = tail.group(2)
        if not re.match(r"^\d{6}", rest):
            raise StrategyError(f"{text.strip()!r}: the expiry must be six digits YYMMDD after the root ({hint})")
        if len(rest) < 7 or rest[6] not in "CP":
            raise StrategyError(f"{text.strip()!r}: C (call) or P (put) must follow the expiry ({hint})")
        raise StrategyError(f"{text.strip()!r}: the strike must be 8 digits, the price times 1000 ({hint})")
    root, ymd, cp, strike = m.groups()
    try:
        expiry = date(2000 + int(ymd[:2]), int(ymd[2:4]), int(ymd[4:]))
    except ValueError:
        raise StrategyError(f"{text.strip()!r}: {ymd} is not a date (YYMMDD)") from None
    value = Decimal(strike) / 1000
    if value <= 0:
        raise StrategyError(f"{text.strip()!r}: a strike of 0 is not an option")
    return root, expiry, OptionRight.CALL if cp == "C" else OptionRight.PUT, value


def check_live(legs: Iterable[Leg], today: date) -> None:
    """Refuse a leg on a series that has expired (the router refuses it too; the ticket says so first)."""
    for leg in legs:
        expiry = leg.instrument.expiry
        if expiry is not None and expiry < today:
            raise StrategyError(f"leg {leg.symbol} is on a series that expired on {expiry:%Y-%m-%d}")


# --------------------------------------------------------------------------- Greeks a broker did not send

#: The rate computed Greeks assume (continuously compounded): an assumption, shown as "computed".
COMPUTED_RATE = 0.04


def with_computed_greeks(chain: OptionChain, now: datetime, rate: float = COMPUTED_RATE) -> OptionChain:
    """``chain`` with Black-Scholes Greeks wherever the broker sent none: from the implied
    volatility it sent, else one implied from the mid; labelled ``computed``. Options with no
    underlying price, no market and no IV keep none. Expiry is taken at 16:00 New York."""
    spot = chain.underlying_price
    if spot is None or spot <= 0:
        return chain
    close = datetime.combine(chain.expiry, dtime(16, 0), tzinfo=ZoneInfo("America/New_York"))
    t = max(0.0, (close - now).total_seconds() / (365.0 * 86400))
    rows = []
    changed = False
    for row in chain.rows:
        quotes = []
        for q in (row.call, row.put):
            if q is None or q.greeks is not None:
                quotes.append(q)
                continue
            right: Literal["call", "put"] = "call" if q.instrument.right is OptionRight.CALL else "put"
            iv = q.iv
            if iv is None and q.mid is not None and q.mid > 0 and t > 0:
                try:
                    iv = bs.implied_vol(right, float(q.mid), float(spot), float(row.strike), t, rate)
                except (bs.ImpliedVolError, ValueError):
                    iv = None
            if iv is None:
                quotes.append(q)
                continue
            g = bs.greeks(right, float(spot), float(row.strike), t, rate, iv)
            greeks = Greeks(g.delta, g.gamma, g.theta, g.vega, g.rho, source="computed")
            quotes.append(replace(q, iv=iv, greeks=greeks))
            changed = True
        rows.append(ChainRow(row.strike, quotes[0], quotes[1]))
    return replace(chain, rows=tuple(rows)) if changed else chain


# --------------------------------------------------------------------------- the strategy's own quote


def combo_quote(symbol: str, legs: Iterable[tuple[OrderLeg, Quote | None]]) -> Quote | None:
    """A multi-leg order's market as one quote, in the orders' convention (a positive net with
    the side saying debit or credit), so pre-trade checks read it like any instrument's: the ask
    is what putting the legs on costs crossing every spread, the bid what taking them off brings.
    A credit structure is shown as positive credits (bid: the credit received now). None when a
    leg has no two-sided quote; the time is the oldest leg's (one stale leg makes it stale)."""
    ask = bid = ZERO
    oldest = None
    for leg, q in legs:
        if q is None or q.bid is None or q.ask is None:
            return None
        if leg.side is Side.BUY:
            ask += leg.ratio * q.ask
            bid += leg.ratio * q.bid
        else:
            ask -= leg.ratio * q.bid
            bid -= leg.ratio * q.ask
        oldest = q.ts if oldest is None or q.ts < oldest else oldest
    if oldest is None:
        return None
    if ask < 0:  # a credit: receive -ask to open, pay -bid to close
        bid, ask = -ask, -bid
    return Quote(symbol=symbol, bid=bid, ask=ask, ts=oldest)


# --------------------------------------------------------------------------- the order


def name_of(legs: Sequence[Leg]) -> str:
    """A short name for the strategy (the order's symbol): ``AAPL 18DEC26 200/205C vertical``."""
    if not legs:
        return ""
    under = legs[0].instrument.underlying
    expiries = sorted({leg.instrument.expiry for leg in legs if leg.instrument.expiry})
    when = "/".join(f"{e:%d%b%y}".upper() for e in expiries)
    strikes = "/".join(
        f"{leg.strike.normalize():f}{'C' if leg.right is OptionRight.CALL else 'P'}"
        for leg in sorted(legs, key=lambda x: (x.strike, x.right.value))
    )
    return f"{under} {when} {strikes} {kind_of(legs)}".strip()


def kind_of(legs: Sequence[Leg]) -> str:
    """What the legs are (vertical, straddle, strangle, iron condor...), or ``N-leg``."""
    rights = {leg.right for leg in legs}
    expiries = {leg.instrument.expiry for leg in legs}
    if len(legs) == 2 and len(expiries) == 1 and all(leg.ratio == 1 for leg in legs):
        a, b = legs
        if len(rights) == 1 and a.side is not b.side:
            return "vertical"
        if len(rights) == 2 and a.side is b.side:
            return "straddle" if a.strike == b.strike else "strangle"
    if len(legs) == 4 and len(rights) == 2 and len(expiries) == 1:
        puts = sorted((x for x in legs if x.right is OptionRight.PUT), key=lambda x: x.strike)
        calls = sorted((x for x in legs if x.right is OptionRight.CALL), key=lambda x: x.strike)
        if (len(puts) == 2 and [p.side for p in puts] == [Side.BUY, Side.SELL]
                and [c.side for c in calls] == [Side.SELL, Side.BUY]):  # fmt: skip
            return "iron condor"
    return f"{len(legs)}-leg"


def check_legs(legs: Sequence[Leg]) -> None:
    if len(legs) < 2:
        raise StrategyError("a multi-leg order needs at least two legs (b/s on the chain adds one)")


def build_request(
    account: str,
    legs: Sequence[Leg],
    quantity: int,
    net: Decimal | None,
    *,
    today: date,
    source: OrderSource = OrderSource.TICKET,
) -> OrderRequest:
    """One multi-leg order: ``net`` None is a market order, else a limit at that net (debit > 0)."""
    check_legs(legs)
    if quantity < 1:
        raise StrategyError(f"quantity must be at least 1, got {quantity}")
    check_live(legs, today)
    order_legs = tuple(OrderLeg(symbol=leg.symbol, side=leg.side, ratio=leg.ratio) for leg in legs)
    name = name_of(legs)
    if net is None:
        reference = natural(legs) or mid(legs) or ZERO
        side = Side.BUY if reference >= 0 else Side.SELL
        return OrderRequest(account=account, symbol=name, side=side, quantity=quantity,
                            order_type=OrderType.MARKET, legs=order_legs, source=source)  # fmt: skip
    check_net_price(net)
    effect = PriceEffect.DEBIT if net > 0 else PriceEffect.CREDIT
    return OrderRequest(
        account=account,
        symbol=name,
        side=Side.BUY if effect is PriceEffect.DEBIT else Side.SELL,
        quantity=quantity,
        order_type=OrderType.LIMIT,
        limit_price=abs(net),
        legs=order_legs,
        source=source,
        price_effect=effect,
    )


__all__ = [
    "MAX_LEGS",
    "NET_TICK",
    "Analysis",
    "Leg",
    "StrategyError",
    "add_leg",
    "analyse",
    "build_request",
    "check_legs",
    "check_live",
    "check_net_price",
    "combo_quote",
    "iron_condor",
    "kind_of",
    "leg_of",
    "mid",
    "name_of",
    "natural",
    "on_grid",
    "parse_option_symbol",
    "payoff",
    "straddle",
    "strangle",
    "vertical",
    "with_computed_greeks",
]

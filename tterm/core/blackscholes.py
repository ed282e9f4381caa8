"""Black-Scholes-Merton prices, Greeks and implied volatility for European options.

Pure float math (the standard library's ``math`` only), for option chains and the paper market.
Inputs: spot ``s``, strike ``k``, time to expiry ``t`` in years, risk-free rate ``r`` and dividend
yield ``q`` as continuously compounded fractions (0.05 = 5%), volatility ``sigma`` as a fraction
(0.20 = 20%). Greeks follow what brokers quote: ``theta`` per calendar day (the annual figure
over 365), ``vega`` and ``rho`` per one percentage point (the derivative over 100).

At expiry (``t <= 0``) or with no volatility an option is worth its discounted forward intrinsic
value; delta is then 0 or 1 (-1 for puts) and the other Greeks are zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Right = Literal["call", "put"]

_SQRT_2PI = math.sqrt(2 * math.pi)
_SQRT_2 = math.sqrt(2)


class ImpliedVolError(ValueError):
    """A price no volatility explains (below intrinsic value, above the no-arbitrage bound)."""


def norm_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / _SQRT_2)


def norm_pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / _SQRT_2PI


def _check(right: str, s: float, k: float, t: float, sigma: float) -> None:
    if right not in ("call", "put"):
        raise ValueError(f"option right must be 'call' or 'put', got {right!r}")
    if not (s > 0 and k > 0):
        raise ValueError(f"spot and strike must be positive (spot {s}, strike {k})")
    if not (math.isfinite(t) and math.isfinite(sigma)) or sigma < 0:
        raise ValueError(f"time {t} and volatility {sigma} must be finite, volatility >= 0")


def _d1_d2(s: float, k: float, t: float, r: float, q: float, sigma: float) -> tuple[float, float]:
    vt = sigma * math.sqrt(t)
    d1 = (math.log(s / k) + (r - q + 0.5 * sigma * sigma) * t) / vt
    return d1, d1 - vt


def _degenerate(t: float, sigma: float) -> bool:
    return t <= 0 or sigma * math.sqrt(max(t, 0.0)) < 1e-12


def price(right: Right, s: float, k: float, t: float, r: float, sigma: float, q: float = 0.0) -> float:
    """The option's value per unit of the underlying (multiply by 100 for an equity contract)."""
    _check(right, s, k, t, sigma)
    if _degenerate(t, sigma):
        t = max(t, 0.0)
        fwd = s * math.exp(-q * t) - k * math.exp(-r * t)
        return max(fwd, 0.0) if right == "call" else max(-fwd, 0.0)
    d1, d2 = _d1_d2(s, k, t, r, q, sigma)
    dq, dr = math.exp(-q * t), math.exp(-r * t)
    if right == "call":
        return s * dq * norm_cdf(d1) - k * dr * norm_cdf(d2)
    return k * dr * norm_cdf(-d2) - s * dq * norm_cdf(-d1)


@dataclass(frozen=True, slots=True)
class Sensitivities:
    """Price and Greeks of one option (theta per day, vega and rho per percentage point)."""

    price: float
    delta: float
    gamma: float
    theta: float
    vega: float
    rho: float


def greeks(right: Right, s: float, k: float, t: float, r: float, sigma: float, q: float = 0.0) -> Sensitivities:
    """Price, delta, gamma, theta (per calendar day), vega and rho (per 1 point) in one pass."""
    _check(right, s, k, t, sigma)
    value = price(right, s, k, t, r, sigma, q)
    if _degenerate(t, sigma):
        t = max(t, 0.0)
        fwd = s * math.exp(-q * t) - k * math.exp(-r * t)
        itm = fwd > 0 if right == "call" else fwd < 0
        delta = (1.0 if right == "call" else -1.0) * math.exp(-q * t) if itm else 0.0
        return Sensitivities(value, delta, 0.0, 0.0, 0.0, 0.0)
    d1, d2 = _d1_d2(s, k, t, r, q, sigma)
    dq, dr = math.exp(-q * t), math.exp(-r * t)
    sqrt_t = math.sqrt(t)
    pdf = norm_pdf(d1)
    gamma = dq * pdf / (s * sigma * sqrt_t)
    vega = s * dq * pdf * sqrt_t
    decay = -s * dq * pdf * sigma / (2 * sqrt_t)
    if right == "call":
        delta = dq * norm_cdf(d1)
        theta = decay - r * k * dr * norm_cdf(d2) + q * s * dq * norm_cdf(d1)
        rho = k * t * dr * norm_cdf(d2)
    else:
        delta = -dq * norm_cdf(-d1)
        theta = decay + r * k * dr * norm_cdf(-d2) - q * s * dq * norm_cdf(-d1)
        rho = -k * t * dr * norm_cdf(-d2)
    return Sensitivities(value, delta, gamma, theta / 365.0, vega / 100.0, rho / 100.0)


def bounds(right: Right, s: float, k: float, t: float, r: float, q: float = 0.0) -> tuple[float, float]:
    """The no-arbitrage range of a European option's price: (lower, upper)."""
    t = max(t, 0.0)
    fs, fk = s * math.exp(-q * t), k * math.exp(-r * t)
    if right == "call":
        return max(fs - fk, 0.0), fs
    return max(fk - fs, 0.0), fk


def implied_vol(
    right: Right,
    option_price: float,
    s: float,
    k: float,
    t: float,
    r: float,
    q: float = 0.0,
    *,
    tol: float = 1e-10,
    max_sigma: float = 10.0,
) -> float:
    """The volatility at which :func:`price` equals ``option_price``.

    Newton steps where vega is large enough, bisection otherwise (deep in or out of the money,
    where vega vanishes and Newton diverges), always inside a bracket that keeps shrinking, so
    it converges at the wings too. Raises :class:`ImpliedVolError` for a price outside the
    no-arbitrage bounds (or at the lower bound, where every small volatility fits) and for a
    series at or past expiry.
    """
    _check(right, s, k, max(t, 0.0), 0.0)
    if t <= 0:
        raise ImpliedVolError("an expired option has no implied volatility")
    if not math.isfinite(option_price):
        raise ImpliedVolError(f"price {option_price} is not a number")
    lower, upper = bounds(right, s, k, t, r, q)
    if option_price >= upper:
        raise ImpliedVolError(f"price {option_price:.6g} is at or above the no-arbitrage bound {upper:.6g}")
    if option_price <= lower + 1e-12 * max(1.0, s):
        raise ImpliedVolError(f"price {option_price:.6g} is at or below the intrinsic value {lower:.6g}")
    lo, hi = 1e-9, max_sigma
    if price(right, s, k, t, r, hi, q) < option_price:
        raise ImpliedVolError(f"price {option_price:.6g} needs a volatility above {max_sigma:.0%}")
    # Brenner-Subrahmanyam start, clamped into the bracket.
    sigma = min(max(math.sqrt(2 * math.pi / t) * option_price / s, 0.05), 2.0)
    for _ in range(200):
        value = price(right, s, k, t, r, sigma, q)
        diff = value - option_price
        if abs(diff) < tol * max(1.0, option_price):
            return sigma
        if diff > 0:
            hi = sigma
        else:
            lo = sigma
        d1, _ = _d1_d2(s, k, t, r, q, sigma)
        vega = s * math.exp(-q * t) * norm_pdf(d1) * math.sqrt(t)
        step = sigma - diff / vega if vega > 1e-12 else math.nan
        sigma = step if lo < step < hi else 0.5 * (lo + hi)
        if hi - lo < 1e-14:
            return sigma
    return sigma

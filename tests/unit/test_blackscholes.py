"""Black-Scholes against published values (Hull), put-call parity, and the implied-vol solver."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tterm.core import blackscholes as bs


def test_hull_example_prices() -> None:
    # Hull, Options, Futures, and Other Derivatives (8th ed.), Example 15.6:
    # S0 = 42, K = 40, r = 10%, sigma = 20%, T = 0.5: c = 4.76, p = 0.81.
    assert bs.price("call", 42, 40, 0.5, 0.10, 0.20) == pytest.approx(4.76, abs=0.005)
    assert bs.price("put", 42, 40, 0.5, 0.10, 0.20) == pytest.approx(0.81, abs=0.005)


def test_hull_greek_letters_example() -> None:
    # Hull (8th ed.), chapter "The Greek Letters": a call with S0 = 49, K = 50, r = 5%,
    # sigma = 20%, T = 20 weeks is worth $240,000 for 100,000 options (2.40 each); delta 0.522,
    # gamma 0.066, theta -4.31 a year, vega 12.1 and rho 8.91 per unit (here per point/day).
    g = bs.greeks("call", 49, 50, 20 / 52, 0.05, 0.20)
    assert g.price == pytest.approx(2.40, abs=0.005)
    assert g.delta == pytest.approx(0.522, abs=0.0005)
    assert g.gamma == pytest.approx(0.066, abs=0.0005)
    assert g.theta == pytest.approx(-4.31 / 365, abs=0.00005)
    assert g.vega == pytest.approx(0.121, abs=0.0005)
    assert g.rho == pytest.approx(0.0891, abs=0.00005)


def test_hull_implied_volatility_example() -> None:
    # Hull (8th ed.), section on implied volatilities: a call worth 1.875 with S0 = 21, K = 20,
    # r = 10%, T = 0.25 has an implied volatility of 23.5%.
    assert bs.implied_vol("call", 1.875, 21, 20, 0.25, 0.10) == pytest.approx(0.235, abs=0.0005)


def test_put_greeks_mirror_the_call() -> None:
    c = bs.greeks("call", 100, 105, 0.3, 0.03, 0.25, q=0.01)
    p = bs.greeks("put", 100, 105, 0.3, 0.03, 0.25, q=0.01)
    assert c.delta - p.delta == pytest.approx(math.exp(-0.01 * 0.3))
    assert c.gamma == pytest.approx(p.gamma) and c.vega == pytest.approx(p.vega)
    assert p.delta < 0 and p.rho < 0 < c.rho


def test_greeks_are_the_derivatives_of_the_price() -> None:
    args = dict(s=100.0, k=95.0, t=0.4, r=0.04, sigma=0.3, q=0.0)
    h = 1e-4
    for right in ("call", "put"):
        g = bs.greeks(right, **args)

        def f(**kw: float) -> float:
            return bs.price(right, **{**args, **kw})  # noqa: B023

        s = args["s"]
        assert g.delta == pytest.approx((f(s=s + h) - f(s=s - h)) / (2 * h), rel=1e-5)
        assert g.gamma == pytest.approx((f(s=s + h) - 2 * f() + f(s=s - h)) / h**2, rel=1e-3)
        assert g.vega == pytest.approx((f(sigma=0.3 + h) - f(sigma=0.3 - h)) / (2 * h) / 100, rel=1e-5)
        assert g.rho == pytest.approx((f(r=0.04 + h) - f(r=0.04 - h)) / (2 * h) / 100, rel=1e-5)
        assert g.theta == pytest.approx(-(f(t=0.4 + h) - f(t=0.4 - h)) / (2 * h) / 365, rel=1e-5)


@settings(max_examples=300, deadline=None)
@given(
    st.floats(5, 2000),
    st.floats(0.3, 3.0),
    st.floats(1 / 365, 3.0),
    st.floats(-0.01, 0.10),
    st.floats(0.0, 0.05),
    st.floats(0.02, 2.5),
)
def test_put_call_parity(s: float, moneyness: float, t: float, r: float, q: float, sigma: float) -> None:
    k = s * moneyness
    c = bs.price("call", s, k, t, r, sigma, q)
    p = bs.price("put", s, k, t, r, sigma, q)
    assert c - p == pytest.approx(s * math.exp(-q * t) - k * math.exp(-r * t), abs=1e-9 * max(s, k))
    lo, hi = bs.bounds("call", s, k, t, r, q)
    assert lo - 1e-9 * s <= c <= hi + 1e-9 * s


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["call", "put"]),
    st.floats(0.4, 2.5),
    st.floats(1 / 365, 2.0),
    st.floats(0.03, 3.0),
)
def test_implied_vol_recovers_sigma_even_at_the_wings(right: str, moneyness: float, t: float, sigma: float) -> None:
    s, r = 100.0, 0.04
    k = s * moneyness
    value = bs.price(right, s, k, t, r, sigma)  # type: ignore[arg-type]
    lo, _ = bs.bounds(right, s, k, t, r)  # type: ignore[arg-type]
    vega = bs.greeks(right, s, k, t, r, sigma).vega  # type: ignore[arg-type]
    if value - lo < 1e-9 or vega * 0.01 < 1e-8:
        # The price carries no usable information about sigma: worth intrinsic to the last digit, or
        # a sigma 1e-4 away moves it by under 1e-8 (deep in the money: 2.7e-7 of time value on 60).
        return
    iv = bs.implied_vol(right, value, s, k, t, r)  # type: ignore[arg-type]
    assert bs.price(right, s, k, t, r, iv) == pytest.approx(value, rel=1e-8, abs=1e-10)  # type: ignore[arg-type]
    assert iv == pytest.approx(sigma, rel=1e-4, abs=1e-4)


def test_deep_wing_solves_by_bisection() -> None:
    # A 1-DTE call 40% out of the money: vega is tiny, Newton alone would fly off.
    value = bs.price("call", 100, 140, 1 / 365, 0.04, 1.2)
    assert 0 < value < 1e-3
    assert bs.implied_vol("call", value, 100, 140, 1 / 365, 0.04) == pytest.approx(1.2, rel=1e-4)


@pytest.mark.parametrize(
    ("right", "value", "needle"),
    [
        ("call", 1.0, "intrinsic"),  # below the 10-point intrinsic value of a 90 call
        ("call", 120.0, "no-arbitrage bound"),
        ("put", 0.0, "intrinsic"),
    ],
)
def test_impossible_prices_are_refused(right: str, value: float, needle: str) -> None:
    with pytest.raises(bs.ImpliedVolError, match=needle):
        bs.implied_vol(right, value, 100, 90, 0.5, 0.0)  # type: ignore[arg-type]


def test_expired_and_bad_inputs() -> None:
    assert bs.price("call", 100, 90, 0, 0.05, 0.3) == pytest.approx(10)
    assert bs.price("put", 100, 90, -1, 0.05, 0.3) == 0
    g = bs.greeks("put", 80, 90, 0, 0.05, 0.3)
    assert (g.price, g.delta, g.gamma, g.vega) == (pytest.approx(10), -1.0, 0.0, 0.0)
    with pytest.raises(bs.ImpliedVolError, match="expired"):
        bs.implied_vol("call", 10, 100, 90, 0, 0.05)
    with pytest.raises(ValueError, match="positive"):
        bs.price("call", 0, 90, 1, 0.05, 0.3)
    with pytest.raises(ValueError, match="right"):
        bs.price("straddle", 100, 90, 1, 0.05, 0.3)  # type: ignore[arg-type]

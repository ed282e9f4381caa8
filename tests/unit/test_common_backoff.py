"""Backoff: exponential growth, cap, jitter bounds, reset."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tterm.brokers.common.backoff import Backoff


def test_deterministic_without_jitter_doubles_then_caps():
    b = Backoff(base=0.5, cap=4.0, jitter=0.0)
    assert [b.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert b.attempts == 6
    b.reset()
    assert b.next_delay() == 0.5


@given(
    base=st.floats(0.01, 5),
    factor=st.floats(1, 4),
    extra=st.floats(0, 100),
    jitter=st.floats(0, 1),
    seed=st.integers(0, 2**32),
    n=st.integers(1, 80),
)
def test_every_delay_lies_in_its_jitter_band_and_under_the_cap(base, factor, extra, jitter, seed, n):
    cap = base + extra
    b = Backoff(base=base, cap=cap, factor=factor, jitter=jitter, rng=random.Random(seed))
    for _ in range(n):
        ceiling = b.peek()
        delay = b.next_delay()
        assert ceiling * (1 - jitter) - 1e-9 <= delay <= ceiling + 1e-9
        assert 0 <= delay <= cap + 1e-9


def test_jitter_spreads_delays():
    b = Backoff(base=1, cap=1, jitter=1.0, rng=random.Random(7))
    delays = {round(b.next_delay(), 6) for _ in range(20)}
    assert len(delays) > 10


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"base": 0}, "base must be positive"),
        ({"base": 2, "cap": 1}, "cap"),
        ({"factor": 0.5}, "factor"),
        ({"jitter": 1.5}, "jitter"),
    ],
)
def test_bad_parameters_are_refused(kwargs, words):
    with pytest.raises(ValueError, match=words):
        Backoff(**kwargs)

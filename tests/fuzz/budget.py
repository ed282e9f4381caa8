"""How hard the fuzz tests try: TTERM_FUZZ_EXAMPLES examples per test (default 300, seconds in all).
A deep run: ``TTERM_FUZZ_EXAMPLES=5000 pytest tests/fuzz``. Hypothesis keeps failing examples in
its database and replays them first, and prints the seed to reproduce a failure."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

FUZZ = settings(
    max_examples=int(os.environ.get("TTERM_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

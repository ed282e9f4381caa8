"""Exponential backoff with jitter, for reconnects and penalty waits.

Jitter spreads reconnects of many clients (or many sockets of one client) so a vendor outage
does not end in a synchronised stampede.
"""

from __future__ import annotations

import random


class Backoff:
    """Delays ``base * factor**n`` capped at ``cap``, with a ``jitter`` fraction drawn at random.

    ``jitter=1.0`` is "full jitter" (uniform in ``[0, d]``); ``jitter=0.0`` is deterministic.
    Each delay lies in ``[d * (1 - jitter), d]`` where ``d`` is the un-jittered delay.
    """

    def __init__(
        self,
        base: float = 0.5,
        cap: float = 30.0,
        factor: float = 2.0,
        *,
        jitter: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        if base <= 0:
            raise ValueError(f"backoff base must be positive, got {base}")
        if cap < base:
            raise ValueError(f"backoff cap ({cap}) must be at least the base ({base})")
        if factor < 1:
            raise ValueError(f"backoff factor must be >= 1, got {factor}")
        if not 0.0 <= jitter <= 1.0:
            raise ValueError(f"backoff jitter must be between 0 and 1, got {jitter}")
        self.base = base
        self.cap = cap
        self.factor = factor
        self.jitter = jitter
        self._rng = rng or random.Random()
        self.attempts = 0

    def peek(self) -> float:
        """The un-jittered delay the next call to :meth:`next_delay` is drawn below."""
        # Cap the exponent so a long outage never overflows a float.
        exponent = min(self.attempts, 64)
        return min(self.cap, self.base * self.factor**exponent)

    def next_delay(self) -> float:
        """The next delay in seconds; each call counts one more attempt."""
        ceiling = self.peek()
        self.attempts += 1
        floor = ceiling * (1.0 - self.jitter)
        return floor + self._rng.random() * (ceiling - floor)

    def reset(self) -> None:
        """Start again from ``base`` (call after a success)."""
        self.attempts = 0

"""What every benchmark hands to ``bench/run``: figures with their goals, and the shared helpers.

A benchmark module ``bench/bench_<name>.py`` joins the table by defining one or more functions
named ``figures_<what>(quick: bool) -> list[Figure]`` (``figures`` alone works too). ``bench/run``
finds them by name, runs each in a fresh process, and prints one table; the module's own
``main()`` keeps printing its detailed report when it runs alone.
"""

from __future__ import annotations

import math
import os
import statistics
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure.

    ``median`` and ``p99`` are in ``unit`` (``p99`` is None for a single value such as a rate).
    ``goal`` is ``"<= 10"`` or ``">= 200000"`` (empty: no goal); it is checked against ``check``,
    the p99 when there is one unless ``check`` says ``"median"``. ``baseline`` names another figure
    of the same run to compare with (the ratio is this figure over that one). ``where`` says what
    the figure runs against when that is not the real thing (a fake broker, the paper broker).
    """

    name: str
    median: float
    unit: str
    p99: float | None = None
    goal: str = ""
    check: str = "p99"
    baseline: str = ""
    where: str = ""
    note: str = ""

    @property
    def checked(self) -> float:
        if self.check == "median" or self.p99 is None:
            return self.median
        return self.p99

    def met(self) -> bool | None:
        """True/False against the goal, None without one (or without a number)."""
        if not self.goal or math.isnan(self.checked):
            return None
        op, _, number = self.goal.partition(" ")
        limit = float(number)
        return self.checked <= limit if op == "<=" else self.checked >= limit

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Figure:
        return cls(**data)


def pct(values: list[float], p: float) -> float:
    """The ``p`` quantile (0..1) of ``values`` by rank; NaN for none."""
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def rss_mib(pid: int | None = None) -> float:
    """Resident set size of ``pid`` (this process by default) in MiB, from /proc (NaN elsewhere)."""
    try:
        with open(f"/proc/{pid or os.getpid()}/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return float("nan")
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points; NaN with fewer than two distinct x."""
    if len(points) < 2:
        return float("nan")
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    if den == 0:
        return float("nan")
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den

"""The fault suite's seed and its printed summary.

``TTERM_FAULT_SEED`` picks the schedule (default 17); a failure names the seed, so
``TTERM_FAULT_SEED=<seed> pytest tests/faults`` replays it exactly. ``TTERM_FAULT_ROUNDS`` makes
each broker's run longer (default: every fault once, at least 10 steps).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes import FakeClock
from tests.faults.fault_rigs import FAULT_RIGS, FaultRig
from tests.faults.harness import REPORT


@pytest.fixture
def fault_seed() -> str:
    return os.environ.get("TTERM_FAULT_SEED", "17")


@pytest.fixture
def fault_rounds() -> int:
    return int(os.environ.get("TTERM_FAULT_ROUNDS", "10"))


#: Waits on the fake clock up to this long are let run out at once (penalties, 429 holds);
#: longer ones (token lifetimes, refresh loops) are left alone, so the session stays open.
PUMP_UP_TO = 90.0


async def _pump(clock: FakeClock) -> None:
    """Advance the shared fake clock to the next short sleeper, so vendor waits pass in real time."""
    while True:
        waits = [w for w in clock.pending() if w <= PUMP_UP_TO]
        if waits:
            clock.advance(waits[0])
        await asyncio.sleep(0.01)


@pytest.fixture(params=sorted(FAULT_RIGS))
async def frig(request, tmp_path: Path) -> AsyncIterator[FaultRig]:
    r = FAULT_RIGS[request.param](tmp_path)
    await r.start()
    pump = asyncio.get_running_loop().create_task(_pump(r.rig.fake.clock))
    try:
        yield r
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
        await r.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not REPORT:
        return
    tr = terminalreporter
    tr.section("faults injected")
    by_target: dict[str, list] = {}
    for r in REPORT:
        by_target.setdefault(r.target, []).append(r)
    for target, rows in sorted(by_target.items()):
        ok = [r for r in rows if r.recovered]
        worst = max(ok, key=lambda r: r.seconds, default=None)
        worst_text = (
            f"worst recovery {worst.seconds:.2f} s ({worst.fault} at {worst.point})" if worst else "none recovered"
        )
        tr.write_line(f"{target}: {len(rows)} injected, {len(ok)} recovered, {worst_text}")
        kinds: dict[str, list] = {}
        for r in rows:
            kinds.setdefault(r.fault, []).append(r)
        for fault, rs in sorted(kinds.items()):
            seconds = max(r.seconds for r in rs)
            outcomes = "; ".join(sorted({f"{r.point}: {r.outcome}" for r in rs}))
            tr.write_line(f"    {fault:<12} x{len(rs)}  max {seconds:.2f} s  {outcomes}")

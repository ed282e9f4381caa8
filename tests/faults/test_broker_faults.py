"""Each broker fake hurt at random points of orders' lives (seeded): nothing lost or doubled, the
engine's positions equal the fake's book, the stream comes back, the journal holds every step.
A new broker joins by adding its fault rig to ``tests/faults/fault_rigs.FAULT_RIGS``."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.faults.fault_rigs import FaultRig
from tests.faults.harness import Chaos
from tests.integration.contract_rigs import NOW
from tterm.core.clock import CmeClock, default_calendar
from tterm.core.engine import Engine
from tterm.core.journal import Journal


@pytest.mark.timeout(240)
async def test_faults_at_random_points_of_an_orders_life(
    frig: FaultRig, tmp_path: Path, fault_seed: str, fault_rounds: int
) -> None:
    journal = Journal(tmp_path / "journal.sqlite3")
    clock = CmeClock(default_calendar(), now=lambda: NOW)
    engine = Engine(brokers=[frig.rig.broker], instruments=frig.rig.master, journal=journal, clock=clock)
    await engine.start()
    try:
        await engine.watch([frig.rig.symbol])
        chaos = Chaos(frig, engine, journal, random.Random(f"{fault_seed}:{frig.rig.name}"), fault_seed)
        await chaos.run(fault_rounds)
    finally:
        await engine.stop()
        journal.close()

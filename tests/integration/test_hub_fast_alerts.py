"""Alerts that follow each other faster than the broker's fills: each is planned against the
position the one before it made, never against a stale one."""

from __future__ import annotations

from pathlib import Path

from tests.integration.hub_support import SECRET, hub_rig, now_iso


def target(i: int, size: int, stamp: str) -> dict[str, object]:
    return {
        "ticker": "MES1!",
        "market_position": "long" if size > 0 else "short" if size < 0 else "flat",
        "market_position_size": abs(size),
        "id": f"fast-{i}",
        "time": stamp,
        "passphrase": SECRET,
    }


async def test_back_to_back_targets_each_trade_from_the_position_the_last_one_made(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        stamp = now_iso()
        sizes = [1, 0, 2, -1, 0, 3, 1, -2, 0, 2] * 3  # no two in a row alike
        sids = []
        for i, size in enumerate(sizes):  # no settling in between: the queue holds them all
            status, reply = await rig.post("trend", target(i, size, stamp))
            assert status == 202, reply
            sids.append(reply["id"])
        await rig.settle()
        assert rig.position("paper:A") == sizes[-1]
        for sid in sids:
            outcomes = rig.hub.store.outcomes(sid)
            assert {s for s, _, _ in outcomes.values()} == {"done"}, outcomes
        # Every order traded exactly the difference: the sum of the steps' absolute changes.
        fills = [f for f in rig.engine._fills if f.account == "paper:A"]
        moved = sum(abs(b - a) for a, b in zip([0, *sizes], sizes, strict=False))
        assert sum(f.quantity for f in fills) == moved
        # Only the last alert's order is remembered, until the next alert on the pair settles it.
        assert [len(c) for c in rig.hub.router._unsettled.values()] == [1]

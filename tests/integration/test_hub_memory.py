"""The hub's in-memory maps stay bounded over a long run, and idempotency does not depend on them."""

from __future__ import annotations

from pathlib import Path

from tests.integration.hub_support import SECRET, hub_rig, now_iso


def target(i: int, stamp: str) -> dict[str, object]:
    long = i % 2 == 0
    return {
        "ticker": "MES1!",
        "market_position": "long" if long else "flat",
        "market_position_size": 1 if long else 0,
        "id": f"mem-{i}",
        "time": stamp,
        "passphrase": SECRET,
    }


async def test_coid_map_forgets_orders_older_than_the_dedupe_window(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        router = rig.hub.router
        clock = [1000.0]
        router._monotonic = lambda: clock[0]
        stamp = now_iso()
        for i in range(6):
            status, _ = await rig.post("trend", target(i, stamp))
            assert status == 202
            await rig.settle()
        assert len(router.coid_signal) == 6  # all within the window (stale_after = 60 s)
        assert all(coid[2:18] == sid for coid, sid in router.coid_signal.items())

        clock[0] += router.stale_after + 1
        status, reply = await rig.post("trend", target(6, stamp))
        assert status == 202
        await rig.settle()
        assert list(router.coid_signal.values()) == [reply["id"]]  # only the one sent inside the window

        # A repeat of a forgotten alert is still refused (the store's dedup key), and trades nothing.
        held = rig.position("paper:A")
        status, dup = await rig.post("trend", target(0, stamp))
        assert (status, dup["error"]) == (200, "duplicate")
        await rig.settle()
        assert rig.position("paper:A") == held
        assert len(router.coid_signal) == 1


async def test_coid_map_has_a_hard_cap(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        router = rig.hub.router
        router.coid_limit = 3
        stamp = now_iso()
        sids = []
        for i in range(8):
            status, reply = await rig.post("trend", target(i, stamp))
            assert status == 202
            sids.append(reply["id"])
            await rig.settle()
        assert list(router.coid_signal.values()) == sids[-3:]
        assert len(router._coid_born) == 3 and len(router._coid_at) == 3
        assert router.received_perf == {}  # finished alerts leave no receipt time behind

"""Recovery after a crash, each case set up exactly: what the store says was in flight vs. what the broker has."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.integration.hub_support import hub_rig
from tterm.core.models import OrderRequest, OrderSource, Side
from tterm.hub import wire
from tterm.hub.routing import Step
from tterm.hub.webhook import Action, Signal


def crashed_alert(rig, sid: str, *, alert_time: datetime, steps: list[tuple[str, str]]) -> list[OrderRequest]:
    """Write the state a killed hub leaves behind: an accepted alert whose plan has ``steps``
    (status of each buy-1 order step, in order)."""
    signal = Signal(
        form="traderspost", ticker="MES1!", action=Action.BUY, side=Side.BUY, quantity=1, alert_time=alert_time
    )
    store = rig.hub.store
    store.insert_signal(
        signal_id=sid,
        dedup_key=f"trend|MES1!|{sid}",
        strategy="trend",
        ticker="MES1!",
        symbol=rig.contract(),
        form="traderspost",
        received_at=alert_time,
        alert_time=alert_time,
        signal=wire.encode(signal),
        targets=[("paper:A", "1")],
    )
    requests = [
        OrderRequest(
            account="paper:A",
            symbol=rig.contract(),
            side=Side.BUY,
            quantity=1,
            client_order_id=f"wh{sid}000{i:02d}",
            source=OrderSource.WEBHOOK,
            strategy="trend",
        )
        for i in range(len(steps))
    ]
    store.record_steps(
        sid,
        "paper:A",
        [
            ("order", Step("order", r.describe(), request=r, symbol=r.symbol).to_data(), r.client_order_id)
            for r in requests
        ],
    )
    for i, (status, _) in enumerate(steps):
        if status != "planned":
            store.set_step(sid, "paper:A", i, status)
    return requests


def outcome(rig, sid: str) -> dict:
    rows = [e.data for e in rig.journal.entries(kind="signal", ref=sid)]
    return {"account": next(r for r in rows if r["account"]), "final": rows[-1]}


async def broker_orders(rig) -> dict[str, int]:
    counts: dict[str, int] = {}
    for o in await rig.broker.orders("paper:A"):
        counts[o.client_order_id] = counts.get(o.client_order_id, 0) + 1
    return counts


async def test_an_order_in_flight_that_reached_the_broker_is_not_sent_again(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        now = datetime.now(UTC)
        req = crashed_alert(rig, "a" * 16, alert_time=now, steps=[("sending", "")])[0]
        # The broker got the order just before the hub died (its answer was lost).
        await rig.broker.place(req)
        stats = await rig.hub.router.recover()
        await rig.settle()
        assert (stats.found, stats.completed, stats.resumed) == (1, 1, 0)
        assert (await broker_orders(rig)) == {req.client_order_id: 1}
        got = outcome(rig, "a" * 16)
        assert got["account"]["status"] == "done" and "before the hub restarted" in got["account"]["summary"]
        assert got["final"]["status"] == "done"
        assert rig.hub.store.signal("a" * 16).status == "done"


async def test_an_order_that_never_reached_the_broker_is_sent_once_with_its_id(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        req = crashed_alert(rig, "b" * 16, alert_time=datetime.now(UTC), steps=[("sending", "")])[0]
        stats = await rig.hub.router.recover()
        await rig.settle()
        assert (stats.not_found, stats.resumed) == (1, 1)
        assert (await broker_orders(rig)) == {req.client_order_id: 1}
        assert rig.position("paper:A") == 1
        assert outcome(rig, "b" * 16)["final"]["status"] == "done"


async def test_a_partly_done_plan_resumes_after_the_last_sent_step(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        first, second = crashed_alert(
            rig, "c" * 16, alert_time=datetime.now(UTC), steps=[("sent", ""), ("planned", "")]
        )
        await rig.broker.place(first)
        await rig.settle()
        stats = await rig.hub.router.recover()
        await rig.settle()
        assert stats.resumed == 1
        assert (await broker_orders(rig)) == {first.client_order_id: 1, second.client_order_id: 1}


async def test_a_stale_unfinished_alert_is_marked_failed_not_traded(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        old = datetime.now(UTC) - timedelta(seconds=600)
        crashed_alert(rig, "d" * 16, alert_time=old, steps=[("planned", "")])
        stats = await rig.hub.router.recover()
        await rig.settle()
        assert stats.failed == 1
        assert await broker_orders(rig) == {}
        got = outcome(rig, "d" * 16)
        assert got["account"]["status"] == "failed"
        assert "older than 60 s; not sent" in got["account"]["summary"]
        assert got["final"]["status"] == "failed"
        notices = [e.data["text"] for e in rig.journal.entries(kind="notice")]
        assert any(t.startswith("hub restart: ") for t in notices)


async def test_when_the_broker_cannot_be_asked_nothing_is_resent(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        crashed_alert(rig, "e" * 16, alert_time=datetime.now(UTC), steps=[("sending", "")])

        async def down(account: str, client_order_id: str) -> None:
            raise ConnectionError("broker unreachable")

        rig.broker.find_order = down  # type: ignore[method-assign]
        stats = await rig.hub.router.recover()
        await rig.settle()
        assert stats.failed == 1
        assert await broker_orders(rig) == {}
        summary = outcome(rig, "e" * 16)["account"]["summary"]
        assert "could not ask the broker" in summary and "nothing resent" in summary

"""The full terminal attached to a hub over the WebSocket: it starts, shows the hub's accounts and
trades through it; quitting detaches and leaves the hub running."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.integration.hub_support import SECRET, TOKEN, hub_rig
from tterm.config import Settings
from tterm.hub.remote import RemoteEngineClient


async def test_terminal_attaches_trades_and_detaches(tmp_path: Path) -> None:
    from tterm.tui.app import TtermApp

    async with hub_rig(tmp_path) as rig:
        client = RemoteEngineClient(rig.url.replace("http://", "ws://"), TOKEN)
        settings = Settings.model_validate({"general": {"default_account": "paper:FUT50K"}})
        app = TtermApp(client, settings=settings, owns_engine=True)
        async with app.run_test(size=(160, 48)) as pilot:
            await asyncio.wait_for(app.ready.wait(), 10)
            assert set(app.bridge.state.accounts) == {"paper:A", "paper:B", "paper:C"}
            assert app.account in app.bridge.state.accounts
            # An alert traded on the hub reaches the attached screen's state.
            status, _ = await rig.post(
                "trend", {"ticker": "MES1!", "action": "buy", "quantity": 2, "passphrase": SECRET}
            )
            assert status == 202
            await rig.settle()
            for _ in range(200):
                await pilot.pause()
                positions = {(p.account, p.symbol): p.quantity for p in app.bridge.state.positions.values()}
                if positions.get(("paper:A", rig.contract())) == 2:
                    break
            assert positions.get(("paper:A", rig.contract())) == 2
        await rig.wait_clients(0)
        # The terminal is gone; the hub still trades.
        status, _ = await rig.post("trend", {"ticker": "MES1!", "action": "exit", "passphrase": SECRET})
        assert status == 202
        await rig.settle()
        assert rig.position("paper:A") == 0


async def test_an_alert_from_the_attached_terminal_fires_on_the_hub_with_a_toast(tmp_path: Path) -> None:
    from tests.tui.conftest import wait_for
    from tterm.tui.app import TtermApp

    async with hub_rig(tmp_path) as rig:
        client = RemoteEngineClient(rig.url.replace("http://", "ws://"), TOKEN)
        app = TtermApp(client, settings=Settings(), owns_engine=True)
        async with app.run_test(size=(160, 48), notifications=True) as pilot:
            await asyncio.wait_for(app.ready.wait(), 10)
            rung: list[int] = []
            app.bell = lambda: rung.append(1)  # type: ignore[method-assign]
            await pilot.press("colon", *"alert MES1! > 5001", "enter")
            await wait_for(lambda: len(app.bridge.state.alerts) == 1, pilot)
            [held] = await rig.engine.list_alerts()  # held by the hub, not the terminal
            assert held.armed and held.source == "remote"
            await rig.quote("MES1!", bid="5001.25", ask="5001.50")
            await wait_for(lambda: any("ALERT #1" in n.message for n in app._notifications), pilot)
            assert rung == [1]
            await pilot.press("colon", *"pnl 1", "enter")  # the hub's journal, over the wire
            await wait_for(lambda: getattr(app.screen, "report", None) is not None, pilot)
            assert app.screen.report.trips == ()  # type: ignore[attr-defined]
        await rig.wait_clients(0)
        [fired] = await rig.engine.list_alerts()
        assert not fired.armed

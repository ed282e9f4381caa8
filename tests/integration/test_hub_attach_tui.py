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

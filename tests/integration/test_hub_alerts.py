"""Price alerts over the hub's wire: created, listed, removed and refused from an attached client,
fired by the hub with no terminal attached, and announced to the clients that are."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.hub_support import TOKEN, hub_rig
from tterm.core.alerts import Alert, AlertFired, AlertOp, AlertSpec, AlertState
from tterm.core.client import EngineError
from tterm.hub.remote import RemoteEngineClient
from tterm.hub.server import PROTOCOL

D = Decimal


async def next_of(stream: Any, kind: type, pred: Any = lambda e: True, within: float = 5) -> Any:
    async def scan() -> Any:
        while True:
            event = await stream.get()
            if isinstance(event, kind) and pred(event):
                return event

    return await asyncio.wait_for(scan(), within)


async def test_alerts_over_the_wire(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        client = RemoteEngineClient(rig.url.replace("http://", "ws://"), TOKEN)
        await client.connect()
        try:
            stream = client.events()
            alert = await client.add_alert(AlertSpec("MES1!", AlertOp.GT, D("5001")))
            assert isinstance(alert, Alert) and alert.symbol == rig.contract() and alert.source == "remote"
            created = await next_of(stream, Alert, lambda a: a.alert_id == alert.alert_id)
            assert created.armed
            # Bad input is refused on the hub with its reason, and nothing is created.
            for spec, reason in (
                (AlertSpec("NOPE", AlertOp.GT, D("10")), "NOPE"),
                (AlertSpec("MES1!", AlertOp.GT, D("5000.10")), "off the tick grid"),
                (AlertSpec("MES1!", AlertOp.LT, D("-1")), "must be positive"),
                (AlertSpec("MES1!", AlertOp.LT, D("4990"), webhook="phone"), "no webhook named 'phone'"),
            ):
                with pytest.raises(EngineError, match=reason):
                    await client.add_alert(spec)
            with pytest.raises(EngineError, match="no alert #42"):
                await client.remove_alert(42)
            assert [a.alert_id for a in await client.list_alerts()] == [alert.alert_id]
            assert [a.alert_id for a in (await client.snapshot()).alerts] == [alert.alert_id]

            # The hub fires it; the attached client hears of it once.
            await rig.quote("MES1!", bid="5001.25", ask="5001.50")  # last = bid in the rig
            fired = await next_of(stream, AlertFired)
            assert fired.alert.alert_id == alert.alert_id and fired.price == D("5001.25")
            await rig.quote("MES1!", bid="5002.00", ask="5002.25")
            await rig.settle()
            assert not [e for e in stream.drain() if isinstance(e, AlertFired)]
            [listed] = await client.list_alerts()
            assert listed.state is AlertState.FIRED

            removed = await client.remove_alert(alert.alert_id)
            assert removed.state is AlertState.REMOVED
            assert await client.list_alerts() == []
        finally:
            await client.close()


async def test_the_hub_fires_alerts_with_no_terminal_attached(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        client = RemoteEngineClient(rig.url.replace("http://", "ws://"), TOKEN)
        await client.connect()
        a = await client.add_alert(AlertSpec("MES1!", AlertOp.CROSSES, D("4999")))
        await client.close()
        await rig.wait_clients(0)
        await rig.quote("MES1!", bid="4998.75", ask="4999.00")
        await rig.engine.alerts.settle()
        [alert] = await rig.engine.list_alerts()
        assert alert.alert_id == a.alert_id and alert.state is AlertState.FIRED
        events = [e.data["event"] for e in rig.journal.entries(kind="alert")]
        assert events == ["created", "fired"]


async def test_raw_wire_protocol_and_malformed_calls(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig, aiohttp.ClientSession() as http:
        ws = await http.ws_connect(
            rig.url.replace("http://", "ws://") + "/ws", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        hello = json.loads((await ws.receive()).data)
        assert hello["protocol"] == PROTOCOL == 3

        async def call(op: str, **args: Any) -> dict[str, Any]:
            await ws.send_str(json.dumps({"type": "call", "id": op, "op": op, "args": args}))
            while True:
                msg = json.loads((await ws.receive(timeout=5)).data)
                if msg.get("type") == "result" and msg.get("id") == op:
                    return msg

        bad = await call("remove_alert", alert_id="1")
        assert not bad["ok"] and bad["error"]["kind"] == "BadRequest"
        bad = await call("add_alert", spec={"$": "AlertSpec", "symbol": "MES1!", "op": "==", "price": "5001"})
        assert not bad["ok"] and "AlertSpec.op" in bad["error"]["message"]
        bad = await call("add_alert", spec={"$": "AlertSpec", "symbol": "MES1!", "op": ">", "price": 5001.5})
        assert not bad["ok"] and "AlertSpec.price" in bad["error"]["message"]
        good = await call("add_alert", spec={"$": "AlertSpec", "symbol": "MES1!", "op": ">", "price": "5001"})
        assert good["ok"] and good["result"]["$"] == "Alert" and good["result"]["price"] == "5001.00"
        await ws.close()
        assert len(await rig.engine.list_alerts()) == 1


async def test_a_resync_drops_alerts_removed_while_the_link_was_down(tmp_path: Path) -> None:
    async with hub_rig(tmp_path) as rig:
        client = RemoteEngineClient(rig.url.replace("http://", "ws://"), TOKEN)
        await client.connect()
        try:
            kept = await client.add_alert(AlertSpec("MES1!", AlertOp.GT, D("5010")))
            gone = await client.add_alert(AlertSpec("MES1!", AlertOp.GT, D("5020")))
            stream = client.events()
            # As if the link had dropped before this client heard of the removal:
            removed = await rig.engine.remove_alert(gone.alert_id)
            await next_of(stream, Alert, lambda a: a.alert_id == gone.alert_id)
            client._publish(replace(removed, state=AlertState.ARMED))  # the stale view
            stream.drain()
            await client._resync(reconnected=False)
            events = [e for e in stream.drain() if isinstance(e, Alert)]
            assert [(a.alert_id, a.state) for a in events] == [
                (kept.alert_id, AlertState.ARMED),
                (gone.alert_id, AlertState.REMOVED),
            ]
        finally:
            await client.close()

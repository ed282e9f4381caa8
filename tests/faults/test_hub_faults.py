"""The hub under faults: TradingView alerts into a hub whose broker (each fault rig's fake) is hurt,
alerts delivered twice, senders that hang up mid-request, the hub restarted between an alert and its
re-delivery, and the attached terminal's link cut (seeded).

Properties: every alert is answered and journaled to a final outcome; no order duplicated (a
re-delivered alert is a duplicate, never a second order; at most one vendor order per client order
id); no order lost (every order at the fake reached the engine, every order the hub says it sent is
at the fake); the engine's position equals the fake's book; the attached terminal's stream comes
back and brings the position.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.faults.fault_rigs import LASTING_FAULTS, REQUEST_FAULTS, FaultRig
from tests.faults.harness import REPORT, FaultRecord, Recorder
from tests.integration.contract_rigs import NOW
from tterm.config import HubSettings
from tterm.core.clock import CmeClock, default_calendar
from tterm.core.engine import Engine
from tterm.core.journal import Journal
from tterm.core.models import ConnectionState, ConnectionStatus, Position, SignalOutcome, SignalStatus
from tterm.hub.remote import RemoteEngineClient
from tterm.hub.service import Hub

SECRET = "chaos-hook-secret-5555"
TOKEN = "chaos-api-token-7777"
HUB_FAULTS = ("redeliver", "sender_drop", "hub_restart", "attach_drop")


class HubChaos:
    def __init__(self, frig: FaultRig, tmp: Path, rng: random.Random, seed: str) -> None:
        self.frig = frig
        self.rig = frig.rig
        self.tmp = tmp
        self.rng = rng
        self.seed = seed
        self.journal = Journal(tmp / "journal.sqlite3")
        clock = CmeClock(default_calendar(), now=lambda: NOW)
        self.engine = Engine(brokers=[self.rig.broker], instruments=self.rig.master, journal=self.journal, clock=clock)
        self.settings = HubSettings.model_validate(
            {
                "host": "127.0.0.1",
                "port": 0,
                "rate_limit": 10000,
                "rate_burst": 10000,
                "stale_after": 3600,
                "exit_fill_timeout": 5,
                "strategies": {"chaos": {"accounts": [self.rig.account]}},
            }
        )
        self.hub: Hub | None = None
        self.port = 0
        self.sub = self.engine.events("hub-faults")
        self.rec = Recorder()
        self.outcomes: dict[str, list[SignalOutcome]] = {}
        self.accepted: list[str] = []

    async def start(self) -> None:
        await self.engine.start()
        await self.engine.watch([self.rig.symbol])
        await self.start_hub()
        self.http = aiohttp.ClientSession()
        self.client = RemoteEngineClient(f"ws://127.0.0.1:{self.port}", TOKEN, backoff=(0.01, 0.05))
        await self.client.connect()
        self.stream = self.client.events()

    async def start_hub(self) -> None:
        self.hub = Hub(self.engine, self.settings, data_dir=self.tmp, webhook_secret=SECRET, api_token=TOKEN)
        self.port = await self.hub.start("127.0.0.1", self.port)

    async def stop(self) -> None:
        await self.client.close()
        await self.http.close()
        if self.hub is not None:
            await self.hub.stop()
        await self.engine.stop()
        self.journal.close()

    # ------------------------------------------------------------------ helpers

    def where(self, step: int = -1, fault: str = "") -> str:
        return f"hub on {self.rig.name}, seed {self.seed}" + (f" (alert {step}: {fault})" if step >= 0 else "")

    async def settle(self) -> None:
        assert self.hub is not None
        for _ in range(3):
            await asyncio.wait_for(self.hub.router.idle.wait(), 20)
            await self.engine.settle()
            for e in self.sub.drain():
                self.rec.take([e])
                if isinstance(e, SignalOutcome) and e.account:
                    self.outcomes.setdefault(e.signal_id, []).append(e)

    async def until(self, pred: Any, what: str, step: int, fault: str, within: float = 15) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not pred():
            if loop.time() > deadline:
                raise AssertionError(f"{self.where(step, fault)}: timed out waiting for {what}; {self.state()}")
            await asyncio.sleep(0.02)
            await self.settle()

    def held(self) -> int:
        return self.engine.position(self.rig.account, self.rig.symbol).quantity

    def state(self) -> str:
        return (
            f"engine {self.held()}, fake {self.frig.vendor_position()}, "
            f"connection {self.rig.broker.connection_state.value}, "
            f"fake orders {[(v.order_id, v.status) for v in self.frig.vendor_orders()]}"
        )

    def body(self, step: int) -> str:
        # Buy, then exit what is held, in turn (a TradersPost "sell" would reverse, two orders).
        action = "buy" if step % 2 == 0 else "exit"
        at = (datetime.now(UTC) - timedelta(seconds=60 - step)).isoformat(timespec="seconds")
        return json.dumps(
            {
                "ticker": self.rig.symbol,
                "action": action,
                "quantity": 1,
                "orderType": "market",
                "id": f"chaos-{self.seed}-{self.rig.name}-{step}",
                "time": at.replace("+00:00", "Z"),
                "passphrase": SECRET,
            }
        )

    async def post(self, body: str) -> tuple[int, dict[str, Any]]:
        url = f"http://127.0.0.1:{self.port}/webhook/chaos"
        async with self.http.post(url, data=body.encode(), headers={"Content-Type": "text/plain"}) as resp:
            return resp.status, await resp.json()

    async def hang_up(self, body: str) -> None:
        """A sender that writes the whole request, then hangs up without reading the answer."""
        _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        data = body.encode()
        writer.write(
            b"POST /webhook/chaos HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
            + f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
            + data
        )
        await writer.drain()
        writer.transport.abort()

    # ------------------------------------------------------------------ one alert

    async def alert(self, step: int, fault: str) -> None:
        body = self.body(step)
        started = time.monotonic()
        if fault in REQUEST_FAULTS:
            self.frig.arm(fault)
        elif fault in self.frig.faults:
            await self.frig.strike(fault)
        if fault == "sender_drop":
            await self.hang_up(body)
            await asyncio.sleep(0.05)
            await self.settle()
            status, reply = await self.post(body)  # TradingView's retry
            assert status in (200, 202), f"{self.where(step, fault)}: {status} {reply}"
            assert status == 202 or reply.get("error") == "duplicate", reply
        else:
            status, reply = await self.post(body)
            assert status == 202, f"{self.where(step, fault)}: {status} {reply}"
        sid = reply["id"]
        self.accepted.append(sid)
        if fault == "redeliver":
            again, dup = await self.post(body)
            assert (again, dup.get("error"), dup.get("id")) == (200, "duplicate", sid), dup
        if fault == "hub_restart":
            assert self.hub is not None
            await self.hub.stop()
            await self.start_hub()
            again, dup = await self.post(body)
            assert (again, dup.get("error"), dup.get("id")) == (200, "duplicate", sid), dup
        if fault == "attach_drop":
            assert self.hub is not None
            for ws in list(self.hub.server._clients):
                await ws.close()
        if fault in LASTING_FAULTS:
            await asyncio.sleep(self.frig.silence)
            await self.frig.heal(fault)
        recovered = False
        try:
            await self.recover(step, fault, sid)
            recovered = True
        finally:
            final = [o for o in self.outcomes.get(sid, []) if o.status is not SignalStatus.ACCEPTED]
            outcome = f"{final[-1].status.value}: {final[-1].summary}" if final else "no outcome"
            REPORT.append(
                FaultRecord(f"hub/{self.rig.name}", fault, "alert", recovered, time.monotonic() - started, outcome[:90])
            )

    async def recover(self, step: int, fault: str, sid: str) -> None:
        await self.settle()
        await self.until(
            lambda: any(o.status is not SignalStatus.ACCEPTED for o in self.outcomes.get(sid, [])),
            "the alert's outcome",
            step,
            fault,
        )
        await self.until(
            lambda: self.rig.broker.connection_state is ConnectionState.CONNECTED, "the broker", step, fault
        )
        await self.until(lambda: self.held() == self.frig.vendor_position(), "the position", step, fault)
        # The attached terminal's stream comes back (the hub's link and the broker's, through it).
        await self.until(lambda: self.client.connected, "the attached terminal", step, fault)
        held = self.held()
        deadline = asyncio.get_running_loop().time() + 10
        seen: Position | None = None
        snap = await asyncio.wait_for(self.client.snapshot(), 10)
        for p in snap.positions:
            if p.account == self.rig.account and p.symbol == self.rig.symbol:
                seen = p
        while (seen.quantity if seen else 0) != held:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"{self.where(step, fault)}: the attached terminal shows {seen}, not {held}")
            event = await asyncio.wait_for(self.stream.get(), left)
            if isinstance(event, Position) and event.account == self.rig.account and event.symbol == self.rig.symbol:
                seen = event
            elif isinstance(event, ConnectionStatus):
                continue

    # ------------------------------------------------------------------ the run

    def check_run(self) -> None:
        where = self.where()
        coids: list[str] = []
        for sid in self.accepted:
            final = [o for o in self.outcomes.get(sid, []) if o.status is not SignalStatus.ACCEPTED]
            assert final, f"{where}: alert {sid} has no final outcome"
            if final[-1].status is SignalStatus.DONE:
                coids.extend(final[-1].client_order_ids)
            rows = self.journal.entries(kind="signal", ref=sid)
            assert rows, f"{where}: alert {sid} is not in the journal"
        assert len(coids) == len(set(coids)), f"{where}: one client order id in two alerts: {coids}"
        vendor = self.frig.vendor_orders()
        # No order lost: every order at the fake reached the engine, and every order the hub says
        # it sent is at the fake (the fake keeps one order per request, so the counts agree).
        for v in vendor:
            assert v.order_id in self.rec.orders, f"{where}: the fake's order {v.order_id} never reached the engine"
        sent = [c for c in coids if c]
        assert len([v for v in vendor if v.status in ("filled", "working")]) == len(sent), (
            f"{where}: the hub sent {len(sent)} orders, the fake holds {[(v.order_id, v.status) for v in vendor]}"
        )
        clord_ids = getattr(getattr(self.frig, "fake", None), "clord_ids", None)
        if clord_ids is not None:  # a vendor that keeps tterm's id: exactly one order per id
            assert all(clord_ids[c] == 1 for c in sent), f"{where}: {[(c, clord_ids[c]) for c in sent]}"
        assert self.held() == self.frig.vendor_position(), f"{where}: {self.state()}"


@pytest.mark.timeout(240)
async def test_alerts_through_a_hub_under_faults(frig: FaultRig, tmp_path: Path, fault_seed: str) -> None:
    rng = random.Random(f"{fault_seed}:hub:{frig.rig.name}")
    chaos = HubChaos(frig, tmp_path, rng, fault_seed)
    await chaos.start()
    try:
        await frig.rig.set_market(Decimal("6650.00"), Decimal("6650.00") + frig.rig.tick)
        faults = [*HUB_FAULTS, *frig.faults]
        rng.shuffle(faults)
        for step, fault in enumerate(faults):
            await chaos.alert(step, fault)
        chaos.check_run()
    finally:
        await chaos.stop()

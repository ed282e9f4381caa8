"""Crash safety: `tterm hub` killed with SIGKILL in the middle of a burst of alerts, then restarted.

After the restart, every alert the hub acknowledged is either executed or marked failed in the
journal, none is executed twice (each client order id reaches the broker at most once, and the
position equals the number of executed alerts), and a repeat of any acknowledged alert is still
recognised as a duplicate.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

SECRET = "crash-test-secret-123456"
TOKEN = "crash-test-token-654321"
BURST = 150
KILL_AFTER_ACKS = 30

CONFIG = """
[general]
default_account = "paper:H1"

[paper]
seed = 11
quote_hz = 20.0
symbols = ["MES"]
accounts = [{ id = "H1", name = "Hub 1", kind = "futures", balance = 1000000 }]

[hub]
host = "127.0.0.1"
port = 0
rate_limit = 100000.0
rate_burst = 100000
stale_after = 300.0

[hub.strategies.burst]
accounts = ["paper:H1"]
pyramiding = true
"""


class HubProcess:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self.output: list[str] = []

    async def start(self) -> None:
        env = {
            **os.environ,
            "TTERM_CONFIG_DIR": str(self.root / "config"),
            "TTERM_DATA_DIR": str(self.root / "data"),
            "TTERM_HUB_WEBHOOK_SECRET": SECRET,
            "TTERM_HUB_API_TOKEN": TOKEN,
            "PYTHONUNBUFFERED": "1",
        }
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tterm.cli",
            "hub",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert self.proc.stdout is not None

        async def listening() -> int:
            assert self.proc is not None and self.proc.stdout is not None
            while True:
                line = (await self.proc.stdout.readline()).decode()
                if not line:
                    raise AssertionError("tterm hub exited:\n" + "".join(self.output))
                self.output.append(line)
                m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
                if m:
                    return int(m.group(1))

        self.port = await asyncio.wait_for(listening(), 60)
        self._drain = asyncio.create_task(self._read_rest())

    async def _read_rest(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.output.append(line.decode())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)

    async def wait(self) -> int:
        assert self.proc is not None
        rc = await asyncio.wait_for(self.proc.wait(), 60)
        await asyncio.wait_for(self._drain, 10)
        return rc

    async def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return await self.wait()


def alert(i: int, stamp: str) -> str:
    return json.dumps(
        {"ticker": "MES1!", "action": "buy", "quantity": 1, "id": f"burst-{i}", "time": stamp, "passphrase": SECRET}
    )


async def idle(http: aiohttp.ClientSession, url: str) -> None:
    """Wait until the restarted hub has nothing queued (recovery and resumed alerts done)."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    while True:
        async with http.get(f"{url}/health", headers=headers) as resp:
            body = await resp.json()
        if body.get("queued") is False:
            return
        await asyncio.sleep(0.05)


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


async def test_kill_9_mid_burst_then_restart_reconciles(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text(CONFIG)
    hub = HubProcess(tmp_path)
    await hub.start()
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    acked: dict[int, str] = {}
    enough = asyncio.Event()

    async with aiohttp.ClientSession() as http:

        async def send(i: int) -> None:
            try:
                async with http.post(f"{hub.url}/webhook/burst", data=alert(i, stamp)) as resp:
                    body = await resp.json()
            except (TimeoutError, aiohttp.ClientError):
                return  # the hub died before answering: this alert was never acknowledged
            if resp.status == 202:
                acked[i] = body["id"]
                if len(acked) >= KILL_AFTER_ACKS:
                    enough.set()

        # A first alert brings the market up, so the burst finds the queue trading, not waiting.
        await send(BURST)
        await asyncio.wait_for(idle(http, hub.url), 60)
        acked.clear()
        senders = [asyncio.create_task(send(i)) for i in range(BURST)]
        await asyncio.wait_for(enough.wait(), 60)
        hub.kill9()
        assert await hub.wait() == -signal.SIGKILL
        await asyncio.gather(*senders)
        assert len(acked) >= KILL_AFTER_ACKS

        restarted = HubProcess(tmp_path)
        await restarted.start()
        await asyncio.wait_for(idle(http, restarted.url), 60)
        # Every acknowledged alert is still known: repeats are duplicates, never traded again.
        for i, sid in acked.items():
            async with http.post(f"{restarted.url}/webhook/burst", data=alert(i, stamp)) as resp:
                body = await resp.json()
            assert (resp.status, body["error"], body["id"]) == (200, "duplicate", sid)
        assert await restarted.terminate() == 0

    data = tmp_path / "data"
    signals = dict(rows(data / "hub.sqlite3", "SELECT id, status FROM signals"))
    journal = rows(data / "journal.sqlite3", "SELECT ref, data FROM journal WHERE kind = 'signal'")
    final = {ref: json.loads(d)["status"] for ref, d in journal if json.loads(d)["account"] == ""}
    final = {ref: s for ref, s in final.items() if s != "accepted"}
    orders = [json.loads(d)["order"] for (d,) in rows(data / "paper.sqlite3", "SELECT data FROM orders")]
    coids = [o["client_order_id"] for o in orders]
    assert len(coids) == len(set(coids)), "a client order id reached the broker twice"

    executed = 0
    for sid in acked.values():
        # Executed or marked failed, in the hub's store and in the journal.
        assert signals[sid] in ("done", "failed"), (sid, signals[sid])
        assert final.get(sid) == signals[sid], (sid, final.get(sid))
        mine = [o for o in orders if o["client_order_id"].startswith(f"wh{sid}")]
        assert len(mine) <= 1, f"alert {sid} traded {len(mine)} times"
        if signals[sid] == "done":
            assert len(mine) == 1
            executed += 1
    # Alerts that were never acknowledged may still have been accepted just before the kill.
    extra = [o for o in orders if not any(o["client_order_id"].startswith(f"wh{s}") for s in acked.values())]
    assert all(signals.get(o["client_order_id"][2:18]) in ("done", "failed") for o in extra)
    filled = sum(o["filled_quantity"] for o in orders if o["side"] == "buy")
    positions = rows(data / "paper.sqlite3", "SELECT data FROM positions")
    held = sum(json.loads(d)["quantity"] for (d,) in positions)
    assert held == filled == len(orders)
    assert executed >= KILL_AFTER_ACKS
    # The restart log says what it recovered.
    assert any("listening on" in line for line in restarted.output)

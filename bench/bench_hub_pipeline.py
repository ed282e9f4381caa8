"""CPU per alert through the hub's pipeline, without HTTP: where the time of one alert goes.

``bench_hub.py`` measures the hub as TradingView sees it (a load generator in another process,
latencies under a fixed rate); its figures move with whatever else the machine runs. This bench
drives the same pipeline in-process and closed-loop — the webhook handler (secret, parse, accept,
journal row, durable wait, reply), the per-account queues, the router with its checks, the paper
broker with its store, the engine's ingest of every broker event — and reports CPU time per alert
(``time.process_time``, so another process's load barely moves it), with ``--batch`` alerts
arriving in each event-loop pass (1 = alerts one at a time, the worst case for group commits).

With ``--stages`` it also wraps the main synchronous stages in timers and prints inclusive
microseconds per alert for each (stages nest — accept contains a preview, place contains the
store write — so the column does not add up; the wrappers themselves cost about 1 us per call).

Run: ``python bench/bench_hub_pipeline.py [--alerts 2000] [--batch 1] [--stages]``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import shutil
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from bench_hub import SECRET, SYMBOLS, setup_hub  # same directory: run as `python bench/<name>.py`


class _Request:
    """The little of an aiohttp request the webhook handler reads."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self.match_info = {"strategy": "bench"}
        self.headers = {"Content-Type": "application/json"}
        self.remote = "127.0.0.1"
        self.content_length = len(body)

    async def read(self) -> bytes:
        return self._body


def _timed(table: dict[str, list[float]], name: str, fn: Any) -> Any:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            cell = table[name]
            cell[0] += time.perf_counter() - t0
            cell[1] += 1

    return wrapper


def _timed_async(table: dict[str, list[float]], name: str, fn: Any) -> Any:
    """Time the synchronous part of a coroutine function that does not suspend (the paper broker)."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            cell = table[name]
            cell[0] += time.perf_counter() - t0
            cell[1] += 1

    return wrapper


async def run(alerts: int, batch: int, stages: bool) -> float:
    """Print the report; return CPU microseconds per alert (all threads)."""
    from tterm.brokers.paper import store as paper_store
    from tterm.hub import server as hub_server

    broker, engine, hub, tmp = await setup_hub("bench-pipeline-", remote=False)
    journal = engine.journal
    await hub.router.start()

    table: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    if stages:
        router = hub.router
        hub_server.parse_body = _timed(table, "parse_body", hub_server.parse_body)
        hub_server.extract_secret = _timed(table, "extract_secret", hub_server.extract_secret)
        router.accept = _timed(table, "router.accept (incl. preview)", router.accept)  # type: ignore[method-assign]
        router._preview = _timed(table, "  preview (plan + checks)", router._preview)  # type: ignore[method-assign]
        router.plan = _timed(table, "router.plan", router.plan)  # type: ignore[method-assign]
        router._finish_account = _timed(table, "finish account", router._finish_account)  # type: ignore[method-assign]
        router._finish_signal = _timed(table, "finish signal", router._finish_signal)  # type: ignore[method-assign]
        hub.store.record_steps = _timed(table, "store.record_steps", hub.store.record_steps)  # type: ignore[method-assign]
        journal.record = _timed(table, "journal.record (all rows)", journal.record)  # type: ignore[method-assign]
        # The journal's and the hub store's inserts and commits run on the writer thread.
        writer = journal.writer
        writer._batch = _timed(table, "writer batch (writer thread)", writer._batch)  # type: ignore[method-assign]
        broker.place = _timed_async(table, "paper broker place (incl. store)", broker.place)  # type: ignore[method-assign]
        store = broker._store
        assert store is not None
        store.write = _timed(table, "  paper store write", store.write)  # type: ignore[method-assign]
        engine.ingest = _timed(table, "engine.ingest (all events)", engine.ingest)  # type: ignore[method-assign]
        del paper_store

    handler = hub.server._webhook
    stamp = datetime.now(UTC).isoformat(timespec="seconds")

    def body(i: int) -> bytes:
        sym = SYMBOLS[i % len(SYMBOLS)]
        target = "long" if (i // len(SYMBOLS)) % 2 == 0 else "flat"
        return json.dumps(
            {
                "ticker": sym,
                "market_position": target,
                "market_position_size": 1 if target == "long" else 0,
                "id": f"pipe-{i}",
                "time": stamp,
                "passphrase": SECRET,
            }
        ).encode()

    bodies = [body(i) for i in range(alerts)]
    statuses: Counter[int] = Counter()
    cpu0, thread0, wall0 = time.process_time(), time.thread_time(), time.perf_counter()
    for start in range(0, alerts, batch):
        replies = await asyncio.gather(*(handler(_Request(b)) for b in bodies[start : start + batch]))  # type: ignore[arg-type]
        statuses.update(r.status for r in replies)
    await asyncio.wait_for(hub.router.idle.wait(), 300)
    await engine.settle()
    await asyncio.sleep(0)
    cpu = time.process_time() - cpu0
    thread = time.thread_time() - thread0
    wall = time.perf_counter() - wall0

    print(
        f"{alerts} alerts, {batch} per loop pass: replies {dict(statuses)}; "
        f"{journal.count()} journal rows ({journal.count() / alerts:.1f} per alert)"
    )
    print(
        f"CPU per alert        {cpu / alerts * 1e6:7.0f} us all threads, {thread / alerts * 1e6:7.0f} us event loop "
        f"thread  ({alerts / wall:.0f} alerts/s closed-loop, {wall:.1f} s)"
    )
    if stages:
        print("stage (inclusive; nested stages overlap)            us/alert   calls/alert")
        for name, (secs, calls) in sorted(table.items(), key=lambda kv: -kv[1][0]):
            print(f"  {name:48s} {secs / alerts * 1e6:8.1f}   {calls / alerts:6.1f}")
    await hub.stop()
    await engine.stop()
    journal.close()
    shutil.rmtree(tmp, ignore_errors=True)  # the run's state files (hundreds of MB of WAL at peak)
    return cpu / alerts * 1e6


def figures_pipeline(quick: bool = False) -> list[Any]:
    """CPU per alert through the pipeline, one alert per loop pass and 20 at once."""
    from benchlib import Figure

    n = 1000 if quick else 3000
    where = "paper broker (scripted), no HTTP"
    return [
        Figure("hub pipeline CPU per alert, 1 a pass", asyncio.run(run(n, 1, False)), "us", where=where),
        Figure("hub pipeline CPU per alert, 20 a pass", asyncio.run(run(n, 20, False)), "us", where=where),
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--alerts", type=int, default=2000, help="alerts to send (default 2000)")
    p.add_argument("--batch", type=int, default=1, help="alerts arriving in one loop pass (default 1)")
    p.add_argument("--stages", action="store_true", help="time the main stages (adds ~1 us per wrapped call)")
    args = p.parse_args()
    asyncio.run(run(args.alerts, args.batch, args.stages))


if __name__ == "__main__":
    main()

"""The webhook hub under load: alerts over loopback HTTP -> engine -> paper accounts.

Sends ``--rate`` alerts a second for ``--seconds`` seconds (default 500/s for 10 s) from a separate
load-generator process, paced on a fixed schedule, and prints:

- acknowledgement latency p50/p99 (client: request sent -> reply received);
- alert-to-broker-submit latency p50/p99 (hub: request received -> the paper broker's ``place``
  called), for every order;
- lost alerts (acknowledged but never carried out) and duplicate orders (a client order id sent
  to the broker twice, or an alert that traded more than once in an account);
- the hub's CPU time per alert, and how busy the machine was (hub, load generator, anything else):
  the figures depend on what else runs, so compare ratios within one run.

Goals from the hub issue: ack p99 <= 10 ms, submit p99 <= 20 ms, 0 lost, 0 duplicates. Figures
only; nothing is asserted. The alerts are position targets alternating 1 and 0 on four symbols
fanned out to two paper accounts, so each alert is exactly one order per account.

With ``--accounts 20 --rate 20`` it measures the fan-out: one alert into 20 accounts, and the
time until the last of its 20 orders is submitted (goal p99 <= 50 ms).

Run: ``python bench/bench_hub.py [--rate 500] [--seconds 10] [--accounts 2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

SECRET = "bench-secret-0123456789"
SYMBOLS = ("MES1!", "MNQ1!", "M2K1!", "MYM1!")
PRICES = {"MES1!": "5000.00", "MNQ1!": "21000.00", "M2K1!": "2100.0", "MYM1!": "44000"}


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot, from /proc/stat (zeros elsewhere)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


# --------------------------------------------------------------------------- load generator (child process)


async def generate(url: str, rate: float, seconds: float) -> None:
    """Send alerts on a fixed schedule; print one JSON line of results."""
    import aiohttp

    n = int(rate * seconds)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    results: list[tuple[int, int, float, str]] = []
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def send(i: int) -> None:
            sym = SYMBOLS[i % len(SYMBOLS)]
            target = "long" if (i // len(SYMBOLS)) % 2 == 0 else "flat"
            body = json.dumps(
                {
                    "ticker": sym,
                    "market_position": target,
                    "market_position_size": 1 if target == "long" else 0,
                    "id": f"bench-{i}",
                    "time": stamp,
                    "passphrase": SECRET,
                }
            )
            t0 = time.perf_counter()
            try:
                async with http.post(url, data=body) as resp:
                    reply = await resp.json()
                    results.append((i, resp.status, time.perf_counter() - t0, reply.get("id", "")))
            except (aiohttp.ClientError, TimeoutError) as exc:
                results.append((i, 0, time.perf_counter() - t0, repr(exc)))

        start = time.perf_counter()
        tasks = []
        for i in range(n):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(i)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    print(json.dumps({"results": results, "elapsed": elapsed}))


# --------------------------------------------------------------------------- the hub (this process)


async def setup_hub(prefix: str, *, remote: bool = True, accounts: int = 2) -> tuple[Any, Any, Any, Path]:
    """The benches' hub: ``accounts`` paper accounts behind one strategy, a market in every bench symbol.

    Returns ``(broker, engine, hub, data_dir)``; the hub is built, not started.
    """
    from tterm.brokers.paper.broker import PaperAccountSpec, PaperBroker
    from tterm.config import HubSettings
    from tterm.core.engine import Engine
    from tterm.core.instruments import InstrumentMaster
    from tterm.core.journal import Journal
    from tterm.core.models import AccountKind, Quote
    from tterm.hub.service import Hub

    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    instruments = InstrumentMaster()
    specs = [
        PaperAccountSpec(id=f"B{i}", name=f"Bench {i}", kind=AccountKind.FUTURES, balance=Decimal(10_000_000))
        for i in range(1, accounts + 1)
    ]
    broker = PaperBroker("paper", accounts=specs, instruments=instruments, scripted=True, store_path=tmp / "p.db")
    engine = Engine(brokers=[broker], instruments=instruments, journal=Journal(tmp / "journal.sqlite3"))
    await engine.start()
    settings = HubSettings.model_validate(
        {
            "port": 0,
            "rate_limit": 1_000_000,
            "rate_burst": 1_000_000,
            "stale_after": 3600,
            "strategies": {"bench": {"accounts": [f"paper:B{i}" for i in range(1, accounts + 1)]}},
        }
    )
    hub = Hub(engine, settings, data_dir=tmp, webhook_secret=SECRET, api_token=None, remote=remote)
    for sym in SYMBOLS:
        await engine.subscribe([sym])
        px = Decimal(PRICES[sym])
        tick = instruments.resolve(sym).tick_size
        await broker.push_quote(Quote(symbol=sym, bid=px, ask=px + tick, last=px))
    await engine.settle()
    return broker, engine, hub, tmp


async def run(rate: float, seconds: float, accounts: int = 2) -> dict[str, Any]:
    """Drive the hub; print the report and return its figures (latencies in ms)."""
    broker, engine, hub, tmp = await setup_hub("bench-hub-", accounts=accounts)
    journal = engine.journal
    port = await hub.start("127.0.0.1", 0)
    gc.freeze()  # as `tterm hub` does once it is up (tterm.hub.service.serve_hub)

    submits: list[float] = []
    last_submit: dict[str, float] = {}  # alert -> its latest order's submit latency (the fan-out figure)
    placed: Counter[str] = Counter()
    original_place = broker.place
    router = hub.router

    async def timed_place(request):  # type: ignore[no-untyped-def]
        now = time.perf_counter()
        placed[request.client_order_id] += 1
        sid = router.coid_signal.get(request.client_order_id)
        received = router.received_perf.get(sid) if sid else None
        if received is not None:
            submits.append(now - received)
            last_submit[sid] = now - received  # type: ignore[index]
        return await original_place(request)

    broker.place = timed_place  # type: ignore[method-assign]

    url = f"http://127.0.0.1:{port}/webhook/bench"
    cpu0 = time.process_time()
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    stat0 = machine_ticks()
    wall0 = time.perf_counter()
    print(f"hub on {url}; sending {int(rate * seconds)} alerts at {rate:g}/s for {seconds:g} s ...", flush=True)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--client", url, "--rate", str(rate), "--seconds", str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    data = json.loads(out.decode().strip().splitlines()[-1])
    drain_start = time.perf_counter()
    await asyncio.wait_for(router.idle.wait(), 300)
    drain = time.perf_counter() - drain_start
    wall = time.perf_counter() - wall0
    hub_cpu = time.process_time() - cpu0
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    gen_cpu = (kids1.ru_utime - kids0.ru_utime) + (kids1.ru_stime - kids0.ru_stime)
    stat1 = machine_ticks()

    results = data["results"]
    acks = [r[2] * 1000 for r in results if r[1] == 202]
    acked = {r[3] for r in results if r[1] == 202}
    statuses = Counter(r[1] for r in results)
    store = hub.store
    # Lost: acknowledged but not carried out in every account. An alert skipped as "already at the
    # target" was carried out: concurrent requests can overtake each other on the way in, and a
    # target alert is applied in the order the hub received it.
    lost = 0
    reordered = 0
    why: Counter[str] = Counter()
    for sid in acked:
        row = store.signal(sid)
        outcomes = store.outcomes(sid)
        if row is None or len(outcomes) != accounts or any(o[0] not in ("done", "skipped") for o in outcomes.values()):
            lost += 1
            for status, summary, _ in outcomes.values():
                if status not in ("done", "skipped"):
                    why[f"{status}: {summary[:90]}"] += 1
        elif any(o[0] == "skipped" for o in outcomes.values()):
            reordered += 1
    dup_coids = sum(1 for n in placed.values() if n > 1)
    per_signal: Counter[tuple[str, str]] = Counter()
    for coid in placed:
        sid = router.coid_signal.get(coid, coid[2:18])
        per_signal[(sid, coid[18:21])] += 1
    dup_signals = sum(1 for n in per_signal.values() if n > 1)

    print(f"sent {len(results)} alerts in {data['elapsed']:.2f} s ({len(results) / data['elapsed']:.0f}/s); "
          f"replies {dict(statuses)}; queue drained {drain:.2f} s after the last reply")  # fmt: skip
    print(f"ack latency          p50 {pct(acks, 0.50):7.2f} ms   p99 {pct(acks, 0.99):7.2f} ms   (goal p99 <= 10 ms)")
    ms = [s * 1000 for s in submits]
    print(f"alert -> broker submit p50 {pct(ms, 0.50):5.2f} ms   p99 {pct(ms, 0.99):7.2f} ms   "
          f"(goal p99 <= 20 ms; {len(ms)} orders)")  # fmt: skip
    fan = [v * 1000 for v in last_submit.values()]
    print(f"last order of an alert p50 {pct(fan, 0.50):5.2f} ms   p99 {pct(fan, 0.99):7.2f} ms   "
          f"(alert -> its {accounts}th order submitted; goal p99 <= 50 ms for 20 accounts)")  # fmt: skip
    print(f"lost alerts          {lost}   (acknowledged, not carried out in every account; {reordered} arrived "
          "after a later alert and were correctly skipped as already at the target)")  # fmt: skip
    for reason, count in why.most_common(5):
        print(f"    {count} x {reason}")
    print(f"duplicate orders     {dup_coids + dup_signals}   ({dup_coids} client order ids sent twice, "
          f"{dup_signals} alert+account pairs with more than one order)")  # fmt: skip
    rows = journal.count()
    print(f"journal rows         {rows} ({rows / max(1, len(results)):.1f} per alert: the webhook; each order's "
          "request, decision, ack, updates and fill; each account's outcome and the alert's)")  # fmt: skip
    cores = os.cpu_count() or 1
    busy = (stat1[0] - stat0[0]) / max(1, stat1[1] - stat0[1]) * cores
    other = max(0.0, busy * wall - hub_cpu - gen_cpu) / wall
    per_alert = hub_cpu / max(1, len(results)) * 1e6
    print(f"hub CPU              {per_alert:7.0f} us per alert ({hub_cpu / wall:.0%} of a core over {wall:.1f} s, "
          "all threads)")  # fmt: skip
    print(f"machine              {cores} cores, {busy:.2f} busy: hub {hub_cpu / wall:.2f}, load generator "
          f"{gen_cpu / wall:.2f}, everything else {other:.2f}; load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    broker.place = original_place  # type: ignore[method-assign]
    await hub.stop()
    await engine.stop()
    journal.close()
    shutil.rmtree(tmp, ignore_errors=True)  # the run's state files (hundreds of MB of WAL at peak)
    return {
        "acks": acks,
        "submits": ms,
        "last": fan,
        "lost": lost,
        "duplicates": dup_coids + dup_signals,
        "cpu_us": per_alert,
        "alerts": len(results),
        "failed": sum(n for st, n in statuses.items() if st != 202),
        "replies": ", ".join(f"{n} x {st or 'no reply'}" for st, n in sorted(statuses.items()))
        + "".join(f"; {n} x {err}" for err, n in Counter(r[3][:100] for r in results if r[1] == 0).items()),
    }


WHERE = "paper broker (scripted), loopback HTTP"


def figures_webhook(quick: bool = False) -> list[Any]:
    """500 alerts/s into two accounts: ack and submit latency, lost and doubled orders, CPU."""
    from benchlib import Figure, median

    r = asyncio.run(run(500.0, 4.0 if quick else 10.0, accounts=2))
    return [
        Figure("webhook ack at 500 alerts/s", median(r["acks"]), "ms", pct(r["acks"], 0.99), "<= 10", where=WHERE),
        Figure(
            "alert -> broker submit at 500/s", median(r["submits"]), "ms", pct(r["submits"], 0.99), "<= 20", where=WHERE
        ),
        Figure("hub CPU per alert (2 accounts)", r["cpu_us"], "us", where=WHERE),
        Figure("alerts lost (acknowledged, not done)", r["lost"], "alerts", goal="<= 0", where=WHERE),
        Figure(
            "alerts not acknowledged (no 202)",
            r["failed"],
            "alerts",
            goal="<= 0",
            where=WHERE,
            note=f"replies: {r['replies']}",
        ),
        Figure("orders doubled", r["duplicates"], "orders", goal="<= 0", where=WHERE),
    ]


def figures_fanout(quick: bool = False) -> list[Any]:
    """One alert into 20 accounts, 20 alerts/s: the last of each alert's 20 orders."""
    from benchlib import Figure, median

    r = asyncio.run(run(20.0, 5.0 if quick else 10.0, accounts=20))
    return [
        Figure(
            "fan-out to 20 accounts: last order", median(r["last"]), "ms", pct(r["last"], 0.99), "<= 50", where=WHERE
        ),
        Figure("fan-out: alerts lost or not acknowledged", r["lost"] + r["failed"], "alerts", goal="<= 0", where=WHERE),
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=500.0, help="alerts per second (default 500)")
    p.add_argument("--seconds", type=float, default=10.0, help="how long to send (default 10)")
    p.add_argument("--accounts", type=int, default=2, help="paper accounts the strategy fans out to (default 2)")
    p.add_argument("--client", metavar="URL", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.client:
        asyncio.run(generate(args.client, args.rate, args.seconds))
    else:
        asyncio.run(run(args.rate, args.seconds, args.accounts))


if __name__ == "__main__":
    main()

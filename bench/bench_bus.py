"""Quotes through the engine without a UI: Engine.ingest -> book mark -> bus -> subscribers.

Prints quotes per second and per-event latency (publish -> subscriber receives) p50/p99 for a
few subscriber shapes, with and without market depth flowing on the same bus (a 10-level Depth
event every ``--depth-every`` quotes, coalesced per symbol like quotes). Goal from the engine
issue: >= 200,000 quotes/s on one core, depth included (contract v2 issue). Figures only;
nothing is asserted. Run: ``python bench/bench_bus.py [--quotes N] [--symbols N] [--depth-every N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import time
from datetime import date
from decimal import Decimal

from tterm.core.engine import Engine
from tterm.core.instruments import InstrumentMaster
from tterm.core.journal import Journal
from tterm.core.models import Depth, DepthLevel, Fill, Quote, Side


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


async def run(
    n_quotes: int, n_symbols: int, n_subs: int, coalesce: bool, batch: int, depth_every: int = 0
) -> dict[str, float]:
    master = InstrumentMaster(today=lambda: date(2026, 11, 24))
    engine = Engine(brokers=[], instruments=master, journal=Journal(":memory:"))
    roots = master.roots
    symbols = [master.front(roots[i % len(roots)], nth=1 + i // len(roots)).symbol for i in range(n_symbols)]
    # Hold a position in every tenth symbol so the book's mark path is exercised too.
    for i, sym in enumerate(symbols[::10]):
        engine.book.apply_fill(Fill(f"f{i}", "o", "c", "paper:FUT50K", sym, Side.BUY, 1, Decimal("5000")))
    sent_at: list[int] = [0] * n_quotes
    latencies: list[list[float]] = [[] for _ in range(n_subs)]
    subs = [engine.bus.subscribe(f"s{i}", coalesce=coalesce) for i in range(n_subs)]
    received = [0] * n_subs
    done = asyncio.Event()

    async def consume(i: int) -> None:
        sub = subs[i]
        lat = latencies[i]
        while True:
            await sub.wait()
            now = time.perf_counter_ns()
            for ev in sub.drain():
                if type(ev) is not Quote:
                    continue
                seq = int(ev.volume)
                lat.append((now - sent_at[seq]) / 1000.0)
                received[i] += 1
                if seq == n_quotes - 1:
                    done.set()
                    return

    tasks = [asyncio.create_task(consume(i)) for i in range(n_subs)]
    prices = [Decimal(5000) + Decimal(k) / 4 for k in range(64)]
    quotes = [
        Quote(symbol=symbols[k % n_symbols], bid=prices[k % 64], ask=prices[(k + 1) % 64], volume=k)
        for k in range(n_quotes)
    ]
    depths = [
        Depth(
            symbol=sym,
            bids=tuple(DepthLevel(prices[(j + 8) % 64], 10 + j) for j in range(10)),
            asks=tuple(DepthLevel(prices[(j + 9) % 64], 12 + j) for j in range(10)),
        )
        for sym in symbols
    ]
    ingest = engine.ingest
    clock = time.perf_counter_ns
    n_depth = 0
    t0 = time.perf_counter()
    for k, q in enumerate(quotes):
        sent_at[k] = clock()
        ingest(q)
        if depth_every and k % depth_every == 0:
            ingest(depths[k % n_symbols])
            n_depth += 1
        if k % batch == batch - 1:
            await asyncio.sleep(0)  # let the subscribers run, like a real feed between reads
    publish_s = time.perf_counter() - t0
    await asyncio.wait_for(done.wait(), 60)
    total_s = time.perf_counter() - t0
    for t in tasks:
        t.cancel()
    engine.publish_marks()
    all_lat = [x for lat in latencies for x in lat]
    return {
        "quotes": n_quotes,
        "publish_rate": n_quotes / publish_s,
        "end_to_end_rate": n_quotes / total_s,
        "p50_us": pct(all_lat, 0.50),
        "p99_us": pct(all_lat, 0.99),
        "delivered_per_sub": statistics.mean(received),
        "depth_rate": n_depth / publish_s,
    }


def figures_bus(quick: bool = False) -> list[object]:
    """Quotes through the engine to three coalescing subscribers, with depth flowing."""
    from benchlib import Figure

    r = asyncio.run(run(100_000 if quick else 300_000, 200, 3, True, 500, 4))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return [
        Figure("engine quotes/s, 3 subscribers + depth", r["publish_rate"], "quotes/s", goal=">= 200000"),
        Figure("engine publish -> subscriber", r["p50_us"], "us", r["p99_us"]),
        Figure("engine bench peak RSS", rss, "MiB"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quotes", type=int, default=300_000)
    ap.add_argument("--symbols", type=int, default=200)
    ap.add_argument("--batch", type=int, default=500, help="quotes published between yields to the loop")
    ap.add_argument("--depth-every", type=int, default=4, help="one Depth event per N quotes in the depth rows")
    args = ap.parse_args()
    print(f"engine bench: {args.quotes:,} quotes over {args.symbols} symbols, yield every {args.batch}")
    print(
        f"{'subscribers':>12} {'coalesce':>9} {'depth/s':>9} {'publish q/s':>13} {'end-to-end q/s':>15} "
        f"{'p50 us':>9} {'p99 us':>9} {'delivered/sub':>14}"
    )
    shapes = [(1, True, 0), (3, True, 0), (3, False, 0), (10, True, 0), (3, True, args.depth_every)]
    for n_subs, coalesce, depth_every in shapes:
        r = asyncio.run(run(args.quotes, args.symbols, n_subs, coalesce, args.batch, depth_every))
        print(
            f"{n_subs:>12} {coalesce!s:>9} {r['depth_rate']:>9,.0f} {r['publish_rate']:>13,.0f} "
            f"{r['end_to_end_rate']:>15,.0f} {r['p50_us']:>9.1f} {r['p99_us']:>9.1f} {r['delivered_per_sub']:>14,.0f}"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"max RSS {rss:.0f} MiB")
    print("goal: >= 200,000 quotes/s on one core, depth flowing too; latency is publish -> subscriber wake")


if __name__ == "__main__":
    main()

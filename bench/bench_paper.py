"""The paper market's own speed: quotes per second out of the paper broker, with and without depth.

Runs a scripted paper broker over its default symbols and calls ``step()`` (every symbol moves
once: the book, its trades, the bars, matching, the events) as fast as it goes, draining the
event stream as the engine would. Four shapes: nothing subscribed, quotes subscribed, quotes with
depth and trades subscribed, and the same with a few working orders and a held option (whose
book follows its underlying). Figures only; nothing is asserted.
Run: ``python bench/bench_paper.py [--steps N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import date

from tterm.brokers.paper import DEFAULT_ACCOUNTS, DEFAULT_SYMBOLS, PaperBroker
from tterm.core.broker import NotSupported
from tterm.core.instruments import InstrumentMaster
from tterm.core.models import OrderRequest, OrderType, Side


async def run(steps: int, *, quotes: bool, depth: bool, orders: bool) -> tuple[float, int]:
    master = InstrumentMaster(today=lambda: date(2025, 11, 3))
    broker = PaperBroker("paper", accounts=DEFAULT_ACCOUNTS, instruments=master, seed=1, scripted=True)
    await broker.connect()
    symbols = [master.resolve(s).symbol for s in DEFAULT_SYMBOLS]
    if quotes:
        await broker.subscribe_quotes(symbols)
    if depth:
        try:
            await broker.subscribe_depth(symbols)
            await broker.subscribe_trades(symbols)
        except NotSupported:
            pass
    await broker.step()
    if orders:
        for sym in ("MES1!", "ES1!", "NQ1!"):
            q = broker.quote(sym)
            assert q is not None and q.bid is not None
            far = q.bid - 400 * master.resolve(sym).tick_size
            req = OrderRequest("paper:FUT50K", sym, Side.BUY, 1, OrderType.LIMIT, limit_price=far)
            await broker.place(req)
        call = "AAPL  261218C00270000"
        await broker.place(OrderRequest("paper:CASH", call, Side.BUY, 1))
    events = 0
    queue = broker._events  # the engine drains this stream; the bench drains it directly
    t0 = time.process_time()
    n = 0
    for _ in range(steps):
        n += len(await broker.step())
        while not queue.empty():
            queue.get_nowait()
            events += 1
    elapsed = time.process_time() - t0
    await broker.close()
    return n / elapsed, events


def figures_paper(quick: bool = False) -> list[object]:
    """The paper market's own speed: quotes it makes per CPU second, with depth, trades and orders."""
    from benchlib import Figure

    rate, _ = asyncio.run(run(1000 if quick else 3000, quotes=True, depth=True, orders=True))
    return [Figure("paper market quotes per CPU s", rate, "quotes/s", where="paper broker")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=3000)
    args = ap.parse_args()
    print(f"paper bench: {args.steps:,} steps over {len(DEFAULT_SYMBOLS)} symbols (CPU time)")
    print(f"{'shape':>34} {'quotes/s':>10} {'events':>9}")
    for label, kw in (
        ("nothing subscribed", {"quotes": False, "depth": False, "orders": False}),
        ("quotes subscribed", {"quotes": True, "depth": False, "orders": False}),
        ("quotes + depth + trades", {"quotes": True, "depth": True, "orders": False}),
        ("quotes + depth + trades + orders", {"quotes": True, "depth": True, "orders": True}),
    ):
        rate, events = asyncio.run(run(args.steps, **kw))
        print(f"{label:>34} {rate:>10,.0f} {events:>9,}")


if __name__ == "__main__":
    main()

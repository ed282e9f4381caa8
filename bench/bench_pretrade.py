"""Pre-trade checks: microseconds per check, and per order through the router's whole check chain.

Every order from every source runs these before it reaches a broker, so they must cost
microseconds. Prints the mean time per call of each check on a realistic context (a profile
account holding a position, working orders, a fresh quote), the whole chain as the router runs
it (``Router._run_checks``), and a monitor tick (``RiskTracker.update``). Figures only; nothing
is asserted. Run: ``python bench/bench_pretrade.py [--n N]``.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from tterm.core.instruments import InstrumentMaster
from tterm.core.journal import Journal
from tterm.core.models import (
    Account,
    Bracket,
    Order,
    OrderRequest,
    OrderSource,
    OrderStatus,
    OrderType,
    Position,
    Quote,
    Side,
)
from tterm.core.router import CheckContext, LockCheck, Router
from tterm.risk.pretrade import RiskView, risk_checks
from tterm.risk.profiles import load_profiles
from tterm.risk.rules import RiskTracker
from tterm.risk.settings import RiskSettings

D = Decimal
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def context(master: InstrumentMaster) -> CheckContext:
    mes, es = master.resolve("MES"), master.resolve("ES")
    account = Account(id="paper:FUT50K", broker="paper", vendor_id="FUT50K", name="50K", profile="topstep-50k-combine")
    req = OrderRequest(
        account=account.id,
        symbol=mes.symbol,
        side=Side.BUY,
        quantity=2,
        order_type=OrderType.LIMIT,
        limit_price=D("6799.00"),
        bracket=Bracket(stop_loss_ticks=12, take_profit_ticks=24),
        source=OrderSource.HOTKEY,
    )
    pos = Position(account.id, mes.symbol, 1, avg_price=D("6795.00"))
    working = Order("o1", "c1", account.id, mes.symbol, Side.BUY, 1, OrderType.LIMIT, OrderStatus.WORKING)
    return CheckContext(
        request=req,
        account=account,
        instrument=mes,
        quote=Quote(mes.symbol, bid=D("6800.00"), ask=D("6800.25"), last=D("6800.00"), ts=NOW - timedelta(seconds=1)),
        position=pos,
        positions=(pos, Position(account.id, es.symbol, 1, avg_price=D("6790"))),
        open_orders=(working,),
        lock=None,
        now=NOW,
    )


def per_call(fn, n: int) -> float:
    """Mean microseconds per call over ``n`` calls (best of three runs)."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - t0)
    return best / n * 1e6


def setup() -> tuple[InstrumentMaster, object, list, CheckContext]:
    """The instruments, the rule profiles, the check chain of a profile account, an order's context."""
    master = InstrumentMaster(today=lambda: date(2026, 11, 24))
    profiles = load_profiles(user=False)
    profile = profiles.get("topstep-50k-combine")
    view = RiskView(
        account="paper:FUT50K",
        profile=profile,
        floor=D(48000),
        floor_distance=D(1850),
        buffer=D(200),
        daily_loss_limit=D(1000),
        dll_distance=D(860),
        dll_buffer=D(100),
        contracts_max=5,
        cutoff_at=NOW + timedelta(hours=6),
        flatten_at=NOW + timedelta(hours=5, minutes=58),
        window_end=NOW + timedelta(hours=8),
    )
    views = {"paper:FUT50K": view}
    # Round two: a news rule, the hedging rule (two other accounts hold positions) and your limits.
    from tterm.risk.news import load_calendar
    from tterm.risk.pretrade import GuardView
    from tterm.risk.profiles import NewsAction, NewsRule

    rule = NewsRule(rule=NewsAction.NO_ENTRIES, before_minutes=5, after_minutes=5)
    guard = GuardView(
        "paper:FUT50K", news=((rule, "yours"),), no_hedging="your settings", max_trades=20, max_loss_per_trade=D(500)
    )
    calendar = load_calendar(user=False)
    book = [Position("paper:B", master.resolve("MES").symbol, 2), Position("paper:C", master.resolve("NQ").symbol, -1)]
    checks = [
        LockCheck(),
        *risk_checks(
            views.get, RiskSettings(), master, guards=lambda a: guard, calendar=lambda: calendar, positions=lambda: book
        ),
    ]
    return master, profiles, checks, context(master)


def figures_pretrade(quick: bool = False) -> list[object]:
    """The whole pre-trade chain per order, as the router runs it."""
    from benchlib import Figure

    master, _, checks, ctx = setup()
    router = Router(brokers={}, instruments=master, state=None, journal=Journal(":memory:"), checks=checks)  # type: ignore[arg-type]
    us = per_call(lambda: router._run_checks(ctx), 10_000 if quick else 50_000)
    return [Figure(f"pre-trade checks per order ({len(checks)} checks)", us, "us")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000, help="calls per measurement (default 50000)")
    n = ap.parse_args().n
    master, profiles, checks, ctx = setup()

    print(f"pre-trade checks, {n:,} calls each (mean of the best of 3 runs)")
    for check in checks:
        decision = check.check(ctx)
        verdict = "pass" if decision is None else decision.action.value
        us = per_call(lambda c=check: c.check(ctx), n)
        print(f"  {check.name:<14} {us:7.2f} us/call   ({verdict})")

    router = Router(brokers={}, instruments=master, state=None, journal=Journal(":memory:"), checks=checks)  # type: ignore[arg-type]
    us = per_call(lambda: router._run_checks(ctx), n)
    print(f"  {'whole chain':<14} {us:7.2f} us/order  ({len(checks)} checks, as the router runs them)")

    tracker = RiskTracker(profiles.get("apex-legacy-50k-pa"))
    tracker.start_day(date(2026, 11, 24), D(50000))
    equity = [D(50000) + D(i % 400) - 200 for i in range(1000)]
    i = 0

    def tick() -> None:
        nonlocal i
        tracker.update(D(50000), equity[i % 1000], exit_fees=D("2.48"))
        i += 1

    print(f"monitor math per tick (RiskTracker.update, intraday trailing): {per_call(tick, n):.2f} us")
    print(f"quote ingest with a held position: {ingest_cost(master, profiles, n // 5)}")


def ingest_cost(master: InstrumentMaster, profiles, n: int) -> str:
    """Engine.ingest(Quote) for a symbol one profile account holds, without and with the monitor."""
    from tterm.core.clock import CmeClock
    from tterm.core.engine import Engine
    from tterm.core.models import AccountSnapshot, Fill
    from tterm.risk.monitor import RiskMonitor

    results = []
    for with_risk, moving in ((False, True), (True, True), (True, False)):
        clock = CmeClock(now=lambda: NOW)
        engine = Engine(brokers=[], instruments=master, journal=Journal(":memory:"), clock=clock)
        acct = Account(id="paper:FUT50K", broker="paper", vendor_id="FUT50K", name="50K", profile="apex-legacy-50k-pa")
        engine._add_account(acct)  # no broker in a bench: register the account directly
        if with_risk:
            RiskMonitor(engine, profiles=profiles, settings=RiskSettings()).attach()
        engine.ingest(AccountSnapshot(acct.id, balance=D(50000), equity=D(50000), start_of_day_balance=D(50000)))
        sym = master.resolve("MES").symbol
        engine.ingest(Fill("f1", "o1", "c1", acct.id, sym, Side.BUY, 2, D("6800.00"), ts=NOW))
        if moving:
            prices = [D("6800.00") + D("0.25") * (i % 40) for i in range(1000)]
            quotes = [Quote(sym, bid=p, ask=p + D("0.25"), last=p, ts=NOW) for p in prices]
        else:  # the book moves (sizes, the bid and ask) under the same last trade: the mark holds
            p = D("6800.00")
            quotes = [
                Quote(sym, bid=p - D("0.25") * (i % 2), ask=p + D("0.25"), last=p, bid_size=1 + i % 9, ts=NOW)
                for i in range(1000)
            ]
        i = 0

        def one(engine: Engine = engine, quotes: list[Quote] = quotes) -> None:
            nonlocal i
            engine.ingest(quotes[i % 1000])
            i += 1

        results.append(per_call(one, n))
    return (
        f"{results[0]:.1f} us without risk, {results[1]:.1f} us with the monitor when the mark moves (the "
        f"account is re-evaluated), {results[2]:.1f} us when it does not (nothing to re-evaluate)"
    )


if __name__ == "__main__":
    main()

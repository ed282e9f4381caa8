"""The risk subcommands of ``tterm``: replay, flatten, lock and profiles.

Each is one ``add_<name>(subparsers, common)`` function in the style of :mod:`tterm.cli`, which
lists them in its ``SUBCOMMANDS``. ``flatten`` and ``lock`` act on the engine that owns the data
dir: a hub's through its remote API (found in the data-dir lock, or named with ``--hub``); when
nobody owns it they build the engine from the config (``runtime.build_engine``), owning the dir
meanwhile, connect, act, journal and stop. When a terminal owns it they refuse, naming it: its
own kill switch is the way (two engines must never share a data dir).

Exit status: 0 done (replay: every profile passed; with ``--with-tterm``: passed with tterm's
protection), 1 the action failed or a replayed profile breached, 2 bad usage or input (the
message says which file, line or key).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any, TextIO

from tterm.config import Settings, load_settings
from tterm.core.clock import CT, CmeClock, default_calendar
from tterm.core.instruments import InstrumentMaster
from tterm.risk.caveats import caveats
from tterm.risk.profiles import Profile, ProfileError, ProfileIncomplete, ProfileSet, UnknownProfile, load_profiles
from tterm.risk.rules import fmt_money, lock_level

# The replay machinery (tterm.risk.replay, the news calendar) is imported by cmd_replay only: the
# CLI imports this module to register its subcommands, and plain `tterm` must not pay for them.


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(getattr(args, "config", None), create=False)


def _profiles(err: TextIO) -> ProfileSet | None:
    try:
        return load_profiles()
    except ProfileError as exc:
        print(f"tterm: rule profiles:\n{exc}", file=err)
        return None


# --------------------------------------------------------------------------- replay


def add_replay(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "replay",
        parents=[common],
        help="replay a day of fills and marks against rule profiles: would it have breached, and when?",
        description="Reads a CSV (time,type,symbol,side,qty,price,fee; see README 'Risk') and prints, for each "
        "profile, whether and when the account would have breached, the floor's path and the closest approach. "
        "Exit status 1 when a profile breached.",
    )
    p.add_argument("file", type=Path, metavar="FILE", help="the CSV of fills and marks")
    p.add_argument(
        "--profile",
        dest="profiles",
        action="append",
        required=True,
        metavar="ID",
        help="a rule profile id (repeat to compare, e.g. --profile apex-legacy-50k-pa --profile topstep-50k-combine)",
    )
    p.add_argument(
        "--with-tterm",
        action="store_true",
        help="also run the day as tterm would have protected it (its flattens, locks and pre-trade refusals) "
        "and print both verdicts side by side with the money difference",
    )
    p.add_argument(
        "--slippage",
        type=_ticks,
        default=1,
        metavar="TICKS",
        help="with --with-tterm: ticks against every tterm flatten, filled at the next mark (default 1)",
    )
    p.add_argument(
        "--stop-ticks",
        type=_ticks,
        default=None,
        metavar="TICKS",
        help="with --with-tterm: give every replayed entry a stop this far away for the worst-case check "
        "(default: none, so [risk] no_stop_adverse_ticks applies, as live)",
    )
    p.add_argument(
        "--account",
        metavar="ID",
        help='with --with-tterm: apply the personal limits of [risk.accounts."ID"] in the config as well',
    )
    p.set_defaults(handler=cmd_replay)


def _ticks(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of ticks") from None
    if not 0 <= n <= 1000:
        raise argparse.ArgumentTypeError(f"ticks must be 0 to 1000, got {n}")
    return n


def cmd_replay(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    from tterm.risk.news import CalendarError, load_calendar
    from tterm.risk.replay import (
        ReplayError,
        format_comparison,
        format_result,
        format_summary,
        read_replay,
        replay,
        replay_with_tterm,
    )

    out = out or sys.stdout
    err = err or sys.stderr
    settings = _settings(args)
    profiles = _profiles(err)
    if profiles is None:
        return 2
    chosen: list[Profile] = []
    for pid in dict.fromkeys(args.profiles):
        try:
            profile = profiles.get(pid)
            profile.require_enforceable()
        except (UnknownProfile, ProfileIncomplete) as exc:
            print(f"tterm: {exc}", file=err)
            return 2
        chosen.append(profile)
    with_tterm = getattr(args, "with_tterm", False)
    account = getattr(args, "account", None)
    personal = None
    if account is not None:
        if not with_tterm:
            print("tterm: --account applies with --with-tterm", file=err)
            return 2
        personal = settings.risk.accounts.get(account)
        if personal is None:
            known = ", ".join(settings.risk.accounts) or "none"
            print(f'tterm: no [risk.accounts."{account}"] in the config (accounts with limits: {known})', file=err)
            return 2
    try:
        calendar = load_calendar()
    except CalendarError as exc:
        print(f"tterm: news calendar:\n{exc}", file=err)
        return 2
    clock = CmeClock(default_calendar())
    master = InstrumentMaster(
        calendar=clock.calendar, today=lambda: clock.trade_date(), fee_overrides=settings.fee_overrides()
    )
    try:
        rows = read_replay(args.file, master, clock)
    except ReplayError as exc:
        print(f"tterm: {exc}", file=err)
        return 2
    first, last = rows[0].at.astimezone(CT), rows[-1].at.astimezone(CT)
    out.write(f"{args.file}: {len(rows)} rows, {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} CT\n\n")
    if with_tterm:
        slippage = getattr(args, "slippage", 1)
        stops = getattr(args, "stop_ticks", None)
        comparisons = [
            replay_with_tterm(
                rows,
                p,
                instruments=master,
                clock=clock,
                settings=settings.risk,
                calendar=calendar,
                personal=personal,
                slippage_ticks=slippage,
                stop_ticks=stops,
            )
            for p in chosen
        ]
        how = f"tterm's flattens fill at the next mark less {slippage} tick(s); "
        how += f"entries carry a {stops}-tick stop" if stops else "entries carry no stop (worst case as live)"
        out.write(how + (f"; with the limits of {account}" if account else "") + "\n\n")
        for c in comparisons:
            out.write(format_comparison(c, slippage_ticks=slippage) + "\n\n")
        out.write(format_summary(comparisons) + "\n")
        return 0 if all(c.tterm.passed for c in comparisons) else 1
    results = [
        replay(rows, p, instruments=master, clock=clock, settings=settings.risk, calendar=calendar) for p in chosen
    ]
    for r in results:
        out.write(format_result(r) + "\n\n")
    if len(results) > 1:
        out.write(format_summary(results) + "\n")
    return 0 if all(r.passed for r in results) else 1


# --------------------------------------------------------------------------- flatten and lock


def _target(text: str) -> str | None:
    return None if text.strip().lower() == "all" else text.strip()


def _report_flatten(target: str | None, orders: list[Any], left: list[Any], out: TextIO) -> int:
    out.write(f"flatten {target or 'ALL'}: {len(orders)} closing order(s) sent\n")
    for o in orders:
        out.write(f"  {o.account} {o.side.value} {o.quantity} {o.symbol}: {o.status.value}\n")
    if left:
        for p in left:
            out.write(f"  still open: {p.account} {p.quantity:+d} {p.symbol}\n")
        return 1
    out.write("  every account in scope is flat; working orders cancelled\n")
    return 0


def _report_locks(locks: list[Any], out: TextIO) -> int:
    for lock in locks:
        until = f" until {lock.until.astimezone(CT):%Y-%m-%d %H:%M} CT" if lock.until else ""
        out.write(f"locked {lock.account}{until}: {lock.reason}\n")
    return 0


async def _with_engine(settings: Settings, action: str, target: str | None, reason: str, out: TextIO) -> int:
    from tterm.core.client import EngineError
    from tterm.runtime import build_engine

    engine = build_engine(settings)
    try:
        await engine.start()
        await engine.settle()
        known = [a.id for a in engine.accounts]
        if target is not None and target not in known:
            out.write(f"tterm: unknown account {target!r} (accounts: {', '.join(known) or 'none'})\n")
            return 2
        scope = [target] if target is not None else known
        if action == "flatten":
            await engine.cancel_all(target)
            try:
                orders = await engine.flatten(target)
            except EngineError as exc:
                out.write(f"tterm: {exc}\n")
                return 1
            await engine.settle()
            for _ in range(200):  # wait (on events, bounded) for the closing fills
                if not any(engine.book.open_positions(a) for a in scope):
                    break
                await asyncio.sleep(0.01)
                await engine.settle()
            left = [p for a in scope for p in engine.book.open_positions(a)]
            return _report_flatten(target, orders, left, out)
        return _report_locks(await engine.lock(target, reason, by="cli"), out)
    finally:
        await engine.stop()
        engine.journal.close()


#: How long ``flatten`` through a hub waits for the closing fills.
HUB_FLATTEN_WAIT = 10.0


async def _with_hub(url: str, token: str, action: str, target: str | None, reason: str, out: TextIO) -> int:
    """flatten / lock through a running hub's remote API (the hub's engine acts and journals)."""
    from tterm.core.client import EngineError
    from tterm.hub.remote import RemoteEngineClient

    client = RemoteEngineClient(url, token)
    try:
        await client.connect()
    except EngineError as exc:
        out.write(f"tterm: {exc}\n")
        return 1
    try:
        stream = client.events("cli")
        snap = await client.snapshot()
        known = [a.id for a in snap.accounts]
        if target is not None and target not in known:
            out.write(f"tterm: unknown account {target!r} on the hub (accounts: {', '.join(known) or 'none'})\n")
            return 2
        scope = {target} if target is not None else set(known)
        try:
            if action == "lock":
                return _report_locks(await client.lock(target, reason), out)
            await client.cancel_all(target)
            orders = await client.flatten(target)
        except EngineError as exc:
            out.write(f"tterm: {exc}\n")
            return 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HUB_FLATTEN_WAIT
        while True:  # until the closing fills are in (each event may be one), bounded
            snap = await client.snapshot()
            left = [p for p in snap.positions if p.account in scope and p.quantity != 0]
            remaining = deadline - loop.time()
            if not left or remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stream.wait(), remaining)
            stream.drain()
        return _report_flatten(target, orders, left, out)
    finally:
        await client.close()


def _hub_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--hub",
        metavar="ws://HOST:PORT",
        help="act through this running hub (default: through the hub that owns the data dir, if one does)",
    )
    p.add_argument("--token-file", type=Path, metavar="FILE", help="read the hub's API token from this file")


def add_flatten(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "flatten",
        parents=[common],
        help="kill switch: cancel working orders and close every position (all accounts, or one)",
    )
    p.add_argument("target", metavar="all|ACCOUNT", help="'all', or an account id such as paper:FUT50K")
    _hub_options(p)
    p.set_defaults(handler=cmd_flatten)


def cmd_flatten(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    settings = _settings(args)
    return _run(settings, "flatten", _target(args.target), "", out, args)


def add_lock(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "lock",
        parents=[common],
        help="lock accounts until the next session opens: only exits pass (a lock cannot be lifted early)",
    )
    p.add_argument("target", metavar="all|ACCOUNT", help="'all', or an account id such as paper:FUT50K")
    p.add_argument("--reason", required=True, help="why (journaled and shown on the account)")
    _hub_options(p)
    p.set_defaults(handler=cmd_lock)


def cmd_lock(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    if not args.reason.strip():
        print("tterm: --reason must not be empty", file=sys.stderr)
        return 2
    settings = _settings(args)
    return _run(settings, "lock", _target(args.target), args.reason.strip(), out, args)


def _run(
    settings: Settings, action: str, target: str | None, reason: str, out: TextIO, args: argparse.Namespace
) -> int:
    """Act on the engine this data dir's owner runs: through its hub when a hub owns the dir (or
    ``--hub`` names one), else on an engine of our own, which owns the dir meanwhile."""
    from tterm.config import data_dir
    from tterm.datalock import DataDirBusy, DataDirLock, busy_message, command_line, settled_owner
    from tterm.hub.service import hub_token
    from tterm.runtime import BuildError

    url: str | None = getattr(args, "hub", None)
    lock = DataDirLock(data_dir(settings))
    if url is None:
        try:
            lock.acquire(action, command_line())
        except DataDirBusy as busy:
            owner = settled_owner(busy)
            if owner is None or not owner.attachable:
                print(busy_message(busy, owner, f"tterm {action}"), file=sys.stderr)
                return 1
            url = owner.hub_url
            out.write(f"{action}: a hub owns the data dir ({owner.describe()}); acting through it\n")
    if url is not None:
        token = hub_token(getattr(args, "token_file", None))
        if not token:
            print("tterm: no API token for the hub: set TTERM_HUB_API_TOKEN or pass --token-file", file=sys.stderr)
            return 2
        return asyncio.run(_with_hub(url, token, action, target, reason, out))
    try:
        return asyncio.run(_with_engine(settings, action, target, reason, out))
    except BuildError as exc:
        print(f"tterm: {exc}", file=sys.stderr)
        return 2
    finally:
        lock.release()


# --------------------------------------------------------------------------- profiles


def add_profiles(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "profiles",
        parents=[common],
        help="list the prop-firm rule profiles, or show one in full (uncertain numbers and sources included)",
    )
    p.add_argument("id", nargs="?", metavar="ID", help="show this profile in full")
    p.set_defaults(handler=cmd_profiles)


def cmd_profiles(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    profiles = _profiles(err)
    if profiles is None:
        return 2
    if args.id:
        try:
            p = profiles.get(args.id)
        except UnknownProfile as exc:
            print(f"tterm: {exc}", file=err)
            return 2
        out.write(describe_profile(p, profiles.origin(p.id)))
        return 0
    width = max(len(i) for i in profiles.ids())
    for pid in profiles.ids():
        p = profiles.get(pid)
        dll = fmt_money(p.daily_loss.amount) if p.daily_loss.amount is not None else "-"
        dd = fmt_money(p.drawdown.amount) if p.drawdown.amount is not None else "unknown"
        mark = " [uncertain]" if p.uncertain else ""
        mark += " [incomplete]" if p.unknown else ""
        out.write(
            f"{pid.ljust(width)}  {p.drawdown.model.value:<17} dd {dd:>10}  "
            f"dll {dll:>10}  as of {p.source_date:<10}{mark}\n"
        )
    return 0


def describe_profile(p: Profile, origin: str = "") -> str:
    """``tterm profiles ID``: every rule, where each number comes from, and what cannot be checked."""
    lines = [f"{p.id}: {p.title}", f"  source date: {p.source_date}" + (f"   file: {origin}" if origin else "")]
    amount = p.drawdown.amount
    cap = lock_level(p) if p.trailing and amount is not None else None
    shown = fmt_money(amount) if amount is not None else "UNKNOWN"
    lines.append(
        f"  start balance {fmt_money(p.start)}; drawdown {shown} {p.drawdown.model.value}"
        + (f", lock {p.drawdown.lock.value} ({fmt_money(cap)})" if cap is not None else "")
        + (f", lock {p.drawdown.lock.value}" if cap is None and p.trailing else "")
        + (" (keeps trailing)" if p.trailing and p.drawdown.lock.value == "none" else "")
        + (f", snapshot {p.drawdown.snapshot:%H:%M} CT" if p.drawdown.snapshot else "")
    )
    if not p.enforceable:
        lines.append("  NOT ENFORCEABLE as shipped: extend it in a user profile with your drawdown amount")
    if p.daily_loss.amount is not None:
        lines.append(f"  daily loss limit {fmt_money(p.daily_loss.amount)}: {p.daily_loss.action.value}")
    else:
        lines.append("  daily loss limit: none")
    c = p.contracts
    ratio = "10:1" if c.micro_ratio == 10 else "1:1"
    lines.append(f"  contracts: max {c.ceiling if c.ceiling is not None else 'unknown'}, micros {ratio}")
    for step in c.scaling:
        lines.append(f"    from EOD profit {fmt_money(step.from_profit)}: {step.max}")
    if p.session.flat_by or p.session.auto_flatten:
        auto = p.session.auto_flatten
        flat = f"  flat by {p.session.flat_by:%H:%M} CT" if p.session.flat_by else "  no flat-by time"
        lines.append(
            flat
            + (f"; the firm flattens at {auto:%H:%M} CT" if auto else "")
            + ("; a position still open then FAILS the account" if p.session.flat_by_action.value == "fail" else "")
        )
    if p.news.active:
        n = p.news
        lines.append(
            f"  news: {n.rule.value} from {n.before_minutes} min before to {n.after_minutes} min after "
            f"{', '.join(n.events)}"
        )
    if p.hedging is not None:
        lines.append(f"  hedging across accounts: {p.hedging.value}")
    if p.profit_target:
        lines.append(f"  profit target {fmt_money(p.profit_target)}")
    if p.consistency:
        cons = p.consistency
        lines.append(f"  consistency {cons.percent.normalize():f}% of {cons.base.value} ({cons.scope.value})")
    if p.facts:
        lines.append("  where each number comes from:")
        width = max(len(k) for k in p.facts)
        lines.extend(f"    {k.ljust(width)}  {v}" for k, v in sorted(p.facts.items()))
    deps = caveats(p)
    if deps:
        lines.append("  a verdict with this profile cannot vouch for:")
        lines.extend(f"    - {d.text}" for d in deps)
    for title, items in (("notes", p.notes), ("sources", p.sources)):
        if items:
            lines.append(f"  {title}:")
            lines.extend(f"    - {x}" for x in items)
    return "\n".join(lines) + "\n"

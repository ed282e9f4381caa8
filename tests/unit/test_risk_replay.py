"""Replay: the CSV format, the outcome per profile, and the risk subcommands (replay, profiles,
flatten, lock) run the way `tterm` runs them."""

from __future__ import annotations

import argparse
import io
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tterm.core.clock import CT, CmeClock, default_calendar
from tterm.core.instruments import InstrumentMaster
from tterm.core.models import OrderRequest, OrderSource, OrderStatus, Quote, Side
from tterm.risk.commands import add_flatten, add_lock, add_profiles, add_replay
from tterm.risk.news import load_calendar
from tterm.risk.profiles import load_profiles
from tterm.risk.replay import (
    Comparison,
    ReplayError,
    format_comparison,
    format_result,
    format_summary,
    read_replay,
    replay,
    replay_with_tterm,
)
from tterm.risk.settings import AccountRiskSettings

D = Decimal
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "risk" / "day.csv"
CLOCK = CmeClock(default_calendar())
MASTER = InstrumentMaster(calendar=CLOCK.calendar, today=lambda: CLOCK.trade_date())
PROFILES = load_profiles(user=False)
HEADER = "time,type,symbol,side,qty,price,fee\n"


def run(rows_text: str, tmp_path: Path, *pids: str):
    path = tmp_path / "day.csv"
    path.write_text(HEADER + rows_text)
    rows = read_replay(path, MASTER, CLOCK)
    return [replay(rows, PROFILES.get(p), instruments=MASTER, clock=CLOCK) for p in pids]


def test_example_day_fails_apex_intraday_but_passes_topstep_eod() -> None:
    rows = read_replay(EXAMPLE, MASTER, CLOCK)
    apex, topstep = (
        replay(rows, PROFILES.get(p), instruments=MASTER, clock=CLOCK)
        for p in ("apex-legacy-50k-pa", "topstep-50k-combine")
    )
    assert apex.failed is not None and apex.failed.rule == "floor"
    assert apex.failed.at == datetime(2026, 11, 24, 10, 10, tzinfo=CT)
    # The floor followed the open-profit peak (+$1,600 on 2 ES at 6816) less the entry fees.
    assert [fp.floor for fp in apex.floor_path][-1] == D("49095.72")
    assert any(e.rule == "floor_buffer" and e.at == datetime(2026, 11, 24, 10, 5, tzinfo=CT) for e in apex.tterm)
    assert topstep.passed and len(topstep.floor_path) == 1 and topstep.final_floor == D(48000)
    assert topstep.closest == D("1041.44")
    assert [e.rule for e in topstep.tterm] == ["dll_buffer"]
    text = format_result(apex)
    assert "BREACHED at 2026-11-24 10:10:00 CT" in text and "floor path: $47,500.00" in text
    summary = format_summary([apex, topstep])
    assert "apex-legacy-50k-pa   BREACHED" in summary and "topstep-50k-combine  passed" in summary


def test_two_days_move_the_eod_floor_at_the_close(tmp_path: Path) -> None:
    (r,) = run(
        "2026-11-24 09:00:00,fill,MES1!,buy,4,6800.00,0\n"
        "2026-11-24 10:00:00,fill,MES1!,sell,4,6825.00,0\n"  # +$500
        "2026-11-25 09:00:00,mark,MES1!,,,6800.00,\n",
        tmp_path,
        "topstep-50k-combine",
    )
    assert r.passed and r.days == 2
    moved = r.floor_path[-1]
    assert moved.floor == D(48500) and moved.why == "end-of-day snapshot"
    assert moved.at == datetime(2026, 11, 24, 16, 0, tzinfo=CT)


def test_a_position_past_the_flat_by_time_is_reported(tmp_path: Path) -> None:
    (r,) = run(
        "2026-11-24 14:00:00,fill,MES1!,buy,1,6800.00,\n2026-11-24 15:30:00,mark,MES1!,,,6801.00,\n",
        tmp_path,
        "topstep-50k-combine",
    )
    assert [e.rule for e in r.soft] == ["cutoff"] and r.soft[0].at == datetime(2026, 11, 24, 15, 8, tzinfo=CT)
    assert [e.at for e in r.tterm if e.rule == "cutoff"] == [datetime(2026, 11, 24, 15, 6, tzinfo=CT)]
    (tpt,) = run(
        "2026-11-24 14:00:00,fill,MES1!,buy,1,6800.00,\n2026-11-24 16:30:00,mark,MES1!,,,6801.00,\n",
        tmp_path,
        "tpt-50k-test",
    )  # flat by 16:00 CT or the account fails (reference A.4): a breach, not a liquidation
    assert tpt.soft == [] and tpt.failed is not None and tpt.failed.rule == "cutoff"
    assert tpt.failed.at == datetime(2026, 11, 24, 16, 0, tzinfo=CT)
    assert "a position past the cutoff fails the account" in tpt.failed.text
    assert "BREACHED at 2026-11-24 16:00:00 CT" in format_result(tpt)


def test_soft_dll_blocks_for_the_session_and_counts_later_fills(tmp_path: Path) -> None:
    (r,) = run(
        "2026-11-24T09:00:00-06:00,fill,MES1!,buy,5,6800.00,0\n"
        "2026-11-24T09:30:00-06:00,fill,MES1!,sell,5,6760.00,0\n"  # -$1,000: the Topstep DLL
        "2026-11-24T10:00:00-06:00,fill,MES1!,buy,1,6760.00,0\n"
        "2026-11-24T10:05:00-06:00,fill,MES1!,sell,1,6761.00,0\n",
        tmp_path,
        "topstep-50k-combine",
    )
    assert r.passed and [e.rule for e in r.soft] == ["dll"] and r.blocked_fills == 2
    assert "blocked until the next session" in r.soft[0].text


def test_tier_overruns_are_reported(tmp_path: Path) -> None:
    rows = "2026-11-24 09:00:00,fill,MES1!,buy,6,6800.00,\n2026-11-24 09:01:00,fill,MES1!,sell,6,6800.00,\n"
    (r,) = run(rows, tmp_path, "topstep-50k-combine")
    assert [e.rule for e in r.soft] == ["tier"] and "6 contracts open; the tier allows 5" in r.soft[0].text


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("nonsense,mark,MES1!,,,6800.00,\n", ":2: time 'nonsense' is not ISO 8601"),
        ("2026-11-24 09:00:00,trade,MES1!,,,6800.00,\n", ":2: type 'trade' must be fill or mark"),
        ("2026-11-24 09:00:00,mark,MES1!,,,6800.10,\n", ":2: price 6800.10 is off the MESZ6 tick grid"),
        ("2026-11-24 09:00:00,fill,MES1!,hold,1,6800.00,\n", ":2: a fill needs side buy or sell"),
        ("2026-11-24 09:00:00,fill,MES1!,buy,0,6800.00,\n", ":2: qty must be above zero"),
        ("2026-11-24 09:00:00,mark,XYZQ,,,1.00,\n", ":2: unknown symbol 'XYZQ'"),
        (
            "2026-11-24 09:00:00,mark,MES1!,,,6800.00,\n2026-11-24 08:00:00,mark,MES1!,,,6800.00,\n",
            ":3: time 2026-11-24 08:00:00 CT is before the row above",
        ),
    ],
)
def test_bad_rows_name_the_line(tmp_path: Path, body: str, needle: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + body)
    with pytest.raises(ReplayError, match=None) as info:
        read_replay(path, MASTER, CLOCK)
    assert needle in str(info.value) and str(path) in str(info.value)


def test_bad_headers(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("when,type,symbol,price\n")
    with pytest.raises(ReplayError, match="missing column\\(s\\) time; unknown column\\(s\\) when"):
        read_replay(path, MASTER, CLOCK)
    path.write_text("# only a comment\n")
    with pytest.raises(ReplayError, match="no rows"):
        read_replay(path, MASTER, CLOCK)


# --------------------------------------------------------------------------- the subcommands


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TTERM_CONFIG_DIR", str(tmp_path / "conf"))
    monkeypatch.setenv("TTERM_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def parse(argv: list[str]) -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    parser = argparse.ArgumentParser(prog="tterm")
    sub = parser.add_subparsers(dest="command")
    for add in (add_replay, add_profiles, add_flatten, add_lock):
        add(sub, common)
    return parser.parse_args(argv)


def test_cmd_replay_prints_each_profile_and_a_summary(env: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    args = parse(["replay", str(EXAMPLE), "--profile", "apex-legacy-50k-pa", "--profile", "topstep-50k-combine"])
    assert args.handler(args, out, err) == 1  # a profile breached
    text = out.getvalue()
    assert "apex-legacy-50k-pa  (" in text and "PASSED" in text and "profile" in text.splitlines()[-3]
    args = parse(["replay", str(EXAMPLE), "--profile", "topstep-50k-combine"])
    assert args.handler(args, io.StringIO(), err) == 0
    args = parse(["replay", str(EXAMPLE), "--profile", "topstep-50k-combin"])
    assert args.handler(args, io.StringIO(), err) == 2 and "did you mean topstep-50k-combine" in err.getvalue()


def test_cmd_profiles_lists_and_shows(env: Path) -> None:
    out = io.StringIO()
    args = parse(["profiles"])
    assert args.handler(args, out, io.StringIO()) == 0
    assert "topstep-50k-combine" in out.getvalue() and "[incomplete]" in out.getvalue()
    out = io.StringIO()
    args = parse(["profiles", "apex-legacy-150k-eval"])
    assert args.handler(args, out, io.StringIO()) == 0
    assert "uncertain:" in out.getvalue() and "stricter" in out.getvalue()


async def _open_position(root: Path) -> None:
    """Leave a 2-lot MES position in the paper store, as a previous session would have."""
    from tterm.config import validate_settings
    from tterm.runtime import build_engine

    settings = validate_settings({"risk": {"enabled": False}}, root / "conf" / "config.toml")
    engine = build_engine(settings, scripted=True, root=root / "data")
    await engine.start()
    await engine.watch(["MES1!"])
    p = D("6800.00")
    now = datetime.now(UTC)
    await engine.brokers["paper"].push_quote(Quote("MES1!", bid=p, ask=p + D("0.25"), last=p, ts=now))  # type: ignore[attr-defined]
    await engine.settle()
    order = await engine.place(
        OrderRequest(account="paper:FUT50K", symbol="MES1!", side=Side.BUY, quantity=2, source=OrderSource.CLI)
    )
    assert order.status is OrderStatus.FILLED
    await engine.settle()
    await engine.stop()
    engine.journal.close()


def test_cmd_flatten_all_closes_every_position(env: Path) -> None:
    import asyncio

    asyncio.run(_open_position(env))
    # Risk off for this run: at a real-clock time inside a cutoff window the monitor would flatten first.
    (env / "conf").mkdir(exist_ok=True)
    (env / "conf" / "config.toml").write_text("[risk]\nenabled = false\n")
    out = io.StringIO()
    args = parse(["flatten", "all"])
    assert args.handler(args, out) == 0, out.getvalue()
    assert "flatten ALL: 1 closing order(s) sent" in out.getvalue()
    assert "paper:FUT50K sell 2 MES" in out.getvalue() and "every account in scope is flat" in out.getvalue()
    args = parse(["flatten", "paper:NOPE"])
    out = io.StringIO()
    assert args.handler(args, out) == 2 and "unknown account 'paper:NOPE'" in out.getvalue()


def test_cmd_lock_persists_until_the_next_session(env: Path) -> None:
    import asyncio

    from tterm.config import load_settings
    from tterm.runtime import build_engine

    out = io.StringIO()
    args = parse(["lock", "paper:FUT50K", "--reason", "tilted after two losers"])
    assert args.handler(args, out) == 0
    assert "locked paper:FUT50K until" in out.getvalue() and "tilted after two losers" in out.getvalue()

    async def check() -> None:
        engine = build_engine(load_settings(create=False))
        await engine.start()
        try:
            lock = engine.lock_for("paper:FUT50K")
            assert lock is not None and lock.locked and lock.by == "cli"
            assert engine.lock_for("paper:CASH") is None
            kinds = [e.kind for e in engine.journal.entries(kind="lock")]
            assert kinds == ["lock"]
        finally:
            await engine.stop()
            engine.journal.close()

    asyncio.run(check())


def test_the_tterm_command_has_the_risk_subcommands(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tterm.cli import main

    assert main(["replay", str(EXAMPLE), "--profile", "topstep-50k-combine"]) == 0
    assert "topstep-50k-combine  (Topstep" in capsys.readouterr().out
    assert main(["profiles", "tpt-50k-pro"]) == 0
    assert "intraday_equity" in capsys.readouterr().out
    assert main(["replay", str(env / "missing.csv"), "--profile", "topstep-50k-combine"]) == 2
    assert "cannot read" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["lock", "all"])  # --reason is required


# --------------------------------------------------------------------------- --with-tterm

GAP = EXAMPLE.parent / "gap.csv"
CALENDAR = load_calendar(user=False)


def compare(rows_or_path: Path | str, tmp_path: Path, pid: str, **kw: object) -> Comparison:
    if isinstance(rows_or_path, Path):
        rows = read_replay(rows_or_path, MASTER, CLOCK)
    else:
        path = tmp_path / "day.csv"
        path.write_text(HEADER + rows_or_path)
        rows = read_replay(path, MASTER, CLOCK)
    return replay_with_tterm(rows, PROFILES.get(pid), instruments=MASTER, clock=CLOCK, calendar=CALENDAR, **kw)  # type: ignore[arg-type]


def test_with_tterm_a_breaching_day_shows_the_saved_account(tmp_path: Path) -> None:
    c = compare(EXAMPLE, tmp_path, "apex-legacy-50k-pa")
    assert c.firm.failed is not None and c.firm.failed.at == datetime(2026, 11, 24, 10, 10, tzinfo=CT)
    t = c.tterm
    assert t.passed and not t.gaps
    (a,) = t.actions
    # tterm's line: floor $49,095.72 + 10% of the $2,500 allowance; reached at the 10:05 mark...
    assert a.rule == "floor_buffer" and a.at == datetime(2026, 11, 24, 10, 5, tzinfo=CT) and a.locks
    # ...and the sell of 2 ES fills at the next mark (10:05:30, 6792.75) less one tick, with fees.
    assert a.fills == [(datetime(2026, 11, 24, 10, 5, 30, tzinfo=CT), "ESZ6", -2, D("6792.50"), D("4.28"))]
    # -7.50 points x $50 x 2 = -$750, less $4.28 in and $4.28 out
    assert a.pnl_after == D("-758.56") and a.above_floor == D("145.72")
    # The locked account refuses the 11:31 re-entry; the recorded exits have nothing left to close.
    assert [(x.line, x.text, x.check) for x in t.refused] == [(22, "buy 1 ESZ6", "lock")]
    assert c.firm.pnl == D("-958.56") and t.pnl == D("-758.56") and c.difference == D("200.00")
    text = format_comparison(c)
    assert "  firm:       breached 10:10 at -$958.56 (floor)\n" in text
    assert (
        "  with tterm: flattened 10:05 at -$758.56, account alive, $145.72 above the floor, 1 order(s) refused\n"
        in text
    )
    assert "  difference: +$200.00 with tterm; the account survives" in text
    assert "sell 2 ESZ6 filled 10:05 CT at 6792.50 (with 1 tick(s) slippage), fees $4.28" in text


def test_with_tterm_a_gap_day_names_the_skipped_line(tmp_path: Path) -> None:
    c = compare(GAP, tmp_path, "apex-legacy-50k-pa")
    t = c.tterm
    assert c.firm.failed is not None and t.failed is not None and t.failed.at == c.firm.failed.at
    (gap,) = t.gaps
    assert gap.at == datetime(2026, 11, 24, 9, 31, tzinfo=CT)
    assert "from $48,991.44 to $47,391.44: through tterm's line at $48,145.72 and the firm's at $47,895.72" in gap.text
    assert "tterm's line was skipped by the gap" in gap.text and t.actions == []
    text = format_comparison(c)
    assert "with tterm: breached 09:31 at -$2,608.56 (tterm's line was skipped by the gap)" in text
    assert c.difference == 0


def test_with_tterm_slippage_is_configurable(tmp_path: Path) -> None:
    c = compare(EXAMPLE, tmp_path, "apex-legacy-50k-pa", slippage_ticks=4)
    (a,) = c.tterm.actions
    assert a.fills[0][3] == D("6791.75") and a.pnl_after == D("-833.56")  # 3 more ticks x $12.50 x 2


def test_with_tterm_several_profiles_stay_one_table(tmp_path: Path) -> None:
    cs = [compare(EXAMPLE, tmp_path, p) for p in ("apex-legacy-50k-pa", "topstep-50k-combine", "tpt-50k-test")]
    table = format_summary(cs).splitlines()
    assert table[0].split() == ["profile", "firm", "with", "tterm", "difference", "depends", "on"]
    assert len(table) == 4 and table[1].startswith("apex-legacy-50k-pa") and "+$200.00" in table[1]
    assert "flattened 10:05, alive" in table[1]


def test_hard_fail_cutoff_fails_as_recorded_and_tterm_flattens_before_it(tmp_path: Path) -> None:
    body = "2026-11-24 14:00:00,fill,MES1!,buy,1,6800.00,\n2026-11-24 15:58:10,mark,MES1!,,,6801.00,\n"
    body += "2026-11-24 16:30:00,mark,MES1!,,,6802.00,\n"
    c = compare(body, tmp_path, "tpt-50k-test")
    assert c.firm.failed is not None and c.firm.failed.rule == "cutoff"
    assert c.firm.failed.at == datetime(2026, 11, 24, 16, 0, tzinfo=CT)
    (a,) = c.tterm.actions
    assert a.rule == "cutoff" and a.at == datetime(2026, 11, 24, 15, 58, tzinfo=CT)
    assert a.filled_at == datetime(2026, 11, 24, 15, 58, 10, tzinfo=CT) and c.tterm.passed


def test_a_verdict_names_the_caveats_it_depends_on(tmp_path: Path) -> None:
    # A losing day on the 2026 EOD evaluation: its DLL amount is unknown, so the verdict says so.
    body = "2026-11-24 09:00:00,fill,MES1!,buy,2,6800.00,\n2026-11-24 09:30:00,fill,MES1!,sell,2,6790.00,\n"
    (r,) = run(body, tmp_path, "apex-2026-50k-eod-eval")
    text = format_result(r)
    assert "  this verdict depends on:\n" in text
    assert "    - this evaluation has a DLL whose amount is unknown: not checked" in text
    # A day that never traded late leans on no flat-by caveat; one that did, does.
    assert "session.flat_by" not in text
    body = "2026-11-24 14:30:00,fill,MES1!,buy,2,6800.00,\n2026-11-24 15:30:00,fill,MES1!,sell,2,6801.00,\n"
    (r,) = run(body, tmp_path, "apex-2026-50k-eod-eval")
    assert "session.flat_by: uncertain: 15:59 CT is the legacy rule" in format_result(r)
    (r,) = run(body, tmp_path, "tradeday-50k-eod")
    assert "the flat-by time is unknown: positions held late are not checked" in format_result(r)


def test_with_tterm_a_news_window_flattens_and_refuses_entries(tmp_path: Path) -> None:
    # TPT PRO: flat from one minute before to one minute after CPI (07:30 CT on 2026-01-13).
    body = (
        "2026-01-13 07:00:00,fill,MES1!,buy,1,6800.00,\n"
        "2026-01-13 07:27:00,mark,MES1!,,,6801.00,\n"
        "2026-01-13 07:27:30,mark,MES1!,,,6801.25,\n"
        "2026-01-13 07:30:00,fill,MES1!,buy,1,6805.00,\n"
        "2026-01-13 07:40:00,fill,MES1!,sell,2,6810.00,\n"
    )
    c = compare(body, tmp_path, "tpt-50k-pro")
    assert [e.rule for e in c.firm.soft] == ["news"] and "inside the Take Profit Trader news window" in c.firm.soft[
        0
    ].text
    (a,) = c.tterm.actions
    assert a.rule == "news" and a.at == datetime(2026, 1, 13, 7, 27, tzinfo=CT) and not a.locks
    assert a.filled_at == datetime(2026, 1, 13, 7, 27, tzinfo=CT)  # the mark at that very instant
    assert [(x.check, x.line) for x in c.tterm.refused] == [("news", 5)]
    assert "CPI at 07:30 CT: the Take Profit Trader news rule covers 07:29-07:31 CT" in c.tterm.refused[0].reason
    assert c.tterm.soft == []  # flat when the window opened


def test_with_tterm_your_trailing_daily_loss_flattens_and_locks(tmp_path: Path) -> None:
    mine = AccountRiskSettings(daily_loss=D(300), daily_loss_mode="trailing")
    body = (
        "2026-11-24 09:00:00,fill,MES1!,buy,4,6800.00,0\n"
        "2026-11-24 09:10:00,mark,MES1!,,,6830.00,\n"  # +$600 open: your line moves to +$300
        "2026-11-24 09:20:00,mark,MES1!,,,6815.00,\n"  # +$300: at your line
        "2026-11-24 09:21:00,mark,MES1!,,,6814.00,\n"
        "2026-11-24 09:30:00,fill,MES1!,buy,1,6814.00,0\n"
        "2026-11-24 10:00:00,fill,MES1!,sell,5,6800.00,0\n"
    )
    c = compare(body, tmp_path, "topstep-50k-combine-topstepx", personal=mine, slippage_ticks=0)
    (a,) = c.tterm.actions
    assert a.rule == "yours_dll" and a.at == datetime(2026, 11, 24, 9, 20, tzinfo=CT) and a.locks
    assert "trailing daily loss $300.00 below the day's best $" in a.text
    assert a.fills[0][3] == D("6814.00")
    assert [x.check for x in c.tterm.refused] == ["lock"]
    assert c.firm.passed and c.tterm.pnl > c.firm.pnl


def test_cmd_replay_with_tterm(env: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    args = parse(["replay", str(EXAMPLE), "--profile", "apex-legacy-50k-pa", "--with-tterm", "--slippage", "2"])
    assert args.handler(args, out, err) == 0, err.getvalue()  # tterm saved the account
    text = out.getvalue()
    assert "fill at the next mark less 2 tick(s)" in text and "with tterm: flattened 10:05" in text
    args = parse(["replay", str(GAP), "--profile", "apex-legacy-50k-pa", "--with-tterm"])
    assert args.handler(args, io.StringIO(), err) == 1  # breached even with tterm
    args = parse(["replay", str(EXAMPLE), "--profile", "apex-legacy-50k-pa", "--with-tterm", "--account", "x:y"])
    assert args.handler(args, io.StringIO(), err) == 2 and 'no [risk.accounts."x:y"]' in err.getvalue()
    args = parse(["replay", str(EXAMPLE), "--profile", "mffu-50k-funded"])
    assert args.handler(args, io.StringIO(), err) == 2 and "has no drawdown amount" in err.getvalue()
    with pytest.raises(SystemExit):
        parse(["replay", str(EXAMPLE), "--profile", "apex-legacy-50k-pa", "--slippage", "-1"])

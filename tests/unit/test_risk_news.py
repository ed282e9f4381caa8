"""The news calendar: the shipped dates, the user's file on top, windows, and bad input."""

from __future__ import annotations

import os
import time as _time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tterm.core.clock import CT
from tterm.risk.news import CalendarError, describe_window, load_calendar
from tterm.risk.profiles import NewsAction, NewsRule
from tterm.risk.reload import RuleFiles

SHIPPED = load_calendar(user=False)
NO_ENTRIES = NewsRule(rule=NewsAction.NO_ENTRIES, before_minutes=5, after_minutes=5)


def ct(*args: int) -> datetime:
    return datetime(*args, tzinfo=CT)  # type: ignore[misc]


def test_the_shipped_calendar_covers_cpi_nfp_and_fomc_2025_to_2027() -> None:
    assert SHIPPED.kinds() == ["CPI", "FOMC", "NFP"]
    for kind in ("CPI", "NFP", "FOMC"):
        years = {r.at.astimezone(CT).year for r in SHIPPED.releases if r.kind == kind}
        assert {2025, 2026} <= years, kind
    assert {r.at.year for r in SHIPPED.releases if r.kind in ("NFP", "FOMC")} >= {2027}
    # BLS's 2027 CPI schedule is not in the sources: no guessed dates, and the calendar says how far it reaches.
    last_cpi = SHIPPED.last("CPI")
    assert last_cpi is not None and last_cpi.at.astimezone(CT).date().isoformat() == "2026-12-10"
    # Every date is either sourced or marked uncertain.
    for r in SHIPPED.releases:
        assert r.source or r.uncertain, r
    # Checked ones: the shutdown moves, and the Fed's schedule.
    by_day = {(r.kind, r.at.astimezone(CT).date().isoformat()): r for r in SHIPPED.releases}
    assert not by_day[("NFP", "2025-11-20")].uncertain and "October 3" in by_day[("NFP", "2025-11-20")].source
    assert not by_day[("CPI", "2025-10-24")].uncertain
    assert ("CPI", "2025-11-13") not in by_day  # October 2025 CPI was cancelled
    assert not by_day[("FOMC", "2026-12-09")].uncertain
    assert by_day[("FOMC", "2027-06-09")].uncertain == "the FOMC's tentative schedule"
    assert "usual rule" in by_day[("NFP", "2027-10-08")].uncertain


def test_release_times_are_eastern_and_shown_in_ct_across_dst() -> None:
    by_day = {(r.kind, r.at.astimezone(CT).date().isoformat()): r for r in SHIPPED.releases}
    # 8:30 ET is 07:30 CT in winter and in summer (both zones change together)
    assert by_day[("CPI", "2026-01-13")].at == ct(2026, 1, 13, 7, 30)
    assert by_day[("CPI", "2026-07-14")].at == ct(2026, 7, 14, 7, 30)
    assert by_day[("FOMC", "2026-03-18")].at == ct(2026, 3, 18, 13, 0)
    assert by_day[("CPI", "2026-03-11")].at.astimezone(UTC).hour == 12  # after the March DST change


def test_windows_around_a_release() -> None:
    at = ct(2026, 1, 13, 7, 30)
    w = SHIPPED.window_at(NO_ENTRIES, ct(2026, 1, 13, 7, 26))
    assert (
        w is not None
        and w.release.kind == "CPI"
        and (w.start, w.end) == (at - timedelta(minutes=5), at + timedelta(minutes=5))
    )
    assert SHIPPED.window_at(NO_ENTRIES, ct(2026, 1, 13, 7, 35)) is None  # the window ends at +5 min
    assert SHIPPED.window_at(NO_ENTRIES, ct(2026, 1, 13, 7, 24, 59)) is None
    nxt = SHIPPED.next_window(NO_ENTRIES, ct(2026, 1, 10, 12, 0))
    assert nxt is not None and nxt.release.at == at
    only_fomc = NewsRule(rule=NewsAction.FLATTEN, before_minutes=2, after_minutes=1, events=("FOMC",))
    nxt = SHIPPED.next_window(only_fomc, ct(2026, 1, 10, 12, 0))
    assert nxt is not None and nxt.release.at == ct(2026, 1, 28, 13, 0)
    assert SHIPPED.next_window(NewsRule(), ct(2026, 1, 10)) is None  # no rule, no window
    text = describe_window(SHIPPED.next_window(NO_ENTRIES, ct(2026, 1, 13, 5, 0)), ct(2026, 1, 13, 5, 0))  # type: ignore[arg-type]
    assert text == "CPI 07:30 CT in 2h 30m · no entries 07:25-07:35 CT"
    text = describe_window(SHIPPED.next_window(NO_ENTRIES, ct(2026, 3, 10, 9, 0)), ct(2026, 3, 10, 9, 0))  # type: ignore[arg-type]
    assert text == "CPI (date unconfirmed) Wed 03-11 07:30 CT in 22h 30m · no entries 07:25-07:35 CT"


def test_the_users_file_adds_replaces_and_cancels(tmp_path: Path) -> None:
    user = tmp_path / "news.toml"
    user.write_text(
        """
[kinds.PCE]
time = "08:30"

[[release]]
kind = "PCE"
date = 2026-01-30

[[release]]
kind = "CPI"
date = 2026-03-11
source = "bls.gov, checked 2026-02-20"

[[release]]
kind = "CPI"
date = 2026-04-10
cancelled = true
"""
    )
    cal = load_calendar(user)
    by_day = {(r.kind, r.at.astimezone(CT).date().isoformat()): r for r in cal.releases}
    assert by_day[("PCE", "2026-01-30")].at == ct(2026, 1, 30, 7, 30)
    assert by_day[("CPI", "2026-03-11")].uncertain == "" and by_day[("CPI", "2026-03-11")].source.startswith("bls.gov")
    assert ("CPI", "2026-04-10") not in by_day
    assert len(cal) == len(SHIPPED)  # one added, one removed
    assert cal.origins[-1] == str(user)


@pytest.mark.parametrize(
    ("body", "key", "reason"),
    [
        (
            '[[release]]\nkind = "CPI"\ndate = 2026-01-13\nwhen = "08:30"\n',
            "release[0] (CPI 2026-01-13).when",
            "unknown key",
        ),
        (
            '[[release]]\nkind = "CPI"\ndate = 2026-01-13\ntime = "25:30"\n',
            "release[0] (CPI 2026-01-13).time",
            "not a time",
        ),
        ('[[release]]\nkind = "CPI"\ndate = "2026-02-30"\n', "release[0] (CPI).date", "not a date"),
        ('[[release]]\nkind = "PCE"\ndate = 2026-01-30\n', "release[0] (PCE 2026-01-30).time", "missing: give a time"),
        ('[[release]]\nkind = "cpi!"\ndate = 2026-01-13\n', "release[0].kind", "not a kind"),
        ('zone = "Mars/Olympus"\n', "zone", "not a time zone"),
        ('colour = "red"\n', "colour", "unknown key"),
        ('[kinds.CPI]\ntime = "8h30"\n', "kinds.CPI.time", "not a time"),
        ('[kinds.CPI]\ntitel = "x"\n', "kinds.CPI.titel", "did you mean title"),
        (
            '[[release]]\nkind = "CPI"\ndate = 2026-01-13\ntime = "08:30"\n' * 2,
            "release[1] (CPI 2026-01-13)",
            "listed twice",
        ),
        ("[[release]\n", "", "not valid TOML"),
    ],
)
def test_bad_calendars_name_file_key_and_reason(tmp_path: Path, body: str, key: str, reason: str) -> None:
    path = tmp_path / "news.toml"
    path.write_text(body)
    with pytest.raises(CalendarError) as info:
        load_calendar(path)
    text = str(info.value)
    assert f"{path}: {key}: " in text or (not key and f"{path}: " in text), text
    assert reason in text, text


def _touch(path: Path, text: str) -> None:
    """Write ``text`` and make sure the modification time moves (coarse file-system clocks)."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    if path.stat().st_mtime_ns == before:
        os.utime(path, ns=(_time.time_ns(), before + 1_000_000))


def test_rule_files_reload_on_change_and_keep_the_last_good_set(tmp_path: Path) -> None:
    news = tmp_path / "news.toml"
    files = RuleFiles.at(tmp_path / "profiles", news)
    files.mark()
    assert files.calendar.poll() is None and files.profiles.poll() is None  # nothing changed
    _touch(news, '[[release]]\nkind = "CPI"\ndate = 2027-01-13\ntime = "08:30"\n')
    out = files.calendar.poll()
    assert out is not None and out.status == "reloaded" and out.value is not None
    assert out.value.last("CPI").at == ct(2027, 1, 13, 7, 30)  # type: ignore[union-attr]
    _touch(news, '[[release]]\nkind = "CPI"\ndate = 2027-01-13\ntime = "8:3O"\n')
    out = files.calendar.poll()
    assert out is not None and out.status == "rejected" and out.value is None
    assert f"{news}: release[0] (CPI 2027-01-13).time: '8:3O' is not a time" in out.error
    assert files.calendar.poll() is None  # reported once, until the file changes again
    (tmp_path / "profiles").mkdir()
    _touch(tmp_path / "profiles" / "mine.toml", '[[profile]]\nid = "x"\ncolour = 1\n')
    out = files.profiles.poll()
    assert out is not None and out.status == "rejected" and "mine.toml: profile[0] (x).colour: unknown key" in out.error

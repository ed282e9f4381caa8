"""Scheduled high-impact releases (CPI, NFP, FOMC...) and the windows a news rule draws around them.

The calendar is data the user can edit and extend: tterm ships ``tterm/risk/data/news.toml`` and
reads ``<config dir>/news.toml`` on top of it. File layout::

    zone = "America/New_York"          # the wall times below are in this zone (default)

    [kinds.CPI]                        # optional defaults per kind
    time = "08:30"
    title = "Consumer Price Index"

    [[release]]                        # or: release = [ { kind = "CPI", date = 2026-01-13 }, ... ]
    kind = "CPI"
    date = 2026-01-13
    time = "08:30"                     # default: the kind's time
    title = "CPI for December 2025"
    uncertain = "estimated; check bls.gov"   # the date is not confirmed
    source = "https://..."
    cancelled = true                   # the user's file: drop a shipped release

A user release with the kind and date of a shipped one replaces it (``cancelled = true`` removes
it); any other is added. Every problem names the file, the key and the reason, and nothing loads
half-way: the caller keeps the calendar it had.
"""

from __future__ import annotations

import bisect
import difflib
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tterm.risk.profiles import NewsAction, NewsRule

_KIND = re.compile(r"^[A-Z][A-Z0-9_-]{0,23}$")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_TOP_KEYS = {"zone", "kinds", "release"}
_KIND_KEYS = {"time", "title", "source"}
_RELEASE_KEYS = {"kind", "date", "time", "title", "uncertain", "source", "cancelled"}


class CalendarError(Exception):
    """A calendar file that cannot be used; one ``file: key: reason`` line per problem."""

    def __init__(self, problems: Iterable[tuple[str, str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(f"{f}: {k}: {r}" if k else f"{f}: {r}" for f, k, r in self.problems))


@dataclass(frozen=True, slots=True)
class Release:
    """One scheduled release: its kind, the instant it comes out, and how sure the date is."""

    kind: str
    at: datetime  # aware, UTC
    title: str = ""
    uncertain: str = ""  # why the date is not confirmed ("" when it is)
    source: str = ""
    origin: str = ""  # the file it came from

    @property
    def label(self) -> str:
        return self.kind + (" (date unconfirmed)" if self.uncertain else "")


@dataclass(frozen=True, slots=True)
class Window:
    """The span a news rule covers around one release."""

    release: Release
    start: datetime
    end: datetime
    rule: NewsAction

    def contains(self, t: datetime) -> bool:
        return self.start <= t < self.end


class NewsCalendar:
    """Releases in time order, with the files they came from."""

    def __init__(self, releases: Iterable[Release] = (), origins: Sequence[str] = ()) -> None:
        self.releases: tuple[Release, ...] = tuple(sorted(releases, key=lambda r: (r.at, r.kind)))
        self._ats = [r.at for r in self.releases]
        self.origins = tuple(origins)

    def __len__(self) -> int:
        return len(self.releases)

    def kinds(self) -> list[str]:
        return sorted({r.kind for r in self.releases})

    def last(self, kind: str) -> Release | None:
        """The last release of ``kind`` the calendar knows (how far its schedule reaches)."""
        for r in reversed(self.releases):
            if r.kind == kind:
                return r
        return None

    def between(self, start: datetime, end: datetime, kinds: Iterable[str] | None = None) -> list[Release]:
        """Releases with ``start <= at < end`` (of ``kinds``, if given)."""
        wanted = set(kinds) if kinds is not None else None
        i = bisect.bisect_left(self._ats, start)
        out = []
        while i < len(self.releases) and self.releases[i].at < end:
            r = self.releases[i]
            if wanted is None or r.kind in wanted:
                out.append(r)
            i += 1
        return out

    def windows(self, rule: NewsRule, start: datetime, end: datetime) -> list[Window]:
        """The rule's windows that overlap ``[start, end)``, in time order."""
        if not rule.active:
            return []
        before = timedelta(minutes=rule.before_minutes)
        after = timedelta(minutes=rule.after_minutes)
        return [
            Window(r, r.at - before, r.at + after, rule.rule)
            for r in self.between(start - after, end + before, rule.events)
            if r.at - before < end and r.at + after > start
        ]

    def window_at(self, rule: NewsRule, t: datetime) -> Window | None:
        """The rule's window that ``t`` falls in, if any (``at - before <= t < at + after``).

        Every order's pre-trade check asks this, so it looks only at the releases near ``t``.
        """
        if not rule.active:
            return None
        before = timedelta(minutes=rule.before_minutes)
        after = timedelta(minutes=rule.after_minutes)
        releases = self.releases
        i = bisect.bisect_right(self._ats, t - after)
        while i < len(releases) and releases[i].at - before <= t:
            r = releases[i]
            if r.kind in rule.events:
                return Window(r, r.at - before, r.at + after, rule.rule)
            i += 1
        return None

    def next_window(self, rule: NewsRule, t: datetime, *, horizon: timedelta = timedelta(days=45)) -> Window | None:
        """The window ``t`` is in, else the next one to come (within ``horizon``)."""
        found = self.windows(rule, t, t + horizon)
        return next((w for w in found if w.end > t), None)


# --------------------------------------------------------------------------- loading


def shipped_path() -> Path:
    return Path(str(resources.files("tterm.risk").joinpath("data", "news.toml")))


def user_path() -> Path:
    """``<config dir>/news.toml``: the user's releases, added to the shipped ones."""
    from tterm.config import config_dir

    return config_dir() / "news.toml"


def _time(v: Any) -> time:
    if isinstance(v, time):
        if v.tzinfo is not None:
            raise ValueError("give a wall time without an offset (the file's zone applies), e.g. 08:30")
        return v
    if isinstance(v, str):
        m = _TIME.match(v.strip())
        if m and int(m.group(1)) <= 23 and int(m.group(2)) <= 59:
            return time(int(m.group(1)), int(m.group(2)))
    raise ValueError(f"{v!r} is not a time; write HH:MM, e.g. 08:30")


def _date(v: Any) -> date:
    if isinstance(v, datetime):
        raise ValueError("give the date alone (YYYY-MM-DD) and the time under 'time'")
    if isinstance(v, date):
        return v
    if isinstance(v, str):
        try:
            return date.fromisoformat(v.strip())
        except ValueError:
            pass
    raise ValueError(f"{v!r} is not a date; write YYYY-MM-DD, e.g. 2026-01-13")


def _text(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"expected text, got {v!r}")
    return v.strip()


def _unknown(where: str, keys: Iterable[str], allowed: set[str]) -> list[tuple[str, str]]:
    out = []
    for key in sorted(set(keys) - allowed):
        close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else f" (allowed: {', '.join(sorted(allowed))})"
        out.append((f"{where}.{key}" if where else key, f"unknown key{hint}"))
    return out


def parse_calendar(
    text: str, origin: str, kinds: dict[str, dict[str, Any]] | None = None
) -> tuple[list[Release], list[Release], list[tuple[str, str, str]]]:
    """The releases of one file, the ones it cancels, and its problems.

    ``kinds`` holds the per-kind defaults of the files read before this one (a user's file uses
    the shipped ``[kinds.CPI] time``); this file's ``[kinds]`` tables are added to it.
    """
    problems: list[tuple[str, str, str]] = []
    kinds = kinds if kinds is not None else {}

    def bad(key: str, reason: str) -> None:
        problems.append((origin, key, reason))

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return [], [], [(origin, "", f"not valid TOML: {exc}")]
    for key, reason in _unknown("", data, _TOP_KEYS):
        bad(key, reason + " (a calendar file holds zone, [kinds.<KIND>] and [[release]])")
    zone_name = data.get("zone", "America/New_York")
    try:
        zone = ZoneInfo(zone_name) if isinstance(zone_name, str) else None
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    if zone is None:
        bad("zone", f"{zone_name!r} is not a time zone (e.g. America/New_York)")
        zone = ZoneInfo("America/New_York")
    raw_kinds = data.get("kinds", {})
    if not isinstance(raw_kinds, dict):
        bad("kinds", "must be a table of [kinds.<KIND>] tables")
        raw_kinds = {}
    for name, table in raw_kinds.items():
        where = f"kinds.{name}"
        if not _KIND.match(name):
            bad(where, "a kind is upper-case letters and digits, e.g. CPI")
            continue
        if not isinstance(table, dict):
            bad(where, "must be a table")
            continue
        for key, reason in _unknown(where, table, _KIND_KEYS):
            bad(key, reason)
        entry: dict[str, Any] = {}
        for key in ("title", "source"):
            if key in table:
                try:
                    entry[key] = _text(table[key])
                except ValueError as exc:
                    bad(f"{where}.{key}", str(exc))
        if "time" in table:
            try:
                entry["time"] = _time(table["time"])
            except ValueError as exc:
                bad(f"{where}.time", str(exc))
        kinds[name] = {**kinds.get(name, {}), **entry}
    rows = data.get("release", [])
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        bad("release", "write each release as a [[release]] table or an inline table in release = [...]")
        rows = []
    releases: list[Release] = []
    cancels: list[Release] = []
    seen: dict[tuple[str, date], int] = {}
    for i, row in enumerate(rows):
        where = f"release[{i}]"
        kind = row.get("kind")
        if not isinstance(kind, str) or not _KIND.match(kind.strip().upper()):
            bad(f"{where}.kind", "missing or not a kind (upper-case letters and digits, e.g. CPI)")
            continue
        kind = kind.strip().upper()
        where = f"release[{i}] ({kind})"
        if "date" not in row:
            bad(f"{where}.date", "missing: every release needs a date")
            continue
        try:
            day = _date(row["date"])
        except ValueError as exc:
            bad(f"{where}.date", str(exc))
            continue
        where = f"release[{i}] ({kind} {day})"
        unknown = _unknown(where, row, _RELEASE_KEYS)
        for field_name, reason in unknown:
            bad(field_name, reason)
        if unknown:
            continue
        defaults = kinds.get(kind, {})
        try:
            at_time = _time(row["time"]) if "time" in row else defaults.get("time")
        except ValueError as exc:
            bad(f"{where}.time", str(exc))
            continue
        cancelled = row.get("cancelled", False)
        if not isinstance(cancelled, bool):
            bad(f"{where}.cancelled", "must be true or false")
            continue
        if at_time is None and not cancelled:
            bad(f"{where}.time", f"missing: give a time, or a default under [kinds.{kind}] time")
            continue
        uncertain = row.get("uncertain", "")
        if uncertain is True:
            uncertain = "the date is not confirmed"
        if uncertain is False:
            uncertain = ""
        try:
            title = _text(row.get("title", defaults.get("title", "")))
            source = _text(row.get("source", defaults.get("source", "")))
            uncertain = _text(uncertain)
        except ValueError as exc:
            bad(where, str(exc))
            continue
        release_key = (kind, day)
        if release_key in seen:
            bad(where, f"{kind} on {day} is listed twice (also release[{seen[release_key]}])")
            continue
        seen[release_key] = i
        local = datetime.combine(day, at_time or time(0), tzinfo=zone)
        release = Release(kind, local.astimezone(UTC), title, uncertain, source, origin)
        (cancels if cancelled else releases).append(release)
    return releases, cancels, problems


def load_calendar(user: Path | bool | None = True, *, shipped: Path | None = None) -> NewsCalendar:
    """The shipped calendar with the user's file on top; any problem raises CalendarError."""
    paths = [shipped or shipped_path()]
    upath = user_path() if user is True else (user or None)
    if isinstance(upath, Path) and upath.exists():
        paths.append(upath)
    problems: list[tuple[str, str, str]] = []
    merged: dict[tuple[str, date], Release] = {}
    kinds: dict[str, dict[str, Any]] = {}
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            problems.append((str(path), "", f"cannot read: {exc.strerror or exc}"))
            continue
        releases, cancels, file_problems = parse_calendar(text, str(path), kinds)
        problems.extend(file_problems)
        for r in releases:
            merged[(r.kind, _release_day(r.at))] = r
        for r in cancels:
            merged.pop((r.kind, _release_day(r.at)), None)
    if problems:
        raise CalendarError(problems)
    return NewsCalendar(merged.values(), [str(p) for p in paths])


def _release_day(at: datetime) -> date:
    return at.astimezone(ZoneInfo("America/New_York")).date()


def describe_window(w: Window, now: datetime) -> str:
    """``CPI 07:30 CT in 2h 10m · no entries 07:25-07:35 CT`` (what the meter shows)."""
    from tterm.core.clock import CT

    at = w.release.at.astimezone(CT)
    what = {
        NewsAction.NO_ENTRIES: "no entries",
        NewsAction.FLATTEN: "flat",
        NewsAction.WARN: "warning",
        NewsAction.NONE: "",
    }[w.rule]
    span = f"{w.start.astimezone(CT):%H:%M}-{w.end.astimezone(CT):%H:%M} CT"
    when = "now" if w.contains(now) else f"in {_duration(w.release.at - now)}" if w.release.at > now else "just out"
    day = "" if at.date() == now.astimezone(CT).date() else f"{at:%a %m-%d} "
    return f"{w.release.label} {day}{at:%H:%M} CT {when} · {what} {span}".strip()


def _duration(d: timedelta) -> str:
    secs = max(0, int(d.total_seconds()))
    days, rem = divmod(secs, 86400)
    hours, rem = divmod(rem, 3600)
    minutes = rem // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m"

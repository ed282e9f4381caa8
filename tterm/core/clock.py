"""The CME Globex session clock and holiday calendar (session logic in America/Chicago).

A Globex trading day ("trade date" D) runs from 17:00 CT on the calendar day before D (Sunday for
Monday, the holiday evening for the day after a closure) to 16:00 CT on D, or to an earlier close on
holidays. Between 16:00 and 17:00 the market takes its daily break; it is shut from the Friday close
to the Sunday 17:00 open, and on the dates ``cme_holidays.toml`` closes.

The trade date rolls at 17:00 CT: an instant belongs to the first business day whose 17:00 CT is
still ahead of it. So 16:30 Thursday is still Thursday, 17:00 Thursday is Friday, and Saturday is
Monday. Holidays on which Globex only halts early (12:00 CT on MLK day, Thanksgiving...) are kept as
early-close trade dates; see the model note in the data file.

Every instant this module returns is timezone-aware UTC (``now_ct`` and ``Session.open_ct`` give
the Chicago view for display). Any aware datetime is accepted and converted; naive datetimes are
rejected with :class:`ClockError` (a ``ValueError``) because guessing a zone is how cutoffs go wrong
across DST.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from importlib import resources
from typing import Literal
from zoneinfo import ZoneInfo

from tterm.core.models import utcnow

CT = ZoneInfo("America/Chicago")
"""The exchange time zone: every session rule is written in Chicago wall-clock time."""

SESSION_OPEN = time(17, 0)
"""CT wall time a session opens, on the calendar day before its trade date."""

SESSION_CLOSE = time(16, 0)
"""CT wall time a session closes on its trade date, unless the calendar says it closes early."""

SessionState = Literal["open", "break", "weekend", "holiday"]

log = logging.getLogger(__name__)

_ONE_DAY = timedelta(days=1)
_MAX_SCAN = 60  # no real calendar has this many non-business days in a row
_HOLIDAY_KEYS = frozenset({"date", "name", "closed", "close", "halt", "source"})


class ClockError(ValueError):
    """Bad input to the clock or calendar: naive datetime, malformed holiday data, closed date..."""


# --------------------------------------------------------------------------- calendar


@dataclass(frozen=True, slots=True)
class Holiday:
    """One date on which Globex equity trading differs from a normal weekday.

    Exactly one of ``closed`` (no session) or ``close`` (the CT time the session ends early) is
    set. ``halt`` marks an early close on a US holiday that CME neither clears nor settles, so the
    date does not count as a business day for contract expiry rules.
    """

    date: date
    name: str
    closed: bool = False
    close: time | None = None
    halt: bool = False
    source: str = ""

    def __post_init__(self) -> None:
        d = self.date
        if isinstance(d, datetime) or not isinstance(d, date):
            raise ClockError(f"holiday date must be a date, got {d!r}")
        if not self.name.strip():
            raise ClockError(f"holiday {d}: name is empty")
        if d.weekday() >= 5:
            raise ClockError(f"holiday {d} ({self.name}) is a {d:%A}: weekends never trade; list the observed weekday")
        if self.closed == (self.close is not None):
            raise ClockError(f"holiday {d} ({self.name}): set exactly one of closed = true or close = HH:MM")
        if self.close is not None:
            if self.close.tzinfo is not None:
                raise ClockError(f"holiday {d} ({self.name}): close is a CT wall time, without a zone")
            if not time(0, 0) < self.close < SESSION_CLOSE:
                raise ClockError(
                    f"holiday {d} ({self.name}): early close {self.close:%H:%M} must be after 00:00 "
                    f"and before the regular {SESSION_CLOSE:%H:%M} CT close"
                )
        if self.halt and self.closed:
            raise ClockError(f"holiday {d} ({self.name}): halt applies to an early close, not a closure")


class HolidayCalendar:
    """Which trade dates have no Globex session, and which close early.

    ``entries=None`` loads the shipped ``tterm/core/data/cme_holidays.toml``. ``years`` says which
    years the entries cover completely (default: the years of the entries; the shipped file lists
    them). For a date outside the covered years the calendar knows no holidays: every weekday is a
    full session, and a warning is logged once per year so the gap is visible in the log.
    """

    def __init__(self, entries: Iterable[Holiday] | None = None, *, years: Iterable[int] | None = None) -> None:
        if entries is None:
            shipped, shipped_years = _load_shipped()
            entries = shipped
            if years is None:
                years = shipped_years
        by_date: dict[date, Holiday] = {}
        for h in entries:
            if not isinstance(h, Holiday):
                raise ClockError(f"calendar entries must be Holiday, got {type(h).__name__}")
            if h.date in by_date:
                raise ClockError(f"holiday {h.date} is listed twice ({by_date[h.date].name!r}, {h.name!r})")
            by_date[h.date] = h
        self._by_date = by_date
        covered = {h.date.year for h in by_date.values()} if years is None else set(years)
        outside = sorted(d for d in by_date if d.year not in covered)
        if outside:
            raise ClockError(f"holiday {outside[0]} falls outside the covered years {sorted(covered)}")
        self._years = tuple(sorted(covered))
        self._warned: set[int] = set()

    @classmethod
    def from_toml(cls, text: str, *, origin: str = "holiday calendar") -> HolidayCalendar:
        """Parse the ``cme_holidays.toml`` format; ``origin`` names the file in error messages."""
        entries, years = _parse_toml(text, origin)
        return cls(entries, years=years)

    # ------------------------------------------------------------------ queries

    @property
    def years(self) -> tuple[int, ...]:
        """The years whose holidays this calendar knows; outside them, weekdays are full sessions."""
        return self._years

    def covers(self, d: date) -> bool:
        return d.year in self._years

    def holidays(self, year: int | None = None) -> list[Holiday]:
        """Every entry (or one year's), in date order: for a holiday table on screen."""
        return sorted((h for h in self._by_date.values() if year is None or h.date.year == year), key=_by_day)

    def get(self, d: date) -> Holiday | None:
        """The entry for ``d``, if any (warns once per year when ``d`` is outside the coverage)."""
        d = _as_date(d)
        if d.year not in self._years and d.year not in self._warned:
            self._warned.add(d.year)
            log.warning(
                "CME holiday calendar has no data for %d (covers %s): treating every weekday of %d "
                "as a full 17:00-16:00 CT session; add %d to cme_holidays.toml",
                d.year,
                ", ".join(map(str, self._years)) or "no years",
                d.year,
                d.year,
            )
        return self._by_date.get(d)

    def is_closed(self, d: date) -> bool:
        """True when trade date ``d`` has no session: a weekend or a full closure."""
        d = _as_date(d)
        if d.weekday() >= 5:
            return True
        h = self.get(d)
        return h is not None and h.closed

    def early_close(self, d: date) -> time | None:
        """The CT close time when trade date ``d`` closes early, else None."""
        h = self.get(d)
        return h.close if h is not None else None

    def holiday_name(self, d: date) -> str:
        """The holiday's name for ``d`` ("" on a normal day or a plain weekend)."""
        h = self.get(d)
        return h.name if h is not None else ""

    def is_business_day(self, d: date) -> bool:
        """A weekday with a Globex session (early closes included): a valid trade date."""
        return not self.is_closed(d)

    def is_clearing_day(self, d: date) -> bool:
        """A business day CME also clears and settles: not a closure and not a holiday halt.

        CME contract terms ("3 business days before the 25th", "the third Friday, or the business
        day before") count these days. The instrument master uses this when it is available.
        """
        d = _as_date(d)
        if d.weekday() >= 5:
            return False
        h = self.get(d)
        return h is None or not (h.closed or h.halt)

    def __repr__(self) -> str:
        return f"HolidayCalendar({len(self._by_date)} entries, years={list(self._years)})"


def _by_day(h: Holiday) -> date:
    return h.date


def _parse_time(value: object, where: str) -> time:
    if not isinstance(value, str):
        raise ClockError(f'{where}: close must be a string like "12:00", got {value!r}')
    try:
        hh, mm = value.strip().split(":")
        return time(int(hh), int(mm))
    except ValueError:
        raise ClockError(f'{where}: close {value!r} is not a CT time like "12:00"') from None


def _parse_toml(text: str, origin: str) -> tuple[list[Holiday], list[int] | None]:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ClockError(f"{origin}: not valid TOML: {exc}") from None
    extra = set(raw) - {"years", "holiday"}
    if extra:
        raise ClockError(f"{origin}: unknown top-level keys {sorted(extra)} (expected years, [[holiday]])")
    years = raw.get("years")
    if years is not None and (not isinstance(years, list) or not all(isinstance(y, int) for y in years)):
        raise ClockError(f"{origin}: years must be a list of integers, got {years!r}")
    rows = raw.get("holiday", [])
    if not isinstance(rows, list):
        raise ClockError(f"{origin}: holidays must be [[holiday]] tables")
    entries: list[Holiday] = []
    for i, row in enumerate(rows, 1):
        where = f"{origin}: holiday #{i}"
        unknown = set(row) - _HOLIDAY_KEYS
        if unknown:
            raise ClockError(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(_HOLIDAY_KEYS)})")
        if "date" not in row or "name" not in row:
            raise ClockError(f"{where}: date and name are required")
        d = row["date"]
        if isinstance(d, datetime) or not isinstance(d, date):
            raise ClockError(f"{where}: date must be a bare TOML date like 2026-01-19, got {d!r}")
        where = f"{origin}: holiday {d}"
        closed = row.get("closed", False)
        halt = row.get("halt", False)
        if not isinstance(closed, bool) or not isinstance(halt, bool):
            raise ClockError(f"{where}: closed and halt must be true or false")
        close = _parse_time(row["close"], where) if "close" in row else None
        entries.append(
            Holiday(
                date=d,
                name=str(row["name"]),
                closed=closed,
                close=close,
                halt=halt,
                source=str(row.get("source", "")),
            )
        )
    return entries, years


@lru_cache(maxsize=1)
def _load_shipped() -> tuple[tuple[Holiday, ...], tuple[int, ...] | None]:
    text = resources.files("tterm.core.data").joinpath("cme_holidays.toml").read_text(encoding="utf-8")
    entries, years = _parse_toml(text, "cme_holidays.toml")
    return tuple(entries), (tuple(years) if years is not None else None)


@lru_cache(maxsize=1)
def default_calendar() -> HolidayCalendar:
    """The shipped CME calendar, loaded once and shared."""
    return HolidayCalendar()


# --------------------------------------------------------------------------- sessions


@dataclass(frozen=True, slots=True)
class Session:
    """One Globex trading day: ``open`` <= instant < ``close`` is inside it (both aware UTC)."""

    trade_date: date
    open: datetime
    close: datetime
    early_close: bool = False
    note: str = ""

    @property
    def open_ct(self) -> datetime:
        return self.open.astimezone(CT)

    @property
    def close_ct(self) -> datetime:
        return self.close.astimezone(CT)

    @property
    def duration(self) -> timedelta:
        return self.close - self.open

    def contains(self, at: datetime) -> bool:
        return self.open <= _utc(at) < self.close


def _as_date(d: object) -> date:
    if isinstance(d, datetime):
        raise ClockError(
            f"expected a trade date, got the datetime {d.isoformat()}; use CmeClock.trade_date(at) "
            "to find the trade date an instant belongs to"
        )
    if not isinstance(d, date):
        raise ClockError(f"expected a date, got {type(d).__name__} {d!r}")
    return d


def _utc(at: object, what: str = "at") -> datetime:
    if not isinstance(at, datetime):
        raise ClockError(f"{what} must be a datetime, got {type(at).__name__} {at!r}")
    if at.tzinfo is None or at.utcoffset() is None:
        raise ClockError(
            f"{what} is a naive datetime ({at.isoformat()}); pass a timezone-aware one (the clock never guesses a zone)"
        )
    return at.astimezone(UTC)


def _ct_instant(d: date, t: time) -> datetime:
    """The UTC instant of CT wall time ``t`` on ``d`` (first occurrence if DST repeats it)."""
    return datetime.combine(d, t, tzinfo=CT).astimezone(UTC)


class CmeClock:
    """Answers "which Globex session is this?" for any instant, DST and holidays included.

    ``now`` is injectable for tests and replays; it must return aware datetimes. Results are
    cached per trade date, so one clock can be asked on every quote.
    """

    def __init__(
        self,
        calendar: HolidayCalendar | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.calendar = calendar if calendar is not None else default_calendar()
        self._now = now or utcnow
        self._sessions: dict[date, Session | None] = {}

    # ------------------------------------------------------------------ now

    def now(self) -> datetime:
        """The current instant, aware UTC."""
        return _utc(self._now(), "now()")

    def now_ct(self) -> datetime:
        """The current instant in Chicago time, for display."""
        return self.now().astimezone(CT)

    def _at(self, at: datetime | None) -> datetime:
        return self.now() if at is None else _utc(at)

    # ------------------------------------------------------------------ trade dates and sessions

    def trade_date(self, at: datetime | None = None) -> date:
        """The trade date ``at`` belongs to: it rolls to the next business day at 17:00 CT.

        Inside a session this is the session's trade date; in the 16:00-17:00 break it is still
        the day that just closed; from 17:00 on, and over weekends and closures, it is the trade
        date of the next session to open.
        """
        local = self._at(at).astimezone(CT)
        d = local.date()
        if local.time() >= SESSION_OPEN:
            d += _ONE_DAY
        return self._business_on_or_after(d)

    def session(self, trade_date: date) -> Session | None:
        """The session of ``trade_date``, or None when it has none (weekend or closure)."""
        d = _as_date(trade_date)
        if d in self._sessions:
            return self._sessions[d]
        s: Session | None = None
        if self.calendar.is_business_day(d):
            early = self.calendar.early_close(d)
            s = Session(
                trade_date=d,
                open=_ct_instant(d - _ONE_DAY, SESSION_OPEN),
                close=_ct_instant(d, early or SESSION_CLOSE),
                early_close=early is not None,
                note=self.calendar.holiday_name(d),
            )
        if len(self._sessions) > 4096:
            self._sessions.clear()
        self._sessions[d] = s
        return s

    def sessions(self, start: date, end: date) -> Iterator[Session]:
        """Every session with ``start`` <= trade date <= ``end``, in order."""
        d, end = _as_date(start), _as_date(end)
        while d <= end:
            s = self.session(d)
            if s is not None:
                yield s
            d += _ONE_DAY

    def current_session(self, at: datetime | None = None) -> Session | None:
        """The session open at ``at``; None in the daily break, over a weekend or a closure."""
        t = self._at(at)
        s = self._require(self.trade_date(t))
        return s if s.open <= t < s.close else None

    def is_open(self, at: datetime | None = None) -> bool:
        return self.current_session(at) is not None

    def session_state(self, at: datetime | None = None) -> SessionState:
        """Whether the market is "open", or why not: the daily "break", the "weekend", a "holiday".

        A holiday is an early close (until 17:00 that day), a closed weekday, the evening before a
        closed weekday, or a Sunday evening before a closed Monday. Friday after the close and
        Saturday are the weekend even when a holiday surrounds them.
        """
        t = self._at(at)
        if self.current_session(t) is not None:
            return "open"
        local = t.astimezone(CT)
        d = local.date()
        evening = local.time() >= SESSION_OPEN
        if d.weekday() == 5:
            return "weekend"
        if d.weekday() == 6:
            # Not open on a Sunday evening means Monday has no session.
            return "holiday" if evening else "weekend"
        if self.calendar.is_closed(d):
            return "holiday"
        s = self._require(d)
        if not evening and s.early_close:
            return "holiday"
        nxt = d + _ONE_DAY
        if nxt.weekday() == 5:
            return "weekend"
        if self.calendar.is_closed(nxt):
            return "holiday"
        return "break"

    def next_session(self, at: datetime | None = None) -> Session:
        """The first session that opens after ``at``."""
        t = self._at(at)
        d = self.trade_date(t)
        for _ in range(_MAX_SCAN):
            s = self._require(d)
            if s.open > t:
                return s
            d = self._business_on_or_after(d + _ONE_DAY)
        raise ClockError(f"no session opens within {_MAX_SCAN} days of {t.isoformat()}")  # pragma: no cover

    def next_open(self, at: datetime | None = None) -> datetime:
        """The first session open strictly after ``at`` (while open: the following session's)."""
        return self.next_session(at).open

    def next_close(self, at: datetime | None = None) -> datetime:
        """The first session close strictly after ``at`` (while open: this session's close)."""
        t = self._at(at)
        s = self._require(self.trade_date(t))
        return s.close if s.close > t else self.next_session(t).close

    def session_start(self, trade_date: date) -> datetime:
        """When ``trade_date``'s session opens: daily limits and P&L reset here."""
        return self._require(trade_date).open

    def cutoff(self, trade_date: date, flat_by: time) -> datetime:
        """The flat-by instant: CT wall time ``flat_by`` on ``trade_date``, capped at its close.

        On an early-close day a 15:10 CT flat-by becomes the 12:00 (or 12:15...) close.
        """
        if not isinstance(flat_by, time) or flat_by.tzinfo is not None:
            raise ClockError(f"flat_by must be a CT wall time without a zone, got {flat_by!r}")
        s = self._require(trade_date)
        return min(_ct_instant(s.trade_date, flat_by), s.close)

    def time_until(self, target: datetime, at: datetime | None = None) -> timedelta:
        """``target - at`` in real elapsed time (negative once ``target`` has passed)."""
        return _utc(target, "target") - self._at(at)

    # ------------------------------------------------------------------ helpers

    def _require(self, trade_date: date) -> Session:
        s = self.session(trade_date)
        if s is None:
            d = _as_date(trade_date)
            why = self.calendar.holiday_name(d) or f"a {d:%A}"
            raise ClockError(f"{d} is not a CME trade date ({why}): it has no session")
        return s

    def _business_on_or_after(self, d: date) -> date:
        for _ in range(_MAX_SCAN):
            if self.calendar.is_business_day(d):
                return d
            d += _ONE_DAY
        raise ClockError(f"no CME business day within {_MAX_SCAN} days after {d}")  # pragma: no cover

"""CME session clock and holiday calendar: sessions, breaks, holidays, DST, cutoffs, laws."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tterm.core.clock import (
    CT,
    ClockError,
    CmeClock,
    Holiday,
    HolidayCalendar,
    Session,
    default_calendar,
)

CAL = default_calendar()
CLOCK = CmeClock(CAL)
HOUR = timedelta(hours=1)


def ct(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0, fold: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=CT, fold=fold)


def utc(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


# --------------------------------------------------------------------------- the holiday data


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    d = _nth_weekday(year, month, weekday, 4)
    return d + timedelta(days=7) if (d + timedelta(days=7)).month == month else d


def _easter(year: int) -> date:
    """Anonymous Gregorian algorithm (Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ll = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ll) // 451
    month = (h + ll - 7 * m + 114) // 31
    day = (h + ll - 7 * m + 114) % 31 + 1
    return date(year, month, day)


def _observed(d: date) -> date:
    """US rule for a fixed-date holiday: Saturday -> Friday, Sunday -> Monday."""
    if d.weekday() == 5:
        return d - timedelta(days=1)
    if d.weekday() == 6:
        return d + timedelta(days=1)
    return d


def _expected_equity_schedule(year: int) -> dict[date, tuple[bool, time | None, bool]]:
    """(closed, close, halt) per date, derived from the rules, independently of the data file."""
    out: dict[date, tuple[bool, time | None, bool]] = {}
    closed = (True, None, False)
    halt = (False, time(12, 0), True)
    early = (False, time(12, 15), False)
    new_year = date(year, 1, 1)
    if new_year.weekday() != 5:  # New Year's Day on a Saturday is not observed in the old year
        out[_observed(new_year)] = closed
    out[_easter(year) - timedelta(days=2)] = closed
    out[_observed(date(year, 12, 25))] = closed
    for d in (
        _nth_weekday(year, 1, 0, 3),  # MLK: third Monday of January
        _nth_weekday(year, 2, 0, 3),  # Presidents: third Monday of February
        _last_weekday(year, 5, 0),  # Memorial: last Monday of May
        _observed(date(year, 6, 19)),
        _observed(date(year, 7, 4)),
        _nth_weekday(year, 9, 0, 1),  # Labor: first Monday of September
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving: fourth Thursday of November
    ):
        out[d] = halt
    out[_nth_weekday(year, 11, 3, 4) + timedelta(days=1)] = early
    if date(year, 7, 4).weekday() in (1, 2, 3, 4):
        out[date(year, 7, 3)] = early
    if date(year, 12, 24).weekday() in (0, 1, 2, 3):
        out[date(year, 12, 24)] = early
    return out


def test_easter_helper_matches_known_dates() -> None:
    assert [_easter(y) for y in (2024, 2025, 2026, 2027)] == [
        date(2024, 3, 31),
        date(2025, 4, 20),
        date(2026, 4, 5),
        date(2027, 3, 28),
    ]


def test_shipped_calendar_covers_2025_to_2027() -> None:
    assert CAL.years == (2025, 2026, 2027)
    assert default_calendar() is CAL
    assert all(CAL.covers(date(y, 6, 1)) for y in CAL.years)
    assert not CAL.covers(date(2028, 6, 1))


@pytest.mark.parametrize("year", [2025, 2026, 2027])
def test_data_file_matches_the_holiday_rules(year: int) -> None:
    expected = _expected_equity_schedule(year)
    if year == 2025:  # the one ad-hoc entry: National Day of Mourning for President Carter
        expected[date(2025, 1, 9)] = (False, time(8, 30), False)
    got = {h.date: (h.closed, h.close, h.halt) for h in CAL.holidays(year)}
    assert got == expected
    assert all(h.name for h in CAL.holidays(year))


def test_named_dates_from_the_schedule() -> None:
    for d in (date(2025, 4, 18), date(2026, 4, 3), date(2027, 3, 26)):
        assert CAL.holiday_name(d) == "Good Friday"
        assert CAL.is_closed(d)
    for d in (date(2025, 11, 27), date(2026, 11, 26), date(2027, 11, 25)):
        assert CAL.holiday_name(d) == "Thanksgiving Day"
        assert CAL.early_close(d) == time(12, 0)
    # July 4 2026 is a Saturday: observed Friday July 3; Thursday July 2 is a normal day.
    assert CAL.early_close(date(2026, 7, 3)) == time(12, 0)
    assert CAL.get(date(2026, 7, 2)) is None
    # Christmas 2027 is a Saturday: Friday Dec 24 is closed; New Year 2028 (Saturday) is not observed.
    assert CAL.is_closed(date(2027, 12, 24))
    assert CAL.is_business_day(date(2027, 12, 31)) and CAL.early_close(date(2027, 12, 31)) is None
    assert CAL.holidays() == sorted(CAL.holidays(), key=lambda h: h.date)


def test_business_and_clearing_days() -> None:
    # A normal weekday, a weekend, a closure, a halt, a plain early close.
    assert CAL.is_business_day(date(2026, 11, 24)) and CAL.is_clearing_day(date(2026, 11, 24))
    assert not CAL.is_business_day(date(2026, 11, 28)) and CAL.is_closed(date(2026, 11, 28))
    assert not CAL.is_clearing_day(date(2026, 11, 28))
    assert not CAL.is_business_day(date(2026, 12, 25)) and not CAL.is_clearing_day(date(2026, 12, 25))
    # Thanksgiving: a session (early close) but no settlement.
    assert CAL.is_business_day(date(2026, 11, 26)) and not CAL.is_clearing_day(date(2026, 11, 26))
    # The day after: a shortened but ordinary business day.
    assert CAL.is_business_day(date(2026, 11, 27)) and CAL.is_clearing_day(date(2026, 11, 27))
    assert CAL.early_close(date(2026, 11, 27)) == time(12, 15)
    assert CAL.early_close(date(2026, 11, 24)) is None
    assert CAL.holiday_name(date(2026, 11, 24)) == ""
    assert CAL.holiday_name(date(2026, 11, 28)) == ""


def test_outside_coverage_weekdays_are_full_sessions_and_warn_once(caplog: pytest.LogCaptureFixture) -> None:
    cal = HolidayCalendar()
    with caplog.at_level(logging.WARNING, logger="tterm.core.clock"):
        assert not cal.is_closed(date(2030, 1, 1))  # New Year's Day, but 2030 is not covered
        assert cal.is_business_day(date(2030, 12, 25))
        assert cal.is_closed(date(2030, 1, 5))  # a Saturday is still a weekend
    warnings = [r for r in caplog.records if "2030" in r.getMessage()]
    assert len(warnings) == 1
    assert "no data for 2030" in warnings[0].getMessage()


def test_custom_entries_and_years() -> None:
    cal = HolidayCalendar([Holiday(date(2031, 3, 3), "Test closure", closed=True)])
    assert cal.years == (2031,)
    assert cal.is_closed(date(2031, 3, 3))
    cal = HolidayCalendar([], years=[2031])
    assert cal.years == (2031,) and cal.holidays() == []


GOOD_ENTRY = 'date = 2026-01-19\nname = "MLK"\nclose = "12:00"\nhalt = true\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("years = [2026]\n[[holiday]]\n" + GOOD_ENTRY + "[[holiday]]\n" + GOOD_ENTRY, "listed twice"),
        ('[[holiday]]\ndate = 2026-07-04\nname = "July 4"\nclosed = true\n', "is a Saturday"),
        ('[[holiday]]\ndate = 2026-07-03\nname = "July 4"\nclosed = true\nclose = "12:00"\n', "exactly one"),
        ('[[holiday]]\ndate = 2026-07-03\nname = "July 4"\n', "exactly one"),
        ('[[holiday]]\ndate = 2026-07-03\nname = "July 4"\nclsoe = "12:00"\n', "unknown keys"),
        ('[[holiday]]\ndate = 2026-07-03\nname = "July 4"\nclose = "noon"\n', "not a CT time"),
        ('[[holiday]]\ndate = 2026-07-03\nname = "July 4"\nclose = 1200\n', "must be a string"),
        ('[[holiday]]\ndate = 2026-07-03\nname = "July 4"\nclose = "16:30"\n', "before the regular 16:00"),
        ('[[holiday]]\ndate = 2026-07-03\nname = "July 4"\nclosed = true\nhalt = true\n', "halt applies"),
        ('[[holiday]]\ndate = 2026-07-03T00:00:00\nname = "x"\nclosed = true\n', "bare TOML date"),
        ('[[holiday]]\nname = "x"\nclosed = true\n', "date and name are required"),
        ('[[holiday]]\ndate = 2026-07-03\nname = "  "\nclosed = true\n', "name is empty"),
        ('[[holiday]]\ndate = 2026-07-03\nname = "x"\nclosed = "yes"\n', "true or false"),
        ("years = [2025]\n[[holiday]]\n" + GOOD_ENTRY, "outside the covered years"),
        ('years = "2026"\n', "list of integers"),
        ("holidays = []\n", "unknown top-level keys"),
        ("[[holiday]\n", "not valid TOML"),
    ],
)
def test_bad_holiday_data_is_rejected_with_a_specific_message(text: str, message: str) -> None:
    with pytest.raises(ClockError, match=message):
        HolidayCalendar.from_toml(text, origin="test.toml")


def test_from_toml_round_trip() -> None:
    cal = HolidayCalendar.from_toml("years = [2026]\n[[holiday]]\n" + GOOD_ENTRY)
    assert cal.early_close(date(2026, 1, 19)) == time(12, 0)
    assert not cal.is_clearing_day(date(2026, 1, 19))
    assert cal.holiday_name(date(2026, 1, 19)) == "MLK"


# --------------------------------------------------------------------------- states on ordinary days


def test_sunday_open() -> None:
    # Monday 2026-11-30's session opens Sunday 17:00 CT.
    s = CLOCK.session(date(2026, 11, 30))
    assert s is not None
    assert s.open == ct(2026, 11, 29, 17) == utc(2026, 11, 29, 23)
    assert s.close == ct(2026, 11, 30, 16) == utc(2026, 11, 30, 22)
    assert not s.early_close and s.note == ""
    assert s.open_ct.tzinfo is CT and s.open.tzinfo is UTC
    assert CLOCK.session_state(ct(2026, 11, 29, 16, 59, 59)) == "weekend"
    assert CLOCK.session_state(ct(2026, 11, 29, 17)) == "open"
    assert CLOCK.current_session(ct(2026, 11, 29, 17)) == s
    assert CLOCK.trade_date(ct(2026, 11, 29, 12)) == date(2026, 11, 30)


def test_friday_close_and_weekend() -> None:
    fri = date(2026, 11, 20)
    assert CLOCK.is_open(ct(2026, 11, 20, 15, 59, 59))
    assert CLOCK.session_state(ct(2026, 11, 20, 16)) == "weekend"
    assert CLOCK.trade_date(ct(2026, 11, 20, 16, 30)) == fri  # rolls at 17:00, not at the close
    assert CLOCK.trade_date(ct(2026, 11, 20, 17)) == date(2026, 11, 23)
    sat = ct(2026, 11, 21, 12)
    assert CLOCK.session_state(sat) == "weekend"
    assert CLOCK.current_session(sat) is None
    assert CLOCK.trade_date(sat) == date(2026, 11, 23)
    assert CLOCK.next_open(sat) == ct(2026, 11, 22, 17)
    assert CLOCK.next_close(sat) == ct(2026, 11, 23, 16)
    assert CLOCK.session(date(2026, 11, 21)) is None


def test_daily_break_16_to_17() -> None:
    tue = date(2026, 11, 17)
    assert CLOCK.session_state(ct(2026, 11, 17, 15, 59, 59)) == "open"
    for t in (ct(2026, 11, 17, 16), ct(2026, 11, 17, 16, 30), ct(2026, 11, 17, 16, 59, 59)):
        assert CLOCK.session_state(t) == "break"
        assert not CLOCK.is_open(t)
        assert CLOCK.current_session(t) is None
        assert CLOCK.trade_date(t) == tue
        assert CLOCK.next_open(t) == ct(2026, 11, 17, 17)
        assert CLOCK.next_close(t) == ct(2026, 11, 18, 16)
    assert CLOCK.session_state(ct(2026, 11, 17, 17)) == "open"
    assert CLOCK.trade_date(ct(2026, 11, 17, 17)) == date(2026, 11, 18)


def test_next_open_and_close_while_open() -> None:
    at = ct(2026, 11, 18, 10)
    assert CLOCK.next_close(at) == ct(2026, 11, 18, 16)
    assert CLOCK.next_open(at) == ct(2026, 11, 18, 17)
    assert CLOCK.next_session(at).trade_date == date(2026, 11, 19)
    assert CLOCK.session_start(date(2026, 11, 18)) == ct(2026, 11, 17, 17)


def test_sessions_iterates_trade_dates_only() -> None:
    days = [s.trade_date for s in CLOCK.sessions(date(2026, 12, 21), date(2026, 12, 31))]
    assert days == [date(2026, 12, d) for d in (21, 22, 23, 24, 28, 29, 30, 31)]


# --------------------------------------------------------------------------- holidays


def test_christmas_2026_full_closure_and_neighbours() -> None:
    assert CLOCK.session(date(2026, 12, 25)) is None
    eve = CLOCK.session(date(2026, 12, 24))
    assert eve is not None and eve.early_close and eve.note == "Christmas Eve"
    assert eve.open == ct(2026, 12, 23, 17) and eve.close == ct(2026, 12, 24, 12, 15)
    after = CLOCK.session(date(2026, 12, 28))
    assert after is not None and after.open == ct(2026, 12, 27, 17)
    assert CLOCK.session_state(ct(2026, 12, 24, 12, 14)) == "open"
    assert CLOCK.session_state(ct(2026, 12, 24, 13)) == "holiday"  # early close
    assert CLOCK.session_state(ct(2026, 12, 24, 18)) == "holiday"  # evening before the closure
    assert CLOCK.session_state(ct(2026, 12, 25, 10)) == "holiday"
    assert CLOCK.session_state(ct(2026, 12, 26, 10)) == "weekend"
    assert CLOCK.trade_date(ct(2026, 12, 24, 13)) == date(2026, 12, 24)
    assert CLOCK.trade_date(ct(2026, 12, 24, 17)) == date(2026, 12, 28)
    assert CLOCK.trade_date(ct(2026, 12, 25, 10)) == date(2026, 12, 28)
    assert CLOCK.next_open(ct(2026, 12, 24, 13)) == ct(2026, 12, 27, 17)
    with pytest.raises(ClockError, match="Christmas Day"):
        CLOCK.session_start(date(2026, 12, 25))


def test_new_year_2026_session_after_opens_on_the_holiday_evening() -> None:
    # Jan 1 2026 is a Thursday: closed. Friday Jan 2 opens Thursday 17:00.
    assert CLOCK.session(date(2026, 1, 1)) is None
    s = CLOCK.session(date(2026, 1, 2))
    assert s is not None and s.open == ct(2026, 1, 1, 17)
    nye = CLOCK.session(date(2025, 12, 31))
    assert nye is not None and nye.close == ct(2025, 12, 31, 16) and not nye.early_close
    assert CLOCK.session_state(ct(2025, 12, 31, 16, 30)) == "holiday"  # break before a closed day
    assert CLOCK.session_state(ct(2025, 12, 31, 18)) == "holiday"
    assert CLOCK.session_state(ct(2026, 1, 1, 16, 59)) == "holiday"
    assert CLOCK.session_state(ct(2026, 1, 1, 17)) == "open"


def test_good_friday_2026() -> None:
    assert CLOCK.session(date(2026, 4, 3)) is None
    assert CLOCK.session_state(ct(2026, 4, 2, 16, 30)) == "holiday"
    assert CLOCK.session_state(ct(2026, 4, 3, 9)) == "holiday"
    assert CLOCK.session_state(ct(2026, 4, 4, 9)) == "weekend"
    assert CLOCK.trade_date(ct(2026, 4, 2, 17)) == date(2026, 4, 6)
    assert CLOCK.next_open(ct(2026, 4, 2, 17)) == ct(2026, 4, 5, 17)


def test_mlk_2026_is_an_early_close_trade_date() -> None:
    s = CLOCK.session(date(2026, 1, 19))
    assert s == Session(
        trade_date=date(2026, 1, 19),
        open=ct(2026, 1, 18, 17).astimezone(UTC),
        close=ct(2026, 1, 19, 12).astimezone(UTC),
        early_close=True,
        note="Martin Luther King Jr. Day",
    )
    assert CLOCK.session_state(ct(2026, 1, 19, 11, 59)) == "open"
    assert CLOCK.session_state(ct(2026, 1, 19, 12, 30)) == "holiday"
    assert CLOCK.trade_date(ct(2026, 1, 19, 12, 30)) == date(2026, 1, 19)
    assert CLOCK.trade_date(ct(2026, 1, 19, 17)) == date(2026, 1, 20)
    tue = CLOCK.session(date(2026, 1, 20))
    assert tue is not None and tue.open == ct(2026, 1, 19, 17) and tue.close == ct(2026, 1, 20, 16)


def test_thanksgiving_2026_week() -> None:
    thu = CLOCK.session(date(2026, 11, 26))
    fri = CLOCK.session(date(2026, 11, 27))
    assert thu is not None and thu.close == ct(2026, 11, 26, 12) and thu.note == "Thanksgiving Day"
    assert fri is not None and fri.open == ct(2026, 11, 26, 17) and fri.close == ct(2026, 11, 27, 12, 15)
    assert CLOCK.session_state(ct(2026, 11, 26, 13)) == "holiday"
    assert CLOCK.session_state(ct(2026, 11, 27, 13)) == "holiday"
    assert CLOCK.session_state(ct(2026, 11, 27, 18)) == "weekend"
    assert CLOCK.next_close(ct(2026, 11, 26, 13)) == ct(2026, 11, 27, 12, 15)


def test_day_of_mourning_2025() -> None:
    s = CLOCK.session(date(2025, 1, 9))
    assert s is not None and s.close == ct(2025, 1, 9, 8, 30) and s.early_close
    assert CLOCK.session_state(ct(2025, 1, 9, 9)) == "holiday"
    assert CLOCK.cutoff(date(2025, 1, 9), time(15, 10)) == ct(2025, 1, 9, 8, 30)


def test_sunday_evening_before_a_closed_monday_is_a_holiday() -> None:
    cal = HolidayCalendar([Holiday(date(2031, 1, 6), "Test Monday closure", closed=True)], years=[2031])
    clock = CmeClock(cal)
    assert clock.session_state(ct(2031, 1, 5, 12)) == "weekend"
    assert clock.session_state(ct(2031, 1, 5, 18)) == "holiday"
    assert clock.session_state(ct(2031, 1, 6, 18)) == "open"
    assert clock.session(date(2031, 1, 7)).open == ct(2031, 1, 6, 17)  # type: ignore[union-attr]


# --------------------------------------------------------------------------- DST


@pytest.mark.parametrize(
    ("friday", "monday", "fri_close", "sun_open", "mon_close", "weekend_gap"),
    [
        # 2026 spring forward (Sunday Mar 8): CST close, CDT open.
        (date(2026, 3, 6), date(2026, 3, 9), utc(2026, 3, 6, 22), utc(2026, 3, 8, 22), utc(2026, 3, 9, 21), 48),
        # 2026 fall back (Sunday Nov 1): CDT close, CST open.
        (date(2026, 10, 30), date(2026, 11, 2), utc(2026, 10, 30, 21), utc(2026, 11, 1, 23), utc(2026, 11, 2, 22), 50),
        # 2027 spring forward (Sunday Mar 14).
        (date(2027, 3, 12), date(2027, 3, 15), utc(2027, 3, 12, 22), utc(2027, 3, 14, 22), utc(2027, 3, 15, 21), 48),
        # 2027 fall back (Sunday Nov 7).
        (date(2027, 11, 5), date(2027, 11, 8), utc(2027, 11, 5, 21), utc(2027, 11, 7, 23), utc(2027, 11, 8, 22), 50),
    ],
)
def test_sessions_around_dst_changes(
    friday: date,
    monday: date,
    fri_close: datetime,
    sun_open: datetime,
    mon_close: datetime,
    weekend_gap: int,
) -> None:
    fri, mon = CLOCK.session(friday), CLOCK.session(monday)
    assert fri is not None and mon is not None
    assert fri.close == fri_close
    assert mon.open == sun_open and CLOCK.session_start(monday) == sun_open
    assert mon.close == mon_close
    assert mon.open_ct.hour == 17 and mon.close_ct.hour == 16
    assert mon.duration == timedelta(hours=23)  # the change happens Sunday 02:00, before the open
    assert mon.open - fri.close == timedelta(hours=weekend_gap)
    assert CLOCK.time_until(mon.open, at=fri.close) == timedelta(hours=weekend_gap)
    # Exact open/close edges in UTC.
    assert not CLOCK.is_open(sun_open - timedelta(microseconds=1))
    assert CLOCK.is_open(sun_open)
    assert CLOCK.is_open(mon_close - timedelta(microseconds=1))
    assert CLOCK.session_state(mon_close) == "break"
    assert CLOCK.next_open(fri.close) == sun_open


def test_trade_date_rolls_at_17_ct_in_both_seasons() -> None:
    # Winter (CST, UTC-6): 17:00 CT is 23:00 UTC.
    assert CLOCK.trade_date(utc(2026, 3, 5, 22, 59)) == date(2026, 3, 5)
    assert CLOCK.trade_date(utc(2026, 3, 5, 23, 0)) == date(2026, 3, 6)
    # Summer (CDT, UTC-5): 17:00 CT is 22:00 UTC.
    assert CLOCK.trade_date(utc(2026, 3, 9, 21, 59)) == date(2026, 3, 9)
    assert CLOCK.trade_date(utc(2026, 3, 9, 22, 0)) == date(2026, 3, 10)
    assert CLOCK.trade_date(utc(2026, 11, 2, 22, 59)) == date(2026, 11, 2)
    assert CLOCK.trade_date(utc(2026, 11, 2, 23, 0)) == date(2026, 11, 3)


def test_instants_inside_the_dst_change_itself() -> None:
    # 2026-03-08 02:00-03:00 CT does not exist; 2026-11-01 01:00-02:00 CT happens twice.
    for at in (utc(2026, 3, 8, 7, 59), utc(2026, 3, 8, 8, 0), ct(2026, 11, 1, 1, 30), ct(2026, 11, 1, 1, 30, fold=1)):
        assert CLOCK.session_state(at) == "weekend"
    assert CLOCK.trade_date(ct(2026, 11, 1, 1, 30, fold=1)) == date(2026, 11, 2)
    # Both readings of the repeated hour are an hour apart in real time.
    assert CLOCK.time_until(ct(2026, 11, 1, 1, 30, fold=1), at=ct(2026, 11, 1, 1, 30)) == HOUR


@pytest.mark.parametrize(
    ("trade_date", "expected"),
    [
        (date(2026, 3, 6), utc(2026, 3, 6, 21, 10)),  # CST
        (date(2026, 3, 9), utc(2026, 3, 9, 20, 10)),  # first CDT trade date
        (date(2026, 10, 30), utc(2026, 10, 30, 20, 10)),  # last CDT trade date
        (date(2026, 11, 2), utc(2026, 11, 2, 21, 10)),  # first CST trade date
        (date(2027, 3, 15), utc(2027, 3, 15, 20, 10)),
        (date(2027, 11, 8), utc(2027, 11, 8, 21, 10)),
    ],
)
def test_cutoff_across_dst(trade_date: date, expected: datetime) -> None:
    assert CLOCK.cutoff(trade_date, time(15, 10)) == expected


@pytest.mark.parametrize(
    ("trade_date", "flat_by", "expected"),
    [
        (date(2026, 11, 27), time(15, 10), ct(2026, 11, 27, 12, 15)),  # clamped to the 12:15 close
        (date(2026, 11, 27), time(11, 0), ct(2026, 11, 27, 11, 0)),  # already before it
        (date(2026, 1, 19), time(15, 59), ct(2026, 1, 19, 12, 0)),  # MLK halt, CST
        (date(2026, 7, 3), time(15, 10), utc(2026, 7, 3, 17, 0)),  # July 4 observed, CDT
        (date(2026, 11, 24), time(16, 30), ct(2026, 11, 24, 16, 0)),  # after the regular close
    ],
)
def test_cutoff_is_capped_at_the_close(trade_date: date, flat_by: time, expected: datetime) -> None:
    got = CLOCK.cutoff(trade_date, flat_by)
    assert got == expected and got.tzinfo is UTC


def test_cutoff_on_a_closed_date_is_an_error() -> None:
    with pytest.raises(ClockError, match="2026-12-25 is not a CME trade date"):
        CLOCK.cutoff(date(2026, 12, 25), time(15, 10))
    with pytest.raises(ClockError, match="a Saturday"):
        CLOCK.cutoff(date(2026, 11, 28), time(15, 10))


# --------------------------------------------------------------------------- input handling and now()


def test_naive_datetimes_are_rejected() -> None:
    naive = datetime(2026, 11, 24, 10, 0)
    for call in (
        CLOCK.trade_date,
        CLOCK.current_session,
        CLOCK.session_state,
        CLOCK.is_open,
        CLOCK.next_open,
        CLOCK.next_close,
        CLOCK.next_session,
    ):
        with pytest.raises(ValueError, match="naive datetime"):
            call(naive)
    with pytest.raises(ValueError, match="target is a naive datetime"):
        CLOCK.time_until(naive, at=utc(2026, 11, 24))
    with pytest.raises(ValueError, match=r"now\(\) is a naive datetime"):
        CmeClock(CAL, now=lambda: naive).now()


def test_wrong_types_are_rejected() -> None:
    with pytest.raises(ClockError, match=r"use CmeClock\.trade_date"):
        CLOCK.session(utc(2026, 11, 24))  # type: ignore[arg-type]
    with pytest.raises(ClockError, match="expected a date"):
        CLOCK.session("2026-11-24")  # type: ignore[arg-type]
    with pytest.raises(ClockError, match="must be a datetime"):
        CLOCK.trade_date(date(2026, 11, 24))  # type: ignore[arg-type]
    with pytest.raises(ClockError, match="flat_by must be a CT wall time"):
        CLOCK.cutoff(date(2026, 11, 24), time(15, 10, tzinfo=UTC))


def test_injected_now_drives_the_defaults() -> None:
    instant = ct(2026, 12, 9, 17, 30)  # Wednesday evening: already Thursday's trade date
    clock = CmeClock(CAL, now=lambda: instant)
    assert clock.now() == instant and clock.now().tzinfo is UTC
    assert clock.now_ct().tzinfo is CT and clock.now_ct().hour == 17
    assert clock.trade_date() == date(2026, 12, 10)
    assert clock.session_state() == "open"
    assert clock.is_open()
    assert clock.current_session() == clock.session(date(2026, 12, 10))
    assert clock.next_close() == ct(2026, 12, 10, 16)
    assert clock.next_open() == ct(2026, 12, 10, 17)
    assert clock.time_until(ct(2026, 12, 10, 15, 10)) == timedelta(hours=21, minutes=40)


def test_any_timezone_is_accepted() -> None:
    instant = ct(2026, 11, 24, 16, 30)
    for tz in (UTC, CT, ZoneInfo("Asia/Tokyo"), ZoneInfo("Europe/London"), timezone(timedelta(hours=-3))):
        at = instant.astimezone(tz)
        assert CLOCK.session_state(at) == "break"
        assert CLOCK.trade_date(at) == date(2026, 11, 24)


# --------------------------------------------------------------------------- laws

START = datetime(2025, 1, 1, tzinfo=UTC)
SPAN_SECONDS = int((datetime(2028, 1, 1, tzinfo=UTC) - START).total_seconds()) - 1
ZONES = [UTC, CT, ZoneInfo("Asia/Tokyo"), ZoneInfo("America/New_York"), timezone(timedelta(hours=5, minutes=30))]

instants = st.builds(
    lambda s, us, tz: (START + timedelta(seconds=s, microseconds=us)).astimezone(tz),
    st.integers(0, SPAN_SECONDS),
    st.integers(0, 999_999),
    st.sampled_from(ZONES),
)
# Instants near the interesting edges: session opens/closes, DST changes, holidays.
edges = st.builds(
    lambda d, minutes, tz: (datetime.combine(d, time(0), tzinfo=CT) + timedelta(minutes=minutes)).astimezone(tz),
    st.dates(date(2025, 1, 1), date(2027, 12, 30)),
    st.sampled_from([0, 1, 120, 179, 180, 719, 720, 734, 735, 959, 960, 961, 1019, 1020, 1021, 1439]),
    st.sampled_from(ZONES),
)
any_instant = st.one_of(instants, edges)


@settings(max_examples=400, deadline=None)
@given(any_instant)
def test_law_open_means_inside_the_current_session(at: datetime) -> None:
    s = CLOCK.current_session(at)
    assert CLOCK.is_open(at) == (s is not None) == (CLOCK.session_state(at) == "open")
    if s is not None:
        assert s.open <= at < s.close
        assert s.trade_date == CLOCK.trade_date(at)
        assert s.contains(at)


@settings(max_examples=400, deadline=None)
@given(any_instant)
def test_law_trade_date_is_a_business_day_whose_17_ct_is_ahead(at: datetime) -> None:
    d = CLOCK.trade_date(at)
    assert CAL.is_business_day(d)
    assert at < ct(d.year, d.month, d.day, 17)
    prev = d - timedelta(days=1)
    while not CAL.is_business_day(prev):
        prev -= timedelta(days=1)
    assert at >= ct(prev.year, prev.month, prev.day, 17)


@settings(max_examples=300, deadline=None)
@given(any_instant, st.sampled_from(ZONES))
def test_law_answers_do_not_depend_on_the_zone_of_the_input(at: datetime, tz: ZoneInfo) -> None:
    other = at.astimezone(tz)
    assert CLOCK.trade_date(other) == CLOCK.trade_date(at)
    assert CLOCK.session_state(other) == CLOCK.session_state(at)
    assert CLOCK.next_open(other) == CLOCK.next_open(at)
    assert CLOCK.next_close(other) == CLOCK.next_close(at)


@settings(max_examples=300, deadline=None)
@given(any_instant, any_instant)
def test_law_trade_date_never_goes_backwards(a: datetime, b: datetime) -> None:
    a, b = min(a, b), max(a, b)
    assert CLOCK.trade_date(a) <= CLOCK.trade_date(b)


@settings(max_examples=300, deadline=None)
@given(any_instant)
def test_law_next_open_and_next_close(at: datetime) -> None:
    tick = timedelta(microseconds=1)
    nxt_open, nxt_close = CLOCK.next_open(at), CLOCK.next_close(at)
    assert nxt_open > at and nxt_close > at
    assert CLOCK.is_open(nxt_open) and not CLOCK.is_open(nxt_open - tick)
    assert not CLOCK.is_open(nxt_close) and CLOCK.is_open(nxt_close - tick)
    if CLOCK.is_open(at):
        assert nxt_close < nxt_open
    else:
        assert nxt_open < nxt_close
    assert CLOCK.time_until(nxt_open, at=at) == nxt_open - at


@settings(max_examples=200, deadline=None)
@given(st.dates(date(2025, 1, 1), date(2027, 12, 31)), st.times())
def test_law_cutoff_is_on_the_trade_date_and_never_after_the_close(d: date, flat_by: time) -> None:
    s = CLOCK.session(d)
    if s is None:
        with pytest.raises(ClockError):
            CLOCK.cutoff(d, flat_by)
        return
    c = CLOCK.cutoff(d, flat_by)
    assert s.open < c <= s.close
    wall = datetime.combine(d, flat_by, tzinfo=CT)
    assert c == min(wall, s.close)


def test_every_session_in_coverage_is_well_formed() -> None:
    """Exhaustive over 2025-2027: open 17:00 CT the day before, 23h unless early, no overlaps."""
    prev: Session | None = None
    d = date(2025, 1, 1)
    while d <= date(2027, 12, 31):
        s = CLOCK.session(d)
        assert (s is not None) == CAL.is_business_day(d)
        if s is not None:
            assert s.open < s.close
            assert s.open_ct == ct(d.year, d.month, d.day, 17) - timedelta(days=1)
            assert s.close_ct.date() == d
            if s.early_close:
                assert s.close_ct.time() == CAL.early_close(d) and s.note
            else:
                assert s.duration == timedelta(hours=23)
            if prev is not None:
                assert prev.close <= s.open
            prev = s
        d += timedelta(days=1)

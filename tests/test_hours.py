"""Business-time arithmetic: hand-computed cases and properties that hold for any
schedule, zone and instant (consultant/hours.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consultant.hours import (
    ALWAYS_OPEN,
    Schedule,
    ScheduleError,
    parse_schedule,
    schedule_from_week,
    week_fields,
)

NEW_YORK = parse_schedule("Mon-Fri 08:00-18:00 America/New_York", holidays_spec="US")
HOUR = 3600


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_friday_evening_plus_four_hours_is_monday_morning() -> None:
    # Fri 2026-12-04 17:00 EST = 22:00 UTC: 1 h Friday + 3 h Monday from 08:00 EST.
    assert NEW_YORK.add(utc(2026, 12, 4, 22), 4 * HOUR) == utc(2026, 12, 7, 16)


def test_holidays_observed_on_the_friday_before_a_saturday_holiday() -> None:
    # July 4 2026 is a Saturday, observed Friday July 3: Thursday 17:00 EDT + 2 h runs
    # 1 h Thursday, then Monday July 6 08:00-09:00 EDT (13:00 UTC).
    assert NEW_YORK.add(utc(2026, 7, 2, 21), 2 * HOUR) == utc(2026, 7, 6, 13)
    assert not NEW_YORK.is_open(utc(2026, 11, 26, 15))  # Thanksgiving, 10:00 EST
    assert NEW_YORK.is_open(utc(2026, 11, 27, 15))  # the day after is a working day


def test_a_state_holiday_closes_only_that_state() -> None:
    # Lincoln's Birthday, 2026-02-12 (a Thursday), is a New York holiday, not a federal one.
    federal = parse_schedule("Mon-Fri 09:00-17:00 America/New_York", holidays_spec="US")
    new_york = parse_schedule("Mon-Fri 09:00-17:00 America/New_York", holidays_spec="US-NY")
    noon = utc(2026, 2, 12, 17)
    assert federal.is_open(noon) and not new_york.is_open(noon)


def test_an_admin_closed_date_counts_like_a_holiday() -> None:
    closed = parse_schedule("Mon-Fri 08:00-18:00 America/New_York", closed=[date(2026, 12, 7)])
    assert closed.add(utc(2026, 12, 4, 22), 4 * HOUR) == utc(2026, 12, 8, 16)


def test_daylight_saving_days_are_23_and_25_hours_long() -> None:
    always = parse_schedule("Mon-Sun 00:00-24:00 America/New_York")
    spring = always.between(utc(2026, 3, 8, 5), utc(2026, 3, 9, 4))  # local midnight to midnight
    autumn = always.between(utc(2026, 11, 1, 4), utc(2026, 11, 2, 5))
    assert (spring, autumn) == (23 * HOUR, 25 * HOUR)


def test_a_night_shift_across_the_clock_change_is_an_hour_longer_in_autumn() -> None:
    nights = parse_schedule("Sat 22:00-06:00 Europe/Berlin")
    # Sat 2026-10-24 22:00 CEST (20:00 UTC) to Sun 06:00 CET (05:00 UTC): 9 hours.
    assert nights.between(utc(2026, 10, 24, 12), utc(2026, 10, 25, 12)) == 9 * HOUR
    # Sat 2026-03-28 22:00 CET (21:00 UTC) to Sun 06:00 CEST (04:00 UTC): 7 hours.
    assert nights.between(utc(2026, 3, 28, 12), utc(2026, 3, 29, 12)) == 7 * HOUR


def test_arriving_outside_hours_starts_at_the_next_opening() -> None:
    assert NEW_YORK.next_open(utc(2026, 12, 7, 12)) == utc(2026, 12, 7, 13)  # 07:00 EST
    assert NEW_YORK.next_open(utc(2026, 12, 7, 23, 30)) == utc(2026, 12, 8, 13)  # 18:30 EST
    assert NEW_YORK.next_open(utc(2026, 12, 6, 15)) == utc(2026, 12, 7, 13)  # Sunday
    assert NEW_YORK.add(utc(2026, 12, 7, 23), 0) == utc(2026, 12, 8, 13)


def test_schedules_describe_themselves() -> None:
    assert NEW_YORK.describe() == "Mon-Fri 08:00-18:00 America/New_York, closed on US holidays"
    split = parse_schedule("Mon-Thu 08:00-17:00, Fri 08:00-12:00 Europe/Berlin")
    assert split.describe() == "Mon-Thu 08:00-17:00, Fri 08:00-12:00 Europe/Berlin"
    assert parse_schedule("").describe() == "24x7"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Mon-Fri 8am", "cannot read 'Mon-Fri 8am'"),
        ("Funday 08:00-09:00", "unknown day 'funday'"),
        ("Mon 25:00-26:00", "'25:00' in 'Mon 25:00-26:00' is not a time of day"),
        ("Mon 09:00-09:00", "is open for no time"),
        ("Mon 09:00-17:00 Mars/Base", "unknown time zone 'Mars/Base'"),
        ("Mon 09:00-12:00, Mon 11:00-13:00", "has overlapping hours"),
        ("Sun 22:00-06:00, Mon 05:00-09:00", "has overlapping hours"),
    ],
)
def test_a_schedule_that_cannot_be_read_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ScheduleError) as raised:
        parse_schedule(text)
    assert message in str(raised.value)


def test_an_unknown_holiday_calendar_is_refused() -> None:
    with pytest.raises(ScheduleError, match="no country 'XX'"):
        parse_schedule("", holidays_spec="XX")
    with pytest.raises(ScheduleError, match="no subdivision 'ZZ'"):
        parse_schedule("", holidays_spec="US-ZZ")


# --- properties -----------------------------------------------------------------------

ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata"]
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def clock(minute: int) -> str:
    return "24:00" if minute == 1440 else f"{minute % 1440 // 60:02d}:{minute % 60:02d}"


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    """A random week: one span that may run past midnight, maybe more groups, in a zone
    with or without daylight saving (Lord Howe shifts by half an hour)."""
    day = draw(st.sampled_from(DAYS))
    start = draw(st.integers(0, 47)) * 30
    end = start + draw(st.integers(1, 30)) * 30
    groups = [f"{day} {clock(start)}-{clock(end)}"]
    more = draw(st.sampled_from(["", "Mon-Fri 09:00-12:00", "Sat-Sun 13:00-15:00"]))
    text = ", ".join([*groups, more] if more else groups)
    closed = draw(st.lists(st.dates(date(2025, 1, 1), date(2028, 12, 31)), max_size=5))
    try:
        return parse_schedule(f"{text} {draw(st.sampled_from(ZONES))}", closed=closed)
    except ScheduleError:  # the random groups overlapped
        return parse_schedule(f"Mon-Fri 09:00-17:00 {draw(st.sampled_from(ZONES))}", closed=closed)


instants = st.datetimes(datetime(2025, 1, 1), datetime(2028, 6, 30)).map(
    lambda d: d.replace(tzinfo=UTC)
)
durations = st.floats(min_value=0, max_value=300 * HOUR, allow_nan=False)
spans = st.timedeltas(timedelta(0), timedelta(days=20))


@settings(max_examples=150, deadline=None)
@given(schedules(), instants, durations)
def test_the_time_between_a_start_and_its_due_time_is_the_time_added(
    schedule: Schedule, start: datetime, seconds: float
) -> None:
    due = schedule.add(start, seconds)
    assert due >= start
    assert schedule.between(start, due) == pytest.approx(seconds, abs=1e-3)


@settings(max_examples=150, deadline=None)
@given(schedules(), instants, spans, spans)
def test_business_time_adds_up_and_never_exceeds_wall_time(
    schedule: Schedule, a: datetime, first: timedelta, second: timedelta
) -> None:
    b, c = a + first, a + first + second
    assert schedule.between(a, c) == pytest.approx(
        schedule.between(a, b) + schedule.between(b, c), abs=1e-3
    )
    assert 0 <= schedule.between(a, c) <= (c - a).total_seconds()


@settings(max_examples=150, deadline=None)
@given(schedules(), instants, durations, durations)
def test_adding_more_time_never_gives_an_earlier_due_time(
    schedule: Schedule, start: datetime, s1: float, s2: float
) -> None:
    low, high = sorted((s1, s2))
    assert schedule.add(start, low) <= schedule.add(start, high)
    assert schedule.add(start, low) <= schedule.add(start + timedelta(hours=1), low)


@settings(max_examples=100, deadline=None)
@given(schedules(), instants, durations.filter(lambda s: s > 0))
def test_a_due_time_falls_inside_open_hours_or_at_their_close(
    schedule: Schedule, start: datetime, seconds: float
) -> None:
    due = schedule.add(start, seconds)
    assert schedule.is_open(due - timedelta(microseconds=1)) or schedule.is_open(due)


@settings(max_examples=100, deadline=None)
@given(instants, durations)
def test_always_open_is_plain_time(start: datetime, seconds: float) -> None:
    assert ALWAYS_OPEN.add(start, seconds) == start + timedelta(seconds=seconds)
    assert ALWAYS_OPEN.between(start, start + timedelta(seconds=seconds)) == pytest.approx(
        seconds,
        abs=1e-6,  # timedelta keeps microseconds
    )


@settings(max_examples=100, deadline=None)
@given(schedules())
def test_a_week_shown_as_the_admin_page_fields_reads_back_as_the_same_hours(
    schedule: Schedule,
) -> None:
    text, problems = schedule_from_week(week_fields(schedule), schedule.zone.key)
    assert problems == {}
    again = parse_schedule(text)
    assert (again.spans, again.zone) == (schedule.spans, schedule.zone)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=30), min_size=7, max_size=7), st.text(max_size=40))
def test_any_typed_week_is_hours_or_a_message_beside_a_field(days: list[str], zone: str) -> None:
    text, problems = schedule_from_week(days, zone)
    assert set(problems) <= {"mon", "tue", "wed", "thu", "fri", "sat", "sun", "zone", "week"}
    if not problems:
        parse_schedule(text)

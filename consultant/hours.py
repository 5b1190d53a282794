"""Business hours: when a desk (or a coder) is at work, and time counted only then.

SLA clocks count business time, so the arithmetic must be right where naive code goes
wrong: a weekend, a public holiday, a day the clocks change (a local day of 23 or 25
hours), a night shift that crosses midnight. Open intervals are built per local date in
the schedule's zone and converted to UTC instant by instant (never by adding hours to a
local time); :meth:`Schedule.add` and :meth:`Schedule.between` then walk those intervals
day by day.

A schedule is written ``Mon-Fri 08:00-18:00 America/New_York`` (groups separated by
commas: ``Mon-Thu 08:00-17:00, Fri 08:00-12:00``; no zone: the one given, else UTC);
empty or ``24x7`` means always open. Holidays come from the ``holidays`` package
(``US``, ``US-NY``), plus closed dates an admin adds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
EXPECTED = 'expected like "Mon-Fri 08:00-18:00 America/New_York"'
LOOK_AHEAD_DAYS = 400  # a schedule with no open time within this is refused, not looped on

_DAYS = r"[A-Za-z]+(?:\s*-\s*[A-Za-z]+)?(?:\s*,\s*[A-Za-z]+(?:\s*-\s*[A-Za-z]+)?)*"
_GROUP = re.compile(
    rf"(?P<days>{_DAYS})\s+(?P<start>\d{{1,2}}:\d{{2}})\s*-\s*(?P<end>\d{{1,2}}:\d{{2}})"
)

Interval = tuple[datetime, datetime]


class ScheduleError(ValueError):
    """A schedule text that cannot be read; the message says what is wrong and shows the
    expected form."""


@dataclass(frozen=True)
class Schedule:
    """Weekly open spans in one zone, minus holidays and closed dates.

    ``spans``: (weekday 0 = Monday, start minute, end minute); an end past 1440 belongs
    to a night shift that ends the next morning.
    """

    spans: tuple[tuple[int, int, int], ...]
    zone: ZoneInfo
    closed: frozenset[date] = frozenset()
    holidays_spec: str = ""
    always_open: bool = False

    def is_open(self, at: datetime) -> bool:
        _check_aware(at)
        if self.always_open:
            return True
        return any(
            start <= at < end
            for start, end in self._intervals(self._local_date(at) - timedelta(days=1), 2)
        )

    def add(self, start: datetime, seconds: float) -> datetime:
        """The instant at which ``seconds`` of open time have passed since ``start``;
        ``add(t, 0)`` is ``t`` when open then, else the next opening."""
        _check_aware(start)
        if seconds < 0:
            raise ValueError("business time to add must not be negative")
        if self.always_open:
            return (start + timedelta(seconds=seconds)).astimezone(UTC)
        left = seconds
        for opens, closes in self._intervals_from(start):
            available = (closes - opens).total_seconds()
            if left <= available:
                return opens + timedelta(seconds=left)
            left -= available
        raise AssertionError("unreachable: _intervals_from never ends")  # pragma: no cover

    def between(self, start: datetime, end: datetime) -> float:
        """Seconds of open time in [start, end); 0 when end is not after start."""
        _check_aware(start)
        _check_aware(end)
        if end <= start:
            return 0.0
        if self.always_open:
            return (end - start).total_seconds()
        total = 0.0
        for opens, closes in self._intervals_from(start):
            if opens >= end:
                break
            total += (min(closes, end) - opens).total_seconds()
        return total

    def next_open(self, at: datetime) -> datetime:
        return self.add(at, 0)

    def describe(self) -> str:
        if self.always_open:
            return "24x7"
        groups: dict[tuple[int, int], list[int]] = {}
        for day, start, end in sorted(self.spans):
            groups.setdefault((start, end), []).append(day)
        parts = [
            f"{_day_ranges(days)} {_clock(start)}-{_clock(end % MINUTES_PER_DAY or end)}"
            for (start, end), days in sorted(groups.items(), key=lambda item: item[1][0])
        ]
        text = f"{', '.join(parts)} {self.zone.key}"
        closed = []
        if self.holidays_spec:
            closed.append(f"{self.holidays_spec} holidays")
        if self.closed:
            closed.append(f"{len(self.closed)} more date{'s' if len(self.closed) > 1 else ''}")
        return text + (f", closed on {' and '.join(closed)}" if closed else "")

    # --- the open intervals ---------------------------------------------------------

    def _local_date(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()

    def _intervals_from(self, start: datetime) -> Iterator[Interval]:
        """Open intervals in time order, the first clipped to begin at ``start``."""
        day = self._local_date(start) - timedelta(days=1)  # last night's shift may run on
        empty_days = 0
        while True:
            found = False
            for opens, closes in self._intervals(day, 1):
                if closes <= start:
                    continue
                found = True
                yield max(opens, start), closes
            empty_days = 0 if found else empty_days + 1
            if empty_days > LOOK_AHEAD_DAYS:
                raise ScheduleError(f"{self.describe()} has no open time within a year")
            day += timedelta(days=1)

    def _intervals(self, first: date, days: int) -> list[Interval]:
        found = []
        for offset in range(days):
            found.extend(self._day_intervals(first + timedelta(days=offset)))
        return found

    def _day_intervals(self, day: date) -> list[Interval]:
        """The open intervals that start on this local date, in UTC."""
        if day in self.closed or day in holiday_dates(self.holidays_spec, day.year):
            return []
        weekday = day.weekday()
        return [
            (self._instant(day, start), self._instant(day, end))
            for span_day, start, end in self.spans
            if span_day == weekday
        ]

    def _instant(self, day: date, minute: int) -> datetime:
        """Local ``day`` plus ``minute`` (past midnight: the next day) as a UTC instant.

        ``fold=0``: an ambiguous time (the repeated hour in autumn) is its first
        occurrence; a time in the spring gap maps by the offset before the change."""
        extra_days, minute_of_day = divmod(minute, MINUTES_PER_DAY)
        local = datetime.combine(
            day + timedelta(days=extra_days),
            time(minute_of_day // 60, minute_of_day % 60),
            tzinfo=self.zone,
        )
        return local.astimezone(UTC)


ALWAYS_OPEN = Schedule(spans=(), zone=ZoneInfo("UTC"), always_open=True)


# --- reading a schedule -------------------------------------------------------------


def parse_schedule(
    text: str,
    *,
    zone: str | None = None,
    holidays_spec: str = "",
    closed: Iterable[date] = (),
) -> Schedule:
    """The schedule ``text`` describes; :class:`ScheduleError` says what is wrong."""
    words = text.strip()
    spec = check_holidays_spec(holidays_spec)
    body, zone_name = _split_zone(words, default=zone or "UTC")
    tz = _zone(zone_name)
    days_off = frozenset(closed)
    if not body or body.lower() == "24x7":
        if not spec and not days_off:
            return Schedule(spans=(), zone=tz, always_open=True)
        body = "Mon-Sun 00:00-24:00"  # every hour, but for the holidays and closed dates
    spans = _spans(body)
    _refuse_overlaps(spans, text)
    return Schedule(spans=tuple(sorted(spans)), zone=tz, closed=days_off, holidays_spec=spec)


def _split_zone(words: str, *, default: str) -> tuple[str, str]:
    """The schedule without its trailing zone name, and the zone (or ``default``)."""
    head, _, last = words.rpartition(" ")
    if "/" in last or last.upper() == "UTC":
        return head.strip(), last
    return words, default


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"unknown time zone {name!r} (an IANA name such as America/New_York)"
        ) from None


def _spans(body: str) -> list[tuple[int, int, int]]:
    spans: list[tuple[int, int, int]] = []
    position = 0
    for match in _GROUP.finditer(body):
        _refuse_leftover(body[position : match.start()], body)
        position = match.end()
        start, end = _minute(match["start"], body), _minute(match["end"], body)
        if start == MINUTES_PER_DAY:
            raise ScheduleError(f"{match.group(0)!r} starts at 24:00; {EXPECTED}")
        if start == end:
            raise ScheduleError(f"{match.group(0)!r} is open for no time; {EXPECTED}")
        if end < start:  # a night shift: ends the next morning
            end += MINUTES_PER_DAY
        spans.extend((day, start, end) for day in _days(match["days"], body))
    _refuse_leftover(body[position:], body)
    if not spans:
        raise ScheduleError(f"cannot read {body!r}; {EXPECTED}")
    return spans


def _refuse_leftover(between: str, body: str) -> None:
    if between.strip(" ,"):
        raise ScheduleError(f"cannot read {between.strip()!r} in {body!r}; {EXPECTED}")


def _minute(clock: str, body: str) -> int:
    hours, minutes = (int(part) for part in clock.split(":"))
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise ScheduleError(f"{clock!r} in {body!r} is not a time of day; {EXPECTED}")
    return hours * 60 + minutes


def _days(text: str, body: str) -> list[int]:
    days: list[int] = []
    for part in text.split(","):
        first, _, last = (word.strip().lower() for word in part.partition("-"))
        start = _day(first, body)
        stop = _day(last, body) if last else start
        days.extend((start + step) % 7 for step in range((stop - start) % 7 + 1))
    return days


def _day(name: str, body: str) -> int:
    if name[:3] not in DAY_NAMES or len(name) < 3:
        raise ScheduleError(f"unknown day {name!r} in {body!r} (Mon, Tue, … Sun); {EXPECTED}")
    return DAY_NAMES.index(name[:3])


def _refuse_overlaps(spans: list[tuple[int, int, int]], text: str) -> None:
    """Spans may not overlap, across midnight and the end of the week included."""
    week = 7 * MINUTES_PER_DAY
    stretches = sorted(
        (day * MINUTES_PER_DAY + start, day * MINUTES_PER_DAY + end) for day, start, end in spans
    )
    wrapped = [*stretches, *((start + week, end + week) for start, end in stretches)]
    for (_, end), (next_start, _) in pairwise(wrapped):
        if next_start < end:
            raise ScheduleError(f"{text.strip()!r} has overlapping hours")


# --- a week as a form shows it -----------------------------------------------------

_SPAN = re.compile(r"^\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2}$")


def week_fields(schedule: Schedule) -> list[str]:
    """Each day's open spans, Monday first (``"08:00-12:00, 13:00-17:00"``; empty: closed)."""
    days: list[list[str]] = [[] for _ in DAY_NAMES]
    for day, start, end in sorted(schedule.spans):
        days[day].append(f"{_clock(start)}-{_clock(end % MINUTES_PER_DAY or end)}")
    return [", ".join(spans) for spans in days]


def schedule_from_week(days: list[str], zone: str) -> tuple[str, dict[str, str]]:
    """The schedule text of a week's fields (Monday first, as :func:`week_fields` gives
    them) in ``zone``, and what is wrong with each field that cannot be read, by its day
    (``mon`` …), ``zone``, or ``week`` for the whole (no open time, overlapping hours)."""
    problems: dict[str, str] = {}
    groups: list[str] = []
    for name, field in zip(DAY_NAMES, days, strict=True):
        for span in (part.strip() for part in field.split(",") if part.strip()):
            if not _SPAN.match(span):
                problems[name] = f"cannot read {span!r}: spans are like 08:00-12:00, 13:00-17:00"
                break
            try:
                parse_schedule(f"{name} {span}")
            except ScheduleError as exc:
                problems[name] = str(exc).split("; expected")[0]
                break
            groups.append(f"{name.title()} {span}")
    try:
        _zone(zone.strip() or "UTC")
    except ScheduleError as exc:
        problems["zone"] = str(exc)
    if not groups and not problems:
        problems["week"] = "open on at least one day, or choose open around the clock"
    text = f"{', '.join(groups)} {zone.strip() or 'UTC'}"
    if problems:
        return text, problems
    try:
        return parse_schedule(text).describe(), {}
    except ScheduleError as exc:
        return text, {"week": str(exc)}


# --- holidays -----------------------------------------------------------------------


def check_holidays_spec(spec: str) -> str:
    """``US`` / ``US-NY`` / empty, checked against the holidays package; upper case."""
    spec = spec.strip().upper()
    if not spec:
        return ""
    country, _, subdivision = spec.partition("-")
    supported = holidays.list_supported_countries()
    if country not in supported:
        raise ScheduleError(f"the holidays package knows no country {country!r} (e.g. US, CA, DE)")
    if subdivision and subdivision not in supported[country]:
        raise ScheduleError(f"{country} has no subdivision {subdivision!r} in the holidays package")
    return spec


@lru_cache(maxsize=64)
def holiday_dates(spec: str, year: int) -> frozenset[date]:
    """The public holidays of ``spec`` in ``year`` (building a calendar is slow: cached)."""
    if not spec:
        return frozenset()
    country, _, subdivision = spec.partition("-")
    calendar = holidays.country_holidays(country, subdiv=subdivision or None, years=year)
    return frozenset(calendar.keys())


def named_holidays(spec: str, year: int) -> list[tuple[date, str]]:
    """The public holidays of ``spec`` in ``year`` with their names, in date order."""
    if not spec:
        return []
    country, _, subdivision = spec.partition("-")
    calendar = holidays.country_holidays(country, subdiv=subdivision or None, years=year)
    return sorted(calendar.items())


# --- writing one back ---------------------------------------------------------------


def _check_aware(at: datetime) -> None:
    if at.tzinfo is None:
        raise ValueError("naive datetime: business hours need an aware time")


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _day_ranges(days: list[int]) -> str:
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    names = [name.title() for name in DAY_NAMES]
    return ",".join(names[r[0]] if len(r) == 1 else f"{names[r[0]]}-{names[r[-1]]}" for r in runs)

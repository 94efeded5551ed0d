"""The Seoul calendar: every business date (day, ISO week, month, year) is counted in
Asia/Seoul (BRIEF §5), while instants are stored in UTC.

A shift that starts at 23:30 KST on a Sunday belongs to that Sunday's ISO week and that
day's month, although it is 14:30 UTC; a shift at 00:30 KST on the 1st belongs to the new
month although it is still the previous month in UTC. Pure functions, no I/O: the one place
where services and tools turn an instant into a business date.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SEOUL = ZoneInfo("Asia/Seoul")


class NaiveDatetimeError(ValueError):
    """Business dates need an aware instant: a naive one has no defined Seoul date."""


def require_aware(at: datetime) -> datetime:
    """`at` itself, if it has a time zone; a naive datetime is refused."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise NaiveDatetimeError(f"{at.isoformat()} has no time zone")
    return at


def seoul_date(at: datetime) -> date:
    """The calendar date of the instant `at` in Seoul."""
    return require_aware(at).astimezone(SEOUL).date()


def day_start(day: date) -> datetime:
    """00:00 in Seoul on `day` (an aware datetime)."""
    return datetime.combine(day, time(0), tzinfo=SEOUL)


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """The instants [start of `first`, start of the day after `last`) in Seoul."""
    if last < first:
        raise ValueError("the range ends before it starts")
    return day_start(first), day_start(last + timedelta(days=1))


def iso_week_start(at: datetime) -> datetime:
    """Monday 00:00 Seoul of the ISO week (Monday to Sunday) holding `at`."""
    day = seoul_date(at)
    return day_start(day - timedelta(days=day.weekday()))


def next_week_start(week_start: datetime) -> datetime:
    """The Monday 00:00 Seoul after the week starting at `week_start`, counted on the wall
    clock (Seoul has no daylight saving time today, but nothing here relies on it)."""
    return day_start(week_start.astimezone(SEOUL).date() + timedelta(days=7))


def iso_week_bounds(at: datetime) -> tuple[datetime, datetime]:
    """[Monday 00:00, next Monday 00:00) in Seoul of the ISO week holding `at`."""
    start = iso_week_start(at)
    return start, next_week_start(start)


def iso_week_label(at: datetime) -> str:
    """The ISO week of `at` in Seoul as `YYYY-Www` (the ISO week-year, which differs from
    the calendar year around New Year)."""
    year, week, _ = seoul_date(at).isocalendar()
    return f"{year:04d}-W{week:02d}"


def iso_week_year(at: datetime) -> int:
    """The ISO week-year of the Seoul week holding `at`."""
    return seoul_date(at).isocalendar()[0]


def month_of(at: datetime) -> str:
    """The Seoul month of `at` as `YYYY-MM`."""
    day = seoul_date(at)
    return f"{day.year:04d}-{day.month:02d}"

"""Business dates: every month, week and fiscal year is counted in Asia/Seoul (BRIEF §5).

Instants are stored in UTC; a shift that starts at 23:30 KST on a Sunday belongs to that
Sunday's ISO week and that day's month, even though it is 14:30 UTC the same day, and a
shift at 00:30 KST on the 1st belongs to the new month although it is still the previous
month in UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SEOUL = ZoneInfo("Asia/Seoul")

_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")


class NaiveDatetimeError(ValueError):
    """Business dates need an aware instant: a naive one has no defined Seoul date."""


def _require_aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise NaiveDatetimeError(f"{at.isoformat()} has no time zone")
    return at


def seoul_date(at: datetime) -> date:
    """The calendar date of `at` in Seoul."""
    return _require_aware(at).astimezone(SEOUL).date()


def fiscal_year_of(at: datetime) -> int:
    """The fiscal year of a shift: the Seoul calendar year of its start (Korean local
    government fiscal years run January to December)."""
    return seoul_date(at).year


def iso_week_of(at: datetime) -> str:
    """The ISO week (Monday to Sunday, Seoul) of `at`, as `YYYY-Www` (ISO week-year)."""
    year, week, _ = seoul_date(at).isocalendar()
    return f"{year:04d}-W{week:02d}"


def scheduled_minutes(starts_at: datetime, ends_at: datetime) -> int:
    """Whole minutes between start and end (a partial minute is not scheduled)."""
    seconds = (_require_aware(ends_at) - _require_aware(starts_at)).total_seconds()
    if seconds <= 0:
        raise ValueError("a shift must end after it starts")
    return int(seconds // 60)


@dataclass(frozen=True, order=True)
class Period:
    """A Seoul calendar month, the unit of statements and month close (`YYYY-MM`)."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise ValueError(f"month {self.month} is not between 1 and 12")
        if not 1 <= self.year <= 9998:
            raise ValueError(f"year {self.year} is out of range")

    @classmethod
    def parse(cls, text: str) -> Period:
        match = _PERIOD.match(text)
        if match is None:
            raise ValueError(f"{text!r} is not a month written YYYY-MM")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, at: datetime) -> Period:
        """The Seoul month `at` falls in."""
        day = seoul_date(at)
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def next(self) -> Period:
        return Period(self.year + 1, 1) if self.month == 12 else Period(self.year, self.month + 1)

    def previous(self) -> Period:
        return Period(self.year - 1, 12) if self.month == 1 else Period(self.year, self.month - 1)

    def starts_at(self) -> datetime:
        """The first instant of the month in Seoul (an aware datetime)."""
        return datetime.combine(date(self.year, self.month, 1), time(0), tzinfo=SEOUL)

    def ends_at(self) -> datetime:
        """The first instant after the month (exclusive end)."""
        return self.next().starts_at()

    def has_ended(self, now: datetime) -> bool:
        """True once the whole month lies in the past of `now`."""
        return _require_aware(now) >= self.ends_at()

    def contains(self, at: datetime) -> bool:
        return self.starts_at() <= _require_aware(at) < self.ends_at()


def period_within_year(now: datetime, fiscal_year: int) -> Period:
    """The month a budget-level transaction of `fiscal_year` is recorded in: the current
    Seoul month, clamped into the fiscal year (a budget set in advance is recorded in its
    January; one changed after the year in its December)."""
    current = Period.of(now)
    if current.year < fiscal_year:
        return Period(fiscal_year, 1)
    if current.year > fiscal_year:
        return Period(fiscal_year, 12)
    return current


def seoul_day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """The instants [start of `first`, start of the day after `last`) in Seoul."""
    if last < first:
        raise ValueError("the range ends before it starts")
    start = datetime.combine(first, time(0), tzinfo=SEOUL)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=SEOUL)
    return start, end

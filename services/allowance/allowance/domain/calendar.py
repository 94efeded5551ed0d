"""The allowance's business periods: fiscal years and months (`Period`), counted on the
Seoul calendar of `shared.seoul` (BRIEF §5: every business date is Asia/Seoul)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from shared.money import scheduled_minutes
from shared.seoul import day_start, require_aware, seoul_date

# Whole minutes of a shift: the one implementation the payout formula uses (shared/money.py).
__all__ = ["Period", "fiscal_year_of", "period_within_year", "scheduled_minutes"]

_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")


def fiscal_year_of(at: datetime) -> int:
    """The fiscal year of a shift: the Seoul calendar year of its start (Korean local
    government fiscal years run January to December)."""
    return seoul_date(at).year


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
        return day_start(date(self.year, self.month, 1))

    def ends_at(self) -> datetime:
        """The first instant after the month (exclusive end)."""
        return self.next().starts_at()

    def has_ended(self, now: datetime) -> bool:
        """True once the whole month lies in the past of `now`."""
        return require_aware(now) >= self.ends_at()

    def contains(self, at: datetime) -> bool:
        return self.starts_at() <= require_aware(at) < self.ends_at()


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

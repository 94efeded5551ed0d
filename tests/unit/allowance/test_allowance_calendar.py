"""Seoul business dates: month (period), fiscal year and ISO week edges."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from allowance.domain.calendar import (
    Period,
    fiscal_year_of,
    period_within_year,
    scheduled_minutes,
)

from shared.seoul import SEOUL, NaiveDatetimeError, day_bounds, iso_week_label, seoul_date


def kst(*args: int) -> datetime:
    return datetime(*args, tzinfo=SEOUL)  # type: ignore[misc]


def test_sunday_2330_kst_is_in_that_sundays_iso_week() -> None:
    """2025-06-01 is a Sunday: a 23:30 KST shift is in week 22, a 00:30 KST Monday shift in
    week 23 — although both are Sunday afternoon in UTC."""
    sunday = kst(2025, 6, 1, 23, 30)
    monday = kst(2025, 6, 2, 0, 30)
    assert sunday.astimezone(UTC).weekday() == monday.astimezone(UTC).weekday() == 6
    assert iso_week_label(sunday) == "2025-W22"
    assert iso_week_label(monday) == "2025-W23"
    assert iso_week_label(sunday.astimezone(UTC)) == "2025-W22"


def test_iso_week_year_differs_from_calendar_year_at_new_year() -> None:
    """Monday 2024-12-30 KST is in ISO week 2025-W01 but in fiscal year 2024."""
    at = kst(2024, 12, 30, 10, 0)
    assert iso_week_label(at) == "2025-W01"
    assert fiscal_year_of(at) == 2024


def test_month_edge_is_counted_in_seoul() -> None:
    """00:30 KST on 1 February is still 31 January in UTC but belongs to February."""
    first = kst(2025, 2, 1, 0, 30)
    assert first.astimezone(UTC).month == 1
    assert Period.of(first) == Period(2025, 2)
    assert Period.of(kst(2025, 1, 31, 23, 59)) == Period(2025, 1)


def test_fiscal_year_edge_is_counted_in_seoul() -> None:
    """00:10 KST on 1 January 2031 is 2030 in UTC, fiscal year 2031 here."""
    at = kst(2031, 1, 1, 0, 10)
    assert at.astimezone(UTC).year == 2030
    assert fiscal_year_of(at) == 2031
    assert seoul_date(at) == date(2031, 1, 1)


def test_naive_datetimes_are_refused() -> None:
    """A naive instant has no Seoul date: refused rather than guessed."""
    with pytest.raises(NaiveDatetimeError):
        Period.of(datetime(2025, 1, 1, 12, 0))


def test_period_parse_next_previous_and_bounds() -> None:
    """Periods parse YYYY-MM, step across years, and span Seoul midnights."""
    assert str(Period.parse("2031-12").next()) == "2032-01"
    assert str(Period.parse("2031-01").previous()) == "2030-12"
    for bad in ("2031-13", "2031-1", "31-01", "2031-00", "abcd-ef"):
        with pytest.raises(ValueError):
            Period.parse(bad)
    month = Period(2031, 3)
    assert month.starts_at() == kst(2031, 3, 1)
    assert month.ends_at() == kst(2031, 4, 1)
    assert not month.has_ended(kst(2031, 3, 31, 23, 59))
    assert month.has_ended(kst(2031, 4, 1))
    assert month.contains(kst(2031, 3, 31, 23, 59)) and not month.contains(kst(2031, 4, 1))


def test_budget_period_is_clamped_into_its_fiscal_year() -> None:
    """A budget transaction is recorded in the current month, clamped into its year."""
    now = kst(2026, 11, 25, 12)
    assert period_within_year(now, 2026) == Period(2026, 11)
    assert period_within_year(now, 2031) == Period(2031, 1)
    assert period_within_year(now, 2024) == Period(2024, 12)


def test_scheduled_minutes_and_day_bounds() -> None:
    """Whole minutes of a shift; a date range covers whole Seoul days."""
    start = kst(2031, 5, 1, 9)
    assert scheduled_minutes(start, start + timedelta(hours=3, seconds=59)) == 180
    with pytest.raises(ValueError):
        scheduled_minutes(start, start)
    low, high = day_bounds(date(2031, 5, 1), date(2031, 5, 31))
    assert (low, high) == (kst(2031, 5, 1), kst(2031, 6, 1))

"""The Seoul calendar (shared.seoul): business dates of UTC instants, at their edges."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from shared.gwangsan import GWANGSAN_DONGS
from shared.seoul import (
    SEOUL,
    NaiveDatetimeError,
    iso_week_bounds,
    iso_week_label,
    iso_week_year,
    month_of,
    next_week_start,
    seoul_date,
)


def test_seoul_date_is_a_date_of_the_seoul_calendar() -> None:
    """15:00 UTC on 31 May is 00:00 KST on 1 June: a `date`, not a datetime."""
    at = datetime(2026, 5, 31, 15, 0, tzinfo=UTC)
    assert seoul_date(at) == date(2026, 6, 1)
    assert type(seoul_date(at)) is date
    assert month_of(at) == "2026-06"
    assert month_of(datetime(2026, 5, 31, 14, 59, tzinfo=UTC)) == "2026-05"


def test_a_naive_instant_has_no_seoul_date() -> None:
    with pytest.raises(NaiveDatetimeError):
        seoul_date(datetime(2026, 5, 31, 15, 0))


def test_iso_week_bounds_are_seoul_mondays() -> None:
    """Sunday 23:59 KST is still in the week that began the Monday before; the next week
    starts at Monday 00:00 KST (Sunday 15:00 UTC)."""
    sunday_night = datetime(2026, 3, 8, 23, 59, tzinfo=SEOUL)
    start, end = iso_week_bounds(sunday_night)
    assert start == datetime(2026, 3, 2, tzinfo=SEOUL)
    assert end == datetime(2026, 3, 9, tzinfo=SEOUL) == next_week_start(start)
    assert end.astimezone(UTC) == datetime(2026, 3, 8, 15, 0, tzinfo=UTC)
    assert iso_week_label(sunday_night) == "2026-W10"


def test_the_iso_week_year_differs_from_the_calendar_year_around_new_year() -> None:
    """1 January 2027 (a Friday) is in ISO week 2026-W53; 4 January 2027 starts 2027-W01."""
    assert iso_week_year(datetime(2027, 1, 1, 9, tzinfo=SEOUL)) == 2026
    assert iso_week_label(datetime(2027, 1, 1, 9, tzinfo=SEOUL)) == "2026-W53"
    assert iso_week_year(datetime(2027, 1, 4, 0, tzinfo=SEOUL)) == 2027


def test_gwangsan_has_21_distinct_dongs() -> None:
    assert len(GWANGSAN_DONGS) == 21 and len(set(GWANGSAN_DONGS)) == 21

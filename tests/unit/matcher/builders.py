"""Builders for the matcher's domain tests: eligible profiles and shifts at Seoul times."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from matcher.domain.decide import Arrival, PostingView
from matcher.domain.eligibility import Booked, Profile, Shift, adult_from
from matcher.domain.policy import WeekCaps

from shared.seoul import SEOUL


def seeded_week_caps() -> WeekCaps:
    """The weekly caps a fresh stack gives the matcher: the allowance's seeded cap table
    (announced as CapsChanged), 13 h per ISO week (BRIEF §5)."""
    from allowance.domain.policy import SEED_CAPS

    return WeekCaps({c.year: c.weekly_hours_max for c in SEED_CAPS})


def seoul(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SEOUL)


def profile(
    *,
    dong: str = "수완동",
    verified_at: datetime | None = None,
    birth_date: date = date(1990, 5, 17),
    child_safety_check: bool = True,
) -> Profile:
    return Profile(
        dong, verified_at or seoul(2026, 1, 10), adult_from(birth_date, 19), child_safety_check
    )


def shift(
    start: datetime, *, minutes: int = 120, requires_child_safety_check: bool = False
) -> Shift:
    return Shift(start, start + timedelta(minutes=minutes), requires_child_safety_check)


def booked(start: datetime, minutes: int) -> Booked:
    return Booked(start, start + timedelta(minutes=minutes))


def posting(
    *,
    start: datetime | None = None,
    capacity: int = 2,
    confirmed: int = 0,
    waitlisted: int = 0,
    waitlist_max: int = 10,
    selection: str = "first_come",
    status: str = "open",
    close_at: datetime | None = None,
    drawn: bool = False,
    requires_child_safety_check: bool = False,
) -> PostingView:
    return PostingView(
        posting_id="pst_test",
        status=status,  # type: ignore[arg-type]
        selection=selection,  # type: ignore[arg-type]
        shift=shift(
            start or seoul(2026, 3, 4, 14),
            requires_child_safety_check=requires_child_safety_check,
        ),
        capacity=capacity,
        confirmed_count=confirmed,
        waitlisted_count=waitlisted,
        waitlist_max=waitlist_max,
        applications_close_at=close_at,
        drawn=drawn,
    )


def arrival(
    n: int,
    *,
    received_at: datetime | None = None,
    citizen_id: str | None = None,
    prof: Profile | None = None,
    suspended_until: datetime | None = None,
    booked_elsewhere: tuple[Booked, ...] = (),
    has_live_application: bool = False,
) -> Arrival:
    return Arrival(
        application_id=f"app_{n:04d}",
        citizen_id=citizen_id or f"ctz_{n:04d}",
        received_at=received_at or seoul(2026, 3, 1, 9) + timedelta(seconds=n),
        profile=prof or profile(),
        suspended_until=suspended_until,
        booked=booked_elsewhere,
        has_live_application=has_live_application,
    )

"""Who may book a shift (BRIEF §5), as pure functions of what we know at one instant.

Rules come in two kinds. `profile_refusal` depends only on what the partner told us of the
citizen and on the shift (resident of Gwangsan-gu, age on the shift date, child-safety
check). `standing_refusal` depends on the citizen's other bookings and strikes (suspended,
overlap, weekly hour cap) and so is checked again whenever a seat is given later (a draw, a
promotion from the waitlist). Both answer `None` (eligible) or the first refusing `Reason`.
Business dates (weeks, ages) are counted in Asia/Seoul (BRIEF §5) by `shared.seoul`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from matcher.domain.policy import Policy, Reason
from shared.seoul import iso_week_start, iso_week_year, next_week_start, seoul_date


@dataclass(frozen=True)
class Profile:
    """The partner's view of a citizen (only what the rules need)."""

    dong: str
    neighbourhood_verified_at: datetime
    adult_from: date  # the first day of the minimum age (no birth date is kept)
    child_safety_check: bool


@dataclass(frozen=True)
class Shift:
    starts_at: datetime
    ends_at: datetime
    requires_child_safety_check: bool = False

    @property
    def minutes(self) -> int:
        return int((self.ends_at - self.starts_at).total_seconds() // 60)


@dataclass(frozen=True)
class Booked:
    """A confirmed booking the citizen already holds (another posting)."""

    starts_at: datetime
    ends_at: datetime


def age_years_on(birth_date: date, day: date) -> int:
    """Completed years of age on `day` (만 나이); a 29 February birthday counts on 1 March
    in common years."""
    years = day.year - birth_date.year
    if (day.month, day.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


def adult_from(birth_date: date, age_years: int) -> date:
    """The first day on which `age_years_on(birth_date, day) >= age_years`: the birthday of
    that age, 1 March for a 29 February birthday in a common year."""
    year = birth_date.year + age_years
    try:
        return birth_date.replace(year=year)
    except ValueError:  # 29 February, common year
        return date(year, 3, 1)


def weeks_touched(starts_at: datetime, ends_at: datetime) -> list[datetime]:
    """Starts of every ISO week (Seoul) the interval [starts_at, ends_at) overlaps."""
    weeks: list[datetime] = []
    week = iso_week_start(starts_at)
    while week < ends_at:
        weeks.append(week)
        week = next_week_start(week)
    return weeks


def _overlap_minutes(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> int:
    start, end = max(a_start, b_start), min(a_end, b_end)
    return max(int((end - start).total_seconds() // 60), 0)


def week_minutes(booked: Iterable[Booked], week_start: datetime, week_end: datetime) -> int:
    """Minutes of `booked` inside one week: what counts against its hour cap."""
    return sum(_overlap_minutes(b.starts_at, b.ends_at, week_start, week_end) for b in booked)


def week_window(shift: Shift) -> tuple[datetime, datetime]:
    """The instants whose bookings matter for `shift`'s weekly cap (and overlap)."""
    weeks = weeks_touched(shift.starts_at, shift.ends_at)
    last = weeks[-1]
    return weeks[0], next_week_start(last)


def profile_refusal(profile: Profile, shift: Shift, policy: Policy, at: datetime) -> Reason | None:
    """Refusals that follow from the citizen's profile and the shift alone."""
    if profile.dong not in policy.eligible_dongs:
        return Reason.NOT_RESIDENT
    if profile.neighbourhood_verified_at < at - policy.neighbourhood_verified_max_age:
        return Reason.NEIGHBOURHOOD_VERIFICATION_EXPIRED
    if seoul_date(shift.starts_at) < profile.adult_from:
        return Reason.UNDER_AGE
    if shift.requires_child_safety_check and not profile.child_safety_check:
        return Reason.CHILD_SAFETY_CHECK_REQUIRED
    return None


def is_suspended(suspended_until: datetime | None, at: datetime) -> bool:
    return suspended_until is not None and at < suspended_until


def overlaps(shift: Shift, booked: Iterable[Booked]) -> bool:
    return any(b.starts_at < shift.ends_at and shift.starts_at < b.ends_at for b in booked)


def exceeds_week_cap(shift: Shift, booked: Iterable[Booked], policy: Policy) -> bool:
    """True if booking `shift` would put any ISO week it touches over the hour cap of that
    week's ISO year (`WeekCaps`). A shift across Sunday midnight counts in each week for the
    minutes that fall in it."""
    booked = list(booked)
    for week in weeks_touched(shift.starts_at, shift.ends_at):
        week_end = next_week_start(week)
        minutes = _overlap_minutes(shift.starts_at, shift.ends_at, week, week_end)
        minutes += week_minutes(booked, week, week_end)
        if minutes > policy.week_caps.minutes_max(iso_week_year(week)):
            return True
    return False


def standing_refusal(
    suspended_until: datetime | None,
    booked: Iterable[Booked],
    shift: Shift,
    policy: Policy,
    at: datetime,
) -> Reason | None:
    """Refusals that follow from the citizen's standing: suspension and other bookings."""
    if is_suspended(suspended_until, at):
        return Reason.SUSPENDED
    booked = list(booked)
    if overlaps(shift, booked):
        return Reason.OVERLAP
    if exceeds_week_cap(shift, booked, policy):
        return Reason.WEEKLY_HOURS_CAP
    return None

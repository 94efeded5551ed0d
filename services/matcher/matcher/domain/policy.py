"""The policy values every rule reads (BRIEF §5), and the stable reason codes it answers with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum


def of_year(by_year: Mapping[int, int], year: int) -> int | None:
    """A cap table's value for `year` by the allowance's rule (`CapTable.caps_for`): the
    latest earlier year's carried forward, before the table its earliest row; None with
    no table."""
    if not by_year:
        return None
    years = sorted(by_year)
    found = years[0]
    for y in years:
        if y <= year:
            found = y
    return by_year[found]


@dataclass(frozen=True)
class MonthCaps:
    """The allowance's monthly cap in won per Seoul month, by year, as the matcher holds it
    from CapsChanged (shown to the partner; the allowance applies it, the matcher never)."""

    amount_max_won_by_year: Mapping[int, int] = field(default_factory=dict)

    def amount_max_won(self, year: int) -> int | None:
        """The cap of the months of `year`; None while no table is known."""
        return of_year(self.amount_max_won_by_year, year)


@dataclass(frozen=True)
class WeekCaps:
    """Booked hours per ISO week (Monday to Sunday, Asia/Seoul) by the week's ISO year, as
    the allowance's cap table says: the allowance owns the table and announces each version
    (CapsChanged on allowance.policy.v1); the matcher keeps a copy and has no cap of its own.

    A year with no row of its own takes the allowance's rule (`CapTable.caps_for`): the
    latest earlier year's cap carried forward, and for a year before the table, the
    earliest row. With no table at all (the matcher has not received the allowance's first
    CapsChanged yet) no cap is known, and every week counts as full: a booking that the
    weekly cap might forbid is refused (`weekly_hours_cap`) rather than allowed unchecked.
    """

    hours_max_by_year: Mapping[int, int] = field(default_factory=dict)

    def hours_max(self, iso_year: int) -> int | None:
        """The cap of the weeks of `iso_year`; None while no table is known."""
        return of_year(self.hours_max_by_year, iso_year)

    def minutes_max(self, iso_year: int) -> int:
        """The cap in minutes; 0 (nothing more may be booked) while no table is known."""
        hours = self.hours_max(iso_year)
        return 0 if hours is None else hours * 60


@dataclass(frozen=True)
class Policy:
    """Configuration of the rules: `MatcherSettings.policy()` builds it from the settings
    and the weekly caps the matcher holds from the allowance (`store.week_caps`)."""

    eligible_dongs: frozenset[str]
    neighbourhood_verified_max_age: timedelta
    age_min_years: int
    week_caps: WeekCaps
    waitlist_length_max: int
    promotion_cutoff: timedelta
    late_cancel_cutoff: timedelta
    strike_window: timedelta
    strikes_to_suspend: int
    suspension: timedelta
    draw_half_weight_minutes: int
    # The months of allowance minutes that weigh a draw (docs/fairness.md, "The window").
    draw_window_months: int = 3


class Reason(StrEnum):
    """Why an application was refused or a booking cancelled. Partners see these codes:
    they are a contract, add new ones, never rename."""

    NOT_RESIDENT = "not_resident"
    NEIGHBOURHOOD_VERIFICATION_EXPIRED = "neighbourhood_verification_expired"
    UNDER_AGE = "under_age"
    CHILD_SAFETY_CHECK_REQUIRED = "child_safety_check_required"
    SUSPENDED = "suspended"
    OVERLAP = "overlap"
    WEEKLY_HOURS_CAP = "weekly_hours_cap"
    POSTING_CLOSED = "posting_closed"
    POSTING_CANCELLED = "posting_cancelled"
    POSTING_STARTED = "posting_started"
    APPLICATIONS_CLOSED = "applications_closed"
    POSTING_FULL_NO_WAITLIST = "posting_full_no_waitlist"
    DUPLICATE_APPLICATION = "duplicate_application"
    UNKNOWN_POSTING = "unknown_posting"
    # Reasons of cancellations (BookingCancelled.reason).
    WITHDRAWN = "withdrawn"
    RESCHEDULED_OVERLAP = "rescheduled_overlap"
    # Asked to reconfirm and not reconfirmed by the deadline: released, never a strike.
    NOT_RECONFIRMED = "not_reconfirmed"


class Refusal(StrEnum):
    """Why a partner's request about an existing application or booking was answered 202 and
    changed nothing (told in a signed `application.refused` or `booking.reconfirm_refused`).
    A contract like `Reason`: add new ones, never rename."""

    CITIZEN_MISMATCH = "citizen_mismatch"  # the partner_user_id is not the application's
    POSTING_MISMATCH = "posting_mismatch"  # the application belongs to another posting
    UNKNOWN_APPLICATION = "unknown_application"  # never submitted (or not for that posting)
    BOOKING_NOT_ACTIVE = "booking_not_active"  # released, cancelled or no longer confirmed
    UNKNOWN_BOOKING = "unknown_booking"  # no such booking

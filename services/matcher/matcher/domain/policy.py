"""The policy values every rule reads (BRIEF §5), and the stable reason codes it answers with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum


@dataclass(frozen=True)
class Policy:
    """Configuration of the rules; built from `MatcherSettings.policy()`."""

    eligible_dongs: frozenset[str]
    neighbourhood_verified_max_age: timedelta
    age_min_years: int
    week_minutes_max: int
    waitlist_length_max: int
    promotion_cutoff: timedelta
    late_cancel_cutoff: timedelta
    strike_window: timedelta
    strikes_to_suspend: int
    suspension: timedelta
    draw_half_weight_minutes: int


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

"""Settings of the registry service (environment variables; see docs/operations.md).

Every policy value and every bound is here, with where it comes from. The domain code takes
them as arguments (`domain.PostingBounds`, `domain.AttendancePolicy`), never reads them.
"""

from __future__ import annotations

from pydantic import Field

from shared.context import ServiceContext
from shared.gwangsan import GWANGSAN_DONGS
from shared.settings import ServiceSettings


class RegistrySettings(ServiceSettings):
    service_name: str = "registry"
    port: int = 8001
    # Its consumers keep read models and apply sagas people do not wait on to the
    # millisecond: let events gather (shared settings, `consumer_linger_ms`).
    consumer_linger_ms: int = Field(default=100, ge=0, le=5_000)

    # A facility must be in one of Gwangsan-gu's 21 dongs (shared.gwangsan, with its source);
    # change the list by configuration (FACILITY_DONGS, a JSON list).
    facility_dongs: list[str] = Field(default_factory=lambda: list(GWANGSAN_DONGS))

    # Key rotation: how long the previous key keeps working after a rotation, so a facility
    # can roll the new key out. 0 (the default) means it stops at once.
    facility_key_rotation_overlap_s: int = Field(default=0, ge=0)
    # The longest overlap an administrator may ask for on one rotation (`overlap_s`): a
    # week, enough to roll a key out to every device of a facility; longer leaves a key that
    # was meant to be replaced working for too long.
    facility_key_rotation_overlap_max_s: int = Field(default=7 * 24 * 3600, ge=0)

    # Shift rules, BRIEF §5: 30 minutes to 8 hours, capacity 1 to 200, start in the future.
    posting_duration_min_minutes: int = 30
    posting_duration_max_minutes: int = 8 * 60
    posting_capacity_min: int = 1
    posting_capacity_max: int = 200
    # How far ahead a shift may be posted: a bound, so a typo in the year is refused rather
    # than reserving budget of another fiscal year.
    posting_horizon_days_max: int = 366

    # The saga: a posting with no budget answer after this long is reported (metric + log).
    posting_budget_answer_stale_after_s: int = 60
    posting_stale_sweep_interval_ms: int = 15_000
    posting_stale_ids_logged_max: int = 20

    # Attendance may be recorded from the shift's start until this long after its end;
    # later changes are corrections (AttendanceCorrected). Three days covers a weekend.
    attendance_window_hours: int = 72
    # Check-in/out times must lie within the shift extended by this much on both sides.
    attendance_slack_minutes: int = 60
    attendance_records_max: int = 400

    # The closing sweeper: postings whose attendance window has passed become `closed`.
    posting_close_sweep_interval_ms: int = 1_000
    posting_close_batch_size_max: int = 200

    # Idempotency-Key answers are kept at least this long (IETF draft, Stripe: 7 days).
    idempotency_retention_days: int = 7
    idempotency_purge_interval_ms: int = 3_600_000
    idempotency_purge_batch_size_max: int = 10_000

    # Lists.
    page_size_default: int = 50
    # The roster shows every confirmed booking and at most this many waitlisted ones.
    roster_waitlist_shown_max: int = 500


# The running service's context, typed for this service (shared/context.py).
Context = ServiceContext[RegistrySettings]

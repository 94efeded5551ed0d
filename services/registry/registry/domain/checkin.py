"""Check-in at the door: staff type the code the citizen shows; the check-in time and the
check-out time come from the clock, and the check-out records attendance by the same rules
as `PUT /attendance` (`domain.attendance`), so the paid minutes are computed once.

When: check-in from `slack` before the shift starts to `slack` after it ends (the times
`validate_attendance` accepts); check-out from the start (attendance opens then) to the
same end. Each happens once per booking; afterwards staff correct the times in the
attendance form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from registry.domain.attendance import (
    RUNNING,
    AttendanceInput,
    AttendancePolicy,
    PlannedRecord,
    Shift,
)
from registry.domain.errors import Refusal

# What a typed code may contain before it is cleaned: letters, digits, spaces and dashes
# (people type `AB3-D4F` or `ab3 d4f` from a phone screen).
CODE_TYPED_PATTERN = r"^[A-Za-z0-9 \-]{1,32}$"
_SEPARATORS = re.compile(r"[\s\-]+")


def normalize_code(typed: str) -> str:
    """The code as stored: without spaces or dashes, in capitals."""
    return _SEPARATORS.sub("", typed).upper()


@dataclass(frozen=True)
class DoorRecord:
    """A booking's check-in and check-out times, as stored (None: not yet)."""

    checked_in_at: datetime | None = None
    checked_out_at: datetime | None = None


def _minutes(policy: AttendancePolicy) -> int:
    return int(policy.slack.total_seconds() // 60)


def _running(status: str) -> None:
    if status not in RUNNING:
        raise Refusal(409, "posting_not_running", f"a posting that is {status} has no check-in")


def _not_over(shift: Shift, now: datetime, policy: AttendancePolicy) -> None:
    if now > shift.ends_at + policy.slack:
        raise Refusal(
            409,
            "check_in_closed",
            f"check-in and check-out close {_minutes(policy)} minutes after the shift ends;"
            " record the times in the attendance form",
        )


def admit_check_in(
    status: str, shift: Shift, door: DoorRecord, now: datetime, policy: AttendancePolicy
) -> None:
    """A check-in now: refused (409) for a posting that does not run, before the check-in
    opens, after it closes, or a second time."""
    _running(status)
    if now < shift.starts_at - policy.slack:
        raise Refusal(
            409,
            "check_in_not_open",
            f"check-in opens {_minutes(policy)} minutes before the shift starts",
        )
    _not_over(shift, now, policy)
    if door.checked_in_at is not None:
        raise Refusal(409, "already_checked_in", "this booking has already checked in")


def admit_check_out(
    status: str, shift: Shift, door: DoorRecord, now: datetime, policy: AttendancePolicy
) -> None:
    """A check-out now: only after a check-in, once, from the shift's start (attendance
    opens then) until the check-in closes."""
    _running(status)
    if door.checked_in_at is None:
        raise Refusal(409, "not_checked_in", "this booking has not checked in")
    if door.checked_out_at is not None:
        raise Refusal(409, "already_checked_out", "this booking has already checked out")
    if now < shift.starts_at:
        raise Refusal(409, "attendance_not_open", "attendance opens when the shift starts")
    _not_over(shift, now, policy)


def check_out_entry(booking_id: str, door: DoorRecord, now: datetime) -> AttendanceInput:
    """The attendance a check-out records: attended, from the check-in to now."""
    return AttendanceInput(
        booking_id=booking_id,
        status="attended",
        checked_in_at=door.checked_in_at,
        checked_out_at=now,
    )


@dataclass(frozen=True)
class DoorOutcome:
    """What a check-in or check-out did, for the answer: the booking, its times at the
    door, and the attendance record a check-out wrote (None for a check-in)."""

    posting_id: str
    booking_id: str
    citizen_display: str
    display_name: str | None
    check_in_code: str
    door: DoorRecord
    attendance: PlannedRecord | None
    scheduled_minutes: int

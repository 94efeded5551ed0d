"""Attendance: when it may be recorded, the paid minutes, what a second record does (replace
inside the window, correct after it), and the plan of one attendance request."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from registry.domain.errors import FieldError, Refusal, invalid
from registry.domain.postings import is_aware, scheduled_minutes

AttendanceStatus = Literal["attended", "no_show"]
AttendancePhase = Literal["not_started", "recording", "correcting"]


@dataclass(frozen=True)
class AttendancePolicy:
    window: timedelta = timedelta(hours=72)
    slack: timedelta = timedelta(minutes=60)


@dataclass(frozen=True)
class Shift:
    starts_at: datetime
    ends_at: datetime

    @property
    def scheduled_minutes(self) -> int:
        return scheduled_minutes(self.starts_at, self.ends_at)


@dataclass(frozen=True)
class AttendanceInput:
    """One record as the facility sent it."""

    booking_id: str
    status: AttendanceStatus
    checked_in_at: datetime | None = None
    checked_out_at: datetime | None = None

    def same_as(self, other: AttendanceInput) -> bool:
        return (
            self.status == other.status
            and self.checked_in_at == other.checked_in_at
            and self.checked_out_at == other.checked_out_at
        )


@dataclass(frozen=True)
class RecordedAttendance:
    """A stored record."""

    attendance_id: str
    entry: AttendanceInput
    minutes: int
    revision: int


AttendanceAction = Literal["record", "unchanged", "replace", "correct", "too_late"]


def attendance_phase(now: datetime, shift: Shift, policy: AttendancePolicy) -> AttendancePhase:
    """Before the start nothing is recorded; until the window after the end records are
    recorded (and may be replaced); after it, changes are corrections."""
    if now < shift.starts_at:
        return "not_started"
    if now <= shift.ends_at + policy.window:
        return "recording"
    return "correcting"


def attendance_window_closes_at(shift: Shift, policy: AttendancePolicy) -> datetime:
    return shift.ends_at + policy.window


def validate_attendance(
    entry: AttendanceInput, shift: Shift, policy: AttendancePolicy, index: int
) -> list[FieldError]:
    """Times must be aware, in order, within the shift ± slack; a no-show has none."""
    prefix = f"records.{index}"
    errors: list[FieldError] = []
    stamps = {"checked_in_at": entry.checked_in_at, "checked_out_at": entry.checked_out_at}
    if entry.status == "no_show":
        for name, value in stamps.items():
            if value is not None:
                errors.append(
                    FieldError(f"{prefix}.{name}", "a no-show has no check-in/out", "no_show")
                )
        return errors
    earliest = shift.starts_at - policy.slack
    latest = shift.ends_at + policy.slack
    for name, value in stamps.items():
        if value is None:
            continue
        if not is_aware(value):
            errors.append(
                FieldError(f"{prefix}.{name}", "must carry a UTC offset", "timezone_required")
            )
        elif not (earliest <= value <= latest):
            errors.append(
                FieldError(
                    f"{prefix}.{name}",
                    "must lie within the shift (with "
                    f"{int(policy.slack.total_seconds() // 60)} minutes of slack)",
                    "outside_shift",
                )
            )
    if errors:
        return errors
    if (
        entry.checked_in_at is not None
        and entry.checked_out_at is not None
        and entry.checked_out_at < entry.checked_in_at
    ):
        errors.append(
            FieldError(f"{prefix}.checked_out_at", "check-out is before check-in", "out_before_in")
        )
    return errors


def attended_minutes(entry: AttendanceInput, shift: Shift) -> int:
    """Paid minutes: 0 for a no-show; whole minutes between check-in and check-out clipped
    to the scheduled shift (a missing time is the shift's edge); never above scheduled."""
    if entry.status == "no_show":
        return 0
    start = max(entry.checked_in_at or shift.starts_at, shift.starts_at)
    end = min(entry.checked_out_at or shift.ends_at, shift.ends_at)
    if end <= start:
        return 0
    minutes = int((end - start).total_seconds() // 60)
    return min(minutes, shift.scheduled_minutes)


def decide_attendance(
    existing: RecordedAttendance | None, entry: AttendanceInput, phase: AttendancePhase
) -> AttendanceAction:
    """What a PUT of `entry` does, given what is stored and where in time we are."""
    if phase == "not_started":
        raise ValueError("attendance is not open before the shift starts")
    if existing is None:
        return "record" if phase == "recording" else "too_late"
    if existing.entry.same_as(entry):
        return "unchanged"
    return "replace" if phase == "recording" else "correct"


def attendance_id_for(booking_id: str) -> str:
    """Stable per booking: the same booking always has the same attendance id."""
    return "att_" + hashlib.sha256(booking_id.encode()).hexdigest()[:24]


# --- one attendance request ----------------------------------------------------------------

RecordingPhase = Literal["recording", "correcting"]
Outcome = Literal["recorded", "unchanged", "replaced", "corrected"]
_OUTCOME: dict[str, Outcome] = {
    "record": "recorded",
    "unchanged": "unchanged",
    "replace": "replaced",
    "correct": "corrected",
}
# Only these postings have a shift that ran (or runs): attendance belongs to them.
RUNNING: frozenset[str] = frozenset({"open", "closed"})


def check_request(entries: Sequence[AttendanceInput], records_max: int) -> None:
    """The request itself: at most `records_max` records, each booking at most once."""
    if len(entries) > records_max:
        raise Refusal(
            400,
            "invalid_request",
            f"at most {records_max} records per request",
            [FieldError("records", "too many records", "too_many")],
        )
    seen: set[str] = set()
    duplicates: list[FieldError] = []
    for i, entry in enumerate(entries):
        if entry.booking_id in seen:
            duplicates.append(
                FieldError(f"records.{i}.booking_id", "this booking appears twice", "duplicate")
            )
        seen.add(entry.booking_id)
    if duplicates:
        raise invalid(duplicates)


def opening(
    status: str,
    shift: Shift,
    entries: Sequence[AttendanceInput],
    now: datetime,
    policy: AttendancePolicy,
) -> RecordingPhase:
    """Whether the posting takes attendance now, and in which phase; every record's times
    are checked against the shift. Refused (409) before the shift starts or for a posting
    that never ran, 400 for a record that breaks the time rules."""
    if status not in RUNNING:
        raise Refusal(409, "posting_not_running", f"a posting that is {status} has no attendance")
    phase = attendance_phase(now, shift, policy)
    if phase == "not_started":
        raise Refusal(409, "attendance_not_open", "attendance opens when the shift starts")
    errors = [
        error
        for i, entry in enumerate(entries)
        for error in validate_attendance(entry, shift, policy, i)
    ]
    if errors:
        raise invalid(errors)
    return phase


@dataclass(frozen=True)
class PlannedRecord:
    """What one record of the request does: `action` (nothing to write when `unchanged`),
    the record as the answer shows it (the stored one when unchanged), and what is stored."""

    entry: AttendanceInput
    action: AttendanceAction
    attendance_id: str
    citizen_id: str
    shown: AttendanceInput
    minutes: int
    revision: int
    previous: RecordedAttendance | None

    @property
    def writes(self) -> bool:
        return self.action != "unchanged"

    @property
    def outcome(self) -> Outcome:
        return _OUTCOME[self.action]


def plan_records(
    entries: Sequence[AttendanceInput],
    *,
    phase: RecordingPhase,
    shift: Shift,
    seated: Mapping[str, str],
    stored: Mapping[str, RecordedAttendance],
) -> list[PlannedRecord]:
    """The plan of a request that `opening` admitted: each booking must hold a seat of
    this posting (`seated`: booking id → citizen id of its confirmed bookings), else 409
    `booking_not_in_roster`; after the window only stored records can change (a first
    record then is 409 `attendance_window_closed`)."""
    not_seated = [
        FieldError(
            f"records.{i}.booking_id",
            f"booking {e.booking_id} is not a confirmed booking of this posting",
            "not_in_roster",
        )
        for i, e in enumerate(entries)
        if e.booking_id not in seated
    ]
    if not_seated:
        raise invalid(not_seated, 409, "booking_not_in_roster")
    planned: list[PlannedRecord] = []
    too_late: list[FieldError] = []
    for i, entry in enumerate(entries):
        existing = stored.get(entry.booking_id)
        action = decide_attendance(existing, entry, phase)
        if action == "too_late":
            too_late.append(
                FieldError(
                    f"records.{i}.booking_id",
                    f"the attendance window of this shift has passed and booking"
                    f" {entry.booking_id} has no record to correct",
                    "window_closed",
                )
            )
            continue
        if action == "unchanged":
            assert existing is not None
            shown, minutes, revision = existing.entry, existing.minutes, existing.revision
        else:
            shown = entry
            minutes = attended_minutes(entry, shift)
            revision = 1 if existing is None else existing.revision + 1
        planned.append(
            PlannedRecord(
                entry=entry,
                action=action,
                attendance_id=attendance_id_for(entry.booking_id),
                citizen_id=seated[entry.booking_id],
                shown=shown,
                minutes=minutes,
                revision=revision,
                previous=existing,
            )
        )
    if too_late:
        raise invalid(too_late, 409, "attendance_window_closed")
    return planned


@dataclass(frozen=True)
class AttendanceOutcome:
    """What an attendance request did, for the answer."""

    posting_id: str
    phase: RecordingPhase
    window_closes_at: datetime
    scheduled_minutes: int
    records: list[PlannedRecord]

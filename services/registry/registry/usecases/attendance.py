"""Attendance: the facility records who came, from the shift's start; inside the window a
different record replaces the stored one (AttendanceRecorded, revision + 1), after it the
change is an AttendanceCorrected. Allowance pays from these events."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from registry import store
from registry.domain.attendance import (
    AttendanceInput,
    AttendanceOutcome,
    AttendancePolicy,
    PlannedRecord,
    attendance_window_closes_at,
    check_request,
    opening,
    plan_records,
)
from registry.domain.errors import Refusal
from registry.settings import Context, RegistrySettings
from registry.usecases import refused
from registry.usecases.facilities import Caller
from registry.usecases.postings import own_posting
from shared.db import retry_conflicts
from shared.events import AttendanceCorrected, AttendanceRecorded

log = logging.getLogger(__name__)


def policy_of(settings: RegistrySettings) -> AttendancePolicy:
    return AttendancePolicy(
        window=timedelta(hours=settings.attendance_window_hours),
        slack=timedelta(minutes=settings.attendance_slack_minutes),
    )


def _event(
    row: store.PostingRow, planned: PlannedRecord
) -> AttendanceRecorded | AttendanceCorrected:
    """The event of a record that changed: a correction after the window, else a record."""
    shift = row.shift
    entry = planned.entry
    fields = {
        "attendance_id": planned.attendance_id,
        "posting_id": row.id,
        "facility_id": row.facility_id,
        "booking_id": entry.booking_id,
        "citizen_id": planned.citizen_id,
        "status": entry.status,
        "minutes": planned.minutes,
        "scheduled_minutes": shift.scheduled_minutes,
        "shift_starts_at": shift.starts_at,
        "checked_in_at": entry.checked_in_at,
        "checked_out_at": entry.checked_out_at,
        "revision": planned.revision,
    }
    if planned.action == "correct":
        assert planned.previous is not None
        return AttendanceCorrected(
            **fields,
            previous_status=planned.previous.entry.status,
            previous_minutes=planned.previous.minutes,
        )
    return AttendanceRecorded(**fields)


async def record(
    ctx: Context, caller: Caller, posting_id: str, entries: Sequence[AttendanceInput]
) -> AttendanceOutcome:
    """Record (or correct) the attendance of confirmed bookings of the caller's posting, in
    one transaction: every record or none. The same record again changes nothing."""
    settings = ctx.settings
    policy = policy_of(settings)
    try:
        check_request(entries, settings.attendance_records_max)
    except Refusal as exc:
        raise refused(exc) from exc

    async def work() -> AttendanceOutcome:
        async with ctx.pool.acquire() as conn, conn.transaction():
            row = await own_posting(conn, caller, posting_id, for_update=True)
            return await record_in(conn, row, entries, ctx.now(), policy)

    return await retry_conflicts(work)


async def record_in(
    conn: asyncpg.Connection,
    row: store.PostingRow,
    entries: Sequence[AttendanceInput],
    now: datetime,
    policy: AttendancePolicy,
) -> AttendanceOutcome:
    """Record `entries` in the caller's transaction, the posting row locked by the caller:
    the rules of `domain.attendance`, the stored records and their events. A check-out
    (`usecases.checkin`) records through here too, so its minutes are these rules'."""
    shift = row.shift
    ids = [e.booking_id for e in entries]
    try:
        phase = opening(row.status, shift, entries, now, policy)
        bookings = await store.bookings_by_id(conn, row.id, ids)
        stored = await store.attendance_by_booking(conn, ids)
        planned = plan_records(
            entries,
            phase=phase,
            shift=shift,
            seated={
                b.booking_id: b.citizen_id for b in bookings.values() if b.status == "confirmed"
            },
            stored={booking: a.recorded for booking, a in stored.items()},
        )
    except Refusal as exc:
        raise refused(exc) from exc
    for item in planned:
        if not item.writes:
            continue
        await store.upsert_attendance(
            conn,
            attendance_id=item.attendance_id,
            booking_id=item.entry.booking_id,
            posting_id=row.id,
            citizen_id=item.citizen_id,
            entry=item.entry,
            minutes=item.minutes,
            revision=item.revision,
            now=now,
        )
        await store.emit(conn, _event(row, item), occurred_at=now)
    log.info(
        "attendance recorded",
        extra={"posting": row.id, "records": len(entries), "phase": phase},
    )
    return AttendanceOutcome(
        posting_id=row.id,
        phase=phase,
        window_closes_at=attendance_window_closes_at(shift, policy),
        scheduled_minutes=shift.scheduled_minutes,
        records=planned,
    )

"""Attendance and strikes: attended minutes feed the draw's weighting, a no-show or a late
cancellation is a strike, and enough strikes in the window suspend."""

from __future__ import annotations

import logging
from datetime import datetime

from matcher import store
from matcher.domain.strikes import Strike, suspension_due
from matcher.usecases.deps import Deps
from shared.db import Connection
from shared.events import AttendanceCorrected, AttendanceRecorded
from shared.seoul import month_of

log = logging.getLogger(__name__)


async def record_attendance(
    conn: Connection,
    deps: Deps,
    event: AttendanceRecorded | AttendanceCorrected,
    recorded_at: datetime,
) -> None:
    """Attended minutes feed the draw's weighting; a no-show is a strike (and a correction
    to `attended` voids it, lifting a suspension it caused)."""
    if await store.citizen(conn, event.citizen_id) is None:
        log.warning("attendance for unknown citizen %s ignored", event.citizen_id)
        return
    previous = await store.upsert_attendance(
        conn,
        attendance_id=event.attendance_id,
        booking_id=event.booking_id,
        posting_id=event.posting_id,
        citizen_id=event.citizen_id,
        status=event.status,
        minutes=event.minutes,
        month=month_of(event.shift_starts_at),
        revision=event.revision,
        recorded_at=recorded_at,
    )
    if previous is not None and previous.revision >= event.revision:
        log.info("attendance %s r%d is not newer; ignored", event.attendance_id, event.revision)
        return
    was_no_show = previous is not None and previous.status == "no_show"
    if event.status == "no_show" and not was_no_show:
        await record_strike(conn, deps, event.citizen_id, event.booking_id, "no_show", recorded_at)
    elif event.status == "attended" and was_no_show:
        strike_id = await store.void_strike(conn, event.booking_id, "no_show", recorded_at)
        if strike_id is not None:
            await store.lock_citizens(conn, [event.citizen_id])
            await store.lift_suspensions_of_strike(conn, event.citizen_id, strike_id, recorded_at)


async def record_strike(
    conn: Connection,
    deps: Deps,
    citizen_id: str,
    booking_id: str,
    kind: str,
    at: datetime,
) -> None:
    """A strike; the one that makes `strikes_to_suspend` within the window suspends."""
    if not await store.add_strike(conn, citizen_id, booking_id, kind, at):
        return
    await store.lock_citizens(conn, [citizen_id])
    strikes = [
        Strike(s.strike_id, s.occurred_at)
        for s in await store.strikes_of(conn, citizen_id)
        if s.voided_at is None
    ]
    suspensions = await store.suspensions_of(conn, citizen_id)
    last_start = max((s.starts_at for s in suspensions if s.lifted_at is None), default=None)
    due = suspension_due(strikes, at, deps.policy, last_suspension_started_at=last_start)
    if due is None:
        return
    await store.suspend(conn, citizen_id, due.starts_at, due.ends_at, due.strike_ids)
    log.info(
        "citizen %s suspended until %s (%d strikes)",
        citizen_id,
        due.ends_at.isoformat(),
        len(due.strike_ids),
    )

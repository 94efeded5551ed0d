"""Attendance and strikes: attended minutes feed the draw's weighting, a no-show or a late
cancellation is a strike, and enough strikes in the window suspend."""

from __future__ import annotations

import logging
from datetime import datetime

from matcher import store
from matcher.domain.notifications import BookingFacts
from matcher.domain.strikes import Strike, strikes_in_window, suspension_due
from matcher.usecases import notifications
from matcher.usecases.deps import Deps
from matcher.usecases.notifications import Effects
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
    app = await store.application_of_booking(conn, event.booking_id)
    facts = None if app is None else notifications.facts_of(app)
    effects = Effects()
    if facts is not None:
        effects.tell(notifications.attendance_recorded(facts, deps.now(), event))
    was_no_show = previous is not None and previous.status == "no_show"
    if event.status == "no_show" and not was_no_show:
        await record_strike(
            conn,
            deps,
            facts,
            "no_show",
            recorded_at,
            effects,
            citizen_id=event.citizen_id,
            booking_id=event.booking_id,
        )
    elif event.status == "attended" and was_no_show:
        strike_id = await store.void_strike(conn, event.booking_id, "no_show", recorded_at)
        if strike_id is not None:
            await store.lock_citizens(conn, [event.citizen_id])
            await store.lift_suspensions_of_strike(conn, event.citizen_id, strike_id, recorded_at)
    await effects.write(conn, deps.now())


async def record_strike(
    conn: Connection,
    deps: Deps,
    facts: BookingFacts | None,
    kind: str,
    at: datetime,
    effects: Effects,
    *,
    citizen_id: str | None = None,
    booking_id: str | None = None,
) -> None:
    """A strike; the one that makes `strikes_to_suspend` within the window suspends. The
    partner is told of both (`citizen.strike_recorded`, `citizen.suspended`) in this
    transaction, when the booking is known (`facts`)."""
    citizen_id = citizen_id or (facts.citizen_id if facts else None)
    booking_id = booking_id or (facts.booking_id if facts else None)
    assert citizen_id is not None and booking_id is not None
    if not await store.add_strike(conn, citizen_id, booking_id, kind, at):
        return
    await store.lock_citizens(conn, [citizen_id])
    strikes = [
        Strike(s.strike_id, s.occurred_at)
        for s in await store.strikes_of(conn, citizen_id)
        if s.voided_at is None
    ]
    policy = deps.policy
    window_days = policy.strike_window.days
    if facts is not None:
        effects.tell(
            notifications.strike_recorded(
                facts,
                deps.now(),
                kind=kind,
                occurred_at=at,
                strikes_in_window=strikes_in_window(strikes, at, policy),
                window_days=window_days,
                strikes_to_suspend=policy.strikes_to_suspend,
            )
        )
    suspensions = await store.suspensions_of(conn, citizen_id)
    last_start = max((s.starts_at for s in suspensions if s.lifted_at is None), default=None)
    due = suspension_due(strikes, at, policy, last_suspension_started_at=last_start)
    if due is None:
        return
    await store.suspend(conn, citizen_id, due.starts_at, due.ends_at, due.strike_ids)
    if facts is not None:
        effects.tell(
            notifications.suspended(
                facts,
                deps.now(),
                starts_at=due.starts_at,
                ends_at=due.ends_at,
                strikes=len(due.strike_ids),
                window_days=window_days,
            )
        )
    log.info(
        "citizen %s suspended until %s (%d strikes)",
        citizen_id,
        due.ends_at.isoformat(),
        len(due.strike_ids),
    )

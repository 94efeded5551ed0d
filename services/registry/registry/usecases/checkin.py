"""Check-in at the door: staff type the code a citizen shows; the time comes from the clock.

A check-in stores the time (`check_ins`); a check-out stores its time and records the
attendance from the two times through `usecases.attendance.record_in` — the same rules,
events (AttendanceRecorded, or a replacement of an earlier record) and audit as
`PUT /attendance`, where staff still correct the times. Each runs once per Idempotency-Key:
a retry of a request that went through replays its answer, a second check-in is a 409.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

import asyncpg

from registry import store
from registry.domain.checkin import (
    DoorOutcome,
    DoorRecord,
    admit_check_in,
    admit_check_out,
    check_out_entry,
    normalize_code,
)
from registry.domain.errors import Refusal
from registry.settings import Context
from registry.usecases import refused
from registry.usecases.attendance import policy_of, record_in
from registry.usecases.facilities import Caller
from registry.usecases.idempotency import Answer, IdempotentRequest, run_once
from registry.usecases.postings import own_posting
from shared.problems import Problem

log = logging.getLogger(__name__)

DoorAction = Literal["check_in", "check_out"]
RenderDoor = Callable[[DoorOutcome], bytes]


async def _booking(conn: asyncpg.Connection, posting_id: str, typed: str) -> store.BookingRow:
    booking = await store.confirmed_booking_by_code(conn, posting_id, normalize_code(typed))
    if booking is None:
        raise Problem(
            404,
            "check_in_code_unknown",
            "no confirmed booking of this posting has this check-in code",
        )
    return booking


async def at_the_door(
    ctx: Context,
    caller: Caller,
    posting_id: str,
    typed_code: str,
    action: DoorAction,
    request: IdempotentRequest,
    render: RenderDoor,
) -> Answer:
    """Check the booking with this code in or out, on the caller's own posting (another
    facility's posting is 404, like every facility read)."""
    policy = policy_of(ctx.settings)

    async def work(conn: asyncpg.Connection) -> tuple[int, bytes]:
        row = await own_posting(conn, caller, posting_id, for_update=True)
        now = ctx.now()
        booking = await _booking(conn, posting_id, typed_code)
        stored = await store.check_in_of(conn, booking.booking_id)
        door = stored.door if stored is not None else DoorRecord()
        attendance = None
        try:
            if action == "check_in":
                admit_check_in(row.status, row.shift, door, now, policy)
            else:
                admit_check_out(row.status, row.shift, door, now, policy)
        except Refusal as exc:
            raise refused(exc) from exc
        if action == "check_in":
            await store.insert_check_in(
                conn, booking_id=booking.booking_id, posting_id=posting_id, at=now
            )
            door = DoorRecord(checked_in_at=now)
        else:
            await store.set_check_out(conn, booking_id=booking.booking_id, at=now)
            door = DoorRecord(door.checked_in_at, now)
            outcome = await record_in(
                conn, row, [check_out_entry(booking.booking_id, door, now)], now, policy
            )
            attendance = outcome.records[0]
        log.info("door %s", action, extra={"posting": posting_id, "booking": booking.booking_id})
        assert booking.check_in_code is not None  # found by it
        return 200, render(
            DoorOutcome(
                posting_id=posting_id,
                booking_id=booking.booking_id,
                citizen_display=booking.citizen_display,
                display_name=booking.display_name,
                check_in_code=booking.check_in_code,
                door=door,
                attendance=attendance,
                scheduled_minutes=row.shift.scheduled_minutes,
            )
        )

    return await run_once(ctx.pool, request, work)

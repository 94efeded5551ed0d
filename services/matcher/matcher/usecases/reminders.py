"""Notices before a booking's start (issue 18), on the shared clock: reminders, the opt-in
reconfirmation request, the release of a booking not reconfirmed by its deadline, and the
partner's `booking.reconfirmed` answer.

Each booking is handled in its own transaction under its posting's lock; a notice is
recorded in `booking_reminders` (primary key: booking and kind) in the transaction that
writes it, so a sweep killed half-way and run again never sends one twice.
"""

from __future__ import annotations

import logging
from datetime import datetime

from matcher import store
from matcher.domain.policy import Reason, Refusal
from matcher.domain.schedule import (
    RECONFIRM_KIND,
    BookingTimes,
    notices_due,
    reconfirm_deadline,
    release_due,
    requires_reconfirmation,
    windows,
)
from matcher.store import ApplicationRow, PostingRow
from matcher.usecases import notifications
from matcher.usecases.applications import cancel_booking
from matcher.usecases.deps import Deps
from matcher.usecases.notifications import Effects
from shared.db import Connection, Pool, retry_conflicts
from shared.events import ReconfirmationReceived

log = logging.getLogger(__name__)


def _times(
    app: ApplicationRow, posting: PostingRow, deps: Deps, sent: dict[str, datetime]
) -> BookingTimes:
    """What the schedule's rules read of a booking (confirmed when booked or promoted)."""
    return BookingTimes(
        starts_at=app.starts_at,
        confirmed_at=app.confirmed_at or app.decided_at or app.received_at,
        reconfirmation_required=requires_reconfirmation(
            posting.reconfirmation_required, posting.tags, deps.schedule
        ),
        asked_at=sent.get(RECONFIRM_KIND),
        reconfirmed_at=app.reconfirmed_at,
    )


async def send_due_notices(pool: Pool, deps: Deps, batch_size_max: int) -> int:
    """One pass: every booking with a notice due or a release due, one transaction each
    (at most `batch_size_max` bookings a pass). Returns how many were handled."""
    schedule = deps.schedule
    async with pool.acquire() as conn:
        due = await store.notices_pending(
            conn,
            deps.now(),
            windows(schedule),
            sorted(schedule.reconfirm_tags),
            schedule.reconfirm_deadline_lead,
            batch_size_max,
        )
    for application_id in due:

        async def one(application_id: str = application_id) -> None:
            async with pool.acquire() as conn, conn.transaction():
                await handle_booking(conn, deps, application_id)

        await retry_conflicts(one)
    return len(due)


async def handle_booking(conn: Connection, deps: Deps, application_id: str) -> None:
    """Send what is due for one confirmed booking now, or release it."""
    found = await store.application(conn, application_id)
    if found is None:
        return
    posting = await store.lock_posting(conn, found.posting_id)
    app = await store.application(conn, application_id)  # as it is under the lock
    if posting is None or app is None or app.status != "confirmed" or app.booking_id is None:
        return
    now = deps.now()
    schedule = deps.schedule
    sent = await store.notices_sent(conn, app.booking_id)
    times = _times(app, posting, deps, sent)
    facts = notifications.facts_of(app)
    if release_due(times, now, schedule):
        log.info("booking %s not reconfirmed by its deadline: released", app.booking_id)
        await cancel_booking(
            conn,
            deps,
            app,
            now,
            at=now,
            cancelled_by="system",
            reason=Reason.NOT_RECONFIRMED,
            strike=False,
        )
        return
    effects = Effects()
    for window in notices_due(times, now, schedule, sent):
        if not await store.mark_notice_sent(conn, app.booking_id, window.kind, now):
            continue
        if window.kind == RECONFIRM_KIND:
            effects.tell(
                notifications.reconfirm_requested(
                    facts, now, reconfirm_deadline(app.starts_at, schedule)
                )
            )
        else:
            minutes = int(window.opens.total_seconds()) // 60
            effects.tell(notifications.reminder(facts, now, minutes))
    await effects.write(conn, now)


async def reconfirm(conn: Connection, deps: Deps, event: ReconfirmationReceived) -> None:
    """The citizen reconfirmed: the booking stays through the deadline. A reconfirmation
    for another citizen's booking, or for one that is no longer confirmed, changes nothing
    and the partner is told why (`booking.reconfirm_refused`)."""
    now = deps.now()
    found = await store.application_of_booking(conn, event.booking_id)
    app = None
    if found is not None:
        await store.lock_posting(conn, found.posting_id)
        app = await store.application(conn, found.application_id)
    reason: Refusal | None = None
    if app is None:
        reason = Refusal.UNKNOWN_BOOKING
    elif app.partner_user_id != event.partner_user_id:
        reason = Refusal.CITIZEN_MISMATCH
    elif app.status != "confirmed":
        reason = Refusal.BOOKING_NOT_ACTIVE
    effects = Effects()
    if reason is not None:
        log.warning("reconfirmation of %s refused: %s", event.booking_id, reason.value)
        effects.tell(
            notifications.reconfirm_refused(
                event.booking_id, event.partner_user_id, reason.value, now, event.webhook_id
            )
        )
    else:
        assert app is not None
        await store.set_reconfirmed(conn, app.application_id, event.received_at)
    await effects.write(conn, now)

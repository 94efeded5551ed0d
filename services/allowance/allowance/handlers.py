"""Kafka entry points: the posting saga (registry.postings.v1), attendance
(registry.attendance.v1), bookings (matcher.bookings.v1: which citizens exist, and for the
outcome reports the applications' answers and the draws) and bank details from the partner
(matcher.payees.v1). Each handler runs inside the consumer guard's transaction, which also
records the event id, so an event's effects (ledger, state, outbox) happen once: it wraps
the guard's connection in the use cases' `Store`.
"""

from __future__ import annotations

from collections.abc import Sequence

from allowance.settings import Context
from allowance.usecases import Deps, Store, deps_of, payees, payouts, reports, reservations
from shared.consumer import EventConsumer
from shared.db import Connection
from shared.events import (
    AttendanceCorrected,
    AttendanceRecorded,
    BookingConfirmed,
    BookingPromoted,
    BookingRejected,
    BookingWaitlisted,
    DrawCompleted,
    Envelope,
    PayeeSubmitted,
    PostingCancelled,
    PostingClosed,
    PostingSubmitted,
    PostingUpdated,
)

BookingEvent = BookingConfirmed | BookingPromoted | BookingWaitlisted | BookingRejected


def register(consumer: EventConsumer, ctx: Context) -> None:
    def deps() -> Deps:
        return deps_of(ctx.settings, ctx.now())

    async def posting_submitted(
        conn: Connection, envelope: Envelope, event: PostingSubmitted
    ) -> None:
        await reservations.on_posting_submitted(Store(conn), envelope, event, deps())

    async def posting_updated(conn: Connection, envelope: Envelope, event: PostingUpdated) -> None:
        await reservations.on_posting_updated(Store(conn), envelope, event, deps())

    async def posting_cancelled(
        conn: Connection, envelope: Envelope, event: PostingCancelled
    ) -> None:
        await reservations.on_posting_ended(
            Store(conn), envelope, event.posting_id, "cancelled", deps()
        )

    async def posting_closed(conn: Connection, envelope: Envelope, event: PostingClosed) -> None:
        await reservations.on_posting_ended(
            Store(conn), envelope, event.posting_id, "closed", deps()
        )

    async def attendance(
        conn: Connection, envelope: Envelope, event: AttendanceRecorded | AttendanceCorrected
    ) -> None:
        await payouts.on_attendance(Store(conn), envelope, event, deps())

    async def bookings(
        conn: Connection,
        events: Sequence[tuple[Envelope, BookingEvent]],
    ) -> None:
        """A consumed run of booking events: a seat names a citizen (payee details may
        name them) and each application's answer counts in the outcome reports; one
        transaction, both effects or none, a statement each for the whole run."""
        store = Store(conn)
        await payees.on_booked(
            store,
            [e.citizen_id for _, e in events if isinstance(e, BookingConfirmed | BookingPromoted)],
            ctx.now(),
        )
        await reports.on_applications_decided(
            store, [e for _, e in events if not isinstance(e, BookingPromoted)]
        )

    async def payee_submitted(conn: Connection, envelope: Envelope, event: PayeeSubmitted) -> None:
        await payees.on_payee_submitted(Store(conn), envelope, event, ctx)

    async def draw_completed(conn: Connection, envelope: Envelope, event: DrawCompleted) -> None:
        await reports.on_draw_completed(Store(conn), envelope, event, deps())

    consumer.on(PostingSubmitted, posting_submitted)
    consumer.on(PostingUpdated, posting_updated)
    consumer.on(PostingCancelled, posting_cancelled)
    consumer.on(PostingClosed, posting_closed)
    consumer.on(AttendanceRecorded, attendance)
    consumer.on(AttendanceCorrected, attendance)
    consumer.on(PayeeSubmitted, payee_submitted)
    consumer.on(DrawCompleted, draw_completed)
    # One batch handler for the booking events: a consumed run of them is two statements.
    consumer.on_batch(BookingConfirmed, bookings)
    consumer.on_batch(BookingPromoted, bookings)
    consumer.on_batch(BookingWaitlisted, bookings)
    consumer.on_batch(BookingRejected, bookings)

"""Kafka entry points: the posting saga (registry.postings.v1), attendance
(registry.attendance.v1), and for the outcome reports the applications' answers and the
draws (matcher.bookings.v1). Each handler runs inside the consumer guard's transaction, which
also records the event id, so an event's effects (ledger, state, outbox) happen once: it
wraps the guard's connection in the use cases' `Store` and makes one use-case call."""

from __future__ import annotations

from allowance.settings import Context
from allowance.usecases import Deps, Store, deps_of, payouts, reports, reservations
from shared.consumer import EventConsumer
from shared.db import Connection
from shared.events import (
    AttendanceCorrected,
    AttendanceRecorded,
    BookingConfirmed,
    BookingRejected,
    BookingWaitlisted,
    DrawCompleted,
    Envelope,
    PostingCancelled,
    PostingClosed,
    PostingSubmitted,
    PostingUpdated,
)


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

    async def application_decided(
        conn: Connection,
        envelope: Envelope,
        event: BookingConfirmed | BookingWaitlisted | BookingRejected,
    ) -> None:
        await reports.on_application_decided(Store(conn), event)

    async def draw_completed(conn: Connection, envelope: Envelope, event: DrawCompleted) -> None:
        await reports.on_draw_completed(Store(conn), envelope, event, deps())

    consumer.on(PostingSubmitted, posting_submitted)
    consumer.on(PostingUpdated, posting_updated)
    consumer.on(PostingCancelled, posting_cancelled)
    consumer.on(PostingClosed, posting_closed)
    consumer.on(AttendanceRecorded, attendance)
    consumer.on(AttendanceCorrected, attendance)
    consumer.on(BookingConfirmed, application_decided)
    consumer.on(BookingWaitlisted, application_decided)
    consumer.on(BookingRejected, application_decided)
    consumer.on(DrawCompleted, draw_completed)

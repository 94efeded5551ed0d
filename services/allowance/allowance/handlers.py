"""Kafka entry points: the posting saga (registry.postings.v1) and attendance
(registry.attendance.v1). Each handler runs inside the consumer guard's transaction, which
also records the event id, so an event's effects (ledger, state, outbox) happen once."""

from __future__ import annotations

import asyncpg

from allowance import usecases
from allowance.settings import AllowanceSettings, Context
from shared.consumer import EventConsumer
from shared.events import (
    AttendanceCorrected,
    AttendanceRecorded,
    Envelope,
    Event,
    PostingCancelled,
    PostingClosed,
    PostingSubmitted,
    PostingUpdated,
)


def register(consumer: EventConsumer, ctx: Context) -> None:
    settings = ctx.settings
    assert isinstance(settings, AllowanceSettings)

    def deps() -> usecases.Deps:
        return usecases.Deps(
            now=ctx.now(),
            typical_shift_minutes=settings.typical_shift_minutes,
            period_search_months_max=settings.period_search_months_max,
        )

    async def posting_submitted(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, PostingSubmitted)
        await usecases.on_posting_submitted(conn, envelope, event, deps())

    async def posting_updated(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, PostingUpdated)
        await usecases.on_posting_updated(conn, envelope, event, deps())

    async def posting_cancelled(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, PostingCancelled)
        await usecases.on_posting_ended(conn, envelope, event.posting_id, "cancelled", deps())

    async def posting_closed(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, PostingClosed)
        await usecases.on_posting_ended(conn, envelope, event.posting_id, "closed", deps())

    async def attendance(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, AttendanceRecorded | AttendanceCorrected)
        await usecases.on_attendance(conn, envelope, event, deps())

    consumer.on(PostingSubmitted, posting_submitted)
    consumer.on(PostingUpdated, posting_updated)
    consumer.on(PostingCancelled, posting_cancelled)
    consumer.on(PostingClosed, posting_closed)
    consumer.on(AttendanceRecorded, attendance)
    consumer.on(AttendanceCorrected, attendance)

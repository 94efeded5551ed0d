"""Consumer handlers: each consumed event, applied once (the guard in `shared/consumer.py`
records its id in the same transaction), becomes one use case of `matcher.decisions`."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from matcher import decisions
from matcher.settings import Context, MatcherSettings
from shared.consumer import EventConsumer
from shared.events import (
    ApplicationReceived,
    ApplicationWithdrawn,
    AttendanceCorrected,
    AttendanceRecorded,
    Envelope,
    Event,
    PostingCancelled,
    PostingClosed,
    PostingPublished,
    PostingUpdated,
)


def deps_of(ctx: Context) -> decisions.Deps:
    settings = ctx.settings
    assert isinstance(settings, MatcherSettings)
    return decisions.Deps(
        policy=settings.policy(),
        now=ctx.now,
        held_application_wait=timedelta(seconds=settings.held_application_wait_s),
    )


def register(consumer: EventConsumer, ctx: Context) -> None:
    deps = deps_of(ctx)

    async def applications_received(
        conn: asyncpg.Connection, batch: list[tuple[Envelope, ApplicationReceived]]
    ) -> None:
        """A run of consecutive applications (one fetched batch, maybe several postings),
        decided together in a fixed number of statements: every posting locked at once in
        id order (so two batches never wait for each other in a cycle), each posting's
        applications in arrival order, postings in id order."""
        await decisions.decide_applications(conn, deps, [event for _, event in batch])

    async def application_withdrawn(
        conn: asyncpg.Connection, envelope: Envelope, event: Event
    ) -> None:
        assert isinstance(event, ApplicationWithdrawn)
        await decisions.withdraw_application(conn, deps, event)

    async def posting_published(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, PostingPublished)
        await decisions.open_posting(conn, deps, event)

    async def posting_updated(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, PostingUpdated)
        await decisions.update_posting(conn, deps, event)

    async def posting_cancelled(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, PostingCancelled)
        await decisions.cancel_posting(conn, deps, event)

    async def posting_closed(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, PostingClosed)
        await decisions.close_posting(conn, deps, event)

    async def attendance(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, AttendanceRecorded | AttendanceCorrected)
        await decisions.record_attendance(conn, deps, event, envelope.occurred_at)

    consumer.on_batch(ApplicationReceived, applications_received)
    consumer.on(ApplicationWithdrawn, application_withdrawn)
    consumer.on(PostingPublished, posting_published)
    consumer.on(PostingUpdated, posting_updated)
    consumer.on(PostingCancelled, posting_cancelled)
    consumer.on(PostingClosed, posting_closed)
    consumer.on(AttendanceRecorded, attendance)
    consumer.on(AttendanceCorrected, attendance)

"""What the registry does with the events it consumes.

`allowance.budget.v1` drives the posting saga (open, reject, revert a refused change);
`matcher.bookings.v1` keeps the roster read model. Each handler runs inside the
idempotent-consumer transaction, so its effects and the events it emits commit together,
once per event id.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

import asyncpg

from registry import domain, store
from registry.settings import Context
from shared import outbox
from shared.consumer import EventConsumer
from shared.events import (
    BookingCancelled,
    BookingConfirmed,
    BookingPromoted,
    BookingRejected,
    BookingWaitlisted,
    BudgetExhausted,
    BudgetRejected,
    BudgetReleased,
    BudgetReserved,
    Envelope,
    Event,
    PostingPublished,
    PostingRejected,
    PostingUpdated,
)

log = logging.getLogger(__name__)

PRODUCER = "registry"


def derived_event_id(cause: Envelope, what: str) -> uuid.UUID:
    """The id of the event a consumed event causes: the same cause never makes two."""
    return uuid.uuid5(cause.event_id, what)


def posting_terms(row: asyncpg.Record) -> dict[str, Any]:
    """The fields every posting-terms event carries, from a posting row."""
    return {
        "posting_id": row["id"],
        "facility_id": row["facility_id"],
        "facility_name": row["facility_name"],
        "facility_dong": row["facility_dong"],
        "title": row["title"],
        "description": row["description"],
        "starts_at": row["starts_at"],
        "ends_at": row["ends_at"],
        "capacity": row["capacity"],
        "selection": row["selection"],
        "applications_close_at": row["applications_close_at"],
        "requires_child_safety_check": row["requires_child_safety_check"],
        "tags": list(row["tags"]),
    }


def register(consumer: EventConsumer, ctx: Context) -> None:
    """Route each consumed event type to its handler."""

    async def budget_reserved(
        conn: asyncpg.Connection, envelope: Envelope, event: BudgetReserved
    ) -> None:
        row = await store.get_posting(conn, event.posting_id, for_update=True)
        if row is None:
            log.info("budget answer for a posting not ours", extra={"posting": event.posting_id})
            return
        view = domain.BudgetView(row["status"], row["reservation_id"], row["budget_revision"])
        action, why = domain.on_budget_reserved(
            view, reservation_id=event.reservation_id, revision=event.revision
        )
        log.info("BudgetReserved: %s (%s)", action, why, extra={"posting": event.posting_id})
        now = ctx.now()
        if action == "publish":
            await store.open_posting(
                conn,
                event.posting_id,
                reservation_id=event.reservation_id,
                amount_won=event.amount_won,
                budget_revision=event.revision,
                now=now,
            )
            row = await store.get_posting(conn, event.posting_id)
            assert row is not None
            await outbox.add(
                conn,
                PostingPublished(**posting_terms(row), reservation_id=event.reservation_id),
                producer=PRODUCER,
                occurred_at=now,
                event_id=derived_event_id(envelope, "PostingPublished"),
            )
        elif action == "update_reservation":
            await store.note_reservation(
                conn, event.posting_id, amount_won=event.amount_won, budget_revision=event.revision
            )

    async def budget_rejected(
        conn: asyncpg.Connection, envelope: Envelope, event: BudgetRejected
    ) -> None:
        row = await store.get_posting(conn, event.posting_id, for_update=True)
        if row is None:
            log.info("budget answer for a posting not ours", extra={"posting": event.posting_id})
            return
        revision = None
        moved_cost = superseded = False
        if event.for_revision > 0:
            revision = await store.get_revision(conn, event.posting_id, event.for_revision)
            moved_cost = revision is not None and bool(
                domain.COST_FIELDS & set(revision["changed"])
            )
            superseded = await store.cost_changed_since(conn, event.posting_id, event.for_revision)
        view = domain.BudgetView(row["status"], row["reservation_id"], row["budget_revision"])
        action, why = domain.on_budget_rejected(
            view,
            for_revision=event.for_revision,
            refused_change_moved_cost=moved_cost,
            superseded=superseded,
        )
        log.info("BudgetRejected: %s (%s)", action, why, extra={"posting": event.posting_id})
        now = ctx.now()
        if action == "reject":
            detail = (
                f"requested {event.requested_won} won, available {event.available_won} won"
                f" (short by {event.shortfall_won} won)"
            )
            await store.reject_posting(
                conn, event.posting_id, reason=event.reason, detail=detail, now=now
            )
            await outbox.add(
                conn,
                PostingRejected(
                    posting_id=event.posting_id,
                    facility_id=row["facility_id"],
                    reason=event.reason,
                    detail=detail,
                ),
                producer=PRODUCER,
                occurred_at=now,
                event_id=derived_event_id(envelope, "PostingRejected"),
            )
        elif action == "revert":
            assert revision is not None
            await _revert_update(conn, envelope, event, row, revision, now)

    async def _revert_update(
        conn: asyncpg.Connection,
        envelope: Envelope,
        event: BudgetRejected,
        row: asyncpg.Record,
        revision: asyncpg.Record,
        now: datetime,
    ) -> None:
        """Put back the capacity and times from before the refused change, as a new
        revision, and tell the facility why on the posting."""
        current = store.state_of(row)
        restored_terms = domain.ShiftTerms(
            starts_at=revision["previous_starts_at"],
            ends_at=revision["previous_ends_at"],
            capacity=revision["previous_capacity"],
            selection=current.terms.selection,
            applications_close_at=revision["previous_applications_close_at"],
        )
        restored = domain.PostingState(
            status=current.status,
            title=current.title,
            description=current.description,
            tags=current.tags,
            terms=restored_terms,
        )
        new_revision = row["revision"] + 1
        changed = [
            name
            for name in ("capacity", "starts_at", "ends_at", "applications_close_at")
            if getattr(current.terms, name) != getattr(restored_terms, name)
        ]
        note = {
            "revision": event.for_revision,
            "reason": event.reason,
            "requested_won": event.requested_won,
            "available_won": event.available_won,
            "shortfall_won": event.shortfall_won,
            "restored": {
                "revision": new_revision,
                "capacity": restored_terms.capacity,
                "starts_at": restored_terms.starts_at.isoformat(),
                "ends_at": restored_terms.ends_at.isoformat(),
            },
            "at": now.isoformat(),
        }
        await store.insert_revision(
            conn,
            row["id"],
            revision=new_revision,
            changed=changed,
            previous=current.terms,
            new=restored_terms,
            cause="budget_refused",
            now=now,
        )
        await store.apply_terms(
            conn,
            row["id"],
            state=restored,
            revision=new_revision,
            now=now,
            last_update_rejected=note,
        )
        after = await store.get_posting(conn, row["id"])
        assert after is not None
        await outbox.add(
            conn,
            PostingUpdated(
                **posting_terms(after),
                revision=new_revision,
                previous_capacity=current.terms.capacity,
                previous_starts_at=current.terms.starts_at,
                previous_ends_at=current.terms.ends_at,
            ),
            producer=PRODUCER,
            occurred_at=now,
            event_id=derived_event_id(envelope, "PostingUpdated"),
        )

    async def budget_released(
        conn: asyncpg.Connection, envelope: Envelope, event: BudgetReleased
    ) -> None:
        await store.note_budget_released(conn, event.posting_id, ctx.now())

    async def budget_exhausted(
        conn: asyncpg.Connection, envelope: Envelope, event: BudgetExhausted
    ) -> None:
        log.warning(
            "the programme budget is exhausted: new postings will be refused",
            extra={"fiscal_year": event.fiscal_year, "available_won": event.available_won},
        )

    async def booking_held(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        assert isinstance(event, BookingConfirmed | BookingWaitlisted | BookingPromoted)
        if not await store.posting_exists(conn, event.posting_id):
            log.info("booking for a posting not ours", extra={"posting": event.posting_id})
            return
        position = event.waitlist_position if isinstance(event, BookingWaitlisted) else None
        await store.upsert_booking(
            conn,
            booking_id=event.booking_id,
            posting_id=event.posting_id,
            application_id=event.application_id,
            citizen_id=event.citizen_id,
            citizen_display=event.citizen_display,
            status="waitlisted" if position is not None else "confirmed",
            waitlist_position=position,
            at=envelope.occurred_at,
            promoted=isinstance(event, BookingPromoted),
        )

    async def booking_cancelled(
        conn: asyncpg.Connection, envelope: Envelope, event: BookingCancelled
    ) -> None:
        if not await store.posting_exists(conn, event.posting_id):
            return
        await store.cancel_booking(
            conn,
            booking_id=event.booking_id,
            posting_id=event.posting_id,
            by=event.cancelled_by,
            at=envelope.occurred_at,
        )

    async def booking_rejected(
        conn: asyncpg.Connection, envelope: Envelope, event: BookingRejected
    ) -> None:
        """An application refused: it never held a seat, so the roster does not change."""

    consumer.on(BudgetReserved, budget_reserved)
    consumer.on(BudgetRejected, budget_rejected)
    consumer.on(BudgetReleased, budget_released)
    consumer.on(BudgetExhausted, budget_exhausted)
    consumer.on(BookingConfirmed, booking_held)
    consumer.on(BookingWaitlisted, booking_held)
    consumer.on(BookingPromoted, booking_held)
    consumer.on(BookingCancelled, booking_cancelled)
    consumer.on(BookingRejected, booking_rejected)

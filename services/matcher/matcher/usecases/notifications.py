"""What a decision tells the world: the Kafka event (matcher.bookings.v1) and the partner
notification (BRIEF §6) for each booking change, built from the same facts so they agree,
and `Effects`, which writes both in the decision's transaction.

Notification bodies are `{"type", "timestamp", "data"}`, like the partner's webhooks; the
bytes are fixed when the notification is written, so every attempt sends (and signs) the
same body under the same `webhook-id`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from matcher import store
from matcher.domain.notifications import BookingFacts, booking_data, booking_event_fields
from matcher.settings import PRODUCER
from matcher.store import ApplicationRow, HeldRow, Notification
from shared import metrics, outbox
from shared.db import Connection
from shared.events import (
    BookingCancelled,
    BookingConfirmed,
    BookingPromoted,
    BookingRejected,
    BookingWaitlisted,
    Event,
    PostingPublished,
    PostingUpdated,
)


def new_notification_id() -> str:
    return "msg_" + uuid.uuid4().hex


def facts_of(row: ApplicationRow) -> BookingFacts:
    return BookingFacts(
        application_id=row.application_id,
        posting_id=row.posting_id,
        citizen_id=row.citizen_id,
        citizen_display=row.citizen_display,
        partner_user_id=row.partner_user_id,
        booking_id=row.booking_id,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
    )


def facts_of_held(row: HeldRow) -> BookingFacts:
    """A held application never had a booking; its times are its arrival's."""
    return BookingFacts(
        application_id=row.application_id,
        posting_id=row.posting_id,
        citizen_id=row.citizen_id,
        citizen_display=row.citizen_display,
        partner_user_id=row.partner_user_id,
        booking_id=None,
        starts_at=row.received_at,
        ends_at=row.received_at,
    )


class BookingChange(NamedTuple):
    """A booking change as the event and as the partner notification."""

    event: Event
    note: Notification


def _body(kind: str, at: datetime, data: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": kind, "timestamp": at.isoformat(), "data": data})


def _booking_note(kind: str, facts: BookingFacts, at: datetime, **extra: Any) -> Notification:
    return Notification(
        notification_id=new_notification_id(),
        type=kind,
        # One booking's notifications reach the partner in the order they were written.
        ordering_key=facts.application_id,
        posting_id=facts.posting_id,
        application_id=facts.application_id,
        booking_id=facts.booking_id,
        payload=_body(kind, at, booking_data(facts, **extra)),
    )


def confirmed(facts: BookingFacts, at: datetime) -> BookingChange:
    return BookingChange(
        BookingConfirmed(**booking_event_fields(facts)),
        _booking_note("booking.confirmed", facts, at, status="confirmed"),
    )


def waitlisted(facts: BookingFacts, at: datetime, position: int) -> BookingChange:
    return BookingChange(
        BookingWaitlisted(**booking_event_fields(facts), waitlist_position=position),
        _booking_note(
            "booking.waitlisted", facts, at, status="waitlisted", waitlist_position=position
        ),
    )


def promoted(facts: BookingFacts, at: datetime) -> BookingChange:
    return BookingChange(
        BookingPromoted(**booking_event_fields(facts)),
        _booking_note("booking.promoted", facts, at, status="confirmed"),
    )


def rejected(facts: BookingFacts, at: datetime, reason: str) -> BookingChange:
    return BookingChange(
        BookingRejected(
            posting_id=facts.posting_id,
            application_id=facts.application_id,
            citizen_id=facts.citizen_id,
            citizen_display=facts.citizen_display,
            reason=reason,
        ),
        _booking_note("booking.rejected", facts, at, status="rejected", reason=reason),
    )


def cancelled(
    facts: BookingFacts,
    at: datetime,
    *,
    cancelled_by: str,
    reason: str,
    was_confirmed: bool,
    strike: bool = False,
) -> BookingChange:
    return BookingChange(
        BookingCancelled(
            **booking_event_fields(facts),
            cancelled_by=cancelled_by,
            reason=reason,
            was_confirmed=was_confirmed,
            strike=strike,
        ),
        _booking_note(
            "booking.cancelled",
            facts,
            at,
            status="cancelled",
            cancelled_by=cancelled_by,
            reason=reason,
            was_confirmed=was_confirmed,
            strike=strike,
        ),
    )


def posting_note(
    kind: str,
    posting: PostingPublished | PostingUpdated | dict[str, Any],
    at: datetime,
    **extra: Any,
) -> Notification:
    """`posting.published` / `posting.updated` / `posting.closed`: what the app lists."""
    if isinstance(posting, dict):
        data = dict(posting)
    else:
        data = {
            "posting_id": posting.posting_id,
            "facility_name": posting.facility_name,
            "facility_dong": posting.facility_dong,
            "title": posting.title,
            "description": posting.description,
            "starts_at": posting.starts_at.isoformat(),
            "ends_at": posting.ends_at.isoformat(),
            "capacity": posting.capacity,
            "selection": posting.selection,
            "applications_close_at": (
                posting.applications_close_at.isoformat() if posting.applications_close_at else None
            ),
            "requires_child_safety_check": posting.requires_child_safety_check,
            "tags": list(posting.tags),
        }
    data.update(extra)
    posting_id = str(data["posting_id"])
    return Notification(
        notification_id=new_notification_id(),
        type=kind,
        ordering_key=posting_id,
        posting_id=posting_id,
        application_id=None,
        booking_id=None,
        payload=_body(kind, at, data),
    )


_OUTCOME_OF = {
    "BookingConfirmed": "confirmed",
    "BookingWaitlisted": "waitlisted",
    "BookingRejected": "rejected",
    "BookingPromoted": "promoted",
    "BookingCancelled": "cancelled",
}


class Effects:
    """Events and notifications a transaction will write, in order."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.notes: list[Notification] = []

    def add(self, change: BookingChange) -> None:
        self.events.append(change.event)
        self.notes.append(change.note)

    async def write(self, conn: Connection, at: datetime) -> None:
        for event in self.events:
            outcome = _OUTCOME_OF.get(event.TYPE)
            if outcome is not None:
                metrics.MATCHER_DECISIONS.labels(outcome).inc()
        await outbox.add_many(conn, self.events, producer=PRODUCER, occurred_at=at)
        await store.add_notifications(conn, self.notes)
        self.events, self.notes = [], []


@dataclass(frozen=True)
class Resent:
    """The answer to a re-send: the notification's status now, or why there is none."""

    status: str | None
    known: bool


async def resend(conn: Connection, notification_id: str) -> Resent:
    """Put a parked (or any undelivered) notification back in the queue with a fresh retry
    budget (same `webhook-id`); `known` says whether a delivered one exists instead."""
    async with conn.transaction():
        status = await store.resend_notification(conn, notification_id)
        if status is not None:
            metrics.PARTNER_NOTIFICATIONS.labels("resent").inc()
            return Resent(status, True)
        return Resent(None, await store.notification_status(conn, notification_id) is not None)


def payee_note(
    kind: str, answer_id: uuid.UUID, partner_user_id: str, at: datetime, **data: Any
) -> Notification:
    """`payee.accepted` / `payee.rejected`: the allowance's answer to bank details, told to
    the partner. The notification id (its `webhook-id`) is derived from the answer event,
    so a redelivered answer can never make a second notification; `data.webhook_id` is the
    submission it answers."""
    return Notification(
        notification_id="msg_" + uuid.uuid5(answer_id, "partner-notification").hex,
        type=kind,
        # One partner user's payee answers reach the partner in the order they were given.
        ordering_key=f"payee:{partner_user_id}",
        posting_id=None,
        application_id=None,
        booking_id=None,
        payload=_body(kind, at, {"partner_user_id": partner_user_id, **data}),
    )

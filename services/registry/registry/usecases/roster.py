"""The roster read model, kept from the matcher's booking events (`matcher.bookings.v1`).

Each function runs in the consumer guard's transaction. Events of one posting arrive in
order (the topic is keyed by posting), so the latest event's status is the booking's. A
booking of a posting that is not the registry's is ignored.
"""

from __future__ import annotations

import logging

import asyncpg

from registry import store
from shared.events import (
    BookingCancelled,
    BookingConfirmed,
    BookingPromoted,
    BookingRejected,
    BookingWaitlisted,
    Envelope,
)

log = logging.getLogger(__name__)


async def on_booking_held(
    conn: asyncpg.Connection,
    envelope: Envelope,
    event: BookingConfirmed | BookingWaitlisted | BookingPromoted,
) -> None:
    """A seat (confirmed, or promoted from the waitlist) or a waitlist place."""
    # posting_exists locks the posting row: booking events and facility changes of one
    # posting are applied one at a time.
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
        display_name=event.display_name,
        check_in_code=None if isinstance(event, BookingWaitlisted) else event.check_in_code,
    )


async def on_booking_cancelled(
    conn: asyncpg.Connection, envelope: Envelope, event: BookingCancelled
) -> None:
    """A booking withdrawn or cancelled: it leaves the roster (the row stays, cancelled)."""
    if not await store.posting_exists(conn, event.posting_id):
        return
    await store.cancel_booking(
        conn,
        booking_id=event.booking_id,
        posting_id=event.posting_id,
        by=event.cancelled_by,
        at=envelope.occurred_at,
    )


async def on_booking_rejected(
    conn: asyncpg.Connection, envelope: Envelope, event: BookingRejected
) -> None:
    """An application refused: it never held a seat, so the roster does not change."""

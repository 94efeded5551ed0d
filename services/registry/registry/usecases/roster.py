"""The roster read model, kept from the matcher's booking events (`matcher.bookings.v1`).

Each function runs in the consumer guard's transaction. Events of one posting arrive in
order (the topic is keyed by posting), so the latest event's status is the booking's. A
booking of a posting that is not the registry's is ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

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


HeldEvent = BookingConfirmed | BookingWaitlisted | BookingPromoted


async def on_bookings_held(
    conn: asyncpg.Connection, events: Sequence[tuple[Envelope, HeldEvent]]
) -> None:
    """Seats (confirmed, or promoted from the waitlist) and waitlist places, a consumed
    run of them at once: their postings locked in one statement (booking events and
    facility changes of one posting are applied one at a time), the roster rows upserted
    in event order."""
    ours = await store.lock_postings(conn, [event.posting_id for _, event in events])
    held: list[store.HeldBooking] = []
    others = sorted({event.posting_id for _, event in events} - ours)
    if others:
        # One line per batch (a posting the matcher has from elsewhere sends one event per
        # application).
        log.info("booking events for postings not ours ignored", extra={"postings": others})
    for envelope, event in events:
        if event.posting_id not in ours:
            continue
        position = event.waitlist_position if isinstance(event, BookingWaitlisted) else None
        held.append(
            store.HeldBooking(
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
        )
    await store.upsert_bookings(conn, held)


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

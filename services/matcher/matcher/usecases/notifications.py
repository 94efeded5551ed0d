"""What a decision tells the world: the Kafka event (matcher.bookings.v1) and the partner
notification (BRIEF §6) for each booking change, built from the same facts so they agree,
and `Effects`, which writes both in the decision's transaction.

Notification bodies are `{"type", "timestamp", "data"}`, like the partner's webhooks; the
bytes are fixed when the notification is written, so every attempt sends (and signs) the
same body under the same `webhook-id`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from matcher import store
from matcher.domain.fair_draw import DrawRecord
from matcher.domain.notifications import BookingFacts, booking_data, booking_event_fields
from matcher.domain.partner import shift_allowance_won
from matcher.settings import PRODUCER
from matcher.store import ApplicationRow, HeldRow, Notification
from shared import metrics, outbox
from shared.db import Connection
from shared.events import (
    AttendanceCorrected,
    AttendanceRecorded,
    BookingCancelled,
    BookingConfirmed,
    BookingPromoted,
    BookingRejected,
    BookingWaitlisted,
    DrawCompleted,
    DrawEntry,
    Event,
    PayoutAccrued,
    PayoutFailed,
    PayoutPaid,
    PayoutReversed,
    PostingPublished,
    PostingUpdated,
)
from shared.ids import random_hex


def new_notification_id() -> str:
    return "msg_" + random_hex()


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
        display_name=row.display_name,
        check_in_code=row.check_in_code,
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


def _code(facts: BookingFacts) -> dict[str, Any]:
    """`check_in_code` for a booking that holds a seat (absent for one made before codes)."""
    return {} if facts.check_in_code is None else {"check_in_code": facts.check_in_code}


def confirmed(facts: BookingFacts, at: datetime) -> BookingChange:
    return BookingChange(
        BookingConfirmed(
            **booking_event_fields(facts),
            display_name=facts.display_name,
            check_in_code=facts.check_in_code,
        ),
        _booking_note("booking.confirmed", facts, at, status="confirmed", **_code(facts)),
    )


def waitlisted(facts: BookingFacts, at: datetime, position: int) -> BookingChange:
    return BookingChange(
        BookingWaitlisted(
            **booking_event_fields(facts),
            display_name=facts.display_name,
            waitlist_position=position,
        ),
        _booking_note(
            "booking.waitlisted", facts, at, status="waitlisted", waitlist_position=position
        ),
    )


def promoted(facts: BookingFacts, at: datetime) -> BookingChange:
    return BookingChange(
        BookingPromoted(
            **booking_event_fields(facts),
            display_name=facts.display_name,
            check_in_code=facts.check_in_code,
        ),
        _booking_note("booking.promoted", facts, at, status="confirmed", **_code(facts)),
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


# --- notices that change no booking: told to the partner only (no Kafka event) -----------


def reminder(facts: BookingFacts, at: datetime, minutes_before: int) -> Notification:
    """`booking.reminder`: the shift starts in `minutes_before` minutes (a policy value)."""
    return _booking_note(
        "booking.reminder", facts, at, status="confirmed", minutes_before=minutes_before
    )


def reconfirm_requested(facts: BookingFacts, at: datetime, deadline: datetime) -> Notification:
    """`booking.reconfirm_requested`: answer `booking.reconfirmed` by `reconfirm_by`, or the
    booking is released (`not_reconfirmed`, no strike)."""
    return _booking_note(
        "booking.reconfirm_requested",
        facts,
        at,
        status="confirmed",
        reconfirm_by=deadline.isoformat(),
    )


def reconfirm_refused(
    booking_id: str, partner_user_id: str, reason: str, at: datetime, webhook_id: str
) -> Notification:
    """`booking.reconfirm_refused`: a `booking.reconfirmed` that changed nothing (answered
    202 at the door). Only what the partner sent is repeated: another citizen's booking is
    not described."""
    data = {
        "booking_id": booking_id,
        "partner_user_id": partner_user_id,
        "reason": reason,
        "webhook_id": webhook_id,
    }
    kind = "booking.reconfirm_refused"
    return Notification(
        notification_id=new_notification_id(),
        type=kind,
        ordering_key=booking_id,
        posting_id=None,
        application_id=None,
        booking_id=booking_id,
        payload=_body(kind, at, data),
    )


def waitlist_moved(facts: BookingFacts, at: datetime, position: int, previous: int) -> Notification:
    """`waitlist.position_changed`: the booking's place in the waitlist moved."""
    return _booking_note(
        "waitlist.position_changed",
        facts,
        at,
        status="waitlisted",
        waitlist_position=position,
        previous_position=previous,
    )


def attendance_recorded(
    facts: BookingFacts, at: datetime, event: AttendanceRecorded | AttendanceCorrected
) -> Notification:
    """`attendance.recorded`: attended minutes or a no-show (`corrected` for a correction)."""
    return _booking_note(
        "attendance.recorded",
        facts,
        at,
        attendance_id=event.attendance_id,
        attendance_status=event.status,
        minutes=event.minutes,
        scheduled_minutes=event.scheduled_minutes,
        revision=event.revision,
        corrected=isinstance(event, AttendanceCorrected),
    )


def strike_recorded(
    facts: BookingFacts,
    at: datetime,
    *,
    kind: str,
    occurred_at: datetime,
    strikes_in_window: int,
    window_days: int,
    strikes_to_suspend: int,
) -> Notification:
    """`citizen.strike_recorded`: a no-show or late cancellation counted against the
    citizen, with the strikes now in the window."""
    return _booking_note(
        "citizen.strike_recorded",
        facts,
        at,
        strike_kind=kind,
        occurred_at=occurred_at.isoformat(),
        strikes_in_window=strikes_in_window,
        window_days=window_days,
        strikes_to_suspend=strikes_to_suspend,
    )


def suspended(
    facts: BookingFacts,
    at: datetime,
    *,
    starts_at: datetime,
    ends_at: datetime,
    strikes: int,
    window_days: int,
) -> Notification:
    """`citizen.suspended`: no booking until `suspended_until`, because of `strikes` strikes
    within `window_days` days (reason `strikes`)."""
    return _booking_note(
        "citizen.suspended",
        facts,
        at,
        reason="strikes",
        suspended_from=starts_at.isoformat(),
        suspended_until=ends_at.isoformat(),
        strikes=strikes,
        window_days=window_days,
    )


def refused(
    *,
    kind: str,
    application_id: str,
    posting_id: str,
    partner_user_id: str,
    webhook_id: str,
    reason: str,
    at: datetime,
) -> Notification:
    """`application.refused`: a partner request (`kind`, e.g. `application.withdrawn`) that
    does not match its application was answered 202 and changed nothing; this says why.
    It echoes what the partner sent and nothing of the application (the partner_user_id
    sent may not be its citizen's). Ordered with the application's other notifications."""
    data = {
        "application_id": application_id,
        "posting_id": posting_id,
        "partner_user_id": partner_user_id,
        "request_type": kind,
        "request_webhook_id": webhook_id,
        "reason": reason,
    }
    return Notification(
        notification_id=new_notification_id(),
        type="application.refused",
        ordering_key=application_id,
        posting_id=posting_id,
        application_id=application_id,
        booking_id=None,
        payload=_body("application.refused", at, data),
    )


def payout_note(
    kind: str,
    *,
    partner_user_id: str,
    ordering_key: str,
    application_id: str | None,
    data: dict[str, Any],
    at: datetime,
) -> Notification:
    """`payout.accrued` / `payout.reversed`: the allowance's figures for one booking, for
    the citizen the partner knows; ordered after the booking's own notifications."""
    body = {"partner_user_id": partner_user_id, **data}
    if application_id is not None:
        body["application_id"] = application_id
    return Notification(
        notification_id=new_notification_id(),
        type=kind,
        ordering_key=ordering_key,
        posting_id=str(data["posting_id"]),
        application_id=application_id,
        booking_id=str(data["booking_id"]),
        payload=_body(kind, at, body),
    )


def payout_accrued_data(event: PayoutAccrued) -> dict[str, Any]:
    """`payout.accrued`'s figures, the allowance's own (never recomputed here)."""
    return {
        "posting_id": event.posting_id,
        "booking_id": event.booking_id,
        "attendance_id": event.attendance_id,
        "month": event.period,
        "minutes_paid": event.minutes_paid,
        "hourly_rate_won": event.hourly_rate_won,
        "gross_won": event.gross_won,
        "amount_won": event.accrued_won,
        "capped_won": event.capped_won,
        "adjustment": event.adjustment,
    }


def payout_reversed_data(event: PayoutReversed) -> dict[str, Any]:
    """`payout.reversed`'s figures: what was taken back, as positive numbers."""
    return {
        "posting_id": event.posting_id,
        "booking_id": event.booking_id,
        "attendance_id": event.attendance_id,
        "month": event.period,
        "minutes_reversed": event.minutes_reversed,
        "gross_reversed_won": event.gross_reversed_won,
        "amount_reversed_won": event.accrued_reversed_won,
        "capped_released_won": event.capped_released_won,
        "adjustment": event.adjustment,
    }


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
            # added for the partner (issue 18): where, whom to call, and the pay
            "facility_address": posting.facility_address,
            "facility_contact": posting.facility_contact,
            "hourly_rate_won": posting.hourly_rate_won,
            "shift_allowance_won": shift_allowance_won(
                posting.hourly_rate_won, posting.starts_at, posting.ends_at
            ),
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


def draw_completed(record: DrawRecord, citizens: Mapping[str, str], at: datetime) -> BookingChange:
    """A draw ran: `DrawCompleted` (the record with each entry's pseudonymous citizen, for
    the allowance's reports) and `draw.completed`, whose `data` is the published record
    exactly (docs/fairness.md §5): saved as a file, `docs/verify_draw.py` checks it."""
    event = DrawCompleted(
        posting_id=record.posting_id,
        algorithm=record.algorithm,
        seats=record.seats,
        waitlist_room=record.waitlist_room,
        half_weight_minutes=record.half_weight_minutes,
        window_months=record.window_months,
        commitment=record.commitment,
        entry_list_hash=record.entry_list_hash,
        seed_hex=record.seed_hex,
        entries=[
            DrawEntry(
                entry_id=e.entry_id,
                citizen_id=citizens[e.entry_id],
                minutes_window=e.minutes_window,
            )
            for e in record.entries
        ],
        confirmed=list(record.confirmed),
        waitlisted=list(record.waitlisted),
        not_selected=list(record.not_selected),
        committed_at=record.committed_at,
        applications_close_at=record.applications_close_at,
        drawn_at=record.drawn_at,
    )
    note = Notification(
        notification_id=new_notification_id(),
        type="draw.completed",
        ordering_key=record.posting_id,
        posting_id=record.posting_id,
        application_id=None,
        booking_id=None,
        payload=_body("draw.completed", at, record.to_dict()),
    )
    return BookingChange(event, note)


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

    def tell(self, note: Notification) -> None:
        """A notification with no event of its own."""
        self.notes.append(note)

    async def write(
        self,
        conn: Connection,
        at: datetime,
        applications: Sequence[store.NewApplication] = (),
        queue_taken: Mapping[str, tuple[int, int]] | None = None,
    ) -> None:
        """Write the events, the notifications and `applications` (decided in this
        transaction, with the waitlist positions they took: `store.write_changes`) in one
        statement."""
        for event in self.events:
            outcome = _OUTCOME_OF.get(event.TYPE)
            if outcome is not None:
                metrics.MATCHER_DECISIONS.labels(outcome).inc()
        if self.events or self.notes or applications:
            await store.write_changes(
                conn,
                applications,
                outbox.columns(self.events, producer=PRODUCER, occurred_at=at),
                self.notes,
                queue_taken,
            )
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


def payment_note(
    event_id: uuid.UUID,
    partner_user_id: str,
    at: datetime,
    event: PayoutPaid | PayoutFailed,
) -> Notification:
    """`payout.paid` / `payout.failed`: the bank's result for the citizen's month, as the
    allowance recorded it. The notification id is derived from the result's event, so a
    redelivery can never send it twice; one citizen's payments keep their order."""
    kind = "payout.paid" if isinstance(event, PayoutPaid) else "payout.failed"
    data: dict[str, Any] = {
        "partner_user_id": partner_user_id,
        "month": event.period,
        "amount_won": event.amount_won,
    }
    if isinstance(event, PayoutFailed):
        data["reason"] = event.reason
        data["carried"] = event.carried
    return Notification(
        notification_id="msg_" + uuid.uuid5(event_id, "partner-notification").hex,
        type=kind,
        ordering_key=f"payout:{partner_user_id}",
        posting_id=None,
        application_id=None,
        booking_id=None,
        payload=_body(kind, at, data),
    )

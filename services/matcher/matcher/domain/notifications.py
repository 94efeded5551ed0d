"""What a booking change tells the partner and the Kafka topic, as plain data: the facts
both outputs are built from (so they agree), and the partner notification's `data`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class BookingFacts:
    """One application/booking as both outputs describe it."""

    application_id: str
    posting_id: str
    citizen_id: str
    citizen_display: str
    partner_user_id: str
    booking_id: str | None
    starts_at: datetime
    ends_at: datetime
    display_name: str | None = None
    check_in_code: str | None = None


def booking_data(facts: BookingFacts, **extra: Any) -> dict[str, Any]:
    """The `data` of a `booking.*` notification: who and which posting, the booking and
    its times when there is one, then the change's own fields."""
    data: dict[str, Any] = {
        "application_id": facts.application_id,
        "posting_id": facts.posting_id,
        "partner_user_id": facts.partner_user_id,
    }
    if facts.booking_id is not None:
        data["booking_id"] = facts.booking_id
        data["starts_at"] = facts.starts_at.isoformat()
        data["ends_at"] = facts.ends_at.isoformat()
    data.update(extra)
    return data


def booking_event_fields(facts: BookingFacts) -> dict[str, Any]:
    """The fields every booking event (confirmed, waitlisted, promoted, cancelled) has."""
    assert facts.booking_id is not None, "a booking event needs a booking id"
    return {
        "posting_id": facts.posting_id,
        "application_id": facts.application_id,
        "citizen_id": facts.citizen_id,
        "citizen_display": facts.citizen_display,
        "booking_id": facts.booking_id,
        "starts_at": facts.starts_at,
        "ends_at": facts.ends_at,
    }

"""Issue 18's pure parts: the citizen's allowance as the partner is shown it (payment
status, monthly cap, the week's hours), the monthly cap table, and the bodies of
`application.refused` and `payout.accrued`."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from matcher.domain.allowance import MonthFigures, month_cap_won, payment_status, week_hours
from matcher.domain.eligibility import Booked
from matcher.domain.policy import MonthCaps, Refusal, WeekCaps
from matcher.usecases import notifications

from .builders import seoul


@pytest.mark.parametrize(
    ("row_status", "closed", "shown"),
    [
        ("accruing", False, "accruing"),
        ("accruing", True, "closed"),  # closed after the row was written
        ("closed", True, "closed"),
        ("paid", True, "paid"),  # a settled status wins over the month's closure
        ("held_back", True, "held_back"),
        ("failed", True, "failed"),
    ],
)
def test_payment_status(row_status: str, closed: bool, shown: str) -> None:
    assert payment_status(MonthFigures(payment_status=row_status), closed) == shown


def test_the_monthly_cap_is_the_one_applied_else_the_tables_carried_forward() -> None:
    caps = MonthCaps({2026: 500_000, 2028: 600_000})
    assert month_cap_won(MonthFigures(), caps, "2027-05") == 500_000
    assert month_cap_won(MonthFigures(), caps, "2025-01") == 500_000  # before the table
    assert month_cap_won(MonthFigures(), caps, "2029-01") == 600_000
    assert month_cap_won(MonthFigures(cap_won=450_000), caps, "2027-05") == 450_000
    assert month_cap_won(MonthFigures(), MonthCaps(), "2027-05") is None


def test_the_weeks_hours_count_only_the_minutes_inside_the_iso_week() -> None:
    """Wednesday 4 March 2026 (Seoul): a 2-hour booking that day counts whole; one across
    the next Sunday midnight counts its Sunday part only."""
    at = seoul(2026, 3, 4, 10)
    booked = [
        Booked(seoul(2026, 3, 4, 14), seoul(2026, 3, 4, 16)),
        Booked(seoul(2026, 3, 8, 23), seoul(2026, 3, 9, 1)),
        Booked(seoul(2026, 3, 10, 9), seoul(2026, 3, 10, 12)),  # next week
    ]
    week = week_hours(at, booked, WeekCaps({2026: 13}))
    assert week.week == "2026-W10"
    assert (week.starts_at, week.ends_at) == (seoul(2026, 3, 2), seoul(2026, 3, 9))
    assert week.booked_minutes == 120 + 60
    assert week.hours_max == 13
    assert week_hours(at, [], WeekCaps()).hours_max is None


def test_refused_echoes_the_request_and_tells_nothing_of_the_application() -> None:
    at = datetime(2026, 3, 4, 1, tzinfo=UTC)
    note = notifications.refused(
        kind="application.withdrawn",
        application_id="app_1",
        posting_id="pst_1",
        partner_user_id="someone",
        webhook_id="msg_in_1",
        reason=Refusal.CITIZEN_MISMATCH.value,
        at=at,
    )
    body = orjson.loads(note.payload)
    assert body["type"] == note.type == "application.refused"
    assert body["data"] == {
        "application_id": "app_1",
        "posting_id": "pst_1",
        "partner_user_id": "someone",
        "request_type": "application.withdrawn",
        "request_webhook_id": "msg_in_1",
        "reason": "citizen_mismatch",
    }
    assert note.ordering_key == "app_1" and note.booking_id is None


def test_payout_note_is_ordered_with_its_booking() -> None:
    at = datetime(2026, 3, 4, 1, tzinfo=UTC)
    data = {"posting_id": "pst_1", "booking_id": "bkg_1", "amount_won": 26_606, "capped_won": 0}
    note = notifications.payout_note(
        "payout.accrued",
        partner_user_id="p1",
        ordering_key="app_1",
        application_id="app_1",
        data=data,
        at=at,
    )
    body = orjson.loads(note.payload)
    assert body["data"] == {"partner_user_id": "p1", **data, "application_id": "app_1"}
    assert (note.ordering_key, note.booking_id, note.posting_id) == ("app_1", "bkg_1", "pst_1")

"""The partner pull API's pure parts: seats left, the full-shift allowance (the one payout
formula), when a partner token works, the posting as the partner reads it, the pay and
place in the `posting.published` notification, and a tampered cursor refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from matcher import views
from matcher.domain.partner import (
    previous_tokens_valid_until,
    seats_left,
    shift_allowance_won,
    token_admits,
)
from matcher.store import PostingRow
from matcher.usecases.notifications import posting_note

from shared.events import PostingPublished
from shared.money import payout_won
from shared.problems import Problem

T0 = datetime(2026, 6, 2, 1, 0, tzinfo=UTC)


def test_seats_left_is_capacity_minus_confirmed_and_never_negative() -> None:
    """Free seats are the capacity less the confirmed bookings; a capacity lowered below
    the confirmed count (kept bookings) shows none, not a negative number."""
    assert seats_left(4, 0) == 4
    assert seats_left(4, 3) == 1
    assert seats_left(4, 4) == 0
    assert seats_left(2, 3) == 0


def test_the_full_shift_allowance_is_the_payout_of_the_scheduled_minutes() -> None:
    """`shift_allowance_won` is shared/money.py's payout of the whole shift (floored), and
    None when the rate is not known."""
    ends = T0 + timedelta(hours=2, minutes=50)
    assert shift_allowance_won(10_030, T0, ends) == payout_won(10_030, 170) == 28_418
    assert shift_allowance_won(12_000, T0, T0 + timedelta(hours=3)) == 36_000
    assert shift_allowance_won(None, T0, ends) is None


def test_a_token_works_until_its_expiry_and_a_rotation_sets_the_overlap() -> None:
    """A token without expiry works; one rotated out works until (not at) its expiry; the
    overlap is never negative."""
    assert token_admits(None, T0)
    until = previous_tokens_valid_until(T0, timedelta(seconds=30))
    assert until == T0 + timedelta(seconds=30)
    assert token_admits(until, T0 + timedelta(seconds=29))
    assert not token_admits(until, until)
    assert previous_tokens_valid_until(T0, timedelta(seconds=-5)) == T0


def _row(**changes: object) -> PostingRow:
    base: dict[str, object] = {
        "posting_id": "pst_1",
        "facility_id": "fac_1",
        "facility_name": "수완 작은도서관",
        "facility_dong": "수완동",
        "title": "책 정리",
        "description": "",
        "tags": ["도서관"],
        "starts_at": T0,
        "ends_at": T0 + timedelta(hours=3),
        "capacity": 4,
        "selection": "first_come",
        "applications_close_at": None,
        "requires_child_safety_check": True,
        "status": "open",
        "revision": 0,
        "confirmed_count": 3,
        "waitlisted_count": 2,
        "waitlist_max": 100,
        "queue_next": 3,
        "drawn_at": None,
        "published_at": T0 - timedelta(days=5),
        "updated_at": T0 - timedelta(days=4),
        "draw_frozen_at": None,
        "reconfirmation_required": False,
        "facility_address": "광주 광산구 수완로 12",
        "facility_contact": "062-960-0000",
        "hourly_rate_won": 12_000,
        "version": 7,
        "changed_at": T0 - timedelta(days=1),
    }
    base.update(changes)
    return PostingRow(**base)  # type: ignore[arg-type]


def test_the_partner_reads_pay_place_seats_and_version_of_a_posting() -> None:
    """A stored posting as the partner reads it: seats left, waitlist length, pay of the
    whole shift, address and contact, and the version with the time it last grew."""
    item = views.partner_posting(_row())
    assert item.seats_left == 1
    assert item.waitlist_length == 2
    assert item.hourly_rate_won == 12_000
    assert item.shift_allowance_won == 36_000
    assert item.facility_address == "광주 광산구 수완로 12"
    assert item.facility_contact == "062-960-0000"
    assert item.version == 7
    assert item.updated_at == T0 - timedelta(days=1)
    older = views.partner_posting(_row(hourly_rate_won=None, facility_address=None))
    assert older.hourly_rate_won is None and older.shift_allowance_won is None


def test_posting_published_tells_the_partner_pay_place_and_seats() -> None:
    """The `posting.published` notification grows (never renames): the hourly rate, the
    full-shift allowance, address, contact and seats left are added to its data."""
    event = PostingPublished(
        posting_id="pst_1",
        facility_id="fac_1",
        facility_name="수완 작은도서관",
        facility_dong="수완동",
        title="책 정리",
        starts_at=T0,
        ends_at=T0 + timedelta(hours=3),
        capacity=4,
        selection="first_come",
        reservation_id="rsv_1",
        facility_address="광주 광산구 수완로 12",
        facility_contact="062-960-0000",
        hourly_rate_won=12_000,
    )
    note = posting_note("posting.published", event, T0, status="open", seats_left=4)
    data = orjson.loads(note.payload)["data"]
    assert data["hourly_rate_won"] == 12_000
    assert data["shift_allowance_won"] == 36_000
    assert data["facility_address"] == "광주 광산구 수완로 12"
    assert data["facility_contact"] == "062-960-0000"
    assert data["seats_left"] == 4
    for kept in ("posting_id", "title", "starts_at", "capacity", "selection", "status"):
        assert kept in data


@pytest.mark.parametrize(
    "cursor", ["garbage!", views.APPLICATION_CURSOR.encode("app_1"), "W10", "bnVsbA"]
)
def test_a_cursor_that_is_not_one_of_the_partner_list_is_a_400(cursor: str) -> None:
    """A cursor edited by hand, or one of another list, is refused naming `cursor`."""
    with pytest.raises(Problem) as refused:
        views.PARTNER_POSTING_CURSOR.decode(cursor)
    assert refused.value.status == 400
    assert refused.value.errors and refused.value.errors[0]["field"] == "cursor"
    good = views.PARTNER_POSTING_CURSOR.encode(T0, "pst_1")
    assert views.PARTNER_POSTING_CURSOR.decode(good) == (T0, "pst_1")

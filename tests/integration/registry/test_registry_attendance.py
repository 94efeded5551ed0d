"""The roster read model and attendance on the running registry: booking events injected
on matcher.bookings.v1, the shared clock moved through the shift and its attendance
window, and the events allowance pays from read back from registry.attendance.v1."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from tests.integration.registry.registry_client import Registry

pytestmark = pytest.mark.stack

WINDOW = timedelta(hours=72)  # the registry's default attendance window


async def test_roster_follows_booking_events_and_shows_only_what_the_facility_needs(
    registry: Registry,
) -> None:
    """Confirmed, waitlisted, cancelled and promoted booking events shape the roster:
    confirmed first, then the waitlist in order; a cancelled booking leaves it; a promoted
    one is confirmed with its promotion time. Entries carry the masked display id, never the
    citizen id; another facility's key cannot read it (404)."""
    fac = await registry.create_facility()
    key = fac["api_key"]
    posting = await registry.open(key, capacity=2)
    pid = posting["id"]
    a = await registry.book(posting)
    b = await registry.book(posting)
    w1 = await registry.book(posting, "waitlisted", position=1)
    w2 = await registry.book(posting, "waitlisted", position=2)
    roster = await registry.wait_roster(key, pid, lambda r: r["waitlisted_count"] == 2)
    assert [e["booking_id"] for e in roster["entries"]] == [a, b, w1, w2]
    assert roster["confirmed_count"] == 2 and roster["capacity"] == 2
    assert [e["waitlist_position"] for e in roster["entries"]] == [None, None, 1, 2]

    await registry.book(posting, "cancelled", booking_id=a)
    await registry.book(posting, "promoted", booking_id=w1)
    roster = await registry.wait_roster(
        key, pid, lambda r: r["waitlisted_count"] == 1 and r["confirmed_count"] == 2
    )
    by_id = {e["booking_id"]: e for e in roster["entries"]}
    assert set(by_id) == {b, w1, w2}
    assert by_id[w1]["status"] == "confirmed" and by_id[w1]["promoted_at"] is not None
    assert by_id[w1]["citizen_display"].startswith("당근***")
    text = json.dumps(roster)
    assert f"ctz_{b}" not in text and "birth" not in text
    posting_now = await registry.get(key, pid)
    assert posting_now["confirmed_count"] == 2 and posting_now["waitlisted_count"] == 1

    other = await registry.create_facility()
    r = await registry.request(other["api_key"], "GET", f"/v1/postings/{pid}/roster")
    assert r.status_code == 404 and b not in r.text


async def test_attendance_window_minutes_replacement_and_correction(registry: Registry) -> None:
    """Before the start attendance is 409. From the start: a record's minutes come from
    check-in/out clipped to the shift (AttendanceRecorded carries them, the citizen id and
    the scheduled minutes); the same record again changes nothing; a different one replaces
    it (revision 2); a booking not confirmed in the roster is 409 naming it. After the
    window the posting is closed (PostingClosed) and a change is an AttendanceCorrected
    (revision 3, with the previous status and minutes); a first record then is 409."""
    fac = await registry.create_facility()
    key = fac["api_key"]
    posting = await registry.open(key, start_in=timedelta(minutes=20), minutes=120, capacity=3)
    pid = posting["id"]
    starts = datetime.fromisoformat(posting["starts_at"])
    ends = datetime.fromisoformat(posting["ends_at"])
    came = await registry.book(posting)
    absent = await registry.book(posting)
    late = await registry.book(posting)
    waiting = await registry.book(posting, "waitlisted", position=1)
    await registry.wait_roster(key, pid, lambda r: r["waitlisted_count"] == 1)

    r = await registry.attendance(key, pid, [{"booking_id": came, "status": "attended"}])
    assert r.status_code == 409 and r.json()["code"] == "attendance_not_open"

    await registry.move_clock_to(starts + timedelta(minutes=90))
    records = [
        {
            "booking_id": came,
            "status": "attended",
            "checked_in_at": (starts - timedelta(minutes=10)).isoformat(),
            "checked_out_at": (starts + timedelta(minutes=75, seconds=40)).isoformat(),
        },
        {"booking_id": absent, "status": "no_show"},
    ]
    r = await registry.attendance(key, pid, records)
    assert r.status_code == 200, r.text
    out = {x["booking_id"]: x for x in r.json()["records"]}
    assert out[came]["minutes"] == 75 and out[came]["outcome"] == "recorded"
    assert out[absent]["minutes"] == 0 and out[came]["scheduled_minutes"] == 120
    events = await registry.watcher.wait_for(pid, "AttendanceRecorded", count=2)
    came_event = next(e.data for e in events if e.data["booking_id"] == came)
    assert came_event["citizen_id"] == f"ctz_{came}" and came_event["minutes"] == 75
    assert came_event["scheduled_minutes"] == 120 and came_event["revision"] == 1
    assert came_event["attendance_id"] == out[came]["attendance_id"]
    assert datetime.fromisoformat(came_event["shift_starts_at"]) == starts

    again = await registry.attendance(key, pid, records)
    assert again.status_code == 200
    assert {x["outcome"] for x in again.json()["records"]} == {"unchanged"}

    r = await registry.attendance(
        key,
        pid,
        [
            {"booking_id": waiting, "status": "attended"},
            {"booking_id": "bkg_nobody", "status": "no_show"},
        ],
    )
    assert r.status_code == 409 and r.json()["code"] == "booking_not_in_roster"
    assert {e["field"] for e in r.json()["errors"]} == {
        "records.0.booking_id",
        "records.1.booking_id",
    }
    assert waiting in r.text
    r = await registry.attendance(
        key,
        pid,
        [
            {
                "booking_id": came,
                "status": "attended",
                "checked_in_at": (ends + timedelta(hours=2)).isoformat(),
            }
        ],
    )
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "records.0.checked_in_at"

    r = await registry.attendance(key, pid, [{"booking_id": came, "status": "attended"}])
    assert r.status_code == 200 and r.json()["records"][0]["outcome"] == "replaced"
    assert r.json()["records"][0]["minutes"] == 120 and r.json()["records"][0]["revision"] == 2
    replaced = await registry.watcher.wait_for(
        pid, "AttendanceRecorded", where=lambda e: e.data["revision"] == 2
    )
    assert replaced[0].data["booking_id"] == came and replaced[0].data["minutes"] == 120

    roster = await registry.roster(key, pid)
    shown = {e["booking_id"]: e["attendance"] for e in roster["entries"]}
    assert shown[came]["minutes"] == 120 and shown[absent]["status"] == "no_show"
    assert shown[late] is None

    await registry.move_clock_to(ends + WINDOW + timedelta(minutes=1))
    closed = await registry.wait_status(key, pid, "closed")
    assert closed["closed_at"] is not None
    await registry.watcher.wait_for(pid, "PostingClosed")

    r = await registry.attendance(key, pid, [{"booking_id": came, "status": "no_show"}])
    assert r.status_code == 200, r.text
    assert r.json()["phase"] == "correcting" and r.json()["records"][0]["outcome"] == "corrected"
    corrected = (await registry.watcher.wait_for(pid, "AttendanceCorrected"))[0].data
    assert corrected["revision"] == 3 and corrected["minutes"] == 0
    assert corrected["previous_status"] == "attended" and corrected["previous_minutes"] == 120
    assert corrected["attendance_id"] == out[came]["attendance_id"]

    r = await registry.attendance(key, pid, [{"booking_id": late, "status": "attended"}])
    assert r.status_code == 409 and r.json()["code"] == "attendance_window_closed"
    assert late in r.text
    assert len(registry.watcher.of(pid, "AttendanceRecorded")) == 3

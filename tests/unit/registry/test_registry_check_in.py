"""Check-in at the door (registry.domain.checkin): a typed code is cleaned the way people
type it; a check-in opens `slack` before the shift and closes `slack` after it, happens once;
a check-out needs a check-in, waits for the shift's start, happens once, and records the
attendance whose minutes `domain.attendance` computes (the paid minutes are not computed a
second time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from registry.domain.attendance import AttendancePolicy, Shift, attended_minutes
from registry.domain.checkin import (
    DoorRecord,
    admit_check_in,
    admit_check_out,
    check_out_entry,
    normalize_code,
)
from registry.domain.errors import Refusal

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 10:00 in Seoul
SHIFT = Shift(START, START + timedelta(hours=2))
POLICY = AttendancePolicy(window=timedelta(hours=72), slack=timedelta(minutes=60))
IN = DoorRecord(checked_in_at=START - timedelta(minutes=5))


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("AB3D4F", "AB3D4F"), ("ab3d4f", "AB3D4F"), (" ab3-d4f ", "AB3D4F"), ("AB3 D4F", "AB3D4F")],
)
def test_a_typed_code_is_cleaned_as_people_type_it(typed: str, stored: str) -> None:
    assert normalize_code(typed) == stored


@pytest.mark.parametrize(
    ("at", "code"),
    [
        (START - timedelta(minutes=61), "check_in_not_open"),
        (START - timedelta(minutes=60), None),
        (START + timedelta(minutes=30), None),
        (SHIFT.ends_at + timedelta(minutes=60), None),
        (SHIFT.ends_at + timedelta(minutes=61), "check_in_closed"),
    ],
)
def test_check_in_opens_and_closes_with_the_slack(at: datetime, code: str | None) -> None:
    """Exactly at the edges it is allowed; a minute outside is a 409 saying which edge."""
    if code is None:
        admit_check_in("open", SHIFT, DoorRecord(), at, POLICY)
        return
    with pytest.raises(Refusal) as info:
        admit_check_in("open", SHIFT, DoorRecord(), at, POLICY)
    assert (info.value.status, info.value.code) == (409, code)


def test_a_second_check_in_and_a_posting_that_does_not_run_are_409s() -> None:
    with pytest.raises(Refusal) as twice:
        admit_check_in("open", SHIFT, IN, START, POLICY)
    assert (twice.value.status, twice.value.code) == (409, "already_checked_in")
    with pytest.raises(Refusal) as cancelled:
        admit_check_in("cancelled", SHIFT, DoorRecord(), START, POLICY)
    assert (cancelled.value.status, cancelled.value.code) == (409, "posting_not_running")


@pytest.mark.parametrize(
    ("door", "at", "code"),
    [
        (DoorRecord(), START + timedelta(hours=1), "not_checked_in"),
        (IN, START - timedelta(minutes=1), "attendance_not_open"),
        (IN, SHIFT.ends_at + timedelta(minutes=61), "check_in_closed"),
        (
            DoorRecord(IN.checked_in_at, START + timedelta(hours=1)),
            START + timedelta(hours=1),
            "already_checked_out",
        ),
    ],
)
def test_check_out_refusals(door: DoorRecord, at: datetime, code: str) -> None:
    with pytest.raises(Refusal) as info:
        admit_check_out("open", SHIFT, door, at, POLICY)
    assert (info.value.status, info.value.code) == (409, code)


def test_a_check_out_records_attended_from_check_in_to_now_with_the_attendance_minutes() -> None:
    """Checked in 5 minutes early, out at 11:50: attended, paid 110 minutes (from the
    shift's start, as `PUT /attendance` would pay the same times)."""
    now = START + timedelta(minutes=110)
    admit_check_out("open", SHIFT, IN, now, POLICY)
    entry = check_out_entry("bkg_1", IN, now)
    assert entry.status == "attended"
    assert (entry.checked_in_at, entry.checked_out_at) == (IN.checked_in_at, now)
    assert attended_minutes(entry, SHIFT) == 110

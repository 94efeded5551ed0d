"""End to end, issue 18: reminders and the opt-in reconfirmation played by moving the shared
clock, and every outcome told (waitlist moves, attendance, strikes, a suspension) as
signed notifications the partner simulator received and verified."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest

from tools.api_client import Api, partner

from .conftest import (
    FacilityMaker,
    citizen_at,
    eventually,
    move_clock,
    shift,
    wait_decided,
    wait_notification,
    wait_status,
)

pytestmark = pytest.mark.stack

MINUTE = timedelta(minutes=1)
# Longer than a few passes of the notices' sweep (MATCHER reminder_sweep_interval_ms: 1 s).
SWEEPS_S = 3.5


async def received(system: Api, kind: str, **filters: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await system.simulator.notifications(type=kind, **filters))[
        "items"
    ]
    return items


async def apply(system: Api, posting_id: str, who: dict[str, Any]) -> dict[str, Any]:
    application_id = partner.new_application_id()
    r = await system.partner.submit_application(
        posting_id=posting_id, citizen=who, application_id=application_id
    )
    assert r.status_code == 202, r.text
    return await wait_decided(system, application_id)


async def open_shift(
    system: Api, make_facility: FacilityMaker, start: datetime, **fields: Any
) -> tuple[str, str]:
    key = (await make_facility())["api_key"]
    posting = await system.facility(key).post_posting(shift(start, 120, **fields))
    await wait_status(system, key, posting["id"], "open")
    return key, str(posting["id"])


async def test_reminders_24h_and_2h_once_each_and_none_for_a_passed_window(
    system: Api, make_facility: FacilityMaker
) -> None:
    """A booking made three days ahead is reminded 24 h and 2 h before, once each however
    often the sweep runs; one made inside the 24 h window only 2 h before."""
    now = await system.clock.get()
    start = (now + timedelta(days=3)).replace(second=0, microsecond=0)
    _, pid = await open_shift(system, make_facility, start)
    early = await apply(system, pid, citizen_at(now))
    assert early["status"] == "confirmed"

    await move_clock(system, start - timedelta(hours=24) + MINUTE)
    day_before = await wait_notification(system, "booking.reminder", booking_id=early["booking_id"])
    assert day_before["data"]["minutes_before"] == 24 * 60
    assert day_before["data"]["starts_at"] == start.isoformat()
    assert day_before["data"]["partner_user_id"]
    late = await apply(system, pid, citizen_at(await system.clock.get()))
    assert late["status"] == "confirmed"
    await asyncio.sleep(SWEEPS_S)
    assert len(await received(system, "booking.reminder", booking_id=early["booking_id"])) == 1
    assert await received(system, "booking.reminder", booking_id=late["booking_id"]) == []

    await move_clock(system, start - timedelta(hours=2) + MINUTE)
    for booking in (early, late):

        async def two_hours(booking_id: str = booking["booking_id"]) -> list[int] | None:
            got = await received(system, "booking.reminder", booking_id=booking_id)
            minutes = sorted(n["data"]["minutes_before"] for n in got)
            return minutes if 120 in minutes else None

        await eventually(two_hours, what="the 2 h reminder")
    await asyncio.sleep(SWEEPS_S)
    by_booking = {
        b["booking_id"]: sorted(
            n["data"]["minutes_before"]
            for n in await received(system, "booking.reminder", booking_id=b["booking_id"])
        )
        for b in (early, late)
    }
    assert by_booking == {early["booking_id"]: [120, 1440], late["booking_id"]: [120]}


async def test_reconfirmed_stays_unanswered_is_released_and_the_waitlist_moves(
    system: Api, make_facility: FacilityMaker
) -> None:
    """On a posting whose facility asks for reconfirmation: both confirmed citizens are
    asked 48 h before; the one who reconfirms keeps the seat, the other is released at
    16 h before (`not_reconfirmed`, no strike), the waitlist head is promoted and the one
    behind told its new place. A reconfirmation for someone else's booking, or for the
    released one, changes nothing and is refused by a signed notification."""
    now = await system.clock.get()
    start = (now + timedelta(days=3)).replace(second=0, microsecond=0)
    key, pid = await open_shift(
        system, make_facility, start, capacity=2, reconfirmation_required=True
    )
    assert (await system.facility(key).get_posting(pid))["reconfirmation_required"] is True
    people = [citizen_at(now) for _ in range(4)]
    keeps, forgets, head, behind = [await apply(system, pid, who) for who in people]
    assert [a["status"] for a in (keeps, forgets, head, behind)] == [
        "confirmed",
        "confirmed",
        "waitlisted",
        "waitlisted",
    ]
    uid = {a["application_id"]: str(p["partner_user_id"]) for a, p in zip(
        (keeps, forgets, head, behind), people, strict=True)}  # fmt: skip

    await move_clock(system, start - timedelta(hours=48) + MINUTE)
    for booking in (keeps, forgets):
        asked = await wait_notification(
            system, "booking.reconfirm_requested", booking_id=booking["booking_id"]
        )
        assert asked["data"]["reconfirm_by"] == (start - timedelta(hours=16)).isoformat()
    r = await system.partner.reconfirm_booking(
        booking_id=keeps["booking_id"], partner_user_id=uid[keeps["application_id"]]
    )
    assert r.status_code == 202, r.text
    stranger = uid[behind["application_id"]]
    r = await system.partner.reconfirm_booking(
        booking_id=forgets["booking_id"], partner_user_id=stranger
    )
    assert r.status_code == 202, r.text
    mismatch = await wait_notification(
        system, "booking.reconfirm_refused", booking_id=forgets["booking_id"]
    )
    assert mismatch["data"]["reason"] == "citizen_mismatch"
    assert mismatch["data"]["partner_user_id"] == stranger

    async def reconfirmed() -> dict[str, Any] | None:
        app = await system.matcher_admin.get_application(keeps["application_id"])
        return app if app and app["reconfirmed_at"] else None

    await eventually(reconfirmed, what="the reconfirmation to be recorded")

    await move_clock(system, start - timedelta(hours=16) + MINUTE)
    released = await wait_notification(
        system, "booking.cancelled", booking_id=forgets["booking_id"]
    )
    assert released["data"]["reason"] == "not_reconfirmed"
    assert released["data"]["cancelled_by"] == "system"
    assert released["data"]["strike"] is False
    await wait_notification(system, "booking.promoted", application_id=head["application_id"])
    moved = await wait_notification(
        system, "waitlist.position_changed", application_id=behind["application_id"]
    )
    assert (moved["data"]["waitlist_position"], moved["data"]["previous_position"]) == (1, 2)
    assert moved["data"]["partner_user_id"] == uid[behind["application_id"]]

    r = await system.partner.reconfirm_booking(
        booking_id=forgets["booking_id"], partner_user_id=uid[forgets["application_id"]]
    )
    assert r.status_code == 202

    async def not_active() -> list[dict[str, Any]] | None:
        got = await received(system, "booking.reconfirm_refused", booking_id=forgets["booking_id"])
        return [n for n in got if n["data"]["reason"] == "booking_not_active"] or None

    await eventually(not_active, what="the refusal of a released booking's reconfirmation")
    await asyncio.sleep(SWEEPS_S)
    after = {
        a["application_id"]: (await system.matcher_admin.get_application(a["application_id"]))
        for a in (keeps, forgets, head, behind)
    }
    assert {k: v["status"] for k, v in after.items()} == {
        keeps["application_id"]: "confirmed",
        forgets["application_id"]: "cancelled",
        head["application_id"]: "confirmed",
        behind["application_id"]: "waitlisted",
    }
    # promoted inside the 48 h window: never asked, never released
    assert (
        await received(system, "booking.reconfirm_requested", booking_id=head["booking_id"]) == []
    )
    standing = await system.matcher_admin.get_citizen(forgets["citizen_id"])
    assert standing["strikes"] == []


async def test_no_shows_are_told_and_the_third_strike_suspends(
    system: Api, make_facility: FacilityMaker
) -> None:
    """Three no-shows: each is told as `attendance.recorded` and `citizen.strike_recorded`
    (with the strikes in the window); the third also as `citizen.suspended` (until when,
    why)."""
    now = await system.clock.get()
    base = (now + timedelta(hours=3)).replace(second=0, microsecond=0)
    who = citizen_at(now)
    uid = str(who["partner_user_id"])
    shifts = []
    for i in range(3):
        key, pid = await open_shift(system, make_facility, base + timedelta(hours=3 * i))
        booking = await apply(system, pid, who)
        assert booking["status"] == "confirmed"
        shifts.append((key, pid, booking))
    await move_clock(system, base + timedelta(hours=6, minutes=125))
    for count, (key, pid, booking) in enumerate(shifts, start=1):
        await system.facility(key).record_attendance(
            pid, [{"booking_id": booking["booking_id"], "status": "no_show"}]
        )
        seen = await wait_notification(
            system, "attendance.recorded", booking_id=booking["booking_id"]
        )
        assert seen["data"]["attendance_status"] == "no_show"
        assert seen["data"]["minutes"] == 0 and seen["data"]["partner_user_id"] == uid
        strike = await wait_notification(
            system, "citizen.strike_recorded", booking_id=booking["booking_id"]
        )
        assert strike["data"]["strike_kind"] == "no_show"
        assert strike["data"]["strikes_in_window"] == count
        assert strike["data"]["window_days"] == 90
    suspended = await wait_notification(system, "citizen.suspended", partner_user_id=uid)
    assert suspended["data"]["reason"] == "strikes" and suspended["data"]["strikes"] == 3
    assert suspended["data"]["booking_id"] == shifts[-1][2]["booking_id"]
    standing = await system.matcher_admin.get_citizen(shifts[0][2]["citizen_id"])
    assert standing["suspended"] is True
    assert standing["suspended_until"] == suspended["data"]["suspended_until"]

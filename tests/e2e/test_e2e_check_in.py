"""End to end, check-in at the door (issue 15): the partner sends a citizen with and one
without a display name; each confirmed booking gets a check-in code the partner is told in
`booking.confirmed` and the facility sees on its roster (with the name, or the masked id);
staff check a citizen in and out by that code through the facility API — only on their own
posting, with a 404 for an unknown code and 409s for too early and for twice — and the
check-out's times are the attendance the allowance pays, which staff can still correct."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from shared.events import CHECK_IN_CODE_PATTERN
from tools.api_client import Api, partner

from .conftest import (
    RATE_WON,
    BudgetRoom,
    FacilityMaker,
    citizen_at,
    eventually,
    move_clock,
    seoul_year,
    shift,
    wait_decided,
    wait_notification,
    wait_status,
)
from .test_e2e_money import period_of, statement_of

pytestmark = [pytest.mark.stack, pytest.mark.slow]


async def door(
    system: Api,
    key: str | None,
    posting_id: str,
    action: str,
    code: str,
    idem: str | None = None,
    **headers: str,
) -> Any:
    """A check-in or check-out answered as it is (status, headers, problem body)."""
    return await system.raw(
        system.endpoints.registry_url, key, "POST", f"/v1/postings/{posting_id}/{action}",
        json={"code": code},
        headers={"Idempotency-Key": idem or uuid.uuid4().hex, **headers},
    )  # fmt: skip


async def test_check_in_by_code_lands_in_the_roster_and_the_paid_minutes(
    system: Api, make_facility: FacilityMaker, budget_room: BudgetRoom
) -> None:
    now = await system.clock.get()
    start = (now + timedelta(hours=3)).replace(second=0, microsecond=0)
    await budget_room(seoul_year(start), 1_000_000)
    key = (await make_facility())["api_key"]
    other_key = (await make_facility())["api_key"]
    pid = (await system.facility(key).post_posting(shift(start, 120, capacity=2)))["id"]
    await wait_status(system, key, pid, "open")

    named, anonymous = citizen_at(now, display_name="  김민지 "), citizen_at(now)
    apps = []
    for who in (named, anonymous):
        app_id = partner.new_application_id()
        r = await system.partner.submit_application(
            posting_id=pid, citizen=who, application_id=app_id
        )
        assert r.status_code == 202
        apps.append(await wait_decided(system, app_id))
    assert [a["status"] for a in apps] == ["confirmed", "confirmed"]

    # The partner is told each code in booking.confirmed; the roster has the same codes.
    told = {}
    for app in apps:
        note = await wait_notification(
            system, "booking.confirmed", application_id=app["application_id"]
        )
        code = note["data"]["check_in_code"]
        assert re.fullmatch(CHECK_IN_CODE_PATTERN, code) and len(code) == 6
        told[app["booking_id"]] = code
    assert len(set(told.values())) == 2

    async def roster_with_codes() -> dict[str, Any] | None:
        roster = await system.facility(key).get_roster(pid)
        entries = {e["booking_id"]: e for e in roster["entries"]}
        return entries if all(entries.get(b, {}).get("check_in_code") for b in told) else None

    entries = await eventually(roster_with_codes, what="the codes to reach the roster")
    first, second = (entries[a["booking_id"]] for a in apps)
    assert {b: e["check_in_code"] for b, e in entries.items()} == told
    assert first["display_name"] == "김민지"
    assert second["display_name"] is None and "…" in second["citizen_display"]
    assert first["check_in"] is None
    code = told[apps[0]["booking_id"]]

    # The QR code of the code, for the facility only.
    svg = await system.facility(key).check_in_qr(pid, apps[0]["booking_id"])
    assert svg.lstrip().startswith(b"<svg") and b"</svg>" in svg
    qr_path = f"/v1/postings/{pid}/check-in-qr"
    other_qr = await system.raw(
        system.endpoints.registry_url, other_key, "GET", qr_path,
        params={"booking_id": apps[0]["booking_id"]},
    )  # fmt: skip
    assert other_qr.status_code == 404

    # Too early (3 hours before), another facility's key, an unknown code.
    early = await door(system, key, pid, "check-in", code)
    assert (early.status_code, early.json()["code"]) == (409, "check_in_not_open")
    await move_clock(system, start - timedelta(minutes=10))
    foreign = await door(system, other_key, pid, "check-in", code)
    assert foreign.status_code == 404
    unknown = await door(system, key, pid, "check-in", "ZZZZZZ", **{"Accept-Language": "ko"})
    assert (unknown.status_code, unknown.json()["code"]) == (404, "check_in_code_unknown")
    assert "입실 코드" in unknown.json()["detail"]
    not_in = await door(system, key, pid, "check-out", code)
    assert (not_in.status_code, not_in.json()["code"]) == (409, "not_checked_in")

    # Checked in 10 minutes early, typed the way people type it; a retry under the same
    # Idempotency-Key replays the answer, a second check-in is a 409.
    typed = f"{code[:3].lower()}-{code[3:].lower()}"
    checked = await door(system, key, pid, "check-in", typed, idem="door-1")
    assert checked.status_code == 200, checked.text
    body = checked.json()
    assert body["booking_id"] == apps[0]["booking_id"] and body["display_name"] == "김민지"
    at_door = datetime.fromisoformat(body["check_in"]["checked_in_at"])
    # the clock flows on from the instant it was set to
    assert timedelta(0) <= at_door - (start - timedelta(minutes=10)) < timedelta(minutes=1)
    again = await door(system, key, pid, "check-in", typed, idem="door-1")
    assert again.status_code == 200 and again.headers.get("Idempotent-Replayed") == "true"
    twice = await door(system, key, pid, "check-in", code)
    assert (twice.status_code, twice.json()["code"]) == (409, "already_checked_in")
    before_start = await door(system, key, pid, "check-out", code)
    assert (before_start.status_code, before_start.json()["code"]) == (409, "attendance_not_open")
    roster = {e["booking_id"]: e for e in (await system.facility(key).get_roster(pid))["entries"]}
    assert roster[apps[0]["booking_id"]]["check_in"]["checked_in_at"] is not None
    assert roster[apps[0]["booking_id"]]["attendance"] is None

    # Out 100 minutes after the start: attendance recorded from the door's times, paid
    # from the shift's start (the same rule as PUT /attendance).
    await move_clock(system, start + timedelta(minutes=100))
    out = await system.facility(key).check_out(pid, code)
    assert out["attendance"]["status"] == "attended" and out["attendance"]["minutes"] == 100
    assert out["attendance"]["outcome"] == "recorded"
    twice_out = await door(system, key, pid, "check-out", code)
    assert (twice_out.status_code, twice_out.json()["code"]) == (409, "already_checked_out")
    roster = {e["booking_id"]: e for e in (await system.facility(key).get_roster(pid))["entries"]}
    mine = roster[apps[0]["booking_id"]]
    assert mine["check_in"]["checked_out_at"] is not None
    assert mine["attendance"]["minutes"] == 100 and mine["attendance"]["revision"] == 1

    period = period_of(start)
    citizen_id = apps[0]["citizen_id"]

    async def paid(minutes: int) -> dict[str, Any] | None:
        row = await statement_of(system, period, citizen_id)
        return row if row is not None and row["minutes_paid"] == minutes else None

    first_pay = await eventually(lambda: paid(100), what="the check-out's minutes to be paid")
    assert first_pay["payable_won"] == RATE_WON * 100 // 60

    # Staff correct the check-out time in the attendance form: the record is replaced
    # (revision 2) and the payout follows.
    fixed = await system.facility(key).record_attendance(pid, [
        {"booking_id": apps[0]["booking_id"], "status": "attended",
         "checked_in_at": mine["check_in"]["checked_in_at"],
         "checked_out_at": (start + timedelta(minutes=90)).isoformat()},
    ])  # fmt: skip
    assert fixed["records"][0]["minutes"] == 90 and fixed["records"][0]["revision"] == 2
    await eventually(lambda: paid(90), what="the corrected minutes to be paid")

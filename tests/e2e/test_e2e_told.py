"""End to end, issue 18's "every outcome told": a withdrawal that does not match its
application is answered 202 and refused by a signed `application.refused`; an application
for a shift that has started is refused at once; a shift's payout reaches the partner as
`payout.accrued`, and the citizen's allowance (week's hours, month's won, payment status)
reads back from the matcher's admin API. Only HTTP and signed webhooks, against the stack's
processes; notifications as the partner simulator received and verified them."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest

from shared.seoul import SEOUL
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

pytestmark = pytest.mark.stack


async def _booked(
    system: Api, make_facility: FacilityMaker, start: datetime, minutes: int = 120
) -> tuple[str, str, dict[str, object], dict[str, object]]:
    """A facility's open one-shift posting from `start`, and one citizen confirmed on it:
    (facility key, posting id, citizen, application)."""
    key = (await make_facility())["api_key"]
    posting = await system.facility(key).post_posting(shift(start, minutes, capacity=2))
    pid = str(posting["id"])
    await wait_status(system, key, pid, "open")
    who = citizen_at(await system.clock.get())
    app_id = partner.new_application_id()
    r = await system.partner.submit_application(posting_id=pid, citizen=who, application_id=app_id)
    assert r.status_code == 202, r.text
    app = await wait_decided(system, app_id)
    assert app["status"] == "confirmed"
    return key, pid, who, app


async def test_a_withdrawal_that_does_not_match_is_refused_and_the_booking_stays(
    system: Api, make_facility: FacilityMaker
) -> None:
    """Another citizen's partner_user_id: 202, the booking stays confirmed, and
    `application.refused` (`citizen_mismatch`) names the application and the id sent. An
    application never submitted: `unknown_application`. The true citizen can still withdraw."""
    start = await system.clock.get() + timedelta(days=2)
    _, pid, who, app = await _booked(system, make_facility, start)
    app_id = str(app["application_id"])
    stranger = partner.new_partner_user_id()
    r = await system.partner.withdraw_application(
        posting_id=pid, application_id=app_id, partner_user_id=stranger
    )
    assert r.status_code == 202, r.text
    refused = await wait_notification(system, "application.refused", application_id=app_id)
    assert refused["data"]["reason"] == "citizen_mismatch"
    assert refused["data"]["partner_user_id"] == stranger
    assert refused["data"]["posting_id"] == pid
    assert refused["data"]["request_type"] == "application.withdrawn"
    assert "booking_id" not in refused["data"]  # nothing of the booking to a stranger
    assert (await system.matcher_admin.get_application(app_id) or {})["status"] == "confirmed"
    cancelled = await system.simulator.notifications(
        type="booking.cancelled", application_id=app_id
    )
    assert cancelled["items"] == []

    never = partner.new_application_id()
    r = await system.partner.withdraw_application(
        posting_id=pid, application_id=never, partner_user_id=str(who["partner_user_id"])
    )
    assert r.status_code == 202, r.text
    unknown = await wait_notification(system, "application.refused", application_id=never)
    assert unknown["data"]["reason"] == "unknown_application"

    r = await system.partner.withdraw_application(
        posting_id=pid, application_id=app_id, partner_user_id=str(who["partner_user_id"])
    )
    assert r.status_code == 202
    await wait_notification(system, "booking.cancelled", application_id=app_id)


async def test_an_application_for_a_started_shift_is_refused_at_once(
    system: Api, make_facility: FacilityMaker
) -> None:
    """The matcher knows the shift's times: once it has started an application is refused
    within seconds (`posting_started`), not held for the unknown-posting wait."""
    now = await system.clock.get()
    start = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
    key = (await make_facility())["api_key"]
    posting = await system.facility(key).post_posting(shift(start, 120, capacity=2))
    pid = str(posting["id"])
    await wait_status(system, key, pid, "open")
    await move_clock(system, start + timedelta(minutes=1))
    app_id = partner.new_application_id()
    sent = time.monotonic()
    r = await system.partner.submit_application(
        posting_id=pid, citizen=citizen_at(start), application_id=app_id
    )
    assert r.status_code == 202, r.text
    rejected = await wait_notification(system, "booking.rejected", application_id=app_id)
    assert time.monotonic() - sent < 15
    assert rejected["data"]["reason"] == "posting_started"


async def test_a_paid_shift_is_told_and_the_allowance_reads_back(
    system: Api, make_facility: FacilityMaker, budget_room: BudgetRoom
) -> None:
    """Attendance recorded → the allowance pays → the partner hears `payout.accrued`
    (amount, capped part, month, posting and booking); the matcher's allowance view shows
    the month's accrued won against the monthly cap, the payment `accruing`, and the week's
    booked minutes against the weekly cap."""
    now = await system.clock.get()
    start = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
    end = start + timedelta(minutes=120)
    await budget_room(seoul_year(start), 1_000_000)
    key, pid, who, app = await _booked(system, make_facility, start)
    puid = str(who["partner_user_id"])
    booking_id = str(app["booking_id"])
    before = await system.matcher_admin.get_citizen_allowance(puid)
    assert before["allowance"]["accrued_won"] == 0

    await move_clock(system, end + timedelta(minutes=5))
    await system.facility(key).record_attendance(pid, [
        {"booking_id": booking_id, "status": "attended",
         "checked_in_at": start.isoformat(), "checked_out_at": end.isoformat()},
    ])  # fmt: skip
    note = await wait_notification(system, "payout.accrued", booking_id=booking_id)
    month = start.astimezone(SEOUL).strftime("%Y-%m")
    paid = RATE_WON * 120 // 60
    data = note["data"]
    assert data["partner_user_id"] == puid and data["posting_id"] == pid
    assert data["application_id"] == app["application_id"]
    assert (data["month"], data["amount_won"], data["capped_won"]) == (month, paid, 0)
    assert data["minutes_paid"] == 120

    async def accrued() -> dict[str, object] | None:
        view = await system.matcher_admin.get_citizen_allowance(puid, month)
        return view if view["allowance"]["accrued_won"] == paid else None

    view = await eventually(accrued, what="the allowance view to show the payout")
    # The partner reads the same view with its own token (the pull API).
    as_partner = await system.partner_pull.citizen_allowance(puid, month)
    assert as_partner is not None
    assert as_partner["allowance"] == view["allowance"] and as_partner["week"] == view["week"]
    assert await system.partner_pull.citizen_allowance("karrot_nobody_ever", month) is None
    allowance = view["allowance"]
    assert allowance["capped_won"] == 0 and allowance["payment_status"] == "accruing"
    assert isinstance(allowance["cap_won"], int) and allowance["cap_won"] > 0
    assert allowance["cap_left_won"] == max(allowance["cap_won"] - paid, 0)
    week = view["week"]
    week_start = datetime.fromisoformat(week["starts_at"])
    week_end = datetime.fromisoformat(week["ends_at"])
    overlap = min(end, week_end) - max(start, week_start)
    assert week["booked_minutes"] == max(int(overlap.total_seconds() // 60), 0)
    assert isinstance(week["hours_max"], int) and week["hours_max"] > 0
    # Only one payout.accrued for the booking (the consumer applies an event once).
    got = await system.simulator.notifications(type="payout.accrued", booking_id=booking_id)
    assert len(got["items"]) == 1


async def test_the_allowance_of_an_unknown_citizen_or_a_bad_month(system: Api) -> None:
    """A partner id the matcher never saw is a 404; a month that is not `YYYY-MM` a 400."""
    url, token = system.endpoints.matcher_url, system.endpoints.admin_token
    path = f"/v1/admin/citizens/{partner.new_partner_user_id()}/allowance"
    r = await system.raw(url, token, "GET", path)
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = await system.raw(url, token, "GET", path, params={"month": "2026-13"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_request"

"""End to end, the partner's pull API (issue 18): what the partner's engineers do with its
API token on the matcher — list open postings with pay, address and seats left, apply
through the signed webhook, read the application and the citizen's bookings, fetch what
changed since the last look — and what it is refused: no or a wrong token (401), a staff
token (403), a tampered cursor or an unknown parameter (400), unknown things (404, with a
Korean text). Only HTTP and signed webhooks, against the stack's processes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from shared.money import payout_won
from tools.api_client import ANY, Api, partner

from .conftest import (
    RATE_WON,
    FacilityMaker,
    citizen_at,
    eventually,
    shift,
    wait_decided,
    wait_notification,
    wait_status,
)

pytestmark = pytest.mark.stack

ADDRESS = "광주 광산구 수완로 12"
CONTACT = "062-960-0000"
MINUTES = 120


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def open_posting(system: Api, key: str, **fields: Any) -> str:
    start = await system.clock.get() + timedelta(days=3)
    posting = await system.facility(key).post_posting(shift(start, MINUTES, **fields))
    await wait_status(system, key, posting["id"], "open")
    return str(posting["id"])


async def partner_sees(system: Api, posting_id: str, **expected: Any) -> dict[str, Any]:
    """The posting as the partner reads it, once it shows `expected` (the matcher applies
    events asynchronously)."""

    async def check() -> dict[str, Any] | None:
        item = await system.partner_pull.get_posting(posting_id)
        if item is None or any(item.get(k) != v for k, v in expected.items()):
            return None
        return item

    return await eventually(check, what=f"posting {posting_id} with {expected}")


async def test_the_partner_lists_applies_reads_and_reconciles(
    system: Api, make_facility: FacilityMaker
) -> None:
    """A facility with an address and a phone posts two 2-seat shifts; the partner lists
    open postings with its token and finds them with the pay (rate and the whole shift's
    allowance), address, contact and every seat left, and the same in `posting.published`.
    Three citizens apply to the first through the signed webhook: two confirmed, one
    waitlisted #1 — each application reads so (status, position, booking id), the posting
    shows no seat left and a waitlist of one at a higher version, and `updated_since` the
    last look returns the first posting and not the untouched second. The citizens' "my
    shifts" list their bookings, soonest first; unknown ids are 404 with a Korean text."""
    facility = await make_facility(address=ADDRESS, contact_phone=CONTACT)
    key = facility["api_key"]
    first, second = await open_posting(system, key), await open_posting(system, key)

    published = await partner_sees(system, first, status="open")
    allowance_won = payout_won(RATE_WON, MINUTES)
    assert published["hourly_rate_won"] == RATE_WON
    assert published["shift_allowance_won"] == allowance_won
    assert published["facility_address"] == ADDRESS
    assert published["facility_contact"] == CONTACT
    assert published["seats_left"] == 2 and published["waitlist_length"] == 0
    assert published["selection"] == "first_come" and published["capacity"] == 2
    note = await wait_notification(system, "posting.published", posting_id=first)
    assert note["data"]["hourly_rate_won"] == RATE_WON
    assert note["data"]["shift_allowance_won"] == allowance_won
    assert note["data"]["facility_address"] == ADDRESS
    assert note["data"]["facility_contact"] == CONTACT
    assert note["data"]["seats_left"] == 2

    # Both postings reach the matcher through the registry's and the allowance's events,
    # each relay lingering up to OUTBOX_LINGER_MS: wait for the second one too.
    untouched = await partner_sees(system, second, status="open")
    just_before = at(published["updated_at"]) - timedelta(milliseconds=1)
    listed = await system.partner_pull.all_postings(
        status="open", updated_since=just_before.isoformat()
    )
    ids = [i["posting_id"] for i in listed]
    assert first in ids and second in ids
    assert all(i["status"] == "open" for i in listed)
    changed = [at(i["updated_at"]) for i in listed]
    assert changed == sorted(changed), "oldest change first"
    last_look = max(at(published["updated_at"]), at(untouched["updated_at"])).isoformat()

    now = await system.clock.get()
    citizens = [citizen_at(now) for _ in range(3)]
    apps = [partner.new_application_id() for _ in citizens]
    for app_id, citizen in zip(apps, citizens, strict=True):
        r = await system.partner.submit_application(
            posting_id=first, citizen=citizen, application_id=app_id
        )
        assert r.status_code == 202, r.text
        await wait_decided(system, app_id)

    reads = [await system.partner_pull.get_application(a) for a in apps]
    assert [r["status"] if r else None for r in reads] == ["confirmed", "confirmed", "waitlisted"]
    assert reads[2] is not None and reads[2]["waitlist_position"] == 1
    assert all(r is not None and r["booking_id"] for r in reads)
    assert reads[0] is not None and reads[0]["waitlist_position"] is None
    assert reads[0]["partner_user_id"] == citizens[0]["partner_user_id"]

    full = await partner_sees(system, first, seats_left=0, waitlist_length=1)
    assert full["version"] > published["version"]
    assert at(full["updated_at"]) > at(published["updated_at"])

    since = await system.partner_pull.all_postings(updated_since=last_look)
    since_ids = [i["posting_id"] for i in since]
    assert first in since_ids
    assert second not in since_ids, "an unchanged posting is not returned again"

    mine = await system.partner_pull.citizen_bookings(str(citizens[0]["partner_user_id"]))
    assert mine is not None and len(mine["items"]) == 1
    booking = mine["items"][0]
    assert booking["booking_id"] == reads[0]["booking_id"]
    assert booking["status"] == "confirmed" and booking["posting_id"] == first
    assert booking["shift_allowance_won"] == allowance_won
    assert booking["facility_address"] == ADDRESS
    code = booking["check_in_code"]
    assert isinstance(code, str) and len(code) == 6, "a confirmed booking shows its door code"
    confirmed_note = await wait_notification(
        system, "booking.confirmed", booking_id=booking["booking_id"]
    )
    assert confirmed_note["data"]["check_in_code"] == code
    waiting = await system.partner_pull.citizen_bookings(str(citizens[2]["partner_user_id"]))
    assert waiting is not None
    assert [(b["status"], b["waitlist_position"]) for b in waiting["items"]] == [("waitlisted", 1)]
    assert waiting["items"][0]["check_in_code"] is None, "told only once a seat is confirmed"
    later = await system.partner_pull.citizen_bookings(
        str(citizens[0]["partner_user_id"]), from_=(now + timedelta(days=30)).isoformat()
    )
    assert later is not None and later["items"] == []

    assert await system.partner_pull.get_posting("pst_nope") is None
    assert await system.partner_pull.get_application("app_nope") is None
    assert await system.partner_pull.citizen_bookings("karrot_nobody_ever") is None
    r = await system.partner_pull.request(
        "GET", "/v1/partner/postings/pst_nope", headers={"Accept-Language": "ko"}
    )
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["detail"] == "공고를 찾을 수 없습니다."


async def test_a_citizens_bookings_come_soonest_first_in_pages(
    system: Api, make_facility: FacilityMaker
) -> None:
    """One citizen booked on three shifts reads them soonest first, a page of one at a
    time, each page's cursor leading to the next; a tampered cursor is a 400 naming it."""
    key = (await make_facility())["api_key"]
    base = await system.clock.get() + timedelta(days=2)
    postings = []
    for days in (3, 1, 2):
        body = shift(base + timedelta(days=days), 60, capacity=1)
        posting = await system.facility(key).post_posting(body)
        postings.append((base + timedelta(days=days), str(posting["id"])))
    for _, pid in postings:
        await wait_status(system, key, pid, "open")
    citizen = citizen_at(await system.clock.get())
    for _, pid in postings:
        app_id = partner.new_application_id()
        await system.partner.submit_application(
            posting_id=pid, citizen=citizen, application_id=app_id
        )
        assert (await wait_decided(system, app_id))["status"] == "confirmed"

    who = str(citizen["partner_user_id"])
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(4):
        page = await system.partner_pull.citizen_bookings(who, limit=1, cursor=cursor)
        assert page is not None
        seen.extend(i["posting_id"] for i in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [pid for _, pid in sorted(postings)]

    r = await system.partner_pull.request(
        "GET", f"/v1/partner/citizens/{who}/bookings", params={"cursor": "bm90LWEtY3Vyc29y"}
    )
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["field"] == "cursor"


async def test_the_pull_api_refuses_other_callers_and_bad_parameters(system: Api) -> None:
    """No token, a made-up one (shaped like a partner token or not) → 401 problem; the
    admin token on the pull API and the partner token on the admin API → 403; a cursor
    edited by hand, or a misspelt filter → 400 naming it."""
    path = "/v1/partner/postings"
    for token in (None, "not-a-token", "pk_0123456789abcdef_" + "x" * 43):
        r = await system.partner_as(token).request("GET", path)
        assert r.status_code == 401, (token, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.headers.get("www-authenticate") == "Bearer"
    r = await system.raw(system.endpoints.matcher_url, system.endpoints.admin_token, "GET", path)
    assert r.status_code == 403, r.text
    r = await system.raw(
        system.endpoints.matcher_url,
        system.endpoints.partner_api_token,
        "GET",
        "/v1/admin/notifications",
    )
    assert r.status_code == 403, r.text

    page = await system.partner_pull.list_postings(limit=1)
    assert len(page["items"]) <= 1
    tampered = (page["next_cursor"] or "eyJ4IjoxfQ") + "x"
    r = await system.partner_pull.send("GET", path, params={"cursor": tampered}, expect=ANY)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "cursor", r.text
    r = await system.partner_pull.send("GET", path, params={"updated_after": "x"}, expect=ANY)
    assert r.status_code == 400 and "updated_after" in r.text
    r = await system.partner_pull.send("GET", path, params={"status": "draft"}, expect=ANY)
    assert r.status_code == 400, r.text

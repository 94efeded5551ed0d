"""End to end, flows 2–4 (applications, first-come and draw, withdrawals, promotion and a
facility's cancellation) and the partner contracts (BRIEF §6): signed webhooks in with
their answers, signed notifications out as the partner simulator received and verified
them. Only HTTP and signed webhooks, against the stack's processes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tools.api_client import ANY, Api, partner

from .conftest import (
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


@pytest.fixture(scope="module")
async def bad_signatures_before(system: Api) -> int:
    """The simulator's count of notifications it could not verify, before this module."""
    count: int = (await system.simulator.notifications())["bad_signatures"]
    return count


async def open_posting(
    system: Api, make_facility: FacilityMaker, *, days: float = 2, **fields: object
) -> tuple[str, dict[str, object]]:
    key = (await make_facility())["api_key"]
    start = await system.clock.get() + timedelta(days=days)
    posting = await system.facility(key).post_posting(shift(start, 120, **fields))
    await wait_status(system, key, posting["id"], "open")
    return key, posting


async def test_apply_confirm_waitlist_refuse_withdraw_and_promote(
    system: Api, make_facility: FacilityMaker, bad_signatures_before: int
) -> None:
    """Flows 2 and 4: on a one-seat first-come shift the first applicant is confirmed, the
    second waitlisted (position 1), a citizen from outside Gwangsan-gu refused
    `not_resident`; each is told by a signed notification the simulator verified. When the
    confirmed citizen withdraws (early: no strike), the waitlist's head is promoted and told
    `booking.promoted`; the roster shows the masked citizen, never the partner id."""
    key, posting = await open_posting(system, make_facility, capacity=1)
    pid = str(posting["id"])
    now = await system.clock.get()
    first, second, outsider = citizen_at(now), citizen_at(now), citizen_at(now, dong="치평동")
    ids = {name: partner.new_application_id() for name in ("first", "second", "outsider")}
    for name, who in (("first", first), ("second", second), ("outsider", outsider)):
        r = await system.partner.submit_application(
            posting_id=pid, citizen=who, application_id=ids[name]
        )
        assert r.status_code == 202, r.text
        await wait_decided(system, ids[name])

    confirmed = await wait_notification(system, "booking.confirmed", application_id=ids["first"])
    waitlisted = await wait_notification(system, "booking.waitlisted", application_id=ids["second"])
    refused = await wait_notification(system, "booking.rejected", application_id=ids["outsider"])
    assert waitlisted["data"]["waitlist_position"] == 1
    assert refused["data"]["reason"] == "not_resident"

    async def roster_both() -> dict[str, object] | None:
        # The roster is the registry's read model, fed by Kafka: the partner can hear of
        # both decisions before the registry has applied the second.
        r = await system.facility(key).get_roster(pid)
        statuses = [e["status"] for e in r["entries"]]
        return r if statuses == ["confirmed", "waitlisted"] else None

    roster = await eventually(roster_both, what="the roster to show both decisions")
    assert first["partner_user_id"] not in str(roster)

    r = await system.partner.withdraw_application(
        posting_id=pid, application_id=ids["first"], partner_user_id=str(first["partner_user_id"])
    )
    assert r.status_code == 202
    cancelled = await wait_notification(system, "booking.cancelled", application_id=ids["first"])
    assert cancelled["data"]["cancelled_by"] == "citizen" and cancelled["data"]["strike"] is False
    await wait_notification(system, "booking.promoted", application_id=ids["second"])
    promoted = await wait_decided(system, ids["second"])
    assert promoted["status"] == "confirmed"
    assert confirmed["data"]["booking_id"] != promoted["booking_id"]

    async def roster_promoted() -> dict[str, object] | None:
        r = await system.facility(key).get_roster(pid)
        entries = r["entries"]
        ok = len(entries) == 1 and entries[0]["booking_id"] == promoted["booking_id"]
        return r if ok and entries[0]["status"] == "confirmed" else None

    await eventually(roster_promoted, what="the roster to show the promoted booking")
    assert (await system.simulator.notifications())["bad_signatures"] == bad_signatures_before


async def test_an_application_before_the_posting_is_published_is_held_not_lost(
    system: Api, make_facility: FacilityMaker
) -> None:
    """Flow 2's ordering edge: an application sent the instant the shift is submitted (before
    the budget answered and the matcher saw it) is held, then decided once it opens."""
    key = (await make_facility())["api_key"]
    start = await system.clock.get() + timedelta(days=2)
    posting = await system.facility(key).post_posting(shift(start, 60, capacity=3))
    app_id = partner.new_application_id()
    r = await system.partner.submit_application(
        posting_id=posting["id"], citizen=citizen_at(start), application_id=app_id
    )
    assert r.status_code == 202
    assert (await wait_decided(system, app_id))["status"] == "confirmed"


async def test_a_draw_decides_at_close_reproducibly_and_is_kept_for_audit(
    system: Api, make_facility: FacilityMaker
) -> None:
    """Flow 3: on a draw shift applications stay pending until `applications_close_at`; when
    the clock passes it the seeded draw confirms exactly the seats and waitlists the rest,
    and the stored draw (seed, inputs, outcome) re-runs to the same result."""
    now = await system.clock.get()
    close_at = now + timedelta(minutes=30)
    _, posting = await open_posting(
        system, make_facility, capacity=2, selection="draw",
        applications_close_at=close_at.isoformat(),
    )  # fmt: skip
    pid = str(posting["id"])
    app_ids = [partner.new_application_id() for _ in range(5)]
    for app_id in app_ids:
        r = await system.partner.submit_application(
            posting_id=pid, citizen=citizen_at(now), application_id=app_id
        )
        assert r.status_code == 202

    async def all_pending() -> bool | None:
        apps = await system.matcher_admin.posting_applications(pid)
        return True if len(apps) == 5 and {a["status"] for a in apps} == {"pending"} else None

    await eventually(all_pending, what="five pending draw applications")
    await move_clock(system, close_at + timedelta(minutes=1))
    decided = [await wait_decided(system, a) for a in app_ids]
    statuses = sorted(d["status"] for d in decided)
    assert statuses == ["confirmed", "confirmed", "waitlisted", "waitlisted", "waitlisted"]
    draw = await system.matcher_admin.get_draw(pid)
    assert draw is not None and draw["seed"] and len(draw["inputs"]) == 5
    verified = await system.matcher_admin.verify_draw(pid)
    assert verified["matches"] is True and verified["seed_matches"] is True, verified


async def test_a_facility_cancellation_cancels_bookings_and_releases_the_budget(
    system: Api, make_facility: FacilityMaker, budget_room: BudgetRoom
) -> None:
    """Flow 4: cancelling a shift with two confirmed bookings cancels both (by the facility,
    no strike, the partner told), closes it for the partner, and gives its whole reservation
    back to the available budget."""
    start = await system.clock.get() + timedelta(days=2)
    year = seoul_year(start)
    await budget_room(year, 1_000_000)
    key = (await make_facility())["api_key"]
    posting = await system.facility(key).post_posting(shift(start, 120, capacity=2))
    await wait_status(system, key, posting["id"], "open")
    assert (await system.finance.get_budget(fiscal_year=year))["available_won"] < 1_000_000
    app_ids = [partner.new_application_id() for _ in range(2)]
    for app_id in app_ids:
        await system.partner.submit_application(
            posting_id=posting["id"], citizen=citizen_at(start), application_id=app_id
        )
        assert (await wait_decided(system, app_id))["status"] == "confirmed"

    cancelled = await system.facility(key).cancel_posting(posting["id"], note="우천")
    assert cancelled["status"] == "cancelled"
    for app_id in app_ids:
        note = await wait_notification(system, "booking.cancelled", application_id=app_id)
        assert note["data"]["cancelled_by"] == "facility" and note["data"]["strike"] is False
    closed = await wait_notification(system, "posting.closed", posting_id=posting["id"])
    assert closed["data"]["status"] == "cancelled"

    async def released() -> bool | None:
        budget = await system.finance.get_budget(fiscal_year=year)
        return True if budget["available_won"] == 1_000_000 else None

    await eventually(released, what="the reservation to be released")


# --- the webhook contract -------------------------------------------------------------------


async def test_webhook_answers_202_400_401_413_and_a_replay_has_one_effect(
    system: Api, make_facility: FacilityMaker
) -> None:
    """BRIEF §6 partner webhooks: a signed application is 202; a payload missing the citizen
    is 400 problem+json naming the field; a wrong secret, a stale timestamp, a malformed or
    missing signature are 401 (never 5xx); a body over the size limit is 413; and 60
    concurrent copies of one delivery (same webhook-id) are all 202 with exactly one
    application recorded (figure W)."""
    _, posting = await open_posting(system, make_facility, capacity=3)
    pid = str(posting["id"])
    now = await system.clock.get()
    good = partner.webhook_body(
        "application.submitted",
        {
            "application_id": partner.new_application_id(),
            "posting_id": pid,
            "citizen": citizen_at(now),
        },
    )
    bad = partner.webhook_body(
        "application.submitted", {"application_id": "app_x", "posting_id": pid}
    )
    r = await system.partner.send_webhook(bad, expect=ANY)
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
    assert "citizen" in r.text

    stale = datetime.now(UTC) - timedelta(minutes=10)
    wrong_secret = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="
    signed = partner.sign_headers(good, secret=system.endpoints.webhook_secret, webhook_id="msg_x")
    refusals = [
        await system.partner.send_webhook(good, secret=wrong_secret, expect=ANY),
        await system.partner.send_webhook(good, timestamp=stale, expect=ANY),
        await system.partner.send_webhook(
            good, headers={**signed, "webhook-signature": "v1,@@@"}, expect=ANY
        ),
        await system.partner.send_webhook(
            good, headers={**signed, "webhook-signature": "nonsense"}, expect=ANY
        ),
        await system.partner.send_webhook(
            good, headers={"content-type": "application/json"}, expect=ANY
        ),
    ]
    assert [x.status_code for x in refusals] == [401] * 5, [x.text for x in refusals]

    huge = partner.webhook_body(
        "application.submitted",
        {
            "application_id": "app_big",
            "posting_id": pid,
            "citizen": citizen_at(now),
            "pad": "x" * 40_000,
        },
    )
    assert (await system.partner.send_webhook(huge, expect=ANY)).status_code == 413

    webhook_id = partner.new_webhook_id()
    answers = await asyncio.gather(
        *(system.partner.send_webhook(good, webhook_id=webhook_id) for _ in range(60))
    )
    assert {a.status_code for a in answers} == {202}

    async def one_application() -> list[dict[str, object]] | None:
        apps = await system.matcher_admin.posting_applications(pid)
        return apps if apps and apps[0]["status"] != "pending" else None

    apps = await eventually(one_application, what="the application")
    await asyncio.sleep(1.0)  # late copies would show up now
    assert len(await system.matcher_admin.posting_applications(pid)) == 1 == len(apps)


async def test_every_notification_type_reaches_the_partner_signed(
    system: Api, make_facility: FacilityMaker, bad_signatures_before: int
) -> None:
    """The partner simulator verified the Standard Webhooks signature of every notification
    it received (bad signatures: 0) and has seen every type of BRIEF §6: the tests above
    produced all but `posting.updated`, which a PATCH here adds; none carries a birth date."""
    key, posting = await open_posting(system, make_facility, capacity=1)
    await system.facility(key).patch_posting(str(posting["id"]), {"title": "서가 정리"})
    await wait_notification(system, "posting.updated", posting_id=str(posting["id"]))
    got = await system.simulator.notifications()
    types = {n["type"] for n in got["items"]}
    wanted = {
        "posting.published", "posting.updated", "posting.closed", "booking.confirmed",
        "booking.waitlisted", "booking.rejected", "booking.promoted", "booking.cancelled",
    }  # fmt: skip
    assert wanted <= types, wanted - types
    assert got["bad_signatures"] == bad_signatures_before
    assert all(n["webhook_id"] and n["timestamp"] for n in got["items"])
    assert not any("birth_date" in str(n["data"]) for n in got["items"])

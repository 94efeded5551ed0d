"""End to end, flow 1 (the posting saga) and the facility and admin API contracts (BRIEF §6),
driven only through HTTP against the stack's three service processes."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tools.api_client import Api

from .conftest import (
    RATE_WON,
    BudgetRoom,
    FacilityMaker,
    seoul_year,
    shift,
    wait_notification,
    wait_status,
)

pytestmark = pytest.mark.stack


def reservation_won(capacity: int, minutes: int) -> int:
    return capacity * (RATE_WON * minutes // 60)


async def test_posting_saga_funds_a_shift_and_rejects_one_the_budget_cannot_carry(
    system: Api, make_facility: FacilityMaker, budget_room: BudgetRoom
) -> None:
    """A funded shift goes pending_budget → open (its reservation taken from the available
    budget to the won, the partner told `posting.published`); a shift costing more than is
    left goes to `rejected` with a reason the facility reads, and takes nothing.

    The fiscal year's budget is shared with every other suite on the stack, whose postings
    close and release their reservations in the background as the shared clock moves, so
    the year's `available_won` is not this test's to pin. The money this test moves is: the
    ledger's transactions of each posting (`GET /v1/ledger?posting_id=`) say exactly what
    was taken from the available budget for it."""
    facility = await make_facility()
    key = facility["api_key"]
    start = await system.clock.get() + timedelta(days=3)
    year = seoul_year(start)
    room = reservation_won(2, 120) + 10_000
    await budget_room(year, room)

    funded = await system.facility(key).post_posting(shift(start, 120, capacity=2))
    assert funded["status"] == "pending_budget"
    opened = await wait_status(system, key, funded["id"], "open", "rejected")
    assert opened["status"] == "open" and opened["reservation_id"]
    note = await wait_notification(system, "posting.published", posting_id=funded["id"])
    assert note["data"]["capacity"] == 2
    assert await taken_from_available(system, funded["id"]) == reservation_won(2, 120)

    # The most a shift can cost (200 seats × 8 h): more than any room the year has here.
    too_big = await system.facility(key).post_posting(shift(start, 480, capacity=200))
    rejected = await wait_status(system, key, too_big["id"], "open", "rejected")
    assert rejected["status"] == "rejected"
    assert rejected["rejection"]["reason"] and rejected["rejection"]["detail"]
    assert await taken_from_available(system, too_big["id"]) == 0
    assert await taken_from_available(system, funded["id"]) == reservation_won(2, 120)


async def taken_from_available(system: Api, posting_id: str) -> int:
    """What the posting's ledger transactions took from `budget_available` (a credit
    account: a debit takes from it), after checking they balance."""
    ledger = await system.finance.get_ledger(posting_id=posting_id, format="json")
    assert isinstance(ledger, dict)
    assert ledger["totals"]["debit_won"] == ledger["totals"]["credit_won"]
    return sum(
        int(e["amount_won"]) for e in ledger["entries"] if e["account"] == "budget_available"
    )


async def test_idempotency_key_replays_refuses_a_different_body_and_is_required(
    system: Api, make_facility: FacilityMaker
) -> None:
    """`Idempotency-Key` on POST /v1/postings: the same key and body replay the first answer
    (one posting, `Idempotent-Replayed`), the same key with another body is 422, and a POST
    without a key is 400."""
    key = (await make_facility())["api_key"]
    body = shift(await system.clock.get() + timedelta(days=4), 60, capacity=1)
    idem = uuid.uuid4().hex
    headers = {"Idempotency-Key": idem}
    first = await system.raw(system.endpoints.registry_url, key, "POST", "/v1/postings", json=body,
                          headers=headers)  # fmt: skip
    again = await system.raw(system.endpoints.registry_url, key, "POST", "/v1/postings", json=body,
                          headers=headers)  # fmt: skip
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    other = await system.raw(system.endpoints.registry_url, key, "POST", "/v1/postings",
                          json={**body, "capacity": 2}, headers=headers)  # fmt: skip
    assert other.status_code == 422
    missing = await system.raw(
        system.endpoints.registry_url, key, "POST", "/v1/postings", json=body
    )
    assert missing.status_code == 400
    listed = await system.facility(key).list_postings()
    assert [p["id"] for p in listed["data"]] == [first.json()["id"]]


async def test_a_facility_sees_and_touches_only_its_own_postings(
    system: Api, make_facility: FacilityMaker
) -> None:
    """Object-level authorization: another facility's posting is 404 for read, change,
    cancel, roster and attendance; the admin token is refused on the facility API (403), a
    facility key on the admin API (403), and no key at all is 401."""
    owner = (await make_facility())["api_key"]
    other = (await make_facility())["api_key"]
    posting = await system.facility(owner).post_posting(
        shift(await system.clock.get() + timedelta(days=5), 60, capacity=1)
    )
    pid = posting["id"]
    base = system.endpoints.registry_url
    calls = [
        ("GET", f"/v1/postings/{pid}", None),
        ("PATCH", f"/v1/postings/{pid}", {"title": "가로채기"}),
        ("POST", f"/v1/postings/{pid}/cancel", None),
        ("GET", f"/v1/postings/{pid}/roster", None),
        ("PUT", f"/v1/postings/{pid}/attendance",
         {"records": [{"booking_id": "bkg_x", "status": "no_show"}]}),
    ]  # fmt: skip
    for method, path, body in calls:
        r = await system.raw(base, other, method, path, json=body,
                          headers={"Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
        assert r.status_code == 404, (method, path, r.status_code)
    assert pid not in [p["id"] for p in (await system.facility(other).list_postings())["data"]]
    admin_on_facility = await system.raw(base, system.endpoints.admin_token, "GET", "/v1/postings")
    facility_on_admin = await system.raw(base, owner, "GET", "/v1/admin/facilities")
    nobody = await system.raw(base, None, "GET", f"/v1/postings/{pid}")
    assert (admin_on_facility.status_code, facility_on_admin.status_code) == (403, 403)
    assert nobody.status_code == 401
    assert nobody.headers["content-type"].startswith("application/problem+json")


async def test_patch_is_a_new_revision_and_the_partner_is_told(
    system: Api, make_facility: FacilityMaker
) -> None:
    """PATCH of an open posting's title makes revision 1 and reaches the partner as a signed
    `posting.updated`; unknown fields (mass assignment of status) are refused with 400."""
    key = (await make_facility())["api_key"]
    posting = await system.facility(key).post_posting(
        shift(await system.clock.get() + timedelta(days=5), 60, capacity=1)
    )
    await wait_status(system, key, posting["id"], "open")
    changed = await system.facility(key).patch_posting(posting["id"], {"title": "그림책 읽어주기"})
    assert changed["revision"] == 1 and changed["title"] == "그림책 읽어주기"
    note = await wait_notification(system, "posting.updated", posting_id=posting["id"])
    assert note["data"]["title"] == "그림책 읽어주기"
    sneaky = await system.raw(system.endpoints.registry_url, key, "PATCH",
                           f"/v1/postings/{posting['id']}", json={"status": "closed"})  # fmt: skip
    assert sneaky.status_code == 400


async def test_admin_registers_rotates_and_suspends_facilities(
    system: Api, make_facility: FacilityMaker
) -> None:
    """The admin API: a new facility's key is shown once and works; after a rotation the old
    key is refused (no overlap configured) and the new one works; a suspension cancels the
    facility's open postings (the partner is told `posting.closed`, cancelled) and its key is
    refused; the facility list shows it suspended."""
    facility = await make_facility(kind="children_centre", requires_child_safety_check=True)
    assert facility["api_key"] and facility["status"] == "active"
    old_key = facility["api_key"]
    posting = await system.facility(old_key).post_posting(
        shift(await system.clock.get() + timedelta(days=6), 60, capacity=1)
    )
    await wait_status(system, old_key, posting["id"], "open")
    assert posting["requires_child_safety_check"] is True

    rotated = await system.registry_admin.rotate_facility_key(facility["id"])
    new_key = rotated["api_key"]
    assert new_key != old_key
    refused = await system.raw(system.endpoints.registry_url, old_key, "GET", "/v1/postings")
    assert refused.status_code == 401
    assert (await system.facility(new_key).list_postings())["data"][0]["id"] == posting["id"]

    suspended = await system.registry_admin.suspend_facility(facility["id"])
    assert suspended["facility"]["status"] == "suspended"
    assert suspended["cancelled_posting_ids"] == [posting["id"]]
    gone = await system.raw(system.endpoints.registry_url, new_key, "GET", "/v1/postings")
    assert gone.status_code == 401
    closed = await wait_notification(system, "posting.closed", posting_id=posting["id"])
    assert closed["data"]["status"] == "cancelled"

    listed: list[dict[str, object]] = []
    cursor: str | None = None
    while True:
        page = await system.registry_admin.list_facilities(
            limit=200, **({"cursor": cursor} if cursor else {})
        )
        listed += page["data"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    mine = [f for f in listed if f["id"] == facility["id"]]
    assert mine and mine[0]["status"] == "suspended" and "api_key" not in mine[0]


async def test_every_service_answers_health_readiness_metrics_and_docs(system: Api) -> None:
    """BRIEF §6, every service: /healthz and /readyz 200 (Kafka and Postgres reachable),
    Prometheus text at /metrics, the OpenAPI document and its /docs page, and the AsyncAPI
    document of the topics."""
    for base in (
        system.endpoints.registry_url,
        system.endpoints.matcher_url,
        system.endpoints.allowance_url,
    ):
        for path in ("/healthz", "/readyz", "/docs", "/openapi.json", "/asyncapi.json"):
            r = await system.raw(base, None, "GET", path)
            assert r.status_code == 200, (base, path, r.status_code)
        metrics = await system.raw(base, None, "GET", "/metrics")
        assert metrics.status_code == 200 and "# TYPE" in metrics.text
        openapi = (await system.raw(base, None, "GET", "/openapi.json")).json()
        assert openapi["paths"], base

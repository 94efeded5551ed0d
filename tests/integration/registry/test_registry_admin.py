"""Administration that does not need a developer (issue 15), on the running registry: an
administrator edits a facility, lifts a suspension and rotates a key with an overlap; every
change is on record (who, when, what) in an append-only table; bad edits change nothing."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from shared.gwangsan import GWANGSAN_DONGS
from tests.integration.registry.registry_client import Registry

pytestmark = pytest.mark.stack

KO = {"Accept-Language": "ko"}


async def test_an_admin_edits_a_facility_and_the_change_is_on_record(
    registry: Registry, stack_env: dict[str, str]
) -> None:
    """PATCH changes only the fields sent (trimmed; address and phone may be cleared); the
    audit rows say registered then edited, by whom, from what to what. Unknown fields, a
    dong outside Gwangsan-gu, a blank or null name, an empty body are 400 naming the field
    (Korean with `Accept-Language: ko`) and change nothing; an unknown facility is 404; a
    facility key is 403. The audit table refuses UPDATE and DELETE."""
    fac = await registry.create_facility(address="수완로 1", contact_phone="062-000-0000")
    path = f"/v1/admin/facilities/{fac['id']}"
    edited = await registry.request(
        registry.admin_token,
        "PATCH",
        path,
        json={"name": "  새 이름 작은도서관 ", "dong": "첨단2동", "contact_phone": None},
        headers={"X-Staff-Id": "kim"},
    )
    assert edited.status_code == 200, edited.text
    after = edited.json()
    assert (after["name"], after["dong"], after["contact_phone"]) == (
        "새 이름 작은도서관",
        "첨단2동",
        None,
    )
    assert after["address"] == "수완로 1" and after["kind"] == fac["kind"]

    for body, field in (
        ({"status": "active"}, "status"),
        ({"dong": "역삼동"}, "dong"),
        ({"name": "   "}, "name"),
        ({"name": None}, "name"),
        ({"kind": "school"}, "kind"),
        ({}, "body"),
    ):
        refused = await registry.request(registry.admin_token, "PATCH", path, json=body, headers=KO)
        assert refused.status_code == 400, (body, refused.text)
        problem = refused.json()
        assert problem["detail"] and problem["detail_en"], problem
        if field != "body":
            assert field in {e["field"] for e in problem["errors"]}, problem
    unchanged = await registry.api.registry_admin.get_facility(fac["id"])
    assert unchanged == after

    missing = await registry.request(
        registry.admin_token,
        "PATCH",
        "/v1/admin/facilities/fac_nope",
        json={"name": "x"},
        headers=KO,
    )
    assert missing.status_code == 404 and missing.json()["detail"] == "그런 기관이 없습니다."
    as_facility = await registry.request(fac["api_key"], "PATCH", path, json={"name": "x"})
    assert as_facility.status_code == 403

    changes = await registry.api.registry_admin.facility_changes(fac["id"])
    assert [c["action"] for c in changes] == ["registered", "edited"]
    edit = changes[1]
    assert edit["changes"] == {
        "name": {"from": fac["name"], "to": "새 이름 작은도서관"},
        "dong": {"from": "수완동", "to": "첨단2동"},
        "contact_phone": {"from": "062-000-0000", "to": None},
    }
    assert (edit["actor_role"], edit["actor_staff_id"], edit["staff_id_self_declared"]) == (
        "admin",
        "kim",
        True,
    )
    assert edit["request_id"] and edit["at"] and edit["recorded_at"]

    conn = await asyncpg.connect(stack_env["DATABASE_URL"])
    try:
        for statement in (
            "UPDATE registry.facility_changes SET actor_role = 'x' WHERE facility_id = $1",
            "DELETE FROM registry.facility_changes WHERE facility_id = $1",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement, fac["id"])
    finally:
        await conn.close()
    assert "첨단2동" in GWANGSAN_DONGS


async def test_resume_lifts_a_suspension_with_a_new_key(registry: Registry) -> None:
    """Suspending stops the facility's keys and cancels its pending and open postings.
    Resuming makes it active with a new key (shown once); the old key stays dead and the
    cancelled postings stay cancelled; resuming an active facility is 409."""
    fac = await registry.create_facility()
    old_key = fac["api_key"]
    posting = await registry.submit(old_key)
    admin = registry.api.registry_admin
    suspended = await admin.suspend_facility(fac["id"])
    assert posting["id"] in suspended["cancelled_posting_ids"]
    assert (await registry.request(old_key, "GET", "/v1/postings")).status_code == 401

    resumed = await admin.resume_facility(fac["id"])
    assert resumed["facility"]["status"] == "active"
    assert resumed["facility"]["suspended_at"] is None
    new_key = resumed["api_key"]
    assert (await registry.request(old_key, "GET", "/v1/postings")).status_code == 401
    mine = await registry.facility(new_key).get_posting(posting["id"])
    assert mine["status"] == "cancelled" and mine["cancel_reason"] == "facility_suspended"

    again = await registry.request(
        registry.admin_token, "POST", f"/v1/admin/facilities/{fac['id']}/resume", headers=KO
    )
    assert again.status_code == 409 and again.json()["code"] == "facility_not_suspended"
    assert again.json()["detail"] == "이용이 정지된 기관이 아닙니다."
    missing = await registry.request(
        registry.admin_token, "POST", "/v1/admin/facilities/fac_nope/resume"
    )
    assert missing.status_code == 404
    actions = [c["action"] for c in await admin.facility_changes(fac["id"])]
    assert actions == ["registered", "suspended", "resumed"]


async def test_a_rotated_out_key_works_during_the_overlap_and_not_after(
    registry: Registry,
) -> None:
    """`overlap_s`: the old key keeps working that long (moved on the shared clock), then
    401; the new key works throughout. An overlap above the bound is 400 naming it and
    issues no key."""
    fac = await registry.create_facility()
    old_key = fac["api_key"]
    admin = registry.api.registry_admin
    too_long = await registry.request(
        registry.admin_token,
        "POST",
        f"/v1/admin/facilities/{fac['id']}/keys/rotate",
        json={"overlap_s": 10**9},
    )
    assert too_long.status_code == 400 and "overlap_s" in too_long.text
    bounded = await registry.request(
        registry.admin_token,
        "POST",
        f"/v1/admin/facilities/{fac['id']}/keys/rotate",
        json={"overlap_s": 30 * 24 * 3600},  # within the schema, above the settings' week
    )
    assert bounded.status_code == 400 and "overlap_s" in bounded.text
    assert (await registry.request(old_key, "GET", "/v1/postings")).status_code == 200

    rotated = await admin.rotate_facility_key(fac["id"], overlap_s=3600)
    assert rotated["overlap_s"] == 3600
    new_key = rotated["api_key"]
    for key in (old_key, new_key):
        assert (await registry.request(key, "GET", "/v1/postings")).status_code == 200

    now = await registry.now()
    await registry.move_clock_to(now + timedelta(seconds=3601))
    assert (await registry.request(old_key, "GET", "/v1/postings")).status_code == 401
    assert (await registry.request(new_key, "GET", "/v1/postings")).status_code == 200
    rotations = [c for c in await admin.facility_changes(fac["id"]) if c["action"] == "key_rotated"]
    assert [r["changes"]["overlap_s"] for r in rotations] == [3600]

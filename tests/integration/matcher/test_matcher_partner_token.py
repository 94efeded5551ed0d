"""The partner's API token on the running matcher: only its hash is stored; a rotation
(admin, audited) issues a new token at once, the previous one keeps working for the
overlap and is refused after it; a posting's `version` grows with every
change the partner can see and with nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg
import pytest

from shared.auth import hash_secret, key_id_of
from tools.api_client import Api, Endpoints

pytestmark = pytest.mark.stack


@pytest.fixture
async def api(stack_env: dict[str, str]) -> AsyncIterator[Api]:
    async with Api(Endpoints.from_env(stack_env)) as client:
        yield client


@pytest.fixture
async def db(admin_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(admin_dsn)
    yield conn
    await conn.close()


async def test_a_rotated_token_works_for_the_overlap_and_is_refused_after(
    api: Api, db: asyncpg.Connection, stack_env: dict[str, str]
) -> None:
    """The configured token is stored as its SHA-256 only. A rotation with a 3 s overlap
    answers a new token that works at once; the configured one still works within the
    overlap and is 401 after it, while the new one goes on working; the rotation is
    audited with the admin's label and request id. (Afterwards the configured token is
    made current again, for the suites that share the stack.)"""
    configured = stack_env["PARTNER_API_TOKEN"]
    key_id = key_id_of(configured, "pk_")
    assert key_id is not None
    stored = await db.fetchrow(
        "SELECT secret_hash, expires_at FROM matcher.partner_tokens WHERE key_id = $1", key_id
    )
    assert stored is not None and stored["secret_hash"] == hash_secret(configured)
    dump = await db.fetchval("SELECT string_agg(t::text, ' ') FROM matcher.partner_tokens t")
    assert configured not in dump

    path = "/v1/partner/postings"
    try:
        rotated = await api.matcher_admin.rotate_partner_token(overlap_s=3)
        fresh = str(rotated["token"])
        assert fresh.startswith("pk_") and fresh != configured
        assert (await api.partner_as(fresh).request("GET", path)).status_code == 200
        assert (await api.partner_as(configured).request("GET", path)).status_code == 200
        await asyncio.sleep(3.5)
        refused = await api.partner_as(configured).request("GET", path)
        assert refused.status_code == 401, refused.text
        assert (await api.partner_as(fresh).request("GET", path)).status_code == 200

        audit = await db.fetchrow(
            "SELECT action, staff, request_id, previous_valid_until"
            " FROM matcher.partner_token_audit WHERE key_id = $1",
            rotated["key_id"],
        )
        assert audit is not None and audit["action"] == "rotated"
        assert audit["staff"] == "admin" and audit["request_id"]
        too_long = await api.matcher_admin.send(
            "POST",
            "/v1/admin/partner/token/rotate",
            json={"overlap_s": 10**9},
            expect=(400,),
        )
        assert too_long.json()["errors"][0]["field"] == "overlap_s"
    finally:
        await db.execute(
            "UPDATE matcher.partner_tokens SET expires_at = CASE WHEN key_id = $1 THEN NULL"
            " ELSE least(coalesce(expires_at, now()), now()) END",
            key_id,
        )
    assert (await api.partner_as(configured).request("GET", path)).status_code == 200


async def test_version_grows_with_what_the_partner_sees_and_nothing_else(
    db: asyncpg.Connection,
) -> None:
    """On a scratch posting row: a change of the counts, the terms or the status bumps
    `version` by one and moves `changed_at` forward; touching only bookkeeping (the
    `updated_at`, the queue counter) leaves both as they were."""
    pid = "pst_version_probe_" + str(id(db))
    probe = db.transaction()
    await probe.start()
    try:
        await db.execute(
            """
            INSERT INTO matcher.postings (posting_id, facility_id, facility_name, facility_dong,
                title, starts_at, ends_at, capacity, selection, status, waitlist_max,
                published_at)
            VALUES ($1, 'fac_v', '시설', '수완동', '제목', now() + interval '2 days',
                    now() + interval '2 days 2 hours', 2, 'first_come', 'open', 10, now())
            """,
            pid,
        )

        async def state() -> tuple[int, datetime]:
            row = await db.fetchrow(
                "SELECT version, changed_at FROM matcher.postings WHERE posting_id = $1", pid
            )
            assert row is not None
            return int(row["version"]), row["changed_at"]

        v1, at1 = await state()
        assert v1 == 1
        await db.execute(
            "UPDATE matcher.postings SET queue_next = queue_next + 5, updated_at = now()"
            " WHERE posting_id = $1",
            pid,
        )
        assert await state() == (v1, at1)
        await db.execute(
            "UPDATE matcher.postings SET waitlisted_count = 1 WHERE posting_id = $1", pid
        )
        v2, at2 = await state()
        assert v2 == 2 and at2 >= at1
        await db.execute("UPDATE matcher.postings SET title = '새 제목' WHERE posting_id = $1", pid)
        await db.execute("UPDATE matcher.postings SET status = 'closed' WHERE posting_id = $1", pid)
        assert (await state())[0] == 4
    finally:
        await probe.rollback()

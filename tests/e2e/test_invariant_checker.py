"""The invariant checker finds what it is there to find: run against a throwaway database
with the three services' real schemas, where rows the services would never write (but the
database cannot refuse) are put by hand, it names each violation and its ids; on the clean
database it holds."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from shared import migrations, provision
from tools import invariants

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {
    "registry": ROOT / "services/registry/registry/migrations",
    "matcher": ROOT / "services/matcher/matcher/migrations",
    "allowance": ROOT / "services/allowance/allowance/migrations",
}
T0 = datetime(2031, 3, 2, 1, 0, tzinfo=UTC)


@pytest.fixture
async def scratch_dsn(admin_dsn: str) -> AsyncIterator[str]:
    """A new database with the registry, matcher and allowance schemas migrated."""
    name = f"inv_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_dsn)
    dsn = urlunsplit(parts._replace(path=f"/{name}"))
    try:
        conn = await asyncpg.connect(dsn)
        try:
            await provision.create_shared_clock(conn)
            for schema, directory in SERVICES.items():
                await conn.execute(f'CREATE SCHEMA "{schema}"')
                await migrations.apply(conn, schema, directory)
        finally:
            await conn.close()
        yield dsn
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_the_checker_names_each_violation_and_holds_on_a_clean_database(
    scratch_dsn: str,
) -> None:
    """Clean: it holds. Then an attended shift the allowance never paid, an outbox row never
    published, an application left pending on a first-come posting and a dead letter are
    each reported with their ids; a scope that leaves them out does not report the scoped
    ones (the outbox stays global)."""
    clean = await invariants.check(scratch_dsn)
    assert clean.ok, clean.problems

    conn = await asyncpg.connect(scratch_dsn)
    try:
        # Each service's triggers name their tables unqualified (the service's search_path).
        await conn.execute("SET search_path TO registry")
        await conn.execute(
            """INSERT INTO registry.facilities (id, name, kind, dong, requires_child_safety_check,
                                                created_at)
               VALUES ('fac_1', '작은도서관', 'small_library', '수완동', false, $1)""",
            T0,
        )
        await conn.execute(
            """INSERT INTO registry.postings (id, facility_id, title, starts_at, ends_at, capacity,
                   selection, requires_child_safety_check, status, reservation_id, created_at,
                   updated_at, published_at)
               VALUES ('pst_1', 'fac_1', '책 정리', $1, $2, 2, 'first_come', false, 'open',
                       'rsv_1', $1, $1, $1)""",
            T0,
            T0 + timedelta(hours=2),
        )
        await conn.execute(
            """INSERT INTO registry.bookings (booking_id, posting_id, application_id, citizen_id,
                   citizen_display, status, confirmed_at, updated_at)
               VALUES ('bkg_1', 'pst_1', 'app_1', 'ctz_1', 'kar…01', 'confirmed', $1, $1)""",
            T0,
        )
        await conn.execute(
            """INSERT INTO registry.attendance (attendance_id, booking_id, posting_id, citizen_id,
                   status, minutes, checked_in_at, checked_out_at, revision, recorded_at,
                   updated_at)
               VALUES ('att_1', 'bkg_1', 'pst_1', 'ctz_1', 'attended', 120, $1, $2, 1, $2, $2)""",
            T0,
            T0 + timedelta(hours=2),
        )
        await conn.execute("SET search_path TO matcher")
        await conn.execute(
            """INSERT INTO matcher.citizens (citizen_id, partner_user_id, display, dong,
                   neighbourhood_verified_at, adult_from, child_safety_check,
                   profile_received_at)
               VALUES ('ctz_2', 'karrot_2', 'kar…02', '수완동', $1, '2009-01-01', true, $1)""",
            T0,
        )
        no = await conn.fetchval("SELECT citizen_no FROM matcher.citizens")
        await conn.execute(
            """INSERT INTO matcher.postings (posting_id, facility_id, facility_name, facility_dong,
                   title, starts_at, ends_at, capacity, selection, status, waitlist_max,
                   published_at)
               VALUES ('pst_2', 'fac_1', '작은도서관', '수완동', '책 정리', $1, $2, 1,
                       'first_come', 'open', 10, $1)""",
            T0,
            T0 + timedelta(hours=1),
        )
        await conn.execute(
            """INSERT INTO matcher.applications (application_id, posting_id, citizen_id,
                   citizen_no, webhook_id, received_at, status, starts_at, ends_at)
               VALUES ('app_2', 'pst_2', 'ctz_2', $1, 'msg_2', $2, 'pending', $2, $3)""",
            no,
            T0,
            T0 + timedelta(hours=1),
        )
        await conn.execute(
            """INSERT INTO allowance.outbox (event_id, topic, key, event_type, payload)
               VALUES ($1, 'allowance.payouts.v1', 'ctz_1', 'PayoutAccrued', '\\x7b7d')""",
            uuid.uuid4(),
        )
        await conn.execute(
            """INSERT INTO matcher.dead_letters (topic, partition, "offset", error, attempts)
               VALUES ('registry.postings.v1', 0, 7, 'boom', 3)"""
        )
    finally:
        await conn.close()

    report = await invariants.check(scratch_dsn)
    text = "\n".join(report.problems)
    assert not report.ok
    assert "att_1" in text and "never seen by the allowance" in text
    assert "app_2" in text and "pending" in text
    assert "allowance outbox" in text
    assert "matcher dead-lettered 1" in text
    assert report.figures["attended_minutes"] == 120

    scoped = await invariants.check(
        scratch_dsn, scope=invariants.Scope.of(posting_ids=["pst_other"], citizen_ids=["ctz_x"])
    )
    scoped_text = "\n".join(scoped.problems)
    assert "att_1" not in scoped_text and "app_2" not in scoped_text
    assert "matcher dead-lettered" not in scoped_text
    assert "allowance outbox" in scoped_text  # global, whatever the scope

"""Citizen data in the matcher's tables (issue 21): no birth date is kept (the migration
turns the stored ones into `adult_from`, docs/decisions/0013), and the retention sweep
clears the profile of a citizen idle for the retention period (PIPA art. 21), keeping the
pseudonymous row and anyone still active.

Each test runs the matcher's migrations into a fresh schema of the stack's Postgres."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from matcher import store
from matcher.domain.eligibility import Profile
from matcher.usecases import citizens

from shared import migrations
from shared.db import create_pool

pytestmark = pytest.mark.stack

MIGRATIONS = Path(store.__file__).parent / "migrations"
NOW = datetime(2027, 6, 1, 3, 0, tzinfo=UTC)
RETENTION = timedelta(days=365)


@pytest.fixture
async def conn(admin_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(admin_dsn)
    yield c
    await c.close()


async def _schema(conn: asyncpg.Connection, migrations_dir: Path) -> str:
    schema = f"t_cit_{datetime.now(UTC).strftime('%H%M%S%f')}"
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    await migrations.apply(conn, schema, migrations_dir)
    return schema


async def test_stored_birth_dates_become_adult_from(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    """Rows written before 0004 (with a birth date) keep only the first day of age 19;
    the birth date column is gone."""
    before = tmp_path / "migrations"
    before.mkdir()
    for sql in sorted(MIGRATIONS.glob("000[123]_*.sql")):
        shutil.copy(sql, before)
    schema = await _schema(conn, before)
    try:
        for i, born in enumerate([date(2004, 2, 29), date(1990, 5, 17), date(2008, 2, 29)]):
            await conn.execute(
                f"""INSERT INTO "{schema}".citizens (citizen_id, partner_user_id, display, dong,
                        neighbourhood_verified_at, birth_date, child_safety_check,
                        profile_received_at)
                    VALUES ($1, $2, 'kar…', '수완동', $3, $4, true, $3)""",
                f"ctz_{i}",
                f"karrot_{i}",
                NOW,
                born,
            )
        await migrations.apply(conn, schema, MIGRATIONS)
        got = await conn.fetch(f'SELECT citizen_id, adult_from FROM "{schema}".citizens')
        assert {r["citizen_id"]: r["adult_from"] for r in got} == {
            "ctz_0": date(2023, 3, 1),
            "ctz_1": date(2009, 5, 17),
            "ctz_2": date(2027, 3, 1),
        }
        columns = await conn.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = $1 AND table_name = 'citizens'",
            schema,
        )
        assert "birth_date" not in {c["column_name"] for c in columns}
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


async def _citizen(c: asyncpg.Connection, n: int, received_at: datetime) -> None:
    profile = Profile("수완동", received_at, date(2000, 1, 1), True)
    await store.upsert_citizens(c, [store.CitizenIn(f"karrot_{n}", profile, received_at)])


async def test_the_retention_sweep_clears_idle_profiles_only(
    conn: asyncpg.Connection, admin_dsn: str
) -> None:
    """Idle for the retention period → dong, 동네 인증, adult_from, safety flag cleared, the
    pseudonymous row kept; a recent profile, or an application whose shift ended inside
    the period, keeps it; the next application brings a fresh profile."""
    schema = await _schema(conn, MIGRATIONS)
    pool = await create_pool(admin_dsn, schema=schema, size_max=2)
    try:
        async with pool.acquire() as c:
            await _citizen(c, 1, NOW - RETENTION - timedelta(days=1))  # idle
            await _citizen(c, 2, NOW - RETENTION + timedelta(days=1))  # recent
            await _citizen(c, 3, NOW - RETENTION - timedelta(days=30))  # idle profile …
            ends = NOW - timedelta(days=100)  # … but a shift inside the period
            await c.execute(
                """INSERT INTO postings (posting_id, facility_id, facility_name, facility_dong,
                       title, starts_at, ends_at, capacity, selection, status, waitlist_max,
                       published_at)
                   VALUES ('pst_1', 'fac_1', '작은도서관', '수완동', '책 정리', $1, $2, 1,
                           'first_come', 'open', 10, $1)""",
                ends - timedelta(hours=1),
                ends,
            )
            await c.execute(
                """INSERT INTO applications (application_id, posting_id, citizen_id,
                       citizen_no, webhook_id, received_at, status, starts_at, ends_at)
                   SELECT 'app_1', 'pst_1', citizen_id, citizen_no, 'msg_1', $1, 'pending',
                          $1, $2 FROM citizens WHERE partner_user_id = 'karrot_3'""",
                ends - timedelta(hours=1),
                ends,
            )

        cleared = await citizens.clear_idle_profiles(pool, NOW, RETENTION, 100)
        assert cleared == 1
        assert await citizens.clear_idle_profiles(pool, NOW, RETENTION, 100) == 0

        async with pool.acquire() as c:
            rows = {
                r["partner_user_id"]: r
                for r in await c.fetch(
                    "SELECT partner_user_id, display, dong, neighbourhood_verified_at,"
                    " adult_from, child_safety_check, profile_received_at, profile_cleared_at"
                    " FROM citizens"
                )
            }
            gone = rows["karrot_1"]
            assert gone["display"]
            assert [
                gone[k]
                for k in (
                    "dong",
                    "neighbourhood_verified_at",
                    "adult_from",
                    "child_safety_check",
                    "profile_received_at",
                )
            ] == [None] * 5
            assert gone["profile_cleared_at"] == NOW
            assert rows["karrot_2"]["dong"] == "수완동"
            assert rows["karrot_3"]["dong"] == "수완동"

            # a later, even older replayed profile fills the cleared row again
            await _citizen(c, 1, NOW - RETENTION - timedelta(days=400))
            assert await c.fetchval(
                "SELECT adult_from FROM citizens WHERE partner_user_id = 'karrot_1'"
            ) == date(2000, 1, 1)
    finally:
        await pool.close()
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')

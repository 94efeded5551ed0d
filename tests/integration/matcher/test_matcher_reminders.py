"""Each notice before a booking's start goes out once per booking and kind (issue 18): a
sweep whose transaction dies before its commit (kill -9: Postgres rolls the transaction
back) leaves nothing behind, and sweeps run again, or by two replicas at once, never
write a second notification (`booking_reminders` primary key).

Runs the matcher's migrations into a fresh schema of the stack's Postgres, so the running
matcher never sees these rows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from matcher import store
from matcher.domain.eligibility import Profile
from matcher.settings import MatcherSettings
from matcher.usecases import reminders
from matcher.usecases.deps import Deps

from shared import migrations
from shared.db import create_pool
from shared.events import PostingPublished

pytestmark = pytest.mark.stack

MIGRATIONS = Path(store.__file__).parent / "migrations"
START = datetime(2027, 6, 10, 0, 0, tzinfo=UTC)


class Crash(Exception):
    """Stands for the process dying inside the transaction."""


@pytest.fixture
async def pool(
    admin_dsn: str, make_schema: Callable[[], Awaitable[str]]
) -> AsyncIterator[asyncpg.Pool]:
    schema = await make_schema()
    conn = await asyncpg.connect(admin_dsn)
    try:
        await migrations.apply(conn, schema, MIGRATIONS)
    finally:
        await conn.close()
    p = await create_pool(admin_dsn, schema=schema, size_max=4)
    yield p
    await p.close()


def deps_at(now: datetime) -> Deps:
    settings = MatcherSettings.model_construct()
    return Deps(
        policy=settings.policy(),
        now=lambda: now,
        held_application_wait=timedelta(minutes=10),
        schedule=settings.schedule(),
    )


async def _booking(pool: asyncpg.Pool, booked_at: datetime) -> str:
    """A posting starting at START with one booking confirmed at `booked_at`."""
    event = PostingPublished(
        posting_id="pst_reminded",
        facility_id="fac_1",
        facility_name="작은도서관",
        facility_dong="수완동",
        title="책 정리",
        starts_at=START,
        ends_at=START + timedelta(hours=2),
        capacity=2,
        selection="first_come",
        reservation_id="rsv_1",
    )
    async with pool.acquire() as c, c.transaction():
        await store.insert_posting(c, event, waitlist_max=10, now=booked_at)
        profile = Profile("수완동", booked_at, date(2000, 1, 1), True)
        citizen = (
            await store.upsert_citizens(c, [store.CitizenIn("karrot_1", profile, booked_at)])
        )["karrot_1"]
        await store.insert_applications(
            c,
            [
                store.NewApplication(
                    application_id="app_1",
                    posting_id=event.posting_id,
                    citizen_id=citizen.citizen_id,
                    citizen_no=citizen.citizen_no,
                    webhook_id="msg_1",
                    received_at=booked_at,
                    status="confirmed",
                    reason=None,
                    booking_id="bkg_1",
                    queue_pos=None,
                    starts_at=event.starts_at,
                    ends_at=event.ends_at,
                    decided_at=booked_at,
                    check_in_code="AC3DEF",
                )
            ],
        )
    return "app_1"


async def _reminders(pool: asyncpg.Pool) -> list[tuple[str, int]]:
    async with pool.acquire() as c:
        rows = await c.fetch(
            "SELECT type, payload FROM partner_notifications WHERE type = 'booking.reminder'"
        )
        kinds = await c.fetchval("SELECT count(*) FROM booking_reminders")
    assert kinds == len(rows)
    return [(r["type"], len(r["payload"])) for r in rows]


async def test_a_sweep_killed_before_commit_then_run_again_sends_once(
    pool: asyncpg.Pool,
) -> None:
    await _booking(pool, START - timedelta(days=5))
    deps = deps_at(START - timedelta(hours=23))

    async def crashing() -> None:
        async with pool.acquire() as c, c.transaction():
            await reminders.handle_booking(c, deps, "app_1")
            raise Crash

    with pytest.raises(Crash):
        await crashing()
    assert await _reminders(pool) == []  # the dead transaction left nothing

    assert await reminders.send_due_notices(pool, deps, 100) == 1
    assert len(await _reminders(pool)) == 1
    # run again, and by two replicas at once: nothing more is due, nothing more is sent
    assert await reminders.send_due_notices(pool, deps, 100) == 0
    async with pool.acquire() as c, c.transaction():
        await reminders.handle_booking(c, deps, "app_1")  # even when asked directly
    await asyncio.gather(*(reminders.send_due_notices(pool, deps, 100) for _ in range(2)))
    assert len(await _reminders(pool)) == 1

    later = deps_at(START - timedelta(hours=1))
    await asyncio.gather(*(reminders.send_due_notices(pool, later, 100) for _ in range(3)))
    assert len(await _reminders(pool)) == 2  # the 2 h one, once

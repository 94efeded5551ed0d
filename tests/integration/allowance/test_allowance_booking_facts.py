"""What the allowance keeps from the matcher's booking events (known citizens, and who
applied for the outcome reports), through its real handlers and consumer guard on a fresh
schema: a consumed batch (two statements for the whole run) ends where the same events
applied one at a time end, and a redelivered batch changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from allowance import handlers
from allowance.settings import AllowanceSettings

from shared import migrations
from shared.clock import FixedClock
from shared.consumer import EventConsumer, RawMessage
from shared.db import create_pool
from shared.events import (
    BookingConfirmed,
    BookingPromoted,
    BookingRejected,
    BookingWaitlisted,
    Event,
)

pytestmark = pytest.mark.stack

MIGRATIONS = Path(handlers.__file__).parent / "migrations"
NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@dataclass
class Ctx:
    """What the booking handlers use of a ServiceContext."""

    pool: asyncpg.Pool
    clock: FixedClock
    settings: AllowanceSettings = field(default_factory=AllowanceSettings)

    def now(self) -> datetime:
        return self.clock.now()


@pytest.fixture
async def ctx(admin_dsn: str, make_schema: Callable[[], Awaitable[str]]) -> AsyncIterator[Ctx]:
    """The allowance's tables in a fresh schema, so the running allowance never sees them."""
    schema = await make_schema()
    conn = await asyncpg.connect(admin_dsn)
    try:
        await migrations.apply(conn, schema, MIGRATIONS)
    finally:
        await conn.close()
    pool = await create_pool(admin_dsn, schema=schema, size_min=1, size_max=4)
    yield Ctx(pool, FixedClock(NOW))
    await pool.close()


def events(posting_id: str, tag: str) -> list[Event]:
    """A confirmed seat, a waitlisted application later promoted, a refusal, and the same
    citizen applying twice (counted once)."""
    common: dict[str, Any] = {
        "posting_id": posting_id,
        "starts_at": NOW + timedelta(days=1),
        "ends_at": NOW + timedelta(days=1, hours=2),
        "citizen_display": "당근***1",
    }

    def who(n: int) -> dict[str, Any]:
        return {
            **common,
            "booking_id": f"bkg_{tag}{n}",
            "application_id": f"app_{tag}{n}",
            "citizen_id": f"ctz_{tag}{n}",
        }

    return [
        BookingConfirmed(**who(1)),
        BookingWaitlisted(**who(2), waitlist_position=1),
        BookingRejected(
            posting_id=posting_id,
            application_id=f"app_{tag}3",
            citizen_id=f"ctz_{tag}3",
            citizen_display="당근***3",
            reason="weekly_hours_exceeded",
        ),
        BookingPromoted(**who(2)),
        BookingRejected(
            posting_id=posting_id,
            application_id=f"app_{tag}4",
            citizen_id=f"ctz_{tag}1",
            citizen_display="당근***1",
            reason="already_applied",
        ),
    ]


async def test_a_consumed_batch_of_booking_events_keeps_what_one_at_a_time_keeps(
    ctx: Ctx,
) -> None:
    consumer = EventConsumer(service="allowance", pool=ctx.pool, producer=None)
    handlers.register(consumer, ctx)  # type: ignore[arg-type]

    def raw(event: Event, offset: int) -> RawMessage:
        envelope = event.envelope(producer="matcher", occurred_at=NOW)
        return RawMessage(event.TOPIC, 0, offset, b"k", envelope.to_bytes())

    batch = [raw(e, i) for i, e in enumerate(events("pst_batch", "b"))]
    assert await consumer.process_batch(batch) == ["applied"] * 5
    assert await consumer.process_batch(batch) == ["duplicate"] * 5
    for i, event in enumerate(events("pst_single", "s")):
        assert await consumer.process(raw(event, i)) == "applied"

    async def kept(posting_id: str, tag: str) -> tuple[list[str], list[str]]:
        applicants = await ctx.pool.fetch(
            "SELECT citizen_id FROM posting_applicants WHERE posting_id = $1 ORDER BY citizen_id",
            posting_id,
        )
        citizens = await ctx.pool.fetch(
            "SELECT citizen_id, first_seen_in FROM citizens WHERE citizen_id LIKE $1"
            " ORDER BY citizen_id",
            f"ctz_{tag}%",
        )
        return (
            [r["citizen_id"].removeprefix(f"ctz_{tag}") for r in applicants],
            [
                f"{r['citizen_id'].removeprefix(f'ctz_{tag}')}:{r['first_seen_in']}"
                for r in citizens
            ],
        )

    batched = await kept("pst_batch", "b")
    assert batched == await kept("pst_single", "s")
    # Everyone who applied counts once; only those holding a seat became known citizens.
    assert batched == (["1", "2", "3"], ["1:booking", "2:booking"])

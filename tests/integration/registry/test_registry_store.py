"""The registry's schema, handlers and sweepers on a real Postgres (a fresh schema with the
registry's migrations): the invariants hold in the database even when code is bypassed,
and the timers close postings and report stale ones."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY as METRICS
from registry import handlers, store, sweepers
from registry.domain.attendance import AttendanceInput, attendance_id_for
from registry.domain.ids import new_id
from registry.domain.postings import PostingState, ShiftTerms
from registry.settings import RegistrySettings

from shared import migrations
from shared.clock import FixedClock
from shared.consumer import EventConsumer, RawMessage
from shared.db import create_pool
from shared.events import (
    BookingConfirmed,
    BookingPromoted,
    BookingWaitlisted,
    BudgetRejected,
    BudgetReserved,
    Envelope,
    Event,
)

pytestmark = pytest.mark.stack

MIGRATIONS = Path(handlers.__file__).parent / "migrations"
NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@dataclass
class Ctx:
    """What the sweepers and handlers use of a ServiceContext."""

    pool: asyncpg.Pool
    clock: FixedClock
    settings: RegistrySettings = field(default_factory=RegistrySettings)

    def now(self) -> datetime:
        return self.clock.now()


@pytest.fixture
async def ctx(admin_dsn: str) -> AsyncIterator[Ctx]:
    schema = f"t_reg_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    await migrations.apply(conn, schema, MIGRATIONS)
    pool = await create_pool(admin_dsn, schema=schema, size_min=1, size_max=4)
    try:
        yield Ctx(pool, FixedClock(NOW))
    finally:
        await pool.close()
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


async def facility(conn: asyncpg.Connection) -> str:
    fid = new_id("fac")
    await store.insert_facility(
        conn,
        facility_id=fid,
        name="n",
        kind="park",
        dong="평동",
        address=None,
        contact_phone=None,
        requires_child_safety_check=False,
        now=NOW,
    )
    return fid


async def posting(
    conn: asyncpg.Connection, fid: str, start_in: timedelta = timedelta(days=1), capacity: int = 2
) -> str:
    pid = new_id("pst")
    starts = NOW + start_in
    await store.insert_posting(
        conn,
        posting_id=pid,
        facility_id=fid,
        title="t",
        description="",
        terms=ShiftTerms(starts, starts + timedelta(hours=2), capacity, "first_come"),
        requires_child_safety_check=False,
        tags=[],
        now=NOW,
    )
    return pid


async def outbox_types(conn: asyncpg.Connection, key: str) -> list[str]:
    rows = await conn.fetch("SELECT event_type FROM outbox WHERE key = $1 ORDER BY id", key)
    return [r["event_type"] for r in rows]


async def test_the_database_enforces_the_posting_state_machine(ctx: Ctx) -> None:
    """Bypassing the code: a posting cannot open without a reservation id, cannot go back to
    pending or leave a terminal state, and cannot change facility."""
    async with ctx.pool.acquire() as conn:
        fid = await facility(conn)
        pid = await posting(conn, fid)
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE postings SET status = 'open' WHERE id = $1", pid)
        await store.open_posting(
            conn, pid, reservation_id="rsv_1", amount_won=1, budget_revision=1, now=NOW
        )
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE postings SET status = 'pending_budget' WHERE id = $1", pid)
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE postings SET status = 'rejected' WHERE id = $1", pid)
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE postings SET reservation_id = NULL WHERE id = $1", pid)
        other = await facility(conn)
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE postings SET facility_id = $2 WHERE id = $1", pid, other)
        await store.close_posting(conn, pid, NOW)
        for status in ("open", "cancelled", "pending_budget"):
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute("UPDATE postings SET status = $2 WHERE id = $1", pid, status)
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "UPDATE postings SET selection = 'draw', applications_close_at = NULL"
                " WHERE id = $1",
                pid,
            )


async def test_the_database_allows_attendance_only_for_seated_bookings_once(ctx: Ctx) -> None:
    """No attendance for a booking not in the roster (or of another posting), none for a
    waitlisted booking, and one record per booking."""
    async with ctx.pool.acquire() as conn:
        fid = await facility(conn)
        pid = await posting(conn, fid)
        other = await posting(conn, fid)
        entry = AttendanceInput("bkg_1", "attended")

        async def record(
            booking_id: str, posting_id: str, attendance_id: str | None = None
        ) -> None:
            await store.upsert_attendance(
                conn,
                attendance_id=attendance_id or attendance_id_for(booking_id),
                booking_id=booking_id,
                posting_id=posting_id,
                citizen_id="ctz_1",
                entry=entry,
                minutes=120,
                revision=1,
                now=NOW,
            )

        with pytest.raises(asyncpg.PostgresError):
            await record("bkg_1", pid)
        for booking_id, status, position in (
            ("bkg_1", "confirmed", None),
            ("bkg_2", "waitlisted", 1),
        ):
            await store.upsert_bookings(
                conn,
                [
                    store.HeldBooking(
                        booking_id=booking_id,
                        posting_id=pid,
                        application_id="app",
                        citizen_id="ctz_1",
                        citizen_display="당근***1",
                        status=status,
                        waitlist_position=position,
                        at=NOW,
                    )
                ],
            )
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await record("bkg_1", other)
        with pytest.raises(asyncpg.CheckViolationError):
            await record("bkg_2", pid)
        await record("bkg_1", pid)
        with pytest.raises(asyncpg.UniqueViolationError):
            await record("bkg_1", pid, attendance_id="att_other")
        assert await conn.fetchval("SELECT count(*) FROM attendance") == 1


async def test_budget_handlers_open_reject_and_revert_only_current_changes(ctx: Ctx) -> None:
    """Through the real handlers: BudgetReserved opens a pending posting once (with
    PostingPublished in the outbox); BudgetRejected for the submission of an open posting is
    ignored, of a pending one rejects it for good (a later reservation changes nothing); a
    refused change is reverted only while no later change moved capacity or times again."""
    routes: dict[type[Event], Any] = {}

    class Collect:
        def on(self, cls: type[Event], handler: Any) -> None:
            routes[cls] = handler

        def on_batch(self, cls: type[Event], handler: Any) -> None:
            pass  # the booking events; the roster's own test covers them

    handlers.register(Collect(), ctx)  # type: ignore[arg-type]

    async def deliver(event: Event) -> None:
        envelope = event.envelope(producer="allowance", occurred_at=NOW)
        async with ctx.pool.acquire() as conn, conn.transaction():
            await routes[type(event)](conn, envelope, event)

    async with ctx.pool.acquire() as conn:
        fid = await facility(conn)
        pid = await posting(conn, fid)
    reserved = BudgetReserved(
        posting_id=pid, reservation_id="rsv_1", fiscal_year=2026, amount_won=1, hourly_rate_won=1
    )
    await deliver(reserved)
    await deliver(reserved.model_copy(update={"reservation_id": "rsv_2"}))
    refusal = BudgetRejected(
        posting_id=pid, reason="r", requested_won=1, available_won=0, shortfall_won=1
    )
    await deliver(refusal)
    async with ctx.pool.acquire() as conn:
        row = await store.get_posting(conn, pid)
        assert row is not None
        assert row.status == "open" and row.reservation_id == "rsv_1"
        assert await outbox_types(conn, pid) == ["PostingPublished"]
        refused_id = await posting(conn, fid)
    await deliver(refusal.model_copy(update={"posting_id": refused_id}))
    await deliver(reserved.model_copy(update={"posting_id": refused_id}))
    async with ctx.pool.acquire() as conn:
        row = await store.get_posting(conn, refused_id)
        assert row is not None and row.status == "rejected" and row.reservation_id is None
        assert row.rejection_reason == "r" and "short by 1 won" in row.rejection_detail
        assert await outbox_types(conn, refused_id) == ["PostingRejected"]

        async def change(revision: int, capacity: int) -> None:
            async with conn.transaction():
                current = await store.get_posting(conn, pid, for_update=True)
                assert current is not None
                state = current.state
                new_terms = ShiftTerms(
                    state.terms.starts_at, state.terms.ends_at, capacity, "first_come"
                )
                await store.insert_revision(
                    conn,
                    pid,
                    revision=revision,
                    changed=["capacity"],
                    previous=state.terms,
                    new=new_terms,
                    cause="facility",
                    now=NOW,
                )
                new_state = PostingState("open", "t", "", (), new_terms)
                await store.apply_terms(conn, pid, state=new_state, revision=revision, now=NOW)

        await change(1, 4)
        await change(2, 6)
    await deliver(refusal.model_copy(update={"for_revision": 1}))  # superseded by 2
    async with ctx.pool.acquire() as conn:
        row = await store.get_posting(conn, pid)
        assert row is not None and row.capacity == 6 and row.last_update_rejected is None
    await deliver(refusal.model_copy(update={"for_revision": 2}))
    async with ctx.pool.acquire() as conn:
        row = await store.get_posting(conn, pid)
        assert row is not None and row.capacity == 4 and row.revision == 3
        assert row.last_update_rejected["revision"] == 2
        assert await outbox_types(conn, pid) == ["PostingPublished", "PostingUpdated"]
        payload = await conn.fetchval(
            "SELECT payload FROM outbox WHERE event_type = 'PostingUpdated'"
        )
        updated = Envelope.from_bytes(payload).data
        assert updated["revision"] == 3 and updated["capacity"] == 4
        assert updated["previous_capacity"] == 6


async def test_a_consumed_batch_of_booking_events_keeps_the_roster_as_one_at_a_time(
    ctx: Ctx,
) -> None:
    """The roster's batch handler (one lock, one upsert per run of distinct bookings) ends
    exactly where the same events applied one by one end, including a booking waitlisted
    and promoted within one batch and a booking of a posting that is not the registry's
    (ignored); a redelivered batch changes nothing."""
    consumer = EventConsumer(service="registry", pool=ctx.pool, producer=None)
    handlers.register(consumer, ctx)  # type: ignore[arg-type]
    async with ctx.pool.acquire() as conn:
        fid = await facility(conn)
        batched, single = await posting(conn, fid), await posting(conn, fid)

    def events(pid: str) -> list[Event]:
        held: dict[str, Any] = {
            "posting_id": pid,
            "starts_at": NOW + timedelta(days=1),
            "ends_at": NOW + timedelta(days=1, hours=2),
            "citizen_display": "당근***1",
        }

        def who(n: int) -> dict[str, Any]:
            return {
                **held,
                "booking_id": f"bkg_{pid}_{n}",
                "application_id": f"app_{pid}_{n}",
                "citizen_id": f"ctz_{n}",
            }

        return [
            BookingWaitlisted(**who(1), waitlist_position=1),
            BookingConfirmed(**who(2), check_in_code="K7M2QX", display_name="김당근"),
            BookingPromoted(**who(1), check_in_code="P4RT9Z"),
            BookingConfirmed(**{**who(3), "posting_id": "pst_not_ours"}),
            BookingWaitlisted(**who(4), waitlist_position=1),
        ]

    def raw(event: Event, offset: int) -> RawMessage:
        envelope = event.envelope(producer="matcher", occurred_at=NOW + timedelta(seconds=offset))
        return RawMessage(event.TOPIC, 0, offset, b"k", envelope.to_bytes())

    batch = [raw(e, i) for i, e in enumerate(events(batched))]
    assert await consumer.process_batch(batch) == ["applied"] * 5
    assert await consumer.process_batch(batch) == ["duplicate"] * 5
    for i, event in enumerate(events(single)):
        assert await consumer.process(raw(event, i)) == "applied"

    async def roster(pid: str) -> list[dict[str, Any]]:
        rows = await ctx.pool.fetch(
            "SELECT * FROM bookings WHERE posting_id = $1 ORDER BY booking_id", pid
        )
        ids = ("booking_id", "posting_id", "application_id")
        return [{k: v for k, v in dict(r).items() if k not in ids} for r in rows]

    kept = await roster(batched)
    assert kept == await roster(single)
    assert [(r["status"], r["waitlist_position"], r["check_in_code"]) for r in kept] == [
        ("confirmed", None, "P4RT9Z"),
        ("confirmed", None, "K7M2QX"),
        ("waitlisted", 1, None),
    ]
    assert kept[0]["waitlisted_at"] is not None and kept[0]["promoted_at"] is not None
    assert (
        await ctx.pool.fetchval("SELECT count(*) FROM bookings WHERE posting_id = 'pst_not_ours'")
        == 0
    )


async def test_sweepers_close_due_postings_and_report_stale_pending_ones(
    ctx: Ctx, caplog: pytest.LogCaptureFixture
) -> None:
    """An open posting closes (PostingClosed) only once its attendance window has passed on
    the clock; a posting without a budget answer for longer than the configured time is
    counted in the gauge and named in a warning line each time, and stays pending."""
    async with ctx.pool.acquire() as conn:
        fid = await facility(conn)
        due = await posting(conn, fid, start_in=timedelta(hours=1))
        waiting = await posting(conn, fid, start_in=timedelta(days=5))
        for pid in (due,):
            await store.open_posting(
                conn, pid, reservation_id="rsv", amount_won=1, budget_revision=1, now=NOW
            )
    window = timedelta(hours=ctx.settings.attendance_window_hours)
    ctx.clock.set(NOW + timedelta(hours=3) + window - timedelta(seconds=1))
    assert await sweepers.close_due_postings(ctx) == 0  # type: ignore[arg-type]
    ctx.clock.advance(timedelta(seconds=2))
    assert await sweepers.close_due_postings(ctx) == 1  # type: ignore[arg-type]
    assert await sweepers.close_due_postings(ctx) == 0  # type: ignore[arg-type]
    async with ctx.pool.acquire() as conn:
        row = await store.get_posting(conn, due)
        assert row is not None and row.status == "closed"
        assert await outbox_types(conn, due) == ["PostingClosed"]

    with caplog.at_level(logging.WARNING, logger="registry.sweepers"):
        for _ in range(2):
            assert await sweepers.report_stale_pending(ctx) == 1  # type: ignore[arg-type]
    gauge = METRICS.get_sample_value("gwangsan_registry_postings_pending_budget_stale")
    assert gauge == 1
    lines = [r for r in caplog.records if r.name == "registry.sweepers"]
    assert len(lines) == 2 and all(waiting in r.posting_ids for r in lines)  # type: ignore[attr-defined]
    async with ctx.pool.acquire() as conn:
        row = await store.get_posting(conn, waiting)
        assert row is not None and row.status == "pending_budget"

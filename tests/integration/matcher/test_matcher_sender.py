"""The partner notification sender on its own, against real Postgres and a local receiver:
many notifications over many ordering keys, sent concurrently, each arrives exactly once
and in order per key; every row ends `delivered`.

This is where a sender that fetched a row again between its delivery and the bulk mark of
that delivery would show it: the receiver counts every repeated `webhook-id`. (The stack
tests also watch for duplicates, but through a simulator shared with every other test.)
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from matcher import store

from shared import migrations
from shared.db import create_pool
from shared.shards import HASH_MAX, HASH_MIN, ranges

from .sender_process import short_sender

pytestmark = pytest.mark.stack

MIGRATIONS = Path(store.__file__).parent / "migrations"
SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"


class Receiver:
    """A partner that answers 200 after a short random delay and remembers what came."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.order: dict[str, list[int]] = {}

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        await asyncio.sleep(random.uniform(0, 0.004))
        webhook_id = request.headers["webhook-id"]
        self.seen[webhook_id] += 1
        if self.seen[webhook_id] == 1:
            self.order.setdefault(body["key"], []).append(body["n"])
        return web.json_response({"status": "ok"})


@contextlib.asynccontextmanager
async def serving(handle: Callable[[web.Request], Awaitable[web.Response]]) -> AsyncIterator[str]:
    """`handle` answering POST /notifications on a free local port; yields the URL."""
    app = web.Application()
    app.router.add_post("/notifications", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/notifications"
    finally:
        await runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    partner = Receiver()
    async with serving(partner.handle) as url:
        yield partner, url


@pytest.fixture
async def pool(
    admin_dsn: str, make_schema: Callable[[], Awaitable[str]]
) -> AsyncIterator[asyncpg.Pool]:
    """A fresh schema with the matcher's tables, so the running matcher never sees it."""
    schema = await make_schema()
    conn = await asyncpg.connect(admin_dsn)
    try:
        await migrations.apply(conn, schema, MIGRATIONS)
    finally:
        await conn.close()
    p = await create_pool(admin_dsn, schema=schema, size_max=4)
    yield p
    await p.close()


async def _write(pool: asyncpg.Pool, keys: int, per_key: int) -> None:
    """`per_key` notifications on each of `keys` ordering keys, interleaved as decisions
    would write them, in batches of one transaction each."""
    notes = [
        store.Notification(
            notification_id=str(uuid.uuid4()),
            type="booking.confirmed",
            ordering_key=f"key-{k}",
            posting_id=None,
            application_id=None,
            booking_id=None,
            payload=f'{{"key": "key-{k}", "n": {n}}}'.encode(),
        )
        for n in range(per_key)
        for k in range(keys)
    ]
    async with pool.acquire() as conn:
        for start in range(0, len(notes), 100):
            async with conn.transaction():
                await store.add_notifications(conn, notes[start : start + 100])


async def test_concurrent_sends_deliver_each_notification_once_in_order(
    pool: asyncpg.Pool, receiver: tuple[Receiver, str]
) -> None:
    partner, url = receiver
    keys, per_key = 200, 8
    # Alone, it holds every shard; its own lease name, not the running matcher's sender's.
    sender = short_sender(pool, url, SECRET, f"test-sender-{uuid.uuid4()}", 4, concurrency_max=32)
    await sender.start()
    try:
        await _write(pool, keys, per_key)
        deadline = asyncio.get_running_loop().time() + 60
        while sum(len(v) for v in partner.order.values()) < keys * per_key:
            assert asyncio.get_running_loop().time() < deadline, "not all delivered in 60 s"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # a repeat of anything would arrive now
    finally:
        await sender.stop()

    repeated = {webhook_id: n for webhook_id, n in partner.seen.items() if n > 1}
    assert repeated == {}, f"{len(repeated)} notifications were sent more than once"
    assert len(partner.seen) == keys * per_key
    assert all(order == list(range(per_key)) for order in partner.order.values())
    statuses = await pool.fetch(
        "SELECT status, count(*) AS n FROM partner_notifications GROUP BY status"
    )
    assert {r["status"]: r["n"] for r in statuses} == {"delivered": keys * per_key}


async def test_the_due_query_probes_each_candidate_once_even_with_stale_statistics(
    pool: asyncpg.Pool,
) -> None:
    """Statistics taken while nothing was pending (a quiet night), then a rush of pending
    notifications: the due query still reads a few pages per candidate. (Written as
    NOT EXISTS it was planned as a nested loop that read every undelivered row for every
    candidate: 1.25 million pages for 1,000 candidates, half a second.)"""
    await _write(pool, keys=2_000, per_key=1)
    await pool.execute("UPDATE partner_notifications SET status = 'delivered'")
    await pool.execute("ANALYZE partner_notifications")  # the stale picture: none pending
    await _write(pool, keys=1_000, per_key=1)
    exclude = [f"key-{k}" for k in range(10)]
    plan = await pool.fetchval(
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + store.DUE_SQL,
        1_000,
        exclude,
        HASH_MIN,
        HASH_MAX,
    )
    top = plan[0]["Plan"]  # the pool decodes json
    assert top["Actual Rows"] == 990  # every candidate but the excluded keys' heads
    pages = top["Shared Hit Blocks"] + top["Shared Read Blocks"]
    assert pages < 10 * 1_000, f"{pages} pages read for 1,000 candidates"
    # Four senders holding one shard each find the same candidates between them, and still
    # read a few pages per candidate, not per undelivered row.
    found, pages = 0, 0
    for shard in range(4):
        [(low, high)] = ranges([shard], 4)
        plan = await pool.fetchval(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + store.DUE_SQL, 1_000, exclude, low, high
        )
        top = plan[0]["Plan"]
        found += top["Actual Rows"]
        pages += top["Shared Hit Blocks"] + top["Shared Read Blocks"]
    assert found == 990
    assert pages < 10 * 1_000, f"{pages} pages read by four shards for 1,000 candidates"

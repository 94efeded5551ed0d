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
from matcher.notify import NotificationSender

from shared import migrations
from shared.db import collect_after_commit, create_pool, run_after_commit
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


def _note(key: str, n: int) -> store.Notification:
    return store.Notification(
        notification_id=str(uuid.uuid4()),
        type="booking.confirmed",
        ordering_key=key,
        posting_id=None,
        application_id=None,
        booking_id=None,
        payload=f'{{"key": "{key}", "n": {n}}}'.encode(),
    )


async def _write(pool: asyncpg.Pool, keys: int, per_key: int, *, handed: bool = False) -> None:
    """`per_key` notifications on each of `keys` ordering keys, interleaved as decisions
    would write them, in batches of one transaction each; `handed`: committed as the
    consumer guard commits, so this process's senders are handed the heads at commit."""
    notes = [_note(f"key-{k}", n) for n in range(per_key) for k in range(keys)]
    async with pool.acquire() as conn:
        for start in range(0, len(notes), 100):
            with collect_after_commit() as committed:
                async with conn.transaction():
                    await store.add_notifications(conn, notes[start : start + 100])
            if handed:
                run_after_commit(committed)


@pytest.mark.parametrize(
    ("handed", "linger_ms"),
    [(False, 0), (True, 0), (True, 10)],
    ids=["queried", "handed-at-commit", "handed-marks-lingering"],
)
async def test_concurrent_sends_deliver_each_notification_once_in_order(
    pool: asyncpg.Pool, receiver: tuple[Receiver, str], handed: bool, linger_ms: int
) -> None:
    """Also with the heads handed over at commit, racing the sender's own queries (a row
    handed, sent and delivered while a query that also found it was under way), and with
    the marks lingering after sends (`mark_linger_ms`: a key's next notification is found
    only after the mark)."""
    partner, url = receiver
    keys, per_key = 200, 8
    # Alone, it holds every shard; its own lease name, not the running matcher's sender's.
    sender = short_sender(
        pool,
        url,
        SECRET,
        f"test-sender-{uuid.uuid4()}",
        4,
        concurrency_max=32,
        mark_linger_ms=linger_ms,
    )
    await sender.start()
    try:
        await _until_leading(sender)
        await _write(pool, keys, per_key, handed=handed)
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


async def _until_leading(sender: NotificationSender) -> None:
    for _ in range(200):
        if sender.leases is not None and sender.leases.active:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the sender took no shard in 4 s")


async def test_heads_are_handed_over_at_commit_and_only_heads(pool: asyncpg.Pool) -> None:
    """What a commit hands this process's senders: the notifications that head their keys
    (nothing earlier of the key undelivered; of two of one key in one statement, the
    first), once the transaction committed; nothing when it rolls back, and nothing where
    no unit of work collects (an API request's transaction: the NOTIFY and the query)."""
    handed: list[str] = []
    stop = store.listen_committed_heads(lambda rows: handed.extend(r.notification_id for r in rows))
    try:
        waiting, first, second, fresh = (
            _note("k-waiting", 0),
            _note("k-two", 0),
            _note("k-two", 1),
            _note("k-fresh", 0),
        )
        async with pool.acquire() as conn:
            async with conn.transaction():
                await store.add_notifications(conn, [waiting])  # nobody collects: not handed
            assert handed == []
            with collect_after_commit() as committed:
                async with conn.transaction():
                    await store.add_notifications(
                        conn, [_note("k-waiting", 1), first, second, fresh]
                    )
                assert handed == [] and len(committed) == 1  # not before the commit
            run_after_commit(committed)
            assert sorted(handed) == sorted([first.notification_id, fresh.notification_id])
            handed.clear()
            with contextlib.suppress(RuntimeError), collect_after_commit() as committed:
                async with conn.transaction():
                    await store.add_notifications(conn, [_note("k-rolled-back", 0)])
                    raise RuntimeError("rolled back")
            assert handed == []
    finally:
        stop()


async def test_a_sender_sends_what_it_is_handed_without_querying(
    pool: asyncpg.Pool, receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With its own due query finding nothing, a sender still sends every head committed in
    this process: the hand-over alone carries them (then a notification NOTIFY woke it for
    is not fetched again)."""
    partner, url = receiver
    sender = short_sender(pool, url, SECRET, f"test-sender-{uuid.uuid4()}", 4)
    await sender.start()
    try:
        await _until_leading(sender)

        async def nothing_due(*_: object) -> list[store.DueNotification]:
            return []

        monkeypatch.setattr(store, "due_notifications", nothing_due)
        await _write(pool, keys=50, per_key=1, handed=True)
        deadline = asyncio.get_running_loop().time() + 20
        while partner.seen.total() < 50:
            assert asyncio.get_running_loop().time() < deadline, "not all handed over in 20 s"
            await asyncio.sleep(0.05)
    finally:
        await sender.stop()
    assert sorted(partner.seen.values()) == [1] * 50


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


@pytest.mark.parametrize("linger_ms", [0, 1_000], ids=["no-linger", "linger"])
async def test_sends_ending_within_the_linger_are_marked_together(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch, linger_ms: int
) -> None:
    """`mark_linger_ms`: the sends that end within the linger are marked delivered by one
    statement (and the next due looked for once), not one mark and query per send; a
    freed slot goes to the next queued notification at once, not after the mark or the
    poll. Proved by 10 notifications handed over at one commit to a sender with 5 slots
    (a 5 s poll) and a partner answering key k after k × 40 ms: with a 1 s linger all 10
    arrive within 0.8 s (the second five took the slots the first freed) and are marked
    by one statement after the last; with no linger, sends ending 40 ms apart are marked
    one by one."""
    marks: list[int] = []
    mark = store.mark_delivered

    async def counted(conn: asyncpg.Connection, done: list[store.DeliveredMark]) -> None:
        # Counted once done: a mark cut off by the stop below is redone at the lease's
        # release (by design) and would otherwise count twice.
        await mark(conn, done)
        marks.append(len(done))

    seen: Counter[str] = Counter()

    async def slow(request: web.Request) -> web.Response:
        body = await request.json()
        await asyncio.sleep(int(body["key"].removeprefix("key-")) % 5 * 0.04)
        seen[request.headers["webhook-id"]] += 1
        return web.json_response({"status": "ok"})

    monkeypatch.setattr(store, "mark_delivered", counted)
    async with serving(slow) as url:
        sender = short_sender(
            pool,
            url,
            SECRET,
            f"test-sender-{uuid.uuid4()}",
            4,
            concurrency_max=5,
            mark_linger_ms=linger_ms,
            poll_interval_ms=5_000,
        )
        await sender.start()
        try:
            await _until_leading(sender)
            loop = asyncio.get_running_loop()
            committed_at = loop.time()
            await _write(pool, keys=10, per_key=1, handed=True)
            while seen.total() < 10:
                assert loop.time() - committed_at < 0.8, "freed slots waited for the loop"
                await asyncio.sleep(0.01)
            while sum(marks) < 10:
                assert loop.time() - committed_at < 20, "not all marked in 20 s"
                await asyncio.sleep(0.05)
        finally:
            await sender.stop()
    assert sorted(seen.values()) == [1] * 10
    if linger_ms:
        assert marks == [10]
    else:
        assert len(marks) >= 4, f"marked in {len(marks)} statements: {marks}"

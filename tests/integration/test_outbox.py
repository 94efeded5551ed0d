"""The transactional outbox against the real Kafka and Postgres."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from shared import outbox
from shared.consumer import EventConsumer, RawMessage
from shared.db import create_pool
from shared.events import Event, register
from shared.kafka import make_producer, stack_client_kwargs, stack_security
from shared.outbox import OutboxRelay

pytestmark = pytest.mark.stack

HERE = Path(__file__).parent


def event_class(topic: str) -> type[Event]:
    """A throw-away event type living on `topic` (each test has its own topic)."""

    class Ping(Event):
        TYPE: ClassVar[str] = f"Ping-{topic}"
        TOPIC: ClassVar[str] = topic
        KEY_FIELD: ClassVar[str] = "key_id"
        key_id: str
        n: int

    register(Ping)
    return Ping


async def write_events(pool: asyncpg.Pool, cls: type[Event], count: int, keys: int = 4) -> None:
    async with pool.acquire() as conn:
        for n in range(count):
            async with conn.transaction():
                await outbox.add(
                    conn,
                    cls(key_id=f"k{n % keys}", n=n),
                    producer="test",
                    occurred_at=datetime.now(UTC),
                )


async def read_topic(bootstrap: str, topic: str, expected: int, timeout_s: float = 30) -> list[Any]:
    """Every record of `topic` from the beginning, once at least `expected` arrived."""
    consumer = AIOKafkaConsumer(
        topic,
        **stack_client_kwargs(),
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(records) < expected and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for part in batch.values():
                records.extend(part)
        await asyncio.sleep(0.5)  # anything beyond the expected count (duplicates) arrives too
        for part in (await consumer.getmany(timeout_ms=500)).values():
            records.extend(part)
    finally:
        await consumer.stop()
    return records


async def wait_until(check: Callable[[], Awaitable[bool]], timeout_s: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def outbox_drained(pool: asyncpg.Pool) -> bool:
    """Every outbox row of the pool's schema is published."""
    return await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0


async def test_relay_killed_after_broker_ack_loses_nothing_and_effects_apply_once(
    admin_dsn: str, kafka_bootstrap: str, make_schema: Any, new_topic: Any
) -> None:
    """Kill -9 the relay once the broker acked part of a batch but before the rows were
    marked published; a restarted relay publishes again, so the topic holds every event at
    least once (some twice), and a guarded consumer applies each exactly once."""
    schema = await make_schema()
    topic = await new_topic(partitions=3)
    cls = event_class(topic)
    pool = await create_pool(admin_dsn, schema=schema)
    await write_events(pool, cls, 300)

    crashing = subprocess.run(
        [sys.executable, str(HERE / "relay_process.py"), admin_dsn, schema, kafka_bootstrap, "50"],
        timeout=60,
        check=False,
    )
    assert crashing.returncode == -9, "the relay should have been killed mid-batch"
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") > 0

    relay = subprocess.Popen(
        [sys.executable, str(HERE / "relay_process.py"), admin_dsn, schema, kafka_bootstrap, "0"]
    )
    try:
        await wait_until(lambda: outbox_drained(pool))
    finally:
        relay.kill()
        relay.wait()

    records = await read_topic(kafka_bootstrap, topic, 300)
    ids = [r.value for r in records]
    assert len(set(ids)) == 300, "every committed event reached Kafka"
    assert len(ids) > 300, "the crash window was hit (some events were published twice)"

    # Per key, events arrive in the order they were written.
    by_key: dict[bytes, list[int]] = {}
    for r in records:
        by_key.setdefault(r.key, []).append(int(r.value.split(b'"n":')[1].split(b"}")[0]))
    for ns in by_key.values():
        deduped = list(dict.fromkeys(ns))
        assert deduped == sorted(deduped)

    # A guarded consumer turns at-least-once into exactly-once effects.
    consumer_schema = await make_schema()
    cpool = await create_pool(admin_dsn, schema=consumer_schema)
    await cpool.execute("CREATE TABLE effects (n int PRIMARY KEY)")
    producer = make_producer(kafka_bootstrap, "test", stack_security())
    await producer.start()
    guard = EventConsumer(service="test", pool=cpool, producer=producer)

    async def apply(conn: asyncpg.Connection, _env: Any, event: Any) -> None:
        await conn.execute("INSERT INTO effects (n) VALUES ($1)", event.n)

    guard.on(cls, apply)
    outcomes = [
        await guard.process(RawMessage(r.topic, r.partition, r.offset, r.key, r.value))
        for r in records
    ]
    await producer.stop()
    assert outcomes.count("applied") == 300
    assert outcomes.count("duplicate") == len(records) - 300
    assert await cpool.fetchval("SELECT count(*) FROM effects") == 300
    await cpool.close()
    await pool.close()


async def test_transactions_committing_out_of_order_lose_no_row(
    admin_dsn: str, kafka_bootstrap: str, make_schema: Any, new_topic: Any
) -> None:
    """A transaction that took a lower outbox id but commits after a higher one was already
    published is still published (the relay does not track 'last id seen'); then 20
    concurrent writers with random commit delays: every row arrives."""
    schema = await make_schema()
    topic = await new_topic(partitions=2)
    cls = event_class(topic)
    pool = await create_pool(admin_dsn, schema=schema, size_max=30)
    producer = make_producer(kafka_bootstrap, "test", stack_security())
    await producer.start()
    relay = OutboxRelay(pool=pool, producer=producer, schema=schema, poll_interval_ms=50)
    await relay.start()
    try:
        slow = await pool.acquire()
        tx = slow.transaction()
        await tx.start()
        await outbox.add(
            slow, cls(key_id="slow", n=-1), producer="t", occurred_at=datetime.now(UTC)
        )
        await write_events(pool, cls, 1)  # a higher id, committed first

        async def fast_published() -> bool:
            return (
                await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL")
                == 1
            )

        await wait_until(fast_published)
        await tx.commit()
        await pool.release(slow)

        async def writer(w: int) -> None:
            import random

            rnd = random.Random(w)
            for i in range(25):
                async with pool.acquire() as conn, conn.transaction():
                    await outbox.add(
                        conn, cls(key_id=f"w{w}", n=i), producer="t", occurred_at=datetime.now(UTC)
                    )
                    await asyncio.sleep(rnd.random() * 0.01)

        await asyncio.gather(*(writer(w) for w in range(20)))

        await wait_until(lambda: outbox_drained(pool))
    finally:
        await relay.stop()
        await producer.stop()
    records = await read_topic(kafka_bootstrap, topic, 502)
    keys_n = {(r.key, r.value) for r in records}
    assert len(keys_n) == 502
    assert any(r.key == b"slow" for r in records)
    await pool.close()


async def test_add_outside_a_transaction_is_refused(admin_dsn: str, make_schema: Any) -> None:
    """The outbox row must share the state change's transaction; outside one it is an error."""
    schema = await make_schema()
    cls = event_class(f"x.{uuid.uuid4().hex[:6]}")
    conn = await asyncpg.connect(admin_dsn, server_settings={"search_path": schema})
    with pytest.raises(RuntimeError):
        await outbox.add(conn, cls(key_id="a", n=1), producer="t", occurred_at=datetime.now(UTC))
    await conn.close()


async def test_a_lingering_relay_publishes_commits_close_together_in_one_batch(
    admin_dsn: str, kafka_bootstrap: str, make_schema: Any, new_topic: Any
) -> None:
    """`outbox_linger_ms`: woken by a commit, the relay waits for the next ones and publishes
    them together (one claim, produce and mark) instead of one round per transaction —
    proved by five transactions committed one after another within the linger (1 s) being
    published by one `publish_batch` of five rows, every row arriving."""
    schema = await make_schema()
    topic = await new_topic(partitions=2)
    cls = event_class(topic)
    pool = await create_pool(admin_dsn, schema=schema, size_max=4)
    producer = make_producer(kafka_bootstrap, "test", stack_security())
    await producer.start()
    relay = OutboxRelay(pool=pool, producer=producer, schema=schema, linger_ms=1000)
    batches: list[int] = []
    publish = relay.publish_batch

    async def counted(conn: asyncpg.Connection, key_ranges: Any = outbox.ALL_KEYS) -> int:
        published = await publish(conn, key_ranges)
        if published:
            batches.append(published)
        return published

    relay.publish_batch = counted  # type: ignore[method-assign]
    await relay.start()
    try:

        async def leading() -> bool:
            return relay.leases is not None

        await wait_until(leading)
        await asyncio.sleep(0.3)  # past its first look: it waits for a wake-up
        await write_events(pool, cls, 5)

        await wait_until(lambda: outbox_drained(pool))
    finally:
        await relay.stop()
        await producer.stop()
    assert batches == [5]
    assert len(await read_topic(kafka_bootstrap, topic, 5)) == 5
    await pool.close()


async def test_a_commit_wakes_only_its_own_schemas_relay(admin_dsn: str, make_schema: Any) -> None:
    """The services share one database: a commit with outbox rows notifies its schema's
    channel only, so it does not wake the other services' relays (with one channel for
    all, every decision the matcher committed sent registry's and allowance's relays to
    look at outboxes with nothing new in them)."""
    mine, other = await make_schema(), await make_schema()
    cls = event_class(f"x.{uuid.uuid4().hex[:6]}")
    heard: list[str] = []
    listener = await asyncpg.connect(admin_dsn)
    for schema in (mine, other):
        await listener.add_listener(
            outbox.notify_channel(schema), lambda _c, _p, channel, _m: heard.append(channel)
        )
    pool = await create_pool(admin_dsn, schema=mine, size_max=2)
    try:
        await write_events(pool, cls, 1)

        async def notified() -> bool:
            return bool(heard)

        await wait_until(notified)
        await asyncio.sleep(0.2)  # anything else would have arrived by now
        assert heard == [outbox.notify_channel(mine)]
    finally:
        await listener.close()
        await pool.close()

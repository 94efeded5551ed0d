"""The idempotent-consumer guard and its DLQ, through FastStream on the real Kafka."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from prometheus_client import REGISTRY

from shared.consumer import EventConsumer
from shared.db import create_pool
from shared.kafka import make_producer, stack_client_kwargs, stack_security
from tests.integration.test_outbox import event_class, read_topic, wait_until

pytestmark = pytest.mark.stack


@pytest.mark.parametrize(
    ("batch_size_max", "prefetch_max", "gather_ms"),
    [(1, 0, 0), (500, 0, 0), (500, 2_000, 0), (500, 2_000, 3)],
)
async def test_redelivered_event_has_one_effect_and_poison_goes_to_dlq(
    admin_dsn: str,
    kafka_bootstrap: str,
    make_schema: Any,
    new_topic: Any,
    batch_size_max: int,
    prefetch_max: int,
    gather_ms: int,
) -> None:
    """On one partition: an event three times, then a message that is not an envelope, then
    an event whose handler always fails, then a good event. The good events apply once each;
    the two bad ones land in the DLQ with their errors (the failing one after exactly the
    configured attempts); the partition keeps flowing and its offsets are committed."""
    schema = await make_schema()
    topic = await new_topic(partitions=1)
    cls = event_class(topic)
    pool = await create_pool(admin_dsn, schema=schema)
    await pool.execute("CREATE TABLE effects (n int PRIMARY KEY)")
    producer = make_producer(kafka_bootstrap, "test", stack_security())
    await producer.start()

    attempts: dict[int, int] = {}

    async def apply(conn: asyncpg.Connection, _env: Any, event: Any) -> None:
        attempts[event.n] = attempts.get(event.n, 0) + 1
        if event.n == 13:
            raise ValueError("thirteen is unlucky")
        await conn.execute("INSERT INTO effects (n) VALUES ($1)", event.n)

    guard = EventConsumer(
        service=f"svc{uuid.uuid4().hex[:6]}",
        pool=pool,
        producer=producer,
        attempts_max=3,
        retry_backoff_ms=10,
        batch_size_max=batch_size_max,
        prefetch_max=prefetch_max,
        prefetch_gather_ms=gather_ms,
    )
    guard.on(cls, apply)
    broker = KafkaBroker(kafka_bootstrap, security=stack_security().faststream())
    guard.subscribe(broker)
    for sub in broker.subscribers:
        assert sub.ack_policy is AckPolicy.MANUAL  # never FastStream's at-most-once default

    now = datetime.now(UTC)
    first = cls(key_id="a", n=1).envelope(producer="t", occurred_at=now)
    for _ in range(3):
        await producer.send_and_wait(topic, first.to_bytes(), key=b"a")
    await producer.send_and_wait(topic, b"{not json", key=b"a")
    await producer.send_and_wait(
        topic, cls(key_id="a", n=13).envelope(producer="t", occurred_at=now).to_bytes(), key=b"a"
    )
    await producer.send_and_wait(
        topic, cls(key_id="a", n=2).envelope(producer="t", occurred_at=now).to_bytes(), key=b"a"
    )

    await broker.start()
    try:

        async def both_applied() -> bool:
            return await pool.fetchval("SELECT count(*) FROM effects") == 2

        await wait_until(both_applied)
        await asyncio.sleep(0.3)  # the last batch's commit
    finally:
        await guard.stop()
        await broker.stop()

    assert sorted(r["n"] for r in await pool.fetch("SELECT n FROM effects")) == [1, 2]
    assert attempts[1] == 1 and attempts[13] == 3
    dead = await read_topic(kafka_bootstrap, topic + ".dlq", 2)
    assert len(dead) == 2
    errors = [dict(r.headers)["x-error"].decode() for r in dead]
    assert "invalid message" in errors[0]
    assert "thirteen is unlucky" in errors[1]
    assert dict(dead[1].headers)["x-attempts"] == b"3"
    noted = await pool.fetch('SELECT "offset", attempts FROM dead_letters ORDER BY "offset"')
    assert [(r["offset"], r["attempts"]) for r in noted] == [(3, 1), (4, 3)]

    # Offsets were committed after the effects: a new broker in the same group reads nothing.
    from aiokafka import AIOKafkaConsumer, TopicPartition

    probe = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap,
        group_id=guard.group_id(topic),
        enable_auto_commit=False,
        **stack_client_kwargs(),
    )
    await probe.start()
    committed = await probe.committed(TopicPartition(topic, 0))
    await probe.stop()
    assert committed == 6
    await producer.stop()
    await pool.close()


async def test_transient_database_errors_are_retried_not_dead_lettered(
    admin_dsn: str, kafka_bootstrap: str, make_schema: Any, new_topic: Any
) -> None:
    """A handler that hits a connection error twice (as when Postgres restarts) is retried
    until it succeeds, however many attempts that takes: nothing is dead-lettered."""
    schema = await make_schema()
    topic = await new_topic()
    cls = event_class(topic)
    pool = await create_pool(admin_dsn, schema=schema)
    await pool.execute("CREATE TABLE effects (n int PRIMARY KEY)")
    producer = make_producer(kafka_bootstrap, "test", stack_security())
    await producer.start()
    failures = {"left": 5}

    async def apply(conn: asyncpg.Connection, _env: Any, event: Any) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionResetError("connection lost")
        await conn.execute("INSERT INTO effects (n) VALUES ($1)", event.n)

    guard = EventConsumer(
        service="t",
        pool=pool,
        producer=producer,
        attempts_max=2,
        retry_backoff_ms=5,
        transient_backoff_max_ms=20,
    )
    guard.on(cls, apply)
    from shared.consumer import RawMessage

    env = cls(key_id="a", n=7).envelope(producer="t", occurred_at=datetime.now(UTC))
    outcome = await asyncio.wait_for(
        guard.process(RawMessage(topic, 0, 0, b"a", env.to_bytes())), timeout=10
    )
    assert outcome == "applied"
    assert await pool.fetchval("SELECT count(*) FROM dead_letters") == 0
    await producer.stop()
    await pool.close()


async def test_batches_apply_runs_together_and_skip_duplicates(
    admin_dsn: str, kafka_bootstrap: str, make_schema: Any, new_topic: Any
) -> None:
    """200 events with every tenth sent twice, consumed in batch mode: a batch handler sees
    runs of several events in one call, each event id is applied exactly once."""
    schema = await make_schema()
    topic = await new_topic(partitions=1)
    cls = event_class(topic)
    pool = await create_pool(admin_dsn, schema=schema)
    await pool.execute("CREATE TABLE effects (n int PRIMARY KEY)")
    producer = make_producer(kafka_bootstrap, "test", stack_security())
    await producer.start()
    run_sizes: list[int] = []

    async def apply_run(conn: asyncpg.Connection, items: list[Any]) -> None:
        run_sizes.append(len(items))
        await conn.executemany("INSERT INTO effects (n) VALUES ($1)", [(ev.n,) for _, ev in items])

    guard = EventConsumer(service=f"b{uuid.uuid4().hex[:6]}", pool=pool, producer=producer)
    guard.on_batch(cls, apply_run)
    now = datetime.now(UTC)
    for n in range(200):
        env = cls(key_id="k", n=n).envelope(producer="t", occurred_at=now)
        for _ in range(2 if n % 10 == 0 else 1):
            await producer.send(topic, env.to_bytes(), key=b"k")
    await producer.flush()
    broker = KafkaBroker(kafka_bootstrap, security=stack_security().faststream())
    guard.subscribe(broker)
    await broker.start()
    try:

        async def all_applied() -> bool:
            return await pool.fetchval("SELECT count(*) FROM effects") == 200

        await wait_until(all_applied)
        await asyncio.sleep(0.5)
    finally:
        await broker.stop()
    assert await pool.fetchval("SELECT count(*) FROM processed_events") == 200
    assert max(run_sizes) > 1 and sum(run_sizes) == 200
    # The batch metrics (docs/performance.md reads them): every message of every batch
    # counted once, duplicates included, and the batches' time observed.
    labels = {"service": guard.service, "topic": topic}
    batches = REGISTRY.get_sample_value("gwangsan_consumer_batch_size_count", labels)
    messages = REGISTRY.get_sample_value("gwangsan_consumer_batch_size_sum", labels)
    busy_s = REGISTRY.get_sample_value("gwangsan_consumer_batch_seconds_sum", labels)
    assert batches and messages == 220 and batches < 220 and busy_s and busy_s > 0
    await producer.stop()
    await pool.close()


async def test_fetching_ahead_through_rebalances_loses_and_repeats_nothing(
    admin_dsn: str, kafka_bootstrap: str, make_schema: Any, new_topic: Any
) -> None:
    """Fetching ahead (shared/prefetch.py, gathering 3 ms between fetches and committing at
    most every 100 ms, as the matcher does) with a slow handler, so records are queued and
    offsets wait to be committed when the group rebalances: a second consumer joins
    mid-stream, then the first leaves. Every event is applied exactly once (the effects
    table's key would refuse a second), in offset order per partition, and the group's
    committed offsets reach each partition's end."""
    schema = await make_schema()
    topic = await new_topic(partitions=4)
    cls = event_class(topic)
    pool = await create_pool(admin_dsn, schema=schema)
    await pool.execute(
        "CREATE TABLE effects (n int PRIMARY KEY, part int NOT NULL, seq bigserial NOT NULL)"
    )
    producer = make_producer(kafka_bootstrap, "test", stack_security())
    await producer.start()
    service = f"r{uuid.uuid4().hex[:6]}"

    def member() -> tuple[EventConsumer, KafkaBroker]:
        async def apply_run(conn: asyncpg.Connection, items: list[Any]) -> None:
            await asyncio.sleep(0.02)  # a slow decision: fetched records pile up meanwhile
            await conn.executemany(
                "INSERT INTO effects (n, part) VALUES ($1, $2)",
                [(ev.n, ev.n % 4) for _, ev in items],
            )

        guard = EventConsumer(
            service=service,
            pool=pool,
            producer=producer,
            batch_size_max=50,
            prefetch_max=500,
            prefetch_gather_ms=3,
            commit_interval_ms=100,
        )
        guard.on_batch(cls, apply_run)
        broker = KafkaBroker(kafka_bootstrap, security=stack_security().faststream())
        guard.subscribe(broker)
        return guard, broker

    total = 3_000
    now = datetime.now(UTC)

    async def produce(start: int, stop: int) -> None:
        for n in range(start, stop):
            env = cls(key_id=str(n % 4), n=n).envelope(producer="t", occurred_at=now)
            await producer.send(topic, env.to_bytes(), partition=n % 4, key=str(n % 4).encode())
            if n % 100 == 0:
                await asyncio.sleep(0.01)
        await producer.flush()

    first, first_broker = member()
    await first_broker.start()
    second, second_broker = member()
    try:
        await produce(0, 1_000)
        await second_broker.start()  # a rebalance while the first has records queued
        await produce(1_000, 2_000)
        await first.stop()  # the first leaves: another rebalance
        await first_broker.stop()
        await produce(2_000, total)

        async def all_applied() -> bool:
            return await pool.fetchval("SELECT count(*) FROM effects") == total

        await wait_until(all_applied, timeout_s=60)
        await asyncio.sleep(0.5)  # the last batch's commit
    finally:
        await second.stop()
        await second_broker.stop()
    rows = await pool.fetch("SELECT n, part FROM effects ORDER BY seq")
    assert sorted(r["n"] for r in rows) == list(range(total))
    for part in range(4):
        applied = [r["n"] for r in rows if r["part"] == part]
        assert applied == sorted(applied), f"partition {part} applied out of order"
    from aiokafka import AIOKafkaConsumer, TopicPartition

    probe = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap,
        group_id=second.group_id(topic),
        enable_auto_commit=False,
        **stack_client_kwargs(),
    )
    await probe.start()
    committed = [await probe.committed(TopicPartition(topic, p)) for p in range(4)]
    await probe.stop()
    assert committed == [total // 4] * 4
    await producer.stop()
    await pool.close()


@pytest.mark.parametrize("prefetch_max", [0, 2_000])
async def test_an_idle_consumer_sleeps_in_its_poll_and_a_record_wakes_it_at_once(
    admin_dsn: str,
    kafka_bootstrap: str,
    make_schema: Any,
    new_topic: Any,
    monkeypatch: pytest.MonkeyPatch,
    prefetch_max: int,
) -> None:
    """Issue 20: with a 10 ms poll, FastStream's loop (poll, then sleep as long after an
    empty one) woke every idle consumer ~50 times a second. After its first records a
    consumer polls itself with a long wait (5 s here): idle for 2 s it polls at most
    twice, and an event sent meanwhile is applied well within the wait, because a fetch
    that brings records ends the poll."""
    schema = await make_schema()
    topic = await new_topic(partitions=1)
    cls = event_class(topic)
    pool = await create_pool(admin_dsn, schema=schema)
    await pool.execute("CREATE TABLE effects (n int PRIMARY KEY, at timestamptz)")
    producer = make_producer(kafka_bootstrap, "test", stack_security())
    await producer.start()

    async def apply(conn: asyncpg.Connection, _env: Any, event: Any) -> None:
        await conn.execute("INSERT INTO effects (n, at) VALUES ($1, clock_timestamp())", event.n)

    guard = EventConsumer(
        service=f"idle{uuid.uuid4().hex[:6]}",
        pool=pool,
        producer=producer,
        poll_wait_ms=5_000,
        prefetch_max=prefetch_max,
    )
    guard.on(cls, apply)
    broker = KafkaBroker(kafka_bootstrap, security=stack_security().faststream())
    guard.subscribe(broker)

    async def send(n: int) -> None:
        envelope = cls(key_id="k", n=n).envelope(producer="t", occurred_at=datetime.now(UTC))
        await producer.send_and_wait(topic, envelope.to_bytes(), key=b"k")

    await send(1)
    await broker.start()
    try:

        async def applied(n: int) -> bool:
            return await pool.fetchval("SELECT count(*) FROM effects") == n

        await wait_until(lambda: applied(1))
        # Count this subscriber's polls only (other tests' consumers may share the process).
        (subscriber,) = broker.subscribers
        consumer = subscriber.consumer
        assert consumer is not None
        polls = 0
        getmany = consumer.getmany

        async def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal polls
            polls += 1
            return await getmany(*args, **kwargs)

        monkeypatch.setattr(consumer, "getmany", counted)
        await asyncio.sleep(2.0)
        assert polls <= 2, f"{polls} polls in 2 s idle"

        sent_at = await pool.fetchval("SELECT clock_timestamp()")
        await send(2)
        await wait_until(lambda: applied(2))
        took = await pool.fetchval("SELECT at FROM effects WHERE n = 2") - sent_at
        assert took.total_seconds() < 1.0, f"applied {took} after it was sent"
    finally:
        await guard.stop()
        await broker.stop()
        await producer.stop()
        await pool.close()

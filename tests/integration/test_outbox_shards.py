"""The outbox relay sharded over several processes (shared/shards.py, shared/leader.py),
against the real Kafka and Postgres.

* Two relays share the shards without an operator (all four alone, two each together);
  every event reaches the topic once, each key's events in the order they were written,
  and every event of a key is published by one relay.
* A relay process SIGKILLed after the broker acknowledged part of a batch it holds: the
  other relay takes its shards within seconds; every event is on the topic, and the first
  copy of each key's events comes in the order they were written (the unmarked batch is
  published again: consumers drop those repeats by event id).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from shared import outbox
from shared.db import create_pool
from shared.events import Event
from shared.kafka import make_producer, stack_security
from shared.outbox import OutboxRelay

from .test_outbox import event_class, read_topic

pytestmark = pytest.mark.stack

HERE = Path(__file__).parent
SHARDS = 4


async def _until(check: Callable[[], bool], timeout_s: float, what: str) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout_s, f"{what}: not within {timeout_s} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def _write(pool: asyncpg.Pool, cls: type[Event], keys: int, per_key: int) -> None:
    """`per_key` events on each of `keys` keys, interleaved, 50 to a transaction."""
    events = [cls(key_id=f"k{k}", n=n) for n in range(per_key) for k in range(keys)]
    async with pool.acquire() as conn:
        for start in range(0, len(events), 50):
            async with conn.transaction():
                await outbox.add_many(
                    conn, events[start : start + 50], producer="t", occurred_at=datetime.now(UTC)
                )


async def _unpublished(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
    return count


def _by_key(records: list[Any]) -> dict[bytes, list[int]]:
    """Each key's event numbers in topic order, first copies only."""
    order: dict[bytes, list[int]] = {}
    seen: set[bytes] = set()
    for r in records:
        if r.value in seen:
            continue
        seen.add(r.value)
        order.setdefault(r.key, []).append(int(r.value.split(b'"n":')[1].split(b"}")[0]))
    return order


def _active(relay: OutboxRelay) -> frozenset[int]:
    return relay.leases.active if relay.leases is not None else frozenset()


class CountingProducer:
    """A started producer whose sends are counted by key (which relay published what)."""

    def __init__(self, bootstrap: str) -> None:
        self.producer: AIOKafkaProducer = make_producer(bootstrap, "test", stack_security())
        self.keys: set[bytes] = set()
        real_send = self.producer.send

        async def send(*args: Any, **kwargs: Any) -> Any:
            self.keys.add(kwargs["key"])
            return await real_send(*args, **kwargs)

        self.producer.send = send  # type: ignore[method-assign]


async def test_two_relays_share_the_shards_and_publish_each_key_in_order_once(
    admin_dsn: str, kafka_bootstrap: str, make_schema: Any, new_topic: Any
) -> None:
    schema = await make_schema()
    topic = await new_topic(partitions=3)
    cls = event_class(topic)
    pools = [await create_pool(admin_dsn, schema=schema) for _ in range(3)]
    producers = [CountingProducer(kafka_bootstrap) for _ in range(2)]
    relays = [
        OutboxRelay(
            pool=pools[i],
            producer=producers[i].producer,
            schema=schema,
            batch_size_max=50,
            poll_interval_ms=100,
            shards=SHARDS,
        )
        for i in range(2)
    ]
    for p in producers:
        await p.producer.start()
    try:
        await relays[0].start()
        await _until(lambda: _active(relays[0]) == set(range(SHARDS)), 10, "alone, all four")
        await relays[1].start()
        await _until(lambda: [len(_active(r)) for r in relays] == [SHARDS // 2] * 2, 10, "two each")
        keys, per_key = 60, 40
        await _write(pools[2], cls, keys, per_key)
        deadline = time.monotonic() + 60
        while await _unpublished(pools[2]):
            assert time.monotonic() < deadline, "not all published within 60 s"
            await asyncio.sleep(0.1)
    finally:
        for relay in relays:
            await relay.stop()
        for p in producers:
            await p.producer.stop()
        for pool in pools:
            await pool.close()
    records = await read_topic(kafka_bootstrap, topic, keys * per_key)
    assert len(records) == keys * per_key, "a graceful run publishes nothing twice"
    order = _by_key(records)
    assert len(order) == keys
    assert all(ns == list(range(per_key)) for ns in order.values())
    first, second = producers[0].keys, producers[1].keys
    assert first and second and not first & second, "each key is published by one relay"


async def test_a_relay_killed_mid_batch_hands_its_shards_over_and_order_holds(
    admin_dsn: str, kafka_bootstrap: str, make_schema: Any, new_topic: Any
) -> None:
    schema = await make_schema()
    topic = await new_topic(partitions=3)
    cls = event_class(topic)
    pool = await create_pool(admin_dsn, schema=schema)
    producer = make_producer(kafka_bootstrap, "test", stack_security())
    await producer.start()
    survivor = OutboxRelay(
        pool=pool, producer=producer, schema=schema, batch_size_max=50, poll_interval_ms=100
    )
    await survivor.start()
    # The victim SIGKILLs itself after 250 acknowledged sends, before marking that batch.
    victim = subprocess.Popen(
        [sys.executable, str(HERE / "relay_process.py"), admin_dsn, schema, kafka_bootstrap,
         "250", str(SHARDS)],
    )  # fmt: skip
    try:
        await _until(lambda: len(_active(survivor)) == SHARDS // 2, 30, "the victim took half")
        keys, per_key = 60, 40
        await _write(pool, cls, keys, per_key)
        victim.wait(30)
        assert victim.returncode == -9, "the victim should have been killed mid-batch"
        died_at = time.monotonic()
        await _until(lambda: _active(survivor) == set(range(SHARDS)), 10, "survivor takes all")
        took_over_s = time.monotonic() - died_at
        deadline = time.monotonic() + 60
        while await _unpublished(pool):
            assert time.monotonic() < deadline, "not all published within 60 s"
            await asyncio.sleep(0.1)
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait(10)
        await survivor.stop()
        await producer.stop()
        await pool.close()
    print(f"shards taken over {took_over_s:.2f} s after the kill")
    assert took_over_s < 5
    records = await read_topic(kafka_bootstrap, topic, keys * per_key)
    assert len({r.value for r in records}) == keys * per_key, "every event reached Kafka"
    assert len(records) > keys * per_key, "the crash window was hit (some published twice)"
    order = _by_key(records)
    assert all(ns == list(range(per_key)) for ns in order.values())

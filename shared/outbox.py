"""The transactional outbox: an event is published if and only if its transaction committed.

`add` (`add_many` for a batch) writes events in the caller's transaction. `OutboxRelay`
publishes unpublished rows in id order with an idempotent `acks=all` producer and marks
them published only after the broker acknowledged them. Rows are claimed with
`published_at IS NULL ... FOR UPDATE SKIP LOCKED` rather than "id greater than the last one
seen", because ids are taken before commit and a lower id can commit later (RELIABILITY.md
trap 5). Every process of a service runs a relay, and the schema's outbox is split into
`outbox_shards` shards by the hash of the row's key (`shared.shards`): each shard is
published by one process at a time (advisory locks, `shared.leader`), so events of one key
leave in the order their transactions wrote them, while different keys leave from as many
processes as hold shards. A crash between the broker's ack and the mark re-publishes those
rows (by whoever takes the shard over): consumers drop the duplicates by event id.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from shared import metrics
from shared.events import Encoded, Event
from shared.leader import REBALANCE_INTERVAL_S, Leases, keep_running, lead, stop_job
from shared.shards import HASH_MAX, HASH_MIN
from shared.waiting import wait_set

log = logging.getLogger(__name__)

# One channel per schema: the services share one database, and a NOTIFY reaches every
# listener of its channel, so with one channel for all every commit of any service woke
# every service's relay to look at an outbox with nothing new in it.
NOTIFY_CHANNEL_PREFIX = "outbox_"
# What a writer notifies: the channel of the schema it writes in (its search_path's
# first, where the unqualified `outbox` it inserted into lives).
NOTIFY_SQL = f"pg_notify('{NOTIFY_CHANNEL_PREFIX}' || current_schema(), '')"


def notify_channel(schema: str) -> str:
    """The channel `schema`'s outbox writers notify at commit and its relay listens on."""
    return NOTIFY_CHANNEL_PREFIX + schema


async def add(
    conn: asyncpg.Connection,
    event: Event,
    *,
    producer: str,
    occurred_at: datetime,
    event_id: uuid.UUID | None = None,
) -> None:
    """Write `event` to the outbox inside the caller's open transaction.

    Pass `event_id` derived from the cause (e.g. uuid5 of the consumed event) when the same
    cause must never produce two different events; the unique constraint then refuses it.
    """
    encoded = event.encode(producer=producer, occurred_at=occurred_at, event_id=event_id)
    await _insert(conn, [(event, encoded)])


async def add_many(
    conn: asyncpg.Connection, events: Sequence[Event], *, producer: str, occurred_at: datetime
) -> None:
    """`add` for a batch (new event ids), in one statement whatever its size."""
    if events:
        await _insert(
            conn,
            [(e, e.encode(producer=producer, occurred_at=occurred_at)) for e in events],
        )


# The outbox insert of a batch from five arrays ($1..$5): `columns` gives them. A service
# may put it in a statement of its own (with a shift of the parameter numbers) so that a
# transaction's writes go to Postgres in one round trip (matcher.store.write_changes).
INSERT_SQL = (
    "INSERT INTO outbox (event_id, topic, key, event_type, payload)"
    " SELECT * FROM unnest(${0}::uuid[], ${1}::text[], ${2}::text[], ${3}::text[],"
    " ${4}::bytea[])"
)


def insert_sql(first_param: int) -> str:
    """`INSERT_SQL` with its parameters numbered from `first_param`."""
    return INSERT_SQL.format(*range(first_param, first_param + 5))


def columns(
    events: Sequence[Event], *, producer: str, occurred_at: datetime
) -> tuple[list[Any], ...]:
    """The five arrays of `insert_sql` for `events` (new event ids)."""
    items = [(e, e.encode(producer=producer, occurred_at=occurred_at)) for e in events]
    return _columns(items)


def _columns(items: Sequence[tuple[Event, Encoded]]) -> tuple[list[Any], ...]:
    return (
        [enc.event_id for _, enc in items],
        [ev.TOPIC for ev, _ in items],
        [enc.key for _, enc in items],
        [ev.TYPE for ev, _ in items],
        [enc.payload for _, enc in items],
    )


async def _insert(conn: asyncpg.Connection, items: Sequence[tuple[Event, Encoded]]) -> None:
    """The outbox rows and one wake-up of the relay (delivered at commit), in one statement."""
    if not conn.is_in_transaction():
        raise RuntimeError("outbox rows must be written in the transaction of the state change")
    await conn.execute(f"WITH added AS ({insert_sql(1)}) SELECT {NOTIFY_SQL}", *_columns(items))


async def backlog(conn: asyncpg.Connection) -> tuple[int, float]:
    """Unpublished rows and the age in seconds of the oldest one."""
    row = await conn.fetchrow(
        "SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age"
        " FROM outbox WHERE published_at IS NULL"
    )
    assert row is not None
    return int(row["n"]), float(row["age"])


# The rows due in one hash range, oldest first. The expression index
# `outbox_unpublished_by_key_hash (id, hashtext(key)) WHERE published_at IS NULL` (shared
# migration 0003) answers it in id order with the range checked in the index itself: rows
# of other shards are skipped without reading the table.
DUE_SQL = """
SELECT id, topic, key, payload FROM outbox
 WHERE published_at IS NULL AND hashtext(key) BETWEEN $2 AND $3
 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
"""
ALL_KEYS: list[tuple[int, int]] = [(HASH_MIN, HASH_MAX)]


class OutboxRelay:
    """Publishes its process's shards of one schema's outbox to Kafka; run one per process."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        schema: str,
        batch_size_max: int = 500,
        poll_interval_ms: int = 500,
        linger_ms: int = 0,
        retention: timedelta = timedelta(days=7),
        shards: int = 4,
    ) -> None:
        self._pool = pool
        self._producer = producer
        self.schema = schema
        self._schema = schema
        self._batch_size_max = batch_size_max
        self._poll_s = poll_interval_ms / 1000
        self._linger_s = linger_ms / 1000
        self._retention = retention
        self._shards = shards
        self._wake = asyncio.Event()
        self.leases: Leases | None = None  # this process's membership and shards, while led
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self._schema}")

    async def stop(self) -> None:
        if self._task is not None:
            await stop_job(self._task, f"outbox relay {self._schema}")

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        await keep_running(f"outbox relay {self._schema}", self._lead)

    async def _lead(self) -> None:
        """Hold this process's shards on a dedicated connection and publish until it is lost."""
        await lead(
            self._pool,
            job=f"outbox:{self._schema}",
            shards=self._shards,
            channel=notify_channel(self._schema),
            on_notify=self._on_notify,
            work=self._publish_loop,
        )

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _publish_loop(self, conn: asyncpg.Connection, leases: Leases) -> None:
        self.leases = leases
        cleaned_at = 0.0
        loop = asyncio.get_running_loop()
        balanced_at = loop.time()
        while True:
            self._wake.clear()
            if loop.time() - balanced_at >= REBALANCE_INTERVAL_S:
                # Between batches nothing of a shard is in flight: hand over at once.
                await leases.rebalance()
                balanced_at = loop.time()
            published = await self.publish_batch(conn, leases.ranges())
            if leases.housekeeper and loop.time() - cleaned_at > 60:
                await self._clean(conn)
                cleaned_at = loop.time()
            if published >= self._batch_size_max:
                continue  # more waiting: do not sleep
            wait_s = min(self._poll_s, balanced_at + REBALANCE_INTERVAL_S - loop.time())
            # woken by a commit: let the next ones join it
            if await wait_set(self._wake, max(wait_s, 0.01)) and self._linger_s:
                await asyncio.sleep(self._linger_s)

    async def publish_batch(
        self, conn: asyncpg.Connection, key_ranges: list[tuple[int, int]] = ALL_KEYS
    ) -> int:
        """Publish up to one batch of the rows whose key hashes into `key_ranges` (the
        shards this process holds); returns how many rows were published."""
        if not key_ranges:
            return 0
        async with conn.transaction():
            rows: list[asyncpg.Record] = []
            for low, high in key_ranges:
                if len(rows) < self._batch_size_max:
                    rows += await conn.fetch(DUE_SQL, self._batch_size_max - len(rows), low, high)
            if not rows:
                return 0
            futures = [
                await self._producer.send(r["topic"], value=r["payload"], key=r["key"].encode())
                for r in rows
            ]
            await asyncio.gather(*futures)  # every one acknowledged by the broker (acks=all)
            await conn.execute(
                "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
                [r["id"] for r in rows],
            )
        metrics.OUTBOX_PUBLISHED.labels(self._schema).inc(len(rows))
        return len(rows)

    async def _clean(self, conn: asyncpg.Connection) -> None:
        """Drop rows published long ago (a bounded batch at a time)."""
        await conn.execute(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox"
            " WHERE published_at < now() - $1::interval ORDER BY id LIMIT 10000)",
            self._retention,
        )

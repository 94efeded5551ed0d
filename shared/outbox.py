"""The transactional outbox: an event is published if and only if its transaction committed.

`add` (`add_many` for a batch) writes events in the caller's transaction. `OutboxRelay`
publishes unpublished rows in id order with an idempotent `acks=all` producer and marks
them published only after the broker acknowledged them. Rows are claimed with
`published_at IS NULL ... FOR UPDATE SKIP LOCKED` rather than "id greater than the last one
seen", because ids are taken before commit and a lower id can commit later (RELIABILITY.md
trap 5). One relay per schema publishes at a time (an advisory lock), so events of one key
leave in the order their transactions wrote them. A crash between the broker's ack and the
mark re-publishes those rows: consumers drop the duplicates by event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from shared import metrics
from shared.events import Envelope, Event
from shared.leader import keep_running, lead

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "outbox"


async def add(
    conn: asyncpg.Connection,
    event: Event,
    *,
    producer: str,
    occurred_at: datetime,
    event_id: uuid.UUID | None = None,
) -> Envelope:
    """Write `event` to the outbox inside the caller's open transaction.

    Pass `event_id` derived from the cause (e.g. uuid5 of the consumed event) when the same
    cause must never produce two different events; the unique constraint then refuses it.
    """
    envelope = event.envelope(producer=producer, occurred_at=occurred_at, event_id=event_id)
    await _insert(conn, [(event, envelope)])
    return envelope


async def add_many(
    conn: asyncpg.Connection, events: Sequence[Event], *, producer: str, occurred_at: datetime
) -> None:
    """`add` for a batch (new event ids), in one statement whatever its size."""
    if events:
        await _insert(
            conn,
            [(e, e.envelope(producer=producer, occurred_at=occurred_at)) for e in events],
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
    items = [(e, e.envelope(producer=producer, occurred_at=occurred_at)) for e in events]
    return _columns(items)


def _columns(items: Sequence[tuple[Event, Envelope]]) -> tuple[list[Any], ...]:
    return (
        [env.event_id for _, env in items],
        [ev.TOPIC for ev, _ in items],
        [env.key for _, env in items],
        [env.type for _, env in items],
        [env.to_bytes() for _, env in items],
    )


async def _insert(conn: asyncpg.Connection, items: Sequence[tuple[Event, Envelope]]) -> None:
    """The outbox rows and one wake-up of the relay (delivered at commit), in one statement."""
    if not conn.is_in_transaction():
        raise RuntimeError("outbox rows must be written in the transaction of the state change")
    await conn.execute(
        f"WITH added AS ({insert_sql(1)}) SELECT pg_notify($6, '')",
        *_columns(items),
        NOTIFY_CHANNEL,
    )


async def backlog(conn: asyncpg.Connection) -> tuple[int, float]:
    """Unpublished rows and the age in seconds of the oldest one."""
    row = await conn.fetchrow(
        "SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age"
        " FROM outbox WHERE published_at IS NULL"
    )
    assert row is not None
    return int(row["n"]), float(row["age"])


class OutboxRelay:
    """Publishes one schema's outbox to Kafka; run exactly one task per process."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        schema: str,
        batch_size_max: int = 500,
        poll_interval_ms: int = 500,
        retention: timedelta = timedelta(days=7),
    ) -> None:
        self._pool = pool
        self._producer = producer
        self.schema = schema
        self._schema = schema
        self._batch_size_max = batch_size_max
        self._poll_s = poll_interval_ms / 1000
        self._retention = retention
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self._schema}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        await keep_running(f"outbox relay {self._schema}", self._lead)

    async def _lead(self) -> None:
        """Hold the relay lock on a dedicated connection and publish until it is lost."""
        await lead(
            self._pool,
            lock_key=f"outbox:{self._schema}",
            channel=NOTIFY_CHANNEL,
            on_notify=self._on_notify,
            work=self._publish_loop,
            idle_s=max(self._poll_s, 1.0),  # another process is relaying
        )

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _publish_loop(self, conn: asyncpg.Connection) -> None:
        cleaned_at = 0.0
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            published = await self.publish_batch(conn)
            if loop.time() - cleaned_at > 60:
                await self._clean(conn)
                cleaned_at = loop.time()
            if published >= self._batch_size_max:
                continue  # more waiting: do not sleep
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_s)

    async def publish_batch(self, conn: asyncpg.Connection) -> int:
        """Publish up to one batch; returns how many rows were published."""
        async with conn.transaction():
            rows = await conn.fetch(
                "SELECT id, topic, key, payload FROM outbox WHERE published_at IS NULL"
                " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                self._batch_size_max,
            )
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

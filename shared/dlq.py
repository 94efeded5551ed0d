"""Reading and replaying dead-letter topics (used by the admin CLI and its tests).

A replay republishes each DLQ message, unchanged, to its source topic and commits the DLQ
offset only after the broker acknowledged it, under one consumer group per DLQ: a second
replay never sends the same dead letter twice, and a crash mid-replay can only re-send
(which the consumers' idempotency absorbs). The original event id is kept, so an event that
was applied after all is not applied twice.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.kafka import KafkaSecurity, make_producer, stack_security
from shared.topics import DLQ_SUFFIX, SOURCE_TOPICS, dlq_of

REPLAY_GROUP_PREFIX = "gwangsan-dlq-replay."


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: str | None
    error: str
    service: str
    source_topic: str
    source_offset: str
    attempts: str
    value_preview: str
    source_partition: str = ""

    @property
    def id(self) -> str:
        """How an operator names this dead letter: `<dlq topic>:<partition>:<offset>`."""
        return f"{dlq_of(self.source_topic)}:{self.partition}:{self.offset}"

    @property
    def position(self) -> tuple[str, int, int]:
        return (dlq_of(self.source_topic), self.partition, self.offset)


Position = tuple[str, int, int]  # (dlq topic, partition, offset)
_LETTER_ID = re.compile(
    r"^(?P<topic>[a-z0-9._-]+\.dlq):(?P<partition>\d{1,5}):(?P<offset>\d{1,19})$"
)


def parse_letter_id(text: str) -> Position:
    """`<dlq topic>:<partition>:<offset>` as `gwangsan dlq list` prints it, or ValueError."""
    match = _LETTER_ID.match(text.strip())
    if match is None or match["topic"].removesuffix(DLQ_SUFFIX) not in SOURCE_TOPICS:
        raise ValueError(
            f"{text!r} is not a dead letter id: `<dlq topic>:<partition>:<offset>`,"
            " as `gwangsan dlq list` shows it"
        )
    return (match["topic"], int(match["partition"]), int(match["offset"]))


def _header(headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...], name: str) -> str:
    for key, value in headers or ():
        if key == name:
            return value.decode("utf-8", "replace")
    return ""


async def _partitions(bootstrap: str, topic: str, security: KafkaSecurity) -> int:
    """How many partitions `topic` has on the broker now: not the count it was created with
    (`shared.topics`), since an operator may have grown it (docs/operations.md). An
    unsubscribed consumer has no partition metadata of its own to ask, so an admin client
    asks."""
    from shared.provision import ProvisionError, admin_client

    admin = admin_client(bootstrap, security)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described["error_code"] != 0 or not described["partitions"]:
        raise ProvisionError(f"Kafka does not know the topic {topic} (is it provisioned?).")
    return len(described["partitions"])


async def _assign_from_replay_offsets(
    consumer: AIOKafkaConsumer, topic: str, partitions: int
) -> list[TopicPartition]:
    """Assign every partition of `topic`, positioned after what was already replayed."""
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    for tp in tps:
        committed = await consumer.committed(tp)
        consumer.seek(tp, committed or 0)
    return tps


def _consumer(bootstrap: str, group: str | None, security: KafkaSecurity) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        **security.client_kwargs(),
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )


async def pending(
    bootstrap: str, source_topic: str, limit: int = 1000, security: KafkaSecurity | None = None
) -> list[DeadLetter]:
    """Dead letters of `source_topic` not replayed yet (after the replay group's offsets).
    An operator's tool: `security` is the admin user (only it reads every DLQ); by default
    the one stack.env or the environment names."""
    security = security or stack_security()
    topic = dlq_of(source_topic)
    partitions = await _partitions(bootstrap, topic, security)
    consumer = _consumer(bootstrap, REPLAY_GROUP_PREFIX + topic, security)
    await consumer.start()
    letters: list[DeadLetter] = []
    try:
        tps = await _assign_from_replay_offsets(consumer, topic, partitions)
        ends = await consumer.end_offsets(tps)
        while len(letters) < limit:
            positions = {tp: await consumer.position(tp) for tp in tps}
            if all(positions[tp] >= ends[tp] for tp in tps):
                break
            batch = await consumer.getmany(timeout_ms=1000, max_records=limit - len(letters))
            for records in batch.values():
                for r in records:
                    headers = list(r.headers or ())
                    letters.append(
                        DeadLetter(
                            partition=r.partition,
                            offset=r.offset,
                            key=r.key.decode("utf-8", "replace") if r.key else None,
                            error=_header(headers, "x-error"),
                            service=_header(headers, "x-service"),
                            source_topic=_header(headers, "x-source-topic") or source_topic,
                            source_offset=_header(headers, "x-source-offset"),
                            attempts=_header(headers, "x-attempts"),
                            value_preview=(r.value or b"")[:200].decode("utf-8", "replace"),
                            source_partition=_header(headers, "x-source-partition"),
                        )
                    )
    finally:
        await consumer.stop()
    return letters


async def replay(
    bootstrap: str,
    source_topic: str,
    limit: int = 1000,
    discarded: Collection[Position] = (),
    security: KafkaSecurity | None = None,
) -> int:
    """Republish up to `limit` pending dead letters to `source_topic`; returns how many.
    Discarded ones are stepped over (their offsets committed, nothing sent)."""
    if source_topic.endswith(DLQ_SUFFIX):
        raise ValueError("name the source topic, not its .dlq")
    security = security or stack_security()
    topic = dlq_of(source_topic)
    partitions = await _partitions(bootstrap, topic, security)
    consumer = _consumer(bootstrap, REPLAY_GROUP_PREFIX + topic, security)
    producer = make_producer(bootstrap, "gwangsan-dlq-replay", security)
    await consumer.start()
    await producer.start()
    sent = 0
    try:
        tps = await _assign_from_replay_offsets(consumer, topic, partitions)
        ends = await consumer.end_offsets(tps)
        while sent < limit:
            positions = {tp: await consumer.position(tp) for tp in tps}
            if all(positions[tp] >= ends[tp] for tp in tps):
                break
            batch = await consumer.getmany(timeout_ms=1000, max_records=limit - sent)
            for tp, records in batch.items():
                for r in records:
                    if (topic, r.partition, r.offset) in discarded:
                        continue
                    await producer.send_and_wait(source_topic, r.value, key=r.key)
                    sent += 1
                await consumer.commit({tp: records[-1].offset + 1})
    finally:
        await producer.stop()
        await consumer.stop()
    return sent


# --- discards (Postgres): a triaged dead letter, on record ----------------------------------

SERVICE_SCHEMAS = ("registry", "matcher", "allowance")


async def discard(
    conn: asyncpg.Connection, letter: DeadLetter, *, reason: str, discarded_by: str
) -> bool:
    """Record that `letter` will not be replayed, in the schema of the service that
    dead-lettered it; False when it was discarded before (the first record stands)."""
    if letter.service not in SERVICE_SCHEMAS:
        raise ValueError(f"dead letter {letter.id} names no known service ({letter.service!r})")
    if not reason.strip():
        raise ValueError("say why the dead letter is discarded (--reason)")
    status = await conn.execute(
        f"INSERT INTO {letter.service}.dead_letter_discards"
        " (dlq_topic, dlq_partition, dlq_offset, source_topic, source_partition,"
        "  source_offset, reason, discarded_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        *letter.position,
        letter.source_topic,
        int(letter.source_partition) if letter.source_partition.isdigit() else None,
        int(letter.source_offset) if letter.source_offset.isdigit() else None,
        reason.strip()[:1000],
        discarded_by.strip()[:200],
    )
    return str(status).endswith(" 1")


async def discarded(conn: asyncpg.Connection) -> set[Position]:
    """Every discarded dead letter's DLQ position, in every service schema."""
    found: set[Position] = set()
    for schema in SERVICE_SCHEMAS:
        rows = await conn.fetch(
            f"SELECT dlq_topic, dlq_partition, dlq_offset FROM {schema}.dead_letter_discards"
        )
        found.update((r["dlq_topic"], r["dlq_partition"], r["dlq_offset"]) for r in rows)
    return found

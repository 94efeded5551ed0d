"""Reading and replaying dead-letter topics (used by the admin CLI and its tests).

A replay republishes each DLQ message, unchanged, to its source topic and commits the DLQ
offset only after the broker acknowledged it, under one consumer group per DLQ: a second
replay never sends the same dead letter twice, and a crash mid-replay can only re-send
(which the consumers' idempotency absorbs). The original event id is kept, so an event that
was applied after all is not applied twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.kafka import KafkaSecurity, make_producer, stack_security
from shared.topics import DLQ_SUFFIX, TOPICS, dlq_of

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


def _header(headers: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...], name: str) -> str:
    for key, value in headers or ():
        if key == name:
            return value.decode("utf-8", "replace")
    return ""


async def _assign_from_replay_offsets(
    consumer: AIOKafkaConsumer, topic: str
) -> list[TopicPartition]:
    """Assign every partition of `topic`, positioned after what was already replayed."""
    # The topic specs are what the topics were created from (an unsubscribed consumer has no
    # partition metadata of its own to ask).
    partitions = next(spec.partitions for spec in TOPICS if spec.name == topic)
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
    consumer = _consumer(bootstrap, REPLAY_GROUP_PREFIX + topic, security)
    await consumer.start()
    letters: list[DeadLetter] = []
    try:
        tps = await _assign_from_replay_offsets(consumer, topic)
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
                        )
                    )
    finally:
        await consumer.stop()
    return letters


async def replay(
    bootstrap: str, source_topic: str, limit: int = 1000, security: KafkaSecurity | None = None
) -> int:
    """Republish up to `limit` pending dead letters to `source_topic`; returns how many."""
    if source_topic.endswith(DLQ_SUFFIX):
        raise ValueError("name the source topic, not its .dlq")
    security = security or stack_security()
    topic = dlq_of(source_topic)
    consumer = _consumer(bootstrap, REPLAY_GROUP_PREFIX + topic, security)
    producer = make_producer(bootstrap, "gwangsan-dlq-replay", security)
    await consumer.start()
    await producer.start()
    sent = 0
    try:
        tps = await _assign_from_replay_offsets(consumer, topic)
        ends = await consumer.end_offsets(tps)
        while sent < limit:
            positions = {tp: await consumer.position(tp) for tp in tps}
            if all(positions[tp] >= ends[tp] for tp in tps):
                break
            batch = await consumer.getmany(timeout_ms=1000, max_records=limit - sent)
            for tp, records in batch.items():
                for r in records:
                    await producer.send_and_wait(source_topic, r.value, key=r.key)
                    sent += 1
                await consumer.commit({tp: records[-1].offset + 1})
    finally:
        await producer.stop()
        await consumer.stop()
    return sent

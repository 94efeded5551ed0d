"""Replays and redeliveries change nothing: every webhook of a scenario sent again, the
scenario's events re-published to their topics, and a whole topic read from the beginning
by a fresh consumer group — the effects are counted before and after and are identical."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared import topics
from shared.consumer import EventConsumer, RawMessage
from shared.events import (
    BookingCancelled,
    BookingConfirmed,
    BookingPromoted,
    BookingRejected,
    BookingWaitlisted,
    DrawCompleted,
    Envelope,
    Event,
    UnknownEventError,
    parse_event,
)
from shared.kafka import make_producer, stack_client_kwargs, stack_security

from .scenario import (
    Scenario,
    SimKeeper,
    assert_outcome,
    check_invariants,
    end_offsets,
    failure_seed,
    read_topic,
    settle,
    snapshot,
    wait_ready,
)

pytestmark = [pytest.mark.stack, pytest.mark.slow]

ROUNDS = 2
REPUBLISHED_TOPICS = (
    topics.REGISTRY_POSTINGS,
    topics.ALLOWANCE_BUDGET,
    topics.MATCHER_APPLICATIONS,
    topics.MATCHER_BOOKINGS,
)


async def _played(
    stack_env: dict[str, str],
    admin_dsn: str,
    kafka_bootstrap: str,
    http: httpx.AsyncClient,
    sim: SimKeeper,
    label: str,
) -> tuple[int, Scenario, dict[str, dict[int, int]]]:
    """A calm, settled, checked scenario, and the topic offsets from before it."""
    seed = failure_seed()
    await wait_ready(http, stack_env)
    since = {t: await end_offsets(kafka_bootstrap, t) for t in REPUBLISHED_TOPICS}
    scenario = Scenario(stack_env, http, random.Random(seed), f"{label}{seed}")
    await scenario.setup()
    for _ in range(ROUNDS):
        await scenario.run_round()
    await settle(admin_dsn, kafka_bootstrap, scenario.posting_ids, seed=seed, sim=sim)
    await assert_outcome(
        scenario, admin_dsn, kafka_bootstrap, since[topics.MATCHER_BOOKINGS], sim.url, seed=seed
    )
    return seed, scenario, since


async def test_replaying_every_webhook_changes_nothing(
    stack_env: dict[str, str],
    admin_dsn: str,
    kafka_bootstrap: str,
    failure_http: httpx.AsyncClient,
    failure_sim_url: str,
    failure_sim: SimKeeper,
) -> None:
    """Every webhook of a settled scenario is delivered again (same webhook-id, same body,
    freshly signed), all at once: each is answered 202, and once the matcher has consumed
    them every count of every service is what it was, the partner got nothing new."""
    seed, scenario, since = await _played(
        stack_env, admin_dsn, kafka_bootstrap, failure_http, failure_sim, "r"
    )
    before = await snapshot(admin_dsn, scenario.posting_ids)
    answers = await asyncio.gather(*(scenario.deliver(d) for d in scenario.deliveries))
    assert [a.status_code for a in answers] == [202] * len(scenario.deliveries)
    await settle(admin_dsn, kafka_bootstrap, scenario.posting_ids, seed=seed, sim=failure_sim)
    after = await snapshot(admin_dsn, scenario.posting_ids)
    assert after == before, f"seed={seed}"
    await assert_outcome(
        scenario,
        admin_dsn,
        kafka_bootstrap,
        since[topics.MATCHER_BOOKINGS],
        failure_sim_url,
        seed=seed,
    )
    report = await check_invariants(admin_dsn, kafka_bootstrap, scenario.posting_ids)
    assert report.ok, f"invariants (seed={seed}): {report.render()}"
    print(f"failure seed={seed}: replayed {len(answers)} webhooks, effects unchanged {before}")


async def test_republished_events_are_applied_once(
    stack_env: dict[str, str],
    admin_dsn: str,
    kafka_bootstrap: str,
    failure_http: httpx.AsyncClient,
    failure_sim_url: str,
    failure_sim: SimKeeper,
) -> None:
    """Every event of a settled scenario on the postings, budget, applications and
    bookings topics is produced again, byte for byte with its key (as a relay that
    crashed before marking its rows would): the services consume them all and no count of
    bookings, roster rows, reservations, ledger entries, notifications or outbox rows
    moves."""
    seed, scenario, since = await _played(
        stack_env, admin_dsn, kafka_bootstrap, failure_http, failure_sim, "p"
    )
    keys = set(scenario.posting_ids)
    before = await snapshot(admin_dsn, scenario.posting_ids)
    producer = make_producer(kafka_bootstrap, "failure-republish", stack_security())
    await producer.start()
    sent = 0
    try:
        for topic in REPUBLISHED_TOPICS:
            for _, _, key, value in await read_topic(kafka_bootstrap, topic, since[topic]):
                if key is not None and key.decode() in keys:
                    await producer.send(topic, value=value, key=key)
                    sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    assert sent >= ROUNDS * 10, sent
    await settle(admin_dsn, kafka_bootstrap, scenario.posting_ids, seed=seed, sim=failure_sim)
    after = await snapshot(admin_dsn, scenario.posting_ids)
    assert after == before, f"seed={seed}"
    await assert_outcome(
        scenario,
        admin_dsn,
        kafka_bootstrap,
        since[topics.MATCHER_BOOKINGS],
        failure_sim_url,
        seed=seed,
    )
    report = await check_invariants(admin_dsn, kafka_bootstrap, scenario.posting_ids)
    assert report.ok, f"invariants (seed={seed}): {report.render()}"
    print(f"failure seed={seed}: re-published {sent} events, effects unchanged")


# Every event type `matcher.bookings.v1` carries, a draw's DrawCompleted too (issue 19): a
# type without a handler would be `ignored` on both passes, never `duplicate`.
BOOKING_TYPES: tuple[type[Event], ...] = (
    BookingConfirmed,
    BookingWaitlisted,
    BookingRejected,
    BookingPromoted,
    BookingCancelled,
    DrawCompleted,
)


async def _redeliver(
    kafka_bootstrap: str, consumer: EventConsumer, group: str, ends: dict[int, int]
) -> tuple[list[str], int]:
    """Read `matcher.bookings.v1` from the beginning in a new consumer group and feed it
    through `consumer`; returns the outcomes and how many records were not events."""
    reader = AIOKafkaConsumer(
        **stack_client_kwargs(),
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await reader.start()
    try:
        tps = [TopicPartition(topics.MATCHER_BOOKINGS, p) for p in ends]
        reader.assign(tps)
        outcomes: list[str] = []
        foreign = 0
        while [tp for tp in tps if await reader.position(tp) < ends[tp.partition]]:
            batches = await reader.getmany(*tps, timeout_ms=500, max_records=500)
            for tp, records in batches.items():
                msgs = []
                for r in records:
                    if r.offset >= ends[tp.partition]:
                        continue
                    try:
                        parse_event(Envelope.from_bytes(r.value or b""))
                    except (ValueError, UnknownEventError):
                        foreign += 1  # not ours to dead-letter into the real DLQ
                        continue
                    msgs.append(RawMessage(r.topic, r.partition, r.offset, r.key, r.value or b""))
                outcomes.extend(await consumer.process_batch(msgs))
            await reader.commit()
        return outcomes, foreign
    finally:
        await reader.stop()


async def test_topic_redelivered_from_the_beginning_into_a_fresh_group(
    kafka_bootstrap: str,
    admin_dsn: str,
    make_schema: Callable[[], Awaitable[str]],
) -> None:
    """`matcher.bookings.v1` is read from offset 0 by a new consumer group through a fresh
    idempotent consumer (on a scratch schema) that records one row per booking event; then
    again by a second new group: the first pass applies each distinct event id exactly
    once (duplicates the relays published are skipped), the second applies nothing."""
    schema = await make_schema()
    pool = await asyncpg.create_pool(
        admin_dsn, min_size=1, max_size=2, server_settings={"search_path": schema}
    )
    assert pool is not None
    producer = make_producer(kafka_bootstrap, "failure-redeliver", stack_security())
    await producer.start()
    try:
        await pool.execute(
            "CREATE TABLE effects (event_id uuid NOT NULL, type text NOT NULL,"
            " application_id text NOT NULL)"
        )

        async def record(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
            await conn.execute(
                "INSERT INTO effects VALUES ($1, $2, $3)",
                envelope.event_id,
                envelope.type,
                getattr(event, "application_id", ""),
            )

        consumer = EventConsumer(service="failure-redeliver", pool=pool, producer=producer)
        for event_type in BOOKING_TYPES:
            consumer.on(event_type, record)
        # Both passes read up to the same end: other suites may be producing meanwhile.
        ends = await end_offsets(kafka_bootstrap, topics.MATCHER_BOOKINGS)
        group = f"failure-{uuid.uuid4()}"
        first, foreign = await _redeliver(kafka_bootstrap, consumer, group + "-a", ends)
        second, _ = await _redeliver(kafka_bootstrap, consumer, group + "-b", ends)
        effects = await pool.fetchval("SELECT count(*) FROM effects")
        distinct = await pool.fetchval("SELECT count(DISTINCT event_id) FROM effects")
        counted: dict[str, Any] = {o: first.count(o) for o in set(first)}
    finally:
        await producer.stop()
        await pool.close()
    assert first, "matcher.bookings.v1 is empty: nothing was redelivered"
    assert "dead_lettered" not in first, counted
    assert effects == distinct == first.count("applied"), (effects, distinct, counted)
    assert set(second) == {"duplicate"}, {o: second.count(o) for o in set(second)}
    assert len(second) == len(first)
    print(f"redelivered {len(first)} records twice: {counted}, {foreign} foreign records skipped")

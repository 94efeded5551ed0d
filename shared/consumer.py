"""The idempotent-consumer guard: apply each event once, retry a bounded number of times,
then dead-letter it and let the partition move on.

For every message: parse the envelope; in one Postgres transaction record the event id in
`processed_events` and run the handler. A unique violation on the id means the event was
applied before: acknowledge and skip. Offsets are committed only after that transaction
(FastStream's `AckPolicy.MANUAL`; its defaults are at-most-once, RELIABILITY.md trap 1).

Failures come in two kinds. Transient ones (Postgres unreachable, a serialization conflict)
are retried with capped backoff for as long as they last: the partition waits, because
dead-lettering good messages while the database restarts would be worse. Anything else is
retried `attempts_max` times, then the raw message and its error go to `<topic>.dlq` and the
next message is processed. A message that is not a valid envelope goes to the DLQ at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

import asyncpg
import pydantic
from aiokafka import AIOKafkaProducer
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from shared import metrics
from shared.db import collect_after_commit, is_transient, run_after_commit
from shared.events import Envelope, Event, UnknownEventError, parse_event
from shared.logs import bind_event
from shared.prefetch import Fetcher, Prefetcher, next_offsets, poll
from shared.topics import dlq_of

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)
# A handler of one event type: it is given exactly that type (the guard routes by type), so
# its signature is the contract and it needs no `isinstance` assert.
Handler = Callable[[asyncpg.Connection, Envelope, E], Awaitable[None]]
BatchHandler = Callable[[asyncpg.Connection, list[tuple[Envelope, E]]], Awaitable[None]]
# What the guard stores: handlers of many types, each called only with its own type.
AnyHandler = Handler[Any]
AnyBatchHandler = BatchHandler[Any]
Outcome = Literal["applied", "duplicate", "ignored", "dead_lettered"]


@dataclass(frozen=True)
class RawMessage:
    """What the guard needs of a Kafka record (kept small so tests can build one)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


def _single_from_batch(handler: AnyBatchHandler) -> AnyHandler:
    async def single(conn: asyncpg.Connection, envelope: Envelope, event: Any) -> None:
        await handler(conn, [(envelope, event)])

    return single


class EventConsumer:
    """Routes the events of some topics to handlers, exactly once in effect."""

    def __init__(
        self,
        *,
        service: str,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        attempts_max: int = 3,
        retry_backoff_ms: int = 100,
        transient_backoff_max_ms: int = 5_000,
        batch_size_max: int = 500,
        batch_wait_ms: int = 200,
        poll_wait_ms: int = 1_000,
        prefetch_max: int = 0,
        prefetch_gather_ms: int = 0,
        commit_interval_ms: int = 0,
        linger_ms: int = 0,
    ) -> None:
        self.service = service
        self._linger_ms = linger_ms
        # Records fetched ahead of the handler per topic (shared/prefetch.py); 0 applies
        # each fetched batch inside the fetch loop instead.
        self._prefetch_max = prefetch_max
        self._prefetch_gather_ms = prefetch_gather_ms
        self._commit_interval_ms = commit_interval_ms
        self._prefetchers: list[Prefetcher] = []
        self._batch_size_max = batch_size_max
        self._batch_wait_ms = batch_wait_ms
        self._poll_wait_ms = poll_wait_ms
        self._batch_handlers: dict[str, dict[type[Event], AnyBatchHandler]] = {}
        self._pool = pool
        self._producer = producer
        self._attempts_max = attempts_max
        self._retry_backoff_s = retry_backoff_ms / 1000
        self._transient_backoff_max_s = transient_backoff_max_ms / 1000
        self._handlers: dict[str, dict[type[Event], AnyHandler]] = {}
        self.stopping = False

    def on(self, event_type: type[E], handler: Handler[E]) -> None:
        """Apply `handler` to every `event_type` on its topic; other types there are ignored."""
        self._handlers.setdefault(event_type.TOPIC, {})[event_type] = handler

    def on_batch(self, event_type: type[E], handler: BatchHandler[E]) -> None:
        """Like `on`, for handlers that decide a run of consecutive events of one type
        together (one lock, one bulk insert); still called once per event id."""
        self._batch_handlers.setdefault(event_type.TOPIC, {})[event_type] = handler
        self.on(event_type, _single_from_batch(handler))

    @property
    def topics(self) -> list[str]:
        return sorted(self._handlers)

    def group_id(self, topic: str) -> str:
        return f"{self.service}.{topic}"

    def subscribe(self, broker: KafkaBroker) -> None:
        """Register one FastStream subscriber per topic, with manual (after-commit) acks."""
        for topic in self.topics:
            self._subscribe_one(broker, topic)

    def _subscribe_one(self, broker: KafkaBroker, topic: str) -> None:
        common: dict[str, Any] = {
            "group_id": self.group_id(topic),
            "ack_policy": AckPolicy.MANUAL,
            "auto_offset_reset": "earliest",
            "isolation_level": "read_committed",
            "title": f"{self.service}:{topic}",
        }
        if self._linger_ms > 0:
            # The broker answers a fetch when 1 MiB gathered or the linger is over.
            common |= {"fetch_max_wait_ms": self._linger_ms, "fetch_min_bytes": 1 << 20}
        context = broker.context
        if self._batch_size_max > 1 and self._prefetch_max > 0:
            prefetcher = Prefetcher(
                topic,
                self._apply_records,
                batch_size_max=self._batch_size_max,
                queue_max=self._prefetch_max,
                gather_ms=self._prefetch_gather_ms,
                commit_interval_ms=self._commit_interval_ms,
            )
            self._prefetchers.append(prefetcher)

            async def feed() -> None:
                # The message from FastStream's context (as in `consume` below); then this
                # call keeps fetching itself (`Prefetcher.fetch_forever`).
                message: KafkaMessage = context.get_local("message")
                raw = message.raw_message
                # The subscriber's consumer is aiokafka's (FastStream types it narrower).
                consumer = cast(Fetcher, message.consumer)
                await prefetcher.fetch_forever(
                    raw if isinstance(raw, tuple) else (raw,),
                    consumer,
                    timeout_ms=self._poll_wait_ms,
                )

            feed.__name__ = f"consume_{topic.replace('.', '_')}"
            broker.subscriber(
                topic,
                batch=True,
                max_records=self._batch_size_max,
                batch_timeout_ms=self._batch_wait_ms,
                listener=prefetcher,
                **common,
            )(feed)
            return

        async def consume() -> None:
            # The message from FastStream's context, not an annotated parameter: fast_depends
            # resolves one in a worker thread, a thread hop per batch (a tenth of a
            # consumer's CPU in the profile, and latency on the decision path).
            message: KafkaMessage = context.get_local("message")
            raw = message.raw_message
            await self._apply_records(raw if isinstance(raw, tuple) else (raw,))
            await message.ack()  # commits the offsets only now, after the effects
            # Then this call goes on polling the same aiokafka consumer itself, applying
            # and committing each batch the same way: FastStream's loop sleeps as long as
            # its poll waited after every empty poll, so its wait had to be short (10 ms)
            # and every idle consumer woke ~50 times a second (issue 20: ~250 wake-ups a
            # second and 6 % of a core per idle service on a slow host). Here an idle
            # consumer wakes once per `poll_wait_ms`, and a record ends the wait at once.
            consumer = cast(Fetcher, message.consumer)
            while not self.stopping:
                records = await poll(
                    consumer, topic, timeout_ms=self._poll_wait_ms, max_records=self._batch_size_max
                )
                if records is None or self.stopping:
                    return  # anything just polled is redelivered: it was not committed
                if records:
                    await self._apply_records(records)
                    # As `message.ack()` does: only what this consumer still owns.
                    owned = consumer.assignment()
                    offsets = {tp: o for tp, o in next_offsets(records).items() if tp in owned}
                    if offsets:
                        await consumer.commit(offsets)

        consume.__name__ = f"consume_{topic.replace('.', '_')}"
        if self._batch_size_max > 1:
            broker.subscriber(
                topic,
                batch=True,
                max_records=self._batch_size_max,
                batch_timeout_ms=self._batch_wait_ms,
                **common,
            )(consume)
        else:
            broker.subscriber(topic, **common)(consume)

    async def _apply_records(self, records: Sequence[Any]) -> None:
        await self.process_batch(
            [RawMessage(r.topic, r.partition, r.offset, r.key, r.value or b"") for r in records]
        )

    def queued_by_topic(self) -> dict[str, int]:
        """Records fetched ahead and not applied yet, per topic (part of the lag)."""
        return {p.topic: p.queued for p in self._prefetchers}

    async def stop(self) -> None:
        """Stop applying (after the batch under way and its commit); call before the
        broker stops."""
        self.stopping = True
        for prefetcher in self._prefetchers:
            await prefetcher.stop()

    async def process_batch(self, msgs: list[RawMessage]) -> list[Outcome]:
        """Apply a fetched batch in one transaction when every message in it is well-formed
        and every handler succeeds; otherwise fall back to one message at a time, where
        retries and the DLQ isolate the bad one."""
        if not msgs:
            return []
        started = time.perf_counter()
        try:
            return await self._process_fetched(msgs)
        finally:
            topic = msgs[0].topic
            seconds = time.perf_counter() - started
            metrics.CONSUMER_BATCH_SECONDS.labels(self.service, topic).observe(seconds)
            metrics.CONSUMER_BATCH_SIZE.labels(self.service, topic).observe(len(msgs))

    async def _process_fetched(self, msgs: list[RawMessage]) -> list[Outcome]:
        if len(msgs) > 1:
            try:
                outcomes = await self._apply_batch(msgs)
            except Exception as exc:
                log.info("batch of %d fell back to single messages: %s", len(msgs), exc)
            else:
                for msg, outcome in zip(msgs, outcomes, strict=True):
                    metrics.EVENTS_HANDLED.labels(self.service, msg.topic, outcome).inc()
                return outcomes
        return [await self.process(msg) for msg in msgs]

    async def _apply_batch(self, msgs: list[RawMessage]) -> list[Outcome]:
        parsed = [(m, Envelope.from_bytes(m.value)) for m in msgs]
        items = [(m, env, parse_event(env)) for m, env in parsed]  # raises → fallback
        started = time.perf_counter()
        with collect_after_commit() as committed:
            async with self._pool.acquire() as conn, conn.transaction():
                outcomes = await self._apply_items(conn, items)
        run_after_commit(committed)
        if msgs:
            metrics.EVENT_HANDLE_SECONDS.labels(self.service, msgs[0].topic).observe(
                (time.perf_counter() - started) / len(msgs)
            )
        return outcomes

    async def _apply_items(
        self, conn: asyncpg.Connection, items: list[tuple[RawMessage, Envelope, Event]]
    ) -> list[Outcome]:
        """Record the fresh event ids and run their handlers (consecutive events of one
        batch handler together), in the caller's transaction."""
        outcomes: list[Outcome] = []
        wanted = [
            (m, env, ev) for m, env, ev in items if type(ev) in self._handlers.get(m.topic, {})
        ]
        fresh_ids = set(
            await conn.fetchval(
                "WITH new AS (INSERT INTO processed_events (event_id, topic, event_type)"
                " SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[])"
                " ON CONFLICT (event_id) DO NOTHING RETURNING event_id)"
                " SELECT coalesce(array_agg(event_id), '{}') FROM new",
                [env.event_id for _, env, _ in wanted],
                [ev.TOPIC for _, _, ev in wanted],
                [env.type for _, env, _ in wanted],
            )
        )
        run: list[tuple[Envelope, Event]] = []
        run_handler: AnyBatchHandler | None = None
        seen: set[object] = set()
        for msg, env, ev in items:
            handler = self._handlers.get(msg.topic, {}).get(type(ev))
            if handler is None:
                outcomes.append("ignored")
                continue
            if env.event_id not in fresh_ids or env.event_id in seen:
                outcomes.append("duplicate")
                continue
            seen.add(env.event_id)
            outcomes.append("applied")
            batch_handler = self._batch_handlers.get(msg.topic, {}).get(type(ev))
            if batch_handler is not None and batch_handler is run_handler:
                run.append((env, ev))
                continue
            if run_handler is not None:
                await run_handler(conn, run)
            run, run_handler = [], None
            if batch_handler is not None:
                run, run_handler = [(env, ev)], batch_handler
            else:
                with bind_event(env):
                    await handler(conn, env, ev)
        if run_handler is not None:
            await run_handler(conn, run)
        return outcomes

    async def process(self, msg: RawMessage) -> Outcome:
        """Apply one message; returns what happened. Never raises for a bad message."""
        started = time.perf_counter()
        try:
            envelope = Envelope.from_bytes(msg.value)
            event = parse_event(envelope)
        except (pydantic.ValidationError, UnknownEventError, ValueError) as exc:
            await self._dead_letter(msg, None, f"invalid message: {exc}", attempts=1)
            return "dead_lettered"
        handler = self._handlers.get(msg.topic, {}).get(type(event))
        if handler is None:
            metrics.EVENTS_HANDLED.labels(self.service, msg.topic, "ignored").inc()
            return "ignored"
        with bind_event(envelope):
            outcome = await self._apply_with_retries(msg, envelope, event, handler)
        metrics.EVENT_HANDLE_SECONDS.labels(self.service, msg.topic).observe(
            time.perf_counter() - started
        )
        return outcome

    async def _apply_with_retries(
        self, msg: RawMessage, envelope: Envelope, event: Event, handler: AnyHandler
    ) -> Outcome:
        failures = 0
        transient_backoff_s = self._retry_backoff_s
        while True:
            try:
                applied = await self._apply_once(envelope, event, handler)
            except Exception as exc:
                if is_transient(exc) and not self.stopping:
                    log.warning("transient failure, will retry: %s", exc)
                    metrics.EVENTS_HANDLED.labels(self.service, msg.topic, "retried").inc()
                    await asyncio.sleep(transient_backoff_s)
                    transient_backoff_s = min(
                        transient_backoff_s * 2, self._transient_backoff_max_s
                    )
                    continue
                failures += 1
                if failures >= self._attempts_max:
                    error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                    log.error("handler failed %d times; dead-lettering: %s", failures, error)
                    await self._dead_letter(msg, envelope.event_id, error, attempts=failures)
                    return "dead_lettered"
                metrics.EVENTS_HANDLED.labels(self.service, msg.topic, "retried").inc()
                await asyncio.sleep(self._retry_backoff_s * 2 ** (failures - 1))
                continue
            outcome: Outcome = "applied" if applied else "duplicate"
            metrics.EVENTS_HANDLED.labels(self.service, msg.topic, outcome).inc()
            return outcome

    async def _apply_once(self, envelope: Envelope, event: Event, handler: AnyHandler) -> bool:
        with collect_after_commit() as committed:
            async with self._pool.acquire() as conn, conn.transaction():
                first = await conn.fetchval(
                    "INSERT INTO processed_events (event_id, topic, event_type)"
                    " VALUES ($1, $2, $3) ON CONFLICT (event_id) DO NOTHING RETURNING true",
                    envelope.event_id,
                    event.TOPIC,
                    envelope.type,
                )
                if not first:
                    return False
                await handler(conn, envelope, event)
        run_after_commit(committed)
        return True

    async def _dead_letter(
        self, msg: RawMessage, event_id: uuid.UUID | None, error: str, *, attempts: int
    ) -> None:
        """Publish the raw message with its error to the DLQ (acknowledged), then note it."""
        headers = [
            ("x-error", error[:4000].encode()),
            ("x-source-topic", msg.topic.encode()),
            ("x-source-partition", str(msg.partition).encode()),
            ("x-source-offset", str(msg.offset).encode()),
            ("x-attempts", str(attempts).encode()),
            ("x-service", self.service.encode()),
        ]
        while True:
            try:
                await self._producer.send_and_wait(
                    dlq_of(msg.topic), value=msg.value, key=msg.key, headers=headers
                )
                break
            except Exception as exc:  # Kafka unreachable: the message must not be dropped
                log.warning("DLQ publish failed, retrying: %s", exc)
                await asyncio.sleep(1)
        metrics.DLQ_PUBLISHED.labels(self.service, msg.topic).inc()
        metrics.EVENTS_HANDLED.labels(self.service, msg.topic, "dead_lettered").inc()
        try:
            await self._pool.execute(
                'INSERT INTO dead_letters (topic, partition, "offset", event_id, error, attempts)'
                " VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT DO NOTHING",
                msg.topic,
                msg.partition,
                msg.offset,
                event_id,
                error[:4000],
                attempts,
            )
        except Exception as exc:  # the DLQ topic already holds it; this is a convenience copy
            log.warning("could not note the dead letter in Postgres: %s", exc)

"""Fetch ahead of the handler: the consumer's records move into a bounded queue of our own
while the previous batch is applied, and offsets are committed per batch, explicitly.

Why (issue 20, docs/performance.md): aiokafka's fetcher does not ask the broker for a
partition again while records of it sit in its own buffer. When the handler ran inside the
fetch loop, a record reaching the broker while its partition's earlier records waited for
the handler was fetched only after the next batch had started — it was applied two batches
after it arrived, not one. Here the fetch loop (FastStream's subscriber) only hands records
over, so aiokafka's buffer stays empty and every partition is always in the next fetch.

Correctness, the same as applying inline:
* a batch's offsets are committed (explicitly, `offset + 1` per partition) only after its
  transaction committed, never the fetch position — by a task of their own, so the next
  batch does not wait for the broker's answer, and at most every `commit_interval_ms` (the
  batches of the interval in one request; at once on a revocation or a stop); a crash
  redelivers from the last commit and the event-id guard drops what was applied;
* per partition, records are applied in offset order (one queue, one applier);
* on a rebalance the revoked partitions' queued records are dropped before the revocation
  completes, after the batch being applied has committed its offsets, so the new owner
  starts exactly after what this process applied; records of a partition this process no
  longer owns are never applied or committed here;
* the queue is bounded: a full queue holds the fetch loop (backpressure), so memory is
  bounded by `queue_max` records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import ConsumerStoppedError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from shared.waiting import wait_set

log = logging.getLogger(__name__)


class Record(Protocol):
    """What is needed of a Kafka record (aiokafka's `ConsumerRecord` is one)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...


class Committer(Protocol):
    """What is needed of the Kafka consumer (aiokafka's `AIOKafkaConsumer` is one)."""

    def assignment(self) -> set[TopicPartition]: ...
    async def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None: ...


class Fetcher(Committer, Protocol):
    """A consumer that is also fetched from (aiokafka's `AIOKafkaConsumer` is one)."""

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[Any]]: ...


Apply = Callable[[Sequence[Any]], Awaitable[None]]


async def poll(
    consumer: Fetcher, topic: str, *, timeout_ms: int, max_records: int
) -> list[Any] | None:
    """The records of one `getmany`, or None once the consumer is stopped.

    `timeout_ms` only bounds a wait in which nothing arrives: aiokafka wakes the call as
    soon as a fetch brings records, so a long wait costs no latency and an idle consumer
    wakes once per `timeout_ms` instead of spinning. A Kafka error is logged and the poll
    comes back empty after 5 s, as FastStream's own loop does."""
    try:
        fetched = await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
    except ConsumerStoppedError:
        return None
    except KafkaError as exc:
        log.error("%s: fetching failed: %s", topic, exc)
        await asyncio.sleep(5)
        return []
    return [record for records in fetched.values() for record in records]


def next_offsets(records: Iterable[Record]) -> dict[TopicPartition, OffsetAndMetadata]:
    """The offsets to commit after `records` were applied: one past each partition's last."""
    last: dict[TopicPartition, int] = {}
    for r in records:
        tp = TopicPartition(r.topic, r.partition)
        last[tp] = max(last.get(tp, -1), r.offset)
    return {tp: OffsetAndMetadata(offset + 1, "") for tp, offset in last.items()}


class Prefetcher(ConsumerRebalanceListener):  # type: ignore[misc]
    """One topic's queue between the fetch loop (`feed`) and the applier task."""

    def __init__(
        self,
        topic: str,
        apply: Apply,
        *,
        batch_size_max: int,
        queue_max: int,
        gather_ms: int = 0,
        commit_interval_ms: int = 0,
    ) -> None:
        self.topic = topic
        self._gather_s = gather_ms / 1000
        self._commit_interval_s = commit_interval_ms / 1000
        self._apply = apply
        self._batch_size_max = batch_size_max
        self._queue_max = max(queue_max, batch_size_max)
        self._queue: deque[Any] = deque()
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._applying = asyncio.Lock()  # held while a batch is applied and committed
        self._consumer: Committer | None = None
        self._task: asyncio.Task[None] | None = None
        self._to_commit: dict[TopicPartition, OffsetAndMetadata] = {}
        self._committer: asyncio.Task[None] | None = None
        self._commit_now = asyncio.Event()
        self._flushing = False  # someone waits in `_committed`: no more waiting to commit
        self._stopped = False

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def feed(self, records: Sequence[Any], consumer: Committer) -> None:
        """Queue fetched records (waiting while the queue is full); returns at once
        otherwise, so the fetch loop fetches again while the applier works."""
        if self._stopped:
            return
        self._consumer = consumer
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"apply-{self.topic}")
        while len(self._queue) >= self._queue_max and not self._stopped:
            self._room.clear()
            await self._room.wait()
        owned = consumer.assignment()
        self._queue.extend(r for r in records if TopicPartition(r.topic, r.partition) in owned)
        self._arrived.set()

    async def fetch_forever(
        self, first: Sequence[Any], consumer: Fetcher, *, timeout_ms: int
    ) -> None:
        """Feed `first`, then fetch from `consumer` and feed until stopped or cancelled.

        FastStream's subscriber calls the handler once per fetch, through its dependency
        injection, middlewares and access log: fetching ahead makes that once per fetch
        *response* (hundreds a second), and that overhead took the CPU the decisions
        needed. So the first call of the handler stays here and fetches from the same
        aiokafka consumer itself (FastStream's loop, which would call `getmany` next, waits
        in this call); the subscriber's stop cancels it."""
        await self.feed(first, consumer)
        while not self._stopped:
            fetched = await poll(
                consumer, self.topic, timeout_ms=timeout_ms, max_records=self._batch_size_max
            )
            if fetched is None:
                return
            if fetched:
                await self.feed(fetched, consumer)
                if self._gather_s:
                    await asyncio.sleep(self._gather_s)

    async def _run(self) -> None:
        backoff_s = 0.1
        while True:
            await self._arrived.wait()
            async with self._applying:
                batch = [
                    self._queue.popleft()
                    for _ in range(min(len(self._queue), self._batch_size_max))
                ]
                if not self._queue:
                    self._arrived.clear()
                self._room.set()
                if not batch:
                    continue
                try:
                    await self._apply(batch)
                except Exception:
                    # Never move past records that were not applied: put them back in front
                    # (a later commit would otherwise skip them) and try again shortly.
                    log.exception("%s: applying a batch failed; retrying it", self.topic)
                    self._queue.extendleft(reversed(batch))
                    self._arrived.set()
                    failed = True
                else:
                    self._commit(batch)
                    failed, backoff_s = False, 0.1
            if failed:
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 5.0)

    def _commit(self, batch: Sequence[Any]) -> None:
        """Hand the batch's offsets to the committer task and go on with the next batch:
        the broker's answer is not waited for here (a crash before it only redelivers
        applied records, which the guard drops). Commits go out one at a time, in order,
        each carrying the newest offsets handed over so far."""
        self._to_commit.update(next_offsets(batch))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(
                self._commit_pending(), name=f"commit-{self.topic}"
            )

    async def _commit_pending(self) -> None:
        while self._to_commit:
            consumer = self._consumer
            assert consumer is not None
            owned = consumer.assignment()
            offsets = {tp: o for tp, o in self._to_commit.items() if tp in owned}
            self._to_commit = {}
            if not offsets:
                continue
            try:
                await consumer.commit(offsets)
            except KafkaError as exc:  # a rebalance under way: the next owner's guard drops repeats
                log.warning("%s: offsets not committed (%s); redelivered later", self.topic, exc)
            if self._commit_interval_s and not (self._stopped or self._flushing):
                # The batches applied meanwhile are committed together, in one request; a
                # revocation or a stop (`_committed`) cuts the wait short.
                self._commit_now.clear()
                await wait_set(self._commit_now, self._commit_interval_s)

    async def _committed(self) -> None:
        """Wait until every handed-over offset was committed (or refused), now."""
        self._flushing = True
        try:
            while self._committer is not None and not self._committer.done():
                self._commit_now.set()
                await asyncio.shield(self._committer)
        finally:
            self._flushing = False

    # --- the rebalance listener (FastStream passes it to aiokafka) -------------------------

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Let the batch being applied finish and commit, then drop the revoked partitions'
        queued records: the next owner starts right after what was applied here."""
        async with self._applying:
            await self._committed()
            kept = [r for r in self._queue if TopicPartition(r.topic, r.partition) not in revoked]
            dropped = len(self._queue) - len(kept)
            self._queue = deque(kept)
            if not self._queue:
                self._arrived.clear()
            self._room.set()
        if dropped:
            log.info("%s: %d queued record(s) of revoked partitions dropped", self.topic, dropped)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Nothing to do: the fetch starts from the committed offsets."""

    async def stop(self) -> None:
        """After the batch being applied (and its commit); queued records are dropped (not
        committed, so they are redelivered to whoever owns their partitions next)."""
        self._stopped = True
        self._room.set()
        if self._task is None:
            return
        async with self._applying:
            self._task.cancel()
            self._queue.clear()
            await self._committed()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

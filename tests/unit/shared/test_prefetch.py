"""The fetch-ahead queue (shared/prefetch.py) with a fake consumer: records fed while a
batch is applied go into the next batch, offsets are committed only after their batch was
applied, a rebalance drops exactly the revoked partitions' queued records after the batch
under way committed, and a failing batch is retried, never skipped."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata

from shared.prefetch import Prefetcher, next_offsets

T = "matcher.applications.v1"


@dataclass(frozen=True)
class Rec:
    topic: str
    partition: int
    offset: int


@dataclass
class FakeConsumer:
    owned: set[TopicPartition] = field(
        default_factory=lambda: {TopicPartition(T, 0), TopicPartition(T, 1)}
    )
    commits: list[dict[TopicPartition, int]] = field(default_factory=list)

    def assignment(self) -> set[TopicPartition]:
        return set(self.owned)

    async def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        self.commits.append({tp: o.offset for tp, o in offsets.items()})


class Applier:
    """Applies batches one at a time, each held until the test releases it."""

    def __init__(self, fail_first: int = 0) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Semaphore(0)
        self.started = asyncio.Event()
        self.fail_first = fail_first

    async def __call__(self, batch: Sequence[Any]) -> None:
        self.started.set()
        await self.gate.acquire()
        if self.fail_first:
            self.fail_first -= 1
            raise RuntimeError("database away")
        self.batches.append([r.offset for r in batch])


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def recs(partition: int, *offsets: int) -> list[Rec]:
    return [Rec(T, partition, o) for o in offsets]


def test_next_offsets_are_one_past_each_partitions_last() -> None:
    got = next_offsets([*recs(0, 5, 6), *recs(1, 9), *recs(0, 7)])
    assert {tp.partition: o.offset for tp, o in got.items()} == {0: 8, 1: 10}


async def test_records_fed_during_a_batch_go_into_the_next_one() -> None:
    consumer, apply = FakeConsumer(), Applier()
    p = Prefetcher("t", apply, batch_size_max=100, queue_max=100)
    await p.feed(recs(0, 0, 1), consumer)
    await apply.started.wait()
    # While batch 1 is applied, the fetch loop is not held: it feeds twice more.
    await asyncio.wait_for(p.feed(recs(0, 2), consumer), timeout=1)
    await asyncio.wait_for(p.feed(recs(1, 0), consumer), timeout=1)
    assert consumer.commits == []  # nothing committed before its batch was applied
    apply.gate.release()
    await _settle()
    assert consumer.commits == [{TopicPartition(T, 0): 2}]
    apply.gate.release()
    await _settle()
    assert apply.batches == [[0, 1], [2, 0]]
    assert consumer.commits[-1] == {TopicPartition(T, 0): 3, TopicPartition(T, 1): 1}
    await p.stop()


async def test_revocation_waits_for_the_batch_under_way_then_drops_the_revoked_records() -> None:
    consumer, apply = FakeConsumer(), Applier()
    p = Prefetcher("t", apply, batch_size_max=100, queue_max=100)
    await p.feed(recs(0, 0), consumer)
    await apply.started.wait()
    await p.feed([*recs(0, 1), *recs(1, 4)], consumer)
    revoked = asyncio.create_task(p.on_partitions_revoked({TopicPartition(T, 0)}))
    await _settle()
    assert not revoked.done()  # the batch under way must finish and commit first
    apply.gate.release()
    await asyncio.wait_for(revoked, timeout=1)
    assert consumer.commits == [{TopicPartition(T, 0): 1}]
    consumer.owned = {TopicPartition(T, 1)}
    apply.gate.release()
    await _settle()
    # Offset 1 of partition 0 was dropped (the next owner starts at the commit, 1).
    assert apply.batches == [[0], [4]]
    assert consumer.commits[-1] == {TopicPartition(T, 1): 5}
    await p.stop()


async def test_records_of_partitions_not_owned_are_not_queued() -> None:
    consumer, apply = FakeConsumer(owned={TopicPartition(T, 1)}), Applier()
    p = Prefetcher("t", apply, batch_size_max=100, queue_max=100)
    await p.feed([*recs(0, 0), *recs(1, 0)], consumer)
    apply.gate.release()
    await _settle()
    assert apply.batches == [[0]] and consumer.commits == [{TopicPartition(T, 1): 1}]
    await p.stop()


async def test_a_failing_batch_is_retried_and_nothing_after_it_is_committed_first() -> None:
    consumer, apply = FakeConsumer(), Applier(fail_first=1)
    p = Prefetcher("t", apply, batch_size_max=2, queue_max=10)
    await p.feed(recs(0, 0, 1, 2), consumer)
    apply.gate.release()  # the first try of [0, 1] fails
    await _settle()
    assert consumer.commits == []
    for _ in range(2):
        apply.gate.release()
    await asyncio.sleep(0.3)  # the retry backoff
    assert apply.batches == [[0, 1], [2]]
    # Commits carry the newest applied offsets (two batches' may go out as one), in order.
    offsets = [c[TopicPartition(T, 0)] for c in consumer.commits]
    assert offsets == sorted(offsets) and offsets[-1] == 3 and set(offsets) <= {2, 3}
    await p.stop()


async def test_a_full_queue_holds_the_fetch_loop() -> None:
    consumer, apply = FakeConsumer(), Applier()
    p = Prefetcher("t", apply, batch_size_max=2, queue_max=2)
    await p.feed(recs(0, 0, 1), consumer)
    await apply.started.wait()  # [0, 1] taken; the queue is empty again
    await p.feed(recs(0, 2, 3), consumer)
    held = asyncio.create_task(p.feed(recs(0, 4), consumer))
    await _settle()
    assert not held.done() and p.queued == 2
    apply.gate.release()
    await asyncio.wait_for(held, timeout=1)
    assert p.queued <= 3
    for _ in range(2):
        apply.gate.release()
    await _settle()
    assert apply.batches == [[0, 1], [2, 3], [4]]
    await asyncio.wait_for(p.stop(), timeout=1)


async def test_stop_lets_the_batch_under_way_commit_and_drops_the_rest() -> None:
    consumer, apply = FakeConsumer(), Applier()
    p = Prefetcher("t", apply, batch_size_max=1, queue_max=10)
    await p.feed(recs(0, 0, 1, 2), consumer)
    await apply.started.wait()
    stopping = asyncio.create_task(p.stop())
    await _settle()
    assert not stopping.done()
    apply.gate.release()
    await asyncio.wait_for(stopping, timeout=1)
    assert apply.batches == [[0]] and consumer.commits == [{TopicPartition(T, 0): 1}]
    assert p.queued == 0


class SlowCommits(FakeConsumer):
    """A broker whose commit answers only when the test says."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = asyncio.Event()

    async def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        await self.answer.wait()
        await super().commit(offsets)


async def test_the_next_batch_does_not_wait_for_the_commit_but_a_revocation_does() -> None:
    consumer, apply = SlowCommits(), Applier()
    p = Prefetcher("t", apply, batch_size_max=1, queue_max=10)
    await p.feed(recs(0, 0, 1), consumer)
    apply.gate.release()
    apply.gate.release()
    await _settle()
    assert apply.batches == [[0], [1]]  # batch 2 applied while commit 1 is unanswered
    revoked = asyncio.create_task(p.on_partitions_revoked({TopicPartition(T, 0)}))
    await _settle()
    assert not revoked.done()  # the next owner must start after what was applied here
    consumer.answer.set()
    await asyncio.wait_for(revoked, timeout=1)
    assert consumer.commits[-1] == {TopicPartition(T, 0): 2}
    await p.stop()


class FetchingConsumer(FakeConsumer):
    """Answers `getmany` from a script, then reports the consumer stopped."""

    def __init__(self, fetches: list[list[Rec]]) -> None:
        super().__init__()
        self.fetches = fetches
        self.asked_at: list[float] = []

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[Any]]:
        from aiokafka.errors import ConsumerStoppedError

        self.asked_at.append(asyncio.get_running_loop().time())
        await asyncio.sleep(0)
        if not self.fetches:
            raise ConsumerStoppedError()
        got: dict[TopicPartition, list[Any]] = {}
        for r in self.fetches.pop(0):
            got.setdefault(TopicPartition(r.topic, r.partition), []).append(r)
        return got


async def test_fetch_forever_feeds_every_fetch_until_the_consumer_stops() -> None:
    consumer = FetchingConsumer([recs(0, 1), [], [*recs(0, 2), *recs(1, 0)]])
    apply = Applier()
    p = Prefetcher("t", apply, batch_size_max=100, queue_max=100)
    fetching = asyncio.create_task(p.fetch_forever(recs(0, 0), consumer, timeout_ms=5))
    await asyncio.wait_for(fetching, timeout=1)  # returned when the consumer stopped
    for _ in range(3):
        apply.gate.release()
    await _settle()
    assert sorted(o for b in apply.batches for o in b) == [0, 0, 1, 2]
    assert consumer.commits[-1] == {TopicPartition(T, 0): 3, TopicPartition(T, 1): 1}
    await p.stop()


async def test_fetch_forever_gathers_after_a_fetch_that_brought_records() -> None:
    """With `gather_ms`, the next fetch waits that long after one that brought records (so
    the events of those milliseconds come back together), never after an empty one."""
    consumer = FetchingConsumer([recs(0, 1), [], recs(0, 2)])
    apply = Applier()
    p = Prefetcher("t", apply, batch_size_max=100, queue_max=100, gather_ms=40)
    await asyncio.wait_for(p.fetch_forever(recs(0, 0), consumer, timeout_ms=5), timeout=2)
    gaps = [b - a for a, b in zip(consumer.asked_at, consumer.asked_at[1:], strict=False)]
    assert len(gaps) == 3
    assert gaps[0] >= 0.035  # after the fetch of offset 1
    assert gaps[1] < 0.035  # after the empty fetch: at once
    assert gaps[2] >= 0.035  # after the fetch of offset 2
    for _ in range(3):
        apply.gate.release()
    await _settle()
    assert sorted(o for b in apply.batches for o in b) == [0, 1, 2]
    await p.stop()


async def test_commits_within_the_interval_go_out_together() -> None:
    consumer, apply = FakeConsumer(), Applier()
    p = Prefetcher("t", apply, batch_size_max=1, queue_max=10, commit_interval_ms=50)
    await p.feed(recs(0, 0, 1, 2, 3, 4), consumer)
    for _ in range(5):
        apply.gate.release()
        await _settle()
    assert apply.batches == [[0], [1], [2], [3], [4]]
    # The first batch's offsets at once; the four applied since wait for the interval.
    assert consumer.commits == [{TopicPartition(T, 0): 1}]
    await asyncio.sleep(0.1)
    assert consumer.commits == [{TopicPartition(T, 0): 1}, {TopicPartition(T, 0): 5}]
    await p.stop()


async def test_a_revocation_or_a_stop_commits_at_once_whatever_the_interval() -> None:
    consumer, apply = FakeConsumer(), Applier()
    p = Prefetcher("t", apply, batch_size_max=1, queue_max=10, commit_interval_ms=60_000)
    await p.feed(recs(0, 0, 1), consumer)
    for _ in range(2):
        apply.gate.release()
        await _settle()
    assert consumer.commits == [{TopicPartition(T, 0): 1}]  # offset 1's waits a minute
    await asyncio.wait_for(p.on_partitions_revoked({TopicPartition(T, 0)}), timeout=1)
    assert consumer.commits[-1] == {TopicPartition(T, 0): 2}
    consumer.owned = {TopicPartition(T, 1)}
    await p.feed(recs(1, 7, 8), consumer)
    for _ in range(2):
        apply.gate.release()
        await _settle()
    assert apply.batches == [[0], [1], [7], [8]]
    assert consumer.commits[-1] == {TopicPartition(T, 1): 8}  # offset 8's waits a minute
    await asyncio.wait_for(p.stop(), timeout=1)
    assert consumer.commits[-1] == {TopicPartition(T, 1): 9}

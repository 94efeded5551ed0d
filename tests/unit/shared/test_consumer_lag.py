"""The lag gauge counts records fetched ahead but not applied yet (shared/prefetch.py):
with a fetch-ahead queue the consumer's position runs ahead of what was applied, and a
lag read from the position alone would hide a stuck decision loop."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from aiokafka import TopicPartition

from shared.service import sample_consumer_lag

T = "matcher.applications.v1"


class FakeKafkaConsumer:
    def __init__(self, ends: dict[int, int], positions: dict[int, int]) -> None:
        self.ends, self.positions = ends, positions

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(T, p) for p in self.ends}

    def highwater(self, tp: TopicPartition) -> int:
        return self.ends[tp.partition]

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp.partition]


async def test_lag_adds_the_queued_records_to_the_position_lag() -> None:
    consumer = FakeKafkaConsumer({0: 100, 1: 50}, {0: 90, 1: 50})
    broker = SimpleNamespace(subscribers=[SimpleNamespace(consumer=consumer, group_id="g")])
    plain = await sample_consumer_lag(cast(Any, broker))
    assert plain == {("g", T): 10}
    queued = await sample_consumer_lag(cast(Any, broker), {T: 25, "other.v1": 7})
    assert queued == {("g", T): 35}

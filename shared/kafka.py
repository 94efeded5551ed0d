"""Kafka clients configured for money: nothing here uses a library default that loses data.

aiokafka's defaults are `acks=1`, no idempotence, auto-commit and `latest` (RELIABILITY.md
trap 2); every client the services use is built here with those set explicitly.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

PRODUCER_SETTINGS: dict[str, object] = {
    "acks": "all",
    "enable_idempotence": True,
    "linger_ms": 1,
    "request_timeout_ms": 15_000,
    "max_batch_size": 256 * 1024,
}

CONSUMER_SETTINGS: dict[str, object] = {
    "enable_auto_commit": False,
    "auto_offset_reset": "earliest",
    "isolation_level": "read_committed",
}


@functools.lru_cache(maxsize=65_536)
def _key_hash(key: bytes) -> int:
    return int(murmur2(key)) & 0x7FFFFFFF


def cached_partitioner(
    key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
) -> int:
    """aiokafka's default partitioner (murmur2 of the key, like the Java client), with each
    key's hash remembered: the hash is pure Python, and the same few posting ids are hashed
    on every webhook (docs/performance.md). Chooses exactly what the default does."""
    if key is None:
        return random.choice(available or all_partitions)
    return all_partitions[_key_hash(key) % len(all_partitions)]


def make_producer(bootstrap_servers: str, client_id: str) -> AIOKafkaProducer:
    """An idempotent producer that waits for every in-sync replica (`acks=all`)."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        partitioner=cached_partitioner,
        **PRODUCER_SETTINGS,
    )

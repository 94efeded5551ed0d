"""Kafka clients configured for money: nothing here uses a library default that loses data.

aiokafka's defaults are `acks=1`, no idempotence, auto-commit and `latest` (RELIABILITY.md
trap 2); every client the services use is built here with those set explicitly.
"""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

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


def make_producer(bootstrap_servers: str, client_id: str) -> AIOKafkaProducer:
    """An idempotent producer that waits for every in-sync replica (`acks=all`)."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers, client_id=client_id, **PRODUCER_SETTINGS
    )

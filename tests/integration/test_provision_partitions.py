"""Provisioning the topics with a non-default KAFKA_PARTITIONS against the real Kafka: topics
are created with that count (DLQs with one); an existing topic with fewer partitions is left
as it is and reported, unless growing is asked for, which grows it. (Throw-away copies of
the topics under a test prefix: the stack's own topics stay as they are.)"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from shared.kafka import KafkaSecurity
from shared.provision import admin_client, ensure_topics
from shared.topics import TopicSpec, topic_specs

pytestmark = pytest.mark.stack


def _renamed(specs: list[TopicSpec], prefix: str) -> list[TopicSpec]:
    return [dataclasses.replace(s, name=prefix + s.name) for s in specs]


@pytest.fixture
async def admin(
    kafka_bootstrap: str, stack_env: dict[str, str]
) -> AsyncIterator[tuple[Any, list[str]]]:
    """An admin client, and a list of topics it deletes at the end."""
    client = admin_client(kafka_bootstrap, KafkaSecurity.from_env(stack_env))
    await client.start()
    made: list[str] = []
    yield client, made
    try:
        if made:
            await client.delete_topics(made)
    finally:
        await client.close()


async def _counts(admin: Any, names: list[str]) -> dict[str, int]:
    described = await admin.describe_topics(names)
    return {t["topic"]: len(t["partitions"]) for t in described}


async def test_topics_are_created_with_the_setting_and_grown_only_when_asked(
    admin: tuple[Any, list[str]], kafka_bootstrap: str, stack_env: dict[str, str]
) -> None:
    client, made = admin
    security = KafkaSecurity.from_env(stack_env)
    prefix = f"test.{uuid.uuid4().hex[:8]}."
    three = _renamed(topic_specs(3), prefix)
    names = [s.name for s in three]
    made.extend(names)
    sources = [s.name for s in three if not s.name.endswith(".dlq")]

    created = await ensure_topics(kafka_bootstrap, security=security, partitions=3, specs=three)
    assert sorted(created.created) == sorted(names)
    assert created.short == {} and created.grown == []
    assert await _counts(client, names) == {s.name: s.partitions for s in three}
    assert {s.partitions for s in three if s.name in sources} == {3}

    five = _renamed(topic_specs(5), prefix)
    kept = await ensure_topics(kafka_bootstrap, security=security, partitions=5, specs=five)
    assert kept.created == [] and kept.grown == []
    assert kept.short == dict.fromkeys(sources, 3)
    warning = kept.short_warning()
    assert warning is not None and "KAFKA_PARTITIONS=5" in warning
    assert await _counts(client, names) == {s.name: s.partitions for s in three}, "unchanged"

    grown = await ensure_topics(
        kafka_bootstrap, security=security, partitions=5, specs=five, grow=True
    )
    assert sorted(grown.grown) == sorted(sources) and grown.short == {}
    assert await _counts(client, names) == {s.name: s.partitions for s in five}
    again = await ensure_topics(
        kafka_bootstrap, security=security, partitions=5, specs=five, grow=True
    )
    assert again.created == again.grown == [] and again.short == {}

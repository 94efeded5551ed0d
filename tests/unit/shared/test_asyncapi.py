"""The AsyncAPI document matches the code: every topic, every event, and the committed copy."""

from __future__ import annotations

from pathlib import Path

from shared import asyncapi, topics
from shared.events import event_classes

ROOT = Path(__file__).resolve().parents[3]


def test_committed_asyncapi_document_is_current() -> None:
    """docs/asyncapi.json equals a fresh rendering (regenerate with
    `.venv/bin/python -m shared.asyncapi > docs/asyncapi.json`)."""
    assert (ROOT / "docs" / "asyncapi.json").read_text("utf-8") == asyncapi.render()


def test_every_topic_and_event_is_described() -> None:
    """Each source topic is a channel with its partition count; each event is a message on
    its topic's channel whose payload names its type and version."""
    doc = asyncapi.document()
    assert doc["asyncapi"].startswith("3.")
    addresses = {c["address"]: c for c in doc["channels"].values()}
    assert set(addresses) == set(topics.SOURCE_TOPICS)
    for spec in topics.TOPICS:
        if spec.name in addresses:
            assert addresses[spec.name]["bindings"]["kafka"]["partitions"] == spec.partitions
    for cls in event_classes():
        name = f"{cls.TYPE}V{cls.VERSION}"
        message = doc["components"]["messages"][name]
        assert message["payload"]["properties"]["type"]["const"] == cls.TYPE
        assert name in addresses[cls.TOPIC]["messages"]

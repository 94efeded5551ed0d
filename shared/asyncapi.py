"""The AsyncAPI 3.0 document of every topic and event, generated from the event models.

Generating it from `shared.events` (rather than writing it by hand) means it cannot drift:
each message's payload schema is the envelope with `data` set to the JSON Schema of that
event's pydantic model. `python -m shared.asyncapi > docs/asyncapi.json` renders it; a test
checks the committed copy equals a fresh rendering.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from shared import topics
from shared.events import Envelope, event_classes

_PRODUCERS = {
    topics.REGISTRY_POSTINGS: "registry",
    topics.REGISTRY_ATTENDANCE: "registry",
    topics.MATCHER_APPLICATIONS: "matcher",
    topics.MATCHER_BOOKINGS: "matcher",
    topics.MATCHER_PAYEES: "matcher",
    topics.ALLOWANCE_BUDGET: "allowance",
    topics.ALLOWANCE_PAYOUTS: "allowance",
    topics.ALLOWANCE_POLICY: "allowance",
}
_CONSUMERS = {
    topics.REGISTRY_POSTINGS: ["matcher", "allowance"],
    topics.REGISTRY_ATTENDANCE: ["matcher", "allowance"],
    topics.MATCHER_APPLICATIONS: ["matcher"],
    # the allowance learns which citizens exist from bookings (payee details, issue 16)
    topics.MATCHER_BOOKINGS: ["registry", "allowance"],
    topics.MATCHER_PAYEES: ["allowance"],
    topics.ALLOWANCE_BUDGET: ["registry"],
    # the matcher tells the partner the answers to payee details (PayeeAccepted/Rejected)
    topics.ALLOWANCE_PAYOUTS: ["matcher"],
    topics.ALLOWANCE_POLICY: ["matcher", "registry"],
}


def _channel_id(topic: str) -> str:
    return topic.replace(".", "_")


def document() -> dict[str, Any]:
    envelope_schema = Envelope.model_json_schema()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    by_topic: dict[str, list[str]] = {}
    for cls in sorted(event_classes(), key=lambda c: (c.TOPIC, c.TYPE, c.VERSION)):
        name = f"{cls.TYPE}V{cls.VERSION}"
        data_schema = cls.model_json_schema(ref_template="#/components/schemas/{model}")
        for def_name, definition in data_schema.pop("$defs", {}).items():
            schemas[def_name] = definition
        schemas[name] = data_schema
        payload = json.loads(json.dumps(envelope_schema))
        payload["properties"]["type"] = {"const": cls.TYPE, "type": "string"}
        payload["properties"]["version"] = {"const": cls.VERSION, "type": "integer"}
        payload["properties"]["data"] = {"$ref": f"#/components/schemas/{name}"}
        payload["title"] = f"{cls.TYPE} v{cls.VERSION}"
        messages[name] = {
            "name": cls.TYPE,
            "title": cls.TYPE,
            "summary": (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " "),
            "contentType": "application/json",
            "payload": payload,
            "bindings": {"kafka": {"key": {"type": "string", "description": cls.KEY_FIELD}}},
        }
        by_topic.setdefault(cls.TOPIC, []).append(name)
    for topic in topics.SOURCE_TOPICS:
        cid = _channel_id(topic)
        spec = next(t for t in topics.TOPICS if t.name == topic)
        channels[cid] = {
            "address": topic,
            "description": f"Produced by {_PRODUCERS[topic]}; consumed by "
            f"{', '.join(_CONSUMERS[topic]) or 'finance tools'}. Dead letters: "
            f"{topics.dlq_of(topic)}. Partitions: the setting KAFKA_PARTITIONS "
            f"(default {topics.PARTITIONS_DEFAULT}).",
            "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in by_topic[topic]},
            "bindings": {"kafka": {"topic": topic, "partitions": spec.partitions}},
        }
        operations[f"publish_{cid}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{cid}"},
            "summary": f"{_PRODUCERS[topic]} publishes (transactional outbox)",
        }
        for consumer in _CONSUMERS[topic]:
            operations[f"{consumer}_consumes_{cid}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{cid}"},
                "summary": f"{consumer} consumes (group {consumer}.{topic})",
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Danggeun Gwangsan events",
            "version": "1.0.0",
            "description": "Every topic and event exchanged by registry, matcher and allowance."
            " Each message is a JSON envelope (event_id is the idempotency key).",
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {"host": "127.0.0.1:9092", "protocol": "kafka", "description": "make up"}
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def render() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())

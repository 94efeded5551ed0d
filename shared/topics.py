"""Topic names and their settings, in one place.

Keys give per-entity order (BRIEF §3): every topic about a posting is keyed by posting id,
payouts by citizen. Partition counts bound how far each consumer group scales out: a group
can use at most as many processes as the topic has partitions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

REGISTRY_POSTINGS = "registry.postings.v1"
REGISTRY_ATTENDANCE = "registry.attendance.v1"
MATCHER_APPLICATIONS = "matcher.applications.v1"
MATCHER_BOOKINGS = "matcher.bookings.v1"
ALLOWANCE_BUDGET = "allowance.budget.v1"
ALLOWANCE_PAYOUTS = "allowance.payouts.v1"

DLQ_SUFFIX = ".dlq"

# Events are the system's history: keep them (a fresh consumer group can rebuild a read
# model from the beginning). 30 days is the local default; production sets its own.
_RETENTION_MS = str(30 * 24 * 3600 * 1000)
_DLQ_RETENTION_MS = str(90 * 24 * 3600 * 1000)


@dataclass(frozen=True)
class TopicSpec:
    """A topic the services need, with the partitions and settings it is created with."""

    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


def dlq_of(topic: str) -> str:
    """The dead-letter topic of `topic`."""
    return topic + DLQ_SUFFIX


_SOURCES: dict[str, int] = {
    REGISTRY_POSTINGS: 6,
    REGISTRY_ATTENDANCE: 6,
    MATCHER_APPLICATIONS: 6,
    MATCHER_BOOKINGS: 6,
    ALLOWANCE_BUDGET: 6,
    ALLOWANCE_PAYOUTS: 6,
}

SOURCE_TOPICS: tuple[str, ...] = tuple(_SOURCES)

TOPICS: list[TopicSpec] = [
    *(
        TopicSpec(name, partitions, {"retention.ms": _RETENTION_MS, "min.insync.replicas": "1"})
        for name, partitions in _SOURCES.items()
    ),
    *(
        TopicSpec(dlq_of(name), 1, {"retention.ms": _DLQ_RETENTION_MS, "min.insync.replicas": "1"})
        for name in _SOURCES
    ),
]

"""Topic names and their settings, in one place.

Keys give per-entity order (BRIEF §3): every topic about a posting is keyed by posting id,
payouts by citizen, policy tables by the table's name. Partition counts bound how far each
consumer group scales out: a group can use at most as many processes as the topic has
partitions. Every source topic has `KAFKA_PARTITIONS` partitions (a setting of
provisioning: `python -m shared.provision`, the local launcher, and the Strimzi topics of
deploy/k8s); dead-letter topics have one. Kafka can only add partitions, and adding them
remaps keys to partitions: docs/operations.md, "Raising the partitions".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

REGISTRY_POSTINGS = "registry.postings.v1"
REGISTRY_ATTENDANCE = "registry.attendance.v1"
MATCHER_APPLICATIONS = "matcher.applications.v1"
MATCHER_BOOKINGS = "matcher.bookings.v1"
# Payee bank details the partner submitted, sealed at ingest to the allowance's public key
# (docs/decisions/0014): read by the allowance alone, keyed by the partner's user id.
MATCHER_PAYEES = "matcher.payees.v1"
ALLOWANCE_BUDGET = "allowance.budget.v1"
ALLOWANCE_PAYOUTS = "allowance.payouts.v1"
# Policy tables other services use (the cap table, enforced by the matcher; the rate table,
# which the registry prices shifts with before they are posted). Compacted:
# each table has one key, so the topic keeps the latest version of every table for as long
# as the topic exists, and a consumer group started from scratch still learns it.
ALLOWANCE_POLICY = "allowance.policy.v1"

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


PARTITIONS_DEFAULT = 6
PARTITIONS_MAX = 1_000


class TopicSettings(BaseSettings):
    """How provisioning lays out the topics (`python -m shared.provision`, the local
    launcher; deploy/k8s takes the same value from the `gwangsan-config` ConfigMap)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    # Partitions of every source topic (dead-letter topics keep one): the most processes of
    # one consumer group that get work, so the ceiling of the consuming Deployments' HPAs.
    # Used when a topic is created; an existing topic with fewer partitions is grown only
    # by `python -m shared.provision --grow-partitions` (Kafka cannot shrink one, and growing
    # remaps keys to partitions: docs/operations.md, "Raising the partitions").
    kafka_partitions: int = Field(default=PARTITIONS_DEFAULT, ge=1, le=PARTITIONS_MAX)


def partitions_from(env: Mapping[str, str]) -> int:
    """`KAFKA_PARTITIONS` of `env` (the default when unset); ValueError with a sentence
    when it is not a whole number from 1 to PARTITIONS_MAX."""
    raw = env.get("KAFKA_PARTITIONS", "").strip()
    try:
        return TopicSettings(kafka_partitions=raw or PARTITIONS_DEFAULT).kafka_partitions
    except ValidationError:
        raise ValueError(
            f"KAFKA_PARTITIONS={raw!r} is not a whole number from 1 to {PARTITIONS_MAX}."
        ) from None


_SOURCES: tuple[str, ...] = (
    REGISTRY_POSTINGS,
    REGISTRY_ATTENDANCE,
    MATCHER_APPLICATIONS,
    MATCHER_BOOKINGS,
    MATCHER_PAYEES,
    ALLOWANCE_BUDGET,
    ALLOWANCE_PAYOUTS,
    ALLOWANCE_POLICY,
)

# Topics that hold state (the latest value per key) rather than history.
_COMPACTED = {ALLOWANCE_POLICY}

SOURCE_TOPICS: tuple[str, ...] = _SOURCES


def topic_specs(partitions: int) -> list[TopicSpec]:
    """Every topic, its sources with `partitions` partitions and their DLQs with one."""
    return [
        *(
            TopicSpec(
                name,
                partitions,
                {"cleanup.policy": "compact", "min.insync.replicas": "1"}
                if name in _COMPACTED
                else {"retention.ms": _RETENTION_MS, "min.insync.replicas": "1"},
            )
            for name in _SOURCES
        ),
        *(
            TopicSpec(
                dlq_of(name), 1, {"retention.ms": _DLQ_RETENTION_MS, "min.insync.replicas": "1"}
            )
            for name in _SOURCES
        ),
    ]


# The topics as this environment's KAFKA_PARTITIONS lays them out (tests and tools reading
# the local stack, which the launcher created with the same environment).
TOPICS: list[TopicSpec] = topic_specs(partitions_from(os.environ))


# --- who may touch which topic (Kafka ACLs) --------------------------------------------------
#
# The one table the broker's ACLs come from: the local launcher and `python -m
# shared.provision` apply it to a running Kafka, and deploy/k8s's KafkaUsers are checked
# against it (tests/deploy). A service writes only its own topics and reads only what it
# consumes (BRIEF §3). Its consumer guard dead-letters a message it cannot process to
# `<topic>.dlq` of the topic it read it from, so a reader also writes that topic's DLQ.


@dataclass(frozen=True)
class Access:
    """What one service's Kafka user may do: produce to `writes`, consume `reads`."""

    writes: tuple[str, ...]
    reads: tuple[str, ...]

    @property
    def dlq_writes(self) -> tuple[str, ...]:
        """The dead-letter topics its consumer guard writes to."""
        return tuple(dlq_of(topic) for topic in self.reads)

    @property
    def all_writes(self) -> tuple[str, ...]:
        return (*self.writes, *self.dlq_writes)


ACCESS: dict[str, Access] = {
    "registry": Access(
        writes=(REGISTRY_POSTINGS, REGISTRY_ATTENDANCE),
        # The allowance's rate table (RatesChanged): what a shift costs, shown before posting.
        reads=(MATCHER_BOOKINGS, ALLOWANCE_BUDGET, ALLOWANCE_POLICY),
    ),
    "matcher": Access(
        # The webhook handler writes applications; the matcher loop reads them back. Sealed
        # payee details go to the allowance on their own topic.
        writes=(MATCHER_APPLICATIONS, MATCHER_BOOKINGS, MATCHER_PAYEES),
        # The allowance's cap table (CapsChanged): the weekly hour cap it enforces. The
        # allowance's payouts: the read model the partner is shown (issue 18), and its
        # answers to payee details (PayeeAccepted / PayeeRejected), told to the partner.
        reads=(
            REGISTRY_POSTINGS,
            REGISTRY_ATTENDANCE,
            MATCHER_APPLICATIONS,
            ALLOWANCE_POLICY,
            ALLOWANCE_PAYOUTS,
        ),
    ),
    "allowance": Access(
        writes=(ALLOWANCE_BUDGET, ALLOWANCE_PAYOUTS, ALLOWANCE_POLICY),
        reads=(REGISTRY_POSTINGS, MATCHER_BOOKINGS, MATCHER_PAYEES, REGISTRY_ATTENDANCE),
    ),
}

# The Kafka user that provisions topics and ACLs (a super user); tests and tools use it too.
ADMIN_USER = "admin"


def group_prefix(service: str) -> str:
    """Consumer groups of `service` start with this (`EventConsumer.group_id`)."""
    return f"{service}."


@dataclass(frozen=True)
class AclRule:
    """One ALLOW rule in Kafka's terms (resource type, name, pattern, operation)."""

    principal: str  # "User:<name>"
    resource_type: str  # "topic" | "group"
    name: str
    pattern: str  # "literal" | "prefixed"
    operation: str  # "Read" | "Write" | "Describe"


def acl_rules(service: str) -> list[AclRule]:
    """The ALLOW rules of one service's user. WRITE implies DESCRIBE and, since Kafka 3.0
    (KIP-679), IDEMPOTENT_WRITE on the cluster, so idempotent producers need nothing more;
    no service uses transactions, so there are no transactional-id rules."""
    access = ACCESS[service]
    principal = f"User:{service}"
    rules = [AclRule(principal, "topic", t, "literal", "Write") for t in access.all_writes]
    rules += [AclRule(principal, "topic", t, "literal", "Read") for t in access.reads]
    rules.append(AclRule(principal, "group", group_prefix(service), "prefixed", "Read"))
    return rules

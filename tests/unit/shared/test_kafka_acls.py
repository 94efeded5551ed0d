"""The ACL table (shared/topics.py ACCESS) says what BRIEF §3 says, and nothing more."""

from __future__ import annotations

from shared.kafka import KafkaSecurity
from shared.provision import SERVICES
from shared.topics import (
    ACCESS,
    ALLOWANCE_BUDGET,
    ALLOWANCE_PAYOUTS,
    ALLOWANCE_POLICY,
    MATCHER_APPLICATIONS,
    MATCHER_BOOKINGS,
    MATCHER_PAYEES,
    REGISTRY_ATTENDANCE,
    REGISTRY_POSTINGS,
    SOURCE_TOPICS,
    TOPICS,
    acl_rules,
    dlq_of,
)

# Who consumes what (BRIEF §3 and §4), written out here independently of the table.
CONSUMES = {
    # ALLOWANCE_POLICY: the rate table (RatesChanged), what a shift costs before posting.
    "registry": {MATCHER_BOOKINGS, ALLOWANCE_BUDGET, ALLOWANCE_POLICY},
    # ALLOWANCE_PAYOUTS: the citizen's allowance as the partner is shown it (issue 18), and
    # the allowance's answers to payee details, which the matcher tells the partner (0014).
    "matcher": {
        REGISTRY_POSTINGS,
        REGISTRY_ATTENDANCE,
        MATCHER_APPLICATIONS,
        ALLOWANCE_PAYOUTS,
        ALLOWANCE_POLICY,
    },
    # MATCHER_PAYEES: sealed payee details, opened by the allowance alone.
    "allowance": {REGISTRY_POSTINGS, MATCHER_BOOKINGS, MATCHER_PAYEES, REGISTRY_ATTENDANCE},
}


def test_every_service_has_a_row_and_only_services_do() -> None:
    assert set(ACCESS) == set(SERVICES)


def test_every_source_topic_has_exactly_one_writer_its_owner() -> None:
    for topic in SOURCE_TOPICS:
        writers = [service for service, access in ACCESS.items() if topic in access.writes]
        assert writers == [topic.split(".")[0]], topic


def test_nothing_else_is_written() -> None:
    known = {spec.name for spec in TOPICS}
    for access in ACCESS.values():
        assert set(access.all_writes) <= known
        # a service writes another's topic only as the DLQ of a topic it reads
        for topic in access.all_writes:
            assert topic in access.writes or topic in access.dlq_writes


def test_dlq_writers_are_the_readers_of_the_source() -> None:
    """The consumer guard dead-letters to `<topic>.dlq` of the topic it read."""
    for topic in SOURCE_TOPICS:
        writers = {s for s, access in ACCESS.items() if dlq_of(topic) in access.all_writes}
        readers = {s for s, access in ACCESS.items() if topic in access.reads}
        assert writers == readers, topic


def test_each_service_reads_exactly_what_it_consumes() -> None:
    for service, access in ACCESS.items():
        assert set(access.reads) == CONSUMES[service], service
    payouts_readers = [s for s, a in ACCESS.items() if ALLOWANCE_PAYOUTS in a.reads]
    assert payouts_readers == ["matcher"]
    payees_readers = [s for s, a in ACCESS.items() if MATCHER_PAYEES in a.reads]
    assert payees_readers == ["allowance"]  # sealed bank details reach no one else


def test_rules_are_literal_topics_and_a_prefixed_group() -> None:
    for service in ACCESS:
        rules = acl_rules(service)
        assert {r.principal for r in rules} == {f"User:{service}"}
        groups = [r for r in rules if r.resource_type == "group"]
        assert [(g.name, g.pattern, g.operation) for g in groups] == [
            (f"{service}.", "prefixed", "Read")
        ]
        topics = [r for r in rules if r.resource_type == "topic"]
        assert all(r.pattern == "literal" for r in topics)
        assert {r.name for r in topics if r.operation == "Write"} == set(ACCESS[service].all_writes)
        assert {r.name for r in topics if r.operation == "Read"} == set(ACCESS[service].reads)


def test_the_registry_cannot_write_applications() -> None:
    """Issue 21: only the matcher writes matcher.applications.v1."""
    assert not any(
        r.name == MATCHER_APPLICATIONS and r.operation == "Write" for r in acl_rules("registry")
    )


def test_security_kwargs_for_aiokafka_and_faststream() -> None:
    from faststream.security import SASLScram512

    security = KafkaSecurity("SASL_SSL", "SCRAM-SHA-512", "matcher", "pw", "")
    kwargs = security.client_kwargs()
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "matcher"
    assert kwargs["ssl_context"] is not None
    stream = security.faststream()
    assert isinstance(stream, SASLScram512) and stream.use_ssl
    assert KafkaSecurity().client_kwargs() == {"security_protocol": "PLAINTEXT"}
    assert KafkaSecurity().faststream() is None

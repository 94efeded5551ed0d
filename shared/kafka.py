"""Kafka clients configured for money: nothing here uses a library default that loses data.

aiokafka's defaults are `acks=1`, no idempotence, auto-commit and `latest` (RELIABILITY.md
trap 2); every client the services use is built here with those set explicitly.

Security (SASL/SCRAM over TLS, docs/decisions/0010) comes from one place too:
`KafkaSecurity`, built from `ServiceSettings` or from a stack.env-like mapping, gives the
same settings to aiokafka clients (`client_kwargs`) and to FastStream (`faststream`).
"""

from __future__ import annotations

import functools
import random
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

if TYPE_CHECKING:
    from faststream.security import BaseSecurity

    from shared.settings import ServiceSettings

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


@dataclass(frozen=True)
class KafkaSecurity:
    """How a client authenticates to Kafka and checks the broker's certificate."""

    protocol: str = "PLAINTEXT"
    mechanism: str = "SCRAM-SHA-512"
    username: str = ""
    password: str = ""
    cafile: str = ""

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> KafkaSecurity:
        return cls(
            protocol=settings.kafka_security_protocol,
            mechanism=settings.kafka_sasl_mechanism,
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value(),
            cafile=settings.kafka_ssl_cafile,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> KafkaSecurity:
        """From `KAFKA_*` variables (stack.env gives tests and tools the admin user)."""
        return cls(
            protocol=env.get("KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT",
            mechanism=env.get("KAFKA_SASL_MECHANISM") or "SCRAM-SHA-512",
            username=env.get("KAFKA_SASL_USERNAME", ""),
            password=env.get("KAFKA_SASL_PASSWORD", ""),
            cafile=env.get("KAFKA_SSL_CAFILE", ""),
        )

    def as_user(self, username: str, password: str) -> KafkaSecurity:
        """The same connection as another user (tests of the ACLs)."""
        return KafkaSecurity(self.protocol, self.mechanism, username, password, self.cafile)

    @property
    def uses_ssl(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    def ssl_context(self) -> ssl.SSLContext | None:
        """Verifies the broker's certificate and host name against the CA (or system CAs)."""
        if not self.uses_ssl:
            return None
        return ssl.create_default_context(cafile=self.cafile or None)

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_ssl:
            kwargs["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            kwargs["sasl_mechanism"] = self.mechanism
            kwargs["sasl_plain_username"] = self.username
            kwargs["sasl_plain_password"] = self.password
        return kwargs

    def faststream(self) -> BaseSecurity | None:
        """The same settings as FastStream's `security=` object."""
        from faststream.security import (
            BaseSecurity,
            SASLPlaintext,
            SASLScram256,
            SASLScram512,
        )

        context = self.ssl_context()
        if not self.uses_sasl:
            return BaseSecurity(ssl_context=context) if self.uses_ssl else None
        kinds: dict[str, type[SASLPlaintext] | type[SASLScram256] | type[SASLScram512]] = {
            "PLAIN": SASLPlaintext,
            "SCRAM-SHA-256": SASLScram256,
            "SCRAM-SHA-512": SASLScram512,
        }
        return kinds[self.mechanism](
            username=self.username,
            password=self.password,
            ssl_context=context,
            use_ssl=self.uses_ssl,
        )


PLAINTEXT = KafkaSecurity()


def make_producer(
    bootstrap_servers: str, client_id: str, security: KafkaSecurity = PLAINTEXT
) -> AIOKafkaProducer:
    """An idempotent producer that waits for every in-sync replica (`acks=all`)."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        partitioner=cached_partitioner,
        **PRODUCER_SETTINGS,
        **security.client_kwargs(),
    )


def stack_security(env: Mapping[str, str] | None = None) -> KafkaSecurity:
    """The security of a client of the local stack (tests, CLI, tools): `env`, or
    stack.env with the environment winning (`shared.stackenv.client_env`) — the admin
    user there."""
    if env is None:
        from shared.stackenv import client_env

        env = client_env()
    return KafkaSecurity.from_env(env)


def stack_client_kwargs(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`stack_security(env).client_kwargs()`, to spread into an aiokafka constructor."""
    return stack_security(env).client_kwargs()

"""What a running service hands its routes, handlers and sweepers: one typed context.

The context is generic over the service's settings class, so `ctx.settings.typical_shift_minutes`
type-checks in the allowance without an `isinstance` assert, and service-specific objects
built at start-up (the payee cipher, the notification sender) are kept as typed resources,
looked up by their class, instead of an untyped `dict[str, Any]`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import asyncpg
from aiokafka import AIOKafkaProducer

from shared.clock import Clock
from shared.consumer import EventConsumer
from shared.outbox import OutboxRelay
from shared.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)
T = TypeVar("T")


@dataclass
class ServiceContext(Generic[S]):
    """The running service: its settings, Postgres pool, Kafka producer, clock, consumer
    guard and outbox relay, plus the typed resources its `on_start` provided."""

    settings: S
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    clock: Clock
    consumer: EventConsumer
    relay: OutboxRelay
    _resources: dict[type[Any], Any] = field(default_factory=dict, repr=False)

    def now(self) -> datetime:
        return self.clock.now()

    def provide(self, resource: object, *, as_type: type[Any] | None = None) -> None:
        """Keep `resource` for later `resource(its class)` lookups (one per class)."""
        self._resources[as_type or type(resource)] = resource

    def resource(self, kind: type[T]) -> T:
        """The resource of class `kind` that start-up provided; a missing one is a wiring
        bug, so it fails loudly rather than returning None."""
        found = self._resources.get(kind)
        if found is None:
            raise LookupError(f"{kind.__name__} was not provided at start-up")
        assert isinstance(found, kind)
        return found

    def resource_or_none(self, kind: type[T]) -> T | None:
        """The resource of class `kind`, or None in a role that does not build it."""
        found = self._resources.get(kind)
        return found if isinstance(found, kind) else None

    def discard(self, kind: type[T]) -> T | None:
        """Remove and return the resource of class `kind` (at shutdown)."""
        found = self._resources.pop(kind, None)
        return found if isinstance(found, kind) else None

"""Postgres access shared by the services: the pool, JSON codecs, and bounded retries.

Each service connects as its own role with `search_path` set to its own schema, so its SQL
is unqualified and cannot reach another service's tables by accident.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import orjson

T = TypeVar("T")

# The connection a use case is given by its caller (the consumer guard's transaction).
# Entry points (handlers, routes) name this type to pass a connection through without doing
# SQL themselves (the layer rule in docs/architecture.md).
Connection = asyncpg.Connection
Pool = asyncpg.Pool

log = logging.getLogger(__name__)

# Errors that say "the database is not reachable now", not "this input is bad". Work that
# hits them is retried without counting towards a message's dead-letter attempts.
_TRANSIENT_CONNECTION = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
)
# Concurrency conflicts: retry the whole transaction a bounded number of times.
_CONFLICT = (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)


def is_transient(exc: BaseException) -> bool:
    """True when retrying later can succeed without any change to the input."""
    if isinstance(exc, asyncpg.PostgresError) and getattr(exc, "sqlstate", "").startswith(
        ("08", "57P")
    ):
        return True  # connection exceptions, admin shutdown / crash shutdown
    return isinstance(exc, _TRANSIENT_CONNECTION + _CONFLICT)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename,
            encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


async def create_pool(
    dsn: str,
    *,
    schema: str,
    size_min: int = 2,
    size_max: int = 10,
    statement_timeout_ms: int = 10_000,
    connect_timeout_ms: int = 2_000,
) -> asyncpg.Pool:
    """A pool whose connections see `schema` first and time out runaway statements."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=size_min,
        max_size=size_max,
        init=_init_connection,
        timeout=connect_timeout_ms / 1000,
        server_settings={
            "search_path": schema,
            "statement_timeout": str(statement_timeout_ms),
            "timezone": "UTC",
            "application_name": schema,
        },
    )
    assert pool is not None
    return pool


async def retry_conflicts(
    work: Callable[[], Awaitable[T]], *, attempts_max: int = 5, backoff_ms: int = 10
) -> T:
    """Run `work` (one whole transaction), retrying serialization failures and deadlocks."""
    for attempt in range(1, attempts_max + 1):
        try:
            return await work()
        except _CONFLICT:
            if attempt == attempts_max:
                raise
            await asyncio.sleep(backoff_ms * attempt / 1000)
    raise AssertionError("unreachable")

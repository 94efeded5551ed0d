"""Postgres access shared by the services: the pool, JSON codecs, and bounded retries.

Each service connects as its own role with `search_path` set to its own schema, so its SQL
is unqualified and cannot reach another service's tables by accident.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
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

# Callbacks waiting for the commit of the unit of work under way (`after_commit`).
_AFTER_COMMIT: ContextVar[list[Callable[[], None]] | None] = ContextVar(
    "after_commit", default=None
)


def after_commit(callback: Callable[[], None]) -> None:
    """Run `callback` once the unit of work under way has committed, never if it rolls
    back. Only a unit of work that collects them (`collect_after_commit`: the consumer
    guard's) runs callbacks; anywhere else this does nothing, so a callback may only speed
    something up that happens anyway (a NOTIFY, a poll), never be the only way it happens."""
    callbacks = _AFTER_COMMIT.get()
    if callbacks is not None:
        callbacks.append(callback)


@contextlib.contextmanager
def collect_after_commit() -> Iterator[list[Callable[[], None]]]:
    """Collect the `after_commit` callbacks of the unit of work run inside; the caller runs
    them (`run_after_commit`) once it committed, and drops them if it did not."""
    callbacks: list[Callable[[], None]] = []
    token = _AFTER_COMMIT.set(callbacks)
    try:
        yield callbacks
    finally:
        _AFTER_COMMIT.reset(token)


def run_after_commit(callbacks: list[Callable[[], None]]) -> None:
    """Run collected callbacks; one that fails is logged and does not stop the others (the
    commit stands whatever they do)."""
    for callback in callbacks:
        try:
            callback()
        except Exception:
            log.exception("an after-commit callback failed")


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

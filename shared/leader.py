"""Background jobs that exactly one process runs at a time (the outbox relay of a schema,
the matcher's partner-notification sender), and that must outlive any failure.

`lead` holds a Postgres advisory lock on a dedicated connection while the job runs, and
listens on a NOTIFY channel there, so the job wakes within milliseconds of a commit; if
another process holds the lock it waits and returns. `keep_running` restarts the job after
any failure with capped backoff, logging transient outages (Postgres or Kafka away) as
warnings and anything else as errors with the trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from shared.db import is_transient

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 5.0


async def keep_running(name: str, attempt: Callable[[], Awaitable[None]]) -> None:
    """Run `attempt` forever; after a failure, wait (0.1 s doubling to 5 s) and run it again."""
    backoff_s = BACKOFF_START_S
    while True:
        try:
            await attempt()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if is_transient(exc):
                log.warning("%s waiting for Postgres/Kafka: %s", name, exc)
            else:
                log.exception("%s failed; restarting it", name)
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, BACKOFF_MAX_S)
        else:
            backoff_s = BACKOFF_START_S


async def lead(
    pool: asyncpg.Pool,
    *,
    lock_key: str,
    channel: str,
    on_notify: Callable[..., Any],
    work: Callable[[asyncpg.Connection], Awaitable[None]],
    idle_s: float,
    before_release: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
) -> None:
    """Run `work(conn)` while holding the advisory lock `lock_key` and listening on
    `channel`; if another process holds the lock, sleep `idle_s` and return."""
    conn = await pool.acquire()
    try:
        if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", lock_key):
            await asyncio.sleep(idle_s)
            return
        await conn.add_listener(channel, on_notify)
        try:
            await work(conn)
        finally:
            if before_release is not None:
                with contextlib.suppress(Exception):
                    await before_release(conn)
            with contextlib.suppress(Exception):
                await conn.remove_listener(channel, on_notify)
                await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", lock_key)
    finally:
        await pool.release(conn)

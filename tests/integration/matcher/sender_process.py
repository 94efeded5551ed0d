"""A partner-notification sender in its own process, so a test can kill -9 it mid-delivery;
and `short_sender`, the sender the shard tests run (in this process or in that one).

Usage: python -m tests.integration.matcher.sender_process DSN SCHEMA URL SECRET JOB SHARDS
Sends until killed.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta

import asyncpg
from matcher.notify import NotificationSender

from shared.db import create_pool


def short_sender(
    pool: asyncpg.Pool,
    url: str,
    secret: str,
    job: str,
    shards: int,
    *,
    concurrency_max: int = 16,
    mark_linger_ms: int = 0,
    poll_interval_ms: int = 200,
) -> NotificationSender:
    """A sender with short timeouts and backoffs, leasing under `job` (not the running
    matcher's sender)."""
    return NotificationSender(
        pool=pool,
        url=url,
        secret=secret,
        concurrency_max=concurrency_max,
        timeout_ms=5_000,
        retry_for=timedelta(minutes=5),
        attempts_max=10,
        backoff_base_ms=10,
        backoff_cap_ms=100,
        poll_interval_ms=poll_interval_ms,
        lock_key=job,
        shards=shards,
        mark_linger_ms=mark_linger_ms,
    )


async def main(dsn: str, schema: str, url: str, secret: str, job: str, shards: int) -> None:
    pool = await create_pool(dsn, schema=schema, size_max=4)
    await short_sender(pool, url, secret, job, shards).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    dsn, schema, url, secret, job, shards = sys.argv[1:7]
    asyncio.run(main(dsn, schema, url, secret, job, int(shards)))

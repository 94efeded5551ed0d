"""A partner-notification sender in its own process, so a test can kill -9 it mid-delivery.

Usage: python sender_process.py DSN SCHEMA URL SECRET JOB SHARDS
Sends until killed; a test SIGKILLs it once it holds shards and has delivered some.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta

from matcher.notify import NotificationSender

from shared.db import create_pool


async def main(dsn: str, schema: str, url: str, secret: str, job: str, shards: int) -> None:
    pool = await create_pool(dsn, schema=schema, size_max=4)
    sender = NotificationSender(
        pool=pool,
        url=url,
        secret=secret,
        concurrency_max=16,
        timeout_ms=5_000,
        retry_for=timedelta(minutes=5),
        attempts_max=10,
        backoff_base_ms=10,
        backoff_cap_ms=100,
        poll_interval_ms=200,
        lock_key=job,
        shards=shards,
    )
    await sender.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    dsn, schema, url, secret, job, shards = sys.argv[1:7]
    asyncio.run(main(dsn, schema, url, secret, job, int(shards)))

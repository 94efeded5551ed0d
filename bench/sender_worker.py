"""One partner-notification sender process of the sender scale-out benchmark
(`bench/sender_scale.py`): the matcher's `NotificationSender` with the matcher's default
settings, sending one schema's notifications to the partner simulator until terminated.

Usage: python -m bench.sender_worker DSN SCHEMA URL SECRET JOB SHARDS
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta

from matcher.notify import NotificationSender
from matcher.settings import MatcherSettings

from shared.db import create_pool


def _default(name: str) -> int:
    value: int = MatcherSettings.model_fields[name].default
    return value


async def main(dsn: str, schema: str, url: str, secret: str, job: str, shards: int) -> None:
    pool = await create_pool(dsn, schema=schema, size_max=_default("db_pool_size_max"))
    sender = NotificationSender(
        pool=pool,
        url=url,
        secret=secret,
        concurrency_max=_default("notify_concurrency_max"),
        timeout_ms=_default("notify_timeout_ms"),
        retry_for=timedelta(seconds=_default("notify_retry_for_s")),
        attempts_max=_default("notify_attempts_max"),
        backoff_base_ms=_default("notify_backoff_base_ms"),
        backoff_cap_ms=_default("notify_backoff_cap_ms"),
        poll_interval_ms=_default("notify_poll_interval_ms"),
        prefetch_max=_default("notify_prefetch_max"),
        retry_concurrency_max=_default("notify_retry_concurrency_max"),
        mark_linger_ms=_default("notify_mark_linger_ms"),
        lock_key=job,
        shards=shards,
    )
    await sender.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    dsn, schema, url, secret, job, shards = sys.argv[1:7]
    asyncio.run(main(dsn, schema, url, secret, job, int(shards)))

"""A relay in its own process, so a test can kill -9 it mid-publish.

Usage: python relay_process.py DSN SCHEMA BOOTSTRAP CRASH_AFTER_ACKS [SHARDS]
With CRASH_AFTER_ACKS > 0 the process SIGKILLs itself once that many sends were acknowledged
by the broker, before it could mark them published: the window where a crash must not lose
an event and may only duplicate it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

from shared.db import create_pool
from shared.kafka import make_producer, stack_security
from shared.outbox import OutboxRelay


async def main(
    dsn: str, schema: str, bootstrap: str, crash_after_acks: int, shards: int = 4
) -> None:
    pool = await create_pool(dsn, schema=schema)
    producer = make_producer(bootstrap, "test-relay", stack_security())
    await producer.start()
    acked = 0
    real_send = producer.send

    async def send(*args: Any, **kwargs: Any) -> Any:
        future = await real_send(*args, **kwargs)

        def on_done(_: Any) -> None:
            nonlocal acked
            acked += 1
            if crash_after_acks and acked >= crash_after_acks:
                os.kill(os.getpid(), signal.SIGKILL)

        future.add_done_callback(on_done)
        return future

    producer.send = send  # type: ignore[method-assign]
    relay = OutboxRelay(
        pool=pool,
        producer=producer,
        schema=schema,
        batch_size_max=100,
        poll_interval_ms=100,
        shards=shards,
    )
    await relay.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    shards = int(sys.argv[5]) if len(sys.argv) > 5 else 4
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), shards))

"""`shared.leader.stop_job`: a background job's stop is bounded and says where it hung
(a CI run once waited 300 s in a sender's stop, with nothing to say where)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from shared.leader import stop_job


async def test_a_job_that_ends_on_cancel_is_stopped_at_once() -> None:
    cleaned = asyncio.Event()

    async def job() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.set()

    task = asyncio.create_task(job())
    await asyncio.sleep(0)
    await stop_job(task, "quick job", grace_s=5)
    assert task.cancelled() and cleaned.is_set()


async def test_a_cleanup_that_never_returns_is_left_after_the_grace_and_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    released = asyncio.Event()

    async def release_forever() -> None:
        await released.wait()

    async def job() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.shield(release_forever())  # ignores the cancel, as a hung reset

    task = asyncio.create_task(job())
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with caplog.at_level(logging.ERROR, logger="shared.leader"):
        await stop_job(task, "stuck job", grace_s=0.2)
    assert 0.2 <= loop.time() - started < 2
    assert not task.done()
    (record,) = caplog.records
    assert "stuck job did not stop" in record.getMessage()
    assert "job:" in record.getMessage()  # the frame it waits in
    released.set()
    await asyncio.wait({task})
    assert task.cancelled()  # the cleanup ended, and the cancel with it

"""`wait_set`: an event wait with a timeout whose caller always stops when cancelled —
the relay's, the sender's and the offset committer's loops are built on it."""

from __future__ import annotations

import asyncio

import pytest

from shared.waiting import wait_set


async def test_it_says_whether_the_event_was_set_or_the_time_ran_out() -> None:
    event = asyncio.Event()
    assert await wait_set(event, 0.01) is False
    event.set()
    assert await wait_set(event, 10) is True


async def _wake_forever(event: asyncio.Event) -> None:
    """A relay's loop, reduced: wait to be woken (or time out), work, wait again."""
    while True:
        await wait_set(event, 10)
        event.clear()


async def test_a_loop_on_it_stops_when_cancelled_as_its_event_is_set() -> None:
    """The race `asyncio.wait_for` loses on Python 3.11: the event is set, the inner wait
    finishes, and the cancellation arrives before the loop resumes — `wait_for` returned
    the wait's result, swallowing the cancellation, and its loop went round again for
    ever (200 times of 200 in the same test with `wait_for`)."""
    for _ in range(200):
        event = asyncio.Event()
        task = asyncio.create_task(_wake_forever(event))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        event.set()
        await asyncio.sleep(0)  # the inner wait finishes
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 1)  # (a TimeoutError here: the loop went on)
        assert task.cancelled()

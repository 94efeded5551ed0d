"""`within`: many waits under one timeout, one timer for all of them."""

from __future__ import annotations

import asyncio
import time

import pytest

from shared import deadlines
from shared.deadlines import TICK_S, within


async def _answer(after_s: float, value: int = 1) -> int:
    await asyncio.sleep(after_s)
    return value


async def test_a_wait_done_in_time_answers_its_result() -> None:
    assert await within(_answer(0.01, 7), 1.0) == 7


async def test_a_wait_past_its_deadline_is_a_timeout_error_at_most_a_tick_late() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await within(_answer(60), 0.2)
    took = time.monotonic() - started
    assert 0.2 <= took < 0.2 + TICK_S + 0.2
    # the task is not left cancelled: it goes on awaiting
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    assert await _answer(0.01, 3) == 3


async def test_an_outside_cancel_is_a_cancellation_not_a_timeout() -> None:
    """A stop or a client gone while waiting propagates as `CancelledError`."""
    task = asyncio.create_task(within(_answer(60), 5.0))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_thousand_waits_share_one_timer_and_are_forgotten_once_done() -> None:
    """Waits finished before the deadline are dropped when the timer fires; the expired
    ones among them time out; the timer is disarmed when nothing is left."""
    timeout_s = 0.3
    fast = [asyncio.create_task(within(_answer(0.01, i), timeout_s)) for i in range(1000)]
    slow = [asyncio.create_task(within(_answer(60), timeout_s)) for _ in range(3)]
    assert [await t for t in fast] == list(range(1000))
    watch = deadlines._watches[timeout_s]
    assert len(watch.waits) == 1003 and watch.timer is not None  # one timer for all
    results = await asyncio.gather(*slow, return_exceptions=True)
    assert all(isinstance(r, TimeoutError) for r in results)
    assert not watch.waits and watch.timer is None


async def test_timeouts_of_different_lengths_do_not_wait_for_each_other() -> None:
    """A short bound is not held behind a long one begun before it."""
    long = asyncio.create_task(within(_answer(60), 30.0))
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await within(_answer(60), 0.1)
    assert time.monotonic() - started < 1.0
    long.cancel()
    with pytest.raises(asyncio.CancelledError):
        await long

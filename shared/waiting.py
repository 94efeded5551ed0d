"""Waiting on an `asyncio.Event` with a timeout, in loops that must stop when cancelled.

`asyncio.wait_for(event.wait(), t)` on Python 3.11 swallows a cancellation that arrives
just as the event is set (the inner wait has finished, so `wait_for` returns its result
instead of raising), and a loop built on it carries on after its task was cancelled: a
stop then waits out its grace period and the loop never ends. `asyncio.timeout` tells its
own cancellation from anyone else's, so a stop always lands.
"""

from __future__ import annotations

import asyncio


async def wait_set(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait until `event` is set (True) or `timeout_s` passes (False); a cancellation of
    the caller always propagates."""
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        return False
    return True

"""Many awaits bounded by the same timeout, watched by one timer instead of one each.

`asyncio.timeout` arms and cancels a timer of the event loop for every use: ~10 µs on
uvloop, ~6 % of the webhook's CPU in issue 20's ingest profile, where every request waits
for Kafka's acknowledgement under the same bound (`WEBHOOK_ENQUEUE_TIMEOUT_S`). `within`
keeps the waits of one timeout in arrival order — with one timeout their deadlines come in
that order too — and one timer per timeout fires at the oldest pending deadline, drops the
waits already done and cancels the expired ones. A wait costs a deque append; an expiry is
noticed at most `TICK_S` late (the timer is re-armed no sooner), which is nothing against a
bound of seconds.

The cancellation is told from anyone else's as `asyncio.timeout` does (`Task.uncancel`), so
an outside cancel (a stop, a client gone) still propagates as `CancelledError`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")

# The timer is re-armed no sooner than this after it fired: at most this many firings a
# second per timeout in use, however many waits there are.
TICK_S = 0.05


class _Wait:
    __slots__ = ("deadline", "expired", "task")

    def __init__(self, deadline: float, task: asyncio.Task[object]) -> None:
        self.deadline = deadline
        self.task: asyncio.Task[object] | None = task  # None once the wait is over
        self.expired = False


class _Watch:
    """The waits of one timeout on one event loop, oldest first, and their one timer."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
        self.loop = loop
        self.timeout_s = timeout_s
        self.waits: deque[_Wait] = deque()
        self.timer: asyncio.TimerHandle | None = None

    def add(self, task: asyncio.Task[object]) -> _Wait:
        wait = _Wait(self.loop.time() + self.timeout_s, task)
        self.waits.append(wait)
        if self.timer is None:
            self.timer = self.loop.call_at(wait.deadline, self._expire)
        return wait

    def _expire(self) -> None:
        now = self.loop.time()
        waits = self.waits
        while waits:
            head = waits[0]
            if head.task is not None and head.deadline > now:
                break
            waits.popleft()
            if head.task is not None:
                head.expired = True
                head.task.cancel()
        self.timer = (
            self.loop.call_at(max(waits[0].deadline, now + TICK_S), self._expire) if waits else None
        )


# One watch per timeout, of the running loop (a new loop — a test's — gets new ones).
_watches: dict[float, _Watch] = {}


def _watch(timeout_s: float) -> _Watch:
    loop = asyncio.get_running_loop()
    watch = _watches.get(timeout_s)
    if watch is None or watch.loop is not loop:
        watch = _watches[timeout_s] = _Watch(loop, timeout_s)
    return watch


async def within(awaitable: Awaitable[T], timeout_s: float) -> T:
    """`await awaitable`, or `TimeoutError` once `timeout_s` has passed (up to `TICK_S`
    later); the caller's task is cancelled at the deadline as `asyncio.timeout` would."""
    task = asyncio.current_task()
    if task is None:
        raise RuntimeError("within() must be awaited in a task")
    cancelling = task.cancelling()
    wait = _watch(timeout_s).add(task)
    try:
        result = await awaitable
    except asyncio.CancelledError:
        wait.task = None
        if wait.expired and task.uncancel() <= cancelling:
            raise TimeoutError(f"not done within {timeout_s:g} s") from None
        raise
    except BaseException:
        wait.task = None
        raise
    wait.task = None
    if wait.expired:
        task.uncancel()  # the awaitable swallowed our cancellation: take it back
    return result

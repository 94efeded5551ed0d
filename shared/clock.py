"""One clock for every service.

In production the clock is the machine's. With `APP_ENV` `test` or `demo` it is a shared,
controllable clock kept in Postgres (`clock.shared_clock`): an administrator sets "now" on
any service and all three follow within a refresh interval, so a month can be played in
seconds. Time then flows on from the set instant at the real rate, and never backwards.
Timers (draws, attendance windows, promotion cut-offs) read this clock through sweepers,
never `datetime.now()` directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

import asyncpg

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


class ClockWentBackwardsError(ValueError):
    """Setting the clock to an instant earlier than its current time is refused."""


class Clock:
    """The machine's clock. `SharedClock` overrides it in test and demo."""

    controllable = False

    def now(self) -> datetime:
        return utc_now()

    async def start(self) -> None:
        """Begin following the shared value (nothing to do for the real clock)."""

    async def stop(self) -> None:
        """Stop following."""


class FixedClock(Clock):
    """A clock for unit tests: it only moves when told to."""

    controllable = True

    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, now: datetime) -> None:
        if now < self._now:
            raise ClockWentBackwardsError(f"{now.isoformat()} is before {self._now.isoformat()}")
        self._now = now


# The shared clock starts at the real time and only moves forward: the first set may not go
# back from the database's clock (the `WHERE` of the SELECT), a later one not back from the
# shared time (the `WHERE` of the UPDATE). The shared time is never behind the real one, so
# a valid later set always passes the first test too.
_SET_SQL = """
INSERT INTO clock.shared_clock (id, now_at, set_at) SELECT true, $1::timestamptz, now()
WHERE $1::timestamptz >= now()
ON CONFLICT (id) DO UPDATE SET now_at = EXCLUDED.now_at, set_at = EXCLUDED.set_at
WHERE clock.shared_clock.now_at + (now() - clock.shared_clock.set_at) <= EXCLUDED.now_at
RETURNING now_at, set_at
"""


class SharedClock(Clock):
    """A controllable clock whose value lives in Postgres, shared by all services."""

    controllable = True

    def __init__(self, pool: asyncpg.Pool, refresh_interval_ms: int = 200) -> None:
        self._pool = pool
        self._refresh_s = refresh_interval_ms / 1000
        # offset from the machine's clock; zero until someone sets the shared clock
        self._offset = timedelta(0)
        self._task: asyncio.Task[None] | None = None

    def now(self) -> datetime:
        return utc_now() + self._offset

    async def refresh(self) -> None:
        row = await self._pool.fetchrow(
            "SELECT now_at, set_at, now() AS db_now FROM clock.shared_clock WHERE id"
        )
        if row is None:
            return
        shared_now = row["now_at"] + (row["db_now"] - row["set_at"])
        offset = shared_now - utc_now()
        # Never let a refresh move this process's clock backwards (network jitter).
        if utc_now() + offset >= self.now() - timedelta(milliseconds=50):
            self._offset = offset

    async def set(self, now: datetime) -> datetime:
        """Move the shared clock to `now`; refused if that is earlier than the current time."""
        row = await self._pool.fetchrow(_SET_SQL, now)
        if row is None:
            current = await self._current()
            raise ClockWentBackwardsError(
                f"the clock is at {current.isoformat()}; {now.isoformat()} would move it backwards"
            )
        await self.refresh()
        return self.now()

    async def _current(self) -> datetime:
        await self.refresh()
        return self.now()

    async def start(self) -> None:
        with contextlib.suppress(Exception):
            await self.refresh()
        self._task = asyncio.create_task(self._follow(), name="shared-clock")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.refresh()
            except Exception as exc:  # the DB may be down; keep the last offset
                log.debug("clock refresh failed: %s", exc)

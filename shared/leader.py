"""Background jobs whose rows must be handled by one process at a time per ordering key (the
outbox relay of a schema, the matcher's partner-notification sender), spread over every
process that runs them, and that must outlive any failure.

`lead` gives the job a dedicated connection that listens on its NOTIFY channel (so it wakes
within milliseconds of a commit) and holds its leases (`Leases`): a member lock, which makes
the process one of the job's live members, and the advisory locks of the shards it holds
(`shared.shards` says which rows a shard owns and which shards a member should hold). The
job calls `Leases.rebalance` now and then: when a process joins, the others hand over the
shards it should hold; when one dies, its connection and so its locks go with it, and the
others take its shards at their next look. The advisory locks are the safety guarantee
throughout: a shard's slots have one holder at a time, whatever the members believe.

`keep_running` restarts the job after any failure with capped backoff, logging transient
outages (Postgres or Kafka away) as warnings and anything else as errors with the trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

import asyncpg

from shared.db import is_transient
from shared.shards import assigned, ranges, shard_of, slots_of

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 5.0
# How often a job looks at the live members and takes or hands over shards: the delay
# before a dead process's shards are taken over, and before a new process gets its share.
REBALANCE_INTERVAL_S = 1.0
# How long a stopping job may take to mark what it did, leave and hand its connection back
# before the stop goes on without it (its connection is then closed, so its locks go too).
STOP_GRACE_S = 10.0


async def keep_running(name: str, attempt: Callable[[], Awaitable[None]]) -> None:
    """Run `attempt` forever; after a failure, wait (0.1 s doubling to 5 s) and run it again."""
    backoff_s = BACKOFF_START_S
    while True:
        try:
            await attempt()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if is_transient(exc):
                log.warning("%s waiting for Postgres/Kafka: %s", name, exc)
            else:
                log.exception("%s failed; restarting it", name)
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, BACKOFF_MAX_S)
        else:
            backoff_s = BACKOFF_START_S


def awaited_frames(task: asyncio.Task[Any]) -> list[FrameType]:
    """Where a suspended task waits, outermost frame first, down its chain of awaits
    (`Task.get_stack` gives only the outermost frame, not the statement that hangs)."""
    frames: list[FrameType] = []
    coro: Any = task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            frames.append(frame)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return frames


async def stop_job(task: asyncio.Task[None], name: str, grace_s: float = STOP_GRACE_S) -> None:
    """Cancel a job and wait for its `finally` (marks, leave, connection back), at most
    `grace_s`: a shutdown must end even if a cleanup statement never returns, and says
    where it was left waiting."""
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=grace_s)
    if not done:
        log.error(
            "%s did not stop within %.0f s of being cancelled; left waiting at %s",
            name,
            grace_s,
            " > ".join(f"{f.f_code.co_name}:{f.f_lineno}" for f in awaited_frames(task)) or "?",
        )
    elif not task.cancelled() and task.exception() is not None:
        log.error("%s ended with an error while stopping", name, exc_info=task.exception())


class Leases:
    """One process's membership of a job and the shards it holds, on the job's connection.

    Advisory locks of the two-key form: (hashtext('<job>:members'), member id) marks a live
    member; (hashtext('<job>:slots'), slot) is held for every slot of every shard held.
    Session locks, so they last as long as the connection and no longer."""

    def __init__(self, conn: asyncpg.Connection, *, job: str, shards: int) -> None:
        slots_of(0, shards)  # refuses a shard count out of range
        self._conn = conn
        self._members_space = f"{job}:members"
        self._slots_space = f"{job}:slots"
        self.job = job
        self.shards = shards
        self.member_id = 0
        self._held: set[int] = set()
        self._leaving: set[int] = set()

    @property
    def held(self) -> frozenset[int]:
        """The shards whose locks this process holds (including those it is handing over)."""
        return frozenset(self._held)

    @property
    def leaving(self) -> frozenset[int]:
        """Held shards another member should hold now: work on them stops, and they are
        released once the job has let go of them (`release_drained`)."""
        return frozenset(self._leaving)

    @property
    def active(self) -> frozenset[int]:
        """The shards to work on: held and not being handed over."""
        return frozenset(self._held - self._leaving)

    @property
    def housekeeper(self) -> bool:
        """Whether this process does the job's once-per-job chores (retention deletes): the
        holder of shard 0, so exactly one process does them while shard 0 is held."""
        return 0 in self.active

    def ranges(self) -> list[tuple[int, int]]:
        """The hash ranges (inclusive) of the active shards, adjacent ones merged."""
        return ranges(self.active, self.shards)

    def owns(self, key_hash: int) -> bool:
        """Whether a row whose key hashes to `key_hash` is this process's to handle now."""
        return shard_of(key_hash, self.shards) in self.active

    async def join(self) -> None:
        """Become a live member under a random id (another if that one is taken)."""
        while True:
            member_id = random.randint(1, 2**31 - 1)
            if await self._conn.fetchval(
                "SELECT pg_try_advisory_lock(hashtext($1), $2)", self._members_space, member_id
            ):
                self.member_id = member_id
                return

    async def members(self) -> list[int]:
        """The ids of the job's live members (this process's among them once joined)."""
        rows = await self._conn.fetch(
            "SELECT objid::bigint AS member_id FROM pg_locks"
            " WHERE locktype = 'advisory' AND granted AND objsubid = 2"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid = hashtext($1)::oid",
            self._members_space,
        )
        return [int(r["member_id"]) for r in rows]

    async def rebalance(self, drained: Callable[[int], bool] = lambda _: True) -> None:
        """Look at the live members: mark the shards another member should hold as leaving
        (released at once if `drained` says the job holds nothing of them), and take the
        shards this member should hold that are free (one still held by its previous holder
        is tried again next time)."""
        wanted = assigned(self.shards, await self.members(), self.member_id)
        self._leaving = self._held - wanted
        await self.release_drained(drained)
        for shard in sorted(wanted - self._held):
            await self._take(shard)

    async def release_drained(self, drained: Callable[[int], bool]) -> None:
        """Release every leaving shard the job has let go of."""
        for shard in sorted(self._leaving):
            if drained(shard):
                await self._release(shard)

    async def _take(self, shard: int) -> bool:
        """Lock every slot of `shard`, or none of them."""
        slots = slots_of(shard, self.shards)
        got: list[int] = await self._conn.fetchval(
            "SELECT coalesce(array_agg(s ORDER BY s), '{}') FROM generate_series($2::int, $3::int)"
            " AS s WHERE pg_try_advisory_lock(hashtext($1), s)",
            self._slots_space,
            slots.start,
            slots.stop - 1,
        )
        if len(got) == len(slots):
            self._held.add(shard)
            log.info("%s: shard %d of %d taken", self.job, shard, self.shards)
            return True
        if got:
            await self._unlock(got)
        return False

    async def _release(self, shard: int) -> None:
        await self._unlock(list(slots_of(shard, self.shards)))
        self._held.discard(shard)
        self._leaving.discard(shard)
        log.info("%s: shard %d of %d handed over", self.job, shard, self.shards)

    async def _unlock(self, slots: list[int]) -> None:
        await self._conn.execute(
            "SELECT pg_advisory_unlock(hashtext($1), s) FROM unnest($2::int[]) AS s",
            self._slots_space,
            slots,
        )

    async def leave(self) -> None:
        """Release every shard and the membership (the connection goes back to the pool)."""
        self._held.clear()
        self._leaving.clear()
        await self._conn.execute("SELECT pg_advisory_unlock_all()")


async def lead(
    pool: asyncpg.Pool,
    *,
    job: str,
    shards: int,
    channel: str,
    on_notify: Callable[..., Any],
    work: Callable[[asyncpg.Connection, Leases], Awaitable[None]],
    before_release: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
) -> None:
    """Run `work(conn, leases)` on a dedicated connection listening on `channel`, as a
    member of `job` holding its share of the job's `shards` (taken here once, then kept
    balanced by `work` calling `leases.rebalance`). On the way out, `before_release` runs
    while the shards are still held, then everything is released."""
    conn = await pool.acquire()
    try:
        leases = Leases(conn, job=job, shards=shards)
        # Listening before holding anything: no commit between the two goes unnoticed.
        await conn.add_listener(channel, on_notify)
        try:
            await leases.join()
            await leases.rebalance()
            await work(conn, leases)
        finally:
            if before_release is not None:
                with contextlib.suppress(Exception):
                    await before_release(conn)
            with contextlib.suppress(Exception):
                await conn.remove_listener(channel, on_notify)
                await leases.leave()
    finally:
        # Bounded: on timeout asyncpg closes the connection, which releases its locks.
        await pool.release(conn, timeout=STOP_GRACE_S)

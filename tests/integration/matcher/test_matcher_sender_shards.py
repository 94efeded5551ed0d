"""The partner-notification sender sharded over several processes (shared/shards.py,
shared/leader.py), against real Postgres and a local receiver.

* Two senders share the shards without an operator: one alone holds all four, a second one
  joining ends up with two and the first keeps two; every notification arrives once, each
  key's in order, and every notification of a key comes from one sender.
* A sender killed with SIGKILL mid-delivery (its own process): the other takes its shards
  within seconds and everything arrives, each key in order; a repeat is the same
  notification under its same webhook-id (never a second id).
* A sender whose lease connection is terminated while it lives on (its sends in flight
  outlive its lease): the same.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from matcher import store
from matcher.notify import NotificationSender

from shared import migrations
from shared.db import create_pool

from .sender_process import short_sender
from .test_matcher_sender import SECRET, _write, serving

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[3]
MIGRATIONS = Path(store.__file__).parent / "migrations"
SHARDS = 4


class Receiver:
    """A partner that answers 200 after a short random delay and remembers, per key, the
    order notifications first arrived in and which sender (`?from=`) sent them."""

    def __init__(self, delay_s: tuple[float, float] = (0, 0.004)) -> None:
        self.delay_s = delay_s
        self.seen: Counter[str] = Counter()
        self.bodies: dict[str, bytes] = {}
        self.order: dict[str, list[int]] = {}
        self.senders: dict[str, set[str]] = {}  # key -> senders that delivered its rows
        self.by_sender: Counter[str] = Counter()

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = await request.json()
        await asyncio.sleep(random.uniform(*self.delay_s))
        webhook_id = request.headers["webhook-id"]
        sender = request.query.get("from", "?")
        self.seen[webhook_id] += 1
        if self.seen[webhook_id] == 1:
            self.bodies[webhook_id] = raw
            self.order.setdefault(body["key"], []).append(body["n"])
            self.senders.setdefault(body["key"], set()).add(sender)
            self.by_sender[sender] += 1
        else:
            assert self.bodies[webhook_id] == raw, "a repeat carries the same notification"
        return web.json_response({"status": "ok"})

    @property
    def delivered(self) -> int:
        return len(self.seen)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    partner = Receiver(delay_s=(0.002, 0.01))
    async with serving(partner.handle) as url:
        yield partner, url


@pytest.fixture
async def schema(admin_dsn: str, make_schema: Callable[[], Awaitable[str]]) -> str:
    """A fresh schema with the matcher's tables, so the running matcher never sees it."""
    name = await make_schema()
    conn = await asyncpg.connect(admin_dsn)
    try:
        await migrations.apply(conn, name, MIGRATIONS)
    finally:
        await conn.close()
    return name


@pytest.fixture
async def pools(admin_dsn: str, schema: str) -> AsyncIterator[list[asyncpg.Pool]]:
    """One pool per sender, as separate processes would have, plus one for the test."""
    made = [await create_pool(admin_dsn, schema=schema, size_max=4) for _ in range(3)]
    yield made
    for pool in made:
        await pool.close()


def _sender(pool: asyncpg.Pool, url: str, job: str, name: str) -> NotificationSender:
    return short_sender(pool, f"{url}?from={name}", SECRET, job, SHARDS)


async def _until(check: Callable[[], Awaitable[bool] | bool], timeout_s: float, what: str) -> float:
    """Wait until `check` holds; returns the seconds it took."""
    started = time.monotonic()
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return time.monotonic() - started
        assert time.monotonic() - started < timeout_s, f"{what}: not within {timeout_s} s"
        await asyncio.sleep(0.05)


async def _slots_by_pid(pool: asyncpg.Pool, job: str) -> dict[int, int]:
    """How many slot locks of `job` each backend holds."""
    rows = await pool.fetch(
        "SELECT pid, count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND objsubid = 2 AND classid = hashtext($1)::oid GROUP BY pid",
        f"{job}:slots",
    )
    return {r["pid"]: r["n"] for r in rows}


def _active(sender: NotificationSender) -> frozenset[int]:
    return sender.leases.active if sender.leases is not None else frozenset()


def _check_order(partner: Receiver, keys: int, per_key: int) -> None:
    assert partner.delivered == keys * per_key, "every notification arrived"
    assert len(partner.order) == keys
    bad = {k: v for k, v in partner.order.items() if v != list(range(per_key))}
    assert bad == {}, f"{len(bad)} keys out of order, e.g. {next(iter(bad.items()), None)}"


async def _statuses(pool: asyncpg.Pool) -> dict[str, int]:
    rows = await pool.fetch("SELECT status, count(*) AS n FROM partner_notifications GROUP BY 1")
    return {r["status"]: r["n"] for r in rows}


async def test_two_senders_share_the_shards_and_deliver_each_key_in_order_once(
    pools: list[asyncpg.Pool], receiver: tuple[Receiver, str]
) -> None:
    partner, url = receiver
    job = f"test-sender-{uuid.uuid4()}"
    first, second = _sender(pools[0], url, job, "a"), _sender(pools[1], url, job, "b")
    await first.start()
    try:
        await _until(lambda: _active(first) == set(range(SHARDS)), 10, "alone, all four shards")
        await second.start()
        try:
            took_s = await _until(
                lambda: len(_active(first)) == len(_active(second)) == SHARDS // 2,
                10,
                "two senders, two shards each",
            )
            assert not _active(first) & _active(second)
            slots = await _slots_by_pid(pools[2], job)
            assert sorted(slots.values()) == [32, 32], "each holds the locks of half the slots"
            keys, per_key = 200, 8
            await _write(pools[2], keys, per_key)
            await _until(lambda: partner.delivered == keys * per_key, 60, "all delivered")
            await asyncio.sleep(0.5)  # a repeat of anything would arrive now
        finally:
            await second.stop()
    finally:
        await first.stop()
    print(f"the second sender had its share {took_s:.2f} s after starting")
    _check_order(partner, keys, per_key)
    assert max(partner.seen.values()) == 1, "a graceful run sends nothing twice"
    assert all(len(s) == 1 for s in partner.senders.values()), "one sender per key"
    assert partner.by_sender["a"] > 0 and partner.by_sender["b"] > 0
    assert await _statuses(pools[2]) == {"delivered": keys * per_key}


async def test_a_sender_killed_mid_delivery_hands_its_shards_to_the_other(
    admin_dsn: str,
    schema: str,
    pools: list[asyncpg.Pool],
    receiver: tuple[Receiver, str],
) -> None:
    """SIGKILL of a sender process holding half the shards while it delivers: the other
    holds all four within seconds; every notification arrives, each key in order."""
    partner, url = receiver
    job = f"test-sender-{uuid.uuid4()}"
    survivor = _sender(pools[0], url, job, "b")
    await survivor.start()
    victim = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.matcher.sender_process", admin_dsn, schema,
         f"{url}?from=a", SECRET, job, str(SHARDS)],
        cwd=ROOT,
    )  # fmt: skip
    try:
        await _until(lambda: len(_active(survivor)) == SHARDS // 2, 30, "the victim took half")
        keys, per_key = 300, 10
        await _write(pools[2], keys, per_key)
        await _until(lambda: partner.by_sender["a"] >= 200, 30, "the victim delivering")
        os.kill(victim.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        victim.wait(10)
        await _until(lambda: _active(survivor) == set(range(SHARDS)), 10, "survivor takes all")
        took_over_s = time.monotonic() - killed_at
        await _until(lambda: partner.delivered == keys * per_key, 60, "all delivered")
        await asyncio.sleep(0.5)
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait(10)
        await survivor.stop()
    print(f"shards taken over {took_over_s:.2f} s after the kill")
    assert took_over_s < 5
    _check_order(partner, keys, per_key)
    assert partner.by_sender["a"] < keys * per_key, "the victim was killed mid-delivery"
    assert await _statuses(pools[2]) == {"delivered": keys * per_key}


async def test_a_sender_losing_its_lease_connection_while_alive_keeps_order(
    pools: list[asyncpg.Pool], receiver: tuple[Receiver, str]
) -> None:
    """pg_terminate_backend of one sender's lease connection mid-delivery: its shards go to
    the other at once while its own sends in flight may still end (and it joins again);
    every notification arrives, each key in order."""
    partner, url = receiver
    job = f"test-sender-{uuid.uuid4()}"
    first, second = _sender(pools[0], url, job, "a"), _sender(pools[1], url, job, "b")
    await first.start()
    await second.start()
    try:
        await _until(
            lambda: len(_active(first)) == len(_active(second)) == SHARDS // 2, 10, "spread"
        )
        keys, per_key = 300, 10
        await _write(pools[2], keys, per_key)
        await _until(lambda: partner.by_sender["a"] >= 200, 30, "the first delivering")
        assert first.leases is not None
        lease_pid = await pools[2].fetchval(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2"
            " AND classid = hashtext($1)::oid AND objid = $2::bigint::oid",
            f"{job}:members",
            first.leases.member_id,
        )
        assert await pools[2].fetchval("SELECT pg_terminate_backend($1)", lease_pid)
        await _until(lambda: partner.delivered == keys * per_key, 60, "all delivered")
        await asyncio.sleep(0.5)
    finally:
        await second.stop()
        await first.stop()
    _check_order(partner, keys, per_key)
    assert await _statuses(pools[2]) == {"delivered": keys * per_key}

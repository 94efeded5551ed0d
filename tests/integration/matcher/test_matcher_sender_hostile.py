"""The partner notification sender against a hostile receiver (issue 21): the real sender
and Postgres, a local partner on 127.0.0.1 whose answer depends on the notification's
ordering key: it hangs, answers 500, redirects with 307, streams a huge 200, or is healthy.

* A redirect is never followed (the signed body reaches only the configured URL) and is a
  failed attempt, recorded with its status; the row is not marked delivered.
* A huge answer is not read: the bytes the partner managed to send and the matcher's
  resident memory stay within a few MB.
* Failing keys do not slow the healthy ones: their latency with hostile keys around stays
  within a bound of a run without them (measured here, same process), while the hostile
  keys fail and are parked.
* A partner failing on everything opens the endpoint's breaker (no attempts during the
  cooldown, rows wait with their retry budget untouched), is reported down after a while,
  and the breaker closes again on the first successful probe.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from matcher import store
from matcher.notify import NotificationSender
from prometheus_client import REGISTRY

from shared import migrations
from shared.db import create_pool

from .test_matcher_sender import _note

pytestmark = pytest.mark.stack

MIGRATIONS = Path(store.__file__).parent / "migrations"
SECRET = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"
HUGE_BYTES = 256 * 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class Hostile:
    """A partner whose answer depends on the key: `hang-*`, `fail-*`, `redirect-*`,
    `huge-*`, anything else healthy; `down` makes every answer a 500."""

    def __init__(self) -> None:
        self.down = False
        self.hits: Counter[str] = Counter()
        self.arrived: dict[str, float] = {}  # webhook-id -> monotonic arrival (healthy)
        self.order: dict[str, list[int]] = {}
        self.seen: Counter[str] = Counter()
        self.stolen = 0
        self.huge_sent = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        key: str = body["key"]
        self.hits[key] += 1
        if self.down:
            return web.Response(status=500, text="down")
        if key.startswith("hang-"):
            await asyncio.sleep(2)
            return web.Response(status=200)
        if key.startswith("fail-"):
            return web.Response(status=500, text="boom")
        if key.startswith("redirect-"):
            raise web.HTTPTemporaryRedirect("/stolen")
        if key.startswith("huge-"):
            response = web.StreamResponse(status=200)
            response.content_type = "application/octet-stream"
            await response.prepare(request)
            chunk = b"x" * 65536
            try:
                while self.huge_sent < HUGE_BYTES:
                    await response.write(chunk)
                    self.huge_sent += len(chunk)
                await response.write_eof()
            except (ConnectionError, RuntimeError):
                pass
            return response
        webhook_id = request.headers["webhook-id"]
        self.seen[webhook_id] += 1
        if self.seen[webhook_id] == 1:
            self.arrived[webhook_id] = time.monotonic()
            self.order.setdefault(key, []).append(body["n"])
        return web.json_response({"status": "ok"})

    async def handle_stolen(self, request: web.Request) -> web.Response:
        await request.read()
        self.stolen += 1
        return web.json_response({"status": "ok"})


@pytest.fixture
async def partner() -> AsyncIterator[tuple[Hostile, str]]:
    hostile = Hostile()
    app = web.Application()
    app.router.add_post("/notifications", hostile.handle)
    app.router.add_post("/stolen", hostile.handle_stolen)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield hostile, f"http://127.0.0.1:{port}/notifications"
    await runner.cleanup()


@pytest.fixture
async def pool(
    admin_dsn: str, make_schema: Callable[[], Awaitable[str]]
) -> AsyncIterator[asyncpg.Pool]:
    schema = await make_schema()
    conn = await asyncpg.connect(admin_dsn)
    try:
        await migrations.apply(conn, schema, MIGRATIONS)
    finally:
        await conn.close()
    p = await create_pool(admin_dsn, schema=schema, size_max=4)
    yield p
    # Bounded: a failed assertion can leave a send holding a connection, and an unbounded
    # close then waits for it forever (a CI run here hung in this teardown).
    try:
        await asyncio.wait_for(p.close(), timeout=10)
    except TimeoutError:
        p.terminate()


def sender_for(pool: asyncpg.Pool, url: str, **overrides: Any) -> NotificationSender:
    options: dict[str, Any] = {
        "concurrency_max": 8,
        "timeout_ms": 300,
        "retry_for": timedelta(minutes=5),
        "attempts_max": 4,
        "backoff_base_ms": 100,
        "backoff_cap_ms": 400,
        "poll_interval_ms": 200,
        "response_read_max_bytes": 4096,
        "lock_key": f"test-sender-{uuid.uuid4()}",
    }
    options.update(overrides)
    return NotificationSender(pool=pool, url=url, secret=SECRET, **options)


async def write(pool: asyncpg.Pool, key: str, n: int) -> str:
    note = _note(key, n)
    async with pool.acquire() as conn, conn.transaction():
        await store.add_notifications(conn, [note])
    return note.notification_id


async def healthy_stream(pool: asyncpg.Pool, partner: Hostile, tag: str) -> list[float]:
    """60 notifications on 4 healthy keys, one every 20 ms; their latencies (s) from
    commit to arrival at the partner."""
    written: dict[str, float] = {}
    for n in range(15):
        for k in range(4):
            written[await write(pool, f"ok-{tag}-{k}", n)] = time.monotonic()
            await asyncio.sleep(0.02)
    deadline = time.monotonic() + 15
    while not all(w in partner.arrived for w in written):
        assert time.monotonic() < deadline, "healthy notifications not all delivered in 15 s"
        await asyncio.sleep(0.02)
    return sorted(partner.arrived[w] - at for w, at in written.items())


def p99(latencies: list[float]) -> float:
    return latencies[min(int(len(latencies) * 0.99), len(latencies) - 1)]


async def statuses(pool: asyncpg.Pool, prefix: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT ordering_key, status, attempts, last_status_code, last_error"
        " FROM partner_notifications WHERE ordering_key LIKE $1 ORDER BY ordering_key",
        prefix + "%",
    )


async def test_hostile_keys_neither_redirect_nor_bloat_nor_slow_the_healthy_ones(
    pool: asyncpg.Pool, partner: tuple[Hostile, str]
) -> None:
    hostile, url = partner
    # Per-key failures on an endpoint that works: far fewer failures in a row than the
    # breaker's threshold, so it must stay closed throughout.
    sender = sender_for(
        pool, url, breaker_failures=1_000, attempts_max=1_000, retry_for=timedelta(seconds=3)
    )
    await sender.start()
    try:
        baseline = await healthy_stream(pool, hostile, "a")

        rss_before = rss_bytes()
        # More failing keys than send slots, failing for 3 s (then parked by time).
        keys = [f"hang-{i}" for i in range(6)] + [f"fail-{i}" for i in range(6)]
        keys += ["redirect-0", "redirect-1", "huge-0"]
        for key in keys:
            await write(pool, key, 0)
            await write(pool, key, 1)  # held back behind the first until it is delivered
        await asyncio.sleep(0.6)  # every hostile key has failed once: they are retrying now
        with_hostile = await healthy_stream(pool, hostile, "b")

        deadline = time.monotonic() + 20
        while True:
            rows = await statuses(pool, "")
            failed = {r["ordering_key"] for r in rows if r["status"] == "failed"}
            huge = [r["status"] for r in rows if r["ordering_key"] == "huge-0"]
            if failed == set(keys) - {"huge-0"} and huge == ["delivered", "delivered"]:
                break
            assert time.monotonic() < deadline, f"hostile keys not settled: {failed} {huge}"
            await asyncio.sleep(0.1)
        rss_after = rss_bytes()
        assert sender.breaker.state == "closed"
    finally:
        await sender.stop()

    # 307: never followed, a failed attempt with its status, parked after its attempts.
    assert hostile.stolen == 0
    rows = await statuses(pool, "redirect-")
    firsts = [r for r in rows if r["status"] != "pending"]
    assert len(firsts) == 2
    for r in firsts:
        assert (r["status"], r["last_status_code"]) == ("failed", 307)
        assert "not followed" in r["last_error"]
    assert [r["status"] for r in rows].count("pending") == 2  # held back in order
    # 500 and hang: retried, then parked with what they answered.
    for r in await statuses(pool, "fail-"):
        if r["status"] != "pending":
            assert (r["status"], r["last_status_code"]) == ("failed", 500)
    for r in await statuses(pool, "hang-"):
        if r["status"] != "pending":
            assert (r["status"], r["last_status_code"]) == ("failed", None)
            assert "Timeout" in r["last_error"]
    # The huge 200: delivered, but barely read.
    assert hostile.huge_sent < 32 * 1024 * 1024, (
        f"{hostile.huge_sent} bytes of the huge answer sent"
    )
    grown = rss_after - rss_before
    assert grown < 16 * 1024 * 1024, f"RSS grew by {grown / 2**20:.1f} MiB"
    # Healthy keys: every notification once and in order, latency unharmed.
    assert all(n == 1 for n in hostile.seen.values())
    assert all(order == list(range(15)) for order in hostile.order.values())
    bound = 3 * p99(baseline) + 0.1
    print(
        f"\nhealthy p99 {p99(baseline) * 1000:.0f} ms alone, {p99(with_hostile) * 1000:.0f} ms"
        f" with hostile keys; RSS +{grown / 2**20:.1f} MiB; {hostile.huge_sent} huge bytes sent"
    )
    assert p99(with_hostile) <= bound, (
        f"healthy p99 {p99(with_hostile) * 1000:.0f} ms with hostile keys around,"
        f" {p99(baseline) * 1000:.0f} ms without"
    )


def gauge(name: str) -> float | None:
    return REGISTRY.get_sample_value(name)


async def test_a_failing_endpoint_opens_the_breaker_is_reported_down_and_recovers(
    pool: asyncpg.Pool, partner: tuple[Hostile, str]
) -> None:
    hostile, url = partner
    hostile.down = True
    sender = sender_for(
        pool,
        url,
        concurrency_max=4,
        # The partner answers 500 at once; a long timeout keeps every attempt one that
        # reached it, so attempts and hits compare exactly even on a loaded machine (with
        # 300 ms, a send the busy receiver had not read yet timed out unseen: 8 vs 4).
        timeout_ms=3_000,
        attempts_max=1_000,
        backoff_base_ms=10,
        backoff_cap_ms=20,
        breaker_failures=5,
        breaker_cooldown_ms=600,
        endpoint_down_after_s=0.8,
    )
    for k in range(20):
        await write(pool, f"key-{k}", 0)
    await sender.start()
    try:
        deadline = time.monotonic() + 10
        while sender.breaker.state == "closed":
            assert time.monotonic() < deadline, "the breaker never opened"
            await asyncio.sleep(0.01)
        opened_at = sender.breaker.opened_at
        # sends already in flight when it opened come back (and may re-open it, later)
        await asyncio.sleep(max(opened_at + 0.1 - time.monotonic(), 0))
        hits = sum(hostile.hits.values())
        assert hits <= 5 + 4
        await asyncio.sleep(max(opened_at + 0.45 - time.monotonic(), 0))
        assert sender.breaker.state == "open"  # within the cooldown: nothing goes out
        assert sum(hostile.hits.values()) == hits
        assert gauge("gwangsan_partner_endpoint_breaker_open") == 1

        await asyncio.sleep(1.8)  # about three cooldowns: one probe each, no more
        probes = sum(hostile.hits.values()) - hits
        assert 1 <= probes <= 4, f"{probes} attempts while the breaker was open"
        assert gauge("gwangsan_partner_endpoint_down") == 1
        rows = await statuses(pool, "key-")
        assert {r["status"] for r in rows} == {"pending"}  # waiting, not parked
        attempts = sum(r["attempts"] for r in rows)  # a probe may be on its way
        assert sum(hostile.hits.values()) - 1 <= attempts <= sum(hostile.hits.values())

        hostile.down = False
        deadline = time.monotonic() + 10
        while len(hostile.arrived) < 20:
            assert time.monotonic() < deadline, f"not recovered: {len(hostile.arrived)}/20"
            await asyncio.sleep(0.02)
        assert sender.breaker.state == "closed"
        assert gauge("gwangsan_partner_endpoint_down") == 0
        assert gauge("gwangsan_partner_endpoint_breaker_open") == 0
    finally:
        await sender.stop()
    rows = await statuses(pool, "key-")
    assert {r["status"] for r in rows} == {"delivered"}

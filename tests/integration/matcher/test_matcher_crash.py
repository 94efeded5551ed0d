"""Crash test: kill -9 the matcher in the middle of a rush, restart it, let the partner
retry what went unanswered (and replay some of what was answered); then every application
has exactly one decision and the database invariants hold."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from tools.partner_sim import client

from .helpers import BookingsWatcher, Matcher, Simulator, publish_posting

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[3]
DECISIONS = ("BookingConfirmed", "BookingWaitlisted", "BookingRejected")
RUSH = 300
SEATS = 5


def _run_dir() -> Path:
    return Path(os.environ.get("RUN_DIR", ROOT / ".run"))


async def _restart_stack(stack_env: dict[str, str]) -> None:
    """`python -m devstack up`: starts what is not running (the killed matcher)."""
    env = {**os.environ, "APP_ENV": stack_env.get("APP_ENV", "test")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devstack",
        "up",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=180)
    assert proc.returncode == 0, out.decode()


async def test_kill_9_mid_rush_then_restart_keeps_every_invariant(
    matcher_ready: Matcher,
    sim: Simulator,
    producer: AIOKafkaProducer,
    bookings: BookingsWatcher,
    http: httpx.AsyncClient,
    stack_env: dict[str, str],
    admin_dsn: str,
) -> None:
    """300 applications for 5 seats, kill -9 after about a third were answered; after the
    restart and the partner's retries: exactly 5 confirmed and 295 waitlisted, one decision
    per application on Kafka and at the partner, counts equal rows, no overlaps."""
    matcher = matcher_ready
    secret = stack_env["PARTNER_WEBHOOK_SECRET"].split(",")[0]
    posting = await publish_posting(producer, await matcher.now(), capacity=SEATS)
    await matcher.posting_open(posting.posting_id)
    deliveries = [
        (client.new_application_id(), client.new_webhook_id(), client.citizen_profile())
        for _ in range(RUSH)
    ]
    sent_at = datetime.now(UTC)
    answered: dict[str, int | None] = {}
    gate = asyncio.Semaphore(30)

    async def deliver(application_id: str, webhook_id: str, citizen: dict[str, object]) -> None:
        async with gate:
            try:
                r = await client.submit_application(
                    http,
                    posting_id=posting.posting_id,
                    citizen=citizen,
                    application_id=application_id,
                    webhook_id=webhook_id,
                    timestamp=sent_at,
                    secret=secret,
                    matcher_url=matcher.url,
                )
                answered[application_id] = r.status_code
            except httpx.HTTPError:
                answered[application_id] = None

    rush = [asyncio.create_task(deliver(*d)) for d in deliveries]
    while sum(1 for s in answered.values() if s == 202) < RUSH // 3:
        await asyncio.sleep(0.005)
    pid = int((_run_dir() / "pids" / "matcher.pid").read_text().strip())
    os.kill(pid, signal.SIGKILL)
    killed_at_answered = len(answered)
    await asyncio.gather(*rush)
    assert killed_at_answered < RUSH, "the kill came after the rush; nothing was tested"
    unanswered = [d for d in deliveries if answered[d[0]] != 202]
    assert unanswered, "every request was answered: the kill hit nothing in flight"

    await _restart_stack(stack_env)
    deadline = time.monotonic() + 60
    while True:
        try:
            if (await http.get(matcher.url + "/readyz")).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the matcher did not come back"
        await asyncio.sleep(0.2)

    # The partner retries what it got no 202 for, and replays some it did (same ids, body).
    replayed = unanswered + [d for d in deliveries if answered[d[0]] == 202][:30]
    answered.clear()
    await asyncio.gather(*[deliver(*d) for d in replayed])
    assert all(status == 202 for status in answered.values()), answered

    decided = await bookings.wait_for(posting.posting_id, RUSH, *DECISIONS, timeout_s=120)
    per_application = Counter(e.data["application_id"] for e in decided)
    assert set(per_application) == {d[0] for d in deliveries}
    assert set(per_application.values()) == {1}
    assert Counter(e.type for e in decided) == {
        "BookingConfirmed": SEATS,
        "BookingWaitlisted": RUSH - SEATS,
    }
    positions = sorted(
        e.data["waitlist_position"] for e in decided if e.type == "BookingWaitlisted"
    )
    assert positions == list(range(1, RUSH - SEATS + 1))

    notes = await sim.wait_for(RUSH, posting_id=posting.posting_id, timeout_s=120)
    booking_notes = [n for n in notes if n["type"].startswith("booking.")]
    assert Counter(n["data"]["application_id"] for n in booking_notes) == dict.fromkeys(
        per_application, 1
    )

    conn = await asyncpg.connect(admin_dsn)
    try:
        rows = await conn.fetch(
            "SELECT status, count(*) AS n FROM matcher.applications WHERE posting_id = $1"
            " GROUP BY status",
            posting.posting_id,
        )
        assert {r["status"]: r["n"] for r in rows} == {
            "confirmed": SEATS,
            "waitlisted": RUSH - SEATS,
        }
        drift = await conn.fetchval(
            """
            SELECT count(*) FROM matcher.postings p
             WHERE p.confirmed_count > p.capacity
                OR p.confirmed_count <> (SELECT count(*) FROM matcher.applications a
                                          WHERE a.posting_id = p.posting_id
                                            AND a.status = 'confirmed')
                OR p.waitlisted_count <> (SELECT count(*) FROM matcher.applications a
                                           WHERE a.posting_id = p.posting_id
                                             AND a.status = 'waitlisted')
            """
        )
        assert drift == 0
        overlaps = await conn.fetchval(
            """
            SELECT count(*) FROM matcher.applications a JOIN matcher.applications b
              ON a.citizen_id = b.citizen_id AND a.application_id < b.application_id
             WHERE a.status = 'confirmed' AND b.status = 'confirmed'
               AND tstzrange(a.starts_at, a.ends_at) && tstzrange(b.starts_at, b.ends_at)
            """
        )
        assert overlaps == 0
        live_twice = await conn.fetchval(
            "SELECT count(*) FROM (SELECT citizen_id, posting_id FROM matcher.applications"
            " WHERE status IN ('pending', 'confirmed', 'waitlisted')"
            " GROUP BY 1, 2 HAVING count(*) > 1) d"
        )
        assert live_twice == 0
    finally:
        await conn.close()

"""Commit, then reveal (issue 19) on the real stack: the commitment goes out when a draw
posting opens, the draw at close publishes a record that the standalone verifier and the
CLI both call verified, its seed hashes to that commitment, and a late application is
refused `applications_closed`. A matcher interrupted between the freeze and the draw
finishes with the outcome of the stored freeze, once."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from matcher import store
from matcher.domain import fair_draw
from matcher.settings import MatcherSettings
from matcher.usecases import draws
from matcher.usecases.deps import Deps

from shared.db import create_pool
from shared.events import ApplicationReceived, CitizenProfile

from .helpers import BookingsWatcher, Matcher, Simulator, eventually, produce, publish_posting
from .test_matcher_bookings import apply

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[3]
DECISIONS = ("BookingConfirmed", "BookingWaitlisted", "BookingRejected")


@pytest.fixture(scope="module")
def secret(stack_env: dict[str, str]) -> str:
    return stack_env["PARTNER_WEBHOOK_SECRET"].split(",")[0]


@pytest.fixture
async def pool(stack_env: dict[str, str]) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(stack_env["MATCHER_DATABASE_URL"], schema="matcher", size_max=4)
    yield p
    await p.close()


async def late_application(
    producer: AIOKafkaProducer, posting_id: str, received_at: datetime
) -> str:
    """An application sent in time (`received_at` before the close) whose decision comes
    after the freeze: put straight on matcher.applications.v1, as ingest would have."""
    event = ApplicationReceived(
        posting_id=posting_id,
        application_id="app_" + uuid.uuid4().hex[:20],
        citizen=CitizenProfile(
            partner_user_id="late_" + uuid.uuid4().hex[:12],
            dong="수완동",
            neighbourhood_verified_at=received_at - timedelta(days=10),
            birth_date=date(1990, 1, 1),
            child_safety_check=True,
        ),
        received_at=received_at,
        webhook_id="msg_" + uuid.uuid4().hex,
    )
    await produce(producer, event, received_at)
    return event.application_id


def run_verifier(record: dict[str, object], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "docs" / "verify_draw.py"), *args],
        input=json.dumps(record),
        capture_output=True,
        text=True,
        check=False,
    )


async def test_a_draw_is_committed_at_opening_and_verifiable_after_close(
    matcher_ready: Matcher,
    sim: Simulator,
    producer: AIOKafkaProducer,
    bookings: BookingsWatcher,
    http: httpx.AsyncClient,
    secret: str,
    stack_env: dict[str, str],
) -> None:
    """posting.published carries the commitment, and before the close the admin views show
    it and never the seed; after the close `draw.completed` carries the record: its seed's
    SHA-256 is the commitment published at opening, docs/verify_draw.py and `gwangsan draw
    verify` say "verified", the bookings follow the outcome and DrawCompleted is on the
    topic; an application decided after the draw is refused `applications_closed`."""
    matcher = matcher_ready
    now = await matcher.now()
    close_at = now + timedelta(minutes=30)
    posting = await publish_posting(
        producer, now, capacity=2, selection="draw", applications_close_at=close_at
    )
    pid = posting.posting_id
    [opened] = await sim.wait_for(1, type="posting.published", posting_id=pid)
    commitment = opened["data"]["draw_commitment"]
    assert len(commitment) == 64 and int(commitment, 16) >= 0 and commitment == commitment.lower()
    ids = [await apply(http, matcher, secret, pid) for _ in range(5)]

    async def all_pending() -> bool | None:
        apps = [await matcher.application(a) for a in ids]
        return all(a is not None and a["status"] == "pending" for a in apps) or None

    await eventually(all_pending, what="five pending draw applications")
    before = (await http.get(f"{matcher.url}/v1/admin/draws/{pid}", headers=matcher.headers)).json()
    assert (before["status"], before["commitment"], before["seed"]) == (
        "committed",
        commitment,
        None,
    )
    published = await http.get(
        f"{matcher.url}/v1/admin/postings/{pid}/draw", headers=matcher.headers
    )
    assert published.json()["record"] is None and commitment in published.text
    assert "seed" not in published.json()
    # The partner reads the same view with its own token, before and after the draw.
    partner_headers = {"Authorization": f"Bearer {stack_env['PARTNER_API_TOKEN']}"}
    draw_url = f"{matcher.url}/v1/partner/postings/{pid}/draw"
    as_partner = await http.get(draw_url, headers=partner_headers)
    assert as_partner.status_code == 200 and as_partner.json() == published.json()
    assert (await http.get(draw_url)).status_code == 401

    await matcher.set_clock(close_at + timedelta(seconds=1))
    [done] = await sim.wait_for(1, type="draw.completed", posting_id=pid, timeout_s=30)
    record = done["data"]
    assert hashlib.sha256(bytes.fromhex(record["seed"])).hexdigest() == commitment
    assert sorted(e["id"] for e in record["entries"]) == sorted(ids)
    checked = run_verifier(record, "--commitment", commitment)
    assert (checked.returncode, checked.stdout) == (0, "verified\n"), checked.stdout
    cli = subprocess.run(
        [sys.executable, "-m", "tools.cli", "draw", "verify", pid, "--commitment", commitment],
        cwd=ROOT,
        env={**os.environ, **stack_env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert (cli.returncode, cli.stdout) == (0, "verified\n"), cli.stdout + cli.stderr

    decided = await bookings.wait_for(pid, 5, *DECISIONS, timeout_s=30)
    assert Counter(e.type for e in decided) == {"BookingConfirmed": 2, "BookingWaitlisted": 3}
    confirmed = {e.data["application_id"] for e in decided if e.type == "BookingConfirmed"}
    assert confirmed == set(record["outcome"]["confirmed"])
    waitlisted = sorted(
        (e for e in decided if e.type == "BookingWaitlisted"),
        key=lambda e: e.data["waitlist_position"],
    )
    assert [e.data["application_id"] for e in waitlisted] == record["outcome"]["waitlisted"]
    [event] = await bookings.wait_for(pid, 1, "DrawCompleted", timeout_s=30)
    assert (event.data["seed_hex"], event.data["commitment"]) == (record["seed"], commitment)
    assert len(await sim.wait_for(2, type="booking.confirmed", posting_id=pid)) == 2

    after = (await http.get(f"{matcher.url}/v1/admin/draws/{pid}", headers=matcher.headers)).json()
    assert (after["status"], after["seed"], after["record"]) == ("drawn", record["seed"], record)
    revealed = (await http.get(draw_url, headers=partner_headers)).json()
    assert revealed["record"] == record, "the partner reads the whole record once drawn"
    check = await http.post(f"{matcher.url}/v1/admin/draws/{pid}/verify", headers=matcher.headers)
    assert (check.json()["matches"], check.json()["differences"]) == (True, [])

    late = await late_application(producer, pid, close_at - timedelta(minutes=1))
    refused = await matcher.decided(late)
    assert (refused["status"], refused["reason"]) == ("rejected", "applications_closed")


async def test_a_draw_interrupted_after_its_freeze_finishes_with_the_frozen_outcome_once(
    matcher_ready: Matcher,
    producer: AIOKafkaProducer,
    http: httpx.AsyncClient,
    secret: str,
    pool: asyncpg.Pool,
) -> None:
    """The freeze commits on its own, then the matcher "dies" (nothing more runs). Meanwhile
    an application sent before the close is decided by the running matcher: refused
    `applications_closed`, the list is frozen. Re-running the whole draw use case reuses
    the stored freeze: the outcome is `fair_draw.draw(stored seed, stored list)`, written
    once (one DrawCompleted, one draw.completed); a third run does nothing."""
    matcher = matcher_ready
    now = await matcher.now()
    close_at = now + timedelta(hours=1)  # the running matcher's sweeper leaves it alone
    posting = await publish_posting(
        producer, now, capacity=2, selection="draw", applications_close_at=close_at
    )
    pid = posting.posting_id
    await matcher.posting_open(pid)
    ids = [await apply(http, matcher, secret, pid) for _ in range(4)]

    async def all_pending() -> bool | None:
        apps = [await matcher.application(a) for a in ids]
        return all(a is not None and a["status"] == "pending" for a in apps) or None

    await eventually(all_pending, what="four pending draw applications")
    settings = MatcherSettings()
    deps = Deps(
        policy=settings.policy(),
        now=lambda: close_at + timedelta(seconds=1),
        held_application_wait=timedelta(minutes=10),
        schedule=settings.schedule(),
    )
    async with pool.acquire() as conn, conn.transaction():
        assert await draws.freeze_entries(conn, deps, pid)
    # ... killed here: the freeze is stored, nothing is published.
    async with pool.acquire() as conn:
        freeze = await store.draw_freeze(conn, pid)
        seed = await store.draw_seed(conn, pid)
        published = await conn.fetchval(
            "SELECT count(*) FROM partner_notifications WHERE posting_id = $1"
            " AND type = 'draw.completed'",
            pid,
        )
    assert freeze is not None and seed is not None and published == 0
    assert sorted(e["entry_id"] for e in freeze.entries) == sorted(ids)

    late = await late_application(producer, pid, close_at - timedelta(minutes=1))
    refused = await matcher.decided(late)
    assert (refused["status"], refused["reason"]) == ("rejected", "applications_closed")

    expected = fair_draw.draw(seed.seed, draws.frozen_list(freeze, seed.commitment))
    assert await draws.draw_posting(pool, deps, pid)  # the restart: the whole use case
    assert not await draws.draw_posting(pool, deps, pid)
    async with pool.acquire() as conn:
        again = await store.draw_freeze(conn, pid)
        notes = await conn.fetch(
            "SELECT type, application_id FROM partner_notifications WHERE posting_id = $1"
            " AND type IN ('draw.completed', 'booking.confirmed', 'booking.waitlisted')",
            pid,
        )
        events = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE key = $1 AND event_type = 'DrawCompleted'", pid
        )
    assert again is not None and again.entry_list_hash == freeze.entry_list_hash
    assert again.outcome == {
        "confirmed": list(expected.confirmed),
        "waitlisted": list(expected.waitlisted),
        "not_selected": list(expected.not_selected),
    }
    assert Counter(n["type"] for n in notes) == {
        "draw.completed": 1,
        "booking.confirmed": 2,
        "booking.waitlisted": 2,
    }
    assert {n["application_id"] for n in notes if n["type"] == "booking.confirmed"} == set(
        expected.confirmed
    )
    assert events == 1

"""Sender scale-out (issue 20): a backlog of partner notifications over many ordering keys
delivered to the partner simulator by one sender process, then by two sharing the shards.

Each run gets a schema of its own with the matcher's tables (the stack's matcher never sees
it) and `processes` copies of `bench.sender_worker` (the matcher's `NotificationSender`
with its default settings, and the shard count a deployment that scales the sender out
sets: `NOTIFY_SHARDS` defaults to 1, one process sending). Once every worker holds its share of the
shards, the whole backlog is committed in one transaction, whose NOTIFY wakes them; the
figure is backlog ÷ (last `delivered_at` − commit). Correct when every notification ends
`delivered` at its first attempt.

On a machine with fewer cores than busy processes the ratio says little about separate
machines, so each run also reports the CPU seconds the senders and the simulator used and
how busy the whole machine was (`/proc`): notifications per sender CPU-second is what one
sender with a core of its own delivers, the projection for one sender per machine.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from matcher import store
from matcher.domain.notifications import BookingFacts
from matcher.usecases.notifications import confirmed

from bench.env import Env
from shared import migrations
from shared.shards import SLOTS

MIGRATIONS = Path(store.__file__).parent / "migrations"
# What an operator running two or more senders sets (the default, 1, is one process).
SHARDS = 4
PER_KEY = 5  # notifications per ordering key: each key's are sent one after another


_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds process `pid` used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * _TICK_S


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _sim_pid(env: Env) -> int | None:
    return next((p.pid for name, p in env.procs if name == "partner_sim"), None)


def _backlog(total: int, tag: str) -> list[store.Notification]:
    """`total` booking notifications, `PER_KEY` per application, interleaved by key as
    decisions would write them."""
    at = datetime.now(UTC)
    notes = []
    for n in range(PER_KEY):
        for k in range(total // PER_KEY):
            facts = BookingFacts(
                application_id=f"app_bench_{tag}_{k}",
                posting_id=f"pst_bench_{tag}_{k % 50}",
                citizen_id=f"ctz_bench_{k}",
                citizen_display="김*수",
                partner_user_id=f"usr_bench_{k}",
                booking_id=f"bkg_bench_{tag}_{k}_{n}",
                starts_at=at + timedelta(days=3),
                ends_at=at + timedelta(days=3, hours=2),
                display_name="광산구 벤치마크 시설",
                check_in_code="1234",
            )
            notes.append(confirmed(facts, at).note)
    return notes


async def _run(env: Env, processes: int, total: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    schema = f"bench_sender_{tag}"
    admin = await asyncpg.connect(env.env["DATABASE_URL"])
    procs: list[Any] = []
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        await migrations.apply(admin, schema, MIGRATIONS)
        await admin.execute(f'SET search_path TO "{schema}"')
        job = f"bench-sender-{tag}"
        url = f"http://127.0.0.1:{env.sim_port}/notifications"
        for _ in range(processes):
            procs.append(
                env.spawn(
                    f"sender-{tag}-{len(procs)}",
                    ["-m", "bench.sender_worker", env.env["DATABASE_URL"], schema, url,
                     env.env["PARTNER_NOTIFY_SECRET"], job, str(SHARDS)],
                )
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:  # every worker holds its share of the shards' slots
            rows = await admin.fetch(
                "SELECT pid, count(*) AS n FROM pg_locks WHERE locktype = 'advisory'"
                " AND granted AND objsubid = 2 AND classid = hashtext($1)::oid GROUP BY pid",
                f"{job}:slots",
            )
            if len(rows) == processes and sum(r["n"] for r in rows) == SLOTS:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{processes} senders did not share the shards in 60 s")
            await admin.execute("SELECT pg_sleep(0.1)")
        notes = _backlog(total, tag)
        pids = [p.pid for p in procs]
        sim = _sim_pid(env)
        cpu_before = [_cpu_s(pid) for pid in pids]
        sim_before = _cpu_s(sim) if sim else 0.0
        machine_before = _machine_ticks()
        async with admin.transaction():
            await store.add_notifications(admin, notes)
        committed_at = datetime.now(UTC)
        deadline = time.monotonic() + 600
        while True:
            row = await admin.fetchrow(
                "SELECT count(*) FILTER (WHERE status = 'delivered') AS delivered,"
                " count(*) FILTER (WHERE status = 'delivered' AND attempts = 1) AS first_time,"
                " max(delivered_at) AS last FROM partner_notifications"
            )
            assert row is not None
            if row["delivered"] == len(notes):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{row['delivered']} of {len(notes)} delivered in 600 s")
            await admin.execute("SELECT pg_sleep(0.1)")
        machine_after = _machine_ticks()
        sender_cpu_s = sum(
            _cpu_s(pid) - before for pid, before in zip(pids, cpu_before, strict=True)
        )
        seconds = (row["last"] - committed_at).total_seconds()
        busy = machine_after[0] - machine_before[0]
        return {
            "processes": processes,
            "notifications": len(notes),
            "s": round(seconds, 3),
            "per_s": round(len(notes) / seconds, 1),
            "sender_cpu_s": round(sender_cpu_s, 2),
            "per_sender_cpu_s": round(len(notes) / sender_cpu_s, 1) if sender_cpu_s else None,
            "simulator_cpu_s": round(_cpu_s(sim) - sim_before, 2) if sim else None,
            "machine_busy": round(busy / max(machine_after[1] - machine_before[1], 1), 3),
            "first_attempt": row["first_time"] == len(notes),
        }
    finally:
        for proc in procs:
            env.stop_proc(proc)
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


async def run(env: Env, quick: bool) -> dict[str, Any]:
    total = 4_000 if quick else 20_000
    one = await _run(env, 1, total)
    two = await _run(env, 2, total)
    for label, r in (("1 sender", one), ("2 senders", two)):
        print(
            f"  {label}: {r['per_s']:,.0f} notifications/s ({r['s']} s); sender CPU"
            f" {r['sender_cpu_s']} s ({r['per_sender_cpu_s']} per CPU-s), simulator CPU"
            f" {r['simulator_cpu_s']} s, machine busy {r['machine_busy']:.0%}",
            flush=True,
        )
    ratio = round(two["per_s"] / one["per_s"], 3)
    print(f"  sender scale-out: 2 ÷ 1 = {ratio}", flush=True)
    return {
        "notifications": total,
        "keys": total // PER_KEY,
        "shards": SHARDS,
        "one": one,
        "two": two,
        "sender_ratio": ratio,
        "correct": one["first_attempt"] and two["first_attempt"],
    }

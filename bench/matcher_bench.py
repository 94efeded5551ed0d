"""Benchmarks 1, 2, 3 and 5: webhook ingest, webhook-to-decision latency, the rush, and
the same with two matcher processes."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.census import Census
from bench.env import Env
from bench.stats import percentiles
from shared.kafka import KafkaSecurity

WEBHOOK_PATH = "/v1/partner/webhooks"
GENERATOR_PROCESSES = 2
CONNECTIONS_PER_PROCESS = 32


def _merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    records = [r for res in results for r in res["records"]]
    statuses: dict[str, int] = {}
    for res in results:
        for k, v in res["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    elapsed = max(res["elapsed_s"] for res in results)
    latencies = [r[2] for r in records]
    return {
        "requests": len(records),
        "elapsed_s": round(elapsed, 3),
        "rps": round(len(records) / elapsed, 1) if elapsed else 0.0,
        "statuses": statuses,
        "latency_ms": percentiles([x * 1000 for x in latencies]),
        "records": records,
    }


async def _closed_load(
    env: Env, ports: list[int], *, seconds: float, tag: str, posting_ids: list[str], secret: str
) -> dict[str, Any]:
    per_port = max(1, GENERATOR_PROCESSES // len(ports))
    specs = []
    for port in ports:
        specs.append(
            {
                "mode": "closed",
                "host": "127.0.0.1",
                "port": port,
                "path": WEBHOOK_PATH,
                "posting_ids": posting_ids,
                "secret": secret,
                "verified_at": await env.verified_at(),
                "id_prefix": f"{tag}p{port}",
                "connections": CONNECTIONS_PER_PROCESS,
                "duration_s": seconds,
                "max_requests": int(seconds * 6_000) * per_port,
            }
        )
    # The served process's CPU per request beside the throughput: on a shared host the
    # requests a second move with everything else on the machine, the CPU a request costs
    # the process that serves it much less (the ratio of the two is the matcher's own work).
    census = Census(interval_s=1.0)
    async with census.running():
        results = await asyncio.gather(*(env.run_loadgen(s, per_port) for s in specs))
    merged = _merge([r for group in results for r in group])
    served = sum(merged["statuses"].values())
    group = "ingest baseline" if ports == [env.baseline_port] else "matcher api"
    cpu_s = census.cpu_seconds(group)
    merged["cpu_ms_per_request"] = round(cpu_s * 1000 / served, 4) if served and cpu_s else None
    return merged


async def ingest(env: Env, quick: bool, *, tag: str, ports: list[int]) -> dict[str, Any]:
    """Closed-loop load on the matcher's webhook endpoint(s) and on the baseline."""
    seconds = 5.0 if quick else 15.0
    postings = await env.publish_postings(12, 20, tag)
    secret = env.env["PARTNER_WEBHOOK_SECRET"].split(",")[0].strip()
    base = await _closed_load(
        env, [env.baseline_port], seconds=seconds, tag=f"{tag}b", posting_ids=postings, secret=""
    )
    await env.sim_reset()
    # Split shape: measure the ingest tier alone, as it runs in production (API processes
    # on machines of their own); the decision workers are stopped for the run and then
    # drain the backlog, timed below. All-in-one: the process decides while it ingests.
    workers = await env.stop_workers() if env.split else 0
    matcher = await _closed_load(
        env, ports, seconds=seconds, tag=f"{tag}m", posting_ids=postings, secret=secret
    )
    drain_started = time.monotonic()
    await env.start_workers(workers)
    await env.matcher_idle()
    drain_s = time.monotonic() - drain_started
    await env.stack_idle()  # the next phase starts on a quiet machine
    accepted = matcher["statuses"].get("202", 0)
    ratio = matcher["rps"] / base["rps"] if base["rps"] else 0.0
    out = {
        "seconds": seconds,
        "generator": f"{GENERATOR_PROCESSES} asyncio processes x {CONNECTIONS_PER_PROCESS}"
        " keep-alive connections (closed loop)",
        "matcher_processes": len(ports),
        "decision_workers_during_run": 0 if workers else "in the same process",
        "matcher": {k: v for k, v in matcher.items() if k != "records"},
        "baseline": {k: v for k, v in base.items() if k != "records"},
        "ratio": round(ratio, 3),
        # the baseline's CPU per request ÷ the matcher API's (split shape: the API alone)
        "cpu_ratio": _cpu_ratio(base, matcher),
        "target": ">= 0.60 of baseline requests/s",
        "met": ratio >= 0.60,
        "backlog_drain_s": round(drain_s, 1),
        "backlog_decided_per_s": round(accepted / drain_s, 1) if drain_s else None,
        "correct": set(matcher["statuses"]) == {"202"} and set(base["statuses"]) == {"202"},
    }
    print(
        f"  ingest x{len(ports)}: matcher {matcher['rps']:.0f} req/s"
        f" (p50 {matcher['latency_ms']['p50']} ms, p99 {matcher['latency_ms']['p99']} ms)"
        f" vs baseline {base['rps']:.0f} req/s (p50 {base['latency_ms']['p50']},"
        f" p99 {base['latency_ms']['p99']}) -> {ratio:.0%} (target >= 60%:"
        f" {'met' if out['met'] else 'MISSED'}); CPU a request: matcher"
        f" {matcher['cpu_ms_per_request']} ms, baseline {base['cpu_ms_per_request']} ms"
        f" (ratio {out['cpu_ratio']}); backlog drained in {drain_s:.1f} s;"
        f" statuses {matcher['statuses']}",
        flush=True,
    )
    return out


def _cpu_ratio(base: dict[str, Any], matcher: dict[str, Any]) -> float | None:
    """The baseline's CPU per request ÷ the matcher's: 1.0 would be the matcher's own work
    costing nothing."""
    b, m = base.get("cpu_ms_per_request"), matcher.get("cpu_ms_per_request")
    return round(b / m, 3) if b and m else None


def _loop_stats(
    before: tuple[float, float, float], after: tuple[float, float, float], seconds: float
) -> dict[str, Any]:
    """The decision loop's batches between two `Env.decision_batches` readings."""
    batches, messages, busy_s = (b - a for a, b in zip(before, after, strict=True))
    return {
        "batches": int(batches),
        "mean_batch_size": round(messages / batches, 1) if batches else None,
        "mean_batch_ms": round(busy_s / batches * 1000, 2) if batches else None,
        # Share of the run the decision transactions took (summed over processes).
        "busy_share": round(busy_s / seconds, 3),
    }


def _slowest_stages(
    total: dict[str, float],
    answered: dict[str, float],
    began: dict[str, float],
    committed: dict[str, float],
) -> dict[str, float]:
    """Where the slowest 1 % of applications spent their time (median of each stage):
    the webhook's answer (arrival to 202), from the 202 to the start of the decision's
    transaction (Kafka, the worker's fetch and the batches before), and from there to the
    partner (the batch, its commit, the send) — split at the commit where commit times are
    kept (`decision_to_commit`, `commit_to_partner`)."""
    slowest = sorted(total, key=total.__getitem__)[-max(len(total) // 100, 1) :]
    if not slowest or any(a not in began or a not in answered for a in slowest):
        return {}
    stages = {
        "total": [total[a] for a in slowest],
        "answer": [answered[a] for a in slowest],
        "answer_to_decision": [began[a] - answered[a] for a in slowest],
        "decision_to_partner": [total[a] - began[a] for a in slowest],
    }
    if all(a in committed for a in slowest):
        stages["decision_to_commit"] = [committed[a] - began[a] for a in slowest]
        stages["commit_to_partner"] = [total[a] - committed[a] for a in slowest]
    return {k: round(statistics.median(v), 1) for k, v in stages.items()}


async def _decision_times(env: Env, postings: list[str]) -> list[asyncpg.Record]:
    """Per decided application of `postings`: when its decision's transaction began and
    (None where Postgres does not keep commit timestamps) when it committed."""
    try:
        rows: list[asyncpg.Record] = await env.pool.fetch(
            "SELECT n.application_id, extract(epoch FROM n.created_at)::float8 AS began,"
            "       extract(epoch FROM pg_xact_commit_timestamp(a.xmin))::float8 AS committed"
            " FROM matcher.partner_notifications n"
            " JOIN matcher.applications a USING (application_id)"
            " WHERE n.posting_id = ANY($1) AND n.application_id IS NOT NULL",
            postings,
        )
    except asyncpg.PostgresError:  # track_commit_timestamp is off (a shared stack)
        rows = await env.pool.fetch(
            "SELECT application_id, extract(epoch FROM created_at)::float8 AS began,"
            "       NULL::float8 AS committed FROM matcher.partner_notifications"
            " WHERE posting_id = ANY($1) AND application_id IS NOT NULL",
            postings,
        )
    return rows


async def _decided_latency(
    env: Env, records: list[list[Any]], postings: list[str], timeout_s: float = 300
) -> dict[str, Any]:
    """Wait until every accepted application's decision reached the simulator; the
    latencies from its scheduled arrival to the simulator's receipt."""
    wanted = {r[0]: r[1] for r in records if r[3] == 202}
    answered = {r[0]: r[2] * 1000 for r in records if r[3] == 202}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        delivered = await env.pool.fetchval(
            "SELECT count(*) FROM matcher.partner_notifications"
            " WHERE posting_id = ANY($1) AND application_id IS NOT NULL"
            " AND status = 'delivered'",
            postings,
        )
        if delivered >= len(wanted):
            break
        await asyncio.sleep(0.5)
    # Where the time goes: the decision's transaction began (the notification row's
    # created_at, the database's clock) and committed (the application row's commit
    # timestamp, where Postgres keeps them: the bench's private stack).
    rows = await _decision_times(env, postings)
    began = {
        r["application_id"]: (float(r["began"]) - wanted[r["application_id"]]) * 1000
        for r in rows
        if r["application_id"] in wanted
    }
    committed = {
        r["application_id"]: (float(r["committed"]) - wanted[r["application_id"]]) * 1000
        for r in rows
        if r["application_id"] in wanted and r["committed"] is not None
    }
    to_commit = list((committed or began).values())
    by_app: dict[str, float] = {}
    latencies = []
    start = min(wanted.values(), default=0.0)
    by_second: dict[int, list[float]] = {}
    for posting_id in postings:
        for item in await env.sim_notifications(posting_id=posting_id):
            app = item["data"].get("application_id")
            if app in wanted and item["type"].startswith("booking."):
                scheduled = wanted.pop(app)
                ms = (item["received_at"] - scheduled) * 1000
                latencies.append(ms)
                by_app[app] = ms
                by_second.setdefault(int(scheduled - start), []).append(ms)
    return {
        "decided": len(latencies),
        "missing": len(wanted),
        "latency_ms": percentiles(latencies),
        "to_decision_commit_ms": percentiles(to_commit),
        # The commit's own time, or (without commit timestamps) its transaction's start.
        "decision_commit_from": "commit timestamps" if committed else "transaction start",
        "slowest_stages_ms": _slowest_stages(by_app, answered, began, committed),
        # The tail over time: is it steady, or spikes at moments (a periodic job, GC)?
        "p99_by_second_ms": [percentiles(by_second[s]).get("p99") for s in sorted(by_second)],
        "start": start,
        "seconds": sorted(by_second),
    }


# The brief's arrival rate for the latency run (`--rate` changes it for comparisons).
LATENCY_RATE = 500.0

# The latency run's warm-up. 10 s was enough for our processes but not for Kafka's JVM: its
# JIT compiler threads still took 19–31 % of a core in the first 20 s of the measured run
# (8–13 % over the minute), and three alternated pairs had a p99 of 58 / 132 / 197 ms
# against 53 / 82 / 94 ms with 40 s (the compiler 3–6 % over the minute).
WARM_UP_S = 40.0


async def latency(
    env: Env,
    quick: bool,
    *,
    tag: str,
    ports: list[int],
    rate: float = LATENCY_RATE,
    seconds: float | None = None,
    warm_up_s: float = WARM_UP_S,
) -> dict[str, Any]:
    """Open-loop 500 applications/s; webhook arrival -> the simulator has the decision.

    Measured in steady state, as a service in use runs: first the same load for
    `warm_up_s` on postings of its own (connections, prepared statements and caches warm
    up; tables hold rows; Kafka's JIT compiles its hot paths), then `ANALYZE` (a database
    in service has current statistics; a fresh one plans its first queries for empty
    tables), then the measured run."""
    seconds = seconds or (10.0 if quick else 60.0)
    secret = env.env["PARTNER_WEBHOOK_SECRET"].split(",")[0].strip()
    per_port = max(1, GENERATOR_PROCESSES // len(ports))

    async def specs(postings: list[str], prefix: str, duration_s: float) -> list[dict[str, Any]]:
        return [
            {
                "mode": "open",
                "host": "127.0.0.1",
                "port": port,
                "path": WEBHOOK_PATH,
                "posting_ids": postings,
                "secret": secret,
                "verified_at": await env.verified_at(),
                "id_prefix": f"{prefix}p{port}",
                "rate": rate / len(ports),
                "duration_s": duration_s,
            }
            for port in ports
        ]

    warm_up = await env.publish_postings(24, 20, f"{tag}w")
    warm_up_s = 3.0 if quick else warm_up_s
    await asyncio.gather(
        *(env.run_loadgen(s, per_port) for s in await specs(warm_up, f"{tag}w", warm_up_s))
    )
    await env.stack_idle()
    await env.pool.execute("VACUUM ANALYZE")
    postings = await env.publish_postings(24, 20, tag)
    await env.sim_reset()
    measured = await specs(postings, tag, seconds)
    batches_before = await env.decision_batches()
    counting = await env.statements_reset()
    # Beside the load: a CPU census and a raw Kafka round trip at a low rate, to name what
    # happened in any second whose p99 is over the floor.
    census = Census()
    probe_ready = asyncio.Event()
    async with census.running():
        probe = asyncio.create_task(
            _roundtrip_samples(
                env,
                rate=PROBE_RATE,
                seconds=seconds + 1,
                topic="bench.probe",
                ready=probe_ready,
                # The broker answers a fetch as soon as a message is there; a short wait
                # would only poll an idle topic hundreds of times a second.
                fetch_max_wait_ms=500,
            )
        )
        await asyncio.wait_for(probe_ready.wait(), timeout=60)
        groups = await asyncio.gather(*(env.run_loadgen(s, per_port) for s in measured))
        probe_samples = await probe
    statements = await env.statements_since_reset() if counting else None
    results = [r for g in groups for r in g]
    sent = _merge(results)
    errors = sum(sum(r.get("errors", {}).values()) for r in results)
    decided = await _decided_latency(env, sent["records"], postings)
    slow = await _slow_seconds(env, decided, postings, census, probe_samples)
    loop = _loop_stats(batches_before, await env.decision_batches(), seconds)
    lat = decided["latency_ms"]
    out = {
        "rate_per_s": rate,
        "seconds": seconds,
        "warm_up_s": warm_up_s,
        "matcher_processes": len(ports),
        "sent": sent["requests"],
        "achieved_rate_per_s": round(sent["requests"] / seconds, 1),
        "http_statuses": sent["statuses"],
        "http_errors": errors,
        "webhook_answer_ms": sent["latency_ms"],
        "decided": decided["decided"],
        "missing": decided["missing"],
        "webhook_to_partner_ms": lat,
        "webhook_to_decision_commit_ms": decided["to_decision_commit_ms"],
        "slowest_1pct_stages_ms": decided["slowest_stages_ms"],
        "p99_by_second_ms": decided["p99_by_second_ms"],
        "kafka_probe_ms": percentiles([ms for _, ms in probe_samples]),
        "seconds_over_floor": slow,
        "decision_loop": loop,
        # Where Postgres spent its time in the measured run (pg_stat_statements; None
        # when the stack does not load it).
        "postgres_statements": statements,
        "target": "p99 < 50 ms",
        "met": lat.get("p99", float("inf")) < 50,
        # Every webhook answered 202 and every decision at the partner.
        "correct": decided["missing"] == 0 and errors == 0 and set(sent["statuses"]) == {"202"},
    }
    print(
        f"  latency x{len(ports)} @ {rate:.0f}/s for {seconds:.0f} s: webhook -> partner"
        f" p50 {lat.get('p50')} ms, p99 {lat.get('p99')} ms, max {lat.get('max')} ms"
        f" (target p99 < 50 ms: {'met' if out['met'] else 'MISSED'}); to the decision's"
        f" commit p50 {decided['to_decision_commit_ms'].get('p50')} ms,"
        f" p99 {decided['to_decision_commit_ms'].get('p99')} ms; the slowest 1 %:"
        f" {decided['slowest_stages_ms']}; {decided['decided']}"
        f" decided, {decided['missing']} missing, {errors} HTTP errors; decision loop:"
        f" {loop['batches']} batches, {loop['mean_batch_size']} applications and"
        f" {loop['mean_batch_ms']} ms each, busy {loop['busy_share']:.0%} of the run",
        flush=True,
    )
    print(
        f"    seconds over {FLOOR_P99_MS:.0f} ms: {len(slow['seconds'])} of {slow['of']}"
        f" {slow['by_kind']}",
        flush=True,
    )
    if len(slow["seconds"]) <= SLOW_SECONDS_PRINTED:
        for second in slow["seconds"]:
            print(
                f"    second {second['second']}: p99 {second['p99_ms']} ms — {second['reading']}",
                flush=True,
            )
    await env.stack_idle()
    return out


# The raw Kafka round trip measured beside the latency run (messages a second: enough to
# see a stall in any second, too few to load the machine).
PROBE_RATE = 20.0
# A raw round trip is 1–4 ms on this machine: one this slow means Kafka or the machine
# stalled, whatever our pipeline did.
PROBE_STALL_MS = 20.0
FLOOR_P99_MS = 50.0
# Slow seconds explained one by one on the console (all are in the results).
SLOW_SECONDS_PRINTED = 15
# A process group this many points of a core over its typical second is named as busier.
BUSIER_POINTS = 15.0
# Some task waiting this many ms of a second for the disk (PSI io "some") names the second
# a disk stall: with fsync off nothing on the path waits for the disk unless the kernel
# holds writers up (ext4's journal commit, dirty-page throttling).
DISK_WAIT_MS = 20.0


async def _slow_seconds(
    env: Env,
    decided: dict[str, Any],
    postings: list[str],
    census: Census,
    probe: list[tuple[float, float]],
) -> dict[str, Any]:
    """Every second of the run whose p99 is over the floor, with what the machine, the
    raw Kafka probe and the decision loop did in it (the applications scheduled in that
    second, and up to 0.25 s after it, when their decisions were still being made) beside
    the run's typical second (the median over all seconds), and a reading of which
    figure explains it."""
    start: float = decided["start"]
    batches = await _decision_batches(env, postings)
    every: dict[int, dict[str, Any]] = {}
    for second in decided["seconds"]:
        t0, t1 = start + second, start + second + 1.25
        probe_max = max((ms for at, ms in probe if t0 <= at < t1), default=None)
        in_window = [n for at, n in batches if t0 <= at < t1]
        every[second] = {
            "second": second,
            "kafka_probe_max_ms": round(probe_max, 1) if probe_max is not None else None,
            "batches": len(in_window),
            "largest_batch": max(in_window, default=0),
            "cpu": census.window(t0, t1),
        }
    typical = _typical(list(every.values()))
    typical["p99_ms"] = _median([p for p in decided["p99_by_second_ms"] if p is not None])
    slow: list[dict[str, Any]] = []
    for second, p99 in zip(decided["seconds"], decided["p99_by_second_ms"], strict=True):
        if p99 is None or p99 <= FLOOR_P99_MS:
            continue
        entry = {"p99_ms": p99, **every[second]}
        entry["kind"], entry["reading"] = _reading(entry, typical)
        slow.append(entry)
    kinds: dict[str, int] = {}
    for entry in slow:
        kinds[entry["kind"]] = kinds.get(entry["kind"], 0) + 1
    return {"of": len(every), "by_kind": kinds, "typical_second": typical, "seconds": slow}


async def _decision_batches(env: Env, postings: list[str]) -> list[tuple[float, int]]:
    """The decision batches that decided these postings' applications, in order: when each
    began (its `decided_at`, wall clock) and how many it decided."""
    rows = await env.pool.fetch(
        "SELECT extract(epoch FROM decided_at)::float8 AS at, count(*) AS n"
        " FROM matcher.applications WHERE posting_id = ANY($1) GROUP BY decided_at"
        " ORDER BY decided_at",
        postings,
    )
    return [(float(r["at"]), int(r["n"])) for r in rows]


def _typical(seconds: list[dict[str, Any]]) -> dict[str, Any]:
    """The median second: machine busy, each group's share, the largest batch."""
    cpus = [s["cpu"] for s in seconds if s["cpu"] is not None]
    groups = {g for c in cpus for g in c["by_group_pct"]}
    return {
        "machine_busy_pct": _median([c["machine_busy_pct"] for c in cpus]),
        "steal_pct": _median([c["steal_pct"] for c in cpus]),
        "io_wait_ms_per_s": _median([c["io_wait_ms_per_s"] or 0.0 for c in cpus]),
        "cpu_wait_ms_per_s": _median([c["cpu_wait_ms_per_s"] or 0.0 for c in cpus]),
        "by_group_pct": {
            g: _median([c["by_group_pct"].get(g, 0.0) for c in cpus]) for g in sorted(groups)
        },
        "largest_batch": _median([s["largest_batch"] for s in seconds]),
        "kafka_probe_max_ms": _median(
            [s["kafka_probe_max_ms"] for s in seconds if s["kafka_probe_max_ms"] is not None]
        ),
    }


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 1) if values else 0.0


def _reading(entry: dict[str, Any], typical: dict[str, Any]) -> tuple[str, str]:
    """Which figure explains a slow second, against the run's typical second (first match
    wins): its kind and a sentence."""
    probe = entry["kafka_probe_max_ms"]
    cpu = entry["cpu"]
    io_wait = (cpu or {}).get("io_wait_ms_per_s") or 0.0
    if io_wait >= max(DISK_WAIT_MS, 2 * typical.get("io_wait_ms_per_s", 0.0)):
        return "disk", (
            f"the disk held writers up: some task waited {io_wait:.0f} ms of the second for"
            f" it (typically {typical.get('io_wait_ms_per_s', 0.0):.0f} ms)"
        )
    # A saturated second is read as such before a slow raw round trip: the probe runs on
    # the same cores, so on a host too slow for the rate it is late every second, and
    # "stall" would name a queue for the CPU as Kafka's (the 22:00 run's 40 "stalls").
    if cpu is not None and cpu["steal_pct"] >= typical["steal_pct"] + 10:
        return (
            "host",
            f"CPU taken by the host: steal {cpu['steal_pct']} % (typically {typical['steal_pct']} %)",
        )
    if cpu is not None and cpu["machine_busy_pct"] >= 0.95 * cpu["of_pct"]:
        return (
            "saturated",
            f"the machine saturated: {cpu['machine_busy_pct']:.0f} of {cpu['of_pct']} % busy",
        )
    if probe is not None and probe >= PROBE_STALL_MS:
        return "stall", (
            f"Kafka or the machine stalled: the raw round trip beside the run took {probe} ms"
            f" (typically {typical['kafka_probe_max_ms']} ms at most in a second)"
        )
    if cpu is None:
        return "unknown", "no census (not Linux)"
    busier = [
        f"{g} {pct:.0f} % (typically {typical['by_group_pct'].get(g, 0.0):.0f} %)"
        for g, pct in cpu["by_group_pct"].items()
        if pct >= typical["by_group_pct"].get(g, 0.0) + BUSIER_POINTS
    ]
    if busier:
        return "busier", "busier than usual: " + ", ".join(busier)
    if entry["largest_batch"] >= 2 * max(typical["largest_batch"], 1):
        return "batch", (
            f"a decision batch of {entry['largest_batch']} applications (typically at most"
            f" {typical['largest_batch']:.0f} in a second): the loop fell behind for a moment"
        )
    if typical.get("p99_ms", 0.0) > FLOOR_P99_MS:
        return "ordinary", (
            f"like most seconds of this run (their median p99 {typical['p99_ms']:.0f} ms):"
            f" the machine {cpu['machine_busy_pct']:.0f} % busy (typically"
            f" {typical['machine_busy_pct']:.0f} % all run), nothing else out of the ordinary"
        )
    return "ordinary", (
        f"nothing out of the ordinary: the machine {cpu['machine_busy_pct']:.0f} %"
        f" (typically {typical['machine_busy_pct']:.0f} %), the largest batch"
        f" {entry['largest_batch']} (typically {typical['largest_batch']:.0f}) — the queue's"
        " own tail at this utilisation"
    )


async def _roundtrip_samples(
    env: Env,
    *,
    rate: float,
    seconds: float,
    topic: str,
    ready: asyncio.Event | None = None,
    fetch_max_wait_ms: int = 5,
) -> list[tuple[float, float]]:
    """Raw produce -> consume round trips at `rate` (acks=all, idempotent producer, like
    the services) on a topic of its own: (wall-clock time sent, milliseconds) each. `ready`
    is set once the consumer is at the end of the topic and sending starts."""
    bootstrap = env.env["KAFKA_BOOTSTRAP_SERVERS"]
    security = KafkaSecurity.from_env(env.env).client_kwargs()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security)
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            await admin.create_topics([NewTopic(topic, 6, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **security
    )
    consumer = AIOKafkaConsumer(
        topic,
        **security,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="latest",
        fetch_max_wait_ms=fetch_max_wait_ms,
    )
    await producer.start()
    await consumer.start()
    samples: list[tuple[float, float]] = []
    # perf_counter for the round trip, the wall clock to place it in the run.
    wall_minus_perf = time.time() - time.perf_counter()
    try:
        await consumer.seek_to_end()
        total = int(rate * seconds)

        async def consume() -> None:
            while len(samples) < total:
                batch = await consumer.getmany(timeout_ms=200)
                now = time.perf_counter()
                for msgs in batch.values():
                    for m in msgs:
                        due = float(m.value or b"0")
                        samples.append((due + wall_minus_perf, (now - due) * 1000))

        reader = asyncio.create_task(consume())
        await asyncio.sleep(0.5)
        if ready is not None:
            ready.set()
        started = time.perf_counter()
        for i in range(total):
            due = started + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await producer.send(topic, repr(due).encode(), key=str(i % 24).encode())
        await asyncio.wait_for(reader, timeout=30)
    finally:
        await producer.stop()
        await consumer.stop()
    return samples


async def kafka_roundtrip(
    env: Env, quick: bool, *, rate: float = LATENCY_RATE, seconds: float | None = None
) -> dict[str, Any]:
    """A raw produce -> consume round trip at the same rate (acks=all, idempotent producer,
    like the services), on a topic of its own."""
    seconds = seconds or (10.0 if quick else 60.0)
    samples = await _roundtrip_samples(env, rate=rate, seconds=seconds, topic="bench.roundtrip")
    lat = percentiles([ms for _, ms in samples])
    print(
        f"  kafka produce->consume @ {rate:.0f}/s: p50 {lat.get('p50')} ms,"
        f" p99 {lat.get('p99')} ms, max {lat.get('max')} ms",
        flush=True,
    )
    return {"rate_per_s": rate, "seconds": seconds, "messages": len(samples), "ms": lat}


# How often the rush asks the simulator whether every answer arrived (an HTTP request each,
# in the bench and the simulator, beside the run).
RUSH_POLL_S = 0.1
CAPACITY_P99_MS = 100.0
CAPACITY_WARM_UP_S = 10.0


def next_capacity_rate(rate: float, held: bool, quick: bool) -> float | None:
    """The step test's next rate after a step at `rate`, or None when it is done: from
    500/s it doubles while the steps hold; when 500/s does not hold it halves until one
    does (down to 62.5/s)."""
    if held and rate >= 500.0:
        return rate * 2 if rate * 2 <= (2_000.0 if quick else 8_000.0) else None
    if not held and rate <= 500.0:
        return rate / 2 if rate / 2 >= 62.5 else None
    return None


async def capacity(env: Env, quick: bool, *, ports: list[int]) -> dict[str, Any]:
    """A step test: the latency benchmark at 500, 1,000, 2,000, 4,000 … applications/s
    until its p99 reaches 100 ms (or an application is lost or refused); the highest rate
    that stayed under is the capacity. On a host that cannot hold 500/s it steps down
    instead (250, 125, … /s, `next_capacity_rate`) to the first rate that holds, so a slow
    host still gets a figure. The raw Kafka round trip is measured at each rate beside
    it, so the pipeline's own share shows."""
    seconds = 5.0 if quick else 15.0
    steps: list[dict[str, Any]] = []
    sustained: float | None = None
    rate: float | None = 500.0
    while rate is not None:
        run = await latency(
            env,
            quick,
            tag=f"c{int(rate)}",
            ports=ports,
            rate=rate,
            seconds=seconds,
            # Run after the latency runs and the rush: Kafka's JIT has long compiled.
            warm_up_s=CAPACITY_WARM_UP_S,
        )
        kafka = await kafka_roundtrip(env, quick, rate=rate, seconds=seconds)
        p99 = run["webhook_to_partner_ms"].get("p99", float("inf"))
        held = run["correct"] and p99 < CAPACITY_P99_MS
        steps.append(
            {
                "rate_per_s": rate,
                "achieved_rate_per_s": run["achieved_rate_per_s"],
                "webhook_to_partner_ms": run["webhook_to_partner_ms"],
                "kafka_roundtrip_ms": kafka["ms"],
                "decision_loop": run["decision_loop"],
                "missing": run["missing"],
                "http_statuses": run["http_statuses"],
                "held": held,
            }
        )
        if held:  # the last rate that held is the highest: up while they hold, down until one does
            sustained = rate
        rate = next_capacity_rate(rate, held, quick)
    shown = ", ".join(
        f"{step['rate_per_s']:.0f}/s p99 {step['webhook_to_partner_ms'].get('p99')} ms"
        for step in steps
    )
    print(
        f"  capacity: p99 < {CAPACITY_P99_MS:.0f} ms sustained up to {sustained}"
        f" applications/s (steps: {shown})",
        flush=True,
    )
    return {
        "p99_limit_ms": CAPACITY_P99_MS,
        "seconds_per_step": seconds,
        "sustained_rate_per_s": sustained,
        "steps": steps,
        # Past the capacity the answers are late, never lost: every accepted application
        # of every step reached the partner.
        "correct": all(step["missing"] == 0 for step in steps),
    }


async def rush(env: Env, quick: bool) -> dict[str, Any]:
    """N applications for one 20-seat first-come posting as fast as the generator sends."""
    n = 1_000 if quick else 5_000
    seats = 20
    (posting_id,) = await env.publish_postings(1, seats, "rush")
    secret = env.env["PARTNER_WEBHOOK_SECRET"].split(",")[0].strip()
    await env.sim_reset()
    spec = {
        "mode": "closed",
        "host": "127.0.0.1",
        "port": int(env.env["MATCHER_URL"].rsplit(":", 1)[1]),
        "path": WEBHOOK_PATH,
        "posting_ids": [posting_id],
        "secret": secret,
        "verified_at": await env.verified_at(),
        "id_prefix": "rush",
        "connections": CONNECTIONS_PER_PROCESS,
        "duration_s": 60,
        "max_requests": n,
    }
    batches_before = await env.decision_batches()
    counting = await env.statements_reset()
    # Where the machine's CPU went during the rush: the latency run's census.
    census = Census()
    async with census.running():
        load = asyncio.create_task(env.run_loadgen(spec, GENERATOR_PROCESSES))
        give_up_at = time.time() + 180
        # Wait for the partner simulator to have every answer, asking it (a counter in
        # memory) rather than Postgres: a count over the posting's rows every 20 ms took
        # ~17 % of a core of Postgres through a rush, from the system it measures.
        while True:
            now = time.time()
            if await env.sim_count(posting_id=posting_id, type_prefix="booking.") >= n:
                break
            if load.done() and load.exception() is not None:
                raise RuntimeError("the rush's load generator failed") from load.exception()
            if now > give_up_at:
                break
            # The figures come from the simulator's receipts and the commit timestamps,
            # not from this loop: it only has to notice the end.
            await asyncio.sleep(RUSH_POLL_S)
    statements = await env.statements_since_reset() if counting else None
    sent = _merge(await load)
    first_sent = min(r[1] for r in sent["records"])
    loop = _loop_stats(batches_before, await env.decision_batches(), now - first_sent)
    last_sent = max(r[1] for r in sent["records"])
    items = [
        i
        for i in await env.sim_notifications(posting_id=posting_id)
        if i["type"].startswith("booking.")
    ]
    by_type: dict[str, int] = {}
    for i in items:
        by_type[i["type"]] = by_type.get(i["type"], 0) + 1
    confirmed_db = await env.pool.fetchval(
        "SELECT count(*) FROM matcher.applications WHERE posting_id = $1 AND status = 'confirmed'",
        posting_id,
    )
    last_received = max((i["received_at"] for i in items), default=float("nan"))
    # When each decision batch began (its `decided_at`) and how many it decided: where the
    # rush's time goes, against the sends.
    batches_at = [
        [round(at - first_sent, 3), n] for at, n in await _decision_batches(env, [posting_id])
    ]
    # Webhooks sent and notifications received per 100 ms: whether the partner waits on
    # the decisions or on the sender, and when.
    tenths = int((max(last_received, last_sent) - first_sent) * 10) + 1
    per_100ms = [[0, 0] for _ in range(tenths)]
    for r in sent["records"]:
        per_100ms[int((r[1] - first_sent) * 10)][0] += 1
    for i in items:
        per_100ms[int((i["received_at"] - first_sent) * 10)][1] += 1
    # The last webhook's 202 (sent + its round trip): from then on the partner waits on us.
    last_answered = max(r[1] + r[2] for r in sent["records"])
    # All decided: the last decision's commit, where Postgres keeps commit timestamps.
    commits = [r["committed"] for r in await _decision_times(env, [posting_id])]
    decided_at: float | None = None
    decided_from = "unknown"
    if commits and None not in commits:
        decided_at, decided_from = max(commits), "commit timestamps"
    elif batches_at:
        decided_at, decided_from = first_sent + batches_at[-1][0], "the last batch's start"
    decided_s = (decided_at - first_sent) if decided_at else None
    notified_s = last_received - first_sent
    correct = (
        sent["statuses"] == {"202": n}
        and confirmed_db == seats
        and by_type.get("booking.confirmed") == seats
        and len(items) == n
    )
    out = {
        "applications": n,
        "seats": seats,
        "send_s": round(last_sent - first_sent, 3),
        "decided_s": round(decided_s, 3) if decided_s is not None else None,
        "decided_from": decided_from,
        "notified_s": round(notified_s, 3),
        "notified_after_last_202_ms": round((last_received - last_answered) * 1000, 1),
        "confirmed": confirmed_db,
        "partner_received": by_type,
        "decision_loop": loop,
        "batches_at_s": batches_at,
        "sent_notified_per_100ms": per_100ms,
        # Percent of one core (the machine's busy of cores × 100; bench/census.py) from the
        # first send to the last notification, and from the last 202 on.
        "cpu": census.window(first_sent, last_received),
        "cpu_after_last_202": census.window(last_answered, last_received),
        "postgres_statements": statements,
        "target": (
            "every application answered (notified) < 2 s (aim 1.5 s, and within 250 ms of"
            " the last 202); exactly 20 confirmed"
        ),
        "met": notified_s < 2.0,
        "correct": correct,
    }
    print(
        f"  rush: {n} applications sent in {out['send_s']} s; all decided after"
        f" {out['decided_s']} s, all notified after {out['notified_s']} s,"
        f" {out['notified_after_last_202_ms']} ms after the last 202 (target < 2 s:"
        f" {'met' if out['met'] else 'MISSED'}); confirmed {confirmed_db} (exactly {seats}:"
        f" {'ok' if correct else 'FAILED'}); partner got {by_type}; decision loop:"
        f" {loop['batches']} batches of {loop['mean_batch_size']} in"
        f" {loop['mean_batch_ms']} ms each",
        flush=True,
    )
    await env.stack_idle()
    return out


async def start_second_matcher(env: Env) -> list[Any]:
    """A second matcher: one more `all` process, or — when the matcher runs split — one
    more API process and one more decision worker."""
    if env.split:
        procs = [
            await env.start_matcher("api", env.matcher2_port),
            await env.start_matcher("worker", env.worker_ports[1]),
        ]
    else:
        procs = [await env.start_matcher("all", env.matcher2_port)]
    # Let both consumer groups rebalance onto the two processes before measuring.
    await asyncio.sleep(8)
    return procs

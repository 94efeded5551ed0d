"""What the benchmarks run against: the local stack (started if it is not running), the
partner simulator, the baseline server and a second matcher — each started here is stopped
here, by its own pid."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from shared.events import PostingPublished
from shared.kafka import KafkaSecurity
from shared.stackenv import load_stack_env

ROOT = Path(__file__).resolve().parents[1]
SIM_PORT = 8009
BASELINE_PORT = 8019
MATCHER2_PORT = 8012
WORKER_PORT = 8013
# `--private`: a stack of the bench's own (own run dir, every port + 10000), so nobody
# else's tests (which may kill services at random) disturb the measurement, and nothing the
# bench does disturbs them.
PRIVATE_OFFSET = 10_000
# Postgres's busiest statements kept in a phase's results, and how much of each one's text.
STATEMENTS_KEPT = 12
STATEMENT_TEXT_KEPT = 200
PRIVATE_RUN_DIR = Path(tempfile.gettempdir()) / "gwangsan-bench-stack"


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


STACK_PORTS = {
    "kafka": 9092,
    "postgres": 55432,
    "registry": 8001,
    "matcher": 8002,
    "allowance": 8003,
}


def _down_parts(offset: int = 0) -> list[str]:
    return [name for name, port in STACK_PORTS.items() if not port_open(port + offset)]


class Env:
    def __init__(self, *, private: bool = False) -> None:
        self.offset = PRIVATE_OFFSET if private else 0
        self.run_dir: Path | None = PRIVATE_RUN_DIR if private else None
        self.stack_environ: dict[str, str] | None = None
        if private:
            o = self.offset
            self.stack_environ = {
                **os.environ,
                "APP_ENV": "demo",
                "KAFKA_PORT": str(9092 + o),
                "KAFKA_CONTROLLER_PORT": str(9093 + o),
                "POSTGRES_PORT": str(55432 + o),
                "REGISTRY_PORT": str(8001 + o),
                "MATCHER_PORT": str(8002 + o),
                "ALLOWANCE_PORT": str(8003 + o),
                "PARTNER_NOTIFY_URL": f"http://127.0.0.1:{SIM_PORT + o}/notifications",
                # The production shape (decision 0008): the stack's matcher serves the API
                # only; the bench starts its decision worker beside it.
                "MATCHER_ROLE": "api",
                # Where Postgres spends its time, per statement (`statements_since_reset`).
                "POSTGRES_STAT_STATEMENTS": "1",
            }
        self.run_token = uuid.uuid4().hex[:8]
        self.sim_port = SIM_PORT + self.offset
        self.baseline_port = BASELINE_PORT + self.offset
        self.matcher2_port = MATCHER2_PORT + self.offset
        self.worker_ports = [WORKER_PORT + self.offset, WORKER_PORT + 1 + self.offset]
        self.workers: list[subprocess.Popen[bytes]] = []
        # The matcher runs as an API process plus decision workers (decision 0008).
        self.split = False
        # Matcher processes the bench started that decide (role worker or all): base URL.
        self.deciders: dict[subprocess.Popen[bytes], str] = {}
        self.env: dict[str, str] = {}
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.started_parts: list[str] = []
        self.sim_owned = False
        self.tmp = Path(tempfile.mkdtemp(prefix="gwangsan-bench-"))
        self.http: httpx.AsyncClient
        self.pool: asyncpg.Pool
        self.producer: AIOKafkaProducer

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        try:
            env = load_stack_env(self.run_dir)
        except FileNotFoundError:
            env = {}
        down = _down_parts(self.offset)
        private = self.run_dir is not None
        if not env or down or private:
            import devstack as stack

            print(f"bench: starting the local stack (devstack.up; down: {down})", flush=True)
            os.environ.setdefault("APP_ENV", "demo")
            if private:
                # The private stack is the bench's alone and starts empty and new, whatever
                # an interrupted run left of it: a run's figures must not depend on how many
                # runs came before it (tables of a million rows plan and cache differently
                # from tables of a hundred thousand), nor measure processes started from
                # older code (an interrupted run once left its services running for hours,
                # and the next runs reused them).
                await asyncio.to_thread(
                    stack.down, self.run_dir, wipe=True, environ=self.stack_environ
                )
            await asyncio.to_thread(stack.up, self.run_dir, environ=self.stack_environ)
            # Stop at the end only what was down here; a shared stack stays for the others.
            self.started_parts = down if env and not private else list(STACK_PORTS)
            env = load_stack_env(self.run_dir)
        self.env = env
        if env.get("APP_ENV") not in ("test", "demo"):
            raise RuntimeError("the bench needs APP_ENV=test or demo (a controllable clock)")
        self.http = httpx.AsyncClient(timeout=30)
        self.pool = await asyncpg.create_pool(env["DATABASE_URL"], min_size=1, max_size=4)
        self.producer = AIOKafkaProducer(
            bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
            acks="all",
            enable_idempotence=True,
            **KafkaSecurity.from_env(env).client_kwargs(),
        )
        await self.producer.start()
        health = (await self.http.get(self.env["MATCHER_URL"] + "/healthz")).json()
        self.split = health.get("role") == "api"
        if self.split:
            await self.start_matcher("worker", self.worker_ports[0])
        if not port_open(self.sim_port):
            self.spawn("partner_sim", ["-m", "tools.partner_sim", "--port", str(self.sim_port)])
            self.sim_owned = True
            await self.wait_http(f"http://127.0.0.1:{self.sim_port}/healthz")

    async def stop(self, *, keep_files: bool = False) -> None:
        """Stop what the bench started. Its scratch dir (process logs, the generators'
        specs and outputs: ~50 MB a full run) is deleted unless `keep_files` (a failed
        check), so runs do not pile up in the temp dir."""
        for name, proc in reversed(self.procs):
            self._terminate(name, proc)
        self.procs.clear()
        if keep_files:
            print(f"bench: logs and load generator files kept in {self.tmp}", flush=True)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        await self.producer.stop()
        await self.pool.close()
        await self.http.aclose()
        if set(self.started_parts) == set(STACK_PORTS):
            import devstack as stack

            print("bench: stopping the stack it started", flush=True)
            await asyncio.to_thread(stack.down, self.run_dir, environ=self.stack_environ)
        elif self.started_parts:
            # Part of a stack others are using: left running (they may be relying on it).
            print(f"bench: leaving {self.started_parts} running (the stack is shared)")

    async def ensure_up(self) -> None:
        """Others share this stack and may restart its services: bring back what is down
        (idempotent `devstack.up`) and wait until the matcher is ready."""
        if _down_parts(self.offset):
            import devstack as stack

            print(f"bench: {_down_parts(self.offset)} down; devstack.up", flush=True)
            await asyncio.to_thread(stack.up, self.run_dir, environ=self.stack_environ)
        await self.wait_http(self.env["MATCHER_URL"] + "/readyz")

    async def start_matcher(self, role: str, port: int) -> subprocess.Popen[bytes]:
        """One more matcher process of `role` on `port` (it joins the same consumer groups)."""
        proc = self.spawn(
            f"matcher-{role}-{port}",
            ["-m", "matcher"],
            {
                "DATABASE_URL": self.env["MATCHER_DATABASE_URL"],
                "PORT": str(port),
                "SERVICE_NAME": "matcher",
                "ROLE": role,
                "APP_ENV": self.env.get("APP_ENV", "demo"),
                # As the matcher's own Kafka user, like the launcher starts it (not admin).
                "KAFKA_SASL_USERNAME": "matcher",
                "KAFKA_SASL_PASSWORD": self.env.get("MATCHER_KAFKA_PASSWORD", ""),
            },
        )
        if role == "worker":
            self.workers.append(proc)
        if role != "api":
            self.deciders[proc] = f"http://127.0.0.1:{port}"
        await self.wait_http(f"http://127.0.0.1:{port}/readyz")
        return proc

    async def statements_reset(self) -> bool:
        """Start counting Postgres's statements afresh (`pg_stat_statements`, loaded on the
        private stack); False where the module is not loaded (a shared stack)."""
        try:
            await self.pool.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await self.pool.execute("SELECT pg_stat_statements_reset()")
        except asyncpg.PostgresError:
            return False
        return True

    async def statements_since_reset(self, limit: int = STATEMENTS_KEPT) -> list[dict[str, Any]]:
        """The statements Postgres spent the most time executing since `statements_reset`,
        each with its calls, total and mean milliseconds, share of all statements' time and
        rows, and its text (normalised by Postgres: parameters as $n; whitespace folded)."""
        rows = await self.pool.fetch(
            "SELECT calls, total_exec_time, mean_exec_time, rows, query,"
            "       total_exec_time / nullif(sum(total_exec_time) OVER (), 0) AS share"
            " FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT $1",
            limit,
        )
        return [
            {
                "calls": r["calls"],
                "total_ms": round(r["total_exec_time"], 1),
                "mean_ms": round(r["mean_exec_time"], 3),
                "share": round(r["share"] or 0.0, 3),
                "rows": r["rows"],
                "query": " ".join(r["query"].split())[:STATEMENT_TEXT_KEPT],
            }
            for r in rows
        ]

    async def decision_batches(self) -> tuple[float, float, float]:
        """(batches, messages, seconds) the matcher's decision processes have applied on the
        applications topic so far, summed from their /metrics (gwangsan_consumer_batch_*)."""
        urls = list(self.deciders.values())
        if not self.split:
            urls.append(self.env["MATCHER_URL"])
        totals = [0.0, 0.0, 0.0]
        for url in urls:
            text = (await self.http.get(f"{url}/metrics")).text
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if sample.labels.get("topic") != "matcher.applications.v1":
                        continue
                    if sample.name == "gwangsan_consumer_batch_size_count":
                        totals[0] += sample.value
                    elif sample.name == "gwangsan_consumer_batch_size_sum":
                        totals[1] += sample.value
                    elif sample.name == "gwangsan_consumer_batch_seconds_sum":
                        totals[2] += sample.value
        return totals[0], totals[1], totals[2]

    async def stop_workers(self) -> int:
        """Stop the decision workers (gracefully: they commit what they hold); how many."""
        stopped = list(self.workers)
        for proc in stopped:
            self.stop_proc(proc)
        return len(stopped)

    async def start_workers(self, count: int) -> None:
        for i in range(count):
            await self.start_matcher("worker", self.worker_ports[i])

    def spawn(
        self, name: str, args: list[str], extra_env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        env.update(self.env)
        env.update(extra_env or {})
        env["PYTHONUNBUFFERED"] = "1"
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        self.procs.append((name, proc))
        return proc

    def stop_proc(self, proc: subprocess.Popen[bytes]) -> None:
        if proc in self.workers:
            self.workers.remove(proc)
        self.deciders.pop(proc, None)
        for i, (name, p) in enumerate(self.procs):
            if p is proc:
                self._terminate(name, p)
                del self.procs[i]
                return

    @staticmethod
    def _terminate(name: str, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    async def wait_http(self, url: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                r = await self.http.get(url, timeout=2)
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
        raise RuntimeError(f"{url} not ready within {timeout_s} s (logs in {self.tmp})")

    # --- helpers ------------------------------------------------------------------------

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.env['ADMIN_TOKEN']}"}

    async def clock_now(self) -> datetime:
        r = await self.http.get(
            self.env["MATCHER_URL"] + "/v1/admin/clock", headers=self.admin_headers
        )
        r.raise_for_status()
        return datetime.fromisoformat(r.json()["now"])

    async def publish_postings(self, count: int, capacity: int, tag: str) -> list[str]:
        """`count` first-come postings put on the registry's topic (as the registry would)
        and waited for until the matcher knows them all."""
        now = await self.clock_now()
        ids = []
        for i in range(count):
            starts_at = now + timedelta(days=3, minutes=i)
            event = PostingPublished(
                posting_id=f"pst_bench_{tag}_{i}_{uuid.uuid4().hex[:8]}",
                facility_id="fac_bench",
                facility_name="광산구 벤치마크 시설",
                facility_dong="수완동",
                title="bench",
                starts_at=starts_at,
                ends_at=starts_at + timedelta(minutes=60),
                capacity=capacity,
                selection="first_come",
                applications_close_at=None,
                requires_child_safety_check=False,
                reservation_id="rsv_" + uuid.uuid4().hex[:12],
            )
            envelope = event.envelope(producer="bench", occurred_at=now)
            await self.producer.send_and_wait(
                event.TOPIC, envelope.to_bytes(), key=envelope.key.encode()
            )
            ids.append(event.posting_id)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            known = await self.pool.fetchval(
                "SELECT count(*) FROM matcher.postings WHERE posting_id = ANY($1)", ids
            )
            if known == len(ids):
                return ids
            await asyncio.sleep(0.1)
        raise RuntimeError("the matcher did not learn the bench postings within 60 s")

    async def verified_at(self) -> str:
        return (await self.clock_now() - timedelta(days=30)).isoformat()

    async def run_loadgen(
        self, spec: dict[str, Any], processes: int, *, lead_s: float = 1.5
    ) -> list[dict[str, Any]]:
        """Run `processes` generator processes on `spec` (rates are split between them),
        started together; their results."""
        procs = []
        outs = []
        # Signing happens before start_at; give every process time to build its requests.
        count = spec.get("max_requests") or spec["rate"] * spec["duration_s"]
        start_at = time.time() + lead_s + count / processes / 20_000
        for i in range(processes):
            mine = dict(spec)
            # Unique per run: application and citizen ids must never repeat a previous run's.
            mine["id_prefix"] = f"{spec['id_prefix']}{i}x{self.run_token}"
            mine["start_at"] = start_at
            if "rate" in spec:
                mine["rate"] = spec["rate"] / processes
            if "max_requests" in spec:
                mine["max_requests"] = spec["max_requests"] // processes
            spec_path = self.tmp / f"spec-{mine['id_prefix']}.json"
            out_path = self.tmp / f"out-{mine['id_prefix']}.json"
            spec_path.write_text(json.dumps(mine))
            procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bench.loadgen", str(spec_path), str(out_path), cwd=ROOT
                )
            )
            outs.append(out_path)
        for p in procs:
            if await p.wait() != 0:
                raise RuntimeError(f"a load generator failed (exit {p.returncode})")
        return [json.loads(o.read_bytes()) for o in outs]

    async def matcher_idle(self, timeout_s: float = 300) -> float:
        """Wait until the matcher has no undecided work and no pending notification (the
        applications topic's consumer lag is checked through the partner_notifications
        and applications tables staying still); returns the seconds waited."""
        return await self._until_quiet(
            "SELECT (SELECT count(*) FROM matcher.partner_notifications"
            "         WHERE status = 'pending') AS busy,"
            "       ARRAY[(SELECT count(*) FROM matcher.applications)] AS done",
            "the matcher",
            timeout_s,
        )

    async def stack_idle(self, timeout_s: float = 300) -> float:
        """`matcher_idle`, and what its decisions feed has caught up: every outbox
        published, and the registry's and the allowance's consumers applying nothing more
        (their `processed_events` staying still). Returns the seconds waited.

        Without the second half a phase measured right after a large one (the latency run
        after the ingest run's ~90,000 decisions) shared the two cores with the downstream
        services catching up on the previous phase's booking events."""
        return await self._until_quiet(
            "SELECT (SELECT count(*) FROM matcher.partner_notifications"
            "         WHERE status = 'pending')"
            "     + (SELECT count(*) FROM matcher.outbox WHERE published_at IS NULL)"
            "     + (SELECT count(*) FROM registry.outbox WHERE published_at IS NULL)"
            "     + (SELECT count(*) FROM allowance.outbox WHERE published_at IS NULL)"
            "         AS busy,"
            "       ARRAY[(SELECT count(*) FROM matcher.applications),"
            "             (SELECT count(*) FROM registry.processed_events)"
            "           + (SELECT count(*) FROM allowance.processed_events)] AS done",
            "the stack",
            timeout_s,
        )

    async def _until_quiet(self, sql: str, what: str, timeout_s: float) -> float:
        """Poll `sql` (one row: `busy`, work waiting; `done`, counters of work done) until
        nothing waits and the counters stood still for three polls in a row."""
        started = time.monotonic()
        last = None
        stable = 0
        while time.monotonic() - started < timeout_s:
            row = await self.pool.fetchrow(sql)
            if row["busy"] == 0 and row["done"] == last:
                stable += 1
                if stable >= 3:
                    return time.monotonic() - started
            else:
                stable = 0
            last = row["done"]
            await asyncio.sleep(0.5)
        raise RuntimeError(f"{what} did not become idle within {timeout_s} s")

    async def sim_notifications(self, **filters: str) -> list[dict[str, Any]]:
        r = await self.http.get(
            f"http://127.0.0.1:{self.sim_port}/notifications", params=filters, timeout=120
        )
        r.raise_for_status()
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    async def sim_count(self, **filters: str) -> int:
        """How many notifications the partner simulator recorded (`posting_id`,
        `type_prefix`): a counter it keeps, cheap to ask while a run goes on."""
        r = await self.http.get(
            f"http://127.0.0.1:{self.sim_port}/notifications/count", params=filters
        )
        r.raise_for_status()
        count: int = r.json()["count"]
        return count

    async def sim_reset(self) -> None:
        if self.sim_owned:
            await self.http.post(f"http://127.0.0.1:{self.sim_port}/control/reset")

"""A CPU census beside a benchmark: the machine's CPU (busy, steal), each process group's
share and the kernel's pressure-stall counters (time some task waited for the disk or for a
core), sampled from /proc every quarter second, so a slow second of a run can be named —
the machine saturated, CPU stolen by the host, the disk holding writers up, one of our
processes busy — instead of guessed at. Linux only; elsewhere it records nothing and says
so (and without /proc/pressure, no stall figures)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

# Process groups, first match wins: (name, a marker in the command line or the environment).
GROUPS: tuple[tuple[str, str], ...] = (
    ("matcher worker", "ROLE=worker"),
    ("matcher api", "-m matcher"),
    ("registry", "-m registry"),
    ("allowance", "-m allowance"),
    ("kafka", "kafka.Kafka"),
    ("postgres", "postgres"),
    ("partner simulator", "partner_sim"),
    ("load generator", "bench.loadgen"),
    ("ingest baseline", "bench.baseline"),
    ("bench", "-m bench"),
)


def _group(pid: str) -> str:
    try:
        cmdline = (
            (PROC / pid / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
        environ = (PROC / pid / "environ").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "other"
    for name, marker in GROUPS:
        if marker.startswith("ROLE=") and marker in environ and "-m matcher" in cmdline:
            return name
        if not marker.startswith("ROLE=") and marker in cmdline:
            return name
    return "other"


# The JVM's just-in-time compiler threads, counted apart from the rest of Kafka: a broker
# compiles its hot paths for its first minute or so under a new load, which is start-up
# cost, not the cost of serving (a broker in service has run for weeks).
JIT_THREADS = ("C1 CompilerThre", "C2 CompilerThre")
JIT_SUFFIX = ":jit"


def _cpu_ticks(stat: str) -> int:
    """utime + stime of a process's or a thread's /proc `stat` line (after the command
    name, which may hold spaces and parentheses)."""
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def _jit_ticks(pid: str, known: dict[str, bool]) -> int:
    """CPU ticks of a JVM's compiler threads (/proc/<pid>/task/*). `known` remembers which
    thread ids are compilers, so each thread's name is read once, not every sample (a
    broker has ~100 threads; the census must stay cheap beside what it measures)."""
    total = 0
    try:
        tasks = os.listdir(PROC / pid / "task")
    except OSError:
        return 0
    for tid in tasks:
        try:
            if tid not in known:
                comm = (PROC / pid / "task" / tid / "comm").read_text()
                known[tid] = comm.startswith(JIT_THREADS)
            if not known[tid]:
                continue
            stat = (PROC / pid / "task" / tid / "stat").read_text()
        except OSError:
            continue
        total += _cpu_ticks(stat)
    return total


def _machine() -> tuple[int, int, int]:
    """(busy, steal, total) jiffies of all cores since boot (/proc/stat's first line)."""
    fields = [int(x) for x in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    busy = user + nice + system + irq + softirq
    return busy, steal, busy + steal + idle + iowait


def _pressure(resource: str) -> int | None:
    """Microseconds since boot in which some task waited for `resource` ("io", "cpu"):
    /proc/pressure's `some` line (PSI; absent on kernels without it)."""
    try:
        first = (PROC / "pressure" / resource).read_text().split("\n", 1)[0]
    except OSError:
        return None
    return int(first.rsplit("total=", 1)[1])


@dataclass
class Sample:
    at: float  # wall clock (time.time())
    machine: tuple[int, int, int]
    ticks: dict[str, int]  # pid -> utime + stime
    io_wait_us: int | None = None  # PSI io "some" total
    cpu_wait_us: int | None = None  # PSI cpu "some" total


@dataclass
class Census:
    """Samples taken while `running()`; `window(start, end)` sums a stretch of them."""

    interval_s: float = 0.25
    samples: list[Sample] = field(default_factory=list)
    groups: dict[str, str] = field(default_factory=dict)  # pid -> group
    jit_threads: dict[str, dict[str, bool]] = field(default_factory=dict)  # pid -> tid -> JIT?
    cores: int = os.cpu_count() or 1
    available: bool = (PROC / "stat").exists()

    def _sample(self) -> Sample:
        ticks: dict[str, int] = {}
        for pid in os.listdir(PROC):
            if not pid.isdigit():
                continue
            try:
                stat = (PROC / pid / "stat").read_text()
            except OSError:
                continue
            ticks[pid] = _cpu_ticks(stat)
            if pid not in self.groups:
                self.groups[pid] = _group(pid)
                if self.groups[pid] == "kafka":
                    self.groups[pid + JIT_SUFFIX] = "kafka jit"
            if self.groups[pid] == "kafka":
                jit = _jit_ticks(pid, self.jit_threads.setdefault(pid, {}))
                ticks[pid] -= jit
                ticks[pid + JIT_SUFFIX] = jit
        return Sample(time.time(), _machine(), ticks, _pressure("io"), _pressure("cpu"))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Census]:
        if not self.available:
            yield self
            return

        async def sample_forever() -> None:
            while True:
                self.samples.append(await asyncio.to_thread(self._sample))
                await asyncio.sleep(self.interval_s)

        task = asyncio.create_task(sample_forever())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.samples.append(self._sample())

    def cpu_seconds(self, group: str) -> float:
        """CPU seconds `group`'s processes used from the first sample to the last (every
        sample's processes; a process gone before the last sample is not counted)."""
        if len(self.samples) < 2:
            return 0.0
        first, last = self.samples[0], self.samples[-1]
        ticks = sum(
            after - first.ticks.get(pid, 0)
            for pid, after in last.ticks.items()
            if self.groups.get(pid) == group and after > first.ticks.get(pid, 0)
        )
        return ticks / TICKS_PER_S

    def window(self, start: float, end: float) -> dict[str, object] | None:
        """The machine and every group between the samples nearest `start` and `end`:
        percentages of one core (the machine's busy of `cores` × 100)."""
        inside = [
            s for s in self.samples if start - self.interval_s <= s.at <= end + self.interval_s
        ]
        if len(inside) < 2:
            return None
        first, last = inside[0], inside[-1]
        seconds = last.at - first.at
        busy = last.machine[0] - first.machine[0]
        steal = last.machine[1] - first.machine[1]
        per_group: dict[str, float] = {}
        for pid, ticks in last.ticks.items():
            before = first.ticks.get(pid)
            if before is None or ticks <= before:
                continue
            group = self.groups.get(pid, "other")
            per_group[group] = per_group.get(group, 0.0) + (ticks - before)
        pct = 100 / (TICKS_PER_S * seconds)

        def waited_ms_per_s(before: int | None, after: int | None) -> float | None:
            if before is None or after is None:
                return None
            return round((after - before) / 1000 / seconds, 1)

        return {
            "from_s": round(first.at - start, 2),
            "seconds": round(seconds, 2),
            "machine_busy_pct": round(busy * pct, 1),
            "steal_pct": round(steal * pct, 1),
            # Of each second, the milliseconds in which some task waited for the disk /
            # for a core (PSI "some"): a disk stall shows in the first, a queue for the
            # cores in the second.
            "io_wait_ms_per_s": waited_ms_per_s(first.io_wait_us, last.io_wait_us),
            "cpu_wait_ms_per_s": waited_ms_per_s(first.cpu_wait_us, last.cpu_wait_us),
            "of_pct": self.cores * 100,
            "by_group_pct": {
                g: round(t * pct, 1)
                for g, t in sorted(per_group.items(), key=lambda kv: -kv[1])
                if t * pct >= 1
            },
        }

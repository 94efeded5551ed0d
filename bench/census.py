"""A CPU census beside a benchmark: the machine's CPU (busy, steal) and each process
group's share, sampled from /proc every quarter second, so a slow second of a run can be
named — the machine saturated, CPU stolen by the host, one of our processes busy — instead
of guessed at. Linux only; elsewhere it records nothing and says so."""

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


def _machine() -> tuple[int, int, int]:
    """(busy, steal, total) jiffies of all cores since boot (/proc/stat's first line)."""
    fields = [int(x) for x in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    busy = user + nice + system + irq + softirq
    return busy, steal, busy + steal + idle + iowait


@dataclass
class Sample:
    at: float  # wall clock (time.time())
    machine: tuple[int, int, int]
    ticks: dict[str, int]  # pid -> utime + stime


@dataclass
class Census:
    """Samples taken while `running()`; `window(start, end)` sums a stretch of them."""

    interval_s: float = 0.25
    samples: list[Sample] = field(default_factory=list)
    groups: dict[str, str] = field(default_factory=dict)  # pid -> group
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
            fields = stat[stat.rfind(")") + 2 :].split()
            ticks[pid] = int(fields[11]) + int(fields[12])
            if pid not in self.groups:
                self.groups[pid] = _group(pid)
        return Sample(time.time(), _machine(), ticks)

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
        return {
            "from_s": round(first.at - start, 2),
            "seconds": round(seconds, 2),
            "machine_busy_pct": round(busy * pct, 1),
            "steal_pct": round(steal * pct, 1),
            "of_pct": self.cores * 100,
            "by_group_pct": {
                g: round(t * pct, 1)
                for g, t in sorted(per_group.items(), key=lambda kv: -kv[1])
                if t * pct >= 1
            },
        }

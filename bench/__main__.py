"""`python -m bench [--quick] [--only ingest,latency,rush,capacity,month_close,scale_out,
sender_scale_out]`.

Runs the benchmarks on the local stack, prints each figure and whether its target is met,
writes `bench/results/<date>.json` (`<date>-quick.json` for --quick) and rewrites the table
in `docs/performance.md` (full runs only, unless --table). Exits 1 if a correctness check
failed (e.g. not exactly 20 confirmed in the rush), never for a missed speed target.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import traceback
from datetime import UTC, datetime
from typing import Any

from bench import host, matcher_bench, month_close, report, sender_scale
from bench.env import Env
from bench.matcher_bench import LATENCY_RATE

ALL = (
    "ingest",
    "latency",
    "rush",
    "capacity",
    "month_close",
    "scale_out",
    "sender_scale_out",
)


def broken_checks(results: dict[str, Any]) -> list[str]:
    """The benchmarks whose correctness check failed."""
    return [
        name for name, r in results.items() if isinstance(r, dict) and not r.get("correct", True)
    ]


async def run(
    quick: bool, only: set[str], private: bool, rate: float = LATENCY_RATE
) -> dict[str, Any]:
    machine = host.reading()  # before anything of ours starts: the quiet host
    print(
        f"bench: host {machine['cpu_model']!r}, {machine['cpus']} cores, calibration"
        f" {machine['calibration_ms']} ms",
        flush=True,
    )
    env = Env(private=private)
    await env.start()
    results: dict[str, Any] = {}
    failures: list[str] = []
    completed = False

    async def step(name: str, coro: Any) -> Any:
        print(f"[{name}]", flush=True)
        started = time.monotonic()
        try:
            await env.ensure_up()
            value = await coro
        except Exception as exc:
            traceback.print_exc()
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            value = {"error": f"{type(exc).__name__}: {exc}", "correct": False}
        value["bench_s"] = round(time.monotonic() - started, 1)
        results[name] = value
        return value

    try:
        matcher_port = int(env.env["MATCHER_URL"].rsplit(":", 1)[1])
        if only & {"ingest", "scale_out"}:
            env.spawn("baseline", ["-m", "bench.baseline", str(env.baseline_port)])
            await env.wait_http(f"http://127.0.0.1:{env.baseline_port}/healthz")
        await env.stack_idle()
        if "ingest" in only:
            await step("ingest", matcher_bench.ingest(env, quick, tag="i1", ports=[matcher_port]))
        if "latency" in only:
            await step(
                "latency",
                matcher_bench.latency(env, quick, tag="l1", ports=[matcher_port], rate=rate),
            )
            await step("kafka_roundtrip", matcher_bench.kafka_roundtrip(env, quick, rate=rate))
        if "rush" in only:
            await step("rush", matcher_bench.rush(env, quick))
        if "capacity" in only:
            await step("capacity", matcher_bench.capacity(env, quick, ports=[matcher_port]))
        if "month_close" in only:
            await step("month_close", month_close.run(env, quick))
        if "scale_out" in only:
            procs = await matcher_bench.start_second_matcher(env)
            try:
                ports = [matcher_port, env.matcher2_port]
                await step(
                    "scale_out_ingest", matcher_bench.ingest(env, quick, tag="i2", ports=ports)
                )
                await step(
                    "scale_out_latency",
                    matcher_bench.latency(env, quick, tag="l2", ports=ports),
                )
            finally:
                for proc in procs:
                    env.stop_proc(proc)
            one, two = results.get("ingest", {}), results.get("scale_out_ingest", {})
            if "matcher" in one and "matcher" in two:
                results["scale_out"] = {
                    "ingest_throughput_ratio": round(
                        two["matcher"]["rps"] / one["matcher"]["rps"], 3
                    ),
                    "baseline_ratio_1": one["ratio"],
                    "baseline_ratio_2": two["ratio"],
                    "correct": True,
                }
                print(
                    "  scale-out: 2 matchers / 1 matcher ingest throughput ="
                    f" {results['scale_out']['ingest_throughput_ratio']}",
                    flush=True,
                )
        if "sender_scale_out" in only:
            sender = await step("sender_scale_out", sender_scale.run(env, quick))
            if "sender_ratio" in sender:
                results.setdefault("scale_out", {"correct": True})
                results["scale_out"]["sender_ratio"] = sender["sender_ratio"]
        completed = True
    finally:
        shape = "api + worker processes" if env.split else "one process (role all)"
        await env.stop(keep_files=not completed or bool(failures or broken_checks(results)))
    return {
        "matcher_shape": shape,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "private_stack": private,
        "machine": machine,
        "results": results,
        "failures": failures,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="scaled down, ~2 minutes")
    parser.add_argument("--only", default=",".join(ALL), help=f"comma list of {ALL}")
    parser.add_argument(
        "--private",
        action="store_true",
        help="run on a stack of its own (ports + 10000), undisturbed by other test runs",
    )
    parser.add_argument("--table", action="store_true", help="update the docs table anyway")
    parser.add_argument(
        "--rate",
        type=float,
        default=LATENCY_RATE,
        help="the latency run's applications/s (default 500, the brief's; another rate is"
        " for comparing changes on a host that cannot sustain 500/s, and its run is partial)",
    )
    args = parser.parse_args()
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    unknown = only - set(ALL)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    started = time.monotonic()
    outcome = asyncio.run(run(args.quick, only, args.private, args.rate))
    outcome["total_s"] = round(time.monotonic() - started, 1)
    outcome["partial"] = only != set(ALL) or args.rate != LATENCY_RATE
    path = report.write_json(outcome)
    print(f"results: {path}")
    if (not args.quick and not outcome["partial"]) or args.table:
        print(f"table: {report.update_docs(outcome, path)}")
    rows = report.rows(outcome)
    print(report.table(rows))
    broken = broken_checks(outcome["results"])
    if broken or outcome["failures"]:
        print(f"CORRECTNESS CHECK FAILED: {broken} {outcome['failures']}", file=sys.stderr)
        return 1
    print(f"all correctness checks passed ({outcome['total_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

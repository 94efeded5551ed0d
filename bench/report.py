"""The results file and the table in docs/performance.md."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "performance.md"
START = "<!-- bench-table:start -->"
END = "<!-- bench-table:end -->"


def write_json(outcome: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = "-quick" if outcome["quick"] else ("-partial" if outcome.get("partial") else "")
    name = datetime.now(UTC).strftime("%Y-%m-%d") + suffix
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(outcome, indent=2, ensure_ascii=False) + "\n")
    return path


def _g(d: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _met(v: Any) -> str:
    return "—" if v is None else ("yes" if v else "**no**")


def rows(outcome: dict[str, Any]) -> list[list[str]]:
    r = outcome["results"]
    out: list[list[str]] = []

    def fmt(v: Any, unit: str = "") -> str:
        if v is None:
            return "—"
        if isinstance(v, float):
            v = f"{v:,.1f}" if abs(v) >= 10 else f"{v:.3g}"
        elif isinstance(v, int):
            v = f"{v:,}"
        return f"{v}{unit}"

    def ratio(a: Any, b: Any) -> str:
        return (
            f"{a / b:.2f}"
            if isinstance(a, int | float) and isinstance(b, int | float) and b
            else "—"
        )

    for key, label in (("ingest", "1 matcher"), ("scale_out_ingest", "2 matchers")):
        i = r.get(key, {})
        m, b = _g(i, "matcher", "rps"), _g(i, "baseline", "rps")
        out.append(
            [
                f"Ingest req/s ({label})",
                fmt(m),
                fmt(b),
                ratio(m, b),
                "≥ 0.60 × baseline",
                _met(i.get("met")),
            ]
        )
        out.append(
            [
                f"Ingest p50 / p99 ms ({label})",
                f"{fmt(_g(i, 'matcher', 'latency_ms', 'p50'))} / {fmt(_g(i, 'matcher', 'latency_ms', 'p99'))}",
                f"{fmt(_g(i, 'baseline', 'latency_ms', 'p50'))} / {fmt(_g(i, 'baseline', 'latency_ms', 'p99'))}",
                "",
                "",
                "",
            ]
        )
        # the ratio is the baseline's CPU a request over ours (1.0: our work is free)
        mc, bc = _g(i, "matcher", "cpu_ms_per_request"), _g(i, "baseline", "cpu_ms_per_request")
        out.append(
            [
                f"Ingest CPU ms a request, served process ({label})",
                fmt(mc),
                fmt(bc),
                ratio(bc, mc),
                "(reported)",
                "—",
            ]
        )
    k = r.get("kafka_roundtrip", {})
    for key, label in (("latency", "1 matcher"), ("scale_out_latency", "2 matchers")):
        lat = r.get(key, {})
        w = lat.get("webhook_to_partner_ms", {})
        out.append(
            [
                f"Webhook→partner p50 / p99 / max ms @500/s ({label})",
                f"{fmt(w.get('p50'))} / {fmt(w.get('p99'))} / {fmt(w.get('max'))}",
                f"Kafka RTT {fmt(_g(k, 'ms', 'p50'))} / {fmt(_g(k, 'ms', 'p99'))} / {fmt(_g(k, 'ms', 'max'))}",
                ratio(w.get("p99"), _g(k, "ms", "p99")),
                "p99 < 50 ms",
                _met(lat.get("met")),
            ]
        )
    slow = r.get("latency", {}).get("seconds_over_floor", {})
    out.append(
        [
            "Seconds with p99 over 50 ms @500/s (1 matcher), by reading (docs: “Reading the"
            " slow seconds”)",
            f"{fmt(len(slow.get('seconds', [])))} of {fmt(slow.get('of'))}: "
            + ", ".join(f"{k} {v}" for k, v in slow.get("by_kind", {}).items()),
            "",
            "",
            "(each explained in the results)",
            "—",
        ]
    )
    loop = r.get("latency", {}).get("decision_loop", {})
    out.append(
        [
            "Decision loop @500/s (1 matcher): applications per batch, ms per batch, busy",
            f"{fmt(loop.get('mean_batch_size'))}, {fmt(loop.get('mean_batch_ms'))},"
            f" {fmt(loop.get('busy_share'))}",
            "",
            "",
            "(where the latency goes)",
            "—",
        ]
    )
    ru = r.get("rush", {})
    out.append(
        [
            f"Rush: {fmt(ru.get('applications'))} apps, 20 seats — all decided / all notified s"
            " / notified after the last 202 ms",
            f"{fmt(ru.get('decided_s'))} / {fmt(ru.get('notified_s'))}"
            f" / {fmt(ru.get('notified_after_last_202_ms'))}",
            f"sent in {fmt(ru.get('send_s'))}",
            "",
            "< 2 s (aim 1.5 s; 250 ms after the last 202); exactly 20 confirmed",
            _met(ru.get("met")) + (f" (confirmed {ru.get('confirmed')})" if ru else ""),
        ]
    )
    rl = ru.get("decision_loop", {})
    out.append(
        [
            "Rush decision loop: batches, applications per batch, ms per batch",
            f"{fmt(rl.get('batches'))}, {fmt(rl.get('mean_batch_size'))},"
            f" {fmt(rl.get('mean_batch_ms'))}",
            _rush_cpu(ru),
            "",
            "(where the rush goes)",
            "—",
        ]
    )
    cap = r.get("capacity", {})
    steps = cap.get("steps", [])
    out.append(
        [
            "Capacity: highest arrival rate with webhook→partner p99 < 100 ms (1 matcher)",
            f"{fmt(cap.get('sustained_rate_per_s'))}/s",
            "; ".join(
                f"{fmt(s['rate_per_s'])}/s: p99 {fmt(s['webhook_to_partner_ms'].get('p99'))} ms,"
                f" Kafka RTT p99 {fmt(s['kafka_roundtrip_ms'].get('p99'))} ms"
                for s in steps
            ),
            "",
            "(reported; step test)",
            "—",
        ]
    )
    mc = r.get("month_close", {})
    if mc.get("unfinished"):
        out.append(["Month close", "unfinished", "", "", "< 60 s", "—"])
    else:
        out.append(
            [
                f"Month close: {fmt(mc.get('rows'))} shifts, close + statements + payout file s",
                fmt(mc.get("total_s")),
                f"COPY out {fmt(mc.get('copy_out_s'))} s",
                ratio(mc.get("total_s"), mc.get("copy_out_s")),
                "< 60 s",
                _met(mc.get("met")),
            ]
        )
        out.append(
            [
                "Month close rows/s, peak RSS MB",
                f"{fmt(mc.get('rows_per_s'))}, {fmt(mc.get('peak_rss_mb'))}",
                f"COPY {fmt(mc.get('copy_rows_per_s'))} rows/s",
                "",
                "",
                "",
            ]
        )
    so = r.get("scale_out", {})
    out.append(
        [
            "Scale-out: ingest req/s 2 matchers ÷ 1 matcher",
            fmt(so.get("ingest_throughput_ratio")),
            "",
            "",
            "(reported)",
            "—",
        ]
    )
    sender = r.get("sender_scale_out")
    if sender and "sender_ratio" in sender:
        out.append(
            [
                f"Scale-out: sender notifications/s, backlog of {fmt(sender['notifications'])}"
                f" over {fmt(sender['keys'])} keys, 1 → 2 processes",
                f"{fmt(sender['one']['per_s'])} → {fmt(sender['two']['per_s'])}",
                "",
                fmt(sender["sender_ratio"]),
                "≥ 1.6 with a core each (reported)",
                "—",
            ]
        )
    return out


def table(rs: list[list[str]]) -> str:
    head = ["figure", "value", "baseline (same run)", "ratio", "target", "met?"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rs]
    return "\n".join(lines)


def _host(machine: dict[str, Any]) -> str:
    """The host in the table's caption: cores, CPU and how fast (bench/host.py)."""
    text = f"{machine['cpus']} cores"
    if machine.get("cpu_model"):
        text += f" ({machine['cpu_model']})"
    text += f", Python {machine['python']}"
    if machine.get("calibration_ms") is not None:
        text += f", host calibration {machine['calibration_ms']:,} ms (lower is faster)"
    return text


def update_docs(outcome: dict[str, Any], path: Path) -> Path:
    text = DOC.read_text() if DOC.exists() else f"# Performance\n\n{START}\n{END}\n"
    block = (
        f"{START}\n_Run of {outcome['started_at']} ({'quick' if outcome['quick'] else 'full'};"
        f" `{path.relative_to(ROOT)}`), {_host(outcome['machine'])}; matcher run as"
        f" {outcome.get('matcher_shape', 'one process (role all)')}._\n\n"
        f"{table(rows(outcome))}\n{END}"
    )
    text = re.sub(re.escape(START) + ".*?" + re.escape(END), block, text, flags=re.S)
    DOC.write_text(text)
    return DOC


def _rush_cpu(rush: dict[str, Any]) -> str:
    """The machine's busy share during the rush and after its last 202 (the census)."""
    whole, tail = rush.get("cpu"), rush.get("cpu_after_last_202")
    if not whole:
        return ""
    text = f"machine {whole['machine_busy_pct']:.0f} % of {whole['of_pct']} % busy"
    if tail:
        text += f" ({tail['machine_busy_pct']:.0f} % after the last 202)"
    return text

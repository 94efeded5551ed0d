"""What the host is, and how fast: read before the stack starts, so runs on different
machines can be compared.

The same commit gave webhook→partner p99 38 ms at 500/s on one host of this workplace and
580–950 ms on another, three times slower (the bare ingest endpoint: 13,145 against
3,500–4,750 requests a second): the latency floors are absolute, so a reader needs to know
which kind of host a run had. `calibration_ms` times a fixed single-threaded workload of
the kind the services do per request (the webhook body parsed by the same pydantic model,
an event serialised to JSON, an HMAC-SHA256) on the still-quiet machine: twice the
milliseconds, about half the throughput.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from matcher.schemas import WEBHOOK_BODY

ROUNDS = 20_000
_BODY = json.dumps(
    {
        "type": "application.submitted",
        "timestamp": "2026-12-07T09:00:00Z",
        "data": {
            "application_id": "app_calibration_0001",
            "posting_id": "pst_calibration_0001",
            "citizen": {
                "partner_user_id": "karrot_calibration_0001",
                "display_name": "calibration",
                "dong": "수완동",
                "birth_date": "1990-01-01",
                "neighbourhood_verified_at": "2026-12-01T00:00:00Z",
                "child_safety_check": False,
            },
        },
    }
).encode()


def cpu_model() -> str:
    """The first CPU's model name, as /proc/cpuinfo gives it ("" where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def calibration_ms(rounds: int = ROUNDS) -> float:
    """The best of three timings of `rounds` parse + serialise + sign steps, in ms."""
    key = b"k" * 32
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for i in range(rounds):
            WEBHOOK_BODY.validate_json(_BODY)
            out = json.dumps({"n": i, "body": "x" * 64, "at": "2026-12-07T09:00:00Z"})
            hmac.new(key, out.encode(), hashlib.sha256).digest()
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


def reading() -> dict[str, Any]:
    """The `machine` entry of a result file."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "calibration_ms": calibration_ms(),
        "calibration": f"{ROUNDS:,} webhook-body parses + JSON dumps + HMACs, best of 3",
    }

"""The webhook's own work, in process: `python -m bench.hot_path [--rounds N] [--requests N]`.

The ingest benchmark's figures move with the whole host (on the shared hosts here the bare
endpoint's own CPU a request varies by a fifth between runs minutes apart), which hides a
change of a few per cent in our code. This drives the matcher's real ASGI app
(`matcher.app.build`: the service's middleware, its fast route, `accept_webhook`) and the
ingest baseline's (`bench.baseline`) in one process, with no network and no Kafka (the
producer acknowledges at once), in alternating rounds, and reports the CPU microseconds a
signed `application.submitted` costs each and their ratio — what our path costs over a bare
FastAPI endpoint that parses the same body, measured side by side, so a lever's effect is
read as a ratio between two runs of this script, not as an absolute figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from matcher.app import build
from matcher.settings import MatcherSettings, WebhookSecrets

from bench import baseline
from shared import webhooks
from shared.ids import random_hex
from shared.service import freeze_heap
from tools.api_client import partner

ROUNDS_DEFAULT = 7
REQUESTS_DEFAULT = 3_000
CHUNK = 20  # requests of one app before the other's turn
SECRET = "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


class _AckingProducer:
    """Kafka as far as the webhook sees it: every send acknowledged at once."""

    async def send_and_wait(self, *_: object, **__: object) -> None:
        return None


@dataclass
class _Ctx:
    """What `accept_webhook` reads of the service's context."""

    settings: MatcherSettings
    producer: _AckingProducer = field(default_factory=_AckingProducer)
    secrets: WebhookSecrets = field(default_factory=lambda: WebhookSecrets((SECRET,)))

    def resource(self, kind: type[object]) -> object:
        assert kind is WebhookSecrets
        return self.secrets

    def now(self) -> datetime:
        return datetime.now(UTC)


def _requests(n: int) -> list[tuple[bytes, list[tuple[bytes, bytes]]]]:
    """`n` signed application.submitted webhooks (bodies and ASGI headers), each its own."""
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        citizen = partner.citizen_profile(neighbourhood_verified_at=now - timedelta(days=30))
        body = json.dumps(
            {
                "type": "application.submitted",
                "timestamp": now.isoformat(),
                "data": {
                    "application_id": f"app_hot_{i}_{random_hex()[:8]}",
                    "posting_id": f"pst_hot_{i % 12}",
                    "citizen": citizen,
                },
            },
            default=str,
        ).encode()
        signed = webhooks.sign(SECRET, f"msg_hot_{i}_{random_hex()[:8]}", now, body)
        headers = [(k.encode(), v.encode()) for k, v in signed.items()]
        headers += [
            (b"host", b"127.0.0.1:8002"),
            (b"content-length", str(len(body)).encode()),
            (b"user-agent", b"partner/1.0"),
            (b"accept", b"*/*"),
        ]
        out.append((body, headers))
    return out


async def _serve(app: FastAPI, body: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    """One request through the ASGI app, as uvicorn would hand it; its status."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/partner/webhooks",
        "raw_path": b"/v1/partner/webhooks",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8002),
        "state": {},
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # no disconnect while the app answers
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _cpu_us(app: FastAPI, requests: list[tuple[bytes, list[tuple[bytes, bytes]]]]) -> float:
    """CPU microseconds `requests` took, each answered 202."""
    started = time.process_time()
    for body, headers in requests:
        status = await _serve(app, body, headers)
        if status != 202:
            raise RuntimeError(f"the hot path answered {status}, not 202")
    return (time.process_time() - started) * 1e6


async def _round(
    matcher: FastAPI, bare: FastAPI, requests: list[tuple[bytes, list[tuple[bytes, bytes]]]]
) -> tuple[float, float]:
    """CPU microseconds a request, ours and the baseline's, the two taking turns every
    `CHUNK` requests so that both meet the host as it is at that moment."""
    ours = base = 0.0
    for i in range(0, len(requests), CHUNK):
        chunk = requests[i : i + CHUNK]
        ours += await _cpu_us(matcher, chunk)
        base += await _cpu_us(bare, chunk)
    return ours / len(requests), base / len(requests)


async def run(rounds: int, n: int) -> dict[str, Any]:
    settings = MatcherSettings(role="api", http_rate_exempt_addresses="127.0.0.1")
    matcher = build(settings)
    matcher.state.ctx = _Ctx(settings)
    bare = baseline.create_app()
    requests = _requests(n)
    freeze_heap()  # as the services and the baseline do once started
    await _round(matcher, bare, requests[: n // 10])  # warm both
    ours: list[float] = []
    base: list[float] = []
    for _ in range(rounds):
        m, b = await _round(matcher, bare, requests)
        ours.append(m)
        base.append(b)
    ratios = [b / m for b, m in zip(base, ours, strict=True)]
    return {
        "requests_per_round": n,
        "rounds": rounds,
        "matcher_us": round(statistics.median(ours), 1),
        "baseline_us": round(statistics.median(base), 1),
        # the bare endpoint's CPU a request ÷ ours, median of the rounds' own ratios
        "ratio": round(statistics.median(ratios), 3),
        "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS_DEFAULT)
    parser.add_argument("--requests", type=int, default=REQUESTS_DEFAULT)
    args = parser.parse_args()
    import uvloop

    out = uvloop.run(run(args.rounds, args.requests))
    print(json.dumps(out))


if __name__ == "__main__":
    main()

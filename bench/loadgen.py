"""The load generator: `python -m bench.loadgen SPEC.json OUT.json`, one process each.

Why an asyncio generator and not wrk: wrk is not on this machine's image (it would be one
more Debian package to install), and every request needs its own `webhook-id`, application
and citizen and a fresh signature; here the requests are pre-built and pre-signed in memory
right before the run (signing is not measured), then sent over raw HTTP/1.1 keep-alive
connections on uvloop — no HTTP client library in the measured loop, so one generator
process sends well over 10,000 requests/s, several times what one service process serves.
Several generator processes are started side by side (`processes` in the spec).

Two modes:

* `closed`: `connections` connections, each sends its next request as soon as the previous
  answer came back, for `duration_s` (or until the pre-built requests run out).
* `open`: requests are sent on a fixed schedule (`rate` per second for this process)
  whatever the answers do; a request whose connection is busy gets a new connection, so a
  slow server cannot slow the arrivals (no coordinated omission). Latency is measured from
  the scheduled time.

The spec names the target (`host`, `port`, `path`), how to build bodies (`kind`:
`application.submitted` for `posting_ids` round-robin, with `verified_at` for the citizen),
the signing `secret` (empty: unsigned) and an `id_prefix` so application ids are unique
across processes. The result lists every request's application id, scheduled and sent wall
time and latency, and the status counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
from standardwebhooks import Webhook


def build_requests(spec: dict[str, Any], count: int) -> list[tuple[str, bytes]]:
    """`count` (application id, raw HTTP request) pairs, each signed now."""
    host, port, path = spec["host"], spec["port"], spec["path"]
    posting_ids: list[str] = spec["posting_ids"]
    secret: str = spec.get("secret", "")
    signer = Webhook(secret) if secret else None
    prefix = spec["id_prefix"]
    now = datetime.now(UTC)
    stamp = now.isoformat()
    out: list[tuple[str, bytes]] = []
    for i in range(count):
        application_id = f"app_{prefix}_{i}"
        body = orjson.dumps(
            {
                "type": "application.submitted",
                "timestamp": stamp,
                "data": {
                    "application_id": application_id,
                    "posting_id": posting_ids[i % len(posting_ids)],
                    "citizen": {
                        "partner_user_id": f"bench_{prefix}_{i}",
                        "dong": "수완동",
                        "neighbourhood_verified_at": spec["verified_at"],
                        "birth_date": "1990-05-17",
                        "child_safety_check": True,
                    },
                },
            }
        )
        webhook_id = f"msg_{prefix}_{i}_{uuid.uuid4().hex[:8]}"
        head = [
            f"POST {path} HTTP/1.1",
            f"host: {host}:{port}",
            "content-type: application/json",
            f"content-length: {len(body)}",
        ]
        if signer is not None:
            head += [
                f"webhook-id: {webhook_id}",
                f"webhook-timestamp: {int(now.timestamp())}",
                f"webhook-signature: {signer.sign(webhook_id, now, body.decode())}",
            ]
        out.append((application_id, ("\r\n".join(head) + "\r\n\r\n").encode() + body))
    return out


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def roundtrip(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
                break
        if length:
            await self.reader.readexactly(length)
        return status


async def _connect(spec: dict[str, Any]) -> Conn:
    reader, writer = await asyncio.open_connection(spec["host"], spec["port"])
    return Conn(reader, writer)


async def run_closed(spec: dict[str, Any], requests: list[tuple[str, bytes]]) -> dict[str, Any]:
    records: list[tuple[str, float, float, int]] = []
    it = iter(requests)
    deadline_holder: list[float] = []

    async def worker() -> None:
        conn = await _connect(spec)
        try:
            for application_id, raw in it:
                if time.perf_counter() >= deadline_holder[0]:
                    return
                sent = time.time()
                t0 = time.perf_counter()
                status = await conn.roundtrip(raw)
                records.append((application_id, sent, time.perf_counter() - t0, status))
        finally:
            conn.writer.close()

    started = time.perf_counter()
    deadline_holder.append(started + spec["duration_s"])
    await asyncio.gather(*(worker() for _ in range(spec["connections"])))
    elapsed = time.perf_counter() - started
    return _result(records, elapsed)


async def run_open(spec: dict[str, Any], requests: list[tuple[str, bytes]]) -> dict[str, Any]:
    rate = float(spec["rate"])
    idle: list[Conn] = []
    records: list[tuple[str, float, float, int]] = []
    errors: Counter[str] = Counter()

    async def one(application_id: str, raw: bytes, scheduled_perf: float, sched: float) -> None:
        reused = bool(idle)
        conn = idle.pop() if reused else await _connect(spec)
        try:
            try:
                status = await conn.roundtrip(raw)
            except (OSError, asyncio.IncompleteReadError):
                if not reused:
                    raise
                # The server closed a connection that sat idle past its keep-alive
                # timeout; like any HTTP client, send again on a fresh one.
                conn.writer.close()
                conn = await _connect(spec)
                status = await conn.roundtrip(raw)
            if status == 408 and reused:
                # A connection opened ahead and never used within the server's header
                # timeout (shared/server.py) was answered 408 and closed before this
                # request was written; like any HTTP client, send again on a fresh one.
                conn.writer.close()
                conn = await _connect(spec)
                status = await conn.roundtrip(raw)
        except (OSError, asyncio.IncompleteReadError) as exc:
            errors[type(exc).__name__] += 1
            conn.writer.close()
            return
        records.append((application_id, sched, time.perf_counter() - scheduled_perf, status))
        idle.append(conn)

    # A few connections up front, so the first second does not measure connects.
    for _ in range(8):
        idle.append(await _connect(spec))
    tasks: set[asyncio.Task[None]] = set()
    started_perf = time.perf_counter()
    started_wall = time.time()
    for i, (application_id, raw) in enumerate(requests):
        due = started_perf + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(application_id, raw, due, started_wall + i / rate))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=30)
    elapsed = time.perf_counter() - started_perf
    for conn in idle:
        conn.writer.close()
    result = _result(records, elapsed)
    result["errors"] = dict(errors)
    return result


def _result(records: list[tuple[str, float, float, int]], elapsed: float) -> dict[str, Any]:
    return {
        "elapsed_s": elapsed,
        "count": len(records),
        "statuses": dict(Counter(str(r[3]) for r in records)),
        "records": [[r[0], r[1], r[2], r[3]] for r in records],
    }


async def main(spec_path: str, out_path: str) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
    if spec["mode"] == "open":
        count = int(spec["rate"] * spec["duration_s"])
    else:
        count = int(spec["max_requests"])
    requests = build_requests(spec, count)
    # The pre-built requests live for the whole run: keep the collector from walking them
    # mid-run (a pause here would be counted as the server's latency).
    gc.collect()
    gc.freeze()
    # Start together: the parent writes the start time into the spec; wait for it.
    start_at = float(spec.get("start_at", 0))
    with contextlib.suppress(ValueError):
        await asyncio.sleep(max(0.0, start_at - time.time()))
    if spec["mode"] == "open":
        result = await run_open(spec, requests)
    else:
        result = await run_closed(spec, requests)
    with open(out_path, "wb") as f:
        f.write(orjson.dumps(result))


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    asyncio.run(main(sys.argv[1], sys.argv[2]))

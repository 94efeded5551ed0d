"""The simulator's HTTP side: receives the matcher's notifications like the partner would.

`POST /notifications` verifies the Standard Webhooks signature (a bad one: 401, counted),
drops a repeated `webhook-id` (answered 200, counted as a duplicate, and kept apart so a
test can ask for the duplicates of its own posting) and records the rest.
Each notification is also checked against the matcher's published contract
(`matcher.contract.check`: a known type, its `data` as documented): one that breaks it is
still answered 200 (a partner would not know better) but kept in `GET /contract/violations`
with what was wrong, which the e2e suite asserts is empty at its end. A reset keeps them:
they are evidence, not state.
`POST /control/outage` makes it answer 503 (or another status) for a while, to play a
partner that is down. Everything is kept in memory: restart it to forget.

`POST /notifications` is answered by a bare ASGI path in front of FastAPI (`FastPath`):
the benchmarks run the simulator on the same two cores as the system they measure, and
FastAPI's routing and request objects made each receipt cost ~140 µs of CPU — a third
of a core in a rush that, in production, the partner's own machines would spend.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import orjson
from fastapi import FastAPI
from matcher.contract import check
from pydantic import BaseModel, ConfigDict, Field
from standardwebhooks import Webhook
from starlette.types import Receive, Scope, Send

from tools.partner_sim.config import SimConfig

RECEIVED_MAX = 200_000  # bound of what is kept in memory
VIOLATIONS_KEPT_MAX = 50  # examples of contract violations kept (all are counted)
FREEZE_EVERY = 1_000


class Outage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: float = Field(ge=0, le=3600)
    status: int = Field(503, ge=400, le=599)


class SimState:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        # Notifications recorded, by type and posting: what a waiting benchmark polls
        # (cheap at any size, unlike filtering `received`).
        self.counts: dict[tuple[str, str], int] = {}
        self.repeats: list[dict[str, Any]] = []  # the dropped duplicates, same shape
        self.seen: set[str] = set()
        self.duplicates = 0
        self.bad_signatures = 0
        self.refused_during_outage = 0
        self.outage_until = 0.0
        self.outage_status = 503
        # Never reset: a suite's final check must see every violation of its run.
        self.violations: list[dict[str, Any]] = []
        self.violations_count = 0

    def reset(self) -> None:
        self.received.clear()
        self.counts.clear()
        self.repeats.clear()
        self.seen.clear()
        self.duplicates = self.bad_signatures = self.refused_during_outage = 0
        self.outage_until = 0.0
        self.outage_status = 503


class Receiver:
    """What the simulator does with one notification: (status, answer body)."""

    def __init__(self, state: SimState, notify_secret: str) -> None:
        self.state = state
        self.verifier = Webhook(notify_secret) if notify_secret else None

    def receive(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        state = self.state
        if time.monotonic() < state.outage_until:
            state.refused_during_outage += 1
            return state.outage_status, {"error": "outage"}
        if self.verifier is None:
            state.bad_signatures += 1
            return 401, {"error": "no PARTNER_NOTIFY_SECRET configured"}
        try:
            self.verifier.verify(body, headers, json_parse=False)
        except Exception as exc:  # any failure to verify is a refusal, never a 500
            state.bad_signatures += 1
            return 401, {"error": f"bad signature: {exc}"}
        webhook_id = headers["webhook-id"]
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            return 400, {"error": "not JSON"}
        problems = check(body)
        if problems:
            state.violations_count += 1
            if len(state.violations) < VIOLATIONS_KEPT_MAX:
                state.violations.append(
                    {"webhook_id": webhook_id, "problems": problems, "body": message}
                )
        entry = {
            "webhook_id": webhook_id,
            "type": message.get("type"),
            "timestamp": message.get("timestamp"),
            "data": message.get("data", {}),
            "received_at": time.time(),
        }
        if webhook_id in state.seen:
            state.duplicates += 1
            if len(state.repeats) < RECEIVED_MAX:
                state.repeats.append(entry)
            return 200, {"status": "duplicate"}
        state.seen.add(webhook_id)
        counted = (str(entry["type"]), str(entry["data"].get("posting_id")))
        state.counts[counted] = state.counts.get(counted, 0) + 1
        if len(state.received) < RECEIVED_MAX:
            state.received.append(entry)
            if len(state.received) % FREEZE_EVERY == 0:
                # What is kept is kept until a reset: out of the collector's way, so a full
                # collection over tens of thousands of kept notifications does not stall
                # the receipt timestamps a latency benchmark reads.
                gc.freeze()
        return 200, {"status": "ok"}


class FastPath:
    """`POST /notifications` straight to the `Receiver`; everything else to FastAPI."""

    def __init__(self, app: FastAPI, receiver: Receiver) -> None:
        self.app = app
        self.receiver = receiver

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == "/notifications"
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        status, answer = self.receiver.receive(b"".join(chunks), headers)
        raw = orjson.dumps(answer)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(raw)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": raw})


def create_app(config: SimConfig | None = None) -> FastPath:
    config = config or SimConfig.load()
    state = SimState()
    app = FastAPI(title="Partner simulator", description=__doc__)
    app.state.sim = state

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": "partner_sim"}

    @app.get("/notifications")
    async def notifications(
        type: str | None = None,
        posting_id: str | None = None,
        booking_id: str | None = None,
        application_id: str | None = None,
        partner_user_id: str | None = None,
    ) -> dict[str, Any]:
        def wanted(n: dict[str, Any]) -> bool:
            data = n["data"]
            return (
                (type is None or n["type"] == type)
                and (posting_id is None or data.get("posting_id") == posting_id)
                and (booking_id is None or data.get("booking_id") == booking_id)
                and (application_id is None or data.get("application_id") == application_id)
                and (partner_user_id is None or data.get("partner_user_id") == partner_user_id)
            )

        items = [n for n in state.received if wanted(n)]
        filtered = any((type, posting_id, booking_id, application_id, partner_user_id))
        return {
            "items": items,
            "count": len(items),
            # Of the notifications asked for (all of them without a filter).
            "duplicates": (
                sum(1 for n in state.repeats if wanted(n)) if filtered else state.duplicates
            ),
            "bad_signatures": state.bad_signatures,
            "refused_during_outage": state.refused_during_outage,
        }

    @app.get("/notifications/count")
    async def count(posting_id: str | None = None, type_prefix: str = "") -> dict[str, int]:
        """How many notifications were recorded (each `webhook-id` once), of a posting and
        of types starting with `type_prefix`: for waiting on a run without listing it."""
        return {
            "count": sum(
                n
                for (kind, posting), n in state.counts.items()
                if kind.startswith(type_prefix) and posting_id in (None, posting)
            )
        }

    @app.get("/contract/violations")
    async def violations() -> dict[str, Any]:
        """Notifications received since the start that broke the published contract."""
        return {"count": state.violations_count, "items": state.violations}

    @app.post("/control/outage")
    async def outage(body: Outage) -> dict[str, Any]:
        state.outage_until = time.monotonic() + body.seconds
        state.outage_status = body.status
        return {"outage_for_s": body.seconds, "status": body.status}

    @app.post("/control/reset")
    async def reset() -> dict[str, str]:
        state.reset()
        return {"status": "reset"}

    return FastPath(app, Receiver(state, config.notify_secret))

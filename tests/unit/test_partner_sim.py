"""The partner simulator's receipt path (tools/partner_sim/app.py), in process: the bare
ASGI path that answers `POST /notifications` keeps every rule of the simulator — a good
signature recorded once, a repeated `webhook-id` answered 200 and counted as a duplicate,
a bad signature 401, an outage its status, a contract violation kept — and everything
else still reaches FastAPI."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import httpx
from matcher.contract import example
from standardwebhooks import Webhook

from tools.partner_sim.app import create_app
from tools.partner_sim.config import SimConfig

SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()


def signed(body: bytes, webhook_id: str | None = None) -> dict[str, str]:
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(SECRET).sign(webhook_id, now, body.decode()),
        "content-type": "application/json",
    }


async def test_notifications_are_verified_recorded_once_and_listed() -> None:
    app = create_app(SimConfig(matcher_url="http://x", webhook_secret="", notify_secret=SECRET))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as http:
        body = json.dumps(example("booking.waitlisted")).encode()
        headers = signed(body, "msg_one")
        first = await http.post("/notifications", content=body, headers=headers)
        again = await http.post("/notifications", content=body, headers=headers)
        forged = await http.post(
            "/notifications", content=body, headers={**headers, "webhook-id": "msg_two"}
        )
        broken = json.dumps({"type": "booking.waitlisted", "data": {}}).encode()
        kept = await http.post("/notifications", content=broken, headers=signed(broken))
        assert (first.status_code, first.json()) == (200, {"status": "ok"})
        assert (again.status_code, again.json()) == (200, {"status": "duplicate"})
        assert forged.status_code == 401 and forged.json()["error"].startswith("bad signature")
        assert kept.status_code == 200  # a partner would not know better
        garbled = await http.post("/notifications", content=b"{not", headers=signed(b"{not"))
        assert (garbled.status_code, garbled.json()) == (400, {"error": "not JSON"})
        listed = (await http.get("/notifications", params={"type": "booking.waitlisted"})).json()
        assert listed["count"] == 2 and listed["duplicates"] == 1
        posting_id = example("booking.waitlisted")["data"]["posting_id"]
        for params, expected in [
            ({"posting_id": posting_id, "type_prefix": "booking."}, 1),
            ({"type_prefix": "booking."}, 2),  # the broken one has no posting id
            ({"posting_id": posting_id, "type_prefix": "posting."}, 0),
            ({"posting_id": "pst_other"}, 0),
        ]:
            counted = await http.get("/notifications/count", params=params)
            assert counted.json() == {"count": expected}, params
        assert listed["bad_signatures"] == 1
        assert listed["items"][0]["webhook_id"] == "msg_one"
        violations = (await http.get("/contract/violations")).json()
        assert violations["count"] == 1

        outage = await http.post("/control/outage", json={"seconds": 60, "status": 503})
        assert outage.status_code == 200
        refused = await http.post("/notifications", content=body, headers=signed(body))
        assert (refused.status_code, refused.json()) == (503, {"error": "outage"})
        await http.post("/control/reset")
        after = (await http.get("/notifications")).json()
        assert after["count"] == 0 and after["refused_during_outage"] == 0
        assert (await http.get("/notifications/count")).json() == {"count": 0}
        assert (await http.get("/healthz")).json()["service"] == "partner_sim"


async def test_without_a_notify_secret_every_notification_is_refused() -> None:
    app = create_app(SimConfig(matcher_url="http://x", webhook_secret="", notify_secret=""))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as http:
        body = b"{}"
        r = await http.post("/notifications", content=body, headers=signed(body))
        assert r.status_code == 401
        assert (await http.get("/notifications")).json()["bad_signatures"] == 1

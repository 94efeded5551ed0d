"""The partner's side of the contract as a tiny client (Cosmic Python's `api_client` style):
one async function per call, each signing its webhook the way the partner does (Standard
Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`).

    async with httpx.AsyncClient() as http:
        r = await submit_application(http, application_id="app_1", posting_id="pst_1",
                                     citizen=citizen_profile("karrot_42"))
        assert r.status_code == 202

Secrets and URLs default to the environment / `.run/stack.env` (`SimConfig.load()`); pass
them explicitly to play a partner with a wrong secret or a stale clock.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import orjson
from standardwebhooks import Webhook

from tools.partner_sim.config import SIM_PORT_DEFAULT, SimConfig

SIM_URL_DEFAULT = f"http://127.0.0.1:{SIM_PORT_DEFAULT}"
WEBHOOK_PATH = "/v1/partner/webhooks"

_config: SimConfig | None = None


def config() -> SimConfig:
    global _config
    if _config is None:
        _config = SimConfig.load()
    return _config


def new_webhook_id() -> str:
    return "msg_" + uuid.uuid4().hex


def new_application_id() -> str:
    return "app_" + uuid.uuid4().hex[:20]


def new_partner_user_id() -> str:
    return "karrot_" + uuid.uuid4().hex[:16]


def citizen_profile(
    partner_user_id: str | None = None,
    *,
    dong: str = "수완동",
    neighbourhood_verified_at: datetime | None = None,
    birth_date: date = date(1990, 5, 17),
    child_safety_check: bool = True,
) -> dict[str, Any]:
    """A citizen as the partner describes one; by default eligible everywhere."""
    verified = neighbourhood_verified_at or datetime.now(UTC) - timedelta(days=30)
    return {
        "partner_user_id": partner_user_id or new_partner_user_id(),
        "dong": dong,
        "neighbourhood_verified_at": verified.isoformat(),
        "birth_date": birth_date.isoformat(),
        "child_safety_check": child_safety_check,
    }


def sign_headers(
    body: bytes, *, secret: str, webhook_id: str, timestamp: datetime | None = None
) -> dict[str, str]:
    """The Standard Webhooks headers for `body`."""
    at = timestamp or datetime.now(UTC)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, at, body.decode()),
        "content-type": "application/json",
    }


def webhook_body(kind: str, data: dict[str, Any], *, timestamp: datetime | None = None) -> bytes:
    at = timestamp or datetime.now(UTC)
    return orjson.dumps({"type": kind, "timestamp": at.isoformat(), "data": data})


async def send_webhook(
    http: httpx.AsyncClient,
    body: bytes,
    *,
    webhook_id: str | None = None,
    secret: str | None = None,
    timestamp: datetime | None = None,
    matcher_url: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST a signed body to the matcher's webhook endpoint (`headers` replace the signed
    ones, to send a forged or broken delivery)."""
    signed = sign_headers(
        body,
        secret=secret or config().webhook_secret,
        webhook_id=webhook_id or new_webhook_id(),
        timestamp=timestamp,
    )
    if headers is not None:
        signed = headers
    url = (matcher_url or config().matcher_url) + WEBHOOK_PATH
    return await http.post(url, content=body, headers=signed)


async def submit_application(
    http: httpx.AsyncClient,
    *,
    posting_id: str,
    citizen: dict[str, Any],
    application_id: str | None = None,
    webhook_id: str | None = None,
    secret: str | None = None,
    timestamp: datetime | None = None,
    matcher_url: str | None = None,
) -> httpx.Response:
    """`application.submitted`: a citizen applied for a posting."""
    body = webhook_body(
        "application.submitted",
        {
            "application_id": application_id or new_application_id(),
            "posting_id": posting_id,
            "citizen": citizen,
        },
        timestamp=timestamp,
    )
    return await send_webhook(
        http,
        body,
        webhook_id=webhook_id,
        secret=secret,
        timestamp=timestamp,
        matcher_url=matcher_url,
    )


async def withdraw_application(
    http: httpx.AsyncClient,
    *,
    application_id: str,
    posting_id: str,
    partner_user_id: str,
    webhook_id: str | None = None,
    secret: str | None = None,
    timestamp: datetime | None = None,
    matcher_url: str | None = None,
) -> httpx.Response:
    """`application.withdrawn`: the citizen withdrew their application (or booking)."""
    body = webhook_body(
        "application.withdrawn",
        {
            "application_id": application_id,
            "posting_id": posting_id,
            "partner_user_id": partner_user_id,
        },
        timestamp=timestamp,
    )
    return await send_webhook(
        http,
        body,
        webhook_id=webhook_id,
        secret=secret,
        timestamp=timestamp,
        matcher_url=matcher_url,
    )


# --- the simulator's own endpoints ---------------------------------------------------------


async def received_notifications(
    http: httpx.AsyncClient, *, sim_url: str = SIM_URL_DEFAULT, **filters: str
) -> dict[str, Any]:
    """What the simulator received: `items` (filter by type, posting_id, booking_id,
    application_id, partner_user_id), the count of duplicates among them, and the count of
    bad signatures."""
    response = await http.get(
        sim_url + "/notifications", params={k: v for k, v in filters.items() if v}
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


async def start_outage(
    http: httpx.AsyncClient, seconds: float, *, status: int = 503, sim_url: str = SIM_URL_DEFAULT
) -> None:
    """Make the simulator refuse notifications for `seconds` (503 by default)."""
    response = await http.post(
        sim_url + "/control/outage", json={"seconds": seconds, "status": status}
    )
    response.raise_for_status()

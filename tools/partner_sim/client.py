"""The partner's calls for suites that bring their own `httpx.AsyncClient` and matcher (the
matcher's integration and failure suites): each function is `tools.api_client`'s partner
surface (`PartnerWebhooks`, `Simulator`) over that client, answering the response as it is
(any status) so a test can look at its 202 / 400 / 401 / 413.

    async with httpx.AsyncClient() as http:
        r = await submit_application(http, application_id="app_1", posting_id="pst_1",
                                     citizen=citizen_profile("karrot_42"))
        assert r.status_code == 202

Secrets and URLs default to the environment / `.run/stack.env` (`SimConfig.load()`); pass
them explicitly to play a partner with a wrong secret or a stale clock.
"""

from __future__ import annotations

from typing import Any

import httpx

from tools.api_client.core import ANY, Json, Transport
from tools.api_client.partner import (
    WEBHOOK_PATH,
    PartnerWebhooks,
    Simulator,
    citizen_profile,
    new_application_id,
    new_partner_user_id,
    new_webhook_id,
    sign_headers,
    webhook_body,
)
from tools.partner_sim.config import SIM_PORT_DEFAULT, SimConfig

__all__ = [
    "SIM_URL_DEFAULT",
    "WEBHOOK_PATH",
    "citizen_profile",
    "new_application_id",
    "new_partner_user_id",
    "new_webhook_id",
    "received_notifications",
    "send_webhook",
    "sign_headers",
    "start_outage",
    "submit_application",
    "webhook_body",
    "withdraw_application",
]

SIM_URL_DEFAULT = f"http://127.0.0.1:{SIM_PORT_DEFAULT}"

_config: SimConfig | None = None


def config() -> SimConfig:
    global _config
    if _config is None:
        _config = SimConfig.load()
    return _config


def _partner(
    http: httpx.AsyncClient, matcher_url: str | None, secret: str | None
) -> PartnerWebhooks:
    url = matcher_url or config().matcher_url
    return PartnerWebhooks(Transport(http), url, secret or config().webhook_secret)


async def send_webhook(
    http: httpx.AsyncClient,
    body: bytes,
    *,
    matcher_url: str | None = None,
    secret: str | None = None,
    **delivery: Any,
) -> httpx.Response:
    """POST a signed body (`headers=` replace the signed ones, for a forged delivery)."""
    return await _partner(http, matcher_url, secret).send_webhook(body, expect=ANY, **delivery)


async def submit_application(
    http: httpx.AsyncClient,
    *,
    matcher_url: str | None = None,
    secret: str | None = None,
    **application: Any,
) -> httpx.Response:
    """`application.submitted` (`PartnerWebhooks.submit_application`)."""
    partner = _partner(http, matcher_url, secret)
    return await partner.submit_application(expect=ANY, **application)


async def withdraw_application(
    http: httpx.AsyncClient,
    *,
    matcher_url: str | None = None,
    secret: str | None = None,
    **withdrawal: Any,
) -> httpx.Response:
    """`application.withdrawn` (`PartnerWebhooks.withdraw_application`)."""
    partner = _partner(http, matcher_url, secret)
    return await partner.withdraw_application(expect=ANY, **withdrawal)


async def received_notifications(
    http: httpx.AsyncClient, *, sim_url: str = SIM_URL_DEFAULT, **filters: str
) -> Json:
    """What the simulator received (`Simulator.notifications`)."""
    return await Simulator(Transport(http), sim_url).notifications(**filters)


async def start_outage(
    http: httpx.AsyncClient, seconds: float, *, status: int = 503, sim_url: str = SIM_URL_DEFAULT
) -> None:
    """Make the simulator refuse notifications for `seconds` (503 by default)."""
    await Simulator(Transport(http), sim_url).start_outage(seconds, status)

"""The partner's side of the contract: webhooks in, signed per Standard Webhooks
(`webhook-id`, `webhook-timestamp`, `webhook-signature`) with the `standardwebhooks`
library, the pull API it reads with its API token (`PartnerPull`), and the partner
simulator's own endpoints (what it received, outages).

`send_webhook` returns the matcher's answer (202) and raises `ApiError` on any other status,
unless told `expect=ANY`: contract tests send forged, stale and broken deliveries and look
at the 400 / 401 / 413 they get. Pass `secret` or `timestamp` to play a partner with a wrong
secret or a stale clock, `headers` to replace the signed ones.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import orjson
from standardwebhooks import Webhook

from tools.api_client.core import ACCEPTED, OK, Expect, Json, Surface, Transport

WEBHOOK_PATH = "/v1/partner/webhooks"


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
    display_name: str | None = None,
) -> Json:
    """A citizen as the partner describes one; by default eligible everywhere (and with no
    display name: the field is optional)."""
    verified = neighbourhood_verified_at or datetime.now(UTC) - timedelta(days=30)
    profile: Json = {
        "partner_user_id": partner_user_id or new_partner_user_id(),
        "dong": dong,
        "neighbourhood_verified_at": verified.isoformat(),
        "birth_date": birth_date.isoformat(),
        "child_safety_check": child_safety_check,
    }
    if display_name is not None:
        profile["display_name"] = display_name
    return profile


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


def webhook_body(kind: str, data: Json, *, timestamp: datetime | None = None) -> bytes:
    at = timestamp or datetime.now(UTC)
    return orjson.dumps({"type": kind, "timestamp": at.isoformat(), "data": data})


class PartnerWebhooks(Surface):
    """`POST /v1/partner/webhooks` on the matcher, signed with the partner's secret."""

    idempotent_posts = False  # the webhook-id is the partner's idempotency key

    def __init__(self, transport: Transport, matcher_url: str, secret: str) -> None:
        super().__init__(transport, matcher_url, None)
        self.secret = secret

    async def send_webhook(
        self,
        body: bytes,
        *,
        webhook_id: str | None = None,
        secret: str | None = None,
        timestamp: datetime | None = None,
        headers: dict[str, str] | None = None,
        expect: Expect = ACCEPTED,
    ) -> httpx.Response:
        """POST a signed body (`headers` replace the signed ones, for a forged delivery)."""
        signed = sign_headers(
            body,
            secret=secret or self.secret,
            webhook_id=webhook_id or new_webhook_id(),
            timestamp=timestamp,
        )
        return await self.send(
            "POST", WEBHOOK_PATH, content=body, headers=signed if headers is None else headers,
            expect=expect,
        )  # fmt: skip

    async def submit_application(
        self,
        *,
        posting_id: str,
        citizen: Json,
        application_id: str | None = None,
        timestamp: datetime | None = None,
        **delivery: Any,
    ) -> httpx.Response:
        """`application.submitted`: a citizen applied for a posting."""
        data = {
            "application_id": application_id or new_application_id(),
            "posting_id": posting_id,
            "citizen": citizen,
        }
        body = webhook_body("application.submitted", data, timestamp=timestamp)
        return await self.send_webhook(body, timestamp=timestamp, **delivery)

    async def withdraw_application(
        self,
        *,
        application_id: str,
        posting_id: str,
        partner_user_id: str,
        timestamp: datetime | None = None,
        **delivery: Any,
    ) -> httpx.Response:
        """`application.withdrawn`: the citizen withdrew their application (or booking)."""
        data = {
            "application_id": application_id,
            "posting_id": posting_id,
            "partner_user_id": partner_user_id,
        }
        body = webhook_body("application.withdrawn", data, timestamp=timestamp)
        return await self.send_webhook(body, timestamp=timestamp, **delivery)

    async def reconfirm_booking(
        self,
        *,
        booking_id: str,
        partner_user_id: str,
        timestamp: datetime | None = None,
        **delivery: Any,
    ) -> httpx.Response:
        """`booking.reconfirmed`: the citizen answered `booking.reconfirm_requested`."""
        data = {"booking_id": booking_id, "partner_user_id": partner_user_id}
        body = webhook_body("booking.reconfirmed", data, timestamp=timestamp)
        return await self.send_webhook(body, timestamp=timestamp, **delivery)

    async def submit_payee(
        self,
        *,
        partner_user_id: str,
        bank_code: str,
        account_number: str,
        account_holder: str,
        consent_at: datetime | None = None,
        timestamp: datetime | None = None,
        **delivery: Any,
    ) -> httpx.Response:
        """`citizen.payee_submitted`: the citizen gave bank details for the allowance; the
        answer comes later as `payee.accepted` / `payee.rejected` naming the webhook-id."""
        data = {
            "partner_user_id": partner_user_id,
            "bank_code": bank_code,
            "account_number": account_number,
            "account_holder": account_holder,
            "consent_at": (consent_at or timestamp or datetime.now(UTC)).isoformat(),
        }
        body = webhook_body("citizen.payee_submitted", data, timestamp=timestamp)
        return await self.send_webhook(body, timestamp=timestamp, **delivery)


class PartnerPull(Surface):
    """The partner's pull API on the matcher (`GET /v1/partner/…`, the partner's token)."""

    async def list_postings(self, **params: Any) -> Json:
        """One page of postings by last change: `status`, `updated_since` (an ISO
        instant), `cursor`, `limit`."""
        query = {k: v for k, v in params.items() if v is not None}
        return await self.json("GET", "/v1/partner/postings", params=query)

    async def all_postings(self, **params: Any) -> list[Json]:
        """Every page of postings with these filters."""
        query = {k: v for k, v in params.items() if v is not None}
        return await self.all_items("/v1/partner/postings", "items", **query)

    async def get_posting(self, posting_id: str) -> Json | None:
        return await self.json_or_none("GET", f"/v1/partner/postings/{posting_id}")

    async def get_application(self, application_id: str) -> Json | None:
        return await self.json_or_none("GET", f"/v1/partner/applications/{application_id}")

    async def citizen_bookings(self, partner_user_id: str, **params: Any) -> Json | None:
        """One page of a citizen's bookings, soonest first (`from`: shifts ending at or
        after it; pass it as `from_`), or None when the matcher has never seen them."""
        query = {k.rstrip("_"): v for k, v in params.items() if v is not None}
        path = f"/v1/partner/citizens/{partner_user_id}/bookings"
        return await self.json_or_none("GET", path, params=query)

    async def citizen_allowance(
        self, partner_user_id: str, month: str | None = None
    ) -> Json | None:
        """The citizen's week against the weekly cap and month against the monthly cap, with
        its payment status (`month` `YYYY-MM`, the current Seoul month when None); None when
        the matcher has never seen them."""
        params = {"month": month} if month else {}
        path = f"/v1/partner/citizens/{partner_user_id}/allowance"
        return await self.json_or_none("GET", path, params=params)


class Simulator(Surface):
    """The partner simulator's own endpoints (`tools.partner_sim`)."""

    idempotent_posts = False

    def __init__(self, transport: Transport, sim_url: str) -> None:
        super().__init__(transport, sim_url, None)

    async def notifications(self, **filters: str | None) -> Json:
        """What it received: `items` (filter by type, posting_id, booking_id, application_id,
        partner_user_id), the duplicates among them, and the bad signatures."""
        params = {k: v for k, v in filters.items() if v}
        return await self.json("GET", "/notifications", params=params)

    async def contract_violations(self) -> Json:
        """Notifications received since it started that broke the published contract
        (`count`, and `items` with each one's problems and body); kept across resets."""
        return await self.json("GET", "/contract/violations")

    async def start_outage(self, seconds: float, status: int = 503) -> Json:
        """Make it refuse notifications for `seconds` (503 by default)."""
        body = {"seconds": seconds, "status": status}
        return await self.json("POST", "/control/outage", json=body, expect=OK)

    async def reset(self) -> Json:
        return await self.json("POST", "/control/reset", expect=OK)

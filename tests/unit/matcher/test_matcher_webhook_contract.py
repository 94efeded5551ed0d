"""The partner webhook contract (BRIEF §6) in-process: body validation says which field is
wrong, signatures from the partner simulator verify (also across a secret rotation), and
the simulator refuses our notifications when they are not signed with its secret."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pydantic
import pytest
from matcher.schemas import WEBHOOK_BODY, ApplicationSubmittedWebhook, webhook_problem

from shared.webhooks import SignatureError, sign, verify
from tools.partner_sim.app import create_app
from tools.partner_sim.client import citizen_profile, sign_headers, webhook_body
from tools.partner_sim.config import SimConfig


def _secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _submitted(**data_changes: object) -> bytes:
    data = {"application_id": "app_1", "posting_id": "pst_1", "citizen": citizen_profile("k_1")}
    data.update(data_changes)
    return webhook_body("application.submitted", data)


def test_a_valid_submission_parses() -> None:
    """The partner's `application.submitted` body parses into the typed model."""
    webhook = WEBHOOK_BODY.validate_json(_submitted())
    assert isinstance(webhook, ApplicationSubmittedWebhook)
    assert webhook.data.citizen.partner_user_id == "k_1"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_submitted(posting_id=""), "data.posting_id"),
        (_submitted(extra="x"), "data.extra"),
        (
            _submitted(citizen={**citizen_profile("k"), "birth_date": "17/05/1990"}),
            "data.citizen.birth_date",
        ),
        (
            _submitted(
                citizen={**citizen_profile("k"), "neighbourhood_verified_at": "2026-01-01T00:00:00"}
            ),
            "data.citizen.neighbourhood_verified_at",
        ),
        (webhook_body("application.exploded", {}), "type"),
        (
            b'{"type": "application.withdrawn", "timestamp": "2026-01-01T00:00:00Z", "data": {}}',
            "data.application_id",
        ),
    ],
)
def test_bad_payloads_name_the_field(body: bytes, field: str) -> None:
    """A bad body becomes a 400 problem whose `errors` name the offending field."""
    with pytest.raises(pydantic.ValidationError) as info:
        WEBHOOK_BODY.validate_json(body)
    problem = webhook_problem(info.value)
    assert problem.status == 400
    assert field in {e["field"] for e in problem.errors or []}


def test_not_json_is_a_bad_payload() -> None:
    """Garbage is refused as a 400 (never a 500)."""
    with pytest.raises(pydantic.ValidationError) as info:
        WEBHOOK_BODY.validate_json(b"\x00not json")
    assert webhook_problem(info.value).status == 400


def test_simulator_signatures_verify_and_rotation_accepts_either_secret() -> None:
    """A webhook signed by the simulator verifies against the configured secrets; during a
    rotation (old and new configured) both verify; an unknown secret does not."""
    old, new, other = _secret(), _secret(), _secret()
    body = _submitted()
    for used in (old, new):
        headers = sign_headers(body, secret=used, webhook_id="msg_1")
        assert verify(body, headers, [old, new]) == "msg_1"
    with pytest.raises(SignatureError):
        verify(body, sign_headers(body, secret=other, webhook_id="msg_1"), [old, new])


def test_tampered_stale_and_malformed_deliveries_are_signature_errors() -> None:
    """Changed body, 6-minute-old timestamp, garbage signature, missing header: all raise
    SignatureError (a 401), never anything else."""
    secret = _secret()
    body = _submitted()
    good = sign_headers(body, secret=secret, webhook_id="msg_1")
    stale = sign_headers(
        body, secret=secret, webhook_id="msg_1", timestamp=datetime.now(UTC) - timedelta(minutes=6)
    )
    cases = [
        (body.replace(b"pst_1", b"pst_2"), good),
        (body, stale),
        (body, {**good, "webhook-signature": "v1,@@@"}),
        (body, {**good, "webhook-signature": "garbage"}),
        (body, {**good, "webhook-timestamp": "nan"}),
        (body, {k: v for k, v in good.items() if k != "webhook-id"}),
    ]
    for payload, headers in cases:
        with pytest.raises(SignatureError):
            verify(payload, headers, [secret])


def test_a_signed_body_that_is_not_json_still_verifies() -> None:
    """Verification does not parse: a signed non-JSON body is the parser's 400, not a 401."""
    secret = _secret()
    body = b"not json at all"
    assert verify(body, sign_headers(body, secret=secret, webhook_id="m"), [secret]) == "m"


async def test_simulator_checks_our_signatures_and_dedupes() -> None:
    """The simulator records a notification signed with PARTNER_NOTIFY_SECRET once per
    webhook-id, refuses a wrongly signed one with 401 and counts it, and plays outages."""
    secret = _secret()
    app = create_app(
        SimConfig(matcher_url="http://unused", webhook_secret=_secret(), notify_secret=secret)
    )
    body = orjson.dumps(
        {"type": "booking.confirmed", "timestamp": "t", "data": {"booking_id": "bkg_1"}}
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as http:
        headers = sign(secret, "msg_a", datetime.now(UTC), body)
        assert (await http.post("/notifications", content=body, headers=headers)).status_code == 200
        assert (await http.post("/notifications", content=body, headers=headers)).status_code == 200
        forged = sign(_secret(), "msg_b", datetime.now(UTC), body)
        assert (await http.post("/notifications", content=body, headers=forged)).status_code == 401
        seen = (await http.get("/notifications", params={"booking_id": "bkg_1"})).json()
        assert seen["count"] == 1 and seen["duplicates"] == 1 and seen["bad_signatures"] == 1
        other = (await http.get("/notifications", params={"booking_id": "bkg_2"})).json()
        assert other["count"] == 0 and other["duplicates"] == 0  # counted per filter
        await http.post("/control/outage", json={"seconds": 60})
        headers_c = sign(secret, "msg_c", datetime.now(UTC), body)
        assert (
            await http.post("/notifications", content=body, headers=headers_c)
        ).status_code == 503

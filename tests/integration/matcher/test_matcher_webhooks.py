"""The partner webhook endpoint on the running matcher: signed deliveries become decisions
the partner hears about; replays, forgeries and bad payloads change nothing."""

from __future__ import annotations

import asyncio
import base64
import secrets
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from shared.events import BookingConfirmed
from tools.partner_sim import client

from .helpers import BookingsWatcher, Matcher, Simulator, new_posting_id, publish_posting

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def secret(stack_env: dict[str, str]) -> str:
    return stack_env["PARTNER_WEBHOOK_SECRET"].split(",")[0]


async def test_signed_webhook_books_and_the_partner_hears_it_signed(
    matcher_ready: Matcher,
    sim: Simulator,
    producer: AIOKafkaProducer,
    bookings: BookingsWatcher,
    http: httpx.AsyncClient,
    secret: str,
) -> None:
    """A signed application for an open posting is answered 202, booked (BookingConfirmed on
    matcher.bookings.v1), and the simulator receives `posting.published` and
    `booking.confirmed` with signatures it verified (it refuses and counts bad ones)."""
    matcher = matcher_ready
    posting = await publish_posting(producer, await matcher.now(), capacity=2)
    await matcher.posting_open(posting.posting_id)
    before = (await sim.notifications())["bad_signatures"]
    citizen = client.citizen_profile()
    application_id = client.new_application_id()
    r = await client.submit_application(
        http,
        posting_id=posting.posting_id,
        citizen=citizen,
        application_id=application_id,
        secret=secret,
        matcher_url=matcher.url,
    )
    assert r.status_code == 202, r.text
    [confirmed] = await bookings.wait_for(posting.posting_id, 1, "BookingConfirmed")
    event = BookingConfirmed.model_validate(confirmed.data)
    assert event.application_id == application_id
    assert event.citizen_id.startswith("ctz_")
    assert (
        event.citizen_display
        == citizen["partner_user_id"][:3] + "…" + citizen["partner_user_id"][-2:]
    )
    assert (event.starts_at, event.ends_at) == (posting.starts_at, posting.ends_at)
    [note] = await sim.wait_for(1, type="booking.confirmed", application_id=application_id)
    assert note["data"]["booking_id"] == event.booking_id
    assert note["data"]["partner_user_id"] == citizen["partner_user_id"]
    assert note["webhook_id"].startswith("msg_")
    await sim.wait_for(1, type="posting.published", posting_id=posting.posting_id)
    assert (await sim.notifications())["bad_signatures"] == before
    app = await matcher.decided(application_id)
    assert app["status"] == "confirmed" and app["booking_id"] == event.booking_id


async def test_replayed_webhook_is_accepted_and_applied_once(
    matcher_ready: Matcher,
    sim: Simulator,
    producer: AIOKafkaProducer,
    bookings: BookingsWatcher,
    http: httpx.AsyncClient,
    secret: str,
) -> None:
    """The same delivery sent 5 times (same webhook-id), and once more under a new
    webhook-id with the same application id: every answer is 202, one booking exists."""
    matcher = matcher_ready
    posting = await publish_posting(producer, await matcher.now(), capacity=3)
    await matcher.posting_open(posting.posting_id)
    citizen = client.citizen_profile()
    application_id = client.new_application_id()
    webhook_id = client.new_webhook_id()
    sent_at = datetime.now(UTC)
    answers = await asyncio.gather(
        *[
            client.submit_application(
                http,
                posting_id=posting.posting_id,
                citizen=citizen,
                application_id=application_id,
                webhook_id=webhook_id,
                timestamp=sent_at,
                secret=secret,
                matcher_url=matcher.url,
            )
            for _ in range(5)
        ]
    )
    assert [a.status_code for a in answers] == [202] * 5
    again = await client.submit_application(
        http,
        posting_id=posting.posting_id,
        citizen=citizen,
        application_id=application_id,
        secret=secret,
        matcher_url=matcher.url,
    )
    assert again.status_code == 202
    # A later application to the same posting is decided after the replays (same partition).
    marker = client.new_application_id()
    await client.submit_application(
        http,
        posting_id=posting.posting_id,
        citizen=client.citizen_profile(),
        application_id=marker,
        secret=secret,
        matcher_url=matcher.url,
    )
    await bookings.wait_for(posting.posting_id, 2, "BookingConfirmed")
    await matcher.decided(marker)
    decided = bookings.of_posting(
        posting.posting_id, "BookingConfirmed", "BookingWaitlisted", "BookingRejected"
    )
    assert [e.data["application_id"] for e in decided].count(application_id) == 1
    await sim.wait_for(1, application_id=application_id)
    assert await matcher.notification_count(application_id=application_id) == 1
    assert (await matcher.posting(posting.posting_id) or {})["confirmed_count"] == 2


async def test_forged_stale_and_broken_deliveries_are_refused_and_change_nothing(
    matcher_ready: Matcher,
    producer: AIOKafkaProducer,
    bookings: BookingsWatcher,
    http: httpx.AsyncClient,
    secret: str,
) -> None:
    """Tampered body, wrong secret, stale timestamp (6 min), malformed signature and
    missing headers: 401 problem+json each, never 5xx; none of them is ever decided (a good
    delivery sent after them is, so they would have been by then)."""
    matcher = matcher_ready
    posting = await publish_posting(producer, await matcher.now(), capacity=5)
    await matcher.posting_open(posting.posting_id)
    bad_ids = [client.new_application_id() for _ in range(6)]
    wrong_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()

    def body(application_id: str) -> bytes:
        return client.webhook_body(
            "application.submitted",
            {
                "application_id": application_id,
                "posting_id": posting.posting_id,
                "citizen": client.citizen_profile(),
            },
        )

    tampered_body = body(bad_ids[0])
    signed = client.sign_headers(tampered_body, secret=secret, webhook_id=client.new_webhook_id())
    tampered = tampered_body.replace(b'"dong":"', b'"dong":"x')
    stale_at = datetime.now(UTC) - timedelta(minutes=6)
    future_at = datetime.now(UTC) + timedelta(minutes=6)
    good_headers = client.sign_headers(body(bad_ids[4]), secret=secret, webhook_id="msg_x")
    deliveries = [
        (tampered, signed),
        (
            body(bad_ids[1]),
            client.sign_headers(body(bad_ids[1]), secret=wrong_secret, webhook_id="m1"),
        ),
        (
            body(bad_ids[2]),
            client.sign_headers(
                body(bad_ids[2]), secret=secret, webhook_id="m2", timestamp=stale_at
            ),
        ),
        (
            body(bad_ids[3]),
            client.sign_headers(
                body(bad_ids[3]), secret=secret, webhook_id="m3", timestamp=future_at
            ),
        ),
        (body(bad_ids[4]), {**good_headers, "webhook-signature": "v1,not-base64!!"}),
        (body(bad_ids[5]), {k: v for k, v in good_headers.items() if k != "webhook-signature"}),
    ]
    for payload, headers in deliveries:
        r = await http.post(matcher.url + client.WEBHOOK_PATH, content=payload, headers=headers)
        assert r.status_code == 401, (r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "invalid_signature"
    marker = client.new_application_id()
    ok = await client.submit_application(
        http,
        posting_id=posting.posting_id,
        citizen=client.citizen_profile(),
        application_id=marker,
        secret=secret,
        matcher_url=matcher.url,
    )
    assert ok.status_code == 202
    await matcher.decided(marker)
    for application_id in bad_ids:
        assert await matcher.application(application_id) is None
    decided = await bookings.wait_for(posting.posting_id, 1)
    assert {e.data["application_id"] for e in decided} == {marker}


async def test_bad_payloads_get_400_naming_the_field_and_big_bodies_413(
    matcher_ready: Matcher, http: httpx.AsyncClient, secret: str
) -> None:
    """A signed delivery with a bad body is 400 problem+json listing the field; a body over
    the limit is 413 before anything is parsed."""
    matcher = matcher_ready
    cases = [
        (
            {
                "type": "application.submitted",
                "timestamp": datetime.now(UTC).isoformat(),
                "data": {
                    "application_id": "app_1",
                    "posting_id": new_posting_id(),
                    "citizen": {**client.citizen_profile(), "birth_date": "not a date"},
                },
            },
            "data.citizen.birth_date",
        ),
        (
            {
                "type": "application.withdrawn",
                "timestamp": datetime.now(UTC).isoformat(),
                "data": {"application_id": "a"},
            },
            "data.posting_id",
        ),
        ({"type": "user.deleted", "timestamp": datetime.now(UTC).isoformat(), "data": {}}, "type"),
    ]
    for payload, field in cases:
        raw = orjson.dumps(payload)
        r = await client.send_webhook(http, raw, secret=secret, matcher_url=matcher.url)
        assert r.status_code == 400, r.text
        problem = r.json()
        assert r.headers["content-type"].startswith("application/problem+json")
        assert field in {e["field"] for e in problem["errors"]}, problem
    raw = b"{not json"
    r = await client.send_webhook(http, raw, secret=secret, matcher_url=matcher.url)
    assert r.status_code == 400
    huge = client.webhook_body(
        "application.submitted",
        {
            "application_id": "a",
            "posting_id": "p",
            "citizen": client.citizen_profile(),
            "pad": "x" * 20_000,
        },
    )
    r = await client.send_webhook(http, huge, secret=secret, matcher_url=matcher.url)
    assert r.status_code == 413
    assert r.json()["code"] == "body_too_large"

"""Partner notifications from the running matcher: they survive a partner outage, keep
their order per booking, and a refused one is parked for an operator to re-send."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from tools.partner_sim import client

from .helpers import Matcher, Simulator, eventually, publish_posting

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def secret(stack_env: dict[str, str]) -> str:
    return stack_env["PARTNER_WEBHOOK_SECRET"].split(",")[0]


async def test_notifications_arrive_after_an_outage_none_lost_none_duplicated(
    matcher_ready: Matcher,
    sim: Simulator,
    producer: AIOKafkaProducer,
    http: httpx.AsyncClient,
    secret: str,
) -> None:
    """The partner answers 503 for 4 s while 8 decisions and a withdrawal happen; after it
    is back every notification arrives exactly once per webhook-id, each booking's in
    order (confirmed before cancelled, waitlisted before promoted)."""
    matcher = matcher_ready
    posting = await publish_posting(producer, await matcher.now(), capacity=3)
    await sim.wait_for(1, type="posting.published", posting_id=posting.posting_id)
    before = await sim.notifications()
    await sim.outage(4)
    citizens = [client.citizen_profile() for _ in range(8)]
    ids = [client.new_application_id() for _ in citizens]
    for citizen, application_id in zip(citizens, ids, strict=True):
        r = await client.submit_application(
            http,
            posting_id=posting.posting_id,
            citizen=citizen,
            application_id=application_id,
            secret=secret,
            matcher_url=matcher.url,
        )
        assert r.status_code == 202
    await matcher.decided(ids[-1])
    r = await client.withdraw_application(
        http,
        application_id=ids[0],
        posting_id=posting.posting_id,
        partner_user_id=citizens[0]["partner_user_id"],
        secret=secret,
        matcher_url=matcher.url,
    )
    assert r.status_code == 202

    # 8 decisions + 1 cancellation + 1 promotion.
    async def booking_notes() -> list[dict[str, Any]] | None:
        items = (await sim.notifications(posting_id=posting.posting_id))["items"]
        found = [n for n in items if n["type"].startswith("booking.")]
        return found if len(found) >= 10 else None

    notes = await eventually(booking_notes, timeout_s=60, what="10 booking notifications")
    await asyncio.sleep(0.5)  # anything extra (a duplicate) would arrive now
    notes = [
        n
        for n in (await sim.notifications(posting_id=posting.posting_id))["items"]
        if n["type"].startswith("booking.")
    ]
    after = await sim.notifications()
    assert after["refused_during_outage"] > before["refused_during_outage"]
    assert (await sim.notifications(posting_id=posting.posting_id))["duplicates"] == 0
    assert len({n["webhook_id"] for n in notes}) == len(notes) == 10
    assert Counter(n["type"] for n in notes) == {
        "booking.confirmed": 3,
        "booking.waitlisted": 5,
        "booking.cancelled": 1,
        "booking.promoted": 1,
    }
    by_application: dict[str, list[str]] = {}
    for n in notes:  # in the order the simulator received them
        by_application.setdefault(n["data"]["application_id"], []).append(n["type"])
    assert by_application[ids[0]] == ["booking.confirmed", "booking.cancelled"]
    assert by_application[ids[3]] == ["booking.waitlisted", "booking.promoted"]
    assert await matcher.notifications("failed", posting_id=posting.posting_id) == []
    delivered = await matcher.notifications("delivered", posting_id=posting.posting_id)
    assert max(n["attempts"] for n in delivered) > 1  # retried with backoff, then delivered
    assert all(n["last_status_code"] == 200 for n in delivered)


async def test_a_refused_notification_is_parked_and_resent_in_order(
    matcher_ready: Matcher,
    sim: Simulator,
    producer: AIOKafkaProducer,
    http: httpx.AsyncClient,
    secret: str,
) -> None:
    """The partner refuses with 400: the notification is parked `failed` at once (listed by
    the admin API), the booking's later notification waits behind it, and a re-send
    delivers both, in order, under their original webhook-ids."""
    matcher = matcher_ready
    posting = await publish_posting(producer, await matcher.now(), capacity=2)
    await sim.wait_for(1, type="posting.published", posting_id=posting.posting_id)
    await sim.outage(3, status=400)
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
    assert r.status_code == 202

    async def parked() -> list[dict[str, object]] | None:
        return await matcher.notifications("failed", application_id=application_id) or None

    [failed] = await eventually(parked, what="a parked notification")
    assert failed["type"] == "booking.confirmed" and failed["last_status_code"] == 400
    await asyncio.sleep(3)  # the outage ends
    r = await client.withdraw_application(
        http,
        application_id=application_id,
        posting_id=posting.posting_id,
        partner_user_id=citizen["partner_user_id"],
        secret=secret,
        matcher_url=matcher.url,
    )
    assert r.status_code == 202

    async def cancel_written() -> list[dict[str, object]] | None:
        return await matcher.notifications("pending", application_id=application_id) or None

    [waiting] = await eventually(cancel_written, what="the cancellation notification")
    assert waiting["type"] == "booking.cancelled"
    await asyncio.sleep(1)  # it would have been sent by now if it did not wait
    assert (await sim.notifications(application_id=application_id))["count"] == 0
    r = await http.post(
        f"{matcher.url}/v1/admin/notifications/{failed['notification_id']}/resend",
        headers=matcher.headers,
    )
    assert r.status_code == 200, r.text
    notes = await sim.wait_for(2, application_id=application_id)
    assert [n["type"] for n in notes] == ["booking.confirmed", "booking.cancelled"]
    assert notes[0]["webhook_id"] == failed["notification_id"]
    assert notes[1]["webhook_id"] == waiting["notification_id"]
    r = await http.post(
        f"{matcher.url}/v1/admin/notifications/{failed['notification_id']}/resend",
        headers=matcher.headers,
    )
    assert r.status_code == 409

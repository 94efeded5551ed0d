"""Issue 18 on the running matcher: withdrawals that do not match are refused out loud
(`application.refused`), and the allowance's payout events build the citizen's month in the
read model once each, with `payout.accrued` / `payout.reversed` told to the partner."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from shared.events import (
    PayoutAccrued,
    PayoutCapped,
    PayoutFailed,
    PayoutHeldBack,
    PayoutPaid,
    PayoutReversed,
    PeriodClosed,
    PostingCancelled,
    PostingClosed,
)
from tools.partner_sim import client

from .helpers import (
    Matcher,
    Simulator,
    eventually,
    new_posting_id,
    produce,
    publish_posting,
)
from .test_matcher_bookings import apply, withdraw

pytestmark = pytest.mark.stack

# A month no other test pays in: PeriodClosed closes it for every citizen.
PERIOD = "2001-01"


@pytest.fixture(scope="module")
def secret(stack_env: dict[str, str]) -> str:
    return stack_env["PARTNER_WEBHOOK_SECRET"].split(",")[0]


async def test_withdrawals_that_do_not_match_change_nothing_and_are_refused(
    matcher_ready: Matcher, sim: Simulator, producer: AIOKafkaProducer, http: httpx.AsyncClient,
    secret: str,
) -> None:  # fmt: skip
    """Each mismatch is 202 at the webhook, the booking stays confirmed, and one
    `application.refused` says why: another citizen, another posting, or never submitted."""
    matcher = matcher_ready
    now = await matcher.now()
    posting = await publish_posting(producer, now, capacity=2)
    other = await publish_posting(producer, now, capacity=2)
    await matcher.posting_open(posting.posting_id)
    await matcher.posting_open(other.posting_id)
    citizen = client.citizen_profile()
    puid = str(citizen["partner_user_id"])
    booked = await apply(http, matcher, secret, posting.posting_id, citizen)
    assert (await matcher.decided(booked))["status"] == "confirmed"
    never = client.new_application_id()
    cases = [
        (posting.posting_id, booked, "someone-else", "citizen_mismatch"),
        (other.posting_id, booked, puid, "posting_mismatch"),
        (posting.posting_id, never, puid, "unknown_application"),
    ]
    for posting_id, application_id, sent_puid, _ in cases:
        await withdraw(http, matcher, secret, posting_id, application_id, sent_puid)
    refusals = await sim.wait_for(2, type="application.refused", application_id=booked)
    assert sorted(n["data"]["reason"] for n in refusals) == ["citizen_mismatch", "posting_mismatch"]
    [unknown] = await sim.wait_for(1, type="application.refused", application_id=never)
    assert unknown["data"]["reason"] == "unknown_application"
    assert unknown["data"]["partner_user_id"] == puid
    assert (await matcher.application(booked) or {})["status"] == "confirmed"
    assert (await sim.notifications(type="booking.cancelled", application_id=booked))["items"] == []


async def _allowance(matcher: Matcher, puid: str, month: str) -> dict[str, Any]:
    r = await matcher.http.get(
        f"{matcher.url}/v1/admin/citizens/{puid}/allowance",
        headers=matcher.headers,
        params={"month": month},
    )
    r.raise_for_status()
    view: dict[str, Any] = r.json()
    return view


async def test_payout_events_build_the_month_once_and_are_told(
    matcher_ready: Matcher, sim: Simulator, producer: AIOKafkaProducer, http: httpx.AsyncClient,
    secret: str,
) -> None:  # fmt: skip
    """PayoutAccrued (delivered twice: one event id) adds its won once and is told once;
    PayoutCapped keeps the cap applied; PayoutReversed takes it back and is told;
    PeriodClosed closes the month."""
    matcher = matcher_ready
    now = await matcher.now()
    posting = await publish_posting(producer, now, capacity=2)
    await matcher.posting_open(posting.posting_id)
    citizen = client.citizen_profile()
    puid = str(citizen["partner_user_id"])
    app_id = await apply(http, matcher, secret, posting.posting_id, citizen)
    app = await matcher.decided(app_id)
    citizen_id, booking_id = str(app["citizen_id"]), str(app["booking_id"])
    attendance_id = "att_" + uuid.uuid4().hex[:12]
    accrued = PayoutAccrued(
        citizen_id=citizen_id, period=PERIOD, posting_id=posting.posting_id,
        booking_id=booking_id, attendance_id=attendance_id, minutes_paid=120,
        hourly_rate_won=10_000, gross_won=20_000, accrued_won=15_000, capped_won=5_000,
    )  # fmt: skip
    envelope = accrued.envelope(producer="test", occurred_at=now)
    for _ in range(2):  # a redelivery: the same event id
        await producer.send_and_wait(accrued.TOPIC, envelope.to_bytes(), key=envelope.key.encode())
    await produce(
        producer,
        PayoutCapped(
            citizen_id=citizen_id, period=PERIOD, attendance_id=attendance_id,
            capped_won=5_000, cap_won=15_000,
        ),
        now,
    )  # fmt: skip

    async def month_is(**expected: object) -> dict[str, Any] | None:
        view = await _allowance(matcher, puid, PERIOD)
        month = view["allowance"]
        return view if all(month[k] == v for k, v in expected.items()) else None

    view = await eventually(
        lambda: month_is(accrued_won=15_000, capped_won=5_000, cap_won=15_000),
        what="the month to show the accrual and the cap",
    )
    assert view["allowance"]["payment_status"] == "accruing"
    assert view["allowance"]["cap_left_won"] == 0
    [note] = await sim.wait_for(1, type="payout.accrued", booking_id=booking_id)
    assert note["data"]["amount_won"] == 15_000 and note["data"]["capped_won"] == 5_000
    assert note["data"]["month"] == PERIOD and note["data"]["application_id"] == app_id
    await asyncio.sleep(1)  # a second payout.accrued would have been sent by now
    assert (
        len((await sim.notifications(type="payout.accrued", booking_id=booking_id))["items"]) == 1
    )

    reversed_ = PayoutReversed(
        citizen_id=citizen_id, period=PERIOD, posting_id=posting.posting_id,
        booking_id=booking_id, attendance_id=attendance_id, minutes_reversed=120,
        gross_reversed_won=20_000, accrued_reversed_won=15_000, capped_released_won=5_000,
    )  # fmt: skip
    await produce(producer, reversed_, now)
    await eventually(
        lambda: month_is(accrued_won=0, capped_won=0, gross_won=0, minutes_paid=0),
        what="the reversal to take the accrual back",
    )
    [told] = await sim.wait_for(1, type="payout.reversed", booking_id=booking_id)
    assert told["data"]["amount_reversed_won"] == 15_000

    closed_at = datetime(2001, 2, 3, tzinfo=UTC)
    closing = PeriodClosed(period=PERIOD, closed_at=closed_at, citizens_count=1, payable_won=0)
    await produce(producer, closing, now + timedelta(seconds=1))
    await eventually(lambda: month_is(payment_status="closed"), what="the month to show closed")


async def test_applications_for_ended_postings_are_refused_at_once(
    matcher_ready: Matcher, sim: Simulator, producer: AIOKafkaProducer, http: httpx.AsyncClient,
    secret: str,
) -> None:  # fmt: skip
    """A known posting that has started or closed, and a posting cancelled before the matcher
    ever knew it (cancelled while its budget was pending), refuse an application within
    seconds with the reason, never holding it for the unknown-posting wait."""
    matcher = matcher_ready
    now = await matcher.now()
    started = await publish_posting(producer, now, starts_in=timedelta(minutes=-1))
    closed = await publish_posting(producer, now)
    for p in (started, closed):
        await matcher.posting_open(p.posting_id)
    await produce(
        producer,
        PostingClosed(posting_id=closed.posting_id, facility_id=closed.facility_id, closed_at=now),
        now,
    )
    never_known = new_posting_id()
    await produce(
        producer,
        PostingCancelled(
            posting_id=never_known, facility_id="fac_matcher_tests", reason="facility",
            cancelled_at=now,
        ),
        now,
    )  # fmt: skip

    async def is_closed() -> bool:
        return (await matcher.posting(closed.posting_id) or {}).get("status") == "closed"

    await eventually(is_closed, what="the matcher to close the posting")
    expected = {
        started.posting_id: "posting_started",
        closed.posting_id: "posting_closed",
        never_known: "posting_cancelled",
    }
    # The cancellation of the unknown posting is applied before an application sent now
    # (the same posting key, one partition, in order).
    ids = {p: await apply(http, matcher, secret, p) for p in expected}
    for posting_id, app_id in ids.items():
        [note] = await sim.wait_for(1, timeout_s=10, type="booking.rejected", application_id=app_id)
        assert note["data"]["reason"] == expected[posting_id], posting_id
        assert (await matcher.application(app_id) or {})["status"] == "rejected"


async def test_payment_results_and_a_hold_back_show_on_the_month_and_are_told_once(
    matcher_ready: Matcher, sim: Simulator, producer: AIOKafkaProducer, http: httpx.AsyncClient,
    secret: str,
) -> None:  # fmt: skip
    """Issue 16: PayoutHeldBack shows the month `held_back` with its reason; PayoutPaid
    (delivered twice: one event id) shows `paid` and sends one `payout.paid`; PayoutFailed
    shows `failed` with the bank's reason and sends `payout.failed`."""
    matcher = matcher_ready
    now = await matcher.now()
    posting = await publish_posting(producer, now, capacity=2)
    await matcher.posting_open(posting.posting_id)
    citizen = client.citizen_profile()
    puid = str(citizen["partner_user_id"])
    app = await matcher.decided(await apply(http, matcher, secret, posting.posting_id, citizen))
    citizen_id = str(app["citizen_id"])
    held, paid_month, failed_month = "2001-02", "2001-03", "2001-04"

    async def status(month: str, expected: str) -> dict[str, Any] | None:
        shown = (await _allowance(matcher, puid, month))["allowance"]
        return shown if shown["payment_status"] == expected else None

    await produce(
        producer, PayoutHeldBack(citizen_id=citizen_id, period=held, amount_won=7_000), now
    )
    shown = await eventually(lambda: status(held, "held_back"), what="the month held back")
    assert shown["status_reason"] == "no_payee_details"

    paid = PayoutPaid(citizen_id=citizen_id, period=paid_month, amount_won=12_340)
    envelope = paid.envelope(producer="test", occurred_at=now)
    for _ in range(2):  # a redelivery: the same event id
        await producer.send_and_wait(paid.TOPIC, envelope.to_bytes(), key=envelope.key.encode())
    await eventually(lambda: status(paid_month, "paid"), what="the month paid")
    [told] = await sim.wait_for(1, type="payout.paid", partner_user_id=puid)
    assert told["data"] == {"partner_user_id": puid, "month": paid_month, "amount_won": 12_340}

    failed = PayoutFailed(
        citizen_id=citizen_id, period=failed_month, amount_won=5_000, reason="해지 계좌"
    )
    await produce(producer, failed, now)
    shown = await eventually(lambda: status(failed_month, "failed"), what="the month failed")
    assert shown["status_reason"] == "해지 계좌"
    [note] = await sim.wait_for(1, type="payout.failed", partner_user_id=puid)
    assert note["data"]["amount_won"] == 5_000 and note["data"]["carried"] is True
    await asyncio.sleep(1)  # a second payout.paid would have been sent by now
    assert len((await sim.notifications(type="payout.paid", partner_user_id=puid))["items"]) == 1

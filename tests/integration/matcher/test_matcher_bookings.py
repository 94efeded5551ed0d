"""Booking flows on the running matcher (BRIEF §4 flows 2–4, §5): rushes, eligibility,
withdrawal and promotion, strikes and suspension, posting changes, draws, and applications
that arrive before their posting."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import date, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from shared.events import (
    AttendanceRecorded,
    PostingCancelled,
    PostingUpdated,
)
from tools.partner_sim import client

from .helpers import (
    BookingsWatcher,
    Matcher,
    Simulator,
    eventually,
    new_posting_id,
    produce,
    publish_posting,
)

pytestmark = pytest.mark.stack

DECISIONS = ("BookingConfirmed", "BookingWaitlisted", "BookingRejected")


@pytest.fixture(scope="module")
def secret(stack_env: dict[str, str]) -> str:
    return stack_env["PARTNER_WEBHOOK_SECRET"].split(",")[0]


async def apply(
    http: httpx.AsyncClient,
    matcher: Matcher,
    secret: str,
    posting_id: str,
    citizen: dict[str, object] | None = None,
    application_id: str | None = None,
) -> str:
    application_id = application_id or client.new_application_id()
    r = await client.submit_application(
        http,
        posting_id=posting_id,
        citizen=citizen or client.citizen_profile(),
        application_id=application_id,
        secret=secret,
        matcher_url=matcher.url,
    )
    assert r.status_code == 202, r.text
    return application_id


async def withdraw(
    http: httpx.AsyncClient,
    matcher: Matcher,
    secret: str,
    posting_id: str,
    application_id: str,
    partner_user_id: str,
) -> None:
    r = await client.withdraw_application(
        http,
        application_id=application_id,
        posting_id=posting_id,
        partner_user_id=partner_user_id,
        secret=secret,
        matcher_url=matcher.url,
    )
    assert r.status_code == 202, r.text


async def test_rush_of_200_for_5_seats(
    matcher_ready: Matcher,
    sim: Simulator,
    producer: AIOKafkaProducer,
    bookings: BookingsWatcher,
    http: httpx.AsyncClient,
    secret: str,
) -> None:
    """200 concurrent applications for a 5-seat posting: every one answered 202, exactly 5
    confirmed and 195 waitlisted (positions 1..195, no gaps), one decision per application
    on Kafka and one notification per application at the partner."""
    matcher = matcher_ready
    posting = await publish_posting(producer, await matcher.now(), capacity=5)
    await matcher.posting_open(posting.posting_id)
    ids = [client.new_application_id() for _ in range(200)]
    answers = await asyncio.gather(
        *[
            client.submit_application(
                http,
                posting_id=posting.posting_id,
                citizen=client.citizen_profile(),
                application_id=application_id,
                secret=secret,
                matcher_url=matcher.url,
            )
            for application_id in ids
        ]
    )
    assert Counter(a.status_code for a in answers) == {202: 200}
    decided = await bookings.wait_for(posting.posting_id, 200, *DECISIONS, timeout_s=60)
    assert Counter(e.type for e in decided) == {"BookingConfirmed": 5, "BookingWaitlisted": 195}
    assert sorted(e.data["application_id"] for e in decided) == sorted(ids)
    positions = sorted(
        e.data["waitlist_position"] for e in decided if e.type == "BookingWaitlisted"
    )
    assert positions == list(range(1, 196))
    view = await matcher.posting(posting.posting_id)
    assert view is not None
    assert (view["confirmed_count"], view["waitlisted_count"]) == (5, 195)
    notes = await sim.wait_for(200, posting_id=posting.posting_id, timeout_s=60)
    booking_notes = [n for n in notes if n["type"].startswith("booking.")]
    assert Counter(n["type"] for n in booking_notes) == {
        "booking.confirmed": 5,
        "booking.waitlisted": 195,
    }
    assert len({n["webhook_id"] for n in booking_notes}) == 200


async def test_eligibility_refusals_carry_stable_reasons(
    matcher_ready: Matcher,
    sim: Simulator,
    producer: AIOKafkaProducer,
    http: httpx.AsyncClient,
    secret: str,
) -> None:
    """Not a Gwangsan-gu resident, under 19 on the shift date, no child-safety check where
    required, a second application, an overlapping booking, and the weekly hour cap: each
    refused with its reason code, told to the partner as `booking.rejected`."""
    matcher = matcher_ready
    now = await matcher.now()
    shift_start = now + timedelta(days=3)
    children = await publish_posting(
        producer, now, starts_in=timedelta(days=3), capacity=10, requires_child_safety_check=True
    )
    await matcher.posting_open(children.posting_id)
    shift_day = shift_start.date()
    too_young = date(shift_day.year - 19, shift_day.month, 1) + timedelta(days=40)
    cases = {
        "not_resident": client.citizen_profile(dong="농성1동"),
        "under_age": client.citizen_profile(birth_date=too_young),
        "child_safety_check_required": client.citizen_profile(child_safety_check=False),
    }
    ids = {
        reason: await apply(http, matcher, secret, children.posting_id, citizen)
        for reason, citizen in cases.items()
    }
    for reason, application_id in ids.items():
        app = await matcher.decided(application_id)
        assert (app["status"], app["reason"]) == ("rejected", reason)
        [note] = await sim.wait_for(1, type="booking.rejected", application_id=application_id)
        assert note["data"]["reason"] == reason

    # One citizen: a 7 h booking, then a duplicate, an overlap and a weekly-cap refusal.
    citizen = client.citizen_profile()
    long_one = await publish_posting(producer, now, starts_in=timedelta(days=10), minutes=420)
    overlapping = await publish_posting(
        producer, now, starts_in=timedelta(days=10, hours=6), minutes=120
    )
    # 7 h + 7 h in the same ISO week (same Seoul day, hours later) is over 13 h.
    same_week = await publish_posting(
        producer, now, starts_in=timedelta(days=10, hours=8), minutes=420
    )
    for p in (long_one, overlapping, same_week):
        await matcher.posting_open(p.posting_id)
    first = await apply(http, matcher, secret, long_one.posting_id, citizen)
    assert (await matcher.decided(first))["status"] == "confirmed"
    duplicate = await apply(http, matcher, secret, long_one.posting_id, citizen)
    clash = await apply(http, matcher, secret, overlapping.posting_id, citizen)
    capped = await apply(http, matcher, secret, same_week.posting_id, citizen)
    assert (await matcher.decided(duplicate))["reason"] == "duplicate_application"
    assert (await matcher.decided(clash))["reason"] == "overlap"
    assert (await matcher.decided(capped))["reason"] == "weekly_hours_cap"


async def test_withdrawal_promotes_the_head_of_the_waitlist(
    matcher_ready: Matcher,
    sim: Simulator,
    producer: AIOKafkaProducer,
    bookings: BookingsWatcher,
    http: httpx.AsyncClient,
    secret: str,
) -> None:
    """A confirmed citizen withdraws two days ahead: BookingCancelled (by citizen, no strike),
    the first waitlisted is promoted (BookingPromoted), the partner hears both in order."""
    matcher = matcher_ready
    posting = await publish_posting(producer, await matcher.now(), capacity=1)
    await matcher.posting_open(posting.posting_id)
    first_citizen = client.citizen_profile()
    first = await apply(http, matcher, secret, posting.posting_id, first_citizen)
    assert (await matcher.decided(first))["status"] == "confirmed"
    second = await apply(http, matcher, secret, posting.posting_id)
    third = await apply(http, matcher, secret, posting.posting_id)
    assert (await matcher.decided(third))["waitlist_position"] == 2
    await withdraw(
        http, matcher, secret, posting.posting_id, first, first_citizen["partner_user_id"]
    )
    [cancelled] = await bookings.wait_for(posting.posting_id, 1, "BookingCancelled")
    assert cancelled.data["application_id"] == first
    assert cancelled.data["cancelled_by"] == "citizen"
    assert cancelled.data["was_confirmed"] is True and cancelled.data["strike"] is False
    [promoted] = await bookings.wait_for(posting.posting_id, 1, "BookingPromoted")
    assert promoted.data["application_id"] == second
    assert (await matcher.application(second) or {})["status"] == "confirmed"
    assert (await matcher.application(third) or {})["waitlist_position"] == 1
    [note] = await sim.wait_for(1, type="booking.promoted", application_id=second)
    first_notes = await sim.wait_for(2, application_id=first)
    assert [n["type"] for n in first_notes] == ["booking.confirmed", "booking.cancelled"]
    assert note["data"]["status"] == "confirmed"


async def test_late_withdrawal_is_a_strike_and_promotion_stops_an_hour_before(
    matcher_ready: Matcher,
    producer: AIOKafkaProducer,
    bookings: BookingsWatcher,
    http: httpx.AsyncClient,
    secret: str,
) -> None:
    """Withdrawing 90 minutes before the start is a strike and still promotes (more than 1 h
    ahead); withdrawing 50 minutes before is a strike and promotes nobody."""
    matcher = matcher_ready
    now = await matcher.now()
    for starts_in, promotes in ((timedelta(minutes=90), True), (timedelta(minutes=50), False)):
        posting = await publish_posting(producer, now, starts_in=starts_in, capacity=1)
        await matcher.posting_open(posting.posting_id)
        citizen = client.citizen_profile()
        booked = await apply(http, matcher, secret, posting.posting_id, citizen)
        assert (await matcher.decided(booked))["status"] == "confirmed"
        waiting = await apply(http, matcher, secret, posting.posting_id)
        assert (await matcher.decided(waiting))["status"] == "waitlisted"
        await withdraw(
            http, matcher, secret, posting.posting_id, booked, citizen["partner_user_id"]
        )
        [cancelled] = await bookings.wait_for(posting.posting_id, 1, "BookingCancelled")
        assert cancelled.data["strike"] is True
        standing = await matcher.citizen(cancelled.data["citizen_id"])
        assert [s["kind"] for s in standing["strikes"]] == ["late_cancellation"]
        if promotes:
            await bookings.wait_for(posting.posting_id, 1, "BookingPromoted")
        else:
            # The withdrawal's transaction is the one that would have promoted: it is done.
            assert (await matcher.application(waiting) or {})["status"] == "waitlisted"
            assert bookings.of_posting(posting.posting_id, "BookingPromoted") == []


async def test_three_no_shows_suspend_the_citizen(
    matcher_ready: Matcher,
    producer: AIOKafkaProducer,
    http: httpx.AsyncClient,
    secret: str,
) -> None:
    """Three AttendanceRecorded no-shows within 90 days suspend booking for 30 days: the
    citizen's next application is refused `suspended`."""
    matcher = matcher_ready
    now = await matcher.now()
    citizen = client.citizen_profile()
    postings = [
        await publish_posting(producer, now, starts_in=timedelta(days=20 + 7 * i), minutes=60)
        for i in range(4)
    ]
    for p in postings:
        await matcher.posting_open(p.posting_id)
    booked = []
    for p in postings[:3]:
        app = await matcher.decided(await apply(http, matcher, secret, p.posting_id, citizen))
        assert app["status"] == "confirmed"
        booked.append((p, app))
    for p, app in booked:
        await produce(
            producer,
            AttendanceRecorded(
                attendance_id="att_" + uuid.uuid4().hex[:16],
                posting_id=p.posting_id,
                facility_id=p.facility_id,
                booking_id=app["booking_id"],
                citizen_id=app["citizen_id"],
                status="no_show",
                minutes=0,
                scheduled_minutes=60,
                shift_starts_at=p.starts_at,
            ),
            now,
        )
    citizen_id = booked[0][1]["citizen_id"]

    async def suspended() -> dict[str, object] | None:
        standing = await matcher.citizen(citizen_id)
        return standing if standing["suspended"] else None

    standing = await eventually(suspended, what="suspension")
    assert len(standing["strikes"]) == 3  # type: ignore[arg-type]
    refused = await apply(http, matcher, secret, postings[3].posting_id, citizen)
    app = await matcher.decided(refused)
    assert (app["status"], app["reason"]) == ("rejected", "suspended")


async def test_posting_cancelled_cancels_every_booking_without_strikes(
    matcher_ready: Matcher,
    sim: Simulator,
    producer: AIOKafkaProducer,
    bookings: BookingsWatcher,
    http: httpx.AsyncClient,
    secret: str,
) -> None:
    """The facility cancels: confirmed and waitlisted bookings are cancelled by the facility
    (no strike), later applications are refused `posting_cancelled`, the partner is told the
    posting closed (status cancelled)."""
    matcher = matcher_ready
    now = await matcher.now()
    posting = await publish_posting(producer, now, starts_in=timedelta(minutes=70), capacity=1)
    await matcher.posting_open(posting.posting_id)
    ids = [await apply(http, matcher, secret, posting.posting_id) for _ in range(2)]
    await bookings.wait_for(posting.posting_id, 2, *DECISIONS)
    await produce(
        producer,
        PostingCancelled(
            posting_id=posting.posting_id,
            facility_id=posting.facility_id,
            reason="facility",
            cancelled_at=now,
        ),
        now,
    )
    cancelled = await bookings.wait_for(posting.posting_id, 2, "BookingCancelled")
    assert {e.data["application_id"] for e in cancelled} == set(ids)
    assert all(e.data["cancelled_by"] == "facility" and not e.data["strike"] for e in cancelled)
    assert sorted(e.data["was_confirmed"] for e in cancelled) == [False, True]
    late = await apply(http, matcher, secret, posting.posting_id)
    assert (await matcher.decided(late))["reason"] == "posting_cancelled"
    [closed] = await sim.wait_for(1, type="posting.closed", posting_id=posting.posting_id)
    assert closed["data"]["status"] == "cancelled"


async def test_posting_update_keeps_confirmed_seats_and_more_seats_promote(
    matcher_ready: Matcher,
    sim: Simulator,
    producer: AIOKafkaProducer,
    bookings: BookingsWatcher,
    http: httpx.AsyncClient,
    secret: str,
) -> None:
    """Capacity 2 → 1 with 2 confirmed keeps 2 (nobody loses a seat); then 2 → 4 promotes
    the two waiting; the partner gets `posting.updated` each time."""
    matcher = matcher_ready
    now = await matcher.now()
    posting = await publish_posting(producer, now, capacity=2)
    await matcher.posting_open(posting.posting_id)
    for _ in range(4):
        await apply(http, matcher, secret, posting.posting_id)
    await bookings.wait_for(posting.posting_id, 4, *DECISIONS)
    terms = posting.model_dump(exclude={"reservation_id"})
    for revision, capacity in ((1, 1), (2, 4)):
        await produce(
            producer,
            PostingUpdated(
                **{**terms, "capacity": capacity},
                revision=revision,
                previous_capacity=posting.capacity,
                previous_starts_at=posting.starts_at,
                previous_ends_at=posting.ends_at,
            ),
            now,
        )
        await sim.wait_for(revision, type="posting.updated", posting_id=posting.posting_id)
        if revision == 1:
            assert (await matcher.posting(posting.posting_id) or {})["capacity"] == 2
    promoted = await bookings.wait_for(posting.posting_id, 2, "BookingPromoted")
    assert len(promoted) == 2
    view = await matcher.posting(posting.posting_id)
    assert view is not None and (view["capacity"], view["confirmed_count"]) == (4, 4)


async def test_draw_is_weighted_recorded_and_verifiable(
    matcher_ready: Matcher,
    sim: Simulator,
    producer: AIOKafkaProducer,
    bookings: BookingsWatcher,
    http: httpx.AsyncClient,
    secret: str,
) -> None:
    """A draw posting collects applications until `applications_close_at`, then draws: 3
    confirmed, the rest waitlisted in draw order; the record holds seed and inputs, and
    re-running it from them matches."""
    matcher = matcher_ready
    now = await matcher.now()
    posting = await publish_posting(
        producer,
        now,
        capacity=3,
        selection="draw",
        applications_close_at=now + timedelta(seconds=6),
    )
    await matcher.posting_open(posting.posting_id)
    ids = [await apply(http, matcher, secret, posting.posting_id) for _ in range(8)]

    async def recorded() -> dict[str, object] | None:
        return await matcher.application(ids[-1])

    assert (await eventually(recorded, what="pending application"))["status"] == "pending"
    decided = await bookings.wait_for(posting.posting_id, 8, *DECISIONS, timeout_s=30)
    assert Counter(e.type for e in decided) == {"BookingConfirmed": 3, "BookingWaitlisted": 5}
    r = await http.get(
        f"{matcher.url}/v1/admin/draws/{posting.posting_id}", headers=matcher.headers
    )
    record = r.json()
    assert sorted(i["application_id"] for i in record["inputs"]) == sorted(ids)
    assert set(record["outcome"]["confirmed"]) == {
        e.data["application_id"] for e in decided if e.type == "BookingConfirmed"
    }
    waitlisted = sorted(
        (e for e in decided if e.type == "BookingWaitlisted"),
        key=lambda e: e.data["waitlist_position"],
    )
    assert [e.data["application_id"] for e in waitlisted] == record["outcome"]["waitlisted"]
    r = await http.post(
        f"{matcher.url}/v1/admin/draws/{posting.posting_id}/verify", headers=matcher.headers
    )
    assert r.json()["matches"] is True
    notes = await sim.wait_for(3, type="booking.confirmed", posting_id=posting.posting_id)
    assert len(notes) == 3


async def test_an_application_waits_for_its_posting(
    matcher_ready: Matcher,
    producer: AIOKafkaProducer,
    bookings: BookingsWatcher,
    http: httpx.AsyncClient,
    secret: str,
) -> None:
    """An application for a posting not published yet is held, not lost; when the
    PostingPublished arrives it is decided (confirmed)."""
    matcher = matcher_ready
    posting_id = new_posting_id()
    held = await apply(http, matcher, secret, posting_id)

    async def is_held() -> dict[str, object] | None:
        app = await matcher.application(held)
        return app if app is not None and app["status"] == "held" else None

    await eventually(is_held, what="held application")
    await publish_posting(producer, await matcher.now(), posting_id=posting_id, capacity=1)
    [confirmed] = await bookings.wait_for(posting_id, 1, "BookingConfirmed")
    assert confirmed.data["application_id"] == held


async def test_an_application_for_a_posting_that_never_comes_is_rejected_in_time(
    matcher_ready: Matcher,
    sim: Simulator,
    http: httpx.AsyncClient,
    secret: str,
    stack_env: dict[str, str],
) -> None:
    """Held longer than the configured wait (the shared clock is moved past it), an
    application is rejected `unknown_posting` and the partner is told."""
    matcher = matcher_ready
    held = await apply(http, matcher, secret, new_posting_id())

    async def is_held() -> dict[str, object] | None:
        app = await matcher.application(held)
        return app if app is not None and app["status"] == "held" else None

    await eventually(is_held, what="held application")
    wait_s = int(stack_env.get("HELD_APPLICATION_WAIT_S", "600"))
    await matcher.set_clock(await matcher.now() + timedelta(seconds=wait_s + 60))
    app = await matcher.decided(held)
    assert (app["status"], app["reason"]) == ("rejected", "unknown_posting")
    [note] = await sim.wait_for(1, type="booking.rejected", application_id=held)
    assert note["data"]["reason"] == "unknown_posting"

"""The matcher's use cases: each takes an open transaction, locks the posting it is about,
asks the domain what to do, writes the state, the Kafka events and the partner
notifications — all in that one transaction.

Every function here is called from a consumer handler (once per event id), a sweeper, or an
admin endpoint. Each one that touches a posting's bookings starts with `lock_posting`
(advisory lock + `SELECT … FOR UPDATE`; `lock_postings` for a batch of postings, in id
order), so decisions about one posting never race, whatever topic or timer caused them; the
database constraints hold the invariants besides.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from matcher import messages, store
from matcher.domain import draw as draw_rules
from matcher.domain.decide import (
    Arrival,
    Decision,
    PostingView,
    Waiting,
    decide_arrivals,
    plan_promotions,
)
from matcher.domain.eligibility import (
    SEOUL,
    Booked,
    Profile,
    standing_refusal,
    week_window,
)
from matcher.domain.policy import Policy, Reason
from matcher.domain.strikes import Strike, is_late_cancellation, suspension_due
from matcher.messages import BookingFacts
from matcher.store import Notification
from shared import metrics, outbox
from shared.events import (
    ApplicationReceived,
    ApplicationWithdrawn,
    AttendanceCorrected,
    AttendanceRecorded,
    Event,
    PostingCancelled,
    PostingClosed,
    PostingPublished,
    PostingUpdated,
)

log = logging.getLogger(__name__)

# Bound of the promotion loop (each round promotes or drops at least one waiting booking).
PROMOTION_ROUNDS_MAX = 1_000


@dataclass(frozen=True)
class Deps:
    """What the use cases need besides the connection."""

    policy: Policy
    now: Callable[[], datetime]
    held_application_wait: timedelta


_OUTCOME_OF = {
    "BookingConfirmed": "confirmed",
    "BookingWaitlisted": "waitlisted",
    "BookingRejected": "rejected",
    "BookingPromoted": "promoted",
    "BookingCancelled": "cancelled",
}


class Effects:
    """Events and notifications a transaction will write, in order."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.notes: list[Notification] = []

    def add(self, pair: tuple[Event, Notification]) -> None:
        self.events.append(pair[0])
        self.notes.append(pair[1])

    async def write(self, conn: asyncpg.Connection, at: datetime) -> None:
        for event in self.events:
            outcome = _OUTCOME_OF.get(event.TYPE)
            if outcome is not None:
                metrics.MATCHER_DECISIONS.labels(outcome).inc()
        await outbox.add_many(conn, self.events, producer=store.PRODUCER, occurred_at=at)
        await store.add_notifications(conn, self.notes)
        self.events, self.notes = [], []


def _profile(event: ApplicationReceived) -> Profile:
    c = event.citizen
    return Profile(c.dong, c.neighbourhood_verified_at, c.birth_date, c.child_safety_check)


@dataclass(frozen=True)
class _Item:
    """An application about to be decided, with its citizen (whose row is locked)."""

    application_id: str
    webhook_id: str
    received_at: datetime
    profile: Profile
    citizen_id: str
    citizen_no: int
    partner_user_id: str
    citizen_display: str
    suspended_until: datetime | None


# --- applications -----------------------------------------------------------------------


async def decide_applications(
    conn: asyncpg.Connection,
    deps: Deps,
    applications: Sequence[ApplicationReceived],
) -> None:
    """Decide a batch of applications (arrival order; any number of postings) in this
    transaction with a fixed number of statements, whatever the number of postings: one
    lock of all the postings, one look-up of known ids, one citizen upsert, one hold of the
    applications for unknown postings, then `_decide` (one statement per step for all).

    The outcome is the one of deciding posting by posting in posting id order: each
    posting's applications in arrival order, and a booking confirmed for an earlier
    posting counts for a later one's overlap and weekly-cap checks. Applications already
    recorded (a replay under another webhook id) are skipped. For a posting not seen yet,
    applications are held until its PostingPublished (bounded).
    """
    now = deps.now()
    by_posting: dict[str, list[ApplicationReceived]] = {}
    for a in applications:
        by_posting.setdefault(a.posting_id, []).append(a)
    posting_ids = sorted(by_posting)
    rows = await store.lock_postings(conn, posting_ids)
    known = await store.known_application_ids(conn, [a.application_id for a in applications])
    fresh: dict[str, list[ApplicationReceived]] = {}
    for posting_id in posting_ids:
        for a in by_posting[posting_id]:
            if a.application_id in known:
                log.info("application %s already recorded; skipped", a.application_id)
                continue
            known.add(a.application_id)
            fresh.setdefault(posting_id, []).append(a)
    if not fresh:
        return
    citizens = await store.upsert_citizens(
        conn,
        [
            store.CitizenIn(a.citizen.partner_user_id, _profile(a), a.received_at)
            for apps in fresh.values()
            for a in apps
        ],
    )
    held: list[store.HeldApplication] = []
    groups: list[tuple[asyncpg.Record, list[_Item]]] = []
    for posting_id, apps in fresh.items():
        row = rows.get(posting_id)
        if row is None:
            held.extend(
                store.HeldApplication(
                    application_id=a.application_id,
                    posting_id=posting_id,
                    citizen_id=citizens[a.citizen.partner_user_id]["citizen_id"],
                    webhook_id=a.webhook_id,
                    received_at=a.received_at,
                    held_until=now + deps.held_application_wait,
                )
                for a in apps
            )
            log.info("posting %s not known yet: %d application(s) held", posting_id, len(apps))
            continue
        groups.append((row, [_item(a, citizens[a.citizen.partner_user_id]) for a in apps]))
    await store.hold_applications(conn, held)
    await _decide(conn, deps, groups, now, Effects())


def _item(a: ApplicationReceived, c: asyncpg.Record) -> _Item:
    return _Item(
        application_id=a.application_id,
        webhook_id=a.webhook_id,
        received_at=a.received_at,
        profile=_profile(a),
        citizen_id=c["citizen_id"],
        citizen_no=c["citizen_no"],
        partner_user_id=c["partner_user_id"],
        citizen_display=c["display"],
        suspended_until=c["suspended_until"],
    )


async def _decide(
    conn: asyncpg.Connection,
    deps: Deps,
    groups: Sequence[tuple[asyncpg.Record, Sequence[_Item]]],
    now: datetime,
    effects: Effects,
) -> None:
    """Decide each posting's items (its locked row, the items in arrival order) and write
    the decisions, events and notifications of all of them (`effects` may already hold
    some): one statement per step, whatever the number of postings.

    Postings are decided in the given order (posting id order), and each one's confirmed
    bookings are added to what the next ones see, as if they had been written in between.
    """
    if not groups:
        await effects.write(conn, now)
        return
    postings = [store.posting_view(row) for row, _ in groups]
    live = await store.live_applications(
        conn,
        [(row["posting_id"], it.citizen_id) for row, items in groups for it in items],
    )
    windows = {p.posting_id: week_window(p.shift) for p in postings}
    booked = await store.confirmed_bookings_in(
        conn, [it.citizen_id for _, items in groups for it in items], windows.values()
    )
    decided: list[tuple[PostingView, Sequence[_Item], list[Decision]]] = []
    waitlisted: dict[str, int] = {}
    for posting, (_, items) in zip(postings, groups, strict=True):
        posting_id = posting.posting_id
        window_start, window_end = windows[posting_id]
        arrivals = [
            Arrival(
                application_id=it.application_id,
                citizen_id=it.citizen_id,
                received_at=it.received_at,
                profile=it.profile,
                suspended_until=it.suspended_until,
                booked=tuple(
                    b
                    for other, b in booked.get(it.citizen_id, ())
                    if other != posting_id and b.starts_at < window_end and b.ends_at > window_start
                ),
                has_live_application=(posting_id, it.citizen_id) in live,
            )
            for it in items
        ]
        decisions = decide_arrivals(posting, arrivals, deps.policy)
        for it, d in zip(items, decisions, strict=True):
            if d.outcome == "confirmed":  # seen by the postings decided after this one
                booked.setdefault(it.citizen_id, []).append(
                    (posting_id, Booked(posting.shift.starts_at, posting.shift.ends_at))
                )
        waitlisted[posting_id] = sum(1 for d in decisions if d.outcome == "waitlisted")
        decided.append((posting, items, decisions))
    queue_next = await store.take_queue_positions_of(conn, waitlisted)
    rows: list[store.NewApplication] = []
    for posting, items, decisions in decided:
        posting_id = posting.posting_id
        queue_pos = queue_next.get(posting_id, 0)
        for item, decision in zip(items, decisions, strict=True):
            booking_id = (
                store.new_booking_id() if decision.outcome in ("confirmed", "waitlisted") else None
            )
            position: int | None = None
            if decision.outcome == "waitlisted":
                position, queue_pos = queue_pos, queue_pos + 1
            rows.append(
                store.NewApplication(
                    application_id=item.application_id,
                    posting_id=posting_id,
                    citizen_id=item.citizen_id,
                    citizen_no=item.citizen_no,
                    webhook_id=item.webhook_id,
                    received_at=item.received_at,
                    status=decision.outcome,
                    reason=decision.reason.value if decision.reason else None,
                    booking_id=booking_id,
                    queue_pos=position,
                    starts_at=posting.shift.starts_at,
                    ends_at=posting.shift.ends_at,
                    decided_at=None if decision.outcome == "pending" else now,
                )
            )
            facts = BookingFacts(
                application_id=item.application_id,
                posting_id=posting_id,
                citizen_id=item.citizen_id,
                citizen_display=item.citizen_display,
                partner_user_id=item.partner_user_id,
                booking_id=booking_id,
                starts_at=posting.shift.starts_at,
                ends_at=posting.shift.ends_at,
            )
            if decision.outcome == "confirmed":
                effects.add(messages.confirmed(facts, now))
            elif decision.outcome == "waitlisted":
                assert decision.waitlist_position is not None
                effects.add(messages.waitlisted(facts, now, decision.waitlist_position))
            elif decision.outcome == "rejected":
                assert decision.reason is not None
                effects.add(messages.rejected(facts, now, decision.reason.value))
    await store.insert_applications(conn, rows)
    await effects.write(conn, now)


async def withdraw_application(
    conn: asyncpg.Connection, deps: Deps, event: ApplicationWithdrawn
) -> None:
    """The citizen withdrew: a booking is cancelled (a strike if late), the waitlist moves."""
    now = deps.now()
    row = await store.lock_posting(conn, event.posting_id)
    app = await store.application(conn, event.application_id) if row is not None else None
    if app is None:
        held = await store.held_application(conn, event.application_id)
        if (
            held is not None
            and held["status"] == "held"
            and held["partner_user_id"] == event.partner_user_id
        ):
            await store.resolve_held(
                conn, [event.application_id], status="withdrawn", reason="withdrawn", at=now
            )
            return
        log.warning("withdrawal of unknown application %s ignored", event.application_id)
        return
    if app["posting_id"] != event.posting_id or app["partner_user_id"] != event.partner_user_id:
        log.warning(
            "withdrawal of %s does not match its posting or citizen; ignored",
            event.application_id,
        )
        return
    status = app["status"]
    if status == "pending":
        await store.cancel_applications(
            conn,
            event.posting_id,
            [event.application_id],
            status="withdrawn",
            reason=Reason.WITHDRAWN.value,
            cancelled_by="citizen",
            at=event.received_at,
        )
        return
    if status not in ("confirmed", "waitlisted"):
        log.info("withdrawal of %s (already %s) changes nothing", event.application_id, status)
        return
    was_confirmed = status == "confirmed"
    strike = was_confirmed and is_late_cancellation(
        event.received_at, app["starts_at"], deps.policy
    )
    await store.cancel_applications(
        conn,
        event.posting_id,
        [event.application_id],
        status="cancelled",
        reason=Reason.WITHDRAWN.value,
        cancelled_by="citizen",
        at=event.received_at,
        strike=strike,
    )
    effects = Effects()
    effects.add(
        messages.cancelled(
            BookingFacts.of(app),
            now,
            cancelled_by="citizen",
            reason=Reason.WITHDRAWN.value,
            was_confirmed=was_confirmed,
            strike=strike,
        )
    )
    if strike:
        await record_strike(
            conn, deps, app["citizen_id"], app["booking_id"], "late_cancellation", event.received_at
        )
    if was_confirmed:
        await _promote(conn, deps, event.posting_id, now, effects)
    await effects.write(conn, now)


async def _promote(
    conn: asyncpg.Connection, deps: Deps, posting_id: str, now: datetime, effects: Effects
) -> None:
    """Give free seats to the head of the waitlist while promotion is allowed. The caller
    holds the posting's lock."""
    for _ in range(PROMOTION_ROUNDS_MAX):
        row = await conn.fetchrow("SELECT * FROM postings WHERE posting_id = $1", posting_id)
        assert row is not None
        posting = store.posting_view(row)
        if posting.seats_free <= 0 or posting.status != "open":
            return
        heads = await store.waitlist_head(conn, posting_id, posting.seats_free * 2 + 8)
        if not heads:
            return
        citizens = await store.lock_citizens(conn, [h["citizen_id"] for h in heads])
        window_start, window_end = week_window(posting.shift)
        booked = await store.confirmed_bookings(
            conn, list(citizens), window_start, window_end, exclude_posting_id=posting_id
        )
        plan = plan_promotions(
            posting,
            [
                Waiting(
                    h["application_id"],
                    h["citizen_id"],
                    citizens[h["citizen_id"]]["suspended_until"],
                    tuple(booked.get(h["citizen_id"], ())),
                )
                for h in heads
            ],
            deps.policy,
            now,
        )
        if not plan.promote and not plan.drop:
            return
        by_id = {h["application_id"]: h for h in heads}
        for application_id, reason in plan.drop:
            await store.cancel_applications(
                conn,
                posting_id,
                [application_id],
                status="cancelled",
                reason=reason.value,
                cancelled_by="system",
                at=now,
            )
            effects.add(
                messages.cancelled(
                    BookingFacts.of(by_id[application_id]),
                    now,
                    cancelled_by="system",
                    reason=reason.value,
                    was_confirmed=False,
                )
            )
        await store.set_decisions(
            conn, posting_id, [(a, "confirmed", None, None, None) for a in plan.promote], now
        )
        for application_id in plan.promote:
            effects.add(messages.promoted(BookingFacts.of(by_id[application_id]), now))
    log.error("promotion on %s stopped after %d rounds", posting_id, PROMOTION_ROUNDS_MAX)


# --- postings ---------------------------------------------------------------------------


async def open_posting(conn: asyncpg.Connection, deps: Deps, event: PostingPublished) -> None:
    """A posting opens: tell the partner, then decide the applications that waited for it."""
    now = deps.now()
    row = await store.lock_posting(conn, event.posting_id)
    if row is not None:
        log.info("posting %s already open; publish ignored", event.posting_id)
        return
    await store.insert_posting(conn, event, waitlist_max=deps.policy.waitlist_length_max, now=now)
    effects = Effects()  # the posting's note first, then its held applications' decisions
    effects.notes.append(messages.posting_note("posting.published", event, now, status="open"))
    held = await store.held_for_posting(conn, event.posting_id)
    if not held:
        await effects.write(conn, now)
        return
    row = await conn.fetchrow("SELECT * FROM postings WHERE posting_id = $1", event.posting_id)
    assert row is not None
    # Held citizens' standing is read (and their rows locked) now, like any arrival's.
    locked = await store.lock_citizens(conn, [h["citizen_id"] for h in held])
    items = [
        _Item(
            application_id=h["application_id"],
            webhook_id=h["webhook_id"],
            received_at=h["received_at"],
            profile=store.profile_of(h),
            citizen_id=h["citizen_id"],
            citizen_no=h["citizen_no"],
            partner_user_id=h["partner_user_id"],
            citizen_display=h["citizen_display"],
            suspended_until=locked[h["citizen_id"]]["suspended_until"],
        )
        for h in held
    ]
    await store.resolve_held(
        conn, [h["application_id"] for h in held], status="released", reason=None, at=now
    )
    await _decide(conn, deps, [(row, items)], now, effects)


async def update_posting(conn: asyncpg.Connection, deps: Deps, event: PostingUpdated) -> None:
    """New terms: capacity never below the confirmed count; moved times move the bookings
    (a citizen who would then overlap another booking loses this one, without a strike);
    more seats promote from the waitlist."""
    now = deps.now()
    row = await store.lock_posting(conn, event.posting_id)
    if row is None:
        log.warning("update of unknown posting %s ignored", event.posting_id)
        return
    if event.revision <= row["revision"] or row["status"] != "open":
        log.info("update r%d of %s ignored (stale or not open)", event.revision, event.posting_id)
        return
    capacity = event.capacity
    if capacity < row["confirmed_count"]:
        log.warning(
            "posting %s: new capacity %d is below %d confirmed bookings; keeping %d",
            event.posting_id,
            event.capacity,
            row["confirmed_count"],
            row["confirmed_count"],
        )
        capacity = row["confirmed_count"]
    effects = Effects()
    if (event.starts_at, event.ends_at) != (row["starts_at"], row["ends_at"]):
        confirmed = await store.applications_of_posting(conn, event.posting_id, ["confirmed"])
        await store.lock_citizens(conn, [c["citizen_id"] for c in confirmed])
        clashing = set(
            await store.overlapping_elsewhere(
                conn, event.posting_id, event.starts_at, event.ends_at
            )
        )
        if clashing:
            await store.cancel_applications(
                conn,
                event.posting_id,
                sorted(clashing),
                status="cancelled",
                reason=Reason.RESCHEDULED_OVERLAP.value,
                cancelled_by="system",
                at=now,
            )
            for app in confirmed:
                if app["application_id"] in clashing:
                    effects.add(
                        messages.cancelled(
                            BookingFacts.of(app),
                            now,
                            cancelled_by="system",
                            reason=Reason.RESCHEDULED_OVERLAP.value,
                            was_confirmed=True,
                        )
                    )
        await store.move_bookings(conn, event.posting_id, event.starts_at, event.ends_at)
    await store.update_posting_terms(conn, event, capacity=capacity)
    effects.notes.append(
        messages.posting_note(
            "posting.updated", event, now, status="open", capacity=capacity, revision=event.revision
        )
    )
    await _promote(conn, deps, event.posting_id, now, effects)
    await effects.write(conn, now)


async def cancel_posting(conn: asyncpg.Connection, deps: Deps, event: PostingCancelled) -> None:
    """Every booking is cancelled (by the facility or the system, never a strike), pending
    and held applications are rejected, and the partner unlists the posting."""
    now = deps.now()
    row = await store.lock_posting(conn, event.posting_id)
    effects = Effects()
    if row is None:
        await _reject_held(conn, event.posting_id, Reason.POSTING_CANCELLED, now, effects)
        await effects.write(conn, now)
        return
    if row["status"] == "cancelled":
        return
    cancelled_by = "facility" if event.reason == "facility" else "system"
    await _end_bookings(
        conn,
        event.posting_id,
        now,
        effects,
        statuses=["confirmed", "waitlisted"],
        cancelled_by=cancelled_by,
        reason=Reason.POSTING_CANCELLED,
    )
    await store.set_posting_status(conn, event.posting_id, "cancelled")
    effects.notes.append(
        messages.posting_note(
            "posting.closed",
            {"posting_id": event.posting_id},
            now,
            status="cancelled",
            reason=event.reason,
        )
    )
    await effects.write(conn, now)


async def close_posting(conn: asyncpg.Connection, deps: Deps, event: PostingClosed) -> None:
    """The shift is over: confirmed bookings stay (attendance is about them), the waitlist
    and any undrawn applications end."""
    now = deps.now()
    row = await store.lock_posting(conn, event.posting_id)
    effects = Effects()
    if row is None:
        await _reject_held(conn, event.posting_id, Reason.POSTING_CLOSED, now, effects)
        await effects.write(conn, now)
        return
    if row["status"] != "open":
        return
    await _end_bookings(
        conn,
        event.posting_id,
        now,
        effects,
        statuses=["waitlisted"],
        cancelled_by="system",
        reason=Reason.POSTING_CLOSED,
    )
    await store.set_posting_status(conn, event.posting_id, "closed")
    effects.notes.append(
        messages.posting_note(
            "posting.closed", {"posting_id": event.posting_id}, now, status="closed"
        )
    )
    await effects.write(conn, now)


async def _end_bookings(
    conn: asyncpg.Connection,
    posting_id: str,
    now: datetime,
    effects: Effects,
    *,
    statuses: list[str],
    cancelled_by: str,
    reason: Reason,
) -> None:
    live = await store.applications_of_posting(conn, posting_id, [*statuses, "pending"])
    bookings = [a for a in live if a["status"] != "pending"]
    pending = [a for a in live if a["status"] == "pending"]
    await store.cancel_applications(
        conn,
        posting_id,
        [a["application_id"] for a in bookings],
        status="cancelled",
        reason=reason.value,
        cancelled_by=cancelled_by,
        at=now,
    )
    for app in bookings:
        effects.add(
            messages.cancelled(
                BookingFacts.of(app),
                now,
                cancelled_by=cancelled_by,
                reason=reason.value,
                was_confirmed=app["status"] == "confirmed",
            )
        )
    await store.cancel_applications(
        conn,
        posting_id,
        [a["application_id"] for a in pending],
        status="rejected",
        reason=reason.value,
        cancelled_by=None,
        at=now,
    )
    for app in pending:
        effects.add(messages.rejected(BookingFacts.of(app), now, reason.value))


async def _reject_held(
    conn: asyncpg.Connection, posting_id: str, reason: Reason, now: datetime, effects: Effects
) -> None:
    held = await store.held_for_posting(conn, posting_id)
    if not held:
        return
    await store.resolve_held(
        conn, [h["application_id"] for h in held], status="rejected", reason=reason.value, at=now
    )
    for h in held:
        effects.add(messages.rejected(_held_facts(h), now, reason.value))


def _held_facts(h: asyncpg.Record) -> BookingFacts:
    return BookingFacts(
        application_id=h["application_id"],
        posting_id=h["posting_id"],
        citizen_id=h["citizen_id"],
        citizen_display=h["citizen_display"],
        partner_user_id=h["partner_user_id"],
        booking_id=None,
        starts_at=h["received_at"],
        ends_at=h["received_at"],
    )


async def expire_held(conn: asyncpg.Connection, deps: Deps, posting_id: str) -> int:
    """Reject the applications that waited too long for an unknown posting."""
    now = deps.now()
    row = await store.lock_posting(conn, posting_id)
    if row is not None:
        return 0  # known now: its PostingPublished released them in the same lock
    held = await store.held_for_posting(conn, posting_id)
    expired = [h for h in held if h["held_until"] <= now]
    if not expired:
        return 0
    await store.resolve_held(
        conn,
        [h["application_id"] for h in expired],
        status="rejected",
        reason=Reason.UNKNOWN_POSTING.value,
        at=now,
    )
    effects = Effects()
    for h in expired:
        effects.add(messages.rejected(_held_facts(h), now, Reason.UNKNOWN_POSTING.value))
    await effects.write(conn, now)
    return len(expired)


# --- the draw ---------------------------------------------------------------------------


def seoul_month(at: datetime) -> str:
    return at.astimezone(SEOUL).strftime("%Y-%m")


async def run_draw(conn: asyncpg.Connection, deps: Deps, posting_id: str) -> bool:
    """Draw a `draw` posting whose applications closed: re-check each pending applicant's
    standing, rank the eligible by the seeded weighted draw, confirm, waitlist or refuse in
    rank order, and store seed, inputs and outcome for audit. Returns False if not due."""
    now = deps.now()
    row = await store.lock_posting(conn, posting_id)
    if (
        row is None
        or row["selection"] != "draw"
        or row["drawn_at"] is not None
        or row["status"] != "open"
        or (row["applications_close_at"] or row["starts_at"]) > now
    ):
        return False
    posting = store.posting_view(row)
    pending = await store.pending_of_posting(conn, posting_id)
    citizens = await store.lock_citizens(conn, [p["citizen_id"] for p in pending])
    window_start, window_end = week_window(posting.shift)
    booked = await store.confirmed_bookings(
        conn, list(citizens), window_start, window_end, exclude_posting_id=posting_id
    )
    entries_apps: list[asyncpg.Record] = []
    excluded: list[dict[str, str]] = []
    for p in pending:
        reason = standing_refusal(
            citizens[p["citizen_id"]]["suspended_until"],
            booked.get(p["citizen_id"], ()),
            posting.shift,
            deps.policy,
            now,
        )
        if reason is None:
            entries_apps.append(p)
        else:
            excluded.append({"application_id": p["application_id"], "reason": reason.value})
    month = seoul_month(now)
    minutes = await store.minutes_in_month(conn, [p["citizen_id"] for p in entries_apps], month)
    entries = [
        draw_rules.DrawEntry(p["application_id"], p["citizen_id"], minutes.get(p["citizen_id"], 0))
        for p in entries_apps
    ]
    salt = draw_rules.new_salt()
    seed = draw_rules.make_seed(posting_id, salt)
    half = deps.policy.draw_half_weight_minutes
    outcome = draw_rules.run_draw(
        seed,
        entries,
        seats=posting.seats_free,
        waitlist_room=posting.waitlist_room,
        half_weight_minutes=half,
    )
    by_id = {p["application_id"]: p for p in pending}
    queue_pos = await store.take_queue_positions(conn, posting_id, len(outcome.waitlisted))
    changes: list[tuple[str, str, str | None, str | None, int | None]] = []
    booking_ids: dict[str, str] = {}
    for application_id in outcome.confirmed:
        booking_ids[application_id] = store.new_booking_id()
        changes.append((application_id, "confirmed", None, booking_ids[application_id], None))
    for application_id in outcome.waitlisted:
        booking_ids[application_id] = store.new_booking_id()
        changes.append((application_id, "waitlisted", None, booking_ids[application_id], queue_pos))
        queue_pos += 1
    for application_id in outcome.not_selected:
        changes.append(
            (application_id, "rejected", Reason.POSTING_FULL_NO_WAITLIST.value, None, None)
        )
    for ex in excluded:
        changes.append((ex["application_id"], "rejected", ex["reason"], None, None))
    await store.set_decisions(conn, posting_id, changes, now)
    record: dict[str, Any] = {
        "algorithm": draw_rules.ALGORITHM,
        "salt": salt,
        "seed": seed,
        "month": month,
        "half_weight_minutes": half,
        "seats": posting.seats_free,
        "waitlist_room": posting.waitlist_room,
        "inputs": [
            {
                "application_id": e.application_id,
                "citizen_id": e.citizen_id,
                "minutes_month": e.minutes_month,
            }
            for e in entries
        ],
        "excluded": excluded,
        "outcome": {
            "ranking": list(outcome.ranking),
            "confirmed": list(outcome.confirmed),
            "waitlisted": list(outcome.waitlisted),
            "not_selected": list(outcome.not_selected),
        },
        "drawn_at": now,
    }
    await store.insert_draw(conn, posting_id, record)
    await store.mark_drawn(conn, posting_id, now)

    def facts(application_id: str) -> BookingFacts:
        p = by_id[application_id]
        return BookingFacts(
            application_id=application_id,
            posting_id=posting_id,
            citizen_id=p["citizen_id"],
            citizen_display=p["citizen_display"],
            partner_user_id=p["partner_user_id"],
            booking_id=booking_ids.get(application_id),
            starts_at=p["starts_at"],
            ends_at=p["ends_at"],
        )

    effects = Effects()
    for application_id in outcome.confirmed:
        effects.add(messages.confirmed(facts(application_id), now))
    for index, application_id in enumerate(outcome.waitlisted, start=1):
        position = posting.waitlisted_count + index
        effects.add(messages.waitlisted(facts(application_id), now, position))
    for application_id in outcome.not_selected:
        effects.add(
            messages.rejected(facts(application_id), now, Reason.POSTING_FULL_NO_WAITLIST.value)
        )
    for ex in excluded:
        effects.add(messages.rejected(facts(ex["application_id"]), now, ex["reason"]))
    await effects.write(conn, now)
    log.info(
        "draw of %s: %d entries, %d confirmed, %d waitlisted, %d excluded",
        posting_id,
        len(entries),
        len(outcome.confirmed),
        len(outcome.waitlisted),
        len(excluded),
    )
    return True


def verify_draw(record: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """Re-run a stored draw from its seed and inputs; say whether the outcome matches."""
    seed = draw_rules.make_seed(record["posting_id"], record["salt"])
    entries = [
        draw_rules.DrawEntry(i["application_id"], i["citizen_id"], int(i["minutes_month"]))
        for i in record["inputs"]
    ]
    outcome = draw_rules.run_draw(
        seed,
        entries,
        seats=record["seats"],
        waitlist_room=record["waitlist_room"],
        half_weight_minutes=record["half_weight_minutes"],
    )
    recomputed = {
        "ranking": list(outcome.ranking),
        "confirmed": list(outcome.confirmed),
        "waitlisted": list(outcome.waitlisted),
        "not_selected": list(outcome.not_selected),
    }
    return {
        "posting_id": record["posting_id"],
        "algorithm": record["algorithm"],
        "seed_matches": seed == record["seed"],
        "matches": seed == record["seed"] and recomputed == record["outcome"],
        "recomputed": recomputed,
    }


# --- attendance and strikes --------------------------------------------------------------


async def record_attendance(
    conn: asyncpg.Connection,
    deps: Deps,
    event: AttendanceRecorded | AttendanceCorrected,
    recorded_at: datetime,
) -> None:
    """Attended minutes feed the draw's weighting; a no-show is a strike (and a correction
    to `attended` voids it, lifting a suspension it caused)."""
    if await store.citizen(conn, event.citizen_id) is None:
        log.warning("attendance for unknown citizen %s ignored", event.citizen_id)
        return
    previous = await store.upsert_attendance(
        conn,
        attendance_id=event.attendance_id,
        booking_id=event.booking_id,
        posting_id=event.posting_id,
        citizen_id=event.citizen_id,
        status=event.status,
        minutes=event.minutes,
        month=seoul_month(event.shift_starts_at),
        revision=event.revision,
        recorded_at=recorded_at,
    )
    if previous is not None and previous["revision"] >= event.revision:
        log.info("attendance %s r%d is not newer; ignored", event.attendance_id, event.revision)
        return
    was_no_show = previous is not None and previous["status"] == "no_show"
    if event.status == "no_show" and not was_no_show:
        await record_strike(conn, deps, event.citizen_id, event.booking_id, "no_show", recorded_at)
    elif event.status == "attended" and was_no_show:
        strike_id = await store.void_strike(conn, event.booking_id, "no_show", recorded_at)
        if strike_id is not None:
            await store.lock_citizens(conn, [event.citizen_id])
            await store.lift_suspensions_of_strike(conn, event.citizen_id, strike_id, recorded_at)


async def record_strike(
    conn: asyncpg.Connection,
    deps: Deps,
    citizen_id: str,
    booking_id: str,
    kind: str,
    at: datetime,
) -> None:
    """A strike; the one that makes `strikes_to_suspend` within the window suspends."""
    if not await store.add_strike(conn, citizen_id, booking_id, kind, at):
        return
    await store.lock_citizens(conn, [citizen_id])
    strikes = [
        Strike(s["strike_id"], s["occurred_at"])
        for s in await store.strikes_of(conn, citizen_id)
        if s["voided_at"] is None
    ]
    suspensions = await store.suspensions_of(conn, citizen_id)
    last_start = max((s["starts_at"] for s in suspensions if s["lifted_at"] is None), default=None)
    due = suspension_due(strikes, at, deps.policy, last_suspension_started_at=last_start)
    if due is None:
        return
    await store.suspend(conn, citizen_id, due.starts_at, due.ends_at, due.strike_ids)
    log.info(
        "citizen %s suspended until %s (%d strikes)",
        citizen_id,
        due.ends_at.isoformat(),
        len(due.strike_ids),
    )

"""Applications: decide a batch of ApplicationReceived, withdraw one, promote from the
waitlist when a seat frees up."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from matcher import store
from matcher.domain.checkin import new_codes
from matcher.domain.decide import (
    Arrival,
    Decision,
    PostingView,
    Waiting,
    decide_arrivals,
    plan_promotions,
)
from matcher.domain.eligibility import Booked, Profile, adult_from, week_window
from matcher.domain.notifications import BookingFacts
from matcher.domain.policy import Policy, Reason, Refusal
from matcher.domain.strikes import is_late_cancellation
from matcher.store import ApplicationRow, BookedOn, CitizenRef, Decided, HeldRow, PostingRow
from matcher.usecases import notifications
from matcher.usecases.attendance import record_strike
from matcher.usecases.deps import Deps, policy_now
from matcher.usecases.notifications import Effects
from shared.db import Connection
from shared.events import ApplicationReceived, ApplicationWithdrawn, CitizenProfile

log = logging.getLogger(__name__)

# Bound of the promotion loop (each round promotes or drops at least one waiting booking).
PROMOTION_ROUNDS_MAX = 1_000
# Check-in codes proposed per posting beyond its candidates, for the rare proposal that
# meets a code the posting holds (1 in ~50,000 with 5,000 bookings on the posting).
CODE_SPARES = 4


def _profile(event: ApplicationReceived, age_min_years: int) -> Profile:
    return Profile(
        event.citizen.dong,
        event.citizen.neighbourhood_verified_at,
        citizen_adult_from(event.citizen, age_min_years),
        event.citizen.child_safety_check,
    )


def citizen_adult_from(citizen: CitizenProfile, age_min_years: int) -> date:
    """`adult_from` as ingest publishes it, or derived from an old event's birth date."""
    if citizen.adult_from is not None:
        return citizen.adult_from
    assert citizen.birth_date is not None  # the model requires one of the two
    return adult_from(citizen.birth_date, age_min_years)


@dataclass(frozen=True)
class Candidate:
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
    display_name: str | None

    @classmethod
    def arriving(
        cls, event: ApplicationReceived, citizen: CitizenRef, age_min_years: int
    ) -> Candidate:
        return cls(
            application_id=event.application_id,
            webhook_id=event.webhook_id,
            received_at=event.received_at,
            profile=_profile(event, age_min_years),
            citizen_id=citizen.citizen_id,
            citizen_no=citizen.citizen_no,
            partner_user_id=citizen.partner_user_id,
            citizen_display=citizen.display,
            suspended_until=citizen.suspended_until,
            display_name=citizen.display_name,
        )

    @classmethod
    def released(cls, held: HeldRow, suspended_until: datetime | None) -> Candidate:
        """A held application, decided now that its posting is known."""
        return cls(
            application_id=held.application_id,
            webhook_id=held.webhook_id,
            received_at=held.received_at,
            profile=held.profile,
            citizen_id=held.citizen_id,
            citizen_no=held.citizen_no,
            partner_user_id=held.partner_user_id,
            citizen_display=held.citizen_display,
            suspended_until=suspended_until,
            display_name=held.display_name,
        )


@dataclass(frozen=True)
class PostingBatch:
    """A posting's locked row and its candidates in arrival order."""

    row: PostingRow
    candidates: Sequence[Candidate]


@dataclass(frozen=True)
class _Decided:
    """A posting's candidates with the domain's decision for each."""

    posting: PostingView
    candidates: Sequence[Candidate]
    decisions: list[Decision]


# --- decide a batch ------------------------------------------------------------------------


async def decide_applications(
    conn: Connection, deps: Deps, applications: Sequence[ApplicationReceived]
) -> None:
    """Decide a batch of applications (arrival order; any number of postings) in this
    transaction with a fixed number of statements, whatever the number of postings: one
    lock of all the postings with the look-up of known ids, one citizen upsert, one hold of
    the applications for unknown postings, then `decide` (one read and one write for all).

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
    rows, known = await store.lock_postings_known(
        conn, by_posting, [a.application_id for a in applications]
    )
    fresh = _fresh_by_posting(by_posting, known)
    if not fresh:
        return
    citizens = await store.upsert_citizens(
        conn,
        [
            store.CitizenIn(
                a.citizen.partner_user_id,
                _profile(a, deps.policy.age_min_years),
                a.received_at,
                a.citizen.display_name,
            )
            for apps in fresh.values()
            for a in apps
        ],
    )
    held: list[store.HeldApplication] = []
    batches: list[PostingBatch] = []
    for posting_id, apps in fresh.items():
        row = rows.get(posting_id)
        if row is None:
            held.extend(
                store.HeldApplication(
                    application_id=a.application_id,
                    posting_id=posting_id,
                    citizen_id=citizens[a.citizen.partner_user_id].citizen_id,
                    webhook_id=a.webhook_id,
                    received_at=a.received_at,
                    held_until=now + deps.held_application_wait,
                )
                for a in apps
            )
            log.info("posting %s not known yet: %d application(s) held", posting_id, len(apps))
            continue
        candidates = [
            Candidate.arriving(a, citizens[a.citizen.partner_user_id], deps.policy.age_min_years)
            for a in apps
        ]
        batches.append(PostingBatch(row, candidates))
    effects = Effects()
    refused = await store.hold_applications(conn, held, now)
    if refused:  # their posting ended before it was known: refused now, not after the wait
        by_id = {a.application_id: a for apps in fresh.values() for a in apps}
        for r in refused:
            a = by_id[r.application_id]
            citizen = citizens[a.citizen.partner_user_id]
            facts = BookingFacts(
                application_id=a.application_id,
                posting_id=r.posting_id,
                citizen_id=citizen.citizen_id,
                citizen_display=citizen.display,
                partner_user_id=citizen.partner_user_id,
                booking_id=None,
                starts_at=a.received_at,
                ends_at=a.received_at,
            )
            effects.add(notifications.rejected(facts, now, r.reason))
    await decide(conn, deps, batches, now, effects)


def _fresh_by_posting(
    by_posting: dict[str, list[ApplicationReceived]], known: set[str]
) -> dict[str, list[ApplicationReceived]]:
    """The applications not recorded yet (`known`: those that are), by posting in posting id
    order (a repeat inside the batch counts once)."""
    fresh: dict[str, list[ApplicationReceived]] = {}
    for posting_id in sorted(by_posting):
        for a in by_posting[posting_id]:
            if a.application_id in known:
                log.info("application %s already recorded; skipped", a.application_id)
                continue
            known.add(a.application_id)
            fresh.setdefault(posting_id, []).append(a)
    return fresh


async def decide(
    conn: Connection,
    deps: Deps,
    batches: Sequence[PostingBatch],
    now: datetime,
    effects: Effects,
) -> None:
    """Decide each posting's candidates and write the decisions, events and notifications
    of all of them (`effects` may already hold some): one statement per step, whatever the
    number of postings."""
    if not batches:
        await effects.write(conn, now)
        return
    # Each posting books at most its candidates: codes for that many are proposed up front
    # and checked against the posting's codes in the same read as everything else.
    proposed = {
        b.row.posting_id: new_codes(len(b.candidates) + CODE_SPARES, (), secrets.randbelow)
        for b in batches
    }
    postings = [store.posting_view(b.row) for b in batches]
    windows = {p.posting_id: week_window(p.shift) for p in postings}
    # The bookings and the weekly caps are read in this transaction: the caps are the
    # allowance's, held in `week_caps` (decision 0011).
    reads = await store.decision_reads(
        conn,
        [(b.row.posting_id, c.citizen_id) for b in batches for c in b.candidates],
        windows.values(),
        proposed,
    )
    decided = _decide_in_order(deps, postings, batches, windows, reads)
    rows: list[store.NewApplication] = []
    queue_taken: dict[str, tuple[int, int]] = {}
    for d in decided:
        posting_id = d.posting.posting_id
        waitlisted = sum(1 for x in d.decisions if x.outcome == "waitlisted")
        booked = sum(1 for x in d.decisions if x.outcome in ("confirmed", "waitlisted"))
        first = reads.queue_next[posting_id]
        if waitlisted:
            queue_taken[posting_id] = (first, waitlisted)
        codes = [c for c in proposed[posting_id] if c not in reads.codes_taken.get(posting_id, ())]
        if len(codes) < booked:  # more proposals met existing codes than the spares cover
            codes = await new_check_in_codes(conn, posting_id, booked)
        rows.extend(_record(d, first, iter(codes), now, effects))
    await effects.write(conn, now, rows, queue_taken)


def _decide_in_order(
    deps: Deps,
    postings: Sequence[PostingView],
    batches: Sequence[PostingBatch],
    windows: dict[str, tuple[datetime, datetime]],
    reads: store.DecisionReads,
) -> list[_Decided]:
    """The domain's decisions, posting by posting in the given order (posting id order):
    each one's confirmed bookings are added to what the next ones see, as if they had been
    written in between."""
    booked = reads.booked
    policy = replace(deps.policy, week_caps=reads.week_caps)
    decided: list[_Decided] = []
    for posting, batch in zip(postings, batches, strict=True):
        posting_id = posting.posting_id
        window_start, window_end = windows[posting_id]
        arrivals = [
            Arrival(
                application_id=c.application_id,
                citizen_id=c.citizen_id,
                received_at=c.received_at,
                profile=c.profile,
                suspended_until=c.suspended_until,
                booked=tuple(
                    b.booked
                    for b in booked.get(c.citizen_id, ())
                    if b.posting_id != posting_id
                    and b.booked.starts_at < window_end
                    and b.booked.ends_at > window_start
                ),
                has_live_application=(posting_id, c.citizen_id) in reads.live,
            )
            for c in batch.candidates
        ]
        decisions = decide_arrivals(posting, arrivals, policy)
        for c, d in zip(batch.candidates, decisions, strict=True):
            if d.outcome == "confirmed":  # seen by the postings decided after this one
                booked.setdefault(c.citizen_id, []).append(
                    BookedOn(posting_id, Booked(posting.shift.starts_at, posting.shift.ends_at))
                )
        decided.append(_Decided(posting, batch.candidates, decisions))
    return decided


async def new_check_in_codes(conn: Connection, posting_id: str, count: int) -> list[str]:
    """`count` new check-in codes for a posting, unlike the codes its bookings hold."""
    if count <= 0:
        return []
    return new_codes(count, await store.codes_taken(conn, posting_id), secrets.randbelow)


def _record(
    decided: _Decided, queue_pos: int, codes: Iterator[str], now: datetime, effects: Effects
) -> list[store.NewApplication]:
    """The rows of one posting's decisions (waitlist positions from `queue_pos` on, one of
    `codes` per booking), their events and notifications added to `effects`."""
    posting = decided.posting
    rows: list[store.NewApplication] = []
    for c, decision in zip(decided.candidates, decided.decisions, strict=True):
        booked = decision.outcome in ("confirmed", "waitlisted")
        booking_id = store.new_booking_id() if booked else None
        code = next(codes) if booked else None
        position: int | None = None
        if decision.outcome == "waitlisted":
            position, queue_pos = queue_pos, queue_pos + 1
        rows.append(
            store.NewApplication(
                application_id=c.application_id,
                posting_id=posting.posting_id,
                citizen_id=c.citizen_id,
                citizen_no=c.citizen_no,
                webhook_id=c.webhook_id,
                received_at=c.received_at,
                status=decision.outcome,
                reason=decision.reason.value if decision.reason else None,
                booking_id=booking_id,
                queue_pos=position,
                starts_at=posting.shift.starts_at,
                ends_at=posting.shift.ends_at,
                decided_at=None if decision.outcome == "pending" else now,
                check_in_code=code,
            )
        )
        facts = BookingFacts(
            application_id=c.application_id,
            posting_id=posting.posting_id,
            citizen_id=c.citizen_id,
            citizen_display=c.citizen_display,
            partner_user_id=c.partner_user_id,
            booking_id=booking_id,
            starts_at=posting.shift.starts_at,
            ends_at=posting.shift.ends_at,
            display_name=c.display_name,
            check_in_code=code,
        )
        if decision.outcome == "confirmed":
            effects.add(notifications.confirmed(facts, now))
        elif decision.outcome == "waitlisted":
            assert decision.waitlist_position is not None
            effects.add(notifications.waitlisted(facts, now, decision.waitlist_position))
        elif decision.outcome == "rejected":
            assert decision.reason is not None
            effects.add(notifications.rejected(facts, now, decision.reason.value))
    return rows


# --- withdraw ------------------------------------------------------------------------------


async def withdraw_application(conn: Connection, deps: Deps, event: ApplicationWithdrawn) -> None:
    """The citizen withdrew: a booking is cancelled (a strike if late), the waitlist moves.

    A withdrawal that does not match its application changes nothing and is answered with
    `application.refused`: another citizen's partner_user_id (`citizen_mismatch`), another
    posting (`posting_mismatch`), or an application never submitted (`unknown_application`).
    The application cannot merely be late: both are keyed by posting on
    `matcher.applications.v1`, so an application submitted before its withdrawal, for the
    same posting, was applied before it (held, if its posting is not known yet)."""
    now = deps.now()
    row = await store.lock_posting(conn, event.posting_id)
    app = await store.application(conn, event.application_id)
    if app is None:
        held = await store.held_application(conn, event.application_id)
        refusal = _withdrawal_refusal(event, held)
        if refusal is not None:
            await _refuse(conn, event, refusal, now)
        elif held is not None and held.status == "held":
            await store.resolve_held(
                conn, [event.application_id], status="withdrawn", reason="withdrawn", at=now
            )
        else:
            log.info(
                "withdrawal of held %s (already resolved) changes nothing", event.application_id
            )
        return
    refusal = _withdrawal_refusal(event, app)
    if refusal is not None:
        await _refuse(conn, event, refusal, now)
        return
    assert row is not None  # the application's posting, known since it was decided
    if app.status == "pending":
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
    if app.status not in ("confirmed", "waitlisted"):
        log.info("withdrawal of %s (already %s) changes nothing", event.application_id, app.status)
        return
    strike = app.status == "confirmed" and is_late_cancellation(
        event.received_at, app.starts_at, deps.policy
    )
    await cancel_booking(
        conn,
        deps,
        app,
        now,
        at=event.received_at,
        cancelled_by="citizen",
        reason=Reason.WITHDRAWN,
        strike=strike,
    )


def _withdrawal_refusal(
    event: ApplicationWithdrawn, app: ApplicationRow | HeldRow | None
) -> Refusal | None:
    """Why a withdrawal does not match the application it names; None when it does."""
    if app is None:
        return Refusal.UNKNOWN_APPLICATION
    if app.posting_id != event.posting_id:
        return Refusal.POSTING_MISMATCH
    if app.partner_user_id != event.partner_user_id:
        return Refusal.CITIZEN_MISMATCH
    return None


async def _refuse(
    conn: Connection, event: ApplicationWithdrawn, refusal: Refusal, now: datetime
) -> None:
    log.warning("withdrawal of %s refused: %s", event.application_id, refusal.value)
    effects = Effects()
    effects.notes.append(
        notifications.refused(
            kind="application.withdrawn",
            application_id=event.application_id,
            posting_id=event.posting_id,
            partner_user_id=event.partner_user_id,
            webhook_id=event.webhook_id,
            reason=refusal.value,
            at=now,
        )
    )
    await effects.write(conn, now)


async def cancel_booking(
    conn: Connection,
    deps: Deps,
    app: ApplicationRow,
    now: datetime,
    *,
    at: datetime,
    cancelled_by: str,
    reason: Reason,
    strike: bool,
) -> None:
    """A booking ends (a withdrawal, or a release for want of reconfirmation; the caller
    holds the posting's lock): cancelled, a strike if `strike`, its seat to the waitlist,
    and every waitlisted booking whose place moved is told."""
    was_confirmed = app.status == "confirmed"
    before = await store.waitlist_ranks(conn, app.posting_id)
    await store.cancel_applications(
        conn,
        app.posting_id,
        [app.application_id],
        status="cancelled",
        reason=reason.value,
        cancelled_by=cancelled_by,
        at=at,
        strike=strike,
    )
    effects = Effects()
    facts = notifications.facts_of(app)
    effects.add(
        notifications.cancelled(
            facts,
            now,
            cancelled_by=cancelled_by,
            reason=reason.value,
            was_confirmed=was_confirmed,
            strike=strike,
        )
    )
    if strike:
        await record_strike(conn, deps, facts, "late_cancellation", at, effects)
    if was_confirmed:
        await promote(conn, deps, app.posting_id, now, effects)
    await tell_waitlist_moves(conn, app.posting_id, before, now, effects)
    await effects.write(conn, now)


async def tell_waitlist_moves(
    conn: Connection, posting_id: str, before: dict[str, int], now: datetime, effects: Effects
) -> None:
    """`waitlist.position_changed` for each booking still waitlisted whose place differs
    from `before` (the ranks read earlier in this transaction)."""
    if not before:
        return
    after = await store.waitlist_ranks(conn, posting_id)
    moved = [a for a, pos in after.items() if before.get(a, pos) != pos]
    for row in await store.applications_by_ids(conn, moved):
        effects.tell(
            notifications.waitlist_moved(
                notifications.facts_of(row),
                now,
                after[row.application_id],
                before[row.application_id],
            )
        )


# --- promote -------------------------------------------------------------------------------


async def promote(
    conn: Connection, deps: Deps, posting_id: str, now: datetime, effects: Effects
) -> None:
    """Give free seats to the head of the waitlist while promotion is allowed. The caller
    holds the posting's lock. The weekly caps are read once, in this transaction."""
    policy = await policy_now(conn, deps)
    for _ in range(PROMOTION_ROUNDS_MAX):
        row = await store.posting(conn, posting_id)
        assert row is not None
        posting = store.posting_view(row)
        if posting.seats_free <= 0 or posting.status != "open":
            return
        if not await _promote_round(conn, policy, posting, now, effects):
            return
    log.error("promotion on %s stopped after %d rounds", posting_id, PROMOTION_ROUNDS_MAX)


async def _promote_round(
    conn: Connection, policy: Policy, posting: PostingView, now: datetime, effects: Effects
) -> bool:
    """One round: the head of the waitlist re-checked, promoted or dropped. False when
    nothing changed (no one waits, or no one may be promoted now)."""
    posting_id = posting.posting_id
    heads = await store.waitlist_head(conn, posting_id, posting.seats_free * 2 + 8)
    if not heads:
        return False
    citizens = await store.lock_citizens(conn, [h.citizen_id for h in heads])
    window_start, window_end = week_window(posting.shift)
    booked = await store.confirmed_bookings(
        conn, list(citizens), window_start, window_end, exclude_posting_id=posting_id
    )
    plan = plan_promotions(
        posting,
        [
            Waiting(
                h.application_id,
                h.citizen_id,
                citizens[h.citizen_id].suspended_until,
                tuple(booked.get(h.citizen_id, ())),
            )
            for h in heads
        ],
        policy,
        now,
    )
    if not plan.promote and not plan.drop:
        return False
    by_id = {h.application_id: h for h in heads}
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
            notifications.cancelled(
                notifications.facts_of(by_id[application_id]),
                now,
                cancelled_by="system",
                reason=reason.value,
                was_confirmed=False,
            )
        )
    # A booking made before check-in codes existed gets its code when it takes a seat.
    uncoded = [a for a in plan.promote if by_id[a].check_in_code is None]
    fresh = iter(await new_check_in_codes(conn, posting_id, len(uncoded)))
    codes = {a: by_id[a].check_in_code or next(fresh) for a in plan.promote}
    await store.set_decisions(
        conn,
        posting_id,
        [Decided(a, "confirmed", check_in_code=codes[a]) for a in plan.promote],
        now,
    )
    for application_id in plan.promote:
        facts = replace(
            notifications.facts_of(by_id[application_id]), check_in_code=codes[application_id]
        )
        effects.add(notifications.promoted(facts, now))
    return True

"""The draw of a `draw` posting whose applications closed: freeze the entries (each
pending applicant's standing re-checked, their month's minutes read), draw, and write the
outcome with its audit record."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from matcher import store
from matcher.domain import draw as draw_rules
from matcher.domain.decide import PostingView
from matcher.domain.draw import DrawEntry, DrawOutcome
from matcher.domain.eligibility import standing_refusal, week_window
from matcher.domain.notifications import BookingFacts
from matcher.domain.policy import Reason
from matcher.store import ApplicationRow, Decided, DrawRow, PostingRow
from matcher.usecases import notifications
from matcher.usecases.applications import new_check_in_codes
from matcher.usecases.deps import Deps, policy_now
from matcher.usecases.notifications import Effects
from shared.db import Connection, Pool, retry_conflicts
from shared.seoul import month_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Excluded:
    """A pending applicant who may not enter the draw, and why."""

    application_id: str
    reason: str


@dataclass(frozen=True)
class Entries:
    """What a draw is run on: the pending applications, the entries among them (with their
    month's minutes) and those excluded by their standing."""

    pending: list[ApplicationRow]
    entries: list[DrawEntry]
    excluded: list[Excluded]
    month: str


def _is_due(row: PostingRow | None, now: datetime) -> bool:
    return (
        row is not None
        and row.selection == "draw"
        and row.drawn_at is None
        and row.status == "open"
        and (row.applications_close_at or row.starts_at) <= now
    )


async def run_draw(conn: Connection, deps: Deps, posting_id: str) -> bool:
    """Draw a `draw` posting whose applications closed: re-check each pending applicant's
    standing, rank the eligible by the seeded weighted draw, confirm, waitlist or refuse in
    rank order, and store seed, inputs and outcome for audit. Returns False if not due."""
    now = deps.now()
    row = await store.lock_posting(conn, posting_id)
    if row is None or not _is_due(row, now):
        return False
    posting = store.posting_view(row)
    frozen = await _freeze_entries(conn, deps, posting, now)
    salt = draw_rules.new_salt()
    seed = draw_rules.make_seed(posting_id, salt)
    half = deps.policy.draw_half_weight_minutes
    outcome = draw_rules.run_draw(
        seed,
        frozen.entries,
        seats=posting.seats_free,
        waitlist_room=posting.waitlist_room,
        half_weight_minutes=half,
    )
    record = DrawRow(
        posting_id=posting_id,
        algorithm=draw_rules.ALGORITHM,
        salt=salt,
        seed=seed,
        month=frozen.month,
        half_weight_minutes=half,
        seats=posting.seats_free,
        waitlist_room=posting.waitlist_room,
        inputs=[
            {
                "application_id": e.application_id,
                "citizen_id": e.citizen_id,
                "minutes_month": e.minutes_month,
            }
            for e in frozen.entries
        ],
        excluded=[
            {"application_id": x.application_id, "reason": x.reason} for x in frozen.excluded
        ],
        outcome=outcome.as_record(),
        drawn_at=now,
    )
    await _write_outcome(conn, posting, frozen, outcome, record, now)
    log.info(
        "draw of %s: %d entries, %d confirmed, %d waitlisted, %d excluded",
        posting_id,
        len(frozen.entries),
        len(outcome.confirmed),
        len(outcome.waitlisted),
        len(frozen.excluded),
    )
    return True


async def _freeze_entries(
    conn: Connection, deps: Deps, posting: PostingView, now: datetime
) -> Entries:
    """The pending applicants whose standing still allows a seat now (their citizens'
    rows locked), with this Seoul month's attended minutes; the others excluded."""
    pending = await store.pending_of_posting(conn, posting.posting_id)
    citizens = await store.lock_citizens(conn, [p.citizen_id for p in pending])
    window_start, window_end = week_window(posting.shift)
    booked = await store.confirmed_bookings(
        conn, list(citizens), window_start, window_end, exclude_posting_id=posting.posting_id
    )
    entering: list[ApplicationRow] = []
    excluded: list[Excluded] = []
    policy = await policy_now(conn, deps)
    for p in pending:
        reason = standing_refusal(
            citizens[p.citizen_id].suspended_until,
            booked.get(p.citizen_id, ()),
            posting.shift,
            policy,
            now,
        )
        if reason is None:
            entering.append(p)
        else:
            excluded.append(Excluded(p.application_id, reason.value))
    month = month_of(now)
    minutes = await store.minutes_in_month(conn, [p.citizen_id for p in entering], month)
    entries = [
        DrawEntry(p.application_id, p.citizen_id, minutes.get(p.citizen_id, 0)) for p in entering
    ]
    return Entries(pending, entries, excluded, month)


async def _write_outcome(
    conn: Connection,
    posting: PostingView,
    frozen: Entries,
    outcome: DrawOutcome,
    record: DrawRow,
    now: datetime,
) -> None:
    """Decide every pending application by the outcome (booking ids and waitlist positions
    given in rank order), store the draw's record, and tell the world."""
    posting_id = posting.posting_id
    queue_pos = await store.take_queue_positions(conn, posting_id, len(outcome.waitlisted))
    changes: list[Decided] = []
    booking_ids: dict[str, str] = {}
    booked = [*outcome.confirmed, *outcome.waitlisted]
    fresh = await new_check_in_codes(conn, posting_id, len(booked))
    codes = dict(zip(booked, fresh, strict=True))
    for application_id in outcome.confirmed:
        booking_ids[application_id] = store.new_booking_id()
        changes.append(
            Decided(
                application_id,
                "confirmed",
                None,
                booking_ids[application_id],
                check_in_code=codes[application_id],
            )
        )
    for application_id in outcome.waitlisted:
        booking_ids[application_id] = store.new_booking_id()
        changes.append(
            Decided(
                application_id,
                "waitlisted",
                None,
                booking_ids[application_id],
                queue_pos,
                check_in_code=codes[application_id],
            )
        )
        queue_pos += 1
    full = Reason.POSTING_FULL_NO_WAITLIST.value
    changes.extend(Decided(a, "rejected", full) for a in outcome.not_selected)
    changes.extend(Decided(x.application_id, "rejected", x.reason) for x in frozen.excluded)
    await store.set_decisions(conn, posting_id, changes, now)
    await store.insert_draw(conn, record)
    await store.mark_drawn(conn, posting_id, now)

    by_id = {p.application_id: p for p in frozen.pending}

    def facts(application_id: str) -> BookingFacts:
        p = by_id[application_id]
        return BookingFacts(
            application_id=application_id,
            posting_id=posting_id,
            citizen_id=p.citizen_id,
            citizen_display=p.citizen_display,
            partner_user_id=p.partner_user_id,
            booking_id=booking_ids.get(application_id),
            starts_at=p.starts_at,
            ends_at=p.ends_at,
            display_name=p.display_name,
            check_in_code=codes.get(application_id),
        )

    effects = Effects()
    for application_id in outcome.confirmed:
        effects.add(notifications.confirmed(facts(application_id), now))
    for index, application_id in enumerate(outcome.waitlisted, start=1):
        position = posting.waitlisted_count + index
        effects.add(notifications.waitlisted(facts(application_id), now, position))
    for application_id in outcome.not_selected:
        effects.add(notifications.rejected(facts(application_id), now, full))
    for x in frozen.excluded:
        effects.add(notifications.rejected(facts(x.application_id), now, x.reason))
    await effects.write(conn, now)


async def run_due_draws(pool: Pool, deps: Deps, batch_size_max: int) -> int:
    """Run the draws that are due (at most `batch_size_max`), each in its own transaction
    under its posting's lock (so every replica may sweep); how many ran."""
    async with pool.acquire() as conn:
        due = await store.draws_due(conn, deps.now(), batch_size_max)
    ran = 0
    for posting_id in due:

        async def one(posting_id: str = posting_id) -> bool:
            async with pool.acquire() as conn, conn.transaction():
                return await run_draw(conn, deps, posting_id)

        ran += await retry_conflicts(one)
    return ran

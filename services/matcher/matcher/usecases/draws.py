"""The draw of a `draw` posting, commit then reveal (issue 19, docs/fairness.md).

* `commit` (when the posting opens, `usecases.postings`): a secret 32-byte seed is stored
  and its SHA-256 published in `posting.published`.
* `freeze_entries` (at `applications_close_at`, its own transaction, committed first): the
  pending applicants whose standing still allows a seat, each with their allowance minutes
  over the rolling window, and the draw's parameters are fixed and stored with their hash.
  From then on a late application is refused `applications_closed`.
* `draw_frozen` (the next transaction): the outcome is `fair_draw.draw(seed, frozen list)`,
  a pure function of what was stored, so a matcher killed between the two redraws exactly
  the same outcome after its restart; the bookings, their notifications, `DrawCompleted`
  and the `draw.completed` notification (the published record) are written together.

Nothing about the seed is logged; it leaves the database only in the revealed record.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from matcher import store
from matcher.domain import fair_draw
from matcher.domain.decide import PostingView
from matcher.domain.eligibility import standing_refusal, week_window
from matcher.domain.notifications import BookingFacts
from matcher.domain.policy import Policy, Reason
from matcher.store import ApplicationRow, Decided, FreezeRow, PostingRow
from matcher.usecases import notifications
from matcher.usecases.applications import new_check_in_codes, promote
from matcher.usecases.deps import Deps, policy_now
from matcher.usecases.notifications import Effects
from shared.db import Connection, Pool, retry_conflicts
from shared.seoul import month_of

log = logging.getLogger(__name__)


def _is_due(row: PostingRow | None, now: datetime) -> bool:
    return (
        row is not None
        and row.selection == "draw"
        and row.drawn_at is None
        and row.status == "open"
        and (row.applications_close_at or row.starts_at) <= now
    )


async def commit(conn: Connection, posting_id: str, now: datetime) -> str:
    """Fix the posting's secret seed (once: a stored one is kept) and return the
    commitment to publish. The caller holds the posting's lock."""
    seed = fair_draw.new_seed()
    await store.insert_draw_seed(conn, posting_id, seed, fair_draw.commitment(seed), now)
    stored = await store.draw_commitment(conn, posting_id)
    assert stored is not None
    return stored.commitment


async def _refusals(
    conn: Connection,
    policy: Policy,
    posting: PostingView,
    apps: list[ApplicationRow],
    now: datetime,
) -> dict[str, Reason]:
    """Applicants whose standing forbids a seat now (suspended, overlapping another
    confirmed booking, over the weekly cap), their citizens' rows locked."""
    citizens = await store.lock_citizens(conn, [a.citizen_id for a in apps])
    window_start, window_end = week_window(posting.shift)
    booked = await store.confirmed_bookings(
        conn, list(citizens), window_start, window_end, exclude_posting_id=posting.posting_id
    )
    out: dict[str, Reason] = {}
    for a in apps:
        reason = standing_refusal(
            citizens[a.citizen_id].suspended_until,
            booked.get(a.citizen_id, ()),
            posting.shift,
            policy,
            now,
        )
        if reason is not None:
            out[a.application_id] = reason
    return out


async def freeze_entries(conn: Connection, deps: Deps, posting_id: str) -> bool:
    """Freeze a due draw's entry list and store it with its hash (nothing is published
    here). False if the posting is not due or is frozen already."""
    now = deps.now()
    row = await store.lock_posting(conn, posting_id)
    if row is None or not _is_due(row, now) or row.draw_frozen_at is not None:
        return False
    posting = store.posting_view(row)
    policy = await policy_now(conn, deps)
    pending = await store.pending_of_posting(conn, posting_id)
    refused = await _refusals(conn, policy, posting, pending, now)
    entering = [p for p in pending if p.application_id not in refused]
    close_at = row.applications_close_at or row.starts_at
    months = fair_draw.window_months(month_of(close_at), policy.draw_window_months)
    minutes = await store.minutes_in_months(conn, [p.citizen_id for p in entering], months)
    committed = await store.draw_commitment(conn, posting_id)
    if committed is None:
        # Opened before commit-then-reveal: committed now, after close, which the record's
        # timeline shows (a verifier says `timeline_invalid`), rather than a pretence.
        log.warning("draw posting %s had no commitment; committing at its freeze", posting_id)
        commitment = await commit(conn, posting_id, now)
    else:
        commitment = committed.commitment
    frozen = fair_draw.freeze(
        posting_id,
        commitment,
        [fair_draw.Entry(p.application_id, minutes.get(p.citizen_id, 0)) for p in entering],
        seats=posting.seats_free,
        waitlist_room=posting.waitlist_room,
        half_weight_minutes=policy.draw_half_weight_minutes,
        window_months=policy.draw_window_months,
    )
    await store.insert_draw_freeze(
        conn,
        FreezeRow(
            posting_id=posting_id,
            algorithm=frozen.algorithm,
            seats=frozen.seats,
            waitlist_room=frozen.waitlist_room,
            half_weight_minutes=frozen.half_weight_minutes,
            window_months=frozen.window_months,
            months=list(months),
            entries=[
                {
                    "entry_id": p.application_id,
                    "citizen_id": p.citizen_id,
                    "minutes_window": minutes.get(p.citizen_id, 0),
                }
                for p in entering
            ],
            excluded=[
                {"application_id": p.application_id, "reason": refused[p.application_id].value}
                for p in pending
                if p.application_id in refused
            ],
            entry_list_hash=frozen.entry_list_hash(),
            applications_close_at=close_at,
            frozen_at=now,
        ),
    )
    log.info(
        "draw of %s frozen: %d entries, %d excluded, entry list hash %s",
        posting_id,
        len(entering),
        len(refused),
        frozen.entry_list_hash(),
    )
    return True


def frozen_list(row: FreezeRow, commitment: str) -> fair_draw.FrozenEntryList:
    """The stored freeze as the domain's frozen entry list (its hash is the stored one)."""
    return fair_draw.FrozenEntryList(
        posting_id=row.posting_id,
        algorithm=row.algorithm,
        commitment=commitment,
        seats=row.seats,
        waitlist_room=row.waitlist_room,
        half_weight_minutes=row.half_weight_minutes,
        window_months=row.window_months,
        entries=tuple(
            sorted(
                (fair_draw.Entry(e["entry_id"], int(e["minutes_window"])) for e in row.entries),
                key=lambda e: e.entry_id,
            )
        ),
    )


@dataclass(frozen=True)
class _Seats:
    """The outcome as it can be given now: winners still pending and still free to take a
    seat confirmed, the waitlist in rank order, the others refused with their reason."""

    confirmed: list[str]
    waitlisted: list[str]
    rejected: list[tuple[str, str]]


async def _seats_now(
    conn: Connection,
    policy: Policy,
    posting: PostingView,
    outcome: fair_draw.Outcome,
    excluded: list[dict[str, str]],
    pending: dict[str, ApplicationRow],
    now: datetime,
) -> _Seats:
    """Normally exactly the outcome. Only if something changed between freeze and draw (a
    crash in between): a withdrawn entrant is skipped, a winner now booked elsewhere is
    refused with the reason, fewer seats than drawn waitlist the surplus winners first.
    The published outcome stays the draw's; free seats then go to the waitlist's head."""
    winners = [a for a in outcome.confirmed if a in pending]
    refused = await _refusals(conn, policy, posting, [pending[a] for a in winners], now)
    winners = [a for a in winners if a not in refused]
    seats = posting.seats_free
    waiting = winners[seats:] + [a for a in outcome.waitlisted if a in pending]
    room = posting.waitlist_room
    full = Reason.POSTING_FULL_NO_WAITLIST.value
    rejected = [(a, r.value) for a, r in refused.items()]
    rejected += [(a, full) for a in waiting[room:]]
    rejected += [(a, full) for a in outcome.not_selected if a in pending]
    rejected += [
        (x["application_id"], x["reason"]) for x in excluded if x["application_id"] in pending
    ]
    return _Seats(winners[:seats], waiting[:room], rejected)


async def draw_frozen(conn: Connection, deps: Deps, posting_id: str) -> bool:
    """Draw a frozen, due posting and publish: bookings (confirmed, waitlisted in rank
    order, the rest refused as before), their notifications, `DrawCompleted` and the
    `draw.completed` notification carrying the revealed record. False if not due."""
    now = deps.now()
    row = await store.lock_posting(conn, posting_id)
    if row is None or not _is_due(row, now) or row.draw_frozen_at is None:
        return False
    freeze = await store.draw_freeze(conn, posting_id)
    seed = await store.draw_seed(conn, posting_id)
    assert freeze is not None and seed is not None, f"posting {posting_id} frozen without them"
    frozen = frozen_list(freeze, seed.commitment)
    if frozen.entry_list_hash() != freeze.entry_list_hash:
        raise RuntimeError(f"the stored entry list of {posting_id} no longer hashes as frozen")
    record = fair_draw.reveal(
        seed.seed,
        frozen,
        committed_at=seed.committed_at,
        applications_close_at=freeze.applications_close_at,
        drawn_at=now,
    )
    posting = store.posting_view(row)
    pending = {p.application_id: p for p in await store.pending_of_posting(conn, posting_id)}
    policy = await policy_now(conn, deps)
    outcome = fair_draw.Outcome(record.confirmed, record.waitlisted, record.not_selected)
    seats = await _seats_now(conn, policy, posting, outcome, freeze.excluded, pending, now)
    effects = await _write_bookings(conn, posting, seats, pending, now)
    await store.set_draw_outcome(
        conn,
        posting_id,
        {
            "confirmed": list(record.confirmed),
            "waitlisted": list(record.waitlisted),
            "not_selected": list(record.not_selected),
        },
        now,
    )
    await store.mark_drawn(conn, posting_id, now)
    citizens = {e["entry_id"]: e["citizen_id"] for e in freeze.entries}
    effects.add(notifications.draw_completed(record, citizens, now))
    await promote(conn, deps, posting_id, now, effects)
    await effects.write(conn, now)
    log.info(
        "draw of %s: %d entries, %d confirmed, %d waitlisted, %d refused",
        posting_id,
        len(record.entries),
        len(seats.confirmed),
        len(seats.waitlisted),
        len(seats.rejected),
    )
    return True


async def _write_bookings(
    conn: Connection,
    posting: PostingView,
    seats: _Seats,
    pending: dict[str, ApplicationRow],
    now: datetime,
) -> Effects:
    """Decide the pending applications (booking ids and waitlist positions in rank order)
    and build their events and notifications."""
    posting_id = posting.posting_id
    queue_pos = await store.take_queue_positions(conn, posting_id, len(seats.waitlisted))
    changes: list[Decided] = []
    booking_ids: dict[str, str] = {}
    booked = [*seats.confirmed, *seats.waitlisted]
    fresh = await new_check_in_codes(conn, posting_id, len(booked))
    codes = dict(zip(booked, fresh, strict=True))
    for application_id in seats.confirmed:
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
    for application_id in seats.waitlisted:
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
    changes.extend(Decided(a, "rejected", reason) for a, reason in seats.rejected)
    await store.set_decisions(conn, posting_id, changes, now)

    def facts(application_id: str) -> BookingFacts:
        p = pending[application_id]
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
    for application_id in seats.confirmed:
        effects.add(notifications.confirmed(facts(application_id), now))
    for index, application_id in enumerate(seats.waitlisted, start=1):
        position = posting.waitlisted_count + index
        effects.add(notifications.waitlisted(facts(application_id), now, position))
    for application_id, reason in seats.rejected:
        effects.add(notifications.rejected(facts(application_id), now, reason))
    return effects


async def draw_posting(pool: Pool, deps: Deps, posting_id: str) -> bool:
    """The whole draw of a due posting: freeze (committed on its own first), then draw and
    publish. Safe to repeat at any point: a stored freeze is reused, a drawn posting is
    left alone. Returns whether this call drew it."""

    async def freeze() -> bool:
        async with pool.acquire() as conn, conn.transaction():
            return await freeze_entries(conn, deps, posting_id)

    async def draw() -> bool:
        async with pool.acquire() as conn, conn.transaction():
            return await draw_frozen(conn, deps, posting_id)

    await retry_conflicts(freeze)
    return await retry_conflicts(draw)


async def run_due_draws(pool: Pool, deps: Deps, batch_size_max: int) -> int:
    """Run the draws that are due (at most `batch_size_max`), each under its posting's lock
    (so every replica may sweep); how many ran."""
    async with pool.acquire() as conn:
        due = await store.draws_due(conn, deps.now(), batch_size_max)
    ran = 0
    for posting_id in due:
        ran += await draw_posting(pool, deps, posting_id)
    return ran

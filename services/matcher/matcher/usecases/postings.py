"""Postings as the registry publishes them: open (deciding the applications held for it),
update (moved times, new capacity), cancel and close (ending its bookings), and the expiry
of applications held for a posting that never came."""

from __future__ import annotations

import logging
from datetime import datetime

from matcher import store
from matcher.domain.policy import Reason
from matcher.store import ApplicationRow, PostingRow
from matcher.usecases import draws, notifications
from matcher.usecases.applications import (
    Candidate,
    PostingBatch,
    decide,
    promote,
    tell_waitlist_moves,
)
from matcher.usecases.deps import Deps
from matcher.usecases.notifications import Effects
from shared.db import Connection, Pool, retry_conflicts
from shared.events import PostingCancelled, PostingClosed, PostingPublished, PostingUpdated

log = logging.getLogger(__name__)


async def open_posting(conn: Connection, deps: Deps, event: PostingPublished) -> None:
    """A posting opens: a draw's seed is fixed and its commitment published with it (issue
    19); tell the partner, then decide the applications that waited for it."""
    now = deps.now()
    if await store.lock_posting(conn, event.posting_id) is not None:
        log.info("posting %s already open; publish ignored", event.posting_id)
        return
    await store.insert_posting(conn, event, waitlist_max=deps.policy.waitlist_length_max, now=now)
    extra: dict[str, str] = {}
    if event.selection == "draw":
        extra["draw_commitment"] = await draws.commit(conn, event.posting_id, now)
    effects = Effects()  # the posting's note first, then its held applications' decisions
    # Nothing is booked yet when the partner hears of it: every seat is left.
    effects.notes.append(
        notifications.posting_note(
            "posting.published", event, now, status="open", seats_left=event.capacity, **extra
        )
    )
    held = await store.held_for_posting(conn, event.posting_id)
    if not held:
        await effects.write(conn, now)
        return
    row = await store.posting(conn, event.posting_id)
    assert row is not None
    # Held citizens' standing is read (and their rows locked) now, like any arrival's.
    locked = await store.lock_citizens(conn, [h.citizen_id for h in held])
    candidates = [Candidate.released(h, locked[h.citizen_id].suspended_until) for h in held]
    await store.resolve_held(
        conn, [h.application_id for h in held], status="released", reason=None, at=now
    )
    await decide(conn, deps, [PostingBatch(row, candidates)], now, effects)


async def update_posting(conn: Connection, deps: Deps, event: PostingUpdated) -> None:
    """New terms: capacity never below the confirmed count; moved times move the bookings
    (a citizen who would then overlap another booking loses this one, without a strike);
    more seats promote from the waitlist."""
    now = deps.now()
    row = await store.lock_posting(conn, event.posting_id)
    if row is None:
        log.warning("update of unknown posting %s ignored", event.posting_id)
        return
    if event.revision <= row.revision or row.status != "open":
        log.info("update r%d of %s ignored (stale or not open)", event.revision, event.posting_id)
        return
    capacity = event.capacity
    if capacity < row.confirmed_count:
        log.warning(
            "posting %s: new capacity %d is below %d confirmed bookings; keeping %d",
            event.posting_id,
            event.capacity,
            row.confirmed_count,
            row.confirmed_count,
        )
        capacity = row.confirmed_count
    effects = Effects()
    if (event.starts_at, event.ends_at) != (row.starts_at, row.ends_at):
        await _move_bookings(conn, event, now, effects)
    await store.update_posting_terms(conn, event, capacity=capacity)
    extra: dict[str, str] = {}
    if event.selection == "draw":
        # The seed fixed at opening is kept (commit() stores one only if there is none:
        # a posting that became a draw, or opened before issue 19).
        extra["draw_commitment"] = await draws.commit(conn, event.posting_id, now)
    effects.notes.append(
        notifications.posting_note(
            "posting.updated",
            event,
            now,
            status="open",
            capacity=capacity,
            revision=event.revision,
            **extra,
        )
    )
    before = await store.waitlist_ranks(conn, event.posting_id)
    await promote(conn, deps, event.posting_id, now, effects)
    await tell_waitlist_moves(conn, event.posting_id, before, now, effects)
    await effects.write(conn, now)


async def _move_bookings(
    conn: Connection, event: PostingUpdated, now: datetime, effects: Effects
) -> None:
    """Moved times: confirmed bookings that would overlap another of their citizen's are
    cancelled (by the system, no strike); the others follow the posting."""
    confirmed = await store.applications_of_posting(conn, event.posting_id, ["confirmed"])
    await store.lock_citizens(conn, [c.citizen_id for c in confirmed])
    clashing = set(
        await store.overlapping_elsewhere(conn, event.posting_id, event.starts_at, event.ends_at)
    )
    await _cancel_bookings(
        conn,
        event.posting_id,
        [a for a in confirmed if a.application_id in clashing],
        now,
        effects,
        cancelled_by="system",
        reason=Reason.RESCHEDULED_OVERLAP,
    )
    await store.move_bookings(conn, event.posting_id, event.starts_at, event.ends_at)


async def cancel_posting(conn: Connection, deps: Deps, event: PostingCancelled) -> None:
    """Every booking is cancelled (by the facility or the system, never a strike), pending
    and held applications are rejected, and the partner unlists the posting."""
    now = deps.now()
    row = await store.lock_posting(conn, event.posting_id)
    if row is not None and row.status == "cancelled":
        return
    cancelled_by = "facility" if event.reason == "facility" else "system"
    await _end_posting(
        conn,
        row,
        event.posting_id,
        now,
        statuses=["confirmed", "waitlisted"],
        cancelled_by=cancelled_by,
        reason=Reason.POSTING_CANCELLED,
        status="cancelled",
        note_extra={"reason": event.reason},
    )


async def close_posting(conn: Connection, deps: Deps, event: PostingClosed) -> None:
    """The shift is over: confirmed bookings stay (attendance is about them), the waitlist
    and any undrawn applications end."""
    now = deps.now()
    row = await store.lock_posting(conn, event.posting_id)
    if row is not None and row.status != "open":
        return
    await _end_posting(
        conn,
        row,
        event.posting_id,
        now,
        statuses=["waitlisted"],
        cancelled_by="system",
        reason=Reason.POSTING_CLOSED,
        status="closed",
        note_extra={},
    )


async def _end_posting(
    conn: Connection,
    row: PostingRow | None,
    posting_id: str,
    now: datetime,
    *,
    statuses: list[str],
    cancelled_by: str,
    reason: Reason,
    status: str,
    note_extra: dict[str, str],
) -> None:
    """A cancelled or closed posting (its lock held): an unknown one rejects what is held
    for it and is remembered as ended (later applications are refused at once); a known
    one ends the bookings in `statuses` and the pending applications, takes `status` and
    tells the partner (`posting.closed`)."""
    effects = Effects()
    if row is None:
        await _reject_held(conn, posting_id, reason, now, effects)
        await store.remember_ended_posting(conn, posting_id, reason.value, now)
        await effects.write(conn, now)
        return
    await _end_bookings(
        conn,
        posting_id,
        now,
        effects,
        statuses=statuses,
        cancelled_by=cancelled_by,
        reason=reason,
    )
    await store.set_posting_status(conn, posting_id, status)
    effects.notes.append(
        notifications.posting_note(
            "posting.closed", {"posting_id": posting_id}, now, status=status, **note_extra
        )
    )
    await effects.write(conn, now)


async def _end_bookings(
    conn: Connection,
    posting_id: str,
    now: datetime,
    effects: Effects,
    *,
    statuses: list[str],
    cancelled_by: str,
    reason: Reason,
) -> None:
    live = await store.applications_of_posting(conn, posting_id, [*statuses, "pending"])
    bookings = [a for a in live if a.status != "pending"]
    pending = [a for a in live if a.status == "pending"]
    await _cancel_bookings(
        conn, posting_id, bookings, now, effects, cancelled_by=cancelled_by, reason=reason
    )
    await store.cancel_applications(
        conn,
        posting_id,
        [a.application_id for a in pending],
        status="rejected",
        reason=reason.value,
        cancelled_by=None,
        at=now,
    )
    for app in pending:
        effects.add(notifications.rejected(notifications.facts_of(app), now, reason.value))


async def _cancel_bookings(
    conn: Connection,
    posting_id: str,
    bookings: list[ApplicationRow],
    now: datetime,
    effects: Effects,
    *,
    cancelled_by: str,
    reason: Reason,
) -> None:
    """Cancel bookings of one posting in one statement (never a strike) and tell the
    citizen and the partner of each."""
    await store.cancel_applications(
        conn,
        posting_id,
        [a.application_id for a in bookings],
        status="cancelled",
        reason=reason.value,
        cancelled_by=cancelled_by,
        at=now,
    )
    for app in bookings:
        effects.add(
            notifications.cancelled(
                notifications.facts_of(app),
                now,
                cancelled_by=cancelled_by,
                reason=reason.value,
                was_confirmed=app.status == "confirmed",
            )
        )


async def _reject_held(
    conn: Connection, posting_id: str, reason: Reason, now: datetime, effects: Effects
) -> None:
    held = await store.held_for_posting(conn, posting_id)
    if not held:
        return
    await store.resolve_held(
        conn, [h.application_id for h in held], status="rejected", reason=reason.value, at=now
    )
    for h in held:
        effects.add(notifications.rejected(notifications.facts_of_held(h), now, reason.value))


async def expire_held(conn: Connection, deps: Deps, posting_id: str) -> int:
    """Reject the applications that waited too long for an unknown posting."""
    now = deps.now()
    if await store.lock_posting(conn, posting_id) is not None:
        return 0  # known now: its PostingPublished released them in the same lock
    held = await store.held_for_posting(conn, posting_id)
    expired = [h for h in held if h.held_until <= now]
    if not expired:
        return 0
    await store.resolve_held(
        conn,
        [h.application_id for h in expired],
        status="rejected",
        reason=Reason.UNKNOWN_POSTING.value,
        at=now,
    )
    effects = Effects()
    for h in expired:
        effects.add(
            notifications.rejected(
                notifications.facts_of_held(h), now, Reason.UNKNOWN_POSTING.value
            )
        )
    await effects.write(conn, now)
    return len(expired)


async def expire_held_applications(pool: Pool, deps: Deps, batch_size_max: int) -> int:
    """Reject what waited too long for an unknown posting, one posting per transaction
    under its lock (at most `batch_size_max` held applications' postings a pass)."""
    async with pool.acquire() as conn:
        postings = await store.held_expired_postings(conn, deps.now(), batch_size_max)
    total = 0
    for posting_id in postings:

        async def one(posting_id: str = posting_id) -> int:
            async with pool.acquire() as conn, conn.transaction():
                return await expire_held(conn, deps, posting_id)

        expired = await retry_conflicts(one)
        if expired:
            log.info("%d held application(s) for %s rejected: unknown_posting", expired, posting_id)
        total += expired
    return total

"""SQL of the matcher's schema (asyncpg, plain parametrised statements).

Every function takes the caller's connection and runs inside the caller's transaction; the
decision layer (`matcher.decisions`) decides what to call. Bulk variants take lists and use
`unnest`, so a fetched batch of applications (thousands, for one posting or many) is a
handful of statements, however many postings it spans.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from matcher.domain.citizens import mask_partner_id, new_citizen_id
from matcher.domain.decide import PostingView
from matcher.domain.eligibility import Booked, Profile, Shift
from shared.events import PostingPublished, PostingUpdated

PRODUCER = "matcher"
NOTIFY_CHANNEL = "matcher_partner_notifications"


def new_booking_id() -> str:
    return "bkg_" + uuid.uuid4().hex[:20]


# --- locks ------------------------------------------------------------------------------


async def lock_posting(conn: asyncpg.Connection, posting_id: str) -> asyncpg.Record | None:
    """Serialize every transaction about one posting, known or not yet (see
    `lock_postings`); the posting's row, or None if the matcher does not know it yet."""
    return (await lock_postings(conn, [posting_id])).get(posting_id)


async def lock_postings(
    conn: asyncpg.Connection, posting_ids: Iterable[str]
) -> dict[str, asyncpg.Record]:
    """Serialize every transaction about these postings, known or not yet, in one round
    trip; returns the rows of the known ones.

    For each posting in id order (so two transactions never wait for each other in a
    cycle): the advisory lock, which covers a posting whose row does not exist yet (an
    application racing its PostingPublished), then `FOR UPDATE` on the row, against writers
    that do not take the advisory lock. The SQL function (migration 0003) reads each row
    after its advisory lock is held, so a posting inserted by the previous holder is seen.
    """
    ids = sorted(set(posting_ids))
    if not ids:
        return {}
    rows = await conn.fetch("SELECT * FROM lock_postings($1::text[])", ids)
    return {r["posting_id"]: r for r in rows}


def posting_view(row: asyncpg.Record) -> PostingView:
    return PostingView(
        posting_id=row["posting_id"],
        status=row["status"],
        selection=row["selection"],
        shift=Shift(row["starts_at"], row["ends_at"], row["requires_child_safety_check"]),
        capacity=row["capacity"],
        confirmed_count=row["confirmed_count"],
        waitlisted_count=row["waitlisted_count"],
        waitlist_max=row["waitlist_max"],
        applications_close_at=row["applications_close_at"],
        drawn=row["drawn_at"] is not None,
    )


# --- citizens ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CitizenIn:
    partner_user_id: str
    profile: Profile
    received_at: datetime


async def upsert_citizens(
    conn: asyncpg.Connection, citizens: Iterable[CitizenIn]
) -> dict[str, asyncpg.Record]:
    """Create citizens on first sight (`ctz_…`), keep their latest profile, and lock their
    rows for the rest of the transaction (so two postings cannot both give the same
    citizen the last hours of a week). Rows are locked in partner id order (no deadlocks
    between two batches)."""
    latest: dict[str, CitizenIn] = {}
    for c in citizens:
        seen = latest.get(c.partner_user_id)
        if seen is None or c.received_at >= seen.received_at:
            latest[c.partner_user_id] = c
    ordered = [latest[k] for k in sorted(latest)]
    if not ordered:
        return {}
    rows = await conn.fetch(
        """
        INSERT INTO citizens AS c (citizen_id, partner_user_id, display, dong,
            neighbourhood_verified_at, birth_date, child_safety_check, profile_received_at)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                             $5::timestamptz[], $6::date[], $7::bool[], $8::timestamptz[])
        ON CONFLICT (partner_user_id) DO UPDATE SET
            dong = CASE WHEN EXCLUDED.profile_received_at >= c.profile_received_at
                        THEN EXCLUDED.dong ELSE c.dong END,
            neighbourhood_verified_at = CASE WHEN EXCLUDED.profile_received_at
                        >= c.profile_received_at THEN EXCLUDED.neighbourhood_verified_at
                        ELSE c.neighbourhood_verified_at END,
            birth_date = CASE WHEN EXCLUDED.profile_received_at >= c.profile_received_at
                        THEN EXCLUDED.birth_date ELSE c.birth_date END,
            child_safety_check = CASE WHEN EXCLUDED.profile_received_at
                        >= c.profile_received_at THEN EXCLUDED.child_safety_check
                        ELSE c.child_safety_check END,
            profile_received_at = greatest(c.profile_received_at, EXCLUDED.profile_received_at),
            updated_at = now()
        RETURNING citizen_id, citizen_no, partner_user_id, display, suspended_until
        """,
        [new_citizen_id() for _ in ordered],
        [c.partner_user_id for c in ordered],
        [mask_partner_id(c.partner_user_id) for c in ordered],
        [c.profile.dong for c in ordered],
        [c.profile.neighbourhood_verified_at for c in ordered],
        [c.profile.birth_date for c in ordered],
        [c.profile.child_safety_check for c in ordered],
        [c.received_at for c in ordered],
    )
    return {r["partner_user_id"]: r for r in rows}


async def lock_citizens(
    conn: asyncpg.Connection, citizen_ids: Iterable[str]
) -> dict[str, asyncpg.Record]:
    rows = await conn.fetch(
        "SELECT * FROM citizens WHERE citizen_id = ANY($1::text[])"
        " ORDER BY partner_user_id FOR UPDATE",
        sorted(set(citizen_ids)),
    )
    return {r["citizen_id"]: r for r in rows}


def profile_of(row: asyncpg.Record) -> Profile:
    return Profile(
        dong=row["dong"],
        neighbourhood_verified_at=row["neighbourhood_verified_at"],
        birth_date=row["birth_date"],
        child_safety_check=row["child_safety_check"],
    )


async def citizen(conn: asyncpg.Connection, citizen_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM citizens WHERE citizen_id = $1", citizen_id)


async def confirmed_bookings(
    conn: asyncpg.Connection,
    citizen_ids: Sequence[str],
    window_start: datetime,
    window_end: datetime,
    *,
    exclude_posting_id: str | None = None,
) -> dict[str, list[Booked]]:
    """Each citizen's confirmed bookings that touch [window_start, window_end), other than
    on `exclude_posting_id` (`confirmed_bookings_in` for one window)."""
    found = await confirmed_bookings_in(conn, citizen_ids, [(window_start, window_end)])
    out: dict[str, list[Booked]] = {}
    for citizen_id, bookings in found.items():
        kept = [b for posting_id, b in bookings if posting_id != exclude_posting_id]
        if kept:
            out[citizen_id] = kept
    return out


async def confirmed_bookings_in(
    conn: asyncpg.Connection,
    citizen_ids: Iterable[str],
    windows: Iterable[tuple[datetime, datetime]],
) -> dict[str, list[tuple[str, Booked]]]:
    """Each citizen's confirmed bookings (with their posting) that touch any of `windows`,
    in one query for a whole batch; the caller keeps those of each posting's window."""
    ids = sorted(set(citizen_ids))
    spans = sorted(set(windows))
    if not ids or not spans:
        return {}
    rows = await conn.fetch(
        """
        SELECT a.citizen_id, a.posting_id, a.starts_at, a.ends_at FROM applications a
         WHERE a.citizen_id = ANY($1::text[]) AND a.status = 'confirmed'
           AND EXISTS (SELECT 1 FROM unnest($2::timestamptz[], $3::timestamptz[]) AS w(s, e)
                        WHERE a.starts_at < w.e AND a.ends_at > w.s)
        """,
        ids,
        [s for s, _ in spans],
        [e for _, e in spans],
    )
    out: dict[str, list[tuple[str, Booked]]] = {}
    for r in rows:
        out.setdefault(r["citizen_id"], []).append(
            (r["posting_id"], Booked(r["starts_at"], r["ends_at"]))
        )
    return out


# --- postings ---------------------------------------------------------------------------


async def insert_posting(
    conn: asyncpg.Connection, event: PostingPublished, *, waitlist_max: int, now: datetime
) -> bool:
    """Open a posting; False if it was known already (a replayed or repeated publish)."""
    inserted = await conn.fetchval(
        """
        INSERT INTO postings (posting_id, facility_id, facility_name, facility_dong, title,
            description, tags, starts_at, ends_at, capacity, selection, applications_close_at,
            requires_child_safety_check, status, waitlist_max, published_at)
        VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,'open',$14,$15)
        ON CONFLICT (posting_id) DO NOTHING
        RETURNING true
        """,
        event.posting_id,
        event.facility_id,
        event.facility_name,
        event.facility_dong,
        event.title,
        event.description,
        list(event.tags),
        event.starts_at,
        event.ends_at,
        event.capacity,
        event.selection,
        event.applications_close_at,
        event.requires_child_safety_check,
        waitlist_max,
        now,
    )
    return bool(inserted)


async def update_posting_terms(
    conn: asyncpg.Connection, event: PostingUpdated, *, capacity: int
) -> None:
    await conn.execute(
        """
        UPDATE postings SET facility_name = $2, facility_dong = $3, title = $4,
            description = $5, tags = $6, starts_at = $7, ends_at = $8, capacity = $9,
            selection = $10, applications_close_at = $11, requires_child_safety_check = $12,
            revision = $13, updated_at = now()
         WHERE posting_id = $1
        """,
        event.posting_id,
        event.facility_name,
        event.facility_dong,
        event.title,
        event.description,
        list(event.tags),
        event.starts_at,
        event.ends_at,
        capacity,
        event.selection,
        event.applications_close_at,
        event.requires_child_safety_check,
        event.revision,
    )


async def move_bookings(
    conn: asyncpg.Connection, posting_id: str, starts_at: datetime, ends_at: datetime
) -> None:
    """Live bookings follow their posting's new times."""
    await conn.execute(
        "UPDATE applications SET starts_at = $2, ends_at = $3"
        " WHERE posting_id = $1 AND status IN ('pending', 'confirmed', 'waitlisted')",
        posting_id,
        starts_at,
        ends_at,
    )


async def set_posting_status(conn: asyncpg.Connection, posting_id: str, status: str) -> None:
    await conn.execute(
        "UPDATE postings SET status = $2, updated_at = now() WHERE posting_id = $1",
        posting_id,
        status,
    )


async def take_queue_positions(conn: asyncpg.Connection, posting_id: str, count: int) -> int:
    """Reserve `count` consecutive waitlist positions; returns the first."""
    if count <= 0:
        return 0
    return (await take_queue_positions_of(conn, {posting_id: count}))[posting_id]


async def take_queue_positions_of(
    conn: asyncpg.Connection, counts: dict[str, int]
) -> dict[str, int]:
    """Reserve consecutive waitlist positions on several postings in one statement
    (`{posting_id: count}`); returns the first position of each."""
    wanted = {p: n for p, n in sorted(counts.items()) if n > 0}
    if not wanted:
        return {}
    rows = await conn.fetch(
        "UPDATE postings p SET queue_next = p.queue_next + u.n"
        " FROM unnest($1::text[], $2::bigint[]) AS u(id, n) WHERE p.posting_id = u.id"
        " RETURNING p.posting_id, p.queue_next - u.n AS first",
        list(wanted),
        list(wanted.values()),
    )
    return {r["posting_id"]: int(r["first"]) for r in rows}


async def mark_drawn(conn: asyncpg.Connection, posting_id: str, at: datetime) -> None:
    await conn.execute("UPDATE postings SET drawn_at = $2 WHERE posting_id = $1", posting_id, at)


async def draws_due(conn: asyncpg.Connection, now: datetime, limit: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT posting_id FROM postings WHERE selection = 'draw' AND drawn_at IS NULL"
        " AND status = 'open' AND coalesce(applications_close_at, starts_at) <= $1"
        " ORDER BY coalesce(applications_close_at, starts_at) LIMIT $2",
        now,
        limit,
    )
    return [r["posting_id"] for r in rows]


# --- applications -----------------------------------------------------------------------


async def known_application_ids(conn: asyncpg.Connection, ids: Sequence[str]) -> set[str]:
    """Applications already recorded (decided, pending or held)."""
    rows = await conn.fetch(
        "SELECT application_id FROM applications WHERE application_id = ANY($1::text[])"
        " UNION ALL"
        " SELECT application_id FROM held_applications WHERE application_id = ANY($1::text[])",
        list(ids),
    )
    return {r["application_id"] for r in rows}


async def live_applications(
    conn: asyncpg.Connection, pairs: Iterable[tuple[str, str]]
) -> set[tuple[str, str]]:
    """The `(posting_id, citizen_id)` pairs among `pairs` that hold a live application."""
    wanted = sorted(set(pairs))
    if not wanted:
        return set()
    rows = await conn.fetch(
        "SELECT a.posting_id, a.citizen_id FROM applications a"
        " JOIN unnest($1::text[], $2::text[]) AS u(p, c)"
        "   ON a.posting_id = u.p AND a.citizen_id = u.c"
        " WHERE a.status IN ('pending', 'confirmed', 'waitlisted')",
        [p for p, _ in wanted],
        [c for _, c in wanted],
    )
    return {(r["posting_id"], r["citizen_id"]) for r in rows}


@dataclass(frozen=True)
class NewApplication:
    application_id: str
    posting_id: str
    citizen_id: str
    citizen_no: int
    webhook_id: str
    received_at: datetime
    status: str
    reason: str | None
    booking_id: str | None
    queue_pos: int | None
    starts_at: datetime
    ends_at: datetime
    decided_at: datetime | None


async def insert_applications(conn: asyncpg.Connection, apps: Sequence[NewApplication]) -> None:
    """One statement for a whole batch; the triggers move the posting's counts and the
    constraints refuse over-capacity, overlaps and duplicate live applications."""
    if not apps:
        return
    await conn.execute(
        """
        INSERT INTO applications (application_id, posting_id, citizen_id, citizen_no,
            webhook_id, received_at, status, reason, booking_id, queue_pos, starts_at,
            ends_at, decided_at, confirmed_at)
        SELECT a, p, c, n, w, r, s, re, b, q, st, en, d,
               CASE WHEN s = 'confirmed' THEN d END
          FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[],
                      $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::bigint[],
                      $11::timestamptz[], $12::timestamptz[], $13::timestamptz[])
               AS u(a, p, c, n, w, r, s, re, b, q, st, en, d)
        """,
        [a.application_id for a in apps],
        [a.posting_id for a in apps],
        [a.citizen_id for a in apps],
        [a.citizen_no for a in apps],
        [a.webhook_id for a in apps],
        [a.received_at for a in apps],
        [a.status for a in apps],
        [a.reason for a in apps],
        [a.booking_id for a in apps],
        [a.queue_pos for a in apps],
        [a.starts_at for a in apps],
        [a.ends_at for a in apps],
        [a.decided_at for a in apps],
    )


_APPLICATION_COLUMNS = """
    a.application_id, a.posting_id, a.citizen_id, a.citizen_no, a.webhook_id, a.received_at,
    a.status, a.reason, a.booking_id, a.queue_pos, a.starts_at, a.ends_at, a.decided_at,
    a.confirmed_at, a.cancelled_at, a.cancelled_by, a.strike,
    c.partner_user_id, c.display AS citizen_display, c.suspended_until
"""


async def application(conn: asyncpg.Connection, application_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {_APPLICATION_COLUMNS} FROM applications a"
        " JOIN citizens c USING (citizen_id) WHERE a.application_id = $1",
        application_id,
    )


async def applications_of_posting(
    conn: asyncpg.Connection,
    posting_id: str,
    statuses: Sequence[str],
    *,
    limit: int | None = None,
    after_application_id: str | None = None,
) -> list[asyncpg.Record]:
    """Applications of a posting in the given statuses, waitlist order first, then arrival."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {_APPLICATION_COLUMNS} FROM applications a JOIN citizens c USING (citizen_id)"
        " WHERE a.posting_id = $1 AND a.status = ANY($2::text[])"
        " AND ($4::text IS NULL OR a.application_id > $4)"
        " ORDER BY a.application_id LIMIT $3",
        posting_id,
        list(statuses),
        limit,
        after_application_id,
    )
    return rows


async def waitlist_head(
    conn: asyncpg.Connection, posting_id: str, limit: int, *, after_pos: int = 0
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {_APPLICATION_COLUMNS} FROM applications a JOIN citizens c USING (citizen_id)"
        " WHERE a.posting_id = $1 AND a.status = 'waitlisted' AND a.queue_pos > $3"
        " ORDER BY a.queue_pos LIMIT $2",
        posting_id,
        limit,
        after_pos,
    )
    return rows


async def waitlist_positions(
    conn: asyncpg.Connection, posting_id: str, application_ids: Sequence[str]
) -> dict[str, int]:
    """1-based position in the waitlist now, for each of `application_ids`."""
    rows = await conn.fetch(
        """
        SELECT application_id, pos FROM (
            SELECT application_id, row_number() OVER (ORDER BY queue_pos) AS pos
              FROM applications WHERE posting_id = $1 AND status = 'waitlisted') w
         WHERE application_id = ANY($2::text[])
        """,
        posting_id,
        list(application_ids),
    )
    return {r["application_id"]: int(r["pos"]) for r in rows}


async def pending_of_posting(conn: asyncpg.Connection, posting_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {_APPLICATION_COLUMNS} FROM applications a JOIN citizens c USING (citizen_id)"
        " WHERE a.posting_id = $1 AND a.status = 'pending'"
        " ORDER BY a.received_at, a.application_id",
        posting_id,
    )
    return rows


async def set_decisions(
    conn: asyncpg.Connection,
    posting_id: str,
    changes: Sequence[tuple[str, str, str | None, str | None, int | None]],
    at: datetime,
) -> None:
    """Bulk status change of `(application_id, status, reason, booking_id, queue_pos)`;
    booking ids and positions are kept when None is given."""
    if not changes:
        return
    await conn.execute(
        """
        UPDATE applications a
           SET status = u.s, reason = coalesce(u.re, a.reason),
               booking_id = coalesce(u.b, a.booking_id), queue_pos = coalesce(u.q, a.queue_pos),
               decided_at = coalesce(a.decided_at, $6),
               confirmed_at = CASE WHEN u.s = 'confirmed' THEN $6 ELSE a.confirmed_at END
          FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $7::bigint[])
               AS u(id, s, re, b, q)
         WHERE a.application_id = u.id AND a.posting_id = $1
        """,
        posting_id,
        [c[0] for c in changes],
        [c[1] for c in changes],
        [c[2] for c in changes],
        [c[3] for c in changes],
        at,
        [c[4] for c in changes],
    )


async def cancel_applications(
    conn: asyncpg.Connection,
    posting_id: str,
    application_ids: Sequence[str],
    *,
    status: str,
    reason: str,
    cancelled_by: str | None,
    at: datetime,
    strike: bool = False,
) -> None:
    """Withdraw, cancel or reject (pending) several applications of one posting at once."""
    if not application_ids:
        return
    await conn.execute(
        """
        UPDATE applications SET status = $3, reason = $4, cancelled_by = $5,
               cancelled_at = $6, strike = $7, decided_at = coalesce(decided_at, $6)
         WHERE posting_id = $1 AND application_id = ANY($2::text[])
        """,
        posting_id,
        list(application_ids),
        status,
        reason,
        cancelled_by,
        at,
        strike,
    )


async def overlapping_elsewhere(
    conn: asyncpg.Connection, posting_id: str, starts_at: datetime, ends_at: datetime
) -> list[str]:
    """Confirmed applications of this posting whose citizen holds another confirmed booking
    overlapping [starts_at, ends_at) (what a reschedule would collide with)."""
    rows = await conn.fetch(
        """
        SELECT DISTINCT a.application_id FROM applications a
          JOIN applications o ON o.citizen_id = a.citizen_id AND o.status = 'confirmed'
                              AND o.posting_id <> a.posting_id
                              AND o.starts_at < $3 AND o.ends_at > $2
         WHERE a.posting_id = $1 AND a.status = 'confirmed'
        """,
        posting_id,
        starts_at,
        ends_at,
    )
    return [r["application_id"] for r in rows]


# --- held applications -------------------------------------------------------------------


@dataclass(frozen=True)
class HeldApplication:
    application_id: str
    posting_id: str
    citizen_id: str
    webhook_id: str
    received_at: datetime
    held_until: datetime


async def hold_applications(conn: asyncpg.Connection, held: Sequence[HeldApplication]) -> None:
    """Park applications for postings not known yet, in one statement (their `seq` follows
    the given order, which is the order they are released in)."""
    if not held:
        return
    await conn.execute(
        """
        INSERT INTO held_applications (application_id, posting_id, citizen_id, webhook_id,
            received_at, held_until)
        SELECT a, p, c, w, r, h
          FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                      $5::timestamptz[], $6::timestamptz[]) WITH ORDINALITY
               AS u(a, p, c, w, r, h, ord)
         ORDER BY ord
        ON CONFLICT (application_id) DO NOTHING
        """,
        [h.application_id for h in held],
        [h.posting_id for h in held],
        [h.citizen_id for h in held],
        [h.webhook_id for h in held],
        [h.received_at for h in held],
        [h.held_until for h in held],
    )


async def held_for_posting(conn: asyncpg.Connection, posting_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT h.*, c.partner_user_id, c.display AS citizen_display, c.citizen_no,
               c.dong, c.neighbourhood_verified_at, c.birth_date, c.child_safety_check
          FROM held_applications h JOIN citizens c USING (citizen_id)
         WHERE h.posting_id = $1 AND h.status = 'held' ORDER BY h.seq FOR UPDATE OF h
        """,
        posting_id,
    )
    return rows


async def held_application(conn: asyncpg.Connection, application_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT h.*, c.partner_user_id, c.display AS citizen_display FROM held_applications h"
        " JOIN citizens c USING (citizen_id) WHERE h.application_id = $1",
        application_id,
    )


async def resolve_held(
    conn: asyncpg.Connection,
    application_ids: Sequence[str],
    *,
    status: str,
    reason: str | None,
    at: datetime,
) -> None:
    await conn.execute(
        "UPDATE held_applications SET status = $2, reason = $3, resolved_at = $4"
        " WHERE application_id = ANY($1::text[]) AND status = 'held'",
        list(application_ids),
        status,
        reason,
        at,
    )


async def held_expired_postings(conn: asyncpg.Connection, now: datetime, limit: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT DISTINCT posting_id FROM (SELECT posting_id FROM held_applications"
        " WHERE status = 'held' AND held_until <= $1 ORDER BY held_until LIMIT $2) h",
        now,
        limit,
    )
    return [r["posting_id"] for r in rows]


# --- draws ------------------------------------------------------------------------------


async def insert_draw(conn: asyncpg.Connection, posting_id: str, record: dict[str, Any]) -> None:
    await conn.execute(
        """
        INSERT INTO draws (posting_id, algorithm, salt, seed, month, half_weight_minutes,
            seats, waitlist_room, inputs, excluded, outcome, drawn_at)
        VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)
        """,
        posting_id,
        record["algorithm"],
        record["salt"],
        record["seed"],
        record["month"],
        record["half_weight_minutes"],
        record["seats"],
        record["waitlist_room"],
        record["inputs"],
        record["excluded"],
        record["outcome"],
        record["drawn_at"],
    )


async def draw(conn: asyncpg.Connection, posting_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM draws WHERE posting_id = $1", posting_id)


async def minutes_in_month(
    conn: asyncpg.Connection, citizen_ids: Sequence[str], month: str
) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT citizen_id, sum(minutes)::int AS minutes FROM attendance"
        " WHERE citizen_id = ANY($1::text[]) AND month = $2 AND status = 'attended'"
        " GROUP BY citizen_id",
        list(citizen_ids),
        month,
    )
    return {r["citizen_id"]: int(r["minutes"]) for r in rows}


# --- attendance, strikes, suspensions ------------------------------------------------------


async def upsert_attendance(
    conn: asyncpg.Connection,
    *,
    attendance_id: str,
    booking_id: str,
    posting_id: str,
    citizen_id: str,
    status: str,
    minutes: int,
    month: str,
    revision: int,
    recorded_at: datetime,
) -> asyncpg.Record | None:
    """Keep the latest revision; returns the previous row (None if new), or raises nothing
    and changes nothing when this revision is older than the stored one."""
    previous = await conn.fetchrow(
        "SELECT * FROM attendance WHERE attendance_id = $1 FOR UPDATE", attendance_id
    )
    if previous is not None and previous["revision"] >= revision:
        return previous
    await conn.execute(
        """
        INSERT INTO attendance (attendance_id, booking_id, posting_id, citizen_id, status,
            minutes, month, revision, recorded_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)
        ON CONFLICT (attendance_id) DO UPDATE SET status = EXCLUDED.status,
            minutes = EXCLUDED.minutes, month = EXCLUDED.month, revision = EXCLUDED.revision,
            recorded_at = EXCLUDED.recorded_at
        """,
        attendance_id,
        booking_id,
        posting_id,
        citizen_id,
        status,
        minutes,
        month,
        revision,
        recorded_at,
    )
    return previous


async def add_strike(
    conn: asyncpg.Connection, citizen_id: str, booking_id: str, kind: str, at: datetime
) -> bool:
    """Record a strike once per (booking, kind); a voided one comes back. True if new."""
    added = await conn.fetchval(
        """
        INSERT INTO strikes (citizen_id, booking_id, kind, occurred_at) VALUES ($1,$2,$3,$4)
        ON CONFLICT (booking_id, kind) DO UPDATE SET voided_at = NULL, occurred_at = $4
            WHERE strikes.voided_at IS NOT NULL
        RETURNING true
        """,
        citizen_id,
        booking_id,
        kind,
        at,
    )
    return bool(added)


async def void_strike(
    conn: asyncpg.Connection, booking_id: str, kind: str, at: datetime
) -> int | None:
    strike_id: int | None = await conn.fetchval(
        "UPDATE strikes SET voided_at = $3 WHERE booking_id = $1 AND kind = $2"
        " AND voided_at IS NULL RETURNING strike_id",
        booking_id,
        kind,
        at,
    )
    return strike_id


async def strikes_of(conn: asyncpg.Connection, citizen_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT * FROM strikes WHERE citizen_id = $1 ORDER BY occurred_at", citizen_id
    )
    return rows


async def suspensions_of(conn: asyncpg.Connection, citizen_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT * FROM suspensions WHERE citizen_id = $1 ORDER BY starts_at", citizen_id
    )
    return rows


async def suspend(
    conn: asyncpg.Connection,
    citizen_id: str,
    starts_at: datetime,
    ends_at: datetime,
    strike_ids: Sequence[int],
) -> None:
    await conn.execute(
        "INSERT INTO suspensions (citizen_id, starts_at, ends_at, strike_ids) VALUES ($1,$2,$3,$4)",
        citizen_id,
        starts_at,
        ends_at,
        list(strike_ids),
    )
    await conn.execute(
        "UPDATE citizens SET suspended_until = greatest(coalesce(suspended_until, $2), $2),"
        " updated_at = now() WHERE citizen_id = $1",
        citizen_id,
        ends_at,
    )


async def lift_suspensions_of_strike(
    conn: asyncpg.Connection, citizen_id: str, strike_id: int, at: datetime
) -> int:
    """Lift the active suspensions a voided strike contributed to; returns how many."""
    lifted = await conn.fetch(
        "UPDATE suspensions SET lifted_at = $3 WHERE citizen_id = $1 AND $2 = ANY(strike_ids)"
        " AND lifted_at IS NULL AND ends_at > $3 RETURNING suspension_id",
        citizen_id,
        strike_id,
        at,
    )
    if lifted:
        await conn.execute(
            """
            UPDATE citizens SET suspended_until = (SELECT max(ends_at) FROM suspensions
                WHERE citizen_id = $1 AND lifted_at IS NULL AND ends_at > $2),
                updated_at = now()
             WHERE citizen_id = $1
            """,
            citizen_id,
            at,
        )
    return len(lifted)


# --- outboxes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Notification:
    """One partner notification; `notification_id` is its stable `webhook-id`."""

    notification_id: str
    type: str
    ordering_key: str
    posting_id: str | None
    application_id: str | None
    booking_id: str | None
    payload: bytes


async def add_notifications(conn: asyncpg.Connection, notes: Sequence[Notification]) -> None:
    """The HTTP outbox: written with the decision, sent by `matcher.notify` after commit
    (woken by the NOTIFY, which Postgres delivers at commit). One statement."""
    if not notes:
        return
    await conn.execute(
        """
        WITH added AS (
            INSERT INTO partner_notifications (notification_id, type, ordering_key,
                posting_id, application_id, booking_id, payload)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                 $6::text[], $7::bytea[]))
        SELECT pg_notify($8, '')
        """,
        [n.notification_id for n in notes],
        [n.type for n in notes],
        [n.ordering_key for n in notes],
        [n.posting_id for n in notes],
        [n.application_id for n in notes],
        [n.booking_id for n in notes],
        [n.payload for n in notes],
        NOTIFY_CHANNEL,
    )

"""SQL of the matcher's schema (asyncpg, plain parametrised statements).

Every function takes the caller's connection and runs inside the caller's transaction; the
use cases (`matcher.usecases`) decide what to call, the views (`matcher.views`) read. Rows
come back as typed rows (frozen dataclasses and NamedTuples named `…Row`), never as asyncpg
Records, so no other module depends on column names. Bulk variants take lists and use
`unnest`, so a fetched batch of applications (thousands, for one posting or many) is a
handful of statements, however many postings it spans.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any, NamedTuple, cast

import asyncpg

from matcher.domain.allowance import MonthFigures
from matcher.domain.citizens import mask_partner_id
from matcher.domain.decide import PostingStatus, PostingView, Selection
from matcher.domain.eligibility import Booked, Profile, Shift
from matcher.domain.policy import MonthCaps, WeekCaps
from matcher.domain.schedule import RECONFIRM_KIND, Window
from shared import outbox
from shared.db import after_commit
from shared.events import CapYear, PostingPublished, PostingUpdated
from shared.ids import random_hex

# Statuses of an application that hold (or wait for) a seat.
LIVE_STATUSES = ("pending", "confirmed", "waitlisted")
NOTIFY_CHANNEL = "matcher_partner_notifications"


def new_citizen_id() -> str:
    """A pseudonymous citizen id (random: it tells nothing about the person)."""
    return "ctz_" + random_hex()[:20]


def new_booking_id() -> str:
    return "bkg_" + random_hex()[:20]


# --- typed rows -------------------------------------------------------------------------


@dataclass(frozen=True)
class PostingRow:
    """A posting as the matcher stores it (every column of `postings`)."""

    posting_id: str
    facility_id: str
    facility_name: str
    facility_dong: str
    title: str
    description: str
    tags: list[str]
    starts_at: datetime
    ends_at: datetime
    capacity: int
    selection: str
    applications_close_at: datetime | None
    requires_child_safety_check: bool
    status: str
    revision: int
    confirmed_count: int
    waitlisted_count: int
    waitlist_max: int
    queue_next: int
    drawn_at: datetime | None
    published_at: datetime
    updated_at: datetime
    draw_frozen_at: datetime | None
    reconfirmation_required: bool
    # What the partner reads besides (migration 0008): the facility's address and
    # contact, the reserved hourly rate, and the version the partner reconciles by (bumped
    # with `changed_at` by a trigger on every change the partner can see).
    facility_address: str | None = None
    facility_contact: str | None = None
    hourly_rate_won: int | None = None
    version: int = 1
    changed_at: datetime | None = None


class BookedOn(NamedTuple):
    """A citizen's confirmed booking and the posting it is on."""

    posting_id: str
    booked: Booked


class CitizenRef(NamedTuple):
    """A citizen as an application needs it (created or refreshed by `upsert_citizens`)."""

    citizen_id: str
    citizen_no: int
    partner_user_id: str
    display: str
    suspended_until: datetime | None
    display_name: str | None


class CitizenStanding(NamedTuple):
    """A citizen's public face and suspension (no profile data)."""

    citizen_id: str
    display: str
    suspended_until: datetime | None


@dataclass(frozen=True)
class NewApplication:
    """An application as a decision writes it."""

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
    check_in_code: str | None


@dataclass(frozen=True)
class ApplicationRow(NewApplication):
    """An application as stored (what its decision wrote and what happened since), with
    its citizen's partner id, masked display and suspension."""

    confirmed_at: datetime | None
    cancelled_at: datetime | None
    cancelled_by: str | None
    strike: bool
    partner_user_id: str
    citizen_display: str
    suspended_until: datetime | None
    display_name: str | None
    reconfirmed_at: datetime | None


@dataclass(frozen=True)
class HeldRow:
    """An application held for a posting not known yet, with its citizen's profile."""

    seq: int
    application_id: str
    posting_id: str
    citizen_id: str
    webhook_id: str
    received_at: datetime
    held_until: datetime
    status: str
    reason: str | None
    resolved_at: datetime | None
    partner_user_id: str
    citizen_display: str
    citizen_no: int
    dong: str
    neighbourhood_verified_at: datetime
    adult_from: date
    child_safety_check: bool
    display_name: str | None

    @property
    def profile(self) -> Profile:
        return Profile(
            dong=self.dong,
            neighbourhood_verified_at=self.neighbourhood_verified_at,
            adult_from=self.adult_from,
            child_safety_check=self.child_safety_check,
        )


@dataclass(frozen=True)
class DrawRow:
    """The stored record of a v1 draw (before issue 19): seed, inputs and outcome."""

    posting_id: str
    algorithm: str
    salt: str
    seed: str
    month: str
    half_weight_minutes: int
    seats: int
    waitlist_room: int
    inputs: list[dict[str, Any]]
    excluded: list[dict[str, str]]
    outcome: dict[str, list[str]]
    drawn_at: datetime


class SeedRow(NamedTuple):
    """A draw posting's secret seed and its commitment (issue 19). Only the draw reads the
    seed; every view reads `CommitmentRow`."""

    seed: bytes
    commitment: str
    committed_at: datetime


class CommitmentRow(NamedTuple):
    commitment: str
    committed_at: datetime


@dataclass(frozen=True)
class FreezeRow:
    """A v2 draw's frozen entry list (`entries`: entry_id = application id, citizen_id,
    minutes_window), the applicants kept out (`excluded`: application_id, reason), the
    hash, and once drawn the outcome (`confirmed`, `waitlisted`, `not_selected`)."""

    posting_id: str
    algorithm: str
    seats: int
    waitlist_room: int
    half_weight_minutes: int
    window_months: int
    months: list[str]
    entries: list[dict[str, Any]]
    excluded: list[dict[str, str]]
    entry_list_hash: str
    applications_close_at: datetime
    frozen_at: datetime
    outcome: dict[str, list[str]] | None = None
    drawn_at: datetime | None = None


class AttendanceRow(NamedTuple):
    """The stored revision of one attendance record."""

    status: str
    revision: int


class StrikeRow(NamedTuple):
    strike_id: int
    booking_id: str
    kind: str
    occurred_at: datetime
    voided_at: datetime | None


class SuspensionRow(NamedTuple):
    starts_at: datetime
    ends_at: datetime
    lifted_at: datetime | None


@dataclass(frozen=True)
class Decided:
    """One status change of `set_decisions`; a None booking id or position keeps the
    stored one."""

    application_id: str
    status: str
    reason: str | None = None
    booking_id: str | None = None
    queue_pos: int | None = None
    check_in_code: str | None = None


# --- locks ------------------------------------------------------------------------------


async def lock_posting(conn: asyncpg.Connection, posting_id: str) -> PostingRow | None:
    """Serialize every transaction about one posting, known or not yet (see
    `lock_postings`); the posting's row, or None if the matcher does not know it yet."""
    return (await lock_postings(conn, [posting_id])).get(posting_id)


async def lock_postings(
    conn: asyncpg.Connection, posting_ids: Iterable[str]
) -> dict[str, PostingRow]:
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
    return {r["posting_id"]: PostingRow(**r) for r in rows}


async def lock_postings_known(
    conn: asyncpg.Connection, posting_ids: Iterable[str], application_ids: Sequence[str]
) -> tuple[dict[str, PostingRow], set[str]]:
    """`lock_postings`, and which of `application_ids` are recorded already (decided,
    pending or held), read once the locks are held (migration 0013), in one round trip."""
    ids = sorted(set(posting_ids))
    rows = await conn.fetch(
        "SELECT (x.posting).*, x.known_application_id"
        " FROM lock_postings_known($1::text[], $2::text[]) AS x",
        ids,
        list(application_ids),
    )
    postings: dict[str, PostingRow] = {}
    known: set[str] = set()
    for r in rows:
        fields = dict(r.items())
        known_id = fields.pop("known_application_id")
        if known_id is None:
            postings[r["posting_id"]] = PostingRow(**fields)
        else:
            known.add(known_id)
    return postings, known


async def posting(conn: asyncpg.Connection, posting_id: str) -> PostingRow | None:
    """A posting's row as it is now (re-read under the caller's lock after a change)."""
    row = await conn.fetchrow("SELECT * FROM postings WHERE posting_id = $1", posting_id)
    return None if row is None else PostingRow(**row)


async def application_counts(conn: asyncpg.Connection, posting_id: str) -> dict[str, int]:
    """How many applications of a posting are in each status."""
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM applications WHERE posting_id = $1 GROUP BY status",
        posting_id,
    )
    return {r["status"]: int(r["n"]) for r in rows}


async def held_count(conn: asyncpg.Connection, posting_id: str) -> int:
    held = await conn.fetchval(
        "SELECT count(*) FROM held_applications WHERE posting_id = $1 AND status = 'held'",
        posting_id,
    )
    return int(held)


def posting_view(row: PostingRow) -> PostingView:
    return PostingView(
        posting_id=row.posting_id,
        status=cast(PostingStatus, row.status),
        selection=cast(Selection, row.selection),
        shift=Shift(row.starts_at, row.ends_at, row.requires_child_safety_check),
        capacity=row.capacity,
        confirmed_count=row.confirmed_count,
        waitlisted_count=row.waitlisted_count,
        waitlist_max=row.waitlist_max,
        applications_close_at=row.applications_close_at,
        drawn=row.drawn_at is not None,
        entries_frozen=row.draw_frozen_at is not None,
    )


# --- citizens ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CitizenIn:
    partner_user_id: str
    profile: Profile
    received_at: datetime
    display_name: str | None = None


async def outbox_has(conn: asyncpg.Connection, event_id: uuid.UUID) -> bool:
    """Whether the outbox holds this event (a replayed webhook's, until the relay's clean-up;
    after that the consumer's event-id guard drops the repeat)."""
    return bool(await conn.fetchval("SELECT true FROM outbox WHERE event_id = $1", event_id))


async def ensure_citizen(conn: asyncpg.Connection, partner_user_id: str) -> str:
    """The citizen id of a partner user, created pseudonymously (no profile) on first
    sight, as an application would create it; the next application brings the profile."""
    for _ in range(2):  # a concurrent first insert is only visible to the next statement
        found = await conn.fetchval(
            """
            WITH new AS (
                INSERT INTO citizens (citizen_id, partner_user_id, display)
                VALUES ($1, $2, $3) ON CONFLICT (partner_user_id) DO NOTHING
                RETURNING citizen_id)
            SELECT citizen_id FROM new
            UNION ALL SELECT citizen_id FROM citizens WHERE partner_user_id = $2
            LIMIT 1
            """,
            new_citizen_id(),
            partner_user_id,
            mask_partner_id(partner_user_id),
        )
        if found is not None:
            return str(found)
    raise RuntimeError(f"no citizen row for partner user after two tries: {partner_user_id!r}")


async def upsert_citizens(
    conn: asyncpg.Connection, citizens: Iterable[CitizenIn]
) -> dict[str, CitizenRef]:
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
            neighbourhood_verified_at, adult_from, child_safety_check, profile_received_at,
            display_name)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                             $5::timestamptz[], $6::date[], $7::bool[], $8::timestamptz[],
                             $9::text[])
        ON CONFLICT (partner_user_id) DO UPDATE SET
            -- the newer profile wins; a cleared one (retention, NULL) loses to any
            dong = CASE WHEN EXCLUDED.profile_received_at
                        >= coalesce(c.profile_received_at, '-infinity')
                        THEN EXCLUDED.dong ELSE c.dong END,
            neighbourhood_verified_at = CASE WHEN EXCLUDED.profile_received_at
                        >= coalesce(c.profile_received_at, '-infinity')
                        THEN EXCLUDED.neighbourhood_verified_at
                        ELSE c.neighbourhood_verified_at END,
            adult_from = CASE WHEN EXCLUDED.profile_received_at
                        >= coalesce(c.profile_received_at, '-infinity')
                        THEN EXCLUDED.adult_from ELSE c.adult_from END,
            child_safety_check = CASE WHEN EXCLUDED.profile_received_at
                        >= coalesce(c.profile_received_at, '-infinity')
                        THEN EXCLUDED.child_safety_check ELSE c.child_safety_check END,
            -- the name sent with the newest application (none sent: none kept)
            display_name = CASE WHEN EXCLUDED.profile_received_at
                        >= coalesce(c.profile_received_at, '-infinity')
                        THEN EXCLUDED.display_name ELSE c.display_name END,
            profile_received_at = greatest(c.profile_received_at, EXCLUDED.profile_received_at),
            updated_at = now()
        RETURNING citizen_id, citizen_no, partner_user_id, display, suspended_until,
                  display_name
        """,
        [new_citizen_id() for _ in ordered],
        [c.partner_user_id for c in ordered],
        [mask_partner_id(c.partner_user_id) for c in ordered],
        [c.profile.dong for c in ordered],
        [c.profile.neighbourhood_verified_at for c in ordered],
        [c.profile.adult_from for c in ordered],
        [c.profile.child_safety_check for c in ordered],
        [c.received_at for c in ordered],
        [c.display_name for c in ordered],
    )
    return {r["partner_user_id"]: CitizenRef(*r) for r in rows}


async def clear_idle_profiles(
    conn: asyncpg.Connection, idle_since: datetime, cleared_at: datetime, limit: int
) -> list[str]:
    """Clear the profile of citizens idle since `idle_since`: no profile received since,
    no application whose shift ends after it, nothing held. Their ids (at most `limit`)."""
    rows = await conn.fetch(
        """
        WITH idle AS (
            SELECT c.citizen_id FROM citizens c
             WHERE c.profile_received_at < $1
               AND NOT EXISTS (SELECT 1 FROM applications a
                                WHERE a.citizen_id = c.citizen_id AND a.ends_at >= $1)
               AND NOT EXISTS (SELECT 1 FROM held_applications h
                                WHERE h.citizen_id = c.citizen_id AND h.status = 'held')
             ORDER BY c.profile_received_at
             LIMIT $3
             FOR UPDATE SKIP LOCKED)
        UPDATE citizens c SET dong = NULL, neighbourhood_verified_at = NULL, adult_from = NULL,
               child_safety_check = NULL, profile_received_at = NULL, profile_cleared_at = $2,
               display_name = NULL,
               updated_at = now()
          FROM idle WHERE c.citizen_id = idle.citizen_id
        RETURNING c.citizen_id
        """,
        idle_since,
        cleared_at,
        limit,
    )
    return [r["citizen_id"] for r in rows]


async def lock_citizens(
    conn: asyncpg.Connection, citizen_ids: Iterable[str]
) -> dict[str, CitizenStanding]:
    """Lock citizens' rows (in partner id order, like `upsert_citizens`); their standing."""
    rows = await conn.fetch(
        "SELECT citizen_id, display, suspended_until FROM citizens"
        " WHERE citizen_id = ANY($1::text[]) ORDER BY partner_user_id FOR UPDATE",
        sorted(set(citizen_ids)),
    )
    return {r["citizen_id"]: CitizenStanding(*r) for r in rows}


async def citizen(conn: asyncpg.Connection, citizen_id: str) -> CitizenStanding | None:
    row = await conn.fetchrow(
        "SELECT citizen_id, display, suspended_until FROM citizens WHERE citizen_id = $1",
        citizen_id,
    )
    return None if row is None else CitizenStanding(*row)


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
        kept = [b.booked for b in bookings if b.posting_id != exclude_posting_id]
        if kept:
            out[citizen_id] = kept
    return out


async def confirmed_bookings_in(
    conn: asyncpg.Connection,
    citizen_ids: Iterable[str],
    windows: Iterable[tuple[datetime, datetime]],
) -> dict[str, list[BookedOn]]:
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
    out: dict[str, list[BookedOn]] = {}
    for r in rows:
        out.setdefault(r["citizen_id"], []).append(
            BookedOn(r["posting_id"], Booked(r["starts_at"], r["ends_at"]))
        )
    return out


@dataclass(frozen=True)
class DecisionReads:
    """What deciding a batch reads once its postings and citizens are locked: the live
    applications among the batch's (posting, citizen) pairs, each citizen's confirmed
    bookings (with their posting) in the windows, the weekly caps held now, each posting's
    next waitlist position, and which of the check-in codes proposed for each posting
    its bookings hold already."""

    live: set[tuple[str, str]]
    booked: dict[str, list[BookedOn]]
    week_caps: WeekCaps
    queue_next: dict[str, int]
    codes_taken: dict[str, set[str]]


async def decision_reads(
    conn: asyncpg.Connection,
    pairs: Iterable[tuple[str, str]],
    windows: Iterable[tuple[datetime, datetime]],
    proposed_codes: Mapping[str, Sequence[str]],
) -> DecisionReads:
    """`DecisionReads` for `(posting_id, citizen_id)` pairs in one round trip, so that
    deciding a batch costs a fixed, small number of statements
    (test_matcher_batch_decisions). The postings are those of `proposed_codes`; a proposed
    code is checked against the posting's codes by the unique index, so the read does not
    grow with the posting's bookings."""
    wanted = sorted(set(pairs))
    spans = sorted(set(windows))
    code_pairs = [(p, c) for p, codes in proposed_codes.items() for c in codes]
    rows = await conn.fetch(
        """
        SELECT 'live'::text AS kind, a.posting_id, a.citizen_id, NULL::timestamptz AS starts_at,
               NULL::timestamptz AS ends_at, NULL::bigint AS n, NULL::bigint AS m
          FROM applications a
          JOIN unnest($1::text[], $2::text[]) AS u(p, c)
            ON a.posting_id = u.p AND a.citizen_id = u.c
         WHERE a.status IN ('pending', 'confirmed', 'waitlisted')
        UNION ALL
        SELECT 'booked', a.posting_id, a.citizen_id, a.starts_at, a.ends_at, NULL, NULL
          FROM applications a
         WHERE a.citizen_id = ANY($2::text[]) AND a.status = 'confirmed'
           AND EXISTS (SELECT 1 FROM unnest($3::timestamptz[], $4::timestamptz[]) AS w(s, e)
                        WHERE a.starts_at < w.e AND a.ends_at > w.s)
        UNION ALL
        SELECT 'cap', NULL, NULL, NULL, NULL, c.year, c.hours_max FROM week_caps c
        UNION ALL
        SELECT 'queue', p.posting_id, NULL, NULL, NULL, p.queue_next, NULL
          FROM postings p WHERE p.posting_id = ANY($5::text[])
        UNION ALL
        SELECT 'code', a.posting_id, a.check_in_code, NULL, NULL, NULL, NULL
          FROM applications a
          JOIN unnest($6::text[], $7::text[]) AS u(p, c)
            ON a.posting_id = u.p AND a.check_in_code = u.c
        """,
        [p for p, _ in wanted],
        [c for _, c in wanted],
        [s for s, _ in spans],
        [e for _, e in spans],
        sorted(proposed_codes),
        [p for p, _ in code_pairs],
        [c for _, c in code_pairs],
    )
    live: set[tuple[str, str]] = set()
    booked: dict[str, list[BookedOn]] = {}
    caps: dict[int, int] = {}
    queue_next: dict[str, int] = {}
    taken: dict[str, set[str]] = {}
    for r in rows:
        kind = r["kind"]
        if kind == "live":
            live.add((r["posting_id"], r["citizen_id"]))
        elif kind == "booked":
            booked.setdefault(r["citizen_id"], []).append(
                BookedOn(r["posting_id"], Booked(r["starts_at"], r["ends_at"]))
            )
        elif kind == "cap":
            caps[int(r["n"])] = int(r["m"])
        elif kind == "queue":
            queue_next[r["posting_id"]] = int(r["n"])
        else:  # a proposed code its posting holds already (in the citizen_id column)
            taken.setdefault(r["posting_id"], set()).add(r["citizen_id"])
    return DecisionReads(live, booked, WeekCaps(caps), queue_next, taken)


# --- weekly caps (the allowance's cap table) ---------------------------------------------


async def week_caps(conn: asyncpg.Connection) -> WeekCaps:
    """The weekly hour caps held now (a few rows: one per year of the allowance's table)."""
    rows = await conn.fetch("SELECT year, hours_max FROM week_caps")
    return WeekCaps({int(r["year"]): int(r["hours_max"]) for r in rows})


async def replace_week_caps(
    conn: asyncpg.Connection, caps_version: int, caps: Sequence[CapYear], now: datetime
) -> bool:
    """Hold version `caps_version` of the cap table instead of the one held, if it is newer;
    True if it was adopted. The advisory lock orders two deliveries of different versions."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('matcher.week_caps'))")
    held = await conn.fetchrow(
        "SELECT max(caps_version) AS version,"
        " coalesce(bool_or(monthly_amount_max_won IS NULL), false) AS lacks_monthly"
        " FROM week_caps"
    )
    assert held is not None
    version = held["version"]
    # The same version again is adopted only to fill the monthly cap of rows held before
    # the matcher kept it (migration 0009).
    if version is not None and (
        version > caps_version or (version == caps_version and not held["lacks_monthly"])
    ):
        return False
    await conn.execute("DELETE FROM week_caps")
    await conn.executemany(
        "INSERT INTO week_caps (year, hours_max, monthly_amount_max_won, source, caps_version,"
        " received_at) VALUES ($1, $2, $3, $4, $5, $6)",
        [
            (c.year, c.weekly_hours_max, c.monthly_amount_max_won, c.source, caps_version, now)
            for c in caps
        ],
    )
    return True


async def month_caps(conn: asyncpg.Connection) -> MonthCaps:
    """The monthly allowance caps held now (from the same CapsChanged as the weekly hours)."""
    rows = await conn.fetch(
        "SELECT year, monthly_amount_max_won FROM week_caps"
        " WHERE monthly_amount_max_won IS NOT NULL"
    )
    return MonthCaps({int(r["year"]): int(r["monthly_amount_max_won"]) for r in rows})


# --- the allowance's read model (allowance.payouts.v1) -----------------------------------


class AccrualTarget(NamedTuple):
    """Whom a payout notification is for: the citizen's partner id, and the application
    of the booking it pays (its notifications' ordering key), if the matcher knows it."""

    partner_user_id: str
    application_id: str | None


async def accrual_target(
    conn: asyncpg.Connection, citizen_id: str, booking_id: str
) -> AccrualTarget | None:
    row = await conn.fetchrow(
        "SELECT c.partner_user_id, a.application_id FROM citizens c"
        " LEFT JOIN applications a ON a.booking_id = $2 AND a.citizen_id = c.citizen_id"
        " WHERE c.citizen_id = $1",
        citizen_id,
        booking_id,
    )
    return None if row is None else AccrualTarget(row["partner_user_id"], row["application_id"])


async def citizen_id_of(conn: asyncpg.Connection, partner_user_id: str) -> str | None:
    """Our id of the citizen the partner calls `partner_user_id`, if we have seen them."""
    found = await conn.fetchval(
        "SELECT citizen_id FROM citizens WHERE partner_user_id = $1", partner_user_id
    )
    return None if found is None else str(found)


class MonthDelta(NamedTuple):
    """What one payout event adds to (or, negative, takes from) a citizen's month."""

    accrued_won: int
    capped_won: int
    gross_won: int
    minutes_paid: int


async def add_to_month(
    conn: asyncpg.Connection, citizen_id: str, period: str, delta: MonthDelta, at: datetime
) -> None:
    """Add a payout event's amounts to the citizen's month (created on first sight; a month
    already closed is shown closed)."""
    await conn.execute(
        """
        INSERT INTO allowance_months AS m (citizen_id, period, accrued_won, capped_won,
            gross_won, minutes_paid, payment_status, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6,
                CASE WHEN EXISTS (SELECT 1 FROM allowance_periods WHERE period = $2)
                     THEN 'closed' ELSE 'accruing' END, $7)
        ON CONFLICT (citizen_id, period) DO UPDATE SET
            accrued_won = m.accrued_won + EXCLUDED.accrued_won,
            capped_won = m.capped_won + EXCLUDED.capped_won,
            gross_won = m.gross_won + EXCLUDED.gross_won,
            minutes_paid = m.minutes_paid + EXCLUDED.minutes_paid,
            updated_at = EXCLUDED.updated_at
        """,
        citizen_id,
        period,
        delta.accrued_won,
        delta.capped_won,
        delta.gross_won,
        delta.minutes_paid,
        at,
    )


async def set_month_cap(
    conn: asyncpg.Connection, citizen_id: str, period: str, cap_won: int, at: datetime
) -> None:
    """The monthly cap the allowance applied to the citizen's month (PayoutCapped)."""
    await conn.execute(
        """
        INSERT INTO allowance_months AS m (citizen_id, period, cap_won, updated_at)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (citizen_id, period) DO UPDATE SET
            cap_won = EXCLUDED.cap_won, updated_at = EXCLUDED.updated_at
        """,
        citizen_id,
        period,
        cap_won,
        at,
    )


async def close_allowance_period(
    conn: asyncpg.Connection, period: str, closed_at: datetime, at: datetime
) -> None:
    """The allowance closed `period`: every citizen's month still accruing is closed."""
    await conn.execute(
        "INSERT INTO allowance_periods (period, closed_at, received_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (period) DO NOTHING",
        period,
        closed_at,
        at,
    )
    await conn.execute(
        "UPDATE allowance_months SET payment_status = 'closed', status_at = $2, updated_at = $3"
        " WHERE period = $1 AND payment_status = 'accruing'",
        period,
        closed_at,
        at,
    )


async def set_month_payment(
    conn: asyncpg.Connection,
    citizen_id: str,
    period: str,
    status: str,
    reason: str | None,
    at: datetime,
) -> None:
    """What the allowance told of a citizen's month's payment (`paid`, `failed`,
    `held_back`, with its reason); the month is created if no accrual was seen yet. Setting
    the same status twice changes nothing but the times."""
    await conn.execute(
        """
        INSERT INTO allowance_months AS m (citizen_id, period, payment_status, status_reason,
            status_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $5)
        ON CONFLICT (citizen_id, period) DO UPDATE SET
            payment_status = EXCLUDED.payment_status,
            status_reason = EXCLUDED.status_reason,
            status_at = EXCLUDED.status_at,
            updated_at = EXCLUDED.updated_at
        """,
        citizen_id,
        period,
        status,
        reason,
        at,
    )


async def partner_user_of(conn: asyncpg.Connection, citizen_id: str) -> str | None:
    """The partner's id of one of our citizens, if the matcher knows the citizen."""
    found = await conn.fetchval(
        "SELECT partner_user_id FROM citizens WHERE citizen_id = $1", citizen_id
    )
    return None if found is None else str(found)


class AllowanceMonth(NamedTuple):
    """A citizen's month as the read model holds it, and whether the month is closed."""

    figures: MonthFigures
    period_closed: bool


async def allowance_month(conn: asyncpg.Connection, citizen_id: str, period: str) -> AllowanceMonth:
    row = await conn.fetchrow(
        """
        SELECT m.accrued_won, m.capped_won, m.gross_won, m.minutes_paid, m.cap_won,
               m.payment_status, m.status_reason,
               EXISTS (SELECT 1 FROM allowance_periods p WHERE p.period = $2) AS period_closed
          FROM (SELECT 1) AS one
          LEFT JOIN allowance_months m ON m.citizen_id = $1 AND m.period = $2
        """,
        citizen_id,
        period,
    )
    assert row is not None
    if row["payment_status"] is None:
        return AllowanceMonth(MonthFigures(), bool(row["period_closed"]))
    figures = MonthFigures(
        accrued_won=int(row["accrued_won"]),
        capped_won=int(row["capped_won"]),
        gross_won=int(row["gross_won"]),
        minutes_paid=int(row["minutes_paid"]),
        cap_won=None if row["cap_won"] is None else int(row["cap_won"]),
        payment_status=str(row["payment_status"]),
        status_reason=row["status_reason"],
    )
    return AllowanceMonth(figures, bool(row["period_closed"]))


# --- postings ---------------------------------------------------------------------------


async def insert_posting(
    conn: asyncpg.Connection, event: PostingPublished, *, waitlist_max: int, now: datetime
) -> bool:
    """Open a posting; False if it was known already (a replayed or repeated publish)."""
    inserted = await conn.fetchval(
        """
        INSERT INTO postings (posting_id, facility_id, facility_name, facility_dong, title,
            description, tags, starts_at, ends_at, capacity, selection, applications_close_at,
            requires_child_safety_check, status, waitlist_max, published_at,
            reconfirmation_required, facility_address, facility_contact, hourly_rate_won,
            changed_at)
        VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,'open',$14,$15,$16,$17,$18,$19,$15)
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
        event.reconfirmation_required,
        event.facility_address,
        event.facility_contact,
        event.hourly_rate_won,
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
            revision = $13, reconfirmation_required = $14, updated_at = now(),
            -- absent from an update of an older producer: kept, not cleared
            facility_address = coalesce($15, facility_address),
            facility_contact = coalesce($16, facility_contact),
            hourly_rate_won = coalesce($17, hourly_rate_won)
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
        event.reconfirmation_required,
        event.facility_address,
        event.facility_contact,
        event.hourly_rate_won,
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


async def codes_taken(conn: asyncpg.Connection, posting_id: str) -> frozenset[str]:
    """The check-in codes a posting's bookings hold (new ones must differ)."""
    rows = await conn.fetch(
        "SELECT check_in_code FROM applications WHERE posting_id = $1"
        " AND check_in_code IS NOT NULL",
        posting_id,
    )
    return frozenset(r["check_in_code"] for r in rows)


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


_INSERT_APPLICATIONS = """
    INSERT INTO applications (application_id, posting_id, citizen_id, citizen_no,
        webhook_id, received_at, status, reason, booking_id, queue_pos, starts_at,
        ends_at, decided_at, confirmed_at, check_in_code)
    SELECT a, p, c, n, w, r, s, re, b, q, st, en, d,
           CASE WHEN s = 'confirmed' THEN d END, k
      FROM unnest(${0}::text[], ${1}::text[], ${2}::text[], ${3}::bigint[], ${4}::text[],
                  ${5}::timestamptz[], ${6}::text[], ${7}::text[], ${8}::text[],
                  ${9}::bigint[], ${10}::timestamptz[], ${11}::timestamptz[],
                  ${12}::timestamptz[], ${13}::text[])
           AS u(a, p, c, n, w, r, s, re, b, q, st, en, d, k)
"""


def _application_columns(apps: Sequence[NewApplication]) -> tuple[list[Any], ...]:
    return (
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
        [a.check_in_code for a in apps],
    )


async def insert_applications(conn: asyncpg.Connection, apps: Sequence[NewApplication]) -> None:
    """One statement for a whole batch; the triggers move the posting's counts and the
    constraints refuse over-capacity, overlaps and duplicate live applications."""
    if apps:
        await conn.execute(_INSERT_APPLICATIONS.format(*range(1, 15)), *_application_columns(apps))


_APPLICATION_COLUMNS = """
    a.application_id, a.posting_id, a.citizen_id, a.citizen_no, a.webhook_id, a.received_at,
    a.status, a.reason, a.booking_id, a.queue_pos, a.starts_at, a.ends_at, a.decided_at,
    a.check_in_code, a.confirmed_at, a.cancelled_at, a.cancelled_by, a.strike,
    c.partner_user_id, c.display AS citizen_display, c.suspended_until, c.display_name,
    a.reconfirmed_at
"""


async def application(conn: asyncpg.Connection, application_id: str) -> ApplicationRow | None:
    row = await conn.fetchrow(
        f"SELECT {_APPLICATION_COLUMNS} FROM applications a"
        " JOIN citizens c USING (citizen_id) WHERE a.application_id = $1",
        application_id,
    )
    return None if row is None else ApplicationRow(**row)


async def applications_of_posting(
    conn: asyncpg.Connection,
    posting_id: str,
    statuses: Sequence[str],
    *,
    limit: int | None = None,
    after_application_id: str | None = None,
) -> list[ApplicationRow]:
    """Applications of a posting in the given statuses, by application id (the admin pages
    fetch `limit + 1` after the previous page's last id)."""
    rows = await conn.fetch(
        f"SELECT {_APPLICATION_COLUMNS} FROM applications a JOIN citizens c USING (citizen_id)"
        " WHERE a.posting_id = $1 AND a.status = ANY($2::text[])"
        " AND ($4::text IS NULL OR a.application_id > $4)"
        " ORDER BY a.application_id LIMIT $3",
        posting_id,
        list(statuses),
        limit,
        after_application_id,
    )
    return [ApplicationRow(**r) for r in rows]


async def waitlist_head(
    conn: asyncpg.Connection, posting_id: str, limit: int, *, after_pos: int = 0
) -> list[ApplicationRow]:
    """The first `limit` waitlisted applications of a posting, in waitlist order."""
    rows = await conn.fetch(
        f"SELECT {_APPLICATION_COLUMNS} FROM applications a JOIN citizens c USING (citizen_id)"
        " WHERE a.posting_id = $1 AND a.status = 'waitlisted' AND a.queue_pos > $3"
        " ORDER BY a.queue_pos LIMIT $2",
        posting_id,
        limit,
        after_pos,
    )
    return [ApplicationRow(**r) for r in rows]


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


async def waitlist_ranks(conn: asyncpg.Connection, posting_id: str) -> dict[str, int]:
    """Every waitlisted application of a posting and its 1-based position now."""
    rows = await conn.fetch(
        "SELECT application_id, row_number() OVER (ORDER BY queue_pos) AS pos"
        " FROM applications WHERE posting_id = $1 AND status = 'waitlisted'",
        posting_id,
    )
    return {r["application_id"]: int(r["pos"]) for r in rows}


async def applications_by_ids(
    conn: asyncpg.Connection, application_ids: Sequence[str]
) -> list[ApplicationRow]:
    rows = await conn.fetch(
        f"SELECT {_APPLICATION_COLUMNS} FROM applications a JOIN citizens c USING (citizen_id)"
        " WHERE a.application_id = ANY($1::text[]) ORDER BY a.queue_pos, a.application_id",
        list(application_ids),
    )
    return [ApplicationRow(**r) for r in rows]


async def application_of_booking(
    conn: asyncpg.Connection, booking_id: str
) -> ApplicationRow | None:
    row = await conn.fetchrow(
        f"SELECT {_APPLICATION_COLUMNS} FROM applications a"
        " JOIN citizens c USING (citizen_id) WHERE a.booking_id = $1",
        booking_id,
    )
    return None if row is None else ApplicationRow(**row)


async def set_reconfirmed(conn: asyncpg.Connection, application_id: str, at: datetime) -> bool:
    """Mark a confirmed booking reconfirmed (the first time counts); False if it was."""
    done = await conn.fetchval(
        "UPDATE applications SET reconfirmed_at = $2"
        " WHERE application_id = $1 AND reconfirmed_at IS NULL RETURNING true",
        application_id,
        at,
    )
    return bool(done)


# --- notices before the start (reminders, reconfirmation) -------------------------------


async def notices_pending(
    conn: asyncpg.Connection,
    now: datetime,
    windows: Sequence[Window],
    reconfirm_tags: Sequence[str],
    deadline_lead: timedelta,
    limit: int,
) -> list[str]:
    """Application ids of confirmed bookings with a notice due (`matcher.domain.schedule`:
    a window open, confirmed before it opened, not sent yet) or an unanswered
    reconfirmation past its deadline, soonest start first. The use case re-checks each
    under its posting's lock with the same rules."""
    rows = await conn.fetch(
        """
        WITH w AS (
            SELECT * FROM unnest($2::text[], $3::interval[], $4::interval[], $5::bool[])
                AS w(kind, opens, closes, reconfirm)
        ), due AS (
            SELECT a.application_id, a.starts_at
              FROM w JOIN applications a
                ON a.status = 'confirmed' AND a.starts_at <= $1::timestamptz + w.opens
               AND a.starts_at > $1::timestamptz + w.closes
               AND coalesce(a.confirmed_at, a.decided_at) < a.starts_at - w.opens
              JOIN postings p ON p.posting_id = a.posting_id AND p.status = 'open'
             WHERE (NOT w.reconfirm OR p.reconfirmation_required OR p.tags ?| $6::text[])
               AND NOT EXISTS (SELECT 1 FROM booking_reminders r
                                WHERE r.booking_id = a.booking_id AND r.kind = w.kind)
            UNION
            SELECT a.application_id, a.starts_at
              FROM applications a JOIN booking_reminders r
                ON r.booking_id = a.booking_id AND r.kind = $7
             WHERE a.status = 'confirmed' AND a.reconfirmed_at IS NULL
               AND a.starts_at > $1::timestamptz AND a.starts_at <= $1::timestamptz + $8::interval
               AND r.sent_at < a.starts_at - $8::interval
        )
        SELECT application_id FROM due ORDER BY starts_at, application_id LIMIT $9
        """,
        now,
        [w.kind for w in windows],
        [w.opens for w in windows],
        [w.closes for w in windows],
        [w.reconfirmation for w in windows],
        list(reconfirm_tags),
        RECONFIRM_KIND,
        deadline_lead,
        limit,
    )
    return [r["application_id"] for r in rows]


async def notices_sent(conn: asyncpg.Connection, booking_id: str) -> dict[str, datetime]:
    """The notices sent for a booking: kind -> when."""
    rows = await conn.fetch(
        "SELECT kind, sent_at FROM booking_reminders WHERE booking_id = $1", booking_id
    )
    return {r["kind"]: r["sent_at"] for r in rows}


async def mark_notice_sent(
    conn: asyncpg.Connection, booking_id: str, kind: str, at: datetime
) -> bool:
    """Record a notice in the transaction that writes it; False if it was already sent
    (the primary key: each booking's notice of a kind goes out once)."""
    done = await conn.fetchval(
        "INSERT INTO booking_reminders (booking_id, kind, sent_at) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING true",
        booking_id,
        kind,
        at,
    )
    return bool(done)


async def pending_of_posting(conn: asyncpg.Connection, posting_id: str) -> list[ApplicationRow]:
    """A posting's pending applications (a draw's entrants), in arrival order."""
    rows = await conn.fetch(
        f"SELECT {_APPLICATION_COLUMNS} FROM applications a JOIN citizens c USING (citizen_id)"
        " WHERE a.posting_id = $1 AND a.status = 'pending'"
        " ORDER BY a.received_at, a.application_id",
        posting_id,
    )
    return [ApplicationRow(**r) for r in rows]


async def set_decisions(
    conn: asyncpg.Connection,
    posting_id: str,
    changes: Sequence[Decided],
    at: datetime,
) -> None:
    """Bulk status change of several applications of one posting; booking ids and
    positions are kept when None is given."""
    if not changes:
        return
    await conn.execute(
        """
        UPDATE applications a
           SET status = u.s, reason = coalesce(u.re, a.reason),
               booking_id = coalesce(u.b, a.booking_id), queue_pos = coalesce(u.q, a.queue_pos),
               check_in_code = coalesce(u.k, a.check_in_code),
               decided_at = coalesce(a.decided_at, $6),
               confirmed_at = CASE WHEN u.s = 'confirmed' THEN $6 ELSE a.confirmed_at END
          FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $7::bigint[], $8::text[])
               AS u(id, s, re, b, q, k)
         WHERE a.application_id = u.id AND a.posting_id = $1
        """,
        posting_id,
        [c.application_id for c in changes],
        [c.status for c in changes],
        [c.reason for c in changes],
        [c.booking_id for c in changes],
        at,
        [c.queue_pos for c in changes],
        [c.check_in_code for c in changes],
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


class RefusedHeld(NamedTuple):
    """An application for a posting that ended before the matcher knew it: recorded among
    the held ones, resolved at once with the posting's end as the reason."""

    application_id: str
    posting_id: str
    reason: str


async def hold_applications(
    conn: asyncpg.Connection, held: Sequence[HeldApplication], now: datetime
) -> list[RefusedHeld]:
    """Park applications for postings not known yet, in one statement (their `seq` follows
    the given order, which is the order they are released in). Those whose posting is known
    to have ended (`ended_postings`) are recorded rejected instead; they are returned."""
    if not held:
        return []
    rows = await conn.fetch(
        """
        INSERT INTO held_applications (application_id, posting_id, citizen_id, webhook_id,
            received_at, held_until, status, reason, resolved_at)
        SELECT a, p, c, w, r, h,
               CASE WHEN e.reason IS NULL THEN 'held' ELSE 'rejected' END, e.reason,
               CASE WHEN e.reason IS NULL THEN NULL ELSE $7::timestamptz END
          FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                      $5::timestamptz[], $6::timestamptz[]) WITH ORDINALITY
               AS u(a, p, c, w, r, h, ord)
          LEFT JOIN ended_postings e ON e.posting_id = u.p
         ORDER BY ord
        ON CONFLICT (application_id) DO NOTHING
        RETURNING application_id, posting_id, status, reason
        """,
        [h.application_id for h in held],
        [h.posting_id for h in held],
        [h.citizen_id for h in held],
        [h.webhook_id for h in held],
        [h.received_at for h in held],
        [h.held_until for h in held],
        now,
    )
    return [
        RefusedHeld(r["application_id"], r["posting_id"], r["reason"])
        for r in rows
        if r["status"] == "rejected"
    ]


async def remember_ended_posting(
    conn: asyncpg.Connection, posting_id: str, reason: str, at: datetime
) -> None:
    """A posting ended before the matcher knew it: later applications are refused at once."""
    await conn.execute(
        "INSERT INTO ended_postings (posting_id, reason, ended_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (posting_id) DO NOTHING",
        posting_id,
        reason,
        at,
    )


_HELD_COLUMNS = """
    h.seq, h.application_id, h.posting_id, h.citizen_id, h.webhook_id, h.received_at,
    h.held_until, h.status, h.reason, h.resolved_at,
    c.partner_user_id, c.display AS citizen_display, c.citizen_no,
    c.dong, c.neighbourhood_verified_at, c.adult_from, c.child_safety_check, c.display_name
"""


async def held_for_posting(conn: asyncpg.Connection, posting_id: str) -> list[HeldRow]:
    """The applications still held for a posting, in arrival order, locked."""
    rows = await conn.fetch(
        f"""
        SELECT {_HELD_COLUMNS}
          FROM held_applications h JOIN citizens c USING (citizen_id)
         WHERE h.posting_id = $1 AND h.status = 'held' ORDER BY h.seq FOR UPDATE OF h
        """,
        posting_id,
    )
    return [HeldRow(**r) for r in rows]


async def held_application(conn: asyncpg.Connection, application_id: str) -> HeldRow | None:
    row = await conn.fetchrow(
        f"SELECT {_HELD_COLUMNS} FROM held_applications h"
        " JOIN citizens c USING (citizen_id) WHERE h.application_id = $1",
        application_id,
    )
    return None if row is None else HeldRow(**row)


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


async def draw(conn: asyncpg.Connection, posting_id: str) -> DrawRow | None:
    """A v1 draw's record (drawn before issue 19; no longer written)."""
    row = await conn.fetchrow("SELECT * FROM draws WHERE posting_id = $1", posting_id)
    return None if row is None else DrawRow(**row)


async def insert_draw_seed(
    conn: asyncpg.Connection, posting_id: str, seed: bytes, commitment: str, at: datetime
) -> bool:
    """Store a posting's seed once; False (and the stored one kept) if it has one."""
    inserted = await conn.fetchval(
        "INSERT INTO draw_seeds (posting_id, seed, commitment, committed_at)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (posting_id) DO NOTHING RETURNING true",
        posting_id,
        seed,
        commitment,
        at,
    )
    return bool(inserted)


async def draw_seed(conn: asyncpg.Connection, posting_id: str) -> SeedRow | None:
    """The secret seed: for the draw only, never for a view before it."""
    row = await conn.fetchrow(
        "SELECT seed, commitment, committed_at FROM draw_seeds WHERE posting_id = $1",
        posting_id,
    )
    return None if row is None else SeedRow(bytes(row["seed"]), *row[1:])


async def draw_commitment(conn: asyncpg.Connection, posting_id: str) -> CommitmentRow | None:
    row = await conn.fetchrow(
        "SELECT commitment, committed_at FROM draw_seeds WHERE posting_id = $1", posting_id
    )
    return None if row is None else CommitmentRow(*row)


async def revealed_seed(conn: asyncpg.Connection, posting_id: str) -> bytes | None:
    """The seed of a posting whose draw ran (and so was published); None before."""
    seed = await conn.fetchval(
        "SELECT s.seed FROM draw_seeds s JOIN draw_freezes f USING (posting_id)"
        " WHERE s.posting_id = $1 AND f.drawn_at IS NOT NULL",
        posting_id,
    )
    return None if seed is None else bytes(seed)


async def insert_draw_freeze(conn: asyncpg.Connection, row: FreezeRow) -> None:
    """Store the frozen entry list and mark the posting frozen (later applications are
    refused `applications_closed`)."""
    await conn.execute(
        """
        INSERT INTO draw_freezes (posting_id, algorithm, seats, waitlist_room,
            half_weight_minutes, window_months, months, entries, excluded, entry_list_hash,
            applications_close_at, frozen_at)
        VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)
        """,
        row.posting_id,
        row.algorithm,
        row.seats,
        row.waitlist_room,
        row.half_weight_minutes,
        row.window_months,
        row.months,
        row.entries,
        row.excluded,
        row.entry_list_hash,
        row.applications_close_at,
        row.frozen_at,
    )
    await conn.execute(
        "UPDATE postings SET draw_frozen_at = $2 WHERE posting_id = $1",
        row.posting_id,
        row.frozen_at,
    )


async def draw_freeze(conn: asyncpg.Connection, posting_id: str) -> FreezeRow | None:
    row = await conn.fetchrow("SELECT * FROM draw_freezes WHERE posting_id = $1", posting_id)
    return None if row is None else FreezeRow(**row)


async def set_draw_outcome(
    conn: asyncpg.Connection, posting_id: str, outcome: dict[str, list[str]], at: datetime
) -> None:
    await conn.execute(
        "UPDATE draw_freezes SET outcome = $2, drawn_at = $3 WHERE posting_id = $1",
        posting_id,
        outcome,
        at,
    )


async def minutes_in_months(
    conn: asyncpg.Connection, citizen_ids: Sequence[str], months: Sequence[str]
) -> dict[str, int]:
    """Attended minutes per citizen over the given Seoul months (a draw's rolling window)."""
    rows = await conn.fetch(
        "SELECT citizen_id, sum(minutes)::int AS minutes FROM attendance"
        " WHERE citizen_id = ANY($1::text[]) AND month = ANY($2::text[])"
        " AND status = 'attended' GROUP BY citizen_id",
        list(citizen_ids),
        list(months),
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
) -> AttendanceRow | None:
    """Keep the latest revision; returns the previous row (None if new), or raises nothing
    and changes nothing when this revision is older than the stored one."""
    found = await conn.fetchrow(
        "SELECT status, revision FROM attendance WHERE attendance_id = $1 FOR UPDATE",
        attendance_id,
    )
    previous = None if found is None else AttendanceRow(*found)
    if previous is not None and previous.revision >= revision:
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


async def strikes_of(conn: asyncpg.Connection, citizen_id: str) -> list[StrikeRow]:
    rows = await conn.fetch(
        "SELECT strike_id, booking_id, kind, occurred_at, voided_at FROM strikes"
        " WHERE citizen_id = $1 ORDER BY occurred_at",
        citizen_id,
    )
    return [StrikeRow(*r) for r in rows]


async def suspensions_of(conn: asyncpg.Connection, citizen_id: str) -> list[SuspensionRow]:
    rows = await conn.fetch(
        "SELECT starts_at, ends_at, lifted_at FROM suspensions"
        " WHERE citizen_id = $1 ORDER BY starts_at",
        citizen_id,
    )
    return [SuspensionRow(*r) for r in rows]


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


_INSERT_NOTIFICATIONS = """
    INSERT INTO partner_notifications (notification_id, type, ordering_key, posting_id,
        application_id, booking_id, payload)
    SELECT * FROM unnest(${0}::text[], ${1}::text[], ${2}::text[], ${3}::text[],
                         ${4}::text[], ${5}::text[], ${6}::bytea[])
"""


def _notification_columns(notes: Sequence[Notification]) -> tuple[list[Any], ...]:
    return (
        [n.notification_id for n in notes],
        [n.type for n in notes],
        [n.ordering_key for n in notes],
        [n.posting_id for n in notes],
        [n.application_id for n in notes],
        [n.booking_id for n in notes],
        [n.payload for n in notes],
    )


async def add_notifications(conn: asyncpg.Connection, notes: Sequence[Notification]) -> None:
    """The HTTP outbox: written with the decision, sent by `matcher.notify` after commit
    (woken by the NOTIFY, which Postgres delivers at commit). One statement."""
    if notes:
        await write_changes(conn, [], ([], [], [], [], []), notes)


# Decided applications, outbox events and partner notifications of one transaction in one
# statement (one round trip instead of three: issue 20). Data-modifying CTEs all run; the
# applications' triggers and constraints fire at the end of the statement, as before.
_WRITE_CHANGES = f"""
    WITH apps AS ({_INSERT_APPLICATIONS.format(*range(1, 15))}),
         events AS ({outbox.insert_sql(15)}),
         notes AS ({_INSERT_NOTIFICATIONS.format(*range(20, 27))}
             RETURNING seq, notification_id, type, ordering_key, payload, attempts,
                       first_attempt_at, created_at, hashtext(ordering_key) AS key_hash,
                       -- the head of its key: nothing earlier of the key undelivered (the
                       -- subquery sees the table as it was before this statement)
                       NOT EXISTS (SELECT FROM partner_notifications e
                                    WHERE e.ordering_key = partner_notifications.ordering_key
                                      AND e.status <> 'delivered') AS head),
         -- the waitlist positions the decisions took (read by `decision_reads` under the
         -- posting's lock): a posting whose queue moved since is not updated, and counted
         queue AS (UPDATE postings p SET queue_next = p.queue_next + u.n
                     FROM unnest($28::text[], $29::bigint[], $30::bigint[]) AS u(id, first, n)
                    WHERE p.posting_id = u.id AND p.queue_next = u.first
                   RETURNING p.posting_id),
         wake AS (SELECT CASE WHEN cardinality($15::uuid[]) > 0 THEN {outbox.NOTIFY_SQL} END,
                         CASE WHEN cardinality($20::text[]) > 0 THEN pg_notify($27, '') END,
                         (SELECT count(*) FROM queue) AS queues_moved)
    SELECT notes.*, wake.queues_moved FROM wake LEFT JOIN notes ON notes.head
"""

# The in-process twin of the NOTIFY: the senders of this process (`matcher.notify`) are
# handed the notifications this process commits that are the heads of their keys, so a
# decision is sent at its commit without waiting for the NOTIFY and a query. The NOTIFY
# still goes out (other processes' shards, and the fallback if a hand-over is missed).
_COMMITTED_HEADS: list[Callable[[Sequence[DueNotification]], None]] = []


def listen_committed_heads(
    listener: Callable[[Sequence[DueNotification]], None],
) -> Callable[[], None]:
    """Hand `listener` every head notification committed by this process from now on;
    returns the function that stops it."""
    _COMMITTED_HEADS.append(listener)
    return lambda: _COMMITTED_HEADS.remove(listener)


def _hand_over(heads: Sequence[DueNotification]) -> None:
    for listener in list(_COMMITTED_HEADS):
        listener(heads)


async def write_changes(
    conn: asyncpg.Connection,
    apps: Sequence[NewApplication],
    events: tuple[list[Any], ...],
    notes: Sequence[Notification],
    queue_taken: Mapping[str, tuple[int, int]] | None = None,
) -> None:
    """Write decided applications, outbox events (`outbox.columns`) and notifications,
    move each posting's waitlist past the positions taken (`queue_taken[posting_id] =
    (first position, count)`), and wake the relay and the sender at commit, in one
    statement; the notifications that head their keys are handed to this process's senders
    at commit (`listen_committed_heads`)."""
    if events[0] and not conn.is_in_transaction():
        raise RuntimeError("outbox rows must be written in the transaction of the state change")
    taken = sorted((queue_taken or {}).items())
    rows = await conn.fetch(
        _WRITE_CHANGES,
        *_application_columns(apps),
        *events,
        *_notification_columns(notes),
        NOTIFY_CHANNEL,
        [p for p, _ in taken],
        [first for _, (first, _) in taken],
        [n for _, (_, n) in taken],
    )
    if rows[0]["queues_moved"] != len(taken):
        # Positions are read under the posting's lock, so only a writer that skipped the
        # lock could get here: fail the transaction rather than number a waitlist twice.
        raise RuntimeError("a posting's waitlist moved while its decisions were made")
    if not _COMMITTED_HEADS:
        return  # no sender in this process to hand them to
    heads: dict[str, DueNotification] = {}
    for r in rows:
        if r["seq"] is None:
            continue  # no notification written
        first = heads.get(r["ordering_key"])
        if first is None or r["seq"] < first.seq:  # two of one key: the earlier heads it
            heads[r["ordering_key"]] = DueNotification(*tuple(r)[:9])
    if heads:
        after_commit(partial(_hand_over, list(heads.values())))


class NotificationRow(NamedTuple):
    """A partner notification and its delivery state, for operators."""

    seq: int
    notification_id: str
    type: str
    status: str
    posting_id: str | None
    application_id: str | None
    booking_id: str | None
    attempts: int
    created_at: datetime
    first_attempt_at: datetime | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    failed_at: datetime | None


async def notifications_page(
    conn: asyncpg.Connection,
    *,
    status: str,
    after_seq: int,
    limit: int,
    posting_id: str | None,
    application_id: str | None,
) -> list[NotificationRow]:
    """Notifications of one status after `after_seq`, in `seq` order (at most `limit`)."""
    rows = await conn.fetch(
        "SELECT seq, notification_id, type, status, posting_id, application_id, booking_id,"
        " attempts, created_at, first_attempt_at, last_attempt_at, next_attempt_at,"
        " last_status_code, last_error, delivered_at, failed_at"
        " FROM partner_notifications WHERE status = $1 AND seq > $2"
        " AND ($4::text IS NULL OR posting_id = $4)"
        " AND ($5::text IS NULL OR application_id = $5)"
        " ORDER BY seq LIMIT $3",
        status,
        after_seq,
        limit,
        posting_id,
        application_id,
    )
    return [NotificationRow(*r) for r in rows]


async def notification_status(conn: asyncpg.Connection, notification_id: str) -> str | None:
    status: str | None = await conn.fetchval(
        "SELECT status FROM partner_notifications WHERE notification_id = $1", notification_id
    )
    return status


async def resend_notification(conn: asyncpg.Connection, notification_id: str) -> str | None:
    """Put a parked (or any undelivered) notification back in the queue with a fresh retry
    budget and wake the sender; its new status, or None if it is unknown or delivered."""
    status: str | None = await conn.fetchval(
        "UPDATE partner_notifications SET status = 'pending', attempts = 0,"
        " first_attempt_at = NULL, next_attempt_at = now(), failed_at = NULL"
        " WHERE notification_id = $1 AND status <> 'delivered'"
        " RETURNING status",
        notification_id,
    )
    if status is not None:
        await conn.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)
    return status


# --- the sender's queries (matcher.notify) --------------------------------------------------


class DueNotification(NamedTuple):
    """A notification the sender may send now (the head of its ordering key)."""

    seq: int
    notification_id: str
    type: str
    ordering_key: str
    payload: bytes
    attempts: int
    first_attempt_at: datetime | None
    created_at: datetime
    key_hash: int  # hashtext(ordering_key): which shard the row is in (shared/shards.py)


class DeliveredMark(NamedTuple):
    """A 2xx answer not yet marked `delivered` in the table (marked in bulk)."""

    seq: int
    ordering_key: str
    attempts: int
    first_attempt_at: datetime
    delivered_at: datetime
    status_code: int


# Due: pending, its time come, its key in the caller's shards (a range of the key's hash,
# $3..$4), and the head of its ordering key (the oldest notification of the key not yet
# delivered). The index `partner_notifications_pending_seq_hash (seq,
# hashtext(ordering_key)) WHERE status = 'pending'` (migration 0012) gives the pending rows
# in `seq` order with the shard's range checked on its entries (while the statistics say
# few are pending, the planner takes the due rows by `next_attempt_at` and sorts them
# instead: each shard then reads every due row's page once). The head test is a scalar
# subquery on purpose: Postgres cannot turn it into a join, so it is always one probe of
# the (ordering_key, seq) index per candidate. Written as NOT EXISTS, the planner chose a
# nested loop that scanned the whole index per candidate whenever the statistics still
# said "nothing pending" (as they do right after a quiet spell): 520 ms instead of 3 ms for
# 1,000 due among 1.2 million delivered rows (docs/performance.md).
DUE_SQL = """
SELECT n.seq, n.notification_id, n.type, n.ordering_key, n.payload, n.attempts,
       n.first_attempt_at, n.created_at, hashtext(n.ordering_key) AS key_hash
  FROM partner_notifications n
 WHERE n.status = 'pending' AND n.next_attempt_at <= now()
   AND hashtext(n.ordering_key) BETWEEN $3 AND $4
   AND n.ordering_key <> ALL($2::text[])
   AND n.seq = (SELECT min(e.seq) FROM partner_notifications e
                 WHERE e.ordering_key = n.ordering_key AND e.status <> 'delivered')
 ORDER BY n.seq
 LIMIT $1
"""


async def due_notifications(
    conn: asyncpg.Connection,
    limit: int,
    exclude_keys: Sequence[str],
    key_ranges: Sequence[tuple[int, int]],
) -> list[DueNotification]:
    """At most `limit` due heads whose keys hash into `key_ranges` (inclusive; the shards
    the caller holds), none of the ordering keys in `exclude_keys`."""
    found: list[DueNotification] = []
    exclude = list(exclude_keys)
    for low, high in key_ranges:
        if len(found) >= limit:
            break
        rows = await conn.fetch(DUE_SQL, limit - len(found), exclude, low, high)
        found += [DueNotification(*r) for r in rows]
    return found


async def mark_delivered(conn: asyncpg.Connection, done: Sequence[DeliveredMark]) -> None:
    await conn.execute(
        """
        UPDATE partner_notifications n SET status = 'delivered', attempts = u.attempts,
               first_attempt_at = u.first_at, last_attempt_at = u.at,
               last_status_code = u.code, delivered_at = u.at, last_error = NULL
          FROM unnest($1::bigint[], $2::int[], $3::timestamptz[], $4::timestamptz[],
                      $5::int[]) AS u(seq, attempts, first_at, at, code)
         WHERE n.seq = u.seq
        """,
        [d.seq for d in done],
        [d.attempts for d in done],
        [d.first_attempt_at for d in done],
        [d.delivered_at for d in done],
        [d.status_code for d in done],
    )


@dataclass(frozen=True)
class FailedAttempt:
    """An attempt that did not deliver: what the partner (or the network) answered."""

    seq: int
    attempts: int
    first_attempt_at: datetime
    at: datetime
    status_code: int | None
    error: str | None


async def park_notification(pool: asyncpg.Pool, attempt: FailedAttempt) -> None:
    """Give up on a notification: `failed`, until an operator re-sends it. Only a pending
    one: a send that outlived its process's lease may end after the shard's next holder
    delivered the same row, which stays delivered."""
    await pool.execute(
        "UPDATE partner_notifications SET status = 'failed', attempts = $2,"
        " first_attempt_at = $3, last_attempt_at = $4, last_status_code = $5,"
        " last_error = $6, failed_at = $4 WHERE seq = $1 AND status = 'pending'",
        attempt.seq,
        attempt.attempts,
        attempt.first_attempt_at,
        attempt.at,
        attempt.status_code,
        attempt.error,
    )


async def retry_notification_at(
    pool: asyncpg.Pool, attempt: FailedAttempt, next_attempt_at: datetime
) -> None:
    await pool.execute(
        "UPDATE partner_notifications SET attempts = $2, first_attempt_at = $3,"
        " last_attempt_at = $4, last_status_code = $5, last_error = $6,"
        " next_attempt_at = $7 WHERE seq = $1 AND status = 'pending'",
        attempt.seq,
        attempt.attempts,
        attempt.first_attempt_at,
        attempt.at,
        attempt.status_code,
        attempt.error,
        next_attempt_at,
    )


async def undelivered_count(conn: asyncpg.Connection) -> int:
    pending = await conn.fetchval(
        "SELECT count(*) FROM partner_notifications WHERE status <> 'delivered'"
    )
    return int(pending)


async def delete_delivered_before(conn: asyncpg.Connection, before: datetime) -> None:
    """Drop delivered rows past their retention, in a bounded batch."""
    await conn.execute(
        "DELETE FROM partner_notifications WHERE seq IN (SELECT seq FROM"
        " partner_notifications WHERE status = 'delivered' AND delivered_at < $1"
        " ORDER BY delivered_at LIMIT 10000)",
        before,
    )


# --- the partner's reads (pull API) -------------------------------------------------------


async def partner_postings(
    conn: asyncpg.Connection,
    *,
    status: str | None,
    updated_since: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[PostingRow]:
    """Postings by last change, then id (`postings_changes`): optionally of one status and
    changed after `updated_since`; `limit` after the previous page's last position."""
    rows = await conn.fetch(
        """
        SELECT * FROM postings
         WHERE ($1::text IS NULL OR status = $1)
           AND ($2::timestamptz IS NULL OR changed_at > $2)
           AND ($3::timestamptz IS NULL OR (changed_at, posting_id) > ($3, $4::text))
         ORDER BY changed_at, posting_id
         LIMIT $5
        """,
        status,
        updated_since,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [PostingRow(**r) for r in rows]


@dataclass(frozen=True)
class CitizenBookingRow:
    """One booking of a citizen (confirmed, waitlisted or cancelled) with its posting, and
    its waitlist position now when waitlisted."""

    booking_id: str
    application_id: str
    posting_id: str
    status: str
    reason: str | None
    waitlist_position: int | None
    starts_at: datetime
    ends_at: datetime
    confirmed_at: datetime | None
    cancelled_at: datetime | None
    cancelled_by: str | None
    title: str
    facility_name: str
    facility_dong: str
    facility_address: str | None
    facility_contact: str | None
    hourly_rate_won: int | None
    posting_status: str
    check_in_code: str | None


async def citizen_bookings(
    conn: asyncpg.Connection,
    citizen_id: str,
    *,
    ends_from: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[CitizenBookingRow]:
    """A citizen's bookings, soonest shift first (then booking id): those whose shift ends
    at or after `ends_from`, `limit` after the previous page's last position."""
    rows = await conn.fetch(
        """
        SELECT a.booking_id, a.application_id, a.posting_id, a.status, a.reason,
               CASE WHEN a.status = 'waitlisted' THEN
                   (SELECT count(*) FROM applications w
                     WHERE w.posting_id = a.posting_id AND w.status = 'waitlisted'
                       AND w.queue_pos <= a.queue_pos)::int END AS waitlist_position,
               a.starts_at, a.ends_at, a.confirmed_at, a.cancelled_at, a.cancelled_by,
               p.title, p.facility_name, p.facility_dong, p.facility_address,
               p.facility_contact, p.hourly_rate_won, p.status AS posting_status,
               CASE WHEN a.status = 'confirmed' THEN a.check_in_code END AS check_in_code
          FROM applications a JOIN postings p USING (posting_id)
         WHERE a.citizen_id = $1 AND a.booking_id IS NOT NULL
           AND ($2::timestamptz IS NULL OR a.ends_at >= $2)
           AND ($3::timestamptz IS NULL OR (a.starts_at, a.booking_id) > ($3, $4::text))
         ORDER BY a.starts_at, a.booking_id
         LIMIT $5
        """,
        citizen_id,
        ends_from,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [CitizenBookingRow(**r) for r in rows]


# --- partner tokens -----------------------------------------------------------------------


@dataclass(frozen=True)
class PartnerTokenRow:
    key_id: str
    partner_id: str
    secret_hash: str
    created_at: datetime
    expires_at: datetime | None


async def partner_token(conn: asyncpg.Connection, key_id: str) -> PartnerTokenRow | None:
    row = await conn.fetchrow(
        "SELECT key_id, partner_id, secret_hash, created_at, expires_at FROM partner_tokens"
        " WHERE key_id = $1",
        key_id,
    )
    return None if row is None else PartnerTokenRow(**row)


async def insert_partner_token(
    conn: asyncpg.Connection, *, key_id: str, partner_id: str, secret_hash: str, now: datetime
) -> bool:
    """Store a token's hash; False if its key id is known already (kept as it is)."""
    inserted = await conn.fetchval(
        "INSERT INTO partner_tokens (key_id, partner_id, secret_hash, created_at)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (key_id) DO NOTHING RETURNING true",
        key_id,
        partner_id,
        secret_hash,
        now,
    )
    return bool(inserted)


async def expire_partner_tokens(
    conn: asyncpg.Connection, partner_id: str, *, keep_key_id: str, until: datetime
) -> None:
    """The partner's other tokens stop at `until` (one that expires sooner keeps its time)."""
    await conn.execute(
        "UPDATE partner_tokens SET expires_at = least(coalesce(expires_at, $3), $3)"
        " WHERE partner_id = $1 AND key_id <> $2",
        partner_id,
        keep_key_id,
        until,
    )


@dataclass(frozen=True)
class TokenAudit:
    """One audit row of the partner's tokens."""

    at: datetime
    action: str
    partner_id: str
    key_id: str
    previous_valid_until: datetime | None
    staff: str | None = None
    staff_id_authenticated: bool | None = None
    request_id: str | None = None
    client_address: str | None = None


async def audit_partner_token(conn: asyncpg.Connection, audit: TokenAudit) -> None:
    await conn.execute(
        """
        INSERT INTO partner_token_audit (at, action, partner_id, key_id, previous_valid_until,
            staff, staff_id_authenticated, request_id, client_address)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        """,
        audit.at,
        audit.action,
        audit.partner_id,
        audit.key_id,
        audit.previous_valid_until,
        audit.staff,
        audit.staff_id_authenticated,
        audit.request_id,
        audit.client_address,
    )

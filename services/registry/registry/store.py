"""The registry's SQL: plain parametrised statements on its own schema, and the writer of
its outbox rows (`emit`).

Every function takes the connection (and so the transaction) it runs in; the use cases open
the transaction that also writes the outbox rows of the change. Reads answer typed rows
(frozen dataclasses below), never asyncpg Records, so what a query returns is checked where
it is used.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Self

import asyncpg

from registry.domain.attendance import AttendanceInput, RecordedAttendance, Shift
from registry.domain.budget import BudgetView
from registry.domain.checkin import DoorRecord
from registry.domain.postings import PostingFilter, PostingState, ShiftTerms
from shared import outbox
from shared.events import Event
from shared.money import RateEntry

# The `producer` of every event the registry writes.
PRODUCER = "registry"

# The facility columns an administrator may edit (PATCH /v1/admin/facilities/{id}).
FACILITY_EDITABLE = frozenset({"name", "kind", "dong", "address", "contact_phone"})

# A position in a list ordered by (created_at, id): stable under inserts.
Position = tuple[datetime, str]

_POSTING_COLUMNS = """
    p.*, f.name AS facility_name, f.dong AS facility_dong,
    f.address AS facility_address, f.contact_phone AS facility_contact,
    (SELECT count(*) FROM bookings b WHERE b.posting_id = p.id AND b.status = 'confirmed')
        AS confirmed_count,
    (SELECT count(*) FROM bookings b WHERE b.posting_id = p.id AND b.status = 'waitlisted')
        AS waitlisted_count
"""


# --- typed rows -------------------------------------------------------------------------------


class _Row:
    """A row type: a frozen dataclass built from the record's columns of the same names
    (other columns are left out; Postgres arrays become tuples)."""

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Any]]

    @classmethod
    def of(cls, record: asyncpg.Record) -> Self:
        values = {}
        for name in cls.__dataclass_fields__:
            value = record[name]
            values[name] = tuple(value) if isinstance(value, list) else value
        return cls(**values)


@dataclass(frozen=True, slots=True)
class FacilityRow(_Row):
    id: str
    name: str
    kind: str
    dong: str
    address: str | None
    contact_phone: str | None
    requires_child_safety_check: bool
    status: str
    created_at: datetime
    suspended_at: datetime | None


@dataclass(frozen=True, slots=True)
class KeyRow(_Row):
    """A facility key found by its key id, with its facility's status."""

    key_id: str
    secret_hash: str
    expires_at: datetime | None
    facility_id: str
    facility_status: str


@dataclass(frozen=True, slots=True)
class PostingRow(_Row):
    """A posting with its facility's name and dong and its roster counts."""

    id: str
    facility_id: str
    title: str
    description: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    selection: str
    applications_close_at: datetime | None
    requires_child_safety_check: bool
    tags: tuple[str, ...]
    status: str
    revision: int
    reservation_id: str | None
    reserved_amount_won: int | None
    budget_revision: int
    rejection_reason: str | None
    rejection_detail: str | None
    rejection_requested_won: int | None
    last_update_rejected: dict[str, Any] | None
    cancel_reason: str | None
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    rejected_at: datetime | None
    cancelled_at: datetime | None
    closed_at: datetime | None
    budget_released_at: datetime | None
    facility_name: str
    facility_dong: str
    confirmed_count: int
    waitlisted_count: int
    reconfirmation_required: bool = False
    # the facility's address and contact, and the rate of the latest reservation (None
    # while pending, or for a posting opened before the rate was kept)
    facility_address: str | None = None
    facility_contact: str | None = None
    hourly_rate_won: int | None = None
    # the facility's note with its cancellation (None when it gave none, or by suspension)
    cancel_note: str | None = None

    @property
    def terms(self) -> ShiftTerms:
        return ShiftTerms(
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            capacity=self.capacity,
            selection="draw" if self.selection == "draw" else "first_come",
            applications_close_at=self.applications_close_at,
        )

    @property
    def state(self) -> PostingState:
        return PostingState(
            status=self.status,
            title=self.title,
            description=self.description,
            tags=self.tags,
            terms=self.terms,
            reconfirmation_required=self.reconfirmation_required,
        )

    @property
    def budget(self) -> BudgetView:
        return BudgetView(self.status, self.reservation_id, self.budget_revision)

    @property
    def shift(self) -> Shift:
        return Shift(self.starts_at, self.ends_at)


@dataclass(frozen=True, slots=True)
class RevisionRow(_Row):
    """An accepted change of a posting, with the terms before it."""

    posting_id: str
    revision: int
    changed: tuple[str, ...]
    previous_capacity: int
    previous_starts_at: datetime
    previous_ends_at: datetime
    previous_applications_close_at: datetime | None
    capacity: int
    starts_at: datetime
    ends_at: datetime
    applications_close_at: datetime | None
    cause: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DuePosting(_Row):
    id: str
    facility_id: str


@dataclass(frozen=True, slots=True)
class StalePending:
    """Postings waiting for a budget answer too long: how many, and the first few ids."""

    count: int
    ids: list[str]


@dataclass(frozen=True, slots=True)
class BookingRow(_Row):
    booking_id: str
    posting_id: str
    application_id: str
    citizen_id: str
    citizen_display: str
    status: str
    waitlist_position: int | None
    confirmed_at: datetime | None
    promoted_at: datetime | None
    waitlisted_at: datetime | None
    cancelled_at: datetime | None
    cancelled_by: str | None
    updated_at: datetime
    check_in_code: str | None
    display_name: str | None
    was_status: str | None = None
    ended_with_posting: bool = False


@dataclass(frozen=True, slots=True)
class CheckInRow(_Row):
    """When a booking checked in and out at the door."""

    booking_id: str
    posting_id: str
    checked_in_at: datetime
    checked_out_at: datetime | None

    @property
    def door(self) -> DoorRecord:
        return DoorRecord(self.checked_in_at, self.checked_out_at)


@dataclass(frozen=True, slots=True)
class RosterRow(_Row):
    """A booking of the roster with its attendance record and check-in, if any."""

    booking_id: str
    status: str
    waitlist_position: int | None
    citizen_display: str
    display_name: str | None
    check_in_code: str | None
    door_checked_in_at: datetime | None
    door_checked_out_at: datetime | None
    confirmed_at: datetime | None
    promoted_at: datetime | None
    waitlisted_at: datetime | None
    attendance_id: str | None
    attendance_status: str | None
    minutes: int | None
    checked_in_at: datetime | None
    checked_out_at: datetime | None
    attendance_revision: int | None
    cancelled_at: datetime | None = None
    cancelled_by: str | None = None
    was_status: str | None = None


@dataclass(frozen=True, slots=True)
class AttendanceRow(_Row):
    attendance_id: str
    booking_id: str
    posting_id: str
    citizen_id: str
    status: str
    minutes: int
    checked_in_at: datetime | None
    checked_out_at: datetime | None
    revision: int

    @property
    def recorded(self) -> RecordedAttendance:
        return RecordedAttendance(
            attendance_id=self.attendance_id,
            entry=AttendanceInput(
                booking_id=self.booking_id,
                status="no_show" if self.status == "no_show" else "attended",
                checked_in_at=self.checked_in_at,
                checked_out_at=self.checked_out_at,
            ),
            minutes=self.minutes,
            revision=self.revision,
        )


@dataclass(frozen=True, slots=True)
class StoredAnswer(_Row):
    """The answer kept under an Idempotency-Key."""

    request_hash: str
    response_status: int
    response_body: bytes


# --- the outbox -------------------------------------------------------------------------------


async def emit(
    conn: asyncpg.Connection,
    event: Event,
    *,
    occurred_at: datetime,
    event_id: uuid.UUID | None = None,
) -> None:
    """Write `event` to the registry's outbox in the caller's transaction (published iff it
    commits); `event_id` derived from a consumed cause makes a retry write the same event."""
    await outbox.add(conn, event, producer=PRODUCER, occurred_at=occurred_at, event_id=event_id)


# --- facilities and keys --------------------------------------------------------------------


async def insert_facility(
    conn: asyncpg.Connection,
    *,
    facility_id: str,
    name: str,
    kind: str,
    dong: str,
    address: str | None,
    contact_phone: str | None,
    requires_child_safety_check: bool,
    now: datetime,
) -> FacilityRow:
    row = await conn.fetchrow(
        """INSERT INTO facilities (id, name, kind, dong, address, contact_phone,
               requires_child_safety_check, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *""",
        facility_id,
        name,
        kind,
        dong,
        address,
        contact_phone,
        requires_child_safety_check,
        now,
    )
    assert row is not None
    return FacilityRow.of(row)


async def insert_key(
    conn: asyncpg.Connection, *, key_id: str, facility_id: str, secret_hash: str, now: datetime
) -> None:
    await conn.execute(
        "INSERT INTO facility_keys (key_id, facility_id, secret_hash, created_at)"
        " VALUES ($1, $2, $3, $4)",
        key_id,
        facility_id,
        secret_hash,
        now,
    )


async def expire_keys(conn: asyncpg.Connection, facility_id: str, until: datetime) -> None:
    """Every key of the facility stops working at `until` (or earlier if already set)."""
    await conn.execute(
        "UPDATE facility_keys SET expires_at = $2"
        " WHERE facility_id = $1 AND (expires_at IS NULL OR expires_at > $2)",
        facility_id,
        until,
    )


async def get_facility(
    conn: asyncpg.Connection,
    facility_id: str,
    *,
    for_update: bool = False,
    for_share: bool = False,
) -> FacilityRow | None:
    """One facility. `for_share` holds off a concurrent suspension (which locks it for
    update) until the caller's transaction ends, so no posting slips past a suspension."""
    lock = " FOR UPDATE" if for_update else " FOR SHARE" if for_share else ""
    row = await conn.fetchrow(f"SELECT * FROM facilities WHERE id = $1{lock}", facility_id)
    return None if row is None else FacilityRow.of(row)


async def list_facilities(
    conn: asyncpg.Connection, *, limit: int, after: Position | None
) -> list[FacilityRow]:
    if after is None:
        rows = await conn.fetch("SELECT * FROM facilities ORDER BY created_at, id LIMIT $1", limit)
    else:
        rows = await conn.fetch(
            "SELECT * FROM facilities WHERE (created_at, id) > ($1, $2)"
            " ORDER BY created_at, id LIMIT $3",
            after[0],
            after[1],
            limit,
        )
    return [FacilityRow.of(r) for r in rows]


async def suspend_facility(conn: asyncpg.Connection, facility_id: str, now: datetime) -> None:
    await conn.execute(
        "UPDATE facilities SET status = 'suspended', suspended_at = $2"
        " WHERE id = $1 AND status = 'active'",
        facility_id,
        now,
    )


async def update_facility(
    conn: asyncpg.Connection, facility_id: str, changes: dict[str, Any]
) -> FacilityRow:
    """Set the given columns (names from `FACILITY_EDITABLE` only) of one facility."""
    names = sorted(changes)
    if not names or not set(names) <= FACILITY_EDITABLE:
        raise ValueError(f"not editable: {sorted(set(names) - FACILITY_EDITABLE)}")
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
    row = await conn.fetchrow(
        f"UPDATE facilities SET {assignments} WHERE id = $1 RETURNING *",
        facility_id,
        *(changes[name] for name in names),
    )
    assert row is not None
    return FacilityRow.of(row)


async def resume_facility(conn: asyncpg.Connection, facility_id: str) -> None:
    await conn.execute(
        "UPDATE facilities SET status = 'active', suspended_at = NULL"
        " WHERE id = $1 AND status = 'suspended'",
        facility_id,
    )


@dataclass(frozen=True, slots=True)
class FacilityChangeRow(_Row):
    """One administrator's change of a facility, as `facility_changes` keeps it."""

    id: int
    facility_id: str
    action: str
    changes: dict[str, Any]
    actor_role: str
    actor_staff_id: str | None
    staff_id_self_declared: bool
    request_id: str | None
    client_address: str | None
    at: datetime
    recorded_at: datetime


async def record_facility_change(
    conn: asyncpg.Connection,
    *,
    facility_id: str,
    action: str,
    changes: dict[str, Any],
    actor_role: str,
    actor_staff_id: str | None,
    staff_id_self_declared: bool,
    request_id: str | None,
    client_address: str | None,
    at: datetime,
) -> None:
    """Append one row to the facility audit table (in the caller's transaction)."""
    await conn.execute(
        """INSERT INTO facility_changes (facility_id, action, changes, actor_role,
               actor_staff_id, staff_id_self_declared, request_id, client_address, at)
           VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8, $9)""",
        facility_id,
        action,
        changes,
        actor_role,
        actor_staff_id,
        staff_id_self_declared,
        request_id,
        client_address,
        at,
    )


async def facility_changes(
    conn: asyncpg.Connection, facility_id: str, *, limit: int, after: int | None
) -> list[FacilityChangeRow]:
    """A facility's audit rows, oldest first, after the row id `after`."""
    rows = await conn.fetch(
        "SELECT * FROM facility_changes WHERE facility_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        facility_id,
        after or 0,
        limit,
    )
    return [FacilityChangeRow.of(r) for r in rows]


async def find_key(conn: asyncpg.Connection, key_id: str) -> KeyRow | None:
    row = await conn.fetchrow(
        """SELECT k.key_id, k.secret_hash, k.expires_at, f.id AS facility_id,
                  f.status AS facility_status
           FROM facility_keys k JOIN facilities f ON f.id = k.facility_id
           WHERE k.key_id = $1""",
        key_id,
    )
    return None if row is None else KeyRow.of(row)


# --- postings ---------------------------------------------------------------------------------


async def insert_posting(
    conn: asyncpg.Connection,
    *,
    posting_id: str,
    facility_id: str,
    title: str,
    description: str,
    terms: ShiftTerms,
    requires_child_safety_check: bool,
    tags: Sequence[str],
    now: datetime,
    reconfirmation_required: bool = False,
) -> None:
    await conn.execute(
        """INSERT INTO postings (id, facility_id, title, description, starts_at, ends_at,
               capacity, selection, applications_close_at, requires_child_safety_check, tags,
               created_at, updated_at, reconfirmation_required)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13)""",
        posting_id,
        facility_id,
        title,
        description,
        terms.starts_at,
        terms.ends_at,
        terms.capacity,
        terms.selection,
        terms.applications_close_at,
        requires_child_safety_check,
        list(tags),
        now,
        reconfirmation_required,
    )


async def get_posting(
    conn: asyncpg.Connection,
    posting_id: str,
    *,
    facility_id: str | None = None,
    for_update: bool = False,
) -> PostingRow | None:
    """One posting with its facility's name and dong and its roster counts. With
    `facility_id`, a posting of another facility is not found (object-level authorization
    lives in the query, not in a check after it)."""
    if for_update:
        locked = await conn.fetchval(
            "SELECT id FROM postings WHERE id = $1 AND ($2::text IS NULL OR facility_id = $2)"
            " FOR UPDATE",
            posting_id,
            facility_id,
        )
        if locked is None:
            return None
    row = await conn.fetchrow(
        f"""SELECT {_POSTING_COLUMNS} FROM postings p JOIN facilities f ON f.id = p.facility_id
            WHERE p.id = $1 AND ($2::text IS NULL OR p.facility_id = $2)""",
        posting_id,
        facility_id,
    )
    return None if row is None else PostingRow.of(row)


async def list_postings(
    conn: asyncpg.Connection,
    facility_id: str,
    narrow: PostingFilter,
    *,
    limit: int,
    after: Position | None,
) -> list[PostingRow]:
    rows = await conn.fetch(
        f"""SELECT {_POSTING_COLUMNS} FROM postings p JOIN facilities f ON f.id = p.facility_id
            WHERE p.facility_id = $1
              AND (cardinality($2::text[]) = 0 OR p.status = ANY($2::text[]))
              AND ($3::timestamptz IS NULL OR p.starts_at >= $3)
              AND ($4::timestamptz IS NULL OR p.starts_at < $4)
              AND ($5::timestamptz IS NULL OR (p.created_at, p.id) > ($5, $6::text))
            ORDER BY p.created_at, p.id LIMIT $7""",
        facility_id,
        list(narrow.statuses),
        narrow.starts_from,
        narrow.starts_before,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [PostingRow.of(r) for r in rows]


async def open_posting(
    conn: asyncpg.Connection,
    posting_id: str,
    *,
    reservation_id: str,
    amount_won: int,
    budget_revision: int,
    now: datetime,
    hourly_rate_won: int | None = None,
) -> None:
    await conn.execute(
        """UPDATE postings SET status = 'open', reservation_id = $2, reserved_amount_won = $3,
               budget_revision = $4, published_at = $5, updated_at = $5,
               hourly_rate_won = coalesce($6, hourly_rate_won)
           WHERE id = $1""",
        posting_id,
        reservation_id,
        amount_won,
        budget_revision,
        now,
        hourly_rate_won,
    )


async def note_reservation(
    conn: asyncpg.Connection,
    posting_id: str,
    *,
    amount_won: int,
    budget_revision: int,
    hourly_rate_won: int | None = None,
) -> None:
    await conn.execute(
        "UPDATE postings SET reserved_amount_won = $2, budget_revision = $3,"
        " hourly_rate_won = coalesce($4, hourly_rate_won) WHERE id = $1",
        posting_id,
        amount_won,
        budget_revision,
        hourly_rate_won,
    )


async def reject_posting(
    conn: asyncpg.Connection,
    posting_id: str,
    *,
    reason: str,
    detail: str,
    now: datetime,
    requested_won: int | None = None,
) -> None:
    await conn.execute(
        """UPDATE postings SET status = 'rejected', rejection_reason = $2, rejection_detail = $3,
               rejected_at = $4, updated_at = $4, rejection_requested_won = $5
           WHERE id = $1""",
        posting_id,
        reason,
        detail,
        now,
        requested_won,
    )


async def cancel_posting(
    conn: asyncpg.Connection,
    posting_id: str,
    *,
    reason: str,
    now: datetime,
    note: str | None = None,
) -> None:
    await conn.execute(
        """UPDATE postings SET status = 'cancelled', cancel_reason = $2, cancelled_at = $3,
               updated_at = $3, cancel_note = $4
           WHERE id = $1""",
        posting_id,
        reason,
        now,
        note,
    )


async def close_posting(conn: asyncpg.Connection, posting_id: str, now: datetime) -> None:
    await conn.execute(
        "UPDATE postings SET status = 'closed', closed_at = $2, updated_at = $2 WHERE id = $1",
        posting_id,
        now,
    )


async def note_budget_released(conn: asyncpg.Connection, posting_id: str, now: datetime) -> None:
    await conn.execute(
        "UPDATE postings SET budget_released_at = coalesce(budget_released_at, $2) WHERE id = $1",
        posting_id,
        now,
    )


async def apply_terms(
    conn: asyncpg.Connection,
    posting_id: str,
    *,
    state: PostingState,
    revision: int,
    now: datetime,
    last_update_rejected: dict[str, Any] | None = None,
    clear_update_rejected: bool = False,
) -> None:
    terms = state.terms
    await conn.execute(
        """UPDATE postings SET title = $2, description = $3, tags = $4, capacity = $5,
               starts_at = $6, ends_at = $7, applications_close_at = $8, revision = $9,
               updated_at = $10, reconfirmation_required = $13,
               last_update_rejected = CASE WHEN $12 THEN NULL
                                           ELSE coalesce($11::jsonb, last_update_rejected) END
           WHERE id = $1""",
        posting_id,
        state.title,
        state.description,
        list(state.tags),
        terms.capacity,
        terms.starts_at,
        terms.ends_at,
        terms.applications_close_at,
        revision,
        now,
        last_update_rejected,
        clear_update_rejected,
        state.reconfirmation_required,
    )


async def insert_revision(
    conn: asyncpg.Connection,
    posting_id: str,
    *,
    revision: int,
    changed: Sequence[str],
    previous: ShiftTerms,
    new: ShiftTerms,
    cause: str,
    now: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO posting_revisions (posting_id, revision, changed, previous_capacity,
               previous_starts_at, previous_ends_at, previous_applications_close_at,
               capacity, starts_at, ends_at, applications_close_at, cause, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)""",
        posting_id,
        revision,
        list(changed),
        previous.capacity,
        previous.starts_at,
        previous.ends_at,
        previous.applications_close_at,
        new.capacity,
        new.starts_at,
        new.ends_at,
        new.applications_close_at,
        cause,
        now,
    )


async def get_revision(
    conn: asyncpg.Connection, posting_id: str, revision: int
) -> RevisionRow | None:
    row = await conn.fetchrow(
        "SELECT * FROM posting_revisions WHERE posting_id = $1 AND revision = $2",
        posting_id,
        revision,
    )
    return None if row is None else RevisionRow.of(row)


async def cost_changed_since(conn: asyncpg.Connection, posting_id: str, revision: int) -> bool:
    """Whether a change after `revision` moved capacity or times again."""
    return bool(
        await conn.fetchval(
            """SELECT EXISTS (SELECT 1 FROM posting_revisions
                              WHERE posting_id = $1 AND revision > $2
                                AND changed && ARRAY['capacity', 'starts_at', 'ends_at',
                                                     'applications_close_at'])""",
            posting_id,
            revision,
        )
    )


async def cancellable_postings(conn: asyncpg.Connection, facility_id: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT id FROM postings WHERE facility_id = $1"
        " AND status IN ('pending_budget', 'open') ORDER BY created_at, id FOR UPDATE",
        facility_id,
    )
    return [r["id"] for r in rows]


async def postings_due_for_close(
    conn: asyncpg.Connection, *, ended_before: datetime, limit: int
) -> list[DuePosting]:
    """Open postings whose attendance window has passed, locked (others skip them)."""
    rows = await conn.fetch(
        """SELECT id, facility_id FROM postings WHERE status = 'open' AND ends_at <= $1
           ORDER BY ends_at, id LIMIT $2 FOR UPDATE SKIP LOCKED""",
        ended_before,
        limit,
    )
    return [DuePosting.of(r) for r in rows]


async def stale_pending(
    conn: asyncpg.Connection, *, created_before: datetime, ids_max: int
) -> StalePending:
    count = await conn.fetchval(
        "SELECT count(*) FROM postings WHERE status = 'pending_budget' AND created_at < $1",
        created_before,
    )
    rows = await conn.fetch(
        "SELECT id FROM postings WHERE status = 'pending_budget' AND created_at < $1"
        " ORDER BY created_at, id LIMIT $2",
        created_before,
        ids_max,
    )
    return StalePending(int(count), [r["id"] for r in rows])


# --- roster read model ------------------------------------------------------------------------


async def posting_exists(conn: asyncpg.Connection, posting_id: str) -> bool:
    """Locks the posting row so booking events and facility changes of one posting are
    applied one at a time."""
    return bool(await lock_postings(conn, [posting_id]))


async def lock_postings(conn: asyncpg.Connection, posting_ids: Sequence[str]) -> set[str]:
    """Lock the rows of those postings that are the registry's (in id order, so two
    batches cannot deadlock) and return their ids: booking events and facility changes of
    one posting are applied one at a time."""
    rows = await conn.fetch(
        "SELECT id FROM postings WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
        sorted(set(posting_ids)),
    )
    return {r["id"] for r in rows}


@dataclass(frozen=True, slots=True)
class HeldBooking:
    """A booking event that holds a seat or a waitlist place, as the roster keeps it."""

    booking_id: str
    posting_id: str
    application_id: str
    citizen_id: str
    citizen_display: str
    status: str  # confirmed | waitlisted
    waitlist_position: int | None
    at: datetime
    promoted: bool = False
    display_name: str | None = None
    check_in_code: str | None = None


async def upsert_bookings(conn: asyncpg.Connection, bookings: Sequence[HeldBooking]) -> None:
    """Apply booking events to the roster, in their order. Events of one posting arrive in
    order (the topic is keyed by posting), so the latest event's status is the booking's
    status; a check-in code, once known, stays (a waitlisted event carries none).

    One statement per run of distinct bookings (an upsert may touch a row once per
    statement): a whole consumed batch is usually one round trip."""
    run: list[HeldBooking] = []
    seen: set[str] = set()
    for booking in bookings:
        if booking.booking_id in seen:
            await _upsert_run(conn, run)
            run, seen = [], set()
        run.append(booking)
        seen.add(booking.booking_id)
    if run:
        await _upsert_run(conn, run)


async def _upsert_run(conn: asyncpg.Connection, run: Sequence[HeldBooking]) -> None:
    await conn.execute(
        """INSERT INTO bookings (booking_id, posting_id, application_id, citizen_id,
               citizen_display, status, waitlist_position, confirmed_at, promoted_at,
               waitlisted_at, updated_at, display_name, check_in_code)
           SELECT b, p, a, c, d, s, w,
                  CASE WHEN s = 'confirmed' THEN t END,
                  CASE WHEN pr THEN t END,
                  CASE WHEN s = 'waitlisted' THEN t END,
                  t, n, k
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::int[], $8::timestamptz[], $9::bool[], $10::text[],
                         $11::text[]) AS e (b, p, a, c, d, s, w, t, pr, n, k)
           ON CONFLICT (booking_id) DO UPDATE SET
               status = EXCLUDED.status,
               citizen_display = EXCLUDED.citizen_display,
               display_name = EXCLUDED.display_name,
               check_in_code = coalesce(EXCLUDED.check_in_code, bookings.check_in_code),
               waitlist_position = EXCLUDED.waitlist_position,
               confirmed_at = coalesce(EXCLUDED.confirmed_at, bookings.confirmed_at),
               promoted_at = coalesce(EXCLUDED.promoted_at, bookings.promoted_at),
               waitlisted_at = coalesce(bookings.waitlisted_at, EXCLUDED.waitlisted_at),
               cancelled_at = NULL, cancelled_by = NULL,
               was_status = NULL, ended_with_posting = false,
               updated_at = EXCLUDED.updated_at
           WHERE bookings.posting_id = EXCLUDED.posting_id""",
        [b.booking_id for b in run],
        [b.posting_id for b in run],
        [b.application_id for b in run],
        [b.citizen_id for b in run],
        [b.citizen_display for b in run],
        [b.status for b in run],
        [b.waitlist_position for b in run],
        [b.at for b in run],
        [b.promoted for b in run],
        [b.display_name for b in run],
        [b.check_in_code for b in run],
    )


async def cancel_booking(
    conn: asyncpg.Connection, *, booking_id: str, posting_id: str, by: str, at: datetime
) -> None:
    """Cancel a booking of the roster, keeping what it was (`was_status`) and whether its
    posting was already cancelled (`ended_with_posting`: the posting's cancellation ended
    it, so the posting's roster keeps listing it). A repeated cancellation keeps both."""
    await conn.execute(
        """UPDATE bookings SET status = 'cancelled', cancelled_at = $3, cancelled_by = $4,
               waitlist_position = NULL, updated_at = $3,
               was_status = CASE WHEN status IN ('confirmed', 'waitlisted') THEN status
                                 ELSE was_status END,
               ended_with_posting = CASE WHEN status IN ('confirmed', 'waitlisted')
                   THEN EXISTS (SELECT 1 FROM postings p
                                WHERE p.id = $2 AND p.status = 'cancelled')
                   ELSE ended_with_posting END
           WHERE booking_id = $1 AND posting_id = $2""",
        booking_id,
        posting_id,
        at,
        by,
    )


async def roster(
    conn: asyncpg.Connection, posting_id: str, *, waitlist_max: int, cancelled_max: int
) -> list[RosterRow]:
    """Every confirmed booking with its attendance, then at most `waitlist_max` of the
    waitlist in order, then at most `cancelled_max` of the bookings the posting's
    cancellation ended (those that held a seat first). Only a cancelled posting has those."""
    rows = await conn.fetch(
        """(SELECT b.*, a.attendance_id, a.status AS attendance_status, a.minutes,
                       a.checked_in_at, a.checked_out_at, a.revision AS attendance_revision,
                       d.checked_in_at AS door_checked_in_at,
                       d.checked_out_at AS door_checked_out_at, 0 AS section, 0 AS rank
                FROM bookings b LEFT JOIN attendance a ON a.booking_id = b.booking_id
                     LEFT JOIN check_ins d ON d.booking_id = b.booking_id
                WHERE b.posting_id = $1 AND b.status = 'confirmed')
               UNION ALL
               (SELECT * FROM (
                  SELECT b.*, NULL::text, NULL::text, NULL::integer, NULL::timestamptz,
                         NULL::timestamptz, NULL::integer, NULL::timestamptz,
                         NULL::timestamptz, 1, 0
                  FROM bookings b WHERE b.posting_id = $1 AND b.status = 'waitlisted'
                  ORDER BY b.waitlist_position, b.booking_id LIMIT $2) w)
               UNION ALL
               (SELECT * FROM (
                  SELECT b.*, NULL::text, NULL::text, NULL::integer, NULL::timestamptz,
                         NULL::timestamptz, NULL::integer, NULL::timestamptz,
                         NULL::timestamptz, 2,
                         CASE b.was_status WHEN 'confirmed' THEN 0 WHEN 'waitlisted' THEN 1
                              ELSE 2 END AS rank
                  FROM bookings b
                  WHERE b.posting_id = $1 AND b.status = 'cancelled' AND b.ended_with_posting
                  ORDER BY rank, coalesce(b.confirmed_at, b.waitlisted_at), b.booking_id
                  LIMIT $3) c)
               ORDER BY section, rank, waitlist_position NULLS FIRST, confirmed_at,
                        waitlisted_at, booking_id""",
        posting_id,
        waitlist_max,
        cancelled_max,
    )
    return [RosterRow.of(r) for r in rows]


async def bookings_by_id(
    conn: asyncpg.Connection, posting_id: str, booking_ids: Sequence[str]
) -> dict[str, BookingRow]:
    rows = await conn.fetch(
        "SELECT * FROM bookings WHERE posting_id = $1 AND booking_id = ANY($2::text[])",
        posting_id,
        list(booking_ids),
    )
    return {r["booking_id"]: BookingRow.of(r) for r in rows}


async def confirmed_booking_by_code(
    conn: asyncpg.Connection, posting_id: str, check_in_code: str
) -> BookingRow | None:
    """The confirmed booking of the posting that holds this check-in code, if any."""
    row = await conn.fetchrow(
        "SELECT * FROM bookings WHERE posting_id = $1 AND check_in_code = $2"
        " AND status = 'confirmed'",
        posting_id,
        check_in_code,
    )
    return None if row is None else BookingRow.of(row)


# --- check-in at the door ---------------------------------------------------------------------


async def check_in_of(conn: asyncpg.Connection, booking_id: str) -> CheckInRow | None:
    """A booking's check-in, locked for the request that changes it."""
    row = await conn.fetchrow(
        "SELECT booking_id, posting_id, checked_in_at, checked_out_at FROM check_ins"
        " WHERE booking_id = $1 FOR UPDATE",
        booking_id,
    )
    return None if row is None else CheckInRow.of(row)


async def insert_check_in(
    conn: asyncpg.Connection, *, booking_id: str, posting_id: str, at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO check_ins (booking_id, posting_id, checked_in_at, updated_at)"
        " VALUES ($1, $2, $3, $3)",
        booking_id,
        posting_id,
        at,
    )


async def set_check_out(conn: asyncpg.Connection, *, booking_id: str, at: datetime) -> None:
    await conn.execute(
        "UPDATE check_ins SET checked_out_at = $2, updated_at = $2 WHERE booking_id = $1",
        booking_id,
        at,
    )


# --- attendance -------------------------------------------------------------------------------


async def attendance_by_booking(
    conn: asyncpg.Connection, booking_ids: Sequence[str]
) -> dict[str, AttendanceRow]:
    """The stored records of these bookings, locked for the request that changes them."""
    rows = await conn.fetch(
        "SELECT * FROM attendance WHERE booking_id = ANY($1::text[]) FOR UPDATE",
        list(booking_ids),
    )
    return {r["booking_id"]: AttendanceRow.of(r) for r in rows}


async def upsert_attendance(
    conn: asyncpg.Connection,
    *,
    attendance_id: str,
    booking_id: str,
    posting_id: str,
    citizen_id: str,
    entry: AttendanceInput,
    minutes: int,
    revision: int,
    now: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO attendance (attendance_id, booking_id, posting_id, citizen_id, status,
               minutes, checked_in_at, checked_out_at, revision, recorded_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
           ON CONFLICT (attendance_id) DO UPDATE SET
               status = EXCLUDED.status, minutes = EXCLUDED.minutes,
               checked_in_at = EXCLUDED.checked_in_at, checked_out_at = EXCLUDED.checked_out_at,
               revision = EXCLUDED.revision, updated_at = EXCLUDED.updated_at""",
        attendance_id,
        booking_id,
        posting_id,
        citizen_id,
        entry.status,
        minutes,
        entry.checked_in_at,
        entry.checked_out_at,
        revision,
        now,
    )


# --- idempotency keys -------------------------------------------------------------------------


async def lock_idempotency_key(conn: asyncpg.Connection, facility_id: str, key: str) -> bool:
    """Try to hold (facility, key) for this transaction; False while another request holds
    it (the first is still in flight)."""
    return bool(
        await conn.fetchval(
            "SELECT pg_try_advisory_xact_lock(hashtext($1), hashtext($2))",
            "idem:" + facility_id,
            key,
        )
    )


async def get_idempotency(
    conn: asyncpg.Connection, facility_id: str, key: str
) -> StoredAnswer | None:
    row = await conn.fetchrow(
        "SELECT request_hash, response_status, response_body FROM idempotency_keys"
        " WHERE facility_id = $1 AND idempotency_key = $2",
        facility_id,
        key,
    )
    return None if row is None else StoredAnswer.of(row)


async def save_idempotency(
    conn: asyncpg.Connection,
    facility_id: str,
    key: str,
    *,
    request_hash: str,
    status: int,
    body: bytes,
) -> None:
    await conn.execute(
        "INSERT INTO idempotency_keys (facility_id, idempotency_key, request_hash,"
        " response_status, response_body) VALUES ($1, $2, $3, $4, $5)",
        facility_id,
        key,
        request_hash,
        status,
        body,
    )


async def purge_idempotency(conn: asyncpg.Connection, older_than: timedelta, limit: int) -> int:
    """Drop answers older than the retention (wall-clock), a bounded batch at a time."""
    result: str = await conn.execute(
        """DELETE FROM idempotency_keys WHERE ctid IN (
               SELECT ctid FROM idempotency_keys WHERE created_at < now() - $1::interval
               LIMIT $2)""",
        older_than,
        limit,
    )
    return int(result.split()[-1])


# --- the rate table (the allowance's, announced as RatesChanged) ------------------------------


@dataclass(frozen=True, slots=True)
class RatesRow:
    """The rate table the registry holds: its version (None before the first RatesChanged)
    and its entries."""

    rates_version: int | None
    entries: tuple[RateEntry, ...]


async def lock_rates(conn: asyncpg.Connection) -> None:
    """Two deliveries of rate tables are adopted one at a time (the version check and the
    replacement must see the same table)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('registry.rates'))")


async def rates(conn: asyncpg.Connection) -> RatesRow:
    """The rate table held now (a few rows: one per entry of the allowance's table)."""
    rows = await conn.fetch(
        "SELECT effective_from, hourly_rate_won, source, rates_version FROM rates"
        " ORDER BY effective_from"
    )
    version = max((int(r["rates_version"]) for r in rows), default=None)
    entries = tuple(
        RateEntry(r["effective_from"], int(r["hourly_rate_won"]), r["source"]) for r in rows
    )
    return RatesRow(version, entries)


async def replace_rates(
    conn: asyncpg.Connection, rates_version: int, entries: Sequence[RateEntry], now: datetime
) -> None:
    """Hold version `rates_version` of the rate table instead of the one held."""
    await conn.execute("DELETE FROM rates")
    await conn.executemany(
        "INSERT INTO rates (effective_from, hourly_rate_won, source, rates_version, received_at)"
        " VALUES ($1, $2, $3, $4, $5)",
        [(e.effective_from, e.hourly_rate_won, e.source, rates_version, now) for e in entries],
    )

"""Read models of the admin API (notifications by status, draws and their re-run,
applications, postings with their counts, citizens' standing) and of the partner's pull
API (postings to reconcile by version, an application, a citizen's bookings). Reads only;
each takes a connection (or the pool) and answers a schema, or None when there is nothing
to show."""

from __future__ import annotations

from datetime import datetime

from matcher import store
from matcher.domain import draw as draw_rules
from matcher.domain.partner import seats_left, shift_allowance_won
from matcher.schemas import (
    ApplicationPage,
    ApplicationView,
    CitizenView,
    DrawCheck,
    DrawView,
    NotificationPage,
    NotificationView,
    PartnerApplication,
    PartnerBooking,
    PartnerBookingPage,
    PartnerPosting,
    PartnerPostingPage,
    PostingView,
    StrikeView,
    SuspensionView,
)
from matcher.store import ApplicationRow, CitizenBookingRow, HeldRow, PostingRow
from shared.db import Connection
from shared.web import CursorCodec, page_of

# The notifications page is ordered by `seq`; the posting's applications by id.
NOTIFICATION_CURSOR = CursorCodec(int)
APPLICATION_CURSOR = CursorCodec(str)
# The partner's postings are ordered by (last change, id); a citizen's bookings by (start, id).
PARTNER_POSTING_CURSOR = CursorCodec(datetime, str)
CITIZEN_BOOKING_CURSOR = CursorCodec(datetime, str)
# Every status an application of a posting can have (held ones live elsewhere).
APPLICATION_STATUSES = ("pending", "confirmed", "waitlisted", "rejected", "withdrawn", "cancelled")
_SEQ_MAX = 2**63 - 1


def notification_after(cursor: str | None) -> int:
    """The `seq` a notifications page starts after. Before cursors were opaque the page
    answered the last `seq` itself as `next_cursor`; such a number is still accepted."""
    if cursor is None:
        return 0
    if cursor.isascii() and cursor.isdigit():
        seq = int(cursor)
        if seq <= _SEQ_MAX:
            return seq
    decoded = NOTIFICATION_CURSOR.decode(cursor)
    assert decoded is not None
    return min(max(int(decoded[0]), 0), _SEQ_MAX)  # ours are in range; keep SQL in range


async def notifications(
    conn: Connection,
    *,
    status: str,
    posting_id: str | None,
    application_id: str | None,
    cursor: str | None,
    limit: int,
) -> NotificationPage:
    rows = await store.notifications_page(
        conn,
        status=status,
        after_seq=notification_after(cursor),
        limit=limit + 1,
        posting_id=posting_id,
        application_id=application_id,
    )
    return page_of(
        NotificationPage,
        rows,
        limit,
        lambda r: NotificationView.model_validate(r._asdict()),
        lambda r: NOTIFICATION_CURSOR.encode(r.seq),
    )


async def draw(conn: Connection, posting_id: str) -> DrawView | None:
    row = await store.draw(conn, posting_id)
    return None if row is None else DrawView(**vars(row))


async def verify_draw(conn: Connection, posting_id: str) -> DrawCheck | None:
    """Re-run a stored draw from its seed and inputs; say whether the outcome matches."""
    row = await store.draw(conn, posting_id)
    if row is None:
        return None
    entries = [
        draw_rules.DrawEntry(i["application_id"], i["citizen_id"], int(i["minutes_month"]))
        for i in row.inputs
    ]
    check = draw_rules.verify(
        row.posting_id,
        row.salt,
        row.seed,
        entries,
        seats=row.seats,
        waitlist_room=row.waitlist_room,
        half_weight_minutes=row.half_weight_minutes,
        outcome=row.outcome,
    )
    return DrawCheck(
        posting_id=row.posting_id,
        algorithm=row.algorithm,
        seed_matches=check.seed_matches,
        matches=check.matches,
        recomputed=check.recomputed,
    )


def _application_view(row: ApplicationRow, waitlist_position: int | None) -> ApplicationView:
    return ApplicationView(**vars(row), waitlist_position=waitlist_position)


def _held_view(row: HeldRow) -> ApplicationView:
    return ApplicationView(
        application_id=row.application_id,
        posting_id=row.posting_id,
        citizen_id=row.citizen_id,
        citizen_display=row.citizen_display,
        status=row.status,
        reason=row.reason,
        booking_id=None,
        waitlist_position=None,
        received_at=row.received_at,
        decided_at=row.resolved_at,
        cancelled_by=None,
        strike=False,
    )


async def application(conn: Connection, application_id: str) -> ApplicationView | None:
    """One application and its decision, its waitlist position now; a held one too."""
    row = await store.application(conn, application_id)
    if row is not None:
        position = None
        if row.status == "waitlisted":
            positions = await store.waitlist_positions(conn, row.posting_id, [application_id])
            position = positions.get(application_id)
        return _application_view(row, position)
    held = await store.held_application(conn, application_id)
    return None if held is None else _held_view(held)


async def posting(conn: Connection, posting_id: str) -> PostingView | None:
    row = await store.posting(conn, posting_id)
    if row is None:
        return None
    return PostingView(
        **vars(row),
        applications=await store.application_counts(conn, posting_id),
        held=await store.held_count(conn, posting_id),
    )


async def posting_applications(
    conn: Connection, posting_id: str, *, cursor: str | None, limit: int
) -> ApplicationPage:
    after = APPLICATION_CURSOR.decode(cursor)
    rows = await store.applications_of_posting(
        conn,
        posting_id,
        APPLICATION_STATUSES,
        limit=limit + 1,
        after_application_id=None if after is None else str(after[0]),
    )
    return page_of(
        ApplicationPage,
        rows,
        limit,
        lambda r: _application_view(r, None),
        lambda r: APPLICATION_CURSOR.encode(r.application_id),
    )


async def citizen(conn: Connection, citizen_id: str, now: datetime) -> CitizenView | None:
    """A citizen's standing at `now`: strikes and suspensions (no profile data)."""
    row = await store.citizen(conn, citizen_id)
    if row is None:
        return None
    strikes = await store.strikes_of(conn, citizen_id)
    suspensions = await store.suspensions_of(conn, citizen_id)
    until = row.suspended_until
    return CitizenView(
        citizen_id=row.citizen_id,
        display=row.display,
        suspended=until is not None and now < until,
        suspended_until=until,
        strikes=[StrikeView(**s._asdict()) for s in strikes],
        suspensions=[SuspensionView(**s._asdict()) for s in suspensions],
    )


# --- the partner's pull API ----------------------------------------------------------------


def partner_posting(row: PostingRow) -> PartnerPosting:
    return PartnerPosting(
        posting_id=row.posting_id,
        version=row.version,
        status=row.status,
        title=row.title,
        description=row.description,
        tags=list(row.tags),
        facility_name=row.facility_name,
        facility_dong=row.facility_dong,
        facility_address=row.facility_address,
        facility_contact=row.facility_contact,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        capacity=row.capacity,
        seats_left=seats_left(row.capacity, row.confirmed_count),
        waitlist_length=row.waitlisted_count,
        hourly_rate_won=row.hourly_rate_won,
        shift_allowance_won=shift_allowance_won(row.hourly_rate_won, row.starts_at, row.ends_at),
        selection=row.selection,
        applications_close_at=row.applications_close_at,
        requires_child_safety_check=row.requires_child_safety_check,
        published_at=row.published_at,
        updated_at=row.changed_at or row.updated_at,
    )


async def partner_postings(
    conn: Connection,
    *,
    status: str | None,
    updated_since: datetime | None,
    cursor: str | None,
    limit: int,
) -> PartnerPostingPage:
    after = PARTNER_POSTING_CURSOR.decode(cursor)
    rows = await store.partner_postings(
        conn,
        status=status,
        updated_since=updated_since,
        after=None if after is None else (after[0], after[1]),
        limit=limit + 1,
    )
    return page_of(
        PartnerPostingPage,
        rows,
        limit,
        partner_posting,
        lambda r: PARTNER_POSTING_CURSOR.encode(r.changed_at or r.updated_at, r.posting_id),
    )


async def partner_posting_one(conn: Connection, posting_id: str) -> PartnerPosting | None:
    row = await store.posting(conn, posting_id)
    return None if row is None else partner_posting(row)


async def partner_application(conn: Connection, application_id: str) -> PartnerApplication | None:
    """An application with its waitlist position now; one held for an unknown posting
    reads `held` (or how its wait ended)."""
    row = await store.application(conn, application_id)
    if row is not None:
        position = None
        if row.status == "waitlisted":
            positions = await store.waitlist_positions(conn, row.posting_id, [application_id])
            position = positions.get(application_id)
        return PartnerApplication(
            application_id=row.application_id,
            posting_id=row.posting_id,
            partner_user_id=row.partner_user_id,
            status=row.status,
            reason=row.reason,
            waitlist_position=position,
            booking_id=row.booking_id,
            received_at=row.received_at,
            decided_at=row.decided_at,
        )
    held = await store.held_application(conn, application_id)
    if held is None:
        return None
    return PartnerApplication(
        application_id=held.application_id,
        posting_id=held.posting_id,
        partner_user_id=held.partner_user_id,
        status=held.status,
        reason=held.reason,
        waitlist_position=None,
        booking_id=None,
        received_at=held.received_at,
        decided_at=held.resolved_at,
    )


def _partner_booking(row: CitizenBookingRow) -> PartnerBooking:
    return PartnerBooking(
        booking_id=row.booking_id,
        application_id=row.application_id,
        posting_id=row.posting_id,
        status=row.status,
        reason=row.reason,
        waitlist_position=row.waitlist_position,
        title=row.title,
        facility_name=row.facility_name,
        facility_dong=row.facility_dong,
        facility_address=row.facility_address,
        facility_contact=row.facility_contact,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        hourly_rate_won=row.hourly_rate_won,
        shift_allowance_won=shift_allowance_won(row.hourly_rate_won, row.starts_at, row.ends_at),
        posting_status=row.posting_status,
        confirmed_at=row.confirmed_at,
        cancelled_at=row.cancelled_at,
        cancelled_by=row.cancelled_by,
    )


async def citizen_bookings(
    conn: Connection,
    partner_user_id: str,
    *,
    ends_from: datetime | None,
    cursor: str | None,
    limit: int,
) -> PartnerBookingPage | None:
    """A citizen's bookings, soonest first; None if the matcher has never seen them."""
    after = CITIZEN_BOOKING_CURSOR.decode(cursor)
    citizen_id = await store.citizen_id_of(conn, partner_user_id)
    if citizen_id is None:
        return None
    rows = await store.citizen_bookings(
        conn,
        citizen_id,
        ends_from=ends_from,
        after=None if after is None else (after[0], after[1]),
        limit=limit + 1,
    )
    return page_of(
        PartnerBookingPage,
        rows,
        limit,
        _partner_booking,
        lambda r: CITIZEN_BOOKING_CURSOR.encode(r.starts_at, r.booking_id),
    )

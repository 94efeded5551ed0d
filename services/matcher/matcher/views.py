"""Read models of the admin API: notifications by status, draws (and their re-run),
applications, postings with their counts, citizens' standing. Reads only; each takes a
connection (or the pool) and answers a schema, or None when there is nothing to show."""

from __future__ import annotations

from datetime import datetime

from matcher import store
from matcher.domain import draw as draw_rules
from matcher.domain.allowance import month_cap_won, payment_status, week_hours
from matcher.schemas import (
    ApplicationPage,
    ApplicationView,
    CitizenAllowanceView,
    CitizenView,
    DrawCheck,
    DrawView,
    MonthAllowanceView,
    NotificationPage,
    NotificationView,
    PostingView,
    StrikeView,
    SuspensionView,
    WeekHoursView,
)
from matcher.store import ApplicationRow, HeldRow
from shared.db import Connection
from shared.seoul import iso_week_bounds
from shared.web import CursorCodec, page_of

# The notifications page is ordered by `seq`; the posting's applications by id.
NOTIFICATION_CURSOR = CursorCodec(int)
APPLICATION_CURSOR = CursorCodec(str)
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


async def citizen_allowance(
    conn: Connection, partner_user_id: str, month: str, now: datetime
) -> CitizenAllowanceView | None:
    """The citizen the partner calls `partner_user_id`, at `now`: hours booked this ISO week
    against the weekly cap, `month`'s allowance against the monthly cap (figures of the
    allowance's events, never recomputed here) and its payment status; None for a citizen
    the matcher has never seen. Keyed by the partner's id, so the admin route and the
    partner's route (`/v1/partner/citizens/{partner_user_id}/allowance`) answer alike."""
    citizen_id = await store.citizen_id_of(conn, partner_user_id)
    if citizen_id is None:
        return None
    week_start, week_end = iso_week_bounds(now)
    booked = await store.confirmed_bookings(conn, [citizen_id], week_start, week_end)
    week = week_hours(now, booked.get(citizen_id, []), await store.week_caps(conn))
    held = await store.allowance_month(conn, citizen_id, month)
    figures = held.figures
    cap_won = month_cap_won(figures, await store.month_caps(conn), month)
    minutes_max = None if week.hours_max is None else week.hours_max * 60
    return CitizenAllowanceView(
        partner_user_id=partner_user_id,
        as_of=now,
        week=WeekHoursView(
            week=week.week,
            starts_at=week.starts_at,
            ends_at=week.ends_at,
            booked_minutes=week.booked_minutes,
            hours_max=week.hours_max,
            minutes_left=None if minutes_max is None else max(minutes_max - week.booked_minutes, 0),
        ),
        allowance=MonthAllowanceView(
            month=month,
            accrued_won=figures.accrued_won,
            capped_won=figures.capped_won,
            gross_won=figures.gross_won,
            minutes_paid=figures.minutes_paid,
            cap_won=cap_won,
            cap_left_won=None if cap_won is None else max(cap_won - figures.accrued_won, 0),
            payment_status=payment_status(figures, held.period_closed),
            status_reason=figures.status_reason,
        ),
    )

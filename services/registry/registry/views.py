"""The registry's reads: facility and posting lists and details, the roster, and how each
is rendered for the API (and for the answers stored under an Idempotency-Key).

Lists are `Page[T]` pages fetched with `limit + 1`, in (created_at, id) order, with opaque
cursors (`CURSOR`). Facility reads scope every query by the caller's facility, so another
facility's posting is not found.
"""

from __future__ import annotations

import dataclasses
import io
import re
from datetime import datetime, timedelta
from typing import Any

import segno
from fastapi.responses import JSONResponse

from registry import schemas, store
from registry.domain.attendance import AttendanceOutcome, PlannedRecord
from registry.domain.budget import facility_rejection_detail
from registry.domain.checkin import DoorOutcome
from registry.domain.postings import PostingFilter
from registry.domain.rates import Estimate
from registry.settings import Context, RegistrySettings
from shared.money import payout_won, rate_in_force
from shared.problems import Problem
from shared.seoul import seoul_date
from shared.web import CursorCodec, page_limit, page_of

# A position in a list: (created_at, id), as URL-safe base64 of the JSON list
# `[iso instant, id]` — the form registry cursors have always had, so cursors handed out
# before `shared.web.CursorCodec` still decode.
CURSOR = CursorCodec(datetime, str)
CHANGE_CURSOR = CursorCodec(int)  # a facility's audit rows, by row id
_ID = re.compile(schemas.ID_PATTERN)


def _position(cursor: str | None) -> store.Position | None:
    """The list position of a cursor; 400 naming `cursor` when it is not one of ours (its
    id must look like a registry id, so forged text never reaches a query)."""
    decoded = CURSOR.decode(cursor)
    if decoded is None:
        return None
    at, ident = decoded
    if not _ID.fullmatch(ident):
        raise Problem(
            400,
            "invalid_request",
            "cursor: not a cursor of this list",
            errors=[{"field": "cursor", "message": "not a cursor of this list", "code": "cursor"}],
        )
    return at, ident


def _size(limit: int | None, settings: RegistrySettings) -> int:
    return page_limit(limit, settings, default=settings.page_size_default)


# --- facilities (admin) -------------------------------------------------------------------


def facility_view(row: store.FacilityRow) -> schemas.FacilityView:
    return schemas.FacilityView(
        id=row.id,
        name=row.name,
        kind=row.kind,
        dong=row.dong,
        address=row.address,
        contact_phone=row.contact_phone,
        requires_child_safety_check=row.requires_child_safety_check,
        status=row.status,
        created_at=row.created_at,
        suspended_at=row.suspended_at,
    )


async def facility_page(
    ctx: Context, *, limit: int | None, cursor: str | None
) -> schemas.FacilityPage:
    """Facilities, oldest first."""
    size = _size(limit, ctx.settings)
    after = _position(cursor)
    async with ctx.pool.acquire() as conn:
        rows = await store.list_facilities(conn, limit=size + 1, after=after)
    return page_of(
        schemas.FacilityPage, rows, size, facility_view, lambda r: CURSOR.encode(r.created_at, r.id)
    )


async def facility_changes(
    ctx: Context, facility_id: str, *, limit: int | None, cursor: str | None
) -> schemas.FacilityChangePage:
    """What administrators changed on a facility, oldest first (404 for no facility)."""
    size = _size(limit, ctx.settings)
    decoded = CHANGE_CURSOR.decode(cursor)
    after = int(decoded[0]) if decoded is not None else None
    async with ctx.pool.acquire() as conn:
        if await store.get_facility(conn, facility_id) is None:
            raise Problem(404, "not_found", "no such facility", ko="그런 기관이 없습니다.")
        rows = await store.facility_changes(conn, facility_id, limit=size + 1, after=after)
    return page_of(
        schemas.FacilityChangePage,
        rows,
        size,
        lambda r: schemas.FacilityChangeView(**dataclasses.asdict(r)),
        lambda r: CHANGE_CURSOR.encode(r.id),
    )


async def facility(ctx: Context, facility_id: str) -> schemas.FacilityView:
    async with ctx.pool.acquire() as conn:
        row = await store.get_facility(conn, facility_id)
    if row is None:
        raise Problem(404, "not_found", "no such facility")
    return facility_view(row)


# --- postings (facility) ------------------------------------------------------------------


def estimate_view(found: Estimate) -> schemas.PostingEstimate:
    cost = found.cost
    return schemas.PostingEstimate(
        starts_at=found.terms.starts_at,
        ends_at=found.terms.ends_at,
        capacity=found.terms.capacity,
        scheduled_minutes=found.scheduled_minutes,
        rate_known=cost is not None,
        hourly_rate_won=cost.rate.hourly_rate_won if cost else None,
        seat_payout_won=cost.seat_won if cost else None,
        total_won=cost.total_won if cost else None,
        rate_effective_from=cost.rate.effective_from if cost else None,
        rate_source=cost.rate.source if cost else None,
        rates_version=found.rates_version,
    )


def posting_view(
    row: store.PostingRow, now: datetime, settings: RegistrySettings
) -> schemas.PostingView:
    stale_after = timedelta(seconds=settings.posting_budget_answer_stale_after_s)
    rejection = None
    if row.status == "rejected":
        rejection = schemas.Rejection(
            reason=row.rejection_reason,
            detail=facility_rejection_detail(
                row.rejection_reason or "", row.rejection_requested_won
            ),
            rejected_at=row.rejected_at,
        )
    update_rejected = row.last_update_rejected
    if update_rejected:  # the programme's figures are for finance and administrators
        update_rejected = {**update_rejected, "available_won": None, "shortfall_won": None}
    return schemas.PostingView(
        id=row.id,
        facility_id=row.facility_id,
        facility_name=row.facility_name,
        title=row.title,
        description=row.description,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        capacity=row.capacity,
        selection=row.selection,
        applications_close_at=row.applications_close_at,
        requires_child_safety_check=row.requires_child_safety_check,
        tags=list(row.tags),
        reconfirmation_required=row.reconfirmation_required,
        status=row.status,
        revision=row.revision,
        reservation_id=row.reservation_id,
        budget_answer_overdue=(
            row.status == "pending_budget" and row.created_at < now - stale_after
        ),
        rejection=rejection,
        last_update_rejected=(
            schemas.UpdateRejection.model_validate(update_rejected) if update_rejected else None
        ),
        confirmed_count=row.confirmed_count,
        waitlisted_count=row.waitlisted_count,
        cancel_reason=row.cancel_reason,
        cancel_note=row.cancel_note,
        attendance_window_closes_at=row.ends_at + timedelta(hours=settings.attendance_window_hours),
        created_at=row.created_at,
        updated_at=row.updated_at,
        published_at=row.published_at,
        cancelled_at=row.cancelled_at,
        closed_at=row.closed_at,
    )


def json_bytes(content: Any) -> bytes:
    """JSON exactly as the API renders a body (the bytes an Idempotency-Key replays)."""
    return bytes(JSONResponse(content).body)


def posting_bytes(row: store.PostingRow, now: datetime, settings: RegistrySettings) -> bytes:
    return json_bytes(posting_view(row, now, settings).model_dump(mode="json"))


async def posting_page(
    ctx: Context,
    facility_id: str,
    narrow: PostingFilter,
    *,
    limit: int | None,
    cursor: str | None,
) -> schemas.PostingPage:
    """The facility's postings, oldest first, narrowed by status and start."""
    settings = ctx.settings
    size = _size(limit, settings)
    after = _position(cursor)
    async with ctx.pool.acquire() as conn:
        rows = await store.list_postings(conn, facility_id, narrow, limit=size + 1, after=after)
    now = ctx.now()
    return page_of(
        schemas.PostingPage,
        rows,
        size,
        lambda r: posting_view(r, now, settings),
        lambda r: CURSOR.encode(r.created_at, r.id),
    )


async def _own_posting(ctx: Context, facility_id: str, posting_id: str) -> store.PostingRow:
    async with ctx.pool.acquire() as conn:
        row = await store.get_posting(conn, posting_id, facility_id=facility_id)
    if row is None:
        raise Problem(404, "not_found", "no such posting")
    return row


async def posting(ctx: Context, facility_id: str, posting_id: str) -> schemas.PostingView:
    row = await _own_posting(ctx, facility_id, posting_id)
    return posting_view(row, ctx.now(), ctx.settings)


# --- the roster and attendance --------------------------------------------------------------


def _roster_entry(r: store.RosterRow, hourly_rate_won: int | None) -> schemas.RosterEntry:
    return schemas.RosterEntry(
        booking_id=r.booking_id,
        status=r.status,
        waitlist_position=r.waitlist_position if r.status == "waitlisted" else None,
        citizen_display=r.citizen_display,
        display_name=r.display_name,
        check_in_code=r.check_in_code if r.status == "confirmed" else None,
        check_in=(
            schemas.DoorView(
                checked_in_at=r.door_checked_in_at, checked_out_at=r.door_checked_out_at
            )
            if r.door_checked_in_at is not None
            else None
        ),
        confirmed_at=r.confirmed_at,
        promoted_at=r.promoted_at,
        waitlisted_at=r.waitlisted_at,
        attendance=(
            schemas.AttendanceView(
                attendance_id=r.attendance_id,
                status=r.attendance_status,
                minutes=r.minutes,
                allowance_won=(
                    payout_won(hourly_rate_won, r.minutes)
                    if hourly_rate_won is not None and r.minutes is not None
                    else None
                ),
                checked_in_at=r.checked_in_at,
                checked_out_at=r.checked_out_at,
                revision=r.attendance_revision,
            )
            if r.attendance_id is not None
            else None
        ),
        cancelled_at=r.cancelled_at if r.status == "cancelled" else None,
        cancelled_by=r.cancelled_by if r.status == "cancelled" else None,
        was_status=r.was_status if r.status == "cancelled" else None,
    )


async def roster(ctx: Context, facility_id: str, posting_id: str) -> schemas.Roster:
    """Every confirmed booking with its attendance, then the waitlist in order (bounded by
    `ROSTER_WAITLIST_SHOWN_MAX`): what the facility needs to run the shift. A cancelled
    posting's roster then lists the bookings its cancellation ended (at most its capacity
    plus that bound), so any device shows whom the cancellation concerned."""
    async with ctx.pool.acquire() as conn:
        row = await store.get_posting(conn, posting_id, facility_id=facility_id)
        if row is None:
            raise Problem(404, "not_found", "no such posting")
        waitlist_max = ctx.settings.roster_waitlist_shown_max
        rows = await store.roster(
            conn, posting_id, waitlist_max=waitlist_max, cancelled_max=row.capacity + waitlist_max
        )
        held = await store.rates(conn)
    # The attended minutes at the rate in force on the shift's day (the allowance's table,
    # as the registry holds it): what the shift earns before the citizen's monthly cap.
    rate = rate_in_force(held.entries, seoul_date(row.starts_at))
    hourly_rate_won = rate.hourly_rate_won if rate is not None else None
    return schemas.Roster(
        posting_id=posting_id,
        capacity=row.capacity,
        confirmed_count=row.confirmed_count,
        waitlisted_count=row.waitlisted_count,
        entries=[_roster_entry(r, hourly_rate_won) for r in rows],
    )


def _attendance_out(item: PlannedRecord, scheduled_minutes: int) -> schemas.AttendanceOut:
    return schemas.AttendanceOut(
        attendance_id=item.attendance_id,
        booking_id=item.entry.booking_id,
        status=item.shown.status,
        minutes=item.minutes,
        scheduled_minutes=scheduled_minutes,
        checked_in_at=item.shown.checked_in_at,
        checked_out_at=item.shown.checked_out_at,
        revision=item.revision,
        outcome=item.outcome,
    )


def attendance_result(outcome: AttendanceOutcome) -> schemas.AttendanceResult:
    return schemas.AttendanceResult(
        posting_id=outcome.posting_id,
        phase=outcome.phase,
        window_closes_at=outcome.window_closes_at,
        records=[_attendance_out(item, outcome.scheduled_minutes) for item in outcome.records],
    )


def door_bytes(outcome: DoorOutcome) -> bytes:
    """A check-in or check-out answer, as the bytes an Idempotency-Key replays."""
    door = outcome.door
    assert door.checked_in_at is not None
    result = schemas.DoorResult(
        posting_id=outcome.posting_id,
        booking_id=outcome.booking_id,
        citizen_display=outcome.citizen_display,
        display_name=outcome.display_name,
        check_in_code=outcome.check_in_code,
        check_in=schemas.DoorView(
            checked_in_at=door.checked_in_at, checked_out_at=door.checked_out_at
        ),
        attendance=(
            _attendance_out(outcome.attendance, outcome.scheduled_minutes)
            if outcome.attendance is not None
            else None
        ),
    )
    return json_bytes(result.model_dump(mode="json"))


async def check_in_qr_svg(
    ctx: Context, facility_id: str, posting_id: str, booking_id: str
) -> bytes:
    """The check-in code of a confirmed booking of the facility's posting as a QR code
    (SVG, by `segno`): for the sign-in sheet, or to show the citizen. 404 for another
    facility's posting or a booking without a code."""
    async with ctx.pool.acquire() as conn:
        row = await store.get_posting(conn, posting_id, facility_id=facility_id)
        booking = (
            (await store.bookings_by_id(conn, posting_id, [booking_id])).get(booking_id)
            if row is not None
            else None
        )
    if booking is None or booking.status != "confirmed" or booking.check_in_code is None:
        raise Problem(404, "not_found", "no confirmed booking with a check-in code")
    return qr_svg(booking.check_in_code)


def qr_svg(text: str) -> bytes:
    """`text` as a QR code in SVG: error correction M (a creased paper still scans), a
    quiet zone of 4 modules as the standard asks, no XML declaration (it is inlined)."""
    qr = segno.make_qr(text, error="m", boost_error=False)
    out = io.BytesIO()
    qr.save(out, kind="svg", scale=4, border=4, xmldecl=False, title=f"입실 코드 {text}")
    return out.getvalue()


# --- for the sweepers ---------------------------------------------------------------------


async def stale_pending(ctx: Context) -> store.StalePending:
    """Postings with no budget answer for longer than the configured time: how many, and
    the first few ids (for the warning line)."""
    settings = ctx.settings
    created_before = ctx.now() - timedelta(seconds=settings.posting_budget_answer_stale_after_s)
    async with ctx.pool.acquire() as conn:
        return await store.stale_pending(
            conn, created_before=created_before, ids_max=settings.posting_stale_ids_logged_max
        )

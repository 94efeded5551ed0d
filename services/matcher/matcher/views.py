"""Read models of the admin API (notifications by status, draws and their re-run and what
the public may see of them, applications, postings with their counts, citizens' standing
and allowance) and of the partner's pull API (postings to reconcile by version, an
application, a citizen's bookings). Reads only; each takes a connection (or the pool) and
answers a schema, or None when there is nothing to show."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from matcher import store
from matcher.domain import draw as draw_rules
from matcher.domain import fair_draw
from matcher.domain.allowance import month_cap_won, payment_status, week_hours
from matcher.domain.partner import seats_left, shift_allowance_won
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
    PartnerApplication,
    PartnerBooking,
    PartnerBookingPage,
    PartnerPosting,
    PartnerPostingPage,
    PostingView,
    PublishedDraw,
    StrikeView,
    SuspensionView,
    WeekHoursView,
)
from matcher.store import (
    ApplicationRow,
    CitizenBookingRow,
    CommitmentRow,
    FreezeRow,
    HeldRow,
    PostingRow,
)
from shared.db import Connection
from shared.seoul import iso_week_bounds
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


def _record(
    committed: CommitmentRow, freeze: FreezeRow, seed: bytes
) -> fair_draw.DrawRecord | None:
    """The published record of a drawn v2 draw, rebuilt from what was stored (the same
    data the `draw.completed` notification carried)."""
    if freeze.outcome is None or freeze.drawn_at is None:
        return None
    return fair_draw.DrawRecord(
        posting_id=freeze.posting_id,
        algorithm=freeze.algorithm,
        seats=freeze.seats,
        waitlist_room=freeze.waitlist_room,
        half_weight_minutes=freeze.half_weight_minutes,
        window_months=freeze.window_months,
        commitment=committed.commitment,
        entries=tuple(
            sorted(
                (fair_draw.Entry(e["entry_id"], int(e["minutes_window"])) for e in freeze.entries),
                key=lambda e: e.entry_id,
            )
        ),
        entry_list_hash=freeze.entry_list_hash,
        seed_hex=seed.hex(),
        confirmed=tuple(freeze.outcome["confirmed"]),
        waitlisted=tuple(freeze.outcome["waitlisted"]),
        not_selected=tuple(freeze.outcome["not_selected"]),
        committed_at=committed.committed_at,
        applications_close_at=freeze.applications_close_at,
        drawn_at=freeze.drawn_at,
    )


async def _v2(
    conn: Connection, posting_id: str
) -> tuple[CommitmentRow, FreezeRow | None, fair_draw.DrawRecord | None] | None:
    """A v2 draw's commitment, freeze and (once drawn) record; the seed is read only once
    the draw has run."""
    committed = await store.draw_commitment(conn, posting_id)
    if committed is None:
        return None
    freeze = await store.draw_freeze(conn, posting_id)
    seed = await store.revealed_seed(conn, posting_id)
    record = None if freeze is None or seed is None else _record(committed, freeze, seed)
    return committed, freeze, record


def _status(
    freeze: FreezeRow | None, record: fair_draw.DrawRecord | None
) -> Literal["committed", "frozen", "drawn"]:
    return "drawn" if record is not None else "frozen" if freeze is not None else "committed"


async def draw(conn: Connection, posting_id: str) -> DrawView | None:
    """The auditor's view of a posting's draw: a v1 row as it was stored, or the v2 draw
    as far as it has gone (never the seed before the draw)."""
    row = await store.draw(conn, posting_id)
    if row is not None:
        return DrawView(**vars(row))
    found = await _v2(conn, posting_id)
    if found is None:
        return None
    committed, freeze, record = found
    return DrawView(
        posting_id=posting_id,
        algorithm=freeze.algorithm if freeze is not None else fair_draw.ALGORITHM,
        status=_status(freeze, record),
        salt=None,
        seed=None if record is None else record.seed_hex,
        month=None,
        half_weight_minutes=None if freeze is None else freeze.half_weight_minutes,
        seats=None if freeze is None else freeze.seats,
        waitlist_room=None if freeze is None else freeze.waitlist_room,
        inputs=[]
        if freeze is None
        else [{"application_id": e["entry_id"], **e} for e in freeze.entries],
        excluded=[] if freeze is None else freeze.excluded,
        outcome=None if record is None else _outcome(record),
        drawn_at=None if record is None else record.drawn_at,
        commitment=committed.commitment,
        committed_at=committed.committed_at,
        window_months=None if freeze is None else freeze.window_months,
        months=None if freeze is None else freeze.months,
        entry_list_hash=None if freeze is None else freeze.entry_list_hash,
        applications_close_at=None if freeze is None else freeze.applications_close_at,
        frozen_at=None if freeze is None else freeze.frozen_at,
        record=None if record is None else record.to_dict(),
    )


def _outcome(record: fair_draw.DrawRecord) -> dict[str, list[str]]:
    return {
        "ranking": list(record.confirmed + record.waitlisted + record.not_selected),
        "confirmed": list(record.confirmed),
        "waitlisted": list(record.waitlisted),
        "not_selected": list(record.not_selected),
    }


async def draw_publication(conn: Connection, posting_id: str) -> PublishedDraw | None:
    """What the public may see of a v2 draw now (docs/fairness.md §1): the commitment, then
    the frozen entry list and its hash, then the whole record. For the partner's
    `GET /v1/partner/postings/{id}/draw`; None for a posting without a v2 draw."""
    found = await _v2(conn, posting_id)
    if found is None:
        return None
    committed, freeze, record = found
    return PublishedDraw(
        posting_id=posting_id,
        algorithm=freeze.algorithm if freeze is not None else fair_draw.ALGORITHM,
        status=_status(freeze, record),
        commitment=committed.commitment,
        committed_at=committed.committed_at,
        applications_close_at=None if freeze is None else freeze.applications_close_at,
        entry_list_hash=None if freeze is None else freeze.entry_list_hash,
        entries=None
        if freeze is None
        else [
            {"id": e["entry_id"], "minutes_window": e["minutes_window"]}
            for e in sorted(freeze.entries, key=lambda e: str(e["entry_id"]))
        ],
        record=None if record is None else record.to_dict(),
    )


async def verify_draw(conn: Connection, posting_id: str) -> DrawCheck | None:
    """Re-run a stored draw from its seed and inputs; say whether the outcome matches. A v2
    draw is checked as any outsider checks it (`fair_draw.verify`), against the commitment
    and hash stored when they were published."""
    row = await store.draw(conn, posting_id)
    if row is None:
        return await _verify_v2(conn, posting_id)
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


async def _verify_v2(conn: Connection, posting_id: str) -> DrawCheck | None:
    found = await _v2(conn, posting_id)
    if found is None:
        return None
    committed, freeze, record = found
    if freeze is None or record is None:
        return None  # not drawn yet: nothing to verify
    check = fair_draw.verify(
        record,
        published_commitment=committed.commitment,
        published_entry_list_hash=freeze.entry_list_hash,
    )
    seed = bytes.fromhex(record.seed_hex)
    frozen = record.frozen_entry_list()
    recomputed: dict[str, list[str]] = {}
    if record.algorithm == fair_draw.ALGORITHM and not frozen.problems():
        again = fair_draw.draw(seed, frozen)
        recomputed = {
            "ranking": list(again.ranking),
            "confirmed": list(again.confirmed),
            "waitlisted": list(again.waitlisted),
            "not_selected": list(again.not_selected),
        }
    return DrawCheck(
        posting_id=posting_id,
        algorithm=record.algorithm,
        seed_matches=fair_draw.commitment(seed) == committed.commitment,
        matches=check.verified,
        recomputed=recomputed,
        differences=[str(d) for d in check.differences],
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
        check_in_code=row.check_in_code,
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

"""What the allowance service does, one function per cause: an event consumed or a
command from the admin or finance API.

Each function runs inside the caller's transaction (the consumer guard's, or the API's),
takes its locks in the order `store` documents, asks the domain what to do, writes the
ledger and its own state, and puts the resulting events in the outbox — all or nothing.
Every ledger transaction carries the id of its cause; events it emits get ids derived from
that cause, so a retried cause can never produce a second, different event.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime

import asyncpg

from allowance import store
from allowance.domain import ledger
from allowance.domain.budget import (
    RejectReason,
    decide_reservation,
    draw,
    exhausted_by,
    typical_shift_won,
    uncap_draw,
)
from allowance.domain.calendar import (
    Period,
    fiscal_year_of,
    iso_week_of,
    period_within_year,
    scheduled_minutes,
    seoul_date,
)
from allowance.domain.money import (
    MonthTotals,
    apply_split,
    paid_minutes,
    payout_won,
    seat_share_won,
    split_against_cap,
)
from allowance.domain.policy import won
from shared import metrics, outbox
from shared.events import (
    AttendanceCorrected,
    AttendanceRecorded,
    BudgetExhausted,
    BudgetRejected,
    BudgetReleased,
    BudgetReserved,
    Envelope,
    Event,
    PayoutAccrued,
    PayoutCapped,
    PayoutReversed,
    PeriodClosed,
    PostingSubmitted,
    PostingUpdated,
)
from shared.problems import Problem

log = logging.getLogger(__name__)

PRODUCER = "allowance"


@dataclass(frozen=True)
class Deps:
    """What the use cases need besides the connection: the business clock's now, bounds."""

    now: datetime
    typical_shift_minutes: int = 180
    period_search_months_max: int = 240


class UnknownPostingError(RuntimeError):
    """Attendance for a posting this service never reserved budget for. Retried, then
    dead-lettered with this message for an operator: the money is never guessed."""


def derived_id(cause: uuid.UUID, name: str) -> uuid.UUID:
    """The id of what `cause` produces under `name`: the same on every retry."""
    return uuid.uuid5(cause, name)


async def _emit(
    conn: asyncpg.Connection, event: Event, cause: uuid.UUID, name: str, now: datetime
) -> None:
    await outbox.add(
        conn, event, producer=PRODUCER, occurred_at=now, event_id=derived_id(cause, name)
    )


async def _post(
    conn: asyncpg.Connection,
    txn: ledger.LedgerTransaction | None,
    cause: uuid.UUID,
    occurred_at: datetime,
    now: datetime,
) -> int | None:
    if txn is None:
        return None
    return await store.post(
        conn, txn, source_event_id=cause, occurred_at=occurred_at, posted_at=now
    )


async def _release(
    conn: asyncpg.Connection,
    envelope: Envelope,
    deps: Deps,
    reservation: store.Reservation,
    *,
    fiscal_year: int,
    period: Period,
    amount_won: int,
    memo: str,
    reason: str,
) -> None:
    """Move `amount_won` of a posting's reservation back to the available budget: the ledger
    transaction and the BudgetReleased event, caused by `envelope`."""
    await _post(
        conn,
        ledger.release(fiscal_year, period, reservation.posting_id, amount_won, memo),
        envelope.event_id,
        envelope.occurred_at,
        deps.now,
    )
    await _emit(
        conn,
        BudgetReleased(
            posting_id=reservation.posting_id,
            reservation_id=reservation.reservation_id,
            amount_won=amount_won,
            reason=reason,
        ),
        envelope.event_id,
        "BudgetReleased",
        deps.now,
    )


# --- the posting saga --------------------------------------------------------------------


async def _reject_submission(
    conn: asyncpg.Connection,
    envelope: Envelope,
    base: store.Reservation,
    reason: RejectReason,
    *,
    requested_won: int,
    available_won: int,
    deps: Deps,
) -> None:
    await store.insert_reservation(
        conn, replace(base, status="rejected"), reject_reason=reason.value, now=deps.now
    )
    event = BudgetRejected(
        posting_id=base.posting_id,
        reason=reason.value,
        requested_won=requested_won,
        available_won=available_won,
        shortfall_won=max(requested_won - available_won, 0),
        for_revision=0,
    )
    await _emit(conn, event, envelope.event_id, "BudgetRejected", deps.now)
    log.info(
        "posting budget refused",
        extra={"posting_id": base.posting_id, "reason": reason.value},
    )


async def on_posting_submitted(
    conn: asyncpg.Connection, envelope: Envelope, event: PostingSubmitted, deps: Deps
) -> None:
    """Reserve `capacity × floor(rate × scheduled minutes / 60)` from the fiscal year's
    available budget, or refuse with the reason and the shortfall."""
    if await store.reservation(conn, event.posting_id, for_update=True) is not None:
        log.info("posting already has a reservation; submission ignored")
        return
    fiscal_year = fiscal_year_of(event.starts_at)
    minutes = scheduled_minutes(event.starts_at, event.ends_at)
    base = store.Reservation(
        posting_id=event.posting_id,
        reservation_id="rsv_" + derived_id(envelope.event_id, "reservation").hex[:20],
        facility_id=event.facility_id,
        status="active",
        fiscal_year=fiscal_year,
        hourly_rate_won=None,
        rate_policy_version=None,
        capacity=event.capacity,
        scheduled_minutes=minutes,
        seat_share_won=None,
        amount_won=0,
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        revision=0,
    )
    rates = await store.rate_table(conn)
    entry = rates.rate_on(seoul_date(event.starts_at))
    if entry is None:
        await _reject_submission(
            conn, envelope, base, RejectReason.NO_RATE, requested_won=0, available_won=0, deps=deps
        )
        return
    rate = entry.hourly_rate_won
    seat = seat_share_won(rate, minutes)
    total = event.capacity * seat
    minimum = (await store.minimum_wage_table(conn)).for_year(fiscal_year)
    if minimum is not None and rate < minimum.hourly_won:
        await _reject_submission(
            conn,
            envelope,
            base,
            RejectReason.RATE_BELOW_MINIMUM_WAGE,
            requested_won=total,
            available_won=0,
            deps=deps,
        )
        return
    if not await store.lock_budget(conn, fiscal_year):
        await _reject_submission(
            conn,
            envelope,
            base,
            RejectReason.NO_BUDGET_FOR_YEAR,
            requested_won=total,
            available_won=0,
            deps=deps,
        )
        return
    available = await store.available_won(conn, fiscal_year)
    decision = decide_reservation(total, available)
    if not decision.accepted:
        await _reject_submission(
            conn,
            envelope,
            base,
            RejectReason.INSUFFICIENT_BUDGET,
            requested_won=total,
            available_won=available,
            deps=deps,
        )
        return
    reserved = replace(
        base,
        hourly_rate_won=rate,
        rate_policy_version=rates.version,
        seat_share_won=seat,
        amount_won=total,
    )
    await _post(
        conn,
        ledger.reservation(
            fiscal_year,
            Period.of(event.starts_at),
            event.posting_id,
            total,
            f"reservation {reserved.reservation_id}: {event.capacity} seat(s) x {won(seat)} won"
            f" ({minutes} min at {won(rate)} won/h)",
        ),
        envelope.event_id,
        envelope.occurred_at,
        deps.now,
    )
    await store.insert_reservation(conn, reserved, reject_reason=None, now=deps.now)
    await _emit(
        conn,
        BudgetReserved(
            posting_id=event.posting_id,
            reservation_id=reserved.reservation_id,
            fiscal_year=fiscal_year,
            amount_won=total,
            hourly_rate_won=rate,
            revision=1,
        ),
        envelope.event_id,
        "BudgetReserved",
        deps.now,
    )
    await _maybe_exhausted(
        conn, envelope, event.posting_id, fiscal_year, available, available - total, rate, deps
    )


async def _maybe_exhausted(
    conn: asyncpg.Connection,
    envelope: Envelope,
    posting_id: str,
    fiscal_year: int,
    before_won: int,
    after_won: int,
    rate: int,
    deps: Deps,
) -> None:
    if exhausted_by(before_won, after_won, typical_shift_won(rate, deps.typical_shift_minutes)):
        await _emit(
            conn,
            BudgetExhausted(
                posting_id=posting_id, fiscal_year=fiscal_year, available_won=after_won
            ),
            envelope.event_id,
            "BudgetExhausted",
            deps.now,
        )


async def _reject_update(
    conn: asyncpg.Connection,
    envelope: Envelope,
    current: store.Reservation,
    revision: int,
    reason: RejectReason,
    requested_won: int,
    available_won: int,
    deps: Deps,
) -> None:
    """Keep the reserved terms; remember the revision was answered."""
    await store.update_reservation(conn, replace(current, revision=revision), deps.now)
    await _emit(
        conn,
        BudgetRejected(
            posting_id=current.posting_id,
            reason=reason.value,
            requested_won=requested_won,
            available_won=available_won,
            shortfall_won=max(requested_won - available_won, 0),
            for_revision=revision,
        ),
        envelope.event_id,
        "BudgetRejected",
        deps.now,
    )


async def on_posting_updated(
    conn: asyncpg.Connection, envelope: Envelope, event: PostingUpdated, deps: Deps
) -> None:
    """Grow the reservation to the new terms if the budget allows (else refuse this
    revision and keep the old terms), shrink it by releasing the difference. The rate stays
    the one locked at submission unless the shift moves to another fiscal year, where the
    reservation is made afresh at that date's rate. Every applied revision is answered by
    exactly one BudgetReserved (the new total) or BudgetRejected."""
    current = await store.reservation(conn, event.posting_id, for_update=True)
    if current is None:
        # Nothing was ever reserved for it, so there is no money to adjust (the registry
        # submits before it updates, on the same partition).
        log.warning("PostingUpdated for a posting never submitted here: ignored")
        return
    if not current.active:
        log.info("update of a posting whose reservation is %s: ignored", current.status)
        return
    if event.revision <= current.revision:
        log.info("stale posting revision %d (have %d): ignored", event.revision, current.revision)
        return
    assert current.hourly_rate_won is not None
    new_year = fiscal_year_of(event.starts_at)
    minutes = scheduled_minutes(event.starts_at, event.ends_at)
    if new_year != current.fiscal_year:
        await _move_reservation_year(conn, envelope, event, current, new_year, minutes, deps)
        return
    rate = current.hourly_rate_won
    seat = seat_share_won(rate, minutes)
    new_total = event.capacity * seat
    delta = new_total - current.amount_won
    period = Period.of(event.starts_at)
    if delta > 0:
        await store.lock_budget(conn, current.fiscal_year)
        available = await store.available_won(conn, current.fiscal_year)
        if not decide_reservation(delta, available).accepted:
            await _reject_update(
                conn,
                envelope,
                current,
                event.revision,
                RejectReason.INSUFFICIENT_BUDGET,
                delta,
                available,
                deps,
            )
            return
        await _post(
            conn,
            ledger.reservation(
                current.fiscal_year,
                period,
                event.posting_id,
                delta,
                f"reservation {current.reservation_id} grown to {won(new_total)} won"
                f" (revision {event.revision})",
            ),
            envelope.event_id,
            envelope.occurred_at,
            deps.now,
        )
        await _maybe_exhausted(
            conn,
            envelope,
            event.posting_id,
            current.fiscal_year,
            available,
            available - delta,
            rate,
            deps,
        )
    elif delta < 0:
        held = await store.reserved_won(conn, current.fiscal_year, event.posting_id)
        amount = min(-delta, held)
        await _release(
            conn,
            envelope,
            deps,
            current,
            fiscal_year=current.fiscal_year,
            period=period,
            amount_won=amount,
            memo=f"reservation {current.reservation_id} shrunk to {won(new_total)} won"
            f" (revision {event.revision})",
            reason="posting_updated",
        )
    updated = replace(
        current,
        capacity=event.capacity,
        scheduled_minutes=minutes,
        seat_share_won=seat,
        amount_won=new_total,
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        revision=event.revision,
    )
    await store.update_reservation(conn, updated, deps.now)
    await _emit(
        conn,
        BudgetReserved(
            posting_id=event.posting_id,
            reservation_id=current.reservation_id,
            fiscal_year=current.fiscal_year,
            amount_won=new_total,
            hourly_rate_won=rate,
            revision=event.revision,
        ),
        envelope.event_id,
        "BudgetReserved",
        deps.now,
    )


async def _move_reservation_year(
    conn: asyncpg.Connection,
    envelope: Envelope,
    event: PostingUpdated,
    current: store.Reservation,
    new_year: int,
    minutes: int,
    deps: Deps,
) -> None:
    """The shift moved into another fiscal year: reserve there at that date's rate, then
    release everything held in the old year."""
    rates = await store.rate_table(conn)
    entry = rates.rate_on(seoul_date(event.starts_at))
    if entry is None:
        await _reject_update(
            conn, envelope, current, event.revision, RejectReason.NO_RATE, 0, 0, deps
        )
        return
    rate = entry.hourly_rate_won
    seat = seat_share_won(rate, minutes)
    new_total = event.capacity * seat
    minimum = (await store.minimum_wage_table(conn)).for_year(new_year)
    if minimum is not None and rate < minimum.hourly_won:
        await _reject_update(
            conn,
            envelope,
            current,
            event.revision,
            RejectReason.RATE_BELOW_MINIMUM_WAGE,
            new_total,
            0,
            deps,
        )
        return
    for year in sorted({current.fiscal_year, new_year}):
        exists = await store.lock_budget(conn, year)
        if year == new_year and not exists:
            await _reject_update(
                conn,
                envelope,
                current,
                event.revision,
                RejectReason.NO_BUDGET_FOR_YEAR,
                new_total,
                0,
                deps,
            )
            return
    available = await store.available_won(conn, new_year)
    if not decide_reservation(new_total, available).accepted:
        await _reject_update(
            conn,
            envelope,
            current,
            event.revision,
            RejectReason.INSUFFICIENT_BUDGET,
            new_total,
            available,
            deps,
        )
        return
    held = await store.reserved_won(conn, current.fiscal_year, event.posting_id)
    await _release(
        conn,
        envelope,
        deps,
        current,
        fiscal_year=current.fiscal_year,
        period=Period.of(current.starts_at),
        amount_won=held,
        memo=f"reservation {current.reservation_id} moved to fiscal year {new_year}",
        reason="posting_moved_fiscal_year",
    )
    await _post(
        conn,
        ledger.reservation(
            new_year,
            Period.of(event.starts_at),
            event.posting_id,
            new_total,
            f"reservation {current.reservation_id} moved from fiscal year {current.fiscal_year}",
        ),
        envelope.event_id,
        envelope.occurred_at,
        deps.now,
    )
    await store.update_reservation(
        conn,
        replace(
            current,
            fiscal_year=new_year,
            hourly_rate_won=rate,
            rate_policy_version=rates.version,
            capacity=event.capacity,
            scheduled_minutes=minutes,
            seat_share_won=seat,
            amount_won=new_total,
            starts_at=event.starts_at,
            ends_at=event.ends_at,
            revision=event.revision,
        ),
        deps.now,
    )
    await _emit(
        conn,
        BudgetReserved(
            posting_id=event.posting_id,
            reservation_id=current.reservation_id,
            fiscal_year=new_year,
            amount_won=new_total,
            hourly_rate_won=rate,
            revision=event.revision,
        ),
        envelope.event_id,
        "BudgetReserved",
        deps.now,
    )
    await _maybe_exhausted(
        conn, envelope, event.posting_id, new_year, available, available - new_total, rate, deps
    )


async def on_posting_ended(
    conn: asyncpg.Connection,
    envelope: Envelope,
    posting_id: str,
    status: str,
    deps: Deps,
) -> None:
    """PostingCancelled (`cancelled`) or PostingClosed (`closed`): release what is unused."""
    current = await store.reservation(conn, posting_id, for_update=True)
    if current is None:
        log.warning("%s for a posting without a reservation: nothing to release", status)
        return
    if not current.active:
        log.info("posting %s already %s: nothing to release", posting_id, current.status)
        return
    held = await store.reserved_won(conn, current.fiscal_year, posting_id)
    await _release(
        conn,
        envelope,
        deps,
        current,
        fiscal_year=current.fiscal_year,
        period=Period.of(current.starts_at),
        amount_won=held,
        memo=f"posting {status}: unused part of reservation {current.reservation_id} released",
        reason=f"posting_{status}",
    )
    await store.update_reservation(conn, replace(current, status=status), deps.now)


# --- attendance and payouts --------------------------------------------------------------


async def open_statement_period(
    conn: asyncpg.Connection, shift_period: Period, months_max: int
) -> Period:
    """The month a payout for a shift of `shift_period` is stated in: that month while it
    is open, else the first open month after it (an adjustment). Holds a share lock on it,
    so a close waits for this transaction and a payout never slips past a close."""
    period = shift_period
    for _ in range(months_max):
        if await store.period_status(conn, period, "share") == "open":
            return period
        period = period.next()
    raise RuntimeError(f"no open month within {months_max} months after {shift_period}")


async def on_attendance(
    conn: asyncpg.Connection,
    envelope: Envelope,
    event: AttendanceRecorded | AttendanceCorrected,
    deps: Deps,
) -> None:
    """Pay an attended shift, release a no-show's seat, or correct an earlier record.

    A later revision of the same attendance record (AttendanceCorrected, or an
    AttendanceRecorded with a higher revision) reverses the line that pays it now and
    posts the new one; an equal or lower revision was applied already and changes nothing.
    """
    reservation = await store.reservation(conn, event.posting_id, for_update=True)
    if reservation is None or reservation.status == "rejected":
        raise UnknownPostingError(
            f"attendance {event.attendance_id} for posting {event.posting_id}, which has no"
            " budget reservation here; replay it from the DLQ once the posting is known"
        )
    assert reservation.hourly_rate_won is not None and reservation.seat_share_won is not None
    state = await store.attendance_state(conn, event.attendance_id)
    if state is not None and state.revision >= event.revision:
        log.info(
            "attendance revision %d already applied (have %d): ignored",
            event.revision,
            state.revision,
        )
        return
    if state is not None and (
        state.citizen_id != event.citizen_id or state.posting_id != event.posting_id
    ):
        raise ValueError(
            f"attendance {event.attendance_id} changed citizen or posting between revisions"
        )
    old_line = await store.payout_line(conn, state.line_id) if state and state.line_id else None
    shift_period = Period.of(event.shift_starts_at)
    old_shift_period = Period.parse(old_line["shift_period"]) if old_line else shift_period
    # Statement months (share locks) and cap months (row locks), each in ascending order.
    statement_periods = {
        p: await open_statement_period(conn, p, deps.period_search_months_max)
        for p in sorted({old_shift_period, shift_period})
    }
    months = {
        p: await store.lock_citizen_month(conn, event.citizen_id, p)
        for p in sorted({old_shift_period, shift_period})
    }
    caps = await store.cap_table(conn)
    fiscal_year = reservation.fiscal_year

    if old_line is not None and state is not None:
        await _reverse_line(
            conn,
            envelope,
            event,
            reservation,
            old_line,
            statement_periods[old_shift_period],
            months,
            caps.caps_for(old_shift_period.year).monthly_amount_max_won,
            deps,
        )

    line_id: int | None = None
    minutes = 0
    gross = 0
    if event.status == "attended":
        minutes = paid_minutes(event.minutes, event.scheduled_minutes)
        gross = payout_won(reservation.hourly_rate_won, minutes)
        if gross > 0:
            line_id = await _accrue(
                conn,
                envelope,
                event,
                reservation,
                fiscal_year,
                minutes,
                gross,
                statement_periods[shift_period],
                months,
                caps.caps_for(shift_period.year).monthly_amount_max_won,
                deps,
            )
    elif reservation.active and (state is None or state.status == "attended"):
        held = await store.reserved_won(conn, fiscal_year, event.posting_id)
        amount = min(reservation.seat_share_won, held)
        await _release(
            conn,
            envelope,
            deps,
            reservation,
            fiscal_year=fiscal_year,
            period=Period.of(reservation.starts_at),
            amount_won=amount,
            memo=f"no-show of booking {event.booking_id}: one seat's share released",
            reason="no_show",
        )

    for period, totals in months.items():
        await store.save_citizen_month(conn, event.citizen_id, period, totals)
    await store.save_attendance_state(
        conn,
        store.AttendanceState(
            attendance_id=event.attendance_id,
            posting_id=event.posting_id,
            booking_id=event.booking_id,
            citizen_id=event.citizen_id,
            revision=event.revision,
            status=event.status,
            minutes_paid=minutes,
            gross_won=gross,
            shift_starts_at=event.shift_starts_at,
            line_id=line_id,
        ),
        deps.now,
    )


async def _accrue(
    conn: asyncpg.Connection,
    envelope: Envelope,
    event: AttendanceRecorded | AttendanceCorrected,
    reservation: store.Reservation,
    fiscal_year: int,
    minutes: int,
    gross: int,
    statement_period: Period,
    months: dict[Period, MonthTotals],
    cap_won: int,
    deps: Deps,
) -> int:
    assert reservation.hourly_rate_won is not None
    shift_period = Period.of(event.shift_starts_at)
    split = split_against_cap(gross, months[shift_period], cap_won)
    held = (
        await store.reserved_won(conn, fiscal_year, event.posting_id) if reservation.active else 0
    )
    available = 0
    if gross > held:
        await store.lock_budget(conn, fiscal_year)
        available = await store.available_won(conn, fiscal_year)
    source = draw(gross, held, available)
    adjustment = statement_period != shift_period
    memo = (
        f"attendance {event.attendance_id} rev {event.revision}: {minutes} min at"
        f" {won(reservation.hourly_rate_won)} won/h"
        + (f"; adjustment for {shift_period} (that month is closed)" if adjustment else "")
        + (
            f"; drawn from available budget: {won(source.from_available_won)} won"
            if source.from_available_won
            else ""
        )
        + (f"; unfunded: {won(source.from_unfunded_won)} won" if source.from_unfunded_won else "")
    )
    txn = ledger.accrual(
        fiscal_year, statement_period, event.posting_id, event.citizen_id, split, source, memo
    )
    txn_id = await _post(conn, txn, envelope.event_id, envelope.occurred_at, deps.now)
    assert txn_id is not None
    line_id = await store.insert_payout_line(
        conn,
        store.PayoutLine(
            transaction_id=txn_id,
            kind="accrual",
            attendance_id=event.attendance_id,
            attendance_revision=event.revision,
            posting_id=event.posting_id,
            booking_id=event.booking_id,
            citizen_id=event.citizen_id,
            shift_starts_at=event.shift_starts_at,
            shift_period=str(shift_period),
            iso_week=iso_week_of(event.shift_starts_at),
            period=str(statement_period),
            fiscal_year=fiscal_year,
            hourly_rate_won=reservation.hourly_rate_won,
            minutes_paid=minutes,
            gross_won=split.gross_won,
            payable_won=split.payable_won,
            capped_won=split.capped_won,
            cap_won=cap_won,
            reverses_line_id=None,
            source_event_id=envelope.event_id,
            created_at=deps.now,
        ),
    )
    months[shift_period] = apply_split(months[shift_period], split, minutes)
    # Per-process counters (a retried transaction may count twice; the ledger is the truth).
    metrics.PAYOUTS_ACCRUED_WON.inc(split.payable_won)
    metrics.PAYOUTS_CAPPED_WON.inc(split.capped_won)
    await _emit(
        conn,
        PayoutAccrued(
            citizen_id=event.citizen_id,
            period=str(statement_period),
            posting_id=event.posting_id,
            booking_id=event.booking_id,
            attendance_id=event.attendance_id,
            minutes_paid=minutes,
            hourly_rate_won=reservation.hourly_rate_won,
            gross_won=split.gross_won,
            accrued_won=split.payable_won,
            capped_won=split.capped_won,
            adjustment=adjustment,
        ),
        envelope.event_id,
        "PayoutAccrued",
        deps.now,
    )
    if split.capped_won > 0:
        await _emit(
            conn,
            PayoutCapped(
                citizen_id=event.citizen_id,
                period=str(statement_period),
                attendance_id=event.attendance_id,
                capped_won=split.capped_won,
                cap_won=cap_won,
            ),
            envelope.event_id,
            "PayoutCapped",
            deps.now,
        )
    return line_id


async def _reverse_line(
    conn: asyncpg.Connection,
    envelope: Envelope,
    event: AttendanceRecorded | AttendanceCorrected,
    reservation: store.Reservation,
    old: asyncpg.Record,
    statement_period: Period,
    months: dict[Period, MonthTotals],
    cap_won: int,
    deps: Deps,
) -> None:
    old_shift_period = Period.parse(old["shift_period"])
    fiscal_year = int(old["fiscal_year"])
    split = split_against_cap(-int(old["gross_won"]), months[old_shift_period], cap_won)
    uncapped = -split.capped_won
    from_available, from_unfunded = 0, 0
    if uncapped > 0:
        await store.lock_budget(conn, fiscal_year)
        from_available, from_unfunded = uncap_draw(
            uncapped, await store.available_won(conn, fiscal_year)
        )
    to_reservation = reservation.active and reservation.fiscal_year == fiscal_year
    adjustment = statement_period != old_shift_period
    txn = ledger.reversal(
        fiscal_year,
        statement_period,
        event.posting_id,
        event.citizen_id,
        split,
        to_reservation=to_reservation,
        uncap_from_available_won=from_available,
        uncap_from_unfunded_won=from_unfunded,
        memo=f"reversal of attendance {event.attendance_id} rev {old['attendance_revision']}"
        f" (line {old['id']}) by rev {event.revision}"
        + (f"; adjustment for {old_shift_period} (that month is closed)" if adjustment else ""),
    )
    txn_id = await _post(conn, txn, envelope.event_id, envelope.occurred_at, deps.now)
    assert txn_id is not None
    minutes = -int(old["minutes_paid"])
    await store.insert_payout_line(
        conn,
        store.PayoutLine(
            transaction_id=txn_id,
            kind="reversal",
            attendance_id=event.attendance_id,
            attendance_revision=event.revision,
            posting_id=event.posting_id,
            booking_id=old["booking_id"],
            citizen_id=event.citizen_id,
            shift_starts_at=old["shift_starts_at"],
            shift_period=str(old_shift_period),
            iso_week=old["iso_week"],
            period=str(statement_period),
            fiscal_year=fiscal_year,
            hourly_rate_won=int(old["hourly_rate_won"]),
            minutes_paid=minutes,
            gross_won=split.gross_won,
            payable_won=split.payable_won,
            capped_won=split.capped_won,
            cap_won=cap_won,
            reverses_line_id=int(old["id"]),
            source_event_id=envelope.event_id,
            created_at=deps.now,
        ),
    )
    months[old_shift_period] = apply_split(months[old_shift_period], split, minutes)
    await _emit(
        conn,
        PayoutReversed(
            citizen_id=event.citizen_id,
            period=str(statement_period),
            posting_id=event.posting_id,
            booking_id=old["booking_id"],
            attendance_id=event.attendance_id,
            minutes_reversed=-minutes,
            gross_reversed_won=-split.gross_won,
            accrued_reversed_won=-split.payable_won,
            capped_released_won=uncapped,
            adjustment=adjustment,
        ),
        envelope.event_id,
        "PayoutReversed",
        deps.now,
    )


# --- budget administration ---------------------------------------------------------------


async def set_budget(
    conn: asyncpg.Connection,
    *,
    fiscal_year: int,
    amount_won: int,
    note: str,
    previous_amount_won: int | None,
    set_by: str,
    request_id: str | None,
    now: datetime,
) -> ledger.BudgetFigures:
    """Make the fiscal year's appropriation `amount_won` by posting the difference (never
    an overwrite). A cut cannot take money already reserved, accrued or paid."""
    await store.ensure_budget_row(conn, fiscal_year, now)
    await store.lock_budget(conn, fiscal_year)
    figures = ledger.budget_figures(fiscal_year, await store.year_balances(conn, fiscal_year))
    if previous_amount_won is not None and previous_amount_won != figures.total_won:
        raise Problem(
            409,
            "budget_changed",
            f"the {fiscal_year} budget is {won(figures.total_won)} won, not"
            f" {won(previous_amount_won)} won: someone changed it; read it again",
            extra={"total_won": figures.total_won},
        )
    delta = amount_won - figures.total_won
    if delta < 0 and -delta > figures.available_won:
        raise Problem(
            409,
            "budget_below_commitments",
            f"cutting the {fiscal_year} budget to {won(amount_won)} won would take"
            f" {won(-delta)} won, but only {won(figures.available_won)} won is neither"
            " reserved, accrued nor paid",
            extra={"available_won": figures.available_won},
        )
    txn = ledger.budget_change(
        fiscal_year,
        period_within_year(now, fiscal_year),
        delta,
        figures.unfunded_won,
        f"budget {fiscal_year}: {won(figures.total_won)} -> {won(amount_won)} won. {note}",
    )
    if txn is None:
        return figures
    cause = uuid.uuid4()
    txn_id = await store.post(conn, txn, source_event_id=cause, occurred_at=now, posted_at=now)
    await store.insert_budget_change(
        conn,
        fiscal_year=fiscal_year,
        transaction_id=txn_id,
        previous_total_won=figures.total_won,
        new_total_won=amount_won,
        note=note,
        set_by=set_by,
        request_id=request_id,
        set_at=now,
    )
    return ledger.budget_figures(fiscal_year, await store.year_balances(conn, fiscal_year))


# --- month close -------------------------------------------------------------------------


async def close_period(
    conn: asyncpg.Connection,
    period: Period,
    *,
    closed_by: str,
    now: datetime,
) -> asyncpg.Record:
    """Freeze the month's statements and move what each citizen is owed (this month and any
    earlier balance) into payout due — except citizens without payee details, whose money
    stays payable and is carried forward. Idempotent: a closed month answers its close."""
    status = await store.period_status(conn, period, "update")
    if status == "closed":
        row = await store.period_row(conn, period)
        assert row is not None
        return row
    if not period.has_ended(now):
        raise Problem(
            409,
            "period_not_ended",
            f"{period} has not ended yet (it ends {period.ends_at().isoformat()}); a month"
            " is closed after its last day",
        )
    balances = await store.payable_balances_through(conn, period)
    close_id = uuid.uuid4()
    owed: dict[str, list[int]] = {}  # citizen -> [balance, payout, held back (0/1)]
    to_post: list[store.ToPost] = []
    for b in balances:
        totals = owed.setdefault(b.citizen_id, [0, 0, 0])
        totals[0] += b.balance_won
        if b.balance_won <= 0:
            continue  # an overpayment stays payable and is netted against later accruals
        if not b.has_payee:
            totals[2] = 1
            continue
        totals[1] += b.balance_won
        txn = ledger.payout_due(
            b.fiscal_year,
            period,
            b.citizen_id,
            b.balance_won,
            f"close {period}: payable through {period} into the payout file",
            prefix=f"due:{b.citizen_id}:{b.fiscal_year}",
        )
        if txn is not None:
            to_post.append(store.ToPost(txn, close_id, now, now))
    await store.post_many(conn, to_post)
    citizens = sorted(owed)
    await store.freeze_statements(
        conn,
        period,
        citizens=citizens,
        balances=[owed[c][0] for c in citizens],
        payouts=[owed[c][1] for c in citizens],
        held_back=[bool(owed[c][2]) for c in citizens],
        frozen_at=now,
    )
    row = await store.mark_period_closed(
        conn, period, closed_at=now, closed_by=closed_by, close_id=close_id
    )
    await _emit(
        conn,
        PeriodClosed(
            period=str(period),
            closed_at=now,
            citizens_count=int(row["citizens_count"]),
            payable_won=int(row["payout_won"]),
        ),
        close_id,
        "PeriodClosed",
        now,
    )
    return row


async def mark_paid(
    conn: asyncpg.Connection, period: Period, *, paid_by: str, now: datetime
) -> asyncpg.Record:
    """The closed month's bank transfer was made: payout due → paid. Idempotent."""
    status = await store.period_status(conn, period, "update")
    row = await store.period_row(conn, period)
    assert row is not None
    if status != "closed":
        raise Problem(409, "period_not_closed", f"{period} is not closed; close it first")
    if row["paid_at"] is not None:
        return row
    paid_id = uuid.uuid4()
    to_post = [
        store.ToPost(txn, paid_id, now, now)
        for b in await store.payout_due_balances(conn, period)
        if (
            txn := ledger.payout_paid(
                b.fiscal_year,
                period,
                b.citizen_id,
                b.balance_won,
                f"payout file {period} transferred",
                prefix=f"paid:{b.citizen_id}:{b.fiscal_year}",
            )
        )
        is not None
    ]
    await store.post_many(conn, to_post)
    return await store.mark_period_paid(conn, period, paid_at=now, paid_by=paid_by, paid_id=paid_id)


async def refresh_budget_metrics(conn: asyncpg.Connection, now: datetime) -> None:
    """Set the budget gauges (total and available per fiscal year) for the years around
    now; the alert on a nearly exhausted budget reads them."""
    current = Period.of(now).year
    for year in await store.budget_years(conn):
        if current - 1 <= year <= current + 2:
            figures = ledger.budget_figures(year, await store.year_balances(conn, year))
            metrics.BUDGET_TOTAL_WON.labels(str(year)).set(figures.total_won)
            metrics.BUDGET_AVAILABLE_WON.labels(str(year)).set(figures.available_won)

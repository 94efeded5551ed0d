"""Attendance → ledger: an attended shift is paid from its posting's reservation within
the citizen's monthly cap (the excess recorded as capped), a no-show releases its seat,
and a correction reverses the line that pays the attendance now and posts the new one."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from allowance.domain import ledger
from allowance.domain.budget import (
    Drawdown,
    UncapDrawdown,
    take_from_reservation,
    uncap_drawdown,
)
from allowance.domain.calendar import Period
from allowance.domain.money import (
    CapSplit,
    MonthTotals,
    apply_split,
    paid_minutes,
    payout_won,
    split_against_cap,
)
from allowance.domain.policy import CapTable, won
from allowance.store import AttendanceState, PaidLine, PayoutLine, Reservation, Store
from allowance.usecases.common import Deps, UnknownPostingError, emit, post, release
from shared import metrics
from shared.events import (
    AttendanceCorrected,
    AttendanceRecorded,
    Envelope,
    PayoutAccrued,
    PayoutCapped,
    PayoutReversed,
)
from shared.seoul import iso_week_label

log = logging.getLogger(__name__)

Attendance = AttendanceRecorded | AttendanceCorrected


async def open_statement_period(db: Store, shift_period: Period, months_max: int) -> Period:
    """The month a payout for a shift of `shift_period` is stated in: that month while it
    is open, else the first open month after it (an adjustment). Holds a share lock on it,
    so a close waits for this transaction and a payout never slips past a close."""
    period = shift_period
    for _ in range(months_max):
        if await db.period_status(period, "share") == "open":
            return period
        period = period.next()
    raise RuntimeError(f"no open month within {months_max} months after {shift_period}")


@dataclass
class Months:
    """The months one attendance change touches, locked: where each shift month's payout
    is stated, each shift month's running totals against the cap, and the cap table."""

    statement: dict[Period, Period]
    totals: dict[Period, MonthTotals]
    caps: CapTable

    def cap_won(self, shift_period: Period) -> int:
        return self.caps.caps_for(shift_period.year).monthly_amount_max_won


@dataclass(frozen=True)
class Paid:
    """What the attendance pays after this change: the line, its minutes and gross."""

    line_id: int | None = None
    minutes_paid: int = 0
    gross_won: int = 0


async def on_attendance(db: Store, envelope: Envelope, event: Attendance, deps: Deps) -> None:
    """Pay an attended shift, release a no-show's seat, or correct an earlier record.

    A later revision of the same attendance record (AttendanceCorrected, or an
    AttendanceRecorded with a higher revision) reverses the line that pays it now and
    posts the new one; an equal or lower revision was applied already and changes nothing.
    """
    reservation = await db.reservation(event.posting_id, for_update=True)
    if reservation is None or reservation.status == "rejected":
        raise UnknownPostingError(
            f"attendance {event.attendance_id} for posting {event.posting_id}, which has no"
            " budget reservation here; replay it from the DLQ once the posting is known"
        )
    assert reservation.hourly_rate_won is not None and reservation.seat_share_won is not None
    await db.know_citizens([event.citizen_id], "attendance", deps.now)
    state = await db.attendance_state(event.attendance_id)
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
    old_line = await db.payout_line(state.line_id) if state and state.line_id else None
    months = await _lock_months(db, event, old_line, deps)
    if old_line is not None:
        await _reverse_line(db, envelope, event, reservation, old_line, months, deps)
    paid = Paid()
    if event.status == "attended":
        paid = await _pay_attended(db, envelope, event, reservation, months, deps)
    elif reservation.active and (state is None or state.status == "attended"):
        await _release_no_show(db, envelope, event, reservation, deps)
    for period, totals in months.totals.items():
        await db.save_citizen_month(event.citizen_id, period, totals)
    await db.save_attendance_state(
        AttendanceState(
            attendance_id=event.attendance_id,
            posting_id=event.posting_id,
            booking_id=event.booking_id,
            citizen_id=event.citizen_id,
            revision=event.revision,
            status=event.status,
            minutes_paid=paid.minutes_paid,
            gross_won=paid.gross_won,
            shift_starts_at=event.shift_starts_at,
            line_id=paid.line_id,
        ),
        deps.now,
    )


async def _lock_months(
    db: Store, event: Attendance, old_line: PaidLine | None, deps: Deps
) -> Months:
    shift_period = Period.of(event.shift_starts_at)
    old_shift_period = Period.parse(old_line.shift_period) if old_line else shift_period
    touched = sorted({old_shift_period, shift_period})
    # Statement months (share locks) and cap months (row locks), each in ascending order.
    statement = {
        p: await open_statement_period(db, p, deps.period_search_months_max) for p in touched
    }
    totals = {p: await db.lock_citizen_month(event.citizen_id, p) for p in touched}
    return Months(statement, totals, await db.cap_table())


async def _pay_attended(
    db: Store,
    envelope: Envelope,
    event: Attendance,
    reservation: Reservation,
    months: Months,
    deps: Deps,
) -> Paid:
    assert reservation.hourly_rate_won is not None
    minutes = paid_minutes(event.minutes, event.scheduled_minutes)
    gross_won = payout_won(reservation.hourly_rate_won, minutes)
    if gross_won <= 0:
        return Paid(None, minutes, gross_won)
    line_id = await _accrue(db, envelope, event, reservation, minutes, gross_won, months, deps)
    return Paid(line_id, minutes, gross_won)


async def _release_no_show(
    db: Store, envelope: Envelope, event: Attendance, reservation: Reservation, deps: Deps
) -> None:
    assert reservation.seat_share_won is not None
    held_won = await db.reserved_won(reservation.fiscal_year, event.posting_id)
    await release(
        db,
        envelope,
        deps,
        reservation,
        fiscal_year=reservation.fiscal_year,
        period=Period.of(reservation.starts_at),
        amount_won=min(reservation.seat_share_won, held_won),
        memo=f"no-show of booking {event.booking_id}: one seat's share released",
        reason="no_show",
    )


@dataclass(frozen=True)
class _LineTerms:
    """What differs between an accrual's payout line and a reversal's."""

    transaction_id: int
    kind: Literal["accrual", "reversal"]
    booking_id: str
    shift_starts_at: datetime
    shift_period: Period
    iso_week: str
    statement_period: Period
    fiscal_year: int
    hourly_rate_won: int
    minutes_paid: int
    cap_won: int
    reverses_line_id: int | None


def _payout_line(
    envelope: Envelope, event: Attendance, deps: Deps, terms: _LineTerms, split: CapSplit
) -> PayoutLine:
    """The payout line of one accrual or reversal, caused by `envelope`."""
    return PayoutLine(
        transaction_id=terms.transaction_id,
        kind=terms.kind,
        attendance_id=event.attendance_id,
        attendance_revision=event.revision,
        posting_id=event.posting_id,
        booking_id=terms.booking_id,
        citizen_id=event.citizen_id,
        shift_starts_at=terms.shift_starts_at,
        shift_period=str(terms.shift_period),
        iso_week=terms.iso_week,
        period=str(terms.statement_period),
        fiscal_year=terms.fiscal_year,
        hourly_rate_won=terms.hourly_rate_won,
        minutes_paid=terms.minutes_paid,
        gross_won=split.gross_won,
        payable_won=split.payable_won,
        capped_won=split.capped_won,
        cap_won=terms.cap_won,
        reverses_line_id=terms.reverses_line_id,
        source_event_id=envelope.event_id,
        created_at=deps.now,
    )


# --- accrual -----------------------------------------------------------------------------


async def _drawdown(
    db: Store, reservation: Reservation, posting_id: str, gross_won: int
) -> Drawdown:
    """Where the gross comes from: the reservation, then (locked) the available budget."""
    fiscal_year = reservation.fiscal_year
    held_won = await db.reserved_won(fiscal_year, posting_id) if reservation.active else 0
    available_won = 0
    if gross_won > held_won:
        await db.lock_budget(fiscal_year)
        available_won = await db.available_won(fiscal_year)
    return take_from_reservation(gross_won, held_won, available_won)


def _accrual_memo(
    event: Attendance,
    minutes: int,
    hourly_rate_won: int,
    shift_period: Period,
    adjustment: bool,
    source: Drawdown,
) -> str:
    return (
        f"attendance {event.attendance_id} rev {event.revision}: {minutes} min at"
        f" {won(hourly_rate_won)} won/h"
        + (f"; adjustment for {shift_period} (that month is closed)" if adjustment else "")
        + (
            f"; drawn from available budget: {won(source.from_available_won)} won"
            if source.from_available_won
            else ""
        )
        + (f"; unfunded: {won(source.from_unfunded_won)} won" if source.from_unfunded_won else "")
    )


async def _accrue(
    db: Store,
    envelope: Envelope,
    event: Attendance,
    reservation: Reservation,
    minutes: int,
    gross_won: int,
    months: Months,
    deps: Deps,
) -> int:
    """Post the accrual of `gross_won` (the part over the monthly cap recorded as capped),
    its payout line and PayoutAccrued (and PayoutCapped when capped); the line's id."""
    assert reservation.hourly_rate_won is not None
    fiscal_year = reservation.fiscal_year
    shift_period = Period.of(event.shift_starts_at)
    statement_period = months.statement[shift_period]
    cap_won = months.cap_won(shift_period)
    split = split_against_cap(gross_won, months.totals[shift_period], cap_won)
    source = await _drawdown(db, reservation, event.posting_id, gross_won)
    adjustment = statement_period != shift_period
    memo = _accrual_memo(
        event, minutes, reservation.hourly_rate_won, shift_period, adjustment, source
    )
    txn = ledger.accrual(
        fiscal_year, statement_period, event.posting_id, event.citizen_id, split, source, memo
    )
    txn_id = await post(db, txn, envelope.event_id, envelope.occurred_at, deps.now)
    assert txn_id is not None
    line_id = await db.insert_payout_line(
        _payout_line(
            envelope,
            event,
            deps,
            _LineTerms(
                transaction_id=txn_id,
                kind="accrual",
                booking_id=event.booking_id,
                shift_starts_at=event.shift_starts_at,
                shift_period=shift_period,
                iso_week=iso_week_label(event.shift_starts_at),
                statement_period=statement_period,
                fiscal_year=fiscal_year,
                hourly_rate_won=reservation.hourly_rate_won,
                minutes_paid=minutes,
                cap_won=cap_won,
                reverses_line_id=None,
            ),
            split,
        )
    )
    months.totals[shift_period] = apply_split(months.totals[shift_period], split, minutes)
    # Per-process counters (a retried transaction may count twice; the ledger is the truth).
    metrics.PAYOUTS_ACCRUED_WON.inc(split.payable_won)
    metrics.PAYOUTS_CAPPED_WON.inc(split.capped_won)
    await _emit_accrued(
        db, envelope, event, reservation.hourly_rate_won, minutes, split, months, deps
    )
    return line_id


async def _emit_accrued(
    db: Store,
    envelope: Envelope,
    event: Attendance,
    hourly_rate_won: int,
    minutes: int,
    split: CapSplit,
    months: Months,
    deps: Deps,
) -> None:
    shift_period = Period.of(event.shift_starts_at)
    statement_period = months.statement[shift_period]
    await emit(
        db,
        PayoutAccrued(
            citizen_id=event.citizen_id,
            period=str(statement_period),
            posting_id=event.posting_id,
            booking_id=event.booking_id,
            attendance_id=event.attendance_id,
            minutes_paid=minutes,
            hourly_rate_won=hourly_rate_won,
            gross_won=split.gross_won,
            accrued_won=split.payable_won,
            capped_won=split.capped_won,
            adjustment=statement_period != shift_period,
        ),
        envelope.event_id,
        "PayoutAccrued",
        deps.now,
    )
    if split.capped_won > 0:
        await emit(
            db,
            PayoutCapped(
                citizen_id=event.citizen_id,
                period=str(statement_period),
                attendance_id=event.attendance_id,
                capped_won=split.capped_won,
                cap_won=months.cap_won(shift_period),
            ),
            envelope.event_id,
            "PayoutCapped",
            deps.now,
        )


# --- reversal ----------------------------------------------------------------------------


async def _reverse_line(
    db: Store,
    envelope: Envelope,
    event: Attendance,
    reservation: Reservation,
    old: PaidLine,
    months: Months,
    deps: Deps,
) -> None:
    """Reverse the line that pays the attendance now: its gross back to the reservation
    (or the available budget), and what the cap held back released again."""
    old_shift_period = Period.parse(old.shift_period)
    statement_period = months.statement[old_shift_period]
    cap_won = months.cap_won(old_shift_period)
    fiscal_year = old.fiscal_year
    split = split_against_cap(-old.gross_won, months.totals[old_shift_period], cap_won)
    uncapped_won = -split.capped_won
    uncap = await _uncap(db, fiscal_year, uncapped_won)
    to_reservation = reservation.active and reservation.fiscal_year == fiscal_year
    adjustment = statement_period != old_shift_period
    txn = ledger.reversal(
        fiscal_year,
        statement_period,
        event.posting_id,
        event.citizen_id,
        split,
        to_reservation=to_reservation,
        uncap_from_available_won=uncap.from_available_won,
        uncap_from_unfunded_won=uncap.from_unfunded_won,
        memo=f"reversal of attendance {event.attendance_id} rev {old.attendance_revision}"
        f" (line {old.id}) by rev {event.revision}"
        + (f"; adjustment for {old_shift_period} (that month is closed)" if adjustment else ""),
    )
    txn_id = await post(db, txn, envelope.event_id, envelope.occurred_at, deps.now)
    assert txn_id is not None
    minutes = -old.minutes_paid
    await db.insert_payout_line(
        _payout_line(
            envelope,
            event,
            deps,
            _LineTerms(
                transaction_id=txn_id,
                kind="reversal",
                booking_id=old.booking_id,
                shift_starts_at=old.shift_starts_at,
                shift_period=old_shift_period,
                iso_week=old.iso_week,
                statement_period=statement_period,
                fiscal_year=fiscal_year,
                hourly_rate_won=old.hourly_rate_won,
                minutes_paid=minutes,
                cap_won=cap_won,
                reverses_line_id=old.id,
            ),
            split,
        )
    )
    months.totals[old_shift_period] = apply_split(months.totals[old_shift_period], split, minutes)
    await _emit_reversed(db, envelope, event, old, statement_period, split, uncapped_won, deps)


async def _uncap(db: Store, fiscal_year: int, uncapped_won: int) -> UncapDrawdown:
    """Where money the reversal releases from the cap comes from (it had gone back to the
    available budget when it was capped); the budget row is locked only when there is some."""
    if uncapped_won <= 0:
        return uncap_drawdown(0, 0)
    await db.lock_budget(fiscal_year)
    return uncap_drawdown(uncapped_won, await db.available_won(fiscal_year))


async def _emit_reversed(
    db: Store,
    envelope: Envelope,
    event: Attendance,
    old: PaidLine,
    statement_period: Period,
    split: CapSplit,
    uncapped_won: int,
    deps: Deps,
) -> None:
    adjustment = statement_period != Period.parse(old.shift_period)
    await emit(
        db,
        PayoutReversed(
            citizen_id=event.citizen_id,
            period=str(statement_period),
            posting_id=event.posting_id,
            booking_id=old.booking_id,
            attendance_id=event.attendance_id,
            minutes_reversed=old.minutes_paid,
            gross_reversed_won=-split.gross_won,
            accrued_reversed_won=-split.payable_won,
            capped_released_won=uncapped_won,
            adjustment=adjustment,
        ),
        envelope.event_id,
        "PayoutReversed",
        deps.now,
    )

"""The posting saga: a submitted posting reserves its full cost from the fiscal year's
budget (or is refused with the reason), an update grows, shrinks or moves the reservation
to another fiscal year, and a posting that ends releases what it did not use."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime

from allowance.domain import ledger
from allowance.domain.budget import (
    RejectReason,
    decide_reservation,
    exhausted_by,
    typical_shift_won,
)
from allowance.domain.calendar import Period, fiscal_year_of, scheduled_minutes
from allowance.domain.money import seat_share_won
from allowance.domain.policy import won
from allowance.store import Reservation, Store
from allowance.usecases import reports
from allowance.usecases.common import Deps, derived_id, emit, post, release
from shared.events import (
    BudgetExhausted,
    BudgetRejected,
    BudgetReserved,
    Envelope,
    PostingSubmitted,
    PostingUpdated,
)
from shared.seoul import seoul_date

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Quote:
    """What a reservation (or its growth) costs at its rate, and the budget available to
    fund it."""

    hourly_rate_won: int
    rate_policy_version: int | None
    seat_share_won: int
    total_won: int
    available_won: int


@dataclass(frozen=True)
class Refusal:
    """Why a reservation (or a revision of one) is refused, with the numbers it shows."""

    reason: RejectReason
    requested_won: int
    available_won: int

    def event(self, posting_id: str, for_revision: int) -> BudgetRejected:
        return BudgetRejected(
            posting_id=posting_id,
            reason=self.reason.value,
            requested_won=self.requested_won,
            available_won=self.available_won,
            shortfall_won=max(self.requested_won - self.available_won, 0),
            for_revision=for_revision,
        )


async def _quote(
    db: Store,
    fiscal_year: int,
    starts_at: datetime,
    capacity: int,
    minutes: int,
    *,
    also_lock: tuple[int, ...] = (),
) -> Quote | Refusal:
    """Price `capacity` seats of `minutes` at the rate of `starts_at` and check the fiscal
    year's budget funds them whole: a rate must exist and be at least that year's minimum
    wage, the year must have a budget. The budget rows of `fiscal_year` and `also_lock`
    are locked in ascending year order (the lock order of `store`)."""
    rates = await db.rate_table()
    entry = rates.rate_on(seoul_date(starts_at))
    if entry is None:
        return Refusal(RejectReason.NO_RATE, 0, 0)
    rate_won = entry.hourly_rate_won
    seat_won = seat_share_won(rate_won, minutes)
    total_won = capacity * seat_won
    minimum = (await db.minimum_wage_table()).for_year(fiscal_year)
    if minimum is not None and rate_won < minimum.hourly_won:
        return Refusal(RejectReason.RATE_BELOW_MINIMUM_WAGE, total_won, 0)
    for year in sorted({fiscal_year, *also_lock}):
        exists = await db.lock_budget(year)
        if year == fiscal_year and not exists:
            return Refusal(RejectReason.NO_BUDGET_FOR_YEAR, total_won, 0)
    available_won = await db.available_won(fiscal_year)
    if not decide_reservation(total_won, available_won).accepted:
        return Refusal(RejectReason.INSUFFICIENT_BUDGET, total_won, available_won)
    return Quote(rate_won, rates.version, seat_won, total_won, available_won)


async def _maybe_exhausted(
    db: Store, envelope: Envelope, posting_id: str, fiscal_year: int, quote: Quote, deps: Deps
) -> None:
    """BudgetExhausted when reserving `quote.total_won` took the available budget below one
    seat of a typical shift (it could fund one before)."""
    before_won = quote.available_won
    after_won = before_won - quote.total_won
    typical_won = typical_shift_won(quote.hourly_rate_won, deps.typical_shift_minutes)
    if exhausted_by(before_won, after_won, typical_won):
        await emit(
            db,
            BudgetExhausted(
                posting_id=posting_id, fiscal_year=fiscal_year, available_won=after_won
            ),
            envelope.event_id,
            "BudgetExhausted",
            deps.now,
        )


# --- submitted ---------------------------------------------------------------------------


def _new_reservation(envelope: Envelope, event: PostingSubmitted, minutes: int) -> Reservation:
    """The reservation row of a submission before it is priced (nothing reserved yet)."""
    return Reservation(
        posting_id=event.posting_id,
        reservation_id="rsv_" + derived_id(envelope.event_id, "reservation").hex[:20],
        facility_id=event.facility_id,
        status="active",
        fiscal_year=fiscal_year_of(event.starts_at),
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


async def _reject_submission(
    db: Store, envelope: Envelope, base: Reservation, refusal: Refusal, deps: Deps
) -> None:
    await db.insert_reservation(
        replace(base, status="rejected"), reject_reason=refusal.reason.value, now=deps.now
    )
    await emit(db, refusal.event(base.posting_id, 0), envelope.event_id, "BudgetRejected", deps.now)
    log.info(
        "posting budget refused",
        extra={"posting_id": base.posting_id, "reason": refusal.reason.value},
    )


async def on_posting_submitted(
    db: Store, envelope: Envelope, event: PostingSubmitted, deps: Deps
) -> None:
    """Reserve `capacity × floor(rate × scheduled minutes / 60)` from the fiscal year's
    available budget, or refuse with the reason and the shortfall."""
    await reports.remember_place(db, event)
    if await db.reservation(event.posting_id, for_update=True) is not None:
        log.info("posting already has a reservation; submission ignored")
        return
    minutes = scheduled_minutes(event.starts_at, event.ends_at)
    base = _new_reservation(envelope, event, minutes)
    quote = await _quote(db, base.fiscal_year, event.starts_at, event.capacity, minutes)
    if isinstance(quote, Refusal):
        await _reject_submission(db, envelope, base, quote, deps)
        return
    reserved = replace(
        base,
        hourly_rate_won=quote.hourly_rate_won,
        rate_policy_version=quote.rate_policy_version,
        seat_share_won=quote.seat_share_won,
        amount_won=quote.total_won,
    )
    await post(
        db,
        ledger.reservation(
            reserved.fiscal_year,
            Period.of(event.starts_at),
            event.posting_id,
            quote.total_won,
            f"reservation {reserved.reservation_id}: {event.capacity} seat(s) x"
            f" {won(quote.seat_share_won)} won ({minutes} min at {won(quote.hourly_rate_won)}"
            " won/h)",
        ),
        envelope.event_id,
        envelope.occurred_at,
        deps.now,
    )
    await db.insert_reservation(reserved, reject_reason=None, now=deps.now)
    await emit(
        db,
        BudgetReserved(
            posting_id=event.posting_id,
            reservation_id=reserved.reservation_id,
            fiscal_year=reserved.fiscal_year,
            amount_won=quote.total_won,
            hourly_rate_won=quote.hourly_rate_won,
            revision=1,
        ),
        envelope.event_id,
        "BudgetReserved",
        deps.now,
    )
    await _maybe_exhausted(db, envelope, event.posting_id, reserved.fiscal_year, quote, deps)


# --- updated -----------------------------------------------------------------------------


async def _reject_update(
    db: Store,
    envelope: Envelope,
    current: Reservation,
    revision: int,
    refusal: Refusal,
    deps: Deps,
) -> None:
    """Keep the reserved terms; remember the revision was answered."""
    await db.update_reservation(replace(current, revision=revision), deps.now)
    await emit(
        db,
        refusal.event(current.posting_id, revision),
        envelope.event_id,
        "BudgetRejected",
        deps.now,
    )


async def _save_revision(db: Store, envelope: Envelope, updated: Reservation, deps: Deps) -> None:
    """Write the reservation's new terms and answer the revision with BudgetReserved."""
    assert updated.hourly_rate_won is not None
    await db.update_reservation(updated, deps.now)
    await emit(
        db,
        BudgetReserved(
            posting_id=updated.posting_id,
            reservation_id=updated.reservation_id,
            fiscal_year=updated.fiscal_year,
            amount_won=updated.amount_won,
            hourly_rate_won=updated.hourly_rate_won,
            revision=updated.revision,
        ),
        envelope.event_id,
        "BudgetReserved",
        deps.now,
    )


def _with_terms(current: Reservation, event: PostingUpdated, minutes: int) -> Reservation:
    """The reservation with the revision's shift, capacity and minutes (money unchanged)."""
    return replace(
        current,
        capacity=event.capacity,
        scheduled_minutes=minutes,
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        revision=event.revision,
    )


async def on_posting_updated(
    db: Store, envelope: Envelope, event: PostingUpdated, deps: Deps
) -> None:
    """Grow the reservation to the new terms if the budget allows (else refuse this
    revision and keep the old terms), shrink it by releasing the difference. The rate stays
    the one locked at submission unless the shift moves to another fiscal year, where the
    reservation is made afresh at that date's rate. Every applied revision is answered by
    exactly one BudgetReserved (the new total) or BudgetRejected."""
    await reports.remember_place(db, event)
    current = await db.reservation(event.posting_id, for_update=True)
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
    minutes = scheduled_minutes(event.starts_at, event.ends_at)
    if fiscal_year_of(event.starts_at) != current.fiscal_year:
        await _move_reservation_year(db, envelope, event, current, minutes, deps)
    else:
        await _resize_reservation(db, envelope, event, current, minutes, deps)


async def _resize_reservation(
    db: Store,
    envelope: Envelope,
    event: PostingUpdated,
    current: Reservation,
    minutes: int,
    deps: Deps,
) -> None:
    """Same fiscal year, same rate: reserve the growth (if the budget allows) or release
    the shrinkage."""
    assert current.hourly_rate_won is not None
    rate_won = current.hourly_rate_won
    seat_won = seat_share_won(rate_won, minutes)
    new_total_won = event.capacity * seat_won
    delta_won = new_total_won - current.amount_won
    period = Period.of(event.starts_at)
    if delta_won > 0:
        await db.lock_budget(current.fiscal_year)
        available_won = await db.available_won(current.fiscal_year)
        if not decide_reservation(delta_won, available_won).accepted:
            refusal = Refusal(RejectReason.INSUFFICIENT_BUDGET, delta_won, available_won)
            await _reject_update(db, envelope, current, event.revision, refusal, deps)
            return
        await post(
            db,
            ledger.reservation(
                current.fiscal_year,
                period,
                event.posting_id,
                delta_won,
                f"reservation {current.reservation_id} grown to {won(new_total_won)} won"
                f" (revision {event.revision})",
            ),
            envelope.event_id,
            envelope.occurred_at,
            deps.now,
        )
        growth = Quote(rate_won, current.rate_policy_version, seat_won, delta_won, available_won)
        await _maybe_exhausted(db, envelope, event.posting_id, current.fiscal_year, growth, deps)
    elif delta_won < 0:
        held_won = await db.reserved_won(current.fiscal_year, event.posting_id)
        await release(
            db,
            envelope,
            deps,
            current,
            fiscal_year=current.fiscal_year,
            period=period,
            amount_won=min(-delta_won, held_won),
            memo=f"reservation {current.reservation_id} shrunk to {won(new_total_won)} won"
            f" (revision {event.revision})",
            reason="posting_updated",
        )
    updated = replace(
        _with_terms(current, event, minutes), seat_share_won=seat_won, amount_won=new_total_won
    )
    await _save_revision(db, envelope, updated, deps)


async def _move_reservation_year(
    db: Store,
    envelope: Envelope,
    event: PostingUpdated,
    current: Reservation,
    minutes: int,
    deps: Deps,
) -> None:
    """The shift moved into another fiscal year: reserve there at that date's rate, then
    release everything held in the old year."""
    new_year = fiscal_year_of(event.starts_at)
    quote = await _quote(
        db, new_year, event.starts_at, event.capacity, minutes, also_lock=(current.fiscal_year,)
    )
    if isinstance(quote, Refusal):
        await _reject_update(db, envelope, current, event.revision, quote, deps)
        return
    await _release_held(
        db,
        envelope,
        current,
        memo=f"reservation {current.reservation_id} moved to fiscal year {new_year}",
        reason="posting_moved_fiscal_year",
        deps=deps,
    )
    await post(
        db,
        ledger.reservation(
            new_year,
            Period.of(event.starts_at),
            event.posting_id,
            quote.total_won,
            f"reservation {current.reservation_id} moved from fiscal year {current.fiscal_year}",
        ),
        envelope.event_id,
        envelope.occurred_at,
        deps.now,
    )
    moved = replace(
        _with_terms(current, event, minutes),
        fiscal_year=new_year,
        hourly_rate_won=quote.hourly_rate_won,
        rate_policy_version=quote.rate_policy_version,
        seat_share_won=quote.seat_share_won,
        amount_won=quote.total_won,
    )
    await _save_revision(db, envelope, moved, deps)
    await _maybe_exhausted(db, envelope, event.posting_id, new_year, quote, deps)


async def _release_held(
    db: Store, envelope: Envelope, current: Reservation, *, memo: str, reason: str, deps: Deps
) -> None:
    """Release everything the reservation still holds in its fiscal year (a move or an end)."""
    await release(
        db,
        envelope,
        deps,
        current,
        fiscal_year=current.fiscal_year,
        period=Period.of(current.starts_at),
        amount_won=await db.reserved_won(current.fiscal_year, current.posting_id),
        memo=memo,
        reason=reason,
    )


# --- ended -------------------------------------------------------------------------------


async def on_posting_ended(
    db: Store, envelope: Envelope, posting_id: str, status: str, deps: Deps
) -> None:
    """PostingCancelled (`cancelled`) or PostingClosed (`closed`): release what is unused."""
    current = await db.reservation(posting_id, for_update=True)
    if current is None:
        log.warning("%s for a posting without a reservation: nothing to release", status)
        return
    if not current.active:
        log.info("posting %s already %s: nothing to release", posting_id, current.status)
        return
    await _release_held(
        db,
        envelope,
        current,
        memo=f"posting {status}: unused part of reservation {current.reservation_id} released",
        reason=f"posting_{status}",
        deps=deps,
    )
    await db.update_reservation(replace(current, status=status), deps.now)

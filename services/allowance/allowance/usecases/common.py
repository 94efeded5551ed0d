"""What the use cases share: their dependencies besides the store, derived ids, and the
two writes every flow makes (a ledger transaction, an outbox event)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from allowance.domain import ledger
from allowance.domain.calendar import Period
from allowance.settings import AllowanceSettings
from allowance.store import Reservation, Store
from shared.events import BudgetReleased, Envelope, Event

PRODUCER = "allowance"


@dataclass(frozen=True)
class Deps:
    """What the use cases need besides the store: the business clock's now, bounds."""

    now: datetime
    typical_shift_minutes: int = 180
    period_search_months_max: int = 240
    report_draw_exact_entries_max: int = 14
    report_draw_work_max: int = 200_000


def deps_of(settings: AllowanceSettings, now: datetime) -> Deps:
    """The one way to build `Deps` from the settings (handlers call it per event)."""
    return Deps(
        now=now,
        typical_shift_minutes=settings.typical_shift_minutes,
        period_search_months_max=settings.period_search_months_max,
        report_draw_exact_entries_max=settings.report_draw_exact_entries_max,
        report_draw_work_max=settings.report_draw_work_max,
    )


class UnknownPostingError(RuntimeError):
    """Attendance for a posting this service never reserved budget for. Retried, then
    dead-lettered with this message for an operator: the money is never guessed."""


def derived_id(cause: uuid.UUID, name: str) -> uuid.UUID:
    """The id of what `cause` produces under `name`: the same on every retry."""
    return uuid.uuid5(cause, name)


async def emit(db: Store, event: Event, cause: uuid.UUID, name: str, now: datetime) -> None:
    """Put `event` in the outbox with an id derived from its cause."""
    await db.emit(event, producer=PRODUCER, occurred_at=now, event_id=derived_id(cause, name))


async def post(
    db: Store,
    txn: ledger.LedgerTransaction | None,
    cause: uuid.UUID,
    occurred_at: datetime,
    now: datetime,
) -> int | None:
    """Write a ledger transaction (None: nothing to post) caused by `cause`."""
    if txn is None:
        return None
    return await db.post(txn, source_event_id=cause, occurred_at=occurred_at, posted_at=now)


async def release(
    db: Store,
    envelope: Envelope,
    deps: Deps,
    reservation: Reservation,
    *,
    fiscal_year: int,
    period: Period,
    amount_won: int,
    memo: str,
    reason: str,
) -> None:
    """Move `amount_won` of a posting's reservation back to the available budget: the ledger
    transaction and the BudgetReleased event, caused by `envelope`."""
    await post(
        db,
        ledger.release(fiscal_year, period, reservation.posting_id, amount_won, memo),
        envelope.event_id,
        envelope.occurred_at,
        deps.now,
    )
    await emit(
        db,
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

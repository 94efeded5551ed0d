"""The registry's side of the posting saga: allowance's budget answers
(`allowance.budget.v1`) open, reject or revert a posting.

Each function runs in the consumer guard's transaction (which also records the event id),
so its changes and the events they cause (PostingPublished, PostingRejected,
PostingUpdated) commit together, once per event. Those events get ids derived from the
answer, so a retried answer can never write a second, different event.

The store is a parameter, `db`, the `store` module unless a caller passes another, so the
saga's unit tests run these functions on an in-memory fake (tests/unit/registry). It is the
smallest design that allows this: the store already is a module of functions that take the
connection first, and a module satisfies a Protocol, so `SagaStore` below only names the
functions the saga calls — no class wrapping a connection, and no change to how every other
use case calls the store. A fake is any object with those methods; it ignores `conn`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from registry import store
from registry.domain import budget
from registry.domain.postings import PostingState, ShiftTerms
from registry.usecases.postings import posting_terms
from shared.events import (
    BudgetExhausted,
    BudgetRejected,
    BudgetReleased,
    BudgetReserved,
    Envelope,
    Event,
    PostingPublished,
    PostingRejected,
    PostingUpdated,
)

log = logging.getLogger(__name__)


class SagaStore(Protocol):
    """What the saga needs of the store (the `store` module is one; so is a test's fake)."""

    async def get_posting(
        self, conn: asyncpg.Connection, posting_id: str, *, for_update: bool = False
    ) -> store.PostingRow | None: ...

    async def open_posting(
        self,
        conn: asyncpg.Connection,
        posting_id: str,
        *,
        reservation_id: str,
        amount_won: int,
        budget_revision: int,
        now: datetime,
        hourly_rate_won: int | None = None,
    ) -> None: ...

    async def note_reservation(
        self,
        conn: asyncpg.Connection,
        posting_id: str,
        *,
        amount_won: int,
        budget_revision: int,
        hourly_rate_won: int | None = None,
    ) -> None: ...

    async def reject_posting(
        self,
        conn: asyncpg.Connection,
        posting_id: str,
        *,
        reason: str,
        detail: str,
        now: datetime,
        requested_won: int | None = None,
    ) -> None: ...

    async def get_revision(
        self, conn: asyncpg.Connection, posting_id: str, revision: int
    ) -> store.RevisionRow | None: ...

    async def cost_changed_since(
        self, conn: asyncpg.Connection, posting_id: str, revision: int
    ) -> bool: ...

    async def insert_revision(
        self,
        conn: asyncpg.Connection,
        posting_id: str,
        *,
        revision: int,
        changed: Sequence[str],
        previous: ShiftTerms,
        new: ShiftTerms,
        cause: str,
        now: datetime,
    ) -> None: ...

    async def apply_terms(
        self,
        conn: asyncpg.Connection,
        posting_id: str,
        *,
        state: PostingState,
        revision: int,
        now: datetime,
        last_update_rejected: dict[str, Any] | None = None,
        clear_update_rejected: bool = False,
    ) -> None: ...

    async def note_budget_released(
        self, conn: asyncpg.Connection, posting_id: str, now: datetime
    ) -> None: ...

    async def emit(
        self,
        conn: asyncpg.Connection,
        event: Event,
        *,
        occurred_at: datetime,
        event_id: uuid.UUID | None = None,
    ) -> None: ...


def derived_event_id(cause: Envelope, what: str) -> uuid.UUID:
    """The id of the event a consumed event causes: the same cause never makes two."""
    return uuid.uuid5(cause.event_id, what)


async def on_budget_reserved(
    conn: asyncpg.Connection,
    envelope: Envelope,
    event: BudgetReserved,
    *,
    now: datetime,
    db: SagaStore = store,
) -> None:
    """The first reservation opens a pending posting (PostingPublished, what the matcher
    takes applications for); the answer to a funded update is noted; anything else (a
    cancelled posting, another reservation, an older revision) changes nothing."""
    row = await db.get_posting(conn, event.posting_id, for_update=True)
    if row is None:
        log.info("budget answer for a posting not ours", extra={"posting": event.posting_id})
        return
    action, why = budget.on_budget_reserved(
        row.budget, reservation_id=event.reservation_id, revision=event.revision
    )
    log.info("BudgetReserved: %s (%s)", action, why, extra={"posting": event.posting_id})
    if action == "publish":
        await db.open_posting(
            conn,
            event.posting_id,
            reservation_id=event.reservation_id,
            amount_won=event.amount_won,
            budget_revision=event.revision,
            now=now,
            hourly_rate_won=event.hourly_rate_won,
        )
        opened = await db.get_posting(conn, event.posting_id)
        assert opened is not None
        await db.emit(
            conn,
            PostingPublished(
                **posting_terms(opened),
                reservation_id=event.reservation_id,
                hourly_rate_won=event.hourly_rate_won,
            ),
            occurred_at=now,
            event_id=derived_event_id(envelope, "PostingPublished"),
        )
    elif action == "update_reservation":
        await db.note_reservation(
            conn,
            event.posting_id,
            amount_won=event.amount_won,
            budget_revision=event.revision,
            hourly_rate_won=event.hourly_rate_won,
        )


async def on_budget_rejected(
    conn: asyncpg.Connection,
    envelope: Envelope,
    event: BudgetRejected,
    *,
    now: datetime,
    db: SagaStore = store,
) -> None:
    """A refused submission rejects a pending posting for good (PostingRejected, with the
    reason on the posting); a refused update is put back (PostingUpdated) unless it moved
    nothing that costs or a later change already moved it again."""
    row = await db.get_posting(conn, event.posting_id, for_update=True)
    if row is None:
        log.info("budget answer for a posting not ours", extra={"posting": event.posting_id})
        return
    revision = None
    moved_cost = superseded = False
    if event.for_revision > 0:
        revision = await db.get_revision(conn, event.posting_id, event.for_revision)
        moved_cost = budget.refused_change_moved_cost(revision.changed if revision else None)
        superseded = await db.cost_changed_since(conn, event.posting_id, event.for_revision)
    action, why = budget.on_budget_rejected(
        row.budget,
        for_revision=event.for_revision,
        refused_change_moved_cost=moved_cost,
        superseded=superseded,
    )
    log.info("BudgetRejected: %s (%s)", action, why, extra={"posting": event.posting_id})
    if action == "reject":
        detail = budget.rejection_detail(
            requested_won=event.requested_won,
            available_won=event.available_won,
            shortfall_won=event.shortfall_won,
        )
        await db.reject_posting(
            conn,
            event.posting_id,
            reason=event.reason,
            detail=detail,
            now=now,
            requested_won=event.requested_won,
        )
        await db.emit(
            conn,
            PostingRejected(
                posting_id=event.posting_id,
                facility_id=row.facility_id,
                reason=event.reason,
                detail=detail,
            ),
            occurred_at=now,
            event_id=derived_event_id(envelope, "PostingRejected"),
        )
    elif action == "revert":
        assert revision is not None
        await _revert_update(conn, envelope, event, row, revision, now, db)


async def _revert_update(
    conn: asyncpg.Connection,
    envelope: Envelope,
    event: BudgetRejected,
    row: store.PostingRow,
    revision: store.RevisionRow,
    now: datetime,
    db: SagaStore,
) -> None:
    """Put back the capacity and times from before the refused change, as a new revision,
    and tell the facility why on the posting (`last_update_rejected`)."""
    current = row.state
    plan = budget.plan_revert(
        current,
        capacity=revision.previous_capacity,
        starts_at=revision.previous_starts_at,
        ends_at=revision.previous_ends_at,
        applications_close_at=revision.previous_applications_close_at,
    )
    new_revision = row.revision + 1
    note = budget.update_rejection_note(
        for_revision=event.for_revision,
        reason=event.reason,
        requested_won=event.requested_won,
        available_won=event.available_won,
        shortfall_won=event.shortfall_won,
        restored_revision=new_revision,
        restored=plan.restored.terms,
        at=now,
    )
    await db.insert_revision(
        conn,
        row.id,
        revision=new_revision,
        changed=plan.changed,
        previous=current.terms,
        new=plan.restored.terms,
        cause="budget_refused",
        now=now,
    )
    await db.apply_terms(
        conn, row.id, state=plan.restored, revision=new_revision, now=now, last_update_rejected=note
    )
    after = await db.get_posting(conn, row.id)
    assert after is not None
    await db.emit(
        conn,
        PostingUpdated(
            **posting_terms(after),
            hourly_rate_won=after.hourly_rate_won,
            revision=new_revision,
            previous_capacity=current.terms.capacity,
            previous_starts_at=current.terms.starts_at,
            previous_ends_at=current.terms.ends_at,
        ),
        occurred_at=now,
        event_id=derived_event_id(envelope, "PostingUpdated"),
    )


async def on_budget_released(
    conn: asyncpg.Connection,
    envelope: Envelope,
    event: BudgetReleased,
    *,
    now: datetime,
    db: SagaStore = store,
) -> None:
    """Allowance released what a cancelled or closed posting did not use: noted (first
    time only)."""
    await db.note_budget_released(conn, event.posting_id, now)


async def on_budget_exhausted(
    conn: asyncpg.Connection, envelope: Envelope, event: BudgetExhausted
) -> None:
    """The programme budget is used up: a warning for the operators; postings are refused
    one by one by their own BudgetRejected."""
    log.warning(
        "the programme budget is exhausted: new postings will be refused",
        extra={"fiscal_year": event.fiscal_year, "available_won": event.available_won},
    )

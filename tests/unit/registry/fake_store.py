"""An in-memory stand-in for `registry.store` where the posting saga touches it
(`registry.usecases.saga.SagaStore`): postings, their revisions and the outbox, as lists and
dicts. The connection argument is ignored. The state machine is checked as the database's
trigger checks it, so a use case cannot make a move the real store would refuse."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from registry.domain.ids import new_id
from registry.domain.postings import (
    PostingBounds,
    PostingPatch,
    PostingState,
    ShiftTerms,
    plan_patch,
    transition,
)
from registry.store import PostingRow, RevisionRow

from shared.events import Event


@dataclass(frozen=True)
class Emitted:
    event: Event
    occurred_at: datetime
    event_id: uuid.UUID | None


class FakeStore:
    def __init__(self) -> None:
        self.postings: dict[str, PostingRow] = {}
        self.revisions: dict[tuple[str, int], RevisionRow] = {}
        self.outbox: list[Emitted] = []

    # --- what a test sets up ---------------------------------------------------------------

    def submitted(
        self, now: datetime, *, capacity: int = 2, start_in: timedelta = timedelta(days=2)
    ) -> PostingRow:
        """A posting as `usecases.postings.create` stores it: pending its budget."""
        starts = now + start_in
        row = PostingRow(
            id=new_id("pst"),
            facility_id="fac_1",
            title="산책로 정리",
            description="",
            starts_at=starts,
            ends_at=starts + timedelta(hours=2),
            capacity=capacity,
            selection="first_come",
            applications_close_at=None,
            requires_child_safety_check=False,
            tags=("공원",),
            status="pending_budget",
            revision=0,
            reservation_id=None,
            reserved_amount_won=None,
            budget_revision=0,
            rejection_reason=None,
            rejection_detail=None,
            rejection_requested_won=None,
            last_update_rejected=None,
            cancel_reason=None,
            created_at=now,
            updated_at=now,
            published_at=None,
            rejected_at=None,
            cancelled_at=None,
            closed_at=None,
            budget_released_at=None,
            facility_name="수완공원",
            facility_dong="수완동",
            confirmed_count=0,
            waitlisted_count=0,
        )
        self.postings[row.id] = row
        return row

    def accepted_change(self, posting_id: str, change: PostingPatch, now: datetime) -> int:
        """A facility's change as `usecases.postings.patch` writes it (the rules applied):
        revision n + 1 with the terms before it. Its number."""
        row = self.postings[posting_id]
        plan = plan_patch(
            row.state,
            change,
            confirmed_count=row.confirmed_count,
            active_count=row.confirmed_count + row.waitlisted_count,
            now=now,
            bounds=PostingBounds(),
        )
        revision = row.revision + 1
        self._revision(
            posting_id, revision, plan.changed, row.terms, plan.new.terms, "facility", now
        )
        self._apply(posting_id, plan.new, revision, now, None, clear=True)
        return revision

    def events(self) -> list[str]:
        return [e.event.TYPE for e in self.outbox]

    # --- SagaStore -------------------------------------------------------------------------

    async def get_posting(
        self,
        conn: Any,
        posting_id: str,
        *,
        facility_id: str | None = None,
        for_update: bool = False,
    ) -> PostingRow | None:
        row = self.postings.get(posting_id)
        if row is None or (facility_id is not None and row.facility_id != facility_id):
            return None
        return row

    def _move(self, posting_id: str, status: str, **changes: Any) -> None:
        row = self.postings[posting_id]
        target = transition(row.status, status)  # the trigger's table
        if (
            target in ("open", "closed")
            and (changes.get("reservation_id") or row.reservation_id) is None
        ):
            raise ValueError("no open posting without a reservation")
        self.postings[posting_id] = replace(row, status=target, **changes)

    async def open_posting(
        self,
        conn: Any,
        posting_id: str,
        *,
        reservation_id: str,
        amount_won: int,
        budget_revision: int,
        now: datetime,
        hourly_rate_won: int | None = None,
    ) -> None:
        self._move(
            posting_id,
            "open",
            reservation_id=reservation_id,
            reserved_amount_won=amount_won,
            budget_revision=budget_revision,
            published_at=now,
            updated_at=now,
            hourly_rate_won=hourly_rate_won,
        )

    async def note_reservation(
        self,
        conn: Any,
        posting_id: str,
        *,
        amount_won: int,
        budget_revision: int,
        hourly_rate_won: int | None = None,
    ) -> None:
        self.postings[posting_id] = replace(
            self.postings[posting_id],
            reserved_amount_won=amount_won,
            budget_revision=budget_revision,
            hourly_rate_won=hourly_rate_won or self.postings[posting_id].hourly_rate_won,
        )

    async def reject_posting(
        self,
        conn: Any,
        posting_id: str,
        *,
        reason: str,
        detail: str,
        now: datetime,
        requested_won: int | None = None,
    ) -> None:
        self._move(
            posting_id,
            "rejected",
            rejection_reason=reason,
            rejection_detail=detail,
            rejection_requested_won=requested_won,
            rejected_at=now,
            updated_at=now,
        )

    async def get_revision(self, conn: Any, posting_id: str, revision: int) -> RevisionRow | None:
        return self.revisions.get((posting_id, revision))

    async def cost_changed_since(self, conn: Any, posting_id: str, revision: int) -> bool:
        cost = {"capacity", "starts_at", "ends_at", "applications_close_at"}
        return any(
            pid == posting_id and n > revision and cost & set(r.changed)
            for (pid, n), r in self.revisions.items()
        )

    async def insert_revision(
        self,
        conn: Any,
        posting_id: str,
        *,
        revision: int,
        changed: Sequence[str],
        previous: ShiftTerms,
        new: ShiftTerms,
        cause: str,
        now: datetime,
    ) -> None:
        self._revision(posting_id, revision, changed, previous, new, cause, now)

    def _revision(
        self,
        posting_id: str,
        revision: int,
        changed: Sequence[str],
        previous: ShiftTerms,
        new: ShiftTerms,
        cause: str,
        now: datetime,
    ) -> None:
        key = (posting_id, revision)
        if key in self.revisions:
            raise ValueError(f"revision {revision} of {posting_id} exists")  # the primary key
        self.revisions[key] = RevisionRow(
            posting_id=posting_id,
            revision=revision,
            changed=tuple(changed),
            previous_capacity=previous.capacity,
            previous_starts_at=previous.starts_at,
            previous_ends_at=previous.ends_at,
            previous_applications_close_at=previous.applications_close_at,
            capacity=new.capacity,
            starts_at=new.starts_at,
            ends_at=new.ends_at,
            applications_close_at=new.applications_close_at,
            cause=cause,
            created_at=now,
        )

    async def apply_terms(
        self,
        conn: Any,
        posting_id: str,
        *,
        state: PostingState,
        revision: int,
        now: datetime,
        last_update_rejected: dict[str, Any] | None = None,
        clear_update_rejected: bool = False,
    ) -> None:
        self._apply(posting_id, state, revision, now, last_update_rejected, clear_update_rejected)

    def _apply(
        self,
        posting_id: str,
        state: PostingState,
        revision: int,
        now: datetime,
        note: dict[str, Any] | None,
        clear: bool,
    ) -> None:
        row = self.postings[posting_id]
        terms = state.terms
        self.postings[posting_id] = replace(
            row,
            title=state.title,
            description=state.description,
            tags=state.tags,
            capacity=terms.capacity,
            starts_at=terms.starts_at,
            ends_at=terms.ends_at,
            applications_close_at=terms.applications_close_at,
            revision=revision,
            updated_at=now,
            last_update_rejected=None if clear else (note or row.last_update_rejected),
        )

    async def note_budget_released(self, conn: Any, posting_id: str, now: datetime) -> None:
        row = self.postings.get(posting_id)
        if row is not None:
            self.postings[posting_id] = replace(
                row, budget_released_at=row.budget_released_at or now
            )

    async def emit(
        self,
        conn: Any,
        event: Event,
        *,
        occurred_at: datetime,
        event_id: uuid.UUID | None = None,
    ) -> None:
        if event_id is not None and any(e.event_id == event_id for e in self.outbox):
            raise ValueError(f"event {event_id} is in the outbox already")  # the unique key
        self.outbox.append(Emitted(event, occurred_at, event_id))

"""The registry's side of the posting saga as use cases (`registry.usecases.saga`) on an
in-memory store (`fake_store.FakeStore`): no Kafka, no Postgres. A posting is submitted
(pending its budget); allowance's answers open it, reject it, revert a refused change, or
are ignored when they answer something that no longer holds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from registry.domain.postings import PostingPatch
from registry.usecases import saga

from shared.events import (
    BudgetRejected,
    BudgetReleased,
    BudgetReserved,
    Envelope,
    Event,
    PostingPublished,
    PostingRejected,
    PostingUpdated,
)
from tests.unit.registry.fake_store import FakeStore

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
CONN = None  # the fake store ignores the connection


def envelope_of(event: Event) -> Envelope:
    return event.envelope(producer="allowance", occurred_at=NOW)


def reserved(posting_id: str, **changes: object) -> BudgetReserved:
    fields = {
        "reservation_id": "rsv_1",
        "fiscal_year": 2026,
        "amount_won": 24_000,
        "hourly_rate_won": 12_000,
    }
    return BudgetReserved(posting_id=posting_id, **{**fields, **changes})


def rejected(posting_id: str, **changes: object) -> BudgetRejected:
    fields = {
        "reason": "budget_exhausted",
        "requested_won": 48_000,
        "available_won": 10_000,
        "shortfall_won": 38_000,
    }
    return BudgetRejected(posting_id=posting_id, **{**fields, **changes})


async def deliver(db: FakeStore, event: BudgetReserved | BudgetRejected) -> Envelope:
    envelope = envelope_of(event)
    if isinstance(event, BudgetReserved):
        await saga.on_budget_reserved(CONN, envelope, event, now=NOW, db=db)  # type: ignore[arg-type]
    else:
        await saga.on_budget_rejected(CONN, envelope, event, now=NOW, db=db)  # type: ignore[arg-type]
    return envelope


async def opened(db: FakeStore, capacity: int = 2) -> str:
    """A submitted posting that its budget opened (its PostingPublished cleared)."""
    pid = db.submitted(NOW, capacity=capacity).id
    await deliver(db, reserved(pid))
    db.outbox.clear()
    return pid


async def test_a_submitted_posting_opens_once_its_budget_is_reserved() -> None:
    """submitted → BudgetReserved → open, funded by that reservation, with PostingPublished
    (the whole terms, an id derived from the answer) in the outbox; a second reservation
    for the same posting changes nothing."""
    db = FakeStore()
    submitted = db.submitted(NOW)
    assert submitted.status == "pending_budget"
    envelope = await deliver(db, reserved(submitted.id))
    row = db.postings[submitted.id]
    assert row.status == "open" and row.published_at == NOW
    assert (row.reservation_id, row.reserved_amount_won, row.budget_revision) == (
        "rsv_1",
        24_000,
        1,
    )
    [published] = db.outbox
    assert isinstance(published.event, PostingPublished)
    assert published.event_id == uuid.uuid5(envelope.event_id, "PostingPublished")
    assert published.event.reservation_id == "rsv_1"
    assert (published.event.capacity, published.event.facility_dong) == (2, "수완동")
    assert published.event.tags == ["공원"] and published.occurred_at == NOW

    await deliver(db, reserved(submitted.id, reservation_id="rsv_2"))
    assert db.postings[submitted.id] == row and db.events() == ["PostingPublished"]


async def test_a_refused_submission_rejects_the_posting_with_the_reason() -> None:
    """submitted → BudgetRejected (for the submission) → rejected for good: the reason and
    what was short are on the posting and in PostingRejected; a late reservation is
    ignored."""
    db = FakeStore()
    pid = db.submitted(NOW).id
    envelope = await deliver(db, rejected(pid))
    row = db.postings[pid]
    assert row.status == "rejected" and row.rejected_at == NOW
    assert row.rejection_reason == "budget_exhausted"
    assert row.rejection_detail == ("requested 48000 won, available 10000 won (short by 38000 won)")
    [event] = db.outbox
    assert isinstance(event.event, PostingRejected)
    assert (event.event.reason, event.event.detail) == ("budget_exhausted", row.rejection_detail)
    assert event.event.facility_id == "fac_1"
    assert event.event_id == uuid.uuid5(envelope.event_id, "PostingRejected")

    await deliver(db, reserved(pid))
    assert db.postings[pid] == row and db.events() == ["PostingRejected"]


async def test_answers_to_a_stale_or_another_revision_are_ignored() -> None:
    """Answers that no longer hold change nothing and emit nothing: a refusal of the
    submission once the posting is open, a reservation older than the one noted, a refusal
    of a revision the registry never had, of a text-only change, or of a change a later
    one superseded; and a posting that is not the registry's."""
    db = FakeStore()
    pid = await opened(db)
    text_only = db.accepted_change(pid, PostingPatch(title="산책로 정리 (오전)"), NOW)
    bigger = db.accepted_change(pid, PostingPatch(capacity=4), NOW)
    biggest = db.accepted_change(pid, PostingPatch(capacity=6), NOW)
    await deliver(db, reserved(pid, revision=biggest, amount_won=72_000))
    before = db.postings[pid]
    assert (before.capacity, before.revision, before.budget_revision) == (6, 3, 3)

    for answer in (
        rejected(pid),  # the submission's refusal, but the posting is open
        reserved(pid, revision=bigger, amount_won=48_000),  # older than the one noted
        rejected(pid, for_revision=9),  # no such revision
        rejected(pid, for_revision=text_only),  # moved no capacity or times
        rejected(pid, for_revision=bigger),  # superseded by `biggest`
        rejected("pst_not_ours"),
        reserved("pst_not_ours"),
    ):
        await deliver(db, answer)
        assert db.postings[pid] == before, answer
        assert db.outbox == [], answer
    assert (before.reserved_amount_won, before.last_update_rejected) == (72_000, None)


async def test_a_refused_update_is_put_back_as_a_new_revision() -> None:
    """open (capacity 2) → the facility raises capacity to 4 (revision 1) → BudgetRejected
    for revision 1 → capacity 2 again as revision 2 (cause budget_refused), the refusal
    shown on the posting, and PostingUpdated 2 with capacity 2 and previous capacity 4."""
    db = FakeStore()
    pid = await opened(db, capacity=2)
    change = db.accepted_change(pid, PostingPatch(capacity=4, title="두 배로"), NOW)
    assert change == 1 and db.postings[pid].capacity == 4
    later = NOW + timedelta(minutes=1)
    envelope = envelope_of(rejected(pid, for_revision=change))
    await saga.on_budget_rejected(
        CONN,  # type: ignore[arg-type]
        envelope,
        rejected(pid, for_revision=change),
        now=later,
        db=db,  # type: ignore[arg-type]
    )
    row = db.postings[pid]
    assert (row.status, row.capacity, row.revision, row.title) == ("open", 2, 2, "두 배로")
    note = row.last_update_rejected
    assert note is not None
    assert (note["revision"], note["reason"], note["shortfall_won"]) == (
        1,
        "budget_exhausted",
        38_000,
    )
    assert note["restored"] == {
        "revision": 2,
        "capacity": 2,
        "starts_at": row.starts_at.isoformat(),
        "ends_at": row.ends_at.isoformat(),
    }
    put_back = db.revisions[(pid, 2)]
    assert (put_back.cause, put_back.changed) == ("budget_refused", ("capacity",))
    assert (put_back.previous_capacity, put_back.capacity) == (4, 2)
    [event] = db.outbox
    assert isinstance(event.event, PostingUpdated)
    assert (event.event.revision, event.event.capacity, event.event.previous_capacity) == (2, 2, 4)
    assert event.event_id == uuid.uuid5(envelope.event_id, "PostingUpdated")
    assert event.occurred_at == later

    # the same refusal again (a redelivery the guard let through) is superseded by the
    # put-back revision: nothing moves twice
    await deliver(db, rejected(pid, for_revision=change))
    assert db.postings[pid] == row and len(db.outbox) == 1


async def test_a_released_budget_is_noted_once() -> None:
    db = FakeStore()
    pid = await opened(db)
    released = BudgetReleased(posting_id=pid, reservation_id="rsv_1", amount_won=1, reason="closed")
    for at in (NOW, NOW + timedelta(hours=1)):
        await saga.on_budget_released(CONN, envelope_of(released), released, now=at, db=db)  # type: ignore[arg-type]
    assert db.postings[pid].budget_released_at == NOW

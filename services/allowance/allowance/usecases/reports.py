"""Facts the outcome reports need that the ledger does not hold (issue 19): where each
posting is, who applied, and what each draw did. Each runs in the consumer guard's
transaction and is idempotent on its own too (a redelivered event inserts nothing new).
No money here: the reports read money from the ledger's payout lines."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from allowance.domain import outcomes
from allowance.store import Store
from allowance.usecases.common import Deps
from shared.events import (
    BookingConfirmed,
    BookingRejected,
    BookingWaitlisted,
    DrawCompleted,
    Envelope,
    PostingSubmitted,
    PostingUpdated,
)

log = logging.getLogger(__name__)


async def remember_place(db: Store, event: PostingSubmitted | PostingUpdated) -> None:
    """Keep the posting's facility, dong and title (the latest terms win), for grouping
    and for the finance console's statements."""
    await db.remember_place(
        event.posting_id,
        event.facility_id,
        event.facility_name,
        event.facility_dong,
        event.selection,
        event.title,
    )


async def on_applications_decided(
    db: Store, events: Sequence[BookingConfirmed | BookingWaitlisted | BookingRejected]
) -> None:
    """The citizens applied for the postings (whatever the answer): they count among the
    citizens a report's spread is measured over."""
    if events:
        await db.remember_applicants([(e.posting_id, e.citizen_id) for e in events])


def draw_fact(event: DrawCompleted, deps: Deps) -> outcomes.DrawFact:
    """The draw's entrants and winners by citizen, with the selection probabilities its
    weights gave (min and max over the entrants)."""
    citizen_of = {e.entry_id: e.citizen_id for e in event.entries}
    weights = [
        outcomes.draw_weight(e.minutes_window, event.half_weight_minutes) for e in event.entries
    ]
    found = outcomes.selection_probabilities(
        weights,
        event.seats,
        exact_entries_max=deps.report_draw_exact_entries_max,
        work_max=deps.report_draw_work_max,
        seed_text=event.posting_id,
    )
    return outcomes.DrawFact(
        posting_id=event.posting_id,
        seats=event.seats,
        entrants=tuple(e.citizen_id for e in event.entries),
        winners=tuple(citizen_of[i] for i in event.confirmed if i in citizen_of),
        probability_min=found.minimum,
        probability_max=found.maximum,
        method=found.method,
    )


async def on_draw_completed(
    db: Store, envelope: Envelope, event: DrawCompleted, deps: Deps
) -> None:
    """Store the draw's facts once per posting."""
    fact = draw_fact(event, deps)
    if not await db.insert_draw_outcome(fact, event.algorithm, event.drawn_at, envelope.event_id):
        log.info("draw outcome already stored; DrawCompleted ignored")

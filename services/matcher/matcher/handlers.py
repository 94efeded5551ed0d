"""Consumer handlers: each consumed event, applied once (the guard in `shared/consumer.py`
records its id in the same transaction), becomes one use case of `matcher.usecases`."""

from __future__ import annotations

from matcher.settings import Context
from matcher.usecases import (
    allowance,
    applications,
    attendance,
    caps,
    payees,
    postings,
    reminders,
)
from matcher.usecases.deps import deps_of
from shared.consumer import EventConsumer
from shared.db import Connection
from shared.events import (
    ApplicationReceived,
    ApplicationWithdrawn,
    AttendanceCorrected,
    AttendanceRecorded,
    CapsChanged,
    Envelope,
    PayeeAccepted,
    PayeeRejected,
    PayoutAccrued,
    PayoutCapped,
    PayoutFailed,
    PayoutHeldBack,
    PayoutPaid,
    PayoutReversed,
    PeriodClosed,
    PostingCancelled,
    PostingClosed,
    PostingPublished,
    PostingUpdated,
    ReconfirmationReceived,
)


def register(consumer: EventConsumer, ctx: Context) -> None:
    deps = deps_of(ctx)

    async def applications_received(
        conn: Connection, batch: list[tuple[Envelope, ApplicationReceived]]
    ) -> None:
        """A run of consecutive applications (one fetched batch, maybe several postings),
        decided together in a fixed number of statements: every posting locked at once in
        id order (so two batches never wait for each other in a cycle), each posting's
        applications in arrival order, postings in id order."""
        await applications.decide_applications(conn, deps, [event for _, event in batch])

    async def application_withdrawn(
        conn: Connection, envelope: Envelope, event: ApplicationWithdrawn
    ) -> None:
        await applications.withdraw_application(conn, deps, event)

    async def reconfirmation_received(
        conn: Connection, envelope: Envelope, event: ReconfirmationReceived
    ) -> None:
        await reminders.reconfirm(conn, deps, event)

    async def posting_published(
        conn: Connection, envelope: Envelope, event: PostingPublished
    ) -> None:
        await postings.open_posting(conn, deps, event)

    async def posting_updated(conn: Connection, envelope: Envelope, event: PostingUpdated) -> None:
        await postings.update_posting(conn, deps, event)

    async def posting_cancelled(
        conn: Connection, envelope: Envelope, event: PostingCancelled
    ) -> None:
        await postings.cancel_posting(conn, deps, event)

    async def posting_closed(conn: Connection, envelope: Envelope, event: PostingClosed) -> None:
        await postings.close_posting(conn, deps, event)

    async def attendance_recorded(
        conn: Connection, envelope: Envelope, event: AttendanceRecorded
    ) -> None:
        await attendance.record_attendance(conn, deps, event, envelope.occurred_at)

    async def attendance_corrected(
        conn: Connection, envelope: Envelope, event: AttendanceCorrected
    ) -> None:
        await attendance.record_attendance(conn, deps, event, envelope.occurred_at)

    async def caps_changed(conn: Connection, envelope: Envelope, event: CapsChanged) -> None:
        """The allowance's cap table: the weekly hour cap the matcher enforces."""
        await caps.adopt_caps(conn, deps, event)

    async def payout_accrued(conn: Connection, envelope: Envelope, event: PayoutAccrued) -> None:
        """The allowance's read model (what the partner is shown) and `payout.accrued`."""
        await allowance.accrue(conn, deps, event)

    async def payout_capped(conn: Connection, envelope: Envelope, event: PayoutCapped) -> None:
        await allowance.capped(conn, deps, event)

    async def payout_reversed(conn: Connection, envelope: Envelope, event: PayoutReversed) -> None:
        await allowance.reverse(conn, deps, event)

    async def period_closed(conn: Connection, envelope: Envelope, event: PeriodClosed) -> None:
        await allowance.close_period(conn, deps, event)

    async def payout_result(
        conn: Connection, envelope: Envelope, event: PayoutPaid | PayoutFailed
    ) -> None:
        """The bank's result: the month `paid` / `failed`, `payout.paid` / `payout.failed`."""
        await allowance.payment(conn, envelope, event)

    async def payout_held_back(conn: Connection, envelope: Envelope, event: PayoutHeldBack) -> None:
        await allowance.held_back(conn, envelope, event)

    async def payee_answered(
        conn: Connection, envelope: Envelope, event: PayeeAccepted | PayeeRejected
    ) -> None:
        """The allowance's answer to bank details: `payee.accepted` / `payee.rejected`."""
        await payees.answer_payee(conn, envelope, event)

    consumer.on_batch(ApplicationReceived, applications_received)
    consumer.on(ApplicationWithdrawn, application_withdrawn)
    consumer.on(ReconfirmationReceived, reconfirmation_received)
    consumer.on(PostingPublished, posting_published)
    consumer.on(PostingUpdated, posting_updated)
    consumer.on(PostingCancelled, posting_cancelled)
    consumer.on(PostingClosed, posting_closed)
    consumer.on(AttendanceRecorded, attendance_recorded)
    consumer.on(AttendanceCorrected, attendance_corrected)
    consumer.on(CapsChanged, caps_changed)
    consumer.on(PayoutAccrued, payout_accrued)
    consumer.on(PayoutCapped, payout_capped)
    consumer.on(PayoutReversed, payout_reversed)
    consumer.on(PeriodClosed, period_closed)
    consumer.on(PayoutPaid, payout_result)
    consumer.on(PayoutFailed, payout_result)
    consumer.on(PayoutHeldBack, payout_held_back)
    consumer.on(PayeeAccepted, payee_answered)
    consumer.on(PayeeRejected, payee_answered)

"""The saga and payout use cases on an in-memory store (tests/unit/allowance/fakes.py): the
decisions and what they write — reservations, ledger transactions, payout lines, outbox
events — without Postgres or Kafka. The integration suite runs the same flows for real."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from allowance.domain import policy
from allowance.domain.calendar import Period
from allowance.usecases import Deps, payouts, reservations

from shared.events import (
    AttendanceRecorded,
    BudgetRejected,
    BudgetReleased,
    BudgetReserved,
    PayoutAccrued,
    PayoutCapped,
    PostingClosed,
    PostingSubmitted,
    PostingUpdated,
)

from .fakes import FakeStore

SEOUL = ZoneInfo("Asia/Seoul")
YEAR = 2026
RATE_WON = 13_303  # the seeded 2026 rate
SEAT_120_WON = RATE_WON * 120 // 60  # 26,606: one seat of a two-hour shift
STARTS = datetime(YEAR, 3, 10, 9, 0, tzinfo=SEOUL)
NOW = datetime(YEAR, 3, 1, 12, 0, tzinfo=SEOUL)
DEPS = Deps(now=NOW)


def submitted(posting_id: str = "pst_1", capacity: int = 2) -> PostingSubmitted:
    return PostingSubmitted(
        posting_id=posting_id,
        facility_id="fac_1",
        facility_name="수완 경로당",
        facility_dong="수완동",
        title="meal help",
        starts_at=STARTS,
        ends_at=STARTS + timedelta(minutes=120),
        capacity=capacity,
        selection="first_come",
    )


def updated(revision: int, capacity: int, posting_id: str = "pst_1") -> PostingUpdated:
    return PostingUpdated(
        **submitted(posting_id, capacity).model_dump(exclude={"event_type"}),
        revision=revision,
        previous_capacity=2,
        previous_starts_at=STARTS,
        previous_ends_at=STARTS + timedelta(minutes=120),
    )


def attended(attendance_id: str, posting_id: str = "pst_1") -> AttendanceRecorded:
    return AttendanceRecorded(
        attendance_id=attendance_id,
        posting_id=posting_id,
        facility_id="fac_1",
        booking_id=f"bkg_{attendance_id}",
        citizen_id="ctz_1",
        status="attended",
        minutes=120,
        scheduled_minutes=120,
        shift_starts_at=STARTS,
    )


async def submit(db: FakeStore, event: PostingSubmitted) -> None:
    envelope = event.envelope(producer="tests", occurred_at=NOW)
    await reservations.on_posting_submitted(db, envelope, event, DEPS)


async def test_a_funded_posting_reserves_its_whole_cost() -> None:
    """Two seats of two hours at the 2026 rate are reserved from the year's budget: one
    ledger transaction, the reservation row, BudgetReserved for revision 1."""
    db = FakeStore()
    db.fund(YEAR, 1_000_000)
    await submit(db, submitted())
    reserved = db.events(BudgetReserved)
    assert [(e.amount_won, e.revision) for e in reserved] == [(2 * SEAT_120_WON, 1)]
    assert db.reservations["pst_1"].status == "active"
    figures = db.figures(YEAR)
    assert figures.reserved_won == 2 * SEAT_120_WON
    assert figures.available_won == 1_000_000 - 2 * SEAT_120_WON
    assert figures.balanced()


async def test_a_posting_the_budget_cannot_fund_is_rejected_with_the_reason() -> None:
    """No budget for the year, then too little of it: each refusal names its reason and the
    shortfall, reserves nothing, and keeps the rejected reservation row."""
    db = FakeStore()
    await submit(db, submitted("pst_nobudget"))
    db.fund(YEAR, 50_000)
    await submit(db, submitted("pst_short"))
    rejected = db.events(BudgetRejected)
    assert [e.reason for e in rejected] == ["no_budget_for_year", "insufficient_budget"]
    short = rejected[1]
    assert (short.requested_won, short.available_won) == (2 * SEAT_120_WON, 50_000)
    assert short.shortfall_won == 2 * SEAT_120_WON - 50_000
    assert db.reject_reasons["pst_short"] == "insufficient_budget"
    assert db.reservations["pst_short"].status == "rejected"
    assert db.figures(YEAR).reserved_won == 0 and db.figures(YEAR).available_won == 50_000


async def test_a_revision_grows_the_reservation_and_a_stale_one_changes_nothing() -> None:
    """Revision 1 with a third seat reserves one seat more and answers BudgetReserved with
    the new total; the same revision delivered again is ignored."""
    db = FakeStore()
    db.fund(YEAR, 1_000_000)
    await submit(db, submitted())
    for _ in range(2):
        event = updated(revision=1, capacity=3)
        envelope = event.envelope(producer="tests", occurred_at=NOW)
        await reservations.on_posting_updated(db, envelope, event, DEPS)
    answers = [(e.amount_won, e.revision) for e in db.events(BudgetReserved)]
    assert answers == [(2 * SEAT_120_WON, 1), (3 * SEAT_120_WON, 1)]
    assert db.reservations["pst_1"].revision == 1
    assert db.figures(YEAR).reserved_won == 3 * SEAT_120_WON


async def test_a_closed_posting_releases_what_it_did_not_use() -> None:
    """PostingClosed after one seat was paid releases the other seat's share."""
    db = FakeStore()
    db.fund(YEAR, 1_000_000)
    await submit(db, submitted())
    record = attended("att_1")
    await payouts.on_attendance(
        db, record.envelope(producer="tests", occurred_at=NOW), record, DEPS
    )
    closed = PostingClosed(posting_id="pst_1", facility_id="fac_1", closed_at=NOW)
    envelope = closed.envelope(producer="tests", occurred_at=NOW)
    await reservations.on_posting_ended(db, envelope, "pst_1", "closed", DEPS)
    released = db.events(BudgetReleased)
    assert [(e.amount_won, e.reason) for e in released] == [(SEAT_120_WON, "posting_closed")]
    assert db.reservations["pst_1"].status == "closed"
    figures = db.figures(YEAR)
    assert figures.reserved_won == 0 and figures.payable_won == SEAT_120_WON
    assert figures.balanced()


async def test_attendance_is_paid_within_the_monthly_cap_and_the_excess_recorded() -> None:
    """With a 30,000 won monthly cap, the first shift (26,606) is paid whole; of the second
    only 3,394 is payable and 23,212 is recorded as capped (PayoutCapped), on the line too."""
    cap_won = 30_000
    db = FakeStore(policy.CapTable((policy.CapEntry(YEAR, 13, cap_won, "test cap"),)))
    db.fund(YEAR, 1_000_000)
    await submit(db, submitted("pst_1", capacity=1))
    await submit(db, submitted("pst_2", capacity=1))
    for attendance_id, posting_id in (("att_1", "pst_1"), ("att_2", "pst_2")):
        record = attended(attendance_id, posting_id)
        envelope = record.envelope(producer="tests", occurred_at=NOW)
        await payouts.on_attendance(db, envelope, record, DEPS)
    accrued = [(e.accrued_won, e.capped_won) for e in db.events(PayoutAccrued)]
    assert accrued == [(SEAT_120_WON, 0), (cap_won - SEAT_120_WON, 2 * SEAT_120_WON - cap_won)]
    capped = db.events(PayoutCapped)
    assert [(e.capped_won, e.cap_won) for e in capped] == [(2 * SEAT_120_WON - cap_won, cap_won)]
    assert [line.capped_won for line in db.lines.values()] == [0, 2 * SEAT_120_WON - cap_won]
    month = db.months[("ctz_1", Period(YEAR, 3))]
    assert (month.payable_won, month.capped_won) == (cap_won, 2 * SEAT_120_WON - cap_won)
    figures = db.figures(YEAR)
    assert figures.payable_won == cap_won and figures.capped_won == 2 * SEAT_120_WON - cap_won
    assert figures.balanced()


async def test_a_redelivered_attendance_makes_no_second_entry() -> None:
    """The same AttendanceRecorded (same revision) delivered twice is paid once: one payout
    line, one accrual transaction, one PayoutAccrued."""
    db = FakeStore()
    db.fund(YEAR, 1_000_000)
    await submit(db, submitted())
    record = attended("att_1")
    envelope = record.envelope(producer="tests", occurred_at=NOW)
    posted_before = len(db.posted)
    for _ in range(2):
        await payouts.on_attendance(db, envelope, record, DEPS)
    assert len(db.lines) == 1
    assert len(db.posted) == posted_before + 1
    assert len(db.events(PayoutAccrued)) == 1
    assert db.attendance["att_1"].line_id == 1


async def test_the_ledger_balances_after_the_whole_saga() -> None:
    """Reserve, grow, pay one seat, close: every transaction balances, so all balances sum
    to zero, and the year's figures satisfy total + unfunded = available + reserved +
    accrued + paid."""
    db = FakeStore()
    db.fund(YEAR, 200_000)
    await submit(db, submitted())
    event = updated(revision=1, capacity=3)
    await reservations.on_posting_updated(
        db, event.envelope(producer="tests", occurred_at=NOW), event, DEPS
    )
    record = attended("att_1")
    await payouts.on_attendance(
        db, record.envelope(producer="tests", occurred_at=NOW), record, DEPS
    )
    closed = PostingClosed(posting_id="pst_1", facility_id="fac_1", closed_at=NOW)
    await reservations.on_posting_ended(
        db, closed.envelope(producer="tests", occurred_at=NOW), "pst_1", "closed", DEPS
    )
    assert sum(db.balances.values()) == 0
    assert all(sum(leg.amount_won for leg in p.txn.legs) == 0 for p in db.posted)
    figures = db.figures(YEAR)
    assert figures.balanced()
    assert figures.available_won == 200_000 - SEAT_120_WON
    assert figures.payable_won == SEAT_120_WON and figures.reserved_won == 0

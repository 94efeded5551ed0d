"""Attendance to payout on the running service: floor arithmetic in the shift's Seoul
month, the monthly cap (capped, visible, not dropped), corrections as reversing entries,
no-shows, redelivery, and what a closed posting releases."""

from __future__ import annotations

import asyncio

import pytest

from shared import topics
from tests.integration.allowance.allowance_kit import Kit, Posting, full_shift_won, kst, new_id

pytestmark = pytest.mark.stack

RATE = 13_303
CAP = 583_444


async def _funded_posting(
    kit: Kit, year: int, when: str, minutes: int, capacity: int = 1
) -> Posting:
    posting = await kit.submit(kst(f"{year}-{when}"), minutes, capacity=capacity)
    answer = await kit.budget_answer(posting.posting_id)
    assert answer.type == "BudgetReserved", answer
    return posting


async def test_attended_shift_accrues_once_even_when_redelivered(kit: Kit) -> None:
    """A 97-minute attendance at 13,303 won/h accrues floor(13,303 × 97 / 60) = 21,506 won
    in the shift's Seoul month (00:30 KST on the 1st is that month, not the previous one in
    UTC). The same envelope delivered three times, and the same attendance revision
    re-sent under a new event id, post nothing more."""
    year = await kit.fresh_year()
    await kit.set_budget(year, 1_000_000)
    posting = await _funded_posting(kit, year, "04-01T00:30", 120)
    citizen = new_id("ctz")
    event = kit.attendance(posting, citizen, minutes=97)
    envelope = await kit.inject(event)
    for _ in range(2):
        await kit.send(envelope, topics.REGISTRY_ATTENDANCE)
    await kit.inject(event)  # same attendance and revision, another event id
    accrued = await kit.wait("PayoutAccrued", citizen_id=citizen)
    assert accrued[0].data["period"] == f"{year}-04"
    assert accrued[0].data["gross_won"] == accrued[0].data["accrued_won"] == 21_506
    # a marker after the duplicates: once it is through, the duplicates were too
    marker = kit.attendance(posting, new_id("ctz"), minutes=1, booking_id=new_id("bkg"))
    await kit.inject(marker)
    await kit.wait("PayoutAccrued", citizen_id=marker.citizen_id)
    assert len(kit.watcher.matching(lambda e: e.data.get("citizen_id") == citizen)) == 1
    entries = await kit.entries_of(citizen_id=citizen)
    assert [(r["kind"], r["account"], r["amount_won"]) for r in entries] == [
        ("payout_accrual", "allowance_payable", -21_506)
    ]
    lines = await kit.pool.fetchval(
        "SELECT count(*) FROM payout_lines WHERE attendance_id = $1", event.attendance_id
    )
    assert lines == 1
    budget = await kit.budget(year)
    assert budget["accrued_won"] == 21_506 + full_shift_won(RATE, 1)
    assert budget["reserved_won"] == full_shift_won(RATE, 120) - 21_506 - full_shift_won(RATE, 1)


async def test_monthly_cap_records_the_excess_as_capped(kit: Kit) -> None:
    """Six 8-hour shifts in one month gross 638,544 won: 583,444 is payable and 55,100 is
    capped — on the capped account, in PayoutCapped, and on the statement — while a shift
    in the next month is paid in full."""
    year = await kit.fresh_year()
    await kit.set_budget(year, 2_000_000)
    citizen = new_id("ctz")
    shift = full_shift_won(RATE, 480)
    assert shift == 106_424
    for day in range(1, 7):
        posting = await _funded_posting(kit, year, f"09-{day:02d}T09:00", 480)
        await kit.inject(kit.attendance(posting, citizen))
    october = await _funded_posting(kit, year, "10-01T09:00", 480)
    await kit.inject(kit.attendance(october, citizen))
    accrued = await kit.wait("PayoutAccrued", count=7, citizen_id=citizen)
    september = [e for e in accrued if e.data["period"] == f"{year}-09"]
    assert sum(e.data["accrued_won"] for e in september) == CAP
    assert sum(e.data["capped_won"] for e in september) == 6 * shift - CAP == 55_100
    capped = await kit.wait("PayoutCapped", citizen_id=citizen)
    assert capped[0].data["cap_won"] == CAP and capped[0].data["capped_won"] == 55_100
    oct_event = next(e for e in accrued if e.data["period"] == f"{year}-10")
    assert oct_event.data["accrued_won"] == shift and oct_event.data["capped_won"] == 0
    statements = await kit.http.get(
        f"/v1/periods/{year}-09/statements", headers=kit.finance, params={"limit": 200}
    )
    mine = [s for s in statements.json()["statements"] if s["citizen_id"] == citizen]
    assert mine[0]["gross_won"] == 6 * shift
    assert (mine[0]["payable_won"], mine[0]["capped_won"]) == (CAP, 55_100)
    budget = await kit.budget(year)
    assert budget["capped_won"] == 55_100
    assert budget["accrued_won"] == CAP + shift


async def test_corrections_reverse_and_repost_and_no_show_releases_the_seat(kit: Kit) -> None:
    """A 120-minute shift paid 26,606 is corrected to 60 minutes: a reversing line of
    -26,606 and a new one of 13,303. Corrected again to no-show: reversed, nothing paid,
    and the seat's share is released. A no-show of another seat releases its share at
    once. Closing the posting releases what is left, and reserved becomes zero."""
    year = await kit.fresh_year()
    await kit.set_budget(year, 1_000_000)
    posting = await _funded_posting(kit, year, "11-05T14:00", 120, capacity=3)
    seat = full_shift_won(RATE, 120)
    citizen = new_id("ctz")
    first = kit.attendance(posting, citizen)
    await kit.inject(first)
    await kit.wait("PayoutAccrued", citizen_id=citizen)
    corrected = kit.attendance(
        posting,
        citizen,
        minutes=60,
        revision=2,
        attendance_id=first.attendance_id,
        booking_id=first.booking_id,
        corrected_from=("attended", 120),
    )
    await kit.inject(corrected)
    reversed_ = await kit.wait("PayoutReversed", citizen_id=citizen)
    assert reversed_[0].data["gross_reversed_won"] == seat
    assert reversed_[0].data["minutes_reversed"] == 120
    accrued = await kit.wait("PayoutAccrued", count=2, citizen_id=citizen)
    assert accrued[1].data["accrued_won"] == full_shift_won(RATE, 60) == 13_303

    no_show = kit.attendance(
        posting,
        citizen,
        status="no_show",
        minutes=0,
        revision=3,
        attendance_id=first.attendance_id,
        booking_id=first.booking_id,
        corrected_from=("attended", 60),
    )
    await kit.inject(no_show)
    await kit.wait("PayoutReversed", count=2, citizen_id=citizen)
    other = kit.attendance(posting, new_id("ctz"), status="no_show", minutes=0)
    await kit.inject(other)
    released = await kit.wait(
        "BudgetReleased", count=2, posting_id=posting.posting_id, reason="no_show"
    )
    assert [e.data["amount_won"] for e in released] == [seat, seat]
    lines = await kit.pool.fetch(
        "SELECT kind, minutes_paid, gross_won, payable_won FROM payout_lines"
        " WHERE attendance_id = $1 ORDER BY id",
        first.attendance_id,
    )
    assert [tuple(r) for r in lines] == [
        ("accrual", 120, seat, seat),
        ("reversal", -120, -seat, -seat),
        ("accrual", 60, 13_303, 13_303),
        ("reversal", -60, -13_303, -13_303),
    ]
    budget = await kit.budget(year)
    assert budget["accrued_won"] == 0 and budget["reserved_won"] == seat
    await kit.close_posting(posting)
    closed = await kit.wait(
        "BudgetReleased", posting_id=posting.posting_id, reason="posting_closed"
    )
    assert closed[0].data["amount_won"] == seat
    budget = await kit.budget(year)
    assert (budget["reserved_won"], budget["available_won"]) == (0, 1_000_000)


async def test_late_correction_after_close_draws_from_available(kit: Kit) -> None:
    """After PostingClosed released the unused reservation, an upward correction draws
    the extra from the available budget, and the ledger says so."""
    year = await kit.fresh_year()
    await kit.set_budget(year, 500_000)
    posting = await _funded_posting(kit, year, "02-10T10:00", 240)
    citizen = new_id("ctz")
    first = kit.attendance(posting, citizen, minutes=60)
    await kit.inject(first)
    await kit.wait("PayoutAccrued", citizen_id=citizen)
    await kit.close_posting(posting)
    await kit.wait("BudgetReleased", posting_id=posting.posting_id, reason="posting_closed")
    later = kit.attendance(
        posting,
        citizen,
        minutes=240,
        revision=2,
        attendance_id=first.attendance_id,
        booking_id=first.booking_id,
        corrected_from=("attended", 60),
    )
    await kit.inject(later)
    accrued = await kit.wait("PayoutAccrued", count=2, citizen_id=citizen)
    assert accrued[1].data["accrued_won"] == full_shift_won(RATE, 240)
    legs = {r["leg"] for r in await kit.entries_of(posting_id=posting.posting_id)}
    assert "accrual:available_draw" in legs and "reversal:available_return" in legs
    budget = await kit.budget(year)
    assert budget["accrued_won"] == full_shift_won(RATE, 240)
    assert budget["available_won"] == 500_000 - full_shift_won(RATE, 240)
    assert budget["reserved_won"] == 0 and budget["unfunded_won"] == 0


async def test_attendance_for_an_unknown_posting_is_dead_lettered_not_guessed(kit: Kit) -> None:
    """Attendance for a posting allowance never funded is not paid from thin air: after
    the bounded retries it is in the DLQ with the reason, and nothing was posted."""
    year = await kit.fresh_year()
    posting = await kit.submit(kst(f"{year}-01-05T10:00"), 60)  # no budget: refused
    await kit.budget_answer(posting.posting_id)
    citizen = new_id("ctz")
    envelope = await kit.inject(kit.attendance(posting, citizen))
    for _ in range(100):
        row = await kit.pool.fetchrow(
            "SELECT error, attempts FROM dead_letters WHERE event_id = $1", envelope.event_id
        )
        if row is not None:
            break
        await asyncio.sleep(0.1)
    assert row is not None and "no budget reservation" in row["error"]
    assert await kit.entries_of(citizen_id=citizen) == []


async def test_work_owed_beyond_the_budget_is_unfunded_and_the_next_raise_covers_it(
    kit: Kit,
) -> None:
    """A seat paid 60 of 240 minutes, the posting closed (the rest released), the budget
    cut to what is committed, then the attendance corrected to 240 minutes: the extra is
    owed with no budget left, so it is drawn from `budget_unfunded` — visible — and the
    next raise covers it before anything becomes available."""
    year = await kit.fresh_year()
    seat = full_shift_won(RATE, 240)
    await kit.set_budget(year, seat)
    posting = await _funded_posting(kit, year, "06-10T10:00", 240)
    citizen = new_id("ctz")
    first = kit.attendance(posting, citizen, minutes=60)
    await kit.inject(first)
    await kit.wait("PayoutAccrued", citizen_id=citizen)
    await kit.close_posting(posting)
    await kit.wait("BudgetReleased", posting_id=posting.posting_id, reason="posting_closed")
    await kit.set_budget(year, full_shift_won(RATE, 60), note="cut to what is committed")
    await kit.inject(
        kit.attendance(
            posting,
            citizen,
            minutes=240,
            revision=2,
            attendance_id=first.attendance_id,
            booking_id=first.booking_id,
            corrected_from=("attended", 60),
        )
    )
    await kit.wait("PayoutAccrued", count=2, citizen_id=citizen)
    budget = await kit.budget(year)
    assert budget["accrued_won"] == seat and budget["available_won"] == 0
    assert budget["unfunded_won"] == seat - full_shift_won(RATE, 60)
    raised = await kit.set_budget(year, full_shift_won(RATE, 60) + seat, note="supplementary")
    assert raised["unfunded_won"] == 0
    assert raised["available_won"] == full_shift_won(RATE, 60)

"""The posting saga on the running service: reserve, adjust, release, refuse, exhaust —
and under concurrency the reservations never exceed the budget."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import asyncpg
import pytest
from allowance import usecases
from allowance.domain import ledger
from allowance.domain.calendar import Period

from shared.db import create_pool, retry_conflicts
from shared.events import PostingSubmitted, PostingUpdated
from tests.integration.allowance.allowance_kit import Kit, Posting, full_shift_won, kst, new_id

pytestmark = pytest.mark.stack

RATE = 13_303  # the 2026 rate, in force for every later year until a new entry
SEAT_120 = full_shift_won(RATE, 120)  # 26,606


async def test_posting_saga_reserves_grows_shrinks_and_releases(kit: Kit) -> None:
    """Submit 3 seats × 120 min → capacity × floor(rate × minutes / 60) reserved; grow to 5
    (same reservation, revision 1); shrink to 2 (the difference released, revision 2);
    cancel → everything released, and the budget shows each step to the won."""
    year = await kit.fresh_year()
    await kit.set_budget(year, 1_000_000)
    posting = await kit.submit(kst(f"{year}-03-10T10:00"), 120, capacity=3)
    reserved = await kit.budget_answer(posting.posting_id)
    assert reserved.type == "BudgetReserved"
    assert reserved.data["amount_won"] == 3 * SEAT_120 == 79_818
    assert reserved.data["hourly_rate_won"] == RATE and reserved.data["fiscal_year"] == year
    budget = await kit.budget(year)
    assert (budget["reserved_won"], budget["available_won"]) == (79_818, 920_182)

    grown = await kit.update(posting, 1, capacity=5)
    answer = await kit.budget_answer(posting.posting_id, nth=2)
    assert answer.type == "BudgetReserved" and answer.data["amount_won"] == 5 * SEAT_120
    assert answer.data["revision"] == 1
    assert answer.data["reservation_id"] == reserved.data["reservation_id"]
    shrunk = await kit.update(grown, 2, capacity=2)
    answer = await kit.budget_answer(posting.posting_id, nth=3)
    assert answer.data["amount_won"] == 2 * SEAT_120 and answer.data["revision"] == 2
    released = await kit.wait(
        "BudgetReleased", posting_id=posting.posting_id, reason="posting_updated"
    )
    assert released[0].data["amount_won"] == 3 * SEAT_120
    assert (await kit.budget(year))["reserved_won"] == 2 * SEAT_120

    await kit.cancel(shrunk)
    done = await kit.wait(
        "BudgetReleased", posting_id=posting.posting_id, reason="posting_cancelled"
    )
    assert done[0].data["amount_won"] == 2 * SEAT_120
    budget = await kit.budget(year)
    assert (budget["reserved_won"], budget["available_won"]) == (0, 1_000_000)
    entries = await kit.entries_of(posting_id=posting.posting_id)
    kinds = sorted({(r["transaction_id"], r["kind"]) for r in entries})
    assert [k for _, k in kinds].count("reservation") == 2  # the submission and the growth
    assert [k for _, k in kinds].count("reservation_release") == 2  # the shrink and the cancel
    assert sum(r["amount_won"] for r in entries) == 0  # every leg names the posting


async def test_posting_saga_refuses_with_the_shortfall(kit: Kit) -> None:
    """Too little budget → BudgetRejected insufficient_budget with requested, available and
    shortfall; a year without budget → no_budget_for_year; an update the budget cannot fund
    → BudgetRejected for that revision, the reservation unchanged, and the registry's
    restoring update (old terms) is confirmed as an ordinary update."""
    year = await kit.fresh_year()
    await kit.set_budget(year, 50_000)
    big = await kit.submit(kst(f"{year}-05-02T09:00"), 120, capacity=2)
    refused = await kit.budget_answer(big.posting_id)
    assert refused.type == "BudgetRejected"
    assert refused.data == {
        "posting_id": big.posting_id,
        "reason": "insufficient_budget",
        "requested_won": 53_212,
        "available_won": 50_000,
        "shortfall_won": 3_212,
        "for_revision": 0,
    }
    unfunded_year = await kit.fresh_year()
    nobody = await kit.submit(kst(f"{unfunded_year}-05-02T09:00"), 60)
    assert (await kit.budget_answer(nobody.posting_id)).data["reason"] == "no_budget_for_year"

    small = await kit.submit(kst(f"{year}-05-03T09:00"), 120, capacity=1)
    assert (await kit.budget_answer(small.posting_id)).type == "BudgetReserved"
    await kit.update(small, 1, capacity=2)
    refused = await kit.budget_answer(small.posting_id, nth=2)
    assert refused.type == "BudgetRejected" and refused.data["for_revision"] == 1
    assert refused.data["requested_won"] == SEAT_120
    assert refused.data["shortfall_won"] == SEAT_120 - (50_000 - SEAT_120)
    await kit.update(small, 2, capacity=1)  # the registry reverts to the old terms
    restored = await kit.budget_answer(small.posting_id, nth=3)
    assert restored.type == "BudgetReserved" and restored.data["amount_won"] == SEAT_120
    assert restored.data["revision"] == 2
    assert (await kit.budget(year))["reserved_won"] == SEAT_120
    await kit.close_posting(small)
    await kit.wait("BudgetReleased", posting_id=small.posting_id, reason="posting_closed")


async def test_budget_exhausted_when_one_more_typical_shift_cannot_be_funded(kit: Kit) -> None:
    """A typical shift (180 min) costs 39,909 won. Available going from 46,788 to 20,182
    crosses that line: BudgetExhausted, once."""
    year = await kit.fresh_year()
    await kit.set_budget(year, 100_000)
    first = await kit.submit(kst(f"{year}-06-01T09:00"), 120, capacity=2)
    await kit.budget_answer(first.posting_id)
    second = await kit.submit(kst(f"{year}-06-02T09:00"), 120, capacity=1)
    await kit.budget_answer(second.posting_id)
    exhausted = await kit.wait("BudgetExhausted", fiscal_year=year)
    assert exhausted[0].data == {
        "posting_id": second.posting_id,
        "fiscal_year": year,
        "available_won": 100_000 - 3 * SEAT_120,
    }
    assert not kit.watcher.matching(
        lambda e: e.type == "BudgetExhausted" and e.data.get("posting_id") == first.posting_id
    )
    for posting in (first, second):
        await kit.cancel(posting)
        await kit.wait("BudgetReleased", posting_id=posting.posting_id)


async def test_a_burst_of_postings_never_reserves_more_than_the_budget(kit: Kit) -> None:
    """40 postings submitted at once against a budget for 15 of them: exactly 15 are
    reserved, 25 refused, and reserved + available = total."""
    year = await kit.fresh_year()
    await kit.set_budget(year, 15 * SEAT_120 + SEAT_120 // 2)
    postings = await asyncio.gather(
        *(kit.submit(kst(f"{year}-07-{1 + i % 28:02d}T09:00"), 120) for i in range(40))
    )
    answers = await asyncio.gather(*(kit.budget_answer(p.posting_id) for p in postings))
    assert sum(a.type == "BudgetReserved" for a in answers) == 15
    budget = await kit.budget(year)
    assert budget["reserved_won"] == 15 * SEAT_120 <= budget["total_won"]
    assert budget["available_won"] == SEAT_120 // 2


async def test_concurrent_reservations_in_postgres_never_exceed_the_budget(
    kit: Kit, stack_env: dict[str, str]
) -> None:
    """Thirty transactions on thirty connections (the service's own role) reserve at the
    same instant, as many service replicas would: exactly as many as the budget funds
    succeed; and a reservation forced past the available budget, bypassing the domain, is
    refused by Postgres itself."""
    year = await kit.fresh_year()
    await kit.set_budget(year, 7 * SEAT_120 + 1)
    pool = await create_pool(
        stack_env["ALLOWANCE_DATABASE_URL"], schema="allowance", size_min=30, size_max=30
    )
    start = asyncio.Event()

    async def reserve(i: int) -> None:
        event = PostingSubmitted(
            posting_id=new_id("pst"),
            facility_id="fac_concurrency",
            facility_name="동시성",
            facility_dong="수완동",
            title="concurrency",
            starts_at=kst(f"{year}-08-{1 + i % 28:02d}T09:00"),
            ends_at=kst(f"{year}-08-{1 + i % 28:02d}T11:00"),
            capacity=1,
            selection="first_come",
        )
        envelope = event.envelope(
            producer="allowance-tests", occurred_at=datetime.now().astimezone()
        )
        await start.wait()

        async def work() -> None:
            async with pool.acquire() as conn, conn.transaction():
                await usecases.reservations.on_posting_submitted(
                    usecases.Store(conn),
                    envelope,
                    event,
                    usecases.Deps(now=datetime.now().astimezone()),
                )

        await retry_conflicts(work, attempts_max=50)

    try:
        tasks = [asyncio.create_task(reserve(i)) for i in range(30)]
        await asyncio.sleep(0.2)
        start.set()
        await asyncio.gather(*tasks)
        budget = await kit.budget(year)
        assert budget["reserved_won"] == 7 * SEAT_120
        assert budget["available_won"] == 1
        assert budget["reserved_won"] + budget["available_won"] == budget["total_won"]
        async with pool.acquire() as conn:
            active = await conn.fetchval(
                "SELECT count(*) FROM reservations WHERE fiscal_year = $1 AND status = 'active'",
                year,
            )
            assert active == 7
            forced = ledger.reservation(year, Period(year, 8), new_id("pst"), 2, "forced")
            assert forced is not None
            with pytest.raises(asyncpg.CheckViolationError, match="never_negative"):
                async with conn.transaction():
                    await usecases.Store(conn).post(
                        forced,
                        source_event_id=uuid.uuid4(),
                        occurred_at=datetime.now().astimezone(),
                        posted_at=datetime.now().astimezone() + timedelta(0),
                    )
    finally:
        await pool.close()


async def test_a_shift_moved_into_another_fiscal_year_is_reserved_there(kit: Kit) -> None:
    """An update moving the shift from year Y to year Z releases everything held in Y and
    reserves the new terms in Z (BudgetReleased, then BudgetReserved for Z)."""
    first_year, second_year = await kit.fresh_year(), await kit.fresh_year()
    await kit.set_budget(first_year, 200_000)
    await kit.set_budget(second_year, 200_000)
    posting = await kit.submit(kst(f"{first_year}-12-31T20:00"), 120, capacity=2)
    assert (await kit.budget_answer(posting.posting_id)).type == "BudgetReserved"
    moved = Posting(
        posting.posting_id,
        posting.facility_id,
        kst(f"{second_year}-01-02T10:00"),
        kst(f"{second_year}-01-02T12:00"),
        2,
    )
    await kit.inject(
        PostingUpdated(
            **kit.terms(moved),
            revision=1,
            previous_capacity=2,
            previous_starts_at=posting.starts_at,
            previous_ends_at=posting.ends_at,
        )
    )
    answer = await kit.budget_answer(posting.posting_id, nth=2)
    assert answer.type == "BudgetReserved" and answer.data["fiscal_year"] == second_year
    released = await kit.wait(
        "BudgetReleased", posting_id=posting.posting_id, reason="posting_moved_fiscal_year"
    )
    assert released[0].data["amount_won"] == 2 * SEAT_120
    assert (await kit.budget(first_year))["reserved_won"] == 0
    assert (await kit.budget(second_year))["reserved_won"] == 2 * SEAT_120
    await kit.cancel(moved)
    await kit.wait("BudgetReleased", posting_id=posting.posting_id, reason="posting_cancelled")


async def test_a_rate_below_a_newly_entered_minimum_wage_refuses_postings(kit: Kit) -> None:
    """When the minimum wage of a year is entered above the rate in force (the law wins,
    with a warning), postings of that year are refused with rate_below_minimum_wage."""
    year = 8_999  # kept out of fresh_year()'s range: this test gives it a minimum wage
    current = (await kit.http.get("/v1/admin/minimum-wages", headers=kit.admin)).json()
    table = [m for m in current["minimum_wages"] if m["year"] != year]
    table.append({"year": year, "hourly_won": 99_999, "source": "allowance tests (fictional)"})
    put = await kit.http.put(
        "/v1/admin/minimum-wages", json={"minimum_wages": table}, headers=kit.admin
    )
    assert put.status_code == 200, put.text
    try:
        assert any(str(year) in w["message"] for w in put.json()["rate_warnings"])
        await kit.raise_budget(year, 100_000)
        posting = await kit.submit(kst(f"{year}-03-01T10:00"), 60)
        refused = await kit.budget_answer(posting.posting_id)
        assert refused.type == "BudgetRejected"
        assert refused.data["reason"] == "rate_below_minimum_wage"
    finally:
        # The fictional wage would refuse every later rate table whose last rate reaches
        # year 8999 (other suites set rates): the table is put back as it was.
        back = await kit.http.put(
            "/v1/admin/minimum-wages",
            json={"minimum_wages": current["minimum_wages"]},
            headers=kit.admin,
        )
        assert back.status_code == 200, back.text

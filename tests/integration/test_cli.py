"""The operator's CLI against the real stack: a dead letter is listed, replayed after the
cause is fixed, and comes through; the other commands read and change what they say."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from shared import topics
from tests.integration.allowance.allowance_kit import Kit, Posting, check_trial_balance, kst, new_id

pytestmark = pytest.mark.stack


def gwangsan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=os.environ.copy(),
    )


@pytest.fixture
async def kit(stack_env: dict[str, str]) -> AsyncIterator[Kit]:
    instance = Kit(stack_env)
    await instance.start()
    try:
        yield instance
    finally:
        await check_trial_balance(instance)
        await instance.stop()


async def _until(check, timeout_s: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.3)


async def test_dead_letter_is_listed_replayed_after_the_fix_and_paid(kit: Kit) -> None:
    """Attendance arrives for a posting allowance has never funded: after its retries it is
    dead-lettered (never paid from a guess) and `gwangsan dlq list` shows it with its error.
    The fix — the posting's submission reaching allowance — then `gwangsan dlq replay` brings
    it through: the citizen is paid exactly once, the DLQ is empty of it, the ledger balances
    and the invariant checker is green."""
    year = await kit.fresh_year()
    await kit.set_budget(year, 10_000_000)
    starts = kst(f"{year}-05-11T10:00:00")
    posting = Posting(new_id("pst"), new_id("fac"), starts, starts + timedelta(minutes=120), 1)
    citizen = new_id("ctz")
    attendance = kit.attendance(posting, citizen)
    await kit.inject(attendance)

    async def dead_lettered() -> bool:
        listed = gwangsan("dlq", "list", topics.REGISTRY_ATTENDANCE, "--limit", "1000")
        return attendance.attendance_id in listed.stdout or posting.posting_id in listed.stdout

    await _until(dead_lettered, timeout_s=60)
    listed = gwangsan("dlq", "list", topics.REGISTRY_ATTENDANCE, "--limit", "1000")
    assert "no budget reservation" in listed.stdout

    refused = gwangsan("dlq", "replay", topics.REGISTRY_ATTENDANCE)  # no terminal, no --yes
    assert refused.returncode == 2 and "--yes" in refused.stderr

    await kit.inject(
        __import__("shared.events", fromlist=["PostingSubmitted"]).PostingSubmitted(
            **kit.terms(posting)
        )
    )
    reserved = await kit.budget_answer(posting.posting_id)
    assert reserved.type == "BudgetReserved"

    replayed = gwangsan("dlq", "replay", topics.REGISTRY_ATTENDANCE, "--yes")
    assert replayed.returncode == 0, replayed.stderr
    assert "republished" in replayed.stdout
    paid = await kit.wait("PayoutAccrued", attendance_id=attendance.attendance_id)
    assert len(paid) == 1 and paid[0].data["citizen_id"] == citizen

    again = gwangsan("dlq", "list", topics.REGISTRY_ATTENDANCE, "--limit", "1000")
    assert attendance.attendance_id not in again.stdout
    entries = await kit.entries_of(posting_id=posting.posting_id)
    assert entries, "the replayed attendance posted to the ledger"

    report = gwangsan(
        "invariants", "--posting", posting.posting_id, "--citizen", citizen, "--settle", "10"
    )
    assert report.returncode == 0, report.stdout + report.stderr


async def test_budget_and_month_close_commands_say_what_they_did(kit: Kit) -> None:
    """`gwangsan budget` prints the finance figures; `gwangsan month close` refuses without
    confirmation and closes with --yes (idempotent: twice gives the same answer)."""
    year = await kit.fresh_year()
    await kit.set_budget(year, 5_000_000)
    shown = gwangsan("budget", "--fiscal-year", str(year))
    assert shown.returncode == 0 and "5,000,000 won" in shown.stdout
    period = "2020-01"
    refused = gwangsan("month", "close", period)
    assert refused.returncode == 2
    first = gwangsan("month", "close", period, "--yes")
    second = gwangsan("month", "close", period, "--yes")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "is closed" in first.stdout and first.stdout == second.stdout

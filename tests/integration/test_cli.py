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


async def test_a_triaged_dead_letter_is_discarded_on_record_and_stops_failing_invariants(
    kit: Kit, stack_env: dict[str, str]
) -> None:
    """A dead letter nobody will replay (here: attendance for a posting that was never
    funded) keeps the invariant checker red until an operator discards it with a reason:
    `gwangsan dlq discard <id> --reason` records who, when and why (append-only), the
    letter leaves `dlq list`, a replay steps over it, and the checker counts it explained.
    A malformed id, an id of no waiting letter and a blank reason are refused, nothing
    written."""
    import asyncpg

    year = await kit.fresh_year()
    await kit.set_budget(year, 1_000_000)
    starts = kst(f"{year}-06-08T10:00:00")
    posting = Posting(new_id("pst"), new_id("fac"), starts, starts + timedelta(minutes=60), 1)
    citizen = new_id("ctz")
    attendance = kit.attendance(posting, citizen)
    await kit.inject(attendance)

    def waiting_line() -> str | None:
        listed = gwangsan("dlq", "list", topics.REGISTRY_ATTENDANCE, "--limit", "10000")
        return next(
            (line for line in listed.stdout.splitlines() if posting.posting_id in line), None
        )

    async def dead_lettered() -> bool:
        return waiting_line() is not None

    await _until(dead_lettered, timeout_s=60)
    letter_id = (waiting_line() or "").split()[0]
    assert letter_id.startswith(topics.REGISTRY_ATTENDANCE + ".dlq:")
    red = gwangsan("invariants", "--posting", posting.posting_id, "--citizen", citizen)
    assert red.returncode != 0 and "not replayed and unexplained" in red.stdout

    for bad in (
        ("dlq", "discard", "not-an-id", "--reason", "x", "--yes"),
        (
            "dlq",
            "discard",
            topics.REGISTRY_ATTENDANCE + ".dlq:0:999999999",
            "--reason",
            "x",
            "--yes",
        ),
        ("dlq", "discard", letter_id, "--reason", "   ", "--yes"),
    ):
        refused = gwangsan(*bad)
        assert refused.returncode == 2, refused.stdout + refused.stderr
    assert waiting_line() is not None

    done = gwangsan(
        "dlq",
        "discard",
        letter_id,
        "--reason",
        "test posting, never funded",
        "--by",
        "kim",
        "--yes",
    )
    assert done.returncode == 0 and "discarded" in done.stdout, done.stdout + done.stderr
    assert waiting_line() is None
    again = gwangsan("dlq", "discard", letter_id, "--reason", "twice", "--yes")
    assert again.returncode == 0 and "discarded before" in again.stdout  # the first stands

    conn = await asyncpg.connect(stack_env["DATABASE_URL"])
    try:
        row = await conn.fetchrow(
            "SELECT reason, discarded_by FROM allowance.dead_letter_discards"
            " WHERE dlq_topic || ':' || dlq_partition || ':' || dlq_offset = $1",
            letter_id,
        )
        assert row is not None and tuple(row) == ("test posting, never funded", "kim")
        with pytest.raises(asyncpg.RaiseError):
            await conn.execute("DELETE FROM allowance.dead_letter_discards")
    finally:
        await conn.close()

    green = gwangsan("invariants", "--posting", posting.posting_id, "--citizen", citizen)
    assert green.returncode == 0, green.stdout + green.stderr

"""The operator's CLI against the real stack: a dead letter is listed, replayed after the
cause is fixed, and comes through; the other commands read and change what they say."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

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


def _field(output: str, name: str) -> str:
    """The value of the last `  name   value` line in a command's output (what it did,
    after what it was about to do)."""
    for line in reversed(output.splitlines()):
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0] == name:
            return parts[1].strip()
    raise AssertionError(f"no {name} in:\n{output}")


async def test_facility_commands_cover_the_admin_actions(stack_env: dict[str, str]) -> None:
    """`gwangsan facility create / list / edit / show / rotate-key --overlap / suspend /
    resume`: each changing command refuses without --yes (and changes nothing), then does
    what it says; the new key works, the old one works during the overlap; show lists the
    audited changes."""
    import httpx

    registry = stack_env["REGISTRY_URL"]

    def works(key: str) -> bool:
        answer = httpx.get(f"{registry}/v1/postings", headers={"Authorization": f"Bearer {key}"})
        return answer.status_code == 200

    create = ("facility", "create", "--name", "CLI 작은도서관", "--kind", "small_library")
    create += ("--dong", "수완동", "--phone", "062-111-2222")
    assert gwangsan(*create).returncode == 2  # no terminal, no --yes
    made = gwangsan(*create, "--yes")
    assert made.returncode == 0, made.stderr
    facility_id = _field(made.stdout, "id")
    first_key = made.stdout.strip().splitlines()[-1]
    assert works(first_key)
    listed = gwangsan("facility", "list")
    assert listed.returncode == 0 and facility_id in listed.stdout

    blank = gwangsan("facility", "edit", facility_id, "--name", "   ", "--yes")
    assert blank.returncode == 2 and "name" in blank.stderr
    edited = gwangsan(
        "facility", "edit", facility_id, "--name", "CLI 도서관", "--dong", "첨단1동",
        "--clear-phone", "--yes",
    )  # fmt: skip
    assert edited.returncode == 0, edited.stderr
    assert _field(edited.stdout, "name") == "CLI 도서관"
    assert _field(edited.stdout, "contact_phone") == "None"

    rotated = gwangsan("facility", "rotate-key", facility_id, "--overlap", "1h", "--yes")
    assert rotated.returncode == 0, rotated.stderr
    second_key = next(line for line in rotated.stdout.splitlines() if line.startswith("fk_"))
    assert works(first_key) and works(second_key)  # inside the overlap

    assert gwangsan("facility", "suspend", facility_id).returncode == 2
    suspended = gwangsan("facility", "suspend", facility_id, "--yes")
    assert suspended.returncode == 0 and "suspended" in suspended.stdout, suspended.stderr
    assert not works(first_key) and not works(second_key)
    resumed = gwangsan("facility", "resume", facility_id, "--yes")
    assert resumed.returncode == 0, resumed.stderr
    third_key = resumed.stdout.strip().splitlines()[-1]
    assert works(third_key) and not works(second_key)
    again = gwangsan("facility", "resume", facility_id, "--yes")
    assert again.returncode == 2 and "not suspended" in again.stderr

    shown = gwangsan("facility", "show", facility_id)
    assert shown.returncode == 0, shown.stderr
    for action in ("registered", "edited", "key_rotated", "suspended", "resumed"):
        assert action in shown.stdout, shown.stdout


async def test_policy_budget_clock_and_payout_file_commands(kit: Kit, tmp_path: Path) -> None:
    """`gwangsan rates|caps show`, `caps set` (keeping the other years), `budget set` (asks
    first; the total changes; a blank note is refused), `clock show|set --advance`, and
    `month payout-file` of a closed month, as a summary and as a private CSV file."""
    year = await kit.fresh_year()
    for command in (("rates", "show"), ("caps", "show"), ("clock", "show")):
        shown = gwangsan(*command)
        assert shown.returncode == 0, (command, shown.stderr)

    caps_before = gwangsan("caps", "show").stdout
    cap = ("caps", "set", "--year", str(year), "--weekly-hours", "13", "--monthly-won")
    cap += ("583444", "--source", "CLI test", "--note", "CLI test")
    assert gwangsan(*cap).returncode == 2
    caps_set = gwangsan(*cap, "--yes")
    assert caps_set.returncode == 0, caps_set.stderr
    assert str(year) in caps_set.stdout and "583444" in caps_set.stdout
    for line in caps_before.splitlines()[2:]:
        if line.split() and line.split()[0].isdigit() and line.split()[0] != str(year):
            assert line.split()[0] in caps_set.stdout  # other years kept

    budget = ("budget", "set", "--fiscal-year", str(year), "--amount-won", "7000000")
    assert gwangsan(*budget, "--note", "CLI test").returncode == 2
    assert gwangsan(*budget, "--note", "   ", "--yes").returncode == 2
    done = gwangsan(*budget, "--note", "CLI test", "--yes")
    assert done.returncode == 0 and "7,000,000 won" in done.stdout, done.stderr
    shown = gwangsan("budget", "show", "--fiscal-year", str(year))
    assert shown.returncode == 0 and "7,000,000 won" in shown.stdout

    now = gwangsan("clock", "show").stdout.strip()
    moved = gwangsan("clock", "set", "--advance", "1m", "--yes")
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout.strip().split()[-1] > now

    period = "2020-02"
    assert gwangsan("month", "close", period, "--yes").returncode == 0
    summary = gwangsan("month", "payout-file", period, "--summary")
    assert summary.returncode == 0 and f"{period}:" in summary.stdout, summary.stderr
    target = tmp_path / "payout.csv"
    saved = gwangsan("month", "payout-file", period, "--output", str(target))
    assert saved.returncode == 0, saved.stderr
    assert target.exists() and oct(target.stat().st_mode & 0o777) == "0o600"

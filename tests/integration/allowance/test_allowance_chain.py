"""Tamper evidence on the real stack: ledger transactions and payee access rows written
through the API are hash-chained; `gwangsan ledger verify` / `gwangsan audit verify` say
"verified", and name exactly the row a superuser altered or deleted behind the append-only
triggers (switched off for the tampering transaction only: session_replication_role)."""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from shared import migrations
from tests.integration.allowance.allowance_kit import Kit, new_id
from tools.cli import verify_chain

pytestmark = pytest.mark.stack

MIGRATIONS = Path(__file__).resolve().parents[3] / "services/allowance/allowance/migrations"


def gwangsan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=os.environ.copy(),
    )


def _verified(args: tuple[str, ...]) -> int:
    done = gwangsan(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(r"verified \((\d+) rows\)", done.stdout)
    assert found, done.stdout
    return int(found.group(1))


def _refused(args: tuple[str, ...], row_id: int) -> str:
    done = gwangsan(*args)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"first altered row is row id {row_id}:" in done.stdout, done.stdout
    return done.stdout


async def _tamper(conn: asyncpg.Connection, sql: str, *args: Any) -> None:
    """Run `sql` as the superuser with the append-only triggers off, in its own transaction."""
    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(sql, *args)


async def _write_some(kit: Kit) -> tuple[int, list[str]]:
    """Two budget changes (ledger transactions) and three payee writes (access rows)."""
    year = random.randint(5000, 8999)
    await kit.set_budget(year, 1_000_000)
    await kit.set_budget(year, 1_500_000)
    citizens = [new_id("ctz") for _ in range(3)]
    await kit.know_citizen(*citizens)
    for c in citizens:
        put = await kit.http.put(
            f"/v1/payees/{c}",
            json={"bank_code": "004", "account_number": "123-45-678901", "account_holder": "김"},
            headers={**kit.finance, "X-Staff-Id": "fin-claimed"},
        )
        assert put.status_code == 200, put.text
    return year, citizens


async def test_chains_verify_and_name_an_altered_or_deleted_row(kit: Kit) -> None:
    year, citizens = await _write_some(kit)
    ledger_rows = _verified(("ledger", "verify"))
    audit_rows = _verified(("audit", "verify"))
    assert ledger_rows >= 2 and audit_rows >= 3

    ids = [
        r["id"]
        for r in await kit.pool.fetch(
            "SELECT id FROM ledger_transactions WHERE fiscal_year = $1 ORDER BY chain_seq", year
        )
    ]
    assert len(ids) == 2
    first, second = ids
    async with kit.pool.acquire() as conn:
        # an altered memo, committed: the CLI names that transaction; restored: green again
        memo = await conn.fetchval("SELECT memo FROM ledger_transactions WHERE id = $1", first)
        try:
            await _tamper(
                conn, "UPDATE ledger_transactions SET memo = 'tampered' WHERE id = $1", first
            )
            said = _refused(("ledger", "verify"), first)
            assert "content no longer matches" in said
        finally:
            await _tamper(
                conn, "UPDATE ledger_transactions SET memo = $2 WHERE id = $1", first, memo
            )
        assert _verified(("ledger", "verify")) == ledger_rows

        # an entry's amount, and deletions, inside a transaction rolled back afterwards
        for sql, named, why in (
            (
                "UPDATE ledger_entries SET amount_won = amount_won + 1"
                " WHERE id = (SELECT min(id) FROM ledger_entries WHERE transaction_id = $1)",
                first,
                "content no longer matches",
            ),
            ("DELETE FROM ledger_transactions WHERE id = $1", second, "deleted"),  # after first
            ("DELETE FROM ledger_entries WHERE transaction_id = $1", first, "content"),
        ):
            tx = conn.transaction()
            await tx.start()
            try:
                await conn.execute("SET LOCAL session_replication_role = replica")
                await conn.execute(sql, first)
                verdict = await verify_chain(conn, "ledger")
            finally:
                await tx.rollback()
            assert not verdict.ok
            assert verdict.row_id == named, verdict.render("ledger")
            assert why in verdict.problem
        async with conn.transaction():
            assert (await verify_chain(conn, "ledger")).ok

        # the access log: a row deleted (committed) is found at the next row; restored, green
        rows = await conn.fetch(
            "SELECT * FROM payee_access_log WHERE citizen_id = ANY($1::text[]) ORDER BY chain_seq",
            citizens,
        )
        assert len(rows) == 3
        gone = dict(rows[1])
        try:
            await _tamper(conn, "DELETE FROM payee_access_log WHERE id = $1", gone["id"])
            said = _refused(("audit", "verify"), rows[2]["id"])
            assert "deleted" in said
        finally:
            columns = list(gone)
            await _tamper(
                conn,
                f"INSERT INTO payee_access_log ({', '.join(columns)}) OVERRIDING SYSTEM VALUE"
                f" VALUES ({', '.join(f'${i + 1}' for i in range(len(columns)))})",
                *gone.values(),
            )
        assert _verified(("audit", "verify")) == audit_rows
        try:
            await _tamper(
                conn, "UPDATE payee_access_log SET purpose = 'other' WHERE id = $1", gone["id"]
            )
            _refused(("audit", "verify"), gone["id"])
        finally:
            await _tamper(
                conn,
                "UPDATE payee_access_log SET purpose = $2 WHERE id = $1",
                gone["id"],
                gone["purpose"],
            )
        assert _verified(("audit", "verify")) == audit_rows


async def test_the_access_log_records_the_authenticated_who(kit: Kit) -> None:
    """ "Who" is the credential's role, the request id and the client address; a stated
    `X-Staff-Id` is kept only in stated_staff_id (self-declared), never as the actor."""
    _, citizens = await _write_some(kit)
    row = await kit.pool.fetchrow(
        "SELECT actor_role, actor_staff_id, stated_staff_id, request_id, client_address"
        " FROM payee_access_log WHERE citizen_id = $1",
        citizens[0],
    )
    assert row is not None
    assert row["actor_role"] == "finance"
    assert row["actor_staff_id"] is None
    assert row["stated_staff_id"] == "fin-claimed"
    assert row["request_id"]
    assert row["client_address"] == "127.0.0.1"
    comment = await kit.pool.fetchval(
        "SELECT col_description('payee_access_log'::regclass, attnum) FROM pg_attribute"
        " WHERE attrelid = 'payee_access_log'::regclass AND attname = 'stated_staff_id'"
    )
    assert "self-declared" in comment


async def test_the_migration_chains_existing_rows_as_the_verifier_recomputes(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    """Rows written before migration 0004 (Korean text, NULLs, microseconds, legs whose
    byte order differs from any locale's) are chained by its SQL in id order, and the
    Python verifier recomputes exactly those hashes: the two serializations agree."""
    source = MIGRATIONS
    before = tmp_path / "migrations"
    before.mkdir()
    for path in sorted(source.glob("*.sql")):
        if path.name < "0004":
            shutil.copy(path, before / path.name)
    schema = f"chain_mig_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(stack_env["DATABASE_URL"])
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await migrations.apply(conn, schema, before)
        await conn.execute(f'SET search_path TO "{schema}"')
        at = datetime(2031, 3, 10, 1, 2, 3, 456789, tzinfo=UTC)
        for n in range(3):
            src = uuid.uuid4()
            async with conn.transaction():
                txn = await conn.fetchval(
                    "INSERT INTO ledger_transactions (kind, fiscal_year, period,"
                    " source_event_id, occurred_at, posted_at, memo) VALUES"
                    " ('budget_appropriated', 2031, '2031-03', $1, $2, $3, $4) RETURNING id",
                    src,
                    at,
                    at + timedelta(microseconds=n),
                    f"예산 배정 {n} — ünïcode",
                )
                for leg, account, won in (
                    ("가:available", "budget_available", -700),
                    ("Z:appropriation", "budget_appropriation", 1000),
                    ("a:available", "budget_available", -300),
                ):
                    await conn.execute(
                        "INSERT INTO ledger_entries (transaction_id, account, amount_won, leg,"
                        " source_event_id) VALUES ($1, $2, $3, $4, $5)",
                        txn,
                        account,
                        won,
                        leg,
                        src,
                    )
        for staff_id, request_id in (("fin-1", "req-1"), (None, None)):
            await conn.execute(
                "INSERT INTO payee_access_log (accessed_at, actor_role, actor_staff_id,"
                " request_id, citizen_id, action, purpose, key_id) VALUES"
                " ($1, 'finance', $2, $3, 'C-1', 'decrypt', '지급 파일 2031-03', 'k1')",
                at,
                staff_id,
                request_id,
            )
        await migrations.apply(conn, schema, source)
        await conn.execute(f'SET search_path TO "{schema}"')
        async with conn.transaction():
            ledger = await verify_chain(conn, "ledger")
            audit = await verify_chain(conn, "payee_access")
        assert ledger.ok and ledger.rows == 3, ledger.render("ledger")
        assert audit.ok and audit.rows == 2, audit.render("audit")
        moved = await conn.fetch(
            "SELECT stated_staff_id, actor_staff_id FROM payee_access_log ORDER BY id"
        )
        assert [(r["stated_staff_id"], r["actor_staff_id"]) for r in moved] == [
            ("fin-1", None),
            (None, None),
        ]
    finally:
        await conn.execute("RESET search_path")
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


async def test_concurrent_writers_do_not_fork_the_chain(kit: Kit) -> None:
    """Budget changes of different fiscal years share no row but the chain head: sent all
    at once, they still form one unbroken chain (no two rows with the same predecessor)."""
    years = random.sample(range(5000, 8999), 8)
    await asyncio.gather(*(kit.set_budget(y, 1_000 + i) for i, y in enumerate(years)))
    forks = await kit.pool.fetchval(
        "SELECT count(*) FROM (SELECT prev_hash FROM ledger_transactions"
        " GROUP BY prev_hash HAVING count(*) > 1) f"
    )
    assert forks == 0
    _verified(("ledger", "verify"))

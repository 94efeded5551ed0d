"""Postgres itself refuses what the ledger must never do: edit or delete an entry, post an
unbalanced transaction, add to an old transaction, post an (event, leg) twice, or edit the
balances the entries maintain — as the service's own role and even as the superuser."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from allowance.domain.calendar import Period
from allowance.domain.ledger import Account, LedgerTransaction, Leg, TxnKind
from allowance.store import Store

from tests.integration.allowance.allowance_kit import Kit

pytestmark = pytest.mark.stack


@pytest.fixture
async def service_conn(stack_env: dict[str, str]) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(
        stack_env["ALLOWANCE_DATABASE_URL"], server_settings={"search_path": "allowance"}
    )
    try:
        yield conn
    finally:
        await conn.close()


async def _header(conn: asyncpg.Connection, source: uuid.UUID) -> int:
    txn_id: int = await conn.fetchval(
        "INSERT INTO ledger_transactions (kind, fiscal_year, period, source_event_id,"
        " occurred_at, posted_at, memo) VALUES ('budget_appropriated', 2999, '2999-01', $1,"
        " $2, $2, 'test') RETURNING id",
        source,
        datetime.now(UTC),
    )
    return txn_id


async def _post(conn: asyncpg.Connection, source: uuid.UUID, won: int) -> int:
    """A committed test transaction (legs "a", "b"), written by the store so that it joins
    the ledger's hash chain (`gwangsan ledger verify` stays green after this suite)."""
    now = datetime.now(UTC)
    legs = (
        Leg("a", Account.BUDGET_APPROPRIATION, won),
        Leg("b", Account.BUDGET_AVAILABLE, -won),
    )
    kind = TxnKind.BUDGET_APPROPRIATED if won > 0 else TxnKind.BUDGET_CUT
    txn = LedgerTransaction(kind, 2999, Period(2999, 1), "test", legs)
    return await Store(conn).post(txn, source_event_id=source, occurred_at=now, posted_at=now)


async def _entry(
    conn: asyncpg.Connection, txn_id: int, source: uuid.UUID, account: str, won: int, leg: str
) -> None:
    await conn.execute(
        "INSERT INTO ledger_entries (transaction_id, account, amount_won, leg, source_event_id)"
        " VALUES ($1, $2, $3, $4, $5)",
        txn_id,
        account,
        won,
        leg,
        source,
    )


async def test_update_delete_and_truncate_of_entries_are_refused(
    kit: Kit, service_conn: asyncpg.Connection
) -> None:
    """UPDATE, DELETE and TRUNCATE on entries and transactions fail, for the service's role
    and for the superuser alike."""
    entry_id = await service_conn.fetchval("SELECT min(id) FROM ledger_entries")
    assert entry_id is not None
    for conn in (service_conn, kit.pool):
        for sql in (
            "UPDATE ledger_entries SET amount_won = amount_won + 1 WHERE id = $1",
            "DELETE FROM ledger_entries WHERE id = $1",
            "UPDATE ledger_transactions SET memo = 'edited' WHERE id ="
            " (SELECT transaction_id FROM ledger_entries WHERE id = $1)",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(sql, entry_id)
        for table in ("ledger_entries", "ledger_transactions", "payout_lines", "payee_access_log"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(f"TRUNCATE {table} CASCADE")


async def test_an_unbalanced_transaction_is_refused_at_commit(
    service_conn: asyncpg.Connection,
) -> None:
    """Entries summing to one won are refused when the transaction commits; so is a
    transaction with a single entry; nothing of either is left behind."""
    source = uuid.uuid4()
    with pytest.raises(asyncpg.CheckViolationError, match="does not balance"):
        async with service_conn.transaction():
            txn_id = await _header(service_conn, source)
            await _entry(service_conn, txn_id, source, "budget_appropriation", 1_000, "a")
            await _entry(service_conn, txn_id, source, "budget_available", -999, "b")
    lonely = uuid.uuid4()
    with pytest.raises(asyncpg.CheckViolationError):
        async with service_conn.transaction():
            await _header(service_conn, lonely)
    found = await service_conn.fetchval(
        "SELECT count(*) FROM ledger_transactions WHERE source_event_id = ANY($1::uuid[])",
        [source, lonely],
    )
    assert found == 0


async def test_an_event_leg_posts_once_and_old_transactions_stay_closed(
    service_conn: asyncpg.Connection,
) -> None:
    """A second entry with the same (event, leg) is refused; balanced entries added later
    to a committed transaction are refused too."""
    source = uuid.uuid4()
    async with service_conn.transaction():  # committed: written chained, as the store does
        txn_id = await _post(service_conn, source, 5)
    with pytest.raises(asyncpg.UniqueViolationError):
        async with service_conn.transaction():
            other = await _header(service_conn, source)
            await _entry(service_conn, other, source, "budget_appropriation", 5, "a")
            await _entry(service_conn, other, source, "budget_available", -5, "c")
    with pytest.raises(asyncpg.CheckViolationError, match="another database transaction"):
        async with service_conn.transaction():
            await _entry(service_conn, txn_id, source, "budget_appropriation", 7, "late-a")
            await _entry(service_conn, txn_id, source, "budget_available", -7, "late-b")
    # undo the test's appropriation the only way the ledger allows: a reversing transaction
    undo = uuid.uuid4()
    async with service_conn.transaction():
        await _post(service_conn, undo, -5)


async def test_balances_can_only_come_from_entries(service_conn: asyncpg.Connection) -> None:
    """The maintained balances cannot be written directly."""
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="maintained by the ledger"):
        await service_conn.execute(
            "UPDATE account_balances SET balance_won = 0 WHERE account = 'budget_available'"
        )
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="maintained by the ledger"):
        await service_conn.execute(
            "INSERT INTO account_balances VALUES ('budget_available', 2999, '', 'x', -1)"
        )

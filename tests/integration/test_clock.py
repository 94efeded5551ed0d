"""The shared clock's one SQL statement on the real Postgres: it never moves backwards, not
even on the very first set (decision 0006). Run inside a rolled-back transaction, so the
running services' clock is untouched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from shared.clock import _SET_SQL

pytestmark = pytest.mark.stack


async def test_the_first_set_cannot_go_back_from_real_time_and_later_ones_not_from_shared(
    admin_dsn: str,
) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute("DELETE FROM clock.shared_clock")
            real_now = datetime.now(UTC)
            assert await conn.fetchrow(_SET_SQL, real_now - timedelta(days=1)) is None
            assert await conn.fetchval("SELECT count(*) FROM clock.shared_clock") == 0
            ahead = real_now + timedelta(days=30)
            row = await conn.fetchrow(_SET_SQL, ahead)
            assert row is not None and row["now_at"] == ahead
            # Between real time and the shared time: backwards from the shared clock.
            assert await conn.fetchrow(_SET_SQL, real_now + timedelta(days=1)) is None
            assert await conn.fetchrow(_SET_SQL, ahead + timedelta(hours=1)) is not None
        finally:
            await tx.rollback()
    finally:
        await conn.close()

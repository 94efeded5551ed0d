"""Citizen data retention: a citizen idle for the retention period loses the profile the
partner sent (dong, 동네 인증 time, adult_from, child-safety flag). PIPA art. 21 asks that
personal information no longer needed is destroyed without delay; the eligibility rules
need the profile only while the citizen applies or holds a shift. The pseudonymous row
(`ctz_…`, the partner's user id, the masked display) stays: bookings, strikes and
suspensions name it."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from matcher import store
from shared.db import Pool

log = logging.getLogger(__name__)


async def clear_idle_profiles(
    pool: Pool, now: datetime, retention: timedelta, batch_size_max: int
) -> int:
    """One pass, one transaction: clear up to `batch_size_max` idle citizens' profiles."""
    async with pool.acquire() as conn, conn.transaction():
        cleared = await store.clear_idle_profiles(conn, now - retention, now, batch_size_max)
    if cleared:
        log.info("cleared the profile of %d citizen(s) idle for %s", len(cleared), retention)
    return len(cleared)

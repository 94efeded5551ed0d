"""The hourly rate table: the allowance owns it and announces each version as RatesChanged
(allowance.policy.v1); the registry holds a copy in `rates` to price a shift before it is
posted (decision 0011). It has no rate of its own."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import asyncpg

from registry import store
from registry.domain.rates import adopts
from shared.events import Envelope, RatesChanged
from shared.money import RateEntry

log = logging.getLogger(__name__)


class RatesStore(Protocol):
    """What adopting a table needs of the store (the `store` module is one; so is a test's
    fake: see `usecases.saga` for why a module satisfies it)."""

    async def lock_rates(self, conn: asyncpg.Connection) -> None: ...

    async def rates(self, conn: asyncpg.Connection) -> store.RatesRow: ...

    async def replace_rates(
        self,
        conn: asyncpg.Connection,
        rates_version: int,
        entries: Sequence[RateEntry],
        now: datetime,
    ) -> None: ...


async def on_rates_changed(
    conn: asyncpg.Connection,
    envelope: Envelope,
    event: RatesChanged,
    *,
    now: datetime,
    db: RatesStore = store,
) -> bool:
    """Hold the rate table `event` announces if it is newer than the one held; True if it
    was adopted. An older version (a replay, a late duplicate) changes nothing; postings
    already priced by the allowance keep their reservation whatever the table does."""
    await db.lock_rates(conn)
    held = await db.rates(conn)
    if not adopts(held.rates_version, event.rates_version):
        log.info(
            "rate table version %d is not newer than %s; ignored",
            event.rates_version,
            held.rates_version,
        )
        return False
    entries = [RateEntry(r.effective_from, r.hourly_rate_won, r.source) for r in event.rates]
    await db.replace_rates(conn, event.rates_version, entries, now)
    log.info("rate table of version %d adopted", event.rates_version)
    return True

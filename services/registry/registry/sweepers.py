"""The registry's timers, run periodically on the shared clock.

- close: an open posting whose attendance window has passed becomes `closed`
  (PostingClosed), so allowance releases what was not paid.
- stale: postings still `pending_budget` after the configured time are reported — a gauge
  and a warning line each time — and stay visible as `pending_budget` (no silent limbo).
- purge: Idempotency-Key answers older than the retention are dropped.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from prometheus_client import Gauge

from registry import store
from registry.handlers import PRODUCER
from registry.settings import Context, RegistrySettings
from shared import outbox
from shared.db import retry_conflicts
from shared.events import PostingClosed
from shared.service import SweeperSpec

log = logging.getLogger(__name__)

PENDING_BUDGET_STALE = Gauge(
    "gwangsan_registry_postings_pending_budget_stale",
    "Postings waiting for a budget answer longer than the configured time",
)
POSTINGS_CLOSED = Gauge(
    "gwangsan_registry_postings_closed_last_sweep",
    "Postings closed by the last run of the closing sweeper",
)


def _settings(ctx: Context) -> RegistrySettings:
    settings = ctx.settings
    assert isinstance(settings, RegistrySettings)
    return settings


async def close_due_postings(ctx: Context) -> int:
    """Close every open posting whose attendance window has passed, a batch at a time."""
    settings = _settings(ctx)
    window = timedelta(hours=settings.attendance_window_hours)
    closed = 0
    while True:

        async def batch() -> int:
            now = ctx.now()
            async with ctx.pool.acquire() as conn, conn.transaction():
                rows = await store.postings_due_for_close(
                    conn, ended_before=now - window, limit=settings.posting_close_batch_size_max
                )
                for row in rows:
                    await store.close_posting(conn, row["id"], now)
                    await outbox.add(
                        conn,
                        PostingClosed(
                            posting_id=row["id"], facility_id=row["facility_id"], closed_at=now
                        ),
                        producer=PRODUCER,
                        occurred_at=now,
                    )
                return len(rows)

        count = await retry_conflicts(batch)
        closed += count
        if count < settings.posting_close_batch_size_max:
            break
    if closed:
        log.info("postings closed", extra={"count": closed})
    POSTINGS_CLOSED.set(closed)
    return closed


async def report_stale_pending(ctx: Context) -> int:
    """Count postings with no budget answer for too long; warn about them every time."""
    settings = _settings(ctx)
    created_before = ctx.now() - timedelta(seconds=settings.posting_budget_answer_stale_after_s)
    async with ctx.pool.acquire() as conn:
        count, ids = await store.stale_pending(
            conn, created_before=created_before, ids_max=settings.posting_stale_ids_logged_max
        )
    PENDING_BUDGET_STALE.set(count)
    if count:
        log.warning(
            "postings waiting for a budget answer for longer than %ss",
            settings.posting_budget_answer_stale_after_s,
            extra={"count": count, "posting_ids": ids},
        )
    return count


async def purge_idempotency_keys(ctx: Context) -> int:
    settings = _settings(ctx)
    async with ctx.pool.acquire() as conn:
        purged = await store.purge_idempotency(
            conn,
            timedelta(days=settings.idempotency_retention_days),
            settings.idempotency_purge_batch_size_max,
        )
    if purged:
        log.info("idempotency keys purged", extra={"count": purged})
    return purged


def sweepers(settings: RegistrySettings) -> list[SweeperSpec]:
    async def close(ctx: Context) -> None:
        await close_due_postings(ctx)

    async def stale(ctx: Context) -> None:
        await report_stale_pending(ctx)

    async def purge(ctx: Context) -> None:
        await purge_idempotency_keys(ctx)

    return [
        SweeperSpec("close-postings", close, settings.posting_close_sweep_interval_ms),
        SweeperSpec("stale-pending-budget", stale, settings.posting_stale_sweep_interval_ms),
        SweeperSpec("purge-idempotency-keys", purge, settings.idempotency_purge_interval_ms),
    ]

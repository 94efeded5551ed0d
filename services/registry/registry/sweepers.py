"""The registry's timers, run periodically on the shared clock; each calls a use case or a
view and reports.

- close: an open posting whose attendance window has passed becomes `closed`
  (PostingClosed), so allowance releases what was not paid.
- stale: postings still `pending_budget` after the configured time are reported — a gauge
  and a warning line each time — and stay visible as `pending_budget` (no silent limbo).
- purge: Idempotency-Key answers older than the retention are dropped.
"""

from __future__ import annotations

import logging

from prometheus_client import Gauge

from registry import views
from registry.settings import Context, RegistrySettings
from registry.usecases import closing, idempotency
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


async def close_due_postings(ctx: Context) -> int:
    """Close every open posting whose attendance window has passed, a batch at a time."""
    closed = 0
    while True:
        count = await closing.close_due_batch(ctx)
        closed += count
        if count < ctx.settings.posting_close_batch_size_max:
            break
    if closed:
        log.info("postings closed", extra={"count": closed})
    POSTINGS_CLOSED.set(closed)
    return closed


async def report_stale_pending(ctx: Context) -> int:
    """Count postings with no budget answer for too long; warn about them every time."""
    stale = await views.stale_pending(ctx)
    PENDING_BUDGET_STALE.set(stale.count)
    if stale.count:
        log.warning(
            "postings waiting for a budget answer for longer than %ss",
            ctx.settings.posting_budget_answer_stale_after_s,
            extra={"count": stale.count, "posting_ids": stale.ids},
        )
    return stale.count


async def purge_idempotency_keys(ctx: Context) -> int:
    purged = await idempotency.purge(ctx)
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

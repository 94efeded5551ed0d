"""Timers of the matcher, run on the shared clock: draws at `applications_close_at`, and
applications that waited too long for an unknown posting. Each posting is handled in its
own transaction under its lock, so every replica may run them safely."""

from __future__ import annotations

import logging

from matcher import decisions, store
from matcher.handlers import deps_of
from matcher.settings import Context, MatcherSettings
from shared.db import retry_conflicts
from shared.service import SweeperSpec

log = logging.getLogger(__name__)


def _settings(ctx: Context) -> MatcherSettings:
    assert isinstance(ctx.settings, MatcherSettings)
    return ctx.settings


async def run_due_draws(ctx: Context) -> None:
    deps = deps_of(ctx)
    async with ctx.pool.acquire() as conn:
        due = await store.draws_due(conn, ctx.now(), _settings(ctx).sweep_batch_size_max)
    for posting_id in due:

        async def one(posting_id: str = posting_id) -> bool:
            async with ctx.pool.acquire() as conn, conn.transaction():
                return await decisions.run_draw(conn, deps, posting_id)

        await retry_conflicts(one)


async def expire_held(ctx: Context) -> None:
    deps = deps_of(ctx)
    async with ctx.pool.acquire() as conn:
        postings = await store.held_expired_postings(
            conn, ctx.now(), _settings(ctx).sweep_batch_size_max
        )
    for posting_id in postings:

        async def one(posting_id: str = posting_id) -> int:
            async with ctx.pool.acquire() as conn, conn.transaction():
                return await decisions.expire_held(conn, deps, posting_id)

        expired = await retry_conflicts(one)
        if expired:
            log.info("%d held application(s) for %s rejected: unknown_posting", expired, posting_id)


def sweepers(settings: MatcherSettings) -> list[SweeperSpec]:
    return [
        SweeperSpec("draws", run_due_draws, settings.draw_sweep_interval_ms),
        SweeperSpec("held-applications", expire_held, settings.held_sweep_interval_ms),
    ]

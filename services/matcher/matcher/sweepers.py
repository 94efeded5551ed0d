"""Timers of the matcher, run on the shared clock: draws at `applications_close_at`, and
applications that waited too long for an unknown posting. Each posting is handled in its
own transaction under its lock, so every replica may run them safely."""

from __future__ import annotations

from matcher.settings import Context, MatcherSettings
from matcher.usecases import draws, postings
from matcher.usecases.deps import deps_of
from shared.service import SweeperSpec


async def run_due_draws(ctx: Context) -> None:
    await draws.run_due_draws(ctx.pool, deps_of(ctx), ctx.settings.sweep_batch_size_max)


async def expire_held(ctx: Context) -> None:
    await postings.expire_held_applications(
        ctx.pool, deps_of(ctx), ctx.settings.sweep_batch_size_max
    )


def sweepers(settings: MatcherSettings) -> list[SweeperSpec]:
    return [
        SweeperSpec("draws", run_due_draws, settings.draw_sweep_interval_ms),
        SweeperSpec("held-applications", expire_held, settings.held_sweep_interval_ms),
    ]

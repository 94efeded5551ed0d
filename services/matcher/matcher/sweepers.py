"""Timers of the matcher, run on the shared clock: draws at `applications_close_at`, and
applications that waited too long for an unknown posting, the notices before a booking's
start (reminders, reconfirmation and its release), and the retention of citizens'
profiles. Each posting is handled in its
own transaction under its lock, so every replica may run them safely."""

from __future__ import annotations

from datetime import timedelta

from matcher.settings import Context, MatcherSettings
from matcher.usecases import citizens, draws, postings, reminders
from matcher.usecases.deps import deps_of
from shared.service import SweeperSpec


async def run_due_draws(ctx: Context) -> None:
    await draws.run_due_draws(ctx.pool, deps_of(ctx), ctx.settings.sweep_batch_size_max)


async def expire_held(ctx: Context) -> None:
    await postings.expire_held_applications(
        ctx.pool, deps_of(ctx), ctx.settings.sweep_batch_size_max
    )


async def clear_idle_profiles(ctx: Context) -> None:
    await citizens.clear_idle_profiles(
        ctx.pool,
        ctx.now(),
        timedelta(days=ctx.settings.citizen_profile_retention_days),
        ctx.settings.sweep_batch_size_max,
    )


async def send_notices(ctx: Context) -> None:
    await reminders.send_due_notices(ctx.pool, deps_of(ctx), ctx.settings.sweep_batch_size_max)


def sweepers(settings: MatcherSettings) -> list[SweeperSpec]:
    return [
        SweeperSpec("draws", run_due_draws, settings.draw_sweep_interval_ms),
        SweeperSpec("held-applications", expire_held, settings.held_sweep_interval_ms),
        SweeperSpec("booking-notices", send_notices, settings.reminder_sweep_interval_ms),
        SweeperSpec("citizen-retention", clear_idle_profiles, settings.retention_sweep_interval_ms),
    ]

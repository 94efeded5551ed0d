"""What the use cases need besides the connection, built once from the running context
(by the handlers and the sweepers alike)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from matcher import store
from matcher.domain.policy import Policy
from matcher.domain.schedule import Schedule
from matcher.settings import Context
from shared.db import Connection


@dataclass(frozen=True)
class Deps:
    """The policy, the clock, the bound of a held application's wait and the schedule of
    the notices before a booking's start. `policy` is built
    from the settings; its weekly caps are the allowance's, read per transaction
    (`policy_now`, or with the batch's bookings in `store.decision_reads`)."""

    policy: Policy
    now: Callable[[], datetime]
    held_application_wait: timedelta
    schedule: Schedule


def deps_of(ctx: Context) -> Deps:
    settings = ctx.settings
    return Deps(
        policy=settings.policy(),
        now=ctx.now,
        held_application_wait=timedelta(seconds=settings.held_application_wait_s),
        schedule=settings.schedule(),
    )


async def policy_now(conn: Connection, deps: Deps) -> Policy:
    """The policy with the weekly caps the matcher holds now (from CapsChanged), read in the
    caller's transaction."""
    return replace(deps.policy, week_caps=await store.week_caps(conn))

"""What the use cases need besides the connection, built once from the running context
(by the handlers and the sweepers alike)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from matcher.domain.policy import Policy
from matcher.settings import Context


@dataclass(frozen=True)
class Deps:
    """The policy, the clock and the bound of a held application's wait."""

    policy: Policy
    now: Callable[[], datetime]
    held_application_wait: timedelta


def deps_of(ctx: Context) -> Deps:
    settings = ctx.settings
    return Deps(
        policy=settings.policy(),
        now=ctx.now,
        held_application_wait=timedelta(seconds=settings.held_application_wait_s),
    )

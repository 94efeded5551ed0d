"""Strikes and suspensions (BRIEF §5): a no-show, or a cancellation later than 2 hours
before the start, is a strike; 3 strikes within 90 days suspend booking for 30 days."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from matcher.domain.policy import Policy


@dataclass(frozen=True)
class Strike:
    strike_id: int
    occurred_at: datetime


@dataclass(frozen=True)
class Suspension:
    starts_at: datetime
    ends_at: datetime
    strike_ids: tuple[int, ...]  # the strikes that caused it


def is_late_cancellation(cancelled_at: datetime, starts_at: datetime, policy: Policy) -> bool:
    """A cancellation less than `late_cancel_cutoff` before the start (or after it)."""
    return cancelled_at > starts_at - policy.late_cancel_cutoff


def strikes_in_window(strikes: Iterable[Strike], now: datetime, policy: Policy) -> int:
    """How many strikes count within the window ending `now` (what the partner is told)."""
    since = now - policy.strike_window
    return sum(1 for s in strikes if since < s.occurred_at <= now)


def suspension_due(
    strikes: Iterable[Strike],
    now: datetime,
    policy: Policy,
    last_suspension_started_at: datetime | None = None,
) -> Suspension | None:
    """The suspension that starts `now`, or None if none is due.

    Counts the (not voided) strikes within the window before `now`; strikes that already
    led to a suspension (before its start) are not counted again, so one bad week does not
    suspend a citizen twice.
    """
    since = now - policy.strike_window
    if last_suspension_started_at is not None and last_suspension_started_at > since:
        since = last_suspension_started_at
    counted = sorted(
        (s for s in strikes if since < s.occurred_at <= now), key=lambda s: s.occurred_at
    )
    if len(counted) < policy.strikes_to_suspend:
        return None
    return Suspension(now, now + policy.suspension, tuple(s.strike_id for s in counted))

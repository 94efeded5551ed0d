"""The payout formula and the rate in force: one implementation for every service.

- A shift pays `floor(hourly_rate_won × minutes_paid / 60)` (BRIEF §5), in exact integer
  arithmetic; paid minutes are the attended minutes, at most the scheduled ones.
- A seat of a posting costs exactly the payout of the full scheduled shift, so a posting
  costs `capacity × floor(hourly_rate_won × scheduled_minutes / 60)`: what the allowance
  reserves from the budget, and what the registry shows a facility before it posts.
- The rate of a shift is the entry of the rate table in force on the Seoul date of its
  start: the latest one whose `effective_from` is on or before that day.

The allowance owns the rate table and announces it (RatesChanged, decision 0011); the
registry prices with its copy through these same functions, so the figure shown before
posting and the figure reserved after it cannot follow two formulas.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from shared.seoul import require_aware, seoul_date

MINUTES_PER_HOUR = 60


def require_int(name: str, value: int, minimum: int = 0) -> None:
    """Money and minutes are integers (never a float, never a bool) of at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}")


def scheduled_minutes(starts_at: datetime, ends_at: datetime) -> int:
    """Whole minutes between start and end (a partial minute is not scheduled, so not paid)."""
    seconds = (require_aware(ends_at) - require_aware(starts_at)).total_seconds()
    if seconds <= 0:
        raise ValueError("a shift must end after it starts")
    return int(seconds // 60)


def paid_minutes(attended_minutes: int, scheduled_minutes: int) -> int:
    """Attended minutes, at most the scheduled ones."""
    require_int("attended_minutes", attended_minutes)
    require_int("scheduled_minutes", scheduled_minutes)
    return min(attended_minutes, scheduled_minutes)


def payout_won(hourly_rate_won: int, minutes_paid: int) -> int:
    """`floor(hourly_rate_won × minutes_paid / 60)` in exact integer arithmetic."""
    require_int("hourly_rate_won", hourly_rate_won, 1)
    require_int("minutes_paid", minutes_paid)
    return hourly_rate_won * minutes_paid // MINUTES_PER_HOUR


def seat_share_won(hourly_rate_won: int, scheduled_minutes: int) -> int:
    """What one seat of a posting costs: the payout of the full scheduled shift."""
    return payout_won(hourly_rate_won, scheduled_minutes)


def reservation_won(capacity: int, hourly_rate_won: int, scheduled_minutes: int) -> int:
    """`capacity × floor(hourly_rate_won × scheduled_minutes / 60)`."""
    require_int("capacity", capacity, 1)
    return capacity * seat_share_won(hourly_rate_won, scheduled_minutes)


# --- the rate in force -------------------------------------------------------------------


@dataclass(frozen=True)
class RateEntry:
    """From `effective_from` (a Seoul date) until the next entry, shifts pay this rate."""

    effective_from: date
    hourly_rate_won: int
    source: str


def rate_in_force(entries: Iterable[RateEntry], day: date) -> RateEntry | None:
    """The entry in effect on `day`: the latest one that started on or before it; None when
    the table starts after `day` (or is empty)."""
    found: RateEntry | None = None
    for entry in entries:
        if entry.effective_from <= day and (
            found is None or entry.effective_from > found.effective_from
        ):
            found = entry
    return found


@dataclass(frozen=True)
class ShiftCost:
    """What a shift of `capacity` seats costs at `rate`: per seat the full shift's payout."""

    rate: RateEntry
    scheduled_minutes: int
    capacity: int
    seat_won: int
    total_won: int


def shift_cost(
    entries: Iterable[RateEntry], starts_at: datetime, ends_at: datetime, capacity: int
) -> ShiftCost | None:
    """The cost of a shift at the rate in force on the Seoul date of its start (what the
    allowance reserves for it); None when no rate is in force that day."""
    minutes = scheduled_minutes(starts_at, ends_at)
    rate = rate_in_force(entries, seoul_date(starts_at))
    if rate is None:
        return None
    seat_won = seat_share_won(rate.hourly_rate_won, minutes)
    return ShiftCost(
        rate=rate,
        scheduled_minutes=minutes,
        capacity=capacity,
        seat_won=seat_won,
        total_won=reservation_won(capacity, rate.hourly_rate_won, minutes),
    )

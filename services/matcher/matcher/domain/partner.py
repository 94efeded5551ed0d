"""What the partner reads of a posting beyond its stored terms: the seats still free and
the allowance of a full shift (the one payout formula of shared/money.py), and when a
partner token is still valid."""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.money import scheduled_minutes, seat_share_won


def seats_left(capacity: int, confirmed_count: int) -> int:
    """Seats not confirmed to anyone: never below zero (a capacity lowered under the
    confirmed count keeps the confirmed bookings, and shows no free seat)."""
    return max(capacity - confirmed_count, 0)


def shift_allowance_won(
    hourly_rate_won: int | None, starts_at: datetime, ends_at: datetime
) -> int | None:
    """The allowance of attending the whole shift, `floor(rate × scheduled minutes / 60)`;
    None when the posting's rate is not known (published before the rate was carried)."""
    if hourly_rate_won is None:
        return None
    return seat_share_won(hourly_rate_won, scheduled_minutes(starts_at, ends_at))


def token_admits(expires_at: datetime | None, now: datetime) -> bool:
    """A partner token works until its expiry (none: until a rotation sets one)."""
    return expires_at is None or now < expires_at


def previous_tokens_valid_until(now: datetime, overlap: timedelta) -> datetime:
    """When the tokens issued before a rotation stop working."""
    return now + max(overlap, timedelta(0))

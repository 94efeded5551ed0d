"""The citizen's allowance as the partner is shown it: the month's figures the matcher
holds from the allowance's events, its payment status, and the weekly hours against the
cap. Pure: the view reads, this decides what the answer says."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from matcher.domain.eligibility import Booked, week_minutes
from matcher.domain.policy import MonthCaps, WeekCaps
from shared.seoul import iso_week_bounds, iso_week_label, iso_week_year

# `accruing` and `closed` are what the allowance's events tell today (PayoutAccrued,
# PeriodClosed); `paid`, `held_back` (with a reason) and `failed` belong to the payee and
# transfer events, which set them explicitly on the month's row.
PaymentStatus = Literal["accruing", "closed", "paid", "held_back", "failed"]
_SETTLED: dict[str, PaymentStatus] = {"paid": "paid", "held_back": "held_back", "failed": "failed"}


@dataclass(frozen=True)
class MonthFigures:
    """One citizen's month as the allowance's events built it (zeros when none came)."""

    accrued_won: int = 0
    capped_won: int = 0
    gross_won: int = 0
    minutes_paid: int = 0
    cap_won: int | None = None  # the cap the allowance applied, when it held something back
    payment_status: str = "accruing"
    status_reason: str | None = None


def payment_status(figures: MonthFigures, period_closed: bool) -> PaymentStatus:
    """What the month's row says once settled; before that, closed or still accruing."""
    settled = _SETTLED.get(figures.payment_status)
    if settled is not None:
        return settled
    return "closed" if period_closed else "accruing"


def month_cap_won(figures: MonthFigures, caps: MonthCaps, period: str) -> int | None:
    """The month's cap: the one the allowance applied if it did, else its table's."""
    if figures.cap_won is not None:
        return figures.cap_won
    return caps.amount_max_won(int(period[:4]))


@dataclass(frozen=True)
class WeekHours:
    """The ISO week (Asia/Seoul) of an instant, its booked minutes and its hour cap."""

    week: str  # `2026-W10`
    starts_at: datetime
    ends_at: datetime
    booked_minutes: int
    hours_max: int | None


def week_hours(at: datetime, booked: list[Booked], caps: WeekCaps) -> WeekHours:
    """The confirmed minutes of `at`'s ISO week (worked or to come) against its cap."""
    start, end = iso_week_bounds(at)
    return WeekHours(
        week=iso_week_label(at),
        starts_at=start,
        ends_at=end,
        booked_minutes=week_minutes(booked, start, end),
        hours_max=caps.hours_max(iso_week_year(start)),
    )

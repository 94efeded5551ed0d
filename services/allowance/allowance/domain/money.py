"""Payout arithmetic: integer won, always rounded down, never above the monthly cap.

- A shift pays `floor(hourly_rate_won × minutes_paid / 60)`; paid minutes are the attended
  minutes, at most the scheduled minutes (BRIEF §5).
- A posting reserves, per seat, exactly the payout of a full shift at its locked rate:
  `reservation_won = capacity × floor(hourly_rate_won × scheduled_minutes / 60)`. A seat's
  payout can therefore always be drawn from its share: it pays at most the full shift.
- The monthly cap (per citizen, per Seoul month of the shift) is kept as an invariant of the
  month's totals rather than per shift: after every line, the month's payable total equals
  `min(cap, month's gross total)`. Each line (an accrual, or a reversal with negative gross)
  moves the payable total by exactly what keeps that true, so a correction that lowers one
  shift also releases what the cap had held back of the others, and nothing is dropped: the
  part over the cap is recorded as `capped`.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.money import (
    MINUTES_PER_HOUR,
    paid_minutes,
    payout_won,
    require_int,
    reservation_won,
    seat_share_won,
)

# The payout formula is shared with the registry, which prices a shift before it is posted:
# one implementation (shared/money.py), used here and there.
__all__ = [
    "MINUTES_PER_HOUR",
    "CapSplit",
    "MonthTotals",
    "apply_split",
    "paid_minutes",
    "payout_won",
    "reservation_won",
    "seat_share_won",
    "split_against_cap",
]


@dataclass(frozen=True)
class MonthTotals:
    """One citizen's totals for one Seoul month of shifts (the cap's unit)."""

    minutes_paid: int = 0
    gross_won: int = 0
    payable_won: int = 0
    capped_won: int = 0

    def __post_init__(self) -> None:
        if self.gross_won != self.payable_won + self.capped_won:
            raise ValueError("gross must equal payable plus capped")
        if self.payable_won < 0 or self.capped_won < 0:
            raise ValueError("month totals are never negative")


@dataclass(frozen=True)
class CapSplit:
    """How one line's gross divides into what is payable and what the cap holds back."""

    gross_won: int
    payable_won: int
    capped_won: int


def split_against_cap(gross_won: int, month: MonthTotals, cap_won: int) -> CapSplit:
    """Split a line of `gross_won` (negative for a reversal) for a month with `month` totals.

    The payable total moves to `min(cap, gross total)`. The move is clamped to lie between
    0 and the line's own gross (an accrual never takes payable away, a reversal never adds
    it, and neither moves more than its gross): with an unchanged cap the clamp never
    binds; when an administrator lowered the cap mid-month it keeps money already accrued
    from being clawed back by an unrelated line.
    """
    require_int("cap_won", cap_won)
    if isinstance(gross_won, bool) or not isinstance(gross_won, int):
        raise TypeError("gross_won must be an integer")
    new_gross = month.gross_won + gross_won
    if new_gross < 0:
        raise ValueError("a reversal cannot take back more than the month's gross")
    target_payable = min(cap_won, new_gross)
    move = target_payable - month.payable_won
    low, high = min(gross_won, 0), max(gross_won, 0)
    payable = max(low, min(high, move))
    return CapSplit(gross_won, payable, gross_won - payable)


def apply_split(month: MonthTotals, split: CapSplit, minutes_paid: int) -> MonthTotals:
    """The month's totals after a line."""
    return MonthTotals(
        month.minutes_paid + minutes_paid,
        month.gross_won + split.gross_won,
        month.payable_won + split.payable_won,
        month.capped_won + split.gross_won - split.payable_won,
    )

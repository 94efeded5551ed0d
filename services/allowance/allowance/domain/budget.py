"""Budget decisions: whether a posting can be funded, and where a payout's money comes from.

The programme budget of a fiscal year is a two-phase budget, as in TigerBeetle's pending
transfers: submitting a posting reserves its full cost (pending); attendance takes each
seat's payout from that reservation (posting the pending part); what is left is released
when the posting closes or is cancelled (voiding the rest). Reservations are checked
against the available budget under a lock, and Postgres refuses a negative available
balance as a second line of defence.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from allowance.domain.money import payout_won


class RejectReason(StrEnum):
    """Stable codes of BudgetRejected (the registry shows them to the facility)."""

    INSUFFICIENT_BUDGET = "insufficient_budget"
    NO_BUDGET_FOR_YEAR = "no_budget_for_year"
    NO_RATE = "no_rate"
    RATE_BELOW_MINIMUM_WAGE = "rate_below_minimum_wage"


@dataclass(frozen=True)
class ReservationDecision:
    accepted: bool
    requested_won: int
    available_won: int

    @property
    def shortfall_won(self) -> int:
        return max(self.requested_won - self.available_won, 0)


def decide_reservation(requested_won: int, available_won: int) -> ReservationDecision:
    """Accept iff the available budget covers the whole request (no partial reservations)."""
    if requested_won < 0:
        raise ValueError("a reservation request is never negative")
    return ReservationDecision(requested_won <= available_won, requested_won, available_won)


@dataclass(frozen=True)
class Drawdown:
    """Where a payout's gross comes from (money taken from a reservation; not to be confused
    with the matcher's lottery draw), in this order: the posting's reservation, then
    the available budget (a late correction after the reservation was released), and only
    if that is empty too, `budget_unfunded` (the work was done and is owed; the deficit is
    visible and is covered by the next budget increase)."""

    from_reserved_won: int
    from_available_won: int
    from_unfunded_won: int

    @property
    def total_won(self) -> int:
        return self.from_reserved_won + self.from_available_won + self.from_unfunded_won


def take_from_reservation(amount_won: int, reserved_won: int, available_won: int) -> Drawdown:
    """Take `amount_won` from a reservation holding `reserved_won` (0 once released) and a
    budget with `available_won` available."""
    if amount_won < 0:
        raise ValueError("a drawdown is never negative")
    from_reserved_won = min(amount_won, max(reserved_won, 0))
    rest_won = amount_won - from_reserved_won
    from_available_won = min(rest_won, max(available_won, 0))
    return Drawdown(from_reserved_won, from_available_won, rest_won - from_available_won)


class UncapDrawdown(NamedTuple):
    """Where money a reversal releases from the cap comes from."""

    from_available_won: int
    from_unfunded_won: int


def uncap_drawdown(amount_won: int, available_won: int) -> UncapDrawdown:
    """From available, then from unfunded, for money a reversal releases from the cap: that
    money had gone back to the available budget when it was capped."""
    if amount_won < 0:
        raise ValueError("a drawdown is never negative")
    from_available_won = min(amount_won, max(available_won, 0))
    return UncapDrawdown(from_available_won, amount_won - from_available_won)


def typical_shift_won(hourly_rate_won: int, typical_shift_minutes: int) -> int:
    """The cost of one seat of a typical shift (the threshold of BudgetExhausted)."""
    return payout_won(hourly_rate_won, typical_shift_minutes)


def exhausted_by(available_before_won: int, available_after_won: int, typical_won: int) -> bool:
    """True when this change made the budget unable to fund one more typical shift (it
    could before): BudgetExhausted is emitted on the crossing, not on every reservation."""
    return available_before_won >= typical_won > available_after_won

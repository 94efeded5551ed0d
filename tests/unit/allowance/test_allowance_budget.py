"""Budget decisions: all-or-nothing reservations, draw order, the exhaustion crossing."""

from __future__ import annotations

from allowance.domain.budget import (
    decide_reservation,
    exhausted_by,
    take_from_reservation,
    uncap_drawdown,
)
from hypothesis import given
from hypothesis import strategies as st

won = st.integers(min_value=0, max_value=10**9)


def test_reservation_is_all_or_nothing_with_the_shortfall() -> None:
    """Exactly the available amount is accepted; one won more is refused, short by one."""
    assert decide_reservation(1_000, 1_000).accepted
    refused = decide_reservation(1_001, 1_000)
    assert not refused.accepted and refused.shortfall_won == 1


@given(won, won, won)
def test_a_payout_draws_reservation_then_available_then_unfunded(
    amount: int, reserved: int, available: int
) -> None:
    """The draw takes as much as it can from the reservation, then from available, and
    only the rest is unfunded; it always totals the amount."""
    got = take_from_reservation(amount, reserved, available)
    assert got.total_won == amount
    assert got.from_reserved_won == min(amount, reserved)
    assert got.from_available_won == min(amount - got.from_reserved_won, available)
    assert got.from_unfunded_won == max(amount - reserved - available, 0)
    a, u = uncap_drawdown(amount, available)
    assert a + u == amount and a <= available


def test_exhaustion_is_signalled_on_the_crossing_only() -> None:
    """BudgetExhausted fires when available falls below one typical shift, not again after."""
    assert exhausted_by(50_000, 30_000, 39_000)
    assert not exhausted_by(30_000, 10_000, 39_000)
    assert not exhausted_by(90_000, 50_000, 39_000)

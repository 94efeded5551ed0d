"""Payout arithmetic: integer won, floor, never above the cap, caps sum right in a month."""

from __future__ import annotations

import pytest
from allowance.domain.money import (
    MonthTotals,
    apply_split,
    paid_minutes,
    payout_won,
    reservation_won,
    seat_share_won,
    split_against_cap,
)
from hypothesis import given
from hypothesis import strategies as st

rates = st.integers(min_value=1, max_value=1_000_000)
minutes = st.integers(min_value=0, max_value=24 * 60)


@given(rates, minutes)
def test_payout_is_the_floor_of_rate_times_minutes_over_sixty(rate: int, mins: int) -> None:
    """For any rate and minutes the payout is an int with 60·p ≤ rate·minutes < 60·(p+1)."""
    paid = payout_won(rate, mins)
    assert isinstance(paid, int)
    assert 60 * paid <= rate * mins < 60 * (paid + 1)


def test_payout_examples_round_down() -> None:
    """Known figures: 90 min at 10,920 is exactly 16,380; 7 min at 13,303 is 1,552.01 → 1,552."""
    assert payout_won(10_920, 90) == 16_380
    assert payout_won(13_303, 7) == 1_552
    assert payout_won(13_303, 0) == 0
    assert payout_won(12_930, 59) == 12_714  # 12,714.5 rounds down, never up


def test_money_refuses_floats_and_negatives() -> None:
    """No float ever reaches money: a float rate or minute count is a TypeError."""
    with pytest.raises(TypeError):
        payout_won(10_920.0, 60)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        payout_won(10_920, 60.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        payout_won(10_920, -1)
    with pytest.raises(ValueError):
        payout_won(0, 60)


@given(minutes, st.integers(min_value=1, max_value=8 * 60))
def test_paid_minutes_never_exceed_scheduled(attended: int, scheduled: int) -> None:
    """Paid minutes are the attended ones, at most the scheduled ones."""
    assert paid_minutes(attended, scheduled) == min(attended, scheduled)


@given(rates, st.integers(min_value=1, max_value=200), st.integers(min_value=30, max_value=480))
def test_a_seat_is_always_fundable_from_its_share(rate: int, capacity: int, scheduled: int) -> None:
    """Reservation = capacity × floor(rate × scheduled / 60), and any paid minutes of a seat
    pay at most that seat's share."""
    assert reservation_won(capacity, rate, scheduled) == capacity * (rate * scheduled // 60)
    share = seat_share_won(rate, scheduled)
    for attended in (0, 1, scheduled // 2, scheduled, scheduled + 90):
        assert payout_won(rate, paid_minutes(attended, scheduled)) <= share


def test_cap_boundaries_exactly_at_and_one_won_over() -> None:
    """Exactly at the cap everything is paid; one won over, exactly one won is capped."""
    cap = 583_444
    at = split_against_cap(cap, MonthTotals(), cap)
    assert (at.payable_won, at.capped_won) == (cap, 0)
    over = split_against_cap(cap + 1, MonthTotals(), cap)
    assert (over.payable_won, over.capped_won) == (cap, 1)
    full = apply_split(MonthTotals(), at, 60)
    one_more = split_against_cap(1, full, cap)
    assert (one_more.payable_won, one_more.capped_won) == (0, 1)
    just_under = apply_split(MonthTotals(), split_against_cap(cap - 1, MonthTotals(), cap), 60)
    last = split_against_cap(2, just_under, cap)
    assert (last.payable_won, last.capped_won) == (1, 1)


def test_reversing_a_shift_releases_what_the_cap_held_back() -> None:
    """Cap 100: A=80 paid, B=80 pays 20 (60 capped). Reversing A takes back only 20 of
    payable: B's 60 becomes payable, so the month pays min(100, 80) = 80."""
    month = MonthTotals()
    a = split_against_cap(80, month, 100)
    month = apply_split(month, a, 60)
    b = split_against_cap(80, month, 100)
    month = apply_split(month, b, 60)
    assert (b.payable_won, b.capped_won) == (20, 60)
    reverse_a = split_against_cap(-80, month, 100)
    assert (reverse_a.payable_won, reverse_a.capped_won) == (-20, -60)
    month = apply_split(month, reverse_a, -60)
    assert (month.gross_won, month.payable_won, month.capped_won) == (80, 80, 0)


def test_a_lower_cap_never_claws_back_accrued_money() -> None:
    """After the cap is lowered mid-month, a new accrual pays nothing but takes nothing back."""
    month = apply_split(MonthTotals(), split_against_cap(500, MonthTotals(), 1_000), 60)
    later = split_against_cap(100, month, 300)
    assert (later.payable_won, later.capped_won) == (0, 100)


lines = st.lists(
    st.tuples(st.booleans(), st.integers(min_value=0, max_value=200_000)),
    min_size=1,
    max_size=40,
)


@given(lines, st.integers(min_value=0, max_value=700_000))
def test_caps_sum_right_across_a_month(ops: list[tuple[bool, int]], cap: int) -> None:
    """Any sequence of accruals and reversals of earlier lines: after each line the month
    pays exactly min(cap, gross), never more than the cap; gross = payable + capped per
    line and per month; an accrual never reduces payable nor a reversal increases it."""
    month = MonthTotals()
    live: list[int] = []
    for reverse, amount in ops:
        if reverse and live:
            gross = -live.pop(amount % len(live))
        elif amount == 0:
            continue
        else:
            gross = amount
            live.append(amount)
        split = split_against_cap(gross, month, cap)
        assert split.gross_won == split.payable_won + split.capped_won
        assert min(gross, 0) <= split.payable_won <= max(gross, 0)
        month = apply_split(month, split, 0)
        assert month.gross_won == sum(live)
        assert month.payable_won == min(cap, month.gross_won) <= cap
        assert month.capped_won == month.gross_won - month.payable_won >= 0


@given(
    st.lists(
        st.tuples(st.integers(min_value=1, max_value=100_000), st.integers(0, 700_000)),
        min_size=1,
        max_size=30,
    )
)
def test_with_changing_caps_the_month_stays_within_bounds(ops: list[tuple[int, int]]) -> None:
    """Even when the cap changes between lines, payable stays between 0 and gross and every
    line moves payable in its own direction by at most its own gross."""
    month = MonthTotals()
    for gross, cap in ops:
        split = split_against_cap(gross, month, cap)
        assert 0 <= split.payable_won <= gross
        month = apply_split(month, split, 0)
        assert 0 <= month.payable_won <= month.gross_won

"""Strikes, suspensions and waitlist promotion (BRIEF §5), as pure functions."""

from __future__ import annotations

from datetime import timedelta

from matcher.domain.decide import Waiting, may_promote, plan_promotions
from matcher.domain.policy import Policy, Reason
from matcher.domain.strikes import Strike, is_late_cancellation, suspension_due

from .builders import booked, posting, seoul

START = seoul(2026, 3, 4, 14)


def test_cancelling_later_than_two_hours_before_start_is_a_strike(policy: Policy) -> None:
    """Exactly 2 h before is on time; one second later is late; after the start is late."""
    assert not is_late_cancellation(START - timedelta(hours=2), START, policy)
    assert is_late_cancellation(START - timedelta(hours=2) + timedelta(seconds=1), START, policy)
    assert is_late_cancellation(START + timedelta(minutes=5), START, policy)
    assert not is_late_cancellation(START - timedelta(days=3), START, policy)


def test_three_strikes_in_ninety_days_suspend_for_thirty_days(policy: Policy) -> None:
    """The third strike within the window suspends from now for 30 days."""
    now = seoul(2026, 3, 1)
    strikes = [Strike(1, now - timedelta(days=80)), Strike(2, now - timedelta(days=10))]
    assert suspension_due(strikes, now, policy) is None
    third = [*strikes, Strike(3, now)]
    due = suspension_due(third, now, policy)
    assert due is not None
    assert (due.starts_at, due.ends_at) == (now, now + timedelta(days=30))
    assert due.strike_ids == (1, 2, 3)


def test_strikes_older_than_the_window_do_not_count(policy: Policy) -> None:
    """A strike 90 days ago (or older) has expired."""
    now = seoul(2026, 3, 1)
    strikes = [
        Strike(1, now - timedelta(days=90)),
        Strike(2, now - timedelta(days=1)),
        Strike(3, now),
    ]
    assert suspension_due(strikes, now, policy) is None


def test_strikes_that_caused_a_suspension_are_not_counted_again(policy: Policy) -> None:
    """After a suspension started, a fourth strike alone does not suspend again; three new
    ones do."""
    suspended_at = seoul(2026, 3, 1)
    old = [Strike(i, suspended_at - timedelta(days=i)) for i in range(3)]
    later = suspended_at + timedelta(days=40)
    assert suspension_due([*old, Strike(9, later)], later, policy, suspended_at) is None
    fresh = [Strike(10 + i, later - timedelta(days=i)) for i in range(3)]
    due = suspension_due([*old, *fresh], later, policy, suspended_at)
    assert due is not None
    assert sorted(due.strike_ids) == [10, 11, 12]


def test_promotion_stops_one_hour_before_the_start(policy: Policy) -> None:
    """More than 1 h before the start: promote; exactly 1 h or less: no more promotions."""
    assert may_promote(START, START - timedelta(hours=1, seconds=1), policy)
    assert not may_promote(START, START - timedelta(hours=1), policy)
    view = posting(start=START, capacity=2, confirmed=1, waitlisted=2)
    head = [Waiting("app_1", "ctz_1"), Waiting("app_2", "ctz_2")]
    late = plan_promotions(view, head, policy, START - timedelta(minutes=30))
    assert late.promote == () and late.drop == ()


def test_the_head_of_the_waitlist_takes_the_free_seats(policy: Policy) -> None:
    """Two free seats: the first two waiting are promoted, in order; the third waits."""
    view = posting(start=START, capacity=3, confirmed=1, waitlisted=3)
    head = [Waiting(f"app_{i}", f"ctz_{i}") for i in range(3)]
    plan = plan_promotions(view, head, policy, START - timedelta(days=1))
    assert plan.promote == ("app_0", "app_1")
    assert plan.drop == ()


def test_a_waiting_citizen_who_became_ineligible_is_dropped_not_skipped(policy: Policy) -> None:
    """Suspended meanwhile, or booked elsewhere at the same time: cancelled with the reason,
    and the seat goes to the next one."""
    view = posting(start=START, capacity=1, confirmed=0, waitlisted=3)
    now = START - timedelta(days=1)
    head = [
        Waiting("app_0", "ctz_0", suspended_until=START + timedelta(days=10)),
        Waiting("app_1", "ctz_1", booked=(booked(START, 30),)),
        Waiting("app_2", "ctz_2"),
    ]
    plan = plan_promotions(view, head, policy, now)
    assert plan.promote == ("app_2",)
    assert plan.drop == (("app_0", Reason.SUSPENDED), ("app_1", Reason.OVERLAP))


def test_no_promotion_on_a_closed_or_full_posting(policy: Policy) -> None:
    """A posting that is not open, or has no free seat, promotes nobody."""
    head = [Waiting("app_0", "ctz_0")]
    now = START - timedelta(days=1)
    assert plan_promotions(posting(status="closed", confirmed=0), head, policy, now).promote == ()
    assert plan_promotions(posting(capacity=1, confirmed=1), head, policy, now).promote == ()

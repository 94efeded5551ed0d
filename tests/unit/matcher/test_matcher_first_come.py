"""First-come decisions (and draw collection) for a posting, as pure functions."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st
from matcher.domain.decide import decide_arrivals
from matcher.domain.policy import Policy, Reason

from .builders import arrival, booked, posting, profile, seoul


def test_confirms_in_arrival_order_then_waitlists_then_refuses(policy: Policy) -> None:
    """Capacity 2, waitlist 2: two confirmed, two waitlisted at positions 1 and 2, one refused."""
    decisions = decide_arrivals(
        posting(capacity=2, waitlist_max=2), [arrival(i) for i in range(5)], policy
    )
    assert [d.outcome for d in decisions] == [
        "confirmed",
        "confirmed",
        "waitlisted",
        "waitlisted",
        "rejected",
    ]
    assert [d.waitlist_position for d in decisions[2:4]] == [1, 2]
    assert decisions[4].reason == Reason.POSTING_FULL_NO_WAITLIST


def test_counts_what_is_already_taken(policy: Policy) -> None:
    """A posting with 1 of 2 seats and 1 waitlist place taken continues from there."""
    decisions = decide_arrivals(
        posting(capacity=2, confirmed=1, waitlisted=1, waitlist_max=2),
        [arrival(i) for i in range(3)],
        policy,
    )
    assert [(d.outcome, d.waitlist_position) for d in decisions] == [
        ("confirmed", None),
        ("waitlisted", 2),
        ("rejected", None),
    ]


def test_an_ineligible_applicant_does_not_take_a_seat(policy: Policy) -> None:
    """A refused application leaves the seat to the next one in line."""
    decisions = decide_arrivals(
        posting(capacity=1),
        [arrival(0, prof=profile(dong="충장동")), arrival(1)],
        policy,
    )
    assert [(d.outcome, d.reason) for d in decisions] == [
        ("rejected", Reason.NOT_RESIDENT),
        ("confirmed", None),
    ]


def test_one_live_application_per_citizen_and_posting(policy: Policy) -> None:
    """A second application of the same citizen (in the batch, or earlier) is a duplicate."""
    decisions = decide_arrivals(
        posting(capacity=5),
        [
            arrival(0, citizen_id="ctz_a"),
            arrival(1, citizen_id="ctz_a"),
            arrival(2, citizen_id="ctz_b", has_live_application=True),
        ],
        policy,
    )
    assert [d.reason for d in decisions] == [
        None,
        Reason.DUPLICATE_APPLICATION,
        Reason.DUPLICATE_APPLICATION,
    ]


def test_refused_for_a_full_posting_may_apply_again_in_the_same_batch(policy: Policy) -> None:
    """A refusal is not a live application: it does not count as a duplicate later."""
    decisions = decide_arrivals(
        posting(capacity=1, waitlist_max=0),
        [arrival(0), arrival(1, citizen_id="ctz_x"), arrival(2, citizen_id="ctz_x")],
        policy,
    )
    assert [d.reason for d in decisions] == [
        None,
        Reason.POSTING_FULL_NO_WAITLIST,
        Reason.POSTING_FULL_NO_WAITLIST,
    ]


def test_posting_state_refusals(policy: Policy) -> None:
    """Cancelled, closed, started or past its close: refused with the matching reason."""
    start = seoul(2026, 3, 4, 14)
    cases = [
        (posting(status="cancelled"), seoul(2026, 3, 1), Reason.POSTING_CANCELLED),
        (posting(status="closed"), seoul(2026, 3, 1), Reason.POSTING_CLOSED),
        (posting(start=start), start, Reason.POSTING_STARTED),
        (posting(close_at=seoul(2026, 3, 2)), seoul(2026, 3, 2), Reason.APPLICATIONS_CLOSED),
    ]
    for view, received_at, reason in cases:
        [decision] = decide_arrivals(view, [arrival(0, received_at=received_at)], policy)
        assert (decision.outcome, decision.reason) == ("rejected", reason)


def test_standing_refusals_apply_to_first_come(policy: Policy) -> None:
    """Suspended, overlapping or over the weekly cap: refused, the seat stays free."""
    start = seoul(2026, 3, 4, 14)
    decisions = decide_arrivals(
        posting(start=start, capacity=1),
        [
            arrival(0, suspended_until=seoul(2026, 4, 1)),
            arrival(1, booked_elsewhere=(booked(start + timedelta(hours=1), 60),)),
            arrival(2, booked_elsewhere=(booked(seoul(2026, 3, 2, 8), 12 * 60),)),
            arrival(3),
        ],
        policy,
    )
    assert [d.reason for d in decisions] == [
        Reason.SUSPENDED,
        Reason.OVERLAP,
        Reason.WEEKLY_HOURS_CAP,
        None,
    ]
    assert decisions[3].outcome == "confirmed"


def test_a_draw_posting_collects_until_its_draw(policy: Policy) -> None:
    """Before the draw every eligible application is pending (overlap is judged at the draw);
    after it, late-processed applications are decided first-come."""
    start = seoul(2026, 3, 4, 14)
    clash = (booked(start, 60),)
    collecting = decide_arrivals(
        posting(selection="draw", capacity=1),
        [arrival(0), arrival(1, booked_elsewhere=clash), arrival(2, prof=profile(dong="x"))],
        policy,
    )
    assert [d.outcome for d in collecting] == ["pending", "pending", "rejected"]
    drawn = decide_arrivals(
        posting(selection="draw", drawn=True, capacity=1, confirmed=1),
        [arrival(0)],
        policy,
    )
    assert drawn[0].outcome == "waitlisted"


@given(
    capacity=st.integers(1, 20),
    confirmed=st.integers(0, 20),
    waitlist_max=st.integers(0, 30),
    eligible=st.lists(st.booleans(), max_size=80),
)
def test_never_more_confirmed_than_free_seats(
    capacity: int, confirmed: int, waitlist_max: int, eligible: list[bool]
) -> None:
    """Whatever arrives, confirmed ≤ free seats, waitlisted ≤ room, and seats are filled
    before anyone is waitlisted."""
    confirmed = min(confirmed, capacity)
    policy_ = _policy()
    arrivals = [
        arrival(i, prof=profile(dong="수완동" if ok else "x")) for i, ok in enumerate(eligible)
    ]
    decisions = decide_arrivals(
        posting(capacity=capacity, confirmed=confirmed, waitlist_max=waitlist_max),
        arrivals,
        policy_,
    )
    outcomes = [d.outcome for d in decisions]
    seats = capacity - confirmed
    assert outcomes.count("confirmed") == min(seats, sum(eligible))
    assert outcomes.count("waitlisted") == min(max(sum(eligible) - seats, 0), waitlist_max)
    if "waitlisted" in outcomes:
        assert outcomes.count("confirmed") == seats


def _policy() -> Policy:
    from matcher.settings import MatcherSettings

    from .builders import seeded_week_caps

    return MatcherSettings().policy(seeded_week_caps())

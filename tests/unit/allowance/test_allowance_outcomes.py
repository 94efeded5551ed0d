"""The outcome report's arithmetic (allowance/domain/outcomes.py): the Gini coefficient,
rates, a draw's selection probabilities, and the grouping of facts into report rows."""

from __future__ import annotations

import math

import pytest
from allowance.domain import outcomes
from allowance.domain.outcomes import (
    ApplicationFact,
    AttendanceFact,
    DrawFact,
    Facts,
    PayoutFact,
    PostingFact,
)
from hypothesis import given, settings
from hypothesis import strategies as st

amounts = st.lists(st.integers(min_value=0, max_value=10**9), min_size=0, max_size=60)


def test_gini_exact_values_on_small_examples() -> None:
    """Hand-computed values: equal shares 0; one of two has everything 1/2; one of four has
    everything 3/4 (the 1 − 1/n bound); (1, 2, 3) gives 2/9; nobody or all zeros give 0."""
    assert outcomes.gini([5, 5, 5]) == 0.0
    assert outcomes.gini([0, 10]) == 0.5
    assert outcomes.gini([0, 0, 0, 7]) == 0.75
    assert outcomes.gini([1, 2, 3]) == pytest.approx(2 / 9, abs=0)
    assert outcomes.gini([3, 1, 2]) == outcomes.gini([1, 2, 3])
    assert outcomes.gini([]) == 0.0
    assert outcomes.gini([0, 0]) == 0.0
    with pytest.raises(ValueError):
        outcomes.gini([1, -1])


@given(amounts)
def test_gini_is_in_zero_one_and_at_most_one_minus_one_over_n(values: list[int]) -> None:
    """For any non-negative amounts, 0 <= G < 1, and G <= 1 − 1/n."""
    g = outcomes.gini(values)
    assert 0.0 <= g < 1.0
    if values:
        assert g <= 1 - 1 / len(values) + 1e-12


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=1, max_value=200))
def test_gini_of_equal_shares_is_exactly_zero(amount: int, n: int) -> None:
    assert outcomes.gini([amount] * n) == 0.0


@given(amounts, st.integers(min_value=1, max_value=1000))
def test_gini_does_not_depend_on_scale(values: list[int], k: int) -> None:
    """Paying everyone k times as much changes nothing in the spread."""
    assert outcomes.gini([v * k for v in values]) == pytest.approx(outcomes.gini(values))


@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=2, max_size=30))
def test_gini_equals_the_mean_absolute_difference_definition(values: list[int]) -> None:
    """The rank formula equals Σ|xi − xj| / (2 n² mean), the textbook definition."""
    n, total = len(values), sum(values)
    expected = (
        0.0 if total == 0 else sum(abs(a - b) for a in values for b in values) / (2 * n * total)
    )
    assert outcomes.gini(values) == pytest.approx(expected, abs=1e-12)


def test_share_of_nothing_is_none_not_zero() -> None:
    assert outcomes.share(1, 4) == 0.25
    assert outcomes.share(0, 0) is None


def test_exact_inclusion_probabilities_on_small_lists() -> None:
    """Two entries of weight 1 and 3, one seat: 1/4 and 3/4. Three equal entries, two seats:
    2/3 each. Weights (1, 1, 2), one seat: 1/4, 1/4, 1/2; two seats: the heavy one is in
    unless both light ones are drawn, 1 − (1/4·1/3 + 1/4·1/3) = 5/6."""
    assert outcomes.inclusion_exact([1.0, 3.0], 1) == pytest.approx((0.25, 0.75))
    assert outcomes.inclusion_exact([1.0, 1.0, 1.0], 2) == pytest.approx((2 / 3,) * 3)
    assert outcomes.inclusion_exact([1.0, 1.0, 2.0], 1) == pytest.approx((0.25, 0.25, 0.5))
    two = outcomes.inclusion_exact([1.0, 1.0, 2.0], 2)
    assert two[2] == pytest.approx(5 / 6)
    assert sum(two) == pytest.approx(2)
    assert outcomes.inclusion_exact([1.0, 2.0], 5) == (1.0, 1.0)
    assert outcomes.inclusion_exact([1.0, 2.0], 0) == (0.0, 0.0)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(min_value=0.05, max_value=1.0), min_size=2, max_size=7),
    st.integers(min_value=1, max_value=6),
)
def test_exact_probabilities_sum_to_the_seats_and_follow_the_weights(
    weights: list[float], seats: int
) -> None:
    """Σ p = min(seats, n); a heavier entry is never less likely than a lighter one."""
    p = outcomes.inclusion_exact(weights, seats)
    assert sum(p) == pytest.approx(min(seats, len(weights)))
    for i in range(len(weights)):
        for j in range(len(weights)):
            if weights[i] > weights[j]:
                assert p[i] >= p[j] - 1e-12


def test_monte_carlo_agrees_with_the_exact_values_and_is_reproducible() -> None:
    """With 20,000 rounds the estimate is within 0.02 of the exact value (4 standard
    errors), and the same seed gives the same estimate."""
    weights = [outcomes.draw_weight(m, 600) for m in (0, 0, 300, 600, 1800, 2400, 60, 0)]
    exact = outcomes.inclusion_exact(weights, 3)
    estimate = outcomes.inclusion_monte_carlo(weights, 3, 20_000, seed=7)
    assert max(abs(a - b) for a, b in zip(exact, estimate, strict=True)) < 0.02
    assert outcomes.inclusion_monte_carlo(weights, 3, 20_000, seed=7) == estimate


def test_selection_probabilities_says_which_method_it_used() -> None:
    """Exact up to the bound, Monte Carlo above it with rounds = work / entries."""
    small = outcomes.selection_probabilities(
        [1.0, 0.5, 0.25], 1, exact_entries_max=14, work_max=10_000, seed_text="pst_1"
    )
    assert small.method == "exact"
    assert small.minimum == pytest.approx(0.25 / 1.75)
    assert small.maximum == pytest.approx(1 / 1.75)
    big = outcomes.selection_probabilities(
        [1.0] * 50, 10, exact_entries_max=14, work_max=10_000, seed_text="pst_2"
    )
    assert big.method == "monte_carlo/200"
    assert big.minimum is not None and big.maximum is not None
    assert 0.0 <= big.minimum <= 0.2 <= big.maximum <= 1.0
    assert outcomes.draw_weight(0, 600) == 1.0 and outcomes.draw_weight(600, 600) == 0.5
    assert math.isclose(outcomes.draw_weight(1800, 600), 0.25)


def _facts() -> Facts:
    """Two facilities in two dongs over two months; counted by hand in the test below."""
    postings = [
        PostingFact("p1", "f1", "A 경로당", "송정1동", "2026-03", 2, False),
        PostingFact("p2", "f1", "A 경로당", "송정1동", "2026-04", 1, False),
        PostingFact("p3", "f2", "B 도서관", "수완동", "2026-04", 3, False),
        PostingFact("p4", "f2", "B 도서관", "수완동", "2026-04", 2, True),
    ]
    attendance = [
        AttendanceFact("p1", "c1", True, 120),
        AttendanceFact("p1", "c2", False, 0),
        AttendanceFact("p2", "c1", True, 60),
        AttendanceFact("p3", "c3", True, 180),
    ]
    payouts = [
        PayoutFact("p1", "c1", 20_000, 0),
        PayoutFact("p2", "c1", 10_000, 500),
        PayoutFact("p3", "c3", 30_000, 0),
    ]
    applications = [ApplicationFact(p, c) for p, c in (("p1", "c1"), ("p1", "c2"), ("p2", "c1"))]
    applications += [ApplicationFact("p3", c) for c in ("c3", "c4")]
    draws = [DrawFact("p3", 3, ("c3", "c4", "c5"), ("c3",), 0.2, 0.6, "exact")]
    return Facts(
        postings=postings,
        attendance=attendance,
        payouts=payouts,
        applications=applications,
        draws=draws,
        first_shift_posting={"c1": "p1", "c3": "p3"},
        paid_won_by_month={"2026-04": 20_000},
    )


def test_groups_by_month_count_what_the_facts_say() -> None:
    """By month: March has p1 (2 seats, both held: filled; one no-show), April p2 (filled),
    p3 (1 of 3 held) and p4 (cancelled). Spread over the applicants and paid citizens."""
    groups, total = outcomes.outcome_groups(_facts(), "month")
    march, april = groups
    assert (march.key, april.key) == ("2026-03", "2026-04")
    assert (march.shifts_posted, march.shifts_filled, march.seats_offered) == (1, 1, 2)
    assert (march.seats_filled, march.attended, march.no_shows) == (2, 1, 1)
    assert march.no_show_rate == 0.5
    assert (march.citizens_served, march.first_time_citizens, march.applicants) == (1, 1, 2)
    assert march.first_shift_share == 0.5
    assert march.allowance_accrued_won == 20_000 and march.allowance_paid_won == 0
    assert march.gini_allowance == 0.5  # c1 20,000 and c2 nothing
    assert march.gini_allowance_paid == 0.0  # c1 alone was paid
    assert (april.shifts_posted, april.shifts_cancelled, april.shifts_filled) == (3, 1, 1)
    assert april.seats_offered == 4 and april.minutes_worked == 240 and april.hours_worked == 4.0
    # c1 and c3 served; c3 is new in April (c1 first worked in March).
    assert (april.citizens_served, april.first_time_citizens) == (2, 1)
    # Applicants c1, c3, c4 and draw entrants c3, c4, c5: 4 citizens, 2 served.
    assert april.applicants == 4 and april.first_shift_share == 0.5
    assert april.allowance_accrued_won == 40_000 and april.allowance_capped_won == 500
    assert april.gini_allowance == pytest.approx(outcomes.gini([10_000, 30_000, 0, 0]))
    assert april.gini_allowance_paid == 0.25  # (2·(10,000 + 60,000) − 3·40,000) / (2·40,000)
    assert (april.draws, april.draw_winners, april.draw_repeat_winner_rate) == (1, 1, 0.0)
    assert (april.draw_probability_min, april.draw_probability_max) == (0.2, 0.6)
    assert total.allowance_accrued_won == 60_000 and total.allowance_paid_won == 20_000
    assert total.citizens_served == 2 and total.first_time_citizens == 2
    assert total.gini_allowance == pytest.approx(outcomes.gini([30_000, 0, 30_000, 0, 0]))


def test_groups_by_facility_and_dong_and_repeat_winners() -> None:
    """Facilities are keyed by id and labelled by name; paid transfers belong to months
    only. A citizen who won two draws is a repeat winner."""
    facts = _facts()
    groups, total = outcomes.outcome_groups(facts, "facility")
    assert [(g.key, g.label) for g in groups] == [("f1", "A 경로당"), ("f2", "B 도서관")]
    assert groups[0].allowance_paid_won is None and total.allowance_paid_won == 20_000
    dongs, _ = outcomes.outcome_groups(facts, "dong")
    assert [g.key for g in dongs] == ["송정1동", "수완동"]
    again = DrawFact("p2", 1, ("c3", "c1"), ("c3",), 0.5, 0.5, "exact")
    facts2 = Facts(**{**facts.__dict__, "draws": [*facts.draws, again]})
    _, total2 = outcomes.outcome_groups(facts2, "month")
    assert total2.draws == 2 and total2.draw_winners == 1
    assert total2.draw_repeat_winner_rate == 1.0


def test_a_draw_completed_becomes_its_report_fact() -> None:
    """The allowance's DrawCompleted use case keeps entrants and winners by citizen and the
    selection probabilities of the draw's own weights (here exact: 1 seat among weights
    1, ½, ¼ → 4/7, 2/7, 1/7)."""
    from datetime import UTC, datetime

    from allowance.usecases.common import Deps
    from allowance.usecases.reports import draw_fact

    from shared.events import DrawCompleted, DrawEntry

    at = datetime(2027, 3, 3, 3, 0, tzinfo=UTC)
    event = DrawCompleted(
        posting_id="pst_1",
        algorithm="efraimidis-spirakis/hmac-sha256/v2",
        seats=1,
        waitlist_room=1,
        half_weight_minutes=600,
        window_months=3,
        commitment="0" * 64,
        entry_list_hash="1" * 64,
        seed_hex="2" * 64,
        entries=[
            DrawEntry(entry_id="app_a", citizen_id="ctz_a", minutes_window=0),
            DrawEntry(entry_id="app_b", citizen_id="ctz_b", minutes_window=600),
            DrawEntry(entry_id="app_c", citizen_id="ctz_c", minutes_window=1800),
        ],
        confirmed=["app_b"],
        waitlisted=["app_a"],
        not_selected=["app_c"],
        committed_at=at,
        applications_close_at=at,
        drawn_at=at,
    )
    fact = draw_fact(event, Deps(now=at))
    assert fact.entrants == ("ctz_a", "ctz_b", "ctz_c") and fact.winners == ("ctz_b",)
    assert fact.method == "exact"
    assert fact.probability_max == pytest.approx(4 / 7)
    assert fact.probability_min == pytest.approx(1 / 7)

"""The weighted draw: reproducible from its seed, fair to its weights, exact in its counts."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from matcher.domain.draw import (
    DrawEntry,
    draw_ranking,
    draw_weight,
    make_seed,
    new_salt,
    run_draw,
    uniform,
)

HALF = 600


def entries(n: int, minutes: int = 0) -> list[DrawEntry]:
    return [DrawEntry(f"app_{i:04d}", f"ctz_{i:04d}", minutes) for i in range(n)]


def test_same_seed_and_inputs_give_the_same_outcome() -> None:
    """Re-running from the stored seed and inputs reproduces the outcome exactly."""
    seed = make_seed("pst_1", new_salt())
    field = entries(50, 0) + [DrawEntry(f"app_x{i}", f"ctz_x{i}", i * 60) for i in range(50)]
    first = run_draw(seed, field, seats=5, waitlist_room=10, half_weight_minutes=HALF)
    again = run_draw(seed, list(field), seats=5, waitlist_room=10, half_weight_minutes=HALF)
    assert first == again


def test_outcome_does_not_depend_on_input_order() -> None:
    """Shuffling the inputs (as a database might return them) changes nothing."""
    seed = make_seed("pst_1", "salt")
    field = entries(40)
    shuffled = field[:]
    random.Random(7).shuffle(shuffled)
    assert draw_ranking(seed, field, HALF) == draw_ranking(seed, shuffled, HALF)


def test_different_seeds_give_different_rankings() -> None:
    """The salt matters: two draws of the same posting are not the same permutation."""
    field = entries(30)
    a = draw_ranking(make_seed("pst_1", "salt-a"), field, HALF)
    b = draw_ranking(make_seed("pst_1", "salt-b"), field, HALF)
    assert a != b
    assert sorted(a) == sorted(b)


def test_seed_is_fixed_by_posting_and_salt() -> None:
    """The seed is sha256(posting:salt): an auditor recomputes it from the stored salt."""
    assert make_seed("pst_1", "abc") == make_seed("pst_1", "abc")
    assert make_seed("pst_1", "abc") != make_seed("pst_2", "abc")
    assert len(make_seed("pst_1", "abc")) == 64


def test_uniform_is_strictly_inside_the_unit_interval() -> None:
    """log(u) must be finite: u is never 0 nor 1."""
    values = [uniform("seed", f"app_{i}") for i in range(2000)]
    assert all(0 < v < 1 for v in values)
    assert 0.45 < sum(values) / len(values) < 0.55


@given(
    n=st.integers(0, 60),
    seats=st.integers(0, 20),
    room=st.integers(0, 20),
    seed=st.text(min_size=1, max_size=20),
)
def test_counts_partition_the_entries(n: int, seats: int, room: int, seed: str) -> None:
    """Confirmed, waitlisted and not selected partition the entries in rank order."""
    outcome = run_draw(seed, entries(n), seats=seats, waitlist_room=room, half_weight_minutes=HALF)
    assert len(outcome.confirmed) == min(seats, n)
    assert len(outcome.waitlisted) == min(room, max(n - seats, 0))
    assert outcome.confirmed + outcome.waitlisted + outcome.not_selected == outcome.ranking
    assert sorted(outcome.ranking) == sorted(e.application_id for e in entries(n))


def test_weight_halves_at_the_half_weight_minutes() -> None:
    """weight = H / (H + minutes): 1 with none, 1/2 at H, 1/3 at 2H."""
    assert draw_weight(0, HALF) == 1
    assert draw_weight(HALF, HALF) == pytest.approx(0.5)
    assert draw_weight(2 * HALF, HALF) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        draw_weight(-1, HALF)


def test_an_application_enters_once() -> None:
    """Two entries with one application id are refused (the store never produces them)."""
    with pytest.raises(ValueError):
        run_draw("s", entries(2) + entries(1), seats=1, waitlist_room=0, half_weight_minutes=HALF)


def test_weighting_shifts_the_odds_as_intended() -> None:
    """Over 4,000 draws of 1 seat between a citizen with no minutes this month (weight 1)
    and one with H minutes (weight 1/2), the first wins about 2/3 of the time; equal
    weights win about 1/2 each."""
    draws = 4000
    wins_fresh = 0
    wins_equal = 0
    for i in range(draws):
        seed = make_seed(f"pst_{i}", "audit")
        field = [DrawEntry("app_fresh", "ctz_a", 0), DrawEntry("app_busy", "ctz_b", HALF)]
        if run_draw(seed, field, seats=1, waitlist_room=0, half_weight_minutes=HALF).confirmed == (
            "app_fresh",
        ):
            wins_fresh += 1
        equal = [DrawEntry("app_a", "ctz_a", 0), DrawEntry("app_b", "ctz_b", 0)]
        if run_draw(seed, equal, seats=1, waitlist_room=0, half_weight_minutes=HALF).confirmed == (
            "app_a",
        ):
            wins_equal += 1
    # Binomial(4000, 2/3): sd ≈ 30 wins (0.75%); 4 sd either side.
    assert abs(wins_fresh / draws - 2 / 3) < 0.03
    assert abs(wins_equal / draws - 1 / 2) < 0.032


def test_heavier_weight_means_more_seats_in_a_crowd() -> None:
    """With 20 seats among 100 fresh and 100 busy (2H minutes, weight 1/3) applicants, over
    200 draws the fresh ones take clearly more seats — about 3× the busy ones' odds each."""
    fresh = [DrawEntry(f"app_f{i}", f"ctz_f{i}", 0) for i in range(100)]
    busy = [DrawEntry(f"app_b{i}", f"ctz_b{i}", 2 * HALF) for i in range(100)]
    fresh_seats = 0
    for i in range(200):
        outcome = run_draw(
            make_seed(f"pst_{i}", "crowd"),
            fresh + busy,
            seats=20,
            waitlist_room=0,
            half_weight_minutes=HALF,
        )
        fresh_seats += sum(1 for a in outcome.confirmed if a.startswith("app_f"))
    share = fresh_seats / (200 * 20)
    assert 0.70 < share < 0.80  # sequential sampling 3:1 gives about 0.75

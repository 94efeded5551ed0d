"""The pilot year's scenario generator (tools/demo/year.py), without a stack: its scale, its
seasons, its timing within each month, and that the first-come counterfactual is the same
scenario with only the draws taken first come. (The year itself is played by `make
demo-year`, minutes long, so it is not in `make test`; docs/fairness.md §10 has its run.)"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from shared.seoul import SEOUL
from tools.demo.scenario import SEED_DEFAULT
from tools.demo.year import (
    FACILITIES,
    HOLIDAY_MONTHS,
    RECRUITED_FIRST,
    RECRUITED_PER_MONTH,
    SHIFT_DAYS,
    make_year,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_the_year_has_the_pilots_scale_and_grows_toward_a_thousand_citizens() -> None:
    """37 facilities; 120 citizens recruited in the first month and 80 each month after
    (1,000 by the twelfth); every month a plan of its own, in order, from January 2027."""
    year = make_year(SEED_DEFAULT, NOW, 12)
    assert len(year.facilities) == FACILITIES == 37
    assert len(year.people) == RECRUITED_FIRST + 11 * RECRUITED_PER_MONTH == 1000
    assert [p.period for p in year.plans] == [f"2027-{m:02d}" for m in range(1, 13)]
    active = [len(p.citizens) for p in year.plans]
    assert active[-1] > 2 * active[0]  # the pool grows, and so do those who apply
    assert sum(1 for p in year.people if p.flaky) > 0
    assert all(p.facilities is year.facilities for p in year.plans)
    assert make_year(SEED_DEFAULT, NOW, 12) == year  # pure and deterministic


def test_every_month_has_its_season_a_rush_draws_a_cancellation_and_withdrawals() -> None:
    """Holiday months have more shifts; each month has the regulars' series, a rush, a
    cancelled shift, draws that close before any shift starts, and withdrawals; shifts run
    from the 5th to the 25th (so the attendance window closes within the month)."""
    year = make_year(SEED_DEFAULT, NOW, 12)
    for plan in year.plans:
        roles = [p.role for p in plan.postings]
        month = plan.month_start.astimezone(SEOUL).month
        general = sum(1 for r in roles if r in ("general", "draw"))
        assert general >= (30 if month in HOLIDAY_MONTHS else 22)
        assert roles.count("rush") == 1 and roles.count("cancel") == 1
        assert roles.count("regular") == 9 and plan.withdrawals
        draws = [p for p in plan.postings if p.selection == "draw"]
        assert draws
        first_start = min(p.starts_at for p in plan.postings)
        assert all(d.applications_close_at is not None for d in draws)
        assert all(d.applications_close_at < first_start for d in draws)  # type: ignore[operator]
        for p in plan.postings:
            local = p.starts_at.astimezone(SEOUL)
            assert SHIFT_DAYS[0] <= local.day <= SHIFT_DAYS[1]
            assert p.ends_at - p.starts_at <= timedelta(hours=8)
        keys = [c.key for c in plan.citizens]
        assert len(keys) == len(set(keys))


def test_the_counterfactual_is_the_same_scenario_with_draws_taken_first_come() -> None:
    """Same seed and start: the same facilities, people, postings (days, hours, capacity,
    titles), applicants and their applications; only the draw postings are first come."""
    fair = make_year(SEED_DEFAULT, NOW, 3, "fair")
    first_come = make_year(SEED_DEFAULT, NOW, 3, "first_come")
    assert fair.people == first_come.people and fair.facilities == first_come.facilities
    for a, b in zip(fair.plans, first_come.plans, strict=True):
        assert a.citizens == b.citizens and a.withdrawals == b.withdrawals
        assert not [p for p in b.postings if p.selection == "draw"]
        same = [replace(p, selection="first_come", applications_close_at=None) for p in a.postings]
        assert same == b.postings

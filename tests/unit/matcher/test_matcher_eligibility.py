"""Eligibility rules of BRIEF §5, one by one, as pure functions."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st
from matcher.domain.eligibility import (
    adult_from,
    age_years_on,
    exceeds_week_cap,
    profile_refusal,
    standing_refusal,
    weeks_touched,
)
from matcher.domain.policy import Policy, Reason, WeekCaps
from matcher.settings import MatcherSettings

from shared.seoul import iso_week_start

from .builders import booked, profile, seoul, shift

AT = seoul(2026, 3, 1, 9)
SHIFT = shift(seoul(2026, 3, 4, 14))  # a Wednesday afternoon


def test_an_eligible_profile_is_accepted(policy: Policy) -> None:
    """A verified resident adult with a safety check passes every profile rule."""
    assert profile_refusal(profile(), SHIFT, policy, AT) is None


def test_every_gwangsan_dong_is_eligible_and_others_are_not(policy: Policy) -> None:
    """All 21 administrative dongs are accepted; a dong of another district is `not_resident`."""
    assert len(policy.eligible_dongs) == 21
    for dong in policy.eligible_dongs:
        assert profile_refusal(profile(dong=dong), SHIFT, policy, AT) is None
    for dong in ("농성1동", "충장동", "", "수완"):
        assert profile_refusal(profile(dong=dong), SHIFT, policy, AT) == Reason.NOT_RESIDENT


def test_neighbourhood_verification_must_be_recent(policy: Policy) -> None:
    """A 동네 인증 older than the configured age (1 year) is refused; exactly 1 year is fine."""
    limit = AT - policy.neighbourhood_verified_max_age
    assert profile_refusal(profile(verified_at=limit), SHIFT, policy, AT) is None
    stale = profile(verified_at=limit - timedelta(seconds=1))
    assert profile_refusal(stale, SHIFT, policy, AT) == Reason.NEIGHBOURHOOD_VERIFICATION_EXPIRED


def test_age_is_counted_on_the_shift_date_in_seoul(policy: Policy) -> None:
    """19 on the shift's Seoul date is enough, even when UTC is still the day before."""
    start = seoul(2026, 3, 4, 7)  # 2026-03-03 22:00 UTC
    turns_19 = profile(birth_date=date(2007, 3, 4))
    assert profile_refusal(turns_19, shift(start), policy, AT) is None
    day_after = profile(birth_date=date(2007, 3, 5))
    assert profile_refusal(day_after, shift(start), policy, AT) == Reason.UNDER_AGE


def test_age_in_completed_years() -> None:
    """만 나이: a birthday not reached yet this year does not count; 29 Feb counts on 1 Mar."""
    assert age_years_on(date(2000, 6, 1), date(2019, 5, 31)) == 18
    assert age_years_on(date(2000, 6, 1), date(2019, 6, 1)) == 19
    assert age_years_on(date(2004, 2, 29), date(2023, 2, 28)) == 18
    assert age_years_on(date(2004, 2, 29), date(2023, 3, 1)) == 19


def test_child_safety_check_only_where_required(policy: Policy) -> None:
    """Without a safety check a citizen may work anywhere except where the posting asks."""
    unchecked = profile(child_safety_check=False)
    assert profile_refusal(unchecked, SHIFT, policy, AT) is None
    children = shift(SHIFT.starts_at, requires_child_safety_check=True)
    assert profile_refusal(unchecked, children, policy, AT) == Reason.CHILD_SAFETY_CHECK_REQUIRED
    assert profile_refusal(profile(), children, policy, AT) is None


def test_a_suspended_citizen_cannot_book_until_the_end(policy: Policy) -> None:
    """Suspended until T: refused before T, accepted from T on."""
    until = AT + timedelta(days=1)
    assert standing_refusal(until, (), SHIFT, policy, AT) == Reason.SUSPENDED
    assert standing_refusal(until, (), SHIFT, policy, until) is None
    assert standing_refusal(None, (), SHIFT, policy, AT) is None


def test_overlap_is_refused_and_touching_shifts_are_not(policy: Policy) -> None:
    """Half-open intervals: a booking ending when this shift starts does not overlap."""
    start = SHIFT.starts_at
    assert (
        standing_refusal(None, [booked(start - timedelta(hours=2), 120)], SHIFT, policy, AT) is None
    )
    assert (
        standing_refusal(None, [booked(start + timedelta(hours=2), 60)], SHIFT, policy, AT) is None
    )
    clash = booked(start + timedelta(minutes=119), 60)
    assert standing_refusal(None, [clash], SHIFT, policy, AT) == Reason.OVERLAP


def test_weekly_cap_counts_booked_minutes_in_the_iso_week(policy: Policy) -> None:
    """13 h per ISO week: 11 h booked + a 2 h shift fits; 11 h 1 min + 2 h does not."""
    monday = seoul(2026, 3, 2, 8)
    eleven_hours = [booked(monday, 8 * 60), booked(monday + timedelta(days=1), 3 * 60)]
    assert standing_refusal(None, eleven_hours, SHIFT, policy, AT) is None
    over = [*eleven_hours, booked(monday + timedelta(days=4), 1)]
    assert standing_refusal(None, over, SHIFT, policy, AT) == Reason.WEEKLY_HOURS_CAP


def test_weekly_cap_ignores_other_weeks(policy: Policy) -> None:
    """Bookings of the previous ISO week (Sunday night in Seoul) do not count."""
    last_sunday = seoul(2026, 3, 1, 10)
    assert standing_refusal(None, [booked(last_sunday, 8 * 60)] * 2, SHIFT, policy, AT) is None


def test_weeks_are_seoul_weeks() -> None:
    """Monday 00:00 Asia/Seoul starts the week, even though it is Sunday in UTC."""
    assert iso_week_start(seoul(2026, 3, 2, 0, 30)) == seoul(2026, 3, 2)
    assert iso_week_start(seoul(2026, 3, 1, 23, 59)) == seoul(2026, 2, 23)


def test_a_shift_across_sunday_midnight_counts_in_both_weeks(policy: Policy) -> None:
    """22:00 Sunday to 02:00 Monday: 2 h in each week, checked against each week's bookings."""
    night = shift(seoul(2026, 3, 8, 22), minutes=240)
    assert weeks_touched(night.starts_at, night.ends_at) == [seoul(2026, 3, 2), seoul(2026, 3, 9)]
    next_week_full = [
        booked(seoul(2026, 3, 10, 8), 8 * 60),
        booked(seoul(2026, 3, 11, 8), 3 * 60 + 1),
    ]
    assert exceeds_week_cap(night, next_week_full, policy)
    assert not exceeds_week_cap(night, next_week_full[:1], policy)


@given(st.lists(st.integers(min_value=30, max_value=480), max_size=10))
def test_weekly_cap_matches_a_plain_sum(durations: list[int]) -> None:
    """Within one week, the cap is exactly "booked minutes + new minutes ≤ 13 h"."""
    policy = Policy(
        eligible_dongs=frozenset(),
        neighbourhood_verified_max_age=timedelta(days=365),
        age_min_years=19,
        week_caps=WeekCaps({2026: 13}),
        waitlist_length_max=10,
        promotion_cutoff=timedelta(hours=1),
        late_cancel_cutoff=timedelta(hours=2),
        strike_window=timedelta(days=90),
        strikes_to_suspend=3,
        suspension=timedelta(days=30),
        draw_half_weight_minutes=600,
    )
    # Non-overlapping bookings on Tuesday..Saturday mornings, the new shift on Monday.
    bookings = [
        booked(seoul(2026, 3, 3) + timedelta(hours=9 * i), minutes)
        for i, minutes in enumerate(durations)
    ]
    bookings = [b for b in bookings if b.ends_at <= seoul(2026, 3, 9)]
    new = shift(seoul(2026, 3, 2, 9), minutes=120)
    total = 120 + sum(int((b.ends_at - b.starts_at).total_seconds() // 60) for b in bookings)
    assert exceeds_week_cap(new, bookings, policy) == (total > 13 * 60)


def test_adult_from_is_the_first_day_of_the_age() -> None:
    """`adult_from` (what the topic and the citizens table keep instead of the birth date,
    docs/decisions/0013) refuses exactly the days `age_years_on` counts under 19."""
    start = date(1999, 12, 1)
    for offset in range(0, 6 * 366, 7):
        born = start + timedelta(days=offset)
        first = adult_from(born, 19)
        assert age_years_on(born, first) == 19
        assert age_years_on(born, first - timedelta(days=1)) == 18
    assert adult_from(date(2004, 2, 29), 19) == date(2023, 3, 1)
    assert adult_from(date(2004, 2, 29), 20) == date(2024, 2, 29)


def test_the_weekly_cap_of_each_week_is_its_iso_years() -> None:
    """The cap of a week is the row of the week's ISO year: a lower 2027 cap applies from
    ISO week 2027-W01, which starts on Monday 4 January 2027; the week of Monday
    28 December 2026 (ISO year 2026, even on New Year's Day) keeps 2026's cap."""
    policy = dataclasses.replace(
        MatcherSettings().policy(), week_caps=WeekCaps({2026: 13, 2027: 3})
    )
    four_hours_2026_w53 = shift(seoul(2027, 1, 1, 9), minutes=240)
    four_hours_2027_w01 = shift(seoul(2027, 1, 4, 9), minutes=240)
    assert not exceeds_week_cap(four_hours_2026_w53, [], policy)
    assert exceeds_week_cap(four_hours_2027_w01, [], policy)
    assert not exceeds_week_cap(shift(seoul(2027, 1, 4, 9), minutes=180), [], policy)


def test_a_year_without_a_row_takes_the_allowances_rule() -> None:
    """Like the allowance's `CapTable.caps_for`: a later year carries the latest earlier
    row forward, a year before the table takes the earliest row; with no table at all no
    cap is known and the week counts as full (refused rather than unchecked)."""
    caps = WeekCaps({2022: 13, 2025: 10})
    assert [caps.hours_max(y) for y in (2019, 2022, 2024, 2025, 2031)] == [13, 13, 13, 10, 10]
    assert WeekCaps().hours_max(2026) is None
    assert WeekCaps().minutes_max(2026) == 0
    policy = dataclasses.replace(MatcherSettings().policy(), week_caps=WeekCaps())
    assert standing_refusal(None, [], SHIFT, policy, AT) == Reason.WEEKLY_HOURS_CAP


def test_the_matcher_reads_a_year_of_the_cap_table_as_the_allowance_does() -> None:
    """One table, one reading: for every year around the seeded table and a table with gaps,
    the matcher's weekly cap equals the allowance's `caps_for(year).weekly_hours_max`."""
    from allowance.domain.policy import SEED_CAPS, CapEntry, CapTable

    gappy = (CapEntry(2021, 9, 100, "s"), CapEntry(2024, 11, 100, "s"), CapEntry(2026, 5, 0, "s"))
    for entries in (SEED_CAPS, gappy):
        table = CapTable(entries)
        caps = WeekCaps({e.year: e.weekly_hours_max for e in entries})
        for year in range(2015, 2035):
            assert caps.hours_max(year) == table.caps_for(year).weekly_hours_max, year

"""What a shift costs before it is posted, and the registry's copy of the allowance's rate
table: the estimate is the allowance's formula (`shared.money`), seats × floor(rate ×
whole minutes / 60) at the rate in force on the Seoul date of the start; the copy adopts
only a newer version of the table, so a replay or a late older version changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import pytest
from registry.domain.errors import Refusal
from registry.domain.postings import PostingBounds, ShiftTerms
from registry.domain.rates import adopts, estimate
from registry.store import RatesRow
from registry.usecases import rates as rates_usecase

from shared.events import Envelope, RateRow, RatesChanged
from shared.money import RateEntry, rate_in_force, reservation_won, shift_cost
from shared.seoul import SEOUL

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
BOUNDS = PostingBounds()
RATES = (
    RateEntry(date(2025, 1, 1), 12_930, "Gwangju city living wage 2025"),
    RateEntry(date(2026, 1, 1), 13_303, "Gwangju city living wage 2026"),
)
# 09:00 Seoul on a day of 2026 well after NOW.
START = datetime(2026, 4, 6, 9, 0, tzinfo=SEOUL)


def terms(minutes: float, capacity: int = 2, start: datetime = START) -> ShiftTerms:
    return ShiftTerms(start, start + timedelta(minutes=minutes), capacity, "first_come")


def test_two_hours_for_two_seats_at_the_2026_rate() -> None:
    """The figure the console shows: 120 min at 13,303 won/h is 26,606 won a seat, 53,212
    for two; the rate says where it comes from and since when."""
    found = estimate(terms(120), RATES, 7, now=NOW, bounds=BOUNDS)
    assert found.cost is not None
    assert found.cost.rate.hourly_rate_won == 13_303
    assert found.cost.rate.effective_from == date(2026, 1, 1)
    assert found.cost.seat_won == 26_606
    assert found.cost.total_won == 53_212
    assert found.scheduled_minutes == 120
    assert found.rates_version == 7


def test_the_shortest_and_the_longest_shift_are_priced_exactly() -> None:
    """30 minutes (BRIEF §5's lower bound): floor(13,303 × 30 / 60) = 6,651 (6,651.5 down);
    8 hours (the upper bound): 13,303 × 8 = 106,424, exactly."""
    short = estimate(terms(30, capacity=1), RATES, 1, now=NOW, bounds=BOUNDS).cost
    long = estimate(terms(480, capacity=200), RATES, 1, now=NOW, bounds=BOUNDS).cost
    assert short is not None and long is not None
    assert (short.seat_won, short.total_won) == (6_651, 6_651)
    assert (long.seat_won, long.total_won) == (106_424, 200 * 106_424)


def test_one_minute_outside_the_bounds_is_refused_like_a_posting() -> None:
    """29 minutes and 8 h 1 min are refused (400, `ends_at`, `duration_out_of_range`), as
    `POST /v1/postings` refuses them; so are 0 and 201 seats."""
    for minutes in (29, 481):
        with pytest.raises(Refusal) as refused:
            estimate(terms(minutes), RATES, 1, now=NOW, bounds=BOUNDS)
        assert refused.value.status == 400
        assert [(e.field, e.code) for e in refused.value.errors] == [
            ("ends_at", "duration_out_of_range")
        ]
    for capacity in (0, 201):
        with pytest.raises(Refusal) as refused:
            estimate(terms(60, capacity=capacity), RATES, 1, now=NOW, bounds=BOUNDS)
        assert [e.code for e in refused.value.errors] == ["capacity_out_of_range"]


def test_a_partial_minute_is_not_paid_and_the_won_rounds_down() -> None:
    """90 min 59 s is 90 whole minutes (a partial minute is not scheduled), and
    13,303 × 90 / 60 = 19,954.5 is 19,954 won: never rounded up."""
    found = estimate(terms(90 + 59 / 60), RATES, 1, now=NOW, bounds=BOUNDS)
    assert found.scheduled_minutes == 90
    assert found.cost is not None and found.cost.seat_won == 19_954


def test_the_rate_is_the_one_in_force_on_the_seoul_date_of_the_start() -> None:
    """A shift starting at 00:30 on 1 January 2026 in Seoul (15:30 UTC on 31 December)
    is priced at the 2026 rate; one starting on 31 December Seoul at the 2025 rate."""
    new_year = datetime(2026, 1, 1, 0, 30, tzinfo=SEOUL)
    before = datetime(2025, 12, 31, 23, 0, tzinfo=SEOUL)
    at_new = shift_cost(RATES, new_year, new_year + timedelta(hours=1), 1)
    at_old = shift_cost(RATES, before, before + timedelta(hours=1), 1)
    assert at_new is not None and at_new.rate.hourly_rate_won == 13_303
    assert at_old is not None and at_old.rate.hourly_rate_won == 12_930
    assert rate_in_force(RATES, date(2024, 12, 31)) is None


def test_no_rate_known_is_an_estimate_without_money_not_an_error() -> None:
    """Before the allowance's first RatesChanged (or for a date before the table) the
    estimate says so (no cost); the terms are still checked."""
    found = estimate(terms(60), (), None, now=NOW, bounds=BOUNDS)
    assert found.cost is None and found.rates_version is None
    assert found.scheduled_minutes == 60


def test_the_estimate_is_what_the_allowance_reserves() -> None:
    """One formula: `shared.money.reservation_won`, which the allowance reserves with."""
    for minutes, capacity in ((30, 1), (75, 3), (480, 200), (121, 7)):
        cost = shift_cost(RATES, START, START + timedelta(minutes=minutes), capacity)
        assert cost is not None
        assert cost.total_won == reservation_won(capacity, 13_303, minutes)


# --- the copy of the rate table --------------------------------------------------------


def test_only_a_newer_version_is_adopted() -> None:
    assert adopts(None, 1)
    assert adopts(3, 4)
    assert not adopts(4, 4)
    assert not adopts(4, 3)


class FakeRates:
    """The store's rate table functions on a dict (the connection is ignored)."""

    def __init__(self) -> None:
        self.version: int | None = None
        self.entries: tuple[RateEntry, ...] = ()
        self.replaced = 0

    async def lock_rates(self, conn: object) -> None:
        return None

    async def rates(self, conn: object) -> RatesRow:
        return RatesRow(self.version, self.entries)

    async def replace_rates(
        self, conn: object, rates_version: int, entries: Sequence[RateEntry], now: datetime
    ) -> None:
        self.version, self.entries = rates_version, tuple(entries)
        self.replaced += 1


def announced(version: int, rate_won: int) -> tuple[Envelope, RatesChanged]:
    event = RatesChanged(
        rates_version=version,
        rates=[RateRow(effective_from=date(2026, 1, 1), hourly_rate_won=rate_won, source="x")],
    )
    envelope = event.envelope(
        producer="allowance", occurred_at=NOW, event_id=uuid.uuid5(uuid.NAMESPACE_URL, str(version))
    )
    return envelope, event


async def test_the_registry_adopts_a_newer_table_and_ignores_an_older_one() -> None:
    """Version 5 is adopted; version 3 arriving late changes nothing; version 5 delivered
    again changes nothing (the consumer guard skips a repeated id anyway); version 6 is
    adopted."""
    db = FakeRates()

    async def deliver(version: int, rate_won: int) -> bool:
        envelope, event = announced(version, rate_won)
        return await rates_usecase.on_rates_changed(None, envelope, event, now=NOW, db=db)

    assert await deliver(5, 14_000)
    assert await deliver(3, 12_000) is False
    assert await deliver(5, 14_000) is False
    assert (db.version, db.replaced) == (5, 1)
    assert [e.hourly_rate_won for e in db.entries] == [14_000]
    assert await deliver(6, 15_000)
    assert (db.version, [e.hourly_rate_won for e in db.entries]) == (6, [15_000])

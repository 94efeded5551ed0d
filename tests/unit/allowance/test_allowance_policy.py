"""Rate lookup by date, the minimum-wage refusal, caps per year: with their sources."""

from __future__ import annotations

from datetime import date

from allowance.domain.policy import (
    SEED_CAPS,
    SEED_MINIMUM_WAGES,
    SEED_RATES,
    CapTable,
    MinimumWage,
    MinimumWageTable,
    RateEntry,
    RateTable,
    validate_cap_table,
    validate_rate_table,
)

MINIMUM = MinimumWageTable(SEED_MINIMUM_WAGES)


def test_seeded_figures_are_lawful_and_sourced() -> None:
    """The BRIEF §5 rates pass the minimum-wage check and every figure names its source."""
    assert validate_rate_table(list(SEED_RATES), MINIMUM) == []
    assert all(e.source for e in (*SEED_RATES, *SEED_MINIMUM_WAGES, *SEED_CAPS))
    assert {(m.year, m.hourly_won) for m in SEED_MINIMUM_WAGES} >= {
        (2024, 9_860),
        (2025, 10_030),
        (2026, 10_320),
    }


def test_rate_lookup_by_date() -> None:
    """The rate in force is the latest entry starting on or before the (Seoul) date."""
    table = RateTable(SEED_RATES)
    assert table.rate_on(date(2019, 12, 31)) is None
    assert table.rate_on(date(2020, 1, 1)).hourly_rate_won == 10_353  # type: ignore[union-attr]
    assert table.rate_on(date(2022, 12, 31)).hourly_rate_won == 10_920  # type: ignore[union-attr]
    assert table.rate_on(date(2024, 6, 1)).hourly_rate_won == 10_920  # type: ignore[union-attr]
    assert table.rate_on(date(2025, 1, 1)).hourly_rate_won == 12_930  # type: ignore[union-attr]
    assert table.rate_on(date(2031, 7, 1)).hourly_rate_won == 13_303  # type: ignore[union-attr]


def test_a_rate_below_the_minimum_wage_is_refused_with_both_numbers() -> None:
    """10,000 won/h from 2025 is below 2025's 10,030: refused, and the message says both."""
    rates = [*SEED_RATES[:3], RateEntry(date(2025, 1, 1), 10_000, "typo")]
    violations = validate_rate_table(rates, MINIMUM)
    assert [v.code for v in violations] == ["below_minimum_wage", "below_minimum_wage"]
    assert "10,000" in violations[0].message and "10,030" in violations[0].message
    assert "2026" in violations[1].message and "10,320" in violations[1].message
    assert violations[0].field == "rates.3.hourly_rate_won"


def test_a_rate_is_checked_in_every_year_it_stays_in_force() -> None:
    """A 2022 rate of 9,700 carried into 2024 falls below 2024's 9,860 (not 2023's 9,620)."""
    rates = [RateEntry(date(2022, 1, 1), 9_700, "x"), RateEntry(date(2025, 1, 1), 12_930, "y")]
    violations = validate_rate_table(rates, MINIMUM)
    assert len(violations) == 1
    assert "2024" in violations[0].message and "9,860" in violations[0].message


def test_exactly_the_minimum_wage_is_lawful() -> None:
    """A rate equal to the minimum wage passes."""
    rates = [RateEntry(date(2026, 1, 1), 10_320, "minimum")]
    assert validate_rate_table(rates, MINIMUM) == []


def test_a_year_without_a_known_minimum_wage_is_refused() -> None:
    """A rate starting in 2031 cannot be shown lawful until 2031's minimum wage is entered."""
    rates = [*SEED_RATES, RateEntry(date(2031, 1, 1), 20_000, "future")]
    violations = validate_rate_table(rates, MINIMUM)
    assert [v.code for v in violations] == ["no_minimum_wage_for_year"]
    assert "2031" in violations[0].message
    known = MinimumWageTable((*SEED_MINIMUM_WAGES, MinimumWage(2031, 15_000, "test")))
    assert validate_rate_table(rates, known) == []


def test_duplicate_and_empty_tables_are_refused() -> None:
    """Two entries on one date, or no entry at all, are refused."""
    twice = [RateEntry(date(2025, 1, 1), 12_930, "a"), RateEntry(date(2025, 1, 1), 13_000, "b")]
    assert validate_rate_table(twice, MINIMUM)[0].code == "duplicate"
    assert validate_rate_table([], MINIMUM)[0].code == "empty"
    assert validate_cap_table([])[0].code == "empty"


def test_caps_per_year_carry_forward_with_honest_sources() -> None:
    """2022 has the BRIEF's figures; later years without a row carry the latest one; the
    carried rows say they are assumed."""
    caps = CapTable(SEED_CAPS)
    y2022 = caps.caps_for(2022)
    assert (y2022.weekly_hours_max, y2022.monthly_amount_max_won) == (13, 583_444)
    assert "BRIEF" in y2022.source and "assumed" not in y2022.source
    assert "assumed" in caps.caps_for(2024).source
    assert caps.caps_for(2031) == caps.caps_for(2026)
    assert caps.caps_for(2010) == caps.caps_for(2020)

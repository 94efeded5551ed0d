"""Withholding as a versioned table: exact integer won at the thresholds and truncations."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from allowance.domain import withholding as wh
from allowance.domain.withholding import WithholdingKind as Kind
from hypothesis import given, settings
from hypothesis import strategies as st

DAY = date(2026, 6, 10)
BUSINESS = wh.WithholdingTable((wh.statutory_entry(date(2026, 1, 1), Kind.BUSINESS_INCOME_3_3),))
OTHER = wh.WithholdingTable((wh.statutory_entry(date(2026, 1, 1), Kind.OTHER_INCOME_8_8),))


def test_the_seed_withholds_nothing_until_the_tax_office_decides() -> None:
    """The default kind is `none`: the whole gross reaches the citizen."""
    result = wh.withholding_for(wh.SEED_WITHHOLDING, DAY, 583_444)
    assert (result.income_tax_won, result.local_tax_won, result.net_won) == (0, 0, 583_444)
    assert result.kind is Kind.NONE


def test_business_income_is_3_percent_plus_a_tenth_of_it_both_truncated_to_10_won() -> None:
    """100,000 won: 3,000 + 300 = 3,300 withheld. 33,300 won: 999 → 990 and 99 → 90 (the
    9 won below 10 are cut, and the local tax comes from the truncated income tax)."""
    result = wh.withholding_for(BUSINESS, DAY, 100_000)
    assert (result.income_tax_won, result.local_tax_won, result.net_won) == (3_000, 300, 96_700)
    cut = wh.withholding_for(BUSINESS, DAY, 33_300)
    assert (cut.income_tax_won, cut.local_tax_won, cut.net_won) == (990, 90, 32_220)
    assert wh.withholding_for(BUSINESS, DAY, 333).income_tax_won == 0  # 9.99 won → 0


def test_other_income_at_exactly_50000_taxable_withholds_nothing_one_won_over_it_does() -> None:
    """125,000 gross is 50,000 taxable after 60 % deemed expenses: exempt. 125,001 gross is
    50,001 taxable (expenses round down): 20 % = 10,000.2 → 10,000, local 1,000."""
    exempt = wh.withholding_for(OTHER, DAY, 125_000)
    assert exempt.taxable_won == 50_000
    assert (exempt.income_tax_won, exempt.local_tax_won, exempt.net_won) == (0, 0, 125_000)
    over = wh.withholding_for(OTHER, DAY, 125_001)
    assert over.taxable_won == 50_001
    assert (over.income_tax_won, over.local_tax_won, over.net_won) == (10_000, 1_000, 114_001)


def test_other_income_is_8_8_percent_of_round_gross() -> None:
    """583,440 gross: taxable 233,376, income tax 46,675.2 → 46,670, local 4,667 → 4,660."""
    result = wh.withholding_for(OTHER, DAY, 583_440)
    assert result.taxable_won == 233_376
    assert (result.income_tax_won, result.local_tax_won) == (46_670, 4_660)
    assert result.net_won == 583_440 - 46_670 - 4_660


def test_zero_and_the_largest_amount() -> None:
    """Zero withholds zero; the bound itself is exact (no float rounding at 10^12)."""
    for table in (BUSINESS, OTHER, wh.SEED_WITHHOLDING):
        assert wh.withholding_for(table, DAY, 0).net_won == 0
    big = wh.withholding_for(BUSINESS, DAY, wh.GROSS_WON_MAX)
    assert big.income_tax_won == 30_000_000_000 and big.local_tax_won == 3_000_000_000
    with pytest.raises(ValueError):
        wh.withholding_for(BUSINESS, DAY, wh.GROSS_WON_MAX + 1)
    with pytest.raises(ValueError):
        wh.withholding_for(BUSINESS, DAY, -1)
    with pytest.raises(TypeError):
        wh.withholding_for(BUSINESS, DAY, True)


def test_the_entry_in_effect_on_the_payment_date_applies() -> None:
    """A payment on the day a new entry starts uses it; the day before uses the old one; a
    payment before the table starts is refused rather than guessed."""
    table = wh.WithholdingTable(
        (
            wh.statutory_entry(date(2026, 7, 1), Kind.BUSINESS_INCOME_3_3),
            wh.statutory_entry(date(2026, 1, 1), Kind.NONE),
        )
    )
    assert wh.withholding_for(table, date(2026, 6, 30), 100_000).income_tax_won == 0
    assert wh.withholding_for(table, date(2026, 7, 1), 100_000).income_tax_won == 3_000
    with pytest.raises(wh.NoWithholdingPolicy):
        wh.withholding_for(table, date(2025, 12, 31), 100_000)


def test_small_amount_exemption_applies_only_when_switched_on() -> None:
    """With 소액부징수 at 1,000 won, 990 won of income tax is not withheld; 1,000 is."""
    entry = replace(BUSINESS.entries[0], income_tax_exempt_below_won=1_000)
    table = wh.WithholdingTable((entry,))
    assert wh.validate_withholding_table([entry]) == []
    assert wh.withholding_for(table, DAY, 33_300).income_tax_won == 0
    assert wh.withholding_for(table, DAY, 33_300).local_tax_won == 0
    assert wh.withholding_for(table, DAY, 33_334).income_tax_won == 1_000


def test_statutory_entries_validate() -> None:
    """Each kind's statutory entry is a valid one-entry table, and a mixed table is too."""
    entries = [wh.statutory_entry(date(2020 + i, 1, 1), kind) for i, kind in enumerate(Kind)]
    assert wh.validate_withholding_table(entries) == []


def test_violations_name_their_field() -> None:
    """Out-of-range, float, unused and unordered values are each refused with their field."""
    base = wh.statutory_entry(date(2026, 1, 1), Kind.OTHER_INCOME_8_8)
    bad = [
        replace(base, income_tax_rate_bp=10_001),
        replace(base, effective_from=date(2025, 1, 1), local_tax_rate_bp=-1),
        replace(base, effective_from=date(2027, 1, 1), deemed_expense_rate_bp=60.0),  # type: ignore[arg-type]
        replace(
            wh.statutory_entry(date(2028, 1, 1), Kind.BUSINESS_INCOME_3_3),
            taxable_exempt_max_won=50_000,
            source=" ",
        ),
        replace(base, effective_from=date(2029, 1, 1), kind="salary"),  # type: ignore[arg-type]
    ]
    found = {(v.field, v.code) for v in wh.validate_withholding_table(bad)}
    assert found == {
        ("withholding.0.income_tax_rate_bp", "out_of_range"),
        ("withholding.1.effective_from", "not_ordered"),
        ("withholding.1.local_tax_rate_bp", "out_of_range"),
        ("withholding.2.deemed_expense_rate_bp", "not_integer"),
        ("withholding.3.source", "missing"),
        ("withholding.3.taxable_exempt_max_won", "not_used"),
        ("withholding.4.kind", "unknown"),
    }
    assert wh.validate_withholding_table([])[0].code == "empty"
    duplicate = [base, replace(base)]
    assert [v.code for v in wh.validate_withholding_table(duplicate)] == ["not_ordered"]


def test_a_stored_version_round_trips_through_json() -> None:
    entries = (
        wh.statutory_entry(date(2026, 1, 1), Kind.NONE),
        wh.statutory_entry(date(2026, 7, 1), Kind.OTHER_INCOME_8_8),
    )
    table = wh.withholding_from_json(wh.withholding_to_json(entries), version=3)
    assert table.entries == entries and table.version == 3


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(list(Kind)),
    gross_won=st.one_of(
        st.integers(0, 2_000_000), st.integers(0, wh.GROSS_WON_MAX), st.just(125_000)
    ),
    exempt_below_won=st.sampled_from([0, 1_000]),
)
def test_net_plus_taxes_is_the_gross_and_taxes_are_whole_tens(
    kind: Kind, gross_won: int, exempt_below_won: int
) -> None:
    """For every kind and amount: net + taxes == gross, taxes ≥ 0 and multiples of 10, the
    local tax at most a tenth of the income tax, and the net never negative."""
    entry = wh.statutory_entry(date(2026, 1, 1), kind)
    if kind is not Kind.NONE:
        entry = replace(entry, income_tax_exempt_below_won=exempt_below_won)
    result = wh.withholding_for(wh.WithholdingTable((entry,)), DAY, gross_won)
    assert result.net_won + result.income_tax_won + result.local_tax_won == gross_won
    assert result.income_tax_won >= 0 and result.local_tax_won >= 0 and result.net_won >= 0
    assert result.income_tax_won % 10 == 0 and result.local_tax_won % 10 == 0
    assert result.local_tax_won * 10 <= result.income_tax_won
    assert result.income_tax_won <= result.gross_won * 2 // 10

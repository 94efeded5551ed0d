"""Payout lines: only payable details become lines; the memo fits; totals add up."""

from __future__ import annotations

from datetime import date

import pytest
from allowance.domain import payout_file as pf
from allowance.domain import withholding as wh
from allowance.domain.banks import PayeeReason
from allowance.domain.calendar import Period

MAY = Period(2026, 5)
PAID_ON = date(2026, 6, 10)
BUSINESS = wh.WithholdingTable(
    (wh.statutory_entry(date(2026, 1, 1), wh.WithholdingKind.BUSINESS_INCOME_3_3),)
)


def line(
    sequence: int = 1,
    gross_won: int = 100_000,
    table: wh.WithholdingTable = wh.SEED_WITHHOLDING,
    account_number: str = "301-0123-4567-89",
) -> pf.PayoutLine:
    return pf.payout_line(
        sequence=sequence,
        citizen_id=f"cit_{sequence}",
        period=MAY,
        paid_on=PAID_ON,
        bank_code="011",
        account_number=account_number,
        account_holder=" 김광산 ",
        withholding=wh.withholding_for(table, PAID_ON, gross_won),
        memo=pf.payout_memo(MAY),
    )


def test_default_memo_is_exactly_the_banks_10_korean_characters() -> None:
    """`광산시민수당 2026-05` is 6 Hangul (12 bytes) + 8 ASCII = 20 CP949 bytes: it fits."""
    memo = pf.payout_memo(MAY)
    assert memo == "광산시민수당 2026-05"
    assert pf.memo_bytes(memo) == pf.MEMO_BYTES_MAX == 20
    assert pf.memo_prefix_violation("광산시민수당") is None


def test_a_long_prefix_is_cut_from_its_end_and_the_month_is_kept() -> None:
    """One Hangul too many: the prefix loses its last character, the month stays whole; the
    settings check names the cut before it ever happens."""
    assert pf.payout_memo(MAY, "광산구시민수당") == "광산구시민수 2026-05"
    assert pf.payout_memo(MAY, "Gwangsan allowance") == "Gwangsan all 2026-05"  # 12 + 8 bytes
    violation = pf.memo_prefix_violation("광산구시민수당")
    assert violation is not None and violation.code == "memo_too_long"


def test_a_prefix_that_cannot_make_a_memo_is_refused() -> None:
    """Blank, or a character CP949 cannot encode (an emoji): refused, not sent garbled."""
    for prefix in ("   ", "광산😀"):
        with pytest.raises(pf.MemoError):
            pf.payout_memo(MAY, prefix)
        violation = pf.memo_prefix_violation(prefix)
        assert violation is not None and violation.code == "memo_unusable"


def test_a_line_keeps_codes_as_digit_text_and_trims_the_holder() -> None:
    """The bank code stays `011`, the account number loses its hyphens, the name its spaces;
    with no withholding the amount transferred is the gross."""
    made = line()
    assert (made.bank_code, made.bank_name) == ("011", "NH농협은행")
    assert made.account_number == "30101234567" + "89" and made.account_holder == "김광산"
    assert made.amount_won == made.gross_won == 100_000
    assert made.withholding_kind is wh.WithholdingKind.NONE


def test_a_line_with_withholding_carries_gross_taxes_and_net() -> None:
    """100,000 won of business income: 96,700 is transferred, 3,000 + 300 withheld."""
    made = line(table=BUSINESS)
    assert (made.gross_won, made.income_tax_won, made.local_tax_won, made.amount_won) == (
        100_000,
        3_000,
        300,
        96_700,
    )
    assert pf.withholding_applies([made]) and not pf.withholding_applies([line()])


def test_details_that_would_bounce_never_become_a_line() -> None:
    """A stored payee that fails today's checks raises `PayeeRefused` with its reasons, so
    the use case holds the citizen back instead of sending a transfer the bank refuses."""
    with pytest.raises(pf.PayeeRefused) as raised:
        line(account_number="12-34")
    assert raised.value.citizen_id == "cit_1"
    assert [r.code for r in raised.value.refusals] == [PayeeReason.BAD_ACCOUNT_NUMBER]


def test_a_zero_line_is_not_a_transfer() -> None:
    with pytest.raises(ValueError):
        line(gross_won=0)


def test_totals_count_and_sum_every_column() -> None:
    """Three lines: count 3, and gross = transferred + taxes in total as in each line."""
    lines = [line(i, 10_000 * i, BUSINESS) for i in (1, 2, 3)]
    totals = pf.payout_totals(lines)
    assert totals.lines_count == 3
    assert totals.gross_won == 60_000
    assert totals.income_tax_won == 300 + 600 + 900
    assert totals.local_tax_won == 30 + 60 + 90
    assert totals.amount_won == 60_000 - 1_800 - 180
    assert pf.payout_totals([]) == pf.PayoutTotals(0, 0, 0, 0, 0)

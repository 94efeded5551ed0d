"""Bank codes as data and the payee checks: one stable reason code per field."""

from __future__ import annotations

import pytest
from allowance.domain import banks
from allowance.domain.banks import PayeeReason
from hypothesis import given, settings
from hypothesis import strategies as st


def test_packaged_table_names_its_source_and_keeps_leading_zeros() -> None:
    """The CSV ships in the package, says it comes from KFTC and must be checked, and its
    codes stay 3-digit text (`011`, not 11)."""
    table = banks.bank_table()
    assert "KFTC" in table.source and "checked" in table.source
    assert banks.bank_name("011") == "NH농협은행"
    assert banks.bank_name("034") == "광주은행"
    assert banks.bank_name("071") == "우체국"
    assert {"007", "012", "030", "045", "048"} <= set(table.banks)
    assert all(len(code) == 3 and code.isdigit() for code in table.banks)
    assert banks.bank_name("11") is None and banks.bank_name("999") is None


def test_a_broken_table_is_refused_when_read_not_when_a_payee_arrives() -> None:
    """A repeated code, a 2-digit code or a missing name raises at parse time."""
    header = "# note\ncode,name_ko,name_en\n"
    for body in ("011,A,a\n011,B,b\n", "11,A,a\n", "011,,a\n", ""):
        with pytest.raises(banks.BankTableError):
            banks.parse_bank_table(header + body)
    with pytest.raises(banks.BankTableError):
        banks.parse_bank_table("code,name\n011,A\n")


def test_account_numbers_lose_hyphens_and_spaces_but_nothing_else_is_guessed() -> None:
    """Hyphens and spaces go; letters, dots and full-width or Arabic-Indic digits are refused."""
    assert banks.normalise_account_number(" 301-0123-4567 89 ") == "30101234567" + "89"
    assert banks.normalise_account_number("") == ""
    for text in ("301.0123", "3O1", "３０１", "٣٠١", "301_0123", "301\t0123"):
        with pytest.raises(banks.AccountNumberError):
            banks.normalise_account_number(text)


def test_good_details_pass() -> None:
    """A known bank, 10 to 16 digits and a plain name give no refusal."""
    assert banks.check_payee("011", "301-0123-4567-89", " 김광산 ") == []
    assert banks.check_payee("090", "3333-01-2345678", "Kim Gwangsan") == []


@pytest.mark.parametrize(
    ("digits", "refused"),
    [(9, True), (10, False), (16, False), (17, True)],
)
def test_account_length_bounds_are_inclusive(digits: int, refused: bool) -> None:
    """Exactly 10 and 16 digits pass; one fewer or one more is `bad_account_number`."""
    refusals = banks.check_payee("004", "1" * digits, "김광산")
    assert [r.code for r in refusals] == ([PayeeReason.BAD_ACCOUNT_NUMBER] if refused else [])


def test_every_field_is_judged_and_each_names_itself_once() -> None:
    """All three fields wrong: three refusals, one per field, in field order."""
    refusals = banks.check_payee("000", "12-ab", "   ")
    assert [(r.field, r.code) for r in refusals] == [
        ("bank_code", PayeeReason.UNKNOWN_BANK),
        ("account_number", PayeeReason.BAD_ACCOUNT_NUMBER),
        ("account_holder", PayeeReason.HOLDER_MISSING),
    ]
    assert refusals[0].as_error()["code"] == "unknown_bank"


def test_holder_rules_blank_too_long_and_formula_or_control_characters() -> None:
    """50 characters pass, 51 do not; a name that would run as a spreadsheet formula or holds
    a control character is refused, since a bank file cannot escape it."""
    limit = banks.ACCOUNT_HOLDER_CHARS_MAX
    assert banks.check_payee("011", "1234567890", "가" * limit) == []
    too_long = banks.check_payee("011", "1234567890", "가" * (limit + 1))
    assert [r.code for r in too_long] == [PayeeReason.HOLDER_TOO_LONG]
    for name in ("=HYPERLINK(1)", "+82", "-김", "@x", "김\n철수", "김\x00"):
        codes = [r.code for r in banks.check_payee("011", "1234567890", name)]
        assert codes == [PayeeReason.HOLDER_BAD_CHARACTER], name
    assert banks.check_payee("011", "1234567890", "\t\n")[0].code == PayeeReason.HOLDER_MISSING


def test_a_bank_code_is_matched_exactly() -> None:
    """`11`, ` 011` and `0011` are not `011`: the code is 3-digit text, never a number."""
    for code in ("11", " 011", "0011", "０１１"):
        assert [r.code for r in banks.check_payee(code, "1234567890", "김")] == [
            PayeeReason.UNKNOWN_BANK
        ]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789- ", max_size=40))
def test_normalising_keeps_exactly_the_digits_in_order(text: str) -> None:
    """Whatever mix of digits, hyphens and spaces: the result is those digits, in order."""
    assert banks.normalise_account_number(text) == "".join(c for c in text if c.isdigit())

"""Korean bank codes and the checks a payee's bank details must pass before money moves.

The code table is policy data, not code: `allowance/policy_data/bank_codes.csv` (the KFTC
금융기관 코드 table, with its source note) is read once and parsed by a pure function, so a
new bank is a data change. A payee is checked here once, when the partner or finance staff
submit it, so that a month's payout file never meets a detail the bank would refuse: a
refused transfer costs the citizen a month.

Each rule answers with one stable reason code naming its field, first refusal per field
(partners see these codes in `payee.rejected`: add new ones, never rename).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from importlib import resources

BANK_CODE_DIGITS = 3
# Korean account numbers run from 10 (old regional bank and savings accounts) to 14 digits
# (post office, NongHyup local cooperatives, most banks today); 16 leaves room for virtual
# and securities-linked accounts. Policy values: widen here, nowhere else.
ACCOUNT_NUMBER_DIGITS_MIN = 10
ACCOUNT_NUMBER_DIGITS_MAX = 16
# The same bound as the payee API (`schemas.PayeeBody`): a holder's name as the bank has it.
ACCOUNT_HOLDER_CHARS_MAX = 50
# A cell beginning with one of these runs as a formula in a spreadsheet (CSV injection); a
# bank file cannot escape it with an apostrophe without changing the name, so it is refused.
FORMULA_LEADS = ("=", "+", "-", "@")
_DIGITS = frozenset("0123456789")
_ACCOUNT_SEPARATORS = frozenset("- ")
_BANK_CODES_FILE = "bank_codes.csv"


class PayeeReason(StrEnum):
    """Why bank details were refused; a contract with partners and the finance console."""

    UNKNOWN_BANK = "unknown_bank"
    BAD_ACCOUNT_NUMBER = "bad_account_number"
    HOLDER_MISSING = "holder_missing"
    HOLDER_TOO_LONG = "holder_too_long"
    HOLDER_BAD_CHARACTER = "holder_bad_character"


@dataclass(frozen=True)
class Refusal:
    """One refused field of a payee, for a problem+json `errors` item or `payee.rejected`."""

    field: str
    code: PayeeReason
    message: str

    def as_error(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "code": str(self.code)}


@dataclass(frozen=True)
class Bank:
    code: str
    name_ko: str
    name_en: str


@dataclass(frozen=True)
class BankTable:
    """The known institutions by code, and where the table comes from."""

    banks: Mapping[str, Bank]
    source: str = field(default="")

    def get(self, code: str) -> Bank | None:
        return self.banks.get(code)


class BankTableError(ValueError):
    """The bank code data file is malformed (a packaging or editing mistake)."""


def parse_bank_table(text: str) -> BankTable:
    """The table from the CSV text: `#` lines are the source note, then `code,name_ko,name_en`.

    Refuses (raises) a code that is not three digits, a blank name or a repeated code: a
    broken table must stop the service at start, not refuse every payee later.
    """
    note: list[str] = []
    body: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            note.append(line[1:].strip())
        elif line.strip():
            body.append(line)
    reader = csv.DictReader(io.StringIO("\n".join(body)))
    if reader.fieldnames != ["code", "name_ko", "name_en"]:
        raise BankTableError(f"bank table header is {reader.fieldnames}, not code,name_ko,name_en")
    banks: dict[str, Bank] = {}
    for number, row in enumerate(reader, start=2):
        code = (row["code"] or "").strip()
        name_ko = (row["name_ko"] or "").strip()
        if not _is_digits(code) or len(code) != BANK_CODE_DIGITS:
            raise BankTableError(f"bank table row {number}: code {code!r} is not 3 digits")
        if not name_ko:
            raise BankTableError(f"bank table row {number}: no Korean name for {code}")
        if code in banks:
            raise BankTableError(f"bank table row {number}: code {code} repeated")
        banks[code] = Bank(code, name_ko, (row["name_en"] or "").strip())
    if not banks:
        raise BankTableError("bank table has no rows")
    return BankTable(banks, " ".join(note))


@lru_cache(maxsize=1)
def bank_table() -> BankTable:
    """The packaged table (read once; it only changes with a release)."""
    data = resources.files("allowance").joinpath("policy_data", _BANK_CODES_FILE)
    return parse_bank_table(data.read_text(encoding="utf-8"))


def bank_name(code: str, table: BankTable | None = None) -> str | None:
    """The Korean name of bank `code` (`"011"` → `"NH농협은행"`), `None` if unknown."""
    bank = (table or bank_table()).get(code)
    return bank.name_ko if bank is not None else None


def _is_digits(text: str) -> bool:
    # Not str.isdigit: that accepts Arabic-Indic and full-width digits a bank file cannot hold.
    return bool(text) and all(c in _DIGITS for c in text)


class AccountNumberError(ValueError):
    """An account number with something other than digits, hyphens and spaces."""


def normalise_account_number(text: str) -> str:
    """The digits of an account number as people write it (`"123-456-78 90"` → `"1234567890"`).

    Hyphens and spaces are how banks print account numbers, so they are dropped; any other
    character (a letter, a full-width digit, a dot) is refused rather than dropped, because
    guessing at a typo sends money to someone else's account. Length is `check_payee`'s.
    """
    digits: list[str] = []
    for char in text:
        if char in _DIGITS:
            digits.append(char)
        elif char not in _ACCOUNT_SEPARATORS:
            raise AccountNumberError(f"an account number holds digits only, not {char!r}")
    return "".join(digits)


def check_payee(
    bank_code: str,
    account_number: str,
    account_holder: str,
    table: BankTable | None = None,
) -> list[Refusal]:
    """Why these bank details cannot be paid into; empty when they can.

    At most one refusal per field (the first rule it breaks), every field checked, so the
    citizen can fix all of them in one go. The account number is judged after
    `normalise_account_number`, the holder after trimming.
    """
    refusals: list[Refusal] = []
    if (table or bank_table()).get(bank_code) is None:
        refusals.append(
            Refusal(
                "bank_code",
                PayeeReason.UNKNOWN_BANK,
                f"{bank_code!r} is not a known 3-digit bank code (KFTC table)",
            )
        )
    account_refusal = _account_refusal(account_number)
    if account_refusal is not None:
        refusals.append(account_refusal)
    holder_refusal = _holder_refusal(account_holder)
    if holder_refusal is not None:
        refusals.append(holder_refusal)
    return refusals


def _account_refusal(account_number: str) -> Refusal | None:
    try:
        digits = normalise_account_number(account_number)
    except AccountNumberError as exc:
        return Refusal("account_number", PayeeReason.BAD_ACCOUNT_NUMBER, str(exc))
    if not ACCOUNT_NUMBER_DIGITS_MIN <= len(digits) <= ACCOUNT_NUMBER_DIGITS_MAX:
        return Refusal(
            "account_number",
            PayeeReason.BAD_ACCOUNT_NUMBER,
            f"an account number has {ACCOUNT_NUMBER_DIGITS_MIN} to"
            f" {ACCOUNT_NUMBER_DIGITS_MAX} digits, not {len(digits)}",
        )
    return None


def _holder_refusal(account_holder: str) -> Refusal | None:
    holder = account_holder.strip()
    if not holder:
        return Refusal("account_holder", PayeeReason.HOLDER_MISSING, "say whose account it is")
    if len(holder) > ACCOUNT_HOLDER_CHARS_MAX:
        return Refusal(
            "account_holder",
            PayeeReason.HOLDER_TOO_LONG,
            f"an account holder has at most {ACCOUNT_HOLDER_CHARS_MAX} characters",
        )
    if holder.startswith(FORMULA_LEADS) or any(not c.isprintable() for c in holder):
        return Refusal(
            "account_holder",
            PayeeReason.HOLDER_BAD_CHARACTER,
            "an account holder cannot begin with = + - @ or hold control characters",
        )
    return None

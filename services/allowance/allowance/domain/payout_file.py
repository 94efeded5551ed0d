"""One line of a month's payout file per citizen paid, and the file's control totals.

A line is built only from bank details that pass `banks.check_payee` today (a payee stored
under an older bank table may no longer): a line that exists can be sent to the bank. Codes
and account numbers are digit *text*, never numbers, so `011` stays `011` in every layout.
Where withholding applies the line carries gross, taxes and net; `amount_won` is always what
is transferred (the net). The writers (`allowance.payout_exports`) only lay lines out.

The memo (적요, what the citizen's passbook shows) is `광산시민수당 YYYY-MM`. Banks count a
memo in CP949 bytes (a Hangul syllable 2, an ASCII character 1) and show 10 Korean
characters, 20 bytes: the default memo is exactly 20. A configured prefix that makes it
longer is shortened from its end, one character at a time, and the month is always kept
whole, because the month is what lets a citizen tell two payments apart; a prefix that
leaves no room, or that CP949 cannot encode, is refused (`memo_prefix_violation` lets the
settings refuse it at start instead).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from allowance.domain.banks import (
    BankTable,
    Refusal,
    bank_name,
    check_payee,
    normalise_account_number,
)
from allowance.domain.calendar import Period
from allowance.domain.policy import Violation
from allowance.domain.withholding import Withholding, WithholdingKind

MEMO_BYTES_MAX = 20  # 10 Korean characters in CP949, as bank transfer memos count them
MEMO_ENCODING = "cp949"
MEMO_PREFIX_DEFAULT = "광산시민수당"
# Gwangsan-gu has about 400,000 residents and a month pays at most a few thousand of them; a
# file over this bound is a bug upstream, not a busy month.
PAYOUT_LINES_MAX = 50_000


class MemoError(ValueError):
    """The memo prefix cannot make a memo that fits the bank's limit."""


def memo_bytes(text: str) -> int:
    """How many bytes a bank counts for `text` (CP949); raises `MemoError` if unencodable."""
    try:
        return len(text.encode(MEMO_ENCODING))
    except UnicodeEncodeError as exc:
        raise MemoError(f"{text!r} holds a character a Korean bank memo cannot show") from exc


def payout_memo(period: Period, prefix: str = MEMO_PREFIX_DEFAULT) -> str:
    """`광산시민수당 2026-05`, shortened from the prefix's end when it would not fit."""
    suffix = f" {period}"
    kept = prefix.strip()
    memo_bytes(kept)  # refuse an unencodable prefix even when it would be cut away
    while kept and memo_bytes(kept + suffix) > MEMO_BYTES_MAX:
        kept = kept[:-1].rstrip()
    if not kept:
        raise MemoError(f"memo prefix {prefix!r} leaves no room before the month")
    return kept + suffix


def memo_prefix_violation(prefix: str, field: str = "payout_memo_prefix") -> Violation | None:
    """Why `prefix` is not a good memo prefix (it would be cut or refused); `None` if it fits."""
    try:
        memo = payout_memo(Period(2000, 1), prefix)
    except MemoError as exc:
        return Violation(field, str(exc), "memo_unusable")
    if memo != f"{prefix.strip()} 2000-01":
        return Violation(
            field,
            f"a memo is at most {MEMO_BYTES_MAX} bytes (10 Korean characters) with the month:"
            f" {prefix!r} would be cut to {memo[: -len(' 2000-01')]!r}",
            "memo_too_long",
        )
    return None


class PayeeRefused(ValueError):
    """Stored bank details no longer pass the checks: hold the citizen back, do not send."""

    def __init__(self, citizen_id: str, refusals: Sequence[Refusal]) -> None:
        self.citizen_id = citizen_id
        self.refusals = tuple(refusals)
        codes = ", ".join(f"{r.field}: {r.code}" for r in refusals)
        super().__init__(f"payee of {citizen_id} refused ({codes})")


@dataclass(frozen=True)
class PayoutLine:
    """One transfer. Built by `payout_line`, which checks the payee; invariants asserted."""

    sequence: int
    citizen_id: str
    period: Period
    paid_on: date
    bank_code: str
    bank_name: str
    account_number: str
    account_holder: str
    memo: str
    gross_won: int
    taxable_won: int
    income_tax_won: int
    local_tax_won: int
    amount_won: int
    withholding_kind: WithholdingKind

    def __post_init__(self) -> None:
        if self.sequence < 1:
            raise ValueError("a line's sequence number starts at 1")
        if not (self.bank_code.isascii() and self.bank_code.isdigit()):
            raise ValueError("a bank code is digit text")
        if not (self.account_number.isascii() and self.account_number.isdigit()):
            raise ValueError("an account number is digit text")
        if self.amount_won <= 0:
            raise ValueError("a line transfers a positive amount")
        if self.gross_won != self.amount_won + self.income_tax_won + self.local_tax_won:
            raise ValueError("gross must equal the amount transferred plus the taxes")
        if memo_bytes(self.memo) > MEMO_BYTES_MAX:
            raise ValueError(f"memo {self.memo!r} is over {MEMO_BYTES_MAX} bytes")


def payout_line(
    *,
    sequence: int,
    citizen_id: str,
    period: Period,
    paid_on: date,
    bank_code: str,
    account_number: str,
    account_holder: str,
    withholding: Withholding,
    memo: str,
    table: BankTable | None = None,
) -> PayoutLine:
    """The line for one citizen, or `PayeeRefused` when the details would bounce."""
    refusals = check_payee(bank_code, account_number, account_holder, table)
    name = bank_name(bank_code, table)
    if refusals or name is None:
        raise PayeeRefused(citizen_id, refusals)
    return PayoutLine(
        sequence=sequence,
        citizen_id=citizen_id,
        period=period,
        paid_on=paid_on,
        bank_code=bank_code,
        bank_name=name,
        account_number=normalise_account_number(account_number),
        account_holder=account_holder.strip(),
        memo=memo,
        gross_won=withholding.gross_won,
        taxable_won=withholding.taxable_won,
        income_tax_won=withholding.income_tax_won,
        local_tax_won=withholding.local_tax_won,
        amount_won=withholding.net_won,
        withholding_kind=withholding.kind,
    )


@dataclass(frozen=True)
class PayoutTotals:
    """The control totals a bank and the district compare before they release a file."""

    lines_count: int
    gross_won: int
    income_tax_won: int
    local_tax_won: int
    amount_won: int

    def __post_init__(self) -> None:
        if self.gross_won != self.amount_won + self.income_tax_won + self.local_tax_won:
            raise ValueError("total gross must equal total transferred plus total taxes")


def payout_totals(lines: Sequence[PayoutLine]) -> PayoutTotals:
    """Count and sums of `lines`; refuses more than `PAYOUT_LINES_MAX` lines."""
    if len(lines) > PAYOUT_LINES_MAX:
        raise ValueError(f"a payout file has at most {PAYOUT_LINES_MAX:,} lines")
    return PayoutTotals(
        lines_count=len(lines),
        gross_won=sum(line.gross_won for line in lines),
        income_tax_won=sum(line.income_tax_won for line in lines),
        local_tax_won=sum(line.local_tax_won for line in lines),
        amount_won=sum(line.amount_won for line in lines),
    )


def withholding_applies(lines: Sequence[PayoutLine]) -> bool:
    """Whether any line withholds (then the file shows gross, taxes and net)."""
    return any(line.withholding_kind is not WithholdingKind.NONE for line in lines)

"""The programme's double-entry ledger: accounts and the legs of every transaction kind.

Sign convention: an entry's `amount_won` is positive for a debit and negative for a credit;
every transaction's entries sum to zero (Postgres checks it at commit). The accounts follow
budgetary (fund) accounting, as in the US Standard General Ledger's 4000 series that public
budget offices use: the appropriation is a debit-normal resource account, and the budget
then flows through credit-normal accounts that each say how far the money has got —
available → reserved (for a posting) → payable (to a citizen) → payout due (in a closed
month's payout file) → paid. Memorandum accounts record what the monthly cap held back
without moving budget. docs/decisions/0005-ledger-accounts.md lists every transaction
kind with its legs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from allowance.domain.budget import Drawdown
from allowance.domain.calendar import Period
from allowance.domain.money import CapSplit


class Account(StrEnum):
    BUDGET_APPROPRIATION = "budget_appropriation"
    BUDGET_UNFUNDED = "budget_unfunded"
    BUDGET_AVAILABLE = "budget_available"
    BUDGET_RESERVED = "budget_reserved"
    ALLOWANCE_PAYABLE = "allowance_payable"
    ALLOWANCE_PAYOUT_DUE = "allowance_payout_due"
    ALLOWANCE_PAID = "allowance_paid"
    ALLOWANCE_CAPPED = "allowance_capped"
    ALLOWANCE_CAPPED_OFFSET = "allowance_capped_offset"
    INCOME_TAX_PAYABLE = "income_tax_payable"
    LOCAL_INCOME_TAX_PAYABLE = "local_income_tax_payable"
    ALLOWANCE_TRANSFER_FAILED = "allowance_transfer_failed"


Side = Literal["debit", "credit"]
Party = Literal["none", "posting", "citizen"]


@dataclass(frozen=True)
class AccountInfo:
    code: Account
    name_ko: str
    name_en: str
    normal_side: Side
    party: Party
    description: str


ACCOUNTS: Mapping[Account, AccountInfo] = {
    info.code: info
    for info in (
        AccountInfo(
            Account.BUDGET_APPROPRIATION,
            "예산 배정액",
            "Budget appropriation",
            "debit",
            "none",
            "The programme budget of the fiscal year as appropriated; raised or cut only by"
            " new entries.",
        ),
        AccountInfo(
            Account.BUDGET_UNFUNDED,
            "예산 부족액",
            "Unfunded obligations",
            "debit",
            "none",
            "Allowance owed for work done when neither the posting's reservation nor the"
            " available budget could fund it; the next budget increase covers it first.",
        ),
        AccountInfo(
            Account.BUDGET_AVAILABLE,
            "가용 예산",
            "Budget available",
            "credit",
            "none",
            "Budget not yet reserved for any posting.",
        ),
        AccountInfo(
            Account.BUDGET_RESERVED,
            "예약 예산",
            "Budget reserved",
            "credit",
            "posting",
            "Pending reservations, per posting: capacity × the full-shift payout per seat.",
        ),
        AccountInfo(
            Account.ALLOWANCE_PAYABLE,
            "미지급 수당",
            "Allowance payable",
            "credit",
            "citizen",
            "Allowance accrued for attended shifts, per citizen and statement month.",
        ),
        AccountInfo(
            Account.ALLOWANCE_PAYOUT_DUE,
            "지급 예정 수당",
            "Allowance payout due",
            "credit",
            "citizen",
            "Payable moved into a closed month's payout file, awaiting the bank transfer.",
        ),
        AccountInfo(
            Account.ALLOWANCE_PAID,
            "지급 완료 수당",
            "Allowance paid",
            "credit",
            "citizen",
            "Payouts the finance office marked as transferred.",
        ),
        AccountInfo(
            Account.ALLOWANCE_CAPPED,
            "상한 초과액(비망)",
            "Allowance capped (memorandum)",
            "credit",
            "citizen",
            "Earned over the monthly cap and therefore not paid, per citizen and month.",
        ),
        AccountInfo(
            Account.ALLOWANCE_CAPPED_OFFSET,
            "상한 초과 대조(비망)",
            "Capped offset (memorandum)",
            "debit",
            "none",
            "The other side of the capped memorandum entries; always equals their total.",
        ),
        AccountInfo(
            Account.INCOME_TAX_PAYABLE,
            "예수 소득세",
            "Income tax withheld payable",
            "credit",
            "citizen",
            "Income tax withheld from payouts at close, per citizen, until the district remits it.",
        ),
        AccountInfo(
            Account.LOCAL_INCOME_TAX_PAYABLE,
            "예수 지방소득세",
            "Local income tax withheld payable",
            "credit",
            "citizen",
            "Local income tax withheld from payouts at close, per citizen, until remitted.",
        ),
        AccountInfo(
            Account.ALLOWANCE_TRANSFER_FAILED,
            "이체불능 수당",
            "Allowance transfer failed",
            "credit",
            "citizen",
            "The net of a payout line the bank reported failed; carried into the next"
            " close's payout file.",
        ),
    )
}


class TxnKind(StrEnum):
    BUDGET_APPROPRIATED = "budget_appropriated"
    BUDGET_CUT = "budget_cut"
    RESERVATION = "reservation"
    RESERVATION_RELEASE = "reservation_release"
    PAYOUT_ACCRUAL = "payout_accrual"
    PAYOUT_REVERSAL = "payout_reversal"
    PAYOUT_DUE = "payout_due"
    PAYOUT_PAID = "payout_paid"
    PAYOUT_FAILED = "payout_failed"
    FAILED_CARRY = "failed_carry"


# Transaction kinds as finance staff read them (spreadsheets and the console; the codes stay
# in their own columns for machines).
TXN_KIND_KO: Mapping[str, str] = {
    TxnKind.BUDGET_APPROPRIATED: "예산 배정(증액)",
    TxnKind.BUDGET_CUT: "예산 감액",
    TxnKind.RESERVATION: "근무 예산 예약",
    TxnKind.RESERVATION_RELEASE: "예약 해제",
    TxnKind.PAYOUT_ACCRUAL: "수당 발생",
    TxnKind.PAYOUT_REVERSAL: "수당 발생 취소(정정)",
    TxnKind.PAYOUT_DUE: "지급 확정(마감)",
    TxnKind.PAYOUT_PAID: "지급 완료(이체)",
    TxnKind.PAYOUT_FAILED: "이체 실패(이월)",
    TxnKind.FAILED_CARRY: "이체 실패분 재지급",
}


def memo_ko(kind: str, period: str, citizen_id: str | None, posting_id: str | None) -> str:
    """A Korean memo (적요) for a ledger line, from its kind and parties (the stored memo is
    English, for operators; this one is for the district's finance staff)."""
    year, _, month = period.partition("-")
    when = f"{year}년 {int(month)}월" if month.isdigit() else period
    what = TXN_KIND_KO.get(kind, kind)
    party = (
        f" · 시민 {citizen_id}" if citizen_id else (f" · 공고 {posting_id}" if posting_id else "")
    )
    return f"{when} {what}{party}"


class UnbalancedTransactionError(ValueError):
    """A transaction whose legs do not sum to zero (a bug: refused before the database)."""


@dataclass(frozen=True)
class Leg:
    """One entry: `amount_won` > 0 debits `account`, < 0 credits it. `name` is unique
    within the event that caused it (the database refuses a second (event, leg))."""

    name: str
    account: Account
    amount_won: int
    citizen_id: str | None = None
    posting_id: str | None = None

    @property
    def debit_won(self) -> int:
        return max(self.amount_won, 0)

    @property
    def credit_won(self) -> int:
        return max(-self.amount_won, 0)


def debit(
    name: str,
    account: Account,
    amount_won: int,
    *,
    citizen_id: str | None = None,
    posting_id: str | None = None,
) -> Leg:
    if amount_won < 0:
        raise ValueError("a debit amount is not negative")
    return Leg(name, account, amount_won, citizen_id, posting_id)


def credit(
    name: str,
    account: Account,
    amount_won: int,
    *,
    citizen_id: str | None = None,
    posting_id: str | None = None,
) -> Leg:
    if amount_won < 0:
        raise ValueError("a credit amount is not negative")
    return Leg(name, account, -amount_won, citizen_id, posting_id)


@dataclass(frozen=True)
class LedgerTransaction:
    """A balanced set of legs, all in one fiscal year and statement month."""

    kind: TxnKind
    fiscal_year: int
    period: Period
    memo: str
    legs: tuple[Leg, ...]

    def __post_init__(self) -> None:
        if len(self.legs) < 2:
            raise UnbalancedTransactionError("a transaction has at least two legs")
        names = [leg.name for leg in self.legs]
        if len(set(names)) != len(names):
            raise ValueError(f"leg names repeat in {names}")
        for leg in self.legs:
            if leg.amount_won == 0:
                raise ValueError(f"leg {leg.name} moves nothing")
            party = ACCOUNTS[leg.account].party
            if party == "citizen" and not leg.citizen_id:
                raise ValueError(f"leg {leg.name} on {leg.account} needs a citizen")
            if party == "posting" and not leg.posting_id:
                raise ValueError(f"leg {leg.name} on {leg.account} needs a posting")
        total = sum(leg.amount_won for leg in self.legs)
        if total != 0:
            raise UnbalancedTransactionError(f"{self.kind} legs sum to {total} won, not 0")

    @property
    def debits_won(self) -> int:
        return sum(leg.debit_won for leg in self.legs)


def _transaction(
    kind: TxnKind, fiscal_year: int, period: Period, memo: str, legs: Iterable[Leg]
) -> LedgerTransaction | None:
    """The transaction of the non-zero legs, or None when nothing moves."""
    moving = tuple(leg for leg in legs if leg.amount_won != 0)
    if not moving:
        return None
    return LedgerTransaction(kind, fiscal_year, period, memo, moving)


def budget_change(
    fiscal_year: int,
    period: Period,
    delta_won: int,
    unfunded_won: int,
    memo: str,
    prefix: str = "budget",
) -> LedgerTransaction | None:
    """Raise (delta > 0) or cut (delta < 0) the appropriation. A raise first covers any
    unfunded obligations; a cut comes out of the available budget only (the caller
    refuses a cut larger than what is available)."""
    if delta_won > 0:
        covered = min(delta_won, max(unfunded_won, 0))
        return _transaction(
            TxnKind.BUDGET_APPROPRIATED,
            fiscal_year,
            period,
            memo,
            (
                debit(f"{prefix}:appropriation", Account.BUDGET_APPROPRIATION, delta_won),
                credit(f"{prefix}:unfunded_cover", Account.BUDGET_UNFUNDED, covered),
                credit(f"{prefix}:available", Account.BUDGET_AVAILABLE, delta_won - covered),
            ),
        )
    if delta_won < 0:
        cut = -delta_won
        return _transaction(
            TxnKind.BUDGET_CUT,
            fiscal_year,
            period,
            memo,
            (
                debit(f"{prefix}:available", Account.BUDGET_AVAILABLE, cut),
                credit(f"{prefix}:appropriation", Account.BUDGET_APPROPRIATION, cut),
            ),
        )
    return None


def reservation(
    fiscal_year: int,
    period: Period,
    posting_id: str,
    amount_won: int,
    memo: str,
    prefix: str = "reserve",
) -> LedgerTransaction | None:
    """Available → reserved for a posting (the pending half of the two-phase budget)."""
    return _transaction(
        TxnKind.RESERVATION,
        fiscal_year,
        period,
        memo,
        (
            debit(
                f"{prefix}:available", Account.BUDGET_AVAILABLE, amount_won, posting_id=posting_id
            ),
            credit(
                f"{prefix}:reserved", Account.BUDGET_RESERVED, amount_won, posting_id=posting_id
            ),
        ),
    )


def release(
    fiscal_year: int,
    period: Period,
    posting_id: str,
    amount_won: int,
    memo: str,
    prefix: str = "release",
) -> LedgerTransaction | None:
    """Reserved → available: a no-show's seat, a smaller update, or what a closed or
    cancelled posting did not use."""
    return _transaction(
        TxnKind.RESERVATION_RELEASE,
        fiscal_year,
        period,
        memo,
        (
            debit(f"{prefix}:reserved", Account.BUDGET_RESERVED, amount_won, posting_id=posting_id),
            credit(
                f"{prefix}:available", Account.BUDGET_AVAILABLE, amount_won, posting_id=posting_id
            ),
        ),
    )


def _capped_memo(prefix: str, capped_won: int, citizen_id: str, posting_id: str) -> list[Leg]:
    """The memorandum pair recording `capped_won` held back by the cap (negative: released)."""
    return [
        Leg(f"{prefix}:capped", Account.ALLOWANCE_CAPPED, -capped_won, citizen_id, posting_id),
        Leg(
            f"{prefix}:capped_offset",
            Account.ALLOWANCE_CAPPED_OFFSET,
            capped_won,
            posting_id=posting_id,
        ),
    ]


def accrual(
    fiscal_year: int,
    period: Period,
    posting_id: str,
    citizen_id: str,
    split: CapSplit,
    source: Drawdown,
    memo: str,
    prefix: str = "accrual",
) -> LedgerTransaction | None:
    """A shift's gross is drawn (reservation first); the payable part is credited to the
    citizen, the capped part goes back to the available budget and is recorded on the
    capped memorandum account."""
    if split.gross_won < 0 or source.total_won != split.gross_won:
        raise ValueError("an accrual draws exactly its (non-negative) gross")
    return _transaction(
        TxnKind.PAYOUT_ACCRUAL,
        fiscal_year,
        period,
        memo,
        (
            debit(
                f"{prefix}:reserved_draw",
                Account.BUDGET_RESERVED,
                source.from_reserved_won,
                posting_id=posting_id,
            ),
            debit(
                f"{prefix}:available_draw",
                Account.BUDGET_AVAILABLE,
                source.from_available_won,
                posting_id=posting_id,
            ),
            debit(
                f"{prefix}:unfunded_draw",
                Account.BUDGET_UNFUNDED,
                source.from_unfunded_won,
                posting_id=posting_id,
            ),
            credit(
                f"{prefix}:payable",
                Account.ALLOWANCE_PAYABLE,
                split.payable_won,
                citizen_id=citizen_id,
                posting_id=posting_id,
            ),
            credit(
                f"{prefix}:capped_return",
                Account.BUDGET_AVAILABLE,
                split.capped_won,
                posting_id=posting_id,
            ),
            *_capped_memo(prefix, split.capped_won, citizen_id, posting_id),
        ),
    )


def reversal(
    fiscal_year: int,
    period: Period,
    posting_id: str,
    citizen_id: str,
    split: CapSplit,
    *,
    to_reservation: bool,
    uncap_from_available_won: int,
    uncap_from_unfunded_won: int,
    memo: str,
    prefix: str = "reversal",
) -> LedgerTransaction | None:
    """Take back a line's gross (`split.gross_won` < 0): it returns to the posting's
    reservation while that is open, else to the available budget. The payable total falls
    by `-split.payable_won`; the rest (`-split.capped_won`) is money the cap had held back
    from the citizen's other shifts of the month and now becomes payable to them again: it
    comes out of the available budget it was returned to."""
    gross = -split.gross_won
    payable = -split.payable_won
    uncapped = -split.capped_won
    if gross < 0 or payable < 0 or uncapped < 0:
        raise ValueError("a reversal's split is not positive")
    if uncap_from_available_won + uncap_from_unfunded_won != uncapped:
        raise ValueError("the uncapped money must be drawn in full")
    back = (
        credit(f"{prefix}:reserved_return", Account.BUDGET_RESERVED, gross, posting_id=posting_id)
        if to_reservation
        else credit(
            f"{prefix}:available_return", Account.BUDGET_AVAILABLE, gross, posting_id=posting_id
        )
    )
    return _transaction(
        TxnKind.PAYOUT_REVERSAL,
        fiscal_year,
        period,
        memo,
        (
            back,
            debit(
                f"{prefix}:payable",
                Account.ALLOWANCE_PAYABLE,
                payable,
                citizen_id=citizen_id,
                posting_id=posting_id,
            ),
            debit(
                f"{prefix}:uncap_available",
                Account.BUDGET_AVAILABLE,
                uncap_from_available_won,
                posting_id=posting_id,
            ),
            debit(
                f"{prefix}:uncap_unfunded",
                Account.BUDGET_UNFUNDED,
                uncap_from_unfunded_won,
                posting_id=posting_id,
            ),
            *_capped_memo(prefix, split.capped_won, citizen_id, posting_id),
        ),
    )


def payout_due(
    fiscal_year: int,
    period: Period,
    citizen_id: str,
    amount_won: int,
    memo: str,
    prefix: str,
    *,
    income_tax_won: int = 0,
    local_tax_won: int = 0,
) -> LedgerTransaction | None:
    """Month close: a citizen's payable (this and earlier months) moves into the payout
    file; what is withheld from it (`income_tax_won`, `local_tax_won`) goes to the tax
    payable accounts instead, so payout due holds exactly the net to transfer."""
    net_won = amount_won - income_tax_won - local_tax_won
    if min(income_tax_won, local_tax_won, net_won) < 0:
        raise ValueError("taxes are not negative and never exceed the payout")
    return _transaction(
        TxnKind.PAYOUT_DUE,
        fiscal_year,
        period,
        memo,
        (
            debit(
                f"{prefix}:payable", Account.ALLOWANCE_PAYABLE, amount_won, citizen_id=citizen_id
            ),
            credit(
                f"{prefix}:payout_due",
                Account.ALLOWANCE_PAYOUT_DUE,
                net_won,
                citizen_id=citizen_id,
            ),
            credit(
                f"{prefix}:income_tax",
                Account.INCOME_TAX_PAYABLE,
                income_tax_won,
                citizen_id=citizen_id,
            ),
            credit(
                f"{prefix}:local_income_tax",
                Account.LOCAL_INCOME_TAX_PAYABLE,
                local_tax_won,
                citizen_id=citizen_id,
            ),
        ),
    )


def payout_failed(
    fiscal_year: int, period: Period, citizen_id: str, amount_won: int, memo: str, prefix: str
) -> LedgerTransaction | None:
    """The bank could not make a line's transfer: its net leaves payout due (so mark-paid
    never pays it) for the transfer-failed account, which the next close carries."""
    return _transaction(
        TxnKind.PAYOUT_FAILED,
        fiscal_year,
        period,
        memo,
        (
            debit(
                f"{prefix}:payout_due",
                Account.ALLOWANCE_PAYOUT_DUE,
                amount_won,
                citizen_id=citizen_id,
            ),
            credit(
                f"{prefix}:transfer_failed",
                Account.ALLOWANCE_TRANSFER_FAILED,
                amount_won,
                citizen_id=citizen_id,
            ),
        ),
    )


def failed_carry(
    fiscal_year: int, period: Period, citizen_id: str, amount_won: int, memo: str, prefix: str
) -> LedgerTransaction | None:
    """A later close puts a failed transfer's net back into a payout file, as it is: it
    was taxed when it was first due, so nothing is withheld again."""
    return _transaction(
        TxnKind.FAILED_CARRY,
        fiscal_year,
        period,
        memo,
        (
            debit(
                f"{prefix}:transfer_failed",
                Account.ALLOWANCE_TRANSFER_FAILED,
                amount_won,
                citizen_id=citizen_id,
            ),
            credit(
                f"{prefix}:payout_due",
                Account.ALLOWANCE_PAYOUT_DUE,
                amount_won,
                citizen_id=citizen_id,
            ),
        ),
    )


def payout_paid(
    fiscal_year: int, period: Period, citizen_id: str, amount_won: int, memo: str, prefix: str
) -> LedgerTransaction | None:
    """The bank transfer of a closed month's payout file was made."""
    return _transaction(
        TxnKind.PAYOUT_PAID,
        fiscal_year,
        period,
        memo,
        (
            debit(
                f"{prefix}:payout_due",
                Account.ALLOWANCE_PAYOUT_DUE,
                amount_won,
                citizen_id=citizen_id,
            ),
            credit(f"{prefix}:paid", Account.ALLOWANCE_PAID, amount_won, citizen_id=citizen_id),
        ),
    )


@dataclass(frozen=True)
class BudgetFigures:
    """A fiscal year's budget as finance reads it, every figure a positive amount.

    `total + unfunded = available + reserved + accrued + paid` always holds (accrued =
    payable + payout due + transfer failed + withheld taxes not yet remitted: owed, not
    yet transferred); the capped memorandum does not enter it.
    """

    fiscal_year: int
    total_won: int
    unfunded_won: int
    available_won: int
    reserved_won: int
    payable_won: int
    payout_due_won: int
    paid_won: int
    capped_won: int
    transfer_failed_won: int = 0
    withheld_won: int = 0

    @property
    def accrued_won(self) -> int:
        return self.payable_won + self.payout_due_won + self.transfer_failed_won + self.withheld_won

    def balanced(self) -> bool:
        return self.total_won + self.unfunded_won == (
            self.available_won + self.reserved_won + self.accrued_won + self.paid_won
        )


def budget_figures(fiscal_year: int, balances: Mapping[str, int]) -> BudgetFigures:
    """From signed (debit-positive) account balances of one fiscal year."""

    def natural(account: Account) -> int:
        signed = int(balances.get(account.value, 0))
        return signed if ACCOUNTS[account].normal_side == "debit" else -signed

    return BudgetFigures(
        fiscal_year=fiscal_year,
        total_won=natural(Account.BUDGET_APPROPRIATION),
        unfunded_won=natural(Account.BUDGET_UNFUNDED),
        available_won=natural(Account.BUDGET_AVAILABLE),
        reserved_won=natural(Account.BUDGET_RESERVED),
        payable_won=natural(Account.ALLOWANCE_PAYABLE),
        payout_due_won=natural(Account.ALLOWANCE_PAYOUT_DUE),
        paid_won=natural(Account.ALLOWANCE_PAID),
        capped_won=natural(Account.ALLOWANCE_CAPPED),
        transfer_failed_won=natural(Account.ALLOWANCE_TRANSFER_FAILED),
        withheld_won=natural(Account.INCOME_TAX_PAYABLE)
        + natural(Account.LOCAL_INCOME_TAX_PAYABLE),
    )

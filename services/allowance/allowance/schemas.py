"""Request and response bodies of the allowance API (pydantic; write bodies refuse unknown
fields; their text fields are `shared.schemas.NonBlank`: trimmed, never only spaces)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, computed_field, model_validator

from allowance.domain.citizens import CITIZEN_ID_PATTERN
from shared.schemas import Day, NonBlank, StrictBody
from shared.web import Page

PERIOD_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
CITIZEN_PATTERN = r"^[A-Za-z0-9_-]{1,100}$"
# A payee is written only under a citizen id (`ctz_…`); anything else is a 400.
CITIZEN_REF_PATTERN = CITIZEN_ID_PATTERN
YEAR_MIN, YEAR_MAX = 2000, 9998
BUDGET_WON_MAX = 10**13  # ten trillion won: far above any district programme
Source = Annotated[str, NonBlank(500)]  # where a policy figure comes from
Note = Annotated[str, NonBlank(500, empty_ok=True)]  # why a table changed ("" for none)


class _Write(StrictBody):
    """A write body: strict JSON types, unknown fields refused (shared/schemas.py)."""


# --- admin: policy -----------------------------------------------------------------------


class RateIn(_Write):
    effective_from: Day = Field(description="first Seoul date the rate applies to")
    hourly_rate_won: int = Field(ge=1, le=1_000_000)
    source: Source = Field(description="where the figure comes from")


class RatesBody(_Write):
    rates: list[RateIn] = Field(min_length=1, max_length=200)
    note: Note = ""


class RatesOut(BaseModel):
    version: int
    set_at: datetime
    set_by: str
    note: str
    rates: list[RateIn]


class MinimumWageIn(_Write):
    year: int = Field(ge=YEAR_MIN, le=YEAR_MAX)
    hourly_won: int = Field(ge=1, le=1_000_000)
    source: Source


class MinimumWagesBody(_Write):
    minimum_wages: list[MinimumWageIn] = Field(min_length=1, max_length=200)
    note: Note = ""


class RateWarning(BaseModel):
    field: str
    message: str
    code: str


class MinimumWagesOut(BaseModel):
    version: int
    set_at: datetime
    set_by: str
    note: str
    minimum_wages: list[MinimumWageIn]
    rate_warnings: list[RateWarning] = Field(
        default_factory=list,
        description="rates in force that are below a minimum wage of this table: postings"
        " in those years are refused with `rate_below_minimum_wage` until the rates change",
    )


class CapIn(_Write):
    year: int = Field(ge=YEAR_MIN, le=YEAR_MAX)
    weekly_hours_max: int = Field(ge=1, le=168, description="booked hours per ISO week")
    monthly_amount_max_won: int = Field(ge=0, le=100_000_000, description="won per Seoul month")
    source: Source


class CapsBody(_Write):
    caps: list[CapIn] = Field(min_length=1, max_length=200)
    note: Note = ""


class CapsOut(BaseModel):
    version: int
    set_at: datetime
    set_by: str
    note: str
    caps: list[CapIn]
    rule: str = (
        "a year without its own row uses the latest earlier row (carried forward); a year"
        " before the table uses the earliest row"
    )


class WithholdingIn(_Write):
    """Rates in basis points (1 % = 100), integers 0–10000; fields a kind does not use are 0."""

    effective_from: Day = Field(description="first Seoul payment (close) date it applies to")
    kind: Literal["none", "business_income_3_3", "other_income_8_8"]
    source: Source = Field(description="where the rule comes from")
    income_tax_rate_bp: int = Field(default=0, description="of the taxable amount")
    local_tax_rate_bp: int = Field(default=0, description="of the income tax")
    deemed_expense_rate_bp: int = Field(default=0, description="other income: deemed expenses")
    taxable_exempt_max_won: int = Field(
        default=0, description="other income: nothing withheld at this taxable amount or less"
    )
    income_tax_exempt_below_won: int = Field(
        default=0, description="an income tax below this is not withheld (소액부징수)"
    )


class WithholdingBody(_Write):
    withholding: list[WithholdingIn] = Field(min_length=1, max_length=100)
    note: Note = ""


class WithholdingOut(BaseModel):
    version: int
    set_at: datetime
    set_by: str
    note: str
    withholding: list[WithholdingIn]
    in_force: WithholdingIn | None = Field(description="the entry that applies today (Seoul)")
    rule: str = (
        "applied at month close to each citizen's payout; taxes are truncated below 10 won"
        " (10원 미만 절사). The district's tax office must confirm which kind applies"
    )


# --- budget ------------------------------------------------------------------------------


class BudgetBody(_Write):
    # strict: `true`/`false` are not numbers of won (pydantic would read them as 1/0).
    fiscal_year: int = Field(ge=YEAR_MIN, le=YEAR_MAX)
    amount_won: int = Field(
        ge=0, le=BUDGET_WON_MAX, strict=True, description="the new total appropriation"
    )
    note: Annotated[str, NonBlank(300)] = Field(description="why (e.g. the council decision)")
    previous_amount_won: int | None = Field(
        default=None,
        ge=0,
        strict=True,
        description="optimistic concurrency: refuse (409) unless the total is still this",
    )


class BudgetOut(BaseModel):
    """`total + unfunded = available + reserved + accrued + paid`, to the won."""

    fiscal_year: int
    total_won: int
    reserved_won: int
    accrued_won: int = Field(description="payable + payout due: owed, not yet transferred")
    paid_won: int
    available_won: int
    unfunded_won: int = Field(description="owed without budget; the next raise covers it")
    payable_won: int
    payout_due_won: int
    capped_won: int = Field(description="memorandum: earned over the monthly cap, not paid")
    transfer_failed_won: int = Field(
        default=0, description="nets the bank could not transfer, carried to the next close"
    )
    withheld_won: int = Field(
        default=0, description="income and local income tax withheld, not yet remitted"
    )
    as_of: datetime | None = None


class BudgetChangeOut(BaseModel):
    transaction_id: int
    previous_total_won: int
    new_total_won: int
    note: str
    set_by: str
    set_at: datetime


class AdminBudgetOut(BudgetOut):
    history: list[BudgetChangeOut]


# --- ledger ------------------------------------------------------------------------------


class LedgerEntryOut(BaseModel):
    entry_id: int
    transaction_id: int
    kind: str
    fiscal_year: int
    period: str
    posted_at: datetime
    occurred_at: datetime
    account: str
    account_name: str
    citizen_id: str | None
    posting_id: str | None
    leg: str
    amount_won: int = Field(description="signed: positive debit, negative credit")
    debit_won: int
    credit_won: int
    source_event_id: str
    memo: str


class LedgerTotals(BaseModel):
    entries_count: int
    debit_won: int
    credit_won: int


class LedgerPage(Page[LedgerEntryOut]):
    totals: LedgerTotals = Field(description="of the whole filtered ledger, not just this page")
    snapshot: str = Field(description="pages show exactly what was committed at the first page")

    @computed_field(  # type: ignore[prop-decorator]
        description="deprecated: the same list as `items` (kept for existing clients)",
        deprecated=True,
    )
    @property
    def entries(self) -> list[LedgerEntryOut]:
        return self.items


class TrialBalanceLine(BaseModel):
    account: str
    name_ko: str
    name_en: str
    normal_side: Literal["debit", "credit"]
    debit_won: int
    credit_won: int
    balance_won: int = Field(description="signed: positive debit balance")


class TrialBalanceOut(BaseModel):
    fiscal_year: int | None
    as_of: datetime | None
    accounts: list[TrialBalanceLine]
    debit_won: int
    credit_won: int
    balanced: bool


# --- periods -----------------------------------------------------------------------------


class PeriodOut(BaseModel):
    period: str
    status: Literal["open", "closed"]
    closed_at: datetime | None = None
    closed_by: str | None = None
    citizens_count: int | None = None
    lines_count: int | None = None
    payable_won: int | None = None
    payout_won: int | None = None
    payout_count: int | None = None
    held_back_count: int | None = None
    held_back_won: int | None = None
    paid_at: datetime | None = None


class StatementOut(BaseModel):
    period: str
    citizen_id: str
    lines_count: int
    minutes_paid: int
    gross_won: int
    capped_won: int
    payable_won: int
    adjustment_won: int = Field(description="part of payable that adjusts a closed month")
    adjustment_periods: list[str]
    balance_won: int | None = Field(description="closed: payable of this and earlier months")
    payout_won: int | None
    carried_forward_won: int | None
    held_back: bool
    note: str
    # Added by issue 16 (null for an open month): the close's payout line and its transfer.
    withholding_kind: str | None = Field(None, description="the withholding applied at close")
    payout_gross_won: int | None = Field(None, description="paid out before withholding")
    income_tax_won: int | None = Field(None, description="income tax withheld (소득세)")
    local_income_tax_won: int | None = Field(None, description="local income tax (지방소득세)")
    net_won: int | None = Field(None, description="payout_gross_won less both taxes")
    failed_carried_in_won: int | None = Field(
        None, description="an earlier month's failed transfer paid again in this month's file"
    )
    transfer_won: int | None = Field(
        None, description="the payout file's amount: net_won + failed_carried_in_won"
    )
    transfer_status: Literal["paid", "failed"] | None = Field(
        None, description="the bank's result as finance recorded it (null: none yet)"
    )
    transfer_reason: str | None = Field(None, description="why a transfer failed")


class StatementTotals(BaseModel):
    citizens_count: int
    lines_count: int
    minutes_paid: int
    gross_won: int
    capped_won: int
    payable_won: int
    adjustment_won: int
    payout_won: int | None = None
    carried_forward_won: int | None = None
    held_back_count: int | None = None


class StatementsPage(Page[StatementOut]):
    period: str
    status: Literal["open", "closed"]
    provisional: bool = Field(description="open month: live figures that may still change")
    closed_at: datetime | None
    totals: StatementTotals

    @computed_field(  # type: ignore[prop-decorator]
        description="deprecated: the same list as `items` (kept for existing clients)",
        deprecated=True,
    )
    @property
    def statements(self) -> list[StatementOut]:
        return self.items


class PayoutLineOut(BaseModel):
    citizen_id: str
    bank_code: str
    account_masked: str
    holder_masked: str
    amount_won: int


class HeldBackOut(BaseModel):
    citizen_id: str
    carried_forward_won: int
    reason: str


class PayoutFileSummary(BaseModel):
    period: str
    closed_at: datetime
    payout_count: int
    payout_won: int
    lines: list[PayoutLineOut]
    held_back: list[HeldBackOut]


# --- payees ------------------------------------------------------------------------------


class PayeeBody(_Write):
    bank_code: str = Field(pattern=r"^[0-9]{3}$", description="3-digit Korean bank code")
    account_number: str = Field(
        pattern=r"^[0-9][0-9-]{6,28}[0-9]$", description="digits, hyphens allowed"
    )
    account_holder: Annotated[str, NonBlank(50, pattern=r"^[^=+\-@\t\r\n][^\t\r\n]*$")]


class PayeeOut(BaseModel):
    citizen_ref: str
    bank_code: str
    account_masked: str
    holder_masked: str
    key_id: str
    created_at: datetime
    updated_at: datetime


# --- finance: transfer results -----------------------------------------------------------


class TransferResultIn(_Write):
    citizen_id: str = Field(pattern=CITIZEN_PATTERN, description="as printed on the line")
    status: Literal["paid", "failed"]
    reason: Annotated[str, NonBlank(200, empty_ok=True)] = Field(
        default="", description="the bank's reason (failed)"
    )


class TransferResultOut(BaseModel):
    citizen_id: str
    status: Literal["paid", "failed"]
    reason: str
    amount_won: int = Field(description="the line's net")
    recorded_at: datetime
    outcome: Literal["recorded", "unchanged"] = Field(
        description="recorded by this request, or found as it was (a repeat changes nothing)"
    )
    carried_to_next_close: bool = Field(
        description="failed: its net is in the next closed month's payout file"
    )


class TransferResultsOut(BaseModel):
    period: str
    recorded_count: int
    unchanged_count: int
    results: list[TransferResultOut]


# --- named staff and approvals (issue 17) --------------------------------------------------

StaffRole = Literal["finance_clerk", "finance_approver", "auditor"]
ApprovalKind = Literal["period_close", "period_mark_paid", "transfer_results", "budget_change"]


class StaffBody(_Write):
    name: Annotated[str, NonBlank(100)] = Field(
        description="the person's name, as audit rows show it"
    )
    role: StaffRole = Field(
        description="finance_clerk (requests, uploads, payees), finance_approver (approves),"
        " auditor (reads only)"
    )


class StaffOut(BaseModel):
    id: str
    name: str
    role: StaffRole
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    revoked_by: str | None


class StaffCreatedOut(StaffOut):
    token: str = Field(description="the staff member's token: shown this once, stored hashed")


class ApprovalBody(_Write):
    """A money action to approve: `period` for a close or a mark-paid, `period` and
    `results` for transfer results, `fiscal_year`, `amount_won` and `note` for a budget."""

    kind: ApprovalKind
    period: str | None = Field(None, pattern=PERIOD_PATTERN)
    results: list[TransferResultIn] | None = Field(None, min_length=1, max_length=50_000)
    fiscal_year: int | None = Field(None, ge=YEAR_MIN, le=YEAR_MAX, strict=True)
    amount_won: int | None = Field(None, ge=0, le=BUDGET_WON_MAX, strict=True)
    note: Annotated[str, NonBlank(300, empty_ok=True)] = ""
    previous_amount_won: int | None = Field(None, ge=0, strict=True)

    @model_validator(mode="after")
    def _fields_of_kind(self) -> ApprovalBody:
        needed = {
            "period_close": ("period",),
            "period_mark_paid": ("period",),
            "transfer_results": ("period", "results"),
            "budget_change": ("fiscal_year", "amount_won", "note"),
        }[self.kind]
        missing = [name for name in needed if getattr(self, name) in (None, "")]
        if missing:
            raise ValueError(f"{self.kind} needs {', '.join(missing)}")
        return self

    def action(self) -> dict[str, object]:
        """The body the approved action runs with (only the fields of its kind)."""
        if self.kind == "budget_change":
            return {
                "fiscal_year": self.fiscal_year,
                "amount_won": self.amount_won,
                "note": self.note,
                "previous_amount_won": self.previous_amount_won,
            }
        if self.kind == "transfer_results":
            return {
                "period": self.period,
                "results": [r.model_dump() for r in self.results or []],
            }
        return {"period": self.period}


class RejectBody(_Write):
    reason: Annotated[str, NonBlank(500)] = Field(description="why (shown to the requester)")


class ApprovalOut(BaseModel):
    id: str
    kind: ApprovalKind
    kind_ko: str
    subject: str
    body: dict[str, object]
    preview: dict[str, object] = Field(
        description="what approving changes (a dry run at request time)"
    )
    status: Literal["pending", "approved", "rejected"]
    requested_by: str
    requested_by_name: str | None
    requested_at: datetime
    decided_by: str | None
    decided_by_name: str | None
    decided_at: datetime | None
    reason: str | None
    result: dict[str, object] | None = Field(description="what approving changed")


class ApprovalsOut(BaseModel):
    items: list[ApprovalOut]
    approvals_required: int


# --- outcome reports (issue 19) -----------------------------------------------------------


class OutcomeGroupOut(BaseModel):
    """One facility, dong or month (or `total`) of an outcome report; rates are null when
    there is nothing to divide. docs/fairness.md §9 defines every figure."""

    key: str
    label: str
    shifts_posted: int
    shifts_cancelled: int
    shifts_filled: int
    seats_offered: int
    seats_filled: int
    attended: int
    no_shows: int
    no_show_rate: float | None
    hours_worked: float
    citizens_served: int
    first_time_citizens: int
    applicants: int
    first_shift_share: float | None
    allowance_accrued_won: int
    allowance_capped_won: int
    allowance_paid_won: int | None = Field(
        description="transfers the ledger records as made, by the month closed; only for"
        " `by=month` rows and the total (a transfer pays a citizen's month, not a facility)"
    )
    gini_allowance: float = Field(ge=0, lt=1)
    gini_allowance_paid: float = Field(ge=0, lt=1, description="over the paid citizens only")
    draws: int
    draw_winners: int
    draw_repeat_winner_rate: float | None
    draw_probability_min: float | None
    draw_probability_max: float | None


class DrawOutcomeOut(BaseModel):
    posting_id: str
    group: str
    seats: int
    entrants: int
    winners: int
    probability_min: float | None
    probability_max: float | None
    probability_method: str = Field(description="`exact` or `monte_carlo/<rounds>`")


class OutcomeReportOut(BaseModel):
    period_from: str = Field(serialization_alias="from")
    period_to: str = Field(serialization_alias="to")
    by: Literal["facility", "dong", "month"]
    groups: list[OutcomeGroupOut]
    total: OutcomeGroupOut
    draws: list[DrawOutcomeOut]

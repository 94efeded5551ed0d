"""HTTP surface of the allowance service: the admin API (policy and budget) and the finance
API (budget, ledger, statements, month close, payees, payout files). Each route parses,
authorizes, calls one use case or view, and renders.

Tokens: admin endpoints take the admin token, finance endpoints the finance token. No
token, or one that is neither, is 401; the *other* staff token is 403 — it is a known
identity that is simply not allowed here (separation of duties: whoever sets the budget
does not pull payout files, and the other way round).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from allowance import schemas, views
from allowance.domain import approvals as roles
from allowance.domain import outcomes, withholding
from allowance.domain import policy as rules
from allowance.settings import AllowanceSettings
from allowance.usecases import approvals, payees, periods, policy, transfers
from allowance.usecases import staff as staff_members
from allowance.views import ExportFormat, parse_period
from shared.schemas import Day, Instant
from shared.seoul import seoul_date
from shared.web import Ctx, Staff, problem_responses, staff

# Dates and instants in queries: ISO 8601 text, bounded years (shared/schemas.py), so
# `from=0001-01-01` is a 400 naming `from`, not Postgres's out-of-range error.
IsoInstant = Instant
IsoDate = Day

# Who may call (`Staff.label` is what audit rows say): the admin token; for finance routes
# the bootstrap FINANCE_TOKEN or a named staff member's token whose role allows the action
# (allowance/domain/approvals.py: auditors read, clerks enter and request, approvers approve).
Admin = Annotated[Staff, Depends(staff("admin"))]
Finance = Annotated[Staff, Depends(staff(*roles.READ_ROLES))]
FinanceOpen = Annotated[Staff, Depends(staff(*roles.OPEN_ROLES))]
FinanceClerk = Annotated[Staff, Depends(staff(*roles.CLERK_ROLES))]
FinanceDirect = Annotated[Staff, Depends(staff(*roles.DIRECT_ROLES))]
FinanceApprover = Annotated[Staff, Depends(staff(*roles.APPROVER_ROLES))]

PeriodPath = Path(pattern=schemas.PERIOD_PATTERN, description="a Seoul month, YYYY-MM")
EXPORT_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "text/csv": {},
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
        }
    },
}


# --- admin: policy -----------------------------------------------------------------------

admin = APIRouter(
    prefix="/v1/admin", tags=["admin"], responses=problem_responses(400, 401, 403, 413)
)


@admin.get("/rates", response_model=schemas.RatesOut, summary="The hourly rate table in force")
async def get_rates(_: Admin, ctx: Ctx[AllowanceSettings]) -> schemas.RatesOut:
    return views.rates_out(await views.policy_in_force(ctx, "rates", "no rate table yet"))


@admin.put(
    "/rates",
    response_model=schemas.RatesOut,
    summary="Replace the hourly rate table (every version is kept)",
    description="Each entry applies from `effective_from` (Seoul date) until the next one. A"
    " rate below the statutory minimum wage of any year it applies in is refused (422, with"
    " both numbers), as is one starting in a year without a known minimum wage. Money"
    " already reserved or accrued keeps the rate it locked.",
    responses=problem_responses(422),
)
async def put_rates(
    body: schemas.RatesBody, who: Admin, ctx: Ctx[AllowanceSettings]
) -> schemas.RatesOut:
    entries = [rules.RateEntry(r.effective_from, r.hourly_rate_won, r.source) for r in body.rates]
    return views.rates_out(await policy.set_rates(ctx, entries, body.note, who))


@admin.get(
    "/minimum-wages",
    response_model=schemas.MinimumWagesOut,
    summary="The statutory minimum wages rates are checked against",
)
async def get_minimum_wages(_: Admin, ctx: Ctx[AllowanceSettings]) -> schemas.MinimumWagesOut:
    found = await views.policy_in_force(ctx, "minimum_wages", "no minimum wage table yet")
    return views.minimum_wages_out(found)


@admin.put(
    "/minimum-wages",
    response_model=schemas.MinimumWagesOut,
    summary="Replace the table of statutory minimum wages (every version is kept)",
    description="The law is not refused: if a rate in force falls below a new minimum wage,"
    " the answer lists it in `rate_warnings` and postings in that year are refused with"
    " `rate_below_minimum_wage` until the rate table is corrected.",
    responses=problem_responses(422),
)
async def put_minimum_wages(
    body: schemas.MinimumWagesBody, who: Admin, ctx: Ctx[AllowanceSettings]
) -> schemas.MinimumWagesOut:
    entries = [rules.MinimumWage(m.year, m.hourly_won, m.source) for m in body.minimum_wages]
    done = await policy.set_minimum_wages(ctx, entries, body.note, who)
    return views.minimum_wages_out(done.version, done.rate_warnings)


@admin.get("/caps", response_model=schemas.CapsOut, summary="Weekly hours and monthly caps")
async def get_caps(_: Admin, ctx: Ctx[AllowanceSettings]) -> schemas.CapsOut:
    return views.caps_out(await views.policy_in_force(ctx, "caps", "no cap table yet"))


@admin.put(
    "/caps",
    response_model=schemas.CapsOut,
    summary="Replace the caps per year (every version is kept)",
    description="The monthly amount cap applies to payouts accrued after the change; money"
    " already accrued is never clawed back by a lower cap.",
    responses=problem_responses(422),
)
async def put_caps(
    body: schemas.CapsBody, who: Admin, ctx: Ctx[AllowanceSettings]
) -> schemas.CapsOut:
    entries = [
        rules.CapEntry(c.year, c.weekly_hours_max, c.monthly_amount_max_won, c.source)
        for c in body.caps
    ]
    return views.caps_out(await policy.set_caps(ctx, entries, body.note, who))


@admin.get(
    "/withholding",
    response_model=schemas.WithholdingOut,
    summary="The withholding table (원천징수) in force, with the entry that applies today",
)
async def get_withholding(_: Admin, ctx: Ctx[AllowanceSettings]) -> schemas.WithholdingOut:
    found = await views.policy_in_force(ctx, "withholding", "no withholding table yet")
    return views.withholding_out(found, seoul_date(ctx.now()))


@admin.put(
    "/withholding",
    response_model=schemas.WithholdingOut,
    summary="Replace the withholding table (every version is kept)",
    description="Kinds `none`, `business_income_3_3` (income tax 3 % + local 10 % of it) and"
    " `other_income_8_8` (60 % deemed expenses, 20 % of the rest, local 10 % of it, nothing"
    " at 50,000 won taxable or less); rates are integer basis points within 0–10000 (0–100"
    " %), fields a kind does not use must be 0, entries in increasing `effective_from`. It"
    " applies to the payouts of the next month close; closed months keep what they withheld.",
    responses=problem_responses(422),
)
async def put_withholding(
    body: schemas.WithholdingBody, who: Admin, ctx: Ctx[AllowanceSettings]
) -> schemas.WithholdingOut:
    entries = [
        withholding.WithholdingEntry(
            w.effective_from,
            withholding.WithholdingKind(w.kind),
            w.source,
            w.income_tax_rate_bp,
            w.local_tax_rate_bp,
            w.deemed_expense_rate_bp,
            w.taxable_exempt_max_won,
            w.income_tax_exempt_below_won,
        )
        for w in body.withholding
    ]
    found = await policy.set_withholding(ctx, entries, body.note, who)
    return views.withholding_out(found, seoul_date(ctx.now()))


# --- admin: budget -----------------------------------------------------------------------


@admin.get(
    "/budget",
    response_model=schemas.AdminBudgetOut,
    summary="A fiscal year's budget with the history of its changes",
    responses=problem_responses(404),
)
async def get_admin_budget(
    _: Admin,
    ctx: Ctx[AllowanceSettings],
    fiscal_year: int = Query(ge=schemas.YEAR_MIN, le=schemas.YEAR_MAX),
) -> schemas.AdminBudgetOut:
    return await views.admin_budget(ctx, fiscal_year)


@admin.put(
    "/budget",
    response_model=schemas.AdminBudgetOut,
    summary="Set a fiscal year's total budget (the change is posted to the ledger)",
    description="Raising or cutting the budget posts the difference as a ledger transaction;"
    " nothing is overwritten. A cut larger than the available (unreserved) budget is refused"
    " (409). Pass `previous_amount_won` to refuse the change if someone else changed the"
    " total meanwhile (409 `budget_changed`). Setting the same total again changes nothing.",
    responses=problem_responses(409),
)
async def put_budget(
    body: schemas.BudgetBody, who: Admin, ctx: Ctx[AllowanceSettings]
) -> schemas.AdminBudgetOut:
    approvals.direct(ctx, who)
    state = await policy.set_budget(
        ctx,
        fiscal_year=body.fiscal_year,
        amount_won=body.amount_won,
        note=body.note,
        previous_amount_won=body.previous_amount_won,
        staff=who,
    )
    return views.admin_budget_out(state.figures, state.history)


# --- finance: budget and ledger ----------------------------------------------------------

finance = APIRouter(prefix="/v1", tags=["finance"], responses=problem_responses(400, 401, 403, 413))


@finance.get(
    "/budget",
    response_model=schemas.BudgetOut,
    summary="A fiscal year's budget: total, reserved, accrued, paid, available",
    description="Derived from the ledger, to the won. Without `fiscal_year`, the current"
    " Seoul year. With `as_of`, recomputed from the entries posted up to that instant.",
    responses=problem_responses(404),
)
async def get_budget(
    _: Finance,
    ctx: Ctx[AllowanceSettings],
    fiscal_year: int | None = Query(None, ge=schemas.YEAR_MIN, le=schemas.YEAR_MAX),
    as_of: IsoInstant | None = Query(None, description="an instant with offset"),
) -> schemas.BudgetOut:
    return await views.budget(ctx, fiscal_year, as_of)


@finance.get(
    "/ledger",
    response_model=schemas.LedgerPage,
    summary="Ledger entries: JSON pages, or the whole filtered ledger as CSV or XLSX",
    description="Filter by `period` (the statement month of the transaction) or by `from`/"
    "`to` (Seoul dates, inclusive, of posting), and optionally by fiscal year, account,"
    " citizen or posting. JSON is paged by `cursor`: the pages show exactly the entries"
    " committed when the first page was read, in entry order, so inserts meanwhile never"
    " shift or repeat a row. CSV (UTF-8 with BOM, Korean headers) and XLSX stream the whole"
    " selection in one consistent snapshot; the XLSX's data sheet ends with a bold totals"
    " row (`합계 (N건)`, the debit and credit sums as values), outside its autofilter. The"
    " page's list is `items` (`entries`, the same list, is kept for existing clients).",
    responses={**EXPORT_CONTENT, **problem_responses(400)},
)
async def get_ledger(
    _: Finance,
    ctx: Ctx[AllowanceSettings],
    period: str | None = Query(None, pattern=schemas.PERIOD_PATTERN),
    date_from: IsoDate | None = Query(None, alias="from"),
    date_to: IsoDate | None = Query(None, alias="to"),
    fiscal_year: int | None = Query(None, ge=schemas.YEAR_MIN, le=schemas.YEAR_MAX),
    account: str | None = Query(None, max_length=50),
    citizen_id: str | None = Query(None, pattern=schemas.CITIZEN_PATTERN),
    posting_id: str | None = Query(None, max_length=100, pattern=r"^[\x21-\x7e]+$"),
    format: ExportFormat = Query("json"),
    cursor: str | None = Query(None, max_length=4000),
    limit: int | None = Query(None, ge=1),
) -> Any:
    flt = views.ledger_filter(
        period, date_from, date_to, fiscal_year, account, citizen_id, posting_id
    )
    if format != "json":
        return await views.ledger_export(ctx, flt, format, f"ledger-{period or 'all'}")
    return await views.ledger_page(ctx, flt, cursor, limit)


@finance.get(
    "/ledger/trial-balance",
    response_model=schemas.TrialBalanceOut,
    summary="Trial balance (시산표): debits, credits and balance per account, from the entries",
)
async def get_trial_balance(
    _: Finance,
    ctx: Ctx[AllowanceSettings],
    fiscal_year: int | None = Query(None, ge=schemas.YEAR_MIN, le=schemas.YEAR_MAX),
    as_of: IsoInstant | None = Query(None),
) -> schemas.TrialBalanceOut:
    return await views.trial_balance(ctx, fiscal_year, as_of)


# --- finance: periods, statements, close, payout file ------------------------------------


@finance.get(
    "/periods",
    response_model=list[schemas.PeriodOut],
    summary="Months and their close status (months never touched are open and not listed)",
)
async def list_periods(
    _: Finance,
    ctx: Ctx[AllowanceSettings],
    period_from: str = Query(alias="from", pattern=schemas.PERIOD_PATTERN),
    period_to: str = Query(alias="to", pattern=schemas.PERIOD_PATTERN),
) -> list[schemas.PeriodOut]:
    return await views.periods(ctx, parse_period(period_from), parse_period(period_to))


@finance.get(
    "/periods/{period}/statements",
    response_model=schemas.StatementsPage,
    summary="Per citizen: minutes, gross, capped, payable (frozen once the month is closed)",
    description="An open month's statements are live (`provisional`); a closed month's are"
    " frozen at close and also show what each citizen is paid in the payout file, what is"
    " carried forward, and who is held back. Adjustments (payouts for shifts of an earlier,"
    " closed month) are shown with the month they adjust. The page's list is `items`"
    " (`statements`, the same list, is kept for existing clients). CSV/XLSX end with the"
    " columns `시설`, `근무명`, `공고` (the citizen's shifts of the month); the XLSX's data"
    " sheet ends with a bold totals row (`합계 (N건)`, each money column summed).",
    responses=EXPORT_CONTENT,
)
async def get_statements(
    _: Finance,
    ctx: Ctx[AllowanceSettings],
    period: str = PeriodPath,
    format: ExportFormat = Query("json"),
    cursor: str | None = Query(None, max_length=200),
    limit: int | None = Query(None, ge=1),
) -> Any:
    return await views.statements(ctx, parse_period(period), format, cursor, limit)


@finance.post(
    "/periods/{period}/close",
    response_model=schemas.PeriodOut,
    summary="Close a month: freeze its statements and fix its payout file (idempotent)",
    description="Allowed once the month has ended (Seoul time). Each citizen's payable of"
    " this and earlier months moves to payout due, except for citizens without payee"
    " details, who are held back and carried forward (not lost). Attendance for a closed"
    " month that arrives later is accrued in the next open month as an adjustment. Closing"
    " a closed month answers the same close again.",
    responses=problem_responses(409),
)
async def close_period(
    who: FinanceDirect, ctx: Ctx[AllowanceSettings], period: str = PeriodPath
) -> schemas.PeriodOut:
    month = parse_period(period)
    approvals.direct(ctx, who)
    return views.period_out(await periods.close_period(ctx, month, who), month)


@finance.post(
    "/periods/{period}/mark-paid",
    response_model=schemas.PeriodOut,
    summary="Record that a closed month's payout file was transferred (idempotent)",
    description="Moves the month's payout due to paid in the ledger.",
    responses=problem_responses(409),
)
async def mark_paid(
    who: FinanceDirect, ctx: Ctx[AllowanceSettings], period: str = PeriodPath
) -> schemas.PeriodOut:
    month = parse_period(period)
    approvals.direct(ctx, who)
    return views.period_out(await periods.mark_paid(ctx, month, who), month)


@finance.get(
    "/periods/{period}/payout-file",
    summary="A closed month's payout file: the bank's or the district's upload (CSV/XLSX),"
    " or its masked summary (JSON)",
    description="`layout=bank` (대량이체, the default) or `layout=ehojo` (the assumed e-호조"
    " 채주 일괄등록 upload; see docs/finance.md) with `format=csv` (UTF-8 with BOM, the"
    " default) or `format=xlsx` (codes and"
    " account numbers as text cells, money `#,##0`): one line per transfer with the citizen"
    " id, bank code and name, account number (digits only), holder, gross, income tax,"
    " local income tax, amount transferred (net) and memo `광산시민수당 YYYY-MM`, and a"
    " totals row (`합계 (N건)`) in the file itself. `layout=legacy` (CSV only): the first bank"
    " file (bank code, account number, holder, amount, memo; no totals row, no citizen id),"
    " kept for a client that still reads it. Every payee decrypted for a file is"
    " written to the access log (who, when, whose, why) before the file is produced; the"
    " headers `X-Payout-Count`, `X-Payout-Total-Won` and `X-Held-Back-Count` sum it up."
    " `format=json`: the same lines masked, plus the citizens held back for missing payee"
    " details with the amount carried forward for them (no decryption).",
    responses={
        200: {
            "content": {
                "text/csv": {},
                "application/json": {},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
            }
        },
        **problem_responses(404, 409),
    },
)
async def get_payout_file(
    who: FinanceOpen,
    ctx: Ctx[AllowanceSettings],
    period: str = PeriodPath,
    format: Literal["csv", "json", "xlsx"] = Query("csv"),
    layout: views.PayoutLayoutName | Literal["legacy"] = Query(
        "bank", description="bank (대량이체), ehojo (채주 일괄등록) or legacy (CSV only)"
    ),
) -> Any:
    month = parse_period(period)
    views.check_payout_layout(format, layout)
    found = await payees.payout_file(ctx, month, who, open_=format != "json")
    if found.bank_lines is None:
        return views.payout_summary(month, found.closed_at, found.lines, found.held_back)
    if layout == "legacy":
        return views.payout_csv(month, found.bank_lines, len(found.held_back))
    lines = views.payout_lines(
        month,
        found.lines,
        found.bank_lines,
        found.payouts,
        found.closed_at,
        ctx.settings.payout_memo_prefix,
    )
    return await views.payout_file_export(
        month, lines, "csv" if format == "csv" else "xlsx", layout, len(found.held_back)
    )


@finance.get(
    "/periods/{period}/withholding",
    summary="A closed month's withholding per citizen (for the 간이지급명세서 filing)",
    description="Per citizen paid: name (the account holder), month, payment date, income"
    " kind, gross, taxable amount, income tax, local income tax and net, with a totals row."
    " The resident registration number column (`주민등록번호(구청 기재)`) is left blank for the"
    " district to fill from its own records: we never collect it (PIPA §24-2). The names"
    " are opened from the sealed payee details, so the read is written to the access log.",
    responses={
        200: {
            "content": {
                "text/csv": {},
                "application/json": {},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
            }
        },
        **problem_responses(404, 409),
    },
)
async def get_withholding_report(
    who: FinanceOpen,
    ctx: Ctx[AllowanceSettings],
    period: str = PeriodPath,
    format: ExportFormat = Query("csv"),
) -> Any:
    month = parse_period(period)
    found = await payees.payout_file(ctx, month, who, open_=True)
    assert found.bank_lines is not None
    lines = views.payout_lines(
        month,
        found.lines,
        found.bank_lines,
        found.payouts,
        found.closed_at,
        ctx.settings.payout_memo_prefix,
    )
    return await views.withholding_report(month, lines, found.payouts, format)


@finance.post(
    "/periods/{period}/transfer-results",
    response_model=schemas.TransferResultsOut,
    summary="Record the bank's result per payout line: paid, or failed (이체불능) and carried",
    description="Body: a JSON list `[{citizen_id, status: paid|failed, reason?}]`, or (with"
    " `Content-Type: text/csv`) the payout file's CSV with a `상태` (status) column and an"
    " optional `사유` (reason) column, or (with `Content-Type: application/vnd.openxmlformats-"
    "officedocument.spreadsheetml.sheet`) the payout file's XLSX with the same columns added"
    " (its first sheet is read). A paid line moves its payout due to paid; a failed"
    " line's net is reversed out of payout due (account `allowance_transfer_failed`) and"
    " paid in the next closed month's payout file. Each line is recorded once: the same"
    " result again changes nothing (`unchanged`), a different one is a 409. A line of"
    " another month or of no line, or a malformed file, is a 4xx naming the line, and"
    " nothing of the request is written. PayoutPaid / PayoutFailed events follow."
    " `mark-paid` still marks every remaining line paid.",
    responses=problem_responses(409, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/TransferResultIn"},
                    }
                },
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                    "schema": {"type": "string", "format": "binary"}
                },
            },
        }
    },
)
async def post_transfer_results(
    request: Request,
    who: FinanceDirect,
    ctx: Ctx[AllowanceSettings],
    period: str = PeriodPath,
) -> schemas.TransferResultsOut:
    month = parse_period(period)
    approvals.direct(ctx, who)
    body = await request.body()
    lines = views.transfer_results_in(body, request.headers.get("content-type", ""))
    done = await transfers.record_results(ctx, month, lines, who)
    return views.transfer_results_out(month, done)


# --- finance: payees ---------------------------------------------------------------------


@finance.put(
    "/payees/{citizen_ref}",
    response_model=schemas.PayeeOut,
    summary="Enter a citizen's bank details (stored encrypted; answered masked)",
    description="Entered by finance staff from the citizen's registration form, under the"
    " citizen id printed on statements and payout lines (`ctz_…`; anything else is a 400)."
    " A citizen id the allowance has never seen in a booking, an attendance or a partner"
    " submission is a 404 and nothing is stored. The bank code must be in the bank table,"
    " the account number 10 to 16 digits (stored digits only), the holder given — each"
    " refusal a 400 naming its field and code. The details are sealed with AES-256-GCM"
    " under the active key and never returned in full by any endpoint; details they"
    " replace are kept sealed for audit; the write is recorded in the payee access log.",
    responses=problem_responses(404),
)
async def put_payee(
    body: schemas.PayeeBody,
    who: FinanceClerk,
    ctx: Ctx[AllowanceSettings],
    citizen_ref: str = Path(pattern=schemas.CITIZEN_REF_PATTERN),
) -> schemas.PayeeOut:
    row = await payees.put_payee(
        ctx,
        citizen_ref,
        bank_code=body.bank_code,
        account_number=body.account_number,
        account_holder=body.account_holder,
        staff=who,
    )
    return views.payee_out(row)


@finance.get(
    "/payees/{citizen_ref}",
    response_model=schemas.PayeeOut,
    summary="A citizen's payee details, masked",
    responses=problem_responses(404),
)
async def get_payee(
    _: Finance,
    ctx: Ctx[AllowanceSettings],
    citizen_ref: str = Path(pattern=schemas.CITIZEN_PATTERN),
) -> schemas.PayeeOut:
    return await views.payee(ctx, citizen_ref)


# --- admin: named finance staff ------------------------------------------------------------


@admin.post(
    "/staff",
    response_model=schemas.StaffCreatedOut,
    status_code=201,
    summary="Create a named finance staff member; the answer carries their token, once",
    description="Roles: `finance_clerk` (enters payees, uploads results, requests month"
    " close, mark-paid, transfer results and budget changes), `finance_approver` (approves"
    " or rejects those requests; never their own), `auditor` (reads everything, changes"
    " nothing). The token is stored only as its SHA-256 and is not shown again. The"
    " static FINANCE_TOKEN stays a bootstrap credential for scripts.",
)
async def create_staff(
    body: schemas.StaffBody, who: Admin, ctx: Ctx[AllowanceSettings]
) -> schemas.StaffCreatedOut:
    row, token = await staff_members.create(ctx, name=body.name, role=body.role, by=who)
    return schemas.StaffCreatedOut(**views.staff_out(row).model_dump(), token=token)


@admin.get("/staff", response_model=list[schemas.StaffOut], summary="Named finance staff")
async def list_staff(_: Admin, ctx: Ctx[AllowanceSettings]) -> list[schemas.StaffOut]:
    return await views.staff_list(ctx)


@admin.post(
    "/staff/{staff_id}/revoke",
    response_model=schemas.StaffOut,
    summary="Revoke a staff member's token and end their console sessions (idempotent)",
    responses=problem_responses(404),
)
async def revoke_staff(
    who: Admin, ctx: Ctx[AllowanceSettings], staff_id: str = Path(max_length=40)
) -> schemas.StaffOut:
    return views.staff_out(await staff_members.revoke(ctx, staff_id, by=who))


# --- finance: approvals (maker–checker) ----------------------------------------------------


@finance.post(
    "/approvals",
    response_model=schemas.ApprovalOut,
    status_code=201,
    summary="Request a money action (month close, mark paid, transfer results, budget)",
    description="A finance clerk (or the bootstrap FINANCE_TOKEN) requests; the answer's"
    " `preview` is exactly what approving will change, from a dry run of the action on the"
    " current data (an action refused now is refused here with the same problem). A"
    " different, named finance approver approves or rejects it.",
    responses=problem_responses(409, 422),
)
async def request_approval(
    body: schemas.ApprovalBody, who: Finance, ctx: Ctx[AllowanceSettings]
) -> schemas.ApprovalOut:
    return views.approval_out(await approvals.request(ctx, body.kind, body.action(), who))


@finance.get(
    "/approvals",
    response_model=schemas.ApprovalsOut,
    summary="Approval requests, newest first (optionally by status)",
)
async def list_approvals(
    _: Finance,
    ctx: Ctx[AllowanceSettings],
    status: Literal["pending", "approved", "rejected"] | None = Query(None),
    limit: int = Query(100, ge=1, le=500),
) -> schemas.ApprovalsOut:
    return await views.approvals_list(ctx, status, limit)


@finance.post(
    "/approvals/{approval_id}/approve",
    response_model=schemas.ApprovalOut,
    summary="Approve a request: the action runs in the same transaction as the approval",
    description="Only a named finance approver who did not request it; a request decided"
    " already is 409. The answer's `result` is what the action changed.",
    responses=problem_responses(404, 409, 422),
)
async def approve(
    who: Finance, ctx: Ctx[AllowanceSettings], approval_id: uuid.UUID
) -> schemas.ApprovalOut:
    done = await approvals.decide(ctx, approval_id, who, approve=True, reason=None)
    return views.approval_out(done)


@finance.post(
    "/approvals/{approval_id}/reject",
    response_model=schemas.ApprovalOut,
    summary="Reject a request with a reason (nothing changes)",
    responses=problem_responses(404, 409),
)
async def reject(
    body: schemas.RejectBody, who: Finance, ctx: Ctx[AllowanceSettings], approval_id: uuid.UUID
) -> schemas.ApprovalOut:
    done = await approvals.decide(ctx, approval_id, who, approve=False, reason=body.reason)
    return views.approval_out(done)


# --- finance: outcome reports (issue 19) --------------------------------------------------

reports = APIRouter(prefix="/v1/reports", tags=["finance"], responses=problem_responses(401, 403))


@reports.get(
    "/outcomes",
    response_model=schemas.OutcomeReportOut,
    summary="Outcome report: shifts, hours, citizens, allowance and its spread, draws",
    description="For the Seoul months `from`..`to` (at most `REPORT_MONTHS_MAX`, 24) by"
    " facility, dong or month of the shift: shifts posted and filled, hours worked, citizens"
    " served and first-timers, allowance accrued, capped and transferred, the no-show rate,"
    " and the spread — the Gini coefficient of allowance across the citizens who applied,"
    " the share of applicants who got a shift, the repeat-winner rate of draws and each"
    " draw's min/max selection probability. Money comes from the ledger's payout lines;"
    " definitions in docs/fairness.md §9. CSV/XLSX hold the group rows and the total.",
    responses={**EXPORT_CONTENT, **problem_responses(400)},
)
async def get_outcome_report(
    _: Finance,
    ctx: Ctx[AllowanceSettings],
    period_from: str = Query(alias="from", max_length=7),
    period_to: str = Query(alias="to", max_length=7),
    by: outcomes.GroupBy = Query("month"),
    format: ExportFormat = Query("json"),
) -> Any:
    first, last = views.report_range(period_from, period_to, ctx.settings.report_months_max)
    report = await views.outcome_report(ctx, first, last, by)
    if format != "json":
        return await views.outcome_report_export(ctx, report, format)
    return report


ROUTERS = (admin, finance, reports)

"""HTTP surface of the allowance service: the admin API (policy and budget) and the finance
API (budget, ledger, statements, month close, payees, payout files). Each route parses,
authorizes, calls one use case or view, and renders.

Tokens: admin endpoints take the admin token, finance endpoints the finance token. No
token, or one that is neither, is 401; the *other* staff token is 403 — it is a known
identity that is simply not allowed here (separation of duties: whoever sets the budget
does not pull payout files, and the other way round).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query

from allowance import schemas, views
from allowance.domain import policy as rules
from allowance.settings import AllowanceSettings
from allowance.usecases import payees, periods, policy
from allowance.views import ExportFormat, parse_period
from shared.schemas import Day, Instant
from shared.web import Ctx, Staff, problem_responses, staff

# Dates and instants in queries: ISO 8601 text, bounded years (shared/schemas.py), so
# `from=0001-01-01` is a 400 naming `from`, not Postgres's out-of-range error.
IsoInstant = Instant
IsoDate = Day

# Who may call: the admin or the finance staff token (`Staff.label` is what audit rows say).
Admin = Annotated[Staff, Depends(staff("admin"))]
Finance = Annotated[Staff, Depends(staff("finance"))]

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
    " selection in one consistent snapshot. The page's list is `items` (`entries`, the same"
    " list, is kept for existing clients).",
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
    " (`statements`, the same list, is kept for existing clients).",
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
    who: Finance, ctx: Ctx[AllowanceSettings], period: str = PeriodPath
) -> schemas.PeriodOut:
    month = parse_period(period)
    return views.period_out(await periods.close_period(ctx, month, who), month)


@finance.post(
    "/periods/{period}/mark-paid",
    response_model=schemas.PeriodOut,
    summary="Record that a closed month's payout file was transferred (idempotent)",
    description="Moves the month's payout due to paid in the ledger.",
    responses=problem_responses(409),
)
async def mark_paid(
    who: Finance, ctx: Ctx[AllowanceSettings], period: str = PeriodPath
) -> schemas.PeriodOut:
    month = parse_period(period)
    return views.period_out(await periods.mark_paid(ctx, month, who), month)


@finance.get(
    "/periods/{period}/payout-file",
    summary="A closed month's bank bulk-transfer file (CSV), or its masked summary (JSON)",
    description="`format=csv` (default): the bank file — bank code, account number, account"
    " holder, amount, memo — with full account numbers; every payee decrypted for it is"
    " written to the access log (who, when, whose, why) before the file is produced. The"
    " response headers `X-Payout-Count`, `X-Payout-Total-Won` and `X-Held-Back-Count` sum it"
    " up. `format=json`: the same lines masked, plus the citizens held back for missing payee"
    " details with the amount carried forward for them (no decryption).",
    responses={
        200: {"content": {"text/csv": {}, "application/json": {}}},
        **problem_responses(404, 409),
    },
)
async def get_payout_file(
    who: Finance,
    ctx: Ctx[AllowanceSettings],
    period: str = PeriodPath,
    format: Literal["csv", "json"] = Query("csv"),
) -> Any:
    month = parse_period(period)
    found = await payees.payout_file(ctx, month, who, open_=format == "csv")
    if found.bank_lines is None:
        return views.payout_summary(month, found.closed_at, found.lines, found.held_back)
    return views.payout_csv(month, found.bank_lines, len(found.held_back))


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
    who: Finance,
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


ROUTERS = (admin, finance)

"""HTTP surface of the allowance service: the admin API (policy and budget) and the finance
API (budget, ledger, statements, month close, payees, payout files).

Tokens: admin endpoints take the admin token, finance endpoints the finance token. No
token, or one that is neither, is 401; the *other* staff token is 403 — it is a known
identity that is simply not allowed here (separation of duties: whoever sets the budget
does not pull payout files, and the other way round).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal

import asyncpg
import orjson
import structlog
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from pydantic import BeforeValidator
from starlette.background import BackgroundTask

from allowance import exports, schemas, store, usecases
from allowance.domain import ledger
from allowance.domain import policy as policy_rules
from allowance.domain.calendar import Period, seoul_day_bounds
from allowance.domain.ledger import ACCOUNTS, Account
from allowance.payees import PayeeCipher, PayeeDetails, Sealed, mask_account, mask_holder
from allowance.settings import AllowanceSettings, Context
from shared.auth import bearer
from shared.db import retry_conflicts
from shared.problems import PROBLEM_JSON, Problem
from shared.web import get_ctx

log = logging.getLogger(__name__)

Role = Literal["admin", "finance"]

_PROBLEM_TEXT = {
    400: "invalid request: the problem names each bad field",
    401: "no bearer token, or a token that is neither the admin nor the finance token",
    403: "a valid staff token of the other role (admin on finance endpoints or finance on"
    " admin ones)",
    404: "no such resource",
    409: "the state does not allow this now (the problem says why)",
    413: "request body too large",
    422: "the policy is refused (the problem names each offending row and both numbers)",
}


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        code: {"description": _PROBLEM_TEXT[code], "content": {PROBLEM_JSON: {}}} for code in codes
    }


def _textual(value: Any) -> Any:
    """Dates and instants in queries are ISO 8601 text; pydantic would also read a bare
    number as seconds since 1970, which the OpenAPI document does not allow."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value
        raise ValueError("expected an ISO 8601 date or instant, not a number")
    return value


IsoInstant = Annotated[datetime, BeforeValidator(_textual)]
IsoDate = Annotated[date, BeforeValidator(_textual)]


# --- auth --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """Who is calling, for audit rows: the token's role, a staff id the client may state in
    `X-Staff-Id` (informational), and the request id."""

    role: Role
    staff_id: str | None
    request_id: str | None

    @property
    def label(self) -> str:
        return f"{self.role}:{self.staff_id}" if self.staff_id else self.role


def _role_of(request: Request, ctx: Context) -> Role:
    token = bearer(request).encode()
    settings = _settings(ctx)
    admin = settings.admin_token.get_secret_value().encode()
    finance = settings.finance_token.get_secret_value().encode()
    # Both comparisons always run, in constant time.
    is_admin = bool(admin) and hmac.compare_digest(token, admin)
    is_finance = bool(finance) and hmac.compare_digest(token, finance)
    if is_finance:
        return "finance"
    if is_admin:
        return "admin"
    raise Problem(
        401,
        "unauthorized",
        "send `Authorization: Bearer <token>` with the admin or finance token",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _require(role: Role) -> Callable[..., Awaitable[Actor]]:
    async def dependency(request: Request, ctx: Context = Depends(get_ctx)) -> Actor:
        got = _role_of(request, ctx)
        if got != role:
            raise Problem(
                403,
                "forbidden",
                f"this endpoint needs the {role} token; the {got} token is not allowed here",
            )
        staff = request.headers.get("x-staff-id", "").strip()[:100] or None
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        return Actor(role, staff, str(request_id) if request_id else None)

    return dependency


require_admin = _require("admin")
require_finance = _require("finance")


def _settings(ctx: Context) -> AllowanceSettings:
    assert isinstance(ctx.settings, AllowanceSettings)
    return ctx.settings


def _cipher(ctx: Context) -> PayeeCipher:
    return ctx.resource(PayeeCipher)


def _period(text: str) -> Period:
    try:
        return Period.parse(text)
    except ValueError as exc:
        raise Problem(400, "invalid_period", str(exc)) from exc


PeriodPath = Path(pattern=schemas.PERIOD_PATTERN, description="a Seoul month, YYYY-MM")


# --- admin: policy -----------------------------------------------------------------------

admin = APIRouter(prefix="/v1/admin", tags=["admin"], responses=_responses(400, 401, 403, 413))


async def _policy_in_force(
    ctx: Context, kind: store.PolicyKind, missing: str
) -> store.PolicyVersion:
    """The latest version of one policy table, or 404 saying none was set yet."""
    async with ctx.pool.acquire() as conn:
        found = await store.latest_policy(conn, kind)
    if found is None:
        raise Problem(404, "not_found", missing)
    return found


def _rates_out(found: store.PolicyVersion) -> schemas.RatesOut:
    return schemas.RatesOut(
        version=found.id,
        set_at=found.set_at,
        set_by=found.set_by,
        note=found.note,
        rates=[schemas.RateIn(**r) for r in found.body],
    )


@admin.get("/rates", response_model=schemas.RatesOut, summary="The hourly rate table in force")
async def get_rates(
    _: Actor = Depends(require_admin), ctx: Context = Depends(get_ctx)
) -> schemas.RatesOut:
    found = await _policy_in_force(ctx, "rates", "no rate table yet")
    return _rates_out(found)


@admin.put(
    "/rates",
    response_model=schemas.RatesOut,
    summary="Replace the hourly rate table (every version is kept)",
    description="Each entry applies from `effective_from` (Seoul date) until the next one. A"
    " rate below the statutory minimum wage of any year it applies in is refused (422, with"
    " both numbers), as is one starting in a year without a known minimum wage. Money"
    " already reserved or accrued keeps the rate it locked.",
    responses=_responses(422),
)
async def put_rates(
    body: schemas.RatesBody,
    actor: Actor = Depends(require_admin),
    ctx: Context = Depends(get_ctx),
) -> schemas.RatesOut:
    entries = [
        policy_rules.RateEntry(r.effective_from, r.hourly_rate_won, r.source) for r in body.rates
    ]
    async with ctx.pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('allowance:policy'))")
        minimum_wages = await store.minimum_wage_table(conn)
        violations = policy_rules.validate_rate_table(entries, minimum_wages)
        if violations:
            raise Problem(
                422,
                violations[0].code,
                violations[0].message,
                errors=[v.as_error() for v in violations],
            )
        await store.insert_policy(
            conn,
            "rates",
            policy_rules.rates_to_json(entries),
            set_at=ctx.now(),
            set_by=actor.label,
            request_id=actor.request_id,
            note=body.note,
        )
        found = await store.latest_policy(conn, "rates")
    assert found is not None
    log.info("rate table replaced", extra={"version": found.id, "entries": len(entries)})
    return _rates_out(found)


def _minimum_wages_out(
    found: store.PolicyVersion, warnings: Sequence[policy_rules.Violation] = ()
) -> schemas.MinimumWagesOut:
    return schemas.MinimumWagesOut(
        version=found.id,
        set_at=found.set_at,
        set_by=found.set_by,
        note=found.note,
        minimum_wages=[schemas.MinimumWageIn(**r) for r in found.body],
        rate_warnings=[schemas.RateWarning(**w.as_error()) for w in warnings],
    )


@admin.get(
    "/minimum-wages",
    response_model=schemas.MinimumWagesOut,
    summary="The statutory minimum wages rates are checked against",
)
async def get_minimum_wages(
    _: Actor = Depends(require_admin), ctx: Context = Depends(get_ctx)
) -> schemas.MinimumWagesOut:
    found = await _policy_in_force(ctx, "minimum_wages", "no minimum wage table yet")
    return _minimum_wages_out(found)


@admin.put(
    "/minimum-wages",
    response_model=schemas.MinimumWagesOut,
    summary="Replace the table of statutory minimum wages (every version is kept)",
    description="The law is not refused: if a rate in force falls below a new minimum wage,"
    " the answer lists it in `rate_warnings` and postings in that year are refused with"
    " `rate_below_minimum_wage` until the rate table is corrected.",
    responses=_responses(422),
)
async def put_minimum_wages(
    body: schemas.MinimumWagesBody,
    actor: Actor = Depends(require_admin),
    ctx: Context = Depends(get_ctx),
) -> schemas.MinimumWagesOut:
    entries = [policy_rules.MinimumWage(m.year, m.hourly_won, m.source) for m in body.minimum_wages]
    violations = policy_rules.validate_minimum_wages(entries)
    if violations:
        raise Problem(
            422,
            violations[0].code,
            violations[0].message,
            errors=[v.as_error() for v in violations],
        )
    async with ctx.pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('allowance:policy'))")
        await store.insert_policy(
            conn,
            "minimum_wages",
            policy_rules.minimum_wages_to_json(entries),
            set_at=ctx.now(),
            set_by=actor.label,
            request_id=actor.request_id,
            note=body.note,
        )
        found = await store.latest_policy(conn, "minimum_wages")
        rates = await store.rate_table(conn)
    assert found is not None
    warnings = [
        v
        for v in policy_rules.validate_rate_table(
            list(rates.entries), policy_rules.MinimumWageTable(tuple(entries))
        )
        if v.code == "below_minimum_wage"
    ]
    return _minimum_wages_out(found, warnings)


def _caps_out(found: store.PolicyVersion) -> schemas.CapsOut:
    return schemas.CapsOut(
        version=found.id,
        set_at=found.set_at,
        set_by=found.set_by,
        note=found.note,
        caps=[schemas.CapIn(**r) for r in found.body],
    )


@admin.get("/caps", response_model=schemas.CapsOut, summary="Weekly hours and monthly caps")
async def get_caps(
    _: Actor = Depends(require_admin), ctx: Context = Depends(get_ctx)
) -> schemas.CapsOut:
    found = await _policy_in_force(ctx, "caps", "no cap table yet")
    return _caps_out(found)


@admin.put(
    "/caps",
    response_model=schemas.CapsOut,
    summary="Replace the caps per year (every version is kept)",
    description="The monthly amount cap applies to payouts accrued after the change; money"
    " already accrued is never clawed back by a lower cap.",
    responses=_responses(422),
)
async def put_caps(
    body: schemas.CapsBody,
    actor: Actor = Depends(require_admin),
    ctx: Context = Depends(get_ctx),
) -> schemas.CapsOut:
    entries = [
        policy_rules.CapEntry(c.year, c.weekly_hours_max, c.monthly_amount_max_won, c.source)
        for c in body.caps
    ]
    violations = policy_rules.validate_cap_table(entries)
    if violations:
        raise Problem(
            422,
            violations[0].code,
            violations[0].message,
            errors=[v.as_error() for v in violations],
        )
    async with ctx.pool.acquire() as conn, conn.transaction():
        await store.insert_policy(
            conn,
            "caps",
            policy_rules.caps_to_json(entries),
            set_at=ctx.now(),
            set_by=actor.label,
            request_id=actor.request_id,
            note=body.note,
        )
        found = await store.latest_policy(conn, "caps")
    assert found is not None
    return _caps_out(found)


# --- budget ------------------------------------------------------------------------------


def _budget_out(figures: ledger.BudgetFigures, as_of: datetime | None) -> schemas.BudgetOut:
    return schemas.BudgetOut(
        fiscal_year=figures.fiscal_year,
        total_won=figures.total_won,
        reserved_won=figures.reserved_won,
        accrued_won=figures.accrued_won,
        paid_won=figures.paid_won,
        available_won=figures.available_won,
        unfunded_won=figures.unfunded_won,
        payable_won=figures.payable_won,
        payout_due_won=figures.payout_due_won,
        capped_won=figures.capped_won,
        as_of=as_of,
    )


async def _admin_budget(conn: asyncpg.Connection, fiscal_year: int) -> schemas.AdminBudgetOut:
    figures = ledger.budget_figures(fiscal_year, await store.year_balances(conn, fiscal_year))
    history = [
        schemas.BudgetChangeOut(**dict(r)) for r in await store.budget_history(conn, fiscal_year)
    ]
    return schemas.AdminBudgetOut(**_budget_out(figures, None).model_dump(), history=history)


@admin.get(
    "/budget",
    response_model=schemas.AdminBudgetOut,
    summary="A fiscal year's budget with the history of its changes",
    responses=_responses(404),
)
async def get_admin_budget(
    fiscal_year: int = Query(ge=schemas.YEAR_MIN, le=schemas.YEAR_MAX),
    _: Actor = Depends(require_admin),
    ctx: Context = Depends(get_ctx),
) -> schemas.AdminBudgetOut:
    async with ctx.pool.acquire() as conn:
        if fiscal_year not in await store.budget_years(conn):
            raise Problem(404, "no_budget", f"no budget has been set for {fiscal_year}")
        return await _admin_budget(conn, fiscal_year)


@admin.put(
    "/budget",
    response_model=schemas.AdminBudgetOut,
    summary="Set a fiscal year's total budget (the change is posted to the ledger)",
    description="Raising or cutting the budget posts the difference as a ledger transaction;"
    " nothing is overwritten. A cut larger than the available (unreserved) budget is refused"
    " (409). Pass `previous_amount_won` to refuse the change if someone else changed the"
    " total meanwhile (409 `budget_changed`). Setting the same total again changes nothing.",
    responses=_responses(409),
)
async def put_budget(
    body: schemas.BudgetBody,
    actor: Actor = Depends(require_admin),
    ctx: Context = Depends(get_ctx),
) -> schemas.AdminBudgetOut:
    async def work() -> schemas.AdminBudgetOut:
        async with ctx.pool.acquire() as conn, conn.transaction():
            await usecases.set_budget(
                conn,
                fiscal_year=body.fiscal_year,
                amount_won=body.amount_won,
                note=body.note,
                previous_amount_won=body.previous_amount_won,
                set_by=actor.label,
                request_id=actor.request_id,
                now=ctx.now(),
            )
            return await _admin_budget(conn, body.fiscal_year)

    result = await retry_conflicts(work)
    log.info("budget set", extra={"fiscal_year": body.fiscal_year, "total_won": result.total_won})
    return result


finance = APIRouter(prefix="/v1", tags=["finance"], responses=_responses(400, 401, 403, 413))


@finance.get(
    "/budget",
    response_model=schemas.BudgetOut,
    summary="A fiscal year's budget: total, reserved, accrued, paid, available",
    description="Derived from the ledger, to the won. Without `fiscal_year`, the current"
    " Seoul year. With `as_of`, recomputed from the entries posted up to that instant.",
    responses=_responses(404),
)
async def get_budget(
    fiscal_year: int | None = Query(None, ge=schemas.YEAR_MIN, le=schemas.YEAR_MAX),
    as_of: IsoInstant | None = Query(None, description="an instant with offset"),
    _: Actor = Depends(require_finance),
    ctx: Context = Depends(get_ctx),
) -> schemas.BudgetOut:
    year = fiscal_year if fiscal_year is not None else Period.of(ctx.now()).year
    if as_of is not None and as_of.tzinfo is None:
        raise Problem(400, "invalid_as_of", "as_of needs a UTC offset (e.g. +09:00)")
    async with ctx.pool.acquire() as conn:
        if year not in await store.budget_years(conn):
            raise Problem(404, "no_budget", f"no budget has been set for {year}")
        balances = (
            await store.year_balances_as_of(conn, year, as_of)
            if as_of is not None
            else await store.year_balances(conn, year)
        )
    return _budget_out(ledger.budget_figures(year, balances), as_of)


# --- ledger ------------------------------------------------------------------------------


def _ledger_row(r: asyncpg.Record) -> dict[str, Any]:
    amount = int(r["amount_won"])
    return {
        "entry_id": r["id"],
        "transaction_id": r["transaction_id"],
        "kind": r["kind"],
        "fiscal_year": r["fiscal_year"],
        "period": r["period"],
        "posted_at": r["posted_at"],
        "occurred_at": r["occurred_at"],
        "account": r["account"],
        "account_name": ACCOUNTS[Account(r["account"])].name_ko,
        "citizen_id": r["citizen_id"],
        "posting_id": r["posting_id"],
        "leg": r["leg"],
        "amount_won": amount,
        "debit_won": max(amount, 0),
        "credit_won": max(-amount, 0),
        "source_event_id": str(r["source_event_id"]),
        "memo": r["memo"],
    }


def _encode_cursor(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def _decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
        raise Problem(400, "invalid_cursor", "the cursor is not one this API gave out") from exc
    if not isinstance(payload, dict):
        raise Problem(400, "invalid_cursor", "the cursor is not one this API gave out")
    return payload


def _ledger_filter(
    period: str | None,
    date_from: date | None,
    date_to: date | None,
    fiscal_year: int | None,
    account: str | None,
    citizen_id: str | None,
    posting_id: str | None,
) -> store.LedgerFilter:
    if period is not None and (date_from is not None or date_to is not None):
        raise Problem(400, "invalid_filter", "give either period or from/to, not both")
    if account is not None and account not in {a.value for a in Account}:
        raise Problem(400, "invalid_account", f"unknown account {account!r}")
    posted_from = posted_before = None
    if date_from is not None or date_to is not None:
        first = date_from or date(2000, 1, 1)
        last = date_to or date(9998, 12, 31)
        try:
            posted_from, posted_before = seoul_day_bounds(first, last)
        except ValueError as exc:
            raise Problem(400, "invalid_filter", str(exc)) from exc
    return store.LedgerFilter(
        period=str(_period(period)) if period else None,
        posted_from=posted_from,
        posted_before=posted_before,
        fiscal_year=fiscal_year,
        account=account,
        citizen_id=citizen_id,
        posting_id=posting_id,
    )


async def _stream_rows(
    ctx: Context,
    sql: str,
    args: Sequence[Any],
    convert: Callable[[asyncpg.Record], dict[str, Any]],
) -> AsyncIterator[list[dict[str, Any]]]:
    """Rows through a server-side cursor, in one consistent snapshot, a batch at a time."""
    settings = _settings(ctx)
    batch_rows = max(settings.export_batch_rows, 1)
    async with (
        ctx.pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        await conn.execute(
            f"SET LOCAL statement_timeout = {int(settings.export_statement_timeout_ms)}"
        )
        batch: list[dict[str, Any]] = []
        async for record in conn.cursor(sql, *args, prefetch=batch_rows):
            batch.append(convert(record))
            if len(batch) >= batch_rows:
                yield batch
                batch = []
        if batch:
            yield batch


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


async def _xlsx_response(
    ctx: Context,
    batches: AsyncIterator[Sequence[dict[str, Any]]],
    columns: Sequence[exports.Column],
    sheet_title: str,
    filename: str,
    summary: Callable[[], Sequence[tuple[str, Any]]],
) -> FileResponse:
    path = exports.temp_xlsx_path()
    try:
        builder = await asyncio.to_thread(
            exports.XlsxBuilder,
            path,
            sheet_title,
            columns,
            _settings(ctx).xlsx_sheet_rows_max,
        )
        async for batch in batches:
            await asyncio.to_thread(builder.write_rows, batch)
        await asyncio.to_thread(builder.close, summary())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return FileResponse(
        path,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers=_attachment(filename),
        background=BackgroundTask(os.unlink, path),
    )


ExportFormat = Literal["json", "csv", "xlsx"]


@finance.get(
    "/ledger",
    response_model=schemas.LedgerPage,
    summary="Ledger entries: JSON pages, or the whole filtered ledger as CSV or XLSX",
    description="Filter by `period` (the statement month of the transaction) or by `from`/"
    "`to` (Seoul dates, inclusive, of posting), and optionally by fiscal year, account,"
    " citizen or posting. JSON is paged by `cursor`: the pages show exactly the entries"
    " committed when the first page was read, in entry order, so inserts meanwhile never"
    " shift or repeat a row. CSV (UTF-8 with BOM, Korean headers) and XLSX stream the whole"
    " selection in one consistent snapshot.",
    responses={
        200: {
            "content": {
                "text/csv": {},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
            }
        },
        **_responses(400),
    },
)
async def get_ledger(
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
    _: Actor = Depends(require_finance),
    ctx: Context = Depends(get_ctx),
) -> Any:
    flt = _ledger_filter(period, date_from, date_to, fiscal_year, account, citizen_id, posting_id)
    name = f"ledger-{period or 'all'}"
    if format != "json":
        sql, args = store.ledger_export_query(flt)
        rows = _stream_rows(ctx, sql, args, _ledger_row)
        if format == "csv":
            return StreamingResponse(
                exports.csv_stream(exports.LEDGER_COLUMNS, rows),
                media_type="text/csv; charset=utf-8",
                headers=_attachment(f"{name}.csv"),
            )
        totals = {"debit_won": 0, "credit_won": 0, "entries": 0}

        async def counted() -> AsyncIterator[Sequence[dict[str, Any]]]:
            async for batch in rows:
                totals["entries"] += len(batch)
                totals["debit_won"] += sum(r["debit_won"] for r in batch)
                totals["credit_won"] += sum(r["credit_won"] for r in batch)
                yield batch

        return await _xlsx_response(
            ctx,
            counted(),
            exports.LEDGER_COLUMNS,
            "원장",
            f"{name}.xlsx",
            lambda: [
                ("분개 수 (entries)", totals["entries"]),
                ("차변 합계 (debits, won)", totals["debit_won"]),
                ("대변 합계 (credits, won)", totals["credit_won"]),
                ("조건 (filter)", flt.key()),
            ],
        )
    settings = _settings(ctx)
    page_size = min(limit or settings.ledger_page_size_default, settings.page_size_max)
    async with (
        ctx.pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        if cursor is None:
            snapshot = await store.current_snapshot(conn)
            after_id = 0
            total_row = await store.ledger_totals(conn, flt, snapshot)
            totals_out = schemas.LedgerTotals(**dict(total_row))
        else:
            payload = _decode_cursor(cursor)
            if payload.get("f") != flt.key():
                raise Problem(400, "invalid_cursor", "the cursor belongs to a different filter")
            try:
                snapshot = str(payload["s"])
                after_id = int(payload["a"])
                totals_out = schemas.LedgerTotals(**payload["t"])
            except (KeyError, TypeError, ValueError) as exc:
                raise Problem(400, "invalid_cursor", "the cursor is damaged") from exc
        try:
            records = await store.ledger_page(conn, flt, snapshot, after_id, page_size + 1)
        except asyncpg.DataError as exc:
            raise Problem(400, "invalid_cursor", "the cursor is damaged") from exc
    more = len(records) > page_size
    records = records[:page_size]
    entries = [schemas.LedgerEntryOut(**_ledger_row(r)) for r in records]
    next_cursor = (
        _encode_cursor(
            {
                "s": snapshot,
                "a": records[-1]["id"],
                "f": flt.key(),
                "t": totals_out.model_dump(),
            }
        )
        if more
        else None
    )
    return schemas.LedgerPage(
        entries=entries, totals=totals_out, next_cursor=next_cursor, snapshot=snapshot
    )


@finance.get(
    "/ledger/trial-balance",
    response_model=schemas.TrialBalanceOut,
    summary="Trial balance (시산표): debits, credits and balance per account, from the entries",
)
async def get_trial_balance(
    fiscal_year: int | None = Query(None, ge=schemas.YEAR_MIN, le=schemas.YEAR_MAX),
    as_of: IsoInstant | None = Query(None),
    _: Actor = Depends(require_finance),
    ctx: Context = Depends(get_ctx),
) -> schemas.TrialBalanceOut:
    if as_of is not None and as_of.tzinfo is None:
        raise Problem(400, "invalid_as_of", "as_of needs a UTC offset (e.g. +09:00)")
    async with ctx.pool.acquire() as conn:
        rows = await store.trial_balance(conn, fiscal_year, as_of)
    lines = [schemas.TrialBalanceLine(**dict(r)) for r in rows]
    debits = sum(line.debit_won for line in lines)
    credits = sum(line.credit_won for line in lines)
    return schemas.TrialBalanceOut(
        fiscal_year=fiscal_year,
        as_of=as_of,
        accounts=lines,
        debit_won=debits,
        credit_won=credits,
        balanced=debits == credits,
    )


# --- periods: statements, close, payout file ---------------------------------------------


def _period_out(row: asyncpg.Record | None, period: Period) -> schemas.PeriodOut:
    if row is None:
        return schemas.PeriodOut(period=str(period), status="open")
    fields = {k: row[k] for k in schemas.PeriodOut.model_fields if k in row}
    return schemas.PeriodOut(**fields)


@finance.get(
    "/periods",
    response_model=list[schemas.PeriodOut],
    summary="Months and their close status (months never touched are open and not listed)",
)
async def list_periods(
    period_from: str = Query(alias="from", pattern=schemas.PERIOD_PATTERN),
    period_to: str = Query(alias="to", pattern=schemas.PERIOD_PATTERN),
    _: Actor = Depends(require_finance),
    ctx: Context = Depends(get_ctx),
) -> list[schemas.PeriodOut]:
    first, last = _period(period_from), _period(period_to)
    async with ctx.pool.acquire() as conn:
        rows = await store.periods(conn, first, last)
    return [_period_out(r, Period.parse(r["period"])) for r in rows]


def _statement_row(r: asyncpg.Record, closed: bool) -> dict[str, Any]:
    adjustment_periods = [p for p in str(r["adjustment_periods"] or "").split(",") if p]
    notes: list[str] = []
    if adjustment_periods:
        joined = ", ".join(adjustment_periods)
        notes.append(
            f"마감월 조정 {policy_rules.won(int(r['adjustment_won']))}원 ({joined} 근무분;"
            f" adjustment for closed {joined})"
        )
    held = bool(r["held_back"]) if closed else False
    if closed and int(r["balance_won"]) != int(r["payable_won"]):
        carried_in = int(r["balance_won"]) - int(r["payable_won"])
        notes.append(
            f"이전 미지급 잔액 {policy_rules.won(carried_in)}원 포함"
            f" (includes {policy_rules.won(carried_in)} won owed from earlier months)"
        )
    if held:
        notes.append("지급보류: 계좌정보 미등록, 다음 달로 이월 (held back: no payee details)")
    elif closed and int(r["carried_forward_won"]) < 0:
        notes.append("초과지급분 이월, 다음 지급에서 차감 (overpayment netted later)")
    return {
        "period": r.get("period", ""),
        "citizen_id": r["citizen_id"],
        "lines_count": int(r["lines_count"]),
        "minutes_paid": int(r["minutes_paid"]),
        "gross_won": int(r["gross_won"]),
        "capped_won": int(r["capped_won"]),
        "payable_won": int(r["payable_won"]),
        "adjustment_won": int(r["adjustment_won"]),
        "adjustment_periods": adjustment_periods,
        "balance_won": int(r["balance_won"]) if closed else None,
        "payout_won": int(r["payout_won"]) if closed else None,
        "carried_forward_won": int(r["carried_forward_won"]) if closed else None,
        "held_back": held,
        "note": "; ".join(notes),
    }


def _statement_export_row(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "held_back": "예" if row["held_back"] else ""}


@finance.get(
    "/periods/{period}/statements",
    response_model=schemas.StatementsPage,
    summary="Per citizen: minutes, gross, capped, payable (frozen once the month is closed)",
    description="An open month's statements are live (`provisional`); a closed month's are"
    " frozen at close and also show what each citizen is paid in the payout file, what is"
    " carried forward, and who is held back. Adjustments (payouts for shifts of an earlier,"
    " closed month) are shown with the month they adjust.",
    responses={
        200: {
            "content": {
                "text/csv": {},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
            }
        },
    },
)
async def get_statements(
    period: str = PeriodPath,
    format: ExportFormat = Query("json"),
    cursor: str | None = Query(None, max_length=200),
    limit: int | None = Query(None, ge=1),
    _: Actor = Depends(require_finance),
    ctx: Context = Depends(get_ctx),
) -> Any:
    month = _period(period)
    settings = _settings(ctx)
    async with ctx.pool.acquire() as conn:
        row = await store.period_row(conn, month)
    closed = row is not None and row["status"] == "closed"

    async def fetch(
        conn: asyncpg.Connection, after: str | None, size: int | None
    ) -> list[dict[str, Any]]:
        if closed:
            records = await store.frozen_statements(conn, month, after, size)
        else:
            records = await store.live_statements(conn, month, after, size)
        out = []
        for r in records:
            item = _statement_row(r, closed)
            item["period"] = str(month)
            out.append(item)
        return out

    if format != "json":

        async def batches() -> AsyncIterator[Sequence[dict[str, Any]]]:
            after: str | None = None
            size = max(settings.export_batch_rows, 1)
            async with ctx.pool.acquire() as conn:
                while True:
                    batch = await fetch(conn, after, size)
                    if not batch:
                        return
                    yield [_statement_export_row(r) for r in batch]
                    after = batch[-1]["citizen_id"]

        name = f"statements-{month}"
        if format == "csv":
            return StreamingResponse(
                exports.csv_stream(exports.STATEMENT_COLUMNS, batches()),
                media_type="text/csv; charset=utf-8",
                headers=_attachment(f"{name}.csv"),
            )
        async with ctx.pool.acquire() as conn:
            totals = await (
                store.frozen_totals(conn, month) if closed else store.live_totals(conn, month)
            )
        return await _xlsx_response(
            ctx,
            batches(),
            exports.STATEMENT_COLUMNS,
            "명세서",
            f"{name}.xlsx",
            lambda: [
                ("귀속월 (period)", str(month)),
                ("상태 (status)", "마감 closed" if closed else "진행중 open (provisional)"),
                ("시민 수 (citizens)", int(totals["citizens_count"])),
                ("산정액 합계 (gross, won)", int(totals["gross_won"])),
                ("상한초과 합계 (capped, won)", int(totals["capped_won"])),
                ("지급대상액 합계 (payable, won)", int(totals["payable_won"])),
            ],
        )
    page_size = min(limit or settings.ledger_page_size_default, settings.page_size_max)
    async with ctx.pool.acquire() as conn:
        items = await fetch(conn, cursor, page_size + 1)
        totals = await (
            store.frozen_totals(conn, month) if closed else store.live_totals(conn, month)
        )
    more = len(items) > page_size
    items = items[:page_size]
    totals_out = schemas.StatementTotals(
        citizens_count=int(totals["citizens_count"]),
        lines_count=int(totals["lines_count"]),
        minutes_paid=int(totals["minutes_paid"]),
        gross_won=int(totals["gross_won"]),
        capped_won=int(totals["capped_won"]),
        payable_won=int(totals["payable_won"]),
        adjustment_won=int(totals["adjustment_won"]),
        payout_won=int(totals["payout_won"]) if closed else None,
        carried_forward_won=int(totals["carried_forward_won"]) if closed else None,
        held_back_count=int(totals["held_back_count"]) if closed else None,
    )
    return schemas.StatementsPage(
        period=str(month),
        status="closed" if closed else "open",
        provisional=not closed,
        closed_at=row["closed_at"] if closed and row is not None else None,
        totals=totals_out,
        statements=[schemas.StatementOut(**i) for i in items],
        next_cursor=items[-1]["citizen_id"] if more else None,
    )


@finance.post(
    "/periods/{period}/close",
    response_model=schemas.PeriodOut,
    summary="Close a month: freeze its statements and fix its payout file (idempotent)",
    description="Allowed once the month has ended (Seoul time). Each citizen's payable of"
    " this and earlier months moves to payout due, except for citizens without payee"
    " details, who are held back and carried forward (not lost). Attendance for a closed"
    " month that arrives later is accrued in the next open month as an adjustment. Closing"
    " a closed month answers the same close again.",
    responses=_responses(409),
)
async def close_period(
    period: str = PeriodPath,
    actor: Actor = Depends(require_finance),
    ctx: Context = Depends(get_ctx),
) -> schemas.PeriodOut:
    month = _period(period)
    settings = _settings(ctx)

    async def work() -> asyncpg.Record:
        async with ctx.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                f"SET LOCAL statement_timeout = {int(settings.close_statement_timeout_ms)}"
            )
            return await usecases.close_period(conn, month, closed_by=actor.label, now=ctx.now())

    row = await retry_conflicts(work)
    ctx.relay.wake()
    log.info("period closed", extra={"period": str(month)})
    return _period_out(row, month)


@finance.post(
    "/periods/{period}/mark-paid",
    response_model=schemas.PeriodOut,
    summary="Record that a closed month's payout file was transferred (idempotent)",
    description="Moves the month's payout due to paid in the ledger.",
    responses=_responses(409),
)
async def mark_paid(
    period: str = PeriodPath,
    actor: Actor = Depends(require_finance),
    ctx: Context = Depends(get_ctx),
) -> schemas.PeriodOut:
    month = _period(period)

    async def work() -> asyncpg.Record:
        async with ctx.pool.acquire() as conn, conn.transaction():
            return await usecases.mark_paid(conn, month, paid_by=actor.label, now=ctx.now())

    return _period_out(await retry_conflicts(work), month)


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
        **_responses(404, 409),
    },
)
async def get_payout_file(
    period: str = PeriodPath,
    format: Literal["csv", "json"] = Query("csv"),
    actor: Actor = Depends(require_finance),
    ctx: Context = Depends(get_ctx),
) -> Any:
    month = _period(period)
    settings = _settings(ctx)
    memo = f"{settings.payout_memo_prefix} {month}"
    async with ctx.pool.acquire() as conn, conn.transaction():
        row = await store.period_row(conn, month)
        if row is None or row["status"] != "closed":
            raise Problem(
                409, "period_not_closed", f"{month} is not closed; a payout file needs a close"
            )
        lines = await store.payout_file_rows(conn, month)
        held = await store.held_back(conn, month)
        missing = [r["citizen_id"] for r in lines if r["key_id"] is None]
        if missing:
            raise Problem(409, "payee_missing", f"payee details vanished for {missing[:5]}")
        if format == "json":
            return schemas.PayoutFileSummary(
                period=str(month),
                closed_at=row["closed_at"],
                payout_count=len(lines),
                payout_won=sum(int(r["payout_won"]) for r in lines),
                lines=[
                    schemas.PayoutLineOut(
                        citizen_id=r["citizen_id"],
                        bank_code=r["bank_code"],
                        account_masked=r["account_masked"],
                        holder_masked=r["holder_masked"],
                        amount_won=int(r["payout_won"]),
                    )
                    for r in lines
                ],
                held_back=[
                    schemas.HeldBackOut(
                        citizen_id=h["citizen_id"],
                        carried_forward_won=int(h["carried_forward_won"]),
                        reason="no_payee_details",
                    )
                    for h in held
                ],
            )
        await store.log_payee_access(
            conn,
            citizens=[r["citizen_id"] for r in lines],
            key_ids=[r["key_id"] for r in lines],
            action="decrypt",
            purpose=f"payout file {month}",
            actor_role=actor.role,
            actor_staff_id=actor.staff_id,
            request_id=actor.request_id,
            at=ctx.now(),
        )
    cipher = _cipher(ctx)
    bank_rows: list[dict[str, Any]] = []
    for r in lines:
        details = cipher.open(
            r["citizen_id"], Sealed(r["key_id"], bytes(r["nonce"]), bytes(r["ciphertext"]))
        )
        bank_rows.append(
            {
                "bank_code": details.bank_code,
                "account_number": details.account_number,
                "account_holder": details.account_holder,
                "amount_won": int(r["payout_won"]),
                "memo": memo,
            }
        )
    body = exports.csv_chunk(exports.PAYOUT_COLUMNS, bank_rows, header=True, guard=False)
    log.info(
        "payout file produced",
        extra={"period": str(month), "lines": len(bank_rows), "held_back": len(held)},
    )
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            **_attachment(f"payout-{month}.csv"),
            "X-Payout-Count": str(len(bank_rows)),
            "X-Payout-Total-Won": str(sum(r["amount_won"] for r in bank_rows)),
            "X-Held-Back-Count": str(len(held)),
        },
    )


# --- payees ------------------------------------------------------------------------------


def _payee_out(row: asyncpg.Record) -> schemas.PayeeOut:
    return schemas.PayeeOut(
        citizen_ref=row["citizen_id"],
        bank_code=row["bank_code"],
        account_masked=row["account_masked"],
        holder_masked=row["holder_masked"],
        key_id=row["key_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


@finance.put(
    "/payees/{citizen_ref}",
    response_model=schemas.PayeeOut,
    summary="Enter a citizen's bank details (stored encrypted; answered masked)",
    description="Entered by finance staff from the citizen's registration form. The details"
    " are sealed with AES-256-GCM under the active key and never returned in full by any"
    " endpoint; the write is recorded in the payee access log.",
)
async def put_payee(
    body: schemas.PayeeBody,
    citizen_ref: str = Path(pattern=schemas.CITIZEN_PATTERN),
    actor: Actor = Depends(require_finance),
    ctx: Context = Depends(get_ctx),
) -> schemas.PayeeOut:
    details = PayeeDetails(body.bank_code, body.account_number, body.account_holder.strip())
    sealed = _cipher(ctx).seal(citizen_ref, details)
    now = ctx.now()
    async with ctx.pool.acquire() as conn, conn.transaction():
        row = await store.upsert_payee(
            conn,
            citizen_id=citizen_ref,
            key_id=sealed.key_id,
            nonce=sealed.nonce,
            ciphertext=sealed.ciphertext,
            bank_code=details.bank_code,
            account_masked=mask_account(details.account_number),
            holder_masked=mask_holder(details.account_holder),
            now=now,
            updated_by=actor.label,
        )
        await store.log_payee_access(
            conn,
            citizens=[citizen_ref],
            key_ids=[sealed.key_id],
            action="write",
            purpose="payee details entered from the registration form",
            actor_role=actor.role,
            actor_staff_id=actor.staff_id,
            request_id=actor.request_id,
            at=now,
        )
    return _payee_out(row)


@finance.get(
    "/payees/{citizen_ref}",
    response_model=schemas.PayeeOut,
    summary="A citizen's payee details, masked",
    responses=_responses(404),
)
async def get_payee(
    citizen_ref: str = Path(pattern=schemas.CITIZEN_PATTERN),
    _: Actor = Depends(require_finance),
    ctx: Context = Depends(get_ctx),
) -> schemas.PayeeOut:
    async with ctx.pool.acquire() as conn:
        row = await store.payee_masked(conn, citizen_ref)
    if row is None:
        raise Problem(404, "not_found", f"no payee details for {citizen_ref}")
    return _payee_out(row)


ROUTERS = (admin, finance)

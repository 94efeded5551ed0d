"""Reads of the allowance: policy tables, budget figures, ledger pages and exports, the
trial balance, months and statements, the payout file and masked payees — and how each is
rendered (schemas, CSV, XLSX). Nothing here writes: every write, the payout file's
access-log rows included, lives in `usecases`."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import date, datetime
from typing import Any, Literal

import asyncpg
import orjson
import pydantic
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from allowance import exports, payout_exports, schemas
from allowance.domain import approvals as approval_rules
from allowance.domain import ledger, outcomes, payout_file, transfer_results, withholding
from allowance.domain import policy as rules
from allowance.domain.calendar import Period
from allowance.domain.ledger import ACCOUNTS, Account
from allowance.payees import BankLine
from allowance.settings import Context
from allowance.store import (
    AccessLogRow,
    ApprovalLogRow,
    ApprovalRow,
    BudgetChange,
    HeldBackRow,
    LedgerEntryRow,
    LedgerFilter,
    PayeeRow,
    PayoutFileRow,
    PayoutRow,
    PeriodRow,
    PolicyKind,
    PolicyVersion,
    StaffRow,
    StatementRow,
    StatementShiftRow,
    StatementTotalsRow,
    Store,
    TransferResultRow,
)
from shared import metrics
from shared.problems import Problem
from shared.seoul import day_bounds, seoul_date
from shared.web import page_limit, page_of

log = logging.getLogger(__name__)

ExportFormat = Literal["json", "csv", "xlsx"]
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def parse_period(text: str) -> Period:
    """A `YYYY-MM` month, or 400 `invalid_period`."""
    try:
        return Period.parse(text)
    except ValueError as exc:
        raise Problem(400, "invalid_period", str(exc)) from exc


def require_offset(as_of: datetime | None) -> None:
    if as_of is not None and as_of.tzinfo is None:
        raise Problem(400, "invalid_as_of", "as_of needs a UTC offset (e.g. +09:00)")


# --- policy ------------------------------------------------------------------------------


async def policy_in_force(ctx: Context, kind: PolicyKind, missing: str) -> PolicyVersion:
    """The latest version of one policy table, or 404 saying none was set yet."""
    async with ctx.pool.acquire() as conn:
        found = await Store(conn).latest_policy(kind)
    if found is None:
        raise Problem(404, "not_found", missing)
    return found


def _version(found: PolicyVersion) -> dict[str, Any]:
    """The fields every policy answer starts with: which version, set when, by whom, why."""
    return {
        "version": found.id,
        "set_at": found.set_at,
        "set_by": found.set_by,
        "note": found.note,
    }


def rates_out(found: PolicyVersion) -> schemas.RatesOut:
    return schemas.RatesOut(**_version(found), rates=[schemas.RateIn(**r) for r in found.body])


def minimum_wages_out(
    found: PolicyVersion, warnings: Sequence[rules.Violation] = ()
) -> schemas.MinimumWagesOut:
    return schemas.MinimumWagesOut(
        **_version(found),
        minimum_wages=[schemas.MinimumWageIn(**r) for r in found.body],
        rate_warnings=[schemas.RateWarning(**w.as_error()) for w in warnings],
    )


def caps_out(found: PolicyVersion) -> schemas.CapsOut:
    return schemas.CapsOut(**_version(found), caps=[schemas.CapIn(**r) for r in found.body])


def withholding_out(found: PolicyVersion, today: date) -> schemas.WithholdingOut:
    table = withholding.withholding_from_json(found.body, found.id)
    entry = table.entry_on(today)
    in_force = withholding.withholding_to_json([entry])[0] if entry is not None else None
    return schemas.WithholdingOut(
        **_version(found),
        withholding=[schemas.WithholdingIn(**r) for r in found.body],
        in_force=schemas.WithholdingIn(**in_force) if in_force is not None else None,
    )


# --- budget ------------------------------------------------------------------------------


def budget_out(figures: ledger.BudgetFigures, as_of: datetime | None) -> schemas.BudgetOut:
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
        transfer_failed_won=figures.transfer_failed_won,
        withheld_won=figures.withheld_won,
        as_of=as_of,
    )


def admin_budget_out(
    figures: ledger.BudgetFigures, history: Sequence[BudgetChange]
) -> schemas.AdminBudgetOut:
    return schemas.AdminBudgetOut(
        **budget_out(figures, None).model_dump(),
        history=[schemas.BudgetChangeOut(**asdict(c)) for c in history],
    )


async def _require_budget(db: Store, fiscal_year: int) -> None:
    if fiscal_year not in await db.budget_years():
        raise Problem(404, "no_budget", f"no budget has been set for {fiscal_year}")


async def admin_budget(ctx: Context, fiscal_year: int) -> schemas.AdminBudgetOut:
    """A fiscal year's figures with the history of its changes (404 without a budget)."""
    async with ctx.pool.acquire() as conn:
        db = Store(conn)
        await _require_budget(db, fiscal_year)
        figures = ledger.budget_figures(fiscal_year, await db.year_balances(fiscal_year))
        return admin_budget_out(figures, await db.budget_history(fiscal_year))


async def budget(
    ctx: Context, fiscal_year: int | None, as_of: datetime | None
) -> schemas.BudgetOut:
    """A fiscal year's figures (the current Seoul year by default), now or as of an instant."""
    year = fiscal_year if fiscal_year is not None else Period.of(ctx.now()).year
    require_offset(as_of)
    async with ctx.pool.acquire() as conn:
        db = Store(conn)
        await _require_budget(db, year)
        balances = (
            await db.year_balances_as_of(year, as_of)
            if as_of is not None
            else await db.year_balances(year)
        )
    return budget_out(ledger.budget_figures(year, balances), as_of)


async def refresh_budget_metrics(ctx: Context) -> None:
    """Set the budget gauges (total and available per fiscal year) for the years around
    now; the alert on a nearly exhausted budget reads them."""
    current = Period.of(ctx.now()).year
    async with ctx.pool.acquire() as conn:
        db = Store(conn)
        for year in await db.budget_years():
            if current - 1 <= year <= current + 2:
                figures = ledger.budget_figures(year, await db.year_balances(year))
                metrics.BUDGET_TOTAL_WON.labels(str(year)).set(figures.total_won)
                metrics.BUDGET_AVAILABLE_WON.labels(str(year)).set(figures.available_won)


# --- ledger ------------------------------------------------------------------------------


def _ledger_row(r: LedgerEntryRow) -> dict[str, Any]:
    return {
        "entry_id": r.id,
        "transaction_id": r.transaction_id,
        "kind": r.kind,
        "fiscal_year": r.fiscal_year,
        "period": r.period,
        "posted_at": r.posted_at,
        "occurred_at": r.occurred_at,
        "account": r.account,
        "account_name": ACCOUNTS[Account(r.account)].name_ko,
        "citizen_id": r.citizen_id,
        "posting_id": r.posting_id,
        "leg": r.leg,
        "amount_won": r.amount_won,
        "debit_won": max(r.amount_won, 0),
        "credit_won": max(-r.amount_won, 0),
        "source_event_id": str(r.source_event_id),
        "memo": r.memo,
        "kind_name": ledger.TXN_KIND_KO.get(r.kind, r.kind),
        "memo_ko": ledger.memo_ko(r.kind, r.period, r.citizen_id, r.posting_id),
    }


# The ledger's cursor carries the snapshot, the last entry id, the filter's fingerprint and
# the totals of the first page, so a page never recounts and never mixes filters; a bad one
# is a 400 `invalid_cursor` (the code clients of this list already handle).
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


def ledger_filter(
    period: str | None,
    date_from: date | None,
    date_to: date | None,
    fiscal_year: int | None,
    account: str | None,
    citizen_id: str | None,
    posting_id: str | None,
) -> LedgerFilter:
    """The ledger filter of a request's query, or 400 naming what is wrong."""
    if period is not None and (date_from is not None or date_to is not None):
        raise Problem(400, "invalid_filter", "give either period or from/to, not both")
    if account is not None and account not in {a.value for a in Account}:
        raise Problem(400, "invalid_account", f"unknown account {account!r}")
    posted_from = posted_before = None
    if date_from is not None or date_to is not None:
        first = date_from or date(2000, 1, 1)
        last = date_to or date(9998, 12, 31)
        try:
            posted_from, posted_before = day_bounds(first, last)
        except ValueError as exc:
            raise Problem(400, "invalid_filter", str(exc)) from exc
    return LedgerFilter(
        period=str(parse_period(period)) if period else None,
        posted_from=posted_from,
        posted_before=posted_before,
        fiscal_year=fiscal_year,
        account=account,
        citizen_id=citizen_id,
        posting_id=posting_id,
    )


async def _ledger_batches(ctx: Context, flt: LedgerFilter) -> AsyncIterator[list[dict[str, Any]]]:
    """The filtered ledger through a server-side cursor, in one consistent snapshot, a
    batch at a time."""
    settings = ctx.settings
    async with (
        ctx.pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        db = Store(conn)
        await db.set_statement_timeout(settings.export_statement_timeout_ms)
        async for batch in db.ledger_batches(flt, max(settings.export_batch_rows, 1)):
            yield [_ledger_row(r) for r in batch]


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


def _csv_response(
    columns: Sequence[exports.Column],
    batches: AsyncIterator[Sequence[dict[str, Any]]],
    filename: str,
) -> StreamingResponse:
    return StreamingResponse(
        exports.csv_stream(columns, batches),
        media_type="text/csv; charset=utf-8",
        headers=_attachment(filename),
    )


async def _xlsx_response(
    ctx: Context,
    batches: AsyncIterator[Sequence[dict[str, Any]]],
    columns: Sequence[exports.Column],
    sheet_title: str,
    filename: str,
    summary: Callable[[], Sequence[tuple[str, Any]]],
    filter_text: str = "",
    totals: Callable[[], Sequence[tuple[str, int]]] = lambda: (),
    totals_row: bool = False,
) -> FileResponse:
    path = exports.temp_xlsx_path()
    try:
        builder = await asyncio.to_thread(
            exports.XlsxBuilder,
            path,
            sheet_title,
            columns,
            ctx.settings.xlsx_sheet_rows_max,
            filter_text,
            totals_row,
        )
        async for batch in batches:
            await asyncio.to_thread(builder.write_rows, batch)
        await asyncio.to_thread(builder.close, summary(), totals())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return FileResponse(
        path,
        media_type=XLSX_MEDIA_TYPE,
        headers=_attachment(filename),
        background=BackgroundTask(os.unlink, path),
    )


async def ledger_export(
    ctx: Context, flt: LedgerFilter, fmt: Literal["csv", "xlsx"], name: str
) -> Response:
    """The whole filtered ledger as CSV (streamed) or XLSX (with a summary sheet)."""
    rows = _ledger_batches(ctx, flt)
    if fmt == "csv":
        return _csv_response(exports.LEDGER_COLUMNS, rows, f"{name}.csv")
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
        filter_ko(flt),
        lambda: [
            ("분개 수", totals["entries"]),
            ("차변(원)", totals["debit_won"]),
            ("대변(원)", totals["credit_won"]),
        ],
        totals_row=True,
    )


def filter_ko(flt: LedgerFilter) -> str:
    """A ledger filter in words, for the printed page and the summary sheet."""
    parts = []
    if flt.period:
        year, _, month = flt.period.partition("-")
        parts.append(f"귀속월 {year}년 {int(month)}월")
    if flt.posted_from or flt.posted_before:
        first = seoul_date(flt.posted_from).isoformat() if flt.posted_from else "처음"
        last = seoul_date(flt.posted_before).isoformat() if flt.posted_before else "지금"
        parts.append(f"전기일 {first} ~ {last} 전")
    if flt.fiscal_year:
        parts.append(f"회계연도 {flt.fiscal_year}년")
    if flt.account:
        name = ACCOUNTS[Account(flt.account)].name_ko if flt.account in set(Account) else ""
        parts.append(f"계정 {name} ({flt.account})" if name else f"계정 {flt.account}")
    if flt.citizen_id:
        parts.append(f"시민 {flt.citizen_id}")
    if flt.posting_id:
        parts.append(f"공고 {flt.posting_id}")
    return "조건: " + (" · ".join(parts) if parts else "전체")


async def ledger_page(
    ctx: Context, flt: LedgerFilter, cursor: str | None, limit: int | None
) -> schemas.LedgerPage:
    """One JSON page of the filtered ledger: the entries committed when the first page was
    read (the snapshot rides in the cursor), in entry order."""
    page_size = page_limit(limit, ctx.settings, ctx.settings.ledger_page_size_default)
    async with (
        ctx.pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        db = Store(conn)
        if cursor is None:
            snapshot = await db.current_snapshot()
            after_id = 0
            totals_out = schemas.LedgerTotals(**asdict(await db.ledger_totals(flt, snapshot)))
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
            records = await db.ledger_page(flt, snapshot, after_id, page_size + 1)
        except asyncpg.DataError as exc:
            raise Problem(400, "invalid_cursor", "the cursor is damaged") from exc
    return page_of(
        schemas.LedgerPage,
        records,
        page_size,
        lambda r: schemas.LedgerEntryOut(**_ledger_row(r)),
        lambda r: _encode_cursor(
            {"s": snapshot, "a": r.id, "f": flt.key(), "t": totals_out.model_dump()}
        ),
        totals=totals_out,
        snapshot=snapshot,
    )


async def trial_balance(
    ctx: Context, fiscal_year: int | None, as_of: datetime | None
) -> schemas.TrialBalanceOut:
    """Debits, credits and balance per account, from the entries alone."""
    require_offset(as_of)
    async with ctx.pool.acquire() as conn:
        rows = await Store(conn).trial_balance(fiscal_year, as_of)
    lines = [schemas.TrialBalanceLine(**asdict(r)) for r in rows]
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


# --- periods and statements --------------------------------------------------------------


def period_out(row: PeriodRow | None, period: Period) -> schemas.PeriodOut:
    if row is None:
        return schemas.PeriodOut(period=str(period), status="open")
    values = asdict(row)
    return schemas.PeriodOut(**{k: values[k] for k in schemas.PeriodOut.model_fields})


async def periods(ctx: Context, first: Period, last: Period) -> list[schemas.PeriodOut]:
    async with ctx.pool.acquire() as conn:
        rows = await Store(conn).periods(first, last)
    return [period_out(r, Period.parse(r.period)) for r in rows]


def _statement_row(r: StatementRow, period: Period, closed: bool) -> dict[str, Any]:
    adjustment_periods = [p for p in str(r.adjustment_periods or "").split(",") if p]
    notes: list[str] = []
    if adjustment_periods:
        joined = ", ".join(adjustment_periods)
        notes.append(
            f"마감월 조정 {rules.won(r.adjustment_won)}원 ({joined} 근무분;"
            f" adjustment for closed {joined})"
        )
    held = bool(r.held_back) if closed else False
    balance_won = int(r.balance_won or 0)
    if closed and balance_won != r.payable_won:
        carried_in_won = balance_won - r.payable_won
        notes.append(
            f"이전 미지급 잔액 {rules.won(carried_in_won)}원 포함"
            f" (includes {rules.won(carried_in_won)} won owed from earlier months)"
        )
    paid = _payout_figures(r) if closed else _NO_PAYOUT
    if paid["failed_carried_in_won"]:
        notes.append(
            f"이체불능 이월분 {rules.won(paid['failed_carried_in_won'])}원 재지급"
            f" (a failed transfer of {rules.won(paid['failed_carried_in_won'])} won paid again)"
        )
    if paid["transfer_status"] == "failed":
        notes.append(
            "이체불능: 다음 달로 이월 (transfer failed, carried into the next month"
            + (f": {paid['transfer_reason']})" if paid["transfer_reason"] else ")")
        )
    if held:
        notes.append("지급보류: 계좌정보 미등록, 다음 달로 이월 (held back: no payee details)")
    elif closed and int(r.carried_forward_won or 0) < 0:
        notes.append("초과지급분 이월, 다음 지급에서 차감 (overpayment netted later)")
    return {
        "period": str(period),
        "citizen_id": r.citizen_id,
        "lines_count": r.lines_count,
        "minutes_paid": r.minutes_paid,
        "gross_won": r.gross_won,
        "capped_won": r.capped_won,
        "payable_won": r.payable_won,
        "adjustment_won": r.adjustment_won,
        "adjustment_periods": adjustment_periods,
        "balance_won": balance_won if closed else None,
        "payout_won": int(r.payout_won or 0) if closed else None,
        "carried_forward_won": int(r.carried_forward_won or 0) if closed else None,
        "held_back": held,
        "note": "; ".join(notes),
        **paid,
    }


_NO_PAYOUT: dict[str, Any] = {
    "withholding_kind": None,
    "payout_gross_won": None,
    "income_tax_won": None,
    "local_income_tax_won": None,
    "net_won": None,
    "failed_carried_in_won": None,
    "transfer_won": None,
    "transfer_status": None,
    "transfer_reason": None,
}


def _payout_figures(r: StatementRow) -> dict[str, Any]:
    """A closed month's payout line as the statement shows it: gross before withholding,
    the two taxes, the net, a failed transfer of an earlier month paid again with it, the
    sum sent to the bank, and the bank's result (None until finance records it). A citizen
    the close paid nothing has zeros."""
    gross = int(r.payout_gross_won or 0)
    income_tax = int(r.income_tax_won or 0)
    local_tax = int(r.local_income_tax_won or 0)
    return {
        "withholding_kind": r.withholding_kind,
        "payout_gross_won": gross,
        "income_tax_won": income_tax,
        "local_income_tax_won": local_tax,
        "net_won": gross - income_tax - local_tax,
        "failed_carried_in_won": int(r.failed_carried_in_won or 0),
        "transfer_won": int(r.transfer_won or 0),
        "transfer_status": r.transfer_status,
        "transfer_reason": r.transfer_reason or None,
    }


_TRANSFER_STATUS_KO = {"paid": "이체완료", "failed": "이체불능"}


def _statement_export_row(
    row: dict[str, Any], shifts: Sequence[StatementShift] = ()
) -> dict[str, Any]:
    status = row.get("transfer_status")
    return {
        **row,
        "held_back": "예" if row["held_back"] else "",
        "transfer_status": _TRANSFER_STATUS_KO.get(status, "") if status else "",
        **_shift_cells(shifts),
    }


class _Statements:
    """A month's statements, live (open month) or frozen (closed month)."""

    def __init__(self, period: Period, row: PeriodRow | None) -> None:
        self.period = period
        self.row = row
        self.closed = row is not None and row.closed

    async def fetch(self, db: Store, after: str | None, size: int | None) -> list[dict[str, Any]]:
        if self.closed:
            rows = await db.frozen_statements(self.period, after, size)
        else:
            rows = await db.live_statements(self.period, after, size)
        return [_statement_row(r, self.period, self.closed) for r in rows]

    async def totals(self, db: Store) -> StatementTotalsRow:
        if self.closed:
            return await db.frozen_totals(self.period)
        return await db.live_totals(self.period)


async def statements(
    ctx: Context, period: Period, fmt: ExportFormat, cursor: str | None, limit: int | None
) -> schemas.StatementsPage | Response:
    """A month's statements: a JSON page (by citizen id), or the whole month as CSV/XLSX."""
    async with ctx.pool.acquire() as conn:
        found = _Statements(period, await Store(conn).period_row(period))
    if fmt != "json":
        return await _statements_export(ctx, found, fmt)
    page_size = page_limit(limit, ctx.settings, ctx.settings.ledger_page_size_default)
    async with ctx.pool.acquire() as conn:
        db = Store(conn)
        items = await found.fetch(db, cursor, page_size + 1)
        totals = await found.totals(db)
    closed = found.closed
    # An open month's totals have no close figures (None); a frozen month's have them all.
    totals_out = schemas.StatementTotals(**asdict(totals))
    return page_of(
        schemas.StatementsPage,
        items,
        page_size,
        lambda i: schemas.StatementOut(**i),
        lambda i: str(i["citizen_id"]),
        period=str(period),
        status="closed" if closed else "open",
        provisional=not closed,
        closed_at=found.row.closed_at if closed and found.row is not None else None,
        totals=totals_out,
    )


async def _statements_export(
    ctx: Context, found: _Statements, fmt: Literal["csv", "xlsx"]
) -> Response:
    async def batches() -> AsyncIterator[Sequence[dict[str, Any]]]:
        after: str | None = None
        size = max(ctx.settings.export_batch_rows, 1)
        async with ctx.pool.acquire() as conn:
            db = Store(conn)
            while True:
                batch = await found.fetch(db, after, size)
                if not batch:
                    return
                citizen_ids = [r["citizen_id"] for r in batch]
                shifts = _shifts_by_citizen(await db.statement_shifts(found.period, citizen_ids))
                yield [_statement_export_row(r, shifts.get(r["citizen_id"], ())) for r in batch]
                after = batch[-1]["citizen_id"]

    name = f"statements-{found.period}"
    if fmt == "csv":
        return _csv_response(exports.STATEMENT_COLUMNS, batches(), f"{name}.csv")
    async with ctx.pool.acquire() as conn:
        totals = await found.totals(Store(conn))
    return await _xlsx_response(
        ctx,
        batches(),
        exports.STATEMENT_COLUMNS,
        "명세서",
        f"{name}.xlsx",
        lambda: [
            ("귀속월 (period)", str(found.period)),
            ("상태 (status)", "마감 closed" if found.closed else "진행중 open (provisional)"),
            ("시민 수 (citizens)", totals.citizens_count),
            ("산정액 합계 (gross, won)", totals.gross_won),
            ("상한초과 합계 (capped, won)", totals.capped_won),
            ("지급대상액 합계 (payable, won)", totals.payable_won),
        ],
        f"조건: 귀속월 {found.period.year}년 {found.period.month}월 · "
        + ("마감" if found.closed else "마감 전(잠정)"),
        lambda: [
            ("시민 수", totals.citizens_count),
            ("인정시간(분)", totals.minutes_paid),
            ("산정액(원)", totals.gross_won),
            ("상한초과(원)", totals.capped_won),
            ("지급대상액(원)", totals.payable_won),
        ],
        totals_row=True,
    )


# --- payout file and payees --------------------------------------------------------------


def _masked_line(r: PayoutFileRow) -> schemas.PayoutLineOut:
    # A payout line always has payee details (the payout file refuses one without).
    assert r.bank_code is not None and r.account_masked is not None
    assert r.holder_masked is not None
    return schemas.PayoutLineOut(
        citizen_id=r.citizen_id,
        bank_code=r.bank_code,
        account_masked=r.account_masked,
        holder_masked=r.holder_masked,
        amount_won=r.payout_won,
    )


def payout_summary(
    period: Period,
    closed_at: datetime,
    lines: Sequence[PayoutFileRow],
    held: Sequence[HeldBackRow],
) -> schemas.PayoutFileSummary:
    """The payout file masked, with the citizens held back (nothing opened)."""
    return schemas.PayoutFileSummary(
        period=str(period),
        closed_at=closed_at,
        payout_count=len(lines),
        payout_won=sum(r.payout_won for r in lines),
        lines=[_masked_line(r) for r in lines],
        held_back=[
            schemas.HeldBackOut(
                citizen_id=h.citizen_id,
                carried_forward_won=h.carried_forward_won,
                reason="no_payee_details",
            )
            for h in held
        ],
    )


def payout_csv(period: Period, bank_lines: Sequence[BankLine], held_back_count: int) -> Response:
    """The bank bulk-transfer file, with headers summing it up."""
    bank_rows = [asdict(line) for line in bank_lines]
    body = exports.csv_chunk(exports.PAYOUT_COLUMNS, bank_rows, header=True, guard=False)
    log.info(
        "payout file produced",
        extra={"period": str(period), "lines": len(bank_rows), "held_back": held_back_count},
    )
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            **_attachment(f"payout-{period}.csv"),
            "X-Payout-Count": str(len(bank_rows)),
            "X-Payout-Total-Won": str(sum(r["amount_won"] for r in bank_rows)),
            "X-Held-Back-Count": str(held_back_count),
        },
    )


PayoutLayoutName = Literal["bank", "ehojo"]


def check_payout_layout(format: str, layout: str) -> None:
    """The first bank file (`layout=legacy`) exists as CSV only: refused before any payee
    is decrypted."""
    if layout == "legacy" and format == "xlsx":
        raise Problem(
            400,
            "invalid_request",
            "layout=legacy is a CSV file only",
            errors=[{"field": "layout", "message": "legacy is CSV only", "code": "invalid"}],
            ko="legacy 형식은 CSV 파일로만 받을 수 있습니다.",
        )


def payout_lines(
    period: Period,
    lines: Sequence[PayoutFileRow],
    bank_lines: Sequence[BankLine],
    payouts: Mapping[str, PayoutRow],
    closed_at: datetime,
    memo_prefix: str,
) -> list[payout_file.PayoutLine]:
    """The opened payout file as checked lines (a payee the bank would refuse is a 409)."""
    memo = payout_file.payout_memo(period, memo_prefix)
    out = []
    for sequence, (row, bank) in enumerate(zip(lines, bank_lines, strict=True), start=1):
        fixed = payouts.get(row.citizen_id)
        taxes = (
            withholding.Withholding(
                fixed.gross_won + fixed.carried_won,
                fixed.income_tax_won,
                fixed.local_tax_won,
                fixed.amount_won,
                withholding.WithholdingKind(fixed.withholding_kind),
                fixed.taxable_won,
            )
            if fixed is not None
            else withholding.Withholding(row.payout_won, 0, 0, row.payout_won)
        )
        try:
            out.append(
                payout_file.payout_line(
                    sequence=sequence,
                    citizen_id=row.citizen_id,
                    period=period,
                    paid_on=fixed.paid_on if fixed else seoul_date(closed_at),
                    bank_code=bank.bank_code,
                    account_number=bank.account_number,
                    account_holder=bank.account_holder,
                    withholding=taxes,
                    memo=memo,
                )
            )
        except payout_file.PayeeRefused as exc:
            raise Problem(
                409,
                "payee_refused",
                f"the bank details of {row.citizen_id} no longer pass the bank checks:"
                " enter them again before the file is sent",
                errors=[r.as_error() for r in exc.refusals],
            ) from exc
    return out


async def payout_file_export(
    period: Period,
    lines: Sequence[payout_file.PayoutLine],
    fmt: Literal["csv", "xlsx"],
    layout_name: PayoutLayoutName,
    held_back_count: int,
) -> Response:
    """The payout file in a layout, with its totals row in the file and in the headers."""
    layout = (
        payout_exports.layout_for(lines)
        if layout_name == "bank"
        else payout_exports.EHOJO_PAYEE_LAYOUT
    )
    totals = payout_file.payout_totals(lines)
    headers = {
        "X-Payout-Count": str(totals.lines_count),
        "X-Payout-Total-Won": str(totals.amount_won),
        "X-Held-Back-Count": str(held_back_count),
    }
    name = f"payout-{period}-{layout_name}"
    log.info(
        "payout file produced",
        extra={"period": str(period), "lines": totals.lines_count, "layout": layout_name},
    )
    if fmt == "csv":
        return Response(
            payout_exports.payout_csv(lines, layout),
            media_type="text/csv; charset=utf-8",
            headers={**_attachment(f"{name}.csv"), **headers},
        )
    title = f"광산시민수당 {period} 지급 ({layout.name})"
    return await _xlsx_file(
        lambda path: payout_exports.write_payout_xlsx(path, lines, layout, title),
        f"{name}.xlsx",
        headers,
    )


async def _xlsx_file(
    write: Callable[[str], None], filename: str, headers: Mapping[str, str]
) -> FileResponse:
    """A workbook written by `write` in a worker thread to a temporary file, sent and removed."""
    path = exports.temp_xlsx_path()
    try:
        await asyncio.to_thread(write, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return FileResponse(
        path,
        media_type=XLSX_MEDIA_TYPE,
        headers={**_attachment(filename), **headers},
        background=BackgroundTask(os.unlink, path),
    )


async def withholding_report(
    period: Period,
    lines: Sequence[payout_file.PayoutLine],
    payouts: Mapping[str, PayoutRow],
    fmt: ExportFormat,
) -> Any:
    """The month's per-citizen withholding; the gross is the month's own (a carried failed
    transfer was reported in the month it was first due, so it is left out here)."""
    own = []
    for line in lines:
        fixed = payouts.get(line.citizen_id)
        if fixed is None or not fixed.carried_won:
            own.append(line)
        elif fixed.gross_won > 0:
            own.append(
                dataclasses.replace(
                    line,
                    gross_won=fixed.gross_won,
                    amount_won=fixed.gross_won - fixed.income_tax_won - fixed.local_tax_won,
                )
            )
    layout = payout_exports.WITHHOLDING_LAYOUT
    if fmt == "json":
        return {
            "period": str(period),
            "district_fills": [
                c.header for c in layout.columns if c.field.value == "district_fills"
            ],
            "note": layout.source,
            "lines": [
                {
                    "citizen_id": x.citizen_id,
                    "paid_on": x.paid_on.isoformat(),
                    "withholding_kind": x.withholding_kind.value,
                    "gross_won": x.gross_won,
                    "taxable_won": x.taxable_won,
                    "income_tax_won": x.income_tax_won,
                    "local_tax_won": x.local_tax_won,
                    "net_won": x.amount_won,
                }
                for x in own
            ],
        }
    name = f"withholding-{period}"
    if fmt == "csv":
        return Response(
            payout_exports.payout_csv(own, layout),
            media_type="text/csv; charset=utf-8",
            headers=_attachment(f"{name}.csv"),
        )
    title = f"광산시민수당 {period} 원천징수 내역"
    return await _xlsx_file(
        lambda path: payout_exports.write_payout_xlsx(path, own, layout, title),
        f"{name}.xlsx",
        {},
    )


def transfer_results_in(body: bytes, content_type: str) -> list[transfer_results.ResultLine]:
    """The request's result lines from JSON, CSV or XLSX; a malformed body is a 4xx naming
    where."""
    media = content_type.split(";")[0].strip().lower()
    parse = (
        transfer_results.parse_results_csv
        if media in ("text/csv", "application/csv")
        else payout_exports.parse_results_xlsx
        if media == XLSX_MEDIA_TYPE
        else None
    )
    if parse is not None:
        found, violations = parse(body)
        if violations:
            raise Problem(
                422,
                "transfer_results_invalid",
                f"{violations[0].field}: {violations[0].message}",
                errors=[v.as_error() for v in violations],
            )
        return found
    try:
        items = _RESULTS_JSON.validate_json(body or b"null")
    except pydantic.ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc
    if not items:
        raise Problem(422, "transfer_results_invalid", "the list of results is empty")
    return [
        transfer_results.ResultLine(r.citizen_id, r.status, r.reason.strip(), f"results.{i}")
        for i, r in enumerate(items)
    ]


_RESULTS_JSON = pydantic.TypeAdapter(list[schemas.TransferResultIn])


def transfer_results_out(
    period: Period, done: Sequence[tuple[TransferResultRow, bool]]
) -> schemas.TransferResultsOut:
    return schemas.TransferResultsOut(
        period=str(period),
        recorded_count=sum(new for _, new in done),
        unchanged_count=sum(not new for _, new in done),
        results=[
            schemas.TransferResultOut(
                citizen_id=row.citizen_id,
                status="paid" if row.status == "paid" else "failed",
                reason=row.reason,
                amount_won=row.amount_won,
                recorded_at=row.recorded_at,
                outcome="recorded" if new else "unchanged",
                carried_to_next_close=row.status == "failed",
            )
            for row, new in done
        ],
    )


def payee_out(row: PayeeRow) -> schemas.PayeeOut:
    return schemas.PayeeOut(
        citizen_ref=row.citizen_id,
        bank_code=row.bank_code,
        account_masked=row.account_masked,
        holder_masked=row.holder_masked,
        key_id=row.key_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def payee(ctx: Context, citizen_ref: str) -> schemas.PayeeOut:
    """A citizen's payee details, masked (nothing opened, so nothing logged)."""
    async with ctx.pool.acquire() as conn:
        row = await Store(conn).payee_masked(citizen_ref)
    if row is None:
        raise Problem(404, "not_found", f"no payee details for {citizen_ref}")
    return payee_out(row)


# --- named staff and approvals ---------------------------------------------------------------


def staff_out(row: StaffRow) -> schemas.StaffOut:
    return schemas.StaffOut(
        id=row.id,
        name=row.name,
        role=row.role,
        created_at=row.created_at,
        created_by=row.created_by,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
    )


async def staff_list(ctx: Context) -> list[schemas.StaffOut]:
    async with ctx.pool.acquire() as conn:
        return [staff_out(r) for r in await Store(conn).staff_list()]


def approval_out(row: ApprovalRow) -> schemas.ApprovalOut:
    return schemas.ApprovalOut(
        id=str(row.id),
        kind=row.kind,
        kind_ko=approval_rules.KIND_KO.get(row.kind, row.kind),
        subject=row.subject,
        body=row.body,
        preview=row.preview,
        status=row.status,
        requested_by=row.requested_by,
        requested_by_name=row.requested_by_name,
        requested_at=row.requested_at,
        decided_by=row.decided_by,
        decided_by_name=row.decided_by_name,
        decided_at=row.decided_at,
        reason=row.reason,
        result=row.result,
    )


async def approvals_list(ctx: Context, status: str | None, limit: int) -> schemas.ApprovalsOut:
    async with ctx.pool.acquire() as conn:
        rows = await Store(conn).approvals(status, limit)
    required = approval_rules.approvals_required(
        ctx.settings.app_env, ctx.settings.approvals_required
    )
    return schemas.ApprovalsOut(items=[approval_out(r) for r in rows], approvals_required=required)


# --- the finance console's reads -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Share:
    """One group's accruals and its share of the year's (per mille, so 12.5 % is 125)."""

    key: str
    name: str
    won: int
    permille: int


@dataclasses.dataclass(frozen=True)
class Burn:
    """A fiscal year's accruals by statement month, by facility and by dong (won). Postings
    consumed before their place was stored group under `outcomes.UNKNOWN_GROUP`."""

    by_month: list[tuple[str, int]]
    by_facility: list[Share]
    by_dong: list[Share]


def _shares(sums: dict[tuple[str, str], int], total: int) -> list[Share]:
    """Largest first; a share of a year with nothing (or less) accrued is 0."""
    return [
        Share(key, name, won, won * 1000 // total if total > 0 else 0)
        for (key, name), won in sorted(sums.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


async def burn(ctx: Context, fiscal_year: int) -> Burn:
    async with ctx.pool.acquire() as conn:
        rows = await Store(conn).burn(fiscal_year)
    months: dict[str, int] = {f"{fiscal_year}-{m:02d}": 0 for m in range(1, 13)}
    facilities: dict[tuple[str, str], int] = {}
    dongs: dict[tuple[str, str], int] = {}
    for r in rows:
        months[r.period] = months.get(r.period, 0) + r.won
        facility = (r.facility_id or "-", r.facility_name or outcomes.UNKNOWN_GROUP)
        facilities[facility] = facilities.get(facility, 0) + r.won
        dong = r.dong or outcomes.UNKNOWN_GROUP
        dongs[(dong, dong)] = dongs.get((dong, dong), 0) + r.won
    total = sum(months.values())
    return Burn(sorted(months.items()), _shares(facilities, total), _shares(dongs, total))


@dataclasses.dataclass(frozen=True)
class StatementShift:
    """A posting of a citizen's statement month with its facility and title, each
    `outcomes.UNKNOWN_GROUP` when not stored (a posting consumed before 0011 stored
    places, or before 0012 stored titles and not updated since)."""

    posting_id: str
    facility_id: str
    facility_name: str
    title: str

    @property
    def label(self) -> str:
        """`시설명 · 근무 제목`, shown beside the ids."""
        return f"{self.facility_name} · {self.title}"


def _shifts_by_citizen(rows: Sequence[StatementShiftRow]) -> dict[str, list[StatementShift]]:
    shifts: dict[str, list[StatementShift]] = {}
    for r in rows:
        shifts.setdefault(r.citizen_id, []).append(
            StatementShift(
                r.posting_id,
                r.facility_id,
                r.facility_name or outcomes.UNKNOWN_GROUP,
                r.title or outcomes.UNKNOWN_GROUP,
            )
        )
    return shifts


async def statement_shifts(
    ctx: Context, period: Period, citizen_ids: Sequence[str]
) -> dict[str, list[StatementShift]]:
    """Each citizen's postings in a statement month, for the console's page."""
    async with ctx.pool.acquire() as conn:
        rows = await Store(conn).statement_shifts(period, citizen_ids)
    return _shifts_by_citizen(rows)


def _shift_cells(shifts: Sequence[StatementShift]) -> dict[str, str]:
    """The statements export's shift columns: each facility once, then one title and one
    posting id per posting, in the same order."""
    return {
        "facility_names": "; ".join(dict.fromkeys(s.facility_name for s in shifts)),
        "shift_titles": "; ".join(s.title for s in shifts),
        "posting_ids": "; ".join(s.posting_id for s in shifts),
    }


async def access_log(ctx: Context, citizen_id: str | None, limit: int = 50) -> list[AccessLogRow]:
    async with ctx.pool.acquire() as conn:
        return await Store(conn).access_log_of(citizen_id, limit)


async def approval_log(ctx: Context, limit: int = 50) -> list[ApprovalLogRow]:
    async with ctx.pool.acquire() as conn:
        return await Store(conn).approval_log(None, limit)


async def period_row(ctx: Context, period: Period) -> PeriodRow | None:
    async with ctx.pool.acquire() as conn:
        return await Store(conn).period_row(period)


async def results_of(ctx: Context, period: Period) -> list[TransferResultRow]:
    async with ctx.pool.acquire() as conn:
        found = await Store(conn).transfer_results(period)
    return [found[c] for c in sorted(found)]


async def budget_history(ctx: Context, fiscal_year: int) -> list[BudgetChange]:
    async with ctx.pool.acquire() as conn:
        return await Store(conn).budget_history(fiscal_year)


async def policy_latest(ctx: Context, kind: PolicyKind) -> PolicyVersion | None:
    async with ctx.pool.acquire() as conn:
        return await Store(conn).latest_policy(kind)


# --- outcome reports (issue 19) -----------------------------------------------------------


def report_range(period_from: str, period_to: str, months_max: int) -> tuple[Period, Period]:
    """The report's months, or a 400: malformed (`invalid_period`), reversed, or longer
    than `months_max` months (both ends count)."""
    first, last = parse_period(period_from), parse_period(period_to)
    if (last.year, last.month) < (first.year, first.month):
        raise Problem(
            400,
            "report_range_reversed",
            f"from {first} is after to {last}",
            errors=[{"field": "from", "message": "after `to`", "code": "reversed"}],
        )
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    if months > months_max:
        raise Problem(
            400,
            "report_range_too_long",
            f"{months} months asked, at most {months_max} per report",
            errors=[{"field": "to", "message": f"at most {months_max} months", "code": "range"}],
            ko=f"보고서 기간은 최대 {months_max}개월입니다. 요청한 기간은 {months}개월입니다.",
        )
    return first, last


def _group_out(g: outcomes.GroupFigures) -> schemas.OutcomeGroupOut:
    return schemas.OutcomeGroupOut(
        key=g.key,
        label=g.label,
        shifts_posted=g.shifts_posted,
        shifts_cancelled=g.shifts_cancelled,
        shifts_filled=g.shifts_filled,
        seats_offered=g.seats_offered,
        seats_filled=g.seats_filled,
        attended=g.attended,
        no_shows=g.no_shows,
        no_show_rate=g.no_show_rate,
        hours_worked=g.hours_worked,
        citizens_served=g.citizens_served,
        first_time_citizens=g.first_time_citizens,
        applicants=g.applicants,
        first_shift_share=g.first_shift_share,
        allowance_accrued_won=g.allowance_accrued_won,
        allowance_capped_won=g.allowance_capped_won,
        allowance_paid_won=g.allowance_paid_won,
        gini_allowance=g.gini_allowance,
        gini_allowance_paid=g.gini_allowance_paid,
        draws=g.draws,
        draw_winners=g.draw_winners,
        draw_repeat_winner_rate=g.draw_repeat_winner_rate,
        draw_probability_min=g.draw_probability_min,
        draw_probability_max=g.draw_probability_max,
    )


async def outcome_report(
    ctx: Context, first: Period, last: Period, by: outcomes.GroupBy
) -> schemas.OutcomeReportOut:
    """The outcome report of the months, from one consistent snapshot of the ledger's payout
    lines and the consumed facts (store.outcome_facts), figured by domain/outcomes.py."""
    async with (
        ctx.pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        db = Store(conn)
        await db.set_statement_timeout(ctx.settings.export_statement_timeout_ms)
        facts = await db.outcome_facts(first, last)
    groups, total = outcomes.outcome_groups(facts, by)
    place = {p.posting_id: p for p in facts.postings}
    draws = [
        schemas.DrawOutcomeOut(
            posting_id=d.posting_id,
            group=outcomes.group_key(place[d.posting_id], by),
            seats=d.seats,
            entrants=len(d.entrants),
            winners=len(d.winners),
            probability_min=d.probability_min,
            probability_max=d.probability_max,
            probability_method=d.method,
        )
        for d in sorted(facts.draws, key=lambda d: d.posting_id)
        if d.posting_id in place
    ]
    return schemas.OutcomeReportOut(
        period_from=str(first),
        period_to=str(last),
        by=by,
        groups=[_group_out(g) for g in groups],
        total=_group_out(total),
        draws=draws,
    )


async def outcome_report_export(
    ctx: Context, report: schemas.OutcomeReportOut, fmt: Literal["csv", "xlsx"]
) -> Response:
    """The report's rows (each group, then the total) as CSV or XLSX (with a summary)."""
    rows = [g.model_dump() for g in [*report.groups, report.total]]
    name = f"outcomes-{report.period_from}-{report.period_to}-{report.by}"

    async def one_batch() -> AsyncIterator[Sequence[dict[str, Any]]]:
        yield rows

    if fmt == "csv":
        return _csv_response(exports.OUTCOME_COLUMNS, one_batch(), f"{name}.csv")
    t = report.total
    return await _xlsx_response(
        ctx,
        one_batch(),
        exports.OUTCOME_COLUMNS,
        "성과 보고",
        f"{name}.xlsx",
        lambda: [
            ("기간 (from)", report.period_from),
            ("기간 (to)", report.period_to),
            ("구분 기준 (by)", report.by),
            ("발생 수당 합계 (won)", t.allowance_accrued_won),
            ("참여 시민 (citizens served)", t.citizens_served),
            ("수당 지니계수 (Gini)", f"{t.gini_allowance:.4f}"),
            ("추첨 수 (draws)", t.draws),
        ],
    )

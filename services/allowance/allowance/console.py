"""The finance console (/finance): server-rendered pages (Jinja2, no JavaScript, no build
step; docs/decisions/0015) for finance staff, Korean first. Each route reads the session,
checks the role for the object it touches, calls the same use case or view as the API,
and renders. Money actions always go through an approval request here (a clerk requests,
another approver approves), whatever APPROVALS_REQUIRED says for the API.

Sessions: a random cookie (`HttpOnly`, `SameSite=Strict`, `Secure` outside test and demo)
naming a row in Postgres (allowance/usecases/console.py); every form carries the session's
CSRF token, the sign-in form a double-submit token. Every asset is served from here; the
CSP allows nothing else, not even inline style or script."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

import jinja2
import pydantic
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from allowance import schemas, views
from allowance.domain import approvals as roles
from allowance.domain import ledger, outcomes
from allowance.domain.calendar import Period
from allowance.domain.transfer_results import parse_results_csv
from allowance.settings import Context
from allowance.usecases import approvals, payees
from allowance.usecases import console as sessions
from shared.problem_texts import FIELD_FALLBACK_KO, FIELD_KO
from shared.problems import Problem
from shared.seoul import SEOUL, seoul_date
from shared.web import Staff, get_ctx, request_id_of

router = APIRouter(prefix="/finance", include_in_schema=False)

_DIR = Path(__file__).parent / "console"
_CSS = (_DIR / "static" / "console.css").read_bytes()
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self';"
    " form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
LOGIN_CSRF = "finance_login_csrf"

# --- formatting: Korean numbers and dates ----------------------------------------------------


def won(value: int | None) -> str:
    return "-" if value is None else f"{value:,}원"


def number(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def kdate(value: datetime | date | None) -> str:
    if value is None:
        return "-"
    day = seoul_date(value) if isinstance(value, datetime) else value
    return f"{day.year}년 {day.month}월 {day.day}일"


def kdatetime(value: datetime | None) -> str:
    if value is None:
        return "-"
    at = value.astimezone(SEOUL)
    return f"{kdate(at.date())} {at.hour:02d}:{at.minute:02d}"


def kperiod(text: str | None) -> str:
    if not text:
        return "-"
    year, _, month = text.partition("-")
    return f"{year}년 {int(month)}월" if month else text


def hours(minutes: int | None) -> str:
    if minutes is None:
        return "-"
    return f"{minutes // 60}시간 {minutes % 60}분" if minutes % 60 else f"{minutes // 60}시간"


_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_DIR / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters.update(won=won, number=number, kdate=kdate, kdatetime=kdatetime, kperiod=kperiod)
_ENV.filters["hours"] = hours
_ENV.globals.update(
    ROLE_KO=roles.ROLE_KO,
    KIND_KO=roles.KIND_KO,
    STATUS_KO=roles.STATUS_KO,
    ACCOUNT_KO={a.value: info.name_ko for a, info in ledger.ACCOUNTS.items()},
)

NAV = (
    ("budget", "예산"),
    ("statements", "월별 명세"),
    ("close", "마감·결재"),
    ("payouts", "지급 파일·이체 결과"),
    ("ledger", "원장"),
    ("payees", "지급 계좌"),
    ("policy", "정책 이력"),
)
# Messages shown after a redirect (by key: no text from the request is ever echoed).
DONE_KO = {
    "requested": "결재를 요청했습니다. 다른 결재권자가 승인하면 처리됩니다.",
    "approved": "승인했습니다. 요청한 작업이 처리되었습니다.",
    "rejected": "반려했습니다. 아무것도 바뀌지 않았습니다.",
    "payee": "지급 계좌를 등록했습니다.",
}


class ConsoleError(Exception):
    """A refusal shown as a page, in Korean, with its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _korean(problem: Problem) -> str:
    body = problem.body(korean=True)
    return str(body["detail"])


def _secure(ctx: Context) -> bool:
    return ctx.settings.app_env not in ("test", "demo")


def _cookie_name(ctx: Context) -> str:
    # `__Host-` pins the cookie to this host and path `/`, and demands `Secure`.
    return "__Host-finance_session" if _secure(ctx) else "finance_session"


def _page(
    name: str,
    session: sessions.Session | None,
    status: int = 200,
    **data: Any,
) -> HTMLResponse:
    template = _ENV.get_template(name)
    html = template.render(
        nav=NAV,
        me=session.staff if session else None,
        csrf=session.csrf_token if session else "",
        **data,
    )
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def _redirect(path: str, **query: str) -> RedirectResponse:
    url = path + ("?" + urlencode(query) if query else "")
    return RedirectResponse(url, status_code=303, headers=_HEADERS)


async def _session(request: Request, ctx: Context) -> sessions.Session | None:
    return await sessions.session_of(ctx, request.cookies.get(_cookie_name(ctx)), request_id_of())


def _signed_out(request: Request, ctx: Context) -> RedirectResponse:
    expired = _cookie_name(ctx) in request.cookies
    response = _redirect("/finance/login", **({"expired": "1"} if expired else {}))
    response.delete_cookie(_cookie_name(ctx), path="/", secure=_secure(ctx), httponly=True)
    return response


def _require(session: sessions.Session, allowed: Sequence[str], what: str) -> None:
    if session.staff.role not in allowed:
        raise ConsoleError(
            403,
            f"{roles.ROLE_KO.get(session.staff.role, session.staff.role)} 권한으로는"
            f" {what}을(를) 할 수 없습니다.",
        )


async def _form(request: Request, session: sessions.Session) -> Mapping[str, Any]:
    form = await request.form()
    token = form.get("csrf")
    sessions.check_csrf(session, token if isinstance(token, str) else None)
    return form


def _text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _period(text: str | None, ctx: Context) -> Period:
    """The month asked for (`YYYY-MM`), else the month before the current one."""
    if text:
        try:
            return Period.parse(text)
        except ValueError:
            raise ConsoleError(400, "달은 2026-11처럼 연도-월로 적어 주세요.") from None
    return Period.of(ctx.now()).previous()


def _validation_ko(exc: pydantic.ValidationError, labels: Mapping[str, str]) -> str:
    parts = []
    for error in exc.errors()[:5]:
        field = str(error["loc"][-1]) if error["loc"] else ""
        message = FIELD_KO.get(str(error.get("type", "")), FIELD_FALLBACK_KO)
        parts.append(f"{labels.get(field, field)}: {message}")
    return " ".join(parts) or FIELD_FALLBACK_KO


async def _guarded(request: Request, ctx: Context, render: Any, *args: Any) -> Response:
    """Run a page: signed out → the sign-in page; a refusal → a Korean message page."""
    session = await _session(request, ctx)
    if session is None:
        return _signed_out(request, ctx)
    try:
        return await render(session, *args)  # type: ignore[no-any-return]
    except ConsoleError as exc:
        return _page("message.html", session, exc.status, message=exc.message)
    except Problem as problem:
        return _page("message.html", session, problem.status, message=_korean(problem))


def _ctx(request: Request) -> Context:
    return get_ctx(request)


# --- sign in and out -------------------------------------------------------------------------


@router.get("")
async def home(request: Request) -> Response:
    return _redirect("/finance/budget")


@router.get("/static/console.css")
async def css() -> Response:
    return Response(_CSS, media_type="text/css; charset=utf-8", headers=_HEADERS)


@router.get("/login")
async def login_page(request: Request, expired: str | None = None) -> Response:
    ctx = _ctx(request)
    token = secrets.token_urlsafe(24)
    message = "오랫동안 사용하지 않아 로그아웃되었습니다. 다시 로그인해 주세요." if expired else ""
    response = _page("login.html", None, login_csrf=token, message=message)
    response.set_cookie(
        LOGIN_CSRF, token, httponly=True, samesite="strict", secure=_secure(ctx), path="/finance"
    )
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    ctx = _ctx(request)
    form = await request.form()
    presented, expected = form.get("csrf"), request.cookies.get(LOGIN_CSRF)
    if not isinstance(presented, str) or not expected or presented != expected:
        return _page(
            "login.html",
            None,
            403,
            login_csrf=expected or "",
            message="보안 토큰이 맞지 않습니다. 화면을 새로 고친 뒤 다시 로그인해 주세요.",
        )
    token = form.get("token")
    try:
        cookie, _ = await sessions.sign_in(ctx, token if isinstance(token, str) else "")
    except Problem as problem:
        return _page("login.html", None, 401, login_csrf=expected, message=_korean(problem))
    response = _redirect("/finance/budget")
    response.set_cookie(
        _cookie_name(ctx),
        cookie,
        httponly=True,
        samesite="strict",
        secure=_secure(ctx),
        path="/",
        max_age=ctx.settings.console_session_max_s,
    )
    response.delete_cookie(LOGIN_CSRF, path="/finance")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    ctx = _ctx(request)

    async def run(session: sessions.Session) -> Response:
        await _form(request, session)
        await sessions.sign_out(ctx, request.cookies.get(_cookie_name(ctx)))
        response = _redirect("/finance/login")
        response.delete_cookie(_cookie_name(ctx), path="/", secure=_secure(ctx), httponly=True)
        return response

    return await _guarded(request, ctx, run)


# --- 예산 ------------------------------------------------------------------------------------


def _bars(by_month: Sequence[tuple[str, int]]) -> dict[str, Any]:
    """The burn chart's geometry (an inline SVG drawn by the template)."""
    width, height, top, bottom, left = 640, 240, 16, 36, 8
    top_won = max([won_ for _, won_ in by_month] + [1])
    step = (width - 2 * left) / max(len(by_month), 1)
    bars = []
    for i, (period, amount) in enumerate(by_month):
        h = round((height - top - bottom) * max(amount, 0) / top_won)
        bars.append(
            {
                "x": round(left + i * step + step * 0.15, 1),
                "y": height - bottom - h,
                "w": round(step * 0.7, 1),
                "h": h,
                "label": f"{int(period[5:])}월",
                "lx": round(left + i * step + step / 2, 1),
                "period": period,
                "won": amount,
            }
        )
    return {"width": width, "height": height, "base": height - bottom, "bars": bars}


@router.get("/budget")
async def budget_page(request: Request, fiscal_year: str | None = None) -> Response:
    ctx = _ctx(request)

    async def run(session: sessions.Session) -> Response:
        year = Period.of(ctx.now()).year
        if fiscal_year:
            if not fiscal_year.isdigit() or not 2000 <= int(fiscal_year) <= 9998:
                raise ConsoleError(400, "회계연도는 2026처럼 네 자리 연도로 적어 주세요.")
            year = int(fiscal_year)
        try:
            figures: schemas.BudgetOut | None = await views.budget(ctx, year, None)
        except Problem:
            figures = None
        burn = await views.burn(ctx, year)
        spent = (figures.accrued_won + figures.paid_won) if figures else 0
        rate = (spent * 1000 // figures.total_won) / 10 if figures and figures.total_won else 0.0
        return _page(
            "budget.html",
            session,
            page="budget",
            year=year,
            figures=figures,
            rate=rate,
            chart=_bars(burn.by_month),
            burn=burn,
            unknown=outcomes.UNKNOWN_GROUP,
        )

    return await _guarded(request, ctx, run)


# --- 월별 명세 -------------------------------------------------------------------------------


@router.get("/statements")
async def statements_page(
    request: Request, period: str | None = None, cursor: str | None = None
) -> Response:
    ctx = _ctx(request)

    async def run(session: sessions.Session) -> Response:
        month = _period(period, ctx)
        found = await views.statements(ctx, month, "json", cursor, 100)
        assert isinstance(found, schemas.StatementsPage)
        shifts = await views.statement_shifts(ctx, month, [s.citizen_id for s in found.items])
        return _page(
            "statements.html",
            session,
            page="statements",
            period=str(month),
            found=found,
            shifts=shifts,
            caps_hit=sum(1 for s in found.items if s.capped_won > 0),
        )

    return await _guarded(request, ctx, run)


@router.get("/export/statements")
async def export_statements(request: Request, period: str, format: str = "xlsx") -> Response:
    ctx = _ctx(request)

    async def run(session: sessions.Session) -> Response:
        if format not in ("csv", "xlsx"):
            raise ConsoleError(400, "파일 형식은 CSV 또는 XLSX입니다.")
        fmt: views.ExportFormat = "csv" if format == "csv" else "xlsx"
        found = await views.statements(ctx, _period(period, ctx), fmt, None, None)
        assert isinstance(found, Response)
        return found

    return await _guarded(request, ctx, run)


# --- 마감·결재 -------------------------------------------------------------------------------


@router.get("/close")
async def close_page(
    request: Request, period: str | None = None, done: str | None = None
) -> Response:
    ctx = _ctx(request)

    async def run(session: sessions.Session) -> Response:
        month = _period(period, ctx)
        current = Period.of(ctx.now())
        first = Period(current.year - 1, current.month)
        months = await views.periods(ctx, first, current)
        pending = await views.approvals_list(ctx, "pending", 100)
        recent = await views.approvals_list(ctx, None, 20)
        return _page(
            "close.html",
            session,
            page="close",
            period=str(month),
            row=await views.period_row(ctx, month),
            months=[m for m in reversed(months)],
            pending=pending.items,
            recent=[a for a in recent.items if a.status != "pending"],
            required=pending.approvals_required,
            log=await views.approval_log(ctx, 20),
            done=DONE_KO.get(done or "", ""),
            can_request=session.staff.role in roles.REQUEST_ROLES,
            can_decide=session.staff.role in roles.APPROVER_ROLES,
            me_id=session.staff.staff_id,
        )

    return await _guarded(request, ctx, run)


_APPROVAL_LABELS = {
    "kind": "종류",
    "period": "대상 월",
    "fiscal_year": "회계연도",
    "amount_won": "새 예산 총액",
    "note": "사유",
    "previous_amount_won": "현재 예산 총액",
    "reason": "반려 사유",
}


@router.post("/approvals")
async def post_approval(request: Request) -> Response:
    ctx = _ctx(request)

    async def run(session: sessions.Session) -> Response:
        form = await _form(request, session)
        _require(session, roles.REQUEST_ROLES, "결재 요청")
        raw: dict[str, Any] = {"kind": _text(form, "kind")}
        if raw["kind"] == "budget_change":
            for name in ("fiscal_year", "amount_won"):
                text = _text(form, name).replace(",", "")
                raw[name] = int(text) if text.isdigit() else text
            raw["note"] = _text(form, "note")
        else:
            raw["period"] = _text(form, "period")
        try:
            body = schemas.ApprovalBody.model_validate(raw)
        except pydantic.ValidationError as exc:
            raise ConsoleError(400, _validation_ko(exc, _APPROVAL_LABELS)) from None
        await approvals.request(ctx, body.kind, body.action(), session.staff)
        return _redirect("/finance/close", done="requested", period=body.period or "")

    return await _guarded(request, ctx, run)


@router.post("/approvals/{approval_id}/{decision}")
async def decide_approval(request: Request, approval_id: str, decision: str) -> Response:
    ctx = _ctx(request)

    async def run(session: sessions.Session) -> Response:
        form = await _form(request, session)
        if decision not in ("approve", "reject"):
            raise ConsoleError(404, "없는 작업입니다.")
        try:
            found = uuid.UUID(approval_id)
        except ValueError:
            raise ConsoleError(404, "없는 결재 요청입니다.") from None
        reason = None
        if decision == "reject":
            try:
                reason = schemas.RejectBody.model_validate({"reason": _text(form, "reason")}).reason
            except pydantic.ValidationError as exc:
                raise ConsoleError(400, _validation_ko(exc, _APPROVAL_LABELS)) from None
        await approvals.decide(
            ctx, found, session.staff, approve=decision == "approve", reason=reason
        )
        return _redirect("/finance/close", done="approved" if reason is None else "rejected")

    return await _guarded(request, ctx, run)


# --- 지급 파일·이체 결과 ---------------------------------------------------------------------


@router.get("/payouts")
async def payouts_page(request: Request, period: str | None = None) -> Response:
    ctx = _ctx(request)

    async def run(session: sessions.Session) -> Response:
        month = _period(period, ctx)
        row = await views.period_row(ctx, month)
        summary = None
        if row is not None and row.closed:
            found = await payees.payout_file(ctx, month, session.staff, open_=False)
            summary = views.payout_summary(month, found.closed_at, found.lines, found.held_back)
        results = await views.results_of(ctx, month)
        return _page(
            "payouts.html",
            session,
            page="payouts",
            period=str(month),
            row=row,
            summary=summary,
            results=results,
            failed=[r for r in results if r.status == "failed"],
            can_open=session.staff.role in roles.OPEN_ROLES,
            can_upload=session.staff.role in roles.REQUEST_ROLES,
        )

    return await _guarded(request, ctx, run)


@router.get("/export/payout")
async def export_payout(
    request: Request, period: str, format: str = "csv", layout: str = "bank"
) -> Response:
    ctx = _ctx(request)

    async def run(session: sessions.Session) -> Response:
        _require(session, roles.OPEN_ROLES, "지급 파일 내려받기")
        if format not in ("csv", "xlsx") or layout not in ("bank", "ehojo"):
            raise ConsoleError(400, "형식은 CSV·XLSX, 양식은 은행·e-호조입니다.")
        month = _period(period, ctx)
        found = await payees.payout_file(ctx, month, session.staff, open_=True)
        assert found.bank_lines is not None
        lines = views.payout_lines(
            month,
            found.lines,
            found.bank_lines,
            found.payouts,
            found.closed_at,
            ctx.settings.payout_memo_prefix,
        )
        return await views.payout_file_export(
            month,
            lines,
            "csv" if format == "csv" else "xlsx",
            "bank" if layout == "bank" else "ehojo",
            len(found.held_back),
        )

    return await _guarded(request, ctx, run)


@router.post("/payouts/results")
async def upload_results(request: Request) -> Response:
    ctx = _ctx(request)

    async def run(session: sessions.Session) -> Response:
        form = await _form(request, session)
        _require(session, roles.REQUEST_ROLES, "이체 결과 올리기")
        month = _period(_text(form, "period"), ctx)
        upload = form.get("file")
        content = await upload.read() if isinstance(upload, UploadFile) else b""
        if not content:
            raise ConsoleError(400, "이체 결과 CSV 파일을 골라 주세요.")
        lines, violations = parse_results_csv(content)
        if violations:
            first = violations[0]
            raise ConsoleError(
                422,
                f"파일을 읽을 수 없습니다 ({first.field}): {first.message}. 아무것도 기록하지"
                " 않았습니다.",
            )
        if not lines:
            raise ConsoleError(422, "파일에 이체 결과 줄이 없습니다.")
        body = {
            "period": str(month),
            "results": [
                {"citizen_id": r.citizen_id, "status": r.status, "reason": r.reason} for r in lines
            ],
        }
        await approvals.request(ctx, "transfer_results", body, session.staff)
        return _redirect("/finance/close", done="requested", period=str(month))

    return await _guarded(request, ctx, run)


# --- 원장 ------------------------------------------------------------------------------------

_ACCOUNTS = [a.value for a in ledger.Account]


def _ledger_filter(period: str | None, account: str | None, citizen_id: str | None) -> Any:
    if account and account not in _ACCOUNTS:
        raise ConsoleError(400, "계정과목을 목록에서 골라 주세요.")
    if citizen_id and not all(c.isalnum() or c in "_-" for c in citizen_id):
        raise ConsoleError(400, "시민 ID에는 영문, 숫자, _ 와 - 만 쓸 수 있습니다.")
    month = None
    if period:
        try:
            month = str(Period.parse(period))
        except ValueError:
            raise ConsoleError(400, "달은 2026-11처럼 연도-월로 적어 주세요.") from None
    return views.ledger_filter(month, None, None, None, account or None, citizen_id or None, None)


@router.get("/ledger")
async def ledger_page(
    request: Request,
    period: str | None = None,
    account: str | None = None,
    citizen_id: str | None = None,
    cursor: str | None = None,
) -> Response:
    ctx = _ctx(request)

    async def run(session: sessions.Session) -> Response:
        flt = _ledger_filter(period, account, citizen_id)
        found = await views.ledger_page(ctx, flt, cursor, 100)
        query = {
            k: v
            for k, v in (("period", period), ("account", account), ("citizen_id", citizen_id))
            if v
        }
        return _page(
            "ledger.html",
            session,
            page="ledger",
            found=found,
            accounts=_ACCOUNTS,
            filters={
                "period": period or "",
                "account": account or "",
                "citizen_id": citizen_id or "",
            },
            query=urlencode(query),
            next_query=urlencode({**query, "cursor": found.next_cursor})
            if found.next_cursor
            else "",
        )

    return await _guarded(request, ctx, run)


@router.get("/export/ledger")
async def export_ledger(
    request: Request,
    period: str | None = None,
    account: str | None = None,
    citizen_id: str | None = None,
    format: str = "xlsx",
) -> Response:
    ctx = _ctx(request)

    async def run(session: sessions.Session) -> Response:
        if format not in ("csv", "xlsx"):
            raise ConsoleError(400, "파일 형식은 CSV 또는 XLSX입니다.")
        flt = _ledger_filter(period, account, citizen_id)
        kind: Literal["csv", "xlsx"] = "csv" if format == "csv" else "xlsx"
        return await views.ledger_export(ctx, flt, kind, f"ledger-{period or 'all'}")

    return await _guarded(request, ctx, run)


# --- 지급 계좌 -------------------------------------------------------------------------------

_PAYEE_LABELS = {
    "citizen_id": "시민 ID",
    "bank_code": "은행 코드",
    "account_number": "계좌번호",
    "account_holder": "예금주",
}


@router.get("/payees")
async def payees_page(
    request: Request, citizen_id: str | None = None, done: str | None = None
) -> Response:
    ctx = _ctx(request)

    async def run(session: sessions.Session) -> Response:
        found = None
        if citizen_id:
            if not all(c.isalnum() or c in "_-" for c in citizen_id) or len(citizen_id) > 100:
                raise ConsoleError(400, "시민 ID에는 영문, 숫자, _ 와 - 만 쓸 수 있습니다.")
            try:
                found = await views.payee(ctx, citizen_id)
            except Problem:
                found = None
        return _page(
            "payees.html",
            session,
            page="payees",
            citizen_id=citizen_id or "",
            found=found,
            log=await views.access_log(ctx, citizen_id or None),
            can_write=session.staff.role in roles.CLERK_ROLES,
            done=DONE_KO.get(done or "", ""),
        )

    return await _guarded(request, ctx, run)


@router.post("/payees")
async def post_payee(request: Request) -> Response:
    ctx = _ctx(request)

    async def run(session: sessions.Session) -> Response:
        form = await _form(request, session)
        _require(session, roles.CLERK_ROLES, "지급 계좌 등록")
        citizen = _text(form, "citizen_id")
        if not citizen or len(citizen) > 100 or not all(c.isalnum() or c in "_-" for c in citizen):
            raise ConsoleError(400, "시민 ID: 영문, 숫자, _ 와 - 로 된 ID를 적어 주세요.")
        try:
            body = schemas.PayeeBody.model_validate(
                {k: _text(form, k) for k in ("bank_code", "account_number", "account_holder")}
            )
        except pydantic.ValidationError as exc:
            raise ConsoleError(400, _validation_ko(exc, _PAYEE_LABELS)) from None
        await payees.put_payee(
            ctx,
            citizen,
            bank_code=body.bank_code,
            account_number=body.account_number,
            account_holder=body.account_holder,
            staff=session.staff,
        )
        return _redirect("/finance/payees", citizen_id=citizen, done="payee")

    return await _guarded(request, ctx, run)


# --- 정책 이력 -------------------------------------------------------------------------------


@router.get("/policy")
async def policy_page(request: Request) -> Response:
    ctx = _ctx(request)

    async def run(session: sessions.Session) -> Response:
        year = Period.of(ctx.now()).year
        return _page(
            "policy.html",
            session,
            page="policy",
            year=year,
            rates=await views.policy_latest(ctx, "rates"),
            caps=await views.policy_latest(ctx, "caps"),
            withholding=await views.policy_latest(ctx, "withholding"),
            history=await views.budget_history(ctx, year),
        )

    return await _guarded(request, ctx, run)


def _staff_label(who: Staff) -> str:
    return who.name or who.label


_ENV.globals["staff_label"] = _staff_label

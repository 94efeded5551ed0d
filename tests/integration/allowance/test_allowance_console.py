"""The finance console's guards over HTTP (issue 17): sign-in with a wrong or revoked token,
a form without its CSRF token, a bad form value, an auditor writing, an idle session —
each refused with a Korean message and nothing changed; and the budget and statements
pages naming facilities, dongs and shift titles from the postings' stored places."""

from __future__ import annotations

import contextlib
import csv
import io
import re
from collections.abc import AsyncIterator

import httpx
import openpyxl
import pytest

from tests.integration.allowance.allowance_kit import Kit, kst, new_id
from tools.api_client import http_client

pytestmark = pytest.mark.stack

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def _staff(kit: Kit, role: str) -> tuple[str, str]:
    made = await kit.http.post(
        "/v1/admin/staff", json={"name": "콘솔 시험", "role": role}, headers=kit.admin
    )
    assert made.status_code == 201, made.text
    return made.json()["token"], made.json()["id"]


@contextlib.asynccontextmanager
async def _console(kit: Kit, token: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with http_client(base_url=kit.url) as http:
        yield http, await _sign_in(http, token)


async def _sign_in(http: httpx.AsyncClient, token: str) -> str:
    page = await http.get("/finance/login")
    assert page.status_code == 200 and 'lang="ko"' in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    found = CSRF.search(page.text)
    assert found
    signed = await http.post("/finance/login", data={"csrf": found.group(1), "token": token})
    assert signed.status_code == 303, signed.text
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    budget = await http.get("/finance/budget")
    assert budget.status_code == 200
    csrf = CSRF.search(budget.text)
    assert csrf
    return csrf.group(1)


async def _approvals(kit: Kit) -> int:
    async with kit.pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM approval_requests"))


async def test_sign_in_refuses_wrong_revoked_and_bootstrap_tokens(kit: Kit) -> None:
    token, staff_id = await _staff(kit, "finance_clerk")
    async with http_client(base_url=kit.url) as http:
        page = await http.get("/finance/login")
        csrf = CSRF.search(page.text)
        assert csrf
        for wrong in (token + "x", kit.env["FINANCE_TOKEN"], ""):
            refused = await http.post(
                "/finance/login", data={"csrf": csrf.group(1), "token": wrong}
            )
            assert refused.status_code == 401 and "토큰이 올바르지 않거나" in refused.text
        no_csrf = await http.post("/finance/login", data={"token": token})
        assert no_csrf.status_code == 403 and "보안 토큰" in no_csrf.text
    async with _console(kit, token) as (http, _):
        await kit.http.post(f"/v1/admin/staff/{staff_id}/revoke", headers=kit.admin)
        after = await http.get("/finance/budget")
        assert after.status_code == 303 and after.headers["location"].startswith("/finance/login")


async def test_forms_without_csrf_or_with_bad_values_change_nothing(kit: Kit) -> None:
    token, _ = await _staff(kit, "finance_clerk")
    async with _console(kit, token) as (http, csrf):
        before = await _approvals(kit)
        missing = await http.post(
            "/finance/approvals", data={"kind": "period_close", "period": "2020-01"}
        )
        assert missing.status_code == 403 and "보안 토큰이 없거나" in missing.text
        wrong = await http.post(
            "/finance/approvals",
            data={"csrf": "x" * 40, "kind": "period_close", "period": "2020-01"},
        )
        assert wrong.status_code == 403
        bad = await http.post(
            "/finance/approvals", data={"csrf": csrf, "kind": "period_close", "period": "2020-13"}
        )
        assert bad.status_code == 400 and "대상 월" in bad.text
        budget = await http.post(
            "/finance/approvals",
            data={
                "csrf": csrf,
                "kind": "budget_change",
                "fiscal_year": "2026",
                "amount_won": "많이",
                "note": "x",
            },
        )
        assert budget.status_code == 400 and "새 예산 총액" in budget.text
        assert await _approvals(kit) == before

        citizen = new_id("ctz")
        payee = await http.post(
            "/finance/payees",
            data={
                "csrf": csrf,
                "citizen_id": citizen,
                "bank_code": "4",
                "account_number": "123-45-678901",
                "account_holder": "김광산",
            },
        )
        assert payee.status_code == 400 and "은행 코드" in payee.text
        lookup = await kit.http.get(f"/v1/payees/{citizen}", headers=kit.finance)
        assert lookup.status_code == 404


async def test_an_auditor_reads_every_page_and_changes_nothing(kit: Kit) -> None:
    token, _ = await _staff(kit, "auditor")
    async with _console(kit, token) as (http, csrf):
        for page in ("budget", "statements", "close", "payouts", "ledger", "payees", "policy"):
            shown = await http.get(f"/finance/{page}")
            assert shown.status_code == 200, (page, shown.text)
            assert "<script" not in shown.text
        citizen = new_id("ctz")
        payee = await http.post(
            "/finance/payees",
            data={
                "csrf": csrf,
                "citizen_id": citizen,
                "bank_code": "004",
                "account_number": "123-45-678901",
                "account_holder": "김광산",
            },
        )
        assert payee.status_code == 403 and "감사 권한으로는" in payee.text
        before = await _approvals(kit)
        asked = await http.post(
            "/finance/approvals", data={"csrf": csrf, "kind": "period_close", "period": "2020-01"}
        )
        assert asked.status_code == 403 and "감사 권한으로는" in asked.text
        file = await http.get("/finance/export/payout", params={"period": "2020-01"})
        assert file.status_code == 403
        assert await _approvals(kit) == before


async def test_an_idle_session_ends(kit: Kit) -> None:
    token, staff_id = await _staff(kit, "finance_approver")
    async with _console(kit, token) as (http, csrf):
        async with kit.pool.acquire() as conn:
            await conn.execute(
                "UPDATE console_sessions SET last_seen_at = last_seen_at - interval '2 hours'"
                " WHERE staff_id = $1",
                staff_id,
            )
        before = await _approvals(kit)
        late = await http.post(
            "/finance/approvals", data={"csrf": csrf, "kind": "period_close", "period": "2020-01"}
        )
        assert late.status_code == 303 and late.headers["location"] == "/finance/login?expired=1"
        page = await http.get(late.headers["location"])
        assert "로그아웃되었습니다" in page.text
        assert await _approvals(kit) == before


async def test_budget_and_statements_name_facilities_and_dongs(kit: Kit) -> None:
    """Facility names and dongs come from the stored posting places; a posting consumed
    before places were stored (its row removed here) shows as (미상)."""
    year = await kit.fresh_year()
    await kit.set_budget(year, 900_000, note="예산 편성")
    known = await kit.submit(kst(f"{year}-03-02T10:00"), 120)
    unknown = await kit.submit(kst(f"{year}-03-03T10:00"), 120)
    citizen = new_id("ctz")
    for posting in (known, unknown):
        await kit.budget_answer(posting.posting_id)
        await kit.inject(kit.attendance(posting, citizen))
    await kit.wait("PayoutAccrued", count=2, citizen_id=citizen)
    await kit.pool.execute("DELETE FROM posting_places WHERE posting_id = $1", unknown.posting_id)
    token, _ = await _staff(kit, "auditor")
    async with _console(kit, token) as (http, _):
        budget = await http.get("/finance/budget", params={"fiscal_year": str(year)})
        assert budget.status_code == 200, budget.text
        assert "동별 집행" in budget.text and "동별 집계는 제공하지 않습니다" not in budget.text
        assert "광산구 작은도서관" in budget.text and known.facility_id in budget.text
        assert "수완동" in budget.text and "(미상)" in budget.text
        assert "50.0%" in budget.text  # two equal shifts: each facility and dong half
        shown = await http.get("/finance/statements", params={"period": f"{year}-03"})
        assert shown.status_code == 200, shown.text
        ids = '<span class="ids">({} · {})</span>'
        assert "광산구 작은도서관 · 책 정리 " + ids.format(known.facility_id, known.posting_id) in (
            shown.text
        )
        assert "(미상) · (미상) " + ids.format(unknown.facility_id, unknown.posting_id) in (
            shown.text
        )


async def test_statements_show_shift_titles_escaped_updated_and_exported(kit: Kit) -> None:
    """The month's page shows each shift as `시설명 · 근무 제목` beside its ids: a title with
    markup as text, a retitled posting under its new title, a place stored before titles
    were (0012) as (미상); the statements CSV and XLSX carry the same titles (`근무명`) and
    the facility (`시설`) and posting ids (`공고`) in the last columns."""
    year = await kit.fresh_year()
    await kit.set_budget(year, 900_000, note="예산 편성")
    hostile = "<script>alert(1)</script> 책 & 정리"
    marked = await kit.submit(kst(f"{year}-04-02T10:00"), 120, title=hostile)
    retitled = await kit.submit(kst(f"{year}-04-03T10:00"), 120, title="도서관 안내")
    untitled = await kit.submit(kst(f"{year}-04-04T10:00"), 120, title="옛 제목")
    for posting in (marked, retitled, untitled):
        await kit.budget_answer(posting.posting_id)
    await kit.update(retitled, 1, capacity=1, title="어린이 열람실 안내")
    assert (await kit.budget_answer(retitled.posting_id, nth=2)).type == "BudgetReserved"
    citizen = new_id("ctz")
    for posting in (marked, retitled, untitled):
        await kit.inject(kit.attendance(posting, citizen))
    await kit.wait("PayoutAccrued", count=3, citizen_id=citizen)
    await kit.pool.execute(
        "UPDATE posting_places SET title = NULL WHERE posting_id = $1", untitled.posting_id
    )
    period = f"{year}-04"
    token, _ = await _staff(kit, "auditor")
    async with _console(kit, token) as (http, _):
        shown = await http.get("/finance/statements", params={"period": period})
        assert shown.status_code == 200, shown.text
        page = shown.text
        assert '<th scope="col">시설 · 근무</th>' in page
        assert (
            "광산구 작은도서관 · &lt;script&gt;alert(1)&lt;/script&gt; 책 &amp; 정리"
            f' <span class="ids">({marked.facility_id} · {marked.posting_id})</span>'
        ) in page
        assert "<script" not in page
        assert "광산구 작은도서관 · 어린이 열람실 안내" in page and "· 도서관 안내" not in page
        assert f'광산구 작은도서관 · (미상) <span class="ids">({untitled.facility_id}' in page

        titles = {
            marked.posting_id: hostile,
            retitled.posting_id: "어린이 열람실 안내",
            untitled.posting_id: "(미상)",
        }
        as_csv = await http.get(
            "/finance/export/statements", params={"period": period, "format": "csv"}
        )
        assert as_csv.status_code == 200, as_csv.text
        rows = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
        header, line = rows[0], dict(zip(rows[0], rows[1], strict=True))
        assert header[-3:] == ["시설", "근무명", "공고"] and len(rows) == 2
        assert line["시민"] == citizen and line["시설"] == "광산구 작은도서관"
        posting_ids = line["공고"].split("; ")
        assert sorted(posting_ids) == sorted(titles)
        assert line["근무명"].split("; ") == [titles[p] for p in posting_ids]

        as_xlsx = await http.get("/finance/export/statements", params={"period": period})
        assert as_xlsx.status_code == 200
        sheet = openpyxl.load_workbook(io.BytesIO(as_xlsx.content))["명세서"]
        values = list(sheet.iter_rows(values_only=True))
        cells = dict(zip(values[0], values[1], strict=True))
        assert cells["근무명"] == line["근무명"] and cells["공고"] == line["공고"]
        assert str(values[2][0]).startswith("합계 (1건)") and len(values) == 3

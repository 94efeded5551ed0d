"""The finance console (`/finance`) as finance staff use it (issue 17), on the desktop and
the phone: a clerk signs in and requests the month close, an approver signs in and
approves it, the clerk downloads the payout file and uploads the bank's result with one
failed line, the approver approves that, and the failed line shows as carried forward.
Every page passes `check_screen` (axe serious/critical 0, no sideways scroll, 44 px
targets on the phone, no outside request, CSP intact)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, expect

from tests.integration.allowance.allowance_kit import Kit, kst, new_id
from tests.integration.allowance.test_allowance_close import _unclosed_past_month
from tools.api_client import http_client

from .screen import check_screen, open_page

pytestmark = pytest.mark.stack


@pytest.fixture
async def kit(stack_env: dict[str, str]) -> AsyncIterator[Kit]:
    instance = Kit(stack_env)
    await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()


async def _staff(kit: Kit, role: str, name: str) -> str:
    made = await kit.http.post(
        "/v1/admin/staff", json={"name": name, "role": role}, headers=kit.admin
    )
    assert made.status_code == 201, made.text
    return str(made.json()["token"])


async def _sign_in(page: Page, url: str, token: str, shot: str | None = None) -> None:
    await page.goto(f"{url}/finance")
    await expect(page.get_by_role("heading", name="재무 담당 로그인")).to_be_visible()
    if shot:
        await check_screen(page, shot)
    await page.get_by_label("직원 토큰").fill(token)
    await page.get_by_role("button", name="로그인").click()
    await expect(page.get_by_role("heading", name="년 예산")).to_be_visible()


async def _approve_first(page: Page, url: str, kind: str) -> None:
    await page.goto(f"{url}/finance/close")
    card = page.locator("article.approval", has_text=kind).first
    await expect(card).to_be_visible()
    await card.get_by_role("button", name="승인").click()
    await expect(page.get_by_role("status")).to_contain_text("승인했습니다")


async def test_clerk_requests_approver_approves_and_a_failed_transfer_is_carried(
    page: Page, browser: Browser, kit: Kit, allowance_url: str
) -> None:
    form = "phone" if (page.viewport_size or {"width": 1280})["width"] < 500 else "desktop"
    month = await _unclosed_past_month(kit)
    await kit.raise_budget(month.year, 1_000_000)
    # A long title: on the phone the month's page must wrap it, not scroll sideways.
    title = "어린이 열람실 도서 정리와 서가 배치, 신간 라벨 붙이기·대출 반납 도움(토요일 오전반)"
    posting = await kit.submit(kst(f"{month}-14T10:00"), 180, capacity=2, title=title)
    assert (await kit.budget_answer(posting.posting_id)).type == "BudgetReserved"
    paid_one, failed_one = new_id("ctz"), new_id("ctz")
    for citizen in (paid_one, failed_one):
        await kit.inject(kit.attendance(posting, citizen))
        await kit.wait("PayoutAccrued", citizen_id=citizen)
    clerk = await _staff(kit, "finance_clerk", "김담당")
    approver = await _staff(kit, "finance_approver", "이결재")

    # the clerk: every page, a payee registered in person, the close requested
    await _sign_in(page, allowance_url, clerk, "finance-login")
    await page.goto(f"{allowance_url}/finance/budget?fiscal_year={month.year}")
    await expect(page.get_by_text("집행률")).to_be_visible()
    await expect(page.get_by_role("cell", name="수완동").first).to_be_visible()
    await expect(page.get_by_role("cell", name="광산구 작은도서관").first).to_be_visible()
    await check_screen(page, "finance-budget")
    await page.goto(f"{allowance_url}/finance/payees")
    for citizen, account in ((paid_one, "123-45-678901"), (failed_one, "555-66-777888")):
        await page.get_by_label("시민 ID", exact=True).fill(citizen)
        await page.get_by_label("은행 코드").fill("004")
        await page.get_by_label("계좌번호").fill(account)
        await page.get_by_label("예금주").fill("김광산")
        await page.get_by_role("button", name="저장").click()
        await expect(page.get_by_role("status")).to_contain_text("지급 계좌를 등록했습니다")
    await expect(page.get_by_text("***-****-7888").first).to_be_visible()
    await check_screen(page, "finance-payees")

    await page.goto(f"{allowance_url}/finance/payees")
    await page.get_by_label("시민 ID", exact=True).fill(paid_one)
    await page.get_by_label("은행 코드").fill("04")
    await page.get_by_label("계좌번호").fill("123")
    await page.get_by_label("예금주").fill("김광산")
    await page.get_by_role("button", name="저장").click()
    await expect(page.get_by_role("alert")).to_contain_text("은행 코드")
    await check_screen(page, "finance-refused")

    await page.goto(f"{allowance_url}/finance/statements?period={month}")
    await expect(page.get_by_text(failed_one)).to_be_visible()
    shift = page.locator("ul.shifts li", has_text=f"광산구 작은도서관 · {title}").first
    await expect(shift).to_contain_text(f"({posting.facility_id} · {posting.posting_id})")
    await check_screen(page, "finance-statements")
    await page.goto(f"{allowance_url}/finance/ledger?citizen_id={paid_one}")
    await expect(page.get_by_text("조건에 맞는 항목")).to_be_visible()
    await check_screen(page, "finance-ledger")
    await page.goto(f"{allowance_url}/finance/policy")
    await expect(page.get_by_role("heading", name="정책 이력")).to_be_visible()
    await check_screen(page, "finance-policy")

    await page.goto(f"{allowance_url}/finance/close")
    await page.get_by_label("요청할 일").select_option("period_close")
    await page.get_by_label("대상 월").fill(str(month))
    await page.get_by_role("button", name="결재 요청", exact=True).click()
    await expect(page.get_by_role("status")).to_contain_text("결재를 요청했습니다")
    await expect(page.locator("article.approval", has_text="월 마감").first).to_be_visible()
    await check_screen(page, "finance-close-requested")

    # the approver, in a browser of their own
    async with open_page(browser, form) as other:
        await _sign_in(other, allowance_url, approver)
        await _approve_first(other, allowance_url, "월 마감")
        await check_screen(other, "finance-close-approved")

    # the clerk: the payout file, and the bank's answer with one failed line
    await page.goto(f"{allowance_url}/finance/payouts?period={month}")
    await expect(page.get_by_role("heading", name="지급 파일·이체 결과")).to_be_visible()
    await check_screen(page, "finance-payouts")
    async with page.expect_download() as info:
        await page.get_by_role("link", name="은행 대량이체 CSV").click()
    download = await info.value
    rows = list(csv.reader(io.StringIO((await download.path()).read_text("utf-8-sig"))))
    header, lines = rows[0], [r for r in rows[1:] if r and not r[0].startswith("합계")]
    who = header.index("시민ID")
    assert {paid_one, failed_one} <= {r[who] for r in lines}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*header, "상태", "사유"])
    for r in lines:
        failed = r[who] == failed_one
        writer.writerow([*r, "실패" if failed else "성공", "계좌 해지" if failed else ""])
    await page.get_by_label("이체 결과 CSV").set_input_files(
        files=[{"name": "results.csv", "mimeType": "text/csv", "buffer": out.getvalue().encode()}]
    )
    await page.get_by_role("button", name="올리고 결재 요청").click()
    await expect(page.get_by_role("status")).to_contain_text("결재를 요청했습니다")

    async with open_page(browser, form) as other:
        await _sign_in(other, allowance_url, approver)
        await _approve_first(other, allowance_url, "이체 결과 기록")
        await other.goto(f"{allowance_url}/finance/payouts?period={month}")
        row = other.locator("tr", has_text=failed_one).last
        await expect(row).to_contain_text("실패 · 다음 달 이월")
        await expect(other.get_by_role("alert")).to_contain_text("이체 실패")
        await check_screen(other, "finance-payouts-failed")

    # the failed net is out of payout due and waits in transfer-failed for the next close
    async with http_client(base_url=allowance_url) as http:
        entries = await http.get(
            "/v1/ledger",
            params={"citizen_id": failed_one, "account": "allowance_transfer_failed"},
            headers=kit.finance,
        )
    assert entries.status_code == 200 and entries.json()["items"], entries.text

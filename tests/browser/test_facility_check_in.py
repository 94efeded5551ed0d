"""Check-in at the door and the printed sign-in sheet, as facility staff use them on the
desktop and on the phone: the roster shows each booked citizen by the name the partner sent
(or the masked id) with their check-in code; staff open the check-in screen, type a code the
way people type it and see the citizen checked in, live in the list and on the roster, where
the attendance form starts from the door's time; the sign-in sheet (출석부) shows the shift in
Korean, names, codes with their QR codes, time columns and a signature column, on screen and
as printed. `check_screen` on every screen."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tools.api_client import Api, partner

from .screen import check_screen, screenshot
from .test_facility_console import SEOUL, card, eventually, move_clock, sign_in, system

pytestmark = pytest.mark.stack
__all__ = ["system"]  # the fixture, shared with the console's other tests


async def test_staff_check_in_by_code_and_print_the_sign_in_sheet(
    page: Page, registry_url: str, facility_key: str, system: Api
) -> None:
    facility = system.facility(facility_key)
    now = await system.clock.get()
    day = (now.astimezone(SEOUL) + timedelta(days=1)).date()
    starts = datetime(day.year, day.month, day.day, 14, 0, tzinfo=SEOUL)
    posted = await facility.post_posting(
        {
            "title": "어르신 점심 배식 도우미",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "capacity": 2,
            "selection": "first_come",
        }
    )
    pid = posted["id"]

    async def opened() -> bool:
        return bool((await facility.get_posting(pid))["status"] == "open")

    await eventually(opened, "the posting to open")
    for name in ("김민지", None):
        citizen = partner.citizen_profile(
            neighbourhood_verified_at=now - timedelta(days=30), display_name=name
        )
        await system.partner.submit_application(posting_id=pid, citizen=citizen)

    async def coded() -> list[dict[str, Any]] | None:
        entries: list[dict[str, Any]] = (await facility.get_roster(pid))["entries"]
        ok = len(entries) == 2 and all(e["check_in_code"] for e in entries)
        return entries if ok else None

    entries = await eventually(coded, "both bookings with their codes on the roster")
    minji = next(e for e in entries if e["display_name"] == "김민지")
    other = next(e for e in entries if e["display_name"] is None)
    code = minji["check_in_code"]

    # ten minutes before the shift: check-in is open
    await move_clock(system, page, starts - timedelta(minutes=10))
    await sign_in(page, registry_url, facility_key)
    await card(page, pid).get_by_role("button").click()
    roster = page.locator("#roster")
    await expect(roster).to_contain_text("김민지")
    await expect(roster).to_contain_text(f"입실 코드 {code}")
    await expect(roster).to_contain_text(other["citizen_display"])
    await expect(roster).to_contain_text("아직 입실 전")

    # the check-in screen: a wrong code is said next to the field, the right one checks in
    await page.get_by_role("button", name="입실·퇴실 확인 (코드 입력)").click()
    await expect(page.get_by_role("heading", name="입실·퇴실 확인")).to_be_visible()
    await expect(page.locator("#door-summary")).to_contain_text("확정 2명 중 입실 0명")
    await check_screen(page, "console-check-in")
    await page.get_by_label("입실 코드").fill("zzzzzz")
    await page.get_by_role("button", name="입실", exact=True).click()
    await expect(page.locator("#checkin-error")).to_contain_text("입실 코드가 없습니다")
    await page.get_by_label("입실 코드").fill(f"{code[:3].lower()} {code[3:].lower()}")
    await page.get_by_role("button", name="입실", exact=True).click()
    await expect(page.get_by_role("status")).to_contain_text("김민지 님 입실: 오후 1:50")
    await expect(page.locator("#door-summary")).to_contain_text("확정 2명 중 입실 1명")
    await expect(
        page.locator(f'#door-list li[data-booking="{minji["booking_id"]}"]')
    ).to_contain_text("입실 오후 1:50 · 퇴실 전")
    await expect(page.get_by_label("입실 코드")).to_have_value("")
    await check_screen(page, "console-check-in-done")
    # twice: a clear refusal
    await page.get_by_label("입실 코드").fill(code)
    await page.get_by_role("button", name="입실", exact=True).click()
    await expect(page.get_by_role("alert")).to_contain_text("이미 입실")

    # back on the roster: the state, and the attendance form starts from the door's time
    await page.get_by_role("button", name="‹ 근무로 돌아가기").click()
    minji_card = page.locator(f'#roster li[data-booking="{minji["booking_id"]}"]')
    await expect(minji_card).to_contain_text("입실 오후 1:50 · 퇴실 전")
    await expect(minji_card.get_by_label("입실 시각")).to_have_value("13:50")
    await check_screen(page, "console-roster-checked-in")

    # the sign-in sheet: on screen, then as printed
    await page.get_by_role("button", name="출석부 (인쇄용)").click()
    await expect(
        page.get_by_role("heading", name="출석부: 어르신 점심 배식 도우미")
    ).to_be_visible()
    facts = page.locator("#sheet-facts")
    await expect(facts).to_contain_text(f"{day.year}년 {day.month}월 {day.day}일")
    await expect(facts).to_contain_text("오후 2:00 ~ 오후 4:00 (2시간)")
    rows = page.locator("#sheet-rows tr")
    await expect(rows).to_have_count(2)
    await expect(page.locator("#sheet-table thead")).to_contain_text("서명")
    await expect(page.locator("#sheet-rows")).to_contain_text("김민지")
    await expect(page.locator("#sheet-rows")).to_contain_text(code)
    await expect(page.locator("#sheet-rows")).to_contain_text("오후 1:50")
    await expect(page.locator("#sheet-rows img")).to_have_count(2)  # the QR codes
    await check_screen(page, "console-sign-in-sheet")
    await page.emulate_media(media="print")
    await expect(page.get_by_role("button", name="인쇄")).to_be_hidden()
    await screenshot(page, "console-sign-in-sheet-print")
    await page.emulate_media(media="screen")

    # attendance from the paper sheet: the roster's attendance form
    await page.get_by_role("button", name="종이 출석부로 출석 입력").click()
    await expect(page.get_by_role("heading", name="명단과 출석")).to_be_focused()
    await expect(page.get_by_role("status")).to_contain_text("종이 출석부의 입실·퇴실 시각")

"""The facility console (`/console`) as facility staff use it, on the desktop and the phone:
sign in with the key, post a shift and repeat it weekly, find it in the week calendar, open
the roster of a shift citizens booked (through the partner's signed webhooks), record
attendance and see the minutes, edit, duplicate, cancel with a reason (which a fresh
sign-in elsewhere still shows, with the cancelled booking); and a list that
follows `next_cursor` past the first 100 postings. `check_screen` on every screen."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, expect

from tools.api_client import Api, Endpoints, partner

from .screen import check_screen, form_of, open_page

pytestmark = pytest.mark.stack

SEOUL = ZoneInfo("Asia/Seoul")
T = TypeVar("T")


@pytest.fixture
async def system(stack_env: dict[str, str]) -> AsyncIterator[Api]:
    async with Api(Endpoints.from_env(stack_env)) as api:
        now = await api.clock.get()
        for year in sorted({now.astimezone(SEOUL).year, (now + timedelta(days=60)).year}):
            budget = await api.allowance_admin.get_budget(year)
            if budget is None or int(budget["available_won"]) < 5_000_000:
                total = 0 if budget is None else int(budget["total_won"])
                await api.allowance_admin.set_budget(year, total + 5_000_000, "browser tests")
        yield api


async def eventually(check: Callable[[], Awaitable[T | None]], what: str) -> T:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if found := await check():
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def move_clock(system: Api, page: Page, at: datetime) -> None:
    """The shared clock (every service follows it) and the page's own clock."""
    await system.clock.set(at)
    for clock in system.clocks:

        async def follows(clock: Any = clock) -> bool:
            return await clock.get() >= at

        await eventually(follows, f"{clock.base_url} to follow the clock")
    await page.clock.set_fixed_time(at)


async def sign_in(page: Page, registry_url: str, key: str, shot: str | None = None) -> None:
    await page.goto(f"{registry_url}/console")
    await expect(page.get_by_role("heading", name="시설 키로 로그인")).to_be_visible()
    if shot:
        await check_screen(page, shot)
    await page.get_by_label("시설 키").fill(key)
    await page.get_by_role("button", name="확인").click()
    await expect(page.get_by_role("heading", name="우리 시설 근무")).to_be_visible()


async def rate_known(
    facility: Any, starts: datetime, ends: datetime, capacity: int
) -> dict[str, Any] | None:
    """The registry's estimate of a shift once it holds the allowance's rate table."""
    quote: dict[str, Any] = await facility.estimate_posting(starts, ends, capacity)
    return quote if quote["rate_known"] else None


def card(page: Page, posting_id: str) -> Any:
    return page.locator(f'li[data-posting="{posting_id}"]')


async def test_staff_post_repeat_book_attend_edit_duplicate_cancel(
    page: Page, browser: Browser, registry_url: str, facility_key: str, system: Api
) -> None:
    facility = system.facility(facility_key)
    now = await system.clock.get()
    await page.clock.set_fixed_time(now)
    day = (now.astimezone(SEOUL) + timedelta(days=2)).date()
    starts = datetime(day.year, day.month, day.day, 10, 0, tzinfo=SEOUL)

    # sign in; a wrong key is told next to the field
    await page.goto(f"{registry_url}/console")
    await page.get_by_label("시설 키").fill("fk_wrong")
    await page.get_by_role("button", name="확인").click()
    await expect(page.locator("#key-error")).to_contain_text("시설 키가 맞지 않")
    await check_screen(page, "console-signin-wrong-key")
    await page.get_by_label("시설 키").fill(facility_key)
    await page.get_by_role("button", name="확인").click()
    await expect(page.get_by_role("heading", name="우리 시설 근무")).to_be_visible()
    await expect(page.locator("#postings")).to_contain_text("아직 없습니다")
    assert facility_key not in page.url
    await check_screen(page, "console-list-empty")

    # post a shift, repeated for 3 weeks; a double tap posts each one once
    await page.get_by_role("button", name="새 근무 등록").click()
    await page.get_by_label("제목").fill("책 정리 도우미")
    await page.get_by_label("하는 일 (선택)").fill("반납된 책을 제자리에 꽂고 서가를 정리합니다.")
    await page.get_by_label("날짜").fill(day.isoformat())
    await page.get_by_label("시작 시각").fill("10:00")
    await page.get_by_label("끝나는 시각").fill("12:00")
    await page.get_by_label("모집 인원 (명)").fill("2")
    await page.get_by_label("매주 반복").select_option("3")
    await expect(page.locator("#f-duration")).to_contain_text("근무 시간 2시간")
    await expect(page.locator("#f-duration")).to_contain_text("3건")
    # the cost before posting: seats × the full shift's payout at the rate in force, the
    # API's figures (GET /v1/postings/estimate) in Korean number format, × the weeks
    quote = await eventually(
        lambda: rate_known(facility, starts, starts + timedelta(hours=2), 2),
        "the registry to hold the allowance's rate table",
    )
    seat_won, total_won = quote["seat_payout_won"], quote["total_won"]
    await expect(page.locator("#cost-total")).to_have_text(
        f"예상 수당: 1인 {seat_won:,}원 × 2명 = {total_won:,}원 × 3주 = {3 * total_won:,}원"
        f" (시급 {quote['hourly_rate_won']:,}원)"
    )
    await check_screen(page, "console-form-create")
    await page.get_by_role("button", name="등록").dblclick()
    await expect(page.get_by_role("status")).to_contain_text("근무 3건을 등록했습니다")
    listed = (await facility.list_postings())["data"]
    assert len(listed) == 3, [p["title"] for p in listed]
    first, second, third = sorted(listed, key=lambda p: p["starts_at"])
    assert datetime.fromisoformat(first["starts_at"]) == starts
    await expect(page.locator("#postings .card")).to_have_count(3)
    await expect(card(page, first["id"])).to_contain_text("모집 중")
    await expect(card(page, third["id"])).to_contain_text("모집 중")
    await expect(card(page, first["id"])).to_contain_text(
        f"{day.month}월 {day.day}일 ({'월화수목금토일'[day.weekday()]}) 오전 10:00 ~ 오후 12:00"
    )
    # the message stays after the list reloads
    await expect(page.get_by_role("status")).to_contain_text("근무 3건을 등록했습니다")
    await check_screen(page, "console-list")

    # the week calendar: this week (the page's clock is the shared clock), then on
    await page.get_by_role("button", name="주간 달력").click()
    monday_now = now.astimezone(SEOUL).date() - timedelta(days=now.astimezone(SEOUL).weekday())
    for _ in range((day - monday_now).days // 7):
        await page.get_by_role("button", name="다음 주").click()
    await expect(page.locator("#week-days")).to_contain_text("책 정리 도우미")
    await expect(page.locator("#week-days")).to_contain_text("오전 10:00 ~ 오후 12:00")
    await check_screen(page, "console-week")
    await page.get_by_role("button", name="다음 주").click()
    await expect(page.locator("#week-days .shift")).to_have_count(1)

    # citizens book through the partner: two confirmed and one waitlisted on the first
    # shift, one on the third
    for posting in (first, first, first, third):
        citizen = partner.citizen_profile(neighbourhood_verified_at=now - timedelta(days=30))
        await system.partner.submit_application(posting_id=posting["id"], citizen=citizen)

    async def booked() -> bool:
        a = await facility.get_roster(first["id"])
        b = await facility.get_roster(third["id"])
        return (a["confirmed_count"], a["waitlisted_count"], b["confirmed_count"]) == (2, 1, 1)

    await eventually(booked, "the bookings to reach the rosters")

    # the shift has run: record attendance, the times and minutes come back
    await move_clock(system, page, starts + timedelta(hours=2, minutes=10))
    await page.get_by_role("button", name="목록").click()
    await page.get_by_role("button", name="새로고침").click()
    await card(page, first["id"]).get_by_role("button").click()
    await expect(page.get_by_role("heading", name="명단과 출석")).to_be_visible()
    roster = page.locator("#roster .card")
    await expect(roster).to_have_count(3)
    await expect(roster.nth(2)).to_contain_text("대기 1번")
    await expect(roster.nth(0)).to_contain_text("확정")
    await roster.nth(0).get_by_label("출석", exact=True).check()
    await roster.nth(0).get_by_label("입실 시각").fill("10:05")
    await roster.nth(0).get_by_label("퇴실 시각").fill("11:50")
    await roster.nth(1).get_by_label("불참").check()
    await page.get_by_role("button", name="출석 저장").click()
    await expect(page.get_by_role("status")).to_contain_text("출석을 저장했습니다: 출석 1명")
    await expect(roster.nth(0).get_by_label("입실 시각")).to_have_value("10:05")
    await expect(roster.nth(0).get_by_label("퇴실 시각")).to_have_value("11:50")
    await expect(roster.nth(0)).to_contain_text("인정 시간 1시간 45분 (105분)")
    # what the 105 minutes earn at the rate in force, before the monthly cap
    earned_won = quote["hourly_rate_won"] * 105 // 60
    await expect(roster.nth(0)).to_contain_text(f"수당 {earned_won:,}원 (월 상한 적용 전)")
    entries = (await facility.get_roster(first["id"]))["entries"]
    attended = [e["attendance"] for e in entries if (e["attendance"] or {}).get("minutes") == 105]
    assert [a["allowance_won"] for a in attended] == [earned_won]
    await expect(roster.nth(1)).to_contain_text("불참으로 기록됨")
    await check_screen(page, "console-roster-attendance")

    # edit the second week's shift (PATCH)
    await page.get_by_role("button", name="‹ 목록으로").click()
    await card(page, second["id"]).get_by_role("button").click()
    await page.get_by_role("button", name="수정").click()
    await expect(page.get_by_role("heading", name="근무 수정")).to_be_visible()
    await expect(page.get_by_label("제목")).to_have_value("책 정리 도우미")
    await page.get_by_label("제목").fill("책 정리 도우미 (둘째 주)")
    await page.get_by_label("모집 인원 (명)").fill("3")
    await expect(page.locator("#cost-total")).to_have_text(
        f"예상 수당: 1인 {seat_won:,}원 × 3명 = {3 * seat_won:,}원"
        f" (시급 {quote['hourly_rate_won']:,}원)"
    )
    await check_screen(page, "console-form-edit")
    await page.get_by_role("button", name="변경 저장").click()
    await expect(page.get_by_role("status")).to_contain_text("근무를 수정했습니다")
    await expect(page.get_by_role("heading", name="책 정리 도우미 (둘째 주)")).to_be_visible()
    await expect(page.locator("#detail-facts")).to_contain_text("정원 3명")

    # duplicate it: the same shift, posted once more
    await page.get_by_role("button", name="복제").click()
    await expect(page.get_by_role("heading", name="근무 복제")).to_be_visible()
    await expect(page.get_by_label("제목")).to_have_value("책 정리 도우미 (둘째 주)")
    await page.get_by_role("button", name="등록").click()
    await expect(page.get_by_role("status")).to_contain_text("근무를 등록했습니다")
    await expect(page.locator("#postings .card")).to_have_count(4)
    assert len((await facility.list_postings())["data"]) == 4

    # cancel the third week's shift with a reason: its booking is shown cancelled
    await card(page, third["id"]).get_by_role("button").click()
    await expect(page.locator("#roster .card")).to_have_count(1)
    await page.get_by_role("button", name="근무 취소").click()
    await page.get_by_role("button", name="취소 확정").click()
    await expect(page.locator("#err-note")).to_contain_text("취소 사유를 적어 주세요")
    await page.get_by_label("취소 사유").fill("도서관 공사로 휴관합니다")
    await check_screen(page, "console-cancel-form")
    await page.get_by_role("button", name="취소 확정").click()
    await expect(page.get_by_role("status")).to_contain_text("근무를 취소했습니다. 예약 1건")
    await expect(page.locator("#detail-status")).to_have_text("취소됨")
    await expect(page.locator("#detail-facts")).to_contain_text("도서관 공사로 휴관합니다")
    await expect(page.locator("#roster .card")).to_have_count(1)
    await expect(page.locator("#roster .card")).to_contain_text("취소됨")
    await expect(page.get_by_role("button", name="출석 저장")).to_be_hidden()
    await expect(page.get_by_role("button", name="근무 취소")).to_be_hidden()
    await check_screen(page, "console-cancelled")
    assert (await facility.get_posting(third["id"]))["status"] == "cancelled"

    # sign out: the key leaves the tab
    await page.get_by_role("button", name="로그아웃").click()
    await expect(page.get_by_role("heading", name="시설 키로 로그인")).to_be_visible()
    assert await page.evaluate("sessionStorage.length") == 0

    # another device, another staff member, or the same one after closing the tab: the
    # reason and the booking the cancellation ended come from the API, once the matcher
    # has cancelled the booking
    async def ended() -> bool:
        entries = (await facility.get_roster(third["id"]))["entries"]
        return [e["status"] for e in entries] == ["cancelled"]

    await eventually(ended, "the matcher to cancel the third shift's booking")
    async with open_page(browser, form_of(page)) as elsewhere:
        await elsewhere.clock.set_fixed_time(await system.clock.get())
        await sign_in(elsewhere, registry_url, facility_key)
        await card(elsewhere, third["id"]).get_by_role("button").click()
        await expect(elsewhere.locator("#detail-status")).to_have_text("취소됨")
        await expect(elsewhere.locator("#detail-facts")).to_contain_text("도서관 공사로 휴관합니다")
        booking = elsewhere.locator("#roster .card")
        await expect(booking).to_have_count(1)
        await expect(booking).to_contain_text("확정 → 취소됨")
        await expect(elsewhere.locator("#roster-summary")).to_contain_text("예약 1건이 모두 취소")
        await expect(elsewhere.get_by_role("button", name="출석 저장")).to_be_hidden()
        await expect(elsewhere.get_by_role("button", name="근무 취소")).to_be_hidden()
        await expect(elsewhere.get_by_role("button", name="수정")).to_be_hidden()
        await check_screen(elsewhere, "console-cancelled-elsewhere")


async def test_the_list_follows_next_cursor_and_shows_the_newest_first(
    desktop_page: Page, registry_url: str, facility_key: str, system: Api
) -> None:
    page = desktop_page
    facility = system.facility(facility_key)
    now = await system.clock.get()
    start = now + timedelta(days=3)
    for n in range(1, 106):  # one after another: created_at orders them
        at = start + timedelta(hours=n)
        body = {
            "title": f"열람실 정리 {n}번째",
            "starts_at": at.isoformat(),
            "ends_at": (at + timedelta(minutes=30)).isoformat(),
            "capacity": 1,
            "selection": "first_come",
        }
        await facility.post_posting(body)
    first_page = await facility.list_postings(limit=100)
    assert len(first_page["data"]) == 100 and first_page["next_cursor"]

    await sign_in(page, registry_url, facility_key)
    await expect(page.locator("#list-count")).to_contain_text("전체 105건 중 20건")
    await expect(page.locator("#postings .card").first).to_contain_text("열람실 정리 105번째")
    await page.get_by_role("button", name="더 보기").click()
    await expect(page.locator("#postings .card")).to_have_count(40)
    await expect(page.locator("#postings .card").nth(20)).to_contain_text(
        re.compile("열람실 정리 85번째")
    )
    await check_screen(page, "console-list-paged")


async def test_the_apis_korean_field_errors_stand_next_to_their_fields(
    page: Page, registry_url: str, facility_key: str, system: Api
) -> None:
    now = await system.clock.get()
    await page.clock.set_fixed_time(now)
    yesterday = (now.astimezone(SEOUL) - timedelta(days=1)).date()
    await sign_in(page, registry_url, facility_key)
    await page.get_by_role("button", name="새 근무 등록").click()
    await page.get_by_role("button", name="등록").click()  # no title: caught before sending
    await expect(page.locator("#err-title")).to_have_text("제목을 입력해 주세요.")
    await page.get_by_label("제목").fill("어제 근무")
    await page.get_by_label("날짜").fill(yesterday.isoformat())
    await page.get_by_role("button", name="등록").click()
    await expect(page.get_by_role("alert")).to_contain_text("잘못된 요청")
    await expect(page.locator("#err-starts_at")).to_contain_text("이미 지난 시각입니다")
    await expect(page.get_by_label("날짜")).to_have_attribute("aria-invalid", "true")
    await check_screen(page, "console-form-errors")
    assert (await system.facility(facility_key).list_postings())["data"] == []


async def test_the_form_says_in_korean_when_no_rate_is_known_and_still_posts(
    page: Page, registry_url: str, facility_key: str, system: Api
) -> None:
    """Before the registry has received the allowance's rate table the estimate has no
    money in it (`rate_known: false`, stood in for here by answering the console's request
    so): the form says so in Korean, and posting still works."""
    now = await system.clock.get()
    await page.clock.set_fixed_time(now)

    async def no_rate(route: Any) -> None:
        response = await route.fetch()
        quote = {
            **await response.json(),
            "rate_known": False,
            **dict.fromkeys(
                ("hourly_rate_won", "seat_payout_won", "total_won", "rate_effective_from"), None
            ),
            **dict.fromkeys(("rate_source", "rates_version"), None),
        }
        await route.fulfill(response=response, json=quote)

    await page.route(re.compile(r"/v1/postings/estimate\?"), no_rate)
    await sign_in(page, registry_url, facility_key)
    await page.get_by_role("button", name="새 근무 등록").click()
    await page.get_by_label("제목").fill("시급표 없이 올리는 근무")
    await expect(page.locator("#cost-total")).to_have_text(
        "예상 수당: 아직 시급표를 받지 못해 계산할 수 없습니다."
    )
    await expect(page.locator("#cost-note")).to_contain_text("등록은 그대로 할 수 있고")
    await check_screen(page, "console-form-no-rate")
    await page.get_by_role("button", name="등록").click()
    await expect(page.get_by_role("status")).to_contain_text("근무를 등록했습니다")
    assert len((await system.facility(facility_key).list_postings())["data"]) == 1

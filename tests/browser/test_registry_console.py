"""Smoke test of the real facility console (`/console` on the running registry): a facility's
staff signs in with its key and sees its postings.

Only what holds today is asserted. The console is being rewritten (Korean only, phone
layout, KWCAG); once it is, its tests should call `check_screen` on both forms.
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from .screen import assert_no_outside_requests, assert_no_script_errors, screenshot

pytestmark = pytest.mark.stack


async def test_staff_sign_in_with_their_key_and_see_their_postings(
    desktop_page: Page, registry_url: str, facility_key: str
) -> None:
    page = desktop_page
    await page.goto(f"{registry_url}/console")
    await page.locator("#key").fill(facility_key)
    await page.get_by_role("button", name=re.compile("확인")).click()

    await expect(page.get_by_role("heading", name=re.compile("우리 시설 근무"))).to_be_visible()
    await expect(page.locator("#postings")).to_contain_text("아직 없습니다")

    shot = await screenshot(page, "registry-console-postings")
    assert shot.exists()
    assert_no_outside_requests(page)
    assert_no_script_errors(page)

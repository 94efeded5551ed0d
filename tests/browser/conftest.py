"""Fixtures of the browser suite (tests/browser/README.md): one Chromium for the session, pages
of each form (desktop, phone) watched by the network guard, and the stack's addresses and a
fresh facility for console tests. The checks themselves are in `screen.py`."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tools.api_client import http_client

from .screen import CHROMIUM_ENV, CHROMIUM_FLAGS, FORMS, KOREAN_PAK, TIMEOUT_MS, open_page

# `expect(...)` waits as long as an action may (5 s by default), for a machine under load.
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("no chromium on PATH: run `make setup` (it installs Debian's chromium)")
    if not KOREAN_PAK.exists():
        pytest.fail(f"Chromium has no Korean ({KOREAN_PAK} is missing): run `make setup`")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable,
            args=list(CHROMIUM_FLAGS),
            env={**os.environ, **CHROMIUM_ENV},
            headless=True,
        )
        yield browser
        await browser.close()


@pytest.fixture
async def desktop_page(browser: Browser) -> AsyncIterator[Page]:
    async with open_page(browser, "desktop") as page:
        yield page


@pytest.fixture
async def phone_page(browser: Browser) -> AsyncIterator[Page]:
    async with open_page(browser, "phone") as page:
        yield page


@pytest.fixture(params=list(FORMS))
async def page(request: pytest.FixtureRequest, browser: Browser) -> AsyncIterator[Page]:
    """The test runs twice: on the desktop and on the phone."""
    async with open_page(browser, request.param) as page:
        yield page


@pytest.fixture(scope="session")
def registry_url(stack_env: dict[str, str]) -> str:
    return stack_env["REGISTRY_URL"]


@pytest.fixture(scope="session")
def allowance_url(stack_env: dict[str, str]) -> str:
    return stack_env["ALLOWANCE_URL"]


@pytest.fixture
async def facility_key(stack_env: dict[str, str], registry_url: str) -> str:
    """The API key of a new facility (shown once by `POST /v1/admin/facilities`)."""
    fields = {
        "name": f"수완동 작은도서관 browser-{uuid.uuid4().hex[:6]}",
        "kind": "small_library",
        "dong": "수완동",
        "requires_child_safety_check": False,
    }
    headers = {"Authorization": f"Bearer {stack_env['ADMIN_TOKEN']}"}
    async with http_client(base_url=registry_url, headers=headers) as client:
        response = await client.post("/v1/admin/facilities", json=fields)
    assert response.status_code == 201, response.text
    key: str = response.json()["api_key"]
    return key

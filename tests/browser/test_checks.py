"""The checkers themselves, on tiny pages served from 127.0.0.1: a good Korean page passes every
check on both forms, and each kind of bad page is caught by the check meant for it (so a
console test that passes means something). Most pages are served with a strict CSP, as the
consoles are."""

from __future__ import annotations

import functools
import http.server
import re
import threading
from collections.abc import Iterator

import pytest
from playwright.async_api import Browser, Page

from .screen import ROOT, check_screen, is_loopback, open_page

CSS = """
body { font-family: "NanumGothic", sans-serif; margin: 0; padding: 16px; color: #1a1a1a; }
.stack { display: flex; flex-direction: column; gap: 12px; max-width: 600px; }
label { display: block; padding: 8px 0; }
input { display: block; width: 100%; box-sizing: border-box; min-height: 48px; font: inherit; }
button, .button { min-height: 48px; min-width: 48px; padding: 0 16px; font: inherit;
  background: #9a3412; color: #fff; border: 0; border-radius: 6px; }
.button { display: inline-flex; align-items: center; text-decoration: none; }
table { border-collapse: collapse; width: 100%; }
td, th { border-bottom: 1px solid #ccc; padding: 8px; text-align: left; }
.wide { width: 600px; }
.faint { color: #c8c8c8; }
.tiny { min-height: 0; min-width: 0; width: 20px; height: 20px; padding: 0; }
.clip { overflow: hidden; }
.far { margin-left: 1400px; }
"""

GOOD_BODY = """
<h1>수완동 작은도서관 근무</h1>
<main class="stack">
  <p>이번 주 근무를 확인하고 출석을 저장하세요.</p>
  <form class="stack">
    <label for="title">근무 제목</label>
    <input id="title" name="title" value="책 정리">
    <button type="button">등록</button>
  </form>
  <table>
    <caption>이번 주 근무</caption>
    <thead><tr><th scope="col">제목</th><th scope="col">인원</th></tr></thead>
    <tbody><tr><td>책 정리</td><td>2/3</td></tr></tbody>
  </table>
  <a class="button" href="/good.html">처음으로</a>
  <img src="/dot.svg" alt="도서관 로고" width="48" height="48">
</main>
"""

STRICT_CSP = "default-src 'self'; frame-ancestors 'none'"
DOT_SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="48" height="48"><circle cx="24" cy="24" r="20" fill="#9a3412"/></svg>'


def html(body: str, *, lang: str = "ko", viewport: bool = True, head: str = "") -> str:
    meta = '<meta name="viewport" content="width=device-width, initial-scale=1">'
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        f"{meta if viewport else ''}<title>시험 페이지</title>"
        f'<link rel="stylesheet" href="/site.css">{head}</head><body>{body}</body></html>'
    )


BAD_BODY = (
    GOOD_BODY
    + '<table class="wide"><tr><td>넓은 표</td></tr></table>'
    + '<img src="/dot.svg">'
    + '<p class="faint">흐린 안내 문구</p>'
    + '<button class="tiny" aria-label="닫기">×</button>'
    + '<div class="clip"><button class="far">숨은 버튼</button></div>'
)
CDN_SCRIPT = '<script src="https://cdn.example.com/x.js"></script>'

# path -> (content type, body, CSP or None)
PAGES: dict[str, tuple[str, str, str | None]] = {
    "/site.css": ("text/css", CSS, None),
    "/dot.svg": ("image/svg+xml", DOT_SVG, None),
    "/throw.js": ("text/javascript", "null.boom;", None),
    "/good.html": ("text/html", html(GOOD_BODY), STRICT_CSP),
    # Everything wrong at once, no CSP: one page load and one axe run for all the checks.
    "/bad.html": (
        "text/html",
        html(BAD_BODY, lang="en", head=CDN_SCRIPT + '<script src="/throw.js"></script>'),
        None,
    ),
    # The consoles send a CSP: a CDN script is then blocked by the page itself, before any
    # request; the guard must still see it. An inline script is a CSP violation too.
    "/csp.html": (
        "text/html",
        html(GOOD_BODY + "<script>document.title = '바뀜';</script>", head=CDN_SCRIPT),
        STRICT_CSP,
    ),
    "/no-viewport.html": ("text/html", html(GOOD_BODY, viewport=False), STRICT_CSP),
}


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        found = PAGES.get(self.path)
        if found is None:
            self.send_error(404)
            return
        kind, body, csp = found
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if csp:
            self.send_header("Content-Security-Policy", csp)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=functools.partial(server.serve_forever, 0.05), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


async def test_a_good_korean_page_passes_every_check(page: Page, site: str) -> None:
    await page.goto(f"{site}/good.html")
    shot = await check_screen(page, "selftest-good")
    assert shot.exists() and shot.stat().st_size > 1000


@pytest.fixture(scope="module")
async def bad_phone_report(browser: Browser, site: str) -> str:
    """What check_screen says about /bad.html on the phone."""
    async with open_page(browser, "phone") as page:
        await page.goto(f"{site}/bad.html")
        with pytest.raises(AssertionError) as caught:
            await check_screen(page, "selftest-bad")
    return str(caught.value)


def reported(report: str, pattern: str) -> None:
    assert re.search(pattern, report, re.MULTILINE), f"not reported: {pattern}\n{report}"


async def test_a_600px_table_is_caught_by_the_sideways_scroll_check(bad_phone_report: str) -> None:
    reported(
        bad_phone_report,
        r"^- scrolls sideways: content is 6\d\d px wide on a 390 px screen \(widest: table\.wide \(600 px wide, right edge at 6\d\d\)\)$",
    )


async def test_an_image_without_alt_is_caught_by_axe(bad_phone_report: str) -> None:
    reported(
        bad_phone_report,
        r"^- axe image-alt \(critical\): Images must have alternative text — at body > img",
    )


async def test_low_contrast_text_is_caught_by_axe(bad_phone_report: str) -> None:
    reported(bad_phone_report, r"^- axe color-contrast \(serious\): .* — at \.faint")


async def test_a_script_from_a_cdn_is_caught_by_the_network_guard(bad_phone_report: str) -> None:
    reported(
        bad_phone_report,
        r"^- request outside loopback \(aborted\): GET https://cdn\.example\.com/x\.js$",
    )


async def test_a_20px_button_is_too_small_to_tap_on_the_phone(bad_phone_report: str) -> None:
    reported(bad_phone_report, r'^- button "닫기" is 20×20 CSS px, smaller than the 44×44')


async def test_a_button_beyond_the_right_edge_is_caught(bad_phone_report: str) -> None:
    reported(
        bad_phone_report, r'^- button "숨은 버튼" lies outside the 390 px screen \(x 14\d\d\.\.'
    )


async def test_a_page_not_in_korean_is_caught(bad_phone_report: str) -> None:
    reported(bad_phone_report, r"^- <html lang=\"ko\"> expected, found lang='en'$")


async def test_an_uncaught_script_error_is_caught(bad_phone_report: str) -> None:
    reported(bad_phone_report, r"^- script error: uncaught .*null")


async def test_the_report_names_the_screen_and_its_screenshot(bad_phone_report: str) -> None:
    assert bad_phone_report.startswith("selftest-bad-phone: ")
    assert bad_phone_report.endswith("\n- screenshot: artifacts/screenshots/selftest-bad-phone.png")
    assert (ROOT / "artifacts/screenshots/selftest-bad-phone.png").exists()


async def test_a_cdn_script_blocked_by_the_pages_own_csp_is_still_caught(
    desktop_page: Page, site: str
) -> None:
    await desktop_page.goto(f"{site}/csp.html")
    with pytest.raises(AssertionError) as caught:
        await check_screen(desktop_page, "selftest-csp")
    report = str(caught.value)
    reported(
        report,
        r"^- request outside loopback \(aborted\): https://cdn\.example\.com/x\.js \(blocked by the page's CSP script-src-elem\)$",
    )
    reported(report, r"^- script error: the page's CSP script-src-elem blocked inline$")


async def test_a_page_without_a_viewport_tag_is_caught_on_the_phone(
    phone_page: Page, site: str
) -> None:
    await phone_page.goto(f"{site}/no-viewport.html")
    with pytest.raises(AssertionError, match=r"lays out 980 px wide on a 390 px phone"):
        await check_screen(phone_page, "selftest-no-viewport")


async def test_an_outside_request_fails_the_test_even_without_a_check(
    browser: Browser, site: str
) -> None:
    with pytest.raises(AssertionError, match=r"not reported by a check:\n.*cdn\.example\.com"):
        async with open_page(browser, "desktop") as page:
            await page.goto(f"{site}/bad.html")


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:8001/console", True),
        ("http://localhost:8001/x", True),
        ("http://[::1]:8001/x", True),
        ("http://127.9.9.9/x", True),
        ("data:text/plain,hi", True),
        ("https://cdn.example.com/x.js", False),
        ("http://10.0.0.1/x", False),
        ("http://localhost.example.com/x", False),
        ("wss://example.com/socket", False),
    ],
)
def test_what_counts_as_loopback(url: str, local: bool) -> None:
    assert is_loopback(url) is local

"""What a console test checks on a screen, in a real Chromium (Debian's, driven by Playwright).

`open_page` gives a page of one form (desktop 1280×900, or a phone 390×844 with mobile
emulation), Korean locale and Seoul time, whose every request is watched: a request to a
host outside loopback is recorded and aborted (the "no CDN" rule: the consoles must work on
a district PC with no outside network), and so is a load the page's own CSP blocked because
it pointed outside. Uncaught script errors and CSP violations are recorded too.

`check_screen(page, name)` saves a full-page screenshot, then checks the screen the way a
reviewer would and fails with every problem at once: axe-core (WCAG 2.2 AA tags, impact
serious or critical), `<html lang="ko">`, no sideways scrolling, every visible control inside
the screen's width and (on the phone) at least 44×44 CSS px to tap, no outside requests, no
script errors.
"""

from __future__ import annotations

import ipaddress
import re
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Browser, Page, Request, Route

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
AXE_JS = ROOT / ".tools" / "npm" / "node_modules" / "axe-core" / "axe.min.js"

# What this machine's closed network needs (docs: .library env, "Known to work"): without
# the background-networking flags Chromium keeps dialling Google. The resolver rule is a
# second lock behind the request guard: a hint the guard never sees (preconnect, prefetch)
# cannot resolve an outside name either. Playwright adds its own fresh --user-data-dir.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]",
)

# The browser's own language, which the context's locale does not reach: date and time
# inputs show "연도. 월. 일." only when Chromium itself runs in Korean (its ko.pak comes from
# Debian's chromium-l10n; Chromium on Linux takes the language from these variables).
CHROMIUM_ENV = {"LANG": "ko_KR.UTF-8", "LANGUAGE": "ko"}
KOREAN_PAK = Path("/usr/lib/chromium/locales/ko.pak")

PHONE_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; SM-S921N) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Mobile Safari/537.36"
)
FORMS: dict[str, dict[str, Any]] = {
    "desktop": {"viewport": {"width": 1280, "height": 900}},
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "is_mobile": True,
        "has_touch": True,
        "device_scale_factor": 3,
        "user_agent": PHONE_USER_AGENT,
    },
}
CONTEXT = {"locale": "ko-KR", "timezone_id": "Asia/Seoul"}

AXE_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa")
AXE_FAILING = frozenset({"serious", "critical"})
TAP_TARGET_PX = 44
TIMEOUT_MS = 10_000


@dataclass
class Watch:
    """What happened on one page that a check reports (and then forgets, so the page's
    closing only complains about what no check has reported)."""

    form: str
    outside: list[str] = field(default_factory=list)
    script_errors: list[str] = field(default_factory=list)

    async def guard(self, route: Route, request: Request) -> None:
        if is_loopback(request.url):
            await route.fallback()
        else:
            self.outside.append(f"{request.method} {request.url}")
            await route.abort("blockedbyclient")

    def on_csp_violation(self, directive: str, blocked: str) -> None:
        if blocked.startswith(("http:", "https:", "ws:", "wss:")) and not is_loopback(blocked):
            self.outside.append(f"{blocked} (blocked by the page's CSP {directive})")
        else:
            self.script_errors.append(f"the page's CSP {directive} blocked {blocked or 'inline'}")


_WATCHES: weakref.WeakKeyDictionary[Page, Watch] = weakref.WeakKeyDictionary()

_CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  if (e.disposition === "enforce") window.__gwangsanCspViolation(e.effectiveDirective, e.blockedURI);
}, true);
"""


def is_loopback(url: str) -> bool:
    """True for a URL that stays on this machine: loopback hosts, and the schemes that never
    touch the network (data:, blob:, about:)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss"):
        return True
    host = (parts.hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@asynccontextmanager
async def open_page(browser: Browser, form: str) -> AsyncIterator[Page]:
    """A page in a fresh context of `form` ("desktop" or "phone"). On a clean exit it fails
    if the page made outside requests or had script errors that no check reported."""
    context = await browser.new_context(**CONTEXT, **FORMS[form])
    context.set_default_timeout(TIMEOUT_MS)
    watch = Watch(form)
    await context.route("**/*", watch.guard)
    await context.expose_function("__gwangsanCspViolation", watch.on_csp_violation)
    await context.add_init_script(_CSP_LISTENER)
    page = await context.new_page()
    page.on("pageerror", lambda error: watch.script_errors.append(f"uncaught {error}"))
    _WATCHES[page] = watch
    try:
        yield page
    finally:
        await context.close()
    unreported = _outside_problems(watch) + _script_problems(watch)
    if unreported:
        raise AssertionError(f"{form} page, not reported by a check:\n" + "\n".join(unreported))


def _watch(page: Page) -> Watch:
    try:
        return _WATCHES[page]
    except KeyError:
        raise ValueError("not a page from open_page / the browser fixtures") from None


def form_of(page: Page) -> str:
    return _watch(page).form


def _outside_problems(watch: Watch) -> list[str]:
    found = [f"request outside loopback (aborted): {what}" for what in watch.outside]
    watch.outside.clear()
    return found


def _script_problems(watch: Watch) -> list[str]:
    found = [f"script error: {what}" for what in watch.script_errors]
    watch.script_errors.clear()
    return found


def _fail(page: Page, name: str, problems: list[str]) -> None:
    if problems:
        header = f"{name}-{form_of(page)}: {len(problems)} problem(s) on {page.url}"
        raise AssertionError("\n".join([header, *(f"- {p}" for p in problems)]))


def assert_no_outside_requests(page: Page) -> None:
    """Fail if the page asked for anything outside loopback (a CDN, a web font, analytics)."""
    _fail(page, "network", _outside_problems(_watch(page)))


def assert_no_script_errors(page: Page) -> None:
    """Fail on uncaught script errors and on anything the page's own CSP blocked."""
    _fail(page, "scripts", _script_problems(_watch(page)))


async def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot at artifacts/screenshots/<name>-<desktop|phone>.png, in CSS px."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ValueError(f"screenshot name {name!r}: use letters, digits, '-', '_' and '.'")
    path = SCREENSHOTS / f"{name}-{form_of(page)}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    # CSS scale: a phone shot is 390 px wide, as a person sees it, and 9× cheaper to encode
    # than at the emulated device scale factor of 3.
    await page.screenshot(
        path=path, full_page=True, scale="css", animations="disabled", caret="hide"
    )
    return path


async def check_screen(page: Page, name: str) -> Path:
    """Screenshot the page, then fail with every problem found on it. Returns the PNG."""
    path = await screenshot(page, name)
    problems = [
        *await lang_problems(page),
        *await layout_problems(page),
        *await control_problems(page),
        *await axe_problems(page),
        *_outside_problems(_watch(page)),
        *_script_problems(_watch(page)),
    ]
    if problems:
        problems.append(f"screenshot: {path.relative_to(ROOT)}")
    _fail(page, name, problems)
    return path


async def lang_problems(page: Page) -> list[str]:
    lang = await page.evaluate("() => document.documentElement.getAttribute('lang')")
    if lang is None or not re.fullmatch(r"ko(-[A-Za-z0-9]+)*", lang):
        return [f'<html lang="ko"> expected, found lang={lang!r}']
    return []


_LAYOUT_JS = """
() => {
  const root = document.documentElement;
  const width = root.clientWidth;
  const describe = (el) => {
    let s = el.tagName.toLowerCase();
    if (el.id) s += "#" + el.id;
    for (const c of [...el.classList].slice(0, 2)) s += "." + c;
    return s;
  };
  const wide = [];
  const overflowing = root.scrollWidth > width;
  for (const el of overflowing && document.body ? document.body.querySelectorAll("*") : []) {
    // The outermost element that sticks out, unless its parent clips or scrolls it.
    if (getComputedStyle(el.parentElement).overflowX !== "visible") continue;
    const r = el.getBoundingClientRect();
    const parent = el.parentElement.getBoundingClientRect();
    if (r.right + scrollX > width + 1 && parent.right + scrollX <= width + 1) {
      wide.push(`${describe(el)} (${Math.round(r.width)} px wide, right edge at ${Math.round(r.right + scrollX)})`);
    }
  }
  return {width, scrollWidth: root.scrollWidth, wide: wide.slice(0, 5)};
}
"""


async def layout_problems(page: Page) -> list[str]:
    """The page must fit the screen's width: no sideways scrolling, and on the phone it must
    lay out at the device's width (a viewport meta tag), not at a shrunk 980 px desktop."""
    viewport = page.viewport_size
    assert viewport is not None
    got = await page.evaluate(_LAYOUT_JS)
    problems = []
    if form_of(page) == "phone" and got["width"] != viewport["width"]:
        problems.append(
            f"lays out {got['width']} px wide on a {viewport['width']} px phone: add"
            ' <meta name="viewport" content="width=device-width, initial-scale=1">'
        )
    # documentElement.clientWidth, not innerWidth: under mobile emulation Chromium zooms out
    # to fit content wider than the screen, and innerWidth grows with it.
    if got["scrollWidth"] > got["width"]:
        culprits = "; ".join(got["wide"]) or "no single element"
        problems.append(
            f"scrolls sideways: content is {got['scrollWidth']} px wide on a {got['width']} px"
            f" screen (widest: {culprits})"
        )
    return problems


_CONTROLS_JS = """
() => {
  const width = document.documentElement.clientWidth;
  const selector = [
    "a[href]", "button", "input:not([type=hidden])", "select", "textarea", "summary",
    "[role=button]", "[role=link]", "[role=checkbox]", "[role=radio]", "[role=switch]",
    "[role=tab]", "[role=menuitem]", "[tabindex]:not([tabindex='-1'])",
  ].join(",");
  const out = [];
  for (const el of document.querySelectorAll(selector)) {
    if (!el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})) continue;
    const r = el.getBoundingClientRect();
    if (r.width <= 1 && r.height <= 1) continue;  // the visually-hidden pattern (sr-only)
    // A label is part of its control's tap target: tapping it works the control.
    let w = r.width, h = r.height;
    for (const label of el.labels || []) {
      const l = label.getBoundingClientRect();
      if (l.width * l.height > w * h) { w = l.width; h = l.height; }
    }
    let name = (el.getAttribute("aria-label") || el.innerText || el.value || el.getAttribute("placeholder")
                || el.getAttribute("name") || "").trim().replace(/\\s+/g, " ").slice(0, 40);
    let what = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
               + (el.type && el.tagName === "INPUT" ? `[type=${el.type}]` : "") + (name ? ` "${name}"` : "");
    out.push({what, left: r.left + scrollX, right: r.right + scrollX, w, h});
  }
  return {width, controls: out};
}
"""


async def control_problems(page: Page) -> list[str]:
    """Every visible button, link and form control lies inside the screen's width and, on
    the phone, is at least 44×44 CSS px to tap (KWCAG 2.2 / WCAG 2.5.5)."""
    got = await page.evaluate(_CONTROLS_JS)
    width, phone = got["width"], form_of(page) == "phone"
    problems = []
    for c in got["controls"]:
        if c["left"] < -0.5 or c["right"] > width + 0.5:
            problems.append(
                f"{c['what']} lies outside the {width} px screen"
                f" (x {round(c['left'])}..{round(c['right'])})"
            )
        # Half a pixel of slack for sub-pixel layout (43.6 px of text line-height and padding).
        if phone and (c["w"] < TAP_TARGET_PX - 0.5 or c["h"] < TAP_TARGET_PX - 0.5):
            problems.append(
                f"{c['what']} is {round(c['w'])}×{round(c['h'])} CSS px, smaller than the"
                f" {TAP_TARGET_PX}×{TAP_TARGET_PX} a finger needs"
            )
    return problems


@cache
def _axe_source() -> str:
    if not AXE_JS.exists():
        raise AssertionError(f"{AXE_JS.relative_to(ROOT)} is missing: run `make setup`")
    return AXE_JS.read_text("utf-8")


_AXE_RUN_JS = """
async (tags) => {
  const result = await axe.run(document, {
    runOnly: {type: "tag", values: tags}, resultTypes: ["violations"],
  });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    targets: v.nodes.map((n) => n.target.flat().join(" >>> ")),
  }));
}
"""


async def axe_problems(page: Page) -> list[str]:
    """axe-core's violations of impact serious or critical under the WCAG 2.0–2.2 A/AA tags.

    axe goes in through DevTools evaluation (not a <script> tag), so a page's strict CSP
    neither blocks it nor has to be loosened for tests."""
    await page.evaluate("() => {\n" + "if (!window.axe) {\n" + _axe_source() + "\n}\n}")
    violations = await page.evaluate(_AXE_RUN_JS, list(AXE_TAGS))
    problems = []
    for v in violations:
        if v["impact"] not in AXE_FAILING:
            continue
        targets = ", ".join(v["targets"][:5]) + (" …" if len(v["targets"]) > 5 else "")
        problems.append(
            f"axe {v['id']} ({v['impact']}): {v['help']} — at {targets} — {v['helpUrl']}"
        )
    return problems

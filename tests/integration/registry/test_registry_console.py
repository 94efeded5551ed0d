"""The facility console is served by the registry and uses only the facility API."""

from __future__ import annotations

import re

import pytest

from tools.api_client import http_client

pytestmark = pytest.mark.stack


async def test_console_page_is_served_and_calls_only_the_facility_api(
    stack_env: dict[str, str],
) -> None:
    """GET /console answers an HTML page with a restrictive CSP; every API path the page
    calls is one of the facility endpoints (the page has no API of its own), and none of
    those calls sends the key anywhere but this origin."""
    async with http_client(base_url=stack_env["REGISTRY_URL"]) as client:
        page = await client.get("/console")
        spec = (await client.get("/openapi.json")).json()
        # the page's own assets (same origin, under /console/)
        assets = re.findall(r'(?:src|href)="(/console/[^"]+)"', page.text)
        texts = [page.text] + [(await client.get(a)).text for a in assets]
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert any(a.endswith(".js") for a in assets), assets
    literal = [p for text in texts for p in re.findall(r"[`\"](/v1/[^`\"?]*)", text)]
    called = {re.sub(r"\$\{[^}]+\}", "{posting_id}", path) for path in literal}
    assert called, "the console calls the facility API"
    facility_paths = {p for p in spec["paths"] if p.startswith("/v1/postings")}
    for path in called:
        assert path in facility_paths, path
    for text in texts:
        assert "http://" not in text and "https://" not in text

"""The facility console is served by the registry and uses only the facility API."""

from __future__ import annotations

import re

import httpx
import pytest

pytestmark = pytest.mark.stack


async def test_console_page_is_served_and_calls_only_the_facility_api(
    stack_env: dict[str, str],
) -> None:
    """GET /console answers an HTML page with a restrictive CSP; every API path the page
    calls is one of the facility endpoints (the page has no API of its own), and none of
    those calls sends the key anywhere but this origin."""
    async with httpx.AsyncClient(base_url=stack_env["REGISTRY_URL"]) as client:
        page = await client.get("/console")
        spec = (await client.get("/openapi.json")).json()
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    literal = re.findall(r"[`\"](/v1/[^`\"?]*)", page.text)
    called = {re.sub(r"\$\{[^}]+\}", "{posting_id}", path) for path in literal}
    assert called, "the console calls the facility API"
    facility_paths = {p for p in spec["paths"] if p.startswith("/v1/postings")}
    for path in called:
        assert path in facility_paths, path
    assert "http://" not in page.text and "https://" not in page.text

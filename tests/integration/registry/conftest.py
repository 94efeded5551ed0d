"""Fixtures of the registry's integration suite: a client of the running service.

When the real allowance service runs, it answers every posting's budget request; without a
budget for the fiscal year it refuses them all. So, when allowance is up, the fixture makes
sure the fiscal years the tests post into (the shared clock's year and that of 30 days
later) have a budget — set through allowance's admin API only where none exists yet, never
changing a budget someone else set.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import httpx
import pytest

from shared.clock import seoul_date
from shared.kafka import make_producer
from tests.integration.registry.registry_client import Registry, TopicWatcher

TEST_BUDGET_WON = 10**11


async def ensure_budget(stack_env: dict[str, str], now: datetime) -> None:
    url = stack_env.get("ALLOWANCE_URL")
    if not url:
        return
    admin = {"Authorization": f"Bearer {stack_env['ADMIN_TOKEN']}"}
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        try:
            spec = await http.get("/openapi.json")
        except httpx.HTTPError:
            return  # allowance not running: budget answers are injected by the tests
        if spec.status_code != 200 or "/v1/admin/budget" not in spec.json().get("paths", {}):
            return
        for year in sorted({seoul_date(now).year, seoul_date(now + timedelta(days=30)).year}):
            r = await http.get("/v1/admin/budget", params={"fiscal_year": year}, headers=admin)
            if r.status_code == 404:
                put = await http.put(
                    "/v1/admin/budget",
                    headers=admin,
                    json={
                        "fiscal_year": year,
                        "amount_won": TEST_BUDGET_WON,
                        "note": "registry integration tests: a budget for the years they post in",
                        "previous_amount_won": 0,
                    },
                )
                assert put.status_code in (200, 409), put.text


@pytest.fixture(scope="session")
async def registry(stack_env: dict[str, str], kafka_bootstrap: str) -> AsyncIterator[Registry]:
    watcher = TopicWatcher(kafka_bootstrap)
    await watcher.start()
    producer = make_producer(kafka_bootstrap, "registry-tests")
    await producer.start()
    async with httpx.AsyncClient(base_url=stack_env["REGISTRY_URL"], timeout=30) as http:
        r = await http.get("/readyz")
        assert r.status_code == 200, f"the registry is not ready: {r.text}"
        client = Registry(http, stack_env["ADMIN_TOKEN"], producer, watcher)
        await ensure_budget(stack_env, await client.now())
        yield client
    await producer.stop()
    await watcher.stop()

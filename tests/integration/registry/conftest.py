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

from shared.kafka import make_producer, stack_security
from shared.seoul import seoul_date
from tests.integration.registry.registry_client import Registry, TopicWatcher
from tools.api_client import Api, ApiError, Endpoints

TEST_BUDGET_WON = 10**11


async def ensure_budget(api: Api, now: datetime) -> None:
    try:
        spec = await api.raw(api.endpoints.allowance_url, None, "GET", "/openapi.json")
    except httpx.HTTPError:
        return  # allowance not running: budget answers are injected by the tests
    if spec.status_code != 200 or "/v1/admin/budget" not in spec.json().get("paths", {}):
        return
    for year in sorted({seoul_date(now).year, seoul_date(now + timedelta(days=30)).year}):
        if await api.allowance_admin.get_budget(year) is not None:
            continue
        try:
            await api.allowance_admin.set_budget(
                year,
                TEST_BUDGET_WON,
                "registry integration tests: a budget for the years they post in",
                previous_amount_won=0,
            )
        except ApiError as refused:  # another suite set it meanwhile
            assert refused.status == 409, refused


@pytest.fixture(scope="session")
async def registry(stack_env: dict[str, str], kafka_bootstrap: str) -> AsyncIterator[Registry]:
    watcher = TopicWatcher(kafka_bootstrap)
    await watcher.start()
    producer = make_producer(kafka_bootstrap, "registry-tests", stack_security())
    await producer.start()
    endpoints = Endpoints.from_env(stack_env)
    async with Api(endpoints, timeout_s=30) as api:
        r = await api.raw(endpoints.registry_url, None, "GET", "/readyz")
        assert r.status_code == 200, f"the registry is not ready: {r.text}"
        client = Registry(api, producer, watcher)
        if stack_env.get("ALLOWANCE_URL"):
            await ensure_budget(api, await client.now())
        yield client
    await producer.stop()
    await watcher.stop()

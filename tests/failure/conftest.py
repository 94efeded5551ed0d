"""Fixtures of the failure suite: the partner simulator on the port the matcher notifies
(shared with any other suite that already runs one, restarted here if it goes away) and
one HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tools.api_client import http_client

from .scenario import SimKeeper


@pytest.fixture(scope="session")
def failure_sim(stack_env: dict[str, str]) -> Iterator[SimKeeper]:
    notify_url = urlsplit(
        stack_env.get("PARTNER_NOTIFY_URL", "http://127.0.0.1:8009/notifications")
    )
    keeper = SimKeeper(f"{notify_url.scheme}://{notify_url.hostname}:{notify_url.port}", stack_env)
    keeper.ensure()
    try:
        yield keeper
    finally:
        keeper.stop()


@pytest.fixture(scope="session")
def failure_sim_url(failure_sim: SimKeeper) -> str:
    return failure_sim.url


@pytest.fixture(scope="session")
async def failure_http() -> AsyncIterator[httpx.AsyncClient]:
    async with http_client(timeout_s=10) as client:
        yield client

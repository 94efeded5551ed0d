"""Fixtures of the allowance integration suite: one kit per session (HTTP client, Kafka
producer, a watcher of allowance's topics, a database pool for checks), and a trial-balance
check after every test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.allowance.allowance_kit import Kit, check_trial_balance


@pytest.fixture(scope="session")
async def kit(stack_env: dict[str, str]) -> AsyncIterator[Kit]:
    instance = Kit(stack_env)
    await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()


@pytest.fixture(autouse=True)
async def trial_balance_after(kit: Kit) -> AsyncIterator[None]:
    """After any test: the ledger sums to zero and the budget API equals the entries."""
    yield
    await check_trial_balance(kit)

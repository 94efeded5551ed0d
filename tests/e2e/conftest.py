"""Fixtures of the end-to-end suite: the three services as the stack's processes, the partner
simulator where the matcher notifies (shared with the matcher suite's logic: started here
only if none answers), a facility per test, budget room in the fiscal year a test works in,
and a helper that waits for the system to catch up."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest

from shared.seoul import seoul_date
from tools.api_client import Api, Endpoints, partner
from tools.api_client.calls import Clock
from tools.demo.services import simulator

T = TypeVar("T")
RATE_WON = 13_303  # the rate in force since 2026 (BRIEF §5); checked in test_e2e_finance


@pytest.fixture(scope="session")
def sim_url(stack_env: dict[str, str]) -> Iterator[str]:
    with simulator(stack_env) as url:
        yield url


@pytest.fixture(scope="session", autouse=True)
def notifications_keep_the_contract(sim_url: str) -> Iterator[None]:
    """At the end of the session, every notification the simulator received validated
    against the published contract (`matcher.contract`, docs/partner-openapi.json): an
    unknown type or a `data` that breaks its schema fails the suite with the examples."""
    yield
    answer = httpx.get(f"{sim_url}/contract/violations", timeout=10)
    assert answer.status_code == 200, (
        f"the partner simulator at {sim_url} does not check the contract ({answer.status_code}):"
        " restart it from this checkout"
    )
    found = answer.json()
    assert found["count"] == 0, (
        f"{found['count']} notification(s) broke the partner contract; examples:\n"
        + "\n".join(repr(v) for v in found["items"][:5])
    )


@pytest.fixture(scope="session")
async def system(stack_env: dict[str, str], sim_url: str) -> AsyncIterator[Api]:
    async with Api(Endpoints.from_env(stack_env, sim_url=sim_url)) as api:
        yield api


async def eventually(
    check: Callable[[], Awaitable[T | None]], *, what: str, timeout_s: float = 30
) -> T:
    """Poll `check` until it returns something truthy; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}; last: {last!r}")


FacilityMaker = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def make_facility(system: Api) -> FacilityMaker:
    async def make(**overrides: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "name": f"수완동 작은도서관 e2e-{uuid.uuid4().hex[:6]}",
            "kind": "small_library",
            "dong": "수완동",
            "requires_child_safety_check": False,
            **overrides,
        }
        return await system.registry_admin.create_facility(fields)

    return make


def citizen_at(now: datetime, **kw: Any) -> dict[str, Any]:
    """An eligible citizen as the partner describes one, verified 30 days before the shared
    clock's `now` (the clock may be far ahead of the wall clock)."""
    kw.setdefault("neighbourhood_verified_at", now - timedelta(days=30))
    return partner.citizen_profile(partner.new_partner_user_id(), **kw)


def seoul_year(at: datetime) -> int:
    return seoul_date(at).year


def shift(start: datetime, minutes: int = 120, **fields: Any) -> dict[str, Any]:
    """A posting body for a shift starting at `start`."""
    return {
        "title": fields.pop("title", "책 정리 도우미 (e2e)"),
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(minutes=minutes)).isoformat(),
        "capacity": fields.pop("capacity", 2),
        "selection": fields.pop("selection", "first_come"),
        **fields,
    }


BudgetRoom = Callable[[int, int], Awaitable[dict[str, Any]]]
AVAILABLE_WON_MIN = 5_000_000  # what every test may spend without asking


@pytest.fixture(autouse=True)
async def enough_budget(system: Api) -> None:
    """Whatever other suites (or the demo) left, the fiscal years a test can post shifts in
    (this one and, near its end, the next) have at least AVAILABLE_WON_MIN available: a
    raise by a ledger entry, never an overwrite."""
    now = await system.clock.get()
    for year in sorted({seoul_year(now), seoul_year(now + timedelta(days=40))}):
        current = await system.allowance_admin.get_budget(year)
        if current is None:
            await system.allowance_admin.set_budget(
                year, AVAILABLE_WON_MIN, "e2e: budget for the tests"
            )
        elif int(current["available_won"]) < AVAILABLE_WON_MIN:
            raise_won = AVAILABLE_WON_MIN - int(current["available_won"])
            await system.allowance_admin.set_budget(
                year, int(current["total_won"]) + raise_won, "e2e: budget for the tests"
            )


@pytest.fixture
async def budget_room(system: Api) -> AsyncIterator[BudgetRoom]:
    """Give a fiscal year exactly `room_won` available (a ledger entry raising or cutting the
    unreserved part; the year's history is kept), and put the available amount back as it
    was afterwards (again by an entry), so other suites find what they left."""
    restore: list[tuple[int, int]] = []

    async def room(fiscal_year: int, room_won: int) -> dict[str, Any]:
        current = await system.allowance_admin.get_budget(fiscal_year)
        if current is None:
            return await system.allowance_admin.set_budget(
                fiscal_year, room_won, "e2e: budget for the tests"
            )
        restore.append((fiscal_year, int(current["available_won"])))
        total = int(current["total_won"]) - int(current["available_won"]) + room_won
        return await system.allowance_admin.set_budget(fiscal_year, total, "e2e: room for one test")

    yield room
    for fiscal_year, available in reversed(restore):
        current = await system.allowance_admin.get_budget(fiscal_year)
        assert current is not None
        total = int(current["total_won"]) - int(current["available_won"]) + available
        await system.allowance_admin.set_budget(fiscal_year, max(total, 0), "e2e: room given back")


async def wait_status(system: Api, key: str, posting_id: str, *statuses: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        view = await system.facility(key).get_posting(posting_id)
        return view if view["status"] in statuses else None

    return await eventually(check, what=f"posting {posting_id} to be {'/'.join(statuses)}")


async def wait_decided(system: Api, application_id: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        app = await system.matcher_admin.get_application(application_id)
        if app is None or app["status"] in ("pending", "held"):
            return None
        return app

    return await eventually(check, what=f"a decision on {application_id}")


async def wait_notification(system: Api, kind: str, **filters: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        got = await system.simulator.notifications(type=kind, **filters)
        return got["items"][0] if got["items"] else None

    return await eventually(check, what=f"a {kind} notification for {filters}")


async def move_clock(system: Api, at: datetime) -> None:
    """Move the shared clock and wait until every service follows (each re-reads it on its
    own refresh interval)."""
    await system.clock.set(at)
    for clock in system.clocks:

        async def follows(clock: Clock = clock) -> bool | None:
            return True if await clock.get() >= at else None

        await eventually(follows, what=f"{clock.base_url} to follow the clock")

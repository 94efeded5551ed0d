"""The weekly hour cap has one source, the allowance's cap table (BRIEF §5): an administrator
lowers it through `PUT /v1/admin/caps` on the running allowance, the allowance announces the
table (CapsChanged on allowance.policy.v1), and the running matcher enforces the new value."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from shared.seoul import SEOUL
from tools.api_client.calls import AllowanceAdmin
from tools.api_client.core import Transport
from tools.partner_sim import client

from .helpers import Matcher, eventually, publish_posting
from .test_matcher_bookings import apply

pytestmark = pytest.mark.stack

# A year no other test posts shifts in, so the lowered cap cannot change their outcomes;
# the table is put back as it was afterwards all the same.
YEAR = 2090
HOURS_MAX = 3


@pytest.fixture(scope="module")
def secret(stack_env: dict[str, str]) -> str:
    return stack_env["PARTNER_WEBHOOK_SECRET"].split(",")[0]


def _allowance(http: httpx.AsyncClient, env: dict[str, str]) -> AllowanceAdmin:
    """The running allowance's admin API, through the one API client (tools/api_client)."""
    return AllowanceAdmin(Transport(http), env["ALLOWANCE_URL"], env["ADMIN_TOKEN"])


async def _matcher_holds(admin_dsn: str, version: int) -> bool:
    conn = await asyncpg.connect(admin_dsn)
    try:
        held = await conn.fetchval("SELECT max(caps_version) FROM matcher.week_caps")
    finally:
        await conn.close()
    return held is not None and held >= version


@pytest.fixture
async def lowered_cap(
    http: httpx.AsyncClient, stack_env: dict[str, str], admin_dsn: str
) -> AsyncIterator[None]:
    """The cap table with YEAR at HOURS_MAX per week (the years after it keep the cap in force
    before), adopted by the matcher; the previous table is put back afterwards."""
    allowance = _allowance(http, stack_env)
    before = await allowance.get_caps()
    rows = [r for r in before["caps"] if r["year"] not in (YEAR, YEAR + 1)]
    latest = max(rows, key=lambda r: r["year"])
    lowered = [
        *rows,
        {**latest, "year": YEAR, "weekly_hours_max": HOURS_MAX, "source": "test: lowered"},
        {**latest, "year": YEAR + 1},
    ]
    adopted = await allowance.set_caps(lowered, "test: lower the weekly cap")
    await eventually(
        lambda: _matcher_holds(admin_dsn, adopted["version"]), what="the matcher adopts the caps"
    )
    try:
        yield
    finally:
        restored = await allowance.set_caps(before["caps"], "test: restore the caps")
        await eventually(
            lambda: _matcher_holds(admin_dsn, restored["version"]),
            what="the matcher adopts the restored caps",
        )


def _monday_of(year: int) -> datetime:
    """09:00 Seoul on the Monday of ISO week 10 of `year`."""
    return datetime.combine(datetime.fromisocalendar(year, 10, 1).date(), time(9), tzinfo=SEOUL)


async def test_a_lowered_weekly_cap_refuses_what_exceeds_it(
    lowered_cap: None,
    matcher_ready: Matcher,
    producer: AIOKafkaProducer,
    http: httpx.AsyncClient,
    secret: str,
) -> None:
    """With the cap of YEAR lowered to 3 h through the allowance, a citizen's first 2 h
    shift of a week is confirmed and a second 2 h shift that week (4 h) is refused
    `weekly_hours_cap`; a 1 h one (3 h, exactly the cap) is confirmed."""
    matcher = matcher_ready
    now = await matcher.now()
    monday = _monday_of(YEAR)
    first, second, third = [
        await publish_posting(producer, now, starts_in=monday + offset - now, minutes=minutes)
        for offset, minutes in (
            (timedelta(0), 120),
            (timedelta(days=1), 120),
            (timedelta(days=2), 60),
        )
    ]
    for p in (first, second, third):
        await matcher.posting_open(p.posting_id)
    citizen = client.citizen_profile()
    within = await apply(http, matcher, secret, first.posting_id, citizen)
    assert (await matcher.decided(within))["status"] == "confirmed"
    over = await apply(http, matcher, secret, second.posting_id, citizen)
    assert (await matcher.decided(over))["status"] == "rejected"
    assert (await matcher.decided(over))["reason"] == "weekly_hours_cap"
    at_cap = await apply(http, matcher, secret, third.posting_id, citizen)
    assert (await matcher.decided(at_cap))["status"] == "confirmed"

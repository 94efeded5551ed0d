"""End to end, the weekly hour cap (BRIEF §5) has one source: the allowance's cap table. An
administrator lowers it with `PUT /v1/admin/caps`; the matcher, which learns the table from
the allowance's CapsChanged event, refuses the booking that would exceed it. Only HTTP and
signed webhooks, against the stack's processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta
from typing import Any

import pytest

from shared.seoul import SEOUL, iso_week_start, iso_week_year
from tools.api_client import Api, partner

from .conftest import FacilityMaker, citizen_at, shift, wait_decided, wait_notification, wait_status

pytestmark = pytest.mark.stack

HOURS_MAX = 3


def _cap_of(caps: list[dict[str, Any]], year: int) -> dict[str, Any]:
    """The row in force for `year` (the allowance's rule: the latest earlier row)."""
    rows = sorted(caps, key=lambda r: int(r["year"]))
    found = rows[0]
    for row in rows:
        if int(row["year"]) <= year:
            found = row
    return found


@pytest.fixture
async def monday(system: Api) -> AsyncIterator[datetime]:
    """10:00 Seoul on the Monday of the ISO week after next, with that week's ISO year's
    weekly cap lowered to HOURS_MAX (the other years keep theirs); the table is put back
    afterwards."""
    now = await system.clock.get()
    start = datetime.combine(
        (iso_week_start(now) + timedelta(days=14)).date(), time(10), tzinfo=SEOUL
    )
    year = iso_week_year(start)
    before = await system.allowance_admin.get_caps()
    rows = [r for r in before["caps"] if int(r["year"]) not in (year, year + 1)]
    lowered = [
        *rows,
        {**_cap_of(before["caps"], year), "year": year, "weekly_hours_max": HOURS_MAX},
        {**_cap_of(before["caps"], year + 1), "year": year + 1},
    ]
    await system.allowance_admin.set_caps(lowered, "e2e: lower the weekly cap")
    try:
        yield start
    finally:
        await system.allowance_admin.set_caps(before["caps"], "e2e: restore the caps")


async def test_a_weekly_cap_lowered_by_the_administrator_is_enforced(
    system: Api, make_facility: FacilityMaker, monday: datetime
) -> None:
    """With the week's cap lowered to 3 h through the allowance, a citizen's 2 h shift on
    Monday is confirmed, a second 2 h shift on Tuesday (4 h) is refused `weekly_hours_cap`
    and the partner is told so, and a 1 h shift on Wednesday (3 h, the cap exactly) is
    confirmed. The postings are opened after the change, so the allowance's CapsChanged
    was written before their BudgetReserved."""
    key = (await make_facility())["api_key"]
    postings = []
    for days, minutes in ((0, 120), (1, 120), (2, 60)):
        body = shift(monday + timedelta(days=days), minutes, capacity=1)
        posting = await system.facility(key).post_posting(body)
        await wait_status(system, key, posting["id"], "open")
        postings.append(str(posting["id"]))
    citizen = citizen_at(await system.clock.get())
    ids = [partner.new_application_id() for _ in postings]
    outcomes = []
    for posting_id, application_id in zip(postings, ids, strict=True):
        r = await system.partner.submit_application(
            posting_id=posting_id, citizen=citizen, application_id=application_id
        )
        assert r.status_code == 202, r.text
        decided = await wait_decided(system, application_id)
        outcomes.append((decided["status"], decided.get("reason")))
    assert outcomes == [
        ("confirmed", None),
        ("rejected", "weekly_hours_cap"),
        ("confirmed", None),
    ]
    refused = await wait_notification(system, "booking.rejected", application_id=ids[1])
    assert refused["data"]["reason"] == "weekly_hours_cap"

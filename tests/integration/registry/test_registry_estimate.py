"""What a shift costs before it is posted, on the running registry: `GET /v1/postings/
estimate` answers seats × the full shift's payout at the rate in force, refuses what a
posting would be refused for (strict query, Korean texts for the console), and follows the
allowance's rate table: an administrator's `PUT /v1/admin/rates` on the running allowance
is announced (RatesChanged on allowance.policy.v1) and the registry's estimate reflects it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from shared.money import RateEntry, rate_in_force
from shared.seoul import SEOUL, seoul_date
from tests.integration.matcher.helpers import eventually
from tests.integration.registry.registry_client import Registry

pytestmark = pytest.mark.stack

ESTIMATE = "/v1/postings/estimate"


def _query(starts: datetime, minutes: int, capacity: int) -> dict[str, Any]:
    ends = starts + timedelta(minutes=minutes)
    return {"starts_at": starts.isoformat(), "ends_at": ends.isoformat(), "capacity": capacity}


async def _start(registry: Registry, days: int) -> datetime:
    """09:00 Seoul, `days` Seoul days after the shared clock's day."""
    day = seoul_date(await registry.now()) + timedelta(days=days)
    return datetime(day.year, day.month, day.day, 9, tzinfo=SEOUL)


async def test_the_estimate_is_seats_times_the_full_shift_at_the_rate_in_force(
    registry: Registry,
) -> None:
    """Two seats of 90 minutes: per seat floor(rate × 90 / 60), in total twice that, with
    the rate's date and source; the figures agree with the allowance's own table when it
    runs (the seed at least: the registry receives it at start)."""
    key = (await registry.create_facility())["api_key"]
    starts = await _start(registry, 3)

    async def known() -> dict[str, Any] | None:
        found = await registry.facility(key).estimate_posting(
            starts, starts + timedelta(minutes=90), 2
        )
        return found if found["rate_known"] else None

    found = await eventually(known, what="the registry holds a rate table")
    rate_won = found["hourly_rate_won"]
    assert found["scheduled_minutes"] == 90
    assert found["seat_payout_won"] == rate_won * 90 // 60
    assert found["total_won"] == 2 * (rate_won * 90 // 60)
    assert found["rate_source"] and found["rate_effective_from"] <= starts.date().isoformat()
    assert found["rates_version"] >= 1


async def test_the_query_is_strict_and_refused_in_korean(registry: Registry) -> None:
    """Missing, unknown or malformed parameters and terms a posting could not have are
    400 problem+json naming the field; with `Accept-Language: ko` the texts are Korean.
    Without a facility key the answer is 401."""
    key = (await registry.create_facility())["api_key"]
    starts = await _start(registry, 3)
    good = _query(starts, 60, 2)
    cases: list[tuple[dict[str, Any], str]] = [
        ({k: v for k, v in good.items() if k != "capacity"}, "capacity"),
        ({**good, "seats": 2}, "seats"),
        ({**good, "capacity": "two"}, "capacity"),
        ({**good, "capacity": 0}, "capacity"),
        ({**good, "starts_at": "2026-04-06T09:00:00"}, "starts_at"),
        (_query(starts, 29, 2), "ends_at"),
        (_query(starts, 481, 2), "ends_at"),
        ({**good, "ends_at": good["starts_at"]}, "ends_at"),
    ]
    for params, field in cases:
        r = await registry.request(key, "GET", ESTIMATE, params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert field in {e["field"].split(".")[-1] for e in r.json()["errors"]}, r.text
        ko = await registry.request(
            key, "GET", ESTIMATE, params=params, headers={"Accept-Language": "ko"}
        )
        assert ko.status_code == 400
        assert ko.json()["title"] == "잘못된 요청", ko.text
        assert all(
            any("\uac00" <= ch <= "\ud7a3" for ch in e["message"]) for e in ko.json()["errors"]
        ), ko.text
    anonymous = await registry.request(None, "GET", ESTIMATE, params=good)
    assert anonymous.status_code == 401


@pytest.fixture
async def minimum_wages_for(registry: Registry) -> AsyncIterator[Any]:
    """Make sure the years a test's rates start in have a statutory minimum wage (the
    allowance refuses a rate it cannot check); the table is put back afterwards."""
    base = registry.api.endpoints.allowance_url
    token = registry.admin_token
    before = (await registry.api.raw(base, token, "GET", "/v1/admin/minimum-wages")).json()
    changed = False

    async def ensure(*years: int) -> None:
        nonlocal changed
        rows = before["minimum_wages"]
        known = {r["year"] for r in rows}
        missing = [y for y in sorted(set(years)) if y not in known]
        if not missing:
            return

        def latest_before(year: int) -> dict[str, Any]:
            # The latest earlier year's wage, carried forward (not the table's latest row:
            # other suites enter far, fictional years such as 8999 at 99,999 won/h).
            return max((r for r in rows if r["year"] < year), key=lambda r: r["year"])

        added = [
            {**latest_before(y), "year": y, "source": "test: assumed as the year before"}
            for y in missing
        ]
        body = {"minimum_wages": [*rows, *added], "note": "test: years for a rate"}
        r = await registry.api.raw(base, token, "PUT", "/v1/admin/minimum-wages", json=body)
        assert r.status_code == 200, r.text
        changed = True

    yield ensure
    if changed:
        body = {"minimum_wages": before["minimum_wages"], "note": "test: restore"}
        r = await registry.api.raw(base, token, "PUT", "/v1/admin/minimum-wages", json=body)
        assert r.status_code == 200, r.text


async def test_a_rate_set_on_the_allowance_reaches_the_registrys_estimate(
    registry: Registry, stack_env: dict[str, str], minimum_wages_for: Any
) -> None:
    """An administrator raises the rate by 1,000 won/h for one day only (an entry on that
    day, the rate in force again the day after, so no other shift's price moves); the
    allowance announces the table and, eventually, the registry's estimate of a shift on
    that day uses the new rate, with its date and source, while the day after keeps the
    old one. The table is put back afterwards and the registry follows that too."""
    if not stack_env.get("ALLOWANCE_URL"):
        pytest.skip("needs the running allowance")
    allowance = registry.api.allowance_admin
    key = (await registry.create_facility())["api_key"]
    facility = registry.facility(key)
    starts = await _start(registry, 4)
    day = seoul_date(starts)
    next_day = day + timedelta(days=1)
    before = await allowance.get_rates()
    entries = [
        RateEntry(date.fromisoformat(r["effective_from"]), r["hourly_rate_won"], r["source"])
        for r in before["rates"]
    ]
    in_force = rate_in_force(entries, day)
    assert in_force is not None
    raised_won = in_force.hourly_rate_won + 1_000
    kept = [r for r in before["rates"] if r["effective_from"] not in (str(day), str(next_day))]
    one_day = [
        *kept,
        {"effective_from": str(day), "hourly_rate_won": raised_won, "source": "test: one day"},
        {
            "effective_from": str(next_day),
            "hourly_rate_won": in_force.hourly_rate_won,
            "source": in_force.source,
        },
    ]
    await minimum_wages_for(day.year, next_day.year)
    adopted = await allowance.set_rates(one_day, "test: raise the rate for one day")

    async def estimate(at: datetime, version: int) -> dict[str, Any] | None:
        found = await facility.estimate_posting(at, at + timedelta(minutes=90), 2)
        return found if (found["rates_version"] or 0) >= version else None

    try:
        raised = await eventually(
            lambda: estimate(starts, adopted["version"]), what="the registry adopts the rates"
        )
        assert raised["hourly_rate_won"] == raised_won
        assert raised["seat_payout_won"] == raised_won * 90 // 60
        assert raised["total_won"] == 2 * (raised_won * 90 // 60)
        assert raised["rate_effective_from"] == str(day)
        assert raised["rate_source"] == "test: one day"
        after = await estimate(starts + timedelta(days=1), adopted["version"])
        assert after is not None and after["hourly_rate_won"] == in_force.hourly_rate_won
    finally:
        restored = await allowance.set_rates(before["rates"], "test: restore the rates")
    back = await eventually(
        lambda: estimate(starts, restored["version"]), what="the registry adopts the restored"
    )
    assert back["hourly_rate_won"] == in_force.hourly_rate_won

"""End to end, flows 5 and 6 (attendance and payout, month close and a later correction)
and the finance and allowance admin contracts (BRIEF §6): statements, ledger in JSON, CSV
(UTF-8 with BOM) and XLSX, payout file, payees, budget, rates. Only HTTP and signed
webhooks, against the stack's processes; the shared clock plays the month."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from shared.seoul import SEOUL
from tools.api_client import Api, partner

from .conftest import (
    RATE_WON,
    BudgetRoom,
    FacilityMaker,
    citizen_at,
    eventually,
    move_clock,
    seoul_year,
    shift,
    wait_decided,
    wait_status,
)

pytestmark = [pytest.mark.stack, pytest.mark.slow]


def period_of(at: datetime) -> str:
    return at.astimezone(SEOUL).strftime("%Y-%m")


def next_month_start(at: datetime) -> datetime:
    local = at.astimezone(SEOUL)
    first = (local.replace(day=28) + timedelta(days=4)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )
    return first


async def statement_of(system: Api, period: str, citizen_id: str) -> dict[str, Any] | None:
    page = await system.finance.get_statements(period, limit=1000)
    rows: list[dict[str, Any]] = page["statements"]
    cursor = page["next_cursor"]
    while cursor:
        page = await system.finance.get_statements(period, limit=1000, cursor=cursor)
        rows += page["statements"]
        cursor = page["next_cursor"]
    return next((r for r in rows if r["citizen_id"] == citizen_id), None)


async def test_a_month_attendance_payout_close_and_a_later_correction(
    system: Api, make_facility: FacilityMaker, budget_room: BudgetRoom
) -> None:
    """Flows 5–6 with the finance API: three citizens work a 2-hour shift — one the whole
    shift, one leaves after 90 minutes, one does not come (a strike). Allowance pays
    floor(rate × minutes / 60) to the won into the ledger (balanced, CSV with BOM, XLSX);
    finance closes the month: the citizen with bank details is in the payout file, the
    other held back and carried forward; a correction after the window (90 → 120 minutes)
    is paid as an adjustment in the next open month, the closed month unchanged."""
    now = await system.clock.get()
    start = (now + timedelta(hours=2)).replace(second=0, microsecond=0)
    end = start + timedelta(minutes=120)
    period = period_of(start)
    await budget_room(seoul_year(start), 1_000_000)
    key = (await make_facility(kind="welfare_centre"))["api_key"]
    posting = await system.facility(key).post_posting(shift(start, 120, capacity=3))
    pid = posting["id"]
    await wait_status(system, key, pid, "open")
    people = [citizen_at(now) for _ in range(3)]
    apps = []
    for who in people:
        app_id = partner.new_application_id()
        assert (
            await system.partner.submit_application(
                posting_id=pid, citizen=who, application_id=app_id
            )
        ).status_code == 202
        apps.append(await wait_decided(system, app_id))
    assert [a["status"] for a in apps] == ["confirmed"] * 3
    full, early, absent = apps
    minutes = {full["citizen_id"]: 120, early["citizen_id"]: 90}

    await move_clock(system, end + timedelta(minutes=5))
    result = await system.facility(key).record_attendance(pid, [
        {"booking_id": full["booking_id"], "status": "attended",
         "checked_in_at": start.isoformat(), "checked_out_at": end.isoformat()},
        {"booking_id": early["booking_id"], "status": "attended",
         "checked_in_at": start.isoformat(),
         "checked_out_at": (start + timedelta(minutes=90)).isoformat()},
        {"booking_id": absent["booking_id"], "status": "no_show"},
    ])  # fmt: skip
    assert sorted(r["minutes"] for r in result["records"]) == [0, 90, 120]

    async def paid() -> dict[str, dict[str, Any]] | None:
        rows = {c: await statement_of(system, period, c) for c in minutes}
        if any(r is None or r["minutes_paid"] != minutes[c] for c, r in rows.items()):
            return None
        return {c: r for c, r in rows.items() if r is not None}

    statements = await eventually(paid, what="the allowance to pay the shift")
    for citizen_id, row in statements.items():
        assert row["payable_won"] == RATE_WON * minutes[citizen_id] // 60 and row["capped_won"] == 0
    assert await statement_of(system, period, absent["citizen_id"]) is None
    standing = await system.matcher_admin.get_citizen(absent["citizen_id"])
    assert [s["kind"] for s in standing["strikes"]] == ["no_show"]

    ledger = await system.finance.get_ledger(posting_id=pid, format="json")
    assert ledger["totals"]["debit_won"] == ledger["totals"]["credit_won"] > 0
    payable = {
        e["citizen_id"]: -e["amount_won"]
        for e in ledger["entries"]
        if e["account"] == "allowance_payable"
    }
    assert payable == {c: RATE_WON * m // 60 for c, m in minutes.items()}

    # Bank details for one of the two; they are never given back in full.
    saved = await system.finance.put_payee(full["citizen_id"], {"bank_code": "088",
                                "account_number": "110-123-456789", "account_holder": "김광산"})  # fmt: skip
    assert "123456789" not in str(saved).replace("-", "") and saved["account_masked"]

    # The month ends; the attendance window passes; finance closes the month.
    # (the shared clock never goes back: move it no further than needed)
    await move_clock(
        system, max(next_month_start(start), end + timedelta(hours=72)) + timedelta(minutes=5)
    )
    closed = await system.finance.close_period(period)
    assert closed["status"] == "closed"
    assert (await system.finance.close_period(period))["closed_at"] == closed["closed_at"]
    summary = await system.finance.get_payout_file(period, format="json")
    line = [x for x in summary["lines"] if x["citizen_id"] == full["citizen_id"]]
    held = [x for x in summary["held_back"] if x["citizen_id"] == early["citizen_id"]]
    assert line and line[0]["amount_won"] == RATE_WON * 2 and "456789" not in str(line)
    assert held and held[0]["carried_forward_won"] == RATE_WON * 90 // 60
    bank_file = await system.raw(system.endpoints.allowance_url, system.endpoints.finance_token, "GET",
                              f"/v1/periods/{period}/payout-file")  # fmt: skip
    assert bank_file.status_code == 200 and int(bank_file.headers["x-payout-count"]) >= 1
    assert "110-123-456789" in bank_file.text or "110123456789" in bank_file.text
    frozen = await statement_of(system, period, full["citizen_id"])
    assert frozen is not None and frozen["payout_won"] == RATE_WON * 2

    # A correction after the window: paid as an adjustment in the next open month.
    fixed = await system.facility(key).record_attendance(pid, [
        {"booking_id": early["booking_id"], "status": "attended",
         "checked_in_at": start.isoformat(), "checked_out_at": end.isoformat()},
    ])  # fmt: skip
    assert fixed["records"][0]["outcome"] == "corrected"
    later = period_of(next_month_start(start))

    async def adjusted() -> dict[str, Any] | None:
        row = await statement_of(system, later, early["citizen_id"])
        return row if row is not None and row["adjustment_won"] else None

    adjustment = await eventually(adjusted, what="the correction's adjustment")
    assert adjustment["adjustment_won"] == RATE_WON * 2 - RATE_WON * 90 // 60
    assert adjustment["adjustment_periods"] == [period]
    after = await statement_of(system, period, early["citizen_id"])
    assert after is not None and after["payable_won"] == RATE_WON * 90 // 60

    # The finance exports of the month.
    csv = await system.finance.get_ledger(period=period, format="csv")
    assert isinstance(csv, bytes) and csv.startswith(b"\xef\xbb\xbf")
    assert pid.encode() in csv
    xlsx = await system.raw(system.endpoints.allowance_url, system.endpoints.finance_token, "GET", "/v1/ledger",
                         params={"period": period, "format": "xlsx"})  # fmt: skip
    assert xlsx.status_code == 200 and xlsx.content.startswith(b"PK")
    assert "spreadsheetml" in xlsx.headers["content-type"]
    trial = await system.finance.get_trial_balance()
    assert trial["balanced"] is True and trial["debit_won"] == trial["credit_won"]


async def test_finance_and_admin_endpoints_refuse_the_wrong_token(system: Api) -> None:
    """Function-level authorization: the admin token on finance endpoints and the finance
    token on admin endpoints are 403; no token is 401, as problem+json."""
    base = system.endpoints.allowance_url
    checks = [
        (system.endpoints.admin_token, "GET", "/v1/ledger", 403),
        (system.endpoints.admin_token, "GET", "/v1/budget", 403),
        (system.endpoints.finance_token, "GET", "/v1/admin/rates", 403),
        (system.endpoints.finance_token, "PUT", "/v1/admin/budget", 403),
        (None, "GET", "/v1/ledger", 401),
        (None, "PUT", "/v1/payees/ctz_abc", 401),
    ]
    for token, method, path, status in checks:
        body = {} if method == "PUT" else None
        r = await system.raw(base, token, method, path, json=body)
        assert r.status_code == status, (method, path, r.status_code)
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_the_rate_table_refuses_a_rate_below_the_minimum_wage(system: Api) -> None:
    """The admin rate table (BRIEF §5): a rate below the legal minimum wage of its year is
    refused (422) and the table in force does not change; it carries a source per row."""
    before = await system.allowance_admin.get_rates()
    assert all(r["source"] for r in before["rates"])
    refused = await system.raw(system.endpoints.allowance_url, system.endpoints.admin_token, "PUT",
                            "/v1/admin/rates", json={"rates": [
                                {"effective_from": "2026-01-01", "hourly_rate_won": 9_000,
                                 "source": "e2e: below the 2026 minimum wage of 10,320"}]})  # fmt: skip
    assert refused.status_code == 422, refused.text
    assert (await system.allowance_admin.get_rates())["version"] == before["version"]
    caps = await system.allowance_admin.get_caps()
    assert any(c["monthly_amount_max_won"] == 583_444 for c in caps["caps"])

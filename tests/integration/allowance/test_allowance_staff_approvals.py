"""Named finance staff and two-person approval (issue 17) on the running service: tokens
shown once and revocable, roles enforced per route, and the maker–checker rules — each
refusal in Korean with nothing changed; an approval runs the action with the approval."""

from __future__ import annotations

from typing import Any

import pytest
from allowance.domain import chain

from tests.integration.allowance.allowance_kit import Kit, full_shift_won, kst, new_id
from tests.integration.allowance.test_allowance_close import _rate_for, _unclosed_past_month

pytestmark = pytest.mark.stack

KO = {"Accept-Language": "ko"}


async def _staff(kit: Kit, role: str, name: str) -> tuple[dict[str, str], str]:
    made = await kit.http.post(
        "/v1/admin/staff", json={"name": name, "role": role}, headers=kit.admin
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["role"] == role and body["token"].startswith("fs_")
    return {"Authorization": f"Bearer {body['token']}", **KO}, body["id"]


async def _period(kit: Kit, month: str) -> dict[str, Any]:
    listed = await kit.http.get(
        "/v1/periods", params={"from": month, "to": month}, headers=kit.finance
    )
    found = [p for p in listed.json() if p["period"] == month]
    return found[0] if found else {"period": month, "status": "open"}


def _korean(answer: Any, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    problem = answer.json()
    assert problem["code"] == code
    assert any("\uac00" <= ch <= "\ud7a3" for ch in problem["detail"]), problem


async def test_staff_tokens_are_shown_once_hashed_and_revocable(kit: Kit) -> None:
    clerk, clerk_id = await _staff(kit, "finance_clerk", "김담당")
    listed = await kit.http.get("/v1/admin/staff", headers=kit.admin)
    assert listed.status_code == 200
    mine = [s for s in listed.json() if s["id"] == clerk_id]
    assert mine and "token" not in mine[0] and mine[0]["name"] == "김담당"
    async with kit.pool.acquire() as conn:
        stored = await conn.fetchval("SELECT token_hash FROM staff_members WHERE id = $1", clerk_id)
    assert clerk["Authorization"].split()[1] not in stored and len(stored) == 64

    assert (await kit.http.get("/v1/budget", headers=clerk)).status_code in (200, 404)
    wrong = await kit.http.get(
        "/v1/budget", headers={"Authorization": clerk["Authorization"] + "x", **KO}
    )
    _korean(wrong, 401, "unauthorized")
    finance_with_clerk_token = await kit.http.get("/v1/admin/staff", headers=clerk)
    _korean(finance_with_clerk_token, 403, "forbidden")

    revoked = await kit.http.post(f"/v1/admin/staff/{clerk_id}/revoke", headers=kit.admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    _korean(await kit.http.get("/v1/budget", headers=clerk), 401, "unauthorized")
    missing = await kit.http.post("/v1/admin/staff/stf_nobody/revoke", headers=kit.admin)
    assert missing.status_code == 404


async def test_auditor_reads_and_changes_nothing_and_payee_writes_name_the_clerk(
    kit: Kit,
) -> None:
    auditor, _ = await _staff(kit, "auditor", "이감사")
    clerk, clerk_id = await _staff(kit, "finance_clerk", "박담당")
    citizen = new_id("ctz")
    await kit.know_citizen(citizen)  # payees are stored only for citizens the allowance knows
    payee = {"bank_code": "004", "account_number": "123-45-678901", "account_holder": "김광산"}
    _korean(
        await kit.http.put(f"/v1/payees/{citizen}", json=payee, headers=auditor), 403, "forbidden"
    )
    asked = await kit.http.post(
        "/v1/approvals", json={"kind": "period_close", "period": "2020-01"}, headers=auditor
    )
    _korean(asked, 403, "approval_forbidden")
    file = await kit.http.get("/v1/periods/2020-01/payout-file", headers=auditor)
    _korean(file, 403, "forbidden")
    assert (await kit.http.get("/v1/approvals", headers=auditor)).status_code == 200

    written = await kit.http.put(
        f"/v1/payees/{citizen}", json=payee, headers={**clerk, "X-Staff-Id": "someone-else"}
    )
    assert written.status_code == 200, written.text
    async with kit.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT actor_role, actor_staff_id FROM payee_access_log WHERE citizen_id = $1",
            citizen,
        )
    assert (row["actor_role"], row["actor_staff_id"]) == ("finance_clerk", clerk_id)


async def test_two_people_close_a_month_and_every_refusal_changes_nothing(kit: Kit) -> None:
    clerk, clerk_id = await _staff(kit, "finance_clerk", "최담당")
    first, first_id = await _staff(kit, "finance_approver", "정결재")
    second, second_id = await _staff(kit, "finance_approver", "한결재")

    month = await _unclosed_past_month(kit)
    rate = _rate_for(month)
    await kit.raise_budget(month.year, 1_000_000)
    posting = await kit.submit(kst(f"{month}-12T10:00"), 240)
    assert (await kit.budget_answer(posting.posting_id)).type == "BudgetReserved"
    alice = new_id("ctz")
    await kit.inject(kit.attendance(posting, alice))
    await kit.wait("PayoutAccrued", citizen_id=alice)
    payee = {"bank_code": "004", "account_number": "123-45-678901", "account_holder": "김광산"}
    assert (await kit.http.put(f"/v1/payees/{alice}", json=payee, headers=clerk)).status_code == 200

    bad = await kit.http.post("/v1/approvals", json={"kind": "period_close"}, headers=clerk)
    assert bad.status_code == 400, bad.text
    asked = await kit.http.post(
        "/v1/approvals", json={"kind": "period_close", "period": str(month)}, headers=clerk
    )
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert request["status"] == "pending" and request["kind_ko"] == "월 마감"
    assert request["requested_by"] == clerk_id
    assert request["preview"]["payout_won"] >= full_shift_won(rate, 240)
    assert request["preview"]["citizens_count"] >= 1
    assert (await _period(kit, str(month)))["status"] == "open"  # the dry run left nothing

    pending = await kit.http.get("/v1/approvals", params={"status": "pending"}, headers=clerk)
    assert request["id"] in [a["id"] for a in pending.json()["items"]]

    approve = f"/v1/approvals/{request['id']}/approve"
    _korean(await kit.http.post(approve, headers=clerk), 403, "approval_forbidden")
    _korean(await kit.http.post(approve, headers={**kit.finance, **KO}), 403, "approval_forbidden")
    assert (await _period(kit, str(month)))["status"] == "open"

    done = await kit.http.post(approve, headers=first)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "approved" and done.json()["decided_by"] == first_id
    assert done.json()["result"]["payout_won"] == request["preview"]["payout_won"]
    closed = await _period(kit, str(month))
    assert closed["status"] == "closed" and first_id in closed["closed_by"]
    _korean(await kit.http.post(approve, headers=second), 409, "approval_decided")

    # an approver may draft a request, never approve it herself
    paid = await kit.http.post(
        "/v1/approvals", json={"kind": "period_mark_paid", "period": str(month)}, headers=first
    )
    assert paid.status_code == 201, paid.text
    paid_id = paid.json()["id"]
    # What is marked paid is the month's payout file: its payout, plus any earlier month's
    # failed transfer that this close carried into the file (other suites on the stack
    # record failed transfers; the next close of any later month takes them back).
    carried_won = await kit.pool.fetchval(
        "SELECT coalesce(-sum(e.amount_won), 0) FROM ledger_entries e"
        " JOIN ledger_transactions t ON t.id = e.transaction_id"
        " WHERE t.kind = 'failed_carry' AND t.period = $1"
        " AND e.account = 'allowance_payout_due'",
        str(month),
    )
    assert paid.json()["preview"]["paid_won"] == request["preview"]["payout_won"] + carried_won
    _korean(
        await kit.http.post(f"/v1/approvals/{paid_id}/approve", headers=first), 403, "approval_self"
    )
    blank = await kit.http.post(
        f"/v1/approvals/{paid_id}/reject", json={"reason": "  "}, headers=second
    )
    assert blank.status_code == 400
    rejected = await kit.http.post(
        f"/v1/approvals/{paid_id}/reject", json={"reason": "은행 확인 전"}, headers=second
    )
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert (await _period(kit, str(month)))["paid_at"] is None
    _korean(
        await kit.http.post(f"/v1/approvals/{paid_id}/approve", headers=second),
        409,
        "approval_decided",
    )

    async with kit.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id, at, approval_id, action, kind, subject, actor_role, actor_staff_id,"
            " detail, request_id, chain_seq, prev_hash, row_hash FROM approval_log"
            " ORDER BY chain_seq"
        )
        head = await conn.fetchrow("SELECT seq, hash FROM chain_heads WHERE chain = 'approvals'")
    mine = [
        (r["action"], r["actor_staff_id"])
        for r in rows
        if str(r["approval_id"]) in (request["id"], paid_id)
    ]
    assert mine == [
        ("requested", clerk_id),
        ("approved", first_id),
        ("requested", first_id),
        ("rejected", second_id),
    ]
    links = [
        chain.StoredLink(
            chain.ApprovalFields(
                r["id"],
                r["at"],
                r["approval_id"],
                r["action"],
                r["kind"],
                r["subject"],
                r["actor_role"],
                r["actor_staff_id"],
                r["detail"],
                r["request_id"],
            ),
            r["chain_seq"],
            r["prev_hash"],
            r["row_hash"],
        )
        for r in rows
    ]
    assert chain.verify(links, chain.Head(head["seq"], bytes(head["hash"]))).ok

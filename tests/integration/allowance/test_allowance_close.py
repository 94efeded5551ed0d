"""Month close on the running service: statements freeze, the payout file pays those with
payee details and holds back (carries forward) the others, every decryption is logged, a
late correction lands in the next open month as an adjustment, and paying the file moves
the money to `paid`.

A month can only be closed once it has ended on the shared clock, and closing is global,
so this test takes a past month nobody has closed yet (shifts in the past are fine for
allowance: only the registry insists on future shifts, and these postings are injected).
It picks among 2020-01 to 2024-12: seeded rates exist, and no real posting (which the
registry only accepts in the future) can fall there, so closing one disturbs nobody. When
they are all used up, the test moves the shared clock past the current month, as far as it
needs and no further, and closes that.
"""

from __future__ import annotations

import csv
import io
import random
from datetime import timedelta

import openpyxl
import openpyxl.utils
import pytest
from allowance.domain.calendar import Period

from tests.integration.allowance.allowance_kit import Kit, full_shift_won, kst, new_id, of

pytestmark = pytest.mark.stack

LAST_QUIET_MONTH = Period(2024, 12)


async def _unclosed_past_month(kit: Kit) -> Period:
    now = await kit.clock()
    current = Period.of(now)
    response = await kit.http.get(
        "/v1/periods", params={"from": "2020-01", "to": str(current)}, headers=kit.finance
    )
    assert response.status_code == 200, response.text
    closed = {p["period"] for p in response.json() if p["status"] == "closed"}
    candidates: list[Period] = []
    month = Period(2020, 1)
    while month <= LAST_QUIET_MONTH and month < current:
        if str(month) not in closed:
            candidates.append(month)
        month = month.next()
    if candidates:
        return random.choice(candidates)
    target = current.ends_at() + timedelta(minutes=1)
    moved = await kit.http.put(
        "/v1/admin/clock", json={"now": target.isoformat()}, headers=kit.admin
    )
    assert moved.status_code == 200, moved.text
    return current


def _rate_for(month: Period) -> int:
    return {2020: 10_353, 2021: 10_520, 2022: 10_920, 2023: 10_920, 2024: 10_920}.get(
        month.year, 12_930 if month.year == 2025 else 13_303
    )


async def test_close_payout_file_and_a_late_correction_in_the_next_month(kit: Kit) -> None:
    """Close M: A (payee on file) is in the payout file with her full account, B (no payee)
    is held back with his money carried forward; closing again answers the same; the
    decryption is in the access log; B's late correction for M lands in the next open month
    as an adjustment, and M's frozen statement does not move; mark-paid moves A's money to
    paid."""
    month = await _unclosed_past_month(kit)
    rate = _rate_for(month)
    await kit.raise_budget(month.year, 1_000_000)
    starts = kst(f"{month}-10T10:00")
    posting = await kit.submit(starts, 240, capacity=2)
    assert (await kit.budget_answer(posting.posting_id)).type == "BudgetReserved"
    alice, bob = new_id("ctz"), new_id("ctz")
    await kit.inject(kit.attendance(posting, alice))
    bob_record = kit.attendance(posting, bob, minutes=120)
    await kit.inject(bob_record)
    await kit.wait("PayoutAccrued", citizen_id=alice)
    await kit.wait("PayoutAccrued", citizen_id=bob)
    alice_won, bob_won = full_shift_won(rate, 240), full_shift_won(rate, 120)

    payee = await kit.http.put(
        f"/v1/payees/{alice}",
        json={"bank_code": "004", "account_number": "123-45-678901", "account_holder": "김광산"},
        headers={**kit.finance, "X-Staff-Id": "fin-007"},
    )
    assert payee.status_code == 200, payee.text
    assert payee.json()["account_masked"] == "***-****-8901"
    assert "678901" not in payee.text and "광산" not in payee.text

    early = await kit.http.post(
        f"/v1/periods/{Period.of(await kit.clock()).next()}/close", headers=kit.finance
    )
    assert early.status_code == 409 and early.json()["code"] == "period_not_ended"

    closed = await kit.http.post(f"/v1/periods/{month}/close", headers=kit.finance)
    assert closed.status_code == 200, closed.text
    again = await kit.http.post(f"/v1/periods/{month}/close", headers=kit.finance)
    assert again.status_code == 200 and again.json() == closed.json()
    assert closed.json()["status"] == "closed"
    closed_event = await kit.wait("PeriodClosed", period=str(month))
    assert closed_event[0].data["payable_won"] == closed.json()["payout_won"]
    # Issue 16: who was held back is told per citizen, for the matcher's read model.
    [held] = await kit.wait("PayoutHeldBack", citizen_id=bob)
    assert held.data["period"] == str(month) and held.data["amount_won"] == bob_won
    assert held.data["reason"] == "no_payee_details"
    assert kit.watcher.matching(of("PayoutHeldBack", citizen_id=alice)) == []

    statements = (
        await kit.http.get(
            f"/v1/periods/{month}/statements", params={"limit": 200}, headers=kit.finance
        )
    ).json()
    assert statements["status"] == "closed" and not statements["provisional"]
    mine = {s["citizen_id"]: s for s in statements["statements"] if s["citizen_id"] in (alice, bob)}
    assert (mine[alice]["payable_won"], mine[alice]["payout_won"]) == (alice_won, alice_won)
    assert not mine[alice]["held_back"]
    assert mine[bob]["held_back"] and mine[bob]["payout_won"] == 0
    assert mine[bob]["carried_forward_won"] == bob_won
    assert "held back" in mine[bob]["note"]

    summary = (
        await kit.http.get(
            f"/v1/periods/{month}/payout-file", params={"format": "json"}, headers=kit.finance
        )
    ).json()
    assert {"citizen_id": bob, "carried_forward_won": bob_won, "reason": "no_payee_details"} in (
        summary["held_back"]
    )
    assert "678901" not in str(summary)
    file = await kit.http.get(
        f"/v1/periods/{month}/payout-file", headers={**kit.finance, "X-Staff-Id": "fin-007"}
    )
    assert file.status_code == 200
    assert file.content.startswith(b"\xef\xbb\xbf")
    # The default file is the bank's bulk-transfer layout (issue 16): the account number as
    # the bank reads it (digits only, whatever was typed), the citizen id on the line, and
    # the totals row in the file itself.
    rows = list(csv.reader(io.StringIO(file.content.decode("utf-8-sig"))))
    header = rows[0]
    assert header[:5] == ["순번", "은행코드", "은행명", "계좌번호", "예금주"]
    assert header[-1] == "시민ID"
    mine_row = [r for r in rows[1:-1] if r[-1] == alice]
    assert len(mine_row) == 1
    row = dict(zip(header, mine_row[0], strict=True))
    assert (row["은행코드"], row["계좌번호"], row["예금주"]) == ("004", "12345678901", "김광산")
    assert (row["이체금액(원)"], row["적요"]) == (str(alice_won), f"광산시민수당 {month}")
    assert rows[-1][0].startswith("합계")
    assert not any(bob in ",".join(r) for r in rows)
    assert int(file.headers["X-Held-Back-Count"]) >= 1
    log_rows = await kit.pool.fetch(
        "SELECT action, actor_role, actor_staff_id, stated_staff_id, purpose, request_id,"
        " client_address FROM payee_access_log WHERE citizen_id = $1 ORDER BY id",
        alice,
    )
    # who: the finance credential, the request, the address; fin-007 is only a statement
    assert [
        (r["action"], r["actor_role"], r["actor_staff_id"], r["stated_staff_id"]) for r in log_rows
    ] == [
        ("write", "finance", None, "fin-007"),
        ("decrypt", "finance", None, "fin-007"),
    ]
    assert all(r["client_address"] for r in log_rows)
    assert log_rows[1]["purpose"] == f"payout file {month}" and log_rows[1]["request_id"]
    # The first bank file, still there for a client that reads it (`layout=legacy`).
    legacy = await kit.http.get(
        f"/v1/periods/{month}/payout-file", params={"layout": "legacy"}, headers=kit.finance
    )
    lines = legacy.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "은행코드,계좌번호,예금주,이체금액,적요"
    assert f"004,12345678901,김광산,{alice_won},광산시민수당 {month}" in lines
    refused = await kit.http.get(
        f"/v1/periods/{month}/payout-file",
        params={"layout": "legacy", "format": "xlsx"},
        headers=kit.finance,
    )
    assert refused.status_code == 400

    # Bob's attendance is corrected to the full shift after the close.
    correction = kit.attendance(
        posting,
        bob,
        minutes=240,
        revision=2,
        attendance_id=bob_record.attendance_id,
        booking_id=bob_record.booking_id,
        corrected_from=("attended", 120),
    )
    await kit.inject(correction)
    adjusted = await kit.wait("PayoutAccrued", count=2, citizen_id=bob)
    landed = Period.parse(adjusted[1].data["period"])
    assert landed > month and adjusted[1].data["adjustment"] is True
    periods = (
        await kit.http.get(
            "/v1/periods", params={"from": str(month), "to": str(landed)}, headers=kit.finance
        )
    ).json()
    status = {p["period"]: p["status"] for p in periods}
    assert status.get(str(landed), "open") == "open"
    assert all(status.get(str(p)) == "closed" for p in _between(month, landed))
    later = (
        await kit.http.get(
            f"/v1/periods/{landed}/statements", params={"limit": 200}, headers=kit.finance
        )
    ).json()
    bob_later = [s for s in later["statements"] if s["citizen_id"] == bob]
    assert bob_later, later
    assert bob_later[0]["adjustment_won"] == bob_later[0]["payable_won"] == alice_won - bob_won
    assert bob_later[0]["adjustment_periods"] == [str(month)]
    assert str(month) in bob_later[0]["note"]
    frozen = (
        await kit.http.get(
            f"/v1/periods/{month}/statements", params={"limit": 200}, headers=kit.finance
        )
    ).json()
    assert [s for s in frozen["statements"] if s["citizen_id"] == bob] == [mine[bob]]

    before = await kit.budget(month.year)
    paid = await kit.http.post(f"/v1/periods/{month}/mark-paid", headers=kit.finance)
    assert paid.status_code == 200 and paid.json()["paid_at"]
    after = await kit.budget(month.year)
    assert after["paid_won"] - before["paid_won"] >= alice_won
    assert after["payout_due_won"] <= before["payout_due_won"] - alice_won
    again_paid = await kit.http.post(f"/v1/periods/{month}/mark-paid", headers=kit.finance)
    assert again_paid.json() == paid.json()
    alice_entries = await kit.entries_of(citizen_id=alice)
    assert [(r["kind"], r["account"]) for r in alice_entries] == [
        ("payout_accrual", "allowance_payable"),
        ("payout_due", "allowance_payable"),
        ("payout_due", "allowance_payout_due"),
        ("payout_paid", "allowance_payout_due"),
        ("payout_paid", "allowance_paid"),
    ]


def _between(first: Period, last: Period) -> list[Period]:
    out = []
    month = first.next()
    while month < last:
        out.append(month)
        month = month.next()
    return out


async def test_statement_xlsx_sums_to_the_json_totals(kit: Kit) -> None:
    """An open month's statements as XLSX open with openpyxl: won cells formatted, header
    frozen, the columns sum to the JSON totals, and the bold totals row under the data
    (outside the autofilter) holds those sums; the payout columns of an open month stay
    blank there."""
    year = await kit.fresh_year()
    await kit.set_budget(year, 3_000_000)
    citizens = [new_id("ctz") for _ in range(3)]
    for day, minutes in ((3, 120), (4, 480), (5, 95)):
        posting = await kit.submit(kst(f"{year}-05-{day:02d}T09:00"), minutes, capacity=3)
        await kit.budget_answer(posting.posting_id)
        for citizen in citizens:
            await kit.inject(kit.attendance(posting, citizen))
    await kit.wait("PayoutAccrued", count=9, period=f"{year}-05")
    period = f"{year}-05"
    page = await kit.http.get(f"/v1/periods/{period}/statements", headers=kit.finance)
    totals = page.json()["totals"]
    assert page.json()["provisional"] and totals["citizens_count"] == 3
    xlsx = await kit.http.get(
        f"/v1/periods/{period}/statements", params={"format": "xlsx"}, headers=kit.finance
    )
    assert xlsx.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    sheet = book["명세서"]
    assert sheet.freeze_panes == "A2"
    header = [c.value for c in sheet[1]]
    column = {name: i for i, name in enumerate(header)}
    *rows, totals_row = list(sheet.iter_rows(min_row=2, values_only=True))
    assert len(rows) == 3 and totals_row[0] == "합계 (3건)"
    assert not any(str(r[0]).startswith("합계") for r in rows)
    for key, label in (
        ("gross_won", "산정액(원)"),
        ("payable_won", "지급대상액(원)"),
        ("capped_won", "상한초과(원)"),
        ("minutes_paid", "인정시간(분)"),
        ("lines_count", "근무건수"),
    ):
        assert sum(r[column[label]] for r in rows) == totals[key] == totals_row[column[label]]
    assert totals_row[column["실지급액(원)"]] is None  # open month: no payout line yet
    assert sheet.cell(5, column["산정액(원)"] + 1).font.b
    assert sheet.auto_filter.ref == f"A1:{openpyxl.utils.get_column_letter(len(header))}4"
    assert sheet.cell(2, column["산정액(원)"] + 1).number_format == "#,##0"
    assert {r[column["근무명"]] for r in rows} == {"책 정리; 책 정리; 책 정리"}

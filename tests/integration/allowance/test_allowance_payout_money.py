"""The last mile on the running service (issue 16 items 4-6): withholding as policy applied
at close (business income 3.3 %, other income 8.8 %, exact won), the payout file as CSV and
XLSX in the bank and e-호조 layouts (leading zeros intact, totals in the file), the bank's
transfer results (a repeat changes nothing, a different second result is a 409, an unknown
line writes nothing), a failed line carried into the next month's file, and the ledger
balanced throughout (the suite's trial-balance check runs after the test).

Withholding is global policy: the test sets it only around its own closes and puts `none`
back in `finally`. Each test takes consecutive past months nobody has closed (2020-2024)."""

from __future__ import annotations

import csv
import io
import random
from typing import Any

import openpyxl
import pytest
from allowance.domain.calendar import Period

from tests.integration.allowance.allowance_kit import Kit, full_shift_won, kst, new_id

pytestmark = pytest.mark.stack

RATES = {2020: 10_353, 2021: 10_520, 2022: 10_920, 2023: 10_920, 2024: 10_920}
BUSINESS = {
    "kind": "business_income_3_3",
    "source": "test: 소득세법 §129 ①3",
    "income_tax_rate_bp": 300,
    "local_tax_rate_bp": 1_000,
}
OTHER = {
    "kind": "other_income_8_8",
    "source": "test: 소득세법 §129 ①6, 시행령 §87",
    "income_tax_rate_bp": 2_000,
    "local_tax_rate_bp": 1_000,
    "deemed_expense_rate_bp": 6_000,
    "taxable_exempt_max_won": 50_000,
}
NONE = {"kind": "none", "source": "nothing withheld until the tax office says"}


async def _unclosed_months(kit: Kit, count: int = 2) -> Period:
    """The first of `count` consecutive past months (2020-2024) nobody has closed."""
    response = await kit.http.get(
        "/v1/periods", params={"from": "2020-01", "to": "2025-01"}, headers=kit.finance
    )
    closed = {p["period"] for p in response.json() if p["status"] == "closed"}
    month, candidates = Period(2020, 1), []
    while month < Period(2024, 12):
        run = [month]
        while len(run) < count:
            run.append(run[-1].next())
        if not closed & {str(m) for m in run}:
            candidates.append(month)
        month = month.next()
    if not candidates:
        pytest.skip(f"no {count} consecutive unclosed past months left on this stack")
    return random.choice(candidates)


async def _set_withholding(kit: Kit, entry: dict[str, Any]) -> dict[str, Any]:
    answer = await kit.http.put(
        "/v1/admin/withholding",
        json={"withholding": [{"effective_from": "2000-01-01", **entry}], "note": "test"},
        headers=kit.admin,
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _trunc10(won: int) -> int:
    return won // 10 * 10


async def _pay(kit: Kit, month: Period, citizen: str, minutes: int, day: int) -> None:
    posting = await kit.submit(kst(f"{month}-{day:02d}T09:00"), minutes)
    assert (await kit.budget_answer(posting.posting_id)).type == "BudgetReserved"
    await kit.inject(kit.attendance(posting, citizen))


async def _statements(kit: Kit, month: Period, *citizens: str) -> dict[str, dict[str, Any]]:
    page = await kit.http.get(
        f"/v1/periods/{month}/statements", params={"limit": 500}, headers=kit.finance
    )
    assert page.status_code == 200, page.text
    return {s["citizen_id"]: s for s in page.json()["items"] if s["citizen_id"] in citizens}


async def test_withholding_payout_files_and_transfer_results(kit: Kit) -> None:
    seeded = await kit.http.get("/v1/admin/withholding", headers=kit.admin)
    assert seeded.status_code == 200 and seeded.json()["in_force"] is not None
    bad = await kit.http.put(
        "/v1/admin/withholding",
        json={"withholding": [{"effective_from": "2000-01-01", **BUSINESS,
                               "income_tax_rate_bp": 10_001}]},
        headers=kit.admin,
    )  # fmt: skip
    assert bad.status_code == 422 and "income_tax_rate_bp" in bad.text
    unknown = await kit.http.put(
        "/v1/admin/withholding",
        json={"withholding": [{"effective_from": "2000-01-01", **NONE, "kind": "wage"}]},
        headers=kit.admin,
    )
    assert unknown.status_code in (400, 422), unknown.text

    month = await _unclosed_months(kit)
    later = month.next()
    rate = RATES[month.year]
    await kit.raise_budget(month.year, 2_000_000)
    await kit.raise_budget(later.year, 2_000_000)
    alice, carol = new_id("ctz"), new_id("ctz")
    await _pay(kit, month, alice, 240, 10)
    await _pay(kit, month, carol, 240, 11)
    await kit.wait("PayoutAccrued", citizen_id=alice)
    await kit.wait("PayoutAccrued", citizen_id=carol)
    # Payee details for citizens the allowance knows (a ref of no citizen is a 404).
    for who, bank, account, holder in (
        (alice, "004", "123-45-678901", "김광산"),
        (carol, "011", "0110-123-4567", "박수당"),
    ):
        put = await kit.http.put(
            f"/v1/payees/{who}",
            json={"bank_code": bank, "account_number": account, "account_holder": holder},
            headers=kit.finance,
        )
        assert put.status_code == 200, put.text
    gross = full_shift_won(rate, 240)
    income_tax = _trunc10(gross * 300 // 10_000)
    local_tax = _trunc10(income_tax * 1_000 // 10_000)
    net = gross - income_tax - local_tax

    try:
        in_force = await _set_withholding(kit, BUSINESS)
        assert in_force["in_force"]["kind"] == "business_income_3_3"
        closed = await kit.http.post(f"/v1/periods/{month}/close", headers=kit.finance)
        assert closed.status_code == 200, closed.text
    finally:
        await _set_withholding(kit, NONE)

    # XLSX, bank layout: codes and accounts are text, money integers, totals in the file.
    xlsx = await kit.http.get(
        f"/v1/periods/{month}/payout-file",
        params={"format": "xlsx", "layout": "bank"},
        headers=kit.finance,
    )
    assert xlsx.status_code == 200, xlsx.text
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    header = rows[0]
    by_citizen = {r[header.index("시민ID")]: r for r in rows[1:-1]}
    carol_row = by_citizen[carol]
    assert carol_row[header.index("은행코드")] == "011"
    assert carol_row[header.index("계좌번호")] == "01101234567"
    assert carol_row[header.index("이체금액(원)")] == net
    assert carol_row[header.index("소득세(원)")] == income_tax
    assert carol_row[header.index("지방소득세(원)")] == local_tax
    assert carol_row[header.index("적요")] == f"광산시민수당 {month}"
    totals = rows[-1]
    assert totals[0] == f"합계 ({len(rows) - 2}건)"
    amount_col = header.index("이체금액(원)")
    assert totals[amount_col] == sum(r[amount_col] for r in rows[1:-1])
    assert int(xlsx.headers["X-Payout-Total-Won"]) == totals[amount_col]

    # CSV in the e-호조 layout: the district fills the resident registration number.
    ehojo = await kit.http.get(
        f"/v1/periods/{month}/payout-file",
        params={"format": "csv", "layout": "ehojo"},
        headers=kit.finance,
    )
    assert ehojo.status_code == 200 and ehojo.content.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(ehojo.content.decode("utf-8-sig"))))
    assert "주민등록번호(구청 기재)" in table[0]
    alice_line = next(r for r in table if alice in r)
    assert alice_line[table[0].index("계좌번호")] == "12345678901"
    assert alice_line[table[0].index("실지급액(원)")] == str(net)
    assert table[-1][0].startswith("합계")

    withheld = await kit.http.get(
        f"/v1/periods/{month}/withholding", params={"format": "json"}, headers=kit.finance
    )
    assert withheld.status_code == 200, withheld.text
    mine = {x["citizen_id"]: x for x in withheld.json()["lines"]}
    assert (mine[alice]["gross_won"], mine[alice]["income_tax_won"],
            mine[alice]["local_tax_won"], mine[alice]["net_won"]) == (
        gross, income_tax, local_tax, net)  # fmt: skip
    assert withheld.json()["district_fills"] == ["주민등록번호(구청 기재)"]

    # Transfer results: alice paid, carol failed; the same request again changes nothing.
    results = [
        {"citizen_id": alice, "status": "paid"},
        {"citizen_id": carol, "status": "failed", "reason": "계좌 해지"},
    ]
    url = f"/v1/periods/{month}/transfer-results"
    first = await kit.http.post(url, json=results, headers=kit.finance)
    assert first.status_code == 200, first.text
    assert first.json()["recorded_count"] == 2
    again = await kit.http.post(url, json=results, headers=kit.finance)
    assert again.status_code == 200 and again.json()["unchanged_count"] == 2
    carol_entries = await kit.entries_of(citizen_id=carol)
    failed_txns = {r["transaction_id"] for r in carol_entries if r["kind"] == "payout_failed"}
    assert len(failed_txns) == 1
    conflict = await kit.http.post(
        url, json=[{"citizen_id": carol, "status": "paid"}], headers=kit.finance
    )
    assert conflict.status_code == 409 and conflict.json()["code"] == "transfer_result_conflict"
    stranger = new_id("ctz")
    unknown_line = await kit.http.post(
        url,
        json=[{"citizen_id": alice, "status": "paid"}, {"citizen_id": stranger, "status": "paid"}],
        headers=kit.finance,
    )
    assert unknown_line.status_code == 422 and "results.1.citizen_id" in unknown_line.text
    as_csv = await kit.http.post(
        url,
        content=f"\ufeff시민ID,상태,사유\r\n{alice},성공,\r\n".encode(),
        headers={**kit.finance, "Content-Type": "text/csv"},
    )
    assert as_csv.status_code == 200 and as_csv.json()["unchanged_count"] == 1, as_csv.text
    # The payout file's own XLSX with 상태/사유 added (issue 16): the same results again.
    returned = openpyxl.Workbook()
    result_sheet = returned.active
    assert result_sheet is not None
    result_sheet.append([*header, "상태", "사유"])
    result_sheet.append([*by_citizen[alice], "성공", None])
    result_sheet.append([*by_citizen[carol], "이체불능", "계좌 해지"])
    result_sheet.append(list(totals))
    upload = io.BytesIO()
    returned.save(upload)
    as_xlsx = await kit.http.post(
        url,
        content=upload.getvalue(),
        headers={
            **kit.finance,
            "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        },
    )
    assert as_xlsx.status_code == 200 and as_xlsx.json()["unchanged_count"] == 2, as_xlsx.text
    broken = await kit.http.post(
        url,
        content=b"PK not a workbook",
        headers={
            **kit.finance,
            "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        },
    )
    assert broken.status_code == 422 and broken.json()["code"] == "transfer_results_invalid"
    malformed = await kit.http.post(
        url,
        content=f"시민ID,상태\r\n{alice},maybe\r\n".encode(),
        headers={**kit.finance, "Content-Type": "text/csv"},
    )
    assert malformed.status_code == 422 and "line 2.status" in malformed.text
    await kit.wait("PayoutPaid", citizen_id=alice)
    failed_event = await kit.wait("PayoutFailed", citizen_id=carol)
    assert failed_event[0].data["amount_won"] == net
    # The statements show the payout line and the bank's result (issue 16).
    shown = await _statements(kit, month, alice, carol)
    assert (shown[alice]["payout_gross_won"], shown[alice]["income_tax_won"],
            shown[alice]["local_income_tax_won"], shown[alice]["net_won"]) == (
        gross, income_tax, local_tax, net)  # fmt: skip
    assert shown[alice]["withholding_kind"] == "business_income_3_3"
    assert shown[alice]["transfer_status"] == "paid" and shown[alice]["transfer_won"] == net
    assert shown[carol]["transfer_status"] == "failed"
    assert shown[carol]["transfer_reason"] == "계좌 해지" and "이체불능" in shown[carol]["note"]

    # Next month, other income 8.8 %: alice earns two full days; carol's failed net is
    # carried into the file as it is (taxed already).
    await _pay(kit, later, alice, 480, 5)
    await _pay(kit, later, alice, 480, 6)
    await kit.wait("PayoutAccrued", count=3, citizen_id=alice)
    gross2 = 2 * full_shift_won(RATES[later.year], 480)
    taxable2 = gross2 - gross2 * 6_000 // 10_000
    income2 = _trunc10(taxable2 * 2_000 // 10_000) if taxable2 > 50_000 else 0
    local2 = _trunc10(income2 * 1_000 // 10_000)
    try:
        await _set_withholding(kit, OTHER)
        closed2 = await kit.http.post(f"/v1/periods/{later}/close", headers=kit.finance)
        assert closed2.status_code == 200, closed2.text
    finally:
        await _set_withholding(kit, NONE)
    file2 = await kit.http.get(
        f"/v1/periods/{later}/payout-file",
        params={"format": "csv", "layout": "bank"},
        headers=kit.finance,
    )
    table2 = list(csv.reader(io.StringIO(file2.content.decode("utf-8-sig"))))
    amount_at = table2[0].index("이체금액(원)")
    lines2 = {r[table2[0].index("시민ID")]: r for r in table2[1:-1]}
    assert lines2[carol][amount_at] == str(net)
    assert lines2[carol][table2[0].index("은행코드")] == "011"
    assert lines2[alice][amount_at] == str(gross2 - income2 - local2)
    # carol earned nothing in `later`: her statement of it is the failed transfer paid again.
    shown2 = await _statements(kit, later, alice, carol)
    assert shown2[carol]["failed_carried_in_won"] == net == shown2[carol]["transfer_won"]
    assert shown2[carol]["payable_won"] == 0 and shown2[carol]["net_won"] == 0
    assert shown2[alice]["net_won"] == gross2 - income2 - local2
    exported = await kit.http.get(
        f"/v1/periods/{later}/statements", params={"format": "csv"}, headers=kit.finance
    )
    sheet = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    row = next(r for r in sheet[1:] if carol in r)
    assert row[sheet[0].index("이체불능 이월분(원)")] == str(net)
    assert row[sheet[0].index("실지급액(원)")] == "0"
    withheld2 = await kit.http.get(
        f"/v1/periods/{later}/withholding", params={"format": "json"}, headers=kit.finance
    )
    mine2 = {x["citizen_id"]: x for x in withheld2.json()["lines"]}
    assert carol not in mine2
    assert (mine2[alice]["taxable_won"], mine2[alice]["income_tax_won"],
            mine2[alice]["local_tax_won"]) == (taxable2, income2, local2)  # fmt: skip
    assert income2 > 0
    budget = await kit.budget(later.year)
    assert budget["transfer_failed_won"] >= 0


async def _payout_file(kit: Kit, month: Period) -> dict[str, int]:
    """A closed month's bank-layout file: net to transfer by citizen."""
    answer = await kit.http.get(
        f"/v1/periods/{month}/payout-file",
        params={"format": "csv", "layout": "bank"},
        headers=kit.finance,
    )
    assert answer.status_code == 200, answer.text
    table = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    who, amount = table[0].index("시민ID"), table[0].index("이체금액(원)")
    return {r[who]: int(r[amount]) for r in table[1:-1]}


async def test_a_month_closed_after_a_later_one_pays_nothing_twice(kit: Kit) -> None:
    """Closes out of order (a forgotten month closed after the next one): the later close
    already moved the earlier month's money and carried its failed transfer, so the
    earlier close must not put either into a second file."""
    first = await _unclosed_months(kit, 3)
    middle, last = first.next(), first.next().next()
    for year in {first.year, last.year}:
        await kit.raise_budget(year, 2_000_000)
    dave, erin = new_id("ctz"), new_id("ctz")
    await _pay(kit, first, dave, 240, 12)
    await _pay(kit, middle, erin, 240, 13)
    await kit.wait("PayoutAccrued", citizen_id=dave)
    await kit.wait("PayoutAccrued", citizen_id=erin)
    for who, account in ((dave, "123-45-678902"), (erin, "123-45-678903")):
        put = await kit.http.put(
            f"/v1/payees/{who}",
            json={"bank_code": "004", "account_number": account, "account_holder": "김광산"},
            headers=kit.finance,
        )
        assert put.status_code == 200, put.text
    dave_net = full_shift_won(RATES[first.year], 240)
    erin_net = full_shift_won(RATES[middle.year], 240)

    assert (await kit.http.post(f"/v1/periods/{first}/close", headers=kit.finance)).is_success
    assert (await _payout_file(kit, first))[dave] == dave_net
    failed = await kit.http.post(
        f"/v1/periods/{first}/transfer-results",
        json=[{"citizen_id": dave, "status": "failed", "reason": "계좌 해지"}],
        headers=kit.finance,
    )
    assert failed.status_code == 200, failed.text
    # The last month closes before the middle one: erin's pay and dave's failed net go out.
    assert (await kit.http.post(f"/v1/periods/{last}/close", headers=kit.finance)).is_success
    file_last = await _payout_file(kit, last)
    assert (file_last[dave], file_last[erin]) == (dave_net, erin_net)
    # Then the forgotten middle month: nothing of either is owed again.
    closed = await kit.http.post(f"/v1/periods/{middle}/close", headers=kit.finance)
    assert closed.status_code == 200, closed.text
    file_middle = await _payout_file(kit, middle)
    assert dave not in file_middle and erin not in file_middle
    for who, kind, times in ((dave, "failed_carry", 1), (erin, "payout_due", 1)):
        entries = await kit.entries_of(citizen_id=who)
        assert len({e["transaction_id"] for e in entries if e["kind"] == kind}) == times
    for year in {first.year, last.year}:
        assert (await kit.budget(year))["transfer_failed_won"] >= 0

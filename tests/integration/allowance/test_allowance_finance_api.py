"""The finance and admin APIs on the running service: ledger pages stable under inserts,
CSV that Excel in Korea opens (BOM, UTF-8, Korean headers), XLSX that sums to the JSON,
the minimum-wage refusal, budget changes as entries, and who may call what."""

from __future__ import annotations

import csv
import io

import openpyxl
import openpyxl.utils
import pytest

from tests.integration.allowance.allowance_kit import Kit, full_shift_won, kst, new_id

pytestmark = pytest.mark.stack

RATE = 13_303


async def _year_with_activity(kit: Kit) -> tuple[int, str]:
    year = await kit.fresh_year()
    await kit.set_budget(year, 900_000, note="예산 편성 (council decision 1)")
    posting = await kit.submit(kst(f"{year}-03-02T10:00"), 120, capacity=2)
    await kit.budget_answer(posting.posting_id)
    citizen = new_id("ctz")
    await kit.inject(kit.attendance(posting, citizen, minutes=100))
    await kit.wait("PayoutAccrued", citizen_id=citizen)
    return year, posting.posting_id


async def test_ledger_pages_are_stable_under_inserts(kit: Kit) -> None:
    """Paging a year's ledger two entries at a time while new entries are posted returns
    exactly the entries committed at the first page, each once, in order; a new first
    page sees the new ones. The totals are those of the whole selection."""
    year, posting_id = await _year_with_activity(kit)
    params = {"fiscal_year": year, "limit": 2}
    first = await kit.http.get("/v1/ledger", params=params, headers=kit.finance)
    assert first.status_code == 200, first.text
    body = first.json()
    expected_count = body["totals"]["entries_count"]
    assert body["totals"]["debit_won"] == body["totals"]["credit_won"]
    seen = [e["entry_id"] for e in body["entries"]]
    await kit.set_budget(year, 950_000, note="추경 (supplementary)")  # inserted meanwhile
    cursor = body["next_cursor"]
    while cursor:
        page = await kit.http.get(
            "/v1/ledger", params={**params, "cursor": cursor}, headers=kit.finance
        )
        assert page.status_code == 200, page.text
        seen += [e["entry_id"] for e in page.json()["entries"]]
        cursor = page.json()["next_cursor"]
    assert len(seen) == expected_count == len(set(seen)) and seen == sorted(seen)
    fresh = await kit.http.get("/v1/ledger", params={"fiscal_year": year}, headers=kit.finance)
    assert fresh.json()["totals"]["entries_count"] == expected_count + 2
    other = await kit.http.get(
        "/v1/ledger",
        params={"fiscal_year": year + 1, "cursor": body["next_cursor"]},
        headers=kit.finance,
    )
    assert other.status_code == 400 and other.json()["code"] == "invalid_cursor"
    by_posting = await kit.http.get(
        "/v1/ledger", params={"posting_id": posting_id}, headers=kit.finance
    )
    assert {e["kind"] for e in by_posting.json()["entries"]} == {"reservation", "payout_accrual"}


async def test_csv_opens_with_korean_headers_and_xlsx_sums_to_the_json(kit: Kit) -> None:
    """The ledger CSV starts with the UTF-8 BOM, its Korean headers and memo survive a
    UTF-8 decode, amounts are plain integers; the XLSX opens with openpyxl, has won formats
    and a frozen header, its debit and credit columns sum to the JSON totals, and its last
    row is the totals row (`합계 (N건)`, those sums, outside the autofilter)."""
    year, _ = await _year_with_activity(kit)
    params = {"fiscal_year": year}
    totals = (await kit.http.get("/v1/ledger", params=params, headers=kit.finance)).json()["totals"]
    response = await kit.http.get(
        "/v1/ledger", params={**params, "format": "csv"}, headers=kit.finance
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content[:3] == b"\xef\xbb\xbf"
    text = response.content.decode("utf-8")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0][:4] == ["분개번호", "거래번호", "전기일시(KST)", "발생일시(KST)"]
    assert "차변(원)" in rows[0] and "적요" in rows[0]
    assert any("예산 편성" in cell for row in rows for cell in row)
    debit_col, credit_col = rows[0].index("차변(원)"), rows[0].index("대변(원)")
    assert len(rows) - 1 == totals["entries_count"]
    assert sum(int(r[debit_col]) for r in rows[1:]) == totals["debit_won"]
    assert sum(int(r[credit_col]) for r in rows[1:]) == totals["credit_won"]

    xlsx = await kit.http.get(
        "/v1/ledger", params={**params, "format": "xlsx"}, headers=kit.finance
    )
    assert xlsx.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    sheet = book["원장"]
    assert sheet.freeze_panes == "A2"
    header = [c.value for c in sheet[1]]
    debit_i, credit_i = header.index("차변(원)"), header.index("대변(원)")
    *data, totals_row = list(sheet.iter_rows(min_row=2, values_only=True))
    assert len(data) == totals["entries_count"]
    assert totals_row[0] == f"합계 ({totals['entries_count']:,}건)"
    assert sum(r[debit_i] for r in data) == totals["debit_won"] == totals_row[debit_i]
    assert sum(r[credit_i] for r in data) == totals["credit_won"] == totals_row[credit_i]
    assert (
        sheet.auto_filter.ref
        == f"A1:{openpyxl.utils.get_column_letter(len(header))}{len(data) + 1}"
    )
    assert sheet.cell(len(data) + 2, debit_i + 1).font.b
    assert sheet.cell(2, debit_i + 1).number_format == "#,##0"
    assert sheet.column_dimensions["P"].width >= 40
    trial = (
        await kit.http.get(
            "/v1/ledger/trial-balance", params={"fiscal_year": year}, headers=kit.finance
        )
    ).json()
    assert trial["balanced"] and trial["debit_won"] == totals["debit_won"]


async def test_budget_changes_are_entries_and_cuts_cannot_take_committed_money(kit: Kit) -> None:
    """Raising and cutting the budget each post a transaction (history kept); a cut below
    what is reserved or accrued is refused, as is a change based on a stale total; the
    budget can be read as of an earlier instant from the entries alone."""
    year, _ = await _year_with_activity(kit)
    committed = 2 * full_shift_won(RATE, 120)
    budget = await kit.budget(year)
    assert budget["reserved_won"] + budget["accrued_won"] == committed
    cut = await kit.http.put(
        "/v1/admin/budget",
        json={"fiscal_year": year, "amount_won": committed - 1, "note": "too deep"},
        headers=kit.admin,
    )
    assert cut.status_code == 409 and cut.json()["code"] == "budget_below_commitments"
    stale = await kit.http.put(
        "/v1/admin/budget",
        json={"fiscal_year": year, "amount_won": 1, "note": "x", "previous_amount_won": 5},
        headers=kit.admin,
    )
    assert stale.status_code == 409 and stale.json()["code"] == "budget_changed"
    middle = await kit.clock()
    fine = await kit.set_budget(year, committed, note="감액 (cut to what is committed)")
    assert fine["available_won"] == 0
    assert [h["new_total_won"] for h in fine["history"]] == [900_000, committed]
    kinds = (
        await kit.http.get(
            "/v1/ledger",
            params={"fiscal_year": year, "account": "budget_appropriation"},
            headers=kit.finance,
        )
    ).json()["entries"]
    assert [e["kind"] for e in kinds] == ["budget_appropriated", "budget_cut"]
    then = await kit.http.get(
        "/v1/budget",
        params={"fiscal_year": year, "as_of": middle.isoformat()},
        headers=kit.finance,
    )
    assert then.json()["total_won"] == 900_000


async def test_minimum_wage_refusal_names_both_numbers_and_changes_nothing(kit: Kit) -> None:
    """A rate table with 10,000 won/h from 2025 is refused (422) saying 10,000 and 10,030;
    the table in force is unchanged."""
    before = (await kit.http.get("/v1/admin/rates", headers=kit.admin)).json()
    table = [
        {
            "effective_from": r["effective_from"],
            "hourly_rate_won": r["hourly_rate_won"],
            "source": r["source"],
        }
        for r in before["rates"]
        if r["effective_from"] < "2025-01-01"
    ]
    table.append({"effective_from": "2025-01-01", "hourly_rate_won": 10_000, "source": "typo"})
    refused = await kit.http.put("/v1/admin/rates", json={"rates": table}, headers=kit.admin)
    assert refused.status_code == 422
    problem = refused.json()
    assert problem["code"] == "below_minimum_wage"
    assert "10,000" in problem["detail"] and "10,030" in problem["detail"]
    assert problem["errors"][0]["field"].endswith("hourly_rate_won")
    after = (await kit.http.get("/v1/admin/rates", headers=kit.admin)).json()
    assert after["version"] == before["version"]
    unknown = await kit.http.put(
        "/v1/admin/rates", json={"rates": table, "surprise": 1}, headers=kit.admin
    )
    assert unknown.status_code == 400


async def test_who_may_call_what(kit: Kit) -> None:
    """No token or an unknown one: 401. The admin token on finance endpoints and the
    finance token on admin ones: 403. Payee details are never returned in full."""
    cases = [
        ("GET", "/v1/budget", kit.finance, kit.admin),
        ("GET", "/v1/ledger", kit.finance, kit.admin),
        ("GET", "/v1/periods/2031-01/statements", kit.finance, kit.admin),
        ("POST", "/v1/periods/2031-01/close", kit.finance, kit.admin),
        ("GET", "/v1/periods/2031-01/payout-file", kit.finance, kit.admin),
        ("GET", "/v1/admin/rates", kit.admin, kit.finance),
        ("PUT", "/v1/admin/budget", kit.admin, kit.finance),
        ("PUT", "/v1/admin/caps", kit.admin, kit.finance),
    ]
    for method, path, _, wrong in cases:
        none = await kit.http.request(method, path)
        assert none.status_code == 401, (method, path)
        bad = await kit.http.request(method, path, headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401, (method, path)
        other = await kit.http.request(method, path, headers=wrong)
        assert other.status_code == 403, (method, path, other.text)
    citizen = new_id("ctz")
    await kit.know_citizen(citizen)
    put = await kit.http.put(
        f"/v1/payees/{citizen}",
        json={"bank_code": "088", "account_number": "110-222-333444", "account_holder": "이수"},
        headers=kit.finance,
    )
    got = await kit.http.get(f"/v1/payees/{citizen}", headers=kit.finance)
    for response in (put, got):
        assert response.status_code == 200
        assert "333444" not in response.text and "이수" not in response.text
        assert response.json()["account_masked"] == "***-****-3444"
    stored = await kit.pool.fetchrow("SELECT * FROM payees WHERE citizen_id = $1", citizen)
    assert b"333444" not in bytes(stored["ciphertext"]) and stored["key_id"]
    refused = await kit.http.put(
        f"/v1/payees/{citizen}",
        json={"bank_code": "088", "account_number": "110-222-333444", "account_holder": "=cmd"},
        headers=kit.finance,
    )
    assert refused.status_code == 400

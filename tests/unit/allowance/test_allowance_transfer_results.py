"""The pure parts of transfer results and withholding at close: the CSV parser names the
line it refuses, and the close's ledger legs put the taxes on their own accounts."""

from __future__ import annotations

import io

import openpyxl
from allowance.domain import ledger
from allowance.domain.calendar import Period
from allowance.domain.transfer_results import parse_results_csv
from allowance.payout_exports import parse_results_xlsx


def test_csv_results_read_the_payout_file_layout_with_a_status_column() -> None:
    body = "\ufeff순번,은행코드,시민ID,상태,사유\r\n1,011,ctz_a,성공,\r\n2,004,ctz_b,failed,해지\r\n합계 (2건),,,,\r\n"
    lines, violations = parse_results_csv(body.encode())
    assert not violations
    assert [(x.citizen_id, x.status, x.reason, x.field) for x in lines] == [
        ("ctz_a", "paid", "", "line 2"),
        ("ctz_b", "failed", "해지", "line 3"),
    ]


def test_csv_results_refuse_a_bad_status_or_missing_column_by_line() -> None:
    _, violations = parse_results_csv("시민ID,상태\r\nctz_a,maybe\r\n".encode())
    assert [v.field for v in violations] == ["line 2.status"]
    _, violations = parse_results_csv("시민ID\r\nctz_a\r\n".encode())
    assert violations and violations[0].code == "missing"
    _, violations = parse_results_csv(b"\xff\xfe")
    assert violations[0].field == "body"


def test_csv_results_read_lone_carriage_returns_and_refuse_garbage_without_raising() -> None:
    """Line ends as a bank's export may write them (a lone \r, old Mac style) are read;
    a body the fuzzer sent (control characters and a lone \r inside a field) is refused
    as a bad CSV, never an exception (it was a 500: the csv module's "new-line character
    seen in unquoted field")."""
    lines, violations = parse_results_csv("시민ID,상태\rctz_a,성공\rctz_b,실패\r".encode())
    assert not violations
    assert [(x.citizen_id, x.status) for x in lines] == [("ctz_a", "paid"), ("ctz_b", "failed")]
    garbage = b"\xc2\xad\x100\xc2\xa5\xc2\xb8\xf3\x9a\x91\xaa\x0f\r\xf1\x83\x8f\xb7"
    lines, violations = parse_results_csv(garbage)
    assert lines == []
    assert violations and violations[0].code == "missing"


def test_close_withholds_onto_the_tax_accounts_and_failed_carry_balances() -> None:
    due = ledger.payout_due(
        2024, Period(2024, 5), "ctz_a", 43_680, "m", "due", income_tax_won=1_310, local_tax_won=130
    )
    assert due is not None
    legs = {leg.account: leg.amount_won for leg in due.legs}
    assert legs == {
        ledger.Account.ALLOWANCE_PAYABLE: 43_680,
        ledger.Account.ALLOWANCE_PAYOUT_DUE: -42_240,
        ledger.Account.INCOME_TAX_PAYABLE: -1_310,
        ledger.Account.LOCAL_INCOME_TAX_PAYABLE: -130,
    }
    failed = ledger.payout_failed(2024, Period(2024, 5), "ctz_a", 42_240, "m", "failed")
    carry = ledger.failed_carry(2024, Period(2024, 6), "ctz_a", 42_240, "m", "carry")
    assert failed is not None and carry is not None
    net: dict[ledger.Account, int] = {}
    for leg in (*failed.legs, *carry.legs):
        net[leg.account] = net.get(leg.account, 0) + leg.amount_won
    assert set(net.values()) == {0}


def test_budget_figures_count_withheld_and_failed_as_accrued() -> None:
    figures = ledger.budget_figures(
        2024,
        {
            "budget_appropriation": 100,
            "allowance_payout_due": -40,
            "income_tax_payable": -3,
            "local_income_tax_payable": -1,
            "allowance_transfer_failed": -6,
            "budget_available": -50,
        },
    )
    assert figures.accrued_won == 50 and figures.withheld_won == 4 and figures.balanced()


def _xlsx(rows: list[list[object]]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    workbook.create_sheet("합계").append(["not read"])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def test_xlsx_results_read_the_payout_workbook_with_a_status_column() -> None:
    """Issue 16: the payout file's XLSX with `상태` added reads as the CSV does (the totals
    row and blank rows skipped, numbers as their digits, only the first sheet)."""
    body = _xlsx(
        [
            ["순번", "은행코드", "시민ID", "이체금액(원)", "상태", "사유"],
            [1, "011", "ctz_a", 51_472, "성공", None],
            [2, "004", "ctz_b", 1_000.0, "이체불능", "해지 계좌"],
            [],
            ["합계 (2건)", None, None, 52_472, None, None],
        ]
    )
    lines, violations = parse_results_xlsx(body)
    assert not violations
    assert [(x.citizen_id, x.status, x.reason, x.field) for x in lines] == [
        ("ctz_a", "paid", "", "line 2"),
        ("ctz_b", "failed", "해지 계좌", "line 3"),
    ]


def test_xlsx_results_refuse_a_bad_status_a_missing_column_or_not_a_workbook() -> None:
    _, violations = parse_results_xlsx(_xlsx([["시민ID", "상태"], ["ctz_a", "maybe"]]))
    assert [v.field for v in violations] == ["line 2.status"]
    _, violations = parse_results_xlsx(_xlsx([["시민ID"], ["ctz_a"]]))
    assert violations and violations[0].code == "missing"
    _, violations = parse_results_xlsx(b"PK\x03\x04 not really a zip")
    assert violations[0].field == "body" and violations[0].code == "invalid"
    _, violations = parse_results_xlsx(_xlsx([["시민ID", "상태"]]))
    assert violations[0].message == "no result lines in the XLSX"

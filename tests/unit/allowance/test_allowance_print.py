"""Excel that prints (issue 17 item 5): landscape A4 one page wide, the header row repeated,
the filter in words and the totals on the printed page and the summary sheet, Korean
transaction types and memos beside the codes."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime

import openpyxl
from allowance import exports
from allowance.domain import ledger


def test_ledger_xlsx_prints_landscape_one_page_wide_with_filter_and_totals() -> None:
    path = exports.temp_xlsx_path()
    try:
        builder = exports.XlsxBuilder(
            path, "원장", exports.LEDGER_COLUMNS, 100, "조건: 귀속월 2026년 11월 & 시민 a"
        )
        builder.write_rows(
            [
                {
                    "entry_id": 1,
                    "posted_at": datetime(2026, 11, 3, tzinfo=UTC),
                    "kind": "payout_accrual",
                    "debit_won": 1_234_567,
                    "credit_won": 0,
                    "kind_name": ledger.TXN_KIND_KO["payout_accrual"],
                    "memo_ko": ledger.memo_ko("payout_accrual", "2026-11", "ctz_a", None),
                }
            ]
        )
        builder.close([("분개 수 (entries)", 1)], [("차변(원)", 1_234_567), ("대변(원)", 0)])
        with open(path, "rb") as handle:
            book = openpyxl.load_workbook(io.BytesIO(handle.read()))
        sheet = book["원장"]
        assert sheet.page_setup.orientation == "landscape"
        assert sheet.page_setup.paperSize == 9
        # 1 page wide is the default xlsxwriter leaves out; 0 = as many pages tall as needed
        assert sheet.page_setup.fitToWidth in (None, 1) and sheet.page_setup.fitToHeight == 0
        assert sheet.sheet_properties.pageSetUpPr.fitToPage
        assert sheet.print_title_rows == "$1:$1"
        assert "귀속월 2026년 11월 && 시민 a" in sheet.oddHeader.center.text
        assert "차변(원) 1,234,567" in sheet.oddFooter.left.text
        header = [c.value for c in sheet[1]]
        assert header[6] == "거래유형" and header[-2:] == ["거래유형명", "적요(한글)"]
        assert sheet.cell(2, 7).value == "payout_accrual"
        assert sheet.cell(2, len(header) - 1).value == "수당 발생"
        assert sheet.cell(2, len(header)).value == "2026년 11월 수당 발생 · 시민 ctz_a"
        summary = [[c for c in row] for row in book["요약"].iter_rows(values_only=True)]
        flat = [c for row in summary for c in row if c is not None]
        assert "조건: 귀속월 2026년 11월 & 시민 a" in flat and "합계 행" in flat
        assert 1_234_567 in flat
        assert book["요약"].page_setup.orientation == "landscape"
    finally:
        os.unlink(path)


def test_every_transaction_kind_has_a_korean_name() -> None:
    assert set(ledger.TXN_KIND_KO) == {k.value for k in ledger.TxnKind}

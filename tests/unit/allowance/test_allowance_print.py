"""Excel that prints (issue 17 item 5): landscape A4 one page wide, the header row repeated,
the filter in words and the totals on the printed page and the summary sheet, Korean
transaction types and memos beside the codes."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime

import openpyxl
import openpyxl.utils
import pytest
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


def _ledger_rows(count: int) -> list[dict[str, object]]:
    return [
        {
            "entry_id": i,
            "posted_at": datetime(2026, 11, 3, tzinfo=UTC),
            "fiscal_year": 2026,
            "debit_won": 1_000 * i,
            "credit_won": 7 * i,
        }
        for i in range(1, count + 1)
    ]


def test_the_data_sheet_ends_with_a_bold_totals_row_outside_the_autofilter() -> None:
    """`합계 (N건)` under the last data row of the last sheet, each money column summed over
    every sheet (ids and years are not summed), bold; the autofilter of each sheet covers
    its data rows only, and the print setup stays."""
    path = exports.temp_xlsx_path()
    try:
        builder = exports.XlsxBuilder(path, "원장", exports.LEDGER_COLUMNS, 2, totals_row=True)
        rows = _ledger_rows(3)
        builder.write_rows(rows)
        builder.close([("분개 수 (entries)", 3)])
        with open(path, "rb") as handle:
            book = openpyxl.load_workbook(io.BytesIO(handle.read()))
        first, last = book["원장"], book["원장 (2)"]
        assert first.auto_filter.ref == "A1:R3" and first.max_row == 3  # no totals here
        assert last.auto_filter.ref == "A1:R2" and last.max_row == 3
        header = [c.value for c in last[1]]
        totals = [c.value for c in last[3]]
        assert totals[0] == "합계 (3건)" and last.cell(3, 1).font.b
        debit, credit = header.index("차변(원)"), header.index("대변(원)")
        assert totals[debit] == sum(int(str(r["debit_won"])) for r in rows) == 6_000
        assert totals[credit] == 42 and last.cell(3, debit + 1).number_format == "#,##0"
        assert last.cell(3, debit + 1).font.b and last.cell(3, debit + 1).border.top.style
        assert totals[header.index("회계연도")] is None  # not a money column
        assert totals[header.index("거래번호")] is None
        for sheet in (first, last):
            assert sheet.page_setup.orientation == "landscape"
            assert sheet.print_title_rows == "$1:$1"
            assert sheet.sheet_properties.pageSetUpPr.fitToPage
    finally:
        os.unlink(path)


def test_statement_totals_leave_never_filled_columns_blank_and_sum_hours() -> None:
    """An open month has no payout columns: their totals stay blank, not 0; the shift and
    minute counts are summed beside the money; an empty month still has its totals row."""
    path = exports.temp_xlsx_path()
    try:
        builder = exports.XlsxBuilder(
            path, "명세서", exports.STATEMENT_COLUMNS, 100, totals_row=True
        )
        builder.write_rows(
            [
                {
                    "period": "2026-11",
                    "citizen_id": c,
                    "lines_count": 2,
                    "minutes_paid": m,
                    "gross_won": m * 10,
                    "payable_won": m * 10,
                    "capped_won": 0,
                }
                for c, m in (("ctz_a", 120), ("ctz_b", 95))
            ]
        )
        builder.close()
        with open(path, "rb") as handle:
            sheet = openpyxl.load_workbook(io.BytesIO(handle.read()))["명세서"]
        header = [c.value for c in sheet[1]]
        totals = dict(zip(header, [c.value for c in sheet[4]], strict=True))
        assert totals["귀속월"] == "합계 (2건)"
        assert (totals["근무건수"], totals["인정시간(분)"], totals["산정액(원)"]) == (4, 215, 2_150)
        assert totals["상한초과(원)"] == 0 and totals["실지급액(원)"] is None
        assert totals["근무명"] is None and sheet.auto_filter.ref == f"A1:{_last_column(header)}3"
    finally:
        os.unlink(path)
    path = exports.temp_xlsx_path()
    try:
        builder = exports.XlsxBuilder(path, "원장", exports.LEDGER_COLUMNS, 100, totals_row=True)
        builder.close()
        with open(path, "rb") as handle:
            sheet = openpyxl.load_workbook(io.BytesIO(handle.read()))["원장"]
        assert sheet.cell(2, 1).value == "합계 (0건)" and sheet.auto_filter.ref is None
    finally:
        os.unlink(path)


def test_a_full_last_sheet_puts_the_totals_row_on_a_sheet_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sheet holds 1,048,576 rows: when the data fill the last one, the totals row goes
    on a further sheet (header and totals) rather than past Excel's last row."""
    monkeypatch.setattr(exports, "EXCEL_ROWS_MAX", 3)  # header + 2 data rows fill a sheet
    path = exports.temp_xlsx_path()
    try:
        builder = exports.XlsxBuilder(path, "원장", exports.LEDGER_COLUMNS, 2, totals_row=True)
        builder.write_rows(_ledger_rows(2))
        builder.close()
        with open(path, "rb") as handle:
            book = openpyxl.load_workbook(io.BytesIO(handle.read()))
        assert book.sheetnames == ["원장", "원장 (2)"]
        assert book["원장"].max_row == 3 and book["원장"].auto_filter.ref == "A1:R3"
        assert book["원장 (2)"].cell(2, 1).value == "합계 (2건)"
        assert book["원장 (2)"].cell(2, 12).value == 3_000
    finally:
        os.unlink(path)


def _last_column(header: list[object]) -> str:
    return openpyxl.utils.get_column_letter(len(header))

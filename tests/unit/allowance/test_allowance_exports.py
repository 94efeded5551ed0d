"""Spreadsheet output: CSV with BOM and Korean headers, formula-safe text; XLSX formats."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime

import openpyxl
from allowance import exports


def test_csv_starts_with_a_bom_and_korean_headers_survive() -> None:
    """Excel in Korea needs the UTF-8 BOM; decoding as utf-8-sig gives the headers back."""
    raw = exports.csv_chunk(exports.STATEMENT_COLUMNS, [], header=True)
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.decode("utf-8-sig").split("\r\n")[0].startswith("귀속월,시민,근무건수")


def test_csv_text_never_runs_as_a_formula_but_numbers_stay_numbers() -> None:
    """A text cell beginning with = is prefixed; a negative amount stays a number."""
    row = {"citizen_id": "=HYPERLINK(1)", "payable_won": -1200, "note": "@x"}
    line = exports.csv_chunk(exports.STATEMENT_COLUMNS, [row]).decode()
    assert "'=HYPERLINK(1)" in line and ",-1200," in line and "'@x" in line


def test_xlsx_has_won_formats_a_frozen_header_and_continues_on_a_new_sheet() -> None:
    """Won cells carry #,##0, the header row is frozen, and rows past the sheet limit
    continue on a second sheet; a summary sheet closes the workbook."""
    path = exports.temp_xlsx_path()
    try:
        builder = exports.XlsxBuilder(path, "원장", exports.LEDGER_COLUMNS, rows_per_sheet_max=2)
        rows = [
            {
                "entry_id": i,
                "posted_at": datetime(2031, 3, 1, 0, 30, tzinfo=UTC),
                "debit_won": 1_000 * i,
                "credit_won": 0,
                "memo": "=SUM(A1)",
            }
            for i in range(1, 4)
        ]
        builder.write_rows(rows)
        builder.close([("차변 합계", 6_000)])
        with open(path, "rb") as handle:
            book = openpyxl.load_workbook(io.BytesIO(handle.read()))
        assert book.sheetnames == ["원장", "원장 (2)", "요약"]
        first = book["원장"]
        assert first.freeze_panes == "A2"
        assert first.cell(1, 12).value == "차변(원)"
        assert first.cell(2, 12).value == 1_000 and first.cell(2, 12).number_format == "#,##0"
        assert first.cell(2, 3).value == datetime(2031, 3, 1, 9, 30)  # shown in KST
        assert first.cell(2, 16).value == "=SUM(A1)" and first.cell(2, 16).data_type == "s"
        assert book["원장 (2)"].cell(2, 12).value == 3_000
        assert first.column_dimensions["P"].width > 50
    finally:
        os.unlink(path)

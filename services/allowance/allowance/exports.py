"""Spreadsheets for finance staff: CSV that Excel in Korea opens right, and XLSX.

- CSV: UTF-8 with a byte-order mark (without it Excel on Korean Windows reads the file as
  CP949 and the Korean headers turn into mojibake), CRLF line ends, amounts as plain
  integers so they stay numbers, and text cells that begin with `= + - @` prefixed with an
  apostrophe so a value can never run as a formula (CSV injection).
- XLSX: written by xlsxwriter in `constant_memory` mode (one row in memory at a time) to a
  temporary file that is then streamed; won columns carry the `#,##0` number format, the
  header row is frozen, columns have widths, and an export longer than a sheet continues
  on the next sheet. Every sheet prints: A4 landscape, one page wide, the header row
  repeated on each page, the title and the filter in the page header, the totals and
  the page number in the footer. The ledger and statements data sheets end with a bold
  totals row (`합계 (N건)` and the sum of each money column, written as values like the
  payout file's: what a program reading the cells sees is the total, and a control total
  must not follow a cell someone edited); the autofilter covers the data rows only, so
  sorting or filtering never moves the totals row into the data. Programs reading the
  sheet as a table stop at the row whose first cell starts with `합계 (`. The totals and
  the filter in words are also on the `요약` sheet.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import xlsxwriter

from shared.seoul import SEOUL

BOM = "\ufeff"
ColumnKind = Literal["text", "int", "won", "datetime", "ratio"]  # ratio: a float, 4 decimals


@dataclass(frozen=True)
class Column:
    """`total`: the totals row sums it too (money columns are always summed)."""

    key: str
    header: str
    kind: ColumnKind
    width: int
    total: bool = False

    @property
    def summed(self) -> bool:
        return self.kind == "won" or self.total


LEDGER_COLUMNS: tuple[Column, ...] = (
    Column("entry_id", "분개번호", "int", 10),
    Column("transaction_id", "거래번호", "int", 10),
    Column("posted_at", "전기일시(KST)", "datetime", 20),
    Column("occurred_at", "발생일시(KST)", "datetime", 20),
    Column("fiscal_year", "회계연도", "int", 9),
    Column("period", "귀속월", "text", 9),
    Column("kind", "거래유형", "text", 20),
    Column("account", "계정코드", "text", 24),
    Column("account_name", "계정명", "text", 18),
    Column("citizen_id", "시민", "text", 26),
    Column("posting_id", "공고", "text", 26),
    Column("debit_won", "차변(원)", "won", 14),
    Column("credit_won", "대변(원)", "won", 14),
    Column("leg", "분개구분", "text", 34),
    Column("source_event_id", "원인 이벤트", "text", 38),
    Column("memo", "적요", "text", 60),
    Column("kind_name", "거래유형명", "text", 20),
    Column("memo_ko", "적요(한글)", "text", 44),
)

STATEMENT_COLUMNS: tuple[Column, ...] = (
    Column("period", "귀속월", "text", 9),
    Column("citizen_id", "시민", "text", 26),
    Column("lines_count", "근무건수", "int", 9, total=True),
    Column("minutes_paid", "인정시간(분)", "int", 12, total=True),
    Column("gross_won", "산정액(원)", "won", 14),
    Column("capped_won", "상한초과(원)", "won", 14),
    Column("payable_won", "지급대상액(원)", "won", 15),
    Column("adjustment_won", "조정액(원)", "won", 14),
    Column("balance_won", "미지급잔액(원)", "won", 15),
    Column("payout_won", "이번 지급액(원)", "won", 15),
    Column("carried_forward_won", "이월액(원)", "won", 14),
    Column("held_back", "지급보류", "text", 9),
    Column("note", "비고", "text", 50),
    # Added by issue 16 (after the first columns, which keep their places): the payout line.
    Column("payout_gross_won", "지급총액(원)", "won", 14),
    Column("income_tax_won", "소득세(원)", "won", 12),
    Column("local_income_tax_won", "지방소득세(원)", "won", 13),
    Column("net_won", "실지급액(원)", "won", 14),
    Column("failed_carried_in_won", "이체불능 이월분(원)", "won", 16),
    Column("transfer_won", "이체금액(원)", "won", 14),
    Column("transfer_status", "이체결과", "text", 10),
    Column("transfer_reason", "이체불능 사유", "text", 20),
    # Added by issue 17 (at the end, so every column before keeps its place): the month's
    # shifts of the citizen, by facility then posting. `근무명` and `공고` list one entry
    # per posting in the same order; `시설` names each facility once.
    Column("facility_names", "시설", "text", 24),
    Column("shift_titles", "근무명", "text", 36),
    Column("posting_ids", "공고", "text", 30),
)

PAYOUT_COLUMNS: tuple[Column, ...] = (
    Column("bank_code", "은행코드", "text", 9),
    Column("account_number", "계좌번호", "text", 20),
    Column("account_holder", "예금주", "text", 14),
    Column("amount_won", "이체금액", "won", 14),
    Column("memo", "적요", "text", 20),
)

OUTCOME_COLUMNS: tuple[Column, ...] = (
    Column("key", "구분코드", "text", 26),
    Column("label", "구분", "text", 30),
    Column("shifts_posted", "게시 근무", "int", 10),
    Column("shifts_cancelled", "취소 근무", "int", 10),
    Column("shifts_filled", "충원 근무", "int", 10),
    Column("seats_offered", "모집 인원", "int", 10),
    Column("seats_filled", "충원 인원", "int", 10),
    Column("attended", "출석", "int", 8),
    Column("no_shows", "노쇼", "int", 8),
    Column("no_show_rate", "노쇼율", "ratio", 9),
    Column("hours_worked", "근무시간(시간)", "ratio", 12),
    Column("citizens_served", "참여 시민", "int", 10),
    Column("first_time_citizens", "첫 참여 시민", "int", 11),
    Column("applicants", "지원 시민", "int", 10),
    Column("first_shift_share", "지원자 중 근무 비율", "ratio", 16),
    Column("allowance_accrued_won", "발생 수당(원)", "won", 15),
    Column("allowance_capped_won", "상한초과(원)", "won", 14),
    Column("allowance_paid_won", "이체 완료(원)", "won", 15),
    Column("gini_allowance", "수당 지니계수", "ratio", 12),
    Column("gini_allowance_paid", "수령자 간 지니계수", "ratio", 15),
    Column("draws", "추첨 수", "int", 8),
    Column("draw_winners", "추첨 당첨 시민", "int", 12),
    Column("draw_repeat_winner_rate", "중복 당첨 비율", "ratio", 13),
    Column("draw_probability_min", "최소 선정확률", "ratio", 12),
    Column("draw_probability_max", "최대 선정확률", "ratio", 12),
)

LEDGER_WON_KEYS = ("debit_won", "credit_won")
STATEMENT_WON_KEYS = (
    "gross_won",
    "capped_won",
    "payable_won",
    "adjustment_won",
    "balance_won",
    "payout_won",
    "carried_forward_won",
    "payout_gross_won",
    "income_tax_won",
    "local_income_tax_won",
    "net_won",
    "failed_carried_in_won",
    "transfer_won",
)


EXCEL_ROWS_MAX = 1_048_576  # rows of an Excel sheet, the header included
TOTALS_STYLE: Mapping[str, Any] = {"bold": True, "top": 2}  # bold under a thick rule
Cell = str | int | None


def totals_cells(count: int, sums: Sequence[int | None]) -> list[Cell]:
    """A totals row: `합계 (N건)` in the first column (the label takes that cell, whatever
    the data rows hold there), then each summed column's total, else blank. The payout
    files and the ledger and statements workbooks all end with it."""
    return [f"합계 ({count:,}건)", *sums[1:]]


def write_cells(sheet: Any, row: int, cells: Sequence[Cell], formats: Sequence[Any]) -> None:
    """One row of values (synchronous): blank, a number or a string, each in its format."""
    for col, value in enumerate(cells):
        if value is None:
            sheet.write_blank(row, col, None, formats[col])
        elif isinstance(value, int):
            sheet.write_number(row, col, value, formats[col])
        else:
            sheet.write_string(row, col, value, formats[col])


def kst_naive(value: datetime) -> datetime:
    """A stored UTC instant as the Seoul wall-clock time spreadsheets show."""
    return value.astimezone(SEOUL).replace(tzinfo=None)


def _csv_text(value: Any, kind: ColumnKind, *, guard: bool) -> str:
    if value is None:
        return ""
    if kind == "datetime" and isinstance(value, datetime):
        return kst_naive(value).strftime("%Y-%m-%d %H:%M:%S")
    if kind in ("int", "won"):
        return str(int(value))
    if kind == "ratio":
        return f"{float(value):.4f}"
    text = str(value)
    if guard and text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def csv_chunk(
    columns: Sequence[Column],
    rows: Sequence[Mapping[str, Any]],
    *,
    header: bool = False,
    guard: bool = True,
) -> bytes:
    """CSV bytes for `rows` (and the BOM and header row first when `header`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header:
        buffer.write(BOM)
        writer.writerow([c.header for c in columns])
    for row in rows:
        writer.writerow([_csv_text(row.get(c.key), c.kind, guard=guard) for c in columns])
    return buffer.getvalue().encode("utf-8")


async def csv_stream(
    columns: Sequence[Column],
    batches: AsyncIterator[Sequence[Mapping[str, Any]]],
    *,
    guard: bool = True,
) -> AsyncIterator[bytes]:
    """The header first, then one chunk per batch: memory holds one batch at a time."""
    yield csv_chunk(columns, [], header=True, guard=guard)
    async for batch in batches:
        if batch:
            yield csv_chunk(columns, batch, guard=guard)


class XlsxBuilder:
    """One workbook, written row by row (synchronous: call it from a worker thread)."""

    def __init__(
        self,
        path: str,
        sheet_title: str,
        columns: Sequence[Column],
        rows_per_sheet_max: int,
        filter_text: str = "",
        totals_row: bool = False,
    ) -> None:
        """`totals_row`: the last data sheet ends with `합계 (N건)` and the sums of the
        summed columns (the outcome report, whose rows are groups with their own total
        row, has none)."""
        self._workbook = xlsxwriter.Workbook(
            path, {"constant_memory": True, "strings_to_formulas": False}
        )
        self._title = sheet_title
        self._columns = columns
        self._rows_max = max(rows_per_sheet_max, 1)
        self._header = self._workbook.add_format(
            {"bold": True, "bg_color": "#DDEBF7", "border": 1, "align": "center"}
        )
        number_formats: dict[ColumnKind, Mapping[str, Any]] = {
            "won": {"num_format": "#,##0"},
            "int": {"num_format": "0"},
            "ratio": {"num_format": "0.0000"},
            "datetime": {"num_format": "yyyy-mm-dd hh:mm:ss"},
            "text": {},
        }
        self._formats: dict[ColumnKind, Any] = {
            kind: self._workbook.add_format(dict(fmt)) for kind, fmt in number_formats.items()
        }
        self._totals_formats: dict[ColumnKind, Any] = {
            kind: self._workbook.add_format({**fmt, **TOTALS_STYLE})
            for kind, fmt in number_formats.items()
        }
        self._totals_row = totals_row
        self._count = 0
        self._sums: list[int | None] = [None] * len(columns)
        self._sheets = 0
        self._sheet: Any = None
        self._all_sheets: list[Any] = []
        self._row = 0
        self._filter_text = filter_text
        self._new_sheet()

    def _finish_sheet(self) -> None:
        if self._sheet is not None and self._row > 0:
            self._sheet.autofilter(0, 0, self._row, len(self._columns) - 1)

    def _new_sheet(self) -> None:
        self._finish_sheet()
        self._sheets += 1
        name = self._title if self._sheets == 1 else f"{self._title} ({self._sheets})"
        sheet = self._workbook.add_worksheet(name[:31])
        for index, column in enumerate(self._columns):
            sheet.set_column(index, index, column.width, self._formats[column.kind])
        for index, column in enumerate(self._columns):
            sheet.write_string(0, index, column.header, self._header)
        sheet.freeze_panes(1, 0)
        _print_setup(sheet, name, self._filter_text)
        sheet.repeat_rows(0)
        self._all_sheets.append(sheet)
        self._sheet = sheet
        self._row = 0

    def write_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            if self._row >= self._rows_max:
                self._new_sheet()
            self._row += 1
            self._count += 1
            for index, column in enumerate(self._columns):
                value = row.get(column.key)
                self._write_cell(self._row, index, column, value)
                if column.summed and value is not None:
                    self._sums[index] = (self._sums[index] or 0) + int(value)

    def _write_totals(self) -> None:
        """The totals row under the last data row, outside the autofilter (set on the data
        rows before). A column with no value in any row stays blank (an open month's
        payout columns), so a blank is never shown as a total of 0."""
        if self._row + 1 >= EXCEL_ROWS_MAX:
            self._new_sheet()  # the last sheet is full: the totals row opens one of its own
        cells = totals_cells(self._count, self._sums)
        formats = [self._totals_formats["text"]] + [
            self._totals_formats[column.kind] for column in self._columns[1:]
        ]
        write_cells(self._sheet, self._row + 1, cells, formats)

    def _write_cell(self, row: int, col: int, column: Column, value: Any) -> None:
        fmt = self._formats[column.kind]
        if value is None:
            self._sheet.write_blank(row, col, None, fmt)
        elif column.kind in ("won", "int"):
            self._sheet.write_number(row, col, int(value), fmt)
        elif column.kind == "ratio":
            self._sheet.write_number(row, col, float(value), fmt)
        elif column.kind == "datetime" and isinstance(value, datetime):
            self._sheet.write_datetime(row, col, kst_naive(value), fmt)
        else:
            self._sheet.write_string(row, col, str(value), fmt)

    def close(
        self, summary: Sequence[tuple[str, Any]] = (), totals: Sequence[tuple[str, int]] = ()
    ) -> None:
        """Finish, with an optional summary sheet of (label, value) pairs. `totals` (label,
        won) become the summary's totals row, under the filter in words, and the footer of
        every printed page of the data."""
        self._finish_sheet()
        if self._totals_row:
            self._write_totals()
        footer = " · ".join(f"{label} {value:,}" for label, value in totals)
        for sheet in self._all_sheets:
            sheet.set_footer(_footer_text(footer))
        if summary or totals:
            sheet = self._workbook.add_worksheet("요약")
            sheet.set_column(0, 0, 28)
            sheet.set_column(1, 1, 22)
            sheet.set_column(2, 2 + max(len(totals) - 1, 0), 18)
            for index, (label, value) in enumerate(summary):
                sheet.write_string(index, 0, label, self._header)
                if isinstance(value, int) and not isinstance(value, bool):
                    sheet.write_number(index, 1, value, self._formats["won"])
                else:
                    sheet.write_string(index, 1, str(value))
            row = len(summary) + 1
            if self._filter_text:
                sheet.write_string(row, 0, "조건", self._header)
                sheet.write_string(row, 1, self._filter_text)
                row += 2
            if totals:
                sheet.write_string(row, 0, "합계", self._header)
                for offset, (label, value) in enumerate(totals):
                    sheet.write_string(row, 1 + offset, label, self._header)
                    sheet.write_number(row + 1, 1 + offset, value, self._formats["won"])
                sheet.write_string(row + 1, 0, "합계 행", self._header)
            _print_setup(sheet, "요약", self._filter_text)
        self._workbook.close()


def _escape_header(text: str) -> str:
    """Page header/footer text: `&` starts a control code there, so it is doubled."""
    return text.replace("&", "&&")


def _footer_text(totals: str) -> str:
    text = _escape_header(totals)[:180]
    return (f"&L{text}" if text else "") + "&R&P / &N 쪽"


def _print_setup(sheet: Any, title: str, filter_text: str) -> None:
    """A4 landscape, one page wide (as many pages tall as needed), the title and filter
    in the page header."""
    sheet.set_landscape()
    sheet.set_paper(9)  # A4
    sheet.fit_to_pages(1, 0)
    sheet.set_margins(left=0.4, right=0.4, top=0.7, bottom=0.6)
    header = _escape_header(f"{title} — {filter_text}" if filter_text else title)[:200]
    sheet.set_header(f"&C{header}")


def temp_xlsx_path() -> str:
    handle, path = tempfile.mkstemp(prefix="gwangsan-", suffix=".xlsx")
    os.close(handle)
    return path

"""Payout files for finance staff: CSV and XLSX, in the bank's layout or a configured one.

A layout is a column mapping: which header, in which order, filled from which field of a
`PayoutLine`. Each field has one fixed cell kind, so no mapping can turn a bank code or an
account number into a number: codes and numbers are TEXT cells (`011` stays `011`), money
is an integer cell with `#,##0`, and a `district_fills` column is left blank (formatted as
text) for what the district adds from its own records, such as the resident registration
number we never collect (PIPA §24-2).

Layouts:
- `bank_transfer_layout()`: the bank bulk-transfer file (대량이체), with gross, taxes and
  net columns when withholding applies.
- `EHOJO_PAYEE_LAYOUT`: the district's payment-order upload (채주 일괄등록) of the local
  finance system e-호조. Its official layout is not public; this default is our assumption
  of its usual columns and must be replaced by the district's template (`layout_from_json`).
- `WITHHOLDING_LAYOUT`: what was withheld, per citizen, for the district's tax filing.

Both writers put a totals row in the file itself (`합계 (N건)` and the sums, as values, not
formulas: a control total must not follow a cell someone edited), the same row the ledger
and statements workbooks end with (`exports.totals_cells`). The CSV is UTF-8 with a
BOM (Korean Excel reads it as CP949 otherwise) and CRLF, text cells beginning with
`= + - @` are prefixed with an apostrophe (CSV injection; the payee checks already refuse
such holders, so only free text like an id can ever be touched). Excel drops the leading
zeros of a CSV it opens directly: people read the XLSX, machines take the CSV.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

import openpyxl
import xlsxwriter

from allowance import exports
from allowance.domain import transfer_results
from allowance.domain.payout_file import PayoutLine, payout_totals, withholding_applies
from allowance.domain.policy import Violation

BOM = "\ufeff"
CellKind = Literal["text", "won", "count"]
HEADER_CHARS_MAX = 40
LAYOUT_COLUMNS_MAX = 40
COLUMN_WIDTH_MAX = 80
SHEET_TITLE_CHARS_MAX = 31  # Excel's own limit
SHEET_TITLE_FORBIDDEN = frozenset("[]:*?/\\")
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


class LineField(StrEnum):
    """What a column may show; `district_fills` is a blank column the district completes."""

    SEQUENCE = "sequence"
    CITIZEN_ID = "citizen_id"
    PERIOD = "period"
    PAID_ON = "paid_on"
    BANK_CODE = "bank_code"
    BANK_NAME = "bank_name"
    ACCOUNT_NUMBER = "account_number"
    ACCOUNT_HOLDER = "account_holder"
    MEMO = "memo"
    GROSS_WON = "gross_won"
    TAXABLE_WON = "taxable_won"
    INCOME_TAX_WON = "income_tax_won"
    LOCAL_TAX_WON = "local_tax_won"
    AMOUNT_WON = "amount_won"
    WITHHOLDING_KIND = "withholding_kind"
    DISTRICT_FILLS = "district_fills"


FIELD_KINDS: Mapping[LineField, CellKind] = {
    LineField.SEQUENCE: "count",
    LineField.GROSS_WON: "won",
    LineField.TAXABLE_WON: "won",
    LineField.INCOME_TAX_WON: "won",
    LineField.LOCAL_TAX_WON: "won",
    LineField.AMOUNT_WON: "won",
}

WITHHOLDING_KIND_KO: Mapping[str, str] = {
    "none": "원천징수 없음",
    "business_income_3_3": "사업소득(3.3%)",
    "other_income_8_8": "기타소득(8.8%)",
}


def field_kind(field: LineField) -> CellKind:
    return FIELD_KINDS.get(field, "text")


@dataclass(frozen=True)
class LayoutColumn:
    header: str
    field: LineField
    width: int = 14


@dataclass(frozen=True)
class PayoutLayout:
    """A file's columns in order, its sheet title and whether it ends with a totals row.

    `transfers`: money is moved from this file (a bank or e-호조 upload), so it must name
    the bank code and account number; a report (the withholding list) need not.
    """

    name: str
    columns: tuple[LayoutColumn, ...]
    source: str
    totals_row: bool = True
    transfers: bool = True


def _value(line: PayoutLine, field: LineField) -> str | int | None:
    if field is LineField.DISTRICT_FILLS:
        return None
    if field is LineField.PERIOD:
        return str(line.period)
    if field is LineField.PAID_ON:
        return line.paid_on.isoformat()
    if field is LineField.WITHHOLDING_KIND:
        return WITHHOLDING_KIND_KO[line.withholding_kind.value]
    value: str | int = getattr(line, field.value)
    return value


# --- the layouts -------------------------------------------------------------------------

_C = LayoutColumn
_F = LineField


def bank_transfer_layout(with_withholding: bool) -> PayoutLayout:
    """The bank bulk-transfer file; gross and taxes shown only when something is withheld."""
    taxes = (
        (
            _C("지급총액(원)", _F.GROSS_WON, 14),
            _C("소득세(원)", _F.INCOME_TAX_WON, 12),
            _C("지방소득세(원)", _F.LOCAL_TAX_WON, 13),
        )
        if with_withholding
        else ()
    )
    return PayoutLayout(
        "이체",
        (
            _C("순번", _F.SEQUENCE, 7),
            _C("은행코드", _F.BANK_CODE, 9),
            _C("은행명", _F.BANK_NAME, 16),
            _C("계좌번호", _F.ACCOUNT_NUMBER, 20),
            _C("예금주", _F.ACCOUNT_HOLDER, 14),
            *taxes,
            _C("이체금액(원)", _F.AMOUNT_WON, 14),
            _C("적요", _F.MEMO, 22),
            _C("시민ID", _F.CITIZEN_ID, 28),
        ),
        "our bank bulk-transfer layout (대량이체): one transfer per row, amount = net paid",
    )


def layout_for(lines: Sequence[PayoutLine]) -> PayoutLayout:
    return bank_transfer_layout(withholding_applies(lines))


EHOJO_PAYEE_LAYOUT = PayoutLayout(
    "채주등록",
    (
        _C("순번", _F.SEQUENCE, 7),
        _C("채주명", _F.ACCOUNT_HOLDER, 14),
        _C("주민등록번호(구청 기재)", _F.DISTRICT_FILLS, 22),
        _C("은행코드", _F.BANK_CODE, 9),
        _C("은행명", _F.BANK_NAME, 16),
        _C("계좌번호", _F.ACCOUNT_NUMBER, 20),
        _C("예금주", _F.ACCOUNT_HOLDER, 14),
        _C("지급액(원)", _F.GROSS_WON, 14),
        _C("소득세(원)", _F.INCOME_TAX_WON, 12),
        _C("지방소득세(원)", _F.LOCAL_TAX_WON, 13),
        _C("실지급액(원)", _F.AMOUNT_WON, 14),
        _C("적요", _F.MEMO, 22),
        _C("비고(시민ID)", _F.CITIZEN_ID, 28),
    ),
    "ASSUMED: e-호조 채주 일괄등록 has no public layout; replace these columns with the"
    " district's own upload template (PUT the mapping as JSON, see docs/finance.md)",
)

WITHHOLDING_LAYOUT = PayoutLayout(
    "원천징수",
    (
        _C("순번", _F.SEQUENCE, 7),
        _C("시민ID", _F.CITIZEN_ID, 28),
        _C("성명(예금주)", _F.ACCOUNT_HOLDER, 14),
        _C("주민등록번호(구청 기재)", _F.DISTRICT_FILLS, 22),
        _C("귀속월", _F.PERIOD, 9),
        _C("지급일", _F.PAID_ON, 11),
        _C("소득구분", _F.WITHHOLDING_KIND, 16),
        _C("지급총액(원)", _F.GROSS_WON, 14),
        _C("소득금액(원)", _F.TAXABLE_WON, 14),
        _C("소득세(원)", _F.INCOME_TAX_WON, 12),
        _C("지방소득세(원)", _F.LOCAL_TAX_WON, 13),
        _C("실지급액(원)", _F.AMOUNT_WON, 14),
    ),
    "per-citizen withholding for the district's filing; the district fills the resident"
    " registration number from its own records (we never collect it, PIPA §24-2)",
    transfers=False,
)


def check_layout(layout: PayoutLayout, field: str = "layout") -> list[Violation]:
    """Why a configured layout cannot be used; empty when it can.

    Headers are non-blank, unique and short; the money must be in it (`amount_won`, what is
    transferred), and in a transfer layout the bank code and account number too; with a
    totals row the first column is not a money column, since the `합계` label takes its
    place.
    """
    violations: list[Violation] = []
    if (
        not layout.name.strip()
        or len(layout.name) > SHEET_TITLE_CHARS_MAX
        or any(c in SHEET_TITLE_FORBIDDEN for c in layout.name)
    ):
        violations.append(
            Violation(
                f"{field}.name",
                f"a sheet title of 1 to {SHEET_TITLE_CHARS_MAX} characters without []:*?/\\",
                "bad_name",
            )
        )
    if not 1 <= len(layout.columns) <= LAYOUT_COLUMNS_MAX:
        violations.append(
            Violation(f"{field}.columns", f"1 to {LAYOUT_COLUMNS_MAX} columns", "out_of_range")
        )
        return violations
    headers: set[str] = set()
    for i, column in enumerate(layout.columns):
        prefix = f"{field}.columns.{i}"
        header = column.header.strip()
        if not header or len(header) > HEADER_CHARS_MAX or header.startswith(FORMULA_LEADS):
            violations.append(
                Violation(
                    f"{prefix}.header",
                    f"1 to {HEADER_CHARS_MAX} characters, not starting with = + - @",
                    "bad_header",
                )
            )
        elif header in headers:
            violations.append(Violation(f"{prefix}.header", f"{header!r} repeated", "duplicate"))
        headers.add(header)
        if not 1 <= column.width <= COLUMN_WIDTH_MAX:
            violations.append(
                Violation(f"{prefix}.width", f"1 to {COLUMN_WIDTH_MAX}", "out_of_range")
            )
    fields = {column.field for column in layout.columns}
    needed_fields = [LineField.AMOUNT_WON]
    if layout.transfers:
        needed_fields += [LineField.BANK_CODE, LineField.ACCOUNT_NUMBER]
    for needed in needed_fields:
        if needed not in fields:
            violations.append(
                Violation(f"{field}.columns", f"a column of {needed.value} is needed", "missing")
            )
    if layout.totals_row and field_kind(layout.columns[0].field) == "won":
        violations.append(
            Violation(
                f"{field}.columns.0.field",
                "with a totals row the first column holds the 합계 label: not a money column",
                "totals_label",
            )
        )
    return violations


def layout_from_json(data: Mapping[str, Any]) -> tuple[PayoutLayout | None, list[Violation]]:
    """A layout from `{"name", "source", "totals_row", "transfers", "columns": [{"header",
    "field", "width"}]}`, or the reasons it is refused (unknown fields named by their index)."""
    violations: list[Violation] = []
    columns: list[LayoutColumn] = []
    raw_columns = data.get("columns")
    if not isinstance(raw_columns, list) or len(raw_columns) > LAYOUT_COLUMNS_MAX:
        return None, [
            Violation("layout.columns", f"a list of at most {LAYOUT_COLUMNS_MAX}", "invalid")
        ]
    for i, raw in enumerate(raw_columns):
        if not isinstance(raw, Mapping):
            violations.append(Violation(f"layout.columns.{i}", "an object", "invalid"))
            continue
        try:
            line_field = LineField(str(raw.get("field")))
        except ValueError:
            known = ", ".join(f.value for f in LineField)
            violations.append(
                Violation(f"layout.columns.{i}.field", f"one of {known}", "unknown_field")
            )
            continue
        width = raw.get("width", 14)
        if isinstance(width, bool) or not isinstance(width, int):
            violations.append(Violation(f"layout.columns.{i}.width", "an integer", "invalid"))
            continue
        columns.append(LayoutColumn(str(raw.get("header", "")), line_field, width))
    flags: dict[str, bool] = {}
    for flag in ("totals_row", "transfers"):
        value = data.get(flag, True)
        if not isinstance(value, bool):
            violations.append(Violation(f"layout.{flag}", "true or false", "invalid"))
        flags[flag] = bool(value)
    if violations:
        return None, violations
    layout = PayoutLayout(
        str(data.get("name", "")),
        tuple(columns),
        str(data.get("source", "")),
        totals_row=flags["totals_row"],
        transfers=flags["transfers"],
    )
    violations = check_layout(layout)
    if not layout.source.strip():
        violations.append(Violation("layout.source", "say whose template it is", "missing"))
    return (None, violations) if violations else (layout, [])


def layout_to_json(layout: PayoutLayout) -> dict[str, Any]:
    return {
        "name": layout.name,
        "source": layout.source,
        "totals_row": layout.totals_row,
        "transfers": layout.transfers,
        "columns": [
            {"header": c.header, "field": c.field.value, "width": c.width} for c in layout.columns
        ],
    }


# --- rows and totals ---------------------------------------------------------------------


def _totals_cells(layout: PayoutLayout, lines: Sequence[PayoutLine]) -> list[exports.Cell]:
    """The totals row: `합계 (N건)` in the first column, each money column's sum, else blank."""
    totals = payout_totals(lines)
    sums: dict[LineField, int] = {
        LineField.GROSS_WON: totals.gross_won,
        LineField.TAXABLE_WON: sum(line.taxable_won for line in lines),
        LineField.INCOME_TAX_WON: totals.income_tax_won,
        LineField.LOCAL_TAX_WON: totals.local_tax_won,
        LineField.AMOUNT_WON: totals.amount_won,
    }
    return exports.totals_cells(
        totals.lines_count, [sums.get(column.field) for column in layout.columns]
    )


def _checked(layout: PayoutLayout) -> PayoutLayout:
    violations = check_layout(layout)
    if violations:
        raise ValueError(f"layout {layout.name!r} refused: {[v.as_error() for v in violations]}")
    return layout


def _csv_cell(value: str | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    if value.startswith(FORMULA_LEADS):
        return "'" + value
    return value


def payout_csv(lines: Sequence[PayoutLine], layout: PayoutLayout) -> bytes:
    """The whole file: BOM, header row, one row per line, the totals row; CRLF; UTF-8."""
    _checked(layout)
    payout_totals(lines)  # the line bound
    buffer = io.StringIO()
    buffer.write(BOM)
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([column.header for column in layout.columns])
    for line in lines:
        writer.writerow([_csv_cell(_value(line, column.field)) for column in layout.columns])
    if layout.totals_row:
        writer.writerow([_csv_cell(cell) for cell in _totals_cells(layout, lines)])
    return buffer.getvalue().encode("utf-8")


def write_payout_xlsx(
    path: str, lines: Sequence[PayoutLine], layout: PayoutLayout, title: str
) -> None:
    """Write the workbook to `path` (synchronous: call it from a worker thread).

    Text cells carry the `@` (text) format, so a code typed over in Excel stays text too;
    money cells are integers with `#,##0`. Printed landscape on A4, one page wide, with the
    header row repeated on every page and `title` in the page header.
    """
    _checked(layout)
    payout_totals(lines)
    workbook = xlsxwriter.Workbook(path, {"constant_memory": True, "strings_to_formulas": False})
    try:
        _fill_workbook(workbook, lines, layout, title)
    finally:
        workbook.close()


def _fill_workbook(
    workbook: Any, lines: Sequence[PayoutLine], layout: PayoutLayout, title: str
) -> None:
    header_format = workbook.add_format(
        {"bold": True, "bg_color": "#DDEBF7", "border": 1, "align": "center", "text_wrap": True}
    )
    number_formats: dict[CellKind, str] = {"text": "@", "won": "#,##0", "count": "0"}
    formats: dict[CellKind, Any] = {
        kind: workbook.add_format({"num_format": fmt}) for kind, fmt in number_formats.items()
    }
    totals_formats: dict[CellKind, Any] = {
        kind: workbook.add_format({"num_format": fmt, **exports.TOTALS_STYLE})
        for kind, fmt in number_formats.items()
    }
    workbook.set_properties({"title": title, "subject": layout.source})
    sheet = workbook.add_worksheet(layout.name)
    kinds = [field_kind(column.field) for column in layout.columns]
    for index, column in enumerate(layout.columns):
        sheet.set_column(index, index, column.width, formats[kinds[index]])
    for index, column in enumerate(layout.columns):
        sheet.write_string(0, index, column.header, header_format)
    sheet.freeze_panes(1, 0)
    sheet.set_landscape()
    sheet.set_paper(9)  # A4
    sheet.fit_to_pages(1, 0)  # one page wide, as many pages tall as needed
    sheet.repeat_rows(0)
    sheet.set_header(f"&C{_escape_header(title)}")
    sheet.set_footer("&C&P / &N")
    row_formats = [formats[kind] for kind in kinds]
    for row, line in enumerate(lines, start=1):
        cells = [_value(line, column.field) for column in layout.columns]
        exports.write_cells(sheet, row, cells, row_formats)
    last_data_row = len(lines)
    sheet.autofilter(0, 0, last_data_row, len(layout.columns) - 1)
    if layout.totals_row:
        cells = _totals_cells(layout, lines)
        row_formats = [totals_formats["text"]] + [totals_formats[kind] for kind in kinds[1:]]
        exports.write_cells(sheet, last_data_row + 1, cells, row_formats)


def _escape_header(text: str) -> str:
    # `&` starts a control code in Excel page headers.
    return text.replace("&", "&&")


# --- the bank's results, uploaded as the payout file's XLSX ------------------------------


def parse_results_xlsx(body: bytes) -> tuple[list[transfer_results.ResultLine], list[Violation]]:
    """Result lines from an uploaded XLSX: the payout file's workbook with a `상태` column
    added, read from its first sheet (the totals sheet, if any, is not read). Cells are
    read as the text they show: `011` typed as text stays `011`, a whole number is its
    digits. Lines are named `line N` by their spreadsheet row, as in the CSV."""
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(body), read_only=True, data_only=True)
    except Exception:  # openpyxl raises zip, XML and its own errors for a broken file
        return [], [Violation("body", "the XLSX cannot be read as a workbook", "invalid")]
    try:
        sheet = workbook.worksheets[0] if workbook.worksheets else None
        if sheet is None:
            return [], [Violation("body", "the XLSX has no sheet", "empty")]
        rows: list[list[str]] = []
        for values in sheet.iter_rows(values_only=True):
            rows.append([_cell_text(v) for v in values])
            if len(rows) > transfer_results.RESULT_LINES_MAX + 10:  # header, totals and blank rows
                return [], [
                    Violation(
                        "body",
                        f"at most {transfer_results.RESULT_LINES_MAX:,} lines",
                        "out_of_range",
                    )
                ]
    finally:
        workbook.close()
    return transfer_results.parse_results_rows(rows, "XLSX")


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)

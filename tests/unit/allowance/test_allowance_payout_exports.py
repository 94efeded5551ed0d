"""Payout files read back: leading zeros survive as text, money is int with #,##0, and the
totals row in the file matches the lines."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import openpyxl
import pytest
from allowance import payout_exports as px
from allowance.domain import payout_file as pf
from allowance.domain import withholding as wh
from allowance.domain.calendar import Period

MAY = Period(2026, 5)
PAID_ON = date(2026, 6, 10)
BUSINESS = wh.WithholdingTable(
    (wh.statutory_entry(date(2026, 1, 1), wh.WithholdingKind.BUSINESS_INCOME_3_3),)
)
PAYEES = [
    ("cit_a", "011", "0012-3456-7890", "김광산"),  # NH: leading zeros in code and account
    ("cit_b", "071", "0101 2345 6789 01", "이수완"),  # post office, spaces
    ("-cit_c", "004", "123456789012", "박신창"),  # an id that looks like a formula lead
]


def make_lines(table: wh.WithholdingTable = wh.SEED_WITHHOLDING) -> list[pf.PayoutLine]:
    return [
        pf.payout_line(
            sequence=i,
            citizen_id=citizen_id,
            period=MAY,
            paid_on=PAID_ON,
            bank_code=code,
            account_number=account,
            account_holder=holder,
            withholding=wh.withholding_for(table, PAID_ON, 100_000 * i + 3_333),
            memo=pf.payout_memo(MAY),
        )
        for i, (citizen_id, code, account, holder) in enumerate(PAYEES, start=1)
    ]


def read_csv(raw: bytes) -> list[list[str]]:
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def read_xlsx(path: Path) -> openpyxl.worksheet.worksheet.Worksheet:
    book = openpyxl.load_workbook(path)
    assert len(book.sheetnames) == 1
    return book[book.sheetnames[0]]


def test_bank_csv_has_korean_headers_text_codes_and_a_totals_row() -> None:
    """Without withholding: no tax columns; `011` and `00123…` stay as written; the last row
    is `합계 (3건)` with the sum of the amounts."""
    lines = make_lines()
    rows = read_csv(px.payout_csv(lines, px.layout_for(lines)))
    assert rows[0] == [
        "순번",
        "은행코드",
        "은행명",
        "계좌번호",
        "예금주",
        "이체금액(원)",
        "적요",
        "시민ID",
    ]
    assert rows[1] == [
        "1",
        "011",
        "NH농협은행",
        "001234567890",
        "김광산",
        "103333",
        "광산시민수당 2026-05",
        "cit_a",
    ]
    assert rows[2][1:4] == ["071", "우체국", "01012345678901"]
    assert rows[3][-1] == "'-cit_c"  # never runs as a formula
    assert rows[4][0] == "합계 (3건)" and int(rows[4][5]) == sum(line.amount_won for line in lines)
    assert len(rows) == 5


def test_bank_csv_with_withholding_shows_gross_taxes_and_net() -> None:
    """Business income: gross, income tax and local tax columns appear, and their totals
    satisfy gross = taxes + transferred in the file itself."""
    lines = make_lines(BUSINESS)
    rows = read_csv(px.payout_csv(lines, px.layout_for(lines)))
    header = rows[0]
    assert header[5:9] == ["지급총액(원)", "소득세(원)", "지방소득세(원)", "이체금액(원)"]
    assert rows[1][5:9] == ["103333", "3090", "300", "99943"]
    total = [int(x) for x in rows[-1][5:9]]
    assert total[0] == total[1] + total[2] + total[3] == pf.payout_totals(lines).gross_won


def test_xlsx_keeps_leading_zeros_as_text_and_money_as_formatted_integers(tmp_path: Path) -> None:
    """Read back with openpyxl: code and account cells are strings (type `s`) with the text
    format, money cells are int with `#,##0`, and the totals row matches."""
    lines = make_lines(BUSINESS)
    layout = px.layout_for(lines)
    path = tmp_path / "payout.xlsx"
    px.write_payout_xlsx(str(path), lines, layout, "광산시민수당 2026-05 지급")
    sheet = read_xlsx(path)
    headers = [cell.value for cell in sheet[1]]
    col = {header: i + 1 for i, header in enumerate(headers)}
    code = sheet.cell(2, col["은행코드"])
    account = sheet.cell(2, col["계좌번호"])
    assert (code.value, code.data_type, code.number_format) == ("011", "s", "@")
    assert (account.value, account.data_type) == ("001234567890", "s")
    assert sheet.cell(3, col["계좌번호"]).value == "01012345678901"
    amount = sheet.cell(2, col["이체금액(원)"])
    assert type(amount.value) is int and amount.number_format == "#,##0"
    assert amount.value == lines[0].amount_won
    assert sheet.cell(4, col["시민ID"]).value == "-cit_c"  # XLSX text never becomes a formula
    totals_row = len(lines) + 2
    assert sheet.cell(totals_row, 1).value == "합계 (3건)"
    for header, expected in (
        ("이체금액(원)", pf.payout_totals(lines).amount_won),
        ("지급총액(원)", pf.payout_totals(lines).gross_won),
        ("소득세(원)", pf.payout_totals(lines).income_tax_won),
    ):
        cell = sheet.cell(totals_row, col[header])
        assert cell.value == expected and type(cell.value) is int
        assert cell.number_format == "#,##0"
    assert sheet.max_row == totals_row


def test_xlsx_print_setup_landscape_one_page_wide_header_repeated(tmp_path: Path) -> None:
    """Landscape A4, fit to one page wide (any height), row 1 printed on every page, the
    header frozen for the screen, the title in the page header and page numbers below."""
    lines = make_lines()
    path = tmp_path / "payout.xlsx"
    px.write_payout_xlsx(str(path), lines, px.layout_for(lines), "광산시민수당 2026-05 지급")
    sheet = read_xlsx(path)
    assert sheet.page_setup.orientation == "landscape"
    assert sheet.sheet_properties.pageSetUpPr.fitToPage
    # fitToWidth 1 is the OOXML default, which xlsxwriter leaves out of the XML.
    assert sheet.page_setup.fitToWidth in (None, 1) and sheet.page_setup.fitToHeight == 0
    assert sheet.print_title_rows == "$1:$1"
    assert sheet.freeze_panes == "A2"
    assert sheet.oddHeader.center.text == "광산시민수당 2026-05 지급"
    assert sheet.oddFooter.center.text == "&P / &N"


def test_ehojo_layout_leaves_the_resident_number_column_blank_as_text(tmp_path: Path) -> None:
    """The district's upload: its assumed columns in order, the column the district fills
    from its own records is present and empty, and the layout says it is an assumption."""
    lines = make_lines(BUSINESS)
    layout = px.EHOJO_PAYEE_LAYOUT
    assert "ASSUMED" in layout.source and px.check_layout(layout) == []
    path = tmp_path / "ehojo.xlsx"
    px.write_payout_xlsx(str(path), lines, layout, "채주 일괄등록 2026-05")
    sheet = read_xlsx(path)
    assert [c.value for c in sheet[1]][:3] == ["순번", "채주명", "주민등록번호(구청 기재)"]
    blank = sheet.cell(2, 3)
    assert blank.value is None and blank.number_format == "@"
    rows = read_csv(px.payout_csv(lines, layout))
    assert rows[1][2] == "" and rows[1][3] == "011"


def test_withholding_layout_names_the_kind_and_the_taxable_amount() -> None:
    """A report, not a transfer file: no bank columns are needed, the kind is in Korean."""
    lines = make_lines(BUSINESS)
    assert px.check_layout(px.WITHHOLDING_LAYOUT) == []
    rows = read_csv(px.payout_csv(lines, px.WITHHOLDING_LAYOUT))
    assert rows[0][3] == "주민등록번호(구청 기재)" and rows[1][3] == ""
    assert rows[1][4:8] == ["2026-05", "2026-06-10", "사업소득(3.3%)", "103333"]


def test_a_configured_mapping_round_trips_and_bad_ones_name_their_field() -> None:
    """A district template as JSON becomes a layout; unknown fields, repeated headers, a
    layout without the amount, or money under the totals label are refused by field."""
    layout, violations = px.layout_from_json(px.layout_to_json(px.EHOJO_PAYEE_LAYOUT))
    assert violations == [] and layout == px.EHOJO_PAYEE_LAYOUT
    custom = {
        "name": "업로드",
        "source": "광산구 재무과 양식 2026",
        "totals_row": False,
        "columns": [
            {"header": "금액", "field": "amount_won"},
            {"header": "은행", "field": "bank_code"},
            {"header": "계좌", "field": "account_number", "width": 20},
        ],
    }
    layout, violations = px.layout_from_json(custom)
    assert violations == [] and layout is not None and not layout.totals_row
    rows = read_csv(px.payout_csv(make_lines(), layout))
    assert rows[0] == ["금액", "은행", "계좌"] and rows[1] == ["103333", "011", "001234567890"]
    assert len(rows) == 4  # no totals row when the upload refuses one

    _, violations = px.layout_from_json({**custom, "columns": [{"header": "x", "field": "rrn"}]})
    assert [(v.field, v.code) for v in violations] == [("layout.columns.0.field", "unknown_field")]
    _, violations = px.layout_from_json(
        {
            **custom,
            "totals_row": True,
            "columns": [*custom["columns"], {"header": "은행", "field": "memo"}],  # type: ignore[list-item]
        }
    )
    assert {(v.field, v.code) for v in violations} == {
        ("layout.columns.3.header", "duplicate"),
        ("layout.columns.0.field", "totals_label"),
    }
    _, violations = px.layout_from_json({**custom, "columns": custom["columns"][1:], "source": ""})  # type: ignore[index]
    assert {(v.field, v.code) for v in violations} == {
        ("layout.columns", "missing"),
        ("layout.source", "missing"),
    }


def test_writers_refuse_a_layout_that_fails_its_check(tmp_path: Path) -> None:
    bad = px.PayoutLayout("x/y", (px.LayoutColumn("금액", px.LineField.AMOUNT_WON),), "s")
    with pytest.raises(ValueError):
        px.payout_csv(make_lines(), bad)
    with pytest.raises(ValueError):
        px.write_payout_xlsx(str(tmp_path / "x.xlsx"), make_lines(), bad, "t")


def test_an_empty_month_still_has_a_header_and_a_zero_total(tmp_path: Path) -> None:
    rows = read_csv(px.payout_csv([], px.layout_for([])))
    assert rows[1][0] == "합계 (0건)" and rows[1][5] == "0"
    path = tmp_path / "empty.xlsx"
    px.write_payout_xlsx(str(path), [], px.layout_for([]), "빈 달")
    assert read_xlsx(path).cell(2, 6).value == 0

"""Issue 16: a closed month's statement shows its payout line (gross, both taxes, net, a
failed transfer paid again) and the bank's result; an open month shows none of it, and the
export writes the result in Korean. Issue 17: the export's last columns name the month's
shifts (facilities once, then a title and a posting id per posting)."""

from __future__ import annotations

from allowance import exports
from allowance.domain.calendar import Period
from allowance.store import StatementRow
from allowance.views import StatementShift, _statement_export_row, _statement_row

BASE = {
    "citizen_id": "ctz_a",
    "lines_count": 1,
    "minutes_paid": 240,
    "gross_won": 53_212,
    "capped_won": 0,
    "payable_won": 53_212,
    "adjustment_won": 0,
    "adjustment_periods": None,
}


def test_a_closed_statement_shows_the_withholding_the_carry_and_the_failed_transfer() -> None:
    row = StatementRow(
        **BASE,
        balance_won=53_212,
        payout_won=53_212,
        carried_forward_won=0,
        held_back=False,
        withholding_kind="business_income_3_3",
        payout_gross_won=53_212,
        income_tax_won=1_590,
        local_income_tax_won=150,
        failed_carried_in_won=20_000,
        transfer_won=71_472,
        transfer_status="failed",
        transfer_reason="해지 계좌",
    )
    shown = _statement_row(row, Period(2031, 3), closed=True)
    assert shown["net_won"] == 53_212 - 1_590 - 150
    assert shown["transfer_won"] == shown["net_won"] + shown["failed_carried_in_won"]
    assert (shown["income_tax_won"], shown["local_income_tax_won"]) == (1_590, 150)
    assert "이체불능 이월분 20,000원" in shown["note"] and "해지 계좌" in shown["note"]
    shifts = [
        StatementShift("pst_b", "fac_1", "광산구 작은도서관", "책 정리"),
        StatementShift("pst_c", "fac_1", "광산구 작은도서관", "서가 정리"),
    ]
    exported = _statement_export_row(shown, shifts)
    assert exported["transfer_status"] == "이체불능"
    line = exports.csv_chunk(exports.STATEMENT_COLUMNS, [exported]).decode()
    assert line.rstrip("\r\n").endswith(
        ",53212,1590,150,51472,20000,71472,이체불능,해지 계좌,"
        "광산구 작은도서관,책 정리; 서가 정리,pst_b; pst_c"
    )


def test_an_open_statement_has_no_payout_line_and_a_closed_one_without_payout_has_zeros() -> None:
    open_ = _statement_row(StatementRow(**BASE), Period(2031, 3), closed=False)
    assert open_["net_won"] is None and open_["transfer_status"] is None
    held = StatementRow(
        **BASE, balance_won=53_212, payout_won=0, carried_forward_won=53_212, held_back=True
    )
    shown = _statement_row(held, Period(2031, 3), closed=True)
    assert (shown["payout_gross_won"], shown["net_won"], shown["transfer_won"]) == (0, 0, 0)
    assert _statement_export_row(shown)["transfer_status"] == ""
    header = exports.csv_chunk(exports.STATEMENT_COLUMNS, [], header=True).decode("utf-8-sig")
    assert header.rstrip("\r\n").endswith(
        "지급총액(원),소득세(원),지방소득세(원),실지급액(원),이체불능 이월분(원),이체금액(원),이체결과,이체불능 사유"
        ",시설,근무명,공고"
    )
    assert _statement_export_row(shown)["shift_titles"] == ""  # no payout lines, no shifts

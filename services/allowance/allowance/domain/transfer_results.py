"""The bank's transfer results as finance uploads them: the payout file's own CSV layout
with a status column added (`상태` or `status`: `paid`/`성공` or `failed`/`실패`) and an
optional reason column (`사유` or `reason`). Lines are found by the citizen id column the
payout file carries (`시민ID`, `비고(시민ID)` or `citizen_id`); the totals row (`합계 …`)
and blank rows are skipped. The same layout read from the payout file's XLSX comes here
as rows (`payout_exports.parse_results_xlsx`). Pure: bytes in, lines or the reasons they are
refused out, each naming its line, so a bad file writes nothing."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from allowance.domain.policy import Violation

RESULT_LINES_MAX = 50_000  # a payout file's own bound (payout_file.PAYOUT_LINES_MAX)
REASON_CHARS_MAX = 200
CITIZEN_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
CITIZEN_HEADERS = ("시민ID", "비고(시민ID)", "citizen_id")
STATUS_HEADERS = ("상태", "status", "이체결과")
REASON_HEADERS = ("사유", "reason", "불능사유")
STATUS_WORDS: Mapping[str, Literal["paid", "failed"]] = {
    "paid": "paid",
    "성공": "paid",
    "정상": "paid",
    "failed": "failed",
    "실패": "failed",
    "불능": "failed",
    "이체불능": "failed",
}


@dataclass(frozen=True)
class ResultLine:
    citizen_id: str
    status: Literal["paid", "failed"]
    reason: str
    field: str  # where it came from, for problems: `line 3`


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    for i, cell in enumerate(header):
        if cell.strip().lstrip("'") in names:
            return i
    return None


def parse_results_csv(body: bytes) -> tuple[list[ResultLine], list[Violation]]:
    """Result lines from an uploaded CSV (UTF-8, BOM optional), or why it is refused."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], [Violation("body", "the CSV is not UTF-8 text", "invalid")]
    try:
        # newline="": the csv module reads line ends itself (a bank's file may end lines
        # with \r\n or a lone \r; without it a lone \r in a field is an error).
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        return [], [Violation("body", f"the CSV could not be read: {exc}", "invalid")]
    return parse_results_rows(rows, "CSV")


def parse_results_rows(
    rows: list[list[str]], what: str
) -> tuple[list[ResultLine], list[Violation]]:
    """Result lines from a table's rows (the first the header), or why it is refused."""
    if not rows:
        return [], [Violation("body", f"the {what} is empty", "empty")]
    header = rows[0]
    citizen_col = _column(header, CITIZEN_HEADERS)
    status_col = _column(header, STATUS_HEADERS)
    reason_col = _column(header, REASON_HEADERS)
    missing = [
        Violation("line 1", f"a column named {names[0]!r} is needed", "missing")
        for col, names in ((citizen_col, CITIZEN_HEADERS), (status_col, STATUS_HEADERS))
        if col is None
    ]
    if missing:
        return [], missing
    assert citizen_col is not None and status_col is not None
    lines: list[ResultLine] = []
    violations: list[Violation] = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row) or (row and row[0].startswith("합계")):
            continue
        field = f"line {number}"
        citizen_id = row[citizen_col].strip() if citizen_col < len(row) else ""
        word = row[status_col].strip().lower() if status_col < len(row) else ""
        reason = row[reason_col].strip() if reason_col is not None and reason_col < len(row) else ""
        if not CITIZEN_ID.match(citizen_id):
            violations.append(Violation(f"{field}.citizen_id", "not a citizen id", "invalid"))
        elif word not in STATUS_WORDS:
            violations.append(
                Violation(f"{field}.status", f"{word!r}: paid or failed (성공/실패)", "invalid")
            )
        elif len(reason) > REASON_CHARS_MAX:
            violations.append(
                Violation(f"{field}.reason", f"at most {REASON_CHARS_MAX} characters", "invalid")
            )
        else:
            lines.append(ResultLine(citizen_id, STATUS_WORDS[word], reason, field))
        if len(lines) > RESULT_LINES_MAX:
            return [], [Violation("body", f"at most {RESULT_LINES_MAX:,} lines", "out_of_range")]
    if not lines and not violations:
        violations.append(Violation("body", f"no result lines in the {what}", "empty"))
    return lines, violations

"""Korean texts of every problem+json answer, by stable code (issue: staff of a children's
centre read the console in Korean, not `attendance opens when the shift starts`).

A problem keeps its machine-readable `code` and English `detail` for integrators; a caller
that prefers Korean (`Accept-Language: ko`, what the consoles send) gets `title` and `detail`
in Korean, with the English kept in `detail_en`. A call site may give a more precise Korean
sentence (`Problem(..., ko="...")`, numbers formatted with `won()`); otherwise the text here
for the code is used. `tests/unit/shared/test_problem_texts.py` walks every `Problem(...)`
in the code and fails when a code has no Korean text.
"""

from __future__ import annotations

# code -> (title, detail). Short, polite (해요체/합쇼체 as public services write), and
# saying what to do next where there is something to do.
PROBLEM_KO: dict[str, tuple[str, str]] = {
    "approval_decided": (
        "이미 처리된 결재",
        "이미 승인 또는 반려된 요청입니다. 다시 처리할 수 없습니다.",
    ),
    "approval_forbidden": ("결재 권한 없음", "이 역할로는 이 결재 작업을 할 수 없습니다."),
    "approval_required": (
        "결재 필요",
        "이 작업은 결재가 필요합니다. 담당자가 요청하고 다른 결재권자가 승인해 주세요.",
    ),
    "approval_self": ("본인 결재 불가", "본인이 올린 요청은 다른 결재권자가 승인해야 합니다."),
    "csrf_failed": (
        "보안 토큰 오류",
        "보안 토큰이 없거나 맞지 않아 처리하지 않았습니다. 화면을 새로 고친 뒤 다시 해 주세요.",
    ),
    "already_delivered": ("이미 전달됨", "이 알림은 이미 전달되었습니다."),
    "attendance_not_open": ("출석 기록 전", "출석은 근무가 시작된 뒤에 기록할 수 있습니다."),
    "already_checked_in": (
        "이미 입실함",
        "이 예약은 이미 입실 처리되었습니다. 시각을 고치려면 출석 기록에서 고쳐 주세요.",
    ),
    "already_checked_out": (
        "이미 퇴실함",
        "이 예약은 이미 퇴실 처리되었습니다. 시각을 고치려면 출석 기록에서 고쳐 주세요.",
    ),
    "check_in_closed": (
        "입실·퇴실 마감",
        "근무가 끝나고 시간이 지나 코드로 입실·퇴실할 수 없습니다. 출석 기록에 시각을 적어 주세요.",
    ),
    "check_in_code_unknown": (
        "없는 입실 코드",
        "이 근무의 확정된 예약 중에 이 입실 코드가 없습니다. 코드를 다시 확인해 주세요.",
    ),
    "check_in_not_open": (
        "입실 시작 전",
        "입실은 근무 시작 전 정해진 시간부터 할 수 있습니다. 조금 뒤에 다시 시도해 주세요.",
    ),
    "not_checked_in": (
        "입실 기록 없음",
        "입실하지 않은 예약은 퇴실할 수 없습니다. 먼저 입실 처리해 주세요.",
    ),
    "attendance_window_closed": (
        "출석 기록 기한 지남",
        "출석을 기록할 수 있는 기간이 지났습니다.",
    ),
    "body_too_large": ("요청이 너무 큼", "요청 본문이 허용된 크기를 넘었습니다."),
    "body_timeout": ("요청 본문 시간 초과", "요청 본문이 제한 시간 안에 도착하지 않았습니다."),
    "booking_not_in_roster": ("명단에 없는 예약", "이 근무의 확정 명단에 없는 예약입니다."),
    "budget_below_commitments": (
        "예산 감액 불가",
        "이미 예약되거나 지급된 금액보다 적게 예산을 줄일 수 없습니다.",
    ),
    "budget_changed": (
        "예산이 바뀜",
        "그사이 다른 사람이 예산을 바꾸었습니다. 현재 예산을 다시 확인한 뒤 시도해 주세요.",
    ),
    "below_minimum_wage": ("최저임금 미만", "시급이 그해 법정 최저임금보다 낮습니다."),
    "budget_insufficient": ("예산 부족", "이 근무에 필요한 예산이 부족합니다."),
    "capacity": ("정원 오류", "정원이 허용된 범위를 벗어났습니다."),
    "capacity_below_confirmed": (
        "정원 축소 불가",
        "이미 확정된 인원보다 정원을 줄일 수 없습니다.",
    ),
    "clock_backwards": ("시계를 되돌릴 수 없음", "공유 시계는 앞으로만 움직일 수 있습니다."),
    "facility_suspended": ("정지된 기관", "이용이 정지된 기관에는 새 키를 발급하지 않습니다."),
    "facility_not_suspended": ("정지되지 않은 기관", "이용이 정지된 기관이 아닙니다."),
    "forbidden": ("권한 없음", "이 자격 증명으로는 이 기능을 사용할 수 없습니다."),
    "http_error": ("요청 오류", "요청을 처리할 수 없습니다."),
    "idempotency_key_in_flight": (
        "처리 중인 요청",
        "같은 Idempotency-Key의 요청을 아직 처리하고 있습니다. 잠시 뒤 다시 시도해 주세요.",
    ),
    "idempotency_key_reused": (
        "다른 요청에 쓰인 키",
        "이 Idempotency-Key는 다른 내용의 요청에 이미 쓰였습니다.",
    ),
    "internal_error": (
        "내부 오류",
        "예상하지 못한 오류가 났습니다. 요청 번호와 함께 기록되었습니다.",
    ),
    "invalid_account": ("알 수 없는 계정과목", "알 수 없는 계정과목입니다."),
    "invalid_as_of": ("기준 시각 오류", "기준 시각(as_of)에는 시간대(예: +09:00)가 필요합니다."),
    "invalid_characters": ("허용되지 않는 문자", "입력에 쓸 수 없는 문자(NUL)가 들어 있습니다."),
    "invalid_cursor": ("잘못된 페이지 커서", "이 목록에서 받은 페이지 커서가 아닙니다."),
    "invalid_filter": ("잘못된 조회 조건", "조회 조건이 올바르지 않습니다."),
    "invalid_payload": ("잘못된 웹훅 내용", "웹훅 본문이 약속된 형식이 아닙니다."),
    "invalid_period": ("잘못된 월", "월은 YYYY-MM 형식이어야 합니다."),
    "report_range_reversed": (
        "기간이 거꾸로 됨",
        "보고서 기간의 시작(from)이 끝(to)보다 늦습니다. 시작 월을 끝 월보다 앞서게 해 주세요.",
    ),
    "report_range_too_long": (
        "기간이 너무 김",
        "보고서 기간이 허용된 최대 개월 수를 넘습니다. 기간을 나누어 요청해 주세요.",
    ),
    "invalid_request": ("잘못된 요청", "입력값을 확인해 주세요. 잘못된 항목을 표시했습니다."),
    "invalid_signature": ("서명 오류", "웹훅 서명이 없거나 맞지 않거나 너무 오래되었습니다."),
    "method_not_allowed": ("허용되지 않는 방법", "이 주소에서는 이 요청 방법을 쓸 수 없습니다."),
    "no_budget": ("예산 없음", "이 회계연도의 예산이 아직 정해지지 않았습니다."),
    "not_found": ("찾을 수 없음", "요청한 항목을 찾을 수 없습니다."),
    "payee_refused": (
        "계좌 정보 확인 필요",
        "저장된 계좌 정보가 은행 확인을 통과하지 못합니다."
        " 계좌 정보를 다시 입력한 뒤 파일을 받아 주세요.",
    ),
    "period_already_paid": (
        "이미 지급 완료된 달",
        "이 달은 모든 줄이 지급 완료로 기록되었습니다. 그 뒤에는 이체불능을 기록할 수 없습니다.",
    ),
    "transfer_line_unknown": (
        "지급 파일에 없는 줄",
        "이 달의 지급 파일에 없는 시민입니다. 다른 달의 결과인지 확인해 주세요.",
    ),
    "transfer_result_conflict": (
        "이체 결과 충돌",
        "이 줄에는 이미 다른 이체 결과가 기록되어 있습니다. 한 줄의 결과는 한 번만 기록합니다.",
    ),
    "transfer_results_invalid": (
        "잘못된 이체 결과 파일",
        "이체 결과 파일의 형식이 올바르지 않습니다. 표시된 줄을 고친 뒤 다시 올려 주세요.",
    ),
    "payee_missing": ("계좌 정보 없음", "지급에 필요한 계좌 정보가 없습니다."),
    "invalid_payee": (
        "계좌 정보 오류",
        "계좌 정보를 받을 수 없습니다. 표시된 항목(은행 코드, 계좌번호, 예금주)을 고쳐 주세요.",
    ),
    "citizen_not_found": (
        "없는 시민 ID",
        "이 ID의 시민이 없습니다. 지급 내역서에 적힌 시민 ID(ctz_로 시작)를 확인해 주세요.",
    ),
    "payee_sealing_unavailable": (
        "계좌 정보 접수 불가",
        "지금은 계좌 정보를 안전하게 접수할 수 없습니다. 잠시 뒤 다시 보내 주세요.",
    ),
    "period_not_closed": ("마감 전인 달", "이 달은 아직 마감되지 않았습니다. 먼저 마감해 주세요."),
    "period_not_ended": ("끝나지 않은 달", "달이 끝난 뒤에 마감할 수 있습니다."),
    "posting_not_cancellable": ("취소할 수 없는 근무", "이 상태의 근무는 취소할 수 없습니다."),
    "posting_not_running": (
        "출석을 받을 수 없는 근무",
        "이 상태의 근무에는 출석을 기록할 수 없습니다.",
    ),
    "queue_unavailable": ("일시적 오류", "요청을 대기열에 넣지 못했습니다. 다시 시도해 주세요."),
    "no_minimum_wage_for_year": (
        "최저임금 미등록",
        "그해의 법정 최저임금이 등록되지 않아 시급을 확인할 수 없습니다."
        " 먼저 최저임금을 입력해 주세요.",
    ),
    "posting_not_editable": ("수정할 수 없는 근무", "이 상태의 근무는 수정할 수 없습니다."),
    "service_unavailable": (
        "일시적 장애",
        "서비스가 잠시 응답할 수 없습니다. 잠시 뒤 다시 시도해 주세요.",
    ),
    "shift_started": ("이미 시작된 근무", "근무가 이미 시작되어 취소할 수 없습니다."),
    "starting": ("시작 중", "서비스가 시작되는 중입니다. 잠시 뒤 다시 시도해 주세요."),
    "times_locked": (
        "시간 변경 불가",
        "예약된 사람이 있어 근무 시간을 바꿀 수 없습니다.",
    ),
    "too_many_requests": ("요청이 너무 많음", "요청이 너무 많습니다. 잠시 뒤 다시 시도해 주세요."),
    "unauthorized": ("인증 필요", "올바른 키 또는 토큰으로 로그인해 주세요."),
    # Policy-table refusals answer with the code of their first violation.
    "duplicate": ("중복된 값", "같은 값이 두 번 들어 있습니다."),
    "empty": ("빈 표", "표에 항목이 하나 이상 있어야 합니다."),
    "missing": ("빠진 값", "꼭 필요한 값이 빠졌습니다."),
    "out_of_range": ("범위를 벗어난 값", "값이 허용된 범위를 벗어났습니다."),
    # Withholding tables, payout memos and payout file layouts (issue 16, docs/finance.md).
    "invalid": ("잘못된 값", "값의 형식이 올바르지 않습니다."),
    "not_integer": (
        "정수가 아닌 값",
        "정수로 입력해 주세요. 세율은 베이시스포인트 정수입니다(1% = 100).",
    ),
    "not_ordered": (
        "날짜 순서 오류",
        "항목은 적용 시작일이 빠른 것부터, 같은 날짜 없이 차례로 입력해 주세요.",
    ),
    "not_used": ("쓰지 않는 값", "이 원천징수 종류에서는 쓰지 않는 값입니다. 0으로 두어 주세요."),
    "unknown": ("알 수 없는 값", "허용된 값 중 하나가 아닙니다."),
    "memo_too_long": (
        "적요가 너무 김",
        "적요는 월을 포함해 한글 10자(20바이트)까지입니다. 접두어를 줄여 주세요.",
    ),
    "memo_unusable": (
        "쓸 수 없는 적요",
        "적요 접두어가 비었거나 은행 적요에 쓸 수 없는 문자가 들어 있습니다.",
    ),
    "bad_name": ("시트 이름 오류", "시트 이름은 1~31자이고 [ ] : * ? / \\ 를 쓸 수 없습니다."),
    "bad_header": ("열 제목 오류", "열 제목은 1~40자이고 = + - @ 로 시작할 수 없습니다."),
    "unknown_field": (
        "알 수 없는 항목",
        "지급 파일에 없는 항목입니다. docs/finance.md의 항목 중에서 골라 주세요.",
    ),
    "totals_label": (
        "합계 칸 충돌",
        "합계 행을 넣으면 첫 열에 '합계'가 들어가므로 금액 열일 수 없습니다.",
    ),
}

# Field-level error codes (`errors[].code`): the project's domain codes and pydantic's
# common validation types, so a form can say in Korean what is wrong with each field.
FIELD_KO: dict[str, str] = {
    "after_start": "근무 시작 시각보다 늦을 수 없습니다.",
    "applications_close_at": "신청 마감 시각이 올바르지 않습니다.",
    "below_confirmed": "이미 확정된 인원보다 적게 할 수 없습니다.",
    "capacity_out_of_range": "정원은 허용된 범위 안이어야 합니다.",
    "duration_out_of_range": "근무 시간이 허용된 범위를 벗어났습니다.",
    "not_in_roster": "이 근무의 확정 명단에 없는 예약입니다.",
    "outside_shift": "근무 시간 밖의 시각입니다.",
    "required_for_draw": "추첨 방식에는 꼭 필요합니다.",
    "too_far_ahead": "너무 먼 날짜입니다.",
    "too_many": "한 번에 보낼 수 있는 개수를 넘었습니다.",
    "window_closed": "기록할 수 있는 기간이 지났습니다.",
    "big": "값이 너무 큽니다.",
    "booked": "이미 예약이 있어 바꿀 수 없습니다.",
    "closed": "이미 닫혀 있습니다.",
    "cursor": "이 목록의 페이지 커서가 아닙니다.",
    "dong": "광산구 행정동이 아닙니다.",
    "duplicate": "중복된 값입니다.",
    "empty": "비어 있으면 안 됩니다.",
    "ends_before": "끝나는 시각이 시작 시각보다 빠릅니다.",
    "in_past": "이미 지난 시각입니다.",
    "missing": "꼭 입력해야 합니다.",
    "below_minimum_wage": "그해 법정 최저임금보다 낮습니다.",
    "no_minimum_wage_for_year": "그해의 법정 최저임금이 등록되지 않았습니다.",
    "no_show": "결석으로 기록된 사람에게는 시각을 넣을 수 없습니다.",
    "out_before_in": "퇴실 시각이 입실 시각보다 빠릅니다.",
    "out_of_range": "허용된 범위를 벗어났습니다.",
    "timezone_required": "시각에는 시간대(예: +09:00)가 필요합니다.",
    "unknown": "알 수 없는 항목입니다.",
    # Withholding tables, payout memos and layouts, payee bank details (issue 16).
    "invalid": "형식이 올바르지 않습니다.",
    "not_integer": "정수여야 합니다.",
    "not_ordered": "적용 시작일이 앞 항목보다 늦어야 합니다.",
    "not_used": "이 종류에서는 쓰지 않으니 0으로 두어 주세요.",
    "memo_too_long": "월을 포함해 한글 10자(20바이트)를 넘습니다.",
    "memo_unusable": "비었거나 은행 적요에 쓸 수 없는 문자가 있습니다.",
    "bad_name": "1~31자, [ ] : * ? / \\ 없이 써 주세요.",
    "bad_header": "1~40자, = + - @ 로 시작하지 않게 써 주세요.",
    "unknown_field": "지급 파일에 없는 항목입니다.",
    "totals_label": "합계 행이 있으면 첫 열은 금액 열일 수 없습니다.",
    "unknown_bank": "등록된 은행 코드(3자리)가 아닙니다.",
    "bad_account_number": "계좌번호는 숫자 10~16자리입니다(하이픈과 띄어쓰기는 괜찮습니다).",
    "holder_missing": "예금주를 입력해 주세요.",
    "holder_too_long": "예금주는 50자까지입니다.",
    "holder_bad_character": "예금주는 = + - @ 로 시작하거나 제어 문자를 담을 수 없습니다.",
    # shared.schemas.NonBlank: spaces only (after trimming) and text Postgres cannot store
    "string_blank": "공백만으로는 입력할 수 없습니다. 내용을 적어 주세요.",
    "string_unstorable": "쓸 수 없는 문자(NUL 등)가 들어 있습니다.",
    # pydantic's error types
    "extra_forbidden": "알 수 없는 항목입니다.",
    "string_too_short": "너무 짧습니다.",
    "string_too_long": "너무 깁니다.",
    "string_pattern_mismatch": "형식이 맞지 않습니다.",
    "string_type": "문자열이어야 합니다.",
    "string_unicode": "올바른 유니코드 문자열이 아닙니다.",
    "null_forbidden": "비워 둘 수 없는 항목입니다. 바꿀 값을 보내 주세요.",
    "int_type": "정수여야 합니다.",
    "int_parsing": "정수여야 합니다.",
    "bool_type": "참/거짓 값이어야 합니다.",
    "bool_parsing": "참/거짓 값이어야 합니다.",
    "greater_than": "값이 너무 작습니다.",
    "greater_than_equal": "값이 너무 작습니다.",
    "less_than": "값이 너무 큽니다.",
    "less_than_equal": "값이 너무 큽니다.",
    "literal_error": "허용된 값 중 하나가 아닙니다.",
    "enum": "허용된 값 중 하나가 아닙니다.",
    "date_parsing": "날짜 형식(YYYY-MM-DD)이 아닙니다.",
    "date_from_datetime_parsing": "날짜 형식(YYYY-MM-DD)이 아닙니다.",
    "datetime_parsing": "날짜·시각 형식이 아닙니다.",
    "datetime_from_date_parsing": "날짜·시각 형식이 아닙니다.",
    "timezone_aware": "시각에는 시간대(예: +09:00)가 필요합니다.",
    "json_invalid": "JSON 형식이 아닙니다.",
    "model_type": "객체여야 합니다.",
    "list_type": "목록이어야 합니다.",
    "too_short": "항목이 너무 적습니다.",
    "too_long": "항목이 너무 많습니다.",
    "value_error": "값이 올바르지 않습니다.",
    "uuid_parsing": "UUID 형식이 아닙니다.",
}

FIELD_FALLBACK_KO = "값이 올바르지 않습니다."


def won(amount_won: int) -> str:
    """An amount as Korean staff read it: thousands separators and 원 (`21,284,800원`)."""
    return f"{amount_won:,}원"


def prefers_korean(accept_language: str | None) -> bool:
    """True when the client ranks Korean above English (RFC 9110 quality values); the
    consoles send `ko`, API clients usually send nothing and keep English."""
    if not accept_language:
        return False
    best_ko = best_other = -1.0
    for part in accept_language.split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        language = tag.strip().lower().split("-")[0]
        if language == "ko":
            best_ko = max(best_ko, quality)
        elif language:
            best_other = max(best_other, quality)
    return best_ko > 0 and best_ko >= best_other

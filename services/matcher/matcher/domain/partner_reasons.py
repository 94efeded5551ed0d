"""The reason codes partners see, with a Korean and an English text each (issue 18).

Codes are the enums' values (`policy.Reason`, `policy.Refusal`, and the allowance's payee
codes mirrored here as `PayeeReason`); the texts are keyed by the enum members, so a new
code without its texts fails tests/unit/matcher/test_partner_contract.py. The catalogue is
what docs/partner.md's table and the OpenAPI webhooks document are generated from. The
Korean is what a partner may show a citizen as is; the English explains it to engineers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from matcher.domain.policy import Reason, Refusal


class PayeeReason(StrEnum):
    """Why the allowance refused bank details (`payee.rejected.reason` and each
    `refusals[].code`). The allowance owns these codes (allowance/domain/banks.py
    `PayeeReason`, plus `unreadable`); the matcher relays them, and a unit test keeps this
    copy equal to the allowance's."""

    UNKNOWN_BANK = "unknown_bank"
    BAD_ACCOUNT_NUMBER = "bad_account_number"
    HOLDER_MISSING = "holder_missing"
    HOLDER_TOO_LONG = "holder_too_long"
    HOLDER_BAD_CHARACTER = "holder_bad_character"
    UNREADABLE = "unreadable"  # the sealed details did not open: send them again


class SuspensionReason(StrEnum):
    """Why a citizen was suspended (`citizen.suspended.reason`)."""

    STRIKES = "strikes"


@dataclass(frozen=True)
class Text:
    ko: str
    en: str


REASON_TEXTS: Mapping[Reason, Text] = {
    Reason.NOT_RESIDENT: Text(
        "광산구 대상 동에 사는 주민만 신청할 수 있어요.",
        "The citizen's administrative dong is not one of the programme's dongs in Gwangsan-gu.",
    ),
    Reason.NEIGHBOURHOOD_VERIFICATION_EXPIRED: Text(
        "동네 인증이 만료되었어요. 동네 인증을 다시 한 뒤 신청해 주세요.",
        "The neighbourhood verification (동네 인증) is missing or too old; verify again.",
    ),
    Reason.UNDER_AGE: Text(
        "만 19세 이상만 신청할 수 있어요.",
        "The citizen is younger than the programme's minimum age (19) on the shift's day.",
    ),
    Reason.CHILD_SAFETY_CHECK_REQUIRED: Text(
        "아동 안전 확인을 마친 분만 신청할 수 있는 자리예요.",
        "The shift is with children and the citizen has no child-safety check.",
    ),
    Reason.SUSPENDED: Text(
        "노쇼·늦은 취소가 쌓여 잠시 신청할 수 없어요.",
        "The citizen is suspended (strikes: no-shows or late cancellations) for the shift.",
    ),
    Reason.OVERLAP: Text(
        "같은 시간에 이미 확정된 다른 활동이 있어요.",
        "The citizen has another confirmed booking overlapping this shift.",
    ),
    Reason.WEEKLY_HOURS_CAP: Text(
        "이번 주 활동 가능 시간을 넘어요.",
        "The shift would take the citizen over the weekly hours cap (ISO week, Asia/Seoul).",
    ),
    Reason.POSTING_CLOSED: Text(
        "이미 마감된 활동이에요.",
        "The posting is closed (the shift is over), or was closed before the matcher knew it.",
    ),
    Reason.POSTING_CANCELLED: Text(
        "시설 사정으로 활동이 취소되었어요.",
        "The facility (or an administrator) cancelled the posting.",
    ),
    Reason.POSTING_STARTED: Text(
        "이미 시작된 활동이에요.",
        "The shift had already started when the application was decided.",
    ),
    Reason.APPLICATIONS_CLOSED: Text(
        "신청 기간이 끝났어요.",
        "The application window had closed (a draw's entries were frozen).",
    ),
    Reason.POSTING_FULL_NO_WAITLIST: Text(
        "자리와 대기 순번이 모두 찼어요.",
        "Every seat and every waitlist place is taken.",
    ),
    Reason.DUPLICATE_APPLICATION: Text(
        "이미 신청한 활동이에요.",
        "The citizen already has a live application for this posting.",
    ),
    Reason.UNKNOWN_POSTING: Text(
        "찾을 수 없는 활동이에요.",
        "No posting with this id was published within the wait for unknown postings.",
    ),
    Reason.WITHDRAWN: Text(
        "신청을 취소했어요.",
        "The citizen withdrew (application.withdrawn).",
    ),
    Reason.RESCHEDULED_OVERLAP: Text(
        "활동 시간이 바뀌어 다른 확정 활동과 겹치게 되었어요.",
        "The facility moved the shift, and the new times overlap another confirmed booking.",
    ),
    Reason.NOT_RECONFIRMED: Text(
        "참석 재확인이 기한까지 없어 자리가 다음 분께 넘어갔어요. 불이익은 없어요.",
        "Asked to reconfirm and not reconfirmed by the deadline: released, never a strike.",
    ),
}

REFUSAL_TEXTS: Mapping[Refusal, Text] = {
    Refusal.CITIZEN_MISMATCH: Text(
        "다른 이용자의 신청이나 예약이에요.",
        "The partner_user_id sent is not the citizen of that application or booking.",
    ),
    Refusal.POSTING_MISMATCH: Text(
        "신청한 활동과 다른 활동이에요.",
        "The application belongs to another posting than the one sent.",
    ),
    Refusal.UNKNOWN_APPLICATION: Text(
        "찾을 수 없는 신청이에요.",
        "No application with this id was submitted (for that posting).",
    ),
    Refusal.BOOKING_NOT_ACTIVE: Text(
        "이미 취소되었거나 확정 상태가 아닌 예약이에요.",
        "The booking was released, cancelled or is no longer confirmed.",
    ),
    Refusal.UNKNOWN_BOOKING: Text(
        "찾을 수 없는 예약이에요.",
        "No booking with this id exists.",
    ),
}

PAYEE_REASON_TEXTS: Mapping[PayeeReason, Text] = {
    PayeeReason.UNKNOWN_BANK: Text(
        "등록된 은행 코드(3자리)가 아니에요.",
        "The bank code is not a known 3-digit KFTC institution code.",
    ),
    PayeeReason.BAD_ACCOUNT_NUMBER: Text(
        "계좌번호는 숫자 10~16자리예요.",
        "The account number is not 10 to 16 digits (hyphens and spaces are allowed).",
    ),
    PayeeReason.HOLDER_MISSING: Text(
        "예금주를 입력해 주세요.",
        "The account holder's name is empty.",
    ),
    PayeeReason.HOLDER_TOO_LONG: Text(
        "예금주는 50자까지예요.",
        "The account holder's name is longer than 50 characters.",
    ),
    PayeeReason.HOLDER_BAD_CHARACTER: Text(
        "예금주는 = + - @ 로 시작하거나 제어 문자를 담을 수 없어요.",
        "The holder's name starts with = + - @ or holds a control character.",
    ),
    PayeeReason.UNREADABLE: Text(
        "계좌 정보를 읽지 못했어요. 다시 보내 주세요.",
        "The sealed bank details could not be opened; send them again.",
    ),
}

SUSPENSION_REASON_TEXTS: Mapping[SuspensionReason, Text] = {
    SuspensionReason.STRIKES: Text(
        "노쇼·늦은 취소가 기준 횟수에 이르러 일정 기간 신청할 수 없어요.",
        "Strikes (no-shows, late cancellations) reached the suspension count in the window.",
    ),
}

# Reason codes a booking can be rejected with: every `Reason` but those only cancellations use.
CANCELLATION_ONLY: frozenset[Reason] = frozenset(
    {Reason.WITHDRAWN, Reason.RESCHEDULED_OVERLAP, Reason.NOT_RECONFIRMED}
)
# The `Refusal` codes each refusing notification type uses.
APPLICATION_REFUSALS: frozenset[Refusal] = frozenset(
    {Refusal.CITIZEN_MISMATCH, Refusal.POSTING_MISMATCH, Refusal.UNKNOWN_APPLICATION}
)
RECONFIRM_REFUSALS: frozenset[Refusal] = frozenset(
    {Refusal.CITIZEN_MISMATCH, Refusal.BOOKING_NOT_ACTIVE, Refusal.UNKNOWN_BOOKING}
)


@dataclass(frozen=True)
class ReasonEntry:
    """One code of the catalogue: where it appears, and its texts."""

    code: str
    types: Sequence[str]
    ko: str
    en: str


def catalogue() -> list[ReasonEntry]:
    """Every code, walked from the enums (a member without texts raises KeyError)."""
    entries: list[ReasonEntry] = []
    for reason in Reason:
        text = REASON_TEXTS[reason]
        types: tuple[str, ...] = ("booking.cancelled",)
        if reason not in CANCELLATION_ONLY:
            types = ("booking.rejected", "booking.cancelled")
        entries.append(ReasonEntry(reason.value, types, text.ko, text.en))
    for refusal in Refusal:
        text = REFUSAL_TEXTS[refusal]
        where = [
            kind
            for kind, codes in (
                ("application.refused", APPLICATION_REFUSALS),
                ("booking.reconfirm_refused", RECONFIRM_REFUSALS),
            )
            if refusal in codes
        ]
        entries.append(ReasonEntry(refusal.value, tuple(where), text.ko, text.en))
    for payee in PayeeReason:
        text = PAYEE_REASON_TEXTS[payee]
        entries.append(ReasonEntry(payee.value, ("payee.rejected",), text.ko, text.en))
    for suspension in SuspensionReason:
        text = SUSPENSION_REASON_TEXTS[suspension]
        entries.append(ReasonEntry(suspension.value, ("citizen.suspended",), text.ko, text.en))
    return entries

"""The outbound partner contract as data (issue 18 item 2): every notification type the
matcher sends, with a pydantic model of its `data`, a description, its ordering key and an
example; the signed envelope `{type, timestamp, data}`; and `check`, which validates a
received body against it.

The OpenAPI `webhooks` section (`api.partner_webhooks`, committed as
docs/partner-openapi.json), docs/partner.md's reason table, the partner simulator's check of
everything the e2e suite receives and the unit test of every builder in
`usecases.notifications` all read this one catalogue.

The models are closed (`extra="forbid"`): a builder that adds a field the catalogue does not
describe fails the tests. The published schemas are open (no `additionalProperties: false`):
the contract only grows by adding, and a partner must ignore fields it does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import pydantic
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, create_model

from matcher.domain.partner_reasons import PayeeReason, SuspensionReason
from matcher.domain.policy import Reason, Refusal

# Check-in codes: six symbols without look-alikes (domain.checkin); older bookings' codes
# are at most 12 symbols (shared.events.CHECK_IN_CODE_PATTERN).
CHECK_IN_CODE_PATTERN = r"^[A-Z0-9]{4,12}$"
HEX64 = r"^[0-9a-f]{64}$"
MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"


def _open(schema: dict[str, Any]) -> None:
    """Published schemas allow fields added later (see the module's docstring)."""
    schema.pop("additionalProperties", None)


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_open)


Id = Annotated[str, Field(min_length=1)]
Won = Annotated[int, Field(ge=0, description="Korean won (KRW), whole won")]


# --- bookings ---------------------------------------------------------------------------


class _Application(_Data):
    application_id: Id = Field(description="the partner's application id (as submitted)")
    posting_id: Id = Field(description="the posting (공고) applied for")
    partner_user_id: Id = Field(description="the citizen, as the partner identifies them")


class _Booking(_Application):
    booking_id: Id = Field(description="our booking id (bkg_…); a waitlisted place has one")
    starts_at: AwareDatetime = Field(
        description="the shift's start (RFC 3339 with an offset; convert, never assume +09:00)"
    )
    ends_at: AwareDatetime = Field(description="the shift's end")


class BookingConfirmedData(_Booking):
    status: Literal["confirmed"]
    check_in_code: str | None = Field(
        None,
        pattern=CHECK_IN_CODE_PATTERN,
        description=(
            "what the citizen shows at the facility's door (체크인 코드): six symbols from "
            "34679ACDEFGHJKMNPQRTUVWXY; absent only for bookings made before codes existed"
        ),
    )


class BookingWaitlistedData(_Booking):
    status: Literal["waitlisted"]
    waitlist_position: int = Field(ge=1, description="1 = next to be promoted (대기 순번)")


class BookingPromotedData(BookingConfirmedData):
    """A waitlisted booking got a seat: it is now confirmed."""


class BookingRejectedData(_Application):
    status: Literal["rejected"]
    reason: Reason = Field(
        description="why (stable code; see the reason catalogue); new codes may be added"
    )
    booking_id: Id | None = Field(None, description="present when a booking existed")
    starts_at: AwareDatetime | None = Field(None, description="with booking_id")
    ends_at: AwareDatetime | None = Field(None, description="with booking_id")


class BookingCancelledData(_Booking):
    status: Literal["cancelled"]
    cancelled_by: Literal["citizen", "facility", "system"] = Field(
        description="citizen: a withdrawal; facility: the posting was cancelled; system: "
        "anything else (a suspended facility, a moved shift, not reconfirmed, …)"
    )
    reason: Reason = Field(description="why (stable code; see the reason catalogue)")
    was_confirmed: bool = Field(description="false: the booking was a waitlist place")
    strike: bool = Field(description="true: a late cancellation counted as a strike (경고)")


class BookingReminderData(_Booking):
    status: Literal["confirmed"]
    minutes_before: int = Field(
        ge=1, description="the shift starts in this many minutes (policy: 1440 and 120)"
    )


class BookingReconfirmRequestedData(_Booking):
    status: Literal["confirmed"]
    reconfirm_by: AwareDatetime = Field(
        description="answer with the webhook `booking.reconfirmed` before this time, or the "
        "booking is released (`booking.cancelled`, reason `not_reconfirmed`, no strike)"
    )


class BookingReconfirmRefusedData(_Data):
    """Only what the partner sent is repeated: another citizen's booking is not described."""

    booking_id: Id = Field(description="as sent in `booking.reconfirmed`")
    partner_user_id: Id = Field(description="as sent in `booking.reconfirmed`")
    reason: Refusal = Field(
        description="`citizen_mismatch`, `booking_not_active` or `unknown_booking`"
    )
    webhook_id: Id = Field(description="the `webhook-id` of the refused `booking.reconfirmed`")


class WaitlistPositionChangedData(_Booking):
    status: Literal["waitlisted"]
    waitlist_position: int = Field(ge=1, description="the place now")
    previous_position: int = Field(ge=1, description="the place before")


class AttendanceRecordedData(_Booking):
    attendance_id: Id
    attendance_status: Literal["attended", "no_show"] = Field(description="출석 / 노쇼")
    minutes: int = Field(ge=0, description="minutes paid: attended, at most scheduled")
    scheduled_minutes: int = Field(ge=1, description="the shift's length")
    revision: int = Field(ge=1, description="1, then each correction's number")
    corrected: bool = Field(description="true: a correction of an earlier record")


class CitizenStrikeRecordedData(_Booking):
    strike_kind: Literal["no_show", "late_cancellation"]
    occurred_at: AwareDatetime
    strikes_in_window: int = Field(ge=1, description="counting this one")
    window_days: int = Field(ge=1, description="strikes count within this many days")
    strikes_to_suspend: int = Field(ge=1, description="strikes in the window that suspend")


class CitizenSuspendedData(_Booking):
    reason: SuspensionReason
    suspended_from: AwareDatetime
    suspended_until: AwareDatetime = Field(description="no booking until then (신청 제한)")
    strikes: int = Field(ge=1, description="the strikes that caused the suspension")
    window_days: int = Field(ge=1)


class ApplicationRefusedData(_Data):
    """Echoes what the partner sent and nothing of the application."""

    application_id: Id = Field(description="as sent")
    posting_id: Id = Field(description="as sent")
    partner_user_id: Id = Field(description="as sent (may not be the application's citizen)")
    request_type: str = Field(description="the refused webhook's type, e.g. application.withdrawn")
    request_webhook_id: Id = Field(description="the refused webhook's `webhook-id`")
    reason: Refusal = Field(
        description="`citizen_mismatch`, `posting_mismatch` or `unknown_application`"
    )


# --- money ------------------------------------------------------------------------------


class _Payout(_Data):
    partner_user_id: Id
    application_id: Id | None = Field(None, description="absent for bookings we never had")
    posting_id: Id
    booking_id: Id
    attendance_id: Id
    month: str = Field(pattern=MONTH, description="the statement month (Asia/Seoul)")
    adjustment: bool = Field(description="true: a later month's adjustment of an earlier shift")


class PayoutAccruedData(_Payout):
    minutes_paid: int = Field(ge=0)
    hourly_rate_won: int = Field(ge=1)
    gross_won: Won = Field(description="before the monthly cap")
    amount_won: Won = Field(description="payable this month (지급 예정액)")
    capped_won: Won = Field(description="held back by the monthly cap (월 한도 초과분)")


class PayoutReversedData(_Payout):
    minutes_reversed: int = Field(ge=0)
    gross_reversed_won: Won
    amount_reversed_won: Won = Field(description="payable money taken back")
    capped_released_won: Won = Field(
        description="money the cap held back from other shifts of the month, payable again"
    )


class PayoutPaidData(_Data):
    partner_user_id: Id
    month: str = Field(pattern=MONTH, description="the closed month whose payout this is")
    amount_won: Won = Field(description="the net transferred (after any withholding)")


class PayoutFailedData(_Data):
    partner_user_id: Id
    month: str = Field(pattern=MONTH, description="the closed month whose payout this is")
    amount_won: Won = Field(description="the net that was not transferred")
    reason: str = Field(description="the bank's reason as finance entered it (may be empty)")
    carried: bool = Field(
        description="true: the amount is paid again in the next closed month's payout file"
    )


class PayeeAcceptedData(_Data):
    partner_user_id: Id
    webhook_id: Id = Field(description="the `webhook-id` of the `citizen.payee_submitted`")
    status: Literal["accepted"]


class PayeeRefusalItem(_Data):
    field: str = Field(description="the refused field, e.g. account_number")
    code: PayeeReason


class PayeeRejectedData(_Data):
    partner_user_id: Id
    webhook_id: Id = Field(description="the `webhook-id` of the `citizen.payee_submitted`")
    status: Literal["rejected"]
    reason: PayeeReason = Field(description="the first refusal's code; nothing was stored")
    refusals: list[PayeeRefusalItem] = Field(
        default_factory=list, description="every refused field's code"
    )


# --- postings ---------------------------------------------------------------------------


class PostingPublishedData(_Data):
    posting_id: Id
    status: Literal["open"]
    facility_name: str
    facility_dong: str = Field(description="the facility's administrative dong (행정동)")
    title: str
    description: str
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    capacity: int = Field(ge=1, description="seats (정원)")
    selection: Literal["first_come", "draw"] = Field(description="선착순 / 추첨")
    applications_close_at: AwareDatetime | None = Field(
        description="the end of applications (a draw runs then); null: the shift's start"
    )
    requires_child_safety_check: bool
    tags: list[str]
    draw_commitment: str | None = Field(
        None,
        pattern=HEX64,
        description="for a draw: SHA-256 (lowercase hex) of the draw's secret seed, "
        "published before anyone applies (docs/fairness.md)",
    )
    facility_address: str | None = Field(None, description="the facility's street address")
    facility_contact: str | None = Field(None, description="whom to call (phone)")
    hourly_rate_won: int | None = Field(
        None, ge=1, description="the allowance per hour (won); null for older postings"
    )
    shift_allowance_won: Won | None = Field(
        None, description="the whole shift's allowance: floor(hourly_rate_won × minutes / 60)"
    )
    seats_left: int | None = Field(None, ge=0, description="seats not confirmed to anyone")


class PostingUpdatedData(PostingPublishedData):
    revision: int = Field(ge=1, description="grows with each change; keep the highest")


class PostingClosedData(_Data):
    posting_id: Id
    status: Literal["closed", "cancelled"] = Field(
        description="closed: the shift is over; cancelled: it will not take place"
    )
    reason: Literal["facility", "facility_suspended", "admin"] | None = Field(
        None, description="who cancelled (with status cancelled)"
    )


class DrawEntryData(_Data):
    id: Id = Field(description="an application id")
    minutes_window: int = Field(ge=0, description="minutes attended in the window")


class DrawOutcome(_Data):
    confirmed: list[str]
    waitlisted: list[str]
    not_selected: list[str]


class DrawCompletedData(_Data):
    """The draw's published record (docs/fairness.md §5); docs/verify_draw.py checks it."""

    posting_id: Id
    algorithm: str
    seats: int = Field(ge=0)
    waitlist_room: int = Field(ge=0)
    half_weight_minutes: int = Field(ge=1)
    window_months: int = Field(ge=1)
    commitment: str = Field(pattern=HEX64, description="the draw_commitment published before")
    entries: list[DrawEntryData]
    entry_list_hash: str = Field(pattern=HEX64)
    seed: str = Field(pattern=HEX64, description="the secret seed, revealed")
    outcome: DrawOutcome
    committed_at: AwareDatetime
    applications_close_at: AwareDatetime
    drawn_at: AwareDatetime


# --- the catalogue ----------------------------------------------------------------------


@dataclass(frozen=True)
class NotificationType:
    """One notification type: its name (`type`), what it says, its `data` and an example."""

    name: str
    summary: str
    description: str
    ordering: str
    data: type[BaseModel]
    example: Mapping[str, Any]


_APP = "the application (in order with the application's other notifications)"
_POSTING = "the posting"
_PAYEE = "the partner user's bank details (`payee:{partner_user_id}`)"
_PAYMENT = "the partner user's payments (`payout:{partner_user_id}`)"
_T0 = "2026-12-19T10:00:00+09:00"
_T1 = "2026-12-19T13:00:00+09:00"
_BOOKING = {
    "application_id": "app-7f3c2a",
    "posting_id": "pst_01JF6Q6S8M3N",
    "partner_user_id": "dg-user-48213",
    "booking_id": "bkg_5b1f0c9e2d",
    "starts_at": _T0,
    "ends_at": _T1,
}
_POSTING_EXAMPLE = {
    "posting_id": "pst_01JF6Q6S8M3N",
    "status": "open",
    "facility_name": "수완동 작은도서관",
    "facility_dong": "수완동",
    "title": "책 정리 도우미",
    "description": "반납된 책을 서가에 꽂고 정리해요.",
    "starts_at": _T0,
    "ends_at": _T1,
    "capacity": 3,
    "selection": "first_come",
    "applications_close_at": "2026-12-18T18:00:00+09:00",
    "requires_child_safety_check": False,
    "tags": ["도서관"],
    "facility_address": "광주 광산구 수완로 12",
    "facility_contact": "062-960-0000",
    "hourly_rate_won": 13303,
    "shift_allowance_won": 39909,
    "seats_left": 3,
}
_HEX_A = "9f2c" * 16
_HEX_B = "41d0" * 16
_HEX_C = "c3a7" * 16

NOTIFICATION_TYPES: tuple[NotificationType, ...] = (
    NotificationType(
        "posting.published",
        "A posting is open for applications",
        "List it. For a draw (`selection` = `draw`) keep `draw_commitment`: "
        "`draw.completed` reveals the seed that hashes to it.",
        _POSTING,
        PostingPublishedData,
        _POSTING_EXAMPLE,
    ),
    NotificationType(
        "posting.updated",
        "A posting's terms changed",
        "The whole new state; a moved shift moves its bookings (a citizen who would then "
        "overlap another booking gets `booking.cancelled` `rescheduled_overlap`).",
        _POSTING,
        PostingUpdatedData,
        {**_POSTING_EXAMPLE, "capacity": 4, "seats_left": 2, "revision": 2},
    ),
    NotificationType(
        "posting.closed",
        "A posting is over or cancelled",
        "Unlist it. Each booking of a cancelled posting also gets `booking.cancelled`.",
        _POSTING,
        PostingClosedData,
        {"posting_id": "pst_01JF6Q6S8M3N", "status": "cancelled", "reason": "facility"},
    ),
    NotificationType(
        "booking.confirmed",
        "The citizen has a seat (확정)",
        "Show the shift and its `check_in_code` in the citizen's shifts.",
        _APP,
        BookingConfirmedData,
        {**_BOOKING, "status": "confirmed", "check_in_code": "K7MX3Q"},
    ),
    NotificationType(
        "booking.waitlisted",
        "The citizen is on the waitlist (대기)",
        "`waitlist_position` 1 is next; `waitlist.position_changed` tells each move.",
        _APP,
        BookingWaitlistedData,
        {**_BOOKING, "status": "waitlisted", "waitlist_position": 2},
    ),
    NotificationType(
        "booking.rejected",
        "The application was refused (거절)",
        "`reason` is a stable code with a Korean text to show (reason catalogue).",
        _APP,
        BookingRejectedData,
        {
            "application_id": "app-7f3c2a",
            "posting_id": "pst_01JF6Q6S8M3N",
            "partner_user_id": "dg-user-48213",
            "status": "rejected",
            "reason": "weekly_hours_cap",
        },
    ),
    NotificationType(
        "booking.promoted",
        "A waitlisted citizen got a seat (대기 → 확정)",
        "The booking is now confirmed, with its `check_in_code`.",
        _APP,
        BookingPromotedData,
        {**_BOOKING, "status": "confirmed", "check_in_code": "D4RT9W"},
    ),
    NotificationType(
        "booking.cancelled",
        "A booking or waitlist place ended (취소)",
        "By the citizen (withdrawal), the facility (posting cancelled) or the system "
        "(moved shift, not reconfirmed, no longer eligible when promoted).",
        _APP,
        BookingCancelledData,
        {
            **_BOOKING,
            "status": "cancelled",
            "cancelled_by": "citizen",
            "reason": "withdrawn",
            "was_confirmed": True,
            "strike": False,
        },
    ),
    NotificationType(
        "booking.reminder",
        "The shift starts soon (알림)",
        "Sent `minutes_before` the start (24 h and 2 h by default), once per booking each.",
        _APP,
        BookingReminderData,
        {**_BOOKING, "status": "confirmed", "minutes_before": 1440},
    ),
    NotificationType(
        "booking.reconfirm_requested",
        "Ask the citizen to reconfirm (참석 재확인)",
        "Only for postings that require it. Answer with the inbound webhook "
        "`booking.reconfirmed` before `reconfirm_by`, or the seat is released.",
        _APP,
        BookingReconfirmRequestedData,
        {**_BOOKING, "status": "confirmed", "reconfirm_by": "2026-12-18T18:00:00+09:00"},
    ),
    NotificationType(
        "booking.reconfirm_refused",
        "A `booking.reconfirmed` changed nothing",
        "It was answered 202 at the door; this says why. Nothing was changed.",
        "the booking",
        BookingReconfirmRefusedData,
        {
            "booking_id": "bkg_5b1f0c9e2d",
            "partner_user_id": "dg-user-48213",
            "reason": "booking_not_active",
            "webhook_id": "msg_2b8f9d1e7a",
        },
    ),
    NotificationType(
        "waitlist.position_changed",
        "A waitlist place moved (대기 순번 변경)",
        "A promotion moves everyone up; a withdrawal moves those behind.",
        _APP,
        WaitlistPositionChangedData,
        {**_BOOKING, "status": "waitlisted", "waitlist_position": 1, "previous_position": 2},
    ),
    NotificationType(
        "attendance.recorded",
        "The facility recorded attendance (출석 기록)",
        "Attended minutes, or a no-show; `corrected` for a later correction.",
        _APP,
        AttendanceRecordedData,
        {
            **_BOOKING,
            "attendance_id": "att_3e9a1c",
            "attendance_status": "attended",
            "minutes": 180,
            "scheduled_minutes": 180,
            "revision": 1,
            "corrected": False,
        },
    ),
    NotificationType(
        "citizen.strike_recorded",
        "A strike was counted against the citizen (경고)",
        "A no-show or a late cancellation; `strikes_to_suspend` in `window_days` suspend.",
        _APP,
        CitizenStrikeRecordedData,
        {
            **_BOOKING,
            "strike_kind": "no_show",
            "occurred_at": _T1,
            "strikes_in_window": 2,
            "window_days": 90,
            "strikes_to_suspend": 3,
        },
    ),
    NotificationType(
        "citizen.suspended",
        "The citizen may not book until a date (신청 제한)",
        "Applications before `suspended_until` are rejected `suspended`.",
        _APP,
        CitizenSuspendedData,
        {
            **_BOOKING,
            "reason": "strikes",
            "suspended_from": _T1,
            "suspended_until": "2027-01-18T13:00:00+09:00",
            "strikes": 3,
            "window_days": 90,
        },
    ),
    NotificationType(
        "application.refused",
        "A request about an application changed nothing",
        "E.g. an `application.withdrawn` naming another citizen's application: answered "
        "202 at the door, nothing changed, and this says why.",
        _APP,
        ApplicationRefusedData,
        {
            "application_id": "app-7f3c2a",
            "posting_id": "pst_01JF6Q6S8M3N",
            "partner_user_id": "dg-user-99999",
            "request_type": "application.withdrawn",
            "request_webhook_id": "msg_7c1d2e3f4a",
            "reason": "citizen_mismatch",
        },
    ),
    NotificationType(
        "payout.accrued",
        "A shift was paid into the citizen's month (활동비 적립)",
        "The allowance's figures: payable `amount_won`, `capped_won` held back by the monthly cap.",
        "the application (after the booking's notifications)",
        PayoutAccruedData,
        {
            "partner_user_id": "dg-user-48213",
            "application_id": "app-7f3c2a",
            "posting_id": "pst_01JF6Q6S8M3N",
            "booking_id": "bkg_5b1f0c9e2d",
            "attendance_id": "att_3e9a1c",
            "month": "2026-12",
            "minutes_paid": 180,
            "hourly_rate_won": 13303,
            "gross_won": 39909,
            "amount_won": 39909,
            "capped_won": 0,
            "adjustment": False,
        },
    ),
    NotificationType(
        "payout.reversed",
        "A correction took a payout back (활동비 정정)",
        "Amounts taken back, as positive numbers; a `payout.accrued` follows when the "
        "corrected shift is still paid.",
        "the application (after the booking's notifications)",
        PayoutReversedData,
        {
            "partner_user_id": "dg-user-48213",
            "application_id": "app-7f3c2a",
            "posting_id": "pst_01JF6Q6S8M3N",
            "booking_id": "bkg_5b1f0c9e2d",
            "attendance_id": "att_3e9a1c",
            "month": "2026-12",
            "minutes_reversed": 180,
            "gross_reversed_won": 39909,
            "amount_reversed_won": 39909,
            "capped_released_won": 0,
            "adjustment": True,
        },
    ),
    NotificationType(
        "draw.completed",
        "A draw ran (추첨 결과)",
        "The published record: save it; docs/verify_draw.py checks it against the "
        "`draw_commitment` of `posting.published`. Each applicant also gets its "
        "`booking.*` notification.",
        _POSTING,
        DrawCompletedData,
        {
            "posting_id": "pst_01JF6Q6S8M3N",
            "algorithm": "efraimidis-spirakis/hmac-sha256/v2",
            "seats": 1,
            "waitlist_room": 1,
            "half_weight_minutes": 600,
            "window_months": 3,
            "commitment": _HEX_A,
            "entries": [
                {"id": "app-7f3c2a", "minutes_window": 0},
                {"id": "app-81d0e4", "minutes_window": 240},
                {"id": "app-c02b5f", "minutes_window": 720},
            ],
            "entry_list_hash": _HEX_B,
            "seed": _HEX_C,
            "outcome": {
                "confirmed": ["app-7f3c2a"],
                "waitlisted": ["app-c02b5f"],
                "not_selected": ["app-81d0e4"],
            },
            "committed_at": "2026-12-01T09:00:00+09:00",
            "applications_close_at": "2026-12-17T18:00:00+09:00",
            "drawn_at": "2026-12-17T18:00:04+09:00",
        },
    ),
    NotificationType(
        "payout.paid",
        "The month's allowance reached the citizen's account (지급 완료)",
        "The bank reported the transfer of the closed month's payout made; `amount_won` is "
        "the net after withholding. A month carried from a failed transfer is paid in a "
        "later month's payout and told with that month.",
        _PAYMENT,
        PayoutPaidData,
        {"partner_user_id": "dg-user-48213", "month": "2026-12", "amount_won": 38_712},
    ),
    NotificationType(
        "payout.failed",
        "The month's transfer failed (이체 불능)",
        "The bank could not transfer the closed month's payout (e.g. a closed account); the "
        "amount is carried into the next closed month's payout. Ask the citizen to check "
        "their bank details (`citizen.payee_submitted` replaces them).",
        _PAYMENT,
        PayoutFailedData,
        {
            "partner_user_id": "dg-user-48213",
            "month": "2026-12",
            "amount_won": 38_712,
            "reason": "해지 계좌",
            "carried": True,
        },
    ),
    NotificationType(
        "payee.accepted",
        "The citizen's bank details were stored (계좌 등록)",
        "The answer to `citizen.payee_submitted`; `webhook_id` is that submission's.",
        _PAYEE,
        PayeeAcceptedData,
        {"partner_user_id": "dg-user-48213", "webhook_id": "msg_4f0e1d", "status": "accepted"},
    ),
    NotificationType(
        "payee.rejected",
        "The citizen's bank details were refused (계좌 등록 실패)",
        "Nothing was stored; show the reason's Korean text and ask again.",
        _PAYEE,
        PayeeRejectedData,
        {
            "partner_user_id": "dg-user-48213",
            "webhook_id": "msg_4f0e1d",
            "status": "rejected",
            "reason": "unknown_bank",
            "refusals": [{"field": "bank_code", "code": "unknown_bank"}],
        },
    ),
)

BY_TYPE: Mapping[str, NotificationType] = {t.name: t for t in NOTIFICATION_TYPES}


def _model_name(kind: str) -> str:
    return "".join(p.capitalize() for p in kind.replace("_", ".").split(".")) + "Notification"


def _envelope(kind: NotificationType) -> type[BaseModel]:
    """`{type, timestamp, data}` of one type: the body the matcher signs and sends."""
    model: type[BaseModel] = create_model(
        _model_name(kind.name),
        __config__=ConfigDict(extra="forbid", json_schema_extra=_open),
        __doc__=f"{kind.summary}. {kind.description}",
        type=(Literal[kind.name], Field(description="the notification type")),  # type: ignore[arg-type]
        timestamp=(AwareDatetime, Field(description="when the change happened (RFC 3339)")),
        data=(kind.data, ...),
    )
    return model


ENVELOPES: Mapping[str, type[BaseModel]] = {t.name: _envelope(t) for t in NOTIFICATION_TYPES}
_ADAPTERS: Mapping[str, TypeAdapter[Any]] = {k: TypeAdapter(m) for k, m in ENVELOPES.items()}
_TYPE_ONLY: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])


def example(kind: str) -> dict[str, Any]:
    """The type's example as a whole body."""
    return {
        "type": kind,
        "timestamp": "2026-12-18T10:00:03+09:00",
        "data": dict(BY_TYPE[kind].example),
    }


def check(body: bytes) -> list[str]:
    """Why a notification body breaks the contract (empty: it keeps it): not JSON, an
    unknown type, or a field missing, extra or of the wrong JSON type (strict: `"1"` is
    not a number, `1` not a boolean)."""
    try:
        message = _TYPE_ONLY.validate_json(body)
    except pydantic.ValidationError:
        return ["the body is not a JSON object"]
    kind = message.get("type")
    adapter = _ADAPTERS.get(kind) if isinstance(kind, str) else None
    if adapter is None:
        return [f"unknown notification type {kind!r}"]
    try:
        adapter.validate_json(body, strict=True)
    except pydantic.ValidationError as exc:
        return [
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors(include_url=False)
        ]
    return []

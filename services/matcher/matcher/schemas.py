"""The matcher's HTTP models: the partner's webhook bodies (the partner contract: strict,
closed, validated exactly as documented) and the admin API's views."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any, Literal

import pydantic
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
)

from matcher.domain.eligibility import adult_from
from shared.events import DISPLAY_NAME_LENGTH_MAX, CitizenProfile
from shared.problems import Problem, validation_errors
from shared.schemas import NonBlank, StrictBody
from shared.web import Page

# --- partner webhooks (in) -------------------------------------------------------------------

_Id = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$")]


def _is_surrogate(ch: str) -> bool:
    return "\ud800" <= ch <= "\udfff"


# Partner text as sent (never trimmed: `" k"` is not the partner's `"k"`), but never only
# spaces, and storable by Postgres (no NUL, no lone surrogate): refused at the door, never
# accepted and then lost to a consumer that cannot write it (shared.schemas.NonBlank).
_PartnerId = Annotated[str, NonBlank(100, trim=False)]
_DongText = Annotated[str, NonBlank(50, trim=False)]


# A display name (optional): trimmed (spaces around a name are the partner app's, not the
# person's), bounded, storable; a name of only spaces is refused (send none instead).
_DisplayName = Annotated[str, NonBlank(DISPLAY_NAME_LENGTH_MAX)]


class _Body(BaseModel):
    # strict: a boolean is a JSON boolean only (`"yes"`, `"1"`, `1` are refused), a number
    # a JSON number, a date or a time an ISO string (never a number of seconds).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class CitizenData(_Body):
    """The citizen as the partner sends it (BRIEF §6); what reaches our topic is derived
    from it (`to_profile`: no birth date in clear, docs/decisions/0013)."""

    partner_user_id: _PartnerId
    dong: _DongText
    neighbourhood_verified_at: AwareDatetime
    birth_date: date
    child_safety_check: bool
    display_name: _DisplayName | None = Field(
        default=None,
        description="optional: the name the app shows for the citizen, shown to the"
        " facility on its roster and sign-in sheet (trimmed; at most"
        f" {DISPLAY_NAME_LENGTH_MAX} characters)",
    )

    def to_profile(self, age_min_years: int) -> CitizenProfile:
        """What the topic carries: the day of the minimum age, not the birth date."""
        return CitizenProfile(
            partner_user_id=self.partner_user_id,
            dong=self.dong,
            neighbourhood_verified_at=self.neighbourhood_verified_at,
            adult_from=adult_from(self.birth_date, age_min_years),
            child_safety_check=self.child_safety_check,
            display_name=self.display_name,
        )


class SubmittedData(_Body):
    application_id: _Id
    posting_id: _Id
    citizen: CitizenData


class WithdrawnData(_Body):
    application_id: _Id
    posting_id: _Id
    partner_user_id: _PartnerId


class ApplicationSubmittedWebhook(_Body):
    type: Literal["application.submitted"]
    timestamp: AwareDatetime
    data: SubmittedData


class ApplicationWithdrawnWebhook(_Body):
    type: Literal["application.withdrawn"]
    timestamp: AwareDatetime
    data: WithdrawnData


class ReconfirmedData(_Body):
    booking_id: _Id
    partner_user_id: _PartnerId


class BookingReconfirmedWebhook(_Body):
    """The citizen answered `booking.reconfirm_requested`: they will come."""

    type: Literal["booking.reconfirmed"]
    timestamp: AwareDatetime
    data: ReconfirmedData


class PayeeSubmittedData(_Body):
    """A citizen's bank details (issue 16). Only their shape is checked here: the matcher
    seals them at once to the allowance, which checks the bank code, the account number
    and the holder and answers `payee.accepted` / `payee.rejected` (decision 0014)."""

    partner_user_id: _PartnerId
    bank_code: Annotated[str, NonBlank(10)]
    account_number: Annotated[str, NonBlank(40)]
    account_holder: Annotated[str, NonBlank(100)]
    consent_at: AwareDatetime


class PayeeSubmittedWebhook(_Body):
    type: Literal["citizen.payee_submitted"]
    timestamp: AwareDatetime
    data: PayeeSubmittedData


AnyWebhook = (
    ApplicationSubmittedWebhook
    | ApplicationWithdrawnWebhook
    | BookingReconfirmedWebhook
    | PayeeSubmittedWebhook
)
PartnerWebhook = Annotated[AnyWebhook, Field(discriminator="type")]
# The `type` tags, which pydantic puts first in an error's location.
WEBHOOK_TYPES = (
    "application.submitted",
    "application.withdrawn",
    "booking.reconfirmed",
    "citizen.payee_submitted",
)
WEBHOOK_BODY = TypeAdapter(PartnerWebhook)


def inline_schema() -> dict[str, Any]:
    """The webhook body's JSON schema with its `$defs` inlined, so it can sit inside the
    OpenAPI document (where `#/$defs/…` would not resolve)."""
    schema = WEBHOOK_BODY.json_schema()
    defs = schema.pop("$defs", {})
    schema.pop("discriminator", None)  # its mapping points into $defs; `type` is a const

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def webhook_problem(exc: pydantic.ValidationError) -> Problem:
    """The 400 of a body that fails validation, naming each bad field by its path in the
    body (not by the union's tag)."""
    errors = validation_errors(exc.errors())
    for err, raw in zip(errors, exc.errors(), strict=True):
        loc = [str(p) for p in raw.get("loc", ())]
        if loc and loc[0] in WEBHOOK_TYPES:
            loc = loc[1:]  # the union's tag, not a field of the body
        err["field"] = ".".join(loc) or ("type" if "tag" in str(raw.get("type")) else "body")
    fields = ", ".join(sorted({e["field"] for e in errors}))
    return Problem(400, "invalid_payload", f"invalid webhook payload: {fields}", errors=errors)


def _surrogate_paths(node: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The field paths of every text (key or value) holding a lone surrogate."""
    found: list[tuple[str, ...]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if any(_is_surrogate(ch) for ch in str(key)):
                found.append((*path, str(key)))
            found.extend(_surrogate_paths(value, (*path, str(key))))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_surrogate_paths(value, (*path, str(i))))
    elif isinstance(node, str) and any(_is_surrogate(ch) for ch in node):
        found.append(path)
    return found


def parse_webhook(body: bytes) -> AnyWebhook:
    """The body as its typed model, or the 400 `Problem` naming each bad field. A JSON
    string escaping a lone surrogate (`"\\ud800"`) is invalid JSON to the fast parser;
    the slow, lenient one runs only then, to say which field held it. A body that is not
    UTF-8 is refused first: the fast parser would read an encoded surrogate
    (`\\xed\\xa0\\x80`) as text, even in a field's name."""
    try:
        body.decode()
    except UnicodeDecodeError as exc:
        message = f"the body is not UTF-8 (byte {exc.start})"
        errors = [{"field": "body", "message": message, "code": "utf8_invalid"}]
        raise Problem(
            400, "invalid_payload", f"invalid webhook payload: {message}", errors=errors
        ) from None
    try:
        return WEBHOOK_BODY.validate_json(body)
    except pydantic.ValidationError as exc:
        problem = webhook_problem(exc)
    if any(e.get("code") == "json_invalid" for e in problem.errors or []):
        try:
            paths = _surrogate_paths(json.loads(body))
        except ValueError:
            paths = []
        if paths:
            # a name may itself hold the surrogate: written as its escape, or the answer
            # could not be encoded
            fields = sorted(".".join(p).encode("utf-8", "backslashreplace").decode() for p in paths)
            message = "a lone surrogate is not allowed in text"
            errors = [{"field": f, "message": message, "code": "string_surrogate"} for f in fields]
            detail = f"invalid webhook payload: {', '.join(fields)}"
            problem = Problem(400, "invalid_payload", detail, errors=errors)
    raise problem


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    webhook_id: str


# --- admin views (out) ---------------------------------------------------------------------

# An instant as the admin API has always written it: `datetime.isoformat()` (`+00:00`).
Instant = Annotated[datetime, PlainSerializer(lambda at: at.isoformat(), return_type=str)]


class NotificationView(BaseModel):
    notification_id: str
    type: str
    status: str
    posting_id: str | None
    application_id: str | None
    booking_id: str | None
    attempts: int
    created_at: datetime
    first_attempt_at: datetime | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    failed_at: datetime | None


class NotificationPage(Page[NotificationView]):
    """Partner notifications of one status, oldest first."""


class ResendView(BaseModel):
    notification_id: str
    status: str


class ApplicationView(BaseModel):
    """An application and its decision (a held one reads `held`, never booked)."""

    application_id: str
    posting_id: str
    citizen_id: str
    citizen_display: str
    status: str
    reason: str | None
    booking_id: str | None
    waitlist_position: int | None
    received_at: Instant | None
    decided_at: Instant | None
    cancelled_by: str | None
    strike: bool
    reconfirmed_at: Instant | None = None


class ApplicationPage(Page[ApplicationView]):
    """A posting's applications by application id."""


class PostingView(BaseModel):
    """A posting as the matcher sees it, with its applications counted by status."""

    posting_id: str
    facility_id: str
    facility_name: str
    facility_dong: str
    title: str
    description: str
    tags: list[str]
    starts_at: Instant
    ends_at: Instant
    capacity: int
    selection: str
    applications_close_at: Instant | None
    requires_child_safety_check: bool
    reconfirmation_required: bool = False
    status: str
    revision: int
    confirmed_count: int
    waitlisted_count: int
    waitlist_max: int
    queue_next: int
    drawn_at: Instant | None
    published_at: Instant
    updated_at: Instant
    draw_frozen_at: Instant | None = None
    applications: dict[str, int]
    held: int


class DrawView(BaseModel):
    """A posting's draw as the matcher stores it, for an auditor. A v2 draw
    (`efraimidis-spirakis/hmac-sha256/v2`, docs/fairness.md): `committed` shows only the
    commitment, `frozen` adds the entry list (`inputs`: entry id = application id, citizen,
    `minutes_window`) and its hash, `drawn` adds the seed, the outcome and the published
    `record`; the seed is never shown before the draw. A v1 draw (before issue 19) keeps
    `salt`, `seed`, `month` and `inputs` with `minutes_month`."""

    posting_id: str
    algorithm: str
    status: Literal["committed", "frozen", "drawn"] = "drawn"
    salt: str | None
    seed: str | None
    month: str | None
    half_weight_minutes: int | None
    seats: int | None
    waitlist_room: int | None
    inputs: list[dict[str, Any]]
    excluded: list[dict[str, str]]
    outcome: dict[str, list[str]] | None
    drawn_at: Instant | None
    commitment: str | None = None
    committed_at: Instant | None = None
    window_months: int | None = None
    months: list[str] | None = None
    entry_list_hash: str | None = None
    applications_close_at: Instant | None = None
    frozen_at: Instant | None = None
    record: dict[str, Any] | None = Field(
        default=None, description="the published record (docs/fairness.md §5), once drawn"
    )


class DrawCheck(BaseModel):
    """A stored draw re-run from its seed and inputs (v2: `fair_draw.verify` on the published
    record, each difference one line)."""

    posting_id: str
    algorithm: str
    seed_matches: bool
    matches: bool
    recomputed: dict[str, list[str]]
    differences: list[str] = []


class PublishedDraw(BaseModel):
    """What the public may see of a posting's draw, as it happens (docs/fairness.md §1):
    the commitment from the opening; the frozen entry list and its hash from the close; the
    whole record (with the seed) once drawn. The partner's `GET
    /v1/partner/postings/{id}/draw` answers this."""

    posting_id: str
    algorithm: str
    status: Literal["committed", "frozen", "drawn"]
    commitment: str
    committed_at: Instant
    applications_close_at: Instant | None
    entry_list_hash: str | None = None
    entries: list[dict[str, Any]] | None = Field(
        default=None, description="`{id, minutes_window}` of each entry, once frozen"
    )
    record: dict[str, Any] | None = Field(
        default=None, description="the published record (docs/fairness.md §5), once drawn"
    )


class StrikeView(BaseModel):
    booking_id: str
    kind: str
    occurred_at: Instant
    voided_at: Instant | None


class SuspensionView(BaseModel):
    starts_at: Instant
    ends_at: Instant
    lifted_at: Instant | None


class CitizenView(BaseModel):
    """A citizen's standing: strikes and suspensions (no profile data)."""

    citizen_id: str
    display: str
    suspended: bool
    suspended_until: Instant | None
    strikes: list[StrikeView]
    suspensions: list[SuspensionView]


# --- the citizen's allowance (admin now; the partner's route once partner auth lands) ----

MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"  # a Seoul month, as the allowance's `period`


class WeekHoursView(BaseModel):
    """The ISO week (Asia/Seoul) holding `as_of`: confirmed booked minutes (worked or to
    come) against the allowance's weekly hour cap for that week."""

    week: str = Field(examples=["2026-W10"])
    starts_at: Instant
    ends_at: Instant
    booked_minutes: int
    hours_max: int | None = Field(description="the weekly cap; null while no cap table is held")
    minutes_left: int | None


class MonthAllowanceView(BaseModel):
    """A month of the citizen's allowance, as the allowance's events told the matcher."""

    month: str = Field(examples=["2026-03"])
    accrued_won: int = Field(description="payable: accrued within the monthly cap")
    capped_won: int = Field(description="held back by the monthly cap")
    gross_won: int
    minutes_paid: int
    cap_won: int | None = Field(description="the monthly cap; null while no cap table is held")
    cap_left_won: int | None
    payment_status: Literal["accruing", "closed", "paid", "held_back", "failed"]
    status_reason: str | None = Field(description="why a payment is held back or failed")


class CitizenAllowanceView(BaseModel):
    """`citizen_allowance`: hours this week against the weekly cap, the month's allowance
    against the monthly cap, and the month's payment status."""

    partner_user_id: str
    as_of: Instant
    week: WeekHoursView
    allowance: MonthAllowanceView


# --- partner pull API (out) ----------------------------------------------------------------

_POSTING_EXAMPLE: dict[str, Any] = {
    "posting_id": "pst_01hzy3k8d2v7q9",
    "version": 4,
    "status": "open",
    "title": "어린이도서관 책 정리",
    "description": "반납된 책을 서가에 꽂고 열람실을 정리합니다.",
    "tags": ["도서관", "실내"],
    "facility_name": "수완 작은도서관",
    "facility_dong": "수완동",
    "facility_address": "광주 광산구 수완로 12",
    "facility_contact": "062-960-0000",
    "starts_at": "2026-06-02T10:00:00+09:00",
    "ends_at": "2026-06-02T13:00:00+09:00",
    "capacity": 4,
    "seats_left": 1,
    "waitlist_length": 2,
    "hourly_rate_won": 12000,
    "shift_allowance_won": 36000,
    "selection": "first_come",
    "applications_close_at": None,
    "requires_child_safety_check": True,
    "published_at": "2026-05-20T09:00:00+00:00",
    "updated_at": "2026-05-21T02:14:05.120000+00:00",
}


class PartnerPosting(BaseModel):
    """A posting as the partner lists it. `version` grows by one with every change the
    partner can see (terms, status, booking counts); keep the highest you have seen and
    skip an item whose `version` is not higher."""

    model_config = ConfigDict(json_schema_extra={"examples": [_POSTING_EXAMPLE]})

    posting_id: str
    version: int = Field(description="monotonic per posting; grows with every visible change")
    status: Literal["open", "closed", "cancelled"]
    title: str
    description: str
    tags: list[str]
    facility_name: str
    facility_dong: str
    facility_address: str | None
    facility_contact: str | None
    starts_at: Instant
    ends_at: Instant
    capacity: int
    seats_left: int = Field(description="seats not confirmed to anyone (never below 0)")
    waitlist_length: int
    hourly_rate_won: int | None = Field(description="null for postings opened before it was kept")
    shift_allowance_won: int | None = Field(
        description="the allowance of the whole shift: floor(hourly_rate_won × minutes / 60)"
    )
    selection: Literal["first_come", "draw"]
    applications_close_at: Instant | None
    requires_child_safety_check: bool
    published_at: Instant
    updated_at: Instant = Field(
        description="when `version` last grew; pass it back as `updated_since`"
    )


class PartnerPostingPage(Page[PartnerPosting]):
    """Postings by `updated_at` (oldest change first), then id: a partner that pages to
    the end has seen every change up to then."""


class PartnerApplication(BaseModel):
    """An application as the partner tracks it: its decision, its place on the waitlist
    now, and its booking. `held` while its posting is not known yet."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "application_id": "app_7f3a9c0e12b44d6e8a10",
                    "posting_id": "pst_01hzy3k8d2v7q9",
                    "partner_user_id": "karrot_5d1e0b7c9a2f4e38",
                    "status": "waitlisted",
                    "reason": None,
                    "waitlist_position": 2,
                    "booking_id": "bkg_0c4e8d2a6b1f3e5d7c9a",
                    "received_at": "2026-05-21T02:14:04.900000+00:00",
                    "decided_at": "2026-05-21T02:14:05.120000+00:00",
                }
            ]
        }
    )

    application_id: str
    posting_id: str
    partner_user_id: str
    status: Literal[
        "held",
        "pending",
        "confirmed",
        "waitlisted",
        "rejected",
        "withdrawn",
        "cancelled",
        "released",
    ]
    reason: str | None = Field(description="the reason code of a rejection or cancellation")
    waitlist_position: int | None = Field(description="1-based, now; only while waitlisted")
    booking_id: str | None
    received_at: Instant
    decided_at: Instant | None


class PartnerBooking(BaseModel):
    """One of a citizen's bookings ("my shifts") with its shift."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "booking_id": "bkg_0c4e8d2a6b1f3e5d7c9a",
                    "application_id": "app_7f3a9c0e12b44d6e8a10",
                    "posting_id": "pst_01hzy3k8d2v7q9",
                    "status": "confirmed",
                    "reason": None,
                    "waitlist_position": None,
                    "check_in_code": "9RCPQE",
                    "title": "어린이도서관 책 정리",
                    "facility_name": "수완 작은도서관",
                    "facility_dong": "수완동",
                    "facility_address": "광주 광산구 수완로 12",
                    "facility_contact": "062-960-0000",
                    "starts_at": "2026-06-02T10:00:00+09:00",
                    "ends_at": "2026-06-02T13:00:00+09:00",
                    "hourly_rate_won": 12000,
                    "shift_allowance_won": 36000,
                    "posting_status": "open",
                    "confirmed_at": "2026-05-21T02:14:05.120000+00:00",
                    "cancelled_at": None,
                    "cancelled_by": None,
                }
            ]
        }
    )

    booking_id: str
    application_id: str
    posting_id: str
    status: Literal["confirmed", "waitlisted", "cancelled"]
    reason: str | None = Field(description="why a cancelled booking was cancelled")
    waitlist_position: int | None = Field(description="1-based, now; only while waitlisted")
    check_in_code: str | None = Field(
        default=None,
        description="the code the citizen shows at the facility's door (confirmed bookings)",
    )
    title: str
    facility_name: str
    facility_dong: str
    facility_address: str | None
    facility_contact: str | None
    starts_at: Instant
    ends_at: Instant
    hourly_rate_won: int | None
    shift_allowance_won: int | None
    posting_status: Literal["open", "closed", "cancelled"]
    confirmed_at: Instant | None
    cancelled_at: Instant | None
    cancelled_by: Literal["citizen", "facility", "system"] | None


class PartnerBookingPage(Page[PartnerBooking]):
    """A citizen's bookings, soonest shift first (then booking id)."""


# --- partner token rotation (admin) ----------------------------------------------------------


class TokenRotation(StrictBody):
    """How long the partner's current tokens keep working after the new one is issued
    (default PARTNER_TOKEN_ROTATION_OVERLAP_S, at most ..._OVERLAP_MAX_S; 0 after a leak)."""

    overlap_s: int | None = Field(default=None, ge=0)


class RotatedTokenView(BaseModel):
    """The new partner token, shown this once (only its hash is stored)."""

    partner_id: str
    key_id: str
    token: str
    previous_valid_until: Instant

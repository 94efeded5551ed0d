"""The HTTP shapes of the registry: request bodies (unknown fields refused) and responses.

Text fields are `shared.schemas.NonBlank`: trimmed, never only spaces, and checked for what
Postgres cannot store (NUL, lone surrogates); timestamps must carry an offset and lie in a
sane range, so a strange but well-formed request is a 400, never a 500.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from registry.domain.attendance import AttendanceStatus
from registry.domain.checkin import CODE_TYPED_PATTERN
from registry.domain.facilities import FacilityKind
from registry.domain.postings import PostingStatus, Selection
from shared.schemas import Instant, NonBlank, StrictBody
from shared.web import Page

T = TypeVar("T")

ID_PATTERN = r"^[A-Za-z0-9_\-]{1,64}$"


Timestamp = Instant  # ISO 8601 text with an offset, years YEAR_MIN..YEAR_MAX
Tag = Annotated[str, NonBlank(40)]
Title = Annotated[str, NonBlank(200)]
Description = Annotated[str, NonBlank(4000, empty_ok=True)]
FacilityName = Annotated[str, NonBlank(200)]
Dong = Annotated[str, NonBlank(50)]
Address = Annotated[str, NonBlank(300)]
Phone = Annotated[str, NonBlank(30, pattern=r"^[0-9+\-() ]{3,30}$")]
Note = Annotated[str, NonBlank(500)]


class Body(StrictBody):
    """A write body: strict JSON types, unknown fields refused (shared/schemas.py)."""


class DataPage(Page[T], Generic[T]):
    """A registry list: the shared page (`items`, `next_cursor`) that also answers its
    items as `data`, the name registry lists had first (the console and other clients read
    it)."""

    data: list[T] = Field(description="the same items as `items`")

    @model_validator(mode="before")
    @classmethod
    def _data_is_items(cls, values: Any) -> Any:
        if isinstance(values, dict) and "data" not in values and "items" in values:
            return {**values, "data": values["items"]}
        return values


# --- admin ----------------------------------------------------------------------------------


class FacilityCreate(Body):
    name: FacilityName
    kind: FacilityKind
    dong: Dong
    address: Address | None = None
    contact_phone: Phone | None = None
    requires_child_safety_check: bool


class FacilityPatchBody(Body):
    """Only the fields sent change; at least one must be sent. `address` and
    `contact_phone` may be `null` (none); the others may not."""

    name: FacilityName | None = None
    kind: FacilityKind | None = None
    dong: Dong | None = None
    address: Address | None = None
    contact_phone: Phone | None = None

    @field_validator("name", "kind", "dong")
    @classmethod
    def _not_null(cls, value: str | None) -> str:
        if value is None:
            raise PydanticCustomError("null_forbidden", "may be changed, not removed")
        return value

    @model_validator(mode="after")
    def _something(self) -> FacilityPatchBody:
        if not self.model_fields_set:
            raise ValueError("send at least one field to change")
        return self


class RotateBody(Body):
    """Optional: how long the keys issued before keep working (seconds; bounded by the
    settings, default the configured overlap, 0 out of the box)."""

    overlap_s: int | None = Field(default=None, ge=0, le=30 * 24 * 3600)


class FacilityView(BaseModel):
    id: str
    name: str
    kind: FacilityKind
    dong: str
    address: str | None
    contact_phone: str | None
    requires_child_safety_check: bool
    status: Literal["active", "suspended"]
    created_at: datetime
    suspended_at: datetime | None


class FacilityCreated(FacilityView):
    api_key: str = Field(description="shown this once; only its hash is stored")
    key_id: str


class FacilityPage(DataPage[FacilityView]):
    """Facilities, oldest first."""


class KeyRotated(BaseModel):
    facility_id: str
    key_id: str
    api_key: str = Field(description="shown this once; only its hash is stored")
    previous_keys_valid_until: datetime = Field(
        description="when the keys issued before this one stop working"
    )
    overlap_s: int = Field(default=0, description="seconds the previous keys keep working")


class FacilitySuspended(BaseModel):
    facility: FacilityView
    cancelled_posting_ids: list[str]


class FacilityResumed(BaseModel):
    """A suspension lifted: the keys it had stay expired, so a new one is issued."""

    facility: FacilityView
    key_id: str
    api_key: str = Field(description="shown this once; only its hash is stored")


class FacilityChangeView(BaseModel):
    """One administrator's change of a facility (append-only audit)."""

    id: int
    facility_id: str
    action: Literal["registered", "edited", "suspended", "resumed", "key_rotated"]
    changes: dict[str, Any] = Field(
        description="edited: `{field: {from, to}}`; otherwise what the action did"
    )
    actor_role: str
    actor_staff_id: str | None
    staff_id_self_declared: bool = Field(description="the staff id is only what the client said")
    request_id: str | None
    client_address: str | None
    at: datetime = Field(description="the service's clock")
    recorded_at: datetime = Field(description="the wall clock")


class FacilityChangePage(DataPage[FacilityChangeView]):
    """A facility's changes, oldest first."""


# --- postings -------------------------------------------------------------------------------


class PostingCreate(Body):
    title: Title
    description: Description = ""
    starts_at: Timestamp
    ends_at: Timestamp
    capacity: int = Field(ge=1, le=10_000, description="bounded further by the settings")
    selection: Selection
    applications_close_at: Timestamp | None = None
    requires_child_safety_check: bool | None = Field(
        default=None, description="the facility's own setting applies in any case"
    )
    tags: list[Tag] = Field(default_factory=list, max_length=10)
    reconfirmation_required: bool = Field(
        default=False,
        description="ask booked citizens to reconfirm before the shift (the matcher's policy)",
    )


class PostingPatchBody(Body):
    """Only the fields sent change; at least one must be sent."""

    title: Title | None = None
    description: Description | None = None
    capacity: int | None = Field(default=None, ge=1, le=10_000)
    starts_at: Timestamp | None = None
    ends_at: Timestamp | None = None
    applications_close_at: Timestamp | None = None
    tags: list[Tag] | None = Field(default=None, max_length=10)
    reconfirmation_required: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> PostingPatchBody:
        if not any(v is not None for v in self.model_dump().values()):
            raise ValueError("send at least one field to change")
        return self


class CancelBody(Body):
    """Optional: a note kept with the cancellation (not sent to citizens)."""

    note: Note | None = None


class Rejection(BaseModel):
    reason: str
    detail: str = Field(
        description="why, and what this shift needs; not the programme's remaining budget"
    )
    rejected_at: datetime | None


class UpdateRejection(BaseModel):
    revision: int
    reason: str
    requested_won: int = Field(description="what the refused change of this shift needed")
    available_won: int | None = Field(
        description="null on the facility API: the programme's budget is for finance and"
        " administrators"
    )
    shortfall_won: int | None = Field(
        description="null on the facility API (with the request it gives the budget away)"
    )
    restored: dict[str, Any] = Field(description="the capacity and times put back")
    at: datetime


class PostingView(BaseModel):
    id: str
    facility_id: str
    facility_name: str = Field(
        default="", description="the facility's name (for the console and printed sheets)"
    )
    title: str
    description: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    selection: Selection
    applications_close_at: datetime | None
    requires_child_safety_check: bool
    tags: list[str]
    reconfirmation_required: bool = False
    status: PostingStatus
    revision: int = Field(description="0 as submitted; n after the n-th accepted change")
    reservation_id: str | None
    budget_answer_overdue: bool = Field(
        description="pending_budget for longer than the configured time (still waiting)"
    )
    rejection: Rejection | None
    last_update_rejected: UpdateRejection | None
    confirmed_count: int
    waitlisted_count: int
    cancel_reason: str | None
    cancel_note: str | None = Field(
        default=None,
        description="the note the facility gave when it cancelled (`POST .../cancel`); null"
        " when none, and for a cancellation by suspension",
    )
    attendance_window_closes_at: datetime
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    cancelled_at: datetime | None
    closed_at: datetime | None


class PostingPage(DataPage[PostingView]):
    """A facility's postings, oldest first."""


class PostingEstimate(BaseModel):
    """What a shift would cost if posted now: per seat the payout of the full shift,
    `floor(hourly_rate_won × scheduled_minutes / 60)`, times the seats: what the allowance
    reserves from the budget when it is posted. The rate is the one in force on the Seoul
    date of the start in the allowance's rate table as the registry last received it; the
    money fields are null while no rate is known for that date (posting still works)."""

    starts_at: datetime
    ends_at: datetime
    capacity: int
    scheduled_minutes: int = Field(description="whole minutes (a partial minute is not paid)")
    rate_known: bool = Field(description="false until the allowance's rate table is received")
    hourly_rate_won: int | None
    seat_payout_won: int | None = Field(description="one seat: the full shift's payout")
    total_won: int | None = Field(description="capacity × seat_payout_won")
    rate_effective_from: date | None = Field(description="when the rate used took effect")
    rate_source: str | None = Field(description="where the rate comes from")
    rates_version: int | None = Field(
        description="the version of the allowance's rate table the registry holds"
    )


class AttendanceView(BaseModel):
    attendance_id: str
    status: AttendanceStatus
    minutes: int
    allowance_won: int | None = Field(
        default=None,
        description="the paid minutes at the hourly rate in force on the shift's day: what"
        " the shift earns the citizen before their monthly cap (the allowance pays it); null"
        " while the registry holds no rate for that day",
    )
    checked_in_at: datetime | None
    checked_out_at: datetime | None
    revision: int


class DoorView(BaseModel):
    """When the citizen checked in and out at the door (by code)."""

    checked_in_at: datetime
    checked_out_at: datetime | None


class RosterEntry(BaseModel):
    booking_id: str
    status: Literal["confirmed", "waitlisted", "cancelled"] = Field(
        description="`cancelled` only on a cancelled posting's roster: a booking its"
        " cancellation ended"
    )
    waitlist_position: int | None
    citizen_display: str = Field(description="masked partner id; nothing else of the citizen")
    display_name: str | None = Field(
        default=None,
        description="the name the partner app shows for the citizen, when the partner sent"
        " one (show `citizen_display` otherwise)",
    )
    check_in_code: str | None = Field(
        default=None,
        description="the code the citizen shows at the door (confirmed bookings made since"
        " codes exist)",
    )
    check_in: DoorView | None = Field(
        default=None, description="the check-in and check-out by code, once checked in"
    )
    confirmed_at: datetime | None
    promoted_at: datetime | None
    waitlisted_at: datetime | None
    attendance: AttendanceView | None
    cancelled_at: datetime | None = Field(
        default=None, description="when the booking was cancelled (status `cancelled`)"
    )
    cancelled_by: Literal["citizen", "facility", "system"] | None = Field(
        default=None,
        description="who cancelled it: the facility's own cancellation, or the system's (a"
        " suspension); `citizen` when a withdrawal crossed the posting's cancellation",
    )
    was_status: Literal["confirmed", "waitlisted"] | None = Field(
        default=None,
        description="what a cancelled booking was before (null for bookings cancelled"
        " before the registry kept it)",
    )


class Roster(BaseModel):
    posting_id: str
    capacity: int
    confirmed_count: int
    waitlisted_count: int
    entries: list[RosterEntry] = Field(
        description="every confirmed booking, then the waitlist in order (bounded); for a"
        " cancelled posting, then the bookings its cancellation ended (bounded), whose"
        " cancellation the matcher confirms a moment after the posting's"
    )


class AttendanceRecordIn(Body):
    booking_id: Annotated[str, Field(pattern=ID_PATTERN)]
    status: AttendanceStatus
    checked_in_at: Timestamp | None = None
    checked_out_at: Timestamp | None = None


class AttendanceBody(Body):
    records: list[AttendanceRecordIn] = Field(min_length=1, max_length=400)


class CheckInBody(Body):
    code: Annotated[str, NonBlank(32, pattern=CODE_TYPED_PATTERN)] = Field(
        description="the check-in code the citizen shows; spaces, dashes and small letters"
        " are fine (`ab3-d4f` is `AB3D4F`)"
    )


class AttendanceOut(BaseModel):
    attendance_id: str
    booking_id: str
    status: AttendanceStatus
    minutes: int
    scheduled_minutes: int
    checked_in_at: datetime | None
    checked_out_at: datetime | None
    revision: int
    outcome: Literal["recorded", "unchanged", "replaced", "corrected"]


class AttendanceResult(BaseModel):
    posting_id: str
    phase: Literal["recording", "correcting"]
    window_closes_at: datetime
    records: list[AttendanceOut]


class DoorResult(BaseModel):
    """The booking checked in or out, with its times at the door; a check-out also answers
    the attendance it recorded (paid minutes by the attendance rules)."""

    posting_id: str
    booking_id: str
    citizen_display: str
    display_name: str | None
    check_in_code: str
    check_in: DoorView
    attendance: AttendanceOut | None

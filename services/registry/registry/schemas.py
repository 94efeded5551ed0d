"""The HTTP shapes of the registry: request bodies (unknown fields refused) and responses.

Strings that reach Postgres are checked for what Postgres cannot store (NUL, lone
surrogates) and timestamps must carry an offset and lie in a sane range, so a strange but
well-formed request is a 400, never a 500.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, Field, model_validator

from registry.domain.attendance import AttendanceStatus
from registry.domain.facilities import FacilityKind
from registry.domain.postings import PostingStatus, Selection
from shared.schemas import Instant, StrictBody
from shared.web import Page

T = TypeVar("T")

ID_PATTERN = r"^[A-Za-z0-9_\-]{1,64}$"


def _storable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text") from exc
    return value


Timestamp = Instant  # ISO 8601 text with an offset, years YEAR_MIN..YEAR_MAX
Tag = Annotated[str, Field(min_length=1, max_length=40), AfterValidator(_storable)]


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
    name: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_storable)]
    kind: FacilityKind
    dong: Annotated[str, Field(min_length=1, max_length=50), AfterValidator(_storable)]
    address: Annotated[str, Field(max_length=300), AfterValidator(_storable)] | None = None
    contact_phone: Annotated[str, Field(pattern=r"^[0-9+\-() ]{3,30}$")] | None = None
    requires_child_safety_check: bool


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


class FacilitySuspended(BaseModel):
    facility: FacilityView
    cancelled_posting_ids: list[str]


# --- postings -------------------------------------------------------------------------------


class PostingCreate(Body):
    title: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_storable)]
    description: Annotated[str, Field(max_length=4000), AfterValidator(_storable)] = ""
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

    title: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_storable)] | None = (
        None
    )
    description: Annotated[str, Field(max_length=4000), AfterValidator(_storable)] | None = None
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

    note: Annotated[str, Field(max_length=500), AfterValidator(_storable)] | None = None


class Rejection(BaseModel):
    reason: str
    detail: str
    rejected_at: datetime | None


class UpdateRejection(BaseModel):
    revision: int
    reason: str
    requested_won: int
    available_won: int
    shortfall_won: int
    restored: dict[str, Any] = Field(description="the capacity and times put back")
    at: datetime


class PostingView(BaseModel):
    id: str
    facility_id: str
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
    checked_in_at: datetime | None
    checked_out_at: datetime | None
    revision: int


class RosterEntry(BaseModel):
    booking_id: str
    status: Literal["confirmed", "waitlisted"]
    waitlist_position: int | None
    citizen_display: str = Field(description="masked partner id; nothing else of the citizen")
    confirmed_at: datetime | None
    promoted_at: datetime | None
    waitlisted_at: datetime | None
    attendance: AttendanceView | None


class Roster(BaseModel):
    posting_id: str
    capacity: int
    confirmed_count: int
    waitlisted_count: int
    entries: list[RosterEntry] = Field(
        description="every confirmed booking, then the waitlist in order (bounded)"
    )


class AttendanceRecordIn(Body):
    booking_id: Annotated[str, Field(pattern=ID_PATTERN)]
    status: AttendanceStatus
    checked_in_at: Timestamp | None = None
    checked_out_at: Timestamp | None = None


class AttendanceBody(Body):
    records: list[AttendanceRecordIn] = Field(min_length=1, max_length=400)


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

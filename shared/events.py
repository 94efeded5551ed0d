"""The event envelope and every event of BRIEF §3, as pydantic models.

An event is a small immutable record: its class says which topic it goes to, what its
`type` and `version` are, and which field is its key (per-entity order). Unknown fields
are refused so a producer's typo fails loudly instead of being silently dropped. A new
version of an event is a new class with the same `TYPE` and a higher `VERSION`.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, ClassVar, Literal, NamedTuple

import pydantic_core
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from shared import topics
from shared.ids import random_uuid

KEY_LENGTH_MAX = 200  # an envelope's key (a Kafka message key, an outbox row's)


class Envelope(BaseModel):
    """What travels on every topic: the idempotency key, the type, and the data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: uuid.UUID
    type: str = Field(min_length=1, max_length=100)
    version: int = Field(ge=1)
    occurred_at: AwareDatetime
    producer: str = Field(min_length=1, max_length=50)
    key: str = Field(min_length=1, max_length=KEY_LENGTH_MAX)
    data: dict[str, Any]

    def to_bytes(self) -> bytes:
        # pydantic's own serializer writes the JSON in one step (no dict in between).
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        return cls.model_validate_json(raw)


class Event(BaseModel):
    """Base of every event's data. Subclasses set TYPE, TOPIC and KEY_FIELD."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1
    TOPIC: ClassVar[str]
    KEY_FIELD: ClassVar[str]

    def key(self) -> str:
        return str(getattr(self, self.KEY_FIELD))

    def envelope(
        self, *, producer: str, occurred_at: datetime, event_id: uuid.UUID | None = None
    ) -> Envelope:
        """Wrap this event; pass `event_id` when the id must be derived (idempotent retries)."""
        return Envelope(
            event_id=event_id or random_uuid(),
            type=self.TYPE,
            version=self.VERSION,
            occurred_at=occurred_at,
            producer=producer,
            key=self.key(),
            data=self.model_dump(mode="json"),
        )

    def encode(
        self, *, producer: str, occurred_at: datetime, event_id: uuid.UUID | None = None
    ) -> Encoded:
        """This event's envelope as written to a topic or the outbox: the bytes of
        `envelope(...).to_bytes()` in one serialisation pass, without the data dict and
        the `Envelope` validated from it (a quarter of the cost; issue 20's ingest
        profile). The event was validated when built; of the envelope's own bounds only the
        key's depends on it, and it is checked."""
        key = self.key()
        if not 0 < len(key) <= KEY_LENGTH_MAX:
            # what `Envelope` would refuse, refused here too: a consumer could not read it
            raise ValueError(f"an event key must be 1 to {KEY_LENGTH_MAX} characters: {key!r}")
        event_id = event_id or random_uuid()
        payload = pydantic_core.to_json(
            {
                "event_id": event_id,
                "type": self.TYPE,
                "version": self.VERSION,
                "occurred_at": occurred_at,
                "producer": producer,
                "key": key,
                "data": self,
            }
        )
        return Encoded(event_id, key, payload)


class Encoded(NamedTuple):
    """An event's envelope serialised: what a producer or an outbox row needs of it."""

    event_id: uuid.UUID
    key: str
    payload: bytes


_REGISTRY: dict[tuple[str, int], type[Event]] = {}


def register(cls: type[Event]) -> type[Event]:
    """Make an event class known to `parse_event` (used as a class decorator)."""
    _REGISTRY[(cls.TYPE, cls.VERSION)] = cls
    return cls


class UnknownEventError(ValueError):
    """The envelope names a type/version this code does not know."""


def parse_event(envelope: Envelope) -> Event:
    """Validate an envelope's data against the model of its type and version."""
    cls = _REGISTRY.get((envelope.type, envelope.version))
    if cls is None:
        raise UnknownEventError(f"unknown event {envelope.type} v{envelope.version}")
    return cls.model_validate(envelope.data)


def event_classes() -> list[type[Event]]:
    """The system's event classes, those defined here (for AsyncAPI and tests); classes a
    test registers for its own scratch topics are parsed but not listed."""
    return [cls for cls in _REGISTRY.values() if cls.__module__ == __name__]


Selection = Literal["first_come", "draw"]


# --- registry.postings.v1 (key: posting_id) -------------------------------------------


class _PostingEvent(Event):
    TOPIC: ClassVar[str] = topics.REGISTRY_POSTINGS
    KEY_FIELD: ClassVar[str] = "posting_id"
    posting_id: str


class _PostingTerms(_PostingEvent):
    """What the matcher and allowance need to know of a shift."""

    facility_id: str
    facility_name: str
    facility_dong: str
    title: str
    description: str = ""
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    capacity: int = Field(ge=1)
    selection: Selection
    applications_close_at: AwareDatetime | None = None
    requires_child_safety_check: bool = False
    tags: list[str] = Field(default_factory=list)
    reconfirmation_required: bool = Field(
        default=False,
        description="the facility asks citizens to reconfirm 48 h before (matcher policy)",
    )
    # The facility's address and contact as the registry holds them (optional: events
    # written before they were carried have none), shown to citizens by the partner.
    facility_address: str | None = None
    facility_contact: str | None = None


@register
class PostingSubmitted(_PostingTerms):
    """A facility posted a shift; allowance is asked to reserve its budget."""

    TYPE: ClassVar[str] = "PostingSubmitted"


@register
class PostingPublished(_PostingTerms):
    """The budget is reserved: the shift is open for applications."""

    TYPE: ClassVar[str] = "PostingPublished"
    reservation_id: str
    # The rate the allowance reserved the budget at (BudgetReserved.hourly_rate_won), so
    # the partner can show the pay; None in events written before it was carried.
    hourly_rate_won: int | None = Field(default=None, ge=1)


@register
class PostingUpdated(_PostingTerms):
    """The facility changed a posting; carries the whole new state and the old capacity."""

    TYPE: ClassVar[str] = "PostingUpdated"
    revision: int = Field(ge=1)
    # The rate of the posting's latest reservation (as on PostingPublished); None if unknown.
    hourly_rate_won: int | None = Field(default=None, ge=1)
    previous_capacity: int = Field(ge=1)
    previous_starts_at: AwareDatetime
    previous_ends_at: AwareDatetime


@register
class PostingCancelled(_PostingEvent):
    """The facility (or an admin suspending it) cancelled: bookings cancelled, budget released."""

    TYPE: ClassVar[str] = "PostingCancelled"
    facility_id: str
    reason: Literal["facility", "facility_suspended", "admin"]
    cancelled_at: AwareDatetime


@register
class PostingClosed(_PostingEvent):
    """The shift is over and its attendance window has passed: release what is unused."""

    TYPE: ClassVar[str] = "PostingClosed"
    facility_id: str
    closed_at: AwareDatetime


@register
class PostingRejected(_PostingEvent):
    """The posting could not be opened (budget refused); the facility can read why."""

    TYPE: ClassVar[str] = "PostingRejected"
    facility_id: str
    reason: str
    detail: str = ""


# --- registry.attendance.v1 (key: posting_id) -----------------------------------------

AttendanceStatus = Literal["attended", "no_show"]


class _AttendanceEvent(Event):
    TOPIC: ClassVar[str] = topics.REGISTRY_ATTENDANCE
    KEY_FIELD: ClassVar[str] = "posting_id"
    attendance_id: str
    posting_id: str
    facility_id: str
    booking_id: str
    citizen_id: str
    status: AttendanceStatus
    minutes: int = Field(ge=0, description="paid minutes: attended, at most scheduled")
    scheduled_minutes: int = Field(ge=1)
    shift_starts_at: AwareDatetime
    checked_in_at: AwareDatetime | None = None
    checked_out_at: AwareDatetime | None = None
    revision: int = Field(ge=1, default=1)


@register
class AttendanceRecorded(_AttendanceEvent):
    """A facility recorded who came; allowance pays from it, matcher counts no-shows."""

    TYPE: ClassVar[str] = "AttendanceRecorded"


@register
class AttendanceCorrected(_AttendanceEvent):
    """A correction after the attendance window: reverse the old payout, post the new."""

    TYPE: ClassVar[str] = "AttendanceCorrected"
    previous_status: AttendanceStatus
    previous_minutes: int = Field(ge=0)


# --- matcher.applications.v1 (key: posting_id) ----------------------------------------


# The longest display name a partner may send (the roster and the sign-in sheet show it).
DISPLAY_NAME_LENGTH_MAX = 40
# A check-in code: what the citizen shows at the door (generated by the matcher).
CHECK_IN_CODE_PATTERN = r"^[A-Z0-9]{4,12}$"


class CitizenProfile(BaseModel):
    """What the partner tells us of a citizen: only what the eligibility rules need.

    No birth date in clear on the topic (docs/decisions/0013): ingest publishes
    `adult_from`, the first day the citizen is of the policy's minimum age. `birth_date`
    is read only from events written before that change, never written now."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    partner_user_id: str = Field(min_length=1, max_length=100)
    dong: str = Field(min_length=1, max_length=50)
    neighbourhood_verified_at: AwareDatetime
    adult_from: date | None = None
    birth_date: date | None = Field(default=None, exclude_if=lambda v: v is None)
    child_safety_check: bool
    display_name: str | None = Field(
        default=None,
        max_length=DISPLAY_NAME_LENGTH_MAX,
        exclude_if=lambda v: v is None,
        description="the name the partner shows for the citizen, for the facility's roster;"
        " absent when the partner sends none",
    )

    @model_validator(mode="after")
    def _an_age(self) -> CitizenProfile:
        if self.adult_from is None and self.birth_date is None:
            raise ValueError(
                "a citizen profile needs `adult_from` (or, in old events, `birth_date`)"
            )
        return self


class _ApplicationEvent(Event):
    TOPIC: ClassVar[str] = topics.MATCHER_APPLICATIONS
    KEY_FIELD: ClassVar[str] = "posting_id"
    application_id: str
    posting_id: str


@register
class ApplicationReceived(_ApplicationEvent):
    """A verified partner webhook: a citizen applied. Decided by the matcher loop."""

    TYPE: ClassVar[str] = "ApplicationReceived"
    citizen: CitizenProfile
    received_at: AwareDatetime
    webhook_id: str


@register
class ApplicationWithdrawn(_ApplicationEvent):
    """A verified partner webhook: the citizen withdrew."""

    TYPE: ClassVar[str] = "ApplicationWithdrawn"
    partner_user_id: str
    received_at: AwareDatetime
    webhook_id: str


@register
class ReconfirmationReceived(Event):
    """A verified partner webhook (`booking.reconfirmed`): the citizen confirmed they will
    come. Keyed by the booking (the partner does not send the posting)."""

    TYPE: ClassVar[str] = "ReconfirmationReceived"
    TOPIC: ClassVar[str] = topics.MATCHER_APPLICATIONS
    KEY_FIELD: ClassVar[str] = "booking_id"
    booking_id: str
    partner_user_id: str
    received_at: AwareDatetime
    webhook_id: str


# --- matcher.bookings.v1 (key: posting_id) --------------------------------------------


class _BookingEvent(Event):
    TOPIC: ClassVar[str] = topics.MATCHER_BOOKINGS
    KEY_FIELD: ClassVar[str] = "posting_id"
    posting_id: str
    application_id: str
    citizen_id: str
    citizen_display: str = Field(description="masked partner id, for the facility's roster")


class _BookingHeld(_BookingEvent):
    booking_id: str
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    display_name: str | None = Field(
        default=None,
        max_length=DISPLAY_NAME_LENGTH_MAX,
        description="the partner's display name of the citizen, when it sent one",
    )


_CheckInCode = Field(
    default=None,
    pattern=CHECK_IN_CODE_PATTERN,
    description="the code the citizen shows at the door to check in (absent in events"
    " written before codes existed)",
)


@register
class BookingConfirmed(_BookingHeld):
    TYPE: ClassVar[str] = "BookingConfirmed"
    check_in_code: str | None = _CheckInCode


@register
class BookingWaitlisted(_BookingHeld):
    TYPE: ClassVar[str] = "BookingWaitlisted"
    waitlist_position: int = Field(ge=1)


@register
class BookingPromoted(_BookingHeld):
    """The head of the waitlist took a freed seat."""

    TYPE: ClassVar[str] = "BookingPromoted"
    check_in_code: str | None = _CheckInCode


@register
class BookingCancelled(_BookingHeld):
    TYPE: ClassVar[str] = "BookingCancelled"
    cancelled_by: Literal["citizen", "facility", "system"]
    reason: str
    was_confirmed: bool
    strike: bool = False


@register
class BookingRejected(_BookingEvent):
    """The application was refused; `reason` is a stable code (e.g. `not_resident`)."""

    TYPE: ClassVar[str] = "BookingRejected"
    reason: str


class DrawEntry(BaseModel):
    """One frozen entry of a draw (docs/fairness.md): the entry id that is published (the
    application id), the internal pseudonymous citizen id (never published; the allowance's
    reports count repeat winners by it) and the allowance minutes of the weighting window,
    from which the weight follows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    entry_id: str
    citizen_id: str
    minutes_window: int = Field(ge=0)


@register
class DrawCompleted(Event):
    """A `draw` posting's draw ran: the revealed seed, the frozen entry list and the outcome,
    everything a verifier needs (docs/fairness.md). Published once per posting, after the
    bookings it decided; the allowance reads it for the outcome reports (selection odds,
    repeat winners)."""

    TYPE: ClassVar[str] = "DrawCompleted"
    TOPIC: ClassVar[str] = topics.MATCHER_BOOKINGS
    KEY_FIELD: ClassVar[str] = "posting_id"
    posting_id: str
    algorithm: str = Field(description="name and version, e.g. `es-hmac-sha256/v2`")
    seats: int = Field(ge=0)
    waitlist_room: int = Field(ge=0)
    half_weight_minutes: int = Field(ge=1)
    window_months: int = Field(ge=1)
    commitment: str = Field(description="lowercase hex sha256 of the seed, published at opening")
    entry_list_hash: str
    seed_hex: str
    entries: list[DrawEntry] = Field(max_length=100_000)
    confirmed: list[str] = Field(description="entry ids, in draw order")
    waitlisted: list[str] = Field(description="entry ids, in waitlist order")
    not_selected: list[str] = Field(description="entry ids")
    committed_at: AwareDatetime
    applications_close_at: AwareDatetime
    drawn_at: AwareDatetime


# --- allowance.budget.v1 (key: posting_id) --------------------------------------------


class _BudgetEvent(Event):
    TOPIC: ClassVar[str] = topics.ALLOWANCE_BUDGET
    KEY_FIELD: ClassVar[str] = "posting_id"
    posting_id: str


@register
class BudgetReserved(_BudgetEvent):
    """A pending reservation of `amount_won` for the posting (re-sent with a new total on
    an update: `revision` grows)."""

    TYPE: ClassVar[str] = "BudgetReserved"
    reservation_id: str
    fiscal_year: int
    amount_won: int = Field(ge=0)
    hourly_rate_won: int = Field(ge=1)
    revision: int = Field(ge=1, default=1)


@register
class BudgetRejected(_BudgetEvent):
    """The budget could not fund the posting (or an update of it)."""

    TYPE: ClassVar[str] = "BudgetRejected"
    reason: str
    requested_won: int = Field(ge=0)
    available_won: int
    shortfall_won: int = Field(ge=0)
    for_revision: int = Field(ge=0, default=0, description="0: the submission; n: update n")


@register
class BudgetReleased(_BudgetEvent):
    TYPE: ClassVar[str] = "BudgetReleased"
    reservation_id: str
    amount_won: int = Field(ge=0)
    reason: str


@register
class BudgetExhausted(_BudgetEvent):
    """Available budget cannot fund one more typical shift."""

    TYPE: ClassVar[str] = "BudgetExhausted"
    fiscal_year: int
    available_won: int


# --- allowance.payouts.v1 (key: citizen_id) -------------------------------------------


class _PayoutEvent(Event):
    TOPIC: ClassVar[str] = topics.ALLOWANCE_PAYOUTS
    KEY_FIELD: ClassVar[str] = "citizen_id"
    citizen_id: str


@register
class PayoutAccrued(_PayoutEvent):
    TYPE: ClassVar[str] = "PayoutAccrued"
    period: str = Field(pattern=r"^\d{4}-\d{2}$")
    posting_id: str
    booking_id: str
    attendance_id: str
    minutes_paid: int = Field(ge=0)
    hourly_rate_won: int = Field(ge=1)
    gross_won: int
    accrued_won: int
    capped_won: int = Field(ge=0)
    adjustment: bool = False


@register
class PayoutCapped(_PayoutEvent):
    TYPE: ClassVar[str] = "PayoutCapped"
    period: str = Field(pattern=r"^\d{4}-\d{2}$")
    attendance_id: str
    capped_won: int = Field(ge=0)
    cap_won: int = Field(ge=0)


@register
class PayoutReversed(_PayoutEvent):
    """A correction took back an earlier payout line (a PayoutAccrued follows when the
    corrected shift is still paid). Amounts are what was taken back, as positive numbers;
    `capped_released_won` is money the monthly cap had held back from the citizen's other
    shifts of that month and that is payable again."""

    TYPE: ClassVar[str] = "PayoutReversed"
    period: str = Field(pattern=r"^\d{4}-\d{2}$")
    posting_id: str
    booking_id: str
    attendance_id: str
    minutes_reversed: int = Field(ge=0)
    gross_reversed_won: int = Field(ge=0)
    accrued_reversed_won: int = Field(ge=0)
    capped_released_won: int = Field(ge=0)
    adjustment: bool = False


@register
class PayoutPaid(_PayoutEvent):
    """The bank reported a closed month's payout line transferred (`POST
    /v1/periods/{m}/transfer-results`, status `paid`); the partner may tell the citizen
    (`payout.paid`). One per line: a repeated identical result sends nothing."""

    TYPE: ClassVar[str] = "PayoutPaid"
    period: str = Field(pattern=r"^\d{4}-\d{2}$")
    amount_won: int = Field(ge=0, description="the net transferred")


@register
class PayoutFailed(_PayoutEvent):
    """The bank could not make a payout line's transfer (이체불능): its net was reversed in
    the ledger and is carried into the next closed month's payout file (`payout.failed`)."""

    TYPE: ClassVar[str] = "PayoutFailed"
    period: str = Field(pattern=r"^\d{4}-\d{2}$")
    amount_won: int = Field(ge=0, description="the net that was not transferred")
    reason: str = Field(default="", description="the bank's reason, as finance entered it")
    carried: bool = Field(default=True, description="carried into the next close's file")


@register
class PayoutHeldBack(_PayoutEvent):
    """A month's close held a citizen's payable money back (one per citizen and close):
    `reason` `no_payee_details` — no bank details were stored then; the money stays payable
    and is paid at the first close after they arrive. Added beside PeriodClosed (issue 16)
    so the matcher can show the citizen's month `held_back` with its reason."""

    TYPE: ClassVar[str] = "PayoutHeldBack"
    period: str = Field(pattern=r"^\d{4}-\d{2}$")
    amount_won: int = Field(ge=0, description="the payable balance held back")
    reason: Literal["no_payee_details"] = "no_payee_details"


@register
class PeriodClosed(_PayoutEvent):
    """Key is the period, not a citizen: one event per month close."""

    TYPE: ClassVar[str] = "PeriodClosed"
    KEY_FIELD: ClassVar[str] = "period"
    citizen_id: str = ""
    period: str = Field(pattern=r"^\d{4}-\d{2}$")
    closed_at: AwareDatetime
    citizens_count: int = Field(ge=0)
    payable_won: int = Field(ge=0)


@register
class PayeeAccepted(_PayoutEvent):
    """The allowance stored a citizen's bank details from the partner (a `PayeeSubmitted`);
    the matcher tells the partner `payee.accepted`. `webhook_id` is the submission's."""

    TYPE: ClassVar[str] = "PayeeAccepted"
    partner_user_id: str
    webhook_id: str


class PayeeRefusal(BaseModel):
    """One refused field of submitted bank details (a stable reason code)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    code: str


@register
class PayeeRejected(_PayoutEvent):
    """The allowance refused a citizen's bank details and stored nothing: `reason` is the
    first refusal's code (`unknown_bank`, `bad_account_number`, `holder_missing`, ...,
    or `unreadable` when the sealed details do not open), `refusals` every field's."""

    TYPE: ClassVar[str] = "PayeeRejected"
    partner_user_id: str
    webhook_id: str
    reason: str
    refusals: list[PayeeRefusal] = Field(default_factory=list, max_length=10)


# --- matcher.payees.v1 (key: partner_user_id) ------------------------------------------


@register
class PayeeSubmitted(Event):
    """A citizen's bank details, given through the partner (`citizen.payee_submitted`),
    sealed at ingest to the allowance's public key (shared/payee_seal.py, decision 0014):
    nothing on this topic is readable without the allowance's private key. `citizen_id`
    is the matcher's pseudonymous id of the partner user, the id statements print."""

    TYPE: ClassVar[str] = "PayeeSubmitted"
    TOPIC: ClassVar[str] = topics.MATCHER_PAYEES
    KEY_FIELD: ClassVar[str] = "partner_user_id"
    partner_user_id: str
    citizen_id: str
    webhook_id: str
    consent_at: AwareDatetime
    received_at: AwareDatetime
    seal_key_id: str = Field(min_length=1, max_length=32)
    sealed_details: str = Field(min_length=1, max_length=4096, description="base64 HPKE")


# --- allowance.policy.v1 (key: the table's name) ---------------------------------------


class CapYear(BaseModel):
    """One year of the allowance's cap table (BRIEF §5: both caps are policy values per year)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    year: int = Field(ge=2000, le=9998)
    weekly_hours_max: int = Field(ge=1, le=168, description="booked hours per ISO week")
    monthly_amount_max_won: int = Field(ge=0, description="allowance won per Seoul month")
    source: str = Field(min_length=1)


@register
class CapsChanged(Event):
    """The cap table in force, every year of it, sent each time a version is adopted (the
    seed at first start, then each `PUT /v1/admin/caps`). The allowance owns the table; the
    matcher enforces its weekly hours from this event, so there is one source for the cap.
    `caps_version` grows with each version: a consumer keeps the highest it has seen."""

    TYPE: ClassVar[str] = "CapsChanged"
    TOPIC: ClassVar[str] = topics.ALLOWANCE_POLICY
    KEY_FIELD: ClassVar[str] = "table"
    table: Literal["caps"] = "caps"
    caps_version: int = Field(ge=1)
    caps: list[CapYear] = Field(min_length=1, max_length=200)


class RateRow(BaseModel):
    """One entry of the allowance's hourly rate table (BRIEF §5: `effective_from →
    hourly_rate_won`, with the source of each value)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    effective_from: date = Field(description="a Seoul date; in force until the next entry")
    hourly_rate_won: int = Field(ge=1, le=1_000_000)
    source: str = Field(min_length=1)


@register
class RatesChanged(Event):
    """The hourly rate table in force, every entry of it, sent each time a version is
    adopted (the seed at first start, then each `PUT /v1/admin/rates`). The allowance owns
    the table and prices reservations with it; the registry keeps a copy to show a facility
    what a shift will cost before it posts (decision 0011). `rates_version` grows with each
    version: a consumer keeps the highest it has seen."""

    TYPE: ClassVar[str] = "RatesChanged"
    TOPIC: ClassVar[str] = topics.ALLOWANCE_POLICY
    KEY_FIELD: ClassVar[str] = "table"
    table: Literal["rates"] = "rates"
    rates_version: int = Field(ge=1)
    rates: list[RateRow] = Field(min_length=1, max_length=200)

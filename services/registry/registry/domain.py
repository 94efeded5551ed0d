"""The registry's rules as pure functions and small records: no I/O, no frameworks.

What is here: the facility rules (kinds, dongs), the posting state machine, the validation
of a shift's terms (BRIEF §5), the rules of a change to a posting (PATCH), how a budget
answer moves a posting, the attendance rules (window, minutes, corrections), opaque list
cursors and the fingerprint of an idempotent request. Times are aware datetimes; every
bound comes in as an argument from the settings.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

# --- facilities ---------------------------------------------------------------------------

FacilityKind = Literal[
    "children_centre", "small_library", "welfare_centre", "senior_centre", "park", "other"
]
FACILITY_KINDS: tuple[str, ...] = (
    "children_centre",
    "small_library",
    "welfare_centre",
    "senior_centre",
    "park",
    "other",
)
FacilityStatus = Literal["active", "suspended"]


@dataclass(frozen=True)
class FieldError:
    """One thing wrong with one field of a request, said so a person can act on it."""

    field: str
    message: str
    code: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "code": self.code}


def validate_dong(dong: str, dongs: Sequence[str]) -> list[FieldError]:
    """A facility must be in one of the configured Gwangsan-gu administrative dongs."""
    if dong in dongs:
        return []
    return [FieldError("dong", f"{dong!r} is not an administrative dong of Gwangsan-gu", "dong")]


def posting_requires_child_safety_check(facility_default: bool, requested: bool | None) -> bool:
    """A facility's setting is the floor: a posting may add the requirement, never drop it."""
    return facility_default or bool(requested)


def new_id(prefix: str) -> str:
    """A Stripe-like prefixed id (`fac_…`, `pst_…`)."""
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


# --- the posting state machine ------------------------------------------------------------

PostingStatus = Literal["pending_budget", "open", "rejected", "cancelled", "closed"]
POSTING_STATUSES: tuple[str, ...] = ("pending_budget", "open", "rejected", "cancelled", "closed")

# The only moves a posting can make; the same table is a trigger in the database.
TRANSITIONS: dict[str, frozenset[str]] = {
    "pending_budget": frozenset({"open", "rejected", "cancelled"}),
    "open": frozenset({"cancelled", "closed"}),
    "rejected": frozenset(),
    "cancelled": frozenset(),
    "closed": frozenset(),
}
CANCELLABLE: frozenset[str] = frozenset({"pending_budget", "open"})


class TransitionError(ValueError):
    """A posting was asked to make a move its state machine does not allow."""

    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"a posting cannot go from {current} to {target}")
        self.current = current
        self.target = target


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


def transition(current: str, target: str) -> str:
    """`target` if the move is allowed, else TransitionError."""
    if not can_transition(current, target):
        raise TransitionError(current, target)
    return target


# --- shift terms --------------------------------------------------------------------------

Selection = Literal["first_come", "draw"]


@dataclass(frozen=True)
class PostingBounds:
    """BRIEF §5's shift rules, from the settings."""

    duration_min_minutes: int = 30
    duration_max_minutes: int = 480
    capacity_min: int = 1
    capacity_max: int = 200
    horizon_days_max: int = 366


@dataclass(frozen=True)
class ShiftTerms:
    """What decides when a shift is, how many it takes and how they are chosen."""

    starts_at: datetime
    ends_at: datetime
    capacity: int
    selection: Selection
    applications_close_at: datetime | None = None


def scheduled_minutes(starts_at: datetime, ends_at: datetime) -> int:
    """Whole minutes of the scheduled shift."""
    return int((ends_at - starts_at).total_seconds() // 60)


def _aware(value: datetime) -> bool:
    return value.tzinfo is not None and value.utcoffset() is not None


def validate_terms(
    terms: ShiftTerms,
    now: datetime,
    bounds: PostingBounds,
    *,
    check_times: bool = True,
    check_capacity: bool = True,
) -> list[FieldError]:
    """Every way `terms` break BRIEF §5, one error per field (empty when they are fine).

    `check_times=False` skips the time rules (a change that keeps the times of a posting
    whose start may already be near); `check_capacity=False` the capacity bounds.
    """
    errors: list[FieldError] = []
    if check_capacity and not (bounds.capacity_min <= terms.capacity <= bounds.capacity_max):
        errors.append(
            FieldError(
                "capacity",
                f"capacity must be between {bounds.capacity_min} and {bounds.capacity_max}",
                "capacity_out_of_range",
            )
        )
    if not check_times:
        return errors
    stamps = {
        "starts_at": terms.starts_at,
        "ends_at": terms.ends_at,
        "applications_close_at": terms.applications_close_at,
    }
    naive = [name for name, value in stamps.items() if value is not None and not _aware(value)]
    for name in naive:
        errors.append(FieldError(name, "timestamps must carry a UTC offset", "timezone_required"))
    if naive:
        return errors
    horizon = now + timedelta(days=bounds.horizon_days_max)
    if terms.starts_at <= now:
        errors.append(FieldError("starts_at", "the shift must start in the future", "in_past"))
    elif terms.starts_at > horizon:
        errors.append(
            FieldError(
                "starts_at",
                f"a shift may be posted at most {bounds.horizon_days_max} days ahead",
                "too_far_ahead",
            )
        )
    duration_minutes = (terms.ends_at - terms.starts_at).total_seconds() / 60
    if terms.ends_at <= terms.starts_at:
        errors.append(FieldError("ends_at", "the shift must end after it starts", "ends_before"))
    elif not (bounds.duration_min_minutes <= duration_minutes <= bounds.duration_max_minutes):
        errors.append(
            FieldError(
                "ends_at",
                f"a shift lasts {bounds.duration_min_minutes} to "
                f"{bounds.duration_max_minutes} minutes",
                "duration_out_of_range",
            )
        )
    close_at = terms.applications_close_at
    if close_at is None:
        if terms.selection == "draw":
            errors.append(
                FieldError(
                    "applications_close_at",
                    "a draw needs applications_close_at (when the draw happens)",
                    "required_for_draw",
                )
            )
    elif close_at > terms.starts_at:
        errors.append(
            FieldError(
                "applications_close_at",
                "applications must close before the shift starts",
                "after_start",
            )
        )
    elif close_at <= now:
        errors.append(
            FieldError("applications_close_at", "must be in the future", "in_past"),
        )
    return errors


# --- changes to a posting (PATCH) ---------------------------------------------------------


@dataclass(frozen=True)
class PostingState:
    """The parts of a posting a facility can see change."""

    status: str
    title: str
    description: str
    tags: tuple[str, ...]
    terms: ShiftTerms


@dataclass(frozen=True)
class PostingPatch:
    """What a facility asked to change; None leaves a field as it is."""

    title: str | None = None
    description: str | None = None
    tags: tuple[str, ...] | None = None
    capacity: int | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    applications_close_at: datetime | None = None


COST_FIELDS: frozenset[str] = frozenset(
    {"capacity", "starts_at", "ends_at", "applications_close_at"}
)


@dataclass(frozen=True)
class PatchPlan:
    """The accepted change: the new state and what moved."""

    new: PostingState
    changed: tuple[str, ...]

    @property
    def times_changed(self) -> bool:
        return bool({"starts_at", "ends_at", "applications_close_at"} & set(self.changed))

    @property
    def cost_changed(self) -> bool:
        """Capacity or times: what the budget reservation depends on."""
        return bool(COST_FIELDS & set(self.changed))


class PatchRefusedError(ValueError):
    """A change the rules refuse. `status` is the HTTP answer it maps to (400 or 409)."""

    def __init__(self, status: int, code: str, detail: str, errors: list[FieldError]) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors


def plan_patch(
    current: PostingState,
    patch: PostingPatch,
    *,
    confirmed_count: int,
    active_count: int,
    now: datetime,
    bounds: PostingBounds,
) -> PatchPlan:
    """Apply the rules of a change, or raise PatchRefusedError saying which field and why.

    Only an open posting whose shift has not started changes. Capacity goes up or down to no
    less than the confirmed bookings; times change only while nobody is booked (confirmed
    or waitlisted). The new terms must satisfy the same rules as a new posting.
    """
    if current.status != "open":
        raise PatchRefusedError(
            409,
            "posting_not_editable",
            f"a posting that is {current.status} cannot be changed",
            [],
        )
    if current.terms.starts_at <= now:
        raise PatchRefusedError(
            409, "shift_started", "the shift has started; it cannot be changed any more", []
        )
    old = current.terms
    terms = replace(
        old,
        capacity=old.capacity if patch.capacity is None else patch.capacity,
        starts_at=old.starts_at if patch.starts_at is None else patch.starts_at,
        ends_at=old.ends_at if patch.ends_at is None else patch.ends_at,
        applications_close_at=(
            old.applications_close_at
            if patch.applications_close_at is None
            else patch.applications_close_at
        ),
    )
    new = PostingState(
        status=current.status,
        title=current.title if patch.title is None else patch.title,
        description=current.description if patch.description is None else patch.description,
        tags=current.tags if patch.tags is None else patch.tags,
        terms=terms,
    )
    changed = tuple(
        name
        for name, before, after in (
            ("title", current.title, new.title),
            ("description", current.description, new.description),
            ("tags", current.tags, new.tags),
            ("capacity", old.capacity, terms.capacity),
            ("starts_at", old.starts_at, terms.starts_at),
            ("ends_at", old.ends_at, terms.ends_at),
            ("applications_close_at", old.applications_close_at, terms.applications_close_at),
        )
        if before != after
    )
    plan = PatchPlan(new=new, changed=changed)
    errors = validate_terms(
        terms,
        now,
        bounds,
        check_times=plan.times_changed,
        check_capacity="capacity" in changed,
    )
    if errors:
        raise PatchRefusedError(400, "invalid_request", _fields_detail(errors), errors)
    if "capacity" in changed and terms.capacity < confirmed_count:
        raise PatchRefusedError(
            409,
            "capacity_below_confirmed",
            f"{confirmed_count} bookings are confirmed; capacity cannot go below that",
            [
                FieldError(
                    "capacity",
                    f"must be at least the {confirmed_count} confirmed bookings",
                    "below_confirmed",
                )
            ],
        )
    if plan.times_changed and active_count > 0:
        moved = [n for n in changed if n in ("starts_at", "ends_at", "applications_close_at")]
        raise PatchRefusedError(
            409,
            "times_locked",
            f"{active_count} citizens are booked or waitlisted; the times can no longer change",
            [FieldError(n, "cannot change once someone is booked", "booked") for n in moved],
        )
    return plan


def _fields_detail(errors: Sequence[FieldError]) -> str:
    return "invalid fields: " + ", ".join(sorted({e.field for e in errors}))


# --- budget answers -----------------------------------------------------------------------

ReservedAction = Literal["publish", "update_reservation", "ignore"]
RejectedAction = Literal["reject", "revert", "ignore"]


@dataclass(frozen=True)
class BudgetView:
    """What the registry knows of a posting's budget when an answer arrives."""

    status: str
    reservation_id: str | None
    budget_revision: int


def on_budget_reserved(
    view: BudgetView, *, reservation_id: str, revision: int
) -> tuple[ReservedAction, str]:
    """What BudgetReserved does to a posting, and why (for the log).

    The first reservation opens a pending posting. A revision of the same reservation (an
    update was funded) is noted; allowance numbers the submission's answer 1 and the answer
    to update n with n, so update 1's answer repeats revision 1 and is noted too. Anything
    else — a posting already cancelled or rejected, a second reservation, an older
    revision — changes nothing.
    """
    if view.status == "pending_budget":
        return "publish", "budget reserved"
    if view.status != "open":
        return "ignore", f"posting is {view.status}"
    if view.reservation_id != reservation_id:
        return "ignore", "another reservation already funds this posting"
    if revision < view.budget_revision:
        return "ignore", "an older revision"
    return "update_reservation", "an update was funded"


def on_budget_rejected(
    view: BudgetView,
    *,
    for_revision: int,
    refused_change_moved_cost: bool,
    superseded: bool,
) -> tuple[RejectedAction, str]:
    """What BudgetRejected does to a posting, and why.

    A refused submission rejects a pending posting. A refused update reverts the posting
    to its capacity and times before that update — unless that update did not move them
    (nothing to put back: an unknown or text-only revision), or a later change already
    moved them again (allowance answers that change on its own).
    """
    if for_revision == 0:
        if view.status == "pending_budget":
            return "reject", "budget refused"
        return "ignore", f"posting is {view.status}"
    if view.status != "open":
        return "ignore", f"posting is {view.status}"
    if not refused_change_moved_cost:
        return "ignore", "the refused revision did not change capacity or times"
    if superseded:
        return "ignore", "a later change superseded the refused one"
    return "revert", "update refused"


# --- attendance ---------------------------------------------------------------------------

AttendanceStatus = Literal["attended", "no_show"]
AttendancePhase = Literal["not_started", "recording", "correcting"]


@dataclass(frozen=True)
class AttendancePolicy:
    window: timedelta = timedelta(hours=72)
    slack: timedelta = timedelta(minutes=60)


@dataclass(frozen=True)
class Shift:
    starts_at: datetime
    ends_at: datetime

    @property
    def scheduled_minutes(self) -> int:
        return scheduled_minutes(self.starts_at, self.ends_at)


@dataclass(frozen=True)
class AttendanceInput:
    """One record as the facility sent it."""

    booking_id: str
    status: AttendanceStatus
    checked_in_at: datetime | None = None
    checked_out_at: datetime | None = None

    def same_as(self, other: AttendanceInput) -> bool:
        return (
            self.status == other.status
            and self.checked_in_at == other.checked_in_at
            and self.checked_out_at == other.checked_out_at
        )


@dataclass(frozen=True)
class RecordedAttendance:
    """A stored record."""

    attendance_id: str
    entry: AttendanceInput
    minutes: int
    revision: int


AttendanceAction = Literal["record", "unchanged", "replace", "correct", "too_late"]


def attendance_phase(now: datetime, shift: Shift, policy: AttendancePolicy) -> AttendancePhase:
    """Before the start nothing is recorded; until the window after the end records are
    recorded (and may be replaced); after it, changes are corrections."""
    if now < shift.starts_at:
        return "not_started"
    if now <= shift.ends_at + policy.window:
        return "recording"
    return "correcting"


def attendance_window_closes_at(shift: Shift, policy: AttendancePolicy) -> datetime:
    return shift.ends_at + policy.window


def validate_attendance(
    entry: AttendanceInput, shift: Shift, policy: AttendancePolicy, index: int
) -> list[FieldError]:
    """Times must be aware, in order, within the shift ± slack; a no-show has none."""
    prefix = f"records.{index}"
    errors: list[FieldError] = []
    stamps = {"checked_in_at": entry.checked_in_at, "checked_out_at": entry.checked_out_at}
    if entry.status == "no_show":
        for name, value in stamps.items():
            if value is not None:
                errors.append(
                    FieldError(f"{prefix}.{name}", "a no-show has no check-in/out", "no_show")
                )
        return errors
    earliest = shift.starts_at - policy.slack
    latest = shift.ends_at + policy.slack
    for name, value in stamps.items():
        if value is None:
            continue
        if not _aware(value):
            errors.append(
                FieldError(f"{prefix}.{name}", "must carry a UTC offset", "timezone_required")
            )
        elif not (earliest <= value <= latest):
            errors.append(
                FieldError(
                    f"{prefix}.{name}",
                    "must lie within the shift (with "
                    f"{int(policy.slack.total_seconds() // 60)} minutes of slack)",
                    "outside_shift",
                )
            )
    if errors:
        return errors
    if (
        entry.checked_in_at is not None
        and entry.checked_out_at is not None
        and entry.checked_out_at < entry.checked_in_at
    ):
        errors.append(
            FieldError(f"{prefix}.checked_out_at", "check-out is before check-in", "out_before_in")
        )
    return errors


def attended_minutes(entry: AttendanceInput, shift: Shift) -> int:
    """Paid minutes: 0 for a no-show; whole minutes between check-in and check-out clipped
    to the scheduled shift (a missing time is the shift's edge); never above scheduled."""
    if entry.status == "no_show":
        return 0
    start = max(entry.checked_in_at or shift.starts_at, shift.starts_at)
    end = min(entry.checked_out_at or shift.ends_at, shift.ends_at)
    if end <= start:
        return 0
    minutes = int((end - start).total_seconds() // 60)
    return min(minutes, shift.scheduled_minutes)


def decide_attendance(
    existing: RecordedAttendance | None, entry: AttendanceInput, phase: AttendancePhase
) -> AttendanceAction:
    """What a PUT of `entry` does, given what is stored and where in time we are."""
    if phase == "not_started":
        raise ValueError("attendance is not open before the shift starts")
    if existing is None:
        return "record" if phase == "recording" else "too_late"
    if existing.entry.same_as(entry):
        return "unchanged"
    return "replace" if phase == "recording" else "correct"


def attendance_id_for(booking_id: str) -> str:
    """Stable per booking: the same booking always has the same attendance id."""
    return "att_" + hashlib.sha256(booking_id.encode()).hexdigest()[:24]


# --- lists and idempotency ----------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """A position in a list ordered by (created_at, id): stable under inserts."""

    created_at: datetime
    id: str


class CursorError(ValueError):
    """The cursor is not one this service handed out."""


def encode_cursor(cursor: Cursor) -> str:
    raw = json.dumps([cursor.created_at.astimezone(UTC).isoformat(), cursor.id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    try:
        padded = text + "=" * (-len(text) % 4)
        created, ident = json.loads(base64.urlsafe_b64decode(padded.encode()))
        at = datetime.fromisoformat(created)
    except (ValueError, TypeError, binascii.Error, RecursionError) as exc:
        raise CursorError("not a cursor of this list") from exc
    if not isinstance(ident, str) or at.tzinfo is None:
        raise CursorError("not a cursor of this list")
    return Cursor(at, ident)


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests "the same" for an Idempotency-Key: method, path, and the body
    as JSON with sorted keys (so spacing and key order do not matter)."""
    try:
        parsed = json.loads(body) if body else None
        canonical = (
            json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode() if body else b""
        )
    except (ValueError, RecursionError):
        canonical = body
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


@dataclass(frozen=True)
class PageRequest:
    limit: int
    after: Cursor | None = None
    statuses: tuple[str, ...] = field(default_factory=tuple)
    starts_from: datetime | None = None
    starts_before: datetime | None = None

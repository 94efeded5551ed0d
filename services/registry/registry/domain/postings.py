"""Postings: the state machine, the terms of a shift and their rules (BRIEF §5), the rules
of a change (PATCH) and of a cancellation."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from registry.domain.errors import FieldError, Refusal, fields_detail
from shared.money import scheduled_minutes as scheduled_minutes  # whole minutes, one rule

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


def is_aware(value: datetime) -> bool:
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
    naive = [name for name, value in stamps.items() if value is not None and not is_aware(value)]
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
    reconfirmation_required: bool = False


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
    reconfirmation_required: bool | None = None


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


class PatchRefusedError(Refusal):
    """A change the rules refuse. `status` is the HTTP answer it maps to (400 or 409)."""


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
        reconfirmation_required=(
            current.reconfirmation_required
            if patch.reconfirmation_required is None
            else patch.reconfirmation_required
        ),
    )
    changed = tuple(
        name
        for name, before, after in (
            ("title", current.title, new.title),
            ("description", current.description, new.description),
            ("tags", current.tags, new.tags),
            (
                "reconfirmation_required",
                current.reconfirmation_required,
                new.reconfirmation_required,
            ),
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
        raise PatchRefusedError(400, "invalid_request", fields_detail(errors), errors)
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


# --- a new posting, a cancellation, a list ------------------------------------------------


@dataclass(frozen=True)
class PostingDraft:
    """A shift as the facility posts it."""

    title: str
    description: str
    terms: ShiftTerms
    requires_child_safety_check: bool | None
    tags: tuple[str, ...]
    reconfirmation_required: bool = False


def check_cancellable(status: str, starts_at: datetime, now: datetime) -> None:
    """A posting is cancelled while it is pending or open and its shift has not started."""
    if status not in CANCELLABLE:
        raise Refusal(
            409, "posting_not_cancellable", f"a posting that is {status} cannot be cancelled"
        )
    if starts_at <= now:
        raise Refusal(409, "shift_started", "the shift has started; it can no longer be cancelled")


@dataclass(frozen=True)
class PostingFilter:
    """What a facility's list of postings is narrowed to (nothing: all of them)."""

    statuses: tuple[str, ...] = ()
    starts_from: datetime | None = None
    starts_before: datetime | None = None

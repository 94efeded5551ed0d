"""Deciding applications and promotions for one posting, as pure functions.

The caller (the decision loop) holds the posting's lock and gives the posting's counts and
the applications in arrival order; the answer is one decision per application. A whole
batch (a rush of thousands) is decided in one call, so the store can write it in one
transaction with one bulk insert.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from matcher.domain.eligibility import Booked, Profile, Shift, profile_refusal, standing_refusal
from matcher.domain.policy import Policy, Reason

PostingStatus = Literal["open", "closed", "cancelled"]
Selection = Literal["first_come", "draw"]
Outcome = Literal["confirmed", "waitlisted", "rejected", "pending"]


@dataclass(frozen=True)
class PostingView:
    """What the rules need of a posting, read under its lock."""

    posting_id: str
    status: PostingStatus
    selection: Selection
    shift: Shift
    capacity: int
    confirmed_count: int
    waitlisted_count: int
    waitlist_max: int
    applications_close_at: datetime | None = None
    drawn: bool = False
    # A draw's entry list is frozen (issue 19): no application can join it any more.
    entries_frozen: bool = False

    @property
    def seats_free(self) -> int:
        return max(self.capacity - self.confirmed_count, 0)

    @property
    def waitlist_room(self) -> int:
        return max(self.waitlist_max - self.waitlisted_count, 0)


@dataclass(frozen=True)
class Arrival:
    """One application to decide, with the citizen's standing at that moment."""

    application_id: str
    citizen_id: str
    received_at: datetime
    profile: Profile
    suspended_until: datetime | None = None
    booked: tuple[Booked, ...] = ()
    has_live_application: bool = False  # on this posting, from an earlier application


@dataclass(frozen=True)
class Decision:
    application_id: str
    outcome: Outcome
    reason: Reason | None = None
    waitlist_position: int | None = None


def posting_refusal(posting: PostingView, received_at: datetime) -> Reason | None:
    """Refusals that follow from the posting's state alone."""
    if posting.status == "cancelled":
        return Reason.POSTING_CANCELLED
    if posting.status == "closed":
        return Reason.POSTING_CLOSED
    if received_at >= posting.shift.starts_at:
        return Reason.POSTING_STARTED
    if posting.applications_close_at is not None and received_at >= posting.applications_close_at:
        return Reason.APPLICATIONS_CLOSED
    if posting.entries_frozen:
        # Sent in time but decided after the freeze: the draw runs on the frozen list only.
        return Reason.APPLICATIONS_CLOSED
    return None


@dataclass
class _Room:
    seats: int
    waitlisted: int
    waitlist_max: int
    citizens: set[str] = field(default_factory=set)


def decide_arrivals(
    posting: PostingView, arrivals: Sequence[Arrival], policy: Policy
) -> list[Decision]:
    """Decide `arrivals` (in arrival order) for `posting`.

    `first_come` (and a draw posting whose draw already ran): confirm while seats are free,
    then waitlist while the waitlist has room, then refuse. A `draw` posting before its draw
    keeps eligible applications `pending`; the draw decides them at close.
    """
    room = _Room(posting.seats_free, posting.waitlisted_count, posting.waitlist_max)
    collecting = posting.selection == "draw" and not posting.drawn
    decisions: list[Decision] = []
    for arrival in arrivals:
        reason = _refusal(posting, arrival, policy, room, collecting)
        if reason is not None:
            decisions.append(Decision(arrival.application_id, "rejected", reason))
            continue
        room.citizens.add(arrival.citizen_id)
        if collecting:
            decisions.append(Decision(arrival.application_id, "pending"))
        elif room.seats > 0:
            room.seats -= 1
            decisions.append(Decision(arrival.application_id, "confirmed"))
        elif room.waitlisted < room.waitlist_max:
            room.waitlisted += 1
            decisions.append(
                Decision(arrival.application_id, "waitlisted", waitlist_position=room.waitlisted)
            )
        else:
            room.citizens.discard(arrival.citizen_id)
            decisions.append(
                Decision(arrival.application_id, "rejected", Reason.POSTING_FULL_NO_WAITLIST)
            )
    return decisions


def _refusal(
    posting: PostingView, arrival: Arrival, policy: Policy, room: _Room, collecting: bool
) -> Reason | None:
    at = arrival.received_at
    reason = posting_refusal(posting, at)
    if reason is not None:
        return reason
    if arrival.has_live_application or arrival.citizen_id in room.citizens:
        return Reason.DUPLICATE_APPLICATION
    reason = profile_refusal(arrival.profile, posting.shift, policy, at)
    if reason is not None:
        return reason
    if collecting:
        # Overlap and the weekly cap are judged at the draw, when seats are given: the
        # citizen may cancel the other booking before then. A suspension is known now.
        return standing_refusal(arrival.suspended_until, (), posting.shift, policy, at)
    return standing_refusal(arrival.suspended_until, arrival.booked, posting.shift, policy, at)


# --- promotion --------------------------------------------------------------------------


def may_promote(starts_at: datetime, now: datetime, policy: Policy) -> bool:
    """Waitlist promotion stops `promotion_cutoff` before the start (BRIEF §5: 1 h)."""
    return starts_at - now > policy.promotion_cutoff


@dataclass(frozen=True)
class Waiting:
    """A waitlisted booking, head first, with its citizen's standing now."""

    application_id: str
    citizen_id: str
    suspended_until: datetime | None = None
    booked: tuple[Booked, ...] = ()


@dataclass(frozen=True)
class PromotionPlan:
    promote: tuple[str, ...]  # application ids, head first
    drop: tuple[tuple[str, Reason], ...]  # no longer eligible: cancelled by the system


def plan_promotions(
    posting: PostingView, waiting: Sequence[Waiting], policy: Policy, now: datetime
) -> PromotionPlan:
    """Fill free seats from the head of the waitlist. A waiting citizen who can no longer
    take the seat (suspended since, or booked elsewhere meanwhile) is dropped with the
    reason and the next one is asked; nobody is skipped silently."""
    if posting.status != "open" or not may_promote(posting.shift.starts_at, now, policy):
        return PromotionPlan((), ())
    seats = posting.seats_free
    promote: list[str] = []
    drop: list[tuple[str, Reason]] = []
    for entry in waiting:
        if seats <= 0:
            break
        reason = standing_refusal(entry.suspended_until, entry.booked, posting.shift, policy, now)
        if reason is not None:
            drop.append((entry.application_id, reason))
            continue
        promote.append(entry.application_id)
        seats -= 1
    return PromotionPlan(tuple(promote), tuple(drop))

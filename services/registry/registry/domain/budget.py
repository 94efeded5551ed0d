"""The registry's side of the posting saga: what a budget answer from allowance does to a
posting, and how a refused change is put back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from registry.domain.postings import COST_FIELDS, PostingState, ShiftTerms

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


def refused_change_moved_cost(changed: tuple[str, ...] | None) -> bool:
    """Whether the refused change (the fields revision n changed; None when the registry
    has no such revision) moved capacity or times: only then is there something to put
    back."""
    return changed is not None and bool(COST_FIELDS & set(changed))


def rejection_detail(*, requested_won: int, available_won: int, shortfall_won: int) -> str:
    """What a refused submission tells the facility, on the posting."""
    return (
        f"requested {requested_won} won, available {available_won} won"
        f" (short by {shortfall_won} won)"
    )


# What a refusal's reason (allowance's `BudgetRejected.reason`) tells the facility.
_FACILITY_REASONS = {
    "insufficient_budget": "not enough budget is left for this shift",
    "no_budget_for_year": "no budget is set yet for the shift's fiscal year",
    "no_rate": "no hourly rate is set for the shift's date",
    "rate_below_minimum_wage": "the hourly rate for the shift's date is below the minimum wage",
}


def facility_rejection_detail(reason: str, requested_won: int | None) -> str:
    """What a refused submission tells the facility: why, and what its own shift needs —
    never the programme's figures (the budget available, the shortfall, from which the
    available budget follows), which stay for finance and administrators (`rejection_detail`
    in the registry's row and in PostingRejected; the allowance's budget and ledger)."""
    sentence = _FACILITY_REASONS.get(reason, "the budget could not fund this shift")
    if requested_won is None:  # refused before the registry kept the amount
        return sentence
    return f"{sentence} (this shift needs {requested_won} won)"


@dataclass(frozen=True)
class Revert:
    """A refused change put back: the posting's state after it and what that moved."""

    restored: PostingState
    changed: tuple[str, ...]


def plan_revert(
    current: PostingState,
    *,
    capacity: int,
    starts_at: datetime,
    ends_at: datetime,
    applications_close_at: datetime | None,
) -> Revert:
    """Put back the capacity and times from before a refused change (its revision's
    `previous_*`); title, description, tags and selection stay as they are now."""
    terms = ShiftTerms(
        starts_at=starts_at,
        ends_at=ends_at,
        capacity=capacity,
        selection=current.terms.selection,
        applications_close_at=applications_close_at,
    )
    restored = PostingState(
        status=current.status,
        title=current.title,
        description=current.description,
        tags=current.tags,
        terms=terms,
        reconfirmation_required=current.reconfirmation_required,
    )
    changed = tuple(
        name
        for name in ("capacity", "starts_at", "ends_at", "applications_close_at")
        if getattr(current.terms, name) != getattr(terms, name)
    )
    return Revert(restored, changed)


def update_rejection_note(
    *,
    for_revision: int,
    reason: str,
    requested_won: int,
    available_won: int,
    shortfall_won: int,
    restored_revision: int,
    restored: ShiftTerms,
    at: datetime,
) -> dict[str, Any]:
    """What the posting shows as `last_update_rejected` after a refused change was put
    back (stored as JSON)."""
    return {
        "revision": for_revision,
        "reason": reason,
        "requested_won": requested_won,
        "available_won": available_won,
        "shortfall_won": shortfall_won,
        "restored": {
            "revision": restored_revision,
            "capacity": restored.capacity,
            "starts_at": restored.starts_at.isoformat(),
            "ends_at": restored.ends_at.isoformat(),
        },
        "at": at.isoformat(),
    }

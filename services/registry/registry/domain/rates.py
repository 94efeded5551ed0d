"""The allowance's hourly rate table, as the registry holds it, and what a shift will cost.

The allowance owns the table and announces each version (RatesChanged, decision 0011); the
registry keeps the latest version it has received and prices a shift with it before the
facility posts. The price is `shared.money.shift_cost`, the formula the allowance reserves
with (capacity × the full shift's payout at the rate in force on the Seoul date of the
start), so the figure shown and the figure reserved follow one rule. They can still differ
when the table changes between the estimate and the posting's budget answer: the estimate
says which version it used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from registry.domain.errors import invalid
from registry.domain.postings import PostingBounds, ShiftTerms, validate_terms
from shared.money import RateEntry, ShiftCost, scheduled_minutes, shift_cost


def adopts(held_version: int | None, incoming_version: int) -> bool:
    """Whether a table announced as `incoming_version` replaces the one held: only a newer
    version does, so a replay or a late duplicate of an older one changes nothing."""
    return held_version is None or incoming_version > held_version


@dataclass(frozen=True)
class Estimate:
    """What a shift would cost: `cost` is None while no rate is in force for its date (the
    registry has not received the allowance's table yet, or the table starts later)."""

    terms: ShiftTerms
    scheduled_minutes: int
    rates_version: int | None
    cost: ShiftCost | None


def estimate(
    terms: ShiftTerms,
    rates: Sequence[RateEntry],
    rates_version: int | None,
    *,
    now: datetime,
    bounds: PostingBounds,
) -> Estimate:
    """The cost of a shift with these terms, refused (400, one error per field) for terms
    that could not be posted: the same rules as `POST /v1/postings`."""
    errors = validate_terms(terms, now, bounds)
    if errors:
        raise invalid(errors)
    return Estimate(
        terms=terms,
        scheduled_minutes=scheduled_minutes(terms.starts_at, terms.ends_at),
        rates_version=rates_version,
        cost=shift_cost(rates, terms.starts_at, terms.ends_at, terms.capacity),
    )

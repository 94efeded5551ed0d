"""The base of every write API's request bodies: strict JSON types, unknown fields refused,
dates and instants bounded.

Without this, pydantic's lax mode reads `false` as the integer 0, `true` as 1, `"7"` as 7,
`1.0` or `1e2` as an integer and `"yes"`/`1` as booleans — so `"monthly_amount_max_won":
false` capped every month at 0 won. `StrictBody` makes a number a JSON number and a boolean
a JSON boolean on every field of every subclass (nested models, lists and optionals too).
Dates and instants stay ISO 8601 *text* (JSON has no date type), never a bare number, and
must lie between `YEAR_MIN` and `YEAR_MAX`, so a far date is a 400 naming the field instead
of Postgres's `date value out of range` (a 500). `Day` and `Instant` serve query parameters
too.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Strict

# Dates and instants any write or filter may name: far outside the programme's life, well
# inside what Postgres and Python store (year 1 and 9999 overflow once a zone is applied).
YEAR_MIN = 2000
YEAR_MAX = 2100


def iso_text(value: Any) -> Any:
    """A date or instant must be ISO 8601 text: pydantic would also read a number (or a
    numeric string) as seconds since 1970, which the OpenAPI document does not allow."""
    if isinstance(value, date):  # already parsed (a default, a Python caller)
        return value
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 date or instant as text")
    try:
        float(value)
    except ValueError:
        return value
    raise ValueError("expected an ISO 8601 date or instant, not a number")


def _bounded_day(value: date) -> date:
    if not (YEAR_MIN <= value.year <= YEAR_MAX):
        raise ValueError(f"date must be between the years {YEAR_MIN} and {YEAR_MAX}")
    return value


def _bounded_instant(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise ValueError("timestamp out of range") from exc
    if not (YEAR_MIN <= utc.year <= YEAR_MAX):
        raise ValueError(f"timestamp must be between the years {YEAR_MIN} and {YEAR_MAX}")
    return utc


# `Strict(False)`: JSON has no date type, so these parse text even inside a strict model.
Day = Annotated[date, Strict(False), BeforeValidator(iso_text), AfterValidator(_bounded_day)]
Instant = Annotated[
    AwareDatetime, Strict(False), BeforeValidator(iso_text), AfterValidator(_bounded_instant)
]


class StrictBody(BaseModel):
    """A write body: JSON types exactly (no `false` for 0, no `"7"` for 7, no `1.0` for 1,
    no `1`/`"true"` for true), unknown fields refused (mass assignment of status, ids, …).
    Date and instant fields use `Day` / `Instant`."""

    model_config = ConfigDict(extra="forbid", strict=True)


__all__ = ["YEAR_MAX", "YEAR_MIN", "Day", "Instant", "StrictBody", "iso_text"]

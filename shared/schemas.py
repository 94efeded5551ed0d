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

Text fields use `NonBlank(max_length)`: surrounding spaces are trimmed, a value of only
spaces (a facility named `"   "`) is refused with the code `string_blank`, and text Postgres
cannot store (NUL, lone surrogates) is refused, all at the door with a 400 naming the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    Strict,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

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


def storable_text(value: str) -> str:
    """Text Postgres (UTF-8) can store: no NUL character, no lone surrogate."""
    if "\x00" in value:
        raise PydanticCustomError("string_unstorable", "must not contain NUL characters")
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        raise PydanticCustomError("string_unstorable", "must not contain a lone surrogate")
    return value


@dataclass(frozen=True)
class NonBlank:
    """`Annotated[str, NonBlank(200)]`: a text field of a write body.

    The value as sent must be a JSON string of at most `max_length` characters (and match
    `pattern`, if given) — what the OpenAPI document says —; then surrounding whitespace
    is trimmed (`trim`), and a value left empty is refused (`string_blank`) unless it was
    sent as `""` on a field where `empty_ok` (a description or note whose default is `""`:
    the empty string means "none", spaces only are a typing mistake). A `pattern` is
    checked again on the trimmed value, so trimming cannot uncover a refused first
    character. `trim=False` keeps the value as sent (identifiers: `" a"` is not `"a"`)."""

    max_length: int
    empty_ok: bool = False
    pattern: str | None = None
    trim: bool = True

    def check(self, value: str) -> str:
        stripped = value.strip()
        if not stripped and (value or not self.empty_ok):
            raise PydanticCustomError("string_blank", "must not be blank (only spaces)")
        storable_text(value)
        if self.pattern is not None and not re.search(self.pattern, stripped):
            raise PydanticCustomError(
                "string_pattern_mismatch",
                "String should match pattern '{pattern}'",
                {"pattern": self.pattern},
            )
        return stripped if self.trim else value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        raw = core_schema.str_schema(max_length=self.max_length, pattern=self.pattern, strict=True)
        return core_schema.no_info_after_validator_function(self.check, raw)

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        out = handler(schema)
        if self.pattern is None:  # "something other than spaces" (or nothing, if allowed)
            out["pattern"] = r"^$|\S" if self.empty_ok else r"\S"
        return out


# The common case: a note or reason of a person (a line or two), never only spaces.
NonBlankText = Annotated[str, NonBlank(500)]


class StrictBody(BaseModel):
    """A write body: JSON types exactly (no `false` for 0, no `"7"` for 7, no `1.0` for 1,
    no `1`/`"true"` for true), unknown fields refused (mass assignment of status, ids, …).
    Date and instant fields use `Day` / `Instant`."""

    model_config = ConfigDict(extra="forbid", strict=True)


__all__ = [
    "YEAR_MAX",
    "YEAR_MIN",
    "Day",
    "Instant",
    "NonBlank",
    "NonBlankText",
    "StrictBody",
    "iso_text",
    "storable_text",
]

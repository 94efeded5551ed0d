"""Facilities: what kinds there are, where they may be, what their setting imposes on their
postings, and when one of their keys admits a request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from registry.domain.errors import FieldError

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
class FacilityDraft:
    """A facility as the administrator registers it."""

    name: str
    kind: FacilityKind
    dong: str
    address: str | None
    contact_phone: str | None
    requires_child_safety_check: bool


def validate_dong(dong: str, dongs: Sequence[str]) -> list[FieldError]:
    """A facility must be in one of the configured Gwangsan-gu administrative dongs."""
    if dong in dongs:
        return []
    return [FieldError("dong", f"{dong!r} is not an administrative dong of Gwangsan-gu", "dong")]


def posting_requires_child_safety_check(facility_default: bool, requested: bool | None) -> bool:
    """A facility's setting is the floor: a posting may add the requirement, never drop it."""
    return facility_default or bool(requested)


def previous_keys_valid_until(now: datetime, overlap: timedelta) -> datetime:
    """When the keys issued before a rotation stop working: after the configured overlap
    (0 by default: at once)."""
    return now + overlap


def rotation_overlap(
    requested_s: int | None, *, default_s: int, max_s: int
) -> tuple[timedelta, list[FieldError]]:
    """How long the keys issued before a rotation keep working: what the administrator
    asked for (at most `max_s`), else the configured default (0: they stop at once)."""
    if requested_s is None:
        return timedelta(seconds=default_s), []
    if not 0 <= requested_s <= max_s:
        message = f"the overlap is 0 to {max_s} seconds"
        return timedelta(0), [FieldError("overlap_s", message, "out_of_range")]
    return timedelta(seconds=requested_s), []


def facility_changes(
    current: Mapping[str, Any], wanted: Mapping[str, Any], dongs: Sequence[str]
) -> tuple[dict[str, dict[str, Any]], list[FieldError]]:
    """What an administrator's edit changes, field by field (`{"from": …, "to": …}`, for
    the audit row), or what is wrong with it. Fields sent with their current value change
    nothing; a dong must be one of Gwangsan-gu's."""
    errors = validate_dong(wanted["dong"], dongs) if "dong" in wanted else []
    changes = {
        name: {"from": current[name], "to": value}
        for name, value in wanted.items()
        if current[name] != value
    }
    return changes, errors


def key_admits(*, expires_at: datetime | None, facility_status: str, now: datetime) -> bool:
    """A key whose hash matched admits a request while it is not rotated out (or its overlap
    has not run out) and its facility is active."""
    return (expires_at is None or expires_at > now) and facility_status == "active"

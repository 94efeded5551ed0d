"""Unit tests of the registry's HTTP shapes: what a request body may and may not carry."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
from registry import schemas

POSTING: dict[str, Any] = {
    "title": "책 정리",
    "starts_at": "2026-03-05T10:00:00+09:00",
    "ends_at": "2026-03-05T13:00:00+09:00",
    "capacity": 3,
    "selection": "first_come",
}


def error_fields(exc: pydantic.ValidationError) -> set[str]:
    return {".".join(str(p) for p in e["loc"]) for e in exc.errors()}


def test_posting_body_converts_times_to_utc_and_defaults_the_optional_fields() -> None:
    """A valid body parses; its times are the same instants in UTC."""
    body = schemas.PostingCreate.model_validate(POSTING)
    assert body.starts_at.utcoffset() is not None and body.starts_at.hour == 1
    assert body.description == "" and body.tags == [] and body.requires_child_safety_check is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"status": "open"}, "status"),
        ({"reservation_id": "rsv_1"}, "reservation_id"),
        ({"starts_at": "2026-03-05T10:00:00"}, "starts_at"),
        ({"starts_at": "1500-03-05T10:00:00+00:00"}, "starts_at"),
        ({"ends_at": "0001-01-01T00:00:00+14:00"}, "ends_at"),
        ({"title": ""}, "title"),
        ({"title": "a\x00b"}, "title"),
        ({"description": "\ud800"}, "description"),
        ({"capacity": 0}, "capacity"),
        ({"selection": "lottery"}, "selection"),
        ({"tags": ["x" * 41]}, "tags.0"),
        ({"tags": ["t"] * 11}, "tags"),
    ],
)
def test_posting_body_refuses_unknown_fields_and_unstorable_values(
    change: dict[str, Any], field: str
) -> None:
    """Unknown fields (mass assignment), naive or absurd timestamps, NUL and lone surrogates
    (which Postgres cannot store) and out-of-range values are refused naming the field."""
    with pytest.raises(pydantic.ValidationError) as exc:
        schemas.PostingCreate.model_validate({**POSTING, **change})
    assert field in error_fields(exc.value)


def test_patch_needs_at_least_one_field_and_refuses_unknown_ones() -> None:
    """An empty PATCH is refused; so is one that tries to set the status."""
    with pytest.raises(pydantic.ValidationError):
        schemas.PostingPatchBody.model_validate({})
    with pytest.raises(pydantic.ValidationError) as exc:
        schemas.PostingPatchBody.model_validate({"title": "x", "status": "open"})
    assert "status" in error_fields(exc.value)
    assert schemas.PostingPatchBody.model_validate({"capacity": 4}).capacity == 4


def test_attendance_body_shape() -> None:
    """Records need a well-formed booking id and a known status; at least one record."""
    ok = schemas.AttendanceBody.model_validate(
        {"records": [{"booking_id": "bkg_1", "status": "attended"}]}
    )
    assert ok.records[0].checked_in_at is None
    for bad in (
        {"records": []},
        {"records": [{"booking_id": "bkg 1", "status": "attended"}]},
        {"records": [{"booking_id": "bkg_1", "status": "late"}]},
        {"records": [{"booking_id": "bkg_1", "status": "attended", "minutes": 5}]},
    ):
        with pytest.raises(pydantic.ValidationError):
            schemas.AttendanceBody.model_validate(bad)


def test_facility_body_shape() -> None:
    """A facility needs a known kind; unknown fields and odd phone numbers are refused."""
    base = {"name": "n", "kind": "park", "dong": "평동", "requires_child_safety_check": False}
    assert schemas.FacilityCreate.model_validate(base).address is None
    for bad in (
        {**base, "kind": "school"},
        {**base, "contact_phone": "call me"},
        {**base, "api_key": "fk_x"},
        {k: v for k, v in base.items() if k != "requires_child_safety_check"},
    ):
        with pytest.raises(pydantic.ValidationError):
            schemas.FacilityCreate.model_validate(bad)

"""Administration without a developer (issue 15), without a database: the rules of a
facility edit and of a key rotation's overlap, the edit body's shape, and budget refusals
that tell a facility what it needs and not the programme's figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic
import pytest
from registry import schemas, views
from registry.domain.budget import facility_rejection_detail
from registry.domain.facilities import facility_changes, rotation_overlap
from registry.domain.postings import PostingPatch
from registry.settings import RegistrySettings
from registry.usecases import saga

from shared.gwangsan import GWANGSAN_DONGS
from tests.unit.registry.fake_store import FakeStore
from tests.unit.registry.test_registry_saga import deliver, envelope_of, opened, rejected

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
CURRENT: dict[str, Any] = {
    "name": "수완 작은도서관",
    "kind": "small_library",
    "dong": "수완동",
    "address": None,
    "contact_phone": "062-000-0000",
}


def test_an_edit_names_what_changes_from_what_to_what() -> None:
    changes, errors = facility_changes(
        CURRENT, {"name": "수완 도서관", "dong": "수완동", "address": "수완로 1"}, GWANGSAN_DONGS
    )
    assert errors == []
    assert changes == {
        "name": {"from": "수완 작은도서관", "to": "수완 도서관"},
        "address": {"from": None, "to": "수완로 1"},
    }  # the dong sent as it was changes nothing
    assert facility_changes(CURRENT, {"kind": "small_library"}, GWANGSAN_DONGS) == ({}, [])


def test_an_edit_to_a_dong_outside_gwangsan_is_refused_naming_dong() -> None:
    _, errors = facility_changes(CURRENT, {"dong": "역삼동"}, GWANGSAN_DONGS)
    assert [(e.field, e.code) for e in errors] == [("dong", "dong")]


def test_the_rotation_overlap_is_the_asked_one_within_bounds_else_the_default() -> None:
    assert rotation_overlap(None, default_s=0, max_s=60) == (timedelta(0), [])
    assert rotation_overlap(None, default_s=30, max_s=60) == (timedelta(seconds=30), [])
    assert rotation_overlap(60, default_s=0, max_s=60) == (timedelta(seconds=60), [])
    _, errors = rotation_overlap(61, default_s=0, max_s=60)
    assert [(e.field, e.code) for e in errors] == [("overlap_s", "out_of_range")]
    assert RegistrySettings().facility_key_rotation_overlap_s == 0  # as before: at once


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, None),
        ({"name": "   "}, "name"),
        ({"name": None}, "name"),
        ({"dong": None}, "dong"),
        ({"kind": "school"}, "kind"),
        ({"status": "active"}, "status"),
        ({"requires_child_safety_check": True}, "requires_child_safety_check"),
        ({"contact_phone": "call me"}, "contact_phone"),
        ({"address": "  "}, "address"),
    ],
)
def test_the_edit_body_refuses_nothing_blank_null_and_unknown_fields(
    body: dict[str, Any], field: str | None
) -> None:
    with pytest.raises(pydantic.ValidationError) as raised:
        schemas.FacilityPatchBody.model_validate(body)
    if field is not None:
        assert field in {".".join(map(str, e["loc"])) for e in raised.value.errors()}


def test_the_edit_body_sends_only_what_was_given_and_may_clear_address_and_phone() -> None:
    body = schemas.FacilityPatchBody.model_validate({"address": None, "name": " 새 이름 "})
    assert body.model_dump(include=body.model_fields_set) == {"address": None, "name": "새 이름"}
    assert schemas.RotateBody.model_validate({}).overlap_s is None
    with pytest.raises(pydantic.ValidationError):
        schemas.RotateBody.model_validate({"overlap_s": -1})


def test_a_facility_is_told_what_its_shift_needs_never_the_budget_left() -> None:
    detail = facility_rejection_detail("insufficient_budget", 21_284_800)
    assert detail == "not enough budget is left for this shift (this shift needs 21284800 won)"
    assert facility_rejection_detail("no_budget_for_year", None) == (
        "no budget is set yet for the shift's fiscal year"
    )


async def test_the_facility_view_of_a_rejection_keeps_the_programme_figures_out() -> None:
    """The row (and PostingRejected) keep requested / available / shortfall for finance; the
    posting as the facility API shows it keeps the reason and the shift's own cost only."""
    db = FakeStore()
    pid = db.submitted(NOW).id
    await deliver(db, rejected(pid, reason="insufficient_budget"))
    row = db.postings[pid]
    assert "available 10000 won" in (row.rejection_detail or "")
    shown = views.posting_view(row, NOW, RegistrySettings())
    assert shown.rejection is not None and shown.rejection.reason == "insufficient_budget"
    assert "48000" in shown.rejection.detail and "10000" not in shown.rejection.detail
    assert "38000" not in shown.rejection.detail


async def test_the_facility_view_of_a_reverted_update_has_no_shortfall() -> None:
    db = FakeStore()
    pid = await opened(db, capacity=2)
    change = db.accepted_change(pid, PostingPatch(capacity=4), NOW)
    refusal = rejected(pid, for_revision=change)
    await saga.on_budget_rejected(None, envelope_of(refusal), refusal, now=NOW, db=db)  # type: ignore[arg-type]
    row = db.postings[pid]
    assert row.last_update_rejected is not None
    assert row.last_update_rejected["shortfall_won"] == 38_000  # kept for finance and admin
    shown = views.posting_view(row, NOW, RegistrySettings()).last_update_rejected
    assert shown is not None and shown.requested_won == 48_000
    assert shown.available_won is None and shown.shortfall_won is None

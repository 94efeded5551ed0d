"""What the registry's lists answer, without a database: cursors (`views.CURSOR`, the
shared `CursorCodec`) still read the cursors the registry handed out before it, refuse
anything else with a 400 naming `cursor`, and a page answers its items as `items` and as
`data` (the name the console and other clients read)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from registry import schemas, views

from shared.problems import Problem

AT = datetime(2026, 3, 2, 1, 0, 0, 123456, tzinfo=UTC)


def old_cursor(at: datetime, ident: str) -> str:
    """A cursor as `registry.domain.encode_cursor` made them (before CursorCodec)."""
    raw = json.dumps([at.astimezone(UTC).isoformat(), ident])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@given(
    st.datetimes(timezones=st.just(UTC)), st.from_regex(r"[a-z]{3}_[0-9a-f]{20}", fullmatch=True)
)
def test_cursors_handed_out_before_and_now_decode_to_the_same_position(
    at: datetime, ident: str
) -> None:
    assert views._position(old_cursor(at, ident)) == (at, ident)
    assert views._position(views.CURSOR.encode(at, ident)) == (at, ident)


def test_a_cursor_in_another_zone_is_the_same_instant() -> None:
    seoul = AT.astimezone(UTC) + timedelta(hours=9)
    text = base64.urlsafe_b64encode(
        json.dumps([seoul.replace(tzinfo=None).isoformat() + "+09:00", "fac_1"]).encode()
    ).decode()
    assert views._position(text) == (AT, "fac_1")


@pytest.mark.parametrize(
    "text",
    [
        "garbage!",
        old_cursor(AT, "fac_1")[:-3],
        base64.urlsafe_b64encode(b'["2026-03-02T01:00:00", "fac_1"]').decode(),  # no zone
        base64.urlsafe_b64encode(b'["2026-03-02T01:00:00+00:00"]').decode(),
        base64.urlsafe_b64encode(b'["2026-03-02T01:00:00+00:00", 7]').decode(),
        old_cursor(AT, "fac 1; drop table"),
        old_cursor(AT, "\ud800"),  # a lone surrogate Postgres cannot take
        old_cursor(AT, ""),
    ],
)
def test_a_cursor_that_is_not_ours_is_a_400_naming_cursor(text: str) -> None:
    with pytest.raises(Problem) as refused:
        views._position(text)
    assert refused.value.status == 400 and refused.value.code == "invalid_request"
    assert refused.value.errors and refused.value.errors[0]["field"] == "cursor"


@given(st.text(max_size=80))
def test_random_text_is_a_position_or_a_400_and_nothing_else(text: str) -> None:
    """Never another exception (a 500)."""
    try:
        position = views._position(text)
    except Problem as exc:
        assert exc.status == 400
        return
    assert position is not None and position[0].tzinfo is not None


def test_no_cursor_is_the_first_page() -> None:
    assert views._position(None) is None


def test_a_list_page_answers_its_items_as_items_and_as_data() -> None:
    row = schemas.FacilityView(
        id="fac_1",
        name="공원",
        kind="park",
        dong="평동",
        address=None,
        contact_phone=None,
        requires_child_safety_check=False,
        status="active",
        created_at=AT,
        suspended_at=None,
    )
    page = schemas.FacilityPage(items=[row], next_cursor="c")
    body = page.model_dump(mode="json")
    assert body["data"] == body["items"] == [row.model_dump(mode="json")]
    assert body["next_cursor"] == "c"
    assert set(schemas.FacilityPage.model_json_schema(mode="serialization")["required"]) >= {
        "data",
        "items",
        "next_cursor",
    }

"""Text fields of write bodies (issue 15, item 6): a facility named `"   "` was accepted.
`shared.schemas.NonBlank` trims, refuses values of only spaces (`string_blank`, with a
Korean message) and text Postgres cannot store; every write body of the three services
uses it, so no text field of any write API takes spaces only."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import pydantic
import pytest
from fastapi import FastAPI

from shared.problem_texts import FIELD_KO
from shared.problems import install
from shared.schemas import NonBlank, NonBlankText, StrictBody


class _Body(StrictBody):
    name: Annotated[str, NonBlank(10)]
    description: Annotated[str, NonBlank(20, empty_ok=True)] = ""
    holder: Annotated[str, NonBlank(10, pattern=r"^[^=+\-@\t\r\n][^\t\r\n]*$")] | None = None
    partner_id: Annotated[str, NonBlank(10, trim=False)] | None = None
    tags: list[Annotated[str, NonBlank(5)]] = pydantic.Field(default_factory=list)
    note: NonBlankText | None = None


def _errors(body: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(pydantic.ValidationError) as raised:
        _Body.model_validate(body)
    return [(".".join(str(p) for p in e["loc"]), e["type"]) for e in raised.value.errors()]


def test_text_is_trimmed_and_empty_means_none_only_where_allowed() -> None:
    body = _Body.model_validate(
        {"name": "  광산 경로당 ", "description": "", "tags": [" 공원 "], "partner_id": " k"}
    )
    assert body.name == "광산 경로당" and body.description == "" and body.tags == ["공원"]
    assert body.partner_id == " k"  # an identifier is kept as sent


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"name": "   "}, "name", "string_blank"),
        ({"name": ""}, "name", "string_blank"),
        ({"name": "\t\n\u3000"}, "name", "string_blank"),  # ideographic space too
        ({"description": "  "}, "description", "string_blank"),
        ({"note": ""}, "note", "string_blank"),
        ({"tags": ["ok", " "]}, "tags.1", "string_blank"),
        ({"partner_id": "   "}, "partner_id", "string_blank"),
        ({"name": "x" * 11}, "name", "string_too_long"),
        ({"name": "a\x00b"}, "name", "string_unstorable"),
        ({"name": "a\ud800"}, "name", "string_unicode"),
        ({"name": 7}, "name", "string_type"),
        # trimming cannot uncover a first character the pattern refuses
        ({"holder": " =SUM(A1)"}, "holder", "string_pattern_mismatch"),
        ({"holder": "\tx"}, "holder", "string_pattern_mismatch"),
    ],
)
def test_blank_long_and_unstorable_text_is_refused(
    change: dict[str, Any], field: str, code: str
) -> None:
    assert _errors({"name": "n", **change}) == [(field, code)]


def test_the_openapi_document_says_spaces_only_are_refused() -> None:
    """`pattern: \\S` (something other than spaces), so schema-driven clients and fuzzers
    know it too; a field with its own pattern keeps it."""
    props = _Body.model_json_schema()["properties"]
    assert props["name"]["pattern"] == r"\S" and props["name"]["maxLength"] == 10
    assert props["description"]["pattern"] == r"^$|\S"
    assert props["holder"]["anyOf"][0]["pattern"].startswith("^[^=+")


async def test_a_blank_field_is_a_400_naming_it_in_korean() -> None:
    app = FastAPI()
    install(app)

    @app.post("/t")
    async def take(body: _Body) -> dict[str, str]:
        return {"name": body.name}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.post("/t", json={"name": "   "}, headers={"Accept-Language": "ko"})
        trimmed = await client.post("/t", json={"name": " 이름 "})
    assert answer.status_code == 400
    problem = answer.json()
    assert problem["code"] == "invalid_request"
    [error] = problem["errors"]
    assert error["field"] == "name" and error["code"] == "string_blank"
    assert error["message"] == FIELD_KO["string_blank"]
    assert trimmed.json() == {"name": "이름"}


def _write_bodies() -> list[type[pydantic.BaseModel]]:
    """Every request body of every write API of the three services."""
    import allowance.schemas  # noqa: F401
    import registry.schemas  # noqa: F401
    from matcher import schemas as matcher_schemas

    def below(cls: type[pydantic.BaseModel]) -> list[type[pydantic.BaseModel]]:
        return [cls, *(sub for direct in cls.__subclasses__() for sub in below(direct))]

    bodies = below(StrictBody) + below(matcher_schemas._Body)
    return [b for b in bodies if b.__module__.split(".")[0] in ("registry", "allowance", "matcher")]


def test_no_field_of_any_write_body_takes_spaces_only() -> None:
    """Walks every write body: no field (text, list of texts, or anything else) accepts
    `"   "` or `["   "]`."""
    bodies = _write_bodies()
    names = {b.__name__ for b in bodies}
    assert {"FacilityCreate", "PostingCreate", "RatesBody", "PayeeBody", "CitizenData"} <= names
    accepted: list[str] = []
    for body in bodies:
        for name, info in body.model_fields.items():
            annotation: Any = info.annotation
            if info.metadata:
                annotation = Annotated[annotation, *info.metadata]
            adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(annotation)
            for blank in ("   ", ["   "]):
                try:
                    adapter.validate_python(blank, strict=True)
                except pydantic.ValidationError:
                    continue
                accepted.append(f"{body.__module__}.{body.__name__}.{name} took {blank!r}")
    assert accepted == []

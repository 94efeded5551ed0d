"""Strict inputs (issue 21): the shared base of write bodies takes JSON types exactly and
bounded dates; a one-value query parameter given twice is refused; a body that trickles
in is cut off with 408. No Kafka, no Postgres."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import date, datetime
from typing import Annotated, Any

import httpx
import pydantic
import pytest
from fastapi import Depends, FastAPI, Query, Request

from shared.http import FastRoute, ServiceMiddleware
from shared.problems import install
from shared.schemas import YEAR_MAX, YEAR_MIN, Day, Instant, StrictBody
from shared.web import CursorParam, single_query


class _Inner(StrictBody):
    n: int


class _Body(StrictBody):
    count: int = 1
    flag: bool = False
    ratio: float = 0.0
    day: Day | None = None
    at: Instant | None = None
    inner: list[_Inner] = pydantic.Field(default_factory=list)


@pytest.mark.parametrize(
    "field, value",
    [
        ("count", False),
        ("count", True),
        ("count", "7"),
        ("count", "true"),
        ("count", 1.0),
        ("count", 1e2),
        ("count", None),
        ("flag", "true"),
        ("flag", 1),
        ("flag", 0),
        ("flag", "yes"),
        ("ratio", "0.5"),
        ("day", 20200101),
        ("day", "0001-01-01"),
        ("day", f"{YEAR_MAX + 1}-01-01"),
        ("day", "1700000000"),
        ("at", 1700000000),
        ("at", "2020-01-01T00:00:00"),  # no offset
        ("at", "0001-01-01T00:00:00+00:00"),
        ("at", "9999-12-31T23:59:59-12:00"),
        ("inner", [{"n": "1"}]),
        ("inner", [{"n": True}]),
        ("extra_field", 1),
    ],
)
def test_strict_body_refuses_loose_values(field: str, value: Any) -> None:
    with pytest.raises(pydantic.ValidationError) as raised:
        _Body.model_validate({field: value})
    assert raised.value.errors()[0]["loc"][0] == field


def test_strict_body_takes_json_types_and_iso_text() -> None:
    body = _Body.model_validate(
        {
            "count": 7,
            "flag": True,
            "ratio": 1,  # an integer is a fine JSON number for a float field
            "day": f"{YEAR_MIN}-01-01",
            "at": "2026-03-02T10:00:00+09:00",
            "inner": [{"n": 3}],
        }
    )
    assert body.count == 7 and body.flag is True and body.ratio == 1.0
    assert body.day == date(YEAR_MIN, 1, 1)
    assert body.at is not None and body.at.utcoffset() is not None
    assert body.at == datetime.fromisoformat("2026-03-02T01:00:00+00:00")
    assert body.inner[0].n == 3


def test_the_registry_and_allowance_bodies_are_strict() -> None:
    """The probe's two cases, on the real request models."""
    from allowance.schemas import CapIn
    from registry.schemas import FacilityCreate, PostingCreate

    assert issubclass(CapIn, StrictBody) and issubclass(PostingCreate, StrictBody)
    cap = {"year": 2026, "weekly_hours_max": 10, "source": "s"}
    with pytest.raises(pydantic.ValidationError) as raised:
        CapIn.model_validate({**cap, "monthly_amount_max_won": False})
    assert [e["loc"] for e in raised.value.errors()] == [("monthly_amount_max_won",)]
    assert CapIn.model_validate({**cap, "monthly_amount_max_won": 0}).monthly_amount_max_won == 0
    posting = {
        "title": "t",
        "starts_at": "2026-03-02T10:00:00+09:00",
        "ends_at": "2026-03-02T12:00:00+09:00",
        "selection": "first_come",
    }
    for capacity in (True, "7", 7.0):
        with pytest.raises(pydantic.ValidationError) as raised:
            PostingCreate.model_validate({**posting, "capacity": capacity})
        assert [e["loc"] for e in raised.value.errors()] == [("capacity",)]
    assert PostingCreate.model_validate({**posting, "capacity": 7}).capacity == 7
    with pytest.raises(pydantic.ValidationError) as raised:
        FacilityCreate.model_validate(
            {"name": "n", "kind": "park", "dong": "d", "requires_child_safety_check": "true"}
        )
    assert [e["loc"] for e in raised.value.errors()] == [("requires_child_safety_check",)]


def _app(timeout_s: float | None = 0.3) -> FastAPI:
    app = FastAPI()
    install(app)

    async def fast(ctx: Any, body: bytes, headers: Mapping[str, str]) -> tuple[int, Any]:
        return 200, {"bytes": len(body)}

    app.add_middleware(
        ServiceMiddleware,
        service="t",
        body_size_max_bytes=10_000,
        body_read_timeout_s=timeout_s,
        fast_routes=(FastRoute("POST", "/fast", fast),),
    )
    app.state.ctx = object()

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.post("/model")
    async def model(body: _Body) -> dict[str, int]:
        return {"count": body.count}

    @app.get("/list", dependencies=[Depends(single_query)])
    async def listing(
        cursor: CursorParam = None,
        status: Annotated[list[str] | None, Query()] = None,
        since: Annotated[Day | None, Query(alias="from")] = None,
    ) -> dict[str, Any]:
        return {"cursor": cursor, "status": status, "from": str(since) if since else None}

    return app


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_a_loose_body_is_a_400_problem_naming_the_field() -> None:
    async with _client(_app()) as client:
        for value in (False, "7", 1.0):
            answer = await client.post("/model", json={"count": value})
            assert answer.status_code == 400, value
            assert answer.headers["content-type"] == "application/problem+json"
            assert [e["field"] for e in answer.json()["errors"]] == ["count"]
        assert (await client.post("/model", json={"count": 7})).json() == {"count": 7}


async def test_a_repeated_one_value_query_parameter_is_refused() -> None:
    async with _client(_app()) as client:
        twice = await client.get("/list", params=[("cursor", "a"), ("cursor", "junk")])
        assert twice.status_code == 400
        assert twice.json()["errors"][0]["field"] == "cursor"
        assert twice.json()["errors"][0]["code"] == "repeated"
        many = await client.get("/list", params=[("status", "a"), ("status", "b")])
        assert many.status_code == 200 and many.json()["status"] == ["a", "b"]
        once = await client.get("/list", params={"cursor": "a"})
        assert once.status_code == 200 and once.json()["cursor"] == "a"


async def test_a_date_query_parameter_is_bounded() -> None:
    async with _client(_app()) as client:
        far = await client.get("/list", params={"from": "0001-01-01"})
        assert far.status_code == 400
        assert far.json()["errors"][0]["field"] == "query.from"
        ok = await client.get("/list", params={"from": "2026-01-01"})
        assert ok.status_code == 200 and ok.json()["from"] == "2026-01-01"


async def _slow(first: bytes, pause_s: float) -> AsyncIterator[bytes]:
    yield first
    await asyncio.sleep(pause_s)
    yield b"rest"


@pytest.mark.parametrize("path", ["/echo", "/fast"])
async def test_a_body_that_does_not_arrive_in_time_is_a_408(path: str) -> None:
    async with _client(_app(timeout_s=0.3)) as client:
        started = asyncio.get_running_loop().time()
        slow = await client.post(path, content=_slow(b"x", 5.0))
        took = asyncio.get_running_loop().time() - started
        assert slow.status_code == 408, slow.text
        assert slow.headers["content-type"] == "application/problem+json"
        assert slow.json()["code"] == "body_timeout"
        assert took < 2.0
        # a body that arrives in time, even in pieces, is served
        quick = await client.post(path, content=_slow(b"x", 0.05))
        assert quick.status_code == 200 and quick.json()["bytes"] == 5


async def test_without_a_body_timeout_a_slow_body_is_read() -> None:
    async with _client(_app(timeout_s=None)) as client:
        answer = await client.post("/echo", content=_slow(b"x", 0.4))
        assert answer.status_code == 200 and answer.json()["bytes"] == 5

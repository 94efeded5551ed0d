"""The middleware's fast routes and the process roles: no Kafka, no Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from prometheus_client import REGISTRY

from shared.http import FastRoute, ServiceMiddleware
from shared.problems import Problem, install
from shared.service import ServiceSpec, create_app
from shared.settings import ServiceSettings


class _Ctx:
    """Stands in for the running service's context."""

    calls: list[tuple[bytes, dict[str, str]]]

    def __init__(self) -> None:
        self.calls = []


async def _echo(ctx: Any, body: bytes, headers: Mapping[str, str]) -> tuple[int, Any]:
    if body == b"problem":
        raise Problem(409, "conflict_here", "it conflicts", headers={"Retry-After": "3"})
    if body == b"boom":
        raise RuntimeError("a bug")
    ctx.calls.append((body, dict(headers)))
    return 202, {"bytes": len(body), "signature": headers.get("webhook-signature")}


def _app(ctx: _Ctx | None) -> FastAPI:
    app = FastAPI()
    install(app)
    app.add_middleware(
        ServiceMiddleware,
        service="t",
        body_size_max_bytes=100,
        fast_routes=(FastRoute("POST", "/fast", _echo),),
    )
    app.state.ctx = ctx

    @app.post("/fast")
    async def documented(request: Request) -> dict[str, str]:
        return {"served_by": "fastapi"}

    return app


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def _count(path: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "gwangsan_http_requests_total",
        {"service": "t", "route": path, "method": "POST", "status": status},
    )
    return value or 0.0


async def test_a_fast_route_is_served_by_the_middleware_with_headers_and_metrics() -> None:
    """The handler (not the FastAPI route of the same path) answers, with the whole body,
    lower-case headers, a JSON content type, the request id echoed and the request counted
    under the path; another method on the path still reaches FastAPI."""
    ctx = _Ctx()
    before = _count("/fast", "202")
    async with _client(_app(ctx)) as client:
        r = await client.post(
            "/fast",
            content=b"hello",
            headers={"Webhook-Signature": "v1,abc", "X-Request-Id": "req-1"},
        )
        assert r.status_code == 202
        assert r.json() == {"bytes": 5, "signature": "v1,abc"}
        assert r.headers["content-type"] == "application/json"
        assert r.headers["x-request-id"] == "req-1"
        assert ctx.calls[0][0] == b"hello" and ctx.calls[0][1]["webhook-signature"] == "v1,abc"
        assert (await client.get("/fast")).status_code == 405
    assert _count("/fast", "202") == before + 1


async def test_fast_route_errors_are_problem_json_and_change_nothing() -> None:
    """A raised Problem keeps its status, code and headers; a bug is a 500 problem (logged),
    never a dropped connection; a body over the limit is 413 before the handler runs; a
    service still starting answers 503 — and in none of these did the handler record
    anything."""
    ctx = _Ctx()
    async with _client(_app(ctx)) as client:
        conflict = await client.post("/fast", content=b"problem")
        assert conflict.status_code == 409
        assert conflict.headers["content-type"] == "application/problem+json"
        assert conflict.headers["retry-after"] == "3"
        assert conflict.json()["code"] == "conflict_here"
        assert conflict.json()["instance"] == "/fast"
        bug = await client.post("/fast", content=b"boom")
        assert bug.status_code == 500 and bug.json()["code"] == "internal_error"

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(5):
                yield b"x" * 40

        streamed = await client.post("/fast", content=chunks())
        assert streamed.status_code == 413 and streamed.json()["code"] == "body_too_large"
        declared = await client.post("/fast", content=b"x" * 101)
        assert declared.status_code == 413
    assert ctx.calls == []
    async with _client(_app(None)) as client:
        starting = await client.post("/fast", content=b"hi")
        assert starting.status_code == 503 and starting.json()["code"] == "starting"


def _spec(tmp_path: Path) -> ServiceSpec:
    from fastapi import APIRouter

    router = APIRouter()

    @router.get("/v1/things")
    async def things() -> list[str]:
        return []

    return ServiceSpec(
        name="t",
        title="t",
        description="t",
        migrations_dir=tmp_path,
        routers=(router,),
        fast_routes=(FastRoute("POST", "/v1/fast", _echo),),
    )


def _paths(app: FastAPI) -> set[str]:
    return set(app.openapi()["paths"])


def _fast_paths(app: FastAPI) -> set[str]:
    for m in app.user_middleware:
        if m.cls is ServiceMiddleware:
            return {r.path for r in m.kwargs["fast_routes"]}
    raise AssertionError("no ServiceMiddleware")


def test_roles_decide_what_a_process_serves(tmp_path: Path) -> None:
    """`all` and `api` serve the service's routes and fast routes; `worker` serves only the
    operations endpoints (health, readiness, metrics) — its consumers and sweepers are
    started by the lifespan, which the real-stack tests and the bench run."""
    for role in ("all", "api"):
        app = create_app(_spec(tmp_path), ServiceSettings(role=role))
        assert {"/v1/things", "/healthz", "/readyz"} <= _paths(app)
        assert _fast_paths(app) == {"/v1/fast"}
    worker = create_app(_spec(tmp_path), ServiceSettings(role="worker"))
    assert "/v1/things" not in _paths(worker)
    assert {"/healthz", "/readyz"} <= _paths(worker)
    assert _fast_paths(worker) == set()

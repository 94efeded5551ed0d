"""RFC 9457 problem+json: one error shape for every HTTP surface.

A problem has a machine-readable `type` (a stable code), a human `title`/`detail`, the HTTP
`status`, and for validation errors the offending fields in `errors`.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.problem_texts import FIELD_FALLBACK_KO, FIELD_KO, PROBLEM_KO, prefers_korean

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://gwangsan.danggeun.example/problems/"


class Problem(Exception):
    """Raise to answer with a problem+json body."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        ko: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        # A Korean sentence for this very case (numbers as `won()` formats them); without
        # one, the Korean text of the code (shared/problem_texts.py) is used.
        self.ko = ko
        self.title = title or code.replace("_", " ").capitalize()
        self.errors = errors
        self.headers = headers
        self.extra = extra or {}

    def body(self, instance: str | None = None, *, korean: bool = False) -> dict[str, Any]:
        """The problem+json body; in Korean (`title`, `detail`, each error's `message`) when
        the caller prefers it, the English kept in `detail_en` / `message_en`."""
        body: dict[str, Any] = {
            "type": TYPE_BASE + self.code,
            "code": self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }
        if korean:
            title_ko, detail_ko = PROBLEM_KO.get(
                self.code, _FALLBACK_KO.get(self.status // 100 * 100, _FALLBACK_KO[400])
            )
            body["title"] = title_ko
            body["detail"] = self.ko or detail_ko
            body["detail_en"] = self.detail
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = [_error_ko(e) for e in self.errors] if korean else self.errors
        return body


_FALLBACK_KO: dict[int, tuple[str, str]] = {
    400: ("요청 오류", "요청을 처리할 수 없습니다. 입력을 확인해 주세요."),
    500: ("서버 오류", "서버에서 요청을 처리하지 못했습니다."),
}


def _error_ko(error: dict[str, Any]) -> dict[str, Any]:
    code = str(error.get("code") or "")
    return {
        **error,
        "message": FIELD_KO.get(code, FIELD_FALLBACK_KO),
        "message_en": error.get("message", ""),
    }


# How long a client should wait before retrying when a dependency is down (seconds).
RETRY_AFTER_S = 2


def unexpected(exc: BaseException) -> Problem:
    """The answer to an exception no route handled: 503 with `Retry-After` when a dependency
    (Postgres, Kafka) is unreachable — the client's retry will succeed once it is back —,
    else 500. Never the exception's text: it may carry SQL or personal data."""
    from aiokafka.errors import KafkaError

    from shared.db import is_transient

    if is_transient(exc) or isinstance(exc, KafkaError):
        return Problem(
            503,
            "service_unavailable",
            "a dependency of this service is unavailable; retry shortly",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    return Problem(500, "internal_error", "an unexpected error; it is logged with the request id")


def problem_response(
    problem: Problem, instance: str | None = None, *, korean: bool = False
) -> JSONResponse:
    headers = dict(problem.headers or {})
    if korean:
        headers["Content-Language"] = "ko"
    return JSONResponse(
        problem.body(instance, korean=korean),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=headers or None,
    )


def wants_korean(request: Request) -> bool:
    return prefers_korean(request.headers.get("accept-language"))


def validation_errors(errors: Any) -> list[dict[str, Any]]:
    """Pydantic's errors as `{field, message, code}` a person can act on."""
    out: list[dict[str, Any]] = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        out.append(
            {
                "field": ".".join(loc) or "body",
                "message": err.get("msg", ""),
                "code": err.get("type"),
            }
        )
    return out


def install(app: FastAPI) -> None:
    """Make every error of `app` a problem+json body."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request.url.path, korean=wants_korean(request))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc.errors())
        fields = ", ".join(sorted({e["field"] for e in errors}))
        status = 400
        return problem_response(
            Problem(status, "invalid_request", f"invalid fields: {fields}", errors=errors),
            request.url.path,
            korean=wants_korean(request),
        )

    @app.exception_handler(asyncpg.CharacterNotInRepertoireError)
    @app.exception_handler(asyncpg.UntranslatableCharacterError)
    async def _unstorable(request: Request, exc: Exception) -> JSONResponse:
        # Text Postgres cannot hold (a NUL character) in a query, path or body the route
        # did not refuse itself: the client's mistake, never a 500.
        return problem_response(
            Problem(400, "invalid_characters", "text must not contain NUL characters"),
            request.url.path,
            korean=wants_korean(request),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(
            exc.status_code, "http_error"
        )
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            # Starlette names only the methods of the first route on the path; a path served
            # by several routes (GET and PUT) allows all of theirs.
            headers["Allow"] = ", ".join(allowed_methods(app, request))
        return problem_response(
            Problem(exc.status_code, code, str(exc.detail), headers=headers or None),
            request.url.path,
            korean=wants_korean(request),
        )

    document(app)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method some route of `app` fully matches on the request's path (asked of the
    router itself, so routers included with a prefix count too)."""
    from starlette.routing import Match

    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in app.router.routes
        )
    ]


# The shape of every problem+json answer, for OpenAPI documents.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "code", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "code": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": ["string", "null"]},
        "errors": {"type": ["array", "null"], "items": {"type": "object"}},
    },
}


def document(app: FastAPI) -> None:
    """Make `app`'s OpenAPI document say what `install` does: a request that fails
    validation is answered 400 problem+json (not FastAPI's 422 list), and the admin routes
    (`/v1/admin/…`, token-protected in every service) can answer 401."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        for route, path in schema.get("paths", {}).items():
            for operation in path.values():
                responses = operation.get("responses", {})
                if "HTTPValidationError" in str(responses.get("422", {})):
                    del responses["422"]
                    responses.setdefault("400", openapi_problem("invalid request"))
                if route.startswith("/v1/admin/"):
                    responses.setdefault("401", openapi_problem("missing or wrong token"))
        components = schema.get("components", {}).get("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def openapi_problem(description: str) -> dict[str, Any]:
    """The OpenAPI response object of a problem+json answer (for `responses=`)."""
    return {"description": description, "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}}}

"""ASGI plumbing every service's HTTP surface shares: request ids, metrics, body limits,
and fast routes.

Written as a plain ASGI middleware (not Starlette's BaseHTTPMiddleware) because it sits on
the webhook ingest path, where every microsecond per request counts. For the same reason a
service may declare a `FastRoute`: one hot endpoint served right here, without FastAPI's
routing, dependency solving and response classes — half of a small request's cost in the
profile (docs/performance.md). The route is still declared in FastAPI too, so the OpenAPI
document describes it; both call the same function.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import metrics
from shared.deadlines import within
from shared.logs import bind_request
from shared.problem_texts import prefers_korean
from shared.problems import PROBLEM_JSON, Problem, unexpected
from shared.ratelimit import RequestLimits

log = logging.getLogger(__name__)

# (service context, raw body, lower-case headers) -> (status, JSON-able body); raise
# `Problem` for an error answer, exactly as in a FastAPI route.
FastHandler = Callable[[Any, bytes, Mapping[str, str]], Awaitable[tuple[int, Any]]]


@dataclass(frozen=True)
class FastRoute:
    """An endpoint served by `ServiceMiddleware` itself (see the module docstring)."""

    method: str
    path: str
    handler: FastHandler


def _new_request_id() -> str:
    """A random id for log correlation; not a secret, so not from the OS's CSPRNG (a
    syscall per request showed in the ingest profile)."""
    return f"{random.getrandbits(128):032x}"


_NOSNIFF = (b"x-content-type-options", b"nosniff")
_NO_STORE = (b"cache-control", b"no-store")


def _safety_headers(path: str) -> list[tuple[bytes, bytes]]:
    """Headers on every answer: browsers never guess a content type (a CSV or a problem
    body is never run as a script), and API answers — ledgers, payees, payout files, keys —
    are never kept by a browser or proxy cache."""
    return [_NOSNIFF, _NO_STORE] if path.startswith("/v1/") else [_NOSNIFF]


def _too_many(wait_s: float) -> Problem:
    retry_after_s = max(1, math.ceil(wait_s))
    return Problem(
        429,
        "too_many_requests",
        f"too many requests; retry in {retry_after_s} s",
        headers={"Retry-After": str(retry_after_s)},
    )


class BodyTooLargeError(Exception):
    pass


def _too_large(limit: int) -> Problem:
    return Problem(413, "body_too_large", f"request bodies are limited to {limit} bytes")


class BodyTimeoutError(Exception):
    pass


def _too_slow(timeout_s: float) -> Problem:
    return Problem(
        408,
        "body_timeout",
        f"the request body did not arrive within {timeout_s:g} s",
        headers={"Connection": "close"},
    )


class _BodyClock:
    """The deadline for a request's whole body: set when the app first asks for it; once
    the last chunk has arrived, further `receive()` calls (waiting for a disconnect while a
    response streams) are not timed."""

    def __init__(self, timeout_s: float | None) -> None:
        self.timeout_s = timeout_s
        self.deadline: float | None = None
        self.done = False

    async def receive(self, receive: Receive) -> Message:
        if self.timeout_s is None or self.done:
            return await receive()
        now = time.monotonic()
        try:
            if self.deadline is None:
                # The first chunk (most bodies' only one) under the whole bound, watched
                # with every other request's (`within`: no timer armed per request).
                self.deadline = now + self.timeout_s
                message = await within(receive(), self.timeout_s)
            else:
                remaining = self.deadline - now
                async with asyncio.timeout_at(asyncio.get_running_loop().time() + remaining):
                    message = await receive()
        except TimeoutError:
            raise BodyTimeoutError from None
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.done = True
        return message


class ServiceMiddleware:
    """Request id in and out, body size limit, body read timeout, request metrics by route
    template, and the service's fast routes.

    The body read timeout: a request whose whole body has not arrived `body_read_timeout_s`
    after the app first reads it is answered 408 problem+json (and the connection closed),
    so a client trickling a body byte by byte cannot hold a worker. The time to send the
    request line and headers is not visible to an ASGI app: see `shared.service.serve` for
    what the Ingress must bound."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        body_size_max_bytes: int,
        fast_routes: Sequence[FastRoute] = (),
        limits: RequestLimits | None = None,
        body_read_timeout_s: float | None = None,
    ) -> None:
        self.app = app
        self.service = service
        self.limit = body_size_max_bytes
        self.body_timeout_s = body_read_timeout_s
        self.limits = limits
        self.fast = {(r.method, r.path): r.handler for r in fast_routes}
        # Labelled metric children by (route, method, status): `labels()` takes a lock and
        # builds a key on every call, a measurable share of a fast route's time.
        self._series: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode()[:100] or _new_request_id()
        language = headers.get(b"accept-language", b"").decode("latin-1")[:200] or None
        if self.limits is not None:
            client = scope.get("client")
            wait_s = self.limits.check(client[0] if client else None, headers.get(b"authorization"))
            if wait_s is not None:
                await self._answer(send, request_id, _too_many(wait_s), scope["path"], language)
                self._observe(scope, 429, 0.0)
                return
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._answer(send, request_id, _too_large(self.limit), scope["path"], language)
            self._observe(scope, 413, 0.0)
            return
        fast = self.fast.get((scope["method"], scope["path"])) if self.fast else None
        if fast is not None:
            with bind_request(request_id):
                await self._serve_fast(fast, scope, receive, send, headers, request_id)
            return
        status = 500
        response_started = False
        too_large = False
        too_slow = False
        received = 0
        started = time.perf_counter()
        extra_headers = [(b"x-request-id", request_id.encode()), *_safety_headers(scope["path"])]
        clock = _BodyClock(self.body_timeout_s)

        async def limited_receive() -> Message:
            nonlocal received, too_large, too_slow
            try:
                message = await clock.receive(receive)
            except BodyTimeoutError:
                # As for a too large body: FastAPI would turn this into its own 400.
                too_slow = True
                raise
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # A body without Content-Length (chunked) grew past the limit. FastAPI
                    # turns any error while reading a body into its own 400, so remember it
                    # and answer 413 ourselves, dropping whatever the app answers.
                    too_large = True
                    raise BodyTooLargeError
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if too_large or too_slow:
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message["headers"] = [*message.get("headers", []), *extra_headers]
            await send(message)

        with bind_request(request_id):
            try:
                await self.app(scope, limited_receive, send_with_id)
                if too_large and not response_started:
                    raise BodyTooLargeError
                if too_slow and not response_started:
                    raise BodyTimeoutError
            except BodyTooLargeError:
                status = 413
                await self._answer(
                    send, request_id, _too_large(self.limit), scope["path"], language
                )
            except BodyTimeoutError:
                status = 408
                if not response_started:
                    await self._answer(
                        send,
                        request_id,
                        _too_slow(self.body_timeout_s or 0.0),
                        scope["path"],
                        language,
                    )
            except Exception as exc:
                # Caught here, not by Starlette's outermost error middleware, so the answer
                # is problem+json with the request id and is counted in the HTTP metrics
                # (the 5xx alert reads them).
                problem = unexpected(exc)
                log.exception(
                    "unhandled error in %s %s",
                    scope.get("method"),
                    scope["path"],
                    extra={"service": self.service, "status": problem.status},
                )
                status = problem.status
                if not response_started:
                    await self._answer(send, request_id, problem, scope["path"], language)
        self._observe(scope, status, time.perf_counter() - started)

    async def _serve_fast(
        self,
        handler: FastHandler,
        scope: Scope,
        receive: Receive,
        send: Send,
        raw_headers: dict[bytes, bytes],
        request_id: str,
    ) -> None:
        started = time.perf_counter()
        path = scope["path"]
        answer: tuple[int, Any] | Problem
        chunks: list[bytes] = []
        size = 0
        more = True
        clock = _BodyClock(self.body_timeout_s)
        while more:
            try:
                message = await clock.receive(receive)
            except BodyTimeoutError:
                answer = _too_slow(self.body_timeout_s or 0.0)
                break
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                answer = _too_large(self.limit)
                break
            chunks.append(chunk)
            more = message.get("more_body", False)
        else:
            ctx = getattr(scope["app"].state, "ctx", None)
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in raw_headers.items()}
            try:
                if ctx is None:
                    raise Problem(503, "starting", "the service is starting; try again shortly")
                answer = await handler(ctx, b"".join(chunks), headers)
            except Problem as problem:
                answer = problem
            except Exception as exc:
                log.exception("unhandled error in %s %s", scope["method"], path)
                answer = unexpected(exc)
        language = raw_headers.get(b"accept-language", b"").decode("latin-1")[:200] or None
        status = await self._answer(send, request_id, answer, path, language)
        self._observe(scope, status, time.perf_counter() - started, template=path)

    async def _answer(
        self,
        send: Send,
        request_id: str,
        answer: tuple[int, Any] | Problem,
        path: str,
        accept_language: str | None = None,
    ) -> int:
        """Send a whole JSON (or problem+json) response; its status."""
        if isinstance(answer, Problem):
            status = answer.status
            korean = prefers_korean(accept_language)
            body = orjson.dumps(
                answer.body(path, korean=korean)
                | ({"request_id": request_id} if status >= 500 else {})
            )
            extra = [(k.lower().encode(), v.encode()) for k, v in (answer.headers or {}).items()]
            if korean:
                extra.append((b"content-language", b"ko"))
            headers = [(b"content-type", PROBLEM_JSON.encode()), *extra]
        else:
            status, body = answer[0], orjson.dumps(answer[1])
            headers = [(b"content-type", b"application/json")]
        headers += [
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode()),
            *_safety_headers(path),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return status

    def _observe(
        self, scope: Scope, status: int, seconds: float, template: str | None = None
    ) -> None:
        route: Any = scope.get("route")
        template = template or getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "")
        key = (template, method, str(status))
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (
                metrics.HTTP_REQUESTS.labels(self.service, template, method, key[2]),
                metrics.HTTP_SECONDS.labels(self.service, template, method),
            )
        series[0].inc()
        series[1].observe(seconds)

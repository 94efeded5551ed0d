"""ASGI plumbing every service's HTTP surface shares: request ids, metrics, body limits.

Written as a plain ASGI middleware (not Starlette's BaseHTTPMiddleware) because it sits on
the webhook ingest path, where every microsecond per request counts.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import metrics
from shared.logs import bind_request
from shared.problems import PROBLEM_JSON, TYPE_BASE


class BodyTooLargeError(Exception):
    pass


def _too_large_body(limit: int) -> bytes:
    return orjson.dumps(
        {
            "type": TYPE_BASE + "body_too_large",
            "code": "body_too_large",
            "title": "Body too large",
            "status": 413,
            "detail": f"request bodies are limited to {limit} bytes",
        }
    )


class ServiceMiddleware:
    """Request id in and out, body size limit, request metrics by route template."""

    def __init__(self, app: ASGIApp, *, service: str, body_size_max_bytes: int) -> None:
        self.app = app
        self.service = service
        self.limit = body_size_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode()[:100] or uuid.uuid4().hex
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._reject_too_large(send, request_id)
            self._observe(scope, 413, 0.0)
            return
        status = 500
        received = 0
        started = time.perf_counter()

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLargeError
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        with bind_request(request_id):
            try:
                await self.app(scope, limited_receive, send_with_id)
            except BodyTooLargeError:
                status = 413
                await self._reject_too_large(send, request_id)
        self._observe(scope, status, time.perf_counter() - started)

    async def _reject_too_large(self, send: Send, request_id: str) -> None:
        body = _too_large_body(self.limit)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route: Any = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "")
        metrics.HTTP_REQUESTS.labels(self.service, template, method, str(status)).inc()
        metrics.HTTP_SECONDS.labels(self.service, template, method).observe(seconds)

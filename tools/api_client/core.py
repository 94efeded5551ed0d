"""The one transport under every call: where the services are, how a request is
authenticated, what counts as an answer and what is an error.

A surface (`Surface`) is one service's API seen with one token. Its calls are one line each
over `json` / `content` / `send`: the path, the body, the statuses that count as the answer.
Any other status raises `ApiError` with the problem+json body (decision 0007), so a caller
reads as the story it tells. `send(..., expect=ANY)` and `request` give the response as it
is, for contract tests that look at statuses and headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

Json = dict[str, Any]
Expect = tuple[int, ...]
OK: Expect = (200,)
CREATED: Expect = (201,)
OK_OR_CREATED: Expect = (200, 201)
ACCEPTED: Expect = (202,)
ANY: Expect = ()  # every status is an answer: the response is returned as it is
TIMEOUT_S_DEFAULT = 30.0
PAGE_SIZE = 1000  # items asked for per page when a call reads every page
PAGES_MAX = 1000  # bound of the pages one call reads (a million items)
SIM_URL_DEFAULT = "http://127.0.0.1:8009"
# The services close a connection idle for `HTTP_KEEP_ALIVE_TIMEOUT_S` (5 s by default), and
# httpx keeps one for 5 s too: a request sent on a connection idle for just under 5 s meets
# the server's close ("Server disconnected without sending a response", a CI failure of
# 2026-12-07 after a test's 3.5 s sleep). Our clients drop idle connections well before.
KEEPALIVE_EXPIRY_S = 2.0


def http_client(
    *, timeout_s: float = TIMEOUT_S_DEFAULT, connections_max: int = 100, **kwargs: Any
) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` for the services: idle connections dropped after
    `KEEPALIVE_EXPIRY_S`, up to `connections_max` kept; `kwargs` go to the client."""
    limits = httpx.Limits(
        max_connections=connections_max,
        max_keepalive_connections=connections_max,
        keepalive_expiry=KEEPALIVE_EXPIRY_S,
    )
    return httpx.AsyncClient(timeout=timeout_s, limits=limits, **kwargs)


@dataclass(frozen=True)
class Endpoints:
    """Where the services and the partner simulator are, the staff tokens, the partner's
    webhook secret (the first one if several are configured) and its pull-API token."""

    registry_url: str
    matcher_url: str
    allowance_url: str
    admin_token: str = ""
    finance_token: str = ""
    webhook_secret: str = ""
    sim_url: str = SIM_URL_DEFAULT
    partner_api_token: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, sim_url: str | None = None) -> Endpoints:
        """From `.run/stack.env` (`client_env()`) or anything shaped like it."""
        return cls(
            registry_url=env.get("REGISTRY_URL", "http://127.0.0.1:8001"),
            matcher_url=env.get("MATCHER_URL", "http://127.0.0.1:8002"),
            allowance_url=env.get("ALLOWANCE_URL", "http://127.0.0.1:8003"),
            admin_token=env.get("ADMIN_TOKEN", ""),
            finance_token=env.get("FINANCE_TOKEN", ""),
            webhook_secret=env.get("PARTNER_WEBHOOK_SECRET", "").split(",")[0].strip(),
            sim_url=sim_url or SIM_URL_DEFAULT,
            partner_api_token=env.get("PARTNER_API_TOKEN", ""),
        )


class ApiError(Exception):
    """A service answered a status the call does not take for an answer. `problem` is the
    problem+json body (or the text of any other body); `code` its machine-readable code."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.status = response.status_code
        self.problem: Json | str
        try:
            body = response.json()
        except ValueError:
            body = None
        self.problem = body if isinstance(body, dict) else response.text
        super().__init__(
            f"{response.request.method} {response.request.url.path}: {self.status} {self.detail}"
        )

    @property
    def code(self) -> str | None:
        return str(self.problem.get("code")) if isinstance(self.problem, dict) else None

    @property
    def detail(self) -> str:
        if isinstance(self.problem, dict):
            return str(self.problem.get("detail") or self.problem)
        return self.problem[:400]


class Transport:
    """One HTTP connection pool for every surface, with an optional bound of the requests in
    flight at once (the demo plays hundreds of calls concurrently)."""

    def __init__(self, http: httpx.AsyncClient, concurrency_max: int | None = None) -> None:
        self.http = http
        self._limit = asyncio.Semaphore(concurrency_max) if concurrency_max else None

    async def request(self, method: str, url: str, token: str | None, **kw: Any) -> httpx.Response:
        headers = dict(kw.pop("headers", None) or {})
        if token:
            headers.setdefault("Authorization", f"Bearer {token}")
        async with self._limit or contextlib.nullcontext():
            return await self.http.request(method, url, headers=headers, **kw)


class Surface:
    """One service's API with one token: the base every group of calls is built on."""

    idempotent_posts = True  # every POST carries an Idempotency-Key (Stripe's rule)

    def __init__(self, transport: Transport, base_url: str, token: str | None) -> None:
        self.transport = transport
        self.base_url = base_url.rstrip("/")
        self.token = token

    async def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """Any call on this surface, authenticated, answered as it is."""
        return await self.transport.request(method, self.base_url + path, self.token, **kw)

    async def send(
        self,
        method: str,
        path: str,
        *,
        expect: Expect = OK,
        idempotency_key: str | None = None,
        **kw: Any,
    ) -> httpx.Response:
        """The call, its response if its status is one of `expect` (any, if empty), else
        `ApiError`. Every POST carries an `Idempotency-Key` (a fresh one unless given)."""
        if method == "POST" and self.idempotent_posts:
            kw["headers"] = {
                "Idempotency-Key": idempotency_key or uuid.uuid4().hex,
                **(kw.get("headers") or {}),
            }
        response = await self.request(method, path, **kw)
        if expect and response.status_code not in expect:
            raise ApiError(response)
        return response

    async def json(self, method: str, path: str, **kw: Any) -> Json:
        """A call answered with a JSON object."""
        body: Json = (await self.send(method, path, **kw)).json()
        return body

    async def content(self, method: str, path: str, **kw: Any) -> Json | bytes:
        """A call answered with JSON or a file (CSV, XLSX): the object, or the bytes."""
        response = await self.send(method, path, **kw)
        if "json" in response.headers.get("content-type", ""):
            body: Json = response.json()
            return body
        return response.content

    async def json_or_none(self, method: str, path: str, **kw: Any) -> Json | None:
        """A call answered with a JSON object, or None if there is no such thing (404)."""
        response = await self.send(method, path, expect=(200, 404), **kw)
        if response.status_code == 404:
            return None
        body: Json = response.json()
        return body

    async def pages(self, path: str, items_key: str, **params: Any) -> AsyncIterator[Json]:
        """Every page of a cursor-paginated list, up to PAGES_MAX pages."""
        cursor: str | None = None
        for _ in range(PAGES_MAX):
            paging = {"limit": PAGE_SIZE, **({"cursor": cursor} if cursor else {})}
            page = await self.json("GET", path, params={**params, **paging})
            yield page
            cursor = page.get("next_cursor")
            if not cursor:
                return
        raise RuntimeError(f"{path}: more than {PAGES_MAX} pages of {items_key}")

    async def all_items(self, path: str, items_key: str, **params: Any) -> list[Json]:
        """The items of every page of a cursor-paginated list."""
        items: list[Json] = []
        async for page in self.pages(path, items_key, **params):
            items.extend(page[items_key])
        return items

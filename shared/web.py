"""The HTTP kit every service's `api.py` is written with, so the three read alike.

- `Ctx[Settings]`: the running service's typed context as a FastAPI dependency (the FastAPI
  template's `SessionDep` idea: declared once, named by routes).
- `staff(role, ...)`: one authentication dependency for staff credentials (admin, finance, …),
  compared in constant time, with a bearer security scheme in the OpenAPI document; it
  answers who is calling as a `Staff` for audit rows.
- `Page[T]`, `page_of`, `CursorCodec`: one page shape (`items`, `next_cursor`), fetched with
  `limit + 1` so a full last page never gets a spurious cursor, and one opaque cursor format.
- `problem_responses(...)`: one way to document the problem+json answers of a route.
- `refuse_unknown_query`: a typo in a query parameter is an error, not a silently ignored
  filter; `refuse_repeated_query`: a parameter that takes one value given twice is an
  error too (which one would count?). Every `staff(...)` dependency applies the latter.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hmac
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

import structlog
from fastapi import Depends, Query, Request
from fastapi._compat import field_annotation_is_sequence
from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field

from shared.auth import bearer
from shared.context import ServiceContext
from shared.problems import PROBLEM_JSON, PROBLEM_SCHEMA, Problem
from shared.ratelimit import Lockout
from shared.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)
T = TypeVar("T")
R = TypeVar("R")


# --- the context ---------------------------------------------------------------------------


def get_ctx(request: Request) -> ServiceContext[Any]:
    """FastAPI dependency: the running service's context (503 while it is starting)."""
    ctx: ServiceContext[Any] | None = getattr(request.app.state, "ctx", None)
    if ctx is None:
        raise Problem(503, "starting", "the service is starting; try again shortly")
    return ctx


# `Ctx[RegistrySettings]` in a route signature: the context, typed for that service.
Ctx = Annotated[ServiceContext[S], Depends(get_ctx)]


def request_id_of() -> str | None:
    """The id of the request being served (bound by the middleware), for audit rows."""
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value) if value else None


# --- staff authentication --------------------------------------------------------------------


@dataclass(frozen=True)
class Staff:
    """Who is calling a staff endpoint: the credential's role, a staff id for audit rows
    (today the `X-Staff-Id` the client states; a named staff member's id where a
    `StaffDirectory` knows the token) and the request id."""

    role: str
    staff_id: str | None
    request_id: str | None
    # the address the request came from (audit rows record it as part of "who")
    client_address: str | None = None
    # True when `staff_id` is only what the client stated (`X-Staff-Id` with a static role
    # token), False when the credential itself names the staff member
    staff_id_self_declared: bool = False
    # the staff member's name, for a credential that names one (a `StaffDirectory` entry)
    name: str | None = None

    @property
    def authenticated_staff_id(self) -> str | None:
        return None if self.staff_id_self_declared else self.staff_id

    @property
    def stated_staff_id(self) -> str | None:
        return self.staff_id if self.staff_id_self_declared else None

    @property
    def label(self) -> str:
        return f"{self.role}:{self.staff_id}" if self.staff_id else self.role


@dataclass(frozen=True)
class StaffDirectory:
    """Named staff credentials a service keeps in its own tables: provided at start-up as a
    resource by a service that has them; `find` answers the staff member a token belongs to
    (or None)."""

    find: Callable[[ServiceContext[Any], str], Awaitable[Staff | None]]


def _static_role(token: str, settings: ServiceSettings) -> str | None:
    """The role whose static token `token` is. Every comparison runs, in constant time, so
    the answer's timing says nothing about which token came close."""
    found: str | None = None
    presented = token.encode()
    for role, secret in settings.staff_tokens().items():
        expected = secret.get_secret_value().encode()
        if expected and hmac.compare_digest(presented, expected) and found is None:
            found = role
    return found


def _unauthorized(roles: Sequence[str]) -> Problem:
    return Problem(
        401,
        "unauthorized",
        f"this endpoint needs the {' or '.join(roles)} token",
        headers={"WWW-Authenticate": "Bearer"},
    )


def staff(
    *roles: str,
    strict_query: bool = False,
    foreign: Callable[[str], str | None] | None = None,
    description: str | None = None,
) -> Callable[..., Awaitable[Staff]]:
    """A dependency admitting a staff credential of one of `roles`.

    A credential of another staff role is 403 (it is valid, not for this endpoint); one that
    `foreign` recognises as another kind of credential (a facility key on the admin API) is
    403 with `foreign`'s sentence; anything else is 401. `strict_query` refuses unknown
    query parameters after authentication (so an anonymous caller learns nothing). A role
    whose credentials a service keeps in its own tables (the matcher's `partner` tokens)
    is found through its `StaffDirectory`; `description` words the OpenAPI scheme."""
    if not roles:
        raise ValueError("staff() needs at least one role")
    scheme = HTTPBearer(
        auto_error=False,
        scheme_name="".join([roles[0], *(r.capitalize() for r in roles[1:])]) + "Token",
        description=description or f"the {' or '.join(roles)} staff token",
    )

    async def dependency(
        request: Request,
        ctx: ServiceContext[Any] = Depends(get_ctx),
        _doc: Any = Depends(scheme),
    ) -> Staff:
        # No lockout here: a static staff token has no key id to lock, and locking an
        # address would lock out every colleague behind the district's one NAT address; a
        # 256-bit token cannot be guessed anyway, and the per-address rate limit applies.
        token = bearer(request)
        role = _static_role(token, ctx.settings)
        client = request.client.host if request.client is not None else None
        who: Staff | None = None
        if role is not None:
            stated = request.headers.get("x-staff-id", "").strip()[:100] or None
            who = Staff(
                role,
                stated,
                request_id_of(),
                client_address=client,
                staff_id_self_declared=stated is not None,
            )
        else:
            directory = ctx.resource_or_none(StaffDirectory)
            if directory is not None:
                who = await directory.find(ctx, token)
                if who is not None and who.client_address is None:
                    who = dataclasses.replace(who, client_address=client)
        if who is None:
            sentence = foreign(token) if foreign is not None else None
            if sentence is not None:
                raise Problem(403, "forbidden", sentence)
            raise _unauthorized(roles)
        if who.role not in roles:
            raise Problem(
                403,
                "forbidden",
                f"this endpoint needs the {' or '.join(roles)} token;"
                f" the {who.role} token is not allowed here",
            )
        if strict_query:
            refuse_unknown_query(request)
        else:
            refuse_repeated_query(request)
        return who

    return dependency


def refuse_locked_out(ctx: ServiceContext[Any], key: str) -> None:
    """429 with Retry-After while `key` (a facility key id, a client address) is locked out
    for presenting too many bad secrets (shared/ratelimit.py `Lockout`)."""
    lockout = ctx.resource_or_none(Lockout)
    wait_s = lockout.blocked_for_s(key) if lockout is not None else None
    if wait_s is not None:
        raise Problem(
            429,
            "too_many_requests",
            f"too many bad credentials; retry in {wait_s} s",
            headers={"Retry-After": str(wait_s)},
        )


def note_bad_secret(ctx: ServiceContext[Any], key: str) -> None:
    """Count one bad secret presented for `key` towards its lockout."""
    lockout = ctx.resource_or_none(Lockout)
    if lockout is not None:
        lockout.fail(key)


def _declared_query(request: Request) -> dict[str, bool] | None:
    """The query parameters the route declares, each with whether it takes several values
    (a list parameter); None outside a FastAPI route."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    declared: dict[str, bool] = {}
    stack = [dependant]
    while stack:
        current = stack.pop()
        for param in current.query_params:
            declared[param.alias] = field_annotation_is_sequence(param.field_info.annotation)
        stack.extend(current.dependencies)
    return declared


def refuse_repeated_query(request: Request) -> None:
    """400 naming each query parameter that takes one value but was given more than once
    (`?cursor=a&cursor=junk`: the server would silently use one of them)."""
    declared = _declared_query(request)
    if declared is None:
        return
    seen: set[str] = set()
    repeated: set[str] = set()
    for name, _ in request.query_params.multi_items():
        if name in seen and not declared.get(name, False):
            repeated.add(name)
        seen.add(name)
    if repeated:
        names = sorted(repeated)
        raise Problem(
            400,
            "invalid_request",
            "query parameters given more than once: " + ", ".join(names)[:200],
            errors=[
                {"field": name[:100], "message": "give this parameter once", "code": "repeated"}
                for name in names[:20]
            ],
        )


def single_query(request: Request) -> None:
    """FastAPI dependency form of `refuse_repeated_query`, for routes without a `staff`
    dependency: `dependencies=[Depends(single_query)]`."""
    refuse_repeated_query(request)


def refuse_unknown_query(request: Request) -> None:
    """400 for query parameters the route does not declare (a typo in a filter would
    otherwise list everything), and for one-value parameters given twice."""
    declared = _declared_query(request)
    if declared is None:
        return
    unknown = sorted(set(request.query_params.keys()) - set(declared))
    if not unknown:
        refuse_repeated_query(request)
    if unknown:
        raise Problem(
            400,
            "invalid_request",
            "unknown query parameters: " + ", ".join(unknown)[:200],
            errors=[
                {"field": name[:100], "message": "unknown query parameter", "code": "unknown"}
                for name in unknown[:20]
            ],
        )


# --- pages ---------------------------------------------------------------------------------


class Page(BaseModel, Generic[T]):
    """One page of a list: its items and, when there are more, the cursor of the next."""

    items: list[T]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null on the last page"
    )


Limit = Annotated[
    int | None, Query(ge=1, le=1000, description="items per page (bounded by the settings)")
]
CursorParam = Annotated[
    str | None, Query(max_length=500, description="`next_cursor` of the previous page")
]


def page_limit(limit: int | None, settings: ServiceSettings, default: int | None = None) -> int:
    """The page size to fetch: the caller's, else the default, never above the bound."""
    return min(limit or default or settings.page_size_max, settings.page_size_max)


@dataclass(frozen=True)
class PageOf(Generic[R]):
    """Rows of a page fetched with `limit + 1`: the page's rows and whether more follow."""

    rows: list[R]
    more: bool


def cut_page(rows: Sequence[R], limit: int) -> PageOf[R]:
    """Split rows fetched with `limit + 1` into the page and "is there more": a page that is
    exactly full is not followed by an empty one."""
    return PageOf(list(rows[:limit]), len(rows) > limit)


CursorPart = str | int | datetime
_KINDS: dict[type[Any], str] = {str: "s", int: "i", datetime: "t"}


class CursorCodec:
    """Opaque cursors: a position (a tuple of strings, integers and instants, the list's
    sort key) as URL-safe base64 of a JSON list. Decoding checks the shape, so a cursor of
    another list, or one edited by hand into nonsense, is a 400 naming `cursor`."""

    def __init__(self, *kinds: type[CursorPart]) -> None:
        self.kinds = kinds

    def encode(self, *position: CursorPart) -> str:
        if len(position) != len(self.kinds):
            raise ValueError("a cursor position has one value per sort key")
        parts = [p.astimezone(UTC).isoformat() if isinstance(p, datetime) else p for p in position]
        raw = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    def decode(self, text: str | None) -> tuple[Any, ...] | None:
        if text is None:
            return None
        try:
            padded = text + "=" * (-len(text) % 4)
            parts = json.loads(base64.urlsafe_b64decode(padded.encode()))
            if not isinstance(parts, list) or len(parts) != len(self.kinds):
                raise ValueError("wrong shape")
            return tuple(
                self._part(kind, part) for kind, part in zip(self.kinds, parts, strict=True)
            )
        except (ValueError, TypeError, binascii.Error, RecursionError, UnicodeDecodeError):
            raise Problem(
                400,
                "invalid_request",
                "cursor: not a cursor of this list",
                errors=[
                    {"field": "cursor", "message": "not a cursor of this list", "code": "cursor"}
                ],
            ) from None

    @staticmethod
    def _part(kind: type[CursorPart], value: Any) -> CursorPart:
        if kind is datetime:
            if not isinstance(value, str):
                raise ValueError("not an instant")
            at = datetime.fromisoformat(value)
            if at.tzinfo is None:
                raise ValueError("an instant without a zone")
            return at
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError("not an integer")
            return value
        if not isinstance(value, str) or "\x00" in value:
            raise ValueError("not a string")
        return value


P = TypeVar("P", bound=Page[Any])


def page_of(
    page_type: type[P],
    rows: Sequence[R],
    limit: int,
    render: Callable[[R], Any],
    position: Callable[[R], str],
    **extra: Any,
) -> P:
    """The page (of class `page_type`, a `Page[Item]` or a subclass with more fields in
    `extra`) of rows fetched with `limit + 1`: `render` makes each item, `position` the
    cursor of the last row when more follow."""
    cut = cut_page(rows, limit)
    items = [render(row) for row in cut.rows]
    cursor = position(cut.rows[-1]) if cut.more else None
    return page_type(items=items, next_cursor=cursor, **extra)


# --- problem documentation -------------------------------------------------------------------

PROBLEM_TEXT: dict[int, str] = {
    400: "invalid request: the problem names each bad field",
    401: "no credential, or one this service does not know",
    403: "a valid credential that is not for this endpoint",
    404: "no such resource for this caller",
    409: "the resource's state does not allow this now (or the Idempotency-Key is in flight)",
    413: "request body too large",
    422: "well-formed but refused by a rule (the problem says which)",
    503: "a dependency (Postgres, Kafka) is unavailable; retry",
}


class ProblemDoc(BaseModel):
    """An RFC 9457 problem+json answer (documentation of the shape every error has)."""

    type: str
    code: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


def problem_responses(*codes: int, **texts: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for the problem+json answers a route or router can give; a
    keyword `e404="..."` overrides the default description of that status."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        out[code] = {
            "model": ProblemDoc,
            "description": texts.get(f"e{code}", PROBLEM_TEXT.get(code, "an error")),
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDoc"}}},
        }
    return out


__all__ = [
    "PROBLEM_SCHEMA",
    "Ctx",
    "CursorCodec",
    "CursorParam",
    "Limit",
    "Page",
    "ProblemDoc",
    "Staff",
    "StaffDirectory",
    "get_ctx",
    "page_limit",
    "page_of",
    "problem_responses",
    "refuse_repeated_query",
    "refuse_unknown_query",
    "single_query",
    "staff",
]

"""The registry's HTTP surface: the admin API and the facility API (BRIEF §6).

Routes are thin: authenticate, validate, call the domain rules, write through `store` in
one transaction with the outbox, and answer. Every facility query is scoped by the caller's
facility id, so another facility's posting is simply not found (404).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer

from registry import domain, schemas, store
from registry.handlers import PRODUCER, posting_terms
from registry.settings import Context, RegistrySettings
from shared import outbox
from shared.auth import bearer, issue_key, key_id_of, matches
from shared.db import retry_conflicts
from shared.events import (
    AttendanceCorrected,
    AttendanceRecorded,
    PostingCancelled,
    PostingSubmitted,
    PostingUpdated,
)
from shared.problems import PROBLEM_JSON, Problem
from shared.web import get_ctx

log = logging.getLogger(__name__)

_PROBLEM_TEXT = {
    400: "invalid request: the problem names each bad field",
    401: "no key, an unknown key, a rotated-out key or a suspended facility's key",
    403: "the token is valid but not for this API (admin token on the facility API or the "
    "other way round)",
    404: "no such resource for this caller",
    409: "the resource's state does not allow this now (or the Idempotency-Key is in flight)",
    413: "request body too large",
    422: "the Idempotency-Key was used before with another request",
}


def problem_doc(code: int) -> dict[str, Any]:
    """The OpenAPI response object of a problem+json answer."""
    return {
        "description": _PROBLEM_TEXT[code],
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDoc"}}},
    }


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of the problem+json answers a route can give."""
    return {code: {"model": schemas.ProblemDoc, **problem_doc(code)} for code in codes}


AdminBearer = HTTPBearer(
    auto_error=False, scheme_name="adminToken", description="the administrators' token"
)
FacilityBearer = HTTPBearer(
    auto_error=False, scheme_name="facilityKey", description="a facility's API key"
)

PostingId = Annotated[str, Path(pattern=schemas.ID_PATTERN, description="a posting id")]
FacilityId = Annotated[str, Path(pattern=schemas.ID_PATTERN, description="a facility id")]
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="a unique key per intended request; a retry with the same key replays"
        " the first answer",
    ),
]
Limit = Annotated[int | None, Query(ge=1, le=1000, description="bounded by the settings")]
CursorParam = Annotated[str | None, Query(max_length=500, description="next_cursor of a page")]


def settings_of(ctx: Context) -> RegistrySettings:
    settings = ctx.settings
    assert isinstance(settings, RegistrySettings)
    return settings


def bounds_of(settings: RegistrySettings) -> domain.PostingBounds:
    return domain.PostingBounds(
        duration_min_minutes=settings.posting_duration_min_minutes,
        duration_max_minutes=settings.posting_duration_max_minutes,
        capacity_min=settings.posting_capacity_min,
        capacity_max=settings.posting_capacity_max,
        horizon_days_max=settings.posting_horizon_days_max,
    )


def attendance_policy_of(settings: RegistrySettings) -> domain.AttendancePolicy:
    return domain.AttendancePolicy(
        window=timedelta(hours=settings.attendance_window_hours),
        slack=timedelta(minutes=settings.attendance_slack_minutes),
    )


def invalid(
    errors: list[domain.FieldError], status: int = 400, code: str = "invalid_request"
) -> Problem:
    fields = ", ".join(sorted({e.field for e in errors}))
    return Problem(status, code, f"invalid fields: {fields}", errors=[e.as_dict() for e in errors])


def page_limit(limit: int | None, settings: RegistrySettings) -> int:
    return min(limit or settings.page_size_default, settings.page_size_max)


def decode_cursor(cursor: str | None) -> domain.Cursor | None:
    if cursor is None:
        return None
    try:
        decoded = domain.decode_cursor(cursor)
    except domain.CursorError as exc:
        raise Problem(
            400,
            "invalid_request",
            "cursor: not a cursor of this list",
            errors=[{"field": "cursor", "message": str(exc), "code": "cursor"}],
        ) from exc
    if not _valid_id(decoded.id):
        raise Problem(400, "invalid_request", "cursor: not a cursor of this list")
    return decoded


def _valid_id(value: str) -> bool:
    return 0 < len(value) <= 64 and all(c.isascii() and (c.isalnum() or c in "_-") for c in value)


# --- authentication ---------------------------------------------------------------------------


def refuse_unknown_query(request: Request) -> None:
    """Unknown query parameters are refused like unknown body fields: a typo in a filter
    (`?stauts=open`) must not silently list everything."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known: set[str] = set()
    stack = [dependant]
    while stack:
        current = stack.pop()
        known.update(p.alias for p in current.query_params)
        stack.extend(current.dependencies)
    unknown = sorted(set(request.query_params.keys()) - known)
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


def _is_admin(token: str, ctx: Context) -> bool:
    expected = ctx.settings.admin_token.get_secret_value()
    return bool(expected) and hmac.compare_digest(token.encode(), expected.encode())


async def require_admin(
    request: Request,
    ctx: Context = Depends(get_ctx),
    _doc: Any = Depends(AdminBearer),
) -> None:
    """The admin token, compared in constant time; a facility key here is 403."""
    token = bearer(request)
    if _is_admin(token, ctx):
        refuse_unknown_query(request)
        return
    if key_id_of(token) is not None:
        raise Problem(403, "forbidden", "a facility key cannot use the admin API")
    raise Problem(
        401,
        "unauthorized",
        "this endpoint needs the admin token",
        headers={"WWW-Authenticate": "Bearer"},
    )


@dataclass(frozen=True)
class Caller:
    """The facility a request acts for."""

    facility_id: str


_UNAUTHORIZED_DETAIL = "send a valid facility key: `Authorization: Bearer <key>`"


async def require_facility(
    request: Request,
    ctx: Context = Depends(get_ctx),
    _doc: Any = Depends(FacilityBearer),
) -> Caller:
    """A live facility key: found by its key id, hash compared in constant time, not rotated
    out, of an active facility. The admin token is refused with 403 (it is not a facility)."""
    token = bearer(request)
    if _is_admin(token, ctx):
        raise Problem(403, "forbidden", "the admin token cannot act as a facility")
    unauthorized = Problem(
        401, "unauthorized", _UNAUTHORIZED_DETAIL, headers={"WWW-Authenticate": "Bearer"}
    )
    key_id = key_id_of(token)
    if key_id is None:
        raise unauthorized
    async with ctx.pool.acquire() as conn:
        row = await store.find_key(conn, key_id)
    if row is None or not matches(token, row["secret_hash"]):
        raise unauthorized
    if row["expires_at"] is not None and row["expires_at"] <= ctx.now():
        raise unauthorized
    if row["facility_status"] != "active":
        raise unauthorized
    refuse_unknown_query(request)
    return Caller(row["facility_id"])


# --- views ------------------------------------------------------------------------------------


def facility_view(row: asyncpg.Record) -> schemas.FacilityView:
    return schemas.FacilityView(
        id=row["id"],
        name=row["name"],
        kind=row["kind"],
        dong=row["dong"],
        address=row["address"],
        contact_phone=row["contact_phone"],
        requires_child_safety_check=row["requires_child_safety_check"],
        status=row["status"],
        created_at=row["created_at"],
        suspended_at=row["suspended_at"],
    )


def posting_view(
    row: asyncpg.Record, now: datetime, settings: RegistrySettings
) -> schemas.PostingView:
    stale_after = timedelta(seconds=settings.posting_budget_answer_stale_after_s)
    rejection = None
    if row["status"] == "rejected":
        rejection = schemas.Rejection(
            reason=row["rejection_reason"],
            detail=row["rejection_detail"] or "",
            rejected_at=row["rejected_at"],
        )
    update_rejected = row["last_update_rejected"]
    return schemas.PostingView(
        id=row["id"],
        facility_id=row["facility_id"],
        title=row["title"],
        description=row["description"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        capacity=row["capacity"],
        selection=row["selection"],
        applications_close_at=row["applications_close_at"],
        requires_child_safety_check=row["requires_child_safety_check"],
        tags=list(row["tags"]),
        status=row["status"],
        revision=row["revision"],
        reservation_id=row["reservation_id"],
        budget_answer_overdue=(
            row["status"] == "pending_budget" and row["created_at"] < now - stale_after
        ),
        rejection=rejection,
        last_update_rejected=(
            schemas.UpdateRejection.model_validate(update_rejected) if update_rejected else None
        ),
        confirmed_count=row["confirmed_count"],
        waitlisted_count=row["waitlisted_count"],
        cancel_reason=row["cancel_reason"],
        attendance_window_closes_at=row["ends_at"]
        + timedelta(hours=settings.attendance_window_hours),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        published_at=row["published_at"],
        cancelled_at=row["cancelled_at"],
        closed_at=row["closed_at"],
    )


def posting_json(row: asyncpg.Record, ctx: Context) -> dict[str, Any]:
    return posting_view(row, ctx.now(), settings_of(ctx)).model_dump(mode="json")


# --- idempotent POSTs -------------------------------------------------------------------------

Work = Callable[[asyncpg.Connection], Awaitable[tuple[int, dict[str, Any]]]]


async def run_idempotent(
    request: Request, ctx: Context, caller: Caller, key: str, work: Work
) -> Response:
    """Do `work` once per (facility, Idempotency-Key): its answer is stored in the same
    transaction as its effects; a replay gets that answer, another body with the same key
    is 422, and the same key while the first request is still running is 409. Failed
    requests store nothing, so they can be retried with the same key."""
    fingerprint = domain.request_fingerprint(request.method, request.url.path, await request.body())

    async def attempt() -> Response:
        async with ctx.pool.acquire() as conn, conn.transaction():
            if not await store.lock_idempotency_key(conn, caller.facility_id, key):
                raise Problem(
                    409,
                    "idempotency_key_in_flight",
                    "a request with this Idempotency-Key is still being processed; retry later",
                )
            prior = await store.get_idempotency(conn, caller.facility_id, key)
            if prior is not None:
                if prior["request_hash"] != fingerprint:
                    raise Problem(
                        422,
                        "idempotency_key_reused",
                        "this Idempotency-Key was used with a different request",
                    )
                return Response(
                    content=prior["response_body"],
                    status_code=prior["response_status"],
                    media_type="application/json",
                    headers={"Idempotent-Replayed": "true"},
                )
            status, body = await work(conn)
            response = JSONResponse(body, status_code=status)
            await store.save_idempotency(
                conn,
                caller.facility_id,
                key,
                request_hash=fingerprint,
                status=status,
                body=bytes(response.body),
            )
            return response

    return await retry_conflicts(attempt)


# --- admin API --------------------------------------------------------------------------------

admin = APIRouter(prefix="/v1/admin/facilities", tags=["admin"])


@admin.post(
    "",
    status_code=201,
    response_model=schemas.FacilityCreated,
    summary="Register a facility; its API key is shown this once",
    responses=problem_responses(400, 401, 403, 413),
)
async def create_facility(
    body: schemas.FacilityCreate,
    _: None = Depends(require_admin),
    ctx: Context = Depends(get_ctx),
) -> JSONResponse:
    settings = settings_of(ctx)
    errors = domain.validate_dong(body.dong, settings.facility_dongs)
    if errors:
        raise invalid(errors)
    key = issue_key()
    now = ctx.now()
    facility_id = domain.new_id("fac")
    async with ctx.pool.acquire() as conn, conn.transaction():
        row = await store.insert_facility(
            conn,
            facility_id=facility_id,
            name=body.name,
            kind=body.kind,
            dong=body.dong,
            address=body.address,
            contact_phone=body.contact_phone,
            requires_child_safety_check=body.requires_child_safety_check,
            now=now,
        )
        await store.insert_key(
            conn, key_id=key.key_id, facility_id=facility_id, secret_hash=key.secret_hash, now=now
        )
    log.info("facility registered", extra={"facility": facility_id})
    created = schemas.FacilityCreated(
        **facility_view(row).model_dump(), api_key=key.secret, key_id=key.key_id
    )
    return JSONResponse(created.model_dump(mode="json"), status_code=201)


@admin.get(
    "",
    response_model=schemas.FacilityPage,
    summary="List facilities (cursor pages, oldest first)",
    responses=problem_responses(400, 401, 403),
)
async def list_facilities(
    limit: Limit = None,
    cursor: CursorParam = None,
    _: None = Depends(require_admin),
    ctx: Context = Depends(get_ctx),
) -> schemas.FacilityPage:
    size = page_limit(limit, settings_of(ctx))
    after = decode_cursor(cursor)
    async with ctx.pool.acquire() as conn:
        rows = await store.list_facilities(conn, limit=size + 1, after=after)
    more = len(rows) > size
    rows = rows[:size]
    next_cursor = (
        domain.encode_cursor(domain.Cursor(rows[-1]["created_at"], rows[-1]["id"]))
        if more
        else None
    )
    return schemas.FacilityPage(data=[facility_view(r) for r in rows], next_cursor=next_cursor)


@admin.get(
    "/{facility_id}",
    response_model=schemas.FacilityView,
    summary="One facility",
    responses=problem_responses(400, 401, 403, 404),
)
async def get_facility(
    facility_id: FacilityId,
    _: None = Depends(require_admin),
    ctx: Context = Depends(get_ctx),
) -> schemas.FacilityView:
    async with ctx.pool.acquire() as conn:
        row = await store.get_facility(conn, facility_id)
    if row is None:
        raise Problem(404, "not_found", "no such facility")
    return facility_view(row)


@admin.post(
    "/{facility_id}/keys/rotate",
    response_model=schemas.KeyRotated,
    summary="Issue a new key; the previous ones stop working after the configured overlap",
    responses=problem_responses(400, 401, 403, 404, 409),
)
async def rotate_key(
    facility_id: FacilityId,
    _: None = Depends(require_admin),
    ctx: Context = Depends(get_ctx),
) -> schemas.KeyRotated:
    settings = settings_of(ctx)
    key = issue_key()
    now = ctx.now()
    until = now + timedelta(seconds=settings.facility_key_rotation_overlap_s)
    async with ctx.pool.acquire() as conn, conn.transaction():
        row = await store.get_facility(conn, facility_id, for_update=True)
        if row is None:
            raise Problem(404, "not_found", "no such facility")
        if row["status"] != "active":
            raise Problem(409, "facility_suspended", "a suspended facility gets no new keys")
        await store.expire_keys(conn, facility_id, until)
        await store.insert_key(
            conn, key_id=key.key_id, facility_id=facility_id, secret_hash=key.secret_hash, now=now
        )
    log.info("facility key rotated", extra={"facility": facility_id, "key_id": key.key_id})
    return schemas.KeyRotated(
        facility_id=facility_id,
        key_id=key.key_id,
        api_key=key.secret,
        previous_keys_valid_until=until,
    )


@admin.post(
    "/{facility_id}/suspend",
    response_model=schemas.FacilitySuspended,
    summary="Suspend a facility: its keys stop working and its open postings are cancelled",
    responses=problem_responses(400, 401, 403, 404),
)
async def suspend_facility(
    facility_id: FacilityId,
    _: None = Depends(require_admin),
    ctx: Context = Depends(get_ctx),
) -> schemas.FacilitySuspended:
    now = ctx.now()

    async def work() -> schemas.FacilitySuspended:
        async with ctx.pool.acquire() as conn, conn.transaction():
            row = await store.get_facility(conn, facility_id, for_update=True)
            if row is None:
                raise Problem(404, "not_found", "no such facility")
            cancelled: list[str] = []
            if row["status"] == "active":
                await store.suspend_facility(conn, facility_id, now)
                await store.expire_keys(conn, facility_id, now)
                for posting_id in await store.cancellable_postings(conn, facility_id):
                    await store.cancel_posting(
                        conn, posting_id, reason="facility_suspended", now=now
                    )
                    await outbox.add(
                        conn,
                        PostingCancelled(
                            posting_id=posting_id,
                            facility_id=facility_id,
                            reason="facility_suspended",
                            cancelled_at=now,
                        ),
                        producer=PRODUCER,
                        occurred_at=now,
                    )
                    cancelled.append(posting_id)
                row = await store.get_facility(conn, facility_id)
                assert row is not None
            return schemas.FacilitySuspended(
                facility=facility_view(row), cancelled_posting_ids=cancelled
            )

    result = await retry_conflicts(work)
    log.info(
        "facility suspended",
        extra={"facility": facility_id, "postings_cancelled": len(result.cancelled_posting_ids)},
    )
    return result


# --- facility API -----------------------------------------------------------------------------

facility = APIRouter(prefix="/v1/postings", tags=["facility"])


@facility.post(
    "",
    status_code=201,
    response_model=schemas.PostingView,
    summary="Post a shift; it opens once the budget is reserved",
    responses=problem_responses(400, 401, 403, 409, 413, 422),
)
async def create_posting(
    body: schemas.PostingCreate,
    request: Request,
    idempotency_key: IdempotencyKey,
    caller: Caller = Depends(require_facility),
    ctx: Context = Depends(get_ctx),
) -> Response:
    settings = settings_of(ctx)

    async def work(conn: asyncpg.Connection) -> tuple[int, dict[str, Any]]:
        now = ctx.now()
        fac = await store.get_facility(conn, caller.facility_id, for_share=True)
        if fac is None or fac["status"] != "active":
            raise Problem(401, "unauthorized", _UNAUTHORIZED_DETAIL)
        terms = domain.ShiftTerms(
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            capacity=body.capacity,
            selection=body.selection,
            applications_close_at=body.applications_close_at,
        )
        errors = domain.validate_terms(terms, now, bounds_of(settings))
        if errors:
            raise invalid(errors)
        posting_id = domain.new_id("pst")
        await store.insert_posting(
            conn,
            posting_id=posting_id,
            facility_id=caller.facility_id,
            title=body.title,
            description=body.description,
            terms=terms,
            requires_child_safety_check=domain.posting_requires_child_safety_check(
                fac["requires_child_safety_check"], body.requires_child_safety_check
            ),
            tags=body.tags,
            now=now,
        )
        row = await store.get_posting(conn, posting_id)
        assert row is not None
        await outbox.add(
            conn, PostingSubmitted(**posting_terms(row)), producer=PRODUCER, occurred_at=now
        )
        log.info("posting submitted", extra={"posting": posting_id})
        return 201, posting_json(row, ctx)

    return await run_idempotent(request, ctx, caller, idempotency_key, work)


PostingStatusFilter = Annotated[
    list[domain.PostingStatus] | None, Query(max_length=5, description="any of these statuses")
]


@facility.get(
    "",
    response_model=schemas.PostingPage,
    summary="This facility's postings (cursor pages, oldest first)",
    responses=problem_responses(400, 401, 403),
)
async def list_postings(
    status: PostingStatusFilter = None,
    starts_from: Annotated[
        schemas.Timestamp | None, Query(description="shifts starting at or after")
    ] = None,
    starts_before: Annotated[
        schemas.Timestamp | None, Query(description="shifts starting before")
    ] = None,
    limit: Limit = None,
    cursor: CursorParam = None,
    caller: Caller = Depends(require_facility),
    ctx: Context = Depends(get_ctx),
) -> schemas.PostingPage:
    settings = settings_of(ctx)
    size = page_limit(limit, settings)
    page = domain.PageRequest(
        limit=size + 1,
        after=decode_cursor(cursor),
        statuses=tuple(status or ()),
        starts_from=starts_from,
        starts_before=starts_before,
    )
    async with ctx.pool.acquire() as conn:
        rows = await store.list_postings(conn, caller.facility_id, page)
    more = len(rows) > size
    rows = rows[:size]
    now = ctx.now()
    next_cursor = (
        domain.encode_cursor(domain.Cursor(rows[-1]["created_at"], rows[-1]["id"]))
        if more
        else None
    )
    return schemas.PostingPage(
        data=[posting_view(r, now, settings) for r in rows], next_cursor=next_cursor
    )


async def _own_posting(
    conn: asyncpg.Connection, posting_id: str, caller: Caller, *, for_update: bool = False
) -> asyncpg.Record:
    row = await store.get_posting(
        conn, posting_id, facility_id=caller.facility_id, for_update=for_update
    )
    if row is None:
        raise Problem(404, "not_found", "no such posting")
    return row


@facility.get(
    "/{posting_id}",
    response_model=schemas.PostingView,
    summary="One of this facility's postings",
    responses=problem_responses(400, 401, 403, 404),
)
async def get_posting(
    posting_id: PostingId,
    caller: Caller = Depends(require_facility),
    ctx: Context = Depends(get_ctx),
) -> schemas.PostingView:
    async with ctx.pool.acquire() as conn:
        row = await _own_posting(conn, posting_id, caller)
    return posting_view(row, ctx.now(), settings_of(ctx))


@facility.patch(
    "/{posting_id}",
    response_model=schemas.PostingView,
    summary="Change title, description, tags, capacity or (while nobody is booked) times",
    responses=problem_responses(400, 401, 403, 404, 409, 413),
)
async def patch_posting(
    posting_id: PostingId,
    body: schemas.PostingPatchBody,
    caller: Caller = Depends(require_facility),
    ctx: Context = Depends(get_ctx),
) -> schemas.PostingView:
    settings = settings_of(ctx)
    patch = domain.PostingPatch(
        title=body.title,
        description=body.description,
        tags=tuple(body.tags) if body.tags is not None else None,
        capacity=body.capacity,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        applications_close_at=body.applications_close_at,
    )

    async def work() -> schemas.PostingView:
        async with ctx.pool.acquire() as conn, conn.transaction():
            row = await _own_posting(conn, posting_id, caller, for_update=True)
            now = ctx.now()
            try:
                plan = domain.plan_patch(
                    store.state_of(row),
                    patch,
                    confirmed_count=row["confirmed_count"],
                    active_count=row["confirmed_count"] + row["waitlisted_count"],
                    now=now,
                    bounds=bounds_of(settings),
                )
            except domain.PatchRefusedError as exc:
                raise Problem(
                    exc.status, exc.code, exc.detail, errors=[e.as_dict() for e in exc.errors]
                ) from exc
            if not plan.changed:
                return posting_view(row, now, settings)
            revision = row["revision"] + 1
            previous = store.terms_of(row)
            await store.insert_revision(
                conn,
                posting_id,
                revision=revision,
                changed=plan.changed,
                previous=previous,
                new=plan.new.terms,
                cause="facility",
                now=now,
            )
            await store.apply_terms(
                conn,
                posting_id,
                state=plan.new,
                revision=revision,
                now=now,
                clear_update_rejected=True,
            )
            after = await store.get_posting(conn, posting_id)
            assert after is not None
            await outbox.add(
                conn,
                PostingUpdated(
                    **posting_terms(after),
                    revision=revision,
                    previous_capacity=previous.capacity,
                    previous_starts_at=previous.starts_at,
                    previous_ends_at=previous.ends_at,
                ),
                producer=PRODUCER,
                occurred_at=now,
            )
            log.info(
                "posting updated",
                extra={"posting": posting_id, "revision": revision, "changed": plan.changed},
            )
            return posting_view(after, now, settings)

    return await retry_conflicts(work)


@facility.post(
    "/{posting_id}/cancel",
    response_model=schemas.PostingView,
    summary="Cancel a posting: its bookings are cancelled and its budget released",
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422),
)
async def cancel_posting(
    posting_id: PostingId,
    request: Request,
    idempotency_key: IdempotencyKey,
    body: schemas.CancelBody | None = None,
    caller: Caller = Depends(require_facility),
    ctx: Context = Depends(get_ctx),
) -> Response:
    async def work(conn: asyncpg.Connection) -> tuple[int, dict[str, Any]]:
        row = await _own_posting(conn, posting_id, caller, for_update=True)
        now = ctx.now()
        if row["status"] not in domain.CANCELLABLE:
            raise Problem(
                409,
                "posting_not_cancellable",
                f"a posting that is {row['status']} cannot be cancelled",
            )
        if row["starts_at"] <= now:
            raise Problem(
                409, "shift_started", "the shift has started; it can no longer be cancelled"
            )
        await store.cancel_posting(conn, posting_id, reason="facility", now=now)
        await outbox.add(
            conn,
            PostingCancelled(
                posting_id=posting_id,
                facility_id=caller.facility_id,
                reason="facility",
                cancelled_at=now,
            ),
            producer=PRODUCER,
            occurred_at=now,
        )
        after = await store.get_posting(conn, posting_id)
        assert after is not None
        log.info("posting cancelled", extra={"posting": posting_id})
        return 200, posting_json(after, ctx)

    return await run_idempotent(request, ctx, caller, idempotency_key, work)


@facility.get(
    "/{posting_id}/roster",
    response_model=schemas.Roster,
    summary="Confirmed and waitlisted bookings: what the facility needs to run the shift",
    responses=problem_responses(400, 401, 403, 404),
)
async def get_roster(
    posting_id: PostingId,
    caller: Caller = Depends(require_facility),
    ctx: Context = Depends(get_ctx),
) -> schemas.Roster:
    settings = settings_of(ctx)
    async with ctx.pool.acquire() as conn:
        row = await _own_posting(conn, posting_id, caller)
        rows = await store.roster(conn, posting_id, waitlist_max=settings.roster_waitlist_shown_max)
    entries = [
        schemas.RosterEntry(
            booking_id=r["booking_id"],
            status=r["status"],
            waitlist_position=r["waitlist_position"] if r["status"] == "waitlisted" else None,
            citizen_display=r["citizen_display"],
            confirmed_at=r["confirmed_at"],
            promoted_at=r["promoted_at"],
            waitlisted_at=r["waitlisted_at"],
            attendance=(
                schemas.AttendanceView(
                    attendance_id=r["attendance_id"],
                    status=r["attendance_status"],
                    minutes=r["minutes"],
                    checked_in_at=r["checked_in_at"],
                    checked_out_at=r["checked_out_at"],
                    revision=r["attendance_revision"],
                )
                if r["attendance_id"] is not None
                else None
            ),
        )
        for r in rows
    ]
    return schemas.Roster(
        posting_id=posting_id,
        capacity=row["capacity"],
        confirmed_count=row["confirmed_count"],
        waitlisted_count=row["waitlisted_count"],
        entries=entries,
    )


@facility.put(
    "/{posting_id}/attendance",
    response_model=schemas.AttendanceResult,
    summary="Record who came (from the shift's start; corrections after the window)",
    responses=problem_responses(400, 401, 403, 404, 409, 413),
)
async def put_attendance(
    posting_id: PostingId,
    body: schemas.AttendanceBody,
    caller: Caller = Depends(require_facility),
    ctx: Context = Depends(get_ctx),
) -> schemas.AttendanceResult:
    settings = settings_of(ctx)
    policy = attendance_policy_of(settings)
    if len(body.records) > settings.attendance_records_max:
        raise Problem(
            400,
            "invalid_request",
            f"at most {settings.attendance_records_max} records per request",
            errors=[{"field": "records", "message": "too many records", "code": "too_many"}],
        )
    seen: set[str] = set()
    duplicates: list[domain.FieldError] = []
    for i, rec in enumerate(body.records):
        if rec.booking_id in seen:
            duplicates.append(
                domain.FieldError(
                    f"records.{i}.booking_id", "this booking appears twice", "duplicate"
                )
            )
        seen.add(rec.booking_id)
    if duplicates:
        raise invalid(duplicates)
    entries = [
        domain.AttendanceInput(
            booking_id=r.booking_id,
            status=r.status,
            checked_in_at=r.checked_in_at,
            checked_out_at=r.checked_out_at,
        )
        for r in body.records
    ]

    async def work() -> schemas.AttendanceResult:
        async with ctx.pool.acquire() as conn, conn.transaction():
            row = await _own_posting(conn, posting_id, caller, for_update=True)
            return await _record_attendance(conn, ctx, row, entries, policy)

    return await retry_conflicts(work)


async def _record_attendance(
    conn: asyncpg.Connection,
    ctx: Context,
    row: asyncpg.Record,
    entries: list[domain.AttendanceInput],
    policy: domain.AttendancePolicy,
) -> schemas.AttendanceResult:
    now = ctx.now()
    posting_id = row["id"]
    if row["status"] not in ("open", "closed"):
        raise Problem(
            409,
            "posting_not_running",
            f"a posting that is {row['status']} has no attendance",
        )
    shift = domain.Shift(row["starts_at"], row["ends_at"])
    phase = domain.attendance_phase(now, shift, policy)
    if phase == "not_started":
        raise Problem(409, "attendance_not_open", "attendance opens when the shift starts")
    errors = [
        error
        for i, entry in enumerate(entries)
        for error in domain.validate_attendance(entry, shift, policy, i)
    ]
    if errors:
        raise invalid(errors)
    ids = [e.booking_id for e in entries]
    bookings = await store.bookings_by_id(conn, posting_id, ids)
    not_seated = [
        domain.FieldError(
            f"records.{i}.booking_id",
            f"booking {e.booking_id} is not a confirmed booking of this posting",
            "not_in_roster",
        )
        for i, e in enumerate(entries)
        if e.booking_id not in bookings or bookings[e.booking_id]["status"] != "confirmed"
    ]
    if not_seated:
        raise invalid(not_seated, 409, "booking_not_in_roster")
    stored = await store.attendance_by_booking(conn, ids)
    decisions: list[
        tuple[domain.AttendanceInput, domain.RecordedAttendance | None, domain.AttendanceAction]
    ] = []
    too_late: list[domain.FieldError] = []
    for i, entry in enumerate(entries):
        prior = stored.get(entry.booking_id)
        existing = None
        if prior is not None:
            existing = domain.RecordedAttendance(
                attendance_id=prior["attendance_id"],
                entry=domain.AttendanceInput(
                    booking_id=entry.booking_id,
                    status=prior["status"],
                    checked_in_at=prior["checked_in_at"],
                    checked_out_at=prior["checked_out_at"],
                ),
                minutes=prior["minutes"],
                revision=prior["revision"],
            )
        action = domain.decide_attendance(existing, entry, phase)
        if action == "too_late":
            too_late.append(
                domain.FieldError(
                    f"records.{i}.booking_id",
                    f"the attendance window of this shift has passed and booking"
                    f" {entry.booking_id} has no record to correct",
                    "window_closed",
                )
            )
        decisions.append((entry, existing, action))
    if too_late:
        raise invalid(too_late, 409, "attendance_window_closed")
    results: list[schemas.AttendanceOut] = []
    outcome_of: dict[str, Literal["recorded", "unchanged", "replaced", "corrected"]] = {
        "record": "recorded",
        "unchanged": "unchanged",
        "replace": "replaced",
        "correct": "corrected",
    }
    for entry, existing, action in decisions:
        booking = bookings[entry.booking_id]
        attendance_id = domain.attendance_id_for(entry.booking_id)
        minutes = domain.attended_minutes(entry, shift)
        revision = 1 if existing is None else existing.revision
        if action == "unchanged":
            assert existing is not None
            shown = existing.entry
            minutes = existing.minutes
        else:
            shown = entry
            revision = 1 if existing is None else existing.revision + 1
            await store.upsert_attendance(
                conn,
                attendance_id=attendance_id,
                booking_id=entry.booking_id,
                posting_id=row["id"],
                citizen_id=booking["citizen_id"],
                entry=entry,
                minutes=minutes,
                revision=revision,
                now=now,
            )
            fields: dict[str, Any] = {
                "attendance_id": attendance_id,
                "posting_id": row["id"],
                "facility_id": row["facility_id"],
                "booking_id": entry.booking_id,
                "citizen_id": booking["citizen_id"],
                "status": entry.status,
                "minutes": minutes,
                "scheduled_minutes": shift.scheduled_minutes,
                "shift_starts_at": shift.starts_at,
                "checked_in_at": entry.checked_in_at,
                "checked_out_at": entry.checked_out_at,
                "revision": revision,
            }
            if action == "correct":
                assert existing is not None
                event: AttendanceRecorded | AttendanceCorrected = AttendanceCorrected(
                    **fields,
                    previous_status=existing.entry.status,
                    previous_minutes=existing.minutes,
                )
            else:
                event = AttendanceRecorded(**fields)
            await outbox.add(conn, event, producer=PRODUCER, occurred_at=now)
        results.append(
            schemas.AttendanceOut(
                attendance_id=attendance_id,
                booking_id=entry.booking_id,
                status=shown.status,
                minutes=minutes,
                scheduled_minutes=shift.scheduled_minutes,
                checked_in_at=shown.checked_in_at,
                checked_out_at=shown.checked_out_at,
                revision=revision,
                outcome=outcome_of[action],
            )
        )
    log.info(
        "attendance recorded",
        extra={"posting": row["id"], "records": len(entries), "phase": phase},
    )
    return schemas.AttendanceResult(
        posting_id=row["id"],
        phase=phase,
        window_closes_at=domain.attendance_window_closes_at(shift, policy),
        records=results,
    )

"""The registry's HTTP surface: the admin API and the facility API (BRIEF §6).

Routes parse, authorize and render; each calls one use case (a change, `usecases/`) or one
view (a read, `views.py`). Administrators authenticate with the admin token (`staff`); a
facility with its key (`facility_caller`), and every facility read and change is scoped by
the caller's facility, so another facility's posting is simply not found (404).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import Response
from fastapi.security import HTTPBearer

from registry import schemas, views
from registry.domain.attendance import AttendanceInput
from registry.domain.facilities import FacilityDraft
from registry.domain.idempotency import request_fingerprint
from registry.domain.postings import (
    PostingDraft,
    PostingFilter,
    PostingPatch,
    PostingStatus,
    ShiftTerms,
)
from registry.settings import RegistrySettings
from registry.usecases import attendance, checkin, facilities, postings
from registry.usecases.facilities import Caller
from registry.usecases.idempotency import Answer, IdempotentRequest
from shared.auth import bearer, key_id_of
from shared.web import (
    Ctx,
    CursorParam,
    Limit,
    Staff,
    problem_responses,
    refuse_unknown_query,
    staff,
)

RegistryCtx = Ctx[RegistrySettings]

# What the registry's problem answers mean where it differs from the shared wording.
PROBLEM_TEXTS = {
    "e401": "no key, an unknown key, a rotated-out key or a suspended facility's key",
    "e403": "the token is valid but not for this API (admin token on the facility API or the"
    " other way round)",
    "e422": "the Idempotency-Key was used before with another request",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The problem+json answers a route can give, in the registry's words."""
    return problem_responses(*codes, **PROBLEM_TEXTS)


PostingId = Annotated[str, Path(pattern=schemas.ID_PATTERN, description="a posting id")]
BookingId = Annotated[
    str, Query(pattern=schemas.ID_PATTERN, description="a confirmed booking of this posting")
]
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


# --- who is calling -----------------------------------------------------------------------


def facility_key(token: str) -> str | None:
    """On the admin API, a token shaped like a facility key is a valid credential of the
    wrong kind: 403 with this sentence, not 401."""
    return "a facility key cannot use the admin API" if key_id_of(token) is not None else None


Admin = Annotated[Staff, Depends(staff("admin", strict_query=True, foreign=facility_key))]

FacilityBearer = HTTPBearer(
    auto_error=False, scheme_name="facilityKey", description="a facility's API key"
)


async def facility_caller(
    request: Request, ctx: RegistryCtx, _doc: Any = Depends(FacilityBearer)
) -> Caller:
    """A live facility key (`usecases.facilities.authenticate`: 401 for no, a bad, a
    rotated-out or a suspended facility's key; 403 for the admin token); then unknown query
    parameters are refused (400), so an anonymous caller learns nothing from them."""
    caller = await facilities.authenticate(ctx, bearer(request))
    refuse_unknown_query(request)
    return caller


Facility = Annotated[Caller, Depends(facility_caller)]


# --- admin API ----------------------------------------------------------------------------

admin = APIRouter(prefix="/v1/admin/facilities", tags=["admin"])


@admin.post(
    "",
    status_code=201,
    response_model=schemas.FacilityCreated,
    summary="Register a facility; its API key is shown this once",
    responses=responses(400, 401, 403, 413),
)
async def create_facility(
    body: schemas.FacilityCreate, who: Admin, ctx: RegistryCtx
) -> schemas.FacilityCreated:
    registered = await facilities.create(
        ctx,
        FacilityDraft(
            name=body.name,
            kind=body.kind,
            dong=body.dong,
            address=body.address,
            contact_phone=body.contact_phone,
            requires_child_safety_check=body.requires_child_safety_check,
        ),
        who,
    )
    return schemas.FacilityCreated(
        **views.facility_view(registered.facility).model_dump(),
        api_key=registered.key.secret,
        key_id=registered.key.key_id,
    )


@admin.get(
    "",
    response_model=schemas.FacilityPage,
    summary="List facilities (cursor pages, oldest first)",
    responses=responses(400, 401, 403),
)
async def list_facilities(
    _: Admin, ctx: RegistryCtx, limit: Limit = None, cursor: CursorParam = None
) -> schemas.FacilityPage:
    return await views.facility_page(ctx, limit=limit, cursor=cursor)


@admin.get(
    "/{facility_id}",
    response_model=schemas.FacilityView,
    summary="One facility",
    responses=responses(400, 401, 403, 404),
)
async def get_facility(facility_id: FacilityId, _: Admin, ctx: RegistryCtx) -> schemas.FacilityView:
    return await views.facility(ctx, facility_id)


@admin.patch(
    "/{facility_id}",
    response_model=schemas.FacilityView,
    summary="Edit a facility's name, kind, dong, address or contact phone (audited)",
    responses=responses(400, 401, 403, 404, 413),
)
async def edit_facility(
    facility_id: FacilityId, body: schemas.FacilityPatchBody, who: Admin, ctx: RegistryCtx
) -> schemas.FacilityView:
    wanted = body.model_dump(include=body.model_fields_set)
    return views.facility_view(await facilities.edit(ctx, facility_id, wanted, who))


@admin.get(
    "/{facility_id}/changes",
    response_model=schemas.FacilityChangePage,
    summary="What administrators changed on a facility: who, when, what (oldest first)",
    responses=responses(400, 401, 403, 404),
)
async def facility_changes(
    facility_id: FacilityId,
    _: Admin,
    ctx: RegistryCtx,
    limit: Limit = None,
    cursor: CursorParam = None,
) -> schemas.FacilityChangePage:
    return await views.facility_changes(ctx, facility_id, limit=limit, cursor=cursor)


@admin.post(
    "/{facility_id}/keys/rotate",
    response_model=schemas.KeyRotated,
    summary="Issue a new key; the previous ones stop working after the overlap (`overlap_s`,"
    " default the configured one)",
    responses=responses(400, 401, 403, 404, 409, 413),
)
async def rotate_key(
    facility_id: FacilityId,
    who: Admin,
    ctx: RegistryCtx,
    body: schemas.RotateBody | None = None,
) -> schemas.KeyRotated:
    overlap_s = body.overlap_s if body is not None else None
    rotated = await facilities.rotate_key(ctx, facility_id, who, overlap_s)
    return schemas.KeyRotated(
        facility_id=rotated.facility_id,
        key_id=rotated.key.key_id,
        api_key=rotated.key.secret,
        previous_keys_valid_until=rotated.previous_keys_valid_until,
        overlap_s=rotated.overlap_s,
    )


@admin.post(
    "/{facility_id}/suspend",
    response_model=schemas.FacilitySuspended,
    summary="Suspend a facility: its keys stop working and its open postings are cancelled",
    responses=responses(400, 401, 403, 404),
)
async def suspend_facility(
    facility_id: FacilityId, who: Admin, ctx: RegistryCtx
) -> schemas.FacilitySuspended:
    suspended = await facilities.suspend(ctx, facility_id, who)
    return schemas.FacilitySuspended(
        facility=views.facility_view(suspended.facility),
        cancelled_posting_ids=suspended.cancelled_posting_ids,
    )


@admin.post(
    "/{facility_id}/resume",
    response_model=schemas.FacilityResumed,
    summary="Lift a suspension: the facility is active with a new key (shown once); its old"
    " keys stay expired and the postings the suspension cancelled stay cancelled",
    responses=responses(400, 401, 403, 404, 409),
)
async def resume_facility(
    facility_id: FacilityId, who: Admin, ctx: RegistryCtx
) -> schemas.FacilityResumed:
    resumed = await facilities.resume(ctx, facility_id, who)
    return schemas.FacilityResumed(
        facility=views.facility_view(resumed.facility),
        key_id=resumed.key.key_id,
        api_key=resumed.key.secret,
    )


# --- facility API -------------------------------------------------------------------------

facility = APIRouter(prefix="/v1/postings", tags=["facility"])


async def _idempotent(request: Request, caller: Caller, key: str) -> IdempotentRequest:
    fingerprint = request_fingerprint(request.method, request.url.path, await request.body())
    return IdempotentRequest(caller.facility_id, key, fingerprint)


def _render(ctx: RegistryCtx) -> postings.Render:
    return lambda row: views.posting_bytes(row, ctx.now(), ctx.settings)


def _answer(answer: Answer) -> Response:
    """An answer kept under an Idempotency-Key, byte for byte (a replay says so)."""
    return Response(
        content=answer.body,
        status_code=answer.status,
        media_type="application/json",
        headers={"Idempotent-Replayed": "true"} if answer.replayed else None,
    )


@facility.post(
    "",
    status_code=201,
    response_model=schemas.PostingView,
    summary="Post a shift; it opens once the budget is reserved",
    responses=responses(400, 401, 403, 409, 413, 422),
)
async def create_posting(
    body: schemas.PostingCreate,
    request: Request,
    idempotency_key: IdempotencyKey,
    caller: Facility,
    ctx: RegistryCtx,
) -> Response:
    draft = PostingDraft(
        title=body.title,
        description=body.description,
        terms=ShiftTerms(
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            capacity=body.capacity,
            selection=body.selection,
            applications_close_at=body.applications_close_at,
        ),
        requires_child_safety_check=body.requires_child_safety_check,
        tags=tuple(body.tags),
        reconfirmation_required=body.reconfirmation_required,
    )
    request_key = await _idempotent(request, caller, idempotency_key)
    return _answer(await postings.create(ctx, caller, draft, request_key, _render(ctx)))


@facility.get(
    "/estimate",
    response_model=schemas.PostingEstimate,
    summary="What a shift would cost (seats × the full shift's payout at the rate in force)",
    responses=responses(400, 401, 403),
)
async def estimate_posting(
    caller: Facility,
    ctx: RegistryCtx,
    starts_at: Annotated[schemas.Timestamp, Query(description="the shift's start")],
    ends_at: Annotated[schemas.Timestamp, Query(description="the shift's end")],
    capacity: Annotated[int, Query(ge=1, le=10_000, description="seats (the settings bound it)")],
) -> schemas.PostingEstimate:
    terms = ShiftTerms(
        starts_at=starts_at, ends_at=ends_at, capacity=capacity, selection="first_come"
    )
    return views.estimate_view(await postings.estimate(ctx, terms))


PostingStatusFilter = Annotated[
    list[PostingStatus] | None, Query(max_length=5, description="any of these statuses")
]


@facility.get(
    "",
    response_model=schemas.PostingPage,
    summary="This facility's postings (cursor pages, oldest first)",
    responses=responses(400, 401, 403),
)
async def list_postings(
    caller: Facility,
    ctx: RegistryCtx,
    status: PostingStatusFilter = None,
    starts_from: Annotated[
        schemas.Timestamp | None, Query(description="shifts starting at or after")
    ] = None,
    starts_before: Annotated[
        schemas.Timestamp | None, Query(description="shifts starting before")
    ] = None,
    limit: Limit = None,
    cursor: CursorParam = None,
) -> schemas.PostingPage:
    narrow = PostingFilter(
        statuses=tuple(status or ()), starts_from=starts_from, starts_before=starts_before
    )
    return await views.posting_page(ctx, caller.facility_id, narrow, limit=limit, cursor=cursor)


@facility.get(
    "/{posting_id}",
    response_model=schemas.PostingView,
    summary="One of this facility's postings",
    responses=responses(400, 401, 403, 404),
)
async def get_posting(
    posting_id: PostingId, caller: Facility, ctx: RegistryCtx
) -> schemas.PostingView:
    return await views.posting(ctx, caller.facility_id, posting_id)


@facility.patch(
    "/{posting_id}",
    response_model=schemas.PostingView,
    summary="Change title, description, tags, capacity or (while nobody is booked) times",
    responses=responses(400, 401, 403, 404, 409, 413),
)
async def patch_posting(
    posting_id: PostingId,
    body: schemas.PostingPatchBody,
    caller: Facility,
    ctx: RegistryCtx,
) -> schemas.PostingView:
    change = PostingPatch(
        title=body.title,
        description=body.description,
        tags=tuple(body.tags) if body.tags is not None else None,
        capacity=body.capacity,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        applications_close_at=body.applications_close_at,
        reconfirmation_required=body.reconfirmation_required,
    )
    row = await postings.patch(ctx, caller, posting_id, change)
    return views.posting_view(row, ctx.now(), ctx.settings)


@facility.post(
    "/{posting_id}/cancel",
    response_model=schemas.PostingView,
    summary="Cancel a posting: its bookings are cancelled and its budget released",
    responses=responses(400, 401, 403, 404, 409, 413, 422),
)
async def cancel_posting(
    posting_id: PostingId,
    request: Request,
    idempotency_key: IdempotencyKey,
    caller: Facility,
    ctx: RegistryCtx,
    body: schemas.CancelBody | None = None,
) -> Response:
    request_key = await _idempotent(request, caller, idempotency_key)
    note = body.note if body is not None else None
    return _answer(
        await postings.cancel(ctx, caller, posting_id, request_key, _render(ctx), note=note)
    )


@facility.get(
    "/{posting_id}/roster",
    response_model=schemas.Roster,
    summary="Confirmed and waitlisted bookings: what the facility needs to run the shift"
    " (a cancelled posting's also lists the bookings its cancellation ended)",
    responses=responses(400, 401, 403, 404),
)
async def get_roster(posting_id: PostingId, caller: Facility, ctx: RegistryCtx) -> schemas.Roster:
    return await views.roster(ctx, caller.facility_id, posting_id)


@facility.put(
    "/{posting_id}/attendance",
    response_model=schemas.AttendanceResult,
    summary="Record who came (from the shift's start; corrections after the window)",
    responses=responses(400, 401, 403, 404, 409, 413),
)
async def put_attendance(
    posting_id: PostingId,
    body: schemas.AttendanceBody,
    caller: Facility,
    ctx: RegistryCtx,
) -> schemas.AttendanceResult:
    entries = [
        AttendanceInput(
            booking_id=r.booking_id,
            status=r.status,
            checked_in_at=r.checked_in_at,
            checked_out_at=r.checked_out_at,
        )
        for r in body.records
    ]
    outcome = await attendance.record(ctx, caller, posting_id, entries)
    return views.attendance_result(outcome)


async def _door(
    action: checkin.DoorAction,
    posting_id: str,
    body: schemas.CheckInBody,
    request: Request,
    idempotency_key: str,
    caller: Caller,
    ctx: RegistryCtx,
) -> Response:
    request_key = await _idempotent(request, caller, idempotency_key)
    return _answer(
        await checkin.at_the_door(
            ctx, caller, posting_id, body.code, action, request_key, views.door_bytes
        )
    )


@facility.post(
    "/{posting_id}/check-in",
    response_model=schemas.DoorResult,
    summary="Check a citizen in by the code they show (the time is now)",
    description="Finds the confirmed booking of this posting with the code and stores the"
    " check-in time. Opens `ATTENDANCE_SLACK_MINUTES` before the shift starts and closes as"
    " long after it ends. Unknown code: 404 `check_in_code_unknown`; a second check-in: 409"
    " `already_checked_in`; too early: 409 `check_in_not_open`. A retry with the same"
    " Idempotency-Key replays the first answer.",
    responses=responses(400, 401, 403, 404, 409, 413, 422),
)
async def check_in(
    posting_id: PostingId,
    body: schemas.CheckInBody,
    request: Request,
    idempotency_key: IdempotencyKey,
    caller: Facility,
    ctx: RegistryCtx,
) -> Response:
    return await _door("check_in", posting_id, body, request, idempotency_key, caller, ctx)


@facility.post(
    "/{posting_id}/check-out",
    response_model=schemas.DoorResult,
    summary="Check a citizen out by code; records their attendance from the two times",
    description="Stores the check-out time and records the attendance (attended, from the"
    " check-in to now) by the same rules as `PUT /attendance`, which emits"
    " AttendanceRecorded with the paid minutes; staff correct the times there. From the"
    " shift's start (409 `attendance_not_open` before); 409 `not_checked_in` without a"
    " check-in, `already_checked_out` the second time.",
    responses=responses(400, 401, 403, 404, 409, 413, 422),
)
async def check_out(
    posting_id: PostingId,
    body: schemas.CheckInBody,
    request: Request,
    idempotency_key: IdempotencyKey,
    caller: Facility,
    ctx: RegistryCtx,
) -> Response:
    return await _door("check_out", posting_id, body, request, idempotency_key, caller, ctx)


@facility.get(
    "/{posting_id}/check-in-qr",
    summary="A confirmed booking's check-in code as a QR code (SVG)",
    response_class=Response,
    responses={
        200: {"content": {"image/svg+xml": {}}, "description": "the QR code"},
        **responses(400, 401, 403, 404),
    },
)
async def check_in_qr(
    posting_id: PostingId, booking_id: BookingId, caller: Facility, ctx: RegistryCtx
) -> Response:
    """The QR code of one confirmed booking's code (`booking_id` as a query parameter)."""
    svg = await views.check_in_qr_svg(ctx, caller.facility_id, posting_id, booking_id)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})

"""HTTP surface of the matcher: the partner's webhooks (in) and the admin API.

The webhook path is the hot one (BRIEF §11: at least 60% of a bare endpoint's requests per
second): verify the signature, validate the body, produce the event straight to
`matcher.applications.v1` and answer 202 — no database write (docs/decisions/0004).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

import pydantic
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from matcher import decisions, notify, store
from matcher.settings import Context, MatcherSettings, WebhookSecrets
from shared import topics
from shared.auth import require_token
from shared.events import ApplicationReceived, ApplicationWithdrawn, CitizenProfile, Event
from shared.http import FastRoute
from shared.problems import Problem, openapi_problem, validation_errors
from shared.web import get_ctx
from shared.webhooks import SignatureError, verify

# The event id of a webhook's event is derived from its `webhook-id`: a replayed delivery
# becomes the same event, which the idempotent consumer applies once.
WEBHOOK_NAMESPACE = uuid.UUID("3b0b6f0e-7d43-4c1b-a7f5-1a6f2d1b9e55")

_Id = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SubmittedData(_Body):
    application_id: _Id
    posting_id: _Id
    citizen: CitizenProfile


class WithdrawnData(_Body):
    application_id: _Id
    posting_id: _Id
    partner_user_id: str = Field(min_length=1, max_length=100)


class ApplicationSubmittedWebhook(_Body):
    type: Literal["application.submitted"]
    timestamp: AwareDatetime
    data: SubmittedData


class ApplicationWithdrawnWebhook(_Body):
    type: Literal["application.withdrawn"]
    timestamp: AwareDatetime
    data: WithdrawnData


PartnerWebhook = Annotated[
    ApplicationSubmittedWebhook | ApplicationWithdrawnWebhook, Field(discriminator="type")
]
WEBHOOK_BODY = TypeAdapter(PartnerWebhook)


def _inline_schema() -> dict[str, Any]:
    """The webhook body's JSON schema with its `$defs` inlined, so it can sit inside the
    OpenAPI document (where `#/$defs/…` would not resolve)."""
    schema = WEBHOOK_BODY.json_schema()
    defs = schema.pop("$defs", {})
    schema.pop("discriminator", None)  # its mapping points into $defs; `type` is a const

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    webhook_id: str


def _settings(ctx: Context) -> MatcherSettings:
    assert isinstance(ctx.settings, MatcherSettings)
    return ctx.settings


def webhook_problem(exc: pydantic.ValidationError) -> Problem:
    errors = validation_errors(exc.errors())
    for err, raw in zip(errors, exc.errors(), strict=True):
        loc = [str(p) for p in raw.get("loc", ())]
        if loc and loc[0] in ("application.submitted", "application.withdrawn"):
            loc = loc[1:]  # the union's tag, not a field of the body
        err["field"] = ".".join(loc) or ("type" if "tag" in str(raw.get("type")) else "body")
    fields = ", ".join(sorted({e["field"] for e in errors}))
    return Problem(400, "invalid_payload", f"invalid webhook payload: {fields}", errors=errors)


partner = APIRouter(tags=["partner"])


@partner.post(
    "/v1/partner/webhooks",
    status_code=202,
    response_model=Accepted,
    summary="Partner webhooks: application.submitted / application.withdrawn (Standard Webhooks)",
    responses={
        400: {"description": "bad payload; `errors` says which field"},
        401: {"description": "bad or stale signature"},
        413: {"description": "body over the limit"},
        503: {"description": "could not queue the event; retry"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inline_schema()}},
        }
    },
)
async def partner_webhook(request: Request) -> Response:
    """Verify, validate, queue, answer 202 — the decision comes later as a notification.

    A repeated `webhook-id` is accepted again and changes nothing: its event has the same
    id, and the decision loop applies an event id once. Served by the middleware's fast
    route (`FAST_ROUTES`); this route documents it and runs the same `accept_webhook`.
    """
    status, body = await accept_webhook(get_ctx(request), await request.body(), request.headers)
    return JSONResponse(body, status_code=status)


async def accept_webhook(
    ctx: Context, body: bytes, headers: Mapping[str, str]
) -> tuple[int, dict[str, str]]:
    """The webhook's whole work: (202, body) or a `Problem` raised."""
    settings = _settings(ctx)
    if len(body) > settings.webhook_body_size_max_bytes:
        raise Problem(
            413,
            "body_too_large",
            f"webhook bodies are limited to {settings.webhook_body_size_max_bytes} bytes",
        )
    secrets = ctx.resource(WebhookSecrets).secrets
    try:
        webhook_id = verify(body, headers, secrets)
    except SignatureError as exc:
        raise Problem(401, "invalid_signature", str(exc)) from None
    try:
        webhook = WEBHOOK_BODY.validate_json(body)
    except pydantic.ValidationError as exc:
        raise webhook_problem(exc) from None
    received_at = ctx.now()
    event: Event
    if isinstance(webhook, ApplicationSubmittedWebhook):
        event = ApplicationReceived(
            application_id=webhook.data.application_id,
            posting_id=webhook.data.posting_id,
            citizen=webhook.data.citizen,
            received_at=received_at,
            webhook_id=webhook_id,
        )
    else:
        event = ApplicationWithdrawn(
            application_id=webhook.data.application_id,
            posting_id=webhook.data.posting_id,
            partner_user_id=webhook.data.partner_user_id,
            received_at=received_at,
            webhook_id=webhook_id,
        )
    envelope = event.envelope(
        producer=store.PRODUCER,
        occurred_at=received_at,
        event_id=uuid.uuid5(WEBHOOK_NAMESPACE, webhook_id),
    )
    try:
        await ctx.producer.send_and_wait(
            topics.MATCHER_APPLICATIONS, envelope.to_bytes(), key=envelope.key.encode()
        )
    except Exception as exc:
        raise Problem(
            503, "queue_unavailable", f"could not queue the webhook, retry: {type(exc).__name__}"
        ) from None
    return 202, {"status": "accepted", "webhook_id": webhook_id}


FAST_ROUTES = (FastRoute("POST", "/v1/partner/webhooks", accept_webhook),)


# --- admin ------------------------------------------------------------------------------

admin = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    responses={404: openapi_problem("no such notification, draw, application, posting or citizen")},
)


def _admin(request: Request, ctx: Context) -> None:
    require_token(request, ctx.settings.admin_token.get_secret_value(), "admin")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class NotificationView(BaseModel):
    notification_id: str
    type: str
    status: str
    posting_id: str | None
    application_id: str | None
    booking_id: str | None
    attempts: int
    created_at: datetime
    first_attempt_at: datetime | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    failed_at: datetime | None


class NotificationPage(BaseModel):
    items: list[NotificationView]
    next_cursor: int | None


@admin.get(
    "/notifications",
    response_model=NotificationPage,
    summary="Partner notifications by status (e.g. the parked `failed` ones)",
)
async def list_notifications(
    request: Request,
    ctx: Context = Depends(get_ctx),
    status: Literal["pending", "delivered", "failed"] = "failed",
    posting_id: str | None = None,
    application_id: str | None = None,
    cursor: int = Query(0, ge=0, le=2**63 - 1, description="`next_cursor` of the previous page"),
    limit: int = Query(100, ge=1, le=1000),
) -> NotificationPage:
    _admin(request, ctx)
    limit = min(limit, ctx.settings.page_size_max)
    rows = await ctx.pool.fetch(
        "SELECT * FROM partner_notifications WHERE status = $1 AND seq > $2"
        " AND ($4::text IS NULL OR posting_id = $4)"
        " AND ($5::text IS NULL OR application_id = $5)"
        " ORDER BY seq LIMIT $3",
        status,
        cursor,
        limit,
        posting_id,
        application_id,
    )
    items = [NotificationView.model_validate(dict(r)) for r in rows]
    next_cursor = rows[-1]["seq"] if len(rows) == limit else None
    return NotificationPage(items=items, next_cursor=next_cursor)


@admin.post(
    "/notifications/{notification_id}/resend",
    summary="Re-send a parked notification (same webhook-id, fresh retry budget)",
    responses={404: {"description": "no such notification"}, 409: {"description": "delivered"}},
)
async def resend_notification(
    notification_id: str, request: Request, ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    _admin(request, ctx)
    row = await notify.resend(ctx.pool, notification_id)
    if row is None:
        exists = await ctx.pool.fetchval(
            "SELECT status FROM partner_notifications WHERE notification_id = $1", notification_id
        )
        if exists is None:
            raise Problem(404, "not_found", f"no notification {notification_id}")
        raise Problem(409, "already_delivered", f"notification {notification_id} was delivered")
    return {"notification_id": notification_id, "status": row["status"]}


@admin.get("/draws/{posting_id}", summary="The stored draw of a posting: seed, inputs, outcome")
async def get_draw(
    posting_id: str, request: Request, ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    _admin(request, ctx)
    async with ctx.pool.acquire() as conn:
        row = await store.draw(conn, posting_id)
    if row is None:
        raise Problem(404, "not_found", f"no draw for posting {posting_id}")
    record = dict(row)
    record["drawn_at"] = _iso(record["drawn_at"])
    return record


@admin.post(
    "/draws/{posting_id}/verify",
    summary="Re-run a stored draw from its seed and inputs and say whether it matches",
)
async def verify_draw(
    posting_id: str, request: Request, ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    _admin(request, ctx)
    async with ctx.pool.acquire() as conn:
        row = await store.draw(conn, posting_id)
    if row is None:
        raise Problem(404, "not_found", f"no draw for posting {posting_id}")
    return decisions.verify_draw(row)


def _application_view(row: Any, waitlist_position: int | None) -> dict[str, Any]:
    return {
        "application_id": row["application_id"],
        "posting_id": row["posting_id"],
        "citizen_id": row["citizen_id"],
        "citizen_display": row["citizen_display"],
        "status": row["status"],
        "reason": row["reason"],
        "booking_id": row["booking_id"],
        "waitlist_position": waitlist_position,
        "received_at": _iso(row["received_at"]),
        "decided_at": _iso(row["decided_at"]),
        "cancelled_by": row["cancelled_by"],
        "strike": row["strike"],
    }


@admin.get(
    "/applications/{application_id}",
    summary="One application and its decision (held ones included)",
)
async def get_application(
    application_id: str, request: Request, ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    _admin(request, ctx)
    async with ctx.pool.acquire() as conn:
        row = await store.application(conn, application_id)
        if row is not None:
            position = None
            if row["status"] == "waitlisted":
                positions = await store.waitlist_positions(
                    conn, row["posting_id"], [application_id]
                )
                position = positions.get(application_id)
            return _application_view(row, position)
        held = await store.held_application(conn, application_id)
    if held is None:
        raise Problem(404, "not_found", f"no application {application_id}")
    return {
        "application_id": held["application_id"],
        "posting_id": held["posting_id"],
        "citizen_id": held["citizen_id"],
        "citizen_display": held["citizen_display"],
        "status": "held" if held["status"] == "held" else held["status"],
        "reason": held["reason"],
        "booking_id": None,
        "waitlist_position": None,
        "received_at": _iso(held["received_at"]),
        "decided_at": _iso(held["resolved_at"]),
        "cancelled_by": None,
        "strike": False,
    }


@admin.get("/postings/{posting_id}", summary="A posting as the matcher sees it, with counts")
async def get_posting(
    posting_id: str, request: Request, ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    _admin(request, ctx)
    row = await ctx.pool.fetchrow("SELECT * FROM postings WHERE posting_id = $1", posting_id)
    if row is None:
        raise Problem(404, "not_found", f"no posting {posting_id}")
    counts = await ctx.pool.fetch(
        "SELECT status, count(*) AS n FROM applications WHERE posting_id = $1 GROUP BY status",
        posting_id,
    )
    held = await ctx.pool.fetchval(
        "SELECT count(*) FROM held_applications WHERE posting_id = $1 AND status = 'held'",
        posting_id,
    )
    view = {k: (_iso(v) if isinstance(v, datetime) else v) for k, v in dict(row).items()}
    view["applications"] = {r["status"]: int(r["n"]) for r in counts}
    view["held"] = int(held)
    return view


@admin.get(
    "/postings/{posting_id}/applications",
    summary="Applications of a posting (cursor pages by application id)",
)
async def list_posting_applications(
    posting_id: str,
    request: Request,
    ctx: Context = Depends(get_ctx),
    cursor: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    _admin(request, ctx)
    limit = min(limit, ctx.settings.page_size_max)
    statuses = ["pending", "confirmed", "waitlisted", "rejected", "withdrawn", "cancelled"]
    async with ctx.pool.acquire() as conn:
        rows = await store.applications_of_posting(
            conn, posting_id, statuses, limit=limit, after_application_id=cursor
        )
    items = [_application_view(r, None) for r in rows]
    return {
        "items": items,
        "next_cursor": rows[-1]["application_id"] if len(rows) == limit else None,
    }


@admin.get(
    "/citizens/{citizen_id}",
    summary="A citizen's standing: strikes and suspensions (no profile data)",
)
async def get_citizen(
    citizen_id: str, request: Request, ctx: Context = Depends(get_ctx)
) -> dict[str, Any]:
    _admin(request, ctx)
    async with ctx.pool.acquire() as conn:
        row = await store.citizen(conn, citizen_id)
        if row is None:
            raise Problem(404, "not_found", f"no citizen {citizen_id}")
        strikes = await store.strikes_of(conn, citizen_id)
        suspensions = await store.suspensions_of(conn, citizen_id)
    now = ctx.now()
    until = row["suspended_until"]
    return {
        "citizen_id": row["citizen_id"],
        "display": row["display"],
        "suspended": until is not None and now < until,
        "suspended_until": _iso(until),
        "strikes": [
            {
                "booking_id": s["booking_id"],
                "kind": s["kind"],
                "occurred_at": _iso(s["occurred_at"]),
                "voided_at": _iso(s["voided_at"]),
            }
            for s in strikes
        ],
        "suspensions": [
            {
                "starts_at": _iso(s["starts_at"]),
                "ends_at": _iso(s["ends_at"]),
                "lifted_at": _iso(s["lifted_at"]),
            }
            for s in suspensions
        ],
    }

"""HTTP surface of the matcher: the partner's webhooks (in), the partner's pull API (its
token) and the admin API.

The webhook path is the hot one (BRIEF §11: at least 60% of a bare endpoint's requests per
second): verify the signature, validate the body, produce the event straight to
`matcher.applications.v1` and answer 202 — no database write (docs/decisions/0004). It stays
here, beside its fast route, rather than in a use case: it touches no table, and every call
saved on it is measured.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from matcher import contract, views
from matcher.schemas import (
    MONTH_PATTERN,
    Accepted,
    ApplicationPage,
    ApplicationSubmittedWebhook,
    ApplicationView,
    BookingReconfirmedWebhook,
    CitizenAllowanceView,
    CitizenView,
    DrawCheck,
    DrawView,
    NotificationPage,
    PartnerApplication,
    PartnerBookingPage,
    PartnerPosting,
    PartnerPostingPage,
    PayeeSubmittedWebhook,
    PostingView,
    PublishedDraw,
    ResendView,
    RotatedTokenView,
    TokenRotation,
    inline_schema,
    parse_webhook,
)
from matcher.settings import PRODUCER, Context, MatcherSettings, WebhookSecrets
from matcher.usecases import notifications, partner_tokens, payees
from shared import topics
from shared.deadlines import within
from shared.events import (
    ApplicationReceived,
    ApplicationWithdrawn,
    Event,
    ReconfirmationReceived,
)
from shared.http import FastRoute
from shared.payee_seal import BankDetails
from shared.problems import RETRY_AFTER_S, Problem
from shared.schemas import Instant
from shared.seoul import month_of
from shared.web import (
    Ctx,
    CursorParam,
    Limit,
    Staff,
    get_ctx,
    page_limit,
    problem_responses,
    staff,
)
from shared.webhooks import SignatureError, verify

# The event id of a webhook's event is derived from its `webhook-id`: a replayed delivery
# becomes the same event, which the idempotent consumer applies once.
WEBHOOK_NAMESPACE = uuid.UUID("3b0b6f0e-7d43-4c1b-a7f5-1a6f2d1b9e55")

# The admin credential, declared once and named by every admin route.
Admin = Annotated[Staff, Depends(staff("admin"))]
# The partner's API token (stored hashed, rotatable: usecases/partner_tokens.py), named by
# every pull route; a query parameter the route does not declare is refused (400).
Partner = Annotated[
    Staff,
    Depends(
        staff(
            partner_tokens.PARTNER_ROLE,
            strict_query=True,
            description="the partner's API token (`pk_…`), PARTNER_API_TOKEN",
        )
    ),
]
MatcherCtx = Ctx[MatcherSettings]
T = TypeVar("T")

partner = APIRouter(tags=["partner"])


@partner.post(
    "/v1/partner/webhooks",
    status_code=202,
    response_model=Accepted,
    summary=(
        "Partner webhooks: application.submitted / application.withdrawn / "
        "booking.reconfirmed / citizen.payee_submitted (Standard Webhooks)"
    ),
    responses=problem_responses(
        400,
        401,
        413,
        503,
        e400="bad payload; `errors` says which field",
        e401="bad or stale signature",
        e413="body over the limit",
        e503="could not queue the event; retry",
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline_schema()}},
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
    size_max_bytes = ctx.settings.webhook_body_size_max_bytes
    if len(body) > size_max_bytes:
        raise Problem(
            413, "body_too_large", f"webhook bodies are limited to {size_max_bytes} bytes"
        )
    secrets = ctx.resource(WebhookSecrets).secrets
    try:
        webhook_id = verify(body, headers, secrets)
    except SignatureError as exc:
        raise Problem(401, "invalid_signature", str(exc)) from None
    webhook = parse_webhook(body)
    received_at = ctx.now()
    if isinstance(webhook, PayeeSubmittedWebhook):
        # Sealed at once and queued through the outbox with the citizen it creates
        # (docs/decisions/0014): rare, and it needs the matcher's citizen id.
        event_id = uuid.uuid5(WEBHOOK_NAMESPACE, webhook_id)
        data = webhook.data
        await payees.submit_payee(
            ctx,
            data.partner_user_id,
            BankDetails(data.bank_code, data.account_number, data.account_holder),
            data.consent_at,
            webhook_id,
            event_id,
            received_at,
        )
        return 202, {"status": "accepted", "webhook_id": webhook_id}
    event: Event
    if isinstance(webhook, ApplicationSubmittedWebhook):
        event = ApplicationReceived(
            application_id=webhook.data.application_id,
            posting_id=webhook.data.posting_id,
            citizen=webhook.data.citizen.to_profile(ctx.settings.age_min_years),
            received_at=received_at,
            webhook_id=webhook_id,
        )
    elif isinstance(webhook, BookingReconfirmedWebhook):
        event = ReconfirmationReceived(
            booking_id=webhook.data.booking_id,
            partner_user_id=webhook.data.partner_user_id,
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
    encoded = event.encode(
        producer=PRODUCER,
        occurred_at=received_at,
        event_id=uuid.uuid5(WEBHOOK_NAMESPACE, webhook_id),
    )
    # Fail fast (docs/decisions/0004): with the broker away the producer would hold the
    # partner's request for its whole delivery timeout; after the bounded wait it is told
    # to retry, and the same webhook-id keeps the retry idempotent.
    wait_s = ctx.settings.webhook_enqueue_timeout_s
    try:
        # `within`, not `asyncio.timeout` (a timer armed per webhook) nor `wait_for` (a
        # task per webhook): every webhook's wait is watched by one timer (issue 20).
        await within(
            ctx.producer.send_and_wait(
                topics.MATCHER_APPLICATIONS, encoded.payload, key=encoded.key.encode()
            ),
            wait_s,
        )
    except TimeoutError:
        raise Problem(
            503,
            "queue_unavailable",
            f"could not queue the webhook within {wait_s:g} s, retry",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        ) from None
    except Exception as exc:
        raise Problem(
            503,
            "queue_unavailable",
            f"could not queue the webhook, retry: {type(exc).__name__}",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        ) from None
    return 202, {"status": "accepted", "webhook_id": webhook_id}


FAST_ROUTES = (FastRoute("POST", "/v1/partner/webhooks", accept_webhook),)


# --- the partner's pull API --------------------------------------------------------------

pull = APIRouter(
    prefix="/v1/partner",
    tags=["partner pull"],
    responses=problem_responses(
        400,
        401,
        403,
        e400="a bad parameter, or a cursor that is not one of this list's",
        e401="no partner token, an unknown one, or one rotated out",
        e403="a staff token: valid, but not the partner's",
    ),
)


@pull.get(
    "/postings",
    response_model=PartnerPostingPage,
    summary="Postings by last change: to list open ones, and to reconcile by `version`",
)
async def partner_postings(
    _: Partner,
    ctx: MatcherCtx,
    status: Annotated[
        Literal["open", "closed", "cancelled"] | None,
        Query(description="only postings of this status (all when absent)"),
    ] = None,
    updated_since: Annotated[
        Instant | None,
        Query(
            description="only postings whose `updated_at` is later than this instant (pass"
            " the newest `updated_at` you have; skip items whose `version` you have)",
            examples=["2026-05-21T02:14:05.120000+00:00"],
        ),
    ] = None,
    cursor: CursorParam = None,
    limit: Limit = None,
) -> PartnerPostingPage:
    async with ctx.pool.acquire() as conn:
        return await views.partner_postings(
            conn,
            status=status,
            updated_since=updated_since,
            cursor=cursor,
            limit=page_limit(limit, ctx.settings, default=ctx.settings.partner_page_size_default),
        )


@pull.get(
    "/postings/{posting_id}",
    response_model=PartnerPosting,
    summary="One posting: terms, pay, seats left, waitlist, version",
    responses=problem_responses(404, e404="no such posting"),
)
async def partner_posting(posting_id: str, _: Partner, ctx: MatcherCtx) -> PartnerPosting:
    async with ctx.pool.acquire() as conn:
        found = await views.partner_posting_one(conn, posting_id)
    if found is None:
        raise Problem(404, "not_found", f"no posting {posting_id}", ko="공고를 찾을 수 없습니다.")
    return found


@pull.get(
    "/postings/{posting_id}/draw",
    response_model=PublishedDraw,
    summary="A draw as the public may see it: the commitment, then the frozen entry list and"
    " its hash, then the whole record with the seed (docs/fairness.md)",
    responses=problem_responses(404, e404="no draw for this posting"),
)
async def partner_posting_draw(posting_id: str, _: Partner, ctx: MatcherCtx) -> PublishedDraw:
    """The record docs/verify_draw.py and `gwangsan draw verify` check; the seed appears
    only once the draw has run."""
    async with ctx.pool.acquire() as conn:
        found = await views.draw_publication(conn, posting_id)
    if found is None:
        raise Problem(
            404, "not_found", f"no draw for posting {posting_id}", ko="이 공고의 추첨이 없습니다."
        )
    return found


@pull.get(
    "/applications/{application_id}",
    response_model=PartnerApplication,
    summary="One application: status, reason code, waitlist position, booking id",
    responses=problem_responses(404, e404="no such application"),
)
async def partner_application(
    application_id: str, _: Partner, ctx: MatcherCtx
) -> PartnerApplication:
    async with ctx.pool.acquire() as conn:
        found = await views.partner_application(conn, application_id)
    if found is None:
        raise Problem(
            404, "not_found", f"no application {application_id}", ko="신청을 찾을 수 없습니다."
        )
    return found


@pull.get(
    "/citizens/{partner_user_id}/bookings",
    response_model=PartnerBookingPage,
    summary='A citizen\'s bookings ("my shifts"), soonest shift first',
    responses=problem_responses(404, e404="the matcher has never seen this citizen"),
)
async def partner_citizen_bookings(
    partner_user_id: str,
    _: Partner,
    ctx: MatcherCtx,
    ends_from: Annotated[
        Instant | None,
        Query(
            alias="from",
            description="only bookings whose shift ends at or after this instant (all when absent)",
            examples=["2026-06-01T00:00:00+09:00"],
        ),
    ] = None,
    cursor: CursorParam = None,
    limit: Limit = None,
) -> PartnerBookingPage:
    async with ctx.pool.acquire() as conn:
        found = await views.citizen_bookings(
            conn,
            partner_user_id,
            ends_from=ends_from,
            cursor=cursor,
            limit=page_limit(limit, ctx.settings, default=ctx.settings.partner_page_size_default),
        )
    if found is None:
        raise Problem(
            404,
            "not_found",
            f"no citizen {partner_user_id}",
            ko="이 사용자의 신청 기록이 없습니다.",
        )
    return found


# The month of a citizen's allowance (`YYYY-MM`, Asia/Seoul); the current one by default.
Month = Annotated[str | None, Query(pattern=MONTH_PATTERN, description="YYYY-MM (Seoul)")]


@pull.get(
    "/citizens/{partner_user_id}/allowance",
    response_model=CitizenAllowanceView,
    summary="A citizen's allowance: hours this week against the weekly cap, the month's"
    " allowance against the monthly cap, and its payment status",
    responses=problem_responses(404, e404="the matcher has never seen this citizen"),
)
async def partner_citizen_allowance(
    partner_user_id: str, _: Partner, ctx: MatcherCtx, month: Month = None
) -> CitizenAllowanceView:
    """The figures are the allowance's (its events, kept by the matcher as a read model):
    no service reads another's tables."""
    return await _citizen_allowance(ctx, partner_user_id, month)


async def _citizen_allowance(
    ctx: MatcherCtx, partner_user_id: str, month: str | None
) -> CitizenAllowanceView:
    now = ctx.now()
    async with ctx.pool.acquire() as conn:
        found = await views.citizen_allowance(conn, partner_user_id, month or month_of(now), now)
    if found is None:
        raise Problem(
            404, "not_found", f"no citizen {partner_user_id}", ko="이 사용자의 기록이 없습니다."
        )
    return found


# --- admin ------------------------------------------------------------------------------

admin = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    responses=problem_responses(
        401, 404, e404="no such notification, draw, application, posting or citizen"
    ),
)


def _found(found: T | None, detail: str) -> T:
    """The view, or the admin API's 404 saying what was not found."""
    if found is None:
        raise _not_found(detail)
    return found


def _not_found(detail: str) -> Problem:
    return Problem(404, "not_found", detail)


@admin.get(
    "/notifications",
    response_model=NotificationPage,
    summary="Partner notifications by status (e.g. the parked `failed` ones)",
)
async def list_notifications(
    _: Admin,
    ctx: MatcherCtx,
    status: Literal["pending", "delivered", "failed"] = "failed",
    posting_id: str | None = None,
    application_id: str | None = None,
    cursor: CursorParam = None,
    limit: Limit = None,
) -> NotificationPage:
    async with ctx.pool.acquire() as conn:
        return await views.notifications(
            conn,
            status=status,
            posting_id=posting_id,
            application_id=application_id,
            cursor=cursor,
            limit=page_limit(limit, ctx.settings, default=100),
        )


@admin.post(
    "/notifications/{notification_id}/resend",
    response_model=ResendView,
    summary="Re-send a parked notification (same webhook-id, fresh retry budget)",
    responses=problem_responses(
        404, 409, e404="no such notification", e409="the notification was delivered"
    ),
)
async def resend_notification(notification_id: str, _: Admin, ctx: MatcherCtx) -> ResendView:
    async with ctx.pool.acquire() as conn:
        resent = await notifications.resend(conn, notification_id)
    if resent.status is None:
        if not resent.known:
            raise _not_found(f"no notification {notification_id}")
        raise Problem(409, "already_delivered", f"notification {notification_id} was delivered")
    return ResendView(notification_id=notification_id, status=resent.status)


@admin.get(
    "/draws/{posting_id}",
    response_model=DrawView,
    summary="The stored draw of a posting: seed, inputs, outcome",
)
async def get_draw(posting_id: str, _: Admin, ctx: MatcherCtx) -> DrawView:
    async with ctx.pool.acquire() as conn:
        return _found(await views.draw(conn, posting_id), f"no draw for posting {posting_id}")


@admin.post(
    "/draws/{posting_id}/verify",
    response_model=DrawCheck,
    summary="Re-run a stored draw from its seed and inputs and say whether it matches",
)
async def verify_draw(posting_id: str, _: Admin, ctx: MatcherCtx) -> DrawCheck:
    async with ctx.pool.acquire() as conn:
        return _found(
            await views.verify_draw(conn, posting_id), f"no draw for posting {posting_id}"
        )


@admin.get(
    "/postings/{posting_id}/draw",
    response_model=PublishedDraw,
    summary="What the public may see of a posting's draw: commitment, frozen entries, record",
    description="The view the partner's `GET /v1/partner/postings/{id}/draw` answers "
    "(docs/fairness.md): the seed only once the draw has run.",
)
async def get_published_draw(posting_id: str, _: Admin, ctx: MatcherCtx) -> PublishedDraw:
    async with ctx.pool.acquire() as conn:
        return _found(
            await views.draw_publication(conn, posting_id), f"no draw for posting {posting_id}"
        )


@admin.get(
    "/applications/{application_id}",
    response_model=ApplicationView,
    summary="One application and its decision (held ones included)",
)
async def get_application(application_id: str, _: Admin, ctx: MatcherCtx) -> ApplicationView:
    async with ctx.pool.acquire() as conn:
        return _found(
            await views.application(conn, application_id), f"no application {application_id}"
        )


@admin.get(
    "/postings/{posting_id}",
    response_model=PostingView,
    summary="A posting as the matcher sees it, with counts",
)
async def get_posting(posting_id: str, _: Admin, ctx: MatcherCtx) -> PostingView:
    async with ctx.pool.acquire() as conn:
        return _found(await views.posting(conn, posting_id), f"no posting {posting_id}")


@admin.get(
    "/postings/{posting_id}/applications",
    response_model=ApplicationPage,
    summary="Applications of a posting (cursor pages by application id)",
)
async def list_posting_applications(
    posting_id: str,
    _: Admin,
    ctx: MatcherCtx,
    cursor: CursorParam = None,
    limit: Limit = None,
) -> ApplicationPage:
    async with ctx.pool.acquire() as conn:
        return await views.posting_applications(
            conn, posting_id, cursor=cursor, limit=page_limit(limit, ctx.settings, default=100)
        )


@admin.get(
    "/citizens/{citizen_id}",
    response_model=CitizenView,
    summary="A citizen's standing: strikes and suspensions (no profile data)",
)
async def get_citizen(citizen_id: str, _: Admin, ctx: MatcherCtx) -> CitizenView:
    async with ctx.pool.acquire() as conn:
        return _found(await views.citizen(conn, citizen_id, ctx.now()), f"no citizen {citizen_id}")


@admin.get(
    "/citizens/{partner_user_id}/allowance",
    response_model=CitizenAllowanceView,
    summary="A citizen's allowance by partner id: week's hours, month's won, payment status",
)
async def get_citizen_allowance(
    partner_user_id: str, _: Admin, ctx: MatcherCtx, month: Month = None
) -> CitizenAllowanceView:
    return await _citizen_allowance(ctx, partner_user_id, month)


@admin.post(
    "/partner/token/rotate",
    response_model=RotatedTokenView,
    summary="Issue a new partner API token; the previous ones work for the overlap (audited)",
    responses=problem_responses(400),
)
async def rotate_partner_token(
    who: Admin, ctx: MatcherCtx, body: TokenRotation | None = None
) -> RotatedTokenView:
    rotated = await partner_tokens.rotate(ctx, who, body.overlap_s if body else None)
    return RotatedTokenView(
        partner_id=rotated.partner_id,
        key_id=rotated.key_id,
        token=rotated.token,
        previous_valid_until=rotated.previous_valid_until,
    )


# --- partner notifications (out): documented as OpenAPI 3.1 `webhooks`, never served -------

_SIGNED_HEADERS = {
    "webhook-id": (
        "This notification's id (`msg_…`), the same on every retry: drop one you have "
        "already processed (idempotency key)."
    ),
    "webhook-timestamp": "Unix seconds when this attempt was signed; refuse one off by > 5 min.",
    "webhook-signature": (
        "`v1,<base64 HMAC-SHA256>` of `{webhook-id}.{webhook-timestamp}.{body}` with the "
        "shared secret (Standard Webhooks); space-separated when several secrets sign it."
    ),
}

_DELIVERY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Delivered: any 2xx (200, 202, 204); the body is ignored."},
    "4XX": {
        "description": (
            "408 and 429 are retried like 5xx; any other 4xx refuses this notification: it "
            "is parked at once (an operator re-sends it) and holds back the later ones of "
            "its ordering key."
        )
    },
    "5XX": {
        "description": (
            "Retried (also timeouts, refused connections and 3xx, which are never followed) "
            "with exponential backoff and full jitter for up to an hour, then parked."
        )
    },
}


def _webhook_doc(kind: contract.NotificationType) -> Callable[..., Awaitable[None]]:
    """A never-called endpoint whose signature documents one notification: the signed
    headers and the type's envelope with its example."""

    async def notification() -> None:  # pragma: no cover - documentation only
        raise NotImplementedError

    headers = [
        inspect.Parameter(
            name.replace("-", "_"),
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[str, Header(alias=name, description=text)],
        )
        for name, text in _SIGNED_HEADERS.items()
    ]
    body = inspect.Parameter(
        "body",
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[
            contract.ENVELOPES[kind.name],
            Body(
                openapi_examples={
                    kind.name: {"summary": kind.summary, "value": contract.example(kind.name)}
                }
            ),
        ],
    )
    notification.__signature__ = inspect.Signature([*headers, body])  # type: ignore[attr-defined]
    notification.__name__ = kind.name.replace(".", "_")
    return notification


def partner_webhooks() -> APIRouter:
    """One OpenAPI webhook per notification type of `contract.NOTIFICATION_TYPES`, POSTed
    to the partner's `PARTNER_NOTIFY_URL` (docs/partner.md, docs/partner-openapi.json)."""
    router = APIRouter(tags=["partner notifications"])
    for kind in contract.NOTIFICATION_TYPES:
        router.add_api_route(
            kind.name,
            _webhook_doc(kind),
            methods=["POST"],
            summary=kind.summary,
            description=f"{kind.description}\n\nOrdered per {kind.ordering}.",
            operation_id=f"notification_{kind.name.replace('.', '_')}",
            response_model=None,
            response_class=Response,
            responses=_DELIVERY_RESPONSES,
        )
    return router

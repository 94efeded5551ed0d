"""Wiring of the matcher service: routes, handlers and sweepers into one process."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from matcher import api, handlers, notify, sweepers
from matcher.settings import Context, MatcherSettings, WebhookSecrets
from matcher.usecases import partner_tokens
from shared.payee_seal import Sealer, SealKeyError
from shared.service import ServiceSpec, create_app

log = logging.getLogger(__name__)


async def on_start(ctx: Context) -> None:
    """What every role needs: the webhook secrets, split once; the partner's tokens
    (the configured one stored as a hash, and recognised by the `partner` dependency); and,
    where webhooks are served, the allowance's public key that bank details are sealed to
    (production's API refuses to start without it; the worker seals nothing and is not
    given it)."""
    ctx.provide(WebhookSecrets(tuple(ctx.settings.webhook_secrets())))
    ctx.provide(partner_tokens.DIRECTORY)
    await partner_tokens.configure(ctx)
    public_key = ctx.settings.payee_seal_public_key
    if public_key:
        ctx.provide(Sealer(public_key))
    elif ctx.settings.role == "worker":
        pass
    elif ctx.settings.app_env == "production":
        raise SealKeyError("PAYEE_SEAL_PUBLIC_KEY is not set: bank details could not be sealed")
    else:
        log.warning("no PAYEE_SEAL_PUBLIC_KEY: citizen.payee_submitted webhooks answer 503")


async def start_sender(ctx: Context) -> None:
    """Start the partner notification sender (the HTTP side of its outbox)."""
    settings = ctx.settings
    sender = notify.NotificationSender(
        pool=ctx.pool,
        url=settings.partner_notify_url,
        secret=settings.partner_notify_secret.get_secret_value(),
        concurrency_max=settings.notify_concurrency_max,
        timeout_ms=settings.notify_timeout_ms,
        retry_for=timedelta(seconds=settings.notify_retry_for_s),
        attempts_max=settings.notify_attempts_max,
        backoff_base_ms=settings.notify_backoff_base_ms,
        backoff_cap_ms=settings.notify_backoff_cap_ms,
        poll_interval_ms=settings.notify_poll_interval_ms,
        prefetch_max=settings.notify_prefetch_max,
        retention=timedelta(days=settings.notify_retention_days),
        response_read_max_bytes=settings.notify_response_read_max_bytes,
        retry_concurrency_max=settings.notify_retry_concurrency_max,
        breaker_failures=settings.notify_breaker_failures,
        breaker_cooldown_ms=settings.notify_breaker_cooldown_ms,
        endpoint_down_after_s=settings.notify_endpoint_down_after_s,
        shards=settings.notify_shards,
        mark_linger_ms=settings.notify_mark_linger_ms,
    )
    ctx.provide(sender)
    await sender.start()


async def stop_sender(ctx: Context) -> None:
    sender = ctx.discard(notify.NotificationSender)
    if sender is not None:
        await sender.stop()


SPEC = ServiceSpec(
    name="matcher",
    title="Danggeun Gwangsan matcher",
    description=(
        "Citizens apply through the partner app: signed partner webhooks in, eligibility, "
        "first-come and drawn bookings, waitlists, strikes, signed partner notifications out."
    ),
    migrations_dir=Path(__file__).parent / "migrations",
    routers=(api.partner, api.pull, api.admin),
    fast_routes=api.FAST_ROUTES,
    register_handlers=handlers.register,
    sweepers=sweepers.sweepers(MatcherSettings.model_construct()),
    on_start=on_start,
    on_worker_start=start_sender,
    on_worker_stop=stop_sender,
    openapi_tags=(
        {"name": "partner", "description": "Webhooks the partner (Danggeun) calls"},
        {
            "name": "partner pull",
            "description": "What the partner reads with its API token: postings (reconcile"
            " by `version`), applications, a citizen's bookings",
        },
        {"name": "admin", "description": "Operators: notifications, draws, decisions"},
        {
            "name": "partner notifications",
            "description": "What the matcher POSTs, signed, to the partner (docs/partner.md)",
        },
    ),
    webhooks=api.partner_webhooks(),
)


def build(settings: MatcherSettings | None = None) -> FastAPI:
    settings = settings or MatcherSettings()
    spec = dataclasses.replace(SPEC, sweepers=sweepers.sweepers(settings))
    return create_app(spec, settings)

"""Wiring of the allowance service: routes, handlers and sweepers into one process."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI

from allowance import api, console, handlers, sweepers
from allowance.payees import load_cipher
from allowance.settings import AllowanceSettings, Context
from allowance.usecases import Store, policy, staff
from shared.payee_seal import Opener, SealKeyError
from shared.service import ServiceSpec, create_app

log = logging.getLogger(__name__)


async def on_start(ctx: Context) -> None:
    """Open the payee cipher (production without a key refuses to start) and seed the
    policy tables from BRIEF §5 on first start."""
    settings = ctx.settings
    ctx.provide(
        load_cipher(
            settings.app_env,
            settings.allowance_payee_keys.get_secret_value(),
            settings.allowance_payee_active_key_id,
        )
    )
    seal_keys = settings.allowance_payee_seal_keys.get_secret_value()
    if seal_keys:
        ctx.provide(Opener(seal_keys))
    elif settings.app_env == "production":
        raise SealKeyError("ALLOWANCE_PAYEE_SEAL_KEYS is not set: partner bank details unreadable")
    else:
        log.warning("no ALLOWANCE_PAYEE_SEAL_KEYS: bank details from the partner stay unread")
    ctx.provide(staff.DIRECTORY)
    async with ctx.pool.acquire() as conn:
        seeded = await policy.seed_policy(Store(conn), ctx.now())
    if seeded:
        log.info("policy seeded from BRIEF §5: %s", ", ".join(seeded))


SPEC = ServiceSpec(
    name="allowance",
    title="Danggeun Gwangsan allowance",
    description=(
        "Rate policy, programme budget, payouts within caps, the double-entry ledger, month"
        " close and payout files. Admin endpoints take the admin token, finance endpoints"
        " the finance token (`Authorization: Bearer ...`); the other staff token is 403."
        " Money is integer won everywhere; business dates are Asia/Seoul."
    ),
    migrations_dir=Path(__file__).parent / "migrations",
    routers=(*api.ROUTERS, console.router),
    register_handlers=handlers.register,
    on_start=on_start,
    sweepers=sweepers.SWEEPERS,
    openapi_tags=(
        {"name": "admin", "description": "Rate policy, minimum wages, caps and budget"},
        {"name": "finance", "description": "Budget, ledger, statements, close, payouts"},
    ),
)


def build(settings: AllowanceSettings | None = None) -> FastAPI:
    return create_app(SPEC, settings or AllowanceSettings())

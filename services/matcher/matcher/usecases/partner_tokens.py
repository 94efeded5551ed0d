"""The partner's API tokens: configured from PARTNER_API_TOKEN at start, rotated by an
admin with an overlap window, and recognised on the pull API (as a `Staff` of role
`partner`, through the shared kit's `StaffDirectory`, so routes name a dependency and
never check a token themselves).

Tokens are `pk_<key id>_<secret>` (shared/auth.py `issue_key`): only the SHA-256 of a
token is stored, a request finds its row by the key id and compares one hash in constant
time, and a key id that keeps being tried with bad secrets is locked out for a while
(shared/web.py `refuse_locked_out`), as the registry's facility keys.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from matcher import store
from matcher.domain.partner import previous_tokens_valid_until, token_admits
from matcher.settings import PARTNER_TOKEN_PREFIX, Context
from shared.auth import hash_secret, issue_key, key_id_of, matches
from shared.context import ServiceContext
from shared.problems import Problem
from shared.web import Staff, StaffDirectory, note_bad_secret, refuse_locked_out, request_id_of

log = logging.getLogger(__name__)

PARTNER_ROLE = "partner"


@dataclass(frozen=True)
class RotatedToken:
    partner_id: str
    key_id: str
    token: str  # shown once
    previous_valid_until: datetime


async def configure(ctx: Context) -> None:
    """Store the configured token's hash if its key id is new, and let the partner's other
    tokens expire after the rotation overlap (a token rolled out by configuration is a
    rotation too). A known key id changes nothing, so restarts (and a token rotated out
    since) leave the table as it is."""
    settings = ctx.settings
    token = settings.partner_api_token.get_secret_value()
    key_id = key_id_of(token, PARTNER_TOKEN_PREFIX) if token else None
    if key_id is None:
        return
    now = ctx.now()
    until = previous_tokens_valid_until(
        now, timedelta(seconds=settings.partner_token_rotation_overlap_s)
    )
    async with ctx.pool.acquire() as conn, conn.transaction():
        if not await store.insert_partner_token(
            conn,
            key_id=key_id,
            partner_id=settings.partner_id,
            secret_hash=hash_secret(token),
            now=now,
        ):
            return
        await store.expire_partner_tokens(
            conn, settings.partner_id, keep_key_id=key_id, until=until
        )
        await store.audit_partner_token(
            conn,
            store.TokenAudit(
                at=now,
                action="configured",
                partner_id=settings.partner_id,
                key_id=key_id,
                previous_valid_until=until,
            ),
        )
    log.info("partner token configured", extra={"partner": settings.partner_id, "key_id": key_id})


async def rotate(ctx: Context, staff: Staff, overlap_s: int | None) -> RotatedToken:
    """A new token for the partner (answered once); its earlier tokens keep working for
    `overlap_s` (the configured overlap if not given, at most the configured maximum)."""
    settings = ctx.settings
    overlap_max_s = settings.partner_token_rotation_overlap_max_s
    if overlap_s is None:
        overlap_s = min(settings.partner_token_rotation_overlap_s, overlap_max_s)
    if overlap_s > overlap_max_s:
        raise Problem(
            400,
            "invalid_request",
            f"overlap_s: at most {overlap_max_s}",
            errors=[
                {"field": "overlap_s", "message": f"at most {overlap_max_s}", "code": "too_large"}
            ],
        )
    key = issue_key(PARTNER_TOKEN_PREFIX)
    now = ctx.now()
    until = previous_tokens_valid_until(now, timedelta(seconds=overlap_s))
    async with ctx.pool.acquire() as conn, conn.transaction():
        await store.expire_partner_tokens(
            conn, settings.partner_id, keep_key_id=key.key_id, until=until
        )
        await store.insert_partner_token(
            conn,
            key_id=key.key_id,
            partner_id=settings.partner_id,
            secret_hash=key.secret_hash,
            now=now,
        )
        await store.audit_partner_token(
            conn,
            store.TokenAudit(
                at=now,
                action="rotated",
                partner_id=settings.partner_id,
                key_id=key.key_id,
                previous_valid_until=until,
                staff=staff.label,
                staff_id_authenticated=not staff.staff_id_self_declared,
                request_id=staff.request_id,
                client_address=staff.client_address,
            ),
        )
    log.warning(
        "partner token rotated",
        extra={"partner": settings.partner_id, "key_id": key.key_id, "by": staff.label},
    )
    return RotatedToken(settings.partner_id, key.key_id, key.secret, until)


async def find(ctx: ServiceContext[Any], token: str) -> Staff | None:
    """The partner a bearer token belongs to, as a `Staff` of role `partner` (its id the
    partner id), or None: not shaped like a partner token, unknown, wrong secret, or
    expired. Bad secrets for a key id count towards its lockout (429 past the bound)."""
    key_id = key_id_of(token, PARTNER_TOKEN_PREFIX)
    if key_id is None:
        return None
    lockout_key = f"partner-token:{key_id}"
    refuse_locked_out(ctx, lockout_key)
    async with ctx.pool.acquire() as conn:
        found = await store.partner_token(conn, key_id)
    if found is None or not matches(token, found.secret_hash):
        note_bad_secret(ctx, lockout_key)
        return None
    if not token_admits(found.expires_at, ctx.now()):
        return None
    return Staff(PARTNER_ROLE, found.partner_id, request_id_of())


DIRECTORY = StaffDirectory(find)

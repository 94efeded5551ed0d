"""Facilities (admin API) and their keys: register, edit, rotate a key, suspend and resume,
and authenticate a facility key on the facility API. Every administrator's change is
recorded with who, when and what in the append-only `facility_changes` table, in the same
transaction as the change."""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from registry import store
from registry.domain.errors import invalid
from registry.domain.facilities import (
    FacilityDraft,
    facility_changes,
    key_admits,
    previous_keys_valid_until,
    rotation_overlap,
    validate_dong,
)
from registry.domain.ids import new_id
from registry.settings import Context
from registry.usecases import refused
from shared.auth import IssuedKey, issue_key, key_id_of, matches
from shared.db import retry_conflicts
from shared.events import PostingCancelled
from shared.problems import Problem
from shared.web import Staff, note_bad_secret, refuse_locked_out

log = logging.getLogger(__name__)

UNAUTHORIZED_DETAIL = "send a valid facility key: `Authorization: Bearer <key>`"


@dataclass(frozen=True)
class Caller:
    """The facility a request acts for."""

    facility_id: str


@dataclass(frozen=True)
class Registered:
    facility: store.FacilityRow
    key: IssuedKey


@dataclass(frozen=True)
class Rotated:
    facility_id: str
    key: IssuedKey
    previous_keys_valid_until: datetime
    overlap_s: int = 0


@dataclass(frozen=True)
class Suspended:
    facility: store.FacilityRow
    cancelled_posting_ids: list[str]


@dataclass(frozen=True)
class Resumed:
    """A suspension lifted: the facility is active again with a new key (its old keys
    stay expired; its cancelled postings stay cancelled)."""

    facility: store.FacilityRow
    key: IssuedKey


# Who acts when a use case is called without a staff member (a script, a test).
_SYSTEM = Staff(role="system", staff_id=None, request_id=None)


def _no_such_facility() -> Problem:
    return Problem(404, "not_found", "no such facility", ko="그런 기관이 없습니다.")


async def _audit(
    conn: Any,
    facility_id: str,
    action: str,
    who: Staff | None,
    at: datetime,
    changes: dict[str, Any] | None = None,
) -> None:
    """One row of `facility_changes`: who (role, staff id, request, address), when, what."""
    actor = who or _SYSTEM
    await store.record_facility_change(
        conn,
        facility_id=facility_id,
        action=action,
        changes=changes or {},
        actor_role=actor.role,
        actor_staff_id=actor.staff_id,
        staff_id_self_declared=actor.staff_id_self_declared,
        request_id=actor.request_id,
        client_address=actor.client_address,
        at=at,
    )


async def create(ctx: Context, draft: FacilityDraft, who: Staff | None = None) -> Registered:
    """Register a facility with its first key (the key's secret is answered this once)."""
    errors = validate_dong(draft.dong, ctx.settings.facility_dongs)
    if errors:
        raise refused(invalid(errors))
    key = issue_key()
    now = ctx.now()
    facility_id = new_id("fac")
    async with ctx.pool.acquire() as conn, conn.transaction():
        row = await store.insert_facility(
            conn,
            facility_id=facility_id,
            name=draft.name,
            kind=draft.kind,
            dong=draft.dong,
            address=draft.address,
            contact_phone=draft.contact_phone,
            requires_child_safety_check=draft.requires_child_safety_check,
            now=now,
        )
        await store.insert_key(
            conn, key_id=key.key_id, facility_id=facility_id, secret_hash=key.secret_hash, now=now
        )
        registered = {name: getattr(row, name) for name in sorted(store.FACILITY_EDITABLE)}
        registered["key_id"] = key.key_id
        await _audit(conn, facility_id, "registered", who, now, registered)
    log.info("facility registered", extra={"facility": facility_id})
    return Registered(row, key)


async def edit(
    ctx: Context, facility_id: str, wanted: dict[str, Any], who: Staff | None = None
) -> store.FacilityRow:
    """Change a facility's name, kind, dong, address or contact phone (the fields in
    `wanted`; a dong must be one of Gwangsan-gu's). Fields already so change nothing, and
    an edit that changes nothing writes no audit row. Its postings keep their terms; the
    events of their next change carry the new name and dong."""
    now = ctx.now()
    async with ctx.pool.acquire() as conn, conn.transaction():
        row = await store.get_facility(conn, facility_id, for_update=True)
        if row is None:
            raise _no_such_facility()
        current = {name: getattr(row, name) for name in store.FACILITY_EDITABLE}
        changes, errors = facility_changes(current, wanted, ctx.settings.facility_dongs)
        if errors:
            raise refused(invalid(errors))
        if not changes:
            return row
        row = await store.update_facility(
            conn, facility_id, {name: change["to"] for name, change in changes.items()}
        )
        await _audit(conn, facility_id, "edited", who, now, changes)
    log.info("facility edited", extra={"facility": facility_id, "fields": sorted(changes)})
    return row


async def rotate_key(
    ctx: Context, facility_id: str, who: Staff | None = None, overlap_s: int | None = None
) -> Rotated:
    """A new key; the ones issued before stop working after `overlap_s` seconds (bounded
    by the settings), or after the configured overlap when none is asked for."""
    overlap, errors = rotation_overlap(
        overlap_s,
        default_s=ctx.settings.facility_key_rotation_overlap_s,
        max_s=ctx.settings.facility_key_rotation_overlap_max_s,
    )
    if errors:
        raise refused(invalid(errors))
    key = issue_key()
    now = ctx.now()
    until = previous_keys_valid_until(now, overlap)
    async with ctx.pool.acquire() as conn, conn.transaction():
        row = await store.get_facility(conn, facility_id, for_update=True)
        if row is None:
            raise _no_such_facility()
        if row.status != "active":
            raise Problem(409, "facility_suspended", "a suspended facility gets no new keys")
        await store.expire_keys(conn, facility_id, until)
        await store.insert_key(
            conn, key_id=key.key_id, facility_id=facility_id, secret_hash=key.secret_hash, now=now
        )
        rotation = {
            "key_id": key.key_id,
            "overlap_s": int(overlap.total_seconds()),
            "previous_keys_valid_until": until.isoformat(),
        }
        await _audit(conn, facility_id, "key_rotated", who, now, rotation)
    log.info("facility key rotated", extra={"facility": facility_id, "key_id": key.key_id})
    return Rotated(facility_id, key, until, int(overlap.total_seconds()))


async def resume(ctx: Context, facility_id: str, who: Staff | None = None) -> Resumed:
    """Lift a suspension. What suspending did is undone as far as it sensibly can be: the
    facility is active and gets a new key (shown once); the keys it had stay expired (a
    suspension may have been for a leaked key), and the postings the suspension cancelled
    stay cancelled (their bookings, budget and partner notices are gone; the facility
    posts again). A facility that is not suspended is a 409."""
    key = issue_key()
    now = ctx.now()
    async with ctx.pool.acquire() as conn, conn.transaction():
        row = await store.get_facility(conn, facility_id, for_update=True)
        if row is None:
            raise _no_such_facility()
        if row.status != "suspended":
            raise Problem(
                409,
                "facility_not_suspended",
                "the facility is not suspended",
                ko="이용이 정지된 기관이 아닙니다.",
            )
        await store.resume_facility(conn, facility_id)
        await store.insert_key(
            conn, key_id=key.key_id, facility_id=facility_id, secret_hash=key.secret_hash, now=now
        )
        lifted = {"suspended_at": row.suspended_at, "key_id": key.key_id}
        await _audit(conn, facility_id, "resumed", who, now, lifted)
        row = await store.get_facility(conn, facility_id)
        assert row is not None
    log.info("facility resumed", extra={"facility": facility_id, "key_id": key.key_id})
    return Resumed(row, key)


async def suspend(ctx: Context, facility_id: str, who: Staff | None = None) -> Suspended:
    """Suspend a facility: its keys stop now and every pending or open posting of it is
    cancelled (PostingCancelled each). Suspending a suspended facility changes nothing."""
    now = ctx.now()

    async def work() -> Suspended:
        async with ctx.pool.acquire() as conn, conn.transaction():
            row = await store.get_facility(conn, facility_id, for_update=True)
            if row is None:
                raise _no_such_facility()
            cancelled: list[str] = []
            if row.status == "active":
                await store.suspend_facility(conn, facility_id, now)
                await store.expire_keys(conn, facility_id, now)
                for posting_id in await store.cancellable_postings(conn, facility_id):
                    await store.cancel_posting(
                        conn, posting_id, reason="facility_suspended", now=now
                    )
                    await store.emit(
                        conn,
                        PostingCancelled(
                            posting_id=posting_id,
                            facility_id=facility_id,
                            reason="facility_suspended",
                            cancelled_at=now,
                        ),
                        occurred_at=now,
                    )
                    cancelled.append(posting_id)
                row = await store.get_facility(conn, facility_id)
                assert row is not None
                await _audit(
                    conn, facility_id, "suspended", who, now, {"cancelled_posting_ids": cancelled}
                )
            return Suspended(row, cancelled)

    result = await retry_conflicts(work)
    log.info(
        "facility suspended",
        extra={"facility": facility_id, "postings_cancelled": len(result.cancelled_posting_ids)},
    )
    return result


def _staff_role(token: str, ctx: Context) -> str | None:
    """The staff role whose static token this is (every comparison runs, in constant
    time), so a staff token on the facility API is told apart from a bad key."""
    found: str | None = None
    for role, secret in ctx.settings.staff_tokens().items():
        expected = secret.get_secret_value().encode()
        if expected and hmac.compare_digest(token.encode(), expected) and found is None:
            found = role
    return found


async def authenticate(ctx: Context, token: str) -> Caller:
    """The facility a bearer token acts for: a live key, found by its key id, its hash
    compared in constant time, not rotated out, of an active facility — else 401. A staff
    token (the admin's) is 403: it is valid, but not a facility."""
    role = _staff_role(token, ctx)
    if role is not None:
        raise Problem(403, "forbidden", f"the {role} token cannot act as a facility")
    unauthorized = Problem(
        401, "unauthorized", UNAUTHORIZED_DETAIL, headers={"WWW-Authenticate": "Bearer"}
    )
    key_id = key_id_of(token)
    if key_id is None:
        raise unauthorized
    # A key id that keeps being tried with bad secrets is locked out (429) for a while: a
    # guessing attack on one facility's key stops, the facility's own key works again after.
    lockout_key = f"facility-key:{key_id}"
    refuse_locked_out(ctx, lockout_key)
    async with ctx.pool.acquire() as conn:
        found = await store.find_key(conn, key_id)
    if found is None or not matches(token, found.secret_hash):
        note_bad_secret(ctx, lockout_key)
        raise unauthorized
    if not key_admits(
        expires_at=found.expires_at, facility_status=found.facility_status, now=ctx.now()
    ):
        raise unauthorized
    return Caller(found.facility_id)

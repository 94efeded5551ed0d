"""Named finance staff (issue 17): created by the administrator with a role, their token
shown once and kept only as a hash (shared/auth.py), revocable. `find` is the allowance's
`StaffDirectory` (shared/web.py): the shared `staff(...)` dependency asks it for any token
that is not a static one, so routes name roles and never look tokens up themselves."""

from __future__ import annotations

import logging

from allowance.settings import Context
from allowance.store import StaffRow, Store
from shared.auth import issue_key, key_id_of, matches
from shared.problems import Problem
from shared.web import Staff, StaffDirectory, request_id_of

log = logging.getLogger(__name__)

TOKEN_PREFIX = "fs_"  # "finance staff"; the id inside the token finds its row


def staff_id_of(key_id: str) -> str:
    return f"stf_{key_id}"


async def create(ctx: Context, *, name: str, role: str, by: Staff) -> tuple[StaffRow, str]:
    """A new staff member and their token (the only time it is seen)."""
    issued = issue_key(TOKEN_PREFIX)
    async with ctx.pool.acquire() as conn, conn.transaction():
        row = await Store(conn).insert_staff(
            staff_id=staff_id_of(issued.key_id),
            name=name,
            role=role,
            token_hash=issued.secret_hash,
            at=ctx.now(),
            by=by.label,
        )
    log.info("staff created", extra={"staff_id": row.id, "role": role})
    return row, issued.secret


async def revoke(ctx: Context, staff_id: str, *, by: Staff) -> StaffRow:
    """Revoke a staff member's token and end their console sessions (idempotent)."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        row = await Store(conn).revoke_staff(staff_id, at=ctx.now(), by=by.label)
    if row is None:
        raise Problem(404, "not_found", f"no staff member {staff_id}")
    log.info("staff revoked", extra={"staff_id": staff_id})
    return row


async def find(ctx: Context, token: str) -> Staff | None:
    """The staff member a presented token belongs to (None: unknown or revoked)."""
    key_id = key_id_of(token, TOKEN_PREFIX)
    if key_id is None:
        return None
    async with ctx.pool.acquire() as conn:
        found = await Store(conn).staff_by_id(staff_id_of(key_id))
    if found is None:
        return None
    row, token_hash = found
    if not matches(token, token_hash) or row.revoked_at is not None:
        return None
    return as_staff(row, request_id_of())


def as_staff(row: StaffRow, request_id: str | None = None) -> Staff:
    return Staff(row.role, row.id, request_id, name=row.name)


DIRECTORY = StaffDirectory(find)

"""Sessions of the finance console (/finance): a staff member signs in with their token and
gets a session cookie. The session lives in Postgres (`console_sessions`), not in a signed
cookie, because a revoked staff member must be signed out at once and an idle session must
end on the server: a signed cookie stays valid until it expires, whatever happens to its
owner (docs/decisions/0015). The cookie carries 256 random bits; only their SHA-256 is
stored, with the session's CSRF token (a different random value, put in every form).

Session times are the machine's wall clock, not the business clock of test and demo
(which jumps months ahead when a demo closes a month and would end every session)."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from allowance.settings import Context
from allowance.store import Store
from allowance.usecases import staff as staff_members
from shared.auth import hash_secret
from shared.problems import Problem
from shared.web import Staff


@dataclass(frozen=True)
class Session:
    """A signed-in console user: who (as the API's `Staff`) and the form token."""

    staff: Staff
    csrf_token: str


def wall_now() -> datetime:
    return datetime.now(UTC)


async def sign_in(ctx: Context, token: str) -> tuple[str, Session]:
    """A new session for a named staff member's token (the cookie value and the session);
    the bootstrap FINANCE_TOKEN is for scripts and does not sign in."""
    who = await staff_members.find(ctx, token.strip()) if token.strip() else None
    if who is None:
        raise Problem(
            401,
            "unauthorized",
            "unknown or revoked staff token",
            ko="토큰이 올바르지 않거나 사용이 중지되었습니다."
            " 관리자에게 받은 토큰을 확인해 주세요.",
        )
    cookie = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    assert who.staff_id is not None
    async with ctx.pool.acquire() as conn, conn.transaction():
        await Store(conn).insert_session(
            id_hash=hash_secret(cookie), staff_id=who.staff_id, csrf_token=csrf, at=wall_now()
        )
    return cookie, Session(who, csrf)


async def session_of(ctx: Context, cookie: str | None, request_id: str | None) -> Session | None:
    """The live session of a cookie (None: none, ended, idle too long, too old, or its
    staff member revoked — an ended one is closed on the server); touches it."""
    if not cookie or len(cookie) > 100:
        return None
    id_hash = hash_secret(cookie)
    now = wall_now()
    settings = ctx.settings
    async with ctx.pool.acquire() as conn, conn.transaction():
        db = Store(conn)
        row = await db.session(id_hash)
        if row is None:
            return None
        expired = (
            now - row.last_seen_at > timedelta(seconds=settings.console_session_idle_s)
            or now - row.created_at > timedelta(seconds=settings.console_session_max_s)
            or row.revoked_at is not None
        )
        if expired:
            await db.end_session(id_hash, now)
            return None
        await db.touch_session(id_hash, now)
    return Session(Staff(row.role, row.staff_id, request_id, name=row.name), row.csrf_token)


def check_csrf(session: Session, presented: str | None) -> None:
    """Every form carries the session's CSRF token; a form without it changes nothing."""
    if not presented or not hmac.compare_digest(presented.encode(), session.csrf_token.encode()):
        raise Problem(
            403,
            "csrf_failed",
            "the form's CSRF token is missing or wrong; reload the page",
            ko="보안 토큰이 없거나 맞지 않아 처리하지 않았습니다."
            " 화면을 새로 고친 뒤 다시 해 주세요.",
        )


async def sign_out(ctx: Context, cookie: str | None) -> None:
    if cookie and len(cookie) <= 100:
        async with ctx.pool.acquire() as conn:
            await Store(conn).end_session(hash_secret(cookie), wall_now())

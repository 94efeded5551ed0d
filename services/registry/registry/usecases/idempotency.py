"""Facility POSTs under an Idempotency-Key: done once, answered the same on every retry.

The answer's exact bytes are stored in the same transaction as the request's effects, so a
replay gets what the first request got (and nothing is stored for a request that failed,
which can then be retried with the same key). Another body under the same key is 422; the
same key while the first request is still running is 409.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from registry import store
from registry.settings import Context
from shared.db import retry_conflicts
from shared.problems import Problem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IdempotentRequest:
    """Who sent it, under which key, and its fingerprint (`domain.idempotency`)."""

    facility_id: str
    key: str
    fingerprint: str


@dataclass(frozen=True)
class Answer:
    """An answer to send as it is: status, JSON body bytes, and whether it is a replay."""

    status: int
    body: bytes
    replayed: bool = False


# The request's work, in the transaction that stores its answer: (status, body bytes).
Work = Callable[[asyncpg.Connection], Awaitable[tuple[int, bytes]]]


async def run_once(pool: asyncpg.Pool, request: IdempotentRequest, work: Work) -> Answer:
    """Do `work` once per (facility, Idempotency-Key), in one transaction with its answer."""

    async def attempt() -> Answer:
        async with pool.acquire() as conn, conn.transaction():
            if not await store.lock_idempotency_key(conn, request.facility_id, request.key):
                raise Problem(
                    409,
                    "idempotency_key_in_flight",
                    "a request with this Idempotency-Key is still being processed; retry later",
                )
            prior = await store.get_idempotency(conn, request.facility_id, request.key)
            if prior is not None:
                if prior.request_hash != request.fingerprint:
                    raise Problem(
                        422,
                        "idempotency_key_reused",
                        "this Idempotency-Key was used with a different request",
                    )
                return Answer(prior.response_status, prior.response_body, replayed=True)
            status, body = await work(conn)
            await store.save_idempotency(
                conn,
                request.facility_id,
                request.key,
                request_hash=request.fingerprint,
                status=status,
                body=body,
            )
            return Answer(status, body)

    return await retry_conflicts(attempt)


async def purge(ctx: Context) -> int:
    """Drop answers older than the retention, one bounded batch (by wall-clock time)."""
    settings = ctx.settings
    async with ctx.pool.acquire() as conn:
        purged = await store.purge_idempotency(
            conn,
            timedelta(days=settings.idempotency_retention_days),
            settings.idempotency_purge_batch_size_max,
        )
    return purged

"""A facility's postings: price a shift before posting it, post it (it waits for its
budget), change it, cancel it.

Every query is scoped by the caller's facility, so another facility's posting is not found
(404) rather than forbidden: its existence is not revealed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import asyncpg

from registry import store
from registry.domain.errors import Refusal, invalid
from registry.domain.facilities import posting_requires_child_safety_check
from registry.domain.ids import new_id
from registry.domain.postings import (
    PatchRefusedError,
    PostingBounds,
    PostingDraft,
    PostingPatch,
    ShiftTerms,
    check_cancellable,
    plan_patch,
    validate_terms,
)
from registry.domain.rates import Estimate
from registry.domain.rates import estimate as price
from registry.settings import Context, RegistrySettings
from registry.usecases import refused
from registry.usecases.facilities import UNAUTHORIZED_DETAIL, Caller
from registry.usecases.idempotency import Answer, IdempotentRequest, run_once
from shared.db import retry_conflicts
from shared.events import PostingCancelled, PostingSubmitted, PostingUpdated
from shared.problems import Problem

log = logging.getLogger(__name__)

# How a use case answering an Idempotency-Key renders the posting it answers with: the
# exact bytes stored with the key (the API's JSON of `views.posting_view`).
Render = Callable[[store.PostingRow], bytes]


def bounds_of(settings: RegistrySettings) -> PostingBounds:
    return PostingBounds(
        duration_min_minutes=settings.posting_duration_min_minutes,
        duration_max_minutes=settings.posting_duration_max_minutes,
        capacity_min=settings.posting_capacity_min,
        capacity_max=settings.posting_capacity_max,
        horizon_days_max=settings.posting_horizon_days_max,
    )


def posting_terms(row: store.PostingRow) -> dict[str, Any]:
    """The fields every posting-terms event (Submitted, Published, Updated) carries."""
    return {
        "posting_id": row.id,
        "facility_id": row.facility_id,
        "facility_name": row.facility_name,
        "facility_dong": row.facility_dong,
        "title": row.title,
        "description": row.description,
        "starts_at": row.starts_at,
        "ends_at": row.ends_at,
        "capacity": row.capacity,
        "selection": row.selection,
        "applications_close_at": row.applications_close_at,
        "requires_child_safety_check": row.requires_child_safety_check,
        "tags": list(row.tags),
        "reconfirmation_required": row.reconfirmation_required,
        "facility_address": row.facility_address,
        "facility_contact": row.facility_contact,
    }


async def own_posting(
    conn: asyncpg.Connection, caller: Caller, posting_id: str, *, for_update: bool = False
) -> store.PostingRow:
    """The caller's posting (locked with `for_update`), or 404 — also for another's."""
    row = await store.get_posting(
        conn, posting_id, facility_id=caller.facility_id, for_update=for_update
    )
    if row is None:
        raise Problem(404, "not_found", "no such posting")
    return row


async def create(
    ctx: Context, caller: Caller, draft: PostingDraft, request: IdempotentRequest, render: Render
) -> Answer:
    """Store the shift `pending_budget` with PostingSubmitted in the outbox (allowance
    answers with a reservation or a refusal); 201 with the posting."""

    async def work(conn: asyncpg.Connection) -> tuple[int, bytes]:
        now = ctx.now()
        # FOR SHARE holds off a concurrent suspension, so no posting slips past one.
        fac = await store.get_facility(conn, caller.facility_id, for_share=True)
        if fac is None or fac.status != "active":
            raise Problem(
                401, "unauthorized", UNAUTHORIZED_DETAIL, headers={"WWW-Authenticate": "Bearer"}
            )
        errors = validate_terms(draft.terms, now, bounds_of(ctx.settings))
        if errors:
            raise refused(invalid(errors))
        posting_id = new_id("pst")
        await store.insert_posting(
            conn,
            posting_id=posting_id,
            facility_id=caller.facility_id,
            title=draft.title,
            description=draft.description,
            terms=draft.terms,
            requires_child_safety_check=posting_requires_child_safety_check(
                fac.requires_child_safety_check, draft.requires_child_safety_check
            ),
            tags=draft.tags,
            now=now,
            reconfirmation_required=draft.reconfirmation_required,
        )
        row = await store.get_posting(conn, posting_id)
        assert row is not None
        await store.emit(conn, PostingSubmitted(**posting_terms(row)), occurred_at=now)
        log.info("posting submitted", extra={"posting": posting_id})
        return 201, render(row)

    return await run_once(ctx.pool, request, work)


async def estimate(ctx: Context, terms: ShiftTerms) -> Estimate:
    """What a shift with these terms would cost at the rate table the registry holds (the
    allowance's, decision 0011), before it is posted: the console shows it as staff type.
    Terms that could not be posted are refused as `POST /v1/postings` refuses them. Nothing
    is written, so it needs no transaction."""
    async with ctx.pool.acquire() as conn:
        held = await store.rates(conn)
    try:
        return price(
            terms, held.entries, held.rates_version, now=ctx.now(), bounds=bounds_of(ctx.settings)
        )
    except Refusal as exc:
        raise refused(exc) from exc


async def patch(
    ctx: Context, caller: Caller, posting_id: str, change: PostingPatch
) -> store.PostingRow:
    """Apply an accepted change as revision n + 1 (PostingUpdated n + 1, with the previous
    capacity and times, so allowance can re-price the reservation); a change that changes
    nothing writes nothing. The posting as it is afterwards."""
    settings = ctx.settings

    async def work() -> store.PostingRow:
        async with ctx.pool.acquire() as conn, conn.transaction():
            row = await own_posting(conn, caller, posting_id, for_update=True)
            now = ctx.now()
            try:
                plan = plan_patch(
                    row.state,
                    change,
                    confirmed_count=row.confirmed_count,
                    active_count=row.confirmed_count + row.waitlisted_count,
                    now=now,
                    bounds=bounds_of(settings),
                )
            except PatchRefusedError as exc:
                raise refused(exc) from exc
            if not plan.changed:
                return row
            revision = row.revision + 1
            previous = row.terms
            await store.insert_revision(
                conn,
                posting_id,
                revision=revision,
                changed=plan.changed,
                previous=previous,
                new=plan.new.terms,
                cause="facility",
                now=now,
            )
            await store.apply_terms(
                conn,
                posting_id,
                state=plan.new,
                revision=revision,
                now=now,
                clear_update_rejected=True,
            )
            after = await store.get_posting(conn, posting_id)
            assert after is not None
            await store.emit(
                conn,
                PostingUpdated(
                    **posting_terms(after),
                    hourly_rate_won=after.hourly_rate_won,
                    revision=revision,
                    previous_capacity=previous.capacity,
                    previous_starts_at=previous.starts_at,
                    previous_ends_at=previous.ends_at,
                ),
                occurred_at=now,
            )
            log.info(
                "posting updated",
                extra={"posting": posting_id, "revision": revision, "changed": plan.changed},
            )
            return after

    return await retry_conflicts(work)


async def cancel(
    ctx: Context,
    caller: Caller,
    posting_id: str,
    request: IdempotentRequest,
    render: Render,
    note: str | None = None,
) -> Answer:
    """Cancel a pending or open posting before its shift starts (PostingCancelled: the
    matcher cancels its bookings, allowance releases its budget), keeping the facility's
    `note` with it (for its staff; not sent to citizens); 200 with the posting."""

    async def work(conn: asyncpg.Connection) -> tuple[int, bytes]:
        row = await own_posting(conn, caller, posting_id, for_update=True)
        now = ctx.now()
        try:
            check_cancellable(row.status, row.starts_at, now)
        except Refusal as exc:
            raise refused(exc) from exc
        await store.cancel_posting(conn, posting_id, reason="facility", now=now, note=note)
        await store.emit(
            conn,
            PostingCancelled(
                posting_id=posting_id,
                facility_id=caller.facility_id,
                reason="facility",
                cancelled_at=now,
            ),
            occurred_at=now,
        )
        after = await store.get_posting(conn, posting_id)
        assert after is not None
        log.info("posting cancelled", extra={"posting": posting_id})
        return 200, render(after)

    return await run_once(ctx.pool, request, work)

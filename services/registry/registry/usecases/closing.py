"""Closing postings: an open posting whose attendance window has passed becomes `closed`
(PostingClosed), so allowance releases the budget it did not pay out. The sweeper's work."""

from __future__ import annotations

from datetime import timedelta

from registry import store
from registry.settings import Context
from shared.db import retry_conflicts
from shared.events import PostingClosed


async def close_due_batch(ctx: Context) -> int:
    """Close one batch (at most `POSTING_CLOSE_BATCH_SIZE_MAX`) of the open postings whose
    attendance window has passed, in one transaction; how many it closed. Postings another
    sweeper holds are skipped, not waited for."""
    settings = ctx.settings
    window = timedelta(hours=settings.attendance_window_hours)

    async def batch() -> int:
        now = ctx.now()
        async with ctx.pool.acquire() as conn, conn.transaction():
            due = await store.postings_due_for_close(
                conn, ended_before=now - window, limit=settings.posting_close_batch_size_max
            )
            for posting in due:
                await store.close_posting(conn, posting.id, now)
                await store.emit(
                    conn,
                    PostingClosed(
                        posting_id=posting.id, facility_id=posting.facility_id, closed_at=now
                    ),
                    occurred_at=now,
                )
            return len(due)

    return await retry_conflicts(batch)

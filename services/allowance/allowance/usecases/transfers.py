"""The bank's result per payout line (이체 결과): paid lines move payout due to paid; a
failed line's net is reversed out of payout due into `allowance_transfer_failed`, which the
next close carries into that month's payout file. One database transaction per request:
the result rows, their ledger postings and their events are written together or not at
all, so a crash between "failed" and its reversal cannot happen, and a retried request
finds its results stored and changes nothing."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime

from allowance.domain import ledger
from allowance.domain.calendar import Period
from allowance.domain.transfer_results import ResultLine
from allowance.settings import Context
from allowance.store import Store, ToPost, TransferResultRow
from allowance.usecases.common import emit
from shared.db import retry_conflicts
from shared.events import PayoutFailed, PayoutPaid
from shared.problems import Problem
from shared.web import Staff

log = logging.getLogger(__name__)

# The stored result of a line, and whether this request recorded it (False: found as it was).
Recorded = tuple[TransferResultRow, bool]


def _one_per_line(results: Sequence[ResultLine]) -> list[ResultLine]:
    """The request's lines, a repeated identical line once; two different results for the
    same line in one request are refused (422), since neither can be believed."""
    seen: dict[str, ResultLine] = {}
    for r in results:
        before = seen.get(r.citizen_id)
        if before is None:
            seen[r.citizen_id] = r
        elif (before.status, before.reason) != (r.status, r.reason):
            raise Problem(
                422,
                "transfer_result_conflict",
                f"{r.field}: {r.citizen_id} has two different results in this request"
                f" ({before.field} says {before.status})",
                errors=[{"field": r.field, "message": "a second result", "code": "duplicate"}],
            )
    return list(seen.values())


async def record_results(
    ctx: Context, period: Period, results: Sequence[ResultLine], staff: Staff
) -> list[Recorded]:
    """Record the bank's results for a closed month's payout lines (see the module)."""
    lines = _one_per_line(results)

    async def work() -> list[Recorded]:
        async with ctx.pool.acquire() as conn, conn.transaction():
            return await record_in(Store(conn), period, lines, staff, ctx)

    done = await retry_conflicts(work)
    if any(new for _, new in done):
        ctx.relay.wake()
    return done


async def record_in(
    db: Store, period: Period, lines: Sequence[ResultLine], staff: Staff, ctx: Context
) -> list[Recorded]:
    status = await db.period_status(period, "update")  # one writer per month, and not
    row = await db.period_row(period)  # beside mark-paid or a close
    if status != "closed" or row is None:
        raise Problem(409, "period_not_closed", f"{period} is not closed; it has no payout file")
    amounts = {r.citizen_id: r.payout_won for r in await db.payout_file_rows(period)}
    stored = await db.transfer_results(period)
    # Everything is checked before anything is written: a bad line writes nothing.
    for line in lines:
        if line.citizen_id not in amounts:
            raise Problem(
                422,
                "transfer_line_unknown",
                f"{line.field}.citizen_id: {line.citizen_id} has no line in the {period}"
                " payout file",
                errors=[
                    {
                        "field": f"{line.field}.citizen_id",
                        "message": f"no line in {period}",
                        "code": "unknown",
                    }
                ],
            )
        before = stored.get(line.citizen_id)
        if before is not None and (before.status, before.reason) != (line.status, line.reason):
            raise Problem(
                409,
                "transfer_result_conflict",
                f"{line.field}: the {period} line of {line.citizen_id} was recorded"
                f" {before.status} already; a different result is refused",
                errors=[
                    {"field": f"{line.field}.status", "message": before.status, "code": "conflict"}
                ],
            )
        if before is None and line.status == "failed" and row.paid_at is not None:
            raise Problem(
                409,
                "period_already_paid",
                f"{line.field}: {period} was marked paid (every line); a failed line cannot"
                " be recorded after that",
            )
    now = ctx.now()
    done: list[Recorded] = []
    for line in lines:
        before = stored.get(line.citizen_id)
        if before is not None:
            done.append((before, False))
            continue
        result_id = uuid.uuid4()
        txn_ids = await _post_result(db, period, line, result_id, now)
        fresh = TransferResultRow(
            period=str(period),
            citizen_id=line.citizen_id,
            status=line.status,
            reason=line.reason,
            amount_won=amounts[line.citizen_id],
            transaction_id=txn_ids[0] if txn_ids else None,
            result_id=result_id,
            recorded_at=now,
        )
        await db.insert_transfer_result(fresh, recorded_by=staff.label, request_id=staff.request_id)
        event = (
            PayoutPaid(citizen_id=line.citizen_id, period=str(period), amount_won=fresh.amount_won)
            if line.status == "paid"
            else PayoutFailed(
                citizen_id=line.citizen_id,
                period=str(period),
                amount_won=fresh.amount_won,
                reason=line.reason,
            )
        )
        await emit(db, event, result_id, event.TYPE, now)
        done.append((fresh, True))
    log.info(
        "transfer results recorded",
        extra={"period": str(period), "new": sum(new for _, new in done), "lines": len(done)},
    )
    return done


async def _post_result(
    db: Store, period: Period, line: ResultLine, cause: uuid.UUID, now: datetime
) -> list[int]:
    """The line's payout due (per fiscal year) to paid, or out to transfer-failed."""
    make = ledger.payout_paid if line.status == "paid" else ledger.payout_failed
    memo = (
        f"payout file {period}: transferred (bank result)"
        if line.status == "paid"
        else f"payout file {period}: transfer failed ({line.reason or 'no reason given'});"
        " carried to the next close"
    )[:500]
    to_post = [
        ToPost(txn, cause, now, now)
        for b in await db.citizen_payout_due(period, line.citizen_id)
        if (
            txn := make(
                b.fiscal_year,
                period,
                b.citizen_id,
                b.balance_won,
                memo,
                prefix=f"{line.status}:{b.citizen_id}:{b.fiscal_year}",
            )
        )
        is not None
    ]
    return await db.post_many(to_post)

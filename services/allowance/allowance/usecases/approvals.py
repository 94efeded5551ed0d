"""Maker–checker for what moves money (issue 17): a clerk requests a month close, a "mark
paid", transfer results or a budget change; a different, named approver approves it — which
runs the existing use case in the same transaction as the approval record — or rejects it
with a reason. The request stores exactly what will change: the use case is run once at
request time inside a savepoint that is rolled back (a dry run on the real data, with the
real rules), and its totals and counts are kept as the request's `preview`. Every request,
approval and rejection is appended to the hash-chained `approval_log`."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from allowance.domain import approvals as rules
from allowance.domain import ledger
from allowance.domain.calendar import Period
from allowance.domain.transfer_results import ResultLine
from allowance.settings import Context
from allowance.store import ApprovalRow, Store, json_body
from allowance.usecases import periods, policy, transfers
from shared.db import retry_conflicts
from shared.problems import Problem
from shared.web import Staff

log = logging.getLogger(__name__)


class _DryRunDone(Exception):
    """Raised to roll the dry run's savepoint back once its summary is taken."""


def refuse(refusal: rules.Refusal | None) -> None:
    """Raise the problem of a refusal (none: allowed)."""
    if refusal is not None:
        raise Problem(refusal.status, refusal.code, refusal.detail, ko=refusal.ko)


def actor_of(staff: Staff) -> rules.Actor:
    return rules.Actor(staff.role, staff.authenticated_staff_id)


def direct(ctx: Context, staff: Staff) -> None:
    """Refuse a money action through its own endpoint while the policy needs two people."""
    required = rules.approvals_required(ctx.settings.app_env, ctx.settings.approvals_required)
    refuse(rules.may_act_directly(actor_of(staff), required))


def subject_of(kind: str, body: dict[str, Any]) -> str:
    """What a request is about, for lists: the month, or the fiscal year."""
    return f"{body['fiscal_year']}년 예산" if kind == "budget_change" else str(body["period"])


async def _execute(
    db: Store, ctx: Context, kind: str, body: dict[str, Any], who: str, staff: Staff
) -> dict[str, Any]:
    """Run the request's use case in the caller's transaction; what it changed, summed up."""
    now = ctx.now()
    if kind == "period_close":
        period = Period.parse(body["period"])
        await db.set_statement_timeout(ctx.settings.close_statement_timeout_ms)
        row = await periods.close(db, period, closed_by=who, now=now)
        return {
            "period": row.period,
            "citizens_count": row.citizens_count or 0,
            "payout_count": row.payout_count or 0,
            "payout_won": row.payout_won or 0,
            "held_back_count": row.held_back_count or 0,
            "held_back_won": row.held_back_won or 0,
        }
    if kind == "period_mark_paid":
        period = Period.parse(body["period"])
        due = await db.payout_due_balances(period)
        row = await periods.mark_paid_in(db, period, paid_by=who, now=now)
        return {
            "period": row.period,
            "lines_count": len({b.citizen_id for b in due if b.balance_won > 0}),
            "paid_won": sum(b.balance_won for b in due if b.balance_won > 0),
        }
    if kind == "transfer_results":
        period = Period.parse(body["period"])
        lines = [
            ResultLine(r["citizen_id"], r["status"], r.get("reason") or "", f"results[{i}]")
            for i, r in enumerate(body["results"])
        ]
        done = await transfers.record_in(db, period, lines, staff, ctx)
        new = [r for r, fresh in done if fresh]
        return {
            "period": str(period),
            "paid_count": sum(1 for r in new if r.status == "paid"),
            "paid_won": sum(r.amount_won for r in new if r.status == "paid"),
            "failed_count": sum(1 for r in new if r.status == "failed"),
            "failed_won": sum(r.amount_won for r in new if r.status == "failed"),
            "unchanged_count": len(done) - len(new),
        }
    if kind == "budget_change":
        year = int(body["fiscal_year"])
        before = ledger.budget_figures(year, await db.year_balances(year))
        after = await policy.change_budget(
            db,
            fiscal_year=year,
            amount_won=int(body["amount_won"]),
            note=str(body.get("note") or ""),
            previous_amount_won=body.get("previous_amount_won"),
            set_by=who,
            request_id=staff.request_id,
            now=now,
        )
        return {
            "fiscal_year": year,
            "previous_total_won": before.total_won,
            "new_total_won": after.total_won,
            "delta_won": after.total_won - before.total_won,
            "available_after_won": after.available_won,
        }
    raise ValueError(f"unknown approval kind {kind}")


async def request(ctx: Context, kind: str, body: dict[str, Any], staff: Staff) -> ApprovalRow:
    """`POST /v1/approvals`: store the request with its dry-run preview (refused with the
    use case's own problem if it would be refused now: a month not ended, a cut too deep)."""
    actor = actor_of(staff)
    refuse(rules.may_request(actor))

    async def work() -> ApprovalRow:
        async with ctx.pool.acquire() as conn, conn.transaction():
            db = Store(conn)
            preview: dict[str, Any] = {}
            try:
                async with conn.transaction():  # a savepoint: the dry run is rolled back
                    preview = await _execute(db, ctx, kind, body, staff.label, staff)
                    raise _DryRunDone
            except _DryRunDone:
                pass
            now = ctx.now()
            row = ApprovalRow(
                id=uuid.uuid4(),
                kind=kind,
                subject=subject_of(kind, body),
                body=body,
                preview=preview,
                status="pending",
                requested_by=actor.identity,
                requested_by_name=staff.name,
                requested_role=staff.role,
                requested_at=now,
                decided_by=None,
                decided_by_name=None,
                decided_at=None,
                reason=None,
                result=None,
            )
            await db.insert_approval(row)
            await _log(db, row, "requested", staff, json_body(preview), now)
            return row

    row = await retry_conflicts(work)
    log.info("approval requested", extra={"approval_id": str(row.id), "kind": kind})
    return row


async def decide(
    ctx: Context, approval_id: uuid.UUID, staff: Staff, *, approve: bool, reason: str | None
) -> ApprovalRow:
    """Approve (run the action, in this transaction) or reject a pending request."""
    actor = actor_of(staff)

    async def work() -> ApprovalRow:
        async with ctx.pool.acquire() as conn, conn.transaction():
            db = Store(conn)
            row = await db.approval(approval_id, for_update=True)
            if row is None:
                raise Problem(404, "not_found", f"no approval request {approval_id}")
            refuse(rules.may_decide(actor, row.status, row.requested_by))
            now = ctx.now()
            result = None
            if approve:
                who = f"{staff.label} (approval {row.id}, requested by {row.requested_by})"
                result = await _execute(db, ctx, row.kind, row.body, who, staff)
            done = await db.decide_approval(
                row.id,
                status="approved" if approve else "rejected",
                by=actor.identity,
                by_name=staff.name,
                at=now,
                reason=reason,
                result=result,
            )
            detail = json_body(result) if approve else (reason or "")
            await _log(db, done, "approved" if approve else "rejected", staff, detail, now)
            return done

    done = await retry_conflicts(work)
    ctx.relay.wake()
    log.info("approval decided", extra={"approval_id": str(done.id), "status": done.status})
    return done


async def _log(
    db: Store, row: ApprovalRow, action: str, staff: Staff, detail: str, now: datetime
) -> None:
    await db.log_approval(
        at=now,
        approval_id=row.id,
        action=action,
        kind=row.kind,
        subject=row.subject,
        actor_role=staff.role,
        actor_staff_id=staff.authenticated_staff_id,
        detail=detail,
        request_id=staff.request_id,
    )

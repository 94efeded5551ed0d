"""Month close and payment: a month is closed once it has ended (its statements frozen,
what each citizen is owed moved into the payout file), then marked paid when the bank
transfer was made. Both are idempotent."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime

from allowance.domain import ledger
from allowance.domain.calendar import Period
from allowance.domain.withholding import (
    SEED_WITHHOLDING,
    WithholdingKind,
    WithholdingTable,
    withholding_for,
)
from allowance.settings import Context
from allowance.store import CitizenBalance, OwedAtClose, PayoutRow, PeriodRow, Store, ToPost
from allowance.usecases.common import emit
from shared.db import retry_conflicts
from shared.events import PayoutHeldBack, PeriodClosed
from shared.problems import Problem
from shared.seoul import seoul_date
from shared.web import Staff

log = logging.getLogger(__name__)


async def close_period(ctx: Context, period: Period, staff: Staff) -> PeriodRow:
    """`POST /v1/periods/{p}/close`: one transaction (retried on a serialization conflict)
    with the long statement timeout a year of data needs; wakes the relay for PeriodClosed."""

    async def work() -> PeriodRow:
        async with ctx.pool.acquire() as conn, conn.transaction():
            db = Store(conn)
            await db.set_statement_timeout(ctx.settings.close_statement_timeout_ms)
            return await close(db, period, closed_by=staff.label, now=ctx.now())

    row = await retry_conflicts(work)
    ctx.relay.wake()
    log.info("period closed", extra={"period": str(period)})
    return row


@dataclass
class _Paying:
    """One citizen's payout being built at close: gross, taxes, carried, by fiscal year."""

    gross_won: int = 0
    taxable_won: int = 0
    income_tax_won: int = 0
    local_tax_won: int = 0
    carried_won: int = 0
    kind: str = WithholdingKind.NONE.value


def _owed_at_close(
    balances: list[CitizenBalance],
    period: Period,
    close_id: uuid.UUID,
    now: datetime,
    taxes: WithholdingTable = SEED_WITHHOLDING,
    paying: dict[str, _Paying] | None = None,
) -> tuple[list[OwedAtClose], list[ToPost]]:
    """Per citizen, what is owed and paid out; and the payout-due transactions to post,
    each withholding the taxes the table in force on the close's Seoul date asks for (per
    citizen and fiscal year; `paying` collects the figures of the payout file)."""
    owed: dict[str, OwedAtClose] = {}
    to_post: list[ToPost] = []
    paid_on = seoul_date(now)
    for b in balances:
        totals = owed.setdefault(b.citizen_id, OwedAtClose(b.citizen_id))
        totals.balance_won += b.balance_won
        if b.balance_won <= 0:
            continue  # an overpayment stays payable and is netted against later accruals
        if not b.has_payee:
            totals.held_back = True
            totals.held_back_won += b.balance_won
            continue
        totals.payout_won += b.balance_won
        withheld = withholding_for(taxes, paid_on, b.balance_won)
        if paying is not None:
            line = paying.setdefault(b.citizen_id, _Paying())
            line.gross_won += withheld.gross_won
            line.taxable_won += withheld.taxable_won
            line.income_tax_won += withheld.income_tax_won
            line.local_tax_won += withheld.local_tax_won
            line.kind = withheld.kind.value
        # The release of money an earlier close held back for missing payee details is
        # said in the memo, so the ledger shows the carry and its release (issue 16).
        carried = (
            f", including {b.carried_won:,} won carried forward from before {period}"
            " (held back at an earlier close: no payee details then)"
            if b.carried_won > 0
            else ""
        )
        txn = ledger.payout_due(
            b.fiscal_year,
            period,
            b.citizen_id,
            b.balance_won,
            f"close {period}: payable through {period} into the payout file{carried}"
            + (
                f" (withheld {withheld.income_tax_won + withheld.local_tax_won} won,"
                f" {withheld.kind.value})"
                if withheld.income_tax_won or withheld.local_tax_won
                else ""
            ),
            prefix=f"due:{b.citizen_id}:{b.fiscal_year}",
            income_tax_won=withheld.income_tax_won,
            local_tax_won=withheld.local_tax_won,
        )
        if txn is not None:
            to_post.append(ToPost(txn, close_id, now, now))
    return [owed[c] for c in sorted(owed)], to_post


def _carry_failed(
    failed: list[CitizenBalance],
    period: Period,
    close_id: uuid.UUID,
    now: datetime,
    paying: dict[str, _Paying],
) -> list[ToPost]:
    """Nets of earlier failed transfers back into this month's payout file (as they are:
    taxed when first due), for citizens with payee details; the others wait."""
    to_post: list[ToPost] = []
    for b in failed:
        if b.balance_won <= 0 or not b.has_payee:
            continue
        txn = ledger.failed_carry(
            b.fiscal_year,
            period,
            b.citizen_id,
            b.balance_won,
            f"close {period}: failed transfer carried into the payout file",
            prefix=f"carry:{b.citizen_id}:{b.fiscal_year}",
        )
        if txn is not None:
            to_post.append(ToPost(txn, close_id, now, now))
            paying.setdefault(b.citizen_id, _Paying()).carried_won += b.balance_won
    return to_post


def _payout_rows(period: Period, paid_on: date, paying: dict[str, _Paying]) -> list[PayoutRow]:
    rows = []
    for citizen_id in sorted(paying):
        p = paying[citizen_id]
        amount_won = p.gross_won - p.income_tax_won - p.local_tax_won + p.carried_won
        if amount_won > 0:
            rows.append(
                PayoutRow(
                    str(period),
                    citizen_id,
                    p.kind,
                    paid_on,
                    p.gross_won,
                    p.taxable_won,
                    p.income_tax_won,
                    p.local_tax_won,
                    p.carried_won,
                    amount_won,
                )
            )
    return rows


async def close(db: Store, period: Period, *, closed_by: str, now: datetime) -> PeriodRow:
    """Freeze the month's statements and move what each citizen is owed (this month and any
    earlier balance) into payout due — except citizens without payee details, whose money
    stays payable and is carried forward. Idempotent: a closed month answers its close.
    Runs in the caller's transaction."""
    status = await db.period_status(period, "update")
    if status == "closed":
        row = await db.period_row(period)
        assert row is not None
        return row
    if not period.has_ended(now):
        raise Problem(
            409,
            "period_not_ended",
            f"{period} has not ended yet (it ends {period.ends_at().isoformat()}); a month"
            " is closed after its last day",
        )
    close_id = uuid.uuid4()
    paying: dict[str, _Paying] = {}
    owed, to_post = _owed_at_close(
        await db.payable_balances_through(period),
        period,
        close_id,
        now,
        await db.withholding_table(),
        paying,
    )
    to_post += _carry_failed(
        await db.transfer_failed_balances_through(period), period, close_id, now, paying
    )
    await db.post_many(to_post)
    await db.insert_payouts(_payout_rows(period, seoul_date(now), paying))
    await db.freeze_statements(period, owed, frozen_at=now)
    row = await db.mark_period_closed(period, closed_at=now, closed_by=closed_by, close_id=close_id)
    await emit(
        db,
        PeriodClosed(
            period=str(period),
            closed_at=now,
            citizens_count=row.citizens_count or 0,
            payable_won=row.payout_won or 0,
        ),
        close_id,
        "PeriodClosed",
        now,
    )
    for o in owed:
        if o.held_back and o.held_back_won > 0:
            await emit(
                db,
                PayoutHeldBack(
                    citizen_id=o.citizen_id, period=str(period), amount_won=o.held_back_won
                ),
                close_id,
                f"PayoutHeldBack:{o.citizen_id}",
                now,
            )
    return row


async def mark_paid(ctx: Context, period: Period, staff: Staff) -> PeriodRow:
    """The closed month's bank transfer was made: payout due → paid. Idempotent."""

    async def work() -> PeriodRow:
        async with ctx.pool.acquire() as conn, conn.transaction():
            return await mark_paid_in(Store(conn), period, paid_by=staff.label, now=ctx.now())

    return await retry_conflicts(work)


async def mark_paid_in(db: Store, period: Period, *, paid_by: str, now: datetime) -> PeriodRow:
    status = await db.period_status(period, "update")
    row = await db.period_row(period)
    assert row is not None
    if status != "closed":
        raise Problem(409, "period_not_closed", f"{period} is not closed; close it first")
    if row.paid_at is not None:
        return row
    paid_id = uuid.uuid4()
    to_post = [
        ToPost(txn, paid_id, now, now)
        for b in await db.payout_due_balances(period)
        if (
            txn := ledger.payout_paid(
                b.fiscal_year,
                period,
                b.citizen_id,
                b.balance_won,
                f"payout file {period} transferred",
                prefix=f"paid:{b.citizen_id}:{b.fiscal_year}",
            )
        )
        is not None
    ]
    await db.post_many(to_post)
    return await db.mark_period_paid(period, paid_at=now, paid_by=paid_by, paid_id=paid_id)

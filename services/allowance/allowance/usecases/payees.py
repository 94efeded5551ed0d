"""Payee details: written sealed (AES-256-GCM, never answered in full), and the one read
that opens them, the payout file, recorded in the access log before anything is opened."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from allowance.domain.calendar import Period
from allowance.payees import BankLine, PayeeCipher, PayeeDetails, Sealed, mask_account, mask_holder
from allowance.settings import Context
from allowance.store import HeldBackRow, PayeeRow, PayoutFileRow, PayoutRow, Store
from shared.problems import Problem
from shared.web import Staff


async def put_payee(
    ctx: Context,
    citizen_ref: str,
    *,
    bank_code: str,
    account_number: str,
    account_holder: str,
    staff: Staff,
) -> PayeeRow:
    """Seal and store a citizen's bank details, with the write in the access log."""
    details = PayeeDetails(bank_code, account_number, account_holder.strip())
    sealed = ctx.resource(PayeeCipher).seal(citizen_ref, details)
    now = ctx.now()
    async with ctx.pool.acquire() as conn, conn.transaction():
        db = Store(conn)
        row = await db.upsert_payee(
            citizen_id=citizen_ref,
            key_id=sealed.key_id,
            nonce=sealed.nonce,
            ciphertext=sealed.ciphertext,
            bank_code=details.bank_code,
            account_masked=mask_account(details.account_number),
            holder_masked=mask_holder(details.account_holder),
            now=now,
            updated_by=staff.label,
        )
        await db.log_payee_access(
            citizens=[citizen_ref],
            key_ids=[sealed.key_id],
            action="write",
            purpose="payee details entered from the registration form",
            actor_role=staff.role,
            actor_staff_id=staff.authenticated_staff_id,
            stated_staff_id=staff.stated_staff_id,
            request_id=staff.request_id,
            client_address=staff.client_address,
            at=now,
        )
    return row


@dataclass(frozen=True)
class PayoutFile:
    """A closed month's payouts (masked), the citizens held back, and — when opened for the
    bank file — the bank lines."""

    period: Period
    closed_at: datetime
    lines: list[PayoutFileRow]
    held_back: list[HeldBackRow]
    bank_lines: list[BankLine] | None = None
    payouts: dict[str, PayoutRow] = field(default_factory=dict)


async def payout_file(ctx: Context, period: Period, staff: Staff, *, open_: bool) -> PayoutFile:
    """The closed month's payout file (409 while the month is open). With `open_`, every
    payee in it is written to the access log (who, when, whose, why) in the same
    transaction, and only then decrypted for the bank file."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        db = Store(conn)
        row = await db.period_row(period)
        if row is None or not row.closed or row.closed_at is None:
            raise Problem(
                409, "period_not_closed", f"{period} is not closed; a payout file needs a close"
            )
        lines = await db.payout_file_rows(period)
        held = await db.held_back(period)
        missing = [r.citizen_id for r in lines if r.key_id is None]
        if missing:
            raise Problem(409, "payee_missing", f"payee details vanished for {missing[:5]}")
        fixed = await db.payouts(period)
        found = PayoutFile(period, row.closed_at, lines, held, payouts=fixed)
        if not open_:
            return found
        await db.log_payee_access(
            citizens=[r.citizen_id for r in lines],
            key_ids=[r.key_id for r in lines if r.key_id is not None],
            action="decrypt",
            purpose=f"payout file {period}",
            actor_role=staff.role,
            actor_staff_id=staff.authenticated_staff_id,
            stated_staff_id=staff.stated_staff_id,
            request_id=staff.request_id,
            client_address=staff.client_address,
            at=ctx.now(),
        )
    cipher = ctx.resource(PayeeCipher)
    memo = f"{ctx.settings.payout_memo_prefix} {period}"
    bank_lines = []
    for r in lines:
        assert r.key_id is not None and r.nonce is not None and r.ciphertext is not None
        details = cipher.open(r.citizen_id, Sealed(r.key_id, bytes(r.nonce), bytes(r.ciphertext)))
        bank_lines.append(
            BankLine(
                details.bank_code,
                details.account_number,
                details.account_holder,
                r.payout_won,
                memo,
            )
        )
    return PayoutFile(period, row.closed_at, lines, held, bank_lines, fixed)

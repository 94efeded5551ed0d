"""Payee details: written sealed (AES-256-GCM, never answered in full) from finance staff
(`PUT /v1/payees/{citizen_ref}`) or from the citizen through the partner (PayeeSubmitted,
sealed to this service alone: decision 0014), and the one read that opens them, the
payout file, recorded in the access log before anything is opened."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from allowance.domain.banks import AccountNumberError, check_payee, normalise_account_number
from allowance.domain.calendar import Period
from allowance.payees import BankLine, PayeeCipher, PayeeDetails, Sealed, mask_account, mask_holder
from allowance.settings import Context
from allowance.store import HeldBackRow, PayeeRow, PayoutFileRow, PayoutRow, Store
from allowance.usecases.common import emit
from shared.events import Envelope, PayeeAccepted, PayeeRefusal, PayeeRejected, PayeeSubmitted
from shared.payee_seal import Opener, SealedDetails, UnsealError
from shared.problems import Problem
from shared.web import Staff

log = logging.getLogger(__name__)

# The reason a PayeeRejected gives when the sealed details do not open (another key, or
# altered on the way): the partner should ask the citizen again.
UNREADABLE = "unreadable"


async def put_payee(
    ctx: Context,
    citizen_ref: str,
    *,
    bank_code: str,
    account_number: str,
    account_holder: str,
    staff: Staff,
) -> PayeeRow:
    """Check, seal and store a citizen's bank details, with the write in the access log.
    A refused field is a 400 naming it; a citizen the allowance does not know, a 404."""
    refusals = check_payee(bank_code, account_number, account_holder)
    if refusals:
        fields = ", ".join(r.field for r in refusals)
        raise Problem(
            400,
            "invalid_payee",
            f"bank details refused: {fields}",
            errors=[r.as_error() for r in refusals],
        )
    # Stored digits only, as partner submissions are (issue 16): the payout file writes what
    # the bank reads, whatever the form it was typed in.
    details = PayeeDetails(
        bank_code, normalise_account_number(account_number), account_holder.strip()
    )
    sealed = ctx.resource(PayeeCipher).seal(citizen_ref, details)
    now = ctx.now()
    async with ctx.pool.acquire() as conn, conn.transaction():
        db = Store(conn)
        if not await db.citizen_known(citizen_ref):
            raise Problem(
                404,
                "citizen_not_found",
                f"no citizen {citizen_ref}: use the citizen id printed on the statement",
            )
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


async def on_booked(db: Store, citizen_ids: Sequence[str], now: datetime) -> None:
    """Bookings name citizens: finance staff may now enter their bank details (a
    citizen can come to the community centre before their first shift)."""
    if citizen_ids:
        await db.know_citizens(citizen_ids, "booking", now)


async def on_payee_submitted(
    db: Store,
    envelope: Envelope,
    event: PayeeSubmitted,
    ctx: Context,
) -> None:
    """Bank details from the partner: open the sealed box, check, store (replacing, the
    old kept sealed) and answer PayeeAccepted; or store nothing and answer PayeeRejected.
    In the consumer guard's transaction: a redelivered event changes nothing. Without the
    private key it raises: retried, then dead-lettered, replayed once the key is set."""
    opener = ctx.resource_or_none(Opener)
    if opener is None:
        raise RuntimeError("ALLOWANCE_PAYEE_SEAL_KEYS is not configured")
    cipher = ctx.resource(PayeeCipher)
    now = ctx.now()
    await db.know_citizens([event.citizen_id], "payee", now)
    try:
        given = opener.open(
            event.partner_user_id, SealedDetails(event.seal_key_id, event.sealed_details)
        )
    except UnsealError as exc:
        log.warning("payee details of %s do not open: %s", event.citizen_id, exc)
        await _answer_rejected(db, envelope, event, UNREADABLE, [], now)
        return
    refusals = check_payee(given.bank_code, given.account_number, given.account_holder)
    if refusals:
        found = [PayeeRefusal(field=r.field, code=str(r.code)) for r in refusals]
        await _answer_rejected(db, envelope, event, found[0].code, found, now)
        return
    try:
        digits = normalise_account_number(given.account_number)
    except AccountNumberError:  # check_payee refused it already; kept for the type
        raise AssertionError("checked account number does not normalise") from None
    details = PayeeDetails(given.bank_code, digits, given.account_holder.strip())
    sealed = cipher.seal(event.citizen_id, details)
    await db.upsert_payee(
        citizen_id=event.citizen_id,
        key_id=sealed.key_id,
        nonce=sealed.nonce,
        ciphertext=sealed.ciphertext,
        bank_code=details.bank_code,
        account_masked=mask_account(details.account_number),
        holder_masked=mask_holder(details.account_holder),
        now=now,
        updated_by="partner",
        source="partner",
        consent_at=event.consent_at,
        webhook_id=event.webhook_id,
    )
    await db.log_payee_access(
        citizens=[event.citizen_id],
        key_ids=[sealed.key_id],
        action="write",
        purpose=f"payee details submitted by the citizen through the partner app"
        f" (consent {event.consent_at.isoformat()}, webhook {event.webhook_id})",
        actor_role="partner",
        actor_staff_id=None,
        stated_staff_id=None,
        request_id=event.webhook_id,
        client_address=None,
        at=now,
    )
    await emit(
        db,
        PayeeAccepted(
            citizen_id=event.citizen_id,
            partner_user_id=event.partner_user_id,
            webhook_id=event.webhook_id,
        ),
        envelope.event_id,
        "PayeeAccepted",
        now,
    )


async def _answer_rejected(
    db: Store,
    envelope: Envelope,
    event: PayeeSubmitted,
    reason: str,
    refusals: list[PayeeRefusal],
    now: datetime,
) -> None:
    await emit(
        db,
        PayeeRejected(
            citizen_id=event.citizen_id,
            partner_user_id=event.partner_user_id,
            webhook_id=event.webhook_id,
            reason=reason,
            refusals=refusals,
        ),
        envelope.event_id,
        "PayeeRejected",
        now,
    )


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

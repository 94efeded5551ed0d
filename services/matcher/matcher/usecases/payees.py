"""Bank details the partner submits for a citizen (`citizen.payee_submitted`, issue 16).

The matcher never reads them: ingest seals them to the allowance's public key
(shared/payee_seal.py) and writes a `PayeeSubmitted` to the outbox in the transaction that
creates the citizen on first sight, so the event names the citizen id statements print
(docs/decisions/0014). The allowance checks and stores them and answers PayeeAccepted or
PayeeRejected, which become the partner's `payee.accepted` / `payee.rejected`.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from matcher import store
from matcher.settings import PRODUCER, Context
from matcher.usecases.notifications import payee_note
from shared import outbox
from shared.db import Connection
from shared.events import Envelope, PayeeAccepted, PayeeRejected, PayeeSubmitted
from shared.payee_seal import BankDetails, Sealer
from shared.problems import RETRY_AFTER_S, Problem


async def submit_payee(
    ctx: Context,
    partner_user_id: str,
    details: BankDetails,
    consent_at: datetime,
    webhook_id: str,
    event_id: uuid.UUID,
    received_at: datetime,
) -> None:
    """Seal, create the citizen if unseen, queue the event; a replayed webhook-id (same
    event id, refused by the outbox's unique key) changes nothing."""
    sealer = ctx.resource_or_none(Sealer)
    if sealer is None:
        raise Problem(
            503,
            "payee_sealing_unavailable",
            "bank details cannot be sealed: the allowance's public key is not configured",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    sealed = sealer.seal(partner_user_id, details)
    try:
        async with ctx.pool.acquire() as conn, conn.transaction():
            if await store.outbox_has(conn, event_id):
                return  # replayed: the first delivery's event is queued or sent
            citizen_id = await store.ensure_citizen(conn, partner_user_id)
            await outbox.add(
                conn,
                PayeeSubmitted(
                    partner_user_id=partner_user_id,
                    citizen_id=citizen_id,
                    webhook_id=webhook_id,
                    consent_at=consent_at,
                    received_at=received_at,
                    seal_key_id=sealed.key_id,
                    sealed_details=sealed.sealed_b64,
                ),
                producer=PRODUCER,
                occurred_at=received_at,
                event_id=event_id,
            )
    except asyncpg.UniqueViolationError:
        return  # the same webhook-id delivered twice at once: the other one queued it


async def answer_payee(
    conn: Connection, envelope: Envelope, event: PayeeAccepted | PayeeRejected
) -> None:
    """The allowance's answer as the partner's notification, in the consumer's
    transaction (the event id is applied once, the notification id derived from it)."""
    if isinstance(event, PayeeAccepted):
        note = payee_note(
            "payee.accepted",
            envelope.event_id,
            event.partner_user_id,
            envelope.occurred_at,
            webhook_id=event.webhook_id,
            status="accepted",
        )
    else:
        note = payee_note(
            "payee.rejected",
            envelope.event_id,
            event.partner_user_id,
            envelope.occurred_at,
            webhook_id=event.webhook_id,
            status="rejected",
            reason=event.reason,
            refusals=[r.model_dump() for r in event.refusals],
        )
    await store.add_notifications(conn, [note])

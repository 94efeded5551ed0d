"""The allowance's payouts as the matcher keeps them for the partner (issue 18): each event
of `allowance.payouts.v1` updates the citizen's month in the read model, and an accrual or
a reversal is told to the partner (`payout.accrued`, `payout.reversed`) in the same
transaction. The consumer's guard applies each event id once, so a redelivery changes
nothing. The allowance owns the money; these are its figures, never recomputed here."""

from __future__ import annotations

import logging
from typing import Any

from matcher import store
from matcher.store import MonthDelta
from matcher.usecases import notifications
from matcher.usecases.deps import Deps
from matcher.usecases.notifications import Effects
from shared.db import Connection
from shared.events import (
    Envelope,
    PayoutAccrued,
    PayoutCapped,
    PayoutFailed,
    PayoutHeldBack,
    PayoutPaid,
    PayoutReversed,
    PeriodClosed,
)

log = logging.getLogger(__name__)


async def accrue(conn: Connection, deps: Deps, event: PayoutAccrued) -> None:
    """A shift was paid: the month's amounts grow, and the partner hears `payout.accrued`
    (what is payable, what the monthly cap held back)."""
    now = deps.now()
    delta = MonthDelta(event.accrued_won, event.capped_won, event.gross_won, event.minutes_paid)
    await store.add_to_month(conn, event.citizen_id, event.period, delta, now)
    await _tell(
        conn,
        "payout.accrued",
        event.citizen_id,
        event.booking_id,
        notifications.payout_accrued_data(event),
        deps,
    )


async def reverse(conn: Connection, deps: Deps, event: PayoutReversed) -> None:
    """A correction took a payout back: the month shrinks by it (the cap's release makes
    other shifts' held-back money payable again), and the partner hears `payout.reversed`."""
    now = deps.now()
    delta = MonthDelta(
        -event.accrued_reversed_won,
        -event.capped_released_won,
        -event.gross_reversed_won,
        -event.minutes_reversed,
    )
    await store.add_to_month(conn, event.citizen_id, event.period, delta, now)
    await _tell(
        conn,
        "payout.reversed",
        event.citizen_id,
        event.booking_id,
        notifications.payout_reversed_data(event),
        deps,
    )


async def capped(conn: Connection, deps: Deps, event: PayoutCapped) -> None:
    """The monthly cap held part of a payout back. The amount came with its PayoutAccrued;
    this keeps the cap the allowance applied to the month."""
    await store.set_month_cap(conn, event.citizen_id, event.period, event.cap_won, deps.now())


async def close_period(conn: Connection, deps: Deps, event: PeriodClosed) -> None:
    """Finance closed the month: every citizen's month of it is `closed`."""
    await store.close_allowance_period(conn, event.period, event.closed_at, deps.now())


async def payment(conn: Connection, envelope: Envelope, event: PayoutPaid | PayoutFailed) -> None:
    """The bank's result for the citizen's closed month: the month is `paid`, or `failed`
    with the bank's reason (its net is carried into the next close), and the partner hears
    `payout.paid` / `payout.failed` — its id derived from the event's, so never twice."""
    paid = isinstance(event, PayoutPaid)
    await store.set_month_payment(
        conn,
        event.citizen_id,
        event.period,
        "paid" if paid else "failed",
        None if isinstance(event, PayoutPaid) else (event.reason or None),
        envelope.occurred_at,
    )
    partner_user_id = await store.partner_user_of(conn, event.citizen_id)
    if partner_user_id is None:  # not a citizen of ours: nobody to tell (the month is kept)
        log.warning("%s for unknown citizen %s: no notification", event.TYPE, event.citizen_id)
        return
    note = notifications.payment_note(
        envelope.event_id, partner_user_id, envelope.occurred_at, event
    )
    await store.add_notifications(conn, [note])


async def held_back(conn: Connection, envelope: Envelope, event: PayoutHeldBack) -> None:
    """A close held the citizen's money back (no bank details): the month shows it."""
    await store.set_month_payment(
        conn, event.citizen_id, event.period, "held_back", event.reason, envelope.occurred_at
    )


async def _tell(
    conn: Connection,
    kind: str,
    citizen_id: str,
    booking_id: str,
    data: dict[str, Any],
    deps: Deps,
) -> None:
    now = deps.now()
    target = await store.accrual_target(conn, citizen_id, booking_id)
    if target is None:  # not a citizen of ours: nobody to tell (the month is still kept)
        log.warning("%s for unknown citizen %s: no notification", kind, citizen_id)
        return
    effects = Effects()
    effects.notes.append(
        notifications.payout_note(
            kind,
            partner_user_id=target.partner_user_id,
            ordering_key=target.application_id or booking_id,
            application_id=target.application_id,
            data=data,
            at=now,
        )
    )
    await effects.write(conn, now)

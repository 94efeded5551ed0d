"""What the registry does with the events it consumes: each event type goes to one use case.

`allowance.budget.v1` drives the posting saga (`usecases.saga`); `matcher.bookings.v1` keeps
the roster read model (`usecases.roster`); `allowance.policy.v1` keeps the rate table a
shift is priced with before posting (`usecases.rates`; the cap table there is the
matcher's, and ignored). Each runs inside the idempotent-consumer transaction, so its
effects and the events it emits commit together, once per event id.
"""

from __future__ import annotations

from registry.settings import Context
from registry.usecases import rates, roster, saga
from shared.consumer import EventConsumer
from shared.db import Connection
from shared.events import (
    BookingCancelled,
    BookingConfirmed,
    BookingPromoted,
    BookingRejected,
    BookingWaitlisted,
    BudgetExhausted,
    BudgetRejected,
    BudgetReleased,
    BudgetReserved,
    Envelope,
    RatesChanged,
)


def register(consumer: EventConsumer, ctx: Context) -> None:
    """Route each consumed event type to its use case."""

    async def budget_reserved(conn: Connection, envelope: Envelope, event: BudgetReserved) -> None:
        await saga.on_budget_reserved(conn, envelope, event, now=ctx.now())

    async def budget_rejected(conn: Connection, envelope: Envelope, event: BudgetRejected) -> None:
        await saga.on_budget_rejected(conn, envelope, event, now=ctx.now())

    async def budget_released(conn: Connection, envelope: Envelope, event: BudgetReleased) -> None:
        await saga.on_budget_released(conn, envelope, event, now=ctx.now())

    async def rates_changed(conn: Connection, envelope: Envelope, event: RatesChanged) -> None:
        await rates.on_rates_changed(conn, envelope, event, now=ctx.now())

    consumer.on(BudgetReserved, budget_reserved)
    consumer.on(BudgetRejected, budget_rejected)
    consumer.on(BudgetReleased, budget_released)
    consumer.on(BudgetExhausted, saga.on_budget_exhausted)
    # One batch handler for the three: a consumed run of them is one lock and one upsert.
    consumer.on_batch(BookingConfirmed, roster.on_bookings_held)
    consumer.on_batch(BookingWaitlisted, roster.on_bookings_held)
    consumer.on_batch(BookingPromoted, roster.on_bookings_held)
    consumer.on(BookingCancelled, roster.on_booking_cancelled)
    consumer.on(BookingRejected, roster.on_booking_rejected)
    consumer.on(RatesChanged, rates_changed)

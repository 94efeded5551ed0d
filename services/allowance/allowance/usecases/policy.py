"""The admin's policy writes: the hourly rate table, statutory minimum wages, the caps per
year, the withholding table and each fiscal year's budget. Every version of a policy table
is kept; a budget change is posted to the ledger as the difference, never an overwrite."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from allowance.domain import ledger, withholding
from allowance.domain import policy as rules
from allowance.domain.calendar import period_within_year
from allowance.domain.policy import won
from allowance.settings import Context
from allowance.store import AnnouncedTable, BudgetChange, PolicyKind, PolicyVersion, Store
from allowance.usecases.common import PRODUCER
from shared.db import retry_conflicts
from shared.events import CapsChanged, CapYear, Event, RateRow, RatesChanged
from shared.problems import Problem
from shared.web import Staff

log = logging.getLogger(__name__)


def _refuse(violations: Sequence[rules.Violation]) -> None:
    """422 naming the first violation, with every one in `errors` (nothing when none)."""
    if violations:
        raise Problem(
            422,
            violations[0].code,
            violations[0].message,
            errors=[v.as_error() for v in violations],
        )


async def _write(
    db: Store,
    kind: PolicyKind,
    body: list[dict[str, Any]],
    *,
    at: datetime,
    by: Staff,
    note: str,
) -> PolicyVersion:
    """A new version of one policy table, recorded as set by `by`; the version in force."""
    await db.insert_policy(
        kind, body, set_at=at, set_by=by.label, request_id=by.request_id, note=note
    )
    found = await db.latest_policy(kind)
    assert found is not None
    return found


# Who the seeded version 1 of each policy table is recorded as set by (`set_by` = "seed").
SEED = Staff(role="seed", staff_id=None, request_id=None)
SEED_NOTE = "seeded from BRIEF §5 (sources per row)"


# --- rates and minimum wages -------------------------------------------------------------


async def set_rates(
    ctx: Context, entries: Sequence[rules.RateEntry], note: str, staff: Staff
) -> PolicyVersion:
    """Replace the rate table; a rate below the minimum wage of a year it applies in (or in
    a year without a known minimum wage) is refused with 422."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        db = Store(conn)
        await db.lock_policy()
        _refuse(rules.validate_rate_table(entries, await db.minimum_wage_table()))
        found = await write_rates(db, entries, at=ctx.now(), by=staff, note=note)
    log.info("rate table replaced", extra={"version": found.id, "entries": len(entries)})
    return found


async def write_rates(
    db: Store, entries: Sequence[rules.RateEntry], *, at: datetime, by: Staff, note: str
) -> PolicyVersion:
    """THE write of the rate table (the admin's `PUT /v1/admin/rates` and the seed both come
    here), in the caller's transaction; the version now in force. The registry shows
    facilities the cost of a shift at this table, so the version is announced
    (RatesChanged) in the same transaction: it can never miss one (decision 0011)."""
    found = await _write(db, "rates", rules.rates_to_json(entries), at=at, by=by, note=note)
    await announce_rates(db, at)
    return found


async def announce_rates(db: Store, now: datetime) -> bool:
    """Write the rate table in force to the outbox as RatesChanged, unless that version was
    announced already; True if it was written now. Called by `write_rates` and at every
    start (`seed_policy`), so a version adopted before announcements existed is sent too."""

    def event_of(found: PolicyVersion) -> Event:
        table = rules.rates_from_json(found.body, found.id)
        return RatesChanged(
            rates_version=found.id,
            rates=[
                RateRow(
                    effective_from=e.effective_from,
                    hourly_rate_won=e.hourly_rate_won,
                    source=e.source,
                )
                for e in table.entries
            ],
        )

    return await _announce(db, "rates", now, event_of, _RATES_ANNOUNCED)


async def _announce(
    db: Store,
    table: AnnouncedTable,
    now: datetime,
    event_of: Callable[[PolicyVersion], Event],
    namespace: uuid.UUID,
) -> bool:
    """The version of `table` in force, announced once: under the table's lock, recorded as
    announced and written to the outbox in the caller's transaction, with one event id per
    version (uuid5 in `namespace`), however often it is sent."""
    await db.lock_announce(table)
    found = await db.latest_policy(table)
    if found is None or not await db.mark_announced(table, found.id, now):
        return False
    event_id = uuid.uuid5(namespace, str(found.id))
    await db.emit(event_of(found), producer=PRODUCER, occurred_at=now, event_id=event_id)
    log.info("%s table announced", table, extra={"version": found.id})
    return True


# The namespace of the RatesChanged event ids (uuid5 of the version id).
_RATES_ANNOUNCED = uuid.UUID("b3d0f1e4-5a27-5c61-8f0e-2c9a7d4e6b15")


@dataclass(frozen=True)
class MinimumWagesSet:
    """The minimum wage table now in force, and the rates in force it puts below the law."""

    version: PolicyVersion
    rate_warnings: list[rules.Violation]


async def set_minimum_wages(
    ctx: Context, entries: Sequence[rules.MinimumWage], note: str, staff: Staff
) -> MinimumWagesSet:
    """Replace the minimum wages. The law is not refused: rates in force below a new
    minimum wage are answered as warnings (postings in that year are refused until the
    rate table is corrected)."""
    _refuse(rules.validate_minimum_wages(entries))
    async with ctx.pool.acquire() as conn, conn.transaction():
        db = Store(conn)
        await db.lock_policy()
        body = rules.minimum_wages_to_json(entries)
        found = await _write(db, "minimum_wages", body, at=ctx.now(), by=staff, note=note)
        rates = await db.rate_table()
    warnings = [
        v
        for v in rules.validate_rate_table(
            list(rates.entries), rules.MinimumWageTable(tuple(entries))
        )
        if v.code == "below_minimum_wage"
    ]
    return MinimumWagesSet(found, warnings)


# --- caps --------------------------------------------------------------------------------


async def write_caps(
    db: Store, entries: Sequence[rules.CapEntry], *, at: datetime, by: Staff, note: str
) -> PolicyVersion:
    """THE write of the cap table (the admin's `PUT /v1/admin/caps` and the seed both come
    here), in the caller's transaction; the version now in force. The matcher enforces the
    weekly hours of this table, so the version is announced (CapsChanged) in the same
    transaction: it can never miss one (decision 0011)."""
    found = await _write(db, "caps", rules.caps_to_json(entries), at=at, by=by, note=note)
    await announce_caps(db, at)
    return found


async def announce_caps(db: Store, now: datetime) -> bool:
    """Write the cap table in force to the outbox as CapsChanged, unless that version was
    announced already; True if it was written now. Called by `write_caps` and at every
    start (`seed_policy`), so a version adopted before announcements existed (an existing
    installation's seed) is sent too."""

    def event_of(found: PolicyVersion) -> Event:
        table = rules.caps_from_json(found.body, found.id)
        return CapsChanged(
            caps_version=found.id,
            caps=[
                CapYear(
                    year=e.year,
                    weekly_hours_max=e.weekly_hours_max,
                    monthly_amount_max_won=e.monthly_amount_max_won,
                    source=e.source,
                )
                for e in table.entries
            ],
        )

    return await _announce(db, "caps", now, event_of, _CAPS_ANNOUNCED)


# The namespace of the CapsChanged event ids (uuid5 of the version id).
_CAPS_ANNOUNCED = uuid.UUID("7c1f3a52-0c59-5b8e-9d8e-3f1e6f0a4c11")


async def set_caps(
    ctx: Context, entries: Sequence[rules.CapEntry], note: str, staff: Staff
) -> PolicyVersion:
    """Replace the caps per year; money already accrued is never clawed back by a lower cap."""
    _refuse(rules.validate_cap_table(entries))
    async with ctx.pool.acquire() as conn, conn.transaction():
        return await write_caps(Store(conn), entries, at=ctx.now(), by=staff, note=note)


async def seed_policy(db: Store, now: datetime) -> list[str]:
    """Version 1 of each policy table from BRIEF §5, if that kind has none yet (at start-up;
    one service instance at a time), and the cap and rate tables in force announced if
    they were not yet. The kinds seeded."""
    seeded: list[str] = []
    async with db.conn.transaction():
        await db.lock_seed()
        if await db.latest_policy("rates") is None:
            await write_rates(db, rules.SEED_RATES, at=now, by=SEED, note=SEED_NOTE)
            seeded.append("rates")
        if await db.latest_policy("minimum_wages") is None:
            body = rules.minimum_wages_to_json(rules.SEED_MINIMUM_WAGES)
            await _write(db, "minimum_wages", body, at=now, by=SEED, note=SEED_NOTE)
            seeded.append("minimum_wages")
        if await db.latest_policy("caps") is None:
            await write_caps(db, rules.SEED_CAPS, at=now, by=SEED, note=SEED_NOTE)
            seeded.append("caps")
        if await db.latest_policy("withholding") is None:
            body = withholding.withholding_to_json(withholding.SEED_WITHHOLDING.entries)
            await _write(db, "withholding", body, at=now, by=SEED, note=WITHHOLDING_SEED_NOTE)
            seeded.append("withholding")
        # A version in force that was never announced (adopted before announcements
        # existed) is announced now; one already announced is not sent again.
        await announce_caps(db, now)
        await announce_rates(db, now)
    return seeded


# --- withholding -------------------------------------------------------------------------

WITHHOLDING_SEED_NOTE = (
    "default: nothing withheld. The district's tax office must confirm which kind applies to"
    " the allowance (business income 3.3 %, other income 8.8 %, or none) before it changes"
)


async def set_withholding(
    ctx: Context, entries: Sequence[withholding.WithholdingEntry], note: str, staff: Staff
) -> PolicyVersion:
    """Replace the withholding table (every version kept); it applies from the next close."""
    _refuse(withholding.validate_withholding_table(entries))
    async with ctx.pool.acquire() as conn, conn.transaction():
        db = Store(conn)
        await db.lock_policy()
        body = withholding.withholding_to_json(entries)
        found = await _write(db, "withholding", body, at=ctx.now(), by=staff, note=note)
    log.info("withholding table replaced", extra={"version": found.id})
    return found


# --- budget ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetState:
    """A fiscal year's figures from the ledger and the history of its budget changes."""

    figures: ledger.BudgetFigures
    history: list[BudgetChange]


async def budget_state(db: Store, fiscal_year: int) -> BudgetState:
    figures = ledger.budget_figures(fiscal_year, await db.year_balances(fiscal_year))
    return BudgetState(figures, await db.budget_history(fiscal_year))


async def set_budget(
    ctx: Context,
    *,
    fiscal_year: int,
    amount_won: int,
    note: str,
    previous_amount_won: int | None,
    staff: Staff,
) -> BudgetState:
    """`PUT /v1/admin/budget` in one transaction (retried on a serialization conflict); the
    year's figures and history as that transaction leaves them."""

    async def work() -> BudgetState:
        async with ctx.pool.acquire() as conn, conn.transaction():
            db = Store(conn)
            await change_budget(
                db,
                fiscal_year=fiscal_year,
                amount_won=amount_won,
                note=note,
                previous_amount_won=previous_amount_won,
                set_by=staff.label,
                request_id=staff.request_id,
                now=ctx.now(),
            )
            return await budget_state(db, fiscal_year)

    state = await retry_conflicts(work)
    log.info("budget set", extra={"fiscal_year": fiscal_year, "total_won": state.figures.total_won})
    return state


async def change_budget(
    db: Store,
    *,
    fiscal_year: int,
    amount_won: int,
    note: str,
    previous_amount_won: int | None,
    set_by: str,
    request_id: str | None,
    now: datetime,
) -> ledger.BudgetFigures:
    """Make the fiscal year's appropriation `amount_won` by posting the difference (never
    an overwrite). A cut cannot take money already reserved, accrued or paid."""
    await db.ensure_budget_row(fiscal_year, now)
    await db.lock_budget(fiscal_year)
    figures = ledger.budget_figures(fiscal_year, await db.year_balances(fiscal_year))
    if previous_amount_won is not None and previous_amount_won != figures.total_won:
        raise Problem(
            409,
            "budget_changed",
            f"the {fiscal_year} budget is {won(figures.total_won)} won, not"
            f" {won(previous_amount_won)} won: someone changed it; read it again",
            extra={"total_won": figures.total_won},
        )
    delta_won = amount_won - figures.total_won
    if delta_won < 0 and -delta_won > figures.available_won:
        raise Problem(
            409,
            "budget_below_commitments",
            f"cutting the {fiscal_year} budget to {won(amount_won)} won would take"
            f" {won(-delta_won)} won, but only {won(figures.available_won)} won is neither"
            " reserved, accrued nor paid",
            extra={"available_won": figures.available_won},
        )
    txn = ledger.budget_change(
        fiscal_year,
        period_within_year(now, fiscal_year),
        delta_won,
        figures.unfunded_won,
        f"budget {fiscal_year}: {won(figures.total_won)} -> {won(amount_won)} won. {note}",
    )
    if txn is None:
        return figures
    cause = uuid.uuid4()
    txn_id = await db.post(txn, source_event_id=cause, occurred_at=now, posted_at=now)
    await db.insert_budget_change(
        fiscal_year=fiscal_year,
        transaction_id=txn_id,
        previous_total_won=figures.total_won,
        new_total_won=amount_won,
        note=note,
        set_by=set_by,
        request_id=request_id,
        set_at=now,
    )
    return ledger.budget_figures(fiscal_year, await db.year_balances(fiscal_year))

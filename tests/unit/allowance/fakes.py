"""An in-memory stand-in for `allowance.store.Store`, for the saga and payout use cases.

It keeps what those flows read and write — reservations, attendance state, payout lines,
citizen months, balances per (account, fiscal year, party), the outbox — in dicts, and
posts ledger transactions the way the database trigger does (each leg onto its account's
balance). Locks are no-ops: one test runs one use case at a time. Methods the flows do not
call are not overridden, so a use case that starts using one fails loudly here.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeVar

from allowance.domain import ledger, policy
from allowance.domain.calendar import Period
from allowance.domain.ledger import ACCOUNTS, Account, LedgerTransaction
from allowance.domain.money import MonthTotals
from allowance.store import AttendanceState, PaidLine, PayoutLine, Reservation, Store

from shared.events import Event

E = TypeVar("E", bound=Event)


@dataclass(frozen=True)
class Emitted:
    event: Event
    event_id: uuid.UUID


@dataclass(frozen=True)
class Posted:
    txn: LedgerTransaction
    source_event_id: uuid.UUID


class FakeStore(Store):
    def __init__(self, caps: policy.CapTable | None = None) -> None:
        self.reservations: dict[str, Reservation] = {}
        self.reject_reasons: dict[str, str | None] = {}
        self.attendance: dict[str, AttendanceState] = {}
        self.lines: dict[int, PayoutLine] = {}
        self.months: dict[tuple[str, Period], MonthTotals] = {}
        self.balances: dict[tuple[str, int, str], int] = defaultdict(int)
        self.budgets: set[int] = set()
        self.posted: list[Posted] = []
        self.outbox: list[Emitted] = []
        self.closed: set[Period] = set()
        self.caps = caps or policy.CapTable(policy.SEED_CAPS)
        self.citizens: set[str] = set()
        self.places: dict[str, tuple[str, str, str, str, str]] = {}

    # --- the test's own set-up and reads ---------------------------------------------------

    async def know_citizens(self, citizen_ids: Sequence[str], seen_in: str, at: datetime) -> None:
        self.citizens.update(citizen_ids)

    def fund(self, fiscal_year: int, amount_won: int) -> None:
        """Appropriate a budget, as `PUT /v1/admin/budget` would post it."""
        self.budgets.add(fiscal_year)
        txn = ledger.budget_change(fiscal_year, Period(fiscal_year, 1), amount_won, 0, "fund")
        assert txn is not None
        self._apply(txn)

    def events(self, kind: type[E]) -> list[E]:
        return [e.event for e in self.outbox if isinstance(e.event, kind)]

    def figures(self, fiscal_year: int) -> ledger.BudgetFigures:
        by_account: dict[str, int] = defaultdict(int)
        for (account, year, _party), won in self.balances.items():
            if year == fiscal_year:
                by_account[account] += won
        return ledger.budget_figures(fiscal_year, by_account)

    def _apply(self, txn: LedgerTransaction) -> None:
        for leg in txn.legs:
            kind = ACCOUNTS[leg.account].party
            party = {"none": "", "posting": leg.posting_id, "citizen": leg.citizen_id}[kind]
            self.balances[(leg.account.value, txn.fiscal_year, party or "")] += leg.amount_won

    # --- policy --------------------------------------------------------------------------

    async def rate_table(self) -> policy.RateTable:
        return policy.RateTable(policy.SEED_RATES, version=1)

    async def minimum_wage_table(self) -> policy.MinimumWageTable:
        return policy.MinimumWageTable(policy.SEED_MINIMUM_WAGES, version=1)

    async def cap_table(self) -> policy.CapTable:
        return self.caps

    # --- ledger and budget ---------------------------------------------------------------

    async def post(
        self,
        txn: LedgerTransaction,
        *,
        source_event_id: uuid.UUID,
        occurred_at: datetime,
        posted_at: datetime,
    ) -> int:
        self.posted.append(Posted(txn, source_event_id))
        self._apply(txn)
        return len(self.posted)

    async def lock_budget(self, fiscal_year: int) -> bool:
        return fiscal_year in self.budgets

    async def available_won(self, fiscal_year: int) -> int:
        return -self.balances[(Account.BUDGET_AVAILABLE.value, fiscal_year, "")]

    async def reserved_won(self, fiscal_year: int, posting_id: str) -> int:
        return -self.balances[(Account.BUDGET_RESERVED.value, fiscal_year, posting_id)]

    async def emit(
        self, event: Event, *, producer: str, occurred_at: datetime, event_id: uuid.UUID
    ) -> None:
        if any(e.event_id == event_id for e in self.outbox):
            raise AssertionError(f"event id {event_id} emitted twice (the outbox refuses it)")
        self.outbox.append(Emitted(event, event_id))

    # --- reservations --------------------------------------------------------------------

    async def remember_place(
        self,
        posting_id: str,
        facility_id: str,
        facility_name: str,
        facility_dong: str,
        selection: str,
        title: str,
    ) -> None:
        """The outcome reports' place of a posting (not what these flows test)."""
        self.places[posting_id] = (facility_id, facility_name, facility_dong, selection, title)

    async def reservation(self, posting_id: str, *, for_update: bool = False) -> Reservation | None:
        return self.reservations.get(posting_id)

    async def insert_reservation(
        self, r: Reservation, *, reject_reason: str | None, now: datetime
    ) -> bool:
        if r.posting_id in self.reservations:
            return False
        self.reservations[r.posting_id] = r
        self.reject_reasons[r.posting_id] = reject_reason
        return True

    async def update_reservation(self, r: Reservation, now: datetime) -> None:
        self.reservations[r.posting_id] = r

    # --- attendance ----------------------------------------------------------------------

    async def attendance_state(self, attendance_id: str) -> AttendanceState | None:
        return self.attendance.get(attendance_id)

    async def save_attendance_state(self, s: AttendanceState, now: datetime) -> None:
        self.attendance[s.attendance_id] = s

    async def period_status(self, period: Period, lock: Literal["share", "update"]) -> str:
        return "closed" if period in self.closed else "open"

    async def lock_citizen_month(self, citizen_id: str, month: Period) -> MonthTotals:
        return self.months.get((citizen_id, month), MonthTotals())

    async def save_citizen_month(self, citizen_id: str, month: Period, totals: MonthTotals) -> None:
        self.months[(citizen_id, month)] = totals

    async def insert_payout_line(self, line: PayoutLine) -> int:
        line_id = len(self.lines) + 1
        self.lines[line_id] = line
        return line_id

    async def payout_line(self, line_id: int) -> PaidLine:
        line = self.lines[line_id]
        return PaidLine(
            id=line_id,
            attendance_revision=line.attendance_revision,
            booking_id=line.booking_id,
            shift_starts_at=line.shift_starts_at,
            shift_period=line.shift_period,
            iso_week=line.iso_week,
            fiscal_year=line.fiscal_year,
            hourly_rate_won=line.hourly_rate_won,
            minutes_paid=line.minutes_paid,
            gross_won=line.gross_won,
        )

"""SQL of the allowance schema: plain, parametrised statements with asyncpg.

Every `Store` method runs on the store's connection, inside the caller's transaction:
locking order and transaction boundaries are decided by `usecases` (reads by `views`).
Lock order, everywhere: reservation row → attendance row → statement month (share) →
citizen month → fiscal-year budget row → balances (by the ledger trigger, in key order).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, TypeVar

import asyncpg
import orjson

from allowance.domain import chain, outcomes, policy, withholding
from allowance.domain.calendar import Period
from allowance.domain.citizens import CITIZEN_ID_PATTERN
from allowance.domain.ledger import Account, LedgerTransaction
from allowance.domain.money import MonthTotals
from shared import outbox
from shared.db import Connection
from shared.events import Event

PolicyKind = Literal["rates", "minimum_wages", "caps", "withholding"]
ChainName = Literal["ledger", "payee_access", "approvals"]

# --- policy ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyVersion:
    id: int
    kind: str
    body: list[dict[str, Any]]
    set_at: datetime
    set_by: str
    note: str


# --- ledger ------------------------------------------------------------------------------

_INSERT_HEADERS = """
INSERT INTO ledger_transactions
    (id, kind, fiscal_year, period, source_event_id, occurred_at, posted_at, memo,
     chain_seq, prev_hash, row_hash)
OVERRIDING SYSTEM VALUE
SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[], $5::uuid[],
                     $6::timestamptz[], $7::timestamptz[], $8::text[],
                     $9::bigint[], $10::bytea[], $11::bytea[])
"""

_INSERT_ENTRIES = """
INSERT INTO ledger_entries
    (transaction_id, account, citizen_id, posting_id, amount_won, leg, source_event_id)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                     $6::text[], $7::uuid[])
"""


@dataclass(frozen=True)
class ToPost:
    """A transaction with its cause and times, ready to be written."""

    txn: LedgerTransaction
    source_event_id: uuid.UUID
    occurred_at: datetime
    posted_at: datetime


# --- reservations ------------------------------------------------------------------------


@dataclass(frozen=True)
class Reservation:
    posting_id: str
    reservation_id: str
    facility_id: str
    status: str
    fiscal_year: int
    hourly_rate_won: int | None
    rate_policy_version: int | None
    capacity: int
    scheduled_minutes: int
    seat_share_won: int | None
    amount_won: int
    starts_at: datetime
    ends_at: datetime
    revision: int

    @property
    def active(self) -> bool:
        return self.status == "active"


_RESERVATION_COLUMNS = (
    "posting_id, reservation_id, facility_id, status, fiscal_year, hourly_rate_won,"
    " rate_policy_version, capacity, scheduled_minutes, seat_share_won, amount_won,"
    " starts_at, ends_at, revision"
)


# --- attendance and payout lines ---------------------------------------------------------


@dataclass(frozen=True)
class AttendanceState:
    attendance_id: str
    posting_id: str
    booking_id: str
    citizen_id: str
    revision: int
    status: str
    minutes_paid: int
    gross_won: int
    shift_starts_at: datetime
    line_id: int | None


@dataclass(frozen=True)
class PayoutLine:
    transaction_id: int
    kind: Literal["accrual", "reversal"]
    attendance_id: str
    attendance_revision: int
    posting_id: str
    booking_id: str
    citizen_id: str
    shift_starts_at: datetime
    shift_period: str
    iso_week: str
    period: str
    fiscal_year: int
    hourly_rate_won: int
    minutes_paid: int
    gross_won: int
    payable_won: int
    capped_won: int
    cap_won: int
    reverses_line_id: int | None
    source_event_id: uuid.UUID
    created_at: datetime


# --- periods -----------------------------------------------------------------------------


_LINES_BY_CITIZEN = """
SELECT citizen_id,
       count(*)::int AS lines_count,
       sum(minutes_paid)::bigint AS minutes_paid,
       sum(gross_won)::bigint AS gross_won,
       sum(capped_won)::bigint AS capped_won,
       sum(payable_won)::bigint AS payable_won,
       coalesce(sum(payable_won) FILTER (WHERE adjustment), 0)::bigint AS adjustment_won,
       coalesce(string_agg(DISTINCT shift_period, ',' ORDER BY shift_period)
                FILTER (WHERE adjustment), '') AS adjustment_periods
  FROM payout_lines
 WHERE period = $1
"""


_STATEMENT_COLUMNS = (
    "period, citizen_id, lines_count, minutes_paid, gross_won, capped_won, payable_won,"
    " adjustment_won, adjustment_periods, balance_won, payout_won, carried_forward_won,"
    " held_back, frozen_at"
)


@dataclass(frozen=True)
class CitizenBalance:
    """A citizen's payable (this and earlier months) in one fiscal year, at close."""

    citizen_id: str
    fiscal_year: int
    balance_won: int
    has_payee: bool
    # Of `balance_won`, what stayed payable from months before the one closing: money a
    # previous close held back for missing payee details (a correction for a closed month
    # is stated in the next open month, so it is never in here).
    carried_won: int = 0


def json_body(value: Any) -> str:
    """For logs and memos: compact JSON."""
    return orjson.dumps(value).decode()


# --- ledger reading ----------------------------------------------------------------------

LEDGER_SELECT = """
SELECT e.id, e.transaction_id, t.kind, t.fiscal_year, t.period, t.posted_at, t.occurred_at,
       e.account, e.citizen_id, e.posting_id, e.leg, e.amount_won, e.source_event_id, t.memo
  FROM ledger_entries e
  JOIN ledger_transactions t ON t.id = e.transaction_id
"""


@dataclass(frozen=True)
class LedgerFilter:
    """Which entries a ledger read covers; every part optional."""

    period: str | None = None
    posted_from: datetime | None = None
    posted_before: datetime | None = None
    fiscal_year: int | None = None
    account: str | None = None
    citizen_id: str | None = None
    posting_id: str | None = None

    def key(self) -> str:
        """A fingerprint, so a cursor is only ever used with the filter it was made for."""
        return json_body(
            [
                self.period,
                self.posted_from.isoformat() if self.posted_from else None,
                self.posted_before.isoformat() if self.posted_before else None,
                self.fiscal_year,
                self.account,
                self.citizen_id,
                self.posting_id,
            ]
        )

    def where(self, args: list[Any]) -> str:
        """SQL conditions (always at least `true`), appending their values to `args`."""
        parts = ["true"]

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if self.period is not None:
            parts.append(f"t.period = {arg(self.period)}")
        if self.posted_from is not None:
            parts.append(f"t.posted_at >= {arg(self.posted_from)}")
        if self.posted_before is not None:
            parts.append(f"t.posted_at < {arg(self.posted_before)}")
        if self.fiscal_year is not None:
            parts.append(f"t.fiscal_year = {arg(self.fiscal_year)}")
        if self.account is not None:
            parts.append(f"e.account = {arg(self.account)}")
        if self.citizen_id is not None:
            parts.append(f"e.citizen_id = {arg(self.citizen_id)}")
        if self.posting_id is not None:
            parts.append(f"e.posting_id = {arg(self.posting_id)}")
        return " AND ".join(parts)


def ledger_export_query(flt: LedgerFilter) -> tuple[str, list[Any]]:
    """The whole filtered ledger in entry order (read through a server-side cursor)."""
    args: list[Any] = []
    where = flt.where(args)
    return f"{LEDGER_SELECT} WHERE {where} ORDER BY e.id", args


# --- typed rows (what the store answers; asyncpg Records never leave this module) ---------

RowT = TypeVar("RowT")


def _rows(kind: Callable[..., RowT], records: Sequence[asyncpg.Record]) -> list[RowT]:
    """Each record as a typed row (the columns are the row's fields, by name)."""
    return [kind(**dict(r)) for r in records]


@dataclass(frozen=True)
class TrialBalanceRow:
    account: str
    name_ko: str
    name_en: str
    normal_side: str
    debit_won: int
    credit_won: int
    balance_won: int


@dataclass(frozen=True)
class BudgetChange:
    transaction_id: int
    previous_total_won: int
    new_total_won: int
    note: str
    set_by: str
    set_at: datetime


_PERIOD_COLUMNS = (
    "period, status, closed_at, closed_by, close_id, citizens_count, lines_count,"
    " payable_won, payout_won, payout_count, held_back_count, held_back_won, paid_at,"
    " paid_by, paid_id"
)


@dataclass(frozen=True)
class PeriodRow:
    """A month's close status and, once closed, the facts of its close."""

    period: str
    status: str
    closed_at: datetime | None
    closed_by: str | None
    close_id: uuid.UUID | None
    citizens_count: int | None
    lines_count: int | None
    payable_won: int | None
    payout_won: int | None
    payout_count: int | None
    held_back_count: int | None
    held_back_won: int | None
    paid_at: datetime | None
    paid_by: str | None
    paid_id: uuid.UUID | None

    @property
    def closed(self) -> bool:
        return self.status == "closed"


_PAID_LINE_COLUMNS = (
    "id, attendance_revision, booking_id, shift_starts_at, shift_period, iso_week,"
    " fiscal_year, hourly_rate_won, minutes_paid, gross_won"
)


@dataclass(frozen=True)
class PaidLine:
    """The payout line that pays an attendance record now (what a correction reverses)."""

    id: int
    attendance_revision: int
    booking_id: str
    shift_starts_at: datetime
    shift_period: str
    iso_week: str
    fiscal_year: int
    hourly_rate_won: int
    minutes_paid: int
    gross_won: int


@dataclass(frozen=True)
class StatementRow:
    """A citizen's statement of a month: live (open month; no close figures) or frozen."""

    citizen_id: str
    lines_count: int
    minutes_paid: int
    gross_won: int
    capped_won: int
    payable_won: int
    adjustment_won: int
    adjustment_periods: str | None
    balance_won: int | None = None
    payout_won: int | None = None
    carried_forward_won: int | None = None
    held_back: bool | None = None
    period: str | None = None
    frozen_at: datetime | None = None
    # The close's payout line (the `payouts` table) and the bank's result for it (issue 16):
    # None for an open month, or a closed one that paid the citizen nothing.
    withholding_kind: str | None = None
    payout_gross_won: int | None = None
    income_tax_won: int | None = None
    local_income_tax_won: int | None = None
    failed_carried_in_won: int | None = None
    transfer_won: int | None = None
    transfer_status: str | None = None
    transfer_reason: str | None = None


@dataclass(frozen=True)
class StatementTotalsRow:
    """A month's statements summed (the close figures only for a frozen month)."""

    citizens_count: int
    lines_count: int
    minutes_paid: int
    gross_won: int
    capped_won: int
    payable_won: int
    adjustment_won: int
    balance_won: int | None = None
    payout_won: int | None = None
    carried_forward_won: int | None = None
    held_back_count: int | None = None


@dataclass
class OwedAtClose:
    """What a citizen is owed at a month's close: the payable balance (this and earlier
    months), the part moved into the payout file, and whether the rest is held back for
    missing payee details."""

    citizen_id: str
    balance_won: int = 0
    payout_won: int = 0
    held_back: bool = False
    held_back_won: int = 0


@dataclass(frozen=True)
class HeldBackRow:
    citizen_id: str
    carried_forward_won: int


@dataclass(frozen=True)
class PayeeRow:
    """A payee's masked details (the sealed ones are never read back by this row)."""

    citizen_id: str
    bank_code: str
    account_masked: str
    holder_masked: str
    key_id: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class PayoutFileRow:
    """A closed month's payout with the sealed payee details (None when they vanished)."""

    citizen_id: str
    payout_won: int
    key_id: str | None
    nonce: bytes | None
    ciphertext: bytes | None
    bank_code: str | None
    account_masked: str | None
    holder_masked: str | None


@dataclass(frozen=True)
class LedgerEntryRow:
    id: int
    transaction_id: int
    kind: str
    fiscal_year: int
    period: str
    posted_at: datetime
    occurred_at: datetime
    account: str
    citizen_id: str | None
    posting_id: str | None
    leg: str
    amount_won: int
    source_event_id: uuid.UUID
    memo: str


@dataclass(frozen=True)
class LedgerTotalsRow:
    entries_count: int
    debit_won: int
    credit_won: int


@dataclass(frozen=True)
class PayoutRow:
    """What one citizen is paid by a closed month's payout file (`payouts`)."""

    period: str
    citizen_id: str
    withholding_kind: str
    paid_on: date
    gross_won: int
    taxable_won: int
    income_tax_won: int
    local_tax_won: int
    carried_won: int
    amount_won: int


_PAYOUT_COLUMNS = (
    "period, citizen_id, withholding_kind, paid_on, gross_won, taxable_won, income_tax_won,"
    " local_tax_won, carried_won, amount_won"
)


def _payout_tuple(r: PayoutRow) -> tuple[Any, ...]:
    return (
        r.period,
        r.citizen_id,
        r.withholding_kind,
        r.paid_on,
        r.gross_won,
        r.taxable_won,
        r.income_tax_won,
        r.local_tax_won,
        r.carried_won,
        r.amount_won,
    )


@dataclass(frozen=True)
class TransferResultRow:
    """The bank's result for one payout line; a failed one names its reversal."""

    period: str
    citizen_id: str
    status: str
    reason: str
    amount_won: int
    transaction_id: int | None
    result_id: uuid.UUID
    recorded_at: datetime


_RESULT_COLUMNS = (
    "period, citizen_id, status, reason, amount_won, transaction_id, result_id, recorded_at"
)


@dataclass(frozen=True)
class StaffRow:
    """A named finance staff member (the token itself is never stored)."""

    id: str
    name: str
    role: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    revoked_by: str | None


_STAFF_COLUMNS = "id, name, role, created_at, created_by, revoked_at, revoked_by"


@dataclass(frozen=True)
class ApprovalRow:
    """An approval request: what was asked, what it will change, and its decision."""

    id: uuid.UUID
    kind: str
    subject: str
    body: dict[str, Any]
    preview: dict[str, Any]
    status: str
    requested_by: str
    requested_by_name: str | None
    requested_role: str
    requested_at: datetime
    decided_by: str | None
    decided_by_name: str | None
    decided_at: datetime | None
    reason: str | None
    result: dict[str, Any] | None


_APPROVAL_COLUMNS = (
    "id, kind, subject, body, preview, status, requested_by, requested_by_name,"
    " requested_role, requested_at, decided_by, decided_by_name, decided_at, reason, result"
)


@dataclass(frozen=True)
class ApprovalLogRow:
    id: int
    at: datetime
    approval_id: uuid.UUID
    action: str
    kind: str
    subject: str
    actor_role: str
    actor_staff_id: str | None
    detail: str


@dataclass(frozen=True)
class SessionRow:
    """A console session and the staff member it belongs to."""

    staff_id: str
    csrf_token: str
    last_seen_at: datetime
    created_at: datetime
    name: str
    role: str
    revoked_at: datetime | None


@dataclass(frozen=True)
class BurnRow:
    """Won accrued net of reversals in one statement month at one posting's place; the
    place is None for postings consumed before 0011 stored it (no facility name or dong)."""

    period: str
    facility_id: str
    facility_name: str | None
    dong: str | None
    won: int


@dataclass(frozen=True)
class StatementShiftRow:
    """A posting a citizen has payout lines of in a statement month, with its facility
    and title (name None when the posting was consumed before 0011 stored places, title
    None when its place was stored before 0012 and no update has come since)."""

    citizen_id: str
    posting_id: str
    facility_id: str
    facility_name: str | None
    title: str | None


@dataclass(frozen=True)
class AccessLogRow:
    accessed_at: datetime
    actor_role: str
    actor_staff_id: str | None
    citizen_id: str
    action: str
    purpose: str


# The policy tables announced to other services, and where each records its announced
# versions (a fixed map: the table name never comes from input).
AnnouncedTable = Literal["caps", "rates"]
_ANNOUNCEMENTS: dict[AnnouncedTable, str] = {
    "caps": "caps_announcements",
    "rates": "rates_announcements",
}


class Store:
    """All SQL of the allowance schema, on one connection (inside the caller's transaction).

    Why a class rather than module functions: the use cases take their store as a
    parameter, so the saga and payout flows can be tested with an in-memory fake
    (tests/unit/allowance/fakes.py subclasses this and overrides what those flows use)
    without a database. One class, no abstract repository: there is one real
    implementation and one fake.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # --- policy --------------------------------------------------------------------------

    async def latest_policy(self, kind: PolicyKind) -> PolicyVersion | None:
        row = await self.conn.fetchrow(
            "SELECT id, kind, body, set_at, set_by, note FROM policy_versions"
            " WHERE kind = $1 ORDER BY id DESC LIMIT 1",
            kind,
        )
        if row is None:
            return None
        return PolicyVersion(
            row["id"], row["kind"], list(row["body"]), row["set_at"], row["set_by"], row["note"]
        )

    async def insert_policy(
        self,
        kind: PolicyKind,
        body: list[dict[str, Any]],
        *,
        set_at: datetime,
        set_by: str,
        request_id: str | None,
        note: str,
    ) -> int:
        version: int = await self.conn.fetchval(
            "INSERT INTO policy_versions (kind, body, set_at, set_by, request_id, note)"
            " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            kind,
            body,
            set_at,
            set_by,
            request_id,
            note,
        )
        return version

    async def lock_seed(self) -> None:
        """One seeding at a time (two instances starting together)."""
        await self.conn.execute("SELECT pg_advisory_xact_lock(hashtext('allowance:seed-policy'))")

    async def lock_announce(self, table: AnnouncedTable) -> None:
        """One announcement of a policy table at a time (a PUT and a start-up together)."""
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))", f"allowance:{table}-announce"
        )

    async def mark_announced(
        self, table: AnnouncedTable, policy_version: int, now: datetime
    ) -> bool:
        """Record that version `policy_version` of the table was announced (CapsChanged,
        RatesChanged); False if it was already."""
        fresh = await self.conn.fetchval(
            f"INSERT INTO {_ANNOUNCEMENTS[table]} (policy_version, announced_at)"
            " VALUES ($1, $2) ON CONFLICT (policy_version) DO NOTHING RETURNING true",
            policy_version,
            now,
        )
        return bool(fresh)

    async def rate_table(self) -> policy.RateTable:
        found = await self.latest_policy("rates")
        return policy.rates_from_json(found.body, found.id) if found else policy.RateTable(())

    async def minimum_wage_table(self) -> policy.MinimumWageTable:
        found = await self.latest_policy("minimum_wages")
        if found is None:
            return policy.MinimumWageTable(())
        return policy.minimum_wages_from_json(found.body, found.id)

    async def cap_table(self) -> policy.CapTable:
        found = await self.latest_policy("caps")
        if found is None:
            return policy.CapTable(policy.SEED_CAPS)
        return policy.caps_from_json(found.body, found.id)

    async def withholding_table(self) -> withholding.WithholdingTable:
        """The withholding table in force; the seed (`none`) before any was stored."""
        found = await self.latest_policy("withholding")
        if found is None:
            return withholding.SEED_WITHHOLDING
        return withholding.withholding_from_json(found.body, found.id)

    # --- ledger --------------------------------------------------------------------------

    async def post_many(self, items: Sequence[ToPost]) -> list[int]:
        """Write transactions and their entries in two statements (one per table), whatever
        their number: a month close posts one per citizen. Returns the transaction ids."""
        if not items:
            return []
        head = await self.lock_chain_head("ledger")
        ids: list[int] = [
            r["id"]
            for r in await self.conn.fetch(
                "SELECT nextval(pg_get_serial_sequence('ledger_transactions', 'id')) AS id"
                " FROM generate_series(1, $1)",
                len(items),
            )
        ]
        links = chain.append(
            head,
            [
                chain.TransactionFields(
                    txn_id,
                    i.txn.kind.value,
                    i.txn.fiscal_year,
                    str(i.txn.period),
                    i.source_event_id,
                    i.occurred_at,
                    i.posted_at,
                    i.txn.memo[:500],
                    tuple(
                        chain.EntryFields(
                            leg.name,
                            leg.account.value,
                            leg.citizen_id,
                            leg.posting_id,
                            leg.amount_won,
                        )
                        for leg in i.txn.legs
                    ),
                )
                for txn_id, i in zip(ids, items, strict=True)
            ],
        )
        await self.set_chain_head("ledger", links[-1])
        await self.conn.execute(
            _INSERT_HEADERS,
            ids,
            [i.txn.kind.value for i in items],
            [i.txn.fiscal_year for i in items],
            [str(i.txn.period) for i in items],
            [i.source_event_id for i in items],
            [i.occurred_at for i in items],
            [i.posted_at for i in items],
            [i.txn.memo[:500] for i in items],
            [h.seq for h in links],
            [prev.hash for prev in (head, *links[:-1])],
            [h.hash for h in links],
        )
        cols: tuple[list[Any], ...] = ([], [], [], [], [], [], [])
        for txn_id, item in zip(ids, items, strict=True):
            for leg in item.txn.legs:
                for col, value in zip(
                    cols,
                    (
                        txn_id,
                        leg.account.value,
                        leg.citizen_id,
                        leg.posting_id,
                        leg.amount_won,
                        leg.name,
                        item.source_event_id,
                    ),
                    strict=True,
                ):
                    col.append(value)
        await self.conn.execute(_INSERT_ENTRIES, *cols)
        return ids

    async def post(
        self,
        txn: LedgerTransaction,
        *,
        source_event_id: uuid.UUID,
        occurred_at: datetime,
        posted_at: datetime,
    ) -> int:
        (txn_id,) = await self.post_many([ToPost(txn, source_event_id, occurred_at, posted_at)])
        return txn_id

    async def balance_won(self, account: Account, fiscal_year: int, party: str = "") -> int:
        """The signed (debit-positive) balance of a non-citizen account, or of a posting's
        reservation (`party` = posting id)."""
        value = await self.conn.fetchval(
            "SELECT coalesce(sum(balance_won), 0) FROM account_balances"
            " WHERE account = $1 AND fiscal_year = $2 AND party = $3",
            account.value,
            fiscal_year,
            party,
        )
        return int(value)

    async def available_won(self, fiscal_year: int) -> int:
        return -await self.balance_won(Account.BUDGET_AVAILABLE, fiscal_year)

    async def unfunded_won(self, fiscal_year: int) -> int:
        return await self.balance_won(Account.BUDGET_UNFUNDED, fiscal_year)

    async def reserved_won(self, fiscal_year: int, posting_id: str) -> int:
        return -await self.balance_won(Account.BUDGET_RESERVED, fiscal_year, posting_id)

    async def year_balances(self, fiscal_year: int) -> dict[str, int]:
        rows = await self.conn.fetch(
            "SELECT account, sum(balance_won) AS balance FROM account_balances"
            " WHERE fiscal_year = $1 GROUP BY account",
            fiscal_year,
        )
        return {r["account"]: int(r["balance"]) for r in rows}

    async def year_balances_as_of(self, fiscal_year: int, as_of: datetime) -> dict[str, int]:
        """Balances from the entries alone, counting transactions posted up to `as_of`."""
        rows = await self.conn.fetch(
            "SELECT e.account, sum(e.amount_won) AS balance FROM ledger_entries e"
            " JOIN ledger_transactions t ON t.id = e.transaction_id"
            " WHERE t.fiscal_year = $1 AND t.posted_at <= $2 GROUP BY e.account",
            fiscal_year,
            as_of,
        )
        return {r["account"]: int(r["balance"]) for r in rows}

    async def trial_balance(
        self, fiscal_year: int | None, as_of: datetime | None
    ) -> list[TrialBalanceRow]:
        """Per account: debits, credits and balance, from the entries alone."""
        rows = await self.conn.fetch(
            """
            SELECT a.code AS account, a.name_ko, a.name_en, a.normal_side,
                   coalesce(sum(e.amount_won) FILTER (WHERE e.amount_won > 0), 0) AS debit_won,
                   coalesce(-sum(e.amount_won) FILTER (WHERE e.amount_won < 0), 0) AS credit_won,
                   coalesce(sum(e.amount_won), 0) AS balance_won
              FROM ledger_accounts a
              LEFT JOIN (SELECT e.account, e.amount_won FROM ledger_entries e
                           JOIN ledger_transactions t ON t.id = e.transaction_id
                          WHERE ($1::int IS NULL OR t.fiscal_year = $1)
                            AND ($2::timestamptz IS NULL OR t.posted_at <= $2)) e
                ON e.account = a.code
             GROUP BY a.code, a.name_ko, a.name_en, a.normal_side
             ORDER BY a.code
            """,
            fiscal_year,
            as_of,
        )
        return _rows(TrialBalanceRow, rows)

    # --- budgets -------------------------------------------------------------------------

    async def lock_budget(self, fiscal_year: int) -> bool:
        """Lock the fiscal year's budget row (reservations of a year are decided one at a time);
        False when the year has no budget."""
        found = await self.conn.fetchval(
            "SELECT true FROM budgets WHERE fiscal_year = $1 FOR UPDATE", fiscal_year
        )
        return bool(found)

    async def ensure_budget_row(self, fiscal_year: int, now: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO budgets (fiscal_year, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            fiscal_year,
            now,
        )

    async def budget_years(self) -> list[int]:
        return [r["fiscal_year"] for r in await self.conn.fetch("SELECT fiscal_year FROM budgets")]

    async def insert_budget_change(
        self,
        *,
        fiscal_year: int,
        transaction_id: int,
        previous_total_won: int,
        new_total_won: int,
        note: str,
        set_by: str,
        request_id: str | None,
        set_at: datetime,
    ) -> None:
        await self.conn.execute(
            "INSERT INTO budget_changes (fiscal_year, transaction_id, previous_total_won,"
            " new_total_won, note, set_by, request_id, set_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
            fiscal_year,
            transaction_id,
            previous_total_won,
            new_total_won,
            note,
            set_by,
            request_id,
            set_at,
        )

    async def budget_history(self, fiscal_year: int) -> list[BudgetChange]:
        rows = await self.conn.fetch(
            "SELECT transaction_id, previous_total_won, new_total_won, note, set_by, set_at"
            " FROM budget_changes WHERE fiscal_year = $1 ORDER BY id",
            fiscal_year,
        )
        return _rows(BudgetChange, rows)

    # --- reservations --------------------------------------------------------------------

    async def reservation(self, posting_id: str, *, for_update: bool = False) -> Reservation | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self.conn.fetchrow(
            f"SELECT {_RESERVATION_COLUMNS} FROM reservations WHERE posting_id = $1{lock}",
            posting_id,
        )
        return Reservation(**dict(row)) if row else None

    async def insert_reservation(
        self, r: Reservation, *, reject_reason: str | None, now: datetime
    ) -> bool:
        """Insert; False when the posting already has one (a redelivered submission)."""
        done = await self.conn.fetchval(
            f"INSERT INTO reservations ({_RESERVATION_COLUMNS}, reject_reason, created_at,"
            " updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$16)"
            " ON CONFLICT (posting_id) DO NOTHING RETURNING true",
            r.posting_id,
            r.reservation_id,
            r.facility_id,
            r.status,
            r.fiscal_year,
            r.hourly_rate_won,
            r.rate_policy_version,
            r.capacity,
            r.scheduled_minutes,
            r.seat_share_won,
            r.amount_won,
            r.starts_at,
            r.ends_at,
            r.revision,
            reject_reason,
            now,
        )
        return bool(done)

    async def update_reservation(self, r: Reservation, now: datetime) -> None:
        await self.conn.execute(
            "UPDATE reservations SET status = $2, fiscal_year = $3, hourly_rate_won = $4,"
            " rate_policy_version = $5, capacity = $6, scheduled_minutes = $7,"
            " seat_share_won = $8, amount_won = $9, starts_at = $10, ends_at = $11,"
            " revision = $12, updated_at = $13 WHERE posting_id = $1",
            r.posting_id,
            r.status,
            r.fiscal_year,
            r.hourly_rate_won,
            r.rate_policy_version,
            r.capacity,
            r.scheduled_minutes,
            r.seat_share_won,
            r.amount_won,
            r.starts_at,
            r.ends_at,
            r.revision,
            now,
        )

    # --- attendance and payout lines -----------------------------------------------------

    async def attendance_state(self, attendance_id: str) -> AttendanceState | None:
        row = await self.conn.fetchrow(
            "SELECT attendance_id, posting_id, booking_id, citizen_id, revision, status,"
            " minutes_paid, gross_won, shift_starts_at, line_id FROM attendance_payouts"
            " WHERE attendance_id = $1 FOR UPDATE",
            attendance_id,
        )
        return AttendanceState(**dict(row)) if row else None

    async def save_attendance_state(self, s: AttendanceState, now: datetime) -> None:
        await self.conn.execute(
            "INSERT INTO attendance_payouts (attendance_id, posting_id, booking_id, citizen_id,"
            " revision, status, minutes_paid, gross_won, shift_starts_at, line_id, updated_at)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)"
            " ON CONFLICT (attendance_id) DO UPDATE SET revision = EXCLUDED.revision,"
            " status = EXCLUDED.status, minutes_paid = EXCLUDED.minutes_paid,"
            " gross_won = EXCLUDED.gross_won, line_id = EXCLUDED.line_id,"
            " updated_at = EXCLUDED.updated_at",
            s.attendance_id,
            s.posting_id,
            s.booking_id,
            s.citizen_id,
            s.revision,
            s.status,
            s.minutes_paid,
            s.gross_won,
            s.shift_starts_at,
            s.line_id,
            now,
        )

    async def lock_citizen_month(self, citizen_id: str, month: Period) -> MonthTotals:
        await self.conn.execute(
            "INSERT INTO citizen_months (citizen_id, month) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            citizen_id,
            str(month),
        )
        row = await self.conn.fetchrow(
            "SELECT minutes_paid, gross_won, payable_won, capped_won FROM citizen_months"
            " WHERE citizen_id = $1 AND month = $2 FOR UPDATE",
            citizen_id,
            str(month),
        )
        assert row is not None
        return MonthTotals(
            int(row["minutes_paid"]),
            int(row["gross_won"]),
            int(row["payable_won"]),
            int(row["capped_won"]),
        )

    async def save_citizen_month(self, citizen_id: str, month: Period, totals: MonthTotals) -> None:
        await self.conn.execute(
            "UPDATE citizen_months SET minutes_paid = $3, gross_won = $4, payable_won = $5,"
            " capped_won = $6 WHERE citizen_id = $1 AND month = $2",
            citizen_id,
            str(month),
            totals.minutes_paid,
            totals.gross_won,
            totals.payable_won,
            totals.capped_won,
        )

    async def insert_payout_line(self, line: PayoutLine) -> int:
        line_id: int = await self.conn.fetchval(
            "INSERT INTO payout_lines (transaction_id, kind, attendance_id, attendance_revision,"
            " posting_id, booking_id, citizen_id, shift_starts_at, shift_period, iso_week, period,"
            " fiscal_year, hourly_rate_won, minutes_paid, gross_won, payable_won, capped_won,"
            " cap_won, reverses_line_id, source_event_id, created_at) VALUES ($1,$2,$3,$4,$5,$6,"
            "$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21) RETURNING id",
            line.transaction_id,
            line.kind,
            line.attendance_id,
            line.attendance_revision,
            line.posting_id,
            line.booking_id,
            line.citizen_id,
            line.shift_starts_at,
            line.shift_period,
            line.iso_week,
            line.period,
            line.fiscal_year,
            line.hourly_rate_won,
            line.minutes_paid,
            line.gross_won,
            line.payable_won,
            line.capped_won,
            line.cap_won,
            line.reverses_line_id,
            line.source_event_id,
            line.created_at,
        )
        return line_id

    async def payout_line(self, line_id: int) -> PaidLine:
        row = await self.conn.fetchrow(
            f"SELECT {_PAID_LINE_COLUMNS} FROM payout_lines WHERE id = $1", line_id
        )
        assert row is not None
        return PaidLine(**dict(row))

    # --- periods and statements ----------------------------------------------------------

    async def period_status(self, period: Period, lock: Literal["share", "update"]) -> str:
        """The month's status, holding a lock on it until the transaction ends: `share` while
        an accrual is written into it (many at once), `update` to close it (alone)."""
        await self.conn.execute(
            "INSERT INTO periods (period) VALUES ($1) ON CONFLICT DO NOTHING", str(period)
        )
        clause = "FOR SHARE" if lock == "share" else "FOR UPDATE"
        status: str = await self.conn.fetchval(
            f"SELECT status FROM periods WHERE period = $1 {clause}", str(period)
        )
        return status

    async def period_row(self, period: Period) -> PeriodRow | None:
        row = await self.conn.fetchrow(
            f"SELECT {_PERIOD_COLUMNS} FROM periods WHERE period = $1", str(period)
        )
        return PeriodRow(**dict(row)) if row else None

    async def periods(self, first: Period, last: Period) -> list[PeriodRow]:
        rows = await self.conn.fetch(
            f"SELECT {_PERIOD_COLUMNS} FROM periods WHERE period BETWEEN $1 AND $2 ORDER BY period",
            str(first),
            str(last),
        )
        return _rows(PeriodRow, rows)

    async def live_statements(
        self, period: Period, after_citizen: str | None, limit: int | None
    ) -> list[StatementRow]:
        """An open month's statement rows, computed from the payout lines now."""
        sql = _LINES_BY_CITIZEN + " AND ($2::text IS NULL OR citizen_id > $2)"
        sql += " GROUP BY citizen_id ORDER BY citizen_id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = await self.conn.fetch(sql, str(period), after_citizen)
        return _rows(StatementRow, rows)

    async def live_totals(self, period: Period) -> StatementTotalsRow:
        row = await self.conn.fetchrow(
            "SELECT count(DISTINCT citizen_id)::int AS citizens_count,"
            " count(*)::int AS lines_count,"
            " coalesce(sum(minutes_paid), 0)::bigint AS minutes_paid,"
            " coalesce(sum(gross_won), 0)::bigint AS gross_won,"
            " coalesce(sum(capped_won), 0)::bigint AS capped_won,"
            " coalesce(sum(payable_won), 0)::bigint AS payable_won,"
            " coalesce(sum(payable_won) FILTER (WHERE adjustment), 0)::bigint AS adjustment_won"
            " FROM payout_lines WHERE period = $1",
            str(period),
        )
        assert row is not None
        return StatementTotalsRow(**dict(row))

    async def frozen_statements(
        self, period: Period, after_citizen: str | None, limit: int | None
    ) -> list[StatementRow]:
        sql = (
            # A citizen whose only payout of the month is an earlier failed transfer paid
            # again has no frozen statement: the payout line gives them one (issue 16).
            """
            SELECT $1::text AS period, coalesce(s.citizen_id, p.citizen_id) AS citizen_id,
                   coalesce(s.lines_count, 0) AS lines_count,
                   coalesce(s.minutes_paid, 0) AS minutes_paid,
                   coalesce(s.gross_won, 0) AS gross_won, coalesce(s.capped_won, 0) AS capped_won,
                   coalesce(s.payable_won, 0) AS payable_won,
                   coalesce(s.adjustment_won, 0) AS adjustment_won, s.adjustment_periods,
                   coalesce(s.balance_won, 0) AS balance_won,
                   coalesce(s.payout_won, 0) AS payout_won,
                   coalesce(s.carried_forward_won, 0) AS carried_forward_won,
                   coalesce(s.held_back, false) AS held_back, s.frozen_at,
                   p.withholding_kind, p.gross_won AS payout_gross_won, p.income_tax_won,
                   p.local_tax_won AS local_income_tax_won,
                   p.carried_won AS failed_carried_in_won, p.amount_won AS transfer_won,
                   t.status AS transfer_status, t.reason AS transfer_reason
              FROM (SELECT * FROM statements WHERE period = $1) s
              FULL JOIN (SELECT * FROM payouts WHERE period = $1) p
                ON p.citizen_id = s.citizen_id
              LEFT JOIN transfer_results t
                ON t.period = $1 AND t.citizen_id = coalesce(s.citizen_id, p.citizen_id)
             WHERE $2::text IS NULL OR coalesce(s.citizen_id, p.citizen_id) > $2
             ORDER BY 2
            """
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = await self.conn.fetch(sql, str(period), after_citizen)
        return _rows(StatementRow, rows)

    async def frozen_totals(self, period: Period) -> StatementTotalsRow:
        row = await self.conn.fetchrow(
            "SELECT count(*)::int AS citizens_count,"
            " coalesce(sum(lines_count), 0)::bigint AS lines_count,"
            " coalesce(sum(minutes_paid), 0)::bigint AS minutes_paid,"
            " coalesce(sum(gross_won), 0)::bigint AS gross_won,"
            " coalesce(sum(capped_won), 0)::bigint AS capped_won,"
            " coalesce(sum(payable_won), 0)::bigint AS payable_won,"
            " coalesce(sum(adjustment_won), 0)::bigint AS adjustment_won,"
            " coalesce(sum(balance_won), 0)::bigint AS balance_won,"
            " coalesce(sum(payout_won), 0)::bigint AS payout_won,"
            " coalesce(sum(carried_forward_won), 0)::bigint AS carried_forward_won,"
            " count(*) FILTER (WHERE held_back)::int AS held_back_count"
            " FROM statements WHERE period = $1",
            str(period),
        )
        assert row is not None
        return StatementTotalsRow(**dict(row))

    async def payable_balances_through(self, period: Period) -> list[CitizenBalance]:
        """What each citizen is owed at the close of `period`, per fiscal year."""
        return await self._owed_through(period, "allowance_payable")

    async def _owed_through(self, period: Period, account: str) -> list[CitizenBalance]:
        """A citizen account's balance through `period`, less what a later month's close
        already moved out of it: months closed out of order (a forgotten October closed
        after November) must not pay October's money a second time. In order, no later
        month is closed and this is the plain balance through the month."""
        rows = await self.conn.fetch(
            """
            WITH later_moves AS (
                SELECT e.citizen_id AS party, t.fiscal_year, sum(e.amount_won) AS moved_won
                  FROM periods c
                  JOIN ledger_transactions t ON t.source_event_id = c.close_id
                  JOIN ledger_entries e ON e.transaction_id = t.id
                 WHERE c.period > $1 AND c.status = 'closed' AND e.account = $2
                 GROUP BY e.citizen_id, t.fiscal_year
            ), through AS (
                SELECT b.party, b.fiscal_year, sum(b.balance_won) AS balance_won,
                       coalesce(sum(b.balance_won) FILTER (WHERE b.period < $1), 0) AS before_won
                  FROM account_balances b
                 WHERE b.account = $2 AND b.period <= $1
                 GROUP BY b.party, b.fiscal_year
            )
            SELECT b.party AS citizen_id, b.fiscal_year,
                   -(b.balance_won + coalesce(m.moved_won, 0)) AS balance_won,
                   -(b.before_won + coalesce(m.moved_won, 0)) AS carried_won,
                   EXISTS (SELECT 1 FROM payees p WHERE p.citizen_id = b.party) AS has_payee
              FROM through b
              LEFT JOIN later_moves m USING (party, fiscal_year)
             WHERE b.balance_won + coalesce(m.moved_won, 0) <> 0
             ORDER BY b.party, b.fiscal_year
            """,
            str(period),
            account,
        )
        return [
            CitizenBalance(
                r["citizen_id"],
                r["fiscal_year"],
                int(r["balance_won"]),
                r["has_payee"],
                int(r["carried_won"]),
            )
            for r in rows
        ]

    async def payout_due_balances(self, period: Period) -> list[CitizenBalance]:
        """What a closed month moved into payout due and is not marked paid yet."""
        rows = await self.conn.fetch(
            "SELECT party AS citizen_id, fiscal_year, -balance_won AS balance_won"
            " FROM account_balances WHERE account = 'allowance_payout_due' AND period = $1"
            " AND balance_won <> 0 ORDER BY party, fiscal_year",
            str(period),
        )
        return [
            CitizenBalance(r["citizen_id"], r["fiscal_year"], int(r["balance_won"]), True)
            for r in rows
        ]

    async def freeze_statements(
        self,
        period: Period,
        owed: Sequence[OwedAtClose],
        *,
        frozen_at: datetime,
    ) -> None:
        """One set-based statement: the month's lines grouped by citizen, joined with what
        each citizen is owed at close (including earlier months' carried balances)."""
        await self.conn.execute(
            f"""
            INSERT INTO statements ({_STATEMENT_COLUMNS})
            WITH lines AS ({_LINES_BY_CITIZEN} GROUP BY citizen_id),
                 owed AS (SELECT * FROM unnest($2::text[], $3::bigint[], $4::bigint[],
                                               $5::boolean[])
                              AS o(citizen_id, balance_won, payout_won, held_back))
            SELECT $1, coalesce(l.citizen_id, o.citizen_id),
                   coalesce(l.lines_count, 0), coalesce(l.minutes_paid, 0),
                   coalesce(l.gross_won, 0), coalesce(l.capped_won, 0),
                   coalesce(l.payable_won, 0), coalesce(l.adjustment_won, 0),
                   coalesce(l.adjustment_periods, ''),
                   coalesce(o.balance_won, 0), coalesce(o.payout_won, 0),
                   coalesce(o.balance_won, 0) - coalesce(o.payout_won, 0),
                   coalesce(o.held_back, false), $6
              FROM lines l FULL JOIN owed o ON o.citizen_id = l.citizen_id
            """,
            str(period),
            [o.citizen_id for o in owed],
            [o.balance_won for o in owed],
            [o.payout_won for o in owed],
            [o.held_back for o in owed],
            frozen_at,
        )

    async def mark_period_closed(
        self,
        period: Period,
        *,
        closed_at: datetime,
        closed_by: str,
        close_id: uuid.UUID,
    ) -> PeriodRow:
        totals = await self.frozen_totals(period)
        row = await self.conn.fetchrow(
            "UPDATE periods SET status = 'closed', closed_at = $2, closed_by = $3, close_id = $4,"
            " citizens_count = $5, lines_count = $6, payable_won = $7, payout_won = $8,"
            " payout_count = (SELECT count(*) FROM statements"
            "                 WHERE period = $1 AND payout_won > 0),"
            " held_back_count = $9,"
            " held_back_won = (SELECT coalesce(sum(carried_forward_won), 0) FROM statements"
            "                   WHERE period = $1 AND held_back)"
            f" WHERE period = $1 RETURNING {_PERIOD_COLUMNS}",
            str(period),
            closed_at,
            closed_by,
            close_id,
            totals.citizens_count,
            totals.lines_count,
            totals.payable_won,
            totals.payout_won,
            totals.held_back_count,
        )
        assert row is not None
        return PeriodRow(**dict(row))

    async def mark_period_paid(
        self, period: Period, *, paid_at: datetime, paid_by: str, paid_id: uuid.UUID
    ) -> PeriodRow:
        row = await self.conn.fetchrow(
            "UPDATE periods SET paid_at = $2, paid_by = $3, paid_id = $4 WHERE period = $1"
            f" RETURNING {_PERIOD_COLUMNS}",
            str(period),
            paid_at,
            paid_by,
            paid_id,
        )
        assert row is not None
        return PeriodRow(**dict(row))

    async def held_back(self, period: Period) -> list[HeldBackRow]:
        rows = await self.conn.fetch(
            "SELECT citizen_id, carried_forward_won FROM statements"
            " WHERE period = $1 AND held_back ORDER BY citizen_id",
            str(period),
        )
        return _rows(HeldBackRow, rows)

    # --- payees --------------------------------------------------------------------------

    async def know_citizens(self, citizen_ids: Sequence[str], seen_in: str, at: datetime) -> None:
        """Remember citizens an event named (`citizens`); ids not of the matcher's form
        (`ctz_…`) are not citizens a payee could be stored for, and are skipped."""
        await self.conn.execute(
            "INSERT INTO citizens (citizen_id, first_seen_at, first_seen_in)"
            " SELECT DISTINCT c, $2::timestamptz, $3 FROM unnest($1::text[]) AS c"
            " WHERE c ~ $4 ON CONFLICT (citizen_id) DO NOTHING",
            list(citizen_ids),
            at,
            seen_in,
            CITIZEN_ID_PATTERN,
        )

    async def citizen_known(self, citizen_id: str) -> bool:
        return bool(
            await self.conn.fetchval("SELECT true FROM citizens WHERE citizen_id = $1", citizen_id)
        )

    async def upsert_payee(
        self,
        *,
        citizen_id: str,
        key_id: str,
        nonce: bytes,
        ciphertext: bytes,
        bank_code: str,
        account_masked: str,
        holder_masked: str,
        now: datetime,
        updated_by: str,
        source: Literal["finance", "partner"] = "finance",
        consent_at: datetime | None = None,
        webhook_id: str | None = None,
    ) -> PayeeRow:
        """Store the details in force; the ones they replace are first copied, sealed as
        they are, to `payee_history` (kept for audit, never returned)."""
        await self.conn.execute(
            "INSERT INTO payee_history (citizen_id, key_id, nonce, ciphertext, bank_code,"
            " account_masked, holder_masked, source, consent_at, webhook_id, created_at,"
            " updated_at, updated_by, replaced_at)"
            " SELECT citizen_id, key_id, nonce, ciphertext, bank_code, account_masked,"
            " holder_masked, source, consent_at, webhook_id, created_at, updated_at,"
            " updated_by, $2 FROM payees WHERE citizen_id = $1 FOR UPDATE",
            citizen_id,
            now,
        )
        row = await self.conn.fetchrow(
            "INSERT INTO payees (citizen_id, key_id, nonce, ciphertext, bank_code, account_masked,"
            " holder_masked, created_at, updated_at, updated_by, source, consent_at, webhook_id)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$8,$9,$10,$11,$12)"
            " ON CONFLICT (citizen_id) DO UPDATE SET key_id = EXCLUDED.key_id,"
            " nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext,"
            " bank_code = EXCLUDED.bank_code, account_masked = EXCLUDED.account_masked,"
            " holder_masked = EXCLUDED.holder_masked, updated_at = EXCLUDED.updated_at,"
            " updated_by = EXCLUDED.updated_by, source = EXCLUDED.source,"
            " consent_at = EXCLUDED.consent_at, webhook_id = EXCLUDED.webhook_id"
            " RETURNING citizen_id, bank_code, account_masked, holder_masked, key_id, created_at,"
            " updated_at",
            citizen_id,
            key_id,
            nonce,
            ciphertext,
            bank_code,
            account_masked,
            holder_masked,
            now,
            updated_by,
            source,
            consent_at,
            webhook_id,
        )
        assert row is not None
        return PayeeRow(**dict(row))

    async def payee_masked(self, citizen_id: str) -> PayeeRow | None:
        row = await self.conn.fetchrow(
            "SELECT citizen_id, bank_code, account_masked, holder_masked, key_id, created_at,"
            " updated_at FROM payees WHERE citizen_id = $1",
            citizen_id,
        )
        return PayeeRow(**dict(row)) if row else None

    async def log_payee_access(
        self,
        *,
        citizens: Sequence[str],
        key_ids: Sequence[str],
        action: Literal["write", "decrypt"],
        purpose: str,
        actor_role: str,
        actor_staff_id: str | None,
        stated_staff_id: str | None,
        request_id: str | None,
        client_address: str | None,
        at: datetime,
    ) -> None:
        """One audit row per citizen, written in one statement, appended to the access
        log's hash chain (its head locked until this transaction ends)."""
        if not citizens:
            return
        head = await self.lock_chain_head("payee_access")
        ids: list[int] = [
            r["id"]
            for r in await self.conn.fetch(
                "SELECT nextval(pg_get_serial_sequence('payee_access_log', 'id')) AS id"
                " FROM generate_series(1, $1)",
                len(citizens),
            )
        ]
        rows = [
            chain.AccessFields(
                row_id,
                at,
                actor_role,
                actor_staff_id,
                stated_staff_id,
                request_id,
                client_address,
                citizen,
                action,
                purpose,
                key_id,
            )
            for row_id, citizen, key_id in zip(ids, citizens, key_ids, strict=True)
        ]
        links = chain.append(head, rows)
        await self.set_chain_head("payee_access", links[-1])
        await self.conn.execute(
            "INSERT INTO payee_access_log (id, accessed_at, actor_role, actor_staff_id,"
            " stated_staff_id, request_id, client_address, citizen_id, action, purpose, key_id,"
            " chain_seq, prev_hash, row_hash) OVERRIDING SYSTEM VALUE"
            " SELECT i, $1, $2, $3, $4, $5, $6, c, $7, $8, k, q, p, h"
            " FROM unnest($9::bigint[], $10::text[], $11::text[], $12::bigint[], $13::bytea[],"
            " $14::bytea[]) AS u(i, c, k, q, p, h)",
            at,
            actor_role,
            actor_staff_id,
            stated_staff_id,
            request_id,
            client_address,
            action,
            purpose,
            ids,
            list(citizens),
            list(key_ids),
            [h.seq for h in links],
            [prev.hash for prev in (head, *links[:-1])],
            [h.hash for h in links],
        )

    # --- hash chains ---------------------------------------------------------------------

    async def lock_chain_head(self, name: ChainName) -> chain.Head:
        """The chain's head, locked until this transaction ends: appends to one chain are
        serialized, so two writers never link to the same previous row."""
        row = await self.conn.fetchrow(
            "SELECT seq, hash FROM chain_heads WHERE chain = $1 FOR UPDATE", name
        )
        assert row is not None, f"chain head {name} missing (migration 0004)"
        return chain.Head(int(row["seq"]), bytes(row["hash"]))

    async def set_chain_head(self, name: ChainName, head: chain.Head) -> None:
        await self.conn.execute(
            "UPDATE chain_heads SET seq = $2, hash = $3 WHERE chain = $1", name, head.seq, head.hash
        )

    async def chain_head(self, name: ChainName) -> chain.Head:
        row = await self.conn.fetchrow("SELECT seq, hash FROM chain_heads WHERE chain = $1", name)
        assert row is not None, f"chain head {name} missing (migration 0004)"
        return chain.Head(int(row["seq"]), bytes(row["hash"]))

    async def ledger_links(self, batch_rows: int = 2000) -> AsyncIterator[chain.StoredLink]:
        """Every ledger transaction with its entries, in chain order (unchained rows last,
        by id), through a cursor (the caller holds the transaction)."""
        async for r in self.conn.cursor(
            "SELECT t.id, t.kind, t.fiscal_year, t.period, t.source_event_id, t.occurred_at,"
            " t.posted_at, t.memo, t.chain_seq, t.prev_hash, t.row_hash,"
            " array(SELECT e.leg FROM ledger_entries e WHERE e.transaction_id = t.id"
            " ORDER BY e.id) AS legs,"
            " array(SELECT e.account FROM ledger_entries e WHERE e.transaction_id = t.id"
            " ORDER BY e.id) AS accounts,"
            " array(SELECT e.citizen_id FROM ledger_entries e WHERE e.transaction_id = t.id"
            " ORDER BY e.id) AS citizens,"
            " array(SELECT e.posting_id FROM ledger_entries e WHERE e.transaction_id = t.id"
            " ORDER BY e.id) AS postings,"
            " array(SELECT e.amount_won FROM ledger_entries e WHERE e.transaction_id = t.id"
            " ORDER BY e.id) AS amounts"
            " FROM ledger_transactions t ORDER BY t.chain_seq NULLS LAST, t.id",
            prefetch=batch_rows,
        ):
            entries = tuple(
                chain.EntryFields(*e)
                for e in zip(
                    r["legs"],
                    r["accounts"],
                    r["citizens"],
                    r["postings"],
                    r["amounts"],
                    strict=True,
                )
            )
            yield chain.StoredLink(
                chain.TransactionFields(
                    r["id"],
                    r["kind"],
                    r["fiscal_year"],
                    r["period"],
                    r["source_event_id"],
                    r["occurred_at"],
                    r["posted_at"],
                    r["memo"],
                    entries,
                ),
                r["chain_seq"],
                r["prev_hash"],
                r["row_hash"],
            )

    async def access_links(self, batch_rows: int = 2000) -> AsyncIterator[chain.StoredLink]:
        """Every payee access-log row in chain order (unchained rows last, by id)."""
        async for r in self.conn.cursor(
            "SELECT id, accessed_at, actor_role, actor_staff_id, stated_staff_id, request_id,"
            " client_address, citizen_id, action, purpose, key_id, chain_seq, prev_hash,"
            " row_hash FROM payee_access_log ORDER BY chain_seq NULLS LAST, id",
            prefetch=batch_rows,
        ):
            yield chain.StoredLink(
                chain.AccessFields(
                    r["id"],
                    r["accessed_at"],
                    r["actor_role"],
                    r["actor_staff_id"],
                    r["stated_staff_id"],
                    r["request_id"],
                    r["client_address"],
                    r["citizen_id"],
                    r["action"],
                    r["purpose"],
                    r["key_id"],
                ),
                r["chain_seq"],
                r["prev_hash"],
                r["row_hash"],
            )

    async def payout_file_rows(self, period: Period) -> list[PayoutFileRow]:
        """The closed month's payouts with the sealed payee details (opened by the caller)."""
        # What is transferred: the payouts fixed at close (net of taxes, with carried failed
        # transfers); a month closed before they existed pays its statements' payout.
        rows = await self.conn.fetch(
            "WITH fixed AS (SELECT citizen_id, amount_won AS payout_won FROM payouts"
            "               WHERE period = $1),"
            " paying AS (SELECT * FROM fixed UNION ALL"
            "            SELECT citizen_id, payout_won FROM statements"
            "             WHERE period = $1 AND payout_won > 0"
            "               AND NOT EXISTS (SELECT 1 FROM fixed))"
            " SELECT s.citizen_id, s.payout_won, p.key_id, p.nonce, p.ciphertext, p.bank_code,"
            " p.account_masked, p.holder_masked"
            " FROM paying s LEFT JOIN payees p ON p.citizen_id = s.citizen_id"
            " ORDER BY s.citizen_id",
            str(period),
        )
        return _rows(PayoutFileRow, rows)

    # --- payouts (fixed at close) and the bank's results ---------------------------------

    async def insert_payouts(self, rows: Sequence[PayoutRow]) -> None:
        if not rows:
            return
        await self.conn.execute(
            "INSERT INTO payouts (period, citizen_id, withholding_kind, paid_on, gross_won,"
            " taxable_won, income_tax_won, local_tax_won, carried_won, amount_won)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::date[],"
            " $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[],"
            " $10::bigint[])",
            *(list(col) for col in zip(*(_payout_tuple(r) for r in rows), strict=True)),
        )

    async def payouts(self, period: Period) -> dict[str, PayoutRow]:
        """The month's payouts by citizen (empty for a month closed before they existed)."""
        rows = await self.conn.fetch(
            f"SELECT {_PAYOUT_COLUMNS} FROM payouts WHERE period = $1 ORDER BY citizen_id",
            str(period),
        )
        return {r["citizen_id"]: PayoutRow(**dict(r)) for r in rows}

    async def transfer_failed_balances_through(self, period: Period) -> list[CitizenBalance]:
        """Failed transfers not yet carried, per citizen and fiscal year."""
        return await self._owed_through(period, "allowance_transfer_failed")

    async def citizen_payout_due(self, period: Period, citizen_id: str) -> list[CitizenBalance]:
        """One citizen's payout due of a closed month, per fiscal year (locks the rows)."""
        rows = await self.conn.fetch(
            "SELECT party AS citizen_id, fiscal_year, -balance_won AS balance_won"
            " FROM account_balances WHERE account = 'allowance_payout_due' AND period = $1"
            " AND party = $2 AND balance_won <> 0 ORDER BY fiscal_year FOR UPDATE",
            str(period),
            citizen_id,
        )
        return [
            CitizenBalance(r["citizen_id"], r["fiscal_year"], int(r["balance_won"]), True)
            for r in rows
        ]

    async def transfer_results(self, period: Period) -> dict[str, TransferResultRow]:
        rows = await self.conn.fetch(
            f"SELECT {_RESULT_COLUMNS} FROM transfer_results WHERE period = $1 ORDER BY citizen_id",
            str(period),
        )
        return {r["citizen_id"]: TransferResultRow(**dict(r)) for r in rows}

    async def failed_results_of(self, citizen_ids: Sequence[str]) -> list[TransferResultRow]:
        rows = await self.conn.fetch(
            f"SELECT {_RESULT_COLUMNS} FROM transfer_results WHERE status = 'failed'"
            " AND citizen_id = ANY($1::text[]) ORDER BY period, citizen_id",
            list(citizen_ids),
        )
        return _rows(TransferResultRow, rows)

    async def insert_transfer_result(
        self, row: TransferResultRow, *, recorded_by: str, request_id: str | None
    ) -> None:
        await self.conn.execute(
            "INSERT INTO transfer_results (period, citizen_id, status, reason, amount_won,"
            " transaction_id, result_id, recorded_at, recorded_by, request_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            row.period,
            row.citizen_id,
            row.status,
            row.reason,
            row.amount_won,
            row.transaction_id,
            row.result_id,
            row.recorded_at,
            recorded_by,
            request_id,
        )

    async def lock_period_results(self, period: Period) -> None:
        """One writer of a month's transfer results at a time (and not beside mark-paid)."""
        await self.conn.execute("SELECT 1 FROM periods WHERE period = $1 FOR UPDATE", str(period))

    # --- ledger reading ------------------------------------------------------------------

    async def current_snapshot(self) -> str:
        snapshot: str = await self.conn.fetchval("SELECT pg_current_snapshot()::text")
        return snapshot

    async def ledger_page(
        self, flt: LedgerFilter, snapshot: str, after_id: int, limit: int
    ) -> list[LedgerEntryRow]:
        """Entries after `after_id` that were committed when `snapshot` was taken: pages are
        stable under inserts (a later commit, even with a lower id, never shifts a page)."""
        args: list[Any] = []
        where = flt.where(args)
        args.extend([after_id, snapshot])
        sql = (
            f"{LEDGER_SELECT} WHERE {where} AND e.id > ${len(args) - 1}"
            f" AND pg_visible_in_snapshot(e.tx_id, ${len(args)}::text::pg_snapshot)"
            f" ORDER BY e.id LIMIT {int(limit)}"
        )
        rows = await self.conn.fetch(sql, *args)
        return _rows(LedgerEntryRow, rows)

    async def ledger_totals(self, flt: LedgerFilter, snapshot: str) -> LedgerTotalsRow:
        args: list[Any] = []
        where = flt.where(args)
        args.append(snapshot)
        row = await self.conn.fetchrow(
            "SELECT count(*)::bigint AS entries_count,"
            " coalesce(sum(e.amount_won) FILTER (WHERE e.amount_won > 0), 0)::bigint AS debit_won,"
            " coalesce(-sum(e.amount_won) FILTER (WHERE e.amount_won < 0), 0)::bigint AS credit_won"
            " FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id"
            f" WHERE {where} AND pg_visible_in_snapshot(e.tx_id, ${len(args)}::text::pg_snapshot)",
            *args,
        )
        assert row is not None
        return LedgerTotalsRow(**dict(row))

    # --- session and outbox --------------------------------------------------------------

    async def set_statement_timeout(self, timeout_ms: int) -> None:
        """A longer (or shorter) statement timeout for the rest of this transaction."""
        await self.conn.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")

    async def lock_policy(self) -> None:
        """Policy writes one at a time (a rate table is checked against the minimum wages)."""
        await self.conn.execute("SELECT pg_advisory_xact_lock(hashtext('allowance:policy'))")

    async def ledger_batches(
        self, flt: LedgerFilter, batch_rows: int
    ) -> AsyncIterator[list[LedgerEntryRow]]:
        """The whole filtered ledger in entry order, through a server-side cursor, a batch
        at a time (the caller holds the transaction, so it is one consistent snapshot)."""
        sql, args = ledger_export_query(flt)
        batch: list[LedgerEntryRow] = []
        async for record in self.conn.cursor(sql, *args, prefetch=batch_rows):
            batch.append(LedgerEntryRow(**dict(record)))
            if len(batch) >= batch_rows:
                yield batch
                batch = []
        if batch:
            yield batch

    # --- named staff, approvals, console sessions ----------------------------------------

    async def insert_staff(
        self, *, staff_id: str, name: str, role: str, token_hash: str, at: datetime, by: str
    ) -> StaffRow:
        row = await self.conn.fetchrow(
            "INSERT INTO staff_members (id, name, role, token_hash, created_at, created_by)"
            f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_STAFF_COLUMNS}",
            staff_id,
            name,
            role,
            token_hash,
            at,
            by,
        )
        assert row is not None
        return StaffRow(**dict(row))

    async def staff_by_id(self, staff_id: str) -> tuple[StaffRow, str] | None:
        """The staff member and their token's hash."""
        row = await self.conn.fetchrow(
            f"SELECT {_STAFF_COLUMNS}, token_hash FROM staff_members WHERE id = $1", staff_id
        )
        if row is None:
            return None
        values = dict(row)
        token_hash = values.pop("token_hash")
        return StaffRow(**values), str(token_hash)

    async def staff_list(self) -> list[StaffRow]:
        rows = await self.conn.fetch(
            f"SELECT {_STAFF_COLUMNS} FROM staff_members ORDER BY created_at, id"
        )
        return _rows(StaffRow, rows)

    async def revoke_staff(self, staff_id: str, *, at: datetime, by: str) -> StaffRow | None:
        """Revoke (once: a revoked member keeps the first revocation) and end their sessions."""
        row = await self.conn.fetchrow(
            "UPDATE staff_members SET revoked_at = coalesce(revoked_at, $2),"
            " revoked_by = coalesce(revoked_by, $3) WHERE id = $1"
            f" RETURNING {_STAFF_COLUMNS}",
            staff_id,
            at,
            by,
        )
        await self.conn.execute(
            "UPDATE console_sessions SET ended_at = $2 WHERE staff_id = $1 AND ended_at IS NULL",
            staff_id,
            at,
        )
        return StaffRow(**dict(row)) if row else None

    async def insert_approval(self, a: ApprovalRow) -> None:
        await self.conn.execute(
            f"INSERT INTO approval_requests ({_APPROVAL_COLUMNS})"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            a.id,
            a.kind,
            a.subject,
            a.body,
            a.preview,
            a.status,
            a.requested_by,
            a.requested_by_name,
            a.requested_role,
            a.requested_at,
            a.decided_by,
            a.decided_by_name,
            a.decided_at,
            a.reason,
            a.result,
        )

    async def approval(
        self, approval_id: uuid.UUID, *, for_update: bool = False
    ) -> ApprovalRow | None:
        row = await self.conn.fetchrow(
            f"SELECT {_APPROVAL_COLUMNS} FROM approval_requests WHERE id = $1"
            + (" FOR UPDATE" if for_update else ""),
            approval_id,
        )
        return ApprovalRow(**dict(row)) if row else None

    async def approvals(self, status: str | None, limit: int) -> list[ApprovalRow]:
        rows = await self.conn.fetch(
            f"SELECT {_APPROVAL_COLUMNS} FROM approval_requests"
            " WHERE ($1::text IS NULL OR status = $1) ORDER BY requested_at DESC, id LIMIT $2",
            status,
            limit,
        )
        return _rows(ApprovalRow, rows)

    async def decide_approval(
        self,
        approval_id: uuid.UUID,
        *,
        status: str,
        by: str,
        by_name: str | None,
        at: datetime,
        reason: str | None,
        result: dict[str, Any] | None,
    ) -> ApprovalRow:
        row = await self.conn.fetchrow(
            "UPDATE approval_requests SET status = $2, decided_by = $3, decided_by_name = $4,"
            " decided_at = $5, reason = $6, result = $7 WHERE id = $1 AND status = 'pending'"
            f" RETURNING {_APPROVAL_COLUMNS}",
            approval_id,
            status,
            by,
            by_name,
            at,
            reason,
            result,
        )
        assert row is not None, "decide_approval on a request that is not pending"
        return ApprovalRow(**dict(row))

    async def log_approval(
        self,
        *,
        at: datetime,
        approval_id: uuid.UUID,
        action: str,
        kind: str,
        subject: str,
        actor_role: str,
        actor_staff_id: str | None,
        detail: str,
        request_id: str | None,
    ) -> None:
        """One row of the approvals' audit trail, appended to its hash chain."""
        head = await self.lock_chain_head("approvals")
        row_id = int(
            await self.conn.fetchval("SELECT nextval(pg_get_serial_sequence('approval_log', 'id'))")
        )
        fields = chain.ApprovalFields(
            row_id,
            at,
            approval_id,
            action,
            kind,
            subject,
            actor_role,
            actor_staff_id,
            detail,
            request_id,
        )
        (link,) = chain.append(head, [fields])
        await self.set_chain_head("approvals", link)
        await self.conn.execute(
            "INSERT INTO approval_log (id, at, approval_id, action, kind, subject, actor_role,"
            " actor_staff_id, detail, request_id, chain_seq, prev_hash, row_hash)"
            " OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
            " $12, $13)",
            row_id,
            at,
            approval_id,
            action,
            kind,
            subject,
            actor_role,
            actor_staff_id,
            detail,
            request_id,
            link.seq,
            head.hash,
            link.hash,
        )

    async def approval_log(self, approval_id: uuid.UUID | None, limit: int) -> list[ApprovalLogRow]:
        rows = await self.conn.fetch(
            "SELECT id, at, approval_id, action, kind, subject, actor_role, actor_staff_id,"
            " detail FROM approval_log WHERE ($1::uuid IS NULL OR approval_id = $1)"
            " ORDER BY id DESC LIMIT $2",
            approval_id,
            limit,
        )
        return _rows(ApprovalLogRow, rows)

    async def approval_links(self) -> AsyncIterator[chain.StoredLink]:
        """The approvals' audit trail in chain order (for verification)."""
        async for r in self.conn.cursor(
            "SELECT id, at, approval_id, action, kind, subject, actor_role, actor_staff_id,"
            " detail, request_id, chain_seq, prev_hash, row_hash FROM approval_log"
            " ORDER BY chain_seq"
        ):
            yield chain.StoredLink(
                chain.ApprovalFields(
                    r["id"],
                    r["at"],
                    r["approval_id"],
                    r["action"],
                    r["kind"],
                    r["subject"],
                    r["actor_role"],
                    r["actor_staff_id"],
                    r["detail"],
                    r["request_id"],
                ),
                r["chain_seq"],
                r["prev_hash"],
                r["row_hash"],
            )

    async def insert_session(
        self, *, id_hash: str, staff_id: str, csrf_token: str, at: datetime
    ) -> None:
        await self.conn.execute(
            "INSERT INTO console_sessions (id_hash, staff_id, csrf_token, created_at,"
            " last_seen_at) VALUES ($1, $2, $3, $4, $4)",
            id_hash,
            staff_id,
            csrf_token,
            at,
        )

    async def session(self, id_hash: str) -> SessionRow | None:
        row = await self.conn.fetchrow(
            "SELECT s.staff_id, s.csrf_token, s.last_seen_at, s.created_at, m.name, m.role,"
            " m.revoked_at FROM console_sessions s JOIN staff_members m ON m.id = s.staff_id"
            " WHERE s.id_hash = $1 AND s.ended_at IS NULL",
            id_hash,
        )
        return SessionRow(**dict(row)) if row else None

    async def touch_session(self, id_hash: str, at: datetime) -> None:
        await self.conn.execute(
            "UPDATE console_sessions SET last_seen_at = $2 WHERE id_hash = $1", id_hash, at
        )

    async def end_session(self, id_hash: str, at: datetime) -> None:
        await self.conn.execute(
            "UPDATE console_sessions SET ended_at = $2 WHERE id_hash = $1 AND ended_at IS NULL",
            id_hash,
            at,
        )

    async def burn(self, fiscal_year: int) -> list[BurnRow]:
        """A fiscal year's accruals net of reversals by statement month and place: the
        entries into `allowance_payable` of accruals and reversals, at the posting their
        transaction names (its facility from the reservation, name and dong from the
        posting's stored place)."""
        rows = await self.conn.fetch(
            "SELECT t.period, coalesce(pl.facility_id, r.facility_id, '') AS facility_id,"
            " pl.facility_name, pl.facility_dong AS dong, -sum(e.amount_won)::bigint AS won"
            " FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id"
            " LEFT JOIN LATERAL (SELECT min(p.posting_id) AS posting_id FROM ledger_entries p"
            "   WHERE p.transaction_id = t.id AND p.posting_id IS NOT NULL) pp ON true"
            " LEFT JOIN reservations r ON r.posting_id = pp.posting_id"
            " LEFT JOIN posting_places pl ON pl.posting_id = pp.posting_id"
            " WHERE t.fiscal_year = $1 AND e.account = 'allowance_payable'"
            " AND t.kind IN ('payout_accrual', 'payout_reversal')"
            " GROUP BY 1, 2, 3, 4 ORDER BY 1, 2",
            fiscal_year,
        )
        return _rows(BurnRow, rows)

    async def statement_shifts(
        self, period: Period, citizen_ids: Sequence[str]
    ) -> list[StatementShiftRow]:
        """The postings of the given citizens' payout lines in a statement month, by
        citizen, facility and posting."""
        rows = await self.conn.fetch(
            "SELECT DISTINCT l.citizen_id, l.posting_id,"
            " coalesce(pl.facility_id, r.facility_id, '') AS facility_id,"
            " pl.facility_name, pl.title"
            " FROM payout_lines l LEFT JOIN reservations r USING (posting_id)"
            " LEFT JOIN posting_places pl USING (posting_id)"
            " WHERE l.period = $1 AND l.citizen_id = ANY($2::text[])"
            " ORDER BY l.citizen_id, facility_id, l.posting_id",
            str(period),
            list(citizen_ids),
        )
        return _rows(StatementShiftRow, rows)

    async def access_log_of(self, citizen_id: str | None, limit: int) -> list[AccessLogRow]:
        rows = await self.conn.fetch(
            "SELECT accessed_at, actor_role, actor_staff_id, citizen_id, action, purpose"
            " FROM payee_access_log WHERE ($1::text IS NULL OR citizen_id = $1)"
            " ORDER BY id DESC LIMIT $2",
            citizen_id,
            limit,
        )
        return _rows(AccessLogRow, rows)

    # --- outcome reports (issue 19): facts from consumed events, money from the ledger ---

    async def remember_place(
        self,
        posting_id: str,
        facility_id: str,
        facility_name: str,
        facility_dong: str,
        selection: str,
        title: str,
    ) -> None:
        """Where a posting is and what it is called (its latest submitted or updated
        terms), for the reports and the finance console."""
        await self.conn.execute(
            "INSERT INTO posting_places"
            " (posting_id, facility_id, facility_name, facility_dong, selection, title)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (posting_id) DO UPDATE SET"
            " facility_id = EXCLUDED.facility_id, facility_name = EXCLUDED.facility_name,"
            " facility_dong = EXCLUDED.facility_dong, selection = EXCLUDED.selection,"
            " title = EXCLUDED.title",
            posting_id,
            facility_id,
            facility_name,
            facility_dong,
            selection,
            title,
        )

    async def remember_applicants(self, applicants: Sequence[tuple[str, str]]) -> None:
        """(posting id, citizen id) pairs; one statement for a consumed batch."""
        await self.conn.execute(
            "INSERT INTO posting_applicants (posting_id, citizen_id)"
            " SELECT DISTINCT * FROM unnest($1::text[], $2::text[])"
            " ON CONFLICT DO NOTHING",
            [p for p, _ in applicants],
            [c for _, c in applicants],
        )

    async def insert_draw_outcome(
        self,
        draw: outcomes.DrawFact,
        algorithm: str,
        drawn_at: datetime,
        source_event_id: uuid.UUID,
    ) -> bool:
        """One row per posting's draw; False when it is already there (a redelivery)."""
        done = await self.conn.fetchval(
            "INSERT INTO draw_outcomes (posting_id, algorithm, seats, entrants, winners,"
            " probability_min, probability_max, probability_method, drawn_at, source_event_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            " ON CONFLICT DO NOTHING RETURNING true",
            draw.posting_id,
            algorithm,
            draw.seats,
            list(draw.entrants),
            list(draw.winners),
            draw.probability_min,
            draw.probability_max,
            draw.method,
            drawn_at,
            source_event_id,
        )
        return bool(done)

    async def outcome_facts(self, first: Period, last: Period) -> outcomes.Facts:
        """Everything an outcome report of the months `first`..`last` counts: the postings
        that start in them (not refused for budget) with their places, their attendance,
        their payout lines summed per citizen, applicants and draws; each attended citizen's
        first shift ever; and what the ledger records as transferred in those months. Call
        it inside one read-only repeatable-read transaction so the figures agree."""
        starts, ends = first.starts_at(), last.ends_at()
        in_range = "r.status <> 'rejected' AND r.starts_at >= $1 AND r.starts_at < $2"
        postings = await self.conn.fetch(
            "SELECT r.posting_id, coalesce(p.facility_id, r.facility_id) AS facility_id,"
            " coalesce(p.facility_name, r.facility_id) AS facility_name,"
            " coalesce(p.facility_dong, $3) AS dong,"
            " to_char(r.starts_at AT TIME ZONE 'Asia/Seoul', 'YYYY-MM') AS month,"
            " r.capacity, r.status = 'cancelled' AS cancelled"
            f" FROM reservations r LEFT JOIN posting_places p USING (posting_id) WHERE {in_range}",
            starts,
            ends,
            outcomes.UNKNOWN_GROUP,
        )
        attendance = await self.conn.fetch(
            "SELECT a.posting_id, a.citizen_id, a.status = 'attended' AS attended,"
            " a.minutes_paid FROM attendance_payouts a JOIN reservations r USING (posting_id)"
            f" WHERE {in_range}",
            starts,
            ends,
        )
        payouts = await self.conn.fetch(
            "SELECT l.posting_id, l.citizen_id, sum(l.payable_won)::bigint AS payable_won,"
            " sum(l.capped_won)::bigint AS capped_won"
            " FROM payout_lines l JOIN reservations r USING (posting_id)"
            f" WHERE {in_range} GROUP BY l.posting_id, l.citizen_id",
            starts,
            ends,
        )
        applications = await self.conn.fetch(
            "SELECT a.posting_id, a.citizen_id FROM posting_applicants a"
            f" JOIN reservations r USING (posting_id) WHERE {in_range}",
            starts,
            ends,
        )
        draws = await self.conn.fetch(
            "SELECT d.posting_id, d.seats, d.entrants, d.winners, d.probability_min,"
            " d.probability_max, d.probability_method AS method"
            f" FROM draw_outcomes d JOIN reservations r USING (posting_id) WHERE {in_range}",
            starts,
            ends,
        )
        firsts = await self.conn.fetch(
            "SELECT DISTINCT ON (citizen_id) citizen_id, posting_id FROM attendance_payouts"
            " WHERE status = 'attended' AND citizen_id IN ("
            "   SELECT a.citizen_id FROM attendance_payouts a JOIN reservations r"
            f"   USING (posting_id) WHERE {in_range} AND a.status = 'attended')"
            " ORDER BY citizen_id, shift_starts_at, posting_id",
            starts,
            ends,
        )
        paid = await self.conn.fetch(
            "SELECT t.period, -sum(e.amount_won)::bigint AS paid_won"
            " FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id"
            " WHERE e.account = 'allowance_paid' AND t.period BETWEEN $1 AND $2"
            " GROUP BY t.period",
            str(first),
            str(last),
        )
        return outcomes.Facts(
            postings=_rows(outcomes.PostingFact, postings),
            attendance=_rows(outcomes.AttendanceFact, attendance),
            payouts=_rows(outcomes.PayoutFact, payouts),
            applications=_rows(outcomes.ApplicationFact, applications),
            draws=[
                outcomes.DrawFact(
                    posting_id=d["posting_id"],
                    seats=d["seats"],
                    entrants=tuple(d["entrants"]),
                    winners=tuple(d["winners"]),
                    probability_min=d["probability_min"],
                    probability_max=d["probability_max"],
                    method=d["method"],
                )
                for d in draws
            ],
            first_shift_posting={r["citizen_id"]: r["posting_id"] for r in firsts},
            paid_won_by_month={r["period"]: int(r["paid_won"]) for r in paid},
        )

    async def emit(
        self, event: Event, *, producer: str, occurred_at: datetime, event_id: uuid.UUID
    ) -> None:
        """Put an event in the outbox, in this transaction (relayed after commit)."""
        await outbox.add(
            self.conn, event, producer=producer, occurred_at=occurred_at, event_id=event_id
        )

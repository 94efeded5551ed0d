"""The invariant checker: what must hold in a live system, read straight from the databases
(and the dead-letter topics), after any run — the demo, the end-to-end and failure suites,
or an operator's `gwangsan invariants`.

    report = await check(admin_dsn, kafka_bootstrap="127.0.0.1:9092", scope=Scope(...))
    assert report.ok, report.problems

It reads every service's schema with the admin connection (only this tool may: the
services never read each other's tables) and checks BRIEF §5/§7:

1. no posting over capacity (the matcher's confirmed applications and the registry's roster);
2. no citizen with overlapping confirmed bookings;
3. every attended minute paid exactly once, or recorded as capped (registry attendance at its
   latest revision against the allowance's payout lines of that attendance);
4. the ledger balanced (every transaction, every fiscal year, all of it) and equal to the
   budget figures the finance API shows (the maintained balances, the budget history);
5. every application has exactly one final decision;
6. every outbox row published;
7. dead-letter topics and `dead_letters` tables empty, or explained (outside the scope).

A `Scope` restricts checks 1–3, 5 and 7 to some postings, citizens or a fiscal year (a
scenario on a stack that other tests also used); the ledger and the outboxes stay global.
`python -m tools.invariants` prints the report for the stack in `.run/stack.env` and exits
0 when it holds, 1 when it does not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from shared.stackenv import client_env

ROOT = Path(__file__).resolve().parents[1]
SERVICE_SCHEMAS = ("registry", "matcher", "allowance")
DLQ_READ_MAX = 20_000  # bound of dead letters read per topic
PROBLEMS_LISTED_MAX = 50  # per check: the report names at most this many ids


@dataclass(frozen=True)
class Scope:
    """What a scenario touched. `None` means "no restriction on this dimension"; the given
    dimensions are all applied (AND)."""

    posting_ids: frozenset[str] | None = None
    citizen_ids: frozenset[str] | None = None
    fiscal_year: int | None = None

    @classmethod
    def of(
        cls,
        *,
        posting_ids: Sequence[str] | None = None,
        citizen_ids: Sequence[str] | None = None,
        fiscal_year: int | None = None,
    ) -> Scope:
        return cls(
            frozenset(posting_ids) if posting_ids is not None else None,
            frozenset(citizen_ids) if citizen_ids is not None else None,
            fiscal_year,
        )

    def postings(self) -> list[str] | None:
        return sorted(self.posting_ids) if self.posting_ids is not None else None

    def citizens(self) -> list[str] | None:
        return sorted(self.citizen_ids) if self.citizen_ids is not None else None

    def has_key(self, key: str | None) -> bool:
        """Whether a message keyed `key` (a posting or a citizen id) is in scope."""
        if key is None:
            return False
        if self.posting_ids is not None and key in self.posting_ids:
            return True
        return self.citizen_ids is not None and key in self.citizen_ids


@dataclass
class Report:
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    figures: dict[str, int] = field(default_factory=dict)

    def problem(self, sentence: str) -> None:
        self.ok = False
        self.problems.append(sentence)

    def problems_of(self, what: str, rows: Sequence[Any], sentence: Any) -> None:
        """One problem per row (bounded), then a count of the rest."""
        for row in rows[:PROBLEMS_LISTED_MAX]:
            self.problem(sentence(row))
        if len(rows) > PROBLEMS_LISTED_MAX:
            self.problem(f"… and {len(rows) - PROBLEMS_LISTED_MAX} more {what}.")

    def render(self) -> str:
        lines = [f"invariants: {'HOLD' if self.ok else 'VIOLATED'}"]
        width = max((len(k) for k in self.figures), default=0)
        lines += [f"  {k.ljust(width)}  {v:>12,}" for k, v in self.figures.items()]
        if self.problems:
            lines.append(f"{len(self.problems)} problem(s):")
            lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


# --- 1. capacity ----------------------------------------------------------------------------

_MATCHER_OVER_CAPACITY = """
SELECT p.posting_id, p.capacity, count(a.*) AS confirmed
  FROM matcher.postings p
  JOIN matcher.applications a ON a.posting_id = p.posting_id AND a.status = 'confirmed'
 WHERE ($1::text[] IS NULL OR p.posting_id = ANY($1))
   AND ($2::int IS NULL OR extract(year FROM p.starts_at AT TIME ZONE 'Asia/Seoul') = $2)
 GROUP BY p.posting_id, p.capacity
HAVING count(a.*) > p.capacity
"""

_REGISTRY_OVER_CAPACITY = """
SELECT p.id AS posting_id, p.capacity, count(b.*) AS confirmed
  FROM registry.postings p
  JOIN registry.bookings b ON b.posting_id = p.id AND b.status = 'confirmed'
 WHERE ($1::text[] IS NULL OR p.id = ANY($1))
   AND ($2::int IS NULL OR extract(year FROM p.starts_at AT TIME ZONE 'Asia/Seoul') = $2)
 GROUP BY p.id, p.capacity
HAVING count(b.*) > p.capacity
"""

_POSTINGS_COUNT = """
SELECT count(*) FROM matcher.postings p
 WHERE ($1::text[] IS NULL OR p.posting_id = ANY($1))
   AND ($2::int IS NULL OR extract(year FROM p.starts_at AT TIME ZONE 'Asia/Seoul') = $2)
"""


async def _capacity(conn: asyncpg.Connection, scope: Scope, report: Report) -> None:
    args = (scope.postings(), scope.fiscal_year)
    report.figures["postings_checked"] = int(await conn.fetchval(_POSTINGS_COUNT, *args))
    for where, sql in (
        ("matcher", _MATCHER_OVER_CAPACITY),
        ("registry roster", _REGISTRY_OVER_CAPACITY),
    ):
        rows = await conn.fetch(sql, *args)
        report.problems_of(
            "postings over capacity",
            rows,
            lambda r, w=where: (
                f"posting {r['posting_id']} has {r['confirmed']} confirmed bookings in the"
                f" {w} but a capacity of {r['capacity']}."
            ),
        )


# --- 2. overlapping bookings ----------------------------------------------------------------

_OVERLAPS = """
SELECT a.citizen_id, a.booking_id AS first_booking, b.booking_id AS second_booking
  FROM matcher.applications a
  JOIN matcher.applications b
    ON b.citizen_id = a.citizen_id AND a.application_id < b.application_id
   AND b.status = 'confirmed'
   AND tstzrange(a.starts_at, a.ends_at, '[)') && tstzrange(b.starts_at, b.ends_at, '[)')
 WHERE a.status = 'confirmed'
   AND ($1::text[] IS NULL OR a.citizen_id = ANY($1))
   AND ($2::text[] IS NULL OR a.posting_id = ANY($2) OR b.posting_id = ANY($2))
"""

_CONFIRMED_COUNT = """
SELECT count(*) FROM matcher.applications a
 WHERE a.status = 'confirmed'
   AND ($1::text[] IS NULL OR a.citizen_id = ANY($1))
   AND ($2::text[] IS NULL OR a.posting_id = ANY($2))
"""


async def _overlaps(conn: asyncpg.Connection, scope: Scope, report: Report) -> None:
    args = (scope.citizens(), scope.postings())
    report.figures["confirmed_bookings_checked"] = int(await conn.fetchval(_CONFIRMED_COUNT, *args))
    rows = await conn.fetch(_OVERLAPS, *args)
    report.problems_of(
        "overlapping bookings",
        rows,
        lambda r: (
            f"citizen {r['citizen_id']} holds overlapping confirmed bookings"
            f" {r['first_booking']} and {r['second_booking']}."
        ),
    )


# --- 3. attended minutes paid once or capped ------------------------------------------------

# Registry attendance at its latest revision, against the allowance's view of the same record
# and the net of its payout lines (accruals minus reversals). Paid minutes are the attended
# minutes up to the scheduled length (BRIEF §5); a no-show nets to zero.
_ATTENDANCE = """
WITH att AS (
    SELECT a.attendance_id, a.posting_id, a.citizen_id, a.status, a.revision,
           CASE WHEN a.status = 'attended'
                THEN least(a.minutes,
                           (extract(epoch FROM p.ends_at - p.starts_at) / 60)::int)
                ELSE 0 END AS minutes_expected
      FROM registry.attendance a
      JOIN registry.postings p ON p.id = a.posting_id
     WHERE ($1::text[] IS NULL OR a.posting_id = ANY($1))
       AND ($2::text[] IS NULL OR a.citizen_id = ANY($2))
       AND ($3::int IS NULL OR extract(year FROM p.starts_at AT TIME ZONE 'Asia/Seoul') = $3)
), lines AS (
    SELECT l.attendance_id,
           sum(l.minutes_paid) AS minutes_net,
           sum(l.gross_won) AS gross_net,
           sum(l.payable_won) AS payable_net,
           sum(l.capped_won) AS capped_net,
           count(*) FILTER (WHERE l.kind = 'accrual') AS accruals,
           count(*) FILTER (WHERE l.kind = 'reversal') AS reversals
      FROM allowance.payout_lines l
     WHERE l.attendance_id IN (SELECT attendance_id FROM att)
     GROUP BY l.attendance_id
), latest AS (
    SELECT DISTINCT ON (l.attendance_id) l.attendance_id, l.hourly_rate_won, l.kind
      FROM allowance.payout_lines l
     WHERE l.attendance_id IN (SELECT attendance_id FROM att)
     ORDER BY l.attendance_id, l.id DESC
)
SELECT att.*, ap.revision AS paid_revision, ap.status AS paid_status,
       ap.minutes_paid AS ap_minutes, ap.gross_won AS ap_gross,
       coalesce(lines.minutes_net, 0) AS minutes_net,
       coalesce(lines.gross_net, 0) AS gross_net,
       coalesce(lines.payable_net, 0) AS payable_net,
       coalesce(lines.capped_net, 0) AS capped_net,
       coalesce(lines.accruals, 0) AS accruals,
       coalesce(lines.reversals, 0) AS reversals,
       latest.hourly_rate_won AS rate_won, latest.kind AS latest_kind
  FROM att
  LEFT JOIN allowance.attendance_payouts ap ON ap.attendance_id = att.attendance_id
  LEFT JOIN lines ON lines.attendance_id = att.attendance_id
  LEFT JOIN latest ON latest.attendance_id = att.attendance_id
"""


def _attendance_problem(r: asyncpg.Record) -> str | None:
    ident = (
        f"attendance {r['attendance_id']} (posting {r['posting_id']}, citizen {r['citizen_id']})"
    )
    expected = int(r["minutes_expected"])
    if r["paid_revision"] is None:
        return f"{ident}: revision {r['revision']} was never seen by the allowance."
    if int(r["paid_revision"]) != int(r["revision"]):
        return (
            f"{ident}: the registry is at revision {r['revision']} but the allowance paid"
            f" revision {r['paid_revision']}."
        )
    net = int(r["minutes_net"])
    if net != expected:
        return f"{ident}: {expected} minutes to pay but its payout lines net {net} minutes."
    if int(r["ap_minutes"]) != expected:
        return f"{ident}: {expected} minutes to pay but the allowance records {r['ap_minutes']}."
    if int(r["gross_net"]) != int(r["ap_gross"]):
        return f"{ident}: payout lines net {r['gross_net']} won, the record says {r['ap_gross']}."
    if int(r["payable_net"]) + int(r["capped_net"]) != int(r["gross_net"]):
        return f"{ident}: paid plus capped is not the gross ({r['gross_net']} won)."
    accruals, reversals = int(r["accruals"]), int(r["reversals"])
    if accruals - reversals not in (0, 1) or (expected > 0 and accruals - reversals != 1):
        return f"{ident}: {accruals} accruals and {reversals} reversals (paid more than once)."
    if expected > 0 and r["rate_won"] is not None:
        gross = int(r["rate_won"]) * expected // 60
        if r["latest_kind"] == "accrual" and gross != int(r["gross_net"]):
            return (
                f"{ident}: {expected} min at {r['rate_won']} won/h is {gross} won,"
                f" but its gross is {r['gross_net']} won."
            )
    return None


async def _attendance(conn: asyncpg.Connection, scope: Scope, report: Report) -> None:
    rows = await conn.fetch(_ATTENDANCE, scope.postings(), scope.citizens(), scope.fiscal_year)
    attended = [r for r in rows if r["status"] == "attended"]
    report.figures["attendance_records_checked"] = len(rows)
    report.figures["attended_minutes"] = sum(int(r["minutes_expected"]) for r in attended)
    report.figures["paid_minutes"] = sum(int(r["minutes_net"]) for r in rows)
    report.figures["payable_won"] = sum(int(r["payable_net"]) for r in rows)
    report.figures["capped_won"] = sum(int(r["capped_net"]) for r in rows)
    found = [(r, p) for r in rows if (p := _attendance_problem(r)) is not None]
    report.problems_of("attendance records not paid exactly once", found, lambda rp: rp[1])


# --- 4. the ledger --------------------------------------------------------------------------

_UNBALANCED_TRANSACTIONS = """
SELECT t.id, t.kind, coalesce(sum(e.amount_won), 0) AS total, count(e.*) AS entries
  FROM allowance.ledger_transactions t
  LEFT JOIN allowance.ledger_entries e ON e.transaction_id = t.id
 GROUP BY t.id, t.kind
HAVING coalesce(sum(e.amount_won), 0) <> 0 OR count(e.*) < 2
"""

_YEAR_TOTALS = """
SELECT t.fiscal_year, sum(e.amount_won) AS total, count(*) AS entries,
       sum(e.amount_won) FILTER (WHERE e.amount_won > 0) AS debits
  FROM allowance.ledger_entries e JOIN allowance.ledger_transactions t ON t.id = e.transaction_id
 GROUP BY t.fiscal_year
"""

# The maintained balances (what GET /v1/budget reports) against the entries.
_BALANCE_DRIFT = """
WITH derived AS (
    SELECT e.account, t.fiscal_year,
           CASE WHEN a.party_kind = 'citizen' THEN t.period ELSE '' END AS period,
           CASE a.party_kind WHEN 'citizen' THEN e.citizen_id
                             WHEN 'posting' THEN e.posting_id ELSE '' END AS party,
           sum(e.amount_won) AS won
      FROM allowance.ledger_entries e
      JOIN allowance.ledger_transactions t ON t.id = e.transaction_id
      JOIN allowance.ledger_accounts a ON a.code = e.account
     GROUP BY 1, 2, 3, 4
)
SELECT coalesce(d.account, b.account) AS account,
       coalesce(d.fiscal_year, b.fiscal_year) AS fiscal_year,
       coalesce(d.party, b.party) AS party,
       coalesce(d.won, 0) AS derived_won, coalesce(b.balance_won, 0) AS balance_won
  FROM derived d
  FULL JOIN allowance.account_balances b
    ON (b.account, b.fiscal_year, b.period, b.party) = (d.account, d.fiscal_year, d.period, d.party)
 WHERE coalesce(d.won, 0) <> coalesce(b.balance_won, 0)
"""

_APPROPRIATIONS = """
SELECT g.fiscal_year,
       (SELECT c.new_total_won FROM allowance.budget_changes c
         WHERE c.fiscal_year = g.fiscal_year ORDER BY c.id DESC LIMIT 1) AS history_total,
       coalesce((SELECT sum(b.balance_won) FROM allowance.account_balances b
                  WHERE b.fiscal_year = g.fiscal_year
                    AND b.account = 'budget_appropriation'), 0) AS ledger_total,
       coalesce((SELECT sum(b.balance_won) FROM allowance.account_balances b
                  WHERE b.fiscal_year = g.fiscal_year AND b.account = 'allowance_capped'), 0)
         + coalesce((SELECT sum(b.balance_won) FROM allowance.account_balances b
                  WHERE b.fiscal_year = g.fiscal_year
                    AND b.account = 'allowance_capped_offset'), 0) AS memorandum_net
  FROM allowance.budgets g
"""

# A reservation that is over (closed, cancelled, rejected) holds no money any more.
_STALE_RESERVATIONS = """
SELECT r.posting_id, r.status, b.balance_won
  FROM allowance.reservations r
  JOIN allowance.account_balances b
    ON b.account = 'budget_reserved' AND b.party = r.posting_id AND b.fiscal_year = r.fiscal_year
 WHERE r.status IN ('rejected', 'cancelled', 'closed') AND b.balance_won <> 0
   AND ($1::text[] IS NULL OR r.posting_id = ANY($1))
"""


async def _ledger(conn: asyncpg.Connection, scope: Scope, report: Report) -> None:
    total = int(
        await conn.fetchval("SELECT coalesce(sum(amount_won), 0) FROM allowance.ledger_entries")
    )
    report.figures["ledger_entries"] = int(
        await conn.fetchval("SELECT count(*) FROM allowance.ledger_entries")
    )
    report.figures["ledger_debits_minus_credits_won"] = total
    if total != 0:
        report.problem(f"the ledger does not balance: debits minus credits is {total} won.")
    rows = await conn.fetch(_UNBALANCED_TRANSACTIONS)
    report.problems_of(
        "unbalanced ledger transactions",
        rows,
        lambda r: (
            f"ledger transaction {r['id']} ({r['kind']}) has {r['entries']} entries summing to"
            f" {r['total']} won."
        ),
    )
    for r in await conn.fetch(_YEAR_TOTALS):
        if int(r["total"]) != 0:
            report.problem(
                f"fiscal year {r['fiscal_year']}'s ledger entries sum to {r['total']} won, not 0."
            )
    drift = await conn.fetch(_BALANCE_DRIFT)
    report.problems_of(
        "balances that differ from the entries",
        drift,
        lambda r: (
            f"balance of {r['account']} {r['fiscal_year']} {r['party'] or '(all)'} says"
            f" {r['balance_won']} won but its entries sum to {r['derived_won']} won."
        ),
    )
    years = await conn.fetch(_APPROPRIATIONS)
    report.figures["budget_years"] = len(years)
    for r in years:
        if r["history_total"] is not None and int(r["history_total"]) != int(r["ledger_total"]):
            report.problem(
                f"fiscal year {r['fiscal_year']}: the budget history says"
                f" {r['history_total']} won but the ledger appropriates {r['ledger_total']} won."
            )
        if int(r["memorandum_net"]) != 0:
            report.problem(
                f"fiscal year {r['fiscal_year']}: the capped memorandum accounts do not offset"
                f" ({r['memorandum_net']} won)."
            )
    stale = await conn.fetch(_STALE_RESERVATIONS, scope.postings())
    report.problems_of(
        "finished reservations still holding money",
        stale,
        lambda r: (
            f"posting {r['posting_id']}'s reservation is {r['status']} but still holds"
            f" {-int(r['balance_won'])} won."
        ),
    )


# --- 5. one final decision per application --------------------------------------------------

_APPLICATIONS = """
SELECT a.application_id, a.posting_id, a.citizen_id, a.status, p.selection, p.drawn_at,
       p.status AS posting_status,
       (SELECT count(*) FROM matcher.partner_notifications n
         WHERE n.application_id = a.application_id
           AND n.type IN ('booking.confirmed', 'booking.waitlisted', 'booking.rejected')
       ) AS decisions
  FROM matcher.applications a
  JOIN matcher.postings p ON p.posting_id = a.posting_id
 WHERE ($1::text[] IS NULL OR a.posting_id = ANY($1))
   AND ($2::text[] IS NULL OR a.citizen_id = ANY($2))
"""

_HELD = """
SELECT h.application_id, h.posting_id, h.status, h.held_until,
       (SELECT count(*) FROM matcher.applications a WHERE a.application_id = h.application_id)
         AS rows_decided,
       (SELECT count(*) FROM matcher.partner_notifications n
         WHERE n.application_id = h.application_id AND n.type = 'booking.rejected') AS rejections
  FROM matcher.held_applications h
 WHERE ($1::text[] IS NULL OR h.posting_id = ANY($1))
   AND ($2::text[] IS NULL OR h.citizen_id = ANY($2))
"""


def _decision_problem(r: asyncpg.Record) -> str | None:
    ident = f"application {r['application_id']} (posting {r['posting_id']})"
    decisions = int(r["decisions"])
    if r["status"] == "pending":
        waiting_for_draw = (
            r["selection"] == "draw" and r["drawn_at"] is None and r["posting_status"] == "open"
        )
        if not waiting_for_draw:
            return f"{ident} is still pending without a draw to wait for."
        return None if decisions == 0 else f"{ident} is pending but was told a decision."
    if r["status"] == "withdrawn" and decisions == 0:
        return None  # withdrawn while waiting for a draw: no decision to tell
    if decisions != 1:
        return f"{ident} is {r['status']} with {decisions} decisions sent to the partner."
    return None


async def _decisions(conn: asyncpg.Connection, scope: Scope, report: Report, now: float) -> None:
    args = (scope.postings(), scope.citizens())
    rows = await conn.fetch(_APPLICATIONS, *args)
    report.figures["applications_checked"] = len(rows)
    for status in ("confirmed", "waitlisted", "rejected", "withdrawn", "cancelled", "pending"):
        report.figures[f"applications_{status}"] = sum(1 for r in rows if r["status"] == status)
    found = [(r, p) for r in rows if (p := _decision_problem(r)) is not None]
    report.problems_of("applications without exactly one decision", found, lambda rp: rp[1])
    held = await conn.fetch(_HELD, *args)
    report.figures["applications_held_for_unknown_postings"] = len(held)
    bad: list[str] = []
    for h in held:
        ident = f"held application {h['application_id']} (posting {h['posting_id']})"
        if h["status"] == "released" and int(h["rows_decided"]) != 1:
            bad.append(f"{ident} was released but has {h['rows_decided']} decided rows.")
        elif h["status"] == "rejected" and (int(h["rows_decided"]) or int(h["rejections"]) != 1):
            bad.append(f"{ident} was refused but has {h['rejections']} refusals sent.")
        elif h["status"] == "held" and h["held_until"].timestamp() < now - 60:
            bad.append(f"{ident} is still held a minute after its deadline.")
    report.problems_of("held applications without one decision", bad, lambda s: s)


# --- 6. outboxes ----------------------------------------------------------------------------


async def _outboxes(conn: asyncpg.Connection, report: Report) -> None:
    for schema in SERVICE_SCHEMAS:
        row = await conn.fetchrow(
            f"SELECT count(*) AS total, count(*) FILTER (WHERE published_at IS NULL) AS waiting,"
            f" min(id) FILTER (WHERE published_at IS NULL) AS first_waiting FROM {schema}.outbox"
        )
        assert row is not None
        report.figures[f"{schema}_outbox_rows"] = int(row["total"])
        if int(row["waiting"]):
            report.problem(
                f"{row['waiting']} {schema} outbox row(s) are not published (first id"
                f" {row['first_waiting']})."
            )
    failed = await conn.fetch(
        "SELECT notification_id, type, posting_id FROM matcher.partner_notifications"
        " WHERE status = 'failed' ORDER BY seq"
    )
    report.figures["partner_notifications_failed"] = len(failed)
    report.figures["partner_notifications_pending"] = int(
        await conn.fetchval(
            "SELECT count(*) FROM matcher.partner_notifications WHERE status = 'pending'"
        )
    )


# --- 7. dead letters ------------------------------------------------------------------------


async def _dead_letter_topics(bootstrap: str) -> dict[str, list[str | None]]:
    """Every message's key in every `<topic>.dlq`, from the beginning (bounded)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from shared import topics
    from shared.kafka import stack_client_kwargs

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        **stack_client_kwargs(),
    )
    await consumer.start()
    keys: dict[str, list[str | None]] = {}
    try:
        existing = await consumer.topics()
        partitions_of = {t.name: t.partitions for t in topics.TOPICS}
        for source in topics.SOURCE_TOPICS:
            name = topics.dlq_of(source)
            found: list[str | None] = []
            tps = [TopicPartition(name, p) for p in range(partitions_of.get(name, 1))]
            if name not in existing:
                tps = []
            keys[source] = found
            if not tps:
                continue
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            deadline = time.monotonic() + 20
            while len(found) < DLQ_READ_MAX and time.monotonic() < deadline:
                positions = [await consumer.position(tp) for tp in tps]
                if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                    break
                batch = await consumer.getmany(timeout_ms=500, max_records=1000)
                for records in batch.values():
                    found.extend(
                        r.key.decode("utf-8", "replace") if r.key else None for r in records
                    )
    finally:
        # aiokafka may cancel its own committed-offsets task while stopping a group-less
        # consumer; that cancellation is not ours.
        with contextlib.suppress(asyncio.CancelledError):
            await consumer.stop()
    return keys


async def _dead_letters(
    conn: asyncpg.Connection, scope: Scope | None, report: Report, bootstrap: str | None
) -> None:
    """A dead letter is explained once it was replayed (`gwangsan dlq replay`: the replay
    group's offset is past it), discarded on record (`gwangsan dlq discard`), or, with a
    scope, when its key is outside the scope. The
    `dead_letters` tables say what each service dead-lettered; whether that was replayed is
    told by the DLQ topics, so without Kafka they count as unexplained (no scope)."""
    from shared import dlq

    for schema in SERVICE_SCHEMAS:
        count = int(await conn.fetchval(f"SELECT count(*) FROM {schema}.dead_letters"))
        report.figures[f"{schema}_dead_letters"] = count
        if count and scope is None and bootstrap is None:
            report.problem(
                f"{schema} dead-lettered {count} message(s) (table {schema}.dead_letters);"
                " without Kafka the checker cannot tell whether they were replayed."
            )
    if bootstrap is None:
        return
    totals = await _dead_letter_topics(bootstrap)
    discarded = await dlq.discarded(conn)
    report.figures["dlq discarded"] = len(discarded)
    for source, keys in totals.items():
        pending = [
            letter.key
            for letter in await dlq.pending(bootstrap, source, DLQ_READ_MAX)
            if letter.position not in discarded
        ]
        in_scope = [k for k in pending if scope is None or scope.has_key(k)]
        report.figures[f"dlq {source}"] = len(keys)
        report.figures[f"dlq {source} replayed or discarded"] = len(keys) - len(pending)
        if scope is not None:
            report.figures[f"dlq {source} out of scope"] = len(pending) - len(in_scope)
        if in_scope:
            shown = ", ".join(sorted({str(k) for k in in_scope})[:10])
            report.problem(
                f"{len(in_scope)} message(s) in {source}.dlq not replayed and unexplained"
                f" (keys {shown})."
            )


# --- entry points ---------------------------------------------------------------------------


async def _check_once(admin_dsn: str, kafka_bootstrap: str | None, scope: Scope | None) -> Report:
    report = Report()
    effective = scope or Scope()
    conn = await asyncpg.connect(admin_dsn)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            now = float(await conn.fetchval("SELECT extract(epoch FROM clock_timestamp())"))
            await _capacity(conn, effective, report)
            await _overlaps(conn, effective, report)
            await _attendance(conn, effective, report)
            await _ledger(conn, effective, report)
            await _decisions(conn, effective, report, now)
            await _outboxes(conn, report)
            await _dead_letters(conn, scope, report, kafka_bootstrap)
    finally:
        await conn.close()
    return report


async def check(
    admin_dsn: str,
    *,
    kafka_bootstrap: str | None = None,
    scope: Scope | None = None,
    settle_s: float = 0.0,
) -> Report:
    """Check every invariant once; with `settle_s`, check again (every second) until they
    hold or that many seconds passed — for a system still draining its queues."""
    deadline = time.monotonic() + settle_s
    while True:
        report = await _check_once(admin_dsn, kafka_bootstrap, scope)
        if report.ok or time.monotonic() >= deadline:
            return report
        await asyncio.sleep(1.0)


def stack_env() -> dict[str, str]:
    return client_env()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.invariants",
        description="Check the system's invariants against the databases in .run/stack.env.",
    )
    parser.add_argument("--posting", action="append", help="restrict to this posting (repeat)")
    parser.add_argument("--citizen", action="append", help="restrict to this citizen (repeat)")
    parser.add_argument("--fiscal-year", type=int)
    parser.add_argument("--no-kafka", action="store_true", help="skip reading the DLQ topics")
    parser.add_argument("--settle", type=float, default=0.0, help="retry for this many seconds")
    args = parser.parse_args(argv)
    env = stack_env()
    dsn = env.get("DATABASE_URL")
    if not dsn:
        print("error: DATABASE_URL is not set: run `make up` or export it", file=sys.stderr)
        return 2
    scope = None
    if args.posting or args.citizen or args.fiscal_year:
        scope = Scope.of(
            posting_ids=args.posting, citizen_ids=args.citizen, fiscal_year=args.fiscal_year
        )
    report = asyncio.run(
        check(
            dsn,
            kafka_bootstrap=None if args.no_kafka else env.get("KAFKA_BOOTSTRAP_SERVERS"),
            scope=scope,
            settle_s=args.settle,
        )
    )
    print(report.render())
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

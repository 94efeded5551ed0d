"""Benchmark 4: month close over N attended shifts for ~10,000 citizens.

The ledger is append-only (UPDATE/DELETE/TRUNCATE refused), so the rows cannot be removed
from the live `allowance` schema afterwards. The benchmark therefore works in a scratch
copy: a new schema `bench_allowance_<hex>` built by the allowance service's own migrations
(`shared.migrations.apply` with `allowance/migrations`), loaded, closed, and dropped whole
at the end (`DROP SCHEMA … CASCADE`, which the append-only triggers do not cover).

Loading (not timed against the target): the rows are shaped by allowance's domain code —
each shift is `domain.ledger.accrual(...)` (a reservation draw credited to the citizen's
payable) — and written with `COPY` (`copy_records_to_table`) into `ledger_transactions`,
`ledger_entries` and `payout_lines`; each posting's reservation and the year's
appropriation are posted the same way; `account_balances` is then derived from the entries
in one statement (what the ledger's row triggers would maintain). The per-row triggers are
switched off for the load only (`session_replication_role = replica`, superuser), since
they would check each of the millions of entries one by one; the close itself runs with
every trigger and constraint on. Every citizen has sealed payee details
(`payees.PayeeCipher.seal`, the development key), so everyone is paid.

Timed: `usecases.periods.close` (one transaction, as `POST /v1/periods/{p}/close` does),
then the statements (`Store.frozen_statements`) and the payout file as
`GET …/payout-file` builds it (`Store.payout_file_rows`, `Store.held_back`, decrypt each
payee, `exports.csv_chunk`). Beside it, the floor: a plain `COPY (SELECT … FROM
payout_lines) TO STDOUT` of the same rows. Peak RSS is the worker process's own
(`ru_maxrss`), so the run happens in a subprocess: `python -m bench.month_close N`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import resource
import sys
import time
import uuid
from datetime import timedelta
from typing import Any

import asyncpg

from bench.env import ROOT, Env

PERIOD = "2091-03"
FISCAL_YEAR = 2091
CITIZENS = 10_000
SHIFT_MINUTES = 60
HOURLY_RATE_WON = 10_320
TARGET_S = 60.0


async def run(env: Env, quick: bool) -> dict[str, Any]:
    rows = 50_000 if quick else 1_000_000
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.month_close",
        str(rows),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={**__import__("os").environ, "DATABASE_URL": env.env["DATABASE_URL"]},
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"month-close worker failed (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    print(
        f"  month close: {result['rows']:,} shifts / {result['citizens']:,} citizens loaded in"
        f" {result['load_s']} s; close {result['close_s']} s + statements"
        f" {result['statements_s']} s + payout file {result['payout_file_s']} s ="
        f" {result['total_s']} s (target < {TARGET_S:.0f} s:"
        f" {'met' if result['met'] else 'MISSED'}), {result['rows_per_s']:,.0f} rows/s, peak"
        f" RSS {result['peak_rss_mb']} MB; COPY out floor {result['copy_out_s']} s;"
        f" checks {'ok' if result['correct'] else 'FAILED'}",
        flush=True,
    )
    return result


# --- the worker ------------------------------------------------------------------------


def _accrual_template() -> list[Any]:
    from allowance.domain import ledger
    from allowance.domain.budget import Drawdown
    from allowance.domain.calendar import Period
    from allowance.domain.money import CapSplit

    gross = HOURLY_RATE_WON * SHIFT_MINUTES // 60
    split = CapSplit(gross_won=gross, payable_won=gross, capped_won=0)
    drawdown = Drawdown(from_reserved_won=gross, from_available_won=0, from_unfunded_won=0)
    txn = ledger.accrual(
        FISCAL_YEAR, Period.parse(PERIOD), "PST", "CTZ", split, drawdown, "bench accrual"
    )
    assert txn is not None
    return [txn, gross]


@functools.cache
def _cipher() -> Any:
    """One cipher for loading and for the payout file: without configured keys each
    `load_cipher` draws a random key of its own, so a second one could not open the first's."""
    from allowance import payees

    return payees.load_cipher("test", "", "")


async def _load(conn: asyncpg.Connection, schema: str, rows: int) -> dict[str, Any]:
    from allowance import payees
    from allowance.domain.calendar import Period

    txn, gross = _accrual_template()
    period = Period.parse(PERIOD)
    shifts_per_posting = 100
    postings = max(1, rows // shifts_per_posting)
    now = period.ends_at() - timedelta(days=1)
    await conn.execute("SET session_replication_role = replica")
    # Transaction ids are the identity's values in COPY order: 1 appropriation, then one
    # reservation per posting, then one accrual per shift.
    reservation_won = gross * shifts_per_posting
    kinds = ["budget_appropriated"] + ["reservation"] * postings + [txn.kind.value] * rows
    src = [uuid.uuid4() for _ in range(1 + postings)]
    run_base = uuid.uuid4().int & ~((1 << 32) - 1)

    def shift_src(i: int) -> uuid.UUID:  # a shift's event id, computed, not kept in memory
        return uuid.UUID(int=run_base + i)

    header_records = (
        (k, FISCAL_YEAR, PERIOD, s, now, now, "bench")
        for k, s in zip(kinds, _chain(src, (shift_src(i) for i in range(rows))), strict=True)
    )
    await conn.copy_records_to_table(
        "ledger_transactions",
        records=header_records,
        columns=[
            "kind",
            "fiscal_year",
            "period",
            "source_event_id",
            "occurred_at",
            "posted_at",
            "memo",
        ],
        schema_name=schema,
    )

    def entries() -> Any:
        yield (
            1,
            "budget_appropriation",
            None,
            None,
            reservation_won * postings,
            "approp:debit",
            src[0],
        )
        yield (
            1,
            "budget_available",
            None,
            None,
            -reservation_won * postings,
            "approp:credit",
            src[0],
        )
        for p in range(postings):
            pid = f"pst_bench_{p:06d}"
            yield (2 + p, "budget_available", None, pid, reservation_won, "rsv:debit", src[1 + p])
            yield (2 + p, "budget_reserved", None, pid, -reservation_won, "rsv:credit", src[1 + p])
        base = 2 + postings
        for i in range(rows):
            pid = f"pst_bench_{i // shifts_per_posting:06d}"
            cid = f"ctz_bench_{i % CITIZENS:05d}"
            for leg in txn.legs:
                yield (
                    base + i,
                    leg.account.value,
                    cid if leg.citizen_id else None,
                    pid if leg.posting_id else None,
                    leg.amount_won,
                    leg.name,
                    shift_src(i),
                )

    await conn.copy_records_to_table(
        "ledger_entries",
        records=entries(),
        columns=[
            "transaction_id",
            "account",
            "citizen_id",
            "posting_id",
            "amount_won",
            "leg",
            "source_event_id",
        ],
        schema_name=schema,
    )
    starts = period.starts_at()

    def lines() -> Any:
        base = 2 + postings
        for i in range(rows):
            at = starts + timedelta(minutes=(i % 20_000) * 2)
            yield (
                base + i,
                "accrual",
                f"att_bench_{i}",
                1,
                f"pst_bench_{i // shifts_per_posting:06d}",
                f"bkg_bench_{i}",
                f"ctz_bench_{i % CITIZENS:05d}",
                at,
                PERIOD,
                "2091-W10",
                PERIOD,
                FISCAL_YEAR,
                HOURLY_RATE_WON,
                SHIFT_MINUTES,
                gross,
                gross,
                0,
                10_000_000,
                shift_src(i),
                now,
            )

    await conn.copy_records_to_table(
        "payout_lines",
        records=lines(),
        columns=[
            "transaction_id",
            "kind",
            "attendance_id",
            "attendance_revision",
            "posting_id",
            "booking_id",
            "citizen_id",
            "shift_starts_at",
            "shift_period",
            "iso_week",
            "period",
            "fiscal_year",
            "hourly_rate_won",
            "minutes_paid",
            "gross_won",
            "payable_won",
            "capped_won",
            "cap_won",
            "source_event_id",
            "created_at",
        ],
        schema_name=schema,
    )
    # What the ledger's triggers maintain: balances per account, year, period (citizen
    # accounts only) and party.
    await conn.execute(
        """
        INSERT INTO account_balances (account, fiscal_year, period, party, balance_won)
        SELECT e.account, t.fiscal_year,
               CASE WHEN a.party_kind = 'citizen' THEN t.period ELSE '' END,
               CASE a.party_kind WHEN 'citizen' THEN e.citizen_id
                                 WHEN 'posting' THEN e.posting_id ELSE '' END,
               sum(e.amount_won)
          FROM ledger_entries e
          JOIN ledger_transactions t ON t.id = e.transaction_id
          JOIN ledger_accounts a ON a.code = e.account
         GROUP BY 1, 2, 3, 4
        """
    )
    await conn.execute("INSERT INTO periods (period) VALUES ($1)", PERIOD)
    cipher = _cipher()
    payee_rows = []
    for c in range(CITIZENS):
        cid = f"ctz_bench_{c:05d}"
        account = f"110{c:09d}"
        sealed = cipher.seal(cid, payees.PayeeDetails("088", account, "홍길동"))
        payee_rows.append(
            (
                cid,
                sealed.key_id,
                sealed.nonce,
                sealed.ciphertext,
                "088",
                payees.mask_account(account),
                payees.mask_holder("홍길동"),
                now,
                now,
                "bench",
            )
        )
    await conn.copy_records_to_table(
        "payees",
        records=payee_rows,
        columns=[
            "citizen_id",
            "key_id",
            "nonce",
            "ciphertext",
            "bank_code",
            "account_masked",
            "holder_masked",
            "created_at",
            "updated_at",
            "updated_by",
        ],
        schema_name=schema,
    )
    await conn.execute("SET session_replication_role = origin")
    await conn.execute("ANALYZE")
    return {"gross_per_shift": gross, "postings": postings}


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _chain(*its: Any) -> Any:
    for it in its:
        yield from it


async def worker(rows: int, dsn: str) -> dict[str, Any]:
    from allowance import exports, payees
    from allowance.domain.calendar import Period
    from allowance.store import Store
    from allowance.usecases import periods

    from shared import migrations

    schema = f"bench_allowance_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await migrations.apply(
            conn, schema, ROOT / "services" / "allowance" / "allowance" / "migrations"
        )
        await conn.execute(f'SET search_path TO "{schema}"')
        t0 = time.perf_counter()
        shape = await _load(conn, schema, rows)
        load_s = time.perf_counter() - t0
        period = Period.parse(PERIOD)
        now = period.ends_at() + timedelta(days=1)

        rss_before_close_mb = _rss_mb()
        t1 = time.perf_counter()
        async with conn.transaction():
            closed = await periods.close(Store(conn), period, closed_by="bench", now=now)
        t2 = time.perf_counter()
        statements = await Store(conn).frozen_statements(period, None, None)
        t3 = time.perf_counter()
        async with conn.transaction():
            lines = await Store(conn).payout_file_rows(period)
            held = await Store(conn).held_back(period)
        cipher = _cipher()
        bank_rows = []
        for r in lines:
            assert r.key_id is not None and r.nonce is not None and r.ciphertext is not None
            details = cipher.open(
                r.citizen_id,
                payees.Sealed(r.key_id, bytes(r.nonce), bytes(r.ciphertext)),
            )
            bank_rows.append(
                {
                    "bank_code": details.bank_code,
                    "account_number": details.account_number,
                    "account_holder": details.account_holder,
                    "amount_won": r.payout_won,
                    "memo": f"bench {period}",
                }
            )
        body = exports.csv_chunk(exports.PAYOUT_COLUMNS, bank_rows, header=True, guard=False)
        t4 = time.perf_counter()

        sink = 0

        async def count(chunk: bytes) -> None:
            nonlocal sink
            sink += len(chunk)

        t5 = time.perf_counter()
        await conn.copy_from_query(
            "SELECT * FROM payout_lines WHERE period = $1", PERIOD, output=count
        )
        copy_s = time.perf_counter() - t5
        gross = shape["gross_per_shift"]
        expected_payout = gross * rows
        correct = (
            closed.lines_count == rows
            and closed.payout_won == expected_payout
            and len(statements) == min(rows, CITIZENS)
            and len(lines) == min(rows, CITIZENS)
            and not held
            and sum(r.payout_won for r in lines) == expected_payout
        )
        close_s, statements_s, payout_s = t2 - t1, t3 - t2, t4 - t3
        total_s = t4 - t1
        return {
            "rows": rows,
            "citizens": min(rows, CITIZENS),
            "postings": shape["postings"],
            "schema": "scratch copy (dropped afterwards)",
            "load_s": round(load_s, 2),
            "close_s": round(close_s, 3),
            "statements_s": round(statements_s, 3),
            "payout_file_s": round(payout_s, 3),
            "payout_file_bytes": len(body),
            "total_s": round(total_s, 3),
            "rows_per_s": round(rows / total_s, 1),
            "copy_out_s": round(copy_s, 3),
            "copy_out_bytes": sink,
            "copy_rows_per_s": round(rows / copy_s, 1),
            "rss_before_close_mb": rss_before_close_mb,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "payout_won": closed.payout_won,
            "target": f"< {TARGET_S:.0f} s",
            "met": total_s < TARGET_S,
            "correct": correct,
        }
    finally:
        await conn.execute("RESET search_path")
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


if __name__ == "__main__":
    import os

    result = asyncio.run(worker(int(sys.argv[1]), os.environ["DATABASE_URL"]))
    print(json.dumps(result))

"""A small client for the running allowance service, in the spirit of Cosmic Python's
`api_client.py`: inject registry events onto the real topics, watch what allowance
publishes, call the admin and finance APIs, and check the trial balance.

Budgets are global per fiscal year and shared with every other suite on the stack, so each
test takes a fiscal year nobody else uses (a random far-future year) and sets its budget.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared import topics
from shared.events import (
    AttendanceCorrected,
    AttendanceRecorded,
    Envelope,
    Event,
    PostingCancelled,
    PostingClosed,
    PostingSubmitted,
    PostingUpdated,
)
from shared.kafka import make_producer, stack_client_kwargs, stack_security
from tools.api_client import http_client

SEOUL_OFFSET = "+09:00"
WAIT_S = 30.0


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def kst(text: str) -> datetime:
    """`2031-03-10T10:00` in Seoul."""
    return datetime.fromisoformat(text + SEOUL_OFFSET)


def full_shift_won(rate: int, minutes: int) -> int:
    return rate * minutes // 60


@dataclass
class Watcher:
    """Everything published on allowance's topics since the watcher started."""

    bootstrap: str
    seen: list[Envelope] = field(default_factory=list)
    _consumer: AIOKafkaConsumer | None = None
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            **stack_client_kwargs(),
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await consumer.start()
        counts = {spec.name: spec.partitions for spec in topics.TOPICS}
        parts = [
            TopicPartition(topic, p)
            for topic in (topics.ALLOWANCE_BUDGET, topics.ALLOWANCE_PAYOUTS)
            for p in range(counts[topic])
        ]
        consumer.assign(parts)
        await consumer.seek_to_end(*parts)
        for tp in parts:
            await consumer.position(tp)
        self._consumer = consumer
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                for message in messages:
                    self.seen.append(Envelope.from_bytes(message.value or b"{}"))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._consumer is not None:
            await self._consumer.stop()

    def matching(self, predicate: Callable[[Envelope], bool]) -> list[Envelope]:
        return [e for e in self.seen if predicate(e)]

    async def wait_for(
        self, predicate: Callable[[Envelope], bool], count: int = 1, timeout_s: float = WAIT_S
    ) -> list[Envelope]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            found = self.matching(predicate)
            if len(found) >= count:
                return found
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"waited {timeout_s}s for {count} event(s); saw {found}")
            await asyncio.sleep(0.05)


def of(event_type: str, **data: Any) -> Callable[[Envelope], bool]:
    """A predicate: an envelope of `event_type` whose data has these values."""

    def predicate(envelope: Envelope) -> bool:
        return envelope.type == event_type and all(
            envelope.data.get(k) == v for k, v in data.items()
        )

    return predicate


@dataclass
class Posting:
    posting_id: str
    facility_id: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    title: str = "책 정리"

    @property
    def minutes(self) -> int:
        return int((self.ends_at - self.starts_at).total_seconds() // 60)


class Kit:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.url = env["ALLOWANCE_URL"]
        self.admin = {"Authorization": f"Bearer {env['ADMIN_TOKEN']}"}
        self.finance = {"Authorization": f"Bearer {env['FINANCE_TOKEN']}"}
        self.http = http_client(base_url=self.url, timeout_s=60)
        self.producer = make_producer(
            env["KAFKA_BOOTSTRAP_SERVERS"], "allowance-tests", stack_security()
        )
        self.watcher = Watcher(env["KAFKA_BOOTSTRAP_SERVERS"])
        self.db: asyncpg.Pool | None = None

    async def start(self) -> None:
        await self.producer.start()
        await self.watcher.start()
        self.db = await asyncpg.create_pool(
            self.env["DATABASE_URL"],
            min_size=1,
            max_size=4,
            server_settings={"search_path": "allowance"},
        )

    async def stop(self) -> None:
        await self.watcher.stop()
        await self.producer.stop()
        await self.http.aclose()
        if self.db is not None:
            await self.db.close()

    @property
    def pool(self) -> asyncpg.Pool:
        assert self.db is not None
        return self.db

    async def know_citizen(self, *citizen_ids: str) -> None:
        """Make citizens known to the allowance as a booking would (payees are stored only
        for known citizens, issue 16), for tests about payees rather than bookings."""
        await self.pool.execute(
            "INSERT INTO citizens (citizen_id, first_seen_at, first_seen_in)"
            " SELECT c, now(), 'booking' FROM unnest($1::text[]) AS c ON CONFLICT DO NOTHING",
            list(citizen_ids),
        )

    # --- events in ------------------------------------------------------------------

    async def inject(self, event: Event, *, event_id: uuid.UUID | None = None) -> Envelope:
        envelope = event.envelope(
            producer="allowance-tests", occurred_at=datetime.now().astimezone(), event_id=event_id
        )
        await self.send(envelope, event.TOPIC)
        return envelope

    async def send(self, envelope: Envelope, topic: str) -> None:
        await self.producer.send_and_wait(topic, envelope.to_bytes(), key=envelope.key.encode())

    async def submit(
        self, starts_at: datetime, minutes: int, capacity: int = 1, *, title: str = "책 정리"
    ) -> Posting:
        posting = Posting(
            new_id("pst"),
            new_id("fac"),
            starts_at,
            starts_at + timedelta(minutes=minutes),
            capacity,
            title,
        )
        await self.inject(PostingSubmitted(**self.terms(posting)))
        return posting

    def terms(self, posting: Posting) -> dict[str, Any]:
        return {
            "posting_id": posting.posting_id,
            "facility_id": posting.facility_id,
            "facility_name": "광산구 작은도서관",
            "facility_dong": "수완동",
            "title": posting.title,
            "starts_at": posting.starts_at,
            "ends_at": posting.ends_at,
            "capacity": posting.capacity,
            "selection": "first_come",
        }

    async def update(
        self,
        posting: Posting,
        revision: int,
        *,
        capacity: int,
        minutes: int | None = None,
        title: str | None = None,
    ) -> Posting:
        changed = Posting(
            posting.posting_id,
            posting.facility_id,
            posting.starts_at,
            posting.starts_at + timedelta(minutes=minutes or posting.minutes),
            capacity,
            posting.title if title is None else title,
        )
        await self.inject(
            PostingUpdated(
                **self.terms(changed),
                revision=revision,
                previous_capacity=posting.capacity,
                previous_starts_at=posting.starts_at,
                previous_ends_at=posting.ends_at,
            )
        )
        return changed

    async def cancel(self, posting: Posting) -> None:
        await self.inject(
            PostingCancelled(
                posting_id=posting.posting_id,
                facility_id=posting.facility_id,
                reason="facility",
                cancelled_at=datetime.now().astimezone(),
            )
        )

    async def close_posting(self, posting: Posting) -> None:
        await self.inject(
            PostingClosed(
                posting_id=posting.posting_id,
                facility_id=posting.facility_id,
                closed_at=datetime.now().astimezone(),
            )
        )

    def attendance(
        self,
        posting: Posting,
        citizen_id: str,
        *,
        status: str = "attended",
        minutes: int | None = None,
        revision: int = 1,
        attendance_id: str | None = None,
        booking_id: str | None = None,
        corrected_from: tuple[str, int] | None = None,
    ) -> AttendanceRecorded | AttendanceCorrected:
        fields: dict[str, Any] = {
            "attendance_id": attendance_id or new_id("att"),
            "posting_id": posting.posting_id,
            "facility_id": posting.facility_id,
            "booking_id": booking_id or new_id("bkg"),
            "citizen_id": citizen_id,
            "status": status,
            "minutes": posting.minutes if minutes is None else minutes,
            "scheduled_minutes": posting.minutes,
            "shift_starts_at": posting.starts_at,
            "revision": revision,
        }
        if corrected_from is not None:
            return AttendanceCorrected(
                **fields, previous_status=corrected_from[0], previous_minutes=corrected_from[1]
            )
        return AttendanceRecorded(**fields)

    # --- events out -----------------------------------------------------------------

    async def budget_answer(self, posting_id: str, nth: int = 1) -> Envelope:
        """The `nth` answer (BudgetReserved or BudgetRejected) to a posting: the first
        answers the submission, the next ones the updates in order. (The submission's
        BudgetReserved carries revision 1, as does the answer to update 1.)"""
        found = await self.watcher.wait_for(
            lambda e: (
                e.type in ("BudgetReserved", "BudgetRejected")
                and e.data.get("posting_id") == posting_id
            ),
            count=nth,
        )
        return found[nth - 1]

    async def wait(
        self, event_type: str, count: int = 1, timeout_s: float = WAIT_S, **data: Any
    ) -> list[Envelope]:
        return await self.watcher.wait_for(of(event_type, **data), count, timeout_s)

    # --- admin and finance API ------------------------------------------------------

    async def fresh_year(self) -> int:
        """A fiscal year no test or demo has a budget for."""
        while True:
            year = random.randint(2100, 8900)
            response = await self.http.get(
                "/v1/admin/budget", params={"fiscal_year": year}, headers=self.admin
            )
            if response.status_code == 404:
                return year

    async def set_budget(self, year: int, amount_won: int, note: str = "test") -> dict[str, Any]:
        response = await self.http.put(
            "/v1/admin/budget",
            json={"fiscal_year": year, "amount_won": amount_won, "note": note},
            headers=self.admin,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def raise_budget(self, year: int, by_won: int) -> None:
        """Add to a budget other tests may share, without losing their changes."""
        for _ in range(20):
            current = await self.http.get(
                "/v1/admin/budget", params={"fiscal_year": year}, headers=self.admin
            )
            total = current.json()["total_won"] if current.status_code == 200 else 0
            response = await self.http.put(
                "/v1/admin/budget",
                json={
                    "fiscal_year": year,
                    "amount_won": total + by_won,
                    "note": "allowance tests: raise",
                    "previous_amount_won": total,
                },
                headers=self.admin,
            )
            if response.status_code == 200:
                return
            assert response.status_code == 409, response.text
        raise AssertionError("could not raise the budget")

    async def budget(self, year: int) -> dict[str, Any]:
        response = await self.http.get(
            "/v1/budget", params={"fiscal_year": year}, headers=self.finance
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def clock(self) -> datetime:
        response = await self.http.get("/v1/admin/clock", headers=self.admin)
        return datetime.fromisoformat(response.json()["now"])

    async def entries_of(self, **where: str) -> list[asyncpg.Record]:
        ((column, value),) = where.items()
        assert column in ("posting_id", "citizen_id")
        rows: list[asyncpg.Record] = await self.pool.fetch(
            f"SELECT e.*, t.kind, t.period FROM ledger_entries e JOIN ledger_transactions t"
            f" ON t.id = e.transaction_id WHERE e.{column} = $1 ORDER BY e.id",
            value,
        )
        return rows


async def check_trial_balance(kit: Kit) -> None:
    """All entries sum to zero, every transaction balances, the maintained balances are
    exactly the entries, and `GET /v1/budget` of every fiscal year equals what the entries
    say (re-read a few times: other suites may be writing meanwhile)."""
    pool = kit.pool
    total = await pool.fetchval("SELECT coalesce(sum(amount_won), 0) FROM ledger_entries")
    assert total == 0, f"the ledger does not sum to zero: {total}"
    unbalanced = await pool.fetch(
        "SELECT transaction_id, sum(amount_won) FROM ledger_entries GROUP BY transaction_id"
        " HAVING sum(amount_won) <> 0 LIMIT 5"
    )
    assert not unbalanced, unbalanced
    natural = {
        "budget_appropriation": ("total_won", 1),
        "budget_unfunded": ("unfunded_won", 1),
        "budget_available": ("available_won", -1),
        "budget_reserved": ("reserved_won", -1),
        "allowance_payable": ("payable_won", -1),
        "allowance_payout_due": ("payout_due_won", -1),
        "allowance_paid": ("paid_won", -1),
        "allowance_capped": ("capped_won", -1),
        "allowance_transfer_failed": ("transfer_failed_won", -1),
        "income_tax_payable": ("withheld_won", -1),
        "local_income_tax_payable": ("withheld_won", -1),
    }
    years = [r["fiscal_year"] for r in await pool.fetch("SELECT fiscal_year FROM budgets")]
    for attempt in range(5):
        mismatches = await pool.fetch(
            """
            WITH from_entries AS (
                SELECT e.account, t.fiscal_year, sum(e.amount_won) AS won
                  FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id
                 GROUP BY 1, 2),
            kept AS (SELECT account, fiscal_year, sum(balance_won) AS won
                       FROM account_balances GROUP BY 1, 2)
            SELECT * FROM from_entries f FULL JOIN kept k USING (account, fiscal_year)
             WHERE f.won IS DISTINCT FROM k.won AND coalesce(f.won, 0) <> coalesce(k.won, 0)
            """
        )
        problems: list[str] = [str(dict(m)) for m in mismatches]
        for year in years:
            api = await kit.budget(year)
            rows = await pool.fetch(
                "SELECT e.account, sum(e.amount_won) AS won FROM ledger_entries e"
                " JOIN ledger_transactions t ON t.id = e.transaction_id"
                " WHERE t.fiscal_year = $1 GROUP BY e.account",
                year,
            )
            derived = {field: 0 for field, _ in natural.values()}
            for r in rows:
                if r["account"] in natural:
                    field_name, sign = natural[r["account"]]
                    derived[field_name] += sign * int(r["won"])
            derived["accrued_won"] = (
                derived["payable_won"]
                + derived["payout_due_won"]
                + derived["transfer_failed_won"]
                + derived["withheld_won"]
            )
            for key, value in derived.items():
                if api[key] != value:
                    problems.append(f"{year} {key}: api {api[key]} != entries {value}")
            if api["total_won"] + api["unfunded_won"] != (
                api["available_won"] + api["reserved_won"] + api["accrued_won"] + api["paid_won"]
            ):
                problems.append(f"{year}: budget identity broken {api}")
        if not problems:
            return
        if attempt == 4:
            raise AssertionError("; ".join(problems[:10]))
        await asyncio.sleep(0.5)

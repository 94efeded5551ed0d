"""The registry as the integration tests drive it: its HTTP calls through
`tools.api_client`, plus what the tests need around them: the shared clock, a watcher of the topics, and
injection of the events other services would send (budget answers, bookings)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared import topics
from shared.events import (
    BookingCancelled,
    BookingConfirmed,
    BookingPromoted,
    BookingWaitlisted,
    BudgetRejected,
    BudgetReserved,
    Envelope,
    Event,
)
from shared.kafka import stack_client_kwargs
from tools.api_client import Api, ApiError
from tools.api_client.calls import Facility

WATCHED = (topics.REGISTRY_POSTINGS, topics.REGISTRY_ATTENDANCE, topics.ALLOWANCE_BUDGET)
BUDGET_ANSWERS = ("BudgetReserved", "BudgetRejected")


def uid() -> str:
    return uuid.uuid4().hex[:12]


class TopicWatcher:
    """Everything published on the watched topics since the watcher started."""

    def __init__(self, bootstrap: str) -> None:
        self._consumer = AIOKafkaConsumer(
            *WATCHED,
            **stack_client_kwargs(),
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
        )
        self.seen: list[Envelope] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while len({tp.topic for tp in self._consumer.assignment()}) < len(WATCHED):
            if loop.time() > deadline:
                raise AssertionError("the watcher got no partitions")
            await self._consumer.getmany(timeout_ms=100)
        for tp in self._consumer.assignment():
            await self._consumer.position(tp)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    with contextlib.suppress(Exception):
                        self.seen.append(Envelope.from_bytes(record.value))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    def of(self, key: str, *types: str) -> list[Envelope]:
        return [e for e in self.seen if e.key == key and (not types or e.type in types)]

    async def wait_for(
        self,
        key: str,
        *types: str,
        count: int = 1,
        timeout_s: float = 20,
        where: Callable[[Envelope], bool] = lambda _: True,
    ) -> list[Envelope]:
        """The first `count` matching events of `key`; AssertionError after the timeout."""
        found = await self.maybe(key, *types, count=count, timeout_s=timeout_s, where=where)
        if found is None:
            got = [(e.type, e.data.get("revision")) for e in self.of(key)]
            raise AssertionError(f"{count} × {types} for {key} not seen; seen: {got}")
        return found

    async def maybe(
        self,
        key: str,
        *types: str,
        count: int = 1,
        timeout_s: float = 3,
        where: Callable[[Envelope], bool] = lambda _: True,
    ) -> list[Envelope] | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            found = [e for e in self.of(key, *types) if where(e)]
            if len(found) >= count:
                return found[:count]
            if loop.time() > deadline:
                return None
            await asyncio.sleep(0.05)


@dataclass
class Registry:
    """The running registry, driven through `tools.api_client`, with the test's Kafka hands.

    `request`, `post` and `attendance` answer the response as it is (any status, headers):
    the contract tests look at 400 / 401 / 404 / 409 / 422 themselves."""

    api: Api
    producer: AIOKafkaProducer
    watcher: TopicWatcher
    facilities: list[dict[str, Any]] = field(default_factory=list)

    @property
    def admin_token(self) -> str:
        return self.api.endpoints.admin_token

    def facility(self, api_key: str) -> Facility:
        return self.api.facility(api_key)

    async def request(self, token: str | None, method: str, path: str, **kw: Any) -> httpx.Response:
        """Any registry call with any token (or none), answered as it is."""
        return await self.api.raw(self.api.endpoints.registry_url, token, method, path, **kw)

    # --- clock ----------------------------------------------------------------------------

    async def now(self) -> datetime:
        return await self.api.clock.get()

    async def move_clock_to(self, at: datetime) -> None:
        """Move the shared clock forward to `at` (no-op if it is already later)."""
        if at <= await self.now():
            return
        try:
            await self.api.clock.set(at)
        except ApiError as refused:  # another test moved it further meanwhile
            assert refused.status == 409, refused

    # --- admin ----------------------------------------------------------------------------

    async def create_facility(self, **overrides: Any) -> dict[str, Any]:
        body = {
            "name": f"테스트 작은도서관 {uid()}",
            "kind": "small_library",
            "dong": "수완동",
            "requires_child_safety_check": False,
            **overrides,
        }
        return await self.api.registry_admin.create_facility(body)

    # --- postings -------------------------------------------------------------------------

    async def shift_body(
        self,
        *,
        start_in: timedelta = timedelta(days=2),
        minutes: int = 60,
        capacity: int = 1,
        **overrides: Any,
    ) -> dict[str, Any]:
        starts = await self.now() + start_in
        return {
            "title": f"서가 정리 {uid()}",
            "description": "책 정리와 대출 보조",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(minutes=minutes)).isoformat(),
            "capacity": capacity,
            "selection": "first_come",
            **overrides,
        }

    async def post(
        self, api_key: str, body: dict[str, Any], idem: str | None = None
    ) -> httpx.Response:
        headers = {"Idempotency-Key": idem or uid()}
        return await self.request(api_key, "POST", "/v1/postings", headers=headers, json=body)

    async def submit(self, api_key: str, **shift: Any) -> dict[str, Any]:
        posting = await self.facility(api_key).post_posting(await self.shift_body(**shift))
        assert posting["status"] == "pending_budget"
        return posting

    async def get(self, api_key: str, posting_id: str) -> dict[str, Any]:
        return await self.facility(api_key).get_posting(posting_id)

    async def wait_status(
        self, api_key: str, posting_id: str, status: str, timeout_s: float = 20
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            posting = await self.get(api_key, posting_id)
            if posting["status"] == status:
                return posting
            if loop.time() > deadline:
                raise AssertionError(f"{posting_id} is {posting['status']}, not {status}")
            await asyncio.sleep(0.1)

    async def budget_answer(
        self, posting_id: str, inject: type[BudgetReserved] | type[BudgetRejected]
    ) -> Envelope:
        """The first budget answer to a submission: the real allowance's if it answers within
        a few seconds, else the one this test injects. The posting must follow whichever
        came first."""
        answers = await self.watcher.maybe(
            posting_id,
            *BUDGET_ANSWERS,
            timeout_s=3,
            where=lambda e: e.data.get("for_revision", 0) == 0 and e.data.get("revision", 1) == 1,
        )
        if answers is None:
            if inject is BudgetReserved:
                await self.reserve(posting_id)
            else:
                await self.refuse(posting_id)
        first = await self.watcher.wait_for(
            posting_id,
            *BUDGET_ANSWERS,
            where=lambda e: e.data.get("for_revision", 0) == 0 and e.data.get("revision", 1) == 1,
        )
        return first[0]

    async def open(self, api_key: str, **shift: Any) -> dict[str, Any]:
        """A posting that is open (budget reserved, by the real allowance or injected)."""
        posting = await self.submit(api_key, **shift)
        answer = await self.budget_answer(posting["id"], BudgetReserved)
        assert answer.type == "BudgetReserved", f"allowance refused the budget: {answer.data}"
        return await self.wait_status(api_key, posting["id"], "open")

    # --- injected events (what allowance and the matcher would send) -----------------------

    async def inject(self, event: Event, producer: str) -> Envelope:
        from shared.clock import utc_now

        envelope = event.envelope(producer=producer, occurred_at=utc_now())
        await self.producer.send_and_wait(
            event.TOPIC, envelope.to_bytes(), key=envelope.key.encode()
        )
        return envelope

    async def reserve(
        self, posting_id: str, revision: int = 1, reservation_id: str | None = None
    ) -> str:
        rid = reservation_id or f"rsv_test_{uid()}"
        await self.inject(
            BudgetReserved(
                posting_id=posting_id,
                reservation_id=rid,
                fiscal_year=2026,
                amount_won=12_930,
                hourly_rate_won=12_930,
                revision=revision,
            ),
            "allowance",
        )
        return rid

    async def refuse(self, posting_id: str, for_revision: int = 0) -> None:
        await self.inject(
            BudgetRejected(
                posting_id=posting_id,
                reason="budget_insufficient",
                requested_won=2_586_000,
                available_won=1_000,
                shortfall_won=2_585_000,
                for_revision=for_revision,
            ),
            "allowance",
        )

    async def book(
        self,
        posting: dict[str, Any],
        kind: str = "confirmed",
        booking_id: str | None = None,
        position: int = 1,
        citizen_id: str | None = None,
        cancelled_by: str = "citizen",
        was_confirmed: bool = True,
    ) -> str:
        """Inject a booking event for `posting` as the matcher would (a cancellation by the
        citizen is a withdrawal; by the facility or the system, the posting's cancellation)."""
        booking_id = booking_id or f"bkg_test_{uid()}"
        common: dict[str, Any] = {
            "posting_id": posting["id"],
            "application_id": f"app_{booking_id}",
            "citizen_id": citizen_id or f"ctz_{booking_id}",
            "citizen_display": f"당근***{booking_id[-3:]}",
            "booking_id": booking_id,
            "starts_at": posting["starts_at"],
            "ends_at": posting["ends_at"],
        }
        event: Event
        if kind == "confirmed":
            event = BookingConfirmed(**common)
        elif kind == "waitlisted":
            event = BookingWaitlisted(**common, waitlist_position=position)
        elif kind == "promoted":
            event = BookingPromoted(**common)
        else:
            event = BookingCancelled(
                **common,
                cancelled_by=cancelled_by,
                reason="withdrawn" if cancelled_by == "citizen" else "posting_cancelled",
                was_confirmed=was_confirmed,
            )
        await self.inject(event, "matcher")
        return booking_id

    async def roster(self, api_key: str, posting_id: str) -> dict[str, Any]:
        return await self.facility(api_key).get_roster(posting_id)

    async def wait_roster(
        self, api_key: str, posting_id: str, check: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while True:
            roster = await self.roster(api_key, posting_id)
            if check(roster):
                return roster
            if loop.time() > deadline:
                raise AssertionError(f"roster never got there: {roster}")
            await asyncio.sleep(0.1)

    async def attendance(
        self, api_key: str, posting_id: str, records: list[dict[str, Any]]
    ) -> httpx.Response:
        path = f"/v1/postings/{posting_id}/attendance"
        return await self.request(api_key, "PUT", path, json={"records": records})
